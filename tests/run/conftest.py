"""Fixtures of the rc-run end-to-end tests: a scratch directory holding shell-command cabs, and
the real ``rc-run`` CLI run as a subprocess inside it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

_INSTALLED = Path(sys.executable).parent / "rc-run"
RC_RUN = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "radiocloud.run.cli"]

# Cabs whose commands leave evidence behind: lines appended to out.txt (in step order), files
# created, a runs.log counting the copies made, marker files met by concurrent iterations.
CABS = r"""
cabs:
  append:
    info: appends TEXT as one line to FILE
    command: sh -c 'printf "%s\n" "$2" >> "$1"' append
    inputs:
      file: {dtype: str, default: out.txt, policies: {positional: true}}
      text: {dtype: str, required: true, policies: {positional: true}, info: the line}
  show:
    info: appends its value (any type; a list's items separated by spaces) to out.txt
    command: sh -c 'echo "$@" >> out.txt' show
    inputs:
      value: {dtype: Any, required: true, policies: {positional: true}}
  count:
    info: appends the int N to FILE
    command: sh -c 'printf "%s\n" "$2" >> "$1"' count
    inputs:
      file: {dtype: str, default: out.txt, policies: {positional: true}}
      n: {dtype: int, required: true, policies: {positional: true}}
  pick:
    info: appends MODE to out.txt
    command: sh -c 'printf "%s\n" "$1" >> out.txt' pick
    inputs:
      mode: {dtype: str, required: true, choices: [fast, slow], policies: {positional: true}}
  echo:
    command: echo
    inputs:
      text: {dtype: str, required: true, policies: {positional: true}}
  touch:
    command: touch
    outputs:
      file: {dtype: File, required: true, policies: {positional: true}}
  write:
    info: writes TEXT into the new file FILE
    command: sh -c 'printf "%s\n" "$1" > "$2"' write
    inputs:
      text: {dtype: str, default: hello, policies: {positional: true}}
    outputs:
      file: {dtype: File, required: true, policies: {positional: true}}
  cat:
    command: cat
    inputs:
      file: {dtype: File, required: true, policies: {positional: true}}
  copy:
    info: copies SRC to DST, noting DST in runs.log (a count of the copies made)
    command: sh -c 'echo "$2" >> runs.log; cat "$1" > "$2"' copy
    inputs:
      src: {dtype: File, required: true, policies: {positional: true}}
    outputs:
      dst: {dtype: File, required: true, policies: {positional: true}}
  fail:
    command: "false"
  ok:
    command: "true"
  meet:
    info: >-
      marks NAME, waits until COUNT marks exist (exit 3 after TRIES times 0.05 s), then appends
      NAME to out.txt
    command: >-
      sh -c 'touch "mark.$1"; n=0;
      until [ "$(ls mark.* | wc -l)" -ge "$2" ]; do
      n=$((n+1)); if [ $n -gt "$3" ]; then exit 3; fi; sleep 0.05; done;
      echo "$1" >> out.txt' meet
    inputs:
      name: {dtype: str, required: true, policies: {positional: true}}
      count: {dtype: int, required: true, policies: {positional: true}}
      tries: {dtype: int, default: 100, policies: {positional: true}}
"""


@dataclass
class Cli:
    """``rc-run`` in a scratch directory that holds ``cabs.yml`` (the cabs above)."""

    root: Path

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def recipe(self, text: str, name: str = "r.yml") -> Path:
        """A recipe file including the test cabs."""
        return self.write(name, "_include: cabs.yml\n" + textwrap.dedent(text))

    def read(self, name: str) -> str:
        return (self.root / name).read_text()

    def lines(self, name: str = "out.txt") -> list[str]:
        """The lines of a file the steps appended to ([] if no step wrote it)."""
        path = self.root / name
        return path.read_text().splitlines() if path.exists() else []

    def provenance(self, run_dir: str) -> dict:
        return json.loads((self.root / run_dir / "provenance.json").read_text())

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*RC_RUN, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def start(self, *args: str) -> subprocess.Popen:
        """Start rc-run in its own process group (as a terminal runs it), not waiting."""
        return subprocess.Popen(
            [*RC_RUN, *args],
            cwd=self.root,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        """Run, expecting success."""
        result = self(*args)
        assert result.returncode == 0, result.stderr
        return result

    def fails(self, *args: str, code: int = 2) -> str:
        """Run, expecting exit ``code``; the stderr."""
        result = self(*args)
        assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
        return result.stderr


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "cabs.yml").write_text(CABS)
    return Cli(tmp_path)

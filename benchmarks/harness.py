"""What every benchmark shares: running a tool in its own process and measuring it, finding
the workspace's and the peers' executables, the workspace's commit (or the sources of an earlier
one), and describing the machine.

Benchmarks run as scripts (``.venv/bin/python benchmarks/<app>.py``), so this module is
imported by its file name.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = Path("/work/shared/peers/peers")
GNU_TIME = Path("/usr/bin/time")


def logger(prefix: str):
    def log(message: str) -> None:
        print(f"[{prefix}] {message}", file=sys.stderr, flush=True)

    return log


def venv_tool(name: str) -> str:
    """``name`` next to the running interpreter (the workspace venv), else on PATH."""
    sibling = Path(sys.executable).with_name(name)
    return str(sibling) if sibling.exists() else shutil.which(name) or name


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def copy_ms(src: Path, dst: Path) -> float:
    """Copy ``src`` to ``dst``; seconds taken, including writing the copy to disk. The sync
    keeps the copy's write-back (gigabytes of dirty pages) out of the timed run that follows."""
    shutil.rmtree(dst, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    os.sync()
    return time.perf_counter() - start


def measure(cmd: list[str], logs: Path, timeout: float) -> dict:
    """Run ``cmd`` in its own session, in the folder of ``logs`` (tools that drop log files
    in their working directory drop them there); wall, CPU (wait4) and peak RSS of that
    process tree.

    Peak RSS comes from GNU time's ``%M`` when /usr/bin/time exists. wait4's ``ru_maxrss``
    is not enough: Linux carries the memory high-water mark of the process that forked across
    ``exec``, so a child of this (possibly large) Python process would report at least this
    process's own peak. GNU time is a small process: its child's figure is the tool's own.
    """
    out, err = logs.with_suffix(".stdout"), logs.with_suffix(".stderr")
    rss_file = logs.with_suffix(".maxrss")
    if GNU_TIME.exists():
        cmd = [str(GNU_TIME), "-f", "%M", "-o", str(rss_file), *cmd]
    load = os.getloadavg()[0]  # other work on the machine skews the figures: record it
    with out.open("wb") as stdout, err.open("wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, start_new_session=True,
                                cwd=logs.parent)  # fmt: skip
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    result = {
        "returncode": proc.returncode,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(_peak_rss_kib(rss_file, usage.ru_maxrss) / 1024, 1),
        "load_average_before": round(load, 2),
    }
    if timed_out.is_set():
        result.update(timed_out=True, timeout_s=timeout)
    if proc.returncode != 0 or timed_out.is_set():
        result["stderr_tail"] = tail(err) or tail(out)
    return result


def _peak_rss_kib(rss_file: Path, fallback: int) -> int:
    """GNU time's peak RSS (KiB, the last line of its output file), else wait4's."""
    try:
        return int(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return fallback


def summary_line(logs: Path, stream: str, marker: str) -> str | None:
    """The last line of a run's ``stream`` (stdout or stderr) that contains ``marker``."""
    text = tail(logs.with_suffix(f".{stream}"), 50).splitlines()
    return next((line.strip() for line in reversed(text) if marker in line), None)


def peer_exe(tool: str, explicit: str | None = None, log=print) -> str | None:
    """The peer tool's executable from the ``peers`` harness, installed if missing."""
    if explicit:
        return explicit
    peers = str(PEERS) if PEERS.exists() else shutil.which("peers")
    if not peers:
        return shutil.which(tool)
    path = subprocess.run([peers, "path", tool], capture_output=True, text=True)
    exe = path.stdout.strip()
    if not os.access(exe, os.X_OK):
        log(f"installing {tool} with 'peers install {tool}'")
        subprocess.run([peers, "install", tool], stdout=sys.stderr, check=False)
        exe = subprocess.run([peers, "path", tool], capture_output=True, text=True).stdout.strip()
    return exe if exe and os.access(exe, os.X_OK) else None


def version_of(python: Path, dist: str) -> str | None:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return proc.stdout.strip() or None


def machine() -> dict:
    info = {"cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln),
            None,
        )
        meminfo = Path("/proc/meminfo").read_text().split()
        info["memory_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return info


def git_commit() -> str | None:
    """The workspace's commit (``-dirty`` if the tree has changes): the apps are young."""
    cmd = ["git", "-C", str(REPO), "describe", "--always", "--dirty"]
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip() or None


def rc_source(workdir: Path, revision: str, sources: tuple[str, ...]) -> tuple[list[str], str]:
    """A command prefix that runs our tools as of git ``revision`` (their ``sources``, e.g.
    ``core/src``, exported with ``git archive`` and put first on PYTHONPATH, ahead of the
    editable working tree), and the commit."""
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", f"{revision}^{{commit}}"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    commit = rev.stdout.strip()
    dest = workdir / f"src-{commit[:12]}"
    if not dest.exists():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, *sources],
                                 capture_output=True, check=True)  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        tmp.rename(dest)
    path = os.pathsep.join(str(dest / sub) for sub in sources)
    return ["env", f"PYTHONPATH={path}"], commit

"""Fill NUMBA_CACHE_DIR at image build time: run each command given on tiny datasets.

Run inside the image as the image's user: ``python warm.py FILE``, one command a line. ``{ms}``
in a command becomes a fresh tiny Measurement Set with MODEL_DATA (radiocloud.core.testing),
``{sky}`` a small WSClean component list, ``{tmp}`` a scratch directory. A command that fails
fails the build. The cache is then made writable by every uid, since rc-run runs containers as
the host user.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

SKY = """\
Format = Name, Type, Ra, Dec, I, Q, U, V, SpectralIndex, LogarithmicSI, ReferenceFrequency, \
MajorAxis, MinorAxis, Orientation
a,POINT,16:15:03.8,-60.54.26.0,1.0,0.0,0.0,0.0,[-0.7],true,1284000000.0,,,
b,GAUSSIAN,16:15:08.4,-60.54.31.9,0.5,0.0,0.0,0.0,[-0.7],true,1284000000.0,12.0,5.0,100.0
"""


def main(commands: list[str]) -> int:
    """Run ``commands``; 0, or the exit code of the first that failed."""
    from radiocloud.core.testing.builders import MSSpec, build_ms

    with tempfile.TemporaryDirectory(prefix="warm-") as tmp:
        sky = Path(tmp, "sky.txt")
        sky.write_text(SKY)
        for n, command in enumerate(commands):
            ms = build_ms(Path(tmp, f"t{n}.ms"), MSSpec(extra_columns=("MODEL_DATA",)))
            argv = [a.format(ms=ms, sky=sky, tmp=tmp) for a in shlex.split(command)]
            print("warm:", shlex.join(argv), flush=True)
            done = subprocess.run(argv, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                sys.stdout.write(done.stdout.decode(errors="replace"))
                print(f"warm: {argv[0]} exited {done.returncode}", file=sys.stderr)
                return done.returncode
    cache = os.environ["NUMBA_CACHE_DIR"]
    for root, dirs, files in os.walk(cache):
        for name in dirs + files:
            path = os.path.join(root, name)
            os.chmod(path, 0o777 if name in dirs else 0o666)
    count = sum(len(files) for _, _, files in os.walk(cache))
    print(f"warm: {count} files in {cache}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main([c for c in Path(sys.argv[1]).read_text().splitlines() if c.strip()]))

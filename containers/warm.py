"""Fill NUMBA_CACHE_DIR at image build time: run each command given on tiny datasets.

Run inside the image as the image's user: ``python warm.py FILE``, one command a line. ``{ms}``
in a command becomes a fresh tiny Measurement Set with MODEL_DATA (radiocloud.core.testing),
``{sky}`` a small WSClean component list, ``{fits}`` a small model image at the dataset's phase
centre (as rc-image writes one: what rc-predict degrids in selfcal), ``{tmp}`` a scratch
directory. A command that fails
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


def model_image(ms: str, path: Path) -> Path:
    """A 64 x 64 model of three point sources around ``ms``'s phase centre, 2 asec pixels."""
    import numpy as np
    from casacore.tables import table

    from radiocloud.core.fitsmodel import ImageModel, write_fits_model

    with table(f"{ms}::FIELD", ack=False) as field:
        ra, dec = field.getcol("PHASE_DIR")[0, 0]
    with table(f"{ms}::SPECTRAL_WINDOW", ack=False) as spw:
        freq = float(spw.getcol("REF_FREQUENCY")[0])
    image = np.zeros((1, 1, 64, 64))
    image[0, 0, 32, 32], image[0, 0, 20, 40], image[0, 0, 45, 12] = 1.0, 0.3, 0.2
    cell = np.deg2rad(2 / 3600)
    write_fits_model(ImageModel(image=image, freqs=[freq], ra0=ra, dec0=dec, cell_l=-cell,
                                cell_m=cell, ref_x=32, ref_y=32, stokes=("I",)), path)  # fmt: skip
    return path


def main(commands: list[str]) -> int:
    """Run ``commands``; 0, or the exit code of the first that failed."""
    from radiocloud.core.testing.builders import MSSpec, build_ms

    with tempfile.TemporaryDirectory(prefix="warm-") as tmp:
        sky = Path(tmp, "sky.txt")
        sky.write_text(SKY)
        for n, command in enumerate(commands):
            ms = build_ms(Path(tmp, f"t{n}.ms"), MSSpec(extra_columns=("MODEL_DATA",)))
            fits = model_image(ms, Path(tmp, f"t{n}-model.fits")) if "{fits}" in command else ""
            argv = [a.format(ms=ms, sky=sky, fits=fits, tmp=tmp) for a in shlex.split(command)]
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

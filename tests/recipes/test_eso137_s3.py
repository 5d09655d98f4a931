"""The ESO 137-006 recipe with its archive on S3 and its writes in a local delta-set.

The simulated observation is uploaded as zarr to an S3-compatible server on loopback (moto),
branched into a local delta-set with ``rc-data branch``, and the recipe runs on the delta-set
with the credentials and endpoint in the usual AWS environment variables, as a user's would
be. Every object of the archive is hashed before and after: the run must not change one. The
delta-set holds exactly the columns the recipe writes, and selfcal works as on a local MS.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

from radiocloud.core import io

from .conftest import BIN, RECIPE, dynamic_range

ARCHIVE = "radiocloud/eso137.zarr"


def _digests(fs, root: str) -> dict[str, str]:
    return {path: hashlib.sha256(fs.cat_file(path)).hexdigest() for path in fs.find(root)}


def test_the_recipe_on_an_s3_archive_writes_only_its_local_delta(tmp_path, s3_server):
    import s3fs

    client = s3_server["client_kwargs"]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3_server["key"],
        "AWS_SECRET_ACCESS_KEY": s3_server["secret"],
        "AWS_DEFAULT_REGION": client["region_name"],
        "AWS_ENDPOINT_URL": client["endpoint_url"],
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
        )

    sim = run(str(BIN / "rc-simulate"), "obs.ms", "--integrations", "30")
    assert sim.returncode == 0, sim.stderr
    io.convert(tmp_path / "obs.ms", io.DatasetURL(f"s3://{ARCHIVE}", s3_server))
    fs = s3fs.S3FileSystem(**s3_server)
    before = _digests(fs, ARCHIVE)
    assert len(before) > 20

    branch = run(str(BIN / "rc-data"), "branch", f"s3://{ARCHIVE}", "work.delta")
    assert branch.returncode == 0, branch.stderr
    result = run(
        str(BIN / "rc-run"), str(RECIPE), "ms=work.delta", "prefix=out/eso137",
        "init-model.path=obs.truth/skymodel.txt", "init-model.brightest=1000",
        "truth-gains=obs.truth/gains.zarr", "imaging.size=512", "imaging.scale=5asec",
        "--run-dir", "run",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr

    fs.invalidate_cache()
    assert _digests(fs, ARCHIVE) == before  # not one object of the archive written
    diff = run(str(BIN / "rc-data"), "diff", "work.delta")
    assert diff.returncode == 0, diff.stderr
    written = sorted(line.split(":")[0] for line in diff.stdout.splitlines() if ":" in line)
    assert written == ["CORRECTED_DATA", "FLAG", "FLAG_ROW", "MODEL_DATA"]
    initial = dynamic_range(tmp_path / "out" / "eso137-0")
    final = dynamic_range(tmp_path / "out" / "eso137-ap1")
    assert final >= 5 * initial, (initial, final)

"""End to end: a real app runs as the Job of an rc-run step that asks for dask workers; the
fake API server's operator stands a ``distributed.LocalCluster`` in for the DaskCluster, and the
app computes on it through ``--scheduler``. Its result equals the same app's threaded run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
from daskms import xds_from_ms

from radiocloud.core.cli import run_cli
from radiocloud.predict.cli import app as predict_app
from radiocloud.simulate.cli import app as simulate_app


def _column(ms, name: str) -> np.ndarray:
    return np.concatenate([ds[name].values for ds in xds_from_ms(str(ms), columns=[name])])


def test_an_app_computes_on_the_steps_daskcluster(tmp_path, fake_kube):
    work = tmp_path / "work"
    work.mkdir()
    fake_kube.claims["work"] = str(work)
    ms = work / "obs.ms"
    assert run_cli(simulate_app, "rc-simulate", [str(ms), "--antennas", "7", "--channels", "4",
                   "--integrations", "8", "--no-gains", "--no-delays", "--no-bandpass",
                   "--no-rfi", "--noise", "0"]) == 0  # fmt: skip
    settings = {
        "volumes": [{"pvc": "work", "mount": str(tmp_path / "pod" / "data"),
                     "host_path": str(work)}],
        "poll": 0.1,
        # the LocalCluster's scheduler listens on loopback, not at the Service's cluster DNS name
        "dask": {"scheduler_address": "tcp://127.0.0.1:{port}"},
    }  # fmt: skip
    (work / "r.yml").write_text(
        textwrap.dedent(f"""
        main:
          backend:
            select: kube
            kube: {json.dumps(settings)}
          steps:
            predict:
              cab: rc-predict
              params:
                dataset: obs.ms
                model: obs.truth/skymodel.txt
                output-column: CLUSTER
                workers: 2
        """)
    )
    rc_run = [sys.executable, "-m", "radiocloud.run.cli", "r.yml", "--run-dir", "run"]
    result = subprocess.run(rc_run, cwd=work, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((work / "run" / "provenance.json").read_text())
    entry = record["steps"]["main.predict"]
    assert fake_kube.created == [("daskcluster", entry["dask_cluster"]), ("job", entry["job"])]
    assert fake_kube.computed[entry["dask_cluster"]]  # the app's tasks ran on the cluster
    log = (work / "run" / "logs" / "main.predict.log").read_text()
    assert "--scheduler tcp://127.0.0.1:" in log
    assert "--workers" not in log.split("\n$ ", 1)[1].splitlines()[0]
    assert f"{tmp_path / 'pod' / 'data'}/obs.ms" in log  # the app was given the pod's path
    assert sorted(fake_kube.deleted) == sorted(fake_kube.created)  # job and daskcluster
    assert not fake_kube.clusters

    sky = work / "obs.truth" / "skymodel.txt"
    assert run_cli(predict_app, "rc-predict", [str(ms), "--model", str(sky),
                   "--output-column", "THREADS", "--threads", "1"]) == 0  # fmt: skip
    np.testing.assert_array_equal(_column(ms, "CLUSTER"), _column(ms, "THREADS"))
    assert np.abs(_column(ms, "THREADS")).max() > 0

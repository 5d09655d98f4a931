"""Every app runs unchanged on a dask.distributed cluster of worker processes.

rc-flag, rc-average, rc-image and rc-plot, given ``--scheduler`` of a two-process
``LocalCluster``, each on a delta-set of one zarr archive: the workers read the archive and
write the delta, and every result equals the same app's run with threads in its own process.
The archive's files are unchanged. (rc-predict and rc-calibrate on a cluster reading an S3
archive: tests/core/test_delta.py; rc-simulate and rc-average with ``--workers``: their suites.)
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from matplotlib.image import imread

from radiocloud.average.cli import app as average_app
from radiocloud.core import io
from radiocloud.core.cli import run_cli
from radiocloud.core.io import deltaops
from radiocloud.flag.cli import app as flag_app
from radiocloud.image.cli import app as image_app
from radiocloud.plot.cli import app as plot_app
from radiocloud.simulate.cli import app as simulate_app

from .test_delta import columns_of, tree_hashes

APPS = {"rc-flag": flag_app, "rc-average": average_app, "rc-image": image_app,
        "rc-plot": plot_app}  # fmt: skip


def rc(prog: str, *args) -> int:
    return run_cli(APPS[prog], prog, [str(a) for a in args])


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A zarr archive of a small noisy observation with RFI, and its files' hashes."""
    root = tmp_path_factory.mktemp("distributed")
    ms = root / "obs.ms"
    args = ["--antennas", "7", "--channels", "64", "--integrations", "32", "--seed", "3"]
    assert run_cli(simulate_app, "rc-simulate", [str(ms), *args]) == 0
    zarr = root / "archive.zarr"
    io.convert(ms, zarr)
    return zarr


class Cluster(str):
    """A running cluster's scheduler address; ``transitions()`` counts the task transitions
    its scheduler has made, so a test can tell that an app's work went to the cluster."""

    def transitions(self) -> int:
        from distributed import Client

        with Client(str(self)) as client:
            return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as local:  # fmt: skip
        yield Cluster(local.scheduler_address)


@pytest.fixture
def scheduler(cluster):
    """The cluster's address; the test's cluster run must have sent tasks to it."""
    before = cluster.transitions()
    yield cluster
    assert cluster.transitions() > before + 10


@pytest.fixture
def deltas(archive, tmp_path):
    """Two fresh delta-sets of the archive: one for the threaded run, one for the cluster
    (of the same name, which rc-plot puts in its titles)."""
    pair = tmp_path / "threads" / "obs.delta", tmp_path / "cluster" / "obs.delta"
    for delta in pair:
        delta.parent.mkdir()
        deltaops.branch(archive, delta)
    before = tree_hashes(archive)
    yield pair
    assert tree_hashes(archive) == before


def test_rc_flag_on_a_cluster_flags_as_with_threads(deltas, scheduler) -> None:
    local, spread = deltas
    assert rc("rc-flag", local) == 0
    assert rc("rc-flag", spread, "--scheduler", scheduler) == 0
    flags = [c["FLAG"] for c in columns_of(local, ["FLAG"])]
    assert (
        0.001 < np.mean(np.concatenate([f.ravel() for f in flags])) < 0.9
    )  # RFI found, not everything
    for a, b in zip(flags, [c["FLAG"] for c in columns_of(spread, ["FLAG"])], strict=True):
        np.testing.assert_array_equal(a, b)


def test_rc_average_on_a_cluster_writes_what_threads_write(deltas, scheduler, tmp_path) -> None:
    local, spread = deltas
    args = ["--time-bin", "4", "--chan-bin", "2", "--force"]  # smearing is not the point
    assert rc("rc-average", local, tmp_path / "threads.zarr", *args) == 0
    assert rc("rc-average", spread, tmp_path / "cluster.zarr", *args, "--scheduler", scheduler) == 0
    columns = ["DATA", "FLAG", "WEIGHT_SPECTRUM", "UVW", "TIME"]
    a, b = (
        columns_of(tmp_path / "threads.zarr", columns),
        columns_of(tmp_path / "cluster.zarr", columns),
    )
    assert sum(c["DATA"].shape[0] for c in a) == 7 * 6 // 2 * 32 // 4
    for x, y in zip(a, b, strict=True):
        for column in columns:
            np.testing.assert_array_equal(x[column], y[column], err_msg=column)


def test_rc_image_on_a_cluster_images_as_with_threads(deltas, scheduler, tmp_path) -> None:
    local, spread = deltas
    args = ["--size", "96", "--scale", "20asec", "--niter", "30"]
    assert rc("rc-image", local, "--prefix", tmp_path / "threads", *args) == 0
    assert rc("rc-image", spread, "--prefix", tmp_path / "cluster", *args,
              "--scheduler", scheduler) == 0  # fmt: skip
    for kind in ("dirty", "psf", "model", "image"):
        a = fits.getdata(tmp_path / f"threads-{kind}.fits")
        b = fits.getdata(tmp_path / f"cluster-{kind}.fits")
        assert np.abs(a).max() > 0, kind
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6 * np.abs(a).max(), err_msg=kind)


def test_rc_plot_on_a_cluster_draws_what_threads_draw(deltas, scheduler, tmp_path) -> None:
    local, spread = deltas
    args = ["-x", "UV", "-y", "DATA:amp", "--size", "400x300"]
    assert rc("rc-plot", local, *args, "--output", tmp_path / "threads.png") == 0
    assert rc("rc-plot", spread, *args, "--output", tmp_path / "cluster.png",
              "--scheduler", scheduler) == 0  # fmt: skip
    a, b = imread(tmp_path / "threads.png"), imread(tmp_path / "cluster.png")
    assert a.shape[:2] == (300, 400)
    assert a.std() > 0.01  # something is drawn
    np.testing.assert_array_equal(a, b)

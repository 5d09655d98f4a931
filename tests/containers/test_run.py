"""The real thing: a two-step recipe (rc-simulate, then rc-predict from a sky model kept outside
the working directory) run by the real rc-run in the apps' images with podman, against the
same recipe run natively."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from casacore.tables import table

_INSTALLED = Path(sys.executable).parent / "rc-run"
RC_RUN = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "radiocloud.run.cli"]

RECIPE = """
    sim-predict:
      info: simulate a small observation, then predict a sky model into MODEL_DATA
      inputs:
        ms: {{dtype: str, default: obs.ms}}
      {backend}
      steps:
        simulate:
          cab: rc-simulate
          params:
            output: =recipe.ms
            antennas: "5"
            channels: "4"
            integrations: 4
            rfi: false
            noise: "1"
            seed: 3
        predict:
          cab: rc-predict
          params:
            dataset: =steps.simulate.output
            model: {sky}
"""
SKY = """\
Format = Name, Type, Ra, Dec, I, Q, U, V, SpectralIndex, LogarithmicSI, ReferenceFrequency, \
MajorAxis, MinorAxis, Orientation
a,POINT,16:15:03.8,-60.54.26.0,1.0,0.0,0.0,0.0,[-0.7],true,1284000000.0,,,
b,GAUSSIAN,16:15:20.4,-60.53.31.9,0.5,0.0,0.0,0.0,[-0.7],true,1284000000.0,12.0,5.0,100.0
"""
CONF = Path(__file__).resolve().parents[2] / "containers" / "containers.conf"
COLUMNS = ("TIME", "ANTENNA1", "ANTENNA2", "UVW", "DATA", "MODEL_DATA", "FLAG", "WEIGHT")


def rc_run(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "DOCKER_HOST")}
    done = subprocess.run(
        [*RC_RUN, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def write_recipe(cwd: Path, sky: Path, backend: str = "") -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    text = textwrap.dedent(RECIPE).format(backend=backend, sky=sky)
    (cwd / "recipe.yml").write_text(text)


@pytest.fixture(scope="module")
def runs(images, podman_socket, tmp_path_factory):
    """The recipe run natively and in containers; their directories."""
    root = tmp_path_factory.mktemp("recipe")
    sky = root / "models" / "sky.txt"  # outside both working directories: mounted read-only
    sky.parent.mkdir()
    sky.write_text(SKY)
    native, inside = root / "native", root / "container"
    write_recipe(native, sky)
    write_recipe(inside, sky, f"backend: {{container: {{url: '{podman_socket}'}}}}")
    done = rc_run(native, "recipe.yml", "--run-dir", "run")
    assert done.returncode == 0, done.stdout + done.stderr
    done = rc_run(inside, "recipe.yml", "--backend", "container", "--run-dir", "run")
    assert done.returncode == 0, done.stdout + done.stderr
    return native, inside, done.stdout


def test_the_containers_write_what_the_native_run_writes(runs):
    native, inside, _ = runs
    with (
        table(str(native / "obs.ms"), ack=False) as a,
        table(str(inside / "obs.ms"), ack=False) as b,
    ):
        assert a.nrows() == b.nrows() == 40
        for column in COLUMNS:
            np.testing.assert_array_equal(a.getcol(column), b.getcol(column), err_msg=column)
        model = b.getcol("MODEL_DATA")
    assert np.abs(model).max() > 0.5  # the sky model was predicted, not left empty
    truth = [json.loads((d / "obs.truth" / "manifest.json").read_text()) for d in (native, inside)]
    for manifest in truth:
        manifest.pop("created")
    assert truth[0] == truth[1]
    sky = [(d / "obs.truth" / "skymodel.txt").read_text() for d in (native, inside)]
    assert sky[0] == sky[1]


def test_the_outputs_belong_to_the_host_user(runs):
    _, inside, _ = runs
    owners = {
        (p.stat().st_uid, p.stat().st_gid)
        for top in ("obs.ms", "obs.truth")
        for p in [inside / top, *(inside / top).rglob("*")]
    }
    assert owners == {(os.getuid(), os.getgid())}


def test_provenance_records_each_steps_image_and_digest(runs, images):
    _, inside, stdout = runs
    steps = json.loads((inside / "run" / "provenance.json").read_text())["steps"]
    built = {i["image"]: i["id"] for i in images["images"]}
    for name, app in (("simulate", "rc-simulate"), ("predict", "rc-predict")):
        entry = steps[f"sim-predict.{name}"]
        assert entry["backend"] == "container"
        assert entry["image"].startswith(f"localhost/radiocloud/{app}:")
        assert entry["image_id"].removeprefix("sha256:") == built[entry["image"]]
        assert "sha256:" in entry["image_digest"]
        assert entry["peak_rss_mib"] > 50  # measured in the container by the wrapper
    log = (inside / "run" / "logs" / "sim-predict.predict.log").read_text()
    assert f"# mounts: {inside}:rw, {inside.parent / 'models'}:ro" in log
    assert "rc-predict: read" in stdout  # the app's summary line streamed through rc-run


def test_a_missing_image_is_one_line_with_its_build_command_before_anything_runs(images, tmp_path):
    """No socket given: the backend starts podman's service itself (and says so only when a
    step runs); the image of this registry is not there."""
    sky = tmp_path / "sky.txt"
    sky.write_text(SKY)
    cwd = tmp_path / "work"
    write_recipe(cwd, sky, "backend: {container: {registry: localhost/radiocloud-missing}}")
    done = rc_run(cwd, "recipe.yml", "--backend", "container")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if "is not in podman's storage" in line]
    assert len(lines) == 2  # one line for each step's image
    assert "image localhost/radiocloud-missing/rc-predict:" in lines[1]
    assert "containers/build rc-predict (add --local-base without a registry)" in lines[1]
    assert not (cwd / "obs.ms").exists()  # nothing ran


def test_the_warm_numba_cache_spares_the_first_call_its_compiling(images, tmp_path):
    """rc-predict's first call in a fresh container, as a uid neither root nor the image's
    (rc-run runs containers as whoever the host user is): the kernels come from the image's
    cache (numba writes no new cache file), which that uid can read."""
    from radiocloud.core.testing.builders import MSSpec, build_ms

    build_ms(tmp_path / "t.ms", MSSpec(n_ant=5, spw_chans=(6,)))
    (tmp_path / "sky.txt").write_text(SKY)
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    script = (
        'n() { find "$NUMBA_CACHE_DIR" -type f | wc -l; }; before=$(n); '
        "rc-predict t.ms --model sky.txt >/dev/null 2>&1 || exit 9; "
        'echo "$before $(n)"; find "$NUMBA_CACHE_DIR" -name "*.nbi" ! -readable | wc -l'
    )
    image = next(i["image"] for i in images["images"] if "/rc-predict:" in i["image"])
    done = subprocess.run(
        ["podman", "run", "--rm", "--network=none", "--user=4321:4321",
         f"--volume={tmp_path}:{tmp_path}", f"--workdir={tmp_path}", image, "sh", "-c", script],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONF))},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    counts, unreadable = done.stdout.split("\n")[:2]
    before, after = map(int, counts.split())
    assert before > 0
    assert after == before  # nothing compiled
    assert unreadable == "0"


@pytest.mark.parametrize(
    "when",
    ["$ podman run", "started"],  # as the container is made (or starts), and as it runs
)
def test_ctrl_c_stops_the_container_and_removes_it(images, podman_socket, tmp_path, when):
    image = next(i["image"] for i in images["images"] if "/rc-simulate:" in i["image"])
    recipe = f"""
        cabs:
          sh:
            command: sh -c
            image: {image}
            inputs:
              script: {{dtype: str, required: true, policies: {{positional: true}}}}
        slow:
          backend: {{select: container, container: {{url: '{podman_socket}'}}}}
          steps:
            wait:
              cab: sh
              params: {{script: "echo started; sleep 30; touch waited"}}
            after:
              cab: sh
              params: {{script: "touch after"}}
    """
    (tmp_path / "recipe.yml").write_text(textwrap.dedent(recipe))
    process = subprocess.Popen(
        [*RC_RUN, "recipe.yml", "--run-dir", "run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    log = tmp_path / "run" / "logs" / "slow.wait.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and any(x.startswith(when) for x in log.read_text().splitlines())):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: rc-run's group, not the container
    _, stderr = process.communicate(timeout=40)
    assert process.returncode == 130, stderr
    assert time.monotonic() - started < 15  # the container was stopped, not waited for
    record = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert record["steps"]["slow.wait"]["status"] == "interrupted"
    assert "slow.after" not in record["steps"]
    assert not (tmp_path / "waited").exists()
    left = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", "label=org.radiocloud.step=slow.wait"],
        capture_output=True, text=True, env={**os.environ, "CONTAINERS_CONF": str(CONF)},
    )  # fmt: skip
    assert left.stdout.strip() == ""

"""The container backend without an engine: mount planning, default images, check()'s lines,
and the image manifest against the workspace."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from radiocloud.run.backends import DataPath, StepContext
from radiocloud.run.backends import container as backend
from radiocloud.run.backends.container import engines

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "containers" / "build.py"


def step(*paths: DataPath, cwd: str, command: str = "rc-predict", **options) -> StepContext:
    return StepContext(
        fq="r.s", cab=command, command=command, paths=paths, options=options, cwd=cwd
    )


def mounts(plan: backend.Plan) -> dict[str, str]:
    return {m.path: "rw" if m.writable else "ro" for m in plan.mounts}


@pytest.fixture
def dirs(tmp_path):
    for name in ("work", "sky", "out", "both"):
        (tmp_path / name).mkdir()
    return tmp_path


def test_the_working_directory_is_mounted_read_write_and_covers_relative_paths(dirs):
    work = str(dirs / "work")
    plan = backend.plan(step(DataPath("obs.ms", True), DataPath("sub/m.txt", False), cwd=work))
    assert mounts(plan) == {work: "rw"}
    assert plan.problems == ()


def test_a_read_path_outside_is_mounted_read_only_a_written_one_read_write(dirs):
    work, sky, out = (str(dirs / n) for n in ("work", "sky", "out"))
    plan = backend.plan(
        step(
            DataPath(f"{sky}/sky.txt", False),
            DataPath(f"{out}/img.fits", True),
            DataPath(f"{out}/new/deeper/x.ms", True),  # not there yet: its nearest parent
            cwd=work,
        )
    )
    assert mounts(plan) == {work: "rw", sky: "ro", out: "rw"}


def test_read_and_written_in_one_directory_is_read_write_at_the_same_path(dirs):
    both = str(dirs / "both")
    plan = backend.plan(
        step(DataPath(f"{both}/a.ms", False), DataPath(f"{both}/b.ms", True), cwd=str(dirs))
    )
    assert mounts(plan) == {str(dirs): "rw"}  # the working directory covers both
    plan = backend.plan(
        step(
            DataPath(f"{both}/a.ms", False),
            DataPath(f"{both}/b.ms", True),
            cwd=str(dirs / "work"),
        )
    )
    assert mounts(plan) == {str(dirs / "work"): "rw", both: "rw"}


def test_a_written_path_under_a_read_only_mount_gets_its_own_read_write_mount(dirs):
    sky = dirs / "sky"
    (sky / "out").mkdir()
    plan = backend.plan(
        step(
            DataPath(f"{sky}/sky.txt", False),
            DataPath(f"{sky}/out/x.fits", True),
            cwd=str(dirs / "work"),
        )
    )
    assert mounts(plan) == {str(dirs / "work"): "rw", str(sky): "ro", f"{sky}/out": "rw"}


def test_s3_urls_are_not_mounted(dirs):
    plan = backend.plan(step(DataPath("s3://bucket/obs.zarr", True), cwd=str(dirs / "work")))
    assert mounts(plan) == {str(dirs / "work"): "rw"}


def test_strict_mounts_name_the_path_outside_and_the_fix(dirs):
    work, sky, out = (str(dirs / n) for n in ("work", "sky", "out"))
    plan = backend.plan(
        step(
            DataPath(f"{sky}/sky.txt", False),
            DataPath(f"{out}/img.fits", True),
            cwd=work,
            mounts=[f"{sky}:ro"],
            auto_mount=False,
        )
    )
    assert mounts(plan) == {work: "rw", sky: "ro"}
    assert plan.problems == (
        f"{out}/img.fits is outside the mounts ({work} and backend.container.mounts): add "
        f"{out} to backend.container.mounts, or drop auto_mount: false",
    )


def test_a_missing_configured_mount_and_system_directories_are_problems(dirs):
    plan = backend.plan(
        step(
            DataPath("/usr/share/zoneinfo/UTC", False),
            cwd=str(dirs / "work"),
            mounts=[str(dirs / "nowhere")],
        )
    )
    assert plan.problems == (
        f"backend.container.mounts: {dirs / 'nowhere'}: no such directory on this host",
        "cannot mount /usr/share/zoneinfo (it would hide the image's own): keep the step's data "
        "and working directory elsewhere",
    )


def test_default_images_follow_the_manifest(build):
    version = importlib.metadata.version("radiocloud-core")
    at = f":{version}"
    assert backend.image_of(step(cwd=".")) == f"localhost/radiocloud/rc-predict{at}"
    assert backend.image_of(step(cwd=".", command="rc-flag-summary")).endswith(f"/rc-flag{at}")
    assert backend.image_of(step(cwd=".", command="rc-data")).endswith(f"/core{at}")
    assert backend.image_of(step(cwd=".", registry="ghcr.io/x/")) == f"ghcr.io/x/rc-predict{at}"
    assert backend.image_of(step(cwd=".", command="wsclean")) is None
    cab_image = StepContext(fq="s", cab="w", command="wsclean", image="quay.io/w/wsclean:3.4")
    assert backend.image_of(cab_image) == "quay.io/w/wsclean:3.4"
    manifest = build.load_manifest()
    for command, image in backend.IMAGE_OF.items():
        spec = manifest.core if image == "core" else manifest.images[image]
        assert command in spec.scripts


@pytest.fixture
def fresh_probe():
    """check() probes the engine once per run (process): forget earlier probes."""
    engines._ENGINES.clear()
    engines._REPORTED.clear()
    yield
    engines._ENGINES.clear()
    engines._REPORTED.clear()


def test_an_unreachable_socket_is_one_line_once_per_run(dirs, fresh_probe):
    url = f"unix://{dirs}/no.sock"
    first = backend.check(step(cwd=str(dirs), engine="podman", url=url))
    assert first == [
        f"no podman engine answers at {url}: start one: podman system service --time=0 "
        "unix:///tmp/podman.sock, and set backend.container.url: unix:///tmp/podman.sock"
    ]
    assert backend.check(step(cwd=str(dirs), command="rc-flag", engine="podman", url=url)) == []


def test_an_unknown_setting_is_one_line(dirs, fresh_probe):
    assert backend.check(step(cwd=str(dirs), memroy="4g")) == [
        f"backend.container: unknown setting 'memroy'; use: {', '.join(backend.SETTINGS)}"
    ]


def test_the_build_hint_names_the_build_command():
    assert backend.build_hint("localhost/radiocloud/rc-predict:0.1.0") == (
        "build it with: containers/build rc-predict (add --local-base without a registry)"
    )
    assert backend.build_hint("quay.io/w/wsclean:3.4") == (
        "pull it (podman pull quay.io/w/wsclean:3.4) or set backend.container.pull: missing"
    )


# ------------------------------------------------------------------------------- the manifest


def workspace_scripts(build) -> dict[str, set[str]]:
    """Workspace member -> its console scripts."""
    return {
        name: set(tomllib.loads((path / "pyproject.toml").read_text())["project"]["scripts"])
        for name, path in build.members().items()
    }


def test_each_image_provides_exactly_its_members_console_scripts(build):
    manifest = build.load_manifest()
    scripts = workspace_scripts(build)
    for image in [manifest.core, *manifest.images.values()]:
        expected = set().union(*(scripts[p] for p in image.packages))
        assert set(image.scripts) == expected, image.name
        for line in image.warm:
            assert line.split()[0] in expected, (image.name, line)
    provided = set().union(*(i.scripts for i in manifest.images.values()), manifest.core.scripts)
    assert provided == set().union(*scripts.values())  # every app's script is in an image


def test_every_image_is_buildable_by_name(build):
    manifest = build.load_manifest()
    assert set(manifest.images) == {
        "rc-simulate", "rc-flag", "rc-average", "rc-predict", "rc-calibrate", "rc-image",
        "rc-plot", "rc-run",
    }  # fmt: skip
    for name in manifest.images:
        assert [i.name for i in manifest.select([name])] == ["core", name]
        assert [i.name for i in manifest.select([name.removeprefix("rc-")])] == ["core", name]
    assert len(manifest.select(["all"])) == 1 + len(manifest.images)
    with pytest.raises(build.BuildError, match=r"no image 'wsclean' in images\.toml; use all or"):
        manifest.select(["wsclean"])


def test_app_images_add_only_pins_core_does_not_have(build):
    core = build.requirements(("radiocloud-core",))
    predict = build.requirements(("radiocloud-predict",))
    assert all("==" in line for line in core)
    assert set(core) < set(predict)
    assert any(line.startswith("ducc0==") for line in set(predict) - set(core))


def test_build_help_and_a_bad_name_are_clear():
    done = subprocess.run([str(ROOT / "containers" / "build"), "--help"], capture_output=True)
    assert done.returncode == 0
    assert b"--local-base" in done.stdout
    done = subprocess.run([sys.executable, str(BUILD), "nope"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "containers/build: no image 'nope' in images.toml; use all or: core, rc-simulate, "
        "rc-flag, rc-average, rc-predict, rc-calibrate, rc-image, rc-plot, rc-run"
    ]


def test_rc_run_reports_an_unreachable_engine_once_and_runs_nothing(tmp_path):
    """Through the real CLI, without podman: two container steps, one line for the engine."""
    (tmp_path / "sky.txt").write_text("Format = Name, Type, Ra, Dec, I\n")
    (tmp_path / "recipe.yml").write_text(
        textwrap.dedent(
            f"""
            two:
              backend: {{container: {{engine: podman, url: "unix://{tmp_path}/none.sock"}}}}
              steps:
                simulate:
                  cab: rc-simulate
                  params: {{output: obs.ms, antennas: "4", integrations: 2}}
                predict:
                  cab: rc-predict
                  params: {{dataset: obs.ms, model: sky.txt}}
            """
        )
    )
    rc_run = Path(sys.executable).parent / "rc-run"
    argv = [str(rc_run)] if rc_run.exists() else [sys.executable, "-m", "radiocloud.run.cli"]
    done = subprocess.run(
        [*argv, "recipe.yml", "--backend", "container", "--run-dir", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    engine_lines = [line for line in done.stderr.splitlines() if "engine answers" in line]
    assert len(engine_lines) == 1
    assert engine_lines[0].endswith(
        f"no podman engine answers at unix://{tmp_path}/none.sock: start one: podman system "
        "service --time=0 unix:///tmp/podman.sock, and set backend.container.url: "
        "unix:///tmp/podman.sock"
    )
    assert not (tmp_path / "obs.ms").exists()

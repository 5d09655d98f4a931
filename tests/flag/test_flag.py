"""rc-flag on simulated MeerKAT data against the injected RFI, and its safety with FLAG."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml
from casacore.tables import table

from radiocloud.core.cli import run_cli
from radiocloud.flag.cli import app as flag_app
from radiocloud.simulate.cli import app as simulate_app

SIM = ["--antennas", "8", "--channels", "256", "--freq-start", "900MHz", "--bandwidth",
       "53.5MHz", "--integrations", "48", "--seed", "3"]  # fmt: skip
# 209 kHz channels (MeerKAT 4k) and 8 s dumps: noise sigma = SEFD / sqrt(2 dnu dt)
SIGMA = 430.0 / np.sqrt(2 * 53.5e6 / 256 * 8.0)


def flag(*args) -> int:
    return run_cli(flag_app, "rc-flag", [str(a) for a in args])


def col(ms, name):
    with table(str(ms), ack=False) as t:
        return t.getcol(name) if name in t.colnames() else None


def put(ms, name, values):
    with table(str(ms), readonly=False, ack=False) as t:
        t.putcol(name, values)


@pytest.fixture(scope="module")
def observations(tmp_path_factory):
    """The same observation with and without RFI (identical sky, gains and noise)."""
    root = tmp_path_factory.mktemp("flag")
    for name, extra in (("rfi.ms", []), ("clean.ms", ["--no-rfi"])):
        assert run_cli(simulate_app, "rc-simulate", [str(root / name), *SIM, *extra]) == 0
    return root


@pytest.fixture
def rfi_ms(observations, tmp_path):
    dst = tmp_path / "rfi.ms"
    shutil.copytree(observations / "rfi.ms", dst)
    return dst


def injected(observations) -> np.ndarray:
    """|RFI| (row, chan, corr) in units of the noise sigma."""
    rfi = col(observations / "rfi.ms", "DATA") - col(observations / "clean.ms", "DATA")
    return np.abs(rfi) / SIGMA


def test_recall_of_injected_rfi_and_false_flags_on_clean_data(observations, tmp_path):
    rfi_ms, clean_ms = tmp_path / "rfi.ms", tmp_path / "clean.ms"
    shutil.copytree(observations / "rfi.ms", rfi_ms)
    shutil.copytree(observations / "clean.ms", clean_ms)
    assert flag(rfi_ms) == 0
    assert flag(clean_ms) == 0
    level = injected(observations)
    flags = col(rfi_ms, "FLAG")
    strong = level >= 5
    assert strong.mean() > 0.05  # there is plenty to find
    recall = flags[strong].mean()
    precision = (level[flags] >= 1).mean()
    clean_rate = col(clean_ms, "FLAG").mean()
    print(f"recall(>=5 sigma) {recall:.4f}, precision(>=1 sigma) {precision:.3f}, "
          f"flagged on clean data {clean_rate:.4f}")  # fmt: skip
    assert recall >= 0.95
    assert clean_rate < 0.02


def test_lower_thresholds_add_flags(rfi_ms, tmp_path):
    """MAD steps are monotone in their threshold; SumThreshold is not strictly (a flagged
    sample counts as the threshold in longer windows, AOFlagger's rule, see the kernel tests),
    so a lower threshold may drop a few flags of a higher one: bounded here at 1%."""
    results = {}
    for threshold in (8, 6, 4):
        copy = tmp_path / f"t{threshold}.ms"
        shutil.copytree(rfi_ms, copy)
        assert flag(copy, "--strategy", "conservative", "--no-backup",
                    "--set", f"sum_threshold.threshold={threshold}") == 0  # fmt: skip
        results[threshold] = col(copy, "FLAG")
    assert results[8].sum() < results[6].sum() < results[4].sum()
    for high, low in ((8, 6), (6, 4)):
        dropped = (results[high] & ~results[low]).sum() / results[high].sum()
        assert dropped < 0.01
    mad = {}
    for threshold in (6, 4):
        copy = tmp_path / f"m{threshold}.ms"
        shutil.copytree(rfi_ms, copy)
        assert flag(copy, "--no-backup", "--set", f"mad.threshold={threshold}") == 0
        mad[threshold] = col(copy, "FLAG")
    assert mad[6].sum() < mad[4].sum()
    assert (mad[6] & ~mad[4]).sum() / mad[6].sum() < 0.01


def test_existing_flags_are_kept_flag_row_follows_and_the_backup_restores_exactly(rfi_ms):
    from radiocloud.core.io.flagversions import list_versions, restore_version

    rng = np.random.default_rng(5)
    original = col(rfi_ms, "FLAG")
    original |= rng.random(original.shape) < 0.01
    original[:7] = True
    put(rfi_ms, "FLAG", original)
    put(rfi_ms, "FLAG_ROW", original.all(axis=(1, 2)))
    assert flag(rfi_ms) == 0
    after = col(rfi_ms, "FLAG")
    assert not (original & ~after).any()
    assert after.sum() > original.sum()
    np.testing.assert_array_equal(col(rfi_ms, "FLAG_ROW"), after.all(axis=(1, 2)))
    (version,) = list_versions(str(rfi_ms))
    restore_version(str(rfi_ms), version.name)
    np.testing.assert_array_equal(col(rfi_ms, "FLAG"), original)
    np.testing.assert_array_equal(col(rfi_ms, "FLAG_ROW"), original.all(axis=(1, 2)))


def test_max_flagged_restores_flag_and_fails(rfi_ms, capsys):
    before = col(rfi_ms, "FLAG")
    assert flag(rfi_ms, "--max-flagged", "0.001") == 1
    assert "FLAG was restored from version rc-flag-" in capsys.readouterr().err
    np.testing.assert_array_equal(col(rfi_ms, "FLAG"), before)


def test_short_windows_still_find_the_strong_rfi(rfi_ms, tmp_path, observations):
    small = tmp_path / "small.ms"
    shutil.copytree(rfi_ms, small)
    assert flag(rfi_ms, "--no-backup") == 0
    assert flag(small, "--no-backup", "--memory-budget", "16MiB") == 0  # windows of 6 times
    level = injected(observations)
    whole, short = col(rfi_ms, "FLAG"), col(small, "FLAG")
    assert short[level >= 5].mean() >= 0.95
    assert abs(whole.mean() - short.mean()) < 0.03


def test_residual_strategy_flags_outliers_of_data_minus_model(rfi_ms, tmp_path, observations):
    assert run_cli(simulate_app, "rc-simulate", [str(tmp_path / "m.ms"), *SIM, "--no-rfi",
                                                 "--model-data"]) == 0  # fmt: skip
    model = col(tmp_path / "m.ms", "MODEL_DATA")
    with table(str(rfi_ms), readonly=False, ack=False) as t:
        desc = t.getcoldesc("DATA")
        desc["name"] = "MODEL_DATA"
        t.addcols(desc)
    put(rfi_ms, "MODEL_DATA", model)
    assert flag(rfi_ms, "--strategy", "residual", "--column", "DATA - MODEL_DATA") == 0
    level = injected(observations)
    assert col(rfi_ms, "FLAG")[level >= 5].mean() >= 0.95


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "fast"], "strategy 'fast' is neither a preset"),
        (["--set", "sum_threshold.treshold=3"], "unknown option 'treshold'"),
        (["--column", "MODEL_DATA"], "has no column MODEL_DATA"),
        (["--field", "4"], "selection matches no rows"),
        (["--spw", "2"], "--spw 2: the dataset has SPWs [0]"),
    ],
)
def test_bad_input_one_line_and_flag_untouched(rfi_ms, capsys, args, message):
    before = col(rfi_ms, "FLAG")
    assert flag(rfi_ms, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]
    np.testing.assert_array_equal(col(rfi_ms, "FLAG"), before)
    assert not rfi_ms.with_name("rfi.ms.flagversions").exists()


def test_a_step_the_correlations_cannot_feed_fails_before_any_write(tmp_path, capsys):
    ms = tmp_path / "xx.ms"
    sim = [str(ms), "--antennas", "4", "--channels", "16", "--integrations", "4",
           "--correlations", "1"]  # fmt: skip
    assert run_cli(simulate_app, "rc-simulate", sim) == 0
    capsys.readouterr()
    assert flag(ms) == 2
    err = capsys.readouterr().err
    assert "step 4 (mad): amplitude polarised needs XX and YY" in err
    assert not ms.with_name("xx.ms.flagversions").exists()
    assert flag(ms, "--set", "mad.amplitude=corr") == 0  # both mad steps on XX alone


def test_interrupted_run_leaves_flag_refused_until_restored(rfi_ms, tmp_path, monkeypatch, capsys):
    from radiocloud.core.io.flagversions import list_versions, restore_version
    from radiocloud.flag import steps

    before = col(rfi_ms, "FLAG")
    calls = {"n": 0}
    real = steps.Dilate.apply

    def dies_on_third_window(self, window):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real(self, window)

    monkeypatch.setattr(steps.Dilate, "apply", dies_on_third_window)
    assert flag(rfi_ms, "--memory-budget", "8MiB", "--threads", "1") == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert flag(rfi_ms) == 2
    assert "FLAG" in capsys.readouterr().err
    (version,) = list_versions(str(rfi_ms))
    restore_version(str(rfi_ms), version.name)
    np.testing.assert_array_equal(col(rfi_ms, "FLAG"), before)
    assert flag(rfi_ms, "--no-backup") == 0


def test_zarr_gives_the_same_flags(rfi_ms, tmp_path):
    from radiocloud.core.io import open_dataset
    from radiocloud.core.io.convert import convert

    zarr = tmp_path / "rfi.zarr"
    convert(str(rfi_ms), str(zarr))
    assert flag(rfi_ms, "--no-backup") == 0
    assert flag(zarr, "--no-backup") == 0
    flags = np.concatenate([ds.FLAG.values for ds in open_dataset(str(zarr), columns=["FLAG"])])
    np.testing.assert_array_equal(flags, col(rfi_ms, "FLAG"))


def test_custom_strategy_file(rfi_ms, tmp_path):
    path = tmp_path / "mask.yaml"
    path.write_text(yaml.safe_dump({"name": "mask", "steps": [
        {"step": "static_mask", "frequencies": ["935MHz-960MHz"]}, "correlations"]}))  # fmt: skip
    assert flag(rfi_ms, "--strategy", path, "--no-backup") == 0
    freq = np.linspace(900e6, 953.5e6, 256, endpoint=False) + 53.5e6 / 512
    expected = (freq >= 935e6) & (freq <= 960e6)
    flags = col(rfi_ms, "FLAG")
    np.testing.assert_array_equal(flags.all(axis=(0, 2)), expected)


@pytest.mark.parametrize("suffix", [".ms", ".zarr"])
def test_selection_leaves_other_fields_untouched(built, tmp_path, suffix):
    """--field 1 on two fields x two scans x two SPWs: rows of field 0 keep their FLAG, on the
    MS (field a partition of the read) and on zarr (FIELD_ID a column of each partition)."""
    from radiocloud.core.io import open_dataset

    def rows(path):
        dss = open_dataset(str(path), columns=["FLAG", "FIELD_ID", "ANTENNA1", "ANTENNA2"],
                           group_cols=("DATA_DESC_ID",))  # fmt: skip
        return [{k: ds[k].values for k in ("FLAG", "FIELD_ID", "ANTENNA1", "ANTENNA2")}
                for ds in dss]  # fmt: skip

    data = tmp_path / f"obs{suffix}"
    shutil.copytree(built[suffix], data)
    strategy = tmp_path / "autos.yaml"
    strategy.write_text("steps: [autocorrelations]\n")
    before = rows(data)
    assert flag(data, "--strategy", strategy, "--field", "1", "--no-backup") == 0
    after = rows(data)
    for old, new in zip(before, after, strict=True):
        autos = (old["ANTENNA1"] == old["ANTENNA2"]) & (old["FIELD_ID"] == 1)
        expected = old["FLAG"] | autos[:, None, None]
        np.testing.assert_array_equal(new["FLAG"], expected)
    assert any(((r["ANTENNA1"] == r["ANTENNA2"]) & (r["FIELD_ID"] == 1)).any() for r in before)

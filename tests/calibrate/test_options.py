"""Per-term options, the YAML file and its overrides, and their precedence."""

from __future__ import annotations

import pytest

from radiocloud.calibrate.cli import config_from
from radiocloud.calibrate.options import apply_overrides, load_config, per_term, samples
from radiocloud.core.errors import OptionError


def test_per_term_values_default_and_by_name():
    assert per_term("time-interval", "4,K=0", ["K", "G"]) == {"K": "0", "G": "4"}
    assert per_term("time-interval", "1", ["K", "G"]) == {"K": "1", "G": "1"}
    assert per_term("time-interval", {"G": 60}, ["K", "G"]) == {"G": "60"}
    with pytest.raises(OptionError, match="no term H"):
        per_term("time-interval", "H=3", ["K", "G"])


def test_intervals_in_units_must_be_multiples_of_the_sampling():
    assert samples("time-interval", "64s", 8.0, "s") == 8
    assert samples("freq-interval", "8MHz", 2e6, "Hz") == 4
    assert samples("time-interval", "0", 8.0, "s") == 0
    with pytest.raises(OptionError, match="use 8s or 16s"):
        samples("time-interval", "12s", 8.0, "s")


def test_yaml_then_overrides_then_flags(tmp_path):
    path = tmp_path / "cal.yml"
    path.write_text(
        "terms: [K, G]\n"
        "iter_recipe: [10, 20]\n"
        "K:\n  time-interval: 0\n"
        "G:\n  time_interval: 60s\n  type: phase\n"
        "ref-ant: m001\n"
    )
    values = apply_overrides(load_config(str(path)), ["G.time-interval=4", "tol=1e-4"])
    values.update({"ref-ant": "3"})  # a flag given on the command line
    cfg = config_from("x.ms", values)
    k, g = cfg.terms
    assert (k.type, k.time_interval) == ("delay", "0")
    assert (g.type, g.time_interval) == ("phase", "4")
    assert cfg.iter_recipe == (10, 20)
    assert cfg.tol == 1e-4
    assert cfg.ref_ant == "3"


def test_robust_extends_a_one_cycle_recipe_and_turns_on_mad_flags():
    cfg = config_from("x.ms", {"terms": "G", "robust": True})
    assert cfg.iter_recipe == (25, 25, 25)
    assert cfg.mad_threshold == 5.0


def test_unknown_options_and_bad_yaml_are_refused(tmp_path):
    with pytest.raises(OptionError, match="unknown option wobble"):
        config_from("x.ms", {"wobble": 1})
    bad = tmp_path / "bad.yml"
    bad.write_text("terms: [K\n")
    with pytest.raises(OptionError, match="not valid YAML"):
        load_config(str(bad))
    with pytest.raises(OptionError, match=r"TERM\.OPTION=VALUE"):
        apply_overrides({}, ["G.time-interval"])

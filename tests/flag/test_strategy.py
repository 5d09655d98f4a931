"""Strategy files: presets parse, options are typed and checked, mistakes are named."""

from __future__ import annotations

import pytest

from radiocloud.core.errors import OptionError
from radiocloud.flag.steps import STEPS, StaticMask, SumThreshold
from radiocloud.flag.strategy import load_strategy, parse_column, parse_strategy, presets


def test_presets_parse_and_use_registered_steps():
    assert {"meerkat-lband", "conservative", "residual"} <= set(presets())
    for name in presets():
        strategy = load_strategy(name)
        assert strategy.steps
        assert all(type(s) is STEPS[s.name] for s in strategy.steps)
    assert load_strategy("residual").columns == ("CORRECTED_DATA", "MODEL_DATA")


def test_options_are_converted_and_overridden():
    doc = {"steps": ["nan_zero", {"step": "sum_threshold", "threshold": "7", "windows": [1, 2]},
                     {"step": "static_mask", "frequencies": "935MHz-960MHz",
                      "uv_below": 600}]}  # fmt: skip
    strategy = parse_strategy(doc, source="s.yaml", overrides=["sum_threshold.rho=2"],
                              column="DATA - MODEL_DATA")  # fmt: skip
    st = strategy.steps[1]
    assert st == SumThreshold(threshold=7.0, windows=(1, 2), rho=2.0)
    assert strategy.steps[2] == StaticMask(frequencies=("935MHz-960MHz",), uv_below=600.0)
    assert strategy.column == "DATA - MODEL_DATA"
    assert parse_column("corrected_data-model_data") == ("CORRECTED_DATA", "-", "MODEL_DATA")


ST = "sum_threshold"
CASES = [
    (
        {"steps": ["sum_treshold"]},
        [],
        "unknown step 'sum_treshold' (did you mean 'sum_threshold'?)",
    ),
    ({"steps": [{"step": ST, "treshold": 5}]}, [], "option 'treshold' (did you mean 'threshold'?)"),
    ({"steps": [{"step": ST, "threshold": "high"}]}, [], "threshold='high' should be a number"),
    ({"steps": [{"step": ST, "amplitude": "I"}]}, [], "amplitude 'I' is not one of"),
    ({"steps": [{"step": "dilate", "chan": 1.5}]}, [], "chan=1.5 should be an integer"),
    ({"steps": [{"step": "static_mask", "frequencies": ["935MHz"]}]}, [], "is not a range"),
    ({"steps": [{"step": "extend", "channels": 2}]}, [], "channels must be a fraction"),
    ({"steps": ["nan_zero"], "colum": "DATA"}, [], "key 'colum' (did you mean 'column'?)"),
    ({"steps": []}, [], "expected a mapping with a list of 'steps'"),
    ({"steps": ["nan_zero"]}, ["dilate.chan=2"], "the strategy has no step 'dilate'"),
    ({"steps": ["nan_zero"]}, ["threshold=2"], "write STEP.OPTION=VALUE"),
    ({"steps": ["nan_zero"], "column": "DATA * 2"}, [], "not a column or a difference"),
]


@pytest.mark.parametrize(("doc", "overrides", "message"), CASES)
def test_mistakes_are_named(doc, overrides, message):
    with pytest.raises(OptionError) as info:
        parse_strategy(doc, source="s.yaml", overrides=overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_yaml_and_unknown_strategy(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - nan_zero\n  - {step: dilate\n")
    with pytest.raises(OptionError, match=r"bad.yaml:\d+: not valid YAML"):
        load_strategy(str(bad))
    with pytest.raises(OptionError, match=r"neither a preset .*conservative.* nor a file"):
        load_strategy("no-such-strategy")

"""rc-calibrate's options: per-term values, a YAML file of them, dotted overrides, and the
frozen configuration the pipeline takes.

Per-term options take one value for every term (``--time-interval 4``), values by term name
(``--time-interval K=0,G=1``) or both (``--time-interval 4,K=0``). A YAML file given with
``--config`` holds the same options by the same names (per-term ones as a value or a mapping
of term name to value); dotted overrides ``G.time-interval=60s`` or ``iter-recipe=50`` on the
command line win over the file, and options given as flags win over both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from radiocloud.core.errors import OptionError
from radiocloud.core.kernels.calibrate import DEFAULT_TYPES, TERM_TYPES
from radiocloud.core.units import parse_duration, parse_frequency

PER_TERM = ("type", "time-interval", "freq-interval", "load-from")
PRODUCTS = ("corrected", "residual", "corrected-residual")


@dataclass(frozen=True)
class TermSpec:
    name: str
    type: str
    time_interval: str  # samples ("4"), a duration ("60s") or "0" (whole scan)
    freq_interval: str  # channels ("1"), a bandwidth ("8MHz") or "0" (whole window)
    load_from: str | None = None  # a gain table to start from (PATH or PATH:TERM)


@dataclass(frozen=True)
class CalibrateConfig:
    dataset: str
    terms: tuple[TermSpec, ...]
    iter_recipe: tuple[int, ...]
    data_column: str = "DATA"
    model_column: str = "MODEL_DATA"
    sky_model: str | None = None  # a component list predicted on the fly instead
    output_columns: tuple[str, ...] = ()
    output_products: tuple[str, ...] = ()
    gain_table: str | None = None
    report: str | None = None
    ref_ant: str = "0"
    tol: float = 1e-6
    robust: bool = False
    dof: float = 5.0
    mad_threshold: float = 0.0
    min_baselines: int = 4
    propagate_flags: bool = True
    fields: tuple[int, ...] | None = None
    ddid: int | None = None
    extra: dict = field(default_factory=dict, compare=False)


def per_term(option: str, text: str | int | float | Mapping | None, names: Sequence[str]):
    """{term name: value text} from 'V', 'K=V,G=W', '4,K=0' or a YAML mapping."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        items = [f"{k}={v}" for k, v in text.items()]
    else:
        items = [s.strip() for s in str(text).split(",") if s.strip()]
    out, default = {}, None
    for item in items:
        if "=" in item:
            name, value = (s.strip() for s in item.split("=", 1))
            if name not in names:
                raise OptionError(
                    f"--{option} {item}: there is no term {name} (--terms is {','.join(names)})"
                )
            out[name] = value
        else:
            default = item
    if default is not None:
        for name in names:
            out.setdefault(name, default)
    return out


def term_specs(names: Sequence[str], values: Mapping[str, object]) -> tuple[TermSpec, ...]:
    """The chain's terms from their names and the per-term options (by option name)."""
    if not names:
        raise OptionError("--terms is empty: give the chain's terms, e.g. --terms K,G")
    if len(set(names)) != len(names):
        raise OptionError(f"--terms {','.join(names)}: each term needs its own name")
    per = {opt: per_term(opt, values.get(opt), names) for opt in PER_TERM}
    specs = []
    for name in names:
        kind = per["type"].get(name) or DEFAULT_TYPES.get(name)
        if kind is None:
            raise OptionError(
                f"term {name} has no type: give --type {name}=TYPE, one of "
                f"{', '.join(TERM_TYPES)} (K, G, B, P, A, X get delay, diag-complex, bandpass, "
                "phase, amplitude, crosshand-phase)"
            )
        if kind not in TERM_TYPES:
            raise OptionError(
                f"--type {name}={kind}: unknown term type; known: {', '.join(TERM_TYPES)}"
            )
        t = TERM_TYPES[kind]
        specs.append(TermSpec(
            name=name, type=kind,
            time_interval=per["time-interval"].get(name, str(t.time_interval)),
            freq_interval=per["freq-interval"].get(name, str(t.freq_interval)),
            load_from=per["load-from"].get(name),
        ))  # fmt: skip
    return tuple(specs)


def iter_recipe(text: str | Sequence[int] | None, n_terms: int) -> tuple[int, ...]:
    """Iterations of each term solve in turn; terms are cycled, several cycles allowed."""
    if text is None:
        return (25,) * n_terms
    items = (
        text if isinstance(text, Sequence) and not isinstance(text, str) else str(text).split(",")
    )
    try:
        recipe = tuple(int(str(i).strip()) for i in items)
    except ValueError:
        raise OptionError(f"--iter-recipe {text}: give iteration counts, e.g. 25,25") from None
    if not recipe or len(recipe) % n_terms or min(recipe) < 0:
        raise OptionError(
            f"--iter-recipe {text}: give one count (>= 0) per term solve, {n_terms} per cycle "
            f"of the {n_terms} terms (e.g. {','.join(['25'] * n_terms)})"
        )
    return recipe


def samples(option: str, text: str, step: float, unit: str) -> int:
    """An interval in samples from '4', '60s'/'8MHz' (a multiple of ``step``) or '0'."""
    text = str(text).strip()
    try:
        n = int(text)
    except ValueError:
        parse = parse_duration if unit == "s" else parse_frequency
        value = parse(text)
        n = round(value / step)
        if n < 1 or abs(value / step - n) > 1e-3:
            lo = max(int(value // step), 1)
            hi = lo + 1
            given = f"--{option}{text}" if option.endswith("=") else f"--{option} {text}"
            raise OptionError(
                f"{given} is not a multiple of the data's sampling "
                f"({_fmt(step, unit)}): use {_fmt(lo * step, unit)} or {_fmt(hi * step, unit)}, "
                "or give a number of samples"
            ) from None
        return n
    if n < 0:
        raise OptionError(f"--{option} {text}: give 0 (the whole axis) or a positive count")
    return n


def _fmt(value: float, unit: str) -> str:
    return f"{value:g}s" if unit == "s" else f"{value / 1e6:g}MHz"


def load_config(path: str | None) -> dict:
    """Options from a YAML file, keys normalised to the CLI's names (time-interval)."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise OptionError(f"--config {path} does not exist: give a YAML file of options")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise OptionError(f"--config {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise OptionError(f"--config {path}: expected a mapping of option names to values")
    return _normalise(data)


def _normalise(data: Mapping) -> dict:
    """Option names with hyphens; a term's block (``G: {time-interval: 60s}``) and per-term
    mappings (``time-interval: {G: 60s}``) become {option: {term: value}} ('' = all terms)."""
    out: dict = {}

    def put(opt: str, term: str, value) -> None:
        current = out.get(opt)
        if term == "" and not isinstance(current, dict):
            out[opt] = value
            return
        block = current if isinstance(current, dict) else {} if current is None else {"": current}
        block[term] = value
        out[opt] = block

    for key, value in data.items():
        opt = str(key).replace("_", "-")
        if isinstance(value, Mapping) and opt not in PER_TERM:  # a term's block
            for k, v in value.items():
                put(str(k).replace("_", "-"), str(key), v)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                put(opt, str(k), v)
        else:
            put(opt, "", value)
    return out


def apply_overrides(values: dict, overrides: Sequence[str]) -> dict:
    """``values`` updated by 'option=value' and 'TERM.option=value' items."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for item in overrides:
        if "=" not in item:
            raise OptionError(
                f"override '{item}': give OPTION=VALUE or TERM.OPTION=VALUE, "
                "e.g. G.time-interval=60s"
            )
        key, value = (s.strip() for s in item.split("=", 1))
        if "." in key:
            term, opt = key.split(".", 1)
            opt = opt.replace("_", "-")
            if opt not in PER_TERM:
                raise OptionError(
                    f"override '{item}': {opt} is not a per-term option ({', '.join(PER_TERM)})"
                )
            current = out.get(opt)
            block = dict(current) if isinstance(current, dict) else (
                {} if current is None else {"": current})  # fmt: skip
            block[term] = value
            out[opt] = block
        else:
            out[key.replace("_", "-")] = value
    return {k: (_with_default(v) if isinstance(v, dict) else v) for k, v in out.items()}


def _with_default(block: dict) -> str:
    """A per-term mapping (maybe with an all-terms value under '') as option text."""
    items = [str(v) for k, v in block.items() if k == ""]
    items += [f"{k}={v}" for k, v in block.items() if k != ""]
    return ",".join(items)

"""The steps a flagging strategy is made of, in one registry.

Every step is a frozen dataclass whose fields are its options (typed, with defaults, checked
when a strategy is read) and whose ``apply`` flags samples of one :class:`Window`: the
visibilities of every baseline over a range of integrations and channels, as a dense
(baseline, time, chan, corr) cube. Steps only ever add flags; a window's flags start as the
dataset's FLAG, with (baseline, time) slots that have no row flagged.

Steps that look at amplitudes (``sum_threshold``, ``mad``) take the ``amplitude`` of:

* ``corr``: each correlation's amplitude on its own, flagging that correlation;
* ``stokes_i``: ``|XX + YY| / 2`` (``|RR + LL| / 2``), flagging every correlation;
* ``total``: ``sqrt(Σ_c |V_c|²)`` over the correlations, flagging every correlation;
* ``polarised``: ``sqrt(|Q|² + |U|² + |V|²)`` from the four correlations (linear or circular;
  from the parallel hands alone, ``|Q|`` or ``|V|``), flagging every correlation: RFI is
  usually strongly polarised, the sky mostly not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from radiocloud.core.kernels.flag import kernels
from radiocloud.core.units import parse_frequency

AMPLITUDES = ("corr", "stokes_i", "total", "polarised")


@dataclass
class Window:
    """The visibilities one call of a strategy sees. ``flags`` is updated in place."""

    data: np.ndarray  # (bl, time, chan, corr) complex
    flags: np.ndarray  # (bl, time, chan, corr) bool
    frequency: np.ndarray  # (chan,) Hz
    corr_names: tuple[str, ...]
    antenna1: np.ndarray  # (bl,)
    antenna2: np.ndarray  # (bl,)
    uv_distance: np.ndarray  # (bl, time) metres, NaN where a slot has no row
    first_channel: int = 0  # index in the SPW of the window's first channel

    def amplitude(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(planes (n, bl, time, chan) float32, flags (n, bl, time, chan)) of the amplitude
        ``kind`` (one of AMPLITUDES); n is the number of correlations for ``corr``, else 1."""
        if kind == "corr":
            amp = np.abs(self.data).astype(np.float32)
            return np.moveaxis(amp, -1, 0), np.moveaxis(self.flags, -1, 0)
        index = {name: i for i, name in enumerate(self.corr_names)}
        if kind == "total":
            amp = np.sqrt(np.sum(np.abs(self.data) ** 2, axis=-1))
        elif kind == "stokes_i":
            pair = [index[n] for n in ("XX", "YY", "RR", "LL") if n in index]
            if len(pair) != 2:
                raise ValueError(
                    f"amplitude stokes_i needs XX and YY (or RR and LL), not {self.corr_names}"
                )
            amp = np.abs(self.data[..., pair[0]] + self.data[..., pair[1]]) / 2
        else:
            amp = _polarised(self.data, index, self.corr_names)
        any_flag = np.any(self.flags, axis=-1)
        return amp.astype(np.float32)[None], any_flag[None]

    def add(self, kind: str, new: np.ndarray) -> None:
        """Merge flags (n, bl, time, chan) found on ``kind`` amplitudes into the window."""
        if kind == "corr":
            self.flags |= np.moveaxis(new, 0, -1)
        else:
            self.flags |= new[0][..., None]


def _polarised(data, index, corr_names) -> np.ndarray:
    if all(n in index for n in ("XX", "XY", "YX", "YY")):
        xx, xy, yx, yy = (data[..., index[n]] for n in ("XX", "XY", "YX", "YY"))
        q, u, v = (xx - yy) / 2, (xy + yx) / 2, (xy - yx) / 2j
    elif all(n in index for n in ("RR", "RL", "LR", "LL")):
        rr, rl, lr, ll = (data[..., index[n]] for n in ("RR", "RL", "LR", "LL"))
        q, u, v = (rl + lr) / 2, (rl - lr) / 2j, (rr - ll) / 2
    elif "XX" in index and "YY" in index:  # parallel hands only: Q is all there is
        q = (data[..., index["XX"]] - data[..., index["YY"]]) / 2
        u = v = np.zeros_like(q)
    elif "RR" in index and "LL" in index:  # parallel hands only: V is all there is
        v = (data[..., index["RR"]] - data[..., index["LL"]]) / 2
        q = u = np.zeros_like(v)
    else:
        raise ValueError(f"amplitude polarised needs XX and YY (or RR and LL), not {corr_names}")
    return np.sqrt(np.abs(q) ** 2 + np.abs(u) ** 2 + np.abs(v) ** 2)


class Step:
    """Base of the registered steps: ``name`` is the key in strategy files."""

    name: ClassVar[str]

    def apply(self, window: Window) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise ValueError naming an option whose value cannot be used."""


@dataclass(frozen=True)
class NanZero(Step):
    """Flag samples that are NaN or infinite, and (``zeros``) exactly zero."""

    name: ClassVar[str] = "nan_zero"
    zeros: bool = True

    def apply(self, window: Window) -> None:
        bad = ~np.isfinite(window.data)
        if self.zeros:
            bad |= window.data == 0
        window.flags |= bad


@dataclass(frozen=True)
class Autocorrelations(Step):
    """Flag autocorrelations (ANTENNA1 == ANTENNA2)."""

    name: ClassVar[str] = "autocorrelations"

    def apply(self, window: Window) -> None:
        window.flags[window.antenna1 == window.antenna2] = True


@dataclass(frozen=True)
class StaticMask(Step):
    """Flag frequency ranges (``"935MHz-960MHz"``) and channel ranges (``"0-9"``, inclusive),
    on every baseline, or with ``uv_below`` (metres) only on baselines shorter than that."""

    name: ClassVar[str] = "static_mask"
    frequencies: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    uv_below: float | None = None

    def check(self) -> None:
        self.mask(np.array([1e9]))
        if self.uv_below is not None and self.uv_below <= 0:
            raise ValueError("uv_below must be a positive distance in metres")

    def mask(self, frequency: np.ndarray, first_channel: int = 0) -> np.ndarray:
        """(chan,) bool: the channels a window with these frequencies has masked."""
        masked = np.zeros(frequency.shape, bool)
        for text in self.frequencies:
            lo, hi = _range(text, parse_frequency)
            masked |= (frequency >= min(lo, hi)) & (frequency <= max(lo, hi))
        index = first_channel + np.arange(frequency.size)
        for text in self.channels:
            lo, hi = _range(text, int)
            masked |= (index >= lo) & (index <= hi)
        return masked

    def apply(self, window: Window) -> None:
        masked = self.mask(window.frequency, window.first_channel)
        if not masked.any():
            return
        if self.uv_below is None:
            window.flags[:, :, masked] = True
        else:
            short = np.nan_to_num(window.uv_distance, nan=np.inf) < self.uv_below
            window.flags[short[:, :, None, None] & masked[None, None, :, None]] = True


def _range(text: str, parse) -> tuple:
    parts = str(text).replace(" ", "").split("-")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"'{text}' is not a range: write LOW-HIGH, e.g. 935MHz-960MHz or 0-9")
    return parse(parts[0]), parse(parts[1])


@dataclass(frozen=True)
class SumThreshold(Step):
    """AOFlagger-style SumThreshold on amplitudes minus an iteratively fitted smooth
    background, thresholds in units of the robust noise (1.4826 MAD)."""

    name: ClassVar[str] = "sum_threshold"
    amplitude: str = "stokes_i"
    threshold: float = 6.0
    iterations: int = 3
    windows: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    rho: float = 1.5
    time_sigma: float = kernels.TIME_SIGMA
    chan_sigma: float = kernels.CHAN_SIGMA
    direction: str = "both"

    def check(self) -> None:
        _one_of("amplitude", self.amplitude, AMPLITUDES)
        _one_of("direction", self.direction, ("time", "freq", "both"))
        if self.threshold <= 0 or self.iterations < 1 or self.rho < 1:
            raise ValueError("threshold must be > 0, iterations >= 1 and rho >= 1")
        if not self.windows or min(self.windows) < 1:
            raise ValueError("windows must be a list of positive sizes, e.g. [1, 2, 4, 8]")

    def apply(self, window: Window) -> None:
        planes, flags = window.amplitude(self.amplitude)
        options = dict(threshold=self.threshold, iterations=self.iterations,
                       windows=tuple(self.windows), rho=self.rho, time_sigma=self.time_sigma,
                       chan_sigma=self.chan_sigma, direction=self.direction)  # fmt: skip
        new = np.stack(
            [kernels.flag_cube(p, f, **options) for p, f in zip(planes, flags, strict=True)]
        )
        window.add(self.amplitude, new)


@dataclass(frozen=True)
class Mad(Step):
    """Flag amplitudes more than ``threshold`` robust sigmas (1.4826 MAD) from the median of
    each baseline's channel over time (``axis: time``) or integration over channels
    (``axis: chan``). ``upper`` (default) flags only amplitudes above the median: RFI adds
    power, while dips (a band edge rolling off, a fringe null) are the sky and the receiver."""

    name: ClassVar[str] = "mad"
    amplitude: str = "stokes_i"
    threshold: float = 5.0
    axis: str = "time"
    upper: bool = True

    def check(self) -> None:
        _one_of("amplitude", self.amplitude, AMPLITUDES)
        _one_of("axis", self.axis, ("time", "chan"))
        if self.threshold <= 0:
            raise ValueError("threshold must be > 0")

    def apply(self, window: Window) -> None:
        planes, flags = window.amplitude(self.amplitude)
        options = dict(threshold=self.threshold, axis=self.axis, upper=self.upper)
        new = [kernels.mad_flag_cube(p, f, **options) for p, f in zip(planes, flags, strict=True)]
        window.add(self.amplitude, np.stack(new))


@dataclass(frozen=True)
class Dilate(Step):
    """Grow flags by ``time`` integrations and ``chan`` channels either side."""

    name: ClassVar[str] = "dilate"
    time: int = 0
    chan: int = 1

    def check(self) -> None:
        if self.time < 0 or self.chan < 0:
            raise ValueError("time and chan must be >= 0")

    def apply(self, window: Window) -> None:
        n_bl, n_time, n_chan, n_corr = window.flags.shape
        planes = np.moveaxis(window.flags, -1, 1).reshape(n_bl * n_corr, n_time, n_chan)
        grown = kernels.dilate_cube(planes, time=self.time, chan=self.chan)
        window.flags |= np.moveaxis(grown.reshape(n_bl, n_corr, n_time, n_chan), 1, -1)


@dataclass(frozen=True)
class Extend(Step):
    """Flag a whole channel (every baseline and integration of the window) when more than
    ``channels`` of its samples are flagged, and a whole integration when more than ``times``
    of its samples are; 1.0 turns either off."""

    name: ClassVar[str] = "extend"
    channels: float = 0.8
    times: float = 0.8

    def check(self) -> None:
        for option in ("channels", "times"):
            if not 0.0 <= getattr(self, option) <= 1.0:
                raise ValueError(f"{option} must be a fraction between 0 and 1")

    def apply(self, window: Window) -> None:
        flagged = window.flags
        if self.channels < 1.0:
            dense = flagged.mean(axis=(0, 1, 3)) > self.channels
            flagged[:, :, dense] = True
        if self.times < 1.0:
            dense = flagged.mean(axis=(0, 2, 3)) > self.times
            flagged[:, dense] = True


@dataclass(frozen=True)
class Correlations(Step):
    """Flag every correlation of a sample when any (``any``) or all (``all``, a no-op on
    consistent flags) of them are flagged; most calibrators and imagers expect ``any``."""

    name: ClassVar[str] = "correlations"
    rule: str = "any"

    def check(self) -> None:
        _one_of("rule", self.rule, ("any", "all"))

    def apply(self, window: Window) -> None:
        combine = np.any if self.rule == "any" else np.all
        window.flags |= combine(window.flags, axis=-1, keepdims=True)


def _one_of(option: str, value: str, valid) -> None:
    if value not in valid:
        raise ValueError(f"{option} '{value}' is not one of {', '.join(valid)}")


STEPS: dict[str, type[Step]] = {
    step.name: step
    for step in (
        NanZero,
        Autocorrelations,
        StaticMask,
        SumThreshold,
        Mad,
        Dilate,
        Extend,
        Correlations,
    )
}
"""Every step a strategy can use, by the name it has in strategy files."""

"""What the correlation axis of a plot holds: correlations as stored (XX, RL, ...) or Stokes
parameters formed from them, each a weighted sum of stored correlations.

Stokes from linear feeds: I = (XX + YY)/2, Q = (XX - YY)/2, U = (XY + YX)/2,
V = -i(XY - YX)/2; from circular feeds: I = (RR + LL)/2, V = (RR - LL)/2, Q = (RL + LR)/2,
U = -i(RL - LR)/2 (the IAU convention, as CASA forms them). A product is flagged where any
correlation it is formed from is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da

from radiocloud.core.errors import OptionError

STOKES = ("I", "Q", "U", "V")
_FROM = {
    "linear": {
        "I": (("XX", 0.5), ("YY", 0.5)), "Q": (("XX", 0.5), ("YY", -0.5)),
        "U": (("XY", 0.5), ("YX", 0.5)), "V": (("XY", -0.5j), ("YX", 0.5j)),
    },
    "circular": {
        "I": (("RR", 0.5), ("LL", 0.5)), "V": (("RR", 0.5), ("LL", -0.5)),
        "Q": (("RL", 0.5), ("LR", 0.5)), "U": (("RL", -0.5j), ("LR", 0.5j)),
    },
}  # fmt: skip


@dataclass(frozen=True)
class Product:
    name: str
    weights: tuple[tuple[int, complex], ...]  # (index of a stored correlation, coefficient)

    @property
    def inputs(self) -> tuple[int, ...]:
        return tuple(i for i, _ in self.weights)

    @property
    def stored(self) -> bool:
        return len(self.weights) == 1 and self.weights[0][1] == 1


def product(name: str, stored: tuple[str, ...], option: str) -> Product:
    """``name`` (a stored correlation or I, Q, U, V) as a product of the ``stored`` ones."""
    name = name.strip().upper()
    if name in stored:
        return Product(name, ((stored.index(name), 1),))
    if name in STOKES:
        feeds = "circular" if stored and stored[0][0] in "RL" else "linear"
        recipe = _FROM[feeds][name]
        missing = [c for c, _ in recipe if c not in stored]
        if not missing:
            return Product(name, tuple((stored.index(c), w) for c, w in recipe))
        raise OptionError(
            f"{option} {name}: Stokes {name} needs {' and '.join(c for c, _ in recipe)}, "
            f"the data have {', '.join(stored)}"
        )
    raise OptionError(
        f"{option} {name}: no such correlation; the data have {', '.join(stored)} "
        f"(or Stokes {', '.join(STOKES)} formed from them)"
    )


def products(names: tuple[str, ...] | None, stored: tuple[str, ...], option: str):
    """The products ``names`` asks for (all stored correlations when None)."""
    if names is None:
        return tuple(product(c, stored, option) for c in stored)
    return tuple(product(c, stored, option) for c in names)


def combine(data, chosen: tuple[Product, ...]):
    """(row, chan, len(chosen)) of a (row, chan, corr) array: stored correlations are
    selected, Stokes parameters summed with their weights."""
    if all(p.stored for p in chosen):
        index = [p.inputs[0] for p in chosen]
        return data if index == list(range(data.shape[2])) else data[:, :, index]
    planes = [sum(w * data[:, :, i] for i, w in p.weights) for p in chosen]
    return da.stack(planes, axis=2)


def flagged(flag, chosen: tuple[Product, ...]):
    """(row, chan, len(chosen)) flags: a product is flagged where any of its inputs is."""
    if all(p.stored for p in chosen):
        return combine(flag, chosen)
    return da.stack([flag[:, :, list(p.inputs)].any(axis=2) for p in chosen], axis=2)

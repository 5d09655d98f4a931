"""complex: a full 2x2 Jones matrix per antenna and solution interval (gains and leakages),
solved by alternating least squares on its own statistics (``calibrate.full``). It needs all
four correlations, and is solved as the only term of its chain."""

from __future__ import annotations

from radiocloud.core.kernels.calibrate.terms.base import Term


class Complex(Term):
    type = "complex"
    params = ("re", "im")
    full = True
    summary = "full 2x2 Jones matrix per antenna (4 correlations, alone in its chain)"

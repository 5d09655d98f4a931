"""The registry of gain terms: one folder per term type, each a ``Term`` subclass built on
the shared kernels (``radiocloud.core.kernels.calibrate.kernels``)."""

from __future__ import annotations

from radiocloud.core.kernels.calibrate.terms.amplitude import Amplitude
from radiocloud.core.kernels.calibrate.terms.bandpass import Bandpass
from radiocloud.core.kernels.calibrate.terms.base import Term
from radiocloud.core.kernels.calibrate.terms.complex import Complex
from radiocloud.core.kernels.calibrate.terms.crosshand import CrosshandPhase
from radiocloud.core.kernels.calibrate.terms.delay import Delay, PureDelay
from radiocloud.core.kernels.calibrate.terms.diag_complex import DiagComplex
from radiocloud.core.kernels.calibrate.terms.phase import Phase

TERM_TYPES: dict[str, type[Term]] = {
    t.type: t
    for t in (DiagComplex, Bandpass, Phase, Amplitude, Delay, PureDelay, CrosshandPhase, Complex)
}

#: the type a term gets from its name when none is given (CASA's and QuartiCal's letters)
DEFAULT_TYPES = {
    "G": "diag-complex",
    "B": "bandpass",
    "K": "delay",
    "P": "phase",
    "A": "amplitude",
    "X": "crosshand-phase",
}

__all__ = ["DEFAULT_TYPES", "TERM_TYPES", "Complex", "Term"]

"""bandpass (B): a complex gain per antenna, feed and channel, over the whole scan."""

from __future__ import annotations

from radiocloud.core.kernels.calibrate.terms.diag_complex import DiagComplex


class Bandpass(DiagComplex):
    type = "bandpass"
    time_interval = 0
    freq_interval = 1
    summary = "complex gain per antenna, feed and channel (B)"

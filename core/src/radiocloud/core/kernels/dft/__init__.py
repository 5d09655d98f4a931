"""Direct Fourier transform model prediction: point and Gaussian components to visibilities."""

from radiocloud.core.kernels.dft.kernels import (
    PHASE_SIGN,
    brightness,
    earth_rotation_uvw_rate,
    predict_vis,
)

__all__ = ["PHASE_SIGN", "brightness", "earth_rotation_uvw_rate", "predict_vis"]

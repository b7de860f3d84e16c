"""Energy detection, the original reservoir's example algorithm: kernels and the coarse-channel driver."""
from bl_reservoir.energy_detection._kernels import (
    cleaned_stamps,
    fit_bandpass,
    repair_dc,
    window_starts,
    window_statistics,
)

__all__ = ["cleaned_stamps", "fit_bandpass", "repair_dc", "window_starts", "window_statistics"]

"""Energy detection, the original reservoir's example algorithm: kernels and the coarse-channel driver.

Kernels are pure array functions over one coarse channel; `detect` streams a whole observation;
the C1 script is `python -m bl_reservoir.energy_detection.preprocess_fine`.
"""

from bl_reservoir.energy_detection._kernels import (
    cleaned_stamps,
    fit_bandpass,
    repair_dc,
    window_starts,
    window_statistics,
)
from bl_reservoir.energy_detection.detect import Parameters, best_per_band, detect, detect_block

__all__ = [
    "Parameters",
    "best_per_band",
    "cleaned_stamps",
    "detect",
    "detect_block",
    "fit_bandpass",
    "repair_dc",
    "window_starts",
    "window_statistics",
]

"""The original energy detection's cleaning, written plainly: the anchor that benchmarks/energy_detection.py
times and that tests/energy_detection/test_detect.py checks our kernels against (one copy for both)."""

from __future__ import annotations

import numpy as np
from scipy import interpolate


def plain_clean(data: np.ndarray) -> np.ndarray:
    """DC repair of `data` (in place), then minus the 16-knot splrep fit of its mean spectrum."""
    width = data.shape[1]
    dc = width // 2
    data[:, dc] = (data[:, dc + 1] + data[:, dc - 3]) / 2
    data[:, dc - 1] = (data[:, dc + 2] + data[:, dc - 2]) / 2
    x = np.arange(width)
    spline = interpolate.splrep(x, np.mean(data, axis=0), t=np.arange(0, width, width // 16 + 1)[1:])
    return data - interpolate.splev(x, spline)

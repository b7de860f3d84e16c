"""turboSETI's noise estimate of an integrated spectrum, computed exactly without sorting it.

`np.percentile` partitions a copy of the whole spectrum (~25 ms per 2**20 channels, more than the
refinement of every candidate). Here a sorted sample brackets each percentile, one pass counts
the values below each bracket and gathers those inside, and only the gathered few are
partitioned: the same order statistics, ~5x faster. Where a bracket misses (a pathological
spectrum, NaNs), `np.percentile` runs instead, so the result never depends on the sample.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from bl_reservoir.dedoppler._aot import exported, njit

PERCENTILES = (5.0, 50.0, 95.0)
_SAMPLE = 4096  # values in the sample; a quantile of it is within 0.4% (1 sigma) of the true one at 5%
_MARGIN = 0.02  # half-width of a bracket, as a fraction of the values (5 sigma at 5%)
_SMALL = 2 * _SAMPLE  # below this many values np.percentile runs: the sample would be most of them


@exported("void(float32[::1], float64[::1], float64[::1], int64[::1], float32[:, ::1], int64[::1], int64[::1])")
@njit(cache=True, nogil=True)
def _gather(x: np.ndarray, lows: np.ndarray, highs: np.ndarray, below: np.ndarray, inside: np.ndarray,
            counts: np.ndarray, above: np.ndarray) -> None:
    """Per bracket q: below[q] / above[q] <- how many x < lows[q] / > highs[q]; inside[q] <- the x in
    [lows[q], highs[q]], counts[q] of them (more than inside holds: the bracket was too wide to use).
    NaNs are in none of the three.

    Branch-free (every value is written, the cursor only moves for values inside): the branchy
    form runs at the speed of mispredictions on noise.
    """
    last = inside.shape[1] - 1
    for q in range(lows.shape[0]):
        lo, hi, target = lows[q], highs[q], inside[q]
        n_below, n_inside, n_above, cursor = 0, 0, 0, 0
        for v in x:
            n_below += v < lo
            n_above += v > hi
            keep = (v >= lo) & (v <= hi)
            target[cursor] = v
            n_inside += keep
            cursor = min(cursor + keep, last)
        below[q], counts[q], above[q] = n_below, n_inside, n_above


@exported("float64(float32[::1], float64, float64)")
@njit(cache=True, nogil=True, fastmath=True)
def _central_std(x: np.ndarray, low: float, high: float) -> float:
    """Standard deviation (float64, two passes) of the x in [low, high] (turboSETI keeps both ends); 0 if none are."""
    n, total = 0, 0.0
    for v in x:
        keep = (v >= low) & (v <= high)
        n += keep
        total += v if keep else 0.0
    if n == 0:
        return 0.0
    mean, squares = total / n, 0.0
    for v in x:
        keep = (v >= low) & (v <= high)
        squares += (v - mean) ** 2 if keep else 0.0
    return math.sqrt(squares / n)


def percentiles(x: np.ndarray, qs: tuple[float, ...] = PERCENTILES) -> np.ndarray:
    """`np.percentile(x, qs)` (linear interpolation) of a 1-D array, to float64 rounding."""
    n = x.size
    if n < _SMALL:
        return np.percentile(x, qs)
    sample = np.sort(x[::n // _SAMPLE])
    m, margin = sample.size, int(_MARGIN * sample.size)
    positions = np.asarray(qs, dtype=np.float64) / 100.0 * (n - 1)
    at = np.rint(positions / (n - 1) * (m - 1)).astype(np.int64)
    lows = np.where(at - margin >= 0, sample[np.clip(at - margin, 0, m - 1)], -np.inf)
    highs = np.where(at + margin <= m - 1, sample[np.clip(at + margin, 0, m - 1)], np.inf)
    below = np.zeros(len(qs), dtype=np.int64)
    counts = np.zeros(len(qs), dtype=np.int64)
    above = np.zeros(len(qs), dtype=np.int64)
    inside = np.empty((len(qs), n // 8), dtype=x.dtype)
    _gather(x, lows.astype(np.float64), highs.astype(np.float64), below, inside, counts, above)
    if (below + counts + above != n).any():  # NaNs: numpy's answer (NaN) is the right one
        return np.percentile(x, qs)
    out = np.empty(len(qs), dtype=np.float64)
    for q, pos in enumerate(positions):
        k0 = math.floor(pos)
        k1 = min(k0 + 1, n - 1)
        if not (counts[q] < inside.shape[1] and below[q] <= k0 and k1 < below[q] + counts[q]):
            return np.percentile(x, qs)
        values = inside[q, :counts[q]]
        v0, v1 = np.partition(values, (k0 - below[q], k1 - below[q]))[[k0 - below[q], k1 - below[q]]]
        out[q] = float(v0) + (float(v1) - float(v0)) * (pos - k0)
    return out


def noise_stats(integrated: np.ndarray) -> tuple[float, float]:
    """turboSETI's noise estimate (`comp_stats`): median, and std of the values from the 5th to the 95th percentile
    (both included) of the integrated spectrum."""
    low, median, high = percentiles(integrated)
    std = _central_std(integrated, low, high)
    return float(median), std if std > 0 else 1.0


class CoarseNoise:
    """The noise estimates one coarse channel's search needs, from its integrated spectrum, each computed once
    however many parts of the coarse channel are searched (`_band.bands`)."""

    def __init__(self, integrated: np.ndarray):
        self.integrated = integrated
        self.memo: dict[Any, Any] = {}  # other estimates derived from it (desmearing's, per width)

    @functools.cached_property
    def stats(self) -> tuple[float, float]:
        """`noise_stats` of the coarse channel: median and standard deviation."""
        return noise_stats(self.integrated)

    @functools.cached_property
    def pairs(self) -> tuple[float, float]:
        """`noise_stats` of its pairs of adjacent channels summed (the coarse-to-fine search's first stage)."""
        return noise_stats(self.integrated[0::2] + self.integrated[1::2])

"""One hit per signal, and none for a path that only crosses a stronger signal's track.

A path that crosses a strong signal's track picks up that signal's power in the one or two rows
where it crosses: a few percent of an SNR-300 signal is an SNR-20 "hit" beside it, and paths
starting up to twice the largest drift excursion away can cross it, outside the one-excursion
window that keeps one hit per signal. turboSETI suppresses everything within twice the excursion
instead, which also merges real signals up to 2 kHz apart.

Here, around each hit (strongest first), every weaker channel over the threshold within twice the
excursion whose best path runs on that hit's track in some rows is scored without those rows
(counted at the mean level of a row). Then the one-per-window hit search runs again on those
scores, so a crossing path neither becomes a hit nor hides a real signal near it. A real signal
whose track crosses a stronger one keeps its SNR without the crossing rows, and its hit; its
reported SNR stays that of its whole path.

A hit's track is its path's channel in each row, widened to the contiguous channels around it
where its signal's mean level per row stands above the noise of one row (its width), and never
less than one channel either side (a Taylor path is within one channel of a line).
"""

from __future__ import annotations

import math

import numpy as np

from bl_reservoir.dedoppler._band import Band
from bl_reservoir.dedoppler._hits import hit_search
from bl_reservoir.dedoppler._refine import NO_NORM, uncrossed_sums

#: Channels either side of a track where its width is measured (plus a desmeared sum's width).
PROFILE_HALF_WIDTH = 16


def _track(band: Band, offsets: np.ndarray, pad_value: float, column: int, drift: int, row_sigma: float,
           half: int) -> tuple[np.ndarray, np.ndarray]:
    """The band columns a hit's signal covers in each row, looked for within `half` channels of its path:
    (first, last) per row."""
    path = column + (1 if drift >= 0 else -1) * offsets[abs(drift), :band.n_time].astype(np.int64)
    data, origin = band.data(int(path.min()) - half, int(path.max()) + half + 1)
    d = np.arange(-half, half + 1)
    cols = path[:, None] + d - origin
    inside = (cols >= 0) & (cols < data.shape[1])
    values = np.where(inside, data[np.arange(band.n_time)[:, None], np.clip(cols, 0, data.shape[1] - 1)], pad_value)
    profile = values.mean(axis=0) - pad_value
    lo, hi = half - 1, half + 1
    while lo > 0 and profile[lo - 1] > row_sigma:
        lo -= 1
    while hi < 2 * half and profile[hi + 1] > row_sigma:
        hi += 1
    return path + (lo - half), path + (hi - half)


def one_hit_per_signal(band: Band, snr: np.ndarray, drifts: np.ndarray, offsets: np.ndarray, pad_value: float,
                       median: float, std: float, threshold: float, window: int, desmear_step: int = 0,
                       norm: np.ndarray | None = None) -> np.ndarray:
    """Band columns (ascending) of the hits: `hit_search` over the best SNR per column (`snr`, along the signed
    drift `drifts`), with paths that owe the threshold to crossing a stronger hit's track scored without it."""
    n_time = band.n_time
    row_sigma = std / math.sqrt(n_time)
    widest = offsets.shape[0] // desmear_step + 1 if desmear_step else 0  # a desmeared sum's channels per row
    reach = int(offsets[-1].max()) + widest + 1
    half = PROFILE_HALF_WIDTH + widest  # a smeared signal's track is as wide as its smear
    radius = 2 * window + 2 * half
    scores = snr
    done: set[int] = set()
    while True:
        found = hit_search(scores, threshold, window)
        new = [int(c) for c in found[np.argsort(-scores[found], kind="stable")] if int(c) not in done]
        if not new:
            return found
        if scores is snr:
            scores = snr.copy()
        for hit in new:
            done.add(hit)
            if scores[hit] < threshold:  # scored down meanwhile by a stronger hit it crosses
                continue
            lo, hi = max(0, hit - radius), min(len(scores), hit + radius + 1)
            near = lo + np.flatnonzero((scores[lo:hi] >= threshold) & (scores[lo:hi] < scores[hit]))
            if near.size == 0:
                continue
            first, last = _track(band, offsets, pad_value, hit, int(drifts[hit]), row_sigma, half)
            data, origin = band.data(int(near.min()) - reach, int(near.max()) + reach + 1)
            sums = np.empty(near.size)
            crossed = np.empty(near.size, dtype=np.int64)
            uncrossed_sums(data, pad_value, offsets, near - origin, drifts[near].astype(np.int64), first - origin,
                           last - origin, desmear_step, NO_NORM if norm is None else norm, sums, crossed)
            without = (sums - median) / std
            lower = (crossed > 0) & (without < scores[near])
            scores[near[lower]] = without[lower]

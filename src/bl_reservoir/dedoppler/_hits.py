"""Hit search: one hit per signal from the per-channel best SNR over drifts."""

from __future__ import annotations

import numpy as np

from bl_reservoir.dedoppler._aot import exported, njit


@exported("int64[::1](float32[::1], int64[::1], int64)")
@njit(cache=True, nogil=True)
def _top_hits(snr: np.ndarray, candidates: np.ndarray, window: int) -> np.ndarray:
    keep = np.zeros(candidates.shape[0], dtype=np.bool_)
    width = snr.shape[0]
    for n in range(candidates.shape[0]):
        i = candidates[n]
        ok = True
        for j in range(max(0, i - window), min(width, i + window + 1)):
            # strictly stronger neighbour, or an equal one further left: not the top of its window
            if snr[j] > snr[i] or (snr[j] == snr[i] and j < i):
                ok = False
                break
        keep[n] = ok
    return candidates[keep]


def hit_search(snr: np.ndarray, threshold: float, window: int) -> np.ndarray:
    """Indices (ascending) of channels with `snr >= threshold` that are the strongest within +-`window` channels.

    `snr` is the best SNR over drifts per start channel; `window` is the largest drift excursion
    in channels, so a signal's neighbouring paths never make a second hit.
    """
    snr = np.ascontiguousarray(snr, dtype=np.float32)
    candidates = np.flatnonzero(snr >= threshold)
    if candidates.size == 0:
        return candidates
    return _top_hits(snr, candidates, int(window))

"""Per start channel of a band, the best path sum over drifts and its drift: exhaustively, or coarse-to-fine.

Both strategies end with exact sums along the tree's own paths for the channels that matter, so
they report the same sums. Coarse-to-fine searches pairs of summed channels first (a quarter of the
work) and refines only near its candidates; below `COARSE_TO_FINE_MIN_SNR` the driver searches
exhaustively instead, because there noise peaks (whose coarse drift says nothing about their fine
one) decide which channels are local maxima.
"""

from __future__ import annotations

import os

import numpy as np

from bl_reservoir.dedoppler._band import Band
from bl_reservoir.dedoppler._noise import CoarseNoise
from bl_reservoir.dedoppler._refine import NO_NORM, drift_offsets, refine
from bl_reservoir.dedoppler._taylor import drift_search, fill_padded, join_signs, padded_width, reverse_band

#: A coarse-stage candidate must reach this fraction of --snr (its noise is sqrt(2) larger).
CANDIDATE_FRACTION = 0.55
#: Coarse-to-fine runs at --snr of at least this; below it the search is exhaustive (see docs/dedoppler.md).
COARSE_TO_FINE_MIN_SNR = 10.0
CHUNK = 2048  # columns per tree chunk: buffers of 16 rows stay in L2 (measured best of 512..8192)


def cpu_threads(threads: int) -> int:
    """Threads a search with `threads` uses; 0 counts as numba would (NUMBA_NUM_THREADS, else the cores this
    process may run on), without importing numba."""
    if threads > 0:
        return threads
    if os.environ.get("NUMBA_NUM_THREADS", "").strip():
        return max(1, int(os.environ["NUMBA_NUM_THREADS"]))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def best_sums(band: Band, n_rows: int, max_bins: int, min_bins: int, pad_value: float, factor: int = 1,
              threads: int = 1, gpu: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Exhaustive tree search over drifts of both signs of `band` with every `factor` channels summed:
    per start channel the best path sum, and the signed centre of the drift block holding it, with
    the radius (bins) that block spans."""
    if gpu:
        from bl_reservoir.dedoppler._gpu import best_sums as gpu_best_sums

        return gpu_best_sums(band.window(0, band.width), n_rows, max_bins, min_bins, pad_value, factor)
    width = band.width // factor
    step = max(n_rows - 1, 1)
    padded = np.empty((n_rows, padded_width(width, n_rows, max_bins, CHUNK)), dtype=np.float32)
    best = np.empty(width, dtype=np.float32)
    block_k = np.empty(width, dtype=np.int32)
    threads = cpu_threads(threads)
    fill_padded(band.pieces, padded, factor, pad_value)
    drift_search(padded, width, max_bins, min_bins, best, block_k, CHUNK, threads)
    best_r = np.empty(width, dtype=np.float32)
    block_r = np.empty(width, dtype=np.int32)
    reverse_band(padded, band.n_time, width)  # the negative drifts: the same search, channels reversed
    drift_search(padded, width, max_bins, min_bins, best_r, block_r, CHUNK, threads)
    centre = np.empty(width, dtype=np.int64)
    join_signs(best, block_k, best_r, block_r, step, centre)
    return best, centre, step - step // 2


def exact(band: Band, n_rows: int, pad_value: float, columns: np.ndarray, centres: np.ndarray, radius_cols: int,
          radius_bins: int, min_bins: int, max_bins: int, factor: int = 1, desmear_step: int = 0,
          norm: np.ndarray = NO_NORM) -> tuple[np.ndarray, np.ndarray]:
    """Sums along the tree's own paths near (column, signed drift) pairs, columns of `factor` channels
    summed: best sum and drift per column (-inf where nothing was summed).

    Columns whose paths stay inside the coarse channel proper are summed there; the few near its
    edges in a window of the band around them.
    """
    width = band.width // factor
    best = np.full(width, -np.inf, dtype=np.float32)
    bins = np.zeros(width, dtype=np.int32)
    if not columns.size:
        return best, bins
    offsets = drift_offsets(n_rows, max_bins)
    columns, centres = columns.astype(np.int64), centres.astype(np.int64)
    # fine channels each candidate's paths read: the largest offset, the desmeared width, and a channel spare
    reach = int(offsets[-1].max()) + (max_bins // desmear_step + 1 if desmear_step else 0) + 1
    lo = factor * (columns - radius_cols - reach)
    hi = factor * (columns + radius_cols + 1 + reach)
    inside = (lo >= band.offset) & (hi <= band.offset + band.block.shape[1])
    for group in (inside, ~inside & (lo < band.offset), ~inside & (lo >= band.offset)):
        if not group.any():
            continue
        data, first = band.data(int(lo[group].min()) // factor * factor, int(hi[group].max()))
        start, stop = first // factor, first // factor + data.shape[1] // factor
        refine(data, pad_value, offsets, columns[group] - start, centres[group], radius_cols, radius_bins,
               min_bins, max_bins, best[start:stop], bins[start:stop], factor, desmear_step, norm)
    return best, bins


def exhaustive(band: Band, grid, pad_value: float, params, median: float, std: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Tree sums for every channel; exact sums and drifts for those over the threshold."""
    best, centre, radius = best_sums(band, grid.n_rows, grid.max_bins, grid.min_bins, pad_value,
                                     threads=params.threads, gpu=params.gpu)
    over = np.flatnonzero((best - median) / std >= params.snr)
    sums, bins = exact(band, grid.n_rows, pad_value, over, centre[over], 0, radius, grid.min_bins, grid.max_bins)
    best[over] = sums[over]
    return best, bins


def coarse_to_fine(band: Band, noise: CoarseNoise, grid, pad_value: float, params) -> tuple[np.ndarray, np.ndarray]:
    """Search pairs of summed channels (a quarter of the work), then sum exactly the paths near candidates."""
    max_c, min_c = grid.max_bins // 2 + 1, max(0, grid.min_bins // 2 - 1)
    best_c, centre_c, radius_c = best_sums(band, grid.n_rows, max_c, min_c, 2 * pad_value, factor=2,
                                           threads=params.threads, gpu=params.gpu)
    med_c, std_c = noise.pairs
    cand = np.flatnonzero((best_c - med_c) / std_c >= params.snr * CANDIDATE_FRACTION)
    _, bins_c = exact(band, grid.n_rows, 2 * pad_value, cand, centre_c[cand], 0, radius_c, min_c, max_c, factor=2)
    return exact(band, grid.n_rows, pad_value, 2 * cand, 2 * bins_c[cand], 3, 4, grid.min_bins, grid.max_bins)

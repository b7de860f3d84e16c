"""The de-Doppler search of one observation, streamed one coarse channel at a time.

Per coarse channel: repair the DC spike, estimate the noise of the integrated spectrum, search
every drift 0..+-max (coarse-to-fine by default, or exhaustively), then pick one hit per signal.
"""

from __future__ import annotations

import functools
import gc
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.dedoppler._aot import compiled_module
from bl_reservoir.dedoppler._hits import hit_search
from bl_reservoir.dedoppler._noise import noise_stats
from bl_reservoir.dedoppler._refine import drift_offsets, drift_profile, refine
from bl_reservoir.dedoppler._taylor import (
    drift_search,
    fill_padded,
    join_signs,
    padded_width,
    reverse_band,
)
from bl_reservoir.errors import InvalidObservation

log = logging.getLogger(__name__)

#: Columns of the hits table (units: MHz, Hz/s; `index` is the fine channel in the file).
HIT_COLUMNS = ["index", "freqs", "coarse_channel", "drift_rate", "snr", "freq_start", "freq_end",
               "channel_in_coarse", "drift_bins", "n_candidates"]

#: A coarse-stage candidate must reach this fraction of --snr (its noise is sqrt(2) larger).
CANDIDATE_FRACTION = 0.55
_CHUNK = 2048  # columns per tree chunk: buffers of 16 rows stay in L2 (measured best of 512..8192)
_STAMP_MARGIN = 8
_WARM_UP_WIDTH = 16384  # channels of the warm-up block: wide enough for _noise's numba path at both stages
#: A hit's drift is the centroid of the drifts whose best sum is within this many noise sigmas of the top,
#: looked for within _PLATEAU_BINS drift bins and _PLATEAU_COLS start channels of the strongest path.
PLATEAU_SIGMA = 2.0
_PLATEAU_BINS = 8
_PLATEAU_COLS = 4


@dataclass(frozen=True)
class SearchParameters:
    """What the search was asked for: drifts in Hz/s, SNR threshold, strategy."""

    max_drift: float = 4.0
    min_drift: float = 0.0
    snr: float = 10.0
    blank_dc: bool = True
    exhaustive: bool = False
    # CPU threads: 0 = numba's count (NUMBA_NUM_THREADS, else all cores; the runner sets 1 for a job),
    # 1 = one core (only the JIT fallback's start-up `warm_up` overlaps the first read), N > 1 = N threads for the
    # tree and the next coarse channel read ahead
    threads: int = 0
    gpu: bool = False  # the coarse tree search on a CUDA GPU through cupy (`_gpu`); refinement stays here

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftGrid:
    """Drift bins of one observation: a bin moves one channel over `n_rows - 1` samples."""

    n_time: int
    n_rows: int  # n_time padded to a power of two
    resolution: float  # Hz/s per bin, signed like foff (drift_rate = bins * resolution)
    max_bins: int
    min_bins: int

    @classmethod
    def for_header(cls, header: dict, n_time: int, params: SearchParameters) -> DriftGrid:
        n_rows = 1 << max(0, math.ceil(math.log2(max(n_time, 1))))
        foff_hz = header["foff"] * 1e6
        resolution = foff_hz / (max(n_rows - 1, 1) * header["tsamp"])
        # ceil: the last bin reaches max_drift, so +-max is searched with no gap at the edges
        max_bins = math.ceil(params.max_drift / abs(resolution) - 1e-9)
        min_bins = math.ceil(params.min_drift / abs(resolution) - 1e-9)
        return cls(n_time, n_rows, resolution, max_bins, min(min_bins, max_bins))

    def excursion(self) -> int:
        """Largest drift excursion over the data, in channels."""
        return math.ceil(self.max_bins * (self.n_time - 1) / max(self.n_rows - 1, 1))


def blank_dc(block: np.ndarray) -> None:
    """Replace the centre channel (the DC spike of the coarse-channel FFT) by its neighbours' mean, in place."""
    mid = block.shape[1] // 2
    if 0 < mid < block.shape[1] - 1:
        block[:, mid] = 0.5 * (block[:, mid - 1] + block[:, mid + 1])


def cpu_threads(threads: int) -> int:
    """Threads a search with `threads` uses; 0 counts as numba would (NUMBA_NUM_THREADS, else the cores this
    process may run on), without importing numba."""
    if threads > 0:
        return threads
    if os.environ.get("NUMBA_NUM_THREADS", "").strip():
        return max(1, int(os.environ["NUMBA_NUM_THREADS"]))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _best_sums(block: np.ndarray, n_rows: int, max_bins: int, min_bins: int, pad_value: float,
               factor: int = 1, threads: int = 1, gpu: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Exhaustive tree search over drifts of both signs of `block` with every `factor` channels summed:
    per start channel the best path sum, and the signed centre of the drift block holding it, with
    the radius (bins) that block spans."""
    if gpu:
        from bl_reservoir.dedoppler._gpu import best_sums

        return best_sums(block, n_rows, max_bins, min_bins, pad_value, factor)
    width = block.shape[1] // factor
    step = max(n_rows - 1, 1)
    padded = np.empty((n_rows, padded_width(width, n_rows, max_bins, _CHUNK)), dtype=np.float32)
    best = np.empty(width, dtype=np.float32)
    block_k = np.empty(width, dtype=np.int32)
    threads = cpu_threads(threads)
    fill_padded(block, padded, factor, pad_value)
    drift_search(padded, width, max_bins, min_bins, best, block_k, _CHUNK, threads)
    best_r = np.empty(width, dtype=np.float32)
    block_r = np.empty(width, dtype=np.int32)
    reverse_band(padded, block.shape[0], width)  # the negative drifts: the same search, channels reversed
    drift_search(padded, width, max_bins, min_bins, best_r, block_r, _CHUNK, threads)
    centre = np.empty(width, dtype=np.int64)
    join_signs(best, block_k, best_r, block_r, step, centre)
    return best, centre, step - step // 2


def _exact(block: np.ndarray, n_rows: int, pad_value: float, columns: np.ndarray, centres: np.ndarray,
           radius_cols: int, radius_bins: int, min_bins: int, max_bins: int,
           factor: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Sums along the tree's own paths near (column, signed drift) pairs, columns of `factor` channels
    summed: best sum and drift per column."""
    width = block.shape[1] // factor
    best = np.full(width, -np.inf, dtype=np.float32)
    bins = np.zeros(width, dtype=np.int32)
    if columns.size:
        refine(block, pad_value, drift_offsets(n_rows, max_bins), columns.astype(np.int64),
               centres.astype(np.int64), radius_cols, radius_bins, min_bins, max_bins, best, bins, factor)
    return best, bins


def _exhaustive(block: np.ndarray, grid: DriftGrid, pad_value: float, params: SearchParameters, median: float,
                std: float) -> tuple[np.ndarray, np.ndarray]:
    """Tree sums for every channel; exact sums and drifts for those over the threshold."""
    threshold = params.snr
    best, centre, radius = _best_sums(block, grid.n_rows, grid.max_bins, grid.min_bins, pad_value,
                                      threads=params.threads, gpu=params.gpu)
    over = np.flatnonzero((best - median) / std >= threshold)
    exact, bins = _exact(block, grid.n_rows, pad_value, over, centre[over], 0, radius,
                         grid.min_bins, grid.max_bins)
    best[over] = exact[over]
    return best, bins


def _coarse_to_fine(block: np.ndarray, integrated: np.ndarray, grid: DriftGrid, pad_value: float,
                    params: SearchParameters) -> tuple[np.ndarray, np.ndarray]:
    """Search pairs of summed channels (a quarter of the work), then sum exactly the paths near candidates."""
    threshold = params.snr
    max_c, min_c = grid.max_bins // 2 + 1, max(0, grid.min_bins // 2 - 1)
    best_c, centre_c, radius_c = _best_sums(block, grid.n_rows, max_c, min_c, 2 * pad_value, factor=2,
                                            threads=params.threads, gpu=params.gpu)
    med_c, std_c = noise_stats(integrated[0::2] + integrated[1::2])
    cand = np.flatnonzero((best_c - med_c) / std_c >= threshold * CANDIDATE_FRACTION)
    _, bins_c = _exact(block, grid.n_rows, 2 * pad_value, cand, centre_c[cand], 0, radius_c, min_c, max_c, factor=2)
    return _exact(block, grid.n_rows, pad_value, 2 * cand, 2 * bins_c[cand], 3, 4, grid.min_bins, grid.max_bins)


def search_block(block: np.ndarray, header: dict, grid: DriftGrid, params: SearchParameters,
                 coarse_channel: int, first_channel: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Hits of one coarse channel (n_time, W) and their stamps (n_hits, n_time, stamp width).

    `first_channel` is the file index of the block's first channel. `block` is modified (DC repair).
    """
    n_time, width = block.shape
    if params.blank_dc:
        blank_dc(block)
    integrated = block.sum(axis=0)  # float32: 16-64 terms lose nothing that matters, and it is 4x faster
    median, std = noise_stats(integrated)
    pad_value = median / n_time
    stamp_width = 2 * (grid.excursion() + _STAMP_MARGIN) + 1
    empty = pd.DataFrame(columns=HIT_COLUMNS), np.zeros((0, n_time, stamp_width), dtype=np.float32)
    if (float(block.max()) * n_time - median) / std < params.snr:
        return empty  # not even a path of the brightest sample everywhere could make a hit
    if params.exhaustive or width % 2:
        best, bins = _exhaustive(block, grid, pad_value, params, median, std)
    else:
        best, bins = _coarse_to_fine(block, integrated, grid, pad_value, params)
    snr = (best - median) / std
    n_candidates = int(np.count_nonzero(snr >= params.snr))
    found = hit_search(snr, params.snr, grid.excursion())
    if found.size == 0:
        return empty
    snr_found = snr[found].astype(np.float64)  # the detection statistic: the strongest path's SNR
    found, hit_bins = _centre_drifts(block, grid, pad_value, std, found, bins[found])
    drift = hit_bins * grid.resolution
    freqs = header["fch1"] + header["foff"] * (first_channel + found)
    duration = (n_time - 1) * header["tsamp"]
    hits = pd.DataFrame({
        "index": first_channel + found,
        "freqs": freqs,
        "coarse_channel": coarse_channel,
        "drift_rate": drift,
        "snr": snr_found,
        "freq_start": freqs,
        "freq_end": freqs + drift * duration * 1e-6,
        "channel_in_coarse": found,
        "drift_bins": hit_bins,
        "n_candidates": n_candidates,
    }, columns=HIT_COLUMNS)
    return hits, _stamps(block, found, stamp_width, pad_value)


def _centre_drifts(block: np.ndarray, grid: DriftGrid, pad_value: float, std: float, columns: np.ndarray,
                   drifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each hit's drift moved to the centre of its plateau: start column and drift bins per hit.

    A signal several channels wide sums almost the same along a few neighbouring drifts (each with
    its own start column), so the single largest sum lands anywhere on that plateau by noise. The
    centroid of the neighbouring drifts within PLATEAU_SIGMA noise sigmas of the top is the better
    estimate; for a narrow signal the plateau is one drift and nothing moves.
    """
    offsets = drift_offsets(grid.n_rows, grid.max_bins)
    out_cols, out_bins = columns.copy(), drifts.astype(np.int64)
    profile = np.empty(2 * _PLATEAU_BINS + 1, dtype=np.float64)
    profile_cols = np.empty(profile.size, dtype=np.int64)
    for n, (col, drift) in enumerate(zip(columns.tolist(), out_bins.tolist())):
        drift_profile(block, pad_value, offsets, col, drift, _PLATEAU_COLS, grid.min_bins, grid.max_bins,
                      profile, profile_cols)
        out_cols[n], out_bins[n] = _plateau_centre(profile, profile_cols, PLATEAU_SIGMA * std, drift - _PLATEAU_BINS)
    return out_cols, out_bins


def _plateau_centre(profile: np.ndarray, columns: np.ndarray, depth: float, first_drift: int) -> tuple[int, int]:
    """Start column and drift at the centroid of the drifts within `depth` of the top of `profile`,
    among the searched drifts on the top's side of any gap (drifts below --min-drift are -inf)."""
    top = int(np.argmax(profile))
    lo, hi = top, top
    while lo > 0 and np.isfinite(profile[lo - 1]):
        lo -= 1
    while hi < profile.size - 1 and np.isfinite(profile[hi + 1]):
        hi += 1
    weight = np.clip(profile[lo:hi + 1] - (profile[top] - depth), 0.0, None)
    centre = lo + int(np.rint(weight @ np.arange(hi - lo + 1) / weight.sum()))
    return int(columns[centre]), first_drift + centre


def _stamps(block: np.ndarray, centres: np.ndarray, stamp_width: int, pad_value: float) -> np.ndarray:
    half = stamp_width // 2
    width = block.shape[1]
    out = np.full((len(centres), block.shape[0], stamp_width), pad_value, dtype=np.float32)
    for n, c in enumerate(centres):
        lo, hi = max(0, c - half), min(width, c + half + 1)
        out[n, :, lo - (c - half):hi - (c - half)] = block[:, lo:hi]
    return out


@functools.cache
def warm_up(grid: DriftGrid, params: SearchParameters) -> None:
    """Load every kernel before the first coarse channel is searched (once per process and kind of search).

    The ahead-of-time module (`_aot`) is an import of ~1 ms, built first if this machine has none. On
    the JIT fallback, and for the GPU, a small synthetic block holding one signal is searched with
    the cyclic GC paused: numba's first dispatch builds its typing registries (~0.5 s, once per
    process), hundreds of thousands of long-lived objects that the cyclic GC would otherwise walk
    again and again (another 0.2 s). They are frozen out of later collections instead, on the first
    warm-up of the process. Run in a thread, this overlaps the first read.
    """
    if compiled_module() is not None and not params.gpu:
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        block = np.random.default_rng(0).normal(10.0, 1.0, (grid.n_time, _WARM_UP_WIDTH)).astype(np.float32)
        rows = np.arange(grid.n_time)
        block[rows, _WARM_UP_WIDTH // 4 + rows] += 100.0
        search_block(block, {"fch1": 1000.0, "foff": -1e-6, "tsamp": 1.0}, grid, params, 0, 0)
    finally:
        _freeze_once()
        if was_enabled:
            gc.enable()


@functools.cache
def _freeze_once() -> None:
    """Move every object alive now (numba's registries) out of the GC's reach, once per process: later
    freezes would also pin whatever garbage a long-running caller has pending."""
    gc.freeze()


def search_observation(obs, params: SearchParameters) -> tuple[pd.DataFrame, np.ndarray, DriftGrid]:
    """Search every coarse channel of an open `Observation`; return hits, stamps and the drift grid."""
    if obs.n_time < 2:
        raise InvalidObservation(obs.path, f"{obs.n_time} spectrum: a drift search needs at least 2")
    grid = DriftGrid.for_header(obs.header, obs.n_time, params)
    log.info("%s: %d coarse channels, drift resolution %.6f Hz/s, %d bins each sign",
             obs.path, obs.n_coarse_channels, abs(grid.resolution), grid.max_bins)
    frames, stamps = [], []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-up") as pool:
        warm = pool.submit(warm_up, grid, params)
        for cc, block in obs.iter_coarse_channels(read_ahead=cpu_threads(params.threads) > 1):
            warm.result()
            start, _ = obs.coarse_channel_bounds(cc)
            hits, stamp = search_block(block, obs.header, grid, params, cc, start)
            log.info("%s: coarse channel %d: %d hits", obs.path, cc, len(hits))
            if len(hits):
                frames.append(hits)
                stamps.append(stamp)
            del block
    if frames:
        hits = pd.concat(frames, ignore_index=True)
        return hits, np.concatenate(stamps), grid
    stamp_width = 2 * (grid.excursion() + _STAMP_MARGIN) + 1
    return (pd.DataFrame({c: pd.Series(dtype="float64" if c not in ("index", "coarse_channel") else "int64")
                          for c in HIT_COLUMNS}),
            np.zeros((0, obs.n_time, stamp_width), dtype=np.float32), grid)

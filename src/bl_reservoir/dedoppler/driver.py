"""The de-Doppler search of one observation, streamed one coarse channel at a time.

Per coarse channel: estimate the noise of the integrated spectrum, repair the DC spike, search every
drift 0..+-max over the coarse channel and its neighbours' nearest channels (`_band`), exhaustively
or coarse-to-fine (`_sums`) or desmeared (`_desmear`), pick one hit per signal, drop paths that
only cross a stronger hit's track (`_crossing`), keep the hits that start in the coarse channel
proper, and move each to the centre of its drift plateau (`_plateau`).
"""

from __future__ import annotations

import functools
import gc
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.dedoppler._aot import compiled_module
from bl_reservoir.dedoppler._band import Band, bands, blank_dc, prepare, prepared
from bl_reservoir.dedoppler._crossing import one_hit_per_signal
from bl_reservoir.dedoppler._desmear import desmeared_sums
from bl_reservoir.dedoppler._noise import CoarseNoise
from bl_reservoir.dedoppler._plateau import centre_drifts
from bl_reservoir.dedoppler._refine import NO_NORM, drift_offsets
from bl_reservoir.dedoppler._sums import COARSE_TO_FINE_MIN_SNR, coarse_to_fine, cpu_threads, exhaustive
from bl_reservoir.errors import InvalidObservation, UsageError

log = logging.getLogger(__name__)

__all__ = ["HIT_COLUMNS", "DriftGrid", "SearchParameters", "blank_dc", "cpu_threads", "search_block",
           "search_observation", "warm_up"]

#: Columns of the hits table (units: MHz, Hz/s; `index` is the fine channel in the file).
HIT_COLUMNS = ["index", "freqs", "coarse_channel", "drift_rate", "snr", "freq_start", "freq_end",
               "channel_in_coarse", "drift_bins", "n_candidates"]

_STAMP_MARGIN = 8
_WARM_UP_WIDTH = 16384  # channels of the warm-up block: wide enough for _noise's numba path at both stages


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
    desmear: bool = False  # drifts over one channel per integration sum the channels crossed in it (`_desmear`)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftGrid:
    """Drift bins of one observation: a bin moves one channel over `n_rows - 1` samples."""

    n_time: int
    n_rows: int  # n_time padded to a power of two
    resolution: float  # Hz/s per bin, signed like foff (drift_rate = bins * resolution)
    max_bins: int  # the last bin searched: the first at or past max_drift, so a signal at +-max loses nothing
    min_bins: int  # the first bin searched and reported: at or past min_drift
    last_bins: int  # the last bin reported: at or below max_drift (a hit found past it is reported there)

    @classmethod
    def for_header(cls, header: dict, n_time: int, params: SearchParameters) -> DriftGrid:
        """Bins searched from `min_drift` to just past `max_drift`, reported from `min_drift` to `max_drift`, both
        included (`min_bins` is above `last_bins` when no bin lies between them)."""
        n_rows = 1 << max(0, math.ceil(math.log2(max(n_time, 1))))
        foff_hz = header["foff"] * 1e6
        resolution = foff_hz / (max(n_rows - 1, 1) * header["tsamp"])
        max_bins = math.ceil(params.max_drift / abs(resolution) - 1e-9)
        last_bins = math.floor(params.max_drift / abs(resolution) + 1e-9)
        min_bins = math.ceil(params.min_drift / abs(resolution) - 1e-9)
        return cls(n_time, n_rows, resolution, max_bins, min(min_bins, max_bins), last_bins)

    def excursion(self) -> int:
        """Largest drift excursion over the data, in channels."""
        return math.ceil(self.max_bins * (self.n_time - 1) / max(self.n_rows - 1, 1))

    @property
    def step(self) -> int:
        """Drift bins per drift block of the tree: a block moves one more channel per row."""
        return max(self.n_rows - 1, 1)

    def margin(self, desmear: bool) -> int:
        """Channels of each neighbouring coarse channel searched with a coarse channel (even, so that pairs of
        channels line up): twice the excursion, so that every path and hit window of its own channels reads what
        a search of the whole band would."""
        widest = self.max_bins // self.step + 1 if desmear else 0
        return 2 * (self.excursion() + widest)


def search_block(block: np.ndarray, header: dict, grid: DriftGrid, params: SearchParameters,
                 coarse_channel: int, first_channel: int, left: np.ndarray | None = None,
                 right: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Hits of one coarse channel (n_time, W) and their stamps (n_hits, n_time, stamp width).

    `first_channel` is the file index of the block's first channel; `left` and `right` are the
    channels just below and above it (already DC-repaired), if any. `block` is modified (DC repair).
    """
    noise = prepare(block, params.blank_dc)
    band = Band.alone(block)
    if left is not None or right is not None:
        empty = band.left
        band = Band(block, empty if left is None else np.ascontiguousarray(left, dtype=np.float32),
                    empty if right is None else np.ascontiguousarray(right, dtype=np.float32))
    return search_band(band, noise, header, grid, params, coarse_channel, first_channel)[:2]


def search_band(band: Band, noise: CoarseNoise, header: dict, grid: DriftGrid, params: SearchParameters,
                coarse_channel: int, first_channel: int, in_coarse: int = 0
                ) -> tuple[pd.DataFrame, np.ndarray, int]:
    """`search_block` on a prepared band (its `own` hits); `noise` is its coarse channel's, `first_channel` the
    file channel of `band.block`'s first and `in_coarse` its channel in the coarse channel. Also returns how many
    of its own channels reach the threshold."""
    n_time, width = band.n_time, band.block.shape[1]
    coarse_width = noise.integrated.shape[0]
    median, std = noise.stats
    pad_value = median / n_time
    stamp_width = 2 * (grid.excursion() + _STAMP_MARGIN) + 1
    empty = pd.DataFrame(columns=HIT_COLUMNS), np.zeros((0, n_time, stamp_width), dtype=np.float32), 0
    if not params.desmear and (band.max() * n_time - median) / std < params.snr:
        return empty  # not even a path of the brightest sample everywhere could make a hit
    desmear_step, norm = 0, NO_NORM
    if params.desmear:
        best, bins, norm = desmeared_sums(band, noise, grid, pad_value, params)
        desmear_step = grid.step
    elif params.exhaustive or width % 2 or params.snr < COARSE_TO_FINE_MIN_SNR:
        best, bins = exhaustive(band, grid, pad_value, params, median, std)
    else:
        best, bins = coarse_to_fine(band, noise, grid, pad_value, params)
    snr = (best - median) / std
    own = band.own
    n_candidates = int(np.count_nonzero(snr[own] >= params.snr))
    found = one_hit_per_signal(band, snr, bins, drift_offsets(grid.n_rows, grid.max_bins), pad_value, median, std,
                               params.snr, grid.excursion(), desmear_step, norm)
    found = found[(found >= own.start) & (found < own.stop)]  # a hit belongs to where its strongest path starts
    if found.size == 0:
        return *empty[:2], n_candidates
    snr_found = snr[found].astype(np.float64)  # the detection statistic: the strongest path's SNR
    columns, hit_bins = centre_drifts(band, grid, pad_value, std, found, bins[found], desmear_step, norm,
                                      median + params.snr * std)
    channel = np.clip(columns - band.offset + in_coarse, 0, coarse_width - 1)  # in the coarse channel
    drift = hit_bins * grid.resolution
    freqs = header["fch1"] + header["foff"] * (first_channel - in_coarse + channel)
    duration = (n_time - 1) * header["tsamp"]
    hits = pd.DataFrame({
        "index": first_channel - in_coarse + channel,
        "freqs": freqs,
        "coarse_channel": coarse_channel,
        "drift_rate": drift,
        "snr": snr_found,
        "freq_start": freqs,
        "freq_end": freqs + drift * duration * 1e-6,
        "channel_in_coarse": channel,
        "drift_bins": hit_bins,
        "n_candidates": n_candidates,
    }, columns=HIT_COLUMNS)
    return hits, _stamps(band, channel - in_coarse + band.offset, stamp_width, pad_value), n_candidates


def _stamps(band: Band, centres: np.ndarray, stamp_width: int, pad_value: float) -> np.ndarray:
    """The data around each hit's band column, `pad_value` past the file's edges."""
    half = stamp_width // 2
    out = np.full((len(centres), band.n_time, stamp_width), pad_value, dtype=np.float32)
    for n, c in enumerate(centres.tolist()):
        lo = max(0, c - half)
        window = band.window(lo, c + half + 1)
        out[n, :, lo - (c - half):lo - (c - half) + window.shape[1]] = window
    return out


def _coarse_channel_hits(path: str, parts: list[tuple[int, pd.DataFrame, int]]) -> pd.DataFrame:
    """The hits of one coarse channel's parts, each counting the candidates of the whole coarse channel."""
    frames = [hits for _, hits, _ in parts if len(hits)]
    hits = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HIT_COLUMNS)
    hits["n_candidates"] = sum(n for _, _, n in parts)
    log.info("%s: coarse channel %d: %d hits", path, parts[0][0], len(hits))
    return hits


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
    resolution = abs(grid.resolution)
    if grid.min_bins > grid.last_bins:
        raise UsageError(f"{obs.path}: no drift of its grid lies in --min-drift {params.min_drift} .. --max-drift "
                         f"{params.max_drift} Hz/s (drifts are multiples of {resolution:.6f} Hz/s)")
    if grid.excursion() > obs.coarse_channel_width:  # the drift grid's buffers grow with it: refuse, not run out
        raise UsageError(f"{obs.path}: --max-drift {params.max_drift} Hz/s carries a signal {grid.excursion()} "
                         f"channels over the observation, more than a coarse channel ({obs.coarse_channel_width})")
    log.info("%s: %d coarse channels, drift resolution %.6f Hz/s, %d bins each sign",
             obs.path, obs.n_coarse_channels, resolution, grid.max_bins)
    frames, stamps, parts = [], [], []
    read_ahead = cpu_threads(params.threads) > 1
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-up") as pool:
        warm = pool.submit(warm_up, grid, params)
        channels = prepared(obs, read_ahead, params.blank_dc)
        for cc, noise, band, in_coarse in bands(channels, grid.margin(params.desmear)):
            warm.result()
            if in_coarse == 0 and parts:  # a new coarse channel: the previous one is done
                frames.append(_coarse_channel_hits(obs.path, parts))
                parts = []
            start, _ = obs.coarse_channel_bounds(cc)
            hits, stamp, n_candidates = search_band(band, noise, obs.header, grid, params, cc, start + in_coarse,
                                                    in_coarse)
            parts.append((cc, hits, n_candidates))
            stamps.append(stamp)
            del band
        if parts:
            frames.append(_coarse_channel_hits(obs.path, parts))
    frames = [f for f in frames if len(f)]
    if frames:
        hits = pd.concat(frames, ignore_index=True)
        return hits, np.concatenate(stamps), grid
    stamp_width = 2 * (grid.excursion() + _STAMP_MARGIN) + 1
    return (pd.DataFrame({c: pd.Series(dtype="float64" if c not in ("index", "coarse_channel") else "int64")
                          for c in HIT_COLUMNS}),
            np.zeros((0, obs.n_time, stamp_width), dtype=np.float32), grid)

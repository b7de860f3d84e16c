"""Desmeared drift search (`--desmear`): rows may also sum the channels the signal crosses in an integration.

A signal drifting r channels per integration spreads its power over about r channels of each
spectrum (Doppler smearing: real data, and setigen with `doppler_smearing`), so a path summing one
channel per row collects only 1/r of it. As hyperseti and bliss do, drifts of r >= 1 channel per
integration also sum `floor(r) + 1` channels per row, from the path's channel in the drift's
direction: drift block b of the tree (pre-shift b channels per row, drifts b..b+1 channels per
row) is searched again on the spectra boxcar-summed over b + 1 channels. Each width's sums are put
on the one-channel scale through its own noise estimate (turboSETI's, on the boxcar-summed
integrated spectrum), and a path's value is the larger of its one-channel and its desmeared sum:
a smeared signal gains, an unsmeared one keeps what it had (its start channel and drift are not
blurred over the boxcar), and everything after the tree (exact sums, hits, plateau, crossings)
runs unchanged on those values.

It costs the exhaustive search plus a tree pass per drift block over spectra summed anew for each
width: several times the exhaustive search.
"""

from __future__ import annotations

import numpy as np

from bl_reservoir.dedoppler._aot import exported, njit
from bl_reservoir.dedoppler._band import Band
from bl_reservoir.dedoppler._noise import CoarseNoise, noise_stats
from bl_reservoir.dedoppler._sums import CHUNK, best_sums, cpu_threads, exact
from bl_reservoir.dedoppler._taylor import drift_search, join_signs, padded_width


@exported("void(float32[:, ::1], float32[:, ::1], int64, float64, int64)")
@njit(cache=True, nogil=True)
def boxcar_rows(raw: np.ndarray, padded: np.ndarray, width_sum: int, pad_value: float, mirrored: int) -> None:
    """Rows 0..n_time-1 of `padded` <- each `width_sum` adjacent channels of `raw` (n_time, W) summed, from each
    channel upward (of the channel-reversed rows when `mirrored`); channels past the band count `pad_value`."""
    n_time, width = raw.shape
    for i in range(n_time):
        row, out = raw[i], padded[i]
        if width_sum == 1:
            for c in range(width):
                out[c] = row[width - 1 - c] if mirrored else row[c]
        else:
            run = 0.0
            for u in range(min(width_sum, width)):
                run += row[width - 1 - u] if mirrored else row[u]
            run += max(width_sum - width, 0) * pad_value
            for c in range(width):
                out[c] = run
                x = c + width_sum
                run += (row[width - 1 - x] if mirrored else row[x]) if x < width else pad_value
                run -= row[width - 1 - c] if mirrored else row[c]
        for c in range(width, out.shape[0]):
            out[c] = width_sum * pad_value


def norm_table(integrated: np.ndarray, median: float, std: float, max_width: int) -> np.ndarray:
    """float64 (max_width + 1, 2): per boxcar width w, (offset, scale) with offset + scale * sum the one-channel
    sum of the same SNR, from turboSETI's noise estimate of the integrated spectrum summed over w channels."""
    table = np.zeros((max_width + 1, 2))
    table[:, 1] = 1.0
    cumulative = np.concatenate(([0.0], np.cumsum(integrated, dtype=np.float64)))
    for w in range(2, max_width + 1):
        med_w, std_w = noise_stats((cumulative[w:] - cumulative[:-w]).astype(np.float32))
        table[w] = (median - med_w * std / std_w, std / std_w)
    return table


def desmeared_sums(band: Band, noise: CoarseNoise, grid, pad_value: float, params
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per band column the best path value over drifts, each the larger of its one-channel sum and its desmeared
    sum on the one-channel scale, and its drift, exact over the threshold; and the normalisation table."""
    step = grid.step
    median, std = noise.stats
    widest = grid.max_bins // step + 1
    if ("norm", widest) not in noise.memo:  # once per coarse channel, not per part
        noise.memo["norm", widest] = norm_table(noise.integrated, median, std, widest)
    norm = noise.memo["norm", widest]
    best, centre, radius = best_sums(band, grid.n_rows, grid.max_bins, grid.min_bins, pad_value,
                                     threads=params.threads)
    raw = band.window(0, band.width)
    width = band.width
    padded = np.zeros((grid.n_rows, padded_width(width, grid.n_rows, grid.max_bins, CHUNK)), dtype=np.float32)
    found = (np.empty(width, dtype=np.float32), np.empty(width, dtype=np.int32))
    mirrored = (np.empty(width, dtype=np.float32), np.empty(width, dtype=np.int32))
    block_centre = np.empty(width, dtype=np.int64)
    threads = cpu_threads(params.threads)
    for b in range(1, grid.max_bins // step + 1):  # block 0 (under a channel per spectrum) sums one channel
        lo, hi = max(grid.min_bins, b * step), min(grid.max_bins, b * step + step - 1)
        if lo > hi:
            continue
        for sums, flip in ((found, 0), (mirrored, 1)):
            boxcar_rows(raw, padded, b + 1, pad_value, flip)
            drift_search(padded, width, hi, lo, sums[0], sums[1], CHUNK, threads)
        join_signs(found[0], found[1], mirrored[0], mirrored[1], step, block_centre)
        scaled = (norm[b + 1, 0] + norm[b + 1, 1] * found[0].astype(np.float64)).astype(np.float32)
        wins = scaled > best
        best[wins] = scaled[wins]
        centre[wins] = block_centre[wins]
    over = np.flatnonzero((best - median) / std >= params.snr)
    sums, bins = exact(band, grid.n_rows, pad_value, over, centre[over], 0, radius, grid.min_bins, grid.max_bins,
                       desmear_step=step, norm=norm)
    best[over] = sums[over]
    return best, bins, norm

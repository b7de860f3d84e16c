"""Exact path sums for a few (channel, drift) pairs: the second stage of the coarse-to-fine search.

`drift_offsets` gives the channel offset at each row of the path that `drift_search` sums for a
drift of t bins (block pre-shift plus Taylor path), so a refined sum equals the tree's value up
to float rounding, and the coarse-to-fine search reports what the exhaustive one would.

Desmeared sums (`--desmear`): with `desmear_step` > 0, a drift of |t| bins also sums in each row
the `w = |t| // desmear_step + 1` channels the signal crosses during that integration, from the
path's channel in the drift's direction; `norm[w]` = (offset, scale) maps a sum of width w onto
the scale of one-channel sums (same SNR), and the larger of the two is the path's value.
"""

from __future__ import annotations

import numpy as np

from bl_reservoir.dedoppler._aot import exported, njit
from bl_reservoir.dedoppler._taylor import taylor_path

#: `norm` argument of the kernels when nothing is desmeared.
NO_NORM = np.array([[0.0, 1.0], [0.0, 1.0]])


def drift_offsets(n_rows: int, max_bins: int) -> np.ndarray:
    """int32 (max_bins + 1, n_rows): row offsets (channels) of the searched path of each drift 0..max_bins."""
    step = max(n_rows - 1, 1)
    tree = taylor_path(n_rows)
    bins = np.arange(max_bins + 1)
    rows = np.arange(n_rows)
    return ((bins // step)[:, None] * rows[None, :] + tree[bins % step]).astype(np.int32)


@njit(cache=True, nogil=True)
def smear_width(t: int, desmear_step: int) -> int:
    """Channels summed per row along a drift of t bins: 1, or with desmearing those crossed in one integration."""
    return abs(t) // desmear_step + 1 if desmear_step > 0 else 1


@njit(cache=True, nogil=True)
def _path_sums(data: np.ndarray, pad_value: float, offsets: np.ndarray, first_col: int, t: int,
               factor: int, acc: np.ndarray) -> None:
    """`acc[k]` <- the sum along drift t (signed bins) from start column first_col + k, for every k of acc."""
    n_time = data.shape[0]
    width = data.shape[1] // factor
    n_cols = acc.shape[0]
    mag = abs(t)
    sign = 1 if t >= 0 else -1
    for k in range(n_cols):
        acc[k] = 0.0
    for i in range(n_time):  # the n_cols paths side by side: contiguous reads per row
        base = first_col + sign * offsets[mag, i]
        if base >= 0 and base + n_cols <= width:
            if factor == 1:
                for k in range(n_cols):
                    acc[k] += data[i, base + k]
            elif factor == 2:
                for k in range(n_cols):
                    acc[k] += data[i, 2 * (base + k)] + data[i, 2 * (base + k) + 1]
            else:
                for k in range(n_cols):
                    for u in range(factor * (base + k), factor * (base + k + 1)):
                        acc[k] += data[i, u]
        else:
            for k in range(n_cols):
                c = base + k
                if 0 <= c < width:
                    for u in range(factor * c, factor * (c + 1)):
                        acc[k] += data[i, u]
                else:
                    acc[k] += pad_value


@njit(cache=True, nogil=True)
def _boxcar_sums(data: np.ndarray, pad_value: float, offsets: np.ndarray, first_col: int, t: int, acc: np.ndarray,
                 width_sum: int) -> None:
    """`_path_sums` (one channel per column) with each row adding `width_sum` channels from the path's channel
    in the drift's direction."""
    width = data.shape[1]
    n_cols = acc.shape[0]
    sign = 1 if t >= 0 else -1
    for k in range(n_cols):
        acc[k] = 0.0
    for i in range(data.shape[0]):
        lo = first_col + sign * offsets[abs(t), i] - (width_sum - 1 if sign < 0 else 0)
        if lo >= 0 and lo + n_cols + width_sum - 1 <= width:
            run = 0.0
            for u in range(width_sum):
                run += data[i, lo + u]
            for k in range(n_cols):
                acc[k] += run
                if k + 1 < n_cols:
                    run += data[i, lo + k + width_sum] - data[i, lo + k]
        else:
            for k in range(n_cols):
                for u in range(lo + k, lo + k + width_sum):
                    acc[k] += data[i, u] if 0 <= u < width else pad_value


@njit(cache=True, nogil=True)
def _desmeared_sums(data: np.ndarray, pad_value: float, offsets: np.ndarray, first_col: int, t: int,
                    acc: np.ndarray, desmear_step: int, norm: np.ndarray, scratch: np.ndarray) -> None:
    """Per column of `acc` the larger of the one-channel sum and the desmeared sum on its scale (`norm`)."""
    _path_sums(data, pad_value, offsets, first_col, t, 1, acc)
    width_sum = smear_width(t, desmear_step)
    if width_sum > 1:
        _boxcar_sums(data, pad_value, offsets, first_col, t, scratch, width_sum)
        for k in range(acc.shape[0]):
            acc[k] = max(acc[k], norm[width_sum, 0] + norm[width_sum, 1] * scratch[k])


@exported("void(float32[:, ::1], float64, int32[:, ::1], int64[::1], int64[::1], int64, int64, int64, int64, "
          "float32[::1], int32[::1], int64, int64, float64[:, ::1])")
@njit(cache=True, nogil=True)
def refine(data: np.ndarray, pad_value: float, offsets: np.ndarray, columns: np.ndarray,
           drifts: np.ndarray, radius_cols: int, radius_bins: int, min_bins: int, max_bins: int,
           best: np.ndarray, best_bins: np.ndarray, factor: int = 1, desmear_step: int = 0,
           norm: np.ndarray = NO_NORM) -> None:
    """For each candidate (columns[n], drifts[n] signed bins), sum every path within the radii.

    Signed drifts `t` with `min_bins <= |t| <= max_bins` follow `offsets[|t|]`, mirrored for
    t < 0. `data` is (n_time, W); a column is `factor` adjacent channels summed (so the coarse
    stage needs no summed copy), rows past n_time count as zero, columns outside the band as
    `pad_value`. Keeps the largest sum per start column in `best` / `best_bins` (signed bins).
    `desmear_step` and `norm`: see the module docstring (factor 1 only).
    """
    width = data.shape[1] // factor
    acc = np.empty(2 * radius_cols + 1, dtype=np.float64)
    scratch = np.empty_like(acc)
    for n in range(columns.shape[0]):
        first_col = columns[n] - radius_cols
        for t in range(drifts[n] - radius_bins, drifts[n] + radius_bins + 1):
            if min_bins <= abs(t) <= max_bins:
                if desmear_step > 0:
                    _desmeared_sums(data, pad_value, offsets, first_col, t, acc, desmear_step, norm, scratch)
                else:
                    _path_sums(data, pad_value, offsets, first_col, t, factor, acc)
                for k in range(acc.shape[0]):
                    col = first_col + k
                    if 0 <= col < width and acc[k] > best[col]:
                        best[col] = acc[k]
                        best_bins[col] = t


@exported("void(float32[:, ::1], float64, int32[:, ::1], int64, int64, int64, int64, int64, float64[::1], "
          "int64[::1], int64, float64[:, ::1])")
@njit(cache=True, nogil=True)
def drift_profile(data: np.ndarray, pad_value: float, offsets: np.ndarray, column: int, drift: int,
                  radius_cols: int, min_bins: int, max_bins: int, best: np.ndarray, best_cols: np.ndarray,
                  desmear_step: int = 0, norm: np.ndarray = NO_NORM) -> None:
    """For drifts t = drift - R .. drift + R (R = len(best) // 2): the largest sum along t over start
    columns within `radius_cols` of `column`, and that column; -inf for drifts outside min..max."""
    width = data.shape[1]
    radius_bins = best.shape[0] // 2
    acc = np.empty(2 * radius_cols + 1, dtype=np.float64)
    scratch = np.empty_like(acc)
    for n in range(best.shape[0]):
        t = drift - radius_bins + n
        best[n] = -np.inf
        best_cols[n] = column
        if min_bins <= abs(t) <= max_bins:
            if desmear_step > 0:
                _desmeared_sums(data, pad_value, offsets, column - radius_cols, t, acc, desmear_step, norm, scratch)
            else:
                _path_sums(data, pad_value, offsets, column - radius_cols, t, 1, acc)
            for k in range(acc.shape[0]):
                col = column - radius_cols + k
                if 0 <= col < width and acc[k] > best[n]:
                    best[n] = acc[k]
                    best_cols[n] = col


@njit(cache=True, nogil=True)
def _uncrossed(data: np.ndarray, pad_value: float, offsets: np.ndarray, column: int, t: int, width_sum: int,
               track_lo: np.ndarray, track_hi: np.ndarray) -> tuple[float, int]:
    """Sum along drift t from `column`, `width_sum` channels per row, with each row whose channels meet the track
    counted as `pad_value` per channel; and how many rows did."""
    width = data.shape[1]
    sign = 1 if t >= 0 else -1
    total, count = 0.0, 0
    for i in range(data.shape[0]):
        lo = column + sign * offsets[abs(t), i] - (width_sum - 1 if sign < 0 else 0)
        if lo <= track_hi[i] and lo + width_sum - 1 >= track_lo[i]:
            count += 1
            total += width_sum * pad_value
        else:
            for u in range(lo, lo + width_sum):
                total += data[i, u] if 0 <= u < width else pad_value
    return total, count


@exported("void(float32[:, ::1], float64, int32[:, ::1], int64[::1], int64[::1], int64[::1], int64[::1], int64, "
          "float64[:, ::1], float64[::1], int64[::1])")
@njit(cache=True, nogil=True)
def uncrossed_sums(data: np.ndarray, pad_value: float, offsets: np.ndarray, columns: np.ndarray, drifts: np.ndarray,
                   track_lo: np.ndarray, track_hi: np.ndarray, desmear_step: int, norm: np.ndarray, out: np.ndarray,
                   crossed: np.ndarray) -> None:
    """Per path (columns[n], drifts[n] signed bins): `out[n]` <- its sum without the rows where it meets another
    signal's track [track_lo[i], track_hi[i]] (each such row counted at the mean level `pad_value` per channel),
    desmeared as `refine` sums it; `crossed[n]` <- how many rows met the track."""
    for n in range(columns.shape[0]):
        t = drifts[n]
        total, count = _uncrossed(data, pad_value, offsets, columns[n], t, 1, track_lo, track_hi)
        width_sum = smear_width(t, desmear_step)
        if width_sum > 1:
            wide, wide_count = _uncrossed(data, pad_value, offsets, columns[n], t, width_sum, track_lo, track_hi)
            total = max(total, norm[width_sum, 0] + norm[width_sum, 1] * wide)
            count = max(count, wide_count)
        out[n] = total
        crossed[n] = count

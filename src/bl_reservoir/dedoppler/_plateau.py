"""Each hit's drift moved to the centre of its plateau.

A signal several channels wide sums almost the same along a few neighbouring drifts (each with its
own start column), so the single largest sum lands anywhere on that plateau by noise. The centroid
of the neighbouring drifts within PLATEAU_SIGMA noise sigmas of the top is the better estimate; for
a narrow signal the plateau is one drift and nothing moves.
"""

from __future__ import annotations

import numpy as np

from bl_reservoir.dedoppler._band import Band
from bl_reservoir.dedoppler._refine import NO_NORM, drift_offsets, drift_profile, refine

#: A hit's drift is the centroid of the drifts whose best sum is within this many noise sigmas of the top,
#: looked for within PLATEAU_BINS drift bins and PLATEAU_COLS start channels of the strongest path.
PLATEAU_SIGMA = 2.0
PLATEAU_BINS = 8
PLATEAU_COLS = 4


def centre_drifts(band: Band, grid, pad_value: float, std: float, columns: np.ndarray, drifts: np.ndarray,
                  desmear_step: int = 0, norm: np.ndarray = NO_NORM, hit_sum: float = np.inf
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Start column and drift bins per hit (band columns, signed bins), each at the centre of its plateau, and
    never past the last reported bin (`grid.last_bins`).

    Desmeared (`desmear_step` > 0), a hit whose one-channel sums reach `hit_sum` near it (a hit without
    desmearing, within the channels and the drift block its desmeared sum spans) is placed by their plateau: a
    sum over w channels per row is flat over about w start channels and drifts for a signal that is not smeared.
    Only the others are placed by the plateau of their desmeared sums.
    """
    offsets = drift_offsets(grid.n_rows, grid.max_bins)
    widest = grid.max_bins // desmear_step + 1 if desmear_step else 0
    reach = int(offsets[-1].max()) + PLATEAU_COLS + 2 * widest + 1
    out_cols, out_bins = columns.copy(), drifts.astype(np.int64)
    profile = np.empty(2 * PLATEAU_BINS + 1, dtype=np.float64)
    profile_cols = np.empty(profile.size, dtype=np.int64)
    for n, (col, drift) in enumerate(zip(columns.tolist(), out_bins.tolist())):
        data, first = band.data(col - reach, col + reach + 1)
        col, smeared = col - first, False
        if desmear_step and abs(drift) >= desmear_step:
            col, drift, smeared = _one_channel_peak(data, pad_value, offsets, col, drift, desmear_step, grid, hit_sum)
        drift_profile(data, pad_value, offsets, col, drift, PLATEAU_COLS, grid.min_bins, grid.max_bins,
                      profile, profile_cols, desmear_step if smeared else 0, norm)
        centre = plateau_centre(profile, PLATEAU_SIGMA * std)
        # a centre past --max-drift (the last searched bin is the first at or past it) is reported at the last bin
        # within it, from the start column best along that drift
        first_drift = drift - PLATEAU_BINS
        centre = int(np.clip(centre, -grid.last_bins - first_drift, grid.last_bins - first_drift))
        out_cols[n], out_bins[n] = profile_cols[centre] + first, first_drift + centre
    return out_cols, out_bins


def _one_channel_peak(data: np.ndarray, pad_value: float, offsets: np.ndarray, column: int, drift: int,
                      desmear_step: int, grid, hit_sum: float) -> tuple[int, int, bool]:
    """The strongest one-channel path within a desmeared hit's boxcar and drift block, if it reaches `hit_sum`:
    (column, drift, False); else the hit's own (column, drift, True)."""
    width_sum = abs(drift) // desmear_step + 1
    best = np.full(data.shape[1], -np.inf, dtype=np.float32)
    bins = np.zeros(data.shape[1], dtype=np.int32)
    refine(data, pad_value, offsets, np.array([column]), np.array([drift]), width_sum, desmear_step, grid.min_bins,
           grid.max_bins, best, bins, 1, 0, NO_NORM)
    peak = int(np.argmax(best))
    if best[peak] >= hit_sum:
        return peak, int(bins[peak]), False
    return column, drift, True


def plateau_centre(profile: np.ndarray, depth: float) -> int:
    """Index in `profile` of the centroid of the drifts within `depth` of its top, among the searched drifts on
    the top's side of any gap (drifts below --min-drift are -inf)."""
    top = int(np.argmax(profile))
    lo, hi = top, top
    while lo > 0 and np.isfinite(profile[lo - 1]):
        lo -= 1
    while hi < profile.size - 1 and np.isfinite(profile[hi + 1]):
        hi += 1
    weight = np.clip(profile[lo:hi + 1] - (profile[top] - depth), 0.0, None)
    return lo + int(np.rint(weight @ np.arange(hi - lo + 1) / weight.sum()))

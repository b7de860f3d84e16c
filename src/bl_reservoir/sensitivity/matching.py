"""Match an algorithm's hits to the injected truth: pure functions on DataFrames.

Both tables give `index`, the fine channel in the file at t = 0 (contract C2). A signal's path is
`index + i * step` at spectrum i, with `step = drift_rate * tsamp / foff` fine channels per spectrum.

Two rules, chosen by what the hits carry:

- **path** (hits with `drift_rate`, Hz/s): a signal covers a band of `B` channels in every
  spectrum: its FWHM in channels, plus `|drift step per spectrum|` when it is Doppler-smeared.
  A hit matches when its start channel is within `channels + B / 2` of the signal's centre at
  t = 0 (a smeared signal's first spectrum is centred half a step along its path), and its drift
  rate within `drift_bins + B` drift bins, one bin being `|foff| / ((n_time - 1) * tsamp)` Hz/s,
  one channel over the observation (the resolution of a Taylor tree). Any path that stays
  inside the band is a detection of the signal; a wide or smeared signal has no sharper drift.
- **window** (hits without a drift rate, e.g. energy detection): a hit covering the channels
  `[index, index + window)` (or `index +- channels` when no window is given) matches a signal
  whose path, widened by the same channel tolerance, overlaps it. Such algorithms are only
  matched on position, never on drift.

A signal counts as found when at least one hit matches it; a hit that matches no signal is a
false hit. `found_position` applies the position rule alone (a hit starting within `channels` of
the signal's widened path, whatever its drift): it separates "detected" from "drift measured".
Injections are placed far apart (see `harness`), so no hit can match two signals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Geometry:
    """What turns a drift rate into channels: spectra, seconds per spectrum, Hz per fine channel."""

    n_time: int
    tsamp: float
    foff_hz: float

    @property
    def drift_bin(self) -> float:
        """Hz/s of one drift bin: one fine channel over the observation (first to last spectrum)."""
        return abs(self.foff_hz) / (max(self.n_time - 1, 1) * self.tsamp)

    def step(self, drift_rate) -> np.ndarray:
        """Fine channels (signed, + = up in index) a path moves per spectrum at `drift_rate` Hz/s."""
        return np.asarray(drift_rate, dtype=float) * self.tsamp / self.foff_hz


@dataclass(frozen=True)
class Tolerances:
    """Matching tolerances: base channels, drift bins, and the hit window for drift-less hits."""

    channels: float = 2.0
    drift_bins: float = 2.0

    def to_dict(self, geometry: Geometry) -> dict:
        return {**asdict(self), "drift_bin_hz_s": geometry.drift_bin,
                "drift_tolerance_hz_s": self.drift_bins * geometry.drift_bin,
                "band": "B = FWHM in channels (+ |drift step per spectrum| when Doppler-smeared)",
                "channel_tolerance": "channels + B/2", "drift_tolerance": "drift_bins + B drift bins"}


def channel_tolerance(truth: pd.DataFrame, geometry: Geometry, tol: Tolerances) -> np.ndarray:
    """Per signal: fine channels a hit's start may differ from the signal's centre at t = 0."""
    return tol.channels + band(truth, geometry) / 2


def drift_tolerance(truth: pd.DataFrame, geometry: Geometry, tol: Tolerances) -> np.ndarray:
    """Per signal: Hz/s a hit's drift rate may differ from the signal's."""
    return (tol.drift_bins + band(truth, geometry)) * geometry.drift_bin


def band(truth: pd.DataFrame, geometry: Geometry) -> np.ndarray:
    """Per signal: channels it covers in one spectrum (FWHM, plus the drift step when smeared)."""
    fwhm = np.asarray(truth["width"], dtype=float) / abs(geometry.foff_hz)
    return fwhm + _smearing(truth) * np.abs(geometry.step(truth["drift_rate"]))


def _smearing(truth: pd.DataFrame) -> np.ndarray:
    if "doppler_smearing" not in truth:
        return np.zeros(len(truth))
    return np.asarray(truth["doppler_smearing"], dtype=bool).astype(float)


def _signal_start(truth: pd.DataFrame, geometry: Geometry) -> np.ndarray:
    """Centre channel at t = 0 (a smeared signal's first spectrum averages half a step along its path)."""
    return np.asarray(truth["index"], dtype=float) + _smearing(truth) * geometry.step(truth["drift_rate"]) / 2


def _signal_extent(truth: pd.DataFrame, geometry: Geometry, tol: Tolerances) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest channel a signal's path touches, widened by its channel tolerance."""
    start = np.asarray(truth["index"], dtype=float)
    n_steps = np.where(_smearing(truth) > 0, geometry.n_time, geometry.n_time - 1)
    end = start + geometry.step(truth["drift_rate"]) * n_steps
    pad = channel_tolerance(truth, geometry, tol)
    return np.minimum(start, end) - pad, np.maximum(start, end) + pad


def match_matrix(truth: pd.DataFrame, hits: pd.DataFrame, geometry: Geometry, tol: Tolerances | None = None,
                 window: int | None = None) -> np.ndarray:
    """Boolean (n_signals, n_hits): which hit matches which signal, by the path or window rule."""
    tol = tol or Tolerances()
    if len(truth) == 0 or len(hits) == 0:
        return np.zeros((len(truth), len(hits)), dtype=bool)
    hit_index = np.asarray(hits["index"], dtype=float)[None, :]
    if "drift_rate" in hits.columns and window is None:
        start = _signal_start(truth, geometry)[:, None]
        drift = np.asarray(truth["drift_rate"], dtype=float)[:, None]
        close = np.abs(hit_index - start) <= channel_tolerance(truth, geometry, tol)[:, None]
        hit_drift = np.asarray(hits["drift_rate"], dtype=float)[None, :]
        # a margin of 0.1% so that exactly k bins passes a k-bin tolerance despite float32 drift rates
        return close & (np.abs(hit_drift - drift) <= drift_tolerance(truth, geometry, tol)[:, None] * 1.001)
    lo, hi = _signal_extent(truth, geometry, tol)
    if window is None:
        hit_lo, hit_hi = hit_index - tol.channels, hit_index + tol.channels
    else:
        hit_lo, hit_hi = hit_index, hit_index + window - 1
    return (hit_lo <= hi[:, None]) & (hit_hi >= lo[:, None])


def match(truth: pd.DataFrame, hits: pd.DataFrame, geometry: Geometry, tol: Tolerances | None = None,
          window: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies of `truth` with `found`, `found_position` (bool) and `n_matches`, and of `hits` with
    `signal` (row position in `truth` of the signal it matches, -1 for a false hit)."""
    tol = tol or Tolerances()
    matrix = match_matrix(truth, hits, geometry, tol, window)
    position = match_matrix(truth, hits[["index"]], geometry, tol, window)
    truth_out = truth.reset_index(drop=True).copy()
    hits_out = hits.reset_index(drop=True).copy()
    truth_out["n_matches"] = matrix.sum(axis=1).astype(int)
    truth_out["found"] = truth_out["n_matches"] > 0
    truth_out["found_position"] = position.any(axis=1)
    hits_out["signal"] = np.where(matrix.any(axis=0), matrix.argmax(axis=0), -1).astype(int)
    return truth_out, hits_out

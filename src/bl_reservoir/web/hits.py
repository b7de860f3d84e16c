"""The hits table of one result: filters, sorting, paging, and JSON-safe rows.

Filters are inclusive and in the units of the results folder: frequencies in MHz, drift rates
in Hz/s. A filter on a column the result lacks (SNR on energy detection) matches nothing
rather than everything, so a filtered table never shows unfiltered rows. The two strength
bounds are alternatives: an SNR bound applies to hits that have an SNR, a statistic bound to
hits that have a statistic, and with both given a hit meeting either qualifies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.io.header import BL_FINE_FOFF_HZ, BL_FINE_N_TIME, BL_FINE_TSAMP_S
from bl_reservoir.results import to_jsonable


@dataclass(frozen=True)
class HitFilter:
    """Inclusive bounds: `fmin`/`fmax` in MHz, `drift_min`/`drift_max` in Hz/s; `min_snr` or `min_statistic`."""

    fmin: float | None = None
    fmax: float | None = None
    min_snr: float | None = None
    min_statistic: float | None = None
    drift_min: float | None = None
    drift_max: float | None = None

    def mask(self, hits: pd.DataFrame) -> np.ndarray:
        keep = np.ones(len(hits), dtype=bool)
        for column, bound, above in (("freqs", self.fmin, True), ("freqs", self.fmax, False),
                                     ("drift_rate", self.drift_min, True), ("drift_rate", self.drift_max, False)):
            if bound is None:
                continue
            if column not in hits.columns:
                return np.zeros(len(hits), dtype=bool)
            values = hits[column].to_numpy(dtype=float)
            keep &= values >= bound if above else values <= bound
        strength = [(c, b) for c, b in (("snr", self.min_snr), ("statistic", self.min_statistic)) if b is not None]
        if strength:
            strong = np.zeros(len(hits), dtype=bool)
            for column, bound in strength:
                if column in hits.columns:
                    strong |= hits[column].to_numpy(dtype=float) >= bound   # NaN: no such value, never strong
            keep &= strong
        return keep

    def query(self) -> dict[str, float]:
        """The bounds given, as query parameters."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def strength_column(hits: pd.DataFrame) -> str | None:
    """The column that ranks hits: `snr` (dedoppler), else `statistic` (energy detection)."""
    return next((c for c in ("snr", "statistic") if c in hits.columns), None)


def ordered(hits: pd.DataFrame, where: HitFilter, sort: str | None = None, descending: bool = False) -> np.ndarray:
    """Row numbers of the hits passing `where`, sorted by column `sort` (row order when None or unknown)."""
    rows = np.flatnonzero(where.mask(hits))
    if sort is not None and sort != "i" and sort in hits.columns and len(rows):
        values = hits[sort].to_numpy()[rows]
        order = np.argsort(values, kind="stable")
        rows = rows[order[::-1]] if descending else rows[order]
    elif descending:
        rows = rows[::-1]
    return rows


def select(hits: pd.DataFrame, where: HitFilter, sort: str | None = None, descending: bool = False,
           limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """(number of matching hits, one page of them as dicts with their row number `i`)."""
    rows = ordered(hits, where, sort, descending)
    return len(rows), records(hits, rows[offset: offset + limit])


def records(hits: pd.DataFrame, rows: Any) -> list[dict[str, Any]]:
    """Rows `rows` of the table as JSON-safe dicts, each with its row number `i`."""
    part = hits.iloc[list(rows)]
    out = []
    for i, record in zip(rows, part.to_dict("records")):
        out.append({"i": int(i), **to_jsonable(record)})
    return out


def strongest(hits: pd.DataFrame, n: int) -> list[int]:
    """Row numbers of the `n` strongest hits (by SNR or statistic), strongest first."""
    column = strength_column(hits)
    if column is None:
        return list(range(min(n, len(hits))))
    values = hits[column].to_numpy(dtype=float)
    return [int(i) for i in np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:n]]


def strongest_per_band(hits: pd.DataFrame, n: int) -> list[tuple[str, list[int]]]:
    """(band in MHz, row numbers of its `n` strongest hits, strongest first) for each band of energy
    detection's `BANDS_MHZ` that holds hits, as the original front end showed them; then `other` for
    the hits outside every band."""
    from bl_reservoir.energy_detection.detect import best_per_band

    if not len(hits) or "freqs" not in hits.columns:
        return []
    column = strength_column(hits)
    # best_per_band ranks by `statistic`: give it this result's strength (SNR for dedoppler) under that name
    ranked = pd.DataFrame({"freqs": hits["freqs"].to_numpy(dtype=float),
                           "statistic": hits[column].to_numpy(dtype=float) if column else np.zeros(len(hits))})
    top = best_per_band(ranked, n)
    out = [(str(band), [int(r) for r in group["row"]]) for band, group in top.groupby("band", sort=False)]
    outside = np.setdiff1d(np.arange(len(hits)), best_per_band(ranked, len(hits))["row"].to_numpy())
    if len(outside):
        out.append(("other", [int(outside[i]) for i in strongest(hits.iloc[outside].reset_index(drop=True), n)]))
    return out


def match_tolerance_mhz(hit: dict[str, Any], header: dict[str, Any], width: int = 256) -> float:
    """How far apart (MHz) two algorithms' reports of one signal may be: half a stamp plus the drift."""
    foff_mhz = abs(float(header.get("foff") or BL_FINE_FOFF_HZ * 1e-6))
    duration = float(header.get("tsamp") or BL_FINE_TSAMP_S) * BL_FINE_N_TIME
    drift = abs(float(hit.get("drift_rate") or 0.0)) * duration * 1e-6
    return width / 2 * foff_mhz + drift

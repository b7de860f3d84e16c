"""The hits table of one result: filters, sorting, paging, and JSON-safe rows.

Filters are inclusive and in the units of the results folder: frequencies in MHz, drift rates
in Hz/s. A filter on a column the result lacks (SNR on energy detection) matches nothing
rather than everything, so a filtered table never shows unfiltered rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.io.header import BL_FINE_FOFF_HZ, BL_FINE_N_TIME, BL_FINE_TSAMP_S
from bl_reservoir.results import to_jsonable


@dataclass(frozen=True)
class HitFilter:
    """Inclusive bounds: `fmin`/`fmax` in MHz, `drift_min`/`drift_max` in Hz/s."""

    fmin: float | None = None
    fmax: float | None = None
    min_snr: float | None = None
    min_statistic: float | None = None
    drift_min: float | None = None
    drift_max: float | None = None

    def mask(self, hits: pd.DataFrame) -> np.ndarray:
        keep = np.ones(len(hits), dtype=bool)
        for column, bound, above in (("freqs", self.fmin, True), ("freqs", self.fmax, False),
                                     ("snr", self.min_snr, True), ("statistic", self.min_statistic, True),
                                     ("drift_rate", self.drift_min, True), ("drift_rate", self.drift_max, False)):
            if bound is None:
                continue
            if column not in hits.columns:
                return np.zeros(len(hits), dtype=bool)
            values = hits[column].to_numpy(dtype=float)
            keep &= values >= bound if above else values <= bound
        return keep


def strength_column(hits: pd.DataFrame) -> str | None:
    """The column that ranks hits: `snr` (dedoppler), else `statistic` (energy detection)."""
    return next((c for c in ("snr", "statistic") if c in hits.columns), None)


def select(hits: pd.DataFrame, where: HitFilter, sort: str | None = None, descending: bool = False,
           limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """(number of matching hits, one page of them as dicts with their row number `i`)."""
    rows = np.flatnonzero(where.mask(hits))
    if sort is not None and sort != "i" and sort in hits.columns and len(rows):
        values = hits[sort].to_numpy()[rows]
        order = np.argsort(values, kind="stable")
        rows = rows[order[::-1]] if descending else rows[order]
    elif descending:
        rows = rows[::-1]
    page = rows[offset: offset + limit]
    return len(rows), records(hits, page)


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


def match_tolerance_mhz(hit: dict[str, Any], header: dict[str, Any], width: int = 256) -> float:
    """How far apart (MHz) two algorithms' reports of one signal may be: half a stamp plus the drift."""
    foff_mhz = abs(float(header.get("foff") or BL_FINE_FOFF_HZ * 1e-6))
    duration = float(header.get("tsamp") or BL_FINE_TSAMP_S) * BL_FINE_N_TIME
    drift = abs(float(hit.get("drift_rate") or 0.0)) * duration * 1e-6
    return width / 2 * foff_mhz + drift

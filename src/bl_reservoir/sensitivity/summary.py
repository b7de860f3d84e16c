"""Numbers from matched injections: recall per bin, the SNR at 90% recall, false hits per MHz.

Everything here is a pure function of the matched truth and hit tables, so the report can be
rebuilt or re-binned without running any algorithm again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2

#: Recall level whose SNR the report quotes.
RECALL_LEVEL = 0.9
#: Injection columns -> the bin column recall is grouped by.
BINS = {"snr": "snr_bin", "drift_rate": "drift_bin", "width": "width_bin", "doppler_smearing": "doppler_smearing"}


def recall_by(truth: pd.DataFrame, column: str, found: str = "found") -> list[dict[str, Any]]:
    """Rows of `{column: bin, n, found, recall}` in bin order; `column` is a key of `BINS`,
    `found` the truth column saying which signals count as found."""
    key = BINS[column]
    if len(truth) == 0:
        return []
    grouped = truth.groupby(key, sort=True)[found].agg(["size", "sum"])
    return [{column: _plain(value), "n": int(row["size"]), "found": int(row["sum"]),
             "recall": float(row["sum"]) / float(row["size"])} for value, row in grouped.iterrows()]


def recall_plane(truth: pd.DataFrame, rows: str = "drift_rate", columns: str = "snr") -> dict[str, Any]:
    """Recall over a plane of two binned axes: `{rows: [...], columns: [...], "recall": [[...]]}`
    (NaN, written as null, where a cell holds no injection)."""
    table = truth.pivot_table(index=BINS[rows], columns=BINS[columns], values="found", aggfunc="mean")
    recall = [[None if pd.isna(v) else float(v) for v in line] for line in table.to_numpy()]
    return {rows: [_plain(v) for v in table.index], columns: [_plain(v) for v in table.columns], "recall": recall}


def snr_at_recall(curve: list[dict[str, Any]], level: float = RECALL_LEVEL) -> float | None:
    """The injected SNR where recall first reaches `level`, interpolated linearly between bins.

    The lowest SNR bin when recall is already there; None when no bin reaches it.
    """
    snr = [row["snr"] for row in curve]
    recall = [row["recall"] for row in curve]
    for i, value in enumerate(recall):
        if value >= level:
            if i == 0:
                return float(snr[0])
            lo, hi = recall[i - 1], value
            return float(snr[i - 1] + (level - lo) / (hi - lo) * (snr[i] - snr[i - 1]))
    return None


def snr_at_recall_by(truth: pd.DataFrame, column: str = "drift_rate",
                     level: float = RECALL_LEVEL) -> list[dict[str, Any]]:
    """`[{column: bin, snr_at_90}]`: the SNR at `level` recall within each bin of another axis."""
    return [{column: _plain(value), "snr_at_90": snr_at_recall(recall_by(part, "snr"), level)}
            for value, part in truth.groupby(BINS[column], sort=True)]


def false_hit_rate(n_hits: int, bandwidth_mhz: float) -> dict[str, float]:
    """Hits per MHz, with a one-sided 95% Poisson upper limit (meaningful when few or none are seen)."""
    upper = 0.5 * chi2.ppf(0.95, 2 * (n_hits + 1))
    return {"count": int(n_hits), "bandwidth_mhz": float(bandwidth_mhz),
            "per_mhz": float(n_hits / bandwidth_mhz) if bandwidth_mhz else None,
            "per_mhz_upper_95": float(upper / bandwidth_mhz) if bandwidth_mhz else None}


def summarise(truth: pd.DataFrame, signal_hits: pd.DataFrame, noise_hits: pd.DataFrame,
              signal_bandwidth_mhz: float, noise_bandwidth_mhz: float) -> dict[str, Any]:
    """One algorithm's section of `sensitivity.json`."""
    by_snr = recall_by(truth, "snr")
    smeared = {}
    for flag, part in truth.groupby("doppler_smearing"):
        curve = recall_by(part, "snr")
        smeared["on" if flag else "off"] = {"recall_by_snr": curve, "snr_at_90": snr_at_recall(curve),
                                            "snr_at_90_by_drift": snr_at_recall_by(part, "drift_rate"),
                                            "recall_drift_snr": recall_plane(part)}
    unmatched = int((signal_hits["signal"] < 0).sum()) if len(signal_hits) else 0
    position = {}
    if "found_position" in truth:
        curve = recall_by(truth, "snr", "found_position")
        position = {"recall": float(truth["found_position"].mean()) if len(truth) else None,
                    "recall_by_snr": curve, "snr_at_90": snr_at_recall(curve)}
    return {
        "n_signals": int(len(truth)),
        "n_found": int(truth["found"].sum()) if len(truth) else 0,
        "recall": float(truth["found"].mean()) if len(truth) else None,
        "snr_at_90": snr_at_recall(by_snr),
        "recall_by_snr": by_snr,
        "recall_by_drift": recall_by(truth, "drift_rate"),
        "recall_by_width": recall_by(truth, "width"),
        "doppler_smearing": smeared,
        "recall_drift_snr": recall_plane(truth),
        "position_only": position,
        "false_hits": false_hit_rate(len(noise_hits), noise_bandwidth_mhz),
        "unmatched_hits_in_signal_files": false_hit_rate(unmatched, signal_bandwidth_mhz),
        "hits_per_found_signal": (float((signal_hits["signal"] >= 0).sum() / truth["found"].sum())
                                  if len(truth) and truth["found"].sum() else None),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value

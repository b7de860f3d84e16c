"""Cadence events: which hits of an ON/OFF cadence (ABACAD) look like a signal from the target.

The filters follow turboSETI's `find_events`: 1 keeps ON hits above the SNR cut with non-zero
drift; 2 also drops a hit when any OFF has a hit within `max_drift_rate * obs_length` of its
frequency; 3 also requires the hit in every ON, where its drift carries it by then (within
`2 * |drift| * obs_length`). The table has turboSETI's event columns.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bl_reservoir.dedoppler.datfile import TABLE_COLUMNS, read_dat
from bl_reservoir.errors import InvalidResults, UsageError

log = logging.getLogger(__name__)

#: Columns of the events CSV, as turboSETI's find_event_pipeline writes them.
EVENT_COLUMNS = [*TABLE_COLUMNS, "Hit_ID", "status", "in_n_ons", "RFI_in_range", "delta_t"]
_OBS_SUFFIXES = (".h5", ".fil")


@dataclass
class CadenceFile:
    """One file of the cadence: its hit table, whether it is an ON, and its observation if found."""

    source: str
    hits: pd.DataFrame
    on: bool
    observation: Path | None


def _observation_near(dat: Path) -> Path | None:
    for folder in (dat.parent, dat.parent.parent):
        for suffix in _OBS_SUFFIXES:
            candidate = folder / f"{dat.stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load_file(source: str | os.PathLike, on: bool) -> CadenceFile:
    """Hits of a results folder (its `.dat`) or of a `.dat` file; raises `InvalidResults` if neither."""
    path = Path(source)
    if path.is_dir():
        dats = sorted(path.glob("*.dat"))
        if not dats:
            raise InvalidResults(path, "no .dat file in this results folder (not a dedoppler/search result?)")
        dat, observation = dats[0], None
        manifest = path / "manifest.json"
        if manifest.is_file():
            uri = json.loads(manifest.read_text()).get("input", {}).get("uri", "")
            local = Path(uri.removeprefix("file://")) if uri and "://" not in uri.replace("file://", "") else None
            observation = local if local is not None and local.is_file() else None
        observation = observation or _observation_near(dat)
    elif path.suffix == ".dat":
        dat, observation = path, _observation_near(path)
    else:
        raise InvalidResults(path, "expected a dedoppler results folder or a .dat file")
    return CadenceFile(str(path), read_dat(dat), on, observation)


def load_cadence(sources: Sequence[str | os.PathLike]) -> list[CadenceFile]:
    """ON, OFF, ON, OFF, ... (ON first), as in BL's ABACAD cadence."""
    if len(sources) < 2:
        raise UsageError("events: give at least an ON and an OFF (ABACAD: six inputs)")
    return [load_file(s, on=(k % 2 == 0)) for k, s in enumerate(sources)]


def _window(freq: float, half_width_mhz: float) -> tuple[float, float]:
    return freq - half_width_mhz, freq + half_width_mhz


def find_events(cadence: Sequence[CadenceFile], filter_threshold: int = 3, snr_cut: float | None = None,
                check_zero_drift: bool = False) -> pd.DataFrame:
    """Hits passing filter 1, 2 or 3 (`EVENT_COLUMNS`); rows with one `Hit_ID` belong to one event."""
    if filter_threshold not in (1, 2, 3):
        raise UsageError(f"events: --filter-threshold must be 1, 2 or 3, got {filter_threshold}")
    ons = [f for f in cadence if f.on]
    offs = [f for f in cadence if not f.on]
    tables = []
    for n, f in enumerate(ons, start=1):
        tables.append(f.hits.assign(status=f"on_table_{n}"))
    on_table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TABLE_COLUMNS)
    off_table = pd.concat([f.hits for f in offs], ignore_index=True) if offs else pd.DataFrame(columns=TABLE_COLUMNS)
    if on_table.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    ref_mjd = float(ons[0].hits["MJD"].iloc[0]) if len(ons[0].hits) else float(on_table["MJD"].min())
    on_table["delta_t"] = (on_table["MJD"].astype(float) - ref_mjd) * 86400.0
    on_table["Hit_ID"] = ""
    on_table["in_n_ons"] = 0
    on_table["RFI_in_range"] = 0

    keep = on_table if check_zero_drift else on_table[on_table["DriftRate"] != 0.0]
    if snr_cut is not None:
        keep = keep[keep["SNR"].abs() > abs(snr_cut)]
    keep = keep.copy()
    keep["Hit_ID"] = [f"{src}_{i}" for src, i in zip(keep["Source"], keep.index)]
    if filter_threshold == 1 or keep.empty:
        return keep[EVENT_COLUMNS].reset_index(drop=True)

    off_freqs = off_table["Freq"].to_numpy(dtype=float)

    def rfi_in_range(hit: pd.Series) -> int:
        lo, hi = _window(hit["Freq"], abs(float(hit["max_drift_rate"])) * float(hit["obs_length"]) / 1e6)
        return int(((off_freqs > lo) & (off_freqs < hi)).sum())

    keep["RFI_in_range"] = keep.apply(rfi_in_range, axis=1).astype(int)
    clean = keep[keep["RFI_in_range"] == 0]
    if filter_threshold == 2 or clean.empty:
        return clean[EVENT_COLUMNS].reset_index(drop=True)
    return _in_every_on(clean, len(ons))


def _follow(hit: pd.Series, table: pd.DataFrame) -> pd.DataFrame:
    """Hits of a later ON where `hit` should be by then, given its drift."""
    drift = float(hit["DriftRate"]) or float(hit["DELTAF"]) / float(hit["DELTAT"])
    dt = float(table["delta_t"].iloc[0]) - float(hit["delta_t"])
    centre = float(hit["Freq"]) + drift * dt / 1e6
    lo, hi = _window(centre, abs(drift) * 2.0 * float(hit["obs_length"]) / 1e6)
    return table[(table["Freq"] > lo) & (table["Freq"] < hi)]


def _in_every_on(clean: pd.DataFrame, n_ons: int) -> pd.DataFrame:
    per_on = [clean[clean["status"] == f"on_table_{n}"] for n in range(1, n_ons + 1)]
    if any(t.empty for t in per_on):
        return pd.DataFrame(columns=EVENT_COLUMNS)
    events, seen = [], set()
    for index, hit in per_on[0].iterrows():
        found = [_follow(hit, table) for table in per_on[1:]]
        if not all(len(f) for f in found):
            continue
        rows = pd.concat([per_on[0].loc[[index]], *[f.iloc[[0]] for f in found]])
        key = tuple(zip(rows["status"], rows["TopHitNum"]))
        if key in seen:
            continue
        seen.add(key)
        events.append(rows.assign(Hit_ID=f"{hit['Source']}_{index}", in_n_ons=n_ons))
    if not events:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    return pd.concat(events, ignore_index=True)[EVENT_COLUMNS]

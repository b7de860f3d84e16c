"""Cadence events: which hits of an ON/OFF cadence (ABACAD) look like a signal from the target.

The filters follow turboSETI's `find_events`: 1 keeps ON hits above the SNR cut with non-zero
drift; 2 also drops a hit when any OFF has a hit within `max_drift_rate * obs_length` of its
frequency; 3 also requires the hit in every ON, where its drift carries it by then (within
`2 * |drift| * obs_length`). The table has turboSETI's event columns.

Hits come from `.dat` files of dedoppler results, local or at any fsspec URI (a bucket). The
searches are sorted look-ups (`searchsorted`), not a scan of every OFF hit for every ON hit, so a
cadence of 6 x 10,000 hits takes a fraction of a second (benchmarks/events.py).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from bl_reservoir.dedoppler.datfile import TABLE_COLUMNS, parse_dat
from bl_reservoir.errors import InvalidResults, UsageError
from bl_reservoir.io.fetch import filesystem, reason, scheme
from bl_reservoir.results import MANIFEST

log = logging.getLogger(__name__)

#: Columns of the events CSV, as turboSETI's find_event_pipeline writes them.
EVENT_COLUMNS = [*TABLE_COLUMNS, "Hit_ID", "status", "in_n_ons", "RFI_in_range", "delta_t"]
_OBS_SUFFIXES = (".h5", ".fil")


@dataclass
class CadenceFile:
    """One file of the cadence: its hit table, whether it is an ON, and its observation (path or URI) if known."""

    source: str
    hits: pd.DataFrame
    on: bool
    observation: str | None


def _fs(uri: str):
    if scheme(uri) == "file":
        return LocalFileSystem(), os.path.abspath(uri.removeprefix("file://"))
    fs = filesystem(uri)
    return fs, fs._strip_protocol(uri).rstrip("/")


def _observation_of(fs, folder: str, dat: str) -> str | None:
    """The observation a result was made from: its manifest's input (a remote one too), else a `.h5` or
    `.fil` of the `.dat`'s stem beside it or one folder up (local results only)."""
    local = isinstance(fs, LocalFileSystem)
    try:
        uri = json.loads(fs.cat_file(f"{folder}/{MANIFEST}")).get("input", {}).get("uri", "")
    except (OSError, ValueError, AttributeError):
        uri = ""
    if uri and (scheme(uri) != "file" or os.path.isfile(uri.removeprefix("file://"))):
        return uri
    if not local:
        return None
    stem = os.path.splitext(os.path.basename(dat))[0]
    for near in (os.path.dirname(dat), os.path.dirname(os.path.dirname(dat))):
        for suffix in _OBS_SUFFIXES:
            candidate = os.path.join(near, stem + suffix)
            if os.path.isfile(candidate):
                return candidate
    return None


def load_file(source: str | os.PathLike, on: bool) -> CadenceFile:
    """Hits of a dedoppler results folder (its `.dat`), local or at a URI, or of a `.dat` file;
    `InvalidResults` naming the source when it is neither."""
    source = os.fspath(source)
    fs, root = _fs(source)
    try:
        if root.endswith(".dat") and fs.isfile(root):
            dat = root
        elif fs.isdir(root):
            dats = sorted(fs.glob(f"{root}/*.dat"))
            if not dats:
                raise InvalidResults(source, "no .dat file in this results folder (not a dedoppler/search result?)")
            dat = dats[0]
        elif fs.exists(root):
            raise InvalidResults(source, "expected a dedoppler results folder or a .dat file")
        else:
            raise InvalidResults(source, "no such results folder or .dat file")
        text = fs.cat_file(dat).decode("utf-8", errors="replace")
    except InvalidResults:
        raise
    except FileNotFoundError:
        raise InvalidResults(source, "no such results folder or .dat file") from None
    except Exception as exc:  # noqa: BLE001 - a bucket that cannot be read: one line naming the source
        raise InvalidResults(source, f"cannot read the results ({reason(exc)})") from None
    return CadenceFile(source, parse_dat(text, source), on, _observation_of(fs, posixpath.dirname(dat), dat))


def load_cadence(sources: Sequence[str | os.PathLike]) -> list[CadenceFile]:
    """ON, OFF, ON, OFF, ... (ON first), as in BL's ABACAD cadence."""
    if len(sources) < 2:
        raise UsageError("events: give at least an ON and an OFF (ABACAD: six inputs)")
    return [load_file(s, on=(k % 2 == 0)) for k, s in enumerate(sources)]


def _in_window(sorted_freqs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each window (lo, hi), open at both ends: [first, last) positions of `sorted_freqs` inside it."""
    return np.searchsorted(sorted_freqs, lo, side="right"), np.searchsorted(sorted_freqs, hi, side="left")


def find_events(cadence: Sequence[CadenceFile], filter_threshold: int = 3, snr_cut: float | None = None,
                check_zero_drift: bool = False) -> pd.DataFrame:
    """Hits passing filter 1, 2 or 3 (`EVENT_COLUMNS`); rows with one `Hit_ID` belong to one event."""
    if filter_threshold not in (1, 2, 3):
        raise UsageError(f"events: --filter-threshold must be 1, 2 or 3, got {filter_threshold}")
    ons = [f for f in cadence if f.on]
    offs = [f for f in cadence if not f.on]
    tables = [f.hits.assign(status=f"on_table_{n}") for n, f in enumerate(ons, start=1)]
    on_table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TABLE_COLUMNS)
    off_freqs = np.sort(np.concatenate([f.hits["Freq"].to_numpy(dtype=float) for f in offs])) if offs \
        else np.zeros(0)
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

    half = np.abs(keep["max_drift_rate"].to_numpy(dtype=float)) * keep["obs_length"].to_numpy(dtype=float) / 1e6
    freq = keep["Freq"].to_numpy(dtype=float)
    first, last = _in_window(off_freqs, freq - half, freq + half)
    keep["RFI_in_range"] = (last - first).astype(int)
    clean = keep[keep["RFI_in_range"] == 0]
    if filter_threshold == 2 or clean.empty:
        return clean[EVENT_COLUMNS].reset_index(drop=True)
    return _in_every_on(clean, len(ons))


def _follow(start: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """For each hit of `start`, the row (position in `table`) of the first hit of a later ON where its
    drift should have carried it (within `2 * |drift| * obs_length`), or -1."""
    drift = start["DriftRate"].to_numpy(dtype=float)
    drift = np.where(drift == 0.0, start["DELTAF"].to_numpy(dtype=float) / start["DELTAT"].to_numpy(dtype=float),
                     drift)
    dt = float(table["delta_t"].iloc[0]) - start["delta_t"].to_numpy(dtype=float)
    centre = start["Freq"].to_numpy(dtype=float) + drift * dt / 1e6
    half = np.abs(drift) * 2.0 * start["obs_length"].to_numpy(dtype=float) / 1e6
    freqs = table["Freq"].to_numpy(dtype=float)
    order = np.argsort(freqs, kind="stable")
    first, last = _in_window(freqs[order], centre - half, centre + half)
    found = np.full(len(start), -1, dtype=np.int64)
    for k in np.flatnonzero(last > first):  # few: the table order decides which one, as turboSETI's iloc[0]
        found[k] = order[first[k]:last[k]].min()
    return found


def _in_every_on(clean: pd.DataFrame, n_ons: int) -> pd.DataFrame:
    per_on = [clean[clean["status"] == f"on_table_{n}"] for n in range(1, n_ons + 1)]
    if any(t.empty for t in per_on):
        return pd.DataFrame(columns=EVENT_COLUMNS)
    matches = np.stack([_follow(per_on[0], table) for table in per_on[1:]], axis=1) if n_ons > 1 \
        else np.zeros((len(per_on[0]), 0), dtype=np.int64)
    events, seen = [], set()
    for k in np.flatnonzero((matches >= 0).all(axis=1)):
        hit = per_on[0].iloc[k]
        rows = pd.concat([per_on[0].iloc[[k]], *[table.iloc[[m]] for table, m in zip(per_on[1:], matches[k])]])
        key = tuple(zip(rows["status"], rows["TopHitNum"]))
        if key in seen:
            continue
        seen.add(key)
        events.append(rows.assign(Hit_ID=f"{hit['Source']}_{per_on[0].index[k]}", in_n_ons=n_ons))
    if not events:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    return pd.concat(events, ignore_index=True)[EVENT_COLUMNS]


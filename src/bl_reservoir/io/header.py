"""The observation header: SIGPROC keyword names, their types, and the coarse-channel rule.

Units follow SIGPROC and BL HDF5 attributes: `fch1` and `foff` in MHz, `tsamp` in seconds,
`tstart` in MJD, `src_raj` in decimal hours and `src_dej` in decimal degrees (the `.fil` reader
converts SIGPROC's packed hhmmss.s / ddmmss.s values).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from bl_reservoir.errors import InvalidObservation, ReservoirWarning

#: SIGPROC keyword -> Python type, as stored in a filterbank header.
KEY_TYPES: dict[str, type] = {
    "telescope_id": int,
    "machine_id": int,
    "data_type": int,
    "rawdatafile": str,
    "source_name": str,
    "barycentric": int,
    "pulsarcentric": int,
    "az_start": float,
    "za_start": float,
    "src_raj": float,
    "src_dej": float,
    "tstart": float,
    "tsamp": float,
    "nbits": int,
    "fch1": float,
    "foff": float,
    "nchans": int,
    "nifs": int,
    "ibeam": int,
    "nbeams": int,
    "nfpc": int,
    "nsamples": int,
    "refdm": float,
    "period": float,
}

#: Keys without which a file cannot be interpreted.
REQUIRED_KEYS = ("nbits", "nchans", "nifs", "fch1", "foff", "tsamp", "tstart")
#: Keys every frequency, time and index computation uses: one NaN or infinity among them makes every
#: hit frequency, drift rate and database row of the file NaN.
FINITE_KEYS = ("fch1", "foff", "tsamp", "tstart")

#: Fine channels per coarse channel of GBT/Parkes BL products, tried in this order.
KNOWN_COARSE_WIDTHS = (1_048_576, 1_033_216, 999_424)
#: The BL fine-resolution product: integrations of BL_FINE_TSAMP_S seconds, BL_FINE_N_TIME of them per
#: file, BL_FINE_FOFF_HZ per fine channel. Synthetic files use them; pictures assume them for a header
#: that lacks its own.
BL_FINE_TSAMP_S = 18.253611008
BL_FINE_FOFF_HZ = -2.7939677238464355
BL_FINE_N_TIME = 16

SUPPORTED_NBITS = (8, 16, 32)


def normalize_header(raw: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Check keys and types of a raw header and return a plain dict (raises `InvalidObservation`)."""
    header: dict[str, Any] = {}
    for key, value in raw.items():
        kind = KEY_TYPES.get(key)
        if kind is None:
            raise InvalidObservation(path, f"unknown header key {key!r}")
        if isinstance(value, bytes):
            value = value.decode("ascii", errors="replace")
        if isinstance(value, np.generic):
            value = value.item()
        try:
            header[key] = kind(value)
        except (TypeError, ValueError):
            raise InvalidObservation(path, f"header key {key!r} has a bad value {value!r}") from None
    missing = [key for key in REQUIRED_KEYS if key not in header]
    if missing:
        raise InvalidObservation(path, f"header is missing {', '.join(missing)}")
    for key in FINITE_KEYS:
        if not math.isfinite(header[key]):
            raise InvalidObservation(path, f"header key {key!r} is {header[key]}, expected a finite number")
    if header["nbits"] not in SUPPORTED_NBITS:
        raise InvalidObservation(path, f"nbits is {header['nbits']}, expected one of 8, 16, 32")
    for key in ("nchans", "nifs"):
        if header[key] <= 0:
            raise InvalidObservation(path, f"{key} is {header[key]}, expected a positive number")
    if header["tsamp"] <= 0 or header["foff"] == 0:
        raise InvalidObservation(path, "tsamp must be > 0 and foff non-zero")
    header.setdefault("source_name", "")
    return header


def coarse_channel_width(header: Mapping[str, Any], path: str = "") -> int:
    """Fine channels per coarse channel.

    The rule: `nfpc` when the header has it; else the first of 1,048,576, 1,033,216 and 999,424
    that divides `nchans` (BL GBT products); else the whole band is one coarse channel, with a
    `ReservoirWarning`.
    """
    nchans = int(header["nchans"])
    nfpc = header.get("nfpc")
    if nfpc:
        if nchans % int(nfpc):
            raise InvalidObservation(path, f"nfpc {nfpc} does not divide nchans {nchans}")
        return int(nfpc)
    for width in KNOWN_COARSE_WIDTHS:
        if nchans % width == 0:
            return width
    warnings.warn(
        f"{path or 'observation'}: nchans {nchans} is no multiple of a known coarse-channel width "
        "and the header has no nfpc; treating the whole band as one coarse channel",
        ReservoirWarning,
        stacklevel=3,
    )
    return nchans


def frequencies(header: Mapping[str, Any], start: int, stop: int) -> np.ndarray:
    """Sky frequency in MHz (float64) of fine channels [start, stop)."""
    return header["fch1"] + header["foff"] * np.arange(start, stop, dtype=np.float64)


def band_edges(header: Mapping[str, Any]) -> tuple[float, float] | None:
    """(lowest, highest) sky frequency of the band in MHz, from fch1, foff and nchans; None when one is missing
    or not a finite number (a result's bad header must not stop a listing or a picture)."""
    try:
        fch1, foff, nchans = (float(header[key]) for key in ("fch1", "foff", "nchans"))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    lo, hi = sorted((fch1, fch1 + foff * nchans))
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None

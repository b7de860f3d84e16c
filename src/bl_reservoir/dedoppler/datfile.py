"""turboSETI's `.dat` hit list: written byte for byte in its layout, read back into its table.

Layout (turboSETI 2.3.2 `FileWriter`): a 9-line header (`# File ID`, `# Source`, `# MJD`/`RA`/`DEC`,
`# DELTAT`/`DELTAF(Hz)`/`max_drift_rate`/`obs_length`, column names) and one tab-separated line of
12 fields per hit. As in turboSETI, `Index` is the channel within its coarse channel and
`freq_start`/`freq_end` bound the +-2x-max-drift window around the hit, clipped to its coarse channel.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.errors import InvalidResults

_RULE = "# -------------------------- o --------------------------\n"
_COLUMN_NAMES = ["Top_Hit_#", "Drift_Rate", "SNR", "Uncorrected_Frequency", "Corrected_Frequency", "Index",
                 "freq_start", "freq_end", "SEFD", "SEFD_freq", "Coarse_Channel_Number", "Full_number_of_hits"]
#: Columns of the table `read_dat` returns, as turboSETI's `find_event.read_dat` names them.
TABLE_COLUMNS = ["TopHitNum", "DriftRate", "SNR", "Freq", "ChanIndx", "FreqStart", "FreqEnd", "CoarseChanNum",
                 "FullNumHitsInRange", "FileID", "Source", "MJD", "RA", "DEC", "DELTAT", "DELTAF",
                 "max_drift_rate", "obs_length"]


def _sexagesimal(value: float, unit: str) -> str:
    """Decimal hours or degrees -> astropy-style `17h45m40.0392s` / `-29d00m28.0692s` (no colons: read_dat splits on them)."""
    sign = "-" if value < 0 else ""
    value = abs(float(value))
    whole = int(value)
    minutes = int((value - whole) * 60)
    seconds = (value - whole - minutes / 60) * 3600
    if seconds >= 59.99995:
        seconds, minutes = 0.0, minutes + 1
    if minutes == 60:
        minutes, whole = 0, whole + 1
    return f"{sign}{whole}{unit}{minutes:02d}m{seconds:07.4f}s"


def dat_text(file_id: str, header: Mapping[str, Any], hits: pd.DataFrame, *, n_time: int,
             max_drift: float, window_channels: int, coarse_channel_width: int | None = None) -> str:
    """The whole `.dat` file as text; `hits` has the columns of `driver.HIT_COLUMNS`. `freq_start`/`freq_end`
    are clipped to the hit's coarse channel (of `coarse_channel_width` channels), as turboSETI clips them."""
    foff_mhz = float(header["foff"])
    lines = [_RULE, f"# File ID: {file_id} \n", _RULE,
             f"# Source:{header.get('source_name', '')}\n",
             "# MJD: {:18.12f}\tRA: {}\tDEC: {}\n".format(
                 float(header["tstart"]), _sexagesimal(header.get("src_raj", 0.0), "h"),
                 _sexagesimal(header.get("src_dej", 0.0), "d")),
             "# DELTAT: {:10.6f}\tDELTAF(Hz): {:10.6f}\tmax_drift_rate: {:10.6f}\tobs_length: {:10.6f}\n".format(
                 float(header["tsamp"]), foff_mhz * 1e6, float(max_drift), n_time * float(header["tsamp"])),
             "# --------------------------\n",
             "".join(f"# {name} \t" if i == 0 else f"{name} \t" for i, name in enumerate(_COLUMN_NAMES)) + "\n",
             "# --------------------------\n"]
    for number, hit in enumerate(hits.itertuples(index=False), start=1):
        lo = int(hit.index) - window_channels
        hi = int(hit.index) + window_channels - 1
        if coarse_channel_width:
            first = int(hit.index) - int(hit.channel_in_coarse)
            lo, hi = max(lo, first), min(hi, first + coarse_channel_width - 1)
        fields = [f"{number:06d}", f"{hit.drift_rate:10.6f}", f"{hit.snr:10.6f}", f"{hit.freqs:14.6f}",
                  f"{hit.freqs:14.6f}", f"{int(hit.channel_in_coarse):d}",
                  f"{header['fch1'] + foff_mhz * lo:14.6f}", f"{header['fch1'] + foff_mhz * hi:14.6f}",
                  str(0.0), f"{0.0:14.6f}", f"{int(hit.coarse_channel):d}", f"{int(hit.n_candidates):d}"]
        lines.append("\t".join(fields) + "\t\n")
    return "".join(lines)


def write_dat(path: str | os.PathLike, header: Mapping[str, Any], hits: pd.DataFrame, *, n_time: int,
              max_drift: float, window_channels: int, coarse_channel_width: int | None = None) -> Path:
    """Write `<stem>.dat`; its File ID names `<stem>.h5`, as turboSETI's does."""
    path = Path(path)
    text = dat_text(f"{path.stem}.h5", header, hits, n_time=n_time, max_drift=max_drift,
                    window_channels=window_channels, coarse_channel_width=coarse_channel_width)
    path.write_text(text)
    return path


def _field(line: str, position: int) -> str:
    return line.strip().split("\t")[position].split(":")[-1].strip()


def read_dat(path: str | os.PathLike) -> pd.DataFrame:
    """A local `.dat` file as turboSETI's hit table (`TABLE_COLUMNS`); `InvalidResults` naming what is wrong."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise InvalidResults(path, "no such .dat file") from None
    except UnicodeDecodeError as exc:
        raise InvalidResults(path, f"not a turboSETI .dat file ({type(exc).__name__}: {exc})") from None
    return parse_dat(text, os.fspath(path))


def parse_dat(text: str, name: str) -> pd.DataFrame:
    """The text of a `.dat` file as turboSETI's hit table (`TABLE_COLUMNS`); `name` is the file in errors."""
    lines = text.splitlines()
    try:
        meta = {
            "FileID": lines[1].split(":")[-1].strip(), "Source": lines[3].split(":")[-1].strip().upper(),
            "MJD": _field(lines[4], 0), "RA": _field(lines[4], 1), "DEC": _field(lines[4], 2),
            "DELTAT": _field(lines[5], 0), "DELTAF": _field(lines[5], 1),
            "max_drift_rate": _field(lines[5], 2), "obs_length": _field(lines[5], 3),
        }
        body = [line for line in lines[9:] if line.strip()]
        rows = pd.read_csv(io.StringIO("\n".join(body)), sep=r"\s+", header=None, usecols=range(12)) if body \
            else pd.DataFrame(np.zeros((0, 12)))
        table = pd.DataFrame({
            "TopHitNum": rows[0].astype(int), "DriftRate": rows[1].astype(float), "SNR": rows[2].astype(float),
            "Freq": rows[3].astype(float), "ChanIndx": rows[5].astype(int), "FreqStart": rows[6].astype(float),
            "FreqEnd": rows[7].astype(float), "CoarseChanNum": rows[10].astype(int),
            "FullNumHitsInRange": rows[11].astype(int),
        })
    except (IndexError, KeyError, ValueError, pd.errors.ParserError) as exc:
        raise InvalidResults(name, f"not a turboSETI .dat file ({type(exc).__name__}: {exc})") from None
    for key, value in meta.items():
        table[key] = value
    for key in ("MJD", "DELTAT", "DELTAF", "max_drift_rate", "obs_length"):
        try:
            table[key] = table[key].astype(float)
        except ValueError:
            raise InvalidResults(name, f"header field {key} is not a number") from None
    return table[TABLE_COLUMNS]

"""A cadence's events folder (C8): `events.csv` (turboSETI's columns), `events.parquet`, and one stacked
ON/OFF picture per event, `event_NNN.png`; `bl-reservoir events` and a campaign's events stage write it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bl_reservoir.dedoppler.event_plot import plot_event
from bl_reservoir.dedoppler.events import CadenceFile


def picture_name(n: int) -> str:
    """The file of event `n`'s picture in an events folder (C8)."""
    return f"event_{n:03d}.png"


def write_events(cadence: Sequence[CadenceFile], events: pd.DataFrame, out_dir: str | os.PathLike,
                 plots: bool = True) -> list[str]:
    """Write `events.csv` (turboSETI's columns), `events.parquet` and, with `plots`, one picture per event
    (`event_NNN.png`, events numbered in the table's order) into `out_dir`; the pictures' names."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events.to_csv(out / "events.csv")
    events.reset_index(drop=True).to_parquet(out / "events.parquet", index=False)
    if not plots or events.empty:
        return []
    names = []
    for n, (_, rows) in enumerate(events.groupby("Hit_ID", sort=False)):
        plot_event(rows, cadence, out / picture_name(n))
        names.append(picture_name(n))
    return names

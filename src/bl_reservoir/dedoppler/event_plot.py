"""One picture per cadence event: the six waterfalls stacked in time, with the event's drift line."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bl_reservoir.dedoppler.events import CadenceFile
from bl_reservoir.errors import ReservoirError

log = logging.getLogger(__name__)

_MARGIN_HZ = 600.0
_MAX_CHANNELS = 8192


def _band(event: pd.DataFrame, cadence_seconds: float) -> tuple[float, float, float, float]:
    """(f0 MHz, drift Hz/s, low MHz, high MHz) of the window that holds the event's whole track."""
    first = event.iloc[0]
    f0, drift = float(first["Freq"]), float(first["DriftRate"])
    ends = [f0, f0 + drift * cadence_seconds / 1e6, *event["Freq"].astype(float)]
    return f0, drift, min(ends) - _MARGIN_HZ / 1e6, max(ends) + _MARGIN_HZ / 1e6


def _waterfall(path: str | None, lo_mhz: float, hi_mhz: float):
    """(data (n_time, n), freqs MHz, tstart MJD, tsamp s) of the window, or why there is none (a str)."""
    if path is None:
        return "observation not found"
    from bl_reservoir.io import open_observation

    try:
        return _read_window(open_observation(path), lo_mhz, hi_mhz)
    except ReservoirError as exc:
        log.warning("event picture: %s", exc)
        return f"observation not readable ({getattr(exc, 'reason', exc)})"


def _read_window(obs, lo_mhz: float, hi_mhz: float):
    with obs:
        fch1, foff = obs.header["fch1"], obs.header["foff"]
        a, b = sorted(((lo_mhz - fch1) / foff, (hi_mhz - fch1) / foff))
        start, stop = max(0, int(np.floor(a))), min(obs.n_chans, int(np.ceil(b)) + 1)
        if stop - start > _MAX_CHANNELS:
            middle = (start + stop) // 2
            start, stop = middle - _MAX_CHANNELS // 2, middle + _MAX_CHANNELS // 2
        if stop <= start:
            return "the event lies outside this observation's band"
        data = obs.read_channels(start, stop)
        return data, obs.frequencies(start, stop), float(obs.header["tstart"]), float(obs.header["tsamp"])


def _label(source: str) -> str:
    """A results folder's observation name (`<obs>/dedoppler/search` -> `<obs>`), or a file's name."""
    parts = str(source).rstrip("/").split("/")
    return parts[-3] if len(parts) >= 3 and parts[-2:] == ["dedoppler", "search"] else parts[-1]


def plot_event(event: pd.DataFrame, cadence: Sequence[CadenceFile], out_path: str | os.PathLike) -> Path:
    """Write a PNG of one event (rows sharing a Hit_ID) across every file of the cadence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = [float(f.hits["MJD"].iloc[0]) for f in cadence if len(f.hits)]
    t_ref = float(event["MJD"].astype(float).min()) if starts else 0.0
    lengths = [float(f.hits["obs_length"].iloc[0]) for f in cadence if len(f.hits)]
    cadence_seconds = (max(starts) - min(starts)) * 86400 + max(lengths) if starts else 0.0
    f0, drift, lo, hi = _band(event, cadence_seconds)
    panels = [_waterfall(f.observation, lo, hi) for f in cadence]
    shown = [p[0] for p in panels if not isinstance(p, str)]
    # one colour scale for all six: a signal in an OFF must look as bright as the same signal in an ON
    vmin, vmax = (np.percentile(np.concatenate([d.ravel() for d in shown]), [1, 99.9]) if shown else (None, None))
    gap = 0.04 * (hi - lo) * 1e6  # Hz between the predicted track and each of the lines that frame it
    fig, axes = plt.subplots(len(cadence), 1, sharex=True, figsize=(8, 1.6 * len(cadence)))
    axes = np.atleast_1d(axes)
    for ax, f, panel in zip(axes, cadence, panels):
        ax.set_ylabel(f"{'ON' if f.on else 'OFF'}\ns", fontsize=8)
        if isinstance(panel, str):
            ax.text(0.5, 0.5, f"{_label(f.source)}: {panel}", ha="center", va="center", transform=ax.transAxes,
                    fontsize=8)
            continue
        data, freqs, tstart, tsamp = panel
        t0 = (tstart - t_ref) * 86400
        t1 = t0 + data.shape[0] * tsamp
        offsets = (freqs - f0) * 1e6
        order = np.argsort(offsets)
        ax.imshow(data[:, order], aspect="auto", origin="upper", cmap="viridis", interpolation="nearest",
                  extent=(offsets[order][0], offsets[order][-1], t1, t0), vmin=vmin, vmax=vmax)
        for side in (-gap, gap):  # the drift line, drawn twice beside the track so that it hides nothing
            ax.plot([drift * t0 + side, drift * t1 + side], [t0, t1], color="white", lw=1.2, ls="--", alpha=0.9)
        ax.set_xlim(offsets.min(), offsets.max())
        ax.set_title(f"{_label(f.source)} ({'ON' if f.on else 'OFF'})", fontsize=8)
    axes[-1].set_xlabel(f"frequency - {f0:.6f} MHz (Hz)")
    fig.suptitle(f"event {event['Hit_ID'].iloc[0]}: {f0:.6f} MHz, {drift:+.4f} Hz/s", fontsize=10)
    fig.tight_layout()
    out = Path(out_path)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out

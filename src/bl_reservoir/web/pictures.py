"""PNG pictures of results, drawn with matplotlib's Agg backend and kept in a small cache.

Three pictures: the full waterfall of one hit (axes in Hz offset from the hit and seconds, a
colour bar, the drift line of dedoppler hits, the integrated spectrum under it), a thumbnail of
the same stamp (plain pixels, no axes: cheap enough for a grid of dozens), and an overview of a
result's hits across the band. Figures use the object API (`Figure`), never pyplot; one lock
serialises figure drawing in a process (thumbnails need none), the waterfall figure is built
once and redrawn, `Renderer` can spread waterfalls over a pool of processes, and a cache keyed
by result, hit and manifest digest makes each picture cost one render.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bl_reservoir.io.header import BL_FINE_FOFF_HZ
from bl_reservoir.web.bucket import _LRU

THUMB_ROWS = 96          # pixel rows of a thumbnail (time is stretched to this)
THUMB_MAX_COLUMNS = 256  # wider stamps are cropped to the hit's track for thumbnails
THUMB_MARGIN = 48        # channels kept either side of the track
CMAP = "viridis"
#: matplotlib figures are not safe to draw from several threads at once; thumbnails need no figure.
_FIGURE_LOCK = threading.Lock()
#: zlib level 1: a waterfall encodes ~4x faster than at the default 6, for ~1.5x the bytes
_PNG_OPTIONS = {"compress_level": 1}


def reference_column(hit: Mapping[str, Any], width: int) -> int:
    """Column of the stamp at the hit's `freqs`: explicit `stamp_start` if given, else the centre
    for drifting (dedoppler) hits and the first column for energy-detection windows."""
    if hit.get("stamp_start") is not None and hit.get("index") is not None:
        return int(hit["index"]) - int(hit["stamp_start"])
    return width // 2 if hit.get("drift_rate") is not None else 0


def stamp_axes(stamp: np.ndarray, header: Mapping[str, Any], hit: Mapping[str, Any]
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """(stamp with frequency increasing left to right, column offsets in Hz from the hit, duration in s)."""
    n_time, width = stamp.shape
    foff_hz = float(header.get("foff") or BL_FINE_FOFF_HZ * 1e-6) * 1e6
    offsets = (np.arange(width) - reference_column(hit, width)) * foff_hz
    if foff_hz < 0:
        stamp, offsets = stamp[:, ::-1], offsets[::-1]
    duration = n_time * float(header.get("tsamp") or 1.0)
    return stamp, offsets, duration


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf, pil_kwargs=_PNG_OPTIONS)
    return buf.getvalue()


def _limits(stamp: np.ndarray) -> tuple[float, float]:
    finite = stamp[np.isfinite(stamp)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [1, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1)


class _WaterfallFigure:
    """One waterfall figure built once and redrawn for each hit: creating axes, ticks and the
    colour bar costs more than drawing them, so only the data, limits and labels change."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        # fixed axes positions: a layout engine would cost two thirds of the render time
        self.fig = Figure(figsize=(8, 6.4), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.1, 0.37, 0.74, 0.57))
        self.image = self.ax.imshow(np.zeros((2, 2)), aspect="auto", cmap=CMAP, interpolation="nearest")
        self.colorbar = self.fig.colorbar(self.image, cax=self.fig.add_axes((0.86, 0.37, 0.025, 0.57)),
                                          label="power (arbitrary units)")
        (self.track,) = self.ax.plot([], [], color="white", ls="--", lw=1.0, alpha=0.6)
        self.ax.set_ylabel("time (s)")
        self.ax.tick_params(labelbottom=False)
        self.spectrum = self.fig.add_axes((0.1, 0.08, 0.74, 0.24))
        (self.mean,) = self.spectrum.plot([], [], color="#1f4e79", lw=1)
        self.spectrum.set_ylabel("mean power")

    def render(self, image: np.ndarray, offsets: np.ndarray, duration: float, hit: Mapping[str, Any],
               source: str) -> bytes:
        step = abs(offsets[1] - offsets[0]) if len(offsets) > 1 else 1.0
        left, right = offsets[0] - step / 2, offsets[-1] + step / 2
        lo, hi = _limits(image)
        freq = float(hit.get("freqs", np.nan))
        self.image.set_data(image)
        self.image.set_extent((left, right, duration, 0.0))
        self.image.set_clim(lo, hi)
        self.colorbar.update_normal(self.image)
        title = f"{source}  hit at {freq:.6f} MHz"
        drift = hit.get("drift_rate")
        if drift is not None and np.isfinite(drift):
            # the track through the centres of the first and last integrations
            tsamp = duration / image.shape[0]
            start = (float(hit["freq_start"]) - freq) * 1e6 if hit.get("freq_start") is not None else 0.0
            self.track.set_data([start, start + float(drift) * (duration - tsamp)], [tsamp / 2, duration - tsamp / 2])
            title += f"  drift {float(drift):+.4f} Hz/s (dashed)"
        self.track.set_visible(drift is not None and bool(np.isfinite(drift)))
        for axes in (self.ax, self.spectrum):
            axes.set_xlim(left, right)
        self.ax.set_ylim(duration, 0.0)
        self.ax.set_title(title, fontsize=10)
        mean = image.mean(axis=0)
        self.mean.set_data(offsets, mean)
        finite = mean[np.isfinite(mean)]
        if finite.size:
            pad = (float(finite.max() - finite.min()) or 1.0) * 0.05
            self.spectrum.set_ylim(float(finite.min()) - pad, float(finite.max()) + pad)
        self.spectrum.set_xlabel(f"frequency offset from {freq:.6f} MHz (Hz)")
        buf = io.BytesIO()
        self.canvas.print_png(buf, pil_kwargs=_PNG_OPTIONS)
        return buf.getvalue()


_WATERFALL: list[_WaterfallFigure] = []


def waterfall_png(stamp: np.ndarray, header: Mapping[str, Any], hit: Mapping[str, Any]) -> bytes:
    """Full waterfall of one hit: Hz offset vs seconds, colour bar, drift line, integrated spectrum."""
    image, offsets, duration = stamp_axes(stamp, header, hit)
    with _FIGURE_LOCK:
        if not _WATERFALL:
            _WATERFALL.append(_WaterfallFigure())
        return _WATERFALL[0].render(image, offsets, duration, hit, str(header.get("source_name", "")))


def track_columns(stamp: np.ndarray, header: Mapping[str, Any], hit: Mapping[str, Any],
                  margin: int = THUMB_MARGIN) -> slice:
    """Columns of the stamp around the hit's track (its drift over the observation), plus `margin`."""
    n_time, width = stamp.shape
    ref = reference_column(hit, width)
    drift = hit.get("drift_rate")
    foff_hz = float(header.get("foff") or BL_FINE_FOFF_HZ * 1e-6) * 1e6
    shift = 0.0
    if drift is not None and np.isfinite(drift) and foff_hz:
        shift = float(drift) * (n_time - 1) * float(header.get("tsamp") or 1.0) / foff_hz
    lo, hi = sorted((ref, ref + round(shift)))
    return slice(max(0, lo - margin), min(width, hi + margin + 1))


def thumbnail_png(stamp: np.ndarray, header: Mapping[str, Any], hit: Mapping[str, Any]) -> bytes:
    """A plain-pixel thumbnail of one stamp, cropped to the hit's track for wide (dedoppler) stamps
    (frequency increasing to the right, time downwards)."""
    from matplotlib.image import imsave

    if stamp.shape[1] > THUMB_MAX_COLUMNS:
        columns = track_columns(stamp, header, hit)
        ref = reference_column(hit, stamp.shape[1]) - columns.start
        stamp = stamp[:, columns]
        hit = {**hit, "index": int(hit.get("index") or 0), "stamp_start": int(hit.get("index") or 0) - ref}
    image, _, _ = stamp_axes(stamp, header, hit)
    repeat = max(1, THUMB_ROWS // max(1, image.shape[0]))
    lo, hi = _limits(image)
    buf = io.BytesIO()
    imsave(buf, np.repeat(image, repeat, axis=0), cmap=CMAP, vmin=lo, vmax=hi, format="png", pil_kwargs=_PNG_OPTIONS)
    return buf.getvalue()


def overview_png(hits: Any, header: Mapping[str, Any]) -> bytes:
    """Hits across the band: frequency (MHz) against SNR or statistic, coloured by drift (Hz/s)."""
    with _FIGURE_LOCK:
        return _overview_png(hits, header)


def _overview_png(hits: Any, header: Mapping[str, Any]) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    ax = fig.add_axes((0.08, 0.15, 0.76, 0.75))
    measure = "snr" if "snr" in hits.columns else ("statistic" if "statistic" in hits.columns else None)
    freqs = hits["freqs"].to_numpy(dtype=float)
    values = hits[measure].to_numpy(dtype=float) if measure else np.ones(len(hits))
    if "drift_rate" in hits.columns and len(hits):
        drift = hits["drift_rate"].to_numpy(dtype=float)
        limit = float(np.nanmax(np.abs(drift))) or 1.0
        points = ax.scatter(freqs, values, c=drift, cmap="coolwarm", vmin=-limit, vmax=limit, s=14)
        fig.colorbar(points, cax=fig.add_axes((0.86, 0.15, 0.02, 0.75)), label="drift rate (Hz/s)")
    else:
        ax.scatter(freqs, values, s=14, color="#1f4e79")
    if measure == "statistic" and len(hits) and np.nanmin(values) > 0 and np.nanmax(values) > 20 * np.nanmin(values):
        ax.set_yscale("log")
    fch1, foff, nchans = (header.get(k) for k in ("fch1", "foff", "nchans"))
    if None not in (fch1, foff, nchans):
        edges = sorted((float(fch1), float(fch1) + float(foff) * float(nchans)))
        ax.set_xlim(*edges)
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.set_xlabel("frequency (MHz)")
    ax.set_ylabel(measure or "hit")
    ax.set_title(f"{len(hits)} hits", fontsize=10)
    return _png(fig)


class Renderer:
    """Draws full waterfalls in the calling thread (`processes=0`) or in a pool of processes, one
    figure each, so renders use several cores instead of queueing on one figure lock."""

    def __init__(self, processes: int = 0):
        self.processes = processes
        self._pool: Any = None
        self._lock = threading.Lock()

    def waterfall(self, stamp: np.ndarray, header: Mapping[str, Any], hit: Mapping[str, Any]) -> bytes:
        if not self.processes:
            return waterfall_png(stamp, header, hit)
        with self._lock:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                # spawn: forking a process that runs threads (the server's) can copy a held lock
                self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))
        return self._pool.submit(waterfall_png, stamp, dict(header), dict(hit)).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class PictureCache:
    """PNG bytes by key, rendered once: concurrent requests for one picture wait for one render."""

    def __init__(self, size: int = 1024):
        self._cache = _LRU(size)
        self._pending: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()
        self.renders = 0

    def get(self, key: Any, render: Callable[[], bytes]) -> bytes:
        found = self._cache.get(key)
        if found is not None:
            return found
        with self._lock:
            key_lock = self._pending.setdefault(key, threading.Lock())
        with key_lock:  # single flight: the second request for a picture waits for the first render
            found = self._cache.get(key)
            if found is None:
                found = render()
                with self._lock:
                    self.renders += 1
                self._cache.put(key, found)
        with self._lock:
            self._pending.pop(key, None)
        return found

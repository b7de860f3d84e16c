"""PNG pictures of results, drawn with matplotlib's Agg backend and kept in a small cache.

Four pictures: the full waterfall of one hit (axes in Hz offset from the hit and seconds, a
colour bar, the drift path of dedoppler hits as two dashed lines framing the track, the spectrum
integrated over time under it, de-drifted for drifting hits), a thumbnail of the same stamp
(plain pixels, no axes: cheap enough for a grid of dozens), and two of a result's hits across the
band: strength against frequency (overview) and a histogram. Text from results (a source name
with `$`) is drawn as it is, never parsed as matplotlib maths. Figures use the object API (`Figure`), never pyplot; one lock
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

from bl_reservoir.io.header import BL_FINE_FOFF_HZ, band_edges
from bl_reservoir.web.bucket import _LRU

THUMB_ROWS = 96          # pixel rows of a thumbnail (time is stretched to this)
THUMB_MAX_COLUMNS = 256  # wider stamps are cropped to the hit's track for thumbnails
THUMB_MARGIN = 48        # channels kept either side of the track
HISTOGRAM_BINS = 100     # parts of the band the hits histogram counts in
#: The most columns of a stamp a picture reads: a waterfall is 800 pixels wide, so more only cost memory
#: (a stamp of 2,000,000 columns would take 128 MB to read and gigabytes to draw). Wider ones are cropped
#: to this many around the hit's track.
MAX_COLUMNS = 4096
#: The most integrations (rows) a picture draws; a taller stamp is refused (`PictureTooLarge`).
MAX_ROWS = 4096
CMAP = "viridis"
#: The drift lines: a colour viridis never takes, so they show on its dark background and its bright signals.
TRACK_COLOUR = "#ff3b6b"
#: Characters of a source name a waterfall's title shows (longer ones end in "…").
TITLE_CHARS = 70
#: matplotlib figures are not safe to draw from several threads at once; thumbnails need no figure.
_FIGURE_LOCK = threading.Lock()
#: zlib level 1: a waterfall encodes ~4x faster than at the default 6, for ~1.5x the bytes
_PNG_OPTIONS = {"compress_level": 1}


class PictureTooLarge(ValueError):
    """A stamp too large to draw, found from its shape before any sample is read."""


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


def dedrifted_mean(image: np.ndarray, step_hz: float, tsamp_s: float, drift_hz_s: float) -> np.ndarray:
    """Mean over time of `image` (one row per integration, frequency increasing to the right, `step_hz` per
    column) with each row shifted back by `drift_hz_s` times its time since the first, so a drifting signal
    adds up in the column where it starts instead of smearing over its track. A column averages the rows that
    reach it (the first row is never shifted); NaN where no finite sample does."""
    n_time, width = image.shape
    shifts = np.rint(drift_hz_s * tsamp_s * np.arange(n_time) / step_hz).astype(np.int64) if step_hz else \
        np.zeros(n_time, dtype=np.int64)
    total, count = np.zeros(width), np.zeros(width)
    for row, shift in zip(image, shifts):
        if abs(shift) >= width:
            continue
        lo, hi = max(0, -shift), min(width, width - shift)   # columns c of the result with c + shift inside
        part = row[lo + shift: hi + shift].astype(np.float64)
        finite = np.isfinite(part)
        total[lo:hi] += np.where(finite, part, 0.0)
        count[lo:hi] += finite
    mean = np.full(width, np.nan)
    np.divide(total, count, out=mean, where=count > 0)
    return mean


def _title(source: str, freq: float, drift: Any) -> str:
    """Two lines: the source (shortened to fit the figure) and the hit."""
    source = source if len(source) <= TITLE_CHARS else source[: TITLE_CHARS - 1] + "…"
    hit = f"hit at {freq:.6f} MHz"
    if drift is not None and np.isfinite(drift):
        hit += f", drift {float(drift):+.4f} Hz/s (framed by the dashed lines)"
    return f"{source}\n{hit}" if source else hit


class _WaterfallFigure:
    """One waterfall figure built once and redrawn for each hit: creating axes, ticks and the
    colour bar costs more than drawing them, so only the data, limits and labels change."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        # fixed axes positions: a layout engine would cost two thirds of the render time
        self.fig = Figure(figsize=(8, 6.4), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.11, 0.37, 0.71, 0.53))
        self.image = self.ax.imshow(np.zeros((2, 2)), aspect="auto", cmap=CMAP, interpolation="nearest")
        self.colorbar = self.fig.colorbar(self.image, cax=self.fig.add_axes((0.84, 0.37, 0.025, 0.53)),
                                          label="power (arbitrary units)")
        # the drift path, drawn twice beside the track (as the cadence pictures do) so that it hides nothing
        self.track = [self.ax.plot([], [], color=TRACK_COLOUR, ls="--", lw=1.6)[0] for _ in range(2)]
        self.ax.set_ylabel("time (s)")
        self.ax.tick_params(labelbottom=False)
        self.spectrum = self.fig.add_axes((0.11, 0.08, 0.71, 0.24))
        (self.mean,) = self.spectrum.plot([], [], color="#1f4e79", lw=1)

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
        drift = hit.get("drift_rate")
        drifting = drift is not None and bool(np.isfinite(drift))
        tsamp = duration / image.shape[0]
        if drifting:
            # the track through the centres of the first and last integrations, framed a little to each side
            start = (float(hit["freq_start"]) - freq) * 1e6 if hit.get("freq_start") is not None else 0.0
            xs = np.array([start, start + float(drift) * (duration - tsamp)])
            gap = max(3 * step, 0.04 * (right - left))
            for line, side in zip(self.track, (-gap, gap)):
                line.set_data(xs + side, [tsamp / 2, duration - tsamp / 2])
            mean = dedrifted_mean(image, step, tsamp, float(drift))
            self.spectrum.set_ylabel("mean power\n(de-drifted)")
        else:
            mean = image.mean(axis=0)
            self.spectrum.set_ylabel("mean power")
        for line in self.track:
            line.set_visible(drifting)
        for axes in (self.ax, self.spectrum):
            axes.set_xlim(left, right)
        self.ax.set_ylim(duration, 0.0)
        self.ax.set_title(_title(source, freq, drift), fontsize=10, parse_math=False)
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
    """Full waterfall of one hit: Hz offset vs seconds, colour bar, the drift path framed by two dashed lines
    beside the track, and the spectrum integrated over time (de-drifted along the hit's drift)."""
    image, offsets, duration = stamp_axes(stamp, header, hit)
    with _FIGURE_LOCK:
        if not _WATERFALL:
            _WATERFALL.append(_WaterfallFigure())
        return _WATERFALL[0].render(image, offsets, duration, hit, str(header.get("source_name", "")))


def track_columns(stamp: np.ndarray, header: Mapping[str, Any], hit: Mapping[str, Any],
                  margin: int = THUMB_MARGIN) -> slice:
    """Columns of the stamp around the hit's track (its drift over the observation), plus `margin`."""
    return _track(*stamp.shape, header, hit, margin)


def _track(n_time: int, width: int, header: Mapping[str, Any], hit: Mapping[str, Any], margin: int) -> slice:
    ref = reference_column(hit, width)
    drift = hit.get("drift_rate")
    foff_hz = float(header.get("foff") or BL_FINE_FOFF_HZ * 1e-6) * 1e6
    shift = 0.0
    if drift is not None and np.isfinite(drift) and foff_hz:
        shift = float(drift) * (n_time - 1) * float(header.get("tsamp") or 1.0) / foff_hz
    shift = shift if np.isfinite(shift) else 0.0
    lo, hi = sorted((ref, ref + round(max(-width, min(width, shift)))))
    return slice(max(0, lo - margin), min(width, hi + margin + 1))


def _seen_from(hit: Mapping[str, Any], width: int, start: int) -> dict[str, Any]:
    """`hit` as a stamp cropped to begin at column `start` sees it (its reference column moved left)."""
    index = hit.get("index")
    index = int(index) if isinstance(index, (int, float, np.number)) and np.isfinite(index) else 0
    return {**hit, "index": index, "stamp_start": index - (reference_column(hit, width) - start)}


class StampWindow:
    """The columns of a stamp a picture reads, chosen from its shape before any sample is read (the
    `window` of `Bucket.stamp`): all of a narrow stamp, `max_columns` around the hit's track of a wide one.
    Afterwards `hit` is the hit as the cropped stamp sees it; a stamp of more than `MAX_ROWS` integrations
    raises `PictureTooLarge`."""

    def __init__(self, header: Mapping[str, Any], hit: Mapping[str, Any], max_columns: int = MAX_COLUMNS):
        self.header = header
        self.hit = dict(hit)
        self.max_columns = max_columns

    def __call__(self, n_time: int, width: int) -> slice:
        if n_time > MAX_ROWS:
            raise PictureTooLarge(f"the stamp has {n_time} integrations, more than the {MAX_ROWS} a picture draws")
        if width <= self.max_columns:
            return slice(0, width)
        track = _track(n_time, width, self.header, self.hit, THUMB_MARGIN)
        start = min(max(0, (track.start + track.stop - self.max_columns) // 2), width - self.max_columns)
        self.hit = _seen_from(self.hit, width, start)
        return slice(start, start + self.max_columns)


def thumbnail_png(stamp: np.ndarray, header: Mapping[str, Any], hit: Mapping[str, Any]) -> bytes:
    """A plain-pixel thumbnail of one stamp, cropped to the hit's track for wide (dedoppler) stamps
    (frequency increasing to the right, time downwards)."""
    from matplotlib.image import imsave

    if stamp.shape[1] > THUMB_MAX_COLUMNS:
        columns = track_columns(stamp, header, hit)
        hit = _seen_from(hit, stamp.shape[1], columns.start)
        stamp = stamp[:, columns]
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
    edges = band_edges(header)
    if edges is not None and edges[0] < edges[1]:
        ax.set_xlim(*edges)
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.set_xlabel("frequency (MHz)")
    ax.set_ylabel(measure or "hit")
    ax.set_title(f"{len(hits)} hits", fontsize=10)
    return _png(fig)


def histogram_png(hits: Any, header: Mapping[str, Any], bins: int = HISTOGRAM_BINS) -> bytes:
    """How many hits fall in each of `bins` equal parts of the observation's band (MHz), with the edges of
    the bands the strongest hits are shown by (energy detection's `BANDS_MHZ`) where they fall inside."""
    with _FIGURE_LOCK:
        return _histogram_png(hits, header, bins)


def _histogram_png(hits: Any, header: Mapping[str, Any], bins: int) -> bytes:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from bl_reservoir.energy_detection.detect import BANDS_MHZ

    fig = Figure(figsize=(9, 2.6), dpi=100)
    ax = fig.add_axes((0.08, 0.2, 0.76, 0.68))   # the overview's x extent: the two line up one above the other
    freqs = hits["freqs"].to_numpy(dtype=float) if "freqs" in hits.columns else np.zeros(0)
    freqs = freqs[np.isfinite(freqs)]
    edges = band_edges(header) or ((float(freqs.min()), float(freqs.max())) if freqs.size else (0.0, 1.0))
    if edges[0] == edges[1]:
        edges = (edges[0] - 0.5, edges[1] + 0.5)
    ax.hist(freqs, bins=bins, range=edges, color="#1f4e79")
    for edge in sorted({e for band in BANDS_MHZ for e in band if np.isfinite(e)}):
        if edges[0] < edge < edges[1]:
            ax.axvline(edge, color="#a4262c", ls=":", lw=1.2, zorder=3)
    ax.set_xlim(*edges)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.set_xlabel("frequency (MHz)")
    ax.set_ylabel("hits")
    ax.set_title(f"{freqs.size} hits across the band, in {bins} bins of {(edges[1] - edges[0]) / bins:.4g} MHz",
                 fontsize=10)
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

"""The energy-detection driver: stream coarse channels through the kernels, collect hits and stamps.

One coarse channel is in memory at a time (plus its float64 bandpass fit and the stamps of
its hits), whatever the file size or the number of coarse channels.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from bl_reservoir.energy_detection._kernels import (
    bandpass_knots,
    cleaned_stamps,
    fit_bandpass,
    repair_dc,
    window_statistics,
)
from bl_reservoir.errors import UsageError
from bl_reservoir.io import Observation

log = logging.getLogger(__name__)

#: info_df columns, in order: window start (fine channel in the file), K^2, p-value, MHz at `index`.
COLUMNS = ("index", "statistic", "pvalue", "freqs", "coarse_channel")

#: Bands of `best_per_band`, in MHz, as the original front end showed them: [1000, 1400],
#: (1400, 1700], (1700, inf).
BANDS_MHZ = ((1000.0, 1400.0), (1400.0, 1700.0), (1700.0, math.inf))


@dataclass(frozen=True)
class Parameters:
    """Options of one energy-detection run (defaults: the original fine-resolution product).

    A window is a hit when its K^2 statistic exceeds `threshold`, or, when `pvalue` is set,
    when its p-value is below `pvalue` (the mid-resolution product used `pvalue=1e-25`).
    `window` and `stride` count fine channels; `knots` sets the bandpass spline.
    """

    threshold: float = 2048.0
    pvalue: float | None = None
    window: int = 256
    stride: int = 128
    knots: int = 16
    coarse_channel_width: int | None = None
    best_per_band: int = 0

    def __post_init__(self) -> None:
        if self.window < 2 or self.stride < 1:
            raise UsageError(f"--window must be >= 2 and --stride >= 1 (got {self.window} and {self.stride})")
        if self.knots < 1:
            raise UsageError(f"--knots must be >= 1 (got {self.knots})")
        if self.pvalue is not None and not 0 < self.pvalue <= 1:
            raise UsageError(f"--pvalue must be in (0, 1] (got {self.pvalue})")
        if self.best_per_band < 0:
            raise UsageError(f"--best-per-band must be >= 0 (got {self.best_per_band})")
        if self.coarse_channel_width is not None and self.coarse_channel_width < 1:
            raise UsageError(f"--coarse-channel-width must be positive (got {self.coarse_channel_width})")

    def is_hit(self, statistic: np.ndarray, pvalue: np.ndarray) -> np.ndarray:
        """Boolean mask of hit windows (NaN statistics are never hits)."""
        if self.pvalue is not None:
            return pvalue < self.pvalue
        return statistic > self.threshold

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChannelHits:
    """Hits of one coarse channel: window starts (channel in the block), K^2, p-value, stamps."""

    starts: np.ndarray
    statistic: np.ndarray
    pvalue: np.ndarray
    stamps: np.ndarray


def detect_block(block: np.ndarray, params: Parameters = Parameters()) -> ChannelHits:
    """Run the method on one float32 `(n_time, W)` coarse channel (DC-repaired in place)."""
    n_time, width = block.shape
    if params.window > width:
        raise UsageError(f"--window {params.window} is wider than the coarse channel ({width} fine channels)")
    if bandpass_knots(width, params.knots).size + 4 > width:
        raise UsageError(f"--knots {params.knots} is too many for a coarse channel of {width} fine channels")
    repair_dc(block)
    try:
        fit = fit_bandpass(block.mean(axis=0), params.knots)  # float32 mean, as the original took it
    except np.linalg.LinAlgError:
        raise UsageError(f"--knots {params.knots}: the bandpass spline has no unique fit on {width} channels") from None
    starts, statistic, pvalue = window_statistics(block, fit, window=params.window, stride=params.stride)
    hit = params.is_hit(statistic, pvalue)
    starts = starts[hit]
    return ChannelHits(starts, statistic[hit], pvalue[hit], cleaned_stamps(block, fit, starts, params.window))


class StampSpool:
    """float32 stamps appended to a scratch file, so that the hits of a file with much RFI never
    pile up in memory; `array()` maps them back as one `(n, n_time, window)` array."""

    def __init__(self, directory: str | os.PathLike, n_time: int, window: int):
        fd, self.path = tempfile.mkstemp(prefix=".stamps-", suffix=".f32", dir=directory)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self.shape = (0, n_time, window)

    def append(self, stamps: np.ndarray) -> None:
        assert self._file is not None, "spool already read"
        np.ascontiguousarray(stamps, dtype=np.float32).tofile(self._file)
        self.shape = (self.shape[0] + len(stamps), *self.shape[1:])

    def array(self) -> np.ndarray:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.shape[0] == 0:
            return np.zeros(self.shape, dtype=np.float32)
        return np.memmap(self.path, dtype=np.float32, mode="r", shape=self.shape)

    def close(self) -> None:
        """Delete the scratch file (arrays from `array()` must be dropped first)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> StampSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detect(obs: Observation, params: Parameters = Parameters(), *, progress: bool = False,
           spool: StampSpool | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Hits of every coarse channel of `obs`: the info_df frame and float32 stamps `(n_hits, n_time, window)`.

    With a `spool` the stamps go to its scratch file and come back memory-mapped.
    """
    from tqdm import tqdm

    frames: list[pd.DataFrame] = []
    stamps: list[np.ndarray] = []
    width = obs.coarse_channel_width
    with tqdm(total=obs.n_coarse_channels, unit="coarse channel", disable=not progress,
              desc=obs.name, leave=False) as bar:
        for cc in range(obs.n_coarse_channels):
            block = obs.coarse_channel(cc)
            found = detect_block(block, params)
            del block  # let the next read reuse the memory: never two blocks alive
            index = found.starts + cc * width
            frames.append(pd.DataFrame({
                "index": index.astype(np.int64),
                "statistic": found.statistic,
                "pvalue": found.pvalue,
                "freqs": obs.header["fch1"] + obs.header["foff"] * index,
                "coarse_channel": np.full(index.size, cc, dtype=np.int64),
            }))
            if spool is not None:
                spool.append(found.stamps)
            else:
                stamps.append(found.stamps)
            log.debug("%s: coarse channel %d: %d hits", obs.path, cc, index.size)
            bar.update(1)
    hits = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    if spool is not None:
        stack = spool.array()
    else:
        stack = (np.concatenate(stamps) if stamps
                 else np.zeros((0, obs.n_time, params.window), dtype=np.float32))
    log.info("%s: %d hits in %d coarse channels", obs.path, len(hits), obs.n_coarse_channels)
    return hits, stack


def best_per_band(hits: pd.DataFrame, n: int) -> pd.DataFrame:
    """Rows of `hits` with the `n` highest statistics in each band of `BANDS_MHZ`.

    Returns a frame with `row` (position in `hits`), `band` ("1000-1400", "1400-1700",
    "1700-") and the hit's `statistic` and `freqs`, band by band, highest statistic first.
    """
    parts = []
    for lo, hi in BANDS_MHZ:
        if lo == 1000.0:
            inside = (hits["freqs"] >= lo) & (hits["freqs"] <= hi)
        else:
            inside = (hits["freqs"] > lo) & (hits["freqs"] <= hi)
        top = hits[inside].sort_values("statistic", ascending=False, kind="stable").head(n)
        label = f"{lo:.0f}-" + ("" if math.isinf(hi) else f"{hi:.0f}")
        parts.append(pd.DataFrame({"row": top.index.to_numpy(dtype=np.int64), "band": label,
                                   "statistic": top["statistic"].to_numpy(),
                                   "freqs": top["freqs"].to_numpy()}))
    return pd.concat(parts, ignore_index=True)

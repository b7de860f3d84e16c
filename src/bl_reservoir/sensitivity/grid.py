"""Where signals are injected: a grid, or a Latin hypercube, over SNR, drift rate (Hz/s) and width (Hz).

A spec `LO:HI:N` on the command line gives N evenly spaced values from LO to HI (`5:50:10`);
`LO:HI` gives both ends, and a single number gives one value. The grid values are also the bin
centres the report aggregates recall over, so a Latin hypercube draw is binned to the nearest one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.errors import UsageError

#: The three physical axes of an injection, with their units.
AXES = {"snr": "", "drift_rate": "Hz/s", "width": "Hz"}
SAMPLINGS = ("grid", "lhs")


def parse_spec(text: str, *, name: str = "value") -> tuple[float, ...]:
    """`"5:50:10"` -> ten values from 5 to 50; `"2:20"` -> (2, 20); `"8"` -> (8,)."""
    parts = str(text).split(":")
    try:
        numbers = [float(p) for p in parts[:2]]
        count = int(parts[2]) if len(parts) == 3 else (1 if len(parts) == 1 else 2)
    except ValueError:
        raise UsageError(f"--{name} {text!r}: expected LO:HI:N, LO:HI or one number") from None
    if len(parts) > 3 or count < 1 or not all(np.isfinite(numbers)):
        raise UsageError(f"--{name} {text!r}: expected LO:HI:N with N >= 1")
    if len(numbers) == 1:
        return (numbers[0],)
    values = np.linspace(numbers[0], numbers[1], count) if count > 1 else np.array([numbers[0]])
    return tuple(float(round(v, 9)) for v in values)


@dataclass(frozen=True)
class Grid:
    """The injection design: values per axis, smearing on/off, and trials per grid point."""

    snr: tuple[float, ...]
    drift_rate: tuple[float, ...]
    width: tuple[float, ...]
    doppler_smearing: tuple[bool, ...] = (False, True)
    trials: int = 1
    sampling: str = "grid"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise UsageError(f"--trials {self.trials}: must be at least 1")
        if self.sampling not in SAMPLINGS:
            raise UsageError(f"--sampling {self.sampling!r}: expected one of {', '.join(SAMPLINGS)}")
        if min(self.snr) <= 0 or min(self.width) <= 0:
            raise UsageError("SNR and width must be positive")

    @property
    def n_points(self) -> int:
        return len(self.snr) * len(self.drift_rate) * len(self.width) * len(self.doppler_smearing)

    @property
    def n_signals(self) -> int:
        return self.n_points * self.trials

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def injections(self, seed: Any = None) -> pd.DataFrame:
        """One row per signal: snr, drift_rate, width, doppler_smearing, trial, and the bin centres
        (`snr_bin`, `drift_bin`, `width_bin`) it is reported under. Rows are shuffled by `seed`,
        so neighbouring signals in a file differ."""
        rng = np.random.default_rng(seed)
        if self.sampling == "grid":
            rows = [(s, d, w, sm, t) for t in range(self.trials)
                    for s, d, w, sm in product(self.snr, self.drift_rate, self.width, self.doppler_smearing)]
            table = pd.DataFrame(rows, columns=["snr", "drift_rate", "width", "doppler_smearing", "trial"])
        else:
            table = self._latin_hypercube(rng)
        table["snr_bin"] = _nearest(table["snr"], self.snr)
        table["drift_bin"] = _nearest(table["drift_rate"], self.drift_rate)
        table["width_bin"] = _nearest(table["width"], self.width)
        order = rng.permutation(len(table))
        return table.iloc[order].reset_index(drop=True)

    def _latin_hypercube(self, rng: np.random.Generator) -> pd.DataFrame:
        """As many signals as the grid would have, drawn by a Latin hypercube over the axes' ranges."""
        from scipy.stats import qmc

        n_per_smearing = self.n_signals // len(self.doppler_smearing)
        frames = []
        for smearing in self.doppler_smearing:
            unit = qmc.LatinHypercube(d=3, seed=rng).random(n_per_smearing)
            lows = [min(self.snr), min(self.drift_rate), min(self.width)]
            highs = [max(self.snr), max(self.drift_rate), max(self.width)]
            values = qmc.scale(unit, lows, highs) if lows != highs else np.tile(lows, (n_per_smearing, 1))
            for axis, (lo, hi) in enumerate(zip(lows, highs)):
                if lo == hi:
                    values[:, axis] = lo
            frame = pd.DataFrame(values, columns=["snr", "drift_rate", "width"])
            frame["doppler_smearing"] = smearing
            frame["trial"] = 0
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def _nearest(values: pd.Series, centres: tuple[float, ...]) -> np.ndarray:
    centres_arr = np.asarray(centres, dtype=float)
    return centres_arr[np.abs(np.asarray(values, dtype=float)[:, None] - centres_arr[None, :]).argmin(axis=1)]


def quick_grid(grid: Grid, trials: int = 2) -> Grid:
    """`--quick`: the SNR axis as asked, three drift rates (both ends and zero), the middle width:
    a small design that still gives a recall curve against SNR."""
    drifts = grid.drift_rate
    quick_drifts = tuple(sorted({drifts[0], drifts[-1], drifts[len(drifts) // 2]}))
    if len(drifts) > 1 and 0.0 not in quick_drifts and min(drifts) < 0 < max(drifts):
        quick_drifts = tuple(sorted({drifts[0], 0.0, drifts[-1]}))
    width = (grid.width[len(grid.width) // 2],)
    return Grid(snr=grid.snr, drift_rate=quick_drifts, width=width, doppler_smearing=grid.doppler_smearing,
                trials=trials, sampling=grid.sampling)

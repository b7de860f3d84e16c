"""Shared fixtures: small synthetic observations, service requirements."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bl_reservoir.synth import Signal, make_observation

#: A narrow coarse channel keeps test files small; the code never assumes 2**20.
SMALL_WIDTH = 4096


def require(condition: bool, reason: str) -> None:
    """Skip when a service is missing, unless CI asked for every service (then fail)."""
    if condition:
        return
    if os.environ.get("BL_RESERVOIR_REQUIRE_SERVICES"):
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def require_executable(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    return path  # type: ignore[return-value]


@pytest.fixture
def small_obs(tmp_path: Path):
    """Factory: `small_obs(name, n_coarse=2, signals={cc: [Signal...]}, **kw)` -> (path, truth)."""

    def make(name: str = "obs.h5", n_coarse: int = 2, width: int = SMALL_WIDTH, **kw):
        return make_observation(tmp_path / name, n_coarse_channels=n_coarse, coarse_channel_width=width,
                                seed=kw.pop("seed", 1), **kw)

    return make


@pytest.fixture
def strong_signal_obs(small_obs):
    """Two coarse channels of 4096, one strong drifting signal in each (known positions)."""
    signals = {0: [Signal(index=1000, drift_rate=0.5, snr=60.0, width=4.0)],
               1: [Signal(index=3000, drift_rate=-0.3, snr=60.0, width=4.0)]}
    return small_obs("strong.h5", signals=signals)

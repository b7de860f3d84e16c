"""`bl-reservoir demo`: the whole platform in about a minute, with nothing to set up.

It synthesises an ABACAD cadence (six small `.h5` files: a drifting signal in the three ON
files, a stationary one in all six, as radio interference looks), runs a campaign of every
built-in search over it on the embedded Dask cluster, and leaves the results in the bucket and
the job store, where `bl-reservoir serve` shows them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bl_reservoir.synth import Signal

log = logging.getLogger(__name__)

DEMO_DIR = "bl-demo"
COARSE_WIDTH = 65536   # fine channels per coarse channel: small files, same code paths as 2**20
N_COARSE = 2
ALGORITHMS = ("energy_detection/preprocess_fine", "dedoppler/search")
#: (signal, files it is in): an ON-only drifting signal per coarse channel, and one in every file.
SIGNALS = (
    (Signal(index=20_000, drift_rate=0.4, snr=40.0, width=4.0), (0, 2, 4)),
    (Signal(index=COARSE_WIDTH + 30_000, drift_rate=-0.25, snr=30.0, width=4.0), (0, 2, 4)),
    (Signal(index=50_000, drift_rate=0.0, snr=60.0, width=6.0), (0, 1, 2, 3, 4, 5)),
)


@dataclass
class DemoCampaign:
    algorithm: str
    campaign: str
    counts: dict[str, int]


def available_algorithms() -> list[str]:
    """The built-in searches this installation has (dedoppler may be absent in a partial install)."""
    from bl_reservoir.algorithms import list_algorithms

    known = {alg.name for alg in list_algorithms()}
    return [name for name in ALGORITHMS if name in known]


def make_demo_cadence(out_dir: str | Path = DEMO_DIR, seed: int = 1) -> list[Path]:
    """The six cadence files (reused when already there: the demo is cheap to run again)."""
    from bl_reservoir.synth import make_cadence

    out = Path(out_dir)
    existing = sorted(out.glob("cadence_*.h5"))
    if len(existing) == 6:
        return existing
    paths, _ = make_cadence(out, SIGNALS, n_coarse_channels=N_COARSE, coarse_channel_width=COARSE_WIDTH,
                            target="DEMO_TARGET", seed=seed)
    return paths


def run_demo(out_dir: str | Path = DEMO_DIR, *, bucket: str | None = None, db: str | None = None,
             seed: int = 1, on_created: Any = None, on_progress: Any = None) -> list[DemoCampaign]:
    """Synthesise the cadence and run one campaign per available search, on one embedded cluster."""
    from bl_reservoir.scale import campaigns
    from bl_reservoir.scale.engine import Engine

    paths = make_demo_cadence(out_dir, seed)
    done = []
    with Engine() as engine:
        for algorithm in available_algorithms():
            cid, counts = campaigns.submit(algorithm, [str(p) for p in paths], bucket=bucket, db=db,
                                           engine=engine, on_created=on_created, on_progress=on_progress)
            done.append(DemoCampaign(algorithm, cid, counts))
    return done

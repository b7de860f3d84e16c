"""Injection and recovery: synthesise observations from a `Grid`, run algorithms on them, match.

Many signals share one file: each sits in its own slot of fine channels, wide enough for the
largest drift on the grid plus a guard band wider than an energy-detection window, so no hit can
touch two signals. Noise-only files give the false-hit rate. Every algorithm runs through the
normal runner (`bl_reservoir.runner.run_job`), or as a campaign on a Dask scheduler, so external
algorithms in their own environments are measured exactly as they run in production.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.errors import JobFailed, ReservoirError, UsageError
from bl_reservoir.sensitivity.grid import Grid
from bl_reservoir.sensitivity.matching import Geometry, Tolerances, match
from bl_reservoir.synth import FOFF_HZ, N_TIME, TSAMP, Signal, make_observation

log = logging.getLogger(__name__)

DEFAULT_TOLERANCES = Tolerances()

#: Fine channels left clear on each side of a signal's path: more than one energy-detection window.
GUARD = 320
#: Algorithms whose hits carry no drift rate cover `[index, index + window)` fine channels.
HIT_WINDOWS: dict[str, int] = {"energy_detection/preprocess_fine": 256}


@dataclass(frozen=True)
class Design:
    """How the grid becomes files: coarse-channel width, coarse channels per file, noise channels."""

    grid: Grid
    coarse_channel_width: int = 65536
    coarse_channels_per_file: int = 8
    noise_coarse_channels: int = 4
    n_time: int = N_TIME
    seed: int | None = None

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.n_time, TSAMP, FOFF_HZ)

    @property
    def slot_width(self) -> int:
        """Fine channels per signal slot: the widest smeared path plus a guard on each side."""
        span = max(abs(float(self.geometry.step(d))) for d in self.grid.drift_rate) * self.n_time
        return int(math.ceil(span + 2 * GUARD))

    def slots(self) -> np.ndarray:
        """Start channel of each usable slot in one coarse channel (the DC bin's slot left empty)."""
        starts = np.arange(0, self.coarse_channel_width - self.slot_width + 1, self.slot_width)
        dc = self.coarse_channel_width // 2
        keep = ~((starts <= dc + 8) & (starts + self.slot_width > dc - 8))
        if keep.sum() < 1:
            raise UsageError(f"coarse channels of {self.coarse_channel_width} fine channels are too narrow "
                             f"for drifts up to {max(map(abs, self.grid.drift_rate))} Hz/s")
        return starts[keep]

    def bandwidth_mhz(self, n_coarse: int) -> float:
        return n_coarse * self.coarse_channel_width * abs(FOFF_HZ) / 1e6


@dataclass
class Injected:
    """The synthesised set: truth (one row per signal, with `file`), signal and noise file paths."""

    truth: pd.DataFrame
    signal_files: list[Path]
    noise_files: list[Path]
    signal_bandwidth_mhz: float
    noise_bandwidth_mhz: float


@dataclass
class Recovery:
    """One algorithm's outcome: truth with `found`, hits with `signal`, noise hits, wall time, error."""

    algorithm: str
    truth: pd.DataFrame = field(default_factory=pd.DataFrame)
    signal_hits: pd.DataFrame = field(default_factory=pd.DataFrame)
    noise_hits: pd.DataFrame = field(default_factory=pd.DataFrame)
    wall_seconds: float = 0.0
    version: str = ""
    options: tuple[str, ...] = ()
    error: str | None = None


def place(design: Design, injections: pd.DataFrame, seed: Any = None) -> pd.DataFrame:
    """Give each injection a file number, coarse channel and start `index` (fine channel in its file
    at t = 0), centring its path in a slot with a small random shift so windows do not line up."""
    rng = np.random.default_rng(seed)
    slots = design.slots()
    per_file = len(slots) * design.coarse_channels_per_file
    n = len(injections)
    out = injections.reset_index(drop=True).copy()
    position = np.arange(n)
    out["file_no"] = position // per_file
    out["coarse_channel"] = (position % per_file) // len(slots)
    slot = slots[position % len(slots)]
    steps = np.where(out["doppler_smearing"], design.n_time, design.n_time - 1)
    travel = design.geometry.step(out["drift_rate"]) * steps
    jitter = rng.integers(-GUARD // 4, GUARD // 4 + 1, n)
    local = np.round(slot + design.slot_width / 2 - travel / 2).astype(int) + jitter
    out["index"] = out["coarse_channel"] * design.coarse_channel_width + local
    return out


def _design_key(design: Design) -> str:
    import json

    return json.dumps({"grid": design.grid.to_dict(), "coarse_channel_width": design.coarse_channel_width,
                       "coarse_channels_per_file": design.coarse_channels_per_file,
                       "noise_coarse_channels": design.noise_coarse_channels, "n_time": design.n_time,
                       "seed": design.seed}, sort_keys=True)


def synthesise(design: Design, folder: str | os.PathLike, reuse: bool = False) -> Injected:
    """Write the signal files and noise-only files (`.h5`) into `folder`; return the truth.

    With `reuse`, files already written for the same design (recorded in `design.json`) are kept.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "design.json"
    keep = reuse and stamp.is_file() and stamp.read_text() == _design_key(design)
    stamp.unlink(missing_ok=True)  # files being rewritten belong to no design until done
    # one integer seed per file, all derived from `design.seed`
    grid_seed, place_seed, *file_seeds = np.random.SeedSequence(design.seed).generate_state(2 + 1024).tolist()
    truth = place(design, design.grid.injections(grid_seed), place_seed)
    signal_files = []
    width = design.coarse_channel_width
    for file_no, rows in truth.groupby("file_no", sort=True):
        n_coarse = int(rows["coarse_channel"].max()) + 1
        signals: dict[int, list[Signal]] = {}
        for row in rows.itertuples():
            signals.setdefault(int(row.coarse_channel), []).append(Signal(
                int(row.index - row.coarse_channel * width), float(row.drift_rate), float(row.snr),
                float(row.width), bool(row.doppler_smearing)))
        path = folder / f"signals_{file_no:03d}.h5"
        if not (keep and path.is_file()):
            make_observation(path, n_coarse_channels=n_coarse, coarse_channel_width=width, n_time=design.n_time,
                             signals=signals, seed=file_seeds[file_no])
        signal_files.append(path)
    truth["file"] = [str(signal_files[i]) for i in truth["file_no"]]
    noise_files = []
    remaining, noise_no = design.noise_coarse_channels, 0
    while remaining > 0:
        n_coarse = min(remaining, design.coarse_channels_per_file)
        path = folder / f"noise_{noise_no:03d}.h5"
        if not (keep and path.is_file()):
            make_observation(path, n_coarse_channels=n_coarse, coarse_channel_width=width, n_time=design.n_time,
                             noise_only=True, seed=file_seeds[-1 - noise_no])
        noise_files.append(path)
        remaining -= n_coarse
        noise_no += 1
    stamp.write_text(_design_key(design))
    n_signal_coarse = sum(int(r["coarse_channel"].max()) + 1 for _, r in truth.groupby("file_no"))
    log.info("synthesised %d signals in %d files, %d noise files", len(truth), len(signal_files), len(noise_files))
    return Injected(truth, signal_files, noise_files, design.bandwidth_mhz(n_signal_coarse),
                    design.bandwidth_mhz(design.noise_coarse_channels))


#: run(algorithm, input paths, options) -> {input path: (hits DataFrame, wall seconds, version)}
Runner = Callable[[str, Sequence[Path], Sequence[str]], dict[Path, tuple[pd.DataFrame, float, str]]]


def _read(result_uri: str) -> tuple[pd.DataFrame, float, str]:
    from bl_reservoir.results import read_results

    results = read_results(result_uri)
    manifest = results.manifest
    return results.hits, float(manifest.get("wall_seconds") or 0.0), str(manifest["algorithm"].get("version", ""))


def local_runner(bucket: str, jobs: int = 1, force: bool = True) -> Runner:
    """Run jobs with `run_job` on this machine, `jobs` at a time; results go to `bucket`.

    Without `force` the runner keeps a complete result for the same input, version and options."""
    from bl_reservoir.runner import run_job

    def run(algorithm: str, inputs: Sequence[Path], options: Sequence[str]):
        def one(path: Path):
            outcome = run_job(algorithm, str(path), bucket=bucket, options=tuple(options), force=force)
            return path, _read(outcome.result_uri)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return dict(pool.map(one, inputs))

    return run


def campaign_runner(bucket: str, scheduler: str, store_path: str | os.PathLike, force: bool = True) -> Runner:
    """Run each algorithm as one BL@Scale campaign on the Dask scheduler at `scheduler`.

    Results go to `bucket`; the campaigns are kept in their own SQLite store at `store_path`, so
    synthetic files never enter the main store. The workers must be able to read the input paths.
    """
    from bl_reservoir.scale import campaigns
    from bl_reservoir.scale.jobs import JobStore

    def run(algorithm: str, inputs: Sequence[Path], options: Sequence[str]):
        uris = [str(Path(p).resolve()) for p in inputs]
        db = f"sqlite:///{Path(store_path).resolve()}"
        Path(store_path).parent.mkdir(parents=True, exist_ok=True)
        cid, _ = campaigns.submit(algorithm, uris, options=tuple(options), bucket=bucket, db=db,
                                  scheduler=scheduler, force=force, max_attempts=1)
        jobs = JobStore(db).list_jobs(cid)
        failed = [j for j in jobs if j["state"] not in ("succeeded", "skipped")]
        if failed:
            raise JobFailed(f"{algorithm}: campaign {cid}: {len(failed)} of {len(jobs)} jobs did not succeed "
                            f"({failed[0]['input_uri']}: {failed[0]['error'] or failed[0]['state']})")
        by_input = {j["input_uri"]: j["result_uri"] for j in jobs}
        return {path: _read(by_input[uri]) for path, uri in zip(inputs, uris)}

    return run


def recover(algorithm: str, injected: Injected, design: Design, runner: Runner, *,
            options: Sequence[str] = (), tolerances: Tolerances = DEFAULT_TOLERANCES) -> Recovery:
    """Run one algorithm on every file and match its hits to the truth; failures become `error`."""
    recovery = Recovery(algorithm, options=tuple(options))
    try:
        ran = runner(algorithm, [*injected.signal_files, *injected.noise_files], options)
    except ReservoirError as exc:
        log.error("%s failed: %s", algorithm, exc)
        recovery.error = str(exc)
        return recovery
    window = HIT_WINDOWS.get(algorithm)
    truths, hits_found = [], []
    for path in injected.signal_files:
        hits, _, _ = ran[path]
        truth = injected.truth[injected.truth["file"] == str(path)]
        matched_truth, matched_hits = match(truth, _hits(hits), design.geometry, tolerances, window)
        truths.append(matched_truth)
        hits_found.append(matched_hits.assign(file=str(path)))
    noise = [_hits(ran[p][0]).assign(file=str(p)) for p in injected.noise_files]
    recovery.truth = pd.concat(truths, ignore_index=True)
    recovery.signal_hits = pd.concat(hits_found, ignore_index=True)
    recovery.noise_hits = pd.concat(noise, ignore_index=True) if noise else pd.DataFrame()
    recovery.wall_seconds = float(sum(v[1] for v in ran.values()))
    recovery.version = next((v[2] for v in ran.values() if v[2]), "")
    return recovery


def _hits(hits: pd.DataFrame) -> pd.DataFrame:
    """The columns matching needs, as plain numbers (`index`, and `drift_rate` when present)."""
    columns = [c for c in ("index", "drift_rate", "snr", "coarse_channel") if c in hits.columns]
    return hits[columns].astype(float).reset_index(drop=True)


def measure(algorithms: Sequence[str], design: Design, folder: str | os.PathLike, runner: Runner, *,
            options: Mapping[str, Sequence[str]] | None = None, tolerances: Tolerances = DEFAULT_TOLERANCES,
            reuse: bool = False) -> tuple[Injected, list[Recovery]]:
    """Synthesise once into `folder`/inputs (keeping files of the same design with `reuse`), then
    recover with each algorithm in turn."""
    injected = synthesise(design, Path(folder) / "inputs", reuse=reuse)
    options = options or {}
    recoveries = [recover(a, injected, design, runner, options=options.get(a, ()), tolerances=tolerances)
                  for a in algorithms]
    return injected, recoveries

"""A campaign's events stage (C8): the event search of one complete cadence, run as one more Dask task.

It reads the six dedoppler results from the bucket (any fsspec URI, never a local path the
submitter happens to have), finds the events, draws one stacked ON/OFF picture per event, and
uploads `events.csv`, `events.parquet`, `event_NNN.png` and `manifest.json` (last) to
`<bucket>/cadences/<cadence_id>/events/`. Like a job's task it never raises for bad data: a
missing or unreadable result fails this cadence's stage with one line, and the campaign goes on.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bl_reservoir import settings, storage
from bl_reservoir.dedoppler.event_folder import picture_name, write_events
from bl_reservoir.dedoppler.events import find_events, load_cadence
from bl_reservoir.errors import ReservoirError
from bl_reservoir.io import fetch
from bl_reservoir.io.cadence import (
    DEFAULT_MAX_GAP_S,
    ON_POSITIONS,
    Cadence,
    ObservationSummary,
    Refused,
    group_cadences,
    summarize_all,
)
from bl_reservoir.results import build_manifest, utcnow, write_manifest
from bl_reservoir.scale.cadences import CadenceStore
from bl_reservoir.scale.jobs import JobStore

log = logging.getLogger(__name__)

#: The algorithm whose results a cadence's events are searched in.
EVENTS_ALGORITHM = "dedoppler/search"
DEFAULT_FILTER_THRESHOLD = 3


@dataclass(frozen=True)
class EventSettings:
    """How a campaign of `dedoppler/search` finds its cadences and searches their events."""

    enabled: bool = True
    cadences: tuple[tuple[str, ...], ...] | None = None   # given as a list (six inputs each, ON first)
    max_gap_s: float = DEFAULT_MAX_GAP_S                  # else grouped from headers, with this gap
    filter_threshold: int = DEFAULT_FILTER_THRESHOLD

    @property
    def parameters(self) -> dict[str, Any]:
        return {"filter_threshold": self.filter_threshold, "max_gap_s": self.max_gap_s,
                "from": "list" if self.cadences is not None else "headers"}


def plan_cadences(inputs: list[str], events: EventSettings) -> tuple[list[Cadence], list[Refused]]:
    """The cadences of a campaign's inputs: the given list (headers read for the target, MJD and band;
    one that cannot be read stays blank), else those its headers form (`io.cadence.group_cadences`)."""
    if events.cadences is not None:
        keys = sorted({uri for six in events.cadences for uri in six})
        found, _ = summarize_all(keys)
        by_key = {summary.key: summary for summary in found}
        return [Cadence(tuple(by_key.get(uri) or ObservationSummary.unknown(uri) for uri in six))
                for six in events.cadences], []
    found, unreadable = summarize_all(inputs)
    cadences, refused = group_cadences(found, events.max_gap_s)
    return cadences, [*unreadable, *refused]


@dataclass(frozen=True)
class CadenceSpec:
    """Everything a worker needs for one cadence's events stage (plain data: it travels to the worker)."""

    cadence_id: str
    campaign: str
    bucket: str
    results: tuple[str, ...]            # the six dedoppler result URIs, ON first
    inputs: tuple[str, ...]             # the six observations, for the pictures
    filter_threshold: int = DEFAULT_FILTER_THRESHOLD
    snr_cut: float | None = None
    check_zero_drift: bool = False

    @property
    def parameters(self) -> dict[str, Any]:
        return {"filter_threshold": self.filter_threshold, "snr_cut": self.snr_cut,
                "check_zero_drift": self.check_zero_drift}


@dataclass
class CadenceOutcome:
    """What the stage returns: its state, and the events as the cadence store keeps them."""

    cadence_id: str
    state: str                                  # succeeded | failed
    n_events: int | None = None
    events_uri: str | None = None
    error: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float | None = None


def task_key(campaign: str, cadence_id: str) -> str:
    """Dask key of a cadence's events stage in a campaign."""
    return f"blr-stage-{campaign}-{cadence_id}"


def run_stage(spec: CadenceSpec) -> CadenceOutcome:
    """Search, draw and upload the events of one cadence; every outcome is returned, none raised."""
    started, t0 = utcnow(), time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=f"cadence-{spec.campaign}-", dir=_scratch_root()))
    try:
        cadence = load_cadence(spec.results)
        events = find_events(cadence, spec.filter_threshold, snr_cut=spec.snr_cut,
                             check_zero_drift=spec.check_zero_drift)
        if not events.empty:
            _local_observations(cadence, spec.inputs, scratch / "inputs")
        out = scratch / "events"
        pictures = write_events(cadence, events, out)
        records = event_records(events, [fetch.obs_name(uri) for uri in spec.inputs], pictures)
        manifest = build_manifest(
            algorithm={"package": "dedoppler", "name": "events", "version": _version()},
            parameters=spec.parameters, input_uri=spec.results[0], started_at=started, finished_at=utcnow(),
            wall_seconds=round(time.monotonic() - t0, 3), campaign=spec.campaign,
            cadence={"id": spec.cadence_id, "members": [
                {"position": k, "on": k in ON_POSITIONS, "obs_name": fetch.obs_name(uri), "input": uri,
                 "result": result} for k, (uri, result) in enumerate(zip(spec.inputs, spec.results))]},
            n_events=len(records))
        write_manifest(out, manifest, n_hits=len(events))
        dest = storage.upload_dir(spec.bucket, out, dest=storage.events_uri(spec.bucket, spec.cadence_id))
    except ReservoirError as exc:
        log.warning("cadence %s: events stage failed: %s", spec.cadence_id, exc)
        return CadenceOutcome(spec.cadence_id, "failed", error=f"cadence {spec.cadence_id}: {exc}",
                              wall_seconds=round(time.monotonic() - t0, 3))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("cadence %s: %d events -> %s", spec.cadence_id, len(records), dest)
    return CadenceOutcome(spec.cadence_id, "succeeded", len(records), dest, events=records,
                          wall_seconds=round(time.monotonic() - t0, 3))


def event_records(events: Any, obs_names: list[str], pictures: list[str]) -> list[dict[str, Any]]:
    """The events table (turboSETI's columns, rows sharing a Hit_ID) as the cadence store keeps them:
    one dict per event with its `hits`, each naming its observation and its row in that result."""
    def position(status: str) -> int:  # on_table_k is the k-th ON: position 0, 2 or 4
        return ON_POSITIONS[int(status.rsplit("_", 1)[-1]) - 1]

    records = []
    for n, (_, rows) in enumerate(events.groupby("Hit_ID", sort=False)):
        first = rows.iloc[0]
        hits = [{"position": position(r.status), "obs_name": obs_names[position(r.status)],
                 "row": int(r.TopHitNum) - 1, "frequency_mhz": float(r.Freq), "drift_rate": float(r.DriftRate),
                 "snr": float(r.SNR)} for r in rows.itertuples(index=False)]
        records.append({"n": n, "frequency_mhz": float(first["Freq"]), "drift_rate": float(first["DriftRate"]),
                        "snr": float(rows["SNR"].max()), "n_ons": int(first["in_n_ons"]) or 1,
                        "picture": picture_name(n) if picture_name(n) in pictures else None, "hits": hits})
    return records


def _local_observations(cadence: list, inputs: tuple[str, ...], folder: Path) -> None:
    """Point each file of the cadence at a local copy of its observation for the pictures: a local input
    as it is, a remote one downloaded once into the stage's scratch (only a cadence with events pays
    that). One that cannot be had leaves its panel saying why."""
    for f, uri in zip(cadence, inputs):
        try:
            f.observation = str(fetch.fetch_input(uri, cache_dir=folder))
        except ReservoirError as exc:
            log.warning("event pictures: %s", exc)
            f.observation = None


def _scratch_root() -> Path:
    root = settings.cache_dir() / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _version() -> str:
    from bl_reservoir import __version__

    return __version__


def ready_stages(jobs: JobStore, cadences: CadenceStore, campaign: str) -> list[CadenceSpec]:
    """The stages of the campaign's cadences whose six jobs have just all succeeded (each handed out
    once, `CadenceStore.settle`), as specs read from the stores."""
    specs = []
    for cadence_id in cadences.settle(campaign):
        cadence = cadences.get_cadence(cadence_id)
        members = cadence["members"]
        results = tuple(jobs.get_job(m["job"])["result_uri"] for m in members)
        parameters = {k: v for k, v in (cadence["parameters"] or {}).items()
                      if k in ("filter_threshold", "snr_cut", "check_zero_drift")}
        specs.append(CadenceSpec(cadence_id, campaign, cadence["bucket"], results,
                                 tuple(m["input_uri"] for m in members), **parameters))
    return specs

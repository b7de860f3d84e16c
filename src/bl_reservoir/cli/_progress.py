"""How a campaign looks in a terminal: a live bar while it runs, a table when it ends (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bl_reservoir.scale.schema import CADENCE_ACTIVE, ENDED, JOB_STATES, SUCCEEDED


class CampaignProgress:
    """A live bar of finished jobs with done, failed and running counts and a time estimate."""

    def __init__(self, console: Console | None = None):
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("done {task.fields[done]}  failed {task.fields[failed]}  running {task.fields[running]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False)
        self._task = None
        self._live = False

    def start(self, campaign: str, total: int) -> None:
        """Show a new bar for `campaign` (several campaigns stack up in one display)."""
        if not self._live:
            self._progress.start()
            self._live = True
        self._task = self._progress.add_task(f"campaign {campaign}", total=total, done=0, failed=0, running=0)

    def update(self, counts: dict[str, int]) -> None:
        if self._task is None:
            return
        self._progress.update(self._task, completed=sum(counts.get(s, 0) for s in ENDED),
                              done=sum(counts.get(s, 0) for s in SUCCEEDED),
                              failed=counts.get("failed", 0), running=counts.get("running", 0))

    def stop(self) -> None:
        if self._live:
            self._progress.stop()
            self._live = False


def counts_text(counts: dict[str, int]) -> str:
    """`6 succeeded, 1 failed`: the non-zero counts, in state order."""
    return ", ".join(f"{counts[s]} {s}" for s in JOB_STATES if counts.get(s)) or "no jobs"


def cadences_text(cadences: Sequence[dict[str, Any]]) -> str:
    """`2 cadences, 1 event (1 failed)`: a campaign's cadences, their events, and their failed stages."""
    if not cadences:
        return ""
    events = sum(c.get("n_events") or 0 for c in cadences)
    failed = sum(c["state"] == "failed" for c in cadences)
    waiting = sum(c["state"] in CADENCE_ACTIVE for c in cadences)
    text = f"{len(cadences)} cadence{'s' * (len(cadences) != 1)}, {events} event{'s' * (events != 1)}"
    extra = [f"{n} {what}" for n, what in ((failed, "failed"), (waiting, "not yet searched")) if n]
    return text + (f" ({', '.join(extra)})" if extra else "")


def counts_table(campaigns: Sequence[dict[str, Any]]) -> Table:
    """One row per campaign: id, algorithm, created, state, its jobs counted by state, and its cadences
    (`cadences`: a list of cadence rows per campaign, when it has any)."""
    table = Table(title="campaigns", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("campaign", min_width=12, no_wrap=True)   # ids are never cut: users copy them
    for column in ("algorithm", "created", "state", "jobs", "cadences"):
        table.add_column(column, overflow="fold")
    for c in campaigns:
        table.add_row(c["id"], c["algorithm"], c["created"][:16].replace("T", " "), c["state"],
                      counts_text(c.get("counts", {})), cadences_text(c.get("cadences", ())))
    return table


def cadences_table(cadences: Sequence[dict[str, Any]], title: str = "cadences") -> Table:
    """One row per cadence: id, target, MJD, band, state, events, and where they are or why it failed."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("cadence", min_width=12, overflow="fold")
    for column in ("target", "MJD", "band", "state"):
        table.add_column(column, no_wrap=True)
    table.add_column("events", justify="right", no_wrap=True)
    table.add_column("events folder / error", overflow="fold")
    for c in cadences:
        table.add_row(c["id"], c.get("target") or "", "" if c.get("mjd") is None else f"{c['mjd']:.5f}",
                      c.get("band") or "", c["state"], "" if c.get("n_events") is None else str(c["n_events"]),
                      c.get("error") or c.get("events_uri") or "")
    return table


def jobs_table(jobs: Sequence[dict[str, Any]], title: str = "jobs") -> Table:
    """One row per job: state, attempts, worker, seconds, hits, and the result or the error."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("job", min_width=16, no_wrap=True)
    table.add_column("input", overflow="fold")
    table.add_column("state", no_wrap=True)
    for column in ("attempts", "seconds", "hits"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("result / error", overflow="fold")
    for j in jobs:
        seconds = "" if j.get("wall_seconds") is None else f"{j['wall_seconds']:.1f}"
        table.add_row(j["id"], j["input_uri"], j["state"], str(j["attempts"]), seconds,
                      "" if j.get("n_hits") is None else str(j["n_hits"]),
                      j.get("error") or j.get("result_uri") or "")
    return table

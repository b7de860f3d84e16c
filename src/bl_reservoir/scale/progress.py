"""How a campaign looks in a terminal: a live bar while it runs, a table when it ends (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

_FINISHED = ("succeeded", "skipped", "failed", "cancelled")
_STATES = ("queued", "running", *_FINISHED)


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
        self._progress.update(self._task, completed=sum(counts.get(s, 0) for s in _FINISHED),
                              done=counts.get("succeeded", 0) + counts.get("skipped", 0),
                              failed=counts.get("failed", 0), running=counts.get("running", 0))

    def stop(self) -> None:
        if self._live:
            self._progress.stop()
            self._live = False


def counts_table(campaigns: Sequence[dict[str, Any]]) -> Table:
    """One row per campaign: id, algorithm, state, and the number of jobs in each state."""
    table = Table(title="campaigns")
    for column in ("campaign", "algorithm", "created", "state"):
        table.add_column(column)
    for state in _STATES:
        table.add_column(state, justify="right")
    for c in campaigns:
        counts = c.get("counts", {})
        table.add_row(c["id"], c["algorithm"], c["created"], c["state"], *(str(counts.get(s, 0)) for s in _STATES))
    return table


def jobs_table(jobs: Sequence[dict[str, Any]], title: str = "jobs") -> Table:
    """One row per job: state, attempts, worker, seconds, hits, and the result or the error."""
    table = Table(title=title)
    for column in ("job", "input", "state", "attempts", "seconds", "hits", "result / error"):
        table.add_column(column, justify="right" if column in ("attempts", "seconds", "hits") else "left",
                         overflow="fold")
    for j in jobs:
        seconds = "" if j.get("wall_seconds") is None else f"{j['wall_seconds']:.1f}"
        table.add_row(j["id"], j["input_uri"], j["state"], str(j["attempts"]), seconds,
                      "" if j.get("n_hits") is None else str(j["n_hits"]),
                      j.get("error") or j.get("result_uri") or "")
    return table

"""What the campaign commands share: their flags, the live progress bar, the closing summary."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

#: Above this many jobs the summary lists only the failed ones.
_LIST_ALL_UP_TO = 40


def add_engine_flags(parser: argparse.ArgumentParser, detach: bool = True) -> None:
    parser.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address (default: "
                        "DASK_SCHEDULER_ADDRESS, else an embedded LocalCluster sized to this machine)")
    parser.add_argument("--db", metavar="URL", help="job store SQLAlchemy URL (default: BL_RESERVOIR_DB, "
                        "else a SQLite file beside the bucket)")
    if detach:
        parser.add_argument("--detach", action="store_true",
                            help="return at once; the jobs run on (needs a scheduler the workers share)")


def quiet_dask() -> None:
    """Dask logs every connection at INFO: show that only with -v."""
    import distributed  # noqa: F401  (it sets its log levels on import: set ours after)

    if logging.getLogger().level >= logging.WARNING:
        logging.getLogger("distributed").setLevel(logging.WARNING)


def run_with_progress(start: Callable[..., Any], *args: Any, detach: bool = False, **kw: Any) -> Any:
    """Call `start(*args, on_created=..., on_progress=..., **kw)` under a live rich bar; its result."""
    from bl_reservoir.cli._progress import CampaignProgress

    quiet_dask()
    bar = CampaignProgress()

    def created(campaign: str, total: int) -> None:
        print(f"campaign {campaign}: {total} jobs", flush=True)
        if not detach:
            bar.start(campaign, total)

    try:
        if detach:
            kw["detach"] = True
        return start(*args, on_created=created, on_progress=bar.update, **kw)
    finally:
        bar.stop()


def campaign_row(stores: Any, campaign: str) -> dict[str, Any]:
    """A campaign's row with its job `counts` and its `cadences` (for the tables of `_progress`)."""
    row = stores.jobs.get_campaign(campaign)
    row["counts"] = stores.jobs.campaign_counts(campaign)
    row["cadences"] = stores.cadences.list_cadences(limit=10_000, campaign=campaign)
    return row


def print_summary(db: str | None, campaign: str) -> int:
    """Counts and jobs of a campaign, where the results are; exit code 8 if any job failed, 1 if
    some never finished."""
    from rich.console import Console

    from bl_reservoir import settings
    from bl_reservoir.cli._progress import cadences_table, counts_table, jobs_table
    from bl_reservoir.errors import JobFailed
    from bl_reservoir.scale.outcomes import Stores

    stores = Stores.open(settings.db_url(db))
    store = stores.jobs
    row = campaign_row(stores, campaign)
    console = Console()
    jobs = store.list_jobs(campaign)
    if len(jobs) > _LIST_ALL_UP_TO:
        jobs = [j for j in jobs if j["state"] == "failed"]
    if jobs:
        console.print(jobs_table(jobs, title=f"jobs of campaign {campaign}"))
    if row["cadences"]:
        console.print(cadences_table(row["cadences"], title=f"cadences of campaign {campaign}"))
    console.print(counts_table([row]))
    console.print(f"results in {row['bucket']}  (job store {store.safe_url})")
    unfinished = row["counts"]["queued"] + row["counts"]["running"]
    if unfinished and row["state"] != "cancelled":   # e.g. the scheduler went away under us
        console.print(f"{unfinished} jobs did not finish: bl-reservoir resume {campaign}")
        return 1
    return JobFailed.exit_code if row["counts"]["failed"] else 0

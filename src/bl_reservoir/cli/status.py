"""`bl-reservoir status [CAMPAIGN]`: counts by state per campaign, and per job with an id."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("campaign", nargs="?", metavar="CAMPAIGN", help="a campaign id: list its jobs")
    parser.add_argument("--db", metavar="URL", help="job store SQLAlchemy URL (default: BL_RESERVOIR_DB, "
                        "else a SQLite file beside the bucket)")
    parser.add_argument("--limit", type=int, default=20, help="campaigns listed without an id (default 20)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bl_reservoir import settings
    from bl_reservoir.cli._campaign import campaign_row
    from bl_reservoir.cli._progress import cadences_table, counts_table, jobs_table
    from bl_reservoir.scale.outcomes import Stores

    stores = Stores.open(settings.db_url(args.db))
    store = stores.jobs
    console = Console()
    if args.campaign is None:
        listed = store.list_campaigns(limit=args.limit)
        if not listed:
            console.print(f"no campaigns in {store.safe_url}")
            return 0
        console.print(counts_table([campaign_row(stores, c["id"]) for c in listed]))
        return 0
    row = campaign_row(stores, args.campaign)
    console.print(jobs_table(store.list_jobs(args.campaign), title=f"jobs of campaign {args.campaign}"))
    if row["cadences"]:
        console.print(cadences_table(row["cadences"], title=f"cadences of campaign {args.campaign}"))
    console.print(counts_table([row]))
    return 0

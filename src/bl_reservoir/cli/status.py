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
    from bl_reservoir.scale.progress import counts_table, jobs_table
    from bl_reservoir.scale.store import Store

    store = Store(settings.db_url(args.db))
    console = Console()
    if args.campaign is None:
        listed = store.list_campaigns(limit=args.limit)
        if not listed:
            console.print(f"no campaigns in {store.safe_url}")
            return 0
        console.print(counts_table(listed))
        return 0
    row = store.get_campaign(args.campaign)
    row["counts"] = store.campaign_counts(args.campaign)
    console.print(jobs_table(store.list_jobs(args.campaign), title=f"jobs of campaign {args.campaign}"))
    console.print(counts_table([row]))
    return 0

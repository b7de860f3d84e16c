"""`bl-reservoir retry CAMPAIGN`: re-submit the failed jobs of a campaign."""

from __future__ import annotations

import argparse

from bl_reservoir.cli._campaign import add_engine_flags, print_summary, run_with_progress


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("campaign", metavar="CAMPAIGN")
    add_engine_flags(parser)


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.scale import campaigns

    run_with_progress(campaigns.retry, args.campaign, db=args.db, scheduler=args.scheduler, detach=args.detach)
    return 0 if args.detach else print_summary(args.db, args.campaign)

"""`bl-reservoir cancel CAMPAIGN`: cancel its queued and running jobs."""

from __future__ import annotations

import argparse

from bl_reservoir.cli._campaign import add_engine_flags


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("campaign", metavar="CAMPAIGN")
    add_engine_flags(parser, detach=False)


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.scale import campaigns

    n = campaigns.cancel(args.campaign, db=args.db, scheduler=args.scheduler)
    print(f"campaign {args.campaign}: {n} jobs cancelled")
    return 0

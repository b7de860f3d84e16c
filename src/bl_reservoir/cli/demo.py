"""`bl-reservoir demo`: synthesise a small cadence, run every built-in search over it on the
embedded cluster, and say where the results are and how to browse them."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="bl-demo", help="folder for the synthetic cadence (default ./bl-demo)")
    parser.add_argument("--bucket", metavar="URI",
                        help="where results go (default: BL_RESERVOIR_BUCKET, else ./bl-scale)")
    parser.add_argument("--db", metavar="URL", help="job store URL (default: a SQLite file beside the bucket)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic cadence (default 1)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from bl_reservoir import settings
    from bl_reservoir.cli._campaign import campaign_row, quiet_dask, run_with_progress
    from bl_reservoir.cli._progress import counts_table
    from bl_reservoir.demo import run_demo
    from bl_reservoir.errors import JobFailed
    from bl_reservoir.scale.outcomes import Stores

    console = Console()
    console.print(f"synthesising a 6-file ON/OFF cadence in {args.out}/ and running the built-in searches "
                  "on an embedded Dask cluster")
    quiet_dask()
    done = run_with_progress(run_demo, args.out, bucket=args.bucket, db=args.db, seed=args.seed)
    stores = Stores.open(settings.db_url(args.db, args.bucket))
    store = stores.jobs
    rows = [campaign_row(stores, c.campaign) for c in done]
    console.print(counts_table(rows))
    hits = Table(title="strongest hits across the cadence (job store hits index)")
    for column in ("observation", "algorithm", "MHz", "drift Hz/s", "SNR"):
        hits.add_column(column)
    found = sorted(stores.index.query_hits(limit=10_000), key=lambda h: -(h["snr"] or 0))[:8]
    for h in found:
        hits.add_row(h["observation"], h["algorithm"], f"{h['frequency_mhz']:.6f}",
                     "" if h["drift_rate"] is None else f"{h['drift_rate']:+.3f}",
                     "" if h["snr"] is None else f"{h['snr']:.1f}")
    if found:
        console.print(hits)
    bucket = rows[0]["bucket"] if rows else settings.bucket(args.bucket)
    console.print(f"results: {bucket}/<observation>/<package>/<name>/", soft_wrap=True)
    console.print(f"job store: {store.safe_url}", soft_wrap=True)
    console.print("browse them: bl-reservoir serve   then open http://127.0.0.1:8000")
    _print_events(console, stores, [c.campaign for c in done])
    failed = sum(c.counts.get("failed", 0) for c in done)
    return JobFailed.exit_code if failed else 0


def _print_events(console, stores, campaigns: list[str]) -> None:
    """The candidate events of the demo's cadences, each with where its picture is."""
    from bl_reservoir.io.cadence import ON_POSITIONS

    for campaign in campaigns:
        for row in stores.cadences.list_cadences(campaign=campaign):
            cadence = stores.cadences.get_cadence(row["id"])
            if cadence["state"] != "succeeded":
                console.print(f"cadence {cadence['id']}: events stage {cadence['state']} {cadence['error'] or ''}",
                              soft_wrap=True)
                continue
            n = len(cadence["events"])
            console.print(f"cadence {cadence['id']} ({cadence['target']}): {n} candidate event{'s' * (n != 1)}",
                          soft_wrap=True)
            for event in cadence["events"]:   # one line each, never wrapped: the picture's path is copied
                console.print(f"  {event['frequency_mhz']:.6f} MHz, drift {event['drift_rate']:+.4f} Hz/s, "
                              f"in {len(event['hits'])} of {len(ON_POSITIONS)} ONs, 0 OFFs: "
                              f"{cadence['events_uri']}/{event['picture']}", soft_wrap=True, highlight=False)

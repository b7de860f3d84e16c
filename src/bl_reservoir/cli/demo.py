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
    from bl_reservoir.cli._campaign import quiet_dask, run_with_progress
    from bl_reservoir.demo import run_demo
    from bl_reservoir.errors import JobFailed
    from bl_reservoir.scale.progress import counts_table
    from bl_reservoir.scale.store import Store

    console = Console()
    console.print(f"synthesising a 6-file ON/OFF cadence in {args.out}/ and running the built-in searches "
                  "on an embedded Dask cluster")
    quiet_dask()
    done = run_with_progress(run_demo, args.out, bucket=args.bucket, db=args.db, seed=args.seed)
    store = Store(settings.db_url(args.db, args.bucket))
    rows = [{**store.get_campaign(c.campaign), "counts": c.counts} for c in done]
    console.print(counts_table(rows))
    hits = Table(title="strongest hits across the cadence (job store hits index)")
    for column in ("observation", "algorithm", "MHz", "drift Hz/s", "SNR"):
        hits.add_column(column)
    found = sorted(store.query_hits(limit=10_000), key=lambda h: -(h["snr"] or 0))[:8]
    for h in found:
        hits.add_row(h["observation"], h["algorithm"], f"{h['frequency_mhz']:.6f}",
                     "" if h["drift_rate"] is None else f"{h['drift_rate']:+.3f}",
                     "" if h["snr"] is None else f"{h['snr']:.1f}")
    if found:
        console.print(hits)
    bucket = rows[0]["bucket"] if rows else settings.bucket(args.bucket)
    console.print(f"results: {bucket}/<observation>/<package>/<name>/")
    console.print(f"job store: {store.safe_url}")
    console.print("browse them: bl-reservoir serve   then open http://127.0.0.1:8000")
    failed = sum(c.counts.get("failed", 0) for c in done)
    return JobFailed.exit_code if failed else 0

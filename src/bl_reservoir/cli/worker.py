"""`bl-reservoir worker --scheduler ADDR [--algorithms A,B] [--nthreads N]`: serve algorithms to a cluster."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address (default: DASK_SCHEDULER_ADDRESS)")
    parser.add_argument("--algorithms", metavar="A,B", help="algorithms to serve (default: every known one)")
    parser.add_argument("--nthreads", type=int, default=None, help="jobs at once (default: CPU count)")
    parser.add_argument("--name", help="worker name shown by the scheduler")


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.scale.worker import serve

    return serve(args.algorithms, scheduler=args.scheduler, nthreads=args.nthreads, name=args.name)

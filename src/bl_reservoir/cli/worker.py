"""`bl-reservoir worker --scheduler ADDR [--algorithms A,B] [--nthreads N] [--host H] [--grace-period S]`:
serve algorithms to a cluster."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address, tcp:// or tls:// "
                        "(default: DASK_SCHEDULER_ADDRESS; TLS certificates from BL_RESERVOIR_TLS_*)")
    parser.add_argument("--algorithms", metavar="A,B", help="algorithms to serve (default: every known one)")
    parser.add_argument("--nthreads", type=int, default=None, help="jobs at once (default: CPU count)")
    parser.add_argument("--name", help="worker name shown by the scheduler")
    parser.add_argument("--host", metavar="ADDR", help="address to listen on (default: BL_RESERVOIR_WORKER_HOST, "
                        "else 127.0.0.1: only this machine; a scheduler elsewhere needs this host's address)")
    parser.add_argument("--grace-period", type=float, default=None, metavar="S", dest="grace_s",
                        help="on SIGTERM, seconds running jobs get to finish before the worker leaves "
                        "(default: the job timeout); no new job starts meanwhile")


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.scale.worker import serve

    return serve(args.algorithms, scheduler=args.scheduler, nthreads=args.nthreads, name=args.name,
                 host=args.host, grace_s=args.grace_s)

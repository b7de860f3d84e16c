"""`bl-reservoir serve [--host 127.0.0.1] [--port 8000] [--bucket URI] [--db URL] [--auth-read]`."""

from __future__ import annotations

import argparse
import os

HELP = "serve the web front end and API"


def _default_render_processes() -> int:
    """Half the CPUs, from 1 to 4; none on one CPU. On 2 CPUs one process took the cold waterfall's p95 from
    1.7 s (drawn in the server, behind its GIL) to 0.39 s under 50 clients (benchmarks/web.py, 2 Dec 2026)."""
    cpus = os.cpu_count() or 1
    return 0 if cpus < 2 else min(4, max(1, cpus // 2))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--bucket", help="results bucket URI (default BL_RESERVOIR_BUCKET, then ./bl-scale)")
    parser.add_argument("--db", help="job store SQLAlchemy URL (default BL_RESERVOIR_DB, then beside the bucket)")
    parser.add_argument("--scheduler", help="Dask scheduler for submitted campaigns (default DASK_SCHEDULER_ADDRESS)")
    parser.add_argument("--auth-read", action="store_true",
                        help="require the token (BL_RESERVOIR_TOKEN) for reading too, not only for writes")
    parser.add_argument("--render-processes", type=int, default=_default_render_processes(), metavar="N",
                        help="processes drawing waterfall pictures (default: half the CPUs, 1 to 4; "
                             "none on one CPU; 0 draws in the server's threads)")
    parser.add_argument("--max-body-bytes", type=int, default=None, metavar="N",
                        help="refuse request bodies over N bytes with 413, before reading them (default 1 MiB)")
    parser.add_argument("--no-index", action="store_true",
                        help="do not scan the bucket at start-up even when the job store is empty")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from bl_reservoir import settings
    from bl_reservoir.errors import UsageError
    from bl_reservoir.web import create_app
    from bl_reservoir.web.security import MAX_BODY_BYTES

    if args.auth_read and not settings.token():
        raise UsageError("--auth-read needs BL_RESERVOIR_TOKEN: without a token nobody could read")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {args.port}")
    max_body = MAX_BODY_BYTES if args.max_body_bytes is None else args.max_body_bytes
    if max_body < 1:
        raise UsageError(f"--max-body-bytes must be at least 1, not {max_body}")
    app = create_app(bucket=args.bucket, db=args.db, auth_read=args.auth_read, scheduler=args.scheduler,
                     index_on_start=not args.no_index, render_processes=max(0, args.render_processes),
                     max_body_bytes=max_body)
    state = app.state.web
    print(f"BL@Scale on http://{args.host}:{args.port}/  bucket {state.bucket_uri}  "
          f"writes {'on' if state.token else 'off (no BL_RESERVOIR_TOKEN)'}")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=False,
                server_header=False)
    return 0

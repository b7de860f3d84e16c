"""The original Docker `CMD`, `python -m bl_reservoir.<package>.<package>`, kept working (contract C4).

Those modules hand over to this one (`python -m bl_reservoir.cli.docker_cmd ALG [ARGS]`, see
`bl_reservoir.script.docker_cmd`). With an input it runs that one job (the flags of
`bl-reservoir run`); without one it joins the Dask cluster at `DASK_SCHEDULER_ADDRESS` as a worker
for that algorithm, as the pods did.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bl_reservoir.errors import ReservoirError


def module_main(algorithm: str, argv: Sequence[str] | None = None) -> int:
    """The original Docker `CMD` (`python -m bl_reservoir.<package>.<package>`): with an input,
    run that one job (same flags as `bl-reservoir run`); without, serve as a worker for it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        package = algorithm.split("/", 1)[0]
        print(f"usage: python -m bl_reservoir.{package}.{package} [INPUT [--bucket URI] [--force] [--timeout S] "
              f"[-- ALG_OPTIONS]]\n\nThe original Docker CMD for {algorithm}. With INPUT (a path or URI) it "
              f"runs that one job, as `bl-reservoir run {algorithm} INPUT`; without, it joins the Dask "
              f"cluster at DASK_SCHEDULER_ADDRESS as a worker for {algorithm}.")
        return 0
    if not [a for a in args if not a.startswith("-")]:
        try:
            from bl_reservoir.scale.worker import serve
        except ImportError as exc:
            print(f"bl-reservoir: error: worker mode for {algorithm} needs bl_reservoir.scale.worker "
                  f"({exc}); give an input file to run one job", file=sys.stderr)
            return 2
        try:
            return int(serve(algorithm) or 0)
        except ReservoirError as exc:
            print(f"bl-reservoir: error: {exc}", file=sys.stderr)
            return exc.exit_code
    from bl_reservoir.cli import main

    return main(["run", algorithm, *args])


if __name__ == "__main__":
    sys.exit(module_main(sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else 2)

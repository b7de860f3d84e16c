"""Write the image's pins: every runtime dependency of bl-reservoir[EXTRAS], at the version installed here.

Run inside the project's venv:  python deploy/constraints.py > deploy/constraints.txt
Test-only packages and the project itself are left out, because the image never installs them.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "bl-reservoir"
DEFAULT_EXTRAS = "all"


def runtime_closure(project: str, extras: set[str]) -> tuple[dict[str, str], set[str]]:
    """(name -> installed version, names required but not installed) of `project[extras]`'s dependencies."""
    pinned: dict[str, str] = {}
    missing: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = [(project, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        key = (canonicalize_name(name), wanted)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.add(canonicalize_name(name))
            continue
        if canonicalize_name(name) != canonicalize_name(project):
            pinned[canonicalize_name(name)] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            environments = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in environments):
                todo.append((req.name, frozenset(req.extras)))
    return pinned, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default=DEFAULT_EXTRAS, help="comma-separated extras (default: all)")
    args = parser.parse_args(argv)
    pinned, missing = runtime_closure(PROJECT, {e for e in args.extras.split(",") if e})
    if missing:
        print(f"constraints.py: not installed here, left unpinned: {', '.join(sorted(missing))}", file=sys.stderr)
    print(f"# Runtime pins for the image: python deploy/constraints.py --extras {args.extras} > deploy/constraints.txt")
    for name in sorted(pinned):
        print(f"{name}=={pinned[name]}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

"""`bl-reservoir env build ALG_PACKAGE`: build an external package's own virtual environment."""

from __future__ import annotations

import argparse

HELP = "build an external algorithm package's virtual environment"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build (or reuse) the package's venv from its requirements.txt")
    build.add_argument("package", metavar="ALG_PACKAGE",
                       help="package name found in BL_RESERVOIR_ALGORITHMS, or the package folder")
    build.add_argument("--force", action="store_true", help="rebuild even if an up-to-date venv exists")
    show = sub.add_parser("path", help="print where the package's venv is (built or not)")
    show.add_argument("package", metavar="ALG_PACKAGE")


def run(args: argparse.Namespace) -> int:
    from bl_reservoir import envs
    from bl_reservoir.algorithms import find_package

    package_dir = find_package(args.package)
    if args.action == "path":
        print(envs.env_path(package_dir))
        return 0
    state = envs.env_state(package_dir)
    if state == "built" and not args.force:
        print(f"{package_dir.name}: up to date at {envs.env_path(package_dir)}")
        return 0
    print(f"{package_dir.name}: building from {package_dir / envs.REQUIREMENTS} ({state}) ...", flush=True)
    env = envs.build_env(package_dir, force=args.force)
    print(f"{package_dir.name}: built {env}")
    return 0

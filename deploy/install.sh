#!/usr/bin/env bash
# The image's install steps, also run by .ci/steps/deploy.sh so that CI tests the image's install path.
#
#   deploy/install.sh PREFIX
#
# Creates a virtual environment at PREFIX and installs the project from this source tree into it
# (not editable), pinned by deploy/constraints.txt. Then builds the own environment of every
# external algorithm package named in ALG_PACKAGES with the project's `bl-reservoir env build`.
#
# Environment:
#   PYTHON         interpreter that creates the venv (default python3)
#   BL_EXTRAS      extras to install (default "all": gcs, s3, dask, web, postgres; "all,gpu" for GPU images)
#   EXTRA_REQUIREMENTS  more pip requirements, same constraints (e.g. "cupy-cuda12x[ctk]" for GPU images)
#   ALG_PACKAGES   space-separated external algorithm packages to prebuild (default none); they are
#                  looked up in BL_RESERVOIR_ALGORITHMS, as at run time
set -euo pipefail

prefix=${1:?usage: deploy/install.sh PREFIX}
src=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
extras=${BL_EXTRAS:-all}
export PIP_DISABLE_PIP_VERSION_CHECK=1

"$python" -m venv "$prefix"
"$prefix/bin/python" -m pip install -q -c "$src/deploy/constraints.txt" "$src[$extras]"
if [ -n "${EXTRA_REQUIREMENTS:-}" ]; then
  # shellcheck disable=SC2086  # a list of requirements
  "$prefix/bin/python" -m pip install -q -c "$src/deploy/constraints.txt" $EXTRA_REQUIREMENTS
fi

for package in ${ALG_PACKAGES:-}; do
  echo "install.sh: building the environment of $package"
  "$prefix/bin/bl-reservoir" env build "$package"
done

# The commands the image runs must resolve from the venv alone.
"$prefix/bin/bl-reservoir" --version

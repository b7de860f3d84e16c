#!/usr/bin/env bash
# The de-Doppler kernels' JIT path, first-class: the kernel and search tests again with
# BL_RESERVOIR_KERNELS=jit, what runs wherever the ahead-of-time build (numba.pycc) cannot.
# Run by .ci/run with the project's .venv active; also runs alone: bash .ci/steps/kernels-jit.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
python=$(command -v python || echo "$(pwd)/.venv/bin/python")
BL_RESERVOIR_KERNELS=jit "$python" -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/dedoppler/test__taylor.py tests/dedoppler/test__hits.py tests/dedoppler/test__noise.py \
  tests/dedoppler/test_driver.py tests/dedoppler/test_search.py tests/dedoppler/test__crossing.py \
  tests/dedoppler/test__desmear.py

#!/usr/bin/env bash
# The import layers of DESIGN.md (docs/architecture.md), checked by import-linter from pyproject.toml.
# Run by .ci/run with the project's .venv active; also runs alone: bash .ci/steps/layers.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
lint_imports=$(command -v lint-imports || echo "$(pwd)/.venv/bin/lint-imports")
"$lint_imports"

#!/usr/bin/env bash
# Deploy checks without Docker or Kubernetes (issue 8):
#  1. every manifest under deploy/k8s validates strictly against Kubernetes 1.30;
#  2. the image's install script runs on exactly the files the Dockerfile copies, into a fresh venv;
#  3. that venv passes the smoke commands the image runs (help, and one job on a synthetic file).
# Run by .ci/run with the project's .venv active; also runs alone: bash .ci/steps/deploy.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
K8S_VERSION=1.30.0
validate=$(command -v kubernetes-validate || echo "$repo/.venv/bin/kubernetes-validate")
project_cli=$(command -v bl-reservoir || echo "$repo/.venv/bin/bl-reservoir")

echo "deploy: kubernetes-validate --strict against $K8S_VERSION"
mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
[ ${#manifests[@]} -gt 0 ] || { echo "deploy: no manifests under deploy/k8s" >&2; exit 1; }
"$validate" -k "$K8S_VERSION" --strict --quiet "${manifests[@]}"

work=$(mktemp -d /tmp/blr-deploy.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The build context as the Dockerfile sees it: only the sources of its COPY lines (not --from).
echo "deploy: staging the Dockerfile's COPY sources in $work/context"
mkdir -p "$work/context"
while read -r -a words; do
  for src in "${words[@]:1:${#words[@]}-2}"; do
    mkdir -p "$work/context/$(dirname "$src")"
    cp -r "$src" "$work/context/$src"
  done
done < <(grep -E '^COPY ' deploy/Dockerfile | grep -v -- '--from=')

# An external algorithm package whose environment the install prebuilds (as ALG_PACKAGES does in
# the image): the scaffold from `bl-reservoir new-algorithm`, small and quick to install.
"$project_cli" new-algorithm blr_smoke --dir "$work/algos" >/dev/null
algorithms="$work/context/examples/algorithms:$work/algos"

echo "deploy: deploy/install.sh $work/venv"
BL_RESERVOIR_ALGORITHMS="$algorithms" BL_RESERVOIR_CACHE="$work/cache" \
  ALG_PACKAGES="blr_smoke ${DEPLOY_ALG_PACKAGES:-}" \
  env -u VIRTUAL_ENV -u PYTHONPATH PATH="${PATH#"$repo/.venv/bin:"}" \
  bash "$work/context/deploy/install.sh" "$work/venv"

# The image's smoke commands, with only that venv on PATH and a folder outside the repo as cwd.
echo "deploy: smoke commands"
mkdir -p "$work/run"
cd "$work/run"
export PATH="$work/venv/bin:/usr/local/bin:/usr/bin:/bin" BL_RESERVOIR_BUCKET="$work/bucket" \
  BL_RESERVOIR_CACHE="$work/cache" MPLCONFIGDIR="$work/mpl" NUMBA_CACHE_DIR="$work/numba"
unset VIRTUAL_ENV PYTHONPATH BL_RESERVOIR_DB DASK_SCHEDULER_ADDRESS
export BL_RESERVOIR_ALGORITHMS="$algorithms"
installed=$(python3 -c 'import bl_reservoir; print(bl_reservoir.__file__)')
case "$installed" in
  "$work/venv/"*) ;;
  *) echo "deploy: bl_reservoir imported from $installed, not from the image's venv" >&2; exit 1 ;;
esac
python3 -m bl_reservoir.energy_detection.energy_detection --help >/dev/null
dask scheduler --help >/dev/null      # the scheduler Deployment's command
bl-reservoir serve --help >/dev/null  # the web Deployment's command
# Two strong, nearly straight signals, so that the job has hits to find.
bl-reservoir synth x.h5 --coarse-channels 2 --coarse-channel-width 65536 --signals 2 --seed 8 \
  --snr 100:200 --drift 0:0.1
python3 -m bl_reservoir.energy_detection.energy_detection x.h5
result="$BL_RESERVOIR_BUCKET/x/energy_detection/preprocess_fine"
for name in manifest.json header.json info_df.parquet filtered.npy; do
  [ -s "$result/$name" ] || { echo "deploy: $result/$name is missing after the one-job run" >&2; exit 1; }
done
python3 - "$result" x_truth.csv <<'PY'
import json, sys
import pandas as pd
result, truth = sys.argv[1], pd.read_csv(sys.argv[2])
manifest, hits = json.load(open(f"{result}/manifest.json")), pd.read_parquet(f"{result}/info_df.parquet")
assert manifest["n_hits"] == len(hits) > 0, (manifest["n_hits"], len(hits))
for signal in truth.itertuples():   # every injected signal has a hit within one 256-channel window
    near = hits[(hits.coarse_channel == signal.coarse_channel) & ((hits["index"] - signal.index).abs() <= 256)]
    assert len(near), f"no hit near channel {signal.index}"
print(f"deploy: ok, {len(hits)} hits, every injected signal found ({result})")
PY
# The de-Doppler search, as a pod's first job: it compiles its kernels ahead of time under NUMBA_CACHE_DIR
# (the installed package's own folder is not writable in the image), then finds both signals.
python3 -m bl_reservoir.dedoppler.search x.h5 dd --quiet
ls "$NUMBA_CACHE_DIR"/bl_reservoir/bl_dedoppler_kernels_*.so >/dev/null \
  || { echo "deploy: the de-Doppler kernels were not compiled ahead of time" >&2; exit 1; }
python3 - dd x_truth.csv <<'PY'
import sys
import pandas as pd
hits, truth = pd.read_parquet(f"{sys.argv[1]}/info_df.parquet"), pd.read_csv(sys.argv[2])
for signal in truth.itertuples():
    assert ((hits["index"] - signal.index).abs() <= 4).any(), f"de-Doppler: no hit near channel {signal.index}"
print(f"deploy: ok, de-Doppler search found all {len(truth)} signals with compiled kernels")
PY
# The external package runs in the environment the install built, without building another.
bl-reservoir algorithms | grep -qE '^blr_smoke/search +external +[^ ]+ +built *$' \
  || { bl-reservoir algorithms; echo "deploy: blr_smoke's environment was not prebuilt" >&2; exit 1; }
envs_before=$(ls "$BL_RESERVOIR_CACHE/envs")
bl-reservoir run blr_smoke/search x.h5 >/dev/null
[ -s "$BL_RESERVOIR_BUCKET/x/blr_smoke/search/manifest.json" ] && [ "$(ls "$BL_RESERVOIR_CACHE/envs")" = "$envs_before" ] \
  || { echo "deploy: the external algorithm did not run in its prebuilt environment" >&2; exit 1; }
echo "deploy: ok, blr_smoke/search ran in its prebuilt environment"

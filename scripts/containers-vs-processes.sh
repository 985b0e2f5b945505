#!/usr/bin/env bash
# Encrypt through the gateway in containers versus processes (issue 12's figure,
# docs/PERFORMANCE.md "Containers versus processes"): the default 3 Regions × 3 nodes, started
# once as local processes (`kmsim up`) and once in containers (`kmsim up --runtime docker`),
# alternating ROUNDS times in one run, each round on a new cluster; each time `kmsim bench`
# drives Encrypt over AWS JSON through the cluster's gateway (127.0.0.1) at concurrency 64 for
# SECONDS. Prints one line per round and runtime, then the medians and their ratio. Removes
# every cluster it started (the containers' volumes too).
#
#   scripts/containers-vs-processes.sh [ROUNDS] [SECONDS]     defaults: 3 rounds of 20 s
#
# Environment: KMSIM_BIN (the release binary). Needs a Docker engine; builds (or reuses) the
# image kmsim:<version> from KMSIM_BIN first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
rounds="${1:-3}"
seconds="${2:-20}"
bin="${KMSIM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim}"
dir="$(mktemp -d /var/tmp/kmsim-runtimes.XXXXXX)"
name="kmsim-ratio-$$"
results="$dir/results"
cleanup() {
  "$bin" down --data-dir "$dir/processes" >/dev/null 2>&1 || true
  "$bin" down --data-dir "$dir/docker" --volumes >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"$bin" image build --binary "$bin"
for round in $(seq 1 "$rounds"); do
  for runtime in processes docker; do
    rm -rf "${dir:?}/$runtime"
    if [ "$runtime" = docker ]; then
      up=$("$bin" up --runtime docker --name "$name" --data-dir "$dir/$runtime" --aws-port 0 --detach)
    else
      up=$("$bin" up --data-dir "$dir/$runtime" --base-port 0 --aws-port 0 --detach)
    fi
    endpoint=$(grep -o 'http://127\.0\.0\.1:[0-9]*' <<<"$up" | head -1)
    ops=$("$bin" bench --endpoint "$endpoint" --protocol aws-json --region us-east-1 \
      --workload encrypt --concurrency 64 --duration "${seconds}s" --warmup 3s --json |
      bench_field - ops_per_s)
    ops=$(printf '%.0f' "$ops")
    echo "round $round $runtime: $ops Encrypt/s through the gateway"
    echo "$runtime $ops" >>"$results"
    if [ "$runtime" = docker ]; then
      "$bin" down --data-dir "$dir/$runtime" --volumes >/dev/null
    else
      "$bin" down --data-dir "$dir/$runtime" >/dev/null
    fi
  done
done
python3 scripts/lib/medians.py "$results" processes docker "Encrypt/s through the gateway"

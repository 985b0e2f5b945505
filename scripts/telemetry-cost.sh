#!/usr/bin/env bash
# What the per-request telemetry costs (docs/PERFORMANCE.md, "Traces and metrics"): Encrypt
# throughput at concurrency 64 over AWS JSON against the three nodes of one Region, with every
# request traced and counted (the default) and with `KMSIM_REQUEST_TELEMETRY=off`, alternating
# ROUNDS times in one run, each round on a new cluster. Prints one line per round and mode, then
# the medians of each mode: Encrypt/s (the cost is 1 minus on/off) and the nodes' CPU time per
# call (user + system of the three node processes over the whole bench, divided by the calls
# made; steadier than throughput on a busy machine). Stops every cluster it started.
#
#   scripts/telemetry-cost.sh [ROUNDS] [SECONDS]     defaults: 3 rounds of 20 s
#
# Environment: KMSIM_BIN (the release binary).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-20}"
bin="${KMSIM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim}"
dir="$(mktemp -d /var/tmp/kmsim-telemetry.XXXXXX)"
results="$dir/results"
cleanup() {
  "$bin" down --data-dir "$dir/cluster" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

. scripts/lib/bench.sh

for round in $(seq 1 "$rounds"); do
  for mode in on off; do
    rm -rf "$dir/cluster"
    KMSIM_REQUEST_TELEMETRY="$mode" "$bin" up --data-dir "$dir/cluster" --regions us-east-1 \
      --nodes 3 --base-port 0 --aws-port 0 --detach >/dev/null
    before=$(node_cpu_us "$dir/cluster")
    report=$("$bin" bench --data-dir "$dir/cluster" --protocol aws-json --workload encrypt \
      --concurrency 64 --duration "${seconds}s" --warmup 3s --json)
    after=$(node_cpu_us "$dir/cluster")
    read -r ops cpu <<<"$(bench_figures "$report" "$seconds" 3 "$before" "$after")"
    echo "round $round telemetry $mode: $ops Encrypt/s, $cpu µs of node CPU per call"
    echo "$mode $ops $cpu" >>"$results"
    "$bin" down --data-dir "$dir/cluster" >/dev/null
  done
done
python3 scripts/lib/medians.py "$results" off on "Encrypt/s" "node CPU µs per call"

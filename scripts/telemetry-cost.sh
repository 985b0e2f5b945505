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

# The nodes' CPU time (user + system, from /proc/PID/stat) of a cluster, in microseconds.
node_cpu_us() {
  python3 scripts/lib/cpu.py nodes "$1"
}

for round in $(seq 1 "$rounds"); do
  for mode in on off; do
    rm -rf "$dir/cluster"
    KMSIM_REQUEST_TELEMETRY="$mode" "$bin" up --data-dir "$dir/cluster" --regions us-east-1 \
      --nodes 3 --base-port 0 --aws-port 0 --detach >/dev/null
    before=$(node_cpu_us "$dir/cluster")
    report=$("$bin" bench --data-dir "$dir/cluster" --protocol aws-json --workload encrypt \
      --concurrency 64 --duration "${seconds}s" --warmup 3s --json)
    after=$(node_cpu_us "$dir/cluster")
    # Calls made over the whole bench (warmup included) from the measured rate, and the nodes'
    # CPU time per call.
    line=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r=r if isinstance(r,list) else r["results"]; r=r[0]; calls=r["calls_per_s"]*(float(sys.argv[2])+3); print(round(r["ops_per_s"]), round((int(sys.argv[4])-int(sys.argv[3]))/calls, 1))' \
      "$report" "$seconds" "$before" "$after")
    read -r ops cpu <<<"$line"
    echo "round $round telemetry $mode: $ops Encrypt/s, $cpu µs of node CPU per call"
    echo "$mode $ops $cpu" >>"$results"
    "$bin" down --data-dir "$dir/cluster" >/dev/null
  done
done
python3 scripts/lib/medians.py "$results" off on "Encrypt/s" "node CPU µs per call"

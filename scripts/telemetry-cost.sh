#!/usr/bin/env bash
# What the per-request telemetry costs (docs/PERFORMANCE.md, "Traces and metrics"): Encrypt
# throughput at concurrency 64 over AWS JSON against the three nodes of one Region, with every
# request traced and counted (the default) and with `KMSIM_REQUEST_TELEMETRY=off`, alternating
# ROUNDS times in one run, each round on a new cluster. Prints one line per round and mode, then
# the median ops/s of each mode and the cost. Stops every cluster it started.
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

for round in $(seq 1 "$rounds"); do
  for mode in on off; do
    rm -rf "$dir/cluster"
    KMSIM_REQUEST_TELEMETRY="$mode" "$bin" up --data-dir "$dir/cluster" --regions us-east-1 \
      --nodes 3 --base-port 0 --aws-port 0 --detach >/dev/null
    ops=$("$bin" bench --data-dir "$dir/cluster" --protocol aws-json --workload encrypt \
      --concurrency 64 --duration "${seconds}s" --warmup 3s --json |
      python3 -c 'import json,sys; r=json.load(sys.stdin); r=r if isinstance(r,list) else r["results"]; print(round(r[0]["ops_per_s"]))')
    echo "round $round telemetry $mode: $ops Encrypt/s"
    echo "$mode $ops" >>"$results"
    "$bin" down --data-dir "$dir/cluster" >/dev/null
  done
done
python3 - "$results" <<'PY'
import statistics, sys
by = {"on": [], "off": []}
for line in open(sys.argv[1]):
    mode, ops = line.split()
    by[mode].append(float(ops))
on, off = statistics.median(by["on"]), statistics.median(by["off"])
print(f"median: telemetry on {on:.0f}/s, off {off:.0f}/s: cost {100 * (off - on) / off:.1f}%")
PY

#!/usr/bin/env bash
# Encrypt latency beside full-speed writes (docs/PERFORMANCE.md, "Writes and snapshots"; issue
# 11's target: Encrypt p99.9 < 10 ms and max < 50 ms while CreateKey runs at full speed and
# snapshots are taken). One Region of three nodes, over gRPC with the operator's certificate:
# `kmsim bench --workload create-key --concurrency 64` writes for SECONDS + 6 s, and from 2 s
# into it `kmsim bench --workload encrypt --concurrency 8` (4 KiB) runs SECONDS (after 2 s of
# warmup) on the same Region. ROUNDS rounds, each on a new cluster; with KMSIM_BIN_BEFORE
# (another release binary) every round also runs on a cluster of that binary (the load is
# always KMSIM_BIN's `kmsim bench`). Prints one line per round and binary, then the medians.
# Stops every cluster it started.
#
#   scripts/reads-beside-writes.sh [ROUNDS] [SECONDS]     defaults: 3 rounds of 10 s
#
# Environment: KMSIM_BIN (the release binary), KMSIM_BIN_BEFORE (optional, see above).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-10}"
bin="${KMSIM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim}"
before_bin="${KMSIM_BIN_BEFORE:-}"
. scripts/lib/bench.sh
bench_workdir reads

bench_binaries

for round in $(seq 1 "$rounds"); do
  for entry in "${binaries[@]}"; do
    name="${entry%%:*}"
    b="${entry#*:}"
    rm -rf "$dir/cluster"
    "$b" up --data-dir "$dir/cluster" --regions us-east-1 --nodes 3 --base-port 0 --aws-port 0 \
      --detach >/dev/null
    running="$b"
    # The writer: bounded in time and count, far above what the Region does in that time.
    "$bin" bench --data-dir "$dir/cluster" --workload create-key --concurrency 64 \
      --duration "$((seconds + 6))s" --warmup 0s --max-ops 200000 --json \
      >"$dir/writes" 2>"$dir/writes.log" &
    writer=$!
    # Let the writer reach full speed before the reads start (their own warmup follows).
    sleep 2
    "$bin" bench --data-dir "$dir/cluster" --workload encrypt --concurrency 8 \
      --duration "${seconds}s" --warmup 2s --json >"$dir/reads" 2>"$dir/reads.log"
    wait "$writer"
    read -r ops p99 p999 max < <(bench_field "$dir/reads" ops_per_s p99_ms p999_ms max_ms)
    read -r wops wp99 hit < <(bench_field "$dir/writes" ops_per_s p99_ms hit_max_ops)
    if [ "$hit" != False ] && [ "$hit" != false ]; then
      echo "round $round $name: the writer reached --max-ops before the end; raise it" >&2
      exit 1
    fi
    echo "round $round $name: Encrypt $ops/s p99 $p99 p99.9 $p999 max $max ms; beside CreateKey $wops/s p99 $wp99 ms (load $(cut -d' ' -f1 /proc/loadavg))"
    echo "$name $ops $p99 $p999 $max $wops $wp99" >>"$results"
    "$b" down --data-dir "$dir/cluster" >/dev/null
    running=""
  done
done
columns=("Encrypt/s" "Encrypt p99 ms" "Encrypt p99.9 ms" "Encrypt max ms" "CreateKey/s beside" "CreateKey p99 ms")
if [ -n "$before_bin" ]; then
  python3 scripts/lib/medians.py "$results" before after "${columns[@]}"
else
  python3 scripts/lib/medians.py "$results" after after "${columns[@]}"
fi

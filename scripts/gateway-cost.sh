#!/usr/bin/env bash
# What the gateway costs (docs/PERFORMANCE.md, "A lighter gateway"): Encrypt (4 KiB) over AWS
# JSON at concurrency 64 on one Region of three nodes, through the gateway (`--endpoint` the
# gateway's address) and on the nodes' own AWS endpoints (direct), both on the same cluster,
# one after the other (the order alternating between rounds), ROUNDS rounds, each on a new
# cluster. Prints one line per round and mode, then the medians: Encrypt/s (the ratio
# gateway/direct is issue 11's figure), and the CPU time per call (user + system from
# /proc/PID/stat over the whole bench, divided by the calls made; steadier than throughput on
# a shared machine) of the three nodes, of the gateway, and of the load generator (`kmsim
# bench`, which runs on the same cores and so bounds the throughput too).
# With KMSIM_BIN_BEFORE (another release binary) every round also runs both modes on a cluster
# of that binary (nodes and gateway; the load is always KMSIM_BIN's `kmsim bench`).
# With KMSIM_GATEWAY_HANDOFF=1 every round also runs both modes on a cluster of KMSIM_BIN made
# with `kmsim up --gateway-handoff` (the gateway hands each connection to a node).
# Stops every cluster it started.
#
#   scripts/gateway-cost.sh [ROUNDS] [SECONDS]     defaults: 3 rounds of 15 s
#
# Environment: KMSIM_BIN (the release binary), KMSIM_BIN_BEFORE and KMSIM_GATEWAY_HANDOFF
# (optional, see above).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-15}"
warmup=3
bin="${KMSIM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim}"
before_bin="${KMSIM_BIN_BEFORE:-}"
. scripts/lib/bench.sh
bench_workdir gateway

# One bench of mode $1 (direct or gateway) on the running cluster; prints
# "OPS NODE_US GATEWAY_US CLIENT_US" (CPU µs per call).
measure() {
  local mode="$1" endpoint=()
  if [ "$mode" = gateway ]; then
    endpoint=(--endpoint "http://$(python3 -c 'import sys,tomllib; print(tomllib.load(open(sys.argv[1],"rb"))["endpoint"]["listen"])' "$dir/cluster/topology.toml")")
  fi
  local n0 g0 n1 g1 client ops node gw
  n0=$(node_cpu_us "$dir/cluster")
  g0=$(gateway_cpu_us "$dir/cluster")
  # The generator's own CPU time (cpu.py run: from the run's first line to its exit).
  read -r client _ < <(python3 scripts/lib/cpu.py run --cluster "$dir/cluster" \
    --from '^running encrypt' --stdout "$dir/report" --stderr "$dir/bench.log" -- \
    "$bin" bench --data-dir "$dir/cluster" --protocol aws-json --workload encrypt \
    --concurrency 64 --duration "${seconds}s" --warmup "${warmup}s" --json "${endpoint[@]}")
  n1=$(node_cpu_us "$dir/cluster")
  g1=$(gateway_cpu_us "$dir/cluster")
  local report
  report=$(cat "$dir/report")
  read -r ops node <<<"$(bench_figures "$report" "$seconds" "$warmup" "$n0" "$n1")"
  read -r _ gw <<<"$(bench_figures "$report" "$seconds" "$warmup" "$g0" "$g1")"
  read -r _ client <<<"$(bench_figures "$report" "$seconds" "$warmup" 0 "$client")"
  echo "$ops $node $gw $client"
}

bench_binaries
if [ "${KMSIM_GATEWAY_HANDOFF:-0}" = 1 ]; then
  binaries+=("handoff:$bin")
fi

for round in $(seq 1 "$rounds"); do
  modes=(direct gateway)
  if [ $((round % 2)) -eq 0 ]; then
    modes=(gateway direct)
  fi
  for entry in "${binaries[@]}"; do
    name="${entry%%:*}"
    b="${entry#*:}"
    rm -rf "$dir/cluster"
    extra=()
    if [ "$name" = handoff ]; then
      extra=(--gateway-handoff)
    fi
    "$b" up --data-dir "$dir/cluster" --regions us-east-1 --nodes 3 --base-port 0 --aws-port 0 \
      --detach "${extra[@]}" >/dev/null
    running="$b"
    for mode in "${modes[@]}"; do
      read -r ops node gw client <<<"$(measure "$mode")"
      echo "round $round $name $mode: $ops Encrypt/s; CPU µs per call: nodes $node, gateway $gw, generator $client (load $(cut -d' ' -f1 /proc/loadavg))"
      echo "$name-$mode $ops $node $gw $client" >>"$results"
    done
    "$b" down --data-dir "$dir/cluster" >/dev/null
    running=""
  done
done
columns=("Encrypt/s" "node CPU µs per call" "gateway CPU µs per call" "generator CPU µs per call")
python3 scripts/lib/medians.py "$results" after-direct after-gateway "${columns[@]}"
if [ -n "$before_bin" ]; then
  python3 scripts/lib/medians.py "$results" before-direct before-gateway "${columns[@]}"
  python3 scripts/lib/medians.py "$results" before-gateway after-gateway "${columns[@]}"
fi
if [ "${KMSIM_GATEWAY_HANDOFF:-0}" = 1 ]; then
  python3 scripts/lib/medians.py "$results" handoff-direct handoff-gateway "${columns[@]}"
fi

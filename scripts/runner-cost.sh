#!/usr/bin/env bash
# The experiment runner's own cost (docs/EXPERIMENTS.md, "The runner's own cost"): Encrypt
# throughput through the gateway of one Region of three nodes, closed loop at concurrency 64,
# driven by `kmsim bench` (one prepared request sent again and again, nothing recorded) and by
# `kmsim experiment run` (every call planned from the seed, recorded in history.jsonl, its
# ciphertext decrypted after the workload and judged by the checkers), alternating ROUNDS
# times (bench, runner, bench, runner, …), each run on a new cluster. Both send the same call:
# AWS JSON Encrypt signed with SigV4 for us-east-1 by the cluster's first credentials, a
# PLAINTEXT_BYTES plaintext under one single-Region symmetric key, to the gateway on 127.0.0.1.
# Prints one line per round and generator: Encrypt/s, then the generator's CPU time per call
# and the cluster's (nodes and gateway, user + system from /proc over the measured span: the
# bench's whole run, the runner's workload phase), then the medians of each generator and the
# ratio runner/bench. Stops every cluster it started.
#
#   scripts/runner-cost.sh [ROUNDS] [SECONDS]     defaults: 3 rounds of 15 s
#
# Environment: KMSIM_BIN (the release binary), PLAINTEXT_BYTES (default 64, the experiment
# file's default), KEEP=1 to keep the runs' output (histories, reports, logs) and say where.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
rounds="${1:-3}"
seconds="${2:-15}"
bytes="${PLAINTEXT_BYTES:-64}"
bin="${KMSIM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim}"
dir="$(mktemp -d /var/tmp/kmsim-runner-cost.XXXXXX)"
results="$dir/results"
cleanup() {
  "$bin" down --data-dir "$dir/bench-cluster" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then
    echo "output kept in $dir" >&2
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT

cat >"$dir/runner-cost.toml" <<EOF
version = 1
name = "runner-cost"
description = "Encrypt only through the gateway of one Region, 64 closed-loop clients: the runner's own cost against kmsim bench (scripts/runner-cost.sh)."

[cluster]
regions = ["us-east-1"]
nodes = 3

[workload]
duration = "${seconds}s"
settle = "1s"
concurrency = 64
keys = 1
multi_region = 0.0
plaintext_bytes = $bytes
mix = { encrypt = 1 }
EOF

# A generator failed (an error in the bench, a checker in the run): its output is kept.
failed() {
  tail -n 20 "$1" >&2
  echo "the run failed: see $1" >&2
  KEEP=1
  exit 1
}

# Field FIELD of the Encrypt row of a run's results.json (a bench's: `bench_field`, bench.sh).
runner_field() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(next(o for o in r["operations"] if o["operation"]=="Encrypt")[sys.argv[2]])' "$1" "$2"
}

for round in $(seq 1 "$rounds"); do
  # kmsim bench: a new cluster, then the bench through its gateway; CPU from the run's start
  # to the bench's exit (its setup of keys excluded).
  out="$dir/bench-$round"
  mkdir -p "$out"
  rm -rf "$dir/bench-cluster"
  "$bin" up --data-dir "$dir/bench-cluster" --regions us-east-1 --nodes 3 --base-port 0 \
    --aws-port 0 --detach >"$out/up.log"
  gateway=$(python3 -c 'import sys,tomllib; print("http://"+tomllib.load(open(sys.argv[1],"rb"))["endpoint"]["listen"])' \
    "$dir/bench-cluster/topology.toml")
  cpu=$(python3 scripts/lib/cpu.py run --cluster "$dir/bench-cluster" \
    --from '^running encrypt' --stdout "$out/bench.json" --stderr "$out/bench.log" -- \
    "$bin" bench --data-dir "$dir/bench-cluster" --protocol aws-json --endpoint "$gateway" \
    --region us-east-1 --workload encrypt --concurrency 64 --duration "${seconds}s" \
    --warmup 0s --payload-bytes "$bytes" --json) || failed "$out/bench.log"
  read -r gen cluster <<<"$cpu"
  "$bin" down --data-dir "$dir/bench-cluster" >/dev/null
  ops=$(bench_field "$out/bench.json" ops_per_s)
  calls=$(python3 -c 'import sys; print(float(sys.argv[1])*float(sys.argv[2]))' \
    "$(bench_field "$out/bench.json" calls_per_s)" "$(bench_field "$out/bench.json" elapsed_s)")
  line=$(python3 -c 'import sys; o,c,g,k=map(float,sys.argv[1:]); print(round(o), round(g/c,1), round(k/c,1))' \
    "$ops" "$calls" "$gen" "$cluster")
  read -r ops gen_call cluster_call <<<"$line"
  echo "round $round bench:  $ops Encrypt/s, $gen_call µs generator CPU per call, $cluster_call µs cluster CPU per call"
  echo "bench $ops $gen_call $cluster_call" >>"$results"

  # kmsim experiment run: its own new cluster; CPU over the workload phase only.
  out="$dir/runner-$round"
  cpu=$(python3 scripts/lib/cpu.py run --cluster "$out/cluster" \
    --from '^workload: ' --to '^heal: ' --stdout "$dir/runner-$round.out" \
    --stderr "$dir/runner-$round.err" -- \
    "$bin" experiment run "$dir/runner-cost.toml" --seed "$round" --out "$out" --progress never) ||
    failed "$dir/runner-$round.out"
  read -r gen cluster <<<"$cpu"
  ops=$(runner_field "$out/results.json" throughput)
  calls=$(runner_field "$out/results.json" count)
  line=$(python3 -c 'import sys; o,c,g,k=map(float,sys.argv[1:]); print(round(o), round(g/c,1), round(k/c,1))' \
    "$ops" "$calls" "$gen" "$cluster")
  read -r ops gen_call cluster_call <<<"$line"
  echo "round $round runner: $ops Encrypt/s, $gen_call µs generator CPU per call, $cluster_call µs cluster CPU per call"
  echo "runner $ops $gen_call $cluster_call" >>"$results"
done
python3 scripts/lib/medians.py "$results" bench runner "Encrypt/s" \
  "generator CPU µs per call" "cluster CPU µs per call"

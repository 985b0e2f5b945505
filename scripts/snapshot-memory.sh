#!/usr/bin/env bash
# Peak resident memory of snapshots on a Region that already holds many keys (e.g. one that
# `kmsim bench --workload create-key --max-ops 200000` filled): for each binary given, in turn
# and ROUNDS times (A B A B ...), every node is restarted with that binary (fresh processes: fresh
# peaks) after 60 writes, so that every node builds a snapshot as it starts (the `[raft]` snapshot
# policy is set to build after 50 entries), then a follower is stopped, its data dir wiped, and it
# is restarted and caught up by a snapshot from the leader. Prints per round: the snapshot's bytes, each node's peak resident
# memory after the builds, and after the catch-up the leader's (sending) and the wiped node's
# (receiving and installing) peaks, and the catch-up time.
#
#   scripts/snapshot-memory.sh DATA_DIR ROUNDS BINARY...
#
# It edits DATA_DIR/topology.toml's `[raft]` snapshot policy and leaves the cluster running.
set -euo pipefail
dir=$1 rounds=$2
shift 2
region=us-east-1

status() { "$1" status --data-dir "$dir" --json; }
# A Python expression over `nodes`, the status rows of the Region's nodes.
nodes() {
  status "$1" | python3 -c "import json,sys; nodes=[r for r in json.load(sys.stdin) if r['kind']=='node']; print($2)"
}
# Peak resident memory (VmHWM) of node $1 in MB.
peak_mb() { awk '/^VmHWM/ {printf "%d", $2 / 1024}' "/proc/$(cat "$dir/pids/$region-$1.pid")/status"; }
# Resets the peak of node $1 to its resident memory now.
reset_peak() { echo 5 > "/proc/$(cat "$dir/pids/$region-$1.pid")/clear_refs"; }
# Waits (at most $3 s) until `nodes` expression $2 is true, with binary $1.
wait_for() {
  local deadline=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(nodes "$1" "int(bool($2))" 2>/dev/null || echo 0)" = 1 ] && return 0
    sleep 0.2
  done
  echo "timed out waiting for: $2" >&2
  return 1
}

python3 - "$dir/topology.toml" <<'EOF'
import re, sys
p = sys.argv[1]
t = open(p).read()
t = re.sub(r"(?m)^snapshot_after_logs = .*$", "snapshot_after_logs = 50", t)
t = re.sub(r"(?m)^snapshot_log_percent = .*$", "snapshot_log_percent = 0", t)
open(p, "w").write(t)
EOF

for round in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    # 60 writes, one entry each: at its next start every node is due (>= 50 entries since its
    # last snapshot) and builds one at once, of the state it starts with.
    "$bin" bench --data-dir "$dir" --workload create-key --concurrency 1 --warmup 0s \
      --duration 600s --max-ops 60 --json >/dev/null 2>&1
    "$bin" chaos kill-region "$region" --data-dir "$dir" >/dev/null
    "$bin" chaos restart-region "$region" --data-dir "$dir" >/dev/null
    wait_for "$bin" "any(n['role'] == 'leader' for n in nodes)" 60
    started=$(nodes "$bin" "[n['last_applied_index'] or 0 for n in nodes]")
    wait_for "$bin" "all((n['snapshot_index'] or 0) >= a - 5 for n, a in zip(nodes, $started))" 600
    build_peaks="$(peak_mb 1)/$(peak_mb 2)/$(peak_mb 3)"
    leader=$(nodes "$bin" "next(n['node_id'] for n in nodes if n['role'] == 'leader')")
    wiped=$(( leader % 3 + 1 ))
    for id in 1 2 3; do reset_peak "$id"; done
    "$bin" node kill "$region/$wiped" --data-dir "$dir" >/dev/null
    rm -rf "${dir:?}/nodes/$region/$wiped"
    start=$(date +%s.%N)
    "$bin" node restart "$region/$wiped" --data-dir "$dir" >/dev/null
    wait_for "$bin" "(w := next(n for n in nodes if n['node_id'] == $wiped))['last_applied_index'] is not None and w['last_applied_index'] >= max(n['last_applied_index'] or 0 for n in nodes if n['role'] == 'leader') and w['key_count'] == max(n['key_count'] for n in nodes)" 600
    took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
    bytes=$(sed 's/\x1b\[[0-9;]*m//g' "$dir/logs/$region-$leader.log" | grep 'built snapshot' | tail -1 |
      grep -o 'records=[0-9]* bytes=[0-9]*' || true)
    echo "round $round $(basename "$bin"): snapshot $bytes; build peaks per node $build_peaks MB;" \
      "leader $leader sending peak $(peak_mb "$leader") MB; wiped node $wiped peak $(peak_mb "$wiped") MB," \
      "caught up in $took s; load $(cut -d' ' -f1 /proc/loadavg)"
  done
done

#!/usr/bin/env bash
# The scale benchmark of one Region (docs/PERFORMANCE.md, "A Region of a million keys"): starts
# a Region of three nodes, creates KEYS keys with `kmsim bench` (CreateKey over gRPC at
# concurrency 64, every node loaded), then measures what a Region that size costs and how it
# recovers. Prints one line per figure, and the cluster's data dir; stops the cluster at the end.
#
#   scripts/scale.sh [KEYS]          KEYS defaults to 1000000
#
# Environment: KMSIM_BIN (the release binary), SCALE_DIR (data dir; default a new dir under
# /var/tmp, removed at the end unless SCALE_KEEP=1).
#
# Figures: creation time and rate; Raft term before and after (a leader change under the write
# load shows as a higher term); resident memory and disk per node; ListKeys paged over every key
# through the AWS endpoint (pages of 1000: count, first/median/slowest page); a node restarted
# to serving; the whole Region killed and restarted; a node whose data dir was wiped, caught up
# (by snapshot) to the leader's applied index.
set -euo pipefail
cd "$(dirname "$0")/.."
keys="${1:-1000000}"
bin="${KMSIM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim}"
dir="${SCALE_DIR:-$(mktemp -d /var/tmp/kmsim-scale.XXXXXX)}"
region=us-east-1
venv="$(scripts/python-env.sh)"

cleanup() {
  "$bin" down --data-dir "$dir" >/dev/null 2>&1 || true
  if [ "${SCALE_KEEP:-0}" != 1 ] && [ -z "${SCALE_DIR:-}" ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
# Seconds since a `now` value, one decimal.
since() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$(now)"; }
# A Python expression over `nodes`, the status rows of the Region's nodes.
nodes() {
  "$bin" status --data-dir "$dir" --json |
    python3 -c "import json,sys; nodes=[r for r in json.load(sys.stdin) if r['kind']=='node']; print($1)"
}
# Resident memory of each node now / at its peak, in MB.
rss_mb() {
  for f in "$dir"/pids/"$region"-*.pid; do
    awk '/^VmRSS/ {now = $2} /^VmHWM/ {peak = $2} END {printf "%d/%d ", now / 1024, peak / 1024}' \
      "/proc/$(cat "$f")/status"
  done
}
disk_mb() {
  for d in "$dir"/nodes/"$region"/*; do du -sm "$d" | cut -f1 | tr '\n' ' '; done
}
# Waits (at most $2 s) until node $1 has applied what the leader has applied.
caught_up() {
  local id=$1 deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local ok
    ok=$(nodes "int(any(n['role']=='leader' for n in nodes) and next(n for n in nodes if n['node_id']==$id)['last_applied_index'] is not None and next(n for n in nodes if n['node_id']==$id)['last_applied_index'] >= max(n['last_applied_index'] or 0 for n in nodes if n['role']=='leader'))" 2>/dev/null || echo 0)
    [ "$ok" = 1 ] && return 0
    sleep 0.2
  done
  echo "node $id did not catch up within $2 s" >&2
  return 1
}

"$bin" up --regions "$region" --nodes 3 --data-dir "$dir" --base-port 0 --aws-port 0 --detach >/dev/null
# AWS's quota of keys per Region (100,000, `[quotas.resources] keys_per_region`) must allow KEYS:
# raise it and restart the Region on it.
printf '\n[quotas.resources]\nkeys_per_region = %d\n' "$((keys + 1000))" >> "$dir/topology.toml"
"$bin" chaos kill-region "$region" --data-dir "$dir" >/dev/null
"$bin" chaos restart-region "$region" --data-dir "$dir" >/dev/null
echo "data dir: $dir"
echo "keys: $keys"
echo "term before: $(nodes "max(n['term'] or 0 for n in nodes)")"

start=$(now)
"$bin" bench --data-dir "$dir" --workload create-key --concurrency 64 --warmup 0s \
  --duration 7200s --max-ops "$keys" --json > "$dir/create.json"
elapsed=$(since "$start")
python3 - "$dir/create.json" "$elapsed" <<'EOF'
import sys
sys.path.insert(0, "scripts/lib")
from bench_json import first
r = first(open(sys.argv[1]).read())
print(f"create: {sys.argv[2]} s, {r['ops']} created, {r['ops_per_s']:.0f}/s, p50 {r['p50_ms']} ms, "
      f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms, errors {r['errors']} {r['error_codes']}")
EOF
echo "term after: $(nodes "max(n['term'] or 0 for n in nodes)")"
echo "key count: $(nodes "[n['key_count'] for n in nodes]")"
echo "resident memory per node, now/peak (MB): $(rss_mb)"
echo "disk per node (MB): $(disk_mb)"

"$venv/bin/python" - "$dir" <<'EOF'
import pathlib, statistics, sys, time, tomllib
import boto3
d = pathlib.Path(sys.argv[1])
t = tomllib.loads((d / "topology.toml").read_text())
c = t["credentials"][0]
kms = boto3.client("kms", region_name="us-east-1", endpoint_url="http://" + t["endpoint"]["listen"],
                   aws_access_key_id=c["access_key_id"], aws_secret_access_key=c["secret_access_key"])
pages, total, marker, seen_last = [], 0, None, None
while True:
    args = {"Limit": 1000} | ({"Marker": marker} if marker else {})
    t0 = time.monotonic()
    r = kms.list_keys(**args)
    pages.append(time.monotonic() - t0)
    ids = [k["KeyId"] for k in r["Keys"]]
    assert ids == sorted(ids) and (seen_last is None or ids[0] > seen_last), "pages out of order"
    seen_last, total = ids[-1] if ids else seen_last, total + len(ids)
    if not r.get("Truncated"):
        break
    marker = r["NextMarker"]
ms = sorted(p * 1000 for p in pages)
print(f"list-keys: {total} keys in {len(pages)} pages; page first {pages[0]*1000:.1f} ms, "
      f"median {statistics.median(ms):.1f} ms, p99 {ms[int(len(ms)*0.99)-1]:.1f} ms, slowest {ms[-1]:.1f} ms")
EOF

start=$(now)
"$bin" node restart "$region/2" --data-dir "$dir" >/dev/null
echo "node restarted to serving: $(since "$start") s; caught up: $(caught_up 2 120 && since "$start") s"

"$bin" chaos kill-region "$region" --data-dir "$dir" >/dev/null
start=$(now)
"$bin" chaos restart-region "$region" --data-dir "$dir" >/dev/null
echo "region restarted (every node serving, leader elected): $(since "$start") s"

"$bin" node kill "$region/3" --data-dir "$dir" >/dev/null
rm -rf "${dir:?}/nodes/$region/3"
start=$(now)
"$bin" node restart "$region/3" --data-dir "$dir" >/dev/null
caught_up 3 600
echo "wiped node caught up: $(since "$start") s"
echo "resident memory per node after the restarts, now/peak (MB): $(rss_mb)"
# Whose peak above is the sending leader's (the Region restart reset every node's peak).
echo "leader after the restarts: $(nodes "[n['node_id'] for n in nodes if n['role'] == 'leader']")"

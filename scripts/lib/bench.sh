# Helpers of the measuring scripts (scripts/*-cost.sh), sourced by them:
#   node_cpu_us DIR                     the CPU time (user + system) of the node processes of
#                                       the cluster in DIR (scripts/lib/cpu.py), in microseconds
#   bench_figures REPORT SECONDS WARMUP CPU_BEFORE CPU_AFTER
#                                       "OPS CPU_PER_CALL" of one `kmsim bench --json` run of one
#                                       workload: its throughput, and the nodes' CPU time per call
#                                       over the whole bench (warmup included), in microseconds

node_cpu_us() {
  python3 scripts/lib/cpu.py nodes "$1"
}

bench_figures() {
  python3 - "$@" <<'PY'
import json, sys
report, seconds, warmup, before, after = sys.argv[1:]
r = json.loads(report)
r = (r if isinstance(r, list) else r["results"])[0]
calls = r["calls_per_s"] * (float(seconds) + float(warmup))
print(round(r["ops_per_s"]), round((int(after) - int(before)) / calls, 1))
PY
}

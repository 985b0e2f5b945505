# Helpers of the measuring scripts (scripts/*-cost.sh), sourced by them:
#   node_cpu_us DIR                     the CPU time (user + system) of the node processes of
#                                       the cluster in DIR (scripts/lib/cpu.py), in microseconds
#   gateway_cpu_us DIR                  the same for the cluster's gateway process
#   bench_field REPORT FIELD...         the FIELDs of the first run of a `kmsim bench --json`
#                                       report (a file, or - for standard input), space-separated
#                                       (scripts/lib/bench_json.py, the one reader of reports)
#   bench_figures REPORT SECONDS WARMUP CPU_BEFORE CPU_AFTER
#                                       "OPS CPU_PER_CALL" of one `kmsim bench --json` run of one
#                                       workload: its throughput, and the nodes' CPU time per call
#                                       over the whole bench (warmup included), in microseconds
#   bench_binaries                      sets binaries to "after:$bin", preceded by
#                                       "before:$before_bin" when before_bin is set (the
#                                       NAME:PATH list a before/after script loops over)
#   bench_workdir NAME                  sets dir (a new /var/tmp/kmsim-NAME.XXXXXX), results
#                                       ($dir/results) and running (empty), and on exit stops
#                                       the cluster in $dir/cluster with binary $running (when
#                                       set) and removes $dir

node_cpu_us() {
  python3 scripts/lib/cpu.py nodes "$1"
}

bench_field() {
  python3 scripts/lib/bench_json.py "$@"
}

bench_figures() {
  python3 - "$@" <<'PY'
import sys
sys.path.insert(0, "scripts/lib")
from bench_json import first
report, seconds, warmup, before, after = sys.argv[1:]
r = first(report)
calls = r["calls_per_s"] * (float(seconds) + float(warmup))
print(round(r["ops_per_s"]), round((int(after) - int(before)) / calls, 1))
PY
}

gateway_cpu_us() {
  python3 scripts/lib/cpu.py gateway "$1"
}

bench_binaries() {
  binaries=("after:$bin")
  if [ -n "${before_bin:-}" ]; then
    binaries=("before:$before_bin" "after:$bin")
  fi
}

bench_workdir() {
  dir="$(mktemp -d "/var/tmp/kmsim-$1.XXXXXX")"
  results="$dir/results"
  running=""
  trap bench_workdir_cleanup EXIT
}

bench_workdir_cleanup() {
  if [ -n "$running" ]; then
    "$running" down --data-dir "$dir/cluster" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

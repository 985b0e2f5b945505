#!/usr/bin/env bash
# kmsim against other AWS-compatible KMS emulators, with one load generator (`kmsim bench
# --protocol aws-json`, SigV4, standard calls only), side by side in one run
# (docs/PERFORMANCE.md, "Against moto and LocalStack"): Encrypt of 4 KiB, closed loop at
# concurrency 64 and open loop at a fixed rate, against
#   - kmsim: one node's own AWS endpoint of a 3-node Region, and the gateway (`kmsim up`);
#   - moto (`moto[server]` from PyPI, its `moto_server`);
#   - LocalStack, when it can run on this machine (host mode of `localstack-core` from PyPI: its
#     usual form is a Docker image, which a machine without a container registry cannot pull);
#     otherwise the reason is printed and the row says so.
# The peers are installed in throwaway virtualenvs under /var/tmp (never the project's), started
# on OS-chosen loopback ports and stopped by the PIDs this script recorded. Prints a Markdown
# table and leaves every run's JSON (with its HdrHistogram) in the output directory.
#
#   scripts/bench-peers.sh [SECONDS] [RATE]     defaults: 10 s after 2 s of warmup, 100 calls/s
#
# Environment: KMSIM_BIN (the release binary), PEERS_VENV (default /var/tmp/kmsim-bench-peers),
# OUT (default: a new directory under /var/tmp), SKIP_LOCALSTACK=1 to leave LocalStack out.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
rate="${2:-100}"
bin="${KMSIM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim}"
venv="${PEERS_VENV:-/var/tmp/kmsim-bench-peers}"
out="${OUT:-$(mktemp -d /var/tmp/kmsim-bench-peers-out.XXXXXX)}"
mkdir -p "$out"
cluster="$out/cluster"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  "$bin" down --data-dir "$cluster" >/dev/null 2>&1 || true
  if [ "${made_var_lib:-0}" = 1 ]; then
    rm -rf /var/lib/localstack
  fi
}
trap cleanup EXIT

# A free loopback port (the OS picks it; nothing holds it afterwards).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `url` answers any HTTP status, at most 120 s.
wait_http() {
  for _ in $(seq 1 600); do
    if python3 - "$1" 2>/dev/null <<'PY'; then return 0; fi
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
    sleep 0.2
  done
  return 1
}

# A Python of at least 3.13 (localstack-core's code needs it, whatever its metadata says), or
# nothing.
python_313() {
  local py
  for py in python3.14 python3.13 "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

# The peers' virtualenvs, one each (moto and LocalStack pin different versions of the same
# libraries); a `.installed` file marks a finished install.
install_peers() {
  if [ ! -e "$venv/moto/.installed" ]; then
    rm -rf "$venv/moto"
    python3 -m venv "$venv/moto"
    "$venv/moto/bin/pip" install -q 'moto[server]'
    touch "$venv/moto/.installed"
  fi
  if [ "${SKIP_LOCALSTACK:-0}" != 1 ] && [ ! -e "$venv/localstack/.installed" ]; then
    local py
    if py="$(python_313)"; then
      rm -rf "$venv/localstack"
      "$py" -m venv "$venv/localstack"
      # What the runtime extra resolves to today does not start: cbor2 6 dropped the module
      # LocalStack's parser imports, pyOpenSSL 25 the X509 method its certificate code calls,
      # and Twisted's TLS wants service_identity, which nothing pulls in.
      if "$venv/localstack/bin/pip" install -q 'localstack-core[runtime]' 'cbor2<6' \
        'cryptography<45' 'pyopenssl<25' service_identity >"$out/localstack-install.log" 2>&1; then
        touch "$venv/localstack/.installed"
      fi
    fi
  fi
}

# One run of the generator against `url`: mode closed (concurrency 64) or open (the rate).
bench() {
  local name="$1" url="$2" mode="$3"
  local flags=(--concurrency 64)
  [ "$mode" = open ] && flags+=(--rate "$rate")
  echo "== $name, $mode loop" >&2
  "$bin" bench --data-dir "$cluster" --protocol aws-json --endpoint "$url" --workload encrypt \
    --duration "${seconds}s" --warmup 2s "${flags[@]}" --json >"$out/$name-$mode.json" \
    2>"$out/$name-$mode.log" || true
  tail -n 3 "$out/$name-$mode.log" >&2
}

install_peers

"$bin" up --data-dir "$cluster" --regions us-east-1 --nodes 3 --base-port 0 --aws-port 0 \
  --detach >"$out/kmsim-up.log"
read -r gateway node <<<"$(python3 - "$cluster/topology.toml" <<'PY'
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
node = t["regions"][0]["nodes"][0]["aws_listen"]
print("http://" + t["endpoint"]["listen"], "http://" + node)
PY
)"

targets=("kmsim-node $node" "kmsim-gateway $gateway")

moto_port="$(free_port)"
"$venv/moto/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$out/moto.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$moto_port/" || { echo "moto did not start; see $out/moto.log" >&2; exit 1; }
targets+=("moto http://127.0.0.1:$moto_port")

localstack_note=""
if [ "${SKIP_LOCALSTACK:-0}" = 1 ]; then
  localstack_note="left out (SKIP_LOCALSTACK=1)"
elif [ ! -e "$venv/localstack/.installed" ]; then
  localstack_note="localstack-core[runtime] is not installed (it needs Python 3.13 or later; see localstack-install.log)"
else
  ls_port="$(free_port)"
  # Host mode: LocalStack's runtime in this process, no container; only KMS. It keeps its
  # cache under /var/lib/localstack whatever it is told; removed afterwards if it was not there.
  [ -e /var/lib/localstack ] || made_var_lib=1
  GATEWAY_LISTEN="127.0.0.1:$ls_port" SERVICES=kms FILESYSTEM_ROOT="$out/localstack-fs" \
    LOCALSTACK_VOLUME_DIR="$out/localstack-volume" \
    "$venv/localstack/bin/python" -m localstack.runtime.main >"$out/localstack.log" 2>&1 &
  ls_pid=$!
  pids+=("$ls_pid")
  if wait_http "http://127.0.0.1:$ls_port/_localstack/health" && kill -0 "$ls_pid" 2>/dev/null; then
    targets+=("localstack http://127.0.0.1:$ls_port")
  else
    localstack_note="did not start in host mode; see localstack.log"
  fi
fi

for t in "${targets[@]}"; do
  read -r name url <<<"$t"
  bench "$name" "$url" closed
  bench "$name" "$url" open
done

python3 - "$out" "$rate" "$localstack_note" "${targets[@]}" <<'PY'
import os, sys
sys.path.insert(0, "scripts/lib")
from bench_json import first
out, rate, note, targets = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def load(name, mode):
    try:
        return first(open(os.path.join(out, f"{name}-{mode}.json")).read())
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return None
def ms(us):
    return f"{us / 1000:.2f}"
print(f"| endpoint | c=64 closed loop: Encrypt/s | p50 / p99 / p99.9 ms | reconnections | errors "
      f"| open loop {rate}/s: achieved calls/s | p50 / p99 / p99.9 ms from due time | late | backlog | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
for t in targets:
    name = t.split()[0]
    c, o = load(name, "closed"), load(name, "open")
    row = [name]
    if c:
        p = c["histogram"]["percentiles_us"]
        row += [f"{c['ops_per_s']:,.0f}", f"{ms(p['p50'])} / {ms(p['p99'])} / {ms(p['p99.9'])}",
                f"{c['reconnections']:,}", f"{c['errors']:,} {c['error_codes'] or ''}".strip()]
    else:
        row += ["no result"] * 4
    if o:
        p = o["histogram"]["percentiles_us"]
        row += [f"{o['calls_per_s']:,.1f}", f"{ms(p['p50'])} / {ms(p['p99'])} / {ms(p['p99.9'])}",
                f"{o['open_loop']['late']:,}", f"{o['open_loop']['backlog']:,}",
                f"{o['errors']:,} {o['error_codes'] or ''}".strip()]
    else:
        row += ["no result"] * 5
    print("| " + " | ".join(row) + " |")
if note:
    print(f"| localstack | {note} |")
PY
echo "results: $out" >&2

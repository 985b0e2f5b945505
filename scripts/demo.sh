#!/usr/bin/env bash
# Builds kmsim, starts the embedded default cluster in the background (data in ./.kmsim) and
# runs a short demonstration against it with `kmsim kms`. The cluster keeps running afterwards:
# stop it with `target/release/kmsim down` (or `$CARGO_TARGET_DIR/release/kmsim down`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -p kmsim
KMSIM="${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim"
export KMSIM_DATA_DIR="${KMSIM_DATA_DIR:-$PWD/.kmsim}"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

if "$KMSIM" status --json 2>/dev/null | grep -q '"role": "leader"'; then
  echo "== a cluster is already running in $KMSIM_DATA_DIR"
  "$KMSIM" status
else
  echo "== starting the cluster"
  "$KMSIM" up --detach
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo; echo "== create a key (through any node; followers forward writes to the Raft leader)"
KEY_ID=$("$KMSIM" kms create-key --description "kmsim demo" | json "['KeyMetadata']['KeyId']")
echo "key: $KEY_ID"
"$KMSIM" kms create-alias --alias-name "alias/demo-$(date +%s)" --target-key-id "$KEY_ID"

echo; echo "== encrypt a file under it, with an encryption context"
echo "attack at dawn" > "$tmp/plain.txt"
"$KMSIM" kms encrypt --key-id "$KEY_ID" --plaintext "fileb://$tmp/plain.txt" \
  --encryption-context purpose=demo --output-blob "CiphertextBlob:$tmp/blob.bin"

echo; echo "== decrypt it (the ciphertext names its key; no key id needed)"
"$KMSIM" kms decrypt --ciphertext-blob "fileb://$tmp/blob.bin" --encryption-context purpose=demo \
  --output-blob Plaintext:-

echo; echo "== a wrong encryption context is refused"
"$KMSIM" kms decrypt --ciphertext-blob "fileb://$tmp/blob.bin" --encryption-context purpose=other || true

echo; echo "== the Region keeps serving when a node is killed"
"$KMSIM" node kill us-east-1/1
"$KMSIM" kms decrypt --ciphertext-blob "fileb://$tmp/blob.bin" --encryption-context purpose=demo \
  --output-blob Plaintext:-
"$KMSIM" node restart us-east-1/1
"$KMSIM" status

echo
echo "The cluster is still running. Try: $KMSIM kms list-keys ; $KMSIM kms describe-key --key-id $KEY_ID"
echo "Stop it with: $KMSIM down"

#!/usr/bin/env bash
# Builds kmsim, starts the embedded default cluster in the background (data in ./.kmsim) and
# runs a short demonstration against it with `kmsim kms`. The cluster keeps running afterwards:
# stop it with `target/release/kmsim down`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -p kmsim
KMSIM="${CARGO_TARGET_DIR:-target}/release/kmsim"
export KMSIM_DATA_DIR="${KMSIM_DATA_DIR:-$PWD/.kmsim}"

if "$KMSIM" status --json 2>/dev/null | grep -q '"role": "leader"'; then
  echo "== a cluster is already running in $KMSIM_DATA_DIR"
else
  echo "== starting the cluster"
  "$KMSIM" up --detach
fi
"$KMSIM" status

echo "== create a key"
KEY_ID=$("$KMSIM" kms create-key --description "kmsim demo" | sed -n 's/.*"KeyId": "\(.*\)".*/\1/p' | head -1)
echo "key: $KEY_ID"
echo "== encrypt a file"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "attack at dawn" > "$tmp/plain.txt"
"$KMSIM" kms encrypt --key-id "$KEY_ID" --plaintext "fileb://$tmp/plain.txt" \
  --encryption-context purpose=demo | tee "$tmp/enc.json"
sed -n 's/.*"CiphertextBlob": "\(.*\)".*/\1/p' "$tmp/enc.json" | base64 -d > "$tmp/blob.bin"
echo "== decrypt it (no key id needed: the ciphertext names its key)"
"$KMSIM" kms decrypt --ciphertext-blob "fileb://$tmp/blob.bin" --encryption-context purpose=demo \
  | sed -n 's/.*"Plaintext": "\(.*\)".*/\1/p' | base64 -d
echo "== describe the key"
"$KMSIM" kms describe-key --key-id "$KEY_ID"
echo
echo "The cluster is still running. Try: $KMSIM kms list-keys ; $KMSIM status ; $KMSIM node kill us-east-1/1"
echo "Stop it with: $KMSIM down"

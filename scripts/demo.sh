#!/usr/bin/env bash
# Builds kmsim, starts the embedded default cluster in the background (three Regions of three
# nodes, data in ./.kmsim, the AWS endpoint on 127.0.0.1:4599) and runs a short demonstration:
# a key in one Region, a multi-Region key replicated into the other two, a ciphertext of one
# Region decrypted in another while the first is down, and the AWS CLI (installed into a
# virtualenv by scripts/python-env.sh) talking to the one endpoint. The cluster keeps running
# afterwards: stop it with `target/release/kmsim down` (or `$CARGO_TARGET_DIR/release/kmsim down`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -p kmsim
KMSIM="${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim"
export KMSIM_DATA_DIR="${KMSIM_DATA_DIR:-$PWD/.kmsim}"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }
A=us-east-1 B=eu-west-1 C=ap-southeast-2

if "$KMSIM" status --json 2>/dev/null | grep -q '"role": "leader"'; then
  echo "== a cluster is already running in $KMSIM_DATA_DIR"
  "$KMSIM" status
  for r in $A $B $C; do
    grep -q "name = \"$r\"" "$KMSIM_DATA_DIR/topology.toml" || {
      echo "it has no Region $r; stop it ($KMSIM down) or set KMSIM_DATA_DIR to another directory"
      exit 1
    }
  done
else
  echo "== starting the cluster"
  "$KMSIM" up --detach
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Polls `describe-key` in Region $1 for key $2 until its KeyState is $3 (at most 30 s).
wait_state() {
  for _ in $(seq 300); do
    s=$("$KMSIM" kms describe-key --region "$1" --key-id "$2" 2>/dev/null | json "['KeyMetadata']['KeyState']" || true)
    [ "$s" = "$3" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $2 to be $3 in $1"; return 1
}

echo; echo "== a key in $A (through any node; followers forward writes to the Raft leader)"
KEY_ID=$("$KMSIM" kms create-key --region $A --description "kmsim demo" | json "['KeyMetadata']['KeyId']")
echo "key: $KEY_ID"
echo "attack at dawn" > "$tmp/plain.txt"
"$KMSIM" kms encrypt --region $A --key-id "$KEY_ID" --plaintext "fileb://$tmp/plain.txt" \
  --encryption-context purpose=demo --output-blob "CiphertextBlob:$tmp/blob.bin"
echo -n "decrypted (the ciphertext names its key): "
"$KMSIM" kms decrypt --region $A --ciphertext-blob "fileb://$tmp/blob.bin" \
  --encryption-context purpose=demo --output-blob Plaintext:-
echo "a wrong encryption context is refused:"
"$KMSIM" kms decrypt --region $A --ciphertext-blob "fileb://$tmp/blob.bin" --encryption-context purpose=other || true

echo; echo "== a multi-Region key: primary in $A, replicas in $B and $C"
MRK=$("$KMSIM" kms create-key --region $A --multi-region --description "demo mrk" | json "['KeyMetadata']['KeyId']")
echo "key: $MRK"
for r in $B $C; do
  "$KMSIM" kms replicate-key --region $A --key-id "$MRK" --replica-region $r --description "replica in $r" \
    | json "['ReplicaKeyMetadata']['Arn'] + ' is ' + d['ReplicaKeyMetadata']['KeyState']"
done
for r in $B $C; do wait_state $r "$MRK" Enabled; echo "replica in $r is Enabled"; done
"$KMSIM" kms describe-key --region $C --key-id "$MRK" | json "['KeyMetadata']['MultiRegionConfiguration']"

echo; echo "== encrypt in $A, then kill every node of $A and decrypt in $C (no cross-Region call)"
echo "ciphertext of one Region, plaintext in another" > "$tmp/mrk.txt"
"$KMSIM" kms encrypt --region $A --key-id "$MRK" --plaintext "fileb://$tmp/mrk.txt" \
  --output-blob "CiphertextBlob:$tmp/mrk.bin"
"$KMSIM" chaos kill-region $A
echo -n "decrypted in $C: "
"$KMSIM" kms decrypt --region $C --key-id "$MRK" --ciphertext-blob "fileb://$tmp/mrk.bin" --output-blob Plaintext:-
"$KMSIM" chaos restart-region $A

echo; echo "== rotate on the primary: the new material reaches every replica through the synchronizer"
current() { "$KMSIM" kms describe-key --region "$1" --key-id "$MRK" | json "['KeyMetadata']['CurrentKeyMaterialId']"; }
before=$(current $A)
"$KMSIM" kms rotate-key-on-demand --region $A --key-id "$MRK"
for _ in $(seq 300); do
  ids=$(for r in $A $B $C; do current $r; done | sort -u)
  [ "$(echo "$ids" | wc -l)" = 1 ] && [ "$ids" != "$before" ] && break
  sleep 0.1
done
echo "CurrentKeyMaterialId in $A, $B and $C: $ids"
echo "the key set's history, merged from the three Regions' audit logs:"
"$KMSIM" audit --all-regions --key-id "$MRK" --brief

echo; echo "== the AWS CLI, unchanged, against the one endpoint (Region from the SigV4 scope)"
if venv=$(scripts/python-env.sh 2>"$tmp/venv.log"); then
  export AWS_ENDPOINT_URL_KMS=http://127.0.0.1:4599 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  "$venv/bin/aws" kms encrypt --region $B --key-id "$MRK" --plaintext fileb://"$tmp/mrk.txt" \
    --query CiphertextBlob --output text | base64 -d > "$tmp/aws.bin"
  echo -n "aws kms decrypt in $C of a ciphertext made in $B: "
  "$venv/bin/aws" kms decrypt --region $C --key-id "$MRK" --ciphertext-blob fileb://"$tmp/aws.bin" \
    --query Plaintext --output text | base64 -d
  "$venv/bin/aws" kms list-aliases --region $B --query 'length(Aliases)' --output text >/dev/null
else
  echo "(skipped: the AWS CLI could not be installed; see $tmp/venv.log)"
fi

echo
echo "The cluster is still running. Try:"
echo "  $KMSIM status ; $KMSIM kms list-keys --region $B ; $KMSIM chaos link --from $A --to $B --delay 80ms"
echo "  export AWS_ENDPOINT_URL_KMS=http://127.0.0.1:4599 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=$A"
echo "Stop it with: $KMSIM down"

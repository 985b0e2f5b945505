#!/usr/bin/env bash
# What authorization costs with a realistic policy (docs/PERFORMANCE.md, "Authorization on
# every call"): Encrypt throughput at concurrency 64 over AWS JSON against the three nodes of
# one Region, in two modes, alternating ROUNDS times in one run, each round on a new cluster:
#   default    the account root (`test`/`test`) on a key with AWS's default key policy;
#   realistic  an IAM user (`[[iam.users]]`, tagged, with an identity policy of two statements,
#              one with a condition) signing with its own `[[credentials]]`, on a key whose
#              policy has five statements with conditions (kms:CallerAccount,
#              aws:PrincipalTag/team, aws:SourceIp, kms:EncryptionContext:Department,
#              kms:GrantIsForAWSResource; `kmsim bench --key-policy`).
# Both modes run on the same topology. Prints one line per round and mode, then the medians:
# Encrypt/s and the nodes' CPU time per call (user + system of the three node processes over
# the whole bench, divided by the calls made). With KMSIM_BIN_BEFORE (another release binary,
# e.g. of the commit before the decision cache) every round also runs both modes with it, and
# the medians compare the binaries too (the nodes run that binary; the load is always KMSIM_BIN's
# `kmsim bench`). Stops every cluster it started.
#
#   scripts/authz-cost.sh [ROUNDS] [SECONDS]     defaults: 3 rounds of 20 s
#
# Environment: KMSIM_BIN (the release binary), KMSIM_BIN_BEFORE (optional, see above).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-20}"
bin="${KMSIM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim}"
before_bin="${KMSIM_BIN_BEFORE:-}"
. scripts/lib/bench.sh
bench_workdir authz

account=111122223333
user="arn:aws:iam::$account:user/bench"
key_policy=$(
  cat <<EOF
{"Version": "2012-10-17", "Id": "authz-cost", "Statement": [
  {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
   "Principal": {"AWS": "arn:aws:iam::$account:root"}, "Action": "kms:*", "Resource": "*"},
  {"Sid": "Allow access for Key Administrators", "Effect": "Allow",
   "Principal": {"AWS": "arn:aws:iam::$account:role/KeyAdmin"},
   "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
              "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
              "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
              "kms:CancelKeyDeletion"],
   "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "$account"}}},
  {"Sid": "Allow use of the key", "Effect": "Allow", "Principal": {"AWS": "$user"},
   "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
              "kms:DescribeKey"],
   "Resource": "*",
   "Condition": {"StringEquals": {"aws:PrincipalTag/team": "bench"},
                 "IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
                 "StringEqualsIfExists": {"kms:EncryptionContext:Department": "bench"}}},
  {"Sid": "Allow attachment of persistent resources", "Effect": "Allow",
   "Principal": {"AWS": "$user"}, "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
   "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
  {"Sid": "Deny other accounts", "Effect": "Deny", "Principal": "*", "Action": "kms:*",
   "Resource": "*", "Condition": {"StringNotEquals": {"kms:CallerAccount": "$account"}}}]}
EOF
)

# The user, its identity policy and its access key, appended to a new cluster's topology.
iam_tables() {
  cat <<EOF

[[credentials]]
access_key_id = "AKIAAUTHZCOSTBENCH01"
secret_access_key = "authz-cost-bench-secret"
principal_arn = "$user"

[[iam.users]]
arn = "$user"
tags = { team = "bench" }
[[iam.users.policies]]
name = "use-keys-in-us-east-1"
document = '''{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["kms:CreateKey", "kms:DescribeKey", "kms:PutKeyPolicy",
   "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:Sign", "kms:GenerateMac"],
   "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
  {"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}]}'''
EOF
}

# A new cluster in $dir/cluster, with the user, run by binary $1.
new_cluster() {
  rm -rf "$dir/cluster"
  "$1" up --data-dir "$dir/cluster" --regions us-east-1 --nodes 3 --base-port 0 --aws-port 0 \
    --detach >/dev/null
  "$1" down --data-dir "$dir/cluster" >/dev/null
  iam_tables >>"$dir/cluster/topology.toml"
  "$1" up --data-dir "$dir/cluster" --detach >/dev/null
  running="$1"
}

bench_binaries

for round in $(seq 1 "$rounds"); do
  for entry in "${binaries[@]}"; do
    name="${entry%%:*}"
    b="${entry#*:}"
    for mode in default realistic; do
      new_cluster "$b"
      if [ "$mode" = default ]; then
        caller=(--access-key-id test --secret-access-key test)
        policy=()
      else
        caller=(--access-key-id AKIAAUTHZCOSTBENCH01 --secret-access-key authz-cost-bench-secret)
        policy=(--key-policy "$key_policy")
      fi
      before=$(node_cpu_us "$dir/cluster")
      report=$("$bin" bench --data-dir "$dir/cluster" --protocol aws-json --workload encrypt \
        --concurrency 64 --duration "${seconds}s" --warmup 3s --json "${caller[@]}" "${policy[@]}")
      after=$(node_cpu_us "$dir/cluster")
      read -r ops cpu <<<"$(bench_figures "$report" "$seconds" 3 "$before" "$after")"
      echo "round $round $name $mode: $ops Encrypt/s, $cpu µs of node CPU per call"
      echo "$name-$mode $ops $cpu" >>"$results"
      "$b" down --data-dir "$dir/cluster" >/dev/null
      running=""
    done
  done
done
columns=("Encrypt/s" "node CPU µs per call")
python3 scripts/lib/medians.py "$results" after-default after-realistic "${columns[@]}"
if [ -n "$before_bin" ]; then
  python3 scripts/lib/medians.py "$results" before-default before-realistic "${columns[@]}"
  python3 scripts/lib/medians.py "$results" before-default after-default "${columns[@]}"
  python3 scripts/lib/medians.py "$results" before-realistic after-realistic "${columns[@]}"
fi

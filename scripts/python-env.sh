#!/usr/bin/env bash
# Creates (once) the virtualenv of the Python suite outside the clone and installs the pinned
# packages of tests/python/requirements.txt into it: boto3/botocore, the AWS CLI (awscli), the
# AWS Encryption SDK 4.x with the Material Providers Library, the DynamoDB Encryption Client
# (dynamodb-encryption-sdk), cryptography, pytest, and kubernetes-validate (the Kubernetes schemas
# the manifests of `kmsim deploy kubernetes` are checked against).
# Where: $KMSIM_VENV, default /var/tmp/kmsim-venv. Reinstalls only when the requirements change.
# Prints the virtualenv's path on stdout (everything else goes to stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${KMSIM_VENV:-/var/tmp/kmsim-venv}"
req="tests/python/requirements.txt"
stamp="$venv/.kmsim-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating the Python virtualenv in $venv" >&2
  python3 -m venv "$venv" >&2
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "installing the Python suite's packages into $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"

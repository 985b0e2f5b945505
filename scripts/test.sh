#!/usr/bin/env bash
# Runs the whole test suite: formatting, dependency rules (cargo-deny), clippy, unit and
# property tests, openraft's storage suite on the in-memory and RocksDB engines, the
# integration tests that start real node processes (the AWS SDK for Rust among their clients),
# then the Python suite (boto3, the AWS CLI, the AWS Encryption SDK) against a cluster of the
# same release binary. One build profile (release) serves the tests, the benchmarks and the
# demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo deny (licences, duplicate versions, sources; offline)"
# The crates of Cargo.lock must be on disk for an offline check (a no-op when they are).
cargo fetch --locked --target x86_64-unknown-linux-gnu >/dev/null
cargo deny --offline check licenses bans sources
echo "== cargo clippy"
cargo clippy --release --workspace --all-targets --locked -- -D warnings
echo "== cargo nextest"
cargo nextest run --release --workspace --locked --no-fail-fast
echo "== python suite (boto3, AWS CLI, AWS Encryption SDK)"
venv="$(scripts/python-env.sh)"
export KMSIM_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/kmsim"
"$venv/bin/python" -m pytest tests/python -p no:cacheprovider

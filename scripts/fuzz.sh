#!/usr/bin/env bash
# Runs the ciphertext_blob fuzz target for SECONDS (default 60).
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Only a stable toolchain is assumed:
# RUSTC_BOOTSTRAP=1 lets stable rustc accept the nightly flags cargo-fuzz passes.
# Extra arguments after SECONDS go to libFuzzer (e.g. -jobs=2).
set -euo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")/../fuzz"
mkdir -p corpus/ciphertext_blob
RUSTC_BOOTSTRAP=1 exec cargo fuzz run ciphertext_blob corpus/ciphertext_blob -- \
    -max_total_time="$seconds" "$@"

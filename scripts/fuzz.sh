#!/usr/bin/env bash
# Runs every fuzz target (ciphertext_blob: the ciphertext blob parser; aws_front: headers and
# bodies into the AWS JSON front's envelope, SigV4 and request decoding; propose_decode: the
# command of a forwarded Propose and a Raft log entry; snapshot_chunks: InstallSnapshot chunk
# sequences through the receiver's bounds) for SECONDS each
# (default 60). FUZZ_TARGETS="aws_front" picks some. Extra arguments after SECONDS go to
# libFuzzer (e.g. -jobs=2).
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Only a stable toolchain is assumed:
# RUSTC_BOOTSTRAP=1 lets stable rustc accept the nightly flags cargo-fuzz passes.
set -euo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")/../fuzz"
for target in ${FUZZ_TARGETS:-ciphertext_blob aws_front propose_decode snapshot_chunks}; do
  echo "== fuzzing $target for ${seconds}s"
  mkdir -p "corpus/$target"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
      -max_total_time="$seconds" "$@"
done

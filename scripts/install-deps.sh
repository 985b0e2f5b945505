#!/usr/bin/env bash
# Installs what building and testing kmsim needs on a fresh Debian machine of this kind:
# clang/libclang (bindgen for RocksDB), openssl (the independent implementation the
# integration tests check kmsim's cryptography against), Debian's prometheus (the `prometheus`
# server and `promtool` that tests/integration/t64_prometheus.rs runs against a `kmsim up`
# cluster and deploy/observability/), Debian's chromium (the experiment report's screenshot
# test), cargo-nextest and cargo-deny (each if missing).
# Idempotent and quiet when everything is already there.
set -euo pipefail

need_apt=()
dpkg -s libclang-dev >/dev/null 2>&1 || need_apt+=(libclang-dev)
dpkg -s clang >/dev/null 2>&1 || need_apt+=(clang)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (needed to build RocksDB and to test)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Debian's prometheus package ships `prometheus` and `promtool`; its postinst would enable and
# start a system-wide Prometheus (listening on :9090, scraping the machine). The tests start
# their own, so a policy-rc.d that answers 101 ("action forbidden") keeps invoke-rc.d from
# starting the service during the install; it is removed afterwards unless one was already
# there (container images often ship one). Without recommends: prometheus-node-exporter would
# be another service.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "installing prometheus (a real Prometheus and promtool for the observability tests)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  policy=/usr/sbin/policy-rc.d
  added_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# kmsim scripts/install-deps.sh: no service starts during this install\nexit 101\n' \
      | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    added_policy=1
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -n "$added_policy" ]; then
    $SUDO rm -f "$policy"
    trap - EXIT
  fi
fi

# Debian's chromium: crates/kmsim-experiment/tests/report_in_chromium.rs opens an experiment's
# report.html in headless Chromium, takes a screenshot and checks that its SVG plots rendered.
# Without recommends (no extensions, drivers or desktop services); the plots' labels are set in
# the font fontconfig brings (fonts-dejavu-core), so no font package is added.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (headless, for the experiment report's screenshot test)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# cargo-deny checks licences, duplicate versions and sources (deny.toml). Pinned: 0.20.2 builds
# with the installed rustc (1.88 or later). Built in a target dir of its own, so installing it
# never touches the build directory of kmsim (CARGO_TARGET_DIR).
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version >/dev/null 2>&1; then
  echo "installing cargo-deny $CARGO_DENY_VERSION"
  CARGO_TARGET_DIR="${TMPDIR:-/tmp}/cargo-deny-install" \
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked
fi

#!/usr/bin/env bash
# Runs every test of sbcd: formatting, lints, unit/property/conformance tests, end-to-end tests.
# Installs what the tests need on a fresh Debian machine (idempotent; skipped when present).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the end-to-end tests drive (loopback only): sip-tester (SIPp) and kamailio
# for tests/e2e; later issues add baresip, rtpengine-daemon, prometheus here.
# Installing kamailio may enable a system service on 5060 (its own /etc/kamailio config); the
# tests neither use nor disturb it: they run their own Kamailio in the foreground with
# tests/kamailio/proxy.cfg on 127.0.0.4 and kernel-assigned ports, like every other peer.
packages=(sip-tester kamailio)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (rustup or Debian's cargo) first" >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace

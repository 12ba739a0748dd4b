#!/usr/bin/env bash
# Runs every test of sbcd: formatting, lints, unit/property/conformance tests, end-to-end tests.
# Installs what the tests need on a fresh Debian machine (idempotent; skipped when present).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the end-to-end tests drive (loopback only): sip-tester (SIPp), kamailio and
# baresip for tests/e2e, prometheus (promtool and a server of the test's own that scrapes
# sbcd; the package's own service is not used). rtpengine-daemon is for benches/rtp.sh only.
# baresip runs headless from its own config directory in the test directory (no sound device,
# no UI), registered to sbcd as a PBX on 127.0.0.1 with a kernel-assigned port.
# Installing kamailio may enable a system service on 5060 (its own /etc/kamailio config); the
# tests neither use nor disturb it: they run their own Kamailio in the foreground with
# tests/kamailio/proxy.cfg on 127.0.0.4 and kernel-assigned ports, like every other peer.
# baresip-core is the headless baresip (the baresip package adds GTK, ffmpeg and GStreamer).
# systemd: only for `systemd-analyze verify` of systemd/sbcd.service (nothing is started).
# sipvicious: svmap, svwar and svcrack against sbcd on loopback (tests/e2e/scanners.rs).
packages=(sip-tester kamailio baresip-core prometheus systemd sipvicious)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
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

#!/usr/bin/env bash
# Builds a Debian package of sbcd from the workspace, with dpkg-deb only (no debhelper):
#   bash packaging/build-deb.sh                 # cargo build --release, then the .deb
#   bash packaging/build-deb.sh --binary PATH   # package an sbcd already built (tests)
#   bash packaging/build-deb.sh --out DIR       # where the .deb goes (default target/debian)
#   bash packaging/build-deb.sh --fast          # gzip -1 instead of xz (tests)
# Install:  apt install ./target/debian/sbcd_<version>_<arch>.deb
#
# The package holds /usr/bin/sbcd, /lib/systemd/system/sbcd.service, /etc/sbcd/sbcd.toml (a
# conffile: dpkg keeps the operator's edits on upgrade) and the docs. postinst creates the
# system user `sbc` and reloads systemd; it neither enables nor starts sbcd, because the
# sample config only listens on loopback: edit /etc/sbcd/sbcd.toml, run
# `sbcd check-config --config /etc/sbcd/sbcd.toml`, then `systemctl enable --now sbcd`.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out="target/debian"
compress=()
while (($#)); do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --fast) compress=(-Zgzip -z1); shift ;;
    *) echo "build-deb.sh: unknown argument $1 (use --binary PATH, --out DIR)" >&2; exit 64 ;;
  esac
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
if [[ -z "$version" ]]; then
  echo "build-deb.sh: no version in the workspace Cargo.toml" >&2
  exit 1
fi
arch=$(dpkg --print-architecture)
if [[ -z "$binary" ]]; then
  cargo build --release --locked -p sbcd
  binary="target/release/sbcd"
fi
if ! "$binary" --version >/dev/null; then
  echo "build-deb.sh: $binary does not run" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/sbcd_${version}_${arch}"
install -D -m 0755 "$binary" "$root/usr/bin/sbcd"
install -D -m 0644 systemd/sbcd.service "$root/lib/systemd/system/sbcd.service"
install -D -m 0640 etc/sbcd.toml "$root/etc/sbcd/sbcd.toml"
install -D -m 0644 docs/operations.md "$root/usr/share/doc/sbcd/operations.md"
install -D -m 0644 README.md "$root/usr/share/doc/sbcd/README.md"
mkdir -p "$root/DEBIAN"
echo "/etc/sbcd/sbcd.toml" > "$root/DEBIAN/conffiles"
installed_kb=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: sbcd
Version: ${version}
Architecture: ${arch}
Maintainer: sbcd developers <sbcd@localhost>
Installed-Size: ${installed_kb}
Depends: libc6, adduser
Section: net
Priority: optional
Description: SIP session border controller (B2BUA) for carrier edges
 sbcd terminates every call on an inbound leg and re-originates it on an
 outbound leg, so each SIP trunk sees the habit it expects (IP allowlist,
 hash domain, tech prefix, digest, registration), anchors the media, and
 exports Prometheus metrics. Runs under systemd (Type=notify, watchdog).
CONTROL
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd sbc >/dev/null; then
    adduser --system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin sbc
  fi
  chgrp sbc /etc/sbcd/sbcd.toml
  chmod 0640 /etc/sbcd/sbcd.toml
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
    # An upgrade restarts a running sbcd (it drains first: SIGTERM, then starts again).
    if [ -n "$2" ] && systemctl is-active --quiet sbcd; then
      systemctl restart sbcd || true
    fi
  fi
fi
POSTINST
cat > "$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl disable --now sbcd >/dev/null 2>&1 || true
fi
PRERM
cat > "$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null || true
fi
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
mkdir -p "$out"
dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$out/sbcd_${version}_${arch}.deb" >/dev/null
echo "$out/sbcd_${version}_${arch}.deb"

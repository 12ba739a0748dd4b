#!/usr/bin/env bash
# RTP forwarding: a bare recvmmsg -> sendmmsg loop (the ceiling), sbcd's forwarder and rtpengine
# (userspace) on the same streams, with packets forwarded per CPU-second, loss and latency.
# See --help (benches/rtpload.py holds the driver and the documentation of the variables).
set -euo pipefail
cd "$(dirname "$0")/.."

. benches/preflight.sh
usage() { python3 benches/rtpload.py --help; }
bench_args usage "$@"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/rtp-bench-target}
export EXAMPLES=${EXAMPLES:-$CARGO_TARGET_DIR/release/examples}
if [[ "${BUILD:-1}" == 1 ]]; then
  cargo build --release -p rtp-relay --features io \
    --example bare_relay --example bare_uring --example relay_bench --example rtp_gen
fi
if [[ " ${TARGETS:-direct bare sbcd sbcd_mmsg bare_uring rtpengine} " == *" rtpengine "* ]] && ! command -v "${RTPENGINE_BIN:-rtpengine}" >/dev/null; then
  echo "rtpengine not found: apt-get install -y rtpengine-daemon (or set RTPENGINE_BIN)" >&2
  exit 1
fi
# 2 sockets per call in the generator, 2 ports (4 for rtpengine) per call in the target.
raise_nofile
exec python3 benches/rtpload.py

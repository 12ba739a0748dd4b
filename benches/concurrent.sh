#!/usr/bin/env bash
# Held calls: CALLS calls established through sbcd and held HOLD_MS, then all hung up; sbcd's
# memory (VmRSS) idle, at the plateau and afterwards. See --help.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
benches/concurrent.sh: many established calls through sbcd at once (loopback only).

  SIPp UAC (PBX, 127.0.0.1:PORT_BASE+10) -> sbcd (udp 127.0.0.1:PORT_BASE) -> SIPp UAS (127.0.0.2:PORT_BASE+20)

The UAC (benches/sipp/uac_hold.xml, -d HOLD_MS -l CALLS -m CALLS -r RATE) places CALLS calls at
RATE/s; each is held HOLD_MS after its ACK, then the caller sends BYE. The UAS is
benches/sipp/uas.xml. sbcd's VmRSS (/proc/PID/status) and CPU are sampled once a second:
idle before the run, the max while every call is up (the plateau), and AFTER_S seconds after
the last call ended. KiB per call = (plateau - idle) / CALLS. Exit status 0 only when every call
succeeded.
SIPp warns that CALLS + 1 open files would exceed `ulimit -n` "to allow for media support": these
scenarios play no RTP (sbcd anchors the SDP, nobody sends to it), so that warning is harmless.

Environment:
  CALLS      calls, and the concurrency limit   (default 4000; each anchored call holds 4 media
             ports, one descriptor each: the media range is sized from CALLS)
  RATE       calls/s of the ramp                (default 500: a 40 s ramp)
  HOLD_MS    how long each call is held         (default 60000)
  AFTER_S    seconds sampled after the last call ended (default 40: past sbcd's 32 s timers)
  ROUNDS     rounds on the same sbcd process   (default 1; 2 tells memory kept for reuse from a leak)
  PORT_BASE  first port used                    (default 37000)
  SBCD_BIN   sbcd binary                        (default target/release/sbcd)
  OUT        results directory                  (default /tmp/concurrent-results)
  SIPP_BIN   sipp binary                        (default sipp from PATH)

Raw: OUT/run-*/rss.csv (one sample a second), result.json, summary.md, SIPp stat/error files.
USAGE
}

. benches/preflight.sh
bench_args usage "$@"

need_sbcd
# SIPp keeps every call (and the UAS every dialog) in memory; UDP mode uses one socket, but
# raise the descriptor limit anyway.
raise_nofile
exec python3 benches/sipload.py concurrent

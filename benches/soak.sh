#!/usr/bin/env bash
# Bounded soak: calls of random length, busy answers and config reloads through one sbcd for
# DURATION seconds; zero unexpected call failures, and memory, fds, call state and media ports
# flat over the run. See --help.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
benches/soak.sh: a bounded soak of sbcd (loopback only).

  SIPp UAC (PBX, 127.0.0.1:PORT_BASE+10) -> sbcd (udp 127.0.0.2:PORT_BASE) -> SIPp UAS (carrier, 127.0.0.2:PORT_BASE+20)

Calls: the UAC (benches/sipp/uac_soak.xml) places RATE calls/s for DURATION s (-m RATE*DURATION).
The UAS (benches/sipp/uas_soak.xml) answers a random BUSY_PCT% of calls 486 Busy Here and the rest
100/180/200; an answered call lasts a random time, uniform in CALL_MIN_MS..CALL_MAX_MS, then the
caller hangs up. Busy and answered both complete the SIPp scenarios, so SIPp's failed calls (and
calls still open when it stops) are the unexpected failures. No RTP flows (media idle timeout 1 h).

Reloads: every RELOAD_EVERY s (while the UAC runs) the config file is replaced (rename) by the
other of two valid variants (b adds an unused trunk and narrows the route's regex) and
POST /reload is sent to admin.listen (127.0.0.1:PORT_BASE+30); each answer must be 200 with
"result":"ok", and sbc_config_reloads_total{result="ok"} must count them all.

Samples: every SAMPLE_EVERY s during the load, every 2 s for DRAIN_S s after the UAC's exit:
sbcd VmRSS and VmHWM (/proc/PID/status), open fds (/proc/PID/fd), threads, CPU, and from
GET /metrics sbc_calls_active, sbc_calls_held, sbc_media_ports_free, sbc_rtp_sessions_active,
sbc_config_reloads_total, sbc_calls_total{leg="inbound"} by result, sbc_transaction_timeouts_total.

Verdict (a PASS/FAIL line each): zero unexpected failures; every reload ok; sbcd's call results
match SIPp's (answered = 200s, failed = 486s, nothing else); no transaction timeouts; VmRSS of the
last WINDOW_S of the load within RSS_TOL_PCT of the first WINDOW_S after WARMUP_S; fds within
FD_TOL; sbc_calls_held and media ports in use within LOAD_TOL_PCT (they follow the random load);
DRAIN_S after the last call: no call active or held, every media port free, no RTP component;
sbcd alive with no ERROR in its log. Then a one-line result for the README. Exit 0 only on PASS.

Ports (all PORT_BASE+N, N in 0..999): sbcd SIP 127.0.0.2:+0, UAC 127.0.0.1:+10 (media +40/+42),
UAS 127.0.0.2:+20 (media +44/+46), admin 127.0.0.1:+30 (TCP), SIPp control ports 0.0.0.0:+1 and
+2, sbcd media 127.0.0.2:+100..+999 (450 RTP/RTCP pairs; a call takes 2 pairs, so RATE x mean
answered call length must stay well under 225). The script waits up to PORT_WAIT_S for the whole
range to be free of other sockets before it starts.

Environment:
  DURATION      seconds of load                     (default 600)
  RATE          calls/s                              (default 20)
  CALL_MIN_MS   shortest answered call               (default 500)
  CALL_MAX_MS   longest answered call                (default 15000)
  BUSY_PCT      share of calls answered 486          (default 10)
  RELOAD_EVERY  seconds between reloads              (default 30; 0: no reloads)
  SAMPLE_EVERY  seconds between samples              (default 10)
  WARMUP_S      seconds before the first window      (default max(60, CALL_MAX_MS/1000 + 45); shrunk for short runs)
  WINDOW_S      length of the first and last windows (default 60; shrunk for short runs)
  DRAIN_S       seconds sampled after the last call  (default 45: past sbcd's 32 s transaction linger)
  RSS_TOL_PCT   allowed VmRSS growth, %              (default 10)
  FD_TOL        allowed growth of open fds           (default 2)
  LOAD_TOL_PCT  allowed growth of calls held / media ports in use, % (default 15)
  PORT_BASE     first port, even                     (default 41000)
  PORT_WAIT_S   wait for the port range to be free   (default 120)
  SBCD_BIN      sbcd binary                          (default target/release/sbcd)
  OUT           results directory                    (default /tmp/soak-results; a run-DATE dir per run)
  SIPP_BIN      sipp binary                          (default sipp from PATH)

Raw: OUT/run-*/samples.csv (every sample), reloads.csv, summary.md, result.json, meta.json,
sbcd-a.toml / sbcd-b.toml, sbcd.stderr, SIPp stat (-trace_stat), counts (-trace_counts) and
error files. Every process it starts is stopped by PID; every loop is bounded in time.
USAGE
}

. benches/preflight.sh
bench_args usage "$@"

need_sbcd
need_sipp
raise_nofile
exec python3 benches/soak.py

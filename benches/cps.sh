#!/usr/bin/env bash
# Calls per second: zero-length calls (INVITE/100/180/200/ACK, BYE at once) through three targets
# at a list of rates, with the CPU each target spends per 1,000 calls. See --help.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
benches/cps.sh: calls per second through sbcd, Kamailio and SIPp alone (loopback only).

  SIPp UAC (PBX, 127.0.0.1:PORT_BASE+10) -> target -> SIPp UAS (carrier, 127.0.0.2:PORT_BASE+20)

  targets: direct    UAC -> UAS (the load generator's own ceiling)
           sbcd      udp 127.0.0.1:PORT_BASE, config generated into the run directory
                     (trunks pbx 127.0.0.1/32 and carrier 127.0.0.2/32, log_level "warn",
                     admin.listen 127.0.0.1:PORT_BASE+30)
           kamailio  stateful proxy (benches/kamailio-cps.cfg: tm, sl, rr, maxfwd, pv, siputils),
                     udp 127.0.0.1:PORT_BASE+1, -m 1024 -M 64 -n KAMAILIO_CHILDREN

For each rate (in order) each target still in the race runs RATE*DURATION calls
(benches/sipp/uac_cps.xml -> benches/sipp/uas.xml, -buff_size 4194304,
-default_behaviors all,-abortunexp). A target stops after its first rate with failed calls.
Target CPU = utime+stime delta of its processes (sbcd: its PID; kamailio: every process of its
process group) from the UAC's start to its exit, / CLK_TCK, per 1,000 successful calls.

Environment:
  RATES              calls/s to run, in order   (default "500 1000 1500 2000 2500 3000 4000")
  DURATION           seconds per rate           (default 30)
  PORT_BASE          first port used            (default 36000; uses +0 +1 +10 +20 +30 +100 +200 +300 +301)
  SBCD_BIN           sbcd binary                (default target/release/sbcd)
  OUT                results directory          (default /tmp/cps-results; a run-DATE dir per run)
  TARGETS            subset/order of targets    (default "direct sbcd kamailio")
  KAMAILIO_CHILDREN  kamailio -n               (default 2, matching sbcd's 2 shards here)
  COOLDOWN           seconds between runs       (default 5)
  STOP_ON_FAIL       1: stop a target at its first failing rate (default 1)
  SIPP_BIN, KAMAILIO_BIN  binaries             (default sipp, kamailio from PATH)

Output: per-run progress, then a table per target (rate, successful, failed, CPU-s per 1,000
calls, ...), the highest rate with zero failures per target and the sbcd/kamailio CPU ratio.
Raw: OUT/run-*/cps.csv, summary.md, meta.json and every SIPp stat/error file.
USAGE
}

. benches/preflight.sh
bench_args usage "$@"

if [[ " ${TARGETS:-direct sbcd kamailio} " == *" sbcd "* ]]; then
  need_sbcd
fi
raise_nofile
exec python3 benches/sipload.py cps

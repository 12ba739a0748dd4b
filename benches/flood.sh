#!/usr/bin/env bash
# Hostile traffic: a legitimate trunk at 100 calls/s through sbcd, alone and then under an
# INVITE / REGISTER flood from a foreign source; the legitimate calls' success rate and sbcd's
# CPU per dropped flood message (issue 7). See --help.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
benches/flood.sh: legitimate calls through sbcd while a foreign source floods it (loopback only).

  SIPp UAC (PBX, 127.0.0.1:PORT_BASE+10) -> sbcd (udp 127.0.0.1:PORT_BASE) -> SIPp UAS (carrier, 127.0.0.2:PORT_BASE+20)
  flood (127.0.0.66 / .67 / .68)        -> sbcd (the same socket)

The target (issue 7): a SIPp INVITE/REGISTER flood from a foreign source at full rate while a
legitimate trunk runs 100 calls/s: at least 99.9% of the legitimate calls succeed; sbcd's CPU
cost per dropped flood message is reported.

1. Generates the sbcd config of benches/cps.sh (trunks pbx 127.0.0.1/32 and carrier
   127.0.0.2/32, log_level "warn", admin.listen 127.0.0.1:PORT_BASE+30) plus [limits] at their
   defaults (source_requests_per_sec 200, source_auth_failures_per_min 10, block_secs 300),
   checks it with `sbcd check-config`, starts sbcd (one sbcd per run, every phase on it).
2. Runs PHASES in order, each the same legitimate load: the UAC places RATE*DURATION calls at
   RATE/s (benches/sipp/uac_cps.xml -> benches/sipp/uas.xml, as benches/cps.sh does), with
   the phase's flood started just before the UAC and stopped (SIGUSR1) when the UAC exits:
     baseline  no flood
     invite    SIPp from 127.0.0.66:PORT_BASE+66, benches/sipp/flood_invite.xml: one INVITE
               (with SDP, new Call-ID/branch/tag) per SIPp "call", sent once, never waited on
     register  SIPp from 127.0.0.67:PORT_BASE+67, benches/sipp/flood_register.xml: one REGISTER
               (new user, no credentials) per SIPp "call"
     raw       a python3 sendto() loop from 127.0.0.68 (written into the run directory as
               flood_raw.py), INVITEs and REGISTERs alternating from 4,096 pre-built messages
   Each flood has its own source address: a blocked source stays blocked for block_secs (300 s),
   so each phase shows a fresh source being refused, then blocked.
   Why SIPp can flood at all: its scenarios normally wait for answers, and unanswered INVITEs
   would pile up as open calls. The flood scenarios hold a single <send> and no <recv>, so every
   "call" ends once its message is out and SIPp creates calls as fast as its scheduler can
   (-r FLOOD_RATE, far above what it reaches: 37,000-52,000 messages/s here, one core busy).
   The answers sbcd sends before it blocks the source (a few 403s) are stray to SIPp
   (-default_behaviors none). The raw sender exists because SIPp's ceiling is the generator's,
   not sbcd's: a bare sendto() loop reaches about twice that rate (78,000-123,000/s here).
3. Per phase: the legitimate calls attempted / successful / failed and the success percentage
   (target >= TARGET_PCT); flood messages sent (counted by the sender: SIPp OutgoingCall(C), the
   raw sender's own count); sbcd's sbc_sip_messages_dropped_total{reason} deltas from /metrics
   (rate_limited, blocked, and any other reason) and sbc_sources_blocked; datagrams the kernel
   dropped at sbcd's socket (/proc/net/udp) - those never reach sbcd; sbcd CPU-s (utime+stime
   of /proc/PID/stat from just before the flood and UAC start until both have exited, the
   dropped counters over the same window; 1/CLK_TCK resolution); extra CPU per dropped message = (CPU_phase - CPU_baseline) / dropped, in
   microseconds; the flood sender's own CPU (wait4 rusage) per message sent, and the ratio of the
   two (same-run peer ratio: what a dropped message costs sbcd against what sending it cost).
4. Stops sbcd (SIGTERM). Only processes this script started are signalled, by PID. With RUNS > 1
   each run starts a fresh sbcd, and the summary gives the median of the runs per phase.

Environment:
  RATE        legitimate calls/s                  (default 100)
  DURATION    seconds of legitimate load per phase (default 60; the UAC runs RATE*DURATION calls)
  PHASES      phases in order                     (default "baseline invite register raw";
              the extra-CPU figures need "baseline" first)
  FLOOD_RATE  SIPp flood -r (messages/s asked)    (default 200000: as fast as SIPp can)
  RAW_RATE    raw sender messages/s, 0 = no pacing (default 0)
  RUNS        runs (a fresh sbcd each)            (default 1)
  TARGET_PCT  legitimate success target, %        (default 99.9)
  COOLDOWN    seconds between phases              (default 3)
  SOURCE_REQUESTS_PER_SEC, SOURCE_AUTH_FAILURES_PER_MIN, BLOCK_SECS
              sbcd's [limits]                     (default 200, 10, 300: sbcd's defaults). With
              the defaults a flood of INVITEs or REGISTERs is blocked by its 10th 403 (counted
              as auth failures), before its rate matters: every drop is reason="blocked" and
              rate_limited stays 0 or 1. SOURCE_AUTH_FAILURES_PER_MIN=0 makes the rate limit
              the one that blocks (after a burst of SOURCE_REQUESTS_PER_SEC messages).
  PORT_BASE   first port used                     (default 39000; uses +0 +10 +20 +30 +66 +67
              +100 +200 +300..+303 +400 +401; sbcd media ports 40000-41999)
  SBCD_BIN    sbcd binary                         (default target/release/sbcd)
  SIPP_BIN    sipp binary                         (default sipp from PATH)
  OUT         results directory                   (default /tmp/flood-results; a run-DATE dir per run)

Bounds: every SIPp has -m and -timeout (DURATION + 60 s); the raw sender stops after
DURATION + 60 s or 400,000 messages per second of DURATION+60; the script SIGKILLs by PID
whatever outlives its deadline. Default run: 4 phases x ~65 s + start-up = about 5 minutes.

Exit status: 0 when every phase met TARGET_PCT, 1 otherwise, 2 when the run could not start.
Output: a table per run, then one markdown row per phase for the README (median over RUNS):
  | phase | flood | flood sent (msg/s) | dropped by sbcd: blocked / rate_limited | kernel drops |
  | legit ok / attempted (%) | sbcd CPU-s | extra µs per dropped | sender µs per sent | ratio |
Raw: OUT/run-*/summary.md, flood.csv (one row per phase and run), samples.csv (per second: sbcd
CPU, dropped counters), meta.json, sbcd.toml, sbcd.stderr, every SIPp stat/error file.
USAGE
}

. benches/preflight.sh
bench_args usage "$@"

need_sbcd 2
need_sipp 2
raise_nofile

exec python3 - <<'PY'
"""Driver of benches/flood.sh (python3 standard library; helpers shared with benches/sipload.py)."""

import csv
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.getcwd(), "benches"))
import sipload as sl  # noqa: E402  (Child, SIPp argv, /proc helpers, sbcd config)

CLK_TCK = sl.CLK_TCK
log = sl.log
env_int = sl.env_int

FLOOD_SRC = {"invite": "127.0.0.66", "register": "127.0.0.67", "raw": "127.0.0.68"}
KNOWN_PHASES = ("baseline", "invite", "register", "raw")

LIMITS = """
[limits]
# benches/flood.sh: the defaults unless overridden by its environment.
source_requests_per_sec = {rps}
source_auth_failures_per_min = {afm}
block_secs = {block}
"""

# The raw sender: sendto() as fast as python can, from one source address, bounded in count and
# time; SIGUSR1/SIGTERM end it early. Prints one JSON line (sent, errors, seconds, CPU).
RAW_SENDER = r'''
import json, os, signal, socket, sys, time
src, dst_ip, dst_port, count, secs, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
stop = []
signal.signal(signal.SIGUSR1, lambda *a: stop.append(1))
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
s.bind((src, 0))
port = s.getsockname()[1]
dst = (dst_ip, dst_port)
sdp = ("v=0\r\no=scan 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
       "a=rtpmap:0 PCMU/8000\r\n" % (src, src))
msgs = []
for i in range(4096):
    if i % 2 == 0:
        m = ("INVITE sip:1%09d@%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bKraw%d\r\n"
             "From: \"flood\" <sip:100@%s>;tag=raw%d\r\nTo: <sip:1%09d@%s>\r\nCall-ID: raw%d@%s\r\n"
             "CSeq: 1 INVITE\r\nContact: <sip:100@%s:%d>\r\nMax-Forwards: 70\r\nUser-Agent: friendly-scanner\r\n"
             "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
             % (i, dst_ip, dst_port, src, port, i, src, i, i, dst_ip, i, src, src, port, len(sdp), sdp))
    else:
        m = ("REGISTER sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bKraw%d\r\n"
             "From: <sip:%d@%s>;tag=raw%d\r\nTo: <sip:%d@%s>\r\nCall-ID: raw%d@%s\r\nCSeq: 1 REGISTER\r\n"
             "Contact: <sip:%d@%s:%d>\r\nExpires: 3600\r\nMax-Forwards: 70\r\nUser-Agent: friendly-scanner\r\n"
             "Content-Length: 0\r\n\r\n"
             % (dst_ip, dst_port, src, port, i, i, dst_ip, i, i, dst_ip, i, src, i, src, port))
    msgs.append(m.encode())
sendto = s.sendto
sent = errors = 0
t0 = time.monotonic()
deadline = t0 + secs
batch = 64
while sent < count and not stop:
    now = time.monotonic()
    if now >= deadline:
        break
    if rate > 0 and sent > (now - t0) * rate:
        time.sleep(0.001)
        continue
    for k in range(batch):
        try:
            sendto(msgs[(sent + k) & 4095], dst)
        except OSError:
            errors += 1
    sent += batch
elapsed = time.monotonic() - t0
t = os.times()
print(json.dumps({"sent": sent - errors, "errors": errors, "elapsed_s": round(elapsed, 3),
                  "cpu_s": round(t.user + t.system, 3), "src_port": port}), flush=True)
'''


def metrics(port, timeout=5):
    """{metric{labels}: value} of sbcd's /metrics (samples only), or {} when unreachable."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            body = r.read().decode(errors="replace")
        finally:
            c.close()
    except OSError:
        return {}
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


DROP = re.compile(r'^sbc_sip_messages_dropped_total\{reason="([^"]+)"\}$')


def dropped(m):
    """{reason: count} of sbc_sip_messages_dropped_total."""
    out = {}
    for k, v in m.items():
        mm = DROP.match(k)
        if mm:
            out[mm.group(1)] = int(v)
    return out


def sock_drops(ip, port):
    return sl.udp_drops().get((ip, port), 0)


def sbcd_log_lines(path):
    try:
        with open(path, errors="replace") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def start_flood(phase, cfg, d, tag, dest_port):
    """The phase's flood sender (a Child), or None for the baseline."""
    bound_s = cfg["duration"] + 60
    if phase in ("invite", "register"):
        port = cfg["base"] + (66 if phase == "invite" else 67)
        argv = [
            cfg["sipp"],
            "-buff_size", "4194304",
            "-default_behaviors", "none",
            "-trace_stat", "-stf", d + "/%s-flood-stat.csv" % tag, "-fd", "1",
            "-trace_err", "-error_file", d + "/%s-flood-err.log" % tag,
            "-max_log_size", str(16 << 20),
            "-timeout", str(bound_s),
            "-nostdin",
            "-mp", str(cfg["base"] + (400 if phase == "invite" else 401)),
            "-cp", str(cfg["base"] + (302 if phase == "invite" else 303)),
            "-sf", os.path.join(sl.SCEN, "flood_%s.xml" % phase),
            "-s", sl.SERVICE,
            "-i", FLOOD_SRC[phase], "-p", str(port),
            "127.0.0.1:%d" % dest_port,
            "-r", str(cfg["flood_rate"]),
            "-m", str(cfg["flood_rate"] * bound_s),
        ]
        return sl.Child(argv, d + "/%s-flood.out" % tag, d + "/%s-flood.out" % tag, d)
    if phase == "raw":
        script = os.path.join(d, "flood_raw.py")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(RAW_SENDER)
        argv = [sys.executable, script, FLOOD_SRC["raw"], "127.0.0.1", str(dest_port),
                str(400000 * bound_s), str(bound_s), str(cfg["raw_rate"])]
        return sl.Child(argv, d + "/%s-flood.out" % tag, d + "/%s-flood.err" % tag, d)
    return None


def flood_sent(phase, d, tag):
    """Messages the flood sender says it sent, and its own view of its elapsed seconds."""
    if phase in ("invite", "register"):
        rows = sl.sipp_rows(d + "/%s-flood-stat.csv" % tag)
        if not rows:
            return None, None
        # SIPp's ElapsedTime has a 1 s resolution: the caller times it instead.
        return sl.num(rows[-1], "OutgoingCall(C)"), None
    if phase == "raw":
        try:
            with open(d + "/%s-flood.out" % tag) as f:
                r = json.loads(f.read().strip().splitlines()[-1])
            return r["sent"], r["elapsed_s"]
        except (OSError, ValueError, IndexError, KeyError):
            return None, None
    return 0, None


def run_phase(phase, cfg, d, run_no, sbcd, samples):
    rate, duration = cfg["rate"], cfg["duration"]
    calls = rate * duration
    tag = "r%d-%s" % (run_no, phase)
    timeout_s = duration + 60
    pid = sbcd.pid
    admin = cfg["base"] + 30
    sip_sock = ("127.0.0.1", cfg["base"])
    uas = sl.sipp_uas(cfg["sipp"], d, cfg["uas_port"], calls, timeout_s + 30, cfg["base"], tag)
    if not sl.wait_udp_bound("127.0.0.2", cfg["uas_port"], uas.p):
        uas.stop()
        raise RuntimeError("SIPp UAS did not bind 127.0.0.2:%d (see %s-uas.out)" % (cfg["uas_port"], tag))
    la = sl.loadavg()
    m0 = metrics(admin)
    k0 = sl.task_ticks([pid])
    drop0 = sock_drops(*sip_sock)
    snmp0 = sl.udp_snmp()
    log0 = sbcd_log_lines(d + "/sbcd.stderr")
    c0 = sl.cpu_ticks([pid])
    w0 = time.time()
    flood = uac = None
    try:
        flood = start_flood(phase, cfg, d, tag, cfg["base"])
        f0 = time.time()
        uac = sl.sipp_uac(cfg["sipp"], d, cfg["uac_port"], "127.0.0.1:%d" % cfg["base"], "uac_cps.xml",
                          rate, calls, timeout_s, cfg["base"], tag)
        deadline = w0 + timeout_s + 30
        prev = (w0, c0, dropped(m0))
        uac_drops = uas_drops = 0
        last_log = w0
        while uac.poll() is None and time.time() < deadline:
            time.sleep(1.0)
            now = time.time()
            c = sl.cpu_ticks([pid])
            dr = dropped(metrics(admin))
            u = sl.udp_drops()
            uac_drops = max(uac_drops, u.get(("127.0.0.1", cfg["uac_port"]), 0))
            uas_drops = max(uas_drops, u.get(("127.0.0.2", cfg["uas_port"]), 0))
            a = sl.sipp_last(d + "/%s-uac-stat.csv" % tag)
            s = {
                "run": run_no, "phase": phase, "t_s": round(now - w0, 1),
                "sbcd_util": round((c - prev[1]) / CLK_TCK / max(now - prev[0], 1e-3), 3),
                "dropped_per_s": round(sum(dr.values()) - sum(prev[2].values())) if dr and prev[2] else "",
                "blocked_total": dr.get("blocked", ""), "rate_limited_total": dr.get("rate_limited", ""),
                "sbcd_sock_drops": u.get(sip_sock, 0) - drop0,
                "legit_created": sl.num(a, "OutgoingCall(C)"), "legit_ok": sl.num(a, "SuccessfulCall(C)"),
                "legit_failed": sl.num(a, "FailedCall(C)"), "legit_current": sl.num(a, "CurrentCall"),
            }
            samples.append(s)
            prev = (now, c, dr or prev[2])
            if now - last_log >= 15:
                last_log = now
                log("   t=%3.0fs sbcd util %.2f, dropped %s/s, legit ok %d failed %d up %d"
                    % (s["t_s"], s["sbcd_util"], s["dropped_per_s"], s["legit_ok"], s["legit_failed"], s["legit_current"]))
            if sbcd.poll() is not None:
                break
        if uac.poll() is None:
            uac.stop(signal.SIGKILL)
        f1 = time.time()
        if flood is not None:
            flood.stop(signal.SIGUSR1, grace=15)
    except BaseException:
        # An exception or a signal: nothing this phase started outlives it.
        for ch in (uac, flood, uas):
            if ch is not None and ch.poll() is None:
                ch.stop(signal.SIGKILL if ch is uac else signal.SIGUSR1, grace=10)
        raise
    w1 = time.time()
    c1 = sl.cpu_ticks([pid])
    k1 = sl.task_ticks([pid])
    m1 = metrics(admin)
    drop1 = sock_drops(*sip_sock)
    snmp1 = sl.udp_snmp()
    if uas.wait(10) is None:
        uas.stop(signal.SIGUSR1, grace=5)
    a = sl.sipp_last(d + "/%s-uac-stat.csv" % tag)
    b = sl.sipp_last(d + "/%s-uas-stat.csv" % tag)
    d0, d1 = dropped(m0), dropped(m1)
    ddel = {k: d1.get(k, 0) - d0.get(k, 0) for k in set(d0) | set(d1)}
    attempted = sl.num(a, "OutgoingCall(C)")
    ok = sl.num(a, "SuccessfulCall(C)")
    sent, flood_el = flood_sent(phase, d, tag)
    elapsed = max(w1 - w0, 1e-9)
    cpu = (c1 - c0) / CLK_TCK
    row = {
        "run": run_no, "phase": phase, "flood_src": FLOOD_SRC.get(phase, ""),
        "duration_s": duration, "rate": rate, "calls_asked": calls,
        "attempted": attempted, "successful": ok, "failed": attempted - ok,
        "success_pct": round(100.0 * ok / attempted, 4) if attempted else 0.0,
        "sipp_failed": sl.num(a, "FailedCall(C)"),
        "uas_successful": sl.num(b, "SuccessfulCall(C)"), "uas_failed": sl.num(b, "FailedCall(C)"),
        "uac_retrans": sl.num(a, "Retransmissions(C)"), "uas_retrans": sl.num(b, "Retransmissions(C)"),
        "setup_ms_avg": sl.hms_ms(a.get("ResponseTime1(C)", "")),
        "flood_sent": sent if sent is not None else "",
        "flood_rate": round(sent / (flood_el or (f1 - f0))) if sent else "",
        "flood_cpu_s": round(flood.cpu_s, 2) if flood is not None and flood.cpu_s is not None else "",
        "flood_rc": flood.rc if flood is not None else "",
        # SIPp floods: the answers sbcd sent before the source was blocked (stray to SIPp).
        "flood_answers": sum(1 for e in sl.sipp_events(d + "/%s-flood-err.log" % tag) if "received 'SIP/2.0 " in e)
                         if phase in ("invite", "register") else "",
        "dropped_blocked": ddel.get("blocked", 0), "dropped_rate_limited": ddel.get("rate_limited", 0),
        "dropped_other": ";".join("%s=%d" % (k, v) for k, v in sorted(ddel.items())
                                  if v and k not in ("blocked", "rate_limited")),
        "sources_blocked": int(m1.get("sbc_sources_blocked", -1)),
        "sbcd_sock_drops": drop1 - drop0,
        "uac_sock_drops": uac_drops, "uas_sock_drops": uas_drops,
        "udp_rcvbuf_errors": snmp1["RcvbufErrors"] - snmp0["RcvbufErrors"],
        "elapsed_s": round(elapsed, 2),
        "sbcd_cpu_s": round(cpu, 2),
        "sbcd_util": round(cpu / elapsed, 3),
        "busiest_threads": sl.busiest(k0, k1, elapsed),
        "sbcd_log_lines": sbcd_log_lines(d + "/sbcd.stderr") - log0,
        "uac_cpu_s": round(uac.cpu_s or 0, 2), "uas_cpu_s": round(uas.cpu_s or 0, 2),
        "uac_rc": uac.rc, "uas_rc": uas.rc,
        "loadavg": la, "sbcd_alive": sbcd.poll() is None,
    }
    row["dropped"] = row["dropped_blocked"] + row["dropped_rate_limited"]
    return row


FIELDS = [
    "run", "phase", "flood_src", "duration_s", "rate", "calls_asked", "attempted", "successful", "failed",
    "success_pct", "sipp_failed", "uas_successful", "uas_failed", "uac_retrans", "uas_retrans", "setup_ms_avg",
    "flood_sent", "flood_rate", "flood_cpu_s", "flood_rc", "flood_answers", "dropped", "dropped_blocked", "dropped_rate_limited",
    "dropped_other", "sources_blocked", "sbcd_sock_drops", "uac_sock_drops", "uas_sock_drops", "udp_rcvbuf_errors",
    "elapsed_s", "sbcd_cpu_s", "sbcd_util", "busiest_threads", "sbcd_log_lines", "uac_cpu_s", "uas_cpu_s",
    "uac_rc", "uas_rc", "loadavg", "sbcd_alive",
    "extra_cpu_s", "extra_us_per_dropped", "sbcd_us_per_sent", "sender_us_per_sent", "ratio",
]


def derive(rows):
    """Per run: extra CPU against that run's baseline, per dropped message, and the sender's."""
    base = {r["run"]: r for r in rows if r["phase"] == "baseline"}
    for r in rows:
        for k in ("extra_cpu_s", "extra_us_per_dropped", "sbcd_us_per_sent", "sender_us_per_sent", "ratio"):
            r.setdefault(k, "")
        b = base.get(r["run"])
        if r["phase"] == "baseline" or b is None:
            continue
        extra = r["sbcd_cpu_s"] - b["sbcd_cpu_s"]
        r["extra_cpu_s"] = round(extra, 2)
        if r["dropped"]:
            r["extra_us_per_dropped"] = round(extra / r["dropped"] * 1e6, 3)
        if r["flood_sent"]:
            r["sbcd_us_per_sent"] = round(extra / r["flood_sent"] * 1e6, 3)
            if r["flood_cpu_s"] != "":
                r["sender_us_per_sent"] = round(r["flood_cpu_s"] / r["flood_sent"] * 1e6, 3)
                if r["extra_us_per_dropped"] != "" and r["sender_us_per_sent"]:
                    r["ratio"] = round(r["extra_us_per_dropped"] / r["sender_us_per_sent"], 3)


def med(values):
    v = [x for x in values if x not in ("", None)]
    return statistics.median(v) if v else None


def grp(n):
    return "" if n is None else "{:,}".format(int(round(n)))


def fnum(v, f="%.2f"):
    return "" if v in ("", None) else f % v


TOOL = {"baseline": "none", "invite": "SIPp INVITE", "register": "SIPp REGISTER", "raw": "python sendto INVITE+REGISTER"}


def readme_rows(rows, phases, runs):
    """One markdown row per phase, medians over the runs."""
    out = [
        "| phase | flood (source) | flood sent (msg/s) | dropped by sbcd: blocked / rate_limited | kernel drops at sbcd | "
        "legit ok / attempted (%%) | sbcd CPU-s (%d s) | extra µs per dropped | sender µs per sent | sbcd ÷ sender |" % rows[0]["duration_s"],
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in phases:
        rs = [r for r in rows if r["phase"] == p]
        if not rs:
            continue
        sent = med([r["flood_sent"] for r in rs])
        frate = med([r["flood_rate"] for r in rs])
        ok = med([r["successful"] for r in rs])
        att = med([r["attempted"] for r in rs])
        pct = med([r["success_pct"] for r in rs])
        worst = min(r["success_pct"] for r in rs)
        out.append("| %s | %s | %s | %s / %s | %s | %s / %s (%s%s) | %s | %s | %s | %s |" % (
            p, TOOL[p] + (" (%s)" % FLOOD_SRC[p] if p in FLOOD_SRC else ""),
            "%s (%s/s)" % (grp(sent), grp(frate)) if sent else "-",
            grp(med([r["dropped_blocked"] for r in rs])), grp(med([r["dropped_rate_limited"] for r in rs])),
            grp(med([r["sbcd_sock_drops"] for r in rs])),
            grp(ok), grp(att), fnum(pct, "%.3f%%"), (", worst %.3f%%" % worst) if runs > 1 else "",
            fnum(med([r["sbcd_cpu_s"] for r in rs])),
            fnum(med([r["extra_us_per_dropped"] for r in rs]), "%.2f"),
            fnum(med([r["sender_us_per_sent"] for r in rs]), "%.2f"),
            fnum(med([r["ratio"] for r in rs]), "%.3f"),
        ))
    return out


def run_table(rows):
    cols = [("phase", 8), ("flood sent", 10), ("msg/s", 6), ("blocked", 9), ("rate_lim", 8), ("krn drop", 8),
            ("attempted", 9), ("ok", 6), ("failed", 6), ("ok %", 8), ("retrans", 7), ("setup ms", 8),
            ("sbcd CPU-s", 10), ("util", 5), ("extra CPU-s", 11), ("µs/dropped", 10), ("sender µs/sent", 14), ("ratio", 6)]
    out = ["| " + " | ".join(c.rjust(w) for c, w in cols) + " |",
           "|" + "|".join("-" * (w + 2) for _, w in cols) + "|"]
    for r in rows:
        sm = r["setup_ms_avg"]
        vals = [r["phase"], r["flood_sent"], r["flood_rate"], r["dropped_blocked"], r["dropped_rate_limited"],
                r["sbcd_sock_drops"], r["attempted"], r["successful"], r["failed"], "%.3f" % r["success_pct"],
                int(r["uac_retrans"]) + int(r["uas_retrans"]), "" if sm in (None, "") else "%.1f" % float(sm),
                r["sbcd_cpu_s"], r["sbcd_util"], r["extra_cpu_s"], r["extra_us_per_dropped"], r["sender_us_per_sent"], r["ratio"]]
        out.append("| " + " | ".join(sl.fmt(v, w) for v, (_, w) in zip(vals, cols)) + " |")
    return out


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop our children


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    base = env_int("PORT_BASE", 39000)
    cfg = {
        "base": base, "uac_port": base + 10, "uas_port": base + 20,
        "sipp": os.environ.get("SIPP_BIN", "sipp"),
        "sbcd_bin": os.path.abspath(os.environ.get("SBCD_BIN", os.path.join(sl.REPO, "target/release/sbcd"))),
        "rate": env_int("RATE", 100), "duration": env_int("DURATION", 60),
        "flood_rate": env_int("FLOOD_RATE", 200000), "raw_rate": env_int("RAW_RATE", 0),
        "cooldown": env_int("COOLDOWN", 3),
        "limits": {"rps": env_int("SOURCE_REQUESTS_PER_SEC", 200), "afm": env_int("SOURCE_AUTH_FAILURES_PER_MIN", 10),
                   "block": env_int("BLOCK_SECS", 300)},
    }
    phases = os.environ.get("PHASES", "baseline invite register raw").split()
    bad = [p for p in phases if p not in KNOWN_PHASES]
    if bad or not phases:
        log("unknown phase(s) %s: choose from %s" % (bad, " ".join(KNOWN_PHASES)))
        return 2
    runs = max(1, env_int("RUNS", 1))
    target = float(os.environ.get("TARGET_PCT", "99.9") or 99.9)
    out = os.environ.get("OUT", "/tmp/flood-results")
    os.makedirs(out, exist_ok=True)
    d = os.path.join(out, time.strftime("run-%Y%m%d-%H%M%S"))
    os.makedirs(d)
    meta = {
        "phases": phases, "runs": runs, "cfg": cfg, "target_pct": target,
        "sbcd": sl.describe_bin(cfg["sbcd_bin"]), "git": sl.git_rev(), "nproc": os.cpu_count(),
        "sipp": subprocess.run([cfg["sipp"], "-v"], capture_output=True, text=True).stdout.strip().splitlines()[:1],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    log("flood: %d legit calls/s x %d s per phase, phases %s, %d run(s); raw files in %s"
        % (cfg["rate"], cfg["duration"], " ".join(phases), runs, d))
    log("sbcd: %s, git %s; [limits] source_requests_per_sec %d, source_auth_failures_per_min %d, block_secs %d"
        % (meta["sbcd"], meta["git"], cfg["limits"]["rps"], cfg["limits"]["afm"], cfg["limits"]["block"]))

    rows, samples = [], []
    rc = 0
    for run_no in range(1, runs + 1):
        conf = os.path.join(d, "sbcd.toml")
        # 2,000 media ports are plenty for 100 zero-length calls/s.
        sl.sbcd_config(conf, base, cfg["uac_port"], cfg["uas_port"], (40000, 41999))
        with open(conf, "a") as f:
            f.write(LIMITS.format(**cfg["limits"]))
        chk = subprocess.run([cfg["sbcd_bin"], "check-config", "--config", conf], capture_output=True, text=True, timeout=30)
        if chk.returncode != 0:
            log("sbcd check-config failed: %s %s" % (chk.stdout, chk.stderr))
            return 2
        sbcd = sl.Child([cfg["sbcd_bin"], "--config", conf], d + "/sbcd.stdout", d + "/sbcd.stderr", d)
        if not sl.wait_udp_bound("127.0.0.1", base, sbcd.p):
            log("sbcd did not start (see %s/sbcd.stderr)" % d)
            sbcd.stop(signal.SIGTERM, grace=10)
            return 2
        time.sleep(0.5)
        log("== run %d: sbcd pid %d up (threads=%s)" % (run_no, sbcd.pid, sl.threads(sbcd.pid)))
        run_rows = []
        try:
            for i, phase in enumerate(phases):
                if i:
                    time.sleep(cfg["cooldown"])
                log("-- run %d, %s: %s%s, legit %d calls/s x %d s (loadavg %s)"
                    % (run_no, phase, TOOL[phase], (" from " + FLOOD_SRC[phase]) if phase in FLOOD_SRC else "",
                       cfg["rate"], cfg["duration"], sl.loadavg()))
                try:
                    r = run_phase(phase, cfg, d, run_no, sbcd, samples)
                except RuntimeError as e:
                    log("   %s" % e)
                    return 2
                run_rows.append(r)
                log("   legit %d/%d ok (%.3f%%), failed %d, retrans %d; flood sent %s (%s/s, sender CPU %s s); "
                    "sbcd dropped blocked %d rate_limited %d%s, kernel drops at sbcd %d; sbcd CPU %.2f s (util %.2f; %s); "
                    "sbcd log +%d lines; answers to the flood %s"
                    % (r["successful"], r["attempted"], r["success_pct"], r["failed"], int(r["uac_retrans"]) + int(r["uas_retrans"]),
                       r["flood_sent"], r["flood_rate"], r["flood_cpu_s"], r["dropped_blocked"], r["dropped_rate_limited"],
                       (" other " + r["dropped_other"]) if r["dropped_other"] else "", r["sbcd_sock_drops"],
                       r["sbcd_cpu_s"], r["sbcd_util"], r["busiest_threads"], r["sbcd_log_lines"], r["flood_answers"] or "-"))
                for side in ("uac", "uas"):
                    for line in sl.error_summary(d + "/%s-%s-err.log" % ("r%d-%s" % (run_no, phase), side)):
                        log("   %s err: %s" % (side.upper(), line))
                if not r["sbcd_alive"]:
                    log("   sbcd DIED (rc %s); stderr tail:" % sbcd.rc)
                    for line in sl.tail(d + "/sbcd.stderr", 20):
                        log("   | " + line.rstrip())
                    break
        finally:
            alive = sbcd.poll() is None
            sbcd.stop(signal.SIGTERM, grace=15)
            log("sbcd stopped (SIGTERM): rc %s%s" % (sbcd.rc, "" if alive else " (it had exited before)"))
            for line in sl.tail(d + "/sbcd.stderr", 400):
                if "ERROR" in line or "panic" in line:
                    log("   sbcd: " + line.rstrip())
            if os.path.exists(os.path.join(d, "sbcd.stderr")):
                os.replace(os.path.join(d, "sbcd.stderr"), os.path.join(d, "sbcd-run%d.stderr" % run_no))
        derive(run_rows)
        rows += run_rows
        log("")
        for line in run_table(run_rows):
            log(line)

    with open(os.path.join(d, "flood.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})
    with open(os.path.join(d, "samples.csv"), "w", newline="") as f:
        if samples:
            w = csv.DictWriter(f, fieldnames=list(samples[0].keys()))
            w.writeheader()
            for s in samples:
                w.writerow(s)
    missed = [r for r in rows if r["success_pct"] < target or r["attempted"] < r["calls_asked"]]
    lines = ["", "## flood.sh, %d run(s), legit %d calls/s x %d s per phase (median of runs)"
             % (runs, cfg["rate"], cfg["duration"]), ""]
    lines += readme_rows(rows, phases, runs)
    lines += ["", "target: legit success >= %s%% in every phase and run: %s"
              % (target, "met" if not missed else "MISSED (%s)" % ", ".join("run %d %s %.3f%%" % (r["run"], r["phase"], r["success_pct"]) for r in missed))]
    text = "\n".join(lines)
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write("\n".join(run_table(rows)) + "\n" + text + "\n")
    log(text)
    log("\nraw results: %s (flood.csv, samples.csv, summary.md, SIPp stat/error files)" % d)
    if missed:
        rc = 1
    return rc


sys.exit(main())
PY

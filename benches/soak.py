#!/usr/bin/env python3
"""Bounded soak of sbcd (python3 standard library only). Driven by benches/soak.sh; see its
--help for the environment variables and the layout.

    SIPp UAC (PBX, 127.0.0.1:B+10) -> sbcd (udp 127.0.0.2:B) -> SIPp UAS (carrier, 127.0.0.2:B+20)

The UAC places RATE calls/s for DURATION s; each answered call lasts a random time (uniform
CALL_MIN_MS..CALL_MAX_MS), and the UAS answers a random BUSY_PCT% of calls 486 Busy Here. Both
outcomes end the SIPp scenarios, so SIPp's failed calls are the unexpected ones. Every
RELOAD_EVERY s the config file is swapped between two valid variants and POST /reload is sent
to the admin listener. Every SAMPLE_EVERY s sbcd's VmRSS, open fds and /metrics are sampled.
At the end: call outcomes, reloads, and whether RSS, fds, call state and media ports stayed flat
(first window after the warm-up against the last window of the load) and came back after it.
"""

import csv
import glob
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sipload import (  # noqa: E402  (shared /proc, SIPp and sbcd config helpers)
    CLK_TCK, Child, cpu_ticks, describe_bin, env_int, error_summary, git_rev, loadavg, log,
    num, sbcd_config_text, sipp_common, sipp_last, status_kib, tail, threads, udp_snmp,
    wait_udp_bound,
)

HERE = os.path.dirname(os.path.abspath(__file__))
SCEN = os.path.join(HERE, "sipp")
SERVICE = "12125551234"

# Port layout, offsets from PORT_BASE (see soak.sh --help). sbcd's SIP and media sockets and the
# UAS sit on 127.0.0.2; on 127.0.0.1 only the UAC (SIP, media) and the admin listener (TCP).
# SIPp's control port binds 0.0.0.0, so those two stay below the media range.
OFF = {
    "sbcd_sip": 0, "uac_cp": 1, "uas_cp": 2, "uac": 10, "uas": 20, "admin": 30,
    "uac_mp": 40, "uas_mp": 44, "media_min": 100, "media_max": 999,
}


def env_float(name, default):
    v = os.environ.get(name, "")
    return float(v) if v.strip() else default


# ---------------------------------------------------------------------------------------------
# config


SPARE = """
[[trunk]]
name = "spare"
inbound.allow = ["127.0.0.2/32"]
inbound.prefix = "999"
outbound.uri = "sip:127.0.0.2:{spare}"
"""


def config_text(variant, base):
    p = {k: base + v for k, v in OFF.items()}
    return sbcd_config_text(
        p["sbcd_sip"], p["admin"], p["uac"], p["uas"], (p["media_min"], p["media_max"]), host="127.0.0.2",
        extra=SPARE.format(spare=base + 98) if variant == "b" else "",
        pbx_match="^[0-9]+$" if variant == "a" else "^\\\\+?[0-9]{5,15}$",
        origin="benches/soak.py (variant %s)" % variant)


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# admin endpoint


def admin_http(port, method, path, timeout=10.0):
    """(status, body text) or (None, error text)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request(method, path, body=b"" if method == "POST" else None)
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException) as e:
        return None, "%s: %s" % (type(e).__name__, e)


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {label: value}, float)] of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            continue
        labels = dict(LABEL_RE.findall(m.group(3) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(4))))
        except ValueError:
            pass
    return out


def msum(samples, name, **want):
    """Sum of a metric's samples whose labels include `want`; None when the metric is absent."""
    vals = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in want.items())]
    return int(sum(vals)) if vals else None


CALL_RESULTS = ("answered", "cancelled", "busy", "failed", "timeout", "media_timeout")


def scrape(port):
    st, body = admin_http(port, "GET", "/metrics")
    if st != 200:
        return None
    s = parse_metrics(body)
    row = {
        "calls_active": msum(s, "sbc_calls_active"),
        "calls_held": msum(s, "sbc_calls_held"),
        "ports_free": msum(s, "sbc_media_ports_free"),
        "rtp_sessions": msum(s, "sbc_rtp_sessions_active"),
        "reloads_ok": msum(s, "sbc_config_reloads_total", result="ok"),
        "reloads_error": msum(s, "sbc_config_reloads_total", result="error"),
        "reloads_refused": msum(s, "sbc_config_reloads_total", result="refused"),
        "txn_timeouts": msum(s, "sbc_transaction_timeouts_total"),
        "dropped": msum(s, "sbc_sip_messages_dropped_total"),
        "refused_503": msum(s, "sbc_calls_refused_total"),
    }
    for r in CALL_RESULTS:
        # Each call is counted on its inbound (calling) trunk once.
        row["calls_" + r] = msum(s, "sbc_calls_total", leg="inbound", result=r) or 0
    row["_timers"] = {l.get("timer"): int(v) for n, l, v in s if n == "sbc_transaction_timeouts_total"}
    row["_dropped"] = {l.get("reason"): int(v) for n, l, v in s if n == "sbc_sip_messages_dropped_total" and v}
    return row


# ---------------------------------------------------------------------------------------------
# ports


def sockets_in(lo, hi):
    """['proto addr:port'] of every IPv4/IPv6 UDP or TCP socket bound to a port in lo..hi."""
    out = []
    for proto in ("udp", "udp6", "tcp", "tcp6"):
        try:
            with open("/proc/net/" + proto) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            addr, port = p[1].rsplit(":", 1)
            port = int(port, 16)
            if proto.startswith("tcp") and p[3] != "0A":  # TCP: only listeners hold a port for us
                continue
            if lo <= port <= hi:
                if len(addr) == 8:
                    addr = ".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0))
                out.append("%s %s:%d" % (proto, addr, port))
    return out


def wait_ports_free(base, wait_s):
    deadline = time.time() + wait_s
    while True:
        busy = sockets_in(base, base + OFF["media_max"])
        if not busy:
            return []
        if time.time() >= deadline:
            return busy
        log("ports %d-%d in use by someone else (%d sockets, e.g. %s); waiting up to %.0f s more"
            % (base, base + OFF["media_max"], len(busy), busy[0], deadline - time.time()))
        time.sleep(min(10.0, max(0.0, deadline - time.time())))


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# SIPp


def scenario_copy(d, name, subs):
    """The scenario, with `subs` (old -> new text) applied, written into the run directory."""
    with open(os.path.join(SCEN, name)) as f:
        text = f.read()
    for old, new in subs:
        if old not in text:
            raise RuntimeError("%s: %r not found" % (name, old))
        text = text.replace(old, new)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def counts(d, prefix):
    """{column: value} of the last row of SIPp's -trace_counts file (one per scenario element)."""
    files = sorted(glob.glob(os.path.join(d, prefix + "_*_counts.csv")))
    if not files:
        return {}
    with open(files[-1]) as f:
        rows = [l.rstrip("\n").split(";") for l in f if l.strip()]
    if len(rows) < 2:
        return {}
    out = {}
    for k, v in zip(rows[0], rows[-1]):
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def count_of(c, pattern):
    """The first counts column whose name matches (SIPp numbers them by scenario position)."""
    for k in c:
        if re.fullmatch(pattern, k):
            return c[k]
    return 0


# ---------------------------------------------------------------------------------------------
# judging


def avg(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def slope_per_min(points):
    """Least-squares slope of (t_s, value) points, per minute."""
    pts = [(t, v) for t, v in points if v is not None]
    if len(pts) < 3:
        return None
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    den = sum((t - mt) ** 2 for t, _ in pts)
    return 60.0 * sum((t - mt) * (v - mv) for t, v in pts) / den if den else None


def fmt_num(v, nd=0):
    if v is None:
        return "-"
    return ("%." + str(nd) + "f") % v


def main():
    base = env_int("PORT_BASE", 41000)
    if base % 2 or base < 1024 or base + OFF["media_max"] > 65535:
        sys.exit("PORT_BASE must be even and leave room for +%d (got %d)" % (OFF["media_max"], base))
    p = {k: base + v for k, v in OFF.items()}
    duration = env_int("DURATION", 600)
    rate = env_int("RATE", 20)
    cmin = env_int("CALL_MIN_MS", 500)
    cmax = env_int("CALL_MAX_MS", 15000)
    busy_pct = env_int("BUSY_PCT", 10)
    reload_every = env_int("RELOAD_EVERY", 30)
    sample_every = env_int("SAMPLE_EVERY", 10)
    # Steady state: the longest call plus the 32 s sbcd keeps an ended call's transactions.
    warmup = env_int("WARMUP_S", max(60, -(-cmax // 1000) + 45))
    window = env_int("WINDOW_S", 60)
    drain_s = env_int("DRAIN_S", 45)
    rss_tol = env_float("RSS_TOL_PCT", 10.0)
    fd_tol = env_int("FD_TOL", 2)
    load_tol = env_float("LOAD_TOL_PCT", 15.0)
    port_wait = env_int("PORT_WAIT_S", 120)
    sipp = os.environ.get("SIPP_BIN", "sipp")
    sbcd_bin = os.path.abspath(os.environ.get("SBCD_BIN", os.path.join(os.path.dirname(HERE), "target/release/sbcd")))
    if not (0 < cmin <= cmax) or not (0 <= busy_pct <= 100) or rate <= 0 or duration <= 0:
        sys.exit("need 0 < CALL_MIN_MS <= CALL_MAX_MS, 0 <= BUSY_PCT <= 100, RATE > 0, DURATION > 0")
    # Windows: [warmup, warmup+window) against [duration-window, duration), shrunk for short runs.
    if duration < warmup + 2 * window:
        window = max(sample_every, (duration - warmup) // 2)
        if duration < warmup + 2 * window:
            warmup = max(0, duration - 2 * window)
    first_w = (warmup, warmup + window)
    last_w = (duration - window, duration)

    calls = rate * duration
    media_pairs = (OFF["media_max"] - OFF["media_min"] + 1) // 2
    mean_up_s = (1 - busy_pct / 100.0) * (cmin + cmax) / 2000.0
    expect_up = rate * mean_up_s
    if 2 * expect_up * 1.4 > media_pairs:
        log("warning: about %.0f calls up at once need %.0f media port pairs of %d (2 per call, split "
            "between shards): expect 503s; lower RATE or CALL_MAX_MS" % (expect_up, 2 * expect_up, media_pairs))
    limit = int(rate * (cmax / 1000.0 + 5) * 2) + 100  # SIPp -l: never the bottleneck
    uac_timeout = duration + cmax // 1000 + 90
    hard_deadline_s = uac_timeout + drain_s + 60

    out = os.environ.get("OUT", "/tmp/soak-results")
    os.makedirs(out, exist_ok=True)
    d = os.path.join(out, time.strftime("run-%Y%m%d-%H%M%S"))
    os.makedirs(d)
    meta = {
        "duration_s": duration, "rate": rate, "calls": calls, "call_ms": [cmin, cmax], "busy_pct": busy_pct,
        "reload_every_s": reload_every, "sample_every_s": sample_every, "warmup_s": warmup,
        "first_window_s": first_w, "last_window_s": last_w, "drain_s": drain_s, "ports": p,
        "sbcd": describe_bin(sbcd_bin), "git": git_rev(), "nproc": os.cpu_count(),
        "sipp": subprocess.run([sipp, "-v"], capture_output=True, text=True).stdout.strip().splitlines()[:1],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    log("soak: %d calls/s x %d s = %d calls, call length uniform %d..%d ms, %d%% busy, reload every %d s, "
        "sample every %d s; raw files in %s" % (rate, duration, calls, cmin, cmax, busy_pct, reload_every, sample_every, d))
    log("sbcd: %s, git %s; expect about %.0f calls up at once (media: %d port pairs, 2 per call)"
        % (meta["sbcd"], meta["git"], expect_up, media_pairs))

    busy = wait_ports_free(base, port_wait)
    if busy:
        log("ports %d-%d still in use after %d s (%s): not starting" % (base, base + OFF["media_max"], port_wait, ", ".join(busy[:8])))
        return 2

    conf = os.path.join(d, "sbcd.toml")
    variants = {}
    for v in ("a", "b"):
        variants[v] = config_text(v, base)
        vp = os.path.join(d, "sbcd-%s.toml" % v)
        with open(vp, "w") as f:
            f.write(variants[v])
        chk = subprocess.run([sbcd_bin, "check-config", "--config", vp], capture_output=True, text=True, timeout=30)
        if chk.returncode != 0:
            log("sbcd check-config %s failed: %s %s" % (vp, chk.stdout, chk.stderr))
            return 2
    write_atomic(conf, variants["a"])

    uac_scen = scenario_copy(d, "uac_soak.xml", [('min="500" max="15000"', 'min="%d" max="%d"' % (cmin, cmax))])
    uas_scen = scenario_copy(d, "uas_soak.xml", [('compare="less_than" value="10"', 'compare="less_than" value="%d"' % busy_pct)])

    sbcd = Child([sbcd_bin, "--config", conf], d + "/sbcd.stdout", d + "/sbcd.stderr", d)
    uas = uac = None
    samples, reloads = [], []
    rc = 1
    try:
        if not wait_udp_bound("127.0.0.2", p["sbcd_sip"], sbcd.p):
            log("sbcd did not start (see %s/sbcd.stderr)" % d)
            for line in tail(d + "/sbcd.stderr", 20):
                log("  | " + line.rstrip())
            return 2
        pid = sbcd.pid
        t_up = time.time()
        idle = None
        while time.time() < t_up + 10 and idle is None:
            idle = scrape(p["admin"])
            if idle is None:
                time.sleep(0.2)
        if idle is None:
            log("sbcd's /metrics did not answer on 127.0.0.1:%d" % p["admin"])
            return 2
        time.sleep(1.0)
        idle = scrape(p["admin"]) or idle
        idle_rss = status_kib(pid, "VmRSS")
        idle_fds = fd_count(pid)
        ports_full = idle["ports_free"]
        log("sbcd pid %d up: threads %s, VmRSS %s KiB, fds %s, media ports free %s"
            % (pid, threads(pid), idle_rss, idle_fds, ports_full))

        uas_argv = sipp_common(sipp, d + "/uas-stat.csv", d + "/uas-err.log", uac_timeout + 30, p["uas_mp"], p["uas_cp"])
        uas_argv += ["-sf", uas_scen, "-s", SERVICE, "-i", "127.0.0.2", "-p", str(p["uas"]), "-m", str(calls),
                     "-trace_counts", "-recv_timeout", str(cmax + 40000)]
        uas = Child(uas_argv, d + "/uas.out", d + "/uas.out", d)
        if not wait_udp_bound("127.0.0.2", p["uas"], uas.p):
            log("SIPp UAS did not bind 127.0.0.2:%d (see %s/uas.out)" % (p["uas"], d))
            return 2

        snmp0 = udp_snmp()
        c0 = cpu_ticks([pid])
        uac_argv = sipp_common(sipp, d + "/uac-stat.csv", d + "/uac-err.log", uac_timeout, p["uac_mp"], p["uac_cp"])
        uac_argv += ["-sf", uac_scen, "-s", SERVICE, "-i", "127.0.0.1", "-p", str(p["uac"]),
                     "127.0.0.2:%d" % p["sbcd_sip"], "-r", str(rate), "-m", str(calls), "-l", str(limit),
                     "-trace_counts", "-recv_timeout", "35000"]
        t0 = time.time()
        uac = Child(uac_argv, d + "/uac.out", d + "/uac.out", d)
        log("load started: UAC pid %d, UAS pid %d" % (uac.pid, uas.pid))

        next_sample = 0.0
        next_reload = float(reload_every)
        variant = "a"
        ended_at = None
        last_log = -60.0
        died = False
        # Bounded by hard_deadline_s; ends drain_s after the UAC exits.
        while True:
            now = time.time() - t0
            if now >= hard_deadline_s:
                log("hard deadline (%d s) reached" % hard_deadline_s)
                break
            if sbcd.poll() is not None:
                log("sbcd EXITED (rc %s) at t=%.0f s; stderr tail:" % (sbcd.rc, now))
                for line in tail(d + "/sbcd.stderr", 20):
                    log("  | " + line.rstrip())
                died = True
                break
            if ended_at is None and uac.poll() is not None:
                ended_at = now
                log("UAC exited rc %s at t=%.0f s; sampling the drain for %d s" % (uac.rc, now, drain_s))
                next_sample = now
            if ended_at is not None and now >= ended_at + drain_s:
                break
            if ended_at is None and reload_every > 0 and now >= next_reload:
                next_reload += reload_every
                variant = "b" if variant == "a" else "a"
                write_atomic(conf, variants[variant])
                r0 = time.time()
                st, body = admin_http(p["admin"], "POST", "/reload", timeout=15)
                ms = (time.time() - r0) * 1000
                try:
                    j = json.loads(body) if st else {}
                except ValueError:
                    j = {}
                res = j.get("result")
                # The answer counts the trunks now configured: variant b has the spare one.
                ok = st == 200 and res == "ok" and j.get("trunks") == (3 if variant == "b" else 2)
                reloads.append({"t_s": round(now, 1), "variant": variant, "status": st, "result": res,
                                "trunks": j.get("trunks"),
                                "ms": round(ms, 1), "ok": ok, "body": body.strip()[:300]})
                if not ok:
                    log("  reload to variant %s at t=%.0f s FAILED: %s %s" % (variant, now, st, body.strip()[:300]))
            if now >= next_sample:
                next_sample += sample_every if ended_at is None else 2
                fds = fd_count(pid)  # before the scrape: its connection is not counted
                m = scrape(p["admin"]) or {}
                a = sipp_last(d + "/uac-stat.csv")
                s = {
                    "t_s": round(now, 1),
                    "phase": "load" if ended_at is None else "drain",
                    "rss_kib": status_kib(pid, "VmRSS"),
                    "hwm_kib": status_kib(pid, "VmHWM"),
                    "fds": fds,
                    "threads": threads(pid),
                    "cpu_s": round((cpu_ticks([pid]) - c0) / CLK_TCK, 2),
                }
                for k in ("calls_active", "calls_held", "ports_free", "rtp_sessions", "reloads_ok", "reloads_error",
                          "reloads_refused", "txn_timeouts", "dropped", "refused_503") + tuple("calls_" + r for r in CALL_RESULTS):
                    s[k] = m.get(k)
                s["ports_used"] = ports_full - s["ports_free"] if s["ports_free"] is not None else None
                s.update({
                    "uac_created": num(a, "OutgoingCall(C)"), "uac_current": num(a, "CurrentCall"),
                    "uac_successful": num(a, "SuccessfulCall(C)"), "uac_failed": num(a, "FailedCall(C)"),
                    "uac_retrans": num(a, "Retransmissions(C)"),
                })
                samples.append(s)
                if now - last_log >= 60 or s["phase"] == "drain" and now - last_log >= 10:
                    last_log = now
                    log("  t=%4.0fs %-5s calls up %4s (SIPp %4d; created %6d, ok %6d, failed %d) held %4s, ports free %4s, "
                        "RSS %s KiB, fds %s, reloads ok %s, loadavg %s"
                        % (now, s["phase"], s["calls_active"], s["uac_current"], s["uac_created"], s["uac_successful"],
                           s["uac_failed"], s["calls_held"], s["ports_free"], s["rss_kib"], s["fds"], s["reloads_ok"], loadavg()))
            time.sleep(0.25)
        final = scrape(p["admin"]) or {}
        snmp1 = udp_snmp()
        if uac.poll() is None:
            log("UAC still running: SIGUSR1")
            uac.stop(signal.SIGUSR1, grace=10)
        if uas.wait(15) is None:
            uas.stop(signal.SIGUSR1, grace=10)
        sbcd_alive = sbcd.poll() is None
        rc = judge(d, meta, samples, reloads, idle, idle_rss, idle_fds, final, snmp0, snmp1, ended_at, died,
                   sbcd_alive, first_w, last_w, rss_tol, fd_tol, load_tol, drain_s, uac, uas)
    finally:
        for c in (uac, uas):
            if c is not None and c.poll() is None:
                c.stop(signal.SIGUSR1, grace=5)
        drain = []
        if sbcd.poll() is None:
            sbcd.stop(signal.SIGTERM, grace=15)
            drain = [l.rstrip() for l in tail(d + "/sbcd.stderr", 400) if "calls up" in l or "ERROR" in l or "panic" in l]
        log("sbcd stopped (rc %s)%s" % (sbcd.rc, ("; " + "; ".join(drain[-5:])) if drain else ""))
        if samples:
            with open(os.path.join(d, "samples.csv"), "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(samples[0].keys()))
                w.writeheader()
                for s in samples:
                    w.writerow(s)
        if reloads:
            with open(os.path.join(d, "reloads.csv"), "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(reloads[0].keys()))
                w.writeheader()
                for r in reloads:
                    w.writerow(r)
    log("\nraw results: %s (samples.csv, reloads.csv, summary.md, result.json, SIPp stat/count/error files, sbcd.stderr)" % d)
    return rc


def judge(d, meta, samples, reloads, idle, idle_rss, idle_fds, final, snmp0, snmp1, ended_at, died, sbcd_alive,
          first_w, last_w, rss_tol, fd_tol, load_tol, drain_s, uac, uas):
    a = sipp_last(d + "/uac-stat.csv")
    b = sipp_last(d + "/uas-stat.csv")
    ca = counts(d, "uac_soak")
    cb = counts(d, "uas_soak")
    attempted = num(a, "OutgoingCall(C)")
    succ = num(a, "SuccessfulCall(C)")
    sipp_failed = num(a, "FailedCall(C)")
    unfinished = attempted - succ - sipp_failed
    uas_failed = num(b, "FailedCall(C)")
    busy = count_of(ca, r"\d+_486_Recv")
    answered = count_of(ca, r"\d+_200_Recv")
    uas_busy = count_of(cb, r"\d+_486_Sent")
    unexpected = sipp_failed + max(unfinished, 0)

    load = [s for s in samples if s["phase"] == "load"]
    drain = [s for s in samples if s["phase"] == "drain"]

    def win(w):
        return [s for s in load if w[0] <= s["t_s"] < w[1]]

    fw, lw = win(first_w), win(last_w)

    def wavg(ss, k):
        return avg([s.get(k) for s in ss])

    ports_full = idle.get("ports_free")

    crit = []

    def add(name, ok, detail):
        crit.append((name, bool(ok), detail))

    add("calls: zero unexpected failures",
        attempted == meta["calls"] and unexpected == 0 and uas_failed == 0 and answered + busy == succ,
        "%d of %d attempted; %d answered + %d busy = %d successful; SIPp failed %d, unfinished %d; UAS failed %d"
        % (attempted, meta["calls"], answered, busy, succ, sipp_failed, unfinished, uas_failed))
    n_ok = sum(1 for r in reloads if r["ok"])
    r_ok_metric = (final.get("reloads_ok") or 0) - (idle.get("reloads_ok") or 0)
    r_bad_metric = ((final.get("reloads_error") or 0) + (final.get("reloads_refused") or 0)
                    - (idle.get("reloads_error") or 0) - (idle.get("reloads_refused") or 0))
    add("reloads: every POST /reload answered 200 {\"result\":\"ok\"} with the new trunk count",
        (reloads or meta["reload_every_s"] <= 0) and n_ok == len(reloads) and r_ok_metric == n_ok and r_bad_metric == 0,
        "%s%d/%d ok (slowest %s ms); sbc_config_reloads_total ok +%d, error/refused +%d"
        % ("none asked (RELOAD_EVERY=0): " if meta["reload_every_s"] <= 0 else "", n_ok, len(reloads), fmt_num(max((r["ms"] for r in reloads), default=None), 1), r_ok_metric, r_bad_metric))

    # sbcd's own view of the calls (inbound leg, counted once per call).
    res = {r: (final.get("calls_" + r) or 0) - (idle.get("calls_" + r) or 0) for r in CALL_RESULTS}
    add("sbcd's call results match SIPp's",
        res["answered"] == answered and res["busy"] == busy and not any(res[r] for r in ("cancelled", "failed", "timeout", "media_timeout")),
        "sbc_calls_total{leg=inbound}: " + ", ".join("%s %d" % kv for kv in res.items()))
    tt = (final.get("txn_timeouts") or 0) - (idle.get("txn_timeouts") or 0)
    add("no transaction timeouts", tt == 0,
        "sbc_transaction_timeouts_total +%d %s" % (tt, final.get("_timers", {})))

    r1, r2 = wavg(fw, "rss_kib"), wavg(lw, "rss_kib")
    add("RSS flat", r1 and r2 and r2 <= r1 * (1 + rss_tol / 100.0),
        "VmRSS %s -> %s KiB (%+.1f%%, limit +%.0f%%); idle %s, peak VmHWM %s; slope after warm-up %s KiB/min"
        % (fmt_num(r1), fmt_num(r2), 100.0 * (r2 - r1) / r1 if r1 and r2 else 0, rss_tol, idle_rss,
           max((s["hwm_kib"] or 0 for s in samples), default=None),
           fmt_num(slope_per_min([(s["t_s"], s["rss_kib"]) for s in load if s["t_s"] >= first_w[0]]), 1)))
    f1, f2 = wavg(fw, "fds"), wavg(lw, "fds")
    fend = drain[-1]["fds"] if drain else None
    add("fds flat", f1 is not None and f2 is not None and f2 <= f1 + fd_tol and fend is not None and fend <= idle_fds + fd_tol,
        "open fds %s -> %s (limit +%d); idle %s, after the drain %s" % (fmt_num(f1, 1), fmt_num(f2, 1), fd_tol, idle_fds, fend))
    h1, h2 = wavg(fw, "calls_held"), wavg(lw, "calls_held")
    c1, c2 = wavg(fw, "calls_active"), wavg(lw, "calls_active")
    add("call state flat", h1 is not None and h2 is not None and h2 <= h1 * (1 + load_tol / 100.0) + 5,
        "sbc_calls_held %s -> %s (limit +%.0f%% + 5); calls_active %s -> %s"
        % (fmt_num(h1, 1), fmt_num(h2, 1), load_tol, fmt_num(c1, 1), fmt_num(c2, 1)))
    u1, u2 = wavg(fw, "ports_used"), wavg(lw, "ports_used")
    add("media ports in use flat", u1 is not None and u2 is not None and u2 <= u1 * (1 + load_tol / 100.0) + 8,
        "ports in use %s -> %s of %s (limit +%.0f%% + 8); RTP components %s -> %s"
        % (fmt_num(u1, 1), fmt_num(u2, 1), ports_full, load_tol, fmt_num(wavg(fw, "rtp_sessions"), 1), fmt_num(wavg(lw, "rtp_sessions"), 1)))

    # After the load: when did each gauge get back to idle?
    def back_at(pred):
        for s in drain:
            if pred(s):
                return round(max(0.0, s["t_s"] - ended_at), 1)
        return None

    held0 = back_at(lambda s: s.get("calls_held") == 0)
    act0 = back_at(lambda s: s.get("calls_active") == 0)
    full_at = back_at(lambda s: s.get("ports_free") == ports_full and s.get("rtp_sessions") == 0)
    fin = drain[-1] if drain else {}
    add("after the load: no calls, no call state, every media port free",
        fin.get("calls_active") == 0 and fin.get("calls_held") == 0 and fin.get("ports_free") == ports_full and fin.get("rtp_sessions") == 0,
        "%d s after the UAC's last call: calls_active %s (0 after %s s), calls_held %s (0 after %s s), ports free %s/%s, "
        "RTP components %s (all free after %s s)"
        % (drain_s, fin.get("calls_active"), act0, fin.get("calls_held"), held0, fin.get("ports_free"), ports_full,
           fin.get("rtp_sessions"), full_at))
    errs = [l.rstrip() for l in tail(d + "/sbcd.stderr", 100000) if re.search(r"\bERROR\b|panick", l)]
    warns = [l.rstrip() for l in tail(d + "/sbcd.stderr", 100000) if re.search(r"\bWARN\b", l)]
    add("sbcd alive, no ERROR or panic in its log", sbcd_alive and not died and not errs,
        "alive %s; %d ERROR, %d WARN lines" % (sbcd_alive and not died, len(errs), len(warns)))

    passed = all(ok for _, ok, _ in crit)
    cpu = samples[-1]["cpu_s"] if samples else None
    rss1 = r1 / 1024.0 if r1 else None
    rss2 = r2 / 1024.0 if r2 else None
    line = ("soak %d s @ %d calls/s (calls %.1f-%.0f s, %d%% busy, reload every %d s): %d calls, %d answered, %d busy, "
            "%d unexpected failures; reloads %d/%d ok; VmRSS %s -> %s MiB, fds %s -> %s, calls held %s -> %s, "
            "media ports in use %s -> %s; %d s after: %s calls held, %s/%s ports free; sbcd CPU %s s; %s"
            % (meta["duration_s"], meta["rate"], meta["call_ms"][0] / 1000.0, meta["call_ms"][1] / 1000.0, meta["busy_pct"],
               meta["reload_every_s"], attempted, answered, busy, unexpected, n_ok, len(reloads), fmt_num(rss1, 1),
               fmt_num(rss2, 1), fmt_num(f1), fmt_num(f2), fmt_num(h1), fmt_num(h2), fmt_num(u1), fmt_num(u2), drain_s,
               fin.get("calls_held"), fin.get("ports_free"), ports_full, cpu, "PASS" if passed else "FAIL"))
    lines = [
        "",
        "## soak: %d calls/s x %d s, calls %d-%d ms, %d%% busy, reload every %d s"
        % (meta["rate"], meta["duration_s"], meta["call_ms"][0], meta["call_ms"][1], meta["busy_pct"], meta["reload_every_s"]),
        "windows: first %s-%s s (after warm-up), last %s-%s s of the load; %d samples (%d in them)"
        % (first_w[0], first_w[1], last_w[0], last_w[1], len(samples), len(fw) + len(lw)),
        "",
        "| criterion | result | figures |",
        "|---|---|---|",
    ]
    for name, ok, detail in crit:
        lines.append("| %s | %s | %s |" % (name, "PASS" if ok else "FAIL", detail))
    lines += [
        "",
        "SIPp: UAC rc %s, retransmissions UAC %d / UAS %d, UAS busy sent %d (UAC saw %d); UAS rc %s; "
        "UDP receive-buffer drops in the namespace %d; sbcd messages dropped %s, 503 refused %s"
        % (uac.rc if uac else None, num(a, "Retransmissions(C)"), num(b, "Retransmissions(C)"), uas_busy, busy,
           uas.rc if uas else None, snmp1["RcvbufErrors"] - snmp0["RcvbufErrors"], final.get("_dropped"),
           (final.get("refused_503") or 0) - (idle.get("refused_503") or 0)),
        "sbcd: idle VmRSS %s KiB, %s fds; CPU %s s over the run; threads %s" % (idle_rss, idle_fds, cpu,
                                                                              samples[-1]["threads"] if samples else None),
    ]
    for side in ("uac", "uas"):
        for e in error_summary(d + "/%s-err.log" % side):
            lines.append("%s SIPp event: %s" % (side.upper(), e))
    kinds = {}
    for w in warns + errs:
        k = re.sub(r"^\S+\s+", "", w)  # drop the timestamp
        k = re.sub(r"=\S+", "=…", k)[:160]
        kinds[k] = kinds.get(k, 0) + 1
    for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]:
        lines.append("sbcd log: %5d x %s" % (n, k))
    lines += ["", "README line:", line, "", "RESULT: " + ("PASS" if passed else "FAIL")]
    text = "\n".join(lines)
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump({"meta": meta, "pass": passed, "criteria": [{"name": n, "pass": o, "detail": t} for n, o, t in crit],
                   "readme_line": line, "idle": {k: v for k, v in idle.items() if not k.startswith("_")},
                   "final": {k: v for k, v in final.items() if not k.startswith("_")}}, f, indent=1)
    log(text)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

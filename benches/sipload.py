#!/usr/bin/env python3
"""SIP load runs against sbcd, Kamailio and SIPp itself (python3 standard library only).

Driven by benches/cps.sh (calls per second) and benches/concurrent.sh (held calls); see their
--help for the environment variables. Everything runs on loopback:

    SIPp UAC (PBX, 127.0.0.1:B+10) -> target -> SIPp UAS (carrier, 127.0.0.2:B+20)

with target one of: direct (the UAS itself), sbcd (udp 127.0.0.1:B), kamailio (udp 127.0.0.1:B+1).
CPU is measured per process from /proc/PID/stat (utime + stime), never machine-wide: the machine
is shared and /proc/stat under-reports on these VMs.
"""

import csv
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SCEN = os.path.join(HERE, "sipp")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVICE = "12125551234"


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------
# /proc helpers


def proc_stat(pid):
    """(pgrp, utime+stime ticks, comm) of one process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1 : s.rindex(")")]
    fields = s[s.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); pgrp is field 5, utime 14, stime 15.
    return int(fields[2]), int(fields[11]) + int(fields[12]), comm


def cpu_ticks(pids):
    total = 0
    for p in pids:
        st = proc_stat(p)
        if st:
            total += st[1]
    return total


def task_ticks(pids):
    """{(pid, tid): (comm, utime+stime ticks)} of every thread of the given processes."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index("(") + 1 : st.rindex(")")]
            fields = st[st.rindex(")") + 2 :].split()
            out[(pid, int(tid))] = (comm, int(fields[11]) + int(fields[12]))
    return out


def busiest(t0, t1, elapsed, n=4):
    """'comm:share' of the threads that used the most CPU between two task_ticks() snapshots,
    share = CPU-s / wall-s (1.0 = one core all the time)."""
    used = []
    for k, (comm, ticks) in t1.items():
        d = ticks - t0.get(k, (comm, 0))[1]
        if d > 0:
            used.append((d / CLK_TCK / elapsed, comm, k[1]))
    used.sort(reverse=True)
    return " ".join("%s/%d:%.2f" % (c, tid, u) for u, c, tid in used[:n])


def group_pids(pgid):
    """Every process whose process group is pgid (Kamailio's main process and its children)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[0] == pgid:
            out.append(int(name))
    return sorted(out)


def status_kib(pid, key):
    """A kB value of /proc/PID/status (VmRSS, VmHWM), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def threads(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def udp_bound(ip, port):
    a = ip.split(".")
    want = "%02X%02X%02X%02X:%04X" % (int(a[3]), int(a[2]), int(a[1]), int(a[0]), port)
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in f.readlines()[1:])


def udp_drops():
    """{(ip, port): drops} of every IPv4 UDP socket (the last column of /proc/net/udp: datagrams the
    kernel dropped for that socket, mostly a full receive buffer)."""
    out = {}
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            addr, port = p[1].split(":")
            ip = ".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0))
            out[(ip, int(port, 16))] = out.get((ip, int(port, 16)), 0) + int(p[-1])
    return out


def udp_snmp():
    """Namespace-wide UDP counters (InErrors, RcvbufErrors, SndbufErrors) from /proc/net/snmp."""
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Udp:")]
    d = dict(zip(rows[0][1:], rows[1][1:]))
    return {k: int(d.get(k, 0)) for k in ("InErrors", "RcvbufErrors", "SndbufErrors")}


def wait_udp_bound(ip, port, proc, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if udp_bound(ip, port):
            return True
        time.sleep(0.1)
    return False


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return f.readlines()[-n:]
    except OSError:
        return []


# ---------------------------------------------------------------------------------------------
# processes we start (and only those are ever signalled, by PID)


class Child:
    def __init__(self, argv, stdout, stderr, cwd, new_session=True):
        self.argv = argv
        self.out = open(stdout, "w")
        self.err = open(stderr, "w") if stderr != stdout else self.out
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self.out,
            stderr=self.err,
            cwd=cwd,
            start_new_session=new_session,
        )
        self.pid = self.p.pid
        self.rc = None
        self.cpu_s = None  # user+sys seconds of the process (and its reaped children), from wait4

    def poll(self):
        if self.rc is None:
            try:
                pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.rc
            if pid == self.pid:
                self._reaped(status, ru)
        return self.rc

    def _reaped(self, status, ru):
        self.rc = os.waitstatus_to_exitcode(status)
        self.cpu_s = ru.ru_utime + ru.ru_stime
        self.p.returncode = self.rc
        self.out.close()
        if self.err is not self.out:
            self.err.close()

    def wait(self, timeout):
        deadline = time.time() + timeout
        while self.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        return self.rc

    def stop(self, sig=signal.SIGTERM, grace=10.0):
        """Signal our own process by PID, then SIGKILL it if it outlives the grace period."""
        if self.poll() is not None:
            return self.rc
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        if self.wait(grace) is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(5)
        return self.rc


# ---------------------------------------------------------------------------------------------
# SIPp


def sipp_common(sipp, stat_file, err_file, timeout_s, mp, cp):
    return [
        sipp,
        "-buff_size", "4194304",
        "-default_behaviors", "all,-abortunexp",
        "-trace_stat", "-stf", stat_file, "-fd", "1",
        "-trace_err", "-error_file", err_file,
        # SIPp logs whole messages: an overload run writes gigabytes. Past this size it starts over.
        "-max_log_size", str(16 << 20),
        "-timeout", str(int(timeout_s)),
        "-nostdin",
        "-mp", str(mp),
        "-cp", str(cp),
    ]


def sipp_uas(sipp, d, port, calls, timeout_s, base, tag):
    argv = sipp_common(sipp, d + "/%s-uas-stat.csv" % tag, d + "/%s-uas-err.log" % tag, timeout_s, base + 200, base + 301)
    argv += ["-sf", os.path.join(SCEN, "uas.xml"), "-s", SERVICE, "-i", "127.0.0.2", "-p", str(port), "-m", str(calls)]
    return Child(argv, d + "/%s-uas.out" % tag, d + "/%s-uas.out" % tag, d)


def sipp_uac(sipp, d, port, dest, scenario, rate, calls, timeout_s, base, tag, extra=()):
    argv = sipp_common(sipp, d + "/%s-uac-stat.csv" % tag, d + "/%s-uac-err.log" % tag, timeout_s, base + 100, base + 300)
    argv += ["-sf", os.path.join(SCEN, scenario), "-s", SERVICE, "-i", "127.0.0.1", "-p", str(port), dest]
    argv += ["-r", str(rate), "-m", str(calls)] + list(extra)
    return Child(argv, d + "/%s-uac.out" % tag, d + "/%s-uac.out" % tag, d)


def sipp_rows(path):
    try:
        with open(path) as f:
            return list(csv.DictReader(f, delimiter=";"))
    except OSError:
        return []


def sipp_last(path):
    rows = sipp_rows(path)
    return rows[-1] if rows else {}


def num(row, key):
    try:
        return int(row.get(key, "") or 0)
    except ValueError:
        return 0


def achieved_rate(stat_path, attempted):
    """Calls/s SIPp placed: attempted / seconds from its start to the first 1 s sample that shows
    every call created (1 s resolution)."""
    for r in sipp_rows(stat_path):
        if attempted and num(r, "OutgoingCall(C)") >= attempted:
            try:
                t0 = float(r["StartTime"].split()[-1])
                t1 = float(r["CurrentTime"].split()[-1])
            except (KeyError, ValueError, IndexError):
                return None
            return round(attempted / max(t1 - t0, 1e-3), 1)
    return None


def hms_ms(v):
    """SIPp 'HH:MM:SS:microseconds' (or 'HH:MM:SS') -> milliseconds."""
    if not v:
        return None
    parts = v.split(":")
    try:
        h, m, s = int(parts[0]), int(parts[1]), int(parts[2])
        us = int(parts[3]) if len(parts) > 3 else 0
    except (ValueError, IndexError):
        return None
    return (h * 3600 + m * 60 + s) * 1000 + us / 1000.0


EVENT = re.compile(r"(\d{4}-\d\d-\d\d)\s+[\d:.]+\s+[\d.]+:\s*")


def sipp_events(path, limit=64 << 20):
    """The events of a SIPp -trace_err file, each without its timestamp. SIPp 3.6.1 writes some
    of them without a newline in between, so this splits on the timestamps, not on lines."""
    try:
        with open(path, errors="replace") as f:
            text = f.read(limit)
    except OSError:
        return []
    starts = list(EVENT.finditer(text))
    return [text[m.end() : (starts[i + 1].start() if i + 1 < len(starts) else len(text))].strip()
            for i, m in enumerate(starts)]


def error_summary(path, n=6):
    """Distinct kinds of SIPp error events (Call-IDs blanked) with their counts, most frequent first."""
    kinds = {}
    for e in sipp_events(path):
        first = e.splitlines()[0] if e else ""
        k = re.sub(r"'[^']*@[^']*'|'[0-9a-f]{16,}'", "'CALLID'", first)
        k = re.sub(r"(call:|Dead call|Call-ID) [^ ,]+", r"\1 CALLID", k)[:200]
        kinds[k] = kinds.get(k, 0) + 1
    return ["%6d x %s" % (c, k) for k, c in sorted(kinds.items(), key=lambda kv: -kv[1])[:n]]


# ---------------------------------------------------------------------------------------------
# targets


SBCD_CONFIG = """# Generated by {origin}
[sip]
listen = ["udp:{host}:{sip}"]
advertise = "{host}"
shutdown_grace_secs = {grace}
log_level = "warn"

[media]
listen = "{host}"
advertise = "{host}"
port_min = {pmin}
port_max = {pmax}
# The load plays no RTP: calls must not end on media inactivity.
idle_timeout_secs = 3600

[admin]
listen = "127.0.0.1:{admin}"

[[trunk]]
name = "pbx"
inbound.allow = ["127.0.0.1/32"]
outbound.uri = "sip:127.0.0.1:{uac}"

[[trunk]]
name = "carrier"
inbound.allow = ["127.0.0.2/32"]
outbound.uri = "sip:127.0.0.2:{uas}"
{extra}
[[route]]
from = "pbx"
{pbx_match}to = ["carrier"]

[[route]]
from = "carrier"
to = ["pbx"]
"""


def sbcd_config_text(sip, admin, uac_port, uas_port, media_ports, host="127.0.0.1", grace_s=1,
                     extra="", pbx_match=None, origin="benches/sipload.py"):
    """The bench topology: PBX (SIPp UAC, 127.0.0.1) <-> sbcd (SIP and media on `host`) <->
    carrier (SIPp UAS, 127.0.0.2). `extra`: more [[trunk]] tables; `pbx_match`: the regex of the
    PBX's route."""
    return SBCD_CONFIG.format(
        origin=origin, host=host, sip=sip, admin=admin, uac=uac_port, uas=uas_port, grace=grace_s,
        pmin=media_ports[0], pmax=media_ports[1], extra=extra,
        pbx_match='match = "%s"\n' % pbx_match if pbx_match else "")


def sbcd_config(path, base, uac_port, uas_port, media_ports, grace_s=1):
    """sbcd_config_text for PORT_BASE `base` (admin on base + 30), written to `path`."""
    with open(path, "w") as f:
        f.write(sbcd_config_text(base, base + 30, uac_port, uas_port, media_ports, grace_s=grace_s))


class Target:
    """direct / sbcd / kamailio: where the UAC sends, and whose CPU counts."""

    def __init__(self, name, cfg):
        self.name = name
        self.cfg = cfg
        self.child = None
        self.dest = None
        self.dead = False
        self.note = ""

    def start(self, d):
        c = self.cfg
        if self.name == "direct":
            self.dest = "127.0.0.2:%d" % c["uas_port"]
            return True
        if self.name == "sbcd":
            conf = os.path.join(d, "sbcd.toml")
            sbcd_config(conf, c["base"], c["uac_port"], c["uas_port"], c["media_ports"])
            chk = subprocess.run([c["sbcd_bin"], "check-config", "--config", conf], capture_output=True, text=True, timeout=30)
            if chk.returncode != 0:
                log("sbcd check-config failed: %s %s" % (chk.stdout, chk.stderr))
                return False
            self.child = Child([c["sbcd_bin"], "--config", conf], d + "/sbcd.stdout", d + "/sbcd.stderr", d)
            self.dest = "127.0.0.1:%d" % c["base"]
            ok = wait_udp_bound("127.0.0.1", c["base"], self.child.p)
            time.sleep(0.5)
            self.note = "threads=%s" % threads(self.child.pid)
            return ok
        if self.name == "kamailio":
            rundir = os.path.join(d, "kamailio-run")
            os.makedirs(rundir, exist_ok=True)
            kport = c["base"] + 1
            argv = [
                c["kamailio_bin"], "-DD", "-E",
                "-f", os.path.join(HERE, "kamailio-cps.cfg"),
                "-P", os.path.join(rundir, "kamailio.pid"),
                "-Y", rundir,
                "-m", "1024", "-M", "64", "-n", str(c["kam_children"]),
                "-l", "udp:127.0.0.1:%d" % kport,
                "-A", 'UAS_URI="sip:127.0.0.2:%d"' % c["uas_port"],
            ]
            if c["kam_buffer"] > 0:
                argv += ["-A", "UDP_BUFFER=%d" % c["kam_buffer"]]
            chk = subprocess.run(argv[:1] + ["-c"] + argv[3:], capture_output=True, text=True, timeout=30)
            if chk.returncode != 0:
                log("kamailio -c failed: %s" % chk.stderr[-2000:])
                return False
            self.child = Child(argv, d + "/kamailio.log", d + "/kamailio.log", d)
            self.dest = "127.0.0.1:%d" % kport
            ok = wait_udp_bound("127.0.0.1", kport, self.child.p)
            time.sleep(1.0)
            pids = group_pids(self.child.pid)
            self.note = "processes=%d (main + %d children; -n %d UDP workers), maxbuffer %s" % (
                len(pids), len(pids) - 1, c["kam_children"], c["kam_buffer"] or "default")
            return ok
        raise ValueError(self.name)

    def pids(self):
        if self.child is None:
            return []
        if self.name == "kamailio":
            return group_pids(self.child.pid)
        return [self.child.pid]

    def cpu_ticks(self):
        return cpu_ticks(self.pids())

    def alive(self):
        return self.child is None or self.child.poll() is None

    def stop(self):
        """Returns the stderr lines that tell about calls still up (sbcd) on a SIGTERM drain."""
        if self.child is None:
            return []
        self.child.stop(signal.SIGTERM, grace=15)
        if self.name == "sbcd":
            return [l.rstrip() for l in tail(self.child.err.name, 200) if "calls up" in l or "ERROR" in l or "panic" in l]
        return []


# ---------------------------------------------------------------------------------------------
# cps


def cps_run(t, rate, duration, cfg, d):
    """One rate against one target; returns a result dict (one CSV row)."""
    calls = rate * duration
    tag = "%s-%d" % (t.name, rate)
    timeout_s = duration + 60
    uas = sipp_uas(cfg["sipp"], d, cfg["uas_port"], calls, timeout_s + 30, cfg["base"], tag)
    if not wait_udp_bound("127.0.0.2", cfg["uas_port"], uas.p):
        uas.stop()
        raise RuntimeError("SIPp UAS did not bind 127.0.0.2:%d (see %s-uas.out)" % (cfg["uas_port"], tag))
    la = loadavg()
    uac_sock = ("127.0.0.1", cfg["uac_port"])
    uas_sock = ("127.0.0.2", cfg["uas_port"])
    tgt_sock = tuple(t.dest.split(":")[0:1]) + (int(t.dest.split(":")[1]),)
    drops0 = udp_drops()
    snmp0 = udp_snmp()
    k0 = task_ticks(t.pids())
    c0 = t.cpu_ticks()
    w0 = time.time()
    uac = sipp_uac(cfg["sipp"], d, cfg["uac_port"], t.dest, "uac_cps.xml", rate, calls, timeout_s, cfg["base"], tag)
    # Bounded: SIPp's own -timeout ends it; the deadline is only a safety net. The SIPp sockets'
    # drop counters vanish with them, so they are read while the UAC runs.
    sipp_drops = {uac_sock: 0, uas_sock: 0}
    deadline = time.time() + timeout_s + 30
    while uac.poll() is None and time.time() < deadline:
        dr = udp_drops()
        for k in sipp_drops:
            sipp_drops[k] = max(sipp_drops[k], dr.get(k, 0))
        time.sleep(0.5)
    if uac.poll() is None:
        uac.stop(signal.SIGKILL)
    w1 = time.time()
    c1 = t.cpu_ticks()
    k1 = task_ticks(t.pids())
    drops1 = udp_drops()
    snmp1 = udp_snmp()
    # The UAS ends by itself after -m calls; when calls failed it would wait: give it a few seconds.
    if uas.wait(10) is None:
        uas.stop(signal.SIGUSR1, grace=5)
    time.sleep(cfg["cooldown"])
    c2 = t.cpu_ticks()
    a = sipp_last(d + "/%s-uac-stat.csv" % tag)
    b = sipp_last(d + "/%s-uas-stat.csv" % tag)
    attempted = num(a, "OutgoingCall(C)")
    ok = num(a, "SuccessfulCall(C)")
    failed = attempted - ok  # calls SIPp counted failed plus any still open when it had to stop
    elapsed = max(w1 - w0, 1e-9)
    cpu = (c1 - c0) / CLK_TCK
    row = {
        "target": t.name,
        "rate": rate,
        "duration_s": duration,
        "attempted": attempted,
        "successful": ok,
        "failed": failed,
        "sipp_failed": num(a, "FailedCall(C)"),
        "uas_incoming": num(b, "IncomingCall(C)"),
        "uas_successful": num(b, "SuccessfulCall(C)"),
        "uas_failed": num(b, "FailedCall(C)"),
        "uac_retrans": num(a, "Retransmissions(C)"),
        "uas_retrans": num(b, "Retransmissions(C)"),
        "uac_err_events": len(sipp_events(d + "/%s-uac-err.log" % tag)),
        "uas_err_events": len(sipp_events(d + "/%s-uas-err.log" % tag)),
        "elapsed_s": round(elapsed, 2),
        "achieved_cps": achieved_rate(d + "/%s-uac-stat.csv" % tag, attempted),
        "setup_ms_avg": hms_ms(a.get("ResponseTime1(C)", "")),
        "target_cpu_s": round(cpu, 2) if t.child else "",
        "cpu_s_per_1k": round(cpu / ok * 1000, 3) if t.child and ok else "",
        "target_cpu_tail_s": round((c2 - c1) / CLK_TCK, 2) if t.child else "",
        "target_util": round(cpu / elapsed, 2) if t.child else "",
        "busiest_threads": busiest(k0, k1, elapsed) if t.child else "",
        "uac_cpu_s": round(uac.cpu_s or 0, 2),
        "uas_cpu_s": round(uas.cpu_s or 0, 2),
        "uac_rc": uac.rc,
        "uas_rc": uas.rc,
        "uac_sock_drops": sipp_drops[uac_sock],
        "uas_sock_drops": sipp_drops[uas_sock],
        "target_sock_drops": (drops1.get(tgt_sock, 0) - drops0.get(tgt_sock, 0)) if t.child else "",
        "udp_rcvbuf_errors": snmp1["RcvbufErrors"] - snmp0["RcvbufErrors"],
        "udp_in_errors": snmp1["InErrors"] - snmp0["InErrors"],
        "loadavg": la,
        "target_alive": t.alive(),
    }
    return row


CPS_FIELDS = [
    "target", "rate", "duration_s", "attempted", "successful", "failed", "sipp_failed",
    "uas_incoming", "uas_successful", "uas_failed", "uac_retrans", "uas_retrans",
    "uac_err_events", "uas_err_events", "elapsed_s", "achieved_cps", "setup_ms_avg",
    "target_cpu_s", "cpu_s_per_1k", "target_cpu_tail_s", "target_util", "busiest_threads", "uac_cpu_s", "uas_cpu_s",
    "uac_rc", "uas_rc", "uac_sock_drops", "uas_sock_drops", "target_sock_drops", "udp_rcvbuf_errors",
    "udp_in_errors", "loadavg", "target_alive",
]


def fmt(v, w):
    s = "" if v is None else str(v)
    return s.rjust(w)


def cps_tables(rows, notes):
    out = []
    names = [n for n in ("direct", "sbcd", "kamailio") if any(r["target"] == n for r in rows)]
    for n in names:
        rs = [r for r in rows if r["target"] == n]
        out.append("")
        out.append("## %s%s" % (n, ("  (" + notes[n] + ")") if notes.get(n) else ""))
        cols = [("rate", 5), ("achieved", 8), ("attempted", 9), ("successful", 10), ("failed", 6),
                ("retrans", 7), ("SIPp errs", 9), ("UDP drops", 9), ("setup ms", 8), ("CPU-s", 6), ("CPU-s/1k", 8), ("util", 5),
                ("UAC CPU-s", 9), ("UAS CPU-s", 9)]
        out.append("| " + " | ".join(c.rjust(w) for c, w in cols) + " |")
        out.append("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")
        for r in rs:
            sm = r["setup_ms_avg"]
            vals = [r["rate"], r["achieved_cps"], r["attempted"], r["successful"], r["failed"],
                    int(r["uac_retrans"]) + int(r["uas_retrans"]),
                    int(r["uac_err_events"]) + int(r["uas_err_events"]), r["udp_rcvbuf_errors"], "" if sm in (None, "") else "%.1f" % float(sm),
                    r["target_cpu_s"], r["cpu_s_per_1k"], r["target_util"], r["uac_cpu_s"], r["uas_cpu_s"]]
            out.append("| " + " | ".join(fmt(v, w) for v, (_, w) in zip(vals, cols)) + " |")
    out.append("")
    out.append("## highest rate with zero failed calls")
    for n in names:
        good = [int(r["rate"]) for r in rows if r["target"] == n and int(r["failed"]) == 0 and int(r["attempted"]) > 0]
        bad = [int(r["rate"]) for r in rows if r["target"] == n and int(r["failed"]) > 0]
        out.append("- %-8s %s%s" % (n, max(good) if good else "none",
                                    ("  (first rate with failures: %d)" % min(bad)) if bad else "  (no failures at any rate run)"))
    if "sbcd" in names and "kamailio" in names:
        out.append("")
        out.append("## sbcd CPU-s/1k ÷ kamailio CPU-s/1k")
        out.append("|  rate | sbcd CPU-s/1k | kamailio CPU-s/1k | ratio |")
        out.append("|-------|---------------|-------------------|-------|")
        by = {(r["target"], int(r["rate"])): r for r in rows}
        for rate in sorted({int(r["rate"]) for r in rows}):
            s, k = by.get(("sbcd", rate)), by.get(("kamailio", rate))
            if not s or not k or s["cpu_s_per_1k"] in ("", None) or k["cpu_s_per_1k"] in ("", None):
                continue
            sv, kv = float(s["cpu_s_per_1k"]), float(k["cpu_s_per_1k"])
            out.append("| %5d | %13.3f | %17.3f | %5s |" % (rate, sv, kv, ("%.2f" % (sv / kv)) if kv else "-"))
    return "\n".join(out)


def common_cfg(base_default):
    base = env_int("PORT_BASE", base_default)
    return {
        "base": base,
        "uac_port": base + 10,
        "uas_port": base + 20,
        "sipp": os.environ.get("SIPP_BIN", "sipp"),
        "sbcd_bin": os.path.abspath(os.environ.get("SBCD_BIN", os.path.join(REPO, "target/release/sbcd"))),
        "kamailio_bin": os.environ.get("KAMAILIO_BIN", "kamailio"),
        "kam_children": env_int("KAMAILIO_CHILDREN", 2),
        "kam_buffer": env_int("KAMAILIO_UDP_BUFFER", 4194304),
        "cooldown": env_int("COOLDOWN", 5),
        # sbcd binds its whole media range at start, one descriptor per port: 10,000 ports are
        # 2,500 anchored calls at once (each call holds an RTP/RTCP pair per leg).
        "media_ports": (40000, 49999),
    }


def media_ports_for(calls):
    """A media range from 40000 with room for CALLS anchored calls (4 ports each) plus 2%, or
    exit with what to change when sbcd could not open that many descriptors here."""
    n = calls * 4 + max(64, calls * 4 // 50)
    n += n % 2
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and n + 1024 > hard:
        sys.exit("%d anchored calls need %d media ports, but the open-file hard limit is %d: "
                 "lower CALLS to %d or raise the limit (ulimit -Hn)" % (calls, n, hard, int((hard - 1024) / 4.1)))
    if 40000 + n > 65536:
        sys.exit("%d anchored calls need %d media ports from 40000: lower CALLS" % (calls, n))
    return (40000, 40000 + n - 1)


def describe_bin(path):
    try:
        st = os.stat(path)
        return "%s (mtime %s, %d bytes)" % (path, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(st.st_mtime)), st.st_size)
    except OSError:
        return path + " (missing)"


def git_rev():
    try:
        r = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10)
        return r.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def cps_main():
    cfg = common_cfg(36000)
    rates = [int(x) for x in os.environ.get("RATES", "500 1000 1500 2000 2500 3000 4000").split()]
    duration = env_int("DURATION", 30)
    targets = os.environ.get("TARGETS", "direct sbcd kamailio").split()
    stop_on_fail = env_int("STOP_ON_FAIL", 1)
    out = os.environ.get("OUT", "/tmp/cps-results")
    os.makedirs(out, exist_ok=True)
    d = os.path.join(out, time.strftime("run-%Y%m%d-%H%M%S"))
    os.makedirs(d)
    meta = {
        "rates": rates, "duration_s": duration, "targets": targets, "ports": cfg,
        "sbcd": describe_bin(cfg["sbcd_bin"]), "git": git_rev(), "nproc": os.cpu_count(),
        "sipp": subprocess.run([cfg["sipp"], "-v"], capture_output=True, text=True).stdout.strip().splitlines()[:1],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    log("cps: rates %s, %d s each, targets %s; raw files in %s" % (rates, duration, targets, d))
    log("sbcd: %s, git %s" % (meta["sbcd"], meta["git"]))

    tg = {}
    notes = {}
    for n in targets:
        t = Target(n, cfg)
        if not t.start(d):
            log("%s did not start; skipped (see %s)" % (n, d))
            if t.child:
                t.child.stop()
            continue
        tg[n] = t
        notes[n] = t.note
        log("%s up: dest %s %s" % (n, t.dest, t.note))

    rows = []
    csv_path = os.path.join(d, "cps.csv")
    active = [n for n in targets if n in tg]
    stops = {}
    try:
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CPS_FIELDS)
            w.writeheader()
            for rate in rates:
                for n in list(active):
                    t = tg[n]
                    if not t.alive():
                        log("%s has exited (rc %s); no more runs against it" % (n, t.child.rc))
                        active.remove(n)
                        continue
                    log("-- %s @ %d calls/s x %d s (loadavg %s)" % (n, rate, duration, loadavg()))
                    r = cps_run(t, rate, duration, cfg, d)
                    rows.append(r)
                    w.writerow(r)
                    f.flush()
                    log("   attempted %d successful %d failed %d (UAS failed %d) achieved %.0f/s, setup %s ms, "
                        "target CPU %s s = %s s/1k (util %s, tail %s s; busiest threads %s), UAC CPU %s s, UAS CPU %s s"
                        % (r["attempted"], r["successful"], r["failed"], r["uas_failed"], r["achieved_cps"],
                           r["setup_ms_avg"], r["target_cpu_s"], r["cpu_s_per_1k"], r["target_util"],
                           r["target_cpu_tail_s"], r["busiest_threads"], r["uac_cpu_s"], r["uas_cpu_s"]))
                    if r["udp_rcvbuf_errors"] or r["udp_in_errors"]:
                        log("   UDP receive-buffer drops: %s in the namespace (UAC socket %s, UAS socket %s, %s socket %s)"
                            % (r["udp_rcvbuf_errors"], r["uac_sock_drops"], r["uas_sock_drops"], n, r["target_sock_drops"]))
                    for side in ("uac", "uas"):
                        for line in error_summary(d + "/%s-%d-%s-err.log" % (n, rate, side)):
                            log("   %s err: %s" % (side.upper(), line))
                    if not t.alive():
                        log("   %s DIED during the run (rc %s); stderr tail:" % (n, t.child.rc))
                        for line in tail(t.child.err.name, 20):
                            log("   | " + line.rstrip())
                        active.remove(n)
                        stops[n] = "exited at %d/s" % rate
                    elif stop_on_fail and r["failed"] > 0:
                        active.remove(n)
                        stops[n] = "failed calls at %d/s" % rate
                if not active:
                    break
    finally:
        for n, t in tg.items():
            lines = t.stop()
            if t.name == "sbcd":
                log("sbcd SIGTERM drain (grace 1 s): %s" % ("; ".join(lines) if lines else "no calls left up, no errors"))
                with open(os.path.join(d, "sbcd-drain.txt"), "w") as f:
                    f.write("\n".join(lines) + "\n")

    text = cps_tables(rows, notes)
    if stops:
        text += "\n\nstopped raising: " + ", ".join("%s (%s)" % kv for kv in stops.items())
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write(text + "\n")
    log(text)
    log("\nraw results: %s (cps.csv, summary.md, SIPp stat/error files per run)" % d)
    return 0


# ---------------------------------------------------------------------------------------------
# concurrent


def concurrent_round(t, cfg, d, rnd, calls, rate, hold_ms, after_s, timeout_s):
    """One round: CALLS calls placed at RATE/s, held HOLD_MS, hung up; sbcd sampled once a second
    until AFTER_S seconds after the UAC exits. Returns (result dict, samples)."""
    pid = t.child.pid
    tag = "conc-r%d" % rnd
    uas = sipp_uas(cfg["sipp"], d, cfg["uas_port"], calls, timeout_s + 60, cfg["base"], tag)
    if not wait_udp_bound("127.0.0.2", cfg["uas_port"], uas.p):
        uas.stop()
        raise RuntimeError("SIPp UAS did not bind")
    before = status_kib(pid, "VmRSS")
    c0 = t.cpu_ticks()
    w0 = time.time()
    uac = sipp_uac(cfg["sipp"], d, cfg["uac_port"], t.dest, "uac_hold.xml", rate, calls, timeout_s, cfg["base"], tag,
                   extra=["-d", str(hold_ms), "-l", str(calls)])
    samples = []
    stat_path = d + "/%s-uac-stat.csv" % tag
    deadline = w0 + timeout_s + 30
    last_log = 0
    ended_at = None
    # One sample a second while the UAC runs (bounded by its -timeout plus a margin), then AFTER_S more.
    while time.time() < deadline:
        now = time.time()
        a = sipp_last(stat_path)
        s = {
            "round": rnd,
            "t_s": round(now - w0, 1),
            "rss_kib": status_kib(pid, "VmRSS"),
            "hwm_kib": status_kib(pid, "VmHWM"),
            "cpu_s": round((t.cpu_ticks() - c0) / CLK_TCK, 2),
            "uac_created": num(a, "OutgoingCall(C)"),
            "uac_current": num(a, "CurrentCall"),
            "uac_successful": num(a, "SuccessfulCall(C)"),
            "uac_failed": num(a, "FailedCall(C)"),
            "phase": "run" if ended_at is None else "after",
        }
        samples.append(s)
        if now - last_log >= 10:
            last_log = now
            log("  round %d t=%5.0fs  calls up %5d (created %5d, ok %5d, failed %d)  sbcd RSS %s KiB  CPU %s s"
                % (rnd, s["t_s"], s["uac_current"], s["uac_created"], s["uac_successful"], s["uac_failed"], s["rss_kib"], s["cpu_s"]))
        if not t.alive():
            log("sbcd DIED (rc %s); stderr tail:" % t.child.rc)
            for line in tail(t.child.err.name, 20):
                log("  | " + line.rstrip())
            break
        if ended_at is None and uac.poll() is not None:
            ended_at = time.time()
            deadline = min(deadline, ended_at + after_s)
            log("  UAC exited rc %s at t=%.0fs; sampling %d s more" % (uac.rc, ended_at - w0, after_s))
        time.sleep(max(0.0, 1.0 - (time.time() - now)))
    if uac.poll() is None:
        uac.stop(signal.SIGUSR1, grace=10)
    if uas.wait(10) is None:
        uas.stop(signal.SIGUSR1, grace=5)
    a = sipp_last(stat_path)
    b = sipp_last(d + "/%s-uas-stat.csv" % tag)
    cpu_total = (t.cpu_ticks() - c0) / CLK_TCK

    attempted = num(a, "OutgoingCall(C)")
    ok = num(a, "SuccessfulCall(C)")
    run = [s for s in samples if s["phase"] == "run" and s["rss_kib"]]
    plateau = [s for s in run if s["uac_current"] >= calls]  # every call up at once
    after = [s for s in samples if s["phase"] == "after" and s["rss_kib"]]
    res = {
        "round": rnd,
        "attempted": attempted, "successful": ok, "failed": attempted - ok,
        "sipp_failed": num(a, "FailedCall(C)"),
        "uas_successful": num(b, "SuccessfulCall(C)"), "uas_failed": num(b, "FailedCall(C)"),
        "uac_retrans": num(a, "Retransmissions(C)"), "uas_retrans": num(b, "Retransmissions(C)"),
        "max_calls_up": max((s["uac_current"] for s in run), default=0), "plateau_samples": len(plateau),
        "rss_before_kib": before,
        "rss_plateau_max_kib": max((s["rss_kib"] for s in plateau), default=None),
        "rss_run_max_kib": max((s["rss_kib"] for s in run), default=None),
        "rss_after_5s_kib": next((s["rss_kib"] for s in after if s["t_s"] >= (ended_at - w0) + 4.5), None) if ended_at else None,
        "rss_after_end_kib": after[-1]["rss_kib"] if after else None,
        "vmhwm_kib": max((s["hwm_kib"] or 0 for s in samples), default=None),
        "sbcd_cpu_s": round(cpu_total, 2),
        "sbcd_cpu_s_per_1k": round(cpu_total / ok * 1000, 3) if ok else None,
        "uac_rc": uac.rc, "uas_rc": uas.rc, "uac_cpu_s": round(uac.cpu_s or 0, 2), "uas_cpu_s": round(uas.cpu_s or 0, 2),
        "errors": error_summary(d + "/%s-uac-err.log" % tag) + error_summary(d + "/%s-uas-err.log" % tag),
    }
    return res, samples


def concurrent_main():
    cfg = common_cfg(37000)
    calls = env_int("CALLS", 4000)
    cfg["media_ports"] = media_ports_for(calls)
    rate = env_int("RATE", 500)
    hold_ms = env_int("HOLD_MS", 60000)
    after_s = env_int("AFTER_S", 40)
    rounds = max(1, env_int("ROUNDS", 1))
    out = os.environ.get("OUT", "/tmp/concurrent-results")
    os.makedirs(out, exist_ok=True)
    d = os.path.join(out, time.strftime("run-%Y%m%d-%H%M%S"))
    os.makedirs(d)
    ramp_s = calls / rate
    timeout_s = int(ramp_s + hold_ms / 1000.0 + 120)
    log("concurrent: %d calls at %d/s (ramp %.0f s), each held %d ms, %d round(s); raw files in %s"
        % (calls, rate, ramp_s, hold_ms, rounds, d))
    log("sbcd: %s, git %s; ulimit -n %s" % (describe_bin(cfg["sbcd_bin"]), git_rev(), os.sysconf("SC_OPEN_MAX")))

    t = Target("sbcd", cfg)
    if not t.start(d):
        log("sbcd did not start (see %s/sbcd.stderr)" % d)
        t.stop()
        return 1
    pid = t.child.pid
    time.sleep(2)
    idle = status_kib(pid, "VmRSS")
    log("sbcd pid %d up, %s; idle VmRSS %d KiB" % (pid, t.note, idle))
    results, samples = [], []
    try:
        for rnd in range(1, rounds + 1):
            r, s = concurrent_round(t, cfg, d, rnd, calls, rate, hold_ms, after_s, timeout_s)
            results.append(r)
            samples += s
            if not t.alive():
                break
    finally:
        alive = t.alive()
        drain = t.stop()

    with open(os.path.join(d, "rss.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(samples[0].keys()) if samples else ["t_s"])
        w.writeheader()
        for s in samples:
            w.writerow(s)
    r1 = results[0] if results else {}
    ref = r1.get("rss_plateau_max_kib") or r1.get("rss_run_max_kib")
    summary = {
        "calls": calls, "rate": rate, "hold_ms": hold_ms, "after_s": after_s, "rss_idle_kib": idle,
        "kib_per_call": round((ref - idle) / calls, 2) if ref and idle is not None else None,
        "sbcd_alive_at_end": alive, "sbcd_drain": drain, "rounds": results,
    }
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump(summary, f, indent=1)

    def row(label, key, fmt_="%s"):
        return "| %s | %s |" % (label, " | ".join(fmt_ % (r.get(key),) if not callable(key) else key(r) for r in results))

    lines = [
        "",
        "## sbcd, %d concurrent calls (rate %d/s, hold %d ms)%s" % (calls, rate, hold_ms,
                                                                   ", %d rounds on one sbcd" % rounds if rounds > 1 else ""),
        "| metric | " + " | ".join("round %d" % r["round"] for r in results) + " |",
        "|---|" + "---|" * len(results),
        row("calls attempted / successful / failed (UAC)", lambda r: "%d / %d / %d" % (r["attempted"], r["successful"], r["failed"])),
        row("UAS successful / failed", lambda r: "%d / %d" % (r["uas_successful"], r["uas_failed"])),
        row("retransmissions UAC / UAS", lambda r: "%d / %d" % (r["uac_retrans"], r["uas_retrans"])),
        row("most calls up at once (UAC CurrentCall)", lambda r: "%d (%d one-second samples with all %d up)" % (r["max_calls_up"], r["plateau_samples"], calls)),
        row("sbcd VmRSS before the round", "rss_before_kib", "%s KiB"),
        row("sbcd VmRSS plateau (max while all calls up)", "rss_plateau_max_kib", "%s KiB"),
        row("sbcd VmRSS max during the round / VmHWM", lambda r: "%s KiB / %s KiB" % (r["rss_run_max_kib"], r["vmhwm_kib"])),
        row("sbcd VmRSS 5 s after the last call ended", "rss_after_5s_kib", "%s KiB"),
        row("sbcd VmRSS %d s after the last call ended" % after_s, "rss_after_end_kib", "%s KiB"),
        row("sbcd CPU-s total / per 1k calls", lambda r: "%s / %s" % (r["sbcd_cpu_s"], r["sbcd_cpu_s_per_1k"])),
        row("SIPp UAC / UAS CPU-s", lambda r: "%s / %s" % (r["uac_cpu_s"], r["uas_cpu_s"])),
        "",
        "sbcd VmRSS idle (before round 1): %s KiB" % idle,
        "KiB per call = (round 1 plateau - idle) / %d = %s" % (calls, summary["kib_per_call"]),
        "sbcd SIGTERM drain (grace 1 s): %s" % ("; ".join(drain) if drain else "no calls left up"),
    ]
    for r in results:
        for e in r["errors"]:
            lines.append("round %d SIPp event: %s" % (r["round"], e))
    text = "\n".join(lines)
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write(text + "\n")
    log(text)
    log("\nraw results: %s (rss.csv: one sample a second, result.json, summary.md)" % d)
    bad = [r for r in results if r["failed"] or r["attempted"] != calls]
    return 0 if results and not bad and len(results) == rounds else 1


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("cps", "concurrent"):
        sys.exit("usage: sipload.py cps|concurrent  (run benches/cps.sh or benches/concurrent.sh)")
    if not shutil.which(os.environ.get("SIPP_BIN", "sipp")):
        sys.exit("sipp not found (apt-get install sip-tester)")
    sys.exit(cps_main() if sys.argv[1] == "cps" else concurrent_main())

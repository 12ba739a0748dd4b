#!/usr/bin/env python3
"""RTP forwarding load runs: a bare relay loop, sbcd's forwarder and rtpengine (python3 stdlib only).

Driven by benches/rtp.sh (see --help there, or `benches/rtpload.py --help`). Everything on loopback:

    rtp_gen leg A (127.0.0.2:GEN_BASE+i) -> target -> rtp_gen leg B (127.0.0.3:GEN_BASE+i)
    (and B -> target -> A: BIDIR=1)

targets: direct    A -> B with no relay (the generator's own ceiling and latency baseline)
         bare      examples/bare_relay: one thread, recvmmsg -> sendmmsg, fixed destination per port
         bare_uring examples/bare_uring: bare's layout with io_uring (multishot recvmsg, provided
                   buffer ring, send with a destination address)
         sbcd      examples/relay_bench: rtp_relay::fwd::Relay, 1 worker, one component per call
                   (io_uring where the kernel allows it, as sbcd runs)
         sbcd_mmsg the same forced onto epoll + recvmmsg/sendmmsg (RELAY_IO=mmsg)
         rtpengine rtpengine-daemon, userspace (table = -1), one call per generator call created
                   with ng "offer"/"answer" on 127.0.0.1:NG_PORT

CPU is measured per process from /proc/PID/stat (utime + stime of every thread), from the
generator's START to the end of its drain, never machine-wide. "Forwarded packets per
CPU-second" = packets the generator received back / target CPU seconds.
"""

import csv
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")

HELP = """benches/rtp.sh: RTP forwarding through a bare relay loop, sbcd's forwarder and rtpengine.

  rtp_gen A (127.0.0.2:GEN_BASE+i) -> target -> rtp_gen B (127.0.0.3:GEN_BASE+i), and B -> A with BIDIR=1
  172-byte RTP, paced round-robin over the streams; loss per stream; one-way latency from a
  send timestamp in the payload to the kernel receive timestamp (SO_TIMESTAMPNS).

Phases, for each target in TARGETS (the target is started once, with CALLS calls set up):
  1. sweep: every rate of RATES (total packets/s), RUNS times each, DURATION s per run;
  2. latency: RUNS runs at LAT_RATE (default: half the highest rate `bare` sustained in every
     run: loss < 0.01%, generator at >= 98% of the rate, p99 < 5 ms; bare must then come
     before the others in TARGETS).

Environment:
  TARGETS            targets, in order            (default "direct bare sbcd sbcd_mmsg bare_uring rtpengine";
                     bare_uring's sockets linger a moment after it exits: keep it after bare/sbcd)
  CALLS              calls (2 generator sockets, 2 target ports each)   (default 2000)
  BIDIR              1: both directions (streams = 2*CALLS), 0: A -> B only (default 1)
  RATES              total packets/s to sweep     (default "25000 50000 100000"; the generator peaks near 130k here)
  LAT_RATE           rate of the latency phase    (default: half of bare's highest clean rate)
  DURATION           seconds per run              (default 10)
  RUNS               runs per rate                (default 3)
  COOLDOWN           seconds between runs         (default 2)
  GEN_BASE           generator ports GEN_BASE..+CALLS-1 on 127.0.0.2 and .3 (default 20000)
  RELAY_BASE         bare/bare_uring/sbcd ports RELAY_BASE..+2*CALLS-1 on 127.0.0.1  (default 24000)
  RTPENGINE_PORTS    rtpengine port-min:port-max  (default 10000:19999; 4 ports per call)
  NG_PORT            rtpengine ng port, 127.0.0.1 (default 9910)
  RTPENGINE_THREADS  rtpengine --num-threads      (default 2)
  RTPENGINE_BIN      rtpengine binary             (default rtpengine from PATH)
  EXAMPLES           directory of the built examples (default /tmp/rtp-bench-target/release/examples)
  OUT                results directory            (default /tmp/rtp-results; a run-DATE dir per run)
  PERF               1: `perf record -g` the target during its first run at the highest rate (default 0)

Output: a table per phase; raw OUT/run-*/rtp.csv (one row per run), summary.md, meta.json,
targets' logs.
"""


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def log(msg):
    print(msg, flush=True)


def proc_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


# ---------------------------------------------------------------------------------------------
# bencode / ng


def benc(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(benc(k) + benc(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(v)


def bdec(b, i=0):
    c = b[i : i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1 : j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while b[i : i + 1] != b"e":
            x, i = bdec(b, i)
            out.append(x)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while b[i : i + 1] != b"e":
            k, i = bdec(b, i)
            x, i = bdec(b, i)
            out[k.decode()] = x
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1 : j + 1 + n], j + 1 + n


class Ng:
    def __init__(self, port):
        self.addr = ("127.0.0.1", port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(2.0)
        self.n = 0

    def call(self, d):
        for _ in range(5):
            self.n += 1
            cookie = b"c%d" % self.n
            self.s.sendto(cookie + b" " + benc(d), self.addr)
            try:
                while True:
                    data, _ = self.s.recvfrom(65535)
                    ck, _, body = data.partition(b" ")
                    if ck == cookie:
                        return bdec(body)[0]
            except socket.timeout:
                continue
        raise RuntimeError("rtpengine: no answer to %s" % d.get("command"))


def sdp(ip, port, sess):
    return (
        "v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
        "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n" % (sess, ip, ip, port)
    )


def sdp_port(body):
    ip = re.search(rb"c=IN IP4 ([0-9.]+)", body).group(1).decode()
    port = int(re.search(rb"m=audio (\d+)", body).group(1))
    return "%s:%d" % (ip, port)


# ---------------------------------------------------------------------------------------------
# targets


class Target:
    def __init__(self, name, cfg, rundir):
        self.name, self.cfg, self.rundir = name, cfg, rundir
        self.proc = None
        self.pid = None
        self.dests = []

    def start(self):
        c = self.cfg
        ex = c["examples"]
        calls, gb, rb = c["calls"], c["gen_base"], c["relay_base"]
        logf = open(os.path.join(self.rundir, "%s.log" % self.name), "w")
        if self.name == "direct":
            self.dests = [
                ("127.0.0.3:%d" % (gb + i), "127.0.0.2:%d" % (gb + i)) for i in range(calls)
            ]
            return
        if self.name in ("bare", "bare_uring", "sbcd", "sbcd_mmsg"):
            binary = os.path.join(ex, {"bare": "bare_relay", "bare_uring": "bare_uring", "sbcd": "relay_bench",
                                       "sbcd_mmsg": "relay_bench"}[self.name])
            argv = [binary, "--port-min", str(rb), "--calls", str(calls), "--gen-base", str(gb)]
            # sbcd picks io_uring where the kernel allows it; sbcd_mmsg forces recvmmsg/sendmmsg.
            env = dict(os.environ, RELAY_IO="mmsg" if self.name == "sbcd_mmsg" else "auto")
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=logf, text=True, env=env)
            line = self.proc.stdout.readline()
            if not line.startswith("PID"):
                raise RuntimeError("%s did not start: %r" % (self.name, line))
            self.pid = self.proc.pid
            self.dests = [
                ("127.0.0.1:%d" % (rb + 2 * i), "127.0.0.1:%d" % (rb + 2 * i + 1))
                for i in range(calls)
            ]
            log("  %s: pid %d, %s" % (self.name, self.pid, line.strip()))
            return
        # rtpengine
        pmin, pmax = c["rtpengine_ports"]
        conf = os.path.join(self.rundir, "rtpengine.conf")
        pidfile = os.path.join(self.rundir, "rtpengine.pid")
        with open(conf, "w") as f:
            f.write(
                "[rtpengine]\ntable = -1\ninterface = 127.0.0.1\nlisten-ng = 127.0.0.1:%d\n"
                "port-min = %d\nport-max = %d\nnum-threads = %d\ntimeout = 600\n"
                "silent-timeout = 600\nlog-level = 4\n" % (c["ng_port"], pmin, pmax, c["rtpengine_threads"])
            )
        argv = [c["rtpengine_bin"], "--config-file=" + conf, "--foreground", "--log-stderr",
                "--pidfile=" + pidfile, "--table=-1"]
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=logf)
        self.pid = self.proc.pid
        ng = Ng(c["ng_port"])
        for _ in range(50):
            try:
                r = ng.call({"command": "ping"})
                if r.get("result") == b"pong":
                    break
            except RuntimeError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("rtpengine exited; see %s" % logf.name)
            time.sleep(0.1)
        t0 = time.time()
        for i in range(calls):
            cid = "bench-%d-%d" % (os.getpid(), i)
            r = ng.call({"command": "offer", "call-id": cid, "from-tag": "a%d" % i,
                         "sdp": sdp("127.0.0.2", gb + i, i)})
            if r.get("result") != b"ok":
                raise RuntimeError("offer %d: %r" % (i, r))
            b_dest = sdp_port(r["sdp"])
            r = ng.call({"command": "answer", "call-id": cid, "from-tag": "a%d" % i,
                         "to-tag": "b%d" % i, "sdp": sdp("127.0.0.3", gb + i, i)})
            if r.get("result") != b"ok":
                raise RuntimeError("answer %d: %r" % (i, r))
            a_dest = sdp_port(r["sdp"])
            self.dests.append((a_dest, b_dest))
        log("  rtpengine: pid %d, %d calls set up by ng in %.1f s" % (self.pid, calls, time.time() - t0))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # A process that used io_uring leaves its sockets to the kernel's ring teardown, which
        # finishes a moment after exit: wait until the next target can bind the same ports.
        if self.name in ("bare", "bare_uring", "sbcd", "sbcd_mmsg"):
            rb, calls = self.cfg["relay_base"], self.cfg["calls"]
            deadline = time.time() + 10
            for port in (rb, rb + 2 * calls - 1):
                while time.time() < deadline:
                    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    try:
                        probe.bind(("127.0.0.1", port))
                        break
                    except OSError:
                        time.sleep(0.1)
                    finally:
                        probe.close()


def sustained(r):
    """The target kept up: loss < 0.01%, the generator sent at >= 98% of the asked rate, and no
    standing queue (p99 one-way < 5 ms)."""
    return r["loss_pct"] < 0.01 and r["send_rate"] >= 0.98 * r["rate"] and r["p99_us"] < 5000


def run_gen(cfg, target, rate, dests_file, perf_file=None):
    argv = [os.path.join(cfg["examples"], "rtp_gen"), "--dests", dests_file, "--gen-base",
            str(cfg["gen_base"]), "--rate", str(rate), "--duration", str(cfg["duration"])]
    if cfg["bidir"]:
        argv.append("--bidir")
    g = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    t0 = c0 = None
    perf = None
    result = None
    for line in g.stdout:
        line = line.strip()
        if line == "START":
            t0, c0 = time.time(), (proc_ticks(target.pid) if target.pid else 0)
            if perf_file:
                perf = subprocess.Popen(["perf", "record", "-g", "-o", perf_file, "-p", str(target.pid)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif line == "END" and perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
            perf = None
        elif line.startswith("{"):
            result = json.loads(line)
    g.wait()
    c1 = proc_ticks(target.pid) if target.pid else 0
    wall = time.time() - t0
    if result is None or g.returncode != 0:
        raise RuntimeError("rtp_gen failed (%s)" % g.returncode)
    cpu = (c1 - c0) / CLK_TCK
    result.update(target=target.name, target_cpu_s=cpu, wall_s=round(wall, 3),
                  pps_per_cpu_s=round(result["received"] / cpu) if cpu > 0 else None,
                  target_cores=round(cpu / wall, 3),
                  sustained=sustained(result))
    return result


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(HELP)
        return
    pr = os.environ.get("RTPENGINE_PORTS", "10000:19999").split(":")
    cfg = dict(
        targets=os.environ.get("TARGETS", "direct bare sbcd sbcd_mmsg bare_uring rtpengine").split(),
        calls=env_int("CALLS", 2000),
        bidir=env_int("BIDIR", 1) == 1,
        rates=[int(x) for x in os.environ.get("RATES", "25000 50000 100000").split()],
        lat_rate=env_int("LAT_RATE", 0),
        duration=env_int("DURATION", 10),
        runs=env_int("RUNS", 3),
        cooldown=env_int("COOLDOWN", 2),
        gen_base=env_int("GEN_BASE", 20000),
        relay_base=env_int("RELAY_BASE", 24000),
        rtpengine_ports=(int(pr[0]), int(pr[1])),
        ng_port=env_int("NG_PORT", 9910),
        rtpengine_threads=env_int("RTPENGINE_THREADS", 2),
        rtpengine_bin=os.environ.get("RTPENGINE_BIN", "rtpengine"),
        examples=os.environ.get("EXAMPLES", "/tmp/rtp-bench-target/release/examples"),
        perf=env_int("PERF", 0) == 1,
    )
    out = os.environ.get("OUT", "/tmp/rtp-results")
    rundir = os.path.join(out, "run-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(rundir)
    meta = dict(cfg, started=time.strftime("%Y-%m-%d %H:%M:%S"), loadavg=open("/proc/loadavg").read().strip(),
                uname=os.uname().release, nproc=os.cpu_count())
    log("results: %s" % rundir)
    rows = []
    lat_rate = cfg["lat_rate"]
    order = list(cfg["targets"])
    if "direct" in order and "bare" in order and not lat_rate and order.index("direct") < order.index("bare"):
        # The latency phase's rate is known after bare's sweep: direct (the baseline) gets its
        # latency runs at the end.
        order.append("direct-latency")
    for name in order:
        latency_only = name == "direct-latency"
        if latency_only:
            name = "direct"
        t = Target(name, cfg, rundir)
        log("== %s" % name)
        try:
            t.start()
            dests_file = os.path.join(rundir, "dests-%s.txt" % name)
            with open(dests_file, "w") as f:
                for a, b in t.dests:
                    f.write("%s %s\n" % (a, b))
            time.sleep(1)
            phases = [("sweep", r) for r in cfg["rates"] for _ in range(cfg["runs"])]
            if latency_only:
                phases = []
            elif name == "direct" and "direct-latency" in order:
                phases.append(("no-latency", 0))
            phases.sort(key=lambda p: p[1])
            done_sweep = False
            i = 0
            while True:
                if i == len(phases) and not done_sweep:
                    done_sweep = True
                    if not lat_rate and name == "bare":
                        clean = [r for r in cfg["rates"]
                                 if all(x["sustained"] for x in rows if x["target"] == "bare" and x["rate"] == r)]
                        lat_rate = (max(clean) // 2) if clean else min(cfg["rates"]) // 2
                        log("  latency phase rate: %d (half of bare's highest sustained rate)" % lat_rate)
                    if lat_rate:
                        phases += [("latency", lat_rate)] * cfg["runs"]
                if i >= len(phases):
                    break
                phase, rate = phases[i]
                if phase == "no-latency":
                    break
                perf_file = None
                if cfg["perf"] and phase == "sweep" and rate == max(cfg["rates"]) and t.pid and \
                        not any(x["target"] == name and x["rate"] == rate for x in rows):
                    perf_file = os.path.join(rundir, "perf-%s.data" % name)
                r = run_gen(cfg, t, rate, dests_file, perf_file)
                r["phase"] = phase
                rows.append(r)
                log("  %-7s rate %6d: sent %d recv %d loss %.4f%% p50 %d p99 %d us, target cpu %.2f s (%.2f cores) -> %s pkts/cpu-s, gen cpu %.2f s, send rate %d"
                    % (phase, rate, r["sent"], r["received"], r["loss_pct"], r["p50_us"], r["p99_us"],
                       r["target_cpu_s"], r["target_cores"], r["pps_per_cpu_s"], r["gen_cpu_s"], r["send_rate"]))
                i += 1
                time.sleep(cfg["cooldown"])
        finally:
            t.stop()
    keys = ["target", "phase", "rate", "streams", "calls", "duration", "sent", "send_errors", "received", "foreign",
            "lost", "loss_pct", "streams_with_loss", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
            "send_rate", "max_burst", "gen_cpu_s", "target_cpu_s", "target_cores", "pps_per_cpu_s", "wall_s", "sustained"]
    with open(os.path.join(rundir, "rtp.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    meta["lat_rate"] = lat_rate
    with open(os.path.join(rundir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    md = summarize(rows, cfg, lat_rate)
    with open(os.path.join(rundir, "summary.md"), "w") as f:
        f.write(md)
    print(md)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, p=0):
    if x is None:
        return "-"
    return ("{:,.%df}" % p).format(x)


def summarize(rows, cfg, lat_rate):
    out = ["# RTP forwarding: %d calls, %s, %d s per run, medians of up to %d runs\n"
           % (cfg["calls"], "both directions (%d streams)" % (2 * cfg["calls"]) if cfg["bidir"] else "A -> B",
              cfg["duration"], cfg["runs"]), ""]
    out.append("| target | phase | rate (pkt/s) | runs | gen send rate | loss % (median / worst) | p50 µs | p99 µs | target cores (CPU-s per wall-s) | fwd pkts per CPU-s | gen CPU-s |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    groups = {}
    for r in rows:
        groups.setdefault((r["target"], r["phase"], r["rate"]), []).append(r)
    for (t, ph, rate), rs in groups.items():
        out.append("| %s | %s | %s | %d | %s | %s / %s | %s | %s | %s | %s | %s |" % (
            t, ph, fmt(rate), len(rs), fmt(med([x["send_rate"] for x in rs])),
            fmt(med([x["loss_pct"] for x in rs]), 4), fmt(max(x["loss_pct"] for x in rs), 4),
            fmt(med([x["p50_us"] for x in rs])), fmt(med([x["p99_us"] for x in rs])),
            fmt(med([x["target_cores"] for x in rs]), 2), fmt(med([x["pps_per_cpu_s"] for x in rs])),
            fmt(med([x["gen_cpu_s"] for x in rs]), 2)))
    out.append("")
    out.append("Highest swept rate sustained in every run (loss < 0.01%, generator at >= 98% of the rate, "
               "p99 < 5 ms: no standing queue):")
    for t in cfg["targets"]:
        clean = [rate for (tt, ph, rate), rs in groups.items() if tt == t and ph == "sweep"
                 and all(x["sustained"] for x in rs)]
        out.append("- %s: %s" % (t, fmt(max(clean)) if clean else "none"))
    out.append("")
    out.append("Latency phase at %s pkt/s; p99 one-way (send -> kernel arrival at the far socket), "
               "added = target p99 - direct p99 (medians)." % fmt(lat_rate))
    base = med([x["p99_us"] for x in rows if x["target"] == "direct" and x["phase"] == "latency"])
    for t in cfg["targets"]:
        p = med([x["p99_us"] for x in rows if x["target"] == t and x["phase"] == "latency"])
        out.append("- %s: p99 %s µs%s" % (t, fmt(p), "" if base is None or p is None or t == "direct"
                                          else ", added %s µs" % fmt(p - base)))
    out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()

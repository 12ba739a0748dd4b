//! The `sbcd` binary as an operator and systemd use it: exit statuses, check-config output,
//! and the daemon's signal handling (SIGTERM, SIGHUP). Only the children started here are ever
//! signalled, by pid, and every wait is bounded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const SBCD: &str = env!("CARGO_BIN_EXE_sbcd");
/// Generous: a loaded CI machine may be slow to start a debug binary.
const TIMEOUT: Duration = Duration::from_secs(20);

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/sbcd.toml")
}

/// The sample config with its SIP listeners on ports the kernel picks, so that tests running
/// at once (and anything else on the machine) do not collide on 5060.
fn sample_on_free_ports(name: &str) -> PathBuf {
    let dir = scratch(name);
    let path = dir.join("sbcd.toml");
    let text = std::fs::read_to_string(sample()).unwrap();
    let old = r#"listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]"#;
    assert!(
        text.contains(old),
        "the sample's listen line changed; update this test"
    );
    let admin = r#"listen = "127.0.0.1:9060""#;
    assert!(text.contains(admin), "the sample's admin.listen changed");
    std::fs::write(
        &path,
        text.replace(old, r#"listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]"#)
            .replace(admin, r#"listen = "127.0.0.1:0""#),
    )
    .unwrap();
    path
}

/// `GET path` on the admin endpoint: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    http(addr, "GET", path)
}

/// `method path` on the admin endpoint: (status line, body).
fn http(addr: &str, method: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to admin");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: sbcd\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// The `ADDR:PORT` after `key=` in a log line.
fn field(line: &str, key: &str) -> String {
    let at = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
    line[at..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

/// A scratch directory for configuration files.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sbcd-cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// `sbcd ARGS` with an environment that cannot change the outcome.
fn sbcd(args: &[&str]) -> Command {
    let mut cmd = Command::new(SBCD);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM");
    for (name, _) in std::env::vars_os() {
        if name
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("SBC__")
        {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    sbcd(args).stdin(Stdio::null()).output().expect("run sbcd")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running daemon whose stderr is read line by line. Dropping it kills the child if it is
/// still running, so a failed test leaves no process behind.
struct Daemon {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sbcd");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until a stderr line contains `needle`; returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no line with {needle:?} within {TIMEOUT:?}; stderr so far:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "sbcd closed stderr before {needle:?}; stderr:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// Sends `signal` (e.g. "TERM") to this child only.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits, bounded, for the child to exit; returns its exit code.
    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Collect what is left of stderr for the assertions that follow.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(line);
                }
                return status
                    .code()
                    .unwrap_or_else(|| panic!("sbcd died by a signal: {status}"));
            }
            assert!(
                Instant::now() < deadline,
                "sbcd did not exit within {TIMEOUT:?}; stderr:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn check_config_accepts_the_sample() {
    let out = run(&["check-config", "--config", sample().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "config OK: 2 trunks, 2 routes\n");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn check_config_lists_every_error_and_exits_78() {
    let dir = scratch("check-bad");
    let path = dir.join("bad.toml");
    let sample = std::fs::read_to_string(sample()).unwrap();
    let bad = sample
        .replace(
            "outbound.uri = \"sip:127.0.0.1:5070\"",
            "outbound.uri = \"http://x\"",
        )
        .replace("to = [\"carrier\"]", "to = [\"carrier\", \"backup\"]")
        .replace("port_max = 29999", "port_max = 20000");
    assert_ne!(bad, sample);
    std::fs::write(&path, bad).unwrap();
    let out = run(&["check-config", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "media.port_max: must be odd, so the range ends with a whole RTP/RTCP pair (got 20000)\n\
         trunk[0].outbound.uri: not a SIP URI (got \"http://x\")\n\
         route[0].to[1]: unknown trunk \"backup\"\n"
    );

    let out = run(&[
        "check-config",
        "-c",
        dir.join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}: cannot read: no such file\n",
            dir.join("missing.toml").display()
        )
    );
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        &["frobnicate", "-c", "x.toml"][..],
        &[],
        &["-c"],
        &["--verbose", "-c", "x"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(
            text(&out.stderr).starts_with("sbcd: "),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "");
    }
    assert_eq!(
        text(&run(&["frobnicate"]).stderr),
        "sbcd: unknown subcommand \"frobnicate\"\nTry 'sbcd --help'.\n"
    );
}

#[test]
fn help_and_version() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("sbcd check-config --config FILE"));
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("sbcd {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn daemon_runs_until_sigterm() {
    // Under systemd (JOURNAL_STREAM set) lines carry no timestamp: the journal adds its own.
    let mut daemon = Daemon::start(
        sbcd(&["--config", sample_on_free_ports("run").to_str().unwrap()])
            .env("JOURNAL_STREAM", "8:12345"),
    );
    let loaded = daemon.wait_for("config loaded");
    assert!(
        loaded.contains("trunks=2") && loaded.contains("routes=2"),
        "{loaded}"
    );
    assert!(
        loaded.trim_start().starts_with("INFO"),
        "no timestamp expected: {loaded}"
    );
    let bound = daemon.wait_for("SIP listener bound");
    assert!(bound.contains("listener=udp:127.0.0.1:"), "{bound}");
    let serving = daemon.wait_for("sbcd is serving SIP");
    assert!(serving.contains("INFO"), "{serving}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
    for expected in ["draining: new calls get 503", "sbcd stopped"] {
        assert!(
            daemon.seen.iter().any(|l| l.contains(expected)),
            "{expected:?} not in {:?}",
            daemon.seen
        );
    }
}

#[test]
fn admin_endpoint_counts_auth_failures_and_shows_status() {
    let path = sample_on_free_ports("admin");
    let mut daemon = Daemon::start(&mut sbcd(&["-c", path.to_str().unwrap()]));
    let bound = daemon.wait_for("listener=udp:");
    let sip = field(&bound, "listener=udp:");
    let admin = field(&daemon.wait_for("admin endpoint"), "listen=");
    daemon.wait_for("sbcd is serving SIP");
    let (status, body) = http_get(&admin, "/health");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "ok\n")
    );

    // An INVITE from an address no trunk allows: 403, counted as an allowlist failure.
    let sock = std::net::UdpSocket::bind("127.0.0.9:0").unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    let me = sock.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:12125551234@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-adm;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@{me}>;tag=a\r\nTo: <sip:12125551234@{sip}>\r\n\
         Call-ID: adm-1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(invite.as_bytes(), &sip).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("a response");
    assert!(buf[..n].starts_with(b"SIP/2.0 403 "), "{}", text(&buf[..n]));

    let (status, body) = http_get(&admin, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.contains(r#"sbc_trunk_auth_failures_total{mode="unmatched",trunk="unknown"} 1"#),
        "{body}"
    );
    let (status, body) = http_get(&admin, "/status");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for part in [
        concat!("{\"version\":\"", env!("CARGO_PKG_VERSION"), "\",\"uptime_secs\":"),
        // Ports free: the range, less those other tests' daemons hold right now.
        ",\"draining\":false,\"calls_active\":0,\"media\":{\"sessions\":0,\"ports_free\":",
        "{\"name\":\"pbx\",\"registration\":null,\"health\":null,\"calls\":{\"active\":0,\"inbound\":{\"answered\":0,",
        "{\"name\":\"carrier\",",
    ] {
        assert!(body.contains(part), "missing {part} in {body}");
    }
    // `sbcd status` prints the same as a table (from a config naming the bound admin port).
    let asked = path.with_file_name("status.toml");
    std::fs::write(
        &asked,
        std::fs::read_to_string(&path).unwrap().replace(
            r#"listen = "127.0.0.1:0""#,
            &format!(r#"listen = "{admin}""#),
        ),
    )
    .unwrap();
    let out = sbcd(&["status", "-c", asked.to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with(concat!("sbcd ", env!("CARGO_PKG_VERSION"), ", up ")),
        "{table}"
    );
    assert!(lines[3].starts_with("TRUNK "), "{table}");
    assert!(lines.iter().any(|l| l.starts_with("pbx ")), "{table}");
    assert!(lines.iter().any(|l| l.starts_with("carrier ")), "{table}");
    assert_eq!(http_get(&admin, "/nope").0, "HTTP/1.1 404 Not Found");
    assert_eq!(
        http(&admin, "DELETE", "/metrics").0,
        "HTTP/1.1 405 Method Not Allowed"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
}

#[test]
fn daemon_exits_on_sigint() {
    let path = sample_on_free_ports("sigint");
    let mut daemon = Daemon::start(&mut sbcd(&["-c", path.to_str().unwrap()]));
    daemon.wait_for("sbcd is serving SIP");
    daemon.signal("INT");
    assert_eq!(daemon.wait_exit(), 0);
}

#[test]
fn daemon_with_bad_config_exits_78_listing_every_error() {
    let dir = scratch("daemon-bad");
    let path = dir.join("sbcd.toml");
    let bad = std::fs::read_to_string(sample())
        .unwrap()
        .replace("to = [\"pbx\"]", "to = [\"pbx\", \"nowhere\"]")
        .replace("listen = \"127.0.0.1:9060\"", "listen = \"127.0.0.1\"");
    std::fs::write(&path, bad).unwrap();
    let mut daemon = Daemon::start(&mut sbcd(&["-c", path.to_str().unwrap()]));
    assert_eq!(daemon.wait_exit(), 78);
    let stderr = daemon.seen.join("\n");
    for line in [
        r#"admin.listen: not an ADDRESS:PORT socket address such as 127.0.0.1:9060 (got "127.0.0.1")"#,
        r#"route[1].to[1]: unknown trunk "nowhere""#,
    ] {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("serving SIP"), "{stderr}");
}

#[test]
fn sighup_reloads_and_keeps_running_on_errors() {
    let path = sample_on_free_ports("reload");
    let good = std::fs::read_to_string(&path).unwrap();
    let mut daemon = Daemon::start(&mut sbcd(&["-c", path.to_str().unwrap()]));
    let admin = field(&daemon.wait_for("admin endpoint"), "listen=");
    daemon.wait_for("sbcd is serving SIP");

    // A broken file: every error is logged, the daemon keeps the running config.
    std::fs::write(
        &path,
        good.replace("from = \"carrier\"", "from = \"carier\""),
    )
    .unwrap();
    daemon.signal("HUP");
    let line = daemon.wait_for("route[1].from");
    assert!(
        line.contains(r#"route[1].from: unknown trunk "carier""#),
        "{line}"
    );
    daemon.wait_for("config reload failed; keeping the running config");

    // A restart-only change is refused.
    std::fs::write(&path, good.replace("port_max = 29999", "port_max = 21999")).unwrap();
    daemon.signal("HUP");
    let line = daemon.wait_for("config reload refused");
    assert!(line.contains("media.port_max"), "{line}");

    // A good change is applied.
    let more = format!("{good}\n[[route]]\nfrom = \"pbx\"\nto = [\"pbx\"]\n");
    std::fs::write(&path, more).unwrap();
    daemon.signal("HUP");
    let line = daemon.wait_for("config reloaded");
    assert!(line.contains("routes=3"), "{line}");

    // POST /reload does the same and answers with the outcome.
    std::fs::write(
        &path,
        good.replace("from = \"carrier\"", "from = \"carier\""),
    )
    .unwrap();
    let (status, body) = http(&admin, "POST", "/reload");
    assert_eq!(status, "HTTP/1.1 422 Unprocessable Entity", "{body}");
    assert_eq!(
        body,
        "{\"result\":\"error\",\"errors\":[\"route[1].from: unknown trunk \\\"carier\\\"\"]}\n"
    );
    std::fs::write(&path, good.replace("port_max = 29999", "port_max = 21999")).unwrap();
    let (status, body) = http(&admin, "POST", "/reload");
    assert_eq!(status, "HTTP/1.1 409 Conflict", "{body}");
    assert_eq!(
        body,
        "{\"result\":\"refused\",\"restart_required\":[\"media.port_max\"]}\n"
    );
    std::fs::write(&path, &good).unwrap();
    let (status, body) = http(&admin, "POST", "/reload");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert_eq!(body, "{\"result\":\"ok\",\"trunks\":2,\"routes\":2}\n");
    assert_eq!(
        http_get(&admin, "/reload").0,
        "HTTP/1.1 405 Method Not Allowed"
    );

    // Two reloads of each result, counted.
    let (_, metrics) = http_get(&admin, "/metrics");
    for result in ["error", "refused", "ok"] {
        let sample = format!("sbc_config_reloads_total{{result=\"{result}\"}} 2");
        assert!(
            metrics.lines().any(|l| l == sample),
            "no `{sample}` in:\n{metrics}"
        );
    }

    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
}

/// The systemd notification protocol, with a NOTIFY_SOCKET this test creates (a path, then the
/// abstract namespace): READY=1 once serving, RELOADING=1 with MONOTONIC_USEC then READY=1
/// around a SIGHUP (also when the reload fails), STOPPING=1 at SIGTERM.
#[test]
fn sd_notify_ready_reloading_stopping() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    let dir = scratch("notify");
    let path = sample_on_free_ports("notify-config");
    let good = std::fs::read_to_string(&path).unwrap();
    let by_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&by_path);
    let abstract_name = format!("sbcd-test-notify-{}", std::process::id());
    let sockets = [
        (
            UnixDatagram::bind(&by_path).unwrap(),
            by_path.display().to_string(),
        ),
        (
            UnixDatagram::bind_addr(
                &SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap(),
            )
            .unwrap(),
            format!("@{abstract_name}"),
        ),
    ];
    for (sock, name) in sockets {
        sock.set_read_timeout(Some(TIMEOUT)).unwrap();
        let next = |what: &str| {
            let mut buf = [0u8; 4096];
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no notification ({what}) on {name}: {e}"));
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        std::fs::write(&path, &good).unwrap();
        let mut daemon =
            Daemon::start(sbcd(&["-c", path.to_str().unwrap()]).env("NOTIFY_SOCKET", &name));
        let ready = next("ready");
        assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
        daemon.wait_for("sbcd is serving SIP");

        // A reload that fails still ends with READY=1 (the running config stays).
        std::fs::write(
            &path,
            good.replace("from = \"carrier\"", "from = \"carier\""),
        )
        .unwrap();
        daemon.signal("HUP");
        let reloading = next("reloading");
        assert!(reloading.lines().any(|l| l == "RELOADING=1"), "{reloading}");
        let usec: u64 = reloading
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading}"))
            .parse()
            .unwrap();
        assert!(usec > 0);
        let again = next("ready after the reload");
        assert!(again.lines().any(|l| l == "READY=1"), "{again}");

        daemon.signal("TERM");
        let stopping = next("stopping");
        assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
        assert_eq!(daemon.wait_exit(), 0);
    }
}

/// The watchdog: with `WATCHDOG_USEC` set (as systemd does for `WatchdogSec=`), sbcd sends
/// `WATCHDOG=1` repeatedly, well within the interval, while its shards and media workers run;
/// a `WATCHDOG_PID` naming another process turns it off. (That it stops for a stuck part is
/// the unit test of `watchdog::Progress`.)
#[test]
fn watchdog_pings_while_healthy() {
    use std::os::unix::net::UnixDatagram;

    let dir = scratch("watchdog");
    let path = sample_on_free_ports("watchdog-config");
    let sock_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut daemon = Daemon::start(
        sbcd(&["-c", path.to_str().unwrap()])
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "2000000"),
    );
    daemon.wait_for("systemd watchdog");
    // 2 s interval: a check every 500 ms; count pings over 3 s.
    let start = Instant::now();
    let mut pings = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < Duration::from_secs(3) {
        if let Ok(n) = sock.recv(&mut buf) {
            if buf[..n].split(|&b| b == b'\n').any(|l| l == b"WATCHDOG=1") {
                pings.push(start.elapsed());
            }
        }
    }
    // One every 500 ms: at least 3 in 3 s even on a loaded machine, never 2 s apart (the
    // interval, after which systemd would kill sbcd).
    assert!(pings.len() >= 3, "WATCHDOG=1 at {pings:?}");
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g < Duration::from_secs(2)),
        "pings must come within the 2 s interval: {gaps:?}"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);

    // WATCHDOG_PID of another process: not ours to answer.
    let mut daemon = Daemon::start(
        sbcd(&["-c", path.to_str().unwrap()])
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "2000000")
            .env("WATCHDOG_PID", "1"),
    );
    daemon.wait_for("sbcd is serving SIP");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        if let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(!text.contains("WATCHDOG=1"), "{text}");
        }
    }
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
}

/// `[limits]` end to end on the daemon: an unknown source over its message rate is blocked
/// (dropped unanswered, counted, one warning), a source refused too often is blocked too, a
/// trunk's allowlisted source is never limited, and a block ends after `block_secs`.
#[test]
fn limits_block_flooding_and_refused_sources() {
    use std::net::UdpSocket;
    let path = sample_on_free_ports("limits");
    let text = std::fs::read_to_string(&path).unwrap();
    let limited = text
        .replace(
            "source_requests_per_sec = 200",
            "source_requests_per_sec = 20",
        )
        // Refusals do not block yet: the flood below is stopped by the rate alone (each of its
        // requests is refused, which would otherwise block it after 3, racing the rate).
        .replace(
            "source_auth_failures_per_min = 10",
            "source_auth_failures_per_min = 0",
        )
        .replace("block_secs = 300", "block_secs = 2");
    assert_ne!(
        limited, text,
        "the sample's [limits] changed; update this test"
    );
    std::fs::write(&path, &limited).unwrap();
    let mut daemon = Daemon::start(&mut sbcd(&["-c", path.to_str().unwrap()]));
    let sip = field(&daemon.wait_for("listener=udp:"), "listener=udp:");
    let admin = field(&daemon.wait_for("admin endpoint"), "listen=");
    daemon.wait_for("sbcd is serving SIP");

    let options = |sock: &UdpSocket, n: u32| {
        let me = sock.local_addr().unwrap();
        format!(
            "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-lim{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=l{n}\r\nTo: <sip:{sip}>\r\n\
             Call-ID: lim-{n}@{me}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // Sends `n` OPTIONS at once, then counts the answers until none came for 1.5 s (a debug
    // build sharing two cores with the other tests may take a while to answer them all).
    let burst = |sock: &UdpSocket, n: u32| -> usize {
        for i in 0..n {
            sock.send_to(options(sock, i).as_bytes(), &sip).unwrap();
        }
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let mut answers = 0;
        let mut last = Instant::now();
        while last.elapsed() < Duration::from_millis(1500) {
            if sock.recv_from(&mut buf).is_ok() {
                answers += 1;
                last = Instant::now();
            }
        }
        answers
    };

    // A stranger floods: 20 answered (403: no trunk), then nothing.
    let stranger = UdpSocket::bind("127.0.0.9:0").unwrap();
    assert_eq!(burst(&stranger, 50), 20);
    let warned = daemon.wait_for("source over its message rate");
    assert!(warned.contains("source=127.0.0.9"), "{warned}");
    let (_, metrics) = http_get(&admin, "/metrics");
    for line in [
        "sbc_sip_messages_dropped_total{reason=\"rate_limited\"} 1",
        "sbc_sip_messages_dropped_total{reason=\"blocked\"} 29",
        "sbc_sources_blocked 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in:\n{metrics}"
        );
    }
    // The PBX's allowlisted address is never limited: 100 OPTIONS, 100 answers (200).
    let pbx = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(burst(&pbx, 100), 100);

    // Refused three times (403: no trunk accepts it), a second source is blocked: the limit
    // comes with a reload (blocks and counts survive it).
    std::fs::write(
        &path,
        limited.replace(
            "source_auth_failures_per_min = 0",
            "source_auth_failures_per_min = 3",
        ),
    )
    .unwrap();
    let (status, body) = http(&admin, "POST", "/reload");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let refused = UdpSocket::bind("127.0.0.10:0").unwrap();
    for _ in 0..3 {
        assert_eq!(burst(&refused, 1), 1);
    }
    daemon.wait_for("source refused too often");
    assert_eq!(
        burst(&refused, 1),
        0,
        "blocked after 3 failures in a minute"
    );

    // block_secs (2 s) after the blocks, both are answered again (the quiet windows above
    // took 1.5 s each: wait out the rest).
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(burst(&stranger, 1), 1);
    assert_eq!(burst(&refused, 1), 1);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
}

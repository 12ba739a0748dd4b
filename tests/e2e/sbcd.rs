//! The per-test topology (addresses, ports, config file) and the `Sbcd` process guard.
//!
//! ```text
//!   PBX SIPp 127.0.0.1:P  <->  sbcd 127.0.0.1:S (udp, and tcp when the PBX leg is tcp;
//!                                    [::1]:S6 when the PBX leg is IPv6)
//!                                  <->  carrier SIPp 127.0.0.2:C
//!                                  <->  backup  SIPp 127.0.0.3:B   (failover)
//!                                  ->  Kamailio 127.0.0.4:K -> carrier   (proxy flow)
//! ```
//! Every port is asked from the kernel per test, so nothing collides with another test run,
//! a system Kamailio or the sample config's 5060.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::sipp::{Sipp, SippSpec, Transport};
use crate::util::{self, free_port, host_port, read_lossy, TestDir};

pub(crate) const PBX_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
pub(crate) const CARRIER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
pub(crate) const BACKUP_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
pub(crate) const KAMAILIO_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
pub(crate) const SBCD_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// How a test's topology differs from the plain UDP one.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// The PBX talks TCP to sbcd (the carrier leg stays UDP).
    pub(crate) pbx_tcp: bool,
    /// The PBX talks to sbcd over IPv6 (`[::1]`).
    pub(crate) pbx_v6: bool,
    /// A second carrier ("backup", 127.0.0.3) after "carrier" in the PBX route.
    pub(crate) failover: bool,
    /// sbcd reaches the carrier through Kamailio (stateful proxy, 127.0.0.4).
    pub(crate) kamailio: bool,
}

/// One side of the topology played by SIPp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) name: &'static str,
    pub(crate) addr: SocketAddr,
    pub(crate) transport: Transport,
    pub(crate) mark: &'static str,
}

/// Addresses, ports and the config of one test.
#[derive(Debug)]
pub(crate) struct Topology {
    pub(crate) test: String,
    pub(crate) dir: TestDir,
    pub(crate) opts: Options,
    /// sbcd's IPv4 socket: UDP always, TCP too when the PBX leg is TCP.
    pub(crate) sbcd: SocketAddr,
    /// sbcd's IPv6 UDP socket when the PBX leg is IPv6.
    pub(crate) sbcd_v6: Option<SocketAddr>,
    pub(crate) admin: SocketAddr,
    pub(crate) media: (u16, u16),
    pub(crate) pbx: Peer,
    pub(crate) carrier: Peer,
    pub(crate) backup: Peer,
    pub(crate) kamailio: SocketAddr,
    /// `[[trunk]]` and `[[route]]` tables replacing the default ones (trunk-mode tests).
    pub(crate) trunks: Option<String>,
    /// `media.idle_timeout_secs` instead of 600 (the media-timeout test).
    pub(crate) media_idle_secs: Option<u64>,
    /// `sip.shutdown_grace_secs` instead of 1 (the drain test).
    pub(crate) shutdown_grace_secs: Option<u64>,
}

impl Topology {
    pub(crate) fn new(test: &str, opts: Options) -> Self {
        let v4 = |ip: Ipv4Addr| SocketAddr::new(IpAddr::V4(ip), free_port(IpAddr::V4(ip)));
        let v6_ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let pbx_addr = if opts.pbx_v6 {
            SocketAddr::new(v6_ip, free_port(v6_ip))
        } else {
            v4(PBX_IP)
        };
        // RTP pool: 400 ports below the kernel's ephemeral range, varied by pid so that two
        // test processes (two engineers) rarely share one.
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let slot = (std::process::id() + SEQ.fetch_add(1, Ordering::Relaxed)) % 24;
        let media_min = 20000 + u16::try_from(slot).unwrap_or(0) * 400;
        Self {
            test: test.to_owned(),
            dir: TestDir::new(test),
            opts,
            sbcd: v4(SBCD_IP),
            sbcd_v6: opts
                .pbx_v6
                .then(|| SocketAddr::new(v6_ip, free_port(v6_ip))),
            admin: v4(SBCD_IP),
            media: (media_min, media_min + 399),
            pbx: Peer {
                name: "pbx",
                addr: pbx_addr,
                transport: if opts.pbx_tcp {
                    Transport::Tcp
                } else {
                    Transport::Udp
                },
                mark: "mkpbx",
            },
            carrier: Peer {
                name: "carrier",
                addr: v4(CARRIER_IP),
                transport: Transport::Udp,
                mark: "mkcarrier",
            },
            backup: Peer {
                name: "backup",
                addr: v4(BACKUP_IP),
                transport: Transport::Udp,
                mark: "mkbackup",
            },
            kamailio: v4(KAMAILIO_IP),
            trunks: None,
            media_idle_secs: None,
            shutdown_grace_secs: None,
        }
    }

    /// The sbcd socket the PBX talks to.
    pub(crate) fn sbcd_for_pbx(&self) -> SocketAddr {
        self.sbcd_v6.unwrap_or(self.sbcd)
    }

    pub(crate) fn sip_uri(addr: SocketAddr, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("sip:{}", host_port(addr)),
            Transport::Tcp => format!("sip:{};transport=tcp", host_port(addr)),
        }
    }

    /// The config file, with exactly the keys of ../shared/DESIGN.md: [`Self::sections`], then
    /// [`Self::trunks`] if set, else the default trunks and routes.
    pub(crate) fn config_toml(&self) -> String {
        let mut t = self.sections();
        match &self.trunks {
            Some(trunks) => t.push_str(trunks),
            None => t.push_str(&self.default_trunks()),
        }
        t
    }

    /// `[sip]`, `[media]` and `[admin]` of this topology.
    pub(crate) fn sections(&self) -> String {
        let mut listen = vec![format!("udp:{}", host_port(self.sbcd))];
        if self.opts.pbx_tcp {
            listen.push(format!("tcp:{}", host_port(self.sbcd)));
        }
        if let Some(v6) = self.sbcd_v6 {
            listen.insert(0, format!("udp:{}", host_port(v6)));
        }
        let listen: Vec<String> = listen.iter().map(|l| format!("{l:?}")).collect();
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# sbcd end-to-end test {:?}: written by tests/e2e/sbcd.rs",
            self.test
        );
        let _ = writeln!(t, "\n[sip]\nlisten = [{}]", listen.join(", "));
        if !self.opts.pbx_v6 {
            // One address family: advertise it. With IPv6 on one leg, let sbcd pick per socket.
            let _ = writeln!(t, "advertise = \"{SBCD_IP}\"");
        }
        let _ = writeln!(
            t,
            "shutdown_grace_secs = {}\nlog_level = \"debug\"",
            self.shutdown_grace_secs.unwrap_or(1)
        );
        let _ = writeln!(
            t,
            "\n[media]\nlisten = \"{SBCD_IP}\"\nadvertise = \"{SBCD_IP}\"\nport_min = {}\nport_max = {}\n\
             # SIPp sends no RTP: keep long calls up.\nidle_timeout_secs = {}",
            self.media.0,
            self.media.1,
            self.media_idle_secs.unwrap_or(600)
        );
        let _ = writeln!(t, "\n[admin]\nlisten = \"{}\"", host_port(self.admin));
        t
    }

    /// The PBX, carrier (and backup) trunks with allowlists, and routes between them.
    pub(crate) fn default_trunks(&self) -> String {
        let mut t = String::new();
        let pbx_net = match self.pbx.addr.ip() {
            IpAddr::V4(ip) => format!("{ip}/32"),
            IpAddr::V6(ip) => format!("{ip}/128"),
        };
        let _ = writeln!(
            t,
            "\n[[trunk]]\nname = \"pbx\"\ninbound.allow = [\"{pbx_net}\"]\noutbound.uri = \"{}\"",
            Self::sip_uri(self.pbx.addr, self.pbx.transport)
        );
        let (carrier_allow, carrier_uri) = if self.opts.kamailio {
            (
                format!("\"{CARRIER_IP}/32\", \"{KAMAILIO_IP}/32\""),
                Self::sip_uri(self.kamailio, Transport::Udp),
            )
        } else {
            (
                format!("\"{CARRIER_IP}/32\""),
                Self::sip_uri(self.carrier.addr, Transport::Udp),
            )
        };
        let _ = writeln!(
            t,
            "\n[[trunk]]\nname = \"carrier\"\ninbound.allow = [{carrier_allow}]\noutbound.uri = \"{carrier_uri}\""
        );
        if self.opts.failover {
            let _ = writeln!(
                t,
                "\n[[trunk]]\nname = \"backup\"\ninbound.allow = [\"{BACKUP_IP}/32\"]\noutbound.uri = \"{}\"",
                Self::sip_uri(self.backup.addr, Transport::Udp)
            );
        }
        let to = if self.opts.failover {
            "[\"carrier\", \"backup\"]"
        } else {
            "[\"carrier\"]"
        };
        let _ = writeln!(
            t,
            "\n[[route]]\nfrom = \"pbx\"\nmatch = \"^\\\\+?[0-9]+$\"\nto = {to}"
        );
        let _ = writeln!(t, "\n[[route]]\nfrom = \"carrier\"\nto = [\"pbx\"]");
        if self.opts.failover {
            let _ = writeln!(t, "\n[[route]]\nfrom = \"backup\"\nto = [\"pbx\"]");
        }
        t
    }

    pub(crate) fn write_config(&self) -> PathBuf {
        let path = self.dir.file("sbcd.toml");
        fs::write(&path, self.config_toml()).expect("write sbcd.toml");
        path
    }

    fn sipp(
        &self,
        peer: &Peer,
        scenario: &str,
        remote: Option<SocketAddr>,
        other: &Peer,
    ) -> SippSpec {
        let spec = match remote {
            Some(remote) => Sipp::uac(peer.name, scenario, peer.addr, remote),
            None => Sipp::uas(peer.name, scenario, peer.addr),
        };
        let mut spec = spec.transport(peer.transport).hide(other.addr, other.mark);
        spec.mark = peer.mark.to_owned();
        spec
    }

    /// The PBX calling through sbcd.
    pub(crate) fn pbx_uac(&self, scenario: &str) -> SippSpec {
        let callee = if self.opts.failover {
            &self.backup
        } else {
            &self.carrier
        };
        self.sipp(&self.pbx, scenario, Some(self.sbcd_for_pbx()), callee)
    }

    /// The PBX answering a call from sbcd.
    pub(crate) fn pbx_uas(&self, scenario: &str) -> SippSpec {
        self.sipp(&self.pbx, scenario, None, &self.carrier)
    }

    /// The carrier calling through sbcd.
    pub(crate) fn carrier_uac(&self, scenario: &str) -> SippSpec {
        self.sipp(&self.carrier, scenario, Some(self.sbcd), &self.pbx)
    }

    /// The carrier answering a call from sbcd.
    pub(crate) fn carrier_uas(&self, scenario: &str) -> SippSpec {
        self.sipp(&self.carrier, scenario, None, &self.pbx)
    }

    /// The failover carrier answering.
    pub(crate) fn backup_uas(&self, scenario: &str) -> SippSpec {
        self.sipp(&self.backup, scenario, None, &self.pbx)
    }
}

/// The sbcd binary: `$SBCD_BIN`, else `sbcd` next to this test's profile directory
/// (target/debug/deps/e2e-xxxx -> target/debug/sbcd), else built with `cargo build -p sbcd`.
/// `cargo test --workspace` builds it fresh; `cargo test --test e2e` alone does not rebuild it.
pub(crate) fn sbcd_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("SBCD_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in <target>/<profile>/deps")
            .to_path_buf();
        let bin = profile_dir.join("sbcd");
        if bin.is_file() {
            return bin;
        }
        let target_dir = profile_dir.parent().expect("<target>/<profile>");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(util::repo())
            .args(["build", "-p", "sbcd", "--bin", "sbcd", "--target-dir"])
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        eprintln!("e2e: {} not found, running {cmd:?}", bin.display());
        let mut child = cmd.spawn().expect("run cargo build -p sbcd");
        let status = util::wait_child(&mut child, Duration::from_secs(900));
        let Some(status) = status else {
            let _ = child.kill();
            panic!("cargo build -p sbcd took more than 15 minutes");
        };
        assert!(status.success(), "cargo build -p sbcd failed: {status}");
        assert!(
            bin.is_file(),
            "cargo build -p sbcd did not produce {}",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Removes the `SBC__*` overrides the daemon would read from our environment.
fn clean_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("SBC__")
        {
            cmd.env_remove(name);
        }
    }
}

/// `sbcd check-config --config FILE`: (exit code, output).
pub(crate) fn check_config(config: &Path) -> (Option<i32>, String) {
    let mut cmd = Command::new(sbcd_binary());
    cmd.arg("check-config").arg("--config").arg(config);
    clean_env(&mut cmd);
    let out = cmd.output().expect("run sbcd check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Set once a test saw sbcd not answer OPTIONS: later tests wait less, so a daemon that does
/// not carry SIP yet costs seconds per test, not ten.
static NEVER_ANSWERED: AtomicBool = AtomicBool::new(false);

/// A running `sbcd --config FILE`; stopped by pid (SIGTERM, then SIGKILL) when dropped, and its
/// log printed if the test is failing.
#[derive(Debug)]
pub(crate) struct Sbcd {
    child: Child,
    pub(crate) config: PathBuf,
    log: PathBuf,
    admin: SocketAddr,
}

impl Sbcd {
    /// Writes the topology's config, checks it with `sbcd check-config`, starts the daemon and
    /// waits until it answers an OPTIONS.
    pub(crate) fn start(topo: &Topology) -> Self {
        Self::start_with(topo, &[], "sbcd.log")
    }

    /// [`start`](Self::start) with extra environment variables (e.g. `NOTIFY_SOCKET`) and
    /// the log in `log_name` (a restart keeps the first run's log).
    pub(crate) fn start_with(
        topo: &Topology,
        env: &[(&str, &std::ffi::OsStr)],
        log_name: &str,
    ) -> Self {
        let config = topo.write_config();
        let (code, output) = check_config(&config);
        assert_eq!(
            code,
            Some(0),
            "HARNESS PROBLEM: sbcd check-config rejects the config the harness wrote ({}):\n{output}\n--- config:\n{}",
            config.display(),
            topo.config_toml()
        );
        let log = topo.dir.file(log_name);
        let out = File::create(&log).expect("create the sbcd log");
        let err = out.try_clone().expect("clone file handle");
        let mut cmd = Command::new(sbcd_binary());
        cmd.arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        clean_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn sbcd");
        let mut sbcd = Self {
            child,
            config,
            log,
            admin: topo.admin,
        };
        sbcd.wait_ready(topo);
        sbcd
    }

    fn wait_ready(&mut self, topo: &Topology) {
        // Probe the socket a trunk's address may use: the PBX's when it speaks UDP, else the
        // carrier's (the IPv4 UDP socket, from 127.0.0.2).
        let (target, source) = if topo.opts.pbx_tcp {
            (topo.sbcd, IpAddr::V4(CARRIER_IP))
        } else {
            (topo.sbcd_for_pbx(), topo.pbx.addr.ip())
        };
        let earlier_failure = NEVER_ANSWERED.load(Ordering::Relaxed);
        let limit = Duration::from_secs(if earlier_failure { 3 } else { 10 });
        match options_probe(target, source, limit, Some(&mut self.child)) {
            Ok(_) => {}
            Err(why) => {
                NEVER_ANSWERED.store(true, Ordering::Relaxed);
                panic!(
                    "SBCD NOT READY: {why} (probe: OPTIONS to udp {} from {source}){}.\n\
                     sbcd does not carry SIP yet, or failed to start: see its log below.\n\
                     config {}:\n{}\n--- sbcd log (tail):\n{}",
                    host_port(target),
                    if earlier_failure {
                        "; an earlier test saw the same, so waited 3 s"
                    } else {
                        ""
                    },
                    self.config.display(),
                    topo.config_toml(),
                    util::tail(&read_lossy(&self.log), 60)
                );
            }
        }
    }

    /// Secrets of the config (`password = "…"`, header `value = "…"`) found in sbcd's log (it
    /// runs at debug level) or in its `/status`: each one a problem (issue 7: credentials never
    /// appear in logs or status).
    pub(crate) fn leaked_secrets(&self) -> Vec<String> {
        let config = read_lossy(&self.config);
        let mut secrets = Vec::new();
        for key in ["password = \"", "value = \""] {
            let mut rest = config.as_str();
            while let Some(at) = rest.find(key) {
                rest = &rest[at + key.len()..];
                if let Some(end) = rest.find('"') {
                    if end >= 3 && !secrets.contains(&&rest[..end]) {
                        secrets.push(&rest[..end]);
                    }
                }
            }
        }
        let log = read_lossy(&self.log);
        let status = util::http_get(self.admin, "/status")
            .map(|(_, body)| body)
            .unwrap_or_default();
        let mut problems = Vec::new();
        for secret in secrets {
            for (what, text) in [("log", &log), ("/status", &status)] {
                if text.contains(secret) {
                    let line = text.lines().find(|l| l.contains(secret)).unwrap_or("");
                    problems.push(format!(
                        "a secret of the config appears in sbcd's {what}: {line}"
                    ));
                }
            }
        }
        problems
    }

    /// SIGKILL (a crash as the kernel sees it) and reap: nothing of sbcd's shutdown runs.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// sbcd's resident memory now (VmRSS), in KiB.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Panics if sbcd exited (crashed) while the test ran.
    pub(crate) fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "sbcd exited during the test ({status}); log (tail):\n{}",
                util::tail(&read_lossy(&self.log), 80)
            );
        }
    }

    /// Sends SIGTERM (by pid) and waits at most `limit` for sbcd to exit: `None` if it is still
    /// running then (dropping the guard still stops it, with SIGKILL after its grace).
    pub(crate) fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        util::wait_child(&mut self.child, limit)
    }

    /// Sends `signal` (a `kill -s` name: "HUP", "TERM") to sbcd, by pid.
    pub(crate) fn signal(&self, signal: &str) -> Result<(), String> {
        let status = Command::new("kill")
            .arg("-s")
            .arg(signal)
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("run kill -s {signal}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -s {signal} {}: {status}", self.child.id()))
        }
    }

    /// Waits at most `limit` for sbcd to exit on its own (sends nothing): `None` if it is
    /// still running then.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        util::wait_child(&mut self.child, limit)
    }

    /// `GET /metrics` from the admin listener.
    pub(crate) fn metrics(&self) -> Result<String, String> {
        match util::http_get(self.admin, "/metrics")? {
            (200, body) => Ok(body),
            (code, body) => Err(format!("GET /metrics: {code} {body}")),
        }
    }

    /// sbcd's whole log so far.
    pub(crate) fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// The tail of sbcd's log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        util::tail(&read_lossy(&self.log), lines)
    }
}

impl Drop for Sbcd {
    fn drop(&mut self) {
        let status = util::stop_child(&mut self.child, Duration::from_secs(3));
        if thread::panicking() {
            eprintln!(
                "--- sbcd (config {}) stopped: {status:?}; log (tail):\n{}",
                self.config.display(),
                self.log_tail(120)
            );
        }
    }
}

/// Sends a minimal OPTIONS to `target` from `source` (any port) every 250 ms until any SIP
/// response comes back (`Ok(status line)`) or `limit` passes. Gives up early if `child` exits.
pub(crate) fn options_probe(
    target: SocketAddr,
    source: IpAddr,
    limit: Duration,
    mut child: Option<&mut Child>,
) -> Result<String, String> {
    let sock = UdpSocket::bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("cannot bind a probe socket on {source}: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(250)))
        .map_err(|e| e.to_string())?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let (me, them) = (host_port(local), host_port(target));
    let tag = format!("{}{}", std::process::id(), local.port());
    let request = format!(
        "OPTIONS sip:{them} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-e2e-probe-{tag};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{me}>;tag=probe{tag}\r\n\
         To: <sip:{them}>\r\n\
         Call-ID: e2e-probe-{tag}@{}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: <sip:probe@{me}>\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n",
        local.ip()
    );
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 65535];
    while Instant::now() < deadline {
        if let Some(child) = child.as_deref_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the process exited ({status}) before answering"));
            }
        }
        let _ = sock.send_to(request.as_bytes(), target);
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let reply = String::from_utf8_lossy(&buf[..n]);
            if reply.starts_with("SIP/2.0 ") {
                return Ok(reply.lines().next().unwrap_or("").to_owned());
            }
        }
    }
    Err(format!(
        "no SIP response to OPTIONS within {} s",
        limit.as_secs()
    ))
}

//! SIPVicious against a running sbcd (issue 7, hostile traffic): svmap (find SIP devices),
//! svwar (enumerate extensions) and svcrack (guess a digest password), each from a loopback
//! source that no trunk allows, while the allowlisted PBX still calls the carrier.
//!
//! ```text
//!   svmap 127.0.0.20 / svwar 127.0.0.21 / svcrack 127.0.0.22 (+ control 127.0.0.23)
//!        -> sbcd 127.0.0.1:S   [[trunk]] pbx (allow 127.0.0.1), carrier (allow 127.0.0.2),
//!                              office (digest users pbx1 and 2001, registers), [limits]
//!   PBX SIPp 127.0.0.1 -> sbcd -> carrier SIPp 127.0.0.2   (during or after each scan)
//! ```
//! Tools: Debian's `sipvicious` 0.3.3 (`svmap`, `svwar`, `svcrack` in /usr/bin). Its svwar and
//! svcrack accept `-b BINDINGIP` but never use it (their `main()` does not pass it on), so
//! from an unbound socket they would send from 127.0.0.1, the PBX's allowlisted address. Each
//! tool therefore runs under [`SHIM`], a few lines of Python that bind its wildcard socket to
//! the scanner's address; every response the tool prints (`--debug` / `-d`) is checked to
//! have been sent to that address. svcrack speaks MD5 only (it crashes on a SHA-256
//! challenge), so the office trunk offers MD5 alone: the worst case for the operator.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::checks::Expect;
use crate::sbcd::{Sbcd, Topology, CARRIER_IP, SBCD_IP};
use crate::sip::{param, SipMsg};
use crate::sipp::SippRun;
use crate::util::{self, free_port, host_port, read_lossy, serial, TestDir};
use crate::{finish, leg_checks, run_call};

/// Sources of the scans: in no trunk's `inbound.allow`, and no trunk's outbound target.
const SVMAP_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 20);
const SVWAR_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);
const SVCRACK_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 22);
/// svcrack with a short list: shows it cracks sbcd's digest when it is not blocked.
const CONTROL_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 23);
/// Wrong credentials for a real and for an unknown user (two failures, under the limit).
const WRONG_CREDS_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 24);

const REALM: &str = "sbc.test";
/// The digest users of the office trunk (a PBX that registers).
const USERS: &[(&str, &str)] = &[("pbx1", "Tr0ub4dor-pbx1"), ("2001", "Tr0ub4dor-2001")];
/// `[limits] source_auth_failures_per_min` of these tests.
const AUTH_FAILURES: u32 = 5;
/// svwar's dictionary: the real usernames first (svwar stops at its first answer, see
/// [`svwar_cannot_tell_real_users_from_fake`]), then common guesses.
const DICTIONARY: &[&str] = &["pbx1", "2001", "admin", "1000", "100", "office", "test"];

/// Binds the wildcard socket of a SIPVicious tool to `$SV_BIND`, then runs the tool (argv[1]).
const SHIM: &str = r#"# tests/e2e/scanners.rs: run a SIPVicious tool with its socket bound to $SV_BIND
# (svwar and svcrack 0.3.3 ignore their -b option).
import os, runpy, socket, sys
bind_ip = os.environ["SV_BIND"]
plain_bind = socket.socket.bind
def bind(self, addr):
    if addr[0] in ("", "0.0.0.0"):
        addr = (bind_ip,) + tuple(addr[1:])
    return plain_bind(self, addr)
socket.socket.bind = bind
tool = os.path.realpath(sys.argv[1])
sys.path.insert(0, os.path.dirname(tool))
sys.argv = sys.argv[1:]
runpy.run_path(tool, run_name="__main__")
"#;

// === topology ===

/// PBX and carrier allowlisted as in the default topology, an office PBX that registers with
/// digest (anyone may try), and `[limits]` with [`AUTH_FAILURES`].
fn topology(test: &str) -> Topology {
    let mut topo = Topology::new(test, crate::sbcd::Options::default());
    let users: Vec<String> = USERS
        .iter()
        .map(|(u, p)| format!("{{ username = \"{u}\", password = \"{p}\" }}"))
        .collect();
    topo.trunks = Some(format!(
        "\n[limits]\nsource_requests_per_sec = 200\nsource_auth_failures_per_min = {AUTH_FAILURES}\n\
         block_secs = 300\n\
         \n[[trunk]]\nname = \"pbx\"\ninbound.allow = [\"{}/32\"]\noutbound.uri = \"{}\"\n\
         \n[[trunk]]\nname = \"carrier\"\ninbound.allow = [\"{CARRIER_IP}/32\"]\noutbound.uri = \"{}\"\n\
         \n[[trunk]]\nname = \"office\"\n\
         inbound.digest = {{ realm = \"{REALM}\", algorithms = [\"MD5\"], users = [{}] }}\n\
         inbound.register = true\n\
         \n[[route]]\nfrom = \"pbx\"\nmatch = \"^\\\\+?[0-9]+$\"\nto = [\"carrier\"]\n\
         \n[[route]]\nfrom = \"office\"\nto = [\"carrier\"]\n\
         \n[[route]]\nfrom = \"carrier\"\nto = [\"pbx\"]\n",
        topo.pbx.addr.ip(),
        Topology::sip_uri(topo.pbx.addr, topo.pbx.transport),
        Topology::sip_uri(topo.carrier.addr, topo.carrier.transport),
        users.join(", ")
    ));
    topo
}

// === running a SIPVicious tool ===

/// `/usr/bin/<tool>` (or wherever PATH has it), with the hint to install it.
fn tool_path(tool: &str) -> PathBuf {
    util::find_program(tool).unwrap_or_else(|| {
        panic!("{tool} not found in PATH: install Debian's sipvicious (apt-get install sipvicious)")
    })
}

/// The interpreter of a script: its `#!` line (Debian's python3, which finds the package).
fn interpreter(script: &Path) -> String {
    let text = read_lossy(&fs::canonicalize(script).unwrap_or_else(|_| script.to_path_buf()));
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .and_then(|l| l.split_whitespace().next())
        .map_or_else(|| "python3".to_owned(), str::to_owned)
}

/// One tool invocation: `name` names its output file in the test directory.
struct Sv {
    name: String,
    tool: &'static str,
    source: Ipv4Addr,
    args: Vec<String>,
}

impl Sv {
    /// `tool` from `source` (bound with [`SHIM`], and `-b`/`-x` for its own headers) with a
    /// local port of its own, and `args` (target last).
    fn new(name: &str, tool: &'static str, source: Ipv4Addr, args: &[&str]) -> Self {
        let ip = source.to_string();
        let port = free_port(IpAddr::V4(source)).to_string();
        let mut all: Vec<String> = ["-b", &ip, "-x", &ip, "-P", &port]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        all.extend(args.iter().map(|s| (*s).to_owned()));
        Self {
            name: name.to_owned(),
            tool,
            source,
            args: all,
        }
    }

    fn spawn(self, dir: &TestDir) -> SvProc {
        let shim = dir.file("sipvicious-bind.py");
        if !shim.is_file() {
            fs::write(&shim, SHIM).expect("write sipvicious-bind.py");
        }
        let tool = tool_path(self.tool);
        let output = dir.file(&format!("{}.out", self.name));
        let out = fs::File::create(&output).expect("create tool output file");
        let err = out.try_clone().expect("clone file handle");
        let mut cmd = Command::new(interpreter(&tool));
        cmd.arg(&shim)
            .arg(&tool)
            .args(&self.args)
            .env("SV_BIND", self.source.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let command_line = format!("SV_BIND={} {cmd:?}", self.source);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command_line}: {e}"));
        SvProc {
            sv: self,
            child: Some(child),
            output,
            command_line,
        }
    }
}

/// A running tool; killed by pid if dropped before [`SvProc::wait`].
struct SvProc {
    sv: Sv,
    child: Option<Child>,
    output: PathBuf,
    command_line: String,
}

impl SvProc {
    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits at most `limit` (then stops it by pid) and reads what it printed.
    fn wait(mut self, limit: Duration) -> SvRun {
        let mut child = self.child.take().expect("waited once");
        let status = util::wait_child(&mut child, limit);
        let killed = status.is_none();
        if killed {
            let _ = util::stop_child(&mut child, Duration::from_secs(2));
        }
        let output = read_lossy(&self.output);
        let responses = output.lines().filter_map(py_bytes).collect::<Vec<_>>();
        SvRun {
            name: self.sv.name.clone(),
            source: self.sv.source,
            command_line: self.command_line.clone(),
            exit: status.and_then(|s| s.code()),
            killed,
            responses: responses
                .iter()
                .filter_map(|r| SipMsg::parse(r))
                .filter(|m| !m.is_request())
                .collect(),
            output,
        }
    }
}

impl Drop for SvProc {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = util::stop_child(child, Duration::from_secs(2));
        }
    }
}

/// What one tool run printed, and the SIP responses it logged.
struct SvRun {
    name: String,
    source: Ipv4Addr,
    command_line: String,
    exit: Option<i32>,
    killed: bool,
    output: String,
    responses: Vec<SipMsg>,
}

impl SvRun {
    fn report(&self) -> String {
        format!(
            "--- {} ({}): exit {:?}{}\n{}\n{}",
            self.name,
            self.command_line,
            self.exit,
            if self.killed {
                ", killed at its time limit"
            } else {
                ""
            },
            util::tail(&self.output, 40),
            self.responses
                .iter()
                .map(|m| format!("  <- {}", m.summary()))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// The tool ended by itself, and every response it logged went to its scanner address
    /// (else the test did not scan from where it claims).
    fn harness_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.killed || self.exit != Some(0) {
            problems.push(format!(
                "HARNESS: {} did not end cleanly (exit {:?}, killed {})",
                self.name, self.exit, self.killed
            ));
        }
        if self.output.contains("Traceback") {
            problems.push(format!("HARNESS: {} crashed (Python traceback)", self.name));
        }
        for m in &self.responses {
            let received = m
                .vias()
                .first()
                .and_then(|v| param(v, "received").map(str::to_owned));
            if received.as_deref() != Some(self.source.to_string().as_str()) {
                problems.push(format!(
                    "HARNESS: {} got a response for a request from {received:?}, not from {}: {}",
                    self.name,
                    self.source,
                    m.summary()
                ));
            }
        }
        problems
    }
}

/// A line `b'...'` / `b"..."` (Python's repr of the bytes a tool received), unescaped.
fn py_bytes(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix('b')?;
    let quote = rest.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    let inner = rest[1..].strip_suffix(quote)?;
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next()? {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'x' => {
                let hex = [bytes.next()?, bytes.next()?];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            other => out.push(other),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

// === what a response may show ===

/// What a response to a scanner reveals beyond "a SIP server": a Server / User-Agent other
/// than the bare "sbcd" (no version), a body, a Warning or Organization header, a trunk's
/// address, or any IPv4 address in sbcd's own headers but sbcd's and the scanner's.
fn internals(m: &SipMsg, scanner: Ipv4Addr, topo: &Topology) -> Vec<String> {
    let mut problems = Vec::new();
    let what = m.summary();
    for name in ["server", "user-agent"] {
        for v in m.headers(name) {
            if v != "sbcd" {
                problems.push(format!(
                    "{name}: {v:?} in {what}: a scanner should learn no more than \"sbcd\""
                ));
            }
        }
    }
    for name in ["warning", "organization", "record-route"] {
        if let Some(v) = m.header(name) {
            problems.push(format!("{name}: {v:?} in {what}"));
        }
    }
    if !m.body.trim().is_empty() {
        problems.push(format!("a body in {what}: {:?}", m.body));
    }
    let text = m.to_string();
    for peer in [&topo.pbx, &topo.carrier] {
        if text.contains(&host_port(peer.addr)) {
            problems.push(format!(
                "the {} trunk's address {} in {what}",
                peer.name,
                host_port(peer.addr)
            ));
        }
    }
    // From, To and Call-ID echo the scanner's request (svmap writes 1.1.1.1 there).
    for line in text.lines().skip(1) {
        let lower = line.to_ascii_lowercase();
        if ["from:", "to:", "call-id:"]
            .iter()
            .any(|h| lower.starts_with(h))
        {
            continue;
        }
        for token in line.split(|c: char| !c.is_ascii_digit() && c != '.') {
            if let Ok(ip) = token.parse::<Ipv4Addr>() {
                if ip != SBCD_IP && ip != scanner {
                    problems.push(format!("the address {ip} in {what}: {line}"));
                }
            }
        }
    }
    problems
}

/// The response with what differs per request masked: the values of the headers that echo
/// the request (Via, From, To, Call-ID, CSeq) and the digest nonce. Two requests that differ
/// only in the user must get the same shape, or the user can be told apart.
fn shape(m: &SipMsg) -> String {
    let mut out = Vec::new();
    for line in m.to_string().lines() {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(": ") else {
            out.push(line.to_owned());
            continue;
        };
        let value = match name {
            "via" | "from" | "to" | "call-id" | "cseq" => "*".to_owned(),
            "www-authenticate" | "proxy-authenticate" => mask_nonce(value),
            _ => value.to_owned(),
        };
        out.push(format!("{name}: {value}"));
    }
    out.join(" | ")
}

fn mask_nonce(value: &str) -> String {
    let Some(at) = value.find("nonce=\"") else {
        return value.to_owned();
    };
    let start = at + "nonce=\"".len();
    let end = value[start..].find('"').map_or(value.len(), |e| start + e);
    format!("{}*{}", &value[..start], &value[end..])
}

/// The user of the To header (`"x"<sip:USER@host>`).
fn to_user(m: &SipMsg) -> String {
    m.header("to")
        .and_then(|v| v.split_once("sip:"))
        .and_then(|(_, rest)| rest.split(['@', '>', ';']).next())
        .unwrap_or("?")
        .to_owned()
}

// === metrics ===

/// The sum of every sample of `name` (0 when sbcd has none yet).
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    util::metric(text, name, labels).unwrap_or(0.0)
}

/// sbcd holds no call and no media now, and never started a call but the PBX's and the
/// carrier's: what a scan must leave behind.
fn no_call_state(sbcd: &Sbcd, after: &str) -> Vec<String> {
    let text = match sbcd.metrics() {
        Ok(text) => text,
        Err(e) => return vec![format!("after {after}: {e}")],
    };
    let mut problems = Vec::new();
    for (name, what) in [
        ("sbc_calls_active", "calls in progress"),
        ("sbc_rtp_sessions_active", "media sessions"),
    ] {
        let n = metric_sum(&text, name);
        if n != 0.0 {
            problems.push(format!("after {after}: {name} = {n}: {what} remain"));
        }
    }
    for line in text.lines().filter(|l| l.starts_with("sbc_calls_total{")) {
        let legit = ["pbx", "carrier"]
            .iter()
            .any(|t| line.contains(&format!("trunk=\"{t}\"")));
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if !legit && value != Some(0.0) {
            problems.push(format!(
                "after {after}: a call that is not the PBX's: {line}"
            ));
        }
    }
    problems
}

// === the PBX's call ===

/// The PBX calls the carrier; the call's checks are added to `problems`.
fn pbx_call(topo: &Topology, problems: &mut Vec<String>) -> (SippRun, SippRun) {
    let (pbx, mut callees) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml"),
        vec![topo.carrier_uas("uas_basic.xml")],
    );
    let carrier = callees.remove(0);
    problems.extend(leg_checks(&pbx, &carrier, &Expect::default()));
    (pbx, carrier)
}

/// Fails the test with the tools' output too.
fn finish_scan(
    sbcd: &mut Sbcd,
    title: &str,
    tools: &[&SvRun],
    calls: &[&SippRun],
    problems: &[String],
) {
    if !problems.is_empty() {
        for t in tools {
            eprintln!("{}", t.report());
        }
    }
    finish(sbcd, title, calls, problems);
}

// === the tests ===

/// svmap (OPTIONS, then INVITE) finds sbcd or not, but learns only "sbcd", and no call
/// state is created; then the PBX's call goes through.
#[test]
fn svmap_learns_nothing_inside() {
    let _serial = serial();
    let topo = topology("scanners_svmap");
    let mut sbcd = Sbcd::start(&topo);
    let target = topo.sbcd.ip().to_string();
    let port = topo.sbcd.port().to_string();
    let mut problems = Vec::new();
    let mut runs = Vec::new();
    for method in ["OPTIONS", "INVITE"] {
        let run = Sv::new(
            &format!("svmap-{method}"),
            "svmap",
            SVMAP_IP,
            &["-p", &port, "-m", method, "-d", &target],
        )
        .spawn(&topo.dir)
        .wait(Duration::from_secs(20));
        problems.extend(run.harness_problems());
        for m in &run.responses {
            problems.extend(internals(m, SVMAP_IP, &topo));
        }
        let found = run.output.contains(&host_port(topo.sbcd));
        eprintln!(
            "svmap -m {method}: sbcd {}; responses {:?}",
            if found { "found" } else { "not found" },
            run.responses
                .iter()
                .map(|m| format!("{} (Server {:?})", m.start, m.header("server")))
                .collect::<Vec<_>>()
        );
        if found {
            // svmap's "User Agent" column is the Server header: checked above.
            if run.responses.is_empty() {
                problems.push(format!(
                    "HARNESS: svmap -m {method} lists sbcd but logged no response (-d)"
                ));
            }
        } else if !run.responses.is_empty() {
            problems.push(format!(
                "HARNESS: svmap -m {method} got responses but does not list sbcd"
            ));
        }
        problems.extend(no_call_state(&sbcd, &format!("svmap -m {method}")));
        runs.push(run);
    }
    let (pbx, carrier) = pbx_call(&topo, &mut problems);
    let tools: Vec<&SvRun> = runs.iter().collect();
    finish_scan(
        &mut sbcd,
        "svmap (OPTIONS, INVITE) from 127.0.0.20 learns only \"sbcd\", creates no call; the PBX's call goes through",
        &tools,
        &[&pbx, &carrier],
        &problems,
    );
}

/// One request of the sweep: `method` for `user`, from `sock`, to sbcd at `to`.
fn request(method: &str, user: &str, sock: &UdpSocket, to: SocketAddr, n: usize) -> String {
    let me = sock.local_addr().map(host_port).unwrap_or_default();
    let them = host_port(to);
    let ruri = if method == "REGISTER" {
        format!("sip:{them}")
    } else {
        format!("sip:{user}@{them}")
    };
    format!(
        "{method} {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-e2e-sweep-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{them}>;tag=sweep{n}\r\n\
         To: <sip:{user}@{them}>\r\n\
         Call-ID: e2e-sweep-{n}@{me}\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:{user}@{me}>\r\n\
         Expires: 60\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends `text` and returns the first response (1 s at most).
fn exchange(sock: &UdpSocket, to: SocketAddr, text: &str) -> Result<SipMsg, String> {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
    sock.send_to(text.as_bytes(), to)
        .map_err(|e| format!("send to {to}: {e}"))?;
    let mut buf = [0u8; 65535];
    let (n, _) = sock
        .recv_from(&mut buf)
        .map_err(|e| format!("no answer within 1 s ({e})"))?;
    SipMsg::parse(&String::from_utf8_lossy(&buf[..n])).ok_or_else(|| "unparsable answer".into())
}

/// Every user of `users` with `method` from `source`, paced under the rate limit: the users
/// whose answer has another shape than the first user's, with both shapes.
fn sweep(to: SocketAddr, source: Ipv4Addr, method: &str, users: &[String]) -> Vec<String> {
    let sock = match UdpSocket::bind(SocketAddr::new(IpAddr::V4(source), 0)) {
        Ok(s) => s,
        Err(e) => return vec![format!("HARNESS: cannot bind {source}: {e}")],
    };
    let mut problems = Vec::new();
    let mut first: Option<(String, String)> = None;
    for (n, user) in users.iter().enumerate() {
        let answer = exchange(&sock, to, &request(method, user, &sock, to, n));
        // 140 requests a second at most: [limits] source_requests_per_sec is 200.
        thread::sleep(Duration::from_millis(6));
        let m = match answer {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("{method} for {user:?} from {source}: {e}"));
                continue;
            }
        };
        let s = shape(&m);
        match &first {
            None => first = Some((user.clone(), s)),
            Some((u0, s0)) if *s0 != s => problems.push(format!(
                "{method} for {user:?} is answered differently from {method} for {u0:?}:\n      {s}\n   vs {s0}"
            )),
            Some(_) => {}
        }
    }
    problems
}

/// A REGISTER with a digest response that cannot be right, for `user`, after a challenge of
/// its own: the final answer.
fn wrong_credentials(
    sock: &UdpSocket,
    to: SocketAddr,
    user: &str,
    n: usize,
) -> Result<SipMsg, String> {
    let plain = request("REGISTER", user, sock, to, n);
    let challenge = exchange(sock, to, &plain)?;
    let nonce = challenge
        .header("www-authenticate")
        .and_then(|v| v.split("nonce=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .ok_or_else(|| format!("no nonce in the challenge: {}", challenge.summary()))?
        .to_owned();
    let creds = format!(
        "Authorization: Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", \
         uri=\"sip:{}\", response=\"{}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"e2e{n}\"\r\n",
        host_port(to),
        "0".repeat(32)
    );
    let again = request("REGISTER", user, sock, to, n + 1)
        .replace("CSeq: 1 REGISTER", "CSeq: 2 REGISTER")
        .replace(
            "Content-Length: 0\r\n",
            &format!("{creds}Content-Length: 0\r\n"),
        );
    exchange(sock, to, &again)
}

/// svwar (REGISTER and INVITE, extensions 100-300, then a dictionary holding the real digest
/// users) finds no extension: sbcd challenges every user alike, so svwar either gives up at
/// its first check ("authentication request for an unknown extension") or, forced, stops at
/// its first answer, which looks like the unknown user's. The same sweep done here over every
/// name and both methods finds no answer that differs, and a wrong password for a real user
/// gets the same 403 as any password for an unknown one.
#[test]
fn svwar_cannot_tell_real_users_from_fake() {
    let _serial = serial();
    let topo = topology("scanners_svwar");
    let mut sbcd = Sbcd::start(&topo);
    let dictionary = topo.dir.file("svwar-dictionary.txt");
    fs::write(&dictionary, DICTIONARY.join("\n") + "\n").expect("write dictionary");
    let dictionary = dictionary.display().to_string();
    let target = topo.sbcd.ip().to_string();
    let port = topo.sbcd.port().to_string();
    let mut problems = Vec::new();
    let mut runs = Vec::new();
    for method in ["REGISTER", "INVITE"] {
        for (label, how) in [
            ("range", ["-e", "100-300"]),
            ("dictionary-forced", ["--force", "-d"]),
        ] {
            let mut args = vec![
                "-p",
                &port,
                "-m",
                method,
                "-t",
                "0.01",
                "--maximumtime",
                "3",
            ];
            args.extend(how);
            if label == "dictionary-forced" {
                args.push(&dictionary);
            }
            args.extend(["--debug", &target]);
            let name = format!("svwar-{method}-{label}");
            let run = Sv::new(&name, "svwar", SVWAR_IP, &args)
                .spawn(&topo.dir)
                .wait(Duration::from_secs(30));
            problems.extend(run.harness_problems());
            for line in run.output.lines() {
                if line.contains(" exists") || line.contains("| Extension") {
                    problems.push(format!("{name} reports an extension: {line}"));
                }
            }
            if !run.output.contains("found nothing") {
                problems.push(format!("{name} does not say \"found nothing\""));
            }
            for m in &run.responses {
                problems.extend(internals(m, SVWAR_IP, &topo));
            }
            // Its answers, whichever user they are for, look alike.
            let shapes: Vec<(String, String)> = run
                .responses
                .iter()
                .map(|m| (to_user(m), shape(m)))
                .collect();
            if let Some((u0, s0)) = shapes.first() {
                for (u, s) in &shapes[1..] {
                    if s != s0 {
                        problems.push(format!(
                            "{name}: the answer for {u:?} differs from the one for {u0:?}:\n      {s}\n   vs {s0}"
                        ));
                    }
                }
            } else {
                problems.push(format!("HARNESS: {name} logged no response"));
            }
            if label == "dictionary-forced" && !shapes.iter().any(|(u, _)| u == DICTIONARY[0]) {
                problems.push(format!(
                    "HARNESS: {name} never got an answer for the real user {:?}",
                    DICTIONARY[0]
                ));
            }
            eprintln!(
                "{name}: {} answers {:?}",
                shapes.len(),
                run.responses
                    .iter()
                    .map(|m| format!("{} -> {}", to_user(m), m.start))
                    .collect::<Vec<_>>()
            );
            runs.push(run);
        }
    }
    // What svwar could not finish: every name, both methods.
    let mut names: Vec<String> = DICTIONARY.iter().map(|s| (*s).to_owned()).collect();
    names.extend((100..=300).map(|n: u32| n.to_string()));
    names.push("ghost-4711".to_owned());
    for method in ["REGISTER", "INVITE"] {
        let differ = sweep(topo.sbcd, SVWAR_IP, method, &names);
        eprintln!(
            "sweep: {method} for {} names from {SVWAR_IP}: {} answered otherwise or not at all",
            names.len(),
            differ.len()
        );
        problems.extend(differ);
    }
    // Wrong credentials: a real user and an unknown one get the same 403.
    match UdpSocket::bind(SocketAddr::new(IpAddr::V4(WRONG_CREDS_IP), 0)) {
        Err(e) => problems.push(format!("HARNESS: cannot bind {WRONG_CREDS_IP}: {e}")),
        Ok(sock) => {
            let real = wrong_credentials(&sock, topo.sbcd, USERS[1].0, 100);
            let ghost = wrong_credentials(&sock, topo.sbcd, "ghost-4711", 200);
            match (real, ghost) {
                (Ok(real), Ok(ghost)) => {
                    if real.status() != Some(403) || shape(&real) != shape(&ghost) {
                        problems.push(format!(
                            "a wrong password for the real user {:?} and one for an unknown user \
                             should both get the same 403:\n      {}\n   vs {}",
                            USERS[1].0,
                            shape(&real),
                            shape(&ghost)
                        ));
                    }
                }
                (real, ghost) => problems.push(format!(
                    "wrong credentials from {WRONG_CREDS_IP}: real user {:?}, unknown user {:?}",
                    real.map(|m| m.start),
                    ghost.map(|m| m.start)
                )),
            }
        }
    }
    problems.extend(no_call_state(&sbcd, "svwar and the sweep"));
    let (pbx, carrier) = pbx_call(&topo, &mut problems);
    let tools: Vec<&SvRun> = runs.iter().collect();
    finish_scan(
        &mut sbcd,
        "svwar (REGISTER, INVITE; 100-300 and a dictionary with the real users) from 127.0.0.21 finds no extension; the PBX's call goes through",
        &tools,
        &[&pbx, &carrier],
        &problems,
    );
}

/// svcrack on the real digest user 2001 with 20 wrong passwords and the right one last is
/// blocked after [`AUTH_FAILURES`] refusals and never gets to the right one; the PBX calls
/// while svcrack still sends. A control svcrack from another address with a short list
/// (two wrong, then the right one) does crack it: the tool works against sbcd, and the block
/// holds one source only.
#[test]
fn svcrack_is_blocked_before_the_password() {
    let _serial = serial();
    let topo = topology("scanners_svcrack");
    let mut sbcd = Sbcd::start(&topo);
    let (user, password) = USERS[1];
    let write_list = |name: &str, wrong: usize| {
        let path = topo.dir.file(name);
        let mut list: Vec<String> = (1..=wrong).map(|i| format!("guess-{i}")).collect();
        list.push(password.to_owned());
        fs::write(&path, list.join("\n") + "\n").expect("write password list");
        path.display().to_string()
    };
    let long_list = write_list("svcrack-passwords.txt", 20);
    let short_list = write_list("svcrack-control-passwords.txt", 2);
    let target = topo.sbcd.ip().to_string();
    let port = topo.sbcd.port().to_string();
    let mut problems = Vec::new();

    // svcrack sends for --maximumtime after its last answer, then waits 10 s more for one.
    let started = Instant::now();
    let mut attack = Sv::new(
        "svcrack",
        "svcrack",
        SVCRACK_IP,
        &[
            "-p",
            &port,
            "-u",
            user,
            "-d",
            &long_list,
            "--maximumtime",
            "8",
            &target,
        ],
    )
    .spawn(&topo.dir);
    let blocked = util::wait_until(Duration::from_secs(10), || {
        sbcd.metrics()
            .is_ok_and(|t| metric(&t, "sbc_sources_blocked", &[]) >= 1.0)
    });
    let blocked_after = started.elapsed();
    if !blocked {
        problems.push(format!(
            "svcrack's source {SVCRACK_IP} was not blocked within 10 s (sbc_sources_blocked stays 0)"
        ));
    }
    let during = attack.running();
    let (pbx, carrier) = pbx_call(&topo, &mut problems);
    let attack = attack.wait(Duration::from_secs(40));
    eprintln!(
        "svcrack: blocked after {blocked_after:?}; the PBX called {} svcrack ended ({:?} in all)",
        if during { "before" } else { "after" },
        started.elapsed()
    );
    problems.extend(attack.harness_problems());
    // svcrack logs no responses: sbcd's log says which source it blocked.
    let log = sbcd.log();
    if !log
        .lines()
        .any(|l| l.contains("blocked") && l.contains(&format!("source={SVCRACK_IP}")))
    {
        problems.push(format!(
            "sbcd's log names no blocked source={SVCRACK_IP} (svcrack's address)"
        ));
    }
    if attack.output.contains(password) {
        problems.push(format!(
            "svcrack found the password of {user:?}: {}",
            attack
                .output
                .lines()
                .find(|l| l.contains(password))
                .unwrap_or("")
        ));
    }
    match sbcd.metrics() {
        Err(e) => problems.push(e),
        Ok(text) => {
            let failures = metric(
                &text,
                "sbc_trunk_auth_failures_total",
                &[("trunk", "office"), ("mode", "digest")],
            );
            if failures != f64::from(AUTH_FAILURES) {
                problems.push(format!(
                    "sbc_trunk_auth_failures_total{{trunk=\"office\",mode=\"digest\"}} = {failures}: \
                     svcrack should have been refused exactly {AUTH_FAILURES} times, then dropped"
                ));
            }
            let sources = metric(&text, "sbc_sources_blocked", &[]);
            if sources < 1.0 {
                problems.push(format!("sbc_sources_blocked = {sources} after svcrack"));
            }
            let dropped = metric(
                &text,
                "sbc_sip_messages_dropped_total",
                &[("reason", "blocked")],
            );
            if dropped <= 0.0 {
                problems.push(format!(
                    "sbc_sip_messages_dropped_total{{reason=\"blocked\"}} = {dropped}: svcrack kept sending after the block"
                ));
            }
            let registered = metric(
                &text,
                "sbc_sip_responses_total",
                &[("class", "2xx"), ("method", "REGISTER")],
            );
            if registered != 0.0 {
                problems.push(format!(
                    "sbcd answered {registered} REGISTER with 2xx during svcrack's attack"
                ));
            }
            eprintln!(
                "svcrack: {failures} refused, {sources} source(s) blocked, {dropped} messages dropped unanswered"
            );
        }
    }
    problems.extend(no_call_state(&sbcd, "svcrack"));

    // Control: the same tool, another source, two wrong passwords then the right one.
    let control = Sv::new(
        "svcrack-control",
        "svcrack",
        CONTROL_IP,
        &[
            "-p",
            &port,
            "-u",
            user,
            "-d",
            &short_list,
            "--maximumtime",
            "3",
            &target,
        ],
    )
    .spawn(&topo.dir)
    .wait(Duration::from_secs(30));
    problems.extend(control.harness_problems());
    if !control.output.contains(password) {
        problems.push(format!(
            "HARNESS: the control svcrack from {CONTROL_IP} (2 wrong passwords, then the right one) \
             did not crack {user:?}: svcrack cannot answer sbcd's challenge, so the block above proves nothing"
        ));
    }
    finish_scan(
        &mut sbcd,
        "svcrack from 127.0.0.22 is blocked after 5 wrong passwords, never reaches the right one; the PBX's call goes through meanwhile",
        &[&attack, &control],
        &[&pbx, &carrier],
        &problems,
    );
}

/// The checks above are not vacuous: a versioned Server, a trunk's address, a foreign address
/// and a body are caught; answers that differ in status or realm have different shapes, while
/// a new nonce, tag or Call-ID does not change the shape.
#[test]
fn scanner_checks_catch_leaks() {
    let topo = topology("scanners_checks_catch_leaks");
    let carrier = host_port(topo.carrier.addr);
    let leaky = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.20:5060;branch=z9hG4bK-1;received=127.0.0.20\r\n\
         From: <sip:100@1.1.1.1>;tag=a\r\nTo: <sip:100@1.1.1.1>;tag=b\r\nCall-ID: 1\r\n\
         CSeq: 1 OPTIONS\r\nServer: sbcd/0.1.0\r\nContact: <sip:10.0.0.7:5060>\r\n\
         Record-Route: <sip:{carrier};lr>\r\nContent-Length: 4\r\n\r\nv=0\r\n"
    );
    let m = SipMsg::parse(&leaky).expect("parse");
    let found = internals(&m, SVMAP_IP, &topo).join("\n");
    for expected in [
        "server: \"sbcd/0.1.0\"",
        "record-route",
        "a body",
        &format!("the carrier trunk's address {carrier}"),
        "the address 10.0.0.7",
    ] {
        assert!(
            found.contains(expected),
            "no problem mentions {expected:?}:\n{found}"
        );
    }
    assert!(
        !found.contains("1.1.1.1"),
        "From/To echo the scanner: {found}"
    );

    let challenge = |status: &str, realm: &str, nonce: &str, tag: &str| {
        SipMsg::parse(&format!(
            "SIP/2.0 {status}\r\nVia: SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-{tag}\r\n\
             From: <sip:{tag}@127.0.0.1>;tag={tag}\r\nTo: <sip:{tag}@127.0.0.1>;tag=x{tag}\r\n\
             Call-ID: {tag}\r\nCSeq: 1 REGISTER\r\n\
             WWW-Authenticate: Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5\r\n\
             Server: sbcd\r\nContent-Length: 0\r\n\r\n"
        ))
        .expect("parse")
    };
    let base = shape(&challenge("401 Unauthorized", REALM, "n1", "pbx1"));
    assert_eq!(
        base,
        shape(&challenge("401 Unauthorized", REALM, "n2", "ghost"))
    );
    assert_ne!(
        base,
        shape(&challenge("404 Not Found", REALM, "n1", "pbx1"))
    );
    assert_ne!(
        base,
        shape(&challenge("401 Unauthorized", "other", "n1", "pbx1"))
    );
    assert!(internals(
        &challenge("401 Unauthorized", REALM, "n1", "pbx1"),
        SVWAR_IP,
        &topo
    )
    .is_empty());

    let line = r#"b'SIP/2.0 200 OK\r\nServer: sbcd\r\nX: \'q\' \x41\\\r\n\r\n'"#;
    assert_eq!(
        py_bytes(line).as_deref(),
        Some("SIP/2.0 200 OK\r\nServer: sbcd\r\nX: 'q' A\\\r\n\r\n")
    );
}

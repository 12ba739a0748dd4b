//! baresip (Debian's baresip 1.0.0, a real user agent) as the PBX of a trunk that registers to
//! sbcd (`inbound.register = true` with digest), and a SIPp carrier calling it through sbcd.
//!
//! ```text
//!   carrier SIPp 127.0.0.2:C  ->  sbcd 127.0.0.1:S  ->  baresip 127.0.0.1:P (registered contact)
//!                                      ^---------------- REGISTER (401, then 200) -----'
//! ```
//! baresip runs headless: its own config directory in the test directory (`baresip -f DIR`),
//! no UI module, the `ausine` source (48 kHz stereo) and no audio player, SIP trace on (`-s`),
//! stdout and stderr in `baresip.log`, a bounded lifetime (`-t`), and stopped by pid.
//!
//! Interop facts of baresip 1.0.0 (libre 1.1.0) that shape the config below:
//! - libre answers a digest challenge only when every `WWW-Authenticate` names MD5. With sbcd's
//!   default pair (SHA-256 then MD5, RFC 8760), and with MD5 listed first too, it gives up with
//!   `reg: ...: Register: Function not implemented` (ENOSYS) and never sends credentials. So
//!   the trunk offers `algorithms = ["MD5"]`.
//! - baresip finds the account of an incoming request by the Request-URI user: its contact user
//!   (`<AOR user>-0x<pointer>`) or its AOR user; anything else gets `404 Not Found` ("UA not
//!   found"). sbcd calls a registered PBX at its Contact exactly as registered, with the called
//!   number in To (what a registrar's proxy does), so the account is simply `pbx1`.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::checks::{sip_rules, verdict};
use crate::sbcd::{Options, Sbcd, Topology, CARRIER_IP};
use crate::sip::SipMsg;
use crate::sipp::{SippRun, Transport};
use crate::util::{self, host_port, read_lossy, TestDir, CALLED};

const REALM: &str = "sbc.test";
const USERNAME: &str = "pbx1";
const PASSWORD: &str = "pw1";
/// Registration interval baresip asks for (sbcd grants 60..=3600 s).
const REGINT: u32 = 300;
/// baresip quits on its own after this long, whatever happens to the test.
const LIFETIME: Duration = Duration::from_secs(60);

/// The trunks: the carrier (allowlisted 127.0.0.2) first, so its INVITE is never challenged,
/// then the PBX that registers with digest; carrier calls go to the registered PBX.
fn trunks(topo: &Topology) -> String {
    format!(
        "\n[[trunk]]\nname = \"carrier\"\ninbound.allow = [\"{CARRIER_IP}/32\"]\noutbound.uri = \"{}\"\n\
         \n[[trunk]]\nname = \"pbx\"\ninbound.register = true\n\
         # baresip 1.0.0 (libre 1.1.0) fails on any challenge that is not MD5.\n\
         inbound.digest = {{ realm = \"{REALM}\", challenge = 401, algorithms = [\"MD5\"], \
         users = [{{ username = \"{USERNAME}\", password = \"{PASSWORD}\" }}] }}\n\
         \n[[route]]\nfrom = \"carrier\"\nto = [\"pbx\"]\n",
        Topology::sip_uri(topo.carrier.addr, Transport::Udp)
    )
}

/// One message of baresip's SIP trace (`-s`).
#[derive(Debug)]
struct Wire {
    from: String,
    to: String,
    msg: SipMsg,
}

/// A running `baresip -f DIR`; stopped by pid (SIGTERM, then SIGKILL) when dropped, its log
/// printed if the test is failing.
#[derive(Debug)]
struct Baresip {
    child: Child,
    listen: SocketAddr,
    log: PathBuf,
    command_line: String,
}

impl Baresip {
    /// Writes `config` and `accounts` into `<test dir>/baresip` and starts baresip on `listen`,
    /// registering to `registrar`.
    fn start(dir: &TestDir, listen: SocketAddr, registrar: SocketAddr) -> Self {
        let program = util::find_program("baresip").unwrap_or_else(|| {
            panic!("baresip not found in PATH: install Debian's baresip (tests/run-all.sh does)")
        });
        let conf = dir.file("baresip");
        fs::create_dir_all(&conf).expect("create baresip config dir");
        fs::write(conf.join("config"), config(listen)).expect("write baresip config");
        let account = format!(
            "<sip:{USERNAME}@{}>;auth_pass={PASSWORD};regint={REGINT};\
             answermode=auto;audio_codecs=PCMU,PCMA\n",
            host_port(registrar)
        );
        fs::write(conf.join("accounts"), account).expect("write baresip accounts");
        let log = dir.file("baresip.log");
        let out = File::create(&log).expect("create baresip.log");
        let err = out.try_clone().expect("clone file handle");
        let mut cmd = Command::new(program);
        cmd.arg("-f")
            .arg(&conf)
            .arg("-s")
            .args(["-t", &LIFETIME.as_secs().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let command_line = format!("{cmd:?}");
        let child = cmd.spawn().expect("spawn baresip");
        Self {
            child,
            listen,
            log,
            command_line,
        }
    }

    fn log(&self) -> String {
        strip_ansi(&read_lossy(&self.log))
    }

    fn log_tail(&self, lines: usize) -> String {
        util::tail(&self.log(), lines)
    }

    /// What baresip traced, in order.
    fn trace(&self) -> Vec<Wire> {
        parse_trace(&read_lossy(&self.log))
    }

    /// SIGTERM (baresip unregisters, then exits), SIGKILL after `grace`.
    fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        util::stop_child(&mut self.child, grace)
    }

    /// Panics with both logs unless baresip's REGISTER was accepted within `limit`.
    fn wait_registered(&mut self, sbcd: &Sbcd, limit: Duration) {
        let accepted = format!(
            "REGISTER accepted trunk=pbx contacts=1 source={}",
            host_port(self.listen)
        );
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if sbcd.log_tail(usize::MAX).contains(&accepted) && self.log().contains("[1 binding]") {
                return;
            }
            if self.log().lines().any(|l| l.starts_with("reg:")) {
                panic!(
                    "baresip's registration failed (its \"reg:\" line below).\n{}",
                    self.failure_report(sbcd)
                );
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "baresip exited ({status}) before registering.\n{}",
                    self.failure_report(sbcd)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sbcd did not accept baresip's registration within {} s (no sbcd log line {accepted:?}, \
             or baresip never logged \"200 OK ... [1 binding]\").\n{}",
            limit.as_secs(),
            self.failure_report(sbcd)
        );
    }

    /// baresip's own registration lines, the trace summary and both log tails.
    fn failure_report(&self, sbcd: &Sbcd) -> String {
        let log = self.log();
        let mut out = String::new();
        let _ = writeln!(out, "baresip command: {}", self.command_line);
        let reg: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("reg:") || l.contains("} 200 OK") || l.contains("UA not"))
            .collect();
        if !reg.is_empty() {
            let _ = writeln!(out, "baresip says:\n  {}", reg.join("\n  "));
        }
        if log.contains("Register: Function not implemented") {
            let _ = writeln!(
                out,
                "=> libre 1.1 (baresip 1.0.0) gives up on a challenge that is not MD5: \
                 the trunk needs inbound.digest.algorithms = [\"MD5\"]"
            );
        }
        if log.contains("UA not found") {
            let _ = writeln!(
                out,
                "=> baresip accepts only requests to its AOR or contact user: \
                 the Request-URI user must be the account's user"
            );
        }
        let _ = writeln!(out, "baresip's SIP trace:");
        for w in self.trace() {
            let _ = writeln!(out, "  {} -> {}: {}", w.from, w.to, w.msg.summary());
        }
        let _ = writeln!(out, "--- baresip log (tail):\n{}", self.log_tail(60));
        let _ = writeln!(out, "--- sbcd log (tail):\n{}", sbcd.log_tail(60));
        out
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let status = self.stop(Duration::from_secs(3));
        if thread::panicking() {
            eprintln!(
                "--- baresip on {} stopped: {status:?}; log (tail):\n{}",
                host_port(self.listen),
                self.log_tail(80)
            );
        }
    }
}

/// A headless config: SIP on `listen` only, G.711, the sine source, no player, no UI.
fn config(listen: SocketAddr) -> String {
    format!(
        "# baresip config for the sbcd end-to-end tests: written by tests/e2e/baresip.rs\n\
         poll_method\t\tepoll\n\
         sip_listen\t\t{}\n\
         net_interface\t\t{}\n\
         call_local_timeout\t30\n\
         call_max_calls\t\t4\n\
         # No sound device: a 440 Hz sine (ausine needs 48 kHz stereo), no player module.\n\
         audio_source\t\tausine,440\n\
         ausrc_srate\t\t48000\n\
         ausrc_channels\t\t2\n\
         auplay_srate\t\t48000\n\
         auplay_channels\t\t2\n\
         audio_buffer\t\t20-160\n\
         # Outside sbcd's media pool (20000-29599 in the tests) and the kernel's ephemeral range.\n\
         rtp_ports\t\t30000-32700\n\
         jitter_buffer_delay\t5-10\n\
         module_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\n\
         module\t\t\tausine.so\n\
         module_tmp\t\tuuid.so\n\
         module_tmp\t\taccount.so\n\
         # menu handles the incoming call (answermode=auto in the account).\n\
         module_app\t\tmenu.so\n",
        host_port(listen),
        listen.ip()
    )
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits baresip's `-s` output: each message is `ESC[36;1m#`, `UDP a -> b`, the message as
/// sent or received, `ESC[;m`.
fn parse_trace(log: &str) -> Vec<Wire> {
    let mut out = Vec::new();
    for chunk in log.split("\x1b[36;1m#\n").skip(1) {
        let chunk = chunk.split("\x1b[;m").next().unwrap_or(chunk);
        let Some((direction, message)) = chunk.split_once('\n') else {
            continue;
        };
        let mut words = direction.split_whitespace();
        let (Some(_transport), Some(from), Some("->"), Some(to)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if let Some(msg) = SipMsg::parse(message) {
            out.push(Wire {
                from: from.to_owned(),
                to: to.to_owned(),
                msg,
            });
        }
    }
    out
}

fn cseq_method(msg: &SipMsg) -> String {
    msg.cseq().map(|(_, m)| m).unwrap_or_default()
}

/// The B2BUA contract between the carrier (SIPp) and baresip, on SIP headers: baresip's
/// address, Call-ID and tag never reach the carrier, and the carrier's mark (in its Call-ID
/// and tags) never reaches baresip. SDP bodies only get a note (see the call test).
fn hidden(carrier: &SippRun, trace: &[Wire], me: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut secrets = vec![me.to_owned()];
    for w in trace.iter().filter(|w| w.to == me || w.from == me) {
        let m = &w.msg;
        if cseq_method(m) == "INVITE" || m.method() == Some("INVITE") {
            secrets.extend(m.call_id().map(str::to_owned));
        }
        if w.from == me && m.status().is_some() {
            secrets.extend(m.tag_in_to());
        }
    }
    secrets.sort();
    secrets.dedup();
    for t in carrier.received() {
        let (head, body) = t.raw.split_once("\r\n\r\n").unwrap_or((&t.raw, ""));
        for secret in &secrets {
            if head.contains(secret.as_str()) {
                problems.push(format!(
                    "the carrier received baresip's {secret:?} in the headers of {}",
                    t.msg.summary()
                ));
            }
        }
        if body.contains(me) {
            eprintln!(
                "note: the SDP of {} names baresip's SIP address {me} (sbcd relays SDP as is): {}",
                t.msg.summary(),
                body.lines()
                    .find(|l| l.contains(me))
                    .unwrap_or("")
                    .trim_end()
            );
        }
    }
    let mark = "mkcarrier";
    for w in trace.iter().filter(|w| w.to == me) {
        if w.msg.to_string().contains(mark) {
            problems.push(format!(
                "baresip received the carrier's Call-ID or tag ({mark}...) in {}",
                w.msg.summary()
            ));
        }
    }
    problems
}

/// sbcd with the carrier and the registering PBX trunks, and baresip registered to it.
fn registered(test: &str) -> (Topology, Sbcd, Baresip) {
    let mut topo = Topology::new(test, Options::default());
    topo.trunks = Some(trunks(&topo));
    let sbcd = Sbcd::start(&topo);
    // baresip takes the PBX's place (127.0.0.1, a kernel-chosen port).
    let mut baresip = Baresip::start(&topo.dir, topo.pbx.addr, topo.sbcd);
    baresip.wait_registered(&sbcd, Duration::from_secs(10));
    (topo, sbcd, baresip)
}

/// baresip registers (401 with an MD5 challenge, then 200 listing its binding), and
/// unregisters when stopped.
#[test]
fn baresip_registers_to_sbcd() {
    let _serial = util::serial();
    let (topo, mut sbcd, mut baresip) = registered("baresip_registers_to_sbcd");
    let me = host_port(baresip.listen);
    let registrar = host_port(topo.sbcd);
    let mut problems = Vec::new();

    let trace = baresip.trace();
    let registers: Vec<&Wire> = trace
        .iter()
        .filter(|w| w.msg.method() == Some("REGISTER"))
        .collect();
    let responses: Vec<&Wire> = trace
        .iter()
        .filter(|w| w.msg.status().is_some() && cseq_method(&w.msg) == "REGISTER")
        .collect();
    if registers.iter().any(|w| w.to != registrar || w.from != me) {
        problems.push(format!(
            "baresip sent a REGISTER elsewhere than {me} -> {registrar}"
        ));
    }
    match responses.first() {
        Some(w) if w.msg.status() == Some(401) => {
            let challenges = w.msg.headers("www-authenticate");
            if challenges.is_empty()
                || !challenges
                    .iter()
                    .all(|c| c.contains(&format!("realm=\"{REALM}\"")) && c.contains("MD5"))
            {
                problems.push(format!(
                    "the 401 should carry an MD5 challenge for realm {REALM}: {challenges:?}"
                ));
            }
        }
        other => problems.push(format!(
            "the first REGISTER should get 401, got {:?}",
            other.map(|w| w.msg.summary())
        )),
    }
    let authorized = registers
        .iter()
        .find(|w| w.msg.header("authorization").is_some());
    match authorized {
        Some(w) => {
            let auth = w.msg.header("authorization").unwrap_or("");
            if !auth.contains(&format!("username=\"{USERNAME}\"")) {
                problems.push(format!("baresip's credentials name another user: {auth}"));
            }
        }
        None => problems.push("baresip never sent a REGISTER with credentials".to_owned()),
    }
    match responses.iter().find(|w| w.msg.status() == Some(200)) {
        Some(ok) => {
            let contacts = ok.msg.headers("contact");
            let mine = contacts.iter().find(|c| c.contains(&me));
            match mine {
                Some(c) => {
                    let expires =
                        crate::sip::param(c, "expires").and_then(|v| v.parse::<u32>().ok());
                    if !matches!(expires, Some(e) if (1..=REGINT).contains(&e)) {
                        problems.push(format!(
                            "the 200 lists baresip's binding without a sane expires (asked {REGINT}): {c}"
                        ));
                    }
                }
                None => problems.push(format!(
                    "the 200 to REGISTER does not list baresip's contact at {me}: {contacts:?}"
                )),
            }
            if ok.from != registrar {
                problems.push(format!("the 200 came from {}, not {registrar}", ok.from));
            }
        }
        None => problems.push("baresip never received 200 for its REGISTER".to_owned()),
    }

    // Stopping baresip makes it unregister (Expires 0): sbcd drops the binding.
    let status = baresip.stop(Duration::from_secs(5));
    let unregistered = format!("REGISTER accepted trunk=pbx contacts=0 source={me}");
    let seen = util::wait_until(Duration::from_secs(2), || {
        sbcd.log_tail(usize::MAX).contains(&unregistered)
    });
    if !seen {
        problems.push(format!(
            "after SIGTERM (baresip {status:?}) sbcd never logged {unregistered:?}"
        ));
    }
    sbcd.assert_running();
    assert!(
        problems.is_empty(),
        "baresip registration to sbcd:\n  * {}\n{}",
        problems.join("\n  * "),
        baresip.failure_report(&sbcd)
    );
}

/// The carrier (SIPp) calls through sbcd; the INVITE reaches the registered baresip at the
/// address its REGISTER came from; baresip answers; the carrier ACKs and hangs up.
#[test]
fn baresip_answers_a_carrier_call() {
    let _serial = util::serial();
    let (topo, mut sbcd, mut baresip) = registered("baresip_answers_a_carrier_call");
    let me = host_port(baresip.listen);
    let sbcd_addr = host_port(topo.sbcd);

    // SIPp's in-scenario leak check scans whole messages, SDP included, and sbcd relays SDP
    // bodies as they are until the RTP relay lands (see tests/e2e/main.rs, ipv6_on_pbx_leg):
    // baresip's answer names its SIP address in `a=ssrc:... cname:sip:USER@HOST:PORT`. The
    // headers are checked below instead, and a body leak is reported as a note.
    let mut spec = topo.carrier_uac("uac_basic.xml");
    spec.hide = None;
    let carrier = spec.spawn(&topo.dir).wait();
    // Stopped before reading its trace: everything it logged is in the file.
    let status = baresip.stop(Duration::from_secs(5));
    let mut problems = sip_rules(&carrier);
    let trace = baresip.trace();
    problems.extend(hidden(&carrier, &trace, &me));

    let invite = trace
        .iter()
        .find(|w| w.msg.method() == Some("INVITE") && w.to == me);
    match invite {
        Some(w) => {
            // The Contact baresip registered (`sip:pbx1-0x…@host:port;…`), the number in To.
            let ruri = w.msg.request_uri().unwrap_or_default();
            let registered =
                ruri.starts_with(&format!("sip:{USERNAME}-0x")) && ruri.contains(&format!("@{me}"));
            if !registered {
                problems.push(format!(
                    "the INVITE to baresip has Request-URI {ruri:?}, expected its registered \
                     Contact sip:{USERNAME}-0x…@{me}"
                ));
            }
            let to = w.msg.header("To").unwrap_or_default();
            if !to.contains(&format!("sip:{CALLED}@")) {
                problems.push(format!(
                    "the INVITE to baresip has To {to:?}, without {CALLED}"
                ));
            }
            if w.from != sbcd_addr {
                problems.push(format!(
                    "the INVITE reached baresip from {}, not from sbcd {sbcd_addr}",
                    w.from
                ));
            }
        }
        None => problems.push(format!("no INVITE reached baresip at {me}")),
    }
    let answered = trace
        .iter()
        .any(|w| w.from == me && w.msg.status() == Some(200) && cseq_method(&w.msg) == "INVITE");
    if !answered {
        problems.push("baresip never answered the INVITE with 200".to_owned());
    }
    for method in ["ACK", "BYE"] {
        if !trace
            .iter()
            .any(|w| w.to == me && w.msg.method() == Some(method))
        {
            problems.push(format!("no {method} reached baresip"));
        }
    }
    if !baresip.log().contains("Call established") {
        problems.push("baresip never logged \"Call established\"".to_owned());
    }
    sbcd.assert_running();
    problems.extend(sbcd.leaked_secrets());
    if let Some(report) = verdict(
        "carrier (SIPp) -> sbcd -> registered baresip, auto-answer, carrier hangs up",
        &[&carrier],
        &problems,
    ) {
        panic!(
            "{report}\nbaresip stopped: {status:?}\n{}",
            baresip.failure_report(&sbcd)
        );
    }
}

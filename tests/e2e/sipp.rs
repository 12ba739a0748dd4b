//! The `Sipp` guard: one SIPp process playing one side (PBX or carrier, caller or callee) of a
//! flow, with its message trace, statistics and errors written to the test directory and
//! parsed back once it ends.

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::sip::SipMsg;
use crate::util::{self, host_port, read_lossy, TestDir, CALLED};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn sipp_flag(self) -> &'static str {
        match self {
            Self::Udp => "u1",
            Self::Tcp => "t1",
        }
    }
}

/// What to run. Build with [`Sipp::uac`] / [`Sipp::uas`], adjust, then [`SippSpec::spawn`].
#[derive(Debug, Clone)]
pub(crate) struct SippSpec {
    /// Role in the topology ("pbx", "carrier", "backup"): names the log files and reports.
    pub(crate) name: String,
    pub(crate) scenario: String,
    pub(crate) local: SocketAddr,
    /// Where a caller sends its INVITE; `None` for a callee.
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) transport: Transport,
    pub(crate) calls: u32,
    /// Word put in this side's tags and (caller) Call-ID, see tests/sipp/README.md.
    pub(crate) mark: String,
    /// The other side's address and mark, which no message received here may contain.
    pub(crate) hide: Option<(String, String)>,
    pub(crate) extra: Vec<String>,
    /// SIPp's own `-timeout`; the harness waits a little longer.
    pub(crate) timeout: Duration,
}

pub(crate) struct Sipp;

impl Sipp {
    pub(crate) fn uac(
        name: &str,
        scenario: &str,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> SippSpec {
        SippSpec::new(name, scenario, local, Some(remote))
    }

    pub(crate) fn uas(name: &str, scenario: &str, local: SocketAddr) -> SippSpec {
        SippSpec::new(name, scenario, local, None)
    }
}

impl SippSpec {
    fn new(name: &str, scenario: &str, local: SocketAddr, remote: Option<SocketAddr>) -> Self {
        Self {
            name: name.to_owned(),
            scenario: scenario.to_owned(),
            local,
            remote,
            transport: Transport::Udp,
            calls: 1,
            mark: format!("mk{name}"),
            hide: None,
            extra: Vec::new(),
            timeout: Duration::from_secs(20),
        }
    }

    pub(crate) fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    pub(crate) fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// Enables the in-scenario leak checks against the other side.
    pub(crate) fn hide(mut self, addr: SocketAddr, mark: &str) -> Self {
        self.hide = Some((host_port(addr), mark.to_owned()));
        self
    }

    pub(crate) fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.extra
            .extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn role(&self) -> &'static str {
        if self.remote.is_some() {
            "caller"
        } else {
            "callee"
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{} ({} {}, {} {})",
            self.name,
            self.role(),
            self.scenario,
            match self.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
            },
            host_port(self.local)
        )
    }

    fn command(&self, files: &Files) -> Command {
        let mut cmd = Command::new("sipp");
        if let Some(remote) = self.remote {
            cmd.arg(host_port(remote));
        }
        let scenario = util::scenario(&self.scenario);
        cmd.arg("-sf").arg(&scenario);
        cmd.args(["-i", &self.local.ip().to_string()]);
        cmd.args(["-p", &self.local.port().to_string()]);
        cmd.args(["-bind_local", "-t", self.transport.sipp_flag()]);
        cmd.args(["-s", CALLED, "-m", &self.calls.to_string()]);
        cmd.args(["-timeout", &format!("{}s", self.timeout.as_secs().max(1))]);
        cmd.args([
            "-timeout_error",
            "-default_behaviors",
            "all,-abortunexp",
            "-nostdin",
        ]);
        cmd.arg("-trace_msg")
            .arg("-message_file")
            .arg(&files.messages);
        cmd.arg("-trace_stat").arg("-stf").arg(&files.stats);
        cmd.arg("-trace_err").arg("-error_file").arg(&files.errors);
        cmd.args(["-set", "mark", &self.mark]);
        if self.remote.is_some() {
            cmd.args(["-cid_str", &format!("{}-%u-%p@%s", self.mark)]);
        }
        if let Some((addr, mark)) = &self.hide {
            cmd.args(["-set", "hide_addr", addr, "-set", "hide_mark", mark]);
        }
        cmd.args(&self.extra);
        cmd
    }

    /// Starts SIPp. A callee is waited for until its socket is bound (at most 5 s).
    pub(crate) fn spawn(self, dir: &TestDir) -> SippProc {
        assert!(
            util::scenario(&self.scenario).is_file(),
            "no scenario {}",
            util::scenario(&self.scenario).display()
        );
        let files = Files {
            messages: dir.file(&format!("sipp-{}-messages.log", self.name)),
            stats: dir.file(&format!("sipp-{}-stats.csv", self.name)),
            errors: dir.file(&format!("sipp-{}-errors.log", self.name)),
            screen: dir.file(&format!("sipp-{}-screen.log", self.name)),
        };
        let mut cmd = self.command(&files);
        let screen = File::create(&files.screen).expect("create SIPp screen file");
        let screen_err = screen.try_clone().expect("clone file handle");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(screen))
            .stderr(Stdio::from(screen_err));
        let command_line = format!("{cmd:?}");
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run sipp ({e}); install Debian's sip-tester (tests/run-all.sh does)")
        });
        let mut proc = SippProc {
            spec: self,
            child: Some(child),
            files,
            command_line,
        };
        if proc.spec.remote.is_none() {
            proc.wait_bound();
        }
        proc
    }
}

#[derive(Debug)]
struct Files {
    messages: PathBuf,
    stats: PathBuf,
    errors: PathBuf,
    screen: PathBuf,
}

/// A running SIPp; killed (by pid) if dropped before [`SippProc::wait`].
#[derive(Debug)]
pub(crate) struct SippProc {
    spec: SippSpec,
    child: Option<Child>,
    files: Files,
    command_line: String,
}

impl SippProc {
    fn wait_bound(&mut self) {
        let tcp = self.spec.transport == Transport::Tcp;
        let local = self.spec.local;
        let child = self.child.as_mut().expect("running");
        let mut exited = None;
        let bound = util::wait_until(Duration::from_secs(5), || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            util::is_bound(local, tcp)
        });
        if let Some(status) = exited {
            panic!(
                "{} exited at start ({status}): bad scenario or address?\n{}\n{}",
                self.spec.describe(),
                self.command_line,
                util::tail(&read_lossy(&self.files.screen), 30)
            );
        }
        assert!(
            bound,
            "{} did not bind {} within 5 s",
            self.spec.describe(),
            host_port(local)
        );
    }

    /// Waits until SIPp exits (its `-timeout` plus 5 s at most), then reads what it logged.
    pub(crate) fn wait(self) -> SippRun {
        let limit = self.spec.timeout + Duration::from_secs(5);
        self.wait_for(limit)
    }

    /// Waits at most `limit`; a SIPp still running then is killed and reported as such.
    pub(crate) fn wait_for(mut self, limit: Duration) -> SippRun {
        let mut child = self.child.take().expect("waited once");
        let status = util::wait_child(&mut child, limit);
        let killed = status.is_none();
        if killed {
            let _ = child.kill();
            let _ = child.wait();
        }
        SippRun::collect(
            &self.spec,
            &self.files,
            status.and_then(|s| s.code()),
            killed,
            &self.command_line,
        )
    }
}

impl Drop for SippProc {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One traced message.
#[derive(Debug, Clone)]
pub(crate) struct Traced {
    pub(crate) sent: bool,
    pub(crate) msg: SipMsg,
    /// The message as logged, for substring checks.
    pub(crate) raw: String,
}

/// What one SIPp did.
#[derive(Debug)]
pub(crate) struct SippRun {
    pub(crate) name: String,
    pub(crate) describe: String,
    pub(crate) local: SocketAddr,
    pub(crate) calls: u32,
    pub(crate) exit: Option<i32>,
    pub(crate) killed: bool,
    pub(crate) successful: Option<u64>,
    pub(crate) failed: Option<u64>,
    pub(crate) traffic: Vec<Traced>,
    pub(crate) errors: String,
    pub(crate) screen: String,
    pub(crate) command_line: String,
}

impl SippRun {
    fn collect(spec: &SippSpec, files: &Files, exit: Option<i32>, killed: bool, cmd: &str) -> Self {
        let (successful, failed) = parse_stats(&read_lossy(&files.stats));
        Self {
            name: spec.name.clone(),
            describe: spec.describe(),
            local: spec.local,
            calls: spec.calls,
            exit,
            killed,
            successful,
            failed,
            traffic: parse_trace(&read_lossy(&files.messages)),
            errors: read_lossy(&files.errors),
            screen: last_screen(&read_lossy(&files.screen)),
            command_line: cmd.to_owned(),
        }
    }

    pub(crate) fn received(&self) -> impl Iterator<Item = &Traced> {
        self.traffic.iter().filter(|t| !t.sent)
    }

    pub(crate) fn sent(&self) -> impl Iterator<Item = &Traced> {
        self.traffic.iter().filter(|t| t.sent)
    }

    /// Exit status 0 and every call counted successful.
    pub(crate) fn ok(&self) -> bool {
        self.exit == Some(0)
            && self.failed.unwrap_or(0) == 0
            && self.successful == Some(u64::from(self.calls))
    }

    /// A multi-line account of this side, for failure messages.
    pub(crate) fn report(&self) -> String {
        let mut out = String::new();
        let status = match (self.killed, self.exit) {
            (true, _) => "still running at the harness deadline, killed".to_owned(),
            (false, Some(0)) => "exit status 0".to_owned(),
            (false, Some(code)) => format!("exit status {code}{}", exit_meaning(code)),
            (false, None) => "killed by a signal".to_owned(),
        };
        let _ = writeln!(
            out,
            "--- {}: {status}; calls: {} successful, {} failed, {} expected",
            self.describe,
            opt(self.successful),
            opt(self.failed),
            self.calls
        );
        let received: Vec<_> = self.received().collect();
        let sent: Vec<_> = self.sent().collect();
        if received.is_empty() {
            let _ = writeln!(out, "    received NOTHING");
        }
        let lines = self.traffic.len();
        for t in self.traffic.iter().take(40) {
            let arrow = if t.sent { "sent    ->" } else { "received <-" };
            let _ = writeln!(out, "    {arrow} {}", t.msg.summary());
        }
        if lines > 40 {
            let _ = writeln!(out, "    [... {} more messages]", lines - 40);
        }
        if sent.is_empty() && !received.is_empty() {
            let _ = writeln!(out, "    sent nothing");
        }
        let errors = self.errors.trim();
        if !errors.is_empty() {
            let shown: String = errors.chars().take(2500).collect();
            let _ = writeln!(out, "    SIPp errors (-trace_err):\n{}", indent(&shown, 6));
            for hint in leak_hints(errors) {
                let _ = writeln!(out, "    => {hint}");
            }
        }
        if !self.ok() && !self.screen.is_empty() {
            let _ = writeln!(out, "    SIPp's last screen:\n{}", indent(&self.screen, 6));
        }
        if !self.ok() {
            let _ = writeln!(out, "    command: {}", self.command_line);
        }
        out
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

fn exit_meaning(code: i32) -> &'static str {
    match code {
        1 => " (at least one call failed)",
        97 => " (stopped by an internal command)",
        99 => " (no call processed)",
        255 | -1 => " (fatal error or global -timeout reached)",
        _ => "",
    }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Explains the in-scenario leak checks (tests/sipp/README.md) in plain words.
fn leak_hints(errors: &str) -> Vec<String> {
    const NEEDLE: &str = "Regexp matched but should not: looking in '";
    let mut hints = Vec::new();
    for (i, _) in errors.match_indices(NEEDLE) {
        let rest = &errors[i + NEEDLE.len()..];
        if let Some((hidden, _)) = rest.split_once('#') {
            if !hidden.contains('\n') && !hidden.is_empty() {
                let hint = format!(
                    "a received message contains {hidden:?}, which belongs to the other side \
                     (its address, tag or Call-ID leaked through sbcd)"
                );
                if !hints.contains(&hint) {
                    hints.push(hint);
                }
            }
        }
    }
    hints
}

/// Splits SIPp's `-trace_msg` file into messages.
pub(crate) fn parse_trace(text: &str) -> Vec<Traced> {
    const SEPARATOR: &str = "-----------------------------------------------";
    let mut out = Vec::new();
    let mut chunks: Vec<&str> = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with(SEPARATOR) {
            if let Some(s) = start {
                chunks.push(&text[s..offset]);
            }
            start = Some(offset + line.len());
        }
        offset += line.len();
    }
    if let Some(s) = start {
        chunks.push(&text[s..]);
    }
    for chunk in chunks {
        let Some((direction, rest)) = chunk.split_once('\n') else {
            continue;
        };
        let sent = if direction.contains(" message sent") {
            true
        } else if direction.contains(" message received") {
            false
        } else {
            continue;
        };
        let raw = rest
            .trim_start_matches('\n')
            .trim_end_matches('\n')
            .to_owned();
        if let Some(msg) = SipMsg::parse(&raw) {
            out.push(Traced { sent, msg, raw });
        }
    }
    out
}

/// (SuccessfulCall(C), FailedCall(C)) from the last line of a `-trace_stat` file.
fn parse_stats(text: &str) -> (Option<u64>, Option<u64>) {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return (None, None);
    };
    let Some(last) = lines.next_back() else {
        return (None, None);
    };
    let names: Vec<&str> = header.split(';').collect();
    let values: Vec<&str> = last.split(';').collect();
    let get = |name: &str| {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.trim().parse().ok()
    };
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}

/// The last "Scenario Screen" SIPp printed (message counts per scenario line).
fn last_screen(text: &str) -> String {
    let Some(start) = text.rfind("Scenario Screen") else {
        return util::tail(text, 20);
    };
    let screen = &text[start..];
    let end = screen
        .find("Test Terminated")
        .or_else(|| screen.find("Statistics Screen"))
        .unwrap_or(screen.len());
    screen[..end].trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_and_stats_parse() {
        let trace = "----------------------------------------------- 2026-11-23 15:27:24.359753\n\
                     UDP message received [506] bytes :\n\n\
                     INVITE sip:1@h SIP/2.0\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n\n\
                     ----------------------------------------------- 2026-11-23 15:27:24.361237\n\
                     TCP message sent (496 bytes):\n\n\
                     SIP/2.0 200 OK\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n\n";
        let t = parse_trace(trace);
        assert_eq!(t.len(), 2);
        assert!(!t[0].sent && t[1].sent);
        assert_eq!(t[0].msg.method(), Some("INVITE"));
        assert_eq!(t[1].msg.status(), Some(200));
        let stats = "A;SuccessfulCall(C);FailedCall(C)\nx;0;0\ny;3;1\n";
        assert_eq!(parse_stats(stats), (Some(3), Some(1)));
        let hints =
            leak_hints("x: Regexp matched but should not: looking in '127.0.0.1:5070#INVITE");
        assert_eq!(hints.len(), 1);
    }
}

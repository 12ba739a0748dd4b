//! Media anchoring end to end: SIPp does the signalling (PBX caller -> sbcd -> carrier callee)
//! while the media endpoints are UDP sockets owned by the test, so what each side receives is
//! compared byte for byte with what the other sent.
//!
//! ```text
//!   PBX media 127.0.0.1:P  <->  sbcd 127.0.0.1:A (A-facing)   sbcd 127.0.0.1:B (B-facing)  <->  carrier media 127.0.0.2:C
//! ```
//! The PBX's SDP names P (`-set pbx_rtp`), the carrier's C (`-set carrier_rtp`); each SIPp writes
//! the `m=audio` port of the SDP it received (sbcd's port facing it) to a file (`-set portfile`),
//! which the test waits for before sending RTP. Scenarios: tests/sipp/uac_media*.xml,
//! uas_media*.xml.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::checks::{count_received, sip_rules, verdict, Expect};
use crate::sbcd::{Options, Sbcd, Topology, CARRIER_IP, PBX_IP, SBCD_IP};
use crate::sipp::{Sipp, SippProc, SippRun};
use crate::util::{self, free_port, read_lossy, serial, TestDir};
use crate::{finish, leg_checks};

/// A source that is in neither leg's SDP (strict latching must ignore it).
const STRANGER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// RTP packets per direction and step.
const PACKETS: u16 = 200;
/// Bytes of every RTP packet the test sends (12-byte header, 160 bytes of PCMU).
const RTP_LEN: usize = 172;
/// How long a SIPp waits for the port file's counterpart, and a flow for its packets.
const WAIT: Duration = Duration::from_secs(10);
const ARRIVAL: Duration = Duration::from_secs(3);

fn bind(ip: Ipv4Addr) -> (UdpSocket, SocketAddr) {
    let sock = UdpSocket::bind(SocketAddr::new(IpAddr::V4(ip), 0))
        .unwrap_or_else(|e| panic!("bind a media socket on {ip}: {e}"));
    let addr = sock.local_addr().expect("local_addr");
    (sock, addr)
}

/// One direction's RTP stream: fixed SSRC, increasing sequence numbers across steps.
struct Stream {
    name: &'static str,
    ssrc: u32,
    seq: u16,
}

impl Stream {
    const fn new(name: &'static str, ssrc: u32) -> Self {
        Self {
            name,
            ssrc,
            seq: 1000,
        }
    }

    /// RTP v2, PT 0 (PCMU), 160 payload bytes whose pattern depends on SSRC and sequence.
    fn next_packet(&mut self) -> Vec<u8> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let ts = u32::from(seq).wrapping_mul(160);
        let mut p = Vec::with_capacity(172);
        p.extend_from_slice(&[0x80, 0x00]);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        let salt = self.ssrc.to_be_bytes()[3] ^ (seq as u8);
        p.extend((0..160u8).map(|j| j.wrapping_mul(7) ^ salt));
        p
    }
}

/// Everything `sock` receives until `count` packets arrived or `limit` passed.
fn receive(sock: &UdpSocket, count: usize, limit: Duration) -> Vec<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("set_read_timeout");
    while got.len() < count && Instant::now() < deadline {
        if let Ok((n, src)) = sock.recv_from(&mut buf) {
            got.push((buf[..n].to_vec(), src));
        }
    }
    got
}

/// Discards whatever is queued on `sock`.
fn drain(sock: &UdpSocket) {
    let _ = receive(sock, usize::MAX, Duration::from_millis(30));
}

/// `stream` sends `n` packets from `tx` to `to` (1 per ms); `rx` must receive exactly those bytes,
/// in order, all from `from` (sbcd's port facing the receiver).
fn flow(
    what: &str,
    stream: &mut Stream,
    n: u16,
    (tx, to): (&UdpSocket, SocketAddr),
    (rx, from): (&UdpSocket, SocketAddr),
) -> Result<(), String> {
    drain(rx);
    let rx = rx.try_clone().expect("clone socket");
    let rx2 = rx.try_clone().expect("clone socket");
    let receiver = thread::spawn(move || receive(&rx2, usize::from(n), ARRIVAL));
    let mut sent = Vec::new();
    for _ in 0..n {
        let p = stream.next_packet();
        if let Err(e) = tx.send_to(&p, to) {
            return Err(format!("{what}: sending to {to} failed: {e}"));
        }
        sent.push(p);
        thread::sleep(Duration::from_millis(1));
    }
    let mut got = receiver.join().expect("receiver thread");
    // Anything more (duplicates) within a moment is wrong too.
    got.extend(receive(&rx, usize::MAX, Duration::from_millis(50)));
    let mut wrong = Vec::new();
    let foreign: Vec<SocketAddr> = got
        .iter()
        .map(|(_, src)| *src)
        .filter(|src| *src != from)
        .collect();
    if !foreign.is_empty() {
        wrong.push(format!(
            "{} packet(s) came from {:?} instead of sbcd's {from}",
            foreign.len(),
            dedup(&foreign)
        ));
    }
    let payloads: Vec<&Vec<u8>> = got.iter().map(|(p, _)| p).collect();
    if payloads.len() != sent.len() {
        let missing: Vec<u16> = sent
            .iter()
            .filter(|p| !payloads.contains(p))
            .map(|p| u16::from_be_bytes([p[2], p[3]]))
            .collect();
        wrong.push(format!(
            "{} of {} packets arrived within {} s (missing seq: {})",
            payloads.len(),
            sent.len(),
            ARRIVAL.as_secs(),
            summarize(&missing)
        ));
    }
    if let Some(i) = sent.iter().zip(&payloads).position(|(s, g)| s != *g) {
        let g = payloads[i];
        wrong.push(format!(
            "packet #{i} differs from what was sent: sent {} bytes seq {}, received {} bytes{}",
            sent[i].len(),
            u16::from_be_bytes([sent[i][2], sent[i][3]]),
            g.len(),
            if g.len() >= 4 {
                format!(" seq {}", u16::from_be_bytes([g[2], g[3]]))
            } else {
                String::new()
            }
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what} ({} SSRC {:#010x}, {} -> sbcd {to}, expected at {} from sbcd {from}): {}",
            stream.name,
            stream.ssrc,
            local(tx),
            local(&rx),
            wrong.join("; ")
        ))
    }
}

/// Sends `n` packets from `tx` to `to`; `rx` must receive nothing within `quiet`.
fn no_flow(
    what: &str,
    stream: &mut Stream,
    n: u16,
    (tx, to): (&UdpSocket, SocketAddr),
    rx: &UdpSocket,
    quiet: Duration,
) -> Result<(), String> {
    drain(rx);
    for _ in 0..n {
        let _ = tx.send_to(&stream.next_packet(), to);
        thread::sleep(Duration::from_millis(1));
    }
    let got = receive(rx, usize::MAX, quiet);
    if got.is_empty() {
        return Ok(());
    }
    let srcs: Vec<SocketAddr> = got.iter().map(|(_, s)| *s).collect();
    Err(format!(
        "{what}: {} sent {n} packets to {to}, none of which may reach {}, but {} packet(s) \
         arrived (from {:?})",
        stream.name,
        local(rx),
        got.len(),
        dedup(&srcs)
    ))
}

fn local(sock: &UdpSocket) -> String {
    sock.local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string())
}

fn dedup(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in addrs {
        if !out.contains(a) {
            out.push(*a);
        }
    }
    out
}

fn summarize(seqs: &[u16]) -> String {
    let shown: Vec<String> = seqs.iter().take(10).map(u16::to_string).collect();
    if seqs.len() > 10 {
        format!("{} ... ({} in all)", shown.join(" "), seqs.len())
    } else {
        shown.join(" ")
    }
}

/// Waits for the port a SIPp wrote to `file` (at most [`WAIT`]).
fn wait_port(file: &Path, who: &str) -> Result<u16, String> {
    let mut port = None;
    util::wait_until(WAIT, || {
        port = read_lossy(file).trim().parse::<u16>().ok();
        port.is_some()
    });
    port.ok_or_else(|| {
        format!(
            "{who} did not write the m=audio port of the SDP it received to {} within {} s",
            file.display(),
            WAIT.as_secs()
        )
    })
}

/// The PBX's and the carrier's media sockets, and their ports (what their SDPs name).
fn media_sockets() -> (UdpSocket, UdpSocket, (u16, u16)) {
    let (pbx, pbx_addr) = bind(PBX_IP);
    let (carrier, carrier_addr) = bind(CARRIER_IP);
    (pbx, carrier, (pbx_addr.port(), carrier_addr.port()))
}

/// Options for the SIPp playing `side` with media socket port `port` and port file `file`.
fn media_args(rtp_var: &str, port: u16, file: &Path) -> Vec<String> {
    vec![
        "-set".to_owned(),
        rtp_var.to_owned(),
        port.to_string(),
        "-set".to_owned(),
        "portfile".to_owned(),
        file.display().to_string(),
    ]
}

/// The SDP bodies `run` received, with the first line of their message.
fn received_sdps(run: &SippRun) -> Vec<(String, String)> {
    run.received()
        .filter_map(|t| {
            let (_, body) = t
                .raw
                .split_once("\r\n\r\n")
                .or_else(|| t.raw.split_once("\n\n"))?;
            body.contains("v=0")
                .then(|| (t.msg.summary(), body.to_owned()))
        })
        .collect()
}

/// No SDP `run` received may name the other side's media: every c=/o= address is sbcd's,
/// every m= port is in sbcd's range, and neither `foreign_ip` nor `foreign_port` appears.
fn sdp_hides(
    run: &SippRun,
    topo: &Topology,
    foreign_ip: Option<IpAddr>,
    foreign_port: u16,
    min_sdps: usize,
) -> Vec<String> {
    let mut problems = Vec::new();
    let sdps = received_sdps(run);
    if sdps.len() < min_sdps {
        problems.push(format!(
            "{} received {} SDP bodies, expected at least {min_sdps}",
            run.name,
            sdps.len()
        ));
    }
    let sbcd = SBCD_IP.to_string();
    for (summary, body) in &sdps {
        let mut bad =
            |why: String| problems.push(format!("{} received {summary}: {why}", run.name));
        for line in body.lines().map(str::trim) {
            if let Some(ip) = foreign_ip {
                if line.contains(&ip.to_string()) {
                    bad(format!(
                        "SDP line {line:?} names the other side's address {ip}"
                    ));
                }
            }
            // Ports are in m= and a=rtcp: lines only.
            let names_port = (line.starts_with("m=") || line.starts_with("a=rtcp:"))
                && line
                    .split(|c: char| !c.is_ascii_digit())
                    .any(|w| w.parse::<u16>() == Ok(foreign_port));
            if names_port {
                bad(format!(
                    "SDP line {line:?} names the other side's media port {foreign_port}"
                ));
            }
            let address_line = line.starts_with("c=") || line.starts_with("o=");
            if address_line && line.split_whitespace().last() != Some(sbcd.as_str()) {
                bad(format!(
                    "SDP line {line:?} should name sbcd's media address {sbcd}"
                ));
            }
            if let Some(rest) = line.strip_prefix("m=audio ") {
                let port = rest
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<u16>().ok());
                match port {
                    Some(p) if (topo.media.0..=topo.media.1).contains(&p) => {}
                    _ => bad(format!(
                        "SDP line {line:?}: the port is not in sbcd's media range {}-{}",
                        topo.media.0, topo.media.1
                    )),
                }
            }
        }
    }
    problems
}

/// Both sbcd ports learnt from the SDPs, or the reasons they are not known.
struct Call {
    pbx: SippProc,
    carrier: SippProc,
    /// sbcd's port facing the PBX (in the SDP the PBX received), and facing the carrier.
    a: Result<SocketAddr, String>,
    b: Result<SocketAddr, String>,
}

/// Starts the carrier callee and the PBX caller with media sockets at `pbx_rtp` / `carrier_rtp`
/// (the ports their SDPs name), and waits for sbcd's ports.
fn start_call(
    topo: &Topology,
    (uac, uas): (&str, &str),
    (pbx_rtp, carrier_rtp): (u16, u16),
    pause: Duration,
    uac_extra: &[String],
) -> Call {
    let pbx_file = topo.dir.file("pbx-sees-sbcd-port");
    let carrier_file = topo.dir.file("carrier-sees-sbcd-port");
    let timeout = pause * 4 + Duration::from_secs(20);
    let carrier = topo
        .carrier_uas(uas)
        .timeout(timeout)
        .args(&media_args("carrier_rtp", carrier_rtp, &carrier_file))
        .spawn(&topo.dir);
    let pbx = topo
        .pbx_uac(uac)
        .timeout(timeout)
        .args(&["-d".to_owned(), pause.as_millis().to_string()])
        .args(&media_args("pbx_rtp", pbx_rtp, &pbx_file))
        .args(uac_extra)
        .spawn(&topo.dir);
    let sbcd = |port: u16| SocketAddr::new(IpAddr::V4(SBCD_IP), port);
    let b = wait_port(&carrier_file, "the carrier").map(sbcd);
    let a = wait_port(&pbx_file, "the PBX").map(sbcd);
    Call { pbx, carrier, a, b }
}

/// Waits for both SIPps and runs the usual checks plus the SDP ones.
fn end_call(
    topo: &Topology,
    call: Call,
    (pbx_rtp, carrier_rtp): (u16, u16),
    sdps: (usize, usize),
    mut problems: Vec<String>,
) -> (SippRun, SippRun, Vec<String>) {
    let pbx = call.pbx.wait();
    let carrier = call.carrier.wait_for(Duration::from_secs(5));
    let mut all = leg_checks(&pbx, &carrier, &Expect::default());
    all.extend(sdp_hides(
        &pbx,
        topo,
        Some(IpAddr::V4(CARRIER_IP)),
        carrier_rtp,
        sdps.0,
    ));
    all.extend(sdp_hides(&carrier, topo, None, pbx_rtp, sdps.1));
    all.append(&mut problems);
    (pbx, carrier, all)
}

fn check(problems: &mut Vec<String>, result: Result<(), String>) {
    if let Err(e) = result {
        problems.push(e);
    }
}

/// Both sbcd ports, or a problem saying which is unknown.
fn ports(call: &Call) -> Result<(SocketAddr, SocketAddr), String> {
    match (&call.a, &call.b) {
        (Ok(a), Ok(b)) if a == b => Err(format!(
            "sbcd gave both legs the same media port {a}: no RTP was sent"
        )),
        (Ok(a), Ok(b)) => Ok((*a, *b)),
        (a, b) => Err(format!(
            "sbcd's media ports are unknown, no RTP was sent: {}",
            [a.as_ref().err(), b.as_ref().err()]
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

#[test]
fn media_rtp_both_ways() {
    let _serial = serial();
    let topo = Topology::new("media_rtp_both_ways", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx_sock, carrier_sock, rtp) = media_sockets();
    let call = start_call(
        &topo,
        ("uac_media.xml", "uas_media.xml"),
        rtp,
        Duration::from_secs(4),
        &[],
    );
    let mut problems = Vec::new();
    match ports(&call) {
        Ok(ports) => {
            let mut m = Media::new(pbx_sock, carrier_sock, ports);
            check(&mut problems, m.pbx_to_carrier("after the answer"));
            check(&mut problems, m.carrier_to_pbx("after the answer"));
        }
        Err(e) => problems.push(e),
    }
    let (pbx, carrier, mut problems) = end_call(&topo, call, rtp, (1, 1), problems);
    check(&mut problems, call_counters(&sbcd, u64::from(PACKETS)));
    finish(
        &mut sbcd,
        "RTP both ways through sbcd, byte for byte, SDP naming only sbcd, counted per call",
        &[&pbx, &carrier],
        &problems,
    );
}

/// After a call that carried `packets` RTP packets each way: the call's counters in sbcd's log
/// (one line at its end) and in the per-trunk metrics, and the relay's own counters.
fn call_counters(sbcd: &Sbcd, packets: u64) -> Result<(), String> {
    // The relay reports a closed call's counters within a tick; the metrics of its live
    // counters are published once a second.
    let mut last = String::new();
    let want = [
        ("pbx", "received"),
        ("pbx", "sent"),
        ("carrier", "received"),
        ("carrier", "sent"),
    ];
    let ok = util::wait_until(Duration::from_secs(5), || {
        last = sbcd.metrics().unwrap_or_else(|e| e);
        want.iter().all(|(trunk, direction)| {
            let labels = [("trunk", *trunk), ("direction", *direction)];
            util::metric(&last, "sbc_trunk_rtp_packets_total", &labels) == Some(packets as f64)
        }) && util::metric(&last, "sbc_rtp_packets_forwarded_total", &[])
            == Some(2.0 * packets as f64)
    });
    if !ok {
        let lines: Vec<&str> = last.lines().filter(|l| l.starts_with("sbc_")).collect();
        return Err(format!(
            "per-trunk RTP counters: expected {packets} packets received and sent for pbx and carrier, \
             {} forwarded in all; /metrics says:\n{}",
            2 * packets,
            lines.join("\n")
        ));
    }
    let bytes = util::metric(
        &last,
        "sbc_trunk_rtp_bytes_total",
        &[("trunk", "pbx"), ("direction", "received")],
    );
    if bytes != Some((packets * RTP_LEN as u64) as f64) {
        return Err(format!("sbc_trunk_rtp_bytes_total{{trunk=pbx,direction=received}} = {bytes:?}, expected {} ({packets} x {RTP_LEN} bytes)", packets * RTP_LEN as u64));
    }
    let log = sbcd.log();
    let line = log
        .lines()
        .find(|l| l.contains("call media ended"))
        .ok_or("no `call media ended` line in sbcd's log")?;
    for field in [
        "trunk_a=pbx".to_owned(),
        "trunk_b=carrier".to_owned(),
        format!("a_packets={packets}"),
        format!("b_packets={packets}"),
        "dropped=0".to_owned(),
    ] {
        if !line.contains(&field) {
            return Err(format!("`{field}` missing from sbcd's log line: {line}"));
        }
    }
    Ok(())
}

/// SIPp's own media engine on both sides: the PBX plays one second of PCMU with `rtp_stream`
/// (50 packets), the carrier's SIPp echoes every packet (`-rtp_echo`); sbcd forwards all of
/// them both ways, and its per-call counters and metrics say so.
#[test]
fn media_sipp_rtp_stream() {
    let _serial = serial();
    let topo = Topology::new("media_sipp_rtp_stream", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    // 8,000 bytes of PCMU: 50 packets of 20 ms. A slow ramp over the mu-law code space.
    let audio = topo.dir.file("tone-1s.pcmu");
    let samples: Vec<u8> = (0..8000u32).map(|i| (i % 256) as u8 ^ 0x55).collect();
    std::fs::write(&audio, samples).expect("write the audio file");
    let template = read_lossy(&util::scenario("uac_rtp_stream.xml"));
    let uac = topo.dir.file("uac_rtp_stream.xml");
    std::fs::write(
        &uac,
        template.replace("@RTP_FILE@", &audio.display().to_string()),
    )
    .expect("write the scenario copy");
    let echo_port = free_port(IpAddr::V4(CARRIER_IP));
    let carrier = topo
        .carrier_uas("uas_basic.xml")
        .args(&["-rtp_echo", "-mp", &echo_port.to_string()])
        .spawn(&topo.dir);
    let pbx = topo
        .pbx_uac(&uac.display().to_string())
        .args(&["-d", "2500"])
        .spawn(&topo.dir);
    let pbx = pbx.wait();
    let carrier = carrier.wait_for(Duration::from_secs(5));
    let mut problems = leg_checks(&pbx, &carrier, &Expect::default());
    check(&mut problems, call_counters(&sbcd, 50));
    finish(
        &mut sbcd,
        "SIPp rtp_stream -> sbcd -> SIPp rtp_echo -> sbcd -> SIPp: 50 packets each way",
        &[&pbx, &carrier],
        &problems,
    );
}

/// Early media: the callee answers 183 with SDP and rings for 3 s; RTP flows both ways before
/// the 200 (which keeps the same ports), and after it.
#[test]
fn media_early() {
    let _serial = serial();
    let topo = Topology::new("media_early", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx_sock, carrier_sock, rtp) = media_sockets();
    let answered = topo.dir.file("pbx-answered");
    let call = start_call(
        &topo,
        ("uac_media_early.xml", "uas_media_early.xml"),
        rtp,
        Duration::from_secs(2),
        &[
            "-set".to_owned(),
            "answered".to_owned(),
            answered.display().to_string(),
        ],
    );
    let mut problems = Vec::new();
    match ports(&call) {
        Ok(ports) => {
            let mut m = Media::new(pbx_sock, carrier_sock, ports);
            // The carrier's announcement first (the usual direction of early media), then the
            // caller's media (DTMF to an IVR before the answer).
            check(
                &mut problems,
                m.carrier_to_pbx("during the 183, before the 200"),
            );
            check(
                &mut problems,
                m.pbx_to_carrier("during the 183, before the 200"),
            );
            if answered.exists() {
                problems.push(
                    "HARNESS PROBLEM: the 200 reached the PBX before the early media was checked \
                     (the callee rings 3 s): nothing shows the media flowed before the answer"
                        .to_owned(),
                );
            }
            match wait_port(&answered, "the PBX (its 200)") {
                Ok(p) if p == ports.0.port() => {
                    check(&mut problems, m.carrier_to_pbx("after the 200"));
                    check(&mut problems, m.pbx_to_carrier("after the 200"));
                }
                Ok(p) => problems.push(format!(
                    "the 200's SDP names sbcd's port {p}, the 183's named {}: the answer moved \
                     the media",
                    ports.0.port()
                )),
                Err(e) => problems.push(e),
            }
        }
        Err(e) => problems.push(e),
    }
    let (pbx, carrier, problems) = end_call(&topo, call, rtp, (2, 1), problems);
    finish(
        &mut sbcd,
        "early media (183 with SDP) both ways before the answer, and after it",
        &[&pbx, &carrier],
        &problems,
    );
}

/// The test's two media sockets, sbcd's two ports and one stream each way.
struct Media {
    pbx: UdpSocket,
    carrier: UdpSocket,
    a: SocketAddr,
    b: SocketAddr,
    pbx_stream: Stream,
    carrier_stream: Stream,
}

impl Media {
    fn new(pbx: UdpSocket, carrier: UdpSocket, (a, b): (SocketAddr, SocketAddr)) -> Self {
        Self {
            pbx,
            carrier,
            a,
            b,
            pbx_stream: Stream::new("PBX", 0x5042_5801),
            carrier_stream: Stream::new("carrier", 0x4341_5202),
        }
    }

    fn pbx_to_carrier(&mut self, when: &str) -> Result<(), String> {
        flow(
            &format!("PBX -> carrier {when}"),
            &mut self.pbx_stream,
            PACKETS,
            (&self.pbx, self.a),
            (&self.carrier, self.b),
        )
    }

    fn carrier_to_pbx(&mut self, when: &str) -> Result<(), String> {
        flow(
            &format!("carrier -> PBX {when}"),
            &mut self.carrier_stream,
            PACKETS,
            (&self.carrier, self.b),
            (&self.pbx, self.a),
        )
    }
}

#[test]
fn media_hold_resume() {
    let _serial = serial();
    let topo = Topology::new("media_hold_resume", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx_sock, carrier_sock, rtp) = media_sockets();
    let hold_file = topo.dir.file("pbx-sees-sbcd-port-held");
    let resume_file = topo.dir.file("pbx-sees-sbcd-port-resumed");
    let extra = [
        "-set".to_owned(),
        "holdfile".to_owned(),
        hold_file.display().to_string(),
        "-set".to_owned(),
        "resumefile".to_owned(),
        resume_file.display().to_string(),
    ];
    let call = start_call(
        &topo,
        ("uac_media_hold.xml", "uas_media_hold.xml"),
        rtp,
        Duration::from_secs(3),
        &extra,
    );
    let mut problems = Vec::new();
    match ports(&call) {
        Ok(ports) => {
            let mut m = Media::new(pbx_sock, carrier_sock, ports);
            check(&mut problems, m.pbx_to_carrier("after the answer"));
            check(&mut problems, m.carrier_to_pbx("after the answer"));
            let same_port = |file: &Path, what: &str, problems: &mut Vec<String>| match wait_port(
                file,
                &format!("the PBX ({what} re-INVITE)"),
            ) {
                Ok(p) if p == ports.0.port() => true,
                Ok(p) => {
                    problems.push(format!(
                        "the answer to the {what} re-INVITE moved sbcd's port facing the PBX \
                             from {} to {p}",
                        ports.0.port()
                    ));
                    false
                }
                Err(e) => {
                    problems.push(e);
                    false
                }
            };
            if same_port(&hold_file, "hold", &mut problems) {
                // The PBX holds with a=sendonly: it still sends, the carrier (recvonly) does not.
                check(
                    &mut problems,
                    m.pbx_to_carrier("while held (PBX a=sendonly)"),
                );
            }
            if same_port(&resume_file, "resume", &mut problems) {
                check(&mut problems, m.pbx_to_carrier("after the resume"));
                check(&mut problems, m.carrier_to_pbx("after the resume"));
            }
        }
        Err(e) => problems.push(e),
    }
    let (pbx, carrier, problems) = end_call(&topo, call, rtp, (3, 3), problems);
    finish(
        &mut sbcd,
        "hold (a=sendonly) and resume (a=sendrecv) from the PBX with RTP flowing",
        &[&pbx, &carrier],
        &problems,
    );
}

#[test]
fn media_timeout_hangs_up_both_legs() {
    const IDLE_SECS: u64 = 2;
    let _serial = serial();
    let mut topo = Topology::new("media_timeout_hangs_up_both_legs", Options::default());
    topo.media_idle_secs = Some(IDLE_SECS);
    let mut sbcd = Sbcd::start(&topo);
    let started = Instant::now();
    let (pbx, carrier) = crate::run_call(
        &topo.dir,
        topo.pbx_uac("uac_media_timeout.xml")
            .timeout(Duration::from_secs(20)),
        vec![topo
            .carrier_uas("uas_media_timeout.xml")
            .timeout(Duration::from_secs(20))],
    );
    let elapsed = started.elapsed();
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    for run in [&pbx, carrier] {
        let byes: Vec<_> = run
            .received()
            .filter(|t| t.msg.method() == Some("BYE"))
            .collect();
        if byes.is_empty() {
            problems.push(format!("{} never received a BYE from sbcd", run.name));
        }
        for t in byes {
            let reason = t.msg.header("Reason");
            if reason.map(str::trim) != Some("SIP;cause=408;text=\"media timeout\"") {
                problems.push(format!(
                    "{} received a BYE with Reason {reason:?}, expected \
                     SIP;cause=408;text=\"media timeout\"",
                    run.name
                ));
            }
        }
        if run.sent().any(|t| t.msg.method() == Some("BYE")) {
            problems.push(format!("{} sent a BYE itself", run.name));
        }
    }
    if count_received(&pbx, "BYE") > 0 && elapsed < Duration::from_secs(IDLE_SECS) {
        problems.push(format!(
            "the calls ended {elapsed:?} after the INVITE, before the {IDLE_SECS} s media timeout"
        ));
    }
    finish(
        &mut sbcd,
        &format!(
            "no RTP for idle_timeout_secs = {IDLE_SECS}: sbcd hangs up both legs \
             (ended {:.1} s after the INVITE)",
            elapsed.as_secs_f64()
        ),
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn media_latches_to_the_source() {
    let _serial = serial();
    let topo = Topology::new("media_latches_to_the_source", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx_sock, pbx_media) = bind(PBX_IP);
    // The carrier's SDP names 127.0.0.2:9 (discard: nothing listens); its media really comes
    // from another port of the same address.
    let (carrier_sock, carrier_real) = bind(CARRIER_IP);
    let (stranger_sock, _) = bind(STRANGER_IP);
    let rtp = (pbx_media.port(), 9);
    let call = start_call(
        &topo,
        ("uac_media.xml", "uas_media.xml"),
        rtp,
        Duration::from_secs(5),
        &[],
    );
    let mut problems = Vec::new();
    match ports(&call) {
        Ok((a, b)) => {
            let mut pbx_stream = Stream::new("PBX", 0x5042_5801);
            let mut carrier_stream = Stream::new("carrier", 0x4341_5202);
            let mut stranger = Stream::new("127.0.0.3 (in no SDP)", 0x5354_5203);
            // Not latched yet: sbcd sends to the SDP's 127.0.0.2:9, not to the real socket.
            check(
                &mut problems,
                no_flow(
                    &format!(
                        "before the carrier sent anything (SDP port 9, real socket {carrier_real})"
                    ),
                    &mut pbx_stream,
                    5,
                    (&pbx_sock, a),
                    &carrier_sock,
                    Duration::from_millis(300),
                ),
            );
            check(
                &mut problems,
                no_flow(
                    "strict latching, a source outside the carrier's SDP before the carrier sent",
                    &mut stranger,
                    5,
                    (&stranger_sock, b),
                    &pbx_sock,
                    Duration::from_millis(300),
                ),
            );
            check(
                &mut problems,
                flow(
                    &format!("carrier -> PBX from {carrier_real} (not the SDP's port 9)"),
                    &mut carrier_stream,
                    PACKETS,
                    (&carrier_sock, b),
                    (&pbx_sock, a),
                ),
            );
            check(
                &mut problems,
                flow(
                    "PBX -> carrier after latching (must reach the real socket)",
                    &mut pbx_stream,
                    PACKETS,
                    (&pbx_sock, a),
                    (&carrier_sock, b),
                ),
            );
            check(
                &mut problems,
                no_flow(
                    "strict latching, a source outside the carrier's SDP after latching",
                    &mut stranger,
                    5,
                    (&stranger_sock, b),
                    &pbx_sock,
                    Duration::from_millis(300),
                ),
            );
        }
        Err(e) => problems.push(e),
    }
    let (pbx, carrier, problems) = end_call(&topo, call, rtp, (1, 1), problems);
    finish(
        &mut sbcd,
        "latching: the carrier's SDP names 127.0.0.2:9, its RTP comes from another port",
        &[&pbx, &carrier],
        &problems,
    );
}

/// The media scenario pairs UAC -> UAS without sbcd: each side's port file must name the other
/// side's media port (so a failure against sbcd is not a broken scenario). The timeout pair
/// needs sbcd's BYE and cannot run direct.
#[test]
fn media_scenarios_run_direct() {
    let _serial = serial();
    let dir = TestDir::new("media_scenarios_run_direct");
    let mut failures = Vec::new();
    // Per pair: the caller's extra file variables (index into `files`).
    type FileVars = &'static [(&'static str, usize)];
    let pairs: [(&str, &str, FileVars); 3] = [
        ("uac_media.xml", "uas_media.xml", &[]),
        (
            "uac_media_hold.xml",
            "uas_media_hold.xml",
            &[("holdfile", 2), ("resumefile", 3)],
        ),
        (
            "uac_media_early.xml",
            "uas_media_early.xml",
            &[("answered", 4)],
        ),
    ];
    for (uac, uas, extra) in pairs {
        let v4 = |ip: Ipv4Addr| SocketAddr::new(IpAddr::V4(ip), free_port(IpAddr::V4(ip)));
        let (caller_addr, callee_addr) = (v4(PBX_IP), v4(CARRIER_IP));
        let (pbx_rtp, carrier_rtp) = (40_000 + caller_addr.port() % 20_000, 9);
        let files = ["pbx", "carrier", "held", "resumed", "answered"]
            .map(|f| dir.file(&format!("{uac}-{f}")));
        let mut caller_args = vec!["-d".to_owned(), "300".to_owned()];
        caller_args.extend(media_args("pbx_rtp", pbx_rtp, &files[0]));
        for (var, file) in extra {
            caller_args.extend([
                "-set".to_owned(),
                (*var).to_owned(),
                files[*file].display().to_string(),
            ]);
        }
        let callee = Sipp::uas(&format!("callee-{uas}"), uas, callee_addr)
            .timeout(Duration::from_secs(15))
            .args(&media_args("carrier_rtp", carrier_rtp, &files[1]));
        let caller = Sipp::uac(&format!("caller-{uac}"), uac, caller_addr, callee_addr)
            .timeout(Duration::from_secs(15))
            .args(&caller_args);
        let (caller, callee) = crate::run_call(&dir, caller, vec![callee]);
        let callee = &callee[0];
        let mut problems = sip_rules(&caller);
        problems.extend(sip_rules(callee));
        let mut expect = vec![(&files[0], carrier_rtp), (&files[1], pbx_rtp)];
        expect.extend(extra.iter().map(|(_, f)| (&files[*f], carrier_rtp)));
        for (file, port) in expect {
            match wait_port(file, "a SIPp") {
                Ok(p) if p == port => {}
                Ok(p) => problems.push(format!("{} holds {p}, expected {port}", file.display())),
                Err(e) => problems.push(e),
            }
        }
        if let Some(report) = verdict(
            &format!("direct {uac} -> {uas}"),
            &[&caller, callee],
            &problems,
        ) {
            failures.push(report);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

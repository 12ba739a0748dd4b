//! Hostile traffic against a running sbcd while a legitimate peer calls (issue 7).
//!
//! Slow-loris: hundreds of TCP connections from several loopback sources, each sending the
//! start of a request and then nothing more. sbcd caps the connections per source and cuts
//! every message that is not complete 10 s after its first byte; meanwhile the PBX still
//! connects over TCP and its call goes through.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::checks::Expect;
use crate::sbcd::{Options, Sbcd, Topology};
use crate::util::serial;
use crate::{finish, leg_checks, run_call};

/// Sources of the slow connections, and connections from each (sbcd allows 64 per source).
const LORIS_SOURCES: u8 = 5;
const PER_SOURCE: usize = 80;
/// sbcd's message timeout, and how long the test waits past it.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection from `source` and sends the first bytes of an INVITE; None if sbcd
/// refused (closed or reset) it.
fn half_request(source: Ipv4Addr, sbcd: SocketAddr) -> Option<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    sock.bind(&SocketAddr::new(IpAddr::V4(source), 0).into())
        .ok()?;
    sock.connect_timeout(&sbcd.into(), Duration::from_secs(2))
        .ok()?;
    let mut s: TcpStream = sock.into();
    s.write_all(b"INVITE sip:12125551234@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP ")
        .ok()?;
    Some(s)
}

/// Whether sbcd closed `s` (EOF or reset) within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let _ = s.set_read_timeout(Some(limit));
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn slow_loris_does_not_stop_tcp_callers() {
    let _serial = serial();
    let topo = Topology::new(
        "slow_loris",
        Options {
            pbx_tcp: true,
            ..Options::default()
        },
    );
    let mut sbcd = Sbcd::start(&topo);
    let target = topo.sbcd;
    let started = Instant::now();
    let mut held = Vec::new();
    let mut refused = 0;
    for s in 0..LORIS_SOURCES {
        let source = Ipv4Addr::new(127, 0, 1, 10 + s);
        for _ in 0..PER_SOURCE {
            match half_request(source, target) {
                Some(c) => held.push(c),
                None => refused += 1,
            }
        }
    }
    // A legitimate caller over TCP, while the slow connections are open.
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml"),
        vec![topo.carrier_uas("uas_basic.xml")],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    if started.elapsed() >= MESSAGE_TIMEOUT {
        problems.push(format!(
            "the call ended {:?} after the slow connections opened: it must go through while they are open",
            started.elapsed()
        ));
    }
    // Of 80 connections per source, sbcd keeps 64 at most: the rest are closed at once.
    let mut closed_early = 0;
    for c in &mut held {
        if closed_within(c, Duration::from_millis(1)) {
            closed_early += 1;
        }
    }
    let kept = held.len() - closed_early;
    let cap = 64 * usize::from(LORIS_SOURCES);
    if kept > cap {
        problems.push(format!(
            "{kept} slow connections stayed open: at most {cap} (64 per source) should"
        ));
    }
    if kept == 0 {
        problems.push("no slow connection was kept: the test did not load sbcd".to_owned());
    }
    // Past the message timeout, every one of them is closed by sbcd.
    let wait = (MESSAGE_TIMEOUT + Duration::from_secs(3)).saturating_sub(started.elapsed());
    thread::sleep(wait);
    let mut still_open = 0;
    for c in &mut held {
        if !closed_within(c, Duration::from_millis(200)) {
            still_open += 1;
        }
    }
    if still_open > 0 {
        problems.push(format!(
            "{still_open} half-sent connections still open {:?} after they started (message timeout {MESSAGE_TIMEOUT:?})",
            started.elapsed()
        ));
    }
    eprintln!(
        "slow-loris: {} connections attempted, {refused} refused at connect, {closed_early} closed at once, {kept} held until the timeout",
        usize::from(LORIS_SOURCES) * PER_SOURCE
    );
    sbcd.assert_running();
    finish(
        &mut sbcd,
        "slow-loris: a TCP caller gets through; half-sent messages are cut at 10 s",
        &[&pbx, carrier],
        &problems,
    );
}

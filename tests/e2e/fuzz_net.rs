//! Network fuzzing (issue 7): every RFC 4475 / RFC 5118 torture message and carrier capture of
//! the codec's fixtures, and a few thousand mutants of them, sent to a running sbcd over UDP
//! and TCP while a PBX places calls through it. sbcd must stay up, answer what deserves an
//! answer, and complete every legitimate call.
//!
//! The mutants come from a fixed-seed generator (bit flips, cut, repeated and inserted
//! ranges, bare LF line ends, huge or negative Content-Length, duplicated headers), so a
//! failure reproduces. `SBCD_FUZZ_CORPUS=DIR` adds the files of DIR (e.g. the cargo-fuzz
//! corpus of sip-codec, git-ignored) as further seeds, `SBCD_FUZZ_MUTANTS=N` sets the mutants
//! per seed (40).
//!
//! The fuzz traffic comes from its own trunk (127.0.0.30, allowlisted, so it reaches the
//! parser instead of being rate limited) that has no route: a mutant that is still a valid
//! INVITE gets 404 and never reaches the carrier.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crate::checks::Expect;
use crate::sbcd::{Options, Sbcd, Topology};
use crate::sipp::Transport;
use crate::util::{self, serial};
use crate::{finish, leg_checks};

const FUZZ_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 30);
/// Mutants per seed.
const MUTANTS_PER_SEED: usize = 40;
/// Calls the PBX places meanwhile, and how fast.
const CALLS: u32 = 60;
const RATE: u32 = 10;

/// xorshift64*: deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// The codec's torture messages and carrier captures, plus `SBCD_FUZZ_CORPUS` files.
fn seeds() -> Vec<Vec<u8>> {
    let codec = util::repo().join("crates/sip-codec/tests");
    let mut dirs = vec![codec.join("data"), codec.join("carrier")];
    if let Some(extra) = std::env::var_os("SBCD_FUZZ_CORPUS") {
        dirs.push(PathBuf::from(extra));
    }
    let mut seeds = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let keep = p.extension().is_none_or(|e| e == "dat" || e == "sip");
            if let (true, Ok(bytes)) = (keep, std::fs::read(&p)) {
                if !bytes.is_empty() && bytes.len() <= 65_000 {
                    seeds.push(bytes);
                }
            }
        }
    }
    seeds
}

/// One mutant of `seed`.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let len = m.len().max(1);
        match rng.below(8) {
            0 => {
                // Flip a few bits.
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(m.len());
                    if let Some(b) = m.get_mut(i) {
                        *b ^= 1 << rng.below(8);
                    }
                }
            }
            1 => m.truncate(rng.below(len)),
            2 => {
                // Repeat a range.
                let a = rng.below(m.len());
                let b = (a + rng.below(200)).min(m.len());
                let range = m[a..b].to_vec();
                for _ in 0..1 + rng.below(20) {
                    m.splice(b..b, range.iter().copied());
                }
            }
            3 => {
                // Insert bytes: control characters, separators, high bytes.
                const ODD: &[u8] = b"\0\r\n\t ;:,<>\"\\%@\x7f\xff\xc3";
                let at = rng.below(m.len() + 1);
                let ins: Vec<u8> = (0..1 + rng.below(16))
                    .map(|_| ODD[rng.below(ODD.len())])
                    .collect();
                m.splice(at..at, ins);
            }
            4 => {
                // Bare LF line ends.
                m = String::from_utf8_lossy(&m)
                    .replace("\r\n", "\n")
                    .into_bytes();
            }
            5 => {
                let text = String::from_utf8_lossy(&m).into_owned();
                let cl = ["99999999999", "-1", "4294967296", "0", "65536"][rng.below(5)];
                m = match text.find("Content-Length:") {
                    Some(i) => {
                        let end = text[i..].find("\r\n").map_or(text.len(), |e| i + e);
                        format!("{}Content-Length: {cl}{}", &text[..i], &text[end..]).into_bytes()
                    }
                    None => text.into_bytes(),
                };
            }
            6 => {
                // Duplicate a header line many times.
                let text = String::from_utf8_lossy(&m).into_owned();
                let lines: Vec<&str> = text.split("\r\n").collect();
                if lines.len() > 2 {
                    let pick = lines[1 + rng.below(lines.len() - 2)].to_owned();
                    let mut out = String::new();
                    for (i, l) in lines.iter().enumerate() {
                        out.push_str(l);
                        out.push_str("\r\n");
                        if i == 0 {
                            for _ in 0..rng.below(200) {
                                out.push_str(&pick);
                                out.push_str("\r\n");
                            }
                        }
                    }
                    m = out.into_bytes();
                }
            }
            _ => {
                // Cut a range out.
                let a = rng.below(m.len());
                let b = (a + rng.below(64)).min(m.len());
                m.drain(a..b);
            }
        }
    }
    m
}

fn fuzz_trunk(topo: &Topology) -> String {
    format!(
        "{}\n[[trunk]]\nname = \"fuzz\"\ninbound.allow = [\"{FUZZ_IP}/32\"]\noutbound.uri = \"sip:127.0.0.30:9\"\n",
        topo.default_trunks()
    )
}

/// Sends `msgs` to sbcd over UDP from the fuzz source; drains what comes back.
fn over_udp(sbcd: SocketAddr, msgs: &[Vec<u8>]) -> usize {
    let sock = UdpSocket::bind(SocketAddr::new(IpAddr::V4(FUZZ_IP), 0)).expect("bind fuzz udp");
    sock.set_nonblocking(true).expect("nonblocking");
    let mut buf = vec![0u8; 65_536];
    let mut sent = 0;
    for (i, m) in msgs.iter().enumerate() {
        if sock.send_to(m, sbcd).is_ok() {
            sent += 1;
        }
        while sock.recv_from(&mut buf).is_ok() {}
        // Paced: the point is the content, not a flood (the rate tests cover that).
        if i % 50 == 49 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    sent
}

/// Sends `msgs` over TCP from the fuzz source, a batch per connection; a connection sbcd
/// closes (unframeable stream) is replaced. Returns the connections used.
fn over_tcp(sbcd: SocketAddr, msgs: &[Vec<u8>]) -> usize {
    let connect = || -> Option<TcpStream> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
        s.bind(&SocketAddr::new(IpAddr::V4(FUZZ_IP), 0).into())
            .ok()?;
        s.connect_timeout(&sbcd.into(), Duration::from_secs(2))
            .ok()?;
        let s: TcpStream = s.into();
        s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
        Some(s)
    };
    let mut conns = 0;
    for batch in msgs.chunks(25) {
        let Some(mut s) = connect() else { continue };
        conns += 1;
        for m in batch {
            if s.write_all(m).is_err() {
                break;
            }
        }
        // Let sbcd read the batch before the connection goes.
        thread::sleep(Duration::from_millis(10));
    }
    conns
}

#[test]
fn fuzzed_traffic_over_udp_and_tcp_does_not_stop_calls() {
    let _serial = serial();
    let mut topo = Topology::new(
        "fuzz_net",
        Options {
            pbx_tcp: true,
            ..Options::default()
        },
    );
    topo.trunks = Some(fuzz_trunk(&topo));
    let mut sbcd = Sbcd::start(&topo);
    let seeds = seeds();
    let mut rng = Rng(0x5bcd_f00d_1234_5678);
    let mut msgs: Vec<Vec<u8>> = seeds.clone();
    let per_seed = std::env::var("SBCD_FUZZ_MUTANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(MUTANTS_PER_SEED);
    for s in &seeds {
        for _ in 0..per_seed {
            msgs.push(mutate(s, &mut rng));
        }
    }
    let mut problems = Vec::new();
    if seeds.len() < 70 {
        problems.push(format!(
            "HARNESS: only {} seed messages found under crates/sip-codec/tests",
            seeds.len()
        ));
    }

    // The PBX calls over TCP while the fuzz runs.
    let carrier = topo
        .carrier_uas("uas_basic.xml")
        .calls(CALLS)
        .spawn(&topo.dir);
    let pbx = topo
        .pbx_uac("uac_long.xml")
        .transport(Transport::Tcp)
        .calls(CALLS)
        .args(&["-r", &RATE.to_string(), "-d", "2000"])
        .spawn(&topo.dir);
    // Rounds of the whole set, UDP then TCP, for as long as the calls are being placed.
    let started = Instant::now();
    let calls_last = Duration::from_secs(u64::from(CALLS / RATE) + 2);
    let (mut udp_sent, mut tcp_conns, mut rounds) = (0, 0, 0);
    let mut rss_after_first = None;
    while started.elapsed() < calls_last && rounds < 20 {
        udp_sent += over_udp(topo.sbcd, &msgs);
        tcp_conns += over_tcp(topo.sbcd, &msgs);
        rounds += 1;
        if rounds == 1 {
            rss_after_first = sbcd.rss_kib();
        }
    }
    let rss_after_last = sbcd.rss_kib();
    let fuzz_secs = started.elapsed().as_secs_f64();
    let pbx = pbx.wait();
    let carrier = carrier.wait_for(Duration::from_secs(15));
    problems.extend(leg_checks(&pbx, &carrier, &Expect::default()));

    sbcd.assert_running();
    // Memory stays flat: the rounds after the first (same messages again) add no state.
    match (rss_after_first, rss_after_last) {
        (Some(first), Some(last)) => {
            eprintln!("fuzz: sbcd RSS {first} KiB after round 1, {last} KiB after round {rounds}");
            if last > first + 16 * 1024 {
                problems.push(format!(
                    "sbcd's RSS grew from {first} KiB after the first round to {last} KiB after {rounds} rounds of the same messages"
                ));
            }
        }
        _ => problems.push("HARNESS: cannot read sbcd's VmRSS".to_owned()),
    }
    match sbcd.metrics() {
        Ok(text) => {
            let malformed = util::metric(
                &text,
                "sbc_sip_messages_dropped_total",
                &[("reason", "malformed")],
            )
            .unwrap_or(0.0);
            let bad_requests = util::metric(
                &text,
                "sbc_sip_responses_total",
                &[
                    ("method", "other"),
                    ("class", "4xx"),
                    ("leg", "inbound"),
                    ("direction", "sent"),
                ],
            )
            .unwrap_or(0.0);
            eprintln!(
                "fuzz: {} seeds, {} messages x {rounds} rounds: {udp_sent} sent over UDP, {tcp_conns} TCP connections, \
                 in {fuzz_secs:.1} s; sbcd dropped {malformed} as malformed",
                seeds.len(),
                msgs.len()
            );
            if malformed + bad_requests == 0.0 {
                problems.push(
                    "sbcd counted no malformed message: the fuzz did not reach the parser"
                        .to_owned(),
                );
            }
        }
        Err(e) => problems.push(format!("sbcd's /metrics after the fuzz: {e}")),
    }
    // Still serving after it all: one more call.
    let (after, after_carrier) = crate::run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml").transport(Transport::Tcp),
        vec![topo.carrier_uas("uas_basic.xml")],
    );
    problems.extend(leg_checks(&after, &after_carrier[0], &Expect::default()));
    finish(
        &mut sbcd,
        "network fuzz (RFC 4475/5118 + mutants, UDP and TCP) during 60 TCP calls",
        &[&pbx, &carrier, &after, &after_carrier[0]],
        &problems,
    );
}

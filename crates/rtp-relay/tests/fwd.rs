//! The forwarding threads on loopback: RTP both ways with the payload unchanged, latching,
//! foreign sources, idle reports, final counters.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use rtp_relay::control::{Command, Event};
use rtp_relay::fwd::{Backend, Events, Io, Relay, RelayConfig};
use rtp_relay::latch::LatchPolicy;
use rtp_relay::session::{Endpoint, Leg};
use rtp_relay::stats::Discard;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A 16-port range, varied by process, test and interface, with the relay on it, forwarding
/// with `io` (which must be the one running: no silent fallback in these tests).
fn relay(seed: u16, io: Io) -> (Relay, Events, u16) {
    let seed = seed * 2 + u16::from(io == Io::Uring);
    let base = 41000 + ((std::process::id() as u16 % 500) * 40 + seed * 20) % 18000;
    let base = base & !1;
    let (relay, events) = Relay::start(&RelayConfig {
        listen: LO,
        port_min: base,
        port_max: base + 15,
        workers: 1,
        io,
    })
    .expect("bind the media range");
    let want = if io == Io::Uring {
        Backend::Uring
    } else {
        Backend::Mmsg
    };
    assert_eq!(relay.backend, want);
    (relay, events, base)
}

/// Each test runs on both kernel interfaces.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn mmsg() {
                super::$name(super::Io::Mmsg);
            }
            #[test]
            fn uring() {
                super::$name(super::Io::Uring);
            }
        }
    };
}

both!(rtp_flows_both_ways_unchanged_and_strangers_are_dropped);
both!(a_peer_whose_sdp_address_is_unreachable_gets_media_after_it_sends);
both!(silence_on_both_legs_is_reported_once);
both!(a_port_with_no_call_drops_and_counts);
both!(each_worker_beats_while_idle);

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind((LO, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn rtp(seq: u16, ssrc: u32, fill: u8) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend(std::iter::repeat_n(fill, 160));
    p
}

fn strict(a: SocketAddr) -> Endpoint {
    Endpoint {
        expected: Some(a),
        policy: LatchPolicy::Strict,
    }
}

fn rtp_flows_both_ways_unchanged_and_strangers_are_dropped(io: Io) {
    let (relay, events, base) = relay(0, io);
    let (pa, pb) = (base, base + 2);
    let (a, b) = (endpoint(), endpoint());
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    relay
        .send(Command::Open {
            id: 1,
            ports: [pa, pb],
            a: strict(a_addr),
            b: strict(b_addr),
            idle: None,
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut buf = [0u8; 2048];
    for seq in 0..200u16 {
        let p = rtp(seq, 0xa, seq as u8);
        a.send_to(&p, (LO, pa)).unwrap();
        let (n, from) = b.recv_from(&mut buf).expect("B gets A's packet");
        assert_eq!(&buf[..n], &p[..], "payload unchanged");
        assert_eq!(from, SocketAddr::new(LO, pb), "from sbcd's B-facing port");
        let q = rtp(seq, 0xb, !(seq as u8));
        b.send_to(&q, (LO, pb)).unwrap();
        let (n, from) = a.recv_from(&mut buf).expect("A gets B's packet");
        assert_eq!(&buf[..n], &q[..]);
        assert_eq!(from, SocketAddr::new(LO, pa));
    }
    // A stranger (another port, strict policy: same IP is admitted only before latching; A
    // is latched) is dropped: B gets nothing from it.
    let stranger = endpoint();
    stranger.send_to(&rtp(1, 0xc, 1), (LO, pa)).unwrap();
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        b.recv_from(&mut buf).is_err(),
        "the stranger's packet was forwarded"
    );
    // A datagram larger than any RTP packet (truncated by the kernel into the relay's
    // buffer) is dropped, even from A.
    let mut big = rtp(500, 0xa, 0);
    big.resize(60_000, 0x55);
    a.send_to(&big, (LO, pa)).unwrap();
    assert!(
        b.recv_from(&mut buf).is_err(),
        "the oversized datagram was forwarded"
    );
    // After the call, its ports take nothing.
    relay.send(Command::Close { id: 1, port: pa }).unwrap();
    let ev = events.wait(Duration::from_secs(2)).expect("closed");
    a.send_to(&rtp(201, 0xa, 1), (LO, pa)).unwrap();
    let Event::Closed { id, from } = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(id, 1);
    assert_eq!((from[0].packets, from[0].foreign), (200, 1));
    assert_eq!(from[1].packets, 200);
    assert_eq!(from[0].bytes, 200 * 172);
    // The shared counters are published about once a second.
    std::thread::sleep(Duration::from_millis(1100));
    let s = &relay.stats;
    assert_eq!(s.forwarded.load(std::sync::atomic::Ordering::Relaxed), 400);
    assert_eq!(
        s.bytes.load(std::sync::atomic::Ordering::Relaxed),
        400 * 172
    );
    assert_eq!(s.dropped(Discard::Foreign), 1);
    assert_eq!(s.dropped(Discard::NoSession), 1);
    assert_eq!(s.dropped(Discard::Invalid), 1);
    assert_eq!(s.dropped_total(), 3);
    relay.stop();
}

fn a_peer_whose_sdp_address_is_unreachable_gets_media_after_it_sends(io: Io) {
    let (relay, _events, base) = relay(1, io);
    let (pa, pb) = (base + 4, base + 6);
    let (a, b) = (endpoint(), endpoint());
    // B's SDP names a port nobody listens on (the same IP): strict latching moves B's media
    // to where B's packets come from.
    let b_sdp = SocketAddr::new(LO, 9);
    relay
        .send(Command::Open {
            id: 7,
            ports: [pa, pb],
            a: strict(a.local_addr().unwrap()),
            b: strict(b_sdp),
            idle: None,
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut buf = [0u8; 2048];
    b.send_to(&rtp(1, 0xb, 2), (LO, pb)).unwrap();
    a.recv_from(&mut buf).expect("A gets B's packet");
    a.send_to(&rtp(1, 0xa, 3), (LO, pa)).unwrap();
    let (n, _) = b
        .recv_from(&mut buf)
        .expect("B gets media at its real address");
    assert_eq!(buf[12], 3);
    assert_eq!(n, 172);
    relay.stop();
}

fn silence_on_both_legs_is_reported_once(io: Io) {
    let (relay, events, base) = relay(2, io);
    let (pa, pb) = (base + 8, base + 10);
    relay
        .send(Command::Open {
            id: 9,
            ports: [pa, pb],
            a: strict(SocketAddr::new(LO, 5000)),
            b: strict(SocketAddr::new(LO, 5002)),
            idle: Some(Duration::from_millis(300)),
        })
        .unwrap();
    assert_eq!(
        events.wait(Duration::from_secs(3)),
        Some(Event::Idle { id: 9 })
    );
    assert_eq!(events.wait(Duration::from_millis(1500)), None, "once");
    // A re-INVITE (hold) sets a new limit and the clock restarts.
    relay
        .send(Command::Update {
            id: 9,
            port: pa,
            leg: Leg::A,
            expected: Some(SocketAddr::new(LO, 5000)),
            policy: LatchPolicy::Strict,
            idle: Some(Duration::from_millis(300)),
        })
        .unwrap();
    assert_eq!(
        events.wait(Duration::from_secs(3)),
        Some(Event::Idle { id: 9 })
    );
    relay.stop();
}

/// Datagrams to a port no call uses, and bigger than any RTP packet, are dropped and counted;
/// the worker keeps serving.
fn a_port_with_no_call_drops_and_counts(io: Io) {
    let (relay, _events, base) = relay(3, io);
    let s = endpoint();
    for _ in 0..5 {
        s.send_to(&rtp(1, 7, 0), (LO, base + 8)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    let st = &relay.stats;
    assert_eq!(st.dropped(Discard::NoSession), 5, "{st:?}");
    assert_eq!(st.dropped_total(), 5, "{st:?}");
    relay.stop();
}

/// An idle worker still passes its housekeeping about once a second: the daemon's watchdog
/// takes a heartbeat that stops moving for a stuck worker.
fn each_worker_beats_while_idle(io: Io) {
    let (relay, _events, _) = relay(5, io);
    assert_eq!(relay.stats.heartbeats.len(), 1);
    let beat = || relay.stats.heartbeats[0].load(std::sync::atomic::Ordering::Relaxed);
    let first = beat();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while beat() < first + 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(beat() >= first + 2, "heartbeat stuck at {}", beat());
}

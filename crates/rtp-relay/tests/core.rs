//! The pure media core: port pool, packet classification, latching, counters.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rtp_relay::latch::{is_reachable, Latch, LatchPolicy, Verdict, RELATCH_GAP};
use rtp_relay::packet::{classify, Packet, RtpHeader};
use rtp_relay::ports::{PoolError, PortPool};
use rtp_relay::stats::Direction;

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn the_whole_range_is_allocated_and_freed_without_a_leak() {
    let mut pool = PortPool::new(20000, 29999).unwrap();
    assert_eq!(pool.capacity(), 5000);
    let mut seen = HashSet::new();
    let mut pairs = Vec::new();
    while let Some(p) = pool.allocate() {
        assert_eq!(p.rtp() % 2, 0, "RTP even");
        assert_eq!(p.rtcp(), p.rtp() + 1, "RTCP next, odd");
        assert!((20000..=29998).contains(&p.rtp()));
        assert!(seen.insert(p.rtp()), "handed out twice: {}", p.rtp());
        pairs.push(p);
    }
    assert_eq!(pairs.len(), 5000);
    assert_eq!((pool.in_use(), pool.available()), (5000, 0));
    for p in &pairs {
        pool.release(*p).unwrap();
    }
    assert_eq!((pool.in_use(), pool.available()), (0, 5000));
    // Again, twice round: nothing was lost.
    for _ in 0..2 {
        let n = std::iter::from_fn(|| pool.allocate()).count();
        assert_eq!(n, 5000);
        for p in &pairs {
            pool.release(*p).unwrap();
        }
    }
}

#[test]
fn released_pairs_are_reused_last_and_misuse_is_an_error() {
    let mut pool = PortPool::new(30000, 30007).unwrap();
    let first = pool.allocate().unwrap();
    pool.release(first).unwrap();
    let order: Vec<u16> = std::iter::from_fn(|| pool.allocate())
        .map(|p| p.rtp())
        .collect();
    assert_eq!(
        order,
        [30002, 30004, 30006, 30000],
        "the freed pair comes last"
    );
    let p = PortPool::new(30000, 30007).unwrap().allocate().unwrap();
    let mut other = PortPool::new(40000, 40003).unwrap();
    assert_eq!(other.release(p), Err(PoolError::Foreign(30000)));
    let mut pool = PortPool::new(30000, 30007).unwrap();
    let p = pool.allocate().unwrap();
    pool.release(p).unwrap();
    assert_eq!(pool.release(p), Err(PoolError::NotAllocated(30000)));
    // A port another program holds: out of service, counted apart.
    let p = pool.allocate().unwrap();
    pool.quarantine(p).unwrap();
    assert_eq!(
        (pool.in_use(), pool.available(), pool.quarantined()),
        (0, 3, 1)
    );
    for (min, max) in [(20001, 20009), (20000, 20008), (20000, 20000), (0, 9)] {
        assert!(matches!(
            PortPool::new(min, max),
            Err(PoolError::BadRange { .. })
        ));
    }
}

fn rtp_packet(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn datagrams_are_told_apart() {
    let p = rtp_packet(0, 7, 0xdead_beef, &[0xff; 160]);
    assert_eq!(
        classify(&p),
        Packet::Rtp(RtpHeader {
            payload_type: 0,
            marker: false,
            seq: 7,
            timestamp: 0x1234,
            ssrc: 0xdead_beef,
            header_len: 12,
        })
    );
    // Marker bit, telephone-event (101).
    let p = rtp_packet(0x80 | 101, 8, 1, &[0; 4]);
    assert!(matches!(classify(&p), Packet::Rtp(h) if h.marker && h.payload_type == 101));
    // Two CSRCs and a one-word extension: the payload starts after them.
    let mut p = vec![0x92, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
    p.extend_from_slice(&[0; 8]); // CSRCs
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension, 1 word
    p.extend_from_slice(&[0xaa; 20]);
    assert!(matches!(classify(&p), Packet::Rtp(h) if h.header_len == 12 + 8 + 8));
    // Truncated: the extension claims more than there is.
    assert_eq!(classify(&p[..24]), Packet::Invalid);
    // RTCP SR (200) and RR (201), muxed on the RTP port (RFC 5761).
    let sr = [0x80, 200, 0, 6, 0, 0, 0, 5, 0, 0, 0, 0];
    assert_eq!(
        classify(&sr),
        Packet::Rtcp {
            packet_type: 200,
            ssrc: 5
        }
    );
    assert!(matches!(
        classify(&[0x81, 201, 0, 1, 0, 0, 0, 9]),
        Packet::Rtcp {
            packet_type: 201,
            ..
        }
    ));
    assert_eq!(classify(&[0x00, 0x01, 0, 0]), Packet::Stun);
    assert_eq!(classify(&[22, 0xfe, 0xfd]), Packet::Dtls);
    for bad in [
        &[][..],
        &[0x80][..],
        &[0x80, 0, 0, 1][..],
        &[0x40; 20][..],
        &[0x80, 200, 0, 1][..],
    ] {
        assert_eq!(classify(bad), Packet::Invalid, "{bad:?}");
    }
}

proptest! {
    #[test]
    fn classify_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Packet::Rtp(h) = classify(&b) {
            prop_assert!(h.header_len <= b.len());
        }
    }
}

#[test]
fn strict_latch_takes_the_sdp_ip_only() {
    let t0 = Instant::now();
    let mut l = Latch::new(LatchPolicy::Strict, Some(a("192.0.2.10:4000")), t0);
    assert_eq!(
        l.destination(),
        Some(a("192.0.2.10:4000")),
        "the SDP until packets come"
    );
    assert_eq!(
        l.on_packet(t0, a("198.51.100.1:4000"), Some(1)),
        Verdict::Foreign
    );
    assert_eq!(l.destination(), Some(a("192.0.2.10:4000")));
    // The SDP's IP from another port (a phone or NAT picked it): latched there.
    assert_eq!(
        l.on_packet(t0, a("192.0.2.10:4002"), Some(1)),
        Verdict::Latched
    );
    assert_eq!(l.destination(), Some(a("192.0.2.10:4002")));
    assert_eq!(
        l.on_packet(t0, a("192.0.2.10:4002"), Some(1)),
        Verdict::Forward
    );
    // Someone else, even from the same IP, while the stream runs: dropped.
    let t1 = t0 + Duration::from_millis(20);
    assert_eq!(
        l.on_packet(t1, a("192.0.2.10:5000"), Some(1)),
        Verdict::Foreign
    );
    assert_eq!(
        l.on_packet(t1, a("192.0.2.10:5000"), Some(2)),
        Verdict::Foreign,
        "no quiet gap"
    );
    // A new SSRC after a quiet gap, from an admitted source: re-latched.
    let t2 = t1 + RELATCH_GAP;
    assert_eq!(
        l.on_packet(t2, a("192.0.2.10:5000"), Some(2)),
        Verdict::Latched
    );
    assert_eq!(l.destination(), Some(a("192.0.2.10:5000")));
    // A new SSRC after a gap from a foreign IP: still foreign.
    let t3 = t2 + RELATCH_GAP * 2;
    assert_eq!(
        l.on_packet(t3, a("203.0.113.9:5000"), Some(3)),
        Verdict::Foreign
    );
}

#[test]
fn any_source_latches_during_the_window_then_acts_strict() {
    let t0 = Instant::now();
    let policy = LatchPolicy::AnySource(Duration::from_secs(5));
    // A NATed phone: its SDP names a private address that is useless here.
    let mut l = Latch::new(policy, Some(a("10.0.0.5:4000")), t0);
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(
        l.on_packet(t1, a("203.0.113.7:61000"), Some(9)),
        Verdict::Latched
    );
    assert_eq!(l.destination(), Some(a("203.0.113.7:61000")));
    let late = t0 + Duration::from_secs(30);
    assert_eq!(
        l.on_packet(late, a("198.51.100.66:61000"), Some(10)),
        Verdict::Foreign
    );
    // A re-INVITE opens the window again.
    l.set_expected(Some(a("10.0.0.5:4002")), late);
    assert_eq!(l.destination(), Some(a("10.0.0.5:4002")));
    assert_eq!(
        l.on_packet(late, a("203.0.113.7:61002"), Some(11)),
        Verdict::Latched
    );
    // Without a window (strict), the NATed phone is never latched.
    let mut s = Latch::new(LatchPolicy::Strict, Some(a("10.0.0.5:4000")), t0);
    assert_eq!(
        s.on_packet(t1, a("203.0.113.7:61000"), Some(9)),
        Verdict::Foreign
    );
}

#[test]
fn never_to_an_address_no_reply_can_reach() {
    let t0 = Instant::now();
    for bad in [
        "0.0.0.0:4000",
        "192.0.2.1:0",
        "255.255.255.255:4000",
        "224.0.0.1:4000",
        "[ff02::1]:4000",
        "[::]:4000",
    ] {
        assert!(!is_reachable(a(bad)), "{bad}");
        let mut l = Latch::new(LatchPolicy::AnySource(Duration::from_secs(5)), None, t0);
        assert_eq!(
            l.on_packet(t0, a(bad), Some(1)),
            Verdict::BadSource,
            "{bad}"
        );
        assert_eq!(l.destination(), None);
    }
    // An SDP with c=0.0.0.0 (hold, old style) names no destination.
    let l = Latch::new(LatchPolicy::Strict, Some(a("0.0.0.0:4000")), t0);
    assert_eq!(l.destination(), None);
    // IPv4-mapped sources match an IPv4 SDP address.
    let mut l = Latch::new(LatchPolicy::Strict, Some(a("192.0.2.10:4000")), t0);
    assert_eq!(
        l.on_packet(t0, a("[::ffff:192.0.2.10]:4000"), Some(1)),
        Verdict::Latched
    );
}

#[test]
fn counters_follow_the_verdicts() {
    let mut d = Direction::default();
    d.count(Verdict::Latched, 172, false, true);
    d.count(Verdict::Forward, 172, false, true);
    d.count(Verdict::Forward, 52, true, true);
    d.count(Verdict::Foreign, 172, false, true);
    d.count(Verdict::BadSource, 10, false, true);
    // Accepted, but the other leg has nowhere to send it yet.
    d.count(Verdict::Forward, 172, false, false);
    assert_eq!((d.foreign, d.invalid, d.no_destination), (1, 1, 1));
    assert_eq!((d.packets, d.bytes, d.rtcp, d.dropped()), (3, 396, 1, 3));
    let mut sum = Direction::default();
    sum.add(&d);
    sum.add(&d);
    assert_eq!(sum.packets, 6);
}

#[test]
fn a_component_relays_between_the_legs_and_counts() {
    use rtp_relay::session::{Component, Endpoint, Leg};
    use rtp_relay::stats::Discard;
    let t0 = Instant::now();
    let strict = LatchPolicy::Strict;
    let mut c = Component::new(
        t0,
        Endpoint {
            expected: Some(a("192.0.2.1:4000")),
            policy: strict,
        },
        Endpoint {
            expected: None,
            policy: strict,
        },
    );
    let pkt = rtp_packet(0, 1, 7, &[0x55; 160]);
    // B has sent no SDP yet (delayed offer): nowhere to go, counted.
    assert_eq!(
        c.on_packet(t0, Leg::A, a("192.0.2.1:4000"), &pkt),
        Err(Discard::NoDestination)
    );
    assert_eq!(c.received_from(Leg::A).no_destination, 1);
    c.set_expected(t0, Leg::B, Some(a("198.51.100.2:6000")), strict);
    assert_eq!(
        c.on_packet(t0, Leg::A, a("192.0.2.1:4000"), &pkt),
        Ok(a("198.51.100.2:6000"))
    );
    // B's first packet comes from another port of its IP: B is latched there, and A's packets
    // follow.
    let back = rtp_packet(8, 1, 9, &[0x11; 160]);
    assert_eq!(
        c.on_packet(t0, Leg::B, a("198.51.100.2:6002"), &back),
        Ok(a("192.0.2.1:4000"))
    );
    assert_eq!(
        c.on_packet(t0, Leg::A, a("192.0.2.1:4000"), &pkt),
        Ok(a("198.51.100.2:6002"))
    );
    // STUN, garbage and strangers are dropped.
    assert_eq!(
        c.on_packet(t0, Leg::A, a("192.0.2.1:4000"), &[0, 1, 0, 0]),
        Err(Discard::Invalid)
    );
    assert_eq!(
        c.on_packet(t0, Leg::A, a("203.0.113.5:4000"), &pkt),
        Err(Discard::Foreign)
    );
    let rx = c.received_from(Leg::A);
    assert_eq!(
        (
            rx.packets,
            rx.bytes,
            rx.invalid,
            rx.foreign,
            rx.no_destination
        ),
        (2, 344, 1, 1, 1)
    );
    assert_eq!(c.received_from(Leg::B).packets, 1);
    assert_eq!(c.last_from(Leg::B), Some(t0));
}

#[test]
fn a_pool_of_listed_pairs() {
    let mut pool = PortPool::from_pairs([20010, 20002, 20006, 20002]).unwrap();
    assert_eq!(
        (pool.capacity() - pool.quarantined(), pool.available()),
        (3, 3)
    );
    let got: Vec<u16> = std::iter::from_fn(|| pool.allocate())
        .map(|p| p.rtp())
        .collect();
    assert_eq!(got, [20002, 20006, 20010]);
    assert!(PortPool::from_pairs([20003]).is_err());
    assert_eq!(PortPool::from_pairs([]).unwrap().allocate(), None);
}

//! Forwarding allocates nothing per packet: a counting global allocator sees no allocation in
//! any thread while 2,000 packets cross the relay (after a warm-up). This binary holds one test
//! so that no other test allocates meanwhile.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rtp_relay::control::Command;
use rtp_relay::fwd::{Io, Relay, RelayConfig};
use rtp_relay::latch::LatchPolicy;
use rtp_relay::session::Endpoint;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Both kernel interfaces in turn (one test: no other test may allocate meanwhile).
#[test]
fn forwarding_allocates_nothing() {
    for (k, io) in [Io::Mmsg, Io::Uring].into_iter().enumerate() {
        forward_2000(io, k as u16);
    }
}

fn forward_2000(io: Io, k: u16) {
    let base = (43000 + (std::process::id() as u16 % 1000) * 16 + k * 8) & !1;
    let (relay, _events) = Relay::start(&RelayConfig {
        listen: LO,
        port_min: base,
        port_max: base + 7,
        workers: 1,
        io,
    })
    .unwrap();
    assert!(
        relay.unavailable.is_empty(),
        "{io:?}: ports in use: {:?}",
        relay.unavailable
    );
    let a = UdpSocket::bind((LO, 0)).unwrap();
    let b = UdpSocket::bind((LO, 0)).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let endpoint = |s: &UdpSocket| Endpoint {
        expected: Some(s.local_addr().unwrap()),
        policy: LatchPolicy::Strict,
    };
    relay
        .send(Command::Open {
            id: 1,
            ports: [base, base + 2],
            a: endpoint(&a),
            b: endpoint(&b),
            idle: None,
        })
        .unwrap();
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    let mut buf = [0u8; 2048];
    // Warm-up: the first packets latch and the worker's first passes settle.
    for _ in 0..50 {
        a.send_to(&pkt, (LO, base)).unwrap();
        b.recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{io:?}: warm-up packet lost: {e}"));
    }
    std::thread::sleep(Duration::from_millis(1200)); // a stats flush passes, too
    let before = ALLOCS.load(Ordering::Relaxed);
    for seq in 0..2000u16 {
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        a.send_to(&pkt, (LO, base)).unwrap();
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(n, 172);
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(
        after - before,
        0,
        "allocations while forwarding 2,000 packets with {io:?}"
    );
    relay.stop();
}

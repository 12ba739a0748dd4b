//! The codec's zero-allocation promise, measured: reading a message (parse, validate, every typed
//! view a B2BUA uses, the Request-URI and the SDP) and writing the outbound INVITE into a buffer
//! with room for it perform no heap allocation at all.
//!
//! A counting global allocator wraps [`System`]. It counts only on a thread that has switched
//! counting on (a thread-local flag), so the test harness and tests running in parallel on other
//! threads do not disturb a measurement. `allocator_is_counting` proves the counter is live, so a
//! zero cannot be vacuous.
//!
//! This is the one place in the workspace with `unsafe` code: implementing [`GlobalAlloc`] needs
//! it. Each block only forwards to [`System`] with the caller's own arguments.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use sip_codec::sdp::Sdp;
use sip_codec::{parse, Challenge, HeaderKind, Message, Uri, EMPTY_HEADER};

#[path = "carrier/outbound.rs"]
mod outbound;

use outbound::{build_outbound, LEG};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/carrier");

/// Allocations (alloc, alloc_zeroed, realloc) made while some thread had counting on.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Is this thread being measured? Const-initialised without destructor, so reading it from
    /// inside the allocator never allocates or registers anything.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    // `try_with` fails only while the thread is being torn down; that thread is not measured.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

/// [`System`], counting.
struct Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; counting touches only an atomic and a const thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` with counting on for this thread; returns the allocations it made and its result.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let r = black_box(f());
    COUNTING.with(|c| c.set(false));
    // Other threads never count, so the difference is this thread's.
    (ALLOCATIONS.load(Ordering::Relaxed) - before, r)
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(DIR)
        .expect("tests/carrier exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&p).expect("readable corpus file");
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 14,
        "the carrier corpus is missing (run tests/carrier/make.py)"
    );
    files
}

/// Everything a B2BUA reads from a message, folded into a number so nothing is optimised away.
fn read_everything(m: &Message<'_, '_>) -> usize {
    let len = |b: Option<&[u8]>| b.map_or(0, <[u8]>::len);
    m.validate().expect("corpus messages are valid");
    let mut n = len(m.call_id()) + len(m.content_type()) + m.body.len();
    let cseq = m.cseq().expect("CSeq");
    n += cseq.seq as usize + cseq.method.len();
    n += usize::from(m.max_forwards().expect("Max-Forwards").unwrap_or(0));
    for via in m.vias() {
        let via = via.expect("Via");
        n += len(via.branch()) + via.host_raw.len() + usize::from(via.port.unwrap_or(0));
        n += via.rport().flatten().map_or(0, usize::from);
        n += via.received().map_or(0, |r| r.map_or(0, |_| 1));
    }
    for na in [m.from().expect("From"), m.to().expect("To")] {
        n += len(na.tag()) + len(na.display_unquoted());
        n += na.parse_uri().expect("From/To URI").as_bytes().len();
    }
    for contact in m.contacts().iter() {
        let contact = contact.expect("Contact");
        let uri = contact.parse_uri().expect("Contact URI");
        n += uri
            .as_sip()
            .map_or(0, |u| u.host_raw.len() + usize::from(u.port.unwrap_or(0)));
        n += contact.expires().map_or(0, |e| e.map_or(0, |e| e as usize));
    }
    for route in m.routes().chain(m.record_routes()) {
        n += route
            .expect("Route")
            .parse_uri()
            .expect("Route URI")
            .as_bytes()
            .len();
    }
    for kind in [
        HeaderKind::WwwAuthenticate,
        HeaderKind::ProxyAuthenticate,
        HeaderKind::Authorization,
        HeaderKind::ProxyAuthorization,
    ] {
        for h in m.headers_of(kind) {
            for c in Challenge::parse_all(h.value, kind) {
                let c = c.expect("challenge");
                n += c
                    .params
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
                n += len(c.param(b"nonce")) + len(c.param(b"realm")) + len(c.param(b"opaque"));
            }
        }
    }
    if let Some(ruri) = m.request_uri() {
        let uri = Uri::parse(ruri).expect("Request-URI");
        n += uri.as_sip().map_or(0, |u| len(u.user) + u.host_raw.len());
    }
    if !m.body.is_empty() {
        let sdp = Sdp::parse(m.body).expect("SDP");
        n += sdp.origin().map_or(0, |o| o.address.len());
        for media in sdp.media() {
            n += usize::from(media.port) + media.formats().count() + media.attributes().count();
            n += media
                .effective_connection()
                .and_then(|c| c.ip())
                .map_or(0, |_| 1);
            n += media.rtcp().map_or(0, |r| usize::from(r.port));
            n += media.direction().as_str().len();
        }
    }
    n
}

#[test]
fn allocator_is_counting() {
    let (n, v) = allocations(|| Vec::<u8>::with_capacity(16));
    assert_eq!(n, 1, "the counting allocator is not the global allocator");
    drop(v);
    let (n, ()) = allocations(|| {
        let mut v = Vec::<u8>::with_capacity(1);
        v.extend_from_slice(&[0; 64]);
    });
    assert_eq!(n, 2, "a grown Vec is an alloc and a realloc");
}

#[test]
fn parsing_the_corpus_allocates_nothing() {
    for (name, buf) in corpus() {
        let mut headers = [EMPTY_HEADER; 64];
        let (n, read) = allocations(|| {
            let m = parse(&buf, &mut headers).expect("corpus messages parse");
            read_everything(&m)
        });
        assert!(read > 0, "{name}");
        assert_eq!(n, 0, "{name}: reading the message allocated {n} times");
    }
}

#[test]
fn building_the_outbound_invite_allocates_nothing() {
    let mut built = 0;
    for (name, buf) in corpus()
        .into_iter()
        .filter(|(n, _)| n.starts_with("invite-"))
    {
        let mut headers = [EMPTY_HEADER; 64];
        let inbound = parse(&buf, &mut headers).expect("corpus messages parse");
        let mut out = Vec::with_capacity(4096);
        // First build into fresh capacity, then reuse the cleared buffer, as the bench and the
        // daemon's send path do.
        for round in 0..3 {
            out.clear();
            let (n, len) =
                allocations(|| build_outbound(&inbound, &LEG, &mut out).expect("outbound INVITE"));
            assert_eq!(len, out.len());
            assert_eq!(n, 0, "{name}, round {round}: building allocated {n} times");
        }
        // The result is a real message: parse and read it back without allocating either.
        let mut h = [EMPTY_HEADER; 64];
        let (n, read) =
            allocations(|| read_everything(&parse(&out, &mut h).expect("outbound parses")));
        assert!(read > 0);
        assert_eq!(
            n, 0,
            "{name}: reading the outbound INVITE allocated {n} times"
        );
        built += 1;
    }
    assert_eq!(built, 5, "every INVITE of the corpus was built");
}

//! SIP parsing and building, sip-codec against rsip 0.4, on the carrier corpus
//! (`crates/sip-codec/tests/carrier/*.sip`).
//!
//! * `parse/<codec>/<message>`: parse one message and read what a B2BUA needs from every message
//!   (Call-ID, CSeq, From tag, top Via branch). rsip parses every header into an owned `String`
//!   at once and its typed views re-parse one header each; sip-codec indexes the headers and
//!   parses the four views on demand. Neither side runs `validate()`, which rsip has no
//!   equivalent of. Throughput is the message size.
//! * `build/sip-codec/invite-cube`: the B2BUA's outbound INVITE from the parsed inbound CUBE INVITE
//!   (new start line, Via, From/To/Call-ID/CSeq/Contact, copied headers, SDP rewritten), into one
//!   reused buffer. rsip has no comparable zero-copy writer, so it has no entry here.
//!
//! Run: `cargo bench -p sbcd-suite --bench sip_parse`, then `python3 benches/summarize.py`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rsip::prelude::{HeadersExt, ToTypedHeader, UntypedHeader};
use sip_codec::{parse, EMPTY_HEADER};

#[path = "../crates/sip-codec/tests/carrier/outbound.rs"]
mod outbound;

/// The messages of the `parse` group, as they sit in the corpus.
const MESSAGES: &[(&str, &[u8])] = &[
    (
        "invite-cube",
        include_bytes!("../crates/sip-codec/tests/carrier/invite-cube.sip"),
    ),
    (
        "ok-sdp",
        include_bytes!("../crates/sip-codec/tests/carrier/ok-sdp.sip"),
    ),
    (
        "register-auth",
        include_bytes!("../crates/sip-codec/tests/carrier/register-auth.sip"),
    ),
    (
        "401-telnyx",
        include_bytes!("../crates/sip-codec/tests/carrier/401-telnyx.sip"),
    ),
    (
        "ack",
        include_bytes!("../crates/sip-codec/tests/carrier/ack.sip"),
    ),
    (
        "bye",
        include_bytes!("../crates/sip-codec/tests/carrier/bye.sip"),
    ),
];

/// sip-codec: parse, then the four values every transaction and dialog lookup needs.
fn codec_read(buf: &[u8]) -> usize {
    let mut headers = [EMPTY_HEADER; 64];
    let m = parse(buf, &mut headers).expect("corpus message parses");
    let call_id = m.call_id().expect("Call-ID");
    let cseq = m.cseq().expect("CSeq");
    let from = m.from().expect("From");
    let via = m.top_via().expect("Via");
    black_box((call_id, cseq.seq, cseq.method, from.tag(), via.branch()));
    m.len
}

/// rsip: parse, then the same four values through its header accessors and typed headers.
fn rsip_read(buf: &[u8]) -> usize {
    let msg = rsip::SipMessage::try_from(buf).expect("rsip parses the corpus message");
    let call_id = msg.call_id_header().expect("Call-ID").value();
    let cseq = msg
        .cseq_header()
        .expect("CSeq")
        .typed()
        .expect("typed CSeq");
    let tag = msg.from_header().expect("From").tag().expect("From parses");
    let via = msg.via_header().expect("Via").typed().expect("typed Via");
    black_box((call_id, &cseq.seq, &cseq.method, &tag, via.branch()));
    msg.body().len()
}

fn parse_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for &(name, bytes) in MESSAGES {
        // Both sides must read the message before their times mean anything.
        assert_eq!(codec_read(bytes), bytes.len(), "{name}");
        rsip_read(bytes);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("sip-codec", name), bytes, |b, bytes| {
            b.iter(|| codec_read(black_box(bytes)))
        });
        group.bench_with_input(BenchmarkId::new("rsip", name), bytes, |b, bytes| {
            b.iter(|| rsip_read(black_box(bytes)))
        });
    }
    group.finish();
}

fn build_group(c: &mut Criterion) {
    let inbound_bytes = MESSAGES[0].1;
    let mut headers = [EMPTY_HEADER; 64];
    let inbound = parse(inbound_bytes, &mut headers).expect("invite-cube parses");
    let mut out = Vec::with_capacity(4096);
    let len =
        outbound::build_outbound(&inbound, &outbound::LEG, &mut out).expect("outbound INVITE");

    let mut group = c.benchmark_group("build");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function(BenchmarkId::new("sip-codec", "invite-cube"), |b| {
        b.iter(|| {
            out.clear();
            outbound::build_outbound(black_box(&inbound), &outbound::LEG, &mut out)
                .expect("outbound INVITE")
        })
    });
    group.finish();
}

criterion_group!(benches, parse_group, build_group);
criterion_main!(benches);

//! SIP parsing and building, sip-codec against rsip 0.4, on the carrier corpus
//! (`crates/sip-codec/tests/carrier/*.sip`).
//!
//! * `parse/<codec>/<message>`: parse one message, nothing more. rsip parses every header into
//!   an owned `String`; sip-codec indexes the headers (name, kind, value span) and checks the
//!   framing (Content-Length). Throughput is the message size.
//! * `parse+read/<codec>/<message>`: parse, then read what a B2BUA needs from every message
//!   (Call-ID, CSeq, From tag, top Via branch) through each library's typed views. Neither side
//!   runs `validate()`, which rsip has no equivalent of.
//! * `build/<variant>/invite-cube`: the B2BUA's outbound INVITE from the parsed inbound CUBE
//!   INVITE (new start line, Via, From/To/Call-ID/CSeq/Contact, copied headers, SDP rewritten),
//!   into one reused buffer. `sip-codec` includes parsing the SDP offer; `offer-parsed` starts
//!   from the parsed offer, as the B2BUA does (it parses the offer once to allocate media ports
//!   before it writes the other leg). rsip has no comparable zero-copy writer.
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

fn codec_parse(buf: &[u8]) -> usize {
    let mut headers = [EMPTY_HEADER; 64];
    parse(buf, &mut headers).expect("corpus message parses").len
}

fn rsip_parse(buf: &[u8]) -> usize {
    let msg = rsip::SipMessage::try_from(buf).expect("rsip parses the corpus message");
    msg.body().len()
}

fn parse_group(c: &mut Criterion) {
    type Read = fn(&[u8]) -> usize;
    let variants: [(&str, Read, Read); 2] = [
        ("parse", codec_parse, rsip_parse),
        ("parse+read", codec_read, rsip_read),
    ];
    for (group_name, codec, rsip) in variants {
        let mut group = c.benchmark_group(group_name);
        for &(name, bytes) in MESSAGES {
            // Both sides must read the message before their times mean anything.
            assert_eq!(codec(bytes), bytes.len(), "{name}");
            rsip(bytes);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            group.bench_with_input(BenchmarkId::new("sip-codec", name), bytes, |b, bytes| {
                b.iter(|| codec(black_box(bytes)))
            });
            group.bench_with_input(BenchmarkId::new("rsip", name), bytes, |b, bytes| {
                b.iter(|| rsip(black_box(bytes)))
            });
        }
        group.finish();
    }
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
    let offer = sip_codec::sdp::Sdp::parse(inbound.body).expect("invite-cube has SDP");
    group.bench_function(BenchmarkId::new("offer-parsed", "invite-cube"), |b| {
        b.iter(|| {
            out.clear();
            outbound::build_outbound_offer(
                black_box(&inbound),
                Some(black_box(&offer)),
                &outbound::LEG,
                &mut out,
            )
            .expect("outbound INVITE")
        })
    });
    group.finish();
}

criterion_group!(benches, parse_group, build_group);
criterion_main!(benches);

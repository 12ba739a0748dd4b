//! Whole call flows through one shard, without sockets: a scripted PBX and carrier exchange
//! real SIP text with the shard, time is injected, and every message sbcd sends is checked.

mod common;

use std::time::Duration;

use b2bua::{CallResult, Event};
use common::*;
use sip_codec::HeaderKind;

const CONFIG: &str = r#"
[[trunk]]
name = "pbx"
inbound.allow = ["127.0.0.1/32"]
outbound.uri = "sip:127.0.0.1:5070"
[[trunk]]
name = "carrier"
inbound.allow = ["127.0.0.2/32"]
outbound.uri = "sip:127.0.0.2:5080"
[[trunk]]
name = "backup"
inbound.allow = ["127.0.0.3/32"]
outbound.uri = "sip:127.0.0.3:5090"
[[route]]
from = "pbx"
match = "^[0-9]+$"
to = ["carrier", "backup"]
[[route]]
from = "carrier"
to = ["pbx"]
"#;

impl Net {
    fn new() -> Self {
        Self::with_config(CONFIG)
    }
}

/// The PBX calls; the carrier rings and answers; the PBX ACKs. Returns the carrier's INVITE,
/// the 200 the PBX got and the carrier's 200.
fn establish(net: &mut Net, call_id: &str) -> (Sent, Sent) {
    let out = net.send(PBX, &pbx_invite(call_id, "12125551234"));
    one(&out, PBX, "100 Trying", is_code(100));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    assert_eq!(inv.vias(), 1, "one Via: sbcd's own");
    assert!(
        inv.text
            .starts_with("INVITE sip:12125551234@127.0.0.2:5080 SIP/2.0\r\n"),
        "{}",
        inv.text
    );
    assert_eq!(inv.header(HeaderKind::MaxForwards).as_deref(), Some("69"));
    assert_eq!(
        inv.cseq(),
        (1, "INVITE".into()),
        "the outbound leg numbers its own CSeq"
    );
    assert_eq!(inv.body(), SDP);
    assert_hidden(
        &inv,
        &[call_id, "5070", "pbxtag", "z9hG4bK-pbx", "X-Internal"],
    );

    let out = net.send(
        CARRIER,
        &answer(&inv, 180, "carrier", "127.0.0.2:5080", &[], ""),
    );
    let ringing = one(&out, PBX, "180", is_code(180));
    assert_hidden(ringing, &["127.0.0.2", "carrier"]);
    let out = net.send(
        CARRIER,
        &answer(&inv, 200, "carrier", "127.0.0.2:5080", &[], SDP),
    );
    let ok = one(&out, PBX, "200", is_code(200)).clone();
    assert_eq!(ok.header(HeaderKind::CallId).as_deref(), Some(call_id));
    assert_eq!(ok.cseq(), (10, "INVITE".into()));
    assert!(
        ok.text.contains(";received=127.0.0.1") && ok.text.contains(";rport=5070"),
        "{}",
        ok.text
    );
    assert_hidden(&ok, &["127.0.0.2", "tag=carrier"]);
    let ack = one(&out, CARRIER, "ACK", is_req("ACK"));
    assert_eq!(ack.cseq(), (1, "ACK".into()));
    assert!(ack.header(HeaderKind::To).unwrap().contains("tag=carrier"));

    let out = net.send(
        PBX,
        &in_dialog("ACK", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 10, true, ""),
    );
    assert!(out.is_empty(), "the ACK stops at sbcd: {out:#?}");
    (inv, ok)
}

#[test]
fn basic_call_caller_hangs_up() {
    let mut net = Net::new();
    let (inv, ok) = establish(&mut net, "call-1");
    assert!(
        net.advance(Duration::from_secs(10)).is_empty(),
        "no 2xx retransmission after the ACK"
    );

    let out = net.send(
        PBX,
        &in_dialog("BYE", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 11, true, ""),
    );
    one(&out, PBX, "200 for BYE", is_code(200));
    let bye = one(&out, CARRIER, "BYE", is_req("BYE"));
    assert_eq!(bye.cseq(), (2, "BYE".into()), "the outbound leg's CSeq + 1");
    assert!(
        bye.text.starts_with("BYE sip:ua@127.0.0.2:5080 SIP/2.0"),
        "to the remote target"
    );
    let out = net.send(
        CARRIER,
        &answer(bye, 200, "carrier", "127.0.0.2:5080", &[], ""),
    );
    assert!(out.is_empty(), "{out:#?}");
    let _ = inv;
    let ev = net.events();
    assert!(
        ev.contains(&Event::CallEnded {
            trunk: "pbx".into(),
            to: Some("carrier".into()),
            result: CallResult::Answered
        }),
        "{ev:?}"
    );
    net.advance(Duration::from_secs(40));
    assert_eq!(
        net.shard.calls(),
        0,
        "the call is forgotten once its transactions end"
    );
}

#[test]
fn callee_hangs_up() {
    let mut net = Net::new();
    let (inv, _ok) = establish(&mut net, "call-2");
    // The carrier is the UAS of the outbound leg: its BYE swaps From and To.
    let carrier_view = inv.clone();
    let bye = {
        let mut s = carrier_view.clone();
        // the carrier's To tag is "carrier"; build from the INVITE with the tag added
        s.text = s.text.replacen(
            "\r\nTo: <sip:12125551234@127.0.0.2:5080>",
            "\r\nTo: <sip:12125551234@127.0.0.2:5080>;tag=carrier",
            1,
        );
        in_dialog("BYE", "sip:sbcd@127.0.0.1:5060", CARRIER, &s, 1, false, "")
    };
    let out = net.send(CARRIER, &bye);
    one(&out, CARRIER, "200 for BYE", is_code(200));
    let pbx_bye = one(&out, PBX, "BYE", is_req("BYE"));
    assert!(
        pbx_bye
            .text
            .starts_with("BYE sip:2001@127.0.0.1:5070 SIP/2.0"),
        "{}",
        pbx_bye.text
    );
    assert_eq!(
        pbx_bye.cseq(),
        (1, "BYE".into()),
        "sbcd's first request on the inbound leg"
    );
    assert!(pbx_bye
        .header(HeaderKind::To)
        .unwrap()
        .contains("tag=pbxtag"));
    assert_eq!(
        pbx_bye.header(HeaderKind::CallId).as_deref(),
        Some("call-2")
    );
    assert_hidden(pbx_bye, &["127.0.0.2"]);
}

#[test]
fn cancel_before_answer() {
    let mut net = Net::new();
    let invite = pbx_invite("call-3", "12125551234");
    let out = net.send(PBX, &invite);
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    net.send(CARRIER, &answer(&inv, 180, "c3", "127.0.0.2:5080", &[], ""));
    let cancel = String::from_utf8(invite.clone()).unwrap();
    let cancel = cancel
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace("CSeq: 10 INVITE", "CSeq: 10 CANCEL")
        .replace("Content-Type: application/sdp\r\n", "")
        .replace(
            &format!("Content-Length: {}", SDP.len()),
            "Content-Length: 0",
        )
        + "\r\n\r\n";
    let out = net.send(PBX, cancel.as_bytes());
    one(&out, PBX, "200 for CANCEL", |s| {
        s.code() == Some(200) && s.cseq().1 == "CANCEL"
    });
    let t487 = one(&out, PBX, "487", is_code(487));
    assert_eq!(t487.cseq(), (10, "INVITE".into()));
    let c = one(&out, CARRIER, "CANCEL", is_req("CANCEL"));
    assert_eq!(c.cseq(), (1, "CANCEL".into()));
    assert_eq!(
        c.header(HeaderKind::Via),
        inv.header(HeaderKind::Via),
        "CANCEL has the INVITE's Via (§9.1)"
    );
    let out = net.send(CARRIER, &answer(c, 200, "c3", "127.0.0.2:5080", &[], ""));
    assert!(out.is_empty(), "{out:#?}");
    let out = net.send(CARRIER, &answer(&inv, 487, "c3", "127.0.0.2:5080", &[], ""));
    let ack = one(&out, CARRIER, "ACK for 487", is_req("ACK"));
    assert_eq!(
        ack.header(HeaderKind::Via),
        inv.header(HeaderKind::Via),
        "non-2xx ACK: same branch"
    );
    assert!(
        out.iter().all(|s| s.to != addr(PBX)),
        "the 487 is not relayed twice"
    );
    // The PBX ACKs the 487.
    let ack487 = in_dialog(
        "ACK",
        "sip:12125551234@127.0.0.1:5060",
        PBX,
        t487,
        10,
        true,
        "",
    )
    .into_iter()
    .collect::<Vec<u8>>();
    let ack487 = String::from_utf8(ack487)
        .unwrap()
        .replace("z9hG4bK-ACK10", "z9hG4bK-pbx-call-3");
    assert!(net.send(PBX, ack487.as_bytes()).is_empty());
    net.advance(Duration::from_secs(60));
    assert_eq!(net.shard.calls(), 0);
    let ev = net.events();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::CallEnded {
                result: CallResult::Cancelled,
                ..
            }
        )),
        "{ev:?}"
    );
}

#[test]
fn busy_is_mapped_back() {
    let mut net = Net::new();
    let out = net.send(PBX, &pbx_invite("call-4", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    let out = net.send(CARRIER, &answer(&inv, 486, "c4", "127.0.0.2:5080", &[], ""));
    one(&out, CARRIER, "ACK", is_req("ACK"));
    let busy = one(&out, PBX, "486", is_code(486));
    assert!(
        busy.text.starts_with("SIP/2.0 486 Whatever\r\n"),
        "reason phrase relayed"
    );
    assert!(
        out.iter().all(|s| s.to != addr(BACKUP)),
        "486 does not fail over"
    );
    let ended: Vec<&'static str> = net
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::CallEnded { result, .. } => Some(result.label()),
            _ => None,
        })
        .collect();
    assert_eq!(ended, ["busy"], "a busy callee is not a failed call");
}

#[test]
fn failover_on_503_then_last_failure() {
    let mut net = Net::new();
    let out = net.send(PBX, &pbx_invite("call-5", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    let out = net.send(CARRIER, &answer(&inv, 503, "c5", "127.0.0.2:5080", &[], ""));
    one(&out, CARRIER, "ACK", is_req("ACK"));
    assert!(
        out.iter()
            .all(|s| s.to != addr(PBX) || s.code() == Some(100)),
        "no failure to the PBX yet"
    );
    let inv2 = one(&out, BACKUP, "INVITE to backup", is_req("INVITE")).clone();
    assert_ne!(
        inv2.header(HeaderKind::CallId),
        inv.header(HeaderKind::CallId),
        "a new outbound leg"
    );
    let out = net.send(
        BACKUP,
        &answer(&inv2, 200, "b5", "127.0.0.3:5090", &[], SDP),
    );
    one(&out, PBX, "200", is_code(200));

    // Both fail: the PBX gets the last failure.
    let out = net.send(PBX, &pbx_invite("call-6", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    let out = net.send(CARRIER, &answer(&inv, 500, "c6", "127.0.0.2:5080", &[], ""));
    let inv2 = one(&out, BACKUP, "INVITE to backup", is_req("INVITE")).clone();
    let out = net.send(BACKUP, &answer(&inv2, 502, "b6", "127.0.0.3:5090", &[], ""));
    one(&out, PBX, "502", is_code(502));
}

#[test]
fn timer_b_on_a_silent_carrier_fails_over() {
    let mut net = Net::new();
    let out = net.send(PBX, &pbx_invite("call-7", "12125551234"));
    one(&out, CARRIER, "INVITE", is_req("INVITE"));
    let out = net.advance(Duration::from_millis(31_999));
    let retrans = out.iter().filter(|s| s.to == addr(CARRIER)).count();
    assert_eq!(retrans, 6, "Timer A: 0.5+1+2+4+8+16 s: {out:#?}");
    let out = net.advance(Duration::from_millis(2));
    one(&out, BACKUP, "INVITE after Timer B", is_req("INVITE"));
}

#[test]
fn unknown_source_gets_403_and_no_call() {
    let mut net = Net::new();
    let out = net.send("192.0.2.66:5060", &pbx_invite("call-8", "12125551234"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].code(), Some(403));
    assert_eq!(out[0].to, addr("192.0.2.66:5060"));
    assert_eq!(net.shard.calls(), 0);
}

#[test]
fn options_keepalive_gets_200() {
    let mut net = Net::new();
    let opt = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5080;branch=z9hG4bKopt1\r\nMax-Forwards: 70\r\nFrom: <sip:ping@127.0.0.2>;tag=p1\r\nTo: <sip:127.0.0.1:5060>\r\nCall-ID: opt1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let out = net.send(CARRIER, opt.as_bytes());
    let ok = one(&out, CARRIER, "200", is_code(200));
    assert!(ok.header(HeaderKind::Allow).unwrap().contains("INVITE"));
    assert!(ok.header(HeaderKind::To).unwrap().contains(";tag="));
}

#[test]
fn max_forwards_zero_is_483() {
    let mut net = Net::new();
    let inv = String::from_utf8(pbx_invite("call-9", "12125551234"))
        .unwrap()
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    let out = net.send(PBX, inv.as_bytes());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].code(), Some(483));
}

#[test]
fn no_route_is_404() {
    let mut net = Net::new();
    let out = net.send(PBX, &pbx_invite("call-10", "alice"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].code(), Some(404));
}

#[test]
fn retransmitted_invite_is_absorbed() {
    let mut net = Net::new();
    let invite = pbx_invite("call-11", "12125551234");
    net.send(PBX, &invite);
    let out = net.send(PBX, &invite);
    assert_eq!(out.len(), 1, "only the 100 again: {out:#?}");
    assert_eq!(out[0].code(), Some(100));
    assert_eq!(net.shard.calls(), 1);
}

#[test]
fn lost_ack_retransmits_2xx_then_tears_down() {
    let mut net = Net::new();
    let out = net.send(PBX, &pbx_invite("call-12", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    net.send(
        CARRIER,
        &answer(&inv, 200, "c12", "127.0.0.2:5080", &[], SDP),
    );
    let out = net.advance(Duration::from_millis(31_900));
    let oks = out
        .iter()
        .filter(|s| s.to == addr(PBX) && s.code() == Some(200))
        .count();
    assert_eq!(
        oks, 10,
        "2xx at 0.5, 1.5, 3.5, 7.5, 11.5 … (T1 doubling to T2): {out:#?}"
    );
    let out = net.advance(Duration::from_millis(200));
    let bye_b = one(&out, CARRIER, "BYE to the carrier", is_req("BYE"));
    assert!(bye_b.header(HeaderKind::Reason).is_some());
    one(&out, PBX, "BYE to the PBX", is_req("BYE"));
    assert!(net.events().iter().any(|e| matches!(
        e,
        Event::CallEnded {
            result: CallResult::Timeout,
            ..
        }
    )));
}

#[test]
fn reinvite_hold_from_the_carrier() {
    let mut net = Net::new();
    let (inv, ok) = establish(&mut net, "call-13");
    let _ = ok;
    let mut dialog = inv.clone();
    dialog.text = dialog.text.replacen(
        "\r\nTo: <sip:12125551234@127.0.0.2:5080>",
        "\r\nTo: <sip:12125551234@127.0.0.2:5080>;tag=carrier",
        1,
    );
    let hold = SDP.replace(
        "m=audio 6000 RTP/AVP 0\r\n",
        "m=audio 6000 RTP/AVP 0\r\na=sendonly\r\n",
    );
    let reinv = in_dialog(
        "INVITE",
        "sip:sbcd@127.0.0.1:5060",
        CARRIER,
        &dialog,
        1,
        false,
        &hold,
    );
    let out = net.send(CARRIER, &reinv);
    one(&out, CARRIER, "100", is_code(100));
    let to_pbx = one(&out, PBX, "re-INVITE", is_req("INVITE")).clone();
    assert_eq!(to_pbx.body(), hold, "SDP passes byte-exact");
    assert_eq!(to_pbx.cseq(), (1, "INVITE".into()));
    assert!(to_pbx
        .text
        .starts_with("INVITE sip:2001@127.0.0.1:5070 SIP/2.0"));
    assert_hidden(&to_pbx, &["127.0.0.2", "tag=carrier"]);
    let out = net.send(
        PBX,
        &answer(&to_pbx, 200, "ignored", "127.0.0.1:5070", &[], SDP),
    );
    one(&out, PBX, "ACK to the PBX", is_req("ACK"));
    let ok_b = one(&out, CARRIER, "200 to the carrier", is_code(200)).clone();
    assert_eq!(ok_b.cseq(), (1, "INVITE".into()));
    // The carrier ACKs: the retransmission stops.
    let ack = in_dialog(
        "ACK",
        "sip:sbcd@127.0.0.1:5060",
        CARRIER,
        &dialog,
        1,
        false,
        "",
    );
    net.send(CARRIER, &ack);
    let out = net.advance(Duration::from_secs(5));
    assert!(out.iter().all(|s| s.code() != Some(200)), "{out:#?}");
}

#[test]
fn prack_for_a_reliable_provisional() {
    let mut net = Net::new();
    let out = net.send(PBX, &pbx_invite("call-14", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    assert!(inv
        .header(HeaderKind::Supported)
        .unwrap()
        .contains("100rel"));
    let r180 = answer(
        &inv,
        180,
        "c14",
        "127.0.0.2:5080",
        &[("Require", "100rel"), ("RSeq", "1")],
        "",
    );
    let out = net.send(CARRIER, &r180);
    let prack = one(&out, CARRIER, "PRACK", is_req("PRACK"));
    assert_eq!(
        prack.header(HeaderKind::RAck).as_deref(),
        Some("1 1 INVITE")
    );
    assert_eq!(prack.cseq(), (2, "PRACK".into()));
    let ringing = one(&out, PBX, "180", is_code(180));
    assert!(
        ringing.header(HeaderKind::Require).is_none() && ringing.header(HeaderKind::RSeq).is_none(),
        "unreliable on the inbound leg"
    );
    // The retransmitted 180 is not PRACKed twice.
    let out = net.send(CARRIER, &r180);
    assert!(out.iter().all(|s| s.method().as_deref() != Some("PRACK")));
    let out = net.send(
        CARRIER,
        &answer(prack, 200, "c14", "127.0.0.2:5080", &[], ""),
    );
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn delayed_offer_ack_carries_the_answer() {
    let mut net = Net::new();
    let inv = String::from_utf8(pbx_invite("call-15", "12125551234")).unwrap();
    let inv = inv
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("Content-Type: application/sdp\r\n", "")
        .replace(
            &format!("Content-Length: {}", SDP.len()),
            "Content-Length: 0",
        )
        + "\r\n\r\n";
    let out = net.send(PBX, inv.as_bytes());
    let b_inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    let out = net.send(
        CARRIER,
        &answer(&b_inv, 200, "c15", "127.0.0.2:5080", &[], SDP),
    );
    let ok = one(&out, PBX, "200 with the offer", is_code(200)).clone();
    assert_eq!(ok.body(), SDP);
    assert!(
        out.iter().all(|s| s.to != addr(CARRIER)),
        "the ACK waits for the answer"
    );
    let out = net.send(
        PBX,
        &in_dialog("ACK", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 10, true, SDP),
    );
    let ack = one(&out, CARRIER, "ACK with the answer", is_req("ACK"));
    assert_eq!(ack.body(), SDP);
}

#[test]
fn merged_request_is_482() {
    let mut net = Net::new();
    net.send(PBX, &pbx_invite("call-16", "12125551234"));
    let other = String::from_utf8(pbx_invite("call-16", "12125551234"))
        .unwrap()
        .replace("z9hG4bK-pbx-call-16", "z9hG4bK-forked");
    let out = net.send(PBX, other.as_bytes());
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].code(), Some(482));
}

#[test]
fn info_and_options_in_dialog_are_relayed() {
    let mut net = Net::new();
    let (_inv, ok) = establish(&mut net, "call-17");
    let info = String::from_utf8(in_dialog(
        "INFO",
        "sip:sbcd@127.0.0.1:5060",
        PBX,
        &ok,
        11,
        true,
        "",
    ))
    .unwrap()
    .replace(
        "Content-Length: 0\r\n",
        "Content-Type: application/dtmf-relay\r\nContent-Length: 24\r\n",
    ) + "Signal=5\r\nDuration=160\r\n";
    let out = net.send(PBX, info.as_bytes());
    let relayed = one(&out, CARRIER, "INFO", is_req("INFO")).clone();
    assert_eq!(relayed.body(), "Signal=5\r\nDuration=160\r\n");
    assert_eq!(
        relayed.header(HeaderKind::ContentType).as_deref(),
        Some("application/dtmf-relay")
    );
    assert_eq!(relayed.cseq(), (2, "INFO".into()));
    assert!(
        out.iter().all(|s| s.to != addr(PBX)),
        "the PBX waits for the carrier's answer"
    );
    let out = net.send(
        CARRIER,
        &answer(&relayed, 200, "carrier", "127.0.0.2:5080", &[], ""),
    );
    let ok_info = one(&out, PBX, "200 for INFO", is_code(200));
    assert_eq!(ok_info.cseq(), (11, "INFO".into()));

    let opt = in_dialog("OPTIONS", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 12, true, "");
    let out = net.send(PBX, &opt);
    let relayed = one(&out, CARRIER, "OPTIONS", is_req("OPTIONS")).clone();
    assert_eq!(relayed.cseq(), (3, "OPTIONS".into()));
    let out = net.send(
        CARRIER,
        &answer(&relayed, 200, "carrier", "127.0.0.2:5080", &[], ""),
    );
    one(&out, PBX, "200 for OPTIONS", is_code(200));

    // An old CSeq is refused (§12.2.2).
    let out = net.send(
        PBX,
        &in_dialog("INFO", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 5, true, ""),
    );
    one(&out, PBX, "500 for a lower CSeq", is_code(500));
}

#[test]
fn caller_requiring_100rel_gets_reliable_provisionals() {
    let mut net = Net::new();
    let inv = String::from_utf8(pbx_invite("call-18", "12125551234"))
        .unwrap()
        .replace(
            "Contact: <sip:2001@127.0.0.1:5070>\r\n",
            "Contact: <sip:2001@127.0.0.1:5070>\r\nRequire: 100rel\r\n",
        );
    let out = net.send(PBX, inv.as_bytes());
    let b_inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    assert!(
        b_inv.header(HeaderKind::Require).is_none(),
        "each leg negotiates 100rel itself"
    );
    let out = net.send(
        CARRIER,
        &answer(&b_inv, 180, "c18", "127.0.0.2:5080", &[], ""),
    );
    let r180 = one(&out, PBX, "reliable 180", is_code(180)).clone();
    assert_eq!(r180.header(HeaderKind::Require).as_deref(), Some("100rel"));
    let rseq = r180.header(HeaderKind::RSeq).expect("RSeq");
    // No PRACK yet: the 180 is retransmitted (T1 doubling).
    let out = net.advance(Duration::from_millis(1600));
    let again = out
        .iter()
        .filter(|s| s.to == addr(PBX) && s.code() == Some(180))
        .count();
    assert_eq!(again, 2, "at 0.5 s and 1.5 s: {out:#?}");
    let prack = String::from_utf8(in_dialog(
        "PRACK",
        "sip:sbcd@127.0.0.1:5060",
        PBX,
        &r180,
        11,
        true,
        "",
    ))
    .unwrap()
    .replace(
        "Content-Length: 0\r\n",
        &format!("RAck: {rseq} 10 INVITE\r\nContent-Length: 0\r\n"),
    );
    let out = net.send(PBX, prack.as_bytes());
    one(&out, PBX, "200 for PRACK", |s| {
        s.code() == Some(200) && s.cseq().1 == "PRACK"
    });
    assert!(
        out.iter().all(|s| s.to != addr(CARRIER)),
        "the PRACK stops at sbcd"
    );
    let out = net.advance(Duration::from_secs(5));
    assert!(
        out.iter().all(|s| s.code() != Some(180)),
        "no retransmission after the PRACK"
    );
    let out = net.send(
        CARRIER,
        &answer(&b_inv, 200, "c18", "127.0.0.2:5080", &[], SDP),
    );
    one(&out, PBX, "200", is_code(200));
}

#[test]
fn transport_error_fails_over() {
    let mut net = Net::new();
    let out = net.send(PBX, &pbx_invite("call-19", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    assert_ne!(inv.token, 0);
    net.shard.handle_transport_error(net.now, inv.token);
    let out = net.drain();
    one(
        &out,
        BACKUP,
        "INVITE to the backup after a transport error",
        is_req("INVITE"),
    );
    assert!(out.iter().all(|s| s.to != addr(PBX)), "{out:#?}");
}

#[test]
fn update_in_early_dialog_with_a_codec_change() {
    let mut net = Net::new();
    let out = net.send(PBX, &pbx_invite("call-20", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    let out = net.send(
        CARRIER,
        &answer(&inv, 183, "c20", "127.0.0.2:5080", &[], SDP),
    );
    let early = one(&out, PBX, "183", is_code(183)).clone();
    assert_eq!(early.body(), SDP, "early media SDP relayed");
    // UPDATE from the PBX in the early dialog goes to the carrier's early dialog.
    let pcma = SDP.replace("RTP/AVP 0", "RTP/AVP 8");
    let upd = in_dialog(
        "UPDATE",
        "sip:sbcd@127.0.0.1:5060",
        PBX,
        &early,
        11,
        true,
        &pcma,
    );
    let out = net.send(PBX, &upd);
    let relayed = one(&out, CARRIER, "UPDATE", is_req("UPDATE")).clone();
    assert!(relayed.header(HeaderKind::To).unwrap().contains("tag=c20"));
    assert_eq!(relayed.body(), pcma);
    let out = net.send(
        CARRIER,
        &answer(&relayed, 200, "c20", "127.0.0.2:5080", &[], &pcma),
    );
    let ok = one(&out, PBX, "200 for UPDATE", is_code(200));
    assert_eq!(ok.cseq(), (11, "UPDATE".into()));
    assert_eq!(ok.body(), pcma);
}

#[test]
fn record_route_of_the_caller_is_copied_into_the_answer() {
    // The caller's proxy record-routed the INVITE: the 18x/2xx must carry it back (§12.1.1),
    // and sbcd's own requests on that leg follow it as a Route.
    let mut net = Net::new();
    let invite = String::from_utf8(pbx_invite("call-rr", "12125551234"))
        .unwrap()
        .replacen(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nRecord-Route: <sip:127.0.0.1:5071;lr;ftag=x>, <sip:10.9.9.9;lr>\r\n",
            1,
        );
    let out = net.send(PBX, invite.as_bytes());
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    assert_hidden(&inv, &["5071", "10.9.9.9"]);
    let out = net.send(CARRIER, &answer(&inv, 180, "c", "127.0.0.2:5080", &[], ""));
    let ringing = one(&out, PBX, "180", is_code(180));
    let rr: Vec<String> = ringing.with(|m| {
        m.values(HeaderKind::RecordRoute)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    });
    assert_eq!(rr, ["<sip:127.0.0.1:5071;lr;ftag=x>", "<sip:10.9.9.9;lr>"]);
    let out = net.send(CARRIER, &answer(&inv, 200, "c", "127.0.0.2:5080", &[], SDP));
    let ok = one(&out, PBX, "200", is_code(200)).clone();
    assert!(
        ok.text
            .contains("Record-Route: <sip:127.0.0.1:5071;lr;ftag=x>\r\n"),
        "{}",
        ok.text
    );
    // The carrier hangs up: the BYE to the caller goes through the recorded route.
    let bye = in_dialog(
        "BYE",
        "sip:sbcd@127.0.0.1:5060",
        CARRIER,
        &inv,
        2,
        false,
        "",
    );
    let out = net.send(CARRIER, &bye);
    let a_bye = one(&out, PBX, "BYE", is_req("BYE"));
    assert_eq!(
        a_bye.header(HeaderKind::Route).as_deref(),
        Some("<sip:127.0.0.1:5071;lr;ftag=x>")
    );
}

#[test]
fn draining_refuses_new_calls_then_hang_up_all_ends_every_call() {
    let mut net = Net::new();
    let (_inv, ok) = establish(&mut net, "call-up");
    // A second call, still ringing.
    let out = net.send(PBX, &pbx_invite("call-ringing", "12125551234"));
    let ringing_inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    net.send(
        CARRIER,
        &answer(&ringing_inv, 180, "c-r", "127.0.0.2:5080", &[], ""),
    );
    assert_eq!(net.shard.active_calls(), 2);

    net.shard.set_draining(true);
    let out = net.send(PBX, &pbx_invite("call-new", "12125551234"));
    let refused = one(&out, PBX, "503", is_code(503));
    assert_eq!(
        refused.header(HeaderKind::RetryAfter).as_deref(),
        Some("30"),
        "{}",
        refused.text
    );
    assert!(out.iter().all(|s| s.to != addr(CARRIER)), "{out:#?}");
    // Both calls go on while draining.
    assert_eq!(net.shard.active_calls(), 2);
    net.events();

    net.shard.hang_up_all(net.now);
    let out = net.drain();
    let reason = "SIP;cause=503;text=\"shutting down\"";
    let bye_pbx = one(&out, PBX, "BYE to the caller", is_req("BYE"));
    assert_eq!(
        bye_pbx.header(HeaderKind::CallId).as_deref(),
        Some("call-up")
    );
    assert_eq!(bye_pbx.header(HeaderKind::Reason).as_deref(), Some(reason));
    let bye_carrier = one(&out, CARRIER, "BYE to the callee", is_req("BYE"));
    assert_eq!(
        bye_carrier.header(HeaderKind::Reason).as_deref(),
        Some(reason)
    );
    let cancel = one(
        &out,
        CARRIER,
        "CANCEL of the ringing call",
        is_req("CANCEL"),
    );
    assert_eq!(
        cancel.header(HeaderKind::CallId),
        ringing_inv.header(HeaderKind::CallId)
    );
    one(&out, PBX, "503 to the ringing caller", |s| {
        s.code() == Some(503) && s.cseq().1 == "INVITE"
    });
    assert_eq!(net.shard.active_calls(), 0);
    let ended: Vec<CallResult> = net
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::CallEnded { result, .. } => Some(result),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [CallResult::Answered, CallResult::Failed(503)]);
    // The BYEs are transactions of their own: answered, they end.
    net.send(
        CARRIER,
        &answer(bye_carrier, 200, "carrier", "127.0.0.2:5080", &[], ""),
    );
    let _ = ok;
}

#[test]
fn a_trunk_at_max_calls_or_max_cps_gets_503() {
    let config = CONFIG.replacen(
        "inbound.allow = [\"127.0.0.1/32\"]\n",
        "inbound.allow = [\"127.0.0.1/32\"]\ninbound.max_calls = 2\ninbound.max_cps = 3\n",
        1,
    );
    let mut net = Net::with_config(&config);
    let (_inv, ok) = establish(&mut net, "c1");
    let (_inv2, ok2) = establish(&mut net, "c2");
    // Two calls up: the third is refused, and nothing reaches the carrier.
    let out = net.send(PBX, &pbx_invite("c3", "12125551234"));
    one(&out, PBX, "503", is_code(503));
    assert!(out.iter().all(|s| s.to != addr(CARRIER)), "{out:#?}");
    assert!(net.events().contains(&Event::CallRefused {
        trunk: "pbx".into(),
        reason: "max_calls"
    }));
    // The first call ends: its slot is given back to a new call (the refused c3 took no
    // start: c1, c2, c4 are the 3 starts of this second).
    let out = net.send(
        PBX,
        &in_dialog("BYE", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 11, true, ""),
    );
    one(&out, PBX, "200 for BYE", is_code(200));
    let out = net.send(PBX, &pbx_invite("c4", "12125551234"));
    one(
        &out,
        CARRIER,
        "INVITE of the call that took the freed slot",
        is_req("INVITE"),
    );
    // The second call ends too: a slot is free, but a fourth start this second is over
    // max_cps.
    let out = net.send(
        PBX,
        &in_dialog("BYE", "sip:sbcd@127.0.0.1:5060", PBX, &ok2, 11, true, ""),
    );
    one(&out, PBX, "200 for BYE", is_code(200));
    let out = net.send(PBX, &pbx_invite("c5", "12125551234"));
    one(&out, PBX, "503", is_code(503));
    assert!(net.events().contains(&Event::CallRefused {
        trunk: "pbx".into(),
        reason: "max_cps"
    }));
}

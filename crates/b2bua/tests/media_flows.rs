//! Media anchoring in call flows: SDP rewritten on both legs, the relay told where each leg's
//! media goes, hold, hang-up releasing the ports, media timeout, exhaustion and bad SDP.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use b2bua::{CallResult, Event, MediaSetup, MediaTotals};
use common::*;
use rtp_relay::control::Command;
use rtp_relay::latch::LatchPolicy;
use rtp_relay::session::Leg;
use rtp_relay::stats::Direction as Counters;

const CONFIG: &str = r#"
[[trunk]]
name = "pbx"
inbound.allow = ["127.0.0.1/32"]
outbound.uri = "sip:127.0.0.1:5070"
[[trunk]]
name = "carrier"
inbound.allow = ["127.0.0.2/32"]
outbound.uri = "sip:127.0.0.2:5080"
media.latch_any_secs = 5
[[route]]
from = "pbx"
to = ["carrier"]
"#;

const MEDIA_IP: &str = "192.0.2.100";
const IDLE: Duration = Duration::from_secs(60);
const HOLD: Duration = Duration::from_secs(3600);

fn net(pairs: &[u16]) -> Net {
    Net::with_options(CONFIG, |o| {
        o.media = Some(MediaSetup {
            advertise: MEDIA_IP.parse().unwrap(),
            pairs_by_worker: vec![pairs.to_vec()],
            idle_timeout: IDLE,
            hold_timeout: HOLD,
        });
    })
}

fn commands(net: &mut Net) -> Vec<Command> {
    std::iter::from_fn(|| net.shard.poll_media()).collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const CARRIER_SDP: &str = "v=0\r\no=carrier 5 5 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\na=ssrc:3129352836 cname:sip:12125551234@127.0.0.2:35881\r\n";

#[test]
fn sdp_is_anchored_on_both_legs_and_released_at_hangup() {
    let mut net = net(&[20000, 20002, 20004, 20006]);
    let out = net.send(PBX, &pbx_invite("call-m1", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    let body = inv.body();
    assert!(body.contains(&format!("c=IN IP4 {MEDIA_IP}\r\n")), "{body}");
    assert!(
        body.contains(&format!("o=- 1 1 IN IP4 {MEDIA_IP}\r\n")),
        "{body}"
    );
    assert!(
        !body.contains("127.0.0.1"),
        "the PBX's address does not reach the carrier: {body}"
    );
    let cmds = commands(&mut net);
    // Two components (RTP, RTCP) opened, then leg A's addresses from its SDP.
    let opens: Vec<&Command> = cmds
        .iter()
        .filter(|c| matches!(c, Command::Open { .. }))
        .collect();
    assert_eq!(opens.len(), 2, "{cmds:?}");
    let Command::Open { ports, .. } = opens[0] else {
        unreachable!()
    };
    let (a_port, b_port) = (ports[0], ports[1]);
    assert!(
        body.contains(&format!("m=audio {b_port} RTP/AVP 0\r\n")),
        "{body}"
    );
    assert!(cmds.iter().any(|c| matches!(c,
        Command::Update { leg: Leg::A, expected: Some(e), idle: Some(i), policy: LatchPolicy::Strict, .. }
            if *e == sa("127.0.0.1:6000") && *i == IDLE)));
    assert!(cmds.iter().any(|c| matches!(c,
        Command::Update { leg: Leg::A, expected: Some(e), .. } if *e == sa("127.0.0.1:6001"))));

    // The carrier answers: its SDP is rewritten for the PBX, the relay learns its address.
    let out = net.send(
        CARRIER,
        &answer(&inv, 200, "c1", "127.0.0.2:5080", &[], CARRIER_SDP),
    );
    let ok = one(&out, PBX, "200", is_code(200)).clone();
    let body = ok.body();
    assert!(
        body.contains(&format!("m=audio {a_port} RTP/AVP 0 101\r\n")),
        "{body}"
    );
    assert!(
        body.contains("a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"),
        "byte-exact: {body}"
    );
    assert!(!body.contains("127.0.0.2"), "{body}");
    assert!(
        body.contains("a=ssrc:3129352836 cname:sbcd-3129352836\r\n"),
        "{body}"
    );
    let cmds = commands(&mut net);
    assert!(
        cmds.iter().any(|c| matches!(c,
        // The carrier's trunk lets any source latch for 5 s (media.latch_any_secs).
        Command::Update { leg: Leg::B, expected: Some(e), policy: LatchPolicy::AnySource(w), .. }
            if *e == sa("127.0.0.2:7000") && *w == Duration::from_secs(5))),
        "{cmds:?}"
    );
    net.send(
        PBX,
        &in_dialog("ACK", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 10, true, ""),
    );

    // Hold from the PBX: the same ports, the hold timeout.
    let hold = SDP.replace(
        "m=audio 6000 RTP/AVP 0\r\n",
        "m=audio 6000 RTP/AVP 0\r\na=sendonly\r\n",
    );
    let out = net.send(
        PBX,
        &in_dialog(
            "INVITE",
            "sip:sbcd@127.0.0.1:5060",
            PBX,
            &ok,
            11,
            true,
            &hold,
        ),
    );
    let reinv = one(&out, CARRIER, "re-INVITE", is_req("INVITE"));
    assert!(reinv
        .body()
        .contains(&format!("m=audio {b_port} RTP/AVP 0\r\na=sendonly\r\n")));
    let cmds = commands(&mut net);
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Update { leg: Leg::A, idle: Some(i), .. } if *i == HOLD)),
        "{cmds:?}"
    );
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::Open { .. })),
        "no new ports"
    );

    // Hang-up: both components closed, the four ports back in the pool.
    assert_eq!(net.shard.media_pairs_in_use(), 2);
    net.send(
        PBX,
        &in_dialog("BYE", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 12, true, ""),
    );
    let cmds = commands(&mut net);
    assert_eq!(
        cmds.iter()
            .filter(|c| matches!(c, Command::Close { .. }))
            .count(),
        2,
        "{cmds:?}"
    );
    assert_eq!(net.shard.media_pairs_in_use(), 0);

    // The relay reports each component's counters as it closes it; the call's media totals
    // (summed, per leg, with the trunks) come out once, after the last one.
    let now = net.now;
    let mut events = Vec::new();
    let closed: Vec<u64> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Close { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    for (k, id) in closed.iter().enumerate() {
        let mut a = Counters::default();
        (a.packets, a.bytes, a.foreign) = (100 + k as u64, 17_200, 1);
        let mut b = Counters::default();
        (b.packets, b.bytes) = (50, 8_600);
        let from = [a, b];
        net.shard
            .handle_media_event(now, &rtp_relay::control::Event::Closed { id: *id, from });
        events.push(net.events());
    }
    assert!(
        !events[0].iter().any(|e| matches!(e, Event::MediaEnded(_))),
        "not before every component reported: {:?}",
        events[0]
    );
    let totals: Vec<&MediaTotals> = events[1]
        .iter()
        .filter_map(|e| match e {
            Event::MediaEnded(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(totals.len(), 1, "{:?}", events[1]);
    let t = totals[0];
    assert_eq!(t.trunks, [Some("pbx".into()), Some("carrier".into())]);
    assert_eq!(t.streams, 1);
    assert_eq!(
        (t.from[0].packets, t.from[0].bytes, t.from[0].dropped()),
        (201, 34_400, 2)
    );
    assert_eq!((t.from[1].packets, t.from[1].bytes), (100, 17_200));
    // A late duplicate changes nothing.
    net.shard.handle_media_event(
        now,
        &rtp_relay::control::Event::Closed {
            id: closed[0],
            from: [Counters::default(); 2],
        },
    );
    assert!(!net
        .events()
        .iter()
        .any(|e| matches!(e, Event::MediaEnded(_))));
}

#[test]
fn media_timeout_hangs_up_both_legs_with_a_reason() {
    let mut net = net(&[20000, 20002]);
    let out = net.send(PBX, &pbx_invite("call-m2", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    let out = net.send(
        CARRIER,
        &answer(&inv, 200, "c1", "127.0.0.2:5080", &[], CARRIER_SDP),
    );
    let ok = one(&out, PBX, "200", is_code(200)).clone();
    net.send(
        PBX,
        &in_dialog("ACK", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 10, true, ""),
    );
    let cmds = commands(&mut net);
    let Some(Command::Open { id, .. }) = cmds.iter().find(|c| matches!(c, Command::Open { .. }))
    else {
        panic!("{cmds:?}")
    };
    let now = net.now;
    net.shard
        .handle_media_event(now, &rtp_relay::control::Event::Idle { id: *id });
    let out = net.drain();
    let bye_a = one(&out, PBX, "BYE to the PBX", is_req("BYE"));
    let bye_b = one(&out, CARRIER, "BYE to the carrier", is_req("BYE"));
    for b in [bye_a, bye_b] {
        assert!(
            b.text
                .contains("Reason: SIP;cause=408;text=\"media timeout\"\r\n"),
            "{}",
            b.text
        );
    }
    assert!(net.events().iter().any(|e| matches!(
        e,
        Event::CallEnded {
            result: CallResult::MediaTimeout,
            ..
        }
    )));
    assert_eq!(net.shard.media_pairs_in_use(), 0);
}

#[test]
fn no_ports_left_is_503_and_unreadable_sdp_is_488() {
    let mut net = net(&[20000, 20002]);
    let out = net.send(PBX, &pbx_invite("call-m3", "12125551234"));
    one(&out, CARRIER, "INVITE", is_req("INVITE"));
    let out = net.send(PBX, &pbx_invite("call-m4", "12125551234"));
    one(&out, PBX, "503: the range is in use", is_code(503));
    assert_eq!(
        net.shard.media_pairs_in_use(),
        2,
        "the first call keeps its pairs"
    );
    let bad = String::from_utf8(pbx_invite("call-m5", "1"))
        .unwrap()
        .replace("v=0\r\n", "x=0\r\n");
    let mut net = self::net(&[20000, 20002]);
    let out = net.send(PBX, bad.as_bytes());
    one(&out, PBX, "488", is_code(488));
    assert_eq!(net.shard.media_pairs_in_use(), 0);
}

#[test]
fn failover_forgets_the_failed_trunks_media_address() {
    let config = CONFIG
        .replace(
            "[[route]]\nfrom = \"pbx\"\nto = [\"carrier\"]",
            "[[trunk]]\nname = \"backup\"\noutbound.uri = \"sip:127.0.0.3:5090\"\n[[route]]\nfrom = \"pbx\"\nto = [\"carrier\", \"backup\"]",
        );
    let mut net = Net::with_options(&config, |o| {
        o.media = Some(MediaSetup {
            advertise: MEDIA_IP.parse().unwrap(),
            pairs_by_worker: vec![vec![20000, 20002]],
            idle_timeout: IDLE,
            hold_timeout: HOLD,
        });
    });
    let out = net.send(PBX, &pbx_invite("call-m6", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    // Early media from the carrier, then it fails.
    net.send(
        CARRIER,
        &answer(&inv, 183, "c1", "127.0.0.2:5080", &[], CARRIER_SDP),
    );
    commands(&mut net);
    let out = net.send(CARRIER, &answer(&inv, 503, "c1", "127.0.0.2:5080", &[], ""));
    let b_inv = one(&out, BACKUP, "INVITE to the backup", is_req("INVITE")).clone();
    let cmds = commands(&mut net);
    assert!(
        cmds.iter().any(|c| matches!(
            c,
            Command::Update {
                leg: Leg::B,
                expected: None,
                ..
            }
        )),
        "the carrier's address is forgotten: {cmds:?}"
    );
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::Open { .. })),
        "same ports"
    );
    // The backup gets the same anchored offer (same ports facing leg B).
    assert_eq!(b_inv.body(), inv.body());
}

#[test]
fn calls_take_the_whole_range_and_give_it_all_back() {
    // 20 pairs: 10 calls of one stream (a pair facing each leg) fill the range.
    let pairs: Vec<u16> = (0..20).map(|i| 20000 + 2 * i).collect();
    let mut net = net(&pairs);
    let mut calls = Vec::new();
    for i in 0..10 {
        let cid = format!("call-r{i}");
        let out = net.send(PBX, &pbx_invite(&cid, "12125551234"));
        let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
        let out = net.send(
            CARRIER,
            &answer(
                &inv,
                200,
                &format!("c{i}"),
                "127.0.0.2:5080",
                &[],
                CARRIER_SDP,
            ),
        );
        let ok = one(&out, PBX, "200", is_code(200)).clone();
        net.send(
            PBX,
            &in_dialog("ACK", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 10, true, ""),
        );
        calls.push(ok);
    }
    assert_eq!(net.shard.media_pairs_in_use(), 20);
    let out = net.send(PBX, &pbx_invite("call-r-extra", "12125551234"));
    one(&out, PBX, "503 when the range is full", is_code(503));
    for ok in &calls {
        net.send(
            PBX,
            &in_dialog("BYE", "sip:sbcd@127.0.0.1:5060", PBX, ok, 11, true, ""),
        );
    }
    assert_eq!(net.shard.media_pairs_in_use(), 0, "every pair back");
    let closes = commands(&mut net)
        .iter()
        .filter(|c| matches!(c, Command::Close { .. }))
        .count();
    assert_eq!(closes, 20, "RTP and RTCP of each call closed");
    let out = net.send(PBX, &pbx_invite("call-r-again", "12125551234"));
    one(
        &out,
        CARRIER,
        "a new call gets ports again",
        is_req("INVITE"),
    );
}

/// A reload's `media.idle_timeout_secs` and `hold_timeout_secs` apply to the streams of new
/// calls; a call set up before keeps the limit its relay components were given.
#[test]
fn reloaded_idle_timeout_applies_to_new_calls() {
    let mut net = net(&[20000, 20002, 20004, 20006]);
    let idle_of = |cmds: &[Command]| {
        cmds.iter().find_map(|c| match c {
            Command::Update {
                leg: Leg::A,
                idle: Some(i),
                ..
            } => Some(*i),
            _ => None,
        })
    };
    net.send(PBX, &pbx_invite("call-before", "12125551234"));
    assert_eq!(idle_of(&commands(&mut net)), Some(IDLE));

    let reloaded = format!(
        "{}{CONFIG}",
        SECTIONS.replace(
            "port_max = 20099\n",
            "port_max = 20099\nidle_timeout_secs = 7\nhold_timeout_secs = 70\n"
        )
    );
    let config = sbc_config::load_str(&reloaded, std::path::Path::new(".")).unwrap();
    let shared = std::sync::Arc::new(trunks::Shared::new([7; 32], net.now));
    net.shard
        .set_routing(std::sync::Arc::new(b2bua::Routing::new(
            config,
            shared,
            |_, _, _| Vec::new(),
        )));
    net.send(PBX, &pbx_invite("call-after", "12125551234"));
    assert_eq!(
        idle_of(&commands(&mut net)),
        Some(Duration::from_secs(7)),
        "the new call's streams get the reloaded idle limit"
    );
}

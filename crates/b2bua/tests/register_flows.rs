//! Registration on behalf through a shard: REGISTER with digest to the trunk's registrar,
//! calls the registrar sends to the registered Contact, un-REGISTER when draining and when
//! the trunk leaves the configuration.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use b2bua::{Event, Routing};
use common::*;
use sip_codec::{Challenge, HeaderKind};
use trunks::register::Phase;

const REGISTRAR: &str = "127.0.0.2:5080";

const CONFIG: &str = r#"
[[trunk]]
name = "pbx"
inbound.allow = ["127.0.0.1/32"]
outbound.uri = "sip:127.0.0.1:5070"
[[trunk]]
name = "reg"
outbound.uri = "sip:127.0.0.2:5080"
outbound.domain = "carrier.test"
outbound.auth = { username = "sbc", password = "pw" }
outbound.register = { expires_secs = 300 }
[[route]]
from = "reg"
to = ["pbx"]
[[route]]
from = "pbx"
to = ["reg"]
"#;

fn registration(net: &mut Net) -> Vec<(String, trunks::register::Status)> {
    net.shard.registrations()
}

/// Runs the REGISTER -> 401 -> REGISTER -> 200 exchange; returns the Contact registered.
fn register(net: &mut Net) -> String {
    let out = net.advance(Duration::from_millis(1));
    let r1 = one(&out, REGISTRAR, "REGISTER", is_req("REGISTER")).clone();
    assert!(
        r1.text.starts_with("REGISTER sip:carrier.test SIP/2.0\r\n"),
        "{}",
        r1.text
    );
    let ch = r#"Digest realm="carrier.test", nonce="abc", algorithm=MD5, qop="auth", opaque="o1""#;
    let out = net.send(
        REGISTRAR,
        &answer(
            &r1,
            401,
            "r1",
            "127.0.0.2:5080",
            &[("WWW-Authenticate", ch)],
            "",
        ),
    );
    let r2 = one(
        &out,
        REGISTRAR,
        "REGISTER with credentials",
        is_req("REGISTER"),
    )
    .clone();
    let creds = r2.header(HeaderKind::Authorization).expect("Authorization");
    let c = Challenge::parse(creds.as_bytes(), HeaderKind::Authorization).unwrap();
    assert_eq!(c.param(b"uri"), Some(&b"sip:carrier.test"[..]));
    assert_eq!(c.param(b"opaque"), Some(&b"o1"[..]));
    assert_eq!(r2.cseq().0, r1.cseq().0 + 1);
    let contact = r2.header(HeaderKind::Contact).unwrap();
    net.send(
        REGISTRAR,
        &answer(&r2, 200, "r2", "127.0.0.2:5080", &[], ""),
    );
    contact
}

#[test]
fn registers_with_digest_and_takes_calls_to_its_contact() {
    let mut net = Net::with_config(CONFIG);
    let contact = register(&mut net);
    let user = trunks::Shared::new([7; 32], Instant::now()).contact_user("reg", Some(b"pw"));
    let user = String::from_utf8(user).unwrap();
    assert_eq!(contact, format!("<sip:{user}@127.0.0.1:5060>"));
    let regs = registration(&mut net);
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].0, "reg");
    assert_eq!(regs[0].1.phase, Phase::Registered);
    assert_eq!(regs[0].1.granted_secs, Some(300));
    assert!(net.events().iter().any(|e| matches!(
        e,
        Event::Registration { trunk, status } if trunk == "reg" && status.phase == Phase::Registered
    )));

    // The registrar delivers a call to the Contact: it comes from trunk "reg", the number is
    // in To, and it is routed to the PBX.
    let invite = String::from_utf8(pbx_invite("call-r1", "12125550000"))
        .unwrap()
        .replace(
            "INVITE sip:12125550000@127.0.0.1:5060",
            &format!("INVITE sip:{user}@127.0.0.1:5060"),
        )
        .replace("127.0.0.1:5070", REGISTRAR);
    let out = net.send(REGISTRAR, invite.as_bytes());
    one(&out, REGISTRAR, "100", is_code(100));
    let inv = one(&out, PBX, "INVITE to the PBX", is_req("INVITE"));
    assert!(
        inv.text
            .starts_with("INVITE sip:12125550000@127.0.0.1:5070 SIP/2.0\r\n"),
        "{}",
        inv.text
    );

    // A Contact user that is not ours from an unknown source: 403.
    let stranger = invite
        .replace(&user, "r0000000000000000")
        .replace("call-r1", "call-r2");
    let out = net.send("192.0.2.66:5060", stranger.as_bytes());
    one(&out, "192.0.2.66:5060", "403", is_code(403));

    // Refreshed before the expiry (55% of 300 s).
    assert!(net
        .advance(Duration::from_secs(164))
        .iter()
        .all(|s| s.method().as_deref() != Some("REGISTER")));
    let out = net.advance(Duration::from_millis(1300));
    let refresh = one(&out, REGISTRAR, "refresh", is_req("REGISTER"));
    assert!(refresh
        .header(HeaderKind::Authorization)
        .unwrap()
        .contains("nc=00000002"));
}

#[test]
fn draining_unregisters() {
    let mut net = Net::with_config(CONFIG);
    register(&mut net);
    net.shard.set_draining(true);
    assert_eq!(net.shard.unregistering(), 0, "acted on at the next timeout");
    let out = net.advance(Duration::ZERO);
    let r = one(&out, REGISTRAR, "un-REGISTER", is_req("REGISTER")).clone();
    assert!(r.text.contains("Expires: 0\r\n"), "{}", r.text);
    assert!(
        r.header(HeaderKind::Authorization).is_some(),
        "with credentials"
    );
    assert_eq!(net.shard.unregistering(), 1);
    net.send(REGISTRAR, &answer(&r, 200, "r3", "127.0.0.2:5080", &[], ""));
    assert_eq!(net.shard.unregistering(), 0);
    assert!(net.shard.registrations().is_empty());
}

#[test]
fn a_trunk_removed_by_reload_is_unregistered() {
    let mut net = Net::with_config(CONFIG);
    register(&mut net);
    let without = CONFIG
        .replace("outbound.register = { expires_secs = 300 }\n", "")
        .replace("[[route]]\nfrom = \"reg\"\nto = [\"pbx\"]\n", "");
    let config = load(&without);
    let shared = Arc::new(trunks::Shared::new([7; 32], Instant::now()));
    net.shard
        .set_routing(Arc::new(Routing::new(config, shared, |_, _, _| Vec::new())));
    let out = net.advance(Duration::ZERO);
    let r = one(&out, REGISTRAR, "un-REGISTER", is_req("REGISTER")).clone();
    assert!(r.text.contains("Expires: 0\r\n"));
    net.send(REGISTRAR, &answer(&r, 200, "r4", "127.0.0.2:5080", &[], ""));
    assert!(net.shard.registrations().is_empty());
    assert!(
        net.advance(Duration::from_secs(600)).is_empty(),
        "nothing more"
    );
}

const PBX_REG_CONFIG: &str = r#"
[[trunk]]
name = "office"
inbound.digest = { realm = "sbc.test", challenge = 401, users = [{ username = "pbx1", password = "pw1" }] }
inbound.register = true
[[trunk]]
name = "carrier"
inbound.allow = ["127.0.0.2/32"]
outbound.uri = "sip:127.0.0.2:5080"
[[route]]
from = "carrier"
to = ["office"]
[[route]]
from = "office"
to = ["carrier"]
"#;

/// The PBX behind NAT: it writes its private address in Contact, and its REGISTER arrives
/// from the NAT's public mapping.
const PBX_PUBLIC: &str = "127.0.0.9:40123";

fn pbx_register(cseq: u32, branch: &str, auth: Option<&str>) -> Vec<u8> {
    let mut t = format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:pbx1@sbc.test>;tag=p1\r\nTo: <sip:pbx1@sbc.test>\r\nCall-ID: pbx-reg-1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:pbx1@192.168.1.10:5062;transport=udp>\r\nExpires: 600\r\n"
    );
    if let Some(a) = auth {
        t.push_str(&format!("Authorization: {a}\r\n"));
    }
    t.push_str("Content-Length: 0\r\n\r\n");
    t.into_bytes()
}

#[test]
fn a_pbx_registers_and_receives_calls_at_its_nat_address() {
    let mut net = Net::with_config(PBX_REG_CONFIG);
    // Not registered yet: a call for it fails with 480.
    let carrier_invite = |cid: &str| {
        String::from_utf8(pbx_invite(cid, "12125557777"))
            .unwrap()
            .replace("127.0.0.1:5070", "127.0.0.2:5080")
            .into_bytes()
    };
    let out = net.send("127.0.0.2:5080", &carrier_invite("call-n1"));
    one(&out, "127.0.0.2:5080", "480", is_code(480));

    let out = net.send(PBX_PUBLIC, &pbx_register(1, "r1", None));
    let ch = one(&out, PBX_PUBLIC, "401", is_code(401)).clone();
    assert!(
        ch.text.contains(";received=127.0.0.9;rport=40123")
            || ch.text.contains(";rport=40123;received=127.0.0.9"),
        "{}",
        ch.text
    );
    let www = HeaderKind::WwwAuthenticate;
    let creds = credentials(&ch, www, "pbx1", "pw1", "REGISTER", "sip:127.0.0.1:5060", 1);
    let reg = pbx_register(2, "r2", Some(&creds));
    let out = net.send(PBX_PUBLIC, &reg);
    let ok = one(&out, PBX_PUBLIC, "200", is_code(200)).clone();
    assert_eq!(
        ok.header(HeaderKind::Contact).as_deref(),
        Some("<sip:pbx1@192.168.1.10:5062;transport=udp>;expires=600")
    );
    // A retransmission gets the same 200 (not a 403 for a replayed nonce count).
    let out = net.send(PBX_PUBLIC, &reg);
    assert_eq!(
        one(&out, PBX_PUBLIC, "200 again", is_code(200)).text,
        ok.text
    );

    // Calls for the trunk go to the NAT mapping, to the Contact as registered, the number in
    // To.
    let out = net.send("127.0.0.2:5080", &carrier_invite("call-n2"));
    let inv = one(&out, PBX_PUBLIC, "INVITE to the PBX", is_req("INVITE"));
    assert!(
        inv.text
            .starts_with("INVITE sip:pbx1@192.168.1.10:5062;transport=udp SIP/2.0\r\n"),
        "{}",
        inv.text
    );
    assert_eq!(
        inv.header(HeaderKind::To).as_deref(),
        Some("<sip:12125557777@192.168.1.10:5062>")
    );

    // A wrong password: 403, no binding change.
    let bad = credentials(
        &ch,
        www,
        "pbx1",
        "nope",
        "REGISTER",
        "sip:127.0.0.1:5060",
        2,
    );
    let out = net.send(PBX_PUBLIC, &pbx_register(3, "r3", Some(&bad)));
    one(&out, PBX_PUBLIC, "403", is_code(403));
}

#[test]
fn registered_pbx_gets_options_keepalives_at_its_nat_address() {
    let mut net = Net::with_config(PBX_REG_CONFIG);
    let out = net.send(PBX_PUBLIC, &pbx_register(1, "k1", None));
    let ch = one(&out, PBX_PUBLIC, "401", is_code(401)).clone();
    let www = HeaderKind::WwwAuthenticate;
    let creds = credentials(&ch, www, "pbx1", "pw1", "REGISTER", "sip:127.0.0.1:5060", 1);
    let out = net.send(PBX_PUBLIC, &pbx_register(2, "k2", Some(&creds)));
    one(&out, PBX_PUBLIC, "200", is_code(200));
    let out = net.advance(Duration::from_secs(31));
    let ka = one(&out, PBX_PUBLIC, "keep-alive", is_req("OPTIONS")).clone();
    assert!(
        ka.text
            .starts_with("OPTIONS sip:pbx1@192.168.1.10:5062;transport=udp SIP/2.0\r\n"),
        "{}",
        ka.text
    );
    // Answered: nothing else happens; the next round comes 30 s later.
    net.send(
        PBX_PUBLIC,
        &answer(&ka, 200, "ka", "192.168.1.10:5062", &[], ""),
    );
    let out = net.advance(Duration::from_secs(30));
    one(&out, PBX_PUBLIC, "next keep-alive", is_req("OPTIONS"));
}

const PROBE_CONFIG: &str = r#"
[[trunk]]
name = "pbx"
inbound.allow = ["127.0.0.1/32"]
outbound.uri = "sip:127.0.0.1:5070"
[[trunk]]
name = "carrier"
outbound.uri = "sip:127.0.0.2:5080"
outbound.options_ping_secs = 10
[[trunk]]
name = "backup"
outbound.uri = "sip:127.0.0.3:5090"
[[route]]
from = "pbx"
to = ["carrier", "backup"]
"#;

#[test]
fn a_trunk_that_stops_answering_options_is_skipped_until_it_answers() {
    let mut net = Net::with_config(PROBE_CONFIG);
    let out = net.advance(Duration::ZERO);
    let probe = one(&out, CARRIER, "OPTIONS probe", is_req("OPTIONS")).clone();
    assert!(
        probe
            .text
            .starts_with("OPTIONS sip:127.0.0.2:5080 SIP/2.0\r\n"),
        "{}",
        probe.text
    );
    net.send(
        CARRIER,
        &answer(&probe, 200, "p", "127.0.0.2:5080", &[], ""),
    );
    // The carrier goes silent: the next probe times out (Timer F, 32 s): down.
    net.advance(Duration::from_secs(45));
    assert!(net.events().iter().any(|e| matches!(
        e,
        Event::TrunkHealth { trunk, up: false, status: 408 } if trunk == "carrier"
    )));
    let out = net.send(PBX, &pbx_invite("call-p1", "12125551234"));
    assert!(
        out.iter().all(|s| s.to != addr(CARRIER)),
        "skipped: {out:#?}"
    );
    one(&out, BACKUP, "INVITE to the backup", is_req("INVITE"));
    // It answers again (a 404 counts: it is alive): up, and calls go to it.
    let out = net.advance(Duration::from_secs(12));
    let probe = out
        .iter()
        .find(|s| s.to == addr(CARRIER) && s.method().as_deref() == Some("OPTIONS"))
        .expect("probes go on while down")
        .clone();
    net.send(
        CARRIER,
        &answer(&probe, 404, "p2", "127.0.0.2:5080", &[], ""),
    );
    assert!(net.events().iter().any(|e| matches!(
        e,
        Event::TrunkHealth { trunk, up: true, status: 404 } if trunk == "carrier"
    )));
    let out = net.send(PBX, &pbx_invite("call-p2", "12125551234"));
    one(&out, CARRIER, "INVITE to the carrier", is_req("INVITE"));
}

/// Reloads leave a registration whose settings did not change alone (no REGISTER at all),
/// and register again when they did: the old binding is removed (Expires: 0) and the new
/// settings are registered.
#[test]
fn reload_reregisters_only_changed_registrations() {
    let mut net = Net::with_config(CONFIG);
    register(&mut net);
    let reload = |net: &mut Net, text: &str| {
        let shared = Arc::new(trunks::Shared::new([7; 32], Instant::now()));
        net.shard
            .set_routing(Arc::new(Routing::new(load(text), shared, |_, _, _| {
                Vec::new()
            })));
        net.advance(Duration::from_millis(1))
    };

    // A route changes; the registration's settings do not.
    let other_route = CONFIG.replace(
        "[[route]]\nfrom = \"pbx\"\nto = [\"reg\"]\n",
        "[[route]]\nfrom = \"pbx\"\nmatch = \"^1\"\nto = [\"reg\"]\n",
    );
    assert_ne!(other_route, CONFIG);
    let out = reload(&mut net, &other_route);
    assert!(
        out.iter().all(|s| s.to != addr(REGISTRAR)),
        "an unchanged registration is left alone: {out:#?}"
    );
    assert_eq!(registration(&mut net)[0].1.phase, Phase::Registered);

    // Its expiry changes: un-REGISTER the old binding, REGISTER the new one.
    let longer = other_route.replace("expires_secs = 300", "expires_secs = 600");
    let out = reload(&mut net, &longer);
    let old = one(&out, REGISTRAR, "un-REGISTER", is_req("REGISTER")).clone();
    assert!(old.text.contains("Expires: 0\r\n"), "{}", old.text);
    // The new REGISTER waits for the un-REGISTER's answer: a registrar that got them in the
    // other order would remove the new binding (same Contact, §10.3 step 7).
    let out = net.send(
        REGISTRAR,
        &answer(&old, 200, "r5", "127.0.0.2:5080", &[], ""),
    );
    assert!(out.is_empty(), "{out:#?}");
    let out = net.advance(Duration::from_millis(1));
    let new = one(&out, REGISTRAR, "REGISTER", is_req("REGISTER"));
    assert!(new.text.contains("Expires: 600\r\n"), "{}", new.text);
}

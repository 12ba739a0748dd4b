//! Registration on behalf through a shard: REGISTER with digest to the trunk's registrar,
//! calls the registrar sends to the registered Contact, un-REGISTER when draining and when
//! the trunk leaves the configuration.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use b2bua::{Event, Routing};
use common::*;
use sip_codec::{Challenge, HeaderKind};
use trunks::register::Phase;

const REGISTRAR: &str = "127.0.0.2:5080";

const CONFIG: &str = r#"
[sip]
listen = ["udp:127.0.0.1:5060"]
[media]
listen = "127.0.0.1"
port_min = 20000
port_max = 20099
[admin]
listen = "127.0.0.1:9060"
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
    let user = trunks::Shared::new([7; 32], Instant::now()).contact_user("reg");
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
    let config = sbc_config::load_str(&without, Path::new(".")).unwrap();
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

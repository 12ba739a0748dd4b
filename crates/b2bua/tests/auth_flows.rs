//! Trunk modes in whole call flows: digest challenges sbcd sends (inbound) and answers
//! (outbound), outbound decoration, auth header and tech prefix handling.
//!
//! The scripted carrier issues real challenges with `trunks`' nonces and checks sbcd's
//! credentials with `trunks::verify` (strict digest-URI policy); the arithmetic itself is
//! covered by the known-answer tests of `crates/trunks`.

mod common;

use std::time::Duration;

use b2bua::Event;
use common::*;
use sip_codec::{Challenge, HeaderKind};
use trunks::answer::challenge;
use trunks::digest::Algorithm;
use trunks::nonce::{NonceCounts, Nonces};
use trunks::verify::{verify, Check, UriPolicy, Verdict};

const CONFIG: &str = r#"
[[trunk]]
name = "pbx"
inbound.allow = ["127.0.0.1/32"]
inbound.digest = { realm = "sbc.test", users = [{ username = "pbx1", password = "pw1" }] }
outbound.uri = "sip:127.0.0.1:5070"
[[trunk]]
name = "carrier"
inbound.allow = ["127.0.0.2/32"]
inbound.header = { name = "X-Trunk-Key", value = "s3cret" }
inbound.prefix = "91919#"
outbound.uri = "sip:127.0.0.2:5080"
outbound.prefix = "555#"
outbound.domain = "carrier.test"
outbound.header = { name = "X-Auth-Key", value = "k" }
outbound.auth = { username = "sbc", password = "pw" }
[[trunk]]
name = "backup"
outbound.uri = "sip:127.0.0.3:5090"
outbound.auth = { username = "sbc", password = "not-the-password" }
[[route]]
from = "pbx"
to = ["carrier", "backup"]
[[route]]
from = "carrier"
to = ["pbx"]
"#;

const CARRIER_RURI: &str = "sip:555%2312125551234@carrier.test";

fn net() -> Net {
    Net::with_config(CONFIG)
}

/// A carrier's digest state: its nonces and the password it expects.
struct Registrar {
    nonces: Nonces,
    counts: NonceCounts,
    realm: &'static str,
    password: &'static str,
}

impl Registrar {
    fn new(realm: &'static str, password: &'static str) -> Self {
        Self {
            nonces: Nonces::new([9; 32], 60),
            counts: NonceCounts::default(),
            realm,
            password,
        }
    }

    fn challenge(&self, alg: Algorithm, stale: bool, extra: &str) -> String {
        let nonce = self.nonces.issue(100, rand_salt(), self.realm.as_bytes());
        let mut c =
            String::from_utf8(challenge(self.realm.as_bytes(), &nonce, alg, stale)).unwrap();
        c.push_str(extra);
        c
    }

    /// Checks the credentials in `req` (header `kind`) as a strict carrier would.
    fn check(&self, req: &Sent, kind: HeaderKind, method: &str, uri: &str) -> bool {
        let value = req
            .header(kind)
            .unwrap_or_else(|| panic!("no {kind:?} in:\n{}", req.text));
        let creds = Challenge::parse(value.as_bytes(), kind).unwrap();
        let check = Check {
            realm: self.realm.as_bytes(),
            method: method.as_bytes(),
            request_uri: uri.as_bytes(),
            policy: UriPolicy::Exact,
            now_secs: 101,
        };
        matches!(
            verify(&creds, &check, &self.nonces, &self.counts, |u| {
                (u == b"sbc").then_some(self.password.as_bytes())
            }),
            Verdict::Accepted { .. }
        )
    }
}

/// The PBX's credentials for a challenge sbcd sent, as a client that sends `sip:host:port`.
fn pbx_credentials(challenge_401: &Sent, kind: HeaderKind, password: &str, nc: u32) -> String {
    let uri = "sip:127.0.0.1:5060";
    credentials(challenge_401, kind, "pbx1", password, "INVITE", uri, nc)
}

fn with_header(msg: &[u8], name: &str, value: &str, cseq: u32, branch: &str) -> Vec<u8> {
    let text = String::from_utf8(msg.to_vec()).unwrap();
    let text = text
        .replace("CSeq: 10 INVITE", &format!("CSeq: {cseq} INVITE"))
        .replace("branch=z9hG4bK-pbx-", &format!("branch=z9hG4bK-{branch}-"))
        .replacen(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\n{name}: {value}\r\n"),
            1,
        );
    text.into_bytes()
}

/// The PBX's INVITE, challenged (407) and re-sent with the right credentials. Returns the
/// INVITE sbcd sends to the carrier.
fn authenticated_invite(net: &mut Net, call_id: &str) -> Sent {
    let inv = pbx_invite(call_id, "12125551234");
    let out = net.send(PBX, &inv);
    let ch = one(&out, PBX, "407", is_code(407)).clone();
    let creds = pbx_credentials(&ch, HeaderKind::ProxyAuthenticate, "pw1", 1);
    let out = net.send(
        PBX,
        &with_header(&inv, "Proxy-Authorization", &creds, 11, "retry"),
    );
    one(&out, PBX, "100", is_code(100));
    one(&out, CARRIER, "INVITE", is_req("INVITE")).clone()
}

#[test]
fn inbound_digest_challenges_then_accepts() {
    let mut net = net();
    let inv = pbx_invite("call-a1", "12125551234");
    let out = net.send(PBX, &inv);
    assert_eq!(out.len(), 1, "only the challenge: {out:#?}");
    let ch = one(&out, PBX, "407", is_code(407));
    let offered: Vec<String> = ch.with(|m| {
        m.headers_of(HeaderKind::ProxyAuthenticate)
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .collect()
    });
    assert_eq!(offered.len(), 2, "{offered:?}");
    assert!(offered[0].contains("algorithm=SHA-256") && offered[1].contains("algorithm=MD5"));
    for o in &offered {
        assert!(
            o.contains(r#"realm="sbc.test""#) && o.contains(r#"qop="auth""#),
            "{o}"
        );
    }
    assert!(
        net.events().is_empty(),
        "a first challenge is not a failure"
    );

    let inv_out = authenticated_invite(&mut net, "call-a2");
    assert!(inv_out
        .text
        .starts_with(&format!("INVITE {CARRIER_RURI} SIP/2.0\r\n")));
    assert!(
        inv_out.header(HeaderKind::ProxyAuthorization).is_none(),
        "the PBX's credentials stay at sbcd"
    );
}

#[test]
fn inbound_wrong_password_is_403_and_counted() {
    let mut net = net();
    let inv = pbx_invite("call-a3", "12125551234");
    let out = net.send(PBX, &inv);
    let ch = one(&out, PBX, "407", is_code(407)).clone();
    let creds = pbx_credentials(&ch, HeaderKind::ProxyAuthenticate, "wrong", 1);
    let out = net.send(
        PBX,
        &with_header(&inv, "Proxy-Authorization", &creds, 11, "r"),
    );
    assert_eq!(out.len(), 1, "{out:#?}");
    one(&out, PBX, "403", is_code(403));
    assert!(net.events().contains(&Event::AuthFailed {
        trunk: Some("pbx".into()),
        mode: "digest"
    }));
    // Replaying right credentials (same nonce, same nc) is refused too.
    let creds = pbx_credentials(&ch, HeaderKind::ProxyAuthenticate, "pw1", 1);
    let out = net.send(
        PBX,
        &with_header(&inv, "Proxy-Authorization", &creds, 12, "r2"),
    );
    one(&out, PBX, "100", is_code(100));
    let out = net.send(
        PBX,
        &with_header(
            &pbx_invite("call-a4", "1"),
            "Proxy-Authorization",
            &creds,
            13,
            "r3",
        ),
    );
    one(&out, PBX, "403 for a replayed nonce count", is_code(403));
}

#[test]
fn outbound_decoration_and_407_answered_with_opaque_and_no_qop() {
    let mut net = net();
    let carrier = Registrar::new("carrier.test", "pw");
    let inv = authenticated_invite(&mut net, "call-a5");
    // Decoration: prefix (escaped '#') and domain in Request-URI and To, header added.
    assert_eq!(
        inv.header(HeaderKind::To).as_deref(),
        Some(format!("<{CARRIER_RURI}>").as_str())
    );
    assert!(inv.text.contains("X-Auth-Key: k\r\n"), "{}", inv.text);
    assert_eq!(inv.cseq(), (1, "INVITE".into()));

    // RFC 2069 style: no qop, with opaque.
    let nonce = "n-opaque-1";
    let ch = format!(
        r#"Digest realm="carrier.test", nonce="{nonce}", opaque="Zm9vYmFy/==", algorithm=MD5"#
    );
    let out = net.send(
        CARRIER,
        &answer(
            &inv,
            407,
            "c1",
            "127.0.0.2:5080",
            &[("Proxy-Authenticate", &ch)],
            "",
        ),
    );
    let ack = one(&out, CARRIER, "ACK of the 407", is_req("ACK"));
    assert_eq!(ack.cseq(), (1, "ACK".into()));
    assert!(
        ack.text.contains("X-Auth-Key: k\r\n"),
        "the trunk header on every request: {}",
        ack.text
    );
    let retry = one(&out, CARRIER, "INVITE with credentials", is_req("INVITE")).clone();
    assert!(
        out.iter().all(|s| s.to != addr(PBX)),
        "the 407 is not relayed: {out:#?}"
    );
    assert_eq!(retry.cseq(), (2, "INVITE".into()), "CSeq + 1");
    assert_eq!(
        retry.header(HeaderKind::CallId),
        inv.header(HeaderKind::CallId),
        "same Call-ID"
    );
    assert_ne!(
        retry.header(HeaderKind::Via),
        inv.header(HeaderKind::Via),
        "new branch"
    );
    assert!(retry.text.contains("X-Auth-Key: k\r\n"));
    let creds = retry
        .header(HeaderKind::ProxyAuthorization)
        .expect("Proxy-Authorization");
    assert!(retry.header(HeaderKind::Authorization).is_none());
    assert!(
        creds.contains(r#"opaque="Zm9vYmFy/==""#),
        "opaque echoed: {creds}"
    );
    assert!(
        creds.contains(&format!(r#"uri="{CARRIER_RURI}""#)),
        "uri = R-URI as sent: {creds}"
    );
    assert!(!creds.contains("qop") && !creds.contains("nc="), "{creds}");
    // The response is right: recompute it independently of sbcd's answer code path.
    let ha1 = md5_hex(b"sbc:carrier.test:pw");
    let ha2 = md5_hex(format!("INVITE:{CARRIER_RURI}").as_bytes());
    let want = md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes());
    assert!(creds.contains(&format!(r#"response="{want}""#)), "{creds}");

    // Answered: the PBX gets the 200; the carrier's To tag is the retried INVITE's.
    let out = net.send(
        CARRIER,
        &answer(&retry, 200, "c2", "127.0.0.2:5080", &[], SDP),
    );
    one(&out, PBX, "200", is_code(200));
    let ack = one(&out, CARRIER, "ACK", is_req("ACK"));
    assert_eq!(ack.cseq(), (2, "ACK".into()));
    assert!(ack.text.contains("X-Auth-Key: k\r\n"), "{}", ack.text);
    let _ = carrier;
}

fn rand_salt() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn qop_auth_credentials_verify_and_nc_counts_up_on_the_bye() {
    let mut net = net();
    let carrier = Registrar::new("carrier.test", "pw");
    let inv = authenticated_invite(&mut net, "call-a6");
    let ch = carrier.challenge(Algorithm::Sha256, false, "");
    let out = net.send(
        CARRIER,
        &answer(
            &inv,
            401,
            "c1",
            "127.0.0.2:5080",
            &[("WWW-Authenticate", &ch)],
            "",
        ),
    );
    let retry = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    assert!(
        retry.header(HeaderKind::ProxyAuthorization).is_none(),
        "401 -> Authorization"
    );
    assert!(carrier.check(&retry, HeaderKind::Authorization, "INVITE", CARRIER_RURI));
    let creds = retry.header(HeaderKind::Authorization).unwrap();
    assert!(
        creds.contains("algorithm=SHA-256") && creds.contains("nc=00000001"),
        "{creds}"
    );

    let out = net.send(
        CARRIER,
        &answer(&retry, 200, "c2", "127.0.0.2:5080", &[], SDP),
    );
    let ok = one(&out, PBX, "200", is_code(200)).clone();
    net.send(
        PBX,
        &in_dialog("ACK", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 11, true, ""),
    );
    // The PBX hangs up (inside the dialog it must authenticate too: see the next test);
    // here the carrier hangs up instead, and sbcd's own requests to it carry credentials.
    let bye = in_dialog(
        "BYE",
        "sip:sbcd@127.0.0.1:5060",
        CARRIER,
        &retry,
        1,
        false,
        "",
    );
    let out = net.send(CARRIER, &bye);
    one(&out, CARRIER, "200 for the BYE", is_code(200));
    one(&out, PBX, "BYE", is_req("BYE"));

    // A new call; the PBX hangs up (with credentials), so sbcd sends the BYE to the carrier.
    let inv = authenticated_invite(&mut net, "call-a7");
    let ch = carrier.challenge(Algorithm::Md5, false, "");
    let out = net.send(
        CARRIER,
        &answer(
            &inv,
            407,
            "c1",
            "127.0.0.2:5080",
            &[("Proxy-Authenticate", &ch)],
            "",
        ),
    );
    let retry = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    assert!(carrier.check(
        &retry,
        HeaderKind::ProxyAuthorization,
        "INVITE",
        CARRIER_RURI
    ));
    let out = net.send(
        CARRIER,
        &answer(&retry, 200, "c3", "127.0.0.2:5080", &[], SDP),
    );
    let ok = one(&out, PBX, "200", is_code(200)).clone();
    net.send(
        PBX,
        &in_dialog("ACK", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 11, true, ""),
    );
    let out = net.send(
        PBX,
        &in_dialog("BYE", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 12, true, ""),
    );
    let ch = one(&out, PBX, "407 for the BYE", is_code(407)).clone();
    assert!(
        out.iter().all(|s| s.to != addr(CARRIER)),
        "the call stays up: {out:#?}"
    );
    let kind = HeaderKind::ProxyAuthenticate;
    let creds = credentials(
        &ch,
        kind,
        "pbx1",
        "pw1",
        "BYE",
        "sip:sbcd@127.0.0.1:5060",
        1,
    );
    let bye = String::from_utf8(in_dialog(
        "BYE",
        "sip:sbcd@127.0.0.1:5060",
        PBX,
        &ok,
        13,
        true,
        "",
    ))
    .unwrap()
    .replacen(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\nProxy-Authorization: {creds}\r\n"),
        1,
    );
    let out = net.send(PBX, bye.as_bytes());
    one(&out, PBX, "200 for the BYE", is_code(200));
    let b_bye = one(&out, CARRIER, "BYE", is_req("BYE"));
    // The carrier's nonce is used again, with the count going up.
    let c = b_bye
        .header(HeaderKind::ProxyAuthorization)
        .expect("credentials on the BYE");
    assert!(c.contains("nc=00000002"), "{c}");
    assert!(carrier.check(
        b_bye,
        HeaderKind::ProxyAuthorization,
        "BYE",
        "sip:ua@127.0.0.2:5080"
    ));
}

#[test]
fn second_challenge_means_wrong_password_and_fails_over() {
    let mut net = net();
    let carrier = Registrar::new("carrier.test", "pw");
    let backup = Registrar::new("backup.test", "pw");
    let inv = authenticated_invite(&mut net, "call-a8");
    let ch = carrier.challenge(Algorithm::Md5, false, "");
    let out = net.send(
        CARRIER,
        &answer(
            &inv,
            407,
            "c1",
            "127.0.0.2:5080",
            &[("Proxy-Authenticate", &ch)],
            "",
        ),
    );
    let retry = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    // Stale: the password was right, the nonce old: answered again.
    let ch = carrier.challenge(Algorithm::Md5, true, "");
    let out = net.send(
        CARRIER,
        &answer(
            &retry,
            407,
            "c2",
            "127.0.0.2:5080",
            &[("Proxy-Authenticate", &ch)],
            "",
        ),
    );
    let retry = one(&out, CARRIER, "INVITE after stale", is_req("INVITE")).clone();
    assert_eq!(retry.cseq(), (3, "INVITE".into()));
    // Not stale: wrong password. No more INVITEs to the carrier; the backup is tried.
    let ch = carrier.challenge(Algorithm::Md5, false, "");
    let out = net.send(
        CARRIER,
        &answer(
            &retry,
            407,
            "c3",
            "127.0.0.2:5080",
            &[("Proxy-Authenticate", &ch)],
            "",
        ),
    );
    assert!(
        out.iter()
            .filter(|s| s.to == addr(CARRIER))
            .all(|s| s.method().as_deref() == Some("ACK")),
        "{out:#?}"
    );
    let b_inv = one(&out, BACKUP, "INVITE to the backup", is_req("INVITE")).clone();
    assert!(net.events().contains(&Event::AuthFailed {
        trunk: Some("carrier".into()),
        mode: "outbound"
    }));
    // The backup's password is wrong too: challenged twice, then the caller gets 503, never
    // a 401/407 (which would ask the PBX for credentials sbcd's peer wants).
    let ch = backup.challenge(Algorithm::Md5, false, "");
    let out = net.send(
        BACKUP,
        &answer(
            &b_inv,
            401,
            "b1",
            "127.0.0.3:5090",
            &[("WWW-Authenticate", &ch)],
            "",
        ),
    );
    let b_retry = one(&out, BACKUP, "INVITE", is_req("INVITE")).clone();
    assert!(!backup.check(
        &b_retry,
        HeaderKind::Authorization,
        "INVITE",
        "sip:12125551234@127.0.0.3:5090"
    ));
    let ch = backup.challenge(Algorithm::Md5, false, "");
    let out = net.send(
        BACKUP,
        &answer(
            &b_retry,
            401,
            "b2",
            "127.0.0.3:5090",
            &[("WWW-Authenticate", &ch)],
            "",
        ),
    );
    let fail = one(&out, PBX, "final failure", |s| {
        s.code().is_some_and(|c| c >= 400)
    });
    assert_eq!(fail.code(), Some(503));
    assert!(net
        .advance(Duration::from_secs(40))
        .iter()
        .all(|s| s.method().as_deref() != Some("INVITE")));
}

#[test]
fn several_realms_answered_each_with_its_strongest_algorithm() {
    let mut net = net();
    let inv = authenticated_invite(&mut net, "call-a9");
    let a_md5 = r#"Digest realm="a.test", nonce="na1", algorithm=MD5, qop="auth""#;
    let a_sha = r#"Digest realm="a.test", nonce="na2", algorithm=SHA-256, qop="auth""#;
    let b = r#"Digest realm="b.test", nonce="nb", qop="auth-int""#;
    let out = net.send(
        CARRIER,
        &answer(
            &inv,
            401,
            "c1",
            "127.0.0.2:5080",
            &[
                ("WWW-Authenticate", a_md5),
                ("WWW-Authenticate", a_sha),
                ("WWW-Authenticate", b),
            ],
            "",
        ),
    );
    let retry = one(&out, CARRIER, "INVITE", is_req("INVITE"));
    let creds: Vec<String> = retry.with(|m| {
        m.headers_of(HeaderKind::Authorization)
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .collect()
    });
    assert_eq!(creds.len(), 2, "{creds:?}");
    assert!(
        creds[0].contains(r#"realm="a.test""#)
            && creds[0].contains("algorithm=SHA-256")
            && creds[0].contains(r#"nonce="na2""#)
    );
    assert!(creds[1].contains(r#"realm="b.test""#) && creds[1].contains("qop=auth-int"));
}

#[test]
fn tech_prefix_and_auth_header_from_the_carrier() {
    let mut net = net();
    let invite = |key: Option<&str>, number: &str| {
        let text = String::from_utf8(pbx_invite("call-c1", number))
            .unwrap()
            .replace("127.0.0.1:5070", "127.0.0.2:5080");
        match key {
            Some(k) => text.replacen(
                "Max-Forwards: 70\r\n",
                &format!("Max-Forwards: 70\r\nX-Trunk-Key: {k}\r\n"),
                1,
            ),
            None => text,
        }
        .into_bytes()
    };
    // Missing or wrong key, or no prefix: 403, counted per failed check.
    for (key, number, mode) in [
        (None, "91919%2312127773456", "header"),
        (Some("nope"), "91919%2312127773456", "header"),
        (Some("s3cret"), "12127773456", "prefix"),
    ] {
        let out = net.send(CARRIER, &invite(key, number));
        assert_eq!(out.len(), 1, "{out:#?}");
        one(&out, CARRIER, "403", is_code(403));
        assert!(net.events().contains(&Event::AuthFailed {
            trunk: Some("carrier".into()),
            mode
        }));
    }
    // Right key and prefix: the PBX sees the number without the prefix, and no key.
    let out = net.send(CARRIER, &invite(Some("s3cret"), "91919%2312127773456"));
    let inv = one(&out, PBX, "INVITE", is_req("INVITE"));
    assert!(
        inv.text
            .starts_with("INVITE sip:12127773456@127.0.0.1:5070 SIP/2.0\r\n"),
        "{}",
        inv.text
    );
    assert_hidden(inv, &["X-Trunk-Key", "s3cret", "91919"]);
}

const REINVITE_CONFIG: &str = r#"
[[trunk]]
name = "pbx"
inbound.allow = ["127.0.0.1/32"]
outbound.uri = "sip:127.0.0.1:5070"
[[trunk]]
name = "carrier"
inbound.allow = ["127.0.0.2/32"]
outbound.uri = "sip:127.0.0.2:5080"
outbound.auth = { username = "sbc", password = "pw", realm = "override.test", digest_uri = "to" }
[[route]]
from = "pbx"
to = ["carrier"]
"#;

#[test]
fn re_invite_and_update_challenges_answered_with_to_uri_and_realm_override() {
    let mut net = Net::with_config(REINVITE_CONFIG);
    let out = net.send(PBX, &pbx_invite("call-ri", "12125551234"));
    let inv = one(&out, CARRIER, "INVITE", is_req("INVITE")).clone();
    let out = net.send(
        CARRIER,
        &answer(&inv, 200, "c1", "127.0.0.2:5080", &[], SDP),
    );
    let ok = one(&out, PBX, "200", is_code(200)).clone();
    net.send(
        PBX,
        &in_dialog("ACK", "sip:sbcd@127.0.0.1:5060", PBX, &ok, 10, true, ""),
    );
    for (method, seq) in [("INVITE", 11), ("UPDATE", 12)] {
        // The PBX changes the session; the carrier challenges sbcd's relayed request.
        let req = in_dialog(method, "sip:sbcd@127.0.0.1:5060", PBX, &ok, seq, true, SDP);
        let out = net.send(PBX, &req);
        let relayed = out
            .iter()
            .find(|s| s.to == addr(CARRIER) && s.method().as_deref() == Some(method))
            .unwrap_or_else(|| panic!("{method} relayed: {out:#?}"))
            .clone();
        let ch = r#"Digest realm="carrier.test", nonce="n-ri", qop="auth""#;
        let out = net.send(
            CARRIER,
            &answer(
                &relayed,
                407,
                "c1",
                "127.0.0.2:5080",
                &[("Proxy-Authenticate", ch)],
                "",
            ),
        );
        let retry = one(&out, CARRIER, "re-sent with credentials", is_req(method)).clone();
        assert!(
            out.iter().all(|s| s.to != addr(PBX)),
            "the 407 stays at sbcd"
        );
        assert_eq!(retry.cseq().0, relayed.cseq().0 + 1, "CSeq + 1");
        assert_eq!(
            retry.header(HeaderKind::CallId),
            relayed.header(HeaderKind::CallId)
        );
        assert_eq!(retry.body(), SDP, "the offer goes again");
        let creds = retry.header(HeaderKind::ProxyAuthorization).unwrap();
        assert!(
            creds.contains(r#"realm="override.test""#),
            "realm override: {creds}"
        );
        // digest_uri = "to": the To URI, not the Request-URI (the carrier's Contact).
        let to_uri = "sip:12125551234@127.0.0.2:5080";
        assert!(creds.contains(&format!(r#"uri="{to_uri}""#)), "{creds}");
        assert!(retry
            .text
            .starts_with(&format!("{method} sip:ua@127.0.0.2:5080 SIP/2.0")));
        let out = net.send(
            CARRIER,
            &answer(&retry, 200, "c1", "127.0.0.2:5080", &[], SDP),
        );
        let fin = one(&out, PBX, "200 for the PBX", is_code(200));
        assert_eq!(fin.cseq(), (seq, method.to_owned()));
        if method == "INVITE" {
            net.send(
                PBX,
                &in_dialog("ACK", "sip:sbcd@127.0.0.1:5060", PBX, &ok, seq, true, ""),
            );
        }
    }
}

/// The answer with its per-request parts (tags, branch, Call-ID, CSeq number) blanked: what a
/// scanner could compare across usernames.
fn shape(s: &Sent) -> String {
    s.text
        .lines()
        .map(|l| {
            let (name, _) = l.split_once(':').unwrap_or((l, ""));
            match name.to_ascii_lowercase().as_str() {
                "via" | "call-id" | "cseq" | "to" | "from" => format!("{name}: *"),
                _ => l.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// No user enumeration (issue 7): an unknown username and a known one with a wrong password
/// get the same answer; so do a request without credentials from either, and a request from
/// a source no trunk allows. (The digest of an unknown user is computed anyway, so the
/// timing does not differ either: trunks::verify.)
#[test]
fn unknown_and_known_users_look_the_same() {
    let mut net = net();
    let mut answers = Vec::new();
    for (call, user, password) in [("e1", "pbx1", "wrong"), ("e2", "nobody", "pw1")] {
        let inv = pbx_invite(call, "12125551234").replace_user(user);
        let out = net.send(PBX, &inv);
        let ch = one(&out, PBX, "407", is_code(407)).clone();
        let creds = credentials(
            &ch,
            HeaderKind::ProxyAuthenticate,
            user,
            password,
            "INVITE",
            "sip:127.0.0.1:5060",
            1,
        );
        let out = net.send(
            PBX,
            &with_header(&inv, "Proxy-Authorization", &creds, 11, call),
        );
        let refused = one(&out, PBX, "403", is_code(403));
        answers.push((shape(&ch), shape(refused)));
    }
    assert_eq!(
        answers[0].1, answers[1].1,
        "403 for unknown user vs wrong password"
    );
    // The challenges differ only in their nonce.
    let strip_nonce = |s: &str| {
        s.lines()
            .map(|l| match l.find("nonce=\"") {
                Some(i) => l[..i].to_owned(),
                None => l.to_owned(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip_nonce(&answers[0].0), strip_nonce(&answers[1].0));

    // A source no trunk allows gets the same 403 as a refused password.
    let out = net.send("127.0.0.9:5070", &pbx_invite("e3", "12125551234"));
    let stranger = one(&out, "127.0.0.9:5070", "403", is_code(403));
    assert_eq!(shape(stranger), answers[0].1);
}

trait ReplaceUser {
    fn replace_user(self, user: &str) -> Vec<u8>;
}

impl ReplaceUser for Vec<u8> {
    /// The caller's From user replaced (the digest username sent later is `user` too).
    fn replace_user(self, user: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("<sip:2001@", &format!("<sip:{user}@"))
            .into_bytes()
    }
}

//! Answering challenges, checked end to end by sbcd's own verifier (tests/verify.rs covers it)
//! and against the quirks carriers have: opaque, no qop, qop lists, several challenges.

use sip_codec::{Challenge, HeaderKind};
use trunks::answer::{answer, answer_header, challenge, pick, AnswerError, Request};
use trunks::digest::Algorithm;
use trunks::nonce::{NonceCounts, Nonces};
use trunks::verify::{verify, Check, UriPolicy, Verdict};

const RURI: &[u8] = b"sip:12125551234@carrier.test";

fn req(nc: u32) -> Request<'static> {
    Request {
        method: b"INVITE",
        uri: RURI,
        cnonce: b"c0ffee",
        nc,
        realm_override: None,
        body: b"",
    }
}

fn parse(v: &[u8]) -> Challenge<'_> {
    Challenge::parse(v, HeaderKind::WwwAuthenticate).unwrap()
}

#[test]
fn answers_verify_for_each_algorithm() {
    let nonces = Nonces::new([3; 32], 60);
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let nonce = nonces.issue(10, alg as u64, b"carrier.test");
        let ch = challenge(b"carrier.test", &nonce, alg, false);
        let value = answer(&parse(&ch), b"sbc", b"pw", &req(1)).unwrap();
        let creds = Challenge::parse(&value, HeaderKind::Authorization).unwrap();
        let check = Check {
            realm: b"carrier.test",
            method: b"INVITE",
            request_uri: RURI,
            policy: UriPolicy::Exact,
            now_secs: 11,
        };
        let v = verify(&creds, &check, &nonces, &NonceCounts::default(), |_| {
            Some(&b"pw"[..])
        });
        assert_eq!(
            v,
            Verdict::Accepted { username: b"sbc" },
            "{alg:?}: {}",
            String::from_utf8_lossy(&value)
        );
    }
}

#[test]
fn opaque_echoed_qop_absent_and_lists() {
    let ch = br#"Digest realm="c", nonce="n1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
    let v = String::from_utf8(answer(&parse(ch), b"u", b"p", &req(1)).unwrap()).unwrap();
    assert!(
        v.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#),
        "{v}"
    );
    assert!(
        !v.contains("qop") && !v.contains("nc=") && !v.contains("cnonce"),
        "RFC 2069 form: {v}"
    );
    assert!(
        v.contains(r#"uri="sip:12125551234@carrier.test""#),
        "uri = Request-URI, no port added: {v}"
    );

    let ch = br#"Digest realm="c", nonce="n1", qop="auth,auth-int""#;
    let v = String::from_utf8(answer(&parse(ch), b"u", b"p", &req(2)).unwrap()).unwrap();
    assert!(
        v.contains("qop=auth, nc=00000002, cnonce=\"c0ffee\""),
        "{v}"
    );

    // auth-int alone: the body goes into A2. The response is the MD5 auth-int vector of
    // digest_vectors.py (computed by hashlib, not by this crate).
    let ch = br#"Digest realm="carrier.test", nonce="abc123", qop="auth-int""#;
    let r = Request {
        method: b"INVITE",
        uri: b"sip:1@c.test",
        cnonce: b"0a4f113b",
        nc: 1,
        realm_override: None,
        body: b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
    };
    let v = String::from_utf8(answer(&parse(ch), b"sbc", b"pw", &r).unwrap()).unwrap();
    assert!(v.contains("qop=auth-int, nc=00000001"), "{v}");
    assert!(
        v.contains(r#"response="21077e9d8b38f7554d58422f971d55a0""#),
        "{v}"
    );
    let ch = br#"Digest realm="c""#;
    assert_eq!(
        answer(&parse(ch), b"u", b"p", &req(1)),
        Err(AnswerError::Incomplete)
    );
}

#[test]
fn strongest_challenge_is_picked_and_header_follows_the_status() {
    let v = br#"Digest realm="c", nonce="a", algorithm=MD5, Digest realm="c", nonce="b", algorithm=SHA-256, Digest realm="c", nonce="x", algorithm=SHA-512-256"#;
    let all: Vec<Challenge<'_>> = Challenge::parse_all(v, HeaderKind::WwwAuthenticate)
        .map(Result::unwrap)
        .collect();
    assert_eq!(all.len(), 3);
    let best = pick(all).unwrap();
    assert_eq!(best.param(b"nonce"), Some(&b"b"[..]));
    assert_eq!(answer_header(401), Some(HeaderKind::Authorization));
    assert_eq!(answer_header(407), Some(HeaderKind::ProxyAuthorization));
    assert_eq!(answer_header(403), None);
}

#[test]
fn realm_override() {
    let ch = br#"Digest realm="wrong", nonce="n1""#;
    let r = Request {
        realm_override: Some(b"right"),
        ..req(1)
    };
    let v = String::from_utf8(answer(&parse(ch), b"u", b"p", &r).unwrap()).unwrap();
    assert!(v.contains(r#"realm="right""#), "{v}");
}

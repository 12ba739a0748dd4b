//! Credential checks against credentials computed by the digest module (itself checked by
//! known answers in tests/digest.rs).

use sip_codec::{Challenge, HeaderKind};
use trunks::digest::{response, Algorithm, Input, Qop};
use trunks::nonce::{NonceCounts, Nonces};
use trunks::verify::{verify, Check, UriPolicy, Verdict};

const REALM: &[u8] = b"sbc.test";
const RURI: &[u8] = b"sip:12125551234@127.0.0.1:5060";

fn creds(alg: Algorithm, pw: &[u8], nonce: &[u8], uri: &[u8], nc: Option<&str>) -> String {
    let qop = nc.map(|nc| Qop {
        qop: b"auth",
        nc: nc.as_bytes(),
        cnonce: b"abc",
    });
    let r = response(&Input {
        algorithm: alg,
        username: b"pbx1",
        realm: REALM,
        password: pw,
        nonce,
        method: b"INVITE",
        uri,
        qop,
        body: b"",
    });
    let mut s = format!(
        "Digest username=\"pbx1\", realm=\"sbc.test\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
        String::from_utf8_lossy(nonce),
        String::from_utf8_lossy(uri),
        String::from_utf8_lossy(r.as_bytes()),
        alg.as_str()
    );
    if let Some(nc) = nc {
        s += &format!(", qop=auth, nc={nc}, cnonce=\"abc\"");
    }
    s
}

fn run(value: &str, policy: UriPolicy, now: u64, nonces: &Nonces, counts: &NonceCounts) -> String {
    let c = Challenge::parse(value.as_bytes(), HeaderKind::Authorization).unwrap();
    let check = Check {
        realm: REALM,
        method: b"INVITE",
        request_uri: RURI,
        policy,
        now_secs: now,
    };
    let v = verify(&c, &check, nonces, counts, |u| {
        (u == b"pbx1").then_some(&b"pw1"[..])
    });
    match v {
        Verdict::Accepted { username } => format!("accepted {}", String::from_utf8_lossy(username)),
        Verdict::Stale => "stale".into(),
        Verdict::Refused { why } => format!("refused: {why}"),
    }
}

#[test]
fn right_wrong_stale_replayed() {
    let nonces = Nonces::new([1; 32], 60);
    let counts = NonceCounts::default();
    let nonce = nonces.issue(100, 42, REALM);
    for alg in [
        Algorithm::Md5,
        Algorithm::Sha256,
        Algorithm::Md5Sess,
        Algorithm::Sha256Sess,
    ] {
        let counts = NonceCounts::default();
        let ok = creds(alg, b"pw1", &nonce, RURI, Some("00000001"));
        assert_eq!(
            run(&ok, UriPolicy::Exact, 110, &nonces, &counts),
            "accepted pbx1",
            "{alg:?}"
        );
        assert_eq!(
            run(&ok, UriPolicy::Exact, 111, &nonces, &counts),
            "refused: nonce count replayed"
        );
        let next = creds(alg, b"pw1", &nonce, RURI, Some("00000002"));
        assert_eq!(
            run(&next, UriPolicy::Exact, 112, &nonces, &counts),
            "accepted pbx1"
        );
    }
    let no_qop = creds(Algorithm::Md5, b"pw1", &nonce, RURI, None);
    assert_eq!(
        run(&no_qop, UriPolicy::Exact, 110, &nonces, &counts),
        "accepted pbx1",
        "RFC 2069 style"
    );
    let wrong = creds(Algorithm::Md5, b"nope", &nonce, RURI, Some("00000001"));
    assert_eq!(
        run(&wrong, UriPolicy::Exact, 110, &nonces, &counts),
        "refused: wrong response (password)"
    );
    assert_eq!(
        run(&no_qop, UriPolicy::Exact, 161, &nonces, &counts),
        "stale"
    );
    let foreign = creds(
        Algorithm::Md5,
        b"pw1",
        b"0000000000000064deadbeefdeadbeefdeadbeefdeadbeef",
        RURI,
        None,
    );
    assert_eq!(
        run(&foreign, UriPolicy::Exact, 110, &nonces, &counts),
        "refused: not a nonce of ours"
    );
}

#[test]
fn uri_policy_lenient_by_default_strict_on_request() {
    let nonces = Nonces::new([1; 32], 60);
    let counts = NonceCounts::default();
    let nonce = nonces.issue(100, 42, REALM);
    // SIPp sends only sip:host:port.
    let sipp_style = creds(Algorithm::Md5, b"pw1", &nonce, b"sip:127.0.0.1:5060", None);
    assert_eq!(
        run(&sipp_style, UriPolicy::SameHost, 110, &nonces, &counts),
        "accepted pbx1"
    );
    assert_eq!(
        run(&sipp_style, UriPolicy::Exact, 110, &nonces, &counts),
        "refused: digest uri does not match the Request-URI"
    );
    let other_host = creds(Algorithm::Md5, b"pw1", &nonce, b"sip:evil.example", None);
    assert_eq!(
        run(&other_host, UriPolicy::SameHost, 110, &nonces, &counts),
        "refused: digest uri does not match the Request-URI"
    );
}

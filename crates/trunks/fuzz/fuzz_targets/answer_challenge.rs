//! Any bytes as the value of a `WWW-Authenticate` / `Proxy-Authenticate` header a trunk sends
//! to sbcd: parsing every challenge and answering it never panics, and an answer sbcd writes
//! parses back as credentials that echo the challenge's realm, nonce and opaque exactly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_codec::{Challenge, HeaderKind};
use trunks::answer::{answer, Request};

fuzz_target!(|data: &[u8]| {
    for kind in [HeaderKind::WwwAuthenticate, HeaderKind::ProxyAuthenticate] {
        for c in Challenge::parse_all(data, kind).flatten() {
            let req = Request {
                method: b"INVITE",
                uri: b"sip:12125551234@carrier.test",
                cnonce: b"0a4f113b",
                nc: 1,
                realm_override: None,
                body: b"v=0\r\n",
            };
            let Ok(value) = answer(&c, b"sbc", b"pw", &req) else {
                continue;
            };
            let creds = Challenge::parse(&value, HeaderKind::Authorization)
                .unwrap_or_else(|e| panic!("our answer does not parse ({e:?}): {value:?}"));
            for p in [&b"realm"[..], b"nonce", b"opaque"] {
                if let Some(sent) = c.param(p) {
                    assert_eq!(creds.param(p), Some(sent), "{p:?} not echoed: {value:?}");
                }
            }
            assert_eq!(creds.param(b"username"), Some(&b"sbc"[..]));
        }
    }
});

//! Any bytes as the value of an `Authorization` / `Proxy-Authorization` header sent to sbcd:
//! parsing and `verify` never panic, and only credentials computed with the right password
//! for a nonce sbcd issued are accepted (a fuzzer cannot forge an MD5/SHA-256 digest).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_codec::{Challenge, HeaderKind};
use trunks::nonce::{NonceCounts, Nonces};
use trunks::verify::{verify, Check, UriPolicy, Verdict};

fuzz_target!(|data: &[u8]| {
    let (policy, value) = match data.split_first() {
        Some((b, rest)) if b % 2 == 0 => (UriPolicy::Exact, rest),
        Some((_, rest)) => (UriPolicy::SameHost, rest),
        None => return,
    };
    for kind in [HeaderKind::Authorization, HeaderKind::ProxyAuthorization] {
        let Ok(creds) = Challenge::parse(value, kind) else {
            continue;
        };
        let nonces = Nonces::new([7; 32], 300);
        let counts = NonceCounts::with_capacity(16);
        let check = Check {
            realm: b"sbc.test",
            method: b"INVITE",
            request_uri: b"sip:12125551234@127.0.0.1:5060",
            policy,
            now_secs: 100,
        };
        let verdict = verify(&creds, &check, &nonces, &counts, |user| {
            (user == b"pbx1").then_some(&b"pw1"[..])
        });
        if let Verdict::Accepted { username } = verdict {
            // Only possible with a real answer to one of our nonces: the fuzzer would have
            // to invert the digest.
            panic!("accepted forged credentials for {username:?}: {value:?}");
        }
    }
});

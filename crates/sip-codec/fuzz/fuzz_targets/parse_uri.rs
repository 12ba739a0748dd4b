//! Any bytes as a URI. A SIP URI must equal itself (RFC 3261 §19.1.4 comparison) unless it has
//! more parameters or headers than `matches` compares (64, documented), and unescapes lazily.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_codec::uri::{eq_escaped, unescape, Uri};

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = Uri::parse(data) else { return };
    assert_eq!(uri.as_bytes(), data);
    if let Uri::Sip(u) = uri {
        let headers = u.headers.map_or(0, |h| h.split(|&c| c == b'&').count());
        if u.params.iter().count() <= 64 && headers <= 64 {
            assert!(u.matches(&u), "URI does not match itself: {u:?}");
        }
        let _ = (u.transport(), u.user_param(), u.maddr(), u.has_lr(), u.host.to_string());
        for part in [u.user, u.password, u.headers].into_iter().flatten() {
            assert!(unescape(part).count() <= part.len() && eq_escaped(part, part));
        }
    }
});

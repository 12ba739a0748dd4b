//! A UDP datagram as the daemon sees it: parse, validate, then every typed view. None may panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_codec::{parse, Challenge, HeaderKind as K, Uri, EMPTY_HEADER};

fuzz_target!(|data: &[u8]| {
    let mut headers = [EMPTY_HEADER; 64];
    let Ok(m) = parse(data, &mut headers) else { return };
    let _ = m.validate();
    for v in m.vias().flatten() {
        let _ = (v.branch(), v.received(), v.rport(), v.ttl(), v.params.iter().count());
    }
    for na in [m.from(), m.to()].into_iter().flatten() {
        let _ = (na.validate(), na.tag(), na.display_unquoted(), na.parse_uri(), na.expires(), na.q());
    }
    let _ = (m.cseq(), m.max_forwards(), m.expires(), m.contacts().is_star(), m.media_type());
    for na in m.contacts().iter().chain(m.routes()).chain(m.record_routes()).flatten() {
        let _ = (na.validate(), na.expires(), na.q(), na.params.iter().count());
    }
    for h in m.headers.iter().filter(|h| matches!(h.kind, K::WwwAuthenticate | K::ProxyAuthenticate | K::Authorization)) {
        for c in Challenge::parse_all(h.value, h.kind).flatten() {
            let _ = (c.is_digest(), c.param(b"nonce"), c.params.iter().count(), format!("{c:?}"));
        }
    }
    if let Some(Ok(Uri::Sip(u))) = m.request_uri().map(Uri::parse) {
        let _ = (u.transport(), u.has_lr(), u.params.iter().count());
    }
});

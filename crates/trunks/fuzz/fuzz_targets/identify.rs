//! Any bytes as a request reaching sbcd from one of a few sources: the trunk index
//! (allowlists, hash domain, auth header, tech prefix, digest realm) identifies or refuses it
//! without panicking, and agrees with itself (identify and the failure report never both
//! claim the request).
#![no_main]
use std::net::IpAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sip_codec::{parse, Uri, EMPTY_HEADER};
use trunks::ingress::{Ingress, Request};

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
name = "allow"
inbound.allow = ["10.0.0.1/32"]
outbound.uri = "sip:10.0.0.1"
[[trunk]]
name = "prefix-a"
inbound.allow = ["10.1.0.0/16"]
inbound.prefix = "111#"
outbound.uri = "sip:10.1.0.1"
[[trunk]]
name = "prefix-b"
inbound.allow = ["10.1.0.0/16"]
inbound.prefix = "111#2"
outbound.uri = "sip:10.1.0.2"
[[trunk]]
name = "domain"
inbound.domain = "k3x9q.sbc.test"
inbound.header = { name = "X-Trunk-Key", value = "s3cret" }
outbound.uri = "sip:10.2.0.1"
[[trunk]]
name = "digest"
inbound.digest = { realm = "sbc.test", users = [{ username = "pbx1", password = "pw1" }] }
inbound.register = true
"#;

fn ingress() -> &'static Ingress {
    static I: OnceLock<Ingress> = OnceLock::new();
    I.get_or_init(|| {
        let config = sbc_config::load_str(CONFIG, std::path::Path::new(".")).expect("config");
        Ingress::new(&config, |_| Some(b"rc0123456789abcdef".to_vec()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let source: IpAddr = match which % 4 {
        0 => [10, 0, 0, 1].into(),
        1 => [10, 1, 2, 3].into(),
        2 => [192, 0, 2, 9].into(),
        _ => "2001:db8::1".parse().expect("v6"),
    };
    let mut headers = [EMPTY_HEADER; 64];
    let Ok(msg) = parse(bytes, &mut headers) else {
        return;
    };
    let (user, host) = match msg.request_uri().map(Uri::parse) {
        Some(Ok(Uri::Sip(u))) => (u.user, Some(u.host_raw)),
        Some(Ok(Uri::Tel(t))) => (Some(t.number), None),
        _ => (None, None),
    };
    let req = Request {
        source,
        ruri_user: user,
        ruri_host: host,
        msg: &msg,
    };
    let found = ingress().identify(&req);
    if let Some(m) = found {
        assert!(m.prefix_len <= user.map_or(0, <[u8]>::len), "{m:?}");
    }
    let mut failures = 0;
    ingress().failures(&req, |_, _| failures += 1);
    let _ = failures;
});

//! Any bytes as an SDP body: parse and read every view; then anchor it with `rewrite` to a fixed
//! address and ports and check what the rewrite promises (output parses, ports and `c=` replaced).
#![no_main]
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use sip_codec::sdp::{rewrite, Rewrite, Sdp, SdpError};

const PORTS: [Option<u16>; 4] = [Some(40000), None, Some(40002), Some(65535)];

fuzz_target!(|data: &[u8]| {
    let parsed = Sdp::parse(data);
    if let Ok(sdp) = &parsed {
        let _ = (sdp.origin(), sdp.session_name(), sdp.connection().map(|c| c.ip()), sdp.direction());
        let _ = (sdp.attributes().count(), format!("{sdp:?}"));
        for m in sdp.media() {
            let _ = (m.direction(), m.rtcp(), m.rtcp_mux(), m.formats().count(), m.attributes().count());
            let _ = m.effective_connection().map(|c| c.is_unspecified());
        }
    }
    let address: IpAddr = if data.len() % 2 == 0 { [192, 0, 2, 1].into() } else { [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1].into() };
    let plan = Rewrite { address, ports: &PORTS, rtcp_ports: &[None, Some(40001)] };
    let mut out = Vec::new();
    match rewrite(data, &plan, &mut out) {
        Err(e) => {
            assert!(out.is_empty(), "out changed on error");
            assert!(parsed.is_err() || matches!(e, SdpError::RtcpPortOverflow { .. }), "input parsed, rewrite: {e}");
        }
        Ok(()) => {
            let old = parsed.expect("rewrite succeeded, so the input parses");
            let new = Sdp::parse(&out).unwrap_or_else(|e| panic!("rewritten SDP does not parse: {e}"));
            assert_eq!(new.media_count(), old.media_count());
            let pairs = [(old.connection(), new.connection())].into_iter();
            for (c_old, c_new) in pairs.chain(old.media().zip(new.media()).map(|(a, b)| (a.connection, b.connection))) {
                if let Some(c) = c_old.filter(|c| !c.is_unspecified()) {
                    assert_eq!(c_new.and_then(|c| c.ip()), Some(address), "c= not rewritten: {c:?}");
                }
            }
            for (i, (a, b)) in old.media().zip(new.media()).enumerate() {
                let want = if a.port == 0 { 0 } else { PORTS.get(i).copied().flatten().unwrap_or(a.port) };
                assert_eq!(b.port, want, "media {i} port");
            }
        }
    }
});

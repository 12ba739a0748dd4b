//! Rendering the messages sbcd sends, with `sip_codec::Writer` (nothing is re-parsed).
//!
//! Topology hiding is a whitelist: a message for one leg is written from that leg's own dialog
//! state, and only the headers [`crosses`] accepts (and the body) are copied from the message
//! received on the other leg.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use sip_codec::{Header, HeaderKind, Message, NameAddr, Writer};

/// Headers that cross from one leg to the other with the body they describe: they carry no
/// address of the sending side. Everything else stops at sbcd.
pub(crate) fn crosses(h: &Header<'_>) -> bool {
    use HeaderKind as K;
    match h.kind {
        K::ContentType
        | K::ContentDisposition
        | K::ContentEncoding
        | K::Accept
        | K::Subject
        | K::Reason
        | K::Event
        | K::RetryAfter
        | K::Privacy
        | K::Unsupported => true,
        K::Other => {
            h.name.eq_ignore_ascii_case(b"Info-Package")
                || h.name.eq_ignore_ascii_case(b"Recv-Info")
                || h.name.eq_ignore_ascii_case(b"Accept-Language")
        }
        _ => false,
    }
}

/// What sbcd allows, in every INVITE, 2xx and OPTIONS reply it writes (§20.5).
pub(crate) const ALLOW: &[u8] =
    b"INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, PRACK, MESSAGE, NOTIFY, REGISTER";
/// Extensions sbcd supports (RFC 3262 on the outbound leg).
pub(crate) const SUPPORTED: &[u8] = b"100rel";
/// Written into User-Agent and Server.
pub(crate) const AGENT: &[u8] = b"sbcd";

/// The reason phrase sbcd writes for its own responses (§21).
pub(crate) fn reason(code: u16) -> &'static [u8] {
    match code {
        100 => b"Trying",
        180 => b"Ringing",
        183 => b"Session Progress",
        200 => b"OK",
        400 => b"Bad Request",
        401 => b"Unauthorized",
        403 => b"Forbidden",
        404 => b"Not Found",
        405 => b"Method Not Allowed",
        407 => b"Proxy Authentication Required",
        408 => b"Request Timeout",
        420 => b"Bad Extension",
        423 => b"Interval Too Brief",
        480 => b"Temporarily Unavailable",
        481 => b"Call/Transaction Does Not Exist",
        482 => b"Loop Detected",
        483 => b"Too Many Hops",
        484 => b"Address Incomplete",
        487 => b"Request Terminated",
        488 => b"Not Acceptable Here",
        491 => b"Request Pending",
        500 => b"Server Internal Error",
        501 => b"Not Implemented",
        503 => b"Service Unavailable",
        505 => b"Version Not Supported",
        _ => b"Unknown",
    }
}

/// Writes a name-addr without its tag parameter: `"Alice" <sip:a@h>;p=1`.
pub(crate) fn name_addr_without_tag(na: &NameAddr<'_>, out: &mut Vec<u8>) {
    if let Some(d) = na.display {
        out.extend_from_slice(d);
        out.push(b' ');
    }
    out.push(b'<');
    out.extend_from_slice(na.uri);
    out.push(b'>');
    for p in na.params.iter() {
        if p.name.eq_ignore_ascii_case(b"tag") {
            continue;
        }
        out.push(b';');
        out.extend_from_slice(p.name);
        if let Some(v) = p.value {
            out.push(b'=');
            out.extend_from_slice(v);
        }
    }
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{ip}");
}

/// The header lines every response to `req` repeats (§8.2.6.2): its Via headers (the top one
/// with `received` and `rport` filled in, §18.2.1 and RFC 3581 §4), From, To (with `to_tag`
/// added when the request's To has none), Call-ID and CSeq.
///
/// Returns `None` when one of them is missing or the top Via does not parse: such a request
/// cannot be answered and is dropped.
pub(crate) fn response_head(
    req: &Message<'_, '_>,
    source: SocketAddr,
    to_tag: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Option<()> {
    let top = req.top_via().ok()?;
    let from = req.header(HeaderKind::From)?;
    let to = req.header(HeaderKind::To)?;
    let call_id = req.call_id()?;
    let cseq = req.header(HeaderKind::CSeq)?;
    for (i, v) in req.values(HeaderKind::Via).enumerate() {
        out.extend_from_slice(b"Via: ");
        if i > 0 {
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
            continue;
        }
        out.extend_from_slice(top.protocol);
        out.push(b'/');
        out.extend_from_slice(top.version);
        out.push(b'/');
        out.extend_from_slice(top.transport);
        out.push(b' ');
        out.extend_from_slice(top.host_raw);
        if let Some(port) = top.port {
            out.push(b':');
            out.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
        }
        let rport_asked = top.rport().is_some();
        for p in top.params.iter() {
            if p.name.eq_ignore_ascii_case(b"received") {
                continue;
            }
            out.push(b';');
            out.extend_from_slice(p.name);
            if p.name.eq_ignore_ascii_case(b"rport") {
                out.push(b'=');
                out.extend_from_slice(itoa::Buffer::new().format(source.port()).as_bytes());
            } else if let Some(v) = p.value {
                out.push(b'=');
                out.extend_from_slice(v);
            }
        }
        let host_is_source = match top.host {
            sip_codec::Host::V4(ip) => IpAddr::V4(ip) == source.ip(),
            sip_codec::Host::V6(ip) => IpAddr::V6(ip) == source.ip(),
            sip_codec::Host::Name(_) => false,
        };
        if rport_asked || !host_is_source {
            out.extend_from_slice(b";received=");
            push_ip(out, source.ip());
        }
        out.extend_from_slice(b"\r\n");
    }
    let mut w = Writer::new(out);
    w.copy(from);
    match to_tag {
        Some(tag) if req.to().ok()?.tag().is_none() => {
            w.header_parts(b"To", &[to.value, b";tag=", tag]);
        }
        _ => {
            w.copy(to);
        }
    }
    w.header(HeaderKind::CallId, call_id).copy(cseq);
    Some(())
}

/// Renders a response from a head made by [`response_head`]. `extra` writes more headers;
/// `body` is the bytes after the header section (Content-Type among the `extra` headers).
pub(crate) fn response(
    code: u16,
    reason_phrase: &[u8],
    head: &[u8],
    extra: impl FnOnce(&mut Writer<'_>),
    body: &[u8],
) -> Bytes {
    let mut out = Vec::with_capacity(head.len() + body.len() + 256);
    let mut w = Writer::new(&mut out);
    w.status_line(code, reason_phrase).raw_lines(head);
    extra(&mut w);
    w.header(HeaderKind::Server, AGENT);
    w.finish_with_body(body);
    Bytes::from(out)
}

/// A response sbcd sends without a transaction (OPTIONS keep-alives, 403, 481, 400…), with a
/// fresh To tag when the request had none.
pub(crate) fn stateless_response(
    req: &Message<'_, '_>,
    source: SocketAddr,
    code: u16,
    to_tag: &[u8],
    extra: impl FnOnce(&mut Writer<'_>),
) -> Option<Bytes> {
    let mut head = Vec::with_capacity(512);
    response_head(req, source, Some(to_tag), &mut head)?;
    Some(response(code, reason(code), &head, extra, b""))
}

/// Copies the headers that cross legs (see [`crosses`]).
pub(crate) fn copy_crossing(w: &mut Writer<'_>, msg: &Message<'_, '_>) {
    w.copy_all(msg, crosses);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_codec::EMPTY_HEADER;

    #[test]
    fn response_head_fills_received_and_rport() {
        let raw = b"OPTIONS sip:sbc SIP/2.0\r\nVia: SIP/2.0/UDP pbx.example:5070;branch=z9hG4bKa;rport, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb\r\nFrom: <sip:a@pbx>;tag=1\r\nTo: <sip:sbc>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let mut hs = [EMPTY_HEADER; 16];
        let msg = sip_codec::parse(raw, &mut hs).unwrap();
        let mut out = Vec::new();
        response_head(
            &msg,
            "192.0.2.7:40000".parse().unwrap(),
            Some(b"xyz"),
            &mut out,
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "Via: SIP/2.0/UDP pbx.example:5070;branch=z9hG4bKa;rport=40000;received=192.0.2.7\r\n\
             Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb\r\n\
             From: <sip:a@pbx>;tag=1\r\nTo: <sip:sbc>;tag=xyz\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n"
        );
    }

    #[test]
    fn received_only_when_the_host_differs() {
        let raw = b"OPTIONS sip:sbc SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bKa\r\nFrom: <sip:a@pbx>;tag=1\r\nTo: <sip:sbc>;tag=9\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let mut hs = [EMPTY_HEADER; 16];
        let msg = sip_codec::parse(raw, &mut hs).unwrap();
        let mut out = Vec::new();
        response_head(
            &msg,
            "192.0.2.7:5070".parse().unwrap(),
            Some(b"xyz"),
            &mut out,
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("Via: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bKa\r\n"),
            "{s}"
        );
        assert!(
            s.contains("To: <sip:sbc>;tag=9\r\n"),
            "an existing To tag is kept: {s}"
        );
    }
}

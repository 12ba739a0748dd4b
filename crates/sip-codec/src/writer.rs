//! Building a message for the other leg into one buffer (RFC 3261 §7, §20).
//!
//! The B2BUA parses the inbound message once, then writes the outbound one: headers that pass
//! through are copied as bytes ([`Writer::copy`], [`Writer::copy_all`]), headers that change are
//! written from their parts ([`Writer::via`], [`Writer::name_addr`], [`Writer::cseq`]…), headers
//! that policy removes are simply not written. Content-Length is always computed by the writer.
//! Nothing is re-parsed and nothing is allocated beyond growing the output `Vec`
//! (reuse one with enough capacity and the writer allocates nothing at all).

use crate::header::{Header, HeaderKind};
use crate::message::Message;
use crate::views::NameAddr;

/// Appends one SIP message to a `Vec<u8>`.
///
/// Call a start-line method first, then headers in the order they should appear, then one of
/// the `finish*` methods, which writes Content-Length, the empty line and the body.
#[derive(Debug)]
pub struct Writer<'o> {
    out: &'o mut Vec<u8>,
    start: usize,
}

/// Width reserved for the Content-Length digits when the body is written in place.
const CL_DIGITS: usize = 10;

impl<'o> Writer<'o> {
    /// Starts a message at the end of `out`.
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        let start = out.len();
        Self { out, start }
    }

    /// `Method SP Request-URI SP SIP/2.0 CRLF`; the URI is the concatenation of `uri_parts`
    /// (e.g. `["sip:", prefix, number, "@", domain]`), so callers need no temporary string.
    pub fn request_line(&mut self, method: &[u8], uri_parts: &[&[u8]]) -> &mut Self {
        self.out.extend_from_slice(method);
        self.out.push(b' ');
        for p in uri_parts {
            self.out.extend_from_slice(p);
        }
        self.out.extend_from_slice(b" SIP/2.0\r\n");
        self
    }

    /// `SIP/2.0 SP Status-Code SP Reason-Phrase CRLF`.
    pub fn status_line(&mut self, code: u16, reason: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b"SIP/2.0 ");
        self.num(u32::from(code));
        self.out.push(b' ');
        self.out.extend_from_slice(reason);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// A header with its canonical name and a value.
    pub fn header(&mut self, kind: HeaderKind, value: &[u8]) -> &mut Self {
        self.header_named(kind.as_str().as_bytes(), value)
    }

    /// A header with any name (extension headers such as `X-Auth-Key`).
    pub fn header_named(&mut self, name: &[u8], value: &[u8]) -> &mut Self {
        self.header_parts(name, &[value])
    }

    /// A header whose value is the concatenation of `parts`.
    pub fn header_parts(&mut self, name: &[u8], parts: &[&[u8]]) -> &mut Self {
        self.out.extend_from_slice(name);
        self.out.extend_from_slice(b": ");
        for p in parts {
            self.out.extend_from_slice(p);
        }
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// A header with a decimal value (Max-Forwards, Expires, RSeq…).
    pub fn header_u32(&mut self, kind: HeaderKind, value: u32) -> &mut Self {
        self.out.extend_from_slice(kind.as_str().as_bytes());
        self.out.extend_from_slice(b": ");
        self.num(value);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Appends header lines rendered earlier (each `Name: value CRLF`), e.g. the Via/From/To/
    /// Call-ID/CSeq block a server transaction reuses for every response it sends.
    pub fn raw_lines(&mut self, lines: &[u8]) -> &mut Self {
        self.out.extend_from_slice(lines);
        self
    }

    /// Copies a received header: its name as received (compact forms stay compact) and value.
    pub fn copy(&mut self, h: &Header<'_>) -> &mut Self {
        self.header_named(h.name, h.value)
    }

    /// Copies every header of `msg` for which `keep` returns true, in order. Content-Length is
    /// never copied (the writer computes it).
    pub fn copy_all(
        &mut self,
        msg: &Message<'_, '_>,
        mut keep: impl FnMut(&Header<'_>) -> bool,
    ) -> &mut Self {
        for h in msg.headers {
            if h.kind != HeaderKind::ContentLength && keep(h) {
                self.copy(h);
            }
        }
        self
    }

    /// `Via: SIP/2.0/<transport> <sent_by>;branch=<branch parts>[;rport]` (RFC 3261 §8.1.1.7,
    /// RFC 3581). The branch should start with `z9hG4bK`; pass it as parts to avoid formatting.
    pub fn via(
        &mut self,
        transport: &[u8],
        sent_by: &[u8],
        branch: &[&[u8]],
        rport: bool,
    ) -> &mut Self {
        self.out.extend_from_slice(b"Via: SIP/2.0/");
        self.out.extend_from_slice(transport);
        self.out.push(b' ');
        self.out.extend_from_slice(sent_by);
        self.out.extend_from_slice(b";branch=");
        for p in branch {
            self.out.extend_from_slice(p);
        }
        if rport {
            self.out.extend_from_slice(b";rport");
        }
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// `CSeq: <seq> <method>`.
    pub fn cseq(&mut self, seq: u32, method: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b"CSeq: ");
        self.num(seq);
        self.out.push(b' ');
        self.out.extend_from_slice(method);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Writes a name-addr header (From, To, Contact…) from a parsed one, keeping display name,
    /// URI and parameters but replacing the tag: `tag = Some(t)` writes `;tag=t`, `None` writes
    /// no tag (a new outbound To). The URI is always written in `<>`, which is valid for every
    /// URI and makes the header parameters unambiguous.
    pub fn name_addr(
        &mut self,
        kind: HeaderKind,
        na: &NameAddr<'_>,
        tag: Option<&[u8]>,
    ) -> &mut Self {
        self.name_addr_parts(kind, na.display, &[na.uri], na, tag)
    }

    /// Like [`name_addr`](Self::name_addr) with the URI replaced by the concatenation of
    /// `uri_parts` (e.g. a To rewritten to the outbound trunk's domain).
    pub fn name_addr_parts(
        &mut self,
        kind: HeaderKind,
        display: Option<&[u8]>,
        uri_parts: &[&[u8]],
        params_from: &NameAddr<'_>,
        tag: Option<&[u8]>,
    ) -> &mut Self {
        self.out.extend_from_slice(kind.as_str().as_bytes());
        self.out.extend_from_slice(b": ");
        if let Some(d) = display {
            self.out.extend_from_slice(d);
            self.out.push(b' ');
        }
        self.out.push(b'<');
        for p in uri_parts {
            self.out.extend_from_slice(p);
        }
        self.out.push(b'>');
        for p in params_from.params.iter() {
            if p.name.eq_ignore_ascii_case(b"tag") {
                continue;
            }
            self.out.push(b';');
            self.out.extend_from_slice(p.name);
            if let Some(v) = p.value {
                self.out.push(b'=');
                self.out.extend_from_slice(v);
            }
        }
        if let Some(t) = tag {
            self.out.extend_from_slice(b";tag=");
            self.out.extend_from_slice(t);
        }
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Ends a message without body: `Content-Length: 0`, the empty line. Returns its length.
    pub fn finish(self) -> usize {
        self.out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        self.out.len() - self.start
    }

    /// Ends the message with `body` (Content-Type, if any, must have been written).
    pub fn finish_with_body(mut self, body: &[u8]) -> usize {
        self.out.extend_from_slice(b"Content-Length: ");
        self.num(u32::try_from(body.len()).unwrap_or(u32::MAX));
        self.out.extend_from_slice(b"\r\n\r\n");
        self.out.extend_from_slice(body);
        self.out.len() - self.start
    }

    /// Ends the message with a body that `write` appends to the buffer in place (e.g. an SDP
    /// rewrite), then fills in Content-Length. Returns the message length and `write`'s result.
    /// The body is moved once, by at most [`CL_DIGITS`] bytes, to close the gap left for the digits.
    pub fn finish_with<R>(self, write: impl FnOnce(&mut Vec<u8>) -> R) -> (usize, R) {
        self.out.extend_from_slice(b"Content-Length: ");
        let digits_at = self.out.len();
        self.out.extend_from_slice(&[b'0'; CL_DIGITS]);
        self.out.extend_from_slice(b"\r\n\r\n");
        let body_at = self.out.len();
        let r = write(self.out);
        let body_len = self.out.len() - body_at;
        let mut num = itoa::Buffer::new();
        let digits = num.format(body_len).as_bytes();
        self.out[digits_at..digits_at + digits.len()].copy_from_slice(digits);
        let gap = CL_DIGITS - digits.len();
        self.out
            .copy_within(digits_at + CL_DIGITS.., digits_at + digits.len());
        let new_len = self.out.len() - gap;
        self.out.truncate(new_len);
        (self.out.len() - self.start, r)
    }

    fn num(&mut self, v: u32) {
        let mut b = itoa::Buffer::new();
        self.out.extend_from_slice(b.format(v).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::EMPTY_HEADER;
    use crate::message::parse;

    const INBOUND: &[u8] = b"INVITE sip:91919#12127773456@k3x9q.sbc.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKpbx1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@pbx.example>;tag=pbx-tag\r\n\
To: <sip:91919#12127773456@k3x9q.sbc.test>\r\n\
Call-ID: pbx-call-1@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Record-Route: <sip:192.0.2.11;lr>\r\n\
X-Trunk-Key: s3cret\r\n\
Allow: INVITE, ACK, BYE, CANCEL\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 3\r\n\
\r\n\
abc";

    #[test]
    fn builds_outbound_request_that_reparses() {
        let mut h = [EMPTY_HEADER; 32];
        let m = parse(INBOUND, &mut h).unwrap();
        let mut out = Vec::with_capacity(1024);
        let mut w = Writer::new(&mut out);
        w.request_line(
            b"INVITE",
            &[b"sip:", b"555#", b"12127773456", b"@", b"carrier.test"],
        )
        .via(b"UDP", b"127.0.0.1:5060", &[b"z9hG4bK", b"out1"], true)
        .header_u32(HeaderKind::MaxForwards, 69)
        .name_addr(HeaderKind::From, &m.from().unwrap(), Some(b"sbc-tag"))
        .name_addr_parts(
            HeaderKind::To,
            None,
            &[b"sip:555#12127773456@carrier.test"],
            &m.to().unwrap(),
            None,
        )
        .header(HeaderKind::CallId, b"sbc-call-1")
        .cseq(1, b"INVITE")
        .header(HeaderKind::Contact, b"<sip:127.0.0.1:5060>")
        .copy_all(&m, |h| {
            matches!(h.kind, HeaderKind::Allow | HeaderKind::ContentType)
        });
        let (len, ()) = w.finish_with(|b| b.extend_from_slice(b"v=0\r\n"));
        assert_eq!(len, out.len());
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"), "{text}");
        assert!(
            !text.contains("pbx-call-1") && !text.contains("192.0.2") && !text.contains("s3cret")
        );

        let mut h2 = [EMPTY_HEADER; 32];
        let o = parse(&out, &mut h2).unwrap();
        o.validate().unwrap();
        assert_eq!(
            o.request_uri(),
            Some(&b"sip:555#12127773456@carrier.test"[..])
        );
        assert_eq!(o.from().unwrap().tag(), Some(&b"sbc-tag"[..]));
        assert_eq!(o.from().unwrap().display, Some(&b"\"Alice\""[..]));
        assert_eq!(o.to().unwrap().tag(), None);
        assert_eq!(o.top_via().unwrap().branch(), Some(&b"z9hG4bKout1"[..]));
        assert_eq!(o.body, b"v=0\r\n");
        assert_eq!(o.values(HeaderKind::Allow).count(), 4);
    }

    #[test]
    fn responses_and_empty_bodies() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.status_line(486, b"Busy Here").cseq(7, b"INVITE");
        w.finish();
        assert_eq!(
            out,
            b"SIP/2.0 486 Busy Here\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.status_line(200, b"OK");
        w.finish_with_body(b"x");
        assert_eq!(out, b"SIP/2.0 200 OK\r\nContent-Length: 1\r\n\r\nx");
        let mut out = b"prefix".to_vec();
        let mut w = Writer::new(&mut out);
        w.status_line(200, b"OK");
        let (n, ()) = w.finish_with(|_| {});
        assert_eq!(&out[6..], b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(n, out.len() - 6);
    }
}

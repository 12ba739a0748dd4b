//! Messages: the start line and header index (RFC 3261 §7), datagram parsing, stream framing
//! (§18.3) and the element-level validation of §8.2.
//!
//! The parser makes one pass: one `memchr` per line to find its end, a token check over the header
//! name, a byte compare to recognise the name. Values are not examined until a typed view asks.

use crate::error::ParseError;
use crate::header::{Header, HeaderKind};
use crate::text::{is_token, is_token_str, parse_u32, trim, CommaList};
use crate::uri::Uri;
use crate::views::{CSeq, Contacts, MediaType, NameAddr, Via};

/// The outcome of an operation that may need more input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// Done.
    Complete(T),
    /// The input ends before the message does: read more. This is not an error.
    ///
    /// In streaming code, avoid retry loops on a growing buffer without size and time limits:
    /// [`frame`] re-scans the header section on each call, so its cost is bounded only by
    /// [`Limits::max_header_bytes`].
    Partial,
}

/// Limits the caller sets on one message. Exceeding one is an error, never a silent truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of header lines (folded continuations do not count).
    pub max_headers: usize,
    /// Maximum size of the start line plus header section, terminating empty line included.
    pub max_header_bytes: usize,
    /// Maximum body size (the Content-Length value).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    /// 128 headers, 16 KiB of header section, 64 KiB of body: above anything a trunk sends
    /// (RFC 4475's longest torture message has 3.5 KiB of headers).
    fn default() -> Self {
        Self {
            max_headers: 128,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// SIP methods (RFC 3261 §7.1 and the extension RFCs a B2BUA meets). Methods are case-sensitive.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// RFC 3261
    Invite,
    /// RFC 3261
    Ack,
    /// RFC 3261
    Bye,
    /// RFC 3261
    Cancel,
    /// RFC 3261
    Options,
    /// RFC 3261
    Register,
    /// RFC 3262
    Prack,
    /// RFC 3311
    Update,
    /// RFC 6086
    Info,
    /// RFC 3428
    Message,
    /// RFC 3515
    Refer,
    /// RFC 6665
    Subscribe,
    /// RFC 6665
    Notify,
    /// RFC 3903
    Publish,
    /// An extension method; its name is in the start line or CSeq.
    Other,
}

impl Method {
    /// Recognises a method name (case-sensitive, RFC 3261 §7.1).
    pub fn from_bytes(s: &[u8]) -> Self {
        match s {
            b"INVITE" => Self::Invite,
            b"ACK" => Self::Ack,
            b"BYE" => Self::Bye,
            b"CANCEL" => Self::Cancel,
            b"OPTIONS" => Self::Options,
            b"REGISTER" => Self::Register,
            b"PRACK" => Self::Prack,
            b"UPDATE" => Self::Update,
            b"INFO" => Self::Info,
            b"MESSAGE" => Self::Message,
            b"REFER" => Self::Refer,
            b"SUBSCRIBE" => Self::Subscribe,
            b"NOTIFY" => Self::Notify,
            b"PUBLISH" => Self::Publish,
            _ => Self::Other,
        }
    }

    /// The method name, or `None` for [`Method::Other`].
    pub const fn as_str(self) -> Option<&'static str> {
        Some(match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Options => "OPTIONS",
            Self::Register => "REGISTER",
            Self::Prack => "PRACK",
            Self::Update => "UPDATE",
            Self::Info => "INFO",
            Self::Message => "MESSAGE",
            Self::Refer => "REFER",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Publish => "PUBLISH",
            Self::Other => return None,
        })
    }
}

/// The first line of a message (RFC 3261 §7.1, §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'b> {
    /// `Method SP Request-URI SP SIP-Version`
    Request {
        /// The recognised method.
        method: Method,
        /// The method as written (needed for extension methods).
        method_raw: &'b [u8],
        /// The Request-URI as written; parse it with [`Uri::parse`].
        uri: &'b [u8],
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`
    Response {
        /// 100–699.
        code: u16,
        /// Opaque UTF-8 text, possibly empty.
        reason: &'b [u8],
    },
}

/// A parsed message: borrowed start line, header index and body.
///
/// `'b` is the receive buffer, `'h` the caller's header array.
#[derive(Debug, Clone, Copy)]
pub struct Message<'h, 'b> {
    /// Request or status line.
    pub start: StartLine<'b>,
    /// `SIP/2.0` as written (another version parses; [`Message::validate`] rejects it).
    pub version: &'b [u8],
    /// Header lines in order of appearance.
    pub headers: &'h [Header<'b>],
    /// Exactly Content-Length bytes (or, on a datagram without Content-Length, the rest).
    pub body: &'b [u8],
    /// The Content-Length value, if the header was present.
    pub content_length: Option<u32>,
    /// Bytes of the input that make up this message (input after it is not part of it).
    pub len: usize,
}

/// Parses one complete message from a datagram (or a frame from [`frame`]).
///
/// Header lines go into `headers`; more lines than it holds is [`ParseError::TooManyHeaders`].
/// A body shorter than Content-Length is [`ParseError::Truncated`]; octets after the body are not
/// part of the message (RFC 3261 §18.3) and [`Message::len`] says where it ended. Without a
/// Content-Length the body is the rest of the datagram (allowed on UDP only; stream callers get
/// that checked by [`frame`]). Leading CRLFs (keep-alives, §7.5) are skipped.
pub fn parse<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
) -> Result<Message<'h, 'b>, ParseError> {
    let mut pos = skip_crlf(buf);
    let (line, next) = next_line(buf, pos).ok_or(ParseError::StartLine("no line end"))?;
    let (start, version) = parse_start_line(line)?;
    pos = next;

    let mut count = 0usize;
    let mut content_length: Option<u32> = None;
    let mut line_no: u16 = 0;
    loop {
        let (mut line, mut next) = next_line(buf, pos).ok_or(ParseError::HeaderLine {
            line: line_no.saturating_add(1),
            problem: "header section not terminated by an empty line",
        })?;
        if line.is_empty() {
            pos = next;
            break;
        }
        line_no = line_no.saturating_add(1);
        // Folding: a line starting with SP or HTAB continues the previous value (§7.3.1).
        let line_start = pos;
        while matches!(buf.get(next), Some(b' ' | b'\t')) {
            let (_, n2) = next_line(buf, next).ok_or(ParseError::HeaderLine {
                line: line_no,
                problem: "folded header line not terminated",
            })?;
            let end = line_end_trim(buf, n2);
            line = &buf[line_start..end];
            next = n2;
        }
        pos = next;

        let header = parse_header_line(line, line_no)?;
        if header.kind == HeaderKind::ContentLength {
            let v = parse_content_length(header.value)?;
            match content_length {
                Some(prev) if prev != v => {
                    return Err(ParseError::ContentLength("two headers disagree"))
                }
                _ => content_length = Some(v),
            }
        }
        let slot = headers.get_mut(count).ok_or(ParseError::TooManyHeaders)?;
        *slot = header;
        count += 1;
    }

    let (body, len) = match content_length {
        Some(cl) => {
            let end = pos.checked_add(cl as usize).ok_or(ParseError::Truncated)?;
            let body = buf.get(pos..end).ok_or(ParseError::Truncated)?;
            (body, end)
        }
        None => (&buf[pos..], buf.len()),
    };
    Ok(Message {
        start,
        version,
        headers: &headers[..count],
        body,
        content_length,
        len,
    })
}

/// What [`frame`] found at the start of a stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `len` bytes of CRLF keep-alive (RFC 5626 §3.5.1); a double CRLF asks for a single CRLF back.
    KeepAlive {
        /// Bytes to consume.
        len: usize,
    },
    /// One whole message of `len` bytes; hand `&buf[..len]` to [`parse`].
    Message {
        /// Bytes to consume.
        len: usize,
    },
}

/// Finds the first message boundary in a stream (TCP/TLS) buffer (RFC 3261 §18.3).
///
/// Returns [`Status::Partial`] when more bytes are needed; the caller bounds how long it waits.
/// Content-Length is mandatory on streams. A header section larger than
/// [`Limits::max_header_bytes`], more lines than [`Limits::max_headers`] or a body larger than
/// [`Limits::max_body_bytes`] is an error as soon as it is known, so a peer cannot make the caller
/// buffer without bound.
pub fn frame(buf: &[u8], limits: &Limits) -> Result<Status<Frame>, ParseError> {
    let ka = keepalive_len(buf);
    if ka > 0 {
        return Ok(Status::Complete(Frame::KeepAlive { len: ka }));
    }
    if buf.first() == Some(&b'\r') && buf.len() == 1 {
        return Ok(Status::Partial);
    }
    let window = &buf[..buf.len().min(limits.max_header_bytes)];
    let Some(head_end) = find_header_end(window) else {
        return if buf.len() >= limits.max_header_bytes {
            Err(ParseError::HeadersTooLarge)
        } else {
            Ok(Status::Partial)
        };
    };
    // Scan the header lines for Content-Length only; full parsing is parse()'s job.
    let Some((_, mut pos)) = next_line(buf, 0) else {
        return Err(ParseError::StartLine("no line end"));
    };
    let mut content_length: Option<u32> = None;
    let mut lines = 0usize;
    let mut line_no: u16 = 0;
    while pos < head_end {
        let Some((line, next)) = next_line(buf, pos) else {
            break;
        };
        pos = next;
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            continue; // folded continuation
        }
        line_no = line_no.saturating_add(1);
        lines += 1;
        if lines > limits.max_headers {
            return Err(ParseError::TooManyHeaders);
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(ParseError::HeaderLine {
                line: line_no,
                problem: "no colon",
            });
        };
        let name = trim(&line[..colon]);
        if HeaderKind::from_name(name) == HeaderKind::ContentLength {
            // The value may be folded onto following lines; take the full logical line.
            let mut value_end = next;
            while matches!(buf.get(value_end), Some(b' ' | b'\t')) {
                match next_line(buf, value_end) {
                    Some((_, n)) => value_end = n,
                    None => break,
                }
            }
            let value = &buf[line_start_of(buf, line) + colon + 1..value_end];
            let v = parse_content_length(trim(value))?;
            match content_length {
                Some(prev) if prev != v => {
                    return Err(ParseError::ContentLength("two headers disagree"))
                }
                _ => content_length = Some(v),
            }
        }
    }
    let cl =
        content_length.ok_or(ParseError::ContentLength("missing on a stream transport"))? as usize;
    if cl > limits.max_body_bytes {
        return Err(ParseError::BodyTooLarge);
    }
    let total = head_end + cl;
    if buf.len() < total {
        return Ok(Status::Partial);
    }
    Ok(Status::Complete(Frame::Message { len: total }))
}

fn line_start_of(buf: &[u8], line: &[u8]) -> usize {
    line.as_ptr() as usize - buf.as_ptr() as usize
}

/// Length of the leading run of CRLF (or LF) pairs.
fn keepalive_len(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        if buf[i..].starts_with(b"\r\n") {
            i += 2;
        } else if buf.get(i) == Some(&b'\n') {
            i += 1;
        } else {
            return i;
        }
    }
}

fn skip_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(buf.len())
}

/// Index just after the empty line that ends the header section (CRLFCRLF, or LF LF), if any.
fn find_header_end(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) {
        let after = pos + nl + 1;
        match buf.get(after) {
            Some(b'\n') => return Some(after + 1),
            Some(b'\r') if buf.get(after + 1) == Some(&b'\n') => return Some(after + 2),
            Some(_) => pos = after,
            None => return None,
        }
    }
    None
}

/// The line starting at `pos` without its terminator, and the index after the terminator.
/// Accepts CRLF and bare LF.
#[inline]
fn next_line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let nl = memchr::memchr(b'\n', rest)?;
    let end = if nl > 0 && rest[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((&rest[..end], pos + nl + 1))
}

/// Given the index after a line terminator, the index of the end of that line's content.
fn line_end_trim(buf: &[u8], after: usize) -> usize {
    let mut end = after - 1; // at '\n'
    if end > 0 && buf[end - 1] == b'\r' {
        end -= 1;
    }
    end
}

fn parse_header_line(line: &[u8], line_no: u16) -> Result<Header<'_>, ParseError> {
    let bad = |problem| ParseError::HeaderLine {
        line: line_no,
        problem,
    };
    // One pass over the name: token characters, then `HCOLON = *( SP / HTAB ) ":" SWS`.
    let name_end = line
        .iter()
        .position(|&c| !is_token(c))
        .unwrap_or(line.len());
    if name_end == 0 {
        return Err(bad("header name is not a token"));
    }
    let mut colon = name_end;
    while matches!(line.get(colon), Some(b' ' | b'\t')) {
        colon += 1;
    }
    match line.get(colon) {
        Some(b':') => {}
        None => return Err(bad("no colon")),
        Some(_) => return Err(bad("header name is not a token")),
    }
    let name = &line[..name_end];
    Ok(Header {
        name,
        kind: HeaderKind::from_name(name),
        value: trim(&line[colon + 1..]),
    })
}

fn parse_content_length(v: &[u8]) -> Result<u32, ParseError> {
    if v.is_empty() {
        return Err(ParseError::ContentLength("empty"));
    }
    if v[0] == b'-' {
        return Err(ParseError::ContentLength("negative"));
    }
    parse_u32(v).ok_or(ParseError::ContentLength("not a number 0-4294967295"))
}

fn parse_start_line(line: &[u8]) -> Result<(StartLine<'_>, &[u8]), ParseError> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp = memchr::memchr(b' ', line)
            .ok_or(ParseError::StartLine("status line without status code"))?;
        let version = &line[..sp];
        check_version(version)?;
        let rest = &line[sp + 1..];
        let (code, reason) = match memchr::memchr(b' ', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]), // tolerate a missing reason phrase
        };
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::StartLine("status code is not three digits"));
        }
        let code = u16::from(code[0] - b'0') * 100
            + u16::from(code[1] - b'0') * 10
            + u16::from(code[2] - b'0');
        if !(100..=699).contains(&code) {
            return Err(ParseError::StartLine("status code outside 100-699"));
        }
        return Ok((StartLine::Response { code, reason }, version));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version CRLF: exactly single spaces.
    let sp1 = memchr::memchr(b' ', line)
        .ok_or(ParseError::StartLine("request line without Request-URI"))?;
    let method_raw = &line[..sp1];
    if !is_token_str(method_raw) {
        return Err(ParseError::StartLine("method is not a token"));
    }
    let rest = &line[sp1 + 1..];
    let sp2 = memchr::memchr(b' ', rest)
        .ok_or(ParseError::StartLine("request line without SIP version"))?;
    let uri = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    if uri.is_empty() {
        return Err(ParseError::StartLine(
            "empty Request-URI or more than one SP",
        ));
    }
    if version.contains(&b' ') || version.contains(&b'\t') {
        return Err(ParseError::StartLine(
            "white space inside the Request-URI or after the version",
        ));
    }
    check_version(version)?;
    Ok((
        StartLine::Request {
            method: Method::from_bytes(method_raw),
            method_raw,
            uri,
        },
        version,
    ))
}

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT` ("SIP" case-insensitive).
fn check_version(v: &[u8]) -> Result<(), ParseError> {
    let ok = v.len() >= 7 && v[..4].eq_ignore_ascii_case(b"SIP/") && {
        let num = &v[4..];
        match memchr::memchr(b'.', num) {
            Some(dot) => {
                dot > 0
                    && dot + 1 < num.len()
                    && num[..dot].iter().all(u8::is_ascii_digit)
                    && num[dot + 1..].iter().all(u8::is_ascii_digit)
            }
            None => false,
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ParseError::StartLine("malformed SIP version"))
    }
}

/// The bit of `kind` in a `u64` set of header kinds.
fn kind_bit(kind: HeaderKind) -> u64 {
    1 << (kind as u32)
}

const _: () = assert!(
    (HeaderKind::Other as u32) < 64,
    "kind_bit needs fewer than 64 header kinds"
);

// === impl Message ===

impl<'h, 'b> Message<'h, 'b> {
    /// Is this a request?
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, or `None` for a response.
    pub fn method(&self) -> Option<Method> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, or `None` for a request.
    pub fn status_code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI as written, or `None` for a response.
    pub fn request_uri(&self) -> Option<&'b [u8]> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first header of this kind.
    pub fn header(&self, kind: HeaderKind) -> Option<&'h Header<'b>> {
        self.headers.iter().find(|h| h.kind == kind)
    }

    /// The first header with this name (case-insensitive; compact forms of known headers match
    /// their full names). Use this for extension headers such as `X-Trunk-Key`.
    pub fn header_named(&self, name: &[u8]) -> Option<&'h Header<'b>> {
        let kind = HeaderKind::from_name(name);
        if kind != HeaderKind::Other {
            return self.header(kind);
        }
        self.headers
            .iter()
            .find(|h| h.kind == HeaderKind::Other && h.name.eq_ignore_ascii_case(name))
    }

    /// All headers of this kind, in order.
    pub fn headers_of(&self, kind: HeaderKind) -> impl Iterator<Item = &'h Header<'b>> + 'h {
        self.headers.iter().filter(move |h| h.kind == kind)
    }

    /// Every value of a list header across all its header lines, in order (RFC 3261 §7.3.1):
    /// `Via: a, b` + `Via: c` yields `a`, `b`, `c`.
    pub fn values(&self, kind: HeaderKind) -> impl Iterator<Item = &'b [u8]> + 'h {
        self.headers_of(kind).flat_map(|h| CommaList::new(h.value))
    }

    /// The Call-ID value.
    pub fn call_id(&self) -> Option<&'b [u8]> {
        self.header(HeaderKind::CallId).map(|h| h.value)
    }

    /// The parsed CSeq.
    pub fn cseq(&self) -> Result<CSeq<'b>, ParseError> {
        let h = self
            .header(HeaderKind::CSeq)
            .ok_or(ParseError::MissingHeader(HeaderKind::CSeq))?;
        CSeq::parse(h.value)
    }

    /// The parsed From header.
    pub fn from(&self) -> Result<NameAddr<'b>, ParseError> {
        let h = self
            .header(HeaderKind::From)
            .ok_or(ParseError::MissingHeader(HeaderKind::From))?;
        NameAddr::parse(h.value, HeaderKind::From)
    }

    /// The parsed To header.
    pub fn to(&self) -> Result<NameAddr<'b>, ParseError> {
        let h = self
            .header(HeaderKind::To)
            .ok_or(ParseError::MissingHeader(HeaderKind::To))?;
        NameAddr::parse(h.value, HeaderKind::To)
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'b>, ParseError>> + 'h {
        self.values(HeaderKind::Via).map(Via::parse)
    }

    /// The topmost Via (the one that names the previous hop).
    pub fn top_via(&self) -> Result<Via<'b>, ParseError> {
        self.values(HeaderKind::Via)
            .next()
            .map_or(Err(ParseError::MissingHeader(HeaderKind::Via)), Via::parse)
    }

    /// Max-Forwards, if present (0–255, RFC 3261 §20.22).
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        match self.header(HeaderKind::MaxForwards) {
            None => Ok(None),
            Some(h) => parse_u32(h.value)
                .and_then(|v| u8::try_from(v).ok())
                .map(Some)
                .ok_or(ParseError::header(
                    HeaderKind::MaxForwards,
                    "not a number 0-255",
                )),
        }
    }

    /// The Expires header (delta-seconds), if present.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.header(HeaderKind::Expires) {
            None => Ok(None),
            Some(h) => parse_u32(h.value).map(Some).ok_or(ParseError::header(
                HeaderKind::Expires,
                "not a number 0-4294967295",
            )),
        }
    }

    /// The Content-Type value (media type with parameters), if present.
    pub fn content_type(&self) -> Option<&'b [u8]> {
        self.header(HeaderKind::ContentType).map(|h| h.value)
    }

    /// The parsed Content-Type, if present.
    pub fn media_type(&self) -> Option<Result<MediaType<'b>, ParseError>> {
        self.header(HeaderKind::ContentType)
            .map(|h| MediaType::parse(h.value))
    }

    /// The Contact header(s): `*` or a list of name-addrs across all Contact lines.
    pub fn contacts(&self) -> Contacts<'h, 'b> {
        Contacts::new(self.headers)
    }

    /// Route values, in order, as name-addrs.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'b>, ParseError>> + 'h {
        self.values(HeaderKind::Route)
            .map(|v| NameAddr::parse(v, HeaderKind::Route))
    }

    /// Record-Route values, in order, as name-addrs.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'b>, ParseError>> + 'h {
        self.values(HeaderKind::RecordRoute)
            .map(|v| NameAddr::parse(v, HeaderKind::RecordRoute))
    }

    /// Does a list header (Supported, Require, Allow…) contain this token (case-insensitive)?
    pub fn has_token(&self, kind: HeaderKind, token: &[u8]) -> bool {
        self.values(kind).any(|v| v.eq_ignore_ascii_case(token))
    }

    /// Checks what RFC 3261 requires of a message before an element acts on it (§8.1.1, §8.2,
    /// §16.3, §20): SIP/2.0; mandatory headers (Call-ID, CSeq, From, To, at least one Via)
    /// present; single-instance headers not repeated; CSeq, Max-Forwards and Expires in range;
    /// the CSeq method equal to the request method; every Via, From, To, Contact, Route and
    /// Record-Route well formed, their URIs included; a Request-URI with no escaped headers.
    ///
    /// Max-Forwards is not required (RFC 2543 peers omit it; a proxy adds one, §16.6).
    /// The error is what a UAS puts in its 400 (or 505 for [`ParseError::UnsupportedVersion`]).
    pub fn validate(&self) -> Result<(), ParseError> {
        if !self.version.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(ParseError::UnsupportedVersion);
        }
        // One bit per header kind seen (there are fewer than 64 kinds, see the const below).
        let mut seen: u64 = 0;
        for h in self.headers {
            let bit = kind_bit(h.kind);
            if h.kind.is_single() && seen & bit != 0 {
                return Err(ParseError::DuplicateHeader(h.kind));
            }
            seen |= bit;
        }
        for kind in [
            HeaderKind::CallId,
            HeaderKind::CSeq,
            HeaderKind::From,
            HeaderKind::To,
            HeaderKind::Via,
        ] {
            if seen & kind_bit(kind) == 0 {
                return Err(ParseError::MissingHeader(kind));
            }
        }
        if self.call_id().is_some_and(<[u8]>::is_empty) {
            return Err(ParseError::header(HeaderKind::CallId, "empty"));
        }
        let cseq = self.cseq()?;
        if let StartLine::Request {
            method_raw, uri, ..
        } = self.start
        {
            if cseq.method != method_raw {
                return Err(ParseError::CSeqMethodMismatch);
            }
            let ruri = Uri::parse(uri)?;
            if let Uri::Sip(sip) = ruri {
                if sip.headers.is_some() {
                    return Err(ParseError::Uri(
                        "escaped headers are not allowed in a Request-URI",
                    ));
                }
            }
        }
        self.max_forwards()?;
        self.expires()?;
        for via in self.vias() {
            via?;
        }
        self.from()?.validate()?;
        self.to()?.validate()?;
        for c in self.contacts().iter() {
            c?.validate()?;
        }
        for r in self.routes().chain(self.record_routes()) {
            r?.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::EMPTY_HEADER;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn parses_request_line_headers_and_body() {
        let mut h = [EMPTY_HEADER; 16];
        let m = parse(INVITE, &mut h).unwrap();
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.request_uri(), Some(&b"sip:bob@biloxi.example.com"[..]));
        assert_eq!(m.headers.len(), 9);
        assert_eq!(
            m.call_id(),
            Some(&b"a84b4c76e66710@pc33.atlanta.example.com"[..])
        );
        assert_eq!(m.body, b"v=0\n");
        assert_eq!(m.len, INVITE.len());
        assert_eq!(m.max_forwards(), Ok(Some(70)));
        m.validate().unwrap();
    }

    #[test]
    fn status_line_variants() {
        let mut h = [EMPTY_HEADER; 4];
        let m = parse(b"SIP/2.0 100 \r\n\r\n", &mut h).unwrap();
        assert_eq!(
            m.start,
            StartLine::Response {
                code: 100,
                reason: b""
            }
        );
        let mut h = [EMPTY_HEADER; 4];
        assert!(parse(b"SIP/2.0 4294967301 Big\r\n\r\n", &mut h).is_err());
        let mut h = [EMPTY_HEADER; 4];
        assert!(parse(b"SIP/2.0 099 Low\r\n\r\n", &mut h).is_err());
    }

    #[test]
    fn too_many_headers_is_an_error() {
        let mut h = [EMPTY_HEADER; 3];
        assert_eq!(
            parse(INVITE, &mut h).unwrap_err(),
            ParseError::TooManyHeaders
        );
    }

    #[test]
    fn truncated_and_conflicting_lengths() {
        let mut h = [EMPTY_HEADER; 16];
        let short = &INVITE[..INVITE.len() - 1];
        assert_eq!(parse(short, &mut h).unwrap_err(), ParseError::Truncated);
        let two = b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab";
        assert!(matches!(
            parse(two, &mut h),
            Err(ParseError::ContentLength(_))
        ));
    }

    #[test]
    fn frame_finds_boundaries_and_keepalives() {
        let limits = Limits::default();
        assert_eq!(
            frame(b"\r\n\r\n", &limits),
            Ok(Status::Complete(Frame::KeepAlive { len: 4 }))
        );
        let mut two = INVITE.to_vec();
        two.extend_from_slice(INVITE);
        assert_eq!(
            frame(&two, &limits),
            Ok(Status::Complete(Frame::Message { len: INVITE.len() }))
        );
        for n in 0..INVITE.len() {
            assert_eq!(
                frame(&INVITE[..n], &limits),
                Ok(Status::Partial),
                "prefix {n}"
            );
        }
        let no_cl = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n";
        assert!(matches!(
            frame(no_cl, &limits),
            Err(ParseError::ContentLength(_))
        ));
        let tight = Limits {
            max_header_bytes: 64,
            ..limits
        };
        assert_eq!(
            frame(&INVITE[..100], &tight),
            Err(ParseError::HeadersTooLarge)
        );
        let tight = Limits {
            max_body_bytes: 2,
            ..limits
        };
        assert_eq!(frame(INVITE, &tight), Err(ParseError::BodyTooLarge));
        let tight = Limits {
            max_headers: 2,
            ..limits
        };
        assert_eq!(frame(INVITE, &tight), Err(ParseError::TooManyHeaders));
    }
}

//! Typed views of header values, parsed on demand and borrowed from the message.
//!
//! Grammar references are RFC 3261 §25.1 unless noted. Every view tolerates LWS (including folded
//! line breaks) wherever the grammar's `SWS`/`LWS` allows it, as RFC 4475 §3.1.1.1 exercises.

use std::fmt;

use crate::error::ParseError;
use crate::header::{Header, HeaderKind};
use crate::params::{unquote, Params};
use crate::text::{is_lws, is_token, parse_u16, parse_u32, quoted_end, trim, CommaList};
use crate::uri::{parse_host, Host, Uri};

fn skip_lws(s: &[u8]) -> &[u8] {
    &s[s.iter().position(|&c| !is_lws(c)).unwrap_or(s.len())..]
}

/// Splits a leading token off `s`: `(token, rest)`.
fn take_token(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().position(|&c| !is_token(c)).unwrap_or(s.len());
    (&s[..n], &s[n..])
}

/// Characters allowed in a generic-param name (a token).
fn param_name_ok(c: u8) -> bool {
    is_token(c)
}

// === Via ===

/// A Via value (RFC 3261 §20.42): `sent-protocol LWS sent-by *( SEMI via-params )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// `SIP` as written.
    pub protocol: &'a [u8],
    /// `2.0` as written.
    pub version: &'a [u8],
    /// `UDP`, `TCP`, `TLS`, `SCTP`, `WS`… as written (an unknown transport is still a token).
    pub transport: &'a [u8],
    /// The sent-by host.
    pub host: Host<'a>,
    /// The sent-by host as written (IPv6 with brackets).
    pub host_raw: &'a [u8],
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// `;branch=…;received=…;rport…`
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one Via value (one element of the comma list).
    pub fn parse(value: &'a [u8]) -> Result<Self, ParseError> {
        let err = |p| ParseError::header(HeaderKind::Via, p);
        let s = skip_lws(value);
        let (protocol, s) = take_token(s);
        let s = skip_lws(s)
            .strip_prefix(b"/")
            .ok_or(err("sent-protocol needs '/' after the protocol name"))?;
        let (version, s) = take_token(skip_lws(s));
        let s = skip_lws(s)
            .strip_prefix(b"/")
            .ok_or(err("sent-protocol needs '/' after the version"))?;
        let (transport, s) = take_token(skip_lws(s));
        if protocol.is_empty() || version.is_empty() || transport.is_empty() {
            return Err(err("empty sent-protocol part"));
        }
        let s = skip_lws(s);
        // sent-by = host [ COLON port ]
        let host_len = if s.first() == Some(&b'[') {
            memchr::memchr(b']', s)
                .map(|i| i + 1)
                .ok_or(err("unterminated IPv6 reference"))?
        } else {
            s.iter()
                .position(|&c| is_lws(c) || c == b';' || c == b':')
                .unwrap_or(s.len())
        };
        let host_raw = &s[..host_len];
        if host_raw.is_empty() {
            return Err(err("missing sent-by host"));
        }
        let host = parse_host(host_raw).map_err(|_| err("invalid sent-by host"))?;
        let mut s = skip_lws(&s[host_len..]);
        let mut port = None;
        if let Some(rest) = s.strip_prefix(b":") {
            let rest = skip_lws(rest);
            let n = rest
                .iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            port = Some(parse_u16(&rest[..n]).ok_or(err("sent-by port is not a number 1-65535"))?);
            s = skip_lws(&rest[n..]);
        }
        if !s.is_empty() && s[0] != b';' {
            return Err(err("unexpected text after sent-by"));
        }
        let params = Params::new(s);
        params.validate(param_name_ok).map_err(err)?;
        Ok(Self {
            protocol,
            version,
            transport,
            host,
            host_raw,
            port,
            params,
        })
    }

    /// The `branch` parameter (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.params.get(b"branch").flatten()
    }

    /// Does the branch start with the RFC 3261 magic cookie `z9hG4bK` (so it can be matched on)?
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > 7 && b.starts_with(b"z9hG4bK"))
    }

    /// The `received` parameter (RFC 3261 §18.2.1), IPv6 with or without brackets (RFC 5118 §4.5).
    pub fn received(&self) -> Option<Result<Host<'a>, ParseError>> {
        self.params.get(b"received").map(|v| {
            v.ok_or(ParseError::header(
                HeaderKind::Via,
                "received without value",
            ))
            .and_then(|v| {
                parse_host(v)
                    .map_err(|_| ParseError::header(HeaderKind::Via, "received is not an address"))
            })
        })
    }

    /// The `rport` parameter (RFC 3581): `None` absent, `Some(None)` requested, `Some(Some(p))` filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get(b"rport").map(|v| v.and_then(parse_u16))
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.params.get(b"maddr").flatten()
    }

    /// The `ttl` parameter (0–255).
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .get(b"ttl")
            .flatten()
            .and_then(parse_u32)
            .and_then(|v| u8::try_from(v).ok())
    }

    /// Is the transport this one (case-insensitive)?
    pub fn is_transport(&self, t: &[u8]) -> bool {
        self.transport.eq_ignore_ascii_case(t)
    }
}

// === NameAddr ===

/// `name-addr / addr-spec` with header parameters: the value of From, To, Contact, Route,
/// Record-Route, Refer-To, P-Asserted-Identity… (RFC 3261 §20.10, §20.20, §20.39).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written: quotes and escapes kept when it was quoted.
    pub display: Option<&'a [u8]>,
    /// The URI as written, without angle brackets. Parse it with [`NameAddr::parse_uri`].
    pub uri: &'a [u8],
    /// Was the URI in `<>` (name-addr form)?
    pub angle: bool,
    /// Header parameters after the URI (`;tag=…`, `;expires=…`, `;q=…`).
    pub params: Params<'a>,
    kind: HeaderKind,
}

impl<'a> NameAddr<'a> {
    /// Parses one value. `kind` is only used to say where an error is.
    pub fn parse(value: &'a [u8], kind: HeaderKind) -> Result<Self, ParseError> {
        let err = |p| ParseError::header(kind, p);
        let s = trim(value);
        if s.is_empty() {
            return Err(err("empty value"));
        }
        let (display, s) = if s[0] == b'"' {
            let end = quoted_end(s).ok_or(err("unterminated quoted display name"))?;
            let rest = skip_lws(&s[end..]);
            if rest.first() != Some(&b'<') {
                return Err(err("quoted display name must be followed by <URI>"));
            }
            (Some(&s[..end]), rest)
        } else if let Some(lt) = memchr::memchr(b'<', s) {
            let name = trim(&s[..lt]);
            // display-name = *(token LWS) / quoted-string: an unquoted one is tokens only.
            if !name.iter().all(|&c| is_token(c) || is_lws(c)) {
                return Err(err("display name with special characters must be quoted"));
            }
            (if name.is_empty() { None } else { Some(name) }, &s[lt..])
        } else {
            (None, s)
        };
        if let Some(inner) = s.strip_prefix(b"<") {
            let gt = memchr::memchr(b'>', inner).ok_or(err("'<' without '>'"))?;
            let uri = &inner[..gt];
            let rest = skip_lws(&inner[gt + 1..]);
            if !rest.is_empty() && rest[0] != b';' {
                return Err(err("unexpected text after '>'"));
            }
            return Ok(Self {
                display,
                uri,
                angle: true,
                params: Params::new(rest),
                kind,
            });
        }
        // addr-spec: the URI ends at the first ';' or LWS; what follows are header parameters.
        let end = s
            .iter()
            .position(|&c| c == b';' || is_lws(c))
            .unwrap_or(s.len());
        let rest = skip_lws(&s[end..]);
        if !rest.is_empty() && rest[0] != b';' {
            return Err(err("unexpected text after the URI"));
        }
        Ok(Self {
            display: None,
            uri: &s[..end],
            angle: false,
            params: Params::new(rest),
            kind,
        })
    }

    /// Checks the URI and parameters. In addr-spec form the URI may not contain `,` or `?`
    /// (RFC 3261 §20: such URIs must be enclosed in `<>`).
    pub fn validate(&self) -> Result<(), ParseError> {
        let err = |p| ParseError::header(self.kind, p);
        if self.uri.is_empty() {
            return Err(err("empty URI"));
        }
        if !self.angle && self.uri.iter().any(|&c| c == b',' || c == b'?') {
            return Err(err("a URI with ',' or '?' must be enclosed in <>"));
        }
        self.parse_uri()?;
        self.params.validate(param_name_ok).map_err(err)
    }

    /// Parses the URI.
    pub fn parse_uri(&self) -> Result<Uri<'a>, ParseError> {
        Uri::parse(self.uri)
    }

    /// The display name without quotes (escapes kept).
    pub fn display_unquoted(&self) -> Option<&'a [u8]> {
        self.display.map(unquote)
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.params.get(b"tag").flatten()
    }

    /// Contact `expires` parameter (RFC 3261 §20.10).
    pub fn expires(&self) -> Option<Result<u32, ParseError>> {
        self.params.get(b"expires").map(|v| {
            v.and_then(parse_u32).ok_or(ParseError::header(
                self.kind,
                "expires is not a number 0-4294967295",
            ))
        })
    }

    /// Contact `q` parameter in thousandths (`q=0.5` is 500), RFC 3261 §20.10 `qvalue`.
    pub fn q(&self) -> Option<Result<u16, ParseError>> {
        self.params.get(b"q").map(|v| {
            v.and_then(parse_qvalue)
                .ok_or(ParseError::header(self.kind, "q is not a qvalue 0-1"))
        })
    }
}

impl fmt::Debug for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameAddr")
            .field("display", &self.display.map(String::from_utf8_lossy))
            .field("uri", &String::from_utf8_lossy(self.uri))
            .field("params", &self.params)
            .finish()
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn parse_qvalue(s: &[u8]) -> Option<u16> {
    let (int, frac) = match memchr::memchr(b'.', s) {
        Some(d) => (&s[..d], &s[d + 1..]),
        None => (s, &s[s.len()..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, &c) in frac.iter().enumerate() {
        thousandths += u16::from(c - b'0') * [100, 10, 1][i];
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

// === Contact ===

/// The Contact header(s) of a message: `*` or name-addrs, across all Contact lines.
#[derive(Debug, Clone, Copy)]
pub struct Contacts<'h, 'b> {
    headers: &'h [Header<'b>],
}

/// One Contact value: a name-addr with `expires` and `q` accessors.
pub type Contact<'a> = NameAddr<'a>;

impl<'h, 'b> Contacts<'h, 'b> {
    pub(crate) fn new(headers: &'h [Header<'b>]) -> Self {
        Self { headers }
    }

    fn raw(&self) -> impl Iterator<Item = &'b [u8]> + 'h {
        self.headers
            .iter()
            .filter(|h| h.kind == HeaderKind::Contact)
            .flat_map(|h| CommaList::new(h.value))
    }

    /// Is this `Contact: *` (REGISTER: remove all bindings, RFC 3261 §10.2.2)?
    pub fn is_star(&self) -> bool {
        self.raw().any(|v| v == b"*")
    }

    /// Is there no Contact at all?
    pub fn is_empty(&self) -> bool {
        self.raw().next().is_none()
    }

    /// The name-addr values in order (`*` is not among them; see [`is_star`](Self::is_star)).
    /// A `*` mixed with addresses yields an error, as RFC 3261 §10.3 step 6 requires.
    pub fn iter(&self) -> impl Iterator<Item = Result<Contact<'b>, ParseError>> + 'h {
        let star = self.is_star();
        let count = self.raw().count();
        let mixed = star && count > 1;
        let mut reported = false;
        self.raw().filter_map(move |v| {
            if mixed && !reported {
                reported = true;
                return Some(Err(ParseError::header(
                    HeaderKind::Contact,
                    "'*' mixed with addresses",
                )));
            }
            if v == b"*" {
                return None;
            }
            Some(NameAddr::parse(v, HeaderKind::Contact))
        })
    }
}

// === CSeq ===

/// `CSeq = 1*DIGIT LWS Method` (RFC 3261 §20.16): a 32-bit sequence number and a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (must fit 32 bits, §8.1.1.5).
    pub seq: u32,
    /// The method as written.
    pub method: &'a [u8],
}

impl<'a> CSeq<'a> {
    /// Parses a CSeq value.
    pub fn parse(value: &'a [u8]) -> Result<Self, ParseError> {
        let err = |p| ParseError::header(HeaderKind::CSeq, p);
        let s = trim(value);
        let n = s
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(s.len());
        let seq = parse_u32(&s[..n]).ok_or(err("sequence number is not a number 0-4294967295"))?;
        let rest = &s[n..];
        if rest.first().is_none_or(|&c| !is_lws(c)) {
            return Err(err("missing white space before the method"));
        }
        let method = skip_lws(rest);
        if method.is_empty() || !method.iter().all(|&c| is_token(c)) {
            return Err(err("method is not a token"));
        }
        Ok(Self { seq, method })
    }

    /// The method, recognised.
    pub fn method_kind(&self) -> crate::Method {
        crate::Method::from_bytes(self.method)
    }
}

// === Content-Type ===

/// `media-type = m-type SLASH m-subtype *(SEMI m-parameter)` (RFC 3261 §20.15), e.g.
/// `application/sdp` or `multipart/mixed;boundary=x`. Compare type and subtype case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// `application`, `multipart`…
    pub kind: &'a [u8],
    /// `sdp`, `mixed`…
    pub subtype: &'a [u8],
    /// `;boundary=…;charset=…`
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses a Content-Type value.
    pub fn parse(value: &'a [u8]) -> Result<Self, ParseError> {
        let err = |p| ParseError::header(HeaderKind::ContentType, p);
        let s = skip_lws(value);
        let (kind, s) = take_token(s);
        let s = skip_lws(s)
            .strip_prefix(b"/")
            .ok_or(err("missing '/' between type and subtype"))?;
        let (subtype, s) = take_token(skip_lws(s));
        if kind.is_empty() || subtype.is_empty() {
            return Err(err("empty type or subtype"));
        }
        let s = skip_lws(s);
        if !s.is_empty() && s[0] != b';' {
            return Err(err("unexpected text after the subtype"));
        }
        let params = Params::new(s);
        params.validate(param_name_ok).map_err(err)?;
        Ok(Self {
            kind,
            subtype,
            params,
        })
    }

    /// Is this `type/subtype` (case-insensitive)?
    pub fn is(&self, kind: &[u8], subtype: &[u8]) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// Is this `application/sdp`?
    pub fn is_sdp(&self) -> bool {
        self.is(b"application", b"sdp")
    }
}

// === Authentication ===

/// A challenge (`WWW-Authenticate`, `Proxy-Authenticate`) or credentials (`Authorization`,
/// `Proxy-Authorization`): an auth scheme and its comma-separated parameters
/// (RFC 3261 §25.1 `challenge` / `credentials`, RFC 7616 §3.3–3.4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// `Digest`, or an unknown scheme as written (RFC 4475 §3.3.7).
    pub scheme: &'a [u8],
    /// The parameters, in any order, quoted or not.
    pub params: AuthParams<'a>,
}

impl<'a> Challenge<'a> {
    /// Parses one challenge or credentials value. `kind` says where an error is.
    pub fn parse(value: &'a [u8], kind: HeaderKind) -> Result<Self, ParseError> {
        let s = trim(value);
        let (scheme, rest) = take_token(s);
        if scheme.is_empty() {
            return Err(ParseError::header(kind, "missing auth scheme"));
        }
        if !rest.is_empty() && !is_lws(rest[0]) {
            return Err(ParseError::header(kind, "auth scheme is not a token"));
        }
        let params = AuthParams {
            raw: skip_lws(rest),
        };
        params.validate().map_err(|p| ParseError::header(kind, p))?;
        Ok(Self { scheme, params })
    }

    /// Parses a header value that may hold several challenges (RFC 7235 §4.1 allows
    /// `Digest realm="a", nonce="1", Digest realm="b", nonce="2"` in one header line).
    pub fn parse_all(
        value: &'a [u8],
        kind: HeaderKind,
    ) -> impl Iterator<Item = Result<Challenge<'a>, ParseError>> {
        let mut rest = Some(trim(value));
        std::iter::from_fn(move || {
            let s = rest?;
            if s.is_empty() {
                rest = None;
                return None;
            }
            // The next challenge starts at an element `token LWS token "="` after a comma.
            let mut cut = None;
            let mut tail = s;
            loop {
                let (_, after) = crate::text::split_unquoted(tail, b',');
                let Some(after) = after else { break };
                let next = skip_lws(after);
                let (tok, t) = take_token(next);
                if !tok.is_empty() && t.first().is_some_and(|&c| is_lws(c)) {
                    let (_, t2) = take_token(skip_lws(t));
                    if skip_lws(t2).first() == Some(&b'=') || skip_lws(t).is_empty() {
                        cut = Some(s.len() - after.len());
                        break;
                    }
                }
                tail = after;
            }
            let (this, next) = match cut {
                Some(c) => (&s[..c - 1], Some(skip_lws(&s[c..]))),
                None => (s, None),
            };
            rest = next;
            Some(Challenge::parse(this, kind))
        })
    }

    /// Is the scheme `Digest` (case-insensitive)?
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case(b"Digest")
    }

    /// A parameter's value, unquoted (escapes kept), by case-insensitive name.
    pub fn param(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.params.get(name)
    }
}

impl fmt::Debug for Challenge<'_> {
    /// Credentials never reach a log: `response` and `cnonce` are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", String::from_utf8_lossy(self.scheme))?;
        let mut list = f.debug_map();
        for (name, value) in self.params.iter() {
            let shown =
                if name.eq_ignore_ascii_case(b"response") || name.eq_ignore_ascii_case(b"cnonce") {
                    "<redacted>".into()
                } else {
                    String::from_utf8_lossy(value)
                };
            list.entry(&String::from_utf8_lossy(name), &shown);
        }
        list.finish()
    }
}

/// `auth-param *(COMMA auth-param)`, `auth-param = token EQUAL ( token / quoted-string )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthParams<'a> {
    raw: &'a [u8],
}

impl<'a> AuthParams<'a> {
    /// Iterates `(name, value)` pairs; values are unquoted, escapes (`\"`) kept as written.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        CommaList::new(self.raw).filter_map(|item| {
            let eq = memchr::memchr(b'=', item)?;
            Some((trim(&item[..eq]), unquote(trim(&item[eq + 1..]))))
        })
    }

    /// A parameter's value, by case-insensitive name.
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Was this parameter written as a quoted string? (RFC 7616 fixes which ones must be.)
    pub fn is_quoted(&self, name: &[u8]) -> Option<bool> {
        CommaList::new(self.raw).find_map(|item| {
            let eq = memchr::memchr(b'=', item)?;
            trim(&item[..eq])
                .eq_ignore_ascii_case(name)
                .then(|| trim(&item[eq + 1..]).first() == Some(&b'"'))
        })
    }

    fn validate(&self) -> Result<(), &'static str> {
        if self.raw.is_empty() {
            return Ok(()); // e.g. `Basic` with a token68 is not used in SIP; an empty list is fine
        }
        for item in CommaList::new(self.raw) {
            if item.is_empty() {
                continue; // RFC 7235 allows empty list elements
            }
            let eq = memchr::memchr(b'=', item).ok_or("auth parameter without '='")?;
            let name = trim(&item[..eq]);
            if name.is_empty() || !name.iter().all(|&c| is_token(c)) {
                return Err("auth parameter name is not a token");
            }
            let v = trim(&item[eq + 1..]);
            if v.first() == Some(&b'"') {
                if quoted_end(v) != Some(v.len()) {
                    return Err("bad quoted auth parameter value");
                }
            } else if v.is_empty() || !v.iter().all(|&c| is_token(c) || c == b'/' || c == b'=') {
                // token68-ish values (base64 with '/', '=') appear in the wild; accept them
                return Err("auth parameter value is neither a token nor a quoted string");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.host_raw, b"192.0.2.2");
        assert_eq!(v.branch(), Some(&b"390skdjuw"[..]));
        assert!(!v.has_rfc3261_branch());
        let v = Via::parse(b"SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bKas3-111;rport;received=[2001:db8::9:255]")
            .unwrap();
        assert_eq!(v.port, Some(5061));
        assert!(matches!(v.host, Host::V6(_)));
        assert_eq!(v.rport(), Some(None));
        assert!(matches!(v.received(), Some(Ok(Host::V6(_)))));
        let v = Via::parse(
            b"SIP/2.0/UDP 10.0.0.1:5060;rport=40000;received=192.0.2.1;ttl=16;maddr=239.1.1.1",
        )
        .unwrap();
        assert_eq!(v.rport(), Some(Some(40000)));
        assert_eq!(v.ttl(), Some(16));
        assert_eq!(v.maddr(), Some(&b"239.1.1.1"[..]));
    }

    #[test]
    fn via_errors() {
        for bad in [
            &b""[..],
            b"SIP/2.0 host",
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDP host:99999",
            b"SIP/2.0/UDP host;;",
            b"SIP/2.0/UDP [::1",
            b"SIP/2.0/UDP host junk",
        ] {
            assert!(Via::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            b"\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
            HeaderKind::From,
        )
        .unwrap();
        assert_eq!(n.display_unquoted(), Some(&br#"J Rosenberg \\\""#[..]));
        assert_eq!(n.uri, b"sip:jdrosen@example.com");
        assert_eq!(n.tag(), Some(&b"98asjd8"[..]));
        let n = NameAddr::parse(
            b"sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            HeaderKind::To,
        )
        .unwrap();
        assert!(!n.angle);
        assert_eq!(n.tag(), Some(&b"1918181833n"[..]));
        let n =
            NameAddr::parse(b"caller<sip:caller@example.com>;tag=323", HeaderKind::From).unwrap();
        assert_eq!(n.display, Some(&b"caller"[..]));
        assert!(NameAddr::parse(b"Bell, Alexander <sip:a@b>", HeaderKind::From).is_err());
        assert!(NameAddr::parse(b"\"Mr J. User <sip:j.user@example.com>", HeaderKind::To).is_err());
        let c = NameAddr::parse(b"<sip:a@b>;expires=3600;q=0.7", HeaderKind::Contact).unwrap();
        assert_eq!(c.expires(), Some(Ok(3600)));
        assert_eq!(c.q(), Some(Ok(700)));
        let c = NameAddr::parse(b"<sip:a@b>;q=1.5", HeaderKind::Contact).unwrap();
        assert!(matches!(c.q(), Some(Err(_))));
    }

    #[test]
    fn media_types() {
        let m = MediaType::parse(b"Application/SDP").unwrap();
        assert!(m.is_sdp());
        let m = MediaType::parse(b"multipart/mixed ; boundary=\"unique-boundary-1\"").unwrap();
        assert!(m.is(b"multipart", b"mixed"));
        assert_eq!(
            m.params.get_unquoted(b"boundary"),
            Some(Some(&b"unique-boundary-1"[..]))
        );
        assert!(MediaType::parse(b"application").is_err());
        assert!(MediaType::parse(b"application/sdp x").is_err());
    }

    #[test]
    fn cseq_parse() {
        assert_eq!(
            CSeq::parse(b"0009\r\n  INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: b"INVITE"
            }
        );
        assert!(CSeq::parse(b"36893488147419103232 INVITE").is_err());
        assert!(CSeq::parse(b"1INVITE").is_err());
        assert!(CSeq::parse(b"1 ").is_err());
    }

    #[test]
    fn challenges_any_order_quoted_or_not() {
        let c = Challenge::parse(
            b"Digest realm=\"sip.telnyx.com\", nonce=\"abc,def\", qop=\"auth,auth-int\", algorithm=MD5, opaque=\"x\", stale=FALSE",
            HeaderKind::WwwAuthenticate,
        )
        .unwrap();
        assert!(c.is_digest());
        assert_eq!(c.param(b"REALM"), Some(&b"sip.telnyx.com"[..]));
        assert_eq!(c.param(b"nonce"), Some(&b"abc,def"[..]));
        assert_eq!(c.param(b"qop"), Some(&b"auth,auth-int"[..]));
        assert_eq!(c.param(b"algorithm"), Some(&b"MD5"[..]));
        assert_eq!(c.params.is_quoted(b"algorithm"), Some(false));
        let all: Vec<_> = Challenge::parse_all(
            b"Digest realm=\"a\", nonce=\"1\", algorithm=SHA-256, Digest realm=\"a\", nonce=\"2\", algorithm=MD5",
            HeaderKind::ProxyAuthenticate,
        )
        .collect();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].as_ref().unwrap().param(b"algorithm"),
            Some(&b"SHA-256"[..])
        );
        assert_eq!(all[1].as_ref().unwrap().param(b"nonce"), Some(&b"2"[..]));
        let unknown = Challenge::parse(
            b"NoOneKnowsThisScheme opaque-data=here",
            HeaderKind::Authorization,
        )
        .unwrap();
        assert!(!unknown.is_digest());
        assert!(Challenge::parse(b"Digest realm=\"open", HeaderKind::WwwAuthenticate).is_err());
        let dbg = format!(
            "{:?}",
            Challenge::parse(
                b"Digest username=\"u\", response=\"deadbeef\"",
                HeaderKind::Authorization
            )
            .unwrap()
        );
        assert!(!dbg.contains("deadbeef"));
    }
}

//! SIP, SIPS and tel URIs, and every other absolute URI kept opaque.
//!
//! [`Uri::parse`] dispatches on the scheme, compared case-insensitively (RFC 3261 §19.1.4):
//! * `sip:` and `sips:` give a [`SipUri`] (RFC 3261 §19.1.1, grammar in §25.1, IPv6 references
//!   as RFC 5118 tests them);
//! * `tel:` gives a [`TelUri`] (RFC 3966 §3);
//! * any other scheme gives an [`AbsoluteUri`]: RFC 3986 §3 `scheme ":" rest`, with the rest kept
//!   opaque. RFC 3261 §19.1.1 lets a Request-URI or a To/From/Contact carry any `absoluteURI`, and
//!   RFC 4475 §3.3.2–3.3.4 require that the parser keeps it (the stack answers 416 above us).
//!
//! Everything is borrowed from the input and nothing is allocated. Components are slices as
//! written: `%HH` escapes are *not* decoded; [`unescape`] and [`eq_escaped`] decode them lazily.
//! The input must be the URI alone: angle brackets (RFC 4475 §3.1.2.7 `ltgtruri`) and any
//! whitespace (§3.1.2.8 `lwsruri`) are errors, as the header views strip them before calling here.
//!
//! The parser follows the RFC 3261 §25.1 grammar, with two deliberate liberties, both documented
//! where they apply: `#` is accepted in the user part ([`SipUri::user`]) and host names are checked
//! for their characters and labels but not for a leading letter in the top label ([`Host::Name`]).

use std::fmt;
use std::iter::FusedIterator;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::ParseError;
use crate::params::{Param, Params};
use crate::text::parse_u16;

// === byte classes (RFC 3261 §25.1, RFC 3986 §2) ===

/// Builds a byte class: RFC 3261 `unreserved` (`alphanum / mark`, where
/// `mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"`) when `unreserved` is set,
/// otherwise `alphanum` alone, plus the bytes of `extra`.
const fn byte_class(unreserved: bool, extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || (unreserved
                && matches!(
                    c,
                    b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
                ));
        i += 1;
    }
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
}

/// `user = 1*( unreserved / escaped / user-unreserved )`,
/// `user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"`, plus `#` (see [`SipUri::user`]).
const USER: [bool; 256] = byte_class(true, b"&=+$,;?/#");
/// `password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )`.
const PASSWORD: [bool; 256] = byte_class(true, b"&=+$,");
/// `paramchar = param-unreserved / unreserved / escaped`,
/// `param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"` (RFC 3261; RFC 3966 §3 is the same).
const PARAM: [bool; 256] = byte_class(true, b"[]/:&+$");
/// `hname` / `hvalue` bytes: `hnv-unreserved / unreserved / escaped`,
/// `hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"`.
const HEADER: [bool; 256] = byte_class(true, b"[]/?:+$");
/// RFC 3966 §3 `pname = 1*( alphanum / "-" )`.
const TEL_PNAME: [bool; 256] = byte_class(false, b"-");
/// RFC 3986 §2.2 `reserved` and §2.3 `unreserved` (every RFC 3261 `mark` is one or the other).
const URIC: [bool; 256] = byte_class(true, b":/?#[]@$&+,;=");

/// Why [`check_component`] refused a component.
enum Bad {
    /// A byte outside the class.
    Char,
    /// A `%` not followed by two hex digits (RFC 3261 §25.1 `escaped = "%" HEXDIG HEXDIG`).
    Escape,
}

/// Checks that `s` is made of `class` bytes and well-formed `%HH` escapes.
fn check_component(s: &[u8], class: &[bool; 256]) -> Result<(), Bad> {
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'%' {
            match tail {
                [h, l, after @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    rest = after;
                }
                _ => return Err(Bad::Escape),
            }
        } else if class[usize::from(c)] {
            rest = tail;
        } else {
            return Err(Bad::Char);
        }
    }
    Ok(())
}

/// [`check_component`] with the error messages of one component.
fn check(
    s: &[u8],
    class: &[bool; 256],
    bad_char: &'static str,
    bad_escape: &'static str,
) -> Result<(), ParseError> {
    check_component(s, class).map_err(|bad| match bad {
        Bad::Char => ParseError::Uri(bad_char),
        Bad::Escape => ParseError::Uri(bad_escape),
    })
}

/// Splits around the first `sep`: `(before, after)`, the separator dropped.
fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(sep, s)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Splits before the first `a` or `b`: `(before, rest-starting-at-the-delimiter)`.
fn split_before2(s: &[u8], a: u8, b: u8) -> (&[u8], &[u8]) {
    let i = memchr::memchr2(a, b, s).unwrap_or(s.len());
    s.split_at_checked(i).unwrap_or((s, &[]))
}

// === Uri ===

/// A URI as it appears in a Request-URI, To, From, Contact, Route or Record-Route, dispatched on
/// its scheme (RFC 3261 §19.1; §25.1 `Request-URI = SIP-URI / SIPS-URI / absoluteURI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    /// A `sip:` or `sips:` URI (RFC 3261 §19.1.1).
    Sip(SipUri<'a>),
    /// A `tel:` URI (RFC 3966 §3).
    Tel(TelUri<'a>),
    /// Any other scheme, kept opaque (RFC 3986 §3; RFC 4475 §3.3.2–3.3.4).
    Absolute(AbsoluteUri<'a>),
}

impl<'a> Uri<'a> {
    /// Parses a whole URI. The input must be the URI and nothing else: enclosing `<>`
    /// (RFC 4475 §3.1.2.7), whitespace or control bytes anywhere (§3.1.2.8) are errors.
    ///
    /// The scheme (RFC 3986 §3.1 `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`) is matched
    /// case-insensitively: `SIP:` is `sip:` (RFC 3261 §19.1.4).
    ///
    /// # Errors
    /// [`ParseError::Uri`] naming the first problem found: framing (`<>`, whitespace), scheme,
    /// then the components left to right (user, password, host, port, parameters, headers).
    pub fn parse(s: &'a [u8]) -> Result<Self, ParseError> {
        if s.first() == Some(&b'<') {
            return Err(ParseError::Uri("URI enclosed in '<>'"));
        }
        if s.iter().any(|&c| c <= b' ' || c == 0x7f) {
            return Err(ParseError::Uri("whitespace or control character in URI"));
        }
        let (scheme, rest) = split_once(s, b':').ok_or(ParseError::Uri("missing scheme"))?;
        if scheme.is_empty() {
            return Err(ParseError::Uri("missing scheme"));
        }
        if !is_scheme(scheme) {
            return Err(ParseError::Uri(
                "scheme is not ALPHA *( ALPHA / DIGIT / + / - / . )",
            ));
        }
        if scheme.eq_ignore_ascii_case(b"sip") {
            SipUri::parse_after_scheme(s, false, rest).map(Self::Sip)
        } else if scheme.eq_ignore_ascii_case(b"sips") {
            SipUri::parse_after_scheme(s, true, rest).map(Self::Sip)
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            TelUri::parse_after_scheme(s, rest).map(Self::Tel)
        } else {
            AbsoluteUri::parse_after_scheme(s, scheme, rest).map(Self::Absolute)
        }
    }

    /// The raw input, exactly as passed to [`parse`](Self::parse).
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Self::Sip(u) => u.raw,
            Self::Tel(u) => u.raw,
            Self::Absolute(u) => u.raw,
        }
    }

    /// The SIP or SIPS URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Self::Sip(u) => Some(u),
            _ => None,
        }
    }
}

/// RFC 3986 §3.1 `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &[u8]) -> bool {
    match s.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphabetic()
                && rest
                    .iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

// === SipUri ===

/// A SIP or SIPS URI (RFC 3261 §19.1.1):
/// `sip:user:password@host:port;uri-parameters?headers`.
///
/// Every component borrows the input as written; escapes are not decoded. `Debug` leaves out the
/// password and the raw bytes that contain it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// The whole URI as passed to [`Uri::parse`].
    pub raw: &'a [u8],
    /// `sips:` (RFC 3261 §19.1.2: TLS on every hop) rather than `sip:`.
    pub secure: bool,
    /// The user part as written, escapes not decoded. It may contain `;`, `?` and `/`
    /// (`user-unreserved`, RFC 3261 §25.1): the RFC 4475 §3.1.1.9 URI
    /// `sip:user;par=u%40example.net@example.com` has the user `user;par=u%40example.net` and no
    /// URI parameters.
    ///
    /// The userinfo is everything before the first `@`, wherever that `@` is: no other component
    /// may hold an unescaped `@` (§25.1), so the first one is the only possible split, even when
    /// the user holds `?` and `;` (RFC 4475 §3.1.1.2 `intmeth`).
    ///
    /// `#` is accepted although §25.1 wants it escaped: PBXs and carriers send prefixes such as
    /// `sip:91919#12127773456@…`, the telephone-subscriber form that §19.1.1 allows in the user
    /// part has `#` as a digit (RFC 3966 §3 `phonedigit-hex`), and refusing would fail real calls.
    pub user: Option<&'a [u8]>,
    /// The password after the first `:` of the userinfo (may be empty), escapes not decoded.
    /// RFC 3261 §19.1.1 says not to use it; it is parsed so that it can be compared and dropped.
    pub password: Option<&'a [u8]>,
    /// The host, typed.
    pub host: Host<'a>,
    /// The host as written, with the brackets of an IPv6 reference.
    pub host_raw: &'a [u8],
    /// The port, if written (RFC 3261 §19.1.2 gives the default by transport; none is filled in).
    pub port: Option<u16>,
    /// The `uri-parameters`: the raw slice from the first `;` after the hostport up to `?` or the
    /// end, empty if there are none.
    pub params: Params<'a>,
    /// The `headers` after `?`, without the `?`, escapes not decoded.
    pub headers: Option<&'a [u8]>,
}

impl<'a> SipUri<'a> {
    /// Parses what follows `sip:` or `sips:`.
    fn parse_after_scheme(raw: &'a [u8], secure: bool, rest: &'a [u8]) -> Result<Self, ParseError> {
        let (user, password, after) = match split_once(rest, b'@') {
            Some((userinfo, after)) => {
                let (user, password) = match split_once(userinfo, b':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(ParseError::Uri("empty user part"));
                }
                check(
                    user,
                    &USER,
                    "invalid character in user part",
                    "invalid %-escape in user part",
                )?;
                if let Some(password) = password {
                    check(
                        password,
                        &PASSWORD,
                        "invalid character in password",
                        "invalid %-escape in password",
                    )?;
                }
                (Some(user), password, after)
            }
            None => (None, None, rest),
        };
        let (host_port, tail) = split_before2(after, b';', b'?');
        let (host, host_raw, port) = split_host_port(host_port)?;
        let (params, headers) = match split_once(tail, b'?') {
            Some((params, headers)) => (params, Some(headers)),
            None => (tail, None),
        };
        check_params(params, &PARAM, true)?;
        if let Some(headers) = headers {
            check_headers(headers)?;
        }
        Ok(Self {
            raw,
            secure,
            user,
            password,
            host,
            host_raw,
            port,
            params: Params::new(params),
            headers,
        })
    }

    /// The `transport` parameter value (RFC 3261 §19.1.1), as written.
    ///
    /// Parameter names are matched case-insensitively and after `%HH` decoding, as RFC 3261
    /// §19.1.4 compares them; values are returned as written.
    pub fn transport(&self) -> Option<&'a [u8]> {
        find_param(self.params, b"transport").and_then(|p| p.value)
    }

    /// The `user` parameter value (RFC 3261 §19.1.1: `phone`, `ip` or other), as written.
    pub fn user_param(&self) -> Option<&'a [u8]> {
        find_param(self.params, b"user").and_then(|p| p.value)
    }

    /// The `maddr` parameter value (RFC 3261 §19.1.1), as written.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        find_param(self.params, b"maddr").and_then(|p| p.value)
    }

    /// Is the `lr` parameter present (loose routing, RFC 3261 §16.12, §19.1.1)?
    pub fn has_lr(&self) -> bool {
        find_param(self.params, b"lr").is_some()
    }

    /// URI equality by RFC 3261 §19.1.4:
    /// * `sip:` never equals `sips:`;
    /// * user and password compare case-sensitively after `%HH` decoding, and a URI with a
    ///   userinfo never equals one without;
    /// * hosts compare case-insensitively (addresses by value); a name never equals an address;
    /// * the port must be absent from both or present and equal in both (5060 ≠ no port);
    /// * `user`, `ttl`, `method`, `maddr` and `transport` must match if either URI has them;
    ///   other parameters are compared only when both URIs have them. Names compare
    ///   case-insensitively after decoding; values too, except `method` (methods are
    ///   case-sensitive, §7.1);
    /// * headers must be present in both or in neither, and match as unordered lists (the
    ///   §19.1.4 example with `subject` and `priority` swapped is equal): names case-insensitive,
    ///   values byte-equal after decoding. This simplifies §19.1.4, which compares each value by
    ///   the rules of its header field (§20); e.g. `?Route=%3Csip:a%3E` and `?Route=%3CSIP:a%3E`
    ///   differ here.
    ///
    /// To bound the work on hostile input, a URI with more than 64 parameters or 64 headers
    /// never matches anything, itself included.
    #[must_use]
    pub fn matches(&self, other: &SipUri<'_>) -> bool {
        self.secure == other.secure
            && opt_eq(self.user, other.user, eq_escaped)
            && opt_eq(self.password, other.password, eq_escaped)
            && host_eq(&self.host, &other.host)
            && self.port == other.port
            && params_match(self.params, other.params)
            && opt_eq(self.headers, other.headers, headers_match)
    }
}

impl fmt::Debug for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipUri")
            .field("secure", &self.secure)
            .field("user", &self.user.map(Ascii))
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("params", &self.params)
            .field("headers", &self.headers.map(Ascii))
            .finish_non_exhaustive()
    }
}

/// Formats bytes as an escaped ASCII string, without allocating.
struct Ascii<'a>(&'a [u8]);

impl fmt::Debug for Ascii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// The most parameters or headers [`SipUri::matches`] compares (its loops are quadratic).
const MAX_COMPARED: usize = 64;

/// Parameters that must be in both URIs if they are in either (RFC 3261 §19.1.4).
const MUST_MATCH_PARAMS: [&[u8]; 5] = [b"user", b"ttl", b"method", b"maddr", b"transport"];

/// Both absent, or both present and equal under `eq`.
fn opt_eq<T: Copy>(a: Option<T>, b: Option<T>, eq: impl Fn(T, T) -> bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => eq(a, b),
        _ => false,
    }
}

/// Host equality for RFC 3261 §19.1.4: names case-insensitively, addresses by value.
fn host_eq(a: &Host<'_>, b: &Host<'_>) -> bool {
    match (a, b) {
        (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
        (Host::V4(a), Host::V4(b)) => a == b,
        (Host::V6(a), Host::V6(b)) => a == b,
        _ => false,
    }
}

/// Does the raw (possibly escaped) parameter name `raw` equal `name`, ignoring ASCII case?
fn name_eq(raw: &[u8], name: &[u8]) -> bool {
    if raw.contains(&b'%') {
        eq_escaped_ignore_case(raw, name)
    } else {
        raw.eq_ignore_ascii_case(name)
    }
}

/// The first parameter named `name` (case-insensitive, escapes decoded).
fn find_param<'p>(params: Params<'p>, name: &[u8]) -> Option<Param<'p>> {
    params.iter().find(|p| name_eq(p.name, name))
}

/// The uri-parameter rules of RFC 3261 §19.1.4 (see [`SipUri::matches`]).
fn params_match(a: Params<'_>, b: Params<'_>) -> bool {
    if a.iter().nth(MAX_COMPARED).is_some() || b.iter().nth(MAX_COMPARED).is_some() {
        return false;
    }
    one_way_params_match(a, b) && one_way_params_match(b, a)
}

/// Every parameter of `a` that `b` also has matches it, and `b` lacks none of the
/// [`MUST_MATCH_PARAMS`] that `a` has. A repeated name is compared occurrence by occurrence (the
/// k-th `;x=` of `a` with the k-th of `b`), which keeps the relation reflexive (found by the
/// `parse_uri` fuzz target: `sip:e;r=m;r` did not match itself).
fn one_way_params_match(a: Params<'_>, b: Params<'_>) -> bool {
    a.iter().enumerate().all(|(i, p)| {
        let same_name = |q: &Param<'_>| eq_escaped_ignore_case(p.name, q.name);
        let occurrence = a.iter().take(i).filter(same_name).count();
        match b.iter().filter(same_name).nth(occurrence) {
            Some(q) => {
                let method = name_eq(p.name, b"method");
                opt_eq(p.value, q.value, |x, y| {
                    if method {
                        eq_escaped(x, y)
                    } else {
                        eq_escaped_ignore_case(x, y)
                    }
                })
            }
            None => !MUST_MATCH_PARAMS.iter().any(|name| name_eq(p.name, name)),
        }
    })
}

/// Iterates `hname=hvalue` pairs of a `headers` component.
fn header_items(h: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    h.split(|&c| c == b'&')
        .map(|item| split_once(item, b'=').unwrap_or((item, &[])))
}

/// Headers as unordered lists (multisets): names case-insensitive, values byte-equal, both
/// after `%HH` decoding.
fn headers_match(a: &[u8], b: &[u8]) -> bool {
    let (na, nb) = (header_items(a).count(), header_items(b).count());
    if na != nb || na > MAX_COMPARED {
        return false;
    }
    let same = |(n1, v1): (&[u8], &[u8]), (n2, v2): (&[u8], &[u8])| {
        eq_escaped_ignore_case(n1, n2) && eq_escaped(v1, v2)
    };
    // Equal lengths, and each item of `a` as frequent in `b` as in `a`: equal multisets.
    header_items(a).all(|h| {
        header_items(a).filter(|&x| same(h, x)).count()
            == header_items(b).filter(|&x| same(h, x)).count()
    })
}

/// Checks a raw `*( ";" param )` list: structure by [`Params::validate`], bytes by `name_class`
/// for names (with `%HH` escapes if `escapes` is set) and [`PARAM`] for values.
fn check_params(raw: &[u8], name_class: &[bool; 256], escapes: bool) -> Result<(), ParseError> {
    if raw.is_empty() {
        return Ok(());
    }
    // A first pass over the bytes, so that Params::validate never sees a quote (no URI has one).
    if raw
        .iter()
        .any(|&c| !(PARAM[usize::from(c)] || matches!(c, b'%' | b';' | b'=')))
    {
        return Err(ParseError::Uri("invalid character in URI parameter"));
    }
    let params = Params::new(raw);
    params.validate(|_| true).map_err(ParseError::Uri)?;
    for p in params {
        if !escapes && p.name.contains(&b'%') {
            return Err(ParseError::Uri("invalid character in URI parameter name"));
        }
        check(
            p.name,
            name_class,
            "invalid character in URI parameter name",
            "invalid %-escape in URI parameter",
        )?;
        if let Some(v) = p.value {
            check(
                v,
                &PARAM,
                "invalid character in URI parameter value",
                "invalid %-escape in URI parameter",
            )?;
        }
    }
    Ok(())
}

/// Checks `headers = header *( "&" header )`, `header = hname "=" hvalue` (RFC 3261 §25.1):
/// `hname` non-empty, `hvalue` possibly empty.
fn check_headers(h: &[u8]) -> Result<(), ParseError> {
    if h.is_empty() {
        return Err(ParseError::Uri("empty header list after '?'"));
    }
    for item in h.split(|&c| c == b'&') {
        let (name, value) =
            split_once(item, b'=').ok_or(ParseError::Uri("URI header without '='"))?;
        if name.is_empty() {
            return Err(ParseError::Uri("empty URI header name"));
        }
        for part in [name, value] {
            check(
                part,
                &HEADER,
                "invalid character in URI header",
                "invalid %-escape in URI header",
            )?;
        }
    }
    Ok(())
}

// === TelUri ===

/// A `tel:` URI (RFC 3966 §3): `tel:+1-201-555-0123;phone-context=example.com`.
///
/// The number is checked against `global-number-digits` (`"+" *phonedigit DIGIT *phonedigit`)
/// or `local-number-digits` (`*phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex`). RFC 3966
/// §5.1.5 requires `phone-context` on a local number; that is not enforced here, because carriers
/// send `tel:` local numbers without it and the policy belongs above the codec.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    /// The whole URI as passed to [`Uri::parse`].
    pub raw: &'a [u8],
    /// The number, visual separators (`-`, `.`, `(`, `)`) included.
    pub number: &'a [u8],
    /// The parameters (`;phone-context=…`, `;ext=…`, `;isub=…`), from the first `;`, or empty.
    /// Names are `1*( alphanum / "-" )`; values are `paramchar`s (RFC 3966 §3).
    pub params: Params<'a>,
}

impl<'a> TelUri<'a> {
    /// Parses what follows `tel:`.
    fn parse_after_scheme(raw: &'a [u8], rest: &'a [u8]) -> Result<Self, ParseError> {
        let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
        let (number, params) = rest.split_at_checked(end).unwrap_or((rest, &[]));
        check_tel_number(number)?;
        check_params(params, &TEL_PNAME, false)?;
        Ok(Self {
            raw,
            number,
            params: Params::new(params),
        })
    }
}

impl fmt::Debug for TelUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelUri")
            .field("number", &Ascii(self.number))
            .field("params", &self.params)
            .finish()
    }
}

/// RFC 3966 §3 `global-number-digits` or `local-number-digits`.
fn check_tel_number(n: &[u8]) -> Result<(), ParseError> {
    let visual = |c: u8| matches!(c, b'-' | b'.' | b'(' | b')');
    match n.split_first() {
        None => Err(ParseError::Uri("empty telephone number")),
        Some((b'+', digits)) => {
            if digits.iter().all(|&c| c.is_ascii_digit() || visual(c))
                && digits.iter().any(u8::is_ascii_digit)
            {
                Ok(())
            } else {
                Err(ParseError::Uri("invalid global telephone number"))
            }
        }
        Some(_) => {
            let digit = |c: u8| c.is_ascii_hexdigit() || matches!(c, b'*' | b'#');
            if n.iter().all(|&c| digit(c) || visual(c)) && n.iter().any(|&c| digit(c)) {
                Ok(())
            } else {
                Err(ParseError::Uri("invalid local telephone number"))
            }
        }
    }
}

// === AbsoluteUri ===

/// Any URI whose scheme is not `sip`, `sips` or `tel`: RFC 3986 §3 `scheme ":" rest`, the rest
/// kept opaque (RFC 3261 §19.1.1 `absoluteURI`). RFC 4475 §3.3.2–3.3.4 send
/// `nobodyKnowsThisScheme:totallyopaquecontent`, `soap.beep://192.0.2.103:3002`,
/// `isbn:2983792873`, `http://www.example.com` and `name:John_Smith`.
///
/// The rest must be non-empty (RFC 3261 `hier-part` / `opaque-part`) and made of RFC 3986
/// `reserved` / `unreserved` bytes and well-formed `%HH` escapes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AbsoluteUri<'a> {
    /// The whole URI as passed to [`Uri::parse`].
    pub raw: &'a [u8],
    /// The scheme as written (compare it case-insensitively).
    pub scheme: &'a [u8],
    /// Everything after the first `:`.
    pub rest: &'a [u8],
}

impl<'a> AbsoluteUri<'a> {
    /// Checks what follows `scheme:`.
    fn parse_after_scheme(
        raw: &'a [u8],
        scheme: &'a [u8],
        rest: &'a [u8],
    ) -> Result<Self, ParseError> {
        if rest.is_empty() {
            return Err(ParseError::Uri("nothing after the scheme"));
        }
        check(
            rest,
            &URIC,
            "invalid character in URI",
            "invalid %-escape in URI",
        )?;
        Ok(Self { raw, scheme, rest })
    }
}

impl fmt::Debug for AbsoluteUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbsoluteUri")
            .field("scheme", &Ascii(self.scheme))
            .field("rest", &Ascii(self.rest))
            .finish()
    }
}

// === Host ===

/// A host (RFC 3261 §25.1 `host = hostname / IPv4address / IPv6reference`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A host name as written (compare it case-insensitively), a trailing `.` kept.
    ///
    /// Labels are non-empty, made of letters, digits and `-`, and neither start nor end with
    /// `-`. The §25.1 rule that the top label starts with a letter is not enforced, except that
    /// a name of only digits and dots must be a valid IPv4 address.
    Name(&'a str),
    /// An IPv4 address (`1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, each at most 255).
    V4(Ipv4Addr),
    /// An IPv6 address, from an IPv6 reference `[…]` (RFC 3261 §25.1, RFC 5118), or written
    /// bare where [`parse_host`] allows it.
    V6(Ipv6Addr),
}

impl fmt::Display for Host<'_> {
    /// Writes the host as it goes into a URI or a Via: IPv6 in brackets (RFC 3261 §25.1
    /// `IPv6reference`), in its RFC 5952 text form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::V4(addr) => fmt::Display::fmt(addr, f),
            Self::V6(addr) => write!(f, "[{addr}]"),
        }
    }
}

/// Parses `hostport = host [ ":" port ]` (RFC 3261 §25.1), as in a SIP URI or a Via sent-by:
/// `example.com`, `10.0.0.1:5060`, `[2001:db8::1]:5070`.
///
/// An IPv6 address must be bracketed: `2001:db8::10` is an error ("unbracketed IPv6 address",
/// RFC 5118 §4.2), and `[2001:db8::10:5070]` is an address without a port (RFC 5118 §4.3).
/// The port is 1 to 5 digits, at most 65535; an empty port after `:` is an error.
///
/// # Errors
/// [`ParseError::Uri`]: missing or malformed host, malformed port, unbracketed IPv6.
pub fn parse_host_port(s: &[u8]) -> Result<(Host<'_>, Option<u16>), ParseError> {
    split_host_port(s).map(|(host, _, port)| (host, port))
}

/// [`parse_host_port`], also returning the host as written.
fn split_host_port(s: &[u8]) -> Result<(Host<'_>, &[u8], Option<u16>), ParseError> {
    if let Some(inner) = s.strip_prefix(b"[") {
        let (addr, after) =
            split_once(inner, b']').ok_or(ParseError::Uri("unterminated IPv6 reference"))?;
        let host = Host::V6(parse_ipv6(addr)?);
        let host_raw = s.get(..addr.len() + 2).unwrap_or(s);
        let port = match after {
            [] => None,
            [b':', port @ ..] => Some(parse_port(port)?),
            _ => return Err(ParseError::Uri("unexpected character after IPv6 reference")),
        };
        return Ok((host, host_raw, port));
    }
    match split_once(s, b':') {
        None => Ok((parse_name_or_v4(s)?, s, None)),
        Some((host, port)) => {
            if port.contains(&b':') {
                return Err(if parse_ipv6(s).is_ok() {
                    ParseError::Uri("unbracketed IPv6 address")
                } else {
                    ParseError::Uri("port is not a number 0-65535")
                });
            }
            Ok((parse_name_or_v4(host)?, host, Some(parse_port(port)?)))
        }
    }
}

/// Parses a host alone: a name, an IPv4 address, a bracketed IPv6 reference, or an
/// *unbracketed* IPv6 address. The last is the Via `received` form: RFC 3261 §18.2.1 /
/// §25.1 define `received = IPv4address / IPv6address`, and RFC 5118 §4.5 says to accept it
/// with or without brackets.
///
/// # Errors
/// [`ParseError::Uri`]: empty or malformed host, or anything after it (a port is an error here).
pub fn parse_host(s: &[u8]) -> Result<Host<'_>, ParseError> {
    if let Some(inner) = s.strip_prefix(b"[") {
        let (addr, after) =
            split_once(inner, b']').ok_or(ParseError::Uri("unterminated IPv6 reference"))?;
        if !after.is_empty() {
            return Err(ParseError::Uri("unexpected character after IPv6 reference"));
        }
        return parse_ipv6(addr).map(Host::V6);
    }
    if s.contains(&b':') {
        return parse_ipv6(s).map(Host::V6);
    }
    parse_name_or_v4(s)
}

/// A host name or an IPv4 address (see [`Host::Name`] for the name rules).
fn parse_name_or_v4(s: &[u8]) -> Result<Host<'_>, ParseError> {
    if s.is_empty() {
        return Err(ParseError::Uri("missing host"));
    }
    if s.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
        return parse_ipv4(s)
            .map(Host::V4)
            .ok_or(ParseError::Uri("invalid IPv4 address"));
    }
    // RFC 3261 §25.1: `hostname = *( domainlabel "." ) toplabel [ "." ]`.
    let name = s.strip_suffix(b".").unwrap_or(s);
    for label in name.split(|&c| c == b'.') {
        if label.is_empty() {
            return Err(ParseError::Uri("empty label in host name"));
        }
        if !label
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        {
            return Err(ParseError::Uri("invalid character in host"));
        }
        if label.first() == Some(&b'-') || label.last() == Some(&b'-') {
            return Err(ParseError::Uri("host name label starts or ends with '-'"));
        }
    }
    std::str::from_utf8(s)
        .map(Host::Name)
        .map_err(|_| ParseError::Uri("invalid character in host"))
}

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, each at most 255 (leading
/// zeros are decimal, as the grammar allows).
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|&c| c == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 {
            return None;
        }
        let value = part.iter().try_fold(0u16, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
        })?;
        *octet = u8::try_from(value).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// The longest IPv6 text [`parse_ipv6`] rewrites on the stack (the longest address is 45 bytes).
const IPV6_BUF: usize = 64;

/// Parses an IPv6 address (without brackets).
///
/// RFC 3261's `IPv6reference` ABNF (`hexpart [ ":" IPv4address ]` with `hexpart` ending in
/// `::`) wrongly admits three colons before an embedded IPv4 address, and RFC 5118 §4.10 says an
/// implementation must accept `[2001:db8:::192.0.2.1]` as well as `[2001:db8::192.0.2.1]`. When
/// the standard parser refuses the text, one `:::` followed by a dotted IPv4 tail is collapsed to
/// `::` in a stack buffer and parsed again.
fn parse_ipv6(s: &[u8]) -> Result<Ipv6Addr, ParseError> {
    const BAD: ParseError = ParseError::Uri("invalid IPv6 address");
    let text = std::str::from_utf8(s).map_err(|_| BAD)?;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let i = s.windows(3).position(|w| w == b":::").ok_or(BAD)?;
    let (head, tail) = (s.get(..i).ok_or(BAD)?, s.get(i + 1..).ok_or(BAD)?);
    let v4 = tail.get(2..).ok_or(BAD)?;
    if v4.contains(&b':') || !v4.contains(&b'.') {
        return Err(BAD);
    }
    let mut buf = [0u8; IPV6_BUF];
    let n = head.len() + tail.len();
    buf.get_mut(..head.len()).ok_or(BAD)?.copy_from_slice(head);
    buf.get_mut(head.len()..n).ok_or(BAD)?.copy_from_slice(tail);
    let collapsed = std::str::from_utf8(buf.get(..n).ok_or(BAD)?).map_err(|_| BAD)?;
    collapsed.parse().map_err(|_| BAD)
}

/// `port = 1*DIGIT`, limited to 5 digits and 65535.
fn parse_port(s: &[u8]) -> Result<u16, ParseError> {
    const BAD: ParseError = ParseError::Uri("port is not a number 0-65535");
    if s.is_empty() {
        return Err(ParseError::Uri("empty port after ':'"));
    }
    parse_u16(s).ok_or(BAD)
}

// === escapes ===

/// Decodes `%HH` escapes (RFC 3261 §25.1 `escaped`, RFC 3986 §2.1) lazily, byte by byte,
/// without allocating. A `%` not followed by two hex digits is yielded as is.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub fn unescape(s: &[u8]) -> Unescape<'_> {
    Unescape { rest: s }
}

/// The iterator returned by [`unescape`].
#[must_use = "iterators are lazy and do nothing unless consumed"]
#[derive(Debug, Clone)]
pub struct Unescape<'a> {
    rest: &'a [u8],
}

impl Iterator for Unescape<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&c, tail) = self.rest.split_first()?;
        if c == b'%' {
            if let [h, l, after @ ..] = tail {
                if let (Some(h), Some(l)) = (hex_value(*h), hex_value(*l)) {
                    self.rest = after;
                    return Some(h << 4 | l);
                }
            }
        }
        self.rest = tail;
        Some(c)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.rest.len().div_ceil(3), Some(self.rest.len()))
    }
}

impl FusedIterator for Unescape<'_> {}

/// The value of one hex digit.
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Compares two URI components after `%HH` decoding, byte for byte (case-sensitive), as RFC 3261
/// §19.1.4 compares user parts: `%61lice` equals `alice`. Allocates nothing.
#[must_use]
pub fn eq_escaped(a: &[u8], b: &[u8]) -> bool {
    if !a.contains(&b'%') && !b.contains(&b'%') {
        return a == b;
    }
    unescape(a).eq(unescape(b))
}

/// [`eq_escaped`], ignoring ASCII case (parameter and header names, most parameter values).
fn eq_escaped_ignore_case(a: &[u8], b: &[u8]) -> bool {
    if !a.contains(&b'%') && !b.contains(&b'%') {
        return a.eq_ignore_ascii_case(b);
    }
    unescape(a)
        .map(|c| c.to_ascii_lowercase())
        .eq(unescape(b).map(|c| c.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a SIP URI case must parse to. `host` is the host as written; its typed form is
    /// derived by [`typed_host`].
    #[derive(Clone, Copy)]
    struct Sip {
        secure: bool,
        user: Option<&'static str>,
        password: Option<&'static str>,
        host: &'static str,
        port: Option<u16>,
        params: &'static str,
        headers: Option<&'static str>,
    }

    const S: Sip = Sip {
        secure: false,
        user: None,
        password: None,
        host: "",
        port: None,
        params: "",
        headers: None,
    };

    enum Want {
        Sip(Sip),
        Tel(&'static str, &'static str),
        Abs(&'static str, &'static str),
        Err(&'static str),
    }

    fn typed_host(raw: &str) -> Host<'_> {
        if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            // The test table writes RFC 5118's three-colon form; std wants two.
            Host::V6(inner.replace(":::", "::").parse().unwrap())
        } else if raw.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            // u8::from_str takes "010" as 10, as RFC 3261 §25.1 does; Ipv4Addr::from_str does not.
            let o: Vec<u8> = raw.split('.').map(|o| o.parse().unwrap()).collect();
            Host::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
        } else {
            Host::Name(raw)
        }
    }

    #[rustfmt::skip]
    fn cases() -> Vec<(&'static str, Want)> {
        use Want::{Abs, Err, Tel};
        let sip = Want::Sip;
        vec![
            // --- SIP, plain and carrier-style ---
            ("sip:alice@example.com", sip(Sip { user: Some("alice"), host: "example.com", ..S })),
            ("SIP:ALICE@AtLanTa.CoM;Transport=udp", sip(Sip { user: Some("ALICE"), host: "AtLanTa.CoM", params: ";Transport=udp", ..S })),
            ("sips:alice@[2001:db8::1]:5061;transport=tls", sip(Sip { secure: true, user: Some("alice"), host: "[2001:db8::1]", port: Some(5061), params: ";transport=tls", ..S })),
            ("sip:+12127773456@carrier.test;user=phone", sip(Sip { user: Some("+12127773456"), host: "carrier.test", params: ";user=phone", ..S })),
            ("sip:91919#12127773456@10.0.0.1:5060;transport=udp", sip(Sip { user: Some("91919#12127773456"), host: "10.0.0.1", port: Some(5060), params: ";transport=udp", ..S })),
            ("sip:127.0.0.1:5090;transport=udp", sip(Sip { host: "127.0.0.1", port: Some(5090), params: ";transport=udp", ..S })),
            ("sip:alice@example.com?subject=project%20x&priority=urgent", sip(Sip { user: Some("alice"), host: "example.com", headers: Some("subject=project%20x&priority=urgent"), ..S })),
            ("sip:alice:secret@example.com", sip(Sip { user: Some("alice"), password: Some("secret"), host: "example.com", ..S })),
            ("sip:alice:@example.com", sip(Sip { user: Some("alice"), password: Some(""), host: "example.com", ..S })),
            ("sip:example.com.", sip(Sip { host: "example.com.", ..S })),
            ("sip:a-b.c-d.example:0", sip(Sip { host: "a-b.c-d.example", port: Some(0), ..S })),
            ("sip:alice@192.0.2.4:65535", sip(Sip { user: Some("alice"), host: "192.0.2.4", port: Some(65535), ..S })),
            ("sip:alice@192.0.2.4:05060", sip(Sip { user: Some("alice"), host: "192.0.2.4", port: Some(5060), ..S })),
            ("sip:alice@010.000.002.004", sip(Sip { user: Some("alice"), host: "010.000.002.004", ..S })),
            ("sip:alice@example.com;maddr=[2001:db8::1];ttl=1", sip(Sip { user: Some("alice"), host: "example.com", params: ";maddr=[2001:db8::1];ttl=1", ..S })),
            ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com", sip(Sip { host: "biloxi.com", params: ";transport=tcp;method=REGISTER", headers: Some("to=sip:bob%40biloxi.com"), ..S })),
            ("sip:gw.example.net;lr?Replaces=abc%40h%3Bto-tag%3D1&x=", sip(Sip { host: "gw.example.net", params: ";lr", headers: Some("Replaces=abc%40h%3Bto-tag%3D1&x="), ..S })),
            // --- RFC 4475 ---
            ("sip:user;par=u%40example.net@example.com", sip(Sip { user: Some("user;par=u%40example.net"), host: "example.com", ..S })),
            ("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
                sip(Sip { user: Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"), password: Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"), host: "example.com", ..S })),
            ("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com", sip(Sip { user: Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"), host: "example.com", ..S })),
            ("sip:sips%3Auser%40example.com@example.net", sip(Sip { user: Some("sips%3Auser%40example.com"), host: "example.net", ..S })),
            ("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31", sip(Sip { user: Some("cal%6Cer"), host: "host5.example.net", params: ";%6C%72;n%61me=v%61lue%25%34%31", ..S })),
            ("sip:null-%00-null@example.com", sip(Sip { user: Some("null-%00-null"), host: "example.com", ..S })),
            ("sip:services.example.com;lr;unknownwith=value;unknown-no-value", sip(Sip { host: "services.example.com", params: ";lr;unknownwith=value;unknown-no-value", ..S })),
            ("sip:user@example.com?Route=%3Csip:sip.example.com%3E", sip(Sip { user: Some("user"), host: "example.com", headers: Some("Route=%3Csip:sip.example.com%3E"), ..S })),
            ("sip:+19725552222@gw1.example.net;unknownparam", sip(Sip { user: Some("+19725552222"), host: "gw1.example.net", params: ";unknownparam", ..S })),
            // --- RFC 5118 ---
            ("sip:[2001:db8::10]", sip(Sip { host: "[2001:db8::10]", ..S })),
            ("sip:[2001:db8::10:5070]", sip(Sip { host: "[2001:db8::10:5070]", ..S })),
            ("sip:[2001:db8::10]:5070", sip(Sip { host: "[2001:db8::10]", port: Some(5070), ..S })),
            ("sip:user@[2001:db8:::192.0.2.1]", sip(Sip { user: Some("user"), host: "[2001:db8:::192.0.2.1]", ..S })),
            ("sip:user@[2001:db8::192.0.2.1]", sip(Sip { user: Some("user"), host: "[2001:db8::192.0.2.1]", ..S })),
            ("sip:ted@[::ffff:192.0.2.2]", sip(Sip { user: Some("ted"), host: "[::ffff:192.0.2.2]", ..S })),
            ("sip:[:::192.0.2.1]", sip(Sip { host: "[:::192.0.2.1]", ..S })),
            // --- tel (RFC 3966) ---
            ("tel:+1-201-555-0123", Tel("+1-201-555-0123", "")),
            ("TEL:+1(201)555.0123;ext=42", Tel("+1(201)555.0123", ";ext=42")),
            ("tel:7042;phone-context=example.com", Tel("7042", ";phone-context=example.com")),
            ("tel:*69#;phone-context=+1-201", Tel("*69#", ";phone-context=+1-201")),
            // --- other schemes, opaque ---
            ("nobodyKnowsThisScheme:totallyopaquecontent", Abs("nobodyKnowsThisScheme", "totallyopaquecontent")),
            ("soap.beep://192.0.2.103:3002", Abs("soap.beep", "//192.0.2.103:3002")),
            ("isbn:2983792873", Abs("isbn", "2983792873")),
            ("http://www.example.com", Abs("http", "//www.example.com")),
            ("name:John_Smith", Abs("name", "John_Smith")),
            ("urn:service:sos", Abs("urn", "service:sos")),
            ("mailto:alice@example.com?subject=hi%20there", Abs("mailto", "alice@example.com?subject=hi%20there")),
            // --- invalid: framing, whitespace, scheme ---
            ("<sip:user@example.com>", Err("URI enclosed in '<>'")),
            ("sip:user@example.com; lr", Err("whitespace or control character in URI")),
            (" sip:alice@example.com", Err("whitespace or control character in URI")),
            ("sip:alice@example.com\r\n", Err("whitespace or control character in URI")),
            ("sip:al\tice@example.com", Err("whitespace or control character in URI")),
            ("sip:alice@example.com\0", Err("whitespace or control character in URI")),
            ("", Err("missing scheme")),
            ("alice", Err("missing scheme")),
            (":alice@example.com", Err("missing scheme")),
            ("1sip:alice@example.com", Err("scheme is not ALPHA *( ALPHA / DIGIT / + / - / . )")),
            ("si_p:alice@example.com", Err("scheme is not ALPHA *( ALPHA / DIGIT / + / - / . )")),
            // --- invalid: userinfo ---
            ("sip:@example.com", Err("empty user part")),
            ("sip::pw@example.com", Err("empty user part")),
            ("sip:ali<ce@example.com", Err("invalid character in user part")),
            ("sip:al\"ice@example.com", Err("invalid character in user part")),
            ("sip:al%4ice@example.com", Err("invalid %-escape in user part")),
            ("sip:alice%@example.com", Err("invalid %-escape in user part")),
            ("sip:alice:pa;ss@example.com", Err("invalid character in password")),
            ("sip:alice:p%zz@example.com", Err("invalid %-escape in password")),
            ("sip:j\u{f6}rg@example.com", Err("invalid character in user part")),
            // --- invalid: host and port ---
            ("sip:2001:db8::10", Err("unbracketed IPv6 address")),
            ("sip:alice@::1", Err("unbracketed IPv6 address")),
            ("sip:", Err("missing host")),
            ("sip:alice@", Err("missing host")),
            ("sip:alice@;transport=tcp", Err("missing host")),
            ("sip:alice@:5060", Err("missing host")),
            ("sip:alice@example.com:", Err("empty port after ':'")),
            ("sip:alice@example.com:65536", Err("port is not a number 0-65535")),
            ("sip:alice@example.com:123456", Err("port is not a number 0-65535")),
            ("sip:alice@example.com:5o60", Err("port is not a number 0-65535")),
            ("sip:alice@example.com:-1", Err("port is not a number 0-65535")),
            ("sip:alice@example.com:5060:5060", Err("port is not a number 0-65535")),
            ("sip:alice@[2001:db8::1", Err("unterminated IPv6 reference")),
            ("sip:alice@[2001:db8::1]5060", Err("unexpected character after IPv6 reference")),
            ("sip:alice@[2001:db8::1]:", Err("empty port after ':'")),
            ("sip:alice@[192.0.2.1]", Err("invalid IPv6 address")),
            ("sip:alice@[2001:db8:::1]", Err("invalid IPv6 address")),
            ("sip:alice@[2001:db8::1%25eth0]", Err("invalid IPv6 address")),
            ("sip:alice@[]", Err("invalid IPv6 address")),
            ("sip:alice@example..com", Err("empty label in host name")),
            ("sip:alice@.example.com", Err("empty label in host name")),
            ("sip:alice@-example.com", Err("host name label starts or ends with '-'")),
            ("sip:alice@example-.com", Err("host name label starts or ends with '-'")),
            ("sip:alice@exa_mple.com", Err("invalid character in host")),
            ("sip:alice@example.com>", Err("invalid character in host")),
            ("sip:alice@bob@example.com", Err("invalid character in host")),
            ("sip:alice@256.1.1.1", Err("invalid IPv4 address")),
            ("sip:alice@1.2.3", Err("invalid IPv4 address")),
            ("sip:alice@1.2.3.4.", Err("invalid IPv4 address")),
            ("sip:alice@1234", Err("invalid IPv4 address")),
            // --- invalid: parameters and headers ---
            ("sip:alice@example.com;", Err("empty parameter name")),
            ("sip:alice@example.com;;lr", Err("empty parameter name")),
            ("sip:alice@example.com;=x", Err("empty parameter name")),
            ("sip:alice@example.com;transport=", Err("empty parameter value")),
            ("sip:alice@example.com;a=b=c", Err("invalid character in URI parameter value")),
            ("sip:alice@example.com;a=\"q\"", Err("invalid character in URI parameter")),
            ("sip:alice@example.com;a=%4", Err("invalid %-escape in URI parameter")),
            ("sip:alice@example.com;a@b", Err("invalid character in URI parameter")),
            ("sip:alice@example.com?", Err("empty header list after '?'")),
            ("sip:alice@example.com?subject", Err("URI header without '='")),
            ("sip:alice@example.com?a=b&", Err("URI header without '='")),
            ("sip:alice@example.com?=x", Err("empty URI header name")),
            ("sip:alice@example.com?a=b;c", Err("invalid character in URI header")),
            ("sip:alice@example.com?a=%g0", Err("invalid %-escape in URI header")),
            ("sip:alice@example.com?a=b?c", sip(Sip { user: Some("alice"), host: "example.com", headers: Some("a=b?c"), ..S })),
            ("sip:alice@example.com?a=b?c=d", Err("invalid character in URI header")),
            // --- invalid: tel and other schemes ---
            ("tel:", Err("empty telephone number")),
            ("tel:+", Err("invalid global telephone number")),
            ("tel:+1-a01", Err("invalid global telephone number")),
            ("tel:--", Err("invalid local telephone number")),
            ("tel:+1-201-555-0123?x=y", Err("invalid global telephone number")),
            ("tel:+12015550123;p%41=x", Err("invalid character in URI parameter name")),
            ("tel:+12015550123;p_x=1", Err("invalid character in URI parameter name")),
            ("tel:+12015550123;", Err("empty parameter name")),
            ("foo:", Err("nothing after the scheme")),
            ("http://example.com/<x>", Err("invalid character in URI")),
            ("http://example.com/%x", Err("invalid %-escape in URI")),
        ]
    }

    #[test]
    fn table() {
        let cases = cases();
        assert!(cases.len() >= 40, "{} cases", cases.len());
        for (input, want) in &cases {
            let got = Uri::parse(input.as_bytes());
            match (want, got) {
                (Want::Sip(w), Ok(Uri::Sip(u))) => {
                    assert_eq!(u.raw, input.as_bytes(), "{input}");
                    assert_eq!(u.secure, w.secure, "{input}");
                    assert_eq!(u.user, w.user.map(str::as_bytes), "{input}");
                    assert_eq!(u.password, w.password.map(str::as_bytes), "{input}");
                    assert_eq!(u.host_raw, w.host.as_bytes(), "{input}");
                    assert_eq!(u.host, typed_host(w.host), "{input}");
                    assert_eq!(u.port, w.port, "{input}");
                    assert_eq!(u.params.as_bytes(), w.params.as_bytes(), "{input}");
                    assert_eq!(u.headers, w.headers.map(str::as_bytes), "{input}");
                }
                (Want::Tel(number, params), Ok(Uri::Tel(t))) => {
                    assert_eq!(t.number, number.as_bytes(), "{input}");
                    assert_eq!(t.params.as_bytes(), params.as_bytes(), "{input}");
                }
                (Want::Abs(scheme, rest), Ok(Uri::Absolute(a))) => {
                    assert_eq!(a.scheme, scheme.as_bytes(), "{input}");
                    assert_eq!(a.rest, rest.as_bytes(), "{input}");
                }
                (Want::Err(msg), Err(e)) => assert_eq!(e, ParseError::Uri(msg), "{input}"),
                (_, got) => panic!("{input}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn accessors_and_lookups() {
        let u =
            Uri::parse(b"sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31").unwrap();
        assert_eq!(
            u.as_bytes(),
            b"sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
        );
        let s = u.as_sip().unwrap();
        assert!(s.has_lr(), "an escaped `lr` is `lr` (RFC 3261 §19.1.4)");
        assert_eq!(
            find_param(s.params, b"name").unwrap().value,
            Some(&b"v%61lue%25%34%31"[..])
        );
        assert!(unescape(b"v%61lue%25%34%31").eq(b"value%41".iter().copied()));
        assert_eq!(s.transport(), None);

        let s = *Uri::parse(b"sip:+1@gw;TRANSPORT=TCP;User=phone;maddr=10.0.0.1;lr")
            .unwrap()
            .as_sip()
            .unwrap();
        assert_eq!(s.transport(), Some(&b"TCP"[..]));
        assert_eq!(s.user_param(), Some(&b"phone"[..]));
        assert_eq!(s.maddr(), Some(&b"10.0.0.1"[..]));
        assert!(s.has_lr());
        assert_eq!(s.host, Host::Name("gw"));

        assert!(Uri::parse(b"tel:+1").unwrap().as_sip().is_none());
        assert!(Uri::parse(b"isbn:1").unwrap().as_sip().is_none());
    }

    #[test]
    fn debug_redacts_password() {
        let u = Uri::parse(b"sip:alice:hunter2@example.com").unwrap();
        let text = format!("{u:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("alice") && text.contains("<redacted>"),
            "{text}"
        );
        let text = format!("{:?}", Uri::parse(b"tel:+1-201;ext=1").unwrap());
        assert!(text.contains("+1-201") && text.contains("ext=1"), "{text}");
        let text = format!("{:?}", Uri::parse(b"isbn:2983792873").unwrap());
        assert!(
            text.contains("isbn") && text.contains("2983792873"),
            "{text}"
        );
    }

    #[test]
    fn host_port_and_host() {
        let v6 = |s: &str| Host::V6(s.parse().unwrap());
        let v4 = |s: &str| Host::V4(s.parse().unwrap());
        // Via sent-by values of the RFC 4475 / RFC 5118 fixtures.
        let ok: &[(&str, Host<'_>, Option<u16>)] = &[
            ("example.com", Host::Name("example.com"), None),
            ("10.0.0.1:5060", v4("10.0.0.1"), Some(5060)),
            ("[2001:db8::1]:5070", v6("2001:db8::1"), Some(5070)),
            ("[2001:db8::9:1]", v6("2001:db8::9:1"), None),
            ("[2001:db8::9:1]:6050", v6("2001:db8::9:1"), Some(6050)),
            (
                "[::ffff:192.0.2.10]:19823",
                v6("::ffff:192.0.2.10"),
                Some(19823),
            ),
            ("255.255.255.255", v4("255.255.255.255"), None),
            (
                "host4.example.com:5060",
                Host::Name("host4.example.com"),
                Some(5060),
            ),
            (
                "fold-and-staple.example.com",
                Host::Name("fold-and-staple.example.com"),
                None,
            ),
        ];
        for (input, host, port) in ok {
            assert_eq!(
                parse_host_port(input.as_bytes()),
                Ok((*host, *port)),
                "{input}"
            );
        }
        for input in [
            "2001:db8::10",
            "",
            ":5060",
            "[::1",
            "[::1]x",
            "a b",
            "host:",
            "host:99999",
        ] {
            assert!(parse_host_port(input.as_bytes()).is_err(), "{input}");
        }
        assert_eq!(
            parse_host_port(b"2001:db8::10"),
            Err(ParseError::Uri("unbracketed IPv6 address"))
        );
        // Via received= (RFC 5118 §4.5): with and without brackets.
        assert_eq!(parse_host(b"2001:db8::9:255"), Ok(v6("2001:db8::9:255")));
        assert_eq!(parse_host(b"[2001:db8::9:255]"), Ok(v6("2001:db8::9:255")));
        assert_eq!(
            parse_host(b"2001:db8:::192.0.2.1"),
            Ok(v6("2001:db8::192.0.2.1"))
        );
        assert_eq!(parse_host(b"192.0.2.200"), Ok(v4("192.0.2.200")));
        assert_eq!(parse_host(b"Example.COM"), Ok(Host::Name("Example.COM")));
        for input in [
            "",
            "[::1]:5060",
            "[::1",
            "2001:db8::zz",
            "example.com:5060",
            "1.2.3.999",
        ] {
            assert!(parse_host(input.as_bytes()).is_err(), "{input}");
        }
        assert_eq!(v6("2001:db8::1").to_string(), "[2001:db8::1]");
        assert_eq!(v4("10.0.0.1").to_string(), "10.0.0.1");
        assert_eq!(Host::Name("example.com").to_string(), "example.com");
    }

    #[test]
    fn unescape_and_eq_escaped() {
        let dec = |s: &[u8]| unescape(s).collect::<Vec<u8>>();
        assert_eq!(dec(b"%61lice"), b"alice");
        assert_eq!(dec(b"I%20have%20spaces"), b"I have spaces");
        assert_eq!(dec(b"null-%00-null"), b"null-\0-null");
        assert_eq!(dec(b"%41%4"), b"A%4");
        assert_eq!(dec(b"%zz%"), b"%zz%");
        assert_eq!(dec(b"%%41"), b"%A");
        assert_eq!(dec(b"%e2%82%AC"), "\u{20ac}".as_bytes());
        assert_eq!(dec(b""), b"");
        assert!(eq_escaped(b"%61lice", b"alice"));
        assert!(eq_escaped(b"alice", b"%61%6c%69%63%65"));
        assert!(
            !eq_escaped(b"%41lice", b"alice"),
            "case-sensitive after decoding"
        );
        assert!(!eq_escaped(b"alice", b"alic"));
        assert!(eq_escaped(b"100%", b"100%"));
        assert!(eq_escaped(b"", b""));
        let it = unescape(b"%41bc");
        assert_eq!(it.size_hint(), (2, Some(5)));
    }

    /// RFC 3261 §19.1.4 (every pair listed there) and a few more.
    #[rustfmt::skip]
    const EQUALITY: &[(&str, &str, bool)] = &[
        // §19.1.4 "The URIs within each of the following sets are equivalent"
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp", true),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", true),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on", true),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on", true),
        ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com", "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com", true),
        ("sip:alice@atlanta.com?subject=project%20x&priority=urgent", "sip:alice@atlanta.com?priority=urgent&subject=project%20x", true),
        // §19.1.4 "The URIs within each of the following sets are not equivalent"
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP", false),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060", false),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp", false),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp", false),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting", false),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4", false),
        // more
        ("sip:alice@atlanta.com", "sips:alice@atlanta.com", false),
        ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com", false),
        ("sip:alice:p%77@atlanta.com", "sip:alice:pw@atlanta.com", true),
        ("sip:alice:PW@atlanta.com", "sip:alice:pw@atlanta.com", false),
        ("sip:atlanta.com", "sip:alice@atlanta.com", false),
        ("sip:a.com;maddr=x.com", "sip:a.com", false),
        ("sip:a.com;ttl=1", "sip:a.com", false),
        ("sip:a.com;method=INVITE", "sip:a.com", false),
        ("sip:a.com;user=phone", "sip:a.com", false),
        ("sip:a.com;%75ser=phone", "sip:a.com", false),
        ("sip:a.com;user=phone", "sip:a.com;USER=PHONE", true),
        ("sip:a.com;method=INVITE", "sip:a.com;method=invite", false),
        ("sip:a.com;maddr=X.com", "sip:a.com;maddr=x.com", true),
        ("sip:a.com;foo=1", "sip:a.com;foo=2", false),
        ("sip:a.com;foo", "sip:a.com;foo=1", false),
        ("sip:a.com;lr", "sip:a.com;%6Cr", true),
        ("sip:a.com;lr", "sip:a.com", true),
        ("sip:[2001:db8::1]", "sip:[2001:DB8:0:0::1]", true),
        ("sip:[2001:db8:::192.0.2.1]", "sip:[2001:db8::c000:201]", true),
        ("sip:[::ffff:192.0.2.2]", "sip:192.0.2.2", false),
        ("sip:10.0.0.1:5060", "sip:10.0.0.1:5060", true),
        ("sip:a.com?x=1&x=1", "sip:a.com?x=1", false),
        ("sip:a.com?x=1&x=1&y=2", "sip:a.com?x=1&y=2&y=2", false),
        ("sip:a.com?x=1&y=2&x=1", "sip:a.com?x=1&x=1&y=2", true),
        ("sip:a.com?Subject=x", "sip:a.com?subject=x", true),
        ("sip:a.com?subject=X", "sip:a.com?subject=x", false),
        ("sip:a.com?subject=%41", "sip:a.com?subject=A", true),
        ("sip:Alice@a.com", "sip:alice@a.com", false),
        ("sip:alice@A.COM.", "sip:alice@a.com", false),
    ];

    #[test]
    fn equality_rfc3261_19_1_4() {
        for (a, b, want) in EQUALITY {
            let ua = Uri::parse(a.as_bytes()).unwrap();
            let ub = Uri::parse(b.as_bytes()).unwrap();
            let (ua, ub) = (ua.as_sip().unwrap(), ub.as_sip().unwrap());
            assert_eq!(ua.matches(ub), *want, "{a} vs {b}");
            assert_eq!(ub.matches(ua), *want, "{b} vs {a}");
            assert!(ua.matches(ua) && ub.matches(ub), "{a} / {b} reflexive");
        }
    }

    #[test]
    fn equality_is_bounded() {
        let many = format!("sip:a.com{}", ";p".repeat(MAX_COMPARED + 1));
        let u = Uri::parse(many.as_bytes()).unwrap();
        let u = u.as_sip().unwrap();
        assert!(
            !u.matches(u),
            "documented: more than {MAX_COMPARED} params never match"
        );
        let few = format!("sip:a.com{}", ";p".repeat(MAX_COMPARED));
        let u = Uri::parse(few.as_bytes()).unwrap();
        assert!(u.as_sip().unwrap().matches(u.as_sip().unwrap()));
        let hdrs = format!("sip:a.com?{}", vec!["a=b"; MAX_COMPARED + 1].join("&"));
        let u = Uri::parse(hdrs.as_bytes()).unwrap();
        assert!(!u.as_sip().unwrap().matches(u.as_sip().unwrap()));
    }

    // === RFC 4475 / RFC 5118 fixtures (tests/data, see MANIFEST.tsv) ===

    fn data_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
    }

    /// `(name, expect)` of every fixture.
    fn manifest() -> Vec<(String, String)> {
        let text = std::fs::read_to_string(data_dir().join("MANIFEST.tsv")).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("name\t"))
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols[0].to_owned(), cols[3].to_owned())
            })
            .collect()
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(data_dir().join(format!("{name}.dat"))).unwrap()
    }

    /// The Request-URI of a request: the bytes between the first and the second SP.
    fn request_uri(msg: &[u8]) -> Option<&[u8]> {
        if msg.starts_with(b"SIP/") {
            return None;
        }
        let line = msg.split(|&c| c == b'\r').next()?;
        line.split(|&c| c == b' ').nth(1)
    }

    /// The URIs of the To, From, Contact, Route and Record-Route headers (long and compact
    /// forms): what is inside `<>`, or the addr-spec up to the first `;` (RFC 3261 §20.10).
    fn header_uris(msg: &[u8]) -> Vec<Vec<u8>> {
        let end = msg
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(msg.len());
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for line in msg[..end].split(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match (line.first(), lines.last_mut()) {
                (Some(b' ' | b'\t'), Some(prev)) => {
                    prev.push(b' ');
                    prev.extend_from_slice(line);
                }
                _ => lines.push(line.to_vec()),
            }
        }
        let mut out = Vec::new();
        for line in lines.iter().skip(1) {
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                continue;
            };
            let name = crate::text::trim(&line[..colon]).to_ascii_lowercase();
            let known: [&[u8]; 9] = [
                b"to",
                b"t",
                b"from",
                b"f",
                b"contact",
                b"m",
                b"route",
                b"record-route",
                b"refer-to",
            ];
            if !known.contains(&name.as_slice()) {
                continue;
            }
            let value = crate::text::trim(&line[colon + 1..]);
            if value == b"*" {
                continue;
            }
            let mut rest = value;
            if rest.contains(&b'<') {
                while let Some(open) = rest.iter().position(|&c| c == b'<') {
                    let close = open + rest[open..].iter().position(|&c| c == b'>').unwrap();
                    out.push(rest[open + 1..close].to_vec());
                    rest = &rest[close + 1..];
                }
            } else {
                let spec = value.split(|&c| c == b';').next().unwrap();
                out.push(crate::text::trim(spec).to_vec());
            }
        }
        out
    }

    #[test]
    fn fixture_request_uris() {
        // Request lines that cannot hold a valid Request-URI: RFC 5118 §4.2, RFC 4475 §3.1.2.7,
        // and two whose SP-separated second field is not the URI (§3.1.2.8 gives
        // "sip:user@example.com;", §3.1.2.9 an empty field).
        let must_fail = ["ipv6-bad", "ltgtruri", "lwsruri", "lwsstart"];
        let mut seen = 0;
        for (name, _) in manifest() {
            let msg = fixture(&name);
            let Some(ruri) = request_uri(&msg) else {
                continue;
            };
            seen += 1;
            let got = Uri::parse(ruri);
            if must_fail.contains(&name.as_str()) {
                assert!(
                    got.is_err(),
                    "{name}: {:?} parsed",
                    ruri.escape_ascii().to_string()
                );
            } else {
                assert!(
                    got.is_ok(),
                    "{name}: {:?} -> {got:?}",
                    ruri.escape_ascii().to_string()
                );
            }
        }
        assert!(seen >= 50, "{seen} request fixtures");
        assert_eq!(
            Uri::parse(request_uri(&fixture("ipv6-bad")).unwrap()),
            Err(ParseError::Uri("unbracketed IPv6 address"))
        );
        assert_eq!(
            Uri::parse(request_uri(&fixture("ltgtruri")).unwrap()),
            Err(ParseError::Uri("URI enclosed in '<>'"))
        );
        assert_eq!(
            Uri::parse(b"sip:user@example.com; lr"),
            Err(ParseError::Uri("whitespace or control character in URI"))
        );
    }

    #[test]
    fn fixture_header_uris_of_accepted_messages() {
        let mut count = 0;
        for (name, expect) in manifest() {
            if expect != "accept" {
                continue;
            }
            for uri in header_uris(&fixture(&name)) {
                count += 1;
                let got = Uri::parse(&uri);
                assert!(
                    got.is_ok(),
                    "{name}: {:?} -> {got:?}",
                    uri.escape_ascii().to_string()
                );
            }
        }
        assert!(count >= 90, "{count} header URIs");
    }

    #[test]
    fn fixture_specifics() {
        let semi = fixture("semiuri");
        let u = Uri::parse(request_uri(&semi).unwrap()).unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.user, Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(s.host, Host::Name("example.com"));
        assert!(s.params.is_empty());

        let intmeth = fixture("intmeth");
        let u = Uri::parse(request_uri(&intmeth).unwrap()).unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(
            s.user,
            Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..])
        );
        assert_eq!(
            s.password,
            Some(&b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"[..])
        );
        assert_eq!(s.host, Host::Name("example.com"));
        assert!(s.params.is_empty() && s.headers.is_none());

        let esc = fixture("esc01");
        let u = Uri::parse(request_uri(&esc).unwrap()).unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.user, Some(&b"sips%3Auser%40example.com"[..]));
        assert!(unescape(s.user.unwrap()).eq(b"sips:user@example.com".iter().copied()));
        assert_eq!(s.host, Host::Name("example.net"));

        let port_ambiguous = fixture("port-ambiguous");
        let u = Uri::parse(request_uri(&port_ambiguous).unwrap()).unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.host, Host::V6("2001:db8::10:5070".parse().unwrap()));
        assert_eq!(s.port, None);
        let port_unambiguous = fixture("port-unambiguous");
        let u = Uri::parse(request_uri(&port_unambiguous).unwrap()).unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(s.port, Some(5070));
        let ipv6_bug_abnf_3_colons = fixture("ipv6-bug-abnf-3-colons");
        let u = Uri::parse(request_uri(&ipv6_bug_abnf_3_colons).unwrap()).unwrap();
        assert_eq!(
            u.as_sip().unwrap().host,
            Host::V6("2001:db8::192.0.2.1".parse().unwrap())
        );

        for (name, scheme) in [
            ("unkscm", "nobodyKnowsThisScheme"),
            ("novelsc", "soap.beep"),
        ] {
            match Uri::parse(request_uri(&fixture(name)).unwrap()).unwrap() {
                Uri::Absolute(a) => assert_eq!(a.scheme, scheme.as_bytes(), "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let uris = header_uris(&fixture("unksm2"));
        let schemes: Vec<&[u8]> = uris
            .iter()
            .map(|u| match Uri::parse(u).unwrap() {
                Uri::Absolute(a) => a.scheme,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(schemes, [&b"isbn"[..], b"http", b"name"]);
    }

    // === robustness: no input panics ===

    /// Runs every entry point on `s`, checking the invariants that hold for any input.
    fn exercise(s: &[u8]) {
        if let Ok(u) = Uri::parse(s) {
            assert_eq!(u.as_bytes(), s);
            if let Some(sip) = u.as_sip() {
                let _ = (sip.transport(), sip.user_param(), sip.maddr(), sip.has_lr());
                assert!(
                    sip.matches(sip),
                    "{:?} not equal to itself",
                    s.escape_ascii().to_string()
                );
                let _ = sip.host.to_string();
                assert_eq!(parse_host_port(sip.host_raw).map(|(h, _)| h), Ok(sip.host));
            }
            let _ = format!("{u:?}");
        }
        let _ = parse_host(s);
        let _ = parse_host_port(s);
        assert!(unescape(s).count() <= s.len());
        assert!(eq_escaped(s, s));
    }

    #[test]
    fn no_panic_on_prefixes_and_single_byte_mutations() {
        let mut inputs: Vec<Vec<u8>> = cases().iter().map(|(s, _)| s.as_bytes().to_vec()).collect();
        for (a, b, _) in EQUALITY {
            inputs.push(a.as_bytes().to_vec());
            inputs.push(b.as_bytes().to_vec());
        }
        for (name, _) in manifest() {
            let msg = fixture(&name);
            inputs.extend(request_uri(&msg).map(<[u8]>::to_vec));
            inputs.extend(header_uris(&msg));
        }
        inputs.sort();
        inputs.dedup();
        let mut runs = 0usize;
        for input in &inputs {
            for end in 0..=input.len() {
                exercise(&input[..end]);
                runs += 1;
            }
            let mut m = input.clone();
            for i in 0..m.len() {
                let orig = m[i];
                for b in 0..=255u8 {
                    m[i] = b;
                    exercise(&m);
                    runs += 1;
                }
                m[i] = orig;
            }
        }
        assert!(runs > 100_000, "{runs} runs");
    }

    #[test]
    fn repeated_parameters_match_themselves() {
        // Crash inputs of the parse_uri fuzz target (minimised first).
        for raw in [
            &b"sip:e;r=m;r"[..],
            b"sip:a.com;x=1;x=2",
            b"sip:a.com;%72=1;r=2",
            b"sip:er;lpar=u%40example.n:er;lpar=u%40example.netoetomxaxample.com",
        ] {
            let Ok(Uri::Sip(u)) = Uri::parse(raw) else {
                continue; // only parsed URIs are compared
            };
            assert!(u.matches(&u), "{}", String::from_utf8_lossy(raw));
        }
        let Ok(Uri::Sip(a)) = Uri::parse(b"sip:a.com;x=1;x=2") else {
            panic!()
        };
        let Ok(Uri::Sip(b)) = Uri::parse(b"sip:a.com;x=2;x=1") else {
            panic!()
        };
        assert!(!a.matches(&b), "occurrences are compared in order");
    }
}

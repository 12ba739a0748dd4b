//! SDP session descriptions (RFC 8866, formerly RFC 4566): a borrowed parse and the
//! media-anchoring rewrite.
//!
//! sbcd anchors media. It forwards each leg's SDP to the other leg with its own address and ports
//! in place of the sender's, so that both legs send RTP to it. This module provides both halves:
//!
//! * [`Sdp::parse`] checks a body line by line (RFC 8866 §5: `<type>=<value>`, `v=0` first) and
//!   keeps borrowed slices: the `o=`, `s=` and session-level `c=` lines, and up to [`MAX_MEDIA`]
//!   media descriptions ([`Media`]), each with its `m=` fields, its own `c=` and its attribute
//!   lines. Nothing is allocated. Typed views ([`Origin`], [`Connection`], [`Rtcp`],
//!   [`Direction`]) are read from those slices.
//! * [`rewrite`] copies a body into the caller's `Vec<u8>` and changes only the connection
//!   addresses (`o=`, `c=`, `a=rtcp`) and the ports (`m=`, `a=rtcp`) that a [`Rewrite`] names.
//!   Every other byte is copied as it was: line endings, attribute order, codecs and unknown lines.
//!
//! The parser is strict where the rewrite depends on the input: the lines it changes must have
//! the shape that RFC 8866 gives them, and ports must fit in 16 bits. Elsewhere it is tolerant.
//! Unknown line types and attributes are kept, the line order after `v=` is not checked, bare LF
//! line endings are accepted (RFC 8866 §5 asks parsers to), fields may be separated by runs of
//! blanks, and blank lines at the end of the body are ignored. No input makes it panic.

use std::fmt;
use std::net::IpAddr;

use crate::text::parse_u16;

/// The maximum number of media descriptions (`m=` lines) in one body.
///
/// A body with more is rejected with [`SdpError::TooManyMedia`] (the B2BUA answers 488). Eight
/// covers what trunks offer (audio, video, T.38, BFCP, text) with room to spare; the limit keeps
/// [`Sdp`] a fixed-size value, and its size is copied on every parse (16 slots measured 13% more
/// instructions per rewrite than 8).
pub const MAX_MEDIA: usize = 8;

/// Why an SDP body could not be parsed or rewritten.
///
/// Every variant says where the problem is: a 1-based line number (the `v=` line is line 1) or a
/// 0-based media description index (the first `m=` line is media 0). The `&'static str` detail says
/// what is wrong, so a log line or a 488 reason can be built without allocating.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is empty or does not start with a `v=` line (RFC 8866 §5.1).
    #[error("SDP does not start with a v= line")]
    MissingVersion,
    /// The `v=` line carries a version other than 0 (RFC 8866 §5.1).
    #[error("line 1: unsupported SDP version (only v=0)")]
    UnsupportedVersion,
    /// A line does not have the `<type>=<value>` form, or appears where RFC 8866 §5 forbids it.
    #[error("line {line}: {problem}")]
    Line {
        /// 1-based line number.
        line: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// An `o=` line does not match RFC 8866 §5.2.
    #[error("line {line}: o= line: {problem}")]
    BadOrigin {
        /// 1-based line number.
        line: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// A `c=` line does not match RFC 8866 §5.7.
    #[error("line {line}: c= line: {problem}")]
    BadConnection {
        /// 1-based line number.
        line: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// An `m=` line does not match RFC 8866 §5.14.
    #[error("line {line}: m= line: {problem}")]
    BadMedia {
        /// 1-based line number.
        line: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// An `a=rtcp` attribute does not match RFC 3605 §2.1.
    #[error("line {line}: a=rtcp: {problem}")]
    BadRtcp {
        /// 1-based line number.
        line: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// The body has more than [`MAX_MEDIA`] media descriptions.
    #[error("more than {} media descriptions", MAX_MEDIA)]
    TooManyMedia,
    /// An active media description has no `c=` line, and the session has none either
    /// (RFC 8866 §5.7). Rejected streams (port 0) are exempt.
    #[error("media {media}: no c= line at media or session level")]
    NoConnectionForMedia {
        /// 0-based media description index.
        media: u8,
    },
    /// The default RTCP port (new media port + 1) would exceed 65535. The caller must then give an
    /// explicit [`Rewrite::rtcp_ports`] entry.
    #[error("media {media}: default RTCP port (media port + 1) exceeds 65535")]
    RtcpPortOverflow {
        /// 0-based media description index.
        media: u8,
    },
}

// === Views ===

/// The `o=` line (RFC 8866 §5.2):
/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The originator's login, or `-`.
    pub username: &'a [u8],
    /// The session id, a numeric string.
    pub session_id: &'a [u8],
    /// The version number, a numeric string. A changed SDP in a re-offer must carry a higher one
    /// (RFC 3264 §8). [`rewrite`] never changes it; bumping it is the caller's business.
    pub session_version: &'a [u8],
    /// The network type, `IN`.
    pub net_type: &'a [u8],
    /// The address type, `IP4` or `IP6`.
    pub addr_type: &'a [u8],
    /// The address of the host that created the session (an IP address or an FQDN).
    pub address: &'a [u8],
}

impl<'a> Origin<'a> {
    fn parse(value: &'a [u8]) -> Result<Self, &'static str> {
        let [user, id, version, net, addr_type, addr] = split_exact::<6>(value)
            .ok_or("expected <username> <sess-id> <sess-version> <nettype> <addrtype> <address>")?;
        Ok(Self {
            username: user.1,
            session_id: id.1,
            session_version: version.1,
            net_type: net.1,
            addr_type: addr_type.1,
            address: addr.1,
        })
    }
}

/// A `c=` line (RFC 8866 §5.7): `c=<nettype> <addrtype> <connection-address>`.
///
/// It may appear at session level and in each media description; a media-level one overrides the
/// session-level one for that medium ([`Media::effective_connection`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Connection<'a> {
    /// The network type, `IN`.
    pub net_type: &'a [u8],
    /// The address type, `IP4` or `IP6`.
    pub addr_type: &'a [u8],
    /// The address as written. It can be an FQDN, and a multicast address carries a `/ttl`
    /// (IPv4) and a `/number of addresses` suffix (RFC 8866 §5.7).
    pub address: &'a [u8],
}

impl<'a> Connection<'a> {
    fn parse(value: &'a [u8]) -> Result<Self, &'static str> {
        let [net, addr_type, addr] =
            split_exact::<3>(value).ok_or("expected <nettype> <addrtype> <connection-address>")?;
        Ok(Self {
            net_type: net.1,
            addr_type: addr_type.1,
            address: addr.1,
        })
    }

    /// The address as an IP address, without any multicast `/ttl/number` suffix.
    ///
    /// Returns `None` when the network type is not `IN`, when the address is not an IP literal
    /// (an FQDN), or when its family does not match the address type (`IP4` requires IPv4, `IP6`
    /// requires IPv6; an IPv4-mapped IPv6 address such as `::ffff:192.0.2.2` is IPv6). Type
    /// names compare case-insensitively.
    pub fn ip(&self) -> Option<IpAddr> {
        if !self.net_type.eq_ignore_ascii_case(b"IN") {
            return None;
        }
        let host = self.address.split(|&c| c == b'/').next()?;
        let ip: IpAddr = std::str::from_utf8(host).ok()?.parse().ok()?;
        let family_ok = match ip {
            IpAddr::V4(_) => self.addr_type.eq_ignore_ascii_case(b"IP4"),
            IpAddr::V6(_) => self.addr_type.eq_ignore_ascii_case(b"IP6"),
        };
        family_ok.then_some(ip)
    }

    /// Is the address `0.0.0.0` or `::`?
    ///
    /// A `c=IN IP4 0.0.0.0` is the RFC 2543 way of putting a stream on hold, which
    /// RFC 3264 §8.4 still asks answerers to understand. [`rewrite`] keeps such an address, so
    /// the other leg sees the hold as well.
    pub fn is_unspecified(&self) -> bool {
        // Fast path: an unspecified address is written starting with '0' or ':'; anything else
        // needs no IP parse (this runs on every c= line of every rewrite).
        if !matches!(self.address.first(), Some(b'0' | b':')) {
            return false;
        }
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// One `a=` line (RFC 8866 §5.13): `a=<name>` (a property) or `a=<name>:<value>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The attribute name, as written (names compare case-sensitively).
    pub name: &'a [u8],
    /// The value after the first `:`, or `None` for a property attribute such as `a=sendrecv`.
    /// Trailing blanks are removed.
    pub value: Option<&'a [u8]>,
}

impl<'a> Attribute<'a> {
    /// Splits the text after `a=`.
    fn split(text: &'a [u8]) -> Self {
        let text = trim_end(text);
        match memchr::memchr(b':', text) {
            Some(i) => {
                let (name, rest) = text.split_at(i);
                Self {
                    name,
                    value: rest.get(1..),
                }
            }
            None => Self {
                name: text,
                value: None,
            },
        }
    }
}

/// The media direction of a stream (RFC 8866 §6.7, RFC 3264 §5.1 and §8.4).
///
/// A stream is put on hold by offering `sendonly` (or `inactive` if it was already `recvonly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`, which is also the default when no direction attribute is present.
    #[default]
    SendRecv,
    /// `a=sendonly`: the sender of this SDP will only send.
    SendOnly,
    /// `a=recvonly`: the sender of this SDP will only receive.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    /// The attribute name that states this direction (`sendrecv`, `sendonly`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    fn from_attribute(attr: &Attribute<'_>) -> Option<Self> {
        if attr.value.is_some() {
            return None;
        }
        match attr.name {
            b"sendrecv" => Some(Self::SendRecv),
            b"sendonly" => Some(Self::SendOnly),
            b"recvonly" => Some(Self::RecvOnly),
            b"inactive" => Some(Self::Inactive),
            _ => None,
        }
    }

    /// The first direction attribute among `lines`, if any.
    fn find(lines: &[u8]) -> Option<Self> {
        Attributes::new(lines).find_map(|a| Self::from_attribute(&a))
    }
}

/// An `a=rtcp` attribute (RFC 3605 §2.1):
/// `a=rtcp:<port> [<nettype> <addrtype> <connection-address>]`.
///
/// It announces an RTCP port other than the RTP port + 1, and optionally another address.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rtcp<'a> {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, when it is given.
    pub connection: Option<Connection<'a>>,
}

/// Field positions of an `a=rtcp` value (the text after `rtcp:`).
struct RtcpFields<'a> {
    port: (usize, &'a [u8]),
    address: Option<[(usize, &'a [u8]); 3]>,
}

impl<'a> RtcpFields<'a> {
    fn parse(value: &'a [u8]) -> Result<Self, &'static str> {
        let mut fields = Fields::new(value);
        let port = fields.next().ok_or("missing port")?;
        let address = match fields.next() {
            None => None,
            Some(net) => {
                let addr_type = fields.next().ok_or("incomplete connection address")?;
                let addr = fields.next().ok_or("incomplete connection address")?;
                if fields.next().is_some() {
                    return Err("extra field after the connection address");
                }
                Some([net, addr_type, addr])
            }
        };
        Ok(Self { port, address })
    }

    fn view(&self) -> Result<Rtcp<'a>, &'static str> {
        let port = parse_u16(self.port.1).ok_or("port is not a number in 0..=65535")?;
        let connection = self.address.map(|[net, addr_type, addr]| Connection {
            net_type: net.1,
            addr_type: addr_type.1,
            address: addr.1,
        });
        Ok(Rtcp { port, connection })
    }
}

impl<'a> Rtcp<'a> {
    /// Parses the value of an `a=rtcp` attribute (the text after `rtcp:`).
    fn parse(value: &'a [u8]) -> Result<Self, &'static str> {
        RtcpFields::parse(value)?.view()
    }
}

/// Field positions of an `m=` value:
/// `<media> <port>[/<number of ports>] <proto> <fmt> ...` (RFC 8866 §5.14).
struct MediaLine<'a> {
    kind: &'a [u8],
    /// Offset of the port field in the value, and the length of its digits (before any `/`).
    port_at: usize,
    port_len: usize,
    port: u16,
    port_count: Option<u16>,
    proto: &'a [u8],
    formats: &'a [u8],
}

impl<'a> MediaLine<'a> {
    fn parse(value: &'a [u8]) -> Result<Self, &'static str> {
        let mut fields = Fields::new(value);
        let (Some(kind), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err("expected <media> <port> <proto> <fmt> ...");
        };
        let (digits, count) = match memchr::memchr(b'/', port.1) {
            Some(i) => {
                let (digits, rest) = port.1.split_at(i);
                (digits, rest.get(1..))
            }
            None => (port.1, None),
        };
        let port_num = parse_u16(digits).ok_or("port is not a number in 0..=65535")?;
        let port_count = match count {
            None => None,
            Some(c) => match parse_u16(c) {
                Some(n) if n > 0 => Some(n),
                _ => return Err("number of ports is not a number in 1..=65535"),
            },
        };
        // The format list is the rest of the value after <proto>: from the first field after
        // it up to the last non-blank byte (RFC 8866 §5.14 requires at least one fmt; rejected
        // streams in the wild sometimes omit it, so an empty list is tolerated).
        let formats = match fields.next() {
            Some((at, _)) => value.get(at..).map_or(&[][..], trim_end),
            None => &[],
        };
        Ok(Self {
            kind: kind.1,
            port_at: port.0,
            port_len: digits.len(),
            port: port_num,
            port_count,
            proto: proto.1,
            formats,
        })
    }
}

/// One media description: an `m=` line and the lines up to the next `m=` (RFC 8866 §5.14).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Media<'a> {
    /// The media type: `audio`, `video`, `image` (T.38), `application`…
    pub kind: &'a [u8],
    /// The transport port. Port 0 marks a rejected or disabled stream (RFC 3264 §5.1, §6).
    pub port: u16,
    /// The number of ports from `<port>/<number of ports>`, when given.
    pub port_count: Option<u16>,
    /// The transport protocol: `RTP/AVP`, `RTP/SAVPF`, `udptl`…
    pub proto: &'a [u8],
    /// The media format list as written (RTP payload types, or `t38`…). Iterate it with
    /// [`Media::formats`].
    pub formats: &'a [u8],
    /// The media-level `c=` line, if any. See also [`Media::effective_connection`].
    pub connection: Option<Connection<'a>>,
    /// The lines after the `m=` line, up to the next `m=` line or the end of the body.
    lines: &'a [u8],
    /// The session-level lines, for attributes that a media description inherits.
    session_lines: &'a [u8],
    /// The session-level `c=` line.
    session_connection: Option<Connection<'a>>,
}

const EMPTY_MEDIA: Media<'static> = Media {
    kind: b"",
    port: 0,
    port_count: None,
    proto: b"",
    formats: b"",
    connection: None,
    lines: b"",
    session_lines: b"",
    session_connection: None,
};

impl<'a> Media<'a> {
    /// The media-level `a=` lines in order (RFC 8866 §5.13). Session-level ones are not included.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.lines)
    }

    /// The first media-level attribute with this name (compared case-sensitively).
    /// `Some(None)` means a property attribute without value, such as `a=rtcp-mux`.
    pub fn attribute(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.attributes().find(|a| a.name == name).map(|a| a.value)
    }

    /// The stream's direction (RFC 8866 §6.7, RFC 3264 §5.1). A media-level direction attribute
    /// overrides a session-level one, and the default is [`Direction::SendRecv`].
    ///
    /// An RFC 2543-style hold (`c=` address `0.0.0.0`) is not a direction attribute and is not
    /// reflected here; see [`Connection::is_unspecified`].
    pub fn direction(&self) -> Direction {
        Direction::find(self.lines)
            .or_else(|| Direction::find(self.session_lines))
            .unwrap_or_default()
    }

    /// The `a=rtcp` attribute (RFC 3605), if present. Parsing has already validated it.
    pub fn rtcp(&self) -> Option<Rtcp<'a>> {
        let value = self.attribute(b"rtcp")??;
        Rtcp::parse(value).ok()
    }

    /// Is `a=rtcp-mux` present, offering (or, in an answer, accepting) RTP and RTCP on one port
    /// (RFC 5761 §5.1.1)?
    pub fn rtcp_mux(&self) -> bool {
        self.attribute(b"rtcp-mux").is_some()
    }

    /// Is the stream rejected or disabled (port 0, RFC 3264 §5.1 and §6)?
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// The `c=` line that applies to this stream: the media-level one, or else the session-level
    /// one (RFC 8866 §5.7).
    pub fn effective_connection(&self) -> Option<Connection<'a>> {
        self.connection.or(self.session_connection)
    }

    /// Iterates the media formats (for RTP, the payload type numbers as text).
    pub fn formats(&self) -> Formats<'a> {
        Formats(Fields::new(self.formats))
    }
}

/// Iterator over the formats of an `m=` line, returned by [`Media::formats`].
#[derive(Debug, Clone)]
pub struct Formats<'a>(Fields<'a>);

impl<'a> Iterator for Formats<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next().map(|(_, f)| f)
    }
}

/// Iterator over the `a=` lines of one level (session or one media description), returned by
/// [`Sdp::attributes`] and [`Media::attributes`].
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    lines: Lines<'a>,
}

impl<'a> Attributes<'a> {
    fn new(lines: &'a [u8]) -> Self {
        Self {
            lines: Lines::new(lines),
        }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;
    fn next(&mut self) -> Option<Attribute<'a>> {
        self.lines
            .by_ref()
            .find_map(|l| l.text.strip_prefix(b"a="))
            .map(Attribute::split)
    }
}

// === Parse ===

/// A parsed session description. It borrows the body and holds at most [`MAX_MEDIA`] media
/// descriptions in a fixed array, so parsing allocates nothing.
#[derive(Clone)]
pub struct Sdp<'a> {
    body: &'a [u8],
    origin: Option<Origin<'a>>,
    session_name: &'a [u8],
    connection: Option<Connection<'a>>,
    /// The session-level lines: from the start of the body to the first `m=` line.
    session: &'a [u8],
    media: [Media<'a>; MAX_MEDIA],
    media_count: u8,
}

/// Where [`Sdp::parse`] is in the body.
struct Cursor {
    /// 1-based number of the current line.
    line: u16,
    /// Index of the media description being read (`None` at session level).
    current: Option<usize>,
    /// Where the lines of the current section start (after its `m=` line).
    section_start: usize,
    has_session_name: bool,
}

impl<'a> Sdp<'a> {
    /// Parses a session description (RFC 8866 §5).
    ///
    /// The body must start with `v=0`. Every other line must be `<type>=<value>` where the type
    /// is one lowercase letter. Lines end with CRLF or a bare LF, and the last line may lack a
    /// terminator. Blank lines are accepted only at the end. Lines of unknown type are kept.
    /// The lines that [`rewrite`] changes are validated: `o=` (six fields), `c=` (three fields,
    /// at most one per level), `m=` (port within 16 bits) and media-level `a=rtcp` (RFC 3605).
    /// So are `o=` and `s=` (at most one, session level only), as is the rule that every active
    /// medium must have a connection address (RFC 8866 §5.7). Other lines are not interpreted.
    ///
    /// # Errors
    /// An [`SdpError`] naming the first offending line (or media description). Parsing stops
    /// there; it never panics and never allocates.
    pub fn parse(body: &'a [u8]) -> Result<Self, SdpError> {
        let mut lines = Lines::new(body);
        let version = lines
            .next()
            .and_then(|l| l.text.strip_prefix(b"v="))
            .ok_or(SdpError::MissingVersion)?;
        if trim_end(version) != b"0" {
            return Err(SdpError::UnsupportedVersion);
        }
        let mut sdp = Self {
            body,
            origin: None,
            session_name: b"",
            connection: None,
            session: body,
            media: [EMPTY_MEDIA; MAX_MEDIA],
            media_count: 0,
        };
        let mut cursor = Cursor {
            line: 1,
            current: None,
            section_start: 0,
            has_session_name: false,
        };
        let mut blank_line: Option<u16> = None;
        for line in lines {
            cursor.line = cursor.line.saturating_add(1);
            if line.text.is_empty() {
                blank_line.get_or_insert(cursor.line);
                continue;
            }
            if let Some(blank) = blank_line {
                return Err(SdpError::Line {
                    line: blank,
                    problem: "blank line inside the description",
                });
            }
            sdp.handle_line(&mut cursor, line)?;
        }
        sdp.close_section(cursor.current, cursor.section_start, body.len());
        let (session, session_connection) = (sdp.session, sdp.connection);
        for (i, m) in sdp.used_media_mut().iter_mut().enumerate() {
            m.session_lines = session;
            m.session_connection = session_connection;
            if m.connection.is_none() && session_connection.is_none() && m.port != 0 {
                // `i < MAX_MEDIA`, which fits in a u8.
                let media = u8::try_from(i).unwrap_or(u8::MAX);
                return Err(SdpError::NoConnectionForMedia { media });
            }
        }
        Ok(sdp)
    }

    /// Checks one non-blank line after `v=` and records what the views need.
    fn handle_line(&mut self, cursor: &mut Cursor, line: RawLine<'a>) -> Result<(), SdpError> {
        let line_no = cursor.line;
        let bad = |problem| SdpError::Line {
            line: line_no,
            problem,
        };
        let [kind @ b'a'..=b'z', b'=', value @ ..] = line.text else {
            return Err(bad("expected <type>=<value> with a lowercase letter type"));
        };
        if memchr::memchr2(0, b'\r', value).is_some() {
            return Err(bad("NUL or CR inside a line"));
        }
        match kind {
            b'v' => return Err(bad("v= line after the first line")),
            b'o' | b's' if cursor.current.is_some() => {
                return Err(bad("o= or s= line inside a media description"))
            }
            b'o' => {
                if self.origin.is_some() {
                    return Err(bad("more than one o= line"));
                }
                let origin = Origin::parse(value).map_err(|problem| SdpError::BadOrigin {
                    line: line_no,
                    problem,
                })?;
                self.origin = Some(origin);
            }
            b's' => {
                if cursor.has_session_name {
                    return Err(bad("more than one s= line"));
                }
                cursor.has_session_name = true;
                self.session_name = value;
            }
            b'c' => {
                let c = Connection::parse(value).map_err(|problem| SdpError::BadConnection {
                    line: line_no,
                    problem,
                })?;
                let slot = match cursor.current {
                    Some(i) => self.media.get_mut(i).map(|m| &mut m.connection),
                    None => Some(&mut self.connection),
                };
                if let Some(slot) = slot {
                    if slot.is_some() {
                        return Err(bad("more than one c= line at one level"));
                    }
                    *slot = Some(c);
                }
            }
            b'm' => {
                let index = usize::from(self.media_count);
                let slot = self.media.get_mut(index).ok_or(SdpError::TooManyMedia)?;
                let m = MediaLine::parse(value).map_err(|problem| SdpError::BadMedia {
                    line: line_no,
                    problem,
                })?;
                *slot = Media {
                    kind: m.kind,
                    port: m.port,
                    port_count: m.port_count,
                    proto: m.proto,
                    formats: m.formats,
                    ..EMPTY_MEDIA
                };
                self.close_section(cursor.current, cursor.section_start, line.start);
                cursor.current = Some(index);
                cursor.section_start = line.end();
                // `index < MAX_MEDIA` (the slot exists), so this cannot overflow.
                self.media_count = self.media_count.saturating_add(1);
            }
            b'a' if cursor.current.is_some() => {
                let attr = Attribute::split(value);
                if attr.name == b"rtcp" {
                    let rtcp = attr.value.ok_or("missing port").and_then(Rtcp::parse);
                    rtcp.map_err(|problem| SdpError::BadRtcp {
                        line: line_no,
                        problem,
                    })?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Records the lines of the section (the session, or media `current`) that ends at `end`.
    fn close_section(&mut self, current: Option<usize>, start: usize, end: usize) {
        let lines = self.body.get(start..end).unwrap_or_default();
        match current {
            None => self.session = self.body.get(..end).unwrap_or_default(),
            Some(i) => {
                if let Some(m) = self.media.get_mut(i) {
                    m.lines = lines;
                }
            }
        }
    }

    fn used_media(&self) -> &[Media<'a>] {
        self.media
            .get(..usize::from(self.media_count))
            .unwrap_or_default()
    }

    fn used_media_mut(&mut self) -> &mut [Media<'a>] {
        let n = usize::from(self.media_count);
        self.media.get_mut(..n).unwrap_or_default()
    }

    /// The whole body, as passed to [`parse`](Self::parse).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.body
    }

    /// The `o=` line (RFC 8866 §5.2), if present.
    pub fn origin(&self) -> Option<Origin<'a>> {
        self.origin
    }

    /// The `s=` value (RFC 8866 §5.3), empty if the line is missing or empty.
    pub fn session_name(&self) -> &'a [u8] {
        self.session_name
    }

    /// The session-level `c=` line (RFC 8866 §5.7), if present.
    pub fn connection(&self) -> Option<Connection<'a>> {
        self.connection
    }

    /// The session-level `a=` lines, in order (RFC 8866 §5.13).
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.session)
    }

    /// The session-level direction attribute (RFC 8866 §6.7), if any. It applies to every medium
    /// without its own ([`Media::direction`]).
    pub fn direction(&self) -> Option<Direction> {
        Direction::find(self.session)
    }

    /// The media descriptions, in `m=` line order.
    pub fn media(&self) -> impl ExactSizeIterator<Item = Media<'a>> + '_ {
        self.used_media().iter().copied()
    }

    /// The media description at this 0-based index, in `m=` line order.
    pub fn media_at(&self, index: usize) -> Option<Media<'a>> {
        self.used_media().get(index).copied()
    }

    /// The number of media descriptions (at most [`MAX_MEDIA`]).
    pub fn media_count(&self) -> usize {
        usize::from(self.media_count)
    }
}

// === Rewrite ===

/// What the B2BUA writes into the SDP it forwards to the other leg when it anchors media.
///
/// Per media description, `ports[i]` and `rtcp_ports[i]` apply to the `i`-th `m=` line (0-based).
/// Slices shorter than the media count leave the remaining streams' ports unchanged, and extra
/// entries are ignored.
#[derive(Debug, Clone, Copy)]
pub struct Rewrite<'r> {
    /// sbcd's media address for this leg. It is written, with `IN IP4` or `IN IP6` chosen from
    /// its family, into every `c=` line (session and media level, RFC 8866 §5.7), into the
    /// address of every `a=rtcp` that has one (RFC 3605), and into the `o=` unicast address
    /// (RFC 8866 §5.2). An unspecified `c=` or `a=rtcp` address (`0.0.0.0` or `::`, the
    /// RFC 3264 §8.4 hold) is kept as it was.
    pub address: IpAddr,
    /// Per `m=` line: `Some(p)` replaces the media port, `None` keeps it. A port of 0 (a rejected
    /// or disabled stream, RFC 3264 §6) is always kept as 0, with its `a=rtcp` unchanged.
    pub ports: &'r [Option<u16>],
    /// Per `m=` line: `Some(p)` replaces the port of an existing `a=rtcp` attribute (none is
    /// added). With `None`, the port is kept if the media port is kept. If `ports` replaces the
    /// media port, the RTCP port becomes the new media port itself when the medium has
    /// `a=rtcp-mux` (RFC 5761 §5.1.1), and the new media port + 1 otherwise (RFC 3605 §2.1).
    pub rtcp_ports: &'r [Option<u16>],
}

/// Appends `body`, rewritten as `plan` says, to `out`.
///
/// The body is parsed first ([`Sdp::parse`]), and on error nothing is appended. The rewrite
/// changes only these bytes:
/// * in `o=`, the `<nettype> <addrtype> <unicast-address>` fields. The username, session id and
///   session version are kept (bumping the version is the caller's business, RFC 3264 §8).
/// * in `c=`, the `<nettype> <addrtype> <connection-address>` fields (a multicast suffix is
///   dropped), unless the address is unspecified.
/// * in `m=`, the port digits (a `/<number of ports>` suffix is kept).
/// * in media-level `a=rtcp`, the port and the connection address, with the same rules.
///
/// Every other byte is copied as it was, including line endings, attribute order, codecs,
/// `a=ptime`, `a=fmtp`, direction attributes and unknown lines. The result parses again and
/// shows the new address and ports. Nothing is allocated beyond the growth of `out`.
///
/// # Errors
/// Any error of [`Sdp::parse`], and [`SdpError::RtcpPortOverflow`] when the default RTCP port
/// would be 65536. On error `out` is left as it was.
pub fn rewrite(body: &[u8], plan: &Rewrite<'_>, out: &mut Vec<u8>) -> Result<(), SdpError> {
    Sdp::parse(body)?.rewrite(plan, out)
}

impl Sdp<'_> {
    /// [`rewrite`] for a description that is already parsed: the B2BUA parses an offer once (to
    /// count its media and allocate ports) and then writes it for the other leg without parsing
    /// it again.
    ///
    /// # Errors
    /// [`SdpError::RtcpPortOverflow`] when the default RTCP port would be 65536. On error `out`
    /// is left as it was.
    pub fn rewrite(&self, plan: &Rewrite<'_>, out: &mut Vec<u8>) -> Result<(), SdpError> {
        let mark = out.len();
        out.reserve(self.body.len().saturating_add(64));
        let result = write_rewritten(self, plan, out);
        if result.is_err() {
            out.truncate(mark);
        }
        result
    }
}

/// The rewrite address in canonical text (IPv4 dotted quad, IPv6 as `std` displays it, RFC 5952),
/// formatted once per rewrite.
struct AddressText {
    buf: [u8; 48],
    len: usize,
    addr_type: &'static [u8],
}

impl AddressText {
    fn new(ip: IpAddr) -> Self {
        use fmt::Write as _;
        let mut text = Self {
            buf: [0; 48],
            len: 0,
            addr_type: match ip {
                IpAddr::V4(_) => b"IP4",
                IpAddr::V6(_) => b"IP6",
            },
        };
        match ip {
            // IPv4 is the common case: format the octets with itoa instead of `fmt`, which
            // costs more than the rest of the line rewrite.
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.buf[text.len] = b'.';
                        text.len += 1;
                    }
                    let mut digits = itoa::Buffer::new();
                    let d = digits.format(octet).as_bytes();
                    text.buf[text.len..text.len + d.len()].copy_from_slice(d);
                    text.len += d.len();
                }
            }
            IpAddr::V6(_) => {
                write!(text, "{ip}").expect("an IP address is at most 45 characters long");
            }
        }
        text
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Writes `IN <addrtype> <address>`.
    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"IN ");
        out.extend_from_slice(self.addr_type);
        out.push(b' ');
        out.extend_from_slice(self.as_bytes());
    }
}

impl fmt::Write for AddressText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The state of the media description being rewritten.
struct MediaPlan {
    index: usize,
    /// The port written into the `m=` line, when the plan replaces it (never for port 0).
    new_port: Option<u16>,
    /// An explicit RTCP port from the plan.
    rtcp_port: Option<u16>,
    rtcp_mux: bool,
}

fn write_rewritten(sdp: &Sdp<'_>, plan: &Rewrite<'_>, out: &mut Vec<u8>) -> Result<(), SdpError> {
    let address = AddressText::new(plan.address);
    let mut media: Option<MediaPlan> = None;
    // Unchanged lines are copied in runs, one memcpy per run rather than two per line.
    let mut run_start = 0;
    for line in Lines::new(sdp.body) {
        if !matches!(
            line.text,
            [b'o' | b'c' | b'm', b'=', ..] | [b'a', b'=', b'r', b't', b'c', b'p', b':', ..]
        ) {
            continue;
        }
        out.extend_from_slice(sdp.body.get(run_start..line.start).unwrap_or_default());
        run_start = line.end();
        match line.text {
            [b'o', b'=', value @ ..] => write_origin(out, value, &address),
            [b'c', b'=', value @ ..] => write_connection(out, value, &address),
            [b'm', b'=', value @ ..] => {
                let index = media.as_ref().map_or(0, |m| m.index + 1);
                let m = sdp.media_at(index).unwrap_or(EMPTY_MEDIA);
                let active = m.port != 0;
                let state = MediaPlan {
                    index,
                    new_port: plan.ports.get(index).copied().flatten().filter(|_| active),
                    rtcp_port: plan
                        .rtcp_ports
                        .get(index)
                        .copied()
                        .flatten()
                        .filter(|_| active),
                    rtcp_mux: m.rtcp_mux(),
                };
                write_media(out, value, state.new_port);
                media = Some(state);
            }
            [b'a', b'=', b'r', b't', b'c', b'p', b':', value @ ..] => match &media {
                Some(m) => write_rtcp(out, value, m, &address)?,
                None => out.extend_from_slice(line.text),
            },
            text => out.extend_from_slice(text),
        }
        out.extend_from_slice(line.ending);
    }
    out.extend_from_slice(sdp.body.get(run_start..).unwrap_or_default());
    Ok(())
}

/// Copies `value[..at]`, then writes the new address, then copies `value[end..]`.
fn splice_address(out: &mut Vec<u8>, value: &[u8], at: usize, end: usize, address: &AddressText) {
    out.extend_from_slice(value.get(..at).unwrap_or_default());
    address.write_to(out);
    out.extend_from_slice(value.get(end..).unwrap_or_default());
}

fn write_origin(out: &mut Vec<u8>, value: &[u8], address: &AddressText) {
    out.extend_from_slice(b"o=");
    match split_exact::<6>(value) {
        Some([.., net, _, addr]) => {
            splice_address(out, value, net.0, addr.0 + addr.1.len(), address);
        }
        None => out.extend_from_slice(value),
    }
}

fn write_connection(out: &mut Vec<u8>, value: &[u8], address: &AddressText) {
    out.extend_from_slice(b"c=");
    match Connection::parse(value) {
        Ok(c) if !c.is_unspecified() => {
            let start = Fields::new(value).next().map_or(0, |f| f.0);
            let end = Fields::new(value)
                .nth(2)
                .map_or(value.len(), |f| f.0 + f.1.len());
            splice_address(out, value, start, end, address);
        }
        _ => out.extend_from_slice(value),
    }
}

fn write_media(out: &mut Vec<u8>, value: &[u8], new_port: Option<u16>) {
    out.extend_from_slice(b"m=");
    match (new_port, MediaLine::parse(value)) {
        (Some(port), Ok(m)) => {
            out.extend_from_slice(value.get(..m.port_at).unwrap_or_default());
            out.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
            let rest = value.get(m.port_at + m.port_len..).unwrap_or_default();
            out.extend_from_slice(rest);
        }
        _ => out.extend_from_slice(value),
    }
}

/// Rewrites the value of a media-level `a=rtcp` attribute (the text after `a=rtcp:`).
fn write_rtcp(
    out: &mut Vec<u8>,
    value: &[u8],
    media: &MediaPlan,
    address: &AddressText,
) -> Result<(), SdpError> {
    out.extend_from_slice(b"a=rtcp:");
    let Ok(fields) = RtcpFields::parse(value) else {
        out.extend_from_slice(value);
        return Ok(());
    };
    let Ok(rtcp) = fields.view() else {
        out.extend_from_slice(value);
        return Ok(());
    };
    let port = match (media.rtcp_port, media.new_port) {
        (Some(p), _) => Some(p),
        (None, Some(p)) if media.rtcp_mux => Some(p),
        (None, Some(p)) => Some(p.checked_add(1).ok_or(SdpError::RtcpPortOverflow {
            media: u8::try_from(media.index).unwrap_or(u8::MAX),
        })?),
        (None, None) => None,
    };
    let (port_at, port_end) = (fields.port.0, fields.port.0 + fields.port.1.len());
    out.extend_from_slice(value.get(..port_at).unwrap_or_default());
    match port {
        Some(p) => out.extend_from_slice(itoa::Buffer::new().format(p).as_bytes()),
        None => out.extend_from_slice(fields.port.1),
    }
    match (fields.address, rtcp.connection) {
        (Some([net, _, addr]), Some(c)) if !c.is_unspecified() => {
            out.extend_from_slice(value.get(port_end..net.0).unwrap_or_default());
            address.write_to(out);
            let addr_end = addr.0 + addr.1.len();
            out.extend_from_slice(value.get(addr_end..).unwrap_or_default());
        }
        _ => out.extend_from_slice(value.get(port_end..).unwrap_or_default()),
    }
    Ok(())
}

// === Lexing ===

/// One line of a body: its text without the terminator, and the terminator itself
/// (`\r\n`, `\n`, or empty for a last line without one).
#[derive(Debug, Clone, Copy)]
struct RawLine<'a> {
    /// Offset of the line in the body.
    start: usize,
    text: &'a [u8],
    ending: &'a [u8],
}

impl RawLine<'_> {
    /// Offset just past the terminator.
    fn end(&self) -> usize {
        self.start + self.text.len() + self.ending.len()
    }
}

/// Splits a body into lines at LF, one `memchr` per line (RFC 8866 §5: CRLF, or a bare LF).
#[derive(Debug, Clone)]
struct Lines<'a> {
    rest: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Self {
        Self { rest: body, pos: 0 }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = RawLine<'a>;
    fn next(&mut self) -> Option<RawLine<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let len = memchr::memchr(b'\n', self.rest).map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(len);
        let without_lf = line.strip_suffix(b"\n").unwrap_or(line);
        let text_len = without_lf.strip_suffix(b"\r").unwrap_or(without_lf).len();
        let (text, ending) = line.split_at(text_len);
        let start = self.pos;
        self.pos += len;
        self.rest = rest;
        Some(RawLine {
            start,
            text,
            ending,
        })
    }
}

/// Is `c` a field separator? RFC 8866 §9 separates fields with one SP; runs of blanks and HTAB
/// are tolerated.
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Removes trailing blanks.
fn trim_end(s: &[u8]) -> &[u8] {
    let n = s.iter().rposition(|&c| !is_blank(c)).map_or(0, |i| i + 1);
    s.get(..n).unwrap_or_default()
}

/// The blank-separated fields of a line value, each with its offset in the value.
#[derive(Debug, Clone)]
struct Fields<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(s: &'a [u8]) -> Self {
        Self { s, pos: 0 }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (usize, &'a [u8]);
    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        let rest = self.s.get(self.pos..)?;
        let skip = rest.iter().position(|&c| !is_blank(c))?;
        let tail = rest.get(skip..)?;
        let len = tail.iter().position(|&c| is_blank(c)).unwrap_or(tail.len());
        let start = self.pos + skip;
        self.pos = start + len;
        Some((start, tail.get(..len)?))
    }
}

/// Exactly `N` blank-separated fields, or `None`.
fn split_exact<const N: usize>(value: &[u8]) -> Option<[(usize, &[u8]); N]> {
    let mut out = [(0, &[][..]); N];
    let mut fields = Fields::new(value);
    for slot in &mut out {
        *slot = fields.next()?;
    }
    match fields.next() {
        Some(_) => None,
        None => Some(out),
    }
}

// === Debug ===

/// Shows bytes as an escaped string in `Debug` output, without allocating.
struct Text<'a>(&'a [u8]);

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Debug for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origin")
            .field("username", &Text(self.username))
            .field("session_id", &Text(self.session_id))
            .field("session_version", &Text(self.session_version))
            .field("net_type", &Text(self.net_type))
            .field("addr_type", &Text(self.addr_type))
            .field("address", &Text(self.address))
            .finish()
    }
}

impl fmt::Debug for Connection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("net_type", &Text(self.net_type))
            .field("addr_type", &Text(self.addr_type))
            .field("address", &Text(self.address))
            .finish()
    }
}

impl fmt::Debug for Attribute<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attribute")
            .field("name", &Text(self.name))
            .field("value", &self.value.map(Text))
            .finish()
    }
}

impl fmt::Debug for Rtcp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rtcp")
            .field("port", &self.port)
            .field("connection", &self.connection)
            .finish()
    }
}

impl fmt::Debug for Media<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Media")
            .field("kind", &Text(self.kind))
            .field("port", &self.port)
            .field("port_count", &self.port_count)
            .field("proto", &Text(self.proto))
            .field("formats", &Text(self.formats))
            .field("connection", &self.connection)
            .field("attributes", &self.attributes().count())
            .finish()
    }
}

impl fmt::Debug for Sdp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sdp")
            .field("origin", &self.origin)
            .field("session_name", &Text(self.session_name))
            .field("connection", &self.connection)
            .field("media", &self.used_media())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// sbcd's media address on an IPv4 leg.
    const SBC4: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));
    /// sbcd's media address on an IPv6 leg.
    const SBC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 5));

    // --- Realistic offers -------------------------------------------------------------------

    const ASTERISK: &str = concat!(
        "v=0\r\n",
        "o=- 1624478398 1624478398 IN IP4 192.0.2.10\r\n",
        "s=Asterisk\r\n",
        "c=IN IP4 192.0.2.10\r\n",
        "t=0 0\r\n",
        "m=audio 14772 RTP/AVP 0 8 101\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:8 PCMA/8000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-16\r\n",
        "a=ptime:20\r\n",
        "a=maxptime:150\r\n",
        "a=sendrecv\r\n",
    );

    const FREESWITCH: &str = concat!(
        "v=0\r\n",
        "o=FreeSWITCH 1700000000 1700000001 IN IP4 198.51.100.20\r\n",
        "s=FreeSWITCH\r\n",
        "c=IN IP4 198.51.100.20\r\n",
        "t=0 0\r\n",
        "m=audio 24680 RTP/AVP 9 0 8 101 13\r\n",
        "a=rtpmap:9 G722/8000\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:8 PCMA/8000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-16\r\n",
        "a=rtpmap:13 CN/8000\r\n",
        "a=ptime:20\r\n",
        "a=sendrecv\r\n",
        "a=rtcp:24681 IN IP4 198.51.100.20\r\n",
    );

    const CISCO_CUBE: &str = concat!(
        "v=0\r\n",
        "o=CiscoSystemsSIP-GW-UserAgent 4970 9370 IN IP4 10.10.10.1\r\n",
        "s=SIP Call\r\n",
        "c=IN IP4 10.10.10.1\r\n",
        "t=0 0\r\n",
        "m=audio 16384 RTP/AVP 18 0 101\r\n",
        "a=rtpmap:18 G729/8000\r\n",
        "a=fmtp:18 annexb=no\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-15\r\n",
        "a=ptime:20\r\n",
    );

    const WEBRTC: &str = concat!(
        "v=0\r\n",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n",
        "s=-\r\n",
        "t=0 0\r\n",
        "a=group:BUNDLE 0 1\r\n",
        "a=msid-semantic: WMS stream\r\n",
        "m=audio 54321 UDP/TLS/RTP/SAVPF 111 0 126\r\n",
        "c=IN IP4 192.0.2.50\r\n",
        "a=rtcp:9 IN IP4 0.0.0.0\r\n",
        "a=candidate:1 1 udp 2122260223 192.0.2.50 54321 typ host\r\n",
        "a=ice-ufrag:F7gI\r\n",
        "a=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n",
        "a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24\r\n",
        "a=setup:actpass\r\n",
        "a=mid:0\r\n",
        "a=sendrecv\r\n",
        "a=rtcp-mux\r\n",
        "a=rtpmap:111 opus/48000/2\r\n",
        "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:126 telephone-event/8000\r\n",
        "m=video 54322 UDP/TLS/RTP/SAVPF 96 97\r\n",
        "c=IN IP4 192.0.2.50\r\n",
        "a=rtcp:9 IN IP4 0.0.0.0\r\n",
        "a=mid:1\r\n",
        "a=recvonly\r\n",
        "a=rtcp-mux\r\n",
        "a=rtpmap:96 VP8/90000\r\n",
        "a=rtcp-fb:96 nack\r\n",
        "a=rtpmap:97 rtx/90000\r\n",
        "a=fmtp:97 apt=96\r\n",
    );

    const IPV6: &str = concat!(
        "v=0\r\n",
        "o=alice 2890844526 2890844527 IN IP6 2001:db8::1\r\n",
        "s=-\r\n",
        "c=IN IP6 2001:db8::1\r\n",
        "t=0 0\r\n",
        "m=audio 49170 RTP/AVP 0 101\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-15\r\n",
        "a=ptime:20\r\n",
        "a=sendrecv\r\n",
    );

    const REJECTED_VIDEO: &str = concat!(
        "v=0\r\n",
        "o=bob 2808844564 2808844565 IN IP4 192.0.2.30\r\n",
        "s=-\r\n",
        "c=IN IP4 192.0.2.30\r\n",
        "t=0 0\r\n",
        "m=audio 49174 RTP/AVP 0\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=sendrecv\r\n",
        "m=video 0 RTP/AVP 31\r\n",
        "a=rtpmap:31 H261/90000\r\n",
    );

    /// Asterisk's re-INVITE putting the call on hold (RFC 3264 §8.4): same session, version + 1.
    const HOLD_SENDONLY: &str = concat!(
        "v=0\r\n",
        "o=- 1624478398 1624478399 IN IP4 192.0.2.10\r\n",
        "s=Asterisk\r\n",
        "c=IN IP4 192.0.2.10\r\n",
        "t=0 0\r\n",
        "m=audio 14772 RTP/AVP 0 8 101\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:8 PCMA/8000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-16\r\n",
        "a=ptime:20\r\n",
        "a=sendonly\r\n",
    );

    /// Session-level `a=inactive`, overridden by the video stream's own `a=sendrecv`.
    const HOLD_INACTIVE: &str = concat!(
        "v=0\r\n",
        "o=- 3 4 IN IP4 192.0.2.40\r\n",
        "s=-\r\n",
        "c=IN IP4 192.0.2.40\r\n",
        "t=0 0\r\n",
        "a=inactive\r\n",
        "m=audio 49170 RTP/AVP 0\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "m=video 49172 RTP/AVP 31\r\n",
        "a=rtpmap:31 H261/90000\r\n",
        "a=sendrecv\r\n",
    );

    /// RFC 2543-style hold: connection address 0.0.0.0.
    const HOLD_ZERO_ADDRESS: &str = concat!(
        "v=0\r\n",
        "o=- 5 6 IN IP4 192.0.2.45\r\n",
        "s=-\r\n",
        "c=IN IP4 0.0.0.0\r\n",
        "t=0 0\r\n",
        "m=audio 49170 RTP/AVP 0\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
    );

    const T38: &str = concat!(
        "v=0\r\n",
        "o=- 1 3 IN IP4 192.0.2.60\r\n",
        "s=-\r\n",
        "c=IN IP4 192.0.2.60\r\n",
        "t=0 0\r\n",
        "m=image 4000 udptl t38\r\n",
        "a=T38FaxVersion:0\r\n",
        "a=T38MaxBitRate:14400\r\n",
        "a=T38FaxRateManagement:transferredTCF\r\n",
        "a=T38FaxMaxBuffer:262\r\n",
        "a=T38FaxMaxDatagram:176\r\n",
        "a=T38FaxUdpEC:t38UDPRedundancy\r\n",
    );

    /// Bare LF line endings, and an `a=rtcp` with a port only.
    const LF_ONLY: &str = concat!(
        "v=0\n",
        "o=user 123 456 IN IP4 192.0.2.70\n",
        "s=Talk\n",
        "c=IN IP4 192.0.2.70\n",
        "t=0 0\n",
        "m=audio 7078 RTP/AVP 96 0 8 101\n",
        "a=rtpmap:96 opus/48000/2\n",
        "a=fmtp:96 useinbandfec=1\n",
        "a=rtpmap:101 telephone-event/8000\n",
        "a=rtcp:7079\n",
    );

    const VALID: [&str; 12] = [
        ASTERISK,
        FREESWITCH,
        CISCO_CUBE,
        WEBRTC,
        IPV6,
        REJECTED_VIDEO,
        HOLD_SENDONLY,
        HOLD_INACTIVE,
        HOLD_ZERO_ADDRESS,
        T38,
        LF_ONLY,
        MULTICAST_AND_PORT_COUNT,
    ];

    const MULTICAST_AND_PORT_COUNT: &str = concat!(
        "v=0\r\n",
        "o=jdoe 2890844526 2890842807 IN IP4 198.51.100.1\r\n",
        "s=SDP Seminar\r\n",
        "c=IN IP4 233.252.0.1/127\r\n",
        "t=2873397496 2873404696\r\n",
        "m=video 51372/2 RTP/AVP 99\r\n",
        "a=rtpmap:99 h263-1998/90000\r\n",
    );

    // --- Helpers ----------------------------------------------------------------------------

    fn parse(body: &str) -> Sdp<'_> {
        Sdp::parse(body.as_bytes()).expect("valid SDP")
    }

    fn plan<'r>(address: IpAddr, ports: &'r [Option<u16>], rtcp: &'r [Option<u16>]) -> Rewrite<'r> {
        Rewrite {
            address,
            ports,
            rtcp_ports: rtcp,
        }
    }

    /// Rewrites `body` after some existing bytes (which must survive) and checks that the result
    /// parses again.
    fn rewritten(body: &str, plan: &Rewrite<'_>) -> String {
        let mut out = b"INVITE...\r\n\r\n".to_vec();
        rewrite(body.as_bytes(), plan, &mut out).expect("rewrite");
        let body = out.split_off(13);
        assert_eq!(
            out, b"INVITE...\r\n\r\n",
            "bytes before the SDP were touched"
        );
        let text = String::from_utf8(body).expect("ASCII in, ASCII out");
        Sdp::parse(text.as_bytes()).expect("rewritten SDP parses");
        text
    }

    /// Asserts that `output` has the lines of `input`, byte for byte (terminators included),
    /// except the 0-based line numbers in `changed`, which must differ.
    fn assert_changed_lines(input: &str, output: &str, changed: &[usize]) {
        let a: Vec<&str> = input.split_inclusive('\n').collect();
        let b: Vec<&str> = output.split_inclusive('\n').collect();
        assert_eq!(a.len(), b.len(), "line count changed");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            if changed.contains(&i) {
                assert_ne!(x, y, "line {i} should have been rewritten");
            } else {
                assert_eq!(x, y, "line {i} should be byte-identical");
            }
        }
    }

    fn formats<'a>(m: &Media<'a>) -> Vec<&'a [u8]> {
        m.formats().collect()
    }

    // --- Asterisk ---------------------------------------------------------------------------

    #[test]
    fn asterisk_offer_parses() {
        let sdp = parse(ASTERISK);
        let o = sdp.origin().expect("o=");
        assert_eq!(o.username, b"-");
        assert_eq!(o.session_id, b"1624478398");
        assert_eq!(o.session_version, b"1624478398");
        assert_eq!(
            (o.net_type, o.addr_type, o.address),
            (&b"IN"[..], &b"IP4"[..], &b"192.0.2.10"[..])
        );
        assert_eq!(sdp.session_name(), b"Asterisk");
        let c = sdp.connection().expect("session c=");
        assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))));
        assert!(!c.is_unspecified());
        assert_eq!(sdp.attributes().count(), 0);
        assert_eq!(sdp.direction(), None);
        assert_eq!(sdp.media_count(), 1);
        let m = sdp.media().next().expect("m=");
        assert_eq!(m.kind, b"audio");
        assert_eq!((m.port, m.port_count), (14772, None));
        assert_eq!(m.proto, b"RTP/AVP");
        assert_eq!(m.formats, b"0 8 101");
        assert_eq!(formats(&m), [&b"0"[..], b"8", b"101"]);
        assert_eq!(m.connection, None);
        assert_eq!(m.effective_connection(), Some(c));
        assert_eq!(m.direction(), Direction::SendRecv);
        assert_eq!(m.attribute(b"ptime"), Some(Some(&b"20"[..])));
        assert_eq!(m.attribute(b"fmtp"), Some(Some(&b"101 0-16"[..])));
        assert_eq!(m.attribute(b"sendrecv"), Some(None));
        assert_eq!(m.attribute(b"rtcp"), None);
        assert_eq!(m.rtcp(), None);
        assert!(!m.rtcp_mux());
        assert!(!m.is_rejected());
        let names: Vec<&[u8]> = m.attributes().map(|a| a.name).collect();
        assert_eq!(
            names,
            [
                &b"rtpmap"[..],
                b"rtpmap",
                b"rtpmap",
                b"fmtp",
                b"ptime",
                b"maxptime",
                b"sendrecv"
            ]
        );
    }

    #[test]
    fn asterisk_offer_rewrites_address_and_port() {
        let out = rewritten(ASTERISK, &plan(SBC4, &[Some(40000)], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=- 1624478398 1624478398 IN IP4 203.0.113.5\r\n",
            "s=Asterisk\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "t=0 0\r\n",
            "m=audio 40000 RTP/AVP 0 8 101\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:8 PCMA/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=fmtp:101 0-16\r\n",
            "a=ptime:20\r\n",
            "a=maxptime:150\r\n",
            "a=sendrecv\r\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(ASTERISK, &out, &[1, 3, 5]);
        let sdp = parse(&out);
        assert_eq!(sdp.connection().and_then(|c| c.ip()), Some(SBC4));
        assert_eq!(sdp.media().next().map(|m| m.port), Some(40000));
        let o = sdp.origin().expect("o=");
        assert_eq!(
            (o.username, o.session_id, o.session_version),
            (&b"-"[..], &b"1624478398"[..], &b"1624478398"[..])
        );
    }

    #[test]
    fn ipv4_offer_rewritten_for_an_ipv6_leg_changes_addrtype() {
        let out = rewritten(ASTERISK, &plan(SBC6, &[Some(40000)], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=- 1624478398 1624478398 IN IP6 2001:db8:ffff::5\r\n",
            "s=Asterisk\r\n",
            "c=IN IP6 2001:db8:ffff::5\r\n",
            "t=0 0\r\n",
            "m=audio 40000 RTP/AVP 0 8 101\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:8 PCMA/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=fmtp:101 0-16\r\n",
            "a=ptime:20\r\n",
            "a=maxptime:150\r\n",
            "a=sendrecv\r\n",
        );
        assert_eq!(out, expected);
        let sdp = parse(&out);
        let c = sdp.connection().expect("c=");
        assert_eq!(c.addr_type, b"IP6");
        assert_eq!(c.ip(), Some(SBC6));
        assert_eq!(sdp.origin().map(|o| o.addr_type), Some(&b"IP6"[..]));
    }

    #[test]
    fn keeping_every_port_changes_only_addresses() {
        let out = rewritten(ASTERISK, &plan(SBC4, &[None], &[None]));
        assert_changed_lines(ASTERISK, &out, &[1, 3]);
        assert!(out.contains("m=audio 14772 RTP/AVP 0 8 101\r\n"));
    }

    // --- FreeSWITCH: a=rtcp with an address ------------------------------------------------

    #[test]
    fn freeswitch_offer_parses_rtcp() {
        let sdp = parse(FREESWITCH);
        let m = sdp.media_at(0).expect("m=");
        assert_eq!(formats(&m), [&b"9"[..], b"0", b"8", b"101", b"13"]);
        let rtcp = m.rtcp().expect("a=rtcp");
        assert_eq!(rtcp.port, 24681);
        let c = rtcp.connection.expect("a=rtcp address");
        assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20))));
        assert_eq!(
            m.attribute(b"rtcp"),
            Some(Some(&b"24681 IN IP4 198.51.100.20"[..]))
        );
        assert_eq!(m.direction(), Direction::SendRecv);
        assert!(sdp.media_at(1).is_none());
    }

    #[test]
    fn freeswitch_rtcp_defaults_to_new_media_port_plus_one() {
        let out = rewritten(FREESWITCH, &plan(SBC4, &[Some(30000)], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=FreeSWITCH 1700000000 1700000001 IN IP4 203.0.113.5\r\n",
            "s=FreeSWITCH\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "t=0 0\r\n",
            "m=audio 30000 RTP/AVP 9 0 8 101 13\r\n",
            "a=rtpmap:9 G722/8000\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:8 PCMA/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=fmtp:101 0-16\r\n",
            "a=rtpmap:13 CN/8000\r\n",
            "a=ptime:20\r\n",
            "a=sendrecv\r\n",
            "a=rtcp:30001 IN IP4 203.0.113.5\r\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(FREESWITCH, &out, &[1, 3, 5, 14]);
        let m = parse(&out).media_at(0).expect("m=");
        let rtcp = m.rtcp().expect("a=rtcp");
        assert_eq!(rtcp.port, 30001);
        assert_eq!(rtcp.connection.and_then(|c| c.ip()), Some(SBC4));
    }

    #[test]
    fn freeswitch_rtcp_port_from_the_plan() {
        let out = rewritten(FREESWITCH, &plan(SBC4, &[Some(30000)], &[Some(31000)]));
        assert!(
            out.ends_with("a=sendrecv\r\na=rtcp:31000 IN IP4 203.0.113.5\r\n"),
            "{out}"
        );
        assert_changed_lines(FREESWITCH, &out, &[1, 3, 5, 14]);
    }

    #[test]
    fn freeswitch_rtcp_port_kept_when_media_port_kept() {
        let out = rewritten(FREESWITCH, &plan(SBC6, &[], &[]));
        assert!(
            out.ends_with("a=rtcp:24681 IN IP6 2001:db8:ffff::5\r\n"),
            "{out}"
        );
        assert!(out.contains("m=audio 24680 RTP/AVP 9 0 8 101 13\r\n"));
        assert_changed_lines(FREESWITCH, &out, &[1, 3, 14]);
    }

    #[test]
    fn rtcp_default_overflow_is_an_error_and_appends_nothing() {
        let mut out = b"keep".to_vec();
        let err = rewrite(
            FREESWITCH.as_bytes(),
            &plan(SBC4, &[Some(65535)], &[]),
            &mut out,
        );
        assert_eq!(err, Err(SdpError::RtcpPortOverflow { media: 0 }));
        assert_eq!(out, b"keep");
        // An explicit RTCP port makes it valid.
        rewrite(
            FREESWITCH.as_bytes(),
            &plan(SBC4, &[Some(65535)], &[Some(65534)]),
            &mut out,
        )
        .expect("explicit RTCP port");
        assert!(out.ends_with(b"a=rtcp:65534 IN IP4 203.0.113.5\r\n"));
    }

    // --- Cisco CUBE: c= at session level only -----------------------------------------------

    #[test]
    fn cisco_cube_offer_uses_the_session_connection() {
        let sdp = parse(CISCO_CUBE);
        assert_eq!(
            sdp.origin().map(|o| o.username),
            Some(&b"CiscoSystemsSIP-GW-UserAgent"[..])
        );
        assert_eq!(sdp.session_name(), b"SIP Call");
        let m = sdp.media_at(0).expect("m=");
        assert_eq!(m.connection, None);
        let c = m.effective_connection().expect("session c=");
        assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::new(10, 10, 10, 1))));
        assert_eq!(m.attribute(b"fmtp"), Some(Some(&b"18 annexb=no"[..])));
        assert_eq!(formats(&m), [&b"18"[..], b"0", b"101"]);
    }

    #[test]
    fn cisco_cube_offer_rewrites() {
        let out = rewritten(CISCO_CUBE, &plan(SBC4, &[Some(20002)], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=CiscoSystemsSIP-GW-UserAgent 4970 9370 IN IP4 203.0.113.5\r\n",
            "s=SIP Call\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "t=0 0\r\n",
            "m=audio 20002 RTP/AVP 18 0 101\r\n",
            "a=rtpmap:18 G729/8000\r\n",
            "a=fmtp:18 annexb=no\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=fmtp:101 0-15\r\n",
            "a=ptime:20\r\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(CISCO_CUBE, &out, &[1, 3, 5]);
        let m = parse(&out).media_at(0).expect("m=");
        assert_eq!(m.effective_connection().and_then(|c| c.ip()), Some(SBC4));
    }

    // --- WebRTC-ish: rtcp-mux, two m= lines -------------------------------------------------

    #[test]
    fn webrtc_offer_parses() {
        let sdp = parse(WEBRTC);
        assert_eq!(sdp.connection(), None);
        let session: Vec<Attribute<'_>> = sdp.attributes().collect();
        assert_eq!(session.len(), 2);
        assert_eq!(session[0].name, b"group");
        assert_eq!(session[0].value, Some(&b"BUNDLE 0 1"[..]));
        assert_eq!(session[1].value, Some(&b" WMS stream"[..]));
        assert_eq!(sdp.media_count(), 2);
        let audio = sdp.media_at(0).expect("audio");
        let video = sdp.media_at(1).expect("video");
        assert_eq!((audio.kind, audio.port), (&b"audio"[..], 54321));
        assert_eq!((video.kind, video.port), (&b"video"[..], 54322));
        assert_eq!(audio.proto, b"UDP/TLS/RTP/SAVPF");
        assert!(audio.rtcp_mux() && video.rtcp_mux());
        assert_eq!(audio.direction(), Direction::SendRecv);
        assert_eq!(video.direction(), Direction::RecvOnly);
        let rtcp = audio.rtcp().expect("a=rtcp");
        assert_eq!(rtcp.port, 9);
        assert!(rtcp.connection.is_some_and(|c| c.is_unspecified()));
        let c = audio.connection.expect("media c=");
        assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50))));
        assert_eq!(audio.effective_connection(), Some(c));
        assert_eq!(audio.attribute(b"mid"), Some(Some(&b"0"[..])));
        assert_eq!(video.attribute(b"mid"), Some(Some(&b"1"[..])));
        assert_eq!(video.attribute(b"rtcp-fb"), Some(Some(&b"96 nack"[..])));
        assert_eq!(audio.attributes().count(), 13);
        assert_eq!(video.attributes().count(), 8);
    }

    #[test]
    fn webrtc_offer_rewrites_both_streams_with_muxed_rtcp() {
        let out = rewritten(WEBRTC, &plan(SBC4, &[Some(40000), Some(40002)], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=- 4611731400430051336 2 IN IP4 203.0.113.5\r\n",
            "s=-\r\n",
            "t=0 0\r\n",
            "a=group:BUNDLE 0 1\r\n",
            "a=msid-semantic: WMS stream\r\n",
            "m=audio 40000 UDP/TLS/RTP/SAVPF 111 0 126\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "a=rtcp:40000 IN IP4 0.0.0.0\r\n",
            "a=candidate:1 1 udp 2122260223 192.0.2.50 54321 typ host\r\n",
            "a=ice-ufrag:F7gI\r\n",
            "a=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n",
            "a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24\r\n",
            "a=setup:actpass\r\n",
            "a=mid:0\r\n",
            "a=sendrecv\r\n",
            "a=rtcp-mux\r\n",
            "a=rtpmap:111 opus/48000/2\r\n",
            "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:126 telephone-event/8000\r\n",
            "m=video 40002 UDP/TLS/RTP/SAVPF 96 97\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "a=rtcp:40002 IN IP4 0.0.0.0\r\n",
            "a=mid:1\r\n",
            "a=recvonly\r\n",
            "a=rtcp-mux\r\n",
            "a=rtpmap:96 VP8/90000\r\n",
            "a=rtcp-fb:96 nack\r\n",
            "a=rtpmap:97 rtx/90000\r\n",
            "a=fmtp:97 apt=96\r\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(WEBRTC, &out, &[1, 6, 7, 8, 21, 22, 23]);
        let sdp = parse(&out);
        let ports: Vec<u16> = sdp.media().map(|m| m.port).collect();
        assert_eq!(ports, [40000, 40002]);
        let rtcp: Vec<u16> = sdp
            .media()
            .filter_map(|m| m.rtcp())
            .map(|r| r.port)
            .collect();
        assert_eq!(rtcp, [40000, 40002]);
    }

    // --- IPv6 -------------------------------------------------------------------------------

    #[test]
    fn ipv6_offer_parses() {
        let sdp = parse(IPV6);
        let c = sdp.connection().expect("c=");
        assert_eq!(c.addr_type, b"IP6");
        assert_eq!(
            c.ip(),
            Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)))
        );
        assert_eq!(sdp.origin().map(|o| o.address), Some(&b"2001:db8::1"[..]));
    }

    #[test]
    fn ipv6_offer_rewrites_on_ipv6_and_ipv4_legs() {
        let v6 = rewritten(IPV6, &plan(SBC6, &[Some(40000)], &[]));
        let expected_v6 = concat!(
            "v=0\r\n",
            "o=alice 2890844526 2890844527 IN IP6 2001:db8:ffff::5\r\n",
            "s=-\r\n",
            "c=IN IP6 2001:db8:ffff::5\r\n",
            "t=0 0\r\n",
            "m=audio 40000 RTP/AVP 0 101\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=fmtp:101 0-15\r\n",
            "a=ptime:20\r\n",
            "a=sendrecv\r\n",
        );
        assert_eq!(v6, expected_v6);
        assert_changed_lines(IPV6, &v6, &[1, 3, 5]);
        let v4 = rewritten(IPV6, &plan(SBC4, &[Some(40000)], &[]));
        let expected_v4 = concat!(
            "v=0\r\n",
            "o=alice 2890844526 2890844527 IN IP4 203.0.113.5\r\n",
            "s=-\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "t=0 0\r\n",
            "m=audio 40000 RTP/AVP 0 101\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=fmtp:101 0-15\r\n",
            "a=ptime:20\r\n",
            "a=sendrecv\r\n",
        );
        assert_eq!(v4, expected_v4);
        assert_eq!(parse(&v4).connection().and_then(|c| c.ip()), Some(SBC4));
    }

    // --- Rejected stream --------------------------------------------------------------------

    #[test]
    fn rejected_stream_parses() {
        let sdp = parse(REJECTED_VIDEO);
        let video = sdp.media_at(1).expect("video");
        assert_eq!((video.kind, video.port), (&b"video"[..], 0));
        assert!(video.is_rejected());
        assert_eq!(
            video.attribute(b"rtpmap"),
            Some(Some(&b"31 H261/90000"[..]))
        );
        assert_eq!(video.direction(), Direction::SendRecv);
    }

    #[test]
    fn rejected_stream_keeps_port_zero() {
        let out = rewritten(
            REJECTED_VIDEO,
            &plan(SBC4, &[Some(40000), Some(40002)], &[None, Some(40003)]),
        );
        let expected = concat!(
            "v=0\r\n",
            "o=bob 2808844564 2808844565 IN IP4 203.0.113.5\r\n",
            "s=-\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "t=0 0\r\n",
            "m=audio 40000 RTP/AVP 0\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=sendrecv\r\n",
            "m=video 0 RTP/AVP 31\r\n",
            "a=rtpmap:31 H261/90000\r\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(REJECTED_VIDEO, &out, &[1, 3, 5]);
    }

    #[test]
    fn rejected_stream_needs_no_connection() {
        let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n";
        let sdp = parse(body);
        assert_eq!(
            sdp.media_at(0).map(|m| m.effective_connection()),
            Some(None)
        );
    }

    // --- Hold -------------------------------------------------------------------------------

    #[test]
    fn sendonly_hold_is_kept_and_version_untouched() {
        let sdp = parse(HOLD_SENDONLY);
        assert_eq!(
            sdp.media_at(0).map(|m| m.direction()),
            Some(Direction::SendOnly)
        );
        let out = rewritten(HOLD_SENDONLY, &plan(SBC4, &[Some(40000)], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=- 1624478398 1624478399 IN IP4 203.0.113.5\r\n",
            "s=Asterisk\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "t=0 0\r\n",
            "m=audio 40000 RTP/AVP 0 8 101\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:8 PCMA/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=fmtp:101 0-16\r\n",
            "a=ptime:20\r\n",
            "a=sendonly\r\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(HOLD_SENDONLY, &out, &[1, 3, 5]);
        assert_eq!(
            parse(&out).media_at(0).map(|m| m.direction()),
            Some(Direction::SendOnly)
        );
    }

    #[test]
    fn session_level_inactive_is_inherited_and_overridden() {
        let sdp = parse(HOLD_INACTIVE);
        assert_eq!(sdp.direction(), Some(Direction::Inactive));
        assert_eq!(
            sdp.media_at(0).map(|m| m.direction()),
            Some(Direction::Inactive)
        );
        assert_eq!(
            sdp.media_at(1).map(|m| m.direction()),
            Some(Direction::SendRecv)
        );
        assert_eq!(
            sdp.attributes().next().map(|a| a.name),
            Some(&b"inactive"[..])
        );
        let out = rewritten(HOLD_INACTIVE, &plan(SBC4, &[Some(40000), None], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=- 3 4 IN IP4 203.0.113.5\r\n",
            "s=-\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "t=0 0\r\n",
            "a=inactive\r\n",
            "m=audio 40000 RTP/AVP 0\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "m=video 49172 RTP/AVP 31\r\n",
            "a=rtpmap:31 H261/90000\r\n",
            "a=sendrecv\r\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(HOLD_INACTIVE, &out, &[1, 3, 6]);
        assert_eq!(Direction::Inactive.as_str(), "inactive");
    }

    #[test]
    fn zero_address_hold_is_kept() {
        let sdp = parse(HOLD_ZERO_ADDRESS);
        let c = sdp.connection().expect("c=");
        assert!(c.is_unspecified());
        assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        let out = rewritten(HOLD_ZERO_ADDRESS, &plan(SBC4, &[Some(40000)], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=- 5 6 IN IP4 203.0.113.5\r\n",
            "s=-\r\n",
            "c=IN IP4 0.0.0.0\r\n",
            "t=0 0\r\n",
            "m=audio 40000 RTP/AVP 0\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(HOLD_ZERO_ADDRESS, &out, &[1, 5]);
    }

    // --- T.38 -------------------------------------------------------------------------------

    #[test]
    fn t38_image_stream() {
        let sdp = parse(T38);
        let m = sdp.media_at(0).expect("m=image");
        assert_eq!(
            (m.kind, m.port, m.proto),
            (&b"image"[..], 4000, &b"udptl"[..])
        );
        assert_eq!(formats(&m), [&b"t38"[..]]);
        assert_eq!(
            m.attribute(b"T38FaxRateManagement"),
            Some(Some(&b"transferredTCF"[..]))
        );
        assert_eq!(
            m.attribute(b"t38faxratemanagement"),
            None,
            "names are case-sensitive"
        );
        let out = rewritten(T38, &plan(SBC4, &[Some(40100)], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=- 1 3 IN IP4 203.0.113.5\r\n",
            "s=-\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "t=0 0\r\n",
            "m=image 40100 udptl t38\r\n",
            "a=T38FaxVersion:0\r\n",
            "a=T38MaxBitRate:14400\r\n",
            "a=T38FaxRateManagement:transferredTCF\r\n",
            "a=T38FaxMaxBuffer:262\r\n",
            "a=T38FaxMaxDatagram:176\r\n",
            "a=T38FaxUdpEC:t38UDPRedundancy\r\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(T38, &out, &[1, 3, 5]);
    }

    // --- Line endings -----------------------------------------------------------------------

    #[test]
    fn lf_only_line_endings() {
        let sdp = parse(LF_ONLY);
        let m = sdp.media_at(0).expect("m=");
        assert_eq!(m.port, 7078);
        assert_eq!(
            m.rtcp(),
            Some(Rtcp {
                port: 7079,
                connection: None
            })
        );
        assert_eq!(m.attribute(b"rtpmap"), Some(Some(&b"96 opus/48000/2"[..])));
        let out = rewritten(LF_ONLY, &plan(SBC4, &[Some(40000)], &[]));
        let expected = concat!(
            "v=0\n",
            "o=user 123 456 IN IP4 203.0.113.5\n",
            "s=Talk\n",
            "c=IN IP4 203.0.113.5\n",
            "t=0 0\n",
            "m=audio 40000 RTP/AVP 96 0 8 101\n",
            "a=rtpmap:96 opus/48000/2\n",
            "a=fmtp:96 useinbandfec=1\n",
            "a=rtpmap:101 telephone-event/8000\n",
            "a=rtcp:40001\n",
        );
        assert_eq!(out, expected);
        assert_changed_lines(LF_ONLY, &out, &[1, 3, 5, 9]);
    }

    #[test]
    fn mixed_endings_unterminated_last_line_and_trailing_blank_lines() {
        let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\ns=-\r\nc=IN IP4 192.0.2.1\nt=0 0\r\nm=audio 5004 RTP/AVP 0";
        assert_eq!(parse(body).media_at(0).map(|m| m.formats), Some(&b"0"[..]));
        let out = rewritten(body, &plan(SBC4, &[Some(6000)], &[]));
        assert_eq!(
            out,
            "v=0\r\no=- 1 1 IN IP4 203.0.113.5\ns=-\r\nc=IN IP4 203.0.113.5\nt=0 0\r\nm=audio 6000 RTP/AVP 0"
        );
        let padded = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 0\r\n\r\n\r\n";
        let sdp = parse(padded);
        assert_eq!(sdp.media_at(0).map(|m| m.attributes().count()), Some(0));
        assert_eq!(
            rewritten(padded, &plan(SBC4, &[], &[])),
            "v=0\r\nc=IN IP4 203.0.113.5\r\nm=audio 5004 RTP/AVP 0\r\n\r\n\r\n"
        );
    }

    // --- Multicast and port counts (RFC 8866 §5.7, §5.14) ----------------------------------

    #[test]
    fn multicast_suffix_and_port_count() {
        let sdp = parse(MULTICAST_AND_PORT_COUNT);
        let c = sdp.connection().expect("c=");
        assert_eq!(c.address, b"233.252.0.1/127");
        assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::new(233, 252, 0, 1))));
        let m = sdp.media_at(0).expect("m=");
        assert_eq!((m.port, m.port_count), (51372, Some(2)));
        let out = rewritten(MULTICAST_AND_PORT_COUNT, &plan(SBC4, &[Some(40000)], &[]));
        let expected = concat!(
            "v=0\r\n",
            "o=jdoe 2890844526 2890842807 IN IP4 203.0.113.5\r\n",
            "s=SDP Seminar\r\n",
            "c=IN IP4 203.0.113.5\r\n",
            "t=2873397496 2873404696\r\n",
            "m=video 40000/2 RTP/AVP 99\r\n",
            "a=rtpmap:99 h263-1998/90000\r\n",
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn connection_ip_checks_family_and_network_type() {
        let c = |net: &'static [u8], ty: &'static [u8], addr: &'static [u8]| Connection {
            net_type: net,
            addr_type: ty,
            address: addr,
        };
        assert_eq!(c(b"IN", b"IP4", b"2001:db8::1").ip(), None);
        assert_eq!(c(b"IN", b"IP6", b"192.0.2.1").ip(), None);
        assert_eq!(c(b"TN", b"IP4", b"192.0.2.1").ip(), None);
        assert_eq!(c(b"IN", b"IP4", b"host.example.com").ip(), None);
        assert_eq!(
            c(b"in", b"ip4", b"192.0.2.1").ip(),
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert!(c(b"IN", b"IP6", b"::").is_unspecified());
    }

    #[test]
    fn fqdn_connection_is_rewritten_and_blanks_are_tolerated() {
        let body = "v=0\r\no=- 1 1 IN IP4 host.example.com\r\ns=-\r\nc=IN  IP4\thost.example.com \r\nt=0 0\r\nm=audio  5004  RTP/AVP  0 8 \r\n";
        let sdp = parse(body);
        assert_eq!(
            sdp.connection().map(|c| c.address),
            Some(&b"host.example.com"[..])
        );
        let m = sdp.media_at(0).expect("m=");
        assert_eq!(m.formats, b"0 8");
        assert_eq!(formats(&m), [&b"0"[..], b"8"]);
        let out = rewritten(body, &plan(SBC4, &[Some(6000)], &[]));
        assert_eq!(
            out,
            "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5 \r\nt=0 0\r\nm=audio  6000  RTP/AVP  0 8 \r\n"
        );
    }

    #[test]
    fn debug_output_is_readable() {
        let sdp = parse(ASTERISK);
        let text = format!("{sdp:?}");
        assert!(text.contains("session_name: \"Asterisk\""), "{text}");
        assert!(text.contains("address: \"192.0.2.10\""), "{text}");
        assert!(text.contains("kind: \"audio\""), "{text}");
    }

    // --- Errors -----------------------------------------------------------------------------

    fn err(body: &str) -> SdpError {
        let e = Sdp::parse(body.as_bytes()).expect_err("invalid SDP");
        let mut out = b"x".to_vec();
        assert_eq!(
            rewrite(body.as_bytes(), &plan(SBC4, &[Some(1)], &[]), &mut out),
            Err(e)
        );
        assert_eq!(out, b"x", "a failed rewrite appends nothing");
        e
    }

    const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";

    #[test]
    fn missing_or_wrong_version() {
        assert_eq!(err(""), SdpError::MissingVersion);
        assert_eq!(err("\r\nv=0\r\n"), SdpError::MissingVersion);
        assert_eq!(
            err("o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n"),
            SdpError::MissingVersion
        );
        assert_eq!(err("v=1\r\n"), SdpError::UnsupportedVersion);
        assert_eq!(
            err("v=0\r\nv=0\r\n"),
            SdpError::Line {
                line: 2,
                problem: "v= line after the first line"
            }
        );
    }

    #[test]
    fn media_port_out_of_range_or_not_a_number() {
        let problem = "port is not a number in 0..=65535";
        assert_eq!(
            err(&format!("{HEAD}m=audio 99999 RTP/AVP 0\r\n")),
            SdpError::BadMedia { line: 6, problem }
        );
        assert_eq!(
            err(&format!("{HEAD}m=audio 65536 RTP/AVP 0\r\n")),
            SdpError::BadMedia { line: 6, problem }
        );
        assert_eq!(
            err(&format!("{HEAD}m=audio abc RTP/AVP 0\r\n")),
            SdpError::BadMedia { line: 6, problem }
        );
        assert_eq!(
            err(&format!("{HEAD}m=audio 1234567890123 RTP/AVP 0\r\n")),
            SdpError::BadMedia { line: 6, problem }
        );
        assert_eq!(
            err(&format!("{HEAD}m=audio -1 RTP/AVP 0\r\n")),
            SdpError::BadMedia { line: 6, problem }
        );
        assert_eq!(
            err(&format!("{HEAD}m=audio 5004/0 RTP/AVP 0\r\n")),
            SdpError::BadMedia {
                line: 6,
                problem: "number of ports is not a number in 1..=65535"
            }
        );
        assert_eq!(
            err(&format!("{HEAD}m=audio 5004\r\n")),
            SdpError::BadMedia {
                line: 6,
                problem: "expected <media> <port> <proto> <fmt> ..."
            }
        );
        assert_eq!(
            parse(&format!("{HEAD}m=audio 65535 RTP/AVP 0\r\n"))
                .media_at(0)
                .map(|m| m.port),
            Some(65535)
        );
    }

    #[test]
    fn malformed_lines() {
        let problem = "expected <type>=<value> with a lowercase letter type";
        assert_eq!(
            err(&format!("{HEAD}this line has no equals sign\r\n")),
            SdpError::Line { line: 6, problem }
        );
        assert_eq!(
            err(&format!("{HEAD}A=uppercase\r\n")),
            SdpError::Line { line: 6, problem }
        );
        assert_eq!(
            err(&format!("{HEAD}ab=two letters\r\n")),
            SdpError::Line { line: 6, problem }
        );
        assert_eq!(
            err(&format!("{HEAD}=\r\n")),
            SdpError::Line { line: 6, problem }
        );
        assert_eq!(
            err(&format!("{HEAD}a=x\0y\r\n")),
            SdpError::Line {
                line: 6,
                problem: "NUL or CR inside a line"
            }
        );
        assert_eq!(
            err(&format!("{HEAD}a=x\ry\r\n")),
            SdpError::Line {
                line: 6,
                problem: "NUL or CR inside a line"
            }
        );
        assert_eq!(
            err(&format!("v=0\r\n\r\n{}", &HEAD[5..])),
            SdpError::Line {
                line: 2,
                problem: "blank line inside the description"
            }
        );
        assert_eq!(
            err(&format!("{HEAD}o=- 2 2 IN IP4 192.0.2.1\r\n")),
            SdpError::Line {
                line: 6,
                problem: "more than one o= line"
            }
        );
        assert_eq!(
            err(&format!("{HEAD}s=again\r\n")),
            SdpError::Line {
                line: 6,
                problem: "more than one s= line"
            }
        );
        assert_eq!(
            err(&format!(
                "{HEAD}m=audio 5004 RTP/AVP 0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
            )),
            SdpError::Line {
                line: 7,
                problem: "o= or s= line inside a media description"
            }
        );
        assert_eq!(
            err("v=0\r\no=a b c\r\n"),
            SdpError::BadOrigin {
                line: 2,
                problem:
                    "expected <username> <sess-id> <sess-version> <nettype> <addrtype> <address>"
            }
        );
    }

    #[test]
    fn connection_errors() {
        let problem = "expected <nettype> <addrtype> <connection-address>";
        assert_eq!(
            err("v=0\r\nc=IN IP4\r\n"),
            SdpError::BadConnection { line: 2, problem }
        );
        assert_eq!(
            err("v=0\r\nc=IN IP4 192.0.2.1 extra\r\n"),
            SdpError::BadConnection { line: 2, problem }
        );
        assert_eq!(
            err(&format!(
                "{HEAD}m=audio 5004 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.2\r\n"
            )),
            SdpError::Line {
                line: 8,
                problem: "more than one c= line at one level"
            }
        );
        assert_eq!(
            err(&format!("{HEAD}c=IN IP4 192.0.2.2\r\n")),
            SdpError::Line {
                line: 6,
                problem: "more than one c= line at one level"
            }
        );
        let no_c = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert_eq!(err(no_c), SdpError::NoConnectionForMedia { media: 1 });
    }

    #[test]
    fn rtcp_errors() {
        let at = |a: &str| err(&format!("{HEAD}m=audio 5004 RTP/AVP 0\r\na=rtcp{a}\r\n"));
        let port = "port is not a number in 0..=65535";
        assert_eq!(
            at(":abc"),
            SdpError::BadRtcp {
                line: 7,
                problem: port
            }
        );
        assert_eq!(
            at(":70000"),
            SdpError::BadRtcp {
                line: 7,
                problem: port
            }
        );
        assert_eq!(
            at(""),
            SdpError::BadRtcp {
                line: 7,
                problem: "missing port"
            }
        );
        assert_eq!(
            at(":"),
            SdpError::BadRtcp {
                line: 7,
                problem: "missing port"
            }
        );
        assert_eq!(
            at(":5005 IN IP4"),
            SdpError::BadRtcp {
                line: 7,
                problem: "incomplete connection address"
            }
        );
        assert_eq!(
            at(":5005 IN IP4 192.0.2.1 x"),
            SdpError::BadRtcp {
                line: 7,
                problem: "extra field after the connection address"
            }
        );
        // At session level RFC 3605 does not apply; the line is kept as an unknown attribute.
        let session = format!("{HEAD}a=rtcp:junk\r\nm=audio 5004 RTP/AVP 0\r\n");
        let out = rewritten(&session, &plan(SBC4, &[Some(6000)], &[]));
        assert!(out.contains("a=rtcp:junk\r\n"));
    }

    #[test]
    fn too_many_media() {
        let mut body = HEAD.to_string();
        for i in 0..MAX_MEDIA {
            body.push_str(&format!("m=audio {} RTP/AVP 0\r\n", 5000 + 2 * i));
        }
        assert_eq!(parse(&body).media_count(), MAX_MEDIA);
        body.push_str("m=audio 6000 RTP/AVP 0\r\n");
        assert_eq!(err(&body), SdpError::TooManyMedia);
    }

    #[test]
    fn error_messages_say_what_and_where() {
        let e = SdpError::BadMedia {
            line: 6,
            problem: "port is not a number in 0..=65535",
        };
        assert_eq!(
            e.to_string(),
            "line 6: m= line: port is not a number in 0..=65535"
        );
        assert_eq!(
            SdpError::TooManyMedia.to_string(),
            "more than 8 media descriptions"
        );
        assert_eq!(
            SdpError::NoConnectionForMedia { media: 1 }.to_string(),
            "media 1: no c= line at media or session level"
        );
    }

    // --- RFC 4475 / RFC 5118 fixtures -------------------------------------------------------

    /// The body of a SIP message: everything after the first blank line.
    fn fixture_body(message: &'static [u8]) -> &'static [u8] {
        let at = message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("blank line");
        &message[at + 4..]
    }

    const IPV6_IN_SDP: &[u8] = include_bytes!("../tests/data/ipv6-in-sdp.dat");
    const MULT_IP_IN_SDP: &[u8] = include_bytes!("../tests/data/mult-ip-in-sdp.dat");
    const IPV4_MAPPED_IPV6: &[u8] = include_bytes!("../tests/data/ipv4-mapped-ipv6.dat");
    const SDP01: &[u8] = include_bytes!("../tests/data/sdp01.dat");

    #[test]
    fn fixture_ipv6_in_sdp() {
        let sdp = Sdp::parse(fixture_body(IPV6_IN_SDP)).expect("RFC 5118 §4.6");
        let o = sdp.origin().expect("o=");
        assert_eq!(
            (o.username, o.addr_type, o.address),
            (&b"assistant"[..], &b"IP6"[..], &b"2001:db8::20"[..])
        );
        assert_eq!(sdp.session_name(), b"Live video feed for today's meeting");
        let ip6: IpAddr = "2001:db8::20".parse().unwrap();
        assert_eq!(sdp.connection().and_then(|c| c.ip()), Some(ip6));
        let media: Vec<(&[u8], u16)> = sdp.media().map(|m| (m.kind, m.port)).collect();
        assert_eq!(media, [(&b"audio"[..], 6000), (&b"video"[..], 6024)]);
        let out = rewritten(
            std::str::from_utf8(fixture_body(IPV6_IN_SDP)).unwrap(),
            &plan(SBC4, &[Some(40000), Some(40002)], &[]),
        );
        assert!(
            out.contains("o=assistant 971731711378798081 0 IN IP4 203.0.113.5\r\n"),
            "{out}"
        );
        assert!(out.contains("c=IN IP4 203.0.113.5\r\n"), "{out}");
        assert!(
            out.contains("m=video 40002 RTP/AVP 107\r\na=rtpmap:107 H263-1998/90000\r\n"),
            "{out}"
        );
    }

    #[test]
    fn fixture_mult_ip_in_sdp() {
        let sdp = Sdp::parse(fixture_body(MULT_IP_IN_SDP)).expect("RFC 5118 §4.8");
        assert_eq!(sdp.session_name(), b"");
        assert_eq!(sdp.connection(), None);
        assert_eq!(
            sdp.origin().map(|o| o.address),
            Some(&b"host.example.com"[..])
        );
        let ips: Vec<Option<IpAddr>> = sdp
            .media()
            .map(|m| m.connection.and_then(|c| c.ip()))
            .collect();
        assert_eq!(
            ips,
            [
                Some("192.0.2.1".parse().unwrap()),
                Some("2001:db8::1".parse().unwrap())
            ]
        );
        let out = rewritten(
            std::str::from_utf8(fixture_body(MULT_IP_IN_SDP)).unwrap(),
            &plan(SBC6, &[None, Some(40002)], &[]),
        );
        let expected = concat!(
            "v=0\r\n",
            "o=bob 280744730 28977631 IN IP6 2001:db8:ffff::5\r\n",
            "s=\r\n",
            "t=0 0\r\n",
            "m=audio 22334 RTP/AVP 0\r\n",
            "c=IN IP6 2001:db8:ffff::5\r\n",
            "m=video 40002 RTP/AVP 107\r\n",
            "c=IN IP6 2001:db8:ffff::5\r\n",
            "a=rtpmap:107 H263-1998/90000\r\n",
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn fixture_ipv4_mapped_ipv6() {
        let sdp = Sdp::parse(fixture_body(IPV4_MAPPED_IPV6)).expect("RFC 5118 §4.9");
        let ip = sdp.connection().and_then(|c| c.ip()).expect("c= IP");
        assert_eq!(ip, "::ffff:192.0.2.2".parse::<IpAddr>().unwrap());
        assert!(matches!(ip, IpAddr::V6(_)));
        assert_eq!(sdp.media_count(), 2);
    }

    #[test]
    fn fixture_sdp01() {
        let sdp = Sdp::parse(fixture_body(SDP01)).expect("RFC 4475 §3.3.15");
        assert_eq!(sdp.origin().map(|o| o.username), Some(&b"mhandley"[..]));
        let audio = sdp.media_at(0).expect("audio");
        assert_eq!((audio.port, audio.formats), (49217, &b"0 12"[..]));
        let video = sdp.media_at(1).expect("video");
        assert_eq!(video.attribute(b"rtpmap"), Some(Some(&b"31 LPC"[..])));
    }

    // --- Robustness -------------------------------------------------------------------------

    fn all_valid_bodies() -> Vec<&'static [u8]> {
        let mut v: Vec<&'static [u8]> = VALID.iter().map(|s| s.as_bytes()).collect();
        v.extend([IPV6_IN_SDP, MULT_IP_IN_SDP, IPV4_MAPPED_IPV6, SDP01].map(fixture_body));
        v
    }

    /// Parses and rewrites `body` and checks the invariants that hold for any input: no panic,
    /// rewrite succeeds exactly when parse does, a failed rewrite appends nothing, and a
    /// successful one re-parses with the same media and is a fixed point of itself.
    fn check_invariants(body: &[u8]) {
        let parsed = Sdp::parse(body);
        let ports = [Some(40000), None, Some(40004), Some(0)];
        let rtcp = [None, Some(40011)];
        for address in [SBC4, SBC6] {
            let rw = plan(address, &ports, &rtcp);
            let mut out = b"head".to_vec();
            let result = rewrite(body, &rw, &mut out);
            assert_eq!(
                result.is_ok(),
                parsed.is_ok(),
                "{:?}",
                body.escape_ascii().to_string()
            );
            let Ok(sdp) = &parsed else {
                assert_eq!(out, b"head");
                continue;
            };
            let again = Sdp::parse(&out[4..]).expect("rewritten SDP parses");
            assert_eq!(again.media_count(), sdp.media_count());
            for (a, b) in sdp.media().zip(again.media()) {
                assert_eq!((a.kind, a.proto, a.formats), (b.kind, b.proto, b.formats));
            }
            let mut twice = b"head".to_vec();
            rewrite(&out[4..], &rw, &mut twice).expect("rewrite of a rewrite");
            assert_eq!(twice, out, "rewrite is idempotent");
        }
    }

    #[test]
    fn no_panic_on_prefixes_and_single_byte_mutations() {
        for body in all_valid_bodies() {
            check_invariants(body);
            for n in 0..body.len() {
                check_invariants(&body[..n]);
            }
            let mut copy = body.to_vec();
            for i in 0..body.len() {
                for b in [0x00, 0xff, b' ', b'\n', b'='] {
                    copy[i] = b;
                    check_invariants(&copy);
                }
                copy[i] = body[i];
            }
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                "c=IN IP[46] [0-9a-f.:/]{0,20}",
                "c=[A-Z ]{0,8}",
                "o=[a-z-]{1,3} [0-9]{1,3} [0-9]{1,3} IN IP[46x] [0-9a-f.:]{1,15}( x)?",
                "m=(audio|video) [0-9]{0,6}(/[0-9]{1,2})? RTP/AVP( [0-9]{1,3}){0,3} ?",
                "a=rtcp(:[0-9]{0,6}( IN IP[46] [0-9a-f.:]{1,12})?)?",
                "a=(sendonly|recvonly|inactive|sendrecv|rtcp-mux)",
                "[a-z]=[ -~]{0,12}",
                "[ -~]{0,6}",
            ]
        }

        proptest! {
            #[test]
            fn sdp_like_bodies_keep_the_invariants(
                lines in proptest::collection::vec(line(), 0..24),
                crlf in any::<bool>(),
            ) {
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut body = format!("v=0{eol}");
                for l in &lines {
                    body.push_str(l);
                    body.push_str(eol);
                }
                check_invariants(body.as_bytes());
            }
        }
    }
}

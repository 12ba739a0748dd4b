//! The B2BUA's outbound INVITE, built from an inbound one with [`Writer`] and [`sdp::rewrite`].
//!
//! Shared with `#[path]` by `tests/carrier.rs` (is the result right?), `tests/no_alloc.rs` (is it
//! built without allocating?) and the workspace's `benches/sip_parse.rs` (how fast?), so all three
//! look at the same code. It is what sbcd's outbound leg will do, minus configuration:
//! * Request-URI: `sip:` + tech prefix + called number + `@` + carrier domain.
//! * New Via (our sent-by, a new branch, `;rport`), Max-Forwards one less (RFC 3261 §16.6 step 3).
//! * From: the caller's display name and user at our address, a new tag. To: the new
//!   Request-URI without tag. New Call-ID, CSeq and Contact (RFC 3261 §8.1.1: a new dialog).
//! * Copied as received: Allow, Supported, Content-Type, Session-Expires.
//! * Dropped by not being written: every other header, in particular Via, Record-Route, Contact,
//!   Remote-Party-ID, P-Asserted-Identity, Cisco-Guid and User-Agent, which name the inbound
//!   side's addresses, identity or equipment.
//! * SDP: address and ports replaced by ours ([`sdp::rewrite`] inside [`Writer::finish_with`]).

use std::net::{IpAddr, Ipv4Addr};

use sip_codec::sdp::{self, SdpError};
use sip_codec::{HeaderKind, Message, ParseError, Uri, Writer};

/// What the outbound leg writes in place of the inbound values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboundLeg<'a> {
    /// Tech prefix written before the called number.
    pub(crate) prefix: &'a [u8],
    /// The carrier's domain: host of the Request-URI and To.
    pub(crate) domain: &'a [u8],
    /// Our signalling address as a URI host (From, Contact).
    pub(crate) host: &'a [u8],
    /// Our Via sent-by (`host:port`).
    pub(crate) sent_by: &'a [u8],
    /// Our Contact hostport.
    pub(crate) contact: &'a [u8],
    /// The Via branch after the magic cookie.
    pub(crate) branch: &'a [u8],
    /// Our From tag.
    pub(crate) from_tag: &'a [u8],
    /// The new Call-ID.
    pub(crate) call_id: &'a [u8],
    /// The first CSeq of the new dialog.
    pub(crate) cseq: u32,
    /// Our media address.
    pub(crate) media_address: IpAddr,
    /// Our RTP port per `m=` line.
    pub(crate) ports: &'a [Option<u16>],
    /// Our RTCP port per `m=` line (only used where the offer has `a=rtcp`).
    pub(crate) rtcp_ports: &'a [Option<u16>],
}

/// The leg the tests and the bench use: sbcd at 127.0.0.1 towards `carrier.example.com`.
pub(crate) const LEG: OutboundLeg<'static> = OutboundLeg {
    prefix: b"1010",
    domain: b"carrier.example.com",
    host: b"127.0.0.1",
    sent_by: b"127.0.0.1:5060",
    contact: b"127.0.0.1:5060",
    branch: b"b2b-out-0001",
    from_tag: b"sbcd-7c41e9",
    call_id: b"sbcd-0f3e9a2c41b7@127.0.0.1",
    cseq: 1,
    media_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
    ports: &[Some(40000)],
    rtcp_ports: &[Some(40001)],
};

/// Why an outbound INVITE could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BuildError {
    /// A header the B2BUA reads is missing or malformed.
    Parse(ParseError),
    /// The Request-URI is not a SIP URI with a user part (no number to dial).
    NoNumber,
    /// Max-Forwards reached 0 (RFC 3261 §16.3 step 2: answer 483).
    TooManyHops,
    /// The offer could not be rewritten (answer 488).
    Sdp(SdpError),
}

impl From<ParseError> for BuildError {
    fn from(e: ParseError) -> Self {
        Self::Parse(e)
    }
}

/// Appends the outbound INVITE for `inbound` to `out`; returns its length. Parses the SDP offer
/// (if any) and then calls [`build_outbound_offer`].
///
/// Allocates nothing when `out` has room for the message (about the inbound size plus 64 bytes
/// for the SDP rewrite's reserve).
pub(crate) fn build_outbound(
    inbound: &Message<'_, '_>,
    leg: &OutboundLeg<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, BuildError> {
    if inbound.body.is_empty() {
        return build_outbound_offer(inbound, None, leg, out);
    }
    let offer = sdp::Sdp::parse(inbound.body).map_err(BuildError::Sdp)?;
    build_outbound_offer(inbound, Some(&offer), leg, out)
}

/// [`build_outbound`] for an offer the B2BUA has already parsed (it must, to count the media
/// streams and allocate ports before it can write the other leg's SDP).
pub(crate) fn build_outbound_offer(
    inbound: &Message<'_, '_>,
    offer: Option<&sdp::Sdp<'_>>,
    leg: &OutboundLeg<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, BuildError> {
    let ruri = Uri::parse(inbound.request_uri().ok_or(BuildError::NoNumber)?)?;
    let number = ruri
        .as_sip()
        .and_then(|u| u.user)
        .ok_or(BuildError::NoNumber)?;
    let number = number.strip_prefix(b"+").unwrap_or(number);
    let max_forwards = match inbound.max_forwards()? {
        Some(0) => return Err(BuildError::TooManyHops),
        Some(n) => n - 1,
        None => 69,
    };
    let from = inbound.from()?;
    let caller_uri = from.parse_uri()?;
    let caller = caller_uri
        .as_sip()
        .and_then(|u| u.user)
        .unwrap_or(b"anonymous");
    let to = inbound.to()?;

    let start = out.len();
    let mut w = Writer::new(out);
    w.request_line(b"INVITE", &[b"sip:", leg.prefix, number, b"@", leg.domain])
        .via(b"UDP", leg.sent_by, &[b"z9hG4bK", leg.branch], true)
        .header_u32(HeaderKind::MaxForwards, u32::from(max_forwards))
        .name_addr_parts(
            HeaderKind::From,
            from.display,
            &[b"sip:", caller, b"@", leg.host],
            &from,
            Some(leg.from_tag),
        )
        .name_addr_parts(
            HeaderKind::To,
            None,
            &[b"sip:", leg.prefix, number, b"@", leg.domain],
            &to,
            None,
        )
        .header(HeaderKind::CallId, leg.call_id)
        .cseq(leg.cseq, b"INVITE")
        .header_parts(b"Contact", &[b"<sip:", caller, b"@", leg.contact, b">"])
        .copy_all(inbound, |h| {
            matches!(
                h.kind,
                HeaderKind::Allow
                    | HeaderKind::Supported
                    | HeaderKind::ContentType
                    | HeaderKind::SessionExpires
            )
        });
    let plan = sdp::Rewrite {
        address: leg.media_address,
        ports: leg.ports,
        rtcp_ports: leg.rtcp_ports,
    };
    let (len, rewritten) = w.finish_with(|buf| match offer {
        None => Ok(()),
        Some(offer) => offer.rewrite(&plan, buf),
    });
    if let Err(e) = rewritten {
        out.truncate(start);
        return Err(BuildError::Sdp(e));
    }
    Ok(len)
}

//! What a datagram on a media port is, from its first bytes, without copying it.
//!
//! - RFC 7983 §7 demultiplexes by the first byte: 0–3 STUN, 20–63 DTLS, 128–191 RTP/RTCP.
//! - RFC 5761 §4 tells RTCP from RTP on one port (rtcp-mux) by the second byte: RTCP packet
//!   types 192–223 fall in the range RTP payload types 64–95 with the marker bit set, which
//!   no RTP session uses.
//! - RFC 3550 §5.1: an RTP header is 12 bytes, then 4 per CSRC, then an optional extension
//!   (4 bytes + 4 × its length); padding (P bit) is counted in the last byte.

/// The fixed RTP header fields sbcd reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// The marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Bytes before the payload: fixed header, CSRCs, extension.
    pub header_len: usize,
}

/// A classified datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// RTP with a well-formed header.
    Rtp(RtpHeader),
    /// RTCP (compound packets start with SR or RR, but any RTCP type is accepted).
    Rtcp {
        /// The first packet's type (200 SR, 201 RR, 202 SDES, 203 BYE, 204 APP…).
        packet_type: u8,
        /// The sender's SSRC.
        ssrc: u32,
    },
    /// STUN (ICE connectivity checks, RFC 7983).
    Stun,
    /// DTLS (DTLS-SRTP key exchange, RFC 7983).
    Dtls,
    /// Version 2 but too short or inconsistent, or anything else: not forwarded.
    Invalid,
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn be32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(i)?,
        *b.get(i + 1)?,
        *b.get(i + 2)?,
        *b.get(i + 3)?,
    ]))
}

/// Classifies one datagram (see the module docs).
#[must_use]
pub fn classify(b: &[u8]) -> Packet {
    let Some(&first) = b.first() else {
        return Packet::Invalid;
    };
    match first {
        0..=3 => return Packet::Stun,
        20..=63 => return Packet::Dtls,
        128..=191 => {}
        _ => return Packet::Invalid,
    }
    let Some(&second) = b.get(1) else {
        return Packet::Invalid;
    };
    if (192..=223).contains(&second) {
        // RTCP: at least the common header and the sender's SSRC.
        return match be32(b, 4) {
            Some(ssrc) => Packet::Rtcp {
                packet_type: second,
                ssrc,
            },
            None => Packet::Invalid,
        };
    }
    rtp(b).map_or(Packet::Invalid, Packet::Rtp)
}

fn rtp(b: &[u8]) -> Option<RtpHeader> {
    let first = b[0];
    let csrc = usize::from(first & 0x0f);
    let mut len = 12 + 4 * csrc;
    if first & 0x10 != 0 {
        let words = usize::from(be16(b, len + 2)?);
        len += 4 + 4 * words;
    }
    let padding = if first & 0x20 != 0 {
        usize::from(*b.last()?)
    } else {
        0
    };
    if b.len() < len + padding {
        return None;
    }
    Some(RtpHeader {
        payload_type: b[1] & 0x7f,
        marker: b[1] & 0x80 != 0,
        seq: be16(b, 2)?,
        timestamp: be32(b, 4)?,
        ssrc: be32(b, 8)?,
        header_len: len,
    })
}

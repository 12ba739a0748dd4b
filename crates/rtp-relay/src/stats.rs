//! Packet and byte counters of one stream direction. Plain integers: each is owned by the one
//! forwarding loop that counts it, and published from there now and then.

use crate::latch::Verdict;

/// Why a datagram was not forwarded (`sbc_rtp_packets_dropped_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Discard {
    /// From a source that is not the leg's (neither its SDP address nor where it latched).
    Foreign,
    /// From a source no reply can go to (port 0, broadcast, multicast), or not RTP/RTCP.
    Invalid,
    /// The other leg has no address yet (no SDP, nothing latched).
    NoDestination,
    /// No call uses the port (an ended call's stragglers, a scanner).
    NoSession,
    /// The kernel refused the send (socket buffer full, unreachable).
    SendFailed,
}

impl Discard {
    /// Every reason, in the order of [`Discard::index`].
    pub const ALL: [Self; 5] = [
        Self::Foreign,
        Self::Invalid,
        Self::NoDestination,
        Self::NoSession,
        Self::SendFailed,
    ];

    /// The metric label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Foreign => "foreign_source",
            Self::Invalid => "invalid",
            Self::NoDestination => "no_destination",
            Self::NoSession => "no_session",
            Self::SendFailed => "send_failed",
        }
    }

    /// Position in [`Discard::ALL`] (for counter arrays).
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Counters of the packets one leg sent to sbcd on one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Direction {
    /// Packets forwarded to the other leg.
    pub packets: u64,
    /// Their bytes (UDP payload).
    pub bytes: u64,
    /// RTCP packets among them.
    pub rtcp: u64,
    /// Dropped: from a source that is not the leg's.
    pub foreign: u64,
    /// Dropped: from a source no reply can go to, or not RTP/RTCP.
    pub invalid: u64,
    /// Dropped: the other leg has no address yet (no SDP, nothing latched).
    pub no_destination: u64,
}

impl Direction {
    /// Counts a packet of `len` bytes after its latch verdict; `rtcp` says what it was, and
    /// `routable` whether the other leg has an address to forward it to.
    pub fn count(&mut self, verdict: Verdict, len: usize, rtcp: bool, routable: bool) {
        match verdict {
            Verdict::Forward | Verdict::Latched if !routable => self.no_destination += 1,
            Verdict::Forward | Verdict::Latched => {
                self.packets += 1;
                self.bytes += len as u64;
                self.rtcp += u64::from(rtcp);
            }
            Verdict::Foreign => self.foreign += 1,
            Verdict::BadSource => self.invalid += 1,
        }
    }

    /// Everything dropped.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.foreign + self.invalid + self.no_destination
    }

    /// Adds `other` (summing the directions of several streams).
    pub fn add(&mut self, other: &Self) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.rtcp += other.rtcp;
        self.foreign += other.foreign;
        self.invalid += other.invalid;
        self.no_destination += other.no_destination;
    }
}

//! Packet and byte counters of one stream direction. Plain integers: each is owned by the one
//! forwarding loop that counts it, and published from there now and then.

use crate::latch::Verdict;

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
    /// Counts a packet of `len` bytes after its latch verdict; `rtcp` says what it was.
    pub fn count(&mut self, verdict: Verdict, len: usize, rtcp: bool) {
        match verdict {
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

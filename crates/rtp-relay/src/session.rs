//! One relayed media component (the RTP of one `m=` line, or its RTCP when not muxed) between
//! the two legs of a call, without I/O: a packet from one leg either goes to the other leg's
//! current address, or is dropped, and is counted either way.

use std::net::SocketAddr;
use std::time::Instant;

use crate::latch::{Latch, LatchPolicy, Verdict};
use crate::packet::{classify, Packet};
use crate::stats::{Direction, Discard};

/// A leg of the call: A, the inbound leg (the caller's side), or B, the outbound leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The inbound leg.
    A,
    /// The outbound leg.
    B,
}

impl Leg {
    /// 0 for A, 1 for B.
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Self::A => 0,
            Self::B => 1,
        }
    }

    /// The other leg.
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// What a leg's SDP says and how far to trust packet sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Address and port from the leg's SDP (None: none yet, or `c=0.0.0.0`).
    pub expected: Option<SocketAddr>,
    /// Latching policy of the leg's trunk.
    pub policy: LatchPolicy,
}

#[derive(Debug, Clone)]
struct SideState {
    latch: Latch,
    /// Packets this leg sent to sbcd.
    rx: Direction,
    last_rx: Option<Instant>,
}

/// One component between the two legs.
#[derive(Debug, Clone)]
pub struct Component {
    sides: [SideState; 2],
}

impl Component {
    /// A component whose legs are described by `a` and `b`, signalled at `now`.
    #[must_use]
    pub fn new(now: Instant, a: Endpoint, b: Endpoint) -> Self {
        let side = |e: Endpoint| SideState {
            latch: Latch::new(e.policy, e.expected, now),
            rx: Direction::default(),
            last_rx: None,
        };
        Self {
            sides: [side(a), side(b)],
        }
    }

    /// A new SDP from `leg` (re-INVITE, UPDATE, the answer after the offer), with the
    /// latching policy of its trunk.
    pub fn set_expected(
        &mut self,
        now: Instant,
        leg: Leg,
        expected: Option<SocketAddr>,
        policy: LatchPolicy,
    ) {
        let latch = &mut self.sides[leg.index()].latch;
        latch.set_policy(policy);
        latch.set_expected(expected, now);
    }

    /// A datagram arrived from `leg` at `src`: where to send it (the other leg's address), or
    /// why it is dropped. Only RTP and RTCP are relayed.
    pub fn on_packet(
        &mut self,
        now: Instant,
        leg: Leg,
        src: SocketAddr,
        data: &[u8],
    ) -> Result<SocketAddr, Discard> {
        let (ssrc, rtcp) = match classify(data) {
            Packet::Rtp(h) => (Some(h.ssrc), false),
            Packet::Rtcp { ssrc, .. } => (Some(ssrc), true),
            Packet::Stun | Packet::Dtls | Packet::Invalid => {
                self.sides[leg.index()].rx.invalid += 1;
                return Err(Discard::Invalid);
            }
        };
        let dest = self.sides[leg.other().index()].latch.destination();
        let side = &mut self.sides[leg.index()];
        let verdict = side.latch.on_packet(now, src, ssrc);
        side.rx.count(verdict, data.len(), rtcp, dest.is_some());
        match verdict {
            Verdict::Forward | Verdict::Latched => {
                side.last_rx = Some(now);
                dest.ok_or(Discard::NoDestination)
            }
            Verdict::Foreign => Err(Discard::Foreign),
            Verdict::BadSource => Err(Discard::Invalid),
        }
    }

    /// Counters of what `leg` sent.
    #[must_use]
    pub fn received_from(&self, leg: Leg) -> Direction {
        self.sides[leg.index()].rx
    }

    /// The last time `leg` sent a packet that was accepted.
    #[must_use]
    pub fn last_from(&self, leg: Leg) -> Option<Instant> {
        self.sides[leg.index()].last_rx
    }

    /// Where `leg`'s media goes now.
    #[must_use]
    pub fn destination(&self, leg: Leg) -> Option<SocketAddr> {
        self.sides[leg.index()].latch.destination()
    }
}

//! Where to send one leg's media (symmetric RTP, "latching").
//!
//! A leg's SDP names where it wants media; behind NAT that address is private and useless, so
//! sbcd sends to where the leg's packets actually come from, once it has seen them. Which
//! sources may decide:
//! - [`LatchPolicy::Strict`]: only packets from the IP address in the SDP (any port: a NAT or
//!   a phone may pick another). The default.
//! - [`LatchPolicy::AnySource`]: during the first seconds after the SDP, packets from any
//!   address (the per-trunk option for endpoints behind NAT); afterwards as strict.
//!
//! Once latched, packets from other sources are dropped and counted, except that a new SSRC
//! after a quiet gap (the endpoint restarted its stream, or its NAT mapping moved) may
//! re-latch if its source passes the same admission rule. Nothing ever latches to an address
//! no reply can go to (port 0, unspecified, broadcast, multicast): UDP sources can be spoofed.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A quiet gap after which a new SSRC may move the latch.
pub const RELATCH_GAP: Duration = Duration::from_millis(500);

/// Who may decide where a leg's media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatchPolicy {
    /// Only the IP address of the SDP.
    #[default]
    Strict,
    /// Any source during this long after the SDP, then as strict.
    AnySource(Duration),
}

/// What to do with a packet that arrived from a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it; the leg's address is unchanged.
    Forward,
    /// Forward it; the leg's media now goes to its source.
    Latched,
    /// Drop it: the source is not the leg's.
    Foreign,
    /// Drop it: no reply could go to that source.
    BadSource,
}

/// The latch of one leg of one stream.
#[derive(Debug, Clone)]
pub struct Latch {
    policy: LatchPolicy,
    expected: Option<SocketAddr>,
    since: Instant,
    current: Option<SocketAddr>,
    ssrc: Option<u32>,
    last: Option<Instant>,
}

/// Can a reply go to `a`?
#[must_use]
pub fn is_reachable(a: SocketAddr) -> bool {
    if a.port() == 0 {
        return false;
    }
    match a.ip().to_canonical() {
        IpAddr::V4(ip) => !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast()),
        IpAddr::V6(ip) => !(ip.is_unspecified() || ip.is_multicast()),
    }
}

impl Latch {
    /// A latch for a leg whose SDP names `expected` (None: `c=` 0.0.0.0 or no usable address),
    /// signalled at `now`.
    #[must_use]
    pub fn new(policy: LatchPolicy, expected: Option<SocketAddr>, now: Instant) -> Self {
        Self {
            policy,
            expected: expected.filter(|a| is_reachable(*a)),
            since: now,
            current: None,
            ssrc: None,
            last: None,
        }
    }

    /// A new SDP from the leg (re-INVITE, UPDATE): its address is the default again, and the
    /// admission window (if any) opens again.
    pub fn set_expected(&mut self, expected: Option<SocketAddr>, now: Instant) {
        let expected = expected.filter(|a| is_reachable(*a));
        if expected != self.expected {
            self.expected = expected;
            self.current = None;
            self.ssrc = None;
        }
        self.since = now;
    }

    /// The trunk's policy (it is known once the leg's trunk is, e.g. after routing).
    pub fn set_policy(&mut self, policy: LatchPolicy) {
        self.policy = policy;
    }

    /// Where to send this leg's media: the latched source, else the SDP's address.
    #[must_use]
    pub fn destination(&self) -> Option<SocketAddr> {
        self.current.or(self.expected)
    }

    /// Whether a packet from `src` may decide where the leg's media goes.
    fn admits(&self, src: SocketAddr, now: Instant) -> bool {
        let same_ip = self
            .expected
            .is_some_and(|e| e.ip().to_canonical() == src.ip().to_canonical());
        match self.policy {
            LatchPolicy::Strict => same_ip,
            LatchPolicy::AnySource(window) => {
                same_ip || now.saturating_duration_since(self.since) <= window
            }
        }
    }

    /// A packet arrived from the leg at `src`, with SSRC `ssrc` (RTP and RTCP carry one).
    pub fn on_packet(&mut self, now: Instant, src: SocketAddr, ssrc: Option<u32>) -> Verdict {
        if !is_reachable(src) {
            return Verdict::BadSource;
        }
        if self.current == Some(src) {
            if ssrc.is_some() {
                self.ssrc = ssrc;
            }
            self.last = Some(now);
            return Verdict::Forward;
        }
        let may_move = match self.current {
            None => true,
            // A new stream after a quiet gap: an endpoint that restarted, or a NAT mapping
            // that moved. The same stream from elsewhere is someone else.
            Some(_) => {
                let quiet = self
                    .last
                    .is_none_or(|t| now.saturating_duration_since(t) >= RELATCH_GAP);
                quiet && ssrc.is_some() && ssrc != self.ssrc
            }
        };
        if may_move && self.admits(src, now) {
            self.current = Some(src);
            self.ssrc = ssrc;
            self.last = Some(now);
            return Verdict::Latched;
        }
        Verdict::Foreign
    }
}

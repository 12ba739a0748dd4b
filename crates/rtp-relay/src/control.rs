//! The control API between the signalling (which decides what to relay) and the data plane
//! (which relays it): plain values, so that the sans-IO B2BUA can produce and consume them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::latch::LatchPolicy;
use crate::session::{Endpoint, Leg};
use crate::stats::Direction;

/// Identifies one component (chosen by the control plane, unique while open).
pub type ComponentId = u64;

/// What the control plane asks a worker to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Relay between local RTP-range port `ports[0]` (facing leg A) and `ports[1]` (facing
    /// leg B). `idle`: report [`Event::Idle`] when neither leg sent anything for this long.
    Open {
        /// The component.
        id: ComponentId,
        /// Local ports facing A and B (the same worker's).
        ports: [u16; 2],
        /// Leg A's endpoint.
        a: Endpoint,
        /// Leg B's endpoint.
        b: Endpoint,
        /// Idle limit, or None.
        idle: Option<Duration>,
    },
    /// A new SDP address for one leg, and a new idle limit (hold has a longer one).
    Update {
        /// The component.
        id: ComponentId,
        /// Its port facing leg A (names the worker).
        port: u16,
        /// Whose SDP changed.
        leg: Leg,
        /// Its address now.
        expected: Option<SocketAddr>,
        /// Its trunk's latching policy.
        policy: LatchPolicy,
        /// Idle limit now.
        idle: Option<Duration>,
    },
    /// Stop relaying; the worker answers with [`Event::Closed`].
    Close {
        /// The component.
        id: ComponentId,
        /// Its port facing leg A (names the worker).
        port: u16,
    },
}

impl Command {
    /// The component's port facing leg A: the worker that owns it runs the component.
    #[must_use]
    pub fn port(&self) -> u16 {
        match self {
            Self::Open { ports, .. } => ports[0],
            Self::Update { port, .. } | Self::Close { port, .. } => *port,
        }
    }
}

/// What a worker tells the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Neither leg sent an accepted packet for the component's idle limit.
    Idle {
        /// The component.
        id: ComponentId,
    },
    /// The component was closed; its final counters (what A sent, what B sent).
    Closed {
        /// The component.
        id: ComponentId,
        /// From A (forwarded to B) and from B (forwarded to A).
        from: [Direction; 2],
    },
}

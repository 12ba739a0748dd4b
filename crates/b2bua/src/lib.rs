//! `b2bua`: the back-to-back user agent core of sbcd, sans-IO.
//!
//! A call is an **inbound leg** (side A: sbcd is the UAS of the caller's INVITE) and an
//! **outbound leg** (side B: sbcd is the UAC of a new INVITE to the chosen trunk). Each leg has
//! its own Call-ID, tags, CSeq space, Via, Contact and route set (RFC 3261 §12); only a short
//! whitelist of headers and the body cross from one leg to the other, so no Via, Record-Route,
//! Contact, Call-ID or address of one side reaches the other (topology hiding).
//!
//! # Driving contract
//! Calls live in a [`Shard`]; the daemon runs one per core. Like `sip-txn`, a shard holds no
//! socket, clock or task: feed it [`Shard::handle_message`], [`Shard::handle_timeout`] and
//! [`Shard::handle_transport_error`] with the current time, then drain
//! [`Shard::poll_transmit`] and [`Shard::poll_event`], then sleep until
//! [`Shard::poll_timeout`]. [`shard_of`] tells which shard a received message belongs to,
//! from identifiers sbcd wrote itself (module [`ids`]), without any shared table.
//!
//! # RFC map
//! - §8.2 / §16.3 request checks: [`sip_codec::Message::validate`], Max-Forwards (483).
//! - §12 dialogs: [`leg`]. §13 INVITE, §13.3.1.4 2xx retransmission until the ACK: `call`.
//! - §9 CANCEL, §15 BYE, §14 re-INVITE (491 on glare), RFC 3311 UPDATE, RFC 6086 INFO,
//!   RFC 3262 PRACK (sbcd acknowledges reliable provisionals on the outbound leg itself).
//! - §17 transactions: `sip-txn`; §18.2.1 / RFC 3581 `received` and `rport`: `build`.
//! - §22 digest: `auth` (challenges a trunk's requests, answers a trunk's challenges, with
//!   [`trunks`]); §10.3 registrar for a trunk's PBX and §10.2 registration on behalf: `shard`
//!   and `agents`; RFC 3263 §4.2 server location happens in the daemon (`Routing::new`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod agents;
mod auth;
mod build;
mod call;
pub mod counters;
pub mod ids;
mod leg;
mod media;
mod routing;
mod shard;

use std::net::SocketAddr;

pub use counters::SipCounters;
pub use ids::Side;
pub use media::{MediaSetup, MediaTotals};
pub use routing::{Locals, Routing};
pub use sbc_config::net::Transport;
pub use shard::{shard_of, Shard, ShardOptions, Stats};
pub use sip_txn::Timers;

/// A message received on a socket.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The message bytes (one datagram, or one frame of a stream).
    pub data: &'a [u8],
    /// Where it came from.
    pub source: SocketAddr,
    /// The transport it came on.
    pub transport: Transport,
    /// The connection it came on (TCP, TLS), so that responses go back on it (§18.2.2).
    pub conn: Option<u64>,
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// The whole message. Retransmissions share the buffer.
    pub data: bytes::Bytes,
    /// Where to.
    pub dest: SocketAddr,
    /// On which transport.
    pub transport: Transport,
    /// The connection to use if it is still open (responses on streams, §18.2.2).
    pub conn: Option<u64>,
    /// Passed back in [`Shard::handle_transport_error`] when the send fails.
    pub token: u64,
}

/// Something the daemon counts or logs: call starts and ends, dropped messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A call was accepted from a trunk and routed.
    CallStarted {
        /// The inbound trunk's name.
        trunk: String,
    },
    /// The called trunk answered: the caller got the 2xx (`sbc_call_setup_seconds{trunk}`).
    CallAnswered {
        /// The outbound trunk that answered.
        trunk: String,
        /// From the caller's INVITE to the 2xx relayed to it (post-dial delay and ringing).
        setup: std::time::Duration,
    },
    /// A new call was refused because its trunk is at `inbound.max_calls` or
    /// `inbound.max_cps` (503; `sbc_calls_refused_total{trunk,reason}`).
    CallRefused {
        /// The calling trunk.
        trunk: String,
        /// `max_calls` or `max_cps`.
        reason: &'static str,
    },
    /// A call ended.
    CallEnded {
        /// The inbound trunk's name.
        trunk: String,
        /// The outbound trunk it was last sent to, if any.
        to: Option<String>,
        /// How it ended.
        result: CallResult,
    },
    /// A request failed a trunk's inbound check, or its digest credentials were refused
    /// (`sbc_trunk_auth_failures_total{trunk,mode}`).
    AuthFailed {
        /// The trunk whose check failed; None when no trunk's index matched at all.
        trunk: Option<String>,
        /// The check: `allow`, `domain`, `header`, `prefix`, `digest`, `unmatched` (no trunk
        /// matched at all), `outbound` (a challenge sbcd could not answer).
        mode: &'static str,
    },
    /// A request was refused with 403 because no trunk accepted it or its credentials were
    /// wrong: a failed authentication of its source (`[limits]
    /// source_auth_failures_per_min` blocks a source that collects too many).
    SourceRefused {
        /// The source address of the request.
        source: std::net::IpAddr,
        /// This refusal blocked the source (`[limits]`; the shard counted it at once).
        blocked: bool,
    },
    /// A registration on behalf changed state (`sbc_registration_up{trunk}`, `/status`).
    Registration {
        /// The trunk.
        trunk: String,
        /// Where it stands now.
        status: trunks::register::Status,
    },
    /// A call's media ended: what each leg sent, over all its streams, once every relay
    /// component reported (`sbc_trunk_rtp_packets_total` and `sbc_trunk_rtp_bytes_total`;
    /// the relay's own live counters are `sbc_rtp_*`).
    MediaEnded(MediaTotals),
    /// An OPTIONS probe found a trunk down, or up again.
    TrunkHealth {
        /// The trunk.
        trunk: String,
        /// Answering.
        up: bool,
        /// The status that decided (408: no answer).
        status: u16,
    },
    /// A message was dropped without a reply.
    Dropped {
        /// Why.
        reason: DropReason,
    },
}

/// How a call ended (the `result` label of `sbc_calls_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// Answered, then hung up by either side.
    Answered,
    /// The caller cancelled before the answer.
    Cancelled,
    /// Every trunk failed, or the call was refused; the status code sent to the caller. A
    /// callee's 486 Busy Here or 600 Busy Everywhere is labelled `busy`, not `failed`: a busy
    /// callee is the network working (ITU-T E.425 counts it towards NER), a failure is not.
    Failed(u16),
    /// Torn down by sbcd: no ACK for the 2xx (§13.3.1.4), or a dead leg.
    Timeout,
    /// Torn down by sbcd: no media on either leg for the idle limit.
    MediaTimeout,
}

impl CallResult {
    /// A bounded label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Cancelled => "cancelled",
            Self::Failed(486 | 600) => "busy",
            Self::Failed(_) => "failed",
            Self::Timeout => "timeout",
            Self::MediaTimeout => "media_timeout",
        }
    }
}

/// Why a message was dropped (the `reason` label of `sbc_sip_messages_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// It does not parse, and is not a request one could answer.
    Malformed,
    /// A response that matches no transaction of ours.
    StrayResponse,
    /// An ACK that matches nothing.
    StrayAck,
    /// A request from a source that belongs to no trunk, not answered (ACK).
    UnknownSource,
}

impl DropReason {
    /// Every reason.
    pub const ALL: [Self; 4] = [
        Self::Malformed,
        Self::StrayResponse,
        Self::StrayAck,
        Self::UnknownSource,
    ];

    /// A bounded label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::StrayResponse => "stray_response",
            Self::StrayAck => "stray_ack",
            Self::UnknownSource => "unknown_source",
        }
    }
}

//! `sip-txn`: the RFC 3261 §17 transaction layer of sbcd, sans-IO.
//!
//! # Driving contract
//! A transaction holds no socket, clock or task. The caller (a shard of the daemon, or a test)
//! feeds it inputs through `handle_*` methods with the current time, then drains
//! `poll_output` until it returns `None`, then asks `poll_timeout` when to call
//! `handle_timeout` next. Time must not go backwards between calls. This makes every timer of
//! §17 (A–K) testable without a runtime: a test jumps `now` to the next deadline.
//!
//! Retransmissions are absorbed here on unreliable transports (UDP) and never happen on
//! reliable ones (TCP, TLS), as §17.1.1.2 and §17.1.2.2 require.
//!
//! # Matching
//! Which transaction a message belongs to is the caller's lookup: a [`ServerKey`] from a request
//! (§17.2.3, RFC 2543 fallback included) or a [`ClientKey`] from a response (§17.1.3), found
//! without allocating in a [`TxnTable`] of stored keys. A request that matches nothing creates a
//! server transaction, except an ACK, which acknowledges a 2xx and goes to the TU (§17.2.3); a
//! CANCEL gets its own transaction and the TU finds the INVITE it targets with
//! [`ServerKey::invite_of_cancel`] (§9.2). A response that matches nothing goes to the TU core
//! (§18.1.2).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client_invite;
mod client_non_invite;
mod key;
mod machine;
mod outbox;
mod server_invite;
mod server_non_invite;
mod timer;

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientState};
pub use key::{ClientKey, KeyError, OwnedClientKey, OwnedServerKey, ServerKey, TableKey, TxnTable};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerState};
pub use timer::{Timer, TimerTable, Timers};

/// What a transaction asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Send the request (again) on its transport.
    Transmit,
    /// Pass this response (its status code) up to the transaction user.
    Response(u16),
    /// Send the ACK for the non-2xx final response just received (§17.1.1.3): the INVITE's
    /// Request-URI, Call-ID, From, CSeq number and top Via (same branch), the response's To.
    Ack,
    /// No final response in time (Timer B or F): the TU acts as if it got a 408 (§8.1.3.1).
    TimedOut,
    /// The transport reported an error: the TU acts as if it got a 503 (§8.1.3.1).
    TransportError,
    /// The transaction is over; the caller drops it.
    Terminated,
}

/// Is the transport reliable (TCP, TLS, SCTP) or not (UDP)? It decides whether the transaction
/// retransmits and how long it lingers after completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// UDP: retransmit, and absorb the peer's retransmissions for a while after completing.
    Unreliable,
    /// TCP, TLS, SCTP: the transport delivers; no retransmission, no lingering.
    Reliable,
}

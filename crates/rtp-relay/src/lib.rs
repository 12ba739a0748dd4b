//! `rtp-relay`: sbcd anchors media (DESIGN.md): both legs send RTP to sbcd, which forwards it,
//! so neither side learns the other's address and endpoints behind NAT work.
//!
//! This crate's core is pure, like the signalling crates (no socket, thread or clock; time is
//! passed in):
//! - [`ports`]: the RTP/RTCP port pairs of `[media]` (RFC 3550 §11: RTP on an even port, RTCP
//!   on the next), allocated per stream and leg, reused last.
//! - [`packet`]: what a datagram is (RTP, RTCP, or something else such as STUN) from its first
//!   bytes (RFC 3550 §5.1, RFC 5761 §4, RFC 7983).
//! - [`latch`]: where to send a leg's media: the address in its SDP until the first packets
//!   from an acceptable source decide (symmetric RTP), never to a source that policy refuses.
//! - [`session`]: one relayed component between the two legs: where a packet goes.
//! - [`control`]: the commands and events between the signalling and the data plane.
//! - [`stats`]: packet and byte counters per direction.
//!
//! The data plane, `fwd` (feature `io`), runs the forwarding threads: batched receive and
//! send, a per-port table read without locks, control updates over bounded channels.
// Only the data plane (`fwd`, feature `io`) calls the kernel directly (recvmmsg, sendmmsg,
// epoll), with a SAFETY comment on each block; everything else is safe code.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod control;
#[cfg(feature = "io")]
pub mod fwd;
pub mod latch;
pub mod packet;
pub mod ports;
pub mod session;
pub mod stats;

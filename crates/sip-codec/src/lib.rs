//! `sip-codec`: a zero-copy SIP (RFC 3261) and SDP (RFC 8866) codec for sbcd.
//!
//! # Driving contract
//! * [`parse`] takes one complete message (a UDP datagram, or a frame that [`frame`] cut from a
//!   TCP/TLS stream) and fills the caller's header array with borrowed [`Header`]s. Nothing is
//!   copied and nothing is allocated: names, values and the body are slices of the input.
//! * Typed views ([`Via`], [`NameAddr`], [`CSeq`], [`Challenge`]…) are parsed on demand from a
//!   header value, again without allocating. [`Message::validate`] runs the checks that RFC 3261
//!   §8.2 / §16.3 ask of every element before it acts on a message (mandatory headers present and
//!   single, scalars in range, CSeq method matching) and is what turns a message into a 400.
//! * [`frame`] finds message boundaries in a growing stream buffer ([`Status::Partial`] means "read
//!   more", never an error). The caller sets every limit in [`Limits`].
//! * [`Writer`] builds the message for the other leg into one `Vec<u8>`: pass-through headers are
//!   copied as bytes, changed ones written from their parts, never re-parsed.
//! * [`sdp`] parses session descriptions and rewrites connection addresses and ports byte-exactly.
//!
//! The crate holds no socket, clock or global state. Malformed input yields a [`ParseError`] that
//! names what and where; no input makes it panic (fuzzed, see `fuzz/README.md`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod header;
mod message;
mod params;
pub mod sdp;
mod text;
pub mod uri;
mod views;
mod writer;

pub use error::ParseError;
pub use header::{Header, HeaderKind, EMPTY_HEADER};
pub use message::{frame, parse, Frame, Limits, Message, Method, StartLine, Status};
pub use params::{unquote, Param, ParamIter, Params};
pub use uri::{Host, Uri};
pub use views::{AuthParams, CSeq, Challenge, Contact, Contacts, MediaType, NameAddr, Via};
pub use writer::Writer;

/// Internals exposed for benches and fuzzers only. Not a stable API.
#[doc(hidden)]
pub mod _benchable {
    pub use crate::text::CommaList;
}

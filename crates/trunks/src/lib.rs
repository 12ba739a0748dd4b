//! `trunks`: the trunk modes of sbcd, sans-IO (DESIGN.md): how a request is recognised and
//! authorised on its way in, and how a call is delivered on its way out.
//!
//! Issue 4 builds it in steps (docs/progress.md); this first step is the digest arithmetic
//! both sides share ([`digest`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod answer;
pub mod digest;
pub mod nonce;
pub mod verify;

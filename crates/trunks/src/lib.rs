//! `trunks`: the trunk modes of sbcd, sans-IO (DESIGN.md): how a request is recognised and
//! authorised on its way in, and how a call is delivered on its way out.
//!
//! - [`ingress`]: which trunk a request belongs to (allowlist, hash domain, header, prefix).
//! - [`digest`], [`nonce`], [`verify`], [`answer`]: digest authentication, both sides.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod answer;
pub mod digest;
pub mod ingress;
pub mod nonce;
pub mod verify;

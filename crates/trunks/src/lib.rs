//! `trunks`: the trunk modes of sbcd, sans-IO (DESIGN.md): how a request is recognised and
//! authorised on its way in, and how a call is delivered on its way out.
//!
//! - [`ingress`]: which trunk a request belongs to (allowlist, hash domain, header, prefix).
//! - [`digest`], [`nonce`], [`verify`], [`answer`], [`client`]: digest authentication, both
//!   sides.
//! - [`register`]: register-on-behalf, the agent of one trunk.
//! - [`registrar`]: the bindings of PBXs that register to sbcd.
//! - [`probe`]: OPTIONS health probes of outbound trunks.
//! - [`guard`]: per-source rate limits, failed-authentication counts and the block list.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod answer;
pub mod client;
pub mod digest;
pub mod guard;
pub mod ingress;
pub mod nonce;
pub mod probe;
pub mod register;
pub mod registrar;
pub mod verify;

use std::time::Instant;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a nonce sbcd issues stays fresh (RFC 7616 §5.4); older ones get `stale=true`.
pub const NONCE_LIFETIME_SECS: u64 = 300;

/// What every shard shares and a configuration reload keeps: the process secret (nonces,
/// registered Contact users), nonce counts. Lookups are lock-free or sharded (DESIGN.md
/// "Scaling").
#[derive(Debug)]
pub struct Shared {
    secret: [u8; 32],
    epoch: Instant,
    /// Issues and checks the nonces of sbcd's challenges.
    pub nonces: nonce::Nonces,
    /// Nonce counts seen, against replays.
    pub counts: nonce::NonceCounts,
    /// Contacts PBXs registered (`inbound.register`).
    pub bindings: registrar::Bindings,
    /// Trunks whose OPTIONS probe failed, with the status of the failure: routing skips them.
    pub down: dashmap::DashMap<String, u16>,
    /// Calls in progress and call starts per trunk (`inbound.max_calls`, `inbound.max_cps`).
    pub loads: guard::TrunkLoads,
    /// Per-source limits and the block list, shared with the transport readers: a shard that
    /// refuses a request counts it here at once, so the readers drop the source's next
    /// messages without waiting for the daemon.
    pub guard: std::sync::Arc<guard::GuardShared>,
}

impl Shared {
    /// `secret`: random bytes drawn at start (nonces and Contact users then change on
    /// restart, which clients and registrars handle). `epoch`: the start time, so that nonce
    /// times are seconds since it.
    #[must_use]
    pub fn new(secret: [u8; 32], epoch: Instant) -> Self {
        let nonce_key = keyed(&secret, b"nonce:");
        Self {
            secret,
            epoch,
            nonces: nonce::Nonces::new(nonce_key, NONCE_LIFETIME_SECS),
            counts: nonce::NonceCounts::with_capacity(4096),
            bindings: registrar::Bindings::default(),
            down: dashmap::DashMap::new(),
            loads: guard::TrunkLoads::default(),
            guard: std::sync::Arc::new(guard::GuardShared::new(
                guard::Limits::default(),
                guard::Trusted::default(),
                epoch,
            )),
        }
    }

    /// Seconds since the epoch, for nonces, plus an offset drawn from the process secret: the
    /// time in a nonce (sent in the clear) then says nothing about when sbcd started.
    #[must_use]
    pub fn secs(&self, now: Instant) -> u64 {
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&keyed(&self.secret, b"nonce time offset")[..8]);
        // 2^40 s: far from overflow, and anywhere in 35,000 years.
        (u64::from_le_bytes(offset) >> 24) + now.saturating_duration_since(self.epoch).as_secs()
    }

    /// The user part of the Contact sbcd registers for `trunk` (register-on-behalf): `r` and
    /// 16 hex digits of HMAC(key, trunk name). Unguessable, so that a request to it can be
    /// taken as coming from the trunk's registrar.
    ///
    /// The key is the trunk's registration password when it has one (`password`): the Contact
    /// then stays the same across restarts, so the REGISTER after a crash replaces the binding
    /// the dead process left (RFC 3261 §10.3 step 7) instead of adding a second one the
    /// registrar would fork calls to. Without a password, the process secret.
    #[must_use]
    pub fn contact_user(&self, trunk: &str, password: Option<&[u8]>) -> Vec<u8> {
        let mut label = Vec::with_capacity(8 + trunk.len());
        label.extend_from_slice(b"contact:");
        label.extend_from_slice(trunk.as_bytes());
        let mac = match password {
            Some(p) if !p.is_empty() => keyed(&keyed(p, b"sbcd contact key"), &label),
            _ => keyed(&self.secret, &label),
        };
        let mut user = Vec::with_capacity(17);
        user.push(b'r');
        for b in &mac[..8] {
            user.push(b"0123456789abcdef"[usize::from(b >> 4)]);
            user.push(b"0123456789abcdef"[usize::from(b & 0xf)]);
        }
        user
    }
}

fn keyed(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(label);
    mac.finalize().into_bytes().into()
}

//! Stateless digest nonces (RFC 7616 §3.3, §5.4) and nonce-count replay protection.
//!
//! A nonce is `T || S || MAC`: the issue time `T` (seconds, 16 hex digits), a salt `S` the
//! caller draws (16 hex digits, so that two challenges in the same second get different
//! nonces, and one client's nonce counts never collide with another's), and the first 16
//! bytes of HMAC-SHA256(key, T S ":" realm) (32 hex digits). Any shard can check a nonce
//! without a table: a wrong MAC is forged or from another realm, an old `T` is stale
//! (`stale=true` in the next challenge, so the client retries without asking its user,
//! RFC 7616 §3.3). Replays are the
//! one thing that needs state: [`NonceCounts`] remembers the highest `nc` seen per nonce.

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of a nonce in characters.
pub const NONCE_LEN: usize = 16 + 16 + 32;

/// Issues and checks nonces for one secret key.
#[derive(Clone)]
pub struct Nonces {
    /// HMAC keyed once: each nonce clones it instead of hashing the key pads again.
    mac: Hmac<Sha256>,
    lifetime_secs: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

/// What [`Nonces::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, for this realm, and fresh.
    Fresh,
    /// Ours and for this realm, but older than the lifetime (or from the future): challenge
    /// again with `stale=true`.
    Stale,
    /// Not one of ours (or for another realm): the credentials are refused.
    Invalid,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_u64(v: &[u8]) -> Option<u64> {
    v.iter().try_fold(0u64, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        Some(acc << 4 | u64::from(d))
    })
}

impl Nonces {
    /// `key`: a random secret (the daemon draws it at start; nonces then last until restart).
    #[must_use]
    pub fn new(key: [u8; 32], lifetime_secs: u64) -> Self {
        // HMAC accepts keys of any length: new_from_slice cannot fail here.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
        Self { mac, lifetime_secs }
    }

    fn mac(&self, t_hex: &[u8], realm: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(t_hex);
        m.update(b":");
        m.update(realm);
        let mut out = [0u8; 32];
        out.copy_from_slice(&m.finalize().into_bytes());
        out
    }

    /// A nonce issued at `now_secs` (seconds since any fixed epoch) for `realm`, made unique
    /// by `salt` (draw it at random per challenge).
    #[must_use]
    pub fn issue(&self, now_secs: u64, salt: u64, realm: &[u8]) -> [u8; NONCE_LEN] {
        let mut out = [0u8; NONCE_LEN];
        for i in 0..16 {
            out[i] = HEX[((now_secs >> ((15 - i) * 4)) & 0xf) as usize];
            out[16 + i] = HEX[((salt >> ((15 - i) * 4)) & 0xf) as usize];
        }
        let mac = self.mac(&out[..32], realm);
        for (i, b) in mac[..16].iter().enumerate() {
            out[32 + 2 * i] = HEX[usize::from(b >> 4)];
            out[32 + 2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }

    /// Checks a nonce a client sent back, in time independent of where a forged MAC differs.
    #[must_use]
    pub fn check(&self, nonce: &[u8], now_secs: u64, realm: &[u8]) -> NonceCheck {
        if nonce.len() != NONCE_LEN {
            return NonceCheck::Invalid;
        }
        let (Some(t), Some(salt)) = (hex_u64(&nonce[..16]), hex_u64(&nonce[16..32])) else {
            return NonceCheck::Invalid;
        };
        let expect = self.issue(t, salt, realm);
        let diff = expect
            .iter()
            .zip(nonce)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()));
        if diff != 0 {
            NonceCheck::Invalid
        } else if t > now_secs || now_secs - t > self.lifetime_secs {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh
        }
    }
}

/// The highest nonce count seen per nonce (RFC 7616 §3.4: the server checks that `nc` grows,
/// which stops replays). Shared by every shard (a client may reuse a nonce on requests that
/// land on different shards), so it is a sharded concurrent map, never one lock. Bounded:
/// entries older than the nonce lifetime are dropped.
#[derive(Debug, Default)]
pub struct NonceCounts {
    seen: DashMap<[u8; NONCE_LEN], (u32, u64)>,
}

impl NonceCounts {
    /// Most nonces remembered at once; beyond it the oldest half is forgotten (a forgotten
    /// nonce is then refused as a replay only until it goes stale).
    pub const MAX: usize = 100_000;

    /// Room for `n` nonces before the map grows (the daemon's map lives long and is warm).
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self {
            seen: DashMap::with_capacity(n),
        }
    }

    /// Accepts `nc` for `nonce` (already checked Fresh) if it is higher than any seen before.
    pub fn accept(&self, nonce: &[u8; NONCE_LEN], nc: u32, now_secs: u64) -> bool {
        if self.seen.len() >= Self::MAX {
            let mut ages: Vec<u64> = self.seen.iter().map(|e| e.value().1).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.seen.retain(|_, &mut (_, t)| t > cut);
        }
        match self.seen.entry(*nonce) {
            Entry::Occupied(mut e) => {
                let (last, t) = e.get_mut();
                if nc > *last {
                    *last = nc;
                    *t = now_secs;
                    true
                } else {
                    false
                }
            }
            Entry::Vacant(e) => {
                e.insert((nc, now_secs));
                true
            }
        }
    }

    /// Forgets nonces last used before `before_secs` (call it now and then with now - lifetime).
    pub fn prune(&self, before_secs: u64) {
        self.seen.retain(|_, &mut (_, t)| t >= before_secs);
    }

    /// Nonces remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// None remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces() -> Nonces {
        Nonces::new([7; 32], 300)
    }

    #[test]
    fn fresh_stale_invalid() {
        let n = nonces();
        let nonce = n.issue(1000, 0xfeed, b"sbc.test");
        assert_eq!(n.check(&nonce, 1000, b"sbc.test"), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, 1300, b"sbc.test"), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, 1301, b"sbc.test"), NonceCheck::Stale);
        assert_eq!(
            n.check(&nonce, 999, b"sbc.test"),
            NonceCheck::Stale,
            "from the future"
        );
        assert_eq!(
            n.check(&nonce, 1000, b"other.test"),
            NonceCheck::Invalid,
            "another realm"
        );
        let mut forged = nonce;
        forged[40] = if forged[40] == b'0' { b'1' } else { b'0' };
        assert_eq!(n.check(&forged, 1000, b"sbc.test"), NonceCheck::Invalid);
        let mut moved = nonce;
        moved[15] = if moved[15] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            n.check(&moved, 1000, b"sbc.test"),
            NonceCheck::Invalid,
            "time is covered by the MAC"
        );
        let mut salted = nonce;
        salted[20] = if salted[20] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            n.check(&salted, 1000, b"sbc.test"),
            NonceCheck::Invalid,
            "the salt is covered by the MAC"
        );
        assert_ne!(
            n.issue(1000, 1, b"sbc.test"),
            n.issue(1000, 2, b"sbc.test"),
            "two challenges in one second differ"
        );
        assert_eq!(n.check(b"short", 1000, b"sbc.test"), NonceCheck::Invalid);
        let other_key = Nonces::new([8; 32], 300);
        assert_eq!(
            other_key.check(&nonce, 1000, b"sbc.test"),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn nonce_count_must_grow() {
        let n = nonces();
        let nonce = n.issue(1000, 1, b"r");
        let counts = NonceCounts::default();
        assert!(counts.accept(&nonce, 1, 1000));
        assert!(!counts.accept(&nonce, 1, 1001), "replay");
        assert!(counts.accept(&nonce, 2, 1002));
        assert!(!counts.accept(&nonce, 1, 1003), "older count");
        counts.prune(1003);
        assert!(counts.is_empty());
    }
}

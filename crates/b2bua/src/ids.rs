//! The identifiers sbcd writes on the wire: outbound Call-IDs, tags and Via branches.
//!
//! Each one carries a *token* that names the call that owns it: the shard, the call's slot in
//! the shard and the slot's generation, as 16 lowercase hex digits. A response (by its top Via
//! branch) or an in-dialog request (by its To tag) therefore finds its shard and its call
//! without any global table (DESIGN.md "Scaling inside one machine"). Random digits follow the
//! token, so tags and Call-IDs stay globally unique (RFC 3261 §19.3: at least 32 random bits).
//!
//! ```text
//! branch  z9hG4bK <token:16> <leg:1> <txn:4> <random:8>
//! tag             <token:16> <leg:1> <random:8>
//! Call-ID         <random:16> <token:16>
//! ```

use std::fmt;

/// Generations count modulo this (20 bits), slots stay below it: both fit every encoding.
pub(crate) const MAX_GEN: u32 = 1 << 20;
/// Slots per shard (calls held at once by one shard).
pub(crate) const MAX_SLOTS: usize = 1 << 20;

/// The magic cookie of an RFC 3261 branch (§8.1.1.7).
pub(crate) const COOKIE: &[u8] = b"z9hG4bK";

/// Which call a wire identifier belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    /// The shard that owns the call.
    pub shard: u16,
    /// The call's slot in the shard.
    pub slot: u32,
    /// The slot's generation: a reused slot never matches a stale identifier.
    pub gen: u32,
}

/// The two sides of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The inbound leg: sbcd is the UAS of the initial INVITE.
    A,
    /// The outbound leg: sbcd is the UAC of the initial INVITE.
    B,
}

impl Side {
    /// The other side.
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    fn letter(self) -> u8 {
        match self {
            Self::A => b'a',
            Self::B => b'b',
        }
    }

    fn from_letter(c: u8) -> Option<Self> {
        match c {
            b'a' => Some(Self::A),
            b'b' => Some(Self::B),
            _ => None,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::A => "inbound",
            Self::B => "outbound",
        })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";
/// Length of a token in hex digits.
pub(crate) const TOKEN_LEN: usize = 16;

/// Appends the low `digits` hex digits of `v`, most significant first.
pub(crate) fn put_hex(out: &mut Vec<u8>, v: u64, digits: usize) {
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

fn hex_val(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(d))
    })
}

impl Token {
    fn write(self, out: &mut Vec<u8>) {
        put_hex(out, u64::from(self.shard), 4);
        put_hex(out, u64::from(self.slot) & 0xff_ffff, 6);
        put_hex(out, u64::from(self.gen) & 0xff_ffff, 6);
    }

    fn read(s: &[u8]) -> Option<Self> {
        let s = s.get(..TOKEN_LEN)?;
        Some(Self {
            shard: u16::try_from(hex_val(&s[..4])?).ok()?,
            slot: u32::try_from(hex_val(&s[4..10])?).ok()?,
            gen: u32::try_from(hex_val(&s[10..16])?).ok()?,
        })
    }

    /// Does a stored generation match this token's? Generations wrap at 2^20 (see
    /// [`MAX_GEN`]), so every encoding keeps them whole.
    pub(crate) fn gen_matches(self, gen: u32) -> bool {
        self.gen == gen
    }

    /// A 64-bit form for transport error tokens: shard (8 bits), slot (20), generation (20),
    /// transaction id (16). The daemon finds the shard of a failed send from the top byte.
    pub(crate) fn pack(self, txn: u16) -> u64 {
        u64::from(self.shard & 0xff) << 56
            | u64::from(self.slot & 0xf_ffff) << 36
            | u64::from(self.gen & 0xf_ffff) << 16
            | u64::from(txn)
    }

    /// The inverse of [`pack`](Self::pack).
    pub(crate) fn unpack(v: u64) -> (Self, u16) {
        let t = Self {
            shard: (v >> 56) as u16,
            slot: (v >> 36) as u32 & 0xf_ffff,
            gen: (v >> 16) as u32 & 0xf_ffff,
        };
        (t, v as u16)
    }
}

/// The shard a transport error token belongs to (see [`Token::pack`]).
#[must_use]
pub fn token_shard(token: u64) -> u16 {
    (token >> 56) as u16
}

/// Writes a branch: `z9hG4bK` + token + leg + transaction id + 8 random digits.
pub(crate) fn write_branch(out: &mut Vec<u8>, t: Token, side: Side, txn: u16, rand: u32) {
    out.extend_from_slice(COOKIE);
    t.write(out);
    out.push(side.letter());
    put_hex(out, u64::from(txn), 4);
    put_hex(out, u64::from(rand), 8);
}

/// Reads the token, leg and transaction id out of a branch sbcd wrote.
#[must_use]
pub fn read_branch(branch: &[u8]) -> Option<(Token, Side, u16)> {
    let s = branch.strip_prefix(COOKIE)?;
    if s.len() != TOKEN_LEN + 1 + 4 + 8 {
        return None;
    }
    let t = Token::read(s)?;
    let side = Side::from_letter(s[TOKEN_LEN])?;
    let txn = u16::try_from(hex_val(&s[TOKEN_LEN + 1..TOKEN_LEN + 5])?).ok()?;
    hex_val(&s[TOKEN_LEN + 5..])?;
    Some((t, side, txn))
}

/// Writes a tag: token + leg + 8 random digits.
pub(crate) fn write_tag(out: &mut Vec<u8>, t: Token, side: Side, rand: u32) {
    t.write(out);
    out.push(side.letter());
    put_hex(out, u64::from(rand), 8);
}

/// Reads the token and leg out of a tag sbcd wrote.
#[must_use]
pub fn read_tag(tag: &[u8]) -> Option<(Token, Side)> {
    if tag.len() != TOKEN_LEN + 1 + 8 {
        return None;
    }
    let t = Token::read(tag)?;
    let side = Side::from_letter(tag[TOKEN_LEN])?;
    hex_val(&tag[TOKEN_LEN + 1..])?;
    Some((t, side))
}

/// Writes an outbound Call-ID: 16 random digits + token.
pub(crate) fn write_call_id(out: &mut Vec<u8>, t: Token, rand: u64) {
    put_hex(out, rand, 16);
    t.write(out);
}

/// A small fast PRNG (xorshift64*) for tags, branches and Call-IDs. Seeded by the caller, so
/// tests are deterministic; the daemon seeds it from the OS. Not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Token = Token {
        shard: 3,
        slot: 0x2_3456,
        gen: 0xb_cdef,
    };

    #[test]
    fn branch_tag_round_trip() {
        let mut b = Vec::new();
        write_branch(&mut b, T, Side::B, 7, 0xdead_beef);
        assert!(b.starts_with(COOKIE));
        assert_eq!(read_branch(&b), Some((T, Side::B, 7)));
        let mut tag = Vec::new();
        write_tag(&mut tag, T, Side::A, 1);
        assert_eq!(read_tag(&tag), Some((T, Side::A)));
        let mut cid = Vec::new();
        write_call_id(&mut cid, T, 42);
        assert_eq!(cid.len(), 32);
    }

    #[test]
    fn foreign_identifiers_are_not_ours() {
        assert_eq!(read_branch(b"z9hG4bK776asdhds"), None);
        assert_eq!(read_tag(b"1928301774"), None);
        assert_eq!(
            read_tag(b"0003123456abcdefxdeadbeef"),
            None,
            "bad leg letter"
        );
        assert_eq!(
            read_tag(b"0003123456ABCDEFadeadbeef"),
            None,
            "upper case is not ours"
        );
    }

    #[test]
    fn pack_unpack() {
        let (t, txn) = Token::unpack(T.pack(9));
        assert_eq!((t, txn), (T, 9));
    }
}

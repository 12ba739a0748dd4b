//! Digest arithmetic (RFC 2617 §3.2.2, RFC 7616 §3.4.1, used by SIP in RFC 3261 §22.4 and
//! RFC 8760): the `response` value, for MD5, MD5-sess, SHA-256 and SHA-256-sess, with and
//! without `qop`.
//!
//! ```text
//! A1       = username ":" realm ":" password            (-sess: H(A1) ":" nonce ":" cnonce)
//! A2       = method ":" digest-uri
//! response = H( H(A1) ":" nonce ":" nc ":" cnonce ":" qop ":" H(A2) )    with qop
//! response = H( H(A1) ":" nonce ":" H(A2) )                              without (RFC 2069)
//! ```
//! Everything is hashed piece by piece into fixed buffers: nothing is allocated.

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest algorithm (the `algorithm` parameter; absent means MD5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// Recognises an `algorithm` token, case-insensitively (RFC 7616 §3.3).
    #[must_use]
    pub fn from_token(token: &[u8]) -> Option<Self> {
        [Self::Md5, Self::Md5Sess, Self::Sha256, Self::Sha256Sess]
            .into_iter()
            .find(|a| a.as_str().as_bytes().eq_ignore_ascii_case(token))
    }

    /// The token as written in challenges and credentials.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Strength order for choosing among several challenges (RFC 7616 §3.7: prefer the
    /// strongest the client supports).
    #[must_use]
    pub fn strength(self) -> u8 {
        match self {
            Self::Md5 | Self::Md5Sess => 1,
            Self::Sha256 | Self::Sha256Sess => 2,
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    fn is_sha256(self) -> bool {
        matches!(self, Self::Sha256 | Self::Sha256Sess)
    }
}

/// A digest as lowercase hex: 32 digits (MD5) or 64 (SHA-256).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex {
    buf: [u8; 64],
    len: u8,
}

impl Hex {
    /// The hex digits.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// Compares with `other` in time independent of where they differ (credentials).
    #[must_use]
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        let mine = self.as_bytes();
        if mine.len() != other.len() {
            return false;
        }
        mine.iter()
            .zip(other)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
            == 0
    }

    fn from_digest(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for (i, b) in bytes.iter().take(32).enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        Self {
            buf,
            len: (bytes.len().min(32) * 2) as u8,
        }
    }
}

impl std::fmt::Debug for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// `qop`, `nc` and `cnonce` of a response with quality of protection.
#[derive(Debug, Clone, Copy)]
pub struct Qop<'a> {
    /// `auth`, or `auth-int` (the body is then hashed into A2, RFC 7616 §3.4.3).
    pub qop: &'a [u8],
    /// The nonce count, 8 hex digits as sent.
    pub nc: &'a [u8],
    /// The client nonce.
    pub cnonce: &'a [u8],
}

/// Everything the `response` value depends on.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// `username`.
    pub username: &'a [u8],
    /// `realm`.
    pub realm: &'a [u8],
    /// The shared secret. Never logged: `Input`'s Debug leaves it out.
    pub password: &'a [u8],
    /// `nonce` from the challenge.
    pub nonce: &'a [u8],
    /// The request method.
    pub method: &'a [u8],
    /// The `uri` parameter, exactly as sent.
    pub uri: &'a [u8],
    /// With `qop`, or `None` for the RFC 2069 form.
    pub qop: Option<Qop<'a>>,
    /// The message body; read only with `qop=auth-int`.
    pub body: &'a [u8],
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("algorithm", &self.algorithm)
            .field("username", &String::from_utf8_lossy(self.username))
            .field("realm", &String::from_utf8_lossy(self.realm))
            .field("password", &"<redacted>")
            .field("method", &String::from_utf8_lossy(self.method))
            .field("uri", &String::from_utf8_lossy(self.uri))
            .finish_non_exhaustive()
    }
}

fn h<D: Digest>(parts: &[&[u8]]) -> Hex {
    let mut d = D::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(p);
    }
    Hex::from_digest(&d.finalize())
}

fn hash(alg: Algorithm, parts: &[&[u8]]) -> Hex {
    if alg.is_sha256() {
        h::<Sha256>(parts)
    } else {
        h::<Md5>(parts)
    }
}

/// H(A1): what a server may store instead of the password.
#[must_use]
pub fn ha1(input: &Input<'_>) -> Hex {
    let alg = input.algorithm;
    let base = hash(alg, &[input.username, input.realm, input.password]);
    if alg.is_sess() {
        let cnonce = input.qop.map_or(&[][..], |q| q.cnonce);
        hash(alg, &[base.as_bytes(), input.nonce, cnonce])
    } else {
        base
    }
}

/// The `response` parameter.
#[must_use]
pub fn response(input: &Input<'_>) -> Hex {
    let alg = input.algorithm;
    let ha1 = ha1(input);
    let ha2 = match input.qop {
        Some(q) if q.qop.eq_ignore_ascii_case(b"auth-int") => {
            let body = hash(alg, &[input.body]);
            hash(alg, &[input.method, input.uri, body.as_bytes()])
        }
        _ => hash(alg, &[input.method, input.uri]),
    };
    match input.qop {
        Some(q) => hash(
            alg,
            &[
                ha1.as_bytes(),
                input.nonce,
                q.nc,
                q.cnonce,
                q.qop,
                ha2.as_bytes(),
            ],
        ),
        None => hash(alg, &[ha1.as_bytes(), input.nonce, ha2.as_bytes()]),
    }
}

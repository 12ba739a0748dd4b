//! Both ends of a challenge: writing one (sbcd as a trunk's registrar or UAS) and answering one
//! (sbcd calling or registering to a carrier), RFC 3261 §22, RFC 7616.

use sip_codec::{Challenge, HeaderKind};

use crate::digest::{self, Algorithm, Qop};

/// A `WWW-Authenticate` / `Proxy-Authenticate` value: `Digest realm="…", nonce="…",
/// algorithm=…, qop="auth"[, stale=true]` (RFC 7616 §3.3). Offer SHA-256 first, then MD5,
/// as two headers (RFC 8760 §2.4).
#[must_use]
pub fn challenge(realm: &[u8], nonce: &[u8], algorithm: Algorithm, stale: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    v.extend_from_slice(b"Digest realm=\"");
    v.extend_from_slice(realm);
    v.extend_from_slice(b"\", nonce=\"");
    v.extend_from_slice(nonce);
    v.extend_from_slice(b"\", algorithm=");
    v.extend_from_slice(algorithm.as_str().as_bytes());
    v.extend_from_slice(b", qop=\"auth\"");
    if stale {
        v.extend_from_slice(b", stale=true");
    }
    v
}

/// The header that answers a challenge: 401 -> Authorization, 407 -> Proxy-Authorization
/// (RFC 3261 §22.2, §22.3).
#[must_use]
pub fn answer_header(status: u16) -> Option<HeaderKind> {
    match status {
        401 => Some(HeaderKind::Authorization),
        407 => Some(HeaderKind::ProxyAuthorization),
        _ => None,
    }
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// No Digest challenge with an algorithm sbcd computes.
    NoUsableChallenge,
    /// The challenge lacks `realm` or `nonce`.
    Incomplete,
}

fn algorithm_of(c: &Challenge<'_>) -> Option<Algorithm> {
    match c.param(b"algorithm") {
        None => Some(Algorithm::Md5),
        Some(a) => Algorithm::from_token(a),
    }
}

/// Among several challenges (one response may carry several, RFC 7616 §3.7), the Digest one
/// with the strongest algorithm sbcd computes.
pub fn pick<'a>(challenges: impl IntoIterator<Item = Challenge<'a>>) -> Option<Challenge<'a>> {
    challenges
        .into_iter()
        .filter(Challenge::is_digest)
        .filter_map(|c| algorithm_of(&c).map(|a| (a.strength(), c)))
        .fold(
            None,
            |best: Option<(u8, Challenge<'a>)>, (s, c)| match best {
                Some((bs, _)) if bs >= s => best,
                _ => Some((s, c)),
            },
        )
        .map(|(_, c)| c)
}

/// What an answer needs besides the challenge.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method of the request being re-sent.
    pub method: &'a [u8],
    /// The `uri` to put in the credentials: the Request-URI as sent (or the To URI where a
    /// carrier wants it).
    pub uri: &'a [u8],
    /// A fresh client nonce.
    pub cnonce: &'a [u8],
    /// The nonce count for this nonce (1 for a new nonce, counting up when reused).
    pub nc: u32,
    /// A realm to use instead of the challenge's (per-trunk override).
    pub realm_override: Option<&'a [u8]>,
    /// The body of the request being re-sent (hashed only for `qop=auth-int`).
    pub body: &'a [u8],
}

/// The credentials value answering `c` (RFC 7616 §3.4): `opaque` echoed exactly, `qop=auth`
/// when offered (alone or in a list), `auth-int` when it is the only one offered, the RFC 2069
/// form when `qop` is absent.
pub fn answer(
    c: &Challenge<'_>,
    username: &[u8],
    password: &[u8],
    req: &Request<'_>,
) -> Result<Vec<u8>, AnswerError> {
    let algorithm = algorithm_of(c).ok_or(AnswerError::NoUsableChallenge)?;
    let realm = req
        .realm_override
        .or_else(|| c.param(b"realm"))
        .ok_or(AnswerError::Incomplete)?;
    let nonce = c.param(b"nonce").ok_or(AnswerError::Incomplete)?;
    let qop_offer = c.param(b"qop");
    let qop_token: Option<&'static [u8]> = qop_offer.and_then(|list| {
        let mut auth = false;
        let mut auth_int = false;
        for q in list.split(|&b| b == b',') {
            let q = q.trim_ascii();
            auth |= q.eq_ignore_ascii_case(b"auth");
            auth_int |= q.eq_ignore_ascii_case(b"auth-int");
        }
        if auth {
            Some(&b"auth"[..])
        } else if auth_int {
            Some(&b"auth-int"[..])
        } else {
            // Empty or only unknown tokens: answer in the RFC 2069 form.
            None
        }
    });
    let mut nc_hex = [0u8; 8];
    for (i, d) in nc_hex.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[((req.nc >> ((7 - i) * 4)) & 0xf) as usize];
    }
    let qop = qop_token.map(|qop| Qop {
        qop,
        nc: &nc_hex,
        cnonce: req.cnonce,
    });
    let response = digest::response(&digest::Input {
        algorithm,
        username,
        realm,
        password,
        nonce,
        method: req.method,
        uri: req.uri,
        qop,
        body: req.body,
    });
    let mut v = Vec::with_capacity(256);
    let mut field = |name: &[u8], value: &[u8], quoted: bool| {
        if !v.is_empty() {
            v.extend_from_slice(b", ");
        } else {
            v.extend_from_slice(b"Digest ");
        }
        v.extend_from_slice(name);
        v.push(b'=');
        if quoted {
            v.push(b'"');
        }
        v.extend_from_slice(value);
        if quoted {
            v.push(b'"');
        }
    };
    field(b"username", username, true);
    field(b"realm", realm, true);
    field(b"nonce", nonce, true);
    field(b"uri", req.uri, true);
    field(b"response", response.as_bytes(), true);
    field(b"algorithm", algorithm.as_str().as_bytes(), false);
    if let Some(q) = qop {
        field(b"qop", q.qop, false);
        field(b"nc", q.nc, false);
        field(b"cnonce", q.cnonce, true);
    }
    if let Some(opaque) = c.param(b"opaque") {
        field(b"opaque", opaque, true);
    }
    Ok(v)
}

//! Checking the digest credentials a trunk's PBX sends (RFC 3261 §22.2–22.3, RFC 7616 §3.4).

use sip_codec::{Challenge, Uri};

use crate::digest::{self, Algorithm, Qop};
use crate::nonce::{NonceCheck, NonceCounts, Nonces, NONCE_LEN};

/// How the `uri` parameter must relate to the Request-URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UriPolicy {
    /// The same host (real clients, SIPp among them, send `sip:host:port`): the default.
    #[default]
    SameHost,
    /// Byte for byte the Request-URI (RFC 3261 §22.4 as written).
    Exact,
}

/// The outcome of checking credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// The credentials are right; the request comes from this user.
    Accepted {
        /// The `username`.
        username: &'a [u8],
    },
    /// Right password, old nonce: challenge again with `stale=true`.
    Stale,
    /// Wrong: 403, or a new challenge; `why` is for a debug log line (never the password).
    Refused {
        /// What was wrong.
        why: &'static str,
    },
}

/// What a check needs besides the credentials.
#[derive(Debug)]
pub struct Check<'c> {
    /// The realm the trunk challenges with.
    pub realm: &'c [u8],
    /// The request's method and Request-URI.
    pub method: &'c [u8],
    /// The Request-URI as received.
    pub request_uri: &'c [u8],
    /// The `uri` parameter policy.
    pub policy: UriPolicy,
    /// Seconds since the nonces' epoch.
    pub now_secs: u64,
}

fn same_host(a: &[u8], b: &[u8]) -> bool {
    match (sip_host(a), sip_host(b)) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => match (Uri::parse(a), Uri::parse(b)) {
            (Ok(Uri::Sip(x)), Ok(Uri::Sip(y))) => x.host_raw.eq_ignore_ascii_case(y.host_raw),
            _ => a == b,
        },
    }
}

/// The host of a plain `sip:`/`sips:` URI without a full parse: after the userinfo, before
/// the port, parameters or headers. None for anything unusual (escapes, IPv6 brackets), which
/// the full parser then handles.
fn sip_host(uri: &[u8]) -> Option<&[u8]> {
    let rest = uri
        .strip_prefix(b"sip:")
        .or_else(|| uri.strip_prefix(b"sips:"))?;
    if rest.iter().any(|&c| c == b'%' || c == b'[') {
        return None;
    }
    let end = rest
        .iter()
        .position(|&c| c == b';' || c == b'?')
        .unwrap_or(rest.len());
    let hostport = &rest[..end];
    let hostport = match hostport.iter().rposition(|&c| c == b'@') {
        Some(at) => &hostport[at + 1..],
        None => hostport,
    };
    let host = match hostport.iter().position(|&c| c == b':') {
        Some(colon) => &hostport[..colon],
        None => hostport,
    };
    (!host.is_empty()).then_some(host)
}

fn parse_nc(nc: &[u8]) -> Option<u32> {
    if nc.len() != 8 {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(nc).ok()?, 16).ok()
}

/// The credentials' parameters that verification reads.
#[derive(Default)]
struct Params<'a> {
    username: Option<&'a [u8]>,
    realm: Option<&'a [u8]>,
    nonce: Option<&'a [u8]>,
    uri: Option<&'a [u8]>,
    response: Option<&'a [u8]>,
    algorithm: Option<&'a [u8]>,
    qop: Option<&'a [u8]>,
    nc: Option<&'a [u8]>,
    cnonce: Option<&'a [u8]>,
}

/// Checks one `Authorization` / `Proxy-Authorization` value. `password_of` finds a user's
/// password (`None`: no such user).
pub fn verify<'a>(
    creds: &Challenge<'a>,
    check: &Check<'_>,
    nonces: &Nonces,
    counts: &NonceCounts,
    password_of: impl FnOnce(&[u8]) -> Option<&'a [u8]>,
) -> Verdict<'a> {
    let refused = |why| Verdict::Refused { why };
    if !creds.is_digest() {
        return refused("not Digest credentials");
    }
    // One pass over the parameters (a lookup per name would scan the value ten times).
    let mut p = Params::default();
    for (name, value) in creds.params.iter() {
        let slot = match name.len() {
            2 if name.eq_ignore_ascii_case(b"nc") => &mut p.nc,
            3 if name.eq_ignore_ascii_case(b"uri") => &mut p.uri,
            3 if name.eq_ignore_ascii_case(b"qop") => &mut p.qop,
            5 if name.eq_ignore_ascii_case(b"realm") => &mut p.realm,
            5 if name.eq_ignore_ascii_case(b"nonce") => &mut p.nonce,
            6 if name.eq_ignore_ascii_case(b"cnonce") => &mut p.cnonce,
            8 if name.eq_ignore_ascii_case(b"username") => &mut p.username,
            8 if name.eq_ignore_ascii_case(b"response") => &mut p.response,
            9 if name.eq_ignore_ascii_case(b"algorithm") => &mut p.algorithm,
            _ => continue,
        };
        // The first occurrence counts, as with a lookup.
        slot.get_or_insert(value);
    }
    let (Some(username), Some(realm), Some(nonce), Some(uri), Some(resp)) =
        (p.username, p.realm, p.nonce, p.uri, p.response)
    else {
        return refused("username, realm, nonce, uri or response missing");
    };
    if realm != check.realm {
        return refused("another realm");
    }
    let algorithm = match p.algorithm {
        None => Algorithm::Md5,
        Some(a) => match Algorithm::from_token(a) {
            Some(a) => a,
            None => return refused("unknown algorithm"),
        },
    };
    let uri_ok = match check.policy {
        UriPolicy::Exact => uri == check.request_uri,
        UriPolicy::SameHost => same_host(uri, check.request_uri),
    };
    if !uri_ok {
        return refused("digest uri does not match the Request-URI");
    }
    let qop = match (p.qop, p.nc, p.cnonce) {
        (Some(q), Some(nc), Some(cnonce)) if q.eq_ignore_ascii_case(b"auth") => {
            Some(Qop { qop: q, nc, cnonce })
        }
        (None, None, None) => None,
        _ => return refused("qop needs nc and cnonce, and only qop=auth is offered"),
    };
    let freshness = nonces.check(nonce, check.now_secs, check.realm);
    if freshness == NonceCheck::Invalid {
        return refused("not a nonce of ours");
    }
    // An unknown user costs the same digest and comparison as a wrong password, and is
    // refused the same way: neither the answer nor its timing tells a scanner which
    // usernames exist.
    let (password, known) = match password_of(username) {
        Some(p) => (p, true),
        None => (&b"\0no such user\0"[..], false),
    };
    let expected = digest::response(&digest::Input {
        algorithm,
        username,
        realm,
        password,
        nonce,
        method: check.method,
        uri,
        qop,
        body: &[],
    });
    let matches = expected.ct_eq(resp);
    if !known {
        return refused("unknown user");
    }
    if !matches {
        return refused("wrong response (password)");
    }
    if freshness == NonceCheck::Stale {
        return Verdict::Stale;
    }
    if let Some(q) = qop {
        let Some(nc) = parse_nc(q.nc) else {
            return refused("nc is not 8 hex digits");
        };
        let mut key = [0u8; NONCE_LEN];
        key.copy_from_slice(nonce);
        if !counts.accept(&key, nc, check.now_secs) {
            return refused("nonce count replayed");
        }
    }
    Verdict::Accepted { username }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_host_ignores_user_port_and_params() {
        assert!(same_host(
            b"sip:127.0.0.1:5060",
            b"sip:12125551234@127.0.0.1;user=phone"
        ));
        assert!(same_host(
            b"sips:SBC.test",
            b"sips:pbx1@sbc.test:5061;transport=tls"
        ));
        assert!(
            same_host(b"sip:[::1]:5060", b"sip:1@[::1]"),
            "IPv6 via the full parser"
        );
        assert!(
            same_host(b"sip:a%40b@h.test", b"sip:h.test"),
            "escapes via the full parser"
        );
        assert!(!same_host(b"sip:127.0.0.1", b"sip:127.0.0.2"));
        assert!(!same_host(b"sip:evil.test", b"sip:user@sbc.test"));
        assert!(!same_host(b"tel:+1212", b"sip:sbc.test"));
        assert_eq!(
            sip_host(b"sip:u:p@h.test:5060;lr?x=y"),
            Some(&b"h.test"[..])
        );
    }
}

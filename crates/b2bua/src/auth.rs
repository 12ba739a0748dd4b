//! Digest authentication in calls (RFC 3261 §22): challenging what a trunk sends, when its
//! `inbound.digest` asks for it, and answering what a trunk challenges sbcd with, from its
//! `outbound.auth` ([`trunks::client`]). The arithmetic is in [`trunks`].

use std::time::Instant;

use sbc_config::{DigestAlgorithm, DigestUriCheck, TrunkId};
use sip_codec::{Challenge, HeaderKind, Message, Method, StartLine, Writer};
use trunks::answer;
pub(crate) use trunks::client::pick_challenges;
pub(crate) use trunks::client::{write_credentials, Answered, NoAnswer, Target};
use trunks::digest::Algorithm;
use trunks::verify::{self, Check, UriPolicy, Verdict};

use crate::routing::Routing;

/// What the inbound digest check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// No digest on this trunk, or the credentials are right.
    Accepted,
    /// No credentials for our realm (or a stale nonce): challenge.
    Challenge {
        /// `stale=true`: the password was right, the nonce old.
        stale: bool,
    },
    /// Wrong credentials: 403. `why` is for a debug line.
    Refused {
        /// What was wrong.
        why: &'static str,
    },
}

/// Checks the credentials of `msg` for `trunk`'s `inbound.digest` (Accepted without one).
/// ACK and CANCEL are never challenged (§22.1).
pub(crate) fn check_inbound(
    routing: &Routing,
    trunk: TrunkId,
    msg: &Message<'_, '_>,
    now: Instant,
) -> Inbound {
    let Some(d) = &routing.config.trunk(trunk).inbound.digest else {
        return Inbound::Accepted;
    };
    let StartLine::Request {
        method,
        method_raw,
        uri,
    } = msg.start
    else {
        return Inbound::Accepted;
    };
    if matches!(method, Method::Ack | Method::Cancel) {
        return Inbound::Accepted;
    }
    let realm = d.realm.as_bytes();
    let creds = [HeaderKind::Authorization, HeaderKind::ProxyAuthorization]
        .into_iter()
        .flat_map(|k| msg.headers_of(k).map(|h| h.value))
        .filter_map(|v| Challenge::parse(v, HeaderKind::Authorization).ok())
        .find(|c| c.is_digest() && c.param(b"realm") == Some(realm));
    let Some(creds) = creds else {
        return Inbound::Challenge { stale: false };
    };
    let shared = &routing.shared;
    let check = Check {
        realm,
        method: method_raw,
        request_uri: uri,
        policy: match d.uri_check {
            DigestUriCheck::SameHost => UriPolicy::SameHost,
            DigestUriCheck::Exact => UriPolicy::Exact,
        },
        now_secs: shared.secs(now),
    };
    let verdict = verify::verify(&creds, &check, &shared.nonces, &shared.counts, |user| {
        d.users
            .iter()
            .find(|u| u.username.as_bytes() == user)
            .map(|u| u.password.expose().as_bytes())
    });
    match verdict {
        Verdict::Accepted { .. } => Inbound::Accepted,
        Verdict::Stale => Inbound::Challenge { stale: true },
        Verdict::Refused { why } => Inbound::Refused { why },
    }
}

/// The status of a challenge to `method` from `trunk`: REGISTER always 401 (§10.3), else
/// the trunk's `inbound.digest.challenge`.
pub(crate) fn challenge_code(routing: &Routing, trunk: TrunkId, method: Option<Method>) -> u16 {
    match &routing.config.trunk(trunk).inbound.digest {
        Some(_) if method == Some(Method::Register) => 401,
        Some(d) => d.challenge.code(),
        None => 401,
    }
}

/// Writes the challenge headers of `trunk` for a response with status `code`: one per
/// algorithm of `inbound.digest.algorithms` (SHA-256 then MD5 unless configured, RFC 8760
/// §2.4), all with one fresh nonce.
pub(crate) fn write_challenge(
    w: &mut Writer<'_>,
    routing: &Routing,
    trunk: TrunkId,
    code: u16,
    stale: bool,
    now: Instant,
    salt: u64,
) {
    let Some(d) = &routing.config.trunk(trunk).inbound.digest else {
        return;
    };
    let kind = if code == 407 {
        HeaderKind::ProxyAuthenticate
    } else {
        HeaderKind::WwwAuthenticate
    };
    let shared = &routing.shared;
    let realm = d.realm.as_bytes();
    let nonce = shared.nonces.issue(shared.secs(now), salt, realm);
    for alg in &d.algorithms {
        let alg = match alg {
            DigestAlgorithm::Sha256 => Algorithm::Sha256,
            DigestAlgorithm::Md5 => Algorithm::Md5,
        };
        w.header(kind, &answer::challenge(realm, &nonce, alg, stale));
    }
}

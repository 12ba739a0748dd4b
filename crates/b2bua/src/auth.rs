//! Digest authentication in calls (RFC 3261 §22): challenging what a trunk sends, when its
//! `inbound.digest` asks for it, and answering what a trunk challenges sbcd with, from its
//! `outbound.auth`. The arithmetic is in [`trunks`]; this module reads and writes messages.

use std::time::Instant;

use sbc_config::{DigestUri, DigestUriCheck, OutboundAuth, TrunkId};
use sip_codec::{Challenge, HeaderKind, Message, Method, StartLine, Writer};
use trunks::answer;
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

/// Writes the challenge headers of `trunk` for a response with status `code`: SHA-256 first,
/// then MD5 (RFC 8760 §2.4), both with one fresh nonce.
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
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        w.header(kind, &answer::challenge(realm, &nonce, alg, stale));
    }
}

/// The challenges sbcd answered on a leg: re-used, with the nonce count going up, for the
/// leg's later requests (RFC 7616 §3.4: a client may re-use a nonce).
#[derive(Debug, Clone)]
pub(crate) struct LegAuth {
    /// 401 or 407: which header the credentials go in.
    pub(crate) code: u16,
    /// The challenge header values picked, one per realm.
    pub(crate) challenges: Vec<Box<[u8]>>,
    /// The nonce count last used.
    pub(crate) nc: u32,
}

/// Why a challenge is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// The trunk has no `outbound.auth`.
    NoCredentials,
    /// The request already carried credentials and the new challenge is not stale: the
    /// password is wrong (re-sending would loop).
    WrongPassword,
    /// No Digest challenge sbcd can compute.
    Unusable,
    /// Challenged again and again (stale each time): a bound, so that nothing loops.
    TooMany,
}

impl NoAnswer {
    /// For logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::NoCredentials => "trunk has no outbound.auth",
            Self::WrongPassword => "challenged again with a fresh nonce: wrong password",
            Self::Unusable => "no Digest challenge with an algorithm sbcd computes",
            Self::TooMany => "challenged too many times",
        }
    }
}

/// The challenges of a 401/407 worth answering: per realm, the strongest algorithm
/// (RFC 7616 §3.7, RFC 8760 §2.4). `any_stale`: one of them says `stale=true`.
pub(crate) fn pick_challenges(msg: &Message<'_, '_>, code: u16) -> (Vec<Box<[u8]>>, bool) {
    let kind = if code == 407 {
        HeaderKind::ProxyAuthenticate
    } else {
        HeaderKind::WwwAuthenticate
    };
    let all: Vec<Challenge<'_>> = msg
        .headers_of(kind)
        .flat_map(|h| Challenge::parse_all(h.value, kind))
        .filter_map(Result::ok)
        .filter(Challenge::is_digest)
        .collect();
    let any_stale = all.iter().any(|c| {
        c.param(b"stale")
            .is_some_and(|s| s.eq_ignore_ascii_case(b"true"))
    });
    let mut realms: Vec<Option<&[u8]>> = Vec::new();
    for c in &all {
        let r = c.param(b"realm");
        if !realms.contains(&r) {
            realms.push(r);
        }
    }
    let list = realms
        .into_iter()
        .filter_map(|r| answer::pick(all.iter().copied().filter(|c| c.param(b"realm") == r)))
        .map(|c| render_challenge(&c).into())
        .collect();
    (list, any_stale)
}

/// A challenge written back as a header value, parameters as received.
fn render_challenge(c: &Challenge<'_>) -> Vec<u8> {
    let mut v = Vec::with_capacity(160);
    v.extend_from_slice(c.scheme);
    for (i, (name, value)) in c.params.iter().enumerate() {
        v.extend_from_slice(if i == 0 { b" " } else { b", " });
        v.extend_from_slice(name);
        v.extend_from_slice(b"=\"");
        v.extend_from_slice(value);
        v.push(b'"');
    }
    v
}

/// What credentials are computed over: the request as sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    /// The method as written.
    pub(crate) method: &'a [u8],
    /// The Request-URI as written.
    pub(crate) request_uri: &'a [u8],
    /// The To URI (without its brackets and parameters).
    pub(crate) to_uri: &'a [u8],
    /// The body (hashed for `qop=auth-int`).
    pub(crate) body: &'a [u8],
}

/// Writes one credentials header per challenge in `state` (one per realm), with nonce count
/// `state.nc` and the client nonce `cnonce`. The digest `uri` is the Request-URI exactly as
/// sent (no port added, §22.4), or the To URI when the trunk asks for it.
pub(crate) fn write_credentials(
    w: &mut Writer<'_>,
    auth: &OutboundAuth,
    state: &LegAuth,
    target: &Target<'_>,
    cnonce: &[u8],
) {
    let Some(kind) = answer::answer_header(state.code) else {
        return;
    };
    let uri = match auth.digest_uri {
        DigestUri::RequestUri => target.request_uri,
        DigestUri::To => target.to_uri,
    };
    for value in &state.challenges {
        let Ok(c) = Challenge::parse(value, HeaderKind::WwwAuthenticate) else {
            continue;
        };
        let req = answer::Request {
            method: target.method,
            uri,
            cnonce,
            nc: state.nc,
            realm_override: auth.realm.as_deref().map(str::as_bytes),
            body: target.body,
        };
        if let Ok(v) = answer::answer(
            &c,
            auth.username.as_bytes(),
            auth.password.expose().as_bytes(),
            &req,
        ) {
            w.header(kind, &v);
        }
    }
}

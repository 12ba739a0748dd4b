//! Answering the challenges of a peer (RFC 3261 §22.2–22.3): which challenges to answer,
//! the credentials headers of a request, and the state a dialog or registration keeps to send
//! credentials again with the nonce count going up. Used by calls (b2bua) and by the
//! register-on-behalf agent ([`crate::register`]).

use sbc_config::{DigestUri, OutboundAuth};
use sip_codec::{Challenge, HeaderKind, Message, Writer};

use crate::answer;

/// The challenges sbcd answered on a leg or registration: re-used, with the nonce count going up, for the
/// leg's later requests (RFC 7616 §3.4: a client may re-use a nonce).
#[derive(Debug, Clone)]
pub struct Answered {
    /// 401 or 407: which header the credentials go in.
    pub code: u16,
    /// The challenge header values picked, one per realm.
    pub challenges: Vec<Box<[u8]>>,
    /// The nonce count last used.
    pub nc: u32,
}

/// Why a challenge is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
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
    pub fn as_str(self) -> &'static str {
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
pub fn pick_challenges(msg: &Message<'_, '_>, code: u16) -> (Vec<Box<[u8]>>, bool) {
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
pub struct Target<'a> {
    /// The method as written.
    pub method: &'a [u8],
    /// The Request-URI as written.
    pub request_uri: &'a [u8],
    /// The To URI (without its brackets and parameters).
    pub to_uri: &'a [u8],
    /// The body (hashed for `qop=auth-int`).
    pub body: &'a [u8],
}

/// Writes one credentials header per challenge in `state` (one per realm), with nonce count
/// `state.nc` and the client nonce `cnonce`. The digest `uri` is the Request-URI exactly as
/// sent (no port added, §22.4), or the To URI when the trunk asks for it.
pub fn write_credentials(
    w: &mut Writer<'_>,
    auth: &OutboundAuth,
    state: &Answered,
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

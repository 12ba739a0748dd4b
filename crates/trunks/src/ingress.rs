//! Which trunk a request comes from (DESIGN.md "inbound"): IP allowlist, hash domain, auth
//! header, tech prefix, and whether digest credentials are still needed.
//!
//! A request belongs to the trunk whose inbound checks all pass; where several pass, a trunk
//! that recognises it by something it carries (source address, domain, header, prefix, or
//! credentials for the trunk's realm and user) comes before one that would only challenge it
//! (a digest-only trunk matches any request until it is challenged), then the longest tech
//! prefix wins (trunks that share a source and tell their customers apart by prefix), then
//! the first in file order. With 1,000 trunks a linear scan would cost
//! tens of microseconds, so [`Ingress`] indexes each trunk under its most selective check:
//! its allowlist networks (one hash lookup per distinct prefix length), else its hash domain,
//! else a short list of trunks that can only be told apart by header, prefix or digest. Only
//! the trunks an index names are checked in full.

use std::collections::HashMap;
use std::net::IpAddr;

use sbc_config::net::IpNet;
use sbc_config::{Config, Secret, TrunkId};
use sip_codec::{HeaderKind, Message};

/// An inbound check, as named in `sbc_trunk_auth_failures_total{mode}` and in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `inbound.allow`
    Allow,
    /// `inbound.domain`
    Domain,
    /// `inbound.header`
    Header,
    /// `inbound.prefix`
    Prefix,
    /// `inbound.digest`
    Digest,
    /// A call from the registrar of a register-on-behalf trunk.
    Register,
    /// No trunk's allowlist, hash domain or other index matched at all.
    Unmatched,
}

impl Mode {
    /// The metric label and log word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Domain => "domain",
            Self::Header => "header",
            Self::Prefix => "prefix",
            Self::Digest => "digest",
            Self::Register => "register",
            Self::Unmatched => "unmatched",
        }
    }
}

/// What identification looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'r, 'h, 'b> {
    /// The source address of the packet or connection.
    pub source: IpAddr,
    /// The user part of the Request-URI (the called number, prefix included).
    pub ruri_user: Option<&'b [u8]>,
    /// The host of the Request-URI, as written.
    pub ruri_host: Option<&'b [u8]>,
    /// The request, for the auth header and the realm of any credentials.
    pub msg: &'r Message<'h, 'b>,
}

/// The trunk a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    /// The trunk.
    pub trunk: TrunkId,
    /// Bytes of tech prefix to strip from the called number.
    pub prefix_len: usize,
    /// The trunk wants digest credentials: verify them, or challenge.
    pub digest: bool,
    /// The request was sent to the Contact sbcd registers for this trunk: the called number
    /// is in To, not in the Request-URI (which names sbcd's Contact).
    pub registered_contact: bool,
}

#[derive(Debug)]
struct Entry {
    id: TrunkId,
    allow: Vec<IpNet>,
    /// Lowercase.
    domain: Option<Box<[u8]>>,
    header: Option<(Box<[u8]>, Secret)>,
    prefix: Option<Box<[u8]>>,
    /// The realm, for trunks with `inbound.digest`.
    realm: Option<Box<[u8]>>,
    /// The digest usernames.
    users: Vec<Box<[u8]>>,
}

impl Entry {
    /// Recognises requests by address, domain, header or prefix (not only by a digest
    /// challenge still to come).
    fn has_concrete_check(&self) -> bool {
        !self.allow.is_empty()
            || self.domain.is_some()
            || self.header.is_some()
            || self.prefix.is_some()
    }
}

/// The trunks under one index key, those with a tech prefix indexed again by it: 250 trunks
/// sharing a network, told apart by prefix, cost a few hash lookups, not 250 checks.
#[derive(Debug, Default)]
struct Bucket {
    /// Trunks without a prefix.
    plain: Vec<u32>,
    /// Trunks by their prefix (as configured: unescaped).
    by_prefix: HashMap<Box<[u8]>, Vec<u32>>,
    /// The distinct prefix lengths, longest first.
    prefix_lens: Vec<usize>,
}

impl Bucket {
    fn push(&mut self, n: u32, prefix: Option<&[u8]>) {
        match prefix {
            None => {
                if self.plain.last() != Some(&n) {
                    self.plain.push(n);
                }
            }
            Some(p) => {
                let list = self.by_prefix.entry(p.into()).or_default();
                if list.last() != Some(&n) {
                    list.push(n);
                }
                if !self.prefix_lens.contains(&p.len()) {
                    self.prefix_lens.push(p.len());
                    self.prefix_lens.sort_unstable_by(|a, b| b.cmp(a));
                }
            }
        }
    }

    fn each(&self, user: Option<&[u8]>, all: bool, f: &mut impl FnMut(u32)) {
        self.plain.iter().copied().for_each(&mut *f);
        if all {
            self.by_prefix.values().flatten().copied().for_each(f);
            return;
        }
        let Some(user) = user else { return };
        // The number's first characters, %XX decoded, as long as the longest prefix.
        let mut buf = [0u8; 64];
        let mut len = 0;
        let mut i = 0;
        let want = self
            .prefix_lens
            .first()
            .copied()
            .unwrap_or(0)
            .min(buf.len());
        while len < want {
            let Some((b, used)) = user.get(i..).and_then(first_char) else {
                break;
            };
            buf[len] = b;
            len += 1;
            i += used;
        }
        for &l in &self.prefix_lens {
            if let Some(list) = buf
                .get(..l)
                .filter(|_| l <= len)
                .and_then(|p| self.by_prefix.get(p))
            {
                list.iter().copied().for_each(&mut *f);
            }
        }
    }
}

/// A key of the network index: family, prefix length, masked address.
type NetKey = (bool, u8, u128);

/// The trunk identification index of one configuration. Built once per (re)load; read-only.
#[derive(Debug, Default)]
pub struct Ingress {
    entries: Vec<Entry>,
    /// `(is_v6, prefix_len)` pairs present in `by_net`, longest first.
    net_shapes: Vec<(bool, u8)>,
    by_net: HashMap<NetKey, Bucket>,
    /// Trunks with no allowlist but a hash domain, by lowercase domain.
    by_domain: HashMap<Box<[u8]>, Bucket>,
    /// Trunks with neither: checked for every request.
    rest: Bucket,
    /// Register-on-behalf trunks by the user part of the Contact sbcd registers.
    by_contact_user: HashMap<Box<[u8]>, TrunkId>,
}

fn bits(ip: IpAddr) -> (bool, u128) {
    match ip.to_canonical() {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// `addr` with its host bits cleared (`len` network bits kept of 32 or 128).
fn masked(v6: bool, addr: u128, len: u8) -> u128 {
    let width: u32 = if v6 { 128 } else { 32 };
    let host_bits = width.saturating_sub(u32::from(len));
    if host_bits >= 128 {
        0
    } else {
        (addr >> host_bits) << host_bits
    }
}

impl Ingress {
    /// Indexes every trunk of `config` that has inbound checks. `contact_user` names the user
    /// part of the Contact sbcd registers for a register-on-behalf trunk (None for others).
    pub fn new(config: &Config, mut contact_user: impl FnMut(TrunkId) -> Option<Vec<u8>>) -> Self {
        let mut ing = Self::default();
        for (id, t) in config.trunk_ids() {
            if t.outbound.register.is_some() {
                if let Some(user) = contact_user(id) {
                    ing.by_contact_user.insert(user.into(), id);
                }
            }
            let inb = &t.inbound;
            if !inb.has_checks() {
                continue;
            }
            let n = u32::try_from(ing.entries.len()).unwrap_or(u32::MAX);
            ing.entries.push(Entry {
                id,
                allow: inb.allow.clone(),
                domain: inb
                    .domain
                    .as_ref()
                    .map(|d| d.to_ascii_lowercase().into_bytes().into()),
                header: inb
                    .header
                    .as_ref()
                    .map(|h| (h.name.as_bytes().into(), h.value.clone())),
                prefix: inb.prefix.as_ref().map(|p| p.as_bytes().into()),
                realm: inb.digest.as_ref().map(|d| d.realm.as_bytes().into()),
                users: inb.digest.as_ref().map_or_else(Vec::new, |d| {
                    d.users
                        .iter()
                        .map(|u| u.username.as_bytes().into())
                        .collect()
                }),
            });
            let prefix = inb.prefix.as_deref().map(str::as_bytes);
            if !inb.allow.is_empty() {
                for net in &inb.allow {
                    let (v6, addr) = bits(net.addr());
                    let len = net.prefix_len();
                    ing.by_net
                        .entry((v6, len, masked(v6, addr, len)))
                        .or_default()
                        .push(n, prefix);
                    if !ing.net_shapes.contains(&(v6, len)) {
                        ing.net_shapes.push((v6, len));
                    }
                }
            } else if let Some(d) = &inb.domain {
                ing.by_domain
                    .entry(d.to_ascii_lowercase().into_bytes().into())
                    .or_default()
                    .push(n, prefix);
            } else {
                ing.rest.push(n, prefix);
            }
        }
        ing.net_shapes.sort_by_key(|s| std::cmp::Reverse(s.1));
        ing
    }

    /// The trunk `req` belongs to, if any (see the module docs for the order).
    #[must_use]
    pub fn identify(&self, req: &Request<'_, '_, '_>) -> Option<Matched> {
        if let Some(&trunk) = req.ruri_user.and_then(|u| self.by_contact_user.get(u)) {
            return Some(Matched {
                trunk,
                prefix_len: 0,
                digest: false,
                registered_contact: true,
            });
        }
        let creds = credentials_of(req.msg);
        // Rank: recognised by something the request carries, then the longest prefix, then
        // file order (the lowest index).
        let mut best: Option<(bool, usize, u32)> = None;
        self.candidates(req, false, |n| {
            let e = &self.entries[n as usize];
            if let Ok(plen) = check(e, req, creds) {
                let concrete = e.has_concrete_check() || (e.realm.is_some() && creds.is_some());
                let better = match best {
                    None => true,
                    Some((bc, bl, bn)) => {
                        (concrete, plen) > (bc, bl) || ((concrete, plen) == (bc, bl) && n < bn)
                    }
                };
                if better {
                    best = Some((concrete, plen, n));
                }
            }
        });
        best.map(|(_, prefix_len, n)| {
            let e = &self.entries[n as usize];
            Matched {
                trunk: e.id,
                prefix_len,
                digest: e.realm.is_some(),
                registered_contact: false,
            }
        })
    }

    /// For a request [`identify`](Self::identify) refused: each trunk an index pointed at
    /// and the first of its checks that failed (for the failure counter and a debug line).
    /// With no such trunk (no allowlist or hash domain matched), `f` is called once with
    /// `None` and [`Mode::Unmatched`].
    pub fn failures(&self, req: &Request<'_, '_, '_>, mut f: impl FnMut(Option<TrunkId>, Mode)) {
        let creds = credentials_of(req.msg);
        let mut any = false;
        self.candidates(req, true, |n| {
            let e = &self.entries[n as usize];
            if let Err(mode) = check(e, req, creds) {
                any = true;
                f(Some(e.id), mode);
            }
        });
        if !any {
            f(None, Mode::Unmatched);
        }
    }

    /// Calls `f` with every trunk the indexes name for `req` (a trunk at most once per
    /// index; the same trunk from two networks of its allowlist is checked twice, harmlessly).
    /// Trunks with a tech prefix are named only when the called number starts with it,
    /// unless `all` (the failure report wants every trunk on the request's network).
    fn candidates(&self, req: &Request<'_, '_, '_>, all: bool, mut f: impl FnMut(u32)) {
        let (v6, addr) = bits(req.source);
        let user = req.ruri_user;
        for &(shape_v6, len) in &self.net_shapes {
            if shape_v6 != v6 {
                continue;
            }
            if let Some(b) = self.by_net.get(&(v6, len, masked(v6, addr, len))) {
                b.each(user, all, &mut f);
            }
        }
        if !self.by_domain.is_empty() {
            if let Some(host) = req.ruri_host {
                let mut buf = [0u8; 255];
                if let Some(lower) = buf.get_mut(..host.len()) {
                    lower.copy_from_slice(host);
                    lower.make_ascii_lowercase();
                    if let Some(b) = self.by_domain.get(&*lower) {
                        b.each(user, all, &mut f);
                    }
                }
            }
        }
        self.rest.each(user, all, &mut f);
    }

    /// The trunk whose registrar sends calls to the Contact user `user`.
    #[must_use]
    pub fn by_contact_user(&self, user: &[u8]) -> Option<TrunkId> {
        self.by_contact_user.get(user).copied()
    }
}

/// The first character of a URI user part with `%XX` decoded, and the bytes it took (a `%`
/// not followed by two hex digits stands for itself).
fn first_char(s: &[u8]) -> Option<(u8, usize)> {
    match s {
        [b'%', h, l, ..] => match ((*h as char).to_digit(16), (*l as char).to_digit(16)) {
            (Some(h), Some(l)) => Some(((h << 4 | l) as u8, 3)),
            _ => Some((b'%', 1)),
        },
        [c, ..] => Some((*c, 1)),
        [] => None,
    }
}

/// How many bytes of `user` (as written, `%XX` escapes allowed: `#` must travel as `%23` in a
/// SIP URI, RFC 3261 §25.1, though many carriers send it raw) spell `prefix`.
fn strip_prefix_len(user: &[u8], prefix: &[u8]) -> Option<usize> {
    let mut i = 0;
    for &want in prefix {
        let (got, used) = user.get(i..).and_then(first_char)?;
        if got != want {
            return None;
        }
        i += used;
    }
    Some(i)
}

/// The realm and username of the request's credentials, if it carries any.
fn credentials_of<'b>(msg: &Message<'_, 'b>) -> Option<(&'b [u8], Option<&'b [u8]>)> {
    [HeaderKind::Authorization, HeaderKind::ProxyAuthorization]
        .into_iter()
        .filter_map(|k| msg.header(k))
        .find_map(|h| sip_codec::Challenge::parse(h.value, h.kind).ok())
        .and_then(|c| Some((c.param(b"realm")?, c.param(b"username"))))
}

/// Every check of `e`: the prefix length to strip, or the first check that failed.
fn check(
    e: &Entry,
    req: &Request<'_, '_, '_>,
    creds: Option<(&[u8], Option<&[u8]>)>,
) -> Result<usize, Mode> {
    if !e.allow.is_empty() && !e.allow.iter().any(|net| net.contains(req.source)) {
        return Err(Mode::Allow);
    }
    if let Some(d) = &e.domain {
        if !req.ruri_host.is_some_and(|h| h.eq_ignore_ascii_case(d)) {
            return Err(Mode::Domain);
        }
    }
    if let Some((name, value)) = &e.header {
        // Compared in constant time; every header of that name is tried.
        let ok = req
            .msg
            .headers
            .iter()
            .filter(|h| h.kind == HeaderKind::Other && h.name.eq_ignore_ascii_case(name))
            .fold(false, |ok, h| ok | value.matches(h.value));
        if !ok {
            return Err(Mode::Header);
        }
    }
    let mut plen = 0;
    if let Some(p) = &e.prefix {
        plen = req
            .ruri_user
            .and_then(|u| strip_prefix_len(u, p))
            .ok_or(Mode::Prefix)?;
    }
    if let (Some(realm), Some((theirs, user))) = (&e.realm, creds) {
        // Credentials for another trunk's realm or user: not this trunk (PBXs often share
        // one realm, each with its own username).
        let known_user = user.is_some_and(|u| e.users.iter().any(|x| **x == *u));
        if **realm != *theirs || !known_user {
            return Err(Mode::Digest);
        }
    }
    Ok(plen)
}

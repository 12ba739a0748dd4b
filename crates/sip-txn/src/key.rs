//! Transaction matching (RFC 3261 §17.1.3 for client transactions, §17.2.3 for server ones):
//! which transaction an incoming message belongs to.
//!
//! A key is taken from a parsed [`Message`] without copying ([`ServerKey`], [`ClientKey`]), and
//! stored in a table as one boxed buffer ([`OwnedServerKey`], [`OwnedClientKey`]). A lookup hashes
//! the borrowed key with [`ServerKey::hash64`] (the owned key hashes to the same value) and
//! confirms with [`OwnedServerKey::matches`]; it never allocates. [`TxnTable`] wraps that.
//!
//! # Comparison rules
//! Field values follow RFC 3261 §7.3.1 ("parameter values are case-insensitive", "tokens are
//! always case-insensitive") unless the RFC says otherwise: the branch and the tags compare
//! case-insensitively, as does the sent-by host (§19.1.4 for hosts); methods (§7.1) and the
//! Call-ID (§20.8, "compared byte-by-byte") compare exactly; IPv4 and IPv6 hosts compare as
//! addresses. A sent-by without a port has its transport's default port (5060, or 5061 for TLS,
//! §18.2.2 and §19.1.2; 80 and 443 for WS and WSS, RFC 7118). The Request-URI of the RFC 2543
//! fallback compares as written: a legacy client retransmits the same bytes.
//!
//! # Hash flooding
//! Keys come off the wire, so an attacker chooses them. The hash is std's [`DefaultHasher`]
//! (SipHash-1-3 today) over a seed and then the normalised fields: with a secret seed (passed to
//! [`TxnTable::with_seed`]; randomness is injected, like time) the hasher state is unknown to the
//! attacker and colliding keys are impractical to craft. [`ServerKey::hash64`] uses seed 0 and
//! suits tests and trusted peers.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, DefaultHasher, Hasher};

use sip_codec::{HeaderKind, Host, Message, Method, ParseError, StartLine, Via};

const INVITE: &[u8] = b"INVITE";
const CANCEL: &[u8] = b"CANCEL";

/// Why no transaction key could be taken from a message.
///
/// A server that gets this for a request cannot tell which transaction it belongs to; RFC 3261
/// §8.2 has it answer 400 (unless it is an ACK, which is never answered).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A server key is taken from a request; this is a response.
    #[error("a server transaction is matched by a request, not a response")]
    NotARequest,
    /// A client key is taken from a response (or the request we send); this is the other one.
    #[error("a client transaction is matched by a response, not a request")]
    NotAResponse,
    /// A header the match needs is absent: Via always, CSeq for client matching, and Call-ID,
    /// CSeq, From and To for the RFC 2543 fallback.
    #[error("{0}: missing, needed to match a transaction")]
    Missing(HeaderKind),
    /// The top Via has no branch: client transactions are matched on it (§17.1.3).
    #[error("Via: top value without branch parameter, needed to match a client transaction")]
    MissingBranch,
    /// A header the match needs does not parse.
    #[error(transparent)]
    Malformed(ParseError),
}

impl From<ParseError> for KeyError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::MissingHeader(kind) => Self::Missing(kind),
            other => Self::Malformed(other),
        }
    }
}

// === Normalised fields, borrowed (B = &[u8]) or stored (B = Span) ===

/// A sent-by host, normalised: names compare case-insensitively, addresses by value.
#[derive(Debug, Clone, Copy)]
enum HostKey<B> {
    Name(B),
    V4([u8; 4]),
    V6([u8; 16]),
}

/// The RFC 2543 fallback (§17.2.3, last paragraphs): everything that identified a transaction
/// before branches were unique.
#[derive(Debug, Clone, Copy)]
struct Legacy<B> {
    request_uri: B,
    call_id: B,
    from_tag: Option<B>,
    /// The request's To tag. Not hashed: an ACK carries the tag of the response instead.
    to_tag: Option<B>,
    cseq: u32,
    /// The top Via's transport and branch (if any) complete "the top Via header field".
    transport: B,
    branch: Option<B>,
}

#[derive(Debug, Clone, Copy)]
enum Id<B> {
    /// An RFC 3261 branch (magic cookie included).
    Branch(B),
    Legacy(Legacy<B>),
}

/// What identifies a server transaction: method (INVITE for an ACK), sent-by, and the id.
#[derive(Debug, Clone, Copy)]
struct Fields<B> {
    method: B,
    host: HostKey<B>,
    port: u16,
    id: Id<B>,
}

impl<B: Copy> Fields<B> {
    fn map<C>(&self, mut f: impl FnMut(B) -> C) -> Fields<C> {
        let host = match self.host {
            HostKey::Name(n) => HostKey::Name(f(n)),
            HostKey::V4(a) => HostKey::V4(a),
            HostKey::V6(a) => HostKey::V6(a),
        };
        let method = f(self.method);
        let id = match self.id {
            Id::Branch(b) => Id::Branch(f(b)),
            Id::Legacy(l) => Id::Legacy(Legacy {
                request_uri: f(l.request_uri),
                call_id: f(l.call_id),
                from_tag: l.from_tag.map(&mut f),
                to_tag: l.to_tag.map(&mut f),
                cseq: l.cseq,
                transport: f(l.transport),
                branch: l.branch.map(&mut f),
            }),
        };
        Fields {
            method,
            host,
            port: self.port,
            id,
        }
    }
}

impl Fields<&[u8]> {
    /// Do both name the same transaction? The RFC 2543 To tag is left to
    /// `OwnedServerKey::matches`, since an ACK carries the response's tag.
    fn same(&self, other: &Self) -> bool {
        let ids = match (&self.id, &other.id) {
            (Id::Branch(a), Id::Branch(b)) => a.eq_ignore_ascii_case(b),
            (Id::Legacy(a), Id::Legacy(b)) => {
                a.cseq == b.cseq
                    && a.call_id == b.call_id
                    && a.request_uri == b.request_uri
                    && opt_eq_ci(a.from_tag, b.from_tag)
                    && a.transport.eq_ignore_ascii_case(b.transport)
                    && opt_eq_ci(a.branch, b.branch)
            }
            _ => false,
        };
        ids && self.method == other.method
            && self.port == other.port
            && match (self.host, other.host) {
                (HostKey::Name(a), HostKey::Name(b)) => a.eq_ignore_ascii_case(b),
                (HostKey::V4(a), HostKey::V4(b)) => a == b,
                (HostKey::V6(a), HostKey::V6(b)) => a == b,
                _ => false,
            }
    }

    fn hash(&self, seed: u64) -> u64 {
        let mut h = KeyHasher::new(seed);
        h.exact(self.method);
        match self.host {
            HostKey::Name(n) => {
                h.0.write_u8(0);
                h.lower(n);
            }
            HostKey::V4(a) => {
                h.0.write_u8(4);
                h.0.write(&a);
            }
            HostKey::V6(a) => {
                h.0.write_u8(6);
                h.0.write(&a);
            }
        }
        h.0.write_u16(self.port);
        match &self.id {
            Id::Branch(b) => {
                h.0.write_u8(0);
                h.lower(b);
            }
            Id::Legacy(l) => {
                h.0.write_u8(1);
                h.exact(l.request_uri);
                h.exact(l.call_id);
                h.opt_lower(l.from_tag);
                h.0.write_u32(l.cseq);
                h.lower(l.transport);
                h.opt_lower(l.branch);
            }
        }
        h.0.finish()
    }

    fn legacy_to_tag(&self) -> Option<&[u8]> {
        match &self.id {
            Id::Legacy(l) => l.to_tag,
            Id::Branch(_) => None,
        }
    }

    /// Builds the stored form: every byte field copied into one buffer.
    fn store(&self, response_to_tag: Option<&[u8]>) -> (Box<[u8]>, Fields<Span>, Option<Span>) {
        let mut total = response_to_tag.map_or(0, <[u8]>::len);
        self.map(|b| total += b.len());
        let mut buf = Vec::with_capacity(total);
        let fields = self.map(|b| Span::push(&mut buf, b));
        let rtt = response_to_tag.map(|b| Span::push(&mut buf, b));
        (buf.into_boxed_slice(), fields, rtt)
    }
}

fn opt_eq_ci(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// A byte range of an owned key's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn push(buf: &mut Vec<u8>, b: &[u8]) -> Self {
        let start = buf.len();
        buf.extend_from_slice(b);
        Self {
            start,
            end: buf.len(),
        }
    }

    /// The bytes of this span. Spans are made by [`Span::push`] into the same buffer, so the
    /// range is always in bounds; an empty slice stands in rather than a panic.
    fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or_default()
    }
}

/// SipHash (std's [`DefaultHasher`], fixed keys) over a seed and the normalised fields. Every
/// variable-length field is followed by its length, so field boundaries cannot shift.
struct KeyHasher(DefaultHasher);

impl KeyHasher {
    fn new(seed: u64) -> Self {
        let mut h = DefaultHasher::new();
        h.write_u64(seed);
        Self(h)
    }

    fn exact(&mut self, b: &[u8]) {
        self.0.write(b);
        self.0.write_usize(b.len());
    }

    /// Hashes `b` ASCII-lowercased, through a stack buffer (no allocation).
    fn lower(&mut self, b: &[u8]) {
        let mut chunk = [0u8; 64];
        for part in b.chunks(chunk.len()) {
            for (d, s) in chunk.iter_mut().zip(part) {
                *d = s.to_ascii_lowercase();
            }
            self.0.write(&chunk[..part.len()]);
        }
        self.0.write_usize(b.len());
    }

    fn opt_lower(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.0.write_u8(0),
            Some(b) => {
                self.0.write_u8(1);
                self.lower(b);
            }
        }
    }
}

/// The default port of a Via transport (RFC 3261 §18.2.2 and §19.1.2; RFC 7118 for WebSocket).
fn default_port(transport: &[u8]) -> u16 {
    if transport.eq_ignore_ascii_case(b"TLS") || transport.eq_ignore_ascii_case(b"TLS-SCTP") {
        5061
    } else if transport.eq_ignore_ascii_case(b"WSS") {
        443
    } else if transport.eq_ignore_ascii_case(b"WS") {
        80
    } else {
        5060
    }
}

fn host_key<'a>(via: &Via<'a>) -> HostKey<&'a [u8]> {
    match via.host {
        Host::Name(n) => HostKey::Name(n.as_bytes()),
        Host::V4(a) => HostKey::V4(a.octets()),
        Host::V6(a) => HostKey::V6(a.octets()),
    }
}

/// Writes bytes for `Debug` as an escaped string.
struct Ascii<'a>(&'a [u8]);

impl fmt::Debug for Ascii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

fn debug_fields(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    k: &Fields<&[u8]>,
    extra: Option<(&str, Option<&[u8]>)>,
) -> fmt::Result {
    let mut d = f.debug_struct(name);
    d.field("method", &Ascii(k.method));
    match k.host {
        HostKey::Name(n) => d.field("host", &Ascii(n)),
        HostKey::V4(a) => d.field("host", &std::net::Ipv4Addr::from(a)),
        HostKey::V6(a) => d.field("host", &std::net::Ipv6Addr::from(a)),
    };
    d.field("port", &k.port);
    match &k.id {
        Id::Branch(b) => {
            d.field("branch", &Ascii(b));
        }
        Id::Legacy(l) => {
            d.field("request_uri", &Ascii(l.request_uri))
                .field("call_id", &Ascii(l.call_id))
                .field("from_tag", &l.from_tag.map(Ascii))
                .field("to_tag", &l.to_tag.map(Ascii))
                .field("cseq", &l.cseq)
                .field("transport", &Ascii(l.transport))
                .field("branch", &l.branch.map(Ascii));
        }
    }
    if let Some((name, v)) = extra {
        d.field(name, &v.map(Ascii));
    }
    d.finish()
}

// === ServerKey ===

/// The key of the server transaction a request belongs to (RFC 3261 §17.2.3), borrowed from the
/// message: nothing is copied.
///
/// * With an RFC 3261 branch (it starts with `z9hG4bK`): the branch, the top Via's sent-by, and
///   the method, where an ACK counts as INVITE ("the method of the request matches the one that
///   created the transaction, except for ACK, where the method of the request that created the
///   transaction is INVITE"). A CANCEL therefore has its own transaction; see
///   [`invite_of_cancel`](Self::invite_of_cancel) for the one it targets (§9.2).
/// * Otherwise the RFC 2543 fallback: Request-URI, To tag, From tag, Call-ID, CSeq number and top
///   Via (sent-by, transport, branch if any), and the method as above. An ACK matches the INVITE
///   "if the To tag of the ACK matches the To tag of the response sent by the server
///   transaction": record that tag with [`OwnedServerKey::set_response_to_tag`].
///
/// An ACK for a 2xx carries a new branch (§17.1.1.3) and so matches no server transaction: it
/// belongs to the TU.
#[derive(Clone, Copy)]
pub struct ServerKey<'a> {
    f: Fields<&'a [u8]>,
    ack: bool,
}

impl<'a> ServerKey<'a> {
    /// Takes the key of a received request.
    ///
    /// # Errors
    /// [`KeyError::NotARequest`] for a response; [`KeyError::Missing`] or
    /// [`KeyError::Malformed`] when the top Via (or, for the RFC 2543 fallback, Call-ID, CSeq,
    /// From or To) is absent or does not parse.
    pub fn from_request(msg: &Message<'_, 'a>) -> Result<Self, KeyError> {
        let StartLine::Request {
            method,
            method_raw,
            uri,
        } = msg.start
        else {
            return Err(KeyError::NotARequest);
        };
        let via = msg.top_via()?;
        let ack = method == Method::Ack;
        let rfc3261 = via.branch().filter(|_| via.has_rfc3261_branch());
        let id = match rfc3261 {
            Some(branch) => Id::Branch(branch),
            None => Id::Legacy(Legacy {
                request_uri: uri,
                call_id: msg.call_id().ok_or(KeyError::Missing(HeaderKind::CallId))?,
                from_tag: msg.from()?.tag(),
                to_tag: msg.to()?.tag(),
                cseq: msg.cseq()?.seq,
                transport: via.transport,
                branch: via.branch(),
            }),
        };
        Ok(Self {
            f: Fields {
                method: if ack { INVITE } else { method_raw },
                host: host_key(&via),
                port: via.port.unwrap_or_else(|| default_port(via.transport)),
                id,
            },
            ack,
        })
    }

    /// Was the request an ACK? Its [`method`](Self::method) is then INVITE.
    pub fn is_ack(&self) -> bool {
        self.ack
    }

    /// Is the key an RFC 3261 branch (rather than the RFC 2543 fallback)?
    pub fn is_rfc3261(&self) -> bool {
        matches!(self.f.id, Id::Branch(_))
    }

    /// The method of the transaction the request belongs to: the request's own, INVITE for ACK.
    pub fn method(&self) -> &'a [u8] {
        self.f.method
    }

    /// The top Via branch, if the request had one.
    pub fn branch(&self) -> Option<&'a [u8]> {
        match self.f.id {
            Id::Branch(b) => Some(b),
            Id::Legacy(l) => l.branch,
        }
    }

    /// For a CANCEL, the key of the INVITE it cancels; `None` for any other method.
    ///
    /// RFC 3261 §9.2: the TU finds the transaction to cancel by "assuming that the request method
    /// is anything but CANCEL or ACK and applying the transaction matching procedures of Section
    /// 17.2.3". A CANCEL copies the INVITE's Request-URI, Call-ID, From, To, CSeq number and top
    /// Via (§9.1), so only the method changes.
    pub fn invite_of_cancel(&self) -> Option<Self> {
        (self.f.method == CANCEL && !self.ack).then_some(Self {
            f: Fields {
                method: INVITE,
                ..self.f
            },
            ack: false,
        })
    }

    /// The hash of the key with seed 0 (see [`hash64_seeded`](Self::hash64_seeded)).
    pub fn hash64(&self) -> u64 {
        self.hash64_seeded(0)
    }

    /// A hash of the normalised fields, equal to [`OwnedServerKey::hash64_seeded`] of every
    /// stored key this one [matches](OwnedServerKey::matches). Deterministic for a given seed
    /// within one build (std's SipHash), not across Rust releases: never persist it.
    pub fn hash64_seeded(&self, seed: u64) -> u64 {
        self.f.hash(seed)
    }

    /// Copies the key into one buffer, to store in a table. The ACK flag is not kept: store the
    /// key of the request that creates the transaction.
    pub fn into_owned(self) -> OwnedServerKey {
        OwnedServerKey::from(self)
    }
}

impl fmt::Debug for ServerKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(f, "ServerKey", &self.f, None)?;
        if self.ack {
            f.write_str(" (ACK)")?;
        }
        Ok(())
    }
}

/// A [`ServerKey`] stored in one boxed buffer, for a transaction table.
#[derive(Clone)]
pub struct OwnedServerKey {
    buf: Box<[u8]>,
    fields: Fields<Span>,
    /// The To tag of the response the server sent (RFC 2543 fallback only).
    response_to_tag: Option<Span>,
}

impl OwnedServerKey {
    fn view(&self) -> Fields<&[u8]> {
        self.fields.map(|s| s.of(&self.buf))
    }

    /// Does the request with key `key` belong to this transaction (RFC 3261 §17.2.3)?
    pub fn matches(&self, key: &ServerKey<'_>) -> bool {
        let mine = self.view();
        if !mine.same(&key.f) {
            return false;
        }
        match (&mine.id, &key.f.id) {
            (Id::Legacy(m), Id::Legacy(k)) => {
                let want = if key.ack {
                    // The ACK carries the To tag of our response; a re-INVITE's response keeps the
                    // request's tag (§8.2.6.2), so that is the default.
                    self.response_to_tag.map(|s| s.of(&self.buf)).or(m.to_tag)
                } else {
                    m.to_tag
                };
                opt_eq_ci(want, k.to_tag)
            }
            _ => true,
        }
    }

    /// Records the To tag of the response the server sent, so that the ACK of an RFC 2543
    /// client (which has no RFC 3261 branch) matches the INVITE (§17.2.3). Without it, an ACK
    /// must carry the INVITE's own To tag. A no-op for RFC 3261 keys; the hash does not change.
    pub fn set_response_to_tag(&mut self, tag: &[u8]) {
        if matches!(self.fields.id, Id::Legacy(_)) {
            let (buf, fields, rtt) = self.view().store(Some(tag));
            *self = Self {
                buf,
                fields,
                response_to_tag: rtt,
            };
        }
    }

    /// A borrowed view of the stored key (without the ACK flag).
    pub fn as_key(&self) -> ServerKey<'_> {
        ServerKey {
            f: self.view(),
            ack: false,
        }
    }

    /// Is the key an RFC 3261 branch (rather than the RFC 2543 fallback)?
    pub fn is_rfc3261(&self) -> bool {
        matches!(self.fields.id, Id::Branch(_))
    }

    /// The method of the transaction.
    pub fn method(&self) -> &[u8] {
        self.fields.method.of(&self.buf)
    }

    /// [`ServerKey::hash64`] of the stored key.
    pub fn hash64(&self) -> u64 {
        self.hash64_seeded(0)
    }

    /// [`ServerKey::hash64_seeded`] of the stored key.
    pub fn hash64_seeded(&self, seed: u64) -> u64 {
        self.view().hash(seed)
    }
}

impl From<ServerKey<'_>> for OwnedServerKey {
    fn from(key: ServerKey<'_>) -> Self {
        let (buf, fields, response_to_tag) = key.f.store(None);
        Self {
            buf,
            fields,
            response_to_tag,
        }
    }
}

/// Two stored keys are equal when they name the same transaction; a recorded response To tag
/// does not count (it is learnt later and does not identify the transaction).
impl PartialEq for OwnedServerKey {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.view(), other.view());
        a.same(&b) && opt_eq_ci(a.legacy_to_tag(), b.legacy_to_tag())
    }
}

impl Eq for OwnedServerKey {}

impl fmt::Debug for OwnedServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rtt = self
            .response_to_tag
            .map(|s| ("response_to_tag", Some(s.of(&self.buf))));
        debug_fields(f, "OwnedServerKey", &self.view(), rtt)
    }
}

// === ClientKey ===

/// The key of the client transaction a response belongs to (RFC 3261 §17.1.3): the top Via
/// branch and the CSeq method. The method is needed "since a CANCEL request constitutes a
/// different transaction, but shares the same value of the branch parameter".
///
/// The branch is one we generated, so no RFC 2543 fallback applies.
#[derive(Clone, Copy)]
pub struct ClientKey<'a> {
    branch: &'a [u8],
    method: &'a [u8],
}

impl<'a> ClientKey<'a> {
    /// A key from its parts: the branch we put in the top Via, and the request method.
    pub fn new(branch: &'a [u8], method: &'a [u8]) -> Self {
        Self { branch, method }
    }

    /// The key of a received response: top Via branch and CSeq method.
    ///
    /// # Errors
    /// [`KeyError::NotAResponse`] for a request; [`KeyError::MissingBranch`],
    /// [`KeyError::Missing`] or [`KeyError::Malformed`] for an absent or bad Via or CSeq.
    pub fn from_response(msg: &Message<'_, 'a>) -> Result<Self, KeyError> {
        if msg.is_request() {
            return Err(KeyError::NotAResponse);
        }
        let branch = msg.top_via()?.branch().ok_or(KeyError::MissingBranch)?;
        Ok(Self {
            branch,
            method: msg.cseq()?.method,
        })
    }

    /// The key of a request we send: top Via branch and the request method.
    ///
    /// # Errors
    /// [`KeyError::NotARequest`] for a response; [`KeyError::MissingBranch`],
    /// [`KeyError::Missing`] or [`KeyError::Malformed`] for an absent or bad Via.
    pub fn from_request(msg: &Message<'_, 'a>) -> Result<Self, KeyError> {
        let StartLine::Request { method_raw, .. } = msg.start else {
            return Err(KeyError::NotARequest);
        };
        let branch = msg.top_via()?.branch().ok_or(KeyError::MissingBranch)?;
        Ok(Self {
            branch,
            method: method_raw,
        })
    }

    /// The top Via branch.
    pub fn branch(&self) -> &'a [u8] {
        self.branch
    }

    /// The method (CSeq method of a response).
    pub fn method(&self) -> &'a [u8] {
        self.method
    }

    /// The hash of the key with seed 0 (see [`hash64_seeded`](Self::hash64_seeded)).
    pub fn hash64(&self) -> u64 {
        self.hash64_seeded(0)
    }

    /// A hash of the branch (lowercased) and method, equal to
    /// [`OwnedClientKey::hash64_seeded`] of every stored key this one matches.
    pub fn hash64_seeded(&self, seed: u64) -> u64 {
        let mut h = KeyHasher::new(seed);
        h.lower(self.branch);
        h.exact(self.method);
        h.0.finish()
    }

    /// Copies the key into one buffer, to store in a table.
    pub fn into_owned(self) -> OwnedClientKey {
        OwnedClientKey::from(self)
    }

    fn same(&self, other: &ClientKey<'_>) -> bool {
        self.method == other.method && self.branch.eq_ignore_ascii_case(other.branch)
    }
}

impl fmt::Debug for ClientKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("branch", &Ascii(self.branch))
            .field("method", &Ascii(self.method))
            .finish()
    }
}

/// A [`ClientKey`] stored in one boxed buffer: branch then method.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnedClientKey {
    buf: Box<[u8]>,
    branch_len: usize,
}

impl OwnedClientKey {
    /// A borrowed view of the stored key.
    pub fn as_key(&self) -> ClientKey<'_> {
        let (branch, method) = self.buf.split_at(self.branch_len.min(self.buf.len()));
        ClientKey { branch, method }
    }

    /// Does the response with key `key` belong to this transaction (RFC 3261 §17.1.3)?
    pub fn matches(&self, key: &ClientKey<'_>) -> bool {
        self.as_key().same(key)
    }

    /// [`ClientKey::hash64`] of the stored key.
    pub fn hash64(&self) -> u64 {
        self.as_key().hash64()
    }

    /// [`ClientKey::hash64_seeded`] of the stored key.
    pub fn hash64_seeded(&self, seed: u64) -> u64 {
        self.as_key().hash64_seeded(seed)
    }
}

impl From<ClientKey<'_>> for OwnedClientKey {
    fn from(key: ClientKey<'_>) -> Self {
        let mut buf = Vec::with_capacity(key.branch.len() + key.method.len());
        buf.extend_from_slice(key.branch);
        buf.extend_from_slice(key.method);
        Self {
            buf: buf.into_boxed_slice(),
            branch_len: key.branch.len(),
        }
    }
}

impl fmt::Debug for OwnedClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.as_key();
        f.debug_struct("OwnedClientKey")
            .field("branch", &Ascii(k.branch))
            .field("method", &Ascii(k.method))
            .finish()
    }
}

// === TxnTable ===

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::OwnedServerKey {}
    impl Sealed for super::OwnedClientKey {}
}

/// A stored key that a [`TxnTable`] can look up by its borrowed form: [`OwnedServerKey`] (by
/// [`ServerKey`]) or [`OwnedClientKey`] (by [`ClientKey`]).
pub trait TableKey: sealed::Sealed + Eq {
    /// The borrowed key, taken from a message.
    type Ref<'a>;
    /// The hash of a borrowed key.
    fn hash_ref(key: &Self::Ref<'_>, seed: u64) -> u64;
    /// The hash of the stored key; equal to [`hash_ref`](Self::hash_ref) of any key it matches.
    fn hash_stored(&self, seed: u64) -> u64;
    /// Does the borrowed key name this transaction?
    fn matches_ref(&self, key: &Self::Ref<'_>) -> bool;
}

impl TableKey for OwnedServerKey {
    type Ref<'a> = ServerKey<'a>;
    fn hash_ref(key: &ServerKey<'_>, seed: u64) -> u64 {
        key.hash64_seeded(seed)
    }
    fn hash_stored(&self, seed: u64) -> u64 {
        self.hash64_seeded(seed)
    }
    fn matches_ref(&self, key: &ServerKey<'_>) -> bool {
        self.matches(key)
    }
}

impl TableKey for OwnedClientKey {
    type Ref<'a> = ClientKey<'a>;
    fn hash_ref(key: &ClientKey<'_>, seed: u64) -> u64 {
        key.hash64_seeded(seed)
    }
    fn hash_stored(&self, seed: u64) -> u64 {
        self.hash64_seeded(seed)
    }
    fn matches_ref(&self, key: &ClientKey<'_>) -> bool {
        self.matches(key)
    }
}

/// The hashes are already SipHash outputs: the map uses them as they are.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Transactions by key: a map from the key hash to the (almost always single) transaction with
/// that hash. Lookups by borrowed key hash once and compare, and never allocate; inserts
/// allocate the bucket.
///
/// Iteration order is unspecified but deterministic for a given seed.
#[derive(Debug)]
pub struct TxnTable<K, V> {
    seed: u64,
    buckets: HashMap<u64, Vec<(K, V)>, BuildHasherDefault<PassThrough>>,
    len: usize,
}

impl<K: TableKey, V> Default for TxnTable<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: TableKey, V> TxnTable<K, V> {
    /// An empty table with seed 0: for tests and trusted peers (see the module docs).
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// An empty table whose hashes are keyed by `seed`; pass a random one to resist hash
    /// flooding from the network.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            buckets: HashMap::default(),
            len: 0,
        }
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Is the table empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The transaction a message key belongs to.
    pub fn get(&self, key: &K::Ref<'_>) -> Option<&V> {
        self.get_key_value(key).map(|(_, v)| v)
    }

    /// The transaction a message key belongs to, with its stored key.
    pub fn get_key_value(&self, key: &K::Ref<'_>) -> Option<(&K, &V)> {
        let bucket = self.buckets.get(&K::hash_ref(key, self.seed))?;
        bucket
            .iter()
            .find(|(k, _)| k.matches_ref(key))
            .map(|(k, v)| (k, v))
    }

    /// The transaction a message key belongs to, mutably.
    pub fn get_mut(&mut self, key: &K::Ref<'_>) -> Option<&mut V> {
        let bucket = self.buckets.get_mut(&K::hash_ref(key, self.seed))?;
        bucket
            .iter_mut()
            .find(|(k, _)| k.matches_ref(key))
            .map(|(_, v)| v)
    }

    /// Stores a transaction; an equal key already present has its value replaced and returned.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = key.hash_stored(self.seed);
        self.insert_hashed(hash, key, value)
    }

    fn insert_hashed(&mut self, hash: u64, key: K, value: V) -> Option<V> {
        let bucket = self.buckets.entry(hash).or_default();
        if let Some((_, v)) = bucket.iter_mut().find(|(k, _)| *k == key) {
            return Some(std::mem::replace(v, value));
        }
        bucket.push((key, value));
        self.len += 1;
        None
    }

    /// Removes the transaction a message key belongs to.
    pub fn remove(&mut self, key: &K::Ref<'_>) -> Option<(K, V)> {
        let hash = K::hash_ref(key, self.seed);
        let bucket = self.buckets.get_mut(&hash)?;
        let i = bucket.iter().position(|(k, _)| k.matches_ref(key))?;
        let entry = bucket.swap_remove(i);
        if bucket.is_empty() {
            self.buckets.remove(&hash);
        }
        self.len -= 1;
        Some(entry)
    }

    /// Keeps only the transactions for which `keep` returns true (e.g. drops the terminated).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let mut len = 0;
        self.buckets.retain(|_, bucket| {
            bucket.retain_mut(|(k, v)| keep(k, v));
            len += bucket.len();
            !bucket.is_empty()
        });
        self.len = len;
    }

    /// Every transaction, in unspecified order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.buckets
            .values()
            .flat_map(|b| b.iter().map(|(k, v)| (k, v)))
    }

    /// Every transaction, mutably, in unspecified order (e.g. to fire timeouts).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.buckets
            .values_mut()
            .flat_map(|b| b.iter_mut().map(|(_, v)| v))
    }
}

#[cfg(test)]
mod tests {
    use sip_codec::{parse, EMPTY_HEADER};

    use super::*;

    /// An INVITE-shaped request; `via` is the whole top Via value, `to_tag` is appended to To.
    fn request(method: &str, via: &str, cseq: &str, to_tag: &str) -> Vec<u8> {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\n\
             Via: {via}\r\n\
             Via: SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKupstream\r\n\
             Max-Forwards: 70\r\n\
             From: Alice <sip:alice@example.org>;tag=from1\r\n\
             To: <sip:bob@example.com>{to_tag}\r\n\
             Call-ID: a84b4c76e66710@pc33.example.org\r\n\
             CSeq: {cseq}\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    const VIA: &str = "SIP/2.0/UDP pc33.example.org:5060;branch=z9hG4bK776asdhds";

    fn skey(raw: &[u8]) -> ServerKey<'_> {
        let mut h = [EMPTY_HEADER; 16];
        let msg = parse(raw, &mut h).expect("test message parses");
        ServerKey::from_request(&msg).expect("test message has a key")
    }

    fn ckey(raw: &[u8]) -> ClientKey<'_> {
        let mut h = [EMPTY_HEADER; 16];
        let msg = parse(raw, &mut h).expect("test message parses");
        if msg.is_request() {
            ClientKey::from_request(&msg).expect("test request has a key")
        } else {
            ClientKey::from_response(&msg).expect("test response has a key")
        }
    }

    fn skey_err(raw: &[u8]) -> KeyError {
        let mut h = [EMPTY_HEADER; 16];
        let msg = parse(raw, &mut h).expect("test message parses");
        ServerKey::from_request(&msg).expect_err("test message has no key")
    }

    /// Asserts that `stored` matches `key` and that their hashes agree (for two seeds).
    fn assert_match(stored: &OwnedServerKey, key: &ServerKey<'_>) {
        assert!(stored.matches(key), "{stored:?} should match {key:?}");
        assert_eq!(stored.hash64(), key.hash64());
        assert_eq!(stored.hash64_seeded(7), key.hash64_seeded(7));
    }

    fn response(code: u16, via: &str, cseq: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 {code} Whatever\r\n\
             Via: {via}\r\n\
             From: <sip:alice@example.org>;tag=from1\r\n\
             To: <sip:bob@example.com>;tag=to9\r\n\
             Call-ID: a84b4c76e66710@pc33.example.org\r\n\
             CSeq: {cseq}\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn invite_retransmission_matches() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let again = invite.clone();
        let stored = skey(&invite).into_owned();
        let key = skey(&again);
        assert!(key.is_rfc3261() && !key.is_ack());
        assert_eq!(key.branch(), Some(&b"z9hG4bK776asdhds"[..]));
        assert_match(&stored, &key);
        assert_eq!(stored, key.into_owned());
    }

    #[test]
    fn ack_for_non_2xx_matches_the_invite_transaction() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let ack = request("ACK", VIA, "1 ACK", ";tag=to9");
        let stored = skey(&invite).into_owned();
        let key = skey(&ack);
        assert!(key.is_ack());
        assert_eq!(key.method(), b"INVITE");
        assert_match(&stored, &key);
    }

    #[test]
    fn ack_for_2xx_has_a_new_branch_and_matches_nothing() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let ack = request(
            "ACK",
            "SIP/2.0/UDP pc33.example.org:5060;branch=z9hG4bKnew2xxack",
            "1 ACK",
            ";tag=to9",
        );
        assert!(!skey(&invite).into_owned().matches(&skey(&ack)));
    }

    #[test]
    fn cancel_is_its_own_transaction_but_names_its_invite() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let cancel = request("CANCEL", VIA, "1 CANCEL", "");
        let stored_invite = skey(&invite).into_owned();
        let key = skey(&cancel);
        assert!(!stored_invite.matches(&key), "§17.2.3: CANCEL ≠ INVITE");
        let stored_cancel = key.into_owned();
        assert_match(&stored_cancel, &skey(&cancel));
        assert!(!stored_cancel.matches(&skey(&invite)));

        let target = key.invite_of_cancel().expect("a CANCEL");
        assert_eq!(target.method(), b"INVITE");
        assert_match(&stored_invite, &target);
        assert!(skey(&invite).invite_of_cancel().is_none());
    }

    #[test]
    fn other_methods_with_the_same_branch_do_not_match() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let bye = request("BYE", VIA, "2 BYE", ";tag=to9");
        let ext = request("FOO", VIA, "1 FOO", "");
        let stored = skey(&invite).into_owned();
        assert!(!stored.matches(&skey(&bye)));
        assert!(!stored.matches(&skey(&ext)));
        assert_match(&skey(&ext).into_owned(), &skey(&ext));
    }

    #[test]
    fn different_sent_by_does_not_match() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let stored = skey(&invite).into_owned();
        for via in [
            "SIP/2.0/UDP pc34.example.org:5060;branch=z9hG4bK776asdhds",
            "SIP/2.0/UDP pc33.example.org:5070;branch=z9hG4bK776asdhds",
            "SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK776asdhds",
            "SIP/2.0/TLS pc33.example.org;branch=z9hG4bK776asdhds",
            "SIP/2.0/UDP pc33.example.org:5060;branch=z9hG4bK776asdhdt",
        ] {
            let other = request("INVITE", via, "1 INVITE", "");
            assert!(!stored.matches(&skey(&other)), "{via}");
        }
    }

    #[test]
    fn sent_by_host_and_branch_compare_case_insensitively_ports_by_default() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let stored = skey(&invite).into_owned();
        for via in [
            "SIP/2.0/UDP PC33.Example.ORG:5060;branch=z9hG4bK776asdhds",
            // No port on UDP is 5060 (§18.2.2).
            "SIP/2.0/UDP pc33.example.org;branch=z9hG4bK776asdhds",
            "SIP/2.0/udp pc33.example.org;BRANCH=z9hG4bK776ASDHDS;received=192.0.2.1",
        ] {
            let other = request("INVITE", via, "1 INVITE", "");
            assert_match(&stored, &skey(&other));
        }
        // TLS defaults to 5061.
        let tls = request(
            "INVITE",
            "SIP/2.0/TLS pc33.example.org;branch=z9hG4bK1",
            "1 INVITE",
            "",
        );
        let tls_port = request(
            "INVITE",
            "SIP/2.0/TLS pc33.example.org:5061;branch=z9hG4bK1",
            "1 INVITE",
            "",
        );
        assert_match(&skey(&tls).into_owned(), &skey(&tls_port));
    }

    #[test]
    fn ip_hosts_compare_as_addresses() {
        let a = request(
            "OPTIONS",
            "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKv6",
            "1 OPTIONS",
            "",
        );
        let b = request(
            "OPTIONS",
            "SIP/2.0/UDP [2001:DB8:0:0:0:0:9:1]:5060;branch=z9hG4bKv6",
            "1 OPTIONS",
            "",
        );
        assert_match(&skey(&a).into_owned(), &skey(&b));
    }

    // --- RFC 2543 fallback (§17.2.3, last paragraphs) ---

    const OLD_VIA: &str = "SIP/2.0/UDP oldphone.example.org";

    #[test]
    fn rfc2543_retransmission_matches_on_the_old_fields() {
        let invite = request("INVITE", OLD_VIA, "4711 INVITE", "");
        let key = skey(&invite);
        assert!(!key.is_rfc3261());
        let stored = key.into_owned();
        assert_match(&stored, &skey(&invite.clone()));
        // A non-3261 branch is part of "the top Via", not a key of its own.
        let with_branch = request(
            "INVITE",
            "SIP/2.0/UDP oldphone.example.org;branch=7",
            "4711 INVITE",
            "",
        );
        assert!(!stored.matches(&skey(&with_branch)));
        assert_match(&skey(&with_branch).into_owned(), &skey(&with_branch));
    }

    #[test]
    fn rfc2543_any_field_differing_is_another_transaction() {
        let invite = request("INVITE", OLD_VIA, "4711 INVITE", "");
        let stored = skey(&invite).into_owned();
        let text = String::from_utf8(invite.clone()).expect("ascii");
        for (from, to) in [
            ("4711 INVITE", "4712 INVITE"),
            ("sip:bob@example.com SIP", "sip:carol@example.com SIP"),
            ("tag=from1", "tag=from2"),
            ("a84b4c76e66710@", "b84b4c76e66710@"),
            ("UDP oldphone", "TCP oldphone"),
            (
                "To: <sip:bob@example.com>",
                "To: <sip:bob@example.com>;tag=x",
            ),
        ] {
            let other = text.replacen(from, to, 1).into_bytes();
            assert!(!stored.matches(&skey(&other)), "{from} -> {to}");
        }
        // Call-ID compares exactly (§20.8), tags do not.
        let upper_call_id = text
            .replacen("a84b4c76e66710@", "A84B4C76E66710@", 1)
            .into_bytes();
        assert!(!stored.matches(&skey(&upper_call_id)));
        let upper_tag = text.replacen("tag=from1", "tag=FROM1", 1).into_bytes();
        assert_match(&stored, &skey(&upper_tag));
    }

    #[test]
    fn rfc2543_ack_matches_by_the_to_tag_of_the_response() {
        let invite = request("INVITE", OLD_VIA, "4711 INVITE", "");
        let ack = request("ACK", OLD_VIA, "4711 ACK", ";tag=resp77");
        let wrong = request("ACK", OLD_VIA, "4711 ACK", ";tag=other");
        let mut stored = skey(&invite).into_owned();
        assert!(
            !stored.matches(&skey(&ack)),
            "tag of the response not known yet"
        );
        let hash = stored.hash64();
        stored.set_response_to_tag(b"resp77");
        assert_eq!(stored.hash64(), hash, "the To tag is not hashed");
        assert_match(&stored, &skey(&ack));
        assert!(!stored.matches(&skey(&wrong)));
        // The INVITE itself (no To tag) still matches after the tag is recorded.
        assert_match(&stored, &skey(&invite));
        // A recorded tag does not make two stored keys different.
        assert_eq!(stored, skey(&invite).into_owned());
    }

    #[test]
    fn rfc2543_reinvite_ack_defaults_to_the_request_to_tag() {
        let reinvite = request("INVITE", OLD_VIA, "9 INVITE", ";tag=dlg5");
        let ack = request("ACK", OLD_VIA, "9 ACK", ";tag=dlg5");
        assert_match(&skey(&reinvite).into_owned(), &skey(&ack));
    }

    #[test]
    fn rfc2543_cancel_matches_its_invite_except_for_the_method() {
        let invite = request("INVITE", OLD_VIA, "4711 INVITE", "");
        let cancel = request("CANCEL", OLD_VIA, "4711 CANCEL", "");
        let mut stored = skey(&invite).into_owned();
        stored.set_response_to_tag(b"resp77");
        let key = skey(&cancel);
        assert!(!stored.matches(&key));
        assert_match(&stored, &key.invite_of_cancel().expect("a CANCEL"));
    }

    #[test]
    fn set_response_to_tag_is_a_no_op_for_rfc3261_keys() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let mut stored = skey(&invite).into_owned();
        stored.set_response_to_tag(b"x");
        assert!(stored.is_rfc3261());
        assert_match(&stored, &skey(&invite));
        assert_eq!(stored.method(), b"INVITE");
    }

    #[test]
    fn errors_say_what_is_missing() {
        let no_via = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(skey_err(no_via), KeyError::Missing(HeaderKind::Via));
        let bad_via = b"OPTIONS sip:a@b SIP/2.0\r\nVia: garbage\r\n\r\n";
        assert!(matches!(skey_err(bad_via), KeyError::Malformed(_)));
        let legacy_no_call_id = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\
            CSeq: 1 OPTIONS\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n\r\n";
        assert_eq!(
            skey_err(legacy_no_call_id),
            KeyError::Missing(HeaderKind::CallId)
        );
        let legacy_no_cseq = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\
            Call-ID: x\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n\r\n";
        assert_eq!(
            skey_err(legacy_no_cseq),
            KeyError::Missing(HeaderKind::CSeq)
        );
        // An RFC 3261 key needs nothing but the top Via.
        let minimal = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        assert!(skey(minimal).is_rfc3261());

        let resp = response(200, VIA, "1 INVITE");
        assert_eq!(skey_err(&resp), KeyError::NotARequest);
        let mut h = [EMPTY_HEADER; 16];
        let msg = parse(&resp, &mut h).expect("parses");
        assert!(ClientKey::from_response(&msg).is_ok());
        assert_eq!(
            ClientKey::from_request(&msg).expect_err("a response"),
            KeyError::NotARequest
        );
        let no_branch = response(200, OLD_VIA, "1 INVITE");
        let msg = parse(&no_branch, &mut h).expect("parses");
        assert_eq!(
            ClientKey::from_response(&msg).expect_err("no branch"),
            KeyError::MissingBranch
        );
        let req = request("INVITE", VIA, "1 INVITE", "");
        let msg = parse(&req, &mut h).expect("parses");
        assert_eq!(
            ClientKey::from_response(&msg).expect_err("a request"),
            KeyError::NotAResponse
        );
        assert_eq!(
            KeyError::Missing(HeaderKind::CallId).to_string(),
            "Call-ID: missing, needed to match a transaction"
        );
    }

    // --- Client (§17.1.3) ---

    #[test]
    fn client_key_is_branch_and_cseq_method() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let cancel = request("CANCEL", VIA, "1 CANCEL", "");
        let stored_invite = ckey(&invite).into_owned();
        let stored_cancel = ckey(&cancel).into_owned();

        let ok = response(200, VIA, "1 INVITE");
        let ok_cancel = response(200, VIA, "1 CANCEL");
        for (stored, resp, want) in [
            (&stored_invite, &ok, true),
            (&stored_invite, &ok_cancel, false),
            (&stored_cancel, &ok_cancel, true),
            (&stored_cancel, &ok, false),
        ] {
            let key = ckey(resp);
            assert_eq!(stored.matches(&key), want, "{stored:?} vs {key:?}");
            if want {
                assert_eq!(stored.hash64(), key.hash64());
                assert_eq!(stored.hash64_seeded(3), key.hash64_seeded(3));
            }
        }
        let other_branch = response(
            200,
            "SIP/2.0/UDP pc33.example.org:5060;branch=z9hG4bK776asdhdX",
            "1 INVITE",
        );
        assert!(!stored_invite.matches(&ckey(&other_branch)));
        let upper = response(
            200,
            "SIP/2.0/UDP pc33.example.org:5060;branch=Z9HG4BK776ASDHDS",
            "1 INVITE",
        );
        assert!(stored_invite.matches(&ckey(&upper)));
        assert_eq!(stored_invite.hash64(), ckey(&upper).hash64());
        let built = ClientKey::new(b"z9hG4bK776asdhds", b"INVITE");
        assert!(stored_invite.matches(&built));
        assert_eq!(stored_invite, built.into_owned());
        assert_eq!(stored_invite.as_key().branch(), b"z9hG4bK776asdhds");
        assert_eq!(stored_invite.as_key().method(), b"INVITE");
    }

    // --- Table ---

    #[test]
    fn table_finds_by_borrowed_key_and_removes() {
        let invite = request("INVITE", VIA, "1 INVITE", "");
        let cancel = request("CANCEL", VIA, "1 CANCEL", "");
        let ack = request("ACK", VIA, "1 ACK", ";tag=to9");
        let mut t: TxnTable<OwnedServerKey, &str> = TxnTable::with_seed(0x5eed);
        assert!(t.is_empty());
        assert_eq!(t.insert(skey(&invite).into_owned(), "invite"), None);
        assert_eq!(t.insert(skey(&cancel).into_owned(), "cancel"), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&skey(&invite)), Some(&"invite"));
        assert_eq!(t.get(&skey(&ack)), Some(&"invite"));
        assert_eq!(t.get(&skey(&cancel)), Some(&"cancel"));
        let target = skey(&cancel).invite_of_cancel().expect("a CANCEL");
        assert_eq!(t.get(&target), Some(&"invite"));
        assert_eq!(
            t.insert(skey(&invite).into_owned(), "again"),
            Some("invite")
        );
        assert_eq!(t.len(), 2);
        if let Some(v) = t.get_mut(&skey(&invite)) {
            *v = "mut";
        }
        let (k, v) = t.get_key_value(&skey(&ack)).expect("present");
        assert_eq!((k.method(), *v), (&b"INVITE"[..], "mut"));
        let (_, v) = t.remove(&skey(&invite)).expect("present");
        assert_eq!(v, "mut");
        assert_eq!(t.get(&skey(&ack)), None);
        assert_eq!(t.len(), 1);
        t.retain(|_, v| *v != "cancel");
        assert!(t.is_empty());
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn table_keeps_colliding_keys_apart() {
        let a = request("INVITE", VIA, "1 INVITE", "");
        let b = request("CANCEL", VIA, "1 CANCEL", "");
        let c = request("BYE", VIA, "2 BYE", "");
        let mut t: TxnTable<OwnedServerKey, u8> = TxnTable::new();
        // Force all three into one bucket.
        t.insert_hashed(42, skey(&a).into_owned(), 1);
        t.insert_hashed(42, skey(&b).into_owned(), 2);
        t.insert_hashed(42, skey(&c).into_owned(), 3);
        assert_eq!(t.len(), 3);
        let find = |t: &TxnTable<OwnedServerKey, u8>, raw: &[u8]| {
            let key = skey(raw);
            t.buckets
                .get(&42)
                .and_then(|bk| bk.iter().find(|(k, _)| k.matches(&key)))
                .map(|(_, v)| *v)
        };
        assert_eq!(
            (find(&t, &a), find(&t, &b), find(&t, &c)),
            (Some(1), Some(2), Some(3))
        );
        for v in t.values_mut() {
            *v *= 10;
        }
        t.retain(|_, v| *v != 20);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (find(&t, &a), find(&t, &b), find(&t, &c)),
            (Some(10), None, Some(30))
        );
    }

    #[test]
    fn client_table_routes_responses() {
        let mut t: TxnTable<OwnedClientKey, u32> = TxnTable::default();
        t.insert(
            ClientKey::new(b"z9hG4bK776asdhds", b"INVITE").into_owned(),
            1,
        );
        t.insert(
            ClientKey::new(b"z9hG4bK776asdhds", b"CANCEL").into_owned(),
            2,
        );
        assert_eq!(t.get(&ckey(&response(487, VIA, "1 INVITE"))), Some(&1));
        assert_eq!(t.get(&ckey(&response(200, VIA, "1 CANCEL"))), Some(&2));
        assert_eq!(t.get(&ckey(&response(200, VIA, "1 BYE"))), None);
    }

    #[test]
    fn debug_is_readable() {
        let invite = request("INVITE", OLD_VIA, "4711 INVITE", "");
        let mut stored = skey(&invite).into_owned();
        stored.set_response_to_tag(b"r1");
        let s = format!("{stored:?}");
        assert!(
            s.contains("\"oldphone.example.org\"") && s.contains("response_to_tag"),
            "{s}"
        );
        let ack = request("ACK", VIA, "1 ACK", "");
        assert!(format!("{:?}", skey(&ack)).ends_with("(ACK)"));
    }
}

//! [`Config`]: the validated configuration that the rest of sbcd reads.
//!
//! Every value is typed and checked; an `Option` here means "not configured", never "check
//! later". Trunk references are resolved to [`TrunkId`]s, so a route can be followed without a
//! name lookup. The daemon publishes one `Arc<Config>` per (re)load; nothing is mutated in place.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU16, NonZeroU32};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::net::{Host, IpNet, Listener};
use crate::secret::Secret;
use crate::uri::SipUri;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[sip]`
    pub sip: SipConfig,
    /// `[media]`
    pub media: MediaConfig,
    /// `[admin]`
    pub admin: AdminConfig,
    /// `[limits]`
    pub limits: LimitsConfig,
    /// `[[trunk]]` in file order, which is the order inbound requests are matched in.
    pub trunks: Vec<TrunkConfig>,
    /// `[[route]]` in file order.
    pub routes: Vec<RouteConfig>,
}

impl Config {
    /// The trunk a [`TrunkId`] from this configuration names.
    ///
    /// # Panics
    /// If `id` comes from another `Config` with fewer trunks (a bug in the caller).
    #[must_use]
    pub fn trunk(&self, id: TrunkId) -> &TrunkConfig {
        &self.trunks[id.0]
    }

    /// Every trunk with its id, in file order.
    pub fn trunk_ids(&self) -> impl Iterator<Item = (TrunkId, &TrunkConfig)> {
        self.trunks.iter().enumerate().map(|(i, t)| (TrunkId(i), t))
    }

    /// The trunk called `name`, with its id.
    #[must_use]
    pub fn trunk_by_name(&self, name: &str) -> Option<(TrunkId, &TrunkConfig)> {
        self.trunks
            .iter()
            .enumerate()
            .find(|(_, t)| t.name == name)
            .map(|(i, t)| (TrunkId(i), t))
    }

    /// The keys whose change a reload cannot apply, because sockets are bound or the RTP port
    /// pool is built once at startup, or because calls in progress carry them in their dialogs
    /// and SDP (the advertised addresses). A reload that changes any of them must be refused (the
    /// daemon keeps the running configuration); empty means `new` can replace `self`.
    #[must_use]
    pub fn restart_required(&self, new: &Self) -> Vec<&'static str> {
        let checks = [
            ("sip.listen", self.sip.listen != new.sip.listen),
            ("sip.advertise", self.sip.advertise != new.sip.advertise),
            ("sip.t1_ms", self.sip.timers.t1 != new.sip.timers.t1),
            ("sip.t2_ms", self.sip.timers.t2 != new.sip.timers.t2),
            ("sip.t4_ms", self.sip.timers.t4 != new.sip.timers.t4),
            (
                "sip.tls_cert_file",
                self.sip.tls.as_ref().map(|t| &t.cert_file)
                    != new.sip.tls.as_ref().map(|t| &t.cert_file),
            ),
            (
                "sip.tls_key_file",
                self.sip.tls.as_ref().map(|t| &t.key_file)
                    != new.sip.tls.as_ref().map(|t| &t.key_file),
            ),
            ("media.listen", self.media.listen != new.media.listen),
            (
                "media.advertise",
                self.media.advertise != new.media.advertise,
            ),
            (
                "media.port_min",
                self.media.ports.min() != new.media.ports.min(),
            ),
            (
                "media.port_max",
                self.media.ports.max() != new.media.ports.max(),
            ),
            ("admin.listen", self.admin.listen != new.admin.listen),
        ];
        checks
            .into_iter()
            .filter_map(|(key, changed)| changed.then_some(key))
            .collect()
    }
}

/// `[sip]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// Sockets to bind, at least one, no duplicates.
    pub listen: Vec<Listener>,
    /// Address written into Via / Contact / Record-Route; `None`: the listening address.
    /// Always set when a listener binds an unspecified address (0.0.0.0 or `::`).
    pub advertise: Option<Host>,
    /// RFC 3261 timers T1, T2, T4 (`sip.t1_ms`, `sip.t2_ms`, `sip.t4_ms`).
    pub timers: SipTimers,
    /// After SIGTERM, how long running calls may go on.
    pub shutdown_grace: Duration,
    /// Certificate and key, present exactly when a `tls:` listener is.
    pub tls: Option<TlsFiles>,
    /// Log filter from the file (`RUST_LOG` overrides it): a level or `target=level` list.
    pub log_level: Option<String>,
}

/// The base timers of RFC 3261 §17 (Appendix A): 500 ms, 4 s, 5 s unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipTimers {
    /// Round-trip estimate.
    pub t1: Duration,
    /// Longest retransmission interval of non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// Longest time a message stays in the network.
    pub t4: Duration,
}

/// `sip.tls_cert_file` and `sip.tls_key_file`, checked to be readable at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// `[media]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address RTP sockets bind to.
    pub listen: IpAddr,
    /// Address written into SDP; `None`: `listen` (which is then a specified address).
    pub advertise: Option<IpAddr>,
    /// The RTP/RTCP port pool.
    pub ports: RtpPorts,
    /// No RTP on both legs for this long: hang up both legs. At least one second.
    pub idle_timeout: Duration,
    /// The same for a held call (`media.hold_timeout_secs`), at least `idle_timeout`.
    pub hold_timeout: Duration,
}

/// An RTP port range that holds whole RTP/RTCP pairs: `min` is even, `max` is odd, `min < max`
/// (RFC 3550 §11: RTP on an even port, RTCP on the next odd one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPorts {
    min: NonZeroU16,
    max: NonZeroU16,
}

impl RtpPorts {
    /// The range if it has the properties above.
    #[must_use]
    pub fn new(min: u16, max: u16) -> Option<Self> {
        let ok = min % 2 == 0 && max % 2 == 1 && min < max;
        Some(Self {
            min: NonZeroU16::new(min)?,
            max: NonZeroU16::new(max)?,
        })
        .filter(|_| ok)
    }

    /// First port (even).
    #[must_use]
    pub fn min(&self) -> u16 {
        self.min.get()
    }

    /// Last port (odd).
    #[must_use]
    pub fn max(&self) -> u16 {
        self.max.get()
    }

    /// Every port of the range.
    #[must_use]
    pub fn range(&self) -> RangeInclusive<u16> {
        self.min()..=self.max()
    }

    /// How many RTP/RTCP pairs fit, so how many media streams can be relayed at once.
    #[must_use]
    pub fn pairs(&self) -> usize {
        // max - min is odd (even start, odd end): 20000..=29999 holds 9999 / 2 + 1 = 5000 pairs.
        usize::from(self.max() - self.min()) / 2 + 1
    }
}

/// `[admin]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// The HTTP socket for /metrics, /status and /health.
    pub listen: SocketAddr,
}

/// Index of a trunk in [`Config::trunks`], valid for the `Config` it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrunkId(pub(crate) usize);

impl TrunkId {
    /// The position in [`Config::trunks`].
    #[must_use]
    pub fn index(self) -> usize {
        self.0
    }
}

/// One `[[trunk]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkConfig {
    /// Unique, non-empty name of letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Which requests belong to this trunk.
    pub inbound: InboundConfig,
    /// How calls are delivered to it.
    pub outbound: OutboundConfig,
    /// `media.*`
    pub media: TrunkMedia,
}

/// `media.*` of a trunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrunkMedia {
    /// `media.latch_any_secs`: how long after each SDP any source may latch (1 to 60 s);
    /// None: only the SDP's IP address (strict).
    pub latch_any: Option<Duration>,
}

impl TrunkConfig {
    /// Where calls to this trunk go, if anywhere.
    #[must_use]
    pub fn destination(&self) -> Option<Destination<'_>> {
        if self.inbound.register {
            Some(Destination::RegisteredContact)
        } else {
            self.outbound.uri.as_ref().map(Destination::Uri)
        }
    }

    /// Whether requests can arrive from this trunk: it has inbound checks, or it registers on
    /// behalf (its registrar sends requests to the registered Contact).
    #[must_use]
    pub fn is_inbound(&self) -> bool {
        self.inbound.has_checks() || self.outbound.register.is_some()
    }
}

/// Where calls to a trunk are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// `outbound.uri`.
    Uri(&'a SipUri),
    /// The Contact the PBX registered (`inbound.register = true`).
    RegisteredContact,
}

/// `inbound.*`: every check that is set must pass for a request to belong to the trunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundConfig {
    /// Source address allowlist; empty: no address check.
    pub allow: Vec<IpNet>,
    /// Hash domain: the Request-URI host must be this name (compare case-insensitively).
    pub domain: Option<String>,
    /// A header that must be present with this value.
    pub header: Option<HeaderConfig>,
    /// Tech prefix the called number must start with; stripped before routing.
    pub prefix: Option<String>,
    /// Digest challenge the caller must answer.
    pub digest: Option<DigestConfig>,
    /// The PBX REGISTERs to sbcd (always with `digest`), and calls to this trunk go to its Contact.
    pub register: bool,
    /// Calls from this trunk in progress at most (503 beyond).
    pub max_calls: Option<u32>,
    /// New calls per second from this trunk at most (503 beyond).
    pub max_cps: Option<u32>,
}

/// `[limits]`: per-source protection; a zero turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Messages per second from one source address before it is blocked.
    pub source_requests_per_sec: u32,
    /// Failed authentications per minute from one source before it is blocked.
    pub source_auth_failures_per_min: u32,
    /// How long a blocked source is dropped.
    pub block: Duration,
}

impl InboundConfig {
    /// Whether any inbound check is configured. A trunk without one receives no calls.
    #[must_use]
    pub fn has_checks(&self) -> bool {
        !self.allow.is_empty()
            || self.domain.is_some()
            || self.header.is_some()
            || self.prefix.is_some()
            || self.digest.is_some()
            || self.register
    }

    /// Whether a request can be told to be this trunk's by something other than digest alone:
    /// its source address, hash domain, header or prefix. A digest-only trunk matches any
    /// source until the credentials are checked.
    #[must_use]
    pub fn matches_without_digest(&self) -> bool {
        !self.allow.is_empty()
            || self.domain.is_some()
            || self.header.is_some()
            || self.prefix.is_some()
    }
}

/// A header name and its secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderConfig {
    /// A SIP token that sbcd does not write itself.
    pub name: String,
    /// Non-empty, no control characters.
    pub value: Secret,
}

/// `inbound.digest` (RFC 3261 §22, RFC 8760).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestConfig {
    /// Realm in the challenge.
    pub realm: String,
    /// At least one user; usernames are unique.
    pub users: Vec<Credentials>,
    /// The status challenging requests other than REGISTER (`inbound.digest.challenge`):
    /// 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`, the default). REGISTER is always
    /// challenged with 401 (RFC 3261 §10.3).
    pub challenge: ChallengeStatus,
    /// `inbound.digest.uri_check`.
    pub uri_check: DigestUriCheck,
    /// `inbound.digest.algorithms`: one challenge per algorithm, in this order (RFC 8760
    /// §2.4: most preferred first). Non-empty, no repeats.
    pub algorithms: Vec<DigestAlgorithm>,
}

/// A digest algorithm sbcd challenges with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `MD5` (RFC 3261 §22.4).
    Md5,
}

/// 401 or 407.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChallengeStatus {
    /// 401 Unauthorized with `WWW-Authenticate`.
    Unauthorized,
    /// 407 Proxy Authentication Required with `Proxy-Authenticate`.
    #[default]
    ProxyAuthenticationRequired,
}

impl ChallengeStatus {
    /// The status code.
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::ProxyAuthenticationRequired => 407,
        }
    }
}

/// How the `uri` of the credentials must relate to the Request-URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestUriCheck {
    /// `"host"`: the same host (real clients such as SIPp send `sip:host:port`).
    #[default]
    SameHost,
    /// `"exact"`: byte for byte the Request-URI (RFC 3261 §22.4).
    Exact,
}

/// `outbound.auth`: credentials for the trunk's challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundAuth {
    /// Non-empty username.
    pub username: String,
    /// Non-empty password.
    pub password: Secret,
    /// `outbound.auth.realm`: answer with this realm instead of the challenge's.
    pub realm: Option<String>,
    /// `outbound.auth.digest_uri`.
    pub digest_uri: DigestUri,
}

/// What the `uri` of sbcd's credentials holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestUri {
    /// `"request_uri"`: the Request-URI exactly as sent (RFC 3261 §22.4), the default.
    #[default]
    RequestUri,
    /// `"to"`: the To URI, which some carriers check instead.
    To,
}

/// A username and password; the password was read from `password_file` at load if given so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Non-empty username.
    pub username: String,
    /// Non-empty password.
    pub password: Secret,
}

/// `outbound.*`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Next hop; `None` with `inbound.register` (calls go to the Contact) or for an
    /// inbound-only trunk. A `sip.listen` socket of its transport exists.
    pub uri: Option<SipUri>,
    /// Tech prefix added to the called number.
    pub prefix: Option<String>,
    /// Host written into Request-URI and To.
    pub domain: Option<Host>,
    /// Header added to every request.
    pub header: Option<HeaderConfig>,
    /// Answers 401 and 407 challenges.
    pub auth: Option<OutboundAuth>,
    /// Register on behalf; when set, `uri` and `auth` are too.
    pub register: Option<RegisterConfig>,
    /// OPTIONS probe interval; `None`: no probe.
    pub options_ping: Option<Duration>,
}

/// `outbound.register`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterConfig {
    /// Requested lifetime (RFC 3261 §10.2.1.1 `Expires`, a 32-bit delta-seconds).
    pub expires_secs: NonZeroU32,
}

/// One `[[route]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// The inbound trunk calls come from; it can receive requests.
    pub from: TrunkId,
    /// Regex on the called number after the inbound prefix is stripped; `None` matches all.
    pub pattern: Option<NumberPattern>,
    /// Outbound trunks in failover order: at least one, no repeats, each deliverable.
    pub to: Vec<TrunkId>,
}

impl RouteConfig {
    /// Whether calls to `number` take this route (ignoring `from`).
    #[must_use]
    pub fn matches(&self, number: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.is_match(number))
    }
}

/// A compiled `route.match` regex.
///
/// Called numbers are matched as bytes without Unicode classes, so `\d` means `[0-9]` and `.`
/// any byte; patterns are not anchored unless written with `^…$`.
#[derive(Clone)]
pub struct NumberPattern(regex::bytes::Regex);

impl NumberPattern {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::bytes::RegexBuilder::new(pattern)
            .unicode(false)
            .size_limit(1 << 20)
            .build()
            .map(Self)
    }

    /// Whether the pattern matches somewhere in `number`.
    #[must_use]
    pub fn is_match(&self, number: &str) -> bool {
        self.0.is_match(number.as_bytes())
    }

    /// Whether the pattern matches somewhere in `number` (as received: bytes, not UTF-8).
    #[must_use]
    pub fn is_match_bytes(&self, number: &[u8]) -> bool {
        self.0.is_match(number)
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for NumberPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NumberPattern")
            .field(&self.as_str())
            .finish()
    }
}

impl PartialEq for NumberPattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

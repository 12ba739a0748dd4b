//! [`RawConfig`]: the configuration file exactly as written, before validation.
//!
//! Every struct denies unknown fields, so a typo is an error in the file and in `SBC__*`
//! environment overrides alike; nothing uses `#[serde(flatten)]`, which would defeat that.
//! Values that need parsing (addresses, CIDR networks, URIs, regexes) stay strings here, so
//! validation can quote them in its `key.path: problem (got value)` messages.

use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::Secret;

/// Default of `sip.shutdown_grace_secs`.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 60;
/// Default of `media.hold_timeout_secs`.
pub const DEFAULT_HOLD_TIMEOUT_SECS: u64 = 7200;
/// Default of `media.idle_timeout_secs`.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default of `outbound.register.expires_secs`.
pub const DEFAULT_REGISTER_EXPIRES_SECS: u64 = 3600;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[sip]`
    pub sip: RawSip,
    /// `[media]`
    pub media: RawMedia,
    /// `[admin]`
    pub admin: RawAdmin,
    /// `[limits]`: per-source protection (optional; defaults apply).
    #[serde(default)]
    pub limits: RawLimits,
    /// `[[trunk]]`, in file order (which is matching order).
    #[serde(default)]
    pub trunk: Vec<RawTrunk>,
    /// `[[route]]`, in file order.
    #[serde(default)]
    pub route: Vec<RawRoute>,
}

/// `[sip]`: signalling sockets and process-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSip {
    /// `"udp:ADDR:PORT"`, `"tcp:…"`, `"tls:…"`; IPv6 as `[::1]:5060`.
    pub listen: Vec<String>,
    /// Address or host name written into Via / Contact / Record-Route.
    pub advertise: Option<String>,
    /// How long running calls may go on after SIGTERM.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// PEM certificate chain for `tls:` listeners.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls:` listeners.
    pub tls_key_file: Option<PathBuf>,
    /// Log filter when `RUST_LOG` is not set: a level (`info`) or `target=level` list.
    pub log_level: Option<String>,
    /// RFC 3261 T1 (round-trip estimate) in milliseconds.
    #[serde(default = "default_t1_ms")]
    pub t1_ms: u64,
    /// RFC 3261 T2 (longest retransmission interval) in milliseconds.
    #[serde(default = "default_t2_ms")]
    pub t2_ms: u64,
    /// RFC 3261 T4 (longest a message stays in the network) in milliseconds.
    #[serde(default = "default_t4_ms")]
    pub t4_ms: u64,
}

/// `[media]`: the RTP relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMedia {
    /// IP address the RTP sockets bind to.
    pub listen: String,
    /// Address written into SDP.
    pub advertise: Option<String>,
    /// First port of the RTP range (even).
    pub port_min: u64,
    /// Last port of the RTP range (odd, so the range holds whole RTP/RTCP pairs).
    pub port_max: u64,
    /// No RTP on both legs for this long: hang up both legs.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// The same for a call on hold (sendonly, inactive): longer, music on hold may be silent.
    #[serde(default = "default_hold_timeout_secs")]
    pub hold_timeout_secs: u64,
}

/// `[limits]`: what one source address may send before sbcd drops its messages unanswered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// SIP messages per second from one source address (a burst of one second's worth);
    /// a source above it is blocked for `block_secs`. 0: no limit.
    #[serde(default = "default_source_requests_per_sec")]
    pub source_requests_per_sec: u64,
    /// Failed authentications (refused credentials, requests no trunk accepts) per minute from
    /// one source before it is blocked for `block_secs`. 0: no limit.
    #[serde(default = "default_source_auth_failures_per_min")]
    pub source_auth_failures_per_min: u64,
    /// How long a blocked source's messages are dropped.
    #[serde(default = "default_block_secs")]
    pub block_secs: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            source_requests_per_sec: default_source_requests_per_sec(),
            source_auth_failures_per_min: default_source_auth_failures_per_min(),
            block_secs: default_block_secs(),
        }
    }
}

fn default_source_requests_per_sec() -> u64 {
    200
}

fn default_source_auth_failures_per_min() -> u64 {
    10
}

fn default_block_secs() -> u64 {
    300
}

/// `[admin]`: the HTTP endpoint for /metrics, /status and /health.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `ADDR:PORT`.
    pub listen: String,
}

/// One `[[trunk]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrunk {
    /// Unique name, used by routes, logs and metrics.
    pub name: String,
    /// Which requests belong to this trunk.
    #[serde(default)]
    pub inbound: RawInbound,
    /// How calls are delivered to this trunk.
    #[serde(default)]
    pub outbound: RawOutbound,
    /// The trunk's media.
    #[serde(default)]
    pub media: RawTrunkMedia,
}

/// `media.*` of a trunk.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrunkMedia {
    /// For this long after each SDP, the first packets from any source decide where the
    /// trunk's media goes (endpoints behind NAT); absent: only the SDP's IP address may.
    pub latch_any_secs: Option<u64>,
}

/// `inbound.*` of a trunk: every check given must pass.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInbound {
    /// IP allowlist (CIDR).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Hash domain: the Request-URI host.
    pub domain: Option<String>,
    /// Custom authentication header.
    pub header: Option<RawHeader>,
    /// Tech prefix, stripped from the called number.
    pub prefix: Option<String>,
    /// Digest challenge.
    pub digest: Option<RawDigest>,
    /// The PBX REGISTERs to sbcd; calls to the trunk go to its Contact.
    #[serde(default)]
    pub register: bool,
    /// Calls from this trunk in progress at most; more get 503.
    pub max_calls: Option<u64>,
    /// New calls per second from this trunk at most (a burst of one second's worth); more
    /// get 503.
    pub max_cps: Option<u64>,
}

/// A header name and value (`{ name = "X-Trunk-Key", value = "…" }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    /// Header name.
    pub name: String,
    /// Header value: a shared secret.
    pub value: Secret,
}

/// `inbound.digest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDigest {
    /// Realm in the challenge.
    pub realm: String,
    /// Accepted credentials.
    pub users: Vec<RawCredentials>,
    /// Status of the challenge to requests other than REGISTER: 401 or 407 (the default).
    pub challenge: Option<u64>,
    /// How the digest `uri` must match the Request-URI: `"host"` (the default) or `"exact"`.
    pub uri_check: Option<String>,
    /// Algorithms offered, in order of preference: `"SHA-256"`, `"MD5"` (default both, in
    /// that order).
    pub algorithms: Option<Vec<String>>,
}

/// A username with `password` or `password_file` (exactly one): digest users and
/// `outbound.auth`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    /// Username.
    pub username: String,
    /// Password written in the file.
    pub password: Option<Secret>,
    /// File holding the password (one line; a final newline is ignored). A relative path is
    /// relative to the configuration file's directory.
    pub password_file: Option<PathBuf>,
}

/// `outbound.auth`: the credentials sbcd answers a trunk's challenges with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutboundAuth {
    /// Username.
    pub username: String,
    /// Password written in the file.
    pub password: Option<Secret>,
    /// File holding the password (as in [`RawCredentials`]).
    pub password_file: Option<PathBuf>,
    /// Realm to answer with instead of the challenge's.
    pub realm: Option<String>,
    /// The digest `uri`: `"request_uri"` (the default, as sent) or `"to"` (the To URI).
    pub digest_uri: Option<String>,
}

/// `outbound.*` of a trunk.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbound {
    /// Next hop.
    pub uri: Option<String>,
    /// Tech prefix added to the called number.
    pub prefix: Option<String>,
    /// Host written into Request-URI and To.
    pub domain: Option<String>,
    /// Header added to every request.
    pub header: Option<RawHeader>,
    /// Credentials that answer 401 and 407.
    pub auth: Option<RawOutboundAuth>,
    /// Register on behalf.
    pub register: Option<RawRegister>,
    /// OPTIONS health probe interval.
    pub options_ping_secs: Option<u64>,
}

/// `outbound.register`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegister {
    /// Requested registration lifetime.
    #[serde(default = "default_register_expires_secs")]
    pub expires_secs: u64,
}

/// One `[[route]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Inbound trunk.
    pub from: String,
    /// Regex on the called number (after the inbound prefix is stripped).
    #[serde(rename = "match")]
    pub pattern: Option<String>,
    /// Outbound trunks in failover order.
    pub to: Vec<String>,
}

fn default_t1_ms() -> u64 {
    500
}

fn default_t2_ms() -> u64 {
    4000
}

fn default_t4_ms() -> u64 {
    5000
}

fn default_shutdown_grace_secs() -> u64 {
    DEFAULT_SHUTDOWN_GRACE_SECS
}

fn default_hold_timeout_secs() -> u64 {
    DEFAULT_HOLD_TIMEOUT_SECS
}

fn default_idle_timeout_secs() -> u64 {
    DEFAULT_IDLE_TIMEOUT_SECS
}

fn default_register_expires_secs() -> u64 {
    DEFAULT_REGISTER_EXPIRES_SECS
}

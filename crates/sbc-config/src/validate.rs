//! [`RawConfig::validate`]: turns the file as written into a [`Config`], reporting every problem
//! at once as `key.path: problem (got value)`.
//!
//! Each check records its error and carries on, so one run lists everything that is wrong.
//! Cross-references (routes naming trunks) are checked against the raw trunks, so a trunk with
//! a bad value does not also make every route that names it fail.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{ConfigError, ConfigErrors};
use crate::model::{
    AdminConfig, ChallengeStatus, Config, Credentials, DigestAlgorithm, DigestConfig, DigestUri,
    DigestUriCheck, HeaderConfig, InboundConfig, LimitsConfig, MediaConfig, NumberPattern,
    OutboundAuth, OutboundConfig, RegisterConfig, RouteConfig, RtpPorts, SipConfig, SipTimers,
    TlsFiles, TrunkConfig, TrunkId, TrunkMedia,
};
use crate::net::{is_domain_name, Host, IpNet, Listener, Transport};
use crate::raw::{
    RawAdmin, RawConfig, RawCredentials, RawHeader, RawInbound, RawLimits, RawMedia, RawOutbound,
    RawOutboundAuth, RawRoute, RawSip, RawTrunk,
};
use crate::secret::Secret;
use crate::uri::SipUri;

/// Longest trunk name (it is a metrics label and a log field).
const MAX_TRUNK_NAME: usize = 64;
/// Longest tech prefix.
const MAX_PREFIX: usize = 32;
/// Headers sbcd writes or interprets itself, in lowercase, with compact forms (RFC 3261 §7.3.3).
const RESERVED_HEADERS: &[&str] = &[
    "via",
    "v",
    "from",
    "f",
    "to",
    "t",
    "call-id",
    "i",
    "cseq",
    "contact",
    "m",
    "max-forwards",
    "content-length",
    "l",
    "content-type",
    "c",
    "record-route",
    "route",
    "authorization",
    "proxy-authorization",
    "www-authenticate",
    "proxy-authenticate",
    "expires",
];
/// Log levels `sip.log_level` accepts (those of `tracing`'s `EnvFilter`).
const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

impl RawConfig {
    /// Checks everything and builds the typed [`Config`].
    ///
    /// Reads `password_file`s and checks that TLS files are readable; relative paths are taken
    /// relative to `base_dir` (the configuration file's directory).
    pub fn validate(&self, base_dir: &Path) -> Result<Config, ConfigErrors> {
        self.validate_with(base_dir, None)
    }

    /// [`validate`](Self::validate), with systemd's credentials directory: a `password_file`
    /// that starts with `$CREDENTIALS_DIRECTORY/` (or `${CREDENTIALS_DIRECTORY}/`) is read
    /// from `credentials` (the `CREDENTIALS_DIRECTORY` variable `LoadCredential=` sets).
    pub fn validate_with(
        &self,
        base_dir: &Path,
        credentials: Option<&Path>,
    ) -> Result<Config, ConfigErrors> {
        let mut v = Validator {
            errors: Vec::new(),
            base_dir,
            credentials,
        };
        let sip = v.sip(&self.sip);
        let media = v.media(&self.media);
        let admin = v.admin(&self.admin, sip.as_ref().map_or(&[], |s| &s.listen));
        let limits = v.limits(&self.limits);
        let listeners = sip.as_ref().map(|s| s.listen.as_slice());
        let trunks: Vec<_> = self
            .trunk
            .iter()
            .enumerate()
            .map(|(i, t)| v.trunk(i, t, &self.trunk[..i], listeners))
            .collect();
        let routes: Vec<_> = self
            .route
            .iter()
            .enumerate()
            .map(|(i, r)| v.route(i, r, &self.trunk))
            .collect();
        if !v.errors.is_empty() {
            return Err(ConfigErrors::new(v.errors));
        }
        // Invariant: every `None` above was returned together with a recorded error.
        const RECORDED: &str = "a check returned None without recording an error";
        Ok(Config {
            sip: sip.expect(RECORDED),
            media: media.expect(RECORDED),
            admin: admin.expect(RECORDED),
            limits: limits.expect(RECORDED),
            trunks: trunks.into_iter().collect::<Option<_>>().expect(RECORDED),
            routes: routes.into_iter().collect::<Option<_>>().expect(RECORDED),
        })
    }
}

impl RawTrunk {
    /// `InboundConfig::has_checks` on the raw values.
    fn has_inbound_checks(&self) -> bool {
        let i = &self.inbound;
        !i.allow.is_empty()
            || i.domain.is_some()
            || i.header.is_some()
            || i.prefix.is_some()
            || i.digest.is_some()
            || i.register
    }

    /// `TrunkConfig::is_inbound` on the raw values.
    fn is_inbound(&self) -> bool {
        self.has_inbound_checks() || self.outbound.register.is_some()
    }

    /// Whether calls can be delivered to the trunk.
    fn is_deliverable(&self) -> bool {
        self.inbound.register || self.outbound.uri.is_some()
    }
}

struct Validator<'a> {
    errors: Vec<ConfigError>,
    base_dir: &'a Path,
    credentials: Option<&'a Path>,
}

impl Validator<'_> {
    /// Records `path: problem`.
    fn err(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.errors.push(ConfigError::new(path, problem));
    }

    /// Records `path: problem (got "value")`.
    fn bad(&mut self, path: impl Into<String>, problem: impl std::fmt::Display, got: &str) {
        self.errors
            .push(ConfigError::new(path, format!("{problem} (got {got:?})")));
    }

    /// Records `path: problem (got number)`.
    fn bad_number(&mut self, path: impl Into<String>, problem: impl std::fmt::Display, got: u64) {
        self.errors
            .push(ConfigError::new(path, format!("{problem} (got {got})")));
    }

    fn sip(&mut self, raw: &RawSip) -> Option<SipConfig> {
        let errors_before = self.errors.len();
        if raw.listen.is_empty() {
            self.err(
                "sip.listen",
                "must list at least one socket, such as \"udp:127.0.0.1:5060\"",
            );
        }
        let mut listen: Vec<Listener> = Vec::with_capacity(raw.listen.len());
        let mut positions = Vec::with_capacity(raw.listen.len());
        for (i, text) in raw.listen.iter().enumerate() {
            let path = format!("sip.listen[{i}]");
            let listener = match text.parse::<Listener>() {
                Ok(l) => l,
                Err(e) => {
                    self.bad(path, e, text);
                    continue;
                }
            };
            if let Some(j) = listen.iter().position(|other| *other == listener) {
                self.bad(
                    &path,
                    format!("duplicate of sip.listen[{}]", positions[j]),
                    text,
                );
            } else if let Some(j) = listen.iter().position(|other| {
                is_udp(*other) == is_udp(listener) && overlaps(other.addr, listener.addr)
            }) {
                self.bad(
                    &path,
                    format!("same port as sip.listen[{}] on an overlapping address, so the second bind would fail", positions[j]),
                    text,
                );
            }
            listen.push(listener);
            positions.push(i);
        }

        let advertise = match raw.advertise.as_deref() {
            None => None,
            Some(text) => match Host::parse(text) {
                Some(Host::Ip(ip)) if ip.is_unspecified() => {
                    self.bad(
                        "sip.advertise",
                        "must be an address peers can reach, not 0.0.0.0 or ::",
                        text,
                    );
                    None
                }
                Some(host) => Some(host),
                None => {
                    self.bad("sip.advertise", "not an IP address or host name", text);
                    None
                }
            },
        };
        if raw.advertise.is_none() {
            if let Some(i) = listen.iter().position(|l| l.addr.ip().is_unspecified()) {
                self.err(
                    "sip.advertise",
                    format!("required because sip.listen[{}] binds an unspecified address (0.0.0.0 or [::]), which cannot be written into Via and Contact", positions[i]),
                );
            }
        }

        let tls = self.tls(raw, &listen, &positions);
        let log_level = raw.log_level.as_deref().and_then(|level| {
            if is_log_filter(level) {
                Some(level.to_owned())
            } else {
                self.bad(
                    "sip.log_level",
                    "expected a level (off, error, warn, info, debug, trace) or a list like \"info,sbcd=debug\"",
                    level,
                );
                None
            }
        });
        // RFC 3261 §17.1.1.1: T1 may be raised (high-latency links) or, on private networks,
        // lowered; T2 is the cap of the doubling, so it cannot be below T1.
        if !(50..=10_000).contains(&raw.t1_ms) {
            self.bad_number(
                "sip.t1_ms",
                "expected 50 to 10000 milliseconds (RFC 3261 default 500)",
                raw.t1_ms,
            );
        }
        if raw.t2_ms < raw.t1_ms || raw.t2_ms > 60_000 {
            self.bad_number(
                "sip.t2_ms",
                "expected sip.t1_ms to 60000 milliseconds (RFC 3261 default 4000)",
                raw.t2_ms,
            );
        }
        if !(1..=60_000).contains(&raw.t4_ms) {
            self.bad_number(
                "sip.t4_ms",
                "expected 1 to 60000 milliseconds (RFC 3261 default 5000)",
                raw.t4_ms,
            );
        }
        (self.errors.len() == errors_before).then(|| SipConfig {
            listen,
            advertise,
            timers: SipTimers {
                t1: Duration::from_millis(raw.t1_ms),
                t2: Duration::from_millis(raw.t2_ms),
                t4: Duration::from_millis(raw.t4_ms),
            },
            shutdown_grace: Duration::from_secs(raw.shutdown_grace_secs),
            tls,
            log_level,
        })
    }

    fn tls(&mut self, raw: &RawSip, listen: &[Listener], positions: &[usize]) -> Option<TlsFiles> {
        let tls_listener = listen
            .iter()
            .position(|l| l.transport == Transport::Tls)
            .map(|i| positions[i]);
        let files = [
            ("sip.tls_cert_file", raw.tls_cert_file.as_ref()),
            ("sip.tls_key_file", raw.tls_key_file.as_ref()),
        ];
        let mut resolved = Vec::with_capacity(2);
        for (key, file) in files {
            match (file, tls_listener) {
                (Some(file), Some(_)) => resolved.push(self.readable_file(key, file)),
                (None, Some(i)) => {
                    self.err(key, format!("required by the tls listener sip.listen[{i}]"));
                    resolved.push(None);
                }
                (Some(file), None) => self.bad(
                    key,
                    "set, but no tls: socket in sip.listen uses it",
                    &file.display().to_string(),
                ),
                (None, None) => {}
            }
        }
        match resolved.as_slice() {
            [Some(cert_file), Some(key_file)] => Some(TlsFiles {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            }),
            _ => None,
        }
    }

    fn media(&mut self, raw: &RawMedia) -> Option<MediaConfig> {
        let errors_before = self.errors.len();
        let listen = parse_ip(&raw.listen);
        if listen.is_none() {
            self.bad("media.listen", "not an IP address", &raw.listen);
        }
        let advertise = raw
            .advertise
            .as_deref()
            .and_then(|text| match parse_ip(text) {
                Some(ip) if ip.is_unspecified() => {
                    self.bad(
                        "media.advertise",
                        "must be an address peers can reach, not 0.0.0.0 or ::",
                        text,
                    );
                    None
                }
                Some(ip) => Some(ip),
                None => {
                    self.bad("media.advertise", "not an IP address", text);
                    None
                }
            });
        if raw.advertise.is_none() && listen.is_some_and(|ip| ip.is_unspecified()) {
            self.err(
                "media.advertise",
                "required because media.listen is an unspecified address (0.0.0.0 or ::), which cannot be written into SDP",
            );
        }

        let port_min = self.port("media.port_min", raw.port_min);
        let port_max = self.port("media.port_max", raw.port_max);
        let mut parity_ok = true;
        if let Some(min) = port_min.filter(|p| p % 2 == 1) {
            self.bad_number(
                "media.port_min",
                "must be even (RTP takes the even port of a pair, RTCP the odd one after it)",
                min.into(),
            );
            parity_ok = false;
        }
        if let Some(max) = port_max.filter(|p| p % 2 == 0) {
            self.bad_number(
                "media.port_max",
                "must be odd, so the range ends with a whole RTP/RTCP pair",
                max.into(),
            );
            parity_ok = false;
        }
        // Checked only when the parities are right, not to pile a second error on one typo.
        if let (Some(min), Some(max), true) = (port_min, port_max, parity_ok) {
            if min >= max {
                self.bad_number(
                    "media.port_max",
                    format!("must be greater than media.port_min ({min})"),
                    max.into(),
                );
            }
        }
        if raw.hold_timeout_secs < raw.idle_timeout_secs {
            self.bad_number(
                "media.hold_timeout_secs",
                "must be at least media.idle_timeout_secs",
                raw.hold_timeout_secs,
            );
        }
        if raw.idle_timeout_secs == 0 {
            self.bad_number("media.idle_timeout_secs", "must be at least 1", 0);
        }
        if self.errors.len() != errors_before {
            return None;
        }
        Some(MediaConfig {
            listen: listen?,
            advertise,
            ports: RtpPorts::new(port_min?, port_max?)?,
            idle_timeout: Duration::from_secs(raw.idle_timeout_secs),
            hold_timeout: Duration::from_secs(raw.hold_timeout_secs),
        })
    }

    /// A count from 1 to `max`.
    fn count(&mut self, path: &str, value: u64, max: u64) -> Option<u32> {
        match u32::try_from(value) {
            Ok(n) if (1..=max).contains(&value) => Some(n),
            _ => {
                self.bad_number(path, format!("expected 1 to {max}"), value);
                None
            }
        }
    }

    /// `[limits]`: rates of 0 (off) up to the given maximum, a block of 1 s to a day.
    fn limits(&mut self, raw: &RawLimits) -> Option<LimitsConfig> {
        let errors_before = self.errors.len();
        let rate = |v: &mut Self, path: &str, value: u64, max: u64| match u32::try_from(value) {
            Ok(n) if value <= max => Some(n),
            _ => {
                v.bad_number(path, format!("expected 0 (no limit) to {max}"), value);
                None
            }
        };
        let requests = rate(
            self,
            "limits.source_requests_per_sec",
            raw.source_requests_per_sec,
            1_000_000,
        );
        let failures = rate(
            self,
            "limits.source_auth_failures_per_min",
            raw.source_auth_failures_per_min,
            100_000,
        );
        if !(1..=86_400).contains(&raw.block_secs) {
            self.bad_number(
                "limits.block_secs",
                "expected 1 to 86400 seconds",
                raw.block_secs,
            );
        }
        (self.errors.len() == errors_before).then(|| LimitsConfig {
            source_requests_per_sec: requests.unwrap_or(0),
            source_auth_failures_per_min: failures.unwrap_or(0),
            block: Duration::from_secs(raw.block_secs),
        })
    }

    fn port(&mut self, path: &str, value: u64) -> Option<u16> {
        match u16::try_from(value) {
            Ok(0) => {
                self.bad_number(path, "must be at least 1", 0);
                None
            }
            Ok(port) => Some(port),
            Err(_) => {
                self.bad_number(path, "must be at most 65535", value);
                None
            }
        }
    }

    fn admin(&mut self, raw: &RawAdmin, sip_listen: &[Listener]) -> Option<AdminConfig> {
        let Ok(listen) = raw.listen.parse::<SocketAddr>() else {
            self.bad(
                "admin.listen",
                "not an ADDRESS:PORT socket address such as 127.0.0.1:9060",
                &raw.listen,
            );
            return None;
        };
        if let Some(i) = sip_listen
            .iter()
            .position(|l| !is_udp(*l) && overlaps(l.addr, listen))
        {
            self.bad(
                "admin.listen",
                format!("same port as sip.listen[{i}] on an overlapping address, so the second bind would fail"),
                &raw.listen,
            );
            return None;
        }
        Some(AdminConfig { listen })
    }

    fn trunk(
        &mut self,
        i: usize,
        raw: &RawTrunk,
        earlier: &[RawTrunk],
        listeners: Option<&[Listener]>,
    ) -> Option<TrunkConfig> {
        let errors_before = self.errors.len();
        let path = format!("trunk[{i}]");
        if raw.name.is_empty() {
            self.err(format!("{path}.name"), "must not be empty");
        } else if raw.name.len() > MAX_TRUNK_NAME
            || !raw
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            self.bad(
                format!("{path}.name"),
                format!("must be 1 to {MAX_TRUNK_NAME} letters, digits, '-', '_' or '.'"),
                &raw.name,
            );
        } else if let Some(j) = earlier.iter().position(|t| t.name == raw.name) {
            self.bad(
                format!("{path}.name"),
                format!("duplicate of trunk[{j}].name"),
                &raw.name,
            );
        }

        let inbound = self.inbound(&path, &raw.inbound);
        let outbound = self.outbound(&path, &raw.outbound, raw.inbound.register, listeners);
        if !raw.is_inbound() && !raw.is_deliverable() {
            self.err(
                &path,
                "has no inbound checks and no outbound.uri, so it neither receives nor delivers calls",
            );
        }
        let latch_any = raw.media.latch_any_secs.and_then(|secs| {
            if (1..=60).contains(&secs) {
                Some(Duration::from_secs(secs))
            } else {
                self.bad_number(
                    format!("{path}.media.latch_any_secs"),
                    "must be from 1 to 60 (leave the key out for strict latching)",
                    secs,
                );
                None
            }
        });
        if self.errors.len() != errors_before {
            return None;
        }
        Some(TrunkConfig {
            name: raw.name.clone(),
            inbound: inbound?,
            outbound: outbound?,
            media: TrunkMedia { latch_any },
        })
    }

    fn inbound(&mut self, trunk: &str, raw: &RawInbound) -> Option<InboundConfig> {
        let errors_before = self.errors.len();
        let mut allow = Vec::with_capacity(raw.allow.len());
        for (j, text) in raw.allow.iter().enumerate() {
            match text.parse::<IpNet>() {
                Ok(net) => allow.push(net),
                Err(e) => self.bad(format!("{trunk}.inbound.allow[{j}]"), e, text),
            }
        }
        if let Some(domain) = raw.domain.as_deref().filter(|d| !is_domain_name(d)) {
            self.bad(
                format!("{trunk}.inbound.domain"),
                "not a domain name",
                domain,
            );
        }
        let header = raw
            .header
            .as_ref()
            .and_then(|h| self.header(&format!("{trunk}.inbound.header"), h));
        let prefix = raw
            .prefix
            .as_deref()
            .and_then(|p| self.prefix(&format!("{trunk}.inbound.prefix"), p));
        let digest = raw.digest.as_ref().and_then(|d| {
            let path = format!("{trunk}.inbound.digest");
            let before = self.errors.len();
            if d.realm.is_empty() {
                self.err(format!("{path}.realm"), "must not be empty");
            } else if !is_quotable(&d.realm) {
                self.bad(
                    format!("{path}.realm"),
                    "must not contain quotes, backslashes or control characters",
                    &d.realm,
                );
            }
            if d.users.is_empty() {
                self.err(format!("{path}.users"), "must list at least one user");
            }
            let mut users: Vec<Credentials> = Vec::with_capacity(d.users.len());
            for (j, user) in d.users.iter().enumerate() {
                let user_path = format!("{path}.users[{j}]");
                if let Some(k) = d.users[..j]
                    .iter()
                    .position(|u| u.username == user.username)
                {
                    self.bad(
                        format!("{user_path}.username"),
                        format!("duplicate of {path}.users[{k}].username"),
                        &user.username,
                    );
                }
                if let Some(c) = self.credentials(&user_path, user) {
                    users.push(c);
                }
            }
            let challenge = match d.challenge {
                None | Some(407) => ChallengeStatus::ProxyAuthenticationRequired,
                Some(401) => ChallengeStatus::Unauthorized,
                Some(n) => {
                    self.bad_number(format!("{path}.challenge"), "must be 401 or 407", n);
                    ChallengeStatus::default()
                }
            };
            let uri_check = match d.uri_check.as_deref() {
                None | Some("host") => DigestUriCheck::SameHost,
                Some("exact") => DigestUriCheck::Exact,
                Some(other) => {
                    self.bad(
                        format!("{path}.uri_check"),
                        "must be \"host\" or \"exact\"",
                        other,
                    );
                    DigestUriCheck::default()
                }
            };
            let mut algorithms = Vec::new();
            match &d.algorithms {
                None => algorithms = vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
                Some(list) if list.is_empty() => {
                    self.err(
                        format!("{path}.algorithms"),
                        "must list at least one algorithm",
                    );
                }
                Some(list) => {
                    for (j, a) in list.iter().enumerate() {
                        let alg = match a.to_ascii_uppercase().as_str() {
                            "SHA-256" => DigestAlgorithm::Sha256,
                            "MD5" => DigestAlgorithm::Md5,
                            _ => {
                                self.bad(
                                    format!("{path}.algorithms[{j}]"),
                                    "must be \"SHA-256\" or \"MD5\"",
                                    a,
                                );
                                continue;
                            }
                        };
                        if algorithms.contains(&alg) {
                            self.bad(format!("{path}.algorithms[{j}]"), "listed twice", a);
                        }
                        algorithms.push(alg);
                    }
                }
            }
            (self.errors.len() == before).then(|| DigestConfig {
                realm: d.realm.clone(),
                users,
                challenge,
                uri_check,
                algorithms,
            })
        });
        if raw.register && raw.digest.is_none() {
            self.err(
                format!("{trunk}.inbound.register"),
                "requires inbound.digest (the PBX registers with digest credentials)",
            );
        }
        let max_calls = raw
            .max_calls
            .and_then(|n| self.count(&format!("{trunk}.inbound.max_calls"), n, 1_000_000));
        let max_cps = raw
            .max_cps
            .and_then(|n| self.count(&format!("{trunk}.inbound.max_cps"), n, 100_000));
        (self.errors.len() == errors_before).then(|| InboundConfig {
            allow,
            domain: raw.domain.clone(),
            header,
            prefix,
            digest,
            register: raw.register,
            max_calls,
            max_cps,
        })
    }

    fn outbound(
        &mut self,
        trunk: &str,
        raw: &RawOutbound,
        inbound_register: bool,
        listeners: Option<&[Listener]>,
    ) -> Option<OutboundConfig> {
        let errors_before = self.errors.len();
        let uri_path = format!("{trunk}.outbound.uri");
        let uri = raw
            .uri
            .as_deref()
            .and_then(|text| match SipUri::parse(text) {
                Ok(uri) => Some(uri),
                Err(e) => {
                    self.bad(&uri_path, e, text);
                    None
                }
            });
        if let (Some(uri), Some(listeners)) = (&uri, listeners) {
            let transport = uri.effective_transport();
            if !listeners.iter().any(|l| l.transport == transport) {
                self.bad(
                    &uri_path,
                    format!("needs a {transport}: socket in sip.listen to send from"),
                    uri.as_str(),
                );
            }
        }
        if inbound_register {
            if let Some(text) = &raw.uri {
                self.bad(
                    &uri_path,
                    "not allowed with inbound.register = true (calls go to the Contact the PBX registered)",
                    text,
                );
            }
        }
        let prefix = raw
            .prefix
            .as_deref()
            .and_then(|p| self.prefix(&format!("{trunk}.outbound.prefix"), p));
        let domain = raw
            .domain
            .as_deref()
            .and_then(|text| match Host::parse(text) {
                Some(host) => Some(host),
                None => {
                    self.bad(
                        format!("{trunk}.outbound.domain"),
                        "not a domain name or IP address",
                        text,
                    );
                    None
                }
            });
        let header = raw
            .header
            .as_ref()
            .and_then(|h| self.header(&format!("{trunk}.outbound.header"), h));
        let auth = raw
            .auth
            .as_ref()
            .and_then(|a| self.outbound_auth(&format!("{trunk}.outbound.auth"), a));
        let register = raw.register.as_ref().and_then(|r| {
            let path = format!("{trunk}.outbound.register");
            let before = self.errors.len();
            if raw.auth.is_none() {
                self.err(
                    &path,
                    "requires outbound.auth (registrars challenge with digest)",
                );
            }
            if raw.uri.is_none() {
                self.err(&path, "requires outbound.uri (the registrar)");
            }
            let expires = u32::try_from(r.expires_secs).ok().and_then(NonZeroU32::new);
            if expires.is_none() {
                self.bad_number(
                    format!("{path}.expires_secs"),
                    "must be from 1 to 4294967295",
                    r.expires_secs,
                );
            }
            if self.errors.len() != before {
                return None;
            }
            expires.map(|expires_secs| RegisterConfig { expires_secs })
        });
        let options_ping = raw.options_ping_secs.and_then(|secs| {
            let path = format!("{trunk}.outbound.options_ping_secs");
            if secs == 0 {
                self.bad_number(
                    &path,
                    "must be at least 1 (leave the key out to disable the probe)",
                    0,
                );
                return None;
            }
            if raw.uri.is_none() {
                self.bad_number(&path, "requires outbound.uri (the address to probe)", secs);
                return None;
            }
            Some(Duration::from_secs(secs))
        });
        (self.errors.len() == errors_before).then_some(OutboundConfig {
            uri,
            prefix,
            domain,
            header,
            auth,
            register,
            options_ping,
        })
    }

    /// A custom header: a SIP token name that sbcd does not manage, and a non-empty value.
    fn header(&mut self, path: &str, raw: &RawHeader) -> Option<HeaderConfig> {
        let before = self.errors.len();
        if raw.name.is_empty() || !raw.name.bytes().all(is_token_byte) {
            self.bad(format!("{path}.name"), "not a SIP header name", &raw.name);
        } else if RESERVED_HEADERS.contains(&raw.name.to_ascii_lowercase().as_str()) {
            self.bad(
                format!("{path}.name"),
                "is a header sbcd manages itself; use a custom name such as X-Trunk-Key",
                &raw.name,
            );
        }
        // The value is a secret: the messages never quote it.
        let value = raw.value.expose();
        if value.is_empty() {
            self.err(format!("{path}.value"), "must not be empty");
        } else if value.chars().any(|c| c.is_control() && c != '\t') {
            self.err(
                format!("{path}.value"),
                "must not contain control characters or line breaks",
            );
        } else if value.trim() != value {
            self.err(
                format!("{path}.value"),
                "must not start or end with whitespace",
            );
        }
        (self.errors.len() == before).then(|| HeaderConfig {
            name: raw.name.clone(),
            value: raw.value.clone(),
        })
    }

    /// A tech prefix: 1 to 32 dialable characters.
    fn prefix(&mut self, path: &str, prefix: &str) -> Option<String> {
        let ok = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"*#+._-".contains(&b));
        if ok {
            Some(prefix.to_owned())
        } else {
            self.bad(
                path,
                format!("must be 1 to {MAX_PREFIX} characters of 0-9 A-Z a-z * # + . _ -"),
                prefix,
            );
            None
        }
    }

    /// `outbound.auth`: credentials, an optional realm override and the digest-URI choice.
    fn outbound_auth(&mut self, path: &str, raw: &RawOutboundAuth) -> Option<OutboundAuth> {
        let before = self.errors.len();
        let creds = self.credentials(
            path,
            &RawCredentials {
                username: raw.username.clone(),
                password: raw.password.clone(),
                password_file: raw.password_file.clone(),
            },
        );
        if let Some(realm) = &raw.realm {
            if realm.is_empty() || !is_quotable(realm) {
                self.bad(
                    format!("{path}.realm"),
                    "must be non-empty, without quotes, backslashes or control characters",
                    realm,
                );
            }
        }
        let digest_uri = match raw.digest_uri.as_deref() {
            None | Some("request_uri") => DigestUri::RequestUri,
            Some("to") => DigestUri::To,
            Some(other) => {
                self.bad(
                    format!("{path}.digest_uri"),
                    "must be \"request_uri\" or \"to\"",
                    other,
                );
                DigestUri::default()
            }
        };
        if self.errors.len() != before {
            return None;
        }
        let creds = creds?;
        Some(OutboundAuth {
            username: creds.username,
            password: creds.password,
            realm: raw.realm.clone(),
            digest_uri,
        })
    }

    /// A username with exactly one of `password` and `password_file`; reads the file.
    fn credentials(&mut self, path: &str, raw: &RawCredentials) -> Option<Credentials> {
        let before = self.errors.len();
        if raw.username.is_empty() {
            self.err(format!("{path}.username"), "must not be empty");
        } else if !is_quotable(&raw.username) {
            self.bad(
                format!("{path}.username"),
                "must not contain quotes, backslashes or control characters",
                &raw.username,
            );
        }
        let password = match (&raw.password, &raw.password_file) {
            (Some(_), Some(_)) => {
                self.err(path, "set password or password_file, not both");
                None
            }
            (None, None) => {
                self.err(path, "password or password_file is required");
                None
            }
            (Some(password), None) => {
                if password.is_empty() {
                    self.err(format!("{path}.password"), "must not be empty");
                    None
                } else {
                    Some(password.clone())
                }
            }
            (None, Some(file)) => self.password_file(&format!("{path}.password_file"), file),
        };
        if self.errors.len() != before {
            return None;
        }
        Some(Credentials {
            username: raw.username.clone(),
            password: password?,
        })
    }

    /// Reads a password file: one line, a final line break ignored.
    fn password_file(&mut self, path: &str, file: &Path) -> Option<Secret> {
        let shown = file.display().to_string();
        let in_credentials = file.to_str().and_then(|f| {
            f.strip_prefix("$CREDENTIALS_DIRECTORY/")
                .or_else(|| f.strip_prefix("${CREDENTIALS_DIRECTORY}/"))
        });
        let resolved = match (in_credentials, self.credentials) {
            (None, _) => self.base_dir.join(file),
            (Some(name), Some(dir)) => dir.join(name),
            (Some(_), None) => {
                self.bad(
                    path,
                    "names $CREDENTIALS_DIRECTORY, which is not set (systemd sets it for a unit with LoadCredential=)",
                    &shown,
                );
                return None;
            }
        };
        let text = match std::fs::read(resolved) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    self.bad(path, "is not UTF-8 text", &shown);
                    return None;
                }
            },
            Err(e) => {
                self.bad(path, format!("cannot read: {}", io_problem(&e)), &shown);
                return None;
            }
        };
        let line = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        if line.is_empty() {
            self.bad(path, "file is empty", &shown);
            None
        } else if line.contains(['\n', '\r']) {
            self.bad(path, "must hold the password on a single line", &shown);
            None
        } else {
            Some(Secret::new(line))
        }
    }

    /// Checks that a file can be opened for reading; returns its resolved path.
    fn readable_file(&mut self, path: &str, file: &Path) -> Option<PathBuf> {
        let resolved = self.base_dir.join(file);
        let shown = file.display().to_string();
        match std::fs::File::open(&resolved).and_then(|f| f.metadata()) {
            Ok(meta) if meta.is_file() => Some(resolved),
            Ok(_) => {
                self.bad(path, "not a regular file", &shown);
                None
            }
            Err(e) => {
                self.bad(path, format!("cannot read: {}", io_problem(&e)), &shown);
                None
            }
        }
    }

    fn route(&mut self, i: usize, raw: &RawRoute, trunks: &[RawTrunk]) -> Option<RouteConfig> {
        let errors_before = self.errors.len();
        let path = format!("route[{i}]");
        let index: HashMap<&str, usize> = trunks
            .iter()
            .enumerate()
            .rev() // the first of duplicate names wins, as in matching
            .map(|(j, t)| (t.name.as_str(), j))
            .collect();

        let from = match index.get(raw.from.as_str()) {
            None => {
                self.err(
                    format!("{path}.from"),
                    format!("unknown trunk {:?}", raw.from),
                );
                None
            }
            Some(&j) if !trunks[j].is_inbound() => {
                self.err(
                    format!("{path}.from"),
                    format!(
                        "trunk {:?} has no inbound checks, so it receives no calls",
                        raw.from
                    ),
                );
                None
            }
            Some(&j) => Some(TrunkId(j)),
        };

        let pattern = raw
            .pattern
            .as_deref()
            .and_then(|p| match NumberPattern::new(p) {
                Ok(pattern) => Some(pattern),
                Err(e) => {
                    self.bad(
                        format!("{path}.match"),
                        format!("invalid regex: {}", regex_problem(&e)),
                        p,
                    );
                    None
                }
            });

        if raw.to.is_empty() {
            self.err(format!("{path}.to"), "must list at least one trunk");
        }
        let mut to = Vec::with_capacity(raw.to.len());
        for (k, name) in raw.to.iter().enumerate() {
            let to_path = format!("{path}.to[{k}]");
            match index.get(name.as_str()) {
                None => self.err(to_path, format!("unknown trunk {name:?}")),
                Some(&j) => {
                    if let Some(first) = raw.to[..k].iter().position(|n| n == name) {
                        self.bad(to_path, format!("duplicate of {path}.to[{first}]"), name);
                    } else if !trunks[j].is_deliverable() {
                        self.err(
                            to_path,
                            format!("trunk {name:?} has no outbound.uri and no inbound.register, so calls cannot be delivered to it"),
                        );
                    } else {
                        to.push(TrunkId(j));
                    }
                }
            }
        }
        if self.errors.len() != errors_before {
            return None;
        }
        Some(RouteConfig {
            from: from?,
            pattern,
            to,
        })
    }
}

fn is_udp(l: Listener) -> bool {
    l.transport == Transport::Udp
}

/// Whether binding both addresses would collide: same non-zero port, and the same IP or a
/// wildcard on either side (a dual-stack `[::]` also covers IPv4).
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// An IP address, IPv6 with or without brackets.
fn parse_ip(text: &str) -> Option<IpAddr> {
    match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => text.parse().ok(),
    }
}

/// RFC 3261 §25.1 `token` characters, as header names use.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Whether a value can go inside a quoted-string (digest realm and username) as is.
fn is_quotable(s: &str) -> bool {
    !s.chars().any(|c| c == '"' || c == '\\' || c.is_control())
}

/// A `sip.log_level` value: comma-separated `level` or `target=level` directives.
fn is_log_filter(s: &str) -> bool {
    let is_level = |l: &str| LOG_LEVELS.iter().any(|level| level.eq_ignore_ascii_case(l));
    !s.is_empty()
        && s.split(',')
            .all(|directive| match directive.split_once('=') {
                None => is_level(directive),
                Some((target, level)) => {
                    !target.is_empty()
                        && target
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b))
                        && is_level(level)
                }
            })
}

/// An I/O error in a few words, without the "(os error N)" suffix.
pub(crate) fn io_problem(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        _ => {
            let text = e.to_string();
            match text.split_once(" (os error") {
                Some((head, _)) => head.to_owned(),
                None => text,
            }
        }
    }
}

/// The regex crate's syntax errors are several lines with a caret; keep the last line.
fn regex_problem(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

//! Register-on-behalf (`outbound.register`): sbcd registers a trunk's account with the
//! trunk's registrar, as a hardware endpoint would (RFC 3261 §10.2), sans-IO.
//!
//! One [`Registration`] per trunk. It sends `REGISTER` (through a `sip-txn` client
//! transaction, so UDP retransmits and times out by the book), answers 401/407 with the
//! trunk's `outbound.auth` ([`crate::client`]), keeps the binding fresh before the expiry the
//! registrar granted, honours 423 Min-Expires (§10.2.8), and on failure (403, 404, 408, 5xx,
//! a wrong password, a transport error) backs off exponentially with jitter, trying the
//! registrar's next address after a timeout or a 5xx; it never gives up and never loops.
//! [`Registration::unregister`] removes the binding (`Expires: 0`, §10.2.2) on shutdown and
//! when the trunk leaves the configuration. [`Registration::status`] says where it stands.
//!
//! The driver (the shard) feeds it time and responses and sends what
//! [`Registration::poll_transmit`] hands out; [`Env`] supplies what the driver owns: branch
//! parameters that route responses back, randomness.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sbc_config::net::Transport;
use sbc_config::OutboundAuth;
use sip_codec::{HeaderKind, Message, StartLine, Uri, Writer};
use sip_txn::{ClientNonInvite, Output, Reliability, Timers};

use crate::client::{self, Answered, NoAnswer, Target};

/// The first retry after a failure; doubled per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_secs(2);
/// The longest wait between two attempts: a failing registration is retried at least this
/// often, for ever.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What the driver provides.
pub trait Env {
    /// A branch parameter for attempt `txn` (routes the response back to this registration).
    fn branch(&mut self, txn: u16) -> Vec<u8>;
    /// A random number (jitter, client nonces).
    fn random(&mut self) -> u64;
}

/// One REGISTER to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// The message.
    pub data: Vec<u8>,
    /// The registrar address tried.
    pub dest: SocketAddr,
    /// On which transport.
    pub transport: Transport,
}

/// What a registration is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for its first attempt (starts are spread out).
    Starting,
    /// A REGISTER is out and no binding exists yet.
    Registering,
    /// The registrar holds the binding.
    Registered,
    /// The last attempt failed; the next one is scheduled.
    Failing,
    /// Removing the binding (`Expires: 0`).
    Unregistering,
    /// Removed (or never made): nothing more happens.
    Unregistered,
}

impl Phase {
    /// For logs and status.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Registering => "registering",
            Self::Registered => "registered",
            Self::Failing => "failing",
            Self::Unregistering => "unregistering",
            Self::Unregistered => "unregistered",
        }
    }
}

/// The state of a registration, for logs, `/status` and `sbc_registration_up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// What it is doing.
    pub phase: Phase,
    /// The last final status and reason that was not a challenge, or a local reason
    /// (`408 timeout`, `503 transport error`, `wrong password`).
    pub last: Option<(u16, String)>,
    /// The lifetime the registrar granted, while registered.
    pub granted_secs: Option<u32>,
    /// When the next REGISTER goes out (refresh or retry).
    pub next_attempt: Option<Instant>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// The registrar address in use.
    pub target: Option<SocketAddr>,
}

/// What a registration needs from the configuration.
#[derive(Debug, Clone)]
pub struct Params {
    /// The trunk's name (logs).
    pub trunk: String,
    /// Credentials and digest quirks (`outbound.auth`).
    pub auth: OutboundAuth,
    /// The registrar's domain: Request-URI `sip:domain` and the AOR `sip:user@domain`.
    pub domain: String,
    /// Every address of the registrar, in the order to try them.
    pub targets: Vec<SocketAddr>,
    /// The transport to the registrar.
    pub transport: Transport,
    /// `SIP/2.0/UDP` protocol token for Via (`UDP`, `TCP`, `TLS`).
    pub via_proto: &'static [u8],
    /// sbcd's `host:port` for Via.
    pub sent_by: Vec<u8>,
    /// The Contact URI sbcd registers (its user part identifies the trunk on calls back).
    pub contact: Vec<u8>,
    /// The lifetime asked for (`outbound.register.expires_secs`).
    pub expires_secs: u32,
    /// T1, T2, T4.
    pub timers: Timers,
}

/// One trunk's registration. See the module docs.
#[derive(Debug)]
pub struct Registration {
    p: Params,
    call_id: Vec<u8>,
    from_tag: Vec<u8>,
    cseq: u32,
    phase: Phase,
    /// The transaction in flight and its request.
    txn: Option<(ClientNonInvite, Vec<u8>, u16)>,
    /// The Expires of the request in flight.
    sent_expires: u32,
    attempt: u16,
    next: Option<Instant>,
    failures: u32,
    last: Option<(u16, String)>,
    granted: Option<u32>,
    target: usize,
    /// The lifetime asked for, raised by a 423.
    expires: u32,
    auth: Option<Answered>,
    /// The request in flight answers a challenge to the request before it.
    answering: bool,
    auth_tries: u8,
    out: VecDeque<Transmit>,
    changed: bool,
    /// REGISTERs that got no final response (Timer F) since the driver last asked.
    timeouts: u32,
}

impl Registration {
    /// A registration whose first REGISTER goes out at `start`. `call_id` and `from_tag` are
    /// kept for every refresh (§10.2.4: the same Call-ID for all registrations of a UA).
    #[must_use]
    pub fn new(p: Params, start: Instant, call_id: Vec<u8>, from_tag: Vec<u8>) -> Self {
        let expires = p.expires_secs;
        Self {
            p,
            call_id,
            from_tag,
            cseq: 0,
            phase: Phase::Starting,
            txn: None,
            sent_expires: 0,
            attempt: 0,
            next: Some(start),
            failures: 0,
            last: None,
            granted: None,
            target: 0,
            expires,
            auth: None,
            answering: false,
            auth_tries: 0,
            out: VecDeque::new(),
            changed: true,
            timeouts: 0,
        }
    }

    /// The configuration it runs with.
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.p
    }

    /// Where it stands.
    #[must_use]
    pub fn status(&self) -> Status {
        Status {
            phase: self.phase,
            last: self.last.clone(),
            granted_secs: self.granted.filter(|_| self.phase == Phase::Registered),
            next_attempt: self.next,
            failures: self.failures,
            target: self.p.targets.get(self.target).copied(),
        }
    }

    /// Whether the status changed since the last call (the driver then reports it).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// How many REGISTERs timed out (Timer F) since the last call.
    pub fn take_timeouts(&mut self) -> u32 {
        std::mem::take(&mut self.timeouts)
    }

    /// The next REGISTER to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let txn = self.txn.as_ref().and_then(|(t, _, _)| t.poll_timeout());
        match (txn, self.next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The attempt number of the transaction in flight (the driver puts it in the branch).
    #[must_use]
    pub fn attempt(&self) -> u16 {
        self.attempt
    }

    /// Runs timers: retransmissions, timeouts, refreshes and retries.
    pub fn handle_timeout(&mut self, now: Instant, env: &mut impl Env) {
        if let Some((t, _, _)) = &mut self.txn {
            t.handle_timeout(now);
            self.drain(now, env, None);
        }
        if self.txn.is_none() && self.next.is_some_and(|at| at <= now) {
            self.next = None;
            match self.phase {
                Phase::Unregistered => {}
                Phase::Unregistering => self.send(now, env, 0),
                _ => {
                    if self.phase != Phase::Registered {
                        self.set_phase(Phase::Registering);
                    }
                    self.send(now, env, self.expires);
                }
            }
        }
    }

    /// A response whose branch names attempt `txn` of this registration.
    pub fn handle_response(
        &mut self,
        now: Instant,
        env: &mut impl Env,
        msg: &Message<'_, '_>,
        txn: u16,
    ) {
        let StartLine::Response { code, .. } = msg.start else {
            return;
        };
        let Some((t, _, attempt)) = &mut self.txn else {
            return;
        };
        if *attempt != txn {
            return;
        }
        t.handle_response(now, code);
        self.drain(now, env, Some(msg));
    }

    /// The transport could not send attempt `txn`.
    pub fn handle_transport_error(&mut self, now: Instant, env: &mut impl Env, txn: u16) {
        if let Some((t, _, attempt)) = &mut self.txn {
            if *attempt == txn {
                t.handle_transport_error(now);
                self.drain(now, env, None);
            }
        }
    }

    /// Removes the binding: `Expires: 0` now (after the REGISTER in flight, if any), or
    /// nothing if the registrar never held one.
    pub fn unregister(&mut self, now: Instant) {
        match self.phase {
            Phase::Unregistering | Phase::Unregistered => {}
            Phase::Registered => {
                self.set_phase(Phase::Unregistering);
                if self.txn.is_none() {
                    self.next = Some(now);
                }
            }
            Phase::Registering if self.txn.is_some() => {
                // The binding may be made by the REGISTER in flight: remove it after.
                self.set_phase(Phase::Unregistering);
            }
            _ => {
                self.txn = None;
                self.next = None;
                self.set_phase(Phase::Unregistered);
            }
        }
    }

    /// Done: unregistered, nothing in flight.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Unregistered && self.txn.is_none()
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            self.phase = phase;
            self.changed = true;
        }
    }

    fn drain(&mut self, now: Instant, env: &mut impl Env, msg: Option<&Message<'_, '_>>) {
        loop {
            let Some((t, request, _)) = &mut self.txn else {
                return;
            };
            let Some(out) = t.poll_output() else {
                return;
            };
            match out {
                Output::Transmit => {
                    let dest = self.p.targets.get(self.target).copied();
                    if let Some(dest) = dest {
                        self.out.push_back(Transmit {
                            data: request.clone(),
                            dest,
                            transport: self.p.transport,
                        });
                    }
                }
                Output::Response(code) if code < 200 => {}
                Output::Response(code) => {
                    self.txn = None;
                    self.on_final(now, env, code, msg);
                }
                Output::TimedOut => {
                    self.txn = None;
                    self.timeouts += 1;
                    self.fail(now, env, 408, "timeout (no response)", true);
                }
                Output::TransportError => {
                    self.txn = None;
                    self.fail(now, env, 503, "transport error", true);
                }
                Output::Ack | Output::Terminated => {}
            }
        }
    }

    fn on_final(
        &mut self,
        now: Instant,
        env: &mut impl Env,
        code: u16,
        msg: Option<&Message<'_, '_>>,
    ) {
        let unregistering = self.phase == Phase::Unregistering;
        let reason = msg
            .and_then(|m| match m.start {
                StartLine::Response { reason, .. } => Some(String::from_utf8_lossy(reason)),
                StartLine::Request { .. } => None,
            })
            .map(|r| r.into_owned())
            .unwrap_or_default();
        match (code, msg) {
            (200..=299, Some(m)) => {
                self.answering = false;
                self.auth_tries = 0;
                self.failures = 0;
                self.last = Some((code, reason));
                if unregistering {
                    self.granted = None;
                    if self.sent_expires == 0 {
                        self.set_phase(Phase::Unregistered);
                    } else {
                        // The REGISTER in flight made a binding: remove it now.
                        self.send(now, env, 0);
                    }
                    return;
                }
                let granted = self.granted_from(m).unwrap_or(self.expires).max(1);
                self.granted = Some(granted);
                self.set_phase(Phase::Registered);
                self.changed = true;
                self.next = Some(now + refresh_after(granted));
            }
            (401 | 407, Some(m)) => match self.answer(m, code) {
                Ok(()) => {
                    let expires = if unregistering { 0 } else { self.expires };
                    self.answering = true;
                    self.auth_tries += 1;
                    self.send(now, env, expires);
                }
                Err(why) => {
                    self.answering = false;
                    self.auth_tries = 0;
                    let retarget = false;
                    self.fail(now, env, code, why.as_str(), retarget);
                }
            },
            (423, Some(m)) => {
                // §10.2.8: ask again for at least Min-Expires.
                let min = m
                    .header(HeaderKind::MinExpires)
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    Some(min) if min > self.expires && !unregistering => {
                        self.expires = min;
                        self.send(now, env, min);
                    }
                    _ => self.fail(now, env, 423, "423 without a usable Min-Expires", false),
                }
            }
            _ => {
                let retarget = code == 408 || code >= 500;
                self.fail(now, env, code, &reason, retarget);
            }
        }
    }

    /// The expiry granted to our Contact: its `expires` parameter in the 2xx, else the
    /// Expires header (§10.2.4).
    fn granted_from(&self, m: &Message<'_, '_>) -> Option<u32> {
        let ours = contact_user(&self.p.contact);
        let from_contact = m.contacts().iter().filter_map(Result::ok).find_map(|c| {
            let user = match Uri::parse(c.uri).ok()? {
                Uri::Sip(s) => s.user,
                _ => None,
            };
            if user != ours {
                return None;
            }
            c.expires().and_then(Result::ok)
        });
        from_contact.or_else(|| {
            m.header(HeaderKind::Expires)
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| v.trim().parse().ok())
        })
    }

    fn answer(&mut self, m: &Message<'_, '_>, code: u16) -> Result<(), NoAnswer> {
        let (challenges, stale) = client::pick_challenges(m, code);
        if challenges.is_empty() {
            return Err(NoAnswer::Unusable);
        }
        if self.answering && !stale {
            return Err(NoAnswer::WrongPassword);
        }
        if self.auth_tries >= 3 {
            return Err(NoAnswer::TooMany);
        }
        self.auth = Some(Answered {
            code,
            challenges,
            nc: 0,
        });
        Ok(())
    }

    fn fail(&mut self, now: Instant, env: &mut impl Env, code: u16, why: &str, retarget: bool) {
        self.answering = false;
        self.auth_tries = 0;
        // The next attempt starts afresh, without credentials for an old nonce.
        self.auth = None;
        self.last = Some((code, why.to_owned()));
        self.changed = true;
        if self.phase == Phase::Unregistering {
            // Shutting down or removed: one try is enough.
            self.set_phase(Phase::Unregistered);
            return;
        }
        self.failures = self.failures.saturating_add(1);
        if retarget && !self.p.targets.is_empty() {
            self.target = (self.target + 1) % self.p.targets.len();
        }
        self.granted = None;
        self.set_phase(Phase::Failing);
        self.next = Some(now + backoff(self.failures, env.random()));
    }

    /// Sends a REGISTER asking for `expires` seconds (0 removes the binding).
    fn send(&mut self, now: Instant, env: &mut impl Env, expires: u32) {
        if self.p.targets.get(self.target).is_none() {
            self.fail(now, env, 503, "registrar address not resolved", false);
            return;
        }
        self.attempt = self.attempt.wrapping_add(1);
        self.cseq = self.cseq.wrapping_add(1);
        let branch = env.branch(self.attempt);
        let p = &self.p;
        let mut ruri = Vec::with_capacity(8 + p.domain.len());
        ruri.extend_from_slice(if p.transport == Transport::Tls {
            b"sips:"
        } else {
            b"sip:"
        });
        ruri.extend_from_slice(p.domain.as_bytes());
        if p.transport == Transport::Tcp {
            ruri.extend_from_slice(b";transport=tcp");
        }
        let mut aor = Vec::with_capacity(16 + p.domain.len() + p.auth.username.len());
        aor.extend_from_slice(b"<sip:");
        aor.extend_from_slice(p.auth.username.as_bytes());
        aor.push(b'@');
        aor.extend_from_slice(p.domain.as_bytes());
        aor.push(b'>');
        let mut out = Vec::with_capacity(640);
        let mut w = Writer::new(&mut out);
        w.request_line(b"REGISTER", &[&ruri]);
        w.via(p.via_proto, &p.sent_by, &[&branch], true);
        w.header_u32(HeaderKind::MaxForwards, 70);
        w.header_parts(b"From", &[&aor, b";tag=", &self.from_tag]);
        w.header(HeaderKind::To, &aor);
        w.header(HeaderKind::CallId, &self.call_id);
        w.cseq(self.cseq, b"REGISTER");
        w.header_parts(b"Contact", &[b"<", &p.contact, b">"]);
        w.header_u32(HeaderKind::Expires, expires);
        w.header(HeaderKind::UserAgent, b"sbcd");
        if let Some(state) = &mut self.auth {
            state.nc = state.nc.wrapping_add(1);
            let mut cnonce = Vec::with_capacity(16);
            let r = env.random();
            for i in 0..16 {
                cnonce.push(b"0123456789abcdef"[((r >> (i * 4)) & 0xf) as usize]);
            }
            let to_uri = &aor[1..aor.len() - 1];
            client::write_credentials(
                &mut w,
                &p.auth,
                state,
                &Target {
                    method: b"REGISTER",
                    request_uri: &ruri,
                    to_uri,
                    body: b"",
                },
                &cnonce,
            );
        }
        w.finish();
        let reliability = match p.transport {
            Transport::Udp => Reliability::Unreliable,
            Transport::Tcp | Transport::Tls => Reliability::Reliable,
        };
        self.sent_expires = expires;
        self.txn = Some((
            ClientNonInvite::new(now, p.timers, reliability),
            out,
            self.attempt,
        ));
        self.drain(now, env, None);
    }
}

/// The user part of a Contact URI sbcd registered.
fn contact_user(contact: &[u8]) -> Option<&[u8]> {
    match Uri::parse(contact).ok()? {
        Uri::Sip(s) => s.user,
        _ => None,
    }
}

/// When to refresh a binding granted for `granted` seconds: at 55% of it (at least 1 s, and
/// at least 5 s before the expiry when the grant allows). Deliberately not jittered: starts
/// are spread evenly by the driver, and equal refresh intervals keep them evenly spread, so
/// thousands of registrations never refresh in a burst.
#[must_use]
pub fn refresh_after(granted: u32) -> Duration {
    let g = u64::from(granted) * 1000;
    let at = (g * 55 / 100).min(g.saturating_sub(5000)).max(1000);
    Duration::from_millis(at)
}

/// The wait before retry number `failures` (1 = the first failure): `BACKOFF_MIN` doubled per
/// failure, capped at `BACKOFF_MAX`, minus up to 20% jitter.
#[must_use]
pub fn backoff(failures: u32, random: u64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = BACKOFF_MIN
        .saturating_mul(1 << exp)
        .min(BACKOFF_MAX)
        .as_millis() as u64;
    let jitter = random % (base / 5 + 1);
    Duration::from_millis(base - jitter)
}

//! OPTIONS health probes (`outbound.options_ping_secs`), sans-IO: a trunk that stops
//! answering is marked down, and routing skips it until it answers again.
//!
//! Every interval one OPTIONS goes out through a `sip-txn` client transaction (UDP
//! retransmissions, Timer F). Any final response means the trunk is alive (many carriers
//! answer OPTIONS with 404 or 405), except 503 (RFC 3261 §21.5.4: overloaded) and the 408 of a
//! timeout; those, and transport errors, mark it down.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sbc_config::net::Transport;
use sip_codec::{HeaderKind, Writer};
use sip_txn::{ClientNonInvite, Output, Reliability, Timers};

use crate::register::{Env, Transmit};

/// What a probe needs from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeParams {
    /// The trunk's name (logs).
    pub trunk: String,
    /// The Request-URI: `sip:host[:port]` of the trunk.
    pub uri: Vec<u8>,
    /// Where to send.
    pub dest: SocketAddr,
    /// On which transport.
    pub transport: Transport,
    /// Via protocol token.
    pub via_proto: &'static [u8],
    /// sbcd's `host:port` for Via and From.
    pub sent_by: Vec<u8>,
    /// Time between probes.
    pub interval: Duration,
}

/// One trunk's probe.
#[derive(Debug)]
pub struct Probe {
    p: ProbeParams,
    timers: Timers,
    txn: Option<(ClientNonInvite, Vec<u8>, u16)>,
    attempt: u16,
    cseq: u32,
    call_id: Vec<u8>,
    next: Instant,
    up: bool,
    changed: bool,
    last: Option<u16>,
    /// OPTIONS that got no final response (Timer F) since the driver last asked.
    timeouts: u32,
    out: VecDeque<Transmit>,
}

impl Probe {
    /// A probe whose first OPTIONS goes out at `start`. A trunk counts as up until a probe
    /// says otherwise.
    #[must_use]
    pub fn new(p: ProbeParams, timers: Timers, start: Instant, call_id: Vec<u8>) -> Self {
        Self {
            p,
            timers,
            txn: None,
            attempt: 0,
            cseq: 0,
            call_id,
            next: start,
            up: true,
            changed: false,
            last: None,
            timeouts: 0,
            out: VecDeque::new(),
        }
    }

    /// Its parameters.
    #[must_use]
    pub fn params(&self) -> &ProbeParams {
        &self.p
    }

    /// Whether the trunk answered the last probe.
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The status of the last final response (408 for a timeout, 503 for a transport error).
    #[must_use]
    pub fn last_status(&self) -> Option<u16> {
        self.last
    }

    /// Whether up/down changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// How many OPTIONS timed out (Timer F) since the last call.
    pub fn take_timeouts(&mut self) -> u32 {
        std::mem::take(&mut self.timeouts)
    }

    /// The attempt number of the OPTIONS in flight.
    #[must_use]
    pub fn attempt(&self) -> u16 {
        self.attempt
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.txn
            .as_ref()
            .and_then(|(t, _, _)| t.poll_timeout())
            .map_or(self.next, |t| t.min(self.next))
    }

    /// Runs retransmissions and timeouts, and sends the next probe when it is due (not while
    /// one is still unanswered).
    pub fn handle_timeout(&mut self, now: Instant, env: &mut impl Env) {
        if let Some((t, _, _)) = &mut self.txn {
            t.handle_timeout(now);
            self.drain(None);
        }
        if now >= self.next {
            self.next = now + self.p.interval;
            if self.txn.is_none() {
                self.send(now, env);
            }
        }
    }

    /// A response to attempt `txn`.
    pub fn handle_response(&mut self, now: Instant, code: u16, txn: u16) {
        if let Some((t, _, attempt)) = &mut self.txn {
            if *attempt == txn {
                t.handle_response(now, code);
                self.drain(Some(code));
            }
        }
    }

    /// The OPTIONS of attempt `txn` could not be sent.
    pub fn handle_transport_error(&mut self, now: Instant, txn: u16) {
        if let Some((t, _, attempt)) = &mut self.txn {
            if *attempt == txn {
                t.handle_transport_error(now);
                self.drain(None);
            }
        }
    }

    fn set_up(&mut self, up: bool, status: u16) {
        self.last = Some(status);
        if self.up != up {
            self.up = up;
            self.changed = true;
        }
    }

    fn drain(&mut self, _code: Option<u16>) {
        loop {
            let Some((t, request, _)) = &mut self.txn else {
                return;
            };
            let Some(out) = t.poll_output() else { return };
            match out {
                Output::Transmit => self.out.push_back(Transmit {
                    data: request.clone(),
                    dest: self.p.dest,
                    transport: self.p.transport,
                }),
                Output::Response(code) if code < 200 => {}
                Output::Response(code) => {
                    self.txn = None;
                    self.set_up(code != 503, code);
                }
                Output::TimedOut => {
                    self.txn = None;
                    self.timeouts += 1;
                    self.set_up(false, 408);
                }
                Output::TransportError => {
                    self.txn = None;
                    self.set_up(false, 503);
                }
                Output::Ack | Output::Terminated => {}
            }
        }
    }

    fn send(&mut self, now: Instant, env: &mut impl Env) {
        self.attempt = self.attempt.wrapping_add(1);
        self.cseq = self.cseq.wrapping_add(1);
        let branch = env.branch(self.attempt);
        let p = &self.p;
        let mut from = Vec::with_capacity(32 + p.sent_by.len());
        from.extend_from_slice(b"<sip:sbcd@");
        from.extend_from_slice(&p.sent_by);
        from.push(b'>');
        let mut tag = Vec::with_capacity(16);
        let r = env.random();
        for i in 0..12 {
            tag.push(b"0123456789abcdef"[((r >> (i * 4)) & 0xf) as usize]);
        }
        let mut out = Vec::with_capacity(400);
        let mut w = Writer::new(&mut out);
        w.request_line(b"OPTIONS", &[&p.uri]);
        w.via(p.via_proto, &p.sent_by, &[&branch], true);
        w.header_u32(HeaderKind::MaxForwards, 70);
        w.header_parts(b"From", &[&from, b";tag=", &tag]);
        w.header_parts(b"To", &[b"<", &p.uri, b">"]);
        w.header(HeaderKind::CallId, &self.call_id);
        w.cseq(self.cseq, b"OPTIONS");
        w.header(HeaderKind::Accept, b"application/sdp");
        w.header(HeaderKind::UserAgent, b"sbcd");
        w.finish();
        let reliability = match p.transport {
            Transport::Udp => Reliability::Unreliable,
            Transport::Tcp | Transport::Tls => Reliability::Reliable,
        };
        self.txn = Some((
            ClientNonInvite::new(now, self.timers, reliability),
            out,
            self.attempt,
        ));
        self.drain(None);
    }
}

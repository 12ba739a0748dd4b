//! The signalling shards: one task per core, each owning a `b2bua::Shard` (its calls), fed by
//! the transports through a bounded channel.
//!
//! A received message goes to the shard [`b2bua::shard_of`] names (from identifiers sbcd wrote
//! itself, or a hash of the Call-ID), so each call is touched by one task only and nothing on
//! the signalling path takes a global lock. A full channel drops the message (the peer
//! retransmits on UDP) and counts it, rather than queueing without bound.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use b2bua::{Event, Incoming, Locals, Routing, Shard, ShardOptions, Transport};
use bytes::Bytes;
use dashmap::DashMap;
use sbc_config::Config;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use trunks::register::{Phase as RegPhase, Status as RegStatus};

use crate::metrics::Metrics;
use crate::transport::{ConnId, Inbound, Outbound, TransportError, Transports};

/// Messages waiting for one shard; beyond this, new ones are dropped.
const QUEUE: usize = 8192;
/// Inputs a shard handles before it sends what they produced.
const BATCH: usize = 64;

/// What a shard task receives.
#[derive(Debug)]
pub(crate) enum Input {
    Message {
        data: Bytes,
        source: SocketAddr,
        transport: Transport,
        conn: Option<ConnId>,
    },
    TransportError(u64),
    Routing(Arc<Routing>),
    Drain,
    /// The drain's grace period is over: end every call (BYE on both legs).
    HangUpAll,
    /// An event of the media relay about a call of this shard.
    Media(rtp_relay::control::Event),
    /// Nothing to do: the watchdog wakes an idle shard so that its heartbeat moves.
    Ping,
}

/// The `result` labels of `sbc_calls_total`, in the order of [`TrunkCalls`]' arrays.
pub(crate) const RESULTS: [&str; 6] = [
    "answered",
    "cancelled",
    "busy",
    "failed",
    "timeout",
    "media_timeout",
];

/// A trunk's calls for `/status`: in progress (calls it placed), and ended by result, as the
/// calling trunk (`inbound`) and as the trunk a call last went to (`outbound`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TrunkCalls {
    pub(crate) active: i64,
    pub(crate) inbound: [u64; RESULTS.len()],
    pub(crate) outbound: [u64; RESULTS.len()],
}

/// Counters shared by the shard tasks and the daemon.
#[derive(Debug)]
pub(crate) struct ShardCounters {
    pub(crate) calls: Vec<AtomicUsize>,
    /// Calls each shard holds: in progress, or ended with transactions still absorbing
    /// retransmissions (flat under a steady load: no call state leaks).
    pub(crate) held: Vec<AtomicUsize>,
    /// Media port pairs in use, per shard.
    pub(crate) media_pairs: Vec<AtomicUsize>,
    /// Media port pairs the relay could bind (set at start).
    pub(crate) media_pairs_total: AtomicUsize,
    /// Registrations being removed, per shard (the daemon waits for them at exit).
    pub(crate) unregistering: Vec<AtomicUsize>,
    pub(crate) dropped_overload: AtomicU64,
    /// The latest status of every registration on behalf, by trunk (for /status, metrics).
    pub(crate) registrations: DashMap<String, RegStatus>,
    /// Trunks an OPTIONS probe found down, with the deciding status (for /status).
    pub(crate) trunks_down: DashMap<String, u16>,
    /// Calls per trunk (for /status; touched once at a call's start and once at its end).
    pub(crate) trunk_calls: DashMap<String, TrunkCalls>,
    /// Per shard: passes of its loop (the watchdog's heartbeat).
    pub(crate) beats: Vec<AtomicU64>,
    /// Each shard's SIP message and transaction timeout counters.
    pub(crate) sip: Vec<Arc<b2bua::SipCounters>>,
    /// One scrape at a time copies counters into the registry.
    refresh: std::sync::Mutex<()>,
    /// Per-source limits and the block list (readers check it; failed authentications go to
    /// it from the shards' events).
    pub(crate) guard: Arc<trunks::guard::GuardShared>,
    /// Set at SIGTERM: `/health` answers 503.
    pub(crate) draining: std::sync::atomic::AtomicBool,
    /// The Prometheus registry.
    pub(crate) metrics: Metrics,
}

impl ShardCounters {
    /// Sets the metrics that are read rather than counted, for a scrape.
    pub(crate) fn refresh_metrics(&self) {
        let _one = self
            .refresh
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let m = &self.metrics;
        m.copy_sip_counters(&self.sip);
        m.calls_active
            .set(i64::try_from(self.active_calls()).unwrap_or(i64::MAX));
        let held: usize = self.held.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        m.calls_held.set(i64::try_from(held).unwrap_or(i64::MAX));
        let used: usize = self
            .media_pairs
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        let free = self
            .media_pairs_total
            .load(Ordering::Relaxed)
            .saturating_sub(used)
            * 2;
        m.media_ports_free
            .set(i64::try_from(free).unwrap_or(i64::MAX));
        m.overload_dropped(self.dropped_overload.load(Ordering::Relaxed));
        m.guard_dropped(
            self.guard.dropped_rate_limited.load(Ordering::Relaxed),
            self.guard.dropped_blocked.load(Ordering::Relaxed),
        );
        m.sources_blocked
            .set(i64::try_from(self.guard.blocks.blocked(Instant::now())).unwrap_or(i64::MAX));
    }

    pub(crate) fn active_calls(&self) -> usize {
        self.calls.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn unregistering(&self) -> usize {
        self.unregistering
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// The senders into every shard.
#[derive(Debug, Clone)]
pub(crate) struct ShardSet {
    senders: Arc<[mpsc::Sender<Input>]>,
    pub(crate) counters: Arc<ShardCounters>,
}

impl ShardSet {
    /// Creates `n` channels; the receivers go to [`run_shard`].
    pub(crate) fn new(
        n: usize,
        guard: Arc<trunks::guard::GuardShared>,
    ) -> (Self, Vec<mpsc::Receiver<Input>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel(QUEUE)).unzip();
        let counters = ShardCounters {
            calls: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            held: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            media_pairs: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            media_pairs_total: AtomicUsize::new(0),
            unregistering: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            dropped_overload: AtomicU64::new(0),
            registrations: DashMap::new(),
            trunks_down: DashMap::new(),
            trunk_calls: DashMap::new(),
            beats: (0..n).map(|_| AtomicU64::new(0)).collect(),
            sip: (0..n).map(|_| Arc::default()).collect(),
            refresh: std::sync::Mutex::new(()),
            draining: std::sync::atomic::AtomicBool::new(false),
            guard,
            metrics: Metrics::new(),
        };
        (
            Self {
                senders: senders.into(),
                counters: Arc::new(counters),
            },
            receivers,
        )
    }

    pub(crate) fn len(&self) -> usize {
        self.senders.len()
    }

    /// Hands a media relay event to the shard that owns the call (its id carries the shard).
    pub(crate) fn media_event(&self, ev: rtp_relay::control::Event) {
        let id = match &ev {
            rtp_relay::control::Event::Idle { id }
            | rtp_relay::control::Event::Closed { id, .. } => *id,
        };
        let shard = usize::from(b2bua::ids::token_shard(id));
        if let Some(s) = self.senders.get(shard) {
            if s.blocking_send(Input::Media(ev)).is_err() {
                debug!(shard, "shard gone: media event dropped");
            }
        }
    }

    /// Hands a received message to its shard (called on the transports' reader tasks).
    pub(crate) fn dispatch(&self, inbound: Inbound) {
        let shard = usize::from(b2bua::shard_of(&inbound.data, self.len() as u16));
        let input = Input::Message {
            data: inbound.data,
            source: inbound.source,
            transport: inbound.transport,
            conn: inbound.conn,
        };
        if self.senders[shard].try_send(input).is_err() {
            self.counters
                .dropped_overload
                .fetch_add(1, Ordering::Relaxed);
            debug!(shard, "shard queue full: message dropped");
        }
    }

    /// Hands a failed send back to the shard that sent it.
    pub(crate) fn transport_error(&self, e: &TransportError) {
        debug!(error = %e, "send failed");
        let shard = usize::from(b2bua::ids::token_shard(e.token));
        if e.token != 0 {
            if let Some(s) = self.senders.get(shard) {
                let _ = s.try_send(Input::TransportError(e.token));
            }
        }
    }

    /// Wakes every shard with a no-op (the watchdog); a full queue is skipped: that shard is
    /// busy, and its heartbeat moves anyway if it makes progress.
    pub(crate) fn ping(&self) {
        for s in self.senders.iter() {
            let _ = s.try_send(Input::Ping);
        }
    }

    /// Sends `input` to every shard (config reloads, drain).
    pub(crate) async fn broadcast(&self, input: impl Fn() -> Input) {
        for s in self.senders.iter() {
            let _ = s.send(input()).await;
        }
    }
}

/// Resolves the trunks' next hops (blocking DNS for names; run it off the runtime threads).
pub(crate) fn routing(config: Config, shared: Arc<trunks::Shared>) -> Routing {
    let nameserver = crate::dns::system_nameserver();
    Routing::new(config, shared, |host, port, transport| {
        let addrs = crate::dns::resolve(host, port, transport, nameserver);
        if addrs.is_empty() {
            warn!(
                host,
                "cannot resolve a trunk's host (SRV, A, AAAA); the trunk is skipped"
            );
        }
        addrs
    })
}

/// sbcd's addresses for Via and Contact: every bound listener, and `sip.advertise`.
pub(crate) fn locals(transports: &Transports, config: &Config) -> Locals {
    let bound: Vec<(Transport, SocketAddr)> = transports
        .bound()
        .iter()
        .map(|l| (l.transport, l.addr))
        .collect();
    Locals::new(&bound, config.sip.advertise.as_ref())
}

/// Runs one shard until its channel closes.
pub(crate) async fn run_shard(
    opts: ShardOptions,
    routing: Arc<Routing>,
    locals: Locals,
    mut rx: mpsc::Receiver<Input>,
    transports: Transports,
    counters: Arc<ShardCounters>,
    relay: Option<Arc<rtp_relay::fwd::Relay>>,
) {
    let index = usize::from(opts.shard);
    let mut shard = Shard::new(&opts, routing, locals);
    // One timer for the shard, moved only when the next deadline changes (quinn's driver).
    // The first wake-up is at once: it starts the registrations on behalf.
    let mut sleep = pin!(tokio::time::sleep(Duration::ZERO));
    let mut armed: Option<Instant> = Some(Instant::now());
    loop {
        tokio::select! {
            input = rx.recv() => {
                let Some(input) = input else { break };
                handle(&mut shard, input);
                // Take what else is queued before sending: fewer wake-ups under load.
                for _ in 1..BATCH {
                    match rx.try_recv() {
                        Ok(input) => handle(&mut shard, input),
                        Err(_) => break,
                    }
                }
            }
            () = &mut sleep, if armed.is_some() => {
                armed = None;
                shard.handle_timeout(Instant::now());
            }
        }
        // The relay learns about new media before the SDP naming it leaves, and counters
        // move before the response that a client may check them after.
        while let Some(cmd) = shard.poll_media() {
            if let Some(relay) = &relay {
                if let Err(e) = relay.send(cmd) {
                    // Full: the worker is overloaded; the stream will not be relayed.
                    warn!(error = ?e, "media relay refused a command");
                }
            }
        }
        while let Some(e) = shard.poll_event() {
            log_event(&e);
            count_event(&counters, e);
        }
        while let Some(t) = shard.poll_transmit() {
            let mut out = Outbound::new(t.transport, t.dest, t.data, t.token);
            out.conn = t.conn.map(ConnId::from_raw);
            transports.send(out);
        }
        let next = shard.poll_timeout();
        if next != armed {
            armed = next;
            if let Some(at) = next {
                sleep.as_mut().reset(tokio::time::Instant::from_std(at));
            }
        }
        counters.beats[index].fetch_add(1, Ordering::Relaxed);
        counters.calls[index].store(shard.active_calls(), Ordering::Relaxed);
        counters.held[index].store(shard.calls(), Ordering::Relaxed);
        counters.media_pairs[index].store(shard.media_pairs_in_use(), Ordering::Relaxed);
        counters.unregistering[index].store(shard.unregistering(), Ordering::Relaxed);
    }
}

fn handle(shard: &mut Shard, input: Input) {
    let now = Instant::now();
    match input {
        Input::Message {
            data,
            source,
            transport,
            conn,
        } => shard.handle_message(
            now,
            Incoming {
                data: &data,
                source,
                transport,
                conn: conn.map(ConnId::raw),
            },
        ),
        Input::TransportError(token) => shard.handle_transport_error(now, token),
        Input::Routing(r) => {
            shard.set_routing(r);
            shard.handle_timeout(now);
        }
        Input::Drain => {
            shard.set_draining(true);
            shard.handle_timeout(now);
        }
        Input::HangUpAll => shard.hang_up_all(now),
        Input::Media(ev) => shard.handle_media_event(now, &ev),
        Input::Ping => {}
    }
}

fn log_event(e: &Event) {
    match e {
        Event::CallStarted { trunk } => debug!(trunk, "call started"),
        Event::CallAnswered { trunk, setup } => {
            debug!(trunk, setup_ms = setup.as_millis() as u64, "call answered");
        }
        Event::CallRefused { trunk, reason } => debug!(trunk, reason, "call refused: 503"),
        Event::SourceRefused { .. } => {}
        Event::CallEnded { trunk, to, result } => {
            debug!(
                trunk,
                to = to.as_deref().unwrap_or("-"),
                result = result.label(),
                "call ended"
            );
        }
        Event::Dropped { reason } => debug!(reason = reason.label(), "message dropped"),
        Event::Registration { trunk, status } => log_registration(trunk, status),
        Event::TrunkHealth { trunk, up, status } => debug!(trunk, up, status, "trunk health"),
        Event::MediaEnded(_) => {}
        Event::AuthFailed { trunk, mode } => {
            debug!(
                trunk = trunk.as_deref().unwrap_or("-"),
                mode, "trunk auth failure"
            );
        }
    }
}

/// Counts an event in the metrics and keeps the state /status shows.
fn count_event(counters: &ShardCounters, e: Event) {
    let m = &counters.metrics;
    match e {
        Event::CallStarted { trunk } => {
            counters.trunk_calls.entry(trunk).or_default().active += 1;
        }
        Event::CallEnded { trunk, to, result } => {
            let result = result.label();
            let i = RESULTS.iter().position(|r| *r == result).unwrap_or(3);
            m.calls_total
                .with_label_values(&[trunk.as_str(), "inbound", result])
                .inc();
            if let Some(to) = to {
                m.calls_total
                    .with_label_values(&[to.as_str(), "outbound", result])
                    .inc();
                counters.trunk_calls.entry(to).or_default().outbound[i] += 1;
            }
            let mut c = counters.trunk_calls.entry(trunk).or_default();
            c.active -= 1;
            c.inbound[i] += 1;
        }
        Event::Dropped { reason } => m.message_dropped(reason.label()),
        Event::SourceRefused { source, blocked } => {
            let g = &counters.guard;
            if blocked && g.may_log(Instant::now()) {
                warn!(
                    %source,
                    block_secs = g.block_duration().as_secs(),
                    "source refused too often ([limits] source_auth_failures_per_min): blocked"
                );
            }
        }
        Event::CallRefused { trunk, reason } => m
            .calls_refused
            .with_label_values(&[trunk.as_str(), reason])
            .inc(),
        Event::CallAnswered { trunk, setup } => m
            .call_setup
            .with_label_values(&[trunk.as_str()])
            .observe(setup.as_secs_f64()),
        Event::AuthFailed { trunk, mode } => m
            .auth_failures
            .with_label_values(&[trunk.as_deref().unwrap_or("unknown"), mode])
            .inc(),
        Event::Registration { trunk, status } => {
            m.registration_up
                .with_label_values(&[trunk.as_str()])
                .set(i64::from(status.phase == RegPhase::Registered));
            counters.registrations.insert(trunk, status);
        }
        Event::TrunkHealth { trunk, up, status } => {
            m.trunk_up
                .with_label_values(&[trunk.as_str()])
                .set(i64::from(up));
            if up {
                counters.trunks_down.remove(&trunk);
            } else {
                counters.trunks_down.insert(trunk, status);
            }
        }
        Event::MediaEnded(totals) => {
            // What leg A sent was received from A's trunk and sent to B's, and back.
            for (from, to) in [(0, 1), (1, 0)] {
                let c = &totals.from[from];
                for (trunk, direction) in [(from, "received"), (to, "sent")] {
                    if let Some(name) = totals.trunks[trunk].as_deref() {
                        let labels = [name, direction];
                        m.trunk_rtp_packets
                            .with_label_values(&labels)
                            .inc_by(c.packets);
                        m.trunk_rtp_bytes.with_label_values(&labels).inc_by(c.bytes);
                    }
                }
            }
        }
    }
}

/// A registration on behalf changed state: info when it comes up or goes away, warn when it
/// fails (with the status, the reason and when it is tried again).
fn log_registration(trunk: &str, st: &RegStatus) {
    let (code, reason) = st.last.as_ref().map_or((0, ""), |(c, r)| (*c, r.as_str()));
    let retry_in = st
        .next_attempt
        .map(|t| t.saturating_duration_since(Instant::now()).as_secs());
    match st.phase {
        RegPhase::Failing => warn!(
            trunk,
            status = code,
            reason,
            failures = st.failures,
            retry_in_secs = retry_in,
            "registration failing"
        ),
        RegPhase::Registered => info!(
            trunk,
            expires_secs = st.granted_secs,
            registrar = ?st.target,
            "registration up"
        ),
        phase => info!(trunk, phase = phase.as_str(), "registration"),
    }
}

/// Logs the shard layout once at start.
pub(crate) fn log_start(n: usize, locals: &Locals) {
    info!(shards = n, via = ?locals.describe(), "signalling shards started");
}

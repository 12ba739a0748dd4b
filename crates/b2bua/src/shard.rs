//! A shard: the calls of one core, and the requests that start, find or refuse them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_codec::{HeaderKind, Message, Method, ParseError, StartLine, Uri, EMPTY_HEADER};
use sip_txn::Timers;
use slab::Slab;
use tracing::debug;

use sbc_config::TrunkId;
use trunks::ingress::{self, Matched, Mode};
use trunks::registrar::Outcome;

use crate::agents::{Agents, KEEPALIVE_SLOT, PROBE_SLOT, REG_SLOT};
use crate::auth;
use crate::build::{self, ALLOW, SUPPORTED};
use crate::call::{Call, NewCall};
use crate::counters::{Direction, SipCounters};
use crate::ids::{self, Rng, Side, Token};
use crate::leg::Peer;
use crate::media::{MediaPools, MediaSetup};
use crate::routing::{Locals, Routing};
use crate::{DropReason, Event, Incoming, Transmit};

/// Most header lines sbcd reads from one message; more is a 400 (`sip_codec::Limits`).
const MAX_HEADERS: usize = 96;
/// `Retry-After` of the 503 a draining sbcd answers new INVITEs with (RFC 3261 §21.5.4):
/// callers that know another server of the trunk (RFC 3263) use it meanwhile; a restarted
/// sbcd is serving again well within this.
const DRAIN_RETRY_AFTER: &[u8] = b"30";

/// How a shard is set up.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    /// This shard's number, `0..shards`.
    pub shard: u16,
    /// How many shards the daemon runs.
    pub shards: u16,
    /// T1, T2, T4 (RFC 3261 §17).
    pub timers: Timers,
    /// Seeds the generator of tags, branches and Call-IDs.
    pub seed: u64,
    /// How long an outbound INVITE may ring before sbcd cancels it (a proxy's Timer C,
    /// §16.8, which must be above 3 minutes; 180 s here is the common SBC setting).
    pub ring_timeout: Duration,
    /// Media anchoring: this shard's ports and timeouts (None: SDP passes unchanged).
    pub media: Option<MediaSetup>,
    /// Where the shard counts messages and transaction timeouts (read by the daemon).
    pub counters: Arc<SipCounters>,
}

impl Default for ShardOptions {
    fn default() -> Self {
        Self {
            shard: 0,
            shards: 1,
            timers: Timers::default(),
            seed: 0x5bcd,
            ring_timeout: Duration::from_secs(180),
            media: None,
            counters: Arc::default(),
        }
    }
}

/// Counters a shard keeps; the daemon exports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages handed to [`Shard::handle_message`].
    pub received: u64,
    /// Messages handed out by [`Shard::poll_transmit`].
    pub sent: u64,
    /// Calls started.
    pub calls_started: u64,
    /// Calls ended.
    pub calls_ended: u64,
    /// Requests refused because no trunk accepted them (403).
    pub unknown_source: u64,
    /// Failed inbound checks (one request may fail several trunks' checks) and refused
    /// digest credentials.
    pub auth_failures: u64,
}

/// The shard facilities a call uses while it handles an input.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) shard: u16,
    pub(crate) timers: Timers,
    pub(crate) locals: Locals,
    pub(crate) rng: Rng,
    pub(crate) ring_timeout: Duration,
    /// Port pools of media anchoring (None: SDP passes unchanged).
    pub(crate) media: Option<MediaPools>,
    /// Commands for the media relay.
    pub(crate) media_out: VecDeque<rtp_relay::control::Command>,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    pub(crate) stats: Stats,
    pub(crate) counters: Arc<SipCounters>,
}

impl Ctx {
    /// Queues `data` for `peer` on leg `side` (counted by method or class and leg).
    pub(crate) fn send(&mut self, side: Side, data: Bytes, peer: Peer, token: u64) {
        self.stats.sent += 1;
        self.counters.sent(side, &data);
        self.out.push_back(Transmit {
            data,
            dest: peer.addr,
            transport: peer.transport,
            conn: peer.conn,
            token,
        });
    }

    /// The message queued last (to keep an ACK for 2xx retransmissions).
    pub(crate) fn last_sent(&self) -> Option<Bytes> {
        self.out.back().map(|t| t.data.clone())
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.events.push_back(e);
    }
}

/// The calls of one core. See the crate docs for the driving contract.
#[derive(Debug)]
pub struct Shard {
    ctx: Ctx,
    routing: Arc<Routing>,
    calls: Slab<Call>,
    next_gen: u32,
    /// The inbound leg's Call-ID and From tag -> slot: finds the call of a retransmitted
    /// INVITE or of a CANCEL (neither carries a tag of ours).
    by_inbound: HashMap<Box<[u8]>, usize>,
    /// Wake-ups: (when, slot, generation). Stale entries are skipped when they fire.
    wakeups: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    key: Vec<u8>,
    draining: bool,
    shards: u16,
    /// Registrations on behalf of trunks.
    agents: Agents,
    /// The latest time an input brought (reconciling the agents needs one).
    last_now: Option<Instant>,
    /// Responses to REGISTERs sbcd answered, for their retransmissions.
    registered: Answered,
}

/// The non-INVITE server transactions of REGISTERs sbcd answers itself, reduced to what they
/// do (§17.2.2): a retransmitted request gets the same response again, until Timer J. Without
/// it a retransmitted REGISTER would be checked again and refused as a nonce-count replay.
#[derive(Debug, Default)]
struct Answered {
    by_key: HashMap<Box<[u8]>, Bytes>,
    order: VecDeque<(Instant, Box<[u8]>)>,
    key: Vec<u8>,
}

impl Answered {
    fn key_of(&mut self, msg: &Message<'_, '_>) -> bool {
        self.key.clear();
        let (Some(branch), Some(cid)) =
            (msg.top_via().ok().and_then(|v| v.branch()), msg.call_id())
        else {
            return false;
        };
        self.key.extend_from_slice(branch);
        self.key.push(b'\n');
        self.key.extend_from_slice(cid);
        true
    }

    /// Sends the response again if `msg` is a retransmission of a request answered here.
    fn resend(&mut self, msg: &Message<'_, '_>, inc: Incoming<'_>, ctx: &mut Ctx) -> bool {
        if !self.key_of(msg) {
            return false;
        }
        match self.by_key.get(self.key.as_slice()) {
            Some(b) => {
                ctx.send(Side::A, b.clone(), peer_of(inc), 0);
                true
            }
            None => false,
        }
    }

    fn remember(&mut self, now: Instant, msg: &Message<'_, '_>, response: Bytes, keep: Duration) {
        while let Some((at, _)) = self.order.front() {
            if *at > now {
                break;
            }
            if let Some((_, k)) = self.order.pop_front() {
                self.by_key.remove(&k);
            }
        }
        if self.key_of(msg) {
            let k: Box<[u8]> = self.key.as_slice().into();
            self.order.push_back((now + keep, k.clone()));
            self.by_key.insert(k, response);
        }
    }
}

/// Which shard of `shards` a received message belongs to.
///
/// A response carries our branch, an in-dialog request our To tag: both name the shard. A new
/// request (and its CANCEL, and a retransmission) goes by a hash of its Call-ID. A message too
/// broken to tell goes to shard 0, which answers or drops it.
#[must_use]
pub fn shard_of(data: &[u8], shards: u16) -> u16 {
    let mut hs = [EMPTY_HEADER; MAX_HEADERS];
    let Ok(msg) = sip_codec::parse(data, &mut hs) else {
        return 0;
    };
    let shards = shards.max(1);
    let ours = match msg.start {
        StartLine::Response { .. } => msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .and_then(ids::read_branch)
            .map(|(t, _, _)| t.shard),
        StartLine::Request { .. } => msg
            .to()
            .ok()
            .and_then(|to| to.tag())
            .and_then(ids::read_tag)
            .map(|(t, _)| t.shard),
    };
    match ours {
        Some(s) if s < shards => s,
        _ => msg
            .call_id()
            .map_or(0, |c| (fnv1a(c) % u64::from(shards)) as u16),
    }
}

fn fnv1a(s: &[u8]) -> u64 {
    s.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn peer_of(inc: Incoming<'_>) -> Peer {
    Peer {
        addr: inc.source,
        transport: inc.transport,
        conn: inc.conn,
    }
}

/// The user part of the To URI (the called number of a call to a registered Contact).
fn to_user<'b>(msg: &Message<'_, 'b>) -> Option<&'b [u8]> {
    match msg.to().ok()?.parse_uri().ok()? {
        Uri::Sip(s) => s.user,
        Uri::Tel(t) => Some(t.number),
        _ => None,
    }
}

/// The called number and the Request-URI host of a request.
fn number_and_host<'b>(msg: &Message<'_, 'b>) -> (Option<&'b [u8]>, Option<&'b [u8]>) {
    let Some(Ok(uri)) = msg.request_uri().map(Uri::parse) else {
        return (None, None);
    };
    match uri {
        Uri::Sip(s) => (s.user, Some(s.host_raw)),
        Uri::Tel(t) => (Some(t.number), None),
        _ => (None, None),
    }
}

impl Shard {
    /// A shard with no calls, routing by `routing`, sending from `locals`.
    #[must_use]
    pub fn new(opts: &ShardOptions, routing: Arc<Routing>, locals: Locals) -> Self {
        Self {
            ctx: Ctx {
                shard: opts.shard,
                timers: opts.timers,
                locals,
                rng: Rng::new(
                    opts.seed ^ u64::from(opts.shard).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                ),
                ring_timeout: opts.ring_timeout,
                media: opts.media.as_ref().map(MediaPools::new),
                media_out: VecDeque::new(),
                out: VecDeque::new(),
                events: VecDeque::new(),
                stats: Stats::default(),
                counters: Arc::clone(&opts.counters),
            },
            routing,
            calls: Slab::new(),
            next_gen: 1,
            by_inbound: HashMap::new(),
            wakeups: BinaryHeap::new(),
            key: Vec::with_capacity(128),
            draining: false,
            shards: opts.shards,
            agents: Agents::new(),
            last_now: None,
            registered: Answered::default(),
        }
    }

    /// New calls use `routing` from now on; running calls keep the snapshot they started with.
    /// Registrations on behalf are reconciled with it at the next
    /// [`handle_timeout`](Self::handle_timeout) (call it after this).
    pub fn set_routing(&mut self, routing: Arc<Routing>) {
        if let Some(pools) = self.ctx.media.as_mut() {
            let m = &routing.config.media;
            pools.set_timeouts(m.idle_timeout, m.hold_timeout);
        }
        self.routing = routing;
        self.agents.dirty = true;
    }

    /// Ends every call now (the drain's grace period is over): BYE on both legs of answered
    /// calls, CANCEL and 503 for calls still ringing. The shard then finishes those
    /// transactions; [`active_calls`](Self::active_calls) reaches 0 once they are answered or
    /// time out.
    pub fn hang_up_all(&mut self, now: Instant) {
        self.last_now = Some(now);
        let slots: Vec<usize> = self.calls.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            if let Some(call) = self.calls.get_mut(slot) {
                call.shut_down(now, &mut self.ctx);
            }
            self.settle(slot);
        }
    }

    /// Draining (SIGTERM): new INVITEs get 503 with `Retry-After`; running calls go on;
    /// registrations on behalf are removed (un-REGISTER) at the next
    /// [`handle_timeout`](Self::handle_timeout).
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
        self.agents.dirty = true;
    }

    /// The registrations on behalf this shard runs: trunk and status.
    #[must_use]
    pub fn registrations(&self) -> Vec<(String, trunks::register::Status)> {
        self.agents.statuses()
    }

    /// Registrations being removed; the daemon lets them finish before it exits.
    #[must_use]
    pub fn unregistering(&self) -> usize {
        self.agents.retiring()
    }

    /// Calls held: in progress, or ended with transactions still absorbing retransmissions.
    #[must_use]
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Calls set up or answered and not yet ended (ended calls linger in [`calls`](Self::calls)
    /// until their last transaction is over).
    #[must_use]
    pub fn active_calls(&self) -> usize {
        (self.ctx.stats.calls_started - self.ctx.stats.calls_ended) as usize
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.ctx.stats
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.ctx.out.pop_front()
    }

    /// The next command for the media relay.
    #[must_use]
    pub fn poll_media(&mut self) -> Option<rtp_relay::control::Command> {
        self.ctx.media_out.pop_front()
    }

    /// Media port pairs in use.
    #[must_use]
    pub fn media_pairs_in_use(&self) -> usize {
        self.ctx.media.as_ref().map_or(0, MediaPools::in_use)
    }

    /// An event of the media relay about one of this shard's calls.
    pub fn handle_media_event(&mut self, now: Instant, event: &rtp_relay::control::Event) {
        self.last_now = Some(now);
        match event {
            rtp_relay::control::Event::Idle { id } => {
                let (t, _) = Token::unpack(*id);
                let slot = t.slot as usize;
                if let Some(call) = self.calls.get_mut(slot).filter(|c| t.gen_matches(c.gen())) {
                    call.on_media_idle(now, &mut self.ctx);
                    self.settle(slot);
                }
            }
            rtp_relay::control::Event::Closed { id, from } => {
                let (t, n) = Token::unpack(*id);
                let call = format_args!("{:04x}{:06x}{:06x}", t.shard, t.slot, t.gen);
                tracing::debug!(
                    %call,
                    stream = n / 2,
                    rtcp = n % 2 == 1,
                    a_packets = from[0].packets,
                    b_packets = from[1].packets,
                    "media component closed"
                );
                let Some(totals) = self
                    .ctx
                    .media
                    .as_mut()
                    .and_then(|m| m.component_closed(*id, from))
                else {
                    return;
                };
                let [a, b] = &totals.from;
                tracing::info!(
                    %call,
                    trunk_a = %totals.trunks[0].as_deref().unwrap_or("-"),
                    trunk_b = %totals.trunks[1].as_deref().unwrap_or("-"),
                    streams = totals.streams,
                    a_packets = a.packets,
                    a_bytes = a.bytes,
                    b_packets = b.packets,
                    b_bytes = b.bytes,
                    dropped = a.dropped() + b.dropped(),
                    "call media ended"
                );
                self.ctx.event(Event::MediaEnded(totals));
            }
        }
    }

    /// The next event to count or log.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ctx.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let next = self.wakeups.peek().map(|Reverse((t, _, _))| *t);
        match (self.agents.dirty, self.last_now) {
            (true, Some(now)) => Some(next.map_or(now, |t| t.min(now))),
            _ => next,
        }
    }

    /// Time has come to `now`: run every timer due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
        if self.agents.dirty {
            let routing = Arc::clone(&self.routing);
            self.agents.reconcile(
                now,
                &mut self.ctx,
                &routing,
                self.shards,
                self.draining,
                &mut self.wakeups,
            );
        }
        while let Some(&Reverse((at, slot, gen))) = self.wakeups.peek() {
            if at > now {
                break;
            }
            self.wakeups.pop();
            if slot == REG_SLOT as usize {
                self.agents
                    .on_timeout(now, &mut self.ctx, gen, at, &mut self.wakeups);
                continue;
            }
            if slot == PROBE_SLOT as usize {
                let routing = Arc::clone(&self.routing);
                self.agents.on_probe_timeout(
                    now,
                    &mut self.ctx,
                    &routing,
                    gen,
                    at,
                    &mut self.wakeups,
                );
                continue;
            }
            if slot == KEEPALIVE_SLOT as usize {
                let routing = Arc::clone(&self.routing);
                self.agents.on_keepalive(
                    now,
                    &mut self.ctx,
                    &routing,
                    self.shards,
                    self.draining,
                    &mut self.wakeups,
                );
                continue;
            }
            let Some(call) = self.calls.get_mut(slot).filter(|c| c.gen() == gen) else {
                continue;
            };
            if call.scheduled() != Some(at) {
                continue;
            }
            call.set_scheduled(None);
            call.handle_timeout(now, &mut self.ctx);
            self.settle(slot);
        }
    }

    /// A send failed; `token` is the one of the [`Transmit`].
    pub fn handle_transport_error(&mut self, now: Instant, token: u64) {
        let (t, txn) = Token::unpack(token);
        self.last_now = Some(now);
        if t.slot == REG_SLOT {
            self.agents
                .on_transport_error(now, &mut self.ctx, t.gen, txn, &mut self.wakeups);
            return;
        }
        if t.slot == PROBE_SLOT {
            let routing = Arc::clone(&self.routing);
            self.agents.on_probe_result(
                now,
                &mut self.ctx,
                &routing,
                (t.gen, txn),
                None,
                &mut self.wakeups,
            );
            return;
        }
        let slot = t.slot as usize;
        if let Some(call) = self.calls.get_mut(slot).filter(|c| t.gen_matches(c.gen())) {
            call.handle_transport_error(now, &mut self.ctx, txn);
            self.settle(slot);
        }
    }

    /// A message arrived.
    pub fn handle_message(&mut self, now: Instant, inc: Incoming<'_>) {
        self.ctx.stats.received += 1;
        self.last_now = Some(now);
        let mut hs = [EMPTY_HEADER; MAX_HEADERS];
        let msg = match sip_codec::parse(inc.data, &mut hs) {
            Ok(m) => m,
            Err(e) => {
                debug!(source = %inc.source, error = %e, "unparsable message dropped");
                self.drop_msg(DropReason::Malformed);
                return;
            }
        };
        if let Err(e) = msg.validate() {
            debug!(source = %inc.source, error = %e, "invalid message");
            if msg.is_request() && msg.method() != Some(Method::Ack) {
                let code = if matches!(e, ParseError::UnsupportedVersion) {
                    505
                } else {
                    400
                };
                self.reply(&msg, inc, code);
            } else {
                self.drop_msg(DropReason::Malformed);
            }
            return;
        }
        match msg.start {
            StartLine::Response { .. } => self.on_response(now, &msg),
            StartLine::Request { method, .. } => self.on_request(now, &msg, inc, method),
        }
    }

    fn drop_msg(&mut self, reason: DropReason) {
        self.ctx.event(Event::Dropped { reason });
    }

    /// A stateless reply (§8.2: 400, 403, 405, 481, 483, 503; OPTIONS 200).
    fn reply(&mut self, msg: &Message<'_, '_>, inc: Incoming<'_>, code: u16) {
        let mut tag_hex = Vec::with_capacity(16);
        ids::put_hex(&mut tag_hex, self.ctx.rng.next_u64(), 16);
        let options = msg.method() == Some(Method::Options);
        let draining = self.draining;
        let Some(bytes) = build::stateless_response(msg, inc.source, code, &tag_hex, |w| {
            if code == 405 || (options && code == 200) {
                w.header(HeaderKind::Allow, ALLOW);
            }
            if code == 503 && draining {
                w.header(HeaderKind::RetryAfter, DRAIN_RETRY_AFTER);
            }
            if options && code == 200 {
                w.header(HeaderKind::Accept, b"application/sdp")
                    .header(HeaderKind::Supported, SUPPORTED);
            }
        }) else {
            self.drop_msg(DropReason::Malformed);
            return;
        };
        let peer = Peer {
            addr: inc.source,
            transport: inc.transport,
            conn: inc.conn,
        };
        self.ctx.send(Side::A, bytes, peer, 0);
    }

    fn on_response(&mut self, now: Instant, msg: &Message<'_, '_>) {
        let branch = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .and_then(ids::read_branch);
        // Counted on the leg its branch names (sbcd wrote it); a stray one as inbound.
        if let Some(code) = msg.status_code() {
            let method = msg.cseq().map_or(Method::Other, |c| c.method_kind());
            let side = branch.map_or(Side::A, |(_, side, _)| side);
            self.ctx
                .counters
                .response(side, Direction::Received, method, code);
        }
        let found = branch.filter(|(t, _, _)| t.shard == self.ctx.shard);
        let Some((t, _side, txn)) = found else {
            self.drop_msg(DropReason::StrayResponse);
            return;
        };
        if t.slot == REG_SLOT {
            if !self
                .agents
                .on_response(now, &mut self.ctx, t.gen, txn, msg, &mut self.wakeups)
            {
                self.drop_msg(DropReason::StrayResponse);
            }
            return;
        }
        if t.slot == PROBE_SLOT {
            let routing = Arc::clone(&self.routing);
            let code = msg.status_code();
            if !self.agents.on_probe_result(
                now,
                &mut self.ctx,
                &routing,
                (t.gen, txn),
                code,
                &mut self.wakeups,
            ) {
                self.drop_msg(DropReason::StrayResponse);
            }
            return;
        }
        if t.slot == KEEPALIVE_SLOT {
            let routing = Arc::clone(&self.routing);
            self.agents.on_keepalive_response(&routing, t.gen, msg);
            return;
        }
        let slot = t.slot as usize;
        match self.calls.get_mut(slot).filter(|c| t.gen_matches(c.gen())) {
            Some(call) => {
                if !call.on_response(now, &mut self.ctx, msg, txn) {
                    self.drop_msg(DropReason::StrayResponse);
                }
                self.settle(slot);
            }
            None => self.drop_msg(DropReason::StrayResponse),
        }
    }

    fn inbound_key(&mut self, msg: &Message<'_, '_>) -> bool {
        self.key.clear();
        let (Some(cid), Ok(from)) = (msg.call_id(), msg.from()) else {
            return false;
        };
        self.key.extend_from_slice(cid);
        self.key.push(b'\n');
        self.key.extend_from_slice(from.tag().unwrap_or_default());
        true
    }

    fn on_request(
        &mut self,
        now: Instant,
        msg: &Message<'_, '_>,
        inc: Incoming<'_>,
        method: Method,
    ) {
        let tagged = msg.to().ok().and_then(|t| t.tag()).map(ids::read_tag);
        // Counted on the leg of sbcd's To tag; outside a dialog (or a tag not ours) as inbound.
        let side = tagged.flatten().map_or(Side::A, |(_, side)| side);
        self.ctx.counters.request(side, Direction::Received, method);
        if let Some(tag) = tagged {
            let ours = tag.filter(|(t, _)| t.shard == self.ctx.shard);
            let slot = ours.map(|(t, _)| t.slot as usize);
            let call = ours.and_then(|(t, side)| {
                let c = self.calls.get_mut(t.slot as usize)?;
                t.gen_matches(c.gen()).then_some((c, side))
            });
            match call {
                Some((call, side)) => {
                    call.on_in_dialog(now, &mut self.ctx, msg, inc, side);
                    if let Some(slot) = slot {
                        self.settle(slot);
                    }
                }
                None if method == Method::Ack => self.drop_msg(DropReason::StrayAck),
                None => self.reply(msg, inc, 481),
            }
            return;
        }
        match method {
            Method::Ack => self.drop_msg(DropReason::StrayAck),
            Method::Invite | Method::Cancel => {
                let slot = if self.inbound_key(msg) {
                    self.by_inbound.get(self.key.as_slice()).copied()
                } else {
                    None
                };
                match (slot, method) {
                    (Some(slot), Method::Invite) => {
                        if let Some(call) = self.calls.get_mut(slot) {
                            call.on_invite_again(now, &mut self.ctx, msg, inc);
                        }
                        self.settle(slot);
                    }
                    (Some(slot), _) => {
                        if let Some(call) = self.calls.get_mut(slot) {
                            call.on_cancel(now, &mut self.ctx, msg, inc);
                        }
                        self.settle(slot);
                    }
                    (None, Method::Invite) => self.new_call(now, msg, inc),
                    (None, _) => self.reply(msg, inc, 481),
                }
            }
            _ => {
                if method == Method::Register && self.registered.resend(msg, inc, &mut self.ctx) {
                    return;
                }
                let routing = Arc::clone(&self.routing);
                let Some(m) = self.identify_or_refuse(now, &routing, msg, inc) else {
                    return;
                };
                let inbound = &routing.config.trunk(m.trunk).inbound;
                // A trunk recognised by something other than digest alone gets its keep-alive
                // answered without credentials. A digest-only trunk matches any source: its
                // OPTIONS are challenged like any request, so a stranger learns no more from
                // OPTIONS than from an INVITE.
                if method == Method::Options
                    && (m.registered_contact || inbound.matches_without_digest())
                {
                    self.reply(msg, inc, 200);
                } else if method == Method::Register && !inbound.register {
                    self.reply(msg, inc, 405);
                } else if self.authorize(now, &routing, m.trunk, msg, inc) {
                    match method {
                        Method::Register => self.on_register(now, &routing, m.trunk, msg, inc),
                        Method::Options => self.reply(msg, inc, 200),
                        _ => self.reply(msg, inc, 405),
                    }
                }
            }
        }
    }

    fn new_call(&mut self, now: Instant, msg: &Message<'_, '_>, inc: Incoming<'_>) {
        let routing = Arc::clone(&self.routing);
        let Some(m) = self.identify_or_refuse(now, &routing, msg, inc) else {
            return;
        };
        let trunk = m.trunk;
        if !self.authorize(now, &routing, trunk, msg, inc) {
            return;
        }
        if self.draining {
            self.reply(msg, inc, 503);
            return;
        }
        let max_forwards = match msg.max_forwards() {
            Ok(Some(0)) => {
                self.reply(msg, inc, 483);
                return;
            }
            Ok(Some(n)) => n - 1,
            _ => 69,
        };
        let tc = routing.config.trunk(trunk);
        let number = if m.registered_contact {
            // Sent to the Contact sbcd registered: the called number is in To (RFC 3261
            // §10.2.1: the Request-URI is our Contact, the AOR stays in To).
            to_user(msg).unwrap_or_default()
        } else {
            number_and_host(msg)
                .0
                .and_then(|n| n.get(m.prefix_len..))
                .unwrap_or_default()
        };
        if number.is_empty() {
            self.reply(msg, inc, 404);
            return;
        }
        let Some(targets) = routing.route(trunk, number).map(<[_]>::to_vec) else {
            debug!(trunk = %tc.name, "no route for the called number: 404");
            self.reply(msg, inc, 404);
            return;
        };
        if !self.inbound_key(msg) {
            self.reply(msg, inc, 400);
            return;
        }
        // Last, so that a refused request costs a trunk nothing: its limits count calls.
        let slot_of_trunk = match routing.shared.loads.admit(
            &tc.name,
            tc.inbound.max_calls,
            tc.inbound.max_cps,
            now,
        ) {
            Ok(slot) => slot,
            Err(why) => {
                debug!(trunk = %tc.name, limit = why.label(), "trunk over its limit: 503");
                self.ctx.event(Event::CallRefused {
                    trunk: tc.name.clone(),
                    reason: why.label(),
                });
                self.reply(msg, inc, 503);
                return;
            }
        };
        if self.calls.len() >= ids::MAX_SLOTS - 1 {
            self.reply(msg, inc, 503);
            return;
        }
        let gen = self.next_gen;
        // 1..MAX_GEN: generation 0 never names a call (stateless sends use token 0).
        self.next_gen = self.next_gen % (ids::MAX_GEN - 1) + 1;
        let entry = self.calls.vacant_entry();
        let slot = entry.key();
        let token = Token {
            shard: self.ctx.shard,
            slot: slot as u32,
            gen,
        };
        let new = NewCall {
            token,
            routing: Arc::clone(&routing),
            from_trunk: trunk,
            number: number.into(),
            targets,
            max_forwards: u32::from(max_forwards),
            inbound_key: self.key.as_slice().into(),
            peer: Peer {
                addr: inc.source,
                transport: inc.transport,
                conn: inc.conn,
            },
            invite: Bytes::copy_from_slice(&inc.data[..msg.len.min(inc.data.len())]),
            slot: slot_of_trunk,
        };
        match Call::start(now, &mut self.ctx, new, msg) {
            Ok(call) => {
                self.by_inbound.insert(call.inbound_key().into(), slot);
                entry.insert(call);
                self.ctx.stats.calls_started += 1;
                self.ctx.event(Event::CallStarted {
                    trunk: tc.name.clone(),
                });
                self.settle(slot);
            }
            Err(code) => self.reply(msg, inc, code),
        }
    }

    /// The trunk of a request outside any dialog. None: no trunk accepts it; it was answered
    /// 403, each candidate trunk's failed check counted and logged at debug level.
    fn identify_or_refuse(
        &mut self,
        now: Instant,
        routing: &Routing,
        msg: &Message<'_, '_>,
        inc: Incoming<'_>,
    ) -> Option<Matched> {
        let (user, host) = number_and_host(msg);
        let req = ingress::Request {
            source: inc.source.ip(),
            ruri_user: user,
            ruri_host: host,
            msg,
        };
        if let Some(m) = routing.identify(&req) {
            return Some(m);
        }
        self.ctx.stats.unknown_source += 1;
        let ctx = &mut self.ctx;
        routing.ingress().failures(&req, |trunk, mode| {
            let name = trunk.map(|t| routing.config.trunk(t).name.as_str());
            debug!(
                source = %inc.source,
                trunk = name.unwrap_or("-"),
                check = mode.as_str(),
                "inbound check failed"
            );
            ctx.stats.auth_failures += 1;
            ctx.event(Event::AuthFailed {
                trunk: name.map(str::to_owned),
                mode: mode.as_str(),
            });
        });
        debug!(source = %inc.source, "request from no trunk: 403");
        let blocked = routing.shared.guard.auth_failed(inc.source.ip(), now);
        self.ctx.event(Event::SourceRefused {
            source: inc.source.ip(),
            blocked,
        });
        self.reply(msg, inc, 403);
        None
    }

    /// The digest check of a trunk with `inbound.digest`: true when the request may go on;
    /// otherwise it was answered with a challenge (401/407) or 403.
    fn authorize(
        &mut self,
        now: Instant,
        routing: &Routing,
        trunk: TrunkId,
        msg: &Message<'_, '_>,
        inc: Incoming<'_>,
    ) -> bool {
        match auth::check_inbound(routing, trunk, msg, now) {
            auth::Inbound::Accepted => true,
            auth::Inbound::Challenge { stale } => {
                let code = auth::challenge_code(routing, trunk, msg.method());
                let mut tag = Vec::with_capacity(16);
                ids::put_hex(&mut tag, self.ctx.rng.next_u64(), 16);
                let salt = self.ctx.rng.next_u64();
                if let Some(bytes) = build::stateless_response(msg, inc.source, code, &tag, |w| {
                    auth::write_challenge(w, routing, trunk, code, stale, now, salt);
                }) {
                    self.ctx.send(Side::A, bytes, peer_of(inc), 0);
                }
                false
            }
            auth::Inbound::Refused { why } => {
                let name = &routing.config.trunk(trunk).name;
                debug!(source = %inc.source, trunk = %name, why, "digest credentials refused: 403");
                self.ctx.stats.auth_failures += 1;
                self.ctx.event(Event::AuthFailed {
                    trunk: Some(name.clone()),
                    mode: Mode::Digest.as_str(),
                });
                let blocked = routing.shared.guard.auth_failed(inc.source.ip(), now);
                self.ctx.event(Event::SourceRefused {
                    source: inc.source.ip(),
                    blocked,
                });
                self.reply(msg, inc, 403);
                false
            }
        }
    }

    /// An authenticated REGISTER from a trunk's PBX (RFC 3261 §10.3): bindings updated, the
    /// response lists them (or 423 / 400 / 500).
    fn on_register(
        &mut self,
        now: Instant,
        routing: &Routing,
        trunk: TrunkId,
        msg: &Message<'_, '_>,
        inc: Incoming<'_>,
    ) {
        let name = &routing.config.trunk(trunk).name;
        let origin = trunks::registrar::Origin {
            source: inc.source,
            transport: inc.transport,
            conn: inc.conn,
        };
        let outcome = routing.shared.bindings.register(name, msg, origin, now);
        let code = match &outcome {
            Outcome::Ok(_) => 200,
            Outcome::IntervalTooBrief(_) => 423,
            Outcome::Bad(why) => {
                debug!(trunk = %name, why, "REGISTER refused: 400");
                400
            }
            Outcome::OutOfOrder => 500,
        };
        let mut tag = Vec::with_capacity(16);
        ids::put_hex(&mut tag, self.ctx.rng.next_u64(), 16);
        let mut num = itoa::Buffer::new();
        let Some(bytes) =
            build::stateless_response(msg, inc.source, code, &tag, |w| match &outcome {
                Outcome::Ok(list) => {
                    for (contact, expires) in list {
                        w.header_parts(
                            b"Contact",
                            &[
                                b"<",
                                contact,
                                b">;expires=",
                                num.format(*expires).as_bytes(),
                            ],
                        );
                    }
                }
                Outcome::IntervalTooBrief(min) => {
                    w.header_u32(HeaderKind::MinExpires, *min);
                }
                _ => {}
            })
        else {
            return;
        };
        if let Outcome::Ok(list) = &outcome {
            debug!(trunk = %name, contacts = list.len(), source = %inc.source, "REGISTER accepted");
        }
        self.registered
            .remember(now, msg, bytes.clone(), self.ctx.timers.t1 * 64);
        self.ctx.send(Side::A, bytes, peer_of(inc), 0);
    }

    /// After a call handled an input: forget it if it is over, else schedule its next wake-up.
    fn settle(&mut self, slot: usize) {
        let Some(call) = self.calls.get_mut(slot) else {
            return;
        };
        if call.is_done() {
            let call = self.calls.remove(slot);
            self.by_inbound.remove(call.inbound_key());
            return;
        }
        let next = call.next_deadline();
        if next.is_some() && next != call.scheduled() {
            if let Some(at) = next {
                call.set_scheduled(Some(at));
                self.wakeups.push(Reverse((at, slot, call.gen())));
            }
        }
    }
}

impl Side {
    pub(crate) fn index(self) -> usize {
        match self {
            Self::A => 0,
            Self::B => 1,
        }
    }
}

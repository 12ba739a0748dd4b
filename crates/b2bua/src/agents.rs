//! What a shard does on its own account, outside calls: registering trunks on behalf
//! ([`trunks::register`]), probing trunks with OPTIONS ([`trunks::probe`]), and OPTIONS
//! keep-alives to the PBXs registered to sbcd (they keep NAT mappings open and tell which
//! contact still answers).
//!
//! Each shard runs the registrations of the trunks whose index modulo the number of shards is
//! its own. A registration's responses find it like a call's do: the branch carries a token
//! whose slot is [`REG_SLOT`] (never a call's) and whose generation is the registration's
//! index + 1. Starts are spread [`STAGGER`] apart across shards, so that thousands of trunks
//! neither register nor (since refreshes keep their spacing) refresh in a burst.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_config::net::{Host, Transport};
use sbc_config::{OutboundAuth, TrunkId};
use sip_codec::Message;
use trunks::probe::{Probe, ProbeParams};
use trunks::register::{Env, Params, Registration, Status};

use crate::counters::TxnTimer;
use crate::ids::{self, Rng, Side, Token};
use crate::leg::Peer;
use crate::routing::Routing;
use crate::shard::Ctx;
use crate::Event;

/// The slot of registration tokens: above every call slot (a shard holds fewer calls).
pub(crate) const REG_SLOT: u32 = (ids::MAX_SLOTS - 1) as u32;
/// The slot of OPTIONS probe tokens.
pub(crate) const PROBE_SLOT: u32 = (ids::MAX_SLOTS - 2) as u32;
/// The slot of keep-alive tokens (generation: the trunk's index + 1).
pub(crate) const KEEPALIVE_SLOT: u32 = (ids::MAX_SLOTS - 3) as u32;

/// Time between two keep-alives to a registered PBX's contact.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(30);

/// Time between two registrations' first REGISTERs across all shards: 80 per second however
/// many cores (shard `s` of `n` takes the slots `s`, `s + n`, `s + 2n`, …), so 10,000 trunks
/// start within 125 s and, refreshing at equal intervals, never send 1% of them in a second.
pub(crate) const STAGGER: Duration = Duration::from_micros(12_500);

pub(crate) type Wakeups = BinaryHeap<Reverse<(Instant, usize, u32)>>;

/// What a registration is compared by on reload: a change means unregister and start over.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    auth: OutboundAuth,
    domain: String,
    targets: Vec<std::net::SocketAddr>,
    transport: Transport,
    expires: u32,
    contact: Vec<u8>,
}

#[derive(Debug)]
struct Entry {
    key: Key,
    reg: Registration,
    /// Being removed (trunk gone or changed, or shutting down).
    retiring: bool,
    /// Waiting for the retiring registration of the same trunk to finish: its un-REGISTER
    /// names the same Contact, and a registrar that got it after the new REGISTER would
    /// remove the new binding (RFC 3261 §10.3 step 7).
    parked: bool,
    scheduled: Option<Instant>,
}

#[derive(Debug)]
struct ProbeEntry {
    probe: Probe,
    scheduled: Option<Instant>,
}

/// The registrations, probes and keep-alives of one shard.
#[derive(Debug, Default)]
pub(crate) struct Agents {
    /// Indexed by generation - 1; an index is never reused, so a late response cannot reach
    /// a newer registration.
    regs: Vec<Option<Entry>>,
    /// Probes, indexed by generation - 1, never reused either.
    probes: Vec<Option<ProbeEntry>>,
    /// Keep-alives sent and not answered yet: (trunk, contact).
    awaiting: Vec<(String, Box<[u8]>)>,
    /// When the next round of keep-alives goes out.
    keepalive_at: Option<Instant>,
    /// Configuration or draining changed: reconcile at the next timeout.
    pub(crate) dirty: bool,
}

struct ShardEnv<'a> {
    rng: &'a mut Rng,
    token: Token,
}

impl Env for ShardEnv<'_> {
    fn branch(&mut self, txn: u16) -> Vec<u8> {
        let mut b = Vec::with_capacity(40);
        ids::write_branch(&mut b, self.token, Side::B, txn, self.rng.next_u32());
        b
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

fn token(shard: u16, index: usize) -> Token {
    Token {
        shard,
        slot: REG_SLOT,
        gen: index as u32 + 1,
    }
}

/// The registration parameters of trunk `id`, or None if sbcd cannot send to its registrar.
fn params(routing: &Routing, ctx: &Ctx, id: TrunkId) -> Option<(Params, Key)> {
    let t = routing.config.trunk(id);
    let reg = t.outbound.register?;
    let auth = t.outbound.auth.clone()?;
    let uri = t.outbound.uri.as_ref()?;
    let targets = routing.addresses(id).to_vec();
    let transport = routing.transport(id);
    let local = ctx.locals.find(transport, *targets.first()?)?;
    let domain = match &t.outbound.domain {
        Some(Host::Domain(d)) => d.clone(),
        Some(h @ Host::Ip(_)) => h.to_string(),
        None => match uri.port {
            Some(p) => format!("{}:{p}", uri.host),
            None => uri.host.to_string(),
        },
    };
    let mut contact = Vec::with_capacity(64);
    contact.extend_from_slice(if transport == Transport::Tls {
        b"sips:"
    } else {
        b"sip:"
    });
    let password = t
        .outbound
        .auth
        .as_ref()
        .map(|a| a.password.expose().as_bytes());
    contact.extend_from_slice(&routing.shared.contact_user(&t.name, password));
    contact.push(b'@');
    contact.extend_from_slice(&local.sent_by);
    if transport == Transport::Tcp {
        contact.extend_from_slice(b";transport=tcp");
    }
    let key = Key {
        auth: auth.clone(),
        domain: domain.clone(),
        targets: targets.clone(),
        transport,
        expires: reg.expires_secs.get(),
        contact: contact.clone(),
    };
    let p = Params {
        trunk: t.name.clone(),
        auth,
        domain,
        targets,
        transport,
        via_proto: local.via_proto,
        sent_by: local.sent_by.to_vec(),
        contact,
        expires_secs: reg.expires_secs.get(),
        timers: ctx.timers,
    };
    Some((p, key))
}

impl Agents {
    /// No registrations yet; the first timeout reconciles with the configuration.
    pub(crate) fn new() -> Self {
        Self {
            dirty: true,
            ..Self::default()
        }
    }

    /// Starts the registrations this shard owns and the configuration asks for, and retires
    /// those it no longer asks for (or all, when draining).
    pub(crate) fn reconcile(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        routing: &Routing,
        shards: u16,
        draining: bool,
        wakeups: &mut Wakeups,
    ) {
        self.dirty = false;
        // Linear in the number of trunks: 10,000 of them are reconciled in milliseconds, so the
        // staggered start times below are still ahead when the loop ends.
        let mut wanted: Vec<Option<(Params, Key)>> = Vec::new();
        if !draining {
            for (id, t) in routing.config.trunk_ids() {
                if t.outbound.register.is_none()
                    || id.index() % usize::from(shards.max(1)) != usize::from(ctx.shard)
                {
                    continue;
                }
                match params(routing, ctx, id) {
                    Some(pk) => wanted.push(Some(pk)),
                    None => tracing::warn!(
                        trunk = %t.name,
                        "cannot register: registrar not resolved, or no listener for its transport and address family"
                    ),
                }
            }
        }
        let by_name: HashMap<String, usize> = wanted
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.as_ref().map(|(p, _)| (p.trunk.clone(), i)))
            .collect();
        for i in 0..self.regs.len() {
            let Some(e) = &mut self.regs[i] else { continue };
            if e.retiring {
                continue;
            }
            let same = by_name
                .get(&e.reg.params().trunk)
                .and_then(|&w| wanted[w].as_ref().map(|(_, k)| (w, *k == e.key)));
            match same {
                // Running with the same parameters: nothing to start.
                Some((w, true)) => wanted[w] = None,
                _ => {
                    e.retiring = true;
                    e.reg.unregister(now);
                    self.flush(i, ctx, wakeups);
                }
            }
        }
        let shard = u32::from(ctx.shard);
        let n = u32::from(shards.max(1));
        for (k, (p, key)) in (0u32..).zip(wanted.into_iter().flatten()) {
            let index = self.regs.len();
            let t = token(ctx.shard, index);
            let mut call_id = Vec::with_capacity(40);
            ids::write_call_id(&mut call_id, t, ctx.rng.next_u64());
            let mut tag = Vec::with_capacity(32);
            ids::write_tag(&mut tag, t, Side::B, ctx.rng.next_u32());
            let start = now + STAGGER * (k * n + shard);
            let parked = self
                .regs
                .iter()
                .flatten()
                .any(|e| e.retiring && e.reg.params().trunk == p.trunk);
            self.regs.push(Some(Entry {
                key,
                reg: Registration::new(p, start, call_id, tag),
                retiring: false,
                parked,
                scheduled: None,
            }));
            self.flush(index, ctx, wakeups);
        }
        self.reconcile_probes(now, ctx, routing, shards, draining, wakeups);
        if self.keepalive_at.is_none() && !draining {
            let at = now + KEEPALIVE;
            self.keepalive_at = Some(at);
            wakeups.push(Reverse((at, KEEPALIVE_SLOT as usize, 0)));
        }
    }

    /// Probes for the trunks this shard owns that have `outbound.options_ping_secs`.
    fn reconcile_probes(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        routing: &Routing,
        shards: u16,
        draining: bool,
        wakeups: &mut Wakeups,
    ) {
        let mut wanted = Vec::new();
        for (id, t) in routing.config.trunk_ids() {
            if draining || id.index() % usize::from(shards.max(1)) != usize::from(ctx.shard) {
                continue;
            }
            let (Some(interval), Some(uri)) = (t.outbound.options_ping, &t.outbound.uri) else {
                continue;
            };
            let Some((dest, transport)) = routing.target(id) else {
                continue;
            };
            let Some(local) = ctx.locals.find(transport, dest) else {
                continue;
            };
            let mut ruri = Vec::with_capacity(64);
            ruri.extend_from_slice(if transport == Transport::Tls {
                b"sips:"
            } else {
                b"sip:"
            });
            match &t.outbound.domain {
                Some(d) => ruri.extend_from_slice(d.to_string().as_bytes()),
                None => {
                    ruri.extend_from_slice(uri.host.to_string().as_bytes());
                    if let Some(p) = uri.port {
                        ruri.push(b':');
                        ruri.extend_from_slice(p.to_string().as_bytes());
                    }
                }
            }
            if transport == Transport::Tcp {
                ruri.extend_from_slice(b";transport=tcp");
            }
            wanted.push(ProbeParams {
                trunk: t.name.clone(),
                uri: ruri,
                dest,
                transport,
                via_proto: local.via_proto,
                sent_by: local.sent_by.to_vec(),
                interval,
            });
        }
        for slot in &mut self.probes {
            if slot
                .as_ref()
                .is_some_and(|e| !wanted.contains(e.probe.params()))
            {
                if let Some(e) = slot.take() {
                    routing.shared.down.remove(&e.probe.params().trunk);
                }
            }
        }
        let mut k = 0u32;
        for p in wanted {
            if self.probes.iter().flatten().any(|e| *e.probe.params() == p) {
                continue;
            }
            let index = self.probes.len();
            let t = Token {
                shard: ctx.shard,
                slot: PROBE_SLOT,
                gen: index as u32 + 1,
            };
            let mut call_id = Vec::with_capacity(40);
            ids::write_call_id(&mut call_id, t, ctx.rng.next_u64());
            let start = now + STAGGER * k;
            k += 1;
            self.probes.push(Some(ProbeEntry {
                probe: Probe::new(p, ctx.timers, start, call_id),
                scheduled: None,
            }));
            self.flush_probe(index, ctx, routing, wakeups);
        }
    }

    /// A probe's timer.
    pub(crate) fn on_probe_timeout(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        routing: &Routing,
        gen: u32,
        at: Instant,
        wakeups: &mut Wakeups,
    ) {
        let i = (gen as usize).wrapping_sub(1);
        let Some(e) = self.probes.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if e.scheduled != Some(at) {
            return;
        }
        e.scheduled = None;
        let mut env = ShardEnv {
            rng: &mut ctx.rng,
            token: Token {
                shard: ctx.shard,
                slot: PROBE_SLOT,
                gen,
            },
        };
        e.probe.handle_timeout(now, &mut env);
        self.flush_probe(i, ctx, routing, wakeups);
    }

    /// A response (`code`) to probe `gen`, attempt `txn`; or a transport error (`code` None).
    pub(crate) fn on_probe_result(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        routing: &Routing,
        (gen, txn): (u32, u16),
        code: Option<u16>,
        wakeups: &mut Wakeups,
    ) -> bool {
        let i = (gen as usize).wrapping_sub(1);
        let Some(e) = self.probes.get_mut(i).and_then(Option::as_mut) else {
            return false;
        };
        match code {
            Some(code) => e.probe.handle_response(now, code, txn),
            None => e.probe.handle_transport_error(now, txn),
        }
        self.flush_probe(i, ctx, routing, wakeups);
        true
    }

    fn flush_probe(&mut self, i: usize, ctx: &mut Ctx, routing: &Routing, wakeups: &mut Wakeups) {
        let Some(e) = self.probes.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let t = Token {
            shard: ctx.shard,
            slot: PROBE_SLOT,
            gen: i as u32 + 1,
        };
        while let Some(tx) = e.probe.poll_transmit() {
            let peer = Peer {
                addr: tx.dest,
                transport: tx.transport,
                conn: None,
            };
            ctx.send(
                Side::B,
                Bytes::from(tx.data),
                peer,
                t.pack(e.probe.attempt()),
            );
        }
        for _ in 0..e.probe.take_timeouts() {
            ctx.counters.timeout(TxnTimer::F);
        }
        if e.probe.take_changed() {
            let trunk = e.probe.params().trunk.clone();
            let status = e.probe.last_status().unwrap_or(0);
            if e.probe.is_up() {
                routing.shared.down.remove(&trunk);
                tracing::info!(trunk = %trunk, status, "trunk answers OPTIONS again: up");
            } else {
                routing.shared.down.insert(trunk.clone(), status);
                tracing::warn!(trunk = %trunk, status, "trunk does not answer OPTIONS: down, skipped by routing");
            }
            ctx.event(Event::TrunkHealth {
                trunk,
                up: e.probe.is_up(),
                status,
            });
        }
        let next = e.probe.poll_timeout();
        if e.scheduled != Some(next) {
            e.scheduled = Some(next);
            wakeups.push(Reverse((next, PROBE_SLOT as usize, t.gen)));
        }
    }

    /// The keep-alive round: contacts that did not answer the last one are marked
    /// unreachable (calls prefer others), and every live binding of the register trunks this
    /// shard owns gets an OPTIONS, sent to where its REGISTER came from.
    pub(crate) fn on_keepalive(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        routing: &Routing,
        shards: u16,
        draining: bool,
        wakeups: &mut Wakeups,
    ) {
        let bindings = &routing.shared.bindings;
        for (trunk, contact) in self.awaiting.drain(..) {
            if bindings.set_reachable(&trunk, &contact, false) {
                tracing::info!(trunk = %trunk, contact = %String::from_utf8_lossy(&contact), "registered contact does not answer keep-alives");
            }
        }
        bindings.prune(now);
        if draining {
            self.keepalive_at = None;
            return;
        }
        for (i, t) in routing.config.trunks.iter().enumerate() {
            if !t.inbound.register || i % usize::from(shards.max(1)) != usize::from(ctx.shard) {
                continue;
            }
            let token = Token {
                shard: ctx.shard,
                slot: KEEPALIVE_SLOT,
                gen: i as u32 + 1,
            };
            for b in bindings.all(&t.name, now) {
                let Some(local) = ctx.locals.find(b.transport, b.source) else {
                    continue;
                };
                let mut branch = Vec::with_capacity(40);
                ids::write_branch(&mut branch, token, Side::A, 0, ctx.rng.next_u32());
                let mut call_id = Vec::with_capacity(40);
                ids::write_call_id(&mut call_id, token, ctx.rng.next_u64());
                let mut out = Vec::with_capacity(400);
                let mut w = sip_codec::Writer::new(&mut out);
                w.request_line(b"OPTIONS", &[&b.contact]);
                w.via(local.via_proto, &local.sent_by, &[&branch], true);
                w.header_u32(sip_codec::HeaderKind::MaxForwards, 70);
                w.header_parts(b"From", &[b"<sip:sbcd@", &local.sent_by, b">;tag=ka"]);
                w.header_parts(b"To", &[b"<", &b.contact, b">"]);
                w.header(sip_codec::HeaderKind::CallId, &call_id);
                w.cseq(1, b"OPTIONS");
                w.header(sip_codec::HeaderKind::UserAgent, b"sbcd");
                w.finish();
                let peer = Peer {
                    addr: b.source,
                    transport: b.transport,
                    conn: b.conn,
                };
                ctx.send(Side::B, Bytes::from(out), peer, token.pack(0));
                self.awaiting.push((t.name.clone(), b.contact.clone()));
            }
        }
        let at = now + KEEPALIVE;
        self.keepalive_at = Some(at);
        wakeups.push(Reverse((at, KEEPALIVE_SLOT as usize, 0)));
    }

    /// A response to a keep-alive: its To URI names the contact.
    pub(crate) fn on_keepalive_response(
        &mut self,
        routing: &Routing,
        gen: u32,
        msg: &Message<'_, '_>,
    ) {
        let Some(t) = routing.config.trunks.get((gen as usize).wrapping_sub(1)) else {
            return;
        };
        let Some(to) = msg.to().ok() else { return };
        let before = self.awaiting.len();
        self.awaiting
            .retain(|(trunk, c)| !(*trunk == t.name && c.eq_ignore_ascii_case(to.uri)));
        if self.awaiting.len() != before
            && routing.shared.bindings.set_reachable(&t.name, to.uri, true)
        {
            tracing::info!(trunk = %t.name, contact = %String::from_utf8_lossy(to.uri), "registered contact answers keep-alives again");
        }
    }

    /// A registration's timer.
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        gen: u32,
        at: Instant,
        wakeups: &mut Wakeups,
    ) {
        let i = gen as usize - 1;
        let Some(e) = self.regs.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if e.scheduled != Some(at) {
            return;
        }
        e.scheduled = None;
        let mut env = ShardEnv {
            rng: &mut ctx.rng,
            token: token(ctx.shard, i),
        };
        e.reg.handle_timeout(now, &mut env);
        self.flush(i, ctx, wakeups);
    }

    /// A response whose branch names registration `gen`. False if there is none.
    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        gen: u32,
        txn: u16,
        msg: &Message<'_, '_>,
        wakeups: &mut Wakeups,
    ) -> bool {
        let i = (gen as usize).wrapping_sub(1);
        let Some(e) = self.regs.get_mut(i).and_then(Option::as_mut) else {
            return false;
        };
        let mut env = ShardEnv {
            rng: &mut ctx.rng,
            token: token(ctx.shard, i),
        };
        e.reg.handle_response(now, &mut env, msg, txn);
        self.flush(i, ctx, wakeups);
        true
    }

    /// A REGISTER could not be sent.
    pub(crate) fn on_transport_error(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        gen: u32,
        txn: u16,
        wakeups: &mut Wakeups,
    ) {
        let i = (gen as usize).wrapping_sub(1);
        let Some(e) = self.regs.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let mut env = ShardEnv {
            rng: &mut ctx.rng,
            token: token(ctx.shard, i),
        };
        e.reg.handle_transport_error(now, &mut env, txn);
        self.flush(i, ctx, wakeups);
    }

    /// Sends what registration `i` queued, reports a changed status, schedules its timer,
    /// and forgets it once it is finished.
    fn flush(&mut self, i: usize, ctx: &mut Ctx, wakeups: &mut Wakeups) {
        let Some(e) = self.regs.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if e.parked {
            return;
        }
        let t = token(ctx.shard, i);
        while let Some(tx) = e.reg.poll_transmit() {
            let peer = Peer {
                addr: tx.dest,
                transport: tx.transport,
                conn: None,
            };
            ctx.send(Side::B, Bytes::from(tx.data), peer, t.pack(e.reg.attempt()));
        }
        for _ in 0..e.reg.take_timeouts() {
            ctx.counters.timeout(TxnTimer::F);
        }
        if e.reg.take_changed() {
            ctx.event(Event::Registration {
                trunk: e.reg.params().trunk.clone(),
                status: e.reg.status(),
            });
        }
        if e.reg.is_finished() {
            let trunk = e.reg.params().trunk.clone();
            self.regs[i] = None;
            // The trunk's new registration may go now (its start time has passed: at once).
            let next = self.regs.iter().position(|r| {
                r.as_ref()
                    .is_some_and(|r| r.parked && r.reg.params().trunk == trunk)
            });
            let still_retiring = self
                .regs
                .iter()
                .flatten()
                .any(|r| r.retiring && r.reg.params().trunk == trunk);
            if let (Some(j), false) = (next, still_retiring) {
                if let Some(r) = self.regs[j].as_mut() {
                    r.parked = false;
                }
                self.flush(j, ctx, wakeups);
            }
            return;
        }
        let next = e.reg.poll_timeout();
        if next.is_some() && next != e.scheduled {
            e.scheduled = next;
            if let Some(at) = next {
                wakeups.push(Reverse((at, REG_SLOT as usize, t.gen)));
            }
        }
    }

    /// Every registration: trunk name and status (retiring ones included).
    pub(crate) fn statuses(&self) -> Vec<(String, Status)> {
        self.regs
            .iter()
            .flatten()
            .map(|e| (e.reg.params().trunk.clone(), e.reg.status()))
            .collect()
    }

    /// Registrations being removed (un-REGISTER in flight): the daemon waits for them at exit.
    pub(crate) fn retiring(&self) -> usize {
        self.regs.iter().flatten().filter(|e| e.retiring).count()
    }
}

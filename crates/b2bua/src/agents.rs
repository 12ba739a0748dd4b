//! What a shard does on its own account, outside calls: registering trunks on behalf
//! ([`trunks::register`]).
//!
//! Each shard runs the registrations of the trunks whose index modulo the number of shards is
//! its own. A registration's responses find it like a call's do: the branch carries a token
//! whose slot is [`REG_SLOT`] (never a call's) and whose generation is the registration's
//! index + 1. Starts are spread [`STAGGER`] apart, so that thousands of trunks neither
//! register nor (since refreshes keep their spacing) refresh in a burst.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_config::net::{Host, Transport};
use sbc_config::{OutboundAuth, TrunkId};
use sip_codec::Message;
use trunks::register::{Env, Params, Registration, Status};

use crate::ids::{self, Rng, Side, Token};
use crate::leg::Peer;
use crate::routing::Routing;
use crate::shard::Ctx;
use crate::Event;

/// The slot of registration tokens: above every call slot (a shard holds fewer calls).
pub(crate) const REG_SLOT: u32 = (ids::MAX_SLOTS - 1) as u32;

/// Time between two registrations' first REGISTERs on one shard.
pub(crate) const STAGGER: Duration = Duration::from_millis(25);

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
    scheduled: Option<Instant>,
}

/// The registrations of one shard.
#[derive(Debug, Default)]
pub(crate) struct Agents {
    /// Indexed by generation - 1; an index is never reused, so a late response cannot reach
    /// a newer registration.
    regs: Vec<Option<Entry>>,
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
    contact.extend_from_slice(&routing.shared.contact_user(&t.name));
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
            regs: Vec::new(),
            dirty: true,
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
        let mut wanted: Vec<(Params, Key)> = Vec::new();
        if !draining {
            for (i, t) in routing.config.trunks.iter().enumerate() {
                if t.outbound.register.is_none()
                    || i % usize::from(shards.max(1)) != usize::from(ctx.shard)
                {
                    continue;
                }
                let Some((id, _)) = routing.config.trunk_by_name(&t.name) else {
                    continue;
                };
                match params(routing, ctx, id) {
                    Some(pk) => wanted.push(pk),
                    None => tracing::warn!(
                        trunk = %t.name,
                        "cannot register: registrar not resolved, or no listener for its transport and address family"
                    ),
                }
            }
        }
        for i in 0..self.regs.len() {
            let Some(e) = &mut self.regs[i] else { continue };
            let keep = !e.retiring
                && wanted
                    .iter()
                    .any(|(p, k)| *k == e.key && p.trunk == e.reg.params().trunk);
            if !keep && !e.retiring {
                e.retiring = true;
                e.reg.unregister(now);
                self.flush(i, now, ctx, wakeups);
            }
        }
        let mut k = 0u32;
        for (p, key) in wanted {
            let running = self
                .regs
                .iter()
                .flatten()
                .any(|e| !e.retiring && e.key == key && e.reg.params().trunk == p.trunk);
            if running {
                continue;
            }
            let index = self.regs.len();
            let t = token(ctx.shard, index);
            let mut call_id = Vec::with_capacity(40);
            ids::write_call_id(&mut call_id, t, ctx.rng.next_u64());
            let mut tag = Vec::with_capacity(32);
            ids::write_tag(&mut tag, t, Side::B, ctx.rng.next_u32());
            let start = now + STAGGER * k;
            k += 1;
            self.regs.push(Some(Entry {
                key,
                reg: Registration::new(p, start, call_id, tag),
                retiring: false,
                scheduled: None,
            }));
            self.flush(index, now, ctx, wakeups);
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
        self.flush(i, now, ctx, wakeups);
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
        self.flush(i, now, ctx, wakeups);
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
        self.flush(i, now, ctx, wakeups);
    }

    /// Sends what registration `i` queued, reports a changed status, schedules its timer,
    /// and forgets it once it is finished.
    fn flush(&mut self, i: usize, _now: Instant, ctx: &mut Ctx, wakeups: &mut Wakeups) {
        let Some(e) = self.regs.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let t = token(ctx.shard, i);
        while let Some(tx) = e.reg.poll_transmit() {
            let peer = Peer {
                addr: tx.dest,
                transport: tx.transport,
                conn: None,
            };
            ctx.send(Bytes::from(tx.data), peer, t.pack(e.reg.attempt()));
        }
        if e.reg.take_changed() {
            ctx.event(Event::Registration {
                trunk: e.reg.params().trunk.clone(),
                status: e.reg.status(),
            });
        }
        if e.reg.is_finished() {
            self.regs[i] = None;
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

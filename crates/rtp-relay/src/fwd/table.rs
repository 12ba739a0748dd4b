//! What a forwarding worker knows, whatever kernel interface moves its packets: the components
//! it runs, the route of each of its ports, the counters, and the control channels. Safe code;
//! the I/O loops ([`super::mmsg`], [`super::uring`]) call [`Table::forward`] per datagram.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::RelayStats;
use crate::control::{Command, ComponentId, Event};
use crate::session::{Component, Leg};
use crate::stats::Discard;

/// How often counters are published and idle components looked for.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// A component as a worker holds it.
struct Slot {
    id: ComponentId,
    comp: Component,
    ports: [u16; 2],
    idle: Option<Duration>,
    opened: Instant,
    idle_reported: bool,
}

/// One worker's forwarding table and counters.
pub(super) struct Table {
    /// This worker's index (its heartbeat).
    worker: usize,
    min: u16,
    /// By port offset: whether this worker owns the port.
    owned: Vec<bool>,
    /// By port offset: the component index and the leg the port faces.
    routes: Vec<Option<(usize, Leg)>>,
    comps: Vec<Option<Slot>>,
    free: Vec<usize>,
    commands: Receiver<Command>,
    events: SyncSender<Event>,
    stats: Arc<RelayStats>,
    forwarded: u64,
    bytes: u64,
    dropped: [u64; Discard::ALL.len()],
    last_housekeeping: Instant,
}

impl Table {
    /// A table for the ports `owned` (offsets from `min`) of a range of `span` ports.
    pub(super) fn new(
        worker: usize,
        min: u16,
        span: usize,
        owned: impl IntoIterator<Item = u16>,
        commands: Receiver<Command>,
        events: SyncSender<Event>,
        stats: Arc<RelayStats>,
    ) -> Self {
        let mut mine = vec![false; span];
        for port in owned {
            if let Some(m) = port
                .checked_sub(min)
                .and_then(|o| mine.get_mut(usize::from(o)))
            {
                *m = true;
            }
        }
        Self {
            worker,
            min,
            owned: mine,
            routes: vec![None; span],
            comps: Vec::new(),
            free: Vec::new(),
            commands,
            events,
            stats,
            forwarded: 0,
            bytes: 0,
            dropped: [0; Discard::ALL.len()],
            last_housekeeping: Instant::now(),
        }
    }

    /// The offset of `port` in the range, if this worker owns it.
    pub(super) fn offset(&self, port: u16) -> Option<usize> {
        let off = usize::from(port.checked_sub(self.min)?);
        self.owned.get(off).copied().unwrap_or(false).then_some(off)
    }

    /// Applies every queued command; false once the control plane is gone (stop).
    pub(super) fn apply_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(cmd) => self.apply(cmd),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => {
                    self.flush_stats();
                    return false;
                }
            }
        }
    }

    /// Once a second: publishes the counters and reports idle components.
    pub(super) fn housekeeping(&mut self, now: Instant) {
        if now.duration_since(self.last_housekeeping) < HOUSEKEEPING {
            return;
        }
        self.last_housekeeping = now;
        self.flush_stats();
        if let Some(beat) = self.stats.heartbeats.get(self.worker) {
            beat.fetch_add(1, Ordering::Relaxed);
        }
        for slot in self.comps.iter_mut().flatten() {
            let Some(limit) = slot.idle else { continue };
            let last = [Leg::A, Leg::B]
                .iter()
                .filter_map(|l| slot.comp.last_from(*l))
                .max()
                .unwrap_or(slot.opened);
            if !slot.idle_reported && now.duration_since(last) >= limit {
                slot.idle_reported = true;
                if self.events.try_send(Event::Idle { id: slot.id }).is_err() {
                    self.stats.events_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// A datagram `data` from `src` arrived at port offset `off`: the offset of the port to
    /// send it from (the other leg's) and where to, or why it is dropped (counted here).
    pub(super) fn forward(
        &mut self,
        now: Instant,
        off: usize,
        src: SocketAddr,
        data: &[u8],
    ) -> Result<(usize, SocketAddr), Discard> {
        let r = self.route(now, off, src, data);
        if let Err(why) = r {
            self.dropped[why.index()] += 1;
        }
        r
    }

    fn route(
        &mut self,
        now: Instant,
        off: usize,
        src: SocketAddr,
        data: &[u8],
    ) -> Result<(usize, SocketAddr), Discard> {
        // No component on the port: an ended call's stragglers, or a scanner.
        let (ci, leg) = self
            .routes
            .get(off)
            .copied()
            .flatten()
            .ok_or(Discard::NoSession)?;
        let slot = self
            .comps
            .get_mut(ci)
            .and_then(Option::as_mut)
            .ok_or(Discard::NoSession)?;
        let out_port = slot.ports[leg.other().index()];
        let dest = slot.comp.on_packet(now, leg, src, data)?;
        let out = self.offset(out_port).ok_or(Discard::NoSession)?;
        Ok((out, dest))
    }

    /// `n` datagrams of `bytes` in all left sbcd.
    pub(super) fn sent(&mut self, n: u64, bytes: u64) {
        self.forwarded += n;
        self.bytes += bytes;
    }

    /// `n` datagrams were dropped for `why` outside [`Table::forward`].
    pub(super) fn dropped(&mut self, why: Discard, n: u64) {
        self.dropped[why.index()] += n;
    }

    fn flush_stats(&mut self) {
        let s = &self.stats;
        s.forwarded
            .fetch_add(std::mem::take(&mut self.forwarded), Ordering::Relaxed);
        s.bytes
            .fetch_add(std::mem::take(&mut self.bytes), Ordering::Relaxed);
        for (total, n) in s.dropped_by.iter().zip(&mut self.dropped) {
            total.fetch_add(std::mem::take(n), Ordering::Relaxed);
        }
    }

    fn emit(&self, e: Event) {
        if self.events.try_send(e).is_err() {
            self.stats.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn apply(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Open {
                id,
                ports,
                a,
                b,
                idle,
            } => {
                let (Some(oa), Some(ob)) = (self.offset(ports[0]), self.offset(ports[1])) else {
                    return;
                };
                let slot = Slot {
                    id,
                    comp: Component::new(now, a, b),
                    ports,
                    idle,
                    opened: now,
                    idle_reported: false,
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.comps[i] = Some(slot);
                        i
                    }
                    None => {
                        self.comps.push(Some(slot));
                        self.comps.len() - 1
                    }
                };
                self.routes[oa] = Some((i, Leg::A));
                self.routes[ob] = Some((i, Leg::B));
                self.stats.components.fetch_add(1, Ordering::Relaxed);
            }
            Command::Update {
                id,
                leg,
                expected,
                policy,
                idle,
                ..
            } => {
                if let Some(slot) = self.comps.iter_mut().flatten().find(|s| s.id == id) {
                    slot.comp.set_expected(now, leg, expected, policy);
                    slot.idle = idle;
                    slot.idle_reported = false;
                    slot.opened = now;
                }
            }
            Command::Close { id, .. } => {
                let Some(i) = self
                    .comps
                    .iter()
                    .position(|s| s.as_ref().is_some_and(|s| s.id == id))
                else {
                    return;
                };
                let Some(slot) = self.comps[i].take() else {
                    return;
                };
                for p in slot.ports {
                    if let Some(off) = self.offset(p) {
                        self.routes[off] = None;
                    }
                }
                self.free.push(i);
                self.stats.components.fetch_sub(1, Ordering::Relaxed);
                self.emit(Event::Closed {
                    id,
                    from: [
                        slot.comp.received_from(Leg::A),
                        slot.comp.received_from(Leg::B),
                    ],
                });
            }
        }
    }
}

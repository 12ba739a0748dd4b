//! The data plane (feature `io`): forwarding threads that move RTP between the legs.
//!
//! Every port of `[media]` is bound once, at start, and belongs to one worker thread for good
//! (pair index modulo the number of workers), so a component's two ports (facing leg A and
//! facing leg B) must come from the same worker ([`Relay::worker_of`]). A worker owns its
//! sockets and components (`&mut`, no sharing): the forwarding table is its own vector indexed
//! by port, read without a lock. The control plane sends [`Command`]s over a bounded channel
//! and receives [`Event`]s over another; counters shared with the daemon are relaxed atomics,
//! flushed once a second.
//!
//! Per packet: no allocation, no lock, no log. Datagrams are read with `recvmmsg` into fixed
//! buffers, classified and latched ([`crate::session::Component`]), and sent from the other
//! leg's port with one `sendmmsg` per batch, from the same buffers (the payload is not touched).
//! A worker sleeps in `epoll_wait` for at most [`TICK`], then applies commands and checks for
//! idle components.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::control::{Command, ComponentId, Event};
use crate::session::{Component, Leg};
use crate::stats::Discard;

/// Datagrams read or written per system call.
pub const BATCH: usize = 32;
/// The largest datagram relayed (larger ones are truncated by the kernel and dropped).
pub const MAX_DATAGRAM: usize = 2048;
/// The longest a worker sleeps before it looks at commands and idle components.
pub const TICK: Duration = Duration::from_millis(10);
/// Commands queued per worker before `send` reports the queue full.
pub const COMMAND_QUEUE: usize = 4096;
/// Events queued for the control plane; beyond, events are dropped and counted.
pub const EVENT_QUEUE: usize = 4096;

/// How to start the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The address every media port binds.
    pub listen: IpAddr,
    /// First port (even).
    pub port_min: u16,
    /// Last port (odd).
    pub port_max: u16,
    /// Forwarding threads (at least one).
    pub workers: usize,
}

/// Counters the daemon exports, updated by the workers about once a second.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Packets forwarded (`sbc_rtp_packets_forwarded_total`).
    pub forwarded: AtomicU64,
    /// Their bytes, UDP payload (`sbc_rtp_bytes_forwarded_total`).
    pub bytes: AtomicU64,
    /// Packets dropped, by [`Discard::index`] (`sbc_rtp_packets_dropped_total{reason}`).
    pub dropped_by: [AtomicU64; Discard::ALL.len()],
    /// Components open (`sbc_rtp_sessions_active` counts calls' streams from it).
    pub components: AtomicU64,
    /// Events lost because the control plane did not read them in time.
    pub events_dropped: AtomicU64,
}

impl RelayStats {
    /// Packets dropped for `reason`.
    #[must_use]
    pub fn dropped(&self, reason: Discard) -> u64 {
        self.dropped_by[reason.index()].load(Ordering::Relaxed)
    }

    /// Packets dropped for any reason.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.dropped_by
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// The running data plane.
#[derive(Debug)]
pub struct Relay {
    min: u16,
    workers: Vec<(SyncSender<Command>, JoinHandle<()>)>,
    /// Shared counters.
    pub stats: Arc<RelayStats>,
    /// Ports that could not be bound (another program holds them): never hand them out.
    pub unavailable: Vec<u16>,
}

/// The workers' events, for one consumer.
#[derive(Debug)]
pub struct Events(Receiver<Event>);

impl Events {
    /// The next event, if any.
    pub fn poll(&self) -> Option<Event> {
        self.0.try_recv().ok()
    }

    /// Waits up to `timeout` for the next event.
    pub fn wait(&self, timeout: Duration) -> Option<Event> {
        self.0.recv_timeout(timeout).ok()
    }
}

/// Why a command was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The worker's queue is full (it is overloaded): the caller should fail the call.
    Full,
    /// The worker is gone (it panicked or the relay is shutting down).
    Gone,
    /// The port is not in the media range.
    NotOurs(u16),
}

impl Relay {
    /// Binds every port of the range and starts the workers; returns the control handle (it
    /// can be shared by every shard) and the event queue (read by one consumer).
    pub fn start(cfg: &RelayConfig) -> io::Result<(Self, Events)> {
        let workers_n = cfg.workers.max(1);
        let pairs = usize::from(cfg.port_max.saturating_sub(cfg.port_min)) / 2 + 1;
        let mut sockets: Vec<Vec<(u16, UdpSocket)>> = (0..workers_n).map(|_| Vec::new()).collect();
        let mut unavailable = Vec::new();
        for pair in 0..pairs {
            for port in [
                cfg.port_min + 2 * pair as u16,
                cfg.port_min + 2 * pair as u16 + 1,
            ] {
                match UdpSocket::bind(SocketAddr::new(cfg.listen, port)) {
                    Ok(s) => {
                        s.set_nonblocking(true)?;
                        sockets[pair % workers_n].push((port, s));
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => unavailable.push(port),
                    Err(e) => return Err(e),
                }
            }
        }
        let stats = Arc::new(RelayStats::default());
        let (event_tx, events) = mpsc::sync_channel(EVENT_QUEUE);
        let mut workers = Vec::with_capacity(workers_n);
        for (i, socks) in sockets.into_iter().enumerate() {
            let (tx, rx) = mpsc::sync_channel(COMMAND_QUEUE);
            let mut w = Worker::new(cfg, socks, rx, event_tx.clone(), Arc::clone(&stats))?;
            let handle = std::thread::Builder::new()
                .name(format!("sbcd-rtp-{i}"))
                .spawn(move || w.run())?;
            workers.push((tx, handle));
        }
        Ok((
            Self {
                min: cfg.port_min,
                workers,
                stats,
                unavailable,
            },
            Events(events),
        ))
    }

    /// The worker that owns `port`.
    #[must_use]
    pub fn worker_of(&self, port: u16) -> Option<usize> {
        let off = port.checked_sub(self.min)?;
        Some(usize::from(off / 2) % self.workers.len())
    }

    /// Hands a command to the worker of the component's ports.
    pub fn send(&self, cmd: Command) -> Result<(), SendError> {
        let port = cmd.port();
        let w = self.worker_of(port).ok_or(SendError::NotOurs(port))?;
        let (tx, _) = self.workers.get(w).ok_or(SendError::NotOurs(port))?;
        tx.try_send(cmd).map_err(|e| match e {
            TrySendError::Full(_) => SendError::Full,
            TrySendError::Disconnected(_) => SendError::Gone,
        })
    }

    /// Stops the workers (their command channels close) and waits for them.
    pub fn stop(self) {
        let Self { workers, .. } = self;
        let handles: Vec<JoinHandle<()>> = workers.into_iter().map(|(_, h)| h).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

/// A component as a worker holds it.
struct Slot {
    id: ComponentId,
    comp: Component,
    ports: [u16; 2],
    idle: Option<Duration>,
    opened: Instant,
    idle_reported: bool,
}

/// One forwarding thread.
struct Worker {
    min: u16,
    epoll: RawFd,
    /// By port offset: the socket (if this worker owns the port).
    sockets: Vec<Option<UdpSocket>>,
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
    bufs: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    batch: Batch,
}

/// The `mmsghdr`/`iovec`/address arrays of one receive and one send batch, allocated once.
struct Batch {
    rx_hdrs: [libc::mmsghdr; BATCH],
    rx_iov: [libc::iovec; BATCH],
    rx_addr: [libc::sockaddr_storage; BATCH],
    tx_hdrs: [libc::mmsghdr; BATCH],
    tx_iov: [libc::iovec; BATCH],
    tx_addr: [libc::sockaddr_storage; BATCH],
}

impl Batch {
    fn new() -> Self {
        // SAFETY: every field is a plain C struct (or array of them) for which all-zero bytes
        // are a valid value; pointers inside are set before each system call.
        unsafe { zeroed() }
    }
}

// SAFETY: the raw pointers in the headers are only meaningful during a system call: they are
// set, right before each `recvmmsg`/`sendmmsg`, to buffers of the same worker, which is owned
// by one thread at a time and not moved while it runs.
unsafe impl Send for Batch {}

impl Worker {
    fn new(
        cfg: &RelayConfig,
        socks: Vec<(u16, UdpSocket)>,
        commands: Receiver<Command>,
        events: SyncSender<Event>,
        stats: Arc<RelayStats>,
    ) -> io::Result<Self> {
        let span = usize::from(cfg.port_max - cfg.port_min) + 1;
        // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut sockets: Vec<Option<UdpSocket>> = (0..span).map(|_| None).collect();
        for (port, s) in socks {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: u64::from(port),
            };
            // SAFETY: `epoll` and the socket's descriptor are open; `ev` lives across the call.
            let rc = unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            sockets[usize::from(port - cfg.port_min)] = Some(s);
        }
        Ok(Self {
            min: cfg.port_min,
            epoll,
            sockets,
            routes: vec![None; span],
            comps: Vec::new(),
            free: Vec::new(),
            commands,
            events,
            stats,
            forwarded: 0,
            bytes: 0,
            dropped: [0; Discard::ALL.len()],
            bufs: Box::new([[0u8; MAX_DATAGRAM]; BATCH]),
            batch: Batch::new(),
        })
    }

    fn run(&mut self) {
        let mut events: [libc::epoll_event; 64] = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let mut last_flush = Instant::now();
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(cmd) => self.apply(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.flush_stats();
                        // SAFETY: the descriptor is ours and closed once.
                        unsafe { libc::close(self.epoll) };
                        return;
                    }
                }
            }
            // SAFETY: `events` has room for 64 entries; the descriptor is open.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll,
                    events.as_mut_ptr(),
                    events.len() as i32,
                    TICK.as_millis() as i32,
                )
            };
            for ev in events.iter().take(usize::try_from(n).unwrap_or(0)) {
                self.drain_port(ev.u64 as u16);
            }
            let now = Instant::now();
            if now.duration_since(last_flush) >= Duration::from_secs(1) {
                last_flush = now;
                self.flush_stats();
                self.check_idle(now);
            }
        }
    }

    fn flush_stats(&mut self) {
        self.stats
            .forwarded
            .fetch_add(std::mem::take(&mut self.forwarded), Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(std::mem::take(&mut self.bytes), Ordering::Relaxed);
        for (total, n) in self.stats.dropped_by.iter().zip(&mut self.dropped) {
            total.fetch_add(std::mem::take(n), Ordering::Relaxed);
        }
    }

    fn emit(&self, e: Event) {
        if self.events.try_send(e).is_err() {
            self.stats.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn check_idle(&mut self, now: Instant) {
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

    fn offset(&self, port: u16) -> Option<usize> {
        let off = usize::from(port.checked_sub(self.min)?);
        (off < self.sockets.len() && self.sockets[off].is_some()).then_some(off)
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

    /// Reads every datagram waiting on `port` and forwards what the component accepts.
    fn drain_port(&mut self, port: u16) {
        let Some(off) = self.offset(port) else { return };
        let Some(fd) = self.sockets[off].as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        loop {
            let n = self.recv_batch(fd);
            if n == 0 {
                return;
            }
            let now = Instant::now();
            let Some((ci, leg)) = self.routes[off] else {
                // No component on this port (an ended call's stragglers): dropped.
                self.dropped[Discard::NoSession.index()] += n as u64;
                continue;
            };
            let Some(slot) = self.comps[ci].as_mut() else {
                self.dropped[Discard::NoSession.index()] += n as u64;
                continue;
            };
            let out_port = slot.ports[leg.other().index()];
            let mut out = 0;
            for i in 0..n {
                let len = self.batch.rx_hdrs[i].msg_len as usize;
                let Some(src) = from_storage(&self.batch.rx_addr[i]) else {
                    self.dropped[Discard::Invalid.index()] += 1;
                    continue;
                };
                if len > MAX_DATAGRAM {
                    self.dropped[Discard::Invalid.index()] += 1;
                    continue;
                }
                match slot.comp.on_packet(now, leg, src, &self.bufs[i][..len]) {
                    Ok(dest) => {
                        let alen = to_storage(dest, &mut self.batch.tx_addr[out]);
                        self.batch.tx_iov[out] = libc::iovec {
                            iov_base: self.bufs[i].as_mut_ptr().cast(),
                            iov_len: len,
                        };
                        let h = &mut self.batch.tx_hdrs[out].msg_hdr;
                        h.msg_name = (&raw mut self.batch.tx_addr[out]).cast();
                        h.msg_namelen = alen;
                        h.msg_iov = &raw mut self.batch.tx_iov[out];
                        h.msg_iovlen = 1;
                        out += 1;
                    }
                    Err(why) => self.dropped[why.index()] += 1,
                }
            }
            if out > 0 {
                let out_fd = self
                    .offset(out_port)
                    .and_then(|o| self.sockets[o].as_ref().map(AsRawFd::as_raw_fd));
                match out_fd {
                    Some(ofd) => self.send_batch(ofd, out),
                    None => self.dropped[Discard::NoSession.index()] += out as u64,
                }
            }
            if n < BATCH {
                return;
            }
        }
    }

    /// `recvmmsg` into the receive buffers: how many datagrams arrived (0: none, or an error).
    fn recv_batch(&mut self, fd: RawFd) -> usize {
        for i in 0..BATCH {
            self.batch.rx_iov[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let h = &mut self.batch.rx_hdrs[i].msg_hdr;
            h.msg_name = (&raw mut self.batch.rx_addr[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut self.batch.rx_iov[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        // SAFETY: the headers point at BATCH iovecs over BATCH buffers of MAX_DATAGRAM bytes and
        // at BATCH sockaddr_storage, all owned by `self` and alive across the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.batch.rx_hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        usize::try_from(n).unwrap_or(0)
    }

    /// `sendmmsg` of the first `count` send headers, retried on a partial send.
    fn send_batch(&mut self, fd: RawFd, count: usize) {
        let mut sent = 0;
        while sent < count {
            // SAFETY: headers `sent..count` were filled by `drain_port` and point at live
            // buffers and addresses owned by `self`.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.batch.tx_hdrs[sent..].as_mut_ptr(),
                    (count - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                // EAGAIN (socket buffer full) or an error for the next datagram: it is lost,
                // like any UDP packet; skip it and go on.
                self.dropped[Discard::SendFailed.index()] += 1;
                sent += 1;
                continue;
            }
            let done = sent + n as usize;
            self.forwarded += n as u64;
            self.bytes += self.batch.tx_iov[sent..done]
                .iter()
                .map(|v| v.iov_len as u64)
                .sum::<u64>();
            sent = done;
        }
    }
}

/// The source address the kernel wrote.
fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` as a C socket address; returns its length.
fn to_storage(addr: SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let s: *mut libc::sockaddr_storage = s;
    match addr {
        SocketAddr::V4(a) => {
            let mut sin: libc::sockaddr_in = unzeroed();
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            unsafe { s.cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let mut sin6: libc::sockaddr_in6 = unzeroed();
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: as above.
            unsafe { s.cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// An all-zero C struct.
fn unzeroed<T: Copy>() -> T {
    // SAFETY: only used for plain C address structs, for which all-zero bytes are valid.
    unsafe { MaybeUninit::<T>::zeroed().assume_init() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_c_structs() {
        for a in [
            "192.0.2.7:4000",
            "[2001:db8::5]:6000",
            "[::ffff:10.0.0.1]:1",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            let mut s = unzeroed::<libc::sockaddr_storage>();
            to_storage(a, &mut s);
            assert_eq!(from_storage(&s), Some(a));
        }
    }
}

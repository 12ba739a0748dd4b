//! The data plane (feature `io`): forwarding threads that move RTP between the legs.
//!
//! Every port of `[media]` is bound once, at start, and belongs to one worker thread for good
//! (pair index modulo the number of workers), so a component's two ports (facing leg A and
//! facing leg B) must come from the same worker ([`Relay::worker_of`]). A worker owns its
//! sockets and components (`&mut`, no sharing): the forwarding table ([`table`]) is its own
//! vector indexed by port, read without a lock. The control plane sends [`Command`]s over a
//! bounded channel and receives [`Event`]s over another; counters shared with the daemon are
//! relaxed atomics, flushed once a second.
//!
//! Two kernel interfaces move the packets ([`Io`]): io_uring ([`uring`]: multishot receive
//! into a buffer ring shared with the kernel, sends from the same buffers, one system call per
//! pass) where the kernel allows it, else epoll with `recvmmsg`/`sendmmsg` batches ([`mmsg`]).
//! Per packet, either way: no allocation, no lock, no log, and the payload is not copied.
//! A worker waits at most [`TICK`], then applies commands and checks for idle components.

mod mmsg;
mod sys;
mod table;
mod uring;

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::control::{Command, Event};
use crate::stats::Discard;
use table::Table;

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
/// Binding ports in use is tried this many more times at start...
const BIND_RETRIES: u32 = 20;
/// ...this far apart.
const BIND_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Which kernel interface the workers use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Io {
    /// io_uring where the kernel has it and allows it (Linux 6.0+, not disabled by
    /// `kernel.io_uring_disabled` or a seccomp profile), else [`Io::Mmsg`].
    #[default]
    Auto,
    /// io_uring or nothing: start fails where it is unavailable.
    Uring,
    /// epoll and `recvmmsg`/`sendmmsg`.
    Mmsg,
}

/// The interface a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// io_uring.
    Uring,
    /// epoll and `recvmmsg`/`sendmmsg`.
    Mmsg,
}

impl Backend {
    /// For logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uring => "io_uring",
            Self::Mmsg => "recvmmsg",
        }
    }
}

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
    /// The kernel interface.
    pub io: Io,
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
    /// Per worker: housekeeping passes (about one a second while the worker runs). A value
    /// that stops moving means a stuck worker (the daemon's watchdog reads it).
    pub heartbeats: Vec<AtomicU64>,
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
    /// The interface the workers run.
    pub backend: Backend,
    /// Why io_uring is not used, when [`Io::Auto`] fell back to [`Backend::Mmsg`].
    pub uring_unavailable: Option<String>,
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
    /// Binds every port of the range and starts the workers (each sets up its kernel
    /// interface on its own thread and reports); returns the control handle (it can be shared
    /// by every shard) and the event queue (read by one consumer).
    pub fn start(cfg: &RelayConfig) -> io::Result<(Self, Events)> {
        let workers_n = cfg.workers.max(1);
        let span = usize::from(cfg.port_max.saturating_sub(cfg.port_min)) + 1;
        let pairs = span / 2;
        let mut sockets: Vec<Vec<(u16, UdpSocket)>> = (0..workers_n).map(|_| Vec::new()).collect();
        let mut unavailable: Vec<u16> = (0..pairs)
            .flat_map(|pair| {
                let rtp = cfg.port_min + 2 * pair as u16;
                [rtp, rtp + 1]
            })
            .collect();
        // Ports in use are tried again for a while: a previous sbcd that used io_uring hands
        // its sockets back a moment after it exits (the kernel tears its ring down).
        for attempt in 0..=BIND_RETRIES {
            if attempt > 0 {
                std::thread::sleep(BIND_RETRY_PAUSE);
            }
            let mut busy = Vec::new();
            for port in unavailable {
                match UdpSocket::bind(SocketAddr::new(cfg.listen, port)) {
                    Ok(s) => {
                        let pair = usize::from(port - cfg.port_min) / 2;
                        sockets[pair % workers_n].push((port, s));
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => busy.push(port),
                    Err(e) => return Err(e),
                }
            }
            unavailable = busy;
            if unavailable.is_empty() {
                break;
            }
        }
        let stats = Arc::new(RelayStats {
            heartbeats: (0..workers_n).map(|_| AtomicU64::new(0)).collect(),
            ..RelayStats::default()
        });
        let (event_tx, events) = mpsc::sync_channel(EVENT_QUEUE);
        let mut workers = Vec::with_capacity(workers_n);
        let mut ready = Vec::with_capacity(workers_n);
        for (i, socks) in sockets.into_iter().enumerate() {
            let (tx, rx) = mpsc::sync_channel(COMMAND_QUEUE);
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let owned: Vec<u16> = socks.iter().map(|(p, _)| *p).collect();
            let table = Table::new(
                i,
                cfg.port_min,
                span,
                owned,
                rx,
                event_tx.clone(),
                Arc::clone(&stats),
            );
            let (min, mode) = (cfg.port_min, cfg.io);
            let handle = std::thread::Builder::new()
                .name(format!("sbcd-rtp-{i}"))
                .spawn(move || run_worker(mode, min, span, socks, table, &ready_tx))?;
            workers.push((tx, handle));
            ready.push(ready_rx);
        }
        let mut backend = Backend::Uring;
        let mut uring_unavailable = None;
        for r in ready {
            match r.recv() {
                Ok(Ok((b, why))) => {
                    if b == Backend::Mmsg {
                        backend = Backend::Mmsg;
                    }
                    uring_unavailable = uring_unavailable.or(why);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("a media worker died at start")),
            }
        }
        Ok((
            Self {
                min: cfg.port_min,
                workers,
                stats,
                unavailable,
                backend,
                uring_unavailable,
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

/// What a worker reports once its interface is set up: which one (and why not io_uring).
type Ready = io::Result<(Backend, Option<String>)>;

/// A worker thread: sets up its kernel interface, reports, forwards until the control plane
/// goes away.
fn run_worker(
    mode: Io,
    min: u16,
    span: usize,
    sockets: Vec<(u16, UdpSocket)>,
    mut table: Table,
    ready: &SyncSender<Ready>,
) {
    let mut why_not = None;
    let sockets = if mode == Io::Mmsg {
        sockets
    } else {
        match uring::Uring::new(min, span, sockets) {
            Ok(mut u) => {
                let _ = ready.send(Ok((Backend::Uring, None)));
                u.run(&mut table);
                return;
            }
            Err(refused) if mode == Io::Uring => {
                let _ = ready.send(Err(refused.error));
                return;
            }
            Err(refused) => {
                why_not = Some(refused.error.to_string());
                refused.sockets
            }
        }
    };
    match mmsg::Mmsg::new(min, span, sockets) {
        Ok(mut m) => {
            let _ = ready.send(Ok((Backend::Mmsg, why_not)));
            m.run(&mut table);
        }
        Err(e) => {
            let _ = ready.send(Err(e));
        }
    }
}

//! SIP transports (RFC 3261 §18): UDP sockets, TCP and TLS listeners and connections, over IPv4
//! and IPv6. This is a thin tokio shell: it moves bytes and addresses, and knows nothing of SIP
//! beyond stream framing ([`sip_codec::frame`]) and CRLF keep-alives (RFC 5626 §4.4.1).
//!
//! Driving contract:
//! - [`Transports::bind`] binds every listener and starts the reader tasks. Each received
//!   message (a UDP datagram, or one framed message of a stream) is handed to the `sink`
//!   callback on the reader's task as an [`Inbound`]; the daemon dispatches it to a shard.
//! - [`Transports::send`] is synchronous and cheap: a UDP `try_send_to`, or a `try_send` into
//!   the connection's bounded queue. It never waits for the network on the caller's task. What
//!   fails later (connect, write, a full queue) comes back through the `errors` callback as a
//!   [`TransportError`] carrying the [`Outbound::token`] of the message.
//! - Every task stops when the `shutdown` watch turns `true` (or its sender is dropped).
//!
//! Streams: a response goes back on the connection its request came in on (RFC 3261 §18.2.2),
//! named by [`Inbound::conn`]; any message to an address with an open connection of the same
//! transport reuses it; otherwise a connection is opened (bounded by
//! [`TransportOptions::connect_timeout`]) and the message waits in its queue meanwhile.

mod tcp;
mod tls;
mod udp;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use sbc_config::net::{Listener, Transport};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info};

pub use tls::{client_config, load_server_config, TlsSetupError, DEFAULT_CA_FILE};

/// Names a flow sbcd received on: a UDP socket, or one TCP/TLS connection.
///
/// Put it in [`Outbound::conn`] to answer on the same flow: the same connection for a stream
/// (RFC 3261 §18.2.2), the same local socket for UDP (so the source address of the response is
/// the address the request was sent to). Ids are never reused within one [`Transports`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// The id as a number (the b2bua core, which knows no transport types, carries it so).
    #[must_use]
    pub fn raw(self) -> u64 {
        self.0
    }

    /// The inverse of [`raw`](Self::raw).
    #[must_use]
    pub fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
}

/// One received message: a UDP datagram, or one framed message of a TCP/TLS stream.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The message, exactly as received. It owns its own allocation (no receive buffer is
    /// pinned), so it may be kept.
    pub data: Bytes,
    /// The peer.
    pub source: SocketAddr,
    /// The local address it arrived on (the bound address for UDP, which may be unspecified).
    pub local: SocketAddr,
    /// How it arrived.
    pub transport: Transport,
    /// The flow it arrived on; always set. See [`ConnId`].
    pub conn: Option<ConnId>,
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The whole message.
    pub data: Bytes,
    /// Where to.
    pub dest: SocketAddr,
    /// How.
    pub transport: Transport,
    /// Send on this flow if it is still open and of the same transport (responses); otherwise
    /// on an open connection to `dest`, or a new one.
    pub conn: Option<ConnId>,
    /// The caller's reference, returned in a [`TransportError`] if sending fails.
    pub token: u64,
    /// TLS only: the name the server certificate must carry when a new connection is opened;
    /// `None` verifies the certificate against the IP address of `dest`.
    pub server_name: Option<Arc<str>>,
}

impl Outbound {
    /// A message to `dest` on a transport, on whatever flow fits.
    #[must_use]
    pub fn new(transport: Transport, dest: SocketAddr, data: Bytes, token: u64) -> Self {
        Self {
            data,
            dest,
            transport,
            conn: None,
            token,
            server_name: None,
        }
    }
}

/// A message that could not be sent (or, on a stream, may not have been delivered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("send {transport}:{dest} (token {token}): {kind}")]
pub struct TransportError {
    /// Where it was going.
    pub dest: SocketAddr,
    /// How.
    pub transport: Transport,
    /// [`Outbound::token`] of the message.
    pub token: u64,
    /// What went wrong.
    pub kind: TransportErrorKind,
}

/// What went wrong with a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No socket of this transport and address family was bound (UDP), or no TLS client
    /// configuration was given (TLS).
    #[error("no local socket for this transport and address family")]
    NoListener,
    /// The connection could not be opened: TCP connect, TLS handshake, or
    /// [`TransportOptions::connect_timeout`] (`TimedOut`).
    #[error("connect failed: {0}")]
    ConnectFailed(io::ErrorKind),
    /// The connection closed or failed before the message was written.
    #[error("connection lost")]
    ConnectionLost,
    /// The connection's send queue ([`TransportOptions::stream_queue_len`]) is full.
    #[error("send queue full")]
    QueueFull,
    /// Opening a connection would exceed [`TransportOptions::max_connections`].
    #[error("too many connections")]
    TooManyConnections,
    /// The socket refused the datagram.
    #[error("{0}")]
    Io(io::ErrorKind),
}

/// Tuning of the transports. `Default` suits a trunk-facing SBC.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// A stream connection with nothing read or written for this long is closed. 600 s.
    pub tcp_idle_timeout: Duration,
    /// Bound on opening an outbound connection (TCP connect plus TLS handshake), and on an
    /// inbound TLS handshake. 5 s.
    pub connect_timeout: Duration,
    /// Open TCP/TLS connections, inbound and outbound together. 10 000.
    pub max_connections: usize,
    /// Inbound TCP/TLS connections from one source address (trusted sources excepted, see
    /// `guard`). 64.
    pub max_connections_per_source: usize,
    /// A stream message must be complete this long after its first byte arrived, or the
    /// connection is closed (slow-loris). 10 s.
    pub message_timeout: Duration,
    /// Per-connection queue of messages waiting to be written. 256.
    pub stream_queue_len: usize,
    /// Size limits of one message on a stream; exceeding one closes the connection.
    pub limits: sip_codec::Limits,
    /// SO_RCVBUF of UDP sockets, best effort (the kernel caps it at net.core.rmem_max). 4 MiB.
    pub udp_recv_buffer: usize,
    /// SO_SNDBUF of UDP sockets, best effort. 4 MiB.
    pub udp_send_buffer: usize,
    /// Per-source limits and the block list (`[limits]`): checked by every reader before a
    /// message reaches a shard. None: no checks.
    pub guard: Option<Arc<trunks::guard::GuardShared>>,
}

/// Asks the reader's guard about a message from `source`; false: drop it. A source that just
/// went over its rate is logged (at most a few lines a second, whatever the number of
/// sources); messages of blocked sources are dropped silently (both are counted).
fn admitted(guard: &mut trunks::guard::Guard, source: SocketAddr, transport: Transport) -> bool {
    use trunks::guard::Verdict;
    let now = std::time::Instant::now();
    match guard.check(source.ip(), now) {
        Verdict::Pass => true,
        Verdict::Blocked => false,
        Verdict::RateLimited => {
            let shared = guard.shared();
            if shared.may_log(now) {
                tracing::warn!(
                    source = %source.ip(),
                    %transport,
                    block_secs = shared.block_duration().as_secs(),
                    "source over its message rate ([limits] source_requests_per_sec): blocked"
                );
            }
            false
        }
    }
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            tcp_idle_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(5),
            max_connections: 10_000,
            max_connections_per_source: 64,
            message_timeout: Duration::from_secs(10),
            stream_queue_len: 256,
            limits: sip_codec::Limits::default(),
            udp_recv_buffer: 4 << 20,
            udp_send_buffer: 4 << 20,
            guard: None,
        }
    }
}

/// TLS configuration of the transports; both halves are optional.
#[derive(Debug, Clone, Default)]
pub struct TlsSetup {
    /// Needed by `tls:` listeners ([`load_server_config`]).
    pub server: Option<Arc<rustls::ServerConfig>>,
    /// Needed to open outbound TLS connections ([`client_config`]).
    pub client: Option<Arc<rustls::ClientConfig>>,
}

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The socket calls failed: `bind udp:127.0.0.1:5060: Address already in use (os error 98)`.
    #[error("bind {listener}: {error}")]
    Io {
        /// The listener.
        listener: Listener,
        /// What the kernel said.
        error: io::Error,
    },
    /// A `tls:` listener without [`TlsSetup::server`].
    #[error("bind {listener}: a tls listener needs a certificate and key (sip.tls_cert_file, sip.tls_key_file)")]
    NoTlsServerConfig {
        /// The listener.
        listener: Listener,
    },
}

/// IPv4 or IPv6, to ask [`Transports::local_addr`] for the address of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl AddrFamily {
    /// The family of `addr`.
    #[must_use]
    pub fn of(addr: &SocketAddr) -> Self {
        if addr.is_ipv4() {
            Self::V4
        } else {
            Self::V6
        }
    }
}

/// Counters since [`Transports::bind`]; a snapshot from [`Transports::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// TCP/TLS connections open now (including outbound ones still connecting).
    pub connections_open: usize,
    /// Inbound TCP/TLS connections accepted (TLS: handshake done).
    pub connections_accepted: u64,
    /// Outbound TCP/TLS connections established.
    pub connections_opened: u64,
    /// Inbound connections closed at once because of [`TransportOptions::max_connections`]
    /// or [`TransportOptions::max_connections_per_source`].
    pub connections_refused: u64,
    /// Connections closed because a message did not complete within
    /// [`TransportOptions::message_timeout`].
    pub slow_message_closes: u64,
    /// Connections closed because the stream could not be framed (garbage, over the limits).
    pub framing_errors: u64,
    /// Connections closed by [`TransportOptions::tcp_idle_timeout`].
    pub idle_closes: u64,
    /// Double-CRLF pings answered with a CRLF pong.
    pub keepalives_answered: u64,
    /// UDP datagrams dropped because they were empty or only CRLF keep-alives.
    pub udp_keepalives_dropped: u64,
}

/// Called with every received message, on the reader task.
pub type InboundSink = Arc<dyn Fn(Inbound) + Send + Sync>;
/// Called with every send that failed, on whatever task found out.
pub type ErrorSink = Arc<dyn Fn(TransportError) + Send + Sync>;

/// The bound transports: a cheap, clonable handle. Tasks stop on the `shutdown` signal given
/// to [`Transports::bind`], not when the handles are dropped.
#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

impl fmt::Debug for Transports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transports")
            .field("bound", &self.inner.bound)
            .field("connections", &self.inner.conns.len())
            .finish_non_exhaustive()
    }
}

/// State shared by the handle and every task.
struct Inner {
    /// Fixed at bind: the send path reads it without a lock.
    udp: Vec<udp::UdpFlow>,
    bound: Vec<Listener>,
    /// Open (or opening) stream connections; touched on connect and close, read on send.
    conns: DashMap<ConnId, tcp::ConnHandle>,
    /// The connection to use for a peer address; the newest wins.
    by_peer: DashMap<(Transport, SocketAddr), ConnId>,
    /// Inbound connections open per source address (touched on accept and close).
    per_source: DashMap<std::net::IpAddr, usize>,
    tls_connector: Option<TlsConnector>,
    opts: TransportOptions,
    sink: InboundSink,
    errors: ErrorSink,
    shutdown: watch::Receiver<bool>,
    runtime: Handle,
    next_id: AtomicU64,
    /// UDP sends waiting for socket space in a spawned task (bounded).
    udp_pending: AtomicUsize,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    open: AtomicUsize,
    accepted: AtomicU64,
    opened: AtomicU64,
    refused: AtomicU64,
    framing_errors: AtomicU64,
    idle_closes: AtomicU64,
    slow_message_closes: AtomicU64,
    keepalives_answered: AtomicU64,
    udp_keepalives_dropped: AtomicU64,
}

impl Transports {
    /// Binds every listener (port 0 picks a free port) and starts their tasks.
    ///
    /// UDP sockets get [`TransportOptions::udp_recv_buffer`] / `udp_send_buffer`; IPv6 sockets
    /// are IPv6-only, so `udp:0.0.0.0:5060` and `udp:[::]:5060` can both be bound. Nothing is
    /// started unless every listener binds.
    pub async fn bind(
        listeners: &[Listener],
        tls: TlsSetup,
        opts: TransportOptions,
        sink: InboundSink,
        errors: ErrorSink,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, BindError> {
        let next_id = AtomicU64::new(1);
        let new_id = || ConnId(next_id.fetch_add(1, Ordering::Relaxed));
        let mut udp_flows = Vec::new();
        let mut stream_listeners = Vec::new();
        let mut bound = Vec::with_capacity(listeners.len());
        for &listener in listeners {
            let io_err = |error| BindError::Io { listener, error };
            let local = match listener.transport {
                Transport::Udp => {
                    let socket = udp::bind(listener.addr, &opts).map_err(io_err)?;
                    let local = socket.local_addr().map_err(io_err)?;
                    udp_flows.push(udp::UdpFlow {
                        id: new_id(),
                        local,
                        socket: Arc::new(socket),
                    });
                    local
                }
                Transport::Tcp | Transport::Tls => {
                    let acceptor = match (listener.transport, &tls.server) {
                        (Transport::Tls, Some(server)) => Some(TlsAcceptor::from(server.clone())),
                        (Transport::Tls, None) => {
                            return Err(BindError::NoTlsServerConfig { listener })
                        }
                        _ => None,
                    };
                    let socket = tcp::bind(listener.addr).map_err(io_err)?;
                    let local = socket.local_addr().map_err(io_err)?;
                    stream_listeners.push((socket, listener.transport, local, acceptor));
                    local
                }
            };
            bound.push(Listener {
                transport: listener.transport,
                addr: local,
            });
        }
        let inner = Arc::new(Inner {
            udp: udp_flows,
            bound,
            conns: DashMap::new(),
            by_peer: DashMap::new(),
            per_source: DashMap::new(),
            tls_connector: tls.client.map(TlsConnector::from),
            opts,
            sink,
            errors,
            shutdown,
            runtime: Handle::current(),
            next_id: AtomicU64::new(next_id.into_inner()),
            udp_pending: AtomicUsize::new(0),
            counters: Counters::default(),
        });
        for index in 0..inner.udp.len() {
            tokio::spawn(udp::receive_loop(inner.clone(), index));
        }
        for (socket, transport, local, acceptor) in stream_listeners {
            tokio::spawn(tcp::accept_loop(
                inner.clone(),
                socket,
                transport,
                local,
                acceptor,
            ));
        }
        for l in &inner.bound {
            info!(listener = %l, "SIP listener bound");
        }
        Ok(Self { inner })
    }

    /// Sends a message without waiting: see the module docs. Failures are reported through
    /// the `errors` callback with `out.token`, possibly before this returns.
    pub fn send(&self, out: Outbound) {
        match out.transport {
            Transport::Udp => udp::send(&self.inner, out),
            Transport::Tcp | Transport::Tls => tcp::send(&self.inner, out),
        }
    }

    /// The address of the first listener of this transport and family, port 0 resolved: what
    /// to write into Via and Contact.
    #[must_use]
    pub fn local_addr(&self, transport: Transport, family: AddrFamily) -> Option<SocketAddr> {
        self.inner
            .bound
            .iter()
            .find(|l| l.transport == transport && AddrFamily::of(&l.addr) == family)
            .map(|l| l.addr)
    }

    /// Every listener as bound, in the order given to [`Transports::bind`].
    #[must_use]
    pub fn bound(&self) -> &[Listener] {
        &self.inner.bound
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> TransportStats {
        let c = &self.inner.counters;
        TransportStats {
            connections_open: c.open.load(Ordering::Relaxed),
            connections_accepted: c.accepted.load(Ordering::Relaxed),
            connections_opened: c.opened.load(Ordering::Relaxed),
            connections_refused: c.refused.load(Ordering::Relaxed),
            framing_errors: c.framing_errors.load(Ordering::Relaxed),
            idle_closes: c.idle_closes.load(Ordering::Relaxed),
            slow_message_closes: c.slow_message_closes.load(Ordering::Relaxed),
            keepalives_answered: c.keepalives_answered.load(Ordering::Relaxed),
            udp_keepalives_dropped: c.udp_keepalives_dropped.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    fn new_id(&self) -> ConnId {
        ConnId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn report(&self, dest: SocketAddr, transport: Transport, token: u64, kind: TransportErrorKind) {
        debug!(%dest, %transport, token, error = %kind, "SIP send failed");
        (self.errors)(TransportError {
            dest,
            transport,
            token,
            kind,
        });
    }

    fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Completes when `rx` turns `true` or its sender is gone. Cancel safe (`watch::wait_for`).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// An IPv4-mapped IPv6 destination (`[::ffff:192.0.2.1]:5060`) as the IPv4 address it is, so it
/// goes out of an IPv4 socket (IPv6 sockets here are IPv6-only).
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The queue item of a stream connection: `token` is `None` for the transport's own writes
/// (keep-alive pongs), which report no error.
#[derive(Debug)]
struct Queued {
    data: Bytes,
    token: Option<u64>,
}

type QueueTx = mpsc::Sender<Queued>;

//! TCP and TLS: listeners, the connection table, and one connection task per connection,
//! generic over the stream, so TLS is TCP with a handshake in front.
//!
//! A connection is a reader (its own task: framing, keep-alives, the idle timer) and a writer
//! task draining a bounded queue with `write_all`. The table maps a [`ConnId`] and a peer
//! address to the queue; it is written when a connection opens or closes and only read on send.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use dashmap::mapref::entry::Entry;
use rustls::pki_types::ServerName;
use sbc_config::net::Transport;
use sip_codec::{Frame, Status};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, trace, warn};

use super::{
    canonical, stopped, ConnId, Inbound, Inner, Outbound, QueueTx, Queued, TransportErrorKind,
};

/// Read buffer growth step; also its initial size.
const READ_CHUNK: usize = 8 * 1024;
/// An empty read buffer larger than this (after a big message) is given back.
const SHRINK_ABOVE: usize = 64 * 1024;
/// How long a closing connection may take to write what is queued (peer closed its side) or
/// to send a TLS close_notify.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The RFC 5626 §4.4.1 pong.
const PONG: &[u8] = b"\r\n";

/// A connection in the table: where its writer's queue is.
pub(super) struct ConnHandle {
    pub(super) transport: Transport,
    pub(super) tx: QueueTx,
}

/// What a connection task knows about its connection.
#[derive(Debug, Clone, Copy)]
struct Flow {
    id: ConnId,
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
}

/// A listening socket: SO_REUSEADDR (restart while old connections are in TIME_WAIT),
/// IPv6-only for IPv6.
pub(super) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// One of [`super::TransportOptions::max_connections`], held by a connection task.
struct Slot(Arc<Inner>);

impl Slot {
    fn take(inner: &Arc<Inner>) -> Option<Self> {
        let open = &inner.counters.open;
        if open.fetch_add(1, Ordering::Relaxed) >= inner.opts.max_connections {
            open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Self(inner.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An inbound connection counted against its source address until dropped.
struct SourceSlot {
    inner: Arc<Inner>,
    ip: std::net::IpAddr,
}

impl SourceSlot {
    /// Counts a connection from `ip`; None when the source already has the maximum open
    /// (sources a trunk trusts are counted but never refused).
    fn take(inner: &Arc<Inner>, ip: std::net::IpAddr) -> Option<Self> {
        let trusted = inner.opts.guard.as_ref().is_some_and(|g| g.is_trusted(ip));
        let mut open = inner.per_source.entry(ip).or_insert(0);
        if *open >= inner.opts.max_connections_per_source && !trusted {
            return None;
        }
        *open += 1;
        drop(open);
        Some(Self {
            inner: Arc::clone(inner),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let per_source = &self.inner.per_source;
        if let Some(mut n) = per_source.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
        }
        per_source.remove_if(&self.ip, |_, n| *n == 0);
    }
}

/// Accepts connections until shutdown; each gets its own task.
pub(super) async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    transport: Transport,
    local: SocketAddr,
    acceptor: Option<TlsAcceptor>,
) {
    let mut shutdown = inner.shutdown.clone();
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stopped(&mut shutdown) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(10);
                accepted
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // Out of file descriptors or memory: wait for some to be freed.
                warn!(listener = %local, %transport, error = %e, "accept failed; backing off");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stopped(&mut shutdown) => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if let Some(g) = &inner.opts.guard {
            if g.blocks.is_blocked(peer.ip(), std::time::Instant::now()) {
                g.dropped_blocked.fetch_add(1, Ordering::Relaxed);
                trace!(%peer, %transport, "blocked source: connection closed");
                continue;
            }
        }
        let Some(source_slot) = SourceSlot::take(&inner, peer.ip()) else {
            inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            debug!(%peer, %transport, "per-source connection limit reached; closing the new connection");
            continue;
        };
        let Some(slot) = Slot::take(&inner) else {
            inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            debug!(%peer, %transport, "connection limit reached; closing the new connection");
            continue;
        };
        tokio::spawn(serve_inbound(
            inner.clone(),
            stream,
            peer,
            transport,
            acceptor.clone(),
            (slot, source_slot),
        ));
    }
    debug!(listener = %local, %transport, "accept loop stopped");
}

async fn serve_inbound(
    inner: Arc<Inner>,
    stream: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    acceptor: Option<TlsAcceptor>,
    _slots: (Slot, SourceSlot),
) {
    // Nagle would hold back a response behind an unacknowledged one.
    let _ = stream.set_nodelay(true);
    let local = match stream.local_addr() {
        Ok(local) => local,
        Err(e) => {
            debug!(%peer, error = %e, "accepted connection is already gone");
            return;
        }
    };
    let Some(acceptor) = acceptor else {
        let registered = Flow::register(&inner, transport, peer, local);
        serve(inner, stream, registered).await;
        return;
    };
    let mut shutdown = inner.shutdown.clone();
    let handshake = tokio::select! {
        r = tokio::time::timeout(inner.opts.connect_timeout, acceptor.accept(stream)) => r,
        () = stopped(&mut shutdown) => return,
    };
    match handshake {
        Ok(Ok(tls)) => {
            let registered = Flow::register(&inner, transport, peer, local);
            serve(inner, tls, registered).await;
        }
        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => debug!(%peer, "TLS handshake timed out"),
    }
}

impl Flow {
    /// Puts an accepted connection in the table; returns it with its queue.
    fn register(
        inner: &Inner,
        transport: Transport,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> (Self, QueueTx, mpsc::Receiver<Queued>) {
        inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let id = inner.new_id();
        let (tx, rx) = mpsc::channel(inner.opts.stream_queue_len.max(1));
        let handle = ConnHandle {
            transport,
            tx: tx.clone(),
        };
        inner.conns.insert(id, handle);
        inner.by_peer.insert((transport, peer), id);
        let flow = Self {
            id,
            transport,
            peer,
            local,
        };
        debug!(conn = ?id, %peer, %transport, "connection accepted");
        (flow, tx, rx)
    }
}

/// Takes a connection out of the table, so no new message is queued on it.
fn unregister(inner: &Inner, id: ConnId, transport: Transport, peer: SocketAddr) {
    inner.conns.remove(&id);
    inner.by_peer.remove_if(&(transport, peer), |_, v| *v == id);
}

/// Queues a message on a TCP/TLS connection: the one `out.conn` names, else the one open to
/// `out.dest`, else a new one.
pub(super) fn send(inner: &Arc<Inner>, out: Outbound) {
    let Outbound {
        data,
        dest,
        transport,
        conn,
        token,
        server_name,
    } = out;
    let dest = canonical(dest);
    let mut item = Queued {
        data,
        token: Some(token),
    };
    let report = |kind| inner.report(dest, transport, token, kind);
    if let Some(id) = conn {
        // The guard is dropped before any callback runs.
        let queued = match inner.conns.get(&id) {
            Some(h) if h.transport == transport => h.tx.try_send(item),
            _ => Err(TrySendError::Closed(item)),
        };
        match queued {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => return report(TransportErrorKind::QueueFull),
            // Closed meanwhile: RFC 3261 §18.2.2 says to try the address, then a new connection.
            Err(TrySendError::Closed(back)) => item = back,
        }
    }
    if transport == Transport::Tls && inner.tls_connector.is_none() {
        return report(TransportErrorKind::NoListener);
    }
    let key = (transport, dest);
    // Twice at most: a connection found in the table may close before the message is queued.
    for _ in 0..2 {
        let id = match inner.by_peer.entry(key) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                // Registered before connecting, so that messages sent meanwhile wait in its
                // queue instead of opening more connections.
                if inner.is_shutting_down() {
                    drop(e);
                    return report(TransportErrorKind::ConnectionLost);
                }
                let Some(slot) = Slot::take(inner) else {
                    drop(e);
                    return report(TransportErrorKind::TooManyConnections);
                };
                let id = inner.new_id();
                let (tx, rx) = mpsc::channel(inner.opts.stream_queue_len.max(1));
                // A new queue with room for at least one message: this cannot fail.
                let first = tx.try_send(item);
                debug_assert!(first.is_ok(), "a new queue refused its first message");
                let handle = ConnHandle {
                    transport,
                    tx: tx.clone(),
                };
                inner.conns.insert(id, handle);
                e.insert(id);
                let target = Target {
                    id,
                    transport,
                    dest,
                    server_name,
                };
                inner
                    .runtime
                    .spawn(connect(inner.clone(), target, tx, rx, slot));
                return;
            }
        };
        let queued = match inner.conns.get(&id) {
            Some(h) => h.tx.try_send(item),
            None => Err(TrySendError::Closed(item)),
        };
        match queued {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => return report(TransportErrorKind::QueueFull),
            Err(TrySendError::Closed(back)) => {
                item = back;
                inner.by_peer.remove_if(&key, |_, v| *v == id);
            }
        }
    }
    report(TransportErrorKind::ConnectionLost);
}

/// An outbound connection to open.
struct Target {
    id: ConnId,
    transport: Transport,
    dest: SocketAddr,
    server_name: Option<Arc<str>>,
}

/// Opens an outbound connection (already in the table) and serves it; if it cannot be
/// opened, every message queued on it is reported failed.
async fn connect(
    inner: Arc<Inner>,
    target: Target,
    tx: QueueTx,
    mut rx: mpsc::Receiver<Queued>,
    _slot: Slot,
) {
    let Target {
        id,
        transport,
        dest,
        ..
    } = target;
    let mut shutdown = inner.shutdown.clone();
    let opened = tokio::select! {
        r = tokio::time::timeout(inner.opts.connect_timeout, open(&inner, &target)) => match r {
            Ok(opened) => opened.map_err(|e| {
                debug!(%dest, %transport, error = %e, "connect failed");
                TransportErrorKind::ConnectFailed(e.kind())
            }),
            Err(_) => {
                debug!(%dest, %transport, "connect timed out");
                Err(TransportErrorKind::ConnectFailed(io::ErrorKind::TimedOut))
            }
        },
        () = stopped(&mut shutdown) => Err(TransportErrorKind::ConnectionLost),
    };
    let stream = match opened {
        Ok(stream) => stream,
        Err(kind) => {
            unregister(&inner, id, transport, dest);
            drop(tx);
            rx.close();
            while let Ok(item) = rx.try_recv() {
                if let Some(token) = item.token {
                    inner.report(dest, transport, token, kind);
                }
            }
            return;
        }
    };
    inner.counters.opened.fetch_add(1, Ordering::Relaxed);
    let flow = |local| Flow {
        id,
        transport,
        peer: dest,
        local,
    };
    debug!(conn = ?id, %dest, %transport, "connection opened");
    match stream {
        Opened::Tcp(s, local) => serve(inner, s, (flow(local), tx, rx)).await,
        Opened::Tls(s, local) => serve(inner, *s, (flow(local), tx, rx)).await,
    }
}

enum Opened {
    Tcp(TcpStream, SocketAddr),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, SocketAddr),
}

async fn open(inner: &Inner, target: &Target) -> io::Result<Opened> {
    let tcp = TcpStream::connect(target.dest).await?;
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr()?;
    if target.transport != Transport::Tls {
        return Ok(Opened::Tcp(tcp, local));
    }
    let Some(connector) = &inner.tls_connector else {
        return Err(io::Error::other("no TLS client configuration"));
    };
    let name = match &target.server_name {
        Some(name) => ServerName::try_from(name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        None => ServerName::IpAddress(target.dest.ip().into()),
    };
    let tls = connector.connect(name, tcp).await?;
    Ok(Opened::Tls(Box::new(tls), local))
}

/// Why a connection's reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// The peer closed its side.
    Eof,
    /// Reading failed.
    Read(io::ErrorKind),
    /// The stream could not be framed.
    Framing,
    /// Nothing read or written for the idle timeout.
    Idle,
    /// The transports are shutting down.
    Shutdown,
    /// The writer stopped (a write failed).
    Writer,
    /// The source went over its message rate, or is blocked (`[limits]`).
    Blocked,
    /// A message did not complete within the message timeout (slow-loris).
    SlowMessage,
}

/// When the connection last read or wrote, shared by its reader and writer.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Runs a connection until it closes, then takes it out of the table.
async fn serve<S>(
    inner: Arc<Inner>,
    stream: S,
    (flow, tx, rx): (Flow, QueueTx, mpsc::Receiver<Queued>),
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let activity = Arc::new(Activity::new());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let mut writer_task = tokio::spawn(write_loop(
        inner.clone(),
        writer,
        rx,
        stop_rx,
        activity.clone(),
        flow,
    ));
    // `tx` lives in the reader for the pongs; it is dropped when the reader returns.
    let close = read_loop(&inner, &mut reader, flow, &activity, tx, &mut writer_task).await;
    unregister(&inner, flow.id, flow.transport, flow.peer);
    let mut writer_done = close == Close::Writer;
    if close == Close::Eof {
        // The peer may have closed only its sending side: let what is queued out.
        writer_done = tokio::time::timeout(CLOSE_GRACE, &mut writer_task)
            .await
            .is_ok();
    }
    drop(stop_tx);
    if !writer_done {
        let _ = writer_task.await;
    }
    debug!(conn = ?flow.id, peer = %flow.peer, transport = %flow.transport, reason = ?close, "connection closed");
}

/// Reads and frames the stream, handing each message to the sink, until the connection ends.
async fn read_loop<R>(
    inner: &Inner,
    reader: &mut R,
    flow: Flow,
    activity: &Activity,
    pong: QueueTx,
    writer_task: &mut JoinHandle<()>,
) -> Close
where
    R: AsyncRead + Unpin,
{
    let limits = inner.opts.limits;
    let max_buffered = limits
        .max_header_bytes
        .saturating_add(limits.max_body_bytes);
    let idle = inner.opts.tcp_idle_timeout;
    let message_timeout = inner.opts.message_timeout;
    // When the first byte of the message still incomplete in `buf` arrived.
    let mut partial_since: Option<Instant> = None;
    let mut shutdown = inner.shutdown.clone();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut guard = inner.opts.guard.clone().map(trunks::guard::Guard::new);
    // Reset only when it fires, from the activity clock: no timer work per message.
    let sleep = tokio::time::sleep_until(activity.last() + idle);
    tokio::pin!(sleep);
    loop {
        // Every complete message in the buffer first.
        loop {
            match sip_codec::frame(&buf, &limits) {
                Ok(Status::Complete(Frame::Message { len })) => {
                    if let Some(g) = guard.as_mut() {
                        if !super::admitted(g, flow.peer, flow.transport) {
                            // A blocked source's connection is closed, not just ignored.
                            return Close::Blocked;
                        }
                    }
                    trace!(conn = ?flow.id, peer = %flow.peer, len, "stream message");
                    (inner.sink)(Inbound {
                        data: Bytes::copy_from_slice(&buf[..len]),
                        source: flow.peer,
                        local: flow.local,
                        transport: flow.transport,
                        conn: Some(flow.id),
                    });
                    buf.advance(len);
                }
                Ok(Status::Complete(Frame::KeepAlive { len })) => {
                    // A lone CRLF at the end may be the first half of a ping: wait for more.
                    if len < 4 && matches!(&buf[len..], b"" | b"\r") {
                        break;
                    }
                    if len >= 4 {
                        // RFC 5626 §4.4.1: a double CRLF ping gets a single CRLF pong.
                        let sent = pong.try_send(Queued {
                            data: Bytes::from_static(PONG),
                            token: None,
                        });
                        if sent.is_ok() {
                            inner
                                .counters
                                .keepalives_answered
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    buf.advance(len);
                }
                Ok(Status::Partial) => break,
                Err(error) => {
                    inner
                        .counters
                        .framing_errors
                        .fetch_add(1, Ordering::Relaxed);
                    debug!(conn = ?flow.id, peer = %flow.peer, %error, "unframeable stream; closing the connection");
                    return Close::Framing;
                }
            }
        }
        if buf.len() > max_buffered {
            // frame() errs before this can happen; kept so the bound does not rest on it alone.
            inner
                .counters
                .framing_errors
                .fetch_add(1, Ordering::Relaxed);
            return Close::Framing;
        }
        if buf.is_empty() && buf.capacity() > SHRINK_ABOVE {
            buf = BytesMut::with_capacity(READ_CHUNK);
        }
        // Bytes left over are an incomplete message: it gets message_timeout from its first
        // byte, however slowly the rest trickles in.
        partial_since = if buf.len() < 4 && buf.iter().all(|&b| b == b'\r' || b == b'\n') {
            None
        } else {
            partial_since.or_else(|| Some(Instant::now()))
        };
        let message_deadline = partial_since.map(|t| t + message_timeout);
        buf.reserve(READ_CHUNK);
        tokio::select! {
            r = reader.read_buf(&mut buf) => match r {
                Ok(0) => return Close::Eof,
                Ok(_) => activity.touch(),
                Err(e) => {
                    debug!(conn = ?flow.id, peer = %flow.peer, error = %e, "read failed");
                    return Close::Read(e.kind());
                }
            },
            () = &mut sleep => {
                let deadline = activity.last() + idle;
                if deadline <= Instant::now() {
                    inner.counters.idle_closes.fetch_add(1, Ordering::Relaxed);
                    return Close::Idle;
                }
                sleep.as_mut().reset(deadline);
            }
            () = async {
                match message_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                inner.counters.slow_message_closes.fetch_add(1, Ordering::Relaxed);
                debug!(conn = ?flow.id, peer = %flow.peer, buffered = buf.len(), "message incomplete after the message timeout; closing the connection");
                return Close::SlowMessage;
            }
            () = stopped(&mut shutdown) => return Close::Shutdown,
            _ = &mut *writer_task => return Close::Writer,
        }
    }
}

/// Writes queued messages until the queue ends (the connection left the table and the reader
/// returned) or `stop` fires; whatever is left is reported lost.
async fn write_loop<W>(
    inner: Arc<Inner>,
    mut writer: W,
    mut rx: mpsc::Receiver<Queued>,
    mut stop: oneshot::Receiver<()>,
    activity: Arc<Activity>,
    flow: Flow,
) where
    W: AsyncWrite + Unpin,
{
    let lost = |item: &Queued| {
        if let Some(token) = item.token {
            let kind = TransportErrorKind::ConnectionLost;
            inner.report(flow.peer, flow.transport, token, kind);
        }
    };
    // `stop` is polled until it first completes, never after.
    let mut clean = true;
    loop {
        let item = tokio::select! {
            biased;
            _ = &mut stop => {
                clean = false;
                break;
            }
            item = rx.recv() => match item {
                Some(item) => item,
                None => break,
            },
        };
        // Flush (TLS records) once the queue is drained, not after each message of a burst.
        let flush = rx.is_empty();
        let written = tokio::select! {
            r = write_one(&mut writer, &item.data, flush) => r,
            _ = &mut stop => Err(io::ErrorKind::ConnectionAborted.into()),
        };
        match written {
            Ok(()) => {
                trace!(conn = ?flow.id, len = item.data.len(), "stream message written");
                activity.touch();
            }
            Err(e) => {
                debug!(conn = ?flow.id, peer = %flow.peer, error = %e, "write failed");
                lost(&item);
                clean = false;
                break;
            }
        }
    }
    rx.close();
    while let Ok(item) = rx.try_recv() {
        lost(&item);
    }
    if clean {
        // FIN, after a TLS close_notify.
        let _ = tokio::time::timeout(CLOSE_GRACE, writer.shutdown()).await;
    }
}

async fn write_one<W: AsyncWrite + Unpin>(
    writer: &mut W,
    data: &[u8],
    flush: bool,
) -> io::Result<()> {
    writer.write_all(data).await?;
    if flush {
        writer.flush().await?;
    }
    Ok(())
}

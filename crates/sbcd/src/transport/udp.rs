//! UDP: one socket per listener and one receive task per socket. Sending is a `try_send_to` on
//! the caller's task, without a lock; only when the socket buffer is full does a spawned task
//! wait for room.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sbc_config::net::Transport;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::{debug, info, trace, warn};

use super::{canonical, stopped, ConnId, Inbound, Inner, Outbound, TransportErrorKind};

/// Receive buffer size: above the largest UDP payload (65 527 bytes over IPv6), so no datagram
/// is ever truncated.
const MAX_DATAGRAM: usize = 65_535;
/// Sends parked in tasks while socket buffers are full; past this, sends fail with
/// `WouldBlock` instead of piling up.
const MAX_PENDING_SENDS: usize = 4096;

/// One bound UDP socket.
pub(super) struct UdpFlow {
    pub(super) id: ConnId,
    pub(super) local: SocketAddr,
    pub(super) socket: Arc<UdpSocket>,
}

/// A UDP socket bound to `addr`, IPv6-only for IPv6, with the configured buffer sizes.
///
/// No SO_REUSEADDR: on Linux it would let a second process bind the same UDP port and silently
/// take its datagrams, and UDP has no TIME_WAIT for it to help with.
pub(super) fn bind(addr: SocketAddr, opts: &super::TransportOptions) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Err(error) = socket.set_recv_buffer_size(opts.udp_recv_buffer) {
        warn!(%addr, %error, size = opts.udp_recv_buffer, "cannot set the UDP receive buffer size");
    }
    if let Err(error) = socket.set_send_buffer_size(opts.udp_send_buffer) {
        warn!(%addr, %error, size = opts.udp_send_buffer, "cannot set the UDP send buffer size");
    }
    // Linux caps the sizes at net.core.rmem_max / wmem_max without an error (and reports
    // twice the size granted): say so once, a capped buffer drops datagrams under load.
    let granted = (socket.recv_buffer_size()?, socket.send_buffer_size()?);
    if granted.0 < opts.udp_recv_buffer || granted.1 < opts.udp_send_buffer {
        info!(
            %addr,
            recv_buffer = granted.0,
            send_buffer = granted.1,
            asked = opts.udp_recv_buffer,
            "UDP socket buffers capped by the kernel (net.core.rmem_max, net.core.wmem_max)"
        );
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Receives datagrams on `inner.udp[index]` until shutdown. Each non-empty datagram that is not
/// a CRLF keep-alive is copied into its own `Bytes` and handed to the sink.
pub(super) async fn receive_loop(inner: Arc<Inner>, index: usize) {
    let flow = &inner.udp[index];
    let mut shutdown = inner.shutdown.clone();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    // This reader's own rate table (no lock); the block list is shared.
    let mut guard = inner.opts.guard.clone().map(trunks::guard::Guard::new);
    loop {
        let received = tokio::select! {
            r = flow.socket.recv_from(&mut buf) => r,
            () = stopped(&mut shutdown) => break,
        };
        match received {
            Ok((len, source)) => {
                let datagram = &buf[..len];
                // Empty datagrams and CRLF keep-alives: nothing to answer on UDP (RFC 5626 uses
                // STUN there), nothing for the shards.
                if datagram.iter().all(|&b| b == b'\r' || b == b'\n') {
                    inner
                        .counters
                        .udp_keepalives_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if let Some(g) = guard.as_mut() {
                    if !super::admitted(g, source, Transport::Udp) {
                        continue;
                    }
                }
                trace!(%source, local = %flow.local, len, "udp datagram");
                (inner.sink)(Inbound {
                    data: Bytes::copy_from_slice(datagram),
                    source,
                    local: flow.local,
                    transport: Transport::Udp,
                    conn: Some(flow.id),
                });
            }
            // ICMP errors of earlier sends surface here on some systems: not this socket's fault.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) =>
            {
                debug!(local = %flow.local, error = %e, "udp receive");
            }
            Err(e) => {
                // Unexpected: back off a little so a persistent error cannot spin a core.
                warn!(local = %flow.local, error = %e, "udp receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    debug!(local = %flow.local, "udp receive loop stopped");
}

/// Sends one datagram: from the socket `out.conn` names if it fits the destination's family,
/// else from the first socket of that family.
pub(super) fn send(inner: &Arc<Inner>, out: Outbound) {
    let dest = canonical(out.dest);
    let fits = |f: &&UdpFlow| f.local.is_ipv4() == dest.is_ipv4();
    let flow = out
        .conn
        .and_then(|id| inner.udp.iter().filter(fits).find(|f| f.id == id))
        .or_else(|| inner.udp.iter().find(fits));
    let Some(flow) = flow else {
        inner.report(
            out.dest,
            Transport::Udp,
            out.token,
            TransportErrorKind::NoListener,
        );
        return;
    };
    match flow.socket.try_send_to(&out.data, dest) {
        Ok(_) => trace!(%dest, len = out.data.len(), "udp sent"),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => send_later(inner, flow, out, dest),
        Err(e) => inner.report(
            out.dest,
            Transport::Udp,
            out.token,
            TransportErrorKind::Io(e.kind()),
        ),
    }
}

/// The socket buffer is full: wait for room in a task, up to [`MAX_PENDING_SENDS`] at once.
fn send_later(inner: &Arc<Inner>, flow: &UdpFlow, out: Outbound, dest: SocketAddr) {
    if inner.udp_pending.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_SENDS {
        inner.udp_pending.fetch_sub(1, Ordering::Relaxed);
        let kind = TransportErrorKind::Io(io::ErrorKind::WouldBlock);
        inner.report(out.dest, Transport::Udp, out.token, kind);
        return;
    }
    let socket = flow.socket.clone();
    let task_inner = inner.clone();
    inner.runtime.spawn(async move {
        let sent = tokio::time::timeout(Duration::from_secs(1), socket.send_to(&out.data, dest));
        let kind = match sent.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(TransportErrorKind::Io(e.kind())),
            Err(_) => Some(TransportErrorKind::Io(io::ErrorKind::TimedOut)),
        };
        task_inner.udp_pending.fetch_sub(1, Ordering::Relaxed);
        if let Some(kind) = kind {
            task_inner.report(out.dest, Transport::Udp, out.token, kind);
        }
    });
}

//! The portable forwarding loop: `epoll_wait`, then per readable port one `recvmmsg` into
//! fixed buffers and one `sendmmsg` out of the other leg's port, from the same buffers (the
//! payload is not touched). Level-triggered: a port with more than a batch waiting is read
//! again on the next pass, so one busy stream cannot starve the others.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use super::sys::{from_storage, to_storage};
use super::table::Table;
use super::{BATCH, MAX_DATAGRAM, TICK};
use crate::stats::Discard;

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

/// One worker's epoll set, sockets and batch buffers.
pub(super) struct Mmsg {
    epoll: RawFd,
    /// By port offset: the socket's descriptor (-1: not this worker's port).
    fds: Vec<RawFd>,
    /// Keeps the sockets open.
    _sockets: Vec<UdpSocket>,
    bufs: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    batch: Box<Batch>,
}

impl Drop for Mmsg {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.epoll) };
    }
}

impl Mmsg {
    /// Registers `sockets` (port, socket) with a new epoll set; `span` ports in the range.
    pub(super) fn new(min: u16, span: usize, sockets: Vec<(u16, UdpSocket)>) -> io::Result<Self> {
        // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut me = Self {
            epoll,
            fds: vec![-1; span],
            _sockets: Vec::with_capacity(sockets.len()),
            bufs: Box::new([[0u8; MAX_DATAGRAM]; BATCH]),
            batch: Box::new(Batch::new()),
        };
        for (port, s) in sockets {
            s.set_nonblocking(true)?;
            let off = usize::from(port - min);
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: off as u64,
            };
            // SAFETY: `epoll` and the socket's descriptor are open; `ev` lives across the call.
            let rc = unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            me.fds[off] = s.as_raw_fd();
            me._sockets.push(s);
        }
        Ok(me)
    }

    /// Forwards until the control plane goes away.
    pub(super) fn run(&mut self, table: &mut Table) {
        let mut events: [libc::epoll_event; 64] = [libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            // SAFETY: `events` has room for 64 entries; the descriptor is open.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll,
                    events.as_mut_ptr(),
                    events.len() as i32,
                    TICK.as_millis() as i32,
                )
            };
            // Commands first: a command sent before a packet arrived applies to it.
            if !table.apply_commands() {
                return;
            }
            for ev in events.iter().take(usize::try_from(n).unwrap_or(0)) {
                self.read_port(table, ev.u64 as usize);
            }
            table.housekeeping(Instant::now());
        }
    }

    /// Reads one batch waiting on port offset `off` and forwards what the table accepts.
    fn read_port(&mut self, table: &mut Table, off: usize) {
        let Some(&fd) = self.fds.get(off).filter(|fd| **fd >= 0) else {
            return;
        };
        let n = self.recv_batch(fd);
        if n == 0 {
            return;
        }
        let now = Instant::now();
        // Every datagram of the batch came to one port, so the accepted ones leave by one.
        let mut out_fd = -1;
        let mut out = 0;
        for i in 0..n {
            let len = self.batch.rx_hdrs[i].msg_len as usize;
            let Some(src) = from_storage(&self.batch.rx_addr[i]) else {
                table.dropped(Discard::Invalid, 1);
                continue;
            };
            // Larger than the buffer: the kernel cut it (MSG_TRUNC).
            if len > MAX_DATAGRAM || self.batch.rx_hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
            {
                table.dropped(Discard::Invalid, 1);
                continue;
            }
            let Ok((out_off, dest)) = table.forward(now, off, src, &self.bufs[i][..len]) else {
                continue;
            };
            let ofd = self.fds[out_off];
            if ofd != out_fd && out > 0 {
                self.send_batch(table, out_fd, out);
                out = 0;
            }
            out_fd = ofd;
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
        if out > 0 {
            self.send_batch(table, out_fd, out);
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
    fn send_batch(&mut self, table: &mut Table, fd: RawFd, count: usize) {
        let mut sent = 0;
        while sent < count {
            // SAFETY: headers `sent..count` were filled by `read_port` and point at live
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
                table.dropped(Discard::SendFailed, 1);
                sent += 1;
                continue;
            }
            let done = sent + n as usize;
            let bytes = self.batch.tx_iov[sent..done]
                .iter()
                .map(|v| v.iov_len as u64)
                .sum::<u64>();
            table.sent(n as u64, bytes);
            sent = done;
        }
    }
}

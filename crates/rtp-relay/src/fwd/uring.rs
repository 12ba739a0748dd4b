//! The io_uring forwarding loop (Linux 6.0 and later): one multishot `recvmsg` per port picks
//! its buffer from a ring of buffers shared with the kernel, and each accepted datagram leaves
//! by a `send` with a destination address out of the other leg's port, straight from the buffer
//! it arrived in, which returns to the ring when the send completes. One `io_uring_enter` per
//! pass submits the sends and collects every completion, so a packet costs no system call of
//! its own, where [`super::mmsg`] pays a `recvmmsg` and a `sendmmsg` per wake-up of a port (at
//! 12.5 packets/s per port, a batch holds about one datagram).
//!
//! The ring is created on the worker thread (single issuer, deferred task running), its
//! sockets stay blocking (io_uring waits for readiness itself), and at stop every request is
//! cancelled synchronously before the buffers go.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use io_uring::types::{BufRingEntry, CancelBuilder, Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring, SubmissionQueue, Submitter};

use super::sys::{from_name, to_storage, unzeroed};
use super::table::Table;
use super::{MAX_DATAGRAM, TICK};
use crate::stats::Discard;

/// Buffers shared with the kernel (a power of two, at most 32768): datagrams received and not
/// yet sent.
const NBUF: u16 = 4096;
/// One buffer: the kernel's `io_uring_recvmsg_out` header (16 bytes), the source address
/// (`sockaddr_in6`, 28 bytes) and a datagram of up to [`MAX_DATAGRAM`] bytes.
const BUF_SIZE: usize = MAX_DATAGRAM + 64;
/// The buffer group of the receive requests.
const BGID: u16 = 0;
const SQ_ENTRIES: u32 = 4096;
const CQ_ENTRIES: u32 = 16384;
/// `user_data` of a send: this bit and the buffer id; of a receive: the port offset.
const SEND: u64 = 1 << 63;

/// The provided buffer ring: `NBUF` entries in page-aligned memory shared with the kernel, and
/// the buffers they point at.
struct BufRing {
    entries: *mut BufRingEntry,
    entries_len: usize,
    /// `NBUF * BUF_SIZE` bytes (a leaked boxed slice, freed by Drop unless `leak`).
    bufs: *mut u8,
    tail: u16,
    /// The kernel may still write into the buffers: never free them.
    leak: bool,
}

impl BufRing {
    fn new() -> io::Result<Self> {
        let entries_len = usize::from(NBUF) * size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping; the result is checked below.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                entries_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let bufs = vec![0u8; usize::from(NBUF) * BUF_SIZE].into_boxed_slice();
        let mut ring = Self {
            entries: mem.cast(),
            entries_len,
            bufs: Box::into_raw(bufs).cast(),
            tail: 0,
            leak: false,
        };
        for bid in 0..NBUF {
            ring.put(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Buffer `bid`'s memory (`BUF_SIZE` bytes).
    fn buf(&self, bid: u16) -> *mut u8 {
        // SAFETY: bid % NBUF < NBUF, so the offset stays inside the allocation.
        unsafe { self.bufs.add(usize::from(bid % NBUF) * BUF_SIZE) }
    }

    /// Queues buffer `bid` at the tail (the kernel sees it after [`BufRing::publish`]).
    fn put(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (NBUF - 1));
        let addr = self.buf(bid) as u64;
        // SAFETY: slot < NBUF entries of the mapping; the kernel reads only the entries between
        // its head and the published tail, and this one is past the published tail.
        let e = unsafe { &mut *self.entries.add(slot) };
        e.set_addr(addr);
        e.set_len(BUF_SIZE as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the buffers put so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail is the `resv` field of the first entry: a live, aligned u16 in the
        // shared mapping that the kernel only reads.
        let tail = unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.entries).cast_mut()) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.leak {
            return;
        }
        // SAFETY: the mapping is ours, of this length, and no longer registered: `Uring`
        // unregisters it and closes its ring before its `bufs` field is dropped.
        unsafe { libc::munmap(self.entries.cast(), self.entries_len) };
        let all = std::ptr::slice_from_raw_parts_mut(self.bufs, usize::from(NBUF) * BUF_SIZE);
        // SAFETY: `bufs` came from `Box::into_raw` of a slice of this length, freed only here.
        drop(unsafe { Box::from_raw(all) });
    }
}

/// One worker's ring, sockets and buffers.
pub(super) struct Uring {
    // Dropped first: the ring (and with it the kernel's use of the buffers) goes before them.
    ring: IoUring,
    bufs: BufRing,
    /// By port offset: the socket's descriptor (-1: not this worker's port).
    fds: Vec<RawFd>,
    /// Keeps the sockets open.
    _sockets: Vec<UdpSocket>,
    /// What a receive may fill besides the payload: room for the source address, no control
    /// data. The kernel reads it for every datagram of a multishot receive: boxed, so that it
    /// does not move.
    msg: Box<libc::msghdr>,
    /// By buffer id: the destination of the send from that buffer (read by the kernel when
    /// the send is submitted).
    dest: Box<[libc::sockaddr_storage]>,
    /// Ports whose multishot receive ended (no buffer was free): armed again after a pass.
    rearm: Vec<usize>,
}

/// io_uring is unavailable: why, and the sockets back (for the other interface).
pub(super) struct Refused {
    pub(super) error: io::Error,
    pub(super) sockets: Vec<(u16, UdpSocket)>,
}

impl Uring {
    /// A ring for `sockets` (port, socket) of a range of `span` ports from `min`: refused
    /// where the kernel has no io_uring (or forbids it), or lacks a feature this loop needs;
    /// the sockets then come back untouched.
    pub(super) fn new(
        min: u16,
        span: usize,
        sockets: Vec<(u16, UdpSocket)>,
    ) -> Result<Self, Refused> {
        let (ring, bufs) = match ring_and_buffers() {
            Ok(r) => r,
            Err(error) => return Err(Refused { error, sockets }),
        };
        if let Some(error) = sockets
            .iter()
            .find_map(|(_, s)| s.set_nonblocking(false).err())
        {
            return Err(Refused { error, sockets });
        }
        let mut msg = Box::new(unzeroed::<libc::msghdr>());
        msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        let mut fds = vec![-1; span];
        for (port, s) in &sockets {
            fds[usize::from(port - min)] = s.as_raw_fd();
        }
        Ok(Self {
            ring,
            bufs,
            fds,
            msg,
            dest: (0..NBUF)
                .map(|_| unzeroed::<libc::sockaddr_storage>())
                .collect(),
            rearm: Vec::with_capacity(sockets.len()),
            _sockets: sockets.into_iter().map(|(_, s)| s).collect(),
        })
    }

    /// Forwards until the control plane goes away.
    pub(super) fn run(&mut self, table: &mut Table) {
        let tick = Timespec::new().nsec(TICK.as_nanos() as u32);
        let wait = SubmitArgs::new().timespec(&tick);
        let ports = self.fds.iter().enumerate().filter(|(_, fd)| **fd >= 0);
        self.rearm.extend(ports.map(|(off, _)| off));
        self.arm_receives();
        loop {
            if let Err(e) = self.ring.submitter().submit_with_args(1, &wait) {
                // ETIME: the tick passed with no completion; EINTR: a signal; EBUSY/EAGAIN:
                // completions to reap first (below). Anything else must not spin.
                let expected = [libc::ETIME, libc::EINTR, libc::EBUSY, libc::EAGAIN];
                if !e.raw_os_error().is_some_and(|c| expected.contains(&c)) {
                    std::thread::sleep(TICK);
                }
            }
            // Commands first: a command sent before a packet arrived applies to it.
            if !table.apply_commands() {
                return;
            }
            self.complete(table);
            self.arm_receives();
            table.housekeeping(Instant::now());
        }
    }

    /// (Re)arms the multishot receive of every port in `rearm`.
    fn arm_receives(&mut self) {
        let Self {
            ring,
            fds,
            msg,
            rearm,
            ..
        } = self;
        let (submitter, mut sq, _) = ring.split();
        while let Some(&off) = rearm.last() {
            let e = opcode::RecvMsgMulti::new(Fd(fds[off]), &raw const **msg, BGID)
                .build()
                .user_data(off as u64);
            // SAFETY: `msg` is boxed and lives as long as the ring.
            if !unsafe { push(&mut sq, &submitter, &e) } {
                return; // the queue is full: the rest on the next pass
            }
            rearm.pop();
        }
    }

    /// Handles every completion: received datagrams are forwarded (or dropped and their buffer
    /// given back), finished sends give their buffer back.
    fn complete(&mut self, table: &mut Table) {
        let Self {
            ring,
            bufs,
            fds,
            msg,
            dest,
            rearm,
            ..
        } = self;
        let (submitter, mut sq, mut cq) = ring.split();
        let now = Instant::now();
        let mut returned = false;
        cq.sync();
        for cqe in &mut cq {
            let (ud, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            if ud & SEND != 0 {
                if res < 0 {
                    table.dropped(Discard::SendFailed, 1);
                } else {
                    table.sent(1, res as u64);
                }
                bufs.put(ud as u16);
                returned = true;
                continue;
            }
            let off = ud as usize;
            if !cqueue::more(flags) {
                rearm.push(off);
            }
            // Without a buffer: the ring ran dry (ENOBUFS) or the socket reported an error;
            // the receive is armed again after this pass.
            let Some(bid) = cqueue::buffer_select(flags) else {
                continue;
            };
            let len = usize::try_from(res).unwrap_or(0).min(BUF_SIZE);
            let base = bufs.buf(bid);
            // SAFETY: the kernel wrote `len` bytes into buffer `bid`, which is ours until it is
            // put back into the ring.
            let data = unsafe { std::slice::from_raw_parts(base, len) };
            let accepted = match RecvMsgOut::parse(data, msg) {
                Ok(m) if !m.is_payload_truncated() && !m.is_name_data_truncated() => {
                    match from_name(m.name_data()) {
                        Some(src) => {
                            let payload = m.payload_data();
                            table
                                .forward(now, off, src, payload)
                                .ok()
                                .map(|(out, to)| (out, to, payload.as_ptr(), payload.len()))
                        }
                        None => {
                            table.dropped(Discard::Invalid, 1);
                            None
                        }
                    }
                }
                _ => {
                    table.dropped(Discard::Invalid, 1);
                    None
                }
            };
            let Some((out, to, payload, payload_len)) = accepted else {
                bufs.put(bid);
                returned = true;
                continue;
            };
            let slot = &mut dest[usize::from(bid % NBUF)];
            let alen = to_storage(to, slot);
            let e = opcode::Send::new(Fd(fds[out]), payload, payload_len as u32)
                .dest_addr((&raw const *slot).cast())
                .dest_addr_len(alen)
                .build()
                .user_data(SEND | u64::from(bid));
            // SAFETY: the payload stays in buffer `bid` and the address in `dest[bid]` until
            // this send completes: the buffer returns to the ring only then.
            if !unsafe { push(&mut sq, &submitter, &e) } {
                table.dropped(Discard::SendFailed, 1);
                bufs.put(bid);
                returned = true;
            }
        }
        if returned {
            bufs.publish();
        }
    }
}

/// The ring and its registered buffer ring, or why this kernel cannot have them.
fn ring_and_buffers() -> io::Result<(IoUring, BufRing)> {
    let ring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES)
        .or_else(|_| {
            IoUring::builder()
                .setup_cqsize(CQ_ENTRIES)
                .build(SQ_ENTRIES)
        })?;
    if !ring.params().is_feature_ext_arg() || !ring.params().is_feature_nodrop() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring without EXT_ARG or NODROP (kernel older than 5.11)",
        ));
    }
    // Synchronous cancellation came with multishot recvmsg (6.0): with no request yet it
    // answers "not found" where it exists.
    let probe = ring
        .submitter()
        .register_sync_cancel(Some(Timespec::new().nsec(1_000)), CancelBuilder::any());
    match probe {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Ok(()) => {}
        Err(e) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring without synchronous cancel (kernel older than 6.0): {e}"),
            ))
        }
    }
    let bufs = BufRing::new()?;
    // SAFETY: the entries are page-aligned (mmap) and stay mapped until the ring is closed:
    // `Uring` drops `bufs` after `ring`, and its Drop unregisters them first.
    unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(bufs.entries as u64, NBUF, BGID, 0)?;
    }
    Ok((ring, bufs))
}

impl Drop for Uring {
    fn drop(&mut self) {
        // Every receive is pending for good and sends may be in flight: cancel them all and
        // wait, so that the kernel writes into no buffer once they are freed.
        let cancelled = self
            .ring
            .submitter()
            .register_sync_cancel(Some(Timespec::new().sec(2)), CancelBuilder::any());
        let quiet = match cancelled {
            Ok(()) => true,
            Err(e) => e.raw_os_error() == Some(libc::ENOENT),
        };
        if quiet {
            let _ = self.ring.submitter().unregister_buf_ring(BGID);
        } else if !quiet {
            // Requests may still use the buffers: keep them (and their ring) for good.
            self.bufs.leak = true;
        }
    }
}

/// Pushes `e`, submitting first when the submission queue is full; false when it stays full
/// (the kernel refused to take entries: completions must be reaped first).
///
/// # Safety
///
/// Whatever `e` points at stays valid until its completion.
#[must_use]
unsafe fn push(sq: &mut SubmissionQueue<'_>, submitter: &Submitter<'_>, e: &squeue::Entry) -> bool {
    if sq.is_full() {
        sq.sync();
        let _ = submitter.submit();
        sq.sync();
    }
    // SAFETY: the caller guarantees the entry's pointers.
    unsafe { sq.push(e) }.is_ok()
}

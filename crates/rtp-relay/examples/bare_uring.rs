//! `bare_relay` (benches/rtp.sh's ceiling) with io_uring instead of epoll + recvmmsg/sendmmsg:
//! the same ports, layout and destinations, the same command line and the same printed line.
//!
//! One thread, one ring (single issuer + deferred task running when the kernel allows them), a
//! provided buffer ring of `NBUF` buffers of `BUF_SIZE` bytes, one multishot `RecvMsg` per port
//! (buffer select; re-armed when a completion lacks `IORING_CQE_F_MORE`), and per datagram one
//! `Send` with a destination address (sendto) out of the paired port (`off ^ 1`) to the port's
//! fixed destination, straight from the receive buffer. The buffer goes back to the buffer ring
//! when the send completes. One `io_uring_enter` per loop (submit + wait for 1, 10 ms timeout),
//! then every completion is drained.
//!
//! Layout (the same as relay_bench): call `i` uses ports `min + 2i` (facing A) and `min + 2i + 1`
//! (facing B); A is `--a-ip:gen_base + i`, B is `--b-ip:gen_base + i`.
//!
//! `bare_uring --listen 127.0.0.1 --port-min 24000 --calls 2000 --gen-base 20000
//!  [--a-ip 127.0.0.2] [--b-ip 127.0.0.3]`; prints `PID <pid> PORTS <min>-<max>` and runs until
//! killed; counters go to stderr every 5 s.
#![allow(unsafe_code)]

mod common;

use common::{arg, sockaddr};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring, SubmissionQueue, Submitter};

/// Provided buffers (a power of two, at most 32768).
const NBUF: u16 = 4096;
const BUF_SIZE: usize = 2048;
const BGID: u16 = 0;
const SQ_ENTRIES: u32 = 4096;
const CQ_ENTRIES: u32 = 16384;
/// user_data: recv completions carry the port offset, send completions `SEND | buffer id`.
const SEND: u64 = 1 << 63;

/// The provided buffer ring: `NBUF` entries in page-aligned memory shared with the kernel, over
/// one allocation of `NBUF * BUF_SIZE` bytes.
struct BufRing {
    ring: *mut types::BufRingEntry,
    bufs: *mut u8,
    tail: u16,
}

impl BufRing {
    fn new(ring: &IoUring) -> io::Result<Self> {
        let ring_bytes = usize::from(NBUF) * size_of::<types::BufRingEntry>();
        // SAFETY: an anonymous private mapping; the result is checked below.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // The buffers live as long as the process (the relay runs until killed).
        let bufs = vec![0u8; usize::from(NBUF) * BUF_SIZE].leak().as_mut_ptr();
        let mut br = Self {
            ring: mem.cast(),
            bufs,
            tail: 0,
        };
        for bid in 0..NBUF {
            br.put(bid);
        }
        br.publish();
        // SAFETY: `mem` is page-aligned (mmap), zero-filled and holds NBUF entries; it is never
        // unmapped, so it outlives the registration.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(mem as u64, NBUF, BGID, 0)?;
        }
        Ok(br)
    }

    /// Buffer `bid`'s memory (`BUF_SIZE` bytes).
    fn buf(&self, bid: u16) -> *mut u8 {
        // SAFETY: bid < NBUF, so the offset stays inside the allocation.
        unsafe { self.bufs.add(usize::from(bid) * BUF_SIZE) }
    }

    /// Queues buffer `bid` at the tail (seen by the kernel after `publish`).
    fn put(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (NBUF - 1));
        // SAFETY: slot < NBUF; the kernel only reads entries between its head and the published
        // tail, and this slot is past the published tail.
        let e = unsafe { &mut *self.ring.add(slot) };
        e.set_addr(self.buf(bid) as u64);
        e.set_len(BUF_SIZE as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail is the `resv` field of the first entry: a live, aligned u16 in the
        // shared mapping, which the kernel reads (and never writes) concurrently.
        let tail = unsafe { AtomicU16::from_ptr(types::BufRingEntry::tail(self.ring).cast_mut()) };
        tail.store(self.tail, Ordering::Release);
    }
}

/// Pushes `e`, submitting first if the submission queue is full.
///
/// # Safety
///
/// Whatever `e` points at stays valid until its completion.
unsafe fn push(sq: &mut SubmissionQueue<'_>, submitter: &Submitter<'_>, e: &squeue::Entry) {
    if sq.is_full() {
        sq.sync();
        if let Err(err) = submitter.submit() {
            assert!(err.raw_os_error() == Some(libc::EBUSY), "submit: {err}");
        }
        sq.sync();
    }
    // SAFETY: the caller guarantees the entry's pointers; the queue has room (it was just
    // submitted, or was not full).
    unsafe { sq.push(e) }.expect("submission queue full after submit");
}

/// A sendto of `p` out of port offset `out` to `to`.
fn send_to(
    fixed: bool,
    fds: &[i32],
    out: usize,
    p: &[u8],
    to: &libc::sockaddr_in,
) -> squeue::Entry {
    let (buf, len) = (p.as_ptr(), p.len() as u32);
    let to_len = size_of::<libc::sockaddr_in>() as u32;
    let to: *const libc::sockaddr = (to as *const libc::sockaddr_in).cast();
    if fixed {
        opcode::Send::new(types::Fixed(out as u32), buf, len)
            .dest_addr(to)
            .dest_addr_len(to_len)
            .build()
    } else {
        opcode::Send::new(types::Fd(fds[out]), buf, len)
            .dest_addr(to)
            .dest_addr_len(to_len)
            .build()
    }
}

fn build_ring() -> io::Result<(IoUring, &'static str)> {
    let tuned = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES);
    match tuned {
        Ok(r) => Ok((r, "single_issuer+defer_taskrun+cqsize")),
        Err(e) => {
            eprintln!("single_issuer/defer_taskrun refused ({e}); plain ring");
            let r = IoUring::builder()
                .setup_cqsize(CQ_ENTRIES)
                .build(SQ_ENTRIES)?;
            Ok((r, "cqsize"))
        }
    }
}

#[derive(Default)]
struct Counters {
    recv: u64,
    sent: u64,
    recv_err: u64,
    enobufs: u64,
    rearm: u64,
    send_err: u64,
    enters: u64,
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listen: Ipv4Addr = arg(&args, "--listen", Some(Ipv4Addr::LOCALHOST));
    let min: u16 = arg(&args, "--port-min", None);
    let calls: u16 = arg(&args, "--calls", None);
    let gen_base: u16 = arg(&args, "--gen-base", None);
    let a_ip: Ipv4Addr = arg(&args, "--a-ip", Some(Ipv4Addr::new(127, 0, 0, 2)));
    let b_ip: Ipv4Addr = arg(&args, "--b-ip", Some(Ipv4Addr::new(127, 0, 0, 3)));
    let n = usize::from(calls) * 2;

    // Blocking sockets: io_uring tries non-blocking itself and arms a poll on EAGAIN, whereas
    // O_NONBLOCK would hand EAGAIN back to us.
    let mut socks = Vec::with_capacity(n);
    let mut dest = Vec::with_capacity(n);
    for off in 0..n {
        let port = min + off as u16;
        socks.push(UdpSocket::bind(SocketAddr::new(listen.into(), port))?);
        // Port min+2i faces A: what arrives there goes to B, and vice versa.
        let i = (off / 2) as u16;
        dest.push(if off % 2 == 0 {
            sockaddr(b_ip, gen_base + i)
        } else {
            sockaddr(a_ip, gen_base + i)
        });
    }
    let fds: Vec<i32> = socks.iter().map(AsRawFd::as_raw_fd).collect();
    // `dest` is never resized from here on: the sends point into it.
    let dest: &[libc::sockaddr_in] = &dest;

    let (mut ring, features) = build_ring()?;
    let mut br = BufRing::new(&ring)?;
    // Registered files (index = port offset) spare an fget/fput per request; BARE_URING_FIXED=0
    // keeps plain descriptors.
    let fixed = std::env::var("BARE_URING_FIXED").map_or(true, |v| v != "0")
        && match ring.submitter().register_files(&fds) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("register_files refused ({e}); plain descriptors");
                false
            }
        };
    eprintln!(
        "ring: {features}{}, sq {SQ_ENTRIES} cq {}, buffer ring {NBUF} x {BUF_SIZE}",
        if fixed { "+fixed_files" } else { "" },
        ring.params().cq_entries()
    );
    // Only the name and control lengths matter to a multishot recvmsg: room for the source
    // address (a real relay latches on it), no control data.
    // SAFETY: all-zero bytes are a valid msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
    let msg = &msg;
    let recv = |off: usize| {
        if fixed {
            opcode::RecvMsgMulti::new(types::Fixed(off as u32), msg, BGID).build()
        } else {
            opcode::RecvMsgMulti::new(types::Fd(fds[off]), msg, BGID).build()
        }
        .user_data(off as u64)
    };

    println!(
        "PID {} PORTS {}-{}",
        std::process::id(),
        min,
        min as usize + n - 1
    );

    let ts = types::Timespec::new().nsec(10_000_000);
    let wait = types::SubmitArgs::new().timespec(&ts);
    let mut c = Counters::default();
    let mut last = Instant::now();
    let (submitter, mut sq, mut cq) = ring.split();
    for off in 0..n {
        // SAFETY: `msg` lives until the end of main, i.e. as long as the request.
        unsafe { push(&mut sq, &submitter, &recv(off)) };
    }
    loop {
        sq.sync();
        c.enters += 1;
        if let Err(e) = submitter.submit_with_args(1, &wait) {
            match e.raw_os_error() {
                Some(libc::ETIME | libc::EINTR | libc::EBUSY) => {}
                _ => return Err(e),
            }
        }
        cq.sync();
        let mut returned = false;
        for cqe in cq.by_ref() {
            let ud = cqe.user_data();
            let res = cqe.result();
            let flags = cqe.flags();
            if ud & SEND != 0 {
                if res < 0 {
                    c.send_err += 1;
                } else {
                    c.sent += 1;
                }
                br.put(ud as u16);
                returned = true;
                continue;
            }
            let off = ud as usize;
            if let Some(bid) = cqueue::buffer_select(flags) {
                let base = br.buf(bid);
                // SAFETY: the kernel has written `res` (<= BUF_SIZE) bytes into buffer `bid`,
                // which is ours until we put it back in the ring.
                let data = unsafe { std::slice::from_raw_parts(base, res as usize) };
                match types::RecvMsgOut::parse(data, msg) {
                    Ok(out) => {
                        c.recv += 1;
                        let p = out.payload_data();
                        let send = send_to(fixed, &fds, off ^ 1, p, &dest[off])
                            .user_data(SEND | u64::from(bid));
                        // SAFETY: the payload stays in buffer `bid`, which goes back to the
                        // ring only on this send's completion; `dest` lives until the end of main.
                        unsafe { push(&mut sq, &submitter, &send) };
                    }
                    Err(()) => {
                        c.recv_err += 1;
                        br.put(bid);
                        returned = true;
                    }
                }
            } else if res == -libc::ENOBUFS {
                c.enobufs += 1;
            } else if res < 0 {
                c.recv_err += 1;
            }
            if !cqueue::more(flags) {
                c.rearm += 1;
                // SAFETY: as for the first arming.
                unsafe { push(&mut sq, &submitter, &recv(off)) };
            }
        }
        cq.sync();
        if returned {
            br.publish();
        }
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            eprintln!(
                "recv {} sent {} send_err {} recv_err {} enobufs {} rearm {} enters {} cq_overflow {}",
                c.recv, c.sent, c.send_err, c.recv_err, c.enobufs, c.rearm, c.enters, cq.overflow()
            );
        }
    }
}

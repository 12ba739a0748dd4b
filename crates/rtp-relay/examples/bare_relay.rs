//! The ceiling for sbcd's forwarder (benches/rtp.sh): one thread, the same socket setup as
//! `rtp_relay::fwd` (every port of a range bound non-blocking on `--listen`, one epoll), and per
//! readable port `recvmmsg` -> `sendmmsg` in batches of 32, straight out of the paired port
//! (`port ^ 1`, as the relay sends from the other leg's port) to a fixed destination per port.
//! No classification, no latching, no component table.
//!
//! Layout (the same as relay_bench): call `i` uses ports `min + 2i` (facing A) and `min + 2i + 1`
//! (facing B); A is `--a-ip:gen_base + i`, B is `--b-ip:gen_base + i`.
//!
//! `bare_relay --listen 127.0.0.1 --port-min 24000 --calls 2000 --gen-base 20000
//!  [--a-ip 127.0.0.2] [--b-ip 127.0.0.3]`; prints `PID <pid> PORTS <min>-<max>` and runs until killed.
#![allow(unsafe_code)]

mod common;

use common::{arg, sockaddr};
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

const BATCH: usize = 32;
const MAX_DATAGRAM: usize = 2048;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listen: Ipv4Addr = arg(&args, "--listen", Some(Ipv4Addr::LOCALHOST));
    let min: u16 = arg(&args, "--port-min", None);
    let calls: u16 = arg(&args, "--calls", None);
    let gen_base: u16 = arg(&args, "--gen-base", None);
    let a_ip: Ipv4Addr = arg(&args, "--a-ip", Some(Ipv4Addr::new(127, 0, 0, 2)));
    let b_ip: Ipv4Addr = arg(&args, "--b-ip", Some(Ipv4Addr::new(127, 0, 0, 3)));
    let n = usize::from(calls) * 2;

    let mut socks = Vec::with_capacity(n);
    let mut dest = Vec::with_capacity(n);
    for off in 0..n {
        let port = min + off as u16;
        let s = UdpSocket::bind(SocketAddr::new(listen.into(), port))?;
        s.set_nonblocking(true)?;
        socks.push(s);
        // Port min+2i faces A: what arrives there goes to B, and vice versa.
        let i = (off / 2) as u16;
        dest.push(if off % 2 == 0 {
            sockaddr(b_ip, gen_base + i)
        } else {
            sockaddr(a_ip, gen_base + i)
        });
    }
    // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epoll >= 0, "epoll_create1");
    for (off, s) in socks.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: off as u64,
        };
        // SAFETY: both descriptors are open; `ev` lives across the call.
        let rc = unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
        assert!(rc == 0, "epoll_ctl");
    }
    let fds: Vec<i32> = socks.iter().map(AsRawFd::as_raw_fd).collect();
    println!(
        "PID {} PORTS {}-{}",
        std::process::id(),
        min,
        min as usize + n - 1
    );

    let mut bufs = vec![[0u8; MAX_DATAGRAM]; BATCH];
    // SAFETY: plain C structs, valid when zeroed; pointers are set below before any call.
    let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut rx: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut tx: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: `events` has room for 64 entries; the descriptor is open.
        let ready = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), 64, 10) };
        for ev in events.iter().take(usize::try_from(ready).unwrap_or(0)) {
            let off = ev.u64 as usize;
            let (fd, out_fd, to) = (fds[off], fds[off ^ 1], &mut dest[off]);
            loop {
                for i in 0..BATCH {
                    iov[i] = libc::iovec {
                        iov_base: bufs[i].as_mut_ptr().cast(),
                        iov_len: MAX_DATAGRAM,
                    };
                    rx[i].msg_hdr.msg_iov = &raw mut iov[i];
                    rx[i].msg_hdr.msg_iovlen = 1;
                }
                // SAFETY: BATCH headers point at BATCH iovecs over live buffers; no names.
                let got = unsafe {
                    libc::recvmmsg(
                        fd,
                        rx.as_mut_ptr(),
                        BATCH as u32,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                let got = usize::try_from(got).unwrap_or(0);
                if got == 0 {
                    break;
                }
                for i in 0..got {
                    iov[i].iov_len = rx[i].msg_len as usize;
                    let h = &mut tx[i].msg_hdr;
                    h.msg_name = (to as *mut libc::sockaddr_in).cast();
                    h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
                    h.msg_iov = &raw mut iov[i];
                    h.msg_iovlen = 1;
                }
                let mut sent = 0;
                while sent < got {
                    // SAFETY: headers sent..got point at live iovecs, buffers and `to`.
                    let r = unsafe {
                        libc::sendmmsg(
                            out_fd,
                            tx[sent..].as_mut_ptr(),
                            (got - sent) as u32,
                            libc::MSG_DONTWAIT,
                        )
                    };
                    sent += usize::try_from(r).unwrap_or(0).max(1);
                }
                if got < BATCH {
                    break;
                }
            }
        }
    }
}

//! RTP load generator for benches/rtp.sh: per call one socket for leg A (`--a-ip:gen_base+i`) and
//! one for leg B (`--b-ip:gen_base+i`), each connected to the target port it sends to (read
//! from `--dests FILE`: one line per call, `A_DEST B_DEST` as `ip:port`). Streams: A -> target
//! -> B for every call, and B -> target -> A with `--bidir`. Packets are 172-byte RTP (12-byte
//! header, SSRC = stream, payload: send time (CLOCK_REALTIME ns), stream index, run tag), paced
//! round-robin over the streams at `--rate` packets/s in total (default 50 per stream).
//!
//! A receiver thread reads every socket (epoll + recvmmsg) with kernel receive timestamps
//! (SO_TIMESTAMPNS), so the one-way latency (kernel arrival at the far socket - send time) does
//! not include the generator's own scheduling delay; it counts loss per stream.
//!
//! Prints `START` when sending begins, `END` when it ends, then (after `--drain` ms) one JSON
//! line: sent, send_errors, received, lost, loss_pct, latency p50/p90/p99/p999/max in µs,
//! the achieved send rate and the generator's own CPU seconds.
#![allow(unsafe_code)]

mod common;

use common::arg;
use std::io::BufRead;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 32;
const PKT: usize = 172;
const HIST_US: usize = 200_000;

fn realtime_ns() -> u64 {
    // SAFETY: all-zero is a valid timespec; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn cpu_seconds() -> f64 {
    // SAFETY: all-zero is a valid rusage; getrusage fills it.
    let mut ru: libc::rusage = unsafe { zeroed() };
    // SAFETY: `ru` is a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

struct Rx {
    received: AtomicU64,
    foreign: AtomicU64,
}

fn receiver(
    fds: Vec<i32>,
    nstreams: usize,
    tag: u32,
    stop: Arc<AtomicBool>,
    rx: Arc<Rx>,
) -> (Vec<u64>, Vec<u64>) {
    let mut hist = vec![0u64; HIST_US + 1];
    let mut per_stream = vec![0u64; nstreams];
    // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epoll >= 0);
    for (i, fd) in fds.iter().enumerate() {
        let on: libc::c_int = 1;
        // SAFETY: `on` is a valid c_int for the option's length.
        unsafe {
            libc::setsockopt(
                *fd,
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as u32,
            )
        };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: both descriptors are open; `ev` lives across the call.
        unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, *fd, &mut ev) };
    }
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut ctl = vec![[0u64; 8]; BATCH];
    // SAFETY: plain C structs, valid when zeroed; pointers set before each call.
    let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut received = 0u64;
    let mut foreign = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `events` has room for 256 entries.
        let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), 256, 20) };
        for ev in events.iter().take(usize::try_from(n).unwrap_or(0)) {
            let fd = fds[ev.u64 as usize];
            loop {
                for i in 0..BATCH {
                    iov[i] = libc::iovec {
                        iov_base: bufs[i].as_mut_ptr().cast(),
                        iov_len: 2048,
                    };
                    let h = &mut hdrs[i].msg_hdr;
                    h.msg_iov = &raw mut iov[i];
                    h.msg_iovlen = 1;
                    h.msg_control = ctl[i].as_mut_ptr().cast();
                    h.msg_controllen = 64;
                    h.msg_flags = 0;
                }
                // SAFETY: BATCH headers point at live iovecs, buffers and control buffers.
                let got = unsafe {
                    libc::recvmmsg(
                        fd,
                        hdrs.as_mut_ptr(),
                        BATCH as u32,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                let got = usize::try_from(got).unwrap_or(0);
                if got == 0 {
                    break;
                }
                let fallback = realtime_ns();
                for i in 0..got {
                    let len = hdrs[i].msg_len as usize;
                    let b = &bufs[i];
                    if len != PKT || b[0] != 0x80 {
                        foreign += 1;
                        continue;
                    }
                    let sent_ns = u64::from_be_bytes(b[12..20].try_into().unwrap());
                    let stream = u32::from_be_bytes(b[20..24].try_into().unwrap()) as usize;
                    // Another run's stragglers (a target still draining a backlog) are not ours.
                    if stream >= nstreams || b[24..28] != tag.to_be_bytes() {
                        foreign += 1;
                        continue;
                    }
                    let mut at = fallback;
                    let h = &hdrs[i].msg_hdr;
                    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG macros walk it.
                    unsafe {
                        let mut c = libc::CMSG_FIRSTHDR(h);
                        while !c.is_null() {
                            if (*c).cmsg_level == libc::SOL_SOCKET
                                && (*c).cmsg_type == libc::SCM_TIMESTAMPNS
                            {
                                let ts: libc::timespec =
                                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                                at = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
                            }
                            c = libc::CMSG_NXTHDR(h, c);
                        }
                    }
                    let us = (at.saturating_sub(sent_ns) / 1000) as usize;
                    hist[us.min(HIST_US)] += 1;
                    per_stream[stream] += 1;
                    received += 1;
                }
                if got < BATCH {
                    break;
                }
            }
        }
        rx.received.store(received, Ordering::Relaxed);
        rx.foreign.store(foreign, Ordering::Relaxed);
    }
    (hist, per_stream)
}

fn pct(hist: &[u64], total: u64, p: f64) -> usize {
    if total == 0 {
        return 0;
    }
    let want = ((total as f64) * p).ceil().max(1.0) as u64;
    let mut acc = 0;
    for (us, c) in hist.iter().enumerate() {
        acc += c;
        if acc >= want {
            return us;
        }
    }
    HIST_US
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dests_file: String = arg(&args, "--dests", None);
    let gen_base: u16 = arg(&args, "--gen-base", None);
    let a_ip: Ipv4Addr = arg(&args, "--a-ip", Some(Ipv4Addr::new(127, 0, 0, 2)));
    let b_ip: Ipv4Addr = arg(&args, "--b-ip", Some(Ipv4Addr::new(127, 0, 0, 3)));
    let bidir = args.iter().any(|a| a == "--bidir");
    let duration: f64 = arg(&args, "--duration", Some(10.0));
    let drain_ms: u64 = arg(&args, "--drain", Some(500));
    let f = std::fs::File::open(&dests_file).expect("open --dests");
    let dests: Vec<(SocketAddr, SocketAddr)> = std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            (
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let calls = dests.len();
    let nstreams = if bidir { 2 * calls } else { calls };
    let rate: f64 = arg(&args, "--rate", Some(50.0 * nstreams as f64));

    // Sockets: fd 2i = A of call i, 2i+1 = B. Stream 2i (or i one-way): A -> B; 2i+1: B -> A.
    let mut socks = Vec::with_capacity(2 * calls);
    for (i, (ad, bd)) in dests.iter().enumerate() {
        let a = UdpSocket::bind((a_ip, gen_base + i as u16)).expect("bind A");
        let b = UdpSocket::bind((b_ip, gen_base + i as u16)).expect("bind B");
        a.connect(ad).unwrap();
        b.connect(bd).unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        socks.push(a);
        socks.push(b);
    }
    let fds: Vec<i32> = socks.iter().map(AsRawFd::as_raw_fd).collect();
    let send_fd: Vec<i32> = (0..nstreams)
        .map(|s| if bidir { fds[s] } else { fds[2 * s] })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let rxs = Arc::new(Rx {
        received: AtomicU64::new(0),
        foreign: AtomicU64::new(0),
    });
    // A tag per run, in every packet: what an earlier run left queued in the target is ignored.
    let tag = (realtime_ns() / 1000) as u32 | 1;
    let rx_thread = {
        let (fds, stop, rxs) = (fds.clone(), Arc::clone(&stop), Arc::clone(&rxs));
        std::thread::spawn(move || receiver(fds, nstreams, tag, stop, rxs))
    };
    std::thread::sleep(Duration::from_millis(100));

    let mut pkt = [0u8; PKT];
    pkt[0] = 0x80;
    pkt[24..28].copy_from_slice(&tag.to_be_bytes());
    let mut seqs = vec![0u16; nstreams];
    let total = (rate * duration) as u64;
    let mut sent_per_stream = vec![0u64; nstreams];
    let (mut sent, mut errors, mut k) = (0u64, 0u64, 0u64);
    let mut max_lag = 0u64;
    println!("START");
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    while k < total {
        let el = t0.elapsed();
        let due = ((el.as_secs_f64() * rate) as u64).min(total);
        if due <= k {
            // Ahead of schedule: sleep (a ~250 µs quantum, so that the generator does not spin
            // on a machine it shares with the target; it then sends a short burst of packets,
            // each to another stream).
            let next = Duration::from_secs_f64((k + 1) as f64 / rate);
            std::thread::sleep((next.saturating_sub(el)).max(Duration::from_micros(200)));
            continue;
        }
        max_lag = max_lag.max(due - k);
        while k < due {
            let s = (k % nstreams as u64) as usize;
            k += 1;
            let seq = seqs[s];
            seqs[s] = seq.wrapping_add(1);
            pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            pkt[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            pkt[8..12].copy_from_slice(&(s as u32 + 1).to_be_bytes());
            pkt[12..20].copy_from_slice(&realtime_ns().to_be_bytes());
            pkt[20..24].copy_from_slice(&(s as u32).to_be_bytes());
            // SAFETY: `pkt` is a live buffer of PKT bytes; the socket is connected.
            let r = unsafe { libc::send(send_fd[s], pkt.as_ptr().cast(), PKT, libc::MSG_DONTWAIT) };
            if r == PKT as isize {
                sent += 1;
                sent_per_stream[s] += 1;
            } else {
                errors += 1;
            }
        }
    }
    let send_secs = t0.elapsed().as_secs_f64();
    println!("END");
    std::thread::sleep(Duration::from_millis(drain_ms));
    stop.store(true, Ordering::Relaxed);
    let (hist, per_stream) = rx_thread.join().unwrap();
    let cpu = cpu_seconds() - cpu0;
    let received: u64 = per_stream.iter().sum();
    let lost = sent.saturating_sub(received);
    let streams_with_loss = per_stream
        .iter()
        .zip(&sent_per_stream)
        .filter(|(r, s)| r < s)
        .count();
    println!(
        "{{\"streams\":{nstreams},\"calls\":{calls},\"rate\":{rate},\"duration\":{duration},\"sent\":{sent},\"send_errors\":{errors},\"received\":{received},\"foreign\":{},\"lost\":{lost},\"loss_pct\":{:.5},\"streams_with_loss\":{streams_with_loss},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"send_rate\":{:.0},\"max_burst\":{max_lag},\"gen_cpu_s\":{cpu:.3}}}",
        rxs.foreign.load(Ordering::Relaxed),
        if sent > 0 { 100.0 * lost as f64 / sent as f64 } else { 0.0 },
        pct(&hist, received, 0.5),
        pct(&hist, received, 0.9),
        pct(&hist, received, 0.99),
        pct(&hist, received, 0.999),
        pct(&hist, received, 1.0),
        sent as f64 / send_secs,
    );
}

//! sbcd's forwarder alone, for benches/rtp.sh: `Relay::start` with one worker on
//! `[min, min + 2*calls - 1]`, then one `Command::Open` per call between generator sockets
//! (strict latching, both endpoints' expected addresses known), then it waits.
//!
//! Layout (the same as bare_relay): call `i` uses ports `min + 2i` (facing A) and
//! `min + 2i + 1` (facing B); A is `--a-ip:gen_base + i`, B is `--b-ip:gen_base + i`.
//!
//! `relay_bench --port-min 24000 --calls 2000 --gen-base 20000 [--workers 1]`; prints
//! `PID <pid> PORTS <min>-<max>`, then every second `forwarded <n> dropped <n>` on stderr.

mod common;

use common::arg;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use rtp_relay::control::Command;
use rtp_relay::fwd::{Io, Relay, RelayConfig};
use rtp_relay::latch::LatchPolicy;
use rtp_relay::session::Endpoint;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen: IpAddr = arg(&args, "--listen", Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let min: u16 = arg(&args, "--port-min", None);
    let calls: u16 = arg(&args, "--calls", None);
    let gen_base: u16 = arg(&args, "--gen-base", None);
    let workers: usize = arg(&args, "--workers", Some(1));
    let a_ip: Ipv4Addr = arg(&args, "--a-ip", Some(Ipv4Addr::new(127, 0, 0, 2)));
    let b_ip: Ipv4Addr = arg(&args, "--b-ip", Some(Ipv4Addr::new(127, 0, 0, 3)));
    let max = min + 2 * calls - 1;
    let (relay, _events) = Relay::start(&RelayConfig {
        listen,
        port_min: min,
        port_max: max,
        workers,
        io: match std::env::var("RELAY_IO").as_deref() {
            Ok("mmsg") => Io::Mmsg,
            Ok("uring") => Io::Uring,
            _ => Io::Auto,
        },
    })
    .expect("bind the media range");
    assert!(
        relay.unavailable.is_empty(),
        "ports in use: {:?}",
        relay.unavailable
    );
    let strict = |ip: Ipv4Addr, port: u16| Endpoint {
        expected: Some(SocketAddr::new(ip.into(), port)),
        policy: LatchPolicy::Strict,
    };
    for i in 0..calls {
        let cmd = Command::Open {
            id: u64::from(i),
            ports: [min + 2 * i, min + 2 * i + 1],
            a: strict(a_ip, gen_base + i),
            b: strict(b_ip, gen_base + i),
            idle: None,
        };
        // The command queue holds 4096: retry while the worker catches up.
        while relay.send(cmd.clone()).is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    while relay.stats.components.load(Ordering::Relaxed) < u64::from(calls) {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("PID {} PORTS {min}-{max}", std::process::id());
    loop {
        std::thread::sleep(Duration::from_secs(1));
        eprintln!(
            "forwarded {} dropped {}",
            relay.stats.forwarded.load(Ordering::Relaxed),
            relay.stats.dropped_total()
        );
    }
}

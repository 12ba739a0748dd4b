//! What the load-run examples share (not an example itself: `examples/common/mod.rs`).
#![allow(unsafe_code, dead_code)]

use std::mem::zeroed;
use std::net::Ipv4Addr;

/// The value after `name` on the command line, or `default`; panics with the option's name.
pub(crate) fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad value for {name}")),
        None => default.unwrap_or_else(|| panic!("missing {name}")),
    }
}

/// A C IPv4 socket address.
pub(crate) fn sockaddr(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    // SAFETY: all-zero bytes are a valid sockaddr_in.
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = port.to_be();
    s.sin_addr = libc::in_addr {
        s_addr: u32::from(ip).to_be(),
    };
    s
}

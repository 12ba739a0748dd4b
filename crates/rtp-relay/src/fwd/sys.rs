//! Socket addresses between Rust and the kernel's C structs.
#![allow(unsafe_code)]

use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The source address the kernel wrote.
pub(super) fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` as a C socket address; returns its length.
pub(super) fn to_storage(addr: SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let s: *mut libc::sockaddr_storage = s;
    match addr {
        SocketAddr::V4(a) => {
            let mut sin: libc::sockaddr_in = unzeroed();
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            unsafe { s.cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let mut sin6: libc::sockaddr_in6 = unzeroed();
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: as above.
            unsafe { s.cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// An all-zero C struct.
pub(super) fn unzeroed<T: Copy>() -> T {
    // SAFETY: only used for plain C address structs, for which all-zero bytes are valid.
    unsafe { MaybeUninit::<T>::zeroed().assume_init() }
}

/// The source address in the first bytes of `name` (a `sockaddr` as the kernel wrote it into
/// a receive buffer, `len` bytes of it valid).
pub(super) fn from_name(name: &[u8]) -> Option<SocketAddr> {
    let mut s = unzeroed::<libc::sockaddr_storage>();
    let n = name.len().min(size_of::<libc::sockaddr_storage>());
    // SAFETY: `n` bytes fit both the source slice and the storage; sockaddr_storage is plain
    // bytes, so any content is a valid value (the family is checked by `from_storage`).
    unsafe {
        std::ptr::copy_nonoverlapping(name.as_ptr(), (&raw mut s).cast::<u8>(), n);
    }
    from_storage(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_c_structs() {
        assert_eq!(from_name(&[0; 4]), None, "no family");
        for a in [
            "192.0.2.7:4000",
            "[2001:db8::5]:6000",
            "[::ffff:10.0.0.1]:1",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            let mut s = unzeroed::<libc::sockaddr_storage>();
            let len = to_storage(a, &mut s) as usize;
            assert_eq!(from_storage(&s), Some(a));
            // As io_uring hands it over: the address bytes in a receive buffer.
            // SAFETY: `s` is a live sockaddr_storage of at least `len` bytes.
            let bytes = unsafe { std::slice::from_raw_parts((&raw const s).cast::<u8>(), len) };
            assert_eq!(from_name(bytes), Some(a));
        }
    }
}

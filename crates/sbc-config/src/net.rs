//! Network vocabulary of the configuration: [`IpNet`] (CIDR allowlist entries), [`Transport`],
//! [`Listener`] (`udp:ADDR:PORT`) and [`Host`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An IP network in CIDR notation, such as `192.0.2.0/24` or `2001:db8::/32`.
///
/// The address is the network address: host bits must be zero, so `10.0.0.1/8` is refused
/// instead of silently widened (an allowlist typo should fail loudly). A bare address is a
/// host network (`/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a string is not an [`IpNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpNetError {
    /// Not `ADDRESS/LENGTH` or `ADDRESS`.
    #[error("not a CIDR network like 192.0.2.0/24 or 2001:db8::/32")]
    Syntax,
    /// The prefix length is longer than the address.
    #[error("prefix length {len} is longer than {max}")]
    PrefixTooLong {
        /// The length given.
        len: u8,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// Bits after the prefix are set.
    #[error("host bits are set (did you mean {network}?)")]
    HostBits {
        /// The network the address falls in.
        network: IpNet,
    },
}

impl IpNet {
    /// The network `addr/prefix_len`; `addr` must have no bits set after the prefix.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, IpNetError> {
        let max = max_prefix_len(addr);
        if prefix_len > max {
            return Err(IpNetError::PrefixTooLong {
                len: prefix_len,
                max,
            });
        }
        let network = Self {
            addr: mask(addr, prefix_len),
            prefix_len,
        };
        if network.addr != addr {
            return Err(IpNetError::HostBits { network });
        }
        Ok(network)
    }

    /// The network address.
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The number of leading bits that make up the network.
    #[must_use]
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is inside this network.
    ///
    /// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a dual-stack socket reports an
    /// IPv4 peer) is treated as the IPv4 address it carries.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix_len) == self.addr
    }
}

fn max_prefix_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// `addr` with every bit after the first `len` cleared; `len` is at most the address width.
fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| IpNetError::Syntax)?;
        let len = match len {
            None => max_prefix_len(addr),
            // Digits only: u8's parser would also take "+8".
            Some(len)
                if !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit()) =>
            {
                len.parse().map_err(|_| IpNetError::Syntax)?
            }
            Some(_) => return Err(IpNetError::Syntax),
        };
        Self::new(addr, len)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// A SIP transport (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// Datagrams.
    Udp,
    /// A byte stream.
    Tcp,
    /// TCP under TLS.
    Tls,
}

impl Transport {
    /// The lowercase name, as in `transport=` URI parameters and `listen` entries.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    /// The name in any letter case, as SIP compares it.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Udp, Self::Tcp, Self::Tls]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SIP listening socket: `udp:127.0.0.1:5060`, `tcp:[::1]:5060`, `tls:0.0.0.0:5061`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listener {
    /// How the socket speaks SIP.
    pub transport: Transport,
    /// Where it binds. Port 0 asks the kernel for a free port (tests use it).
    pub addr: SocketAddr,
}

/// Why a string is not a [`Listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// Not `TRANSPORT:ADDRESS:PORT`.
    #[error("expected TRANSPORT:ADDRESS:PORT such as udp:127.0.0.1:5060 or tcp:[::1]:5060")]
    Syntax,
    /// The transport is not one sbcd speaks.
    #[error("unknown transport (expected udp, tcp or tls)")]
    Transport,
}

impl FromStr for Listener {
    type Err = ListenerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (transport, addr) = s.split_once(':').ok_or(ListenerError::Syntax)?;
        let transport = Transport::from_name(transport).ok_or(ListenerError::Transport)?;
        let addr = addr.parse().map_err(|_| ListenerError::Syntax)?;
        Ok(Self { transport, addr })
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

/// A host as SIP writes it: an IP address or a domain name (RFC 3261 §25.1 `host`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A domain name, kept as written (compare it case-insensitively).
    Domain(String),
}

impl Host {
    /// Parses an address (IPv6 with or without brackets) or a domain name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let unbracketed = s.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'));
        if let Some(v6) = unbracketed {
            return v6.parse::<Ipv6Addr>().ok().map(|a| Self::Ip(a.into()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(Self::Ip(ip));
        }
        is_domain_name(s).then(|| Self::Domain(s.to_owned()))
    }
}

impl fmt::Display for Host {
    /// IPv6 addresses are bracketed, as in a URI or a Via `sent-by`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Self::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Self::Domain(d) => f.write_str(d),
        }
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, at most 253
/// characters, with an optional final dot. A name made of digits and dots only is refused, since
/// it is a mistyped IPv4 address far more often than a real name.
#[must_use]
pub fn is_domain_name(s: &str) -> bool {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    labels_ok && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ipnet_parses_v4_v6_and_bare_addresses() {
        assert_eq!(net("192.0.2.0/24").to_string(), "192.0.2.0/24");
        assert_eq!(net("127.0.0.1").to_string(), "127.0.0.1/32");
        assert_eq!(net("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(net("::1").to_string(), "::1/128");
        assert_eq!(net("0.0.0.0/0").prefix_len(), 0);
        assert_eq!(net("::/0").addr(), ip("::"));
    }

    #[test]
    fn ipnet_rejects_bad_input() {
        for bad in [
            "",
            "/24",
            "192.0.2.0/",
            "192.0.2.0/+8",
            "192.0.2.0/024x",
            "192.0.2/24",
            "192.0.2.0/24/1",
            "host/8",
            "[::1]/128",
            " 10.0.0.0/8",
            "10.0.0.0/1000",
        ] {
            assert_eq!(bad.parse::<IpNet>(), Err(IpNetError::Syntax), "{bad:?}");
        }
        assert_eq!(
            "10.0.0.0/33".parse::<IpNet>(),
            Err(IpNetError::PrefixTooLong { len: 33, max: 32 })
        );
        assert_eq!(
            "::/129".parse::<IpNet>(),
            Err(IpNetError::PrefixTooLong { len: 129, max: 128 })
        );
        let err = "10.1.2.3/8".parse::<IpNet>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "host bits are set (did you mean 10.0.0.0/8?)"
        );
        let err = "2001:db8::1/32".parse::<IpNet>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "host bits are set (did you mean 2001:db8::/32?)"
        );
    }

    #[test]
    fn ipnet_contains() {
        let n = net("192.0.2.0/24");
        assert!(n.contains(ip("192.0.2.0")));
        assert!(n.contains(ip("192.0.2.255")));
        assert!(!n.contains(ip("192.0.3.0")));
        assert!(!n.contains(ip("192.0.1.255")));
        assert!(n.contains(ip("::ffff:192.0.2.7")), "v4-mapped peer");
        assert!(!n.contains(ip("2001:db8::1")));

        let all4 = net("0.0.0.0/0");
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(!all4.contains(ip("::1")));

        let host = net("127.0.0.1/32");
        assert!(host.contains(ip("127.0.0.1")));
        assert!(!host.contains(ip("127.0.0.2")));

        let v6 = net("2001:db8:abcd::/48");
        assert!(v6.contains(ip("2001:db8:abcd:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:abce::1")));
        assert!(!v6.contains(ip("192.0.2.1")));
        assert!(net("::/0").contains(ip("::1")));
        assert!(net("::1/128").contains(ip("::1")));
    }

    #[test]
    fn ipnet_contains_agrees_with_a_bit_by_bit_check() {
        // Every prefix length of one v4 and one v6 network against nearby addresses.
        let base4 = u32::from(Ipv4Addr::new(203, 0, 113, 77));
        for len in 0..=32u8 {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            let n = IpNet::new(Ipv4Addr::from(base4 & m).into(), len).unwrap();
            for probe in [
                base4,
                base4 ^ 1,
                base4 ^ (1 << 31),
                base4 ^ (1 << 16),
                0,
                u32::MAX,
            ] {
                let inside = (probe ^ base4) & m == 0;
                assert_eq!(
                    n.contains(Ipv4Addr::from(probe).into()),
                    inside,
                    "{n} {probe:#x}"
                );
            }
        }
        let base6 = u128::from("2001:db8::42".parse::<Ipv6Addr>().unwrap());
        for len in 0..=128u8 {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            let n = IpNet::new(Ipv6Addr::from(base6 & m).into(), len).unwrap();
            for probe in [base6, base6 ^ 1, base6 ^ (1 << 127), base6 ^ (1 << 64), 0] {
                let inside = (probe ^ base6) & m == 0;
                assert_eq!(
                    n.contains(Ipv6Addr::from(probe).into()),
                    inside,
                    "{n} {probe:#x}"
                );
            }
        }
    }

    #[test]
    fn listener_forms() {
        let l: Listener = "udp:127.0.0.1:5060".parse().unwrap();
        assert_eq!(
            (l.transport, l.addr),
            (Transport::Udp, "127.0.0.1:5060".parse().unwrap())
        );
        let l: Listener = "tls:[::1]:5061".parse().unwrap();
        assert_eq!(
            (l.transport, l.addr),
            (Transport::Tls, "[::1]:5061".parse().unwrap())
        );
        assert_eq!(l.to_string(), "tls:[::1]:5061");
        let l: Listener = "TCP:0.0.0.0:0".parse().unwrap();
        assert_eq!(l.transport, Transport::Tcp);
        assert_eq!(
            "sctp:127.0.0.1:5060".parse::<Listener>(),
            Err(ListenerError::Transport)
        );
        for bad in [
            "udp",
            "udp:127.0.0.1",
            "udp:::1:5060",
            "udp:127.0.0.1:70000",
            "127.0.0.1:5060",
        ] {
            assert!(bad.parse::<Listener>().is_err(), "{bad}");
        }
    }

    #[test]
    fn host_forms() {
        assert_eq!(Host::parse("192.0.2.1"), Some(Host::Ip(ip("192.0.2.1"))));
        assert_eq!(
            Host::parse("[2001:db8::1]"),
            Some(Host::Ip(ip("2001:db8::1")))
        );
        assert_eq!(
            Host::parse("2001:db8::1"),
            Some(Host::Ip(ip("2001:db8::1")))
        );
        assert_eq!(
            Host::parse("sbc.example.net"),
            Some(Host::Domain("sbc.example.net".into()))
        );
        assert_eq!(
            Host::parse("[2001:db8::1]").unwrap().to_string(),
            "[2001:db8::1]"
        );
        for bad in [
            "",
            "a..b",
            "-a.b",
            "a-.b",
            "a b",
            "1.2.3",
            "999.1.1.1",
            "[1.2.3.4]",
            "x_y.test",
        ] {
            assert_eq!(Host::parse(bad), None, "{bad:?}");
        }
    }
}

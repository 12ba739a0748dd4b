//! Locating a trunk's servers (RFC 3263 §4.2): for a host name without a port, the SRV
//! records of `_sip._udp` / `_sip._tcp` / `_sips._tcp` in priority order, each target's
//! addresses in turn; without SRV records (or with a port), the name's A/AAAA records.
//!
//! The SRV query is a small hand-written DNS client (one UDP question to the first
//! `nameserver` of /etc/resolv.conf, RFC 1035 §4), so no resolver crate and its runtime come
//! in for one record type; addresses come from the system resolver (getaddrinfo), which
//! follows /etc/hosts and nsswitch. Runs at start and reload, off the signalling threads.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use sbc_config::net::Transport;

const TIMEOUT: Duration = Duration::from_secs(2);

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Srv {
    pub(crate) priority: u16,
    pub(crate) weight: u16,
    pub(crate) port: u16,
    pub(crate) target: String,
}

/// Every address of `host` for `transport`, in the order to try them. `port`: the URI's.
pub(crate) fn resolve(
    host: &str,
    port: Option<u16>,
    transport: Transport,
    nameserver: Option<SocketAddr>,
) -> Vec<SocketAddr> {
    let default_port = match transport {
        Transport::Tls => 5061,
        Transport::Udp | Transport::Tcp => 5060,
    };
    if let Some(port) = port {
        return addresses(host, port);
    }
    let service = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    let srv = nameserver
        .map(|ns| query_srv(&format!("{service}.{host}"), ns))
        .unwrap_or_default();
    if srv.is_empty() {
        return addresses(host, default_port);
    }
    let mut out = Vec::new();
    for r in srv {
        for a in addresses(&r.target, r.port) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

fn addresses(host: &str, port: u16) -> Vec<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default()
}

/// The first `nameserver` of /etc/resolv.conf, port 53.
pub(crate) fn system_nameserver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next()? == "nameserver").then_some(())?;
        let ip: std::net::IpAddr = w.next()?.parse().ok()?;
        Some(SocketAddr::new(ip, 53))
    })
}

/// The SRV records of `name`, sorted by priority, then by weight (heaviest first: a
/// deterministic stand-in for RFC 2782's weighted random pick). Empty on any failure.
pub(crate) fn query_srv(name: &str, nameserver: SocketAddr) -> Vec<Srv> {
    let bind: SocketAddr = if nameserver.is_ipv6() {
        "[::]:0".parse().expect("literal")
    } else {
        "0.0.0.0:0".parse().expect("literal")
    };
    let Ok(sock) = UdpSocket::bind(bind) else {
        return Vec::new();
    };
    if sock.set_read_timeout(Some(TIMEOUT)).is_err() {
        return Vec::new();
    }
    let id = (std::process::id() as u16) ^ (name.len() as u16).rotate_left(7);
    let Some(query) = encode_query(id, name) else {
        return Vec::new();
    };
    let mut buf = [0u8; 1500];
    for _ in 0..2 {
        if sock.send_to(&query, nameserver).is_err() {
            return Vec::new();
        }
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from != nameserver {
                continue;
            }
            if let Some(mut records) = decode_srv(&buf[..n], id) {
                records.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
                return records;
            }
        }
    }
    Vec::new()
}

/// A recursive query for the SRV records of `name` (RFC 1035 §4.1).
fn encode_query(id: u16, name: &str) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&l| l > 0 && l < 64)?;
        q.push(len);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 33, 0, 1]); // QTYPE SRV, QCLASS IN
    Some(q)
}

fn u16_at(m: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]))
}

/// Reads a (possibly compressed) name at `i`; returns it and the offset after it.
fn read_name(m: &[u8], mut i: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *m.get(i)?;
        match len {
            0 => return Some((name, end.unwrap_or(i + 1))),
            l if l & 0xc0 == 0xc0 => {
                let ptr = usize::from(u16_at(m, i)? & 0x3fff);
                end.get_or_insert(i + 2);
                i = ptr;
            }
            l if l < 64 => {
                let label = m.get(i + 1..i + 1 + usize::from(l))?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(std::str::from_utf8(label).ok()?);
                i += 1 + usize::from(l);
            }
            _ => return None,
        }
    }
    None
}

/// The SRV answers of a response to query `id`; None if it is not one (or is an error).
fn decode_srv(m: &[u8], id: u16) -> Option<Vec<Srv>> {
    if u16_at(m, 0)? != id || m.get(2)? & 0x80 == 0 {
        return None;
    }
    if m.get(3)? & 0x0f != 0 {
        return Some(Vec::new()); // NXDOMAIN and other errors: no records
    }
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    let mut i = 12;
    for _ in 0..qd {
        i = read_name(m, i)?.1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        let (_, after) = read_name(m, i)?;
        let rtype = u16_at(m, after)?;
        let rdlen = usize::from(u16_at(m, after + 8)?);
        let rdata = after + 10;
        if rtype == 33 && rdlen >= 7 {
            let (target, _) = read_name(m, rdata + 6)?;
            out.push(Srv {
                priority: u16_at(m, rdata)?,
                weight: u16_at(m, rdata + 2)?,
                port: u16_at(m, rdata + 4)?,
                target,
            });
        }
        i = rdata + rdlen;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS server on loopback that answers one SRV query with `records`.
    fn fake_dns(
        records: Vec<(u16, u16, u16, &'static str)>,
    ) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let (n, from) = sock.recv_from(&mut buf).unwrap();
            let q = &buf[..n];
            let (qname, qend) = read_name(q, 12).unwrap();
            let mut r = Vec::new();
            r.extend_from_slice(&q[..2]);
            r.extend_from_slice(&[0x81, 0x80, 0, 1]);
            r.extend_from_slice(&(records.len() as u16).to_be_bytes());
            r.extend_from_slice(&[0, 0, 0, 0]);
            r.extend_from_slice(&q[12..qend + 4]);
            for (prio, weight, port, target) in &records {
                r.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
                let mut rdata = Vec::new();
                rdata.extend_from_slice(&prio.to_be_bytes());
                rdata.extend_from_slice(&weight.to_be_bytes());
                rdata.extend_from_slice(&port.to_be_bytes());
                for label in target.split('.') {
                    rdata.push(label.len() as u8);
                    rdata.extend_from_slice(label.as_bytes());
                }
                rdata.push(0);
                r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                r.extend_from_slice(&rdata);
            }
            sock.send_to(&r, from).unwrap();
            qname
        });
        (addr, h)
    }

    #[test]
    fn srv_targets_in_priority_order_then_their_addresses() {
        let (ns, h) = fake_dns(vec![
            (20, 0, 5090, "127.0.0.3"),
            (10, 5, 5070, "127.0.0.2"),
            (10, 50, 5080, "127.0.0.4"),
        ]);
        let got = resolve("carrier.test", None, Transport::Udp, Some(ns));
        assert_eq!(h.join().unwrap(), "_sip._udp.carrier.test");
        let want: Vec<SocketAddr> = ["127.0.0.4:5080", "127.0.0.2:5070", "127.0.0.3:5090"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn tls_asks_for_sips_and_no_records_fall_back_to_a_records() {
        let (ns, h) = fake_dns(vec![]);
        let got = resolve("localhost", None, Transport::Tls, Some(ns));
        assert_eq!(h.join().unwrap(), "_sips._tcp.localhost");
        assert!(
            !got.is_empty() && got.iter().all(|a| a.port() == 5061),
            "{got:?}"
        );
        // An explicit port: no SRV query at all (no server is listening here).
        let got = resolve("localhost", Some(5070), Transport::Udp, None);
        assert!(
            got.iter().all(|a| a.port() == 5070 && a.ip().is_loopback()),
            "{got:?}"
        );
    }

    #[test]
    fn malformed_answers_are_ignored() {
        assert_eq!(decode_srv(&[0, 1, 0x81], 1), None);
        assert_eq!(
            decode_srv(&[0, 2, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0], 1),
            None,
            "another id"
        );
        let mut loop_ptr = vec![0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0];
        loop_ptr.extend_from_slice(&[0xc0, 12]);
        assert_eq!(decode_srv(&loop_ptr, 1), None, "a pointer loop ends");
        assert!(encode_query(1, &"x".repeat(64)).is_none());
    }
}

//! [`SipUri`]: the next-hop address of an outbound trunk (`outbound.uri`).
//!
//! This is a deliberately small reader of RFC 3261 §19.1 `sip:`/`sips:` URIs that name a host:
//! `sip:HOST[:PORT][;param[=value]]…`. The full codec lives in `sip-codec`; the configuration
//! only needs the host, the port and the `transport` parameter, and must not depend on the codec.

use std::fmt;

use crate::net::{Host, Transport};

/// A validated next-hop SIP URI such as `sip:192.0.2.10:5060;transport=udp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `true` for `sips:` (TLS required, RFC 3261 §19.1).
    pub secure: bool,
    /// Where requests go.
    pub host: Host,
    /// The port, if written.
    pub port: Option<u16>,
    /// The `transport` parameter, if written.
    pub transport: Option<Transport>,
    /// The URI as written in the file.
    raw: String,
}

/// Why a string is not a usable next-hop [`SipUri`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SipUriError {
    /// The scheme is not `sip:` or `sips:`.
    #[error("not a SIP URI")]
    Scheme,
    /// The URI names a user; the called number is written there per call.
    #[error("must not have a user part (the called number goes there; use outbound.prefix)")]
    User,
    /// The host is not an IP address or a domain name.
    #[error("bad host in SIP URI")]
    Host,
    /// The port is not a number from 1 to 65535.
    #[error("bad port in SIP URI")]
    Port,
    /// The `transport` parameter names something sbcd does not speak.
    #[error("unsupported transport {0:?} (expected udp, tcp or tls)")]
    Transport(String),
    /// `sips:` over UDP or TCP.
    #[error("sips: requires transport=tls")]
    SipsInsecure,
    /// URI headers (`?…`) make no sense for a next hop.
    #[error("must not have URI headers (?...)")]
    Headers,
}

impl SipUri {
    /// Parses and checks a next-hop URI.
    pub fn parse(s: &str) -> Result<Self, SipUriError> {
        let (secure, rest) = if let Some(rest) = strip_prefix_ignore_case(s, "sips:") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(s, "sip:") {
            (false, rest)
        } else {
            return Err(SipUriError::Scheme);
        };
        if rest.contains('?') {
            return Err(SipUriError::Headers);
        }
        let (hostport, params) = match rest.split_once(';') {
            Some((hp, params)) => (hp, Some(params)),
            None => (rest, None),
        };
        if hostport.contains('@') {
            return Err(SipUriError::User);
        }
        let (host, port) = split_host_port(hostport)?;
        let host = Host::parse(host).ok_or(SipUriError::Host)?;
        let mut transport = None;
        for param in params.into_iter().flat_map(|p| p.split(';')) {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if name.eq_ignore_ascii_case("transport") {
                let t = Transport::from_name(value)
                    .ok_or_else(|| SipUriError::Transport(value.to_owned()))?;
                transport = Some(t);
            }
        }
        if secure && transport.is_some_and(|t| t != Transport::Tls) {
            return Err(SipUriError::SipsInsecure);
        }
        Ok(Self {
            secure,
            host,
            port,
            transport,
            raw: s.to_owned(),
        })
    }

    /// The transport requests use: the `transport` parameter, else TLS for `sips:` and UDP
    /// for `sip:` (RFC 3263 §4.1 without NAPTR/SRV lookups).
    #[must_use]
    pub fn effective_transport(&self) -> Transport {
        match (self.transport, self.secure) {
            (Some(t), _) => t,
            (None, true) => Transport::Tls,
            (None, false) => Transport::Udp,
        }
    }

    /// The URI as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Splits `host[:port]`, where an IPv6 host is bracketed.
fn split_host_port(s: &str) -> Result<(&str, Option<u16>), SipUriError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(SipUriError::Host)?;
        let (host, rest) = s.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':').ok_or(SipUriError::Host)?)),
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(SipUriError::Port),
                Ok(port) => Some(port),
            }
        }
        Some(_) => return Err(SipUriError::Port),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_next_hops() {
        let u = SipUri::parse("sip:127.0.0.1:5080;transport=udp").unwrap();
        assert_eq!(u.host, Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(u.port, Some(5080));
        assert_eq!(u.effective_transport(), Transport::Udp);
        assert_eq!(u.as_str(), "sip:127.0.0.1:5080;transport=udp");

        let u = SipUri::parse("sips:[2001:db8::1]:5061").unwrap();
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.effective_transport(), Transport::Tls);

        let u = SipUri::parse("SIP:carrier.example.net;lr;transport=TCP").unwrap();
        assert_eq!(u.host, Host::Domain("carrier.example.net".into()));
        assert_eq!((u.port, u.effective_transport()), (None, Transport::Tcp));
        assert_eq!(SipUri::parse("sip:[::1]").unwrap().port, None);
    }

    #[test]
    fn refuses_what_is_not_a_next_hop() {
        let cases = [
            ("http://x", SipUriError::Scheme),
            ("127.0.0.1:5060", SipUriError::Scheme),
            ("tel:+15551234", SipUriError::Scheme),
            ("sip", SipUriError::Scheme),
            ("sip:", SipUriError::Host),
            ("sip:alice@example.net", SipUriError::User),
            ("sip:host_name", SipUriError::Host),
            ("sip:[::1", SipUriError::Host),
            ("sip:[::1]5060", SipUriError::Host),
            ("sip:h.test:0", SipUriError::Port),
            ("sip:h.test:65536", SipUriError::Port),
            ("sip:h.test:", SipUriError::Port),
            ("sip:h.test:50a", SipUriError::Port),
            (
                "sip:h.test;transport=sctp",
                SipUriError::Transport("sctp".into()),
            ),
            ("sips:h.test;transport=udp", SipUriError::SipsInsecure),
            ("sip:h.test?subject=x", SipUriError::Headers),
        ];
        for (input, want) in cases {
            assert_eq!(SipUri::parse(input), Err(want), "{input}");
        }
    }
}

//! Which trunk a request comes from, which trunks a call goes to, and sbcd's own addresses.

use std::net::SocketAddr;
use std::sync::Arc;

use sbc_config::net::{Host, Transport};
use sbc_config::{Config, Destination, TrunkId};
use trunks::ingress::{self, Ingress, Matched};
use trunks::Shared;

/// A configuration snapshot with each trunk's next hop resolved to a socket address.
///
/// Calls keep the snapshot they started with (`Arc<Routing>`), so a reload never changes the
/// trunks of a running call; new calls take the new one.
#[derive(Debug)]
pub struct Routing {
    /// The configuration.
    pub config: Config,
    /// Every resolved address of each trunk's `outbound.uri`, in the resolver's order.
    targets: Vec<Vec<SocketAddr>>,
    ingress: Ingress,
    /// Kept across reloads: nonces, nonce counts, Contact users.
    pub(crate) shared: Arc<Shared>,
}

impl Routing {
    /// Resolves every trunk's `outbound.uri` with `resolve` (host, the URI's port, transport ->
    /// addresses in the order to try them)
    /// and indexes the trunks' inbound checks. An IP host needs no resolver; a name the
    /// resolver cannot resolve leaves the trunk without a target (calls skip it, as a failed
    /// trunk). `shared` is the same for every snapshot of one process.
    pub fn new(
        config: Config,
        shared: Arc<Shared>,
        mut resolve: impl FnMut(&str, Option<u16>, Transport) -> Vec<SocketAddr>,
    ) -> Self {
        let targets = config
            .trunks
            .iter()
            .map(|t| match t.destination() {
                Some(Destination::Uri(uri)) => {
                    let transport = uri.effective_transport();
                    let port = uri.port.unwrap_or(match transport {
                        Transport::Tls => 5061,
                        _ => 5060,
                    });
                    match &uri.host {
                        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
                        // RFC 3263 §4.2: SRV only when the URI names no port.
                        Host::Domain(name) => resolve(name, uri.port, transport),
                    }
                }
                _ => Vec::new(),
            })
            .collect();
        let ingress = Ingress::new(&config, |id| {
            let t = config.trunk(id);
            let password = t
                .outbound
                .auth
                .as_ref()
                .map(|a| a.password.expose().as_bytes());
            Some(shared.contact_user(&t.name, password))
        });
        Self {
            config,
            targets,
            ingress,
            shared,
        }
    }

    /// The index of inbound checks.
    #[must_use]
    pub fn ingress(&self) -> &Ingress {
        &self.ingress
    }

    /// Where calls to this trunk go, and on which transport.
    #[must_use]
    pub fn target(&self, id: TrunkId) -> Option<(SocketAddr, Transport)> {
        let addr = *self.targets.get(id.index())?.first()?;
        Some((addr, self.transport(id)))
    }

    /// Every resolved address of the trunk's `outbound.uri` (a registrar's failover list).
    #[must_use]
    pub fn addresses(&self, id: TrunkId) -> &[SocketAddr] {
        self.targets.get(id.index()).map_or(&[], Vec::as_slice)
    }

    /// The transport of the trunk's `outbound.uri` (UDP without one).
    #[must_use]
    pub fn transport(&self, id: TrunkId) -> Transport {
        self.config
            .trunk(id)
            .outbound
            .uri
            .as_ref()
            .map_or(Transport::Udp, sbc_config::uri::SipUri::effective_transport)
    }

    /// The trunk a request belongs to ([`trunks::ingress`]).
    pub(crate) fn identify(&self, req: &ingress::Request<'_, '_, '_>) -> Option<Matched> {
        self.ingress.identify(req)
    }

    /// The outbound trunks of the first route from `from` whose pattern matches `number`.
    pub(crate) fn route(&self, from: TrunkId, number: &[u8]) -> Option<&[TrunkId]> {
        self.config
            .routes
            .iter()
            .find(|r| r.from == from && r.pattern.as_ref().is_none_or(|p| p.is_match_bytes(number)))
            .map(|r| r.to.as_slice())
    }
}

/// One of sbcd's signalling sockets, as written into Via and Contact.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    pub(crate) transport: Transport,
    pub(crate) addr: SocketAddr,
    /// `host:port` for Via sent-by.
    pub(crate) sent_by: Box<[u8]>,
    /// The Contact header value: `<sip:sbcd@host:port;transport=tcp>`.
    pub(crate) contact: Box<[u8]>,
    /// `UDP`, `TCP`, `TLS` for the Via.
    pub(crate) via_proto: &'static [u8],
}

/// sbcd's signalling sockets (the bound addresses, ports resolved) and the advertised address.
#[derive(Debug, Clone, Default)]
pub struct Locals {
    list: Vec<Local>,
}

impl Locals {
    /// `bound`: every listening socket; `advertise`: `sip.advertise` (written instead of the
    /// bound address into Via and Contact; needed when bound to 0.0.0.0 or behind NAT).
    #[must_use]
    pub fn new(bound: &[(Transport, SocketAddr)], advertise: Option<&Host>) -> Self {
        let list = bound
            .iter()
            .map(|&(transport, addr)| {
                let host = match advertise {
                    // An advertised IP of the other family does not describe this socket.
                    Some(Host::Ip(ip)) if ip.is_ipv6() == addr.is_ipv6() => {
                        Host::Ip(*ip).to_string()
                    }
                    Some(Host::Domain(d)) => d.clone(),
                    _ => Host::Ip(addr.ip()).to_string(),
                };
                let sent_by = format!("{host}:{}", addr.port());
                let contact = match transport {
                    Transport::Udp => format!("<sip:sbcd@{sent_by}>"),
                    Transport::Tcp => format!("<sip:sbcd@{sent_by};transport=tcp>"),
                    Transport::Tls => format!("<sips:sbcd@{sent_by}>"),
                };
                Local {
                    transport,
                    addr,
                    sent_by: sent_by.into_bytes().into(),
                    contact: contact.into_bytes().into(),
                    via_proto: match transport {
                        Transport::Udp => b"UDP",
                        Transport::Tcp => b"TCP",
                        Transport::Tls => b"TLS",
                    },
                }
            })
            .collect();
        Self { list }
    }

    /// `udp 127.0.0.1:5060` for each socket, as written into Via (for logs).
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        self.list
            .iter()
            .map(|l| format!("{} {}", l.transport, String::from_utf8_lossy(&l.sent_by)))
            .collect()
    }

    /// The socket to send to `dest` on `transport` from.
    pub(crate) fn find(&self, transport: Transport, dest: SocketAddr) -> Option<&Local> {
        self.list
            .iter()
            .find(|l| l.transport == transport && l.addr.is_ipv6() == dest.is_ipv6())
    }

    /// Is `addr` one of our own sockets (a route back to ourselves is a loop)?
    pub(crate) fn is_self(&self, transport: Transport, addr: SocketAddr) -> bool {
        self.list
            .iter()
            .any(|l| l.transport == transport && l.addr == addr)
    }
}

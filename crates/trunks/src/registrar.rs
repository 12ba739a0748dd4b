//! sbcd as the registrar of a trunk's PBX (`inbound.register = true`, RFC 3261 §10.3): the
//! bindings a PBX makes with REGISTER, shared by every shard, and where calls to the trunk go.
//!
//! One address-of-record per trunk: the trunk itself (its digest users authenticate the PBX).
//! A binding remembers the Contact URI and where the REGISTER came from (source address,
//! transport, connection): calls go to that source, so a PBX behind NAT is reached through the
//! mapping its REGISTER opened (RFC 3581 spirit; §10.3 lets the registrar keep any address).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use sbc_config::net::Transport;
use sip_codec::{HeaderKind, Message};

/// Shortest lifetime granted; shorter requests get 423 with this Min-Expires (§10.3 step 7).
pub const MIN_EXPIRES: u32 = 60;
/// Longest lifetime granted; longer requests are cut to it.
pub const MAX_EXPIRES: u32 = 3600;
/// The lifetime when the REGISTER names none (§10.2.1.1 leaves it to the registrar).
pub const DEFAULT_EXPIRES: u32 = 3600;
/// Most contacts one trunk may register; beyond, the oldest is dropped.
pub const MAX_CONTACTS: usize = 10;

/// One registered contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI as registered.
    pub contact: Box<[u8]>,
    /// Where the REGISTER came from: where calls go.
    pub source: SocketAddr,
    /// The transport it came on.
    pub transport: Transport,
    /// The connection it came on (TCP, TLS).
    pub conn: Option<u64>,
    /// When it lapses.
    pub expires_at: Instant,
    /// Call-ID and CSeq of the REGISTER that set it (§10.3 step 7: out-of-order updates).
    pub call_id: Box<[u8]>,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// When it was last set.
    pub updated: Instant,
    /// It answered the last keep-alive (or was just registered).
    pub reachable: bool,
}

/// What a REGISTER gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200: the bindings now held, with their remaining lifetime in seconds.
    Ok(Vec<(Box<[u8]>, u32)>),
    /// 423 Interval Too Brief, with this Min-Expires.
    IntervalTooBrief(u32),
    /// 400: the request is wrong (what for a debug line).
    Bad(&'static str),
    /// 500: an older REGISTER of the same Call-ID arrived after a newer one (§10.3 step 7).
    OutOfOrder,
}

/// Every trunk's bindings.
#[derive(Debug, Default)]
pub struct Bindings {
    map: DashMap<String, Vec<Binding>>,
}

/// Where the REGISTER came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// Source address.
    pub source: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// Connection.
    pub conn: Option<u64>,
}

fn parse_u32(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

impl Bindings {
    /// Applies an authenticated REGISTER for `trunk` (§10.3 steps 6–8).
    pub fn register(
        &self,
        trunk: &str,
        msg: &Message<'_, '_>,
        origin: Origin,
        now: Instant,
    ) -> Outcome {
        let call_id = msg.call_id().unwrap_or_default();
        let Ok(cseq) = msg.cseq().map(|c| c.seq) else {
            return Outcome::Bad("no CSeq");
        };
        let header_expires = match msg.header(HeaderKind::Expires) {
            Some(h) => match parse_u32(h.value) {
                Some(v) => Some(v),
                None => return Outcome::Bad("Expires is not a number"),
            },
            None => None,
        };
        let contacts = msg.contacts();
        let mut entry = self.map.entry(trunk.to_owned()).or_default();
        let list = entry.value_mut();
        list.retain(|b| b.expires_at > now);
        if contacts.is_star() {
            // §10.3 step 6: `*` only with Expires: 0, alone.
            if header_expires != Some(0) || contacts.iter().count() > 0 {
                return Outcome::Bad("Contact: * needs Expires: 0 and no other contact");
            }
            list.clear();
            return Outcome::Ok(Vec::new());
        }
        let mut changes: Vec<(Box<[u8]>, u32)> = Vec::new();
        for c in contacts.iter() {
            let Ok(c) = c else {
                return Outcome::Bad("a Contact does not parse");
            };
            let expires = match c.expires() {
                Some(Ok(v)) => v,
                Some(Err(_)) => return Outcome::Bad("a Contact's expires is not a number"),
                None => header_expires.unwrap_or(DEFAULT_EXPIRES),
            };
            if expires != 0 && expires < MIN_EXPIRES {
                return Outcome::IntervalTooBrief(MIN_EXPIRES);
            }
            if let Some(b) = list.iter().find(|b| b.contact.eq_ignore_ascii_case(c.uri)) {
                // Lower only: an equal CSeq is the same request again (idempotent).
                if *b.call_id == *call_id && cseq < b.cseq {
                    return Outcome::OutOfOrder;
                }
            }
            changes.push((c.uri.into(), expires.min(MAX_EXPIRES)));
        }
        for (contact, expires) in changes {
            list.retain(|b| !b.contact.eq_ignore_ascii_case(&contact));
            if expires == 0 {
                continue;
            }
            list.push(Binding {
                contact,
                source: origin.source,
                transport: origin.transport,
                conn: origin.conn,
                expires_at: now + Duration::from_secs(u64::from(expires)),
                call_id: call_id.into(),
                cseq,
                updated: now,
                reachable: true,
            });
            if list.len() > MAX_CONTACTS {
                list.remove(0);
            }
        }
        Outcome::Ok(
            list.iter()
                .map(|b| {
                    let left = b.expires_at.saturating_duration_since(now).as_secs();
                    (b.contact.clone(), u32::try_from(left).unwrap_or(u32::MAX))
                })
                .collect(),
        )
    }

    /// Where a call to `trunk` goes: the most recently registered live binding, preferring
    /// one that answers keep-alives.
    #[must_use]
    pub fn lookup(&self, trunk: &str, now: Instant) -> Option<Binding> {
        let list = self.map.get(trunk)?;
        let live = || list.iter().filter(|b| b.expires_at > now);
        live()
            .filter(|b| b.reachable)
            .max_by_key(|b| b.updated)
            .or_else(|| live().max_by_key(|b| b.updated))
            .cloned()
    }

    /// Every live binding of `trunk` (keep-alives, status).
    #[must_use]
    pub fn all(&self, trunk: &str, now: Instant) -> Vec<Binding> {
        self.map
            .get(trunk)
            .map(|l| l.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    /// Records whether `contact` of `trunk` answered a keep-alive. Returns true when that
    /// changed its reachability.
    pub fn set_reachable(&self, trunk: &str, contact: &[u8], reachable: bool) -> bool {
        let Some(mut list) = self.map.get_mut(trunk) else {
            return false;
        };
        match list
            .iter_mut()
            .find(|b| b.contact.eq_ignore_ascii_case(contact))
        {
            Some(b) if b.reachable != reachable => {
                b.reachable = reachable;
                true
            }
            _ => false,
        }
    }

    /// Forgets lapsed bindings.
    pub fn prune(&self, now: Instant) {
        self.map.retain(|_, l| {
            l.retain(|b| b.expires_at > now);
            !l.is_empty()
        });
    }
}

//! Media anchoring in calls: every SDP that crosses sbcd (offer or answer, in INVITE, 18x,
//! 2xx, ACK, re-INVITE, UPDATE, PRACK) is rewritten so that each leg sends its media to sbcd,
//! and the relay ([`rtp_relay`]) is told where each leg's media should go.
//!
//! Per `m=` line a call holds a stream: one RTP/RTCP port pair facing leg A and one facing
//! leg B, both from the same forwarding worker, and one relay component for RTP (plus one for
//! RTCP unless `a=rtcp-mux`). The SDP a leg sends updates that leg's expected address in the
//! relay; the copy the other leg receives names sbcd's address and the pair facing it, every
//! other byte unchanged ([`sip_codec::sdp::Sdp::rewrite`]). A rejected stream (port 0) stays 0.
//! A held stream (sendonly, inactive, or `c=0.0.0.0`) gets the longer hold timeout.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rtp_relay::control::{Command, ComponentId};
use rtp_relay::latch::LatchPolicy;
use rtp_relay::ports::{PortPair, PortPool};
use rtp_relay::session::{Endpoint, Leg};
use rtp_relay::stats::Direction as Counters;
use sip_codec::sdp::{Direction, Rewrite, Sdp, MAX_MEDIA};
use sip_codec::{HeaderKind, Message};

use crate::ids::{Side, Token};

/// How a shard anchors media (`ShardOptions::media`; None: SDP passes unchanged).
#[derive(Debug, Clone)]
pub struct MediaSetup {
    /// The address written into SDP (`media.advertise`, else `media.listen`).
    pub advertise: IpAddr,
    /// This shard's RTP ports, per forwarding worker (a stream's two pairs come from one).
    pub pairs_by_worker: Vec<Vec<u16>>,
    /// No media on both legs for this long: hang up (`media.idle_timeout_secs`).
    pub idle_timeout: Duration,
    /// The same for a held call.
    pub hold_timeout: Duration,
}

/// A shard's port pools and what its calls ask of the relay.
#[derive(Debug)]
pub(crate) struct MediaPools {
    advertise: IpAddr,
    pools: Vec<PortPool>,
    next: usize,
    idle: Duration,
    hold: Duration,
    /// Ended calls whose components have not all reported their counters, by call token.
    ending: HashMap<u64, Tally>,
    /// Calls closed so far (ages `ending` entries).
    closes: u64,
}

/// Calls closed after which a call whose counters never all came back is forgotten (the relay
/// drops events only when the control plane is overloaded).
const TALLY_HORIZON: u64 = 4096;

/// One ended call's media counters, summed over its components as they report.
#[derive(Debug)]
struct Tally {
    trunks: [Option<String>; 2],
    from: [Counters; 2],
    streams: usize,
    pending: usize,
    closed_at: u64,
}

/// The media a call carried, once all its components reported ([`crate::Event::MediaEnded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTotals {
    /// The trunk of leg A and of leg B (None: the call never reached one).
    pub trunks: [Option<String>; 2],
    /// What leg A sent (forwarded to B), and what leg B sent, over all streams.
    pub from: [Counters; 2],
    /// `m=` lines relayed.
    pub streams: usize,
}

impl MediaPools {
    pub(crate) fn new(setup: &MediaSetup) -> Self {
        let pools = setup
            .pairs_by_worker
            .iter()
            .map(|ports| PortPool::from_pairs(ports.iter().copied()).unwrap_or_else(|_| empty()))
            .collect();
        Self {
            advertise: setup.advertise,
            pools,
            next: 0,
            idle: setup.idle_timeout,
            hold: setup.hold_timeout,
            ending: HashMap::new(),
            closes: 0,
        }
    }

    /// The idle and hold limits of a reloaded config: for streams opened or put on hold or
    /// resumed from now on (running streams keep the limit the relay was given).
    pub(crate) fn set_timeouts(&mut self, idle: Duration, hold: Duration) {
        self.idle = idle;
        self.hold = hold;
    }

    /// Waits for `components` counters of the call `token` (just closed).
    fn expect(
        &mut self,
        token: Token,
        trunks: [Option<String>; 2],
        streams: usize,
        components: usize,
    ) {
        self.closes += 1;
        if self.ending.len() >= TALLY_HORIZON as usize {
            let horizon = self.closes.saturating_sub(TALLY_HORIZON);
            self.ending.retain(|_, t| t.closed_at >= horizon);
        }
        self.ending.insert(
            token.pack(0),
            Tally {
                trunks,
                from: [Counters::default(); 2],
                streams,
                pending: components,
                closed_at: self.closes,
            },
        );
    }

    /// A component of an ended call reported its counters: the call's totals once it was the
    /// last one.
    pub(crate) fn component_closed(
        &mut self,
        id: ComponentId,
        from: &[Counters; 2],
    ) -> Option<MediaTotals> {
        let (token, _) = Token::unpack(id);
        let key = token.pack(0);
        let tally = self.ending.get_mut(&key)?;
        tally.from[0].add(&from[0]);
        tally.from[1].add(&from[1]);
        tally.pending = tally.pending.saturating_sub(1);
        if tally.pending > 0 {
            return None;
        }
        let t = self.ending.remove(&key)?;
        Some(MediaTotals {
            trunks: t.trunks,
            from: t.from,
            streams: t.streams,
        })
    }

    /// Two pairs of one worker, taking workers in turn. None: the range is exhausted.
    fn allocate_two(&mut self) -> Option<[PortPair; 2]> {
        let n = self.pools.len();
        for k in 0..n {
            let w = (self.next + k) % n;
            if self.pools[w].available() >= 2 {
                self.next = (w + 1) % n;
                let a = self.pools[w].allocate()?;
                let b = self.pools[w].allocate()?;
                return Some([a, b]);
            }
        }
        None
    }

    fn release(&mut self, pair: PortPair) {
        for p in &mut self.pools {
            if p.release(pair).is_ok() {
                return;
            }
        }
    }

    /// Pairs in use (both legs of every stream).
    pub(crate) fn in_use(&self) -> usize {
        self.pools.iter().map(PortPool::in_use).sum()
    }
}

fn empty() -> PortPool {
    PortPool::from_pairs([]).unwrap_or_else(|_| unreachable!("an empty pool is valid"))
}

/// One `m=` line's anchoring.
#[derive(Debug, Clone, Copy)]
struct Stream {
    /// The pair facing leg A, and the pair facing leg B.
    pairs: [PortPair; 2],
    rtcp: bool,
    /// The idle limit last given to the relay.
    idle: Option<Duration>,
}

/// Why an SDP could not be anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaError {
    /// The body is not SDP sbcd can read (488 for an offer).
    Unreadable,
    /// No port pairs left (503).
    Exhausted,
}

/// The media of one call.
#[derive(Debug, Default)]
pub(crate) struct CallMedia {
    streams: [Option<Stream>; MAX_MEDIA],
    /// Closed: nothing more is opened.
    closed: bool,
}

fn leg_of(side: Side) -> Leg {
    match side {
        Side::A => Leg::A,
        Side::B => Leg::B,
    }
}

fn id(token: Token, stream: usize, rtcp: bool) -> ComponentId {
    token.pack((stream * 2 + usize::from(rtcp)) as u16)
}

/// `a=ssrc:<id> cname:<value>` (RFC 5576) often carries the sender's SIP URI or address
/// (`cname:sip:user@192.168.1.10:5062`): the value is replaced by one derived from the SSRC,
/// which stays unique per stream (RFC 7022 asks for uniqueness, not for the address).
fn scrub_cname(body: Vec<u8>) -> Vec<u8> {
    const KEY: &[u8] = b" cname:";
    if !body.windows(KEY.len()).any(|w| w.eq_ignore_ascii_case(KEY)) {
        return body;
    }
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        let cname_at = line
            .windows(KEY.len())
            .position(|w| w.eq_ignore_ascii_case(KEY));
        match (line.strip_prefix(b"a=ssrc:"), cname_at) {
            (Some(rest), Some(at)) => {
                let id_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let eol = if line.ends_with(b"\r\n") {
                    &b"\r\n"[..]
                } else if line.ends_with(b"\n") {
                    &b"\n"[..]
                } else {
                    &b""[..]
                };
                out.extend_from_slice(&line[..at + KEY.len()]);
                out.extend_from_slice(b"sbcd-");
                out.extend_from_slice(&rest[..id_len]);
                out.extend_from_slice(eol);
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// Is this message's body SDP?
pub(crate) fn is_sdp(msg: &Message<'_, '_>) -> bool {
    !msg.body.is_empty()
        && msg.header(HeaderKind::ContentType).is_none_or(|h| {
            let v = h.value;
            v.len() >= 15 && v[..15].eq_ignore_ascii_case(b"application/sdp")
        })
}

impl CallMedia {
    /// `body`, an SDP that leg `from` sent, rewritten for the other leg; the relay learns
    /// `from`'s addresses. Streams are opened on first sight.
    pub(crate) fn relay_sdp(
        &mut self,
        pools: &mut MediaPools,
        out: &mut std::collections::VecDeque<Command>,
        token: Token,
        from: Side,
        policy: LatchPolicy,
        body: &[u8],
    ) -> Result<Vec<u8>, MediaError> {
        let sdp = Sdp::parse(body).map_err(|_| MediaError::Unreadable)?;
        let to = from.other();
        let session_hold = matches!(
            sdp.direction(),
            Some(Direction::SendOnly | Direction::Inactive)
        );
        let mut ports = [None; MAX_MEDIA];
        let mut rtcp_ports = [None; MAX_MEDIA];
        for (i, m) in sdp.media().enumerate() {
            if m.port == 0 || self.closed {
                continue;
            }
            let stream = match self.streams[i] {
                Some(s) => s,
                None => {
                    let pairs = pools.allocate_two().ok_or(MediaError::Exhausted)?;
                    let s = Stream {
                        pairs,
                        rtcp: !m.rtcp_mux(),
                        idle: None,
                    };
                    for rtcp in [false, true] {
                        if rtcp && !s.rtcp {
                            continue;
                        }
                        let port = |p: PortPair| if rtcp { p.rtcp() } else { p.rtp() };
                        out.push_back(Command::Open {
                            id: id(token, i, rtcp),
                            ports: [port(pairs[0]), port(pairs[1])],
                            a: Endpoint {
                                expected: None,
                                policy,
                            },
                            b: Endpoint {
                                expected: None,
                                policy,
                            },
                            idle: None,
                        });
                    }
                    self.streams[i] = Some(s);
                    s
                }
            };
            // Where `from` wants this stream: its c= (media or session level) and m= port.
            let conn = m.effective_connection().and_then(|c| c.ip());
            let held = session_hold
                || matches!(m.direction(), Direction::SendOnly | Direction::Inactive)
                || conn.is_some_and(|ip| ip.is_unspecified());
            let idle = Some(if held { pools.hold } else { pools.idle });
            if let Some(s) = self.streams[i].as_mut() {
                s.idle = idle;
            }
            let rtp_addr = conn.map(|ip| SocketAddr::new(ip, m.port));
            let rtcp_addr = match m.rtcp() {
                Some(r) => {
                    let ip = r.connection.and_then(|c| c.ip()).or(conn);
                    ip.map(|ip| SocketAddr::new(ip, r.port))
                }
                None => conn.map(|ip| SocketAddr::new(ip, m.port.wrapping_add(1))),
            };
            let a_port = stream.pairs[0];
            out.push_back(Command::Update {
                id: id(token, i, false),
                port: a_port.rtp(),
                leg: leg_of(from),
                expected: rtp_addr,
                policy,
                idle,
            });
            if stream.rtcp {
                out.push_back(Command::Update {
                    id: id(token, i, true),
                    port: a_port.rtcp(),
                    leg: leg_of(from),
                    expected: rtcp_addr,
                    policy,
                    idle: None,
                });
            }
            let facing = stream.pairs[to.index()];
            ports[i] = Some(facing.rtp());
            rtcp_ports[i] = stream.rtcp.then_some(facing.rtcp());
        }
        let mut body_out = Vec::with_capacity(body.len() + 32);
        sdp.rewrite(
            &Rewrite {
                address: pools.advertise,
                ports: &ports,
                rtcp_ports: &rtcp_ports,
            },
            &mut body_out,
        )
        .map_err(|_| MediaError::Unreadable)?;
        Ok(scrub_cname(body_out))
    }

    /// Leg B is being tried at another trunk (failover): forget where the previous one wanted
    /// media, so that nothing more goes there until the new trunk's SDP says where.
    pub(crate) fn forget_b(&mut self, out: &mut std::collections::VecDeque<Command>, token: Token) {
        for (i, s) in self.streams.iter().enumerate() {
            let Some(s) = s else { continue };
            for rtcp in [false, true] {
                if rtcp && !s.rtcp {
                    continue;
                }
                let port = if rtcp {
                    s.pairs[0].rtcp()
                } else {
                    s.pairs[0].rtp()
                };
                out.push_back(Command::Update {
                    id: id(token, i, rtcp),
                    port,
                    leg: Leg::B,
                    expected: None,
                    policy: LatchPolicy::Strict,
                    idle: if rtcp { None } else { s.idle },
                });
            }
        }
    }

    /// Stops relaying and gives the ports back (the call is over); the components' counters
    /// come back as the relay closes them ([`MediaPools::component_closed`]), summed under
    /// `trunks` (leg A's and leg B's).
    pub(crate) fn close(
        &mut self,
        pools: &mut MediaPools,
        out: &mut std::collections::VecDeque<Command>,
        token: Token,
        trunks: [Option<String>; 2],
    ) {
        if self.closed {
            return;
        }
        self.closed = true;
        let (mut streams, mut components) = (0, 0);
        for (i, s) in self.streams.iter_mut().enumerate() {
            let Some(stream) = s.take() else { continue };
            streams += 1;
            components += 1;
            out.push_back(Command::Close {
                id: id(token, i, false),
                port: stream.pairs[0].rtp(),
            });
            if stream.rtcp {
                components += 1;
                out.push_back(Command::Close {
                    id: id(token, i, true),
                    port: stream.pairs[0].rtcp(),
                });
            }
            pools.release(stream.pairs[0]);
            pools.release(stream.pairs[1]);
        }
        if components > 0 {
            pools.expect(token, trunks, streams, components);
        }
    }
}

//! A call: the inbound leg (side A), the outbound leg (side B), and the transactions that
//! relay requests and responses between them.
//!
//! Every request sbcd receives in a call gets a server transaction on its leg; every request
//! sbcd sends gets a client transaction on the other. A relayed request links the two, so the
//! final response of the client transaction becomes the response of the server transaction.
//! sbcd answers some requests itself instead of relaying them: BYE (200 at once, then a BYE on
//! the other leg), CANCEL (§9.2), PRACK for reliable provisionals it received (RFC 3262 §4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_config::TrunkId;
use sip_codec::{HeaderKind, Message, Method, StartLine, Uri, Writer, EMPTY_HEADER};
use sip_txn::{
    ClientInvite, ClientNonInvite, Output, ServerInvite, ServerInviteState, ServerNonInvite,
};
use tracing::debug;

use crate::auth;
use crate::build::{self, ALLOW, SUPPORTED};
use crate::counters::TxnTimer;
use crate::ids::{self, Side, Token};
use crate::leg::{Leg, Peer};
use crate::media::{self, CallMedia, MediaError};
use crate::routing::Routing;
use crate::shard::Ctx;
use crate::{CallResult, Event, Incoming};
use rtp_relay::latch::LatchPolicy;

/// What the shard hands over to start a call.
#[derive(Debug)]
pub(crate) struct NewCall {
    pub(crate) token: Token,
    pub(crate) routing: Arc<Routing>,
    pub(crate) from_trunk: TrunkId,
    pub(crate) number: Box<[u8]>,
    pub(crate) targets: Vec<TrunkId>,
    pub(crate) max_forwards: u32,
    pub(crate) inbound_key: Box<[u8]>,
    pub(crate) peer: Peer,
    pub(crate) invite: Bytes,
    /// The call counted against its trunk's `max_calls`, given back when it ends.
    pub(crate) slot: trunks::guard::CallSlot,
}

#[derive(Debug)]
enum ServerMachine {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

/// A reliable provisional response, retransmitted until its PRACK (RFC 3262 §3).
#[derive(Debug)]
struct Reliable {
    rseq: u32,
    cseq: u32,
    bytes: Bytes,
    peer: Peer,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// 2xx retransmission by the UAS core until the ACK (§13.3.1.4).
#[derive(Debug)]
struct Retx {
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

#[derive(Debug)]
struct ServerTx {
    id: u16,
    side: Side,
    method: Method,
    cseq: u32,
    branch: Box<[u8]>,
    machine: ServerMachine,
    /// Via…CSeq lines of every response (build::response_head).
    head: Box<[u8]>,
    peer: Peer,
    last: Option<Bytes>,
    retx: Option<Retx>,
    /// The client transaction on the other leg that relays this request.
    link: Option<u16>,
    done: bool,
}

#[derive(Debug)]
enum ClientMachine {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

/// One of the two server machines; the call drives both alike.
impl ServerMachine {
    /// An INVITE with no final response yet.
    fn invite_proceeding(&self) -> bool {
        matches!(self, Self::Invite(m) if m.state() == ServerInviteState::Proceeding)
    }

    fn poll_output(&mut self) -> Option<Output> {
        match self {
            Self::Invite(m) => m.poll_output(),
            Self::NonInvite(m) => m.poll_output(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Invite(m) => m.poll_timeout(),
            Self::NonInvite(m) => m.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Invite(m) => m.handle_timeout(now),
            Self::NonInvite(m) => m.handle_timeout(now),
        }
    }

    fn handle_request_retransmission(&mut self, now: Instant) {
        match self {
            Self::Invite(m) => m.handle_request_retransmission(now),
            Self::NonInvite(m) => m.handle_request_retransmission(now),
        }
    }

    fn handle_transport_error(&mut self, now: Instant) {
        match self {
            Self::Invite(m) => m.handle_transport_error(now),
            Self::NonInvite(m) => m.handle_transport_error(now),
        }
    }
}

/// One of the two client machines; the call drives both alike.
impl ClientMachine {
    /// An INVITE with no final response yet.
    fn invite_pending(&self) -> bool {
        use sip_txn::ClientInviteState as S;
        matches!(self, Self::Invite(m) if matches!(m.state(), S::Calling | S::Proceeding))
    }

    fn new(method: Method, now: Instant, timers: sip_txn::Timers, peer: Peer) -> Self {
        if method == Method::Invite {
            Self::Invite(ClientInvite::new(now, timers, peer.reliability()))
        } else {
            Self::NonInvite(ClientNonInvite::new(now, timers, peer.reliability()))
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        match self {
            Self::Invite(m) => m.poll_output(),
            Self::NonInvite(m) => m.poll_output(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Invite(m) => m.poll_timeout(),
            Self::NonInvite(m) => m.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Invite(m) => m.handle_timeout(now),
            Self::NonInvite(m) => m.handle_timeout(now),
        }
    }

    fn handle_response(&mut self, now: Instant, code: u16) {
        match self {
            Self::Invite(m) => m.handle_response(now, code),
            Self::NonInvite(m) => m.handle_response(now, code),
        }
    }

    fn handle_transport_error(&mut self, now: Instant) {
        match self {
            Self::Invite(m) => m.handle_transport_error(now),
            Self::NonInvite(m) => m.handle_transport_error(now),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The outbound INVITE of the call (one per trunk tried).
    Initial,
    /// Relays the request of this server transaction.
    Relay(u16),
    /// sbcd's own request: BYE, CANCEL, PRACK, ACK-less housekeeping.
    Own,
}

#[derive(Debug)]
struct ClientTx {
    id: u16,
    side: Side,
    method: Method,
    cseq: u32,
    branch: Box<[u8]>,
    machine: ClientMachine,
    request: Bytes,
    peer: Peer,
    purpose: Purpose,
    /// The INVITE carried an offer: a 2xx is ACKed at once. Without one the answer comes in
    /// the other leg's ACK (delayed offer), and so must this leg's ACK.
    had_offer: bool,
    /// The ACK sent for a 2xx, sent again for each retransmitted 2xx (§13.2.2.4).
    ack: Option<Bytes>,
    /// A 2xx arrived; its ACK waits for the other leg's ACK (delayed offer).
    ack_waits: bool,
    /// A CANCEL is owed once a provisional response arrives (§9.1).
    cancel_pending: bool,
    /// A provisional response arrived.
    provisional: bool,
    /// The request carried credentials that answered a challenge to this very request (a
    /// second challenge then means a wrong password).
    had_credentials: bool,
    /// How many times this request was re-sent to answer a challenge.
    auth_tries: u8,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Trying trunks; the inbound INVITE has no final response yet.
    Setup,
    /// The inbound leg got a 2xx.
    Answered,
    /// Torn down or failed; transactions finish, then the call is dropped.
    Ended,
}

/// One call. See the module docs.
#[derive(Debug)]
pub(crate) struct Call {
    token: Token,
    slot: trunks::guard::CallSlot,
    /// When the caller's INVITE arrived (call setup time).
    started: Instant,
    routing: Arc<Routing>,
    from_trunk: TrunkId,
    to_trunk: Option<TrunkId>,
    number: Box<[u8]>,
    targets: Vec<TrunkId>,
    next_target: usize,
    last_failure: Option<(u16, Box<[u8]>)>,
    max_forwards: u32,
    inbound_key: Box<[u8]>,
    invite: Bytes,
    phase: Phase,
    legs: [Leg; 2],
    /// The B leg exists (an INVITE went out on it).
    b_started: bool,
    servers: Vec<ServerTx>,
    clients: Vec<ClientTx>,
    next_id: u16,
    /// The server transaction of the inbound INVITE.
    a_invite: u16,
    /// The client transaction of the outbound INVITE to the current trunk.
    b_invite: Option<u16>,
    /// The last reliable provisional acknowledged on side B (RFC 3262 RSeq).
    b_rseq: Option<u32>,
    ring_deadline: Option<Instant>,
    /// The caller required reliable provisional responses (RFC 3262).
    a_100rel: bool,
    /// The RSeq of the last reliable provisional sent on side A.
    a_rseq: u32,
    /// The reliable provisional on side A still waiting for its PRACK.
    a_reliable: Option<Reliable>,
    scheduled: Option<Instant>,
    ended_event: bool,
    result: Option<CallResult>,
    /// Anchored media streams.
    media: CallMedia,
}

fn trunk_on(from: TrunkId, to: Option<TrunkId>, side: Side) -> Option<TrunkId> {
    match side {
        Side::A => Some(from),
        Side::B => to,
    }
}

/// The name of `trunk`'s `outbound.header`, if it has one.
fn header_name(routing: &Routing, trunk: Option<TrunkId>) -> Option<&[u8]> {
    let h = routing.config.trunk(trunk?).outbound.header.as_ref()?;
    Some(h.name.as_bytes())
}

/// `<sip:x@h>;p` -> `sip:x@h` (a name-addr's URI).
fn strip_angle(name_addr: &[u8]) -> &[u8] {
    match (
        name_addr.iter().position(|&b| b == b'<'),
        name_addr.iter().position(|&b| b == b'>'),
    ) {
        (Some(a), Some(b)) if a < b => &name_addr[a + 1..b],
        _ => name_addr,
    }
}

fn side_of_leg(legs: &mut [Leg; 2], side: Side) -> &mut Leg {
    &mut legs[side.index()]
}

fn cseq_of(msg: &Message<'_, '_>) -> Option<(u32, Method)> {
    msg.cseq().ok().map(|c| (c.seq, c.method_kind()))
}

fn has_100rel(msg: &Message<'_, '_>, kind: HeaderKind) -> bool {
    msg.has_token(kind, b"100rel")
}

impl Call {
    /// Accepts the inbound INVITE: 100 Trying, then the first trunk. `Err(code)` refuses it.
    pub(crate) fn start(
        now: Instant,
        ctx: &mut Ctx,
        new: NewCall,
        msg: &Message<'_, '_>,
    ) -> Result<Self, u16> {
        let from = msg.from().map_err(|_| 400u16)?;
        let to = msg.to().map_err(|_| 400u16)?;
        let (cseq, _) = cseq_of(msg).ok_or(400u16)?;
        let branch = msg.top_via().ok().and_then(|v| v.branch()).ok_or(400u16)?;
        let contact = msg
            .contacts()
            .iter()
            .next()
            .and_then(Result::ok)
            .ok_or(400u16)?;
        // RFC 3262: a caller that requires 100rel gets every provisional reliably.
        let a_100rel = has_100rel(msg, HeaderKind::Require);
        let mut local_tag = Vec::with_capacity(32);
        ids::write_tag(&mut local_tag, new.token, Side::A, ctx.rng.next_u32());
        let mut local_uri = Vec::with_capacity(64);
        build::name_addr_without_tag(&to, &mut local_uri);
        let mut remote_uri = Vec::with_capacity(64);
        build::name_addr_without_tag(&from, &mut remote_uri);
        let a = Leg {
            call_id: msg.call_id().unwrap_or_default().into(),
            local_tag: local_tag.into(),
            remote_tag: from.tag().map(Into::into),
            local_uri: local_uri.into(),
            remote_uri: remote_uri.into(),
            local_seq: 0,
            remote_seq: Some(cseq),
            target: contact.uri.into(),
            routes: msg
                .values(HeaderKind::RecordRoute)
                .map(Into::into)
                .collect(),
            peer: new.peer,
            ended: false,
            confirmed: false,
            auth: None,
        };
        let b = Leg {
            call_id: Box::default(),
            local_tag: Box::default(),
            remote_tag: None,
            local_uri: Box::default(),
            remote_uri: Box::default(),
            local_seq: 0,
            remote_seq: None,
            target: Box::default(),
            routes: Vec::new(),
            peer: new.peer,
            ended: false,
            confirmed: false,
            auth: None,
        };
        let mut call = Self {
            slot: new.slot,
            started: now,
            token: new.token,
            routing: new.routing,
            from_trunk: new.from_trunk,
            to_trunk: None,
            number: new.number,
            targets: new.targets,
            next_target: 0,
            last_failure: None,
            max_forwards: new.max_forwards,
            inbound_key: new.inbound_key,
            invite: new.invite,
            phase: Phase::Setup,
            legs: [a, b],
            b_started: false,
            servers: Vec::new(),
            clients: Vec::new(),
            next_id: 0,
            a_invite: 0,
            b_invite: None,
            b_rseq: None,
            ring_deadline: None,
            a_100rel,
            a_rseq: ctx.rng.next_u32() & 0xffff,
            a_reliable: None,
            scheduled: None,
            ended_event: false,
            result: None,
            media: CallMedia::default(),
        };
        // An offer sbcd cannot anchor is refused before anything goes out: 488 for SDP it
        // cannot read, 503 when the media ports are exhausted.
        if let Some(pools) = ctx.media.as_mut() {
            if media::is_sdp(msg) {
                let policy = call.latch_policy(Side::A);
                let r = call.media.relay_sdp(
                    pools,
                    &mut ctx.media_out,
                    call.token,
                    Side::A,
                    policy,
                    msg.body,
                );
                if let Err(e) = r {
                    let trunks = call.media_trunks();
                    call.media
                        .close(pools, &mut ctx.media_out, call.token, trunks);
                    return Err(match e {
                        MediaError::Unreadable => 488,
                        MediaError::Exhausted => 503,
                    });
                }
            }
        }
        let id = call.add_server(
            now,
            ctx,
            Side::A,
            msg,
            Method::Invite,
            cseq,
            branch,
            new.peer,
        );
        call.a_invite = id;
        call.respond(now, ctx, id, 100, b"Trying", None);
        call.try_next_trunk(now, ctx);
        Ok(call)
    }

    pub(crate) fn gen(&self) -> u32 {
        self.token.gen
    }

    pub(crate) fn inbound_key(&self) -> &[u8] {
        &self.inbound_key
    }

    pub(crate) fn scheduled(&self) -> Option<Instant> {
        self.scheduled
    }

    pub(crate) fn set_scheduled(&mut self, at: Option<Instant>) {
        self.scheduled = at;
    }

    /// Over, and no transaction left to absorb retransmissions.
    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Ended && self.servers.is_empty() && self.clients.is_empty()
    }

    fn new_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    #[allow(clippy::too_many_arguments)]
    fn add_server(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        side: Side,
        msg: &Message<'_, '_>,
        method: Method,
        cseq: u32,
        branch: &[u8],
        peer: Peer,
    ) -> u16 {
        let id = self.new_id();
        let mut head = Vec::with_capacity(400);
        let tag = self.legs[side.index()].local_tag.clone();
        if build::response_head(msg, peer.addr, Some(&tag), &mut head).is_none() {
            head.clear();
        }
        let machine = if method == Method::Invite {
            ServerMachine::Invite(ServerInvite::new(now, ctx.timers, peer.reliability()))
        } else {
            ServerMachine::NonInvite(ServerNonInvite::new(now, ctx.timers, peer.reliability()))
        };
        self.servers.push(ServerTx {
            id,
            side,
            method,
            cseq,
            branch: branch.into(),
            machine,
            head: head.into(),
            peer,
            last: None,
            retx: None,
            link: None,
            done: false,
        });
        id
    }

    fn server(&mut self, id: u16) -> Option<&mut ServerTx> {
        self.servers.iter_mut().find(|s| s.id == id)
    }

    fn client(&mut self, id: u16) -> Option<&mut ClientTx> {
        self.clients.iter_mut().find(|c| c.id == id)
    }

    /// Sends a response on a server transaction. `extra` adds headers and body from a message
    /// of the other leg (a relayed response).
    fn respond(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u16,
        code: u16,
        reason: &[u8],
        relayed: Option<&Message<'_, '_>>,
    ) {
        self.respond_with(now, ctx, id, code, reason, relayed, &[]);
    }

    /// [`respond`](Self::respond) with headers of sbcd's own (Require, RSeq…).
    #[allow(clippy::too_many_arguments)]
    fn respond_with(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u16,
        code: u16,
        reason: &[u8],
        relayed: Option<&Message<'_, '_>>,
        own: &[(HeaderKind, &[u8])],
    ) {
        let side = self.servers.iter().find(|s| s.id == id).map(|s| s.side);
        let anchored = match (side, relayed) {
            (Some(side), Some(m)) => self.media_body(ctx, side.other(), m),
            _ => None,
        };
        let t1 = ctx.timers.t1;
        // §12.1.1: a response that creates the dialog carries the request's Record-Route, so
        // that the caller's proxies stay on the path (the ACK and BYE come through them).
        let record_route: &[Box<[u8]>] = if id == self.a_invite {
            &self.legs[Side::A.index()].routes
        } else {
            &[]
        };
        let Some(s) = self.servers.iter_mut().find(|s| s.id == id) else {
            return;
        };
        if s.head.is_empty() || s.done {
            return;
        }
        let dialog_creating =
            matches!(s.method, Method::Invite | Method::Update) && code > 100 && code < 300;
        let local = ctx.locals.find(s.peer.transport, s.peer.addr);
        let bytes = build::response(
            code,
            reason,
            &s.head,
            |w| {
                if dialog_creating {
                    for rr in record_route {
                        w.header(HeaderKind::RecordRoute, rr);
                    }
                    if let Some(l) = local {
                        w.header(HeaderKind::Contact, &l.contact);
                    }
                }
                if (200..300).contains(&code)
                    && matches!(s.method, Method::Invite | Method::Options)
                {
                    w.header(HeaderKind::Allow, ALLOW)
                        .header(HeaderKind::Supported, SUPPORTED);
                }
                for (kind, value) in own {
                    w.header(*kind, value);
                }
                if let Some(m) = relayed {
                    build::copy_crossing(w, m);
                }
            },
            anchored
                .as_deref()
                .unwrap_or_else(|| relayed.map_or(&[][..], |m| m.body)),
        );
        s.last = Some(bytes);
        match &mut s.machine {
            ServerMachine::Invite(m) => {
                m.handle_tu_response(now, code);
                if (200..300).contains(&code) && s.retx.is_none() {
                    s.retx = Some(Retx {
                        next: now + t1,
                        interval: t1,
                        give_up: now + 64 * t1,
                    });
                }
            }
            ServerMachine::NonInvite(m) => m.handle_tu_response(now, code),
        }
        self.drain_server(now, ctx, id);
    }

    /// Acts on what a server transaction asks for.
    fn drain_server(&mut self, _now: Instant, ctx: &mut Ctx, id: u16) {
        let token = self.token.pack(id);
        let Some(s) = self.servers.iter_mut().find(|s| s.id == id) else {
            return;
        };
        loop {
            let out = s.machine.poll_output();
            match out {
                None => break,
                Some(Output::Transmit) => {
                    if let Some(b) = &s.last {
                        ctx.send(s.side, b.clone(), s.peer, token);
                    }
                }
                Some(Output::Terminated) => s.done = true,
                // Timer H (no ACK for an error response) and transport errors: the response
                // is lost; the call is already over on this leg.
                Some(Output::TimedOut) => ctx.counters.timeout(TxnTimer::H),
                Some(_) => {}
            }
        }
        if s.done && s.retx.is_none() {
            self.servers.retain(|s| s.id != id);
        }
    }

    /// Acts on what a client transaction asks for; returns the responses for the TU.
    fn drain_client(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u16,
        msg: Option<&Message<'_, '_>>,
    ) -> Vec<u16> {
        let token = self.token.pack(id);
        let mut tu = Vec::new();
        let (from_trunk, to_trunk) = (self.from_trunk, self.to_trunk);
        let routing = &self.routing;
        let Some(c) = self.clients.iter_mut().find(|c| c.id == id) else {
            return tu;
        };
        loop {
            let out = c.machine.poll_output();
            match out {
                None => break,
                Some(Output::Transmit) => ctx.send(c.side, c.request.clone(), c.peer, token),
                Some(Output::Ack) => {
                    let trunk = trunk_on(from_trunk, to_trunk, c.side);
                    let header = header_name(routing, trunk);
                    if let Some(ack) = msg.and_then(|m| build_non2xx_ack(&c.request, m, header)) {
                        ctx.send(c.side, ack, c.peer, token);
                    }
                }
                Some(Output::Response(code)) => tu.push(code),
                Some(Output::TimedOut) => {
                    ctx.counters.timeout(if c.method == Method::Invite {
                        TxnTimer::B
                    } else {
                        TxnTimer::F
                    });
                    tu.push(408);
                }
                Some(Output::TransportError) => tu.push(503),
                Some(Output::Terminated) => c.done = true,
            }
        }
        let _ = now;
        tu
    }

    /// The SDP of `msg` (sent by leg `from`) anchored for the other leg, or None to relay the
    /// body as it is (no media anchoring, no SDP, or SDP sbcd cannot read: logged).
    fn media_body(&mut self, ctx: &mut Ctx, from: Side, msg: &Message<'_, '_>) -> Option<Vec<u8>> {
        let pools = ctx.media.as_mut()?;
        if !media::is_sdp(msg) {
            return None;
        }
        let policy = self.latch_policy(from);
        match self.media.relay_sdp(
            pools,
            &mut ctx.media_out,
            self.token,
            from,
            policy,
            msg.body,
        ) {
            Ok(body) => Some(body),
            Err(e) => {
                tracing::warn!(side = %from, error = ?e, "SDP not anchored; relayed as it is");
                None
            }
        }
    }

    /// How the relay may latch the media of the leg on `side`: its trunk's
    /// `media.latch_any_secs`, else strictly to the SDP's IP address.
    /// The names of leg A's and leg B's trunks (media counters are summed per trunk).
    fn media_trunks(&self) -> [Option<String>; 2] {
        [Side::A, Side::B].map(|side| {
            self.trunk_of(side)
                .map(|t| self.routing.config.trunk(t).name.clone())
        })
    }

    fn latch_policy(&self, side: Side) -> LatchPolicy {
        let trunk = self.trunk_of(side);
        trunk
            .and_then(|t| self.routing.config.trunk(t).media.latch_any)
            .map_or(LatchPolicy::Strict, LatchPolicy::AnySource)
    }

    /// The relay saw no media on either leg for the idle limit: hang up both legs (issue 5).
    pub(crate) fn on_media_idle(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.phase != Phase::Answered {
            return;
        }
        debug!("no media on either leg: both legs get a BYE");
        let reason: &[u8] = b"SIP;cause=408;text=\"media timeout\"";
        self.result = Some(CallResult::MediaTimeout);
        self.end_leg(now, ctx, Side::A, 408, Some(reason));
        self.end_leg(now, ctx, Side::B, 408, Some(reason));
        self.end(ctx, CallResult::MediaTimeout);
    }

    /// sbcd stops (the drain's grace period is over): a BYE on each confirmed leg, CANCEL or
    /// 503 on a pending one, with `Reason: SIP;cause=503;text="shutting down"`.
    pub(crate) fn shut_down(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.phase == Phase::Ended {
            return;
        }
        let reason: &[u8] = b"SIP;cause=503;text=\"shutting down\"";
        let result = if self.phase == Phase::Answered {
            CallResult::Answered
        } else {
            CallResult::Failed(503)
        };
        self.ring_deadline = None;
        self.end_leg(now, ctx, Side::B, 503, Some(reason));
        self.end_leg(now, ctx, Side::A, 503, Some(reason));
        self.end(ctx, result);
    }

    /// The trunk of the leg on `side`: the caller's, or the one being tried or answered.
    fn trunk_of(&self, side: Side) -> Option<TrunkId> {
        trunk_on(self.from_trunk, self.to_trunk, side)
    }

    fn forget_done_clients(&mut self) {
        self.clients.retain(|c| !c.done);
        self.servers.retain(|s| !(s.done && s.retx.is_none()));
    }

    /// Sends a new request on `side`. In-dialog unless `initial`.
    #[allow(clippy::too_many_arguments)]
    fn send_request(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        side: Side,
        method: Method,
        method_raw: &[u8],
        purpose: Purpose,
        relayed: Option<&Message<'_, '_>>,
        extra: impl FnOnce(&mut Writer<'_>),
    ) -> Option<u16> {
        let anchored = relayed.and_then(|m| self.media_body(ctx, side.other(), m));
        let id = self.new_id();
        let leg = &mut self.legs[side.index()];
        let peer = leg.peer;
        let Some(local) = ctx.locals.find(peer.transport, peer.addr) else {
            debug!(side = %side, dest = %peer.addr, "no local socket for this transport and family");
            return None;
        };
        let cseq = if method == Method::Ack {
            leg.local_seq
        } else {
            leg.next_seq()
        };
        let mut branch = Vec::with_capacity(40);
        ids::write_branch(&mut branch, self.token, side, id, ctx.rng.next_u32());
        let mut out = Vec::with_capacity(1024);
        let mut w = Writer::new(&mut out);
        w.request_line(method_raw, &[&leg.target]);
        w.via(local.via_proto, &local.sent_by, &[&branch], true);
        w.header_u32(HeaderKind::MaxForwards, self.max_forwards);
        for r in &leg.routes {
            w.header(HeaderKind::Route, r);
        }
        w.header_parts(b"From", &[&leg.local_uri, b";tag=", &leg.local_tag]);
        match &leg.remote_tag {
            Some(t) => w.header_parts(b"To", &[&leg.remote_uri, b";tag=", t]),
            None => w.header(HeaderKind::To, &leg.remote_uri),
        };
        w.header(HeaderKind::CallId, &leg.call_id)
            .cseq(cseq, method_raw);
        if matches!(method, Method::Invite | Method::Update) {
            w.header(HeaderKind::Contact, &local.contact);
        }
        if method == Method::Invite {
            w.header(HeaderKind::Allow, ALLOW)
                .header(HeaderKind::Supported, SUPPORTED);
        }
        if method != Method::Ack && method != Method::Cancel {
            w.header(HeaderKind::UserAgent, build::AGENT);
        }
        extra(&mut w);
        if let Some(m) = relayed {
            build::copy_crossing(&mut w, m);
        }
        let body = anchored
            .as_deref()
            .unwrap_or_else(|| relayed.map_or(&[][..], |m| m.body));
        let trunk = trunk_on(self.from_trunk, self.to_trunk, side);
        let tc = trunk.map(|t| self.routing.config.trunk(t));
        // The trunk's header goes on every request to it, ACK and CANCEL included.
        if let Some(h) = tc.and_then(|t| t.outbound.header.as_ref()) {
            w.header_named(h.name.as_bytes(), h.value.expose().as_bytes());
        }
        if !matches!(method, Method::Ack | Method::Cancel) {
            let creds = tc.and_then(|t| t.outbound.auth.as_ref());
            if let (Some(creds), Some(state)) = (creds, leg.auth.as_mut()) {
                // A nonce used again: the count goes up (RFC 7616 §3.4).
                state.nc = state.nc.wrapping_add(1);
                let mut cnonce = Vec::with_capacity(16);
                ids::put_hex(&mut cnonce, ctx.rng.next_u64(), 16);
                let to_uri = strip_angle(&leg.remote_uri);
                auth::write_credentials(
                    &mut w,
                    creds,
                    state,
                    &auth::Target {
                        method: method_raw,
                        request_uri: &leg.target,
                        to_uri,
                        body,
                    },
                    &cnonce,
                );
                // Credentials sent ahead of a challenge: a challenge to them is answered
                // (the nonce may have expired without `stale`), not taken as a wrong password.
            }
        }
        w.finish_with_body(body);
        let request = Bytes::from(out);
        if method == Method::Ack {
            ctx.send(side, request, peer, self.token.pack(id));
            return Some(id);
        }
        let machine = ClientMachine::new(method, now, ctx.timers, peer);
        self.clients.push(ClientTx {
            id,
            side,
            method,
            cseq,
            branch: branch.into(),
            machine,
            request,
            peer,
            purpose,
            had_offer: !body.is_empty(),
            ack: None,
            ack_waits: false,
            cancel_pending: false,
            provisional: false,
            had_credentials: false,
            auth_tries: 0,
            done: false,
        });
        // The new transaction's first output is the send itself.
        let early = self.drain_client(now, ctx, id, None);
        debug_assert!(early.is_empty());
        Some(id)
    }

    // ---------------------------------------------------------------------------------------
    // The outbound INVITE and failover.

    /// Sends the INVITE to the next trunk that can take it, or fails the inbound leg.
    fn try_next_trunk(&mut self, now: Instant, ctx: &mut Ctx) {
        while let Some(&trunk) = self.targets.get(self.next_target) {
            self.next_target += 1;
            let routing = Arc::clone(&self.routing);
            let tc = routing.config.trunk(trunk);
            if routing.shared.down.contains_key(&tc.name) {
                debug!(trunk = %tc.name, "trunk is down (OPTIONS probe); skipped");
                self.last_failure = Some((503, build::reason(503).into()));
                continue;
            }
            // A registering PBX: its latest Contact, reached where its REGISTER came from.
            let binding = if tc.inbound.register {
                let b = routing.shared.bindings.lookup(&tc.name, now);
                if b.is_none() {
                    debug!(trunk = %tc.name, "trunk's PBX is not registered; skipped");
                    self.last_failure = Some((480, build::reason(480).into()));
                    continue;
                }
                b
            } else {
                None
            };
            let target = match &binding {
                Some(b) => Some((b.source, b.transport)),
                None => routing.target(trunk),
            };
            let Some((addr, transport)) = target else {
                debug!(trunk = %tc.name, "trunk has no resolved target; skipped");
                self.last_failure = Some((503, build::reason(503).into()));
                continue;
            };
            if ctx.locals.is_self(transport, addr) {
                debug!(trunk = %tc.name, "trunk target is sbcd itself: loop");
                self.last_failure = Some((482, build::reason(482).into()));
                continue;
            }
            let peer = Peer {
                addr,
                transport,
                conn: binding.as_ref().and_then(|b| b.conn),
            };
            let Some(local) = ctx.locals.find(transport, addr) else {
                debug!(trunk = %tc.name, %transport, "no listener for the trunk's transport and family");
                self.last_failure = Some((503, build::reason(503).into()));
                continue;
            };
            // The outbound leg: a fresh Call-ID and tag per attempt.
            let mut call_id = Vec::with_capacity(40);
            ids::write_call_id(&mut call_id, self.token, ctx.rng.next_u64());
            let mut local_tag = Vec::with_capacity(32);
            ids::write_tag(&mut local_tag, self.token, Side::B, ctx.rng.next_u32());
            let mut hs = [EMPTY_HEADER; 96];
            let invite = self.invite.clone();
            let Ok(msg) = sip_codec::parse(&invite, &mut hs) else {
                break;
            };
            let from = msg.from().ok();
            let caller: &[u8] = from
                .and_then(|f| f.parse_uri().ok())
                .and_then(|u| match u {
                    Uri::Sip(s) => s.user,
                    Uri::Tel(t) => Some(t.number),
                    _ => None,
                })
                .unwrap_or(b"anonymous");
            let host = local.sent_by.clone();
            let mut local_uri = Vec::with_capacity(96);
            if let Some(d) = from.and_then(|f| f.display) {
                local_uri.extend_from_slice(d);
                local_uri.push(b' ');
            }
            local_uri.extend_from_slice(b"<sip:");
            local_uri.extend_from_slice(caller);
            local_uri.push(b'@');
            local_uri.extend_from_slice(&host);
            local_uri.push(b'>');
            let mut target = Vec::with_capacity(96);
            target.extend_from_slice(if transport == sbc_config::net::Transport::Tls {
                b"sips:"
            } else {
                b"sip:"
            });
            if let Some(p) = &tc.outbound.prefix {
                // '#' is not allowed raw in a SIP URI user part (RFC 3261 §25.1).
                for &b in p.as_bytes() {
                    if b == b'#' {
                        target.extend_from_slice(b"%23");
                    } else {
                        target.push(b);
                    }
                }
            }
            target.extend_from_slice(&self.number);
            target.push(b'@');
            let contact_host = binding.as_ref().and_then(|b| {
                let c: &[u8] = &b.contact;
                let start = c.iter().position(|&x| x == b'@').map_or_else(
                    || c.iter().position(|&x| x == b':').map_or(0, |i| i + 1),
                    |i| i + 1,
                );
                c.get(start..)
            });
            match (&tc.outbound.domain, &tc.outbound.uri) {
                // The registered Contact's host and port (To; the R-URI is the Contact).
                _ if contact_host.is_some() => {
                    let hostport = contact_host.unwrap_or_default();
                    let end = hostport
                        .iter()
                        .position(|&b| b == b';' || b == b'?')
                        .unwrap_or(hostport.len());
                    target.extend_from_slice(&hostport[..end]);
                }
                (Some(d), _) => target.extend_from_slice(d.to_string().as_bytes()),
                (None, Some(u)) => {
                    target.extend_from_slice(u.host.to_string().as_bytes());
                    if let Some(p) = u.port {
                        target.push(b':');
                        target.extend_from_slice(itoa::Buffer::new().format(p).as_bytes());
                    }
                }
                (None, None) => target.extend_from_slice(addr.to_string().as_bytes()),
            }
            if transport == sbc_config::net::Transport::Tcp && contact_host.is_none() {
                target.extend_from_slice(b";transport=tcp");
            }
            let mut remote_uri = Vec::with_capacity(target.len() + 2);
            remote_uri.push(b'<');
            remote_uri.extend_from_slice(&target);
            remote_uri.push(b'>');
            // A registered PBX is called at its Contact exactly as registered, the number in
            // To (RFC 3261 §16.5 / §10: what a registrar's proxy does after its lookup).
            if let Some(b) = &binding {
                target = b.contact.to_vec();
            }
            self.legs[Side::B.index()] = Leg {
                call_id: call_id.into(),
                local_tag: local_tag.into(),
                remote_tag: None,
                local_uri: local_uri.into(),
                remote_uri: remote_uri.into(),
                local_seq: 0,
                remote_seq: None,
                target: target.into(),
                routes: Vec::new(),
                peer,
                ended: false,
                confirmed: false,
                auth: None,
            };
            self.b_rseq = None;
            if self.next_target > 1 && ctx.media.is_some() {
                self.media.forget_b(&mut ctx.media_out, self.token);
            }
            self.to_trunk = Some(trunk);
            self.b_started = true;
            let id = self.send_request(
                now,
                ctx,
                Side::B,
                Method::Invite,
                b"INVITE",
                Purpose::Initial,
                Some(&msg),
                |_| {},
            );
            self.b_invite = id;
            self.ring_deadline = Some(now + ctx.ring_timeout);
            debug!(trunk = %tc.name, dest = %addr, "outbound INVITE sent");
            return;
        }
        // No trunk left: the last failure, or 503.
        let (code, reason) = self
            .last_failure
            .take()
            .unwrap_or_else(|| (503, build::reason(503).into()));
        self.fail_inbound(now, ctx, code, &reason, None);
    }

    /// A final error response on the inbound INVITE, and the call is over.
    fn fail_inbound(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        code: u16,
        reason: &[u8],
        relayed: Option<&Message<'_, '_>>,
    ) {
        self.a_reliable = None;
        let id = self.a_invite;
        self.respond(now, ctx, id, code, reason, relayed);
        self.legs[Side::A.index()].ended = true;
        self.ring_deadline = None;
        self.end(ctx, CallResult::Failed(code));
    }

    fn end(&mut self, ctx: &mut Ctx, result: CallResult) {
        self.phase = Phase::Ended;
        self.slot.release();
        if let Some(pools) = ctx.media.as_mut() {
            let trunks = self.media_trunks();
            self.media
                .close(pools, &mut ctx.media_out, self.token, trunks);
        }
        if self.result.is_none() {
            self.result = Some(result);
        }
        if !self.ended_event {
            self.ended_event = true;
            ctx.stats.calls_ended += 1;
            let cfg = &self.routing.config;
            ctx.event(Event::CallEnded {
                trunk: cfg.trunk(self.from_trunk).name.clone(),
                to: self.to_trunk.map(|t| cfg.trunk(t).name.clone()),
                result: self.result.unwrap_or(result),
            });
        }
    }

    /// Ends the leg on `side`: BYE for a confirmed dialog, CANCEL for a pending outbound
    /// INVITE, an error response for a pending inbound one.
    fn end_leg(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        side: Side,
        code_if_pending: u16,
        reason_hdr: Option<&[u8]>,
    ) {
        let leg = &self.legs[side.index()];
        if leg.ended {
            return;
        }
        match side {
            Side::A if !leg.confirmed => {
                let id = self.a_invite;
                let pending = self
                    .servers
                    .iter()
                    .any(|s| s.id == id && s.machine.invite_proceeding());
                if pending {
                    self.respond(
                        now,
                        ctx,
                        id,
                        code_if_pending,
                        build::reason(code_if_pending),
                        None,
                    );
                }
                self.legs[0].ended = true;
            }
            Side::B if !leg.confirmed => {
                if let Some(id) = self.b_invite {
                    self.cancel_client(now, ctx, id);
                }
                self.legs[1].ended = true;
            }
            _ => {
                self.legs[side.index()].ended = true;
                self.send_request(
                    now,
                    ctx,
                    side,
                    Method::Bye,
                    b"BYE",
                    Purpose::Own,
                    None,
                    |w| {
                        if let Some(r) = reason_hdr {
                            w.header(HeaderKind::Reason, r);
                        }
                    },
                );
            }
        }
    }

    /// CANCEL for a pending client INVITE (§9.1): at once after a provisional, else later.
    fn cancel_client(&mut self, now: Instant, ctx: &mut Ctx, id: u16) {
        let Some(c) = self.client(id) else {
            return;
        };
        let pending = c.machine.invite_pending();
        if !pending {
            return;
        }
        if !c.provisional {
            c.cancel_pending = true;
            return;
        }
        c.cancel_pending = false;
        let side = c.side;
        let routing = Arc::clone(&self.routing);
        let header = header_name(&routing, self.trunk_of(side));
        let Some(c) = self.client(id) else {
            return;
        };
        let Some(cancel) = build_cancel(&c.request, header) else {
            return;
        };
        let (peer, branch, cseq, side) = (c.peer, c.branch.clone(), c.cseq, c.side);
        let cid = self.new_id();
        self.clients.push(ClientTx {
            id: cid,
            side,
            method: Method::Cancel,
            cseq,
            branch,
            machine: ClientMachine::new(Method::Cancel, now, ctx.timers, peer),
            request: cancel,
            peer,
            purpose: Purpose::Own,
            had_offer: false,
            ack: None,
            ack_waits: false,
            cancel_pending: false,
            provisional: false,
            had_credentials: false,
            auth_tries: 0,
            done: false,
        });
        let _ = self.drain_client(now, ctx, cid, None);
    }

    // ---------------------------------------------------------------------------------------
    // Inputs.

    /// The inbound INVITE again: a retransmission (same branch) is absorbed by the server
    /// transaction; the same Call-ID and From tag with another branch is a request that forked
    /// and merged on its way here (§8.2.2.2): 482.
    pub(crate) fn on_invite_again(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        msg: &Message<'_, '_>,
        inc: Incoming<'_>,
    ) {
        let id = self.a_invite;
        let branch = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .unwrap_or_default();
        if self
            .servers
            .iter()
            .any(|s| s.id == id && !s.branch.eq_ignore_ascii_case(branch))
        {
            let peer = Peer {
                addr: inc.source,
                transport: inc.transport,
                conn: inc.conn,
            };
            let tag = self.legs[0].local_tag.clone();
            if let Some(r) = build::stateless_response(msg, inc.source, 482, &tag, |_| {}) {
                ctx.send(Side::A, r, peer, 0);
            }
            return;
        }
        if let Some(s) = self.server(id) {
            if let ServerMachine::Invite(m) = &mut s.machine {
                m.handle_request_retransmission(now);
            }
            self.drain_server(now, ctx, id);
        }
    }

    /// CANCEL of the inbound INVITE (§9.2): 200 for the CANCEL, 487 for the INVITE.
    pub(crate) fn on_cancel(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        msg: &Message<'_, '_>,
        inc: Incoming<'_>,
    ) {
        let peer = Peer {
            addr: inc.source,
            transport: inc.transport,
            conn: inc.conn,
        };
        let tag = self.legs[0].local_tag.clone();
        if let Some(ok) = build::stateless_response(msg, inc.source, 200, &tag, |_| {}) {
            ctx.send(Side::A, ok, peer, 0);
        }
        if self.phase != Phase::Setup {
            return;
        }
        let reason = msg.header(HeaderKind::Reason).map(|h| h.value);
        self.ring_deadline = None;
        self.result = Some(CallResult::Cancelled);
        self.end_leg(now, ctx, Side::A, 487, None);
        self.end_leg(now, ctx, Side::B, 487, reason);
        self.end(ctx, CallResult::Cancelled);
    }

    /// A response for one of this call's client transactions. False if none matches.
    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        msg: &Message<'_, '_>,
        txn: u16,
    ) -> bool {
        let (Some((_, method)), StartLine::Response { code, reason }) = (cseq_of(msg), msg.start)
        else {
            return false;
        };
        let Some(branch) = msg.top_via().ok().and_then(|v| v.branch()) else {
            return false;
        };
        // A CANCEL shares its INVITE's branch (§9.1); the CSeq method tells them apart.
        let Some(c) = self.clients.iter_mut().find(|c| {
            (c.id == txn || c.method == Method::Cancel)
                && *c.branch == *branch
                && c.method == method
        }) else {
            return false;
        };
        let id = c.id;
        c.machine.handle_response(now, code);
        let codes = self.drain_client(now, ctx, id, Some(msg));
        for code in codes {
            if code == 401 || code == 407 {
                match self.answer_challenge(now, ctx, id, code, msg) {
                    Ok(()) => continue,
                    Err(why) => {
                        // Never relayed: the other side would answer sbcd's peer's challenge
                        // with its own credentials. The trunk failed (failover, or 503).
                        self.challenge_failed(ctx, id, why);
                        let r = build::reason(503);
                        self.client_result(now, ctx, id, 503, r, None);
                        continue;
                    }
                }
            }
            self.client_result(now, ctx, id, code, reason, Some(msg));
        }
        self.forget_done_clients();
        true
    }

    /// Re-sends the request of client transaction `id` with credentials for the challenges
    /// in `msg` (RFC 3261 §22.2, §22.3): same Call-ID, CSeq + 1, a new branch, so a new client
    /// transaction that takes over the old one's purpose.
    fn answer_challenge(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u16,
        code: u16,
        msg: &Message<'_, '_>,
    ) -> Result<(), auth::NoAnswer> {
        let Some(c) = self.clients.iter().find(|c| c.id == id) else {
            return Err(auth::NoAnswer::Unusable);
        };
        if matches!(c.method, Method::Ack | Method::Cancel) {
            return Err(auth::NoAnswer::Unusable);
        }
        let (side, method, purpose, tries, had) =
            (c.side, c.method, c.purpose, c.auth_tries, c.had_credentials);
        let (peer, had_offer, old) = (c.peer, c.had_offer, c.request.clone());
        let routing = Arc::clone(&self.routing);
        let trunk = self.trunk_of(side);
        let Some(creds) = trunk.and_then(|t| routing.config.trunk(t).outbound.auth.as_ref()) else {
            return Err(auth::NoAnswer::NoCredentials);
        };
        let (challenges, stale) = auth::pick_challenges(msg, code);
        if challenges.is_empty() {
            return Err(auth::NoAnswer::Unusable);
        }
        // A second challenge to credentials, not stale: the password is wrong (RFC 3261
        // §22.2: re-trying with the same credentials is pointless).
        if had && !stale {
            return Err(auth::NoAnswer::WrongPassword);
        }
        if tries >= 3 {
            return Err(auth::NoAnswer::TooMany);
        }
        let mut hs = [EMPTY_HEADER; 96];
        let Ok(req) = sip_codec::parse(&old, &mut hs) else {
            return Err(auth::NoAnswer::Unusable);
        };
        let StartLine::Request {
            method_raw, uri, ..
        } = req.start
        else {
            return Err(auth::NoAnswer::Unusable);
        };
        let new_id = self.new_id();
        let leg = &mut self.legs[side.index()];
        let mut state = auth::Answered {
            code,
            challenges,
            nc: 1,
        };
        let cseq = leg.next_seq();
        let Some(local) = ctx.locals.find(peer.transport, peer.addr) else {
            return Err(auth::NoAnswer::Unusable);
        };
        let mut branch = Vec::with_capacity(40);
        ids::write_branch(&mut branch, self.token, side, new_id, ctx.rng.next_u32());
        let mut out = Vec::with_capacity(old.len() + 256);
        let mut w = Writer::new(&mut out);
        w.request_line(method_raw, &[uri]);
        w.via(local.via_proto, &local.sent_by, &[&branch], true);
        w.copy_all(&req, |h| {
            !matches!(
                h.kind,
                HeaderKind::Via
                    | HeaderKind::CSeq
                    | HeaderKind::Authorization
                    | HeaderKind::ProxyAuthorization
                    | HeaderKind::ContentLength
            )
        });
        w.cseq(cseq, method_raw);
        let mut cnonce = Vec::with_capacity(16);
        ids::put_hex(&mut cnonce, ctx.rng.next_u64(), 16);
        let to_uri = req.to().map_or(&b""[..], |t| t.uri);
        auth::write_credentials(
            &mut w,
            creds,
            &state,
            &auth::Target {
                method: method_raw,
                request_uri: uri,
                to_uri,
                body: req.body,
            },
            &cnonce,
        );
        w.finish_with_body(req.body);
        state.nc = 1;
        leg.auth = Some(state);
        let request = Bytes::from(out);
        // The old transaction only absorbs retransmissions now.
        if let Some(c) = self.client(id) {
            c.purpose = Purpose::Own;
        }
        self.clients.push(ClientTx {
            id: new_id,
            side,
            method,
            cseq,
            branch: branch.into(),
            machine: ClientMachine::new(method, now, ctx.timers, peer),
            request,
            peer,
            purpose,
            had_offer,
            ack: None,
            ack_waits: false,
            cancel_pending: false,
            provisional: false,
            had_credentials: true,
            auth_tries: tries + 1,
            done: false,
        });
        match purpose {
            Purpose::Initial => self.b_invite = Some(new_id),
            Purpose::Relay(server) => {
                if let Some(s) = self.server(server) {
                    s.link = Some(new_id);
                }
            }
            Purpose::Own => {}
        }
        let _ = self.drain_client(now, ctx, new_id, None);
        debug!(side = %side, code, "challenge answered; request re-sent with credentials");
        Ok(())
    }

    /// Logs and counts a challenge sbcd does not answer.
    fn challenge_failed(&mut self, ctx: &mut Ctx, id: u16, why: auth::NoAnswer) {
        let side = self.clients.iter().find(|c| c.id == id).map(|c| c.side);
        let trunk = side.and_then(|s| self.trunk_of(s));
        let name = trunk.map(|t| self.routing.config.trunk(t).name.clone());
        debug!(
            trunk = name.as_deref().unwrap_or("-"),
            why = why.as_str(),
            "challenge not answered"
        );
        ctx.stats.auth_failures += 1;
        ctx.event(Event::AuthFailed {
            trunk: name,
            mode: "outbound",
        });
    }

    /// The transaction user's part: what a response (or a timeout, as 408/503) means.
    fn client_result(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u16,
        code: u16,
        reason: &[u8],
        msg: Option<&Message<'_, '_>>,
    ) {
        let Some(c) = self.client(id) else {
            return;
        };
        let (purpose, side, method, cseq) = (c.purpose, c.side, c.method, c.cseq);
        if method == Method::Invite {
            if let Some(m) = msg {
                self.update_dialog(side, m, code);
            }
            if (101..200).contains(&code) {
                if let Some(c) = self.client(id) {
                    c.provisional = true;
                }
                if let Some(m) = msg {
                    self.prack_if_reliable(now, ctx, side, m, cseq);
                }
                let cancel_owed = self.client(id).is_some_and(|c| c.cancel_pending);
                if cancel_owed {
                    self.cancel_client(now, ctx, id);
                    return;
                }
            }
            if (200..300).contains(&code) {
                self.on_invite_2xx(now, ctx, id, msg);
                if self.client(id).is_some_and(|c| c.cancel_pending)
                    || self.legs[side.index()].ended
                {
                    // Answered after we gave up on it: ACK (done above) and hang up.
                    self.legs[side.index()].confirmed = true;
                    self.legs[side.index()].ended = false;
                    self.end_leg(now, ctx, side, 487, None);
                    return;
                }
            }
        }
        match purpose {
            Purpose::Initial => self.initial_result(now, ctx, id, code, reason, msg),
            Purpose::Relay(server) => {
                if code == 100 {
                    return;
                }
                if method == Method::Invite && (200..300).contains(&code) {
                    self.legs[side.other().index()].confirmed = true;
                }
                self.respond(now, ctx, server, code, reason, msg);
            }
            Purpose::Own => {}
        }
    }

    fn initial_result(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u16,
        code: u16,
        reason: &[u8],
        msg: Option<&Message<'_, '_>>,
    ) {
        if self.b_invite != Some(id) || self.phase == Phase::Ended {
            return;
        }
        let a = self.a_invite;
        match code {
            100 => {}
            101..=199 => {
                if self.legs[0].ended {
                    return;
                }
                if self.a_100rel {
                    self.send_reliable(now, ctx, code, reason, msg);
                } else {
                    self.respond(now, ctx, a, code, reason, msg);
                }
            }
            200..=299 => {
                let first = self.phase != Phase::Answered;
                self.ring_deadline = None;
                self.a_reliable = None;
                self.phase = Phase::Answered;
                self.legs[0].confirmed = true;
                self.legs[1].confirmed = true;
                self.respond(now, ctx, a, code, reason, msg);
                self.result = Some(CallResult::Answered);
                if let Some(t) = self.to_trunk.filter(|_| first) {
                    ctx.event(Event::CallAnswered {
                        trunk: self.routing.config.trunk(t).name.clone(),
                        setup: now.saturating_duration_since(self.started),
                    });
                }
            }
            _ => {
                self.b_invite = None;
                self.ring_deadline = None;
                let failover = code == 408 || (500..600).contains(&code);
                if failover && self.next_target < self.targets.len() {
                    debug!(code, "outbound trunk failed; trying the next one");
                    self.last_failure = Some((code, reason.into()));
                    self.try_next_trunk(now, ctx);
                } else {
                    self.fail_inbound(now, ctx, code, reason, msg);
                }
            }
        }
    }

    /// A provisional response on side A for a caller that requires 100rel (RFC 3262 §3), with
    /// Require and RSeq, retransmitted until its PRACK. One at a time: while one waits, later
    /// provisionals without a body are not sent.
    fn send_reliable(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        code: u16,
        reason: &[u8],
        msg: Option<&Message<'_, '_>>,
    ) {
        if self.a_reliable.is_some() && msg.is_none_or(|m| m.body.is_empty()) {
            return;
        }
        self.a_rseq = self.a_rseq.wrapping_add(1);
        let rseq = self.a_rseq;
        let mut num = itoa::Buffer::new();
        let rseq_text = num.format(rseq).as_bytes().to_vec();
        let a = self.a_invite;
        let own: [(HeaderKind, &[u8]); 2] = [
            (HeaderKind::Require, b"100rel"),
            (HeaderKind::RSeq, &rseq_text),
        ];
        self.respond_with(now, ctx, a, code, reason, msg, &own);
        let Some(s) = self.servers.iter().find(|s| s.id == a) else {
            return;
        };
        let Some(bytes) = s.last.clone() else {
            return;
        };
        let t1 = ctx.timers.t1;
        self.a_reliable = Some(Reliable {
            rseq,
            cseq: s.cseq,
            bytes,
            peer: s.peer,
            next: now + t1,
            interval: t1,
            give_up: now + 64 * t1,
        });
    }

    /// Dialog state from a response to an INVITE sbcd sent (§12.1.2, §12.2.1.2): the To tag,
    /// the remote target and, for the initial INVITE, the route set.
    fn update_dialog(&mut self, side: Side, msg: &Message<'_, '_>, code: u16) {
        if !(101..300).contains(&code) {
            return;
        }
        let initial = !self.legs[side.index()].confirmed;
        let leg = side_of_leg(&mut self.legs, side);
        if let Some(tag) = msg.to().ok().and_then(|t| t.tag()) {
            if leg.remote_tag.is_none() || (code >= 200 && initial) {
                leg.remote_tag = Some(tag.into());
            }
        }
        if let Some(Ok(c)) = msg.contacts().iter().next() {
            leg.target = c.uri.into();
        }
        if initial && side == Side::B {
            let mut routes: Vec<Box<[u8]>> = msg
                .values(HeaderKind::RecordRoute)
                .map(Into::into)
                .collect();
            routes.reverse();
            if let Some(first) = routes.first() {
                if let Some(addr) = route_addr(first) {
                    leg.peer = Peer {
                        addr,
                        transport: leg.peer.transport,
                        conn: None,
                    };
                }
            }
            leg.routes = routes;
        }
    }

    /// RFC 3262 §4: PRACK each new reliable provisional (Require: 100rel with an RSeq).
    fn prack_if_reliable(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        side: Side,
        msg: &Message<'_, '_>,
        cseq: u32,
    ) {
        if !has_100rel(msg, HeaderKind::Require) {
            return;
        }
        let Some(rseq) = msg.header(HeaderKind::RSeq).and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<u32>()
                .ok()
        }) else {
            return;
        };
        if self.b_rseq.is_some_and(|last| rseq <= last) {
            return;
        }
        self.b_rseq = Some(rseq);
        let mut rack = Vec::with_capacity(32);
        rack.extend_from_slice(itoa::Buffer::new().format(rseq).as_bytes());
        rack.push(b' ');
        rack.extend_from_slice(itoa::Buffer::new().format(cseq).as_bytes());
        rack.extend_from_slice(b" INVITE");
        self.send_request(
            now,
            ctx,
            side,
            Method::Prack,
            b"PRACK",
            Purpose::Own,
            None,
            |w| {
                w.header(HeaderKind::RAck, &rack);
            },
        );
    }

    /// A 2xx for an INVITE sbcd sent: ACK it (§13.2.2.4) unless the answer must come from the
    /// other leg's ACK; ACK again for a retransmitted 2xx.
    fn on_invite_2xx(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u16,
        _msg: Option<&Message<'_, '_>>,
    ) {
        let Some(c) = self.client(id) else {
            return;
        };
        if let Some(ack) = &c.ack {
            ctx.send(c.side, ack.clone(), c.peer, 0);
            return;
        }
        if c.ack_waits {
            return;
        }
        let (side, had_offer, cancel_pending) = (c.side, c.had_offer, c.cancel_pending);
        if had_offer || self.legs[side.index()].ended || cancel_pending {
            self.send_ack(now, ctx, id, None);
        } else if let Some(c) = self.client(id) {
            c.ack_waits = true;
        }
    }

    fn send_ack(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u16,
        relayed: Option<&Message<'_, '_>>,
    ) {
        let Some(c) = self.client(id) else {
            return;
        };
        let (side, cseq) = (c.side, c.cseq);
        c.ack_waits = false;
        let saved = self.legs[side.index()].local_seq;
        self.legs[side.index()].local_seq = cseq;
        let before = self.clients.len();
        let _ = self.send_request(
            now,
            ctx,
            side,
            Method::Ack,
            b"ACK",
            Purpose::Own,
            relayed,
            |_| {},
        );
        debug_assert_eq!(before, self.clients.len());
        self.legs[side.index()].local_seq = saved;
        // The ACK just sent is the last transmit: keep it for 2xx retransmissions.
        let ack = ctx.last_sent();
        if let Some(c) = self.client(id) {
            c.ack = ack;
        }
    }

    /// A request inside a dialog of this call, received on `side`.
    pub(crate) fn on_in_dialog(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        msg: &Message<'_, '_>,
        inc: Incoming<'_>,
        side: Side,
    ) {
        let Some((cseq, method)) = cseq_of(msg) else {
            return;
        };
        let peer = Peer {
            addr: inc.source,
            transport: inc.transport,
            conn: inc.conn,
        };
        let branch = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .unwrap_or_default();
        if method == Method::Ack {
            self.on_ack(now, ctx, side, msg, cseq, branch);
            return;
        }
        // A retransmission of a request we are handling (§17.2.3)?
        if let Some(s) = self.servers.iter_mut().find(|s| {
            s.side == side && s.method == method && s.cseq == cseq && *s.branch == *branch
        }) {
            let id = s.id;
            s.machine.handle_request_retransmission(now);
            self.drain_server(now, ctx, id);
            return;
        }
        let leg = &mut self.legs[side.index()];
        if leg.remote_seq.is_some_and(|last| cseq <= last) && method != Method::Cancel {
            let tag = leg.local_tag.clone();
            if let Some(r) = build::stateless_response(msg, inc.source, 500, &tag, |_| {}) {
                ctx.send(side, r, peer, 0);
            }
            return;
        }
        // The trunk's digest applies inside the dialog too (ACK and CANCEL are never
        // challenged, §22.1). A challenged request does not count as received: its retry comes
        // with CSeq + 1.
        if side == Side::A {
            let trunk = self.from_trunk;
            let verdict = auth::check_inbound(&self.routing, trunk, msg, now);
            if verdict != auth::Inbound::Accepted {
                let routing = Arc::clone(&self.routing);
                let tag = self.legs[0].local_tag.clone();
                let salt = ctx.rng.next_u64();
                let (code, stale) = match verdict {
                    auth::Inbound::Challenge { stale } => {
                        (auth::challenge_code(&routing, trunk, Some(method)), stale)
                    }
                    _ => (403, false),
                };
                if let auth::Inbound::Refused { why } = verdict {
                    debug!(trunk = %routing.config.trunk(trunk).name, why, "in-dialog credentials refused: 403");
                    ctx.stats.auth_failures += 1;
                    ctx.event(Event::AuthFailed {
                        trunk: Some(routing.config.trunk(trunk).name.clone()),
                        mode: "digest",
                    });
                    let blocked = routing.shared.guard.auth_failed(inc.source.ip(), now);
                    ctx.event(Event::SourceRefused {
                        source: inc.source.ip(),
                        blocked,
                    });
                }
                if let Some(r) = build::stateless_response(msg, inc.source, code, &tag, |w| {
                    if code != 403 {
                        auth::write_challenge(w, &routing, trunk, code, stale, now, salt);
                    }
                }) {
                    ctx.send(side, r, peer, 0);
                }
                return;
            }
        }
        let leg = &mut self.legs[side.index()];
        leg.remote_seq = Some(cseq);
        if leg.ended && method != Method::Bye {
            let tag = leg.local_tag.clone();
            if let Some(r) = build::stateless_response(msg, inc.source, 481, &tag, |_| {}) {
                ctx.send(side, r, peer, 0);
            }
            return;
        }
        let id = self.add_server(now, ctx, side, msg, method, cseq, branch, peer);
        match method {
            Method::Bye => {
                self.respond(now, ctx, id, 200, b"OK", None);
                self.legs[side.index()].ended = true;
                if self.phase != Phase::Ended {
                    let reason = msg.header(HeaderKind::Reason).map(|h| h.value);
                    let result = if self.phase == Phase::Answered {
                        CallResult::Answered
                    } else {
                        CallResult::Cancelled
                    };
                    self.ring_deadline = None;
                    self.end_leg(now, ctx, side.other(), 487, reason);
                    self.end(ctx, result);
                }
            }
            Method::Prack => {
                // RFC 3262 §3: the PRACK for our reliable provisional (RAck: rseq cseq method).
                let rack = msg
                    .header(HeaderKind::RAck)
                    .map(|h| h.value)
                    .unwrap_or_default();
                let mut parts = rack
                    .split(u8::is_ascii_whitespace)
                    .filter(|p| !p.is_empty());
                let num = |p: Option<&[u8]>| std::str::from_utf8(p?).ok()?.parse::<u32>().ok();
                let (rseq, cseq) = (num(parts.next()), num(parts.next()));
                let matches = side == Side::A
                    && self
                        .a_reliable
                        .as_ref()
                        .is_some_and(|r| Some(r.rseq) == rseq && Some(r.cseq) == cseq);
                if matches {
                    self.a_reliable = None;
                    self.respond(now, ctx, id, 200, b"OK", None);
                } else {
                    self.respond(now, ctx, id, 481, build::reason(481), None);
                }
            }
            Method::Cancel => self.respond(now, ctx, id, 481, build::reason(481), None),
            Method::Invite
            | Method::Update
            | Method::Info
            | Method::Options
            | Method::Message
            | Method::Notify => {
                self.relay_request(now, ctx, side, id, msg, method);
            }
            _ => self.respond(now, ctx, id, 405, build::reason(405), None),
        }
    }

    fn relay_request(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        side: Side,
        id: u16,
        msg: &Message<'_, '_>,
        method: Method,
    ) {
        let other = side.other();
        if method == Method::Invite {
            self.respond(now, ctx, id, 100, b"Trying", None);
        }
        let o = &self.legs[other.index()];
        if o.remote_tag.is_none() || o.ended {
            let code = if matches!(method, Method::Invite | Method::Update) {
                491
            } else {
                481
            };
            self.respond(now, ctx, id, code, build::reason(code), None);
            return;
        }
        // §14.1 / RFC 3311 §5.2: one offer exchange at a time on a leg; the other side
        // retries after a 491.
        if matches!(method, Method::Invite | Method::Update)
            && self.offer_pending(side, other, id, method)
        {
            self.respond(now, ctx, id, 491, build::reason(491), None);
            return;
        }
        // A target refresh (§12.2.2) updates where this leg's requests go.
        if matches!(method, Method::Invite | Method::Update) {
            if let Some(Ok(c)) = msg.contacts().iter().next() {
                self.legs[side.index()].target = c.uri.into();
            }
        }
        let mf = msg
            .max_forwards()
            .ok()
            .flatten()
            .map_or(69, |n| u32::from(n.saturating_sub(1)));
        let saved = self.max_forwards;
        self.max_forwards = mf;
        let method_raw: &[u8] = match msg.start {
            StartLine::Request { method_raw, .. } => method_raw,
            StartLine::Response { .. } => b"",
        };
        let cid = self.send_request(
            now,
            ctx,
            other,
            method,
            method_raw,
            Purpose::Relay(id),
            Some(msg),
            |_| {},
        );
        self.max_forwards = saved;
        match cid {
            Some(cid) => {
                if let Some(s) = self.server(id) {
                    s.link = Some(cid);
                }
            }
            None => self.respond(now, ctx, id, 503, build::reason(503), None),
        }
    }

    /// Is an INVITE still unanswered on either leg (sbcd's on `other`, the peer's on `side`)?
    /// For an UPDATE the initial INVITE does not count: RFC 3311 §5.1 allows UPDATE in the early
    /// dialog once the INVITE's offer was answered (in an 18x), which is its main use.
    fn offer_pending(&self, side: Side, other: Side, except: u16, method: Method) -> bool {
        let initial = |id: u16| {
            method == Method::Update && (id == self.a_invite || Some(id) == self.b_invite)
        };
        let ours = self
            .clients
            .iter()
            .any(|c| c.side == other && !initial(c.id) && c.machine.invite_pending());
        let theirs = self.servers.iter().any(|s| {
            s.side == side && s.id != except && !initial(s.id) && s.machine.invite_proceeding()
        });
        ours || theirs
    }

    /// An ACK on `side`: for an error response it ends the server transaction's retransmission
    /// (§17.2.1); for a 2xx it stops the UAS core's (§13.3.1.4) and, with a delayed offer,
    /// carries the answer to the other leg's ACK.
    fn on_ack(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        side: Side,
        msg: &Message<'_, '_>,
        cseq: u32,
        branch: &[u8],
    ) {
        let Some(s) = self
            .servers
            .iter_mut()
            .find(|s| s.side == side && s.method == Method::Invite && s.cseq == cseq)
        else {
            ctx.event(Event::Dropped {
                reason: crate::DropReason::StrayAck,
            });
            return;
        };
        let id = s.id;
        let link = s.link;
        if let ServerMachine::Invite(m) = &mut s.machine {
            if m.state() == ServerInviteState::Completed && *s.branch == *branch {
                m.handle_ack(now);
            }
        }
        let was_waiting = s.retx.take().is_some();
        self.drain_server(now, ctx, id);
        if !was_waiting {
            return;
        }
        let link = link.or_else(|| (id == self.a_invite).then_some(self.b_invite).flatten());
        if let Some(cid) = link {
            if self.client(cid).is_some_and(|c| c.ack_waits) {
                self.send_ack(now, ctx, cid, Some(msg));
            }
        }
        self.forget_done_clients();
    }

    /// Time has come to `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant, ctx: &mut Ctx) {
        // 2xx retransmissions first: giving up tears the call down (§13.3.1.4).
        let mut dead = false;
        let t2 = ctx.timers.t2;
        let mut resend = Vec::new();
        for s in &mut self.servers {
            let Some(r) = &mut s.retx else { continue };
            if now >= r.give_up {
                s.retx = None;
                dead = true;
            } else if now >= r.next {
                r.interval = (r.interval * 2).min(t2);
                r.next = now + r.interval;
                resend.push(s.id);
            }
        }
        for id in resend {
            if let Some(s) = self.server(id) {
                if let ServerMachine::Invite(m) = &mut s.machine {
                    m.handle_tu_response(now, 200);
                }
            }
            self.drain_server(now, ctx, id);
        }
        if dead && self.phase != Phase::Ended {
            debug!("no ACK for a 2xx: tearing the call down");
            self.result = Some(CallResult::Timeout);
            self.end_leg(
                now,
                ctx,
                Side::A,
                408,
                Some(b"SIP;cause=408;text=\"ACK timeout\""),
            );
            self.end_leg(
                now,
                ctx,
                Side::B,
                408,
                Some(b"SIP;cause=408;text=\"ACK timeout\""),
            );
            self.end(ctx, CallResult::Timeout);
        }
        if let Some(r) = &mut self.a_reliable {
            if now >= r.give_up {
                // RFC 3262 §3: no PRACK within 64*T1: reject the INVITE with a 5xx.
                self.a_reliable = None;
                if self.phase == Phase::Setup {
                    debug!("no PRACK for a reliable provisional: failing the call");
                    self.end_leg(now, ctx, Side::B, 500, None);
                    self.fail_inbound(now, ctx, 500, build::reason(500), None);
                }
            } else if now >= r.next {
                r.interval *= 2;
                r.next = now + r.interval;
                ctx.send(Side::A, r.bytes.clone(), r.peer, 0);
            }
        }
        if self.ring_deadline.is_some_and(|d| now >= d) {
            self.ring_deadline = None;
            if self.phase == Phase::Setup {
                debug!("ring timeout: cancelling the outbound INVITE");
                self.end_leg(now, ctx, Side::B, 408, None);
                self.fail_inbound(now, ctx, 408, build::reason(408), None);
            }
        }
        let server_ids: Vec<u16> = self
            .servers
            .iter()
            .filter(|s| s.machine.poll_timeout().is_some_and(|t| t <= now))
            .map(|s| s.id)
            .collect();
        for id in server_ids {
            if let Some(s) = self.server(id) {
                s.machine.handle_timeout(now);
            }
            self.drain_server(now, ctx, id);
        }
        let client_ids: Vec<u16> = self
            .clients
            .iter()
            .filter(|c| c.machine.poll_timeout().is_some_and(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for id in client_ids {
            if let Some(c) = self.client(id) {
                c.machine.handle_timeout(now);
            }
            for code in self.drain_client(now, ctx, id, None) {
                self.client_result(now, ctx, id, code, build::reason(code), None);
            }
        }
        self.forget_done_clients();
    }

    /// A send of transaction `txn` failed.
    pub(crate) fn handle_transport_error(&mut self, now: Instant, ctx: &mut Ctx, txn: u16) {
        if let Some(c) = self.client(txn) {
            c.machine.handle_transport_error(now);
            for code in self.drain_client(now, ctx, txn, None) {
                self.client_result(now, ctx, txn, code, build::reason(code), None);
            }
        } else if let Some(s) = self.server(txn) {
            s.machine.handle_transport_error(now);
            self.drain_server(now, ctx, txn);
        }
        self.forget_done_clients();
    }

    /// The earliest instant something is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let servers = self.servers.iter().flat_map(|s| {
            let m = s.machine.poll_timeout();
            [m, s.retx.as_ref().map(|r| r.next.min(r.give_up))]
        });
        let clients = self.clients.iter().map(|c| c.machine.poll_timeout());
        servers
            .chain(clients)
            .chain([
                self.ring_deadline,
                self.a_reliable.as_ref().map(|r| r.next.min(r.give_up)),
            ])
            .flatten()
            .min()
    }
}

/// The address of a Route value whose URI host is an IP literal (`<sip:192.0.2.1:5060;lr>`).
fn route_addr(route: &[u8]) -> Option<std::net::SocketAddr> {
    let na = sip_codec::NameAddr::parse(route, HeaderKind::Route).ok()?;
    let Ok(Uri::Sip(u)) = na.parse_uri() else {
        return None;
    };
    let ip: std::net::IpAddr = match u.host {
        sip_codec::Host::V4(a) => a.into(),
        sip_codec::Host::V6(a) => a.into(),
        sip_codec::Host::Name(_) => return None,
    };
    Some(std::net::SocketAddr::new(ip, u.port.unwrap_or(5060)))
}

/// Is `h` the trunk's `outbound.header` (copied from the INVITE into its CANCEL and ACK)?
fn is_kept(h: &sip_codec::Header<'_>, keep: Option<&[u8]>) -> bool {
    keep.is_some_and(|k| h.kind == HeaderKind::Other && h.name.eq_ignore_ascii_case(k))
}

/// CANCEL for a request sbcd sent (§9.1): same Request-URI, Call-ID, From, To, CSeq number,
/// top Via and Route; method CANCEL.
fn build_cancel(request: &[u8], keep: Option<&[u8]>) -> Option<Bytes> {
    let mut hs = [EMPTY_HEADER; 64];
    let req = sip_codec::parse(request, &mut hs).ok()?;
    let (seq, _) = cseq_of(&req)?;
    let mut out = Vec::with_capacity(request.len());
    let mut w = Writer::new(&mut out);
    w.request_line(b"CANCEL", &[req.request_uri()?]);
    w.copy(req.header(HeaderKind::Via)?);
    w.header_u32(HeaderKind::MaxForwards, 70);
    w.copy_all(&req, |h| {
        matches!(
            h.kind,
            HeaderKind::Route | HeaderKind::From | HeaderKind::To | HeaderKind::CallId
        ) || is_kept(h, keep)
    });
    w.cseq(seq, b"CANCEL");
    w.finish();
    Some(Bytes::from(out))
}

/// ACK for a non-2xx final response (§17.1.1.3): the INVITE's Request-URI, top Via, Route,
/// From, Call-ID, CSeq number, and the response's To.
fn build_non2xx_ack(request: &[u8], resp: &Message<'_, '_>, keep: Option<&[u8]>) -> Option<Bytes> {
    let mut hs = [EMPTY_HEADER; 64];
    let req = sip_codec::parse(request, &mut hs).ok()?;
    let (seq, _) = cseq_of(&req)?;
    let mut out = Vec::with_capacity(request.len());
    let mut w = Writer::new(&mut out);
    w.request_line(b"ACK", &[req.request_uri()?]);
    w.copy(req.header(HeaderKind::Via)?);
    w.header_u32(HeaderKind::MaxForwards, 70);
    w.copy_all(&req, |h| {
        matches!(
            h.kind,
            HeaderKind::Route | HeaderKind::From | HeaderKind::CallId
        ) || is_kept(h, keep)
    });
    w.copy(resp.header(HeaderKind::To)?);
    w.cseq(seq, b"ACK");
    w.finish();
    Some(Bytes::from(out))
}

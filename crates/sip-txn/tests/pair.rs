//! Deterministic simulation: a UAC and a UAS, each a minimal TU over sip-txn transactions,
//! joined by an in-memory link with fixed latency and seeded loss, under injected time (in the
//! style of quinn's `tests/util.rs` `Pair` and str0m's `netem`).
//!
//! The link carries real SIP bytes. The receiving side parses them with sip-codec and finds the
//! transaction with a `ServerKey` or `ClientKey` lookup in a `TxnTable`, so every scenario also
//! exercises RFC 3261 §17.1.3 and §17.2.3 matching. Each datagram also carries a small [`Msg`]
//! summary, which only the drop rules and the assertions read.
//!
//! [`Pair::step`] jumps `now` to the next event: the earliest of a delivery, a transaction
//! timer, and a TU timer (scheduled answers, the UAS core's 2xx retransmissions).
#![allow(unsafe_code)] // the counting allocator at the bottom, nothing else

use std::time::{Duration, Instant};

use sip_codec::{parse, Method, EMPTY_HEADER};
use sip_txn::{
    ClientInvite, ClientInviteState, ClientKey, ClientNonInvite, ClientState, Output,
    OwnedClientKey, OwnedServerKey, Reliability, ServerInvite, ServerInviteState, ServerKey,
    ServerNonInvite, ServerState, Timers, TxnTable,
};

/// RFC 3261 defaults: T1 500 ms, T2 4 s, T4 5 s.
const T: Timers = Timers {
    t1: Duration::from_millis(500),
    t2: Duration::from_secs(4),
    t4: Duration::from_secs(5),
};
/// One-way latency of the link.
const LATENCY: Duration = Duration::from_millis(20);
/// Timer D on unreliable transports (§17.1.1.2: "at least 32 seconds").
const TIMER_D: Duration = Duration::from_secs(32);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The most transmissions a retransmit schedule allows within `64*T1`: one at 0, then one per
/// interval, doubling from T1 and capped at `cap` (T2 for non-INVITE requests and for 2xx
/// retransmission, none for INVITE). §17.1.2.2, §17.1.1.2, §13.3.1.4.
fn max_sends(cap: Option<Duration>) -> usize {
    let (mut at, mut interval, mut sends) = (Duration::ZERO, T.t1, 1);
    loop {
        at += interval;
        if at > 64 * T.t1 {
            return sends;
        }
        sends += 1;
        interval = cap.map_or(interval * 2, |c| (interval * 2).min(c));
    }
}

// === Messages ===

/// The methods the two TUs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum M {
    Invite,
    Ack,
    Cancel,
    Bye,
    Options,
}

impl M {
    fn name(self) -> &'static str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Cancel => "CANCEL",
            Self::Bye => "BYE",
            Self::Options => "OPTIONS",
        }
    }

    fn of(m: Method) -> Self {
        match m {
            Method::Invite => Self::Invite,
            Method::Ack => Self::Ack,
            Method::Cancel => Self::Cancel,
            Method::Bye => Self::Bye,
            Method::Options => Self::Options,
            other => panic!("the harness never sends {other:?}"),
        }
    }
}

/// What a datagram is, for drop rules and assertions. The receiver reads only the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    /// `branch` numbers the top Via branch; a CANCEL and a non-2xx ACK reuse the INVITE's.
    Request {
        method: M,
        branch: u32,
    },
    Response {
        method: M,
        branch: u32,
        code: u16,
    },
}

impl Msg {
    fn is_request(&self, m: M) -> bool {
        matches!(*self, Self::Request { method, .. } if method == m)
    }

    fn is_response(&self, m: M, c: u16) -> bool {
        matches!(*self, Self::Response { method, code, .. } if method == m && code == c)
    }
}

/// How messages look on the wire.
#[derive(Debug, Clone, Copy)]
struct Wire {
    /// TCP in the Via (and transactions built as reliable) rather than UDP.
    reliable: bool,
    /// Branches without the `z9hG4bK` cookie: the UAC is an RFC 2543 client and the UAS matches
    /// with the §17.2.3 fallback.
    legacy: bool,
}

impl Wire {
    fn branch(self, b: u32) -> String {
        if self.legacy {
            format!("old{b}")
        } else {
            format!("z9hG4bK{b:08x}")
        }
    }

    /// Renders a request or response of the one dialog both TUs share. The UAS's To tag is
    /// `uas1`; the UAC's From tag `uac1`.
    fn render(self, msg: Msg) -> Vec<u8> {
        let transport = if self.reliable { "TCP" } else { "UDP" };
        let (method, branch) = match msg {
            Msg::Request { method, branch } | Msg::Response { method, branch, .. } => {
                (method, branch)
            }
        };
        let cseq = if method == M::Bye { 2 } else { 1 };
        // An ACK acknowledges INVITE 1 (§17.1.1.3, §13.2.2.4).
        let (start, to_tag) = match msg {
            Msg::Request { method, .. } => (
                format!("{} sip:bob@192.0.2.2 SIP/2.0", method.name()),
                matches!(method, M::Ack | M::Bye),
            ),
            Msg::Response { code, .. } => (format!("SIP/2.0 {code} Reason"), code != 100),
        };
        format!(
            "{start}\r\n\
             Via: SIP/2.0/{transport} 192.0.2.1:5060;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@192.0.2.1>;tag=uac1\r\n\
             To: <sip:bob@192.0.2.2>{to}\r\n\
             Call-ID: pair-1@192.0.2.1\r\n\
             CSeq: {cseq} {name}\r\n\
             Content-Length: 0\r\n\r\n",
            branch = self.branch(branch),
            to = if to_tag { ";tag=uas1" } else { "" },
            name = method.name(),
        )
        .into_bytes()
    }
}

// === Link ===

/// xorshift64 seeded through splitmix64: deterministic per seed, no dependency.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Uac,
    Uas,
}

/// Drop the next `remaining` datagrams for which `matches` holds.
#[derive(Debug)]
struct DropRule {
    matches: fn(&Msg) -> bool,
    remaining: usize,
}

/// A datagram in flight.
#[derive(Debug)]
struct Datagram {
    at: Instant,
    seq: u64,
    to: Side,
    bytes: Vec<u8>,
}

/// One datagram handed to the link, lost or not.
#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Instant,
    from: Side,
    msg: Msg,
    lost: bool,
}

#[derive(Debug)]
struct Link {
    loss_permille: u64,
    rng: XorShift,
    rules: Vec<DropRule>,
    in_flight: Vec<Datagram>,
    seq: u64,
    log: Vec<Sent>,
}

impl Link {
    fn send(&mut self, now: Instant, from: Side, msg: Msg, bytes: Vec<u8>) {
        let ruled = self
            .rules
            .iter_mut()
            .find(|r| r.remaining > 0 && (r.matches)(&msg))
            .map(|r| r.remaining -= 1)
            .is_some();
        // Draw for every datagram, so a rule does not shift the random sequence.
        let random = self.rng.next_u64() % 1000 < self.loss_permille;
        let lost = ruled || random;
        self.log.push(Sent {
            at: now,
            from,
            msg,
            lost,
        });
        if !lost {
            self.seq += 1;
            self.in_flight.push(Datagram {
                at: now + LATENCY,
                seq: self.seq,
                to: match from {
                    Side::Uac => Side::Uas,
                    Side::Uas => Side::Uac,
                },
                bytes,
            });
        }
    }

    fn next(&self) -> Option<Instant> {
        self.in_flight.iter().map(|d| d.at).min()
    }

    /// The earliest datagram due at `now` (in send order among equals).
    fn pop_due(&mut self, now: Instant) -> Option<Datagram> {
        let i = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(_, d)| d.at <= now)
            .min_by_key(|(_, d)| (d.at, d.seq))?
            .0;
        Some(self.in_flight.remove(i))
    }
}

// === Transactions, as each side keeps them ===

#[derive(Debug)]
enum ClientMachine {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

/// A client transaction and what its TU saw of it.
#[derive(Debug)]
struct ClientTxn {
    req: Msg,
    m: ClientMachine,
    transmissions: usize,
    /// ACKs for non-2xx finals, sent by the transaction (§17.1.1.3).
    acks: usize,
    /// Responses passed up to the TU.
    responses: Vec<(Instant, u16)>,
    timed_out_at: Option<Instant>,
    ended_at: Option<Instant>,
}

impl ClientTxn {
    fn poll_timeout(&self) -> Option<Instant> {
        match &self.m {
            ClientMachine::Invite(t) => t.poll_timeout(),
            ClientMachine::NonInvite(t) => t.poll_timeout(),
        }
    }

    fn codes(&self) -> Vec<u16> {
        self.responses.iter().map(|&(_, c)| c).collect()
    }

    fn invite_state(&self) -> ClientInviteState {
        match &self.m {
            ClientMachine::Invite(t) => t.state(),
            ClientMachine::NonInvite(_) => panic!("not an INVITE transaction"),
        }
    }

    fn state(&self) -> ClientState {
        match &self.m {
            ClientMachine::NonInvite(t) => t.state(),
            ClientMachine::Invite(_) => panic!("not a non-INVITE transaction"),
        }
    }
}

#[derive(Debug)]
enum ServerMachine {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

/// A server transaction and the responses it put on the wire.
#[derive(Debug)]
struct ServerTxn {
    req: Msg,
    m: ServerMachine,
    /// The response the TU sent last: what [`Output::Transmit`] repeats.
    last_code: Option<u16>,
    sent: Vec<u16>,
    timed_out_at: Option<Instant>,
    ended_at: Option<Instant>,
}

impl ServerTxn {
    fn poll_timeout(&self) -> Option<Instant> {
        match &self.m {
            ServerMachine::Invite(t) => t.poll_timeout(),
            ServerMachine::NonInvite(t) => t.poll_timeout(),
        }
    }

    fn invite_state(&self) -> ServerInviteState {
        match &self.m {
            ServerMachine::Invite(t) => t.state(),
            ServerMachine::NonInvite(_) => panic!("not an INVITE transaction"),
        }
    }

    fn state(&self) -> ServerState {
        match &self.m {
            ServerMachine::NonInvite(t) => t.state(),
            ServerMachine::Invite(_) => panic!("not a non-INVITE transaction"),
        }
    }

    fn count_sent(&self, code: u16) -> usize {
        self.sent.iter().filter(|&&c| c == code).count()
    }
}

// === The two TUs ===

/// How the UAS TU answers.
#[derive(Debug, Clone, Copy)]
struct UasPolicy {
    /// Send 100 (Trying) at once on an INVITE (§17.2.1).
    trying: bool,
    /// The final response to an INVITE, after a delay; `None` never answers.
    invite_final: Option<(Duration, u16)>,
    /// The final response to OPTIONS, after a delay; `None` never answers.
    non_invite_final: Option<(Duration, u16)>,
}

impl Default for UasPolicy {
    fn default() -> Self {
        Self {
            trying: true,
            invite_final: Some((ms(100), 200)),
            non_invite_final: Some((Duration::ZERO, 200)),
        }
    }
}

/// The UAS core retransmitting its 2xx until the ACK (RFC 3261 §13.3.1.4, RFC 6026 §8.1).
#[derive(Debug, Clone, Copy)]
struct Retransmit2xx {
    txn: usize,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

#[derive(Debug)]
struct Uac {
    table: TxnTable<OwnedClientKey, usize>,
    txns: Vec<ClientTxn>,
    next_branch: u32,
    invite: Option<usize>,
    /// Send CANCEL for the INVITE at this time.
    cancel_at: Option<Instant>,
    /// The TU wants the call gone: a 2xx that still arrives gets ACK then BYE.
    hangup: bool,
    bye: Option<usize>,
    /// The branch of the ACK for 2xx: one per dialog, the same for every 2xx (§13.2.2.4).
    ack_branch: Option<u32>,
    acks_2xx: usize,
    /// Responses that matched no transaction (§18.1.2: to the TU core).
    stray: Vec<(Instant, Msg)>,
}

#[derive(Debug)]
struct Uas {
    policy: UasPolicy,
    table: TxnTable<OwnedServerKey, usize>,
    txns: Vec<ServerTxn>,
    /// Requests the TU saw (new requests, and ACKs for 2xx), in order.
    seen: Vec<(Instant, M)>,
    /// Answers the TU will send: (when, transaction, code).
    scheduled: Vec<(Instant, usize, u16)>,
    retransmit_2xx: Option<Retransmit2xx>,
    acked_2xx_at: Option<Instant>,
    gave_up_2xx_at: Option<Instant>,
}

impl Uas {
    fn seen(&self, m: M) -> usize {
        self.seen.iter().filter(|&&(_, x)| x == m).count()
    }

    fn txn(&self, m: M) -> &ServerTxn {
        self.txns
            .iter()
            .find(|t| t.req.is_request(m))
            .unwrap_or_else(|| panic!("no {m:?} server transaction"))
    }
}

/// The two peers, the link and the clock.
#[derive(Debug)]
struct Pair {
    start: Instant,
    now: Instant,
    wire: Wire,
    link: Link,
    uac: Uac,
    uas: Uas,
    steps: usize,
}

impl Pair {
    fn new(policy: UasPolicy) -> Self {
        let start = Instant::now();
        Self {
            start,
            now: start,
            wire: Wire {
                reliable: false,
                legacy: false,
            },
            link: Link {
                loss_permille: 0,
                rng: XorShift::new(0),
                rules: Vec::new(),
                in_flight: Vec::new(),
                seq: 0,
                log: Vec::new(),
            },
            uac: Uac {
                table: TxnTable::new(),
                txns: Vec::new(),
                next_branch: 1,
                invite: None,
                cancel_at: None,
                hangup: false,
                bye: None,
                ack_branch: None,
                acks_2xx: 0,
                stray: Vec::new(),
            },
            uas: Uas {
                policy,
                table: TxnTable::with_seed(0x5eed),
                txns: Vec::new(),
                seen: Vec::new(),
                scheduled: Vec::new(),
                retransmit_2xx: None,
                acked_2xx_at: None,
                gave_up_2xx_at: None,
            },
            steps: 0,
        }
    }

    fn lossy(mut self, seed: u64, permille: u64) -> Self {
        self.link.rng = XorShift::new(seed);
        self.link.loss_permille = permille;
        self
    }

    fn drop_first(mut self, n: usize, matches: fn(&Msg) -> bool) -> Self {
        self.link.rules.push(DropRule {
            matches,
            remaining: n,
        });
        self
    }

    fn reliability(&self) -> Reliability {
        if self.wire.reliable {
            Reliability::Reliable
        } else {
            Reliability::Unreliable
        }
    }

    /// Time since the start.
    fn elapsed(&self, at: Instant) -> Duration {
        at - self.start
    }

    /// Datagrams `from` sent (lost ones included) that satisfy `f`.
    fn sent(&self, from: Side, f: impl Fn(&Msg) -> bool) -> usize {
        self.link
            .log
            .iter()
            .filter(|s| s.from == from && f(&s.msg))
            .count()
    }

    // --- driving ---

    /// The next moment something happens: a delivery, a transaction timer or a TU timer.
    fn next_wakeup(&self) -> Option<Instant> {
        let client = self.uac.txns.iter().filter_map(ClientTxn::poll_timeout);
        let server = self.uas.txns.iter().filter_map(ServerTxn::poll_timeout);
        let tu = self
            .uac
            .cancel_at
            .into_iter()
            .chain(self.uas.scheduled.iter().map(|s| s.0))
            .chain(self.uas.retransmit_2xx.map(|r| r.next));
        self.link
            .next()
            .into_iter()
            .chain(client)
            .chain(server)
            .chain(tu)
            .min()
    }

    /// Jumps to the next event and handles everything due then. `false` once nothing is left.
    fn step(&mut self) -> bool {
        let Some(at) = self.next_wakeup() else {
            return false;
        };
        assert!(at >= self.now, "time never goes backwards");
        self.now = at;
        self.steps += 1;
        assert!(self.steps < 100_000, "the simulation does not settle");

        while let Some(d) = self.link.pop_due(self.now) {
            match d.to {
                Side::Uas => self.uas_receive(&d.bytes),
                Side::Uac => self.uac_receive(&d.bytes),
            }
        }
        for i in 0..self.uac.txns.len() {
            if self.uac.txns[i]
                .poll_timeout()
                .is_some_and(|t| t <= self.now)
            {
                match &mut self.uac.txns[i].m {
                    ClientMachine::Invite(t) => t.handle_timeout(self.now),
                    ClientMachine::NonInvite(t) => t.handle_timeout(self.now),
                }
                self.pump_client(i);
            }
        }
        for i in 0..self.uas.txns.len() {
            if self.uas.txns[i]
                .poll_timeout()
                .is_some_and(|t| t <= self.now)
            {
                match &mut self.uas.txns[i].m {
                    ServerMachine::Invite(t) => t.handle_timeout(self.now),
                    ServerMachine::NonInvite(t) => t.handle_timeout(self.now),
                }
                self.pump_server(i);
            }
        }
        self.uac_timers();
        self.uas_timers();
        true
    }

    /// Steps until nothing is left to happen.
    fn run(&mut self) {
        while self.step() {}
    }

    // --- UAC ---

    fn uac_start(&mut self, method: M) -> usize {
        let branch = self.uac.next_branch;
        self.uac.next_branch += 1;
        let i = self.uac_start_txn(Msg::Request { method, branch });
        if method == M::Invite {
            self.uac.invite = Some(i);
        }
        i
    }

    fn uac_start_txn(&mut self, req: Msg) -> usize {
        let Msg::Request { method, branch } = req else {
            panic!("a client transaction starts with a request")
        };
        let m = match method {
            M::Invite => ClientMachine::Invite(ClientInvite::new(self.now, T, self.reliability())),
            _ => ClientMachine::NonInvite(ClientNonInvite::new(self.now, T, self.reliability())),
        };
        let i = self.uac.txns.len();
        self.uac.txns.push(ClientTxn {
            req,
            m,
            transmissions: 0,
            acks: 0,
            responses: Vec::new(),
            timed_out_at: None,
            ended_at: None,
        });
        let branch = self.wire.branch(branch);
        let key = ClientKey::new(branch.as_bytes(), method.name().as_bytes()).into_owned();
        assert_eq!(self.uac.table.insert(key, i), None, "branches are unique");
        self.pump_client(i);
        i
    }

    /// Sends CANCEL for the INVITE: its own transaction, same branch (§9.1).
    fn uac_cancel(&mut self) {
        let inv = self.uac.invite.expect("an INVITE to cancel");
        let Msg::Request { branch, .. } = self.uac.txns[inv].req else {
            unreachable!("client transactions hold requests")
        };
        self.uac.hangup = true;
        self.uac_start_txn(Msg::Request {
            method: M::Cancel,
            branch,
        });
    }

    fn uac_timers(&mut self) {
        if self.uac.cancel_at.is_some_and(|t| t <= self.now) {
            self.uac.cancel_at = None;
            self.uac_cancel();
        }
    }

    fn uac_receive(&mut self, bytes: &[u8]) {
        let mut headers = [EMPTY_HEADER; 16];
        let msg = parse(bytes, &mut headers).expect("the harness renders valid SIP");
        let key = ClientKey::from_response(&msg).expect("responses carry Via and CSeq");
        let code = msg.status_code().expect("a response");
        match self.uac.table.get(&key).copied() {
            Some(i) => {
                match &mut self.uac.txns[i].m {
                    ClientMachine::Invite(t) => t.handle_response(self.now, code),
                    ClientMachine::NonInvite(t) => t.handle_response(self.now, code),
                }
                self.pump_client(i);
            }
            None => {
                let method = M::of(msg.cseq().expect("CSeq").method_kind());
                self.uac.stray.push((
                    self.now,
                    Msg::Response {
                        method,
                        branch: 0,
                        code,
                    },
                ));
                // A 2xx after Timer M: the UAC core still ACKs it (RFC 6026 §8.4).
                if method == M::Invite && (200..300).contains(&code) {
                    self.uac_ack_2xx();
                }
            }
        }
    }

    fn pump_client(&mut self, i: usize) {
        loop {
            let out = match &mut self.uac.txns[i].m {
                ClientMachine::Invite(t) => t.poll_output(),
                ClientMachine::NonInvite(t) => t.poll_output(),
            };
            let Some(out) = out else { break };
            let txn = &mut self.uac.txns[i];
            match out {
                Output::Transmit => {
                    txn.transmissions += 1;
                    let req = txn.req;
                    self.link
                        .send(self.now, Side::Uac, req, self.wire.render(req));
                }
                Output::Ack => {
                    txn.acks += 1;
                    let Msg::Request { branch, .. } = txn.req else {
                        unreachable!()
                    };
                    let ack = Msg::Request {
                        method: M::Ack,
                        branch,
                    };
                    self.link
                        .send(self.now, Side::Uac, ack, self.wire.render(ack));
                }
                Output::Response(code) => {
                    txn.responses.push((self.now, code));
                    if txn.req.is_request(M::Invite) && (200..300).contains(&code) {
                        self.uac_ack_2xx();
                    }
                }
                Output::TimedOut => txn.timed_out_at = Some(self.now),
                Output::TransportError => panic!("the simulated transport never fails"),
                Output::Terminated => {
                    txn.ended_at = Some(self.now);
                    self.uac.table.retain(|_, &mut j| j != i);
                }
            }
        }
    }

    /// The UAC core's ACK for a 2xx: end to end, its own branch, not a transaction (§13.2.2.4).
    /// A TU that wanted the call gone sends BYE after it (§15: a 2xx after CANCEL).
    fn uac_ack_2xx(&mut self) {
        let branch = *self.uac.ack_branch.get_or_insert_with(|| {
            self.uac.next_branch += 1;
            self.uac.next_branch - 1
        });
        let ack = Msg::Request {
            method: M::Ack,
            branch,
        };
        self.uac.acks_2xx += 1;
        self.link
            .send(self.now, Side::Uac, ack, self.wire.render(ack));
        if self.uac.hangup && self.uac.bye.is_none() {
            self.uac.bye = Some(self.uac_start(M::Bye));
        }
    }

    // --- UAS ---

    fn uas_receive(&mut self, bytes: &[u8]) {
        let mut headers = [EMPTY_HEADER; 16];
        let msg = parse(bytes, &mut headers).expect("the harness renders valid SIP");
        let key = ServerKey::from_request(&msg).expect("requests carry the fields to match");
        let method = M::of(msg.method().expect("a request"));
        match self.uas.table.get(&key).copied() {
            Some(i) => {
                let accepted = matches!(&self.uas.txns[i].m,
                    ServerMachine::Invite(t) if t.state() == ServerInviteState::Accepted);
                match &mut self.uas.txns[i].m {
                    // An ACK that matches an accepted INVITE is the TU's (RFC 6026 §7.1).
                    ServerMachine::Invite(_) if key.is_ack() && accepted => self.uas_ack_2xx(),
                    ServerMachine::Invite(t) if key.is_ack() => t.handle_ack(self.now),
                    ServerMachine::Invite(t) => t.handle_request_retransmission(self.now),
                    ServerMachine::NonInvite(t) => t.handle_request_retransmission(self.now),
                }
                self.pump_server(i);
            }
            // An ACK that matches no transaction acknowledges a 2xx (§17.2.3).
            None if method == M::Ack => self.uas_ack_2xx(),
            None => self.uas_new_request(key, method),
        }
    }

    fn uas_new_request(&mut self, key: ServerKey<'_>, method: M) {
        let branch = self.branch_number(key.branch().expect("the UAC always sets a branch"));
        let m = match method {
            M::Invite => ServerMachine::Invite(ServerInvite::new(self.now, T, self.reliability())),
            _ => ServerMachine::NonInvite(ServerNonInvite::new(self.now, T, self.reliability())),
        };
        let i = self.uas.txns.len();
        self.uas.txns.push(ServerTxn {
            req: Msg::Request { method, branch },
            m,
            last_code: None,
            sent: Vec::new(),
            timed_out_at: None,
            ended_at: None,
        });
        let mut stored = key.into_owned();
        // Our final responses carry To tag `uas1`: an RFC 2543 ACK matches by it (§17.2.3).
        stored.set_response_to_tag(b"uas1");
        self.uas.table.insert(stored, i);
        self.uas.seen.push((self.now, method));

        let policy = self.uas.policy;
        match method {
            M::Invite => {
                if policy.trying {
                    self.uas_respond(i, 100);
                }
                if let Some((delay, code)) = policy.invite_final {
                    self.uas.scheduled.push((self.now + delay, i, code));
                }
            }
            M::Options => {
                if let Some((delay, code)) = policy.non_invite_final {
                    self.uas.scheduled.push((self.now + delay, i, code));
                }
            }
            M::Bye => self.uas_respond(i, 200),
            // §9.2: find the INVITE as if the CANCEL were an INVITE; 200 to the CANCEL, and
            // 487 to the INVITE if it is still unanswered. No INVITE: 481.
            M::Cancel => match key
                .invite_of_cancel()
                .and_then(|k| self.uas.table.get(&k).copied())
            {
                Some(inv) => {
                    self.uas_respond(i, 200);
                    if self.uas.txns[inv].invite_state() == ServerInviteState::Proceeding {
                        self.uas.scheduled.retain(|s| s.1 != inv);
                        self.uas_respond(inv, 487);
                    }
                }
                None => self.uas_respond(i, 481),
            },
            M::Ack => unreachable!("an unmatched ACK goes to the TU"),
        }
    }

    /// The number of a branch the UAC rendered (to render our responses).
    fn branch_number(&self, branch: &[u8]) -> u32 {
        let digits = std::str::from_utf8(branch)
            .expect("ascii")
            .trim_start_matches("z9hG4bK")
            .trim_start_matches("old");
        let radix = if self.wire.legacy { 10 } else { 16 };
        u32::from_str_radix(digits, radix).expect("a number")
    }

    /// The TU sends a response through the server transaction.
    fn uas_respond(&mut self, i: usize, code: u16) {
        let txn = &mut self.uas.txns[i];
        txn.last_code = Some(code);
        match &mut txn.m {
            ServerMachine::Invite(t) => {
                t.handle_tu_response(self.now, code);
                if (200..300).contains(&code) && self.uas.retransmit_2xx.is_none() {
                    self.uas.retransmit_2xx = Some(Retransmit2xx {
                        txn: i,
                        next: self.now + T.t1,
                        interval: T.t1,
                        give_up: self.now + 64 * T.t1,
                    });
                }
            }
            ServerMachine::NonInvite(t) => t.handle_tu_response(self.now, code),
        }
        self.pump_server(i);
    }

    fn uas_ack_2xx(&mut self) {
        self.uas.seen.push((self.now, M::Ack));
        self.uas.retransmit_2xx = None;
        self.uas.acked_2xx_at.get_or_insert(self.now);
    }

    fn uas_timers(&mut self) {
        let now = self.now;
        let mut due: Vec<_> = self
            .uas
            .scheduled
            .iter()
            .copied()
            .filter(|s| s.0 <= now)
            .collect();
        self.uas.scheduled.retain(|s| s.0 > now);
        due.sort_by_key(|s| s.0);
        for (_, i, code) in due {
            let unanswered = match &self.uas.txns[i].m {
                ServerMachine::Invite(t) => t.state() == ServerInviteState::Proceeding,
                ServerMachine::NonInvite(t) => {
                    matches!(t.state(), ServerState::Trying | ServerState::Proceeding)
                }
            };
            if unanswered {
                self.uas_respond(i, code);
            }
        }
        if let Some(mut r) = self.uas.retransmit_2xx.filter(|r| r.next <= now) {
            if now >= r.give_up {
                // §13.3.1.4: no ACK within 64*T1; the TU would now send BYE.
                self.uas.retransmit_2xx = None;
                self.uas.gave_up_2xx_at = Some(now);
                return;
            }
            let code = self.uas.txns[r.txn].last_code.unwrap_or(200);
            self.uas_respond(r.txn, code);
            r.interval = (r.interval * 2).min(T.t2);
            r.next = now + r.interval;
            self.uas.retransmit_2xx = Some(r);
        }
    }

    fn pump_server(&mut self, i: usize) {
        loop {
            let out = match &mut self.uas.txns[i].m {
                ServerMachine::Invite(t) => t.poll_output(),
                ServerMachine::NonInvite(t) => t.poll_output(),
            };
            let Some(out) = out else { break };
            let txn = &mut self.uas.txns[i];
            match out {
                Output::Transmit => {
                    let code = txn.last_code.expect("a response to send");
                    txn.sent.push(code);
                    let Msg::Request { method, branch } = txn.req else {
                        unreachable!()
                    };
                    let resp = Msg::Response {
                        method,
                        branch,
                        code,
                    };
                    self.link
                        .send(self.now, Side::Uas, resp, self.wire.render(resp));
                }
                Output::TimedOut => txn.timed_out_at = Some(self.now),
                Output::Terminated => {
                    txn.ended_at = Some(self.now);
                    self.uas.table.retain(|_, &mut j| j != i);
                }
                other => panic!("a server transaction never outputs {other:?}"),
            }
        }
    }
}

fn invite_of(p: &Pair) -> &ClientTxn {
    &p.uac.txns[p.uac.invite.expect("an INVITE was sent")]
}

// === Scenarios ===

#[test]
fn lost_invite_is_retransmitted_by_timer_a_and_the_call_completes() {
    let mut p = Pair::new(UasPolicy::default()).drop_first(1, |m| m.is_request(M::Invite));
    p.uac_start(M::Invite);
    p.run();

    let inv = invite_of(&p);
    assert_eq!(
        inv.transmissions, 2,
        "the first INVITE was lost, Timer A resent it"
    );
    // Resent at T1, 100 at once, 200 after 100 ms: answered at T1 + 2 latencies + 100 ms.
    let answered = T.t1 + 2 * LATENCY + ms(100);
    assert_eq!(inv.codes(), vec![100, 200]);
    assert_eq!(p.elapsed(inv.responses[1].0), answered);
    assert_eq!(p.uac.acks_2xx, 1);
    assert_eq!(p.uas.seen(M::Invite), 1);
    assert_eq!(
        p.uas.acked_2xx_at.map(|t| p.elapsed(t)),
        Some(answered + LATENCY)
    );
    assert_eq!(
        p.uas.txn(M::Invite).count_sent(200),
        1,
        "the ACK came within T1"
    );
    // Both ended by RFC 6026 timers: M on the client, L on the server, 64*T1 after the 2xx.
    assert_eq!(inv.invite_state(), ClientInviteState::Terminated);
    assert_eq!(
        inv.ended_at.map(|t| p.elapsed(t)),
        Some(answered + 64 * T.t1)
    );
    let srv = p.uas.txn(M::Invite);
    assert_eq!(srv.invite_state(), ServerInviteState::Terminated);
    assert_eq!(
        srv.ended_at.map(|t| p.elapsed(t)),
        Some(answered - LATENCY + 64 * T.t1)
    );
    assert!(inv.timed_out_at.is_none() && srv.timed_out_at.is_none());
    assert!(p.uac.table.is_empty() && p.uas.table.is_empty());
}

#[test]
fn lost_2xx_is_retransmitted_by_the_uas_core_until_the_ack() {
    let mut p = Pair::new(UasPolicy::default()).drop_first(1, |m| m.is_response(M::Invite, 200));
    p.uac_start(M::Invite);
    p.run();

    let inv = invite_of(&p);
    assert_eq!(inv.transmissions, 1, "the 100 stopped Timer A");
    // 200 sent at latency + 100 ms and lost; the UAS core resends it T1 later (RFC 6026 §8.1).
    let first_200 = LATENCY + ms(100);
    assert_eq!(inv.codes(), vec![100, 200]);
    assert_eq!(p.elapsed(inv.responses[1].0), first_200 + T.t1 + LATENCY);
    assert_eq!(p.uas.txn(M::Invite).count_sent(200), 2);
    assert_eq!(p.uac.acks_2xx, 1);
    assert_eq!(
        p.uas.acked_2xx_at.map(|t| p.elapsed(t)),
        Some(first_200 + T.t1 + 2 * LATENCY)
    );
    assert!(p.uas.gave_up_2xx_at.is_none());
    assert_eq!(
        p.uas.txn(M::Invite).ended_at.map(|t| p.elapsed(t)),
        Some(first_200 + 64 * T.t1),
        "Timer L runs from the first 2xx"
    );
}

#[test]
fn lost_ack_for_2xx_brings_another_2xx_and_another_ack() {
    let mut p = Pair::new(UasPolicy::default())
        .drop_first(1, |m| m.is_response(M::Invite, 200))
        .drop_first(1, |m| m.is_request(M::Ack));
    p.uac_start(M::Invite);
    p.run();

    let inv = invite_of(&p);
    // 200 #1 lost, #2 (T1) arrives but its ACK is lost, #3 (T1 + 2*T1) arrives and is ACKed.
    assert_eq!(p.uas.txn(M::Invite).count_sent(200), 3);
    assert_eq!(
        inv.codes(),
        vec![100, 200, 200],
        "every 2xx goes up (RFC 6026 §8.4)"
    );
    assert_eq!(p.uac.acks_2xx, 2);
    assert_eq!(
        p.sent(Side::Uac, |m| m.is_request(M::Ack)),
        2,
        "the same ACK twice"
    );
    let first_200 = LATENCY + ms(100);
    assert_eq!(
        p.uas.acked_2xx_at.map(|t| p.elapsed(t)),
        Some(first_200 + 3 * T.t1 + 2 * LATENCY)
    );
    assert_eq!(p.uas.seen(M::Ack), 1);
}

#[test]
fn lost_ack_for_non_2xx_is_recovered_by_timer_g() {
    let policy = UasPolicy {
        trying: false,
        invite_final: Some((Duration::ZERO, 486)),
        ..UasPolicy::default()
    };
    let mut p = Pair::new(policy).drop_first(1, |m| m.is_request(M::Ack));
    p.uac_start(M::Invite);
    p.run();

    let inv = invite_of(&p);
    assert_eq!(
        inv.codes(),
        vec![486],
        "the retransmitted 486 is not passed up again"
    );
    assert_eq!(inv.acks, 2, "the transaction ACKs each 486 (§17.1.1.2)");
    let srv = p.uas.txn(M::Invite);
    assert_eq!(srv.count_sent(486), 2, "sent, then once more on Timer G");
    assert!(srv.timed_out_at.is_none());
    // The second ACK arrives at latency + T1 + 2 latencies; Timer I (T4) ends the transaction.
    assert_eq!(srv.invite_state(), ServerInviteState::Terminated);
    assert_eq!(
        srv.ended_at.map(|t| p.elapsed(t)),
        Some(3 * LATENCY + T.t1 + T.t4)
    );
    // Timer D ends the client transaction 32 s after the first 486.
    assert_eq!(
        inv.ended_at.map(|t| p.elapsed(t)),
        Some(2 * LATENCY + TIMER_D)
    );
    assert_eq!(p.uas.seen(M::Invite), 1);
    assert_eq!(
        p.uas.seen(M::Ack),
        0,
        "a non-2xx ACK stays in the transaction"
    );
}

#[test]
fn timer_h_ends_the_server_transaction_when_every_ack_is_lost() {
    let policy = UasPolicy {
        trying: false,
        invite_final: Some((Duration::ZERO, 486)),
        ..UasPolicy::default()
    };
    let mut p = Pair::new(policy).drop_first(usize::MAX, |m| m.is_request(M::Ack));
    p.uac_start(M::Invite);
    p.run();

    let srv = p.uas.txn(M::Invite);
    assert_eq!(
        srv.count_sent(486),
        max_sends(Some(T.t2)),
        "G doubles up to T2"
    );
    let at: Vec<u128> = p
        .link
        .log
        .iter()
        .filter(|s| s.msg.is_response(M::Invite, 486))
        .map(|s| (s.at - p.start - LATENCY).as_millis())
        .collect();
    assert_eq!(
        at,
        vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(
        srv.timed_out_at.map(|t| p.elapsed(t)),
        Some(LATENCY + 64 * T.t1),
        "Timer H"
    );
    assert_eq!(srv.ended_at, srv.timed_out_at);
    let inv = invite_of(&p);
    assert_eq!(inv.codes(), vec![486]);
    assert_eq!(
        inv.acks, 11,
        "every retransmission arrived before Timer D and was ACKed"
    );
    assert_eq!(
        inv.ended_at.map(|t| p.elapsed(t)),
        Some(2 * LATENCY + TIMER_D)
    );
}

#[test]
fn retransmitted_invites_are_absorbed_by_the_server_transaction() {
    let policy = UasPolicy {
        trying: false,
        invite_final: Some((ms(2000), 486)),
        ..UasPolicy::default()
    };
    let mut p = Pair::new(policy);
    p.uac_start(M::Invite);
    p.run();

    let inv = invite_of(&p);
    assert_eq!(
        inv.transmissions, 3,
        "at 0, T1 and 3*T1; the 486 came before 7*T1"
    );
    assert_eq!(p.uas.seen(M::Invite), 1, "the TU saw the INVITE once");
    assert_eq!(
        p.uas.txn(M::Invite).sent,
        vec![486],
        "nothing to repeat before the TU answers"
    );
    assert_eq!(inv.codes(), vec![486]);
    assert_eq!(p.elapsed(inv.responses[0].0), 2 * LATENCY + ms(2000));
}

#[test]
fn retransmitted_non_invite_gets_the_final_response_again() {
    let mut p = Pair::new(UasPolicy::default()).drop_first(1, |m| m.is_response(M::Options, 200));
    let opt = p.uac_start(M::Options);
    p.run();

    let tx = &p.uac.txns[opt];
    assert_eq!(tx.transmissions, 2, "Timer E resent it at T1");
    assert_eq!(p.uas.seen(M::Options), 1);
    assert_eq!(
        p.uas.txn(M::Options).sent,
        vec![200, 200],
        "Completed answers again"
    );
    assert_eq!(tx.codes(), vec![200]);
    let got = T.t1 + 2 * LATENCY;
    assert_eq!(p.elapsed(tx.responses[0].0), got);
    assert_eq!(
        tx.ended_at.map(|t| p.elapsed(t)),
        Some(got + T.t4),
        "Timer K"
    );
    assert_eq!(
        p.uas.txn(M::Options).ended_at.map(|t| p.elapsed(t)),
        Some(LATENCY + 64 * T.t1),
        "Timer J"
    );
}

#[test]
fn timer_b_times_out_an_unanswered_invite() {
    let policy = UasPolicy {
        trying: false,
        invite_final: None,
        ..UasPolicy::default()
    };
    let mut p = Pair::new(policy);
    p.uac_start(M::Invite);
    p.run();

    let inv = invite_of(&p);
    assert_eq!(inv.timed_out_at.map(|t| p.elapsed(t)), Some(64 * T.t1));
    assert_eq!(inv.ended_at, inv.timed_out_at);
    assert_eq!(inv.transmissions, max_sends(None));
    assert_eq!(inv.transmissions, 7, "A doubles without cap");
    assert!(inv.responses.is_empty());
    assert_eq!(inv.invite_state(), ClientInviteState::Terminated);
    assert_eq!(p.uas.seen(M::Invite), 1);
    assert_eq!(
        p.uas.txn(M::Invite).invite_state(),
        ServerInviteState::Proceeding,
        "the UAS TU never answered; no server timer runs in Proceeding"
    );
}

#[test]
fn timer_f_times_out_an_unanswered_non_invite() {
    let policy = UasPolicy {
        non_invite_final: None,
        ..UasPolicy::default()
    };
    let mut p = Pair::new(policy);
    let opt = p.uac_start(M::Options);
    p.run();

    let tx = &p.uac.txns[opt];
    assert_eq!(tx.timed_out_at.map(|t| p.elapsed(t)), Some(64 * T.t1));
    assert_eq!(tx.transmissions, max_sends(Some(T.t2)));
    assert_eq!(tx.transmissions, 11);
    assert_eq!(tx.state(), ClientState::Terminated);
    assert_eq!(p.uas.seen(M::Options), 1);
    assert_eq!(p.uas.txn(M::Options).state(), ServerState::Trying);
}

#[test]
fn cancel_racing_a_2xx_leaves_an_answered_call_that_the_uac_ends_with_bye() {
    let policy = UasPolicy {
        invite_final: Some((ms(300), 200)),
        ..UasPolicy::default()
    };
    let mut p = Pair::new(policy);
    p.uac_start(M::Invite);
    // The 200 leaves the UAS at 320 ms; the CANCEL leaves the UAC at 330 ms: they cross.
    p.uac.cancel_at = Some(p.start + ms(330));
    p.run();

    let inv = invite_of(&p);
    let cancel = p
        .uac
        .txns
        .iter()
        .find(|t| t.req.is_request(M::Cancel))
        .expect("a CANCEL was sent");
    assert_eq!(
        inv.codes(),
        vec![100, 200],
        "the INVITE was answered, not cancelled"
    );
    assert_eq!(
        cancel.codes(),
        vec![200],
        "§9.2: a CANCEL that finds its INVITE gets 200"
    );
    assert_eq!(p.sent(Side::Uas, |m| m.is_response(M::Invite, 487)), 0);
    // The UAC core ACKed the 2xx and hung up with BYE.
    assert_eq!(p.uac.acks_2xx, 1);
    let bye = &p.uac.txns[p.uac.bye.expect("a BYE was sent")];
    assert_eq!(bye.codes(), vec![200]);
    let order: Vec<M> = p.uas.seen.iter().map(|&(_, m)| m).collect();
    assert_eq!(order, vec![M::Invite, M::Cancel, M::Ack, M::Bye]);
    // Final state: every transaction over, each by its own timer, none timed out.
    let answered = ms(340);
    assert_eq!(inv.invite_state(), ClientInviteState::Terminated);
    assert_eq!(
        inv.ended_at.map(|t| p.elapsed(t)),
        Some(answered + 64 * T.t1),
        "M"
    );
    assert_eq!(cancel.state(), ClientState::Terminated);
    assert_eq!(
        cancel.ended_at.map(|t| p.elapsed(t)),
        Some(ms(330) + 2 * LATENCY + T.t4),
        "K"
    );
    assert_eq!(
        bye.ended_at.map(|t| p.elapsed(t)),
        Some(answered + 2 * LATENCY + T.t4)
    );
    for t in &p.uac.txns {
        assert!(t.ended_at.is_some() && t.timed_out_at.is_none(), "{t:?}");
    }
    for t in &p.uas.txns {
        assert!(t.ended_at.is_some() && t.timed_out_at.is_none(), "{t:?}");
    }
    assert_eq!(p.uas.txn(M::Invite).count_sent(200), 1);
    assert!(p.uac.stray.is_empty());
}

#[test]
fn cancel_before_the_answer_gets_487_acked_by_the_transaction() {
    let mut p = Pair::new(UasPolicy {
        invite_final: Some((ms(1000), 200)),
        ..UasPolicy::default()
    });
    p.uac_start(M::Invite);
    p.uac.cancel_at = Some(p.start + ms(100));
    p.run();

    let inv = invite_of(&p);
    assert_eq!(inv.codes(), vec![100, 487]);
    assert_eq!(inv.acks, 1);
    assert_eq!(p.uac.acks_2xx, 0);
    assert!(p.uac.bye.is_none());
    assert_eq!(p.sent(Side::Uas, |m| m.is_response(M::Invite, 200)), 0);
    let srv = p.uas.txn(M::Invite);
    // The ACK arrives 2 latencies after the 487 (sent at 120 ms); then Timer I.
    assert_eq!(srv.ended_at.map(|t| p.elapsed(t)), Some(ms(160) + T.t4));
    assert_eq!(p.uas.seen(M::Ack), 0);
}

#[test]
fn reliable_transport_never_retransmits() {
    // Answers come after T1 and 2*T1, where UDP would have retransmitted.
    let mut p = Pair::new(UasPolicy {
        trying: false,
        invite_final: Some((ms(1200), 486)),
        non_invite_final: Some((ms(1200), 200)),
    });
    p.wire.reliable = true;
    let inv = p.uac_start(M::Invite);
    let opt = p.uac_start(M::Options);
    p.run();

    let answered = LATENCY + ms(1200);
    for i in [inv, opt] {
        let tx = &p.uac.txns[i];
        assert_eq!(tx.transmissions, 1, "{tx:?}");
        assert_eq!(tx.responses.len(), 1);
        // No Timer D or K on a reliable transport: over with the final response.
        assert_eq!(tx.ended_at.map(|t| p.elapsed(t)), Some(answered + LATENCY));
    }
    assert_eq!(p.uac.txns[inv].acks, 1);
    assert_eq!(p.uas.txn(M::Invite).sent, vec![486], "no Timer G");
    assert_eq!(p.uas.txn(M::Options).sent, vec![200]);
    // The server INVITE transaction ends on the ACK (no Timer I), the OPTIONS one on its final.
    assert_eq!(
        p.uas.txn(M::Invite).ended_at.map(|t| p.elapsed(t)),
        Some(answered + 2 * LATENCY)
    );
    assert_eq!(
        p.uas.txn(M::Options).ended_at.map(|t| p.elapsed(t)),
        Some(answered)
    );
    assert!(p.link.log.iter().all(|s| !s.lost));
    assert_eq!(
        p.link.log.len(),
        5,
        "INVITE, OPTIONS, 486, 200, ACK: each once"
    );
}

#[test]
fn rfc2543_client_ack_matches_by_the_response_to_tag() {
    // A legacy client: no magic cookie, so the UAS matches on Request-URI, tags, Call-ID, CSeq
    // and top Via (§17.2.3), and its ACK by the To tag of our 486.
    let policy = UasPolicy {
        trying: false,
        invite_final: Some((Duration::ZERO, 486)),
        ..UasPolicy::default()
    };
    let mut p = Pair::new(policy)
        .drop_first(1, |m| m.is_request(M::Ack))
        .drop_first(1, |m| m.is_request(M::Invite));
    p.wire.legacy = true;
    p.uac_start(M::Invite);
    p.run();

    let inv = invite_of(&p);
    assert_eq!(inv.transmissions, 2);
    assert_eq!(inv.codes(), vec![486]);
    assert_eq!(inv.acks, 2);
    let srv = p.uas.txn(M::Invite);
    assert_eq!(srv.count_sent(486), 2);
    assert!(
        srv.timed_out_at.is_none(),
        "the second ACK matched: no Timer H"
    );
    assert_eq!(
        srv.ended_at.map(|t| p.elapsed(t)),
        Some(T.t1 + 3 * LATENCY + T.t1 + T.t4)
    );
    assert_eq!(p.uas.seen(M::Invite), 1);
    assert_eq!(p.uas.seen(M::Ack), 0);
}

#[test]
fn rfc2543_cancel_finds_its_invite() {
    let mut p = Pair::new(UasPolicy {
        invite_final: Some((ms(1000), 200)),
        ..UasPolicy::default()
    });
    p.wire.legacy = true;
    p.uac_start(M::Invite);
    p.uac.cancel_at = Some(p.start + ms(100));
    p.run();

    assert_eq!(invite_of(&p).codes(), vec![100, 487]);
    let cancel = p.uas.txn(M::Cancel);
    assert_eq!(cancel.sent, vec![200]);
}

/// Runs one OPTIONS transaction per seed over a link losing `permille`/1000 of the datagrams
/// each way, checks every invariant, and returns (completed, timed out).
fn sweep_non_invite(permille: u64) -> (usize, usize) {
    let bound = max_sends(Some(T.t2));
    let (mut completed, mut timed_out) = (0, 0);
    for seed in 0..200 {
        let mut p = Pair::new(UasPolicy::default()).lossy(seed, permille);
        let opt = p.uac_start(M::Options);
        p.run();

        let tx = &p.uac.txns[opt];
        let ctx = format!("loss {permille}‰, seed {seed}: {tx:?}");
        assert!(tx.transmissions >= 1 && tx.transmissions <= bound, "{ctx}");
        assert_eq!(tx.state(), ClientState::Terminated, "{ctx}");
        let seen = p.uas.seen(M::Options);
        assert!(seen <= 1, "the server absorbs retransmissions: {ctx}");
        match (tx.codes().as_slice(), tx.timed_out_at) {
            ([200], None) => {
                completed += 1;
                let (got, _) = tx.responses[0];
                assert!(p.elapsed(got) < 64 * T.t1, "{ctx}");
                assert_eq!(tx.ended_at, Some(got + T.t4), "Timer K: {ctx}");
                assert_eq!(seen, 1, "{ctx}");
            }
            ([], Some(at)) => {
                timed_out += 1;
                assert_eq!(p.elapsed(at), 64 * T.t1, "Timer F: {ctx}");
                assert_eq!(tx.ended_at, Some(at), "{ctx}");
                // No provisional response, so E stayed on its Trying schedule to the end.
                assert_eq!(tx.transmissions, bound, "{ctx}");
            }
            _ => panic!("exactly one of response and timeout: {ctx}"),
        }
        if seen == 1 {
            let srv = p.uas.txn(M::Options);
            assert_eq!(srv.state(), ServerState::Terminated, "Timer J: {ctx}");
            assert!(srv.timed_out_at.is_none(), "{ctx}");
            assert!(srv.sent.iter().all(|&c| c == 200), "{ctx}");
            assert!(srv.sent.len() <= tx.transmissions, "{ctx}");
        }
        assert!(p.uac.stray.is_empty(), "{ctx}");
    }
    (completed, timed_out)
}

#[test]
fn seeded_sweep_non_invite_completes_or_times_out_never_both() {
    // 30% loss each way: P(no exchange in 11 tries) = (1 - 0.7^2)^11 ≈ 6e-4 per seed.
    let (completed, timed_out) = sweep_non_invite(300);
    assert!(
        completed >= 195,
        "completed {completed}, timed out {timed_out}"
    );
    // 70% loss: (1 - 0.3^2)^11 ≈ 0.35, so both outcomes occur and Timer F is exercised.
    let (completed, timed_out) = sweep_non_invite(700);
    assert!(
        completed > 50 && timed_out > 30,
        "completed {completed}, timed out {timed_out}"
    );
}

/// How an INVITE over a lossy link ended, from the UAC's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InviteOutcome {
    /// A 2xx reached the UAC TU.
    Answered,
    /// Timer B: no response at all while Calling.
    TimedOut,
    /// A provisional arrived (Timer B stops mattering, §17.1.1.2) but every 2xx was lost until
    /// the UAS core gave up: the UAC TU's own timer (Expires, §13.3.1.1) must end this.
    StuckInProceeding,
}

fn sweep_invite(permille: u64) -> Vec<InviteOutcome> {
    let a_bound = max_sends(None);
    let retransmit_bound = max_sends(Some(T.t2));
    let mut outcomes = Vec::new();
    for seed in 0..200 {
        let mut p = Pair::new(UasPolicy::default()).lossy(seed, permille);
        p.uac_start(M::Invite);
        p.run();

        let inv = invite_of(&p);
        let ctx = format!("loss {permille}‰, seed {seed}: {inv:?}");
        assert!(inv.transmissions <= a_bound, "{ctx}");
        assert!(p.uas.seen(M::Invite) <= 1, "{ctx}");
        let got_2xx = inv.codes().contains(&200);
        let outcome = match (inv.timed_out_at, inv.invite_state()) {
            (Some(at), ClientInviteState::Terminated) => {
                assert_eq!(p.elapsed(at), 64 * T.t1, "Timer B: {ctx}");
                assert!(inv.responses.is_empty(), "B only fires in Calling: {ctx}");
                InviteOutcome::TimedOut
            }
            (None, ClientInviteState::Terminated) => {
                assert!(got_2xx, "{ctx}");
                InviteOutcome::Answered
            }
            (None, ClientInviteState::Proceeding) => {
                assert!(!got_2xx && p.uas.gave_up_2xx_at.is_some(), "{ctx}");
                InviteOutcome::StuckInProceeding
            }
            other => panic!("unexpected end {other:?}: {ctx}"),
        };
        outcomes.push(outcome);
        if got_2xx {
            assert!(p.uac.acks_2xx >= 1, "{ctx}");
            let sent_2xx = p.uas.txn(M::Invite).count_sent(200);
            assert!(sent_2xx >= 1 && sent_2xx <= retransmit_bound, "{ctx}");
        }
        if p.uas.seen(M::Invite) == 1 && inv.invite_state() != ClientInviteState::Proceeding {
            // The UAS core stops at the first ACK that arrives, or gives up at 64*T1.
            assert!(
                p.uas.acked_2xx_at.is_some() != p.uas.gave_up_2xx_at.is_some(),
                "{ctx}"
            );
        }
        if p.uas.acked_2xx_at.is_some() {
            // A 2xx the UAC saw, or one that came after Timer B and went to its core.
            assert!(got_2xx || !p.uac.stray.is_empty(), "{ctx}");
        }
    }
    outcomes
}

#[test]
fn seeded_sweep_invite_is_answered_or_times_out() {
    let count = |v: &[InviteOutcome], o| v.iter().filter(|&&x| x == o).count();
    let low = sweep_invite(300);
    assert!(count(&low, InviteOutcome::Answered) >= 195, "{low:?}");
    let high = sweep_invite(700);
    assert!(count(&high, InviteOutcome::Answered) > 50, "{high:?}");
    assert!(count(&high, InviteOutcome::TimedOut) > 0, "{high:?}");
}

// === Allocation ===

/// Counts allocations per thread, so the test below can show lookups allocate nothing.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    pub(super) struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
    // GlobalAlloc contract; the counter touches no allocated memory.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same layout contract as our caller's.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub(super) fn allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }
}

#[test]
fn parsing_keying_and_lookup_do_not_allocate() {
    let wire = Wire {
        reliable: false,
        legacy: false,
    };
    let invite = wire.render(Msg::Request {
        method: M::Invite,
        branch: 7,
    });
    let cancel = wire.render(Msg::Request {
        method: M::Cancel,
        branch: 7,
    });
    let resp = wire.render(Msg::Response {
        method: M::Invite,
        branch: 7,
        code: 180,
    });
    let mut servers: TxnTable<OwnedServerKey, u32> = TxnTable::with_seed(99);
    let mut clients: TxnTable<OwnedClientKey, u32> = TxnTable::with_seed(99);
    {
        let mut h = [EMPTY_HEADER; 16];
        let msg = parse(&invite, &mut h).expect("valid");
        servers.insert(ServerKey::from_request(&msg).expect("key").into_owned(), 1);
        clients.insert(ClientKey::from_request(&msg).expect("key").into_owned(), 2);
    }

    let before = counting::allocations();
    let mut h = [EMPTY_HEADER; 16];
    let msg = parse(&cancel, &mut h).expect("valid");
    let key = ServerKey::from_request(&msg).expect("key");
    let miss = servers.get(&key).copied();
    let target = key
        .invite_of_cancel()
        .and_then(|k| servers.get(&k).copied());
    let mut h = [EMPTY_HEADER; 16];
    let msg = parse(&resp, &mut h).expect("valid");
    let found = clients
        .get(&ClientKey::from_response(&msg).expect("key"))
        .copied();
    let after = counting::allocations();

    assert_eq!((miss, target, found), (None, Some(1), Some(2)));
    assert_eq!(after - before, 0, "parse, key and lookup allocate nothing");
}

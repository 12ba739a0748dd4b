//! The register-on-behalf agent against a scripted registrar, with injected time: digest,
//! refresh before the granted expiry, 423, wrong password backoff, failover between the
//! registrar's addresses, un-REGISTER, and evenly spread refreshes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sbc_config::net::Transport;
use sbc_config::{DigestUri, OutboundAuth, Secret};
use sip_codec::{Challenge, HeaderKind, Message, Writer, EMPTY_HEADER};
use sip_txn::Timers;
use trunks::answer::challenge;
use trunks::digest::Algorithm;
use trunks::nonce::{NonceCounts, Nonces};
use trunks::register::{Params, Phase, Registration, Transmit};
use trunks::verify::{verify, Check, UriPolicy, Verdict};

struct TestEnv(u64);

impl trunks::register::Env for TestEnv {
    fn branch(&mut self, txn: u16) -> Vec<u8> {
        format!("z9hG4bK-reg-{txn}").into_bytes()
    }
    fn random(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

const A1: &str = "192.0.2.10:5060";
const A2: &str = "192.0.2.11:5060";

fn params(password: &str, targets: &[&str]) -> Params {
    Params {
        trunk: "carrier".into(),
        auth: OutboundAuth {
            username: "sbc".into(),
            password: Secret::new(password),
            realm: None,
            digest_uri: DigestUri::RequestUri,
        },
        domain: "carrier.test".into(),
        targets: targets.iter().map(|a| a.parse().unwrap()).collect(),
        transport: Transport::Udp,
        via_proto: b"UDP",
        sent_by: b"198.51.100.1:5060".to_vec(),
        contact: b"sip:r0123456789abcdef@198.51.100.1:5060".to_vec(),
        expires_secs: 300,
        timers: Timers::default(),
    }
}

/// A registrar that challenges with qop=auth and checks credentials strictly.
struct Registrar {
    nonces: Nonces,
    counts: NonceCounts,
    password: &'static str,
    salt: u64,
}

impl Registrar {
    fn new(password: &'static str) -> Self {
        Self {
            nonces: Nonces::new([5; 32], 3600),
            counts: NonceCounts::default(),
            password,
            salt: 0,
        }
    }

    fn challenge(&mut self) -> String {
        self.salt += 1;
        let nonce = self.nonces.issue(1, self.salt, b"carrier.test");
        String::from_utf8(challenge(b"carrier.test", &nonce, Algorithm::Md5, false)).unwrap()
    }

    fn accepts(&self, req: &Message<'_, '_>) -> bool {
        let Some(h) = req.header(HeaderKind::Authorization) else {
            return false;
        };
        let creds = Challenge::parse(h.value, HeaderKind::Authorization).unwrap();
        let check = Check {
            realm: b"carrier.test",
            method: b"REGISTER",
            request_uri: b"sip:carrier.test",
            policy: UriPolicy::Exact,
            now_secs: 2,
        };
        matches!(
            verify(&creds, &check, &self.nonces, &self.counts, |_| Some(
                self.password.as_bytes()
            )),
            Verdict::Accepted { .. }
        )
    }
}

fn respond(req: &[u8], code: u16, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut hs = [EMPTY_HEADER; 32];
    let m = sip_codec::parse(req, &mut hs).unwrap();
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.status_line(code, b"Reason");
    w.copy_all(&m, |h| {
        matches!(
            h.kind,
            HeaderKind::Via | HeaderKind::From | HeaderKind::CallId | HeaderKind::CSeq
        )
    });
    let to = m.header(HeaderKind::To).unwrap().value;
    w.header_parts(b"To", &[to, b";tag=reg"]);
    for (n, v) in extra {
        w.header_named(n.as_bytes(), v.as_bytes());
    }
    w.finish();
    out
}

struct Rig {
    reg: Registration,
    env: TestEnv,
    now: Instant,
    sent: Vec<(Instant, Transmit)>,
}

impl Rig {
    fn new(p: Params) -> Self {
        let now = Instant::now();
        Self {
            reg: Registration::new(p, now, b"cid-1".to_vec(), b"ftag".to_vec()),
            env: TestEnv(1),
            now,
            sent: Vec::new(),
        }
    }

    /// Runs timers up to `now + d`; returns the requests sent, each once (UDP retransmissions
    /// left out: sip-txn's tests cover them).
    fn advance(&mut self, d: Duration) -> Vec<Transmit> {
        let mut out = self.advance_all(d);
        let mut seen = Vec::new();
        out.retain(|t| {
            let fresh = !seen.contains(&t.data);
            seen.push(t.data.clone());
            fresh
        });
        out
    }

    /// Runs timers up to `now + d`; returns everything sent.
    fn advance_all(&mut self, d: Duration) -> Vec<Transmit> {
        let end = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.reg.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            self.reg.handle_timeout(self.now, &mut self.env);
            out.extend(self.drain());
        }
        self.now = end;
        out
    }

    fn drain(&mut self) -> Vec<Transmit> {
        let out: Vec<Transmit> = std::iter::from_fn(|| self.reg.poll_transmit()).collect();
        self.sent.extend(out.iter().cloned().map(|t| (self.now, t)));
        out
    }

    fn reply(&mut self, req: &Transmit, code: u16, extra: &[(&str, &str)]) -> Vec<Transmit> {
        let resp = respond(&req.data, code, extra);
        let mut hs = [EMPTY_HEADER; 32];
        let m = sip_codec::parse(&resp, &mut hs).unwrap();
        self.reg
            .handle_response(self.now, &mut self.env, &m, attempt_of(req));
        self.drain()
    }
}

/// The attempt number the test Env wrote into the branch.
fn attempt_of(t: &Transmit) -> u16 {
    with_msg(t, |m| {
        let b = m.top_via().unwrap().branch().unwrap();
        std::str::from_utf8(&b[b"z9hG4bK-reg-".len()..])
            .unwrap()
            .parse()
            .unwrap()
    })
}

fn text(t: &Transmit) -> String {
    String::from_utf8(t.data.clone()).unwrap()
}

fn with_msg<R>(t: &Transmit, f: impl FnOnce(&Message<'_, '_>) -> R) -> R {
    let mut hs = [EMPTY_HEADER; 32];
    let m = sip_codec::parse(&t.data, &mut hs).unwrap();
    m.validate().unwrap();
    f(&m)
}

fn cseq(t: &Transmit) -> u32 {
    with_msg(t, |m| m.cseq().unwrap().seq)
}

fn one(out: &[Transmit]) -> &Transmit {
    assert_eq!(
        out.len(),
        1,
        "{:#?}",
        out.iter().map(text).collect::<Vec<_>>()
    );
    &out[0]
}

#[test]
fn register_401_credentials_200_then_refresh_with_nc_2() {
    let mut registrar = Registrar::new("pw");
    let mut rig = Rig::new(params("pw", &[A1]));
    assert_eq!(rig.reg.status().phase, Phase::Starting);
    let out = rig.advance(Duration::ZERO);
    let r1 = one(&out).clone();
    let t = text(&r1);
    assert!(
        t.starts_with("REGISTER sip:carrier.test SIP/2.0\r\n"),
        "{t}"
    );
    assert!(t.contains("To: <sip:sbc@carrier.test>\r\n"), "{t}");
    assert!(
        t.contains("Contact: <sip:r0123456789abcdef@198.51.100.1:5060>\r\n"),
        "{t}"
    );
    assert!(t.contains("Expires: 300\r\n"), "{t}");
    assert_eq!(r1.dest, A1.parse::<SocketAddr>().unwrap());
    assert_eq!(rig.reg.status().phase, Phase::Registering);

    let ch = registrar.challenge();
    let out = rig.reply(&r1, 401, &[("WWW-Authenticate", &ch)]);
    let r2 = one(&out).clone();
    assert_eq!(cseq(&r2), cseq(&r1) + 1, "CSeq + 1");
    with_msg(&r2, |m| {
        assert_eq!(m.call_id(), Some(&b"cid-1"[..]), "same Call-ID");
        assert!(registrar.accepts(m), "{}", text(&r2));
        let v = m.top_via().unwrap();
        assert_eq!(v.branch(), Some(&b"z9hG4bK-reg-2"[..]), "new branch");
    });

    let out = rig.reply(
        &r2,
        200,
        &[(
            "Contact",
            "<sip:r0123456789abcdef@198.51.100.1:5060>;expires=120, <sip:other@x>;expires=3600",
        )],
    );
    assert!(out.is_empty());
    let st = rig.reg.status();
    assert_eq!(st.phase, Phase::Registered);
    assert_eq!(
        st.granted_secs,
        Some(120),
        "our Contact's expires, not another's"
    );
    assert_eq!(st.failures, 0);
    let registered_at = rig.now;
    // Refreshed at 55% of the granted 120 s, with the nonce used again (nc=2).
    assert!(rig.advance(Duration::from_secs(65)).is_empty());
    let out = rig.advance(Duration::from_secs(2));
    let r3 = one(&out).clone();
    let refresh_at = rig.sent.iter().find(|(t, _)| *t > registered_at).unwrap().0;
    assert_eq!(refresh_at - registered_at, Duration::from_secs(66));
    let t = text(&r3);
    assert!(t.contains("nc=00000002"), "{t}");
    with_msg(&r3, |m| assert!(registrar.accepts(m)));
    assert_eq!(cseq(&r3), cseq(&r2) + 1);
    assert_eq!(
        rig.reg.status().phase,
        Phase::Registered,
        "still up while refreshing"
    );
}

#[test]
fn wrong_password_backs_off_exponentially_and_never_gives_up() {
    let mut registrar = Registrar::new("pw");
    let mut rig = Rig::new(params("bad", &[A1]));
    let mut attempts = Vec::new();
    let mut pending = rig.advance(Duration::ZERO);
    let end = rig.now + Duration::from_secs(3600);
    while rig.now < end {
        while let Some(req) = pending.pop() {
            let has_creds = with_msg(&req, |m| m.header(HeaderKind::Authorization).is_some());
            if !has_creds {
                attempts.push(rig.now);
            }
            let ch = registrar.challenge();
            let out = rig.reply(&req, 401, &[("WWW-Authenticate", &ch)]);
            if has_creds {
                assert!(out.is_empty(), "no loop after a second challenge");
                let st = rig.reg.status();
                assert_eq!(st.phase, Phase::Failing);
                assert_eq!(st.last.as_ref().map(|l| l.0), Some(401));
                assert!(
                    st.last.as_ref().unwrap().1.contains("wrong password"),
                    "{st:?}"
                );
            } else {
                assert_eq!(out.len(), 1, "the challenge is answered once");
            }
            pending.extend(out);
        }
        pending = rig.advance(Duration::from_secs(1));
    }
    // 2, 4, 8 … 256, then every 300 s (minus up to 20% jitter): about 20 in an hour.
    let gaps: Vec<u64> = attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs())
        .collect();
    assert!(
        (15..=25).contains(&attempts.len()),
        "{} attempts: {gaps:?}",
        attempts.len()
    );
    assert!(gaps.iter().all(|&g| g >= 1), "never a tight loop: {gaps:?}");
    assert!(
        gaps.windows(2).take(6).all(|w| w[1] >= w[0]),
        "growing: {gaps:?}"
    );
    assert!(gaps.iter().all(|&g| g <= 300), "capped: {gaps:?}");
    assert!(gaps.last().copied().unwrap() >= 200, "{gaps:?}");
}

#[test]
fn min_expires_423_is_honoured() {
    let mut rig = Rig::new(params("pw", &[A1]));
    let out = rig.advance(Duration::ZERO);
    let r1 = one(&out).clone();
    let out = rig.reply(&r1, 423, &[("Min-Expires", "1800")]);
    let r2 = one(&out).clone();
    assert!(text(&r2).contains("Expires: 1800\r\n"), "{}", text(&r2));
    rig.reply(&r2, 200, &[("Expires", "1800")]);
    assert_eq!(rig.reg.status().granted_secs, Some(1800));
    // A 423 that asks for less than we asked is not obeyed in a loop.
    let out = rig.advance(Duration::from_secs(1000));
    let r3 = one(&out).clone();
    let out = rig.reply(&r3, 423, &[("Min-Expires", "60")]);
    assert!(out.is_empty());
    assert_eq!(rig.reg.status().phase, Phase::Failing);
}

#[test]
fn timeout_and_5xx_fail_over_to_the_next_address_403_does_not() {
    let mut rig = Rig::new(params("pw", &[A1, A2]));
    let out = rig.advance(Duration::ZERO);
    assert_eq!(one(&out).dest, A1.parse::<SocketAddr>().unwrap());
    // No answer: UDP retransmissions, then Timer F (64*T1 = 32 s).
    let out = rig.advance_all(Duration::from_secs(31));
    assert!(out.len() >= 5 && out.iter().all(|t| t.dest == A1.parse().unwrap()));
    rig.advance(Duration::from_secs(2));
    let st = rig.reg.status();
    assert_eq!(st.phase, Phase::Failing);
    assert_eq!(st.last.as_ref().map(|l| l.0), Some(408));
    assert_eq!(st.target, Some(A2.parse().unwrap()));
    let out = rig.advance(Duration::from_secs(3));
    let r = one(&out).clone();
    assert_eq!(r.dest, A2.parse::<SocketAddr>().unwrap(), "next address");
    rig.reply(&r, 503, &[]);
    let out = rig.advance(Duration::from_secs(10));
    let r = out.first().unwrap().clone();
    assert_eq!(
        r.dest,
        A1.parse::<SocketAddr>().unwrap(),
        "503: next address again"
    );
    rig.reply(&r, 403, &[]);
    let out = rig.advance(Duration::from_secs(20));
    let r = out.first().unwrap().clone();
    assert_eq!(
        r.dest,
        A1.parse::<SocketAddr>().unwrap(),
        "403 is not the address's fault"
    );
    assert_eq!(rig.reg.status().failures, 3);
    rig.reply(&r, 200, &[]);
    let st = rig.reg.status();
    assert_eq!(
        (st.phase, st.failures, st.granted_secs),
        (Phase::Registered, 0, Some(300))
    );
}

#[test]
fn unregister_sends_expires_zero_and_finishes() {
    let mut rig = Rig::new(params("pw", &[A1]));
    let out = rig.advance(Duration::ZERO);
    rig.reply(&one(&out).clone(), 200, &[]);
    rig.reg.unregister(rig.now);
    assert_eq!(rig.reg.status().phase, Phase::Unregistering);
    let out = rig.advance(Duration::ZERO);
    let r = one(&out).clone();
    let t = text(&r);
    assert!(t.contains("Expires: 0\r\n"), "{t}");
    assert!(!rig.reg.is_finished());
    rig.reply(&r, 200, &[]);
    assert!(rig.reg.is_finished());
    assert!(rig.advance(Duration::from_secs(3600)).is_empty());

    // Unregistering while the first REGISTER is in flight: its 200 is followed by Expires: 0.
    let mut rig = Rig::new(params("pw", &[A1]));
    let out = rig.advance(Duration::ZERO);
    let r = one(&out).clone();
    rig.reg.unregister(rig.now);
    let out = rig.reply(&r, 200, &[]);
    assert!(text(one(&out)).contains("Expires: 0\r\n"));

    // Never registered: nothing to remove.
    let mut rig = Rig::new(params("pw", &[A1]));
    rig.reg.unregister(rig.now);
    assert!(rig.reg.is_finished());
    assert!(rig.advance(Duration::from_secs(10)).is_empty());
}

#[test]
fn evenly_started_registrations_refresh_evenly() {
    // 2,000 registrations started 50 ms apart (what the shard does), granted 300 s: over an
    // hour no second holds more than 1% of them.
    let n = 2000usize;
    let start = Instant::now();
    let mut regs: Vec<Registration> = (0..n)
        .map(|i| {
            Registration::new(
                params("pw", &[A1]),
                start + Duration::from_millis(50 * i as u64),
                format!("cid-{i}").into_bytes(),
                b"t".to_vec(),
            )
        })
        .collect();
    let mut env = TestEnv(3);
    let mut per_second = std::collections::HashMap::<u64, usize>::new();
    let end = start + Duration::from_secs(3600);
    // Event loop over all registrations in time order, answering each REGISTER with a 200.
    let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, usize)>> = regs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.poll_timeout().map(|t| std::cmp::Reverse((t, i))))
        .collect();
    while let Some(std::cmp::Reverse((t, i))) = heap.pop() {
        if t > end {
            break;
        }
        let r = &mut regs[i];
        r.handle_timeout(t, &mut env);
        while let Some(tx) = r.poll_transmit() {
            *per_second.entry((t - start).as_secs()).or_default() += 1;
            let resp = respond(&tx.data, 200, &[]);
            let mut hs = [EMPTY_HEADER; 32];
            let m = sip_codec::parse(&resp, &mut hs).unwrap();
            r.handle_response(t, &mut env, &m, attempt_of(&tx));
        }
        if let Some(next) = r.poll_timeout() {
            heap.push(std::cmp::Reverse((next, i)));
        }
    }
    let total: usize = per_second.values().sum();
    let max = per_second.values().copied().max().unwrap();
    assert!(total > n * 3600 / 170, "refreshed all the time: {total}");
    assert!(
        max <= n / 100,
        "burst of {max} in one second (limit {})",
        n / 100
    );
}

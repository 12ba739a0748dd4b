//! Trunk identification and digest verification (crates/trunks), against the issue's targets:
//! at most 2 µs to identify a request among 1,000 configured trunks of mixed modes, at most
//! 3 µs to verify digest credentials.
//!
//! The 1,000 trunks are those of the last test of `crates/trunks/tests/ingress.rs`, loaded
//! with `sbc_config::load_str`: trunk `t{i}` is, by `i % 4`, a /32 allowlist, a shared
//! 172.16.0.0/16 told apart by the tech prefix `"{i}#"` (250 trunks share that network; the
//! index finds them by prefix within it), a hash domain
//! `h{i}.sbc.test`, or an IPv6 /48 allowlist with an `X-Key` header. Each case asks for a
//! trunk in the middle of the file (t500 to t503), so a linear scan stops halfway:
//!
//! | case        | request                                               | trunk |
//! |-------------|-------------------------------------------------------|-------|
//! | `allow`     | from 10.2.0.1, `sip:1@sbc.test`                       | t500  |
//! | `prefix`    | from 172.16.3.4, `sip:501#1@sbc.test`                 | t501  |
//! | `domain`    | from 203.0.113.1, `sip:1@h502.sbc.test`               | t502  |
//! | `v6-header` | from 2001:db8:1f7::9, `sip:1@sbc.test`, `X-Key: k503` | t503  |
//! | `refused`   | from 10.9.9.9, `sip:1@sbc.test`                       | none  |
//!
//! * `identify/index/<case>`: `trunks::ingress::Ingress::identify` alone. The INVITE is
//!   parsed, and the Request-URI user and host extracted, once outside the timed loop.
//! * `identify/linear/<case>`: the baseline the index replaces, on the same `Request`: every
//!   trunk's `sbc_config::InboundConfig` in file order (allowlist `contains`, domain
//!   `eq_ignore_ascii_case`, header in constant time, prefix `starts_with`), first match wins.
//!   In this configuration no prefix is a prefix of another, so first match is the same trunk
//!   as the index's longest match (checked before timing); no trunk has `inbound.digest` or
//!   `register`, which the baseline leaves out, nor a `%XX` escape in its prefix.
//!   index/linear is the speed-up.
//! * `identify/parse+identify/<case>`: what the daemon does per request: `sip_codec::parse` of
//!   the INVITE bytes (into `[EMPTY_HEADER; 32]`), the Request-URI user and host
//!   (`Uri::parse`, as the shard does), then `identify`.
//! * `digest/verify/<alg>`: `trunks::verify::verify` of `Authorization` credentials written by
//!   `trunks::answer::answer` to sbcd's own challenge (qop=auth, nc=1, a nonce of
//!   `trunks::nonce::Nonces`, uri policy `SameHost`, the default). The credentials are parsed
//!   once outside the loop. The nonce-count check refuses a second use of the same nc, so
//!   every iteration gets a fresh, empty `NonceCounts` with room for 16 nonces, as the
//!   daemon's long-lived map has (made and dropped outside the timing,
//!   `iter_batched_ref`); the timed part includes its first insert, as for a new nonce in the
//!   daemon. Each run asserts `Verdict::Accepted` before timing.
//! * `digest/refused-wrong-password/<alg>` and `digest/refused-unknown-user/<alg>`: the two
//!   refusals a scanner could compare; their medians must be alike (no enumeration by timing).
//! * `digest/parse+verify/<alg>`: the same, with `Challenge::parse` of the header value timed.
//! * `digest/bare-hash/<alg>`: `trunks::digest::response` alone (H(A1), H(A2), response) for
//!   the same credentials: the floor under `verify`, whose overhead is the parameter
//!   lookups, the nonce HMAC, the uri check and the replay map. verify/bare-hash shows it.
//!
//! Run: `cargo bench -p sbcd-suite --bench trunks`.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use sbc_config::{Config, TrunkConfig};
use sip_codec::{parse, Challenge, HeaderKind, Message, Uri, EMPTY_HEADER};
use trunks::answer::{self, answer, challenge};
use trunks::digest::{self, Algorithm, Qop};
use trunks::ingress::{Ingress, Request};
use trunks::nonce::{NonceCounts, Nonces};
use trunks::verify::{verify, Check, UriPolicy, Verdict};

const SECTIONS: &str = r#"
[sip]
listen = ["udp:127.0.0.1:5060", "udp:[::1]:5060"]
[media]
listen = "127.0.0.1"
port_min = 20000
port_max = 20099
[admin]
listen = "127.0.0.1:9060"
"#;

/// The 1,000 trunks of `a_thousand_trunks_each_found_by_its_own_checks`.
fn thousand_trunks() -> Config {
    let mut toml = String::from(SECTIONS);
    for i in 0..1000u32 {
        let (a, b) = (i / 250, i % 250);
        let trunk = match i % 4 {
            0 => format!("[[trunk]]\nname = \"t{i}\"\ninbound.allow = [\"10.{a}.{b}.1/32\"]\n"),
            1 => format!(
                "[[trunk]]\nname = \"t{i}\"\ninbound.allow = [\"172.16.0.0/16\"]\ninbound.prefix = \"{i}#\"\n"
            ),
            2 => format!("[[trunk]]\nname = \"t{i}\"\ninbound.domain = \"h{i}.sbc.test\"\n"),
            _ => format!(
                "[[trunk]]\nname = \"t{i}\"\ninbound.allow = [\"2001:db8:{i:x}::/48\"]\ninbound.header = {{ name = \"X-Key\", value = \"k{i}\" }}\n"
            ),
        };
        toml.push_str(&trunk);
    }
    sbc_config::load_str(&toml, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn invite(ruri: &str, extra: &str) -> Vec<u8> {
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <{ruri}>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// One request of the `identify` group.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    source: IpAddr,
    /// The trunk it belongs to.
    trunk: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let case = |name, ruri: &str, extra: &str, source: &str, trunk| Case {
        name,
        bytes: invite(ruri, extra),
        source: source.parse().expect("source address"),
        trunk,
    };
    vec![
        case("allow", "sip:1@sbc.test", "", "10.2.0.1", Some("t500")),
        case(
            "prefix",
            "sip:501#1@sbc.test",
            "",
            "172.16.3.4",
            Some("t501"),
        ),
        case(
            "domain",
            "sip:1@h502.sbc.test",
            "",
            "203.0.113.1",
            Some("t502"),
        ),
        case(
            "v6-header",
            "sip:1@sbc.test",
            "X-Key: k503\r\n",
            "2001:db8:1f7::9",
            Some("t503"),
        ),
        case("refused", "sip:1@sbc.test", "", "10.9.9.9", None),
    ]
}

/// The called number and host of the Request-URI, as the shard reads them.
fn number_and_host<'b>(msg: &Message<'_, 'b>) -> (Option<&'b [u8]>, Option<&'b [u8]>) {
    match msg.request_uri().map(Uri::parse) {
        Some(Ok(Uri::Sip(s))) => (s.user, Some(s.host_raw)),
        Some(Ok(Uri::Tel(t))) => (Some(t.number), None),
        _ => (None, None),
    }
}

/// The baseline: every trunk's inbound checks in file order, first match wins. The trunk's
/// index and the prefix length to strip.
fn linear(trunks: &[TrunkConfig], req: &Request<'_, '_, '_>) -> Option<(usize, usize)> {
    trunks.iter().enumerate().find_map(|(i, t)| {
        let inb = &t.inbound;
        if !inb.has_checks() {
            return None;
        }
        if !inb.allow.is_empty() && !inb.allow.iter().any(|net| net.contains(req.source)) {
            return None;
        }
        if let Some(d) = &inb.domain {
            if !req
                .ruri_host
                .is_some_and(|h| h.eq_ignore_ascii_case(d.as_bytes()))
            {
                return None;
            }
        }
        if let Some(hc) = &inb.header {
            let ok = req
                .msg
                .headers
                .iter()
                .filter(|h| {
                    h.kind == HeaderKind::Other && h.name.eq_ignore_ascii_case(hc.name.as_bytes())
                })
                .fold(false, |ok, h| ok | hc.value.matches(h.value));
            if !ok {
                return None;
            }
        }
        let mut plen = 0;
        if let Some(p) = &inb.prefix {
            if !req.ruri_user.is_some_and(|u| u.starts_with(p.as_bytes())) {
                return None;
            }
            plen = p.len();
        }
        Some((i, plen))
    })
}

/// identify, from the datagram's bytes: parse, Request-URI, index.
fn parse_identify(ingress: &Ingress, bytes: &[u8], source: IpAddr) -> Option<(usize, usize)> {
    let mut headers = [EMPTY_HEADER; 32];
    let msg = parse(bytes, &mut headers).expect("INVITE parses");
    let (user, host) = number_and_host(&msg);
    let req = Request {
        source,
        ruri_user: user,
        ruri_host: host,
        msg: &msg,
    };
    ingress
        .identify(&req)
        .map(|m| (m.trunk.index(), m.prefix_len))
}

fn identify_group(c: &mut Criterion) {
    let config = thousand_trunks();
    assert_eq!(config.trunks.len(), 1000);
    let ingress = Ingress::new(&config, |_| None);

    let mut group = c.benchmark_group("identify");
    for case in cases() {
        let mut headers = [EMPTY_HEADER; 32];
        let msg = parse(&case.bytes, &mut headers).expect("INVITE parses");
        let (user, host) = number_and_host(&msg);
        let req = Request {
            source: case.source,
            ruri_user: user,
            ruri_host: host,
            msg: &msg,
        };

        // All three must find the trunk of the case before their times mean anything.
        let want = case.trunk.map(|name| {
            let (id, _) = config.trunk_by_name(name).expect("trunk of the case");
            id.index()
        });
        let indexed = ingress
            .identify(&req)
            .map(|m| (m.trunk.index(), m.prefix_len));
        assert_eq!(indexed.map(|m| m.0), want, "{}: index", case.name);
        assert_eq!(
            linear(&config.trunks, &req),
            indexed,
            "{}: linear",
            case.name
        );
        assert_eq!(
            parse_identify(&ingress, &case.bytes, case.source),
            indexed,
            "{}: parse+identify",
            case.name
        );

        group.bench_function(BenchmarkId::new("index", case.name), |b| {
            b.iter(|| ingress.identify(black_box(&req)))
        });
        group.bench_function(BenchmarkId::new("linear", case.name), |b| {
            b.iter(|| linear(&config.trunks, black_box(&req)))
        });
        group.bench_function(BenchmarkId::new("parse+identify", case.name), |b| {
            b.iter(|| parse_identify(&ingress, black_box(&case.bytes), black_box(case.source)))
        });
    }
    group.finish();
}

const REALM: &[u8] = b"sbc.test";
const RURI: &[u8] = b"sip:12125551234@127.0.0.1:5060";
const NOW_SECS: u64 = 110;

fn password_of<'a>(user: &[u8]) -> Option<&'a [u8]> {
    (user == b"pbx1").then_some(&b"pw1"[..])
}

/// The `Authorization` value a PBX sends back to sbcd's challenge, with qop=auth and nc=1.
fn credentials(nonces: &Nonces, alg: Algorithm) -> Vec<u8> {
    // Any salt: the daemon draws one per challenge.
    let nonce = nonces.issue(100, 0x5eed, REALM);
    let ch = challenge(REALM, &nonce, alg, false);
    let ch = Challenge::parse(&ch, HeaderKind::WwwAuthenticate).expect("our challenge parses");
    let req = answer::Request {
        method: b"INVITE",
        uri: RURI,
        cnonce: b"0a4f113b",
        nc: 1,
        realm_override: None,
        body: b"",
    };
    answer(&ch, b"pbx1", b"pw1", &req).expect("our challenge is answerable")
}

fn digest_group(c: &mut Criterion) {
    let nonces = Nonces::new([7; 32], trunks::NONCE_LIFETIME_SECS);
    let check = Check {
        realm: REALM,
        method: b"INVITE",
        request_uri: RURI,
        policy: UriPolicy::default(),
        now_secs: NOW_SECS,
    };
    // Fresh NonceCounts per iteration, made and dropped outside the timing; batches of a
    // fixed size keep the memory of a sample small.
    let batch = BatchSize::NumIterations(1024);

    let mut group = c.benchmark_group("digest");
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let name = alg.as_str();
        let value = credentials(&nonces, alg);
        let creds = Challenge::parse(&value, HeaderKind::Authorization).expect("credentials");
        let param = |p: &[u8]| creds.param(p).expect("answer writes every parameter");
        let input = digest::Input {
            algorithm: alg,
            username: param(b"username"),
            realm: param(b"realm"),
            password: b"pw1",
            nonce: param(b"nonce"),
            method: b"INVITE",
            uri: param(b"uri"),
            qop: Some(Qop {
                qop: param(b"qop"),
                nc: param(b"nc"),
                cnonce: param(b"cnonce"),
            }),
            body: b"",
        };
        assert_eq!(param(b"qop"), b"auth");
        assert_eq!(param(b"nc"), b"00000001");
        assert!(digest::response(&input).ct_eq(param(b"response")), "{name}");
        let accepted = Verdict::Accepted { username: b"pbx1" };
        let counts = NonceCounts::default();
        assert_eq!(
            verify(&creds, &check, &nonces, &counts, password_of),
            accepted,
            "{name}: verify"
        );
        assert_eq!(
            verify(&creds, &check, &nonces, &counts, password_of),
            Verdict::Refused {
                why: "nonce count replayed"
            },
            "{name}: the replay check is live, so each iteration needs its own NonceCounts"
        );

        group.bench_function(BenchmarkId::new("verify", name), |b| {
            b.iter_batched_ref(
                || NonceCounts::with_capacity(16),
                |counts| verify(black_box(&creds), &check, &nonces, counts, password_of),
                batch,
            )
        });
        group.bench_function(BenchmarkId::new("parse+verify", name), |b| {
            b.iter_batched_ref(
                || NonceCounts::with_capacity(16),
                |counts| {
                    let creds = Challenge::parse(black_box(&value), HeaderKind::Authorization)
                        .expect("credentials");
                    verify(&creds, &check, &nonces, counts, password_of)
                },
                batch,
            )
        });
        group.bench_function(BenchmarkId::new("bare-hash", name), |b| {
            b.iter(|| digest::response(black_box(&input)))
        });
        // No user enumeration by timing (issue 7): a wrong password and an unknown user cost
        // the same (the digest is computed for both), compare the two medians.
        let wrong = |_: &[u8]| Some(&b"not-pw1"[..]);
        let unknown = |_: &[u8]| None;
        let refused = |why| Verdict::Refused { why };
        assert_eq!(
            verify(&creds, &check, &nonces, &counts, wrong),
            refused("wrong response (password)")
        );
        assert_eq!(
            verify(&creds, &check, &nonces, &counts, unknown),
            refused("unknown user")
        );
        group.bench_function(BenchmarkId::new("refused-wrong-password", name), |b| {
            b.iter(|| verify(black_box(&creds), &check, &nonces, &counts, wrong))
        });
        group.bench_function(BenchmarkId::new("refused-unknown-user", name), |b| {
            b.iter(|| verify(black_box(&creds), &check, &nonces, &counts, unknown))
        });
    }
    group.finish();
}

criterion_group!(benches, identify_group, digest_group);
criterion_main!(benches);

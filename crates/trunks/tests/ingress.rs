//! Trunk identification: each inbound mode alone, combined, the longest-prefix rule, digest
//! realms, registered Contacts, failure reasons, and 1,000 trunks through the index.

use std::net::IpAddr;
use std::path::Path;

use sbc_config::{Config, TrunkId};
use sip_codec::{parse, Message, Uri, EMPTY_HEADER};
use trunks::ingress::{Ingress, Matched, Mode, Request};

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

fn config(trunks: &str) -> Config {
    sbc_config::load_str(&format!("{SECTIONS}{trunks}"), Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn id(c: &Config, name: &str) -> TrunkId {
    c.trunk_by_name(name).unwrap().0
}

fn invite(ruri: &str, extra: &str) -> Vec<u8> {
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <{ruri}>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn with_request<R>(bytes: &[u8], source: &str, f: impl FnOnce(&Request<'_, '_, '_>) -> R) -> R {
    let mut hs = [EMPTY_HEADER; 32];
    let msg: Message<'_, '_> = parse(bytes, &mut hs).unwrap();
    let (user, host) = match msg.request_uri().map(Uri::parse) {
        Some(Ok(Uri::Sip(s))) => (s.user, Some(s.host_raw)),
        _ => (None, None),
    };
    let req = Request {
        source: source.parse::<IpAddr>().unwrap(),
        ruri_user: user,
        ruri_host: host,
        msg: &msg,
    };
    f(&req)
}

fn identify(ing: &Ingress, ruri: &str, extra: &str, source: &str) -> Option<Matched> {
    with_request(&invite(ruri, extra), source, |r| ing.identify(r))
}

fn failures(ing: &Ingress, ruri: &str, extra: &str, source: &str) -> Vec<(Option<TrunkId>, Mode)> {
    let mut v = Vec::new();
    with_request(&invite(ruri, extra), source, |r| {
        ing.failures(r, |t, m| v.push((t, m)));
    });
    v
}

#[test]
fn allowlist_v4_v6_and_mapped() {
    let c = config(
        r#"
[[trunk]]
name = "v4"
inbound.allow = ["192.0.2.0/24", "198.51.100.7/32"]
[[trunk]]
name = "v6"
inbound.allow = ["2001:db8::/32"]
"#,
    );
    let ing = Ingress::new(&c, |_| None);
    let ruri = "sip:123@sbc.test";
    for src in [
        "192.0.2.1",
        "192.0.2.254",
        "198.51.100.7",
        "::ffff:192.0.2.9",
    ] {
        let m = identify(&ing, ruri, "", src).unwrap_or_else(|| panic!("{src}"));
        assert_eq!(m.trunk, id(&c, "v4"), "{src}");
        assert!(!m.digest);
    }
    assert_eq!(
        identify(&ing, ruri, "", "2001:db8:1::5").unwrap().trunk,
        id(&c, "v6")
    );
    for src in ["192.0.3.1", "198.51.100.8", "2001:db9::1", "::1"] {
        assert_eq!(identify(&ing, ruri, "", src), None, "{src}");
    }
    assert_eq!(
        failures(&ing, ruri, "", "203.0.113.1"),
        vec![(None, Mode::Unmatched)]
    );
}

#[test]
fn hash_domain_is_case_insensitive_and_exact() {
    let c = config(
        r#"
[[trunk]]
name = "h"
inbound.domain = "k3x9q.sbc.test"
"#,
    );
    let ing = Ingress::new(&c, |_| None);
    let m = identify(&ing, "sip:1212@K3X9Q.sbc.test", "", "203.0.113.9").unwrap();
    assert_eq!(m.trunk, id(&c, "h"));
    assert_eq!(identify(&ing, "sip:1212@sbc.test", "", "203.0.113.9"), None);
    assert_eq!(
        identify(&ing, "sip:1212@k3x9q.sbc.test.evil", "", "203.0.113.9"),
        None
    );
}

#[test]
fn header_must_match_exactly() {
    let c = config(
        r#"
[[trunk]]
name = "k"
inbound.allow = ["192.0.2.0/24"]
inbound.header = { name = "X-Trunk-Key", value = "s3cret" }
"#,
    );
    let ing = Ingress::new(&c, |_| None);
    let ruri = "sip:1@sbc.test";
    assert!(identify(&ing, ruri, "x-trunk-key: s3cret\r\n", "192.0.2.1").is_some());
    assert!(
        identify(
            &ing,
            ruri,
            "X-Other: 1\r\nX-Trunk-Key: nope\r\nX-Trunk-Key: s3cret\r\n",
            "192.0.2.1"
        )
        .is_some(),
        "any header of that name may carry it"
    );
    for extra in [
        "X-Trunk-Key: s3cre\r\n",
        "X-Trunk-Key: s3cret2\r\n",
        "",
        "X-Trunk: s3cret\r\n",
    ] {
        assert_eq!(identify(&ing, ruri, extra, "192.0.2.1"), None, "{extra:?}");
        assert_eq!(
            failures(&ing, ruri, extra, "192.0.2.1"),
            vec![(Some(id(&c, "k")), Mode::Header)]
        );
    }
}

#[test]
fn longest_prefix_wins_among_trunks_sharing_a_source() {
    let c = config(
        r#"
[[trunk]]
name = "short"
inbound.allow = ["192.0.2.1/32"]
inbound.prefix = "9"
[[trunk]]
name = "long"
inbound.allow = ["192.0.2.0/24"]
inbound.prefix = "91919#"
[[trunk]]
name = "plain"
inbound.allow = ["192.0.2.1/32"]
"#,
    );
    let ing = Ingress::new(&c, |_| None);
    // '#' travels escaped in a SIP URI (RFC 3261 §25.1); many carriers send it raw.
    let m = identify(&ing, "sip:91919%2312127773456@sbc.test", "", "192.0.2.1").unwrap();
    assert_eq!((m.trunk, m.prefix_len), (id(&c, "long"), 8));
    let m = identify(&ing, "sip:91919#12127773456@sbc.test", "", "192.0.2.1").unwrap();
    assert_eq!(m.trunk, id(&c, "long"));
    assert_eq!(m.prefix_len, 6);
    let m = identify(&ing, "sip:912127773456@sbc.test", "", "192.0.2.1").unwrap();
    assert_eq!((m.trunk, m.prefix_len), (id(&c, "short"), 1));
    let m = identify(&ing, "sip:12127773456@sbc.test", "", "192.0.2.1").unwrap();
    assert_eq!((m.trunk, m.prefix_len), (id(&c, "plain"), 0));
    // From another address of the /24 only "long" applies, and its prefix is missing.
    assert_eq!(
        identify(&ing, "sip:12127773456@sbc.test", "", "192.0.2.2"),
        None
    );
    assert_eq!(
        failures(&ing, "sip:12127773456@sbc.test", "", "192.0.2.2"),
        vec![(Some(id(&c, "long")), Mode::Prefix)]
    );
}

#[test]
fn first_in_file_order_when_equal() {
    let c = config(
        r#"
[[trunk]]
name = "a"
inbound.allow = ["192.0.2.0/24"]
[[trunk]]
name = "b"
inbound.allow = ["192.0.2.1/32"]
"#,
    );
    let ing = Ingress::new(&c, |_| None);
    assert_eq!(
        identify(&ing, "sip:1@x", "", "192.0.2.1").unwrap().trunk,
        id(&c, "a")
    );
}

#[test]
fn combined_checks_all_must_pass() {
    let c = config(
        r#"
[[trunk]]
name = "all"
inbound.allow = ["192.0.2.0/24"]
inbound.domain = "h.sbc.test"
inbound.header = { name = "X-Key", value = "v" }
inbound.prefix = "77#"
"#,
    );
    let ing = Ingress::new(&c, |_| None);
    let good = ("sip:77#1@h.sbc.test", "X-Key: v\r\n", "192.0.2.5");
    let m = identify(&ing, good.0, good.1, good.2).unwrap();
    assert_eq!(m.prefix_len, 3);
    let t = Some(id(&c, "all"));
    for (ruri, extra, src, mode) in [
        (good.0, good.1, "192.0.3.5", None),
        ("sip:77#1@x.sbc.test", good.1, good.2, Some(Mode::Domain)),
        (good.0, "X-Key: w\r\n", good.2, Some(Mode::Header)),
        ("sip:1@h.sbc.test", good.1, good.2, Some(Mode::Prefix)),
    ] {
        assert_eq!(identify(&ing, ruri, extra, src), None);
        let want = match mode {
            Some(m) => vec![(t, m)],
            None => vec![(None, Mode::Unmatched)],
        };
        assert_eq!(
            failures(&ing, ruri, extra, src),
            want,
            "{ruri} {extra:?} {src}"
        );
    }
}

#[test]
fn digest_trunks_are_told_apart_by_the_realm_of_the_credentials() {
    let c = config(
        r#"
[[trunk]]
name = "d1"
inbound.digest = { realm = "one.test", users = [{ username = "u", password = "p" }] }
[[trunk]]
name = "d2"
inbound.digest = { realm = "two.test", users = [{ username = "u", password = "p" }] }
"#,
    );
    let ing = Ingress::new(&c, |_| None);
    let m = identify(&ing, "sip:1@sbc.test", "", "203.0.113.1").unwrap();
    assert_eq!(
        m.trunk,
        id(&c, "d1"),
        "no credentials: the first digest trunk challenges"
    );
    assert!(m.digest);
    let creds = "Proxy-Authorization: Digest username=\"u\", realm=\"two.test\", nonce=\"n\", uri=\"sip:sbc.test\", response=\"0\"\r\n";
    let m = identify(&ing, "sip:1@sbc.test", creds, "203.0.113.1").unwrap();
    assert_eq!(m.trunk, id(&c, "d2"));
}

#[test]
fn pbxs_sharing_a_realm_are_told_apart_by_username() {
    let c = config(
        r#"
[[trunk]]
name = "p1"
inbound.digest = { realm = "sbc.test", users = [{ username = "pbx1", password = "a" }] }
inbound.register = true
[[trunk]]
name = "p2"
inbound.digest = { realm = "sbc.test", users = [{ username = "pbx2", password = "b" }] }
inbound.register = true
"#,
    );
    let ing = Ingress::new(&c, |_| None);
    let creds = |u: &str| {
        format!("Authorization: Digest username=\"{u}\", realm=\"sbc.test\", nonce=\"n\", uri=\"sip:sbc.test\", response=\"0\"\r\n")
    };
    let m = identify(&ing, "sip:sbc.test", &creds("pbx2"), "203.0.113.1").unwrap();
    assert_eq!(m.trunk, id(&c, "p2"));
    let m = identify(&ing, "sip:sbc.test", &creds("pbx1"), "203.0.113.1").unwrap();
    assert_eq!(m.trunk, id(&c, "p1"));
    assert_eq!(
        identify(&ing, "sip:sbc.test", &creds("pbx3"), "203.0.113.1"),
        None
    );
}

#[test]
fn calls_to_a_registered_contact_belong_to_its_trunk() {
    let c = config(
        r#"
[[trunk]]
name = "pbx"
inbound.allow = ["192.0.2.0/24"]
[[trunk]]
name = "reg"
outbound.uri = "sip:127.0.0.1:5090"
outbound.auth = { username = "sbc", password = "pw" }
outbound.register = { expires_secs = 300 }
"#,
    );
    let reg = id(&c, "reg");
    let ing = Ingress::new(&c, |t| (t == reg).then(|| b"rk7f3a9".to_vec()));
    let m = identify(&ing, "sip:rk7f3a9@127.0.0.1:5060", "", "198.51.100.1").unwrap();
    assert_eq!(m.trunk, reg);
    assert!(m.registered_contact);
    assert_eq!(
        identify(&ing, "sip:rk7f3a8@127.0.0.1:5060", "", "198.51.100.1"),
        None
    );
}

#[test]
fn a_thousand_trunks_each_found_by_its_own_checks() {
    let mut toml = String::new();
    for i in 0..1000u32 {
        let (a, b) = (i / 250, i % 250);
        let _ = match i % 4 {
            // allowlist /32
            0 => std::fmt::Write::write_fmt(
                &mut toml,
                format_args!("[[trunk]]\nname = \"t{i}\"\ninbound.allow = [\"10.{a}.{b}.1/32\"]\n"),
            ),
            // shared /16 told apart by prefix
            1 => std::fmt::Write::write_fmt(
                &mut toml,
                format_args!(
                    "[[trunk]]\nname = \"t{i}\"\ninbound.allow = [\"172.16.0.0/16\"]\ninbound.prefix = \"{i}#\"\n"
                ),
            ),
            // hash domain
            2 => std::fmt::Write::write_fmt(
                &mut toml,
                format_args!("[[trunk]]\nname = \"t{i}\"\ninbound.domain = \"h{i}.sbc.test\"\n"),
            ),
            // IPv6 allowlist and header
            _ => std::fmt::Write::write_fmt(
                &mut toml,
                format_args!(
                    "[[trunk]]\nname = \"t{i}\"\ninbound.allow = [\"2001:db8:{i:x}::/48\"]\ninbound.header = {{ name = \"X-Key\", value = \"k{i}\" }}\n"
                ),
            ),
        };
    }
    let c = config(&toml);
    let ing = Ingress::new(&c, |_| None);
    for i in 0..1000u32 {
        let (a, b) = (i / 250, i % 250);
        let (ruri, extra, src) = match i % 4 {
            0 => (
                "sip:1@sbc.test".to_owned(),
                String::new(),
                format!("10.{a}.{b}.1"),
            ),
            1 => (
                format!("sip:{i}#1@sbc.test"),
                String::new(),
                "172.16.3.4".to_owned(),
            ),
            2 => (
                format!("sip:1@h{i}.sbc.test"),
                String::new(),
                "203.0.113.1".to_owned(),
            ),
            _ => (
                "sip:1@sbc.test".to_owned(),
                format!("X-Key: k{i}\r\n"),
                format!("2001:db8:{i:x}::9"),
            ),
        };
        let m = identify(&ing, &ruri, &extra, &src).unwrap_or_else(|| panic!("t{i}"));
        assert_eq!(c.trunk(m.trunk).name, format!("t{i}"));
    }
    assert_eq!(identify(&ing, "sip:1@sbc.test", "", "10.9.9.9"), None);
}

#[test]
fn a_digest_only_trunk_does_not_swallow_an_allowlisted_one() {
    let c = config(
        r#"
[[trunk]]
name = "office"
inbound.digest = { realm = "sbc.test", users = [{ username = "pbx1", password = "a" }] }
[[trunk]]
name = "carrier"
inbound.allow = ["192.0.2.0/24"]
"#,
    );
    let ing = Ingress::new(&c, |_| None);
    let m = identify(&ing, "sip:1@sbc.test", "", "192.0.2.7").unwrap();
    assert_eq!(
        m.trunk,
        id(&c, "carrier"),
        "recognised by address, not by a challenge to come"
    );
    let m = identify(&ing, "sip:1@sbc.test", "", "203.0.113.7").unwrap();
    assert_eq!((m.trunk, m.digest), (id(&c, "office"), true));
    let creds = "Proxy-Authorization: Digest username=\"pbx1\", realm=\"sbc.test\", nonce=\"n\", uri=\"sip:sbc.test\", response=\"0\"\r\n";
    let m = identify(&ing, "sip:1@sbc.test", creds, "192.0.2.7").unwrap();
    assert_eq!(
        m.trunk,
        id(&c, "office"),
        "credentials for it: first in file order again"
    );
}

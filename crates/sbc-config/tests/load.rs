//! Loading and validation through the public API: the sample file, one failing case per rule
//! with its exact message, shape errors from the config crate, environment overrides, secrets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sbc_config::net::Transport;
use sbc_config::{load, load_str, load_with_env, Config, Destination};

/// `[sip]`, `[media]` and `[admin]` of a valid file.
const SECTIONS: &str = r#"
[sip]
listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]

[media]
listen = "127.0.0.1"
port_min = 20000
port_max = 29999

[admin]
listen = "127.0.0.1:9060"
"#;

/// Two trunks and a route: valid.
const TRUNKS: &str = r#"
[[trunk]]
name = "a"
inbound.allow = ["127.0.0.1/32"]
outbound.uri = "sip:127.0.0.1:5070"

[[trunk]]
name = "b"
inbound.allow = ["127.0.0.2/32"]
outbound.uri = "sip:127.0.0.2:5080"

[[route]]
from = "a"
to = ["b"]
"#;

/// A valid file with `extra` appended (new `[[trunk]]`s get index 2, `[[route]]`s index 1).
fn valid_with(extra: &str) -> String {
    format!("{SECTIONS}{TRUNKS}{extra}")
}

/// A scratch directory for files the configuration points at.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sbc-config-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn ok(toml: &str) -> Config {
    load_str(toml, Path::new(".")).unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

/// The error lines of an invalid configuration.
fn errors_in(toml: &str, base_dir: &Path) -> Vec<String> {
    match load_str(toml, base_dir) {
        Ok(config) => panic!("expected errors, but it loaded: {config:#?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn errors(toml: &str) -> Vec<String> {
    errors_in(toml, Path::new("."))
}

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/sbcd.toml")
}

#[test]
fn sample_config_loads() {
    let config = load_with_env(&sample_path(), Vec::<(String, String)>::new())
        .unwrap_or_else(|e| panic!("etc/sbcd.toml:\n{e}"));
    let listen: Vec<String> = config.sip.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]);
    assert_eq!(config.sip.shutdown_grace, Duration::from_secs(60));
    assert_eq!(
        config.sip.timers.t1,
        Duration::from_millis(500),
        "RFC 3261 defaults"
    );
    assert_eq!(config.sip.timers.t2, Duration::from_secs(4));
    assert_eq!(config.sip.timers.t4, Duration::from_secs(5));
    assert_eq!(config.sip.log_level.as_deref(), Some("info"));
    assert_eq!(config.media.ports.range(), 20000..=29999);
    assert_eq!(config.media.ports.pairs(), 5000);
    assert_eq!(config.admin.listen, "127.0.0.1:9060".parse().unwrap());
    let names: Vec<&str> = config.trunks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["pbx", "carrier"]);

    let (pbx, _) = config.trunk_by_name("pbx").unwrap();
    let (carrier, carrier_cfg) = config.trunk_by_name("carrier").unwrap();
    let Some(Destination::Uri(uri)) = carrier_cfg.destination() else {
        panic!("carrier has an outbound.uri");
    };
    assert_eq!(uri.as_str(), "sip:127.0.0.2:5080;transport=udp");
    assert_eq!(uri.effective_transport(), Transport::Udp);
    assert!(carrier_cfg.inbound.allow[0].contains("127.0.0.2".parse().unwrap()));
    assert!(!carrier_cfg.inbound.allow[0].contains("127.0.0.1".parse().unwrap()));

    assert_eq!(config.routes.len(), 2);
    assert_eq!(
        (config.routes[0].from, config.routes[0].to.clone()),
        (pbx, vec![carrier])
    );
    assert!(config.routes[0].matches("+15551234"));
    assert!(!config.routes[0].matches("alice"));
    assert_eq!(
        (config.routes[1].from, config.routes[1].to.clone()),
        (carrier, vec![pbx])
    );
    assert!(config.routes[1].matches("anything"));
}

#[test]
fn design_md_example_keys_are_accepted() {
    // The trunk of DESIGN.md's config block, every key set (digest with password_file).
    let dir = scratch("design");
    std::fs::write(dir.join("pbx1.pw"), "pw1\n").unwrap();
    let toml = format!(
        r#"{SECTIONS}
[[trunk]]
name = "pbx"
inbound.allow = ["127.0.0.1/32"]
inbound.domain = "k3x9q.sbc.test"
inbound.header = {{ name = "X-Trunk-Key", value = "s3cret" }}
inbound.prefix = "91919#"
inbound.digest = {{ realm = "sbc.test", users = [{{ username = "pbx1", password_file = "pbx1.pw" }}] }}
inbound.register = false
outbound.uri = "sip:127.0.0.1:5090;transport=udp"
outbound.prefix = "555#"
outbound.domain = "carrier.test"
outbound.header = {{ name = "X-Auth-Key", value = "k" }}
outbound.auth = {{ username = "sbc", password = "pw" }}
outbound.register = {{ expires_secs = 300 }}
outbound.options_ping_secs = 30

[[trunk]]
name = "carrier"
outbound.uri = "sip:carrier.test"

[[trunk]]
name = "backup"
outbound.uri = "sips:[::1]:5061"

[[route]]
from = "pbx"
match = "^\\+?1[0-9]+$"
to = ["carrier", "backup"]
"#
    );
    let toml = toml.replace(
        r#"listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]"#,
        r#"listen = ["udp:127.0.0.1:5060", "tls:[::1]:5061"]
tls_cert_file = "cert.pem"
tls_key_file = "key.pem""#,
    );
    std::fs::write(dir.join("cert.pem"), "cert").unwrap();
    std::fs::write(dir.join("key.pem"), "key").unwrap();
    let config = load_str(&toml, &dir).unwrap_or_else(|e| panic!("{e}"));
    let pbx = &config.trunks[0];
    let digest = pbx.inbound.digest.as_ref().unwrap();
    assert_eq!(
        digest.users[0].password.expose(),
        "pw1",
        "password_file read, newline dropped"
    );
    let auth = pbx.outbound.auth.as_ref().unwrap();
    assert_eq!(auth.password.expose(), "pw");
    assert_eq!(auth.realm, None);
    assert_eq!(auth.digest_uri, sbc_config::DigestUri::RequestUri);
    assert_eq!(
        digest.challenge,
        sbc_config::ChallengeStatus::ProxyAuthenticationRequired,
        "407 by default"
    );
    assert_eq!(digest.uri_check, sbc_config::DigestUriCheck::SameHost);
    assert_eq!(pbx.outbound.register.unwrap().expires_secs.get(), 300);
    assert_eq!(pbx.outbound.options_ping, Some(Duration::from_secs(30)));
    assert_eq!(
        config.sip.tls.as_ref().unwrap().cert_file,
        dir.join("cert.pem")
    );
    let route = &config.routes[0];
    assert!(route.matches("+15551234") && route.matches("15551234") && !route.matches("+4930123"));
    assert_eq!(route.to.len(), 2);
    assert!(
        !config.trunks[1].is_inbound(),
        "no inbound checks: outbound only"
    );
}

/// Table of (what, file, exact error lines).
#[test]
fn every_rule_has_an_exact_message() {
    let listen = r#"listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]"#;
    let sip = |with: &str| valid_with("").replacen(listen, with, 1);
    let media = |key: &str, with: &str| {
        let from = match key {
            "listen" => "listen = \"127.0.0.1\"".to_owned(),
            k => format!("{k} = {}", if k == "port_min" { "20000" } else { "29999" }),
        };
        valid_with("").replacen(&from, with, 1)
    };
    let trunk = |body: &str| valid_with(&format!("\n[[trunk]]\nname = \"c\"\n{body}\n"));
    let route = |body: &str| valid_with(&format!("\n[[route]]\n{body}\n"));

    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("no listener", sip("listen = []"),
         vec![r#"sip.listen: must list at least one socket, such as "udp:127.0.0.1:5060""#]),
        ("listener without port", sip(r#"listen = ["udp:127.0.0.1"]"#),
         vec![r#"sip.listen[0]: expected TRANSPORT:ADDRESS:PORT such as udp:127.0.0.1:5060 or tcp:[::1]:5060 (got "udp:127.0.0.1")"#]),
        ("unknown transport", sip(r#"listen = ["sctp:127.0.0.1:5060"]"#),
         vec![r#"sip.listen[0]: unknown transport (expected udp, tcp or tls) (got "sctp:127.0.0.1:5060")"#]),
        ("duplicate listener", sip(r#"listen = ["udp:127.0.0.1:5060", "udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]"#),
         vec![r#"sip.listen[1]: duplicate of sip.listen[0] (got "udp:127.0.0.1:5060")"#]),
        ("overlapping listeners", sip("listen = [\"udp:127.0.0.1:5060\", \"tcp:127.0.0.1:5060\", \"tcp:0.0.0.0:5060\"]\nadvertise = \"192.0.2.1\""),
         vec![r#"sip.listen[2]: same port as sip.listen[1] on an overlapping address, so the second bind would fail (got "tcp:0.0.0.0:5060")"#]),
        ("bad advertise", sip(&format!("{listen}\nadvertise = \"not a host\"")),
         vec![r#"sip.advertise: not an IP address or host name (got "not a host")"#]),
        ("unspecified advertise", sip(&format!("{listen}\nadvertise = \"0.0.0.0\"")),
         vec![r#"sip.advertise: must be an address peers can reach, not 0.0.0.0 or :: (got "0.0.0.0")"#]),
        ("wildcard listener needs advertise", sip(r#"listen = ["udp:0.0.0.0:5060", "tcp:127.0.0.1:5060"]"#),
         vec!["sip.advertise: required because sip.listen[0] binds an unspecified address (0.0.0.0 or [::]), which cannot be written into Via and Contact"]),
        ("tls listener needs files", sip(r#"listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "tls:[::1]:5061"]"#),
         vec!["sip.tls_cert_file: required by the tls listener sip.listen[2]",
              "sip.tls_key_file: required by the tls listener sip.listen[2]"]),
        ("tls files must be readable", sip(r#"listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "tls:[::1]:5061"]
tls_cert_file = "missing-cert.pem"
tls_key_file = "missing-key.pem""#),
         vec![r#"sip.tls_cert_file: cannot read: no such file (got "missing-cert.pem")"#,
              r#"sip.tls_key_file: cannot read: no such file (got "missing-key.pem")"#]),
        ("tls files without tls listener", sip(&format!("{listen}\ntls_cert_file = \"c.pem\"")),
         vec![r#"sip.tls_cert_file: set, but no tls: socket in sip.listen uses it (got "c.pem")"#]),
        ("bad log level", sip(&format!("{listen}\nlog_level = \"loud\"")),
         vec![r#"sip.log_level: expected a level (off, error, warn, info, debug, trace) or a list like "info,sbcd=debug" (got "loud")"#]),
        ("media listen", media("listen", "listen = \"localhost\""),
         vec![r#"media.listen: not an IP address (got "localhost")"#]),
        ("media advertise", media("listen", "listen = \"127.0.0.1\"\nadvertise = \"x\""),
         vec![r#"media.advertise: not an IP address (got "x")"#]),
        ("media wildcard needs advertise", media("listen", "listen = \"::\""),
         vec!["media.advertise: required because media.listen is an unspecified address (0.0.0.0 or ::), which cannot be written into SDP"]),
        ("odd port_min", media("port_min", "port_min = 20001"),
         vec!["media.port_min: must be even (RTP takes the even port of a pair, RTCP the odd one after it) (got 20001)"]),
        ("even port_max", media("port_max", "port_max = 30000"),
         vec!["media.port_max: must be odd, so the range ends with a whole RTP/RTCP pair (got 30000)"]),
        ("port_min above port_max", media("port_min", "port_min = 30000"),
         vec!["media.port_max: must be greater than media.port_min (30000) (got 29999)"]),
        ("port out of range", media("port_max", "port_max = 70001"),
         vec!["media.port_max: must be at most 65535 (got 70001)"]),
        ("port zero", media("port_min", "port_min = 0"),
         vec!["media.port_min: must be at least 1 (got 0)"]),
        ("idle timeout zero", media("port_max", "port_max = 29999\nidle_timeout_secs = 0"),
         vec!["media.idle_timeout_secs: must be at least 1 (got 0)"]),
        ("hold shorter than idle", media("port_max", "port_max = 29999\nidle_timeout_secs = 120\nhold_timeout_secs = 60"),
         vec!["media.hold_timeout_secs: must be at least media.idle_timeout_secs (got 60)"]),
        ("admin listen", valid_with("").replacen("listen = \"127.0.0.1:9060\"", "listen = \"9060\"", 1),
         vec![r#"admin.listen: not an ADDRESS:PORT socket address such as 127.0.0.1:9060 (got "9060")"#]),
        ("admin on a SIP TCP port", valid_with("").replacen("listen = \"127.0.0.1:9060\"", "listen = \"127.0.0.1:5060\"", 1),
         vec![r#"admin.listen: same port as sip.listen[1] on an overlapping address, so the second bind would fail (got "127.0.0.1:5060")"#]),
        ("empty trunk name", valid_with("\n[[trunk]]\nname = \"\"\noutbound.uri = \"sip:h.test\"\n"),
         vec!["trunk[2].name: must not be empty"]),
        ("bad trunk name", valid_with("\n[[trunk]]\nname = \"my pbx\"\noutbound.uri = \"sip:h.test\"\n"),
         vec![r#"trunk[2].name: must be 1 to 64 letters, digits, '-', '_' or '.' (got "my pbx")"#]),
        ("duplicate trunk name", valid_with("\n[[trunk]]\nname = \"a\"\noutbound.uri = \"sip:h.test\"\n"),
         vec![r#"trunk[2].name: duplicate of trunk[0].name (got "a")"#]),
        ("allow syntax", trunk(r#"inbound.allow = ["10.0.0.0/8", "somewhere"]"#),
         vec![r#"trunk[2].inbound.allow[1]: not a CIDR network like 192.0.2.0/24 or 2001:db8::/32 (got "somewhere")"#]),
        ("allow host bits", trunk(r#"inbound.allow = ["10.1.2.3/8"]"#),
         vec![r#"trunk[2].inbound.allow[0]: host bits are set (did you mean 10.0.0.0/8?) (got "10.1.2.3/8")"#]),
        ("allow prefix length", trunk(r#"inbound.allow = ["10.0.0.0/33"]"#),
         vec![r#"trunk[2].inbound.allow[0]: prefix length 33 is longer than 32 (got "10.0.0.0/33")"#]),
        ("hash domain", trunk(r#"inbound.domain = "not a domain""#),
         vec![r#"trunk[2].inbound.domain: not a domain name (got "not a domain")"#]),
        ("header name", trunk(r#"inbound.header = { name = "X Key", value = "v" }"#),
         vec![r#"trunk[2].inbound.header.name: not a SIP header name (got "X Key")"#]),
        ("reserved header", trunk(r#"inbound.header = { name = "Call-ID", value = "v" }"#),
         vec![r#"trunk[2].inbound.header.name: is a header sbcd manages itself; use a custom name such as X-Trunk-Key (got "Call-ID")"#]),
        ("empty header value", trunk(r#"inbound.header = { name = "X-Key", value = "" }"#),
         vec!["trunk[2].inbound.header.value: must not be empty"]),
        ("header value with line break", trunk(r#"outbound.uri = "sip:h.test"
outbound.header = { name = "X-Key", value = "sec\r\nret" }"#),
         vec!["trunk[2].outbound.header.value: must not contain control characters or line breaks"]),
        ("inbound prefix", trunk(r#"inbound.prefix = "12 3""#),
         vec![r#"trunk[2].inbound.prefix: must be 1 to 32 characters of 0-9 A-Z a-z * # + . _ - (got "12 3")"#]),
        ("digest realm and users", trunk(r#"inbound.digest = { realm = "", users = [] }"#),
         vec!["trunk[2].inbound.digest.realm: must not be empty",
              "trunk[2].inbound.digest.users: must list at least one user"]),
        ("digest password and password_file", trunk(r#"inbound.digest = { realm = "r", users = [{ username = "u", password = "p", password_file = "f" }] }"#),
         vec!["trunk[2].inbound.digest.users[0]: set password or password_file, not both"]),
        ("digest without password", trunk(r#"inbound.digest = { realm = "r", users = [{ username = "u" }] }"#),
         vec!["trunk[2].inbound.digest.users[0]: password or password_file is required"]),
        ("empty password", trunk(r#"inbound.digest = { realm = "r", users = [{ username = "u", password = "" }] }"#),
         vec!["trunk[2].inbound.digest.users[0].password: must not be empty"]),
        ("duplicate digest user", trunk(r#"inbound.digest = { realm = "r", users = [{ username = "u", password = "p" }, { username = "u", password = "q" }] }"#),
         vec![r#"trunk[2].inbound.digest.users[1].username: duplicate of trunk[2].inbound.digest.users[0].username (got "u")"#]),
        ("empty username", trunk(r#"inbound.digest = { realm = "r", users = [{ username = "", password = "p" }] }"#),
         vec!["trunk[2].inbound.digest.users[0].username: must not be empty"]),
        ("unreadable password_file", trunk(r#"inbound.digest = { realm = "r", users = [{ username = "u", password_file = "no-such.pw" }] }"#),
         vec![r#"trunk[2].inbound.digest.users[0].password_file: cannot read: no such file (got "no-such.pw")"#]),
        ("inbound.register needs digest", trunk("inbound.register = true"),
         vec!["trunk[2].inbound.register: requires inbound.digest (the PBX registers with digest credentials)"]),
        ("inbound.register excludes outbound.uri", trunk(r#"inbound.register = true
inbound.digest = { realm = "r", users = [{ username = "u", password = "p" }] }
outbound.uri = "sip:127.0.0.1:5070""#),
         vec![r#"trunk[2].outbound.uri: not allowed with inbound.register = true (calls go to the Contact the PBX registered) (got "sip:127.0.0.1:5070")"#]),
        ("outbound.uri not SIP", trunk(r#"outbound.uri = "http://x""#),
         vec![r#"trunk[2].outbound.uri: not a SIP URI (got "http://x")"#]),
        ("outbound.uri with user", trunk(r#"outbound.uri = "sip:bob@h.test""#),
         vec![r#"trunk[2].outbound.uri: must not have a user part (the called number goes there; use outbound.prefix) (got "sip:bob@h.test")"#]),
        ("outbound.uri transport without listener", trunk(r#"outbound.uri = "sip:h.test;transport=tls""#),
         vec![r#"trunk[2].outbound.uri: needs a tls: socket in sip.listen to send from (got "sip:h.test;transport=tls")"#]),
        ("outbound.uri bad transport", trunk(r#"outbound.uri = "sip:h.test;transport=sctp""#),
         vec![r#"trunk[2].outbound.uri: unsupported transport "sctp" (expected udp, tcp or tls) (got "sip:h.test;transport=sctp")"#]),
        ("outbound prefix", trunk("outbound.uri = \"sip:h.test\"\noutbound.prefix = \"\""),
         vec![r#"trunk[2].outbound.prefix: must be 1 to 32 characters of 0-9 A-Z a-z * # + . _ - (got "")"#]),
        ("outbound domain", trunk("outbound.uri = \"sip:h.test\"\noutbound.domain = \"a..b\""),
         vec![r#"trunk[2].outbound.domain: not a domain name or IP address (got "a..b")"#]),
        ("outbound.register needs auth and uri", trunk("inbound.allow = [\"192.0.2.0/24\"]\noutbound.register = {}"),
         vec!["trunk[2].outbound.register: requires outbound.auth (registrars challenge with digest)",
              "trunk[2].outbound.register: requires outbound.uri (the registrar)"]),
        ("outbound.register expires", trunk(r#"outbound.uri = "sip:h.test"
outbound.auth = { username = "u", password = "p" }
outbound.register = { expires_secs = 0 }"#),
         vec!["trunk[2].outbound.register.expires_secs: must be from 1 to 4294967295 (got 0)"]),
        ("outbound.auth password XOR", trunk(r#"outbound.uri = "sip:h.test"
outbound.auth = { username = "u" }"#),
         vec!["trunk[2].outbound.auth: password or password_file is required"]),
        ("digest challenge status", trunk(r#"inbound.digest = { realm = "r", challenge = 403, users = [{ username = "u", password = "p" }] }"#),
         vec!["trunk[2].inbound.digest.challenge: must be 401 or 407 (got 403)"]),
        ("digest algorithms", trunk(r#"inbound.digest = { realm = "r", algorithms = ["MD5", "SHA-512", "md5"], users = [{ username = "u", password = "p" }] }"#),
         vec![r#"trunk[2].inbound.digest.algorithms[1]: must be "SHA-256" or "MD5" (got "SHA-512")"#,
              r#"trunk[2].inbound.digest.algorithms[2]: listed twice (got "md5")"#]),
        ("digest uri_check", trunk(r#"inbound.digest = { realm = "r", uri_check = "loose", users = [{ username = "u", password = "p" }] }"#),
         vec![r#"trunk[2].inbound.digest.uri_check: must be "host" or "exact" (got "loose")"#]),
        ("outbound.auth digest_uri", trunk(r#"outbound.uri = "sip:h.test"
outbound.auth = { username = "u", password = "p", digest_uri = "from" }"#),
         vec![r#"trunk[2].outbound.auth.digest_uri: must be "request_uri" or "to" (got "from")"#]),
        ("outbound.auth realm", trunk(r#"outbound.uri = "sip:h.test"
outbound.auth = { username = "u", password = "p", realm = "a\"b" }"#),
         vec![r#"trunk[2].outbound.auth.realm: must be non-empty, without quotes, backslashes or control characters (got "a\"b")"#]),
        ("latch window", trunk("outbound.uri = \"sip:h.test\"\nmedia.latch_any_secs = 0"),
         vec!["trunk[2].media.latch_any_secs: must be from 1 to 60 (leave the key out for strict latching) (got 0)"]),
        ("options ping zero", trunk("outbound.uri = \"sip:h.test\"\noutbound.options_ping_secs = 0"),
         vec!["trunk[2].outbound.options_ping_secs: must be at least 1 (leave the key out to disable the probe) (got 0)"]),
        ("options ping without uri", trunk("inbound.allow = [\"192.0.2.0/24\"]\noutbound.options_ping_secs = 30"),
         vec!["trunk[2].outbound.options_ping_secs: requires outbound.uri (the address to probe) (got 30)"]),
        ("useless trunk", trunk(""),
         vec!["trunk[2]: has no inbound checks and no outbound.uri, so it neither receives nor delivers calls"]),
        ("route from unknown", route("from = \"x\"\nto = [\"b\"]"),
         vec![r#"route[1].from: unknown trunk "x""#]),
        ("route from outbound-only", valid_with("\n[[trunk]]\nname = \"c\"\noutbound.uri = \"sip:h.test\"\n[[route]]\nfrom = \"c\"\nto = [\"a\"]\n"),
         vec![r#"route[1].from: trunk "c" has no inbound checks, so it receives no calls"#]),
        ("route regex", route("from = \"a\"\nmatch = \"^[0-9\"\nto = [\"b\"]"),
         vec![r#"route[1].match: invalid regex: unclosed character class (got "^[0-9")"#]),
        ("route without targets", route("from = \"a\"\nto = []"),
         vec!["route[1].to: must list at least one trunk"]),
        ("route to unknown", route("from = \"a\"\nto = [\"b\", \"backup\"]"),
         vec![r#"route[1].to[1]: unknown trunk "backup""#]),
        ("route to twice", route("from = \"a\"\nto = [\"b\", \"a\", \"b\"]"),
         vec![r#"route[1].to[2]: duplicate of route[1].to[0] (got "b")"#]),
        ("route to undeliverable", valid_with("\n[[trunk]]\nname = \"c\"\ninbound.allow = [\"192.0.2.0/24\"]\n[[route]]\nfrom = \"a\"\nto = [\"c\"]\n"),
         vec![r#"route[1].to[0]: trunk "c" has no outbound.uri and no inbound.register, so calls cannot be delivered to it"#]),
    ];
    let mut failures = Vec::new();
    for (what, toml, want) in &cases {
        match load_str(toml, Path::new(".")) {
            Ok(_) => failures.push(format!("{what}: loaded, expected {want:?}")),
            Err(e) => {
                let got: Vec<String> = e.iter().map(ToString::to_string).collect();
                if got != *want {
                    failures.push(format!("{what}:\n   got  {got:?}\n   want {want:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn password_files_are_read_at_load() {
    let dir = scratch("password-files");
    std::fs::write(dir.join("ok.pw"), "s3cret\r\n").unwrap();
    std::fs::write(dir.join("empty.pw"), "\n").unwrap();
    std::fs::write(dir.join("two-lines.pw"), "a\nb\n").unwrap();
    let with_file = |file: &str| {
        valid_with(&format!(
            "\n[[trunk]]\nname = \"c\"\noutbound.uri = \"sip:h.test\"\noutbound.auth = {{ username = \"u\", password_file = \"{file}\" }}\n"
        ))
    };
    let config = load_str(&with_file("ok.pw"), &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.trunks[2]
            .outbound
            .auth
            .as_ref()
            .unwrap()
            .password
            .expose(),
        "s3cret"
    );
    let absolute = dir.join("ok.pw");
    assert!(load_str(&with_file(absolute.to_str().unwrap()), Path::new("/")).is_ok());

    assert_eq!(
        errors_in(&with_file("empty.pw"), &dir),
        [r#"trunk[2].outbound.auth.password_file: file is empty (got "empty.pw")"#]
    );
    assert_eq!(
        errors_in(&with_file("two-lines.pw"), &dir),
        [
            r#"trunk[2].outbound.auth.password_file: must hold the password on a single line (got "two-lines.pw")"#
        ]
    );
    assert_eq!(
        errors_in(&with_file("."), &dir),
        [r#"trunk[2].outbound.auth.password_file: cannot read: is a directory (got ".")"#]
    );
}

#[test]
fn unknown_keys_name_their_path() {
    assert_eq!(
        errors(&format!("bogus = 1\n{}", valid_with(""))),
        ["bogus: unknown key (expected sip, media, admin, trunk, route)"]
    );
    assert_eq!(
        errors(&valid_with("").replacen("[sip]\n", "[sip]\nlisten_on = 1\n", 1)),
        ["sip.listen_on: unknown key (expected listen, advertise, shutdown_grace_secs, tls_cert_file, tls_key_file, log_level, t1_ms, t2_ms, t4_ms)"]
    );
    assert_eq!(
        errors(&valid_with("\n[[trunk]]\nname = \"c\"\ninbound.prefx = \"1\"\n")),
        ["trunk[2].inbound.prefx: unknown key (expected allow, domain, header, prefix, digest, register, max_calls, max_cps)"]
    );
    assert_eq!(
        errors(&valid_with("\n[[trunk]]\nnmae = \"c\"\n")),
        ["trunk[2].nmae: unknown key (expected name, inbound, outbound, media)"]
    );
    assert_eq!(
        errors(&valid_with("\n[[trunk]]\nname = \"c\"\ninbound.digest = { realm = \"r\", users = [{ username = \"u\", pasword = \"x\" }] }\n")),
        ["trunk[2].inbound.digest.users[0].pasword: unknown key (expected username, password, password_file)"]
    );
    // Keys are case-sensitive. (Within one section only serde's first error shows.)
    assert_eq!(
        errors(&valid_with("").replacen("[admin]\nlisten", "[admin]\nListen", 1)),
        ["admin.Listen: unknown key (expected listen)"]
    );
}

#[test]
fn type_errors_and_missing_keys_name_their_path() {
    assert_eq!(
        errors(&valid_with("").replacen("port_min = 20000", "port_min = \"abc\"", 1)),
        [r#"media.port_min: expected an integer (got "abc")"#]
    );
    assert_eq!(
        errors(&valid_with("").replacen("port_min = 20000", "port_min = -2", 1)),
        ["media.port_min: expected a non-negative integer (got -2)"]
    );
    // The config crate would round these; an integer key takes integers only.
    assert_eq!(
        errors(&valid_with("\n[[trunk]]\nname = \"c\"\noutbound.uri = \"sip:h.test\"\noutbound.options_ping_secs = 0.5\n")
            .replacen("port_min = 20000", "port_min = 20000.4", 1)),
        [
            "media.port_min: expected an integer (got 20000.4)",
            "trunk[2].outbound.options_ping_secs: expected an integer (got 0.5)",
        ]
    );
    assert_eq!(
        errors(&valid_with("\n[[route]]\nfrom = \"a\"\nto = \"b\"\n")),
        [r#"route[1].to: expected a list (got "b")"#]
    );
    assert_eq!(
        errors(&valid_with(
            "\n[[trunk]]\ninbound.allow = [\"10.0.0.0/8\"]\n"
        )),
        ["trunk[2].name: required key is missing"]
    );
    assert_eq!(
        errors(&valid_with(
            "\n[[trunk]]\nname = \"c\"\ninbound.register = \"maybe\"\n"
        )),
        [r#"trunk[2].inbound.register: expected a boolean (got "maybe")"#]
    );
    assert_eq!(
        errors(&format!(
            "{TRUNKS}{}",
            SECTIONS.replace("[admin]\nlisten = \"127.0.0.1:9060\"\n", "")
        )),
        ["admin: required section is missing"]
    );
    assert_eq!(
        errors("trunk = 5\n")[3],
        "trunk: expected an array (got 5)".to_owned()
    );
}

#[test]
fn shape_errors_of_several_sections_are_listed_together() {
    let toml = valid_with("\n[[trunk]]\nname = \"c\"\noutbound.uri = 7\ninbound.x = 1\n[[route]]\nfrom = [\"a\"]\nto = [\"b\"]\n")
        .replacen("[sip]\n", "[sip]\nshutdown_grace_secs = \"soon\"\n", 1)
        .replacen("[admin]\n", "[admin]\nport = 1\n", 1);
    assert_eq!(
        errors(&toml),
        [
            r#"sip.shutdown_grace_secs: expected an integer (got "soon")"#,
            "admin.port: unknown key (expected listen)",
            "trunk[2].inbound.x: unknown key (expected allow, domain, header, prefix, digest, register, max_calls, max_cps)",
            "route[1].from: expected a string (got a list)",
        ]
    );
}

#[test]
fn semantic_errors_are_listed_together_in_file_order() {
    let toml = valid_with(
        r#"
[[trunk]]
name = "c"
outbound.uri = "http://x"

[[route]]
from = "a"
to = ["b", "backup"]
"#,
    )
    .replacen("port_min = 20000", "port_min = 20001", 1)
    .replacen(
        r#"inbound.allow = ["127.0.0.1/32"]"#,
        r#"inbound.allow = ["127.0.0.1/8"]"#,
        1,
    );
    assert_eq!(
        errors(&toml),
        [
            "media.port_min: must be even (RTP takes the even port of a pair, RTCP the odd one after it) (got 20001)",
            r#"trunk[0].inbound.allow[0]: host bits are set (did you mean 127.0.0.0/8?) (got "127.0.0.1/8")"#,
            r#"trunk[2].outbound.uri: not a SIP URI (got "http://x")"#,
            r#"route[1].to[1]: unknown trunk "backup""#,
        ]
    );
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let toml = valid_with(
        r#"
[[trunk]]
name = "c"
inbound.header = { name = "X-Trunk-Key", value = "HEADER-SECRET" }
inbound.digest = { realm = "r", users = [{ username = "u", password = "DIGEST-SECRET" }] }
outbound.uri = "sip:h.test"
outbound.auth = { username = "sbc", password = "AUTH-SECRET" }
"#,
    );
    let config = ok(&toml);
    let debug = format!("{config:?} {config:#?}");
    for secret in ["HEADER-SECRET", "DIGEST-SECRET", "AUTH-SECRET"] {
        assert!(!debug.contains(secret), "{secret} in Debug output");
    }
    assert!(debug.contains("Secret(<redacted>)"));

    // Wrong shapes and bad values around secrets: the messages never quote them.
    let bad = valid_with(
        r#"
[[trunk]]
name = "c"
inbound.header = { name = "Via", value = " HEADER-SECRET" }
inbound.digest = { realm = "r", users = [{ username = "u", password = "DIGEST-SECRET", password_file = "x" }] }
outbound.uri = "sip:h.test"
outbound.auth = { username = "sbc", password = ["AUTH-SECRET"] }
"#,
    );
    let messages = errors(&bad).join("\n");
    for secret in ["HEADER-SECRET", "DIGEST-SECRET", "AUTH-SECRET"] {
        assert!(!messages.contains(secret), "{secret} in:\n{messages}");
    }
    assert_eq!(
        messages,
        "trunk[2].outbound.auth.password: expected a string"
    );
    let messages = errors(&bad.replace(
        r#"password = ["AUTH-SECRET"]"#,
        r#"password = "AUTH-SECRET""#,
    ))
    .join("\n");
    for secret in ["HEADER-SECRET", "DIGEST-SECRET", "AUTH-SECRET"] {
        assert!(!messages.contains(secret), "{secret} in:\n{messages}");
    }
    assert!(
        messages.contains("trunk[2].inbound.header.value: must not start or end with whitespace"),
        "{messages}"
    );
}

#[test]
fn environment_overrides_the_file() {
    let dir = scratch("env");
    let path = dir.join("sbcd.toml");
    std::fs::write(&path, valid_with("")).unwrap();
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };

    let config = load_with_env(
        &path,
        env(&[
            ("SBC__SIP__LOG_LEVEL", "debug"),
            ("SBC__SIP__LISTEN", "udp:127.0.0.1:5062,tcp:[::1]:5062"),
            ("SBC__MEDIA__PORT_MIN", "30000"),
            ("SBC__MEDIA__PORT_MAX", "30999"),
            ("PATH", "/usr/bin"),
            ("SBC_NOT_OURS", "x"),
        ]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.sip.log_level.as_deref(), Some("debug"));
    let listen: Vec<String> = config.sip.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["udp:127.0.0.1:5062", "tcp:[::1]:5062"]);
    assert_eq!(config.media.ports.range(), 30000..=30999);

    let e = load_with_env(
        &path,
        env(&[
            ("SBC__SIP__LOGLEVEL", "debug"),
            ("SBC__MEDIA__PORT_MIN", "abc"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "sip.loglevel: set by environment variable SBC__SIP__LOGLEVEL: unknown key (expected listen, advertise, shutdown_grace_secs, tls_cert_file, tls_key_file, log_level, t1_ms, t2_ms, t4_ms)\n\
         media.port_min: set by environment variable SBC__MEDIA__PORT_MIN: expected an integer (got \"abc\")"
    );
    let e = load_with_env(&path, env(&[("SBC__MEDIA__PORT_MIN", "20001")]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "media.port_min: set by environment variable SBC__MEDIA__PORT_MIN: must be even (RTP takes the even port of a pair, RTCP the odd one after it) (got 20001)"
    );
}

#[test]
fn file_problems_name_the_file() {
    let dir = scratch("files");
    let missing = dir.join("missing.toml");
    let e = load(&missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: cannot read: no such file", missing.display())
    );

    let broken = dir.join("broken.conf"); // the extension does not matter: always TOML
    std::fs::write(&broken, "[sip]\nlisten =\n").unwrap();
    let e = load_with_env(&broken, Vec::<(String, String)>::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: TOML parse error at line 2, column 9: string values must be quoted, expected literal string", broken.display())
    );
    assert_eq!(e.len(), 1);
}

#[test]
fn reload_diff_names_restart_only_keys() {
    let old = ok(&valid_with(""));
    let same = ok(&valid_with("\n[[route]]\nfrom = \"b\"\nto = [\"a\"]\n"));
    assert!(old.restart_required(&same).is_empty());
    assert_ne!(old, same);
    let moved = ok(&valid_with("")
        .replacen("port_max = 29999", "port_max = 20999", 1)
        .replacen(
            "listen = \"127.0.0.1:9060\"",
            "listen = \"127.0.0.1:9061\"",
            1,
        ));
    assert_eq!(
        old.restart_required(&moved),
        ["media.port_max", "admin.listen"]
    );
    // The addresses written into dialogs and SDP of running calls.
    let advertised =
        ok(&valid_with("").replacen("[media]\n", "[media]\nadvertise = \"192.0.2.9\"\n", 1));
    assert_eq!(old.restart_required(&advertised), ["media.advertise"]);
}

#[test]
fn route_patterns_match_called_numbers_as_ascii() {
    let config = ok(&valid_with(
        "\n[[route]]\nfrom = \"a\"\nmatch = \"^\\\\d{3}$\"\nto = [\"b\"]\n",
    ));
    let route = &config.routes[1];
    assert_eq!(route.pattern.as_ref().unwrap().as_str(), r"^\d{3}$");
    assert!(route.matches("123"));
    assert!(!route.matches("1234"));
    assert!(!route.matches("١٢٣"), "\\d is ASCII only");
}

#[test]
fn sip_timers_are_configurable_and_checked() {
    let toml = valid_with("").replacen("[sip]\n", "[sip]\nt1_ms = 250\nt2_ms = 2000\n", 1);
    let config = load_str(&toml, Path::new(".")).unwrap();
    assert_eq!(config.sip.timers.t1, Duration::from_millis(250));
    assert_eq!(config.sip.timers.t2, Duration::from_secs(2));
    let toml = valid_with("").replacen(
        "[sip]\n",
        "[sip]\nt1_ms = 5000\nt2_ms = 4000\nt4_ms = 0\n",
        1,
    );
    assert_eq!(
        errors(&toml),
        [
            "sip.t2_ms: expected sip.t1_ms to 60000 milliseconds (RFC 3261 default 4000) (got 4000)",
            "sip.t4_ms: expected 1 to 60000 milliseconds (RFC 3261 default 5000) (got 0)",
        ]
    );
}

#[test]
fn digest_quirk_keys_are_read() {
    let config = ok(&valid_with(
        r#"
[[trunk]]
name = "c"
inbound.digest = { realm = "sbc.test", challenge = 401, uri_check = "exact", algorithms = ["MD5"], users = [{ username = "u", password = "p" }] }
outbound.uri = "sip:127.0.0.3:5060"
outbound.auth = { username = "sbc", password = "pw", realm = "carrier.test", digest_uri = "to" }
"#,
    ));
    let c = &config.trunks[2];
    let digest = c.inbound.digest.as_ref().unwrap();
    assert_eq!(digest.challenge, sbc_config::ChallengeStatus::Unauthorized);
    assert_eq!(digest.challenge.code(), 401);
    assert_eq!(digest.uri_check, sbc_config::DigestUriCheck::Exact);
    assert_eq!(digest.algorithms, vec![sbc_config::DigestAlgorithm::Md5]);
    let auth = c.outbound.auth.as_ref().unwrap();
    assert_eq!(auth.realm.as_deref(), Some("carrier.test"));
    assert_eq!(auth.digest_uri, sbc_config::DigestUri::To);
}

/// systemd credentials: `password_file = "$CREDENTIALS_DIRECTORY/name"` reads the file
/// `LoadCredential=` placed in the directory the `CREDENTIALS_DIRECTORY` variable names; without
/// the variable, the key is an error that says so.
#[test]
fn password_file_from_systemd_credentials() {
    let dir = scratch("credentials");
    let creds = dir.join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("carrier-pw"), "s3cret\n").unwrap();
    let path = dir.join("sbcd.toml");
    let text = valid_with("").replacen(
        "outbound.uri = \"sip:127.0.0.2:5080\"\n",
        "outbound.uri = \"sip:127.0.0.2:5080\"\noutbound.auth = { username = \"sbc\", password_file = \"$CREDENTIALS_DIRECTORY/carrier-pw\" }\n",
        1,
    );
    std::fs::write(&path, &text).unwrap();
    let config = load_with_env(&path, [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())])
        .unwrap_or_else(|e| panic!("{e}"));
    let auth = config.trunks[1]
        .outbound
        .auth
        .as_ref()
        .expect("outbound.auth");
    assert_eq!(auth.password.expose(), "s3cret");
    // The braced form names the same directory.
    std::fs::write(
        &path,
        text.replace("$CREDENTIALS_DIRECTORY", "${CREDENTIALS_DIRECTORY}"),
    )
    .unwrap();
    assert!(load_with_env(&path, [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())]).is_ok());

    let e = load_with_env(&path, Vec::<(String, String)>::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "trunk[1].outbound.auth.password_file: names $CREDENTIALS_DIRECTORY, which is not set (systemd sets it for a unit with LoadCredential=) (got \"${CREDENTIALS_DIRECTORY}/carrier-pw\")"
    );
}

#[test]
fn limits_and_trunk_call_caps() {
    // Defaults without a [limits] table.
    let config = ok(&valid_with(""));
    assert_eq!(config.limits.source_requests_per_sec, 200);
    assert_eq!(config.limits.source_auth_failures_per_min, 10);
    assert_eq!(config.limits.block, Duration::from_secs(300));
    assert_eq!(config.trunks[0].inbound.max_calls, None);

    let config = ok(&valid_with(
        "\n[limits]\nsource_requests_per_sec = 0\nsource_auth_failures_per_min = 3\nblock_secs = 60\n",
    )
    .replacen(
        "inbound.allow = [\"127.0.0.1/32\"]\n",
        "inbound.allow = [\"127.0.0.1/32\"]\ninbound.max_calls = 30\ninbound.max_cps = 5\n",
        1,
    ));
    assert_eq!(config.limits.source_requests_per_sec, 0, "0 turns it off");
    assert_eq!(config.limits.source_auth_failures_per_min, 3);
    assert_eq!(config.limits.block, Duration::from_secs(60));
    assert_eq!(config.trunks[0].inbound.max_calls, Some(30));
    assert_eq!(config.trunks[0].inbound.max_cps, Some(5));

    assert_eq!(
        errors(
            &valid_with("\n[limits]\nblock_secs = 0\nsource_requests_per_sec = 5000000\n")
                .replacen(
                    "inbound.allow = [\"127.0.0.1/32\"]\n",
                    "inbound.allow = [\"127.0.0.1/32\"]\ninbound.max_calls = 0\n",
                    1
                )
        ),
        [
            "limits.source_requests_per_sec: expected 0 (no limit) to 1000000 (got 5000000)",
            "limits.block_secs: expected 1 to 86400 seconds (got 0)",
            "trunk[0].inbound.max_calls: expected 1 to 1000000 (got 0)",
        ]
    );
}

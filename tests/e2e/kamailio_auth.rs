//! Kamailio as the carrier, with digest authentication (tests/kamailio/auth.cfg): sbcd
//! registers on behalf of its "carrier" trunk (REGISTER -> 401 -> REGISTER with credentials ->
//! 200), the carrier calls the registered Contact, the PBX calls out through Kamailio's 407, a
//! wrong password backs off, and SIGTERM removes the binding.
//!
//! ```text
//!   PBX SIPp 127.0.0.1:P  <->  sbcd 127.0.0.1:S  <->  Kamailio 127.0.0.4:K  <->  carrier SIPp 127.0.0.2:C
//!                                                     (registrar + proxy, realm carrier.test,
//!                                                      user "sbc", usrloc in memory)
//! ```
//! Kamailio logs every REGISTER and INVITE it authenticates with an `E2E` marker, with the
//! credentials as received; the tests read those lines (and `kamcmd ul.lookup` over Kamailio's
//! own ctl socket) to see what sbcd sent. The digest variants are Kamailio's -A defines:
//! opaque without qop (RFC 2069 style; Kamailio 5.6 cannot send opaque itself, auth.cfg adds
//! it to the challenge), qop=auth with nonce-count checks, and SHA-256 with qop=auth.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::checks::{count_received, Expect};
use crate::kamailio::{Kamailio, KamailioSpec};
use crate::sbcd::{Options, Sbcd, Topology, CARRIER_IP};
use crate::util::{self, host_port, read_lossy, serial, CALLED};
use crate::{finish, kamailio_expect, leg_checks, run_call};

/// The account sbcd registers and authenticates as.
const USER: &str = "sbc";
const PASSWORD: &str = "e2e-Kam-Secret-7";
const WRONG_PASSWORD: &str = "not-the-password";
/// The carrier's domain (sbcd's `outbound.domain`) and Kamailio's realm.
const DOMAIN: &str = "carrier.test";
/// The opaque auth.cfg puts in its challenges with AUTH_OPAQUE.
const OPAQUE: &str = "5ccc069c403ebaf9f0171e9517f40e41";
/// What sbcd asks for (`outbound.register.expires_secs`).
const EXPIRES: u32 = 300;

/// The digest flavour Kamailio challenges with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// MD5, no qop, an opaque to echo (RFC 2069 style).
    Opaque,
    /// MD5, qop=auth, nonce counts checked.
    Qop,
    /// SHA-256, qop=auth (RFC 8760).
    Sha256,
}

impl Variant {
    fn defines(self) -> &'static [&'static str] {
        match self {
            Self::Opaque => &["AUTH_OPAQUE"],
            Self::Qop => &["AUTH_QOP"],
            Self::Sha256 => &["AUTH_QOP", "AUTH_SHA256"],
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Opaque => "MD5 without qop, with opaque",
            Self::Qop => "MD5 with qop=auth",
            Self::Sha256 => "SHA-256 with qop=auth",
        }
    }
}

/// One test's world: the topology (sbcd's config included), Kamailio and its ctl socket.
/// Declared before the `Sbcd` guard in each test, so sbcd stops first and its un-REGISTER
/// still finds Kamailio.
struct Carrier {
    topo: Topology,
    kamailio: Kamailio,
    ctl: String,
}

/// The ctl socket: in Kamailio's run directory, unless that path is too long for a unix
/// socket (108 bytes).
fn ctl_socket(run_dir: PathBuf, listen: SocketAddr) -> String {
    let path = run_dir.join("ctl.sock");
    let path = if path.as_os_str().len() < 100 {
        path
    } else {
        std::env::temp_dir().join(format!(
            "sbcd-e2e-kam-{}-{}.sock",
            std::process::id(),
            listen.port()
        ))
    };
    format!("unix:{}", path.display())
}

/// sbcd's trunks: the PBX (allowlisted) and the carrier through Kamailio, registering on
/// behalf with `password`. The carrier trunk has no inbound check: calls reach it only at the
/// Contact it registered.
fn trunks(topo: &Topology, password: &str) -> String {
    format!(
        "\n[[trunk]]\nname = \"pbx\"\ninbound.allow = [\"{pbx_ip}/32\"]\noutbound.uri = \"{pbx}\"\n\
         \n[[trunk]]\nname = \"carrier\"\noutbound.uri = \"{kamailio}\"\noutbound.domain = \"{DOMAIN}\"\n\
         outbound.auth = {{ username = \"{USER}\", password = \"{password}\" }}\n\
         outbound.register = {{ expires_secs = {EXPIRES} }}\n\
         \n[[route]]\nfrom = \"pbx\"\nmatch = \"^\\\\+?[0-9]+$\"\nto = [\"carrier\"]\n\
         \n[[route]]\nfrom = \"carrier\"\nto = [\"pbx\"]\n",
        pbx_ip = topo.pbx.addr.ip(),
        pbx = Topology::sip_uri(topo.pbx.addr, topo.pbx.transport),
        kamailio = Topology::sip_uri(topo.kamailio, crate::sipp::Transport::Udp),
    )
}

/// Starts Kamailio (auth.cfg, `variant`) for a new topology whose sbcd uses `password`.
fn carrier(test: &str, variant: Variant, password: &str) -> Carrier {
    let mut topo = Topology::new(test, Options::default());
    topo.trunks = Some(trunks(&topo, password));
    let mut spec = KamailioSpec {
        name: "kamailio-auth".to_owned(),
        config: util::repo().join("tests/kamailio/auth.cfg"),
        defines: Vec::new(),
    };
    let ctl = ctl_socket(spec.run_dir(&topo.dir), topo.kamailio);
    spec.defines = vec![
        format!(
            "CARRIER_URI=\"{}\"",
            Topology::sip_uri(topo.carrier.addr, crate::sipp::Transport::Udp)
        ),
        format!("CARRIER_SRC=\"{CARRIER_IP}\""),
        format!("CTL_SOCK=\"{ctl}\""),
        format!("AUTH_USER=\"{USER}\""),
        format!("AUTH_PASSWORD=\"{PASSWORD}\""),
        format!("REALM=\"{DOMAIN}\""),
        format!("DOMAIN=\"{DOMAIN}\""),
    ];
    spec.defines
        .extend(variant.defines().iter().map(|d| (*d).to_owned()));
    let kamailio = Kamailio::start_spec(&topo.dir, topo.kamailio, &spec);
    Carrier {
        topo,
        kamailio,
        ctl,
    }
}

/// `kamcmd -s CTL ARGS...` (10 s at most): (success, output).
fn kamcmd(ctl: &str, args: &[&str]) -> (bool, String) {
    let program = util::find_program("kamcmd")
        .unwrap_or_else(|| panic!("kamcmd not found: it comes with Debian's kamailio package"));
    let out = tempfile_in_tmp();
    let file = std::fs::File::create(&out).expect("create kamcmd output file");
    let err = file.try_clone().expect("clone file handle");
    let mut child = Command::new(program)
        .arg("-s")
        .arg(ctl)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("run kamcmd");
    let status = util::wait_child(&mut child, Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = read_lossy(&out);
    let _ = std::fs::remove_file(&out);
    (status.is_some_and(|s| s.success()), text)
}

fn tempfile_in_tmp() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "sbcd-e2e-kamcmd-{}-{}.out",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The Contact addresses Kamailio holds for the account (`ul.lookup location sbc`), or why
/// there are none (kamcmd's answer).
fn registered_contacts(ctl: &str) -> Result<Vec<String>, String> {
    let (ok, out) = kamcmd(ctl, &["ul.lookup", "location", USER]);
    let contacts: Vec<String> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Address:"))
        .map(|a| a.trim().to_owned())
        .collect();
    if ok && !contacts.is_empty() {
        Ok(contacts)
    } else {
        Err(out.trim().to_owned())
    }
}

/// The "E2E" lines Kamailio logged whose first word is `event`, without the prefix.
fn events(kamailio: &Kamailio, event: &str) -> Vec<String> {
    kamailio
        .log_text()
        .lines()
        .filter_map(|l| l.split_once("E2E ").map(|(_, rest)| rest))
        .filter(|rest| rest.split_whitespace().next() == Some(event))
        .map(str::to_owned)
        .collect()
}

/// `name=value` (up to the next space) in an E2E line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &line[start..];
    Some(rest.split_whitespace().next().unwrap_or(""))
}

/// `name=[value]` (up to the line's last `]`) in an E2E line; `None` for `<null>`.
fn bracketed<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=["))? + name.len() + 2;
    let end = line.rfind(']')?;
    let value = line.get(start..end)?;
    (value != "<null>").then_some(value)
}

/// The parameters of a `Digest k="v", k=v` credentials value (names lower case, quotes off).
fn digest_params(value: &str) -> HashMap<String, String> {
    let rest = value.trim();
    let rest = rest
        .strip_prefix("Digest")
        .or_else(|| rest.strip_prefix("digest"))
        .unwrap_or(rest);
    let mut params = HashMap::new();
    let mut parts = Vec::new();
    let (mut current, mut quoted) = (String::new(), false);
    for c in rest.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    for part in parts {
        if let Some((name, value)) = part.split_once('=') {
            params.insert(
                name.trim().to_ascii_lowercase(),
                value.trim().trim_matches('"').to_owned(),
            );
        }
    }
    params
}

/// What `variant` demands of credentials sbcd sent for `method` to `uri`: the problems found.
fn check_credentials(
    variant: Variant,
    what: &str,
    credentials: &str,
    uri: &str,
    nc: &str,
) -> Vec<String> {
    let p = digest_params(credentials);
    let mut problems = Vec::new();
    let mut expect = |name: &str, want: Option<&str>| {
        let got = p.get(name).map(String::as_str);
        if got != want {
            problems.push(format!(
                "{what}: {name} is {got:?}, expected {want:?} ({}): {credentials}",
                variant.describe()
            ));
        }
    };
    expect("username", Some(USER));
    expect("realm", Some(DOMAIN));
    expect("uri", Some(uri));
    match variant {
        Variant::Opaque => {
            expect("opaque", Some(OPAQUE));
            expect("qop", None);
            expect("nc", None);
            expect("cnonce", None);
        }
        Variant::Qop | Variant::Sha256 => {
            expect("opaque", None);
            expect("qop", Some("auth"));
            expect("nc", Some(nc));
        }
    }
    if variant == Variant::Sha256 {
        expect("algorithm", Some("SHA-256"));
    } else if let Some(alg) = p.get("algorithm") {
        if !alg.eq_ignore_ascii_case("MD5") {
            problems.push(format!(
                "{what}: algorithm {alg:?}, expected MD5: {credentials}"
            ));
        }
    }
    if variant != Variant::Opaque && p.get("cnonce").is_none_or(String::is_empty) {
        problems.push(format!("{what}: no cnonce with qop=auth: {credentials}"));
    }
    let hex_len = if variant == Variant::Sha256 { 64 } else { 32 };
    let response = p.get("response").map(String::as_str).unwrap_or("");
    if response.len() != hex_len || !response.chars().all(|c| c.is_ascii_hexdigit()) {
        problems.push(format!(
            "{what}: response {response:?} is not {hex_len} hex digits: {credentials}"
        ));
    }
    problems
}

/// Waits (10 s at most) until sbcd logs `registration up` and Kamailio holds a Contact for
/// the account; returns the Contact addresses.
fn wait_registered(c: &Carrier, sbcd: &mut Sbcd) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = Err(String::from("not asked yet"));
    loop {
        sbcd.assert_running();
        let up = sbcd.log_tail(100_000).contains("registration up");
        if up {
            last = registered_contacts(&c.ctl);
            if let Ok(contacts) = &last {
                return contacts.clone();
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "REGISTRATION NOT UP within 10 s: sbcd logged `registration up`: {up}; \
                 kamcmd ul.lookup location {USER}: {last:?}\n\
                 Kamailio's REGISTER log:\n{}",
                register_log(&c.kamailio)
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Kamailio's REGISTER-related lines, for failure messages.
fn register_log(kamailio: &Kamailio) -> String {
    kamailio
        .log_text()
        .lines()
        .filter(|l| l.contains("E2E REGISTER"))
        .map(|l| format!("  {}\n", l.trim()))
        .collect()
}

/// Kamailio's E2E lines, for failure messages.
fn e2e_log(kamailio: &Kamailio) -> String {
    kamailio
        .log_text()
        .lines()
        .filter(|l| l.contains("E2E "))
        .map(|l| format!("  {}\n", l.trim()))
        .collect()
}

/// Panics with the problems, Kamailio's E2E lines and sbcd's log tail unless `problems` is
/// empty.
fn verdict(title: &str, c: &Carrier, sbcd: &mut Sbcd, problems: &[String]) {
    sbcd.assert_running();
    let mut problems = problems.to_vec();
    problems.extend(sbcd.leaked_secrets());
    if problems.is_empty() {
        return;
    }
    panic!(
        "FAILED: {title}\n{}\n--- Kamailio's E2E log:\n{}",
        problems
            .iter()
            .map(|p| format!("  * {p}"))
            .collect::<Vec<_>>()
            .join("\n"),
        e2e_log(&c.kamailio)
    );
}

/// The REGISTER exchange of the first registration: a REGISTER without credentials that
/// Kamailio challenged, then the same Call-ID with CSeq + 1 and credentials for `variant`.
fn check_first_registration(c: &Carrier, variant: Variant) -> Vec<String> {
    let mut problems = Vec::new();
    let registers = events(&c.kamailio, "REGISTER");
    if registers.len() < 2 {
        problems.push(format!(
            "Kamailio saw {} REGISTER(s), expected a challenged one and one with credentials",
            registers.len()
        ));
        return problems;
    }
    let (first, second) = (&registers[0], &registers[1]);
    if let Some(creds) = bracketed(first, "authorization") {
        problems.push(format!(
            "the first REGISTER already carried credentials (no challenge seen yet): {creds}"
        ));
    }
    let cseq = |l: &str| field(l, "cseq").and_then(|v| v.parse::<u32>().ok());
    if let (Some(a), Some(b)) = (cseq(first), cseq(second)) {
        if b != a + 1 {
            problems.push(format!(
                "the REGISTER answering the 401 has CSeq {b}, expected {} (CSeq + 1)",
                a + 1
            ));
        }
    }
    if field(first, "callid") != field(second, "callid") {
        problems.push(format!(
            "the REGISTER answering the 401 changed Call-ID: {:?} then {:?}",
            field(first, "callid"),
            field(second, "callid")
        ));
    }
    if field(second, "expires") != Some(&EXPIRES.to_string()) {
        problems.push(format!(
            "REGISTER asked for Expires {:?}, expected {EXPIRES}",
            field(second, "expires")
        ));
    }
    match bracketed(second, "authorization") {
        None => problems.push(format!(
            "the REGISTER after the 401 carried no Authorization: {second}"
        )),
        Some(creds) => problems.extend(check_credentials(
            variant,
            "REGISTER Authorization",
            creds,
            &format!("sip:{DOMAIN}"),
            "00000001",
        )),
    }
    if events(&c.kamailio, "REGISTER-SAVED").is_empty() {
        problems.push("Kamailio never save()d the registration".to_owned());
    }
    problems
}

/// Test 1: sbcd registers on behalf: Kamailio holds `sip:r<16 hex>@<sbcd>` for "sbc" with about
/// the asked expiry, after a 401 answered by the book; sbcd logs `registration up`.
#[test]
fn kamailio_auth_registers_on_behalf() {
    let _serial = serial();
    let c = carrier("kamailio_auth_register", Variant::Qop, PASSWORD);
    let mut sbcd = Sbcd::start(&c.topo);
    let contacts = wait_registered(&c, &mut sbcd);
    let mut problems = Vec::new();
    let sbcd_addr = host_port(c.topo.sbcd);
    let good = |a: &str| {
        a.strip_prefix("sip:r")
            .and_then(|rest| rest.split_once('@'))
            .is_some_and(|(hex, host)| {
                hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()) && host == sbcd_addr
            })
    };
    if contacts.len() != 1 || !good(&contacts[0]) {
        problems.push(format!(
            "Kamailio holds {contacts:?}; expected one Contact sip:r<16 hex>@{sbcd_addr}"
        ));
    }
    let (_, dump) = kamcmd(&c.ctl, &["ul.lookup", "location", USER]);
    let expires = dump
        .lines()
        .find_map(|l| l.trim().strip_prefix("Expires:"))
        .and_then(|v| v.trim().parse::<u32>().ok());
    if !expires.is_some_and(|e| (EXPIRES - 30..=EXPIRES).contains(&e)) {
        problems.push(format!(
            "the binding expires in {expires:?} s, expected about {EXPIRES}:\n{dump}"
        ));
    }
    problems.extend(check_first_registration(&c, Variant::Qop));
    let log = sbcd.log_tail(100_000);
    if !log
        .lines()
        .any(|l| l.contains("registration up") && l.contains("carrier"))
    {
        problems.push("sbcd never logged `registration up` for trunk carrier".to_owned());
    }
    if log.contains("registration failing") {
        problems.push("sbcd logged `registration failing` with the right password".to_owned());
    }
    verdict(
        "sbcd registers trunk carrier with Kamailio (401, qop=auth)",
        &c,
        &mut sbcd,
        &problems,
    );
}

/// Test 2: The carrier calls the account: the carrier's SIPp sends INVITE for the DID to Kamailio,
/// which maps it to the account, lookup()s the Contact sbcd registered and relays there (the
/// DID stays in To); sbcd takes it as the carrier trunk's call and routes it to the PBX.
#[test]
fn kamailio_auth_carrier_calls_registered_contact() {
    let _serial = serial();
    let c = carrier("kamailio_auth_inbound", Variant::Qop, PASSWORD);
    let mut sbcd = Sbcd::start(&c.topo);
    let contacts = wait_registered(&c, &mut sbcd);
    let mut caller = c.topo.carrier_uac("uac_basic.xml");
    caller.remote = Some(c.topo.kamailio);
    let (carrier, pbx) = run_call(&c.topo.dir, caller, vec![c.topo.pbx_uas("uas_basic.xml")]);
    let pbx = &pbx[0];
    let mut problems = leg_checks(
        &carrier,
        pbx,
        &Expect {
            hops: 2,
            callee_vias: 1,
            hidden_from_caller: Vec::new(),
        },
    );
    let lookups = events(&c.kamailio, "LOOKUP");
    match lookups.first() {
        None => problems.push(format!(
            "Kamailio never lookup()ed the account for the carrier's INVITE:\n{}",
            e2e_log(&c.kamailio)
        )),
        Some(line) => {
            let ruri = field(line, "ruri").unwrap_or("");
            if !contacts.iter().any(|a| a == ruri) {
                problems.push(format!(
                    "Kamailio relayed the carrier's INVITE to {ruri}, not to the registered {contacts:?}"
                ));
            }
            if !field(line, "to").is_some_and(|to| to.contains(CALLED)) {
                problems.push(format!("the DID {CALLED} is not in To: {line}"));
            }
        }
    }
    if !events(&c.kamailio, "LOOKUP-FAILED").is_empty() {
        problems.push("Kamailio found no registration for a call".to_owned());
    }
    // RFC 3261 12.1.1: the UAS copies the INVITE's Record-Route into the responses that make
    // the dialog, or the caller's ACK and BYE cannot follow the proxy's route set.
    let kamailio_addr = host_port(c.topo.kamailio);
    for t in carrier.received() {
        let dialog_forming = t.msg.cseq().is_some_and(|(_, m)| m == "INVITE")
            && t.msg.status().is_some_and(|s| (101..300).contains(&s))
            && t.msg.tag_in_to().is_some();
        if dialog_forming
            && !t
                .msg
                .headers("record-route")
                .iter()
                .any(|rr| rr.contains(&kamailio_addr))
        {
            problems.push(format!(
                "sbcd's {} to the INVITE Kamailio relayed carries no Record-Route of Kamailio \
                 ({kamailio_addr}), which Kamailio put in the INVITE: RFC 3261 12.1.1 has the UAS \
                 copy it, else the carrier's ACK/BYE cannot follow the route set \
                 (Record-Route received: {:?})",
                t.msg.start,
                t.msg.headers("record-route")
            ));
        }
    }
    finish(
        &mut sbcd,
        "carrier -> Kamailio (lookup of the registered Contact) -> sbcd -> PBX",
        &[&carrier, pbx],
        &problems,
    );
}

/// Test 3: The PBX calls out: sbcd's INVITE gets Kamailio's 407 and is sent again with
/// Proxy-Authorization for `variant` (same Call-ID, CSeq + 1); the carrier answers; the PBX
/// never sees the 407. The REGISTER of the same run carries the same digest quirks.
fn outbound_call(test: &str, variant: Variant) {
    let c = carrier(test, variant, PASSWORD);
    let mut sbcd = Sbcd::start(&c.topo);
    wait_registered(&c, &mut sbcd);
    let (pbx, carrier) = run_call(
        &c.topo.dir,
        c.topo.pbx_uac("uac_basic.xml"),
        vec![c.topo.carrier_uas("uas_basic.xml")],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &kamailio_expect(&c.topo));
    problems.extend(check_first_registration(&c, variant));
    for code in ["401", "407"] {
        if count_received(&pbx, code) > 0 {
            problems.push(format!("the PBX received Kamailio's {code}"));
        }
    }
    // The INVITEs Kamailio got from sbcd, retransmissions folded.
    let mut invites: Vec<String> = Vec::new();
    for line in events(&c.kamailio, "INVITE") {
        let key = (field(&line, "callid"), field(&line, "cseq"));
        if !invites
            .iter()
            .any(|l| (field(l, "callid"), field(l, "cseq")) == key)
        {
            invites.push(line);
        }
    }
    if invites.len() == 2 {
        let (first, second) = (&invites[0], &invites[1]);
        if bracketed(first, "proxy-authorization").is_some() {
            problems.push(format!(
                "sbcd's first INVITE carried credentials before any challenge: {first}"
            ));
        }
        if field(first, "callid") != field(second, "callid") {
            problems.push(format!(
                "the INVITE answering the 407 has another Call-ID: {:?} then {:?}",
                field(first, "callid"),
                field(second, "callid")
            ));
        }
        let cseq = |l: &str| field(l, "cseq").and_then(|v| v.parse::<u32>().ok());
        if let (Some(a), Some(b)) = (cseq(first), cseq(second)) {
            if b != a + 1 {
                problems.push(format!(
                    "the INVITE answering the 407 has CSeq {b}, expected {}",
                    a + 1
                ));
            }
        }
        match bracketed(second, "proxy-authorization") {
            None => problems.push(format!(
                "the INVITE after the 407 carried no Proxy-Authorization: {second}"
            )),
            Some(creds) => problems.extend(check_credentials(
                variant,
                "INVITE Proxy-Authorization",
                creds,
                &format!("sip:{CALLED}@{DOMAIN}"),
                "00000001",
            )),
        }
    } else {
        problems.push(format!(
            "Kamailio got {} INVITE(s) from sbcd, expected 2 (challenged, then with credentials):\n{}",
            invites.len(),
            invites.join("\n")
        ));
    }
    if events(&c.kamailio, "INVITE-AUTH-OK").len() != 1 {
        problems.push(format!(
            "Kamailio authenticated {} INVITE(s), expected 1",
            events(&c.kamailio, "INVITE-AUTH-OK").len()
        ));
    }
    if variant == Variant::Opaque && events(&c.kamailio, "OPAQUE-OK").len() < 2 {
        problems.push("Kamailio did not see the opaque echoed in REGISTER and INVITE".to_owned());
    }
    if !problems.is_empty() {
        problems.push(format!("Kamailio's E2E log:\n{}", e2e_log(&c.kamailio)));
    }
    finish(
        &mut sbcd,
        &format!(
            "PBX -> sbcd -> Kamailio (407, {}) -> carrier",
            variant.describe()
        ),
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn kamailio_auth_outbound_opaque_no_qop() {
    let _serial = serial();
    outbound_call("kamailio_auth_out_opaque", Variant::Opaque);
}

#[test]
fn kamailio_auth_outbound_qop_auth() {
    let _serial = serial();
    outbound_call("kamailio_auth_out_qop", Variant::Qop);
}

#[test]
fn kamailio_auth_outbound_sha256() {
    let _serial = serial();
    outbound_call("kamailio_auth_out_sha256", Variant::Sha256);
}

/// Test 4: A wrong password: every attempt is REGISTER -> 401 -> REGISTER with credentials -> 401,
/// and attempts back off (2 s, 4 s, 8 s ... with up to 20% jitter): 4 attempts, 8 REGISTERs in
/// the first 20 s. sbcd logs `registration failing` with status 401 and the reason.
#[test]
fn kamailio_auth_wrong_password_backs_off() {
    const WINDOW: Duration = Duration::from_secs(20);
    let _serial = serial();
    let c = carrier("kamailio_auth_wrong_pw", Variant::Qop, WRONG_PASSWORD);
    let started = Instant::now();
    let mut sbcd = Sbcd::start(&c.topo);
    let mut seen = Vec::new();
    // Note when each REGISTER arrives (polling the log), to show the spacing on failure.
    while started.elapsed() < WINDOW {
        let n = events(&c.kamailio, "REGISTER").len();
        while seen.len() < n {
            seen.push(started.elapsed());
        }
        sbcd.assert_running();
        thread::sleep(Duration::from_millis(100));
    }
    let registers = events(&c.kamailio, "REGISTER");
    let timeline = seen
        .iter()
        .map(|t| format!("{:.1}", t.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut problems = Vec::new();
    // 0, ~2, ~6, ~14 s: 4 attempts of 2 REGISTERs; the fifth is due at 24 s at the earliest.
    if !(6..=10).contains(&registers.len()) {
        problems.push(format!(
            "Kamailio received {} REGISTERs in {} s (at s: {timeline}); with backoff 2, 4, 8 s expected about 8 (6..=10)",
            registers.len(),
            WINDOW.as_secs()
        ));
    }
    for (i, line) in registers.iter().enumerate() {
        let has = bracketed(line, "authorization").is_some();
        if has != (i % 2 == 1) {
            problems.push(format!(
                "REGISTER #{} {} credentials: each attempt should start without (afresh) and answer the 401 once: {line}",
                i + 1,
                if has { "carried" } else { "lacked" }
            ));
        }
    }
    let wrong = events(&c.kamailio, "REGISTER-CHALLENGE")
        .iter()
        .filter(|l| field(l, "rc") == Some("-2"))
        .count();
    if wrong * 2 + 1 < registers.len() {
        problems.push(format!(
            "Kamailio rejected {wrong} REGISTER(s) for the password, expected one per attempt"
        ));
    }
    if !events(&c.kamailio, "REGISTER-SAVED").is_empty() {
        problems.push("Kamailio saved a registration with the wrong password".to_owned());
    }
    if let Ok(contacts) = registered_contacts(&c.ctl) {
        problems.push(format!("Kamailio holds {contacts:?} for a wrong password"));
    }
    let log = sbcd.log_tail(100_000);
    let failing: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("registration failing"))
        .collect();
    if failing.is_empty() {
        problems.push("sbcd never logged `registration failing`".to_owned());
    }
    for line in &failing {
        if !line.contains("status=401") || !line.contains("wrong password") {
            problems.push(format!(
                "sbcd's failure report lacks status=401 or the reason (wrong password): {line}"
            ));
        }
    }
    if failing.len() < 3 {
        problems.push(format!(
            "sbcd logged `registration failing` {} time(s) in {} s, expected one per attempt (about 4)",
            failing.len(),
            WINDOW.as_secs()
        ));
    }
    // The spacing of the attempts, by sbcd's own clock: retry n comes BACKOFF_MIN * 2^(n-1)
    // after failure n, minus up to 20% jitter (plus a round trip and scheduling).
    let failed_at: Vec<f64> = failing.iter().filter_map(|l| log_seconds(l)).collect();
    let attempt_at: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("phase=\"registering\""))
        .filter_map(log_seconds)
        .collect();
    for (n, failed) in failed_at.iter().enumerate() {
        // (Across midnight the clock restarts at 0.)
        let after = |t: f64| {
            if t < *failed - 43_200.0 {
                t + 86_400.0
            } else {
                t
            }
        };
        let Some(next) = attempt_at.iter().map(|t| after(*t)).find(|t| t > failed) else {
            continue;
        };
        let gap = next - failed;
        let nominal = 2f64 * f64::from(1u32 << n.min(8));
        if !(nominal * 0.8 - 0.05..=nominal + 0.5).contains(&gap) {
            problems.push(format!(
                "attempt {} came {gap:.2} s after failure {}; backoff expects {:.1}..{nominal:.1} s",
                n + 2,
                n + 1,
                nominal * 0.8
            ));
        }
    }
    if log.contains("registration up") {
        problems.push("sbcd logged `registration up` with a wrong password".to_owned());
    }
    if !problems.is_empty() {
        problems.push(format!(
            "REGISTERs arrived at (s after start): {timeline}\nsbcd's failure lines:\n{}",
            failing.join("\n")
        ));
    }
    verdict(
        "wrong password: sbcd backs off and reports 401",
        &c,
        &mut sbcd,
        &problems,
    );
}

/// Seconds since midnight of an sbcd log line (`2026-11-23T18:34:22.566884Z  WARN ...`).
fn log_seconds(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let time = stamp.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Test 5: SIGTERM removes the binding: sbcd sends REGISTER with Expires: 0 before it exits, and
/// Kamailio holds no Contact for the account any more.
#[test]
fn kamailio_auth_unregisters_on_sigterm() {
    let _serial = serial();
    let c = carrier("kamailio_auth_unregister", Variant::Qop, PASSWORD);
    let mut sbcd = Sbcd::start(&c.topo);
    wait_registered(&c, &mut sbcd);
    let before = events(&c.kamailio, "REGISTER").len();
    let stopped = Instant::now();
    let status = sbcd.terminate(Duration::from_secs(15));
    let took = stopped.elapsed();
    let mut problems = Vec::new();
    match status {
        None => problems.push("sbcd still ran 15 s after SIGTERM".to_owned()),
        Some(s) if !s.success() => problems.push(format!("sbcd exited with {s} after SIGTERM")),
        Some(_) => {}
    }
    let after: Vec<String> = events(&c.kamailio, "REGISTER")
        .into_iter()
        .skip(before)
        .collect();
    if !after.iter().any(|l| field(l, "expires") == Some("0")) {
        problems.push(format!(
            "no REGISTER with Expires: 0 reached Kamailio after SIGTERM; REGISTERs after it: {after:?}"
        ));
    }
    match registered_contacts(&c.ctl) {
        Ok(contacts) => problems.push(format!(
            "Kamailio still holds {contacts:?} after sbcd's SIGTERM"
        )),
        Err(why) if !why.to_ascii_lowercase().contains("not found") => problems.push(format!(
            "kamcmd ul.lookup after SIGTERM answered neither a contact nor `not found`: {why}"
        )),
        Err(_) => {}
    }
    if !problems.is_empty() {
        problems.push(format!(
            "sbcd took {:.1} s to exit; its log (tail):\n{}",
            took.as_secs_f64(),
            sbcd.log_tail(30)
        ));
        panic!(
            "FAILED: un-REGISTER on SIGTERM\n{}\n--- Kamailio's E2E log:\n{}",
            problems
                .iter()
                .map(|p| format!("  * {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
            e2e_log(&c.kamailio)
        );
    }
}

/// Test 6 (issue 7): a crash under load. sbcd is killed with SIGKILL while the PBX places calls
/// through Kamailio; it is started again as systemd would (`Restart=on-failure`,
/// `RestartSec=2s`: this machine has no systemd as PID 1, so the test does it), says READY=1
/// on a NOTIFY_SOCKET the test binds, carries a new call at once, and has its registration on
/// behalf back well within one refresh cycle.
#[test]
fn kamailio_auth_kill9_under_load_recovers() {
    use std::os::unix::net::UnixDatagram;
    const LOAD: u32 = 200;
    let _serial = serial();
    let c = carrier("kamailio_auth_kill9", Variant::Qop, PASSWORD);
    let mut sbcd = Sbcd::start(&c.topo);
    wait_registered(&c, &mut sbcd);
    let saved_before = events(&c.kamailio, "REGISTER-SAVED").len();

    let carrier_load = c
        .topo
        .carrier_uas("uas_basic.xml")
        .calls(LOAD)
        .spawn(&c.topo.dir);
    let pbx_load = c
        .topo
        .pbx_uac("uac_long.xml")
        .calls(LOAD)
        .args(&["-r", "20", "-d", "2000"])
        .spawn(&c.topo.dir);
    thread::sleep(Duration::from_secs(3));
    let mut problems = Vec::new();
    match sbcd.metrics() {
        Ok(m) if util::metric(&m, "sbc_calls_active", &[]).unwrap_or(0.0) < 1.0 => {
            problems.push("no call was up when sbcd was killed: the load did not start".to_owned());
        }
        Ok(_) => {}
        Err(e) => problems.push(e),
    }
    sbcd.kill();
    // The load's SIPps lose their calls; stop them before the carrier's port is reused.
    let _ = pbx_load.wait_for(Duration::from_secs(1));
    let _ = carrier_load.wait_for(Duration::from_secs(1));
    thread::sleep(Duration::from_secs(2)); // RestartSec=2s

    let sock_path = c.topo.dir.file("notify.sock");
    let _ = std::fs::remove_file(&sock_path);
    let notify = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let restarted_at = Instant::now();
    let mut sbcd = Sbcd::start_with(
        &c.topo,
        &[("NOTIFY_SOCKET", sock_path.as_os_str())],
        "sbcd-restarted.log",
    );
    let mut buf = [0u8; 4096];
    let ready = notify
        .recv(&mut buf)
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
    match &ready {
        Ok(text) if text.lines().any(|l| l == "READY=1") => {}
        other => problems.push(format!("no READY=1 from the restarted sbcd: {other:?}")),
    }
    let ready_after = restarted_at.elapsed();

    // A new call right after READY.
    let (pbx, carrier) = run_call(
        &c.topo.dir,
        c.topo.pbx_uac("uac_basic.xml"),
        vec![c.topo.carrier_uas("uas_basic.xml")],
    );
    let carrier = &carrier[0];
    problems.extend(leg_checks(&pbx, carrier, &kamailio_expect(&c.topo)));

    // The registration is back: a new REGISTER saved by Kamailio, well within one refresh
    // cycle (sbcd refreshes at 55% of the granted 300 s).
    let contacts = wait_registered(&c, &mut sbcd);
    let registered_after = restarted_at.elapsed();
    let saved_after = events(&c.kamailio, "REGISTER-SAVED").len();
    if saved_after <= saved_before {
        problems.push(format!(
            "Kamailio saved no REGISTER after the restart ({saved_before} before, {saved_after} after); contacts {contacts:?}"
        ));
    }
    // The Contact is the same as before the crash (derived from the trunk's password), so the
    // new REGISTER replaced the dead process's binding instead of adding a second one.
    if contacts.len() != 1 {
        problems.push(format!(
            "Kamailio holds {contacts:?} after the restart: one binding (the same Contact) expected"
        ));
    }
    let cycle = Duration::from_secs(u64::from(EXPIRES) * 55 / 100);
    if registered_after >= cycle {
        problems.push(format!(
            "the registration came back {registered_after:?} after the restart: more than one refresh cycle ({cycle:?})"
        ));
    }
    eprintln!(
        "kill -9: READY {} ms after the restart, registration up {} ms after it, contacts {contacts:?}",
        ready_after.as_millis(),
        registered_after.as_millis()
    );
    verdict(
        "kill -9 under load: restarted, READY, a call at once, registration back within a refresh cycle",
        &c,
        &mut sbcd,
        &problems,
    );
    let _ = finish;
}

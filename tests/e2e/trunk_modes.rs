//! Trunk modes (DESIGN.md `inbound.*` / `outbound.*`): SIPp as a carrier calling INTO sbcd,
//! identified by IP allowlist, hash domain, auth header, tech prefix or digest, with SIPp
//! playing the PBX behind; and the outbound decorations (prefix, domain, header) a carrier
//! receives from a PBX call.
//!
//! Each test writes its own `[[trunk]]` / `[[route]]` tables ([`Topology::trunks`]). Requests
//! that no trunk accepts must get 403 and never reach the PBX: the refused callers run first,
//! one after the other, while the PBX callee already waits for the accepted calls, so an
//! INVITE leaked through would show up on the PBX (and as a wrong answer to the caller).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::checks::{count_received, sip_rules, Expect};
use crate::sbcd::{Options, Sbcd, Topology};
use crate::sip::{split_commas, SipMsg};
use crate::sipp::{Sipp, SippRun, SippSpec};
use crate::util::{free_port, host_port, serial, TestDir, CALLED};
use crate::{direct_addrs, finish, leg_checks, run_call};

/// A loopback address that no trunk allows.
const STRANGER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

const REALM: &str = "sbc.test";

/// The PBX trunk: allowlisted by the PBX SIPp's address, calls delivered to it.
fn pbx_trunk(topo: &Topology) -> String {
    let net = match topo.pbx.addr.ip() {
        IpAddr::V4(ip) => format!("{ip}/32"),
        IpAddr::V6(ip) => format!("{ip}/128"),
    };
    format!(
        "\n[[trunk]]\nname = \"pbx\"\ninbound.allow = [\"{net}\"]\noutbound.uri = \"{}\"\n",
        Topology::sip_uri(topo.pbx.addr, topo.pbx.transport)
    )
}

/// The carrier trunk with the given `inbound.*` / `outbound.*` lines, delivering to the
/// carrier SIPp.
fn carrier_trunk(topo: &Topology, lines: &str) -> String {
    format!(
        "\n[[trunk]]\nname = \"carrier\"\n{lines}\noutbound.uri = \"{}\"\n",
        Topology::sip_uri(topo.carrier.addr, topo.carrier.transport)
    )
}

const CARRIER_TO_PBX: &str = "\n[[route]]\nfrom = \"carrier\"\nto = [\"pbx\"]\n";
const PBX_TO_CARRIER: &str =
    "\n[[route]]\nfrom = \"pbx\"\nmatch = \"^\\\\+?[0-9]+$\"\nto = [\"carrier\"]\n";

/// A topology whose trunks are the PBX and a carrier with `carrier_lines`, routed both ways.
fn topology(test: &str, carrier_lines: &str) -> Topology {
    let mut topo = Topology::new(test, Options::default());
    topo.trunks = Some(format!(
        "{}{}{CARRIER_TO_PBX}{PBX_TO_CARRIER}",
        pbx_trunk(&topo),
        carrier_trunk(&topo, carrier_lines)
    ));
    topo
}

/// A carrier-side caller named `name` (its log files), sending from `local` to sbcd, with the
/// leak checks against the PBX.
fn caller_at(topo: &Topology, name: &str, scenario: &str, local: SocketAddr) -> SippSpec {
    let mut spec = Sipp::uac(name, scenario, local, topo.sbcd)
        .transport(topo.carrier.transport)
        .hide(topo.pbx.addr, topo.pbx.mark);
    spec.mark = topo.carrier.mark.to_owned();
    spec
}

/// A caller from the carrier's address.
fn carrier_caller(topo: &Topology, name: &str, scenario: &str) -> SippSpec {
    caller_at(topo, name, scenario, topo.carrier.addr)
}

/// `-set NAME VALUE` for a scenario's global variable.
fn set(spec: SippSpec, name: &str, value: &str) -> SippSpec {
    spec.args(&["-set", name, value])
}

/// uac_trunk.xml / uac_403.xml with the Request-URI host `host`.
fn ruri_host(spec: SippSpec, host: &str) -> SippSpec {
    set(spec, "ruri_host", host)
}

/// The host:port of sbcd's socket: the Request-URI host a plain carrier writes.
fn sbcd_host(topo: &Topology) -> String {
    host_port(topo.sbcd)
}

/// The PBX answering `calls` calls (uas_basic.xml), for the called number `number`.
fn pbx_callee(topo: &Topology, calls: u32, number: &str) -> SippSpec {
    topo.pbx_uas("uas_basic.xml")
        .calls(calls)
        .timeout(Duration::from_secs(30))
        .args(&["-s", number])
}

struct Runs {
    refused: Vec<SippRun>,
    calls: Vec<SippRun>,
    callee: SippRun,
}

impl Runs {
    fn all(&self) -> Vec<&SippRun> {
        self.refused
            .iter()
            .chain(&self.calls)
            .chain(std::iter::once(&self.callee))
            .collect()
    }
}

/// Starts `callee`, runs each of `refused` then each of `calls` to its end, one at a time,
/// then gives the callee 5 s more.
fn run_calls(
    topo: &Topology,
    callee: SippSpec,
    refused: Vec<SippSpec>,
    calls: Vec<SippSpec>,
) -> Runs {
    let callee = callee.spawn(&topo.dir);
    let refused = refused
        .into_iter()
        .map(|c| c.spawn(&topo.dir).wait())
        .collect();
    let calls = calls
        .into_iter()
        .map(|c| c.spawn(&topo.dir).wait())
        .collect();
    let callee = callee.wait_for(Duration::from_secs(5));
    Runs {
        refused,
        calls,
        callee,
    }
}

/// A refused caller received `code` for its INVITE and nothing that would set up a call.
fn refused_checks(run: &SippRun, code: u16) -> Vec<String> {
    let mut problems = sip_rules(run);
    let mut statuses: Vec<u16> = run
        .received()
        .filter_map(|t| t.msg.status())
        .filter(|s| *s > 100)
        .collect();
    statuses.dedup();
    if !statuses.contains(&code) {
        problems.push(format!(
            "{} should have been refused with {code}; it received {statuses:?}",
            run.name
        ));
    }
    let mut seen = Vec::new();
    for t in run.received() {
        let Some(status) = t.msg.status() else {
            continue;
        };
        if (101..300).contains(&status) && !seen.contains(&status) {
            seen.push(status);
            problems.push(format!(
                "{} should have been refused, yet received {}",
                run.name,
                t.msg.summary()
            ));
        }
    }
    problems
}

/// The initial INVITEs `run` received, one per Call-ID (retransmissions left out).
fn initial_invites(run: &SippRun) -> Vec<&SipMsg> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for t in run.received() {
        let m = &t.msg;
        if m.method() == Some("INVITE") && m.tag_in_to().is_none() {
            let id = m.call_id().unwrap_or("").to_owned();
            if !seen.contains(&id) {
                seen.push(id);
                out.push(m);
            }
        }
    }
    out
}

/// The PBX got exactly `want` calls: the refused requests never reached it.
fn pbx_invite_count(pbx: &SippRun, want: usize) -> Vec<String> {
    let invites = initial_invites(pbx);
    if invites.len() == want {
        return Vec::new();
    }
    vec![format!(
        "{} received {} INVITE(s), expected {want} (only the accepted calls): {:?}",
        pbx.name,
        invites.len(),
        invites.iter().map(|m| m.summary()).collect::<Vec<_>>()
    )]
}

/// Every accepted call against the callee: generic SIP rules and the B2BUA contract.
/// `number`: the Request-URI user the callee must see, if not the usual [`CALLED`].
fn call_checks(calls: &[SippRun], callee: &SippRun, number: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let mut p = leg_checks(call, callee, &Expect::default());
        if i > 0 {
            // The callee's own rules were checked with the first call.
            let own = sip_rules(callee);
            p.retain(|x| !own.contains(x));
        }
        if number != CALLED {
            // b2bua() expects CALLED; the number check for this flow is below.
            p.retain(|x| !x.contains("expected the called number"));
        }
        problems.extend(p);
    }
    for m in initial_invites(callee) {
        if m.ruri_user() != Some(number) {
            problems.push(format!(
                "{} received INVITE for {:?}, expected the Request-URI user {number}",
                callee.name,
                m.request_uri()
            ));
        }
    }
    problems
}

/// Requests `run` received that carry a header `name`.
fn requests_with_header(run: &SippRun, name: &str) -> Vec<String> {
    run.received()
        .filter(|t| t.msg.is_request() && !t.msg.headers(name).is_empty())
        .map(|t| format!("{} ({name}: {:?})", t.msg.summary(), t.msg.headers(name)))
        .collect()
}

/// A parameter of a digest challenge or credentials (`Digest a="x", b=y`), unquoted.
fn digest_param(value: &str, name: &str) -> Option<String> {
    let rest = value.trim_start();
    let rest = rest
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("digest"))
        .map_or(rest, |_| &rest[6..]);
    split_commas(rest).into_iter().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

// === IP allowlist ===

#[test]
fn ip_allowlist() {
    let _serial = serial();
    let topo = topology(
        "trunk_modes_ip_allowlist",
        "inbound.allow = [\"127.0.0.2/32\"]",
    );
    let mut sbcd = Sbcd::start(&topo);
    let stranger = SocketAddr::new(IpAddr::V4(STRANGER_IP), free_port(IpAddr::V4(STRANGER_IP)));
    let runs = run_calls(
        &topo,
        pbx_callee(&topo, 1, CALLED),
        vec![ruri_host(
            caller_at(&topo, "stranger", "uac_403.xml", stranger),
            &sbcd_host(&topo),
        )],
        vec![carrier_caller(&topo, "carrier", "uac_basic.xml")],
    );
    let mut problems = refused_checks(&runs.refused[0], 403);
    problems.extend(call_checks(&runs.calls, &runs.callee, CALLED));
    problems.extend(pbx_invite_count(&runs.callee, 1));
    finish(
        &mut sbcd,
        "allowlist 127.0.0.2/32: a call from 127.0.0.5 gets 403, one from 127.0.0.2 reaches the PBX",
        &runs.all(),
        &problems,
    );
}

// === hash domain ===

#[test]
fn hash_domain() {
    let _serial = serial();
    let domain = "k3x9q.sbc.test";
    let topo = topology(
        "trunk_modes_hash_domain",
        &format!("inbound.domain = \"{domain}\""),
    );
    let mut sbcd = Sbcd::start(&topo);
    let runs = run_calls(
        &topo,
        pbx_callee(&topo, 1, CALLED),
        vec![
            ruri_host(
                carrier_caller(&topo, "carrier-wrong-domain", "uac_403.xml"),
                "x7y2z.sbc.test",
            ),
            ruri_host(
                carrier_caller(&topo, "carrier-address-as-host", "uac_403.xml"),
                &sbcd_host(&topo),
            ),
        ],
        vec![ruri_host(
            carrier_caller(&topo, "carrier", "uac_trunk.xml"),
            domain,
        )],
    );
    let mut problems = Vec::new();
    for run in &runs.refused {
        problems.extend(refused_checks(run, 403));
    }
    problems.extend(call_checks(&runs.calls, &runs.callee, CALLED));
    problems.extend(pbx_invite_count(&runs.callee, 1));
    // The hash domain names the trunk to sbcd; the PBX sees its own trunk's address.
    for m in initial_invites(&runs.callee) {
        if m.request_uri().is_some_and(|u| u.contains(domain)) {
            problems.push(format!(
                "the carrier's hash domain reached the PBX: {}",
                m.summary()
            ));
        }
    }
    finish(
        &mut sbcd,
        "hash domain k3x9q.sbc.test: other Request-URI hosts get 403, the right one reaches the PBX",
        &runs.all(),
        &problems,
    );
}

// === auth header ===

#[test]
fn auth_header() {
    let _serial = serial();
    let topo = topology(
        "trunk_modes_auth_header",
        "inbound.header = { name = \"X-Trunk-Key\", value = \"s3cret\" }",
    );
    let mut sbcd = Sbcd::start(&topo);
    let host = sbcd_host(&topo);
    let runs = run_calls(
        &topo,
        pbx_callee(&topo, 1, CALLED),
        vec![
            set(
                ruri_host(
                    carrier_caller(&topo, "carrier-wrong-key", "uac_403.xml"),
                    &host,
                ),
                "trunk_hdr",
                "X-Trunk-Key: s3cre",
            ),
            // No header of that name at all (another one, with the right value).
            set(
                ruri_host(
                    carrier_caller(&topo, "carrier-no-key", "uac_403.xml"),
                    &host,
                ),
                "trunk_hdr",
                "X-Other-Key: s3cret",
            ),
        ],
        vec![set(
            ruri_host(carrier_caller(&topo, "carrier", "uac_trunk.xml"), &host),
            "trunk_hdr",
            "X-Trunk-Key: s3cret",
        )],
    );
    let mut problems = Vec::new();
    for run in &runs.refused {
        problems.extend(refused_checks(run, 403));
    }
    problems.extend(call_checks(&runs.calls, &runs.callee, CALLED));
    problems.extend(pbx_invite_count(&runs.callee, 1));
    if !runs.calls[0]
        .sent()
        .any(|t| t.msg.header("x-trunk-key") == Some("s3cret"))
    {
        problems.push("HARNESS: the carrier sent no X-Trunk-Key: s3cret".to_owned());
    }
    for leak in requests_with_header(&runs.callee, "x-trunk-key") {
        problems.push(format!(
            "the carrier's trunk key reached the PBX (sbcd must remove inbound.header): {leak}"
        ));
    }
    finish(
        &mut sbcd,
        "auth header X-Trunk-Key: wrong or missing gets 403, right reaches the PBX without it",
        &runs.all(),
        &problems,
    );
}

// === tech prefix ===

const NUMBER: &str = "12127773456";

#[test]
fn tech_prefix_inbound_stripped() {
    let _serial = serial();
    let topo = topology(
        "trunk_modes_tech_prefix_inbound",
        "inbound.prefix = \"91919#\"",
    );
    let mut sbcd = Sbcd::start(&topo);
    let host = sbcd_host(&topo);
    let dialled = |name: &str, scenario: &str, user: &str| {
        ruri_host(carrier_caller(&topo, name, scenario), &host).args(&["-s", user])
    };
    let runs = run_calls(
        &topo,
        pbx_callee(&topo, 2, NUMBER),
        vec![
            dialled("carrier-no-prefix", "uac_403.xml", NUMBER),
            dialled(
                "carrier-other-prefix",
                "uac_403.xml",
                &format!("91918%23{NUMBER}"),
            ),
        ],
        vec![
            // '#' escaped as RFC 3261 §25.1 wants, then raw as many carriers send it.
            dialled(
                "carrier-escaped",
                "uac_trunk.xml",
                &format!("91919%23{NUMBER}"),
            ),
            dialled("carrier-raw", "uac_trunk.xml", &format!("91919#{NUMBER}")),
        ],
    );
    let mut problems = Vec::new();
    for run in &runs.refused {
        problems.extend(refused_checks(run, 403));
    }
    problems.extend(call_checks(&runs.calls, &runs.callee, NUMBER));
    problems.extend(pbx_invite_count(&runs.callee, 2));
    for m in initial_invites(&runs.callee) {
        let to = m.header("to").unwrap_or("");
        if to.contains("91919") {
            problems.push(format!(
                "the PBX's INVITE still has the tech prefix in To: {to}"
            ));
        }
    }
    finish(
        &mut sbcd,
        "tech prefix 91919#: stripped before the PBX (escaped and raw '#'), missing gets 403",
        &runs.all(),
        &problems,
    );
}

#[test]
fn tech_prefix_domain_header_outbound() {
    let _serial = serial();
    let topo = topology(
        "trunk_modes_outbound_decorations",
        "inbound.allow = [\"127.0.0.2/32\"]\n\
         outbound.prefix = \"555#\"\n\
         outbound.domain = \"carrier.test\"\n\
         outbound.header = { name = \"X-Auth-Key\", value = \"k\" }",
    );
    let mut sbcd = Sbcd::start(&topo);
    let carrier_user = format!("555%23{NUMBER}");
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml").args(&["-s", NUMBER]),
        vec![topo
            .carrier_uas("uas_basic.xml")
            .args(&["-s", &carrier_user])],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    problems.retain(|x| !x.contains("expected the called number"));
    let want_uri = format!("sip:{carrier_user}@carrier.test");
    let invites = initial_invites(carrier);
    if invites.is_empty() {
        problems.push("the carrier received no INVITE".to_owned());
    }
    for m in invites {
        if m.request_uri() != Some(want_uri.as_str()) {
            problems.push(format!(
                "the carrier received Request-URI {:?}, expected {want_uri}",
                m.request_uri()
            ));
        }
        let to = m.header("to").unwrap_or("");
        let to_uri = to
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map_or(to, |(uri, _)| uri);
        if to_uri != want_uri {
            problems.push(format!(
                "the carrier received To {to:?}, expected the URI {want_uri}"
            ));
        }
        if m.headers("x-auth-key") != ["k"] {
            problems.push(format!(
                "the carrier's INVITE should carry exactly X-Auth-Key: k, has {:?}",
                m.headers("x-auth-key")
            ));
        }
    }
    finish(
        &mut sbcd,
        "outbound prefix 555#, domain carrier.test and X-Auth-Key on the carrier's INVITE",
        &[&pbx, carrier],
        &problems,
    );
}

// === digest ===

fn digest_lines(challenge: Option<u16>, algorithms: Option<&str>) -> String {
    let mut d = format!(
        "inbound.digest = {{ realm = \"{REALM}\", users = [{{ username = \"carrier1\", password = \"pw1\" }}]"
    );
    if let Some(code) = challenge {
        d.push_str(&format!(", challenge = {code}"));
    }
    if let Some(algs) = algorithms {
        d.push_str(&format!(", algorithms = {algs}"));
    }
    d.push_str(" }");
    d
}

/// The challenges (`header` values) of every `code` response to `method` that `run`
/// received, one entry per transaction (CSeq).
fn challenges(run: &SippRun, code: u16, method: &str, header: &str) -> Vec<(u32, Vec<String>)> {
    let mut out: Vec<(u32, Vec<String>)> = Vec::new();
    for t in run.received() {
        let m = &t.msg;
        let Some((cseq, cseq_method)) = m.cseq() else {
            continue;
        };
        if m.status() == Some(code)
            && cseq_method.eq_ignore_ascii_case(method)
            && !out.iter().any(|(c, _)| *c == cseq)
        {
            out.push((
                cseq,
                m.headers(header).into_iter().map(str::to_owned).collect(),
            ));
        }
    }
    out
}

/// The challenged call and the refused one, against a trunk challenging with `code`.
fn digest_flow(test: &str, code: u16) {
    let topo = topology(
        test,
        &digest_lines((code == 401).then_some(401), Some("[\"MD5\"]")),
    );
    let (challenge_hdr, creds_hdr) = if code == 407 {
        ("proxy-authenticate", "proxy-authorization")
    } else {
        ("www-authenticate", "authorization")
    };
    let mut sbcd = Sbcd::start(&topo);
    let runs = run_calls(
        &topo,
        pbx_callee(&topo, 1, CALLED),
        vec![
            carrier_caller(&topo, "carrier-wrong-password", "uac_digest_403.xml")
                .args(&["-au", "carrier1", "-ap", "bad"]),
        ],
        vec![carrier_caller(&topo, "carrier", "uac_digest.xml")
            .args(&["-au", "carrier1", "-ap", "pw1"])],
    );
    let (wrong, call, pbx) = (&runs.refused[0], &runs.calls[0], &runs.callee);
    let mut problems = refused_checks(wrong, 403);
    problems.extend(call_checks(&runs.calls, pbx, CALLED));
    problems.extend(pbx_invite_count(pbx, 1));

    // The challenges: the first INVITE and the first BYE, each one MD5 challenge for our realm.
    let got = challenges(call, code, "INVITE", challenge_hdr);
    let got_bye = challenges(call, code, "BYE", challenge_hdr);
    for (what, got, cseq) in [("INVITE", &got, 1), ("BYE", &got_bye, 3)] {
        match got.as_slice() {
            [(c, values)] if *c == cseq => {
                let ok = values.len() == 1
                    && digest_param(&values[0], "realm").as_deref() == Some(REALM)
                    && digest_param(&values[0], "algorithm")
                        .is_some_and(|a| a.eq_ignore_ascii_case("MD5"))
                    && digest_param(&values[0], "nonce").is_some();
                if !ok {
                    problems.push(format!(
                        "the {code} to the carrier's {what} should carry one {challenge_hdr} with realm \
                         {REALM:?}, algorithm=MD5 and a nonce: {values:?}"
                    ));
                }
            }
            _ => problems.push(format!(
                "the carrier should get exactly one {code} for its {what}, to CSeq {cseq}: got {got:?}"
            )),
        }
    }
    if count_received(call, "403") > 0 {
        problems.push("the carrier with the right password received a 403".to_owned());
    }
    if challenges(wrong, code, "INVITE", challenge_hdr).is_empty() {
        problems.push(format!(
            "the carrier with the wrong password was never challenged with {code}"
        ));
    }
    // Credentials are for sbcd only; the PBX gets the BYE once (after the credentials).
    for name in ["proxy-authorization", "authorization"] {
        for leak in requests_with_header(pbx, name) {
            problems.push(format!("the carrier's credentials reached the PBX: {leak}"));
        }
    }
    if !call.sent().any(|t| !t.msg.headers(creds_hdr).is_empty()) {
        problems.push(format!("HARNESS: the carrier never sent {creds_hdr}"));
    }
    let bye_branches: std::collections::HashSet<String> = pbx
        .received()
        .filter(|t| t.msg.method() == Some("BYE"))
        .filter_map(|t| t.msg.top_via_branch())
        .collect();
    if bye_branches.len() != 1 {
        problems.push(format!(
            "the PBX should get one BYE transaction, got {}",
            bye_branches.len()
        ));
    }
    finish(
        &mut sbcd,
        &format!(
            "digest ({code}): INVITE and BYE challenged and answered, wrong password gets 403"
        ),
        &runs.all(),
        &problems,
    );
}

#[test]
fn digest_407() {
    let _serial = serial();
    digest_flow("trunk_modes_digest_407", 407);
}

#[test]
fn digest_401() {
    let _serial = serial();
    digest_flow("trunk_modes_digest_401", 401);
}

/// The default algorithms: two challenges in one 407, SHA-256 first, then MD5 (RFC 8760
/// §2.4). SIPp cannot answer SHA-256, so the call goes no further.
#[test]
fn digest_default_algorithms() {
    let _serial = serial();
    let topo = topology(
        "trunk_modes_digest_default_algorithms",
        &digest_lines(None, None),
    );
    let mut sbcd = Sbcd::start(&topo);
    let carrier = carrier_caller(&topo, "carrier", "uac_407.xml")
        .spawn(&topo.dir)
        .wait();
    let mut problems = sip_rules(&carrier);
    let got = challenges(&carrier, 407, "INVITE", "proxy-authenticate");
    match got.as_slice() {
        [(_, values)] => {
            let algs: Vec<Option<String>> = values
                .iter()
                .map(|v| digest_param(v, "algorithm"))
                .collect();
            if algs != [Some("SHA-256".to_owned()), Some("MD5".to_owned())] {
                problems.push(format!(
                    "the 407 should offer algorithm=SHA-256 then algorithm=MD5, offers {algs:?}: {values:?}"
                ));
            }
            for v in values {
                if digest_param(v, "realm").as_deref() != Some(REALM) {
                    problems.push(format!("challenge without realm {REALM:?}: {v}"));
                }
                let qop = digest_param(v, "qop");
                if qop.as_deref() != Some("auth") {
                    problems.push(format!(
                        "challenge with qop {qop:?}, expected \"auth\": {v}"
                    ));
                }
                if digest_param(v, "nonce").is_none() {
                    problems.push(format!("challenge without nonce: {v}"));
                }
            }
        }
        _ => problems.push(format!(
            "the carrier should get exactly one 407 for its INVITE: got {got:?}"
        )),
    }
    finish(
        &mut sbcd,
        "digest with the default algorithms: 407 offers SHA-256, then MD5",
        &[&carrier],
        &problems,
    );
}

// === the scenario alone ===

/// uac_trunk.xml straight to uas_basic.xml (no sbcd): the Request-URI host and the extra header
/// are what the scenario says, and the call completes. A failure here is a broken scenario.
/// (The refused and challenged callers have no SIPp counterpart: sbcd answers them.)
#[test]
fn uac_trunk_runs_direct() {
    let _serial = serial();
    let dir = TestDir::new("trunk_modes_uac_trunk_runs_direct");
    let (caller_addr, callee_addr) = direct_addrs(false);
    let callee = Sipp::uas("callee", "uas_basic.xml", callee_addr).timeout(Duration::from_secs(10));
    let caller = Sipp::uac("caller", "uac_trunk.xml", caller_addr, callee_addr)
        .timeout(Duration::from_secs(10))
        .args(&[
            "-set",
            "ruri_host",
            "k3x9q.sbc.test",
            "-set",
            "trunk_hdr",
            "X-Trunk-Key: s3cret",
        ]);
    let (caller, callee) = run_call(&dir, caller, vec![callee]);
    let callee = &callee[0];
    let mut problems = sip_rules(&caller);
    problems.extend(sip_rules(callee));
    let invites = initial_invites(callee);
    let want = format!("sip:{CALLED}@k3x9q.sbc.test");
    match invites.as_slice() {
        [m] => {
            if m.request_uri() != Some(want.as_str()) {
                problems.push(format!(
                    "Request-URI {:?}, expected {want}",
                    m.request_uri()
                ));
            }
            if m.headers("x-trunk-key") != ["s3cret"] {
                problems.push(format!(
                    "X-Trunk-Key {:?}, expected s3cret",
                    m.headers("x-trunk-key")
                ));
            }
        }
        _ => problems.push(format!(
            "the callee received {} INVITEs, expected 1",
            invites.len()
        )),
    }
    if let Some(report) = crate::checks::verdict(
        "uac_trunk.xml -> uas_basic.xml direct",
        &[&caller, callee],
        &problems,
    ) {
        panic!("{report}");
    }
}

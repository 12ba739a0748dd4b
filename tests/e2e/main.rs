//! End-to-end tests: sbcd between SIPp playing the PBX and SIPp playing the carrier (and
//! Kamailio as a stateful proxy on the carrier side), everything on loopback.
//!
//! ```text
//! cargo build -p sbcd && cargo test --test e2e             # all (sbcd flows need a daemon that carries calls)
//! cargo test --test e2e sipp_scenarios_run_direct         # the scenarios alone, UAC -> UAS, no sbcd
//! cargo test --test e2e -- --nocapture basic_call          # one flow
//! SBCD_BIN=/path/to/sbcd SBCD_E2E_KEEP=1 cargo test --test e2e
//! ```
//! Needs `sipp` (Debian sip-tester) and `kamailio`; tests/run-all.sh installs both. Tests run
//! one at a time (a global lock): SIPp timing on a shared 2-core machine is flaky enough.
//! Every test writes its config and every SIPp's message trace, statistics and errors to
//! target/tmp/e2e/<test>-<pid>/, kept when the test fails (and with SBCD_E2E_KEEP=1).
//! A failing flow says which side did not complete, what it received, which protocol check
//! failed, and prints sbcd's log.

mod baresip;
mod checks;
mod fuzz_net;
mod hostile;
mod kamailio;
mod kamailio_auth;
mod media;
mod operations;
mod reload;
mod sbcd;
mod scanners;
mod sip;
mod sipp;
mod trunk_modes;
mod util;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use checks::{b2bua, count_received, sip_rules, verdict, Expect};
use kamailio::Kamailio;
use sbcd::{Options, Sbcd, Topology, CARRIER_IP, KAMAILIO_IP, PBX_IP};
use sipp::{Sipp, SippRun, SippSpec, Transport};
use util::{free_port, serial, TestDir};

/// Starts the callees, then the caller; waits for the caller, then gives each callee 5 s more.
fn run_call(dir: &TestDir, caller: SippSpec, callees: Vec<SippSpec>) -> (SippRun, Vec<SippRun>) {
    let callees: Vec<_> = callees.into_iter().map(|c| c.spawn(dir)).collect();
    let caller = caller.spawn(dir).wait();
    let callees = callees
        .into_iter()
        .map(|c| c.wait_for(Duration::from_secs(5)))
        .collect();
    (caller, callees)
}

/// The generic SIP rules on both sides plus the B2BUA contract between them.
fn leg_checks(caller: &SippRun, callee: &SippRun, expect: &Expect) -> Vec<String> {
    let mut problems = b2bua(caller, callee, expect);
    problems.extend(sip_rules(caller));
    problems.extend(sip_rules(callee));
    problems
}

/// Fails the test with a full account unless every SIPp succeeded and no check failed.
fn finish(sbcd: &mut Sbcd, title: &str, runs: &[&SippRun], problems: &[String]) {
    sbcd.assert_running();
    let mut problems = problems.to_vec();
    problems.extend(sbcd.leaked_secrets());
    if let Some(report) = verdict(title, runs, &problems) {
        panic!("{report}");
    }
}

// === sbcd flows ===

#[test]
fn basic_call() {
    let _serial = serial();
    let topo = Topology::new("basic_call", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml"),
        vec![topo.carrier_uas("uas_basic.xml")],
    );
    let carrier = &carrier[0];
    let problems = leg_checks(&pbx, carrier, &Expect::default());
    finish(
        &mut sbcd,
        "basic call PBX -> sbcd -> carrier, caller hangs up",
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn basic_call_from_carrier() {
    let _serial = serial();
    let topo = Topology::new("basic_call_from_carrier", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (carrier, pbx) = run_call(
        &topo.dir,
        topo.carrier_uac("uac_basic.xml"),
        vec![topo.pbx_uas("uas_basic.xml")],
    );
    let pbx = &pbx[0];
    let problems = leg_checks(&carrier, pbx, &Expect::default());
    finish(
        &mut sbcd,
        "basic call carrier -> sbcd -> PBX",
        &[&carrier, pbx],
        &problems,
    );
}

#[test]
fn callee_hangs_up() {
    let _serial = serial();
    let topo = Topology::new("callee_hangs_up", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_callee_bye.xml"),
        vec![topo.carrier_uas("uas_bye.xml")],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    if count_received(&pbx, "BYE") == 0 {
        problems.push("the carrier's BYE never reached the PBX".to_owned());
    }
    finish(
        &mut sbcd,
        "callee (carrier) hangs up",
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn cancel_before_answer() {
    let _serial = serial();
    let topo = Topology::new("cancel_before_answer", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_cancel.xml"),
        vec![topo.carrier_uas("uas_cancel.xml")],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    if count_received(carrier, "CANCEL") == 0 {
        problems.push("the carrier never received a CANCEL".to_owned());
    }
    if count_received(&pbx, "487") == 0 {
        problems.push("the PBX never received 487 for its INVITE".to_owned());
    }
    finish(
        &mut sbcd,
        "PBX cancels after 180",
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn busy_486() {
    let _serial = serial();
    let topo = Topology::new("busy_486", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_busy.xml"),
        vec![topo.carrier_uas("uas_busy.xml")],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    if count_received(carrier, "ACK") == 0 {
        problems.push("sbcd never ACKed the carrier's 486".to_owned());
    }
    finish(
        &mut sbcd,
        "carrier answers 486, PBX sees 486",
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn failover_503() {
    let _serial = serial();
    let topo = Topology::new(
        "failover_503",
        Options {
            failover: true,
            ..Options::default()
        },
    );
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, callees) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml"),
        vec![
            topo.carrier_uas("uas_503.xml"),
            topo.backup_uas("uas_basic.xml"),
        ],
    );
    let (carrier, backup) = (&callees[0], &callees[1]);
    let mut problems = leg_checks(
        &pbx,
        backup,
        &Expect {
            hidden_from_caller: vec![topo.carrier.addr],
            ..Expect::default()
        },
    );
    problems.extend(b2bua(&pbx, carrier, &Expect::default()));
    problems.extend(sip_rules(carrier));
    if count_received(&pbx, "503") > 0 {
        problems.push(
            "the PBX received the first carrier's 503: sbcd should have failed over".to_owned(),
        );
    }
    if count_received(carrier, "ACK") == 0 {
        problems.push("sbcd never ACKed the first carrier's 503".to_owned());
    }
    let branch = |run: &SippRun| {
        run.received()
            .find(|t| t.msg.method() == Some("INVITE"))
            .and_then(|t| t.msg.top_via_branch())
    };
    if let (Some(a), Some(b)) = (branch(carrier), branch(backup)) {
        if a == b {
            problems.push(format!(
                "both carriers got an INVITE with branch {a}: a retry is a new transaction"
            ));
        }
    }
    finish(
        &mut sbcd,
        "carrier answers 503, sbcd fails over to backup, PBX sees one call",
        &[&pbx, carrier, backup],
        &problems,
    );
}

#[test]
fn hold_resume_from_caller() {
    let _serial = serial();
    let topo = Topology::new("hold_resume_from_caller", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_reinvite.xml"),
        vec![topo.carrier_uas("uas_reinvite.xml")],
    );
    let carrier = &carrier[0];
    let problems = leg_checks(&pbx, carrier, &Expect::default());
    finish(
        &mut sbcd,
        "re-INVITE hold/resume from the PBX",
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn hold_resume_from_callee() {
    let _serial = serial();
    let topo = Topology::new("hold_resume_from_callee", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_reinvite_remote.xml"),
        vec![topo.carrier_uas("uas_reinvite_local.xml")],
    );
    let carrier = &carrier[0];
    let problems = leg_checks(&pbx, carrier, &Expect::default());
    finish(
        &mut sbcd,
        "re-INVITE hold/resume from the carrier",
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn prack_on_carrier_leg() {
    let _serial = serial();
    let topo = Topology::new("prack_on_carrier_leg", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_100rel.xml"),
        vec![topo.carrier_uas("uas_100rel.xml")],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    if count_received(carrier, "PRACK") == 0 {
        problems.push("the carrier's reliable 180 was never PRACKed".to_owned());
    }
    if count_received(&pbx, "PRACK") > 0 {
        problems.push("a PRACK reached the PBX, which did not offer 100rel".to_owned());
    }
    finish(
        &mut sbcd,
        "100rel on the carrier leg only",
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn info_and_options_in_dialog() {
    let _serial = serial();
    let topo = Topology::new("info_and_options_in_dialog", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_info_options.xml"),
        vec![topo.carrier_uas("uas_info_options.xml")],
    );
    let carrier = &carrier[0];
    let problems = leg_checks(&pbx, carrier, &Expect::default());
    finish(
        &mut sbcd,
        "in-dialog INFO and OPTIONS from the PBX",
        &[&pbx, carrier],
        &problems,
    );
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Many long calls at once (E2E_LOAD_CALLS, E2E_LOAD_RATE per second, E2E_LOAD_HOLD_MS).
#[test]
fn long_calls_load() {
    let _serial = serial();
    let calls = env_u32("E2E_LOAD_CALLS", 40);
    let rate = env_u32("E2E_LOAD_RATE", 20).max(1);
    let hold_ms = env_u32("E2E_LOAD_HOLD_MS", 3000);
    let timeout = Duration::from_secs(u64::from(calls / rate + hold_ms / 1000) + 30);
    let topo = Topology::new("long_calls_load", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_long.xml")
            .calls(calls)
            .timeout(timeout)
            .args(&[
                "-d".to_owned(),
                hold_ms.to_string(),
                "-r".to_owned(),
                rate.to_string(),
                "-l".to_owned(),
                calls.to_string(),
                "-buff_size".to_owned(),
                "4194304".to_owned(),
            ]),
        vec![topo
            .carrier_uas("uas_basic.xml")
            .calls(calls)
            .timeout(timeout)],
    );
    let carrier = &carrier[0];
    let problems = leg_checks(&pbx, carrier, &Expect::default());
    finish(
        &mut sbcd,
        &format!("{calls} calls of {hold_ms} ms at {rate}/s PBX -> carrier"),
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn tcp_on_pbx_leg() {
    let _serial = serial();
    let topo = Topology::new(
        "tcp_on_pbx_leg",
        Options {
            pbx_tcp: true,
            ..Options::default()
        },
    );
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml"),
        vec![topo.carrier_uas("uas_basic.xml")],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    for t in carrier.received().filter(|t| t.msg.is_request()) {
        if let Some(via) = t.msg.vias().first() {
            if !via.to_ascii_uppercase().starts_with("SIP/2.0/UDP") {
                problems.push(format!("the carrier leg should be UDP, got Via {via}"));
            }
        }
    }
    finish(
        &mut sbcd,
        "TCP PBX leg, UDP carrier leg",
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn ipv6_on_pbx_leg() {
    let _serial = serial();
    let topo = Topology::new(
        "ipv6_on_pbx_leg",
        Options {
            pbx_v6: true,
            ..Options::default()
        },
    );
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml"),
        vec![topo.carrier_uas("uas_basic.xml")],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    // SIP headers only: SDP addresses belong to media anchoring (sbcd relays the offer's c=/o=
    // as they are until the RTP relay lands).
    for t in carrier.received() {
        let head = t.raw.split("\r\n\r\n").next().unwrap_or("");
        if let Some(line) = head.lines().find(|l| l.contains("::1")) {
            problems.push(format!(
                "an IPv6 address reached the IPv4 carrier leg: {}",
                line.trim_end()
            ));
        }
    }
    finish(
        &mut sbcd,
        "IPv6 PBX leg ([::1]), IPv4 carrier leg",
        &[&pbx, carrier],
        &problems,
    );
}

fn kamailio_topology(test: &str) -> Topology {
    Topology::new(
        test,
        Options {
            kamailio: true,
            ..Options::default()
        },
    )
}

fn kamailio_expect(topo: &Topology) -> Expect {
    Expect {
        hops: 2,
        callee_vias: 2,
        hidden_from_caller: vec![topo.kamailio],
    }
}

#[test]
fn through_kamailio_on_carrier_side() {
    let _serial = serial();
    let topo = kamailio_topology("through_kamailio_on_carrier_side");
    let next_hop = format!("sip:{}", util::host_port(topo.carrier.addr));
    let _kamailio = Kamailio::start(&topo.dir, topo.kamailio, &next_hop);
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml"),
        vec![topo.carrier_uas("uas_basic.xml")],
    );
    let carrier = &carrier[0];
    let problems = leg_checks(&pbx, carrier, &kamailio_expect(&topo));
    finish(
        &mut sbcd,
        "PBX -> sbcd -> Kamailio -> carrier",
        &[&pbx, carrier],
        &problems,
    );
}

#[test]
fn through_kamailio_callee_hangs_up() {
    let _serial = serial();
    let topo = kamailio_topology("through_kamailio_callee_hangs_up");
    let next_hop = format!("sip:{}", util::host_port(topo.carrier.addr));
    let _kamailio = Kamailio::start(&topo.dir, topo.kamailio, &next_hop);
    let mut sbcd = Sbcd::start(&topo);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_callee_bye.xml"),
        vec![topo.carrier_uas("uas_bye.xml")],
    );
    let carrier = &carrier[0];
    let problems = leg_checks(&pbx, carrier, &kamailio_expect(&topo));
    finish(
        &mut sbcd,
        "PBX -> sbcd -> Kamailio -> carrier, carrier hangs up through Kamailio's route set",
        &[&pbx, carrier],
        &problems,
    );
}

// === checks that need no working sbcd ===

/// One direct UAC -> UAS run of a scenario pair.
struct Direct {
    name: &'static str,
    uac: &'static str,
    uas: &'static str,
    transport: Transport,
    v6: bool,
    calls: u32,
    uac_args: &'static [&'static str],
}

const fn direct(name: &'static str, uac: &'static str, uas: &'static str) -> Direct {
    Direct {
        name,
        uac,
        uas,
        transport: Transport::Udp,
        v6: false,
        calls: 1,
        uac_args: &[],
    }
}

const DIRECT: &[Direct] = &[
    direct("basic", "uac_basic.xml", "uas_basic.xml"),
    Direct {
        calls: 5,
        uac_args: &["-d", "500", "-r", "10", "-l", "5"],
        ..direct("long (5 calls, -d 500)", "uac_long.xml", "uas_basic.xml")
    },
    direct("callee hangs up", "uac_callee_bye.xml", "uas_bye.xml"),
    direct("cancel", "uac_cancel.xml", "uas_cancel.xml"),
    direct("486 busy", "uac_busy.xml", "uas_busy.xml"),
    direct("503", "uac_503.xml", "uas_503.xml"),
    direct(
        "hold/resume by caller",
        "uac_reinvite.xml",
        "uas_reinvite.xml",
    ),
    direct(
        "hold/resume by callee",
        "uac_reinvite_remote.xml",
        "uas_reinvite_local.xml",
    ),
    direct(
        "100rel with PRACK",
        "uac_100rel_prack.xml",
        "uas_100rel.xml",
    ),
    direct(
        "100rel caller vs plain callee",
        "uac_100rel.xml",
        "uas_basic.xml",
    ),
    direct(
        "INFO and OPTIONS",
        "uac_info_options.xml",
        "uas_info_options.xml",
    ),
    Direct {
        transport: Transport::Tcp,
        ..direct("basic over TCP", "uac_basic.xml", "uas_basic.xml")
    },
    Direct {
        v6: true,
        ..direct("basic over IPv6", "uac_basic.xml", "uas_basic.xml")
    },
];

fn direct_addrs(v6: bool) -> (SocketAddr, SocketAddr) {
    let (a, b) = if v6 {
        let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
        (ip, ip)
    } else {
        (IpAddr::V4(PBX_IP), IpAddr::V4(CARRIER_IP))
    };
    (
        SocketAddr::new(a, free_port(a)),
        SocketAddr::new(b, free_port(b)),
    )
}

/// Every scenario pair, UAC straight to UAS (no sbcd), with the generic SIP checks on both.
/// A pair failing here is a broken scenario (or SIPp), not a broken sbcd.
#[test]
fn sipp_scenarios_run_direct() {
    let _serial = serial();
    let dir = TestDir::new("sipp_scenarios_run_direct");
    let mut failures = Vec::new();
    let mut table = String::new();
    for case in DIRECT {
        let (caller_addr, callee_addr) = direct_addrs(case.v6);
        let callee = Sipp::uas(
            &format!("callee-{}", slug(case.name)),
            case.uas,
            callee_addr,
        )
        .transport(case.transport)
        .calls(case.calls)
        .timeout(Duration::from_secs(15));
        let caller = Sipp::uac(
            &format!("caller-{}", slug(case.name)),
            case.uac,
            caller_addr,
            callee_addr,
        )
        .transport(case.transport)
        .calls(case.calls)
        .timeout(Duration::from_secs(15))
        .args(case.uac_args);
        let (caller, callee) = run_call(&dir, caller, vec![callee]);
        let callee = &callee[0];
        let mut problems = sip_rules(&caller);
        problems.extend(sip_rules(callee));
        let ok = caller.ok() && callee.ok() && problems.is_empty();
        table.push_str(&format!(
            "  {:<34} {} -> {}  {}\n",
            case.name,
            case.uac,
            case.uas,
            if ok { "ok" } else { "FAILED" }
        ));
        if let Some(report) = verdict(
            &format!("direct {}", case.name),
            &[&caller, callee],
            &problems,
        ) {
            failures.push(report);
        }
    }
    eprintln!("SIPp scenario pairs run directly:\n{table}");
    assert!(failures.is_empty(), "{}\n{}", table, failures.join("\n"));
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The in-scenario leak checks really fail a call: the callee is told the caller's address and
/// mark, which a direct call cannot hide.
#[test]
fn sipp_leak_checks_fire() {
    let _serial = serial();
    let dir = TestDir::new("sipp_leak_checks_fire");
    let (caller_addr, callee_addr) = direct_addrs(false);
    let callee = Sipp::uas("callee", "uas_basic.xml", callee_addr)
        .hide(caller_addr, "mkcaller")
        .timeout(Duration::from_secs(10));
    let caller = Sipp::uac("caller", "uac_basic.xml", caller_addr, callee_addr)
        .timeout(Duration::from_secs(10));
    let (caller, callee) = run_call(&dir, caller, vec![callee]);
    let callee = &callee[0];
    assert!(
        caller.ok(),
        "the caller should not notice:\n{}",
        caller.report()
    );
    assert!(
        !callee.ok() && callee.errors.contains("Regexp matched but should not"),
        "the callee's leak check did not fire:\n{}",
        callee.report()
    );
    assert!(
        callee.report().contains("belongs to the other side"),
        "{}",
        callee.report()
    );
}

/// The harness's B2BUA checks are not vacuous: on a direct call (no sbcd) they must report the
/// shared Call-ID, the leaked tags and addresses and the undecremented Max-Forwards.
#[test]
fn b2bua_checks_catch_a_direct_call() {
    let _serial = serial();
    let dir = TestDir::new("b2bua_checks_catch_a_direct_call");
    let (caller_addr, callee_addr) = direct_addrs(false);
    let callee =
        Sipp::uas("carrier", "uas_basic.xml", callee_addr).timeout(Duration::from_secs(10));
    let caller = Sipp::uac("pbx", "uac_basic.xml", caller_addr, callee_addr)
        .timeout(Duration::from_secs(10));
    let (caller, callee) = run_call(&dir, caller, vec![callee]);
    let callee = &callee[0];
    assert!(
        caller.ok() && callee.ok(),
        "{}{}",
        caller.report(),
        callee.report()
    );
    let problems = b2bua(&caller, callee, &Expect::default()).join("\n");
    for expected in [
        "is on both legs",
        "carrying pbx's Call-ID",
        "carrying pbx's tag",
        "carrying carrier's tag",
        &format!("carrying the address {}", util::host_port(caller_addr)),
        &format!("carrying the address {}", util::host_port(callee_addr)),
        "Max-Forwards 70",
    ] {
        assert!(
            problems.contains(expected),
            "no problem mentions {expected:?}:\n{problems}"
        );
    }
}

#[test]
fn kamailio_config_is_valid() {
    let _serial = serial();
    let dir = TestDir::new("kamailio_config_is_valid");
    let listen = SocketAddr::new(IpAddr::V4(KAMAILIO_IP), free_port(IpAddr::V4(KAMAILIO_IP)));
    let (ok, output) = kamailio::check(&dir, listen, "sip:127.0.0.2:5080");
    assert!(
        ok,
        "kamailio -c rejects {}:\n{output}",
        kamailio::config().display()
    );
}

/// The proxy config with SIPp on both sides (no sbcd): basic call and callee hang-up, which
/// uses Kamailio's Record-Route for the BYE.
#[test]
fn kamailio_proxy_runs_direct() {
    let _serial = serial();
    let dir = TestDir::new("kamailio_proxy_runs_direct");
    let mut failures = Vec::new();
    for (uac, uas) in [
        ("uac_basic.xml", "uas_basic.xml"),
        ("uac_callee_bye.xml", "uas_bye.xml"),
    ] {
        let (caller_addr, callee_addr) = direct_addrs(false);
        let proxy = SocketAddr::new(IpAddr::V4(KAMAILIO_IP), free_port(IpAddr::V4(KAMAILIO_IP)));
        let kamailio = Kamailio::start(
            &dir,
            proxy,
            &format!("sip:{}", util::host_port(callee_addr)),
        );
        let callee =
            Sipp::uas(&format!("callee-{uas}"), uas, callee_addr).timeout(Duration::from_secs(15));
        let caller = Sipp::uac(&format!("caller-{uac}"), uac, caller_addr, proxy)
            .timeout(Duration::from_secs(15));
        let (caller, callee) = run_call(&dir, caller, vec![callee]);
        drop(kamailio);
        let callee = &callee[0];
        let mut problems = sip_rules(&caller);
        problems.extend(sip_rules(callee));
        for t in callee
            .received()
            .filter(|t| t.msg.method() == Some("INVITE"))
        {
            if t.msg.vias().len() != 2 {
                problems.push(format!(
                    "callee got INVITE with Vias {:?}, expected 2",
                    t.msg.vias()
                ));
            }
            if t.msg.max_forwards() != Some(69) {
                problems.push(format!(
                    "callee got Max-Forwards {:?}, expected 69",
                    t.msg.max_forwards()
                ));
            }
        }
        if let Some(report) = verdict(
            &format!("{uac} -> Kamailio -> {uas}"),
            &[&caller, callee],
            &problems,
        ) {
            failures.push(report);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every topology variant's config passes `sbcd check-config` (the harness speaks DESIGN.md's
/// config contract); this works before sbcd carries calls.
#[test]
fn sbcd_accepts_generated_configs() {
    let _serial = serial();
    let variants = [
        ("plain", Options::default()),
        (
            "tcp",
            Options {
                pbx_tcp: true,
                ..Options::default()
            },
        ),
        (
            "ipv6",
            Options {
                pbx_v6: true,
                ..Options::default()
            },
        ),
        (
            "failover",
            Options {
                failover: true,
                ..Options::default()
            },
        ),
        (
            "kamailio",
            Options {
                kamailio: true,
                ..Options::default()
            },
        ),
    ];
    let mut failures = Vec::new();
    for (name, opts) in variants {
        let topo = Topology::new(&format!("config_{name}"), opts);
        let path = topo.write_config();
        let (code, output) = sbcd::check_config(&path);
        if code != Some(0) {
            failures.push(format!(
                "{name}: exit {code:?}\n{output}\n{}",
                topo.config_toml()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

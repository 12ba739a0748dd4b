//! Operations under load (issue 6): live config reloads while 200 calls carry RTP, and the
//! SIGTERM drain.
//!
//! ```text
//!   PBX SIPp 127.0.0.1:P (rtp_stream) -> sbcd -> carrier SIPp 127.0.0.2:C (-rtp_echo)  200 calls
//!   probe SIPps 127.0.0.1:*           -> sbcd -> backup SIPp 127.0.0.3:B        one per probe
//! ```
//! The reload test rewrites the config file (atomically: write, then rename) once a second and
//! reloads it, alternately with SIGHUP and `POST /reload` on the admin listener, while the 200
//! calls are up; a probe call started right after a `POST /reload` returns shows which carrier
//! the running routing picks. The drain test sends SIGTERM during a call and watches `/health`,
//! a new INVITE, the running call and sbcd's exit.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use crate::checks::{b2bua, count_received, sip_rules, verdict, Expect};
use crate::sbcd::{Options, Sbcd, Topology, BACKUP_IP, CARRIER_IP, PBX_IP};
use crate::sipp::{SippProc, SippRun, SippSpec, Transport};
use crate::util::{self, free_port, read_lossy, serial};
use crate::{finish, leg_checks};

/// Calls up at once during the reloads.
const CALLS: u32 = 200;
/// How long each of them lasts (the caller's pause after the ACK), and the audio it plays
/// meanwhile (a second shorter, so the stream ends before the BYE).
const HOLD_MS: u32 = 15_000;
const AUDIO_SECS: u32 = 14;
/// Calls set up per second.
const RATE: u32 = 100;
/// The PBX route's `match` in the files the test writes.
const ANY_NUMBER: &str = r"^\+?[0-9]+$";

// === helpers shared by both tests ===

/// The values of every sample of `name`, whatever its labels.
fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = f64> + 'a {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        let value = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?.1,
            None => rest.strip_prefix(' ')?,
        };
        value.trim().parse().ok()
    })
}

/// The sum of every sample of `name`; `None` when /metrics has none.
fn metric_sum(text: &str, name: &str) -> Option<f64> {
    samples(text, name).reduce(|a, b| a + b)
}

/// The largest sample of `name`: calls in progress whether or not the gauge is split by trunk.
fn metric_max(text: &str, name: &str) -> Option<f64> {
    samples(text, name).reduce(f64::max)
}

fn calls_active(sbcd: &Sbcd) -> f64 {
    sbcd.metrics()
        .ok()
        .and_then(|m| metric_max(&m, "sbc_calls_active"))
        .unwrap_or(0.0)
}

/// Distinct Call-IDs of the initial INVITEs `run` received.
fn initial_invites(run: &SippRun) -> usize {
    run.received()
        .filter(|t| t.msg.method() == Some("INVITE") && t.msg.tag_in_to().is_none())
        .filter_map(|t| t.msg.call_id())
        .collect::<HashSet<_>>()
        .len()
}

/// A PBX caller of its own (`name` names its log files) on a fresh port of the PBX address,
/// so it runs next to the PBX's load caller; its SIPp media port is fresh too.
fn pbx_caller(topo: &Topology, name: &str, scenario: &str) -> SippSpec {
    let mut spec = topo.pbx_uac(scenario);
    spec.name = name.to_owned();
    spec.local = SocketAddr::new(IpAddr::V4(PBX_IP), free_port(IpAddr::V4(PBX_IP)));
    let media = free_port(IpAddr::V4(PBX_IP)).to_string();
    spec.args(&["-mp", &media])
}

// === reload under load ===

/// How a reload is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Sighup,
    Post,
}

/// What sbcd must make of a file: the `result` label of `sbc_config_reloads_total`, the
/// `result` of the `POST /reload` answer, and its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Error,
    Refused,
}

impl Outcome {
    const ALL: [Self; 3] = [Self::Ok, Self::Error, Self::Refused];

    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Refused => "refused",
        }
    }

    fn http_status(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::Error => 422,
            Self::Refused => 409,
        }
    }
}

/// One version of the config file.
#[derive(Debug, Clone, Copy)]
struct Variant {
    /// The trunk the PBX route sends calls to.
    pbx_to: &'static str,
    /// The PBX route's `match`.
    pbx_match: &'static str,
    /// `outbound.prefix` of the carrier trunk.
    carrier_prefix: Option<&'static str>,
    /// A second CIDR in the PBX trunk's allowlist.
    pbx_second_allow: bool,
    /// The outbound-only trunk "spare" and, ahead of the PBX route, a route to it for the
    /// numbers this matches; `None`: neither.
    spare_match: Option<&'static str>,
    /// A route for +44 numbers to the carrier, ahead of the PBX route.
    uk_route: bool,
    /// A route to the trunk "nowhere", which no `[[trunk]]` defines: the file is invalid.
    unknown_trunk: bool,
    /// `media.port_max` lowered by 2, a key that changes only on restart: the reload is refused.
    port_max_lowered: bool,
}

const START: Variant = Variant {
    pbx_to: "carrier",
    pbx_match: ANY_NUMBER,
    carrier_prefix: None,
    pbx_second_allow: false,
    spare_match: None,
    uk_route: false,
    unknown_trunk: false,
    port_max_lowered: false,
};

/// One reload of the run, a second after the previous one.
struct Step {
    what: &'static str,
    trigger: Trigger,
    file: Variant,
    expect: Outcome,
    /// Start a probe call right after the reload returned; it must reach the backup carrier.
    probe: bool,
}

/// The ten reloads: trunks added, changed and removed, routes added, changed and removed, the
/// PBX route switched from the carrier to the backup, two invalid files and a refused one.
fn steps() -> Vec<Step> {
    let spare = Variant {
        spare_match: Some(r"^999[0-9]*$"),
        ..START
    };
    let changed = Variant {
        carrier_prefix: Some("555#"),
        pbx_second_allow: true,
        ..spare
    };
    let to_backup = Variant {
        pbx_to: "backup",
        ..changed
    };
    let routes_changed = Variant {
        spare_match: Some(r"^998[0-9]*$"),
        pbx_match: r"^\+?1[0-9]+$",
        ..to_backup
    };
    let spare_removed = Variant {
        spare_match: None,
        ..routes_changed
    };
    let carrier_restored = Variant {
        carrier_prefix: None,
        pbx_second_allow: false,
        ..spare_removed
    };
    vec![
        Step {
            what: "add the outbound-only trunk spare and a route ^999 to it",
            trigger: Trigger::Sighup,
            file: spare,
            expect: Outcome::Ok,
            probe: false,
        },
        Step {
            what: "change trunks: carrier gets outbound.prefix 555#, pbx a second allowed CIDR",
            trigger: Trigger::Post,
            file: changed,
            expect: Outcome::Ok,
            probe: false,
        },
        Step {
            what: "INVALID: a route to the unknown trunk nowhere",
            trigger: Trigger::Sighup,
            file: Variant {
                unknown_trunk: true,
                ..changed
            },
            expect: Outcome::Error,
            probe: false,
        },
        Step {
            what: "switch the PBX route from carrier to backup",
            trigger: Trigger::Post,
            file: to_backup,
            expect: Outcome::Ok,
            probe: true,
        },
        Step {
            what: "change routes: spare's matches ^998, the PBX route's ^\\+?1[0-9]+$",
            trigger: Trigger::Sighup,
            file: routes_changed,
            expect: Outcome::Ok,
            probe: false,
        },
        Step {
            what:
                "INVALID: the PBX route back to carrier, plus a route to the unknown trunk nowhere",
            trigger: Trigger::Post,
            file: Variant {
                pbx_to: "carrier",
                unknown_trunk: true,
                ..routes_changed
            },
            expect: Outcome::Error,
            probe: true,
        },
        Step {
            what: "remove the trunk spare and its route",
            trigger: Trigger::Sighup,
            file: spare_removed,
            expect: Outcome::Ok,
            probe: false,
        },
        Step {
            what:
                "REFUSED: media.port_max changed (restart only), and the PBX route back to carrier",
            trigger: Trigger::Post,
            file: Variant {
                pbx_to: "carrier",
                port_max_lowered: true,
                ..spare_removed
            },
            expect: Outcome::Refused,
            probe: true,
        },
        Step {
            what: "change trunks back: no prefix on carrier, one CIDR for pbx",
            trigger: Trigger::Sighup,
            file: carrier_restored,
            expect: Outcome::Ok,
            probe: false,
        },
        Step {
            what: "add a route for +44 numbers to carrier",
            trigger: Trigger::Post,
            file: Variant {
                uk_route: true,
                ..carrier_restored
            },
            expect: Outcome::Ok,
            probe: false,
        },
    ]
}

/// The `[[trunk]]` and `[[route]]` tables of `v` (regexes as TOML literal strings).
fn trunks(topo: &Topology, v: &Variant) -> String {
    let mut t = String::new();
    let pbx_allow = if v.pbx_second_allow {
        format!("\"{PBX_IP}/32\", \"127.0.0.9/32\"")
    } else {
        format!("\"{PBX_IP}/32\"")
    };
    let _ = writeln!(
        t,
        "\n[[trunk]]\nname = \"pbx\"\ninbound.allow = [{pbx_allow}]\noutbound.uri = \"{}\"",
        Topology::sip_uri(topo.pbx.addr, Transport::Udp)
    );
    let _ = writeln!(
        t,
        "\n[[trunk]]\nname = \"carrier\"\ninbound.allow = [\"{CARRIER_IP}/32\"]\noutbound.uri = \"{}\"",
        Topology::sip_uri(topo.carrier.addr, Transport::Udp)
    );
    if let Some(prefix) = v.carrier_prefix {
        let _ = writeln!(t, "outbound.prefix = \"{prefix}\"");
    }
    let _ = writeln!(
        t,
        "\n[[trunk]]\nname = \"backup\"\ninbound.allow = [\"{BACKUP_IP}/32\"]\noutbound.uri = \"{}\"",
        Topology::sip_uri(topo.backup.addr, Transport::Udp)
    );
    if v.spare_match.is_some() {
        // No inbound checks: outbound only. Nothing listens there; no call is routed to it.
        let _ = writeln!(
            t,
            "\n[[trunk]]\nname = \"spare\"\noutbound.uri = \"sip:127.0.0.5:5060\""
        );
    }
    let mut route = |from: &str, pattern: Option<&str>, to: &str| {
        let _ = write!(t, "\n[[route]]\nfrom = \"{from}\"\n");
        if let Some(p) = pattern {
            let _ = writeln!(t, "match = '{p}'");
        }
        let _ = writeln!(t, "to = [\"{to}\"]");
    };
    if let Some(m) = v.spare_match {
        route("pbx", Some(m), "spare");
    }
    if v.uk_route {
        route("pbx", Some(r"^\+?44[0-9]+$"), "carrier");
    }
    if v.unknown_trunk {
        route("pbx", Some(r"^\+?33[0-9]+$"), "nowhere");
    }
    route("pbx", Some(v.pbx_match), v.pbx_to);
    route("carrier", None, "pbx");
    route("backup", None, "pbx");
    t
}

/// The whole file for `v`.
fn config(topo: &Topology, v: &Variant) -> String {
    let mut sections = topo.sections();
    if v.port_max_lowered {
        let now = format!("port_max = {}", topo.media.1);
        assert!(
            sections.contains(&now),
            "HARNESS PROBLEM: no `{now}` in the [media] section:\n{sections}"
        );
        sections = sections.replace(&now, &format!("port_max = {}", topo.media.1 - 2));
    }
    sections + &trunks(topo, v)
}

/// Replaces sbcd's config file in one rename, so a reload never reads half a file.
fn install(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("toml.next");
    fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename onto {}: {e}", path.display()));
}

/// `sbc_config_reloads_total` by result, in `Outcome::ALL` order (absent samples are 0).
fn reload_counts(metrics: &str) -> [u64; 3] {
    Outcome::ALL.map(|o| {
        util::metric(
            metrics,
            "sbc_config_reloads_total",
            &[("result", o.label())],
        )
        .unwrap_or(0.0) as u64
    })
}

fn counts_text(c: [u64; 3]) -> String {
    format!("ok={} error={} refused={}", c[0], c[1], c[2])
}

/// Does one reload and checks its outcome; `expected` holds the counts after it.
fn reload(sbcd: &Sbcd, topo: &Topology, step: &Step, expected: [u64; 3]) -> Result<(), String> {
    match step.trigger {
        Trigger::Post => {
            let (code, body) = util::http_post(topo.admin, "/reload")?;
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let result = format!("\"result\":\"{}\"", step.expect.label());
            if code != step.expect.http_status() || !compact.contains(&result) {
                return Err(format!(
                    "POST /reload answered {code} {}; expected {} with {result}",
                    body.trim(),
                    step.expect.http_status()
                ));
            }
            if step.expect == Outcome::Error && !compact.contains("\"errors\":[\"") {
                return Err(format!(
                    "POST /reload of an invalid file answered without the errors listed: {}",
                    body.trim()
                ));
            }
            let now = reload_counts(&sbcd.metrics()?);
            if now != expected {
                return Err(format!(
                    "after POST /reload answered, sbc_config_reloads_total is {}; expected {}",
                    counts_text(now),
                    counts_text(expected)
                ));
            }
        }
        Trigger::Sighup => {
            sbcd.signal("HUP")?;
            // SIGHUP is asynchronous: the counters say when the reload is done.
            let mut now = [0; 3];
            let total: u64 = expected.iter().sum();
            util::wait_until(Duration::from_secs(3), || {
                now = sbcd.metrics().map_or(now, |m| reload_counts(&m));
                now.iter().sum::<u64>() >= total
            });
            if now != expected {
                return Err(format!(
                    "3 s after SIGHUP, sbc_config_reloads_total is {}; expected {}",
                    counts_text(now),
                    counts_text(expected)
                ));
            }
        }
    }
    Ok(())
}

/// The `call media ended` line of every load call (PBX -> carrier) in sbcd's log: each must
/// have carried RTP both ways. `Err` says what is missing.
fn media_of_every_call(log: &str) -> Result<String, String> {
    let field = |line: &str, name: &str| -> Option<u64> {
        let start = line.find(&format!(" {name}="))? + name.len() + 2;
        let digits: String = line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("call media ended") && l.contains("trunk_b=carrier"))
        .collect();
    let mut silent = Vec::new();
    let (mut a_total, mut b_total, mut a_min, mut b_min) = (0, 0, u64::MAX, u64::MAX);
    for line in &lines {
        match (field(line, "a_packets"), field(line, "b_packets")) {
            (Some(a), Some(b)) => {
                a_total += a;
                b_total += b;
                a_min = a_min.min(a);
                b_min = b_min.min(b);
                if a == 0 || b == 0 {
                    silent.push(*line);
                }
            }
            _ => silent.push(*line),
        }
    }
    let summary = format!(
        "{} calls ended with media; packets from the PBX {a_total} (fewest in a call {a_min}), \
         from the carrier {b_total} (fewest {b_min})",
        lines.len()
    );
    if lines.len() != CALLS as usize || !silent.is_empty() {
        return Err(format!(
            "RTP through sbcd: expected {CALLS} `call media ended` lines for pbx -> carrier with \
             packets both ways; {summary}; {} without packets both ways, e.g. {:?}",
            silent.len(),
            silent.first()
        ));
    }
    Ok(summary)
}

/// 200 calls with RTP through sbcd (SIPp `rtp_stream` on the PBX, `-rtp_echo` on the carrier)
/// while the config is rewritten and reloaded ten times in ten seconds (SIGHUP and
/// `POST /reload` in turn; trunks and routes added, changed and removed; two invalid files and
/// one that changes a restart-only key). Every call completes; the reload counters match; a
/// probe started right after the reload that switches the PBX route to the backup carrier
/// lands there, and so do probes after the invalid and the refused file.
#[test]
fn reload_under_load_keeps_calls() {
    let _serial = serial();
    let test_start = Instant::now();
    let mut topo = Topology::new("reload_under_load", Options::default());
    // Two pairs (inbound and outbound leg) per call: 600 pairs for the 203 calls, outside the
    // 20000-29599 slots other tests use.
    let base = 10_000 + u16::try_from(std::process::id() % 8).unwrap_or(0) * 1200;
    topo.media = (base, base + 1199);
    topo.trunks = Some(trunks(&topo, &START));
    let mut sbcd = Sbcd::start(&topo);
    let steps = steps();
    // Every file is what the step says it is: valid (a refused one is valid on its own), or
    // invalid for the unknown trunk alone.
    for (i, step) in steps.iter().enumerate() {
        let file = topo.dir.file(&format!("sbcd-step{}.toml", i + 1));
        fs::write(&file, config(&topo, &step.file)).expect("write a config variant");
        let (code, out) = crate::sbcd::check_config(&file);
        let as_meant = match step.expect {
            Outcome::Ok | Outcome::Refused => code == Some(0),
            Outcome::Error => {
                code == Some(78)
                    && out.contains("unknown trunk \"nowhere\"")
                    && out
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .all(|l| l.contains("\"nowhere\""))
            }
        };
        assert!(
            as_meant,
            "HARNESS PROBLEM: step {} ({}) writes {} which sbcd check-config answers with {code:?}:\n{out}",
            i + 1,
            step.what,
            file.display()
        );
    }

    // The audio: AUDIO_SECS of PCMU, played once per call.
    let audio = topo.dir.file("tone.pcmu");
    let samples: Vec<u8> = (0..8000 * AUDIO_SECS)
        .map(|i| (i % 256) as u8 ^ 0x55)
        .collect();
    fs::write(&audio, samples).expect("write the audio file");
    let uac = topo.dir.file("uac_rtp_stream.xml");
    fs::write(
        &uac,
        read_lossy(&util::scenario("uac_rtp_stream.xml"))
            .replace("@RTP_FILE@", &audio.display().to_string()),
    )
    .expect("write the scenario copy");

    let sipp_timeout = Duration::from_secs(60);
    let echo_port = free_port(IpAddr::V4(CARRIER_IP)).to_string();
    let carrier = topo
        .carrier_uas("uas_basic.xml")
        .calls(CALLS)
        .timeout(sipp_timeout)
        .args(&["-rtp_echo", "-mp", &echo_port])
        .spawn(&topo.dir);
    let backup_media = free_port(IpAddr::V4(BACKUP_IP)).to_string();
    let probes_planned = steps.iter().filter(|s| s.probe).count() as u32;
    let backup = topo
        .backup_uas("uas_basic.xml")
        .calls(probes_planned)
        .timeout(sipp_timeout)
        .args(&["-mp", &backup_media])
        .spawn(&topo.dir);
    let pbx_media = free_port(IpAddr::V4(PBX_IP)).to_string();
    let pbx = topo
        .pbx_uac(&uac.display().to_string())
        .calls(CALLS)
        .timeout(sipp_timeout)
        .args(&[
            "-d".to_owned(),
            HOLD_MS.to_string(),
            "-r".to_owned(),
            RATE.to_string(),
            "-l".to_owned(),
            CALLS.to_string(),
            "-mp".to_owned(),
            pbx_media,
        ])
        .spawn(&topo.dir);

    let mut problems = Vec::new();
    let all_up = util::wait_until(Duration::from_secs(15), || {
        calls_active(&sbcd) >= f64::from(CALLS)
    });
    if !all_up {
        problems.push(format!(
            "only {} of {CALLS} calls were up in sbcd (sbc_calls_active) 15 s after the PBX started \
             calling at {RATE}/s; reloading anyway",
            calls_active(&sbcd)
        ));
    }
    // Let the last answers and ACKs through, and RTP start on every call.
    thread::sleep(Duration::from_millis(500));
    let forwarded = |sbcd: &Sbcd| {
        sbcd.metrics()
            .ok()
            .and_then(|m| metric_sum(&m, "sbc_rtp_packets_forwarded_total"))
            .unwrap_or(0.0)
    };
    let forwarded_before = forwarded(&sbcd);

    let mut expected = [0u64; 3];
    let mut probes: Vec<(usize, SippProc)> = Vec::new();
    let config_path = sbcd.config.clone();
    let reloads_start = Instant::now();
    for (i, step) in steps.iter().enumerate() {
        let due = reloads_start + Duration::from_secs(i as u64);
        thread::sleep(due.saturating_duration_since(Instant::now()));
        install(&config_path, &config(&topo, &step.file));
        let outcome = Outcome::ALL
            .iter()
            .position(|o| *o == step.expect)
            .expect("one of ALL");
        expected[outcome] += 1;
        let asked = Instant::now();
        let result = reload(&sbcd, &topo, step, expected);
        let returned = Instant::now();
        eprintln!(
            "reload {} ({:?}, {:?} expected) in {} ms: {}{}",
            i + 1,
            step.trigger,
            step.expect,
            (returned - asked).as_millis(),
            step.what,
            match &result {
                Ok(()) => String::new(),
                Err(e) => format!(" -- FAILED: {e}"),
            }
        );
        if let Err(e) = result {
            problems.push(format!(
                "reload {} ({:?}: {}): {e}",
                i + 1,
                step.trigger,
                step.what
            ));
        }
        if step.probe {
            let probe = pbx_caller(&topo, &format!("probe{}", i + 1), "uac_basic.xml")
                .hide(topo.backup.addr, topo.backup.mark)
                .timeout(Duration::from_secs(10))
                .spawn(&topo.dir);
            let lag = returned.elapsed();
            if lag > Duration::from_secs(1) {
                problems.push(format!(
                    "HARNESS: the probe after reload {} started {} ms after the reload returned (> 1 s)",
                    i + 1,
                    lag.as_millis()
                ));
            }
            probes.push((i + 1, probe));
        }
    }
    let active_after = calls_active(&sbcd);
    if active_after < f64::from(CALLS) {
        problems.push(format!(
            "only {active_after} calls were up after the last reload ({} s after they started): \
             the {CALLS} calls must span every reload",
            reloads_start.elapsed().as_secs()
        ));
    }
    let forwarded_during = forwarded(&sbcd) - forwarded_before;
    if forwarded_during <= 0.0 {
        problems.push(format!(
            "sbc_rtp_packets_forwarded_total did not grow while the config was reloaded \
             ({forwarded_before} before the first reload): media stopped"
        ));
    }

    let pbx = pbx.wait();
    let carrier = carrier.wait_for(Duration::from_secs(10));
    let probes: Vec<(usize, SippRun)> = probes.into_iter().map(|(i, p)| (i, p.wait())).collect();
    let backup = backup.wait_for(Duration::from_secs(10));

    problems.extend(leg_checks(&pbx, &carrier, &Expect::default()));
    let to_carrier = initial_invites(&carrier);
    if to_carrier != CALLS as usize {
        problems.push(format!(
            "the carrier received {to_carrier} calls, expected exactly the {CALLS} load calls \
             (a probe that reached it means the routing did not follow a reload, or followed \
             an invalid or refused file)"
        ));
    }
    let to_backup = initial_invites(&backup);
    if to_backup != probes.len() {
        problems.push(format!(
            "the backup carrier received {to_backup} calls, expected the {} probes",
            probes.len()
        ));
    }
    problems.extend(sip_rules(&backup));
    for (step, probe) in &probes {
        if count_received(probe, "200") == 0 {
            problems.push(format!(
                "the probe after reload {step} was not answered (it must reach the backup carrier)"
            ));
        }
        problems.extend(b2bua(probe, &backup, &Expect::default()));
        problems.extend(sip_rules(probe));
    }

    match sbcd.metrics() {
        Ok(m) => {
            let now = reload_counts(&m);
            if now != expected {
                problems.push(format!(
                    "at the end, sbc_config_reloads_total is {}; the test did {}",
                    counts_text(now),
                    counts_text(expected)
                ));
            }
        }
        Err(e) => problems.push(e),
    }
    // The relay reports a call's counters within a tick of its end.
    let mut media = Err(String::new());
    util::wait_until(Duration::from_secs(5), || {
        media = media_of_every_call(&sbcd.log());
        media.is_ok()
    });
    match media {
        Ok(summary) => {
            eprintln!("media: {summary}; {forwarded_during} packets forwarded during the reloads")
        }
        Err(e) => problems.push(e),
    }

    let mut runs: Vec<&SippRun> = vec![&pbx, &carrier, &backup];
    runs.extend(probes.iter().map(|(_, p)| p));
    eprintln!(
        "reload_under_load_keeps_calls: {} s",
        test_start.elapsed().as_secs()
    );
    finish(
        &mut sbcd,
        &format!(
            "{CALLS} calls with RTP through sbcd while the config is reloaded {} times in {} s",
            steps.len(),
            steps.len()
        ),
        &runs,
        &problems,
    );
}

// === drain ===

/// `sip.shutdown_grace_secs` of the drain test: far longer than the call.
const GRACE_SECS: u64 = 30;

/// The delta-seconds of a `Retry-After` value (`120 (comment);duration=60`).
fn delta_seconds(value: &str) -> Option<u32> {
    value.split([';', '(']).next()?.trim().parse().ok()
}

/// SIGTERM during a call: `/health` turns 503, a new INVITE gets 503 with Retry-After, the call
/// goes on to its BYE (answered 200 through sbcd), and sbcd exits 0 soon after it ends, long
/// before the grace period.
#[test]
fn drain_keeps_running_call_and_exits_after_it() {
    let _serial = serial();
    let mut topo = Topology::new("drain", Options::default());
    topo.shutdown_grace_secs = Some(GRACE_SECS);
    let mut sbcd = Sbcd::start(&topo);
    let mut problems = Vec::new();
    match util::http_get(topo.admin, "/health") {
        Ok((200, _)) => {}
        Ok((code, body)) => problems.push(format!(
            "GET /health answered {code} {} before SIGTERM; expected 200",
            body.trim()
        )),
        Err(e) => problems.push(e),
    }

    let carrier = topo.carrier_uas("uas_basic.xml").spawn(&topo.dir);
    let pbx = topo
        .pbx_uac("uac_long.xml")
        .args(&["-d", "4000"])
        .spawn(&topo.dir);
    let up = util::wait_until(Duration::from_secs(5), || calls_active(&sbcd) >= 1.0);
    if !up {
        problems.push("the call was not up in sbcd (sbc_calls_active) within 5 s".to_owned());
    }
    // Past the answer and the ACK: the call is established when the drain starts.
    thread::sleep(Duration::from_millis(300));
    if let Err(e) = sbcd.signal("TERM") {
        panic!("cannot send SIGTERM to sbcd: {e}");
    }
    let term = Instant::now();

    let mut health = Err(String::new());
    let draining = util::wait_until(Duration::from_secs(2), || {
        health = util::http_get(topo.admin, "/health");
        matches!(health, Ok((503, _)))
    });
    if !draining {
        problems.push(format!(
            "GET /health still answered {} 2 s after SIGTERM; expected 503 while draining",
            match &health {
                Ok((code, body)) => format!("{code} {}", body.trim()),
                Err(e) => e.clone(),
            }
        ));
    }

    let late = pbx_caller(&topo, "late", "uac_503.xml")
        .spawn(&topo.dir)
        .wait();
    match late.received().find(|t| t.msg.status() == Some(503)) {
        Some(t) => match t.msg.header("retry-after") {
            Some(v) if delta_seconds(v).is_some() => {}
            Some(v) => problems.push(format!(
                "sbcd's 503 to the INVITE sent while draining has Retry-After {v:?}: \
                 expected delta-seconds (RFC 3261 §20.33)"
            )),
            None => problems.push(format!(
                "sbcd's 503 to the INVITE sent while draining has no Retry-After header:\n{}",
                t.raw
            )),
        },
        None => {
            problems.push("the INVITE sent while draining did not get 503 from sbcd".to_owned());
        }
    }

    let pbx = pbx.wait();
    let carrier = carrier.wait_for(Duration::from_secs(5));
    let call_ended = Instant::now();
    problems.extend(leg_checks(&pbx, &carrier, &Expect::default()));
    if initial_invites(&carrier) != 1 {
        problems.push(format!(
            "the carrier received {} calls; expected only the one running before SIGTERM",
            initial_invites(&carrier)
        ));
    }
    let bye_answered = pbx.received().any(|t| {
        t.msg.status() == Some(200) && t.msg.cseq().is_some_and(|(_, method)| method == "BYE")
    });
    if !bye_answered {
        problems.push("the PBX's BYE was not answered 200 through sbcd while draining".to_owned());
    }

    let exit_limit = Duration::from_secs(10);
    match sbcd.wait_exit(exit_limit) {
        Some(status) if status.success() => eprintln!(
            "drain: sbcd exited 0, {} ms after SIGTERM and {} ms after the call ended",
            term.elapsed().as_millis(),
            call_ended.elapsed().as_millis()
        ),
        Some(status) => problems.push(format!(
            "sbcd exited with {status} after the drain; expected status 0"
        )),
        None => problems.push(format!(
            "sbcd still runs {} s after its last call ended ({} s after SIGTERM, grace {GRACE_SECS} s): \
             a drained sbcd must exit once no call is left",
            exit_limit.as_secs(),
            term.elapsed().as_secs()
        )),
    }

    if let Some(report) = verdict(
        "SIGTERM during a call: /health 503, new INVITE 503 + Retry-After, the call completes, sbcd exits 0",
        &[&pbx, &carrier, &late],
        &problems,
    ) {
        panic!("{report}");
    }
}

// === the grace period runs out ===

/// A copy of `name` (a media-timeout scenario, which waits for sbcd's BYE) expecting the
/// shutdown `Reason` instead; returns its path.
fn expecting_shutdown_bye(topo: &Topology, name: &str) -> String {
    let text = read_lossy(&util::scenario(name));
    let want = "SIP;cause=408;text=.media timeout.";
    assert!(text.contains(want), "{name} no longer checks {want:?}");
    let path = topo.dir.file(&name.replace("media_timeout", "shutdown"));
    fs::write(
        &path,
        text.replace(want, "SIP;cause=503;text=.shutting down."),
    )
    .expect("write the scenario copy");
    path.display().to_string()
}

/// SIGTERM with a call that outlasts `shutdown_grace_secs`: when the grace period is over, sbcd
/// sends BYE on both legs with `Reason: SIP;cause=503;text="shutting down"`, both sides answer
/// 200, and sbcd exits 0 right after.
#[test]
fn drain_grace_over_hangs_up_both_legs() {
    const GRACE: u64 = 1;
    let _serial = serial();
    let mut topo = Topology::new("drain_grace_over", Options::default());
    topo.shutdown_grace_secs = Some(GRACE);
    let mut sbcd = Sbcd::start(&topo);
    let mut problems = Vec::new();
    let uac = expecting_shutdown_bye(&topo, "uac_media_timeout.xml");
    let uas = expecting_shutdown_bye(&topo, "uas_media_timeout.xml");
    let carrier = topo.carrier_uas(&uas).spawn(&topo.dir);
    let pbx = topo.pbx_uac(&uac).spawn(&topo.dir);
    if !util::wait_until(Duration::from_secs(5), || calls_active(&sbcd) >= 1.0) {
        problems.push("the call was not up in sbcd (sbc_calls_active) within 5 s".to_owned());
    }
    thread::sleep(Duration::from_millis(300));
    if let Err(e) = sbcd.signal("TERM") {
        panic!("cannot send SIGTERM to sbcd: {e}");
    }
    let term = Instant::now();
    let pbx = pbx.wait_for(Duration::from_secs(15));
    let carrier = carrier.wait_for(Duration::from_secs(15));
    problems.extend(leg_checks(&pbx, &carrier, &Expect::default()));
    match sbcd.wait_exit(Duration::from_secs(10)) {
        Some(status) if status.success() => {
            let after = term.elapsed();
            eprintln!(
                "grace over: sbcd exited 0, {} ms after SIGTERM",
                after.as_millis()
            );
            if after < Duration::from_secs(GRACE) {
                problems.push(format!(
                    "sbcd exited {} ms after SIGTERM, before the {GRACE} s grace period",
                    after.as_millis()
                ));
            }
        }
        Some(status) => problems.push(format!("sbcd exited with {status}; expected 0")),
        None => problems.push(format!(
            "sbcd still runs 10 s after the {GRACE} s grace period"
        )),
    }
    let log = sbcd.log();
    if !log.contains("grace period over: hanging up the calls still up") {
        problems.push("sbcd did not log that the grace period ended the call".to_owned());
    }
    if let Some(report) = verdict(
        "the grace period ends: BYE with Reason 503 on both legs, both answered, sbcd exits 0",
        &[&pbx, &carrier],
        &problems,
    ) {
        panic!("{report}");
    }
}

//! Running sbcd as operators do (issue 6): its metrics read by the real Prometheus tools, its
//! unit file read by systemd's own checker.
//!
//! `promtool check metrics` (Debian's prometheus package) lints `/metrics` after a call, and a
//! Prometheus server started here (own config, own storage, loopback, killed by pid) scrapes
//! sbcd every second until its HTTP API answers `sbc_calls_total` for the call.
//! `systemd-analyze verify` checks `systemd/sbcd.service` (a copy pointing at this build).

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::checks::Expect;
use crate::sbcd::{Options, Sbcd, Topology};
use crate::util::{self, free_port, serial};
use crate::{finish, leg_checks, run_call};

/// A Prometheus server of the test's, stopped (by pid) when dropped.
struct Prometheus {
    child: Child,
    api: SocketAddr,
    log: std::path::PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second; waits until it is ready.
    fn start(dir: &util::TestDir, target: SocketAddr) -> Result<Self, String> {
        let api = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            free_port(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        );
        let config = dir.file("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: sbcd\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log = dir.file("prometheus.log");
        let out = fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.file("prometheus-data").display()))
            .arg(format!("--web.listen-address={api}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                format!("cannot run prometheus ({e}): apt-get install prometheus (tests/run-all.sh does)")
            })?;
        let me = Self { child, api, log };
        let ready = util::wait_until(Duration::from_secs(20), || {
            matches!(util::http_get(me.api, "/-/ready"), Ok((200, _)))
        });
        if !ready {
            return Err(format!(
                "prometheus did not get ready in 20 s; its log:\n{}",
                util::tail(&util::read_lossy(&me.log), 30)
            ));
        }
        Ok(me)
    }

    /// The JSON answer of an instant query.
    fn query(&self, promql: &str) -> Result<String, String> {
        match util::http_get(self.api, &format!("/api/v1/query?query={promql}"))? {
            (200, body) => Ok(body),
            (code, body) => Err(format!("query {promql}: {code} {body}")),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        util::stop_child(&mut self.child, Duration::from_secs(5));
    }
}

/// `promtool check metrics` on `text`: its complaints, if any.
fn promtool(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run promtool ({e}): apt-get install prometheus"))?;
    child
        .stdin
        .take()
        .ok_or("promtool's stdin")?
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics: {}: {said}", out.status))
    }
}

#[test]
fn metrics_pass_promtool_and_prometheus_scrapes_them() {
    let _serial = serial();
    let topo = Topology::new("metrics_promtool_prometheus", Options::default());
    let mut sbcd = Sbcd::start(&topo);
    let prometheus = Prometheus::start(&topo.dir, topo.admin);
    let (pbx, carrier) = run_call(
        &topo.dir,
        topo.pbx_uac("uac_basic.xml"),
        vec![topo.carrier_uas("uas_basic.xml")],
    );
    let carrier = &carrier[0];
    let mut problems = leg_checks(&pbx, carrier, &Expect::default());
    match sbcd.metrics() {
        Ok(text) => {
            if let Err(e) = promtool(&text) {
                problems.push(e);
            }
            for (trunk, leg) in [("pbx", "inbound"), ("carrier", "outbound")] {
                let labels = [("trunk", trunk), ("leg", leg), ("result", "answered")];
                if util::metric(&text, "sbc_calls_total", &labels) != Some(1.0) {
                    problems.push(format!(
                        "sbc_calls_total{{trunk={trunk},leg={leg},result=answered}} is not 1 after one call"
                    ));
                }
            }
            // SIP messages by method, class, leg and direction: one call, answered.
            let at_least_one = |name: &str, labels: &[(&str, &str)]| {
                util::metric(&text, name, labels).is_some_and(|v| v >= 1.0)
            };
            for (method, leg, direction) in [
                ("INVITE", "inbound", "received"),
                ("INVITE", "outbound", "sent"),
                ("ACK", "inbound", "received"),
                ("ACK", "outbound", "sent"),
                ("BYE", "inbound", "received"),
                ("BYE", "outbound", "sent"),
            ] {
                let labels = [("method", method), ("leg", leg), ("direction", direction)];
                if !at_least_one("sbc_sip_requests_total", &labels) {
                    problems.push(format!("sbc_sip_requests_total{labels:?} is not counted"));
                }
            }
            for (method, leg, direction) in [
                ("INVITE", "outbound", "received"),
                ("INVITE", "inbound", "sent"),
                ("BYE", "outbound", "received"),
                ("BYE", "inbound", "sent"),
            ] {
                let labels = [
                    ("method", method),
                    ("class", "2xx"),
                    ("leg", leg),
                    ("direction", direction),
                ];
                if !at_least_one("sbc_sip_responses_total", &labels) {
                    problems.push(format!("sbc_sip_responses_total{labels:?} is not counted"));
                }
            }
            // The carrier never sends sbcd a request in this call.
            let carrier_invite = [
                ("method", "INVITE"),
                ("leg", "outbound"),
                ("direction", "received"),
            ];
            if util::metric(&text, "sbc_sip_requests_total", &carrier_invite).is_some() {
                problems.push(format!(
                    "sbc_sip_requests_total{carrier_invite:?} counted, but the carrier sent no INVITE"
                ));
            }
            if util::metric(
                &text,
                "sbc_call_setup_seconds_count",
                &[("trunk", "carrier")],
            ) != Some(1.0)
            {
                problems.push(
                    "sbc_call_setup_seconds_count{trunk=carrier} is not 1 after one answered call"
                        .to_owned(),
                );
            }
            for timer in ["B", "F", "H"] {
                if util::metric(&text, "sbc_transaction_timeouts_total", &[("timer", timer)])
                    != Some(0.0)
                {
                    problems.push(format!(
                        "sbc_transaction_timeouts_total{{timer={timer}}} is not 0 after a clean call"
                    ));
                }
            }
            for name in [
                "sbc_calls_active",
                "sbc_sip_messages_dropped_total",
                "sbc_trunk_auth_failures_total",
                "sbc_rtp_packets_forwarded_total",
                "sbc_rtp_sessions_active",
                "sbc_config_reloads_total",
                "sbc_media_ports_free",
                "sbc_build_info",
            ] {
                if !text.lines().any(|l| l.starts_with(name)) {
                    problems.push(format!("/metrics has no {name}"));
                }
            }
        }
        Err(e) => problems.push(e),
    }
    match prometheus {
        Ok(p) => {
            let mut last = String::new();
            let seen = util::wait_until(Duration::from_secs(30), || {
                last = p
                    .query("sbc_calls_total%7Bresult%3D%22answered%22%7D")
                    .unwrap_or_else(|e| e);
                last.contains("\"status\":\"success\"") && last.contains("\"trunk\":\"pbx\"")
            });
            if !seen {
                problems.push(format!(
                    "Prometheus scraping sbcd at {} never returned sbc_calls_total for the call in 30 s; \
                     last answer: {last}\nits log:\n{}",
                    topo.admin,
                    util::tail(&util::read_lossy(&p.log), 20)
                ));
            }
        }
        Err(e) => problems.push(e),
    }
    finish(
        &mut sbcd,
        "metrics: promtool accepts them, Prometheus scrapes sbc_calls_total after a call",
        &[&pbx, carrier],
        &problems,
    );
}

/// `systemd/sbcd.service` as systemd reads it: `systemd-analyze verify` finds nothing to say
/// about a copy whose binary and config paths point at this build and a test config (with the
/// commented `LoadCredential=` example switched on), and the unit's own `ExecStartPre` command
/// line accepts that config.
#[test]
fn systemd_unit_verifies_and_its_check_config_passes() {
    let Some(analyze) = util::find_program("systemd-analyze") else {
        panic!(
            "systemd-analyze not found: install Debian's systemd package (tests/run-all.sh does)"
        );
    };
    let topo = Topology::new("systemd_unit_verify", Options::default());
    let config = topo.write_config();
    let bin = crate::sbcd::sbcd_binary();
    let unit = fs::read_to_string(util::repo().join("systemd/sbcd.service"))
        .expect("read systemd/sbcd.service");
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "ExecStartPre=/usr/bin/sbcd check-config --config /etc/sbcd/sbcd.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RestartPreventExitStatus=78",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "LimitNOFILE=",
        "# LoadCredential=",
    ] {
        assert!(unit.contains(needed), "the unit lost {needed:?}");
    }
    let copy = unit
        .replace("/usr/bin/sbcd", &bin.display().to_string())
        .replace("/etc/sbcd/sbcd.toml", &config.display().to_string())
        .replace(
            "# LoadCredential=carrier-pw:/etc/sbcd/carrier.pw",
            &format!(
                "LoadCredential=carrier-pw:{}",
                topo.dir.file("carrier.pw").display()
            ),
        );
    assert!(copy.contains("\nLoadCredential=carrier-pw:"), "{copy}");
    fs::write(topo.dir.file("carrier.pw"), "pw\n").expect("write carrier.pw");
    let path = topo.dir.file("sbcd.service");
    fs::write(&path, &copy).expect("write the unit copy");
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {}: {}\n{said}",
        path.display(),
        out.status
    );

    // ExecStartPre, word for word as the unit has it.
    let pre = copy
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre="))
        .expect("ExecStartPre");
    let mut words = pre.split_whitespace();
    let out = Command::new(words.next().expect("a program"))
        .args(words)
        .output()
        .expect("run ExecStartPre");
    assert!(
        out.status.success(),
        "ExecStartPre `{pre}`: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

//! What `GET /status` answers, as JSON, and what `sbcd status` prints, as a table: version,
//! uptime, drain state, and per trunk its registration on behalf, its OPTIONS health and its
//! calls; then the media relay's sessions and free ports.
//!
//! Both come from one [`Snapshot`] of the counters the shards keep, so the two never disagree.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use sbc_config::Config;
use trunks::register::{Phase, Status as RegStatus};

use crate::shards::{ShardCounters, TrunkCalls, RESULTS};

/// A trunk's line.
#[derive(Debug)]
pub(crate) struct TrunkStatus {
    pub(crate) name: String,
    /// The registration on behalf, when the trunk has one.
    pub(crate) registration: Option<RegStatus>,
    /// OPTIONS probes: None when the trunk is not probed; Some(Ok(())) up; Some(Err(status))
    /// down with the deciding status (408: no answer).
    pub(crate) health: Option<Result<(), u16>>,
    pub(crate) calls: TrunkCalls,
}

/// Everything `/status` shows, read at one moment.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) version: &'static str,
    pub(crate) uptime: Duration,
    pub(crate) draining: bool,
    pub(crate) calls_active: usize,
    /// Trunks of the running config, in file order.
    pub(crate) trunks: Vec<TrunkStatus>,
    pub(crate) media_sessions: i64,
    pub(crate) media_ports_free: i64,
    /// When it was taken (for "next attempt in").
    pub(crate) at: Instant,
}

impl Snapshot {
    pub(crate) fn take(counters: &ShardCounters, config: &Config, started: Instant) -> Self {
        counters.refresh_metrics();
        let at = Instant::now();
        let trunks = config
            .trunks
            .iter()
            .map(|t| TrunkStatus {
                name: t.name.clone(),
                registration: counters
                    .registrations
                    .get(&t.name)
                    .map(|e| e.value().clone())
                    .filter(|_| t.outbound.register.is_some()),
                health: t.outbound.options_ping.map(|_| {
                    counters
                        .trunks_down
                        .get(&t.name)
                        .map_or(Ok(()), |e| Err(*e.value()))
                }),
                calls: counters
                    .trunk_calls
                    .get(&t.name)
                    .map(|e| e.value().clone())
                    .unwrap_or_default(),
            })
            .collect();
        Self {
            version: env!("CARGO_PKG_VERSION"),
            uptime: at.saturating_duration_since(started),
            draining: counters.draining.load(std::sync::atomic::Ordering::Relaxed),
            calls_active: counters.active_calls(),
            trunks,
            media_sessions: counters.metrics.rtp_components.get(),
            media_ports_free: counters.metrics.media_ports_free.get(),
            at,
        }
    }

    /// The JSON document of `GET /status`.
    pub(crate) fn json(&self) -> String {
        let mut out = String::with_capacity(512 + 256 * self.trunks.len());
        out.push_str("{\"version\":");
        json_str(&mut out, self.version);
        let _ = write!(
            out,
            ",\"uptime_secs\":{},\"draining\":{},\"calls_active\":{},\"media\":{{\"sessions\":{},\"ports_free\":{}}},\"trunks\":[",
            self.uptime.as_secs(),
            self.draining,
            self.calls_active,
            self.media_sessions,
            self.media_ports_free
        );
        for (i, t) in self.trunks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            json_str(&mut out, &t.name);
            out.push_str(",\"registration\":");
            match &t.registration {
                Some(r) => self.registration_json(&mut out, r),
                None => out.push_str("null"),
            }
            out.push_str(",\"health\":");
            match t.health {
                None => out.push_str("null"),
                Some(Ok(())) => out.push_str("{\"up\":true,\"last_status\":null}"),
                Some(Err(code)) => {
                    let _ = write!(out, "{{\"up\":false,\"last_status\":{code}}}");
                }
            }
            let _ = write!(out, ",\"calls\":{{\"active\":{}", t.calls.active);
            for (leg, totals) in [
                ("inbound", &t.calls.inbound),
                ("outbound", &t.calls.outbound),
            ] {
                let _ = write!(out, ",\"{leg}\":{{");
                for (j, (result, n)) in RESULTS.iter().zip(totals).enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "\"{result}\":{n}");
                }
                out.push('}');
            }
            out.push_str("}}");
        }
        out.push_str("]}\n");
        out
    }

    fn registration_json(&self, out: &mut String, st: &RegStatus) {
        out.push_str("{\"state\":");
        json_str(out, st.phase.as_str());
        let _ = write!(out, ",\"up\":{}", st.phase == Phase::Registered);
        match &st.last {
            Some((code, reason)) => {
                let _ = write!(out, ",\"last_status\":{code},\"last_reason\":");
                json_str(out, reason);
            }
            None => out.push_str(",\"last_status\":null,\"last_reason\":null"),
        }
        let _ = write!(out, ",\"failures\":{}", st.failures);
        match st.granted_secs {
            Some(g) => {
                let _ = write!(out, ",\"expires_secs\":{g}");
            }
            None => out.push_str(",\"expires_secs\":null"),
        }
        match st.next_attempt {
            Some(t) => {
                let _ = write!(
                    out,
                    ",\"next_attempt_in_secs\":{}",
                    t.saturating_duration_since(self.at).as_secs()
                );
            }
            None => out.push_str(",\"next_attempt_in_secs\":null"),
        }
        out.push_str(",\"registrar\":");
        match st.target {
            Some(a) => json_str(out, &a.to_string()),
            None => out.push_str("null"),
        }
        out.push('}');
    }

    /// The table `sbcd status` prints.
    pub(crate) fn table(&self) -> String {
        let mut out = String::with_capacity(256 + 96 * self.trunks.len());
        let _ = writeln!(
            out,
            "sbcd {}, up {}{}",
            self.version,
            human(self.uptime),
            if self.draining { ", DRAINING" } else { "" }
        );
        let _ = writeln!(
            out,
            "calls active {}; media sessions {}, ports free {}",
            self.calls_active, self.media_sessions, self.media_ports_free
        );
        out.push('\n');
        let rows: Vec<[String; 6]> = self
            .trunks
            .iter()
            .map(|t| {
                let sum = |totals: &[u64; RESULTS.len()]| totals.iter().sum::<u64>();
                [
                    t.name.clone(),
                    t.registration
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |r| self.registration_text(r)),
                    match t.health {
                        None => "-".to_owned(),
                        Some(Ok(())) => "up".to_owned(),
                        Some(Err(code)) => format!("down ({code})"),
                    },
                    t.calls.active.to_string(),
                    format!("{}/{}", t.calls.inbound[0], sum(&t.calls.inbound)),
                    format!("{}/{}", t.calls.outbound[0], sum(&t.calls.outbound)),
                ]
            })
            .collect();
        let header = [
            "TRUNK",
            "REGISTRATION",
            "HEALTH",
            "ACTIVE",
            "IN ANSWERED/ALL",
            "OUT ANSWERED/ALL",
        ];
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        let mut line = |cells: &[&str]| {
            let mut l = String::new();
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(c);
                } else {
                    let _ = write!(l, "{c:<w$}  ");
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&header);
        for r in &rows {
            line(&r.each_ref().map(String::as_str));
        }
        out
    }

    fn registration_text(&self, st: &RegStatus) -> String {
        let next = st
            .next_attempt
            .map(|t| human(t.saturating_duration_since(self.at)));
        match st.phase {
            Phase::Registered => format!(
                "up, expires {}s{}",
                st.granted_secs.unwrap_or(0),
                next.map_or(String::new(), |n| format!(", refresh in {n}"))
            ),
            Phase::Failing => {
                let last = st
                    .last
                    .as_ref()
                    .map_or_else(|| "no answer".to_owned(), |(c, r)| format!("{c} {r}"));
                format!(
                    "failing: {last}{}",
                    next.map_or(String::new(), |n| format!(", next in {n}"))
                )
            }
            phase => phase.as_str().to_owned(),
        }
    }
}

/// `3d4h`, `2h05m`, `4m10s`, `12s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `GET /status.txt` from the admin endpoint at `addr` (an unspecified address is asked on
/// loopback), for `sbcd status`.
pub(crate) fn fetch(addr: std::net::SocketAddr) -> Result<String, String> {
    use std::io::{Read as _, Write as _};
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let limit = Duration::from_secs(5);
    let mut s = std::net::TcpStream::connect_timeout(&addr, limit)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let io = |e: std::io::Error| format!("reading the status from {addr}: {e}");
    s.set_read_timeout(Some(limit)).map_err(io)?;
    s.write_all(b"GET /status.txt HTTP/1.1\r\nHost: sbcd\r\nConnection: close\r\n\r\n")
        .map_err(io)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr} answered something that is not HTTP"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200 ") {
        return Err(format!("{addr} answered {status:?}"));
    }
    Ok(body.to_owned())
}

/// A JSON string literal.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let at = Instant::now();
        Snapshot {
            version: "1.2.3",
            uptime: Duration::from_secs(3725),
            draining: false,
            calls_active: 2,
            trunks: vec![
                TrunkStatus {
                    name: "pbx".into(),
                    registration: None,
                    health: None,
                    calls: TrunkCalls {
                        active: 2,
                        inbound: [5, 1, 3, 2, 0, 0],
                        outbound: [0; 6],
                    },
                },
                TrunkStatus {
                    name: "carrier \"x\"".into(),
                    registration: Some(RegStatus {
                        phase: Phase::Failing,
                        last: Some((403, "Forbidden".into())),
                        granted_secs: None,
                        next_attempt: Some(at + Duration::from_secs(64)),
                        failures: 3,
                        target: None,
                    }),
                    health: Some(Err(408)),
                    calls: TrunkCalls {
                        active: 0,
                        inbound: [0; 6],
                        outbound: [5, 0, 0, 1, 0, 0],
                    },
                },
            ],
            media_sessions: 4,
            media_ports_free: 9996,
            at,
        }
    }

    #[test]
    fn json_has_every_field() {
        let j = snapshot().json();
        for part in [
            r#""version":"1.2.3","uptime_secs":3725,"draining":false,"calls_active":2"#,
            r#""media":{"sessions":4,"ports_free":9996}"#,
            r#"{"name":"pbx","registration":null,"health":null,"calls":{"active":2,"inbound":{"answered":5,"cancelled":1,"busy":3,"failed":2,"timeout":0,"media_timeout":0}"#,
            r#"{"name":"carrier \"x\"","registration":{"state":"failing","up":false,"last_status":403,"last_reason":"Forbidden","failures":3,"expires_secs":null,"next_attempt_in_secs":64,"registrar":null}"#,
            r#""health":{"up":false,"last_status":408}"#,
        ] {
            assert!(j.contains(part), "missing {part}\nin {j}");
        }
    }

    #[test]
    fn table_lines_up() {
        let t = snapshot().table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "sbcd 1.2.3, up 1h02m");
        assert_eq!(
            lines[1],
            "calls active 2; media sessions 4, ports free 9996"
        );
        assert!(lines[3].starts_with("TRUNK        REGISTRATION"), "{t}");
        assert!(lines[4].starts_with("pbx          -"), "{t}");
        let cells: Vec<&str> = lines[5]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            cells,
            [
                "carrier \"x\"",
                "failing: 403 Forbidden, next in 1m04s",
                "down (408)",
                "0",
                "0/0",
                "5/6"
            ],
            "{t}"
        );
    }
}

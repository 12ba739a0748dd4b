//! The admin HTTP endpoint on `admin.listen`: `GET /metrics` (Prometheus text format),
//! `GET /status` (JSON: registrations on behalf, trunks down), `GET /health`.
//!
//! HTTP/1.0-style: one request per connection, answered and closed. Requests are small
//! (8 KiB at most) and must arrive within 5 s; anything else is refused. Keep it off public
//! networks (it has no authentication).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};
use trunks::register::Phase;

use crate::shards::ShardCounters;

const MAX_REQUEST: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` and serves until the runtime stops; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    counters: Arc<ShardCounters>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let counters = Arc::clone(&counters);
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &counters).await {
                            debug!(%peer, error = %e, "admin request failed");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(bound)
}

async fn handle(mut stream: TcpStream, counters: &ShardCounters) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok::<_, std::io::Error>(Some(i));
            }
            if buf.len() > MAX_REQUEST {
                return Ok(None);
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .unwrap_or(Ok(None))?;
    let (status, ctype, body) = match head_end {
        None => ("400 Bad Request", "text/plain", b"bad request\n".to_vec()),
        Some(end) => {
            let head = String::from_utf8_lossy(&buf[..end]);
            let mut words = head.split_ascii_whitespace();
            match (words.next(), words.next()) {
                (Some("GET"), Some("/metrics")) => {
                    counters.refresh_metrics();
                    (
                        "200 OK",
                        "text/plain; version=0.0.4",
                        counters.metrics.render(),
                    )
                }
                (Some("GET"), Some("/status")) => (
                    "200 OK",
                    "application/json",
                    status_json(counters).into_bytes(),
                ),
                (Some("GET"), Some("/health")) => ("200 OK", "text/plain", b"ok\n".to_vec()),
                (Some("GET"), _) => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain",
                    b"method not allowed\n".to_vec(),
                ),
            }
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

/// A JSON string literal.
fn json_str(out: &mut String, s: &str) {
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

/// `{"registrations": [...], "trunks_down": [...]}`.
fn status_json(counters: &ShardCounters) -> String {
    let now = Instant::now();
    let mut regs: Vec<_> = counters
        .registrations
        .iter()
        .map(|e| (e.key().clone(), e.value().clone()))
        .collect();
    regs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("{\"registrations\":[");
    for (i, (trunk, st)) in regs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"trunk\":");
        json_str(&mut out, trunk);
        out.push_str(",\"state\":");
        json_str(&mut out, st.phase.as_str());
        let _ = write!(out, ",\"up\":{}", st.phase == Phase::Registered);
        match &st.last {
            Some((code, reason)) => {
                let _ = write!(out, ",\"last_status\":{code},\"last_reason\":");
                json_str(&mut out, reason);
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
                    t.saturating_duration_since(now).as_secs()
                );
            }
            None => out.push_str(",\"next_attempt_in_secs\":null"),
        }
        out.push_str(",\"registrar\":");
        match st.target {
            Some(a) => json_str(&mut out, &a.to_string()),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    out.push_str("],\"trunks_down\":[");
    let mut down: Vec<(String, u16)> = counters
        .trunks_down
        .iter()
        .map(|e| (e.key().clone(), *e.value()))
        .collect();
    down.sort();
    for (i, (trunk, status)) in down.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"trunk\":");
        json_str(&mut out, trunk);
        let _ = write!(out, ",\"last_status\":{status}}}");
    }
    out.push_str("]}\n");
    out
}

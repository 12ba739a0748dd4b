//! The admin HTTP endpoint on `admin.listen`: `GET /metrics` (Prometheus text format),
//! `GET /status` (JSON) and `GET /status.txt` (the table `sbcd status` prints), `GET /health`
//! (200 while serving, 503 while draining), `POST /reload` (reloads the config file; answers
//! once the new config is in use, or why it was not applied).
//!
//! HTTP/1.0-style: one request per connection, answered and closed. Requests are small
//! (8 KiB at most) and must arrive within 5 s; anything else is refused. Keep it off public
//! networks (it has no authentication).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sbc_config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use crate::daemon::ReloadOutcome;
use crate::shards::ShardCounters;
use crate::status::{json_str, Snapshot};

const MAX_REQUEST: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the endpoint reads and asks.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) counters: Arc<ShardCounters>,
    /// The running config (its trunks, for /status).
    pub(crate) config: watch::Receiver<Arc<Config>>,
    /// Asks the daemon to reload; the answer comes back on the oneshot.
    pub(crate) reload: mpsc::Sender<oneshot::Sender<ReloadOutcome>>,
    pub(crate) started: Instant,
}

/// Binds `addr` and serves until the runtime stops; returns the bound address.
pub(crate) async fn serve(addr: SocketAddr, state: State) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &state).await {
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

type Reply = (&'static str, &'static str, Vec<u8>);

async fn handle(mut stream: TcpStream, state: &State) -> std::io::Result<()> {
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
    let (status, ctype, body): Reply = match head_end {
        None => ("400 Bad Request", "text/plain", b"bad request\n".to_vec()),
        Some(end) => {
            let head = String::from_utf8_lossy(&buf[..end]);
            let mut words = head.split_ascii_whitespace();
            route(state, words.next(), words.next()).await
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

async fn route(state: &State, method: Option<&str>, path: Option<&str>) -> Reply {
    let counters = &state.counters;
    match (method, path) {
        (Some("GET"), Some("/metrics")) => {
            counters.refresh_metrics();
            (
                "200 OK",
                "text/plain; version=0.0.4",
                counters.metrics.render(),
            )
        }
        (Some("GET"), Some("/status")) => {
            let config = Arc::clone(&state.config.borrow());
            let snap = Snapshot::take(counters, &config, state.started);
            ("200 OK", "application/json", snap.json().into_bytes())
        }
        (Some("GET"), Some("/status.txt")) => {
            let config = Arc::clone(&state.config.borrow());
            let snap = Snapshot::take(counters, &config, state.started);
            (
                "200 OK",
                "text/plain; charset=utf-8",
                snap.table().into_bytes(),
            )
        }
        (Some("GET"), Some("/health")) => {
            if counters.draining.load(Ordering::Relaxed) {
                (
                    "503 Service Unavailable",
                    "text/plain",
                    b"draining\n".to_vec(),
                )
            } else {
                ("200 OK", "text/plain", b"ok\n".to_vec())
            }
        }
        (Some("POST"), Some("/reload")) => reload(state).await,
        (
            Some("GET" | "POST"),
            Some("/metrics" | "/status" | "/status.txt" | "/health" | "/reload"),
        ) => (
            "405 Method Not Allowed",
            "text/plain",
            b"method not allowed\n".to_vec(),
        ),
        (Some("GET" | "POST"), _) => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            b"method not allowed\n".to_vec(),
        ),
    }
}

/// `POST /reload`: 200 applied, 422 invalid file (every error), 409 restart-only keys changed,
/// 500 sbcd could not finish, 503 the daemon is stopping.
async fn reload(state: &State) -> Reply {
    let (tx, rx) = oneshot::channel();
    let outcome = match state.reload.send(tx).await {
        Ok(()) => rx.await.ok(),
        Err(_) => None,
    };
    let Some(outcome) = outcome else {
        return (
            "503 Service Unavailable",
            "application/json",
            b"{\"result\":\"unavailable\",\"error\":\"sbcd is stopping\"}\n".to_vec(),
        );
    };
    let mut body = String::from("{\"result\":");
    json_str(&mut body, outcome.label());
    let list = |body: &mut String, key: &str, items: &[String]| {
        let _ = write!(body, ",\"{key}\":[");
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            json_str(body, e);
        }
        body.push(']');
    };
    let status = match &outcome {
        ReloadOutcome::Ok { trunks, routes } => {
            let _ = write!(body, ",\"trunks\":{trunks},\"routes\":{routes}");
            "200 OK"
        }
        ReloadOutcome::Invalid(errors) => {
            list(&mut body, "errors", errors);
            "422 Unprocessable Entity"
        }
        ReloadOutcome::Refused(keys) => {
            list(&mut body, "restart_required", keys);
            "409 Conflict"
        }
        ReloadOutcome::Failed(why) => {
            body.push_str(",\"errors\":[");
            json_str(&mut body, why);
            body.push(']');
            "500 Internal Server Error"
        }
    };
    body.push_str("}\n");
    (status, "application/json", body.into_bytes())
}

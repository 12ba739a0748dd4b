//! Shared plumbing: the serial lock, per-test directories, free ports, bounded waits, killing a
//! child by its pid.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read as _};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The called number every scenario uses (`-s`).
pub(crate) const CALLED: &str = "12125551234";

/// End-to-end tests run one at a time: SIPp timing on a loaded 2-core machine is flaky enough
/// without several calls racing for the CPU.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The repository root (the root package owns tests/).
pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn scenario(name: &str) -> PathBuf {
    repo().join("tests/sipp").join(name)
}

/// A directory for one test's configs and logs, under target/tmp. Emptied when created; kept
/// after the test (its path is printed on failure) so the logs can be read.
#[derive(Debug)]
pub(crate) struct TestDir {
    pub(crate) path: PathBuf,
}

impl TestDir {
    pub(crate) fn new(test: &str) -> Self {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("e2e")
            .join(format!("{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self { path }
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("e2e: logs and configs kept in {}", self.path.display());
        } else if std::env::var_os("SBCD_E2E_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A port that is free for both UDP and TCP on `ip`, never handed out twice by this process.
pub(crate) fn free_port(ip: IpAddr) -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..200 {
        let Ok(udp) = UdpSocket::bind(SocketAddr::new(ip, 0)) else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        // SIPp and sbcd use the same port for UDP and TCP; sbcd's media pool sits below 30000.
        if port < 30000 || TcpListener::bind(SocketAddr::new(ip, port)).is_err() {
            continue;
        }
        let mut given = given.lock().unwrap_or_else(|p| p.into_inner());
        if given.insert(port) {
            return port;
        }
    }
    panic!("no free UDP+TCP port on {ip} after 200 tries");
}

/// Whether something (SIPp, Kamailio) has bound `addr` for `udp` or listens on it for `tcp`.
pub(crate) fn is_bound(addr: SocketAddr, tcp: bool) -> bool {
    let result = if tcp {
        TcpListener::bind(addr).map(drop)
    } else {
        UdpSocket::bind(addr).map(drop)
    };
    matches!(result, Err(e) if e.kind() == io::ErrorKind::AddrInUse)
}

/// Polls `ready` every 20 ms until it holds or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` at most `timeout`; `None` if it is still running.
pub(crate) fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Stops a child we started: SIGTERM by pid, up to `grace`, then SIGKILL. Never by name.
pub(crate) fn stop_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Some(status) = wait_child(child, grace) {
        return Some(status);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// The file's content, lossily decoded; empty if it does not exist.
pub(crate) fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    let mut out = String::new();
    if from > 0 {
        out.push_str(&format!("[... {from} earlier lines]\n"));
    }
    for line in &all[from..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `path` to `PATH`-style lookup, with the sbin directories Debian puts daemons in.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `ip:port` as written in SIP (IPv6 in brackets).
pub(crate) fn host_port(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    }
}

/// `GET path` over HTTP/1.0 from the admin listener at `addr`: the status code and the body.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    http_exchange(
        addr,
        &request,
        &format!("GET {path}"),
        Duration::from_secs(2),
    )
}

/// `POST path` (HTTP/1.1, empty body) to the admin listener at `addr`: the status code and the
/// body. Waits up to 10 s for the answer (`POST /reload` answers once the config is applied).
pub(crate) fn http_post(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    http_exchange(
        addr,
        &request,
        &format!("POST {path}"),
        Duration::from_secs(10),
    )
}

/// Sends `request` on a new connection and reads the answer until the server closes it.
fn http_exchange(
    addr: SocketAddr,
    request: &str,
    what: &str,
    limit: Duration,
) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect to the admin listener {addr}: {e}"))?;
    conn.set_read_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    conn.write_all(request.as_bytes())
        .map_err(|e| format!("{what} to {addr}: {e}"))?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)
        .map_err(|e| format!("{what} to {addr}: reading: {e}"))?;
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{what} to {addr}: no status line in {reply:?}"))?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_owned()))
}

/// The value of the Prometheus sample `name` whose labels include every `labels` pair.
pub(crate) fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (set, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| set.split(',').any(|p| p == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

//! The systemd notification protocol (sd_notify(3)), without libsystemd: one datagram of
//! `KEY=VALUE` lines to the `AF_UNIX` socket named by `$NOTIFY_SOCKET` (a path, or `@name` for
//! the abstract namespace). Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing.
//!
//! sbcd says `READY=1` once its listeners are bound and the shards run, `RELOADING=1` (with
//! `MONOTONIC_USEC`, as `Type=notify-reload` expects) then `READY=1` around a reload, and
//! `STOPPING=1` when it starts to drain.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use tracing::debug;

/// Where notifications go, if systemd asked for them.
#[derive(Debug)]
pub(crate) struct Notifier {
    sock: UnixDatagram,
    to: SocketAddr,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; None when it is unset or unusable (logged at debug).
    pub(crate) fn from_env() -> Option<Self> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        let name = name.to_str()?;
        let to = match name.strip_prefix('@') {
            Some(abs) => SocketAddr::from_abstract_name(abs.as_bytes()),
            None if name.starts_with('/') => SocketAddr::from_pathname(name),
            None => {
                debug!(
                    notify_socket = name,
                    "NOTIFY_SOCKET is neither a path nor @name"
                );
                return None;
            }
        };
        let to = to
            .map_err(|e| debug!(notify_socket = name, error = %e, "NOTIFY_SOCKET unusable"))
            .ok()?;
        let sock = UnixDatagram::unbound()
            .map_err(|e| debug!(error = %e, "no socket for sd_notify"))
            .ok()?;
        Some(Self { sock, to })
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines). A failure is logged, never fatal:
    /// systemd will notice the missing READY or WATCHDOG itself.
    pub(crate) fn send(&self, state: &str) {
        if let Err(e) = self.sock.send_to_addr(state.as_bytes(), &self.to) {
            debug!(error = %e, state, "sd_notify failed");
        }
    }

    /// `READY=1` with a status line.
    pub(crate) fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// `RELOADING=1` with the monotonic time, before a reload.
    pub(crate) fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the config",
            monotonic_usec()
        ));
    }

    /// `WATCHDOG=1`: every shard and media worker made progress lately.
    pub(crate) fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// `STOPPING=1` when the drain starts.
    pub(crate) fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining: new calls get 503");
    }
}

/// `CLOCK_MONOTONIC` in microseconds (what `MONOTONIC_USEC` is measured in).
#[allow(unsafe_code)]
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000
        + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_time_moves_forward_in_microseconds() {
        let a = monotonic_usec();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = monotonic_usec();
        assert!(b >= a + 4_000 && b < a + 5_000_000, "{a} -> {b}");
    }
}

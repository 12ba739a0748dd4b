//! systemd's watchdog (`WatchdogSec=` in the unit): `WATCHDOG=1` is sent only while every
//! signalling shard and every media worker makes progress, so a stuck shard or forwarding
//! thread gets sbcd restarted instead of leaving a process that answers nothing.
//!
//! Each part bumps a heartbeat counter: a shard once per pass of its loop (the daemon sends it
//! a no-op input every check, so an idle shard passes too), a media worker once per
//! housekeeping pass (about once a second, idle or not). [`Progress`] remembers when each
//! counter last moved; the daemon pings systemd at every check at which none has been still
//! for longer than the stall limit.

use std::time::{Duration, Instant};

/// The watchdog systemd asked for: `WATCHDOG_USEC` (and `WATCHDOG_PID`, when set, must be
/// this process).
pub(crate) fn interval_from_env() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_str()?.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// How often the daemon checks and pings, and how long a part may stand still, for a
/// watchdog interval: checks at a quarter of it (systemd's advice is at least twice per
/// interval); a stall is a part still for half of it, but never less than 3 s, because media
/// workers beat once a second.
pub(crate) fn timing(interval: Duration) -> (Duration, Duration) {
    let check = (interval / 4).max(Duration::from_millis(50));
    let stall = (interval / 2).max(Duration::from_secs(3));
    (check, stall)
}

/// When each heartbeat last moved.
#[derive(Debug)]
pub(crate) struct Progress {
    stall: Duration,
    /// (last value seen, when it last changed), per part.
    parts: Vec<(u64, Instant)>,
}

impl Progress {
    /// For `parts` heartbeats that may stand still for `stall` at most.
    pub(crate) fn new(parts: usize, stall: Duration, now: Instant) -> Self {
        Self {
            stall,
            parts: vec![(0, now); parts],
        }
    }

    /// Takes the heartbeats read at `now` (in the order given to [`new`](Self::new)); returns
    /// the parts that stood still for longer than the stall limit (empty: all healthy).
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        beats: impl IntoIterator<Item = u64>,
    ) -> Vec<usize> {
        for ((last, at), beat) in self.parts.iter_mut().zip(beats) {
            if beat != *last {
                *last = beat;
                *at = now;
            }
        }
        self.parts
            .iter()
            .enumerate()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) > self.stall)
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_that_stops_beating_is_reported_after_the_stall_limit() {
        let t0 = Instant::now();
        let s = |n| Duration::from_secs(n);
        let mut p = Progress::new(3, s(3), t0);
        assert!(p.observe(t0 + s(1), [1, 1, 1]).is_empty());
        assert!(p.observe(t0 + s(2), [2, 2, 1]).is_empty());
        // Part 2 last moved at 1 s: still within 3 s at 4 s, stalled at 5 s.
        assert!(p.observe(t0 + s(4), [3, 3, 1]).is_empty());
        assert_eq!(p.observe(t0 + s(5), [4, 4, 1]), [2]);
        // It moves again: healthy again.
        assert!(p.observe(t0 + s(6), [5, 5, 2]).is_empty());
        // Everything stuck.
        assert_eq!(p.observe(t0 + s(10), [5, 5, 2]), [0, 1, 2]);
    }

    #[test]
    fn timing_checks_often_enough_and_tolerates_the_media_beat() {
        assert_eq!(
            timing(Duration::from_secs(30)),
            (Duration::from_millis(7500), Duration::from_secs(15))
        );
        assert_eq!(
            timing(Duration::from_secs(2)),
            (Duration::from_millis(500), Duration::from_secs(3))
        );
    }
}

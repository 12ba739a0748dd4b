//! Timers as data (RFC 3261 §17, Table 4 in Appendix A): a table of deadlines, no tasks.

use std::time::{Duration, Instant};

/// The base timer values (RFC 3261 §17.1.1.1, Appendix A). Defaults are the RFC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate; 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses; 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network; 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// The timers of RFC 3261 §17 and RFC 6026 (L, M).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// INVITE request retransmit (client).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait time for response retransmits (client INVITE).
    D,
    /// Non-INVITE request retransmit (client).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE response retransmit (server).
    G,
    /// Wait time for ACK receipt (server INVITE).
    H,
    /// Wait time for ACK retransmits (server INVITE).
    I,
    /// Wait time for non-INVITE request retransmits (server).
    J,
    /// Wait time for response retransmits (client non-INVITE).
    K,
    /// Wait time for accepted INVITE request retransmits (server, RFC 6026).
    L,
    /// Wait time for retransmission of 2xx to INVITE (client, RFC 6026).
    M,
}

const COUNT: usize = 12;

impl Timer {
    const fn index(self) -> usize {
        self as usize
    }

    const ALL: [Self; COUNT] = [
        Self::A,
        Self::B,
        Self::D,
        Self::E,
        Self::F,
        Self::G,
        Self::H,
        Self::I,
        Self::J,
        Self::K,
        Self::L,
        Self::M,
    ];
}

/// One deadline per timer; the transaction's next wake-up is the earliest.
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    at: [Option<Instant>; COUNT],
}

impl TimerTable {
    /// Arms `timer` to fire at `at` (re-arming replaces the old deadline).
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.at[timer.index()] = None;
    }

    /// Disarms every timer.
    pub fn clear(&mut self) {
        self.at = [None; COUNT];
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// Disarms and returns the earliest timer due at `now`, if any. Call repeatedly until `None`.
    pub fn expire(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = Timer::ALL
            .iter()
            .filter_map(|&t| self.at[t.index()].map(|at| (t, at)))
            .filter(|&(_, at)| at <= now)
            .min_by_key(|&(_, at)| at)?;
        self.stop(timer);
        Some(timer)
    }
}

//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6): BYE, OPTIONS, REGISTER,
//! CANCEL, INFO, UPDATE, PRACK… sent by sbcd.
//!
//! ```text
//!            start: Transmit, arm E (unreliable) and F
//!   Trying --1xx--> Proceeding --200-699--> Completed --K--> Terminated
//!     |  \____________200-699___________/^                      ^
//!     +--F or transport error-------------------------------------+
//! ```

use std::time::{Duration, Instant};

use crate::machine::Machine;
use crate::timer::{Timer, Timers};
use crate::{Output, Reliability};

/// The states of Figure 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Request sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing its retransmissions until Timer K.
    Completed,
    /// Over.
    Terminated,
}

/// A non-INVITE client transaction. See the crate docs for the driving contract.
#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientState,
    timers: Timers,
    reliability: Reliability,
    m: Machine,
    /// The interval Timer E was last armed with (doubles up to T2, §17.1.2.2).
    interval_e: Duration,
}

impl ClientNonInvite {
    /// Starts the transaction at `now`: the request is to be sent at once ([`Output::Transmit`]).
    pub fn new(now: Instant, timers: Timers, reliability: Reliability) -> Self {
        let mut tx = Self {
            state: ClientState::Trying,
            timers,
            reliability,
            m: Machine::default(),
            interval_e: timers.t1,
        };
        tx.m.out.push(Output::Transmit);
        if reliability == Reliability::Unreliable {
            tx.m.table.set(Timer::E, now + timers.t1);
        }
        tx.m.table.set(Timer::F, now + 64 * timers.t1);
        tx
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// A response matched to this transaction (§17.1.3) arrived with this status code.
    pub fn handle_response(&mut self, now: Instant, code: u16) {
        match (self.state, code) {
            (ClientState::Trying | ClientState::Proceeding, 100..=199) => {
                self.state = ClientState::Proceeding;
                self.m.out.push(Output::Response(code));
            }
            (ClientState::Trying | ClientState::Proceeding, 200..=699) => {
                self.state = ClientState::Completed;
                self.m.table.clear();
                self.m.out.push(Output::Response(code));
                match self.reliability {
                    // Timer K = T4 for unreliable transports, zero for reliable ones.
                    Reliability::Unreliable => self.m.table.set(Timer::K, now + self.timers.t4),
                    Reliability::Reliable => self.terminate(),
                }
            }
            // Retransmitted responses in Completed, and anything after Terminated, are absorbed.
            _ => {}
        }
    }

    /// The transport failed to send the request (§17.1.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if matches!(self.state, ClientState::Trying | ClientState::Proceeding) {
            self.m.out.push(Output::TransportError);
            self.terminate();
        }
    }

    /// Time has come to `now`: fire every timer due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.m.table.expire(now) {
            match timer {
                Timer::E => {
                    self.m.out.push(Output::Transmit);
                    // Trying: double up to T2. Proceeding: always T2 (§17.1.2.2).
                    self.interval_e = match self.state {
                        ClientState::Proceeding => self.timers.t2,
                        _ => (self.interval_e * 2).min(self.timers.t2),
                    };
                    self.m.table.set(Timer::E, now + self.interval_e);
                }
                Timer::F => {
                    self.m.out.push(Output::TimedOut);
                    self.terminate();
                }
                Timer::K => self.terminate(),
                _ => {}
            }
        }
    }

    /// The next output, if any. Drain after every `handle_*` call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.m.poll_output()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.m.poll_timeout()
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.m.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timers = Timers {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        t4: Duration::from_secs(5),
    };

    /// Drains outputs, counting transmissions; returns the non-Transmit outputs in order.
    fn drain(
        tx: &mut ClientNonInvite,
        sends: &mut Vec<Duration>,
        now: Instant,
        start: Instant,
    ) -> Vec<Output> {
        let mut rest = Vec::new();
        while let Some(o) = tx.poll_output() {
            match o {
                Output::Transmit => sends.push(now - start),
                other => rest.push(other),
            }
        }
        rest
    }

    #[test]
    fn timer_f_fires_after_64_t1_with_eleven_sends_on_udp() {
        let start = Instant::now();
        let mut tx = ClientNonInvite::new(start, T, Reliability::Unreliable);
        let mut sends = Vec::new();
        let mut now = start;
        loop {
            let outs = drain(&mut tx, &mut sends, now, start);
            if outs.contains(&Output::TimedOut) {
                assert_eq!(outs, vec![Output::TimedOut, Output::Terminated]);
                break;
            }
            now = tx.poll_timeout().expect("E or F armed");
            tx.handle_timeout(now);
        }
        assert_eq!(now - start, 64 * T.t1);
        let ms: Vec<u128> = sends.iter().map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(tx.state(), ClientState::Terminated);
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn reliable_transport_sends_once_and_terminates_on_final() {
        let start = Instant::now();
        let mut tx = ClientNonInvite::new(start, T, Reliability::Reliable);
        let mut sends = Vec::new();
        assert!(drain(&mut tx, &mut sends, start, start).is_empty());
        assert_eq!(
            tx.poll_timeout(),
            Some(start + 64 * T.t1),
            "only F is armed"
        );
        tx.handle_response(start + Duration::from_millis(80), 200);
        assert_eq!(
            drain(&mut tx, &mut sends, start, start),
            vec![Output::Response(200), Output::Terminated]
        );
        assert_eq!(sends.len(), 1);
        assert_eq!(
            tx.poll_timeout(),
            None,
            "Timer K is zero on reliable transports"
        );
    }

    #[test]
    fn provisional_moves_e_to_t2_and_final_absorbs_retransmissions_until_k() {
        let start = Instant::now();
        let mut tx = ClientNonInvite::new(start, T, Reliability::Unreliable);
        let mut sends = Vec::new();
        drain(&mut tx, &mut sends, start, start);
        let at = start + Duration::from_millis(100);
        tx.handle_response(at, 100);
        assert_eq!(
            drain(&mut tx, &mut sends, at, start),
            vec![Output::Response(100)]
        );
        assert_eq!(tx.state(), ClientState::Proceeding);
        // E still fires at T1, then every T2 in Proceeding.
        let e1 = tx.poll_timeout().unwrap();
        assert_eq!(e1 - start, T.t1);
        tx.handle_timeout(e1);
        drain(&mut tx, &mut sends, e1, start);
        assert_eq!(tx.poll_timeout().unwrap() - e1, T.t2);

        let fin = e1 + Duration::from_millis(200);
        tx.handle_response(fin, 486);
        assert_eq!(
            drain(&mut tx, &mut sends, fin, start),
            vec![Output::Response(486)]
        );
        assert_eq!(tx.state(), ClientState::Completed);
        tx.handle_response(fin + Duration::from_millis(10), 486);
        assert!(
            drain(&mut tx, &mut sends, fin, start).is_empty(),
            "retransmitted final absorbed"
        );
        let k = tx.poll_timeout().unwrap();
        assert_eq!(k - fin, T.t4);
        tx.handle_timeout(k);
        assert_eq!(
            drain(&mut tx, &mut sends, k, start),
            vec![Output::Terminated]
        );
        assert_eq!(sends.len(), 2);
    }

    #[test]
    fn transport_error_terminates_with_an_error() {
        let start = Instant::now();
        let mut tx = ClientNonInvite::new(start, T, Reliability::Unreliable);
        let mut sends = Vec::new();
        drain(&mut tx, &mut sends, start, start);
        tx.handle_transport_error(start);
        assert_eq!(
            drain(&mut tx, &mut sends, start, start),
            vec![Output::TransportError, Output::Terminated]
        );
        assert_eq!(tx.poll_timeout(), None);
        tx.handle_response(start, 200);
        assert!(
            drain(&mut tx, &mut sends, start, start).is_empty(),
            "nothing after Terminated"
        );
    }

    proptest::proptest! {
        /// Retransmit intervals never shrink and never exceed T2, for any T1 <= T2 and any
        /// moment a provisional response arrives.
        #[test]
        fn retransmit_intervals_are_monotonic_and_capped(
            t1_ms in 1u64..2000,
            t2_extra_ms in 0u64..8000,
            provisional_after_ms in proptest::option::of(0u64..40_000),
        ) {
            let timers = Timers {
                t1: Duration::from_millis(t1_ms),
                t2: Duration::from_millis(t1_ms + t2_extra_ms),
                t4: Duration::from_secs(5),
            };
            let start = Instant::now();
            let mut tx = ClientNonInvite::new(start, timers, Reliability::Unreliable);
            let mut sends = Vec::new();
            let mut provisional = provisional_after_ms.map(|ms| start + Duration::from_millis(ms));
            let mut now = start;
            for _ in 0..10_000 {
                let outs = drain(&mut tx, &mut sends, now, start);
                if outs.contains(&Output::Terminated) {
                    break;
                }
                let Some(next) = tx.poll_timeout() else { break };
                if let Some(p) = provisional.filter(|&p| p < next) {
                    now = p;
                    tx.handle_response(now, 180);
                    provisional = None;
                    continue;
                }
                now = next;
                tx.handle_timeout(now);
            }
            proptest::prop_assert_eq!(now - start, 64 * timers.t1, "ends at Timer F");
            let gaps: Vec<Duration> = sends.windows(2).map(|w| w[1] - w[0]).collect();
            for w in gaps.windows(2) {
                proptest::prop_assert!(w[0] <= w[1], "intervals never shrink: {:?}", gaps);
            }
            for g in &gaps {
                proptest::prop_assert!(*g <= timers.t2, "interval {:?} above T2", g);
            }
        }
    }
}

//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as updated by RFC 6026 §7.2).
//!
//! ```text
//!            start: Transmit, arm A (unreliable) and B
//!   Calling --1xx--> Proceeding --300-699 (Ack)--> Completed --D--> Terminated
//!     |  \--2xx-----------+--2xx--> Accepted --M--> Terminated
//!     +--B or transport error--> Terminated
//! ```
//! In Accepted every further 2xx (retransmission or another fork) goes up to the TU, which
//! ACKs each end to end; the transaction never ACKs a 2xx itself (RFC 6026 §8.4).

use std::time::{Duration, Instant};

use crate::machine::Machine;
use crate::timer::{Timer, Timers};
use crate::{Output, Reliability};

/// How long Completed absorbs retransmitted non-2xx finals on unreliable transports: Timer D,
/// "> 32 s" (§17.1.1.2).
const TIMER_D_UNRELIABLE: Duration = Duration::from_secs(32);

/// The states of Figure 5 (RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing heard.
    Calling,
    /// A provisional response arrived; no more retransmissions.
    Proceeding,
    /// A 2xx arrived; later 2xx go up to the TU until Timer M.
    Accepted,
    /// A 300-699 arrived and was ACKed; retransmissions are ACKed again until Timer D.
    Completed,
    /// Over.
    Terminated,
}

/// An INVITE client transaction. See the crate docs for the driving contract.
#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    timers: Timers,
    reliability: Reliability,
    m: Machine,
    /// The interval Timer A was last armed with (doubles without cap, §17.1.1.2).
    interval_a: Duration,
}

impl ClientInvite {
    /// Starts the transaction at `now`: the INVITE is to be sent at once ([`Output::Transmit`]).
    pub fn new(now: Instant, timers: Timers, reliability: Reliability) -> Self {
        let mut tx = Self {
            state: ClientInviteState::Calling,
            timers,
            reliability,
            m: Machine::default(),
            interval_a: timers.t1,
        };
        tx.m.out.push(Output::Transmit);
        if reliability == Reliability::Unreliable {
            tx.m.table.set(Timer::A, now + timers.t1);
        }
        tx.m.table.set(Timer::B, now + 64 * timers.t1);
        tx
    }

    /// The current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// A response matched to this transaction arrived with this status code.
    pub fn handle_response(&mut self, now: Instant, code: u16) {
        use ClientInviteState as S;
        match (self.state, code) {
            (S::Calling | S::Proceeding, 100..=199) => {
                self.state = S::Proceeding;
                // No more retransmissions, and Timer B only guards Calling (§17.1.1.2); the TU
                // bounds how long it waits for an answer.
                self.m.table.stop(Timer::A);
                self.m.table.stop(Timer::B);
                self.m.out.push(Output::Response(code));
            }
            (S::Calling | S::Proceeding, 200..=299) => {
                self.state = S::Accepted;
                self.m.table.clear();
                self.m.table.set(Timer::M, now + 64 * self.timers.t1);
                self.m.out.push(Output::Response(code));
            }
            (S::Accepted, 200..=299) => self.m.out.push(Output::Response(code)),
            (S::Calling | S::Proceeding, 300..=699) => {
                self.state = S::Completed;
                self.m.table.clear();
                self.m.out.push(Output::Ack);
                self.m.out.push(Output::Response(code));
                match self.reliability {
                    Reliability::Unreliable => self.m.table.set(Timer::D, now + TIMER_D_UNRELIABLE),
                    Reliability::Reliable => self.terminate(),
                }
            }
            // A retransmitted final: ACK it again, do not bother the TU (§17.1.1.2).
            (S::Completed, 300..=699) => self.m.out.push(Output::Ack),
            _ => {}
        }
    }

    /// The transport failed to send the INVITE (§17.1.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state == ClientInviteState::Calling {
            self.m.out.push(Output::TransportError);
            self.terminate();
        }
    }

    /// Time has come to `now`: fire every timer due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.m.table.expire(now) {
            match timer {
                Timer::A => {
                    self.m.out.push(Output::Transmit);
                    self.interval_a *= 2;
                    self.m.table.set(Timer::A, now + self.interval_a);
                }
                Timer::B => {
                    self.m.out.push(Output::TimedOut);
                    self.terminate();
                }
                Timer::D | Timer::M => self.terminate(),
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
        self.state = ClientInviteState::Terminated;
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

    fn drain(
        tx: &mut ClientInvite,
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
    fn timer_b_fires_after_64_t1_with_seven_sends_on_udp() {
        let start = Instant::now();
        let mut tx = ClientInvite::new(start, T, Reliability::Unreliable);
        let (mut sends, mut now) = (Vec::new(), start);
        loop {
            let outs = drain(&mut tx, &mut sends, now, start);
            if !outs.is_empty() {
                assert_eq!(outs, vec![Output::TimedOut, Output::Terminated]);
                break;
            }
            now = tx.poll_timeout().expect("A or B armed");
            tx.handle_timeout(now);
        }
        assert_eq!(now - start, 64 * T.t1);
        let ms: Vec<u128> = sends.iter().map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            vec![0, 500, 1500, 3500, 7500, 15500, 31500],
            "A doubles without cap"
        );
    }

    #[test]
    fn provisional_stops_retransmissions_and_timer_b() {
        let start = Instant::now();
        let mut tx = ClientInvite::new(start, T, Reliability::Unreliable);
        let mut sends = Vec::new();
        drain(&mut tx, &mut sends, start, start);
        tx.handle_response(start + Duration::from_millis(30), 100);
        assert_eq!(
            drain(&mut tx, &mut sends, start, start),
            vec![Output::Response(100)]
        );
        assert_eq!(tx.state(), ClientInviteState::Proceeding);
        assert_eq!(
            tx.poll_timeout(),
            None,
            "the TU now bounds the wait for an answer"
        );
        assert_eq!(sends.len(), 1);
    }

    #[test]
    fn non_2xx_final_is_acked_and_its_retransmissions_acked_again_until_d() {
        let start = Instant::now();
        let mut tx = ClientInvite::new(start, T, Reliability::Unreliable);
        let mut sends = Vec::new();
        drain(&mut tx, &mut sends, start, start);
        tx.handle_response(start, 180);
        drain(&mut tx, &mut sends, start, start);
        let at = start + Duration::from_secs(3);
        tx.handle_response(at, 486);
        assert_eq!(
            drain(&mut tx, &mut sends, at, start),
            vec![Output::Ack, Output::Response(486)]
        );
        assert_eq!(tx.state(), ClientInviteState::Completed);
        tx.handle_response(at + Duration::from_millis(500), 486);
        assert_eq!(
            drain(&mut tx, &mut sends, at, start),
            vec![Output::Ack],
            "not passed up again"
        );
        let d = tx.poll_timeout().unwrap();
        assert_eq!(d - at, Duration::from_secs(32));
        tx.handle_timeout(d);
        assert_eq!(
            drain(&mut tx, &mut sends, d, start),
            vec![Output::Terminated]
        );
    }

    #[test]
    fn reliable_non_2xx_terminates_at_once() {
        let start = Instant::now();
        let mut tx = ClientInvite::new(start, T, Reliability::Reliable);
        let mut sends = Vec::new();
        drain(&mut tx, &mut sends, start, start);
        assert_eq!(tx.poll_timeout(), Some(start + 64 * T.t1), "only B on TCP");
        tx.handle_response(start, 503);
        assert_eq!(
            drain(&mut tx, &mut sends, start, start),
            vec![Output::Ack, Output::Response(503), Output::Terminated]
        );
        assert_eq!(sends.len(), 1);
    }

    #[test]
    fn every_2xx_goes_up_until_timer_m() {
        let start = Instant::now();
        let mut tx = ClientInvite::new(start, T, Reliability::Unreliable);
        let mut sends = Vec::new();
        drain(&mut tx, &mut sends, start, start);
        let at = start + Duration::from_secs(1);
        tx.handle_response(at, 200);
        assert_eq!(
            drain(&mut tx, &mut sends, at, start),
            vec![Output::Response(200)]
        );
        assert_eq!(tx.state(), ClientInviteState::Accepted);
        // A retransmitted 2xx (our ACK was lost) or another fork's 2xx: the TU ACKs each.
        tx.handle_response(at + T.t1, 200);
        assert_eq!(
            drain(&mut tx, &mut sends, at, start),
            vec![Output::Response(200)]
        );
        tx.handle_response(at + T.t1, 486);
        assert!(
            drain(&mut tx, &mut sends, at, start).is_empty(),
            "no non-2xx after a 2xx"
        );
        let m = tx.poll_timeout().unwrap();
        assert_eq!(m - at, 64 * T.t1);
        tx.handle_timeout(m);
        assert_eq!(
            drain(&mut tx, &mut sends, m, start),
            vec![Output::Terminated]
        );
        assert_eq!(
            sends.len(),
            1,
            "no retransmission after the first 2xx (A stopped)"
        );
    }

    #[test]
    fn transport_error_while_calling() {
        let start = Instant::now();
        let mut tx = ClientInvite::new(start, T, Reliability::Unreliable);
        let mut sends = Vec::new();
        drain(&mut tx, &mut sends, start, start);
        tx.handle_transport_error(start);
        assert_eq!(
            drain(&mut tx, &mut sends, start, start),
            vec![Output::TransportError, Output::Terminated]
        );
        assert_eq!(tx.poll_timeout(), None);
    }
}

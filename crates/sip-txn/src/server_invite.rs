//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as updated by RFC 6026 §7.1).
//!
//! ```text
//!   Proceeding --TU 2xx--> Accepted --L--> Terminated
//!      \--TU 300-699--> Completed --ACK--> Confirmed --I--> Terminated
//!                          \--H (no ACK)--> Terminated
//! ```
//! [`Output::Transmit`] means "send the last response again". 2xx retransmission until the ACK
//! is the TU's job (RFC 6026 §8.1): in Accepted the transaction passes each 2xx the TU sends to
//! the wire and absorbs request retransmissions; the ACK for a 2xx belongs to the TU.

use std::time::{Duration, Instant};

use crate::machine::Machine;
use crate::timer::{Timer, Timers};
use crate::{Output, Reliability};

/// The states of Figure 7 (RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// INVITE received; provisional responses may follow.
    Proceeding,
    /// The TU sent a 2xx.
    Accepted,
    /// The TU sent a 300-699; it is retransmitted until the ACK.
    Completed,
    /// The ACK arrived; ACK retransmissions are absorbed until Timer I.
    Confirmed,
    /// Over.
    Terminated,
}

/// An INVITE server transaction. See the crate docs for the driving contract.
#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    timers: Timers,
    reliability: Reliability,
    m: Machine,
    /// The interval Timer G was last armed with (doubles up to T2).
    interval_g: Duration,
    /// Has the TU sent a response yet (so there is one to retransmit)?
    responded: bool,
}

impl ServerInvite {
    /// Creates the transaction for an INVITE received at `_now`. The TU should send a 100
    /// (Trying) at once unless it answers within 200 ms (§17.2.1).
    pub fn new(_now: Instant, timers: Timers, reliability: Reliability) -> Self {
        Self {
            state: ServerInviteState::Proceeding,
            timers,
            reliability,
            m: Machine::default(),
            interval_g: timers.t1,
            responded: false,
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// The TU sends a response with this status code.
    pub fn handle_tu_response(&mut self, now: Instant, code: u16) {
        use ServerInviteState as S;
        match (self.state, code) {
            (S::Proceeding, 100..=199) => {
                self.responded = true;
                self.m.out.push(Output::Transmit);
            }
            (S::Proceeding, 200..=299) => {
                self.state = S::Accepted;
                self.responded = true;
                self.m.out.push(Output::Transmit);
                self.m.table.set(Timer::L, now + 64 * self.timers.t1);
            }
            // The TU's own 2xx retransmissions (and 2xx of other forks it relays).
            (S::Accepted, 200..=299) => self.m.out.push(Output::Transmit),
            (S::Proceeding, 300..=699) => {
                self.state = S::Completed;
                self.responded = true;
                self.m.out.push(Output::Transmit);
                if self.reliability == Reliability::Unreliable {
                    self.m.table.set(Timer::G, now + self.timers.t1);
                }
                self.m.table.set(Timer::H, now + 64 * self.timers.t1);
            }
            _ => {}
        }
    }

    /// The INVITE arrived again.
    pub fn handle_request_retransmission(&mut self, _now: Instant) {
        match self.state {
            ServerInviteState::Proceeding if self.responded => self.m.out.push(Output::Transmit),
            ServerInviteState::Completed => self.m.out.push(Output::Transmit),
            _ => {}
        }
    }

    /// An ACK matched this transaction (a non-2xx ACK, same branch, §17.2.3).
    pub fn handle_ack(&mut self, now: Instant) {
        if self.state == ServerInviteState::Completed {
            self.state = ServerInviteState::Confirmed;
            self.m.table.stop(Timer::G);
            self.m.table.stop(Timer::H);
            match self.reliability {
                Reliability::Unreliable => self.m.table.set(Timer::I, now + self.timers.t4),
                Reliability::Reliable => self.terminate(),
            }
        }
    }

    /// The transport failed to send a response (§17.2.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ServerInviteState::Terminated {
            self.m.out.push(Output::TransportError);
            self.terminate();
        }
    }

    /// Time has come to `now`: fire every timer due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.m.table.expire(now) {
            match timer {
                Timer::G => {
                    self.m.out.push(Output::Transmit);
                    self.interval_g = (self.interval_g * 2).min(self.timers.t2);
                    self.m.table.set(Timer::G, now + self.interval_g);
                }
                Timer::H => {
                    // No ACK for our error response: the TU learns of it (§17.2.1).
                    self.m.out.push(Output::TimedOut);
                    self.terminate();
                }
                Timer::I | Timer::L => self.terminate(),
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
        self.state = ServerInviteState::Terminated;
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

    fn drain(tx: &mut ServerInvite) -> Vec<Output> {
        std::iter::from_fn(|| tx.poll_output()).collect()
    }

    #[test]
    fn error_response_retransmitted_on_g_until_h_without_ack() {
        let start = Instant::now();
        let mut tx = ServerInvite::new(start, T, Reliability::Unreliable);
        tx.handle_request_retransmission(start);
        assert!(
            drain(&mut tx).is_empty(),
            "nothing sent yet, nothing to repeat"
        );
        tx.handle_tu_response(start, 486);
        assert_eq!(drain(&mut tx), vec![Output::Transmit]);
        let mut sends = vec![Duration::ZERO];
        let now = loop {
            let now = tx.poll_timeout().expect("G or H");
            tx.handle_timeout(now);
            let outs = drain(&mut tx);
            if outs.contains(&Output::TimedOut) {
                assert_eq!(*outs.last().unwrap(), Output::Terminated);
                break now;
            }
            assert_eq!(outs, vec![Output::Transmit]);
            sends.push(now - start);
        };
        assert_eq!(now - start, 64 * T.t1, "Timer H");
        let ms: Vec<u128> = sends.iter().map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
    }

    #[test]
    fn ack_confirms_and_timer_i_ends() {
        let start = Instant::now();
        let mut tx = ServerInvite::new(start, T, Reliability::Unreliable);
        tx.handle_tu_response(start, 100);
        tx.handle_tu_response(start, 404);
        assert_eq!(drain(&mut tx), vec![Output::Transmit, Output::Transmit]);
        tx.handle_request_retransmission(start);
        assert_eq!(drain(&mut tx), vec![Output::Transmit], "the 404 again");
        let at = start + Duration::from_millis(200);
        tx.handle_ack(at);
        assert_eq!(tx.state(), ServerInviteState::Confirmed);
        assert_eq!(tx.poll_timeout(), Some(at + T.t4), "only Timer I left");
        tx.handle_ack(at);
        tx.handle_request_retransmission(at);
        assert!(
            drain(&mut tx).is_empty(),
            "ACK and INVITE retransmissions absorbed"
        );
        tx.handle_timeout(at + T.t4);
        assert_eq!(drain(&mut tx), vec![Output::Terminated]);
    }

    #[test]
    fn accepted_passes_tu_2xx_and_absorbs_invite_until_l() {
        let start = Instant::now();
        let mut tx = ServerInvite::new(start, T, Reliability::Unreliable);
        tx.handle_tu_response(start, 180);
        tx.handle_tu_response(start, 200);
        assert_eq!(drain(&mut tx), vec![Output::Transmit, Output::Transmit]);
        assert_eq!(tx.state(), ServerInviteState::Accepted);
        tx.handle_request_retransmission(start);
        assert!(
            drain(&mut tx).is_empty(),
            "the TU retransmits 2xx, not the transaction"
        );
        tx.handle_tu_response(start + T.t1, 200);
        assert_eq!(drain(&mut tx), vec![Output::Transmit]);
        let l = tx.poll_timeout().unwrap();
        assert_eq!(l - start, 64 * T.t1);
        tx.handle_timeout(l);
        assert_eq!(drain(&mut tx), vec![Output::Terminated]);
    }

    #[test]
    fn reliable_ack_terminates_at_once() {
        let start = Instant::now();
        let mut tx = ServerInvite::new(start, T, Reliability::Reliable);
        tx.handle_tu_response(start, 503);
        assert_eq!(
            tx.poll_timeout(),
            Some(start + 64 * T.t1),
            "H only, no G on TCP"
        );
        tx.handle_ack(start);
        assert_eq!(drain(&mut tx), vec![Output::Transmit, Output::Terminated]);
    }
}

//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! ```text
//!   Trying --TU 1xx--> Proceeding --TU 200-699--> Completed --J--> Terminated
//!     \----------------TU 200-699--------------^
//! ```
//! Request retransmissions: discarded in Trying, answered with the last response in Proceeding
//! and Completed ([`Output::Transmit`] means "send the last response again").

use std::time::Instant;

use crate::machine::Machine;
use crate::timer::{Timer, Timers};
use crate::{Output, Reliability};

/// The states of Figure 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Request received, the TU has not answered.
    Trying,
    /// The TU sent a provisional response.
    Proceeding,
    /// The TU sent a final response; request retransmissions get it again until Timer J.
    Completed,
    /// Over.
    Terminated,
}

/// A non-INVITE server transaction. See the crate docs for the driving contract.
#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerState,
    timers: Timers,
    reliability: Reliability,
    m: Machine,
}

impl ServerNonInvite {
    /// Creates the transaction for a request received at `_now`.
    pub fn new(_now: Instant, timers: Timers, reliability: Reliability) -> Self {
        Self {
            state: ServerState::Trying,
            timers,
            reliability,
            m: Machine::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The TU answers with this status code; the transaction sends it ([`Output::Transmit`]).
    pub fn handle_tu_response(&mut self, now: Instant, code: u16) {
        match (self.state, code) {
            (ServerState::Trying | ServerState::Proceeding, 100..=199) => {
                self.state = ServerState::Proceeding;
                self.m.out.push(Output::Transmit);
            }
            (ServerState::Trying | ServerState::Proceeding, 200..=699) => {
                self.state = ServerState::Completed;
                self.m.out.push(Output::Transmit);
                match self.reliability {
                    Reliability::Unreliable => {
                        self.m.table.set(Timer::J, now + 64 * self.timers.t1)
                    }
                    Reliability::Reliable => self.terminate(),
                }
            }
            // A TU answering twice, or after the end, is a TU bug; the wire never sees it.
            _ => {}
        }
    }

    /// The same request arrived again (matched per §17.2.3).
    pub fn handle_request_retransmission(&mut self, _now: Instant) {
        if matches!(self.state, ServerState::Proceeding | ServerState::Completed) {
            self.m.out.push(Output::Transmit);
        }
    }

    /// The transport failed to send a response (§17.2.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ServerState::Terminated {
            self.m.out.push(Output::TransportError);
            self.terminate();
        }
    }

    /// Time has come to `now`: fire every timer due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.m.table.expire(now) {
            if timer == Timer::J {
                self.terminate();
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
        self.state = ServerState::Terminated;
        self.m.end();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn drain(tx: &mut ServerNonInvite) -> Vec<Output> {
        std::iter::from_fn(|| tx.poll_output()).collect()
    }

    #[test]
    fn retransmissions_get_the_last_response_until_j() {
        let t = Timers::default();
        let start = Instant::now();
        let mut tx = ServerNonInvite::new(start, t, Reliability::Unreliable);
        tx.handle_request_retransmission(start);
        assert!(drain(&mut tx).is_empty(), "discarded in Trying");
        tx.handle_tu_response(start, 100);
        assert_eq!(drain(&mut tx), vec![Output::Transmit]);
        tx.handle_request_retransmission(start);
        assert_eq!(drain(&mut tx), vec![Output::Transmit], "the 100 again");
        let at = start + Duration::from_millis(300);
        tx.handle_tu_response(at, 200);
        assert_eq!(drain(&mut tx), vec![Output::Transmit]);
        tx.handle_request_retransmission(at);
        assert_eq!(drain(&mut tx), vec![Output::Transmit], "the 200 again");
        tx.handle_tu_response(at, 500);
        assert!(
            drain(&mut tx).is_empty(),
            "a second final never reaches the wire"
        );
        let j = tx.poll_timeout().unwrap();
        assert_eq!(j - at, 64 * t.t1);
        tx.handle_timeout(j);
        assert_eq!(drain(&mut tx), vec![Output::Terminated]);
    }

    #[test]
    fn reliable_terminates_after_the_final() {
        let start = Instant::now();
        let mut tx = ServerNonInvite::new(start, Timers::default(), Reliability::Reliable);
        tx.handle_tu_response(start, 404);
        assert_eq!(drain(&mut tx), vec![Output::Transmit, Output::Terminated]);
        assert_eq!(tx.poll_timeout(), None);
    }
}

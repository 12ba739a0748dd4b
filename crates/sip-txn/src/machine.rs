//! What every transaction of §17 shares: its timer table and its queue of outputs, with the
//! `poll_*` half of the driving contract and the final step into Terminated.

use std::time::Instant;

use crate::outbox::Outbox;
use crate::timer::TimerTable;
use crate::Output;

/// Deadlines and pending outputs of one transaction.
#[derive(Debug, Default)]
pub(crate) struct Machine {
    pub(crate) table: TimerTable,
    pub(crate) out: Outbox,
}

impl Machine {
    /// Disarms every timer and tells the caller to drop the transaction.
    pub(crate) fn end(&mut self) {
        self.table.clear();
        self.out.push(Output::Terminated);
    }

    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.table.next()
    }
}

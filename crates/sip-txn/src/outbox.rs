//! A fixed-capacity queue of outputs: a transaction never has more than a few pending, and the
//! per-message path must not allocate.

use crate::Output;

const CAPACITY: usize = 4;

/// FIFO of at most [`CAPACITY`] outputs.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    items: [Option<Output>; CAPACITY],
    head: usize,
    len: usize,
}

impl Outbox {
    /// Queues an output. A transaction queues at most two per input, and the caller drains the
    /// queue after every input, so it never overflows; if it did, the oldest output is kept and
    /// the new one dropped (debug builds assert).
    pub(crate) fn push(&mut self, o: Output) {
        debug_assert!(
            self.len < CAPACITY,
            "outbox overflow: the caller must drain poll_output"
        );
        if self.len < CAPACITY {
            self.items[(self.head + self.len) % CAPACITY] = Some(o);
            self.len += 1;
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Output> {
        if self.len == 0 {
            return None;
        }
        let o = self.items[self.head].take();
        self.head = (self.head + 1) % CAPACITY;
        self.len -= 1;
        o
    }
}

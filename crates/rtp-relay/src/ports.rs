//! The RTP/RTCP port pairs of `[media] port_min..=port_max`.
//!
//! A pair is an even RTP port and the odd RTCP port after it (RFC 3550 §11); with rtcp-mux
//! (RFC 5761) the odd port simply stays quiet. Allocation and release are O(1). Released pairs
//! go to the back of the queue, so a pair is reused as late as possible: stray packets of an
//! ended call then find nobody rather than the next call. A pair whose port another program
//! holds can be set aside ([`PortPool::quarantine`]) so it is not handed out again.

use std::collections::VecDeque;
use std::fmt;

/// An RTP port (even) and its RTCP port (the next, odd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortPair {
    rtp: u16,
}

impl PortPair {
    /// The RTP port.
    #[must_use]
    pub fn rtp(self) -> u16 {
        self.rtp
    }

    /// The RTCP port: the RTP port + 1.
    #[must_use]
    pub fn rtcp(self) -> u16 {
        self.rtp + 1
    }
}

/// Why a pool cannot be made, or a pair not given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// `min` must be even, `max` odd, `min < max` (whole pairs only), and `min` above 0.
    BadRange {
        /// The first port.
        min: u16,
        /// The last port.
        max: u16,
    },
    /// The pair is not in this pool's range (a bug in the caller).
    Foreign(u16),
    /// The pair is not allocated (released twice: a bug in the caller).
    NotAllocated(u16),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRange { min, max } => write!(
                f,
                "media port range {min}..={max} must start even, end odd and hold whole pairs"
            ),
            Self::Foreign(p) => write!(f, "port {p} is not in the media port range"),
            Self::NotAllocated(p) => write!(f, "port pair {p} released but not allocated"),
        }
    }
}

impl std::error::Error for PoolError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    Used,
    Quarantined,
}

/// The pool. See the module docs.
#[derive(Debug)]
pub struct PortPool {
    min: u16,
    free: VecDeque<u16>,
    slots: Vec<Slot>,
    used: usize,
}

impl PortPool {
    /// Every pair of `min..=max`.
    pub fn new(min: u16, max: u16) -> Result<Self, PoolError> {
        if min == 0 || min % 2 != 0 || max % 2 != 1 || min >= max {
            return Err(PoolError::BadRange { min, max });
        }
        let pairs = usize::from(max - min) / 2 + 1;
        Ok(Self {
            min,
            free: (0..pairs).map(|i| i as u16).collect(),
            slots: vec![Slot::Free; pairs],
            used: 0,
        })
    }

    /// A pool of the pairs whose RTP ports are listed (a shard's share of the range, or one
    /// forwarding worker's): each port must be even and above 0, duplicates are ignored.
    pub fn from_pairs(rtp_ports: impl IntoIterator<Item = u16>) -> Result<Self, PoolError> {
        let mut ports: Vec<u16> = rtp_ports.into_iter().collect();
        ports.sort_unstable();
        ports.dedup();
        if let Some(&bad) = ports
            .iter()
            .find(|&&p| p == 0 || p % 2 != 0 || p == u16::MAX)
        {
            return Err(PoolError::BadRange { min: bad, max: bad });
        }
        let (Some(&min), Some(&max)) = (ports.first(), ports.last()) else {
            return Ok(Self {
                min: 2,
                free: VecDeque::new(),
                slots: Vec::new(),
                used: 0,
            });
        };
        let span = usize::from(max - min) / 2 + 1;
        let mut slots = vec![Slot::Quarantined; span];
        let mut free = VecDeque::with_capacity(ports.len());
        for p in ports {
            let i = usize::from(p - min) / 2;
            slots[i] = Slot::Free;
            free.push_back(i as u16);
        }
        Ok(Self {
            min,
            free,
            slots,
            used: 0,
        })
    }

    /// How many pairs the range holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Pairs handed out and not released.
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.used
    }

    /// Pairs that can be handed out now.
    #[must_use]
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// The pair used longest ago, or None when every pair is in use (the call gets 503).
    pub fn allocate(&mut self) -> Option<PortPair> {
        let i = self.free.pop_front()?;
        self.slots[usize::from(i)] = Slot::Used;
        self.used += 1;
        Some(PortPair {
            rtp: self.min + 2 * i,
        })
    }

    fn index(&self, p: PortPair) -> Result<usize, PoolError> {
        let off = p
            .rtp
            .checked_sub(self.min)
            .filter(|o| o % 2 == 0)
            .ok_or(PoolError::Foreign(p.rtp))?;
        let i = usize::from(off / 2);
        if i >= self.slots.len() {
            return Err(PoolError::Foreign(p.rtp));
        }
        Ok(i)
    }

    /// Gives a pair back; it is handed out again after every other free pair.
    pub fn release(&mut self, p: PortPair) -> Result<(), PoolError> {
        let i = self.index(p)?;
        if self.slots[i] != Slot::Used {
            return Err(PoolError::NotAllocated(p.rtp));
        }
        self.slots[i] = Slot::Free;
        self.used -= 1;
        self.free.push_back(i as u16);
        Ok(())
    }

    /// Takes an allocated pair out of service for good (its port is held by another
    /// program: binding it failed). It counts as neither in use nor available.
    pub fn quarantine(&mut self, p: PortPair) -> Result<(), PoolError> {
        let i = self.index(p)?;
        if self.slots[i] != Slot::Used {
            return Err(PoolError::NotAllocated(p.rtp));
        }
        self.slots[i] = Slot::Quarantined;
        self.used -= 1;
        Ok(())
    }

    /// Pairs taken out of service.
    #[must_use]
    pub fn quarantined(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| **s == Slot::Quarantined)
            .count()
    }
}

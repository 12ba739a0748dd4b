//! The source guard: what sbcd does about a source address before it spends anything on its
//! messages (issue 7, "cheap rejection").
//!
//! - [`RateTable`]: a token bucket per source address, owned by one transport reader (no
//!   lock). A source over `requests_per_sec` (with a burst of the same size) is rate limited,
//!   and blocked.
//! - [`Failures`]: failed authentications (refused credentials, requests no trunk accepts) per
//!   source in a fixed one-minute window; the source is blocked at `auth_failures_per_min`.
//! - [`BlockList`]: blocked sources and until when, shared by the readers (a lock-free
//!   snapshot read per message) and the shards (which add sources).
//!
//! Every table is bounded: a flood from many (spoofed) sources cannot grow memory. A full
//! [`RateTable`] forgets sources that would be back to a full bucket anyway, and beyond that
//! lets untracked sources through (counted): per-source limits cannot stop a spread-out flood,
//! the shard queues' overload drop does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

/// The limits of `[limits]`; a zero turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests and responses per second from one source address (burst of the same size).
    pub requests_per_sec: u32,
    /// Failed authentications per minute from one source before it is blocked.
    pub auth_failures_per_min: u32,
    /// How long a source stays blocked.
    pub block: Duration,
    /// Sources tracked at most by each table.
    pub capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests_per_sec: 200,
            auth_failures_per_min: 10,
            block: Duration::from_secs(300),
            capacity: 65_536,
        }
    }
}

impl Limits {
    /// The `[limits]` of a configuration, with the default table capacity.
    #[must_use]
    pub fn from_config(c: &sbc_config::LimitsConfig) -> Self {
        Self {
            requests_per_sec: c.source_requests_per_sec,
            auth_failures_per_min: c.source_auth_failures_per_min,
            block: c.block,
            ..Self::default()
        }
    }
}

/// What to do with a message from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it.
    Pass,
    /// Drop it: the source just went over its rate (and is now blocked).
    RateLimited,
    /// Drop it: the source is blocked.
    Blocked,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Per-source token buckets of one reader.
#[derive(Debug)]
pub struct RateTable {
    rate: f64,
    burst: f64,
    capacity: usize,
    buckets: HashMap<IpAddr, Bucket>,
    last_sweep: Option<Instant>,
    /// Messages let through because the table was full of active sources.
    pub untracked: u64,
}

impl RateTable {
    /// A table for `limits` (empty; it allocates up to `limits.capacity` sources as they come).
    #[must_use]
    pub fn new(limits: &Limits) -> Self {
        let rate = f64::from(limits.requests_per_sec);
        Self {
            rate,
            burst: rate.max(1.0),
            capacity: limits.capacity.max(1),
            buckets: HashMap::new(),
            last_sweep: None,
            untracked: 0,
        }
    }

    /// Takes a token for a message from `source` at `now`; false when the source is over
    /// its rate. Always true when the limit is off.
    pub fn admit(&mut self, source: IpAddr, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.capacity {
            self.sweep(now);
            if self.buckets.len() >= self.capacity {
                self.untracked += 1;
                return true;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let b = self.buckets.entry(source).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets the sources whose bucket is full again (they carry no information), at most
    /// every 100 ms so that a table full of active sources is not scanned per message.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last_sweep = Some(now);
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
        });
    }

    /// Sources tracked now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no source is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// Failed authentications per source, in one-minute windows.
#[derive(Debug)]
pub struct Failures {
    limit: u32,
    capacity: usize,
    window_start: Option<Instant>,
    counts: HashMap<IpAddr, u32>,
}

impl Failures {
    /// A counter for `limits`.
    #[must_use]
    pub fn new(limits: &Limits) -> Self {
        Self {
            limit: limits.auth_failures_per_min,
            capacity: limits.capacity.max(1),
            window_start: None,
            counts: HashMap::new(),
        }
    }

    /// Counts a failure of `source` at `now`; true when it reaches the limit (block it).
    pub fn failed(&mut self, source: IpAddr, now: Instant) -> bool {
        if self.limit == 0 {
            return false;
        }
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= Duration::from_secs(60) {
            self.window_start = Some(now);
            self.counts.clear();
        }
        if !self.counts.contains_key(&source) && self.counts.len() >= self.capacity {
            return false;
        }
        let n = self.counts.entry(source).or_insert(0);
        *n += 1;
        if *n >= self.limit {
            self.counts.remove(&source);
            true
        } else {
            false
        }
    }
}

/// Blocked sources, shared: readers check a snapshot without a lock; adding a source copies
/// the (bounded) set.
#[derive(Debug)]
pub struct BlockList {
    snapshot: ArcSwap<HashMap<IpAddr, Instant>>,
    write: Mutex<()>,
    capacity: usize,
}

impl BlockList {
    /// An empty list holding at most `capacity` sources.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(HashMap::new()),
            write: Mutex::new(()),
            capacity: capacity.max(1),
        }
    }

    /// Whether `source` is blocked at `now`.
    #[must_use]
    pub fn is_blocked(&self, source: IpAddr, now: Instant) -> bool {
        self.snapshot
            .load()
            .get(&source)
            .is_some_and(|until| now < *until)
    }

    /// Blocks `source` until `until`; false if it already was (or the list is full of
    /// sources still blocked). Expired entries are dropped on the way.
    pub fn block(&self, source: IpAddr, until: Instant, now: Instant) -> bool {
        let _one = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.snapshot.load();
        if current.get(&source).is_some_and(|u| now < *u) {
            return false;
        }
        let mut next: HashMap<IpAddr, Instant> = current
            .iter()
            .filter(|(_, u)| now < **u)
            .map(|(ip, u)| (*ip, *u))
            .collect();
        if next.len() >= self.capacity {
            return false;
        }
        next.insert(source, until);
        self.snapshot.store(Arc::new(next));
        true
    }

    /// Sources blocked at `now`.
    #[must_use]
    pub fn blocked(&self, now: Instant) -> usize {
        self.snapshot.load().values().filter(|u| now < **u).count()
    }
}

/// Sources of every trunk's `inbound.allow`, and the addresses of its outbound targets:
/// known peers, exempt from the per-source limits (their volume is bounded by the trunk's
/// `max_cps` instead). Single addresses are looked up
/// in a set, networks scanned (a config has few).
#[derive(Debug, Default)]
pub struct Trusted {
    hosts: std::collections::HashSet<IpAddr>,
    nets: Vec<sbc_config::net::IpNet>,
}

impl Trusted {
    /// The allowlists of `config`'s trunks.
    #[must_use]
    pub fn from_config(config: &sbc_config::Config) -> Self {
        let mut t = Self::default();
        for net in config.trunks.iter().flat_map(|tr| &tr.inbound.allow) {
            let host_len = if net.addr().is_ipv4() { 32 } else { 128 };
            if net.prefix_len() == host_len {
                t.hosts.insert(net.addr());
            } else if !t.nets.contains(net) {
                t.nets.push(*net);
            }
        }
        t
    }

    /// Adds addresses sbcd sends to (trunks' resolved `outbound.uri`, registrars): their
    /// responses and requests are expected, whatever their volume.
    #[must_use]
    pub fn with_hosts(mut self, hosts: impl IntoIterator<Item = IpAddr>) -> Self {
        self.hosts.extend(hosts);
        self
    }

    /// Whether `ip` is in a trunk's allowlist (or added by [`with_hosts`](Self::with_hosts)).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.hosts.contains(&ip) || self.nets.iter().any(|n| n.contains(ip))
    }
}

/// What the readers and shards share: the limits and trusted sources of the running config,
/// the block list, failed-authentication counts, and the drop counters.
#[derive(Debug)]
pub struct GuardShared {
    limits: ArcSwap<(u64, Limits)>,
    trusted: ArcSwap<Trusted>,
    /// Blocked sources.
    pub blocks: BlockList,
    failures: Mutex<Failures>,
    /// Messages dropped because their source just went over its rate.
    pub dropped_rate_limited: std::sync::atomic::AtomicU64,
    /// Messages dropped because their source is blocked.
    pub dropped_blocked: std::sync::atomic::AtomicU64,
    /// Log lines about blocked sources allowed this second (a flood of sources must not flood
    /// the log): (second, count).
    log_budget: Mutex<(u64, u32)>,
    epoch: Instant,
}

/// Log lines about sources per second at most.
const LOG_LINES_PER_SEC: u32 = 10;

impl GuardShared {
    /// For `limits` and `trusted` sources.
    #[must_use]
    pub fn new(limits: Limits, trusted: Trusted, now: Instant) -> Self {
        Self {
            blocks: BlockList::new(limits.capacity),
            failures: Mutex::new(Failures::new(&limits)),
            limits: ArcSwap::from_pointee((0, limits)),
            trusted: ArcSwap::from_pointee(trusted),
            dropped_rate_limited: 0.into(),
            dropped_blocked: 0.into(),
            log_budget: Mutex::new((0, 0)),
            epoch: now,
        }
    }

    /// A reloaded config's limits and trusted sources (blocks and counts stay).
    pub fn reconfigure(&self, limits: Limits, trusted: Trusted) {
        let gen = self.limits.load().0 + 1;
        if self.limits.load().1 != limits {
            *self.failures.lock().unwrap_or_else(PoisonError::into_inner) = Failures::new(&limits);
            self.limits.store(Arc::new((gen, limits)));
        }
        self.trusted.store(Arc::new(trusted));
    }

    /// Whether `ip` is a trunk's allowlisted source.
    #[must_use]
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.load().contains(ip)
    }

    /// A failed authentication from `source` (not trusted); true when this blocks it.
    pub fn auth_failed(&self, source: IpAddr, now: Instant) -> bool {
        if self.is_trusted(source) {
            return false;
        }
        let block = self.limits.load().1.block;
        let reached = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .failed(source, now);
        reached && self.blocks.block(source, now + block, now)
    }

    /// Whether a line about a source may be logged at `now` (at most 10 a second).
    pub fn may_log(&self, now: Instant) -> bool {
        let sec = now.saturating_duration_since(self.epoch).as_secs();
        let mut b = self
            .log_budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if b.0 != sec {
            *b = (sec, 0);
        }
        b.1 += 1;
        b.1 <= LOG_LINES_PER_SEC
    }

    /// How long a block lasts now.
    #[must_use]
    pub fn block_duration(&self) -> Duration {
        self.limits.load().1.block
    }
}

/// One reader's guard: its own rate table, and what all readers share.
#[derive(Debug)]
pub struct Guard {
    shared: Arc<GuardShared>,
    gen: u64,
    rates: RateTable,
}

impl Guard {
    /// A guard for one reader.
    #[must_use]
    pub fn new(shared: Arc<GuardShared>) -> Self {
        let (gen, limits) = **shared.limits.load();
        Self {
            rates: RateTable::new(&limits),
            gen,
            shared,
        }
    }

    /// The verdict on a message from `source` at `now`, counted when it is a drop. A source
    /// over its rate is blocked for `limits.block` (this call answers RateLimited, later ones
    /// Blocked). Trusted sources always pass.
    pub fn check(&mut self, source: IpAddr, now: Instant) -> Verdict {
        use std::sync::atomic::Ordering::Relaxed;
        let shared = &*self.shared;
        if shared.is_trusted(source) {
            return Verdict::Pass;
        }
        if shared.blocks.is_blocked(source, now) {
            shared.dropped_blocked.fetch_add(1, Relaxed);
            return Verdict::Blocked;
        }
        let limits = shared.limits.load();
        if limits.0 != self.gen {
            self.gen = limits.0;
            self.rates = RateTable::new(&limits.1);
        }
        if self.rates.admit(source, now) {
            Verdict::Pass
        } else {
            shared.blocks.block(source, now + limits.1.block, now);
            shared.dropped_rate_limited.fetch_add(1, Relaxed);
            Verdict::RateLimited
        }
    }

    /// Messages let through untracked (the rate table was full).
    #[must_use]
    pub fn untracked(&self) -> u64 {
        self.rates.untracked
    }

    /// What the readers share.
    #[must_use]
    pub fn shared(&self) -> &GuardShared {
        &self.shared
    }
}

/// A trunk's calls in progress and its recent call starts (`inbound.max_calls`,
/// `inbound.max_cps`), shared by the shards; touched once when a call starts and once when it
/// ends, never per message.
#[derive(Debug, Default)]
pub struct TrunkLoad {
    calls: std::sync::atomic::AtomicU32,
    starts: Mutex<Option<Bucket>>,
}

/// Why a call is refused (the caller gets 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `inbound.max_calls` calls are in progress.
    MaxCalls,
    /// More than `inbound.max_cps` calls started in the last second.
    MaxCps,
}

impl Refusal {
    /// A bounded label (`sbc_calls_refused_total{reason}` and logs).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::MaxCalls => "max_calls",
            Self::MaxCps => "max_cps",
        }
    }
}

/// A call counted against its trunk until dropped (or released).
#[derive(Debug)]
pub struct CallSlot(Option<Arc<TrunkLoad>>);

impl CallSlot {
    /// Gives the slot back now (the call ended; it may linger for its transactions).
    pub fn release(&mut self) {
        if let Some(load) = self.0.take() {
            load.calls
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// Every trunk's [`TrunkLoad`], by name (kept across reloads, so a reload does not reset
/// the count of calls in progress).
#[derive(Debug, Default)]
pub struct TrunkLoads(dashmap::DashMap<String, Arc<TrunkLoad>>);

impl TrunkLoads {
    /// Admits a new call from `trunk` at `now` under its limits, or says why not.
    pub fn admit(
        &self,
        trunk: &str,
        max_calls: Option<u32>,
        max_cps: Option<u32>,
        now: Instant,
    ) -> Result<CallSlot, Refusal> {
        use std::sync::atomic::Ordering::Relaxed;
        let load = match self.0.get(trunk) {
            Some(l) => Arc::clone(&l),
            None => Arc::clone(&self.0.entry(trunk.to_owned()).or_default()),
        };
        let before = load.calls.fetch_add(1, Relaxed);
        if max_calls.is_some_and(|max| before >= max) {
            load.calls.fetch_sub(1, Relaxed);
            return Err(Refusal::MaxCalls);
        }
        // A call refused for max_calls above took no start: only admitted calls count.
        if let Some(cps) = max_cps {
            let mut starts = load.starts.lock().unwrap_or_else(PoisonError::into_inner);
            let rate = f64::from(cps);
            let b = starts.get_or_insert(Bucket {
                tokens: rate,
                last: now,
            });
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * rate).min(rate.max(1.0));
            b.last = now;
            if b.tokens < 1.0 {
                load.calls.fetch_sub(1, Relaxed);
                return Err(Refusal::MaxCps);
            }
            b.tokens -= 1.0;
        }
        Ok(CallSlot(Some(load)))
    }

    /// Calls in progress from `trunk`.
    #[must_use]
    pub fn calls(&self, trunk: &str) -> u32 {
        self.0
            .get(trunk)
            .map_or(0, |l| l.calls.load(std::sync::atomic::Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn limits(rate: u32, failures: u32, capacity: usize) -> Limits {
        Limits {
            requests_per_sec: rate,
            auth_failures_per_min: failures,
            block: Duration::from_secs(60),
            capacity,
        }
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut t = RateTable::new(&limits(10, 0, 16));
        let passed = (0..15).filter(|_| t.admit(ip(1), t0)).count();
        assert_eq!(passed, 10, "the burst is one second's worth");
        // 0.5 s later: 5 more tokens.
        let later = t0 + Duration::from_millis(500);
        let passed = (0..15).filter(|_| t.admit(ip(1), later)).count();
        assert_eq!(passed, 5);
        // Another source has its own bucket.
        assert!(t.admit(ip(2), later));
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_quiet_sources() {
        let t0 = Instant::now();
        let mut t = RateTable::new(&limits(10, 0, 4));
        for n in 0..4 {
            assert!(t.admit(ip(n), t0));
        }
        // Full of sources that just sent: a fifth is let through untracked.
        assert!(t.admit(ip(9), t0));
        assert_eq!((t.len(), t.untracked), (4, 1));
        // A second later every bucket is full again: they are forgotten, room for new ones.
        let later = t0 + Duration::from_secs(1);
        assert!(t.admit(ip(9), later));
        assert_eq!(t.len(), 1);
        for n in 0..100 {
            t.admit(ip(100 + n), later);
            assert!(t.len() <= 4);
        }
    }

    #[test]
    fn off_means_off() {
        let t0 = Instant::now();
        let mut t = RateTable::new(&limits(0, 0, 4));
        assert!((0..10_000).all(|_| t.admit(ip(1), t0)));
        assert!(t.is_empty());
        let mut f = Failures::new(&limits(0, 0, 4));
        assert!((0..100).all(|_| !f.failed(ip(1), t0)));
    }

    #[test]
    fn failures_block_at_the_limit_within_a_minute() {
        let t0 = Instant::now();
        let mut f = Failures::new(&limits(0, 3, 16));
        assert!(!f.failed(ip(1), t0));
        assert!(!f.failed(ip(1), t0 + Duration::from_secs(10)));
        assert!(!f.failed(ip(2), t0 + Duration::from_secs(10)));
        assert!(f.failed(ip(1), t0 + Duration::from_secs(20)));
        // A new minute starts from zero.
        let next = t0 + Duration::from_secs(61);
        assert!(!f.failed(ip(1), next));
        assert!(!f.failed(ip(1), next));
        assert!(f.failed(ip(1), next));
    }

    #[test]
    fn guard_blocks_a_flooding_source_and_releases_it_later() {
        let t0 = Instant::now();
        let shared = Arc::new(GuardShared::new(limits(5, 0, 16), Trusted::default(), t0));
        let mut g = Guard::new(Arc::clone(&shared));
        let verdicts: Vec<Verdict> = (0..8).map(|_| g.check(ip(1), t0)).collect();
        assert_eq!(verdicts[..5], [Verdict::Pass; 5]);
        assert_eq!(verdicts[5], Verdict::RateLimited);
        assert_eq!(verdicts[6..], [Verdict::Blocked; 2]);
        assert_eq!(g.check(ip(2), t0), Verdict::Pass, "others are not affected");
        // Another reader sees the block too.
        let mut other = Guard::new(Arc::clone(&shared));
        assert_eq!(other.check(ip(1), t0), Verdict::Blocked);
        assert_eq!(shared.blocks.blocked(t0), 1);
        use std::sync::atomic::Ordering::Relaxed;
        assert_eq!(shared.dropped_rate_limited.load(Relaxed), 1);
        assert_eq!(shared.dropped_blocked.load(Relaxed), 3);
        // After the block, the source passes again.
        let after = t0 + Duration::from_secs(61);
        assert_eq!(g.check(ip(1), after), Verdict::Pass);
        assert_eq!(shared.blocks.blocked(after), 0);
    }

    #[test]
    fn trusted_sources_and_failed_auths() {
        let t0 = Instant::now();
        let config = sbc_config::load_str(
            "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n[media]\nlisten = \"127.0.0.1\"\nport_min = 20000\nport_max = 20099\n[admin]\nlisten = \"127.0.0.1:9060\"\n[[trunk]]\nname = \"c\"\ninbound.allow = [\"10.0.0.1/32\", \"192.0.2.0/24\"]\noutbound.uri = \"sip:192.0.2.1\"\n",
            std::path::Path::new("."),
        )
        .unwrap();
        let trusted = Trusted::from_config(&config);
        assert!(trusted.contains(ip(1)));
        assert!(trusted.contains("192.0.2.77".parse().unwrap()));
        assert!(!trusted.contains(ip(2)));
        let shared = Arc::new(GuardShared::new(limits(2, 3, 16), trusted, t0));
        let mut g = Guard::new(Arc::clone(&shared));
        assert!(
            (0..100).all(|_| g.check(ip(1), t0) == Verdict::Pass),
            "trusted: no rate"
        );
        assert!(
            (0..10).all(|_| !shared.auth_failed(ip(1), t0)),
            "trusted: never blocked"
        );
        assert!(!shared.auth_failed(ip(3), t0));
        assert!(!shared.auth_failed(ip(3), t0));
        assert!(
            shared.auth_failed(ip(3), t0),
            "the third failure in a minute blocks"
        );
        assert_eq!(g.check(ip(3), t0), Verdict::Blocked);
        // A reload with other limits: the reader's table follows.
        shared.reconfigure(limits(0, 3, 16), Trusted::default());
        assert!(
            (0..100).all(|_| g.check(ip(4), t0) == Verdict::Pass),
            "rate off"
        );
        assert_eq!(g.check(ip(1), t0), Verdict::Pass);
        assert_eq!(
            g.check(ip(3), t0),
            Verdict::Blocked,
            "blocks survive a reload"
        );
    }

    #[test]
    fn log_lines_are_capped_per_second() {
        let t0 = Instant::now();
        let shared = GuardShared::new(Limits::default(), Trusted::default(), t0);
        assert_eq!((0..50).filter(|_| shared.may_log(t0)).count(), 10);
        let next = t0 + Duration::from_secs(1);
        assert!(shared.may_log(next));
    }

    #[test]
    fn block_list_is_bounded_and_drops_expired_entries() {
        let t0 = Instant::now();
        let b = BlockList::new(2);
        let until = t0 + Duration::from_secs(5);
        assert!(b.block(ip(1), until, t0));
        assert!(!b.block(ip(1), until, t0), "already blocked");
        assert!(b.block(ip(2), until, t0));
        assert!(!b.block(ip(3), until, t0), "full");
        let later = t0 + Duration::from_secs(6);
        assert!(b.block(ip(3), later + Duration::from_secs(5), later));
        assert!(!b.is_blocked(ip(1), later));
        assert!(b.is_blocked(ip(3), later));
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;

    #[test]
    fn max_calls_counts_calls_in_progress() {
        let t0 = Instant::now();
        let loads = TrunkLoads::default();
        let mut a = loads.admit("pbx", Some(2), None, t0).unwrap();
        let _b = loads.admit("pbx", Some(2), None, t0).unwrap();
        assert_eq!(
            loads.admit("pbx", Some(2), None, t0).unwrap_err(),
            Refusal::MaxCalls
        );
        assert_eq!(loads.calls("pbx"), 2);
        assert!(loads.admit("other", Some(2), None, t0).is_ok(), "per trunk");
        a.release();
        a.release(); // once only
        assert_eq!(loads.calls("pbx"), 1);
        let c = loads.admit("pbx", Some(2), None, t0).unwrap();
        drop(c);
        assert_eq!(loads.calls("pbx"), 1, "a dropped slot is given back");
    }

    #[test]
    fn max_cps_is_a_rate_with_a_one_second_burst() {
        let t0 = Instant::now();
        let loads = TrunkLoads::default();
        let admitted: Vec<CallSlot> = (0..8)
            .filter_map(|_| loads.admit("pbx", None, Some(5), t0).ok())
            .collect();
        assert_eq!(admitted.len(), 5);
        assert_eq!(
            loads.admit("pbx", None, Some(5), t0).unwrap_err(),
            Refusal::MaxCps
        );
        // 200 ms later: one more.
        let later = t0 + Duration::from_millis(200);
        assert!(loads.admit("pbx", None, Some(5), later).is_ok());
        assert!(loads.admit("pbx", None, Some(5), later).is_err());
    }
}

//! Message and transaction counters a shard keeps for the daemon's metrics
//! (`sbc_sip_requests_total`, `sbc_sip_responses_total`, `sbc_transaction_timeouts_total`).
//!
//! One [`SipCounters`] per shard, shared with the daemon: the shard's task is the only writer
//! (relaxed `fetch_add` on its own cache lines, no lock), the daemon reads them when
//! `/metrics` is scraped. Every label is an index into a fixed array, so the label set is
//! bounded by construction.

use std::sync::atomic::{AtomicU64, Ordering};

use sip_codec::Method;

use crate::ids::Side;

/// The `method` label values; extension methods are counted as `other`.
pub const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "UPDATE",
    "INFO",
    "MESSAGE",
    "REFER",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "other",
];

/// The `class` label values of responses.
pub const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

/// The `leg` label values: side A is the inbound leg (the calling trunk, and PBXs registering
/// to sbcd), side B the outbound leg (the called trunk, registrations on behalf, probes).
pub const LEGS: [&str; 2] = ["inbound", "outbound"];

/// The `direction` label values.
pub const DIRECTIONS: [&str; 2] = ["received", "sent"];

/// The `timer` label values of transaction timeouts (RFC 3261 §17): B, a client INVITE got no
/// final response; F, a client non-INVITE got none; H, no ACK came for a final response sbcd
/// sent.
pub const TIMERS: [&str; 3] = ["B", "F", "H"];

/// Received by sbcd, or sent by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a peer.
    Received,
    /// To a peer (retransmissions included).
    Sent,
}

/// An RFC 3261 §17 timer that ended a transaction without its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnTimer {
    /// Client INVITE transaction: no final response (§17.1.1.2).
    B,
    /// Client non-INVITE transaction: no final response (§17.1.2.2).
    F,
    /// Server INVITE transaction: no ACK for the final response (§17.2.1).
    H,
}

const M: usize = METHODS.len();
const C: usize = CLASSES.len();

/// The counters of one shard.
#[derive(Debug)]
pub struct SipCounters {
    /// [leg][direction][method]
    requests: [[[AtomicU64; M]; 2]; 2],
    /// [leg][direction][method][class]
    responses: [[[[AtomicU64; C]; M]; 2]; 2],
    timeouts: [AtomicU64; TIMERS.len()],
}

impl Default for SipCounters {
    fn default() -> Self {
        Self {
            requests: std::array::from_fn(|_| {
                std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))
            }),
            responses: std::array::from_fn(|_| {
                std::array::from_fn(|_| {
                    std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                })
            }),
            timeouts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// The index of `method` in [`METHODS`].
#[must_use]
pub fn method_index(method: Method) -> usize {
    match method {
        Method::Invite => 0,
        Method::Ack => 1,
        Method::Bye => 2,
        Method::Cancel => 3,
        Method::Options => 4,
        Method::Register => 5,
        Method::Prack => 6,
        Method::Update => 7,
        Method::Info => 8,
        Method::Message => 9,
        Method::Refer => 10,
        Method::Subscribe => 11,
        Method::Notify => 12,
        Method::Publish => 13,
        _ => 14,
    }
}

/// The index of a status code's class in [`CLASSES`] (below 100 counts as 1xx, above 699 as
/// 6xx; the codec lets neither through anyway).
fn class_index(code: u16) -> usize {
    usize::from(code / 100).clamp(1, 6) - 1
}

impl SipCounters {
    /// Counts a request.
    pub fn request(&self, leg: Side, dir: Direction, method: Method) {
        self.requests[leg.index()][dir as usize][method_index(method)]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a response to a `method` request.
    pub fn response(&self, leg: Side, dir: Direction, method: Method, code: u16) {
        self.responses[leg.index()][dir as usize][method_index(method)][class_index(code)]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a transaction ended by `timer`.
    pub fn timeout(&self, timer: TxnTimer) {
        self.timeouts[timer as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a message sbcd wrote itself, from its start line and CSeq (sbcd writes both in
    /// canonical form: `SIP/2.0 NNN` or `METHOD `, and `CSeq: N METHOD`). Bytes that are not
    /// such a message are not counted.
    pub fn sent(&self, leg: Side, data: &[u8]) {
        if let Some(rest) = data.strip_prefix(b"SIP/2.0 ") {
            let code = rest
                .get(..3)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<u16>().ok());
            if let (Some(code), Some(method)) = (code, cseq_method(data)) {
                self.response(leg, Direction::Sent, method, code);
            }
        } else if let Some(sp) = memchr::memchr(b' ', &data[..data.len().min(32)]) {
            self.request(leg, Direction::Sent, Method::from_bytes(&data[..sp]));
        }
    }

    /// Calls `f(leg, direction, method, value)` for every request counter.
    pub fn for_each_request(
        &self,
        mut f: impl FnMut(&'static str, &'static str, &'static str, u64),
    ) {
        for (l, by_dir) in self.requests.iter().enumerate() {
            for (d, by_method) in by_dir.iter().enumerate() {
                for (m, c) in by_method.iter().enumerate() {
                    f(
                        LEGS[l],
                        DIRECTIONS[d],
                        METHODS[m],
                        c.load(Ordering::Relaxed),
                    );
                }
            }
        }
    }

    /// Calls `f(leg, direction, method, class, value)` for every response counter.
    pub fn for_each_response(
        &self,
        mut f: impl FnMut(&'static str, &'static str, &'static str, &'static str, u64),
    ) {
        for (l, by_dir) in self.responses.iter().enumerate() {
            for (d, by_method) in by_dir.iter().enumerate() {
                for (m, by_class) in by_method.iter().enumerate() {
                    for (k, c) in by_class.iter().enumerate() {
                        f(
                            LEGS[l],
                            DIRECTIONS[d],
                            METHODS[m],
                            CLASSES[k],
                            c.load(Ordering::Relaxed),
                        );
                    }
                }
            }
        }
    }

    /// Calls `f(timer, value)` for every timeout counter.
    pub fn for_each_timeout(&self, mut f: impl FnMut(&'static str, u64)) {
        for (t, c) in self.timeouts.iter().enumerate() {
            f(TIMERS[t], c.load(Ordering::Relaxed));
        }
    }
}

/// The method of the `CSeq` header sbcd wrote: `\r\nCSeq: N METHOD\r\n`.
fn cseq_method(data: &[u8]) -> Option<Method> {
    let at = memchr::memmem::find(data, b"\r\nCSeq: ")? + 8;
    let line = &data[at..];
    let end = memchr::memchr(b'\r', line)?;
    let line = &line[..end];
    let sp = memchr::memchr(b' ', line)?;
    Some(Method::from_bytes(&line[sp + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(c: &SipCounters) -> Vec<(&str, &str, &str, u64)> {
        let mut v = Vec::new();
        c.for_each_request(|l, d, m, n| {
            if n > 0 {
                v.push((l, d, m, n));
            }
        });
        v
    }

    fn responses(c: &SipCounters) -> Vec<(&str, &str, &str, &str, u64)> {
        let mut v = Vec::new();
        c.for_each_response(|l, d, m, k, n| {
            if n > 0 {
                v.push((l, d, m, k, n));
            }
        });
        v
    }

    #[test]
    fn sent_messages_are_classified_from_start_line_and_cseq() {
        let c = SipCounters::default();
        c.sent(
            Side::B,
            b"INVITE sip:1@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCSeq: 1 INVITE\r\n\r\n",
        );
        c.sent(
            Side::A,
            b"SIP/2.0 183 Session Progress\r\nCSeq: 7 INVITE\r\n\r\n",
        );
        c.sent(Side::A, b"SIP/2.0 200 OK\r\nCSeq: 8 BYE\r\n\r\n");
        c.sent(Side::B, b"FOO sip:h SIP/2.0\r\nCSeq: 1 FOO\r\n\r\n");
        // Not a message: not counted.
        c.sent(Side::A, b"\r\n\r\n");
        c.sent(Side::A, b"SIP/2.0 20");
        assert_eq!(
            requests(&c),
            vec![
                ("outbound", "sent", "INVITE", 1),
                ("outbound", "sent", "other", 1)
            ]
        );
        assert_eq!(
            responses(&c),
            vec![
                ("inbound", "sent", "INVITE", "1xx", 1),
                ("inbound", "sent", "BYE", "2xx", 1)
            ]
        );
    }

    #[test]
    fn classes_and_timers_are_bounded() {
        let c = SipCounters::default();
        for code in [100, 199, 200, 302, 404, 503, 606, 0, 999] {
            c.response(Side::A, Direction::Received, Method::Invite, code);
        }
        let got: Vec<_> = responses(&c).iter().map(|r| (r.3, r.4)).collect();
        assert_eq!(
            got,
            vec![
                ("1xx", 3),
                ("2xx", 1),
                ("3xx", 1),
                ("4xx", 1),
                ("5xx", 1),
                ("6xx", 2)
            ]
        );
        c.timeout(TxnTimer::H);
        c.timeout(TxnTimer::B);
        c.timeout(TxnTimer::B);
        let mut t = Vec::new();
        c.for_each_timeout(|name, n| t.push((name, n)));
        assert_eq!(t, vec![("B", 2), ("F", 0), ("H", 1)]);
    }
}

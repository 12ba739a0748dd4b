//! The Prometheus registry (DESIGN.md "Metrics": prefixed `sbc_`, base units, bounded labels).
//!
//! Counted from the events the shards hand out; the `trunk` label only takes configured trunk
//! names, or `unknown` for a request no trunk's index pointed at.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// `sbc_call_setup_seconds` buckets: from a fast answer to the longest ringing.
const SETUP_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// Every metric sbcd exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// `sbc_calls_active`: calls in progress (set when scraped).
    pub(crate) calls_active: IntGauge,
    /// `sbc_calls_held`: call state held, ended calls whose transactions linger included.
    pub(crate) calls_held: IntGauge,
    /// `sbc_calls_total{trunk,leg,result}`: ended calls, on the inbound trunk (`leg="inbound"`)
    /// and on the outbound trunk they last went to (`leg="outbound"`).
    pub(crate) calls_total: IntCounterVec,
    /// `sbc_sip_messages_dropped_total{reason}`.
    pub(crate) messages_dropped: IntCounterVec,
    /// `sbc_config_reloads_total{result}`: ok, error (invalid file), refused (restart-only keys).
    pub(crate) config_reloads: IntCounterVec,
    /// `sbc_media_ports_free` (set when scraped).
    pub(crate) media_ports_free: IntGauge,
    /// Messages dropped on full shard queues already counted (`reason="overload"`).
    overload_seen: AtomicU64,
    /// `sbc_sources_blocked`: sources whose messages are dropped now (set when scraped).
    pub(crate) sources_blocked: IntGauge,
    /// `sbc_sip_messages_dropped_total` of every known reason.
    dropped_by: Vec<(&'static str, IntCounter)>,
    /// `sbc_trunk_auth_failures_total{trunk,mode}`.
    pub(crate) auth_failures: IntCounterVec,
    /// `sbc_registration_up{trunk}`: 1 while a registration on behalf is up.
    pub(crate) registration_up: IntGaugeVec,
    /// `sbc_trunk_up{trunk}`: 0 while an OPTIONS probe finds the trunk down.
    pub(crate) trunk_up: IntGaugeVec,
    /// `sbc_rtp_packets_forwarded_total`.
    pub(crate) rtp_forwarded: IntCounter,
    /// `sbc_rtp_bytes_forwarded_total` (UDP payload).
    pub(crate) rtp_bytes: IntCounter,
    /// `sbc_rtp_packets_dropped_total{reason}` (`rtp_relay::stats::Discard` labels).
    pub(crate) rtp_dropped: IntCounterVec,
    /// `sbc_rtp_sessions_active`: relayed components (RTP, and RTCP when not muxed).
    pub(crate) rtp_components: IntGauge,
    /// `sbc_trunk_rtp_packets_total{trunk,direction}`: per-call counters, added at call end.
    pub(crate) trunk_rtp_packets: IntCounterVec,
    /// `sbc_trunk_rtp_bytes_total{trunk,direction}`: the same in bytes.
    pub(crate) trunk_rtp_bytes: IntCounterVec,
    /// `sbc_sip_requests_total{method,leg,direction}` (copied from the shards' counters).
    sip_requests: IntCounterVec,
    /// `sbc_sip_responses_total{method,class,leg,direction}` (likewise).
    sip_responses: IntCounterVec,
    /// `sbc_transaction_timeouts_total{timer}` (likewise).
    txn_timeouts: IntCounterVec,
    /// `sbc_call_setup_seconds{trunk}`: INVITE received to 2xx relayed, by answering trunk.
    pub(crate) call_setup: HistogramVec,
    /// `sbc_calls_refused_total{trunk,reason}`: 503 for a trunk over max_calls or max_cps.
    pub(crate) calls_refused: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let calls_active =
            IntGauge::new("sbc_calls_active", "Calls in progress").expect("valid metric");
        let calls_held = IntGauge::new(
            "sbc_calls_held",
            "Calls whose state sbcd holds: in progress, or ended with transactions still absorbing retransmissions (about 32 s)",
        )
        .expect("valid metric");
        let calls_total = IntCounterVec::new(
            Opts::new(
                "sbc_calls_total",
                "Ended calls by trunk (leg inbound: the calling trunk; outbound: the trunk the call last went to) and result (answered, cancelled, failed, timeout, media_timeout)",
            ),
            &["trunk", "leg", "result"],
        )
        .expect("valid metric");
        let messages_dropped = IntCounterVec::new(
            Opts::new(
                "sbc_sip_messages_dropped_total",
                "SIP messages dropped without a reply (reason: malformed, stray_response, stray_ack, unknown_source, overload: a full shard queue, rate_limited: the source went over [limits] source_requests_per_sec, blocked: the source is blocked)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "sbc_config_reloads_total",
                "Config reloads by result (ok; error: the file is invalid; refused: it changes keys that need a restart). The running config is kept unless ok",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in ["ok", "error", "refused"] {
            config_reloads.with_label_values(&[result]);
        }
        let media_ports_free = IntGauge::new(
            "sbc_media_ports_free",
            "Media ports (RTP and RTCP) free for new streams",
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "sbc_build_info",
                "Always 1; the version of the running sbcd",
            ),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "sbc_trunk_auth_failures_total",
                "Requests refused by a trunk's inbound checks (mode: allow, domain, header, prefix, digest; trunk unknown, mode unmatched: no trunk's allowlist or hash domain matched) or challenges sbcd could not answer (mode: outbound)",
            ),
            &["trunk", "mode"],
        )
        .expect("valid metric");
        // Shown from the start: requests no trunk recognises are what a scanner sends first.
        auth_failures.with_label_values(&["unknown", "unmatched"]);
        let registration_up = IntGaugeVec::new(
            Opts::new(
                "sbc_registration_up",
                "1 while sbcd's registration on behalf of the trunk is up, else 0",
            ),
            &["trunk"],
        )
        .expect("valid metric");
        let trunk_up = IntGaugeVec::new(
            Opts::new(
                "sbc_trunk_up",
                "0 while the trunk does not answer OPTIONS probes, else 1",
            ),
            &["trunk"],
        )
        .expect("valid metric");
        let rtp_forwarded = IntCounter::new(
            "sbc_rtp_packets_forwarded_total",
            "RTP and RTCP packets the media relay forwarded",
        )
        .expect("valid metric");
        let rtp_bytes = IntCounter::new(
            "sbc_rtp_bytes_forwarded_total",
            "Bytes (UDP payload) of the RTP and RTCP packets the media relay forwarded",
        )
        .expect("valid metric");
        let rtp_dropped = IntCounterVec::new(
            Opts::new(
                "sbc_rtp_packets_dropped_total",
                "Packets the media relay dropped (reason: foreign_source, invalid, no_destination, no_session, send_failed)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let trunk_rtp_packets = IntCounterVec::new(
            Opts::new(
                "sbc_trunk_rtp_packets_total",
                "RTP and RTCP packets of ended calls, per trunk (direction: received from the trunk, sent to it)",
            ),
            &["trunk", "direction"],
        )
        .expect("valid metric");
        let trunk_rtp_bytes = IntCounterVec::new(
            Opts::new(
                "sbc_trunk_rtp_bytes_total",
                "Bytes (UDP payload) of the RTP and RTCP packets of ended calls, per trunk (direction: received, sent)",
            ),
            &["trunk", "direction"],
        )
        .expect("valid metric");
        let rtp_components = IntGauge::new(
            "sbc_rtp_sessions_active",
            "Media components being relayed (an RTP stream, and its RTCP when not muxed)",
        )
        .expect("valid metric");
        let sip_requests = IntCounterVec::new(
            Opts::new(
                "sbc_sip_requests_total",
                "SIP requests by method, leg (inbound: the calling trunk and PBXs registering to sbcd; outbound: the called trunk, registrations on behalf, OPTIONS probes) and direction (received, sent; retransmissions included)",
            ),
            &["method", "leg", "direction"],
        )
        .expect("valid metric");
        let sip_responses = IntCounterVec::new(
            Opts::new(
                "sbc_sip_responses_total",
                "SIP responses by the method they answer, class (1xx..6xx), leg and direction",
            ),
            &["method", "class", "leg", "direction"],
        )
        .expect("valid metric");
        let txn_timeouts = IntCounterVec::new(
            Opts::new(
                "sbc_transaction_timeouts_total",
                "Transactions ended by an RFC 3261 timer (B: no final response to an INVITE sbcd sent; F: to another request; H: no ACK for a final response sbcd sent)",
            ),
            &["timer"],
        )
        .expect("valid metric");
        for timer in b2bua::counters::TIMERS {
            txn_timeouts.with_label_values(&[timer]);
        }
        let call_setup = HistogramVec::new(
            HistogramOpts::new(
                "sbc_call_setup_seconds",
                "From the caller's INVITE to the 2xx relayed to it, by the trunk that answered",
            )
            .buckets(SETUP_BUCKETS.to_vec()),
            &["trunk"],
        )
        .expect("valid metric");
        let calls_refused = IntCounterVec::new(
            Opts::new(
                "sbc_calls_refused_total",
                "New calls refused with 503 because the calling trunk was at inbound.max_calls or over inbound.max_cps (reason: max_calls, max_cps)",
            ),
            &["trunk", "reason"],
        )
        .expect("valid metric");
        let sources_blocked = IntGauge::new(
            "sbc_sources_blocked",
            "Source addresses whose messages are dropped now ([limits]: over source_requests_per_sec, or source_auth_failures_per_min failed authentications)",
        )
        .expect("valid metric");
        for m in [
            Box::new(calls_active.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(calls_held.clone()),
            Box::new(sources_blocked.clone()),
            Box::new(calls_refused.clone()),
            Box::new(sip_requests.clone()),
            Box::new(sip_responses.clone()),
            Box::new(txn_timeouts.clone()),
            Box::new(call_setup.clone()),
            Box::new(calls_total.clone()),
            Box::new(messages_dropped.clone()),
            Box::new(config_reloads.clone()),
            Box::new(media_ports_free.clone()),
            Box::new(build_info),
            Box::new(auth_failures.clone()),
            Box::new(registration_up.clone()),
            Box::new(trunk_up.clone()),
            Box::new(rtp_forwarded.clone()),
            Box::new(rtp_bytes.clone()),
            Box::new(rtp_dropped.clone()),
            Box::new(rtp_components.clone()),
            Box::new(trunk_rtp_packets.clone()),
            Box::new(trunk_rtp_bytes.clone()),
        ] {
            registry.register(m).expect("metric names are unique");
        }
        Self {
            registry,
            calls_active,
            calls_held,
            calls_total,
            messages_dropped: messages_dropped.clone(),
            config_reloads,
            media_ports_free,
            overload_seen: AtomicU64::new(0),
            sources_blocked,
            dropped_by: b2bua::DropReason::ALL
                .iter()
                .map(|r| (r.label(), messages_dropped.with_label_values(&[r.label()])))
                .collect(),
            auth_failures,
            registration_up,
            trunk_up,
            rtp_forwarded,
            rtp_bytes,
            rtp_dropped,
            rtp_components,
            trunk_rtp_packets,
            trunk_rtp_bytes,
            sip_requests,
            sip_responses,
            txn_timeouts,
            call_setup,
            calls_refused,
        }
    }

    /// Brings the SIP message and timeout counters up to the shards' totals (called when
    /// scraped, one scrape at a time). A label set appears once its count is above zero.
    pub(crate) fn copy_sip_counters(&self, shards: &[std::sync::Arc<b2bua::SipCounters>]) {
        let up_to = |c: IntCounter, total: u64| c.inc_by(total.saturating_sub(c.get()));
        let mut requests = std::collections::HashMap::new();
        let mut responses = std::collections::HashMap::new();
        let mut timeouts = std::collections::HashMap::new();
        for s in shards {
            s.for_each_request(|leg, dir, method, n| {
                *requests.entry([method, leg, dir]).or_insert(0) += n;
            });
            s.for_each_response(|leg, dir, method, class, n| {
                *responses.entry([method, class, leg, dir]).or_insert(0) += n;
            });
            s.for_each_timeout(|timer, n| *timeouts.entry(timer).or_insert(0) += n);
        }
        for (labels, n) in requests.into_iter().filter(|(_, n)| *n > 0) {
            up_to(self.sip_requests.with_label_values(&labels), n);
        }
        for (labels, n) in responses.into_iter().filter(|(_, n)| *n > 0) {
            up_to(self.sip_responses.with_label_values(&labels), n);
        }
        for (timer, n) in timeouts {
            up_to(self.txn_timeouts.with_label_values(&[timer]), n);
        }
    }

    /// Counts a message dropped for `reason` (a `DropReason` label): no registry lookup, the
    /// counters of the known reasons are kept at hand.
    pub(crate) fn message_dropped(&self, reason: &'static str) {
        match self.dropped_by.iter().find(|(r, _)| *r == reason) {
            Some((_, c)) => c.inc(),
            None => self.messages_dropped.with_label_values(&[reason]).inc(),
        }
    }

    /// Messages dropped on full shard queues: `total` so far (counted on the reader tasks
    /// without touching the registry; moved here when scraped).
    pub(crate) fn overload_dropped(&self, total: u64) {
        let seen = self.overload_seen.swap(total, Ordering::Relaxed);
        self.messages_dropped
            .with_label_values(&["overload"])
            .inc_by(total.saturating_sub(seen));
    }

    /// Messages the readers dropped for `[limits]`: brought up to the readers' totals (read
    /// when scraped), as `reason="rate_limited"` and `reason="blocked"`.
    pub(crate) fn guard_dropped(&self, rate_limited: u64, blocked: u64) {
        for (reason, total) in [("rate_limited", rate_limited), ("blocked", blocked)] {
            let c = self.messages_dropped.with_label_values(&[reason]);
            c.inc_by(total.saturating_sub(c.get()));
        }
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

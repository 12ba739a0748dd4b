//! The Prometheus registry (DESIGN.md "Metrics": prefixed `sbc_`, base units, bounded labels).
//!
//! Counted from the events the shards hand out; the `trunk` label only takes configured trunk
//! names, or `unknown` for a request no trunk's index pointed at.

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric sbcd exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
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
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "sbc_trunk_auth_failures_total",
                "Requests refused by a trunk's inbound checks (mode: allow, domain, header, prefix, digest; trunk unknown, mode unmatched: no trunk's allowlist or hash domain matched) or challenges sbcd could not answer (mode: outbound)",
            ),
            &["trunk", "mode"],
        )
        .expect("valid metric");
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
        for m in [
            Box::new(auth_failures.clone()) as Box<dyn prometheus::core::Collector>,
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
            auth_failures,
            registration_up,
            trunk_up,
            rtp_forwarded,
            rtp_bytes,
            rtp_dropped,
            rtp_components,
            trunk_rtp_packets,
            trunk_rtp_bytes,
        }
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

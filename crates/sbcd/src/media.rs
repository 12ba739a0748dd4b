//! The media relay in the daemon: it binds the `[media]` range at start (raising the open-file
//! limit as far as the hard limit allows), shares the port pairs among the shards (each pair's
//! forwarding worker fixed by the relay, each shard its own share, so allocation takes no
//! lock), and moves events from the relay's workers to the shards that own the calls.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use b2bua::MediaSetup;
use rtp_relay::fwd::{Events, Io, Relay, RelayConfig};
use rtp_relay::stats::Discard;
use sbc_config::Config;
use tracing::{info, warn};

use crate::shards::ShardSet;

/// Forwarding threads: one per two cores (the shards take the others), at least one.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Raises the soft limit of open files to cover `needed` descriptors plus headroom, up to the
/// hard limit; fails with what to do when the hard limit is too low.
#[allow(unsafe_code)]
fn raise_fd_limit(needed: u64) -> anyhow::Result<()> {
    let want = needed + 1024;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error()).context("reading RLIMIT_NOFILE");
    }
    if lim.rlim_cur >= want {
        return Ok(());
    }
    if lim.rlim_max < want {
        anyhow::bail!(
            "the media port range needs {needed} open files but the hard limit is {}: raise \
             LimitNOFILE (systemd) or ulimit -n, or shrink media.port_min..media.port_max",
            lim.rlim_max
        );
    }
    lim.rlim_cur = want;
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error()).context("raising RLIMIT_NOFILE");
    }
    Ok(())
}

/// Binds the media range and starts the relay; returns it with each shard's media setup.
pub(crate) fn start(
    config: &Config,
    shards: usize,
) -> anyhow::Result<(Arc<Relay>, Events, Vec<MediaSetup>)> {
    let m = &config.media;
    let ports = u64::from(m.ports.max() - m.ports.min()) + 1;
    raise_fd_limit(ports)?;
    let workers = workers();
    let (relay, events) = Relay::start(&RelayConfig {
        listen: m.listen,
        port_min: m.ports.min(),
        port_max: m.ports.max(),
        workers,
        io: Io::Auto,
    })
    .with_context(|| {
        format!(
            "binding the media ports {}..={} on {}",
            m.ports.min(),
            m.ports.max(),
            m.listen
        )
    })?;
    if !relay.unavailable.is_empty() {
        warn!(
            count = relay.unavailable.len(),
            first = relay.unavailable[0],
            "media ports held by another program; their pairs are not used"
        );
    }
    let advertise = m.advertise.unwrap_or(m.listen);
    let mut setups: Vec<MediaSetup> = (0..shards)
        .map(|_| MediaSetup {
            advertise,
            pairs_by_worker: vec![Vec::new(); workers],
            idle_timeout: m.idle_timeout,
            hold_timeout: m.hold_timeout,
        })
        .collect();
    let pairs = m.ports.pairs();
    for p in 0..pairs {
        let rtp = m.ports.min() + 2 * p as u16;
        if relay.unavailable.contains(&rtp) || relay.unavailable.contains(&(rtp + 1)) {
            continue;
        }
        let worker = p % workers;
        let shard = (p / workers) % shards.max(1);
        setups[shard].pairs_by_worker[worker].push(rtp);
    }
    if let Some(why) = &relay.uring_unavailable {
        info!(reason = %why, "io_uring unavailable: the media relay uses recvmmsg/sendmmsg");
    }
    info!(
        ports = ports,
        workers,
        io = relay.backend.as_str(),
        listen = %m.listen,
        advertise = %advertise,
        "media relay started"
    );
    Ok((Arc::new(relay), events, setups))
}

/// Moves relay events to the shards (by the shard in the component id) and the relay's
/// counters to the metrics, on a thread of its own (the relay's event queue blocks).
pub(crate) fn spawn_event_pump(
    relay: Arc<Relay>,
    events: Events,
    shards: ShardSet,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sbcd-rtp-events".into())
        .spawn(move || {
            let (mut forwarded, mut bytes) = (0u64, 0u64);
            let mut dropped = [0u64; Discard::ALL.len()];
            let mut last = std::time::Instant::now();
            loop {
                if let Some(ev) = events.wait(Duration::from_millis(500)) {
                    shards.media_event(ev);
                }
                if last.elapsed() >= Duration::from_secs(1) {
                    last = std::time::Instant::now();
                    let s = &relay.stats;
                    let now = s.forwarded.load(std::sync::atomic::Ordering::Relaxed);
                    let m = &shards.counters.metrics;
                    m.rtp_forwarded.inc_by(now.saturating_sub(forwarded));
                    forwarded = now;
                    let now = s.bytes.load(std::sync::atomic::Ordering::Relaxed);
                    m.rtp_bytes.inc_by(now.saturating_sub(bytes));
                    bytes = now;
                    for (reason, seen) in Discard::ALL.iter().zip(&mut dropped) {
                        let now = s.dropped(*reason);
                        m.rtp_dropped
                            .with_label_values(&[reason.as_str()])
                            .inc_by(now.saturating_sub(*seen));
                        *seen = now;
                    }
                    m.rtp_components.set(
                        i64::try_from(s.components.load(std::sync::atomic::Ordering::Relaxed))
                            .unwrap_or(i64::MAX),
                    );
                }
            }
        })
        .map(|_| ())
}

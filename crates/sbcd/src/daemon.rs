//! The daemon: load the configuration, bind the SIP transports, run one signalling shard per
//! core, then wait for signals. SIGHUP reloads (new calls use the new trunks and routes;
//! running calls keep theirs), SIGTERM drains (new INVITEs get 503 while running calls go on
//! for `sip.shutdown_grace_secs`), SIGINT stops at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use sbc_config::{Config, ConfigErrors};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use std::time::Duration;

use b2bua::ShardOptions;

use crate::logging::{self, LogControl};
use crate::shards::{self, Input, ShardSet};
use crate::transport::{self, TlsSetup, TransportError, TransportOptions, Transports};
use crate::{EX_CONFIG, EX_SOFTWARE};

/// Runs the daemon until SIGTERM or SIGINT; returns the exit status.
pub(crate) fn run(config_path: &Path) -> u8 {
    let log = logging::init();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        debug_build = cfg!(debug_assertions),
        "sbcd starting"
    );
    let config = match sbc_config::load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            log_config_errors(config_path, &errors);
            error!(errors = errors.len(), "invalid configuration; exiting");
            return EX_CONFIG;
        }
    };
    log.apply(config.sip.log_level.as_deref());
    info!(
        config = %config_path.display(),
        trunks = config.trunks.len(),
        routes = config.routes.len(),
        "config loaded"
    );

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sbcd-worker")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error!(error = %e, "cannot start the tokio runtime");
            return EX_SOFTWARE;
        }
    };
    let result = runtime.block_on(serve(config_path.to_owned(), Arc::new(config), log));
    match result {
        Ok(()) => 0,
        Err(e) => {
            error!("{e:#}");
            EX_SOFTWARE
        }
    }
}

/// One `error!` per problem, the line exactly as `check-config` prints it.
fn log_config_errors(path: &Path, errors: &ConfigErrors) {
    for e in errors {
        error!(config = %path.display(), "{e}");
    }
}

async fn serve(config_path: PathBuf, config: Arc<Config>, log: LogControl) -> anyhow::Result<()> {
    // Install every handler before announcing readiness, so no signal is lost in between.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    // SIGTERM (drain) and SIGINT (stop at once) end the loop below; the drain loop then still
    // answers a second SIGTERM or SIGINT by stopping at once.
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    // Published whole on each reload.
    let (config_tx, _config_rx) = watch::channel(Arc::clone(&config));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let n = shard_count();
    // Nonces and registered Contact users are keyed by a secret of this process; it outlives
    // reloads, so challenges in flight stay valid across a SIGHUP. Its guard (per-source
    // limits) is shared by the transport readers and the shards.
    let shared = Arc::new(trunks::Shared::new(secret()?, std::time::Instant::now()));
    let guard = Arc::clone(&shared.guard);
    guard.reconfigure(
        trunks::guard::Limits::from_config(&config.limits),
        trunks::guard::Trusted::from_config(&config),
    );
    let (shard_set, receivers) = ShardSet::new(n, Arc::clone(&guard));
    let (relay, media_events, media_setups) = crate::media::start(&config, n)?;
    shard_set.counters.media_pairs_total.store(
        media_setups.first().map_or(0, |_| {
            media_setups
                .iter()
                .flat_map(|s| &s.pairs_by_worker)
                .map(Vec::len)
                .sum()
        }),
        std::sync::atomic::Ordering::Relaxed,
    );
    crate::media::spawn_event_pump(Arc::clone(&relay), media_events, shard_set.clone())
        .context("starting the media event thread")?;
    let sink = {
        let s = shard_set.clone();
        Arc::new(move |inbound| s.dispatch(inbound))
    };
    let errors = {
        let s = shard_set.clone();
        Arc::new(move |e: TransportError| s.transport_error(&e))
    };
    let tls = tls_setup(&config)?;
    let transports = Transports::bind(
        &config.sip.listen,
        tls,
        TransportOptions {
            guard: Some(Arc::clone(&guard)),
            ..TransportOptions::default()
        },
        sink,
        errors,
        shutdown_rx,
    )
    .await
    .context("binding the SIP listeners")?;
    let locals = shards::locals(&transports, &config);
    let routing = {
        let c = (*config).clone();
        let s = Arc::clone(&shared);
        Arc::new(tokio::task::spawn_blocking(move || shards::routing(c, s)).await?)
    };
    guard.reconfigure(
        trunks::guard::Limits::from_config(&config.limits),
        trusted(&routing),
    );
    shards::log_start(n, &locals);
    // POST /reload asks the loop below, so reloads from HTTP and SIGHUP run one at a time.
    let (reload_tx, mut reload_rx) = mpsc::channel::<oneshot::Sender<ReloadOutcome>>(4);
    let admin = crate::admin::serve(
        config.admin.listen,
        crate::admin::State {
            counters: Arc::clone(&shard_set.counters),
            config: config_tx.subscribe(),
            reload: reload_tx,
            started: std::time::Instant::now(),
        },
    )
    .await
    .with_context(|| format!("binding admin.listen {}", config.admin.listen))?;
    info!(listen = %admin, "admin endpoint: /metrics /status /health, POST /reload");
    let mut tasks = Vec::with_capacity(n);
    for (i, rx) in receivers.into_iter().enumerate() {
        let opts = ShardOptions {
            shard: i as u16,
            shards: n as u16,
            seed: seed() ^ i as u64,
            timers: b2bua::Timers {
                t1: config.sip.timers.t1,
                t2: config.sip.timers.t2,
                t4: config.sip.timers.t4,
            },
            media: media_setups.get(i).cloned(),
            counters: Arc::clone(&shard_set.counters.sip[i]),
            ..ShardOptions::default()
        };
        tasks.push(tokio::spawn(shards::run_shard(
            opts,
            Arc::clone(&routing),
            locals.clone(),
            rx,
            transports.clone(),
            Arc::clone(&shard_set.counters),
            Some(Arc::clone(&relay)),
        )));
    }
    info!("sbcd is serving SIP");
    let notifier = crate::notify::Notifier::from_env().map(Arc::new);
    if let Some(n) = &notifier {
        n.ready("serving SIP");
        if let Some(interval) = crate::watchdog::interval_from_env() {
            spawn_watchdog(
                interval,
                Arc::clone(n),
                shard_set.clone(),
                Arc::clone(&relay),
            );
        }
    }

    let grace = loop {
        tokio::select! {
            _ = sigterm.recv() => {
                info!(signal = "SIGTERM", "draining: new calls get 503");
                shard_set.counters.draining.store(true, std::sync::atomic::Ordering::Relaxed);
                if let Some(n) = &notifier {
                    n.stopping();
                }
                break config_tx.borrow().sip.shutdown_grace;
            }
            _ = sigint.recv() => {
                info!(signal = "SIGINT", "shutting down");
                break Duration::ZERO;
            }
            _ = sighup.recv() => {
                info!(signal = "SIGHUP", config = %config_path.display(), "reloading config");
                reload_and_apply(&config_path, &config_tx, &log, &shard_set, &shared, notifier.as_deref()).await;
            }
            Some(answer) = reload_rx.recv() => {
                info!(request = "POST /reload", config = %config_path.display(), "reloading config");
                let outcome = reload_and_apply(&config_path, &config_tx, &log, &shard_set, &shared, notifier.as_deref()).await;
                let _ = answer.send(outcome);
            }
        }
    };
    shard_set.broadcast(|| Input::Drain).await;
    let start = tokio::time::Instant::now();
    let deadline = start + grace;
    // After the grace period, the BYEs sent to calls still up get this long for their answers.
    let mut hung_up: Option<tokio::time::Instant> = None;
    // Un-REGISTERs get a few seconds even with no grace period (one round trip, or Timer F).
    let unregister_deadline = start + grace.max(UNREGISTER_WAIT);
    // Let the shards act on the drain (they count their un-REGISTERs) before looking.
    tokio::time::sleep(Duration::from_millis(50)).await;
    loop {
        let active = shard_set.counters.active_calls();
        let unregistering = shard_set.counters.unregistering();
        let now = tokio::time::Instant::now();
        // Calls cut by the grace period count as ended at once; their BYEs get a moment.
        let byes_done = hung_up.is_none_or(|at| now >= at + BYE_ANSWER);
        if active == 0 && unregistering == 0 && byes_done {
            break;
        }
        if active > 0 && now >= deadline {
            match hung_up {
                None => {
                    warn!(active, "grace period over: hanging up the calls still up");
                    shard_set.broadcast(|| Input::HangUpAll).await;
                    hung_up = Some(now);
                }
                Some(at) if now >= at + HANG_UP_WAIT => {
                    warn!(active, "exiting before every BYE was answered");
                    break;
                }
                Some(_) => {}
            }
        }
        if active == 0 && now >= unregister_deadline {
            warn!(
                unregistering,
                "exiting before every un-REGISTER was answered"
            );
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    let _ = shutdown_tx.send(true);
    for t in tasks {
        t.abort();
    }
    info!("sbcd stopped");
    Ok(())
}

/// The sources `[limits]` does not apply to: every trunk's allowlist and resolved outbound
/// addresses.
fn trusted(routing: &b2bua::Routing) -> trunks::guard::Trusted {
    let c = &routing.config;
    trunks::guard::Trusted::from_config(c).with_hosts(
        c.trunk_ids()
            .flat_map(|(id, _)| routing.addresses(id))
            .map(std::net::SocketAddr::ip),
    )
}

/// Pings systemd's watchdog while every shard and media worker makes progress; logs (once per
/// change) which part stands still when it stops pinging.
fn spawn_watchdog(
    interval: Duration,
    notifier: Arc<crate::notify::Notifier>,
    shard_set: ShardSet,
    relay: Arc<rtp_relay::fwd::Relay>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let (check, stall) = crate::watchdog::timing(interval);
    let shards = shard_set.len();
    info!(
        interval_ms = interval.as_millis() as u64,
        check_ms = check.as_millis() as u64,
        "systemd watchdog: WATCHDOG=1 while every shard and media worker makes progress"
    );
    tokio::spawn(async move {
        let parts = shards + relay.stats.heartbeats.len();
        let mut progress = crate::watchdog::Progress::new(parts, stall, std::time::Instant::now());
        let mut was_stalled = Vec::new();
        loop {
            shard_set.ping();
            tokio::time::sleep(check).await;
            let beats = shard_set
                .counters
                .beats
                .iter()
                .chain(relay.stats.heartbeats.iter())
                .map(|b| b.load(Relaxed));
            let stalled = progress.observe(std::time::Instant::now(), beats);
            if stalled.is_empty() {
                notifier.watchdog();
            }
            if stalled != was_stalled {
                let names: Vec<String> = stalled
                    .iter()
                    .map(|&i| {
                        if i < shards {
                            format!("shard {i}")
                        } else {
                            format!("media worker {}", i - shards)
                        }
                    })
                    .collect();
                if names.is_empty() {
                    info!("watchdog: every part makes progress again; pinging systemd");
                } else {
                    error!(
                        stalled = %names.join(", "),
                        stall_secs = stall.as_secs(),
                        "watchdog: no progress; not pinging systemd (it restarts sbcd after WatchdogSec)"
                    );
                }
                was_stalled = stalled;
            }
        }
    });
}

/// Reloads the file and, when it is valid and changes no restart-only key, hands the new
/// trunks and routes to every shard (new calls use them; running calls keep theirs). Tells
/// systemd RELOADING=1 before and READY=1 after, whatever the outcome.
async fn reload_and_apply(
    path: &Path,
    config_tx: &watch::Sender<Arc<Config>>,
    log: &LogControl,
    shard_set: &ShardSet,
    shared: &Arc<trunks::Shared>,
    notifier: Option<&crate::notify::Notifier>,
) -> ReloadOutcome {
    if let Some(n) = notifier {
        n.reloading();
    }
    let outcome = match reload(path, config_tx, log).await {
        Ok(new) => {
            let s = Arc::clone(shared);
            let trunks = new.trunks.len();
            let routes = new.routes.len();
            match tokio::task::spawn_blocking(move || shards::routing((*new).clone(), s)).await {
                Ok(routing) => {
                    let routing = Arc::new(routing);
                    let c = &routing.config;
                    shard_set.counters.guard.reconfigure(
                        trunks::guard::Limits::from_config(&c.limits),
                        trusted(&routing),
                    );
                    shard_set
                        .broadcast(|| Input::Routing(Arc::clone(&routing)))
                        .await;
                    ReloadOutcome::Ok { trunks, routes }
                }
                Err(e) => ReloadOutcome::Failed(format!("building the routing table: {e}")),
            }
        }
        Err(outcome) => outcome,
    };
    let label = outcome.label();
    shard_set
        .counters
        .metrics
        .config_reloads
        .with_label_values(&[label])
        .inc();
    // Ready again either way: a refused or invalid file keeps the running config.
    if let Some(n) = notifier {
        n.ready("serving SIP");
    }
    outcome
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReloadOutcome {
    /// Applied: new calls use these trunks and routes.
    Ok { trunks: usize, routes: usize },
    /// The file is invalid: every problem, as `check-config` prints it. Nothing applied.
    Invalid(Vec<String>),
    /// The file changes keys that need a restart. Nothing applied.
    Refused(Vec<String>),
    /// sbcd could not finish the reload. Nothing applied.
    Failed(String),
}

impl ReloadOutcome {
    /// The `result` label of `sbc_config_reloads_total`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Ok { .. } => "ok",
            Self::Invalid(_) | Self::Failed(_) => "error",
            Self::Refused(_) => "refused",
        }
    }
}

/// How long sbcd lets the BYEs of calls cut by the grace period be answered (and
/// retransmitted on UDP) before it exits.
const BYE_ANSWER: Duration = Duration::from_secs(1);

/// How long sbcd waits at most at exit for the answers to the BYEs of calls cut by the grace period
/// (a peer that never answers keeps a transaction until Timer F, 32 s).
const HANG_UP_WAIT: Duration = Duration::from_secs(4);

/// How long sbcd waits at exit for un-REGISTERs of registrations on behalf.
const UNREGISTER_WAIT: Duration = Duration::from_secs(5);

/// One shard per core.
fn shard_count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 64)
}

/// 32 random bytes from the kernel: the key of digest nonces and registered Contact users.
fn secret() -> anyhow::Result<[u8; 32]> {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("reading 32 random bytes from /dev/urandom")?;
    Ok(key)
}

/// A seed for tags, branches and Call-IDs that differs per process and start.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// TLS server config from `sip.tls_*` when a tls listener is configured; a client config
/// from the system roots for outbound TLS.
fn tls_setup(config: &Config) -> anyhow::Result<TlsSetup> {
    let server = match &config.sip.tls {
        Some(files) => {
            Some(transport::load_server_config(files).context("loading the TLS certificate")?)
        }
        None => None,
    };
    let client = match transport::client_config(None) {
        Ok(c) => Some(c),
        Err(e) => {
            warn!(error = %e, "no TLS client configuration: outbound tls trunks will fail");
            None
        }
    };
    Ok(TlsSetup { server, client })
}

/// Loads the file again off the runtime threads and publishes it if it is valid and changes
/// nothing that needs a restart; otherwise keeps the running configuration.
async fn reload(
    path: &Path,
    config_tx: &watch::Sender<Arc<Config>>,
    log: &LogControl,
) -> Result<Arc<Config>, ReloadOutcome> {
    let owned = path.to_owned();
    let loaded = match tokio::task::spawn_blocking(move || sbc_config::load(&owned)).await {
        Ok(loaded) => loaded,
        Err(e) => {
            error!(error = %e, "config reload task failed; keeping the running config");
            return Err(ReloadOutcome::Failed(format!("reading the file: {e}")));
        }
    };
    let new = match loaded {
        Ok(new) => new,
        Err(errors) => {
            log_config_errors(path, &errors);
            error!(
                errors = errors.len(),
                "config reload failed; keeping the running config"
            );
            return Err(ReloadOutcome::Invalid(
                errors.iter().map(ToString::to_string).collect(),
            ));
        }
    };
    let restart_only = config_tx.borrow().restart_required(&new);
    if !restart_only.is_empty() {
        error!(
            keys = %restart_only.join(", "),
            "config reload refused: these keys change only on restart; keeping the running config"
        );
        return Err(ReloadOutcome::Refused(
            restart_only.iter().map(ToString::to_string).collect(),
        ));
    }
    log.apply(new.sip.log_level.as_deref());
    info!(
        trunks = new.trunks.len(),
        routes = new.routes.len(),
        "config reloaded"
    );
    let new = Arc::new(new);
    config_tx.send_replace(Arc::clone(&new));
    Ok(new)
}

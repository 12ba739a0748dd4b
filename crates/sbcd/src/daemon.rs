//! The daemon: load the configuration, then wait for signals. SIGHUP reloads, SIGTERM and
//! SIGINT stop. SIP transports, calls and media arrive with later issues.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use sbc_config::{Config, ConfigErrors};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::logging::{self, LogControl};
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
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    // Published whole on each reload; the shards and the admin endpoint will subscribe.
    let (config_tx, _config_rx) = watch::channel(config);

    warn!("sbcd is not serving SIP yet (issue 3); waiting for SIGTERM/SIGINT");
    loop {
        tokio::select! {
            _ = sigterm.recv() => {
                info!(signal = "SIGTERM", "shutting down");
                return Ok(());
            }
            _ = sigint.recv() => {
                info!(signal = "SIGINT", "shutting down");
                return Ok(());
            }
            _ = sighup.recv() => reload(&config_path, &config_tx, &log).await,
        }
    }
}

/// Loads the file again off the runtime threads and publishes it if it is valid and changes
/// nothing that needs a restart; otherwise keeps the running configuration.
async fn reload(path: &Path, config_tx: &watch::Sender<Arc<Config>>, log: &LogControl) {
    info!(signal = "SIGHUP", config = %path.display(), "reloading config");
    let owned = path.to_owned();
    let loaded = match tokio::task::spawn_blocking(move || sbc_config::load(&owned)).await {
        Ok(loaded) => loaded,
        Err(e) => {
            error!(error = %e, "config reload task failed; keeping the running config");
            return;
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
            return;
        }
    };
    let restart_only = config_tx.borrow().restart_required(&new);
    if !restart_only.is_empty() {
        error!(
            keys = %restart_only.join(", "),
            "config reload refused: these keys change only on restart; keeping the running config"
        );
        return;
    }
    log.apply(new.sip.log_level.as_deref());
    info!(
        trunks = new.trunks.len(),
        routes = new.routes.len(),
        "config reloaded"
    );
    config_tx.send_replace(Arc::new(new));
}

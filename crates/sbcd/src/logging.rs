//! tracing-subscriber setup: stderr, `RUST_LOG` over `sip.log_level` over `info`, reloadable.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

/// The filter used before the configuration is read, and when it sets no `log_level`.
const DEFAULT_FILTER: &str = "info";

/// Changes the log filter after startup (from `sip.log_level`, on load and reload).
#[derive(Debug)]
pub(crate) struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` is set and valid: it wins over the configuration.
    from_env: bool,
}

impl LogControl {
    /// Applies the configuration's `log_level`, unless `RUST_LOG` overrides it.
    pub(crate) fn apply(&self, log_level: Option<&str>) {
        if self.from_env {
            return;
        }
        let directives = log_level.unwrap_or(DEFAULT_FILTER);
        match EnvFilter::try_new(directives) {
            Ok(filter) => {
                if let Err(error) = self.handle.reload(filter) {
                    tracing::warn!(%error, "cannot change the log filter");
                }
            }
            // sbc-config validates log_level, so this is a disagreement between the two parsers.
            Err(error) => tracing::warn!(%error, log_level = directives, "ignoring sip.log_level"),
        }
    }
}

/// Installs the global subscriber: plain text on stderr, without timestamps under systemd
/// (`JOURNAL_STREAM` set: the journal stamps lines itself) and without colours unless stderr
/// is a terminal.
pub(crate) fn init() -> LogControl {
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let mut bad_rust_log = None;
    let (filter, from_env) = match rust_log.as_deref().map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, true),
        Some(Err(error)) => {
            bad_rust_log = Some(error);
            (EnvFilter::new(DEFAULT_FILTER), false)
        }
        None => (EnvFilter::new(DEFAULT_FILTER), false),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let ansi = !under_journal && std::io::stderr().is_terminal();
    // Two optional layers rather than one, since `without_time` changes the layer's type.
    let with_time =
        (!under_journal).then(|| fmt::layer().with_writer(std::io::stderr).with_ansi(ansi));
    let without_time = under_journal.then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .without_time()
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(with_time)
        .with(without_time)
        .init();
    if let Some(error) = bad_rust_log {
        tracing::warn!(%error, "ignoring RUST_LOG, which is not a valid filter");
    }
    LogControl { handle, from_env }
}

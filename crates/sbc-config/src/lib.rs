//! sbcd's configuration: the TOML schema, loading, and validation with clear errors.
//!
//! The file format is the user-facing contract of DESIGN.md (`[sip]`, `[media]`, `[admin]`,
//! `[[trunk]]`, `[[route]]`). Loading goes in three steps:
//!
//! 1. **Layers** ([`load`]): the file (always TOML, whatever its extension), then `SBC__*`
//!    environment variables on top, merged by the `config` crate. `SBC__SIP__LOG_LEVEL=debug`
//!    sets `sip.log_level`; `SBC__SIP__LISTEN` takes a comma-separated list. Env keys are
//!    lowercased (config crate behaviour), and arrays of tables (`[[trunk]]`) cannot be
//!    overridden this way.
//! 2. **Shape** ([`RawConfig`]): serde with `deny_unknown_fields` everywhere, so a typo in the
//!    file or in an env override is an error, never a silently ignored key.
//! 3. **Meaning** ([`RawConfig::validate`] → [`Config`]): typed values, cross-references,
//!    password files read. Every problem is collected, so one run lists them all.
//!
//! Every problem is one [`ConfigError`], displayed as `key.path: problem (got value)`:
//!
//! ```text
//! trunk[1].outbound.uri: not a SIP URI (got "http://x")
//! route[0].to[1]: unknown trunk "backup"
//! trunk[0].inbound.prefx: unknown key (expected allow, domain, header, prefix, digest, register)
//! ```
//!
//! Passwords and header secrets are [`Secret`]s: redacted in `Debug`, never quoted in errors.
//!
//! Loading does blocking file I/O; the daemon runs it in `spawn_blocking` on reload.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod model;
pub mod net;
mod raw;
mod secret;
pub mod uri;
mod validate;

use std::ffi::OsString;
use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::{
    AdminConfig, ChallengeStatus, Config, Credentials, Destination, DigestAlgorithm, DigestConfig,
    DigestUri, DigestUriCheck, HeaderConfig, InboundConfig, LimitsConfig, MediaConfig,
    NumberPattern, OutboundAuth, OutboundConfig, RegisterConfig, RouteConfig, RtpPorts, SipConfig,
    SipTimers, TlsFiles, TrunkConfig, TrunkId, TrunkMedia,
};
pub use raw::{
    RawAdmin, RawConfig, RawCredentials, RawDigest, RawHeader, RawInbound, RawLimits, RawMedia,
    RawOutbound, RawOutboundAuth, RawRegister, RawRoute, RawSip, RawTrunk, RawTrunkMedia,
    DEFAULT_HOLD_TIMEOUT_SECS, DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_REGISTER_EXPIRES_SECS,
    DEFAULT_SHUTDOWN_GRACE_SECS,
};
pub use secret::Secret;

/// Prefix of environment overrides: `SBC__SECTION__KEY`.
pub const ENV_PREFIX: &str = "SBC__";

/// Loads, merges with the process's `SBC__*` environment variables, and validates the file.
///
/// Returns every problem found, file-level problems (unreadable, not TOML) as an error whose
/// path is the file's path.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with_env(path, std::env::vars_os())
}

/// [`load`] with the environment given explicitly (tests, or a daemon that captured its
/// environment at startup). Variables without the `SBC__` prefix are ignored.
pub fn load_with_env<K, V>(
    path: &Path,
    env: impl IntoIterator<Item = (K, V)>,
) -> Result<Config, ConfigErrors>
where
    K: Into<OsString>,
    V: Into<OsString>,
{
    let file = path.display().to_string();
    // Read the file ourselves: config's File source guesses formats from the extension and
    // tries other extensions when the path is missing; here the path given is the file read.
    let text = std::fs::read(path).map_err(|e| {
        ConfigError::new(&file, format!("cannot read: {}", validate::io_problem(&e)))
    })?;
    let text = String::from_utf8(text).map_err(|_| ConfigError::new(&file, "not UTF-8 text"))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let (overrides, credentials) = env_overrides(env)?;
    load_layers(&text, &file, base_dir, overrides, credentials.as_deref())
}

/// Validates TOML text without environment overrides; relative `password_file` and TLS paths
/// are taken relative to `base_dir`. Errors about the text itself name the path `<string>`.
pub fn load_str(toml: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    load_layers(toml, "<string>", base_dir, Vec::new(), None)
}

/// The `SBC__*` variables of `env`, names as given, and `CREDENTIALS_DIRECTORY` (where
/// systemd's `LoadCredential=` puts secrets; `password_file` may start with it).
#[allow(clippy::type_complexity)]
fn env_overrides<K, V>(
    env: impl IntoIterator<Item = (K, V)>,
) -> Result<(Vec<(String, String)>, Option<std::path::PathBuf>), ConfigErrors>
where
    K: Into<OsString>,
    V: Into<OsString>,
{
    let mut vars = Vec::new();
    let mut credentials = None;
    let mut errors = Vec::new();
    for (name, value) in env {
        let name = name.into();
        if name == "CREDENTIALS_DIRECTORY" {
            credentials = Some(std::path::PathBuf::from(value.into()));
            continue;
        }
        let Ok(name) = name.into_string() else {
            continue;
        };
        if !name.to_ascii_uppercase().starts_with(ENV_PREFIX) {
            continue;
        }
        match value.into().into_string() {
            Ok(value) => vars.push((name, value)),
            Err(_) => errors.push(ConfigError::new(
                env_key(&name),
                format!("environment variable {name} is not UTF-8"),
            )),
        }
    }
    if errors.is_empty() {
        Ok((vars, credentials))
    } else {
        Err(ConfigErrors::new(errors))
    }
}

/// The config key an override sets, as the config crate computes it: `SBC__SIP__LOG_LEVEL` →
/// `sip.log_level`.
fn env_key(name: &str) -> String {
    name[ENV_PREFIX.len()..].to_lowercase().replace("__", ".")
}

fn load_layers(
    toml: &str,
    file: &str,
    base_dir: &Path,
    env: Vec<(String, String)>,
    credentials: Option<&Path>,
) -> Result<Config, ConfigErrors> {
    let overrides: config::Map<String, String> = env.iter().cloned().collect();
    let merged = config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("SBC")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("sip.listen")
                .source(Some(overrides)),
        )
        .build()
        .map_err(|e| annotate(vec![error::from_config_crate(e, "", file)], &env))?;
    let mut errors = Vec::new();
    if let Ok(root) = merged
        .clone()
        .try_deserialize::<config::Map<String, config::Value>>()
    {
        for section in ["sip", "media", "admin", "trunk", "route"] {
            if let Some(value) = root.get(section) {
                fractional_integers(value, section, &mut errors);
            }
        }
    }
    match merged.clone().try_deserialize::<RawConfig>() {
        Err(first) => errors.extend(shape_errors(&merged, first, file)),
        Ok(raw) => match raw.validate_with(base_dir, credentials) {
            Ok(config) if errors.is_empty() => return Ok(config),
            Ok(_) => {}
            Err(e) => errors.extend(e),
        },
    }
    Err(annotate(errors, &env))
}

/// The config crate rounds a float given for an integer (`port_min = 2.5` becomes 3). Every
/// integer key of the schema is a port or ends in `_secs`, so refuse floats there.
fn fractional_integers(value: &config::Value, path: &str, errors: &mut Vec<ConfigError>) {
    match &value.kind {
        config::ValueKind::Table(table) => {
            let mut keys: Vec<&String> = table.keys().collect();
            keys.sort(); // a deterministic order for the messages
            for key in keys {
                fractional_integers(&table[key], &error::join_path(path, key), errors);
            }
        }
        config::ValueKind::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                fractional_integers(v, &format!("{path}[{i}]"), errors);
            }
        }
        config::ValueKind::Float(f) => {
            let key = path.rsplit('.').next().unwrap_or(path);
            if key.ends_with("_secs") || key == "port_min" || key == "port_max" {
                errors.push(ConfigError::new(
                    path,
                    format!("expected an integer (got {f})"),
                ));
            }
        }
        _ => {}
    }
}

/// serde stops at the first error; to list more at once, deserialize each section and each
/// `[[trunk]]` / `[[route]]` entry on its own. Within one entry only the first error shows.
fn shape_errors(
    merged: &config::Config,
    first: config::ConfigError,
    file: &str,
) -> Vec<ConfigError> {
    let Ok(mut table) = merged
        .clone()
        .try_deserialize::<config::Map<String, config::Value>>()
    else {
        return vec![error::from_config_crate(first, "", file)];
    };
    let mut errors = Vec::new();
    fn check<T: serde::de::DeserializeOwned>(
        value: config::Value,
        path: &str,
        file: &str,
        errors: &mut Vec<ConfigError>,
    ) {
        if let Err(e) = value.try_deserialize::<T>() {
            errors.push(error::from_config_crate(e, path, file));
        }
    }
    for section in ["sip", "media", "admin"] {
        match table.remove(section) {
            None => errors.push(ConfigError::new(section, "required section is missing")),
            Some(value) => match section {
                "sip" => check::<RawSip>(value, section, file, &mut errors),
                "media" => check::<RawMedia>(value, section, file, &mut errors),
                _ => check::<RawAdmin>(value, section, file, &mut errors),
            },
        }
    }
    for list in ["trunk", "route"] {
        let Some(value) = table.remove(list) else {
            continue;
        };
        match value.into_array() {
            Err(e) => errors.push(error::from_config_crate(e, list, file)),
            Ok(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    let path = format!("{list}[{i}]");
                    if list == "trunk" {
                        check::<RawTrunk>(item, &path, file, &mut errors);
                    } else {
                        check::<RawRoute>(item, &path, file, &mut errors);
                    }
                }
            }
        }
    }
    let mut unknown: Vec<String> = table.into_keys().collect();
    unknown.sort();
    for key in unknown {
        errors.push(ConfigError::new(
            key,
            "unknown key (expected sip, media, admin, trunk, route)",
        ));
    }
    if errors.is_empty() {
        // The sections agree but the whole did not: report what serde said.
        errors.push(error::from_config_crate(first, "", file));
    }
    errors
}

/// Marks errors about keys that an environment variable set, since the operator will not find
/// them in the file.
fn annotate(mut errors: Vec<ConfigError>, env: &[(String, String)]) -> ConfigErrors {
    for e in &mut errors {
        let by_env = env.iter().find(|(name, _)| {
            let key = env_key(name);
            e.path == key
                || e.path
                    .strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        });
        if let Some((name, _)) = by_env {
            e.problem = format!("set by environment variable {name}: {}", e.problem);
        }
    }
    ConfigErrors::new(errors)
}

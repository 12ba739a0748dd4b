//! The command line: `sbcd --config FILE`, `sbcd check-config --config FILE`, `--version`,
//! `--help`. Parsed by hand; the grammar is small and its errors must be exact.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `sbcd --config FILE`: run the daemon.
    Run {
        /// The configuration file.
        config: PathBuf,
    },
    /// `sbcd check-config --config FILE`: validate and exit.
    CheckConfig {
        /// The configuration file.
        config: PathBuf,
    },
    /// `sbcd status --config FILE`: print the running daemon's status (from `admin.listen`).
    Status {
        /// The configuration file (its `admin.listen` is asked).
        config: PathBuf,
    },
    /// `--version` / `-V`.
    Version,
    /// `--help` / `-h`.
    Help,
}

/// A command line that does not follow the grammar (exit status 64, EX_USAGE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The `--help` text.
pub const USAGE: &str = "\
sbcd - SIP session border controller (B2BUA)

Usage:
  sbcd --config FILE                 run the daemon
  sbcd check-config --config FILE    validate FILE: exit 0, or 78 listing every problem
  sbcd status --config FILE          print the running daemon's trunks, calls and media
                                     (asks admin.listen of FILE for /status.txt)
  sbcd --version
  sbcd --help

Options:
  -c, --config FILE    the configuration file (TOML)
  -h, --help           print this help
  -V, --version        print the version

Signals: SIGHUP reloads the configuration (as does POST /reload on admin.listen); SIGTERM
drains (new calls get 503, running calls go on for sip.shutdown_grace_secs); SIGINT stops.
Environment: RUST_LOG overrides sip.log_level; SBC__SECTION__KEY overrides a config key
(e.g. SBC__SIP__LOG_LEVEL=debug).
Exit status: 0 success, 1 runtime failure, 64 usage error, 78 configuration error.
";

/// Parses the arguments after the program name.
///
/// `--help` and `--version` win over everything else, as in most tools; otherwise exactly one
/// `--config` is required, with at most the `check-config` subcommand.
pub fn parse_args<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        return Ok(Command::Version);
    }

    let mut config: Option<PathBuf> = None;
    let mut subcommand: Option<String> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        let value = if arg == "--config" || arg == "-c" {
            Some(
                args.next()
                    .ok_or_else(|| UsageError(format!("{text} needs a FILE argument")))?,
            )
        } else {
            arg.to_str()
                .and_then(|a| a.strip_prefix("--config="))
                .map(OsString::from)
        };
        if let Some(value) = value {
            if value.is_empty() {
                return Err(UsageError("--config needs a FILE argument".into()));
            }
            if config.replace(PathBuf::from(value)).is_some() {
                return Err(UsageError("--config given more than once".into()));
            }
        } else if text.starts_with('-') {
            return Err(UsageError(format!("unknown option {:?}", text)));
        } else if subcommand.is_some() {
            return Err(UsageError(format!("unexpected argument {:?}", text)));
        } else if arg == OsStr::new("check-config") || arg == OsStr::new("status") {
            subcommand = Some(text.into_owned());
        } else {
            return Err(UsageError(format!("unknown subcommand {:?}", text)));
        }
    }
    let config = config.ok_or_else(|| UsageError("missing --config FILE".into()))?;
    Ok(match subcommand.as_deref() {
        Some("status") => Command::Status { config },
        Some(_) => Command::CheckConfig { config },
        None => Command::Run { config },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().copied())
    }

    fn usage(args: &[&str]) -> String {
        parse(args).expect_err("usage error").to_string()
    }

    #[test]
    fn accepted_forms() {
        let run = Command::Run {
            config: "/etc/sbcd/sbcd.toml".into(),
        };
        assert_eq!(parse(&["--config", "/etc/sbcd/sbcd.toml"]), Ok(run.clone()));
        assert_eq!(parse(&["-c", "/etc/sbcd/sbcd.toml"]), Ok(run.clone()));
        assert_eq!(parse(&["--config=/etc/sbcd/sbcd.toml"]), Ok(run));
        let check = Command::CheckConfig {
            config: "x.toml".into(),
        };
        assert_eq!(
            parse(&["check-config", "--config", "x.toml"]),
            Ok(check.clone())
        );
        assert_eq!(parse(&["check-config", "-c", "x.toml"]), Ok(check.clone()));
        assert_eq!(parse(&["--config", "x.toml", "check-config"]), Ok(check));
        assert_eq!(
            parse(&["status", "-c", "x.toml"]),
            Ok(Command::Status {
                config: "x.toml".into()
            })
        );
        assert_eq!(parse(&["--version"]), Ok(Command::Version));
        assert_eq!(parse(&["-V"]), Ok(Command::Version));
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["check-config", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn usage_errors() {
        assert_eq!(usage(&[]), "missing --config FILE");
        assert_eq!(usage(&["check-config"]), "missing --config FILE");
        assert_eq!(usage(&["--config"]), "--config needs a FILE argument");
        assert_eq!(usage(&["-c"]), "-c needs a FILE argument");
        assert_eq!(usage(&["--config="]), "--config needs a FILE argument");
        assert_eq!(
            usage(&["-c", "a", "-c", "b"]),
            "--config given more than once"
        );
        assert_eq!(
            usage(&["--verbose", "-c", "a"]),
            "unknown option \"--verbose\""
        );
        assert_eq!(usage(&["serve", "-c", "a"]), "unknown subcommand \"serve\"");
        assert_eq!(
            usage(&["check-config", "check-config", "-c", "a"]),
            "unexpected argument \"check-config\""
        );
        assert_eq!(
            usage(&["status", "check-config", "-c", "a"]),
            "unexpected argument \"check-config\""
        );
        assert_eq!(usage(&["status"]), "missing --config FILE");
    }
}

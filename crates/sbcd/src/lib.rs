//! sbcd, the SIP session border controller daemon: the tokio shell around the sans-IO cores.
//!
//! It validates the configuration (`check-config`); as a daemon it binds the SIP transports,
//! runs one shard of calls per core, registers trunks on behalf, serves `/metrics`, `/status`
//! and `/health` on `admin.listen`, reloads on SIGHUP and drains on SIGTERM. The binary is a
//! thin `main` over [`main_with_args`], so tests can drive the same code.
//!
//! Exit status: 0 success, [`EX_SOFTWARE`] (1) runtime failure, [`EX_USAGE`] (64) bad command
//! line, [`EX_CONFIG`] (78) invalid configuration — paired with `RestartPreventExitStatus=78` in
//! `systemd/sbcd.service`, so systemd does not restart a daemon whose config is broken.
// Only media.rs (the open-file limit) and notify.rs (the monotonic clock) call libc (one
// allow each, SAFETY comments).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod admin;
pub mod cli;
mod daemon;
mod dns;
mod logging;
mod media;
mod metrics;
mod notify;
mod shards;
mod status;
pub mod transport;
mod watchdog;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use cli::Command;

/// Exit status of a runtime failure.
pub const EX_SOFTWARE: u8 = 1;
/// Exit status of a bad command line (sysexits.h `EX_USAGE`).
pub const EX_USAGE: u8 = 64;
/// Exit status of an invalid configuration (sysexits.h `EX_CONFIG`).
pub const EX_CONFIG: u8 = 78;

/// Runs sbcd with a full argument list (program name first, as `std::env::args_os()` gives).
pub fn main_with_args<I>(args: I) -> ExitCode
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    ExitCode::from(run_command(args.into_iter().skip(1)))
}

fn run_command<I>(args: I) -> u8
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    match cli::parse_args(args) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            0
        }
        Ok(Command::Version) => {
            println!("sbcd {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Command::CheckConfig { config }) => check_config(&config),
        Ok(Command::Status { config }) => status(&config),
        Ok(Command::Run { config }) => daemon::run(&config),
        Err(e) => {
            eprintln!("sbcd: {e}\nTry 'sbcd --help'.");
            EX_USAGE
        }
    }
}

/// `sbcd check-config`: `config OK: N trunks, M routes` on stdout and 0, or every problem on
/// stderr (one `key.path: problem` line each) and 78.
fn check_config(path: &Path) -> u8 {
    match sbc_config::load(path) {
        Ok(config) => {
            println!(
                "config OK: {} trunks, {} routes",
                config.trunks.len(),
                config.routes.len()
            );
            0
        }
        Err(errors) => {
            let mut stderr = std::io::stderr().lock();
            for e in &errors {
                // Nothing better to do if stderr is gone; the exit status still tells.
                let _ = writeln!(stderr, "{e}");
            }
            EX_CONFIG
        }
    }
}

/// `sbcd status`: the running daemon's table on stdout and 0; 78 if the file is invalid, 1 if
/// the daemon does not answer on its `admin.listen`.
fn status(path: &Path) -> u8 {
    let config = match sbc_config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            let mut stderr = std::io::stderr().lock();
            for e in &errors {
                let _ = writeln!(stderr, "{e}");
            }
            return EX_CONFIG;
        }
    };
    match status::fetch(config.admin.listen) {
        Ok(table) => {
            print!("{table}");
            0
        }
        Err(e) => {
            eprintln!(
                "sbcd status: {e} (admin.listen in {}); is sbcd running with this config?",
                path.display()
            );
            EX_SOFTWARE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_of_the_command_line() {
        let status =
            |args: &[&str]| main_with_args(std::iter::once("sbcd").chain(args.iter().copied()));
        assert_eq!(status(&["--version"]), ExitCode::SUCCESS);
        assert_eq!(status(&["--help"]), ExitCode::SUCCESS);
        assert_eq!(status(&["frobnicate"]), ExitCode::from(EX_USAGE));
        assert_eq!(status(&[]), ExitCode::from(EX_USAGE));
    }
}

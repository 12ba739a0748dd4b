//! The `sbcd` binary; everything lives in the library (see `sbcd::main_with_args`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    sbcd::main_with_args(std::env::args_os())
}

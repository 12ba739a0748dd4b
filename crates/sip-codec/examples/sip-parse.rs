//! `cargo run -q -p sip-codec --example sip-parse < message`
//!
//! Reads one SIP message on stdin, parses and validates it as sbcd does before acting on a
//! datagram, and prints a normalized dump: the start line, then one header per line as
//! `Name: value` (known headers under their full canonical name, compact forms expanded, folded
//! values joined with single spaces), then, if there is a body, an empty line and the body.
//! Exit 0 on success; on error prints `error: <what and where>` to stderr and exits 1.
//! Input larger than 1 MiB is an error, so it never buffers without bound.

use std::io::{Read, Write};
use std::process::ExitCode;

use sip_codec::{parse, HeaderKind, StartLine, EMPTY_HEADER};

const MAX_INPUT: u64 = 1 << 20;

fn main() -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().take(MAX_INPUT + 1).read_to_end(&mut input) {
        eprintln!("error: reading stdin: {e}");
        return ExitCode::FAILURE;
    }
    if input.len() as u64 > MAX_INPUT {
        eprintln!("error: input larger than {MAX_INPUT} bytes");
        return ExitCode::FAILURE;
    }
    let mut headers = [EMPTY_HEADER; 256];
    let msg = match parse(&input, &mut headers) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = msg.validate() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let mut out = Vec::with_capacity(input.len() + 256);
    match msg.start {
        StartLine::Request {
            method_raw, uri, ..
        } => {
            out.extend_from_slice(method_raw);
            out.push(b' ');
            out.extend_from_slice(uri);
            out.push(b' ');
            out.extend_from_slice(msg.version);
        }
        StartLine::Response { code, reason } => {
            out.extend_from_slice(msg.version);
            out.extend_from_slice(format!(" {code} ").as_bytes());
            out.extend_from_slice(reason);
        }
    }
    out.push(b'\n');
    for h in msg.headers {
        let name = if h.kind == HeaderKind::Other {
            h.name
        } else {
            h.kind.as_str().as_bytes()
        };
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        push_unfolded(&mut out, h.value);
        out.push(b'\n');
    }
    if !msg.body.is_empty() {
        out.push(b'\n');
        out.extend_from_slice(msg.body);
    }
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Replaces each run of folding white space (CR, LF, SP, HT around a line break) with one SP.
fn push_unfolded(out: &mut Vec<u8>, value: &[u8]) {
    let mut i = 0;
    while i < value.len() {
        let c = value[i];
        if c == b'\r' || c == b'\n' {
            while out.last().is_some_and(|&b| b == b' ' || b == b'\t') {
                out.pop();
            }
            while i < value.len() && matches!(value[i], b'\r' | b'\n' | b' ' | b'\t') {
                i += 1;
            }
            out.push(b' ');
            continue;
        }
        out.push(c);
        i += 1;
    }
}

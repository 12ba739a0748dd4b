//! The `sip-parse` probe (`cargo run -q -p sip-codec --example sip-parse < message`): a normalized
//! dump and exit 0 for a valid message, the error and exit 1 otherwise, never a panic or a hang.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// Builds the example once (cargo has no CARGO_BIN_EXE_ for examples) and returns its path.
fn probe() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "-q",
            "-p",
            "sip-codec",
            "--example",
            "sip-parse",
            "--message-format=short",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(out.success(), "building the example failed");
    // The test binary lives in target/<profile>/deps; the example in target/<profile>/examples.
    let exe = std::env::current_exe().expect("test path");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    profile_dir.join("examples").join("sip-parse")
}

/// Runs the probe on `input`; returns (exit code, stdout, stderr). Fails if it takes over 10 s.
fn run(exe: &PathBuf, input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("probe starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("probe hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status
            .code()
            .expect("exited, not killed by a signal (a panic aborts with 101)"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn probe_dumps_valid_messages_and_reports_errors() {
    let exe = probe();

    let wsinv = std::fs::read(format!("{DATA}/wsinv.dat")).unwrap();
    let (code, out, _) = run(&exe, &wsinv);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0"
    );
    // Full canonical names (compact `v`/`m` expanded); a line fold becomes one SP, other white
    // space stays as received.
    assert!(
        lines.contains(&"To: sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"),
        "{out}"
    );
    assert!(lines.contains(&"Max-Forwards: 0068"), "{out}");
    assert!(lines.contains(&"Via: SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8  , SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239"), "{out}");
    assert!(lines.contains(&"Contact: \"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33"), "{out}");

    let (code, _, err) = run(&exe, &std::fs::read(format!("{DATA}/ncl.dat")).unwrap());
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "error: Content-Length: negative");

    let (code, _, err) = run(&exe, &std::fs::read(format!("{DATA}/insuf.dat")).unwrap());
    assert_eq!(code, 1);
    assert!(err.starts_with("error: Call-ID: missing"), "{err}");

    for garbage in [&b""[..], b"\0\xff\r\n\r\n", b"INVITE", &[b'A'; 200_000]] {
        let (code, _, err) = run(&exe, garbage);
        assert_eq!(code, 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
}

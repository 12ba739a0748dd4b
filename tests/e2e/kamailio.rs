//! The `Kamailio` guard: tests/kamailio/proxy.cfg as a stateful proxy in front of the carrier
//! ([`Kamailio::start`]), or another config with its own defines ([`Kamailio::start_spec`],
//! e.g. tests/kamailio/auth.cfg). Foreground (`-DD -E`), its own pid file and runtime
//! directory, listening only on the 127.0.0.x address the test gives it, so a Kamailio system
//! service cannot interfere.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::sbcd::options_probe;
use crate::util::{self, host_port, read_lossy, TestDir};

pub(crate) fn config() -> PathBuf {
    util::repo().join("tests/kamailio/proxy.cfg")
}

fn program() -> PathBuf {
    util::find_program("kamailio").unwrap_or_else(|| {
        panic!("kamailio not found in PATH or /usr/sbin: install Debian's kamailio (tests/run-all.sh does)")
    })
}

/// Which config a Kamailio runs, with which `-A` defines, under which name (its log is
/// `<name>.log` and its runtime directory `<name>-run` in the test directory).
#[derive(Debug, Clone)]
pub(crate) struct KamailioSpec {
    pub(crate) name: String,
    pub(crate) config: PathBuf,
    /// Each passed as `-A DEFINE` (`NAME` or `NAME="value"`).
    pub(crate) defines: Vec<String>,
}

impl KamailioSpec {
    /// proxy.cfg relaying to `next_hop`, named "kamailio".
    fn proxy(next_hop: &str) -> Self {
        Self {
            name: "kamailio".to_owned(),
            config: config(),
            defines: vec![format!("CARRIER_URI=\"{next_hop}\"")],
        }
    }

    /// The runtime directory (`-Y`, pid file) in the test directory.
    pub(crate) fn run_dir(&self, dir: &TestDir) -> PathBuf {
        dir.file(&format!("{}-run", self.name))
    }

    fn log(&self, dir: &TestDir) -> PathBuf {
        dir.file(&format!("{}.log", self.name))
    }
}

/// The arguments shared by the check (`-c`) and the real run.
fn common_args(cmd: &mut Command, listen: SocketAddr, spec: &KamailioSpec, run_dir: &Path) {
    cmd.arg("-f")
        .arg(&spec.config)
        .arg("-Y")
        .arg(run_dir)
        .arg("-l")
        .arg(format!("udp:{}", host_port(listen)));
    for define in &spec.defines {
        cmd.arg("-A").arg(define);
    }
}

/// `kamailio -c` on proxy.cfg with the test's defines: (success, output).
pub(crate) fn check(dir: &TestDir, listen: SocketAddr, next_hop: &str) -> (bool, String) {
    check_spec(dir, listen, &KamailioSpec::proxy(next_hop))
}

/// `kamailio -c` on `spec`'s config with its defines: (success, output).
pub(crate) fn check_spec(dir: &TestDir, listen: SocketAddr, spec: &KamailioSpec) -> (bool, String) {
    let run_dir = spec.run_dir(dir);
    std::fs::create_dir_all(&run_dir).expect("create kamailio run dir");
    let mut cmd = Command::new(program());
    cmd.arg("-c");
    common_args(&mut cmd, listen, spec, &run_dir);
    let out = cmd.output().expect("run kamailio -c");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[derive(Debug)]
pub(crate) struct Kamailio {
    child: Child,
    pub(crate) listen: SocketAddr,
    log: PathBuf,
}

impl Kamailio {
    /// Checks the config with `kamailio -c`, starts Kamailio relaying every dialog-forming
    /// request to `next_hop` (a SIP URI) and waits until it answers an OPTIONS (10 s at most).
    pub(crate) fn start(dir: &TestDir, listen: SocketAddr, next_hop: &str) -> Self {
        Self::start_spec(dir, listen, &KamailioSpec::proxy(next_hop))
    }

    /// Checks `spec`'s config with `kamailio -c`, starts Kamailio with it and waits until it
    /// answers an OPTIONS (10 s at most).
    pub(crate) fn start_spec(dir: &TestDir, listen: SocketAddr, spec: &KamailioSpec) -> Self {
        let (ok, output) = check_spec(dir, listen, spec);
        assert!(
            ok,
            "kamailio -c rejects {} (defines {:?}):\n{output}",
            spec.config.display(),
            spec.defines
        );
        let run_dir = spec.run_dir(dir);
        let log = spec.log(dir);
        let out = File::create(&log).expect("create kamailio.log");
        let err = out.try_clone().expect("clone file handle");
        let mut cmd = Command::new(program());
        cmd.args(["-DD", "-E"])
            .arg("-P")
            .arg(run_dir.join("kamailio.pid"))
            .args(["-m", "64", "-M", "8"]);
        common_args(&mut cmd, listen, spec, &run_dir);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().expect("spawn kamailio");
        let mut kamailio = Self { child, listen, log };
        if let Err(why) = options_probe(
            listen,
            listen.ip(),
            Duration::from_secs(10),
            Some(&mut kamailio.child),
        ) {
            panic!(
                "Kamailio did not come up on udp {}: {why}\n--- kamailio log (tail):\n{}",
                host_port(listen),
                util::tail(&read_lossy(&kamailio.log), 40)
            );
        }
        kamailio
    }

    /// Everything Kamailio logged so far.
    pub(crate) fn log_text(&self) -> String {
        read_lossy(&self.log)
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // With -DD the main process stays in the foreground and takes its children down on SIGTERM.
        let status = util::stop_child(&mut self.child, Duration::from_secs(5));
        if thread::panicking() {
            eprintln!(
                "--- kamailio on {} stopped: {status:?}; log (tail):\n{}",
                host_port(self.listen),
                util::tail(&read_lossy(&self.log), 60)
            );
        }
    }
}

//! `packaging/build-deb.sh`, the Debian package an operator installs with `apt install`:
//! built from this build's binary (gzip, for speed), then read back with dpkg-deb: its control
//! fields, its files, the config kept as a conffile, and the extracted binary validating the
//! extracted sample config. (Installing it would change the machine; the package was installed
//! and purged by hand once, see docs/operations.md.)

use std::path::{Path, PathBuf};
use std::process::Command;

const SBCD: &str = env!("CARGO_BIN_EXE_sbcd");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn deb_package_holds_the_daemon_unit_and_config() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        panic!("dpkg-deb not found: this test needs a Debian machine");
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb-test");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let printed = run(Command::new("bash")
        .arg(repo().join("packaging/build-deb.sh"))
        .args(["--binary", SBCD, "--fast", "--out"])
        .arg(&dir));
    let deb = PathBuf::from(printed.trim());
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        name.starts_with(&format!("sbcd_{version}_")) && name.ends_with(".deb"),
        "{name}"
    );

    let field = |f: &str| run(Command::new("dpkg-deb").arg("--field").arg(&deb).arg(f));
    assert_eq!(field("Package").trim(), "sbcd");
    assert_eq!(field("Version").trim(), version);
    assert!(field("Depends").contains("adduser"));

    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for (mode, path) in [
        ("-rwxr-xr-x root/root", "./usr/bin/sbcd"),
        ("-rw-r--r-- root/root", "./lib/systemd/system/sbcd.service"),
        ("-rw-r----- root/root", "./etc/sbcd/sbcd.toml"),
        ("-rw-r--r-- root/root", "./usr/share/doc/sbcd/operations.md"),
    ] {
        assert!(
            contents
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "no {mode} {path} in:\n{contents}"
        );
    }

    let control = dir.join("control");
    run(Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(&control));
    assert_eq!(
        std::fs::read_to_string(control.join("conffiles")).unwrap(),
        "/etc/sbcd/sbcd.toml\n",
        "dpkg must keep the operator's config on upgrade"
    );
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(
        !postinst.contains("enable"),
        "the package must not start sbcd before it is configured: {postinst}"
    );

    let root = dir.join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let bin = root.join("usr/bin/sbcd");
    assert_eq!(
        run(Command::new(&bin).arg("--version")).trim(),
        format!("sbcd {version}")
    );
    let checked = run(Command::new(&bin)
        .args(["check-config", "--config"])
        .arg(root.join("etc/sbcd/sbcd.toml")));
    assert!(checked.starts_with("config OK"), "{checked}");
    assert_eq!(
        std::fs::read(root.join("lib/systemd/system/sbcd.service")).unwrap(),
        std::fs::read(repo().join("systemd/sbcd.service")).unwrap()
    );
}

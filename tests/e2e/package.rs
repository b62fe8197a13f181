//! The Debian package: `scripts/build-deb.sh` with the debug binaries
//! already built (PROFILE=dev: cargo-deb packages them without building),
//! then its contents (`dpkg-deb -c`), its control data and conffiles
//! (`dpkg-deb -I`), `systemd-analyze verify` on the unit as installed, and
//! the shipped configuration accepted by the shipped gatewayd's `--check`.
//!
//! Needs cargo-deb, dpkg-dev and systemd (scripts/install-deps.sh) and the
//! built binaries (GATEWAYD_BIN, as the labs).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{binary, root, run, text};

fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(o.status.success(), "{cmd:?}: {}{}", text(&o), String::from_utf8_lossy(&o.stderr));
    text(&o)
}

/// Builds the package from the binaries next to gatewayd's; its path.
fn build() -> PathBuf {
    let gatewayd = binary("gatewayd", "GATEWAYD_BIN");
    let dir = gatewayd.parent().unwrap();
    assert_eq!(
        dir.file_name().unwrap(),
        "debug",
        "the test packages the debug build: {}",
        gatewayd.display()
    );
    let target = dir.parent().unwrap();
    let out = ok(Command::new("bash")
        .arg(root().join("scripts/build-deb.sh"))
        .env("PROFILE", "dev")
        .env("CARGO_TARGET_DIR", target)
        .current_dir(root()));
    // cargo-deb prints the package's path last.
    let deb = PathBuf::from(out.lines().last().unwrap().trim());
    assert!(deb.extension().is_some_and(|e| e == "deb") && deb.exists(), "no package in {out:?}");
    deb
}

#[test]
fn the_package_holds_the_daemon_the_cli_the_unit_and_the_conffiles_and_the_unit_verifies() {
    let deb = build();
    let listing = ok(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let files: Vec<&str> = listing.lines().filter_map(|l| l.split_whitespace().nth(5)).collect();
    for want in [
        "./usr/sbin/gatewayd",
        "./usr/bin/gwctl",
        "./usr/lib/gatewayd/gatewayd-prepare",
        "./etc/gatewayd/gatewayd.toml",
        "./etc/gatewayd/rules",
        "./etc/default/gatewayd",
        "./usr/share/man/man8/gatewayd.8.gz",
        "./usr/share/man/man8/gwctl.8.gz",
    ] {
        assert!(files.contains(&want), "no {want} in\n{listing}");
    }
    let unit = files
        .iter()
        .find(|f| f.ends_with("/systemd/system/gatewayd.service"))
        .unwrap_or_else(|| panic!("no gatewayd.service in\n{listing}"));
    // Executables are executable.
    for exe in ["./usr/sbin/gatewayd", "./usr/bin/gwctl", "./usr/lib/gatewayd/gatewayd-prepare"] {
        let line = listing.lines().find(|l| l.ends_with(&format!(" {exe}"))).unwrap();
        assert!(line.starts_with("-rwxr-xr-x"), "{line}");
    }

    let info = ok(Command::new("dpkg-deb").arg("-I").arg(&deb));
    assert!(info.contains(" Package: gatewayd\n"), "{info}");
    let depends = info.lines().find(|l| l.starts_with(" Depends: ")).unwrap_or_else(|| panic!("{info}"));
    assert!(depends.contains("librte-"), "the DPDK libraries are dependencies: {depends}");
    let conffiles = ok(Command::new("dpkg-deb").arg("-I").arg(&deb).arg("conffiles"));
    let mut conffiles: Vec<&str> = conffiles.lines().map(str::trim).collect();
    conffiles.sort();
    assert_eq!(conffiles, ["/etc/default/gatewayd", "/etc/gatewayd/gatewayd.toml", "/etc/gatewayd/rules"]);

    // Installed into a scratch root: the unit verifies there (its commands
    // exist and are executable, its man pages resolve), and the shipped
    // configuration and rules pass the shipped daemon's --check.
    let tree = std::env::temp_dir().join("gwe-pkg-root");
    let _ = std::fs::remove_dir_all(&tree);
    ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
    let unit_path = tree.join(unit.trim_start_matches("./"));
    let verify = verify_unit(&tree, &unit_path);
    assert!(verify.0, "systemd-analyze verify: {}", verify.1);
    let unit_text = std::fs::read_to_string(&unit_path).unwrap();
    for line in ["Type=notify", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID"] {
        assert!(unit_text.lines().any(|l| l == line), "no {line} in the unit");
    }
    let check = ok(Command::new(tree.join("usr/sbin/gatewayd"))
        .arg("--check")
        .arg("--config")
        .arg(tree.join("etc/gatewayd/gatewayd.toml"))
        .arg("--rules")
        .arg(tree.join("etc/gatewayd/rules")));
    assert!(check.ends_with(": ok\n"), "{check}");
    let _ = std::fs::remove_dir_all(&tree);
}

/// `systemd-analyze verify` of `unit` with its executables and man pages
/// looked up in `tree` (the unit names /usr/sbin/gatewayd, ...): a copy of
/// the unit with its absolute paths moved under the tree, man pages found
/// through MANPATH.
fn verify_unit(tree: &Path, unit: &Path) -> (bool, String) {
    let text = std::fs::read_to_string(unit).unwrap();
    let t = tree.display().to_string();
    let moved = text
        .replace("=/usr/", &format!("={t}/usr/"))
        .replace("=-/etc/", &format!("=-{t}/etc/"))
        .replace("=/etc/", &format!("={t}/etc/"))
        .replace(" /etc/", &format!(" {t}/etc/"));
    let dir = tree.join("verify");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("gatewayd.service");
    std::fs::write(&copy, moved).unwrap();
    let o = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .env("MANPATH", tree.join("usr/share/man"))
        .env("SYSTEMD_LOG_LEVEL", "notice"));
    let out = format!("{}{}", text_of(&o.stdout), text_of(&o.stderr));
    // Any complaint about our unit fails the check (other units on the
    // machine may have their own warnings).
    let ours = out.lines().filter(|l| l.contains("gatewayd")).collect::<Vec<_>>();
    (o.status.success() && ours.is_empty(), out)
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

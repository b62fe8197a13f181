//! keepalived's script security (`lib/notify.c`'s `check_script_secure`
//! and `check_security`), checked when a configuration is applied, for
//! every `MISC_CHECK` and notify script:
//!
//! - its program must be found (a bare name along `PATH`) and executable
//!   by the user and group it runs as, else it is disabled;
//! - a script that runs with root's power (as uid 0 or gid 0, or a set-uid
//!   or set-gid root program) must not be replaceable by anyone else: each
//!   directory of its resolved path and the file itself owned by root, and
//!   none writable by a group other than root's or by all (a directory with
//!   the sticky bit, as `/tmp`, may be). One that is can be rewritten by an
//!   unprivileged user and then runs as root: `Unsafe permissions found for
//!   script '...'`; with `global_defs { enable_script_security }` it is
//!   disabled, without it it runs and keepalived's `SECURITY VIOLATION`
//!   warning says so.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the check found of one script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It may run.
    Run,
    /// Not found, not accessible or not executable: disabled.
    Missing,
    /// It would run as root and others can replace it, and script
    /// security is on: disabled.
    Insecure,
}

/// What a configuration's scripts came to, for keepalived's `SECURITY
/// VIOLATION` warning (`check_check_script_security`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Audit {
    /// A script was found (keepalived's `SC_ISSCRIPT`).
    pub scripts: bool,
    /// One of them had unsafe permissions (`SC_INSECURE`).
    pub insecure: bool,
}

impl Audit {
    /// keepalived's warning for scripts run without script security, if any.
    pub fn warning(&self, security: bool) -> Option<String> {
        (!security && self.scripts).then(|| {
            let more = if self.insecure { " There are insecure scripts." } else { "" };
            format!("SECURITY VIOLATION - check scripts are being executed but script_security not enabled.{more}")
        })
    }
}

/// Checks the script whose program is `prog`, run as `(uid, gid)`;
/// `security`: `enable_script_security`. Logs what keepalived logs.
pub fn check(prog: &str, (uid, gid): (u32, u32), security: bool, audit: &mut Audit) -> Verdict {
    let Some(path) = find(prog, uid, gid) else {
        tracing::warn!(script = prog, "health: Cannot find script {prog} in path - disabling");
        return Verdict::Missing;
    };
    let Ok(real) = std::fs::canonicalize(&path) else {
        tracing::warn!(script = prog, "health: Script {prog} cannot be accessed - disabling");
        return Verdict::Missing;
    };
    let Ok(md) = real.metadata() else { return Verdict::Missing };
    audit.scripts = true;
    if !executable(&md, uid, gid) {
        tracing::warn!(
            script = prog,
            "health: WARNING - script '{prog}' is not executable for uid:gid {uid}:{gid} - disabling."
        );
        return Verdict::Missing;
    }
    let setid_root = |id: u32, x: u32, s: u32| id == 0 && md.mode() & x != 0 && md.mode() & s != 0;
    let as_root =
        uid == 0 || gid == 0 || setid_root(md.uid(), 0o100, 0o4000) || setid_root(md.gid(), 0o010, 0o2000);
    if !as_root {
        return Verdict::Run;
    }
    // The path as keepalived runs it (its resolved directory with the
    // name as written, when that is the same file) and the file itself.
    let named = real.parent().zip(path.file_name()).map(|(dir, name)| dir.join(name));
    let same = |p: &Path| p.metadata().is_ok_and(|m| (m.dev(), m.ino()) == (md.dev(), md.ino()));
    let mut paths = vec![real.clone()];
    paths.extend(named.filter(|n| *n != real && same(n)));
    if paths.iter().all(|p| safe(p)) {
        return Verdict::Run;
    }
    audit.insecure = true;
    let disabling = if security { " - disabling" } else { "" };
    tracing::warn!(script = prog, "health: Unsafe permissions found for script '{prog}'{disabling}.");
    if security {
        Verdict::Insecure
    } else {
        Verdict::Run
    }
}

/// `prog` itself when it has a `/`, else the first executable file of that
/// name along `PATH`.
fn find(prog: &str, uid: u32, gid: u32) -> Option<PathBuf> {
    if prog.contains('/') {
        return Some(PathBuf::from(prog));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(prog))
        .find(|p| p.metadata().is_ok_and(|md| executable(&md, uid, gid)))
}

/// Executable by `uid`/`gid` by the mode bits, as keepalived's
/// `is_executable` reads them: root needs one execute bit.
fn executable(md: &std::fs::Metadata, uid: u32, gid: u32) -> bool {
    let bits = if uid == 0 {
        0o111
    } else if md.uid() == uid {
        0o100
    } else if md.gid() == gid {
        0o010
    } else {
        0o001
    };
    md.is_file() && md.mode() & bits != 0
}

/// keepalived's `check_security` of an absolute path: `/` and every
/// component after it, not following links, is a directory (the last a
/// file or a link) owned by root, and no directory without the sticky bit
/// nor the file is writable by a non-root group or by all.
fn safe(path: &Path) -> bool {
    let mut prefix = PathBuf::new();
    let parts: Vec<_> = path.components().collect();
    parts.iter().enumerate().all(|(i, part)| {
        prefix.push(part);
        let Ok(md) = std::fs::symlink_metadata(&prefix) else { return false };
        let last = i + 1 == parts.len();
        let kind_ok = if last { md.is_file() || md.is_symlink() } else { md.is_dir() };
        let sticky_dir = md.is_dir() && md.mode() & 0o1000 != 0;
        let writable = (md.gid() != 0 && md.mode() & 0o020 != 0) || md.mode() & 0o002 != 0;
        kind_ok && md.uid() == 0 && (sticky_dir || md.is_symlink() || !writable)
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::tests::ScratchDir;
    use super::*;

    fn script_in(dir: &Path, mode: u32) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let s = dir.join("check.sh");
        std::fs::write(&s, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
        s
    }

    /// A root-run script in a directory all may write is replaceable: run
    /// with a warning without script security, disabled with it; the same
    /// script in a root-only directory runs either way, and a system
    /// program reached through `/bin` (a link on Debian) is safe.
    #[test]
    #[ignore = "needs root (the files must be root's)"]
    fn a_root_script_others_can_replace_is_disabled_with_script_security() {
        let base = ScratchDir::new("gw-script-security");
        let open = script_in(&base.join("open"), 0o777);
        let closed = script_in(&base.join("closed"), 0o755);
        let root = (0, 0);
        let mut audit = Audit::default();
        assert_eq!(check(open.to_str().unwrap(), root, false, &mut audit), Verdict::Run);
        assert!(audit.insecure);
        assert_eq!(
            audit.warning(false).as_deref(),
            Some("SECURITY VIOLATION - check scripts are being executed but script_security not enabled. There are insecure scripts.")
        );
        assert_eq!(check(open.to_str().unwrap(), root, true, &mut Audit::default()), Verdict::Insecure);
        // /tmp itself is sticky and all-writable: allowed, as in keepalived.
        let mut audit = Audit::default();
        assert_eq!(check(closed.to_str().unwrap(), root, true, &mut audit), Verdict::Run);
        assert_eq!((audit.scripts, audit.insecure, audit.warning(true)), (true, false, None));
        assert_eq!(check("/bin/true", root, true, &mut Audit::default()), Verdict::Run);
        assert_eq!(check("true", root, true, &mut Audit::default()), Verdict::Run, "found along PATH");
        // A group-writable file of a non-root group.
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o775)).unwrap();
        std::os::unix::fs::chown(&closed, None, Some(65534)).unwrap();
        assert_eq!(check(closed.to_str().unwrap(), root, true, &mut Audit::default()), Verdict::Insecure);
        // Run as nobody, the open one is nobody's business: it runs.
        let nobody = (65534, 65534);
        assert_eq!(check(open.to_str().unwrap(), nobody, true, &mut Audit::default()), Verdict::Run);
        assert_eq!(check("/nonexistent/x", root, true, &mut Audit::default()), Verdict::Missing);
    }

    /// Whether keepalived's own configuration test finds the script at
    /// `path`, run as root, insecure: its `SECURITY VIOLATION` line says
    /// "There are insecure scripts." then.
    fn keepalived_finds_insecure(dir: &Path, path: &Path) -> bool {
        let conf = dir.join("keepalived.conf");
        let text = format!(
            "global_defs {{\n  script_user root\n}}\nvirtual_server 198.18.0.100 80 {{\n  protocol TCP\n  lb_algo rr\n  \
             lb_kind NAT\n  real_server 198.18.1.2 80 {{\n    MISC_CHECK {{\n      misc_path {}\n    }}\n  }}\n}}\n",
            path.display()
        );
        std::fs::write(&conf, text).unwrap();
        let out = std::process::Command::new("keepalived")
            .arg("--config-test")
            .arg("--use-file")
            .arg(&conf)
            .output()
            .expect("keepalived (scripts/install-deps.sh installs it)");
        let report = String::from_utf8_lossy(&out.stderr);
        let violation = report
            .lines()
            .find(|l| l.starts_with("SECURITY VIOLATION"))
            .unwrap_or_else(|| panic!("keepalived's report: {report}"));
        violation.ends_with(" There are insecure scripts.")
    }

    /// keepalived 2.2.7 as the reference: for scripts in directories and
    /// with modes an attacker could use (or not), its configuration test
    /// and [`check`] agree on which are insecure.
    #[test]
    #[ignore = "needs root and keepalived (scripts/install-deps.sh)"]
    fn keepalived_finds_the_same_scripts_insecure() {
        let base = ScratchDir::new("gw-script-security-ka");
        let nobody = Some(65534);
        // (directory mode, directory owner, script mode, script group, insecure)
        let layouts = [
            ("closed", 0o755, None, 0o755, None, false),
            ("open", 0o777, None, 0o755, None, true),
            ("sticky", 0o1777, None, 0o755, None, false),
            ("theirs", 0o755, nobody, 0o755, None, true),
            ("group-writable", 0o755, None, 0o775, nobody, true),
            ("group-writable-root", 0o755, None, 0o775, None, false),
            ("world-writable", 0o755, None, 0o757, None, true),
        ];
        for (name, dir_mode, dir_owner, mode, group, insecure) in layouts {
            let dir = base.join(name);
            let script = script_in(&dir, dir_mode);
            std::os::unix::fs::chown(&dir, dir_owner, None).unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&script, None, group).unwrap();
            let mut audit = Audit::default();
            check(script.to_str().unwrap(), (0, 0), false, &mut audit);
            assert_eq!(
                (audit.insecure, keepalived_finds_insecure(&base, &script)),
                (insecure, insecure),
                "{name}"
            );
        }
    }
}

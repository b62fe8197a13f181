//! keepalived itself as the reference: its configuration test
//! (`keepalived --config-test`, Debian 12's keepalived 2.2.7 from
//! scripts/install-deps.sh) reads the same files as gatewayd's reader, and
//! its whole report is compared.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A test's `keepalived.conf` in a directory of its own, removed with it
/// (also when the test fails).
struct ConfFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ConfFile {
    fn new(name: &str, text: &str) -> ConfFile {
        let dir = std::env::temp_dir().join(format!("gw-keepalived-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keepalived.conf");
        std::fs::write(&path, text).unwrap();
        ConfFile { dir, path }
    }
}

impl Drop for ConfFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// keepalived's configuration test of `path`: its exit status and the
/// lines of its report.
fn config_test(path: &Path) -> (Option<i32>, Vec<String>) {
    let out = Command::new("keepalived")
        .arg("--config-test")
        .arg("--use-file")
        .arg(path)
        .output()
        .expect("keepalived (scripts/install-deps.sh installs it)");
    let report = String::from_utf8_lossy(&out.stderr).lines().map(str::to_owned).collect();
    (out.status.code(), report)
}

/// The fixtures keepalived can judge: it reports nothing, or only what
/// concerns the VRRP part gatewayd skips, and gatewayd loads them. Left
/// out: `dpvs-fnat.conf` (DPVS's keywords, which keepalived does not know)
/// and `checks.conf` (keepalived 2.2.7's configuration test ends itself
/// with SIGTERM, reporting nothing, on a script run as another user;
/// apparently `check_script_secure`'s `main_pid != getppid()` test).
#[test]
#[ignore = "needs keepalived (scripts/install-deps.sh)"]
fn keepalived_and_gatewayd_both_load_the_fixtures() {
    let sync_group = "Sync group VG1 has only 1 virtual router(s) - this probably isn't what you want";
    let cases: [(&str, &[&str]); 4] = [
        ("doc-sample.conf", &[]),
        ("virtual-server-group.conf", &[]),
        ("split/keepalived.conf", &[]),
        ("dr-keepalived.conf", &[sync_group]),
    ];
    for (name, expected) in cases {
        let path = fixture(name);
        let (status, report) = config_test(&path);
        assert_eq!(report, expected, "keepalived's report on {name}");
        assert_eq!(status, Some(if expected.is_empty() { 0 } else { 5 }), "{name}: {report:?}");
        let loaded = gw_keepalived::load(&path).unwrap_or_else(|e| panic!("gatewayd refused {name}: {e}"));
        assert!(!loaded.services.is_empty(), "{name}");
    }
}

/// A `real_server` line without its block: keepalived reads the next line
/// as inside the server's block, so the second server is an unknown
/// keyword there and lost; gatewayd refuses the file with keepalived's
/// message (naming the `real_server` line, where keepalived names the
/// line it wanted a `{` on).
#[test]
#[ignore = "needs keepalived (scripts/install-deps.sh)"]
fn a_real_server_without_its_block_is_an_error_for_both() {
    let text = "virtual_server 198.18.0.100 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol UDP\n    \
                real_server 198.18.0.3 80\n    real_server 198.18.0.4 80\n}\n";
    let file = ConfFile::new("bob", text);
    let path = &file.path;
    let (status, report) = config_test(path);
    let p = path.display();
    assert_eq!(
        report,
        [
            format!("({p}: Line 6) Missing '{{' at beginning of configuration block"),
            format!("({p}: Line 6) Unknown keyword 'real_server'"),
        ]
    );
    assert_ne!(status, Some(0));
    let refused = gw_keepalived::load(path).map(|_| ()).unwrap_err().to_string();
    assert_eq!(refused, format!("({p}: Line 5) Missing '{{' at beginning of configuration block"));
    // With its block (`{ }` on the line) both read it alike: two servers.
    std::fs::write(path, text.replace(" 80\n", " 80 { }\n")).unwrap();
    assert_eq!(config_test(path), (Some(0), vec![]));
    let loaded = gw_keepalived::load(path).unwrap();
    assert_eq!(loaded.conf.virtual_servers[0].real_servers.len(), 2);
}

/// An unknown keyword with a block, inside a checker: keepalived reports
/// the `{` as unexpected and ends `TCP_CHECK` at the block's `}`, so the
/// lines after it move a level up: the second `real_server` is read at
/// the top level and lost. gatewayd refuses the file, naming the keyword.
#[test]
#[ignore = "needs keepalived (scripts/install-deps.sh)"]
fn an_unknown_keyword_with_a_block_loses_what_follows_in_keepalived_and_is_refused() {
    let file = ConfFile::new(
        "unknown",
        "virtual_server 198.18.0.100 80 {\n  protocol TCP\n  lb_algo rr\n  lb_kind NAT\n  \
         real_server 198.18.1.2 80 {\n    TCP_CHECK {\n      url {\n        path /\n      }\n    }\n  }\n  \
         real_server 198.18.1.3 80 {\n  }\n}\n",
    );
    let path = &file.path;
    let (status, report) = config_test(path);
    let p = path.display();
    assert_eq!(
        report,
        [
            format!("({p}: Line 7) Unknown keyword 'url'"),
            format!("({p}: Line 7) Unexpected '{{' - ignoring"),
            format!("({p}: Line 8) Unknown keyword 'path'"),
            format!("({p}: Line 12) Unknown keyword 'real_server'"),
            format!("({p}: Line 12) Unexpected '{{' - ignoring"),
            format!("({p}: Line 13) Unknown keyword '}}'"),
            format!("({p}: Line 14) Unknown keyword '}}'"),
        ]
    );
    assert_ne!(status, Some(0));
    assert_eq!(
        gw_keepalived::load(path).map(|_| ()).unwrap_err().to_string(),
        format!(
            "({p}: Line 7) Unknown keyword 'url' opens a block: keepalived reads its lines as the enclosing block's and ends that block at its '}}'"
        )
    );
}

/// `global_defs { script_user }` naming no user of this system: keepalived
/// says so and removes the MISC_CHECK that names no user of its own (its
/// notify scripts go too, in its log, which the configuration test does not
/// show); gatewayd's notices carry the same two messages.
#[test]
#[ignore = "needs keepalived (scripts/install-deps.sh)"]
fn a_script_user_of_no_such_user_removes_the_scripts_in_both() {
    let file = ConfFile::new(
        "script-user",
        "global_defs {\n  script_user gw-no-such-user\n}\nvirtual_server 198.18.0.100 80 {\n  protocol TCP\n  \
         lb_algo rr\n  lb_kind NAT\n  real_server 198.18.1.2 80 {\n    MISC_CHECK {\n      misc_path /bin/true\n    \
         }\n    MISC_CHECK {\n      misc_path \"/bin/sh -c 'exit 1'\"\n      user root\n    }\n  }\n}\n",
    );
    let path = &file.path;
    let (status, report) = config_test(path);
    let p = path.display();
    assert_eq!(
        report,
        [
            "(Line 2) Error setting global script uid/gid".to_owned(),
            format!("({p}: Line 11) Unable to set default user for misc script '/bin/true' - removing"),
            "SECURITY VIOLATION - check scripts are being executed but script_security not enabled."
                .to_owned(),
        ]
    );
    assert_ne!(status, Some(0));
    let loaded = gw_keepalived::load(path).unwrap();
    let said: Vec<&str> = loaded.notices.iter().map(|n| n.message.as_str()).collect();
    for line in &report[..2] {
        let message = line.split_once(") ").unwrap().1;
        assert!(said.contains(&message), "{message:?} in {said:?}");
    }
    let checkers = &loaded.conf.virtual_servers[0].real_servers[0].checkers;
    assert_eq!(checkers.len(), 1, "the MISC_CHECK with its own user stays");
}

//! The gatewayd binary refuses, before it touches DPDK, a configuration that
//! would break it: `--check` names the field, and a `[control] socket` that
//! names a regular file refuses the start and keeps the file.
#![cfg(feature = "dpdk")]

use std::path::{Path, PathBuf};
use std::process::Command;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("gw-refuses-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

/// Runs gatewayd on a config of `body` (after one port); returns (status, stderr).
fn gatewayd(dir: &Path, body: &str, check: bool) -> (Option<i32>, String) {
    let conf = dir.join("gw.toml");
    let text = format!("[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n{body}");
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatewayd"));
    cmd.arg("--config").arg(&conf);
    if check {
        cmd.arg("--check");
    }
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn check_refuses_each_guarded_value_with_its_field() {
    let d = dir("check");
    let cases = [
        ("[timeouts]\nestablished = 0", "timeouts.established: 0 is not within 1..=2678400 seconds"),
        ("[timeouts]\nudp = 4294967295", "timeouts.udp: 4294967295 is not within"),
        ("[workers]\nsessions = 4294967294", "workers.sessions: must be between 1 and 2147483648"),
        ("[workers]\nmax_dests = 1099511627776", "workers.max_dests: must be between 1 and 16777216"),
        ("[workers]\nmax_services = 1099511627776", "workers.max_services: must be between 1 and"),
        ("[workers]\nmbufs = 1073741824", "workers.mbufs: needs 2304.0 GiB"),
        ("[workers]\nidle_sleep_us = 3600000000", "workers.idle_sleep_us: 3600000000 is above 10000"),
        ("[neighbours]\nreachable_s = 9223372036854775807", "neighbours.reachable_s: must be between 1"),
        (
            "[[service]]\nrules = \"-A -t 198.18.0.100:80\"\n[[service]]\nrules = \"-A -t 198.18.0.100:80\"",
            "service[1].rules: line 1: TCP 198.18.0.100:80 is already defined in service[0]",
        ),
    ];
    for (body, want) in cases {
        let (code, err) = gatewayd(&d.0, body, true);
        assert_eq!(code, Some(2), "{body}: {err}");
        assert!(err.starts_with(&format!("gatewayd: {want}")), "{body}: {err}");
    }
    let (code, err) = gatewayd(&d.0, "[timeouts]\nestablished = 2678400", true);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_regular_file_at_the_socket_path_refuses_the_start_and_is_kept() {
    let d = dir("sockfile");
    let sock = d.0.join("precious");
    std::fs::write(&sock, "keep me").unwrap();
    let (code, err) = gatewayd(&d.0, &format!("[control]\nsocket = {:?}", sock.to_str().unwrap()), false);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("exists and is not a socket; not removed"), "{err}");
    assert!(err.contains(&format!("control.socket: {}", sock.display())), "{err}");
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "keep me");
}

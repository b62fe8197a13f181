//! gatewayd's control socket against hostile local clients, with gwctl's own
//! run: the socket path is never taken from something that is not a stale
//! socket of ours, and clients that connect and trickle bytes cannot keep
//! `gwctl -L -n` from answering within gwctl's own timeout.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;

use dataplane::control::{serve, Control, MAX_CLIENTS};
use gw_core::counters::WorkerCounters;
use gw_core::service::{Publisher, Snapshot};

fn control() -> Arc<Control> {
    let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 16))));
    let counters = vec![Arc::new(WorkerCounters::new(0, 1, 8, 16))];
    Arc::new(Control::new(publisher, counters, 1000, 8, 16))
}

/// A fresh directory for one test, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("gw-ctlsock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// gwctl's whole run with its default timeout: (exit status, stdout, stderr).
fn gwctl(sock: &std::path::Path, args: &[&str]) -> (u8, String, String) {
    let argv: Vec<&str> =
        ["gwctl", "--socket", sock.to_str().unwrap()].into_iter().chain(args.iter().copied()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run(argv, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn a_regular_file_at_the_socket_path_is_kept_and_the_start_refused() {
    let dir = Dir::new("file");
    let path = dir.0.join("gatewayd.sock");
    std::fs::write(&path, "precious").unwrap();
    let e = serve(control(), &path).unwrap_err().to_string();
    assert_eq!(e, format!("{} exists and is not a socket; not removed", path.display()));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    // A symlink (even to a socket) and a directory are not removed either.
    let link = dir.0.join("link.sock");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(serve(control(), &link).is_err());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(serve(control(), &dir.0).is_err());
    assert!(dir.0.is_dir());
    // Nothing was left behind in the directory but what was there.
    let mut names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["gatewayd.sock", "link.sock"]);
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = Dir::new("stale");
    let path = dir.0.join("gatewayd.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_socket(), "a stale socket");
    serve(control(), &path).unwrap();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let (code, out, err) = gwctl(&path, &["-L", "-n"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("IP Virtual Server"), "{out}");
    // A second daemon on the same path is refused; the first keeps serving.
    let e = serve(control(), &path).unwrap_err().to_string();
    assert!(e.contains("is in use"), "{e}");
    assert_eq!(gwctl(&path, &["-L", "-n"]).0, 0);
    let names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["gatewayd.sock"], "no private directory left behind");
}

#[test]
fn slow_clients_holding_every_slot_do_not_lock_gwctl_out() {
    let dir = Dir::new("slow");
    let path = dir.0.join("gatewayd.sock");
    serve(control(), &path).unwrap();
    // Every slot taken by a client that sent one byte of its length prefix
    // and then nothing (as one trickling a byte every 20 s).
    let slow: Vec<UnixStream> = (0..MAX_CLIENTS)
        .map(|_| {
            let mut c = UnixStream::connect(&path).unwrap();
            c.write_all(&[0]).unwrap();
            c
        })
        .collect();
    for _ in 0..3 {
        let (code, out, err) = gwctl(&path, &["-L", "-n"]);
        assert_eq!(code, 0, "gwctl did not answer: {err}");
        assert!(out.starts_with("IP Virtual Server"), "{out}");
    }
    drop(slow);
}

//! The unix socket server that `gwctl` talks to.
//!
//! Invariants: the socket is created mode 0600 (0660 and group-owned with a
//! configured group), so the kernel's permission check on connect is the
//! access control; at most [`MAX_CLIENTS`] connections are served at once,
//! each on its own thread, and one that sends garbage gets an error reply and
//! cannot stall or crash the others. Requests are length-prefixed JSON frames
//! ([`gw_proto::read_frame`]); every request goes to [`Control::query`].

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gw_proto::{read_frame, write_frame, ErrorKind, FrameError, Request};

use super::{err, Control};

/// Most control connections served at once; more are refused.
const MAX_CLIENTS: usize = 64;

/// The numeric id of group `name`, from `/etc/group`.
pub fn group_id(name: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string("/etc/group")?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let (n, _, gid) = (f.next()?, f.next()?, f.next()?);
            (n == name).then(|| gid.parse().ok()).flatten()
        })
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group {name:?} in /etc/group")))
}

/// Serves `control` on a unix socket at `path` until the process ends. Only
/// root may connect (mode 0600), or also the members of `group` (mode 0660,
/// group-owned): the kernel checks the socket file's permissions on
/// connect. Returns once the socket is listening; connections are served on
/// their own threads.
pub fn serve_with_group(control: Arc<Control>, path: &Path, group: Option<u32>) -> io::Result<PathBuf> {
    let p = serve(control, path)?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(&p, None, Some(gid))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o660))?;
    }
    Ok(p)
}

/// Serves `control` on a unix socket at `path` (mode 0600) until the process
/// ends. Returns once the socket is listening; connections are served on
/// their own threads.
pub fn serve(control: Arc<Control>, path: &Path) -> io::Result<PathBuf> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use: is another gatewayd running?", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new().name("gw-control".into()).spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            if active.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                active.fetch_sub(1, Ordering::AcqRel);
                let _ = write_frame(&mut conn, &err(ErrorKind::Full, "too many control connections"));
                continue;
            }
            let (control, active) = (control.clone(), active.clone());
            let spawned = std::thread::Builder::new().name("gw-ctl-conn".into()).spawn(move || {
                serve_conn(&control, &mut conn);
                active.fetch_sub(1, Ordering::AcqRel);
            });
            if spawned.is_err() {
                tracing::warn!("cannot start a control connection thread");
            }
        }
    })?;
    Ok(path.to_path_buf())
}

/// Serves requests on one connection until it closes or misbehaves.
pub fn serve_conn(control: &Control, conn: &mut UnixStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    loop {
        let reply = match read_frame::<_, Request>(conn) {
            Ok(req) => control.query(req),
            Err(FrameError::Closed) => return,
            // The body was read whole, so the stream is still in step.
            Err(FrameError::Decode(e)) => err(ErrorKind::BadRequest, format!("malformed request: {e}")),
            Err(e) => {
                let _ = write_frame(conn, &err(ErrorKind::BadRequest, e.to_string()));
                return;
            }
        };
        if write_frame(conn, &reply).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_util::{add, control};
    use gw_proto::Response;

    #[test]
    fn the_socket_survives_hostile_clients_and_keeps_the_rules() {
        use std::io::{Read, Write};
        let (c, _) = control(1);
        add(&c);
        let c = Arc::new(c);
        let path = std::env::temp_dir().join(format!("gw-ctl-test-{}.sock", std::process::id()));
        serve(c.clone(), &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut junk = 0x2545_f491_4f6c_dd1du64;
        let mut threads = vec![];
        for t in 0..32u64 {
            let path = path.clone();
            junk = junk.wrapping_mul(6364136223846793005).wrapping_add(t);
            let seed = junk;
            threads.push(std::thread::spawn(move || {
                let mut conn = UnixStream::connect(&path).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                match t % 4 {
                    // Arbitrary bytes.
                    0 => {
                        let bytes: Vec<u8> =
                            (0..4096u64).map(|i| (seed.rotate_left(i as u32 % 64) ^ i) as u8).collect();
                        let _ = conn.write_all(&bytes);
                    }
                    // A truncated frame, then hang up.
                    1 => {
                        let _ = conn.write_all(&100u32.to_be_bytes());
                        let _ = conn.write_all(b"{\"op\":\"cle");
                    }
                    // A huge length: refused without reading it.
                    2 => {
                        let _ = conn.write_all(&u32::MAX.to_be_bytes());
                        let mut buf = vec![];
                        let _ = conn.read_to_end(&mut buf);
                    }
                    // A well-behaved client.
                    _ => {
                        write_frame(&mut conn, &Request::List { service: None }).unwrap();
                        let r: Response = read_frame(&mut conn).unwrap();
                        assert!(matches!(r, Response::Services { .. }));
                    }
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        // The daemon still answers and nothing was lost.
        let mut conn = UnixStream::connect(&path).unwrap();
        write_frame(&mut conn, &Request::List { service: None }).unwrap();
        let Response::Services { services, .. } = read_frame(&mut conn).unwrap() else { panic!() };
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].dests.len(), 1);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_configured_group_may_use_the_socket() {
        use std::os::unix::fs::MetadataExt;
        let (c, _) = control(1);
        let path = std::env::temp_dir().join(format!("gw-ctl-group-{}.sock", std::process::id()));
        let gid = group_id("root").unwrap();
        serve_with_group(Arc::new(c), &path, Some(gid)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), gid);
        assert!(group_id("no-such-group-here").is_err());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn garbage_on_the_socket_gets_an_error_and_the_connection_survives() {
        let (c, _) = control(1);
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || serve_conn(&c, &mut b));
        use std::io::Write;
        a.write_all(&5u32.to_be_bytes()).unwrap();
        a.write_all(b"hello").unwrap();
        let r: Response = read_frame(&mut a).unwrap();
        assert!(matches!(r, Response::Error { kind: ErrorKind::BadRequest, .. }));
        write_frame(&mut a, &Request::List { service: None }).unwrap();
        let r: Response = read_frame(&mut a).unwrap();
        assert!(matches!(r, Response::Services { .. }));
        // A huge length closes the connection after an error reply.
        a.write_all(&u32::MAX.to_be_bytes()).unwrap();
        let r: Response = read_frame(&mut a).unwrap();
        assert!(matches!(r, Response::Error { kind: ErrorKind::BadRequest, .. }));
        t.join().unwrap();
    }
}

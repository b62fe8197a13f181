//! The unix socket server that `gwctl` talks to.
//!
//! Invariants:
//! - The socket never exists with a wider mode than its final one (0600, or
//!   0660 and group-owned with a configured group): it is bound inside a
//!   fresh 0700 directory next to the final path, given its mode and group
//!   there, then hard-linked into place (`link` never replaces an existing
//!   file) and the private name removed. The kernel's permission check on
//!   connect is the access control.
//! - The daemon removes nothing at the socket path but a stale socket: a
//!   socket nobody answers on. A path that exists and is not a socket (a
//!   regular file, a symlink, a directory) refuses the start and is kept.
//! - At most [`MAX_CLIENTS`] connections are served at once, each on its own
//!   thread. Each request must arrive whole within [`REQUEST_DEADLINE`] of the
//!   server starting to wait for it, and each reply must be taken within
//!   [`REPLY_DEADLINE`]; a client that trickles bytes is dropped. When all
//!   slots are taken, a new connection evicts the connection that has waited
//!   longest for its request (it is idle or slow); only when every slot is
//!   running a request is the new one refused with "too many control
//!   connections" ([`ErrorKind::Busy`]). So a `gwctl` run answers within its
//!   own timeout however many clients hold connections open.
//! - One that sends garbage gets an error reply and cannot stall or crash the
//!   others. Requests are length-prefixed JSON frames ([`gw_proto::read_frame`]);
//!   every request goes to [`Control::query`].
//! - Memory for requests is bounded over all connections, not only per
//!   frame: a request up to [`SMALL_REQUEST`] is always read; a larger one
//!   (a restore of a big table) first takes its announced size from one
//!   shared [`LARGE_REQUESTS`] budget and holds it until its answer is sent
//!   (the parsed request lives that long). One that does not fit is refused
//!   before its body is read ([`ErrorKind::Busy`]) and the connection
//!   closed, so 64 clients announcing 64 MiB each cannot make the daemon
//!   hold 4 GiB of bodies, and several times that parsed.

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gw_proto::{read_frame_body, read_frame_len, write_frame, ErrorKind, FrameError, Request};

use super::{err, Control};
use crate::client_slots::Slots;

/// Most control connections served at once.
pub const MAX_CLIENTS: usize = 64;

/// Time a client has to deliver one whole request, counted from when the
/// server starts waiting for it (after the connect, or after the previous
/// reply). gwctl sends its request at once; 3 s is below gwctl's own 5 s
/// timeout, so slots held by slow clients free up before a waiting gwctl
/// gives up.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(3);

/// Time a client has to take one whole reply (a listing of 10,000 services
/// is a few megabytes: milliseconds for a client that reads).
pub const REPLY_DEADLINE: Duration = Duration::from_secs(10);

/// Requests up to this size are read whatever else is in flight: every
/// gwctl command but a restore of thousands of rules (64 such: 64 MiB).
pub const SMALL_REQUEST: usize = 1 << 20;

/// Bytes of larger requests held at once over all connections: two of the
/// largest frame.
pub const LARGE_REQUESTS: usize = 2 * gw_proto::MAX_FRAME;

/// The shared budget of large request bodies (see the module docs).
pub(crate) struct Budget {
    held: AtomicUsize,
    limit: usize,
    small: usize,
}

/// Bytes taken from a [`Budget`], given back when dropped.
pub(crate) struct Held<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Budget {
    pub(crate) const fn new(limit: usize, small: usize) -> Budget {
        Budget { held: AtomicUsize::new(0), limit, small }
    }

    /// Room for a body of `len` bytes: free up to the small size, else taken
    /// from the budget if it fits.
    fn take(&self, len: usize) -> Option<Held<'_>> {
        if len <= self.small {
            return Some(Held { budget: self, bytes: 0 });
        }
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                h.checked_add(len).filter(|t| *t <= self.limit)
            })
            .ok()
            .map(|_| Held { budget: self, bytes: len })
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

/// The daemon's budget, shared by every connection of every socket.
static BUDGET: Budget = Budget::new(LARGE_REQUESTS, SMALL_REQUEST);

/// The numeric id of group `name`: looked up by name through the C
/// library (NSS: `/etc/group`, LDAP, sssd, as `chgrp` does), else `name`
/// itself when it is a number (a gid with no entry, as `chgrp 1001`).
pub fn group_id(name: &str) -> io::Result<u32> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => name
            .parse::<u32>()
            .ok()
            .filter(|_| name.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group {name:?}"))),
        Err(e) => Err(io::Error::other(format!("group {name:?}: {e}"))),
    }
}

/// Makes `path` free for a new control socket: nothing there, or a stale
/// socket (nobody answers a connect), which is removed. Refuses, and keeps,
/// anything else: a live socket (another gatewayd), a regular file, a
/// directory, a symlink.
pub fn clear_socket_path(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; not removed", path.display()),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use: is another gatewayd running?", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// Removes the socket at `path` if it is still a socket (at shutdown).
pub fn remove_socket(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// Binds a listening socket at `path` that has `mode` (and group `group`)
/// from the moment it is reachable there: bound in a private 0700 directory
/// beside `path`, then hard-linked into place.
fn bind_private(path: &Path, mode: u32, group: Option<u32>) -> io::Result<UnixListener> {
    clear_socket_path(path)?;
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file", path.display()))
    })?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = parent.join(format!(".{}.{}", name.to_string_lossy(), std::process::id()));
    let tmp = dir.join("s");
    // Left over by a process of the same pid that died here: ours to remove.
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let bound = (|| {
        let listener = UnixListener::bind(&tmp)?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(&tmp, None, Some(gid))?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::hard_link(&tmp, path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot link the socket to {}: {e}", path.display()))
        })?;
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&dir);
    bound
}

/// Serves `control` on a unix socket at `path` until the process ends. Only
/// root may connect (mode 0600), or also the members of `group` (mode 0660,
/// group-owned): the kernel checks the socket file's permissions on
/// connect. Returns once the socket is listening; connections are served on
/// their own threads.
pub fn serve_with_group(control: Arc<Control>, path: &Path, group: Option<u32>) -> io::Result<PathBuf> {
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    let listener = bind_private(path, mode, group)?;
    let conns = Arc::new(Slots::new(MAX_CLIENTS));
    std::thread::Builder::new().name("gw-control".into()).spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let Some(id) = conns.admit(&conn) else {
                let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = write_frame(&mut conn, &err(ErrorKind::Busy, "too many control connections"));
                continue;
            };
            let (control, conns2) = (control.clone(), conns.clone());
            let spawned = std::thread::Builder::new().name("gw-ctl-conn".into()).spawn(move || {
                let _leaving = conns2.leaving(id);
                serve_tracked(&control, &mut conn, Some((&conns2, id)), &BUDGET);
            });
            if spawned.is_err() {
                conns.remove(id);
                tracing::warn!("cannot start a control connection thread");
            }
        }
    })?;
    Ok(path.to_path_buf())
}

/// Serves `control` on a unix socket at `path` (mode 0600) until the process
/// ends. Returns once the socket is listening; connections are served on
/// their own threads.
pub fn serve(control: Arc<Control>, path: &Path) -> io::Result<PathBuf> {
    serve_with_group(control, path, None)
}

/// A connection with one total deadline for everything read or written
/// through it (socket timeouts alone bound each `read`, not a request).
struct Deadline<'a> {
    conn: &'a UnixStream,
    until: Instant,
}

impl Deadline<'_> {
    fn passed() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "deadline passed: the client is too slow")
    }

    fn left(&self) -> io::Result<Duration> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Self::passed());
        }
        Ok(left)
    }

    /// A socket timeout (EAGAIN) is the deadline passing.
    fn timed(r: io::Result<usize>) -> io::Result<usize> {
        r.map_err(|e| if e.kind() == io::ErrorKind::WouldBlock { Self::passed() } else { e })
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn.set_read_timeout(Some(self.left()?))?;
        Self::timed((&mut &*self.conn).read(buf))
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.set_write_timeout(Some(self.left()?))?;
        Self::timed((&mut &*self.conn).write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a client is told when the answer to its request holds `what`:
/// more than a reply may take.
pub(super) fn too_large(what: &str) -> String {
    format!(
        "the answer is {what}, above the {} MiB a reply may take: ask for less (one service with -t/-u)",
        gw_proto::MAX_FRAME >> 20
    )
}

/// The answer before a connection is closed (its stream out of step, or
/// its request refused unread): one second for the client to take it.
fn last_word(conn: &UnixStream, reply: gw_proto::Response) {
    let mut replying = Deadline { conn, until: Instant::now() + Duration::from_secs(1) };
    let _ = write_frame(&mut replying, &reply);
}

/// Serves requests on one connection until it closes, misbehaves or misses
/// a deadline ([`REQUEST_DEADLINE`], [`REPLY_DEADLINE`]).
pub fn serve_conn(control: &Control, conn: &mut UnixStream) {
    serve_tracked(control, conn, None, &BUDGET)
}

fn serve_tracked(
    control: &Control,
    conn: &mut UnixStream,
    slot: Option<(&Slots<UnixStream>, u64)>,
    budget: &Budget,
) {
    let waiting = |w: bool| {
        if let Some((conns, id)) = slot {
            conns.set_waiting(id, w);
        }
    };
    loop {
        waiting(true);
        let mut reading = Deadline { conn, until: Instant::now() + REQUEST_DEADLINE };
        let len = match read_frame_len(&mut reading) {
            Ok(len) => len,
            Err(FrameError::Closed) => return,
            Err(e) => {
                return last_word(conn, err(ErrorKind::BadRequest, e.to_string()));
            }
        };
        // Held until the answer is written: the parsed request lives as long.
        let Some(_held) = budget.take(len) else {
            let why = format!(
                "a request of {len} bytes does not fit: other large requests hold most of the {} MiB \
                 the daemon reads at once; retry when they are done",
                budget.limit >> 20
            );
            return last_word(conn, err(ErrorKind::Busy, why));
        };
        let reply = match read_frame_body::<_, Request>(&mut reading, len) {
            Ok(req) => {
                waiting(false);
                control.query(req)
            }
            Err(FrameError::Closed) => return,
            // The body was read whole, so the stream is still in step.
            Err(FrameError::Decode(e)) => err(ErrorKind::BadRequest, format!("malformed request: {e}")),
            Err(e) => {
                return last_word(conn, err(ErrorKind::BadRequest, e.to_string()));
            }
        };
        waiting(true);
        let mut replying = Deadline { conn, until: Instant::now() + REPLY_DEADLINE };
        match write_frame(&mut replying, &reply) {
            Ok(()) => {}
            // Nothing was sent: an answer the client can act on instead
            // (e.g. every connection of a big table at once).
            Err(FrameError::TooLarge(n)) => {
                let why = too_large(&format!("{n} bytes"));
                if write_frame(&mut replying, &err(ErrorKind::Full, why)).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_util::{add, control};
    use gw_proto::{read_frame, Response};
    use std::io::Write;

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
        // A number is a gid, whether or not it has an entry; a name that
        // only starts with digits is not.
        assert_eq!(group_id("0").unwrap(), 0);
        assert_eq!(group_id("4242").unwrap(), 4242);
        assert!(group_id("42x").is_err());
        assert!(group_id("+42").is_err());
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

    #[test]
    fn large_requests_share_one_budget_and_small_ones_are_always_read() {
        use std::io::Read;
        let (c, _) = control(1);
        add(&c);
        let c = Arc::new(c);
        // Bodies above 1 KiB share 10 KiB.
        let budget: &'static Budget = Box::leak(Box::new(Budget::new(10 << 10, 1 << 10)));
        let serve = |c: Arc<Control>| {
            let (a, mut b) = UnixStream::pair().unwrap();
            let t = std::thread::spawn(move || serve_tracked(&c, &mut b, None, budget));
            (a, t)
        };
        // A restore of 8 KiB, sent slowly: the first half, then it waits.
        let restore = Request::Restore { requests: vec![Request::List { service: None }; 300] };
        let body = serde_json::to_vec(&restore).unwrap();
        assert!((8 << 10..10 << 10).contains(&body.len()), "{}", body.len());
        let (mut slow, t1) = serve(c.clone());
        slow.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
        slow.write_all(&body[..100]).unwrap();
        // Its server has taken the room (a bound for a hang, not a timing).
        let end = Instant::now() + Duration::from_secs(20);
        while budget.held.load(Ordering::SeqCst) != body.len() {
            assert!(Instant::now() < end, "the slow request never took its room");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Another large one does not fit: refused before its body is read,
        // with gatewayd's reason, and its connection closed.
        let (mut second, t2) = serve(c.clone());
        second.write_all(&(4u32 << 10).to_be_bytes()).unwrap();
        let r: Response = read_frame(&mut second).unwrap();
        let Response::Error { kind, message } = r else { panic!("{r:?}") };
        assert_eq!(kind, ErrorKind::Busy);
        assert!(message.contains("4096 bytes does not fit"), "{message}");
        let mut rest = vec![];
        assert_eq!(second.read_to_end(&mut rest).unwrap(), 0);
        t2.join().unwrap();
        // A small request is read meanwhile.
        let (mut small, t3) = serve(c.clone());
        write_frame(&mut small, &Request::List { service: None }).unwrap();
        assert!(matches!(read_frame(&mut small).unwrap(), Response::Services { .. }));
        drop(small);
        t3.join().unwrap();
        // The slow one completes and is answered; its bytes are given back.
        slow.write_all(&body[100..]).unwrap();
        let r: Response = read_frame(&mut slow).unwrap();
        assert_eq!(r, c.query(restore));
        drop(slow);
        t1.join().unwrap();
        assert_eq!(budget.held.load(Ordering::SeqCst), 0);
        let (mut again, t4) = serve(c.clone());
        again.write_all(&(4u32 << 10).to_be_bytes()).unwrap();
        again.write_all(&[b' '; 4 << 10]).unwrap();
        let r: Response = read_frame(&mut again).unwrap();
        assert!(matches!(r, Response::Error { kind: ErrorKind::BadRequest, .. }), "{r:?}");
        drop(again);
        t4.join().unwrap();
    }

    #[test]
    fn a_client_that_trickles_a_request_is_dropped_at_the_deadline() {
        use std::io::Read;
        let (c, _) = control(1);
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || serve_conn(&c, &mut b));
        // Half a length prefix, then nothing: the server gives up on its own.
        a.write_all(&[0, 0]).unwrap();
        let r: Response = read_frame(&mut a).unwrap();
        let Response::Error { kind, message } = r else { panic!("{r:?}") };
        assert_eq!(kind, ErrorKind::BadRequest);
        assert!(message.contains("deadline"), "{message}");
        let mut rest = vec![];
        assert_eq!(a.read_to_end(&mut rest).unwrap(), 0, "then the connection is closed");
        t.join().unwrap();
    }
}

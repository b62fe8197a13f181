//! The `/metrics` HTTP endpoint (`[metrics] listen`): a small HTTP/1.x
//! server on the control plane's side, never on a worker's core.
//!
//! One thread accepts; each client gets its own short-lived thread, at most
//! [`MAX_CLIENTS`] at once, and the whole exchange has a deadline
//! ([`DEADLINE`]): a client that sends its request slowly or never reads
//! the answer is dropped. When every slot is taken, a new client takes the
//! place of the one the server has waited on longest (the control socket's
//! [`Slots`]): clients that connect and say nothing cannot keep a scrape
//! out. Only when every slot is building its answer is one more answered
//! 503 and closed. The body is
//! [`Control::metrics`] (see `control/metrics.rs`), gzipped when the
//! request accepts it (Prometheus asks for it: thousands of services make
//! tens of MB of text); every answer closes the connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client_slots::Slots;
use crate::control::Control;

/// Clients served at once; further ones get 503.
pub const MAX_CLIENTS: usize = 4;
/// Time a client has to send its request, and then to read the answer
/// (counted from when the answer is built).
pub const DEADLINE: Duration = Duration::from_secs(5);
/// The longest request head read (request line and headers).
const MAX_HEAD: usize = 8192;

/// The Prometheus text format 0.0.4's Content-Type, as node_exporter's
/// (`expfmt`) names it.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` and serves `/metrics` from `control` on a thread of its own.
/// Returns the bound address (the port is chosen by the system for port 0).
pub fn serve(control: Arc<Control>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("gw-metrics".into()).spawn(move || {
        let clients = Arc::new(Slots::new(MAX_CLIENTS));
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let Some(id) = clients.admit(&conn) else {
                // Takes what the client already sent (so closing does not
                // reset the connection before it reads the answer), briefly.
                let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
                let _ = conn.read(&mut [0u8; 2048]);
                let _ = conn.set_write_timeout(Some(Duration::from_millis(100)));
                let _ =
                    respond(&mut conn, "503 Service Unavailable", "text/plain", b"too many clients\n", true);
                continue;
            };
            let (control, mine) = (control.clone(), clients.clone());
            let spawned = std::thread::Builder::new().name("gw-metrics-client".into()).spawn(move || {
                let _leaving = mine.leaving(id);
                let _ = handle(&control, conn, |waiting| mine.set_waiting(id, waiting));
            });
            if spawned.is_err() {
                clients.remove(id);
            }
        }
    })?;
    Ok(local)
}

/// Reads the request head within the deadline.
fn read_head(conn: &mut TcpStream, deadline: Instant) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || head.len() > MAX_HEAD {
            return Ok(None);
        }
        conn.set_read_timeout(Some(left))?;
        match conn.read(&mut buf)? {
            0 => return Ok(None),
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    Ok(Some(head))
}

/// One exchange: `GET /metrics` (or `HEAD`), anything else 404/405/400;
/// `waiting(false)` while the answer is built (the client cannot be
/// evicted then), `waiting(true)` again to send it.
fn handle(control: &Control, mut conn: TcpStream, waiting: impl Fn(bool)) -> std::io::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    let Some(head) = read_head(&mut conn, deadline)? else { return Ok(()) };
    conn.set_write_timeout(Some(
        deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)),
    ))?;
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return respond(&mut conn, "400 Bad Request", "text/plain", b"bad request\n", true);
    }
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            waiting(false);
            let text = control.metrics();
            let gzip = accepts_gzip(&head);
            let body = if gzip { gzipped(text.as_bytes())? } else { text.into_bytes() };
            waiting(true);
            // Building a large answer must not eat the client's time to read it.
            conn.set_write_timeout(Some(DEADLINE))?;
            // The text format's type as node_exporter sends it, with the
            // charset (the prometheus crate's TEXT_FORMAT has none).
            let ty = CONTENT_TYPE;
            if gzip {
                respond_encoded(&mut conn, "200 OK", ty, Some("gzip"), &body, !head_only)
            } else {
                respond(&mut conn, "200 OK", ty, &body, !head_only)
            }
        }
        ("GET" | "HEAD", "/") => respond(
            &mut conn,
            "200 OK",
            "text/html",
            b"<html><body><a href=\"/metrics\">/metrics</a></body></html>\n",
            !head_only,
        ),
        ("GET" | "HEAD", _) => respond(&mut conn, "404 Not Found", "text/plain", b"not found\n", !head_only),
        _ => respond(&mut conn, "405 Method Not Allowed", "text/plain", b"GET or HEAD only\n", true),
    }
}

/// Whether the request head's `Accept-Encoding` takes gzip (not at `q=0`).
fn accepts_gzip(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().any(|l| {
        let Some((name, value)) = l.split_once(':') else { return false };
        name.trim().eq_ignore_ascii_case("accept-encoding")
            && value.split(',').any(|coding| {
                let mut parts = coding.split(';').map(str::trim);
                let name = parts.next().unwrap_or("");
                let q0 = parts
                    .any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0)));
                name.eq_ignore_ascii_case("gzip") && !q0
            })
    })
}

fn gzipped(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut z =
        flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 16), flate2::Compression::fast());
    z.write_all(body)?;
    z.finish()
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    ty: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    respond_encoded(conn, status, ty, None, body, with_body)
}

fn respond_encoded(
    conn: &mut TcpStream,
    status: &str,
    ty: &str,
    encoding: Option<&str>,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let encoding = encoding.map(|e| format!("Content-Encoding: {e}\r\n")).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ty}\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    if with_body {
        conn.write_all(body)?;
    }
    conn.flush()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;

    use super::*;

    fn control() -> Arc<Control> {
        use gw_core::counters::WorkerCounters;
        use gw_core::service::{Publisher, Snapshot};
        let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 16))));
        let w = vec![Arc::new(WorkerCounters::new(0, 1, 8, 16))];
        Arc::new(Control::new(publisher, w, 1000, 8, 16))
    }

    fn get(addr: SocketAddr, req: &str) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(req.as_bytes()).unwrap();
        let mut out = vec![];
        // A refused client may see its connection reset after the answer.
        let _ = c.read_to_end(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn serves_metrics_and_refuses_the_rest() {
        let addr = serve(control(), "127.0.0.1:0".parse().unwrap()).unwrap();
        let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{r}");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        let len: usize =
            head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
        assert_eq!(len, body.len());
        assert!(body.contains("\nnode_ipvs_connections_total 0\n"), "{body}");
        assert!(get(addr, "GET /nope HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(get(addr, "garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
        let h = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(h.starts_with("HTTP/1.1 200 OK\r\n") && h.ends_with("\r\n\r\n"), "{h}");
    }

    #[test]
    fn silent_clients_cannot_keep_a_scrape_out() {
        let addr = serve(control(), "127.0.0.1:0".parse().unwrap()).unwrap();
        // MAX_CLIENTS clients that connect and say nothing take every slot,
        // then more keep coming: each scrape still gets its answer, taking
        // the place of the one waited on longest.
        let mut idle: Vec<TcpStream> = (0..MAX_CLIENTS).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for _ in 0..3 {
            let r = get(addr, "GET /metrics HTTP/1.1\r\n\r\n");
            assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
            idle.extend((0..MAX_CLIENTS).map(|_| TcpStream::connect(addr).unwrap()));
        }
        // An evicted client's connection is closed: it reads the end.
        let mut first = idle.swap_remove(0);
        first.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(first.read(&mut buf), Ok(0) | Err(_)), "evicted: closed");
    }

    /// A scrape that accepts gzip (as Prometheus's does) gets the same
    /// text gzipped, which gzip(1) decodes; `q=0` refuses it.
    #[test]
    fn gzip_when_the_scrape_accepts_it() {
        let addr = serve(control(), "127.0.0.1:0".parse().unwrap()).unwrap();
        let raw = |req: &str| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            let mut out = vec![];
            let _ = c.read_to_end(&mut out);
            out
        };
        let r = raw("GET /metrics HTTP/1.1\r\nAccept-Encoding: identity, gzip\r\n\r\n");
        let end = r.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&r[..end]).to_string();
        assert!(head.contains("\r\nContent-Encoding: gzip"), "{head}");
        let mut gunzip = std::process::Command::new("gzip")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        gunzip.stdin.take().unwrap().write_all(&r[end + 4..]).unwrap();
        let text = String::from_utf8(gunzip.wait_with_output().unwrap().stdout).unwrap();
        assert!(text.contains("\nnode_ipvs_connections_total 0\n"), "{text}");
        let plain =
            String::from_utf8(raw("GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip;q=0\r\n\r\n")).unwrap();
        assert!(!plain.contains("Content-Encoding") && plain.contains("\nnode_ipvs_connections_total 0\n"));
    }
}

//! One attempt of a checker, with kernel sockets: `TCP_CHECK` connects,
//! `HTTP_GET` / `SSL_GET` fetch every url and check its status code and
//! digest (MD5 of the body, as keepalived's `genhash` prints it),
//! `UDP_CHECK` sends its payload and reads a reply or an ICMP error,
//! `MISC_CHECK` runs its script. Every attempt is bounded by the checker's
//! `connect_timeout` (`misc_timeout` for a script), as keepalived bounds it,
//! and ends within [`SLICE`] once its checker is replaced (a reload, the
//! daemon's stop): every wait (connect, read, a script) is taken in slices,
//! so a reload does not leave threads behind that wait out a long
//! `connect_timeout` on a server that does not answer.
//!
//! The source address is the kernel's choice for the route to the real
//! server: through the exception path, the DPDK port's address.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gw_keepalived::check::{
    CheckKind, Checker, HttpCheck, MiscCheck, UdpCheck, Url, UDP_DEFAULT_MAX_REPLY, UDP_DEFAULT_PAYLOAD,
};
pub use gw_keepalived::values::split_command;
use md5::{Digest, Md5};

/// The longest HTTP response header read (the body has no bound: it is
/// hashed as it arrives, as keepalived hashes it).
pub const MAX_HEADER: usize = 64 << 10;

/// The longest an attempt waits before it looks whether its checker was
/// replaced.
pub const SLICE: Duration = Duration::from_millis(50);

/// One attempt's bounds: its deadline, the timeout that set it, and
/// whether its checker was replaced.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    deadline: Instant,
    timeout: Duration,
    replaced: &'a dyn Fn() -> bool,
}

/// Why an attempt stopped waiting.
const REPLACED: &str = "checker replaced";

/// An I/O error that only says a wait ended (a socket timeout of one
/// [`SLICE`], a signal): the attempt's bounds decide what follows.
fn waited(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted)
}

impl<'a> Attempt<'a> {
    fn new(timeout: Duration, replaced: &'a dyn Fn() -> bool) -> Self {
        Attempt { deadline: Instant::now() + timeout, timeout, replaced }
    }

    /// The same bound, from now: keepalived times each step (an HTTP
    /// check's connect, each of its reads) with `connect_timeout`.
    fn renewed(&self) -> Self {
        Attempt::new(self.timeout, self.replaced)
    }

    /// The next wait: at most [`SLICE`], ending at the deadline. `Err(None)`
    /// when the deadline passed, `Err(Some(REPLACED))` when the checker was
    /// replaced.
    fn slice(&self) -> Result<Duration, Option<&'static str>> {
        if (self.replaced)() {
            return Err(Some(REPLACED));
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(None);
        }
        Ok(left.min(SLICE))
    }
}

/// Where a checker connects: its `connect_ip` / `connect_port`, else the real server's.
pub fn target(c: &Checker, addr: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(c.common.connect_ip.unwrap_or(addr), c.common.connect_port.unwrap_or(port))
}

/// The virtual hosts (`virtualhost`) of a checked server that an HTTP
/// check falls back on after its url's and its own: `header` for the Host
/// header (keepalived's `http_request_thread`: the real server's, else the
/// virtual server's), `sni` for the TLS server name (`ssl_connect`: the
/// virtual server's only).
#[derive(Clone, Copy, Debug, Default)]
pub struct Vhosts<'a> {
    pub header: Option<&'a str>,
    pub sni: Option<&'a str>,
}

/// Runs one attempt of `c` against `to`; `Err` says why it failed. `host`:
/// the server's virtual host ([`Vhosts`]).
pub fn probe(c: &Checker, to: SocketAddr, timeout: Duration, host: Option<&str>) -> Result<(), String> {
    probe_until(c, to, timeout, host, &|| false)
}

/// [`probe`], given up within [`SLICE`] once `replaced` says so.
pub fn probe_until(
    c: &Checker,
    to: SocketAddr,
    timeout: Duration,
    host: Option<&str>,
    replaced: &dyn Fn() -> bool,
) -> Result<(), String> {
    probe_weighing(c, to, timeout, Vhosts { header: host, sni: host }, replaced).map(drop)
}

/// [`probe_until`], with what a `misc_dynamic` script's exit status says
/// of the weight: `Ok(Some(status))` for its success, 0 (the file's
/// weight) or 2..=255 (weight `status - 2`), keepalived's
/// `misc_check_child_thread`; `Ok(None)` for any other checker's success.
pub fn probe_weighing(
    c: &Checker,
    to: SocketAddr,
    timeout: Duration,
    host: Vhosts,
    replaced: &dyn Fn() -> bool,
) -> Result<Option<u8>, String> {
    let a = Attempt::new(timeout, replaced);
    match &c.kind {
        CheckKind::Tcp => tcp(to, &a).map(|_| None),
        CheckKind::Http(h) => http(h, to, host, false, &a).map(|()| None),
        CheckKind::Ssl(h) => http(h, to, host, true, &a).map(|()| None),
        CheckKind::Udp(u) => udp(u, to, &a).map(|()| None),
        CheckKind::Misc(m) => misc(m, timeout, replaced),
    }
}

/// A connected stream, its reads in slices ([`read_all`]).
fn tcp(to: SocketAddr, a: &Attempt) -> Result<TcpStream, String> {
    let failed = |e: std::io::Error| format!("connect {to}: {e}");
    let s = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None)
        .map_err(failed)?;
    s.set_nonblocking(true).map_err(failed)?;
    match s.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => loop {
            let wait = match a.slice() {
                Ok(w) => w,
                Err(why) => return Err(why.map_or_else(|| failed(ErrorKind::TimedOut.into()), str::to_owned)),
            };
            let mut fd = libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
            // SAFETY: one pollfd, valid for the call; the socket outlives it.
            let n = unsafe { libc::poll(&mut fd, 1, wait.as_millis().clamp(1, 1000) as libc::c_int) };
            if n > 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if n < 0 && e.kind() != ErrorKind::Interrupted {
                return Err(failed(e));
            }
        },
        Err(e) => return Err(failed(e)),
    }
    if let Some(e) = s.take_error().map_err(failed)? {
        return Err(failed(e));
    }
    s.set_nonblocking(false).map_err(failed)?;
    let s = TcpStream::from(s);
    let left = a.deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    s.set_read_timeout(Some(SLICE.min(left))).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(left)).map_err(|e| e.to_string())?;
    Ok(s)
}

/// The request keepalived's HTTP_GET sends (`check_http.c`'s
/// `request_template`): HTTP/1.0 by default, `Connection: close` only with
/// `http_protocol` 1.0C or 1.1, and `Host:` the virtual host (url's,
/// checker's, then `host`'s) or else the server's `address:port` (IPv6 in
/// brackets, `request_template_ipv6`).
fn request(url: &Url, h: &HttpCheck, host: Option<&str>, to: SocketAddr) -> String {
    let (minor, close) = match h.http_protocol.as_deref() {
        Some("1.1") => (1, "Connection: close\r\n"),
        Some("1.0C" | "1.0c") => (0, "Connection: close\r\n"),
        _ => (0, ""),
    };
    let vhost = url.virtualhost.as_deref().or(h.virtualhost.as_deref()).or(host);
    let host = vhost.map_or_else(|| to.to_string(), str::to_owned);
    format!("GET {} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n", url.path)
}

/// Fetches each url of `h` in turn, each with its own `connect_timeout`
/// for the connect (and TLS handshake), from the request, and for each
/// read (keepalived re-arms its timer when it sends the request and after
/// every read: a slow page that keeps coming is not cut off).
fn http(h: &HttpCheck, to: SocketAddr, host: Vhosts, tls: bool, a: &Attempt) -> Result<(), String> {
    for url in &h.urls {
        let mut a = a.renewed();
        let stream = tcp(to, &a)?;
        let req = request(url, h, host.header, to);
        let mut resp = Response::new(url);
        if tls {
            fetch_tls(stream, sni(h, url, host), req.as_bytes(), &mut a, &mut resp)?
        } else {
            fetch(stream, req.as_bytes(), &mut a, &mut resp)?
        };
        resp.check().map_err(|e| format!("{} {}: {e}", to, url.path))?;
    }
    Ok(())
}

/// The TLS server name an `SSL_GET` sends, as keepalived's `ssl_connect`:
/// only with `enable_sni` (which `sni_name` sets), the `sni_name`, else
/// the url's, the checker's or the virtual server's `virtualhost`.
fn sni<'a>(h: &'a HttpCheck, url: &'a Url, host: Vhosts<'a>) -> Option<&'a str> {
    if !h.enable_sni {
        return None;
    }
    h.sni_name.as_deref().or(url.virtualhost.as_deref()).or(h.virtualhost.as_deref()).or(host.sni)
}

/// Sends the request and reads the response. Sending it re-arms the
/// attempt, as keepalived's `http_request_thread` re-arms
/// `connect_timeout`: the time the connect took does not count against
/// the response.
fn fetch(mut s: TcpStream, req: &[u8], a: &mut Attempt, resp: &mut Response) -> Result<(), String> {
    s.write_all(req).map_err(|e| format!("send: {e}"))?;
    *a = a.renewed();
    read_response(&mut s, a, resp)
}

/// Reads `s` into `resp` until the response is whole ([`Response::done`])
/// or the stream ends. The socket's read timeout is a [`SLICE`], after
/// which the attempt's bounds are looked at again; bytes that arrive renew
/// the attempt.
fn read_response(s: &mut impl Read, a: &mut Attempt, resp: &mut Response) -> Result<(), String> {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                resp.feed(&buf[..n]);
                if resp.done() {
                    return Ok(());
                }
                *a = a.renewed();
            }
            Err(e) if waited(&e) => {}
            // A TLS peer that closes without close_notify: what was read counts.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && resp.arrived() => return Ok(()),
            Err(e) => return Err(format!("read: {e}")),
        }
        if let Err(why) = a.slice() {
            return Err(why.unwrap_or("timeout reading the response").to_owned());
        }
    }
}

pub fn md5_hex(body: &[u8]) -> String {
    hex(&Md5::digest(body))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// An HTTP response as it arrives, checked as keepalived's
/// `http_process_response` checks it: the status code (200-299 unless the
/// url's `status_code` says otherwise) and the MD5 of the body, the raw
/// bytes after the header up to its Content-Length (a chunked body is
/// hashed with its chunk lines, as keepalived and `genhash` hash it). Only
/// the header is kept; the body is hashed as it comes.
pub struct Response<'u> {
    url: &'u Url,
    head: Vec<u8>,
    /// The status code and Content-Length, once the header is whole.
    header: Option<Result<(u16, Option<usize>), String>>,
    md5: Md5,
    body: usize,
}

impl<'u> Response<'u> {
    pub fn new(url: &'u Url) -> Self {
        Response { url, head: vec![], header: None, md5: Md5::new(), body: 0 }
    }

    /// Takes the next bytes of the response.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.header.is_some() {
            return self.body(bytes);
        }
        let from = self.head.len().saturating_sub(3);
        self.head.extend_from_slice(bytes);
        match self.head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => {
                let rest = self.head.split_off(from + at + 4);
                self.header = Some(parse_header(&self.head));
                self.body(&rest);
            }
            None if self.head.len() > MAX_HEADER => {
                self.header = Some(Err(format!("HTTP header longer than {MAX_HEADER} bytes")))
            }
            None => {}
        }
    }

    fn body(&mut self, bytes: &[u8]) {
        let Some(Ok((_, len))) = self.header else { return };
        let take = len.map_or(bytes.len(), |n| bytes.len().min(n - self.body));
        if self.url.digest.is_some() {
            self.md5.update(&bytes[..take]);
        }
        self.body += take;
    }

    /// Something arrived.
    fn arrived(&self) -> bool {
        !self.head.is_empty()
    }

    /// Nothing more can change the verdict: a header refused, a status
    /// code refused, or Content-Length's bytes in.
    pub fn done(&self) -> bool {
        match &self.header {
            None => false,
            Some(Err(_)) => true,
            Some(Ok((status, len))) => !self.status_ok(*status) || len.is_some_and(|n| self.body >= n),
        }
    }

    fn status_ok(&self, status: u16) -> bool {
        if self.url.status_code.is_empty() {
            (200..=299).contains(&status)
        } else {
            self.url.status_code.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
        }
    }

    /// The verdict on what arrived.
    pub fn check(self) -> Result<(), String> {
        let status = match &self.header {
            None => return Err("no end of the HTTP header".into()),
            Some(Err(e)) => return Err(e.clone()),
            Some(Ok((status, _))) => *status,
        };
        if !self.status_ok(status) {
            return Err(format!("HTTP status code {status}"));
        }
        if let Some(want) = &self.url.digest {
            let got = hex(&self.md5.finalize());
            if &got != want {
                return Err(format!("MD5 digest {got}, expected {want}"));
            }
        }
        Ok(())
    }
}

/// The status code and Content-Length of a header (its bytes before the
/// blank line).
fn parse_header(head: &[u8]) -> Result<(u16, Option<usize>), String> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("no HTTP status line")?;
    let len = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    Ok((status, len))
}

/// Checks a whole HTTP response against `url` ([`Response`]).
pub fn check_response(url: &Url, raw: &[u8]) -> Result<(), String> {
    let mut r = Response::new(url);
    r.feed(raw);
    r.check()
}

/// keepalived checks no certificate unless told to (`SSL { ca ... }` is
/// not supported here): any certificate is accepted, the handshake's
/// signatures are still verified.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// [`fetch`] over TLS; `name`: the server name sent ([`sni`]), none
/// without one (the server's address then names it, and no SNI is sent).
fn fetch_tls(
    mut s: TcpStream,
    name: Option<&str>,
    req: &[u8],
    a: &mut Attempt,
    resp: &mut Response,
) -> Result<(), String> {
    use rustls::pki_types::ServerName;
    // A name rustls cannot send (`www.example.com:8443`, which keepalived
    // sends as it is) goes as no SNI rather than failing every attempt.
    let server = match name.and_then(|n| ServerName::try_from(n.to_owned()).ok()) {
        Some(n) => n,
        None => ServerName::IpAddress(s.peer_addr().map_err(|e| format!("TLS: {e}"))?.ip().into()),
    };
    let mut conn = rustls::ClientConnection::new(tls_config()?, server).map_err(|e| format!("TLS: {e}"))?;
    // The handshake first, its reads in slices like the response's.
    while conn.is_handshaking() {
        match conn.complete_io(&mut s) {
            Ok(_) => {}
            Err(e) if waited(&e) => {
                if let Err(why) = a.slice() {
                    return Err(why.unwrap_or("TLS: timeout in the handshake").to_owned());
                }
            }
            Err(e) => return Err(format!("TLS: {e}")),
        }
    }
    // The connect and the handshake share one timeout; sending the
    // request re-arms it (keepalived's `ssl_connect`, then
    // `http_request_thread`).
    let mut tls = rustls::Stream::new(&mut conn, &mut s);
    tls.write_all(req).map_err(|e| format!("TLS: {e}"))?;
    *a = a.renewed();
    read_response(&mut tls, a, resp)
}

fn udp(u: &UdpCheck, to: SocketAddr, a: &Attempt) -> Result<(), String> {
    let any: IpAddr = if to.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let s = UdpSocket::bind((any, 0)).map_err(|e| e.to_string())?;
    s.connect(to).map_err(|e| format!("connect {to}: {e}"))?;
    s.set_read_timeout(Some(SLICE)).map_err(|e| e.to_string())?;
    let payload = u.payload.as_deref().unwrap_or(UDP_DEFAULT_PAYLOAD);
    s.send(payload).map_err(|e| format!("send to {to}: {e}"))?;
    let mut buf = vec![0u8; 65536];
    loop {
        match s.recv(&mut buf) {
            Ok(n) => {
                return udp_reply(u, &buf[..n]).map_err(|e| format!("reply of {n} bytes from {to}: {e}"))
            }
            Err(e) if waited(&e) => {
                match a.slice() {
                    Ok(_) => {}
                    Err(Some(why)) => return Err(why.to_owned()),
                    // Nothing back within the timeout: up, unless a reply is required.
                    Err(None) => {
                        return match u.require_reply {
                            Some(_) => Err(format!("no reply from {to}")),
                            None => Ok(()),
                        }
                    }
                }
            }
            // The ICMP error (port unreachable) of a closed port.
            Err(e) => return Err(format!("{to}: {e}")),
        }
    }
}

/// keepalived's `check_udp_reply`, for a `require_reply` with bytes: the
/// reply's length within `min_reply_length`..=`max_reply_length` (255
/// unless set), and its first bytes, as many as both have, equal to the
/// required ones but for their `x` nibbles. Any reply passes a bare
/// `require_reply`.
fn udp_reply(u: &UdpCheck, reply: &[u8]) -> Result<(), &'static str> {
    let Some(want) = u.require_reply.as_deref().filter(|w| !w.is_empty()) else { return Ok(()) };
    let n = reply.len() as u32;
    if n < u.min_reply_length.unwrap_or(0) || n > u.max_reply_length.unwrap_or(UDP_DEFAULT_MAX_REPLY) {
        return Err("outside the allowed length");
    }
    let mask = |i: usize| u.reply_mask.as_ref().map_or(0, |m| m[i]);
    if reply.iter().zip(want).enumerate().any(|(i, (r, w))| (r ^ w) & !mask(i) != 0) {
        return Err("not the required bytes");
    }
    Ok(())
}

/// Runs a `MISC_CHECK` script without a shell, in a process group of its
/// own, as `m.run_as` says (its `user`). Past its timeout (or once the
/// checker is replaced) the group gets SIGTERM, then SIGKILL 2 s later, as
/// keepalived's `misc_check_child_thread` ends a script and what it
/// started.
fn misc(m: &MiscCheck, timeout: Duration, replaced: &dyn Fn() -> bool) -> Result<Option<u8>, String> {
    use std::os::unix::process::CommandExt;
    let timeout = m.timeout.unwrap_or(timeout);
    let a = Attempt::new(timeout, replaced);
    let (prog, mut cmd) = script_command(&m.path, m.run_as).ok_or("empty misc_path")?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("{prog}: {e}"))?;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return match st.code() {
                    Some(0) => Ok(m.dynamic.then_some(0)),
                    Some(c @ 2..=255) if m.dynamic => Ok(Some(c as u8)),
                    _ => Err(format!("{prog}: {st}")),
                }
            }
            Ok(None) => match a.slice() {
                Ok(wait) => std::thread::sleep(wait.min(Duration::from_millis(10))),
                Err(why) => {
                    end_group(&mut child);
                    return Err(
                        why.map_or_else(|| format!("{prog}: timed out after {timeout:?}"), str::to_owned)
                    );
                }
            },
            Err(e) => return Err(format!("{prog}: {e}")),
        }
    }
}

/// A script's command line (a `misc_path`, a notify script) as keepalived
/// runs it: split into words ([`split_command`]), without a shell, as
/// `run_as`'s uid and gid when set. Its program and the command; `None`
/// for an empty line.
pub fn script_command(line: &str, run_as: Option<(u32, u32)>) -> Option<(String, Command)> {
    use std::os::unix::process::CommandExt;
    let mut words = split_command(line).into_iter();
    let prog = words.next()?;
    let mut cmd = Command::new(&prog);
    cmd.args(words);
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
    Some((prog, cmd))
}

/// Ends script `child` and its process group: SIGTERM, then SIGKILL if it
/// has not ended 2 s later; reaped.
fn end_group(child: &mut std::process::Child) {
    let group = -(child.id() as libc::pid_t);
    // SAFETY: kill(2) with a negative pid signals that process group, the
    // one `process_group(0)` made for this child alone.
    unsafe { libc::kill(group, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            // The script ended; what it started may not have.
            // SAFETY: as above.
            unsafe { libc::kill(group, libc::SIGKILL) };
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above.
    unsafe { libc::kill(group, libc::SIGKILL) };
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn url(path: &str) -> Url {
        Url { path: path.into(), ..Default::default() }
    }

    /// The wait for the response is timed from the request, as keepalived
    /// re-arms `connect_timeout` when it sends it: an attempt with 0.2 s
    /// left of 1 s when the request goes out (a slow connect or TLS
    /// handshake) still takes a response that comes 0.5 s later.
    #[test]
    fn the_wait_for_the_response_is_timed_from_the_request() {
        use std::io::{BufRead, BufReader};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            std::thread::sleep(Duration::from_millis(500));
            r.get_mut().write_all(b"HTTP/1.0 200 OK\r\n\r\nhello").unwrap();
        });
        let never = || false;
        let mut a = Attempt::new(Duration::from_secs(1), &never);
        let stream = tcp(to, &a).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let u = url("/");
        let mut resp = Response::new(&u);
        assert_eq!(fetch(stream, b"GET / HTTP/1.0\r\n\r\n", &mut a, &mut resp), Ok(()));
        assert_eq!(resp.check(), Ok(()));
        server.join().unwrap();
    }

    /// keepalived's `request_template`(`_ipv6`), byte for byte.
    #[test]
    fn the_request_is_keepaliveds() {
        let v4: SocketAddr = "198.18.0.3:8081".parse().unwrap();
        let v6: SocketAddr = "[2001:db8:1::2]:80".parse().unwrap();
        let mut h = HttpCheck::default();
        assert_eq!(
            request(&url("/"), &h, None, v4),
            "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 198.18.0.3:8081\r\n\r\n"
        );
        assert_eq!(
            request(&url("/x"), &h, None, v6),
            "GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [2001:db8:1::2]:80\r\n\r\n"
        );
        h.http_protocol = Some("1.1".into());
        assert_eq!(
            request(&url("/"), &h, Some("www.example"), v6),
            "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example\r\n\r\n"
        );
        h.http_protocol = Some("1.0C".into());
        let u = Url { virtualhost: Some("u.example".into()), ..url("/") };
        assert_eq!(
            request(&u, &h, Some("www.example"), v4),
            "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: u.example\r\n\r\n"
        );
    }

    #[test]
    fn md5_is_genhash_s() {
        // `echo -n hello | md5sum`
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn status_codes_and_digest() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(check_response(&url("/"), ok), Ok(()));
        let nf = b"HTTP/1.0 404 Not Found\r\n\r\n";
        assert_eq!(check_response(&url("/"), nf), Err("HTTP status code 404".into()));
        let mut u = url("/");
        u.status_code = vec![(404, 404)];
        assert_eq!(check_response(&u, nf), Ok(()));
        u.status_code = vec![];
        u.digest = Some(md5_hex(b"hello"));
        assert_eq!(check_response(&u, ok), Ok(()));
        // keepalived and genhash hash the raw bytes after the header, up to
        // Content-Length: a chunked body with its chunk lines.
        let body = b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        let chunked = [&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..], body].concat();
        assert!(check_response(&u, &chunked).unwrap_err().starts_with("MD5 digest"));
        let mut raw = u.clone();
        raw.digest = Some(md5_hex(body));
        assert_eq!(check_response(&raw, &chunked), Ok(()));
        let longer = b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello, and more";
        assert_eq!(check_response(&u, longer), Ok(()), "only Content-Length's bytes are hashed");
        let big = [&b"HTTP/1.0 200 OK\r\n\r\n"[..], &vec![b'x'; 3 << 20]].concat();
        let mut large = url("/");
        large.digest = Some(md5_hex(&big[19..]));
        assert_eq!(check_response(&large, &big), Ok(()), "a body of any size");
        let long_header = [&b"HTTP/1.0 200 OK\r\nX: "[..], &vec![b'x'; MAX_HEADER]].concat();
        assert!(check_response(&url("/"), &long_header).unwrap_err().starts_with("HTTP header longer"));
        let other = b"HTTP/1.1 200 OK\r\n\r\nhellO";
        assert!(check_response(&u, other).unwrap_err().starts_with("MD5 digest"));
        assert!(check_response(&u, b"garbage").is_err());
    }

    #[test]
    fn commands_split_as_keepalived_does() {
        assert_eq!(split_command("/bin/check  -x 'a b' \"\""), vec!["/bin/check", "-x", "a b", ""]);
    }

    /// A peer on `bind` that takes two connections: the first a TCP
    /// check's (nothing read), the second an HTTP check's GET, which must
    /// name `host` and the peer's port in its Host header (keepalived's
    /// `Host: %s%s` with ":port") and gets "hello".
    fn web_peer(bind: &str, host: &'static str) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind(bind).unwrap();
        let to = l.local_addr().unwrap();
        let port = to.port();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = [0u8; 1024];
                let n = c.read(&mut buf).unwrap();
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                if req.starts_with("GET /") {
                    assert!(req.contains(&format!("Host: {host}:{port}\r\n")), "{req}");
                    c.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello").unwrap();
                }
            }
        });
        (to, server)
    }

    #[test]
    fn tcp_http_and_misc_against_local_peers() {
        let (to, server) = web_peer("127.0.0.1:0", "127.0.0.1");
        let t = Duration::from_secs(2);
        let at = gw_keepalived::reader::Pos { file: std::path::Path::new("t").into(), line: 1 };
        let tcp = Checker { at, kind: CheckKind::Tcp, common: Default::default() };
        assert_eq!(probe(&tcp, to, t, None), Ok(()));
        let mut h = HttpCheck::default();
        let mut u = url("/health");
        u.digest = Some(md5_hex(b"hello"));
        h.urls.push(u);
        let http = Checker { kind: CheckKind::Http(h), ..tcp.clone() };
        // The first accept served the TCP check (no request sent).
        assert_eq!(probe(&http, to, t, None), Ok(()));
        server.join().unwrap();
        assert!(probe(&tcp, to, t, None).unwrap_err().contains("refused"));
        let misc = |path: &str| Checker {
            kind: CheckKind::Misc(MiscCheck { path: path.into(), ..Default::default() }),
            ..tcp.clone()
        };
        assert_eq!(probe(&misc("/bin/true"), to, t, None), Ok(()));
        assert!(probe(&misc("/bin/false"), to, t, None).is_err());
        assert!(probe(&misc("/bin/sleep 5"), to, Duration::from_millis(100), None)
            .unwrap_err()
            .contains("timed out"));
    }

    /// TCP_CHECK, HTTP_GET (Host in brackets, keepalived's
    /// REQUEST_TEMPLATE_IPV6) and UDP_CHECK against IPv6 peers on `::1`,
    /// and a `connect_ip` of IPv6 that redirects a checker.
    /// Runs `probe_until` on its own thread, `replaced` turning true after
    /// `after`; its result, or `None` if it has not returned 20 s later (a
    /// bound for a hang, not a measure of speed).
    fn replaced_after(c: Checker, to: SocketAddr, after: Duration) -> Option<Result<(), String>> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let flag = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let f = flag.clone();
        std::thread::spawn(move || {
            let r = probe_until(&c, to, Duration::from_secs(3600), None, &|| f.load(Ordering::SeqCst));
            let _ = tx.send(r);
        });
        std::thread::sleep(after);
        flag.store(true, Ordering::SeqCst);
        rx.recv_timeout(Duration::from_secs(20)).ok()
    }

    #[test]
    fn a_replaced_checker_gives_up_a_connect_a_read_and_a_script_that_never_end() {
        let at = gw_keepalived::reader::Pos { file: std::path::Path::new("t").into(), line: 1 };
        let tcp = Checker { at, kind: CheckKind::Tcp, common: Default::default() };
        // A listener whose accept queue is full drops further SYNs: the
        // connect waits in SYN-SENT (retransmitting) for as long as allowed.
        let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        l.listen(0).unwrap();
        let to = l.local_addr().unwrap().as_socket().unwrap();
        let queued: Vec<_> =
            (0..2).map(|_| TcpStream::connect_timeout(&to, Duration::from_millis(300))).collect();
        assert!(queued[0].is_ok());
        let r = replaced_after(tcp.clone(), to, Duration::from_millis(300));
        assert_eq!(r, Some(Err(REPLACED.to_owned())), "the connect is given up");
        // A server that accepts and never answers the request.
        let quiet = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = quiet.local_addr().unwrap();
        let mut h = HttpCheck::default();
        h.urls.push(url("/health"));
        let http = Checker { kind: CheckKind::Http(h), ..tcp.clone() };
        let r = replaced_after(http, to, Duration::from_millis(300));
        assert_eq!(r, Some(Err(REPLACED.to_owned())), "the read is given up");
        drop(quiet);
        // A script that sleeps is killed.
        let misc = Checker {
            kind: CheckKind::Misc(MiscCheck { path: "/bin/sleep 3600".into(), ..Default::default() }),
            ..tcp.clone()
        };
        let r = replaced_after(misc, to, Duration::from_millis(100));
        assert_eq!(r, Some(Err(REPLACED.to_owned())), "the script is killed");
        // Not replaced: the attempt still ends at its timeout.
        let r = probe(&tcp, to, Duration::from_millis(200), None);
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn ipv6_peers_are_checked() {
        let (to, server) = web_peer("[::1]:0", "[::1]");
        let t = Duration::from_secs(2);
        let at = gw_keepalived::reader::Pos { file: std::path::Path::new("t").into(), line: 1 };
        let tcp = Checker { at, kind: CheckKind::Tcp, common: Default::default() };
        // The real server is elsewhere; connect_ip sends the check to ::1.
        let mut redirected = tcp.clone();
        redirected.common.connect_ip = Some("::1".parse().unwrap());
        let elsewhere = SocketAddr::new("2001:db8:1::2".parse().unwrap(), to.port());
        assert_eq!(target(&redirected, elsewhere.ip(), elsewhere.port()), to);
        assert_eq!(probe(&tcp, to, t, None), Ok(()));
        let mut h = HttpCheck::default();
        h.urls.push(url("/health"));
        let http = Checker { kind: CheckKind::Http(h), ..tcp.clone() };
        assert_eq!(probe(&http, to, t, None), Ok(()));
        server.join().unwrap();
        assert!(probe(&tcp, to, t, None).is_err());
        let echo = UdpSocket::bind("[::1]:0").unwrap();
        let uto = echo.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut b = [0u8; 64];
            let (n, from) = echo.recv_from(&mut b).unwrap();
            echo.send_to(&b[..n], from).unwrap();
        });
        let u = UdpCheck {
            payload: Some(b"ping".to_vec()),
            require_reply: Some(b"ping".to_vec()),
            ..Default::default()
        };
        assert_eq!(probe(&Checker { kind: CheckKind::Udp(u), ..tcp.clone() }, uto, t, None), Ok(()));
        server.join().unwrap();
    }

    #[test]
    fn udp_closed_port_fails_and_an_echo_passes() {
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = echo.local_addr().unwrap();
        let t = Duration::from_millis(500);
        let u = UdpCheck {
            payload: Some(b"ping".to_vec()),
            require_reply: Some(b"pi".to_vec()),
            ..Default::default()
        };
        let server = std::thread::spawn(move || {
            let mut b = [0u8; 64];
            let (n, from) = echo.recv_from(&mut b).unwrap();
            echo.send_to(&b[..n], from).unwrap();
        });
        let checker = |u: UdpCheck| Checker {
            at: gw_keepalived::reader::Pos { file: std::path::Path::new("t").into(), line: 1 },
            kind: CheckKind::Udp(u),
            common: Default::default(),
        };
        assert_eq!(probe(&checker(u), to, t, None), Ok(()));
        server.join().unwrap();
        // The socket is closed now: ICMP port unreachable.
        assert!(probe(&checker(UdpCheck::default()), to, t, None).is_err());
    }

    /// SSL_GET against `openssl s_server -www` (a second TLS implementation,
    /// with a self-signed certificate: accepted, as keepalived accepts it).
    #[test]
    fn ssl_get_against_openssl_s_server() {
        let dir = std::env::temp_dir().join(format!("gw-ssl-get-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (key, cert) = (dir.join("k.pem"), dir.join("c.pem"));
        let st = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "1", "-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl (Debian's openssl package)");
        assert!(st.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-www", "-quiet", "-key"])
            .arg(&key)
            .arg("-cert")
            .arg(&cert)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut h = HttpCheck::default();
        h.urls.push(url("/"));
        let at = gw_keepalived::reader::Pos { file: std::path::Path::new("t").into(), line: 1 };
        let ssl = Checker { at, kind: CheckKind::Ssl(h.clone()), common: Default::default() };
        let t = Duration::from_secs(3);
        // Bounded wait for the server to listen (not a timing assertion).
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(to).is_err() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        let ok = probe(&ssl, to, t, Some("localhost"));
        h.urls[0].status_code = vec![(404, 404)];
        let wrong = probe(&Checker { kind: CheckKind::Ssl(h), ..ssl.clone() }, to, t, Some("localhost"));
        // Plain HTTP to a TLS port fails too.
        let plain = probe(
            &Checker {
                kind: CheckKind::Http(HttpCheck { urls: vec![url("/")], ..Default::default() }),
                ..ssl
            },
            to,
            t,
            None,
        );
        let _ = server.kill();
        let _ = server.wait();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(ok, Ok(()));
        assert_eq!(wrong.unwrap_err(), format!("{to} /: HTTP status code 200"));
        assert!(plain.is_err());
    }

    /// A script past its `misc_timeout` is ended with the process group
    /// it made, as keepalived's `kill(-pid, ...)`: what it started in the
    /// background goes too, and the attempt fails.
    #[test]
    fn a_script_past_its_timeout_ends_with_what_it_started() {
        let pidfile = std::env::temp_dir().join(format!("gw-misc-group-{}", std::process::id()));
        let m = MiscCheck {
            path: format!("/bin/sh -c 'sleep 300 & echo $! > {}; wait'", pidfile.display()),
            timeout: Some(Duration::from_millis(500)),
            ..Default::default()
        };
        let r = misc(&m, Duration::from_secs(60), &|| false);
        assert!(r.unwrap_err().contains("timed out"));
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |st| st.split_whitespace().nth(2) == Some("Z"))
        };
        let end = Instant::now() + Duration::from_secs(10);
        while !gone() {
            assert!(Instant::now() < end, "the background sleep {pid} outlived its script");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_file(&pidfile).unwrap();
    }

    /// keepalived times an HTTP check's connect and each read with
    /// `connect_timeout`, each url on its own: a page that keeps coming
    /// (eight pieces 200 ms apart against a 1 s timeout), and two such
    /// urls, pass; a page that stops for longer than the timeout fails.
    #[test]
    fn each_read_and_each_url_has_its_own_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for pause in [200, 200, 1500] {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).unwrap();
                c.write_all(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
                for _ in 0..8 {
                    std::thread::sleep(Duration::from_millis(pause));
                    if c.write_all(b"piece").is_err() {
                        break;
                    }
                }
            }
        });
        let at = gw_keepalived::reader::Pos { file: std::path::Path::new("t").into(), line: 1 };
        let mut h = HttpCheck::default();
        let mut u = url("/");
        u.digest = Some(md5_hex(&b"piece".repeat(8)));
        h.urls = vec![u.clone(), u];
        let http = Checker { at, kind: CheckKind::Http(h.clone()), common: Default::default() };
        assert_eq!(probe(&http, to, Duration::from_secs(1), None), Ok(()));
        h.urls.truncate(1);
        let http = Checker { kind: CheckKind::Http(h), ..http };
        let stalled = probe(&http, to, Duration::from_secs(1), None);
        assert_eq!(stalled, Err("timeout reading the response".into()));
        server.join().unwrap();
    }

    /// keepalived's `check_udp_reply`: the length within 0..=255 unless
    /// set, then as many bytes as both have compared, `x` nibbles
    /// excepted; a bare `require_reply` takes any reply.
    #[test]
    fn udp_replies_are_checked_as_keepalived_checks_them() {
        let want = |bytes: &[u8], mask: Option<Vec<u8>>| UdpCheck {
            require_reply: Some(bytes.to_vec()),
            reply_mask: mask,
            ..Default::default()
        };
        let u = want(b"pong", None);
        assert_eq!(udp_reply(&u, b"pong and more"), Ok(()));
        assert_eq!(udp_reply(&u, b"po"), Ok(()), "a shorter reply: its own bytes are compared");
        assert_eq!(udp_reply(&u, b"ping"), Err("not the required bytes"));
        assert_eq!(udp_reply(&u, &[b'p'; 256]), Err("outside the allowed length"), "255 at most by default");
        let u = UdpCheck { min_reply_length: Some(4), ..want(b"pong", None) };
        assert_eq!(udp_reply(&u, b"po"), Err("outside the allowed length"));
        let u = want(&[0x40, 0x01], Some(vec![0x0f, 0xf0]));
        assert_eq!(udp_reply(&u, &[0x4a, 0x71]), Ok(()), "4x x1");
        assert_eq!(udp_reply(&u, &[0x5a, 0x71]), Err("not the required bytes"));
        assert_eq!(udp_reply(&want(b"", None), &[0u8; 1000]), Ok(()), "a bare require_reply");
    }

    /// Without a `payload` keepalived sends its 32-byte filler.
    #[test]
    fn udp_check_without_a_payload_sends_keepaliveds_filler() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = peer.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut b = [0u8; 64];
            let (n, from) = peer.recv_from(&mut b).unwrap();
            peer.send_to(&b[..n], from).unwrap();
            b[..n].to_vec()
        });
        let c = Checker {
            at: gw_keepalived::reader::Pos { file: std::path::Path::new("t").into(), line: 1 },
            kind: CheckKind::Udp(UdpCheck { require_reply: Some(vec![]), ..Default::default() }),
            common: Default::default(),
        };
        assert_eq!(probe(&c, to, Duration::from_secs(2), None), Ok(()));
        assert_eq!(server.join().unwrap(), b"keepalived check - keepalived ch");
    }
}

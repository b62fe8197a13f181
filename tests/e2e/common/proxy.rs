//! What the client-address labs share (`client_addr_lab`, IPv4 FULLNAT;
//! `client_addr6_lab`, FULLNAT66 and NAT64): the real servers that read a
//! PROXY header (nginx with `listen ... proxy_protocol`, HAProxy with
//! `bind ... accept-proxy`), each answering and logging "ADDRESS PORT" of
//! the client the header names, a pseudo-random file to download, and the
//! client side's curl and sha256; what those servers, and a capture of TOA
//! at a real server, must have seen of the client.

use std::io::BufRead;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{hostport, script, text, Lab};

/// Waits until `url` answers from inside `ns` when sent a PROXY v1 header.
pub fn wait_listening(lab: &Lab, ns: &str, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab.exec(ns, &["curl", "-g", "-s", "-m", "1", "--haproxy-protocol", url]).status.success() {
        assert!(Instant::now() < deadline, "{url} in {ns} did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// curl from the client: (body, the client's local port).
pub fn curl(lab: &Lab, url: &str) -> (String, String) {
    let o = lab.exec("client", &["curl", "-g", "-s", "-S", "-m", "10", "-w", "\n%{local_port}", url]);
    assert!(o.status.success(), "curl {url}: {}", String::from_utf8_lossy(&o.stderr));
    let t = text(&o);
    let (body, port) = t.rsplit_once('\n').unwrap();
    (body.to_string(), port.trim().to_string())
}

/// The sha256 (hex) of what `cmd` writes, run in `ns`.
pub fn sha256_of(lab: &Lab, ns: &str, cmd: &str) -> String {
    let o = lab.exec(ns, &["sh", "-c", &format!("{cmd} | sha256sum")]);
    assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    text(&o).split_whitespace().next().unwrap().to_string()
}

/// Writes `len` pseudo-random bytes (xorshift from `seed`) to `path`.
pub fn write_random(path: &Path, len: usize, seed: u64) {
    let mut big = vec![0u8; len];
    let mut x = seed;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(path, &big).unwrap();
}

/// nginx's configuration in `dir` (its root `dir`/www): PROXY protocol on
/// the two listen addresses `listen`, `/who` answering "ADDRESS PORT" of
/// the header's client, every request logged to `dir`/access.log as
/// "ADDRESS PORT SERVER_PORT URI". Returns the file's path.
pub fn nginx_conf(dir: &Path, listen: [&str; 2]) -> String {
    let d = dir.display();
    let [l1, l2] = listen;
    let conf = format!(
        "daemon off; master_process on; worker_processes 1; user root;\n\
         pid {d}/nginx.pid; error_log {d}/nginx-error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
           uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           log_format pp '$proxy_protocol_addr $proxy_protocol_port $server_port $request_uri';\n\
           server {{\n\
             listen {l1} proxy_protocol; listen {l2} proxy_protocol;\n\
             access_log {d}/access.log pp;\n\
             root {d}/www;\n\
             location = /who {{ default_type text/plain; return 200 \"$proxy_protocol_addr $proxy_protocol_port\\n\"; }}\n\
           }}\n\
         }}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path.display().to_string()
}

/// HAProxy's configuration in `dir`: PROXY protocol (either version) on
/// `bind`, every request answered with "ADDRESS PORT" of the header's
/// client. Returns the file's path.
pub fn haproxy_cfg(dir: &Path, bind: &str) -> String {
    let conf = format!(
        "global\n  maxconn 100\n\
         defaults\n  mode http\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n\
         frontend pp\n  bind {bind} accept-proxy\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"%ci %cp\\n\"\n"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, conf).unwrap();
    path.display().to_string()
}

/// A FULLNAT (or NAT64) TCP service `vip`:`vport`, round robin, with the
/// real server `rs`:`rport`, the local address `lip` and the
/// client-address (and SYNPROXY) options `opts`.
pub fn service(lab: &Lab, (vip, vport): (&str, u16), lip: &str, (rs, rport): (&str, u16), opts: &[&str]) {
    let vip = hostport(vip, vport);
    let mut a = vec!["-A", "-t", &vip, "-s", "rr"];
    a.extend_from_slice(opts);
    lab.gwctl_ok(&a);
    lab.gwctl_ok(&["-a", "-t", &vip, "-r", &hostport(rs, rport), "-b", "-w", "1"]);
    lab.gwctl_ok(&["--add-laddr", "-z", lip, "-t", &vip]);
}

/// Two datagrams from the client to `vip`:99, a UDP service with
/// `--proxy-protocol v2` in front of tests/lab/uoa_server.py, which
/// answers each with "ADDRESS:PORT PAYLOAD" of the client its header
/// named: that must be `client` and the client socket's own port, and the
/// payload the datagram's after the header.
pub fn udp_server_learns(lab: &Lab, vip: &str, client: &str) {
    let family = if vip.contains(':') { "AF_INET6" } else { "AF_INET" };
    let uc = format!(
        "import socket,sys\n\
         s=socket.socket(socket.{family},socket.SOCK_DGRAM); s.settimeout(3); s.bind(('',0))\n\
         for m in (b'one',b'two'): s.sendto(m,(sys.argv[1],99)); print(s.recv(200).decode(), s.getsockname()[1])\n"
    );
    let o = lab.exec("client", &["python3", "-c", &uc, vip]);
    assert!(o.status.success(), "UDP client: {}", String::from_utf8_lossy(&o.stderr));
    let t = text(&o);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2, "{t}");
    for (l, m) in lines.iter().zip(["one", "two"]) {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{l}");
        assert_eq!(f[0], format!("{client}:{}", f[2]), "the UDP server learned the client: {l}");
        assert_eq!(f[1], m, "the payload after the header: {l}");
    }
}

/// curl from the client, three times, to each `vip`:VPORT PATH of
/// `targets`, each served behind a PROXY header by nginx (`/who`) or
/// HAProxy (`/`): every answer must name `client` and curl's own port.
/// Returns the number of requests made.
pub fn servers_name_the_client(lab: &Lab, vip: &str, client: &str, targets: &[(u16, &str)]) -> u64 {
    let mut requests = 0;
    for &(vport, path) in targets {
        let service = hostport(vip, vport);
        for _ in 0..3 {
            let (body, port) = curl(lab, &format!("http://{service}{path}"));
            assert_eq!(body.trim(), format!("{client} {port}"), "{service} answered {body:?}");
            requests += 1;
        }
    }
    requests
}

/// nginx's access log in `dir` (see [`nginx_conf`]): exactly the requests
/// `per_port` counts, (nginx's listening port, requests), every one logged
/// with the PROXY header's client address `client`.
pub fn nginx_logged(dir: &Path, client: &str, per_port: &[(u16, usize)]) {
    let log = std::fs::read_to_string(dir.join("access.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), per_port.iter().map(|&(_, n)| n).sum::<usize>(), "{log}");
    for l in &lines {
        assert!(l.starts_with(&format!("{client} ")), "nginx logged {l:?}");
    }
    for &(port, n) in per_port {
        assert_eq!(lines.iter().filter(|l| l.contains(&format!(" {port} "))).count(), n, "{log}");
    }
}

/// TOA as the real server must see it for `client`'s connection from
/// `port`, in hex: kind 254, length 8 (IPv4, the TOA of Linux's toa
/// module) or 20 (IPv6, DPVS's), the port, the address.
fn toa_option(client: &str, port: u16) -> String {
    let addr: Vec<u8> = match client.parse::<IpAddr>().unwrap() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let hex: String = addr.iter().map(|b| format!("{b:02x}")).collect();
    format!("fe{:02x}{port:04x}{hex}", 4 + addr.len())
}

/// One curl of `url`, a `--toa` service in front of the lab's python
/// server on rs1:80, while rs1 captures (scapy, tests/lab/toa_capture.py):
/// the server answers the local address `lip`; the SYN from `lip` carries
/// the TOA of `client` and curl's port first in its options and the
/// client's MSS (1500-byte MTU) lowered by TOA's length; the handshake's
/// ACK carries the TOA too, the request does not.
pub fn toa_seen(lab: &Lab, url: &str, lip: &str, client: &str) {
    let cap = script("toa_capture.py").display().to_string();
    let mut capture = lab.spawn("rs1", &["/usr/bin/python3", &cap, "eth0", "80", "3", "20"]);
    let mut out = capture.ready();
    let (body, cport) = curl(lab, url);
    assert!(body.starts_with(&format!("rs1 {lip}:")), "{body}");
    let mut lines = vec![];
    let mut l = String::new();
    while out.read_line(&mut l).unwrap() > 0 {
        lines.push(std::mem::take(&mut l));
    }
    let _ = capture.0.wait();
    let toa = toa_option(client, cport.parse().unwrap());
    let toa_len = toa.len() / 2;
    let client_mss = if client.contains(':') { 1500 - 40 - 20 } else { 1500 - 20 - 20 };
    let mss = client_mss - toa_len;
    let syn = lines.iter().find(|l| l.starts_with("S ")).unwrap_or_else(|| panic!("no SYN: {lines:?}"));
    let f: Vec<&str> = syn.split_whitespace().collect();
    assert!(f[1].starts_with(&format!("{lip}:")), "{syn}");
    assert!(f[2].starts_with(&toa), "TOA first in the SYN's options: {syn}");
    assert!(
        f[2].contains(&format!("0204{mss:04x}")),
        "MSS {client_mss} - {toa_len} = {mss} in the SYN: {syn}"
    );
    let ack = lines
        .iter()
        .find(|l| l.starts_with("A ") && l.trim().ends_with(" 0"))
        .unwrap_or_else(|| panic!("no handshake ACK: {lines:?}"));
    assert!(
        ack.split_whitespace().nth(2).unwrap().starts_with(&toa),
        "TOA in the handshake ACK: {ack} ({lines:?})"
    );
    let data = lines.iter().find(|l| l.starts_with("PA ")).unwrap_or_else(|| panic!("no request: {lines:?}"));
    assert!(!data.contains(&toa), "TOA only on the handshake: {data}");
}

/// Makes `from`, an address the client's kernel does not hold (so its
/// kernel resets nothing the gateway sends there), reachable at the
/// client's interface c0: a static neighbour on the gateway's outside
/// port, for [`early_data`].
pub fn early_neighbour(lab: &Lab, from: &str) {
    let cmac = lab.mac("client", "c0");
    lab.gwctl_ok(&["--add-neighbour", from, "--mac", &cmac, "--port", "outside"]);
}

/// Sends `data` on the third ACK of a handshake from `from` to
/// `vip`:`vport` (tests/lab/sp_early_data.py, scapy, on c0; `from` made
/// reachable by [`early_neighbour`]) and returns what the script printed:
/// the answer to the request.
pub fn early_data(lab: &Lab, from: &str, vip: &str, vport: u16, data: &str) -> String {
    let sed = script("sp_early_data.py").display().to_string();
    let port = vport.to_string();
    let o = lab.exec("client", &["timeout", "60", "/usr/bin/python3", &sed, "c0", from, vip, &port, data]);
    assert!(o.status.success(), "sp_early_data {vip} {vport}: {}", String::from_utf8_lossy(&o.stderr));
    text(&o)
}

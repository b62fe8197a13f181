//! Clients fail fast instead of hanging (issue 10), FULLNAT lab:
//!
//! - a held TCP connection outlives its session (established timeout 2 s
//!   via `gwctl --set`): when the client then sends, the gateway answers
//!   with a RST from VIP:port and the client's read ends in ECONNRESET, not
//!   in its own retransmission timeout; when the real server then sends to
//!   LIP:lport, it gets a RST from there and ends the same way;
//! - a service with no real server: `curl` fails with "connection refused"
//!   (exit 7, an ICMP port unreachable from the VIP) rather than timing out
//!   (exit 28), and so does a port with no service; a UDP client gets
//!   ECONNREFUSED; with `no_service_reply = "rst"` curl is refused by a RST.
//!
//! - the same for an IPv6 service (FULLNAT66 lab): curl over IPv6 and a UDP
//!   client are refused by ICMPv6 port unreachable from the IPv6 VIP.
//!
//! The reply counters are read with `gwctl --counters`. Times are printed
//! for information only: what is asserted is how each socket call ended.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

/// The service port of the held connection (a plain TCP server of ours).
const HOLD_PORT: &str = "9000";

fn go_file(lab: &Lab, who: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("{}-go-{who}", lab.prefix));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn a_connection_that_outlived_its_session_is_reset_at_both_ends() {
    let lab = Lab::up(&FULLNAT, "ff-held");
    let (_, rip) = FULLNAT.servers[0];
    let vip = format!("{VIP}:{HOLD_PORT}");
    lab.gwctl_ok(&["-A", "-t", &vip, "-s", "rr"]);
    lab.gwctl_ok(&["-a", "-t", &vip, "-r", &format!("{rip}:{HOLD_PORT}"), "-b"]);
    lab.gwctl_ok(&["--add-laddr", "-z", FULLNAT.laddr.unwrap(), "-t", &vip]);
    // ESTABLISHED lasts 2 s (ipvsadm's --set tcp tcpfin udp; 0 = unchanged).
    lab.gwctl_ok(&["--set", "2", "0", "0"]);
    let (go_client, go_server) = (go_file(&lab, "client"), go_file(&lab, "server"));
    let (mut server, mut server_out) =
        lab.spawn_python("rs1", "hold_conn.py", &["server", HOLD_PORT, go_server.to_str().unwrap()]);
    assert_eq!(read_line(&mut server_out), "listening");
    let (mut client, mut client_out) =
        lab.spawn_python("client", "hold_conn.py", &["client", VIP, HOLD_PORT, go_client.to_str().unwrap()]);
    assert!(read_line(&mut client_out).starts_with("open "), "{}", lab.diag());
    let accepted = read_line(&mut server_out);
    let peer = accepted.strip_prefix("accepted ").unwrap_or_else(|| panic!("{accepted}"));
    assert!(
        peer.starts_with(&format!("{}:", FULLNAT.laddr.unwrap())),
        "FULLNAT: the server sees the LIP: {peer}"
    );
    // The idle connection's session expires at the gateway.
    let deadline = Instant::now() + Duration::from_secs(60);
    while lab.counter("sessions_expired") == 0 {
        assert!(Instant::now() < deadline, "the session never expired:\n{}", lab.diag());
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed = lab.gwctl_ok(&["-L", "-n", "-c"]);
    assert!(!listed.contains(&vip), "the connection is still listed:\n{listed}");
    // The client sends: a RST from VIP:9000 ends its read at once.
    std::fs::write(&go_client, b"go").unwrap();
    let client_end = read_line(&mut client_out);
    eprintln!("client: {client_end} (seconds)");
    assert!(client_end.starts_with("reset "), "the client's read ended with {client_end:?}\n{}", lab.diag());
    assert!(client.wait().unwrap().success());
    assert!(lab.counter("tcp_rst_sent") >= 1);
    assert!(lab.counter("drop_no_session_not_syn") >= 1);
    // The real server sends: a RST from LIP:lport ends its read too.
    std::fs::write(&go_server, b"go").unwrap();
    let server_end = read_line(&mut server_out);
    eprintln!("real server: {server_end} (seconds)");
    assert!(server_end.starts_with("reset "), "the server's read ended with {server_end:?}\n{}", lab.diag());
    assert!(server.wait().unwrap().success());
    assert!(lab.counter("tcp_rst_sent") >= 2, "{}", lab.diag());
    assert!(lab.counter("drop_unknown_reply") >= 1);
    assert_eq!(lab.counter("replies_rate_limited"), 0);
    let _ = std::fs::remove_file(&go_client);
    let _ = std::fs::remove_file(&go_server);
}

/// curl from the client to `url` with a 20 s limit: (exit code, stderr).
fn curl(lab: &Lab, url: &str) -> (i32, String) {
    let start = Instant::now();
    let o = lab.exec("client", &["curl", "-s", "-S", "-m", "20", url]);
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    eprintln!("curl {url}: {:?} after {:.3} s: {err}", o.status.code(), start.elapsed().as_secs_f64());
    (o.status.code().unwrap_or(-1), err)
}

/// curl's exit code for "failed to connect" (7), not "timed out" (28).
const CURL_COULDNT_CONNECT: i32 = 7;

#[test]
fn a_service_without_real_servers_refuses_tcp_and_udp_clients_at_once() {
    let lab = Lab::up(&FULLNAT, "ff-nodest");
    let vip = format!("{VIP}:{VPORT}");
    lab.gwctl_ok(&["-A", "-t", &vip, "-s", "rr"]);
    lab.gwctl_ok(&["-A", "-u", &vip, "-s", "rr"]);
    let (code, err) = curl(&lab, &format!("http://{vip}/"));
    assert_eq!(code, CURL_COULDNT_CONNECT, "curl: {err}\n{}", lab.diag());
    assert!(lab.counter("drop_no_dest") >= 1);
    // A port with no service at all on the VIP.
    let (code, err) = curl(&lab, &format!("http://{VIP}:81/"));
    assert_eq!(code, CURL_COULDNT_CONNECT, "curl: {err}\n{}", lab.diag());
    assert!(lab.counter("drop_no_service") >= 1);
    // UDP: the port unreachable reaches the client socket as ECONNREFUSED.
    let out = lab.python("client", "udp_refused.py", &[VIP, &VPORT.to_string()]);
    assert_eq!(out.trim(), "refused", "{}", lab.diag());
    assert!(lab.counter("icmp_port_unreach_sent") >= 3, "{}", lab.diag());
    assert_eq!(lab.counter("tcp_rst_sent"), 0, "the default answers with ICMP, as IPVS");
    // With a real server added, the same client is served.
    lab.gwctl_ok(&["-a", "-t", &vip, "-r", &format!("{}:80", FULLNAT.servers[0].1), "-b"]);
    lab.gwctl_ok(&["--add-laddr", "-z", FULLNAT.laddr.unwrap(), "-t", &vip]);
    assert_eq!(lab.http().server, "rs1");
}

#[test]
fn no_service_reply_rst_refuses_curl_with_a_rst() {
    let lab = Lab::up_tweaked(&FULLNAT, "ff-rst", |c| format!("{c}\n[ipvs]\nno_service_reply = \"rst\"\n"));
    let vip = format!("{VIP}:{VPORT}");
    lab.gwctl_ok(&["-A", "-t", &vip, "-s", "rr"]);
    let (code, err) = curl(&lab, &format!("http://{vip}/"));
    assert_eq!(code, CURL_COULDNT_CONNECT, "curl: {err}\n{}", lab.diag());
    assert!(lab.counter("tcp_rst_sent") >= 1, "{}", lab.diag());
    assert_eq!(lab.counter("icmp_port_unreach_sent"), 0);
}

#[test]
fn an_ipv6_service_without_real_servers_refuses_tcp_and_udp_clients_at_once() {
    let lab = Lab::up(&FULLNAT6, "ff-nodest6");
    let vip = format!("[{VIP6}]:{VPORT}");
    lab.gwctl_ok(&["-A", "-t", &vip, "-s", "rr"]);
    lab.gwctl_ok(&["-A", "-u", &vip, "-s", "rr"]);
    let (code, err) = curl(&lab, &format!("http://{vip}/"));
    assert_eq!(code, CURL_COULDNT_CONNECT, "curl: {err}\n{}", lab.diag());
    assert!(lab.counter("drop_no_dest") >= 1);
    let (code, err) = curl(&lab, &format!("http://[{VIP6}]:81/"));
    assert_eq!(code, CURL_COULDNT_CONNECT, "curl: {err}\n{}", lab.diag());
    assert!(lab.counter("drop_no_service") >= 1);
    let out = lab.python("client", "udp_refused.py", &[VIP6, &VPORT.to_string()]);
    assert_eq!(out.trim(), "refused", "{}", lab.diag());
    assert!(lab.counter("icmp_port_unreach_sent") >= 3, "{}", lab.diag());
    // The service again with its real servers: the same client is served.
    lab.gwctl_ok(&["-D", "-t", &vip]);
    lab.add_service("-t");
    assert_eq!(lab.http().remote, format!("{VIP6}:80"));
}

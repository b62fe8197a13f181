//! Spoofed packets from the wrong segment (issue 10), FULLNAT lab: a host
//! on the client segment sends a RST and a datagram "from" the real server
//! to the local address and port of a held connection (the right ports,
//! read from the real server, and a sweep of guessed ones). The strict
//! reverse-path check drops them all (`drop_reverse_path`); a blind RST
//! from the real server's own segment is out of the window
//! (`drop_tcp_rst_out_of_window`); the held connection completes. The
//! same over IPv6 in the dual-stack FULLNAT66 lab (issue 17).

mod common;

use std::io::BufRead;

use common::*;

/// The client-side peers (LIP:lport) of the real servers' established
/// connections on port 80, from `ss` in their namespaces: (rs address,
/// LIP, lport), an IPv6 LIP without its brackets.
fn server_peers(lab: &Lab, topo: &'static Topology) -> Vec<(String, String, String)> {
    let mut peers = vec![];
    for (name, rip) in topo.servers {
        let o = lab.exec(name, &["ss", "-Htn", "state", "established", "( sport = :80 )"]);
        for line in text(&o).lines() {
            if let Some((lip, lport)) = line.split_whitespace().last().and_then(|p| p.rsplit_once(':')) {
                let lip = lip.trim_start_matches('[').trim_end_matches(']');
                peers.push((rip.to_string(), lip.to_string(), lport.to_string()));
            }
        }
    }
    peers
}

#[test]
fn a_spoofed_rst_or_datagram_from_the_client_side_neither_kills_nor_reaches() {
    spoofed_from_the_client_side(&FULLNAT, "spoof", "198.18.1.0/24", "198.18.0.1");
}

/// The IPv6 twin (issue 17): FULLNAT66, the spoofed packets IPv6 from
/// the real server's IPv6 address to the IPv6 local address.
#[test]
fn a_spoofed_ipv6_rst_or_datagram_from_the_client_side_neither_kills_nor_reaches() {
    spoofed_from_the_client_side(&FULLNAT6, "spoof6", "2001:db8:1::/64", "2001:db8::1");
}

/// A held connection to `topo`'s VIP; from the client's namespace a RST,
/// a FIN and a datagram as its real server to its LIP:lport and a sweep of
/// guessed local ports (the attacker routes `inside` via the gateway's
/// client-side address `gw`), all dropped as `drop_reverse_path`; a blind
/// RST from the real server's own segment is out of the window; the held
/// connection completes.
fn spoofed_from_the_client_side(topo: &'static Topology, prefix: &str, inside: &str, gw: &str) {
    let lab = Lab::up(topo, prefix);
    lab.add_service("-t");
    lab.add_service("-u");
    lab.http();
    let go = std::env::temp_dir().join(format!("gwe-{prefix}-go"));
    let _ = std::fs::remove_file(&go);
    let (mut held, mut held_out) =
        lab.spawn_python("client", "held_get.py", &[topo.vip, "80", go.to_str().unwrap()]);
    let mut line = String::new();
    held_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "open");
    let peers = server_peers(&lab, topo);
    assert_eq!(peers.len(), 1, "one held connection: {peers:?}\n{}", lab.diag());
    let (rip, lip, lport) = (&peers[0].0, peers[0].1.as_str(), peers[0].2.as_str());
    assert_eq!(Some(lip), topo.laddr);
    // The attacker routes the inside subnet through the gateway.
    lab.exec("client", &["ip", "route", "replace", inside, "via", gw]);
    let before = lab.counter("drop_reverse_path");
    // The right ports: a RST, a FIN and a datagram, as the real server.
    lab.python("client", "l4_inject.py", &["tcp", rip, "80", lip, lport, "3", "R"]);
    lab.python("client", "l4_inject.py", &["tcp", rip, "80", lip, lport, "1", "FA"]);
    lab.python("client", "l4_inject.py", &["udp", rip, "80", lip, lport, "1"]);
    // Guessed ports: the first local ports of the range.
    for guess in 1024..1034 {
        lab.python("client", "l4_inject.py", &["tcp", rip, "80", lip, &guess.to_string(), "1", "R"]);
    }
    // Counted (af_packet may lose a frame on a busy machine: at least
    // most). The client's kernel holds them until it has resolved the
    // gateway's address (the route's next hop, not asked for before), and
    // releases them together; an IPv6 resolution here at times took about a
    // second, after the frames were sent: wait for them to be counted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while lab.counter("drop_reverse_path") - before < 10 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let dropped = lab.counter("drop_reverse_path") - before;
    assert!(dropped >= 10, "spoofed frames counted: {dropped}\n{}", lab.diag());
    assert!(lab.counter("drop_reverse_path") <= before + 15);
    // From the right side (the real server's segment), a blind RST with the
    // right ports but a sequence number out of the window (the script's
    // fixed 1000 against a random ISN).
    let rs_ns = topo.servers.iter().find(|(_, a)| a == rip).unwrap().0;
    let rst_before = lab.counter("drop_tcp_rst_out_of_window");
    lab.python(rs_ns, "l4_inject.py", &["tcp", rip, "80", lip, lport, "3", "R"]);
    assert!(lab.counter("drop_tcp_rst_out_of_window") > rst_before, "{}", lab.diag());
    // The held connection completes.
    std::fs::write(&go, b"go").unwrap();
    line.clear();
    held_out.read_line(&mut line).unwrap();
    assert!(held.wait().unwrap().success());
    assert_eq!(line.trim(), "HTTP/1.0 200 OK", "the held connection was killed:\n{}", lab.diag());
    let _ = std::fs::remove_file(&go);
    // And the gateway still serves new connections.
    lab.http();
}

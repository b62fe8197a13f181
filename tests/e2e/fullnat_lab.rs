//! End-to-end FULLNAT lab: gatewayd on DPDK `net_af_packet` ports inside a
//! network namespace, a client namespace, and two real servers running a
//! real HTTP server and a UDP echo (tests/lab/rs_server.py). All traffic
//! stays in namespaces the test creates (198.18.0.0/15); the [`Lab`] guard
//! removes them and stops gatewayd also when a test fails.
//!
//! Needs root, the Debian DPDK packages, and built `gatewayd`/`gwctl`
//! binaries (found through GATEWAYD_BIN/GWCTL_BIN, else target/release or
//! target/debug). `./test.sh` takes care of all of that.

mod common;

use std::process::Command;

use common::{binary, run, script, text, Lab, FULLNAT, VIP};

const LIP: &str = "198.18.1.10";
const RS: [&str; 2] = ["198.18.1.2", "198.18.1.3"];

#[test]
fn fullnat_tcp_and_udp_reach_both_real_servers_which_see_the_local_address() {
    let lab = Lab::up(&FULLNAT, "both");
    lab.add_service("-t");
    lab.add_service("-u");
    let listing = lab.gwctl_ok(&["-L", "-n"]);
    assert!(listing.starts_with("IP Virtual Server version 1.2.1 (size=65536)\n"), "{listing}");
    assert!(listing.contains("TCP  198.18.0.100:80 rr\n"), "{listing}");
    assert!(listing.contains("  -> 198.18.1.2:80                FullNat 1      0          "), "{listing}");

    let mut by_server = [0; 2];
    for _ in 0..6 {
        let (body, remote) = lab.http_get();
        // The client talks to the VIP only.
        assert_eq!(remote, format!("{VIP}:80"));
        // "rsN LIP:lport": the real server saw the local address, not the client.
        let (server, peer) = body.split_once(' ').unwrap();
        assert!(peer.starts_with(&format!("{LIP}:")), "server saw {peer}");
        by_server[if server == "rs1" { 0 } else { 1 }] += 1;
    }
    assert_eq!(by_server, [3, 3], "rr alternates between the two real servers");

    let lines = lab.udp(6);
    assert_eq!(lines.len(), 6);
    for l in &lines {
        assert!(l.ends_with(&format!("from {VIP}:80")), "UDP reply not from the VIP: {l}");
        assert!(l.contains(&format!(" {LIP}:")), "UDP server did not see the LIP: {l}");
    }
    assert_eq!(lines.iter().filter(|l| l.starts_with("rs1 ")).count(), 3);

    let stats = lab.gwctl_ok(&["-L", "-n", "--stats"]);
    let conns = |proto: &str| -> u64 {
        let line = stats.lines().find(|l| l.starts_with(&format!("{proto}  {VIP}:80"))).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    assert_eq!(conns("TCP"), 6, "{stats}");
    assert_eq!(conns("UDP"), 6, "{stats}");
    assert_eq!(lab.counter("sessions_created"), 12);
}

#[test]
fn deleting_a_real_server_sends_new_connections_only_to_the_other() {
    let lab = Lab::up(&FULLNAT, "del");
    lab.add_service("-t");
    let first: Vec<String> = (0..2).map(|_| lab.http_get().0).collect();
    assert!(first.iter().any(|b| b.starts_with("rs1 ")) && first.iter().any(|b| b.starts_with("rs2 ")));
    lab.gwctl_ok(&["-d", "-t", &format!("{VIP}:80"), "-r", &format!("{}:80", RS[0])]);
    for _ in 0..4 {
        let (body, _) = lab.http_get();
        assert!(body.starts_with("rs2 "), "{body}");
    }
    let listing = lab.gwctl_ok(&["-L", "-n"]);
    assert!(!listing.contains(RS[0]), "{listing}");
}

#[test]
fn malformed_frames_are_counted_and_dropped_while_traffic_keeps_flowing() {
    let lab = Lab::up(&FULLNAT, "bad");
    lab.add_service("-t");
    lab.http_get();
    // The client learnt the gateway's MAC for the VIP through ARP.
    let neigh = text(&run(Command::new("ip").args(["-n", &lab.ns("client"), "neigh", "show", VIP])));
    let mac =
        neigh.split_whitespace().skip_while(|w| *w != "lladdr").nth(1).expect("VIP in the neighbour table");
    let before = lab.counter("drop_ipv4_malformed");
    let o = run(Command::new("ip")
        .args(["netns", "exec", &lab.ns("client"), "python3"])
        .arg(script("inject.py"))
        .args(["c0", mac, "198.18.0.2", VIP, "5"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for _ in 0..4 {
        let (body, _) = lab.http_get();
        assert!(body.starts_with("rs"), "{body}");
    }
    // IHL 4 is malformed, "total length beyond the frame" truncated (what
    // a kernel-reassembled datagram cut to the af_packet ring frame looks
    // like); the others fail the header checksum. Five rounds of four
    // frames each.
    assert_eq!(lab.counter("drop_ipv4_malformed") - before, 5);
    assert_eq!(lab.counter("drop_ipv4_truncated"), 5);
    assert_eq!(lab.counter("drop_ipv4_bad_checksum"), 10);
    let up = lab.gwctl(&["-L", "-n"]);
    assert!(up.status.success(), "gatewayd still answers");
}

#[test]
fn gwctl_errors_read_like_ipvsadm_and_exit_non_zero() {
    let lab = Lab::up(&FULLNAT, "err");
    lab.add_service("-t");
    let dup = lab.gwctl(&["-A", "-t", &format!("{VIP}:80")]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("Service already exists"));
    let missing = lab.gwctl(&["-D", "-t", &format!("{VIP}:81")]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No such service"));
    let bad = lab.gwctl(&["-A", "-t", "300.1.1.1:80"]);
    assert!(!bad.status.success());
    let down = run(Command::new(binary("gwctl", "GWCTL_BIN")).args([
        "--socket",
        "/run/gwe-nobody.sock",
        "-L",
        "-n",
    ]));
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("/run/gwe-nobody.sock"));
    // The socket is private to root.
    let mode = std::fs::metadata(&lab.socket)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.unwrap(), 0o600);
}

//! Fragments with real kernels on both ends (issue 11): UDP datagrams of
//! 8 KB and 60 KB, which the client's kernel fragments to the 1500-byte MTU,
//! are echoed byte for byte by a real UDP server (tests/lab/udp_echo.py) on
//! the real servers, through FULLNAT, NAT, DR and TUN. The gateway
//! reassembles them, runs them through the session and sends them on as
//! fragments; in FULLNAT and NAT the echo, fragmented by the real server's
//! kernel, comes back through the gateway the same way. TUN's outer packets
//! are fragmented, and the real server's kernel reassembles them before
//! tests/lab/ipip_decap.py takes them from its raw socket. TUN also carries
//! a DF-clear 1,500-byte datagram, whose encapsulation (1,520 bytes)
//! exceeds the MTU: sent as two outer fragments, as IPVS. Last, a flood of
//! never-completed fragments with random IDs while real echoes run: every
//! echo succeeds, the flood shows as `drop_frag_evicted`, and the
//! reassembly table never held more than its configured slots
//! (`frag_datagrams_peak` <= `frag_capacity`).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{script, Lab, Topology, CLIENT, DR, FULLNAT_2W, NAT, TUN, VIP};

/// The echo service's port (the real servers' port 80 runs rs_server.py).
const ECHO: &str = "9000";

/// Starts the echo server on both real servers and the UDP service
/// VIP:9000 to them in the lab's mode.
fn echo_service(lab: &Lab) {
    for (name, rip) in lab.topo.servers {
        let bind = lab.topo.server_bind.unwrap_or(rip);
        Command::new("ip")
            .args(["netns", "exec", &lab.ns(name), "python3"])
            .arg(script("udp_echo.py"))
            .args(["serve", bind, ECHO])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the echo server");
    }
    // lab.sh down kills what runs in the namespaces; give the servers a moment to bind.
    std::thread::sleep(Duration::from_millis(500));
    let vip = format!("{VIP}:{ECHO}");
    lab.gwctl_ok(&["-A", "-u", &vip, "-s", "rr"]);
    for (_, rip) in lab.topo.servers {
        let rs = match lab.topo.forward {
            "-g" | "-i" => rip.to_string(),
            _ => format!("{rip}:{ECHO}"),
        };
        lab.gwctl_ok(&["-a", "-u", &vip, "-r", &rs, lab.topo.forward, "-w", "1"]);
    }
    if let Some(lip) = lab.topo.laddr {
        lab.gwctl_ok(&["--add-laddr", "-z", lip, "-u", &vip]);
    }
}

/// Echoes datagrams of `sizes` bytes from the client (DF clear): every
/// one comes back identical.
fn echo(lab: &Lab, sizes: &[&str]) -> String {
    let mut args = vec!["send", VIP, ECHO, "nodf"];
    args.extend_from_slice(sizes);
    let out = lab.python("client", "udp_echo.py", &args);
    assert_eq!(out.lines().filter(|l| l.starts_with("ok ")).count(), sizes.len(), "{out}");
    out
}

/// 8 KB and 60 KB echoes, four each (both real servers, round robin).
fn big_echoes(topo: &'static Topology, name: &str) -> Lab {
    let lab = Lab::up(topo, name);
    echo_service(&lab);
    echo(&lab, &["8000", "60000", "8000", "60000", "8000", "60000", "8000", "60000"]);
    let stats = lab.stats();
    let udp = stats.service("UDP");
    assert_eq!(udp.conns, 8, "one session per datagram's client port? {}", stats.text);
    assert_eq!(udp.inpkts, 8, "each datagram counted once, reassembled:\n{}", stats.text);
    // The gateway reassembled each request (8 KB: 6 fragments, 60 KB: 42).
    assert!(lab.counter("frag_reassembled") >= 8);
    assert!(lab.counter("frag_received") >= 4 * (6 + 42));
    assert!(lab.counter("frag_sent") >= 4 * (6 + 42));
    for bad in ["drop_ipv4_malformed", "drop_fragment", "drop_frag_malformed", "drop_frag_overlap"] {
        assert_eq!(lab.counter(bad), 0, "{bad}");
    }
    lab
}

#[test]
fn fullnat_with_two_workers_echoes_8k_and_60k_datagrams_both_ways() {
    let lab = big_echoes(&FULLNAT_2W, "fr-fnat");
    let udp = lab.stats().service("UDP");
    assert_eq!(udp.outpkts, 8, "the echoes came back through the gateway, reassembled");
    assert!(lab.counter("frag_reassembled") >= 16, "requests and echoes");
}

#[test]
fn nat_echoes_8k_and_60k_datagrams_both_ways() {
    let lab = big_echoes(&NAT, "fr-nat");
    assert_eq!(lab.stats().service("UDP").outpkts, 8);
    assert!(lab.counter("frag_reassembled") >= 16, "requests and echoes");
}

#[test]
fn dr_echoes_8k_and_60k_datagrams() {
    let lab = big_echoes(&DR, "fr-dr");
    assert_eq!(lab.stats().service("UDP").outpkts, 0, "DR: echoes bypass the gateway");
}

#[test]
fn tun_echoes_8k_and_60k_datagrams_and_fragments_a_df_clear_1500_byte_packet() {
    let lab = big_echoes(&TUN, "fr-tun");
    assert_eq!(lab.stats().service("UDP").outpkts, 0, "TUN: echoes bypass the gateway");
    // 1,472 bytes of UDP: a 1,500-byte packet, 1,520 with the outer header.
    let sent = lab.counter("frag_sent");
    echo(&lab, &["1472"]);
    assert_eq!(lab.counter("frag_sent") - sent, 2, "two outer fragments");
    assert_eq!(lab.counter("drop_tunnel_too_big"), 0);
}

#[test]
fn a_fragment_flood_is_counted_and_bounded_while_real_echoes_succeed() {
    let lab = Lab::up_tweaked(&NAT, "fr-flood", |c| format!("{c}\n[fragments]\ndatagrams = 32\ntimeout_s = 30\n"));
    echo_service(&lab);
    assert_eq!(lab.counter("frag_capacity"), 32);
    let flood = Command::new("ip")
        .args(["netns", "exec", &lab.ns("client"), "python3"])
        .arg(script("frag_flood.py"))
        .args([CLIENT, VIP, "17", "60000"])
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the flood");
    let mut flood = flood;
    let mut echoes = 0;
    while flood.try_wait().unwrap().is_none() {
        echo(&lab, &["8000", "30000"]);
        echoes += 2;
    }
    echo(&lab, &["8000", "60000"]);
    assert!(flood.wait().unwrap().success());
    assert!(echoes > 0, "the flood ended before any echo ran alongside it");
    let evicted = lab.counter("drop_frag_evicted");
    assert!(evicted >= 60000 - 32 - 64, "the flood shows as evictions: {evicted}");
    let peak = lab.counter("frag_datagrams_peak");
    assert!(peak <= 32 && peak > 0, "the table held {peak} datagrams at most, of 32");
    assert!(lab.counter("frag_datagrams") <= 32);
    assert_eq!(lab.counter("frag_table_bytes"), gw_frag_bytes(32));
}

/// Bytes a table of `n` slots allocates (gw_core::frag::FragConfig::memory_bytes).
fn gw_frag_bytes(n: u64) -> u64 {
    // (n + 1) buffers of 20 + 14 + 60 + 65,535 bytes, n bitmaps of 129 words.
    (n + 1) * 65_629 + n * 129 * 8
}

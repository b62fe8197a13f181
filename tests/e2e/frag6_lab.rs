//! IPv6 fragments through a service with real kernels on both ends
//! (issue 17): UDP datagrams of 4, 8 and 60 KB, which the client's kernel
//! fragments to the 1500-byte MTU (IPv6 routers never fragment: the sender
//! does, RFC 8200 §4.5), are echoed byte for byte by a real UDP server
//! (tests/lab/udp_echo.py on `::`) through FULLNAT66. gatewayd reassembles
//! them (DPDK's af_packet driver asks the kernel to defragment IPv4 only,
//! so IPv6 fragments reach gatewayd as sent), runs each through its
//! session and sends it on as fragments no larger than the largest it
//! received; the echo, fragmented by the real server's kernel, comes back
//! the same way. Then scapy (an implementation independent of gatewayd's)
//! sends an overlap (RFC 5722) and a first fragment without the whole TCP
//! header (RFC 7112): both are counted drops, and echoes still pass. With
//! two workers, the fragments of a datagram meet on the worker their
//! addresses and identification name, which hands the reassembled
//! datagram to its session's owner when that is the other worker.

mod common;

use common::{Lab, CLIENT6, FULLNAT6, FULLNAT6_2W, VIP6};

const ECHO: &str = "9000";
const ECHO_PORT: u16 = 9000;

/// Echoes datagrams of `sizes` bytes from the client over IPv6 (the
/// kernel fragments them): every one comes back identical.
fn echo(lab: &Lab, sizes: &[&str]) {
    let mut args = vec!["send", VIP6, ECHO, "nodf"];
    args.extend_from_slice(sizes);
    let out = lab.python("client", "udp_echo.py", &args);
    assert_eq!(out.lines().filter(|l| l.starts_with("ok ")).count(), sizes.len(), "{out}");
}

#[test]
fn fullnat66_reassembles_4k_8k_and_60k_datagrams_both_ways_and_drops_hostile_fragments() {
    let mut lab = Lab::up(&FULLNAT6, "h17f-fr6");
    lab.udp_echo_service(ECHO_PORT);
    echo(&lab, &["4000", "8000", "60000", "4000"]);
    let stats = lab.stats();
    let udp = stats.service_at("UDP", ECHO_PORT);
    assert_eq!(udp.conns, 1, "the client's one socket, one session:\n{}", stats.text);
    assert_eq!((udp.inpkts, udp.outpkts), (4, 4), "each datagram counted once, whole:\n{}", stats.text);
    // 4000: 3 fragments of the 1500-byte MTU, 8000: 6, 60000: 42; both ways.
    let frags = 2 * (3 + 6 + 42 + 3);
    assert!(lab.counter("frag_received") >= frags, "{}", lab.counter("frag_received"));
    assert!(lab.counter("frag_reassembled") >= 8, "requests and echoes");
    assert!(lab.counter("frag_sent") >= frags, "requests and echoes left as fragments");
    assert_eq!(lab.counter("frag_datagrams"), 0, "nothing left half done");
    for bad in [
        "drop_ipv6_malformed",
        "drop_frag_malformed",
        "drop_frag_overlap",
        "drop_frag_header_chain",
        "drop_cannot_fragment",
        "drop_no_mbuf",
    ] {
        assert_eq!(lab.counter(bad), 0, "{bad}");
    }

    let gw_mac = lab.mac("gw", "gw0");
    let sent = lab.exec(
        "client",
        &[
            "/usr/bin/python3",
            common::script("frag6_attack.py").to_str().unwrap(),
            "c0",
            &gw_mac,
            CLIENT6,
            VIP6,
            ECHO,
        ],
    );
    assert!(sent.status.success(), "{}", common::text(&sent));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while lab.counter("drop_frag_header_chain") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(lab.counter("drop_frag_overlap"), 1, "the overlap drops its datagram");
    assert_eq!(lab.counter("drop_frag_header_chain"), 1, "the tiny first fragment drops its datagram");
    assert_eq!(
        lab.stats().service_at("UDP", ECHO_PORT).inpkts,
        4,
        "nothing of the attack reached the server"
    );
    echo(&lab, &["8000"]);
    assert_eq!(lab.stats().service_at("UDP", ECHO_PORT).outpkts, 5);
}

#[test]
fn fullnat66_with_two_workers_echoes_fragmented_datagrams_from_many_sockets() {
    let mut lab = Lab::up(&FULLNAT6_2W, "h17f-fr6w");
    lab.udp_echo_service(ECHO_PORT);
    // One socket per call: sessions (and their owners) differ.
    for _ in 0..6 {
        echo(&lab, &["4000", "20000"]);
    }
    let stats = lab.stats();
    let udp = stats.service_at("UDP", ECHO_PORT);
    assert_eq!(udp.conns, 6, "{}", stats.text);
    assert_eq!((udp.inpkts, udp.outpkts), (12, 12), "{}", stats.text);
    let per_worker = lab.worker_counters("frag_reassembled");
    assert!(per_worker.iter().sum::<u64>() >= 24, "requests and echoes: {per_worker:?}");
    // 24 datagrams with random identifications: fragments moved between
    // the workers (2^-24 odds that none did).
    assert!(lab.counter("redirect_out_packets") > 0, "no fragment changed worker");
    for bad in ["drop_frag_malformed", "drop_frag_overlap", "drop_cannot_fragment", "drop_redirect_full"] {
        assert_eq!(lab.counter(bad), 0, "{bad}");
    }
    assert_eq!(lab.counter("frag_datagrams"), 0, "nothing left half done");
}

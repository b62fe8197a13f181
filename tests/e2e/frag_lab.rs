//! Fragments with real kernels on both ends (issue 11): UDP datagrams of
//! 8 KB and 60 KB, which the client's kernel fragments to the 1500-byte MTU,
//! are echoed byte for byte by a real UDP server (tests/lab/udp_echo.py) on
//! the real servers, through FULLNAT, NAT, DR and TUN. The gateway
//! reassembles them, runs them through the session and sends them on as
//! fragments; in FULLNAT and NAT the echo, fragmented by the real server's
//! kernel, comes back through the gateway the same way.
//!
//! Which reassembler: DPDK 22.11's af_packet driver joins its sockets to a
//! PACKET_FANOUT group with PACKET_FANOUT_FLAG_DEFRAG, so on af_packet
//! ports the gateway namespace's kernel reassembles before gatewayd sees a
//! frame (a datagram larger than the ring frame would arrive cut:
//! `drop_ipv4_truncated`; `workers.mbuf_size` sizes the frames). These
//! labs therefore run on DPDK's pcap driver (libpcap's socket is in no
//! fanout group: the fragments arrive as sent and gatewayd's own
//! reassembler works), except the two-worker FULLNAT lab, which keeps
//! af_packet (pcap has one queue per interface) with frames for 60 KB and
//! shows the output fragmentation and the two workers. TUN's outer packets
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

use common::{script, Lab, Topology, CLIENT, DR, FULLNAT, FULLNAT_2W, NAT, TUN, VIP};

/// The echo service's port (the real servers' port 80 runs rs_server.py).
const ECHO: &str = "9000";
const ECHO_PORT: u16 = 9000;

/// Echoes datagrams of `sizes` bytes from the client (DF clear): every
/// one comes back identical.
fn echo(lab: &Lab, sizes: &[&str]) -> String {
    let mut args = vec!["send", VIP, ECHO, "nodf"];
    args.extend_from_slice(sizes);
    let out = lab.python("client", "udp_echo.py", &args);
    assert_eq!(out.lines().filter(|l| l.starts_with("ok ")).count(), sizes.len(), "{out}");
    out
}

/// gatewayd's configuration for large datagrams on af_packet ports: the
/// driver's sockets make the kernel reassemble fragments
/// (PACKET_FANOUT_FLAG_DEFRAG), so the rings and mbufs must hold a 60 KB
/// datagram whole (`workers.mbuf_size`, which sizes the ring frames); fewer
/// mbufs and ring frames keep the memory small.
fn big_frames(conf: String) -> String {
    conf.replace("mbufs = 8191", "mbufs = 1024\nmbuf_size = 60100")
        .replace("iface=gw0", "iface=gw0,framecnt=64")
        .replace("iface=gw1", "iface=gw1,framecnt=64")
}

/// gatewayd's configuration with DPDK's pcap driver on the veths instead
/// of af_packet: libpcap's socket joins no fanout group, so the fragments
/// reach gatewayd as they are on the wire and gatewayd reassembles them.
fn pcap_ports(conf: String) -> String {
    conf.replace("net_af_packet0,iface=gw0", "net_pcap0,iface=gw0")
        .replace("net_af_packet1,iface=gw1", "net_pcap1,iface=gw1")
}

/// 8 KB and 60 KB echoes, four each, with af_packet ports (the kernel
/// reassembles, gatewayd fragments on output) or pcap ports (gatewayd
/// reassembles and fragments).
fn big_echoes(topo: &'static Topology, name: &str, pcap: bool) -> Lab {
    let mut lab =
        if pcap { Lab::up_tweaked(topo, name, pcap_ports) } else { Lab::up_tweaked(topo, name, big_frames) };
    lab.udp_echo_service(ECHO_PORT);
    echo(&lab, &["8000", "60000", "8000", "60000", "8000", "60000", "8000", "60000"]);
    let stats = lab.stats();
    let udp = stats.service_at("UDP", ECHO_PORT);
    assert_eq!(udp.conns, 1, "the client's one socket, one session:\n{}", stats.text);
    assert_eq!(udp.inpkts, 8, "each datagram counted once, whole:\n{}", stats.text);
    assert_eq!(udp.inbytes, 4 * (8028 + 60028), "{}", stats.text);
    // Each request left as fragments of the 1500-byte MTU (8 KB: 6, 60 KB: 41).
    assert!(lab.counter("frag_sent") >= 4 * (6 + 41));
    for bad in [
        "drop_ipv4_malformed",
        "drop_ipv4_truncated",
        "drop_fragment",
        "drop_frag_malformed",
        "drop_frag_overlap",
        "drop_cannot_fragment",
        "drop_no_mbuf",
    ] {
        assert_eq!(lab.counter(bad), 0, "{bad}");
    }
    if pcap {
        // gatewayd reassembled every request from the client's fragments.
        assert!(lab.counter("frag_reassembled") >= 8);
        assert!(lab.counter("frag_received") >= 4 * (6 + 41));
        assert_eq!(lab.counter("frag_datagrams"), 0, "nothing left half done");
    }
    lab
}

#[test]
fn fullnat_with_two_workers_echoes_8k_and_60k_datagrams_both_ways() {
    let lab = big_echoes(&FULLNAT_2W, "fr-fnat", false);
    let udp = lab.stats().service_at("UDP", ECHO_PORT);
    assert_eq!(udp.outpkts, 8, "the echoes came back through the gateway, whole");
    assert!(lab.counter("frag_sent") >= 8 * (6 + 41), "requests and echoes left as fragments");
}

#[test]
fn fullnat_reassembles_8k_and_60k_datagrams_both_ways() {
    let lab = big_echoes(&FULLNAT, "fr-fnatp", true);
    assert_eq!(lab.stats().service_at("UDP", ECHO_PORT).outpkts, 8);
    assert!(lab.counter("frag_reassembled") >= 16, "requests and echoes");
    assert!(lab.counter("frag_sent") >= 8 * (6 + 41), "requests and echoes left as fragments");
}

#[test]
fn nat_reassembles_8k_and_60k_datagrams_both_ways() {
    let lab = big_echoes(&NAT, "fr-nat", true);
    assert_eq!(lab.stats().service_at("UDP", ECHO_PORT).outpkts, 8);
    assert!(lab.counter("frag_reassembled") >= 16, "requests and echoes");
    assert!(lab.counter("frag_sent") >= 8 * (6 + 41), "requests and echoes left as fragments");
}

#[test]
fn dr_reassembles_8k_and_60k_datagrams() {
    let lab = big_echoes(&DR, "fr-dr", true);
    assert_eq!(lab.stats().service_at("UDP", ECHO_PORT).outpkts, 0, "DR: echoes bypass the gateway");
}

#[test]
fn tun_reassembles_8k_and_60k_datagrams_and_fragments_a_df_clear_1500_byte_packet() {
    let lab = big_echoes(&TUN, "fr-tun", true);
    assert_eq!(lab.stats().service_at("UDP", ECHO_PORT).outpkts, 0, "TUN: echoes bypass the gateway");
    // 1,472 bytes of UDP: a 1,500-byte packet, 1,520 with the outer header.
    let sent = lab.counter("frag_sent");
    echo(&lab, &["1472"]);
    assert_eq!(lab.counter("frag_sent") - sent, 2, "two outer fragments");
    assert_eq!(lab.counter("drop_tunnel_too_big"), 0);
}

#[test]
fn a_fragment_flood_is_counted_and_bounded_while_real_echoes_succeed() {
    let mut lab = Lab::up_tweaked(&NAT, "fr-flood", |c| {
        format!("{}\n[fragments]\ndatagrams = 32\ntimeout_s = 30\n", pcap_ports(c))
    });
    lab.udp_echo_service(ECHO_PORT);
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
    let mut retried = 0;
    while flood.try_wait().unwrap().is_none() {
        let out = echo(&lab, &["8000", "30000"]);
        // "ok SIZE TRIES": a datagram evicted by the flood before its last
        // fragment came is sent again by the client (at most 3 tries).
        retried += out.lines().filter(|l| !l.ends_with(" 1")).count();
        echoes += 2;
    }
    echo(&lab, &["8000", "60000"]);
    eprintln!("{echoes} echoes during the flood, {retried} needed a second try");
    assert!(flood.wait().unwrap().success());
    assert!(echoes > 0, "the flood ended before any echo ran alongside it");
    // Every flood fragment that reached gatewayd took a slot and was
    // evicted, or found its (random) identification already held: all but
    // the 32 still held, and the real echoes' own fragments (8,000 and
    // 30,000 bytes are 6 and 21 fragments, 60,000 are 41; requests and
    // echoes; at most three tries each).
    let evicted = lab.counter("drop_frag_evicted");
    let duplicate = lab.counter("drop_frag_duplicate");
    let received = lab.counter("frag_received");
    let real = (echoes / 2 * (6 + 21) + (6 + 41)) * 2 * 3;
    assert!(received >= evicted, "received {received}, evicted {evicted}");
    assert!(
        evicted + duplicate + 32 + real >= received,
        "received {received}, evicted {evicted}, duplicate {duplicate}"
    );
    // The rest of the 60,000 did not reach gatewayd: pcap's ring missed
    // them under the flood (the port's imissed; half of them on a slow VM),
    // a few the kernel dropped before pcap saw them.
    let missed = lab.port_stat("outside", "imissed");
    eprintln!("received {received}, evicted {evicted}, duplicate {duplicate}, missed at the port {missed}");
    assert!(evicted >= 1_000, "the flood shows as evictions: {evicted}");
    assert!(evicted + missed >= 50_000, "evicted {evicted}, missed at the port {missed}");
    let peak = lab.counter("frag_datagrams_peak");
    assert!(peak <= 32 && peak > 0, "the table held {peak} datagrams at most, of 32");
    assert!(lab.counter("frag_datagrams") <= 32);
    assert_eq!(lab.counter("frag_table_bytes"), gw_frag_bytes(32));
}

/// Bytes a table of `n` slots allocates (gw_core::frag::FragConfig::memory_bytes).
fn gw_frag_bytes(n: u64) -> u64 {
    // (n + 1) buffers of 40 + 14 + 120 + 65,535 bytes (headroom for an IPv6
    // outer header, room for IPv6 headers), n bitmaps of 129 words.
    (n + 1) * 65_709 + n * 129 * 8
}

//! Path MTU discovery for IPv6 (issue 17): the client sits behind a real
//! Linux router whose link toward the client has MTU 1400 (tests/lab/lab.sh
//! up PREFIX dr-routed dual); the real servers share the gateway's segment.
//! A full-size answer (1500 bytes) reaches the router, which sends ICMPv6
//! Packet Too Big (MTU 1400) to the answer's source, the VIP, so it reaches
//! the gateway, which hands it to the session's real server:
//!
//! - DR: forwarded as it is, only the MACs changed;
//! - FULLNAT66: translated for the real server's side of the session
//!   (from the gateway, about the packet real server -> local address);
//! - NAT64 (IPv4 real servers): translated to ICMPv4 "fragmentation
//!   needed" with the MTU 20 bytes lower (RFC 7915 §5.2), about the IPv4
//!   packet real server -> IPv4 local address.
//!
//! The real server's kernel lowers its path MTU and TCP sends smaller
//! segments: a 4 MB download arrives intact (SHA-256 compared), and the
//! real server's route cache shows the MTU it learnt.

mod common;

use common::{Lab, Topology, DR6_ROUTED};

const MB: usize = 4 << 20;
const ROUTED_CLIENT6: &str = "2001:db8:4::2";

/// FULLNAT66 on the dr-routed wiring: one-armed, the local address on the
/// gateway's segment, replies to the client via the router.
const FULLNAT6_ROUTED: Topology = Topology {
    forward: "-b",
    forward_label: "FullNat",
    server_bind: None,
    laddr: Some("2001:db8::10"),
    ..DR6_ROUTED
};

/// NAT64 on the dr-routed wiring: the real servers' IPv4 addresses and an
/// IPv4 local address on the gateway's segment.
const NAT64_ROUTED: Topology = Topology {
    servers: [("rs1", "198.18.0.3"), ("rs2", "198.18.0.4")],
    laddr: Some("198.18.0.10"),
    ..FULLNAT6_ROUTED
};

/// The download through the narrow link arrives intact and the real server
/// that sent it learnt `mtu` toward `toward` (the client, or the local
/// address); returns that real server.
fn download(lab: &Lab, toward: &str, mtu: &str) -> String {
    lab.add_service("-t");
    let narrow = common::text(&lab.exec("router", &["cat", "/sys/class/net/rc/mtu"]));
    assert_eq!(narrow.trim(), "1400", "the router's link toward the client");
    let d = lab.download(MB, "30");
    assert_eq!((d.size, &d.received), (MB, &d.announced), "{d:?}");
    assert!(lab.snmp6("router", "Icmp6OutPktTooBigs") >= 1, "the router sent no Packet Too Big");
    let route = common::text(&lab.exec(&d.server, &["ip", "route", "get", toward]));
    assert!(route.contains(&format!("mtu {mtu}")), "{} has no path MTU {mtu}: {route}", d.server);
    d.server
}

#[test]
fn dr6_download_through_a_narrower_router_link_completes_by_packet_too_big() {
    let lab = Lab::up(&DR6_ROUTED, "h17l-pm-dr6");
    let rs = download(&lab, ROUTED_CLIENT6, "1400");
    assert!(lab.snmp6(&rs, "Icmp6InPktTooBigs") >= 1, "{rs} received no Packet Too Big");
    assert_eq!(lab.counter("fwd_out_packets"), 0, "replies bypass the gateway");
}

#[test]
fn fullnat66_download_through_a_narrower_router_link_completes_by_translated_packet_too_big() {
    let lab = Lab::up(&FULLNAT6_ROUTED, "h17l-pm-fn6");
    let rs = download(&lab, "2001:db8::10", "1400");
    assert!(lab.snmp6(&rs, "Icmp6InPktTooBigs") >= 1, "{rs} received no Packet Too Big");
}

#[test]
fn nat64_download_through_a_narrower_router_link_completes_by_frag_needed() {
    let lab = Lab::up(&NAT64_ROUTED, "h17l-pm-nat64");
    // 1400 on the IPv6 side is 1380 for IPv4 (40 - 20 bytes of header).
    let rs = download(&lab, "198.18.0.10", "1380");
    assert!(lab.snmp(&rs, "Icmp", "InDestUnreachs") >= 1, "{rs} received no fragmentation needed");
}

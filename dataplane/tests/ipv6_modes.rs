//! IPv6 services through a worker (issue 17): FULLNAT66, NAT66 and DR for
//! IPv6 configured through the control plane as gwctl would, frames built
//! and read by etherparse (checksums computed by etherparse), neighbours
//! learnt by the worker from their solicitations.
//!
//! All on port 0's prefix (2001:db8::/64): the real servers on link, the
//! client beyond the upstream router ([`ROUTER6`], the default route).

mod common;

use std::net::Ipv6Addr;

use common::v6::*;
use common::*;
use etherparse::{Ipv6Header, LinkSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_core::counters::Event;
use gw_proto::{DestSpec, ForwardMode, Protocol, Request};

fn tcp6(mac: [u8; 6], s: (Ipv6Addr, u16), d: (Ipv6Addr, u16), syn: bool, ack: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(mac, GW_OUT.0)
        .ipv6(s.0.octets(), d.0.octets(), 64)
        .tcp(s.1, d.1, 1000, 64000);
    let b = if syn { b.syn() } else { b };
    let b = if ack { b.ack(1) } else { b };
    let mut out = vec![];
    b.write(&mut out, if syn { &[] } else { b"data" }).unwrap();
    out
}

/// An address and port.
type End = (Ipv6Addr, u16);
/// (port, destination MAC, source, destination, hop limit).
type Sent = (u16, [u8; 6], End, End, u8);

/// What leaves, as etherparse reads it: (port, destination MAC, source,
/// destination, hop limit); the source MAC is the port's and the L4
/// checksum etherparse's.
fn read(sent: &[(u16, Vec<u8>)]) -> Sent {
    assert_eq!(sent.len(), 1, "one frame out");
    let (port, frame) = &sent[0];
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else { panic!("not Ethernet") };
    assert_eq!(eth.source(), port_mac(*port).0);
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
    let h: Ipv6Header = ip.header().to_header();
    let ports = match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            assert_eq!(t.checksum(), t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap());
            (t.source_port(), t.destination_port())
        }
        Some(TransportSlice::Udp(u)) => {
            assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap());
            (u.source_port(), u.destination_port())
        }
        other => panic!("not TCP/UDP: {other:?}"),
    };
    let (s, d) = (Ipv6Addr::from(h.source), Ipv6Addr::from(h.destination));
    (*port, eth.destination(), (s, ports.0), (d, ports.1), h.hop_limit)
}

#[test]
fn fullnat66_through_a_worker_both_ways() {
    for workers in [1, 2] {
        let mut lab = lab6(ForwardMode::FullNat, workers);
        let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, false));
        let (port, mac, (src, lport), dst, hops) = read(&out);
        assert_eq!((port, mac, src, dst, hops), (0, RS_MAC[0], LIP6, (RS6, 8080), 63));
        assert_eq!(u32::from(lport) % workers, 0, "worker 0's share of local ports");
        let out = lab.rx(0, tcp6(RS_MAC[0], (RS6, 8080), (LIP6, lport), true, true));
        assert_eq!(read(&out), (0, ROUTER_MAC, (VIP6, VPORT), (CLIENT6, 40000), 63));
        let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), false, true));
        assert_eq!(read(&out).3, (RS6, 8080));
        assert_eq!(lab.counters.event_count(Event::FwdIn), 2);
        assert_eq!(lab.counters.event_count(Event::FwdOut), 1);
        assert_eq!(lab.counters.event_count(Event::SessionsLive), 1);
    }
}

#[test]
fn the_listing_counts_ipv6_connections() {
    let mut lab = lab6(ForwardMode::FullNat, 1);
    for cport in [40000, 40001, 40002] {
        let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, cport), (VIP6, VPORT)));
        assert_eq!(read(&out).3, (RS6, 8080));
    }
    let gw_proto::Response::Services { services, .. } =
        lab.control.query(Request::List { service: Some(key6(Protocol::Udp)) })
    else {
        panic!("no listing")
    };
    assert_eq!(services[0].stats.conns, 3);
    assert_eq!(services[0].dests[0].stats.inpkts, 3);
}

#[test]
fn nat66_rewrites_the_destination_and_the_reply_source() {
    let mut lab = lab6(ForwardMode::Masq, 1);
    let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 5353), (VIP6, VPORT)));
    assert_eq!(read(&out), (0, RS_MAC[0], (CLIENT6, 5353), (RS6, 8080), 63));
    let out = lab.rx(0, udp6(RS_MAC[0], (RS6, 8080), (CLIENT6, 5353)));
    assert_eq!(read(&out), (0, ROUTER_MAC, (VIP6, VPORT), (CLIENT6, 5353), 63));
}

#[test]
fn dr6_sends_the_packet_unchanged_to_the_real_servers_mac() {
    let mut lab = lab6(ForwardMode::Route, 1);
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, false));
    assert_eq!(read(&out), (0, RS_MAC[0], (CLIENT6, 40000), (VIP6, VPORT), 64));
}

/// The gateway answers neighbour solicitations and echo requests for its
/// IPv6 VIP and local address (what a router or a real server asks before
/// sending to them), not for other addresses of the prefix.
#[test]
fn vips_and_local_addresses_answer_solicitations_and_echo() {
    let mut lab = lab6(ForwardMode::FullNat, 1);
    for target in [VIP6, LIP6] {
        let out = lab.rx(0, ns_for(RS_MAC[0], RS6, target));
        assert_eq!(out.len(), 1, "NS for {target}");
        let p = SlicedPacket::from_ethernet(&out[0].1).unwrap();
        let Some(TransportSlice::Icmpv6(icmp)) = p.transport else { panic!("not ICMPv6") };
        assert_eq!(icmp.type_u8(), 136, "a neighbour advertisement");
        assert_eq!(&icmp.payload()[..16], &target.octets(), "for {target}");
        let mut echo = vec![];
        PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0)
            .ipv6(CLIENT6.octets(), target.octets(), 64)
            .icmpv6_echo_request(7, 1)
            .write(&mut echo, b"ping")
            .unwrap();
        let out = lab.rx(0, echo);
        assert_eq!(out.len(), 1, "echo to {target}");
        let p = SlicedPacket::from_ethernet(&out[0].1).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
        assert_eq!((ip.header().source_addr(), ip.header().destination_addr()), (target, CLIENT6));
        let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6") };
        assert_eq!(icmp.type_u8(), 129, "an echo reply");
        assert!(icmp.is_checksum_valid(ip.header().source(), ip.header().destination()));
    }
    let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);
    assert!(lab.rx(0, ns_for(RS_MAC[0], RS6, other)).is_empty(), "not ours");
}

/// TUN for IPv6: the client's packet leaves inside an outer IPv6 header
/// (next header 41) from the port's address to the real server, at the
/// real server's MAC, the inner packet byte for byte as it came.
#[test]
fn tun6_wraps_the_packet_in_ipv6_to_the_real_server() {
    let mut lab = lab6(ForwardMode::Tunnel, 1);
    let syn = tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, false);
    let inner = syn[14..].to_vec();
    let out = lab.rx(0, syn);
    assert_eq!(out.len(), 1);
    let (port, frame) = &out[0];
    assert_eq!(*port, 0);
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else { panic!("not Ethernet") };
    assert_eq!((eth.source(), eth.destination()), (GW_OUT.0, RS_MAC[0]));
    let outer = Ipv6Header::from_slice(&frame[14..]).unwrap().0;
    assert_eq!((Ipv6Addr::from(outer.source), Ipv6Addr::from(outer.destination)), (GW_OUT_ADDR6, RS6));
    assert_eq!(outer.next_header, etherparse::IpNumber::IPV6);
    assert_eq!(usize::from(outer.payload_length), inner.len());
    assert_eq!(&frame[14 + 40..], &inner[..], "the inner packet as it came");
    assert_eq!(lab.counters.event_count(Event::FwdIn), 1);
}

/// FULLNAT66's bind starts at the local address a keyed hash of the flow
/// names (as IPv4's, `every_server_meets_every_local_address`): with a
/// round-robin scheduler over 2 real servers and 2 local addresses, each
/// (real server, local address) pair takes its share of new flows. A
/// per-service rotation of the local addresses moved in step with the
/// scheduler and paired each server with one address only.
#[test]
fn fullnat66_every_server_meets_every_local_address() {
    let mut lab = lab6_from(ForwardMode::FullNat, LabConfig { sessions: 4096, ..LabConfig::default() });
    let rs2 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x201);
    let lip2 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x61);
    let udp = key6(Protocol::Udp);
    lab.ok(Request::AddDest { service: udp, dest: DestSpec::new(rs2, 8080, ForwardMode::FullNat, 1) });
    lab.ok(Request::AddLaddr { service: udp, addr: lip2.into() });
    assert_eq!(lab.rx(0, ns(RS_MAC[1], rs2)).len(), 1, "the solicitation is answered");
    let mut pairs = std::collections::HashMap::new();
    for cport in 1000..1400 {
        let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, cport), (VIP6, VPORT)));
        let (_, _, (src, _), (dst, _), _) = read(&out);
        *pairs.entry((dst, src)).or_insert(0) += 1;
    }
    for rs in [RS6, rs2] {
        for lip in [LIP6, lip2] {
            let n = pairs.get(&(rs, lip)).copied().unwrap_or(0);
            // 100 expected of 400; a binomial spread stays far above 50.
            assert!(n > 50, "{rs} with {lip}: {n} of 400 flows ({pairs:?})");
        }
    }
}

/// One-packet scheduling (`-o`) on an IPv6 UDP service, as IPv4's
/// (`persistence::one_packet_scheduling_schedules_every_datagram`): every
/// datagram of one client address and port is scheduled anew, so round
/// robin over two real servers alternates, in each mode; each datagram
/// ends the last one's session, and a DR session ends with its datagram
/// (its answer bypasses the gateway; IPVS keeps none). TCP services are
/// not affected.
#[test]
fn one_packet_scheduling_schedules_every_ipv6_datagram() {
    for mode in [ForwardMode::FullNat, ForwardMode::Masq, ForwardMode::Route] {
        let mut lab = lab6(mode, 1);
        let rs2 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x201);
        assert_eq!(lab.rx(0, ns(RS_MAC[1], rs2)).len(), 1, "the solicitation is answered");
        for proto in [Protocol::Tcp, Protocol::Udp] {
            lab.ok(Request::AddDest { service: key6(proto), dest: DestSpec::new(rs2, 8080, mode, 1) });
        }
        let mut spec = gw_proto::ServiceSpec::new(key6(Protocol::Udp), gw_proto::Scheduler::Rr);
        spec.one_packet = true;
        lab.ok(Request::EditService { spec });
        let mut seen = vec![];
        for _ in 0..4 {
            let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 5353), (VIP6, VPORT)));
            let (_, mac, _, _, _) = read(&out);
            seen.push(mac);
        }
        // rs2, added last, goes first (IPVS's list order).
        let (a, b) = (RS_MAC[0], RS_MAC[1]);
        assert_eq!(seen, [b, a, b, a], "{mode:?}: the same client port goes round robin");
        assert_eq!(lab.counters.event_count(Event::SessionsCreated), 4, "{mode:?}");
        let live = if mode == ForwardMode::Route { 0 } else { 1 };
        assert_eq!(lab.counters.event_count(Event::SessionsLive), live, "{mode:?}: one at a time");
        assert_eq!(lab.counters.event_count(Event::SessionsReused), 0, "{mode:?}: not conn_reuse");
        // TCP keeps its connection's server (its SYN sent again).
        let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 7000), (VIP6, VPORT), true, false));
        let first = read(&out).1;
        let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 7000), (VIP6, VPORT), true, false));
        assert_eq!(read(&out).1, first, "{mode:?}: TCP is not affected by -o");
    }
}

/// NAT66: replies come back to the client's own address, so two services
/// sending one client address:port to the same real server would share a
/// reply key, and the server's answers to both would leave from the first
/// VIP. The second connection is refused (`drop_nat_conflict`, as
/// IPv4's NAT); the first keeps its replies.
#[test]
fn nat66_refuses_a_second_service_connection_with_the_same_reply_key() {
    let mut lab = lab6(ForwardMode::Masq, 1);
    let other = gw_proto::ServiceKey { port: VPORT + 1, ..key6(Protocol::Tcp) };
    lab.ok(Request::AddService { spec: gw_proto::ServiceSpec::new(other, gw_proto::Scheduler::Rr) });
    lab.ok(Request::AddDest { service: other, dest: DestSpec::new(RS6, 8080, ForwardMode::Masq, 1) });
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, false));
    assert_eq!(read(&out).3, (RS6, 8080));
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT + 1), true, false));
    assert!(out.is_empty(), "the second connection is refused");
    assert_eq!(lab.counters.drop_count(gw_core::counters::Drop::NatConflict), 1);
    let out = lab.rx(0, tcp6(RS_MAC[0], (RS6, 8080), (CLIENT6, 40000), true, true));
    assert_eq!(read(&out).2, (VIP6, VPORT), "the first connection's replies");
    // Another client port is no conflict.
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40001), (VIP6, VPORT + 1), true, false));
    assert_eq!(read(&out).3, (RS6, 8080));
}

/// A FULLNAT66 lab whose tables each hold 3 sessions no server has
/// answered (`half_open_max`, `half_open_max6`), with an IPv4 NAT service
/// of `proto` beside its IPv6 ones (real server `RS[0]`:8080), neighbours
/// learnt: the per-family share tests' lab.
fn dual_stack_shares(proto: Protocol) -> Lab {
    let mut lab = lab6_from(ForwardMode::FullNat, LabConfig { half_open_max: 3, ..LabConfig::default() });
    let v4 = key(proto);
    lab.ok(Request::AddService { spec: gw_proto::ServiceSpec::new(v4, gw_proto::Scheduler::Rr) });
    let dest = DestSpec::new(std::net::Ipv4Addr::from(RS[0]), 8080, ForwardMode::Masq, 1);
    lab.ok(Request::AddDest { service: v4, dest });
    lab.learn_neighbours();
    lab
}

/// SYN flood protection per family: each table holds its own share of
/// half-open sessions (`half_open_max`, `half_open_max6`), so a flood of
/// one family neither fills the other's table nor holds back its new
/// connections. `sessions_half_open` counts both, `sessions_half_open_ipv6`
/// the IPv6 ones; a completed handshake frees its place.
#[test]
fn each_family_holds_its_own_share_of_half_open_sessions() {
    use gw_core::counters::Drop;
    let mut lab = dual_stack_shares(Protocol::Tcp);
    for cport in 1000..1003 {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, VPORT), true, false));
        assert_eq!(out.len(), 1, "IPv4 SYN {cport} leaves");
    }
    assert!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 1003), (VIP, VPORT), true, false)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::HalfOpenLimit), 1, "the IPv4 share is full");
    let mut lports = vec![];
    for cport in 1000..1003 {
        let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, cport), (VIP6, VPORT), true, false));
        lports.push(read(&out).2 .1);
    }
    assert!(lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 1003), (VIP6, VPORT), true, false)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::HalfOpenLimit), 2, "so is the IPv6 one, on its own");
    assert_eq!(lab.counters.event_count(Event::HalfOpen), 6);
    assert_eq!(lab.counters.event_count(Event::HalfOpen6), 3);
    // The first IPv6 connection completes its handshake: room for one more.
    let out = lab.rx(0, tcp6(RS_MAC[0], (RS6, 8080), (LIP6, lports[0]), true, true));
    assert_eq!(read(&out).3, (CLIENT6, 1000));
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 1000), (VIP6, VPORT), false, true));
    assert_eq!(read(&out).3, (RS6, 8080));
    assert_eq!(lab.counters.event_count(Event::HalfOpen6), 2);
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 1003), (VIP6, VPORT), true, false));
    assert_eq!(read(&out).3, (RS6, 8080), "a new IPv6 connection opens again");
    assert_eq!(lab.counters.event_count(Event::HalfOpen), 6);
}

/// RFC 6583's neighbour-cache exhaustion from the link: solicitations from
/// made-up link-local senders (a /10, unbounded where IPv4's ARP senders
/// are held to the port's subnet) are each answered, and their entries take
/// only each other's places: the router and the real server a connection
/// uses stay resolved, and the connection goes on without a solicitation.
#[test]
fn a_flood_of_link_local_solicitations_never_evicts_the_neighbours_in_use() {
    let neigh = gw_core::neigh::NeighConfig { capacity: 16, per_port_max: 12, ..Default::default() };
    let mut lab = lab6_from(ForwardMode::FullNat, LabConfig { neigh, ..LabConfig::default() });
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, false));
    let (_, mac, (_, lport), _, _) = read(&out);
    assert_eq!(mac, RS_MAC[0]);
    let out = lab.rx(0, tcp6(RS_MAC[0], (RS6, 8080), (LIP6, lport), true, true));
    assert_eq!(read(&out).1, ROUTER_MAC);
    for i in 0..200u16 {
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0xbad, i);
        let out = lab.rx(0, ns([0x02, 0xbb, 0, 0, (i >> 8) as u8, i as u8], src));
        assert_eq!(out.len(), 1, "solicitation {i} is answered");
    }
    assert!(lab.counters.event_count(Event::NeighEvicted) > 0, "the strangers replaced each other");
    // No solicitation for either side: both are still known.
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), false, true));
    assert_eq!(read(&out).1, RS_MAC[0]);
    let out = lab.rx(0, tcp6(RS_MAC[0], (RS6, 8080), (LIP6, lport), false, true));
    assert_eq!(read(&out).1, ROUTER_MAC);
    assert_eq!(lab.counters.drop_count(gw_core::counters::Drop::NeighUnresolved), 0);
}

/// `frame` (Ethernet + IPv6 + upper layer, no extension header) with a
/// routing header of type 0 and `left` segments left inserted after the
/// fixed header (one 16-byte address: 24 bytes).
fn with_routing_header(frame: &[u8], left: u8) -> Vec<u8> {
    let mut f = frame.to_vec();
    let next = f[14 + 6];
    f[14 + 6] = 43;
    let plen = u16::from_be_bytes([f[18], f[19]]) + 24;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    let mut rh = vec![next, 2, 0, left, 0, 0, 0, 0];
    rh.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1).octets());
    f.splice(14 + 40..14 + 40, rh);
    f
}

/// Sources that never appear on the wire (`::/64`: loopback, IPv4-mapped,
/// IPv4-compatible) are dropped for every IPv6 packet, as IPv4's 127/8,
/// not only for TCP/UDP: an echo "from ::1" got a reply routed to the
/// router. A packet whose routing header still has segments left was sent
/// to the VIP on its way elsewhere (RFC 8200 §4.4, RFC 5095): dropped; with
/// none left it is the VIP's.
#[test]
fn impossible_sources_and_unfinished_routing_headers_are_dropped() {
    use gw_core::counters::Drop;
    let mut lab = lab6(ForwardMode::FullNat, 1);
    assert_eq!(lab.rx(0, echo_request(CLIENT6)).len(), 1, "a real client's echo is answered");
    for src in ["::1", "::ffff:198.18.0.2", "::198.18.0.2"] {
        assert!(lab.rx(0, echo_request(src.parse().unwrap())).is_empty(), "{src}");
    }
    assert_eq!(lab.counters.drop_count(Drop::BadSourceAddr), 3);
    let syn = tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, false);
    assert!(lab.rx(0, with_routing_header(&syn, 1)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::Ipv6RoutingHeader), 1);
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 0);
    let out = lab.rx(0, with_routing_header(&syn, 0));
    assert_eq!(out.len(), 1, "no segment left: the VIP's packet");
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 1);
}

/// The gateway answers packets from on-link sources it has not resolved
/// (a port unreachable here) by soliciting them, as a stranger's entry:
/// answering a flood from made-up on-link sources cannot evict a real
/// server's resolution in progress (its first packet parked) or the
/// router, which a wanted entry each would have done.
#[test]
fn answering_made_up_on_link_sources_never_evicts_a_resolution_in_progress() {
    use gw_core::counters::Drop;
    let neigh = gw_core::neigh::NeighConfig { capacity: 16, per_port_max: 12, ..Default::default() };
    let reject = gw_core::engine::RejectConfig { rate: 1_000_000, burst: 1_000_000, ..Default::default() };
    let mut lab = lab6_from(ForwardMode::FullNat, LabConfig { neigh, reject, ..LabConfig::default() });
    // A second real server, not resolved yet, takes the new flows.
    let (rs2, rs2_mac) = (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x201), [0x02, 0x52, 0, 0, 0, 2]);
    let key = key6(Protocol::Udp);
    lab.ok(Request::AddDest { service: key, dest: DestSpec::new(rs2, 8080, ForwardMode::FullNat, 1) });
    lab.ok(Request::EditDest { service: key, dest: DestSpec::new(RS6, 8080, ForwardMode::FullNat, 0) });
    let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT)));
    assert_eq!(out.len(), 1, "a solicitation for the new server; its datagram waits");
    assert_eq!(lab.counters.event_count(Event::NeighHeld), 1);
    // 200 datagrams from made-up on-link sources to a port without a
    // service: each is answered, its source solicited first.
    for i in 0..200u16 {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xbad, i);
        let out = lab.rx(0, udp6([0x02, 0xbb, 0, 0, (i >> 8) as u8, i as u8], (src, 5000), (VIP6, 9999)));
        assert_eq!(out.len(), 1, "datagram {i}: a solicitation for its source");
    }
    assert!(lab.counters.event_count(Event::NeighEvicted) > 0, "the strangers replaced each other");
    // The server answers: its datagram leaves.
    let out = lab.rx(0, na(rs2_mac, rs2, 0x60));
    let (port, mac, _, dst, _) = read(&out);
    assert_eq!((port, mac, dst), (0, rs2_mac, (rs2, 8080)));
    // The router is still known: a reply goes out without a solicitation.
    let (_, _, (lip, lport), _, _) = read(&out);
    assert_eq!(lip, LIP6);
    let out = lab.rx(0, udp6(rs2_mac, (rs2, 8080), (LIP6, lport)));
    assert_eq!(read(&out).1, ROUTER_MAC);
    // Every entry evicted was a made-up source's, holding its one reply.
    assert_eq!(lab.counters.drop_count(Drop::NeighUnresolved), lab.counters.event_count(Event::NeighEvicted));
}

/// UDP flood protection per family, as [`each_family_holds_its_own_share_of_half_open_sessions`]
/// for TCP: each table holds its own share of FULLNAT/NAT flows no real
/// server has answered (`drop_udp_unreplied_limit` past it);
/// `sessions_udp_unreplied` counts both families, `_ipv6` the IPv6 ones;
/// a flow its server answered frees its place.
#[test]
fn each_family_holds_its_own_share_of_unanswered_udp_flows() {
    use gw_core::counters::Drop;
    let mut lab = dual_stack_shares(Protocol::Udp);
    for cport in 1000..1003 {
        let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, VPORT)));
        assert_eq!(out.len(), 1, "IPv4 datagram {cport} leaves");
    }
    assert!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 1003), (VIP, VPORT))).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::UdpUnrepliedLimit), 1, "the IPv4 share is full");
    let mut lports = vec![];
    for cport in 1000..1003 {
        let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, cport), (VIP6, VPORT)));
        lports.push(read(&out).2 .1);
    }
    assert!(lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 1003), (VIP6, VPORT))).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::UdpUnrepliedLimit), 2, "so is the IPv6 one, on its own");
    assert_eq!(lab.counters.event_count(Event::UdpUnreplied), 6);
    assert_eq!(lab.counters.event_count(Event::UdpUnreplied6), 3);
    // The real server answers the first IPv6 flow: room for one more.
    let out = lab.rx(0, udp6(RS_MAC[0], (RS6, 8080), (LIP6, lports[0])));
    assert_eq!(read(&out).3, (CLIENT6, 1000));
    assert_eq!(lab.counters.event_count(Event::UdpUnreplied6), 2);
    assert_eq!(lab.counters.event_count(Event::UdpUnreplied), 5);
    let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 1003), (VIP6, VPORT)));
    assert_eq!(read(&out).3, (RS6, 8080), "a new IPv6 flow opens again");
}

//! NAT64 end to end through a worker (issue 17): an IPv6 client beyond the
//! upstream router opens a TCP connection to an IPv6 VIP whose real server
//! is IPv4 (FULLNAT with an IPv4 local address, DPVS's form), configured
//! through the control plane. The SYN leaves the inside port as IPv4 from
//! the local address to the real server's MAC; the SYN-ACK comes back as
//! IPv6 from the VIP, after the worker resolved the router by a neighbour
//! solicitation; a router's "fragmentation needed" from the IPv4 side
//! reaches the client as Packet Too Big. Frames built and read by
//! etherparse (checksums computed there).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::v6::na;
use common::*;
use etherparse::{Icmpv6Type, LinkSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_core::counters::{Drop, Event};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceKey, ServiceSpec};

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 9);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);

fn key6() -> ServiceKey {
    ServiceKey { proto: Protocol::Tcp, addr: IpAddr::V6(VIP6), port: 80 }
}

/// A lab with the NAT64 service: [VIP6]:80 -> RS[0]:8080 (IPv4, FULLNAT),
/// local address LIP; the real server's MAC learnt.
fn lab() -> Lab {
    let mut lab = LabConfig::default().build();
    let out = lab.rx(1, arp_request(RS_MAC[0], RS[0], GW_IN_ADDR));
    assert_eq!(out.len(), 1, "the gateway answers ARP for its inside address");
    lab.ok(Request::AddService { spec: ServiceSpec::new(key6(), Scheduler::Rr) });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
    lab.ok(Request::AddDest { service: key6(), dest });
    lab.ok(Request::AddLaddr { service: key6(), addr: Ipv4Addr::from(LIP).into() });
    lab
}

fn syn6(payload: &[u8], syn: bool) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0)
        .ipv6(CLIENT6.octets(), VIP6.octets(), 60)
        .tcp(40000, 80, 1000, 64000);
    b = if syn { b.syn() } else { b.ack(5001) };
    let mut out = vec![];
    b.write(&mut out, payload).unwrap();
    out
}

/// The router's solicited advertisement of itself (R, S, O) to the
/// gateway's address.
fn router_advert() -> Vec<u8> {
    na(ROUTER_MAC, ROUTER6, 0xe0)
}

/// An address and port.
type End = (IpAddr, u16);

/// (destination MAC, source, destination, TTL or hop limit, TCP payload)
/// of a TCP frame, read by etherparse, with the IPv4 header checksum and
/// the TCP checksum checked there.
fn read(frame: &[u8]) -> ([u8; 6], End, End, u8, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses it");
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else { panic!("not Ethernet") };
    let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP: {:?}", p.transport) };
    let th = t.to_header();
    let (src, dst, hops) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            assert_eq!(eth.ether_type().0, 0x0800);
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header checksum");
            assert_eq!(th.checksum, th.calc_checksum_ipv4(&h, t.payload()).unwrap(), "TCP checksum");
            (IpAddr::from(h.source), IpAddr::from(h.destination), h.time_to_live)
        }
        Some(NetSlice::Ipv6(ip)) => {
            assert_eq!(eth.ether_type().0, 0x86dd);
            let h = ip.header().to_header();
            assert_eq!(th.checksum, th.calc_checksum_ipv6(&h, t.payload()).unwrap(), "TCP checksum");
            (IpAddr::from(h.source), IpAddr::from(h.destination), h.hop_limit)
        }
        other => panic!("not IP: {other:?}"),
    };
    (eth.destination(), (src, th.source_port), (dst, th.destination_port), hops, t.payload().to_vec())
}

#[test]
fn an_ipv6_client_talks_to_an_ipv4_server_through_the_worker() {
    let mut lab = lab();
    let out = lab.rx(0, syn6(&[], true));
    assert_eq!(out.len(), 1, "the SYN leaves at once: the real server's MAC is known");
    let (port, f) = &out[0];
    assert_eq!(*port, 1);
    let (dmac, (src, lport), dst, ttl, _) = read(f);
    assert_eq!(dmac, RS_MAC[0]);
    assert_eq!((src, dst, ttl), (IpAddr::from(LIP), (IpAddr::from(RS[0]), 8080), 59));

    // The SYN-ACK to LIP:lport: the router is solicited, the reply parked.
    let synack = tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, lport), true, true);
    let out = lab.rx(1, synack);
    assert_eq!(out.len(), 1, "a neighbour solicitation for the router");
    assert_eq!(out[0].0, 0);
    lab.now += 5;
    let out = lab.rx(0, router_advert());
    assert_eq!(out.len(), 1, "the parked SYN-ACK leaves");
    let (dmac, src, dst, hops, _) = read(&out[0].1);
    assert_eq!(
        (dmac, src, dst, hops),
        (ROUTER_MAC, (IpAddr::V6(VIP6), 80), (IpAddr::V6(CLIENT6), 40000), 63)
    );

    // Data both ways, now without waiting.
    let out = lab.rx(0, syn6(b"GET / HTTP/1.0\r\n\r\n", false));
    assert_eq!(out.len(), 1);
    let (_, s, _, _, body) = read(&out[0].1);
    assert_eq!((s, body.as_slice()), ((IpAddr::from(LIP), lport), &b"GET / HTTP/1.0\r\n\r\n"[..]));
    let page = tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, lport), false, true);
    let out = lab.rx(1, page);
    assert_eq!(out.len(), 1);
    let (_, s, d, _, body) = read(&out[0].1);
    assert_eq!((s, d), ((IpAddr::V6(VIP6), 80), (IpAddr::V6(CLIENT6), 40000)));
    assert_eq!(body, b"data");
    assert_eq!((lab.counters.event_count(Event::FwdIn), lab.counters.event_count(Event::FwdOut)), (2, 2));
    assert_eq!(lab.counters.drop_count(Drop::Nat64Untranslatable), 0);

    // A router on the inside with a smaller MTU answers the client's next
    // segment (as IPv4) with "fragmentation needed, MTU 1300": the client
    // gets Packet Too Big with 1320 from the VIP, quoting its own segment.
    let out = lab.rx(0, syn6(&[7; 1400], false));
    let sent = &out[0].1;
    let mut err = vec![];
    PacketBuilder::ethernet2(RS_MAC[0], GW_IN.0)
        .ipv4(RS[0], LIP, 64)
        .icmpv4_raw(3, 4, [0, 0, 0x05, 0x14])
        .write(&mut err, &sent[14..14 + 576 - 28])
        .unwrap();
    let out = lab.rx(1, err);
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!(*port, 0);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else { panic!("not Ethernet") };
    assert_eq!((eth.destination(), eth.ether_type().0), (ROUTER_MAC, 0x86dd));
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
    let h = ip.header();
    assert_eq!((h.source_addr(), h.destination_addr()), (VIP6, CLIENT6));
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6") };
    assert!(icmp.is_checksum_valid(h.source(), h.destination()), "ICMPv6 checksum");
    assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1320 });
    let q = etherparse::Ipv6Header::from_slice(icmp.payload()).unwrap().0;
    assert_eq!((Ipv6Addr::from(q.source), Ipv6Addr::from(q.destination)), (CLIENT6, VIP6));
    assert_eq!(usize::from(q.payload_length), 20 + 1400, "the length the client sent");
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsTranslated), 1);
}

/// A NAT64 session's reply takes its reverse-path check from the route
/// the session remembers toward its IPv4 real server (issue 17, as IPv4's
/// established path, issue 14): the server's reply spoofed from the client
/// side is dropped and counted whether the session has learnt that route
/// yet (by the SYN: yes) or not, and the real reply still reaches the
/// client translated, the session untouched.
#[test]
fn a_nat64_reply_from_the_client_side_is_dropped_by_the_sessions_route() {
    let mut lab = lab();
    let out = lab.rx(0, syn6(&[], true));
    assert_eq!(out.len(), 1);
    let (_, (_, lport), ..) = read(&out[0].1);
    let spoofed = || tcp(ROUTER_MAC, GW_OUT, (RS[0], 8080), (LIP, lport), true, true);
    assert!(lab.rx(0, spoofed()).is_empty(), "the reply from the client side is dropped");
    assert_eq!(lab.counters.drop_count(Drop::ReversePath), 1);
    // From the server side: translated to the client (the router solicited first).
    let synack = tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, lport), true, true);
    assert_eq!(lab.rx(1, synack).len(), 1, "a neighbour solicitation for the router");
    lab.now += 5;
    let out = lab.rx(0, router_advert());
    assert_eq!(out.len(), 1, "the parked SYN-ACK leaves");
    let (_, src, dst, ..) = read(&out[0].1);
    assert_eq!((src, dst), ((IpAddr::V6(VIP6), 80), (IpAddr::V6(CLIENT6), 40000)));
    // Again from the client side, once both routes are remembered.
    assert!(lab.rx(0, spoofed()).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::ReversePath), 2);
    let page = tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, lport), false, true);
    let out = lab.rx(1, page);
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    let (_, src, dst, _, body) = read(f);
    assert_eq!(
        (*port, src, dst, body.as_slice()),
        (0, (IpAddr::V6(VIP6), 80), (IpAddr::V6(CLIENT6), 40000), &b"data"[..])
    );
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 1);
    assert_eq!(lab.counters.event_count(Event::FwdOut), 2);
}

/// One-packet scheduling (`-o`) on a NAT64 UDP service: every datagram of
/// one client address and port is scheduled anew, so round robin over two
/// IPv4 real servers alternates (as IPv4's and IPv6's services).
#[test]
fn one_packet_scheduling_reschedules_every_nat64_datagram() {
    let mut lab = LabConfig::default().build();
    let key = ServiceKey { proto: Protocol::Udp, addr: IpAddr::V6(VIP6), port: 53 };
    let mut spec = ServiceSpec::new(key, Scheduler::Rr);
    spec.one_packet = true;
    lab.ok(Request::AddService { spec });
    for (mac, rs) in RS_MAC.iter().zip(RS).take(2).rev() {
        assert_eq!(lab.rx(1, arp_request(*mac, rs, GW_IN_ADDR)).len(), 1, "ARP answered");
        let dest = DestSpec::new(Ipv4Addr::from(rs), 5353, ForwardMode::FullNat, 1);
        lab.ok(Request::AddDest { service: key, dest });
    }
    lab.ok(Request::AddLaddr { service: key, addr: Ipv4Addr::from(LIP).into() });
    let mut seen = vec![];
    let mut lport = 0;
    for _ in 0..4 {
        let out = lab.rx(0, common::v6::udp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, 53)));
        assert_eq!(out.len(), 1, "one datagram out");
        let p = SlicedPacket::from_ethernet(&out[0].1).expect("etherparse parses it");
        let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4: {:?}", p.net) };
        let Some(TransportSlice::Udp(u)) = &p.transport else { panic!("not UDP") };
        assert_eq!(u.destination_port(), 5353);
        seen.push(ip.header().destination());
        lport = u.source_port();
    }
    assert_eq!(seen, [RS[0], RS[1], RS[0], RS[1]], "the same client port goes round robin");
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 4);
    assert_eq!(lab.counters.event_count(Event::SessionsLive), 1);
    // The last datagram's answer goes back to the IPv6 client and ends
    // the session; a second answer finds none.
    let answer = || udp(RS_MAC[1], GW_IN, (RS[1], 5353), (LIP, lport));
    assert_eq!(lab.rx(1, answer()).len(), 1, "a neighbour solicitation for the router");
    lab.now += 5;
    let back = lab.rx(0, router_advert());
    assert_eq!(back.len(), 1, "the parked answer leaves");
    let p = SlicedPacket::from_ethernet(&back[0].1).expect("etherparse parses it");
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6: {:?}", p.net) };
    assert_eq!(ip.header().destination_addr(), CLIENT6);
    assert_eq!(lab.counters.event_count(Event::SessionsLive), 0, "ended with its answer");
    assert!(lab.rx(1, answer()).is_empty(), "a second answer finds no session");
}

/// The IPv4 local port a frame leaving toward a real server comes from.
fn lport_of(frame: &[u8]) -> u16 {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses it");
    let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP") };
    t.source_port()
}

/// An IPv4 FULLNAT service and a NAT64 service share a local address and
/// a real server (a dual-stack front end): an IPv4 connection never takes
/// the LIP:lport a NAT64 connection holds toward that server, where the
/// server would see one 4-tuple for two connections and answer one client
/// for both. With two ports, each connection gets its own, the server's
/// answers reach each client in its family, and a third connection finds
/// every port in use.
#[test]
fn ipv4_fullnat_and_nat64_sharing_a_local_address_never_share_a_port() {
    let mut lab = LabConfig { lports: (1024, 1025), ..LabConfig::default() }.build();
    assert_eq!(lab.rx(1, arp_request(RS_MAC[0], RS[0], GW_IN_ADDR)).len(), 1);
    for service in [key6(), key(Protocol::Tcp)] {
        lab.ok(Request::AddService { spec: ServiceSpec::new(service, Scheduler::Rr) });
        let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
        lab.ok(Request::AddDest { service, dest });
        lab.ok(Request::AddLaddr { service, addr: Ipv4Addr::from(LIP).into() });
    }
    assert_eq!(lab.rx(0, router_advert()).len(), 0, "the router learnt");
    let out = lab.rx(0, syn6(b"", true));
    assert_eq!(out.len(), 1, "the NAT64 SYN leaves");
    let p6 = lport_of(&out[0].1);
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 5000), (VIP, VPORT), true, false));
    assert_eq!(out.len(), 1, "the IPv4 SYN leaves");
    let p4 = lport_of(&out[0].1);
    assert_ne!(p4, p6, "the IPv4 connection took the NAT64 one's port");
    // The server's SYN-ACKs reach each client in its own family.
    for (lport, v6) in [(p6, true), (p4, false)] {
        let out = lab.rx(1, tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, lport), true, true));
        assert_eq!(out.len(), 1);
        let p = SlicedPacket::from_ethernet(&out[0].1).unwrap();
        assert_eq!(matches!(p.net, Some(NetSlice::Ipv6(_))), v6, "port {lport}");
    }
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 5001), (VIP, VPORT), true, false));
    assert!(out.is_empty());
    assert_eq!(lab.counters.drop_count(Drop::LaddrExhausted), 1);
}

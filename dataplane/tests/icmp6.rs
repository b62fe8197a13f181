//! ICMPv6 errors about IPv6 sessions through a worker (issue 17), and
//! Packet Too Big from the gateway: FULLNAT66 and NAT66 translate an error
//! to the other side (outer addresses, the quote's addresses, ports and
//! checksum, the ICMPv6 checksum over the new pseudo header), DR6 and TUN6
//! forward it untouched to the real server, NAT64 turns a Packet Too Big
//! from the IPv6 side into "fragmentation needed" toward the IPv4 server
//! (MTU - 20, RFC 7915 §5.2). Frames built by etherparse; what leaves read
//! by etherparse, every checksum (outer ICMP, quoted TCP/UDP) computed
//! there.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use common::v6::*;
use common::*;
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::icmpv6::{DestUnreachableCode, TimeExceededCode};
use etherparse::{
    Icmpv4Type, Icmpv6Type, Ipv4Header, Ipv6Header, NetSlice, PacketBuilder, SlicedPacket, TcpHeader,
    TransportSlice, UdpHeader,
};
use gw_core::counters::{Drop, Event};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceSpec};

/// A router beyond the gateway on the client side.
const HOP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x66, 0, 0, 0, 0, 1);

/// A NAT64 lab: [VIP6]:80 (TCP) -> RS[0]:8080 (IPv4), local address LIP;
/// port 1's MTU `inside_mtu`; the router and the server known.
fn lab64(inside_mtu: u16) -> Lab {
    let mut lab = LabConfig { inside_mtu, ..LabConfig::default() }.build();
    assert_eq!(lab.rx(1, arp_request(RS_MAC[0], RS[0], GW_IN_ADDR)).len(), 1);
    assert_eq!(lab.rx(0, ns(ROUTER_MAC, ROUTER6)).len(), 1);
    let k = key6(Protocol::Tcp);
    lab.ok(Request::AddService { spec: ServiceSpec::new(k, Scheduler::Rr) });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
    lab.ok(Request::AddDest { service: k, dest });
    lab.ok(Request::AddLaddr { service: k, addr: Ipv4Addr::from(LIP).into() });
    lab
}

fn tcp6(mac: [u8; 6], s: (Ipv6Addr, u16), d: (Ipv6Addr, u16), syn: bool, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(mac, GW_OUT.0)
        .ipv6(s.0.octets(), d.0.octets(), 64)
        .tcp(s.1, d.1, 1000, 64000);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut out = vec![];
    b.write(&mut out, payload).unwrap();
    out
}

/// The real server's SYN-ACK (seq 4999, acknowledging the client's ISN
/// 1000) from `s` to `d`, from `mac` on port 0's link.
fn syn_ack6(mac: [u8; 6], s: (Ipv6Addr, u16), d: (Ipv6Addr, u16)) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(mac, GW_OUT.0)
        .ipv6(s.0.octets(), d.0.octets(), 64)
        .tcp(s.1, d.1, 4999, 64000)
        .syn()
        .ack(1001)
        .write(&mut out, &[])
        .unwrap();
    out
}

/// An ICMPv6 error `t` from `src` to `dst` (from `mac`) quoting the IPv6
/// packet of `quoted` (a frame), whole or cut at `max` bytes.
fn error6(mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, t: Icmpv6Type, quoted: &[u8], max: usize) -> Vec<u8> {
    let q = &quoted[14..];
    let mut out = vec![];
    PacketBuilder::ethernet2(mac, GW_OUT.0)
        .ipv6(src.octets(), dst.octets(), 64)
        .icmpv6(t)
        .write(&mut out, &q[..q.len().min(max)])
        .unwrap();
    out
}

/// The ports of the TCP/UDP packet in `frame`.
fn ports(frame: &[u8]) -> (u16, u16) {
    match SlicedPacket::from_ethernet(frame).unwrap().transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        other => panic!("not TCP/UDP: {other:?}"),
    }
}

/// An address and port.
type End = (Ipv6Addr, u16);

/// What an ICMPv6 error that leaves says, read by etherparse: (outer
/// source, outer destination, hop limit, type, quoted source, quoted
/// destination). Checks the ICMPv6 checksum and, if the quote holds the
/// whole packet, its TCP/UDP checksum.
fn read6(frame: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, Icmpv6Type, End, End) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses it");
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
    let h = ip.header();
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6: {:?}", p.transport) };
    assert!(icmp.is_checksum_valid(h.source(), h.destination()), "ICMPv6 checksum");
    let (q, rest) = Ipv6Header::from_slice(icmp.payload()).unwrap();
    let whole = rest.len() == usize::from(q.payload_length);
    let ports = match q.next_header {
        etherparse::IpNumber::TCP => {
            let (t, data) = TcpHeader::from_slice(rest).unwrap();
            if whole {
                assert_eq!(t.checksum, t.calc_checksum_ipv6(&q, data).unwrap(), "quoted TCP checksum");
            }
            (t.source_port, t.destination_port)
        }
        etherparse::IpNumber::UDP => {
            let (u, data) = UdpHeader::from_slice(rest).unwrap();
            if whole {
                assert_eq!(u.checksum, u.calc_checksum_ipv6(&q, data).unwrap(), "quoted UDP checksum");
            }
            (u.source_port, u.destination_port)
        }
        other => panic!("quotes {other:?}"),
    };
    (
        h.source_addr(),
        h.destination_addr(),
        h.hop_limit(),
        icmp.icmp_type(),
        (Ipv6Addr::from(q.source), ports.0),
        (Ipv6Addr::from(q.destination), ports.1),
    )
}

/// A router on the server side says Packet Too Big (1400) about the
/// packet FULLNAT66 sent to the real server: the client gets it from the
/// VIP about its own packet, the MTU kept.
#[test]
fn fullnat66_packet_too_big_from_the_server_side_reaches_the_client() {
    let mut lab = lab6(ForwardMode::FullNat, 1);
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, &[]));
    let sent = out[0].1.clone();
    let (lport, _) = ports(&sent);
    let ptb = Icmpv6Type::PacketTooBig { mtu: 1400 };
    let err = error6(RS_MAC[0], RS6, LIP6, ptb, &sent, 1232);
    let out_pkts = |lab: &Lab| {
        (
            lab.counters.dests.iter().map(|d| d.outpkts.get()).sum::<u64>(),
            lab.counters.dests.iter().map(|d| d.outbytes.get()).sum::<u64>(),
        )
    };
    let before = out_pkts(&lab);
    let out = lab.rx(0, err.clone());
    let after = out_pkts(&lab);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, (err.len() - 14) as u64),
        "counted out, as IPVS"
    );
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!((*port, &f[0..6], &f[6..12]), (0, &ROUTER_MAC[..], &GW_OUT.0[..]), "to the client's side");
    let r = read6(f);
    assert_eq!(r, (VIP6, CLIENT6, 63, ptb, (CLIENT6, 40000), (VIP6, VPORT)));
    assert_ne!(lport, 40000, "the quote was rewritten, not the original");
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsTranslated), 1);
}

/// The client's router says "hop limit exceeded" about a reply the
/// gateway sent it: the real server gets it from the local address about
/// the packet it sent (RS:8080 -> LIP:lport).
#[test]
fn fullnat66_an_error_about_a_reply_reaches_the_real_server() {
    let mut lab = lab6(ForwardMode::FullNat, 1);
    let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 5353), (VIP6, VPORT)));
    let (lport, _) = ports(&out[0].1);
    let out = lab.rx(0, udp6(RS_MAC[0], (RS6, 8080), (LIP6, lport)));
    let reply = out[0].1.clone();
    let t = Icmpv6Type::TimeExceeded(TimeExceededCode::HopLimitExceeded);
    let out = lab.rx(0, error6(ROUTER_MAC, HOP6, VIP6, t, &reply, 1232));
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].1[0..6], &RS_MAC[0]);
    assert_eq!(read6(&out[0].1), (LIP6, RS6, 63, t, (RS6, 8080), (LIP6, lport)));
}

/// NAT66: the quote's destination (the real server) becomes the VIP.
#[test]
fn nat66_translates_a_servers_port_unreachable() {
    let mut lab = lab6(ForwardMode::Masq, 1);
    let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 5353), (VIP6, VPORT)));
    let sent = out[0].1.clone();
    let t = Icmpv6Type::DestinationUnreachable(DestUnreachableCode::Port);
    let out = lab.rx(0, error6(RS_MAC[0], RS6, CLIENT6, t, &sent, 1232));
    assert_eq!(out.len(), 1);
    assert_eq!(read6(&out[0].1), (VIP6, CLIENT6, 63, t, (CLIENT6, 5353), (VIP6, VPORT)));
}

/// DR6: a router's Packet Too Big about the real server's direct reply
/// (VIP -> client) is addressed to the VIP; it goes to the real server's
/// MAC byte for byte, so the server learns the path MTU.
#[test]
fn dr6_forwards_an_error_about_a_direct_reply_to_the_real_server() {
    let mut lab = lab6(ForwardMode::Route, 1);
    lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, &[]));
    let reply = tcp6(RS_MAC[0], (VIP6, VPORT), (CLIENT6, 40000), false, &[9; 1400]);
    let err = error6(ROUTER_MAC, HOP6, VIP6, Icmpv6Type::PacketTooBig { mtu: 1280 }, &reply, 1232);
    let out = lab.rx(0, err.clone());
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!((*port, &f[0..6], &f[6..12]), (0, &RS_MAC[0][..], &GW_OUT.0[..]));
    assert_eq!(&f[14..], &err[14..], "untouched");
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsForwarded), 1);
}

/// TUN6: the same error leaves inside IPv6 (next header 41) to the real
/// server.
#[test]
fn tun6_tunnels_an_error_about_a_direct_reply_to_the_real_server() {
    let mut lab = lab6(ForwardMode::Tunnel, 1);
    lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, &[]));
    let reply = tcp6(RS_MAC[0], (VIP6, VPORT), (CLIENT6, 40000), false, &[9; 1400]);
    let err = error6(ROUTER_MAC, HOP6, VIP6, Icmpv6Type::PacketTooBig { mtu: 1280 }, &reply, 1232);
    let out = lab.rx(0, err.clone());
    assert_eq!(out.len(), 1);
    let f = &out[0].1;
    assert_eq!(&f[0..6], &RS_MAC[0]);
    let outer = Ipv6Header::from_slice(&f[14..]).unwrap().0;
    assert_eq!((Ipv6Addr::from(outer.source), Ipv6Addr::from(outer.destination)), (GW_OUT_ADDR6, RS6));
    assert_eq!(outer.next_header, etherparse::IpNumber::IPV6);
    assert_eq!(&f[14 + 40..], &err[14..], "the error as it came");
}

/// NAT64: a router on the IPv6 side says Packet Too Big (1280) about a
/// reply the gateway translated: the IPv4 server gets "fragmentation
/// needed" with 1260 from the local address, quoting its own packet.
#[test]
fn nat64_packet_too_big_from_the_ipv6_side_becomes_frag_needed_to_the_server() {
    let mut lab = lab64(1500);
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, &[]));
    let (lport, _) = ports(&out[0].1);
    let page = tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, lport), false, true);
    let out = lab.rx(1, page);
    assert_eq!(out.len(), 1);
    let reply6 = out[0].1.clone();
    let err = error6(ROUTER_MAC, HOP6, VIP6, Icmpv6Type::PacketTooBig { mtu: 1280 }, &reply6, 1232);
    let in_pkts = |lab: &Lab| lab.counters.services.iter().map(|d| d.inpkts.get()).sum::<u64>();
    let before = in_pkts(&lab);
    let out = lab.rx(0, err);
    assert_eq!(in_pkts(&lab) - before, 1, "counted in, as IPVS");
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!((*port, &f[0..6]), (1, &RS_MAC[0][..]));
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!((h.source, h.destination, h.time_to_live), (LIP, RS[0], 63));
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!("not ICMP") };
    assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(icmp.payload()), "ICMP checksum");
    let mtu = DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1260 };
    assert_eq!(icmp.icmp_type(), Icmpv4Type::DestinationUnreachable(mtu));
    let (q, rest) = Ipv4Header::from_slice(icmp.payload()).unwrap();
    assert_eq!((q.source, q.destination), (RS[0], LIP), "the packet the server sent");
    assert_eq!(
        (u16::from_be_bytes([rest[0], rest[1]]), u16::from_be_bytes([rest[2], rest[3]])),
        (8080, lport)
    );
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsTranslated), 1);
}

/// Errors the gateway cannot place: a quote of no session to the VIP is
/// `drop_icmp_unknown_flow`, a quote with no ports `drop_icmp_unhandled`.
#[test]
fn errors_about_no_session_or_with_garbage_quotes_are_counted() {
    let mut lab = lab6(ForwardMode::FullNat, 1);
    let stranger = udp6(ROUTER_MAC, (VIP6, VPORT), (CLIENT6, 999));
    let t = Icmpv6Type::DestinationUnreachable(DestUnreachableCode::Port);
    assert!(lab.rx(0, error6(ROUTER_MAC, HOP6, VIP6, t, &stranger, 1232)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::IcmpUnknownFlow), 1);
    // A quote cut inside the IPv6 header, and one of 8 garbage bytes.
    assert!(lab.rx(0, error6(ROUTER_MAC, HOP6, VIP6, t, &stranger, 30)).is_empty());
    let mut garbage = stranger.clone();
    garbage.truncate(14 + 8);
    assert!(lab.rx(0, error6(ROUTER_MAC, HOP6, VIP6, t, &garbage, 8)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::IcmpUnhandled), 2);
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsTranslated), 0);
}

/// Packet Too Big from the gateway: a FULLNAT66 segment over the output
/// port's MTU (1500) goes back to the client from the port's address,
/// quoting the segment as the client sent it, cut to fit 1280 bytes.
#[test]
fn an_ipv6_packet_over_the_mtu_gets_packet_too_big() {
    let mut lab = lab6(ForwardMode::FullNat, 1);
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, &[]));
    let (lport, _) = ports(&out[0].1);
    assert_eq!(lab.rx(0, syn_ack6(RS_MAC[0], (RS6, 8080), (LIP6, lport))).len(), 1);
    let big = tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), false, &[5; 1500]);
    let out = lab.rx(0, big.clone());
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!((*port, &f[0..6], f.len()), (0, &ROUTER_MAC[..], 14 + 1280));
    let (src, dst, _, t, qs, qd) = read6(f);
    assert_eq!((src, dst, t), (GW_OUT_ADDR6, CLIENT6, Icmpv6Type::PacketTooBig { mtu: 1500 }));
    assert_eq!((qs, qd), ((CLIENT6, 40000), (VIP6, VPORT)));
    assert_eq!(&f[14 + 48..], &big[14..14 + 1232], "the packet as it came");
    assert_eq!(lab.counters.event_count(Event::Icmpv6TooBigSent), 1);
}

/// NAT64 both ways over a smaller MTU: the client's segment that would be
/// too big as IPv4 (port 1's MTU 1300) gets Packet Too Big with 1320;
/// the server's segment with DF that would be too big as IPv6 (port 0's
/// 1500) gets "fragmentation needed" with 1480.
#[test]
fn nat64_too_big_either_way_is_answered() {
    let mut lab = lab64(1300);
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), true, &[]));
    let (lport, _) = ports(&out[0].1);
    let mut syn_ack = vec![];
    PacketBuilder::ethernet2(RS_MAC[0], GW_IN.0)
        .ipv4(RS[0], LIP, 64)
        .tcp(8080, lport, 4999, 64000)
        .syn()
        .ack(1001)
        .write(&mut syn_ack, &[])
        .unwrap();
    assert_eq!(lab.rx(1, syn_ack).len(), 1, "the server's SYN-ACK");
    let out = lab.rx(0, tcp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), false, &[5; 1300]));
    assert_eq!(out.len(), 1);
    let (_, dst, _, t, qs, _) = read6(&out[0].1);
    assert_eq!((dst, t, qs), (CLIENT6, Icmpv6Type::PacketTooBig { mtu: 1320 }, (CLIENT6, 40000)));
    assert_eq!(lab.counters.event_count(Event::Icmpv6TooBigSent), 1);

    let mut big = vec![];
    let mut ip = Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, RS[0], LIP).unwrap();
    ip.dont_fragment = true;
    PacketBuilder::ethernet2(RS_MAC[0], GW_IN.0)
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .tcp(8080, lport, 5000, 64000)
        .ack(1001)
        .write(&mut big, &[6; 1450])
        .unwrap();
    let out = lab.rx(1, big);
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!((*port, &f[0..6]), (1, &RS_MAC[0][..]));
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!((h.source, h.destination), (GW_IN_ADDR, RS[0]));
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!("not ICMP") };
    let mtu = DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1480 };
    assert_eq!(icmp.icmp_type(), Icmpv4Type::DestinationUnreachable(mtu));
    assert_eq!(lab.counters.event_count(Event::IcmpFragNeededSent), 1);
    assert_eq!(lab.counters.drop_count(Drop::Nat64TooBig), 0);
}

//! Tests of [`super`]: an IPv6 client through a NAT64 service to an IPv4
//! real server and back; frames built by etherparse, the engine's action
//! carried out as the worker does (`crate::nat64::frame_to_*` with
//! [`Engine::pending_nat64`]), what leaves parsed by etherparse with its
//! TCP/UDP checksums computed there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_proto::{ClientAddr, ForwardMode, Protocol as P, Scheduler, ServiceKey};

use super::*;
use crate::counters::Event;
use crate::engine::ipv6_fwd::tests::{engine, tcp_frame, udp_frame, CIP, GW_MAC, PEER_MAC, VIP};
use crate::sched::{DestConf, Prepared};
use crate::service::Dest;

const LIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 60);
const RIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 200);

fn service(proto: P) -> Service {
    let dests = vec![Dest {
        slot: 0,
        addr: IpAddr::V4(RIP),
        port: 8080,
        mode: ForwardMode::FullNat,
        weight: 1,
        upper: 0,
        lower: 0,
    }];
    let confs: Vec<DestConf> = dests
        .iter()
        .map(|d| DestConf { id: d.slot, ..DestConf::new(1, crate::service::sched_addr(d.addr), d.port) })
        .collect();
    Service {
        slot: 0,
        version: 1,
        key: ServiceKey { proto, addr: IpAddr::V6(VIP), port: 80 },
        scheduler: Scheduler::Rr,
        prep: Prepared::build(Scheduler::Rr, 0, &confs),
        dests,
        laddrs: vec![u32::from(LIP)],
        laddrs6: vec![],
        persistent_ms: None,
        netmask: u32::MAX,
        netmask6: u128::MAX,
        one_packet: false,
        sched_flags: 0,
        client_addr: ClientAddr::None,
        synproxy: false,
    }
}

fn tcp4(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), syn: bool, ack: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
        .ipv4(src.0.octets(), dst.0.octets(), 64)
        .tcp(src.1, dst.1, 1000, 4096);
    if syn {
        b = b.syn();
    }
    if ack {
        b = b.ack(1);
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn udp4(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
        .ipv4(src.0.octets(), dst.0.octets(), 64)
        .udp(src.1, dst.1)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// Carries out the engine's NAT64 action on `frame` as the worker does.
fn translate(e: &Engine, frame: &mut Vec<u8>) {
    match e.pending_nat64() {
        Pending::To4(p) => crate::nat64::frame_to_ipv4(frame, &crate::nat64::To4 { ident: 7, ..*p }).unwrap(),
        Pending::To6(p) => crate::nat64::frame_to_ipv6(frame, p).unwrap(),
    }
}

/// (source, destination) address and port, TTL or hop limit, payload of
/// a frame that leaves, read by etherparse, which also checks the
/// EtherType, the IPv4 header checksum and the TCP/UDP checksum.
fn read(frame: &[u8]) -> ((IpAddr, u16), (IpAddr, u16), u8, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses it");
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else { panic!("not Ethernet") };
    let (src, dst, hops, v4h, v6h) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            assert_eq!(eth.ether_type().0, 0x0800);
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header checksum");
            (IpAddr::from(h.source), IpAddr::from(h.destination), h.time_to_live, Some(h), None)
        }
        Some(NetSlice::Ipv6(ip)) => {
            assert_eq!(eth.ether_type().0, 0x86dd);
            let h = ip.header().to_header();
            (IpAddr::from(h.source), IpAddr::from(h.destination), h.hop_limit, None, Some(h))
        }
        other => panic!("not IP: {other:?}"),
    };
    let (sport, dport, payload) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let th = t.to_header();
            let want = match (&v4h, &v6h) {
                (Some(h), _) => th.calc_checksum_ipv4(h, t.payload()).unwrap(),
                (_, Some(h)) => th.calc_checksum_ipv6(h, t.payload()).unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(th.checksum, want, "TCP checksum");
            (th.source_port, th.destination_port, t.payload().to_vec())
        }
        Some(TransportSlice::Udp(u)) => {
            let uh = u.to_header();
            let want = match (&v4h, &v6h) {
                (Some(h), _) => uh.calc_checksum_ipv4(h, u.payload()).unwrap(),
                (_, Some(h)) => uh.calc_checksum_ipv6(h, u.payload()).unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(uh.checksum, want, "UDP checksum");
            (uh.source_port, uh.destination_port, u.payload().to_vec())
        }
        other => panic!("not TCP/UDP: {other:?}"),
    };
    ((src, sport), (dst, dport), hops, payload)
}

#[test]
fn an_ipv6_client_reaches_an_ipv4_server_and_back() {
    let mut e = engine(service(P::Tcp), 0, 1);
    let mut syn = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    assert_eq!(e.process(0, 0, &mut syn), Action::Nat64To4 { port: 0, next_hop: u32::from(RIP) });
    translate(&e, &mut syn);
    let ((src, lport), (dst, rport), ttl, _) = read(&syn);
    assert_eq!((src, dst, rport, ttl), (IpAddr::V4(LIP), IpAddr::V4(RIP), 8080, 63));
    assert!(lport >= 1024);
    assert_eq!(e.sessions6.len(), 1);
    assert!(e.sessions.is_empty(), "the IPv4 table is not used");

    // The server's SYN-ACK to LIP:lport goes back as VIP:80 -> client.
    let mut synack = tcp4((RIP, 8080), (LIP, lport), true, true, &[]);
    assert_eq!(e.process(1, 0, &mut synack), Action::Nat64To6 { port: 0, next_hop: u128::from(CIP) });
    translate(&e, &mut synack);
    let (s, d, hops, _) = read(&synack);
    assert_eq!((s, d, hops), ((IpAddr::V6(VIP), 80), (IpAddr::V6(CIP), 40000), 63));

    // Data both ways.
    let mut get = tcp_frame((CIP, 40000), (VIP, 80), false, true, b"GET / HTTP/1.0\r\n\r\n");
    assert!(matches!(e.process(2, 0, &mut get), Action::Nat64To4 { .. }));
    translate(&e, &mut get);
    assert_eq!(read(&get).3, b"GET / HTTP/1.0\r\n\r\n");
    let mut page = tcp4((RIP, 8080), (LIP, lport), false, true, b"HTTP/1.0 200 OK\r\n\r\n");
    assert!(matches!(e.process(3, 0, &mut page), Action::Nat64To6 { .. }));
    translate(&e, &mut page);
    assert_eq!(read(&page).3, b"HTTP/1.0 200 OK\r\n\r\n");

    let c = e.counters.clone();
    assert_eq!(c.dests[0].conns.get(), 1);
    assert_eq!((c.dests[0].inpkts.get(), c.dests[0].outpkts.get()), (2, 2));
    assert_eq!(c.dests[0].active.get(), 1, "ESTABLISHED after the client's ACK");
    assert_eq!((c.event_count(Event::FwdIn), c.event_count(Event::FwdOut)), (2, 2));
    assert_eq!(e.expire(1_000_000_000), 1);
    assert_eq!((c.dests[0].active.get(), c.dests[0].inactive.get()), (0, 0));
    assert!(e.sessions6.is_empty());
}

#[test]
fn udp_local_ports_follow_the_worker_share() {
    for (w, nw) in [(0, 2), (1, 2), (2, 3)] {
        let mut e = engine(service(P::Udp), w, nw);
        for cport in 0..12 {
            let mut f = udp_frame((CIP, 30000 + cport), (VIP, 80), b"q");
            assert!(matches!(e.process(0, 0, &mut f), Action::Nat64To4 { .. }));
            translate(&e, &mut f);
            let ((src, lport), _, _, _) = read(&f);
            assert_eq!(src, IpAddr::V4(LIP));
            assert_eq!(u32::from(lport) % nw, w, "worker {w} of {nw}");
            // The answer finds the session through the IPv4 reply.
            let mut r = udp4((RIP, 8080), (LIP, lport), b"a");
            assert!(matches!(e.process(1, 0, &mut r), Action::Nat64To6 { .. }));
            translate(&e, &mut r);
            assert_eq!(read(&r).1, (IpAddr::V6(CIP), 30000 + cport));
        }
    }
}

#[test]
fn replies_without_a_session_and_oversized_packets_are_counted() {
    let mut e = engine(service(P::Udp), 0, 1);
    let mut stray = udp4((RIP, 8080), (LIP, 5555), b"?");
    assert_eq!(e.process(0, 0, &mut stray), Action::Drop(Drop::UnknownReply));
    // 1452 bytes of UDP payload: 1500 as IPv6 (1480 as IPv4) fits, the
    // reply of 1472 bytes (1500 as IPv4) would be 1520 as IPv6.
    let mut q = udp_frame((CIP, 1), (VIP, 80), &[1; 1452]);
    assert!(matches!(e.process(0, 0, &mut q), Action::Nat64To4 { .. }));
    translate(&e, &mut q);
    let ((_, lport), _, _, body) = read(&q);
    assert_eq!(body.len(), 1452);
    // With DF (etherparse sets it) "fragmentation needed" (1480) goes
    // back out the port it came in; without DF it is dropped.
    let mut big = udp4((RIP, 8080), (LIP, lport), &[2; 1472]);
    assert!(matches!(e.process(1, 0, &mut big), Action::Reply { port: 0, .. }));
    assert_eq!(e.counters().event_count(crate::counters::Event::IcmpFragNeededSent), 1);
    let mut big = udp4((RIP, 8080), (LIP, lport), &[2; 1472]);
    let mut ip = ipv4::Packet::new_unchecked(&mut big[ethernet::HEADER_LEN..]);
    ip.clear_flags();
    ip.fill_checksum();
    assert_eq!(e.process(1, 0, &mut big), Action::Drop(Drop::Nat64TooBig));
    let mut fits = udp4((RIP, 8080), (LIP, lport), &[2; 1452]);
    assert!(matches!(e.process(2, 0, &mut fits), Action::Nat64To6 { .. }));
}

#[test]
fn fragmentation_needed_from_the_ipv4_side_reaches_the_client_as_packet_too_big() {
    let mut e = engine(service(P::Tcp), 0, 1);
    let mut syn = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    assert!(matches!(e.process(0, 0, &mut syn), Action::Nat64To4 { .. }));
    translate(&e, &mut syn);
    // A router on the IPv4 side quotes the IPv4 packet the gateway sent.
    let quoted = &syn[ethernet::HEADER_LEN..];
    let router = Ipv4Addr::new(198, 18, 0, 254);
    let mut err = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
        .ipv4(router.octets(), LIP.octets(), 64)
        .icmpv4_raw(3, 4, [0, 0, 0x05, 0x78]) // next-hop MTU 1400
        .write(&mut err, quoted)
        .unwrap();
    assert_eq!(e.process(1, 0, &mut err), Action::Nat64To6 { port: 0, next_hop: u128::from(CIP) });
    translate(&e, &mut err);
    let p = SlicedPacket::from_ethernet(&err).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
    let h = ip.header();
    assert_eq!((h.source_addr(), h.destination_addr(), h.hop_limit()), (VIP, CIP, 63));
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6") };
    assert!(icmp.is_checksum_valid(h.source(), h.destination()), "ICMPv6 checksum");
    assert_eq!(icmp.icmp_type(), etherparse::Icmpv6Type::PacketTooBig { mtu: 1420 });
    // The quote is the client's own SYN: client:40000 -> VIP:80.
    let q = etherparse::Ipv6Header::from_slice(icmp.payload()).unwrap().0;
    assert_eq!((Ipv6Addr::from(q.source), Ipv6Addr::from(q.destination)), (CIP, VIP));
    assert_eq!(&icmp.payload()[40..44], &[0x9c, 0x40, 0, 80]);
    assert_eq!(e.counters.event_count(Event::IcmpErrorsTranslated), 1);
    // An error about no session is still unknown.
    let mut stray = Vec::new();
    let mut other = quoted.to_vec();
    other[20..22].copy_from_slice(&1u16.to_be_bytes());
    PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
        .ipv4(router.octets(), LIP.octets(), 64)
        .icmpv4_raw(3, 4, [0, 0, 0x05, 0x78])
        .write(&mut stray, &other)
        .unwrap();
    assert_eq!(e.process(2, 0, &mut stray), Action::Drop(Drop::IcmpUnknownFlow));
}

/// NAT64 under the reverse-path filter (issue 17): the IPv6 client from
/// the server side and the IPv4 server from the client side are dropped
/// (`drop_reverse_path`), for a new flow and an established one, without touching
/// the session; an IPv6 packet from the server's IPv4-mapped address
/// cannot pose as its reply (`drop_bad_source_addr`).
#[test]
fn nat64_spoofed_sources_are_dropped_by_the_reverse_path_check() {
    use crate::engine::ipv6_fwd::tests::{engine2, FAR_CIP};
    const RIP1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 200);
    let mut svc = service(P::Tcp);
    svc.dests[0].addr = IpAddr::V4(RIP1);
    let mut e = engine2(svc, crate::route::RpFilter::Strict, true);
    let c = e.counters.clone();
    let mut syn = tcp_frame((FAR_CIP, 40000), (VIP, 80), true, false, &[]);
    assert_eq!(e.process(0, 1, &mut syn), Action::Drop(Drop::ReversePath));
    assert!(e.sessions6.is_empty());
    let mut syn = tcp_frame((FAR_CIP, 40000), (VIP, 80), true, false, &[]);
    assert_eq!(e.process(0, 0, &mut syn), Action::Nat64To4 { port: 1, next_hop: u32::from(RIP1) });
    translate(&e, &mut syn);
    let lport = read(&syn).0 .1;
    let before = crate::engine::ipv6_fwd::tests::unmemo(e.sessions6.get(0));
    // The server's reply (IPv4) from the client side: the IPv4 path's
    // check by the session's IPv4 route.
    let mut rst = tcp4((RIP1, 8080), (LIP, lport), false, false, &[]);
    assert_eq!(e.process(1, 0, &mut rst), Action::Drop(Drop::ReversePath));
    // Its IPv4-mapped address as an IPv6 source, on either side: never a
    // source on the wire.
    let mapped6 = Ipv6Addr::from(mapped(u32::from(RIP1)));
    let lip6 = Ipv6Addr::from(mapped(u32::from(LIP)));
    for port in [0, 1] {
        let mut f = tcp_frame((mapped6, 8080), (lip6, lport), false, true, &[]);
        assert_eq!(e.process(1, port, &mut f), Action::Drop(Drop::BadSourceAddr));
    }
    // The client's established flow from the server side.
    let mut ack = tcp_frame((FAR_CIP, 40000), (VIP, 80), false, true, &[]);
    assert_eq!(e.process(1, 1, &mut ack), Action::Drop(Drop::ReversePath));
    assert_eq!(
        crate::engine::ipv6_fwd::tests::unmemo(e.sessions6.get(0)),
        before,
        "the session is as it was"
    );
    assert_eq!((c.dests[0].inpkts.get(), c.dests[0].outpkts.get()), (1, 0));
    // The genuine reply and client packet pass.
    let mut synack = tcp4((RIP1, 8080), (LIP, lport), true, true, &[]);
    assert!(matches!(e.process(2, 1, &mut synack), Action::Nat64To6 { port: 0, .. }));
    let mut ack = tcp_frame((FAR_CIP, 40000), (VIP, 80), false, true, &[]);
    assert!(matches!(e.process(3, 0, &mut ack), Action::Nat64To4 { port: 1, .. }));
}

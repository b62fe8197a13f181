//! ICMP errors about live sessions are translated back through FULLNAT and
//! NAT (as IPVS does), checked with etherparse; errors about unknown flows
//! are dropped and counted.

mod common;

use common::*;
use etherparse::{
    icmpv4::DestUnreachableHeader, Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice,
};
use gw_core::counters::{Drop, Event};
use gw_proto::{ForwardMode, Scheduler};

/// An ICMP error from `src` to `dst` quoting `quoted` (a frame), sent from `mac` to `to_mac`.
fn icmp_error(
    mac: [u8; 6],
    to_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    t: Icmpv4Type,
    quoted: &[u8],
) -> Vec<u8> {
    let mut f = vec![];
    PacketBuilder::ethernet2(mac, to_mac)
        .ipv4(src, dst, 64)
        .icmpv4(t)
        .write(&mut f, &quoted[14..14 + 28])
        .unwrap();
    f
}

/// (outer src, outer dst, quoted src, quoted dst, icmp type), checking every checksum.
#[allow(clippy::type_complexity)]
fn read_error(f: &[u8]) -> ([u8; 4], [u8; 4], ([u8; 4], u16), ([u8; 4], u16), Icmpv4Type) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "outer IPv4 checksum");
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else { panic!("not ICMP") };
    assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(icmp.payload()), "ICMP checksum");
    let inner = etherparse::Ipv4HeaderSlice::from_slice(icmp.payload()).unwrap().to_header();
    assert_eq!(inner.header_checksum, inner.calc_header_checksum(), "quoted IPv4 checksum");
    let q = &icmp.payload()[20..];
    let port = |o: usize| u16::from_be_bytes([q[o], q[o + 1]]);
    (h.source, h.destination, (inner.source, port(0)), (inner.destination, port(2)), icmp.icmp_type())
}

#[test]
fn a_real_servers_port_unreachable_reaches_the_client_about_its_own_packet_fullnat() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
    let sent = out[0].1.clone();
    let (_, _, src, dst, _) = inspect(&sent);
    assert_eq!(src.0, LIP);
    // The real server says "port unreachable" about what it received.
    let err = icmp_error(
        RS_MAC[0],
        GW_IN.0,
        RS[0],
        LIP,
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
        &sent,
    );
    let out = lab.rx(1, err);
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!(*port, 0);
    assert_eq!(&f[0..6], &CLIENT_MAC);
    let (osrc, odst, qsrc, qdst, t) = read_error(f);
    assert_eq!((osrc, odst), (VIP, CLIENT), "from the VIP to the client");
    assert_eq!((qsrc, qdst), ((CLIENT, 5353), (VIP, 80)), "about the client's own packet");
    assert!(matches!(t, Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port)));
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsTranslated), 1);
    let _ = dst;
}

#[test]
fn frag_needed_from_the_server_side_keeps_its_mtu_through_nat() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Masq, 8080);
    lab.learn_neighbours();
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    let sent = out[0].1.clone();
    let mtu =
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 });
    // A router on the server side answers the client address directly (NAT).
    let err = icmp_error(RS_MAC[1], GW_IN.0, [198, 18, 1, 254], CLIENT, mtu.clone(), &sent);
    let out = lab.rx(1, err);
    let (osrc, odst, qsrc, qdst, t) = read_error(&out[0].1);
    assert_eq!((osrc, odst), (VIP, CLIENT));
    assert_eq!((qsrc, qdst), ((CLIENT, 40000), (VIP, 80)));
    assert_eq!(t, mtu);
}

#[test]
fn a_clients_error_about_a_reply_reaches_the_real_server() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
    let lport = inspect(&out[0].1).2 .1;
    let out = lab.rx(1, udp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, lport)));
    let reply = out[0].1.clone();
    let ttl = Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit);
    let out = lab.rx(0, icmp_error(CLIENT_MAC, GW_OUT.0, CLIENT, VIP, ttl, &reply));
    let (port, f) = &out[0];
    assert_eq!(*port, 1);
    let (osrc, odst, qsrc, qdst, _) = read_error(f);
    assert_eq!((osrc, odst), (LIP, RS[0]));
    assert_eq!((qsrc, qdst), ((RS[0], 8080), (LIP, lport)), "about the packet the server sent");
}

#[test]
fn errors_about_unknown_flows_are_dropped_and_counted() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let stranger = udp(RS_MAC[0], GW_IN, (LIP, 6000), (RS[0], 8080));
    let err = icmp_error(
        RS_MAC[0],
        GW_IN.0,
        RS[0],
        LIP,
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
        &stranger,
    );
    assert!(lab.rx(1, err).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::IcmpUnknownFlow), 1);
}

//! ICMP errors about live sessions are translated back through FULLNAT and
//! NAT (as IPVS does), and forwarded untranslated to the real server of a DR
//! or TUN session (as IPVS's `ip_vs_icmp_xmit`), checked with etherparse;
//! errors about unknown flows are dropped and counted.

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

/// The (packets, bytes) counted in and out for every real server, and for
/// every service (IPVS's `-L --stats`).
fn traffic(lab: &Lab) -> [(u64, u64); 4] {
    let sum = |cells: &[gw_core::counters::TrafficCells], out: bool| {
        cells.iter().fold((0, 0), |(p, b), c| {
            let (cp, cb) = if out { (&c.outpkts, &c.outbytes) } else { (&c.inpkts, &c.inbytes) };
            (p + cp.get(), b + cb.get())
        })
    };
    let c = &lab.counters;
    [sum(&c.dests, false), sum(&c.dests, true), sum(&c.services, false), sum(&c.services, true)]
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
    // Corrupted on the way: dropped, not forwarded with a checksum the
    // rewrite would make valid again.
    let mut bad = err.clone();
    bad[14 + 20 + 2] ^= 0x5a;
    assert!(lab.rx(1, bad).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::IcmpUnhandled), 1);
    let before = traffic(&lab);
    let out = lab.rx(1, err);
    // Counted as the session's traffic from the server's side, as IPVS's
    // handle_response_icmp counts it: 56 bytes (IP 20, ICMP 8, quote 28).
    let after = traffic(&lab);
    assert_eq!((after[1].0 - before[1].0, after[1].1 - before[1].1), (1, 56), "the real server's out");
    assert_eq!((after[3].0 - before[3].0, after[3].1 - before[3].1), (1, 56), "the service's out");
    assert_eq!((after[0], after[2]), (before[0], before[2]), "nothing in");
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
    let before = traffic(&lab);
    let out = lab.rx(0, icmp_error(CLIENT_MAC, GW_OUT.0, CLIENT, VIP, ttl, &reply));
    let after = traffic(&lab);
    assert_eq!(
        (after[0].0 - before[0].0, after[2].0 - before[2].0),
        (1, 1),
        "in, as ip_vs_in_icmp counts it"
    );
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

/// A router's "fragmentation needed" (MTU 1400) about a real server's reply
/// VIP:80 -> CLIENT:40000 that bypassed the gateway: addressed to the VIP,
/// from the router on the client side, quoting `quote` bytes of the reply
/// (Linux quotes up to 576 bytes in all).
fn frag_needed_about_a_reply(quote: usize) -> Vec<u8> {
    let mut reply = vec![];
    PacketBuilder::ethernet2(RS_MAC[0], CLIENT_MAC)
        .ipv4(VIP, CLIENT, 63)
        .tcp(80, 40000, 5000, 64000)
        .ack(1)
        .write(&mut reply, &vec![0x5a; 1400])
        .unwrap();
    let mtu =
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 });
    let mut f = vec![];
    PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0)
        .ipv4(ROUTER, VIP, 64)
        .icmpv4(mtu)
        .write(&mut f, &reply[14..14 + quote])
        .unwrap();
    f
}

/// A lab with one TCP connection CLIENT:40000 -> VIP:80 in `mode` to RS[0].
fn lab_with_connection(mode: ForwardMode, inside_mtu: u16) -> Lab {
    let mut lab = Lab::with_mtu(64, (1024, 65535), inside_mtu).with_mode(Scheduler::Rr, mode, 80);
    lab.learn_neighbours();
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    assert_eq!(out[0].0, 1);
    lab
}

#[test]
fn dr_frag_needed_about_a_reply_goes_to_the_real_server_with_only_the_macs_changed() {
    let mut lab = lab_with_connection(ForwardMode::Route, 1500);
    let err = frag_needed_about_a_reply(548);
    let before = traffic(&lab);
    let out = lab.rx(0, err.clone());
    let after = traffic(&lab);
    assert_eq!(after[0].1 - before[0].1, (err.len() - 14) as u64, "counted in, its IP length");
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!(*port, 1, "toward the real servers");
    assert_eq!(&f[0..6], &RS_MAC[0], "destination MAC = the session's real server");
    assert_eq!(&f[6..12], &GW_IN.0, "source MAC = the gateway's port");
    assert_eq!(&f[12..], &err[12..], "IP header, ICMP and quote untouched, TTL included");
    // And it still reads as the router's error about the reply.
    let (osrc, odst, qsrc, qdst, t) = read_error(f);
    assert_eq!((osrc, odst), (ROUTER, VIP));
    assert_eq!((qsrc, qdst), ((VIP, 80), (CLIENT, 40000)));
    assert!(matches!(
        t,
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 })
    ));
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsForwarded), 1);
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsTranslated), 0);
    assert_eq!(lab.counters.drop_count(Drop::IcmpUnknownFlow), 0);
}

#[test]
fn dr_time_exceeded_and_port_unreachable_are_forwarded_too_even_at_ttl_one() {
    let mut lab = lab_with_connection(ForwardMode::Route, 1500);
    let mut reply = vec![];
    PacketBuilder::ethernet2(RS_MAC[0], CLIENT_MAC)
        .ipv4(VIP, CLIENT, 1)
        .tcp(80, 40000, 5000, 64000)
        .write(&mut reply, b"x")
        .unwrap();
    let types = [
        Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit),
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
    ];
    for t in types {
        let mut err = icmp_error(ROUTER_MAC, GW_OUT.0, ROUTER, VIP, t, &reply);
        // The error itself arrives with TTL 1: DR hands it on untouched.
        err[22] = 1;
        err[24..26].copy_from_slice(&[0, 0]);
        let c =
            etherparse::Ipv4HeaderSlice::from_slice(&err[14..34]).unwrap().to_header().calc_header_checksum();
        err[24..26].copy_from_slice(&c.to_be_bytes());
        let out = lab.rx(0, err.clone());
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].1[0..6], &RS_MAC[0]);
        assert_eq!(&out[0].1[12..], &err[12..]);
    }
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsForwarded), 2);
    assert_eq!(lab.counters.drop_count(Drop::TtlExceeded), 0);
}

#[test]
fn tun_frag_needed_about_a_reply_goes_to_the_real_server_in_ip_in_ip() {
    let mut lab = lab_with_connection(ForwardMode::Tunnel, 1500);
    let err = frag_needed_about_a_reply(548);
    let out = lab.rx(0, err.clone());
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!(*port, 1);
    assert_eq!(&f[0..6], &RS_MAC[0]);
    assert_eq!(&f[6..12], &GW_IN.0);
    assert_eq!(&f[12..14], &[0x08, 0x00]);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(outer)) = p.net else { panic!() };
    let h = outer.header().to_header();
    assert_eq!(h.protocol, etherparse::IpNumber(4), "IP-in-IP");
    assert_eq!((h.source, h.destination), (GW_IN_ADDR, RS[0]));
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(h.total_len as usize, 20 + err.len() - 14);
    assert_eq!(h.time_to_live, 64, "outer TTL copies the error's");
    assert_eq!(h.dont_fragment, err[20] & 0x40 != 0, "DF copied from the error (IPVS)");
    assert_eq!(&f[34..], &err[14..], "the inner error is the router's, byte for byte");
    // The inner packet reads as the router's error about the reply.
    let inner = [&f[..14], &f[34..]].concat();
    let (osrc, odst, qsrc, qdst, _) = read_error(&inner);
    assert_eq!((osrc, odst), (ROUTER, VIP));
    assert_eq!((qsrc, qdst), ((VIP, 80), (CLIENT, 40000)));
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsForwarded), 1);
}

#[test]
fn tun_an_error_too_big_for_the_tunnel_is_dropped_never_answered_with_an_error() {
    // Inside MTU 500: the client's SYN fits, a 576-byte error plus the outer
    // header does not.
    let mut lab = lab_with_connection(ForwardMode::Tunnel, 500);
    let mut err = frag_needed_about_a_reply(548);
    // DF set on the error: still no "fragmentation needed" about an error.
    err[20] |= 0x40;
    err[24..26].copy_from_slice(&[0, 0]);
    let c = etherparse::Ipv4HeaderSlice::from_slice(&err[14..34]).unwrap().to_header().calc_header_checksum();
    err[24..26].copy_from_slice(&c.to_be_bytes());
    assert!(lab.rx(0, err).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::TunnelTooBig), 1);
    assert_eq!(lab.counters.event_count(Event::IcmpFragNeededSent), 0);
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsForwarded), 0);
    // A short quote fits and goes through.
    let out = lab.rx(0, frag_needed_about_a_reply(28));
    assert_eq!(out.len(), 1);
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsForwarded), 1);
}

#[test]
fn dr_an_error_about_a_client_packet_or_an_unknown_reply_is_not_forwarded() {
    let mut lab = lab_with_connection(ForwardMode::Route, 1500);
    // Quoting the client's own packet (client -> VIP): no session has that
    // as its reverse.
    let syn = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false);
    let t = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Host);
    assert!(lab.rx(0, icmp_error(ROUTER_MAC, GW_OUT.0, ROUTER, VIP, t.clone(), &syn)).is_empty());
    // Quoting a reply to another client port.
    let other = tcp(RS_MAC[0], GW_OUT, (VIP, 80), (CLIENT, 40001), false, true);
    assert!(lab.rx(0, icmp_error(ROUTER_MAC, GW_OUT.0, ROUTER, VIP, t, &other)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::IcmpUnknownFlow), 2);
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsForwarded), 0);
}

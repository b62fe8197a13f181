//! NAT (`-m`), DR (`-g`) and TUN (`-i`) through `Worker<Vec<u8>>`, beside
//! FULLNAT: rewritten frames checked with `etherparse`, TTL handling, the DR
//! frame identical but for the MACs, the TUN inner packet identical to the
//! input, MTU handling, input-only TCP state, and bad input per mode.

mod common;

use std::net::Ipv4Addr;

use common::*;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_core::counters::{Drop, Event};
use gw_proto::{ForwardMode, Protocol, Request, Response, Scheduler};

fn dest_line(lab: &Lab, proto: Protocol) -> gw_proto::ServiceInfo {
    let Response::Services { services, .. } = lab.control.query(Request::List { service: None }) else {
        panic!()
    };
    services.into_iter().find(|s| s.spec.key.proto == proto).unwrap()
}

#[test]
fn nat_rewrites_the_destination_only_and_the_reply_source_back_to_the_vip() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Masq, 8080);
    lab.learn_neighbours();
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    let (port, f) = &out[0];
    assert_eq!(*port, 1);
    let (smac, dmac, src, dst, ttl) = inspect(f);
    assert_eq!((smac, dmac), (GW_IN.0, RS_MAC[0]));
    assert_eq!(src, (CLIENT, 40000), "the real server sees the real client");
    assert_eq!(dst, (RS[0], 8080), "port mapping 80 -> 8080");
    assert_eq!(ttl, 63);
    // The real server's reply goes to the client through the gateway (its default route).
    let out = lab.rx(1, tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (CLIENT, 40000), true, true));
    let (port, f) = &out[0];
    assert_eq!(*port, 0);
    let (smac, dmac, src, dst, ttl) = inspect(f);
    assert_eq!((smac, dmac), (GW_OUT.0, CLIENT_MAC));
    assert_eq!((src, dst), ((VIP, 80), (CLIENT, 40000)));
    assert_eq!(ttl, 63);
    // UDP too.
    let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
    let (_, _, src, dst, _) = inspect(&out[0].1);
    assert_eq!((src, dst), ((CLIENT, 5353), (RS[0], 8080)));
    let out = lab.rx(1, udp(RS_MAC[0], GW_IN, (RS[0], 8080), (CLIENT, 5353)));
    let (_, _, src, dst, _) = inspect(&out[0].1);
    assert_eq!((src, dst), ((VIP, 80), (CLIENT, 5353)));
    let svc = dest_line(&lab, Protocol::Tcp);
    assert_eq!(svc.dests[0].spec.mode, ForwardMode::Masq);
    assert_eq!((svc.stats.inpkts, svc.stats.outpkts), (1, 1));
}

#[test]
fn a_nat_reply_from_an_unknown_flow_is_counted_and_other_flows_go_on() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Masq, 8080);
    lab.learn_neighbours();
    assert_eq!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5000), (VIP, 80))).len(), 1);
    assert!(lab.rx(1, udp(RS_MAC[0], GW_IN, (RS[0], 8080), (CLIENT, 6000))).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::UnknownReply), 1);
    assert_eq!(lab.rx(1, udp(RS_MAC[0], GW_IN, (RS[0], 8080), (CLIENT, 5000))).len(), 1);
}

#[test]
fn dr_changes_only_the_macs_and_tracks_tcp_from_the_client_side() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Route, 80);
    lab.learn_neighbours();
    let syn = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false);
    let out = lab.rx(0, syn.clone());
    let (port, f) = &out[0];
    assert_eq!(*port, 1);
    assert_eq!(&f[0..6], &RS_MAC[0], "destination MAC = the real server's");
    assert_eq!(&f[6..12], &GW_IN.0, "source MAC = the gateway's port");
    assert_eq!(&f[12..], &syn[12..], "IP and L4 untouched, TTL included");
    // ACK from the client: ESTABLISHED through the input-only table.
    lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true));
    assert_eq!(dest_line(&lab, Protocol::Tcp).dests[0].active_conns, 1);
    // FIN: FIN_WAIT (input-only), no longer active.
    let mut fin = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true);
    fin[14 + 20 + 13] |= 0x01;
    let tcp_csum = {
        let p = SlicedPacket::from_ethernet(&fin).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else { panic!() };
        t.to_header().calc_checksum_ipv4_raw(CLIENT, VIP, t.payload()).unwrap()
    };
    fin[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&tcp_csum.to_be_bytes());
    assert_eq!(lab.rx(0, fin).len(), 1);
    let svc = dest_line(&lab, Protocol::Tcp);
    assert_eq!((svc.dests[0].active_conns, svc.dests[0].inactive_conns), (0, 1));
    assert_eq!((svc.stats.inpkts, svc.stats.outpkts), (3, 0));
    // Nothing comes back through the gateway in DR: a packet from the real
    // server is not a reply to anything.
    assert!(lab.rx(1, tcp(RS_MAC[0], GW_IN, (VIP, 80), (CLIENT, 40000), true, true)).is_empty());
}

#[test]
fn tun_wraps_the_untouched_packet_in_ip_in_ip_to_the_real_server() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Tunnel, 80);
    lab.learn_neighbours();
    let pkt = udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80));
    let out = lab.rx(0, pkt.clone());
    let (port, f) = &out[0];
    assert_eq!(*port, 1);
    assert_eq!(&f[0..6], &RS_MAC[0]);
    assert_eq!(&f[6..12], &GW_IN.0);
    assert_eq!(&f[12..14], &[0x08, 0x00]);
    assert_eq!(&f[34..], &pkt[14..], "the inner packet is the client's, byte for byte");
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(outer)) = p.net else { panic!() };
    let h = outer.header().to_header();
    assert_eq!(h.protocol, etherparse::IpNumber(4));
    assert_eq!((h.source, h.destination), ([198, 18, 1, 1], RS[0]));
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(h.time_to_live, 64, "outer TTL copies the inner TTL, as IPVS");
    let inner = SlicedPacket::from_ip(&f[34..]).unwrap();
    let Some(TransportSlice::Udp(u)) = inner.transport else { panic!() };
    assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv4_raw(CLIENT, VIP, u.payload()).unwrap());
    assert_eq!(dest_line(&lab, Protocol::Udp).dests[0].spec.mode, ForwardMode::Tunnel);
}

fn big_udp(df: bool, payload: usize) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
        .ipv4(CLIENT, VIP, 64)
        .udp(7000, 80)
        .write(&mut out, &vec![1u8; payload])
        .unwrap();
    if !df {
        out[20] &= !0x40;
        out[24] = 0;
        out[25] = 0;
        let c =
            etherparse::Ipv4HeaderSlice::from_slice(&out[14..34]).unwrap().to_header().calc_header_checksum();
        out[24..26].copy_from_slice(&c.to_be_bytes());
    }
    out
}

#[test]
fn tun_packets_too_big_for_the_mtu_get_frag_needed_or_go_as_outer_fragments() {
    let mut lab = Lab::with_mtu(64, (1024, 65535), 1000).with_mode(Scheduler::Rr, ForwardMode::Tunnel, 80);
    lab.learn_neighbours();
    // 20 + 8 + 960 = 988 bytes inner; +20 outer = 1008 > 1000.
    let out = lab.rx(0, big_udp(true, 960));
    assert_eq!(out.len(), 1);
    let (port, f) = &out[0];
    assert_eq!(*port, 0, "answered back toward the client");
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    assert_eq!(ip.header().destination(), CLIENT);
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else { panic!() };
    assert!(matches!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 980 }
        )
    ));
    assert_eq!(lab.counters.event_count(Event::IcmpFragNeededSent), 1);
    // As IPVS, the refused packet was counted in its session's statistics.
    let svc = dest_line(&lab, Protocol::Udp);
    assert_eq!((svc.stats.conns, svc.stats.inpkts), (1, 1));
    // Without DF: the outer packet goes out as fragments (as IPVS).
    let out = lab.rx(0, big_udp(false, 960));
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|(p, f)| *p == 1 && f.len() - 14 <= 1000));
    assert_eq!(lab.counters.drop_count(Drop::TunnelTooBig), 0);
    // One that fits goes through, encapsulated.
    let out = lab.rx(0, big_udp(true, 940));
    assert_eq!(out[0].0, 1);
    assert_eq!(out[0].1.len(), 14 + 20 + 20 + 8 + 940);
}

#[test]
fn a_service_may_mix_modes_and_each_server_gets_its_own() {
    let mut lab = Lab::new(64, (1024, 65535));
    lab.ok(Request::AddService { spec: gw_proto::ServiceSpec::new(key(Protocol::Udp), Scheduler::Rr) });
    // Last to first: the NAT server heads the list (IPVS's order).
    for (rs, mode) in RS.iter().zip([ForwardMode::Masq, ForwardMode::Route]).rev() {
        let dest = gw_proto::DestSpec::new(Ipv4Addr::from(*rs), 80, mode, 1);
        lab.ok(Request::AddDest { service: key(Protocol::Udp), dest });
    }
    lab.learn_neighbours();
    let first = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 1), (VIP, 80)));
    let second_in = udp(CLIENT_MAC, GW_OUT, (CLIENT, 2), (VIP, 80));
    let second = lab.rx(0, second_in.clone());
    assert_eq!(inspect(&first[0].1).3, (RS[0], 80), "NAT: destination rewritten");
    assert_eq!(inspect(&first[0].1).4, 63);
    assert_eq!(&second[0].1[12..], &second_in[12..], "DR: untouched");
}

#[test]
fn nat_ttl_of_one_is_not_forwarded() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Masq, 8080);
    lab.learn_neighbours();
    let mut f = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
        .ipv4(CLIENT, VIP, 1)
        .udp(9, 80)
        .write(&mut f, b"x")
        .unwrap();
    assert!(lab.rx(0, f).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::TtlExceeded), 1);
}

/// IPVS's ActiveConn/InActConn as the kernel counts them since Linux 4.7
/// (`tcp_state_active_table`): the handshake's states are active, the
/// closing ones inactive. So lc sends the next connection away from a
/// server that leaves a SYN unanswered (counted active, 256 in its
/// overhead), where counting only ESTABLISHED as active tied it with a
/// server that holds one closing connection, and the tie went to it.
#[test]
fn handshake_states_count_as_active_and_lc_avoids_a_server_that_leaves_a_syn_unanswered() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Lc, ForwardMode::Masq, 8080);
    lab.learn_neighbours();
    let counts = |lab: &Lab| -> Vec<(u64, u64)> {
        dest_line(lab, Protocol::Tcp).dests.iter().map(|d| (d.active_conns, d.inactive_conns)).collect()
    };
    let to_server = |lab: &mut Lab, cport: u16, syn: bool, ack: bool| {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), syn, ack));
        assert_eq!(out.len(), 1, "forwarded");
        inspect(&out[0].1).3 .0
    };
    // A SYN the first server never answers: SYN_RECV, active at once.
    assert_eq!(to_server(&mut lab, 40000, true, false), RS[0]);
    assert_eq!(counts(&lab), [(1, 0), (0, 0)]);
    // The second server's handshake: active throughout.
    assert_eq!(to_server(&mut lab, 40001, true, false), RS[1], "lc: the idle server");
    assert_eq!(counts(&lab), [(1, 0), (1, 0)]);
    assert_eq!(lab.rx(1, tcp(RS_MAC[1], GW_IN, (RS[1], 8080), (CLIENT, 40001), true, true)).len(), 1);
    assert_eq!(counts(&lab), [(1, 0), (1, 0)], "SYN_RECV still");
    assert_eq!(to_server(&mut lab, 40001, false, true), RS[1]);
    assert_eq!(counts(&lab), [(1, 0), (1, 0)], "ESTABLISHED");
    // The client closes: CLOSE_WAIT is inactive.
    let mut fin = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40001), (VIP, 80), false, true);
    fin[14 + 20 + 13] |= 0x01;
    let csum = {
        let p = SlicedPacket::from_ethernet(&fin).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else { panic!() };
        t.to_header().calc_checksum_ipv4_raw(CLIENT, VIP, t.payload()).unwrap()
    };
    fin[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&csum.to_be_bytes());
    assert_eq!(lab.rx(0, fin).len(), 1);
    assert_eq!(counts(&lab), [(1, 0), (0, 1)]);
    // Overheads 256 and 1: the next connection goes to the second server.
    assert_eq!(to_server(&mut lab, 40002, true, false), RS[1]);
    assert_eq!(counts(&lab), [(1, 0), (1, 1)]);
}

/// One-packet scheduling (`-o`) keeps no session beyond what a datagram
/// needs, as IPVS and DPVS keep none: a DR or TUN session ends with its
/// datagram (nothing listed or counted after it); a NAT or FULLNAT one
/// carries its answer back to the client and ends with it, a second
/// answer finding none.
#[test]
fn one_packet_sessions_end_with_their_datagram_or_its_answer() {
    for mode in [ForwardMode::FullNat, ForwardMode::Masq, ForwardMode::Route, ForwardMode::Tunnel] {
        let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, mode, 8080);
        lab.learn_neighbours();
        let mut spec = gw_proto::ServiceSpec::new(key(Protocol::Udp), Scheduler::Rr);
        spec.one_packet = true;
        lab.ok(Request::EditService { spec });
        let live = |lab: &Lab| lab.counters.event_count(Event::SessionsLive);
        let inactive =
            |lab: &Lab| dest_line(lab, Protocol::Udp).dests.iter().map(|d| d.inactive_conns).sum::<u64>();
        let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
        assert_eq!(out.len(), 1, "{mode:?}: the datagram is forwarded");
        if matches!(mode, ForwardMode::Route | ForwardMode::Tunnel) {
            assert_eq!((live(&lab), inactive(&lab)), (0, 0), "{mode:?}: no session after the datagram");
            assert_eq!(lab.counters.event_count(Event::SessionsExpired), 1, "{mode:?}");
            continue;
        }
        assert_eq!((live(&lab), inactive(&lab)), (1, 1), "{mode:?}: kept for the answer");
        // The answer as the server sends it: to the client (NAT) or to the
        // local address and port the datagram came from (FULLNAT).
        let (_, _, src, dst, _) = inspect(&out[0].1);
        let answer = || udp(RS_MAC[0], GW_IN, dst, src);
        let back = lab.rx(1, answer());
        assert_eq!(back.len(), 1, "{mode:?}: the answer goes back");
        let (_, _, bsrc, bdst, _) = inspect(&back[0].1);
        assert_eq!((bsrc, bdst), ((VIP, 80), (CLIENT, 5353)), "{mode:?}");
        assert_eq!((live(&lab), inactive(&lab)), (0, 0), "{mode:?}: ended with its answer");
        assert!(lab.rx(1, answer()).is_empty(), "{mode:?}: a second answer finds no session");
        assert_eq!(lab.counters.drop_count(Drop::UnknownReply), 1, "{mode:?}");
    }
}

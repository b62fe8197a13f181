//! The FULLNAT packet path end to end through `Worker<Vec<u8>>` (see
//! `common`): frames built and checked with `etherparse`.

mod common;

use std::net::Ipv4Addr;

use common::*;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_core::counters::{Drop, Event};
use gw_core::engine::NoDest;
use gw_proto::{Protocol, Request, Response, Scheduler};

#[test]
fn arp_for_a_vip_is_answered_with_the_port_mac() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    let out = lab.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
    let (port, f) = &out[0];
    assert_eq!(*port, 0);
    // ARP fields by their RFC 826 offsets (etherparse 0.16 has no ARP).
    let a = &f[14..];
    assert_eq!(&a[6..8], &[0, 2], "reply");
    assert_eq!(&a[8..14], &GW_OUT.0);
    assert_eq!(&a[14..18], &VIP);
    assert_eq!(&a[18..24], &CLIENT_MAC);
    assert_eq!(&a[24..28], &CLIENT);
    assert_eq!(&f[0..6], &CLIENT_MAC);
    // The local address is answered on the inside port.
    let out = lab.rx(1, arp_request(RS_MAC[0], RS[0], LIP));
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].1[14 + 14..14 + 18], &LIP);
    assert_eq!(&out[0].1[14 + 8..14 + 14], &GW_IN.0);
    // An address that is not ours gets no answer.
    assert!(lab.rx(0, arp_request(CLIENT_MAC, CLIENT, [198, 18, 0, 99])).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::ArpNotForUs), 1);
}

#[test]
fn fullnat_tcp_both_directions_with_arp_resolution_on_the_way() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
    // The SYN waits for the real server's MAC; an ARP request goes out.
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    assert_eq!(out.len(), 1);
    let (port, req) = &out[0];
    assert_eq!(*port, 1);
    let a = &req[14..];
    assert_eq!(&req[0..6], &[0xff; 6]);
    assert_eq!(&a[0..8], &[0, 1, 8, 0, 6, 4, 0, 1], "Ethernet/IPv4 request");
    assert_eq!(&a[8..14], &GW_IN.0);
    assert_eq!(&a[14..18], &[198, 18, 1, 1]);
    assert_eq!(&a[24..28], &RS[0]);
    assert_eq!(lab.counters.event_count(Event::NeighHeld), 1);
    // The reply releases it, rewritten LIP:lport -> RIP:rport.
    let out = lab.rx(1, arp_reply(RS_MAC[0], RS[0], GW_IN, [198, 18, 1, 1]));
    assert_eq!(out.len(), 1);
    let (port, syn) = &out[0];
    assert_eq!(*port, 1);
    let (smac, dmac, src, dst, ttl) = inspect(syn);
    assert_eq!((smac, dmac), (GW_IN.0, RS_MAC[0]));
    assert_eq!(src.0, LIP);
    assert_eq!(dst, (RS[0], 8080));
    assert_eq!(ttl, 63);
    let lport = src.1;
    // The real server answers LIP:lport; the client gets VIP:80.
    let out = lab.rx(1, tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, lport), true, true));
    let (port, synack) = &out[0];
    assert_eq!(*port, 0);
    let (smac, dmac, src, dst, _) = inspect(synack);
    assert_eq!((smac, dmac), (GW_OUT.0, CLIENT_MAC));
    assert_eq!(src, (VIP, 80));
    assert_eq!(dst, (CLIENT, 40000));
    // The client's ACK and data go through the same session.
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true));
    let (_, _, src, dst, _) = inspect(&out[0].1);
    assert_eq!((src, dst), ((LIP, lport), (RS[0], 8080)));
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 1);
    assert_eq!(lab.counters.event_count(Event::FwdIn), 2);
    assert_eq!(lab.counters.event_count(Event::FwdOut), 1);
    let Response::Services { services, .. } = lab.control.query(Request::List { service: None }) else {
        panic!()
    };
    let tcp_svc = services.iter().find(|s| s.spec.key.proto == Protocol::Tcp).unwrap();
    assert_eq!(tcp_svc.dests[0].active_conns, 1, "ESTABLISHED after the ACK");
    assert_eq!(tcp_svc.stats.conns, 1);
    assert_eq!(tcp_svc.stats.inpkts, 2);
    assert_eq!(tcp_svc.stats.outpkts, 1);
}

#[test]
fn fullnat_udp_both_directions() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Wrr);
    lab.learn_neighbours();
    let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
    let (_, dmac, src, dst, _) = inspect(&out[0].1);
    assert_eq!(dmac, RS_MAC[0]);
    assert_eq!(src.0, LIP);
    assert_eq!(dst, (RS[0], 8080));
    let out = lab.rx(1, udp(RS_MAC[0], GW_IN, (RS[0], 8080), src));
    let (_, dmac, src, dst, _) = inspect(&out[0].1);
    assert_eq!(dmac, CLIENT_MAC);
    assert_eq!((src, dst), ((VIP, 80), (CLIENT, 5353)));
}

#[test]
fn new_connections_alternate_and_a_deleted_server_gets_no_new_ones() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let mut seen = vec![];
    for cport in 40000..40004 {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), true, false));
        seen.push(inspect(&out[0].1).3 .0);
    }
    assert_eq!(seen, vec![RS[0], RS[1], RS[0], RS[1]]);
    lab.ok(Request::DelDest { service: key(Protocol::Tcp), addr: Ipv4Addr::from(RS[0]).into(), port: 8080 });
    for cport in 41000..41004 {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), true, false));
        assert_eq!(inspect(&out[0].1).3 .0, RS[1]);
    }
    // Packets of a session on the deleted server: dropped until it is
    // re-added (IPVS's expire_nodest_conn = 0).
    assert!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::DestUnavailable), 1);
}

/// The TCP service's listing: (real server, ActiveConn, InPkts) per server.
fn tcp_dests(lab: &Lab) -> Vec<([u8; 4], u64, u64)> {
    let Response::Services { services, .. } = lab.control.query(Request::List { service: None }) else {
        panic!()
    };
    let svc = services.iter().find(|s| s.spec.key.proto == Protocol::Tcp).expect("the TCP service is listed");
    svc.dests
        .iter()
        .map(|d| (gw_proto::v4(d.spec.addr).unwrap().octets(), d.active_conns, d.stats.inpkts))
        .collect()
}

/// `[ipvs] nodest_conn = "forward"` (gatewayd's own; the default drops
/// until re-added, as IPVS: see `conn_reuse.rs`).
#[test]
fn a_trashed_server_keeps_its_sessions_and_takes_them_back_when_re_added() {
    let mut lab =
        LabConfig { sessions: 64, lports: (1024, 65535), nodest: NoDest::Forward, ..LabConfig::default() }
            .build()
            .with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let client = |lab: &mut Lab, syn: bool| {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), syn, !syn));
        out.first().map(|(_, f)| inspect(f))
    };
    let (_, _, local, rs, _) = client(&mut lab, true).unwrap();
    assert_eq!(rs, (RS[0], 8080));
    lab.rx(1, tcp(RS_MAC[0], GW_IN, rs, local, true, true));
    client(&mut lab, false).unwrap();
    assert_eq!(tcp_dests(&lab)[0], (RS[0], 1, 2), "ESTABLISHED on RS[0]");
    let server = |lab: &mut Lab| {
        let out = lab.rx(1, tcp(RS_MAC[0], GW_IN, rs, local, false, true));
        out.first().map(|(_, f)| inspect(f))
    };
    let tcp_key = key(Protocol::Tcp);
    let rs0 = gw_proto::DestSpec::new(Ipv4Addr::from(RS[0]), 8080, gw_proto::ForwardMode::FullNat, 1);
    // -d: not listed, never scheduled, but the session forwards both ways.
    lab.ok(Request::DelDest { service: tcp_key, addr: rs0.addr, port: 8080 });
    assert_eq!(tcp_dests(&lab).iter().map(|d| d.0).collect::<Vec<_>>(), vec![RS[1]]);
    assert_eq!(client(&mut lab, false).unwrap().3, rs);
    assert_eq!(server(&mut lab).unwrap().3, (CLIENT, 40000));
    for cport in 41000..41003 {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), true, false));
        assert_eq!(inspect(&out[0].1).3, (RS[1], 8080), "nothing new goes to a trashed server");
    }
    // -a of the same server: its slot, its session and its counters are back.
    lab.ok(Request::AddDest { service: tcp_key, dest: rs0 });
    assert!(tcp_dests(&lab).contains(&(RS[0], 1, 3)), "{:?}", tcp_dests(&lab));
    assert_eq!(client(&mut lab, false).unwrap().3, rs);
    // -C then -R of the same rules: the same again.
    lab.ok(Request::Clear);
    assert_eq!(client(&mut lab, false).unwrap().3, rs);
    let rules = vec![
        Request::AddService { spec: gw_proto::ServiceSpec::new(tcp_key, Scheduler::Rr) },
        Request::AddDest { service: tcp_key, dest: rs0 },
        Request::AddLaddr { service: tcp_key, addr: Ipv4Addr::from(LIP).into() },
    ];
    lab.ok(Request::Restore { requests: rules });
    assert_eq!(tcp_dests(&lab), vec![(RS[0], 1, 5)]);
    assert_eq!(client(&mut lab, false).unwrap().3, rs);
    assert_eq!(server(&mut lab).unwrap().3, (CLIENT, 40000));
    assert_eq!(lab.counters.drop_count(Drop::DestUnavailable), 0);
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 4);
}

#[test]
fn local_ports_are_never_reused_toward_the_same_server_while_live() {
    // Three local ports only.
    let mut lab = Lab::new(64, (5000, 5002)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    lab.ok(Request::DelDest { service: key(Protocol::Tcp), addr: Ipv4Addr::from(RS[1]).into(), port: 8080 });
    let mut ports = vec![];
    for cport in 40000..40003 {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), true, false));
        ports.push(inspect(&out[0].1).2 .1);
    }
    ports.sort();
    assert_eq!(ports, vec![5000, 5001, 5002]);
    assert!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40003), (VIP, 80), true, false)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::LaddrExhausted), 1);
    // Once sessions expire (SYN_RECV: 60 s), the ports come back.
    lab.now += 61_000;
    lab.worker.tick(lab.now, &mut lab.io);
    assert_eq!(lab.counters.event_count(Event::SessionsExpired), 3);
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40003), (VIP, 80), true, false));
    assert_eq!(out.len(), 1);
}

/// The local address of a new flow is not a round robin in step with the
/// scheduler's: with 2 real servers and 2 local addresses under round
/// robin, each server meets both addresses (a service-wide rotation paired
/// RS 0 with one address and RS 1 with the other, forever).
#[test]
fn every_server_meets_every_local_address() {
    let mut lab = Lab::new(1024, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let lip2 = [198, 18, 1, 11];
    lab.ok(Request::AddLaddr { service: key(Protocol::Udp), addr: Ipv4Addr::from(lip2).into() });
    let mut pairs = std::collections::HashMap::new();
    for cport in 1000..1400 {
        let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80)));
        let (_, _, src, dst, _) = inspect(&out[0].1);
        *pairs.entry((dst.0, src.0)).or_insert(0) += 1;
    }
    for rs in RS {
        for lip in [LIP, lip2] {
            let n = pairs.get(&(rs, lip)).copied().unwrap_or(0);
            // 100 expected of 400; a binomial spread stays far above 50.
            assert!(n > 50, "{rs:?} with {lip:?}: {n} of 400 flows ({pairs:?})");
        }
    }
}

#[test]
fn a_full_table_drops_new_flows_and_keeps_existing_ones() {
    let mut lab = Lab::new(2, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    for cport in [1000, 1001] {
        assert_eq!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80))).len(), 1);
    }
    assert!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 1002), (VIP, 80))).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::TableFull), 1);
    assert_eq!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 1000), (VIP, 80))).len(), 1);
}

#[test]
fn ping_to_the_vip_is_answered() {
    let mut lab = Lab::new(8, (1024, 65535)).with_services(Scheduler::Rr);
    let mut f = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
        .ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut f, b"abcdefgh")
        .unwrap();
    let out = lab.rx(0, f);
    let p = SlicedPacket::from_ethernet(&out[0].1).unwrap();
    let Some(NetSlice::Ipv4(ip)) = p.net else { panic!() };
    let h = ip.header().to_header();
    assert_eq!((h.source, h.destination), (VIP, CLIENT));
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    match p.transport.unwrap() {
        TransportSlice::Icmpv4(i) => {
            assert!(matches!(i.icmp_type(), etherparse::Icmpv4Type::EchoReply(_)));
            let want = i.icmp_type().calc_checksum(i.payload());
            assert_eq!(i.checksum(), want);
        }
        _ => panic!(),
    }
}

#[test]
fn bad_frames_are_counted_by_reason_and_traffic_keeps_flowing() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let good = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false);
    let cases: Vec<(Vec<u8>, Drop)> = vec![
        (good[..10].to_vec(), Drop::EthTruncated),
        (good[..30].to_vec(), Drop::Ipv4Malformed),
        (
            {
                let mut f = good.clone();
                f[14] = 0x44;
                f
            },
            Drop::Ipv4Malformed,
        ), // IHL 4
        (
            {
                let mut f = good.clone();
                f[14] = 0x65;
                f
            },
            Drop::Ipv4Malformed,
        ), // version 6
        (
            {
                let mut f = good.clone();
                f[16] = 0x10;
                f
            },
            Drop::Ipv4Truncated,
        ), // total length beyond frame (af_packet: a kernel-reassembled datagram cut to the ring frame)
        (
            {
                let mut f = good.clone();
                f[24] ^= 0xff;
                f
            },
            Drop::Ipv4BadChecksum,
        ),
        (
            {
                let mut f = good.clone();
                f[5] = 0x77;
                f
            },
            Drop::NotOurMac,
        ),
        (
            {
                let mut f = good.clone();
                f[12] = 0x86;
                f[13] = 0xdd;
                f
            },
            // An IPv4 packet labelled IPv6, on the dual-stack port.
            Drop::Ipv6Malformed,
        ),
        (
            {
                let mut f = good.clone();
                f[12] = 0x81;
                f[13] = 0x00;
                f
            },
            Drop::UnsupportedEthertype,
        ),
        (tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 81), true, false), Drop::NoService),
        (tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), ([198, 18, 0, 50], 80), true, false), Drop::NotForUs),
        (tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true), Drop::NoSessionNotSyn),
        (tcp(CLIENT_MAC, GW_OUT, ([224, 0, 0, 1], 40000), (VIP, 80), true, false), Drop::BadSourceAddr),
        // A real server's address on the client side (strict rp_filter).
        (tcp(RS_MAC[0], GW_OUT, (RS[0], 8080), (LIP, 7777), true, true), Drop::ReversePath),
        (udp(CLIENT_MAC, GW_OUT, (CLIENT, 0), (VIP, 80)), Drop::L4Malformed),
    ];
    for (frame, why) in cases {
        let before = lab.counters.drop_count(why);
        // A SYN to a port without a service gets a port unreachable, an
        // ACK without a session a RST (tests/reject.rs); nothing else.
        let answered = matches!(why, Drop::NoService | Drop::NoSessionNotSyn);
        assert_eq!(lab.rx(0, frame).len(), usize::from(answered), "{why:?}");
        assert_eq!(lab.counters.drop_count(why), before + 1, "{why:?}");
    }
    // A SYN-ACK to a local port with no session: a RST goes back.
    assert_eq!(lab.rx(1, tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, 7777), true, true)).len(), 1);
    assert_eq!(lab.counters.drop_count(Drop::UnknownReply), 1);
    // Truncated TCP header inside a valid IPv4 packet.
    let mut f = good.clone();
    f.truncate(14 + 20 + 10);
    f[16] = 0;
    f[17] = 30;
    f[24] = 0;
    f[25] = 0;
    let c = etherparse::Ipv4HeaderSlice::from_slice(&f[14..34]).unwrap().to_header().calc_header_checksum();
    f[24..26].copy_from_slice(&c.to_be_bytes());
    assert!(lab.rx(0, f).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::L4Malformed), 2);
    // A fragment never creates a session.
    let mut f = good.clone();
    f[20] = 0x20; // MF
    let c = {
        f[24] = 0;
        f[25] = 0;
        etherparse::Ipv4HeaderSlice::from_slice(&f[14..34]).unwrap().to_header().calc_header_checksum()
    };
    f[24..26].copy_from_slice(&c.to_be_bytes());
    assert!(lab.rx(0, f).is_empty());
    // (20 bytes of SYN with MF set: a non-last fragment must carry a
    // multiple of 8 bytes.)
    assert_eq!(lab.counters.drop_count(Drop::FragMalformed), 1);
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 0);
    // And good traffic still flows.
    assert_eq!(lab.rx(0, good).len(), 1);
}

#[test]
fn a_syn_flood_fills_only_its_share_and_established_sessions_keep_working() {
    let mut lab = Lab::build(64, (1024, 65535), 1500, 8).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    // Two established connections.
    let mut est = vec![];
    for cport in [40000, 40001] {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), true, false));
        let (_, _, src, dst, _) = inspect(&out[0].1);
        lab.rx(1, tcp(RS_MAC[0], GW_IN, dst, src, true, true)); // SYN-ACK (to whichever server)
        lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), false, true));
        est.push(cport);
    }
    assert_eq!(lab.counters.event_count(Event::HalfOpen), 0);
    // A flood of SYNs from spoofed sources.
    let mut passed = 0;
    for i in 0..200u16 {
        let src = [198, 18, (i >> 8) as u8 + 10, i as u8];
        passed += lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (src, 1000 + i), (VIP, 80), true, false)).len();
    }
    assert_eq!(passed, 8, "only the half-open share gets sessions");
    assert_eq!(lab.counters.drop_count(Drop::HalfOpenLimit), 192);
    // Established connections are untouched and keep forwarding.
    for cport in est {
        assert_eq!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), false, true)).len(), 1);
    }
    // ACKs without a session never create one (the sender gets a RST,
    // through its router: here an ARP probe for it goes out first).
    let created = lab.counters.event_count(Event::SessionsCreated);
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, ([198, 18, 9, 9], 9), (VIP, 80), false, true));
    assert!(out.iter().all(|(port, _)| *port == 0), "nothing toward the real servers");
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), created);
    // When the half-open sessions expire (SYN_RECV 60 s), new clients get in again.
    lab.now += 61_000;
    lab.worker.tick(lab.now, &mut lab.io);
    lab.io.sent.clear(); // ARP probes for the router (the RST's next hop)
    assert_eq!(lab.counters.event_count(Event::HalfOpen), 0);
    assert_eq!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 50000), (VIP, 80), true, false)).len(), 1);
}

#[test]
fn a_frame_cut_at_every_length_is_dropped_with_a_reason_never_a_panic() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    for good in [
        tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false),
        udp(CLIENT_MAC, GW_OUT, (CLIENT, 5000), (VIP, 80)),
        arp_request(CLIENT_MAC, CLIENT, VIP),
    ] {
        for len in 0..good.len() - 4 {
            let drops = |lab: &Lab| Drop::ALL.iter().map(|d| lab.counters.drop_count(*d)).sum::<u64>();
            let before = drops(&lab);
            let out = lab.rx(0, good[..len].to_vec());
            assert!(out.is_empty(), "a {len}-byte cut was forwarded");
            assert_eq!(drops(&lab), before + 1, "a {len}-byte cut was not counted");
        }
    }
}

#[test]
fn unanswered_arp_drops_the_held_packets_with_a_reason() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    assert_eq!(out.len(), 1); // the ARP request
    let mut requests = 1;
    for _ in 0..50 {
        lab.now += 100;
        lab.worker.tick(lab.now, &mut lab.io);
        requests += std::mem::take(&mut lab.io.sent).len();
    }
    assert_eq!(requests, 3);
    assert_eq!(lab.counters.drop_count(Drop::NeighUnresolved), 1);
}

/// A reload (SIGHUP) that drops the service, then one that brings it back:
/// its session waits (IPVS's expire_nodest_conn = 0) and then resumes on
/// its old server with its counters.
#[test]
fn a_reload_that_drops_then_re_adds_a_service_resumes_its_sessions() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let client = |lab: &mut Lab, syn: bool| {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), syn, !syn));
        out.first().map(|(_, f)| inspect(f))
    };
    let (_, _, local, rs, _) = client(&mut lab, true).unwrap();
    lab.rx(1, tcp(RS_MAC[0], GW_IN, rs, local, true, true));
    client(&mut lab, false).unwrap();
    let tcp_key = key(Protocol::Tcp);
    let mut rules = vec![Request::AddService { spec: gw_proto::ServiceSpec::new(tcp_key, Scheduler::Rr) }];
    for r in RS {
        let dest = gw_proto::DestSpec::new(Ipv4Addr::from(r), 8080, gw_proto::ForwardMode::FullNat, 1);
        rules.push(Request::AddDest { service: tcp_key, dest });
    }
    rules.push(Request::AddLaddr { service: tcp_key, addr: Ipv4Addr::from(LIP).into() });
    assert_eq!(lab.control.sync(vec![]), Response::Ok);
    lab.worker.engine.set_snapshot(lab.publisher.current());
    assert!(client(&mut lab, false).is_none(), "dropped while the service is gone");
    assert_eq!(lab.counters.drop_count(Drop::DestUnavailable), 1);
    assert_eq!(lab.control.sync(rules), Response::Ok);
    lab.worker.engine.set_snapshot(lab.publisher.current());
    assert_eq!(client(&mut lab, false).map(|p| p.3), Some(rs), "resumed on its server");
    assert_eq!(tcp_dests(&lab).into_iter().find(|d| d.0 == RS[0]), Some((RS[0], 1, 3)), "with its counters");
}

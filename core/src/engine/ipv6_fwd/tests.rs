//! Tests of [`super`]: frames built by etherparse, what leaves checked by
//! etherparse (addresses, ports, hop limit, TCP/UDP checksums computed
//! independently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{Ipv6Header, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_proto::{ClientAddr, ForwardMode, Protocol as P, Scheduler, ServiceKey};
use proptest::prelude::*;

use super::*;
use crate::counters::WorkerCounters;
use crate::engine::EngineConfig;
use crate::route::{Iface, Routes};
use crate::sched::{DestConf, Prepared};
use crate::service::{Dest, Snapshot};
use crate::wire::ethernet::MacAddr;

pub(crate) const GW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
pub(crate) const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x42];
pub(crate) const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub(crate) const CIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
pub(crate) const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);
const LIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x60);
const RIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200);

fn service(mode: ForwardMode, proto: P, persistent: bool) -> Service {
    let dests =
        vec![Dest { slot: 0, addr: IpAddr::V6(RIP), port: 8080, mode, weight: 1, upper: 0, lower: 0 }];
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
        laddrs: vec![],
        laddrs6: vec![u128::from(LIP)],
        persistent_ms: persistent.then_some(60_000),
        netmask: u32::MAX,
        netmask6: u128::MAX,
        one_packet: false,
        sched_flags: 0,
        client_addr: ClientAddr::None,
        synproxy: false,
    }
}

/// An engine on one dual-stack port (2001:db8::1/64: client, VIP, local
/// address and real server all on link), `workers` workers, this one `worker`.
pub(crate) fn engine(svc: Service, worker: u32, workers: u32) -> Engine {
    let ifaces = vec![Iface {
        port: 0,
        addr: Ipv4Addr::new(198, 18, 0, 1),
        prefix: 24,
        addr6: Some((GW6, 64)),
        mac: GW_MAC,
        mtu: 1500,
        rp_filter: Default::default(),
    }];
    let cfg = EngineConfig {
        worker,
        workers,
        routes: Routes::dual(&ifaces, &[], &[]),
        ifaces,
        sessions: 64,
        sessions6: 16,
        lport_range: (1024, 65535),
        seed: 7,
        expire_budget: 64,
        max_services: 1,
        half_open_max: 16,
        half_open_max6: 16,
        conn_reuse: Default::default(),
        nodest: Default::default(),
        reject: Default::default(),
        kernel: vec![],
        synproxy_secret: 1,
        frag: crate::frag::FragConfig { datagrams: 1, timeout_ms: 1000 },
    };
    let snap = Arc::new(Snapshot::new(1, vec![Arc::new(svc)], 4));
    Engine::new(cfg, snap, Arc::new(WorkerCounters::new(worker, 0, 1, 4)), 0)
}

pub(crate) fn tcp_frame(
    src: (Ipv6Addr, u16),
    dst: (Ipv6Addr, u16),
    syn: bool,
    ack: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
        .ipv6(src.0.octets(), dst.0.octets(), 64)
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

pub(crate) fn udp_frame(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
        .ipv6(src.0.octets(), dst.0.octets(), 64)
        .udp(src.1, dst.1);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// What etherparse reads of a frame that leaves: (source, destination),
/// (source port, destination port), hop limit; panics unless the TCP/UDP
/// checksum is the one etherparse computes.
fn read(frame: &[u8]) -> ((Ipv6Addr, u16), (Ipv6Addr, u16), u8) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses it");
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
    let h: Ipv6Header = ip.header().to_header();
    let (sport, dport) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            assert_eq!(
                t.checksum(),
                t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap(),
                "TCP checksum"
            );
            (t.source_port(), t.destination_port())
        }
        Some(TransportSlice::Udp(u)) => {
            assert_eq!(
                u.checksum(),
                u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap(),
                "UDP checksum"
            );
            (u.source_port(), u.destination_port())
        }
        other => panic!("not TCP/UDP: {other:?}"),
    };
    ((Ipv6Addr::from(h.source), sport), (Ipv6Addr::from(h.destination), dport), h.hop_limit)
}

#[test]
fn fullnat66_rewrites_both_directions_and_counts() {
    let mut e = engine(service(ForwardMode::FullNat, P::Tcp, false), 0, 1);
    let mut syn = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    assert_eq!(e.process(0, 0, &mut syn), Action::Forward6 { port: 0, next_hop: u128::from(RIP) });
    let ((src, lport), (dst, rport), hops) = read(&syn);
    assert_eq!((src, dst, rport, hops), (LIP, RIP, 8080, 63));
    assert!(lport >= 1024);
    assert_eq!(e.sessions6.len(), 1);
    // The real server's SYN-ACK to LIP:lport goes back as VIP:80 -> client.
    let mut synack = tcp_frame((RIP, 8080), (LIP, lport), true, true, &[]);
    assert_eq!(e.process(1, 0, &mut synack), Action::Forward6 { port: 0, next_hop: u128::from(CIP) });
    assert_eq!(read(&synack), ((VIP, 80), (CIP, 40000), 63));
    // Data both ways, with a payload.
    let mut data = tcp_frame((CIP, 40000), (VIP, 80), false, true, b"GET / HTTP/1.0\r\n\r\n");
    assert!(matches!(e.process(2, 0, &mut data), Action::Forward6 { .. }));
    assert_eq!(read(&data), ((LIP, lport), (RIP, 8080), 63));
    let c = e.counters.clone();
    assert_eq!(c.dests[0].conns.get(), 1);
    assert_eq!((c.dests[0].inpkts.get(), c.dests[0].outpkts.get()), (2, 1));
    assert_eq!(c.dests[0].active.get(), 1, "ESTABLISHED after the client's ACK");
    assert_eq!(c.event_count(Event::FwdIn), 2);
    // The session expires with its accounting.
    assert_eq!(e.expire(1_000_000_000), 1);
    assert_eq!((c.dests[0].active.get(), c.dests[0].inactive.get()), (0, 0));
    assert_eq!(c.event_count(Event::HalfOpen), 0);
    assert!(e.sessions6.is_empty());
}

#[test]
fn fullnat66_local_ports_follow_the_worker_share() {
    for (w, nw) in [(0, 2), (1, 2), (2, 3)] {
        let mut e = engine(service(ForwardMode::FullNat, P::Udp, false), w, nw);
        for cport in 0..12 {
            let mut f = udp_frame((CIP, 30000 + cport), (VIP, 80), b"x");
            let a = e.process(0, 0, &mut f);
            assert!(matches!(a, Action::Forward6 { .. }), "{a:?}");
            let ((_, lport), _, _) = read(&f);
            assert_eq!(u32::from(lport) % nw, w, "worker {w} of {nw}");
        }
    }
}

#[test]
fn nat66_rewrites_the_destination_and_the_reply_source() {
    let mut e = engine(service(ForwardMode::Masq, P::Udp, false), 0, 1);
    let mut q = udp_frame((CIP, 5353), (VIP, 80), b"ping");
    assert_eq!(e.process(0, 0, &mut q), Action::Forward6 { port: 0, next_hop: u128::from(RIP) });
    assert_eq!(read(&q), ((CIP, 5353), (RIP, 8080), 63));
    let mut r = udp_frame((RIP, 8080), (CIP, 5353), b"pong");
    assert_eq!(e.process(1, 0, &mut r), Action::Forward6 { port: 0, next_hop: u128::from(CIP) });
    assert_eq!(read(&r), ((VIP, 80), (CIP, 5353), 63));
    // A reply that matches no session is named as such.
    let mut stray = udp_frame((RIP, 8080), (CIP, 5354), b"?");
    assert_eq!(e.process(2, 0, &mut stray), Action::Drop(Drop::UnknownReply));
}

#[test]
fn dr6_changes_nothing_in_l3_and_sends_to_the_real_server() {
    let mut e = engine(service(ForwardMode::Route, P::Tcp, false), 0, 1);
    let mut syn = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    let before = syn.clone();
    assert_eq!(e.process(0, 0, &mut syn), Action::Forward6 { port: 0, next_hop: u128::from(RIP) });
    assert_eq!(syn, before, "DR keeps the packet as it is (hop limit too)");
    assert_eq!(e.counters.dests[0].conns.get(), 1);
}

#[test]
fn synproxy_with_toa_answers_statelessly_and_nat64_without_a_laddr_is_a_counted_drop() {
    // SYNPROXY with a client-address option on an IPv6 service: the SYN
    // is answered with a cookie, no session, nothing counted as not built
    // (the whole handshake: worker/synproxy6_tests.rs).
    let mut svc = service(ForwardMode::FullNat, P::Tcp, false);
    svc.synproxy = true;
    svc.client_addr = ClientAddr::Toa;
    let mut e = engine(svc, 0, 1);
    let mut syn = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    assert!(matches!(e.process(0, 0, &mut syn), Action::Built6 { port: 0, .. }));
    assert!(e.sessions6.is_empty());
    assert_eq!(e.counters.event_count(Event::HalfOpen), 0);
    assert_eq!(e.counters.event_count(Event::SynproxySynAcks), 1);
    assert_eq!(e.counters.drop_count(Drop::Ipv6NotHandled), 0);
    // NAT64 (an IPv4 server behind the IPv6 VIP, engine/nat64.rs) binds an
    // IPv4 local address: without one, none.
    let mut svc = service(ForwardMode::FullNat, P::Tcp, false);
    svc.dests[0].addr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    let mut e = engine(svc, 0, 1);
    let mut syn = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    assert_eq!(e.process(0, 0, &mut syn), Action::Drop(Drop::NoLaddr));
    assert!(e.sessions6.is_empty());
}

#[test]
fn no_session_without_a_syn_no_service_no_local_address() {
    let mut e = engine(service(ForwardMode::FullNat, P::Tcp, false), 0, 1);
    let mut ack = tcp_frame((CIP, 40000), (VIP, 80), false, true, &[]);
    // Dropped for their reasons, and answered as IPv4's ([`super::reject`]).
    let rst = crate::engine::Reject::Rst;
    let why = Drop::NoSessionNotSyn;
    assert!(
        matches!(e.process(0, 0, &mut ack), Action::Reject6 { reply, why: w, .. } if reply == rst && w == why)
    );
    let mut other = tcp_frame((CIP, 40000), (VIP, 81), true, false, &[]);
    let unreach = crate::engine::Reject::PortUnreachable;
    assert!(matches!(
        e.process(0, 0, &mut other),
        Action::Reject6 { reply, why: Drop::NoService, .. } if reply == unreach
    ));
    let mut svc = service(ForwardMode::FullNat, P::Tcp, false);
    svc.laddrs6.clear();
    let mut e = engine(svc, 0, 1);
    let mut syn = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    assert_eq!(e.process(0, 0, &mut syn), Action::Drop(Drop::NoLaddr));
    assert_eq!(e.counters.event_count(Event::HalfOpen), 0);
    // A truncated TCP header is malformed, not a panic.
    let mut cut = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    cut.truncate(cut.len() - 4);
    assert!(matches!(e.process(0, 0, &mut cut), Action::Drop(_)));
}

proptest! {
    /// FULLNAT66 round trip: any addresses, ports and payload; the client's
    /// packet and the real server's reply leave with the session's
    /// addresses and ports and checksums etherparse agrees with.
    #[test]
    fn fullnat66_rewrite_round_trip(
        cip: u128, vip: u128, rip: u128, lip: u128,
        cport: u16, vport: u16, rport: u16, lport: u16, udp: bool,
        payload in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let proto = if udp { Protocol::Udp } else { Protocol::Tcp };
        let s = Session6::new(proto, (cip, cport), (vip, vport), (rip, rport), (lip, lport),
            State::None, ForwardMode::FullNat, 0, 0);
        let (c, v, r, l) = (Ipv6Addr::from(cip), Ipv6Addr::from(vip), Ipv6Addr::from(rip), Ipv6Addr::from(lip));
        let mk = |src, dst| if udp { udp_frame(src, dst, &payload) } else { tcp_frame(src, dst, false, true, &payload) };
        let mut f = mk((c, cport), (v, vport));
        let t = ipv6::Packet::new_checked(&f[ethernet::HEADER_LEN..]).unwrap().transport().unwrap();
        let p = l4_info(&f, &t).unwrap();
        xmit6(&s, false, true, &mut f, &p);
        prop_assert_eq!(read(&f), ((l, lport), (r, rport), 63));
        let mut f = mk((r, rport), (l, lport));
        let p = l4_info(&f, &t).unwrap();
        xmit6(&s, true, true, &mut f, &p);
        prop_assert_eq!(read(&f), ((v, vport), (c, cport), 63));
    }
}

#[test]
fn tun6_asks_the_worker_to_encapsulate_from_the_port_to_the_real_server() {
    let mut e = engine(service(ForwardMode::Tunnel, P::Tcp, false), 0, 1);
    let mut syn = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    let before = syn.clone();
    assert_eq!(
        e.process(0, 0, &mut syn),
        Action::Encap6 { port: 0, next_hop: u128::from(RIP), tun: gw_proto::TunnelEncap::Ipip }
    );
    assert_eq!(e.pending_encap6(), (u128::from(GW6), u128::from(RIP)));
    assert_eq!(syn, before, "the inner packet is not touched");
    assert!(e.sessions6.get(0).flags.contains(Flags::NO_OUT));
}

/// Persistence with `-M 64`: every client of a /64 goes to the server its
/// template names (round robin would alternate), the template counts its
/// connections and the real server's persist gauge it; once the
/// connections are gone the template lives its timeout, then goes.
#[test]
fn persistent_ipv6_services_keep_a_prefix_on_one_server() {
    let mut svc = service(ForwardMode::FullNat, P::Udp, true);
    svc.netmask6 = crate::service::mask6(64);
    let second = Dest {
        slot: 1,
        addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x201)),
        ..svc.dests[0].clone()
    };
    svc.dests.push(second);
    let confs: Vec<DestConf> = svc
        .dests
        .iter()
        .map(|d| DestConf { id: d.slot, ..DestConf::new(1, crate::service::sched_addr(d.addr), d.port) })
        .collect();
    svc.prep = Prepared::build(Scheduler::Rr, 0, &confs);
    let mut e = engine(svc, 0, 1);
    // A route back to the other /64 below (the reverse-path filter).
    let def = crate::route::Route6 { net: 0, prefix: 0, via: Some(u128::from(GW6) + 0xfd), port: 0 };
    e.cfg.routes = Routes::dual(&e.cfg.ifaces, &[], &[def]);
    let mut servers = vec![];
    for n in 0..4u16 {
        let client = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0x77, n);
        let mut f = udp_frame((client, 5000 + n), (VIP, 80), b"q");
        assert!(matches!(e.process(0, 0, &mut f), Action::Forward6 { .. }));
        servers.push(read(&f).1 .0);
    }
    assert!(servers.iter().all(|s| *s == servers[0]), "one server for the /64: {servers:?}");
    // Another /64 is scheduled anew: round robin's next server.
    let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1);
    let mut f = udp_frame((other, 5000), (VIP, 80), b"q");
    assert!(matches!(e.process(0, 0, &mut f), Action::Forward6 { .. }));
    assert_ne!(read(&f).1 .0, servers[0]);
    let c = e.counters.clone();
    assert_eq!(c.dests[0].persist.get() + c.dests[1].persist.get(), 2, "two templates");
    assert_eq!(e.sessions6.len(), 4 + 1 + 2);
    // UDP sessions end after the UDP timeout (300 s); the templates after
    // their 60 s more.
    e.expire(301_000);
    assert_eq!(e.sessions6.len(), 2, "the templates outlive their connections");
    e.expire(400_000);
    assert!(e.sessions6.is_empty());
    assert_eq!(c.dests[0].persist.get() + c.dests[1].persist.get(), 0);
}

/// A RST far outside the client's window is dropped before it can close
/// the session (RFC 5961, as for IPv4); one in sequence closes it.
#[test]
fn a_blind_rst_is_dropped_and_an_in_window_one_is_not() {
    let mut e = engine(service(ForwardMode::FullNat, P::Tcp, false), 0, 1);
    let mut syn = tcp_frame((CIP, 40000), (VIP, 80), true, false, &[]);
    assert!(matches!(e.process(0, 0, &mut syn), Action::Forward6 { .. }));
    let rst = |seq: u32| {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
            .ipv6(CIP.octets(), VIP.octets(), 64)
            .tcp(40000, 80, seq, 0)
            .rst()
            .write(&mut out, &[])
            .unwrap();
        out
    };
    let mut blind = rst(1000u32.wrapping_add(0x4000_0000));
    assert_eq!(e.process(1, 0, &mut blind), Action::Drop(Drop::TcpRstOutOfWindow));
    assert_eq!(e.sessions6.get(0).state, State::SynRecv, "the session is as it was");
    let mut good = rst(1001);
    assert!(matches!(e.process(2, 0, &mut good), Action::Forward6 { .. }));
    assert_eq!(read(&good).1, (RIP, 8080));
}

/// An Ethernet/IPv6 frame CIP:40000 -> VIP:80, TCP ACK or UDP with
/// `payload`, with a hop-by-hop options header (PadN) ahead of the
/// transport if `hop_by_hop`.
fn frame6(tcp: bool, hop_by_hop: bool, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0);
    let b = if hop_by_hop {
        let ext =
            etherparse::Ipv6RawExtHeader::new_raw(etherparse::IpNumber::TCP, &[1, 4, 0, 0, 0, 0]).unwrap();
        let ip = Ipv6Header {
            source: CIP.octets(),
            destination: VIP.octets(),
            hop_limit: 64,
            next_header: etherparse::IpNumber::IPV6_HEADER_HOP_BY_HOP,
            ..Default::default()
        };
        let exts = etherparse::Ipv6Extensions { hop_by_hop_options: Some(ext), ..Default::default() };
        b.ip(etherparse::IpHeaders::Ipv6(ip, exts))
    } else {
        b.ipv6(CIP.octets(), VIP.octets(), 64)
    };
    let mut f = Vec::new();
    if tcp {
        b.tcp(40000, 80, 7, 1000).ack(1).write(&mut f, payload).unwrap();
    } else {
        b.udp(40000, 80).write(&mut f, payload).unwrap();
    }
    f
}

/// What [`Engine::ipv6`]'s ladder hands the TCP/UDP step for `frame`
/// (the header's checks, the chain walk, a source that is not multicast
/// nor in `::/64`, no fragment, then [`l4_info`]), and the walk's
/// transport offset.
fn ladder6(frame: &[u8]) -> Option<(L4Info6, usize)> {
    let ip = ipv6::Packet::new_checked(frame.get(ethernet::HEADER_LEN..)?).ok()?;
    let t = ip.transport().ok()?;
    if ip.src_addr().is_multicast()
        || ip.src_addr().segments()[..4] == [0; 4]
        || t.fragment.is_some()
        || !matches!(t.protocol, NextHeader::Tcp | NextHeader::Udp)
    {
        return None;
    }
    Some((l4_info(frame, &t)?, t.offset))
}

proptest! {
    /// The plain reading of IPv6 TCP/UDP ([`l4_info_plain`]) agrees with
    /// the ladder on frames with a few bytes changed anywhere in their
    /// headers and cut at any length: whatever it reads, the ladder reads
    /// too, and it misses only packets with extension headers.
    #[test]
    fn plain_ipv6_reading_equals_the_ladder(
        tcp: bool,
        hop_by_hop: bool,
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        edits in proptest::collection::vec((0usize..100, any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = frame6(tcp, hop_by_hop, &payload);
        for (at, v) in edits {
            if let Some(x) = f.get_mut(at) {
                *x = v;
            }
        }
        let f = &f[..cut.index(f.len() + 1)];
        let ladder = ladder6(f);
        match l4_info_plain(f) {
            Some(p) => prop_assert_eq!(ladder, Some((p, ipv6::HEADER_LEN))),
            None => prop_assert!(ladder.is_none_or(|(_, offset)| offset != ipv6::HEADER_LEN)),
        }
    }
}

#[test]
fn plain_ipv6_reading_reads_tcp_and_udp() {
    for tcp in [true, false] {
        let b = PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0).ipv6(CIP.octets(), VIP.octets(), 64);
        let mut f = Vec::new();
        let r = if tcp {
            b.tcp(40000, 80, 7, 1000).syn().write(&mut f, b"0123456789")
        } else {
            b.udp(40000, 80).write(&mut f, b"0123456789")
        };
        r.unwrap();
        let p = l4_info_plain(&f).expect("TCP/UDP right after the header");
        assert_eq!((p.key.src, p.key.dst), (u128::from(CIP), u128::from(VIP)));
        assert_eq!((p.key.sport, p.key.dport, p.hop_limit), (40000, 80, 64));
        assert_eq!((p.len, p.l4), (f.len() - ethernet::HEADER_LEN, ethernet::HEADER_LEN + 40));
        if tcp {
            assert_eq!((p.seq, p.seg_len, p.tcp_flags), (7, 11, tcp_state::flags::SYN));
        }
    }
}

#[test]
fn packets_with_extension_headers_take_the_ladder() {
    for tcp in [true, false] {
        let f = frame6(tcp, true, b"x");
        assert_eq!(l4_info_plain(&f), None);
        let (p, offset) = ladder6(&f).expect("the ladder walks the hop-by-hop header");
        assert_eq!((offset, p.key.sport, p.key.dport), (48, 40000, 80));
    }
}

/// Every byte of the IPv6 and TCP/UDP headers set to values that reach
/// each check (version, payload length, next header, a multicast source,
/// the TCP data offset, the UDP length): the plain reading answers as the
/// ladder does.
#[test]
fn plain_ipv6_reading_equals_the_ladder_on_every_header_byte() {
    for tcp in [true, false] {
        let base = frame6(tcp, false, b"0123456789");
        let end = ethernet::HEADER_LEN + 40 + if tcp { 20 } else { 8 };
        for at in ethernet::HEADER_LEN..end {
            for v in
                [0, 1, 6, 7, 8, 0x11, 0x12, 0x1e, 0x20, 0x3a, 0x50, 0x60, 0x80, 0x90, 0xff, base[at] ^ 0xff]
            {
                let mut f = base.clone();
                f[at] = v;
                let ladder = ladder6(&f);
                match l4_info_plain(&f) {
                    Some(p) => assert_eq!(ladder, Some((p, ipv6::HEADER_LEN)), "byte {at} = {v:#x}"),
                    None => assert!(
                        ladder.is_none_or(|(_, offset)| offset != ipv6::HEADER_LEN),
                        "byte {at} = {v:#x}: the ladder reads {ladder:?}"
                    ),
                }
            }
        }
    }
}

/// `Engine::expire_with` shares one budget between the tables: with only
/// IPv6 sessions due, the IPv6 table gets its half, the IPv4 table's unused
/// share, and nothing beyond the budget; every session goes in the end.
#[test]
fn one_expiry_budget_covers_both_tables() {
    let mut e = engine(service(ForwardMode::FullNat, P::Udp, false), 0, 1);
    for port in 0..10 {
        let mut f = udp_frame((CIP, 5000 + port), (VIP, 80), b"q");
        assert!(matches!(e.process(0, 0, &mut f), Action::Forward6 { .. }));
    }
    assert_eq!(e.sessions6.len(), 10);
    assert_eq!(e.expire_with(299_000, 4), Expired::default(), "not due yet");
    assert_eq!(e.expire_with(301_000, 4), Expired { examined: 4, freed: 4 });
    assert_eq!(e.expire_with(301_000, 5), Expired { examined: 5, freed: 5 });
    assert_eq!(e.expire_with(301_000, 5), Expired { examined: 1, freed: 1 });
    assert!(e.sessions6.is_empty());
    assert_eq!(e.counters.event_count(crate::counters::Event::SessionsExpired), 10);
}

/// The two-port lab of the reverse-path tests: port 0 the client side
/// (198.18.0.1/24, 2001:db8:1::1/64, with the default routes of both
/// families through a router there if `defaults`), port 1 the server side
/// (198.18.1.1/24, 2001:db8:2::1/64), both with filter `rp`.
pub(crate) fn engine2(svc: Service, rp: crate::route::RpFilter, defaults: bool) -> Engine {
    let port = |n: u16| Iface {
        port: n,
        addr: Ipv4Addr::new(198, 18, n as u8, 1),
        prefix: 24,
        addr6: Some((Ipv6Addr::new(0x2001, 0xdb8, n + 1, 0, 0, 0, 0, 1), 64)),
        mac: GW_MAC,
        mtu: 1500,
        rp_filter: rp,
    };
    let ifaces = vec![port(0), port(1)];
    let (r4, r6) = if defaults {
        let r6 = crate::route::Route6 { net: 0, prefix: 0, via: Some(u128::from(ROUTER6)), port: 0 };
        (vec![crate::route::Route { net: 0, prefix: 0, via: Some(0xc612_00fe), port: 0 }], vec![r6])
    } else {
        (vec![], vec![])
    };
    let mut e = engine(svc, 0, 1);
    e.cfg.routes = Routes::dual(&ifaces, &r4, &r6);
    e.cfg.ifaces = ifaces;
    e
}

/// [`engine2`]'s router on the client side, a client beyond it and a real
/// server on the server side.
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0xfe);
pub(crate) const FAR_CIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 9);
const RIP2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x200);

/// Session `s` as text, less its route memory (a spoofed packet's check
/// may fill it: the route toward an address of the session is the same
/// whoever asks).
pub(crate) fn unmemo(s: &Session6) -> String {
    let mut s = *s;
    s.route = [None; 2];
    format!("{s:?}")
}

fn service2(mode: ForwardMode, proto: P) -> Service {
    let mut svc = service(mode, proto, false);
    svc.dests[0].addr = IpAddr::V6(RIP2);
    svc
}

fn frame_of(proto: P, src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), syn: bool) -> Vec<u8> {
    match proto {
        P::Tcp => tcp_frame(src, dst, syn, !syn, &[]),
        _ => udp_frame(src, dst, b"d"),
    }
}

/// A real server's address arriving on the client-side port, a client's
/// on the server-side port: dropped as `drop_reverse_path` (the worker counts it)
/// before any session is made or touched, in every IPv6 mode, for a new
/// flow (the route search) and an established one (the session's route);
/// the genuine packets pass (issue 17).
#[test]
fn spoofed_ipv6_sources_are_dropped_by_the_reverse_path_check_in_every_mode() {
    use crate::route::RpFilter;
    for mode in [ForwardMode::FullNat, ForwardMode::Masq, ForwardMode::Route, ForwardMode::Tunnel] {
        for proto in [P::Tcp, P::Udp] {
            let what = format!("{mode:?} {proto:?}");
            let mut e = engine2(service2(mode, proto), RpFilter::Strict, true);
            let c = e.counters.clone();
            // New flows: the server's address from the client side, the
            // client's from the server side.
            let mut f = frame_of(proto, (RIP2, 8080), (VIP, 80), true);
            assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::ReversePath), "{what}");
            let mut f = frame_of(proto, (FAR_CIP, 40000), (VIP, 80), true);
            assert_eq!(e.process(0, 1, &mut f), Action::Drop(Drop::ReversePath), "{what}");
            assert!(e.sessions6.is_empty(), "{what}: no session for a spoofed packet");
            assert_eq!(c.event_count(Event::HalfOpen), 0, "{what}");
            // The genuine first packet goes to the server side.
            let mut f = frame_of(proto, (FAR_CIP, 40000), (VIP, 80), true);
            let a = e.process(0, 0, &mut f);
            assert!(
                matches!(a, Action::Forward6 { port: 1, .. } | Action::Encap6 { port: 1, .. }),
                "{what}: {a:?}"
            );
            assert_eq!(e.sessions6.len(), 1, "{what}");
            let before = crate::engine::ipv6_fwd::tests::unmemo(e.sessions6.get(0));
            let inpkts = c.dests[0].inpkts.get();
            // The established flow's client packet from the server side:
            // a RST (TCP) or a datagram (UDP) does not reach the session.
            let mut spoof = match proto {
                P::Tcp => {
                    let mut out = Vec::new();
                    PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
                        .ipv6(FAR_CIP.octets(), VIP.octets(), 64)
                        .tcp(40000, 80, 1001, 0)
                        .rst()
                        .write(&mut out, &[])
                        .unwrap();
                    out
                }
                _ => udp_frame((FAR_CIP, 40000), (VIP, 80), b"spoof"),
            };
            assert_eq!(e.process(1, 1, &mut spoof), Action::Drop(Drop::ReversePath), "{what}");
            // The reply side (FULLNAT66, NAT66): from the client side.
            if matches!(mode, ForwardMode::FullNat | ForwardMode::Masq) {
                let s = *e.sessions6.get(0);
                let to = if mode == ForwardMode::FullNat { (s.lip, s.lport) } else { (s.cip, s.cport) };
                let to = (Ipv6Addr::from(to.0), to.1);
                let mut r = frame_of(proto, (RIP2, 8080), to, false);
                assert_eq!(e.process(1, 0, &mut r), Action::Drop(Drop::ReversePath), "{what} reply");
                assert_eq!(e.sessions6.len(), 1, "{what}");
                assert_eq!(
                    crate::engine::ipv6_fwd::tests::unmemo(e.sessions6.get(0)),
                    before,
                    "{what}: the session is as it was"
                );
                assert_eq!(c.dests[0].inpkts.get(), inpkts, "{what}: nothing counted as forwarded");
                assert_eq!(c.dests[0].outpkts.get(), 0, "{what}");
                // The genuine reply passes to the client side.
                let mut r = frame_of(proto, (RIP2, 8080), to, false);
                let a = e.process(2, 1, &mut r);
                assert_eq!(a, Action::Forward6 { port: 0, next_hop: u128::from(ROUTER6) }, "{what}");
                assert_eq!(read(&r), ((VIP, 80), (FAR_CIP, 40000), 63), "{what}");
            } else {
                assert_eq!(
                    crate::engine::ipv6_fwd::tests::unmemo(e.sessions6.get(0)),
                    before,
                    "{what}: the session is as it was"
                );
                assert_eq!(c.dests[0].inpkts.get(), inpkts, "{what}");
            }
            // The genuine client keeps going.
            let mut f = frame_of(proto, (FAR_CIP, 40000), (VIP, 80), false);
            let a = e.process(3, 0, &mut f);
            assert!(matches!(a, Action::Forward6 { port: 1, .. } | Action::Encap6 { port: 1, .. }), "{what}");
        }
    }
}

/// `loose` wants a route back through any port, `off` none, as IPv4's.
#[test]
fn loose_and_off_reverse_path_filters_for_ipv6() {
    use crate::route::RpFilter;
    // Loose: the client from the server side passes (a route back exists).
    let mut e = engine2(service2(ForwardMode::FullNat, P::Udp), RpFilter::Loose, true);
    let mut f = udp_frame((FAR_CIP, 40000), (VIP, 80), b"x");
    assert!(matches!(e.process(0, 1, &mut f), Action::Forward6 { port: 1, .. }));
    // Loose without a default route: no route back at all.
    let mut e = engine2(service2(ForwardMode::FullNat, P::Udp), RpFilter::Loose, false);
    let mut f = udp_frame((FAR_CIP, 40000), (VIP, 80), b"x");
    assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::ReversePath));
    assert!(e.sessions6.is_empty());
    // Off: no check (the session is then made and dropped for want of a
    // route to the client only when its reply comes).
    let mut e = engine2(service2(ForwardMode::FullNat, P::Udp), RpFilter::Off, false);
    let mut f = udp_frame((FAR_CIP, 40000), (VIP, 80), b"x");
    assert!(matches!(e.process(0, 0, &mut f), Action::Forward6 { port: 1, .. }));
    let mut f = udp_frame((RIP2, 8080), (VIP, 80), b"x");
    assert!(matches!(e.process(0, 0, &mut f), Action::Forward6 { port: 1, .. }));
}

/// A link-local source passes the filter on any port (it is on the link
/// it came from), as Linux's `rpfilter` match; the session then has no
/// route to it.
#[test]
fn a_link_local_source_passes_the_reverse_path_filter() {
    let mut e = engine2(service2(ForwardMode::FullNat, P::Udp), crate::route::RpFilter::Strict, false);
    let ll: Ipv6Addr = "fe80::9".parse().unwrap();
    let mut f = udp_frame((ll, 40000), (VIP, 80), b"x");
    assert!(matches!(e.process(0, 1, &mut f), Action::Forward6 { port: 1, .. }));
}

/// `frame` (Ethernet, IPv6 without extension headers) as the first
/// fragment of two (offset 0, more fragments; RFC 8200 §4.5).
fn first_fragment(frame: &[u8]) -> Vec<u8> {
    let at = ethernet::HEADER_LEN;
    let mut f = frame[..at + ipv6::HEADER_LEN].to_vec();
    let next = f[at + 6];
    f[at + 6] = 44;
    let body = &frame[at + ipv6::HEADER_LEN..];
    let part = &body[..body.len().min(16)];
    f.extend_from_slice(&[next, 0, 0, 1, 0, 0, 0x12, 0x34]);
    f.extend_from_slice(part);
    let len = (8 + part.len()) as u16;
    f[at + 4..at + 6].copy_from_slice(&len.to_be_bytes());
    f
}

/// Fragments to a VIP and ICMPv6 errors pass the reverse-path filter by
/// the search before reassembly or translation, as IPv4's (issue 17): a
/// fragment "from" the real server arriving on the client side is dropped
/// without a reassembly buffer; a Packet Too Big "from" a server-side
/// router arriving on the client side cannot reach the session.
#[test]
fn ipv6_fragments_and_icmpv6_errors_pass_the_reverse_path_filter_first() {
    use etherparse::Icmpv6Type;
    let mut e = engine2(service2(ForwardMode::FullNat, P::Udp), crate::route::RpFilter::Strict, true);
    let mut spoof = first_fragment(&udp_frame((RIP2, 8080), (VIP, 80), &[7; 40]));
    assert!(etherparse::SlicedPacket::from_ethernet(&spoof).is_ok(), "etherparse reads the fragment");
    assert_eq!(e.process(0, 0, &mut spoof), Action::Drop(Drop::ReversePath));
    let mut genuine = first_fragment(&udp_frame((FAR_CIP, 40000), (VIP, 80), &[7; 40]));
    assert_ne!(
        e.process(0, 0, &mut genuine),
        Action::Drop(Drop::ReversePath),
        "the client's fragment is held"
    );
    // A session, and an error about its packet toward the real server.
    let mut f = udp_frame((FAR_CIP, 40001), (VIP, 80), &[1; 100]);
    assert!(matches!(e.process(1, 0, &mut f), Action::Forward6 { port: 1, .. }));
    let quoted = &f[ethernet::HEADER_LEN..];
    let ptb = |src: Ipv6Addr| {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
            .ipv6(src.octets(), LIP.octets(), 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(&mut out, quoted)
            .unwrap();
        out
    };
    let server_router = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0xfe);
    let mut spoofed = ptb(server_router);
    assert_eq!(e.process(2, 0, &mut spoofed), Action::Drop(Drop::ReversePath));
    let mut real = ptb(server_router);
    assert_ne!(e.process(2, 1, &mut real), Action::Drop(Drop::ReversePath));
}

/// IPv6 TCP/UDP from `::/64` (unspecified, loopback, IPv4-compatible,
/// IPv4-mapped: RFC 4291 §2.5.2-§2.5.5) is a bad source on the plain
/// reading and on the ladder alike.
#[test]
fn ipv6_tcp_udp_from_the_first_64_is_a_bad_source() {
    let mut e = engine2(service2(ForwardMode::FullNat, P::Udp), crate::route::RpFilter::Off, true);
    for src in ["::", "::1", "::198.18.0.2", "::ffff:198.18.0.2"] {
        let src: Ipv6Addr = src.parse().unwrap();
        let mut f = udp_frame((src, 40000), (VIP, 80), b"x");
        assert_eq!(l4_info_plain(&f), None, "{src}");
        assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::BadSourceAddr), "{src}");
    }
    assert!(e.sessions6.is_empty());
}

#[test]
fn a_workers_lblc_cache_is_freed_when_its_service_goes_or_changes_scheduler() {
    let with = |sched: Scheduler, version: u64| {
        let mut s = service(ForwardMode::FullNat, P::Udp, false);
        s.scheduler = sched;
        s.prep =
            Prepared::build(sched, 0, &[DestConf::new(1, crate::service::sched_addr(IpAddr::V6(RIP)), 8080)]);
        s.version = version;
        Arc::new(s)
    };
    let mut e = engine(Service::clone(&with(Scheduler::Lblc, 1)), 0, 1);
    let new_flow = |e: &mut Engine, cport: u16| {
        let mut f = udp_frame((CIP, cport), (VIP, 80), b"x");
        assert!(matches!(e.process(0, 0, &mut f), Action::Forward6 { .. }));
    };
    assert_eq!(e.locality_cache_entries(), 0, "made at the service's first new connection");
    new_flow(&mut e, 30000);
    let entries = e.locality_cache_entries();
    assert!(entries >= crate::sched::DEFAULT_CACHE_ENTRIES, "{entries}");
    // The same service in a new snapshot (another service added): kept.
    e.set_snapshot(Arc::new(Snapshot::new(2, vec![with(Scheduler::Lblc, 1)], 4)));
    assert_eq!(e.locality_cache_entries(), entries);
    // Edited to lblcr: a new cache at its next connection, the old one gone.
    e.set_snapshot(Arc::new(Snapshot::new(3, vec![with(Scheduler::Lblcr, 2)], 4)));
    new_flow(&mut e, 30001);
    assert_eq!(e.locality_cache_entries(), entries);
    // Edited to rr: freed at once.
    e.set_snapshot(Arc::new(Snapshot::new(4, vec![with(Scheduler::Rr, 3)], 4)));
    assert_eq!(e.locality_cache_entries(), 0);
    // Back to lblc, then deleted: freed.
    e.set_snapshot(Arc::new(Snapshot::new(5, vec![with(Scheduler::Lblc, 4)], 4)));
    new_flow(&mut e, 30002);
    assert_eq!(e.locality_cache_entries(), entries);
    e.set_snapshot(Arc::new(Snapshot::new(6, vec![], 4)));
    assert_eq!(e.locality_cache_entries(), 0);
    // The slot's next lblc service gets a cache of its own.
    e.set_snapshot(Arc::new(Snapshot::new(7, vec![with(Scheduler::Lblc, 5)], 4)));
    new_flow(&mut e, 30003);
    assert_eq!(e.locality_cache_entries(), entries);
}

/// IPv6's twin of the worker test `a_sweep_of_spoofed_client_acks_never_shuts_the_real_client_out`:
/// a blind sweep of ACKs spoofed from the client moves nothing the
/// client's segments are checked against.
#[test]
fn a_sweep_of_spoofed_client_acks_never_shuts_the_real_client_out_ipv6() {
    let seg = |src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), seq: u32, ack: u32, flags: &str, data: &[u8]| {
        let mut b = PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
            .ipv6(src.0.octets(), dst.0.octets(), 64)
            .tcp(src.1, dst.1, seq, 4096);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('R') {
            b = b.rst();
        } else if flags.contains('A') {
            b = b.ack(ack);
        }
        let mut out = Vec::new();
        b.write(&mut out, data).unwrap();
        out
    };
    let mut e = engine(service(ForwardMode::FullNat, P::Tcp, false), 0, 1);
    let (c, v) = ((CIP, 40000), (VIP, 80));
    let mut syn = seg(c, v, 1000, 0, "S", &[]);
    assert!(matches!(e.process(0, 0, &mut syn), Action::Forward6 { .. }));
    let (local, server) = {
        let (l, s, _) = read(&syn);
        (l, s)
    };
    let mut syn_ack = seg(server, local, 5000, 1001, "SA", &[]);
    assert!(matches!(e.process(1, 0, &mut syn_ack), Action::Forward6 { .. }));
    let mut data = seg(c, v, 1001, 5001, "A", b"GET");
    assert!(matches!(e.process(2, 0, &mut data), Action::Forward6 { .. }));
    let mut answer = seg(server, local, 5001, 1004, "A", b"200");
    assert!(matches!(e.process(3, 0, &mut answer), Action::Forward6 { .. }));
    for k in 0..=128u32 {
        let mut spoof = seg(c, v, k << 24, 5004, "A", &[]);
        e.process(4, 0, &mut spoof);
    }
    let mut more = seg(c, v, 1004, 5004, "A", b"more");
    assert!(matches!(e.process(5, 0, &mut more), Action::Forward6 { .. }), "the real client's data");
    let mut rst = seg(c, v, 0x8000_0000, 0, "R", &[]);
    assert_eq!(e.process(6, 0, &mut rst), Action::Drop(Drop::TcpRstOutOfWindow));
    assert_eq!(e.sessions6.get(0).state, State::Established);
}

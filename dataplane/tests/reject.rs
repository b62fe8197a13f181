//! Failing fast (issue 10): what the gateway answers for a packet with no
//! service, no real server or no session, to whom, through which port, how
//! often, and what it never answers. Every reply is parsed with etherparse.

mod common;

use std::net::Ipv4Addr;

use common::*;
use etherparse::{Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_core::counters::{Drop, Event};
use gw_core::engine::{NoServiceReply, RejectConfig};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceSpec};

/// A TCP segment from `s` to `d` with `seq`, and `ack` (ACK set) unless None.
fn seg(
    mac: [u8; 6],
    to: gw_core::wire::ethernet::MacAddr,
    s: Endpoint,
    d: Endpoint,
    seq: u32,
    ack: Option<u32>,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(mac, to.0).ipv4(s.0, d.0, 64).tcp(s.1, d.1, seq, 64000);
    let b = match ack {
        Some(a) => b.ack(a).psh(),
        None => b,
    };
    let mut out = vec![];
    b.write(&mut out, b"data after the session is gone").unwrap();
    out
}

/// The RST in `f`: (src MACs, source, destination, seq, ack, ACK flag),
/// checksums checked by [`inspect`].
fn rst(f: &[u8]) -> ([u8; 6], [u8; 6], Endpoint, Endpoint, u32, u32, bool) {
    let (smac, dmac, src, dst, ttl) = inspect(f);
    assert_eq!(ttl, 64);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP") };
    assert!(t.rst() && !t.syn() && !t.fin() && t.payload().is_empty(), "a bare RST");
    (smac, dmac, src, dst, t.sequence_number(), t.acknowledgment_number(), t.ack())
}

/// The ICMP port unreachable in `f`: (source, destination, quoted bytes).
fn unreachable(f: &[u8]) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
    check_sent(0, f, true);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!("not ICMP") };
    assert_eq!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port)
    );
    (ip.header().source_addr(), ip.header().destination_addr(), icmp.payload().to_vec())
}

fn sent(lab: &Lab, e: Event) -> u64 {
    lab.counters.event_count(e)
}

#[test]
fn a_client_segment_after_its_session_expired_is_reset_from_the_vip_and_the_server_from_the_lip() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    let (_, _, lip, rs, _) = inspect(&out[0].1);
    // The session expires (SYN_RECV, 60 s).
    lab.now += 61_000;
    lab.worker.tick(lab.now, &mut lab.io);
    assert_eq!(lab.counters.event_count(Event::SessionsLive), 0);
    // The client goes on: RST from VIP:80, seq = its ack (RFC 793).
    let out = lab.rx(0, seg(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), 5000, Some(0xdead_beef)));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 0, "back out the client's port");
    let (smac, dmac, src, dst, seq, ack, ack_flag) = rst(&out[0].1);
    assert_eq!((smac, dmac), (GW_OUT.0, CLIENT_MAC));
    assert_eq!((src, dst), ((VIP, 80), (CLIENT, 40000)));
    assert_eq!((seq, ack, ack_flag), (0xdead_beef, 0, false));
    assert_eq!(lab.counters.drop_count(Drop::NoSessionNotSyn), 1, "still counted as the drop it is");
    // The real server goes on: RST from LIP:lport to RIP:rport, on its side.
    let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs.0).unwrap()];
    let out = lab.rx(1, seg(rs_mac, GW_IN, rs, lip, 9000, None));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 1, "back out the real server's port");
    let (smac, dmac, src, dst, seq, ack, ack_flag) = rst(&out[0].1);
    assert_eq!((smac, dmac), (GW_IN.0, rs_mac));
    assert_eq!((src, dst), (lip, rs));
    let len = "data after the session is gone".len() as u32;
    assert_eq!((seq, ack, ack_flag), (0, 9000 + len, true), "no ACK in: seq 0, ack = seq + len");
    assert_eq!(lab.counters.drop_count(Drop::UnknownReply), 1);
    assert_eq!(sent(&lab, Event::TcpRstSent), 2);
    // A RST is never answered.
    let mut r = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
        .ipv4(CLIENT, VIP, 64)
        .tcp(40000, 80, 1, 1)
        .rst()
        .ack(7)
        .write(&mut r, &[])
        .unwrap();
    assert!(lab.rx(0, r).is_empty());
    assert_eq!(sent(&lab, Event::TcpRstSent), 2);
}

#[test]
fn a_nat_server_segment_with_no_session_is_reset_from_the_client_address() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Masq, 8080);
    lab.learn_neighbours();
    let out = lab.rx(1, seg(RS_MAC[0], GW_IN, (RS[0], 8080), (CLIENT, 40000), 1, Some(77)));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 1);
    let (_, dmac, src, dst, seq, _, _) = rst(&out[0].1);
    assert_eq!((dmac, src, dst, seq), (RS_MAC[0], (CLIENT, 40000), (RS[0], 8080), 77));
    // A stray datagram gets nothing.
    assert!(lab.rx(1, udp(RS_MAC[0], GW_IN, (RS[0], 8080), (CLIENT, 6000))).is_empty());
}

/// A lab with TCP and UDP services on VIP:80 that have no real server.
fn empty_services(reject: RejectConfig) -> Lab {
    let mut lab = LabConfig { reject, ..LabConfig::default() }.build();
    for proto in [Protocol::Tcp, Protocol::Udp] {
        lab.ok(Request::AddService { spec: ServiceSpec::new(key(proto), Scheduler::Rr) });
    }
    lab.learn_neighbours();
    lab
}

#[test]
fn a_syn_or_datagram_to_a_service_without_servers_gets_port_unreachable_from_the_vip() {
    let mut lab = empty_services(RejectConfig::default());
    for (frame, proto) in [
        (tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false), 6),
        (udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)), 17),
        // A port with no service at all.
        (tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 8443), true, false), 6),
    ] {
        let out = lab.rx(0, frame.clone());
        assert_eq!(out.len(), 1);
        let (src, dst, quote) = unreachable(&out[0].1);
        assert_eq!((src, dst), (Ipv4Addr::from(VIP), Ipv4Addr::from(CLIENT)));
        assert_eq!(quote, frame[14..14 + 28], "the IPv4 header and 8 bytes (RFC 792)");
        assert_eq!(quote[9], proto);
    }
    assert_eq!(lab.counters.drop_count(Drop::NoDest), 2);
    assert_eq!(lab.counters.drop_count(Drop::NoService), 1);
    assert_eq!(sent(&lab, Event::IcmpPortUnreachSent), 3);
    // A real server added: the next SYN is forwarded.
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 80, ForwardMode::Masq, 1);
    lab.ok(Request::AddDest { service: key(Protocol::Tcp), dest });
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40001), (VIP, 80), true, false));
    assert_eq!(out[0].0, 1);
}

#[test]
fn no_service_reply_rst_answers_a_syn_with_a_rst_and_none_answers_nothing() {
    let mut lab = empty_services(RejectConfig { no_service: NoServiceReply::Rst, ..RejectConfig::default() });
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    let (_, _, src, dst, seq, ack, ack_flag) = rst(&out[0].1);
    assert_eq!((src, dst, seq, ack, ack_flag), ((VIP, 80), (CLIENT, 40000), 0, 1001, true));
    let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
    unreachable(&out[0].1);
    let quiet =
        RejectConfig { no_service: NoServiceReply::None, no_session_rst: false, ..RejectConfig::default() };
    let mut lab = empty_services(quiet);
    assert!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false)).is_empty());
    assert!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80))).is_empty());
    assert!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::NoDest), 2);
    assert_eq!(sent(&lab, Event::TcpRstSent) + sent(&lab, Event::IcmpPortUnreachSent), 0);
}

#[test]
fn replies_are_rate_limited_per_worker_by_a_token_bucket_on_the_workers_clock() {
    let reject = RejectConfig { rate: 10, burst: 5, ..RejectConfig::default() };
    let mut lab = empty_services(reject);
    let syn = |p: u16| tcp(CLIENT_MAC, GW_OUT, (CLIENT, p), (VIP, 80), true, false);
    let answered: usize = (0..20).map(|i| lab.rx(0, syn(40000 + i)).len()).sum();
    assert_eq!(answered, 5, "the burst");
    assert_eq!(sent(&lab, Event::RepliesRateLimited), 15);
    assert_eq!(lab.counters.drop_count(Drop::NoDest), 20, "every packet counted as dropped");
    lab.now += 300;
    let answered: usize = (0..20).map(|i| lab.rx(0, syn(41000 + i)).len()).sum();
    assert_eq!(answered, 3, "10 per second: 3 in 300 ms");
    lab.now += 60_000;
    let answered: usize = (0..20).map(|i| lab.rx(0, syn(42000 + i)).len()).sum();
    assert_eq!(answered, 5, "a quiet minute refills the burst only");
    assert_eq!(sent(&lab, Event::IcmpPortUnreachSent), 13);
    assert_eq!(sent(&lab, Event::RepliesRateLimited), 15 + 17 + 15);
}

#[test]
fn no_reply_to_broadcasts_our_own_addresses_or_spoofed_sources() {
    let mut lab = empty_services(RejectConfig::default());
    let before = lab.counters.drop_count(Drop::NoDest);
    // Sent to the broadcast MAC.
    let mut f = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false);
    f[0..6].copy_from_slice(&[0xff; 6]);
    assert!(lab.rx(0, f).is_empty());
    // From a multicast MAC.
    let f = tcp([0x01, 0, 0x5e, 0, 0, 1], GW_OUT, (CLIENT, 40000), (VIP, 80), true, false);
    assert!(lab.rx(0, f).is_empty());
    // "From" the subnet's broadcast address, the VIP, the port's address.
    for src in [[198, 18, 0, 255], VIP, GW_OUT_ADDR] {
        let f = udp(CLIENT_MAC, GW_OUT, (src, 5353), (VIP, 80));
        assert!(lab.rx(0, f).is_empty(), "{src:?}");
    }
    assert_eq!(lab.counters.drop_count(Drop::NoDest), before + 5, "each counted");
    // RS[0] is on port 1's subnet: a packet "from" it on port 0 fails the
    // strict reverse-path check and is dropped before anything else.
    let mut lab = LabConfig::default().build();
    lab.ok(Request::AddService { spec: ServiceSpec::new(key(Protocol::Udp), Scheduler::Rr) });
    assert!(lab.rx(0, udp(RS_MAC[0], GW_OUT, (RS[0], 5353), (VIP, 80))).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::ReversePath), 1);
    assert_eq!(sent(&lab, Event::IcmpPortUnreachSent), 0);
    assert_eq!(sent(&lab, Event::RepliesRateLimited), 0, "refused before the bucket");
}

#[test]
fn a_reply_to_an_unresolved_sender_waits_for_arp_like_any_routed_packet() {
    let mut lab = LabConfig::default().build();
    lab.ok(Request::AddService { spec: ServiceSpec::new(key(Protocol::Udp), Scheduler::Rr) });
    let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].1[12..14], &[0x08, 0x06], "an ARP request for the client first");
    let out = lab.rx(0, arp_reply(CLIENT_MAC, CLIENT, GW_OUT, GW_OUT_ADDR));
    assert_eq!(out.len(), 1, "then the parked port unreachable");
    let (src, dst, _) = unreachable(&out[0].1);
    assert_eq!((src, dst), (Ipv4Addr::from(VIP), Ipv4Addr::from(CLIENT)));
    assert_eq!(&out[0].1[0..6], &CLIENT_MAC);
}

mod v6 {
    //! The same replies for IPv6 services: ICMPv6 port unreachable (type 1
    //! code 4) where IPv4 sends ICMP's, RSTs over IPv6, the same rules and
    //! the same bucket.

    use std::net::Ipv6Addr;

    use super::common::v6::*;
    use super::common::*;
    use super::sent;
    use etherparse::{Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
    use gw_core::counters::{Drop, Event};
    use gw_core::engine::RejectConfig;
    use gw_proto::{ForwardMode, Protocol};

    type End6 = (Ipv6Addr, u16);
    /// A reply's source, destination, and for a RST its ports, seq and ack.
    type Reply6 = (Ipv6Addr, Ipv6Addr, Option<(u16, u16, u32, u32)>);

    /// A TCP segment `s -> d` from `mac`, with SYN alone or ACK `ack`.
    fn seg6(mac: [u8; 6], s: End6, d: End6, ack: Option<u32>) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(mac, GW_OUT.0)
            .ipv6(s.0.octets(), d.0.octets(), 64)
            .tcp(s.1, d.1, 77, 64000);
        let b = match ack {
            Some(a) => b.ack(a),
            None => b.syn(),
        };
        let mut out = vec![];
        b.write(&mut out, if ack.is_some() { b"late data" } else { b"" }).unwrap();
        out
    }

    /// The IPv6 header of the one frame out (port 0, to `mac`) and its
    /// transport, read by etherparse, with the L4 checksum checked there.
    fn one_out(out: &[(u16, Vec<u8>)], mac: [u8; 6]) -> Reply6 {
        assert_eq!(out.len(), 1, "one reply");
        let (port, f) = &out[0];
        assert_eq!((*port, &f[0..6], &f[6..12]), (0, &mac[..], &GW_OUT.0[..]), "back out port 0");
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
        let h = ip.header().to_header();
        assert_eq!(h.hop_limit, 64);
        let (src, dst) = (Ipv6Addr::from(h.source), Ipv6Addr::from(h.destination));
        match &p.transport {
            Some(TransportSlice::Icmpv6(icmp)) => {
                let port = etherparse::icmpv6::DestUnreachableCode::Port;
                assert_eq!(icmp.icmp_type(), Icmpv6Type::DestinationUnreachable(port));
                let want = icmp.header().icmp_type.calc_checksum(h.source, h.destination, icmp.payload());
                assert_eq!(icmp.checksum(), want.unwrap());
                (src, dst, None)
            }
            Some(TransportSlice::Tcp(t)) => {
                let th = t.to_header();
                assert_eq!(th.checksum, th.calc_checksum_ipv6(&h, &[]).unwrap());
                assert!(th.rst && t.payload().is_empty(), "a bare RST");
                (
                    src,
                    dst,
                    Some((th.source_port, th.destination_port, th.sequence_number, th.acknowledgment_number)),
                )
            }
            other => panic!("neither ICMPv6 nor TCP: {other:?}"),
        }
    }

    #[test]
    fn an_ipv6_syn_or_datagram_with_nowhere_to_go_gets_icmpv6_port_unreachable_from_the_vip() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        // A port of the VIP with no service.
        let out = lab.rx(0, seg6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, 81), None));
        assert_eq!(one_out(&out, ROUTER_MAC), (VIP6, CLIENT6, None));
        let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 5353), (VIP6, 81)));
        assert_eq!(one_out(&out, ROUTER_MAC), (VIP6, CLIENT6, None));
        assert_eq!(lab.counters.drop_count(Drop::NoService), 2, "still counted as the drop it is");
        // A service whose only server is quiesced (weight 0).
        let mut dest = gw_proto::DestSpec::new(RS6, 8080, ForwardMode::FullNat, 1);
        dest.weight = 0;
        lab.ok(gw_proto::Request::EditDest { service: key6(Protocol::Udp), dest });
        let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 5353), (VIP6, VPORT)));
        assert_eq!(one_out(&out, ROUTER_MAC), (VIP6, CLIENT6, None));
        assert_eq!(lab.counters.drop_count(Drop::NoDest), 1);
        assert_eq!(sent(&lab, Event::IcmpPortUnreachSent), 3);
    }

    #[test]
    fn an_ipv6_segment_with_no_session_is_reset_from_where_it_was_sent() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        // A client's segment after its session is gone: RST from VIP6:80,
        // seq = its ack (RFC 793).
        let out = lab.rx(0, seg6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), Some(0xdead_beef)));
        assert_eq!(one_out(&out, ROUTER_MAC), (VIP6, CLIENT6, Some((VPORT, 40000, 0xdead_beef, 0))));
        assert_eq!(lab.counters.drop_count(Drop::NoSessionNotSyn), 1);
        // A real server's segment to a local address:port with no session:
        // RST from LIP6 to the server, on its link.
        let out = lab.rx(0, seg6(RS_MAC[0], (RS6, 8080), (LIP6, 2000), Some(5)));
        assert_eq!(one_out(&out, RS_MAC[0]), (LIP6, RS6, Some((2000, 8080, 5, 0))));
        assert_eq!(lab.counters.drop_count(Drop::UnknownReply), 1);
        assert_eq!(sent(&lab, Event::TcpRstSent), 2);
    }

    #[test]
    fn no_ipv6_reply_to_multicast_our_own_addresses_or_beyond_the_bucket() {
        let reject = RejectConfig { rate: 1, burst: 2, ..RejectConfig::default() };
        let mut lab = lab6_from(ForwardMode::FullNat, LabConfig { reject, ..LabConfig::default() });
        // Sent to a multicast MAC; from a multicast MAC.
        let mut f = udp6(ROUTER_MAC, (CLIENT6, 5353), (VIP6, 81));
        f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
        assert!(lab.rx(0, f).is_empty());
        assert!(lab.rx(0, udp6([0x33, 0x33, 0, 0, 0, 2], (CLIENT6, 5353), (VIP6, 81))).is_empty());
        // "From" the VIP, a local address, the port's own address.
        for src in [VIP6, LIP6, GW_OUT_ADDR6] {
            assert!(lab.rx(0, udp6(ROUTER_MAC, (src, 5353), (VIP6, 81))).is_empty(), "{src}");
        }
        assert_eq!(lab.counters.drop_count(Drop::NoService), 5, "each counted");
        assert_eq!(sent(&lab, Event::IcmpPortUnreachSent), 0);
        // The bucket (2 tokens, the worker's clock standing still) is the
        // IPv4 replies' too: one IPv4 reply, one IPv6, then none.
        let spec = gw_proto::ServiceSpec::new(key(Protocol::Udp), gw_proto::Scheduler::Rr);
        lab.ok(gw_proto::Request::AddService { spec });
        lab.learn_neighbours();
        let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 81)));
        assert_eq!(out.len(), 1, "an ICMP port unreachable");
        let out = lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 5353), (VIP6, 81)));
        assert_eq!(one_out(&out, ROUTER_MAC).0, VIP6);
        assert!(lab.rx(0, udp6(ROUTER_MAC, (CLIENT6, 5353), (VIP6, 81))).is_empty());
        assert_eq!(sent(&lab, Event::RepliesRateLimited), 1);
    }
}

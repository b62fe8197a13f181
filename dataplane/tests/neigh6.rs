//! IPv6 next-hop resolution end to end through a worker (issue 17):
//! frames built and read by etherparse. An echo request from a client
//! beyond the upstream router is answered through the IPv6 route: the
//! worker solicits the router (to its solicited-node group, hop limit 255,
//! our link-layer address), parks the reply, and sends it to the router's
//! MAC once the router's advertisement arrives; unanswered, the reply is
//! dropped and counted.

mod common;

use std::net::Ipv6Addr;

use common::v6::{echo_request, na};
use common::*;
use etherparse::{Icmpv6Type, LinkSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_core::counters::{Drop, Event};

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 9);

/// The router's solicited advertisement of itself (R, S, O) to the
/// gateway's address.
fn router_advert() -> Vec<u8> {
    na(ROUTER_MAC, ROUTER6, 0xe0)
}

/// (destination MAC, source, destination, hop limit, ICMPv6 bytes) as
/// etherparse reads them, checksum checked; the source MAC is port 0's.
fn read(frame: &[u8]) -> ([u8; 6], Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(LinkSlice::Ethernet2(eth)) = p.link else { panic!("not Ethernet") };
    assert_eq!(eth.source(), GW_OUT.0);
    let Some(NetSlice::Ipv6(ip)) = p.net else { panic!("not IPv6") };
    let Some(TransportSlice::Icmpv6(icmp)) = p.transport else { panic!("not ICMPv6") };
    let h = ip.header();
    assert!(icmp.is_checksum_valid(h.source(), h.destination()), "ICMPv6 checksum");
    (eth.destination(), h.source_addr(), h.destination_addr(), h.hop_limit(), icmp.slice().to_vec())
}

#[test]
fn a_routed_reply_is_resolved_by_a_solicitation_and_leaves_to_the_routers_mac() {
    let mut lab = LabConfig::default().build();
    let out = lab.rx(0, echo_request(CLIENT6));
    assert_eq!(out.len(), 1, "a solicitation, the reply parked");
    let (port, ns) = &out[0];
    assert_eq!(*port, 0);
    let (dmac, src, dst, hop, icmp) = read(ns);
    let group: Ipv6Addr = "ff02::1:ff00:fe".parse().unwrap();
    assert_eq!((dmac, src, dst, hop), ([0x33, 0x33, 0xff, 0, 0, 0xfe], GW_OUT_ADDR6, group, 255));
    assert_eq!(icmp[0], 135);
    assert_eq!(&icmp[8..24], &ROUTER6.octets());
    assert_eq!(&icmp[24..32], &[[1, 1].as_slice(), &GW_OUT.0].concat()[..]);
    assert_eq!(lab.counters.event_count(Event::NeighHeld), 1);

    lab.now += 5;
    let out = lab.rx(0, router_advert());
    assert_eq!(out.len(), 1, "the parked reply leaves");
    let (dmac, src, dst, hop, icmp) = read(&out[0].1);
    assert_eq!((dmac, src, dst, hop), (ROUTER_MAC, GW_OUT_ADDR6, CLIENT6, 64));
    let echo = etherparse::Icmpv6Slice::from_slice(&icmp).unwrap();
    assert_eq!(echo.icmp_type(), Icmpv6Type::EchoReply(etherparse::IcmpEchoHeader { id: 0x42, seq: 1 }));
    assert_eq!(echo.payload(), b"through the router");
    assert_eq!(lab.counters.event_count(Event::NdAdvertsLearned), 1);
    assert_eq!(lab.counters.event_count(Event::NdSolicitsSent), 1);

    // Known now: straight out.
    let out = lab.rx(0, echo_request(CLIENT6));
    assert_eq!(out.len(), 1);
    assert_eq!(read(&out[0].1).0, ROUTER_MAC);
}

#[test]
fn an_unanswered_router_costs_the_reply_counted() {
    let mut lab = LabConfig::default().build();
    lab.rx(0, echo_request(CLIENT6));
    for _ in 0..100 {
        lab.now += 100;
        lab.worker.tick(lab.now, &mut lab.io);
    }
    let probes = std::mem::take(&mut lab.io.sent);
    assert_eq!(probes.len(), 2, "the retries after the first solicitation (max_probes 3)");
    assert!(probes.iter().all(|(_, f)| read(f).4[8..24] == ROUTER6.octets()));
    assert_eq!(lab.counters.drop_count(Drop::NeighUnresolved), 1);
    // A client on no route at all: counted at once.
    let mut lab = LabConfig { routes6: vec![], ..LabConfig::default() }.build();
    assert!(lab.rx(0, echo_request(CLIENT6)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::NoRoute), 1);
}

/// A neighbour solicitation for `target` from a host on port 0's prefix.
fn solicit(target: Ipv6Addr) -> Vec<u8> {
    let host: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let group = gw_core::wire::ipv6::solicited_node(target);
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&CLIENT_MAC);
    let mut out = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, gw_core::wire::ipv6::multicast_mac(group).0)
        .ipv6(host.octets(), group.octets(), 255)
        .icmpv6(Icmpv6Type::Unknown { type_u8: 135, code_u8: 0, bytes5to8: [0; 4] })
        .write(&mut out, &body)
        .unwrap();
    out
}

#[test]
fn solicitations_for_an_ipv6_vip_are_answered_from_the_vip() {
    use gw_proto::{Protocol, Request, Scheduler, ServiceKey, ServiceSpec};
    let mut lab = LabConfig::default().build();
    let on_prefix: Ipv6Addr = "2001:db8::100".parse().unwrap();
    let routed: Ipv6Addr = "2001:db8:99::1".parse().unwrap();
    // Not a VIP yet: not ours.
    assert!(lab.rx(0, solicit(on_prefix)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::NotForUs), 1);
    for vip in [on_prefix, routed] {
        let key = ServiceKey { proto: Protocol::Tcp, addr: vip.into(), port: 80 };
        lab.ok(Request::AddService { spec: ServiceSpec::new(key, Scheduler::Rr) });
        let out = lab.rx(0, solicit(vip));
        assert_eq!(out.len(), 1, "{vip} answered");
        let (dmac, src, dst, hop, icmp) = read(&out[0].1);
        assert_eq!((dmac, src, dst, hop), (CLIENT_MAC, vip, "2001:db8::2".parse().unwrap(), 255));
        assert_eq!((icmp[0], &icmp[8..24]), (136, &vip.octets()[..]));
        assert_eq!(&icmp[24..32], &[[2, 1].as_slice(), &GW_OUT.0].concat()[..]);
    }
}

//! Tests of the worker's IPv6 neighbour resolution: the solicitation it
//! sends is read back by etherparse (addresses, hop limit, checksum, the
//! source link-layer option), packets park until an advertisement is
//! learnt, and unanswered neighbours fail counted.

use std::net::Ipv6Addr;

use etherparse::{Icmpv6Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice};

use super::*;
use crate::engine::ipv6_tests::{self, GW6, GW_MAC};
use crate::engine::nd_tests::na;
const HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0x12, 0x3456);

/// (destination MAC, source, destination, hop limit, ICMPv6 bytes) of a
/// solicitation as etherparse reads it; the checksum must hold.
fn read_ns(frame: &[u8]) -> ([u8; 6], Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(LinkSlice::Ethernet2(eth)) = p.link else { panic!("not Ethernet") };
    assert_eq!(eth.source(), GW_MAC.0);
    let Some(NetSlice::Ipv6(ip)) = p.net else { panic!("not IPv6") };
    let Some(TransportSlice::Icmpv6(icmp)) = p.transport else { panic!("not ICMPv6") };
    let h = ip.header();
    assert!(icmp.is_checksum_valid(h.source(), h.destination()), "checksum");
    assert_eq!(icmp.icmp_type(), Icmpv6Type::Unknown { type_u8: 135, code_u8: 0, bytes5to8: [0; 4] });
    (eth.destination(), h.source_addr(), h.destination_addr(), h.hop_limit(), icmp.slice().to_vec())
}

#[test]
fn a_solicitation_goes_to_the_solicited_node_group_with_our_link_layer_address() {
    let mut f = vec![0; NS_FRAME_LEN];
    build_neighbour_solicit(&mut f, GW_MAC, GW6, HOST6);
    let (dmac, src, dst, hop, icmp) = read_ns(&f);
    assert_eq!(dmac, [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
    assert_eq!((src, dst), (GW6, "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()));
    assert_eq!(hop, 255);
    assert_eq!(icmp.len(), 32, "header, target, one option");
    assert_eq!(&icmp[8..24], &HOST6.octets());
    assert_eq!(&icmp[24..26], &[1, 1], "source link-layer option, 8 bytes");
    assert_eq!(&icmp[26..32], &GW_MAC.0);
    // Our own reader agrees.
    let ns = icmpv6::Packet::new_checked(&icmp[..]).unwrap();
    assert_eq!(
        icmpv6::NdRepr::parse(&ns).unwrap(),
        icmpv6::NdRepr::Solicit { target: HOST6, lladdr: Some(GW_MAC) }
    );
}

/// The I/O of a test: every frame sent, with its port.
#[derive(Default)]
struct Sent(Vec<(u16, Vec<u8>)>);

impl Io<Vec<u8>> for Sent {
    fn alloc(&mut self) -> Option<Vec<u8>> {
        Some(Vec::new())
    }
    fn send(&mut self, port: u16, pkt: Vec<u8>) {
        self.0.push((port, pkt));
    }
}

const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 9);

fn neigh(capacity: usize) -> NeighConfig {
    NeighConfig { capacity, per_port_max: capacity, reachable_ms: 30_000, retry_ms: 1000, max_probes: 3 }
}

/// A worker on one dual-stack port (2001:db8::1/64) with a default route
/// through [`ROUTER6`].
fn worker(capacity: usize) -> Worker<Vec<u8>> {
    let def = crate::route::Route6 { net: 0, prefix: 0, via: Some(u128::from(ROUTER6)), port: 0 };
    let engine = crate::engine::ipv6_tests::engine_with_routes(Some((GW6, 64)), &[def]);
    Worker::new(engine, neigh(capacity))
}

#[test]
fn a_routed_reply_waits_for_the_routers_advertisement_then_leaves_to_its_mac() {
    let mut w = worker(16);
    let mut io = Sent::default();
    // An echo request from beyond the router: its reply is routed, the
    // router is unknown, a solicitation goes out and the reply waits.
    w.handle(0, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    assert_eq!(io.0.len(), 1);
    let (dmac, src, dst, hop, icmp) = read_ns(&io.0[0].1);
    assert_eq!(dmac, ipv6::multicast_mac(ipv6::solicited_node(ROUTER6)).0);
    assert_eq!((src, dst, hop), (GW6, ipv6::solicited_node(ROUTER6), 255));
    assert_eq!(&icmp[8..24], &ROUTER6.octets());
    let c = w.engine.counters().clone();
    assert_eq!((c.event_count(Event::NdSolicitsSent), c.event_count(Event::NeighHeld)), (1, 1));
    // A second reply to the same next hop waits behind the first probe.
    w.handle(1, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    assert_eq!(io.0.len(), 1);
    // The router answers (to our address, solicited): both replies leave,
    // to its MAC, and the advertisement is counted as learnt.
    io.0.clear();
    w.handle(2, 0, na(ROUTER6, GW6, ROUTER6, 0xe0, Some(ROUTER_MAC), 255), &mut io);
    assert_eq!(io.0.len(), 2);
    for (port, f) in &io.0 {
        assert_eq!(*port, 0);
        let (smac, dmac, src, dst, _, icmp) = ipv6_tests::read(f);
        assert_eq!((smac, dmac, src, dst, icmp[0]), (GW_MAC.0, ROUTER_MAC, GW6, CLIENT6, 129));
    }
    assert_eq!(c.event_count(Event::NdAdvertsLearned), 1);
    // Known now: the next reply leaves at once, no solicitation.
    io.0.clear();
    w.handle(3, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    assert_eq!(io.0.len(), 1);
    assert_eq!(ipv6_tests::read(&io.0[0].1).1, ROUTER_MAC);
    assert_eq!(c.event_count(Event::NdSolicitsSent), 1);
}

#[test]
fn an_unanswered_next_hop_is_solicited_again_then_its_packets_are_dropped_and_counted() {
    let mut w = worker(16);
    let mut io = Sent::default();
    w.handle(0, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    for now in (100..=5000).step_by(100) {
        w.tick(now, &mut io);
    }
    let c = w.engine.counters().clone();
    assert_eq!(c.event_count(Event::NdSolicitsSent), 3, "max_probes solicitations in all");
    assert!(io.0.iter().all(|(_, f)| read_ns(f).4[8..24] == ROUTER6.octets()));
    assert_eq!(c.drop_count(Drop::NeighUnresolved), 1);
    assert_eq!(w.neigh6.len(), 0);
    // An advertisement now comes too late: it makes no entry.
    w.handle(6000, 0, na(ROUTER6, GW6, ROUTER6, 0xe0, Some(ROUTER_MAC), 255), &mut io);
    assert_eq!((w.neigh6.len(), c.event_count(Event::NdAdvertsLearned)), (0, 0));
}

#[test]
fn a_flood_of_solicitations_from_many_sources_stays_bounded_and_is_counted() {
    let mut w = worker(64);
    let mut io = Sent::default();
    for i in 0..1000u16 {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i);
        w.handle(u64::from(i), 0, ipv6_tests::ns(src, GW6, 255), &mut io);
    }
    let c = w.engine.counters().clone();
    // Each was answered; the table holds 64, the rest took the place of
    // the stalest and were counted.
    assert_eq!(c.event_count(Event::NdSolicitsAnswered), 1000);
    assert_eq!(w.neigh6.len(), 64);
    assert_eq!(c.event_count(Event::NeighEvicted), 1000 - 64);
    // The IPv4 table did not move.
    assert_eq!(w.neigh.len(), 0);
    // Unsolicited advertisements from strangers make no entry at all.
    for i in 0..100u16 {
        let t = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 2, i);
        w.handle(2000, 0, na(t, GW6, t, 0x20, Some(ROUTER_MAC), 255), &mut io);
    }
    assert_eq!(c.event_count(Event::NdAdvertsLearned), 0);
    // Nor do solicitations from off-link sources: dropped by name.
    let far = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);
    w.handle(3000, 0, ipv6_tests::ns(far, GW6, 255), &mut io);
    assert_eq!(c.drop_count(Drop::NdInvalid), 1);
    // A next hop still resolves: it takes a stale entry's place.
    io.0.clear();
    w.handle(40_000, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    assert_eq!(read_ns(&io.0[0].1).4[8..24], ROUTER6.octets());
}

#[test]
fn a_static_ipv6_neighbour_is_used_at_once_and_never_changed_by_an_advertisement() {
    let statics = Arc::new(StaticNeighbours::new(vec![crate::neigh::StaticNeigh {
        port: 0,
        ip: u128::from(ROUTER6),
        mac: MacAddr(ROUTER_MAC),
    }]));
    let mut w = worker(16).with_static_neighbours6(statics.clone());
    let mut io = Sent::default();
    w.handle(0, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    assert_eq!(io.0.len(), 1);
    assert_eq!(ipv6_tests::read(&io.0[0].1).1, ROUTER_MAC, "no solicitation: straight to the static MAC");
    // An advertisement claiming another MAC changes nothing.
    w.handle(1, 0, na(ROUTER6, GW6, ROUTER6, 0xe0, Some([2, 0, 0, 0, 0, 0x66]), 255), &mut io);
    io.0.clear();
    w.handle(2, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    assert_eq!(ipv6_tests::read(&io.0[0].1).1, ROUTER_MAC);
    // Removed: the next reply solicits the router again.
    statics.publish(vec![]);
    w.tick(3, &mut io);
    io.0.clear();
    w.handle(4, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    assert_eq!(read_ns(&io.0[0].1).4[8..24], ROUTER6.octets());
    assert_eq!(w.engine.counters().event_count(Event::NdSolicitsSent), 1);
}

#[test]
fn an_advertisement_without_the_override_flag_keeps_a_known_mac() {
    let mut w = worker(16);
    let mut io = Sent::default();
    w.handle(0, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    w.handle(1, 0, na(ROUTER6, GW6, ROUTER6, 0xe0, Some(ROUTER_MAC), 255), &mut io);
    let other = [2, 0, 0, 0, 0, 0x66];
    // Solicited, override clear (R|S), another MAC: ignored.
    w.handle(2, 0, na(ROUTER6, GW6, ROUTER6, 0xc0, Some(other), 255), &mut io);
    assert_eq!(w.neigh6.lookup(0, u128::from(ROUTER6)), Some(MacAddr(ROUTER_MAC)));
    assert_eq!(w.engine.counters().event_count(Event::NdAdvertsLearned), 1);
    // Override set: the neighbour moved.
    w.handle(3, 0, na(ROUTER6, GW6, ROUTER6, 0xe0, Some(other), 255), &mut io);
    assert_eq!(w.neigh6.lookup(0, u128::from(ROUTER6)), Some(MacAddr(other)));
}

#[test]
fn a_neighbour_learnt_on_one_worker_reaches_the_others_parked_packets() {
    // Worker a parked a reply for the router; the advertisement arrives
    // on worker b (another queue), which shares what it learnt.
    let (mut a, mut b) = (worker(16), worker(16));
    let (mut io_a, mut io_b) = (Sent::default(), Sent::default());
    a.handle(0, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io_a);
    io_a.0.clear();
    b.handle(1, 0, na(ROUTER6, GW6, ROUTER6, 0xe0, Some(ROUTER_MAC), 255), &mut io_b);
    assert_eq!(b.neigh6.len(), 0, "b was resolving nothing: no entry there");
    let shared: Vec<Learned> = b.take_learned().collect();
    let want =
        Learned { port: 0, ip: IpAddr::V6(ROUTER6), mac: MacAddr(ROUTER_MAC), create: false, replace: true };
    assert_eq!(shared, [want]);
    for l in shared {
        a.learn(2, l, &mut io_a);
    }
    assert_eq!(io_a.0.len(), 1, "a's parked reply leaves");
    assert_eq!(ipv6_tests::read(&io_a.0[0].1).1, ROUTER_MAC);
}

#[test]
fn without_a_dual_stack_port_an_ipv6_next_hop_is_no_route_and_no_table_is_kept() {
    let engine = ipv6_tests::engine(None);
    let mut w: Worker<Vec<u8>> = Worker::new(engine, neigh(16));
    let mut io = Sent::default();
    w.output6(0, 0, u128::from(ROUTER6), ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io);
    assert!(io.0.is_empty());
    assert_eq!(w.engine.counters().drop_count(Drop::NoRoute), 1);
    assert_eq!(w.neigh6.len(), 0);
    // Its IPv6 table has no room at all: nothing learnt, even when asked to.
    let l =
        Learned { port: 0, ip: IpAddr::V6(ROUTER6), mac: MacAddr(ROUTER_MAC), create: true, replace: true };
    w.learn(1, l, &mut io);
    assert_eq!(w.neigh6.len(), 0);
}

/// RFC 4861 §7.2.5 on every worker: an advertisement without the override
/// flag, received by a worker that does not know the neighbour, is shared
/// with its flag, so a worker that knows another MAC keeps it, and one
/// that is resolving the neighbour takes the MAC.
#[test]
fn an_advertisement_without_the_override_flag_keeps_the_other_workers_macs_too() {
    let (mut a, mut b, mut c) = (worker(16), worker(16), worker(16));
    let (mut io_a, mut io_b, mut io_c) = (Sent::default(), Sent::default(), Sent::default());
    a.handle(0, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io_a);
    a.handle(1, 0, na(ROUTER6, GW6, ROUTER6, 0xe0, Some(ROUTER_MAC), 255), &mut io_a);
    assert_eq!(a.neigh6.lookup(0, u128::from(ROUTER6)), Some(MacAddr(ROUTER_MAC)));
    c.handle(0, 0, ipv6_tests::echo_from(CLIENT6, GW6, GW_MAC), &mut io_c);
    io_c.0.clear();
    // Worker b, which knows nothing of the router, gets R|S without O.
    let evil = [2, 0, 0, 0, 0, 0x66];
    b.handle(2, 0, na(ROUTER6, GW6, ROUTER6, 0xc0, Some(evil), 255), &mut io_b);
    let shared: Vec<Learned> = b.take_learned().collect();
    assert_eq!(shared.len(), 1);
    assert!(!shared[0].replace);
    a.learn(3, shared[0], &mut io_a);
    assert_eq!(
        a.neigh6.lookup(0, u128::from(ROUTER6)),
        Some(MacAddr(ROUTER_MAC)),
        "a keeps the router's MAC"
    );
    c.learn(3, shared[0], &mut io_c);
    assert_eq!(io_c.0.len(), 1, "c was resolving: its parked reply leaves");
    assert_eq!(c.neigh6.lookup(0, u128::from(ROUTER6)), Some(MacAddr(evil)));
}

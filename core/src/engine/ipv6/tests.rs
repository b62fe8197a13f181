//! Tests of [`super`]: frames built by etherparse, answers checked by
//! etherparse (addresses, MACs, ICMPv6 type and checksum, NA fields).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{Icmpv6Type, LinkSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

use super::*;
use crate::counters::WorkerCounters;
use crate::engine::EngineConfig;
use crate::route::Routes;
use crate::service::Snapshot;

pub(crate) const GW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
pub(crate) const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x42];
pub(crate) const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub(crate) const HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn iface(addr6: Option<(Ipv6Addr, u8)>) -> Iface {
    Iface {
        port: 0,
        addr: Ipv4Addr::new(198, 18, 0, 1),
        prefix: 24,
        addr6,
        mac: GW_MAC,
        mtu: 1500,
        rp_filter: Default::default(),
    }
}

pub(crate) fn engine(addr6: Option<(Ipv6Addr, u8)>) -> Engine {
    engine_with_routes(addr6, &[])
}

/// An engine on one port (0) with `addr6` and the IPv6 routes `routes6`.
pub(crate) fn engine_with_routes(addr6: Option<(Ipv6Addr, u8)>, routes6: &[crate::route::Route6]) -> Engine {
    let ifaces = vec![iface(addr6)];
    let cfg = EngineConfig {
        worker: 0,
        workers: 1,
        routes: Routes::dual(&ifaces, &[], routes6),
        ifaces,
        sessions: 16,
        sessions6: 4,
        lport_range: (1024, 65535),
        seed: 1,
        expire_budget: 16,
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
    let snap = Arc::new(Snapshot::new(0, vec![], 4));
    Engine::new(cfg, snap, Arc::new(WorkerCounters::new(0, 0, 1, 4)), 0)
}

pub(crate) fn dual() -> Engine {
    engine(Some((GW6, 64)))
}

/// A neighbour solicitation for `target` from `src` to its solicited-node
/// group, with a source link-layer option unless `src` is `::`.
pub(crate) fn ns(src: Ipv6Addr, target: Ipv6Addr, hop_limit: u8) -> Vec<u8> {
    let group = ipv6::solicited_node(target);
    let mut body = target.octets().to_vec();
    if !src.is_unspecified() {
        body.extend_from_slice(&[1, 1]);
        body.extend_from_slice(&HOST_MAC);
    }
    let b = PacketBuilder::ethernet2(HOST_MAC, ipv6::multicast_mac(group).0)
        .ipv6(src.octets(), group.octets(), hop_limit)
        .icmpv6(Icmpv6Type::Unknown { type_u8: 135, code_u8: 0, bytes5to8: [0; 4] });
    let mut out = Vec::new();
    b.write(&mut out, &body).unwrap();
    out
}

pub(crate) fn echo(dst: Ipv6Addr, dst_mac: MacAddr) -> Vec<u8> {
    echo_from(HOST6, dst, dst_mac)
}

/// An echo request from `src` to `dst`, sent to `dst_mac` from [`HOST_MAC`].
pub(crate) fn echo_from(src: Ipv6Addr, dst: Ipv6Addr, dst_mac: MacAddr) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_MAC, dst_mac.0)
        .ipv6(src.octets(), dst.octets(), 64)
        .icmpv6_echo_request(7, 3);
    let mut out = Vec::new();
    b.write(&mut out, b"ping6").unwrap();
    out
}

/// The reply etherparse reads: (src MAC, dst MAC, src, dst, hop limit, ICMPv6 slice bytes).
pub(crate) fn read(frame: &[u8]) -> ([u8; 6], [u8; 6], Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(LinkSlice::Ethernet2(eth)) = p.link else { panic!("not Ethernet") };
    let Some(NetSlice::Ipv6(ip)) = p.net else { panic!("not IPv6") };
    let Some(TransportSlice::Icmpv6(icmp)) = p.transport else { panic!("not ICMPv6") };
    let h = ip.header();
    assert!(icmp.is_checksum_valid(h.source(), h.destination()), "checksum");
    (
        eth.source(),
        eth.destination(),
        h.source_addr(),
        h.destination_addr(),
        h.hop_limit(),
        icmp.slice().to_vec(),
    )
}

#[test]
fn a_solicitation_for_the_port_address_gets_an_advertisement() {
    let mut e = dual();
    let mut f = ns(HOST6, GW6, 255);
    // Answered, and the sender (its source link-layer option) is learnt,
    // with an entry made: it solicited us.
    let Action::Nd { port: 0, addr, mac, create: true, replace: true, reply, kernel: false } =
        e.process(0, 0, &mut f)
    else {
        panic!("not answered")
    };
    assert_eq!((Ipv6Addr::from(addr), mac.0), (HOST6, HOST_MAC));
    let (smac, dmac, src, dst, hop, icmp) = read(&f[..usize::from(reply)]);
    assert_eq!((smac, dmac), (GW_MAC.0, HOST_MAC));
    assert_eq!((src, dst, hop), (GW6, HOST6, 255));
    // Type 136, code 0, flags S|O, target GW6, target link-layer option = the port's MAC.
    assert_eq!(&icmp[..2], &[136, 0]);
    assert_eq!(&icmp[4..8], &[0x60, 0, 0, 0]);
    assert_eq!(&icmp[8..24], &GW6.octets());
    assert_eq!(&icmp[24..32], &[2, 1, 2, 0, 0, 0, 0, 1]);
    assert_eq!(e.counters().event_cell(Event::NdSolicitsAnswered).get(), 1);
}

#[test]
fn a_solicitation_from_a_link_local_source_is_answered_too() {
    let mut e = dual();
    let ll: Ipv6Addr = "fe80::42".parse().unwrap();
    let mut f = ns(ll, GW6, 255);
    let Action::Nd { reply, addr, .. } = e.process(0, 0, &mut f) else { panic!("not answered") };
    assert_eq!(read(&f[..usize::from(reply)]).3, ll);
    assert_eq!(Ipv6Addr::from(addr), ll);
}

#[test]
fn solicitations_failing_rfc4861_are_dropped_by_name() {
    let mut e = dual();
    // Hop limit not 255: it was forwarded.
    assert_eq!(e.process(0, 0, &mut ns(HOST6, GW6, 64)), Action::Drop(Drop::NdInvalid));
    // Duplicate address detection from ::: a static address is not defended.
    assert_eq!(e.process(0, 0, &mut ns(Ipv6Addr::UNSPECIFIED, GW6, 255)), Action::Drop(Drop::NdInvalid));
    // A source outside the port's subnet, not link-local.
    let far: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    assert_eq!(e.process(0, 0, &mut ns(far, GW6, 255)), Action::Drop(Drop::NdInvalid));
    // For another address (sent to its solicited-node MAC, which any
    // dual-stack port takes): not ours.
    let other: Ipv6Addr = "2001:db8::1:1".parse().unwrap();
    assert_eq!(e.process(0, 0, &mut ns(HOST6, other, 255)), Action::Drop(Drop::NotForUs));
    // Nor is another multicast group's frame (all-routers).
    let mut f = ns(HOST6, other, 255);
    f[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 2]);
    assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::NotOurMac));
    let mut f = ns(HOST6, other, 255);
    f[..6].copy_from_slice(&GW_MAC.0);
    assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::NotForUs));
    // A broken checksum.
    let mut f = ns(HOST6, GW6, 255);
    let n = f.len();
    f[n - 1] ^= 1;
    assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::Ipv6Malformed));
}

#[test]
fn an_echo_request_to_the_port_address_is_answered() {
    let mut e = dual();
    let mut f = echo(GW6, GW_MAC);
    let Action::Reply { port: 0, len } = e.process(0, 0, &mut f) else { panic!("not answered") };
    let (smac, dmac, src, dst, hop, icmp) = read(&f[..len]);
    assert_eq!((smac, dmac, src, dst, hop), (GW_MAC.0, HOST_MAC, GW6, HOST6, 64));
    let s = etherparse::Icmpv6Slice::from_slice(&icmp).unwrap();
    assert_eq!(s.icmp_type(), Icmpv6Type::EchoReply(etherparse::IcmpEchoHeader { id: 7, seq: 3 }));
    assert_eq!(s.payload(), b"ping6");
    assert_eq!(e.counters().event_cell(Event::Icmpv6EchoAnswered).get(), 1);
}

#[test]
fn other_ipv6_is_counted_not_handled() {
    let mut e = dual();
    // Echo to another address.
    let other: Ipv6Addr = "2001:db8::99".parse().unwrap();
    assert_eq!(e.process(0, 0, &mut echo(other, GW_MAC)), Action::Drop(Drop::Ipv6NotHandled));
    // UDP to the port.
    let b = PacketBuilder::ethernet2(HOST_MAC, GW_MAC.0).ipv6(HOST6.octets(), GW6.octets(), 64).udp(5000, 53);
    let mut f = Vec::new();
    b.write(&mut f, b"x").unwrap();
    assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::Ipv6NotHandled));
    // A truncated header.
    let mut f = echo(GW6, GW_MAC);
    f.truncate(14 + 30);
    assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::Ipv6Malformed));
    // A port without an IPv6 address: as before, an unsupported EtherType.
    let mut v4only = engine(None);
    assert_eq!(v4only.process(0, 0, &mut echo(GW6, GW_MAC)), Action::Drop(Drop::UnsupportedEthertype));
}

proptest::proptest! {
    /// Any solicitation (random hop limit, source, target, option bytes)
    /// is either answered with an advertisement etherparse accepts, for the
    /// port's address, or dropped by name; nothing panics.
    #[test]
    fn random_solicitations_are_answered_validly_or_dropped_by_name(
        hop_limit in proptest::prop_oneof![proptest::strategy::Just(255u8), proptest::prelude::any::<u8>()],
        src_low: u16,
        link_local_src: bool,
        for_us: bool,
        opt in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16),
        cut in 0usize..8,
    ) {
        let src = if link_local_src {
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, src_low)
        } else {
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, src_low)
        };
        let target = if for_us { GW6 } else { Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9) };
        let group = ipv6::solicited_node(target);
        let mut body = target.octets().to_vec();
        body.extend_from_slice(&opt);
        let b = PacketBuilder::ethernet2(HOST_MAC, GW_MAC.0)
            .ipv6(src.octets(), group.octets(), hop_limit)
            .icmpv6(Icmpv6Type::Unknown { type_u8: 135, code_u8: 0, bytes5to8: [0; 4] });
        let mut f = Vec::new();
        b.write(&mut f, &body).unwrap();
        let keep = f.len() - cut.min(f.len() - 14);
        f.truncate(keep);
        let mut e = dual();
        let answered = match e.process(0, 0, &mut f) {
            Action::Reply { len, .. } => Some(len),
            Action::Nd { reply, create: true, .. } if reply > 0 => Some(usize::from(reply)),
            Action::Drop(
                Drop::NdInvalid | Drop::NotForUs | Drop::Ipv6Malformed | Drop::Ipv6NotHandled,
            ) => None,
            other => { proptest::prop_assert!(false, "{other:?}"); None }
        };
        if let Some(len) = answered {
            let (_, _, s, d, hop, icmp) = read(&f[..len]);
            proptest::prop_assert_eq!((s, d, hop), (GW6, src, 255));
            proptest::prop_assert_eq!(icmp[0], 136);
            proptest::prop_assert!(for_us && hop_limit == 255);
        }
    }
}

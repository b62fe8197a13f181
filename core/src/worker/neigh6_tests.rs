//! Tests of the worker's IPv6 neighbour resolution: the solicitation it
//! sends is read back by etherparse (addresses, hop limit, checksum, the
//! source link-layer option), packets park until an advertisement is
//! learnt, and unanswered neighbours fail counted.

use std::net::Ipv6Addr;

use etherparse::{Icmpv6Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice};

use super::*;

const GW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
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

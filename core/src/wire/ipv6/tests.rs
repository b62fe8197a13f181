//! Tests of [`super`]: byte fixtures, construction, parse/emit round trips, negative cases, the extension-header walk, and property tests checked with etherparse.

use super::*;
use crate::wire::{tcp, udp};
use etherparse::{IpNumber, Ipv6Header, Ipv6Slice, PacketBuilder, SlicedPacket, TcpHeader, TransportSlice};
use proptest::prelude::*;

const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

// A TCP SYN behind three extension headers, then two bytes of Ethernet
// padding. Checksum computed independently (python, RFC 8200 §8.1).
#[rustfmt::skip]
const PACKET: [u8; 86] = [
    0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
    0x00, 0x2c,             // payload length 44
    0x00,                   // next header: hop-by-hop
    0x40,                   // hop limit 64
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source 2001:db8::1
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // destination 2001:db8::2
    // hop-by-hop: next destination options, length 0 (8 bytes), PadN 4
    0x3c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
    // destination options: next fragment, length 0, PadN 4
    0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
    // fragment: next TCP, reserved, offset 0 M 0 (atomic), ident 0x12345678
    0x06, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78,
    // TCP: 40000 -> 80, seq 1, ack 0, data offset 5, SYN, window 65535
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xff, 0xff,
    0xb7, 0xdc, 0x00, 0x00, // checksum, urgent pointer
    0x00, 0x00,             // Ethernet padding, not part of the packet
];

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&PACKET[..]).unwrap();
    assert_eq!(p.version(), 6);
    assert_eq!((p.traffic_class(), p.dscp(), p.ecn(), p.flow_label()), (0, 0, 0, 0));
    assert_eq!(p.payload_len(), 44);
    assert_eq!(p.next_header(), NextHeader::HopByHop);
    assert_eq!(p.hop_limit(), 64);
    assert_eq!(p.src_addr(), SRC);
    assert_eq!(p.dst_addr(), DST);
    assert_eq!(p.payload(), &PACKET[40..84]);
    let t = p.transport().unwrap();
    assert_eq!(t.protocol, NextHeader::Tcp);
    assert_eq!(t.offset, 64);
    let f = t.fragment.unwrap();
    assert_eq!(f, Fragment { header_at: 56, offset: 0, more: false, ident: 0x1234_5678 });
    assert!(f.is_first() && f.is_atomic() && t.has_header());
    let l4 = p.upper_layer(&t);
    assert_eq!(l4, &PACKET[64..84]);
    let seg = tcp::Packet::new_checked(l4).unwrap();
    assert_eq!((seg.src_port(), seg.dst_port()), (40000, 80));
    assert!(seg.syn());
    assert!(seg.verify_checksum_v6(SRC, DST));
    assert!(!seg.verify_checksum_v6(DST, DST));
}

#[test]
fn construct() {
    let mut buf = [0xa5u8; 86];
    buf[40..].copy_from_slice(&PACKET[40..]);
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_version(6);
    p.set_traffic_class(0);
    p.set_flow_label(0);
    p.set_payload_len(44);
    p.set_next_header(NextHeader::HopByHop);
    p.set_hop_limit(64);
    p.set_src_addr(SRC);
    p.set_dst_addr(DST);
    assert_eq!(buf, PACKET);
    // The TCP checksum filled over IPv6 is the fixture's.
    let mut seg = buf[64..84].to_vec();
    seg[16..18].fill(0);
    tcp::Packet::new_unchecked(&mut seg[..]).fill_checksum_v6(SRC, DST);
    assert_eq!(seg, PACKET[64..84]);
}

#[test]
fn traffic_class_and_flow_label_keep_their_neighbours() {
    let mut buf = PACKET;
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_flow_label(0xfffff);
    p.set_traffic_class(0xb9); // DSCP 46 (EF), ECN 1
    assert_eq!((p.version(), p.dscp(), p.ecn(), p.flow_label()), (6, 46, 1, 0xfffff));
    p.set_flow_label(0x12345);
    assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0xb9, 0x12345));
    assert_eq!(&buf[..4], &[0x6b, 0x91, 0x23, 0x45]);
}

#[test]
fn repr_round_trip() {
    let mut buf = [0u8; 48];
    let repr =
        Repr { src_addr: SRC, dst_addr: DST, next_header: NextHeader::Udp, hop_limit: 255, payload_len: 8 };
    repr.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(Repr::parse(&p).unwrap(), repr);
    let h = Ipv6Header::from_slice(&buf).unwrap().0;
    assert_eq!((h.source, h.destination, h.next_header), (SRC.octets(), DST.octets(), IpNumber::UDP));
    assert_eq!((h.hop_limit, h.payload_length, h.traffic_class), (255, 8, 0));
}

#[test]
fn repr_emit_errors() {
    let mut r =
        Repr { src_addr: SRC, dst_addr: DST, next_header: NextHeader::Udp, hop_limit: 1, payload_len: 8 };
    assert_eq!(r.emit(&mut Packet::new_unchecked(&mut [0u8; 47][..])), Err(Error::Truncated));
    r.payload_len = 65_536;
    assert_eq!(r.emit(&mut Packet::new_unchecked(&mut [0u8; 47][..])), Err(Error::Malformed));
}

#[test]
fn check_len_errors() {
    assert_eq!(Packet::new_checked(&PACKET[..39]).unwrap_err(), Error::Truncated);
    let mut bad = PACKET;
    bad[0] = 0x45;
    assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
    // Payload length past the buffer.
    assert_eq!(Packet::new_checked(&PACKET[..83]).unwrap_err(), Error::Truncated);
    let mut long = PACKET;
    long[4..6].copy_from_slice(&47u16.to_be_bytes());
    assert_eq!(Packet::new_checked(&long[..]).unwrap_err(), Error::Truncated);
    // Payload length 0 (a jumbogram's) is an empty payload: nothing to walk.
    let mut zero = PACKET;
    zero[4..6].fill(0);
    let p = Packet::new_checked(&zero[..]).unwrap();
    assert!(p.payload().is_empty());
    assert_eq!(p.transport(), Err(Error::Truncated));
}

#[test]
fn walk_errors() {
    // An extension header cut short.
    let mut short = PACKET;
    short[4..6].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(Packet::new_checked(&short[..]).unwrap().transport(), Err(Error::Truncated));
    // Hop-by-hop after the first header.
    let mut hbh = PACKET;
    hbh[48] = 0; // destination options says: next is hop-by-hop
    assert_eq!(Packet::new_checked(&hbh[..]).unwrap().transport(), Err(Error::Malformed));
    // Two fragment headers.
    let two = [44u8, 0, 0, 0, 0, 0, 0, 1, 6, 0, 0, 0, 0, 0, 0, 2];
    assert_eq!(walk(NextHeader::Fragment, &two, 0), Err(Error::Malformed));
    // A chain longer than the bound: 9 destination-options headers.
    let mut long = [0u8; 8 * 9 + 20];
    for h in long.chunks_mut(8).take(9) {
        h[0] = 60;
    }
    long[8 * 8] = 6;
    assert_eq!(walk(NextHeader::DstOpts, &long, 0), Err(Error::Malformed));
    // Eight are fine.
    long[8 * 7] = 6;
    assert_eq!(walk(NextHeader::DstOpts, &long, 0).unwrap().offset, 64);
}

#[test]
fn walk_stops_at_esp_no_next_and_later_fragments() {
    let t = walk(NextHeader::Esp, &[0u8; 8], 40).unwrap();
    assert_eq!((t.protocol, t.offset, t.fragment), (NextHeader::Esp, 40, None));
    let t = walk(NextHeader::NoNext, &[], 40).unwrap();
    assert_eq!((t.protocol, t.offset), (NextHeader::NoNext, 40));
    // A non-first fragment: offset 1480 bytes, M set; its next header names
    // the protocol, the bytes after it are data (here they look like a
    // hop-by-hop header, which must not be walked).
    #[rustfmt::skip]
    let frag = [
        0x11, 0x00, 0x05, 0xc9, 0xde, 0xad, 0xbe, 0xef, // UDP, offset 185*8, M, ident
        0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // data
    ];
    let t = walk(NextHeader::Fragment, &frag, 40).unwrap();
    assert_eq!(t.protocol, NextHeader::Udp);
    assert_eq!(t.offset, 48);
    assert!(!t.has_header());
    assert_eq!(t.fragment, Some(Fragment { header_at: 40, offset: 1480, more: true, ident: 0xdead_beef }));
    // AH: length in 4-byte units minus 2 (RFC 4302 §2.2): 1 -> 12 bytes.
    let mut ah = [0u8; 12 + 8];
    ah[0] = 17;
    ah[1] = 1;
    let t = walk(NextHeader::Ah, &ah, 40).unwrap();
    assert_eq!((t.protocol, t.offset), (NextHeader::Udp, 52));
}

#[test]
fn next_header_numbers_round_trip() {
    for v in 0..=255u8 {
        assert_eq!(u8::from(NextHeader::from(v)), v);
        assert_eq!(u8::from(crate::wire::ipv4::Protocol::from(NextHeader::from(v))), v);
    }
    assert_eq!(NextHeader::from(58), NextHeader::Icmpv6);
    assert!(NextHeader::Fragment.is_extension() && !NextHeader::Esp.is_extension());
}

#[test]
fn solicited_node_and_multicast_mac() {
    let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0x1234, 0x5678);
    let sn = solicited_node(a);
    assert_eq!(sn, "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap());
    assert_eq!(multicast_mac(sn), MacAddr([0x33, 0x33, 0xff, 0x34, 0x56, 0x78]));
    assert!(multicast_mac(sn).is_multicast());
}

#[test]
fn hop_limit_decrement() {
    let mut buf = PACKET;
    let mut p = Packet::new_unchecked(&mut buf[..]);
    assert_eq!(p.decrement_hop_limit(), 63);
    p.set_hop_limit(0);
    assert_eq!(p.decrement_hop_limit(), 0);
    assert_eq!(p.hop_limit(), 0);
}

#[test]
fn pseudo_header_words() {
    let s = checksum::pseudo_header_v6(SRC, DST, 6, 20);
    // 2001 + 0db8 + 0001 + 2001 + 0db8 + 0002 + 20 + 6
    assert_eq!(s, 0x2001 + 0x0db8 + 1 + 0x2001 + 0x0db8 + 2 + 20 + 6);
    assert_eq!(pseudo_header(SRC, DST, NextHeader::Tcp, 20), s);
    // Every word 0xffff: still folded below 0x10000.
    let all = Ipv6Addr::from([0xff; 16]);
    assert!(checksum::pseudo_header_v6(all, all, 255, u32::MAX) <= 0xffff);
}

/// A UDP datagram over IPv6 built by etherparse.
fn etherparse_udp(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(src, dst, 64).udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

/// One extension header for the chain proptest: (kind, length field).
fn ext_header() -> impl Strategy<Value = (NextHeader, u8)> {
    prop_oneof![
        (0u8..4).prop_map(|l| (NextHeader::DstOpts, l)),
        (0u8..4).prop_map(|l| (NextHeader::Routing, l)),
        (1u8..6).prop_map(|l| (NextHeader::Ah, l)),
        Just((NextHeader::Fragment, 0)),
    ]
}

/// Bytes of a chain of extension headers ending in `last`, the first
/// possibly hop-by-hop; fragment headers are first fragments (offset 0)
/// with random M.
fn chain_bytes(
    hbh: Option<u8>,
    exts: &[(NextHeader, u8)],
    last: NextHeader,
    more: bool,
) -> (NextHeader, Vec<u8>) {
    let mut all: Vec<(NextHeader, u8)> = hbh.map(|l| (NextHeader::HopByHop, l)).into_iter().collect();
    all.extend_from_slice(exts);
    let mut out = Vec::new();
    for (i, (kind, l)) in all.iter().enumerate() {
        let next = all.get(i + 1).map(|n| n.0).unwrap_or(last);
        let len = match kind {
            NextHeader::Fragment => FRAG_HEADER_LEN,
            NextHeader::Ah => (usize::from(*l) + 2) * 4,
            _ => (usize::from(*l) + 1) * 8,
        };
        let mut h = vec![0u8; len];
        h[0] = next.into();
        h[1] = if *kind == NextHeader::Fragment { 0 } else { *l };
        if *kind == NextHeader::Fragment {
            h[3] = u8::from(more);
        }
        out.extend_from_slice(&h);
    }
    (all.first().map(|h| h.0).unwrap_or(last), out)
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = (p.src_addr(), p.dst_addr(), p.flow_label(), p.payload().len());
            if let Ok(t) = p.transport() {
                prop_assert!(t.offset <= HEADER_LEN + usize::from(p.payload_len()));
                let _ = p.upper_layer(&t);
            }
        }
    }

    #[test]
    fn we_read_what_etherparse_writes(
        src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let pkt = etherparse_udp(src, dst, sport, dport, &payload);
        let p = Packet::new_checked(&pkt[..]).unwrap();
        let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
        prop_assert_eq!((p.src_addr(), p.dst_addr(), p.hop_limit()), (s, d, 64));
        let t = p.transport().unwrap();
        prop_assert_eq!((t.protocol, t.offset, t.fragment), (NextHeader::Udp, HEADER_LEN, None));
        let u = udp::Packet::new_checked(p.upper_layer(&t)).unwrap();
        prop_assert_eq!((u.src_port(), u.dst_port()), (sport, dport));
        prop_assert_eq!(u.payload(), &payload[..]);
        prop_assert!(u.verify_checksum_v6(s, d));
        // Our fill gives etherparse's checksum.
        let mut mine = p.upper_layer(&t).to_vec();
        udp::Packet::new_unchecked(&mut mine[..]).fill_checksum_v6(s, d);
        prop_assert_eq!(&mine[..], p.upper_layer(&t));
    }

    #[test]
    fn tcp_checksum_matches_etherparse(
        src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, seq: u32,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut h = TcpHeader::new(sport, dport, seq, 1024);
        h.syn = true;
        let ip = Ipv6Header { source: src, destination: dst, hop_limit: 64, next_header: IpNumber::TCP,
            payload_length: (h.header_len() + payload.len()) as u16, ..Default::default() };
        h.checksum = h.calc_checksum_ipv6(&ip, &payload).unwrap();
        let mut seg = h.to_bytes().to_vec();
        seg.extend_from_slice(&payload);
        let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
        prop_assert!(tcp::Packet::new_checked(&seg[..]).unwrap().verify_checksum_v6(s, d));
        let mut mine = seg.clone();
        tcp::Packet::new_unchecked(&mut mine[..]).fill_checksum_v6(s, d);
        prop_assert_eq!(mine, seg);
    }

    /// NAT66's rewrite: new addresses and ports, checksum updated with the
    /// pseudo-header `Delta`s, checked by etherparse.
    #[test]
    fn address_rewrite_delta_keeps_l4_checksums_valid(
        src: [u8; 16], dst: [u8; 16], new_src: [u8; 16], new_dst: [u8; 16],
        sport: u16, dport: u16, new_sport: u16, new_dport: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut pkt = etherparse_udp(src, dst, sport, dport, &payload);
        let mut p = Packet::new_checked(&mut pkt[..]).unwrap();
        let delta = p.rewrite_src_addr(new_src.into()) + p.rewrite_dst_addr(new_dst.into());
        udp::Packet::new_unchecked(&mut p.payload_mut()[..]).rewrite_ports(new_sport, new_dport, delta);
        let Ok(sliced) = SlicedPacket::from_ip(&pkt) else { panic!("etherparse rejects it") };
        let Some(TransportSlice::Udp(u)) = sliced.transport else { panic!("not UDP") };
        prop_assert_eq!((u.source_port(), u.destination_port()), (new_sport, new_dport));
        let ip = Ipv6Header::from_slice(&pkt).unwrap().0;
        prop_assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv6(&ip, u.payload()).unwrap());
        // Field by field gives the same as the delta.
        let mut again = etherparse_udp(src, dst, sport, dport, &payload);
        let mut u2 = udp::Packet::new_unchecked(&mut again[HEADER_LEN..]);
        u2.update_checksum_for_addr_v6(src.into(), new_src.into());
        u2.update_checksum_for_addr_v6(dst.into(), new_dst.into());
        u2.rewrite_src_port(new_sport);
        u2.rewrite_dst_port(new_dport);
        prop_assert_eq!(&again[HEADER_LEN..], &pkt[HEADER_LEN..]);
    }

    /// The one-step rewrite of both addresses (and the hop limit) gives the
    /// packet the field-by-field rewrites give.
    #[test]
    fn set_addrs_equals_the_rewrites_one_by_one(
        src: [u8; 16], dst: [u8; 16], new_src: [u8; 16], new_dst: [u8; 16],
        forward: bool, hop in 2u8..,
        payload in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut pkt = etherparse_udp(src, dst, 1, 2, &payload);
        pkt[field::HOP_LIMIT] = hop;
        let mut again = pkt.clone();
        Packet::new_checked(&mut pkt[..]).unwrap().set_addrs(new_src.into(), new_dst.into(), forward);
        let mut q = Packet::new_checked(&mut again[..]).unwrap();
        q.set_src_addr(new_src.into());
        q.set_dst_addr(new_dst.into());
        if forward {
            q.set_hop_limit(hop - 1);
        }
        prop_assert_eq!(&pkt, &again);
    }

    /// The walk ends where etherparse's does, for chains etherparse accepts
    /// (at most one fragment header, a first fragment; AH length >= 1).
    #[test]
    fn walk_matches_etherparse(
        hbh in proptest::option::of(0u8..3),
        exts in proptest::collection::vec(ext_header(), 0..6),
        last in prop_oneof![Just(NextHeader::Tcp), Just(NextHeader::Udp), Just(NextHeader::Icmpv6),
            Just(NextHeader::NoNext), (100u8..130).prop_map(NextHeader::from)],
        more: bool,
        body in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        let frags = exts.iter().filter(|e| e.0 == NextHeader::Fragment).count();
        prop_assume!(frags <= 1);
        let (first, mut bytes) = chain_bytes(hbh, &exts, last, more);
        let chain_len = bytes.len();
        bytes.extend_from_slice(&body);
        let mut pkt = vec![0u8; HEADER_LEN + bytes.len()];
        Repr { src_addr: SRC, dst_addr: DST, next_header: first, hop_limit: 9, payload_len: bytes.len() }
            .emit(&mut Packet::new_unchecked(&mut pkt[..])).unwrap();
        pkt[HEADER_LEN..].copy_from_slice(&bytes);
        let p = Packet::new_checked(&pkt[..]).unwrap();
        let t = p.transport().unwrap();
        prop_assert_eq!(t.offset, HEADER_LEN + chain_len);
        prop_assert_eq!(t.protocol, last);
        prop_assert_eq!(t.fragment.is_some(), frags == 1);
        let theirs = Ipv6Slice::from_slice(&pkt).unwrap();
        prop_assert_eq!(IpNumber(u8::from(t.protocol)), theirs.payload().ip_number);
        prop_assert_eq!(p.upper_layer(&t), theirs.payload().payload);
        prop_assert_eq!(t.fragment.is_some_and(|f| !f.is_atomic()), theirs.is_payload_fragmented());
    }
}

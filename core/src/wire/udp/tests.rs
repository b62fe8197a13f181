//! Tests of [`super`]: byte fixtures, construction, parse/emit round trips, negative cases, and property tests checked with etherparse.

use super::*;
use crate::wire::ethernet::Frame;
use crate::wire::ipv4;
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice, UdpHeader, UdpSlice};
use proptest::prelude::*;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

// A datagram followed by two bytes that are not part of it.
#[rustfmt::skip]
const DATAGRAM: [u8; 14] = [
    0x00, 0x35,             // source port 53
    0x82, 0x35,             // destination port 33333
    0x00, 0x0c,             // length 12
    0xec, 0xf1,             // checksum (pseudo header 10.0.0.1 -> 192.168.1.10)
    0x61, 0x62, 0x63, 0x64, // payload "abcd"
    0xff, 0xff,             // trailing bytes (e.g. Ethernet padding)
];

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&DATAGRAM[..]).unwrap();
    assert_eq!(p.src_port(), 53);
    assert_eq!(p.dst_port(), 33333);
    assert_eq!(p.len(), 12);
    assert_eq!(p.checksum(), 0xecf1);
    assert_eq!(p.payload(), b"abcd");
    assert!(p.verify_checksum(SRC, DST));
    assert!(!p.verify_checksum(SRC, Ipv4Addr::new(192, 168, 1, 11)));
}

#[test]
fn construct() {
    let mut buf = [0xffu8; 14];
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_src_port(53);
    p.set_dst_port(33333);
    p.set_len(12);
    p.payload_mut().copy_from_slice(b"abcd");
    p.fill_checksum(SRC, DST);
    assert_eq!(buf, DATAGRAM);
}

#[test]
fn repr_round_trip() {
    let repr = Repr::parse(&Packet::new_checked(&DATAGRAM[..]).unwrap()).unwrap();
    assert_eq!(repr, Repr { src_port: 53, dst_port: 33333, payload_len: 4 });
    let mut buf = [0xffu8; 14];
    let mut p = Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut p).unwrap();
    assert_eq!(p.checksum(), 0);
    p.payload_mut().copy_from_slice(b"abcd");
    p.fill_checksum(SRC, DST);
    assert_eq!(buf, DATAGRAM);
    assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut [0u8; 11][..])), Err(Error::Truncated));
    let huge = Repr { payload_len: 65_528, ..repr };
    assert_eq!(huge.emit(&mut Packet::new_unchecked(&mut [0u8; 8][..])), Err(Error::Malformed));
}

#[test]
fn short_buffer() {
    for n in 0..HEADER_LEN {
        assert_eq!(Packet::new_checked(&DATAGRAM[..n]).err(), Some(Error::Truncated), "len {n}");
    }
}

#[test]
fn len_below_8() {
    for len in 0..8u16 {
        let mut buf = DATAGRAM;
        buf[4..6].copy_from_slice(&len.to_be_bytes());
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed), "len {len}");
    }
}

#[test]
fn len_beyond_buffer() {
    let mut buf = DATAGRAM;
    buf[4..6].copy_from_slice(&15u16.to_be_bytes());
    assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Truncated));
    assert_eq!(Packet::new_checked(&DATAGRAM[..11]).err(), Some(Error::Truncated));
    // Header-only datagram.
    buf[4..6].copy_from_slice(&8u16.to_be_bytes());
    assert!(Packet::new_checked(&buf[..]).unwrap().payload().is_empty());
}

#[test]
fn zero_checksum_means_none() {
    let mut buf = DATAGRAM;
    buf[6..8].fill(0);
    buf[8] = b'X'; // payload no longer matches any checksum
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    assert!(p.verify_checksum(SRC, DST));
    p.rewrite_src_port(1);
    p.rewrite_dst_port(2);
    p.update_checksum_for_addr(SRC, DST);
    assert_eq!(p.checksum(), 0);
    assert_eq!((p.src_port(), p.dst_port()), (1, 2));
}

/// Ones-complement addition of two 16-bit words.
fn oc_add(a: u16, b: u16) -> u16 {
    checksum::fold(u32::from(a) + u32::from(b))
}

#[test]
fn computed_zero_is_sent_as_ffff() {
    // Adjust the first payload word so the datagram sums to 0xffff:
    // adding the current checksum C to a word adds ~S to the sum S.
    let mut buf = DATAGRAM;
    let word = u16::from_be_bytes([buf[8], buf[9]]);
    buf[8..10].copy_from_slice(&oc_add(word, 0xecf1).to_be_bytes());
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    p.fill_checksum(SRC, DST);
    assert_eq!(p.checksum(), 0xffff);
    assert!(p.verify_checksum(SRC, DST));
    // etherparse computes the same transmitted value.
    let h = UdpSlice::from_slice(&buf[..12]).unwrap();
    let want = h.to_header().calc_checksum_ipv4_raw(SRC.octets(), DST.octets(), h.payload()).unwrap();
    assert_eq!(want, 0xffff);
}

#[test]
fn incremental_update_to_zero_is_sent_as_ffff() {
    // Rewriting the source port from P to P + C (ones-complement) moves
    // the sum to 0xffff, i.e. a computed checksum of 0.
    let mut buf = DATAGRAM;
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    let new_port = oc_add(53, 0xecf1);
    p.rewrite_src_port(new_port);
    assert_eq!(p.checksum(), 0xffff);
    assert!(p.verify_checksum(SRC, DST));
    let incremental = p.checksum();
    p.fill_checksum(SRC, DST);
    assert_eq!(incremental, p.checksum());
    // And back from 0xffff (computed 0) to the original.
    p.rewrite_src_port(53);
    assert_eq!(p.checksum(), 0xecf1);
}

#[test]
fn padding_excluded_from_checksum() {
    let mut buf = DATAGRAM;
    buf[12] = 0x12; // garbage after the datagram
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert!(p.verify_checksum(SRC, DST));
}

fn build(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b =
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(src, dst, 64).udp(sport, dport);
    let mut buf = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut buf, payload).unwrap();
    if buf.len() < 60 {
        buf.resize(60, 0);
    }
    buf
}

/// etherparse parses the frame and validates both checksums itself.
fn etherparse_valid(frame: &[u8]) -> UdpSlice<'_> {
    let sliced = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    let Some(TransportSlice::Udp(udp)) = sliced.transport else { panic!("not UDP") };
    let header: UdpHeader = udp.to_header();
    let want = header.calc_checksum_ipv4_raw(h.source, h.destination, udp.payload()).unwrap();
    assert_eq!(udp.checksum(), want, "UDP checksum");
    udp
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = (p.src_port(), p.dst_port(), p.len(), p.checksum(), p.payload().len());
            let _ = p.verify_checksum(SRC, DST);
            prop_assert!(Repr::parse(&p).is_ok());
        }
    }

    #[test]
    fn we_read_what_etherparse_writes(
        src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let frame = build(src, dst, sport, dport, &payload);
        let eth = Frame::new_checked(&frame[..]).unwrap();
        let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
        prop_assert!(ip.verify_checksum());
        prop_assert_eq!(ip.protocol(), ipv4::Protocol::Udp);
        let p = Packet::new_checked(ip.payload()).unwrap();
        prop_assert_eq!(p.src_port(), sport);
        prop_assert_eq!(p.dst_port(), dport);
        prop_assert_eq!(usize::from(p.len()), 8 + payload.len());
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_ne!(p.checksum(), 0);
        prop_assert!(p.verify_checksum(ip.src_addr(), ip.dst_addr()));
    }

    #[test]
    fn etherparse_reads_what_we_write(
        src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        let udp_len = 8 + payload.len();
        let mut frame = vec![0u8; (14 + 20 + udp_len).max(60)];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let repr = ipv4::Repr { src_addr: src, dst_addr: dst, protocol: ipv4::Protocol::Udp, ttl: 9, payload_len: udp_len };
        let mut ip = ipv4::Packet::new_unchecked(&mut frame[14..]);
        repr.emit(&mut ip).unwrap();
        let mut p = Packet::new_unchecked(ip.payload_mut());
        Repr { src_port: sport, dst_port: dport, payload_len: payload.len() }.emit(&mut p).unwrap();
        p.payload_mut().copy_from_slice(&payload);
        p.fill_checksum(src, dst);
        let e = etherparse_valid(&frame);
        prop_assert_eq!((e.source_port(), e.destination_port()), (sport, dport));
        prop_assert_eq!(e.payload(), &payload[..]);
    }

    /// Full-NAT rewrite of both addresses and both ports: incremental
    /// checksums equal a full recompute (with the 0 -> 0xffff rule), and
    /// etherparse validates the result.
    #[test]
    fn nat_rewrite_incremental_equals_recompute(
        src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        new_src: [u8; 4], new_dst: [u8; 4], new_sport: u16, new_dport: u16,
    ) {
        let mut frame = build(src, dst, sport, dport, &payload);
        let (new_src, new_dst) = (Ipv4Addr::from(new_src), Ipv4Addr::from(new_dst));
        let mut eth = Frame::new_checked(&mut frame[..]).unwrap();
        let mut ip = ipv4::Packet::new_checked(eth.payload_mut()).unwrap();
        let (old_src, old_dst) = (ip.src_addr(), ip.dst_addr());
        ip.rewrite_src_addr(new_src);
        ip.rewrite_dst_addr(new_dst);
        let ip_incremental = ip.checksum();
        let mut p = Packet::new_checked(ip.payload_mut()).unwrap();
        p.update_checksum_for_addr(old_src, new_src);
        p.update_checksum_for_addr(old_dst, new_dst);
        p.rewrite_src_port(new_sport);
        p.rewrite_dst_port(new_dport);
        let l4_incremental = p.checksum();
        prop_assert_ne!(l4_incremental, 0);
        prop_assert!(p.verify_checksum(new_src, new_dst));
        p.fill_checksum(new_src, new_dst);
        prop_assert_eq!(l4_incremental, p.checksum());
        ip.fill_checksum();
        prop_assert_eq!(ip_incremental, ip.checksum());
        let e = etherparse_valid(&frame);
        prop_assert_eq!((e.source_port(), e.destination_port()), (new_sport, new_dport));
    }

    /// NAT's fused rewrite (addresses, TTL, ports; one fold per checksum)
    /// equals a full recompute, etherparse validates it, and a port pair
    /// that lands on a computed 0 is sent as 0xffff.
    #[test]
    fn fused_rewrite_equals_recompute(
        src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        new_src: [u8; 4], new_dst: [u8; 4], new_sport: u16, new_dport: u16,
    ) {
        let mut frame = build(src, dst, sport, dport, &payload);
        let (new_src, new_dst) = (Ipv4Addr::from(new_src), Ipv4Addr::from(new_dst));
        let mut eth = Frame::new_checked(&mut frame[..]).unwrap();
        let mut ip = ipv4::Packet::new_checked(eth.payload_mut()).unwrap();
        let pseudo = ip.rewrite_addrs_and_forward(new_src, new_dst);
        prop_assert_eq!(ip.ttl(), 63);
        let mut p = Packet::new_checked(ip.payload_mut()).unwrap();
        p.rewrite_ports(new_sport, new_dport, pseudo);
        let e = etherparse_valid(&frame);
        prop_assert_eq!((e.source_port(), e.destination_port()), (new_sport, new_dport));
        // Through zero: the source port that makes the computed checksum 0.
        let mut eth = Frame::new_checked(&mut frame[..]).unwrap();
        let mut ip = ipv4::Packet::new_checked(eth.payload_mut()).unwrap();
        let mut p = Packet::new_checked(ip.payload_mut()).unwrap();
        let c = p.checksum();
        let zero_port = oc_add(new_sport, if c == 0xffff { 0 } else { c });
        p.rewrite_ports(zero_port, new_dport, checksum::Delta::default());
        prop_assert_eq!(p.checksum(), 0xffff);
        etherparse_valid(&frame);
    }

    /// Single-port rewrites that land exactly on a computed 0 and back.
    #[test]
    fn port_rewrite_through_zero(sport: u16, dport: u16, payload in proptest::collection::vec(any::<u8>(), 0..20)) {
        let frame = build([10, 0, 0, 1], [10, 0, 0, 2], sport, dport, &payload);
        let mut l4 = frame[34..34 + 8 + payload.len()].to_vec();
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut p = Packet::new_checked(&mut l4[..]).unwrap();
        // The port that makes the computed checksum 0.
        let c = p.checksum();
        let zero_port = oc_add(sport, if c == 0xffff { 0 } else { c });
        p.rewrite_src_port(zero_port);
        let inc = p.checksum();
        p.fill_checksum(a, b);
        prop_assert_eq!(inc, p.checksum());
        prop_assert!(p.verify_checksum(a, b));
        p.rewrite_src_port(sport);
        let inc = p.checksum();
        p.fill_checksum(a, b);
        prop_assert_eq!(inc, p.checksum());
    }
}

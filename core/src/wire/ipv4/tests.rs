//! Tests of [`super`]: byte fixtures, construction, parse/emit round trips, negative cases, and property tests checked with etherparse.

use super::*;
use etherparse::{IpNumber, Ipv4Header, Ipv4HeaderSlice, PacketBuilder, SlicedPacket};
use proptest::prelude::*;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

// A TCP segment in a frame with two bytes of Ethernet padding after it.
#[rustfmt::skip]
const PACKET: [u8; 46] = [
    0x45,                   // version 4, IHL 5
    0x00,                   // DSCP 0, ECN 0
    0x00, 0x2c,             // total length 44
    0x12, 0x34,             // identification
    0x40, 0x00,             // flags DF, fragment offset 0
    0x40,                   // TTL 64
    0x06,                   // protocol TCP
    0x5c, 0xe5,             // header checksum
    0xc0, 0xa8, 0x01, 0x0a, // source 192.168.1.10
    0x0a, 0x00, 0x00, 0x01, // destination 10.0.0.1
    // payload: 24 bytes (a TCP segment; see tcp.rs)
    0xc0, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04,
    0x0a, 0x0b, 0x0c, 0x0d, 0x50, 0x18, 0xfa, 0xf0,
    0x85, 0x42, 0x00, 0x00, 0x68, 0x69, 0x21, 0x0a,
    0x00, 0x00,             // Ethernet padding, not part of the packet
];

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&PACKET[..]).unwrap();
    assert_eq!(p.version(), 4);
    assert_eq!(p.header_len(), 20);
    assert_eq!((p.tos(), p.dscp(), p.ecn()), (0, 0, 0));
    assert_eq!(p.total_len(), 44);
    assert_eq!(p.ident(), 0x1234);
    assert!(p.dont_frag());
    assert!(!p.more_frags());
    assert_eq!(p.frag_offset(), 0);
    assert!(!p.is_fragment());
    assert_eq!(p.ttl(), 64);
    assert_eq!(p.protocol(), Protocol::Tcp);
    assert_eq!(p.checksum(), 0x5ce5);
    assert_eq!(p.src_addr(), SRC);
    assert_eq!(p.dst_addr(), DST);
    assert!(p.verify_checksum());
    assert!(p.options().is_empty());
    assert_eq!(p.payload(), &PACKET[20..44]);
}

#[test]
fn construct() {
    let mut buf = [0xa5u8; 46];
    buf[20..].copy_from_slice(&PACKET[20..]);
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_version(4);
    p.set_header_len(20);
    p.set_tos(0);
    p.set_total_len(44);
    p.set_ident(0x1234);
    p.clear_flags();
    p.set_dont_frag(true);
    p.set_more_frags(false);
    p.set_frag_offset(0);
    p.set_ttl(64);
    p.set_protocol(Protocol::Tcp);
    p.set_src_addr(SRC);
    p.set_dst_addr(DST);
    p.fill_checksum();
    assert_eq!(buf, PACKET);
}

#[test]
fn repr_round_trip() {
    let repr = Repr::parse(&Packet::new_checked(&PACKET[..]).unwrap()).unwrap();
    assert_eq!(
        repr,
        Repr { src_addr: SRC, dst_addr: DST, protocol: Protocol::Tcp, ttl: 64, payload_len: 24 }
    );
    let mut buf = PACKET;
    buf[..20].fill(0);
    repr.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    // Identical except the identification (emit writes 0) and checksum.
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(Repr::parse(&p).unwrap(), repr);
    assert!(p.verify_checksum() && p.dont_frag() && p.ident() == 0);
    assert_eq!(p.payload(), &PACKET[20..44]);
}

#[test]
fn repr_emit_errors() {
    let mut r = Repr { src_addr: SRC, dst_addr: DST, protocol: Protocol::Udp, ttl: 1, payload_len: 8 };
    assert_eq!(r.emit(&mut Packet::new_unchecked(&mut [0u8; 27][..])), Err(Error::Truncated));
    r.payload_len = 65_516;
    assert_eq!(r.emit(&mut Packet::new_unchecked(&mut [0u8; 27][..])), Err(Error::Malformed));
}

#[test]
fn fragments() {
    let mut buf = PACKET;
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_dont_frag(false);
    p.set_more_frags(true);
    assert!(p.is_fragment() && p.more_frags() && p.frag_offset() == 0);
    p.set_more_frags(false);
    p.set_frag_offset(1480);
    assert!(p.is_fragment() && !p.more_frags() && !p.dont_frag());
    assert_eq!(p.frag_offset(), 1480);
    assert_eq!(&buf[6..8], &[0x00, 0xb9]); // 1480 / 8 = 185
}

#[test]
fn dscp_ecn() {
    let mut buf = PACKET;
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_dscp(46); // EF
    p.set_ecn(0b11); // CE
    assert_eq!((p.tos(), p.dscp(), p.ecn()), (0xbb, 46, 3));
    p.set_ecn(0);
    assert_eq!((p.dscp(), p.ecn()), (46, 0));
}

#[test]
fn bad_checksum_detected() {
    let mut buf = PACKET;
    buf[11] ^= 1;
    assert!(!Packet::new_checked(&buf[..]).unwrap().verify_checksum());
}

#[test]
fn options_and_payload_with_ihl_6() {
    let mut buf = vec![0u8; 28];
    buf[..20].copy_from_slice(&PACKET[..20]);
    buf[0] = 0x46;
    buf[3] = 28;
    buf[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // router alert
    buf[24..28].copy_from_slice(&[1, 2, 3, 4]);
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    p.fill_checksum();
    assert_eq!(p.header_len(), 24);
    assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
    assert_eq!(p.payload(), &[1, 2, 3, 4]);
    let h = Ipv4HeaderSlice::from_slice(&buf).unwrap();
    assert_eq!(h.options(), &[0x94, 0x04, 0x00, 0x00]);
    assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
}

#[test]
fn short_buffer() {
    for n in 0..MIN_HEADER_LEN {
        assert_eq!(Packet::new_checked(&PACKET[..n]).err(), Some(Error::Truncated), "len {n}");
    }
}

#[test]
fn bad_version() {
    for v in [0u8, 5, 6, 15] {
        let mut buf = PACKET;
        buf[0] = v << 4 | 5;
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
    }
}

#[test]
fn ihl_below_5() {
    for ihl in 0..5u8 {
        let mut buf = PACKET;
        buf[0] = 0x40 | ihl;
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
    }
}

#[test]
fn ihl_beyond_buffer() {
    let mut buf = [0u8; 40];
    buf[..20].copy_from_slice(&PACKET[..20]);
    buf[0] = 0x4f; // 60-byte header in a 40-byte buffer
    buf[3] = 40;
    assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Truncated));
}

#[test]
fn total_len_below_header_len() {
    let mut buf = PACKET;
    buf[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
    buf[0] = 0x46; // header 24 > total 20 also malformed
    buf[2..4].copy_from_slice(&20u16.to_be_bytes());
    assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
}

#[test]
fn total_len_beyond_frame() {
    let mut buf = PACKET;
    buf[2..4].copy_from_slice(&47u16.to_be_bytes());
    assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Truncated));
    // The same packet cut short by the link layer.
    assert_eq!(Packet::new_checked(&PACKET[..43]).err(), Some(Error::Truncated));
    // Exactly the buffer length is fine.
    buf[2..4].copy_from_slice(&46u16.to_be_bytes());
    assert_eq!(Packet::new_checked(&buf[..]).unwrap().payload().len(), 26);
}

#[test]
fn protocol_numbers() {
    for (p, n) in [
        (Protocol::Icmp, 1u8),
        (Protocol::IpIp, 4),
        (Protocol::Tcp, 6),
        (Protocol::Udp, 17),
        (Protocol::from(47), 47),
    ] {
        assert_eq!(Protocol::from(n), p);
        assert_eq!(u8::from(p), n);
    }
}

#[test]
fn rewrite_and_ttl_match_recompute() {
    let mut buf = PACKET;
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    p.rewrite_src_addr(Ipv4Addr::new(172, 16, 0, 1));
    p.rewrite_dst_addr(Ipv4Addr::new(10, 1, 2, 3));
    assert_eq!(p.decrement_ttl(), 63);
    let incremental = p.checksum();
    p.fill_checksum();
    assert_eq!(incremental, p.checksum());
    let h = Ipv4HeaderSlice::from_slice(&buf).unwrap();
    assert_eq!(h.ttl(), 63);
    assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
}

#[test]
fn ttl_zero_is_left_alone() {
    let mut buf = PACKET;
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_ttl(0);
    p.fill_checksum();
    let before = p.checksum();
    assert_eq!(p.decrement_ttl(), 0);
    assert_eq!((p.ttl(), p.checksum()), (0, before));
}

#[test]
fn we_read_etherparse_packet() {
    let builder = PacketBuilder::ipv4(SRC.octets(), DST.octets(), 17).udp(1000, 53);
    let payload = [7u8; 5];
    let mut buf = Vec::new();
    builder.write(&mut buf, &payload).unwrap();
    buf.extend_from_slice(&[0, 0, 0]); // padding
    let p = Packet::new_checked(&buf[..]).unwrap();
    let h = Ipv4HeaderSlice::from_slice(&buf).unwrap();
    assert_eq!(p.version(), 4);
    assert_eq!(p.header_len(), usize::from(h.ihl()) * 4);
    assert_eq!(p.total_len(), h.total_len());
    assert_eq!(p.ident(), h.identification());
    assert_eq!(p.dont_frag(), h.dont_fragment());
    assert_eq!(p.ttl(), 17);
    assert_eq!(p.protocol(), Protocol::Udp);
    assert_eq!(p.checksum(), h.header_checksum());
    assert_eq!((p.src_addr(), p.dst_addr()), (SRC, DST));
    assert!(p.verify_checksum());
    assert_eq!(p.payload().len(), 8 + payload.len());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = (p.version(), p.header_len(), p.tos(), p.dscp(), p.ecn(), p.total_len());
            let _ = (p.ident(), p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment());
            let _ = (p.ttl(), p.protocol(), p.checksum(), p.src_addr(), p.dst_addr());
            let _ = (p.verify_checksum(), p.options().len(), p.payload().len());
            prop_assert!(Repr::parse(&p).is_ok());
        }
    }

    #[test]
    fn random_header_with_valid_prefix_never_panics(
        ver_ihl in 0x40u8..0x50,
        len: u16,
        rest in proptest::collection::vec(any::<u8>(), 16..80),
    ) {
        let mut data = vec![ver_ihl, 0];
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(&rest);
        if let Ok(mut p) = Packet::new_checked(&mut data[..]) {
            let _ = (p.options().len(), p.payload().len(), p.verify_checksum());
            p.fill_checksum();
            prop_assert!(p.verify_checksum());
            let _ = p.payload_mut().len();
        }
    }

    /// Our setters + fill_checksum, read back by etherparse.
    #[test]
    fn etherparse_reads_what_we_write(
        tos: u8, ident: u16, df: bool, mf: bool, off in 0u16..8192, ttl: u8, proto: u8,
        src: [u8; 4], dst: [u8; 4], payload_len in 0usize..64,
    ) {
        let mut buf = vec![0u8; 20 + payload_len];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_tos(tos);
        p.set_total_len((20 + payload_len) as u16);
        p.set_ident(ident);
        p.set_dont_frag(df);
        p.set_more_frags(mf);
        p.set_frag_offset(off * 8);
        p.set_ttl(ttl);
        p.set_protocol(Protocol::from(proto));
        p.set_src_addr(Ipv4Addr::from(src));
        p.set_dst_addr(Ipv4Addr::from(dst));
        p.fill_checksum();
        let h = Ipv4HeaderSlice::from_slice(&buf).unwrap();
        prop_assert_eq!(h.dcp().value(), tos >> 2);
        prop_assert_eq!(h.ecn().value(), tos & 3);
        prop_assert_eq!(h.identification(), ident);
        prop_assert_eq!(h.dont_fragment(), df);
        prop_assert_eq!(h.more_fragments(), mf);
        prop_assert_eq!(h.fragments_offset().value(), off);
        prop_assert_eq!(h.ttl(), ttl);
        prop_assert_eq!(h.protocol(), IpNumber(proto));
        prop_assert_eq!(h.source(), src);
        prop_assert_eq!(h.destination(), dst);
        prop_assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
    }

    /// Headers built by etherparse, read by us.
    #[test]
    fn we_read_what_etherparse_writes(
        ttl: u8, proto: u8, src: [u8; 4], dst: [u8; 4], ident: u16, df: bool,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut h = Ipv4Header::new(payload.len() as u16, ttl, IpNumber(proto), src, dst).unwrap();
        h.identification = ident;
        h.dont_fragment = df;
        h.header_checksum = h.calc_header_checksum();
        let mut buf = h.to_bytes().to_vec();
        buf.extend_from_slice(&payload);
        let p = Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(p.ttl(), ttl);
        prop_assert_eq!(u8::from(p.protocol()), proto);
        prop_assert_eq!(p.ident(), ident);
        prop_assert_eq!(p.dont_frag(), df);
        prop_assert_eq!(p.src_addr().octets(), src);
        prop_assert_eq!(p.dst_addr().octets(), dst);
        prop_assert_eq!(p.payload(), &payload[..]);
    }

    /// NAT-style rewrites with incremental updates equal a full recompute,
    /// and etherparse agrees the result is valid.
    #[test]
    fn incremental_rewrite_matches_recompute(
        src: [u8; 4], dst: [u8; 4], new_src: [u8; 4], new_dst: [u8; 4],
        ttl in 1u8..=255, ident: u16, proto: u8,
    ) {
        let mut h = Ipv4Header::new(0, ttl, IpNumber(proto), src, dst).unwrap();
        h.identification = ident;
        h.header_checksum = h.calc_header_checksum();
        let mut buf = h.to_bytes().to_vec();
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.rewrite_src_addr(Ipv4Addr::from(new_src));
        p.rewrite_dst_addr(Ipv4Addr::from(new_dst));
        p.decrement_ttl();
        let incremental = p.checksum();
        p.fill_checksum();
        prop_assert_eq!(incremental, p.checksum());
        let h2 = Ipv4HeaderSlice::from_slice(&buf).unwrap();
        prop_assert_eq!(h2.header_checksum(), h2.to_header().calc_header_checksum());
        prop_assert_eq!(h2.source(), new_src);
    }
}

#[test]
fn etherparse_sliced_packet_agrees_on_payload() {
    let mut frame = vec![0u8; 14];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&PACKET);
    let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
    let p = Packet::new_checked(&frame[14..]).unwrap();
    match sliced.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => {
            assert_eq!(ip.payload().payload, p.payload());
        }
        other => panic!("expected IPv4, got {other:?}"),
    }
}

/// Every protocol number survives `Protocol::from` and back, whichever
/// arm of `u8::from` (the TCP/UDP compares or the cold match) answers.
#[test]
fn protocol_numbers_round_trip() {
    for n in 0..=u8::MAX {
        let p = Protocol::from(n);
        assert_eq!(u8::from(p), n);
        assert_eq!(p.is_unknown(), !matches!(n, 1 | 4 | 6 | 17), "{n}");
    }
}

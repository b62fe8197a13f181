//! Tests of [`super`]: byte fixtures, round trips, negative cases and
//! property tests against an independent parser (etherparse).
use super::*;
use crate::wire::ethernet::Frame;
use crate::wire::ipv4;
use etherparse::{icmpv4::DestUnreachableHeader, IcmpEchoHeader, Icmpv4Slice, Icmpv4Type, PacketBuilder};
use proptest::prelude::*;

#[rustfmt::skip]
const ECHO_REQUEST: [u8; 16] = [
    0x08,                   // type: echo request
    0x00,                   // code 0
    0x54, 0x35,             // checksum
    0x12, 0x34,             // identifier
    0x00, 0x01,             // sequence number 1
    b'a', b'b', b'c', b'd', // data "abcdefgh"
    b'e', b'f', b'g', b'h',
];

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
    assert_eq!(p.msg_type(), Message::EchoRequest);
    assert_eq!(p.code(), 0);
    assert_eq!(p.checksum(), 0x5435);
    assert_eq!(p.echo_ident(), 0x1234);
    assert_eq!(p.echo_seq_no(), 1);
    assert_eq!(p.data(), b"abcdefgh");
    assert!(p.verify_checksum());
}

#[test]
fn construct() {
    let mut buf = [0xffu8; 16];
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(Message::EchoRequest);
    p.set_code(0);
    p.set_echo_ident(0x1234);
    p.set_echo_seq_no(1);
    p.data_mut().copy_from_slice(b"abcdefgh");
    p.fill_checksum();
    assert_eq!(buf, ECHO_REQUEST);
}

#[test]
fn echo_reply_in_place() {
    let mut buf = ECHO_REQUEST;
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    p.make_echo_reply();
    assert_eq!(p.msg_type(), Message::EchoReply);
    assert!(p.verify_checksum());
    let incremental = p.checksum();
    p.fill_checksum();
    assert_eq!(incremental, p.checksum());
    assert_eq!((p.echo_ident(), p.echo_seq_no(), p.data()), (0x1234, 1, &b"abcdefgh"[..]));
}

#[test]
fn an_all_zero_echo_reply_still_verifies() {
    // Request: type 8, identifier, sequence and 8 bytes of data all 0.
    let mut buf = [0u8; 16];
    buf[0] = 8;
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    p.fill_checksum();
    assert!(p.verify_checksum());
    p.make_echo_reply();
    assert!(p.verify_checksum(), "checksum {:#06x} over all-zero data", p.checksum());
    assert_eq!(p.checksum(), 0xffff);
}

#[test]
fn short_buffer() {
    for n in 0..HEADER_LEN {
        assert_eq!(Packet::new_checked(&ECHO_REQUEST[..n]).err(), Some(Error::Truncated), "len {n}");
    }
    assert!(Packet::new_checked(&ECHO_REQUEST[..8]).unwrap().data().is_empty());
}

#[test]
fn bad_checksum_detected() {
    let mut buf = ECHO_REQUEST;
    buf[15] ^= 0x40;
    assert!(!Packet::new_checked(&buf[..]).unwrap().verify_checksum());
}

#[test]
fn message_numbers() {
    for (m, n) in [
        (Message::EchoReply, 0u8),
        (Message::DstUnreachable, 3),
        (Message::EchoRequest, 8),
        (Message::TimeExceeded, 11),
        (Message::Unknown(5), 5),
    ] {
        assert_eq!(Message::from(n), m);
        assert_eq!(u8::from(m), n);
    }
}

#[test]
fn frag_needed_read_by_etherparse() {
    // A "fragmentation needed" error quoting the IPv4 header of ipv4.rs.
    let mut buf = vec![0u8; 8 + 28];
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(Message::DstUnreachable);
    p.set_code(CODE_FRAG_NEEDED);
    p.set_next_hop_mtu(1400);
    #[rustfmt::skip]
    let quoted: [u8; 28] = [
        0x45, 0x00, 0x05, 0xdc, 0x12, 0x34, 0x40, 0x00, // v4 IHL 5, len 1500, DF
        0x40, 0x06, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x0a, // TTL 64, TCP, src
        0x0a, 0x00, 0x00, 0x01,                         // dst
        0xc0, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, // ports, seq
    ];
    p.data_mut().copy_from_slice(&quoted);
    p.fill_checksum();
    let e = Icmpv4Slice::from_slice(&buf).unwrap();
    assert_eq!(
        e.icmp_type(),
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 })
    );
    assert_eq!(e.checksum(), e.icmp_type().calc_checksum(e.payload()));
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.next_hop_mtu(), 1400);
    let inner = ipv4::Packet::new_unchecked(p.data());
    assert_eq!(inner.dst_addr(), std::net::Ipv4Addr::new(10, 0, 0, 1));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = (p.msg_type(), p.code(), p.checksum(), p.echo_ident(), p.echo_seq_no());
            let _ = (p.next_hop_mtu(), p.data().len(), p.verify_checksum());
        }
    }

    /// etherparse builds an echo request in a frame; we read it and
    /// answer it in place; etherparse validates the reply.
    #[test]
    fn echo_round_trip_with_etherparse(
        id: u16, seq: u16, payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(id, seq);
        let mut frame = Vec::new();
        b.write(&mut frame, &payload).unwrap();
        frame.resize(frame.len().max(60), 0);

        let mut eth = Frame::new_checked(&mut frame[..]).unwrap();
        let mut ip = ipv4::Packet::new_checked(eth.payload_mut()).unwrap();
        prop_assert_eq!(ip.protocol(), ipv4::Protocol::Icmp);
        let mut p = Packet::new_checked(ip.payload_mut()).unwrap();
        prop_assert_eq!(p.msg_type(), Message::EchoRequest);
        prop_assert_eq!((p.echo_ident(), p.echo_seq_no()), (id, seq));
        prop_assert_eq!(p.data(), &payload[..]);
        prop_assert!(p.verify_checksum());
        p.make_echo_reply();

        let icmp_len = 8 + payload.len();
        let e = Icmpv4Slice::from_slice(&frame[34..34 + icmp_len]).unwrap();
        prop_assert_eq!(e.icmp_type(), Icmpv4Type::EchoReply(IcmpEchoHeader { id, seq }));
        prop_assert_eq!(e.checksum(), e.icmp_type().calc_checksum(e.payload()));
    }

    /// We write with setters + fill_checksum; etherparse validates.
    #[test]
    fn etherparse_reads_what_we_write(
        id: u16, seq: u16, payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut buf = vec![0u8; 8 + payload.len()];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Message::EchoRequest);
        p.set_echo_ident(id);
        p.set_echo_seq_no(seq);
        p.data_mut().copy_from_slice(&payload);
        p.fill_checksum();
        let e = Icmpv4Slice::from_slice(&buf).unwrap();
        prop_assert_eq!(e.icmp_type(), Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq }));
        prop_assert_eq!(e.checksum(), e.icmp_type().calc_checksum(e.payload()));
    }
}

/// A "port unreachable" from 198.18.1.2 quoting a datagram (or segment)
/// 198.18.1.10:5000 -> 198.18.1.2:8080, built by etherparse.
fn port_unreachable(udp_quote: bool, payload: &[u8]) -> Vec<u8> {
    let mut quoted = vec![];
    let b = PacketBuilder::ipv4([198, 18, 1, 10], [198, 18, 1, 2], 64);
    if udp_quote {
        b.udp(5000, 8080).write(&mut quoted, payload).unwrap();
    } else {
        b.tcp(5000, 8080, 1, 100).write(&mut quoted, payload).unwrap();
    }
    let mut out = vec![];
    PacketBuilder::ipv4([198, 18, 1, 2], [198, 18, 1, 10], 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port))
        .write(&mut out, &quoted[..28])
        .unwrap();
    out[20..].to_vec()
}

#[test]
fn an_error_quotes_a_flow() {
    for udp_quote in [true, false] {
        let m = port_unreachable(udp_quote, b"hello");
        let p = Packet::new_checked(&m[..]).unwrap();
        let proto = if udp_quote { ipv4::Protocol::Udp } else { ipv4::Protocol::Tcp };
        let want = FlowKey { proto, src: 0xc612_010a, sport: 5000, dst: 0xc612_0102, dport: 8080 };
        assert_eq!(p.quoted(), Some(want));
    }
    // Not an error; a quote too short for the ports; a quote of ICMP; not IPv4.
    assert_eq!(Packet::new_checked(&ECHO_REQUEST[..]).unwrap().quoted(), None);
    let m = port_unreachable(true, b"");
    assert_eq!(Packet::new_checked(&m[..8 + 27]).unwrap().quoted(), None);
    let mut icmp_quote = m.clone();
    icmp_quote[8 + 9] = 1;
    assert_eq!(Packet::new_checked(&icmp_quote[..]).unwrap().quoted(), None);
    let mut v6 = m.clone();
    v6[8] = 0x65;
    assert_eq!(Packet::new_checked(&v6[..]).unwrap().quoted(), None);
    let mut bad_ihl = m;
    bad_ihl[8] = 0x44;
    assert_eq!(Packet::new_checked(&bad_ihl[..]).unwrap().quoted(), None);
}

#[test]
fn a_rewritten_quote_has_valid_checksums() {
    for udp_quote in [true, false] {
        let mut m = port_unreachable(udp_quote, b"hello");
        let mut p = Packet::new_checked(&mut m[..]).unwrap();
        p.rewrite_quoted(
            (std::net::Ipv4Addr::new(198, 18, 0, 2), 40000),
            (std::net::Ipv4Addr::new(198, 18, 0, 100), 80),
        );
        let want = FlowKey {
            proto: if udp_quote { ipv4::Protocol::Udp } else { ipv4::Protocol::Tcp },
            src: 0xc612_0002,
            sport: 40000,
            dst: 0xc612_0064,
            dport: 80,
        };
        assert_eq!(p.quoted(), Some(want));
        let e = Icmpv4Slice::from_slice(&m).unwrap();
        assert_eq!(e.checksum(), e.icmp_type().calc_checksum(e.payload()), "ICMP checksum");
        let inner = etherparse::Ipv4HeaderSlice::from_slice(&m[8..28]).unwrap().to_header();
        assert_eq!(inner.header_checksum, inner.calc_header_checksum(), "quoted IPv4 checksum");
        if udp_quote {
            // The quoted datagram is whole here: its checksum must verify.
            let u = etherparse::UdpHeaderSlice::from_slice(&m[28..36]).unwrap().to_header();
            let want = u.calc_checksum_ipv4_raw([198, 18, 0, 2], [198, 18, 0, 100], b"hello").unwrap();
            assert_eq!(u.checksum, want, "quoted UDP checksum");
        }
    }
    // A quoted UDP datagram without a checksum keeps none (RFC 768).
    let mut m = port_unreachable(true, b"hello");
    m[8 + 26] = 0;
    m[8 + 27] = 0;
    let mut p = Packet::new_checked(&mut m[..]).unwrap();
    p.fill_checksum();
    p.rewrite_quoted((std::net::Ipv4Addr::new(1, 2, 3, 4), 1), (std::net::Ipv4Addr::new(5, 6, 7, 8), 2));
    assert_eq!(&m[8 + 26..8 + 28], &[0, 0]);
}

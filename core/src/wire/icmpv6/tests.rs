//! Tests of [`super`]: byte fixtures for echo, NS and NA, errors with a quoted packet, negative cases, and property tests checked with etherparse.

use super::*;
use crate::wire::ipv6::Repr as Ipv6Repr;
use etherparse::{IcmpEchoHeader, Icmpv6Slice, Icmpv6Type, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;

const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const B_SOLICITED: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);
const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

// Echo request A -> B, checksum computed independently (python).
#[rustfmt::skip]
const ECHO: [u8; 12] = [
    0x80, 0x00,             // type 128 (echo request), code 0
    0x88, 0x9b,             // checksum
    0x12, 0x34,             // identifier
    0x00, 0x01,             // sequence number 1
    0x68, 0x69, 0x21, 0x0a, // data "hi!\n"
];

// NS from A to B's solicited-node group, asking for B.
#[rustfmt::skip]
const NS: [u8; 32] = [
    0x87, 0x00,             // type 135 (neighbour solicitation), code 0
    0x1c, 0x27,             // checksum
    0x00, 0x00, 0x00, 0x00, // reserved
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // target 2001:db8::2
    0x01, 0x01,             // option: source link-layer address, length 1 (8 bytes)
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // 02:00:00:00:00:01
];

// NA from B to A: solicited, override, B is at 02:00:00:00:00:02.
#[rustfmt::skip]
const NA: [u8; 32] = [
    0x88, 0x00,             // type 136 (neighbour advertisement), code 0
    0x8a, 0x71,             // checksum
    0x60, 0x00, 0x00, 0x00, // flags S and O, reserved
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // target 2001:db8::2
    0x02, 0x01,             // option: target link-layer address, length 1
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // 02:00:00:00:00:02
];

#[test]
fn deconstruct_echo() {
    let p = Packet::new_checked(&ECHO[..]).unwrap();
    assert_eq!((p.msg_type(), p.code(), p.checksum()), (Message::EchoRequest, 0, 0x889b));
    assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
    assert_eq!(p.data(), b"hi!\n");
    assert!(p.verify_checksum(A, B));
    assert!(!p.verify_checksum(A, A));
    assert!(!p.msg_type().is_error());
    assert_eq!(p.target_addr(), Ipv6Addr::UNSPECIFIED);
    assert_eq!(p.nd_options().count(), 0);
    assert!(p.quoted().is_none());
    // etherparse agrees.
    let s = Icmpv6Slice::from_slice(&ECHO).unwrap();
    assert!(s.is_checksum_valid(A.octets(), B.octets()));
    assert_eq!(s.icmp_type(), Icmpv6Type::EchoRequest(IcmpEchoHeader { id: 0x1234, seq: 1 }));
}

#[test]
fn construct_echo() {
    let mut buf = [0u8; 12];
    buf[8..].copy_from_slice(b"hi!\n");
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(Message::EchoRequest);
    p.set_code(0);
    p.set_echo_ident(0x1234);
    p.set_echo_seq_no(1);
    p.fill_checksum(A, B);
    assert_eq!(buf, ECHO);
}

#[test]
fn echo_reply_in_place() {
    let mut buf = ECHO;
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.make_echo_reply();
    assert_eq!(p.msg_type(), Message::EchoReply);
    assert!(p.verify_checksum(B, A));
    let s = Icmpv6Slice::from_slice(&buf).unwrap();
    assert!(s.is_checksum_valid(B.octets(), A.octets()));
    assert_eq!(s.icmp_type(), Icmpv6Type::EchoReply(IcmpEchoHeader { id: 0x1234, seq: 1 }));
}

#[test]
fn deconstruct_ns_and_na() {
    let ns = Packet::new_checked(&NS[..]).unwrap();
    assert_eq!(ns.msg_type(), Message::NeighborSolicit);
    assert!(ns.verify_checksum(A, B_SOLICITED));
    assert_eq!(ns.target_addr(), B);
    assert_eq!(ns.source_ll_addr(), Ok(Some(MAC_A)));
    assert_eq!(ns.target_ll_addr(), Ok(None));
    assert_eq!(NdRepr::parse(&ns), Ok(NdRepr::Solicit { target: B, lladdr: Some(MAC_A) }));
    assert_eq!(crate::wire::ipv6::solicited_node(B), B_SOLICITED);

    let na = Packet::new_checked(&NA[..]).unwrap();
    assert_eq!(na.msg_type(), Message::NeighborAdvert);
    assert!(na.verify_checksum(B, A));
    assert_eq!(na.na_flags(), NA_SOLICITED | NA_OVERRIDE);
    assert_eq!(na.target_ll_addr(), Ok(Some(MAC_B)));
    assert_eq!(
        NdRepr::parse(&na),
        Ok(NdRepr::Advert { flags: NA_SOLICITED | NA_OVERRIDE, target: B, lladdr: Some(MAC_B) })
    );
    // etherparse 0.16 reads NS/NA as "unknown" types; it checks the checksum.
    assert!(Icmpv6Slice::from_slice(&NS).unwrap().is_checksum_valid(A.octets(), B_SOLICITED.octets()));
    assert!(Icmpv6Slice::from_slice(&NA).unwrap().is_checksum_valid(B.octets(), A.octets()));
}

#[test]
fn emit_ns_and_na() {
    let mut buf = [0xa5u8; 40];
    let ns = NdRepr::Solicit { target: B, lladdr: Some(MAC_A) };
    assert_eq!(ns.buffer_len(), 32);
    ns.emit(&mut Packet::new_unchecked(&mut buf[..]), A, B_SOLICITED).unwrap();
    assert_eq!(buf[..32], NS);
    let na = NdRepr::Advert { flags: NA_SOLICITED | NA_OVERRIDE, target: B, lladdr: Some(MAC_B) };
    na.emit(&mut Packet::new_unchecked(&mut buf[..]), B, A).unwrap();
    assert_eq!(buf[..32], NA);
    // Without an option: 24 bytes; too short a buffer is an error.
    let bare = NdRepr::Solicit { target: B, lladdr: None };
    assert_eq!(bare.buffer_len(), 24);
    assert_eq!(bare.emit(&mut Packet::new_unchecked(&mut [0u8; 23][..]), A, B), Err(Error::Truncated));
    let mut small = [0u8; 24];
    bare.emit(&mut Packet::new_unchecked(&mut small[..]), A, B).unwrap();
    let p = Packet::new_checked(&small[..]).unwrap();
    assert!(p.verify_checksum(A, B));
    assert_eq!(NdRepr::parse(&p), Ok(bare));
}

#[test]
fn negative_cases() {
    assert_eq!(Packet::new_checked(&ECHO[..7]).unwrap_err(), Error::Truncated);
    // An NS must hold its target address.
    assert_eq!(Packet::new_checked(&NS[..23]).unwrap_err(), Error::Truncated);
    assert!(Packet::new_checked(&NS[..24]).is_ok());
    // An option of length 0 is malformed (RFC 4861 §4.6).
    let mut zero = NS;
    zero[25] = 0;
    let p = Packet::new_checked(&zero[..]).unwrap();
    assert_eq!(p.source_ll_addr(), Err(Error::Malformed));
    assert_eq!(NdRepr::parse(&p), Err(Error::Malformed));
    // An option running past the message.
    let mut long = NS;
    long[25] = 2;
    assert_eq!(Packet::new_checked(&long[..]).unwrap().source_ll_addr(), Err(Error::Malformed));
    // A link-layer option that is not 8 bytes.
    let mut big = [0u8; 40];
    big[..32].copy_from_slice(&NS);
    big[25] = 2;
    assert_eq!(Packet::new_checked(&big[..]).unwrap().source_ll_addr(), Err(Error::Malformed));
    // An unknown option is skipped.
    let mut other = [0u8; 40];
    other[..24].copy_from_slice(&NS[..24]);
    other[24..32].copy_from_slice(&[14, 1, 0, 0, 0, 0, 0, 0]); // nonce option
    other[32..40].copy_from_slice(&NS[24..32]);
    let p = Packet::new_checked(&other[..]).unwrap();
    assert_eq!(p.nd_options().count(), 2);
    assert_eq!(p.source_ll_addr(), Ok(Some(MAC_A)));
    // Code != 0, or a type that is not NS/NA.
    let mut code = NS;
    code[1] = 1;
    assert_eq!(NdRepr::parse(&Packet::new_checked(&code[..]).unwrap()), Err(Error::Malformed));
    assert_eq!(NdRepr::parse(&Packet::new_checked(&ECHO[..]).unwrap()), Err(Error::Malformed));
}

/// A Packet Too Big from a router R to A, quoting A's UDP datagram to B.
fn packet_too_big(mtu: u32) -> Vec<u8> {
    let b = PacketBuilder::ipv6(A.octets(), B.octets(), 64).udp(40000, 53);
    let mut quoted = Vec::new();
    b.write(&mut quoted, &[0x55; 32]).unwrap();
    let mut out = vec![0u8; HEADER_LEN + quoted.len()];
    out[HEADER_LEN..].copy_from_slice(&quoted);
    let mut p = Packet::new_unchecked(&mut out[..]);
    p.set_msg_type(Message::PacketTooBig);
    p.set_code(0);
    p.set_mtu(mtu);
    p.fill_checksum(Ipv6Addr::LOCALHOST, A);
    out
}

#[test]
fn packet_too_big_quotes_the_flow() {
    let buf = packet_too_big(1280);
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert!(p.msg_type().is_error());
    assert_eq!(p.mtu(), 1280);
    let (ip, t) = p.quoted().unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (A, B));
    assert_eq!((t.protocol, t.offset), (NextHeader::Udp, 40));
    assert_eq!(p.quoted_ports(), Some((NextHeader::Udp, 40000, 53)));
    // etherparse reads the same message.
    let s = Icmpv6Slice::from_slice(&buf).unwrap();
    assert_eq!(s.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1280 });
    assert!(s.is_checksum_valid(Ipv6Addr::LOCALHOST.octets(), A.octets()));
    // A quote cut inside the UDP ports, or not IPv6, gives no flow.
    assert_eq!(Packet::new_checked(&buf[..8 + 40 + 3]).unwrap().quoted_ports(), None);
    let mut v4 = buf.clone();
    v4[8] = 0x45;
    assert!(Packet::new_checked(&v4[..]).unwrap().quoted().is_none());
    assert!(Packet::new_checked(&buf[..8 + 39]).unwrap().quoted().is_none());
}

#[test]
fn message_numbers_round_trip() {
    for v in 0..=255u8 {
        let m = Message::from(v);
        assert_eq!(u8::from(m), v);
        assert_eq!(m.is_error(), v < 128);
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = (p.msg_type(), p.target_addr(), p.na_flags(), p.mtu(), p.data().len());
            let _ = (p.source_ll_addr(), p.target_ll_addr(), p.quoted(), p.quoted_ports());
            let _ = NdRepr::parse(&p);
            for o in p.nd_options() {
                let _ = o;
            }
        }
    }

    /// Echo requests written by etherparse verify with us, our reply
    /// verifies with etherparse.
    #[test]
    fn echo_against_etherparse(
        src: [u8; 16], dst: [u8; 16], id: u16, seq: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let b = PacketBuilder::ipv6(src, dst, 64).icmpv6_echo_request(id, seq);
        let mut pkt = Vec::new();
        b.write(&mut pkt, &payload).unwrap();
        let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
        let ip = crate::wire::ipv6::Packet::new_checked(&mut pkt[..]).unwrap();
        let t = ip.transport().unwrap();
        prop_assert_eq!(t.protocol, NextHeader::Icmpv6);
        let mut ip = ip;
        let mut icmp = Packet::new_checked(&mut ip.payload_mut()[..]).unwrap();
        prop_assert!(icmp.verify_checksum(s, d));
        prop_assert_eq!((icmp.echo_ident(), icmp.echo_seq_no()), (id, seq));
        icmp.make_echo_reply();
        ip.set_src_addr(d);
        ip.set_dst_addr(s);
        let sliced = SlicedPacket::from_ip(&pkt).unwrap();
        let Some(TransportSlice::Icmpv6(reply)) = sliced.transport else { panic!("not ICMPv6") };
        prop_assert_eq!(reply.icmp_type(), Icmpv6Type::EchoReply(IcmpEchoHeader { id, seq }));
        prop_assert!(reply.is_checksum_valid(dst, src));
    }

    /// NS/NA we emit verify with etherparse and parse back.
    #[test]
    fn nd_emit_parse_round_trip(
        src: [u8; 16], dst: [u8; 16], target: [u8; 16], mac: [u8; 6], flags in 0u8..8, advert: bool, opt: bool,
    ) {
        let lladdr = opt.then_some(MacAddr(mac));
        let repr = if advert {
            NdRepr::Advert { flags: flags << 5, target: target.into(), lladdr }
        } else {
            NdRepr::Solicit { target: target.into(), lladdr }
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]), src.into(), dst.into()).unwrap();
        prop_assert!(Icmpv6Slice::from_slice(&buf).unwrap().is_checksum_valid(src, dst));
        let p = Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(NdRepr::parse(&p), Ok(repr));
        // In an IPv6 packet, the walk finds it.
        let mut pkt = vec![0u8; 40 + buf.len()];
        Ipv6Repr { src_addr: src.into(), dst_addr: dst.into(), next_header: NextHeader::Icmpv6,
            hop_limit: ND_HOP_LIMIT, payload_len: buf.len() }
            .emit(&mut crate::wire::ipv6::Packet::new_unchecked(&mut pkt[..])).unwrap();
        pkt[40..].copy_from_slice(&buf);
        let sliced = SlicedPacket::from_ip(&pkt).unwrap();
        let Some(TransportSlice::Icmpv6(theirs)) = sliced.transport else { panic!("not ICMPv6") };
        prop_assert!(theirs.is_checksum_valid(src, dst));
    }
}

proptest! {
    /// An error quoting a whole TCP or UDP packet (etherparse's, with an
    /// extension header half the time), its quote rewritten to random
    /// ends and the ICMPv6 checksum computed for random outer addresses:
    /// etherparse reads the new ends, and both checksums verify there.
    #[test]
    fn rewrite_quoted_against_etherparse(
        q_src: [u8; 16], q_dst: [u8; 16], ports: (u16, u16), new_src: [u8; 16], new_dst: [u8; 16],
        new_ports: (u16, u16), outer: ([u8; 16], [u8; 16]), tcp: bool, ext: bool,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut quoted = vec![];
        let ip = etherparse::Ipv6Header {
            source: q_src,
            destination: q_dst,
            hop_limit: 64,
            ..Default::default()
        };
        let exts = if ext {
            etherparse::Ipv6Extensions {
                destination_options: Some(etherparse::Ipv6RawExtHeader::new_raw(
                    etherparse::IpNumber(0), &[0; 6]).unwrap()),
                ..Default::default()
            }
        } else {
            Default::default()
        };
        let b = PacketBuilder::ip(etherparse::IpHeaders::Ipv6(ip, exts));
        if tcp {
            b.tcp(ports.0, ports.1, 7, 1000).write(&mut quoted, &payload).unwrap();
        } else {
            b.udp(ports.0, ports.1).write(&mut quoted, &payload).unwrap();
        }
        let mut msg = vec![1, 4, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&quoted);
        let mut p = Packet::new_checked(&mut msg[..]).unwrap();
        let (s, d) = (Ipv6Addr::from(new_src), Ipv6Addr::from(new_dst));
        prop_assert!(p.rewrite_quoted((s, new_ports.0), (d, new_ports.1)));
        p.fill_checksum(outer.0.into(), outer.1.into());
        let theirs = Icmpv6Slice::from_slice(&msg).unwrap();
        prop_assert!(theirs.is_checksum_valid(outer.0, outer.1));
        let inner = SlicedPacket::from_ip(theirs.payload()).unwrap();
        let Some(etherparse::NetSlice::Ipv6(qip)) = &inner.net else { panic!("not IPv6") };
        let h = qip.header().to_header();
        prop_assert_eq!((h.source, h.destination), (new_src, new_dst));
        match inner.transport {
            Some(TransportSlice::Tcp(t)) => {
                prop_assert_eq!((t.source_port(), t.destination_port()), new_ports);
                prop_assert_eq!(t.checksum(), t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap());
            }
            Some(TransportSlice::Udp(u)) => {
                prop_assert_eq!((u.source_port(), u.destination_port()), new_ports);
                prop_assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap());
            }
            other => panic!("quotes {other:?}"),
        }
    }
}

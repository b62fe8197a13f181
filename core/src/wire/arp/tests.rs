//! Tests of [`super`]: byte fixtures, construction, parse/emit round trips, negative cases, and property tests checked with etherparse.

use super::*;
use crate::wire::ethernet::{self, EtherType, Frame};
use proptest::prelude::*;

#[rustfmt::skip]
const REQUEST: [u8; 28] = [
    0x00, 0x01,                         // htype: Ethernet
    0x08, 0x00,                         // ptype: IPv4
    0x06,                               // hlen
    0x04,                               // plen
    0x00, 0x01,                         // operation: request
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // sha 02:00:00:00:00:01
    0x0a, 0x00, 0x00, 0x01,             // spa 10.0.0.1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // tha (unknown)
    0x0a, 0x00, 0x00, 0x02,             // tpa 10.0.0.2
];

#[rustfmt::skip]
const REPLY: [u8; 28] = [
    0x00, 0x01,                         // htype: Ethernet
    0x08, 0x00,                         // ptype: IPv4
    0x06,                               // hlen
    0x04,                               // plen
    0x00, 0x02,                         // operation: reply
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // sha 02:00:00:00:00:02
    0x0a, 0x00, 0x00, 0x02,             // spa 10.0.0.2
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // tha 02:00:00:00:00:01
    0x0a, 0x00, 0x00, 0x01,             // tpa 10.0.0.1
];

const MAC1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const MAC2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const IP1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&REQUEST[..]).unwrap();
    assert_eq!(p.hardware_type(), 1);
    assert_eq!(p.protocol_type(), 0x0800);
    assert_eq!(p.hardware_len(), 6);
    assert_eq!(p.protocol_len(), 4);
    assert_eq!(p.operation(), Operation::Request);
    assert_eq!(p.source_hardware_addr(), MAC1);
    assert_eq!(p.source_protocol_addr(), IP1);
    assert_eq!(p.target_hardware_addr(), MacAddr::ZERO);
    assert_eq!(p.target_protocol_addr(), IP2);
}

#[test]
fn construct() {
    let mut buf = [0xffu8; 28];
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_hardware_type(1);
    p.set_protocol_type(0x0800);
    p.set_hardware_len(6);
    p.set_protocol_len(4);
    p.set_operation(Operation::Reply);
    p.set_source_hardware_addr(MAC2);
    p.set_source_protocol_addr(IP2);
    p.set_target_hardware_addr(MAC1);
    p.set_target_protocol_addr(IP1);
    assert_eq!(buf, REPLY);
}

#[test]
fn repr_round_trip_and_reply() {
    let req = Repr::parse(&Packet::new_unchecked(&REQUEST[..])).unwrap();
    assert_eq!(req, Repr::request(MAC1, IP1, IP2));
    let mut buf = [0u8; 28];
    req.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    assert_eq!(buf, REQUEST);

    let reply = req.reply(MAC2);
    reply.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    assert_eq!(buf, REPLY);
    assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])).unwrap(), reply);
    assert_eq!(reply.buffer_len(), 28);
}

#[test]
fn emit_into_short_buffer() {
    let mut buf = [0u8; 27];
    let r = Repr::request(MAC1, IP1, IP2);
    assert_eq!(r.emit(&mut Packet::new_unchecked(&mut buf[..])), Err(Error::Truncated));
    assert_eq!(buf, [0u8; 27]);
}

#[test]
fn padding_is_ignored() {
    // An ARP packet in a minimum-size Ethernet frame has 18 bytes of padding.
    let mut buf = REQUEST.to_vec();
    buf.extend_from_slice(&[0u8; 18]);
    let r = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
    assert_eq!(r.target_protocol_addr, IP2);
}

#[test]
fn short_buffer() {
    for n in 0..HEADER_LEN {
        assert_eq!(Packet::new_checked(&REQUEST[..n]).err(), Some(Error::Truncated), "len {n}");
    }
}

#[test]
fn wrong_types_and_lengths() {
    // (offset, value): htype 6 (IEEE 802), ptype IPv6, hlen 8, plen 16.
    for (at, v) in [(1usize, 6u8), (0, 1), (2, 0x86), (3, 0x06), (4, 8), (5, 16), (5, 6)] {
        let mut buf = REQUEST;
        buf[at] = v;
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed), "byte {at} = {v}");
        assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])).err(), Some(Error::Malformed));
    }
}

#[test]
fn unknown_operation() {
    let mut buf = REQUEST;
    buf[7] = 9;
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.operation(), Operation::Unknown(9));
    assert_eq!(u16::from(p.operation()), 9);
}

#[test]
fn in_an_ethernet_frame_read_by_etherparse() {
    // etherparse 0.16 has no ARP parser: it checks the Ethernet header
    // around our ARP bytes, and the ARP bytes are checked by the fixtures.
    let mut buf = [0u8; 60];
    let mut f = Frame::new_unchecked(&mut buf[..]);
    ethernet::Repr { src_addr: MAC1, dst_addr: MacAddr::BROADCAST, ethertype: EtherType::Arp }
        .emit(&mut f)
        .unwrap();
    Repr::request(MAC1, IP1, IP2).emit(&mut Packet::new_unchecked(f.payload_mut())).unwrap();
    let (eth, rest) = etherparse::Ethernet2Header::from_slice(&buf).unwrap();
    assert_eq!(eth.ether_type, etherparse::EtherType::ARP);
    assert_eq!(eth.destination, [0xff; 6]);
    assert_eq!(&rest[..28], &REQUEST[..]);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = (p.hardware_type(), p.protocol_type(), p.hardware_len(), p.protocol_len());
            let _ = (p.operation(), p.source_hardware_addr(), p.source_protocol_addr());
            let _ = (p.target_hardware_addr(), p.target_protocol_addr());
            prop_assert!(Repr::parse(&p).is_ok());
        }
    }

    #[test]
    fn valid_prefix_random_tail(tail in proptest::collection::vec(any::<u8>(), 22)) {
        // Random addresses and opcode behind a valid fixed prefix.
        let mut buf = REQUEST[..6].to_vec();
        buf.extend_from_slice(&tail);
        let p = Packet::new_checked(&buf[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        let mut out = [0u8; 28];
        r.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
        prop_assert_eq!(&out[..], &buf[..]);
    }
}

//! Tests of [`super`]: byte fixtures, construction, parse/emit round trips, negative cases, and property tests checked with etherparse.

use super::*;
use proptest::prelude::*;

#[rustfmt::skip]
const FRAME: [u8; 18] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst 02:00:00:00:00:02
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src 02:00:00:00:00:01
    0x08, 0x00,                         // ethertype IPv4
    0xaa, 0xbb, 0xcc, 0xdd,             // payload
];

const SRC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const DST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

#[test]
fn deconstruct() {
    let f = Frame::new_checked(&FRAME[..]).unwrap();
    assert_eq!(f.dst_addr(), DST);
    assert_eq!(f.src_addr(), SRC);
    assert_eq!(f.ethertype(), EtherType::Ipv4);
    assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
}

#[test]
fn construct() {
    let mut buf = [0u8; 18];
    let mut f = Frame::new_unchecked(&mut buf[..]);
    f.set_dst_addr(DST);
    f.set_src_addr(SRC);
    f.set_ethertype(EtherType::Ipv4);
    f.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
    assert_eq!(buf, FRAME);
}

#[test]
fn repr_round_trip() {
    let repr = Repr::parse(&Frame::new_unchecked(&FRAME[..])).unwrap();
    assert_eq!(repr, Repr { src_addr: SRC, dst_addr: DST, ethertype: EtherType::Ipv4 });
    let mut buf = FRAME;
    buf[..14].fill(0);
    repr.emit(&mut Frame::new_unchecked(&mut buf[..])).unwrap();
    assert_eq!(buf, FRAME);
    assert_eq!(repr.emit(&mut Frame::new_unchecked(&mut [0u8; 13][..])), Err(Error::Truncated));
}

#[test]
fn header_only_frame_has_empty_payload() {
    let f = Frame::new_checked(&FRAME[..14]).unwrap();
    assert!(f.payload().is_empty());
}

#[test]
fn short_buffer() {
    for n in 0..HEADER_LEN {
        assert_eq!(Frame::new_checked(&FRAME[..n]).err(), Some(Error::Truncated));
    }
}

#[test]
fn into_inner_and_as_ref() {
    let f = Frame::new_checked(FRAME.to_vec()).unwrap();
    assert_eq!(f.as_ref(), &FRAME[..]);
    assert_eq!(f.into_inner(), FRAME.to_vec());
    assert_eq!(Frame::<&[u8]>::HEADER_LEN, 14);
}

#[test]
fn ethertype_numbers() {
    for (t, n) in [
        (EtherType::Ipv4, 0x0800u16),
        (EtherType::Arp, 0x0806),
        (EtherType::Ipv6, 0x86dd),
        (EtherType::Vlan, 0x8100),
        (EtherType::Unknown(0x88cc), 0x88cc),
    ] {
        assert_eq!(EtherType::from(n), t);
        assert_eq!(u16::from(t), n);
    }
}

#[test]
fn mac_display_and_parse() {
    let m = MacAddr([0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0xff]);
    assert_eq!(m.to_string(), "aa:bb:cc:0d:ee:ff");
    assert_eq!(format!("{m:?}"), "MacAddr(aa:bb:cc:0d:ee:ff)");
    assert_eq!("aa:bb:cc:0d:ee:ff".parse::<MacAddr>(), Ok(m));
    assert_eq!("AA-BB-CC-0D-EE-FF".parse::<MacAddr>(), Ok(m));
    for bad in [
        "",
        "aa:bb:cc:dd:ee",
        "aa:bb:cc:dd:ee:ff:00",
        "aa:bb:cc:dd:ee:fg",
        "aa:bb-cc:dd:ee:ff",
        "aa.bb.cc.dd.ee.ff",
        "+a:bb:cc:dd:ee:ff",
        "a:b:c:d:e:f",
        "aa:bb:cc:dd:ee:f\u{e9}",
    ] {
        assert_eq!(bad.parse::<MacAddr>(), Err(ParseMacAddrError), "{bad:?}");
    }
}

#[test]
fn mac_classes() {
    assert!(MacAddr::BROADCAST.is_broadcast());
    assert!(MacAddr::BROADCAST.is_multicast());
    assert!(!MacAddr::BROADCAST.is_unicast());
    let mcast = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
    assert!(mcast.is_multicast() && !mcast.is_broadcast() && !mcast.is_unicast());
    assert!(SRC.is_unicast() && SRC.is_local() && !SRC.is_multicast());
    assert_eq!(MacAddr::from_bytes(&[1, 2, 3, 4, 5, 6]), Some(MacAddr([1, 2, 3, 4, 5, 6])));
    assert_eq!(MacAddr::from_bytes(&[1, 2, 3]), None);
}

#[test]
fn etherparse_reads_our_frame() {
    let h = etherparse::Ethernet2Header::from_slice(&FRAME).unwrap().0;
    assert_eq!(h.destination, DST.0);
    assert_eq!(h.source, SRC.0);
    assert_eq!(h.ether_type, etherparse::EtherType::IPV4);
}

#[test]
fn we_read_etherparse_frame() {
    let h = etherparse::Ethernet2Header {
        source: SRC.0,
        destination: MacAddr::BROADCAST.0,
        ether_type: etherparse::EtherType::ARP,
    };
    let mut buf = h.to_bytes().to_vec();
    buf.extend_from_slice(&[0u8; 46]);
    let f = Frame::new_checked(&buf[..]).unwrap();
    assert_eq!(f.src_addr(), SRC);
    assert!(f.dst_addr().is_broadcast());
    assert_eq!(f.ethertype(), EtherType::Arp);
    assert_eq!(f.payload().len(), 46);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(f) = Frame::new_checked(&data[..]) {
            let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload().len());
            let _ = Repr::parse(&f);
        }
    }

    #[test]
    fn mac_display_parse_round_trip(b: [u8; 6]) {
        let m = MacAddr(b);
        prop_assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
    }

    #[test]
    fn mac_parse_never_panics(s in "\\PC{0,20}") {
        let _ = s.parse::<MacAddr>();
    }

    #[test]
    fn ethertype_round_trip(n: u16) {
        prop_assert_eq!(u16::from(EtherType::from(n)), n);
    }
}

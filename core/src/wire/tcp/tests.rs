//! Tests of [`super`]: byte fixtures, construction, parse/emit round trips, negative cases, and property tests checked with etherparse.

use super::*;
use crate::wire::ethernet::Frame;
use crate::wire::ipv4;
use etherparse::{PacketBuilder, SlicedPacket, TcpSlice, TransportSlice};
use proptest::prelude::*;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

#[rustfmt::skip]
const SEGMENT: [u8; 24] = [
    0xc0, 0x00,             // source port 49152
    0x00, 0x50,             // destination port 80
    0x01, 0x02, 0x03, 0x04, // sequence number
    0x0a, 0x0b, 0x0c, 0x0d, // acknowledgment number
    0x50,                   // data offset 5 (20 bytes), reserved 0
    0x18,                   // flags PSH, ACK
    0xfa, 0xf0,             // window 64240
    0x85, 0x42,             // checksum (pseudo header 192.168.1.10 -> 10.0.0.1)
    0x00, 0x00,             // urgent pointer
    0x68, 0x69, 0x21, 0x0a, // payload "hi!\n"
];

#[rustfmt::skip]
const SYN_WITH_MSS: [u8; 24] = [
    0xc0, 0x00,             // source port 49152
    0x00, 0x50,             // destination port 80
    0x01, 0x02, 0x03, 0x04, // sequence number
    0x00, 0x00, 0x00, 0x00, // acknowledgment number
    0x60,                   // data offset 6 (24 bytes)
    0x02,                   // flags SYN
    0xfa, 0xf0,             // window 64240
    0x00, 0x00,             // checksum (filled in by the test)
    0x00, 0x00,             // urgent pointer
    0x02, 0x04, 0x05, 0xb4, // option MSS 1460
];

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&SEGMENT[..]).unwrap();
    assert_eq!(p.src_port(), 49152);
    assert_eq!(p.dst_port(), 80);
    assert_eq!(p.seq_number(), 0x0102_0304);
    assert_eq!(p.ack_number(), 0x0a0b_0c0d);
    assert_eq!(p.header_len(), 20);
    assert_eq!(p.flags(), flags::PSH | flags::ACK);
    assert!(p.psh() && p.ack());
    assert!(!(p.syn() || p.fin() || p.rst() || p.urg() || p.ece() || p.cwr()));
    assert_eq!(p.window(), 64240);
    assert_eq!(p.checksum(), 0x8542);
    assert_eq!(p.urgent(), 0);
    assert!(p.options().is_empty());
    assert_eq!(p.payload(), b"hi!\n");
    assert!(p.verify_checksum(SRC, DST));
    assert!(!p.verify_checksum(DST, Ipv4Addr::new(10, 0, 0, 2)));
}

#[test]
fn construct() {
    let mut buf = [0xeeu8; 24];
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_src_port(49152);
    p.set_dst_port(80);
    p.set_seq_number(0x0102_0304);
    p.set_ack_number(0x0a0b_0c0d);
    p.buffer[field::DATA_OFF] = 0; // clear reserved bits
    p.set_header_len(20);
    p.set_flags(0);
    p.set_psh(true);
    p.set_ack(true);
    p.set_window(64240);
    p.set_urgent(0);
    p.payload_mut().copy_from_slice(b"hi!\n");
    p.fill_checksum(SRC, DST);
    assert_eq!(buf, SEGMENT);
}

#[test]
fn flag_setters() {
    let mut p = Packet::new_unchecked(SEGMENT.to_vec());
    p.set_flags(0);
    type Setter = fn(&mut Packet<Vec<u8>>, bool);
    let all: [(Setter, u8); 8] = [
        (Packet::set_fin, flags::FIN),
        (Packet::set_syn, flags::SYN),
        (Packet::set_rst, flags::RST),
        (Packet::set_psh, flags::PSH),
        (Packet::set_ack, flags::ACK),
        (Packet::set_urg, flags::URG),
        (Packet::set_ece, flags::ECE),
        (Packet::set_cwr, flags::CWR),
    ];
    for (set, bit) in all {
        set(&mut p, true);
        assert_eq!(p.flags(), bit);
        set(&mut p, false);
        assert_eq!(p.flags(), 0);
    }
    p.set_flags(0xff);
    assert!(p.fin() && p.syn() && p.rst() && p.psh() && p.ack() && p.urg() && p.ece() && p.cwr());
}

#[test]
fn options_and_header_len() {
    let mut buf = SYN_WITH_MSS;
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    p.fill_checksum(SRC, DST);
    assert_eq!(p.header_len(), 24);
    assert_eq!(p.options(), &[0x02, 0x04, 0x05, 0xb4]);
    assert!(p.payload().is_empty() && p.syn() && !p.ack());
    let e = TcpSlice::from_slice(&buf).unwrap();
    assert_eq!(e.options(), &[0x02, 0x04, 0x05, 0xb4]);
    assert_eq!(e.checksum(), e.calc_checksum_ipv4(SRC.octets(), DST.octets()).unwrap());
}

#[test]
fn short_buffer() {
    for n in 0..MIN_HEADER_LEN {
        assert_eq!(Packet::new_checked(&SEGMENT[..n]).err(), Some(Error::Truncated), "len {n}");
    }
}

#[test]
fn data_offset_below_5() {
    for off in 0..5u8 {
        let mut buf = SEGMENT;
        buf[12] = off << 4;
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
    }
}

#[test]
fn data_offset_beyond_buffer() {
    let mut buf = SEGMENT;
    buf[12] = 0x70; // 28-byte header in a 24-byte buffer
    assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Truncated));
    buf[12] = 0x60; // exactly 24: fine, empty payload
    assert!(Packet::new_checked(&buf[..]).unwrap().payload().is_empty());
    assert_eq!(Packet::new_checked(&SYN_WITH_MSS[..23]).err(), Some(Error::Truncated));
}

#[test]
fn rewrites_match_recompute() {
    let mut buf = SEGMENT;
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    let (nsrc, ndst) = (Ipv4Addr::new(172, 16, 0, 9), Ipv4Addr::new(10, 9, 8, 7));
    p.rewrite_src_port(1024);
    p.rewrite_dst_port(8080);
    p.rewrite_seq_number(0xffff_0000);
    p.rewrite_ack_number(1);
    p.update_checksum_for_addr(SRC, nsrc);
    p.update_checksum_for_addr(DST, ndst);
    assert!(p.verify_checksum(nsrc, ndst));
    let incremental = p.checksum();
    p.fill_checksum(nsrc, ndst);
    assert_eq!(incremental, p.checksum());
}

#[allow(clippy::too_many_arguments)]
fn build(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    window: u16,
    flag_bits: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, window);
    if flag_bits & flags::FIN != 0 {
        b = b.fin();
    }
    if flag_bits & flags::SYN != 0 {
        b = b.syn();
    }
    if flag_bits & flags::RST != 0 {
        b = b.rst();
    }
    if flag_bits & flags::PSH != 0 {
        b = b.psh();
    }
    if flag_bits & flags::ACK != 0 {
        b = b.ack(ack);
    }
    if flag_bits & flags::URG != 0 {
        b = b.urg(7);
    }
    if flag_bits & flags::ECE != 0 {
        b = b.ece();
    }
    if flag_bits & flags::CWR != 0 {
        b = b.cwr();
    }
    if flag_bits & 0x0f == flags::SYN {
        b = b.options_raw(&[0x02, 0x04, 0x05, 0xb4]).unwrap();
    }
    let mut buf = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut buf, payload).unwrap();
    // Ethernet padding to the 60-byte minimum, as a NIC delivers it.
    if buf.len() < 60 {
        buf.resize(60, 0);
    }
    buf
}

/// Parses eth/ipv4/tcp from `frame` with etherparse and checks both
/// checksums with etherparse's own functions.
fn etherparse_valid(frame: &[u8]) -> TcpSlice<'_> {
    let sliced = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    let Some(TransportSlice::Tcp(tcp)) = sliced.transport else { panic!("not TCP") };
    let want = tcp.calc_checksum_ipv4(h.source, h.destination).unwrap();
    assert_eq!(tcp.checksum(), want, "TCP checksum");
    tcp
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.header_len());
            let _ = (p.flags(), p.fin(), p.syn(), p.rst(), p.psh(), p.ack(), p.urg(), p.ece(), p.cwr());
            let _ = (p.window(), p.checksum(), p.urgent(), p.options().len(), p.payload().len());
            let _ = p.verify_checksum(SRC, DST);
        }
    }

    /// etherparse builds, we read: every field and the checksum.
    #[test]
    fn we_read_what_etherparse_writes(
        src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32, ack: u32,
        window: u16, flag_bits: u8, payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let frame = build(src, dst, sport, dport, seq, ack, window, flag_bits, &payload);
        let eth = Frame::new_checked(&frame[..]).unwrap();
        let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
        prop_assert!(ip.verify_checksum());
        prop_assert_eq!(ip.protocol(), ipv4::Protocol::Tcp);
        let p = Packet::new_checked(ip.payload()).unwrap();
        let e = TcpSlice::from_slice(ip.payload()).unwrap();
        prop_assert_eq!(p.src_port(), sport);
        prop_assert_eq!(p.dst_port(), dport);
        prop_assert_eq!(p.seq_number(), seq);
        prop_assert_eq!(p.ack_number(), e.acknowledgment_number());
        prop_assert_eq!(p.header_len(), usize::from(e.data_offset()) * 4);
        prop_assert_eq!(p.flags(), flag_bits);
        prop_assert_eq!(p.window(), window);
        prop_assert_eq!(p.urgent(), e.urgent_pointer());
        prop_assert_eq!(p.options(), e.options());
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert!(p.verify_checksum(ip.src_addr(), ip.dst_addr()));
    }

    /// We write with setters + fill_checksum; etherparse reads and validates.
    #[test]
    fn etherparse_reads_what_we_write(
        src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32, ack: u32,
        window: u16, flag_bits: u8, urgent: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        let mut frame = vec![0u8; 14 + 20 + 20 + payload.len()];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip_len = 40 + payload.len();
        let repr = ipv4::Repr { src_addr: src, dst_addr: dst, protocol: ipv4::Protocol::Tcp, ttl: 64, payload_len: 20 + payload.len() };
        let mut ip = ipv4::Packet::new_unchecked(&mut frame[14..14 + ip_len]);
        repr.emit(&mut ip).unwrap();
        let mut p = Packet::new_unchecked(ip.payload_mut());
        p.set_src_port(sport);
        p.set_dst_port(dport);
        p.set_seq_number(seq);
        p.set_ack_number(ack);
        p.set_header_len(20);
        p.set_flags(flag_bits);
        p.set_window(window);
        p.set_urgent(urgent);
        p.payload_mut().copy_from_slice(&payload);
        p.fill_checksum(src, dst);
        let e = etherparse_valid(&frame);
        prop_assert_eq!(e.source_port(), sport);
        prop_assert_eq!(e.destination_port(), dport);
        prop_assert_eq!(e.sequence_number(), seq);
        prop_assert_eq!(e.acknowledgment_number(), ack);
        prop_assert_eq!(e.syn(), flag_bits & flags::SYN != 0);
        prop_assert_eq!(e.fin(), flag_bits & flags::FIN != 0);
        prop_assert_eq!(e.cwr(), flag_bits & flags::CWR != 0);
        prop_assert_eq!(e.window_size(), window);
        prop_assert_eq!(e.urgent_pointer(), urgent);
        prop_assert_eq!(e.payload(), &payload[..]);
    }

    /// Full-NAT rewrite of both addresses and both ports (plus a TTL
    /// decrement): the incremental checksums equal a full recompute, and
    /// etherparse validates the rewritten frame.
    #[test]
    fn nat_rewrite_incremental_equals_recompute(
        src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32, ack: u32,
        window: u16, flag_bits: u8, payload in proptest::collection::vec(any::<u8>(), 0..100),
        new_src: [u8; 4], new_dst: [u8; 4], new_sport: u16, new_dport: u16, new_seq: u32,
    ) {
        let mut frame = build(src, dst, sport, dport, seq, ack, window, flag_bits, &payload);
        let (new_src, new_dst) = (Ipv4Addr::from(new_src), Ipv4Addr::from(new_dst));
        let mut eth = Frame::new_checked(&mut frame[..]).unwrap();
        let mut ip = ipv4::Packet::new_checked(eth.payload_mut()).unwrap();
        let (old_src, old_dst) = (ip.src_addr(), ip.dst_addr());
        ip.rewrite_src_addr(new_src);
        ip.rewrite_dst_addr(new_dst);
        ip.decrement_ttl();
        let ip_incremental = ip.checksum();
        let mut p = Packet::new_checked(ip.payload_mut()).unwrap();
        p.update_checksum_for_addr(old_src, new_src);
        p.update_checksum_for_addr(old_dst, new_dst);
        p.rewrite_src_port(new_sport);
        p.rewrite_dst_port(new_dport);
        p.rewrite_seq_number(new_seq);
        let l4_incremental = p.checksum();
        prop_assert!(p.verify_checksum(new_src, new_dst));
        p.fill_checksum(new_src, new_dst);
        prop_assert_eq!(l4_incremental, p.checksum());
        ip.fill_checksum();
        prop_assert_eq!(ip_incremental, ip.checksum());

        let e = etherparse_valid(&frame);
        prop_assert_eq!((e.source_port(), e.destination_port()), (new_sport, new_dport));
        prop_assert_eq!(e.sequence_number(), new_seq);
        prop_assert_eq!(e.payload(), &payload[..]);
    }
}

/// The options of a header (20 fixed bytes, then `opts`) as the walk sees them.
fn walk(opts: &[u8]) -> Vec<(u8, usize, usize)> {
    let mut hdr = vec![0u8; MIN_HEADER_LEN];
    hdr.extend_from_slice(opts);
    let mut w = OptionWalk::default();
    std::iter::from_fn(|| w.next(&hdr)).collect()
}

#[test]
fn option_walk_gives_kind_offset_and_length_and_skips_nops() {
    // MSS 1460, NOP, window scale 7, SACK permitted, timestamps, EOL, junk.
    let opts = [2, 4, 5, 180, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 9, 9, 9];
    assert_eq!(walk(&opts), [(2, 20, 4), (3, 25, 3), (4, 28, 2), (8, 30, 10)]);
}

#[test]
fn option_walk_stops_at_a_malformed_option() {
    // A length of 1, a length past the header, a kind with no length byte.
    assert_eq!(walk(&[2, 4, 5, 180, 5, 1, 0, 0]), [(2, 20, 4)]);
    assert_eq!(walk(&[1, 1, 5, 10, 0, 0, 0, 0]), []);
    assert_eq!(walk(&[1, 1, 1, 8]), []);
    assert_eq!(walk(&[]), []);
}

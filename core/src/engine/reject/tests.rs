//! The replies checked with an independent parser (etherparse): addresses,
//! ports, checksums, RFC 793's seq/ack rule, the quote of an ICMP error;
//! the token bucket's burst and refill; which drops get which reply.

use etherparse::{
    Icmpv4Type, IpHeaders, NetSlice, PacketBuilder, PacketBuilderStep, SlicedPacket, TransportSlice,
};

use super::*;

const CLIENT: [u8; 4] = [198, 18, 0, 2];
const VIP: [u8; 4] = [198, 18, 0, 100];
const CMAC: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];
const GMAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// A TCP segment client:40000 -> VIP:80 with `flags` (tcp_state::flags
/// bits), sequence 1000, ack `ack` (used with ACK) and `payload`.
fn tcp_frame(fl: u8, ack: u32, payload: &[u8]) -> Vec<u8> {
    tcp_on(PacketBuilder::ethernet2(CMAC, GMAC).ipv4(CLIENT, VIP, 61), fl, ack, payload)
}

/// [`tcp_frame`]'s segment over the IP header `ip` builds.
fn tcp_on(ip: PacketBuilderStep<IpHeaders>, fl: u8, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = ip.tcp(40000, 80, 1000, 64000);
    if fl & flags::SYN != 0 {
        b = b.syn();
    }
    if fl & flags::FIN != 0 {
        b = b.fin();
    }
    if fl & flags::RST != 0 {
        b = b.rst();
    }
    if fl & flags::ACK != 0 {
        b = b.ack(ack);
    }
    let mut out = vec![];
    b.write(&mut out, payload).unwrap();
    out
}

fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(CMAC, GMAC)
        .ipv4(CLIENT, VIP, 61)
        .udp(5353, 53)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// (IPv4 header, TCP header) of a built RST, after checking both checksums
/// and the frame's length with etherparse.
fn parse_rst(f: &[u8]) -> (etherparse::Ipv4Header, etherparse::TcpHeader) {
    assert_eq!(f.len(), 54, "Ethernet + IPv4 + TCP, no options, no payload");
    let p = SlicedPacket::from_ethernet(f).expect("etherparse parses the RST");
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP") };
    assert!(t.payload().is_empty());
    let th = t.to_header();
    assert_eq!(th.checksum, th.calc_checksum_ipv4(&h, &[]).unwrap(), "TCP checksum");
    (h, th)
}

#[test]
fn a_rst_for_a_segment_with_ack_takes_its_sequence_from_the_ack() {
    let mut f = tcp_frame(flags::ACK | 0x08, 777_777, b"hello world");
    assert!(build(&mut f, Reject::Rst, 9));
    let (ip, t) = parse_rst(&f);
    assert_eq!((ip.source, ip.destination), (VIP, CLIENT), "from the VIP back to the client");
    assert_eq!((ip.time_to_live, ip.identification, ip.protocol.0), (64, 9, 6));
    assert!(!ip.dont_fragment && !ip.more_fragments && ip.fragment_offset.value() == 0);
    assert_eq!((t.source_port, t.destination_port), (80, 40000));
    assert!(t.rst && !t.ack && !t.syn && !t.fin && !t.psh, "RST alone (RFC 793: <SEQ=SEG.ACK><CTL=RST>)");
    assert_eq!(t.sequence_number, 777_777);
    assert_eq!(t.acknowledgment_number, 0);
    assert_eq!(&f[12..14], &[0x08, 0x00]);
}

#[test]
fn a_rst_for_a_segment_without_ack_acknowledges_all_it_occupied() {
    // A FIN with 5 bytes of data: 5 + 1 sequence numbers.
    let mut f = tcp_frame(flags::FIN, 0, b"bytes");
    assert!(build(&mut f, Reject::Rst, 1));
    let (_, t) = parse_rst(&f);
    assert!(t.rst && t.ack);
    assert_eq!((t.sequence_number, t.acknowledgment_number), (0, 1000 + 6));
    // A SYN (no_service_reply = "rst"): the SYN occupies one.
    let mut f = tcp_frame(flags::SYN, 0, b"");
    assert!(build(&mut f, Reject::Rst, 2));
    let (ip, t) = parse_rst(&f);
    assert_eq!(ip.source, VIP);
    assert!(t.rst && t.ack && !t.syn);
    assert_eq!((t.sequence_number, t.acknowledgment_number), (0, 1001));
}

#[test]
fn rfc_793_reset_numbers() {
    assert_eq!(rst_numbers(flags::ACK, 5, 9, 3), (9, 0, flags::RST));
    assert_eq!(rst_numbers(flags::ACK | flags::FIN, 5, 9, 1), (9, 0, flags::RST));
    assert_eq!(rst_numbers(0, 5, 9, 3), (0, 8, flags::RST | flags::ACK));
    assert_eq!(rst_numbers(flags::SYN, u32::MAX, 0, 1), (0, 0, flags::RST | flags::ACK), "wraps");
}

#[test]
fn a_rst_is_never_answered_with_a_rst() {
    for fl in [flags::RST, flags::RST | flags::ACK] {
        let mut f = tcp_frame(fl, 5, b"");
        let before = f.clone();
        assert!(!build(&mut f, Reject::Rst, 1), "the builder refuses");
        assert_eq!(f, before, "and leaves the frame alone");
        let p = info(Protocol::Tcp, fl);
        for why in Drop::ALL {
            assert_eq!(reply_for(&RejectConfig::default(), p, why), None, "{why:?}");
            let rst = RejectConfig { no_service: NoServiceReply::Rst, ..RejectConfig::default() };
            assert_eq!(reply_for(&rst, p, why), None, "{why:?}");
        }
    }
}

/// The ICMP error, parsed: (IPv4 header, ICMP code, quoted bytes).
fn parse_unreachable(f: &[u8]) -> (etherparse::Ipv4Header, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(f).expect("etherparse parses the ICMP error");
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    assert_eq!(usize::from(h.total_len), f.len() - 14, "no padding, no trailer");
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!("not ICMP") };
    assert_eq!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port)
    );
    let want = icmp.header().icmp_type.calc_checksum(icmp.payload());
    assert_eq!(icmp.checksum(), want, "ICMP checksum");
    (h, icmp.payload().to_vec())
}

#[test]
fn a_port_unreachable_quotes_the_ip_header_and_8_bytes_and_grows_a_short_frame() {
    let orig = udp_frame(b"hi");
    let mut f = orig.clone();
    assert!(build(&mut f, Reject::PortUnreachable, 3));
    let (ip, quote) = parse_unreachable(&f);
    assert_eq!((ip.source, ip.destination), (VIP, CLIENT), "from the VIP");
    assert_eq!((ip.time_to_live, ip.protocol.0, ip.identification), (64, 1, 3));
    assert_eq!(quote, orig[14..14 + 28], "the datagram's IPv4 header and UDP header");
    assert_eq!(f.len(), 14 + 20 + 8 + 28);
    // A TCP SYN: its header and the first 8 bytes of TCP (ports, sequence).
    let orig = tcp_frame(flags::SYN, 0, b"");
    let mut f = orig.clone();
    assert!(build(&mut f, Reject::PortUnreachable, 4));
    let (_, quote) = parse_unreachable(&f);
    assert_eq!(quote, orig[14..14 + 28]);
}

#[test]
fn a_port_unreachable_for_a_big_datagram_quotes_only_the_start() {
    let orig = udp_frame(&[7u8; 1200]);
    let mut f = orig.clone();
    assert!(build(&mut f, Reject::PortUnreachable, 1));
    let (_, quote) = parse_unreachable(&f);
    assert_eq!(quote, orig[14..42]);
}

#[test]
fn a_quoted_header_keeps_its_options() {
    // IHL 6: one 4-byte option (NOP x3 + EOL), checksum fixed by hand.
    let mut orig = udp_frame(b"x");
    orig.splice(34..34, [1u8, 1, 1, 0]);
    orig[14] = 0x46;
    let tl = u16::from_be_bytes([orig[16], orig[17]]) + 4;
    orig[16..18].copy_from_slice(&tl.to_be_bytes());
    orig[24..26].copy_from_slice(&[0, 0]);
    let c = crate::wire::checksum::checksum(&orig[14..38]);
    orig[24..26].copy_from_slice(&c.to_be_bytes());
    let mut f = orig.clone();
    assert!(build(&mut f, Reject::PortUnreachable, 1));
    let (_, quote) = parse_unreachable(&f);
    assert_eq!(quote, orig[14..14 + 24 + 8]);
}

#[test]
fn the_bucket_spends_its_burst_then_refills_at_its_rate() {
    let mut b = TokenBucket::new(10, 3, 1_000);
    assert!((0..3).all(|_| b.take(1_000)), "starts full: the burst");
    assert!(!b.take(1_000));
    assert!(!b.take(1_099), "10/s: a token every 100 ms");
    assert!(b.take(1_100));
    assert!(!b.take(1_100));
    // 250 ms: 2.5 tokens; the half stays for later.
    assert!(b.take(1_350) && b.take(1_350));
    assert!(!b.take(1_350));
    assert!(b.take(1_400), "the saved half and 50 ms more");
    // A long quiet spell refills only the burst.
    let spent = (0..10).filter(|_| b.take(100_000)).count();
    assert_eq!(spent, 3);
    // A clock that steps back gives nothing.
    assert!(!b.take(50_000));
    assert!(!b.take(100_050));
    assert!(b.take(100_100));
    // Extremes do not overflow.
    let mut big = TokenBucket::new(u32::MAX, u32::MAX, 0);
    assert!(big.take(u64::MAX));
    let mut one = TokenBucket::new(1, 1, 0);
    assert!(one.take(0) && !one.take(999) && one.take(1_000));
}

/// What [`reply_for`] reads of a packet: TCP (with `tcp_flags`) or UDP.
fn info(proto: Protocol, tcp_flags: u8) -> (bool, u8) {
    (proto == Protocol::Tcp, tcp_flags)
}

#[test]
fn which_drop_gets_which_reply() {
    let d = RejectConfig::default();
    let syn = info(Protocol::Tcp, flags::SYN);
    let ack = info(Protocol::Tcp, flags::ACK);
    let udp = info(Protocol::Udp, 0);
    let icmp = Some(Reject::PortUnreachable);
    let rst = Some(Reject::Rst);
    for why in [Drop::NoService, Drop::NoDest] {
        assert_eq!(reply_for(&d, syn, why), icmp, "IPVS's ip_vs_leave: ICMP for a SYN too");
        assert_eq!(reply_for(&d, udp, why), icmp);
        let r = RejectConfig { no_service: NoServiceReply::Rst, ..d };
        assert_eq!(reply_for(&r, syn, why), rst);
        assert_eq!(reply_for(&r, udp, why), icmp, "UDP has no RST");
        let n = RejectConfig { no_service: NoServiceReply::None, ..d };
        assert_eq!((reply_for(&n, syn, why), reply_for(&n, udp, why)), (None, None));
    }
    for why in [Drop::NoService, Drop::NoSessionNotSyn, Drop::UnknownReply] {
        assert_eq!(reply_for(&d, ack, why), rst, "{why:?}");
        let off = RejectConfig { no_session_rst: false, ..d };
        assert_eq!(reply_for(&off, ack, why), None, "{why:?}");
    }
    assert_eq!(reply_for(&d, syn, Drop::UnknownReply), rst, "a SYN to a local address: closed");
    assert_eq!(reply_for(&d, udp, Drop::UnknownReply), None, "no reply to a stray datagram");
    assert_eq!(reply_for(&d, udp, Drop::NoSessionNotSyn), None);
    // Exhaustion, floods, foreign and malformed traffic get nothing.
    for why in Drop::ALL {
        if !matches!(why, Drop::NoService | Drop::NoDest | Drop::NoSessionNotSyn | Drop::UnknownReply) {
            for p in [syn, ack, udp] {
                assert_eq!(reply_for(&d, p, why), None, "{why:?}");
            }
        }
    }
}

const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
const VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50];

/// [`tcp_frame`] from CLIENT6 to VIP6.
fn tcp6_frame(fl: u8, ack: u32, payload: &[u8]) -> Vec<u8> {
    tcp_on(PacketBuilder::ethernet2(CMAC, GMAC).ipv6(CLIENT6, VIP6, 61), fl, ack, payload)
}

/// (IPv6 header, ICMPv6 payload: 4 unused bytes, then the quote) of a
/// built ICMPv6 port unreachable, its checksum and lengths checked with
/// etherparse.
fn parse_unreachable6(f: &[u8]) -> (etherparse::Ipv6Header, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(f).expect("etherparse parses the ICMPv6 error");
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
    let h = ip.header().to_header();
    assert_eq!(usize::from(h.payload_length), f.len() - 14 - 40, "no padding, no trailer");
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6") };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Port)
    );
    let want = icmp.header().icmp_type.calc_checksum(h.source, h.destination, icmp.payload()).unwrap();
    assert_eq!(icmp.checksum(), want, "ICMPv6 checksum");
    assert_eq!(&f[14 + 40 + 4..14 + 40 + 8], &[0; 4], "the unused word is zero");
    (h, f[14 + 40 + 8..].to_vec())
}

#[test]
fn an_ipv6_port_unreachable_quotes_the_packet_and_fits_the_minimum_mtu() {
    // A SYN: quoted whole, the frame grown.
    let orig = tcp6_frame(flags::SYN, 0, b"");
    let mut f = orig.clone();
    assert!(build6(&mut f, Reject::PortUnreachable));
    let (ip, quote) = parse_unreachable6(&f);
    assert_eq!((ip.source, ip.destination, ip.hop_limit), (VIP6, CLIENT6, 64), "from the VIP");
    assert_eq!(quote, orig[14..], "the whole packet");
    // A big one: as much as fits in 1280 bytes (RFC 4443 §2.4 (c)).
    let orig = tcp6_frame(flags::ACK, 1, &[7u8; 1400]);
    let mut f = orig.clone();
    assert!(build6(&mut f, Reject::PortUnreachable));
    let (_, quote) = parse_unreachable6(&f);
    assert_eq!(f.len() - 14, 1280);
    assert_eq!(quote, orig[14..14 + 1280 - 48]);
}

#[test]
fn an_ipv6_rst_follows_rfc_793_with_an_ipv6_checksum() {
    for (fl, ack, payload, want) in [
        (flags::ACK, 0xdead_beef, &b"data"[..], (0xdead_beef, 0, false)),
        (flags::SYN, 0, &b""[..], (0, 1001, true)),
        (flags::ACK | flags::FIN, 7, &b"xy"[..], (7, 0, false)),
    ] {
        let mut f = tcp6_frame(fl, ack, payload);
        assert!(build6(&mut f, Reject::Rst));
        assert_eq!(f.len(), 14 + 40 + 20, "Ethernet + IPv6 + TCP, no options, no payload");
        let p = SlicedPacket::from_ethernet(&f).expect("etherparse parses the RST");
        let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
        let h = ip.header().to_header();
        assert_eq!((h.source, h.destination, h.hop_limit, h.payload_length), (VIP6, CLIENT6, 64, 20));
        let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP") };
        let th = t.to_header();
        assert_eq!(th.checksum, th.calc_checksum_ipv6(&h, &[]).unwrap(), "TCP checksum");
        assert_eq!((th.source_port, th.destination_port), (80, 40000));
        assert!(th.rst && !th.syn && !th.fin);
        assert_eq!((th.sequence_number, th.acknowledgment_number, th.ack), want, "{fl:#x}");
    }
    // Never a RST for a RST.
    let mut f = tcp6_frame(flags::RST | flags::ACK, 5, b"");
    let before = f.clone();
    assert!(!build6(&mut f, Reject::Rst));
    assert_eq!(f, before);
}

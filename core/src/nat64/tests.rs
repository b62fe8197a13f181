//! Tests of [`super`] checked against an independent implementation:
//! packets built by etherparse, translated, parsed again by etherparse
//! (fields, TCP/UDP checksums) and ICMP checksums summed from scratch here;
//! round trips; ICMP error fixtures with their quotes; the RFC 7915 code and
//! pointer tables; RFC 6052's examples; bad input.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    icmpv4::DestUnreachableHeader, Icmpv4Type, Icmpv6Type, IpHeaders, Ipv4Header, Ipv6Header, NetSlice,
    PacketBuilder, PacketBuilderStep, SlicedPacket, TransportSlice, UdpHeader,
};
use proptest::prelude::*;

use super::*;

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);
const LIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const RIP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
const ROUTER4: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 1);
/// Headroom in front of every test packet.
const ROOM: usize = 128;

fn to4_params() -> To4 {
    To4 {
        ends: Ends { src: LIP, sport: 5000, dst: RIP, dport: 8080 },
        inner: Some(Ends { src: RIP, sport: 8080, dst: LIP, dport: 5000 }),
        ident: 0x4242,
        mtu: u16::MAX,
        l4_change: None,
    }
}

fn to6_params() -> To6 {
    To6 {
        ends: Ends { src: VIP6, sport: 80, dst: CLIENT6, dport: 40000 },
        inner: Some(Ends { src: CLIENT6, sport: 40000, dst: VIP6, dport: 80 }),
        mtu: u16::MAX,
        l4_change: None,
    }
}

/// The RFC 1071 sum, word by word, written here so the checks do not use
/// the code under test.
fn naive_sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    for pair in data.chunks(2) {
        acc += (u64::from(pair[0]) << 8) | u64::from(pair.get(1).copied().unwrap_or(0));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
}

fn icmp4_ok(msg: &[u8]) -> bool {
    naive_sum(msg) == 0xffff
}

fn icmp6_ok(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> bool {
    let mut ph = Vec::new();
    ph.extend_from_slice(&src.octets());
    ph.extend_from_slice(&dst.octets());
    ph.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    ph.extend_from_slice(&[0, 0, 0, 58]);
    ph.extend_from_slice(msg);
    naive_sum(&ph) == 0xffff
}

/// `pkt` behind [`ROOM`] bytes of headroom.
fn roomy(pkt: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; ROOM];
    b.extend_from_slice(pkt);
    b
}

fn v6_packet(proto: u8, sport: u16, dport: u16, hop: u8, payload: &[u8]) -> Vec<u8> {
    v6_packet_between(CLIENT6, VIP6, proto, sport, dport, hop, payload)
}

/// [`v6_packet`] from `src` to `dst`.
fn v6_packet_between(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    proto: u8,
    sport: u16,
    dport: u16,
    hop: u8,
    payload: &[u8],
) -> Vec<u8> {
    l4_packet(PacketBuilder::ipv6(src.octets(), dst.octets(), hop), true, proto, sport, dport, payload)
}

fn v4_packet(proto: u8, sport: u16, dport: u16, ttl: u8, payload: &[u8]) -> Vec<u8> {
    v4_packet_between(RIP, LIP, proto, sport, dport, ttl, payload)
}

/// [`v4_packet`] from `src` to `dst`.
fn v4_packet_between(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    sport: u16,
    dport: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    l4_packet(PacketBuilder::ipv4(src.octets(), dst.octets(), ttl), false, proto, sport, dport, payload)
}

/// The packet of `proto` on IP step `b` (IPv6 if `v6`): TCP (6), UDP (17),
/// else an ICMP echo (an ICMPv6 echo request, an ICMPv4 echo reply),
/// `sport` and `dport` its identifier and sequence number.
fn l4_packet(
    b: PacketBuilderStep<IpHeaders>,
    v6: bool,
    proto: u8,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = vec![];
    match proto {
        6 => b.tcp(sport, dport, 1000, 64000).write(&mut out, payload).unwrap(),
        17 => b.udp(sport, dport).write(&mut out, payload).unwrap(),
        _ if v6 => b.icmpv6_echo_request(sport, dport).write(&mut out, payload).unwrap(),
        _ => b.icmpv4_echo_reply(sport, dport).write(&mut out, payload).unwrap(),
    }
    out
}

/// Sets traffic class and flow label of an IPv6 header (no checksum
/// covers them).
fn set_tc_flow(pkt: &mut [u8], tc: u8, flow: u32) {
    let w = (6u32 << 28) | (u32::from(tc) << 20) | (flow & 0xf_ffff);
    pkt[0..4].copy_from_slice(&w.to_be_bytes());
}

/// Parses an IPv4 packet with etherparse, checks its header checksum and
/// the TCP/UDP checksum, and returns (header, ports, payload).
fn check4(pkt: &[u8]) -> (Ipv4Header, Option<(u16, u16)>, Vec<u8>) {
    let p = SlicedPacket::from_ip(pkt).expect("etherparse parses the IPv4 packet");
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header checksum");
    assert_eq!(usize::from(h.total_len), pkt.len());
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let th = t.to_header();
            assert_eq!(th.checksum, th.calc_checksum_ipv4(&h, t.payload()).unwrap(), "TCP checksum");
            (h, Some((th.source_port, th.destination_port)), t.payload().to_vec())
        }
        Some(TransportSlice::Udp(u)) => {
            let uh = u.to_header();
            if uh.checksum != 0 {
                assert_eq!(uh.checksum, uh.calc_checksum_ipv4(&h, u.payload()).unwrap(), "UDP checksum");
            }
            (h, Some((uh.source_port, uh.destination_port)), u.payload().to_vec())
        }
        _ => (h, None, ip.payload().payload.to_vec()),
    }
}

/// As [`check4`] for IPv6 (the UDP checksum must be present).
fn check6(pkt: &[u8]) -> (Ipv6Header, Option<(u16, u16)>, Vec<u8>) {
    let p = SlicedPacket::from_ip(pkt).expect("etherparse parses the IPv6 packet");
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
    let h = ip.header().to_header();
    assert_eq!(40 + usize::from(h.payload_length), pkt.len());
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let th = t.to_header();
            assert_eq!(th.checksum, th.calc_checksum_ipv6(&h, t.payload()).unwrap(), "TCP checksum");
            (h, Some((th.source_port, th.destination_port)), t.payload().to_vec())
        }
        Some(TransportSlice::Udp(u)) => {
            let uh = u.to_header();
            assert_ne!(uh.checksum, 0, "IPv6 UDP needs a checksum");
            assert_eq!(uh.checksum, uh.calc_checksum_ipv6(&h, u.payload()).unwrap(), "UDP checksum");
            (h, Some((uh.source_port, uh.destination_port)), u.payload().to_vec())
        }
        _ => (h, None, ip.payload().payload.to_vec()),
    }
}

proptest! {
    #[test]
    fn tcp_and_udp_from_ipv6_read_as_rfc_7915_says(
        tcp in any::<bool>(), sport: u16, dport: u16, hop in 1u8.., tc: u8, flow in 0u32..0x10_0000,
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let proto = if tcp { 6 } else { 17 };
        let mut pkt = v6_packet(proto, sport, dport, hop, &payload);
        set_tc_flow(&mut pkt, tc, flow);
        let mut buf = roomy(&pkt);
        let p = to4_params();
        let t = to_ipv4(&mut buf, ROOM, &p).unwrap();
        prop_assert_eq!(t.start, ROOM + 20);
        prop_assert_eq!(t.len, pkt.len() - 20);
        let (h, ports, body) = check4(&buf[t.start..t.start + t.len]);
        prop_assert_eq!((h.source, h.destination), (LIP.octets(), RIP.octets()));
        prop_assert_eq!(h.protocol.0, proto);
        prop_assert_eq!(h.time_to_live, hop);
        prop_assert_eq!(buf[t.start + 1], tc, "traffic class -> TOS");
        prop_assert_eq!(h.identification, p.ident);
        prop_assert_eq!(h.dont_fragment, t.len > 1260, "DF only above 1260 bytes");
        prop_assert!(!h.more_fragments && h.fragment_offset.value() == 0);
        prop_assert_eq!(ports, Some((5000, 8080)));
        prop_assert_eq!(body, payload);
    }

    #[test]
    fn tcp_and_udp_from_ipv4_read_as_rfc_7915_says(
        tcp in any::<bool>(), no_udp_sum in any::<bool>(), sport: u16, dport: u16, ttl in 1u8.., tos: u8,
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let proto = if tcp { 6 } else { 17 };
        let mut pkt = v4_packet(proto, sport, dport, ttl, &payload);
        pkt[1] = tos;
        if !tcp && no_udp_sum {
            pkt[26..28].copy_from_slice(&[0, 0]);
        }
        let c = Ipv4Header::from_slice(&pkt).unwrap().0.calc_header_checksum();
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
        let mut buf = roomy(&pkt);
        let t = to_ipv6(&mut buf, ROOM, &to6_params()).unwrap();
        prop_assert_eq!(t.start, ROOM - 20);
        prop_assert_eq!(t.len, pkt.len() + 20);
        let (h, ports, body) = check6(&buf[t.start..t.start + t.len]);
        prop_assert_eq!((h.source, h.destination), (VIP6.octets(), CLIENT6.octets()));
        prop_assert_eq!(h.next_header.0, proto);
        prop_assert_eq!(h.hop_limit, ttl);
        prop_assert_eq!(h.traffic_class, tos);
        prop_assert_eq!(h.flow_label.value(), 0);
        prop_assert_eq!(ports, Some((80, 40000)));
        prop_assert_eq!(body, payload);
    }

    /// IPv6 -> IPv4 -> IPv6 with the original ends back is the identity
    /// (flow label 0, no extension headers: nothing the RFC drops).
    #[test]
    fn a_round_trip_gives_the_packet_back(
        proto in prop_oneof![Just(6u8), Just(17u8), Just(58u8)], sport: u16, dport: u16, hop in 1u8.., tc: u8,
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
    ) {
        let mut pkt = v6_packet(proto, sport, dport, hop, &payload);
        set_tc_flow(&mut pkt, tc, 0);
        let mut buf = roomy(&pkt);
        let t4 = to_ipv4(&mut buf, ROOM, &to4_params()).unwrap();
        let back = To6 {
            ends: Ends { src: CLIENT6, sport, dst: VIP6, dport },
            inner: None,
            mtu: u16::MAX,
            l4_change: None,
        };
        let t6 = to_ipv6(&mut buf, t4.start, &back).unwrap();
        prop_assert_eq!(t6.start, ROOM);
        prop_assert_eq!(&buf[t6.start..t6.start + t6.len], &pkt[..]);
    }

    /// Nothing panics on arbitrary bytes, in either direction.
    #[test]
    fn arbitrary_bytes_never_panic(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>(),
        room in 0usize..100,
    ) {
        if !bytes.is_empty() {
            bytes[0] = (bytes[0] & 0x0f) | if v6 { 0x60 } else { 0x40 };
        }
        let mut buf = vec![0u8; room];
        buf.extend_from_slice(&bytes);
        let orig = buf.clone();
        if to_ipv4(&mut buf, room, &to4_params()).is_err() {
            prop_assert_eq!(&buf, &orig, "an error leaves the buffer alone");
        }
        let mut buf = orig.clone();
        if to_ipv6(&mut buf, room, &to6_params()).is_err() {
            prop_assert_eq!(&buf, &orig, "an error leaves the buffer alone");
        }
    }

    /// Valid headers with arbitrary ICMP bodies: never a panic, and what
    /// comes out verifies.
    #[test]
    fn icmp_with_arbitrary_bodies(ty: u8, code: u8, body in proptest::collection::vec(any::<u8>(), 4..120)) {
        let mut pkt = v6_packet(58, 1, 2, 64, &body[4..]);
        pkt[40] = ty;
        pkt[41] = code;
        pkt[44..48].copy_from_slice(&body[..4]);
        pkt[42..44].copy_from_slice(&[0, 0]);
        let c = !(naive_sum(&[&CLIENT6.octets()[..], &VIP6.octets(), &((pkt.len() - 40) as u32).to_be_bytes(),
            &[0, 0, 0, 58], &pkt[40..]].concat()) as u16);
        pkt[42..44].copy_from_slice(&c.to_be_bytes());
        let mut buf = roomy(&pkt);
        if let Ok(t) = to_ipv4(&mut buf, ROOM, &to4_params()) {
            let out = &buf[t.start..t.start + t.len];
            let (h, _, _) = check4(out);
            prop_assert_eq!(h.protocol.0, 1);
            prop_assert!(icmp4_ok(&out[20..]));
        }
        let mut pkt = v4_packet(1, 1, 2, 64, &body[4..]);
        pkt[20] = ty;
        pkt[21] = code;
        pkt[24..28].copy_from_slice(&body[..4]);
        pkt[22..24].copy_from_slice(&[0, 0]);
        let c = !(naive_sum(&pkt[20..]) as u16);
        pkt[22..24].copy_from_slice(&c.to_be_bytes());
        let mut buf = roomy(&pkt);
        if let Ok(t) = to_ipv6(&mut buf, ROOM, &to6_params()) {
            let out = &buf[t.start..t.start + t.len];
            prop_assert_eq!(out[6], 58);
            prop_assert!(icmp6_ok(VIP6, CLIENT6, &out[40..]));
        }
    }
}

#[test]
fn ipv6_extension_headers_are_dropped() {
    let mut pkt = v6_packet(17, 1234, 53, 64, b"query");
    // Hop-by-hop (PadN of 4) then destination options (PadN of 4) before UDP.
    let ext = [60u8, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0];
    pkt.splice(40..40, ext);
    pkt[6] = 0;
    let pl = u16::from_be_bytes([pkt[4], pkt[5]]) + 16;
    pkt[4..6].copy_from_slice(&pl.to_be_bytes());
    let mut buf = roomy(&pkt);
    let t = to_ipv4(&mut buf, ROOM, &to4_params()).unwrap();
    assert_eq!(t.start, ROOM + 56 - 20);
    let (h, ports, body) = check4(&buf[t.start..t.start + t.len]);
    assert_eq!((h.protocol.0, ports, &body[..]), (17, Some((5000, 8080)), &b"query"[..]));
}

#[test]
fn a_routing_header_with_segments_left_is_not_translated() {
    for (left, want) in [(1u8, Err(Error::Untranslatable)), (0, Ok(()))] {
        let mut pkt = v6_packet(6, 1234, 80, 64, b"");
        // Type 0 routing header, one address, `left` segments left.
        let mut rh = vec![6u8, 2, 0, left, 0, 0, 0, 0];
        rh.extend_from_slice(&ROUTER6.octets());
        pkt.splice(40..40, rh);
        pkt[6] = 43;
        let pl = u16::from_be_bytes([pkt[4], pkt[5]]) + 24;
        pkt[4..6].copy_from_slice(&pl.to_be_bytes());
        let mut buf = roomy(&pkt);
        assert_eq!(to_ipv4(&mut buf, ROOM, &to4_params()).map(|_| ()), want, "segments left {left}");
    }
}

#[test]
fn an_ipv4_source_route_is_not_translated_other_options_are_dropped() {
    for (opt, want) in [
        ([131u8, 7, 4, 1, 2, 3, 4, 0], Err(Error::Untranslatable)), // LSRR, pointer 4: unexpired
        ([131, 7, 8, 1, 2, 3, 4, 0], Ok(ROOM + 28 - 40)),           // pointer past the end: done
        ([1, 1, 1, 1, 1, 1, 1, 0], Ok(ROOM + 28 - 40)),             // NOPs and EOL
    ] {
        let mut pkt = v4_packet(17, 53, 1234, 64, b"answer");
        pkt.splice(20..20, opt);
        pkt[0] = 0x47;
        let tl = u16::from_be_bytes([pkt[2], pkt[3]]) + 8;
        pkt[2..4].copy_from_slice(&tl.to_be_bytes());
        let mut buf = roomy(&pkt);
        let got = to_ipv6(&mut buf, ROOM, &to6_params());
        assert_eq!(got.map(|t| t.start), want);
        if let Ok(t) = got {
            let (_, ports, body) = check6(&buf[t.start..t.start + t.len]);
            assert_eq!((ports, &body[..]), (Some((80, 40000)), &b"answer"[..]));
        }
    }
}

#[test]
fn other_protocols_and_short_headroom_are_refused() {
    let mut pkt = v4_packet(6, 80, 5000, 64, b"x");
    pkt[9] = 47; // GRE
    assert_eq!(to_ipv6(&mut roomy(&pkt), ROOM, &to6_params()), Err(Error::Untranslatable));
    let pkt = v4_packet(6, 80, 5000, 64, b"x");
    let mut tight = vec![0u8; 19];
    tight.extend_from_slice(&pkt);
    assert_eq!(to_ipv6(&mut tight, 19, &to6_params()), Err(Error::Headroom));
    let mut pkt = v6_packet(6, 1, 2, 64, b"x");
    pkt[6] = 50; // ESP
    assert_eq!(to_ipv4(&mut roomy(&pkt), ROOM, &to4_params()), Err(Error::Untranslatable));
    // A truncated IPv6 packet and a bad IPv4 version are malformed.
    let pkt = v6_packet(6, 1, 2, 64, b"abc");
    assert_eq!(to_ipv4(&mut roomy(&pkt[..pkt.len() - 1]), ROOM, &to4_params()), Err(Error::Malformed));
    assert_eq!(to_ipv6(&mut roomy(&pkt), ROOM, &to6_params()), Err(Error::Malformed));
}

/// A UDP datagram over IPv6 cut into a first fragment (`cut` bytes of
/// UDP) and the rest, with fragment headers of identification `ident`.
fn v6_fragments(payload: &[u8], cut: usize, ident: u32) -> (Vec<u8>, Vec<u8>) {
    let whole = v6_packet(17, 1234, 53, 64, payload);
    let udp = &whole[40..];
    let frag = |off: usize, more: bool, data: &[u8]| {
        let mut p = whole[..40].to_vec();
        p[6] = 44;
        p[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[17, 0]);
        p.extend_from_slice(&((off as u16) | u16::from(more)).to_be_bytes());
        p.extend_from_slice(&ident.to_be_bytes());
        p.extend_from_slice(data);
        p
    };
    (frag(0, true, &udp[..cut]), frag(cut, false, &udp[cut..]))
}

#[test]
fn ipv6_fragments_become_ipv4_fragments() {
    let payload: Vec<u8> = (0..200u8).collect();
    let (first, rest) = v6_fragments(&payload, 104, 0xdead_beef);
    // The reference: the unfragmented datagram's translated checksum.
    let mut whole = roomy(&v6_packet(17, 1234, 53, 64, &payload));
    let tw = to_ipv4(&mut whole, ROOM, &to4_params()).unwrap();
    let want_sum = &whole[tw.start + 26..tw.start + 28];

    let mut buf = roomy(&first);
    let t = to_ipv4(&mut buf, ROOM, &to4_params()).unwrap();
    assert_eq!(t.start, ROOM + 48 - 20);
    let out = &buf[t.start..t.start + t.len];
    let h = Ipv4Header::from_slice(out).unwrap().0;
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!((h.identification, h.more_fragments, h.dont_fragment), (0xbeef, true, false));
    assert_eq!((h.fragment_offset.value(), h.protocol.0, usize::from(h.total_len)), (0, 17, 20 + 104));
    assert_eq!(&out[26..28], want_sum, "the first fragment's UDP checksum covers the datagram");
    assert_eq!(&out[20..24], &[0x13, 0x88, 0x1f, 0x90], "ports 5000 -> 8080");

    let mut buf = roomy(&rest);
    let t = to_ipv4(&mut buf, ROOM, &to4_params()).unwrap();
    let out = &buf[t.start..t.start + t.len];
    let h = Ipv4Header::from_slice(out).unwrap().0;
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!((h.identification, h.more_fragments, h.fragment_offset.value()), (0xbeef, false, 13));
    assert_eq!(&out[20..], &rest[48..], "a later fragment's data is untouched");
}

#[test]
fn ipv4_fragments_get_a_fragment_header() {
    let payload: Vec<u8> = (0..200u8).collect();
    let whole = v4_packet(6, 8080, 5000, 64, &payload);
    let mut first = whole[..20 + 112].to_vec();
    first[2..4].copy_from_slice(&132u16.to_be_bytes());
    first[4..6].copy_from_slice(&0x7777u16.to_be_bytes());
    first[6..8].copy_from_slice(&0x2000u16.to_be_bytes()); // MF
    let mut later = whole[..20].to_vec();
    later.extend_from_slice(&whole[20 + 112..]);
    let tl = later.len() as u16;
    later[2..4].copy_from_slice(&tl.to_be_bytes());
    later[4..6].copy_from_slice(&0x7777u16.to_be_bytes());
    later[6..8].copy_from_slice(&14u16.to_be_bytes()); // offset 112
    for (pkt, off, more) in [(first, 0u16, true), (later, 14, false)] {
        let mut buf = roomy(&pkt);
        let t = to_ipv6(&mut buf, ROOM, &to6_params()).unwrap();
        assert_eq!(t.start, ROOM + 20 - 48);
        let out = &buf[t.start..t.start + t.len];
        let h = Ipv6Header::from_slice(out).unwrap().0;
        assert_eq!((h.next_header.0, usize::from(h.payload_length)), (44, out.len() - 40));
        // Read by hand: etherparse 0.16's Ipv6FragmentHeaderSlice takes the
        // offset and M from the wrong bits (scapy agrees with RFC 8200 §4.5
        // and with this, see the scapy test).
        let word = u16::from_be_bytes([out[42], out[43]]);
        let ident = u32::from_be_bytes([out[44], out[45], out[46], out[47]]);
        assert_eq!(
            (out[40], out[41], word >> 3, word & 6, word & 1 == 1, ident),
            (6, 0, off, 0, more, 0x7777)
        );
        if off == 0 {
            assert_eq!(&out[48..52], &[0, 80, 0x9c, 0x40], "ports 80 -> 40000");
        } else {
            assert_eq!(&out[48..], &pkt[20..]);
        }
    }
    // A UDP fragment without a checksum cannot get one.
    let mut pkt = v4_packet(17, 53, 1234, 64, &payload);
    pkt[26..28].copy_from_slice(&[0, 0]);
    pkt[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
    assert_eq!(to_ipv6(&mut roomy(&pkt), ROOM, &to6_params()), Err(Error::Fragmented));
}

#[test]
fn echo_both_ways() {
    let mut buf = roomy(&v6_packet(58, 0x1234, 7, 64, b"ping!"));
    let t = to_ipv4(&mut buf, ROOM, &to4_params()).unwrap();
    let out = &buf[t.start..t.start + t.len];
    let p = SlicedPacket::from_ip(out).unwrap();
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!("not ICMP") };
    let Icmpv4Type::EchoRequest(e) = icmp.icmp_type() else { panic!("not an echo request") };
    assert_eq!((e.id, e.seq, icmp.payload()), (0x1234, 7, &b"ping!"[..]));
    assert!(icmp4_ok(&out[20..]));

    let mut buf = roomy(&v4_packet(1, 0x1234, 7, 64, b"pong!"));
    let t = to_ipv6(&mut buf, ROOM, &to6_params()).unwrap();
    let out = &buf[t.start..t.start + t.len];
    let p = SlicedPacket::from_ip(out).unwrap();
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6") };
    let Icmpv6Type::EchoReply(e) = icmp.icmp_type() else { panic!("not an echo reply") };
    assert_eq!((e.id, e.seq, icmp.payload()), (0x1234, 7, &b"pong!"[..]));
    assert!(icmp6_ok(VIP6, CLIENT6, &out[40..]));

    // A corrupted echo is refused, not laundered.
    let mut pkt = v4_packet(1, 1, 1, 64, b"x");
    pkt[28] ^= 1;
    assert_eq!(to_ipv6(&mut roomy(&pkt), ROOM, &to6_params()), Err(Error::Checksum));
    // Neighbour discovery has no IPv4 counterpart.
    let mut pkt = v6_packet(58, 1, 1, 255, b"");
    pkt[40] = 135;
    pkt[42..44].copy_from_slice(&[0, 0]);
    let c = !(naive_sum(
        &[&CLIENT6.octets()[..], &VIP6.octets(), &8u32.to_be_bytes(), &[0, 0, 0, 58], &pkt[40..]].concat(),
    ) as u16);
    pkt[42..44].copy_from_slice(&c.to_be_bytes());
    assert_eq!(to_ipv4(&mut roomy(&pkt), ROOM, &to4_params()), Err(Error::Untranslatable));
}

/// An ICMPv6 error from ROUTER6 to the VIP quoting the whole of `quoted`
/// (a packet VIP -> client), of type `ty`, code `code`, rest `rest`.
fn icmp6_error(ty: u8, code: u8, rest: u32, quoted: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ipv6(ROUTER6.octets(), VIP6.octets(), 60)
        .icmpv6_raw(ty, code, rest.to_be_bytes())
        .write(&mut out, quoted)
        .unwrap();
    out
}

fn icmp4_error(ty: u8, code: u8, rest: u32, quoted: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ipv4(ROUTER4.octets(), LIP.octets(), 60)
        .icmpv4_raw(ty, code, rest.to_be_bytes())
        .write(&mut out, quoted)
        .unwrap();
    out
}

#[test]
fn packet_too_big_becomes_fragmentation_needed_with_its_quote() {
    // What the gateway sent the client: VIP:80 -> client:40000, 1000 bytes.
    let mut quoted = vec![];
    PacketBuilder::ipv6(VIP6.octets(), CLIENT6.octets(), 63)
        .tcp(80, 40000, 1, 100)
        .write(&mut quoted, &[0xab; 1000])
        .unwrap();
    for (mtu6, cap, want) in [(1400u32, u16::MAX, 1380u16), (1400, 1300, 1300), (1280, u16::MAX, 1260)] {
        let mut buf = roomy(&icmp6_error(2, 0, mtu6, &quoted));
        let p = To4 { ends: Ends { src: ROUTER4, sport: 0, dst: RIP, dport: 0 }, mtu: cap, ..to4_params() };
        let t = to_ipv4(&mut buf, ROOM, &p).unwrap();
        assert_eq!(t.len, 20 + 8 + quoted.len() - 20);
        let out = &buf[t.start..t.start + t.len];
        let (h, _, _) = check4(out);
        assert_eq!(
            (h.source, h.destination, h.protocol.0, h.time_to_live),
            (ROUTER4.octets(), RIP.octets(), 1, 60)
        );
        assert!(icmp4_ok(&out[20..]), "ICMP checksum");
        let p4 = SlicedPacket::from_ip(out).unwrap();
        let Some(TransportSlice::Icmpv4(icmp)) = &p4.transport else { panic!("not ICMP") };
        let Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu }) =
            icmp.icmp_type()
        else {
            panic!("not fragmentation needed: {:?}", icmp.icmp_type())
        };
        assert_eq!(next_hop_mtu, want);
        // The quote is the IPv4 packet the real server sent: RIP:8080 ->
        // LIP:5000, whole here, so etherparse checks its checksums too.
        let (qh, ports, body) = check4(&out[28..]);
        assert_eq!((qh.source, qh.destination, qh.time_to_live), (RIP.octets(), LIP.octets(), 63));
        assert_eq!((ports, body.len()), (Some((8080, 5000)), 1000));
    }
}

#[test]
fn fragmentation_needed_becomes_packet_too_big_with_its_quote() {
    // What the gateway sent the real server: LIP:5000 -> RIP:8080, DF.
    let mut quoted = vec![];
    PacketBuilder::ipv4(LIP.octets(), RIP.octets(), 63)
        .tcp(5000, 8080, 1, 100)
        .write(&mut quoted, &[0xcd; 1400])
        .unwrap();
    let quoted_len = quoted.len(); // 1440
    for (mtu4, cap, want) in [
        (1400u32, u16::MAX, 1420u32), // + 20
        (1000, u16::MAX, 1280),       // never below the IPv6 minimum
        (1400, 1300, 1300),           // capped by the IPv6 next hop
        (0, u16::MAX, 1280),          // plateau 1006 (below 1440) + 20, floored
    ] {
        let mut buf = roomy(&icmp4_error(3, 4, mtu4, &quoted));
        let p =
            To6 { ends: Ends { src: ROUTER6, sport: 0, dst: CLIENT6, dport: 0 }, mtu: cap, ..to6_params() };
        let t = to_ipv6(&mut buf, ROOM, &p).unwrap();
        assert_eq!(t.len, 1280, "cut to the IPv6 minimum MTU");
        assert_eq!(t.start, ROOM + 20 + 8 + 20 - 88);
        let out = &buf[t.start..t.start + t.len];
        let h = Ipv6Header::from_slice(out).unwrap().0;
        assert_eq!((h.source, h.destination, h.next_header.0), (ROUTER6.octets(), CLIENT6.octets(), 58));
        assert_eq!(usize::from(h.payload_length), 1240);
        assert!(icmp6_ok(ROUTER6, CLIENT6, &out[40..]), "ICMPv6 checksum");
        let p6 = SlicedPacket::from_ip(out).unwrap();
        let Some(TransportSlice::Icmpv6(icmp)) = &p6.transport else { panic!("not ICMPv6") };
        assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: want });
        // The quote: client:40000 -> VIP:80 as the client sent it, its
        // length as the original said (the bytes are cut short).
        let q = Ipv6Header::from_slice(&out[48..]).unwrap().0;
        assert_eq!(
            (q.source, q.destination, q.next_header.0, q.hop_limit),
            (CLIENT6.octets(), VIP6.octets(), 6, 63)
        );
        assert_eq!(usize::from(q.payload_length), quoted_len - 20);
        assert_eq!(&out[88..92], &[0x9c, 0x40, 0, 80]);
    }
}

#[test]
fn a_whole_quote_keeps_valid_checksums_from_ipv4_to_ipv6() {
    let mut quoted = vec![];
    PacketBuilder::ipv4(LIP.octets(), RIP.octets(), 63).udp(5000, 8080).write(&mut quoted, b"dns?").unwrap();
    let mut buf = roomy(&icmp4_error(3, 3, 0, &quoted));
    let p = To6 { ends: Ends { src: ROUTER6, sport: 0, dst: CLIENT6, dport: 0 }, ..to6_params() };
    let t = to_ipv6(&mut buf, ROOM, &p).unwrap();
    let out = &buf[t.start..t.start + t.len];
    assert_eq!((out[40], out[41]), (1, 4), "port unreachable");
    assert!(icmp6_ok(ROUTER6, CLIENT6, &out[40..]));
    let (qh, ports, body) = check6(&out[48..]);
    assert_eq!((qh.source, qh.destination), (CLIENT6.octets(), VIP6.octets()));
    assert_eq!((ports, &body[..]), (Some((40000, 80)), &b"dns?"[..]));
}

#[test]
fn errors_without_a_session_or_with_other_quotes_are_refused() {
    let mut quoted = vec![];
    PacketBuilder::ipv4(LIP.octets(), RIP.octets(), 63).udp(5000, 8080).write(&mut quoted, b"x").unwrap();
    let p = To6 { inner: None, ..to6_params() };
    assert_eq!(to_ipv6(&mut roomy(&icmp4_error(11, 0, 0, &quoted)), ROOM, &p), Err(Error::Untranslatable));
    quoted[9] = 47;
    assert_eq!(
        to_ipv6(&mut roomy(&icmp4_error(11, 0, 0, &quoted)), ROOM, &to6_params()),
        Err(Error::Untranslatable)
    );
    // Redirect and source quench have no counterpart.
    quoted[9] = 17;
    for ty in [4, 5] {
        assert_eq!(
            to_ipv6(&mut roomy(&icmp4_error(ty, 0, 0, &quoted)), ROOM, &to6_params()),
            Err(Error::Untranslatable)
        );
    }
    // Not enough headroom for two IPv6 headers.
    let e = icmp4_error(11, 0, 0, &quoted);
    let mut tight = vec![0u8; 39];
    tight.extend_from_slice(&e);
    assert_eq!(to_ipv6(&mut tight, 39, &to6_params()), Err(Error::Headroom));
}

#[test]
fn rfc_7915_code_tables() {
    // ICMPv6 -> ICMP (§5.2): destination unreachable codes.
    for (code6, code4) in [(0, 1), (1, 10), (2, 1), (3, 1), (4, 3)] {
        assert_eq!(map_icmp6(1, code6, 0, false, u16::MAX), Some((3, code4, 0)));
    }
    assert_eq!(map_icmp6(1, 5, 0, false, u16::MAX), None);
    assert_eq!(map_icmp6(3, 1, 0, false, u16::MAX), Some((11, 1, 0)));
    assert_eq!(map_icmp6(4, 1, 6, false, u16::MAX), Some((3, 2, 0)), "unrecognized next header");
    assert_eq!(map_icmp6(4, 2, 0, false, u16::MAX), None, "unrecognized option");
    assert_eq!(map_icmp6(2, 0, 1500, true, u16::MAX), Some((3, 4, 1472)), "fragment header: 28");
    // Below IPv6's minimum MTU: as 1280.
    assert_eq!(map_icmp6(2, 0, 68, false, u16::MAX), Some((3, 4, 1260)));
    assert_eq!(map_icmp6(2, 0, 0, true, u16::MAX), Some((3, 4, 1252)));
    // Parameter problem pointers (Figure 6).
    for (p6, p4) in [
        (0, Some(0)),
        (1, Some(1)),
        (2, None),
        (3, None),
        (4, Some(2)),
        (5, Some(2)),
        (6, Some(9)),
        (7, Some(8)),
        (8, Some(12)),
        (23, Some(12)),
        (24, Some(16)),
        (39, Some(16)),
        (40, None),
    ] {
        assert_eq!(map_icmp6(4, 0, p6, false, u16::MAX), p4.map(|p: u32| (12, 0, p << 24)), "pointer {p6}");
    }
    // ICMP -> ICMPv6 (§4.2).
    for (code4, want) in [
        (0, (1, 0, 0)),
        (1, (1, 0, 0)),
        (2, (4, 1, 6)),
        (3, (1, 4, 0)),
        (5, (1, 0, 0)),
        (6, (1, 0, 0)),
        (7, (1, 0, 0)),
        (8, (1, 0, 0)),
        (9, (1, 1, 0)),
        (10, (1, 1, 0)),
        (11, (1, 0, 0)),
        (12, (1, 0, 0)),
        (13, (1, 1, 0)),
        (15, (1, 1, 0)),
    ] {
        assert_eq!(map_icmp4(3, code4, 0, 0, u16::MAX), Some(want), "code {code4}");
    }
    assert_eq!(map_icmp4(3, 14, 0, 0, u16::MAX), None);
    // Fragmentation needed with MTU 0: the RFC 1191 plateau below the
    // quoted length, plus 20.
    assert_eq!(map_icmp4(3, 4, 0, 9000, u16::MAX), Some((2, 0, 8166 + 20)));
    assert_eq!(map_icmp4(3, 4, 0, 1500, u16::MAX), Some((2, 0, 1492 + 20)));
    assert_eq!(map_icmp4(11, 1, 0, 0, u16::MAX), Some((3, 1, 0)));
    assert_eq!(map_icmp4(12, 1, 0, 0, u16::MAX), None, "missing a required option");
    // Pointers (Figure 3).
    for (p4, p6) in [
        (0u8, Some(0u32)),
        (1, Some(1)),
        (2, Some(4)),
        (3, Some(4)),
        (4, None),
        (7, None),
        (8, Some(7)),
        (9, Some(6)),
        (10, None),
        (12, Some(8)),
        (15, Some(8)),
        (16, Some(24)),
        (19, Some(24)),
        (20, None),
    ] {
        assert_eq!(map_icmp4(12, 0, u32::from(p4) << 24, 0, u16::MAX), p6.map(|p| (4, 0, p)), "pointer {p4}");
    }
}

#[test]
fn rfc_6052_examples() {
    // RFC 6052 §2.4, 192.0.2.33 under each prefix length.
    let v4 = Ipv4Addr::new(192, 0, 2, 33);
    for (prefix, len, want) in [
        ("2001:db8::", 32, "2001:db8:c000:221::"),
        ("2001:db8:100::", 40, "2001:db8:1c0:2:21::"),
        ("2001:db8:122::", 48, "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::", 56, "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::", 64, "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::", 96, "2001:db8:122:344::192.0.2.33"),
        ("64:ff9b::", 96, "64:ff9b::192.0.2.33"),
    ] {
        let want: Ipv6Addr = want.parse().unwrap();
        assert_eq!(embed(prefix.parse().unwrap(), len, v4), Some(want), "/{len}");
        assert_eq!(extract(want, len), Some(v4), "/{len}");
    }
    assert_eq!(embed(Ipv6Addr::UNSPECIFIED, 33, v4), None);
    assert_eq!(extract(Ipv6Addr::UNSPECIFIED, 128), None);
}

#[test]
fn udp_zero_checksum_is_computed_for_ipv6() {
    let mut pkt = v4_packet(17, 53, 1234, 64, b"no sum");
    pkt[26..28].copy_from_slice(&[0, 0]);
    let mut buf = roomy(&pkt);
    let t = to_ipv6(&mut buf, ROOM, &to6_params()).unwrap();
    let out = &buf[t.start..t.start + t.len];
    let (h, _, _) = check6(out);
    let u = UdpHeader::from_slice(&out[40..]).unwrap().0;
    assert_eq!(u.checksum, u.calc_checksum_ipv6(&h, b"no sum").unwrap());
}

/// The translated packets of the scapy cross-check, with their headroom
/// trimmed: (what it is, the packet).
fn scapy_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut cases = Vec::new();
    let mut push4 = |name, pkt: Vec<u8>, p: &To4| {
        let mut buf = roomy(&pkt);
        let t = to_ipv4(&mut buf, ROOM, p).unwrap();
        cases.push((name, buf[t.start..t.start + t.len].to_vec()));
    };
    let mut pkt = v6_packet(6, 40000, 80, 61, &[7; 100]);
    set_tc_flow(&mut pkt, 0x28, 0x12345);
    push4("tcp 6->4", pkt, &to4_params());
    push4("big tcp 6->4", v6_packet(6, 40000, 80, 61, &[7; 1300]), &to4_params());
    push4("echo 6->4", v6_packet(58, 0x1234, 9, 64, b"ping"), &to4_params());
    let mut quoted = vec![];
    PacketBuilder::ipv6(VIP6.octets(), CLIENT6.octets(), 63)
        .tcp(80, 40000, 1, 100)
        .write(&mut quoted, &[1; 300])
        .unwrap();
    let ptb = To4 { ends: Ends { src: ROUTER4, sport: 0, dst: RIP, dport: 0 }, ..to4_params() };
    push4("ptb 6->4", icmp6_error(2, 0, 1400, &quoted), &ptb);

    let mut push6 = |name, pkt: Vec<u8>, p: &To6| {
        let mut buf = roomy(&pkt);
        let t = to_ipv6(&mut buf, ROOM, p).unwrap();
        cases.push((name, buf[t.start..t.start + t.len].to_vec()));
    };
    let mut pkt = v4_packet(17, 8080, 5000, 62, b"no checksum");
    pkt[26..28].copy_from_slice(&[0, 0]);
    push6("udp0 4->6", pkt, &to6_params());
    let mut first = v4_packet(6, 8080, 5000, 62, &[3; 200]);
    first.truncate(20 + 112);
    first[2..4].copy_from_slice(&132u16.to_be_bytes());
    first[4..6].copy_from_slice(&0x0abcu16.to_be_bytes());
    first[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
    push6("first fragment 4->6", first, &to6_params());
    push6("echo 4->6", v4_packet(1, 0x1234, 9, 64, b"pong"), &to6_params());
    let mut quoted = vec![];
    PacketBuilder::ipv4(LIP.octets(), RIP.octets(), 63)
        .tcp(5000, 8080, 1, 100)
        .write(&mut quoted, &[2; 1400])
        .unwrap();
    let fneed = To6 { ends: Ends { src: ROUTER6, sport: 0, dst: CLIENT6, dport: 0 }, ..to6_params() };
    push6("frag needed 4->6", icmp4_error(3, 4, 1400, &quoted), &fneed);
    let mut quoted = vec![];
    PacketBuilder::ipv4(LIP.octets(), RIP.octets(), 63).udp(5000, 8080).write(&mut quoted, b"dns?").unwrap();
    push6("port unreachable 4->6", icmp4_error(3, 3, 0, &quoted), &fneed);
    cases
}

/// A second, independent reader: scapy parses every translated packet,
/// recomputes each checksum it knows and reports the fields.
#[test]
#[ignore = "needs python3-scapy: cargo nextest run -p gw-core --run-ignored all scapy"]
fn scapy_reads_what_we_translate() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let cases = scapy_cases();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/src/nat64/scapy_check.py");
    // The distribution's python3 (python3-scapy), not a pyenv shim.
    let python =
        if std::path::Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        let stdin = child.stdin.as_mut().unwrap();
        for (_, pkt) in &cases {
            let hex: String = pkt.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(stdin, "{hex}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "scapy_check.py failed");
    let lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    for ((name, _), line) in cases.iter().zip(&lines) {
        println!("{name}: {line}");
    }
    // ID 16962 is 0x4242 (To4::ident), flags 2 is DF (above 1260 bytes),
    // id 2748 the IPv4 fragment's 0x0abc; a fragment's TCP checksum is not
    // checked (it covers the whole datagram).
    let want = [
        "v4 198.18.1.1>198.18.2.2 p6 ttl61 tos40 id16962 f0 o0 len140 tcp 5000>8080",
        "v4 198.18.1.1>198.18.2.2 p6 ttl61 tos0 id16962 f2 o0 len1340 tcp 5000>8080",
        "v4 198.18.1.1>198.18.2.2 p1 ttl64 tos0 id16962 f0 o0 len32 icmp t8 c0 echo 4660/9",
        "v4 198.18.9.1>198.18.2.2 p1 ttl60 tos0 id16962 f0 o0 len368 icmp t3 c4 mtu1380 \
         in 198.18.2.2>198.18.1.1 p6 len340 in-tcp 8080>5000",
        "v6 2001:db8:1::100>2001:db8:1::2 nh17 hlim62 tc0 fl0 plen19 udp 80>40000",
        "v6 2001:db8:1::100>2001:db8:1::2 nh44 hlim62 tc0 fl0 plen120 frag o0 m1 id2748 nh6 tcp 80>40000",
        "v6 2001:db8:1::100>2001:db8:1::2 nh58 hlim64 tc0 fl0 plen12 icmp6 t129 echo 4660/9",
        "v6 2001:db8:9::1>2001:db8:1::2 nh58 hlim60 tc0 fl0 plen1240 icmp6 t2 mtu1420 \
         in 2001:db8:1::2>2001:db8:1::100 nh6 plen1420 in-tcp 40000>80",
        "v6 2001:db8:9::1>2001:db8:1::2 nh58 hlim60 tc0 fl0 plen60 icmp6 t1 c4 \
         in 2001:db8:1::2>2001:db8:1::100 nh17 plen12 in-udp 40000>80",
    ];
    assert_eq!(lines.len(), cases.len());
    for (w, got) in want.iter().zip(&lines) {
        assert_eq!(got, w);
    }
}

#[test]
fn frames_move_their_ethernet_header_and_change_size() {
    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    let mut frame = vec![];
    PacketBuilder::ethernet2(A, B)
        .ipv6(CLIENT6.octets(), VIP6.octets(), 64)
        .tcp(40000, 80, 1, 100)
        .write(&mut frame, b"GET /")
        .unwrap();
    frame.extend_from_slice(&[0; 6]); // Ethernet padding is cut off
    let len6 = frame.len() - 6;
    frame_to_ipv4(&mut frame, &to4_params()).unwrap();
    assert_eq!(frame.len(), len6 - 20);
    let p = SlicedPacket::from_ethernet(&frame).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else { panic!("not Ethernet") };
    assert_eq!((eth.source(), eth.destination(), eth.ether_type().0), (A, B, 0x0800));
    let (h, ports, body) = check4(&frame[14..]);
    assert_eq!(
        (h.source, h.destination, ports, &body[..]),
        (LIP.octets(), RIP.octets(), Some((5000, 8080)), &b"GET /"[..])
    );

    // And back, through the headroom the IPv6 header needs.
    let back = To6 {
        ends: Ends { src: CLIENT6, sport: 40000, dst: VIP6, dport: 80 },
        inner: None,
        mtu: u16::MAX,
        l4_change: None,
    };
    frame_to_ipv6(&mut frame, &back).unwrap();
    assert_eq!(frame.len(), len6);
    let p = SlicedPacket::from_ethernet(&frame).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else { panic!("not Ethernet") };
    assert_eq!((eth.source(), eth.destination(), eth.ether_type().0), (A, B, 0x86dd));
    let (h, ports, _) = check6(&frame[14..]);
    assert_eq!((h.source, h.destination, ports), (CLIENT6.octets(), VIP6.octets(), Some((40000, 80))));

    // An untranslatable frame comes back as it was.
    let mut gre = vec![];
    PacketBuilder::ethernet2(A, B)
        .ipv4(RIP.octets(), LIP.octets(), 64)
        .udp(1, 2)
        .write(&mut gre, b"x")
        .unwrap();
    gre[14 + 9] = 47;
    let orig = gre.clone();
    assert_eq!(frame_to_ipv6(&mut gre, &to6_params()), Err(Error::Untranslatable));
    assert_eq!(gre, orig);
}

proptest! {
    /// ICMPv6 errors quoting a whole TCP/UDP packet, any code of the
    /// translated types: the ICMP checksum verifies, the quote reads as
    /// the IPv4 packet the real server sent, with valid checksums.
    #[test]
    fn icmpv6_errors_with_whole_quotes(
        pick in 0usize..6, tcp in any::<bool>(), mtu in 1280u32..9000,
        payload in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let (ty, code, rest, want) = [
            (1u8, 0u8, 0u32, (3u8, 1u8)), (1, 1, 0, (3, 10)), (1, 4, 0, (3, 3)), (2, 0, mtu, (3, 4)),
            (3, 0, 0, (11, 0)), (4, 0, 8, (12, 0)),
        ][pick];
        let mut quoted = vec![];
        let b = PacketBuilder::ipv6(VIP6.octets(), CLIENT6.octets(), 63);
        if tcp {
            b.tcp(80, 40000, 7, 100).write(&mut quoted, &payload).unwrap();
        } else {
            b.udp(80, 40000).write(&mut quoted, &payload).unwrap();
        }
        let mut buf = roomy(&icmp6_error(ty, code, rest, &quoted));
        let p = To4 { ends: Ends { src: ROUTER4, sport: 0, dst: RIP, dport: 0 }, ..to4_params() };
        let t = to_ipv4(&mut buf, ROOM, &p).unwrap();
        let out = &buf[t.start..t.start + t.len];
        let (h, _, _) = check4(out);
        prop_assert_eq!((h.source, h.destination, h.protocol.0), (ROUTER4.octets(), RIP.octets(), 1));
        prop_assert!(icmp4_ok(&out[20..]));
        prop_assert_eq!((out[20], out[21]), want);
        match want {
            (3, 4) => prop_assert_eq!(u32::from(u16::from_be_bytes([out[26], out[27]])), mtu - 20),
            (12, 0) => prop_assert_eq!(out[24], 12, "the source address"),
            _ => prop_assert_eq!(&out[24..28], &[0, 0, 0, 0]),
        }
        let (qh, ports, body) = check4(&out[28..]);
        prop_assert_eq!((qh.source, qh.destination, qh.protocol.0), (RIP.octets(), LIP.octets(), if tcp { 6 } else { 17 }));
        prop_assert_eq!((ports, body), (Some((8080, 5000)), payload));
    }

    /// ICMP errors quoting a whole TCP/UDP packet: the ICMPv6 checksum
    /// verifies, the quote reads as the IPv6 packet the client sent, with
    /// valid checksums, and the message is at most 1280 bytes.
    #[test]
    fn icmpv4_errors_with_whole_quotes(
        pick in 0usize..6, tcp in any::<bool>(), mtu in 68u32..9000,
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
    ) {
        let (ty, code, rest, want) = [
            (3u8, 1u8, 0u32, (1u8, 0u8)), (3, 3, 0, (1, 4)), (3, 13, 0, (1, 1)), (3, 4, mtu, (2, 0)),
            (11, 1, 0, (3, 1)), (12, 0, 9 << 24, (4, 0)),
        ][pick];
        let mut quoted = vec![];
        let b = PacketBuilder::ipv4(LIP.octets(), RIP.octets(), 63);
        if tcp {
            b.tcp(5000, 8080, 7, 100).write(&mut quoted, &payload).unwrap();
        } else {
            b.udp(5000, 8080).write(&mut quoted, &payload).unwrap();
        }
        let mut buf = roomy(&icmp4_error(ty, code, rest, &quoted));
        let p = To6 { ends: Ends { src: ROUTER6, sport: 0, dst: CLIENT6, dport: 0 }, ..to6_params() };
        let t = to_ipv6(&mut buf, ROOM, &p).unwrap();
        let out = &buf[t.start..t.start + t.len];
        prop_assert_eq!(t.len, (40 + 8 + 40 + quoted.len() - 20).min(1280));
        let h = Ipv6Header::from_slice(out).unwrap().0;
        prop_assert_eq!((h.source, h.destination, h.next_header.0), (ROUTER6.octets(), CLIENT6.octets(), 58));
        prop_assert!(icmp6_ok(ROUTER6, CLIENT6, &out[40..]));
        prop_assert_eq!((out[40], out[41]), want);
        let rest6 = u32::from_be_bytes([out[44], out[45], out[46], out[47]]);
        match want {
            (2, 0) => prop_assert_eq!(rest6, (mtu + 20).max(1280)),
            (4, 0) => prop_assert_eq!(rest6, 6, "protocol -> next header"),
            _ => prop_assert_eq!(rest6, 0),
        }
        let q = Ipv6Header::from_slice(&out[48..]).unwrap().0;
        prop_assert_eq!((q.source, q.destination, q.hop_limit), (CLIENT6.octets(), VIP6.octets(), 63));
        prop_assert_eq!(usize::from(q.payload_length), quoted.len() - 20);
        if t.len < 1280 {
            let (_, ports, body) = check6(&out[48..]);
            prop_assert_eq!((ports, body), (Some((40000, 80)), payload));
        }
    }
}

proptest! {
    /// Valid packets (TCP, UDP, echo, errors) with a few bytes changed:
    /// never a panic, an error leaves the buffer as it was, and what is
    /// translated parses.
    #[test]
    fn mutated_packets_never_panic_and_errors_change_nothing(
        which in 0usize..4, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut quoted6 = vec![];
        PacketBuilder::ipv6(VIP6.octets(), CLIENT6.octets(), 63).tcp(80, 40000, 1, 100).write(&mut quoted6, &[5; 40]).unwrap();
        let mut quoted4 = vec![];
        PacketBuilder::ipv4(LIP.octets(), RIP.octets(), 63).udp(5000, 8080).write(&mut quoted4, &[6; 40]).unwrap();
        let (mut pkt, v6) = match which {
            0 => (v6_packet(6, 40000, 80, 64, &[1; 60]), true),
            1 => (icmp6_error(2, 0, 1400, &quoted6), true),
            2 => (v4_packet(17, 8080, 5000, 64, &[2; 60]), false),
            _ => (icmp4_error(3, 4, 1400, &quoted4), false),
        };
        for (at, v) in flips {
            let n = pkt.len();
            pkt[at % n] ^= v;
        }
        let orig = roomy(&pkt);
        let mut buf = orig.clone();
        let r = if v6 { to_ipv4(&mut buf, ROOM, &to4_params()).map(|t| (t, false)) } else { to_ipv6(&mut buf, ROOM, &to6_params()).map(|t| (t, true)) };
        match r {
            Err(_) => prop_assert_eq!(&buf, &orig),
            Ok((t, to6)) => {
                prop_assert!(t.start + t.len <= buf.len());
                let out = &buf[t.start..t.start + t.len];
                if to6 {
                    prop_assert_eq!(out[0] >> 4, 6);
                    prop_assert_eq!(40 + usize::from(u16::from_be_bytes([out[4], out[5]])), out.len());
                } else {
                    let h = Ipv4Header::from_slice(out).unwrap().0;
                    prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
                    prop_assert_eq!(usize::from(h.total_len), out.len());
                }
            }
        }
    }
}

proptest! {
    /// The TCP/UDP checksum is updated, not recomputed (the pseudo-header
    /// change as one RFC 1624 update over the address words, with the
    /// ports'); for any addresses, ports and TTL/identification the result
    /// must be what etherparse computes from scratch over the translated
    /// packet, both ways, and the IPv4 header checksum must verify. Also
    /// through the framed path (`frame_to_ipv4`/`frame_to_ipv6`) with the
    /// exact growth of an unfragmented packet.
    #[test]
    fn checksums_are_updated_as_a_recomputation_gives_for_any_addresses(
        tcp in any::<bool>(), src6: u128, dst6: u128, src4: u32, dst4: u32, sport: u16, dport: u16,
        nsport: u16, ndport: u16, hop in 1u8.., ident: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (s6, d6, s4, d4) = (Ipv6Addr::from(src6), Ipv6Addr::from(dst6), Ipv4Addr::from(src4), Ipv4Addr::from(dst4));
        let pkt = v6_packet_between(s6, d6, if tcp { 6 } else { 17 }, sport, dport, hop, &payload);
        let mut buf = roomy(&pkt);
        let p4 = To4 { ends: Ends { src: s4, sport: nsport, dst: d4, dport: ndport }, inner: None, ident, mtu: u16::MAX, l4_change: None };
        let t = to_ipv4(&mut buf, ROOM, &p4).unwrap();
        let (h, ports, body) = check4(&buf[t.start..t.start + t.len]);
        prop_assert_eq!((h.source, h.destination), (s4.octets(), d4.octets()));
        prop_assert_eq!(ports, Some((nsport, ndport)));
        prop_assert_eq!(h.identification, ident);
        prop_assert_eq!(&body, &payload);
        // And back, to other IPv6 ends, as a frame in a buffer with headroom.
        let mut pkt_buf = Headroom::framed(64, IPV4_TYPE, &buf[t.start..t.start + t.len]);
        let p6 = To6 { ends: Ends { src: d6, sport: ndport, dst: s6, dport: nsport }, inner: None, mtu: u16::MAX, l4_change: None };
        frame_to_ipv6(&mut pkt_buf, &p6).unwrap();
        prop_assert_eq!(pkt_buf.start, 64 - 20, "an unfragmented packet grows by 20 bytes exactly");
        let f = pkt_buf.as_ref();
        prop_assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let (h6, ports6, body6) = check6(&f[14..]);
        prop_assert_eq!((h6.source, h6.destination), (d6.octets(), s6.octets()));
        prop_assert_eq!(ports6, Some((ndport, nsport)));
        prop_assert_eq!(&body6, &payload);
    }
}

/// A `Vec` whose data starts at `start`: `prepend`/`adj` move the start, as
/// an mbuf's do.
struct Headroom {
    buf: Vec<u8>,
    start: usize,
}

/// The EtherTypes of IPv4 and IPv6, as a frame carries them.
const IPV4_TYPE: [u8; 2] = [0x08, 0x00];
const IPV6_TYPE: [u8; 2] = [0x86, 0xdd];

impl Headroom {
    /// `pkt` in an Ethernet frame of type `ethertype`, after `room` bytes
    /// of headroom.
    fn framed(room: usize, ethertype: [u8; 2], pkt: &[u8]) -> Headroom {
        let mut buf = vec![0u8; room];
        buf.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, ethertype[0], ethertype[1]]);
        buf.extend_from_slice(pkt);
        Headroom { buf, start: room }
    }
}

impl AsRef<[u8]> for Headroom {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl AsMut<[u8]> for Headroom {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
}

impl PacketBuf for Headroom {
    fn set_len(&mut self, len: usize) -> bool {
        self.buf.truncate(self.start + len);
        true
    }
    fn prepend(&mut self, n: usize) -> bool {
        let ok = n <= self.start;
        if ok {
            self.start -= n;
        }
        ok
    }
    fn truncate(&mut self, len: usize) {
        self.buf.truncate(self.start + len);
    }
    fn adj(&mut self, n: usize) -> bool {
        let ok = n <= self.buf.len() - self.start;
        if ok {
            self.start += n;
        }
        ok
    }
}

/// The headers of a fast-path test's packet: its family and protocol,
/// ports, hop limit, traffic class (IPv6: and flow label; IPv4: DF), and
/// whether an IPv4 UDP packet's checksum is 0.
struct Shape {
    v6: bool,
    tcp: bool,
    sport: u16,
    dport: u16,
    hop: u8,
    tc: u8,
    flow: u32,
    df: bool,
    udp_sum0: bool,
}

/// A packet of `shape` carrying `payload`, its segment cut short by up to
/// `cut` bytes behind an IP length set to match (`fix_len`: a short
/// segment) or left as it was (a truncated packet); and its IP header's
/// length.
fn cut_packet(shape: &Shape, payload: &[u8], cut: usize, fix_len: bool) -> (Vec<u8>, usize) {
    let Shape { v6, tcp, sport, dport, hop, tc, flow, df, udp_sum0 } = *shape;
    let proto = if tcp { 6 } else { 17 };
    let mut pkt = if v6 {
        let mut p = v6_packet(proto, sport, dport, hop, payload);
        set_tc_flow(&mut p, tc, flow);
        p
    } else {
        let mut p = v4_packet(proto, sport, dport, hop, payload);
        p[1] = tc;
        if df {
            p[6] |= 0x40;
        }
        if !tcp && udp_sum0 {
            p[26..28].copy_from_slice(&[0, 0]);
        }
        p
    };
    let ip_len = if v6 { 40 } else { 20 };
    let keep = pkt.len() - cut.min(pkt.len() - ip_len);
    pkt.truncate(keep);
    if fix_len {
        let (at, len) = if v6 { (4, keep - 40) } else { (2, keep) };
        pkt[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
    }
    (pkt, ip_len)
}

/// `pkt` followed by `pad` bytes of Ethernet padding, then with each of
/// `flips` (an offset, wrapped, and a byte to xor there) applied.
fn pad_and_flip(pkt: &mut Vec<u8>, pad: usize, flips: &[(usize, u8)]) {
    pkt.extend(std::iter::repeat_n(0xa5, pad));
    for &(at, v) in flips {
        let n = pkt.len();
        pkt[at % n] ^= v;
    }
}

proptest! {
    /// The fast path of a session's plain TCP/UDP packet
    /// ([`plain_to_ipv4`], [`plain_to_ipv6`]) writes exactly what the
    /// general translation writes, byte for byte, or declines and leaves
    /// the buffer alone. Packets of both families, with short segments,
    /// UDP checksum 0, DF, Ethernet padding, little headroom and a few
    /// header bytes changed (version, next header, lengths, IHL, flags),
    /// so both the accepted and the declined side are reached.
    #[test]
    fn the_plain_path_writes_what_the_general_one_writes(
        v6 in any::<bool>(), tcp in any::<bool>(), sport: u16, dport: u16, hop in 1u8.., tc: u8,
        payload in proptest::collection::vec(any::<u8>(), 0..200), udp_sum0 in any::<bool>(),
        df in any::<bool>(), pad in 0usize..8, room in 0usize..48, cut in 0usize..24, fix_len in any::<bool>(),
        flips in proptest::collection::vec((0usize..48, any::<u8>()), 0..3),
    ) {
        let shape = Shape { v6, tcp, sport, dport, hop, tc, flow: 0x12345, df, udp_sum0 };
        let (mut pkt, ip_len) = cut_packet(&shape, &payload, cut, fix_len);
        let keep = pkt.len();
        // What the plain path must take: whole lengths, the checksum field
        // in the segment, and for IPv4 a UDP checksum and IPv6's headroom.
        let whole = flips.is_empty() && (cut == 0 || fix_len);
        let csum_in = keep - ip_len >= if tcp { 18 } else { 8 };
        let plain = whole && csum_in && (v6 || (room >= 20 && (tcp || !udp_sum0)));
        pad_and_flip(&mut pkt, pad, &flips);
        let mut orig = vec![0u8; room];
        orig.extend_from_slice(&pkt);
        let (mut fast, mut any) = (orig.clone(), orig.clone());
        if v6 {
            let p = to4_params();
            let r = plain_to_ipv4(&mut fast, room, &p);
            prop_assert!(!plain || r.is_some(), "a plain packet takes the plain path");
            match r {
                Some(t) => {
                    prop_assert_eq!(any_to_ipv4(&mut any, room, &p), Ok(t));
                    prop_assert_eq!(&fast, &any);
                }
                None => prop_assert_eq!(&fast, &orig, "declined: untouched"),
            }
        } else {
            let p = to6_params();
            let r = plain_to_ipv6(&mut fast, room, &p);
            prop_assert!(!plain || r.is_some(), "a plain packet takes the plain path");
            match r {
                Some(t) => {
                    prop_assert_eq!(any_to_ipv6(&mut any, room, &p), Ok(t));
                    prop_assert_eq!(&fast, &any);
                }
                None => prop_assert_eq!(&fast, &orig, "declined: untouched"),
            }
        }
    }
}

/// The fast path is the one a session's packet takes: a TCP and a UDP
/// packet of each family (with room for IPv6's header) are accepted.
#[test]
fn plain_packets_take_the_plain_path() {
    for proto in [6, 17] {
        let mut b = roomy(&v6_packet(proto, 40000, 80, 64, &[1; 100]));
        assert!(plain_to_ipv4(&mut b, ROOM, &to4_params()).is_some(), "IPv6 proto {proto}");
        let mut b = roomy(&v4_packet(proto, 8080, 5000, 64, &[1; 100]));
        assert!(plain_to_ipv6(&mut b, ROOM, &to6_params()).is_some(), "IPv4 proto {proto}");
    }
}

proptest! {
    /// A NAT64 session's checksum change, computed once
    /// ([`crate::session::ipv6::Session6::nat64_change`], through
    /// [`To4::l4_change`]/[`To6::l4_change`]) instead of from each packet's
    /// addresses and ports: for any addresses and ports of a session, its
    /// client packets (IPv6 -> IPv4) and its replies (IPv4 -> IPv6, framed,
    /// a UDP checksum of 0 included: computed) come out byte for byte as
    /// without it, with the checksums etherparse computes from scratch.
    #[test]
    fn a_sessions_checksum_change_gives_what_the_packets_own_gives(
        tcp in any::<bool>(), cip: u128, vip: u128, rip: u32, lip: u32, cport: u16, vport: u16,
        rport: u16, lport: u16, hop in 1u8.., ident: u16, udp_zero in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        use crate::session::ipv6::Session6;
        use crate::tcp_state::State;
        use crate::wire::ipv4::Protocol;
        let (proto, state) = if tcp { (Protocol::Tcp, State::Established) } else { (Protocol::Udp, State::Udp) };
        let mapped = |a: u32| u128::from(Ipv4Addr::from(a).to_ipv6_mapped());
        let s = Session6::new(
            proto, (cip, cport), (vip, vport), (mapped(rip), rport), (mapped(lip), lport),
            state, gw_proto::ForwardMode::FullNat, 0, 0,
        );
        let (c6, v6, r4, l4) = (Ipv6Addr::from(cip), Ipv6Addr::from(vip), Ipv4Addr::from(rip), Ipv4Addr::from(lip));
        // Client -> server.
        let proto_nr = if tcp { 6 } else { 17 };
        let pkt = v6_packet_between(c6, v6, proto_nr, cport, vport, hop, &payload);
        let ends = Ends { src: l4, sport: lport, dst: r4, dport: rport };
        let own = To4 { ends, inner: None, ident, mtu: u16::MAX, l4_change: None };
        let known = To4 { l4_change: Some(s.nat64_change(false)), ..own };
        let (mut a, mut b) = (roomy(&pkt), roomy(&pkt));
        let ta = to_ipv4(&mut a, ROOM, &own).unwrap();
        let tb = to_ipv4(&mut b, ROOM, &known).unwrap();
        prop_assert_eq!(ta, tb);
        prop_assert_eq!(&a, &b);
        let (h, ports, body) = check4(&b[tb.start..tb.start + tb.len]);
        prop_assert_eq!((h.source, h.destination, ports), (l4.octets(), r4.octets(), Some((lport, rport))));
        prop_assert_eq!(&body, &payload);
        // Server -> client, as a frame.
        let mut v4 = v4_packet_between(r4, l4, proto_nr, rport, lport, hop, &payload);
        if !tcp && udp_zero {
            v4[26..28].copy_from_slice(&[0, 0]);
        }
        let ends = Ends { src: v6, sport: vport, dst: c6, dport: cport };
        let own = To6 { ends, inner: None, mtu: u16::MAX, l4_change: None };
        let known = To6 { l4_change: Some(s.nat64_change(true)), ..own };
        let mut a = Headroom::framed(64, IPV4_TYPE, &v4);
        let mut b = Headroom::framed(64, IPV4_TYPE, &v4);
        frame_to_ipv6(&mut a, &own).unwrap();
        frame_to_ipv6(&mut b, &known).unwrap();
        prop_assert_eq!(a.as_ref(), b.as_ref());
        let (h6, ports6, body6) = check6(&b.as_ref()[14..]);
        prop_assert_eq!((h6.source, h6.destination, ports6), (v6.octets(), c6.octets(), Some((vport, cport))));
        prop_assert_eq!(&body6, &payload);
    }
}

/// A session of another kind (FULLNAT66, NAT66) has no NAT64 change.
#[test]
fn only_nat64_sessions_have_a_checksum_change() {
    use crate::session::ipv6::Session6;
    let mapped = |a: Ipv4Addr| u128::from(a.to_ipv6_mapped());
    let (c, v) = ((u128::from(CLIENT6), 40000), (u128::from(VIP6), 80));
    let s = |rs, local| {
        Session6::new(
            crate::wire::ipv4::Protocol::Tcp,
            c,
            v,
            rs,
            local,
            crate::tcp_state::State::Established,
            gw_proto::ForwardMode::FullNat,
            0,
            0,
        )
    };
    let six = (u128::from(ROUTER6), 8080);
    assert_eq!(s(six, six).nat64_change(false), 0);
    assert_eq!(s((mapped(RIP), 8080), six).nat64_change(false), 0);
    let nat64 = s((mapped(RIP), 8080), (mapped(LIP), 5000));
    let from = Ends { src: CLIENT6, sport: 40000, dst: VIP6, dport: 80 };
    let want = l4_change(from, Ends { src: LIP, sport: 5000, dst: RIP, dport: 8080 });
    assert_eq!((nat64.nat64_change(false), nat64.nat64_change(true)), (want, !want));
}

proptest! {
    /// The frame-level fast paths ([`frame_to_ipv4`], [`frame_to_ipv6`]:
    /// the plain packet with one view of the buffer) give what the general
    /// frame translation gives ([`frame_to_ipv4_any`],
    /// [`frame_to_ipv6_any`]): the same result, the same bytes, the same
    /// start in the buffer, for packets of both families with short
    /// segments, UDP checksum 0, Ethernet padding, little or no headroom
    /// and a few bytes changed after the Ethernet header, so both the
    /// fast path and its fallback (with what it gave back) are reached.
    #[test]
    fn the_frame_fast_paths_give_what_the_general_ones_give(
        v6 in any::<bool>(), tcp in any::<bool>(), sport: u16, dport: u16, hop in 1u8.., tc: u8,
        payload in proptest::collection::vec(any::<u8>(), 0..200), udp_sum0 in any::<bool>(),
        pad in 0usize..8, room in 0usize..48, cut in 0usize..24, fix_len in any::<bool>(),
        flips in proptest::collection::vec((0usize..48, any::<u8>()), 0..3),
    ) {
        let shape = Shape { v6, tcp, sport, dport, hop, tc, flow: 0x54321, df: false, udp_sum0 };
        let (mut pkt, _) = cut_packet(&shape, &payload, cut, fix_len);
        pad_and_flip(&mut pkt, pad, &flips);
        let ty = if v6 { IPV6_TYPE } else { IPV4_TYPE };
        let mut fast = Headroom::framed(room, ty, &pkt);
        let mut any = Headroom::framed(room, ty, &pkt);
        let (r_fast, r_any) = if v6 {
            let p = to4_params();
            (frame_to_ipv4(&mut fast, &p), frame_to_ipv4_any(&mut any, &p))
        } else {
            let p = to6_params();
            (frame_to_ipv6(&mut fast, &p), frame_to_ipv6_any(&mut any, &p))
        };
        prop_assert_eq!(r_fast, r_any);
        prop_assert_eq!(fast.start, any.start);
        prop_assert_eq!(fast.as_ref(), any.as_ref());
    }
}

//! IPv6 frames of the generator (issue 17), beside [`super::frame`]'s IPv4
//! ones and built the same way: a [`Template6`] is a complete
//! Ethernet/IPv6/TCP-or-UDP frame written by the independent `etherparse`
//! crate with the per-packet fields zeroed, and the sum of its pseudo
//! header + segment without them, so [`Template6::write`] fills a packet
//! with exact checksums by adding only the words it writes (IPv6 has no
//! header checksum).
//!
//! Addressing: flow `f`'s client is the IPv6 address [`CLIENT6_NET`]
//! with the IPv4 client address of [`super::flows::client`] in its low 32
//! bits (`2001:db8:c000::c613:0` for 198.19.0.0), the same port: the two
//! families share the flow numbering, and only the low 32 bits vary per
//! packet. The rest of the plan is the IPv4 one's twin in 2001:db8::/32
//! (see [`VIP6`], [`ROUTER6`], [`RS6_FIRST`], [`LIP6_FIRST`]).
//!
//! The servers' side: [`reflect6`] answers a packet in place as
//! [`super::frame::reflect`] does for IPv4; [`na_reply_in_place`] answers a
//! neighbour solicitation (gatewayd resolves its IPv6 next hops with them).

use std::net::Ipv6Addr;

use etherparse::PacketBuilder;
use gw_core::wire::checksum;
use gw_core::wire::ethernet::{self, EtherType, MacAddr};
use gw_core::wire::icmpv6::{self, Message, NdRepr};
use gw_core::wire::ipv6::{self, NextHeader};
use gw_core::wire::tcp::{self, flags};
use gw_core::wire::udp;

use super::frame::{Kind, L4Kind, Template, MAX_FRAME, MIN_FRAME, STAMP_LEN, STAMP_MAGIC};

/// The clients' /96: flow `f`'s client is this with the IPv4 client
/// address of [`super::flows::client`] in the low 32 bits.
pub const CLIENT6_NET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc000, 0, 0, 0, 0, 0);
/// gatewayd's outside IPv6 address.
pub const GW6_OUTSIDE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// gatewayd's inside IPv6 address.
pub const GW6_INSIDE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// The router the IPv6 clients sit behind.
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x254);
/// The IPv6 virtual service.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
/// First IPv6 real server (as many as the IPv4 plan's).
pub const RS6_FIRST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
/// First IPv6 FULLNAT local address (as many as the IPv4 plan's).
pub const LIP6_FIRST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);

/// Ethernet + IPv6 (no extension headers).
const L3: usize = ethernet::HEADER_LEN;
const L4: usize = L3 + ipv6::HEADER_LEN;

/// The client of IPv4-numbered flow address `src` (see the module docs).
#[inline]
pub fn client6(src: u32) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(CLIENT6_NET) | u128::from(src))
}

/// The `i`-th address of a range starting at `first`.
pub fn nth6(first: Ipv6Addr, i: u32) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(first) + u128::from(i))
}

/// An IPv6 frame with the per-packet fields left out; see the module docs.
#[derive(Clone, Debug)]
pub struct Template6 {
    bytes: Vec<u8>,
    kind: L4Kind,
    /// Sum of the pseudo header and segment without the client address's
    /// low 32 bits, source port, checksum and stamp TSC.
    l4_sum: u32,
    /// Offset of the stamp (the L4 payload).
    stamp_at: usize,
}

impl Template6 {
    /// A `frame_len`-byte frame from `src_mac` to `dst_mac`, from the
    /// clients' /96 to `dst`:`dport`, hop limit 64; `frame_len` clamped as
    /// [`super::frame::Template::new`] clamps it.
    pub fn new(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        dst: Ipv6Addr,
        dport: u16,
        kind: L4Kind,
        frame_len: usize,
    ) -> Template6 {
        let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0).ipv6(CLIENT6_NET.octets(), dst.octets(), 64);
        let hdr = match kind {
            L4Kind::Udp => udp::HEADER_LEN,
            L4Kind::Tcp(_) => tcp::MIN_HEADER_LEN,
        };
        let frame_len = frame_len.clamp((L4 + hdr + STAMP_LEN).max(MIN_FRAME), MAX_FRAME);
        let mut payload = vec![0x5a; frame_len - L4 - hdr];
        payload[8..STAMP_LEN].copy_from_slice(&STAMP_MAGIC);
        payload[..8].fill(0);
        let mut bytes = Vec::with_capacity(frame_len);
        let written = match kind {
            L4Kind::Udp => b.udp(0, dport).write(&mut bytes, &payload),
            L4Kind::Tcp(f) => {
                let t = b.tcp(0, dport, 1, 64_000);
                let t = if f & flags::SYN != 0 { t.syn() } else { t };
                let t = if f & flags::ACK != 0 { t.ack(1) } else { t };
                let t = if f & flags::PSH != 0 { t.psh() } else { t };
                t.write(&mut bytes, &payload)
            }
        };
        written.expect("etherparse writes into a Vec");
        assert_eq!(bytes.len(), frame_len);
        let csum_at = L4 + csum_offset(kind);
        bytes[csum_at..csum_at + 2].fill(0);
        let seg_len = (frame_len - L4) as u32;
        let nh = if kind == L4Kind::Udp { 17 } else { 6 };
        let l4_sum = checksum::pseudo_header_v6(CLIENT6_NET, dst, nh, seg_len) + checksum::sum(&bytes[L4..]);
        Template6 { bytes, kind, l4_sum, stamp_at: L4 + hdr }
    }

    /// Frame length.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a template holds at least the headers.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The transport and flags.
    pub fn kind(&self) -> L4Kind {
        self.kind
    }

    /// Writes the frame for client [`client6`]`(src)`:`sport` stamped with
    /// `tsc` into `buf`, which must be exactly [`Template6::len`] bytes.
    #[inline]
    pub fn write(&self, buf: &mut [u8], src: u32, sport: u16, tsc: u64) {
        buf.copy_from_slice(&self.bytes);
        // The low 32 bits of the source address (bytes 12..16 of it).
        buf[L3 + 20..L3 + 24].copy_from_slice(&src.to_be_bytes());
        buf[L4..L4 + 2].copy_from_slice(&sport.to_be_bytes());
        buf[self.stamp_at..self.stamp_at + 8].copy_from_slice(&tsc.to_be_bytes());
        let src_words = (src >> 16) + (src & 0xffff);
        let tsc_words = (tsc >> 48) + ((tsc >> 32) & 0xffff) + ((tsc >> 16) & 0xffff) + (tsc & 0xffff);
        // Each term is below 2^18, so the u32 cannot overflow.
        let sum = self.l4_sum + src_words + u32::from(sport) + tsc_words as u32;
        let mut l4 = !checksum::fold(sum);
        if l4 == 0 && self.kind == L4Kind::Udp {
            l4 = 0xffff; // RFC 8200 §8.1: a zero UDP checksum is sent as 0xffff.
        }
        let at = L4 + csum_offset(self.kind);
        buf[at..at + 2].copy_from_slice(&l4.to_be_bytes());
    }
}

/// A template of either family: what gw-pktgen sends (`--ipv6` picks
/// [`Template6`]). One `match` per packet, always the same arm in a run.
#[derive(Clone, Debug)]
pub enum AnyTemplate {
    V4(Template),
    V6(Template6),
}

impl AnyTemplate {
    /// Frame length.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            AnyTemplate::V4(t) => t.len(),
            AnyTemplate::V6(t) => t.len(),
        }
    }

    /// Never true: a template holds at least the headers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The transport and flags.
    pub fn kind(&self) -> L4Kind {
        match self {
            AnyTemplate::V4(t) => t.kind(),
            AnyTemplate::V6(t) => t.kind(),
        }
    }

    /// [`Template::write`] or [`Template6::write`].
    #[inline]
    pub fn write(&self, buf: &mut [u8], src: u32, sport: u16, tsc: u64) {
        match self {
            AnyTemplate::V4(t) => t.write(buf, src, sport, tsc),
            AnyTemplate::V6(t) => t.write(buf, src, sport, tsc),
        }
    }
}

/// Whether an IPv6 neighbour solicitation for `target` is the clients'
/// side's to answer: the router or a client.
pub fn is_client_side6(target: Ipv6Addr) -> bool {
    target == ROUTER6 || u128::from(target) >> 32 == u128::from(CLIENT6_NET) >> 32
}

fn csum_offset(kind: L4Kind) -> usize {
    match kind {
        L4Kind::Udp => udp::field::CHECKSUM.start,
        L4Kind::Tcp(_) => tcp::field::CHECKSUM.start,
    }
}

/// Classifies an IPv6 packet (the Ethernet payload): TCP/UDP data, also
/// inside IPv6-in-IPv6, a neighbour solicitation, or other.
pub fn classify6(packet: &[u8]) -> Kind {
    classify6_in(packet, false)
}

fn classify6_in(packet: &[u8], tunneled: bool) -> Kind {
    let Ok(ip) = ipv6::Packet::new_checked(packet) else { return Kind::Other };
    let Ok(t) = ip.transport() else { return Kind::Other };
    if t.fragment.is_some() {
        return Kind::Other;
    }
    let upper = ip.upper_layer(&t);
    match t.protocol {
        NextHeader::Ipv6 if !tunneled => classify6_in(upper, true),
        NextHeader::Udp => match udp::Packet::new_checked(upper) {
            Ok(u) => Kind::Data { stamp: read_stamp(u.payload()), tcp_flags: 0, tunneled },
            Err(_) => Kind::Other,
        },
        NextHeader::Tcp => match tcp::Packet::new_checked(upper) {
            Ok(s) => Kind::Data { stamp: read_stamp(s.payload()), tcp_flags: s.flags(), tunneled },
            Err(_) => Kind::Other,
        },
        NextHeader::Icmpv6 if !tunneled => match icmpv6::Packet::new_checked(upper) {
            Ok(m) if m.msg_type() == Message::NeighborSolicit => {
                Kind::NeighSolicit { target: m.target_addr() }
            }
            _ => Kind::Other,
        },
        _ => Kind::Other,
    }
}

fn read_stamp(payload: &[u8]) -> Option<u64> {
    let s = payload.get(..STAMP_LEN)?;
    (s[8..] == STAMP_MAGIC).then(|| u64::from_be_bytes(s[..8].try_into().expect("8 bytes")))
}

/// Turns an IPv6 TCP/UDP frame into the real server's answer, in place:
/// MACs, addresses and ports swapped (checksums unchanged: the sums are
/// commutative), a SYN answered with SYN+ACK. False, the frame left alone,
/// for anything else.
pub fn reflect6(frame: &mut [u8]) -> bool {
    let Ok(mut eth) = ethernet::Frame::new_checked(&mut *frame) else { return false };
    if eth.ethertype() != EtherType::Ipv6 {
        return false;
    }
    let Ok(mut ip) = ipv6::Packet::new_checked(eth.payload_mut()) else { return false };
    let Ok(t) = ip.transport() else { return false };
    if t.fragment.is_some() || !matches!(t.protocol, NextHeader::Tcp | NextHeader::Udp) {
        return false;
    }
    let (sa, da) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(da);
    ip.set_dst_addr(sa);
    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let Some(seg) = ip.into_inner().get_mut(t.offset..end) else { return false };
    match t.protocol {
        NextHeader::Udp => {
            let Ok(mut u) = udp::Packet::new_checked(seg) else { return false };
            let (sp, dp) = (u.src_port(), u.dst_port());
            u.set_src_port(dp);
            u.set_dst_port(sp);
        }
        _ => {
            let Ok(mut s) = tcp::Packet::new_checked(seg) else { return false };
            let (sp, dp) = (s.src_port(), s.dst_port());
            s.set_src_port(dp);
            s.set_dst_port(sp);
            let f = s.flags();
            if f & flags::SYN != 0 && f & flags::ACK == 0 {
                let off = s.as_ref()[tcp::field::DATA_OFF];
                let old = u16::from_be_bytes([off, f]);
                s.set_flags(f | flags::ACK);
                let csum = checksum::update16(s.checksum(), old, u16::from_be_bytes([off, f | flags::ACK]));
                s.set_checksum(csum);
            }
        }
    }
    let (src, dst) = (eth.src_addr(), eth.dst_addr());
    eth.set_src_addr(dst);
    eth.set_dst_addr(src);
    true
}

/// Destination of an IPv6 TCP/UDP frame as the flow numbering knows it:
/// the low 32 bits of the address (see [`client6`]) and the port.
pub fn dst_endpoint6(packet: &[u8]) -> Option<(u32, u16)> {
    let ip = ipv6::Packet::new_checked(packet).ok()?;
    let t = ip.transport().ok()?;
    let upper = ip.upper_layer(&t);
    let port = match t.protocol {
        NextHeader::Tcp => tcp::Packet::new_checked(upper).ok()?.dst_port(),
        NextHeader::Udp => udp::Packet::new_checked(upper).ok()?.dst_port(),
        _ => return None,
    };
    Some((u128::from(ip.dst_addr()) as u32, port))
}

/// Rewrites a neighbour solicitation in place into the solicited
/// advertisement "`target` is at `our_mac`" (RFC 4861 §7.2.4: to the
/// soliciting address, hop limit 255, S and O set, target link-layer
/// option). False, the frame left alone, for anything else or a
/// solicitation from `::` (duplicate address detection).
pub fn na_reply_in_place(frame: &mut [u8], our_mac: MacAddr) -> bool {
    let Ok(mut eth) = ethernet::Frame::new_checked(&mut *frame) else { return false };
    if eth.ethertype() != EtherType::Ipv6 {
        return false;
    }
    let peer_mac = eth.src_addr();
    let Ok(mut ip) = ipv6::Packet::new_checked(eth.payload_mut()) else { return false };
    let src = ip.src_addr();
    if ip.next_header() != NextHeader::Icmpv6 || src.is_unspecified() {
        return false;
    }
    let Ok(m) = icmpv6::Packet::new_checked(ip.payload()) else { return false };
    let Ok(NdRepr::Solicit { target, .. }) = NdRepr::parse(&m) else { return false };
    let na =
        NdRepr::Advert { flags: icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE, target, lladdr: Some(our_mac) };
    let len = na.buffer_len();
    if ip.payload().len() < len {
        return false;
    }
    ip.set_src_addr(target);
    ip.set_dst_addr(src);
    ip.set_hop_limit(icmpv6::ND_HOP_LIMIT);
    ip.set_payload_len(len as u16);
    let mut p = icmpv6::Packet::new_unchecked(&mut ip.payload_mut()[..len]);
    if na.emit(&mut p, target, src).is_err() {
        return false;
    }
    eth.set_dst_addr(peer_mac);
    eth.set_src_addr(our_mac);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::frame::{classify, dst_endpoint, reflect};
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

    fn filled(t: &Template6, src: u32, sport: u16, tsc: u64) -> Vec<u8> {
        let mut buf = vec![0; t.len()];
        t.write(&mut buf, src, sport, tsc);
        buf
    }

    /// etherparse's reading of an IPv6 TCP/UDP frame, checksums verified:
    /// (source, destination, hop limit, source port, destination port, TCP flags).
    fn inspect6(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, u16, u16, u8) {
        let s = SlicedPacket::from_ethernet(f).expect("etherparse parses the frame");
        let Some(NetSlice::Ipv6(ip)) = &s.net else { panic!("not IPv6") };
        let h = ip.header();
        let (src, dst) = (h.source(), h.destination());
        assert_eq!(usize::from(h.payload_length()), f.len() - L4);
        let (sp, dp, fl) = match s.transport.expect("a transport") {
            TransportSlice::Udp(u) => {
                let want = u.to_header().calc_checksum_ipv6_raw(src, dst, u.payload()).unwrap();
                assert_eq!(u.checksum(), want, "UDP checksum");
                (u.source_port(), u.destination_port(), 0)
            }
            TransportSlice::Tcp(t) => {
                assert_eq!(t.checksum(), t.calc_checksum_ipv6(src, dst).unwrap(), "TCP checksum");
                let fl = u8::from(t.fin())
                    | u8::from(t.syn()) << 1
                    | u8::from(t.psh()) << 3
                    | u8::from(t.ack()) << 4;
                (t.source_port(), t.destination_port(), fl)
            }
            other => panic!("{other:?}"),
        };
        (Ipv6Addr::from(src), Ipv6Addr::from(dst), h.hop_limit(), sp, dp, fl)
    }

    #[test]
    fn filled_ipv6_frames_have_exact_checksums_at_every_size() {
        let kinds = [L4Kind::Udp, L4Kind::Tcp(flags::SYN), L4Kind::Tcp(flags::ACK | flags::PSH)];
        for kind in kinds {
            for len in [0, 60, 64, 78, 79, 512, 1514, 9000] {
                let t = Template6::new(A, B, VIP6, 80, kind, len);
                assert!(t.len() >= 60 && t.len() <= MAX_FRAME, "{kind:?} {len}");
                for (src, sport, tsc) in [
                    (0xc613_0001, 1024, 0),
                    (0xc613_ffff, 65535, u64::MAX),
                    (0xc613_1234, 4321, 0x0123_4567_89ab_cdef),
                    (0, 1, 1),
                ] {
                    let f = filled(&t, src, sport, tsc);
                    let (s, d, hl, sp, dp, fl) = inspect6(&f);
                    assert_eq!((s, sp), (client6(src), sport));
                    assert_eq!((d, dp, hl), (VIP6, 80, 64));
                    if let L4Kind::Tcp(want) = kind {
                        assert_eq!(fl, want);
                    }
                    match classify(&f) {
                        Kind::Data { stamp, tunneled: false, .. } => assert_eq!(stamp, Some(tsc)),
                        k => panic!("{k:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn ipv6_reflection_swaps_endpoints_and_answers_a_syn_with_syn_ack() {
        let t = Template6::new(A, B, VIP6, 80, L4Kind::Tcp(flags::SYN), 64);
        let mut f = filled(&t, 0xc613_0102, 2000, 77);
        assert!(reflect(&mut f));
        let (s, d, _, sp, dp, fl) = inspect6(&f);
        assert_eq!((s, sp, d, dp), (VIP6, 80, client6(0xc613_0102), 2000));
        assert_eq!(fl, flags::SYN | flags::ACK);
        assert_eq!((&f[0..6], &f[6..12]), (&A.0[..], &B.0[..]));
        assert_eq!(
            classify(&f),
            Kind::Data { stamp: Some(77), tcp_flags: flags::SYN | flags::ACK, tunneled: false }
        );
        assert_eq!(dst_endpoint(&f), Some((0xc613_0102, 2000)));

        let u = Template6::new(A, B, VIP6, 80, L4Kind::Udp, 512);
        let mut f = filled(&u, 0xc613_0102, 2000, 5);
        assert!(reflect(&mut f));
        let (s, d, _, sp, dp, _) = inspect6(&f);
        assert_eq!((s, sp, d, dp), (VIP6, 80, client6(0xc613_0102), 2000));
    }

    #[test]
    fn stamps_are_found_inside_ipv6_in_ipv6_and_tunnelled_packets_are_not_reflected() {
        let t = Template6::new(A, B, VIP6, 80, L4Kind::Udp, 100);
        let inner = filled(&t, 0xc613_0001, 1024, 99);
        let mut outer = Vec::new();
        PacketBuilder::ethernet2(A.0, B.0)
            .ipv6(GW6_INSIDE.octets(), RS6_FIRST.octets(), 64)
            .write(&mut outer, etherparse::IpNumber::IPV6, &inner[L3..])
            .unwrap();
        assert_eq!(classify(&outer), Kind::Data { stamp: Some(99), tcp_flags: 0, tunneled: true });
        assert!(!reflect(&mut outer.clone()));
    }

    #[test]
    fn neighbour_solicitations_are_answered_in_place() {
        // gatewayd's solicitation for a real server: to its solicited-node
        // group, hop limit 255, with the source link-layer option.
        let target = nth6(RS6_FIRST, 3);
        let group = ipv6::solicited_node(target);
        let ns = NdRepr::Solicit { target, lladdr: Some(A) };
        let mut f = vec![0u8; L4 + ns.buffer_len()];
        {
            let mut eth = ethernet::Frame::new_unchecked(&mut f[..]);
            eth.set_dst_addr(ipv6::multicast_mac(group));
            eth.set_src_addr(A);
            eth.set_ethertype(EtherType::Ipv6);
            let mut ip = ipv6::Packet::new_unchecked(eth.payload_mut());
            ip.set_version(6);
            ip.set_payload_len(ns.buffer_len() as u16);
            ip.set_next_header(NextHeader::Icmpv6);
            ip.set_hop_limit(255);
            ip.set_src_addr(GW6_INSIDE);
            ip.set_dst_addr(group);
            let mut m = icmpv6::Packet::new_unchecked(ip.payload_mut());
            ns.emit(&mut m, GW6_INSIDE, group).unwrap();
        }
        assert_eq!(classify(&f), Kind::NeighSolicit { target });
        assert!(na_reply_in_place(&mut f, B));
        // etherparse reads the advertisement and verifies its checksum.
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &s.net else { panic!("not IPv6") };
        let h = ip.header();
        assert_eq!((Ipv6Addr::from(h.source()), Ipv6Addr::from(h.destination())), (target, GW6_INSIDE));
        assert_eq!(h.hop_limit(), 255);
        let Some(TransportSlice::Icmpv6(m)) = s.transport else { panic!("not ICMPv6") };
        assert!(m.is_checksum_valid(h.source(), h.destination()));
        assert_eq!(m.type_u8(), 136, "a neighbour advertisement");
        let body = m.slice();
        assert_eq!(body[4], icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE);
        assert_eq!(&body[8..24], &target.octets());
        assert_eq!(&body[24..32], &[2, 1, 2, 0, 0, 0, 0, 0xb], "target link-layer option: B");
        assert_eq!((&f[0..6], &f[6..12]), (&A.0[..], &B.0[..]));
        assert!(!na_reply_in_place(&mut f, B), "an advertisement is not answered");
        assert_eq!(classify(&f), Kind::Other);
    }
}

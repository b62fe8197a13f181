//! Frames of the generator: templates, the per-packet fill, the real
//! servers' reflection, ARP answers and the latency stamp.
//!
//! Invariants:
//! - A [`Template`] is a complete Ethernet/IPv4/TCP-or-UDP frame built by the
//!   independent `etherparse` crate, with the per-packet fields (client
//!   address, client port, stamp) zeroed. It keeps the ones-complement sums
//!   of its IPv4 header and of its L4 pseudo header + segment *without* those
//!   fields; because the Internet checksum is a linear sum (RFC 1071 §2),
//!   [`Template::write`] gets exact checksums by adding only the words it
//!   fills in: no pass over the payload per packet, whatever its size.
//! - The stamp is the sender's TSC (8 bytes, big-endian) followed by
//!   [`STAMP_MAGIC`], at the start of the L4 payload. Payload offsets are
//!   even, so the stamp words line up with the checksum's 16-bit words.
//! - [`reflect`] turns a packet into the real server's answer in place:
//!   MACs, addresses and ports swapped (a swap leaves every checksum
//!   unchanged: the sums are commutative), a SYN becomes SYN+ACK (checksum
//!   updated incrementally, RFC 1624). The payload, and so the stamp, stays.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use gw_core::wire::arp::{self, Operation};
use gw_core::wire::checksum;
use gw_core::wire::ethernet::{self, EtherType, MacAddr};
use gw_core::wire::ipv4::{self, Protocol};
use gw_core::wire::tcp::{self, flags};
use gw_core::wire::udp;

/// Two bytes after the TSC that mark a generator packet.
pub const STAMP_MAGIC: [u8; 2] = *b"gp";
/// Bytes of the stamp: TSC + magic.
pub const STAMP_LEN: usize = 10;
/// Ethernet + IPv4 (no options).
const L3: usize = ethernet::HEADER_LEN;
const L4: usize = L3 + ipv4::MIN_HEADER_LEN;
/// Smallest frame a template can be: TCP header + stamp.
pub const MIN_TCP_FRAME: usize = L4 + tcp::MIN_HEADER_LEN + STAMP_LEN;
/// Ethernet's minimum frame without FCS (IEEE 802.3 clause 3.2.8).
pub const MIN_FRAME: usize = 60;
/// Largest frame: a 1500-byte IP MTU.
pub const MAX_FRAME: usize = L3 + 1500;
/// Payload filler, so that frames are not all zeros.
const FILL: u8 = 0x5a;

/// Transport of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4Kind {
    Udp,
    /// TCP with these flags (`tcp::flags`).
    Tcp(u8),
}

/// A frame with the per-packet fields left out; see the module docs.
#[derive(Clone, Debug)]
pub struct Template {
    bytes: Vec<u8>,
    kind: L4Kind,
    /// Sum of the IPv4 header without source address and checksum.
    ip_sum: u32,
    /// Sum of the pseudo header and segment without source address,
    /// source port, checksum and stamp TSC.
    l4_sum: u32,
    /// Offset of the stamp (the L4 payload).
    stamp_at: usize,
}

impl Template {
    /// A `frame_len`-byte frame from `src_mac` to `dst_mac`, to `dst`:`dport`,
    /// TTL 64. `frame_len` is clamped to [`MIN_FRAME`] and what the headers
    /// and the stamp need, and to [`MAX_FRAME`]; the payload fills the rest
    /// (no Ethernet padding, so every byte is covered by the checksums).
    pub fn new(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        dst: Ipv4Addr,
        dport: u16,
        kind: L4Kind,
        frame_len: usize,
    ) -> Template {
        Self::with_max(src_mac, dst_mac, dst, dport, kind, frame_len, MAX_FRAME)
    }

    /// As [`Template::new`], clamped to `max_frame` instead of [`MAX_FRAME`].
    fn with_max(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        dst: Ipv4Addr,
        dport: u16,
        kind: L4Kind,
        frame_len: usize,
        max_frame: usize,
    ) -> Template {
        let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0).ipv4([0; 4], dst.octets(), 64);
        let hdr = match kind {
            L4Kind::Udp => udp::HEADER_LEN,
            L4Kind::Tcp(_) => tcp::MIN_HEADER_LEN,
        };
        let frame_len = frame_len.clamp((L4 + hdr + STAMP_LEN).max(MIN_FRAME), max_frame);
        let mut payload = vec![FILL; frame_len - L4 - hdr];
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
        // Zero both checksums; the sums below then leave them out.
        bytes[L3 + 10..L3 + 12].fill(0);
        let csum_at = L4 + csum_offset(kind);
        bytes[csum_at..csum_at + 2].fill(0);
        let ip_sum = checksum::sum(&bytes[L3..L4]);
        let seg_len = (frame_len - L4) as u16;
        let proto = if kind == L4Kind::Udp { 17 } else { 6 };
        let l4_sum =
            checksum::pseudo_header(Ipv4Addr::UNSPECIFIED, dst, proto, seg_len) + checksum::sum(&bytes[L4..]);
        Template { bytes, kind, ip_sum, l4_sum, stamp_at: L4 + hdr }
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

    /// Writes the frame for client `src`:`sport` stamped with `tsc` into
    /// `buf`, which must be exactly [`Template::len`] bytes.
    #[inline]
    pub fn write(&self, buf: &mut [u8], src: u32, sport: u16, tsc: u64) {
        buf.copy_from_slice(&self.bytes);
        let src_words = (src >> 16) + (src & 0xffff);
        buf[L3 + 12..L3 + 16].copy_from_slice(&src.to_be_bytes());
        let ip = !checksum::fold(self.ip_sum + src_words);
        buf[L3 + 10..L3 + 12].copy_from_slice(&ip.to_be_bytes());
        buf[L4..L4 + 2].copy_from_slice(&sport.to_be_bytes());
        buf[self.stamp_at..self.stamp_at + 8].copy_from_slice(&tsc.to_be_bytes());
        let tsc_words = (tsc >> 48) + ((tsc >> 32) & 0xffff) + ((tsc >> 16) & 0xffff) + (tsc & 0xffff);
        // Each term is below 2^18, so the u32 cannot overflow.
        let sum = self.l4_sum + src_words + u32::from(sport) + tsc_words as u32;
        let mut l4 = !checksum::fold(sum);
        if l4 == 0 && self.kind == L4Kind::Udp {
            l4 = 0xffff; // RFC 768: 0 means "no checksum".
        }
        let at = L4 + csum_offset(self.kind);
        buf[at..at + 2].copy_from_slice(&l4.to_be_bytes());
    }
}

/// A UDP datagram larger than the MTU, sent as IPv4 fragments with DF
/// clear (RFC 791): the whole datagram is filled as a [`Template`] (so its
/// UDP checksum is exact), then cut into fragments of at most `mtu` bytes of
/// IP, each with its own header (same identification, offset, MF on all but
/// the last). Only the first fragment carries the UDP header and the stamp.
#[derive(Clone, Debug)]
pub struct FragTemplate {
    whole: Template,
    /// Offset in the IP payload and length of each fragment's data.
    pieces: Vec<(usize, usize)>,
}

impl FragTemplate {
    /// A datagram of `udp_len` bytes (UDP header + payload) from `src_mac`
    /// to `dst_mac`, to `dst`:`dport`, in fragments of at most `mtu` bytes
    /// of IP (at least 28).
    pub fn new(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        dst: Ipv4Addr,
        dport: u16,
        udp_len: usize,
        mtu: usize,
    ) -> Self {
        let udp_len = udp_len.clamp(udp::HEADER_LEN + STAMP_LEN, 65_535 - ipv4::MIN_HEADER_LEN);
        let whole = Template::with_max(src_mac, dst_mac, dst, dport, L4Kind::Udp, L4 + udp_len, L4 + udp_len);
        let step = (mtu.max(28) - ipv4::MIN_HEADER_LEN) / 8 * 8;
        let pieces = (0..udp_len).step_by(step).map(|o| (o, step.min(udp_len - o))).collect();
        FragTemplate { whole, pieces }
    }

    /// Frame length of the whole (unfragmented) datagram: the size of the
    /// buffer [`FragTemplate::write_datagram`] fills.
    pub fn datagram_frame_len(&self) -> usize {
        self.whole.len()
    }

    /// Fragments per datagram.
    pub fn fragments(&self) -> usize {
        self.pieces.len()
    }

    /// Frame length of fragment `i`.
    pub fn fragment_len(&self, i: usize) -> usize {
        L4 + self.pieces[i].1
    }

    /// Fills the whole datagram for client `src`:`sport` stamped `tsc` into
    /// `datagram` ([`FragTemplate::datagram_frame_len`] bytes).
    #[inline]
    pub fn write_datagram(&self, datagram: &mut [u8], src: u32, sport: u16, tsc: u64) {
        self.whole.write(datagram, src, sport, tsc);
    }

    /// Writes fragment `i` of `datagram` (filled by
    /// [`FragTemplate::write_datagram`]) with IP identification `id` into
    /// `buf` ([`FragTemplate::fragment_len`] bytes).
    #[inline]
    pub fn write_fragment(&self, datagram: &[u8], i: usize, id: u16, buf: &mut [u8]) {
        let (off, len) = self.pieces[i];
        buf[..L4].copy_from_slice(&datagram[..L4]);
        buf[L4..].copy_from_slice(&datagram[L4 + off..L4 + off + len]);
        let mut ip = ipv4::Packet::new_unchecked(&mut buf[L3..]);
        ip.set_total_len((ipv4::MIN_HEADER_LEN + len) as u16);
        ip.set_ident(id);
        ip.clear_flags();
        ip.set_frag_offset(off as u16);
        ip.set_more_frags(i + 1 < self.pieces.len());
        ip.fill_checksum();
    }
}

fn csum_offset(kind: L4Kind) -> usize {
    match kind {
        L4Kind::Udp => udp::field::CHECKSUM.start,
        L4Kind::Tcp(_) => tcp::field::CHECKSUM.start,
    }
}

/// What a received frame is, for the generator's dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An ARP request for `target` from `sender`.
    ArpRequest { sender: Ipv4Addr, target: Ipv4Addr, sender_mac: MacAddr },
    /// An ARP reply: `sender` is at `sender_mac`.
    ArpReply { sender: Ipv4Addr, sender_mac: MacAddr },
    /// IPv4 TCP or UDP (possibly inside IP-in-IP): `stamp` if it carries one,
    /// `tcp_flags` (0 for UDP).
    Data { stamp: Option<u64>, tcp_flags: u8, tunneled: bool },
    /// An IPv4 fragment of a TCP or UDP datagram (possibly inside IP-in-IP):
    /// `stamp` if it is the first fragment and carries one, `last` if it is
    /// the last (MF clear).
    Fragment { stamp: Option<u64>, last: bool },
    /// An IPv6 neighbour solicitation for `target` (see
    /// [`super::frame6::na_reply_in_place`]).
    NeighSolicit { target: std::net::Ipv6Addr },
    /// Anything else.
    Other,
}

/// Classifies a received frame.
pub fn classify(frame: &[u8]) -> Kind {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else { return Kind::Other };
    match eth.ethertype() {
        EtherType::Arp => {
            let Ok(a) = arp::Packet::new_checked(eth.payload()) else { return Kind::Other };
            match a.operation() {
                Operation::Request => Kind::ArpRequest {
                    sender: a.source_protocol_addr(),
                    target: a.target_protocol_addr(),
                    sender_mac: a.source_hardware_addr(),
                },
                Operation::Reply => {
                    Kind::ArpReply { sender: a.source_protocol_addr(), sender_mac: a.source_hardware_addr() }
                }
                Operation::Unknown(_) => Kind::Other,
            }
        }
        EtherType::Ipv4 => classify_ip(eth.payload(), false),
        EtherType::Ipv6 => super::frame6::classify6(eth.payload()),
        _ => Kind::Other,
    }
}

fn classify_ip(packet: &[u8], tunneled: bool) -> Kind {
    let Ok(ip) = ipv4::Packet::new_checked(packet) else { return Kind::Other };
    if ip.is_fragment() && matches!(ip.protocol(), Protocol::Udp | Protocol::Tcp) {
        // The first fragment starts with the L4 header: UDP's is 8 bytes
        // (the benchmark fragments only UDP).
        let first = ip.frag_offset() == 0 && ip.protocol() == Protocol::Udp;
        let stamp = if first { ip.payload().get(udp::HEADER_LEN..).and_then(read_stamp) } else { None };
        return Kind::Fragment { stamp, last: !ip.more_frags() };
    }
    match ip.protocol() {
        Protocol::IpIp if !tunneled => classify_ip(ip.payload(), true),
        Protocol::Udp => match udp::Packet::new_checked(ip.payload()) {
            Ok(u) => Kind::Data { stamp: read_stamp(u.payload()), tcp_flags: 0, tunneled },
            Err(_) => Kind::Other,
        },
        Protocol::Tcp => match tcp::Packet::new_checked(ip.payload()) {
            Ok(t) => Kind::Data { stamp: read_stamp(t.payload()), tcp_flags: t.flags(), tunneled },
            Err(_) => Kind::Other,
        },
        _ => Kind::Other,
    }
}

fn read_stamp(payload: &[u8]) -> Option<u64> {
    let s = payload.get(..STAMP_LEN)?;
    (s[8..] == STAMP_MAGIC).then(|| u64::from_be_bytes(s[..8].try_into().expect("8 bytes")))
}

/// Turns a TCP/UDP packet into the real server's answer, in place (see the
/// module docs). Returns false, leaving the frame alone, for anything else.
pub fn reflect(frame: &mut [u8]) -> bool {
    let Ok(mut eth) = ethernet::Frame::new_checked(&mut *frame) else { return false };
    if eth.ethertype() != EtherType::Ipv4 {
        return super::frame6::reflect6(frame);
    }
    let (src, dst) = (eth.src_addr(), eth.dst_addr());
    eth.set_src_addr(dst);
    eth.set_dst_addr(src);
    let Ok(mut ip) = ipv4::Packet::new_checked(eth.payload_mut()) else { return false };
    let (sa, da) = (ip.src_addr(), ip.dst_addr());
    let proto = ip.protocol();
    if !matches!(proto, Protocol::Tcp | Protocol::Udp) {
        return false;
    }
    ip.set_src_addr(da);
    ip.set_dst_addr(sa);
    if ip.is_fragment() && ip.frag_offset() != 0 {
        // No L4 header in this fragment: the addresses were all there is.
        return true;
    }
    let fragment = ip.is_fragment();
    let seg = ip.payload_mut();
    match proto {
        Protocol::Udp => {
            // A first fragment holds the UDP header but not the whole
            // datagram its length field counts.
            let mut u = if fragment && seg.len() >= udp::HEADER_LEN {
                udp::Packet::new_unchecked(seg)
            } else {
                let Ok(u) = udp::Packet::new_checked(seg) else { return false };
                u
            };
            let (sp, dp) = (u.src_port(), u.dst_port());
            u.set_src_port(dp);
            u.set_dst_port(sp);
        }
        _ => {
            let Ok(mut t) = tcp::Packet::new_checked(seg) else { return false };
            let (sp, dp) = (t.src_port(), t.dst_port());
            t.set_src_port(dp);
            t.set_dst_port(sp);
            let f = t.flags();
            if f & flags::SYN != 0 && f & flags::ACK == 0 {
                set_tcp_flags(&mut t, f | flags::ACK);
            }
        }
    }
    true
}

/// Destination address and port of a TCP/UDP frame: for an answer that
/// reached the clients, the client it is for (the generator then sends the
/// handshake's ACK from a template).
pub fn dst_endpoint(frame: &[u8]) -> Option<(u32, u16)> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() == EtherType::Ipv6 {
        return super::frame6::dst_endpoint6(eth.payload());
    }
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    let port = match ip.protocol() {
        Protocol::Tcp => tcp::Packet::new_checked(ip.payload()).ok()?.dst_port(),
        Protocol::Udp => udp::Packet::new_checked(ip.payload()).ok()?.dst_port(),
        _ => return None,
    };
    Some((u32::from(ip.dst_addr()), port))
}

/// Sets the TCP flags and updates the checksum for the changed word
/// (data offset + flags, RFC 1624).
fn set_tcp_flags<T: AsRef<[u8]> + AsMut<[u8]>>(t: &mut tcp::Packet<T>, new: u8) {
    let off = t.as_ref()[tcp::field::DATA_OFF];
    let old = u16::from_be_bytes([off, t.flags()]);
    t.set_flags(new);
    let csum = checksum::update16(t.checksum(), old, u16::from_be_bytes([off, new]));
    t.set_checksum(csum);
}

/// Rewrites an ARP request in place into the reply "`target` is at
/// `our_mac`", addressed to the requester.
pub fn arp_reply_in_place(frame: &mut [u8], our_mac: MacAddr) -> bool {
    let Ok(mut eth) = ethernet::Frame::new_checked(&mut *frame) else { return false };
    let Ok(p) = arp::Packet::new_checked(eth.payload_mut()) else { return false };
    let Ok(req) = arp::Repr::parse(&p) else { return false };
    if req.operation != Operation::Request {
        return false;
    }
    let reply = req.reply(our_mac);
    let mut p = arp::Packet::new_unchecked(eth.payload_mut());
    if reply.emit(&mut p).is_err() {
        return false;
    }
    eth.set_dst_addr(req.source_hardware_addr);
    eth.set_src_addr(our_mac);
    true
}

/// Writes an ARP request "who has `target`? tell `ip`" into `buf` (at least
/// 60 bytes; the rest is zero padding). Returns the frame length.
pub fn arp_request(buf: &mut [u8], mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) -> usize {
    const LEN: usize = 60;
    buf[..LEN].fill(0);
    let mut eth = ethernet::Frame::new_unchecked(&mut buf[..LEN]);
    eth.set_dst_addr(MacAddr::BROADCAST);
    eth.set_src_addr(mac);
    eth.set_ethertype(EtherType::Arp);
    let mut p = arp::Packet::new_unchecked(eth.payload_mut());
    arp::Repr::request(mac, ip, target).emit(&mut p).expect("46 bytes hold an ARP packet");
    LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

    fn filled(t: &Template, src: u32, sport: u16, tsc: u64) -> Vec<u8> {
        let mut buf = vec![0; t.len()];
        t.write(&mut buf, src, sport, tsc);
        buf
    }

    #[test]
    fn filled_frames_have_exact_checksums_at_every_size() {
        let kinds = [L4Kind::Udp, L4Kind::Tcp(flags::SYN), L4Kind::Tcp(flags::ACK | flags::PSH)];
        for kind in kinds {
            for len in [0, 60, 64, 65, 512, 1514, 9000] {
                let t = Template::new(A, B, VIP, 80, kind, len);
                assert!(t.len() >= 60 && t.len() <= MAX_FRAME, "{kind:?} {len}");
                for (src, sport, tsc) in [
                    (0xc613_0001, 1024, 0),
                    (0xc613_ffff, 65535, u64::MAX),
                    (0xc613_1234, 4321, 0x0123_4567_89ab_cdef),
                    (0, 1, 1),
                ] {
                    let f = filled(&t, src, sport, tsc);
                    let (_, _, (s, sp), (d, dp), ttl) = inspect(&f);
                    assert_eq!((u32::from_be_bytes(s), sp), (src, sport));
                    assert_eq!((d, dp, ttl), (VIP.octets(), 80, 64));
                    match classify(&f) {
                        Kind::Data { stamp, tunneled: false, .. } => assert_eq!(stamp, Some(tsc)),
                        k => panic!("{k:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn a_udp_checksum_of_zero_is_sent_as_ffff() {
        // Search a tsc that makes the sum 0xffff (checksum 0): the fill must
        // then send 0xffff, which still verifies.
        let t = Template::new(A, B, VIP, 80, L4Kind::Udp, 64);
        let f = filled(&t, 0xc613_0000, 1024, 0);
        let c = u16::from_be_bytes([f[40], f[41]]);
        // Raising the last stamp word by c turns the checksum into 0.
        let f2 = filled(&t, 0xc613_0000, 1024, u64::from(c));
        assert_eq!(&f2[40..42], &[0xff, 0xff]);
        inspect(&f2);
    }

    #[test]
    fn reflection_swaps_endpoints_and_answers_a_syn_with_syn_ack() {
        let t = Template::new(A, B, VIP, 80, L4Kind::Tcp(flags::SYN), 64);
        let mut f = filled(&t, 0xc613_0102, 2000, 77);
        assert!(reflect(&mut f));
        let (_, _, (s, sp), (d, dp), _) = inspect(&f);
        assert_eq!((s, sp, u32::from_be_bytes(d), dp), (VIP.octets(), 80, 0xc613_0102, 2000));
        assert_eq!(&f[0..6], &A.0);
        assert_eq!(&f[6..12], &B.0);
        assert_eq!(
            classify(&f),
            Kind::Data { stamp: Some(77), tcp_flags: flags::SYN | flags::ACK, tunneled: false }
        );
        // The client the SYN+ACK is for, who then sends the ACK.
        assert_eq!(dst_endpoint(&f), Some((0xc613_0102, 2000)));
        let ack = Template::new(A, B, VIP, 80, L4Kind::Tcp(flags::ACK), 64);
        let a = filled(&ack, 0xc613_0102, 2000, 78);
        inspect(&a);
        assert_eq!(classify(&a), Kind::Data { stamp: Some(78), tcp_flags: flags::ACK, tunneled: false });
        assert_eq!(dst_endpoint(&[0u8; 20]), None);

        let u = Template::new(A, B, VIP, 80, L4Kind::Udp, 512);
        let mut f = filled(&u, 0xc613_0102, 2000, 5);
        assert!(reflect(&mut f));
        let (_, _, (s, sp), (d, dp), _) = inspect(&f);
        assert_eq!((s, sp, u32::from_be_bytes(d), dp), (VIP.octets(), 80, 0xc613_0102, 2000));
    }

    #[test]
    fn arp_requests_are_answered_in_place_and_others_are_left_alone() {
        let mut buf = [0u8; 64];
        let n = arp_request(&mut buf, A, Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 254));
        let mut f = buf[..n].to_vec();
        assert_eq!(
            classify(&f),
            Kind::ArpRequest {
                sender: Ipv4Addr::new(198, 18, 0, 1),
                target: Ipv4Addr::new(198, 18, 0, 254),
                sender_mac: A
            }
        );
        assert!(arp_reply_in_place(&mut f, B));
        assert_eq!(classify(&f), Kind::ArpReply { sender: Ipv4Addr::new(198, 18, 0, 254), sender_mac: B });
        assert_eq!(&f[0..6], &A.0);
        assert!(!arp_reply_in_place(&mut f, B), "a reply is not answered");
        let mut short = vec![0u8; 10];
        assert!(!reflect(&mut short));
        assert_eq!(classify(&short), Kind::Other);
    }

    #[test]
    fn fragments_reassemble_to_the_datagram_and_are_reflected() {
        let t = FragTemplate::new(A, B, VIP, 80, 3000, 1500);
        assert_eq!(t.fragments(), 3);
        let lens: Vec<usize> = (0..3).map(|i| t.fragment_len(i)).collect();
        assert_eq!(lens, [1514, 1514, 74]);
        let mut whole = vec![0; t.datagram_frame_len()];
        t.write_datagram(&mut whole, 0xc613_0102, 2000, 42);
        let mut frags: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                let mut f = vec![0; t.fragment_len(i)];
                t.write_fragment(&whole, i, 0x1234, &mut f);
                f
            })
            .collect();
        let kinds: Vec<Kind> = frags.iter().map(|f| classify(f)).collect();
        assert_eq!(
            kinds,
            [
                Kind::Fragment { stamp: Some(42), last: false },
                Kind::Fragment { stamp: None, last: false },
                Kind::Fragment { stamp: None, last: true }
            ]
        );
        // etherparse, an independent implementation, reassembles them (in
        // any order) into a datagram whose checksums verify.
        let reassemble = |frags: &[Vec<u8>]| {
            let mut pool = etherparse::defrag::IpDefragPool::<(), ()>::new();
            let mut out = None;
            for f in frags.iter().rev() {
                let s = etherparse::SlicedPacket::from_ethernet(f).unwrap();
                let Some(etherparse::NetSlice::Ipv4(ip)) = &s.net else { panic!("not IPv4") };
                assert!(ip.header().is_fragmenting_payload() && !ip.header().dont_fragment());
                let h = ip.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum());
                out = pool.process_sliced_packet(&s, (), ()).unwrap().or(out);
            }
            out.expect("reassembled")
        };
        let d = reassemble(&frags);
        assert_eq!(d.payload, whole[L4..]);
        let udp = etherparse::UdpHeader::from_slice(&d.payload).unwrap().0;
        let src = [198, 19, 1, 2];
        assert_eq!((udp.source_port, udp.destination_port, udp.length), (2000, 80, 3000));
        assert_eq!(udp.checksum, udp.calc_checksum_ipv4_raw(src, VIP.octets(), &d.payload[8..]).unwrap());
        // The servers' answer: every fragment reflected on its own.
        for f in &mut frags {
            assert!(reflect(f));
        }
        let d = reassemble(&frags);
        let udp = etherparse::UdpHeader::from_slice(&d.payload).unwrap().0;
        assert_eq!((udp.source_port, udp.destination_port), (80, 2000));
        assert_eq!(udp.checksum, udp.calc_checksum_ipv4_raw(VIP.octets(), src, &d.payload[8..]).unwrap());
        assert_eq!(&d.payload[8..], &whole[L4 + 8..], "the payload (and stamp) stay");
    }

    #[test]
    fn stamps_are_found_inside_ip_in_ip() {
        let t = Template::new(A, B, VIP, 80, L4Kind::Udp, 64);
        let inner = filled(&t, 0xc613_0001, 1024, 99);
        // Outer: Ethernet + IPv4 (protocol 4) + the inner IPv4 packet.
        let mut outer = Vec::new();
        PacketBuilder::ethernet2(A.0, B.0)
            .ipv4([198, 18, 1, 1], [198, 18, 1, 2], 64)
            .write(&mut outer, etherparse::IpNumber::IPV4, &inner[14..])
            .unwrap();
        assert_eq!(classify(&outer), Kind::Data { stamp: Some(99), tcp_flags: 0, tunneled: true });
        let mut o = outer.clone();
        assert!(!reflect(&mut o), "tunnelled packets are not reflected");
    }
}

//! Address and port rewrites with incremental checksums (RFC 1624).
//!
//! These functions take a buffer that starts at the IPv4 header and has
//! passed the engine's length checks (IPv4 `check_len`, and the L4 header's).

use std::net::Ipv4Addr;

use crate::wire::checksum::{update16, update_addr};
use crate::wire::{ipv4, tcp, udp};

/// IP protocol numbers (RFC 790).
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// A TCP or UDP checksum after its packet moved from `old` to `new`
/// ((source, destination) addresses and ports; the pseudo header counts the
/// addresses). For UDP (`udp`): a 0 checksum means "none" and stays 0, and
/// a computed 0 is sent as 0xffff (RFC 768).
#[inline]
fn l4_checksum(
    c: u16,
    udp: bool,
    old: ((Ipv4Addr, u16), (Ipv4Addr, u16)),
    new: ((Ipv4Addr, u16), (Ipv4Addr, u16)),
) -> u16 {
    if udp && c == 0 {
        return 0;
    }
    let mut c = update_addr(c, old.0 .0, new.0 .0);
    c = update_addr(c, old.1 .0, new.1 .0);
    c = update16(c, old.0 .1, new.0 .1);
    c = update16(c, old.1 .1, new.1 .1);
    if udp && c == 0 {
        0xffff
    } else {
        c
    }
}

/// Rewrites source and destination address and port of a TCP or UDP packet
/// and decrements the TTL (the gateway routes it). `ip` starts at the IPv4
/// header; TTL must be above 1 (checked by the caller).
#[inline]
pub fn rewrite(ip: &mut [u8], proto: u8, src: (u32, u16), dst: (u32, u16)) {
    let (new_src, new_dst) = (Ipv4Addr::from(src.0), Ipv4Addr::from(dst.0));
    let mut pkt = ipv4::Packet::new_unchecked(&mut *ip);
    let hl = pkt.header_len();
    let (old_src, old_dst) = (pkt.src_addr(), pkt.dst_addr());
    let ttl = pkt.ttl();
    // TTL shares a 16-bit word with the protocol field.
    let mut c = pkt.checksum();
    c = update_addr(c, old_src, new_src);
    c = update_addr(c, old_dst, new_dst);
    c = update16(c, u16::from_be_bytes([ttl, proto]), u16::from_be_bytes([ttl - 1, proto]));
    pkt.set_src_addr(new_src);
    pkt.set_dst_addr(new_dst);
    pkt.set_ttl(ttl - 1);
    pkt.set_checksum(c);
    let l4 = &mut ip[hl..];
    let new = ((new_src, src.1), (new_dst, dst.1));
    match proto {
        PROTO_TCP => {
            let mut t = tcp::Packet::new_unchecked(l4);
            let old = ((old_src, t.src_port()), (old_dst, t.dst_port()));
            let c = l4_checksum(t.checksum(), false, old, new);
            t.set_src_port(src.1);
            t.set_dst_port(dst.1);
            t.set_checksum(c);
        }
        PROTO_UDP => {
            let mut u = udp::Packet::new_unchecked(l4);
            let old = ((old_src, u.src_port()), (old_dst, u.dst_port()));
            let c = l4_checksum(u.checksum(), true, old, new);
            u.set_checksum(c);
            u.set_src_port(src.1);
            u.set_dst_port(dst.1);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    fn build(proto: u8, payload: &[u8], ttl: u8) -> Vec<u8> {
        let b = PacketBuilder::ipv4([198, 18, 0, 2], [198, 18, 0, 100], ttl);
        let mut out = Vec::new();
        match proto {
            PROTO_TCP => {
                let b = b.tcp(40000, 80, 12345, 64240).syn();
                b.write(&mut out, payload).unwrap();
            }
            _ => {
                let b = b.udp(40000, 53);
                b.write(&mut out, payload).unwrap();
            }
        }
        out
    }

    /// Checks addresses, ports and both checksums with etherparse.
    fn check(pkt: &[u8], src: ([u8; 4], u16), dst: ([u8; 4], u16), ttl: u8) {
        let p = SlicedPacket::from_ip(pkt).unwrap();
        let ip = match p.net.unwrap() {
            etherparse::NetSlice::Ipv4(v4) => v4,
            _ => panic!("not ipv4"),
        };
        let h = ip.header().to_header();
        assert_eq!(h.source, src.0);
        assert_eq!(h.destination, dst.0);
        assert_eq!(h.time_to_live, ttl);
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let payload = ip.payload().payload;
        match p.transport.unwrap() {
            TransportSlice::Tcp(t) => {
                assert_eq!((t.source_port(), t.destination_port()), (src.1, dst.1));
                let want = t.to_header().calc_checksum_ipv4_raw(src.0, dst.0, t.payload()).unwrap();
                assert_eq!(t.checksum(), want);
            }
            TransportSlice::Udp(u) => {
                assert_eq!((u.source_port(), u.destination_port()), (src.1, dst.1));
                let want = u.to_header().calc_checksum_ipv4_raw(src.0, dst.0, u.payload()).unwrap();
                assert_eq!(u.checksum(), want);
            }
            _ => panic!("no transport"),
        }
        let _ = payload;
    }

    #[test]
    fn fullnat_rewrite_of_tcp_both_directions() {
        let mut p = build(PROTO_TCP, b"GET / HTTP/1.0\r\n\r\n", 64);
        // client -> VIP becomes LIP -> RIP
        rewrite(&mut p, PROTO_TCP, (0xc612_010a, 5000), (0xc612_0102, 8080));
        check(&p, ([198, 18, 1, 10], 5000), ([198, 18, 1, 2], 8080), 63);
        // a reply RIP -> LIP becomes VIP -> client
        rewrite(&mut p, PROTO_TCP, (0xc612_0064, 80), (0xc612_0002, 40000));
        check(&p, ([198, 18, 0, 100], 80), ([198, 18, 0, 2], 40000), 62);
    }

    #[test]
    fn fullnat_rewrite_of_udp_both_directions() {
        let mut p = build(PROTO_UDP, b"hello", 64);
        rewrite(&mut p, PROTO_UDP, (0xc612_010a, 5002), (0xc612_0103, 53));
        check(&p, ([198, 18, 1, 10], 5002), ([198, 18, 1, 3], 53), 63);
        rewrite(&mut p, PROTO_UDP, (0xc612_0064, 53), (0xc612_0002, 40000));
        check(&p, ([198, 18, 0, 100], 53), ([198, 18, 0, 2], 40000), 62);
    }

    #[test]
    fn udp_without_checksum_stays_without() {
        let mut p = build(PROTO_UDP, b"x", 9);
        let hl = 20;
        p[hl + 6] = 0;
        p[hl + 7] = 0;
        rewrite(&mut p, PROTO_UDP, (1, 2), (3, 4));
        assert_eq!(&p[hl + 6..hl + 8], &[0, 0]);
    }

    proptest! {
        #[test]
        fn incremental_rewrite_equals_full_recompute(
            tcp in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            s in any::<u32>(), sp in 1u16.., d in any::<u32>(), dp in 1u16..,
            ttl in 2u8..,
        ) {
            let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
            let mut p = build(proto, &payload, ttl);
            rewrite(&mut p, proto, (s, sp), (d, dp));
            check(&p, (s.to_be_bytes(), sp), (d.to_be_bytes(), dp), ttl - 1);
        }
    }
}

/// The flow an ICMP error quotes (RFC 792: the original IP header and at
/// least 8 bytes of its payload, i.e. the ports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    pub proto: u8,
    pub src: u32,
    pub sport: u16,
    pub dst: u32,
    pub dport: u16,
}

/// ICMP types that quote a packet and that the gateway translates:
/// destination unreachable (incl. fragmentation needed) and time exceeded.
pub fn is_icmp_error(msg_type: u8) -> bool {
    msg_type == 3 || msg_type == 11
}

/// The TCP/UDP flow quoted by the ICMP error message `icmp` (header and
/// data), or `None` if it is not an error, not about TCP/UDP, or too short.
pub fn icmp_quote(icmp: &[u8]) -> Option<Quote> {
    if icmp.len() < 8 || !is_icmp_error(icmp[0]) {
        return None;
    }
    let inner = &icmp[8..];
    if inner.len() < 20 || inner[0] >> 4 != 4 {
        return None;
    }
    let ihl = (inner[0] & 0x0f) as usize * 4;
    let proto = inner[9];
    if ihl < 20 || inner.len() < ihl + 8 || (proto != PROTO_TCP && proto != PROTO_UDP) {
        return None;
    }
    let addr = |o: usize| u32::from_be_bytes([inner[o], inner[o + 1], inner[o + 2], inner[o + 3]]);
    let port = |o: usize| u16::from_be_bytes([inner[ihl + o], inner[ihl + o + 1]]);
    Some(Quote { proto, src: addr(12), sport: port(0), dst: addr(16), dport: port(2) })
}

/// Translates an ICMP error in place, as IPVS does for NAT: the outer
/// header gets `outer_src -> outer_dst` (TTL decremented), the quoted packet
/// gets `quoted_src -> quoted_dst` with its header checksum and, for UDP,
/// its checksum updated; the ICMP checksum is recomputed. `ip` is the outer
/// IPv4 packet (exactly its total length) and passed [`icmp_quote`].
pub fn rewrite_icmp_error(ip: &mut [u8], outer: (u32, u32), quoted_src: (u32, u16), quoted_dst: (u32, u16)) {
    let hl = ipv4::Packet::new_unchecked(&*ip).header_len();
    let q = hl + 8;
    let ihl = (ip[q] & 0x0f) as usize * 4;
    {
        let mut inner = ipv4::Packet::new_unchecked(&mut ip[q..q + ihl]);
        let (old_src, old_dst) = (inner.src_addr(), inner.dst_addr());
        inner.set_src_addr(Ipv4Addr::from(quoted_src.0));
        inner.set_dst_addr(Ipv4Addr::from(quoted_dst.0));
        inner.fill_checksum();
        let l4 = q + ihl;
        let (old_sp, old_dp) =
            (u16::from_be_bytes([ip[l4], ip[l4 + 1]]), u16::from_be_bytes([ip[l4 + 2], ip[l4 + 3]]));
        ip[l4..l4 + 2].copy_from_slice(&quoted_src.1.to_be_bytes());
        ip[l4 + 2..l4 + 4].copy_from_slice(&quoted_dst.1.to_be_bytes());
        // The quoted UDP checksum lies within the 8 quoted bytes: keep it right.
        if ip[q + 9] == PROTO_UDP {
            let c = u16::from_be_bytes([ip[l4 + 6], ip[l4 + 7]]);
            let old = ((old_src, old_sp), (old_dst, old_dp));
            let new =
                ((Ipv4Addr::from(quoted_src.0), quoted_src.1), (Ipv4Addr::from(quoted_dst.0), quoted_dst.1));
            ip[l4 + 6..l4 + 8].copy_from_slice(&l4_checksum(c, true, old, new).to_be_bytes());
        }
    }
    let mut icmp = crate::wire::icmpv4::Packet::new_unchecked(&mut ip[hl..]);
    icmp.fill_checksum();
    let mut outer_ip = ipv4::Packet::new_unchecked(&mut *ip);
    outer_ip.set_src_addr(Ipv4Addr::from(outer.0));
    outer_ip.set_dst_addr(Ipv4Addr::from(outer.1));
    let ttl = outer_ip.ttl();
    outer_ip.set_ttl(ttl.saturating_sub(1));
    outer_ip.fill_checksum();
}

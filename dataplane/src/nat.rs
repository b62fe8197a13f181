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
    let l4_update = |c: u16, old_sp: u16, old_dp: u16| {
        let mut c = update_addr(c, old_src, new_src);
        c = update_addr(c, old_dst, new_dst);
        c = update16(c, old_sp, src.1);
        update16(c, old_dp, dst.1)
    };
    match proto {
        PROTO_TCP => {
            let mut t = tcp::Packet::new_unchecked(l4);
            let c = l4_update(t.checksum(), t.src_port(), t.dst_port());
            t.set_src_port(src.1);
            t.set_dst_port(dst.1);
            t.set_checksum(c);
        }
        PROTO_UDP => {
            let mut u = udp::Packet::new_unchecked(l4);
            let old = u.checksum();
            // A UDP checksum of 0 means "none" (RFC 768): leave it so.
            if old != 0 {
                let c = l4_update(old, u.src_port(), u.dst_port());
                u.set_checksum(if c == 0 { 0xffff } else { c });
            }
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

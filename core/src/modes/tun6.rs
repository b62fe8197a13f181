//! TUN for IPv6 (`-i` on an IPv6 service): IPv6-in-IPv6 (RFC 2473) to the
//! real server, which holds the VIP and answers the client directly, as
//! IPVS's `ip_vs_tunnel_xmit_v6`.
//!
//! The engine ([`crate::engine`]'s IPv6 path) binds the session like DR's
//! (no reply key, INPUT-ONLY TCP table) and returns [`Action::Encap6`] with
//! the outer addresses kept for the worker
//! ([`crate::engine::Engine::pending_encap6`]); the worker carries it out
//! with [`encap`], which prepends [`OUTER6_LEN`] bytes and the tunnel
//! header of the server's `--tun-type` ([`super::tun_encap`]) and writes
//! them ([`encapsulate6`]), then resolves the next hop as for any IPv6
//! packet. Outer header fields: the traffic class and hop limit copied from
//! the inner header, flow label 0, next header 41 (ipip), 17 (gue) or 47
//! (gre), the source the gateway's IPv6 address on the output port. A
//! packet that does not fit the output port's MTU with the outer headers
//! gets Packet Too Big with the tunnel's MTU (the engine's IPv6 path).
//!
//! [`Action::Encap6`]: crate::engine::Action::Encap6

use std::net::Ipv6Addr;

use gw_proto::TunnelEncap;

use super::tun_encap;
use crate::counters::Drop;
use crate::wire::ipv6::{self, NextHeader};
use crate::wire::{checksum, ethernet};
use crate::worker::PacketBuf;

/// Size of the outer IPv6 header.
pub const OUTER6_LEN: usize = ipv6::HEADER_LEN;

/// Encapsulates the IPv6 packet of `pkt` from `src` to `dst` (host order)
/// in the tunnel of type `tun`: prepends [`OUTER6_LEN`] bytes and the
/// tunnel header ([`tun_encap::overhead`]) and writes them.
/// `Err(NoHeadroom)` if the buffer has no room in front.
#[inline]
pub fn encap<B: PacketBuf>(pkt: &mut B, tun: TunnelEncap, src: u128, dst: u128) -> Result<(), Drop> {
    if !pkt.prepend(OUTER6_LEN + tun_encap::overhead(tun)) {
        return Err(Drop::NoHeadroom);
    }
    encapsulate6(pkt.as_mut(), tun, src, dst);
    Ok(())
}

/// Wraps the IPv6 packet of `frame` in an outer IPv6 header from `src` to
/// `dst` and the tunnel header of `tun` (none for ipip, UDP and GUE, or
/// GRE). `frame` must already have [`OUTER6_LEN`] +
/// [`tun_encap::overhead`] new bytes in front of the original Ethernet
/// frame; the Ethernet header (EtherType IPv6 already) moves to the front
/// and the inner packet stays byte for byte as it was.
pub fn encapsulate6(frame: &mut [u8], tun: TunnelEncap, src: u128, dst: u128) {
    let eth = ethernet::HEADER_LEN;
    let add = OUTER6_LEN + tun_encap::overhead(tun);
    frame.copy_within(add..add + eth, 0);
    let inner = ipv6::Packet::new_unchecked(&frame[eth + add..]);
    let (tc, hops, inner_len) =
        (inner.traffic_class(), inner.hop_limit(), ipv6::HEADER_LEN as u16 + inner.payload_len());
    let sport = match tun {
        TunnelEncap::Gue { .. } => tun_encap::flow_port(&frame[eth + add..], true),
        _ => 0,
    };
    let end = (eth + add + usize::from(inner_len)).min(frame.len());
    tun_encap::write_header(tun, &mut frame[eth + OUTER6_LEN..end], true, sport);
    let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
    let payload_len = (end - eth - OUTER6_LEN) as u16;
    if tun_encap::udp_csum(tun) {
        let pseudo = checksum::pseudo_header_v6(src, dst, tun_encap::PROTO_UDP, u32::from(payload_len));
        tun_encap::fill_udp_checksum(tun, &mut frame[eth + OUTER6_LEN..end], pseudo);
    }
    let mut outer = ipv6::Packet::new_unchecked(&mut frame[eth..eth + OUTER6_LEN]);
    outer.set_version(6);
    outer.set_traffic_class(tc);
    outer.set_flow_label(0);
    outer.set_payload_len(payload_len);
    outer.set_next_header(NextHeader::from(tun_encap::outer_proto(tun, true)));
    outer.set_hop_limit(hops);
    outer.set_src_addr(src);
    outer.set_dst_addr(dst);
}

#[cfg(test)]
mod tests {
    use etherparse::{NetSlice, PacketBuilder, SlicedPacket};

    use super::*;

    /// The outer header as etherparse reads it, and the inner packet
    /// unchanged behind it.
    #[test]
    fn the_outer_header_wraps_the_inner_packet_unchanged() {
        let (c, v) = (
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50],
        );
        let mut f = vec![];
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6(c, v, 33)
            .udp(5353, 80)
            .write(&mut f, b"payload")
            .unwrap();
        let inner = f[ethernet::HEADER_LEN..].to_vec();
        let (src, dst) = (0x2001_0db8_0001_u128 << 80 | 1, 0x2001_0db8_0001_u128 << 80 | 2);
        encap(&mut f, TunnelEncap::Ipip, src, dst).unwrap();
        assert_eq!(f.len(), ethernet::HEADER_LEN + OUTER6_LEN + inner.len());
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = p.net else { panic!("not IPv6") };
        let h = ip.header();
        assert_eq!((h.source(), h.destination()), (src.to_be_bytes(), dst.to_be_bytes()));
        assert_eq!(h.next_header(), etherparse::IpNumber::IPV6);
        assert_eq!(usize::from(h.payload_length()), inner.len());
        assert_eq!(h.hop_limit(), 33, "copied from the inner header");
        assert_eq!(&f[ethernet::HEADER_LEN + OUTER6_LEN..], &inner[..]);
        assert_eq!(&f[..12], &[4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2], "the MACs moved to the front");
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
    }

    /// GUE and GRE over IPv6: next header 17 or 47, GUE's Proto/ctype and
    /// GRE's protocol type say IPv6 (41, 0x86DD); the UDP checksum is 0
    /// without `--tun-csum` (RFC 6935), else right over the IPv6 pseudo
    /// header (etherparse's).
    #[test]
    fn gue_and_gre_over_ipv6_carry_the_inner_ipv6_packet() {
        use gw_proto::TunnelCsum::*;
        let (c, v) = (
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50],
        );
        let mut orig = vec![];
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6(c, v, 33)
            .tcp(5353, 80, 1, 100)
            .write(&mut orig, b"x")
            .unwrap();
        let inner = orig[ethernet::HEADER_LEN..].to_vec();
        let (src, dst) = (0x2001_0db8_0001_u128 << 80 | 1, 0x2001_0db8_0001_u128 << 80 | 2);
        for tun in [
            TunnelEncap::Gue { port: 5555, csum: NoCsum },
            TunnelEncap::Gue { port: 5555, csum: Csum },
            TunnelEncap::Gre { csum: NoCsum },
            TunnelEncap::Gre { csum: Csum },
        ] {
            let mut f = orig.clone();
            encap(&mut f, tun, src, dst).unwrap();
            let add = OUTER6_LEN + tun_encap::overhead(tun);
            assert_eq!(&f[ethernet::HEADER_LEN + add..], &inner[..], "{tun:?}");
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
            let h = ip.header();
            assert_eq!(usize::from(h.payload_length()), add - OUTER6_LEN + inner.len());
            assert_eq!((h.source(), h.destination()), (src.to_be_bytes(), dst.to_be_bytes()));
            let body = &f[ethernet::HEADER_LEN + OUTER6_LEN..];
            match tun {
                TunnelEncap::Gue { csum, .. } => {
                    assert_eq!(h.next_header(), etherparse::IpNumber::UDP);
                    let Some(etherparse::TransportSlice::Udp(u)) = &p.transport else { panic!("not UDP") };
                    assert_eq!(u.destination_port(), 5555);
                    assert_eq!(&u.payload()[..4], &[0, 41, 0, 0], "GUE: version 0, Proto/ctype 41");
                    if csum == NoCsum {
                        assert_eq!(u.checksum(), 0);
                    } else {
                        let want =
                            u.to_header().calc_checksum_ipv6_raw(h.source(), h.destination(), u.payload());
                        assert_eq!(u.checksum(), want.unwrap());
                    }
                }
                TunnelEncap::Gre { csum } => {
                    assert_eq!(h.next_header(), etherparse::IpNumber::GRE);
                    let want: &[u8] =
                        if csum == NoCsum { &[0, 0, 0x86, 0xdd] } else { &[0x80, 0, 0x86, 0xdd] };
                    assert_eq!(&body[..4], want);
                    if csum == Csum {
                        assert_eq!(crate::wire::checksum::checksum(body), 0, "verifies over all of GRE");
                    }
                }
                TunnelEncap::Ipip => unreachable!(),
            }
        }
    }
}

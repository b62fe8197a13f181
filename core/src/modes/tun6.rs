//! TUN for IPv6 (`-i` on an IPv6 service): IPv6-in-IPv6 (RFC 2473) to the
//! real server, which holds the VIP and answers the client directly, as
//! IPVS's `ip_vs_tunnel_xmit_v6`.
//!
//! The engine ([`crate::engine`]'s IPv6 path) binds the session like DR's
//! (no reply key, INPUT-ONLY TCP table) and returns [`Action::Encap6`] with
//! the outer addresses kept for the worker
//! ([`crate::engine::Engine::pending_encap6`]); the worker carries it out
//! with [`encap`], which prepends [`OUTER6_LEN`] bytes and writes the outer
//! header ([`encapsulate6`]), then resolves the next hop as for any IPv6
//! packet. Outer header fields: the traffic class and hop limit copied from
//! the inner header, flow label 0, next header 41, the source the
//! gateway's IPv6 address on the output port. A packet that does not fit
//! the output port's MTU with the outer header is dropped and counted
//! (`drop_cannot_fragment`); Packet Too Big back to the client is not
//! built yet.
//!
//! [`Action::Encap6`]: crate::engine::Action::Encap6

use std::net::Ipv6Addr;

use crate::counters::Drop;
use crate::wire::ethernet;
use crate::wire::ipv6::{self, NextHeader};
use crate::worker::PacketBuf;

/// Size of the outer IPv6 header.
pub const OUTER6_LEN: usize = ipv6::HEADER_LEN;

/// Encapsulates the IPv6 packet of `pkt` from `src` to `dst` (host order):
/// prepends [`OUTER6_LEN`] bytes and writes the outer header.
/// `Err(NoHeadroom)` if the buffer has no room in front.
#[inline]
pub fn encap<B: PacketBuf>(pkt: &mut B, src: u128, dst: u128) -> Result<(), Drop> {
    if !pkt.prepend(OUTER6_LEN) {
        return Err(Drop::NoHeadroom);
    }
    encapsulate6(pkt.as_mut(), src, dst);
    Ok(())
}

/// Wraps the IPv6 packet of `frame` in an outer IPv6 header from `src` to
/// `dst`. `frame` must already have [`OUTER6_LEN`] new bytes in front of the
/// original Ethernet frame; the Ethernet header (EtherType IPv6 already)
/// moves to the front and the inner packet stays byte for byte as it was.
pub fn encapsulate6(frame: &mut [u8], src: u128, dst: u128) {
    let eth = ethernet::HEADER_LEN;
    frame.copy_within(OUTER6_LEN..OUTER6_LEN + eth, 0);
    let inner = ipv6::Packet::new_unchecked(&frame[eth + OUTER6_LEN..]);
    let (tc, hops, inner_len) =
        (inner.traffic_class(), inner.hop_limit(), ipv6::HEADER_LEN as u16 + inner.payload_len());
    let mut outer = ipv6::Packet::new_unchecked(&mut frame[eth..eth + OUTER6_LEN]);
    outer.set_version(6);
    outer.set_traffic_class(tc);
    outer.set_flow_label(0);
    outer.set_payload_len(inner_len);
    outer.set_next_header(NextHeader::Ipv6);
    outer.set_hop_limit(hops);
    outer.set_src_addr(Ipv6Addr::from(src));
    outer.set_dst_addr(Ipv6Addr::from(dst));
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
        encap(&mut f, src, dst).unwrap();
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
}

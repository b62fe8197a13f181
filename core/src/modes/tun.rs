//! TUN (`-i`, DPVS's `dp_vs_xmit_tunnel`): IP-in-IP (RFC 2003) to the real
//! server, which holds the VIP and answers the client directly.
//!
//! Everything TUN does lives here: binding (no reply key, INPUT-ONLY TCP
//! table, the real server's port is the service port), the MTU decision
//! (as IPVS: a packet that would not fit the output port's MTU with the
//! outer header is not sent whole; with DF the client gets "fragmentation
//! needed" with the tunnel's MTU, RFC 792 / RFC 1191, without DF the outer
//! packet is sent as fragments, which the worker makes on output), and the
//! encapsulation the worker carries out for
//! [`Action::Encap`]: [`encap`] prepends [`OUTER_LEN`] bytes and the tunnel
//! header of the server's `--tun-type` ([`super::tun_encap`]: none for
//! ipip, UDP and GUE, or GRE) and writes them ([`encapsulate`]).
//!
//! Outer header fields follow IPVS (`ip_vs_tunnel_xmit`): TOS and TTL are
//! copied from the inner header, DF is copied from the inner header, the
//! protocol is 4 (ipip), 17 (gue) or 47 (gre), the source is the gateway's
//! address on the output port.

use std::net::Ipv4Addr;

use gw_proto::TunnelEncap;

use super::{tun_encap, BindCx, Bound, Mode, XmitCx};
use crate::counters::{Drop, Event};
use crate::engine::Action;
use crate::service::Dest;
use crate::session::{FlowKey, Session};
use crate::tcp_state::Dir;
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::{checksum, icmpv4, ipv4};
use crate::worker::PacketBuf;

/// Size of the outer IPv4 header.
pub const OUTER_LEN: usize = 20;

/// IP-in-IP tunnelling.
pub struct Tun;

impl Mode for Tun {
    const ROUTED: bool = false;
    const IN_TABLE: Dir = Dir::InputOnly;
    const REPLIES_TO_CLIENT: bool = false;

    /// As DR's: the real server takes the VIP's port, replies bypass us.
    #[inline]
    fn bind(cx: &mut BindCx<'_>, key: &FlowKey, dest: &Dest) -> Result<Bound, Drop> {
        super::dr::Dr::bind(cx, key, dest)
    }

    /// The MTU decision, then [`Action::Encap`] from the output port's
    /// address to the real server, with the server's tunnel type (read at
    /// each packet, as IPVS reads `cp->dest->tun_type`: `-e` changes it for
    /// the server's sessions too).
    #[inline]
    fn xmit_in(cx: &XmitCx<'_>, s: &Session, frame: &mut [u8]) -> Action {
        let Some(out) = cx.ifaces.iter().find(|i| i.port == cx.port) else {
            return Action::Drop(Drop::NoRoute);
        };
        let tun = cx.snap.dest_tunnel(u32::from(s.dest));
        let outer = OUTER_LEN + tun_encap::overhead(tun);
        let encap =
            Action::Encap { port: cx.port, next_hop: cx.next_hop, src: u32::from(out.addr), dst: s.rip, tun };
        if cx.tl + outer > out.mtu as usize {
            let mtu = out.mtu.saturating_sub(outer as u16);
            if !cx.dont_frag {
                // As IPVS: the outer packet goes out as fragments (the
                // worker splits it, DF being copied clear). An ICMP error
                // with DF set (it gets no "fragmentation needed", so
                // `cx.dont_frag` is false for it) cannot be: dropped.
                let df = ipv4::Packet::new_unchecked(&frame[ethernet::HEADER_LEN..]).dont_frag();
                if df || cx.tl + outer > crate::frag::MAX_DATAGRAM {
                    return Action::Drop(Drop::TunnelTooBig);
                }
                return encap;
            }
            return match frag_needed_in_place(frame, cx.tl, cx.rx.mac, cx.rx.addr, mtu) {
                Some(len) => {
                    cx.counters.event(Event::IcmpFragNeededSent, 1);
                    Action::Reply { port: cx.rx.port, len }
                }
                None => Action::Drop(Drop::TunnelTooBig),
            };
        }
        encap
    }

    /// Never reached: the session has no reply key.
    #[inline]
    fn xmit_out(_: &XmitCx<'_>, _: &Session, _: &mut [u8]) -> Action {
        Action::Drop(Drop::UnknownReply)
    }
}

/// Carries out [`Action::Encap`] on `pkt` (the Ethernet frame the engine
/// returned it for): prepends [`OUTER_LEN`] bytes and the tunnel header of
/// `tun` ([`tun_encap::overhead`]) and writes them from `src` to `dst` (host
/// order), with the next value of the worker's IPv4 identification counter
/// `ident`. `Err(NoHeadroom)` (and `ident` unchanged) if the buffer has no
/// room in front.
#[inline]
pub fn encap<B: PacketBuf>(
    pkt: &mut B,
    tun: TunnelEncap,
    src: u32,
    dst: u32,
    ident: &mut u16,
) -> Result<(), Drop> {
    if !pkt.prepend(OUTER_LEN + tun_encap::overhead(tun)) {
        return Err(Drop::NoHeadroom);
    }
    *ident = ident.wrapping_add(1);
    encapsulate(pkt.as_mut(), tun, src, dst, *ident);
    Ok(())
}

/// Wraps the IPv4 packet of `frame` in an outer header from `src` to `dst`
/// and the tunnel header of `tun` (none for ipip, UDP and GUE, or GRE).
///
/// `frame` must already have [`OUTER_LEN`] + [`tun_encap::overhead`] new
/// bytes in front of the original Ethernet frame (the caller prepended
/// them); the Ethernet header moves to the front and the outer headers go
/// between it and the inner packet, which stays byte for byte as it was.
pub fn encapsulate(frame: &mut [u8], tun: TunnelEncap, src: u32, dst: u32, ident: u16) {
    let eth = ethernet::HEADER_LEN;
    let add = OUTER_LEN + tun_encap::overhead(tun);
    frame.copy_within(add..add + eth, 0);
    let inner = ipv4::Packet::new_unchecked(&frame[eth + add..]);
    let (tos, ttl, df, inner_len) = (inner.tos(), inner.ttl(), inner.dont_frag(), inner.total_len());
    let sport = match tun {
        TunnelEncap::Gue { .. } => tun_encap::flow_port(&frame[eth + add..], false),
        _ => 0,
    };
    let end = (eth + add + usize::from(inner_len)).min(frame.len());
    tun_encap::write_header(tun, &mut frame[eth + OUTER_LEN..end], false, sport);
    let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
    let outer_len = (end - eth) as u16;
    if tun_encap::udp_csum(tun) {
        let pseudo = checksum::pseudo_header(src, dst, tun_encap::PROTO_UDP, outer_len - OUTER_LEN as u16);
        tun_encap::fill_udp_checksum(tun, &mut frame[eth + OUTER_LEN..end], pseudo);
    }
    let mut outer = ipv4::Packet::new_unchecked(&mut frame[eth..eth + OUTER_LEN]);
    outer.set_version(4);
    outer.set_header_len(OUTER_LEN);
    outer.set_tos(tos);
    outer.set_total_len(outer_len);
    outer.set_ident(ident);
    outer.clear_flags();
    outer.set_dont_frag(df);
    outer.set_frag_offset(0);
    outer.set_ttl(ttl);
    outer.set_protocol(ipv4::Protocol::from(tun_encap::outer_proto(tun, false)));
    outer.set_src_addr(src);
    outer.set_dst_addr(dst);
    outer.fill_checksum();
}

/// Turns the frame (an IPv4 packet of `tl` bytes received from `peer` MAC)
/// into an ICMP destination unreachable / fragmentation needed (RFC 792,
/// RFC 1191 next-hop MTU) from `our_ip`/`our_mac` back to its sender,
/// quoting the original IP header and the first 8 bytes of its payload.
/// Returns the new frame length, or `None` if the frame has no room for it.
pub fn frag_needed_in_place(
    frame: &mut [u8],
    tl: usize,
    our_mac: MacAddr,
    our_ip: Ipv4Addr,
    mtu: u16,
) -> Option<usize> {
    let eth = ethernet::HEADER_LEN;
    let (peer_mac, orig_src, hl) = {
        let f = ethernet::Frame::new_checked(&frame[..]).ok()?;
        let ip = ipv4::Packet::new_checked(&frame[eth..]).ok()?;
        (f.src_addr(), ip.src_addr(), ip.header_len())
    };
    let quoted = (hl + 8).min(tl);
    let icmp_len = 8 + quoted;
    let total = 20 + icmp_len;
    if frame.len() < eth + total {
        return None;
    }
    frame.copy_within(eth..eth + quoted, eth + 28);
    {
        let mut f = ethernet::Frame::new_unchecked(&mut frame[..]);
        f.set_dst_addr(peer_mac);
        f.set_src_addr(our_mac);
    }
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut frame[eth..eth + 20]);
        ip.set_version(4);
        ip.set_header_len(20);
        // Precedence "internetwork control", as Linux sends ICMP errors.
        ip.set_tos(0xc0);
        ip.set_total_len(total as u16);
        ip.set_ident(0);
        ip.clear_flags();
        ip.set_frag_offset(0);
        ip.set_ttl(64);
        ip.set_protocol(ipv4::Protocol::Icmp);
        ip.set_src_addr(our_ip);
        ip.set_dst_addr(orig_src);
        ip.fill_checksum();
    }
    let mut icmp = icmpv4::Packet::new_unchecked(&mut frame[eth + 20..eth + total]);
    icmp.set_msg_type(icmpv4::Message::DstUnreachable);
    icmp.set_code(icmpv4::CODE_FRAG_NEEDED);
    // Bytes 4..6 unused (zero), 6..8 the next-hop MTU (RFC 1191).
    icmp.set_echo_ident(0);
    icmp.set_next_hop_mtu(mtu);
    icmp.fill_checksum();
    Some(eth + total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

    fn frame(df: bool, payload: usize) -> Vec<u8> {
        let mut out = vec![];
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1]).ipv4(
            [198, 18, 0, 2],
            [198, 18, 0, 100],
            33,
        );
        b.udp(4000, 80).write(&mut out, &vec![7u8; payload]).unwrap();
        // etherparse sets DF; clear it when asked.
        if !df {
            out[20] &= !0x40;
            out[24] = 0;
            out[25] = 0;
            let c = etherparse::Ipv4HeaderSlice::from_slice(&out[14..34])
                .unwrap()
                .to_header()
                .calc_header_checksum();
            out[24..26].copy_from_slice(&c.to_be_bytes());
        }
        out
    }

    #[test]
    fn the_inner_packet_is_identical_and_the_outer_header_follows_ipvs() {
        let orig = frame(true, 100);
        let mut f = vec![0u8; OUTER_LEN];
        f.extend_from_slice(&orig);
        encapsulate(&mut f, TunnelEncap::Ipip, 0xc612_0101, 0xc612_0202, 9);
        assert_eq!(&f[..14], &orig[..14], "Ethernet header moved to the front");
        assert_eq!(&f[34..], &orig[14..], "inner packet untouched");
        let outer = etherparse::Ipv4HeaderSlice::from_slice(&f[14..34]).unwrap().to_header();
        assert_eq!(outer.protocol, etherparse::IpNumber(4), "IP-in-IP");
        assert_eq!(outer.source, [198, 18, 1, 1]);
        assert_eq!(outer.destination, [198, 18, 2, 2]);
        assert_eq!(outer.time_to_live, 33, "outer TTL copies the inner one");
        assert!(outer.dont_fragment, "DF copied from the inner header");
        assert_eq!(outer.total_len as usize, orig.len() - 14 + 20);
        assert_eq!(outer.header_checksum, outer.calc_header_checksum());
        // And etherparse reads the whole thing as IP-in-IP with a valid inner UDP packet.
        let p = SlicedPacket::from_ip(&f[34..]).unwrap();
        assert!(matches!(p.transport, Some(TransportSlice::Udp(_))));
        let mut g = vec![0u8; OUTER_LEN];
        g.extend_from_slice(&frame(false, 10));
        encapsulate(&mut g, TunnelEncap::Ipip, 1, 2, 3);
        assert!(!etherparse::Ipv4HeaderSlice::from_slice(&g[14..34]).unwrap().dont_fragment());
    }

    /// RFC 1071 over `b`, written here again (not the crate's) so that
    /// the tests check the checksums against a second implementation.
    fn rfc1071(b: &[u8]) -> u16 {
        let mut s: u32 = b.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0))).sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    /// GUE (draft-ietf-intarea-gue §3.1) and its UDP header, read by
    /// etherparse and by hand, with each checksum option.
    #[test]
    fn gue_wraps_the_packet_in_udp_to_the_tun_port_and_a_gue_header() {
        use gw_proto::TunnelCsum::*;
        let orig = frame(true, 100);
        let inner = &orig[14..];
        let mut ports = vec![];
        for csum in [NoCsum, Csum, RemCsum] {
            let tun = TunnelEncap::Gue { port: 6080, csum };
            let add = OUTER_LEN + 12;
            let mut f = vec![0u8; add];
            f.extend_from_slice(&orig);
            // Ethernet padding after the packet stays out of the tunnel.
            f.extend_from_slice(&[0xee; 6]);
            encapsulate(&mut f, tun, 0xc612_0101, 0xc612_0202, 9);
            let end = 14 + add + inner.len();
            assert_eq!(&f[14 + add..end], inner, "inner packet untouched");
            let p = SlicedPacket::from_ethernet(&f[..end]).unwrap();
            let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
            let h = ip.header().to_header();
            assert_eq!(
                (h.protocol, h.total_len as usize),
                (etherparse::IpNumber(17), 20 + 8 + 4 + inner.len())
            );
            assert_eq!((h.source, h.destination, h.time_to_live), ([198, 18, 1, 1], [198, 18, 2, 2], 33));
            assert!(h.dont_fragment);
            let Some(TransportSlice::Udp(u)) = &p.transport else { panic!("not UDP") };
            assert_eq!(u.destination_port(), 6080);
            assert!((32768..61000).contains(&u.source_port()), "{}", u.source_port());
            ports.push(u.source_port());
            assert_eq!(usize::from(u.length()), 8 + 4 + inner.len());
            if csum == NoCsum {
                assert_eq!(u.checksum(), 0, "--tun-nocsum: no UDP checksum");
            } else {
                let want =
                    u.to_header().calc_checksum_ipv4_raw(h.source, h.destination, u.payload()).unwrap();
                assert_eq!(u.checksum(), want, "{csum:?}: the UDP checksum");
            }
            // GUE: ver 0 | C 0 | Hlen 0 (byte 0), Proto/ctype 4, flags 0.
            assert_eq!(&u.payload()[..4], &[0, 4, 0, 0]);
            assert_eq!(&u.payload()[4..], inner);
        }
        assert!(ports.windows(2).all(|w| w[0] == w[1]), "one flow, one source port");
    }

    /// GRE (RFC 2784 §2) read by hand: 4 bytes, or 8 with the C bit and the
    /// checksum over the GRE header and the packet.
    #[test]
    fn gre_wraps_the_packet_with_protocol_0800_and_the_checksum_when_asked() {
        use gw_proto::TunnelCsum::*;
        let orig = frame(false, 333);
        let inner = &orig[14..];
        for (csum, len) in [(NoCsum, 4), (Csum, 8)] {
            let tun = TunnelEncap::Gre { csum };
            let add = OUTER_LEN + len;
            let mut f = vec![0u8; add];
            f.extend_from_slice(&orig);
            encapsulate(&mut f, tun, 0xc612_0101, 0xc612_0202, 9);
            let outer = etherparse::Ipv4HeaderSlice::from_slice(&f[14..34]).unwrap().to_header();
            assert_eq!(outer.protocol, etherparse::IpNumber(47));
            assert_eq!(outer.total_len as usize, 20 + len + inner.len());
            assert_eq!(outer.header_checksum, outer.calc_header_checksum());
            assert!(!outer.dont_fragment, "DF copied (clear)");
            let gre = &f[34..34 + len];
            let flags = u16::from_be_bytes([gre[0], gre[1]]);
            assert_eq!(flags & 0x7fff, 0, "no K, S bits, reserved 0, version 0");
            assert_eq!(u16::from_be_bytes([gre[2], gre[3]]), 0x0800, "protocol type IPv4");
            if csum == Csum {
                assert_eq!(flags, 0x8000, "C bit");
                assert_eq!(&gre[6..8], &[0, 0], "reserved1");
                assert_eq!(rfc1071(&f[34..]), 0, "the GRE checksum verifies over header and packet");
            } else {
                assert_eq!(flags, 0);
            }
            assert_eq!(&f[34 + len..], inner);
            let p = SlicedPacket::from_ip(&f[34 + len..]).unwrap();
            assert!(matches!(p.transport, Some(TransportSlice::Udp(_))));
        }
    }

    #[test]
    fn frag_needed_quotes_the_packet_and_carries_the_mtu() {
        let mut f = frame(true, 1480);
        let orig = f.clone();
        let len = frag_needed_in_place(
            &mut f,
            orig.len() - 14,
            MacAddr([2, 0, 0, 0, 0, 1]),
            Ipv4Addr::new(198, 18, 0, 1),
            1480,
        )
        .unwrap();
        f.truncate(len);
        assert_eq!(&f[0..6], &orig[6..12], "back to the sender's MAC");
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
        let h = ip.header().to_header();
        assert_eq!((h.source, h.destination), ([198, 18, 0, 1], [198, 18, 0, 2]));
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else { panic!() };
        match icmp.icmp_type() {
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
            ) => assert_eq!(next_hop_mtu, 1480),
            other => panic!("{other:?}"),
        }
        assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(icmp.payload()));
        assert_eq!(icmp.payload(), &orig[14..14 + 28], "original IP header + 8 bytes");
        // A frame too short to hold the answer is refused.
        let mut tiny = orig[..40].to_vec();
        assert_eq!(
            frag_needed_in_place(&mut tiny, 26, MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(1, 1, 1, 1), 100),
            None
        );
    }
}

//! NAT (`-m`, IPVS masquerading): DNAT to the real server on the way in,
//! SNAT back to the VIP on the way out; the real server routes its replies
//! through the gateway, so the reply key ends at the client itself.
//!
//! [`rewrite`] is the address-and-port rewrite that FULLNAT shares: it
//! calls the wire views' incremental updates (RFC 1624), which also own the
//! UDP zero-checksum rule (RFC 768). Invariant: a rewritten packet's
//! checksums equal a full recompute (property test below, checked with
//! etherparse).

use std::net::Ipv4Addr;

use super::{rs_port, BindCx, Bound, Mode, XmitCx};
use crate::counters::Drop;
use crate::engine::Action;
use crate::service::Dest;
use crate::session::{Flags, FlowKey, Session};
use crate::tcp_state::Dir;
use crate::wire::checksum::Delta;
use crate::wire::ethernet;
use crate::wire::ipv4::{self, Protocol};
use crate::wire::{tcp, udp};

/// NAT.
pub struct Nat;

impl Mode for Nat {
    const ROUTED: bool = true;
    const IN_TABLE: Dir = Dir::Input;
    const REPLIES_TO_CLIENT: bool = true;

    #[inline]
    fn bind(cx: &mut BindCx<'_>, key: &FlowKey, dest: &Dest) -> Result<Bound, Drop> {
        // Replies come back to the client address itself.
        let rs = (dest.addr4(), rs_port(key, dest));
        let local = (key.src, key.sport);
        let reply = FlowKey { proto: key.proto, src: rs.0, sport: rs.1, dst: local.0, dport: local.1 };
        if cx.sessions.lookup_out(&reply).is_some() {
            return Err(Drop::NatConflict);
        }
        Ok(Bound { rs, local, flags: Flags::NONE, reply_hash: None })
    }

    #[inline(always)]
    fn xmit_in(cx: &XmitCx<'_>, s: &Session, frame: &mut [u8]) -> Action {
        xmit_rewrite(cx, frame, (s.lip, s.lport), (s.rip, s.rport))
    }

    #[inline(always)]
    fn xmit_out(cx: &XmitCx<'_>, s: &Session, frame: &mut [u8]) -> Action {
        xmit_rewrite(cx, frame, (s.vip, s.vport), (s.cip, s.cport))
    }
}

/// Rewrites the packet of `frame` to `src -> dst` and forwards it: inline
/// in the engine's established step (issue 14: no call, no transmit
/// context built in memory for it).
#[inline(always)]
pub(super) fn xmit_rewrite(cx: &XmitCx<'_>, frame: &mut [u8], src: (u32, u16), dst: (u32, u16)) -> Action {
    let ip = &mut frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + cx.tl];
    rewrite(ip, cx.proto, src, dst);
    Action::Forward { port: cx.port, next_hop: cx.next_hop }
}

/// Rewrites source and destination address and port of a TCP or UDP packet
/// and decrements the TTL (the gateway routes it), with incremental
/// checksum updates through the wire views. `ip` starts at the IPv4 header
/// and has passed the IPv4 and L4 length checks; TTL must be above 1
/// (checked by the caller).
#[inline]
pub fn rewrite(ip: &mut [u8], proto: Protocol, src: (u32, u16), dst: (u32, u16)) {
    let mut pkt = ipv4::Packet::new_unchecked(&mut *ip);
    let hl = pkt.header_len();
    let pseudo = pkt.rewrite_addrs_and_forward(Ipv4Addr::from(src.0), Ipv4Addr::from(dst.0));
    let l4 = &mut ip[hl..];
    match proto {
        Protocol::Tcp => tcp::Packet::new_unchecked(l4).rewrite_ports(src.1, dst.1, pseudo),
        Protocol::Udp => udp::Packet::new_unchecked(l4).rewrite_ports(src.1, dst.1, pseudo),
        _ => {}
    }
}

/// [`rewrite`] of a TCP segment whose 32-bit field at `at` (4: sequence
/// number, 8: acknowledgement number) also becomes `new`: the change goes
/// into the same checksum fold as the addresses and ports (the PROXY
/// protocol's shift, [`crate::client_addr`]).
#[inline]
pub fn rewrite_tcp_shifted(ip: &mut [u8], src: (u32, u16), dst: (u32, u16), at: usize, new: u32) {
    let mut pkt = ipv4::Packet::new_unchecked(&mut *ip);
    let hl = pkt.header_len();
    let pseudo = pkt.rewrite_addrs_and_forward(Ipv4Addr::from(src.0), Ipv4Addr::from(dst.0));
    let l4 = &mut ip[hl..];
    let old = u32::from_be_bytes([l4[at], l4[at + 1], l4[at + 2], l4[at + 3]]);
    l4[at..at + 4].copy_from_slice(&new.to_be_bytes());
    tcp::Packet::new_unchecked(l4).rewrite_ports(src.1, dst.1, pseudo + Delta::word32(old, new));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::Protocol;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    fn build(proto: Protocol, payload: &[u8], ttl: u8) -> Vec<u8> {
        let b = PacketBuilder::ipv4([198, 18, 0, 2], [198, 18, 0, 100], ttl);
        let mut out = Vec::new();
        match proto {
            Protocol::Tcp => {
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
        let mut p = build(Protocol::Tcp, b"GET / HTTP/1.0\r\n\r\n", 64);
        // client -> VIP becomes LIP -> RIP
        rewrite(&mut p, Protocol::Tcp, (0xc612_010a, 5000), (0xc612_0102, 8080));
        check(&p, ([198, 18, 1, 10], 5000), ([198, 18, 1, 2], 8080), 63);
        // a reply RIP -> LIP becomes VIP -> client
        rewrite(&mut p, Protocol::Tcp, (0xc612_0064, 80), (0xc612_0002, 40000));
        check(&p, ([198, 18, 0, 100], 80), ([198, 18, 0, 2], 40000), 62);
    }

    #[test]
    fn fullnat_rewrite_of_udp_both_directions() {
        let mut p = build(Protocol::Udp, b"hello", 64);
        rewrite(&mut p, Protocol::Udp, (0xc612_010a, 5002), (0xc612_0103, 53));
        check(&p, ([198, 18, 1, 10], 5002), ([198, 18, 1, 3], 53), 63);
        rewrite(&mut p, Protocol::Udp, (0xc612_0064, 53), (0xc612_0002, 40000));
        check(&p, ([198, 18, 0, 100], 53), ([198, 18, 0, 2], 40000), 62);
    }

    #[test]
    fn udp_without_checksum_stays_without() {
        let mut p = build(Protocol::Udp, b"x", 9);
        let hl = 20;
        p[hl + 6] = 0;
        p[hl + 7] = 0;
        rewrite(&mut p, Protocol::Udp, (1, 2), (3, 4));
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
            let proto = if tcp { Protocol::Tcp } else { Protocol::Udp };
            let mut p = build(proto, &payload, ttl);
            rewrite(&mut p, proto, (s, sp), (d, dp));
            check(&p, (s.to_be_bytes(), sp), (d.to_be_bytes(), dp), ttl - 1);
        }
    }
}

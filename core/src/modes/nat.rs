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
        xmit_session(cx, s, false, frame)
    }

    #[inline(always)]
    fn xmit_out(cx: &XmitCx<'_>, s: &Session, frame: &mut [u8]) -> Action {
        xmit_session(cx, s, true, frame)
    }
}

/// FULLNAT's and NAT's transmit of a packet of session `s` from its
/// reply side or its client side ([`rewrite_session`]). Inline in the
/// engine's full step.
#[inline(always)]
pub(super) fn xmit_session(cx: &XmitCx<'_>, s: &Session, out: bool, frame: &mut [u8]) -> Action {
    rewrite_session(frame, cx.proto, cx.tl, s, out);
    Action::Forward { port: cx.port, next_hop: cx.next_hop }
}

/// Rewrites the IPv4 TCP/UDP packet of `tl` bytes in Ethernet frame
/// `frame`, a packet of session `s` from its reply side (`out`: `rip:rport
/// -> lip:lport` becomes `vip:vport -> cip:cport`) or its client side
/// (`cip:cport -> vip:vport` becomes `lip:lport -> rip:rport`): the
/// rewrite with the checksum changes the session worked out when it was
/// made ([`Session::rewrite_change`]), so no old address or port is read.
/// The packet is one the session was found by (its addresses and ports
/// are that side's key; a debug assertion holds it to that). FULLNAT's
/// and NAT's transmit, and the engine's established step
/// (`Engine::established`).
#[inline(always)]
pub(crate) fn rewrite_session(frame: &mut [u8], proto: Protocol, tl: usize, s: &Session, out: bool) {
    let ip = &mut frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + tl];
    debug_assert!(is_side_of(ip, proto, s, out), "the packet is not session {s:?}'s (out: {out})");
    // One rewrite per direction, each reading only its four fields (one
    // rewrite with the fields selected by `out` read all eight).
    if out {
        rewrite_with(ip, proto, (s.vip, s.vport), (s.cip, s.cport), s.rewrite_change(true));
    } else {
        rewrite_with(ip, proto, (s.lip, s.lport), (s.rip, s.rport), s.rewrite_change(false));
    }
}

/// Whether IPv4 packet `ip` (TCP or UDP of protocol `proto`) has the
/// addresses and ports of session `s`'s reply side (`out`) or client
/// side: the packets [`Session::rewrite_change`] is exact for.
fn is_side_of(ip: &[u8], proto: Protocol, s: &Session, out: bool) -> bool {
    let Ok(p) = ipv4::Packet::new_checked(ip) else { return false };
    let l4 = p.payload();
    let ports = match proto {
        Protocol::Tcp | Protocol::Udp if l4.len() >= 4 => {
            (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
        }
        _ => return false,
    };
    let (src, dst) = (u32::from(p.src_addr()), u32::from(p.dst_addr()));
    let key = if out { s.out_key() } else { s.in_key() };
    (src, ports.0, dst, ports.1) == (key.src, key.sport, key.dst, key.dport)
}

/// [`rewrite`] with the checksum changes known beforehand (`ip_change`
/// over the addresses, `l4_change` over the pseudo header's addresses and
/// the ports: [`Session::rewrite_change`]): the same bytes as [`rewrite`]
/// for a packet whose addresses and ports those changes start from (unit
/// and property tests below, checked with etherparse).
#[inline]
pub fn rewrite_with(
    ip: &mut [u8],
    proto: Protocol,
    src: (u32, u16),
    dst: (u32, u16),
    (ip_change, l4_change): (Delta, Delta),
) {
    let mut pkt = ipv4::Packet::new_unchecked(&mut *ip);
    let hl = pkt.header_len();
    pkt.forward_with(src.0, dst.0, ip_change);
    let l4 = &mut ip[hl..];
    match proto {
        Protocol::Tcp => tcp::Packet::new_unchecked(l4).set_ports_with(src.1, dst.1, l4_change),
        Protocol::Udp => udp::Packet::new_unchecked(l4).set_ports_with(src.1, dst.1, l4_change),
        _ => {}
    }
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

    fn build_between(proto: Protocol, src: (u32, u16), dst: (u32, u16), payload: &[u8], ttl: u8) -> Vec<u8> {
        let b = PacketBuilder::ipv4(src.0.to_be_bytes(), dst.0.to_be_bytes(), ttl);
        let mut out = Vec::new();
        match proto {
            Protocol::Tcp => b.tcp(src.1, dst.1, 7, 64240).ack(9).write(&mut out, payload).unwrap(),
            _ => b.udp(src.1, dst.1).write(&mut out, payload).unwrap(),
        }
        out
    }

    /// A session's stored checksum changes rewrite both of its sides as
    /// the rewrite that reads the old fields does, and as etherparse
    /// recomputes (`session`: client, VIP, real server, local side).
    fn session_sides_rewrite_as_recomputed(
        proto: Protocol,
        [c, v, r, l]: [(u32, u16); 4],
        payload: &[u8],
        ttl: u8,
    ) {
        use crate::session::Session;
        let s = Session::new(
            proto,
            c,
            v,
            r,
            l,
            crate::tcp_state::State::Established,
            gw_proto::ForwardMode::FullNat,
            0,
            0,
        );
        for (out, from, to) in [(false, (c, v), (l, r)), (true, (r, l), (v, c))] {
            let mut by_change = build_between(proto, from.0, from.1, payload, ttl);
            let mut by_fields = by_change.clone();
            rewrite_with(&mut by_change, proto, to.0, to.1, s.rewrite_change(out));
            rewrite(&mut by_fields, proto, to.0, to.1);
            assert_eq!(by_change, by_fields, "out: {out}");
            check(&by_change, (to.0 .0.to_be_bytes(), to.0 .1), (to.1 .0.to_be_bytes(), to.1 .1), ttl - 1);
        }
    }

    #[test]
    fn a_sessions_stored_changes_rewrite_both_sides() {
        let (c, v, r, l) =
            ((0xc612_0002, 40000), (0xc612_0064, 80), (0xc612_0102, 8080), (0xc612_010a, 5000));
        for proto in [Protocol::Tcp, Protocol::Udp] {
            session_sides_rewrite_as_recomputed(proto, [c, v, r, l], b"GET / HTTP/1.0\r\n\r\n", 64);
            // NAT: the local side is the client itself.
            session_sides_rewrite_as_recomputed(proto, [c, v, r, c], b"x", 2);
        }
        // A UDP datagram without a checksum keeps none.
        let s = crate::session::Session::new(
            Protocol::Udp,
            c,
            v,
            r,
            l,
            crate::tcp_state::State::Udp,
            gw_proto::ForwardMode::FullNat,
            0,
            0,
        );
        let mut p = build_between(Protocol::Udp, c, v, b"x", 9);
        p[26..28].copy_from_slice(&[0, 0]);
        rewrite_with(&mut p, Protocol::Udp, l, r, s.rewrite_change(false));
        assert_eq!(&p[26..28], &[0, 0]);
    }

    proptest! {
        #[test]
        fn a_sessions_stored_changes_equal_a_full_recompute(
            tcp in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            c in any::<u32>(), cp in 1u16.., v in any::<u32>(), vp in 1u16..,
            r in any::<u32>(), rp in 1u16.., l in any::<u32>(), lp in 1u16..,
            ttl in 2u8..,
        ) {
            let proto = if tcp { Protocol::Tcp } else { Protocol::Udp };
            session_sides_rewrite_as_recomputed(proto, [(c, cp), (v, vp), (r, rp), (l, lp)], &payload, ttl);
        }

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

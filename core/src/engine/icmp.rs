//! ICMP (RFC 792): echo requests to our addresses are answered in place
//! (other ICMP to a port's own address goes to its kernel interface, if it
//! has one: [`super::kernel`]);
//! errors about a live FULLNAT or NAT session are translated back through
//! it (as IPVS's `ip_vs_nat_icmp`); errors about a client packet of a DR or
//! TUN session go to its real server with the session's own transmit, as
//! IPVS's `ip_vs_icmp_xmit` calls `cp->packet_xmit` (DR: new MACs only,
//! TUN: IP-in-IP), so path MTU discovery works for replies that bypass the
//! gateway (a router's "fragmentation needed" about a real server's reply
//! is addressed to the VIP).
//!
//! Invariants: a reply or translated error leaves with valid checksums: the
//! echo reply's ICMP checksum is updated incrementally by
//! [`icmpv4::Packet::make_echo_reply`] (RFC 1624); a translated error's
//! quote is rewritten by [`icmpv4::Packet::rewrite_quoted`]; IPv4 headers
//! whose addresses or TTL change are recomputed, as IPVS does
//! (`ip_send_check`). Errors are never answered with errors (RFC 1812
//! §4.3.2.7), and a translated error routes like a packet (TTL above 1); a
//! forwarded DR/TUN error is handed on like the session's packets (TTL
//! untouched). A quoted TCP sequence number that a PROXY header or
//! SYNPROXY's splice moved is moved back, so that each end sees its own
//! numbers.

use std::net::Ipv4Addr;

use super::{Action, Engine};
use crate::counters::{Drop, Event};
use crate::modes::{self, XmitCx};
use crate::route::Iface;
use crate::session::{Flags, Session};
use crate::tcp_state::Dir;
use crate::wire::{ethernet, icmpv4, ipv4};

/// TTL of the echo replies the gateway originates.
const REPLY_TTL: u8 = 64;

impl Engine {
    /// An ICMP packet (IPv4 header `hl` bytes, total `tl`) received on `iface`.
    pub(super) fn icmp(&mut self, iface: &Iface, frame: &mut [u8], hl: usize, tl: usize) -> Action {
        let l3 = &frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + tl];
        let Ok(icmp) = icmpv4::Packet::new_checked(&l3[hl..]) else {
            return Action::Drop(Drop::IcmpUnhandled);
        };
        if icmp.msg_type().is_error() {
            // As IPVS's ip_vs_in_icmp: a corrupt error is dropped, never
            // forwarded with a checksum made valid by the rewrite.
            if !icmp.verify_checksum() {
                return Action::Drop(Drop::IcmpUnhandled);
            }
            return self.icmp_error(iface, frame, hl, tl);
        }
        let dst = u32::from(ipv4::Packet::new_unchecked(l3).dst_addr());
        if !(self.snap.owns(dst) || self.is_iface_addr(dst)) {
            return Action::Drop(Drop::NotForUs);
        }
        if icmp.msg_type() != icmpv4::Message::EchoRequest {
            // An echo reply to the kernel's ping, a timestamp, ...
            return self.kernel_or_drop(iface, dst, Drop::IcmpUnhandled);
        }
        if !icmp.verify_checksum() {
            return Action::Drop(Drop::IcmpUnhandled);
        }
        let (l2, l3) = frame.split_at_mut(ethernet::HEADER_LEN);
        let mut ip = ipv4::Packet::new_unchecked(&mut l3[..tl]);
        icmpv4::Packet::new_unchecked(ip.payload_mut()).make_echo_reply();
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_ttl(REPLY_TTL);
        ip.fill_checksum();
        let mut eth = ethernet::Frame::new_unchecked(l2);
        let peer = eth.src_addr();
        eth.set_dst_addr(peer);
        eth.set_src_addr(iface.mac);
        self.counters.event(Event::IcmpEchoAnswered, 1);
        Action::Reply { port: iface.port, len: frame.len() }
    }

    /// An ICMP error quoting a packet of a session. FULLNAT or NAT: from the
    /// real-server side it goes to the client as if about the client's own
    /// packet (outer source the VIP, quoted packet client -> VIP); from the
    /// client side it goes to the real server as if about the packet it sent.
    /// DR or TUN: it quotes a reply the real server sent straight to the
    /// client, so it goes to that real server untranslated
    /// ([`Engine::icmp_to_real_server`]).
    fn icmp_error(&mut self, rx: &Iface, frame: &mut [u8], hl: usize, tl: usize) -> Action {
        let ip = &mut frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + tl];
        let Some(q) = icmpv4::Packet::new_unchecked(&ip[hl..]).quoted() else {
            return Action::Drop(Drop::IcmpUnhandled);
        };
        // The quoted packet went q.src -> q.dst; its session knows the other way.
        let back = q.reversed();
        let (i, toward_client) = match self.sessions.lookup_out(&back) {
            Some(i) => (i, true),
            None => match self.sessions.lookup_in(&back) {
                Some(i) => (i, false),
                None if !self.sessions6.is_empty() && self.snap.is_laddr(back.dst) => {
                    return self.nat64_icmp(frame, &back);
                }
                // Maybe about the kernel's own flow (exception path).
                None => {
                    let dst = u32::from(ipv4::Packet::new_unchecked(&*ip).dst_addr());
                    return self.kernel_or_drop(rx, dst, Drop::IcmpUnknownFlow);
                }
            },
        };
        let s = *self.sessions.get(i);
        if !self.cfg.nodest.forwards(&self.snap, s.dest) {
            return Action::Drop(Drop::DestUnavailable);
        }
        if !modes::routed(s.mode) {
            // Found by its client key (DR and TUN sessions have no other).
            return self.icmp_to_real_server(rx, &s, frame, tl);
        }
        let ttl = ipv4::Packet::new_unchecked(&*ip).ttl();
        if ttl <= 1 {
            return Action::Drop(Drop::TtlExceeded);
        }
        let (outer, quoted_src, quoted_dst, to) = if toward_client {
            ((s.vip, s.cip), (s.cip, s.cport), (s.vip, s.vport), s.cip)
        } else {
            ((s.lip, s.rip), (s.rip, s.rport), (s.lip, s.lport), s.rip)
        };
        let Some((port, next_hop)) = self.cfg.routes.lookup(to) else {
            return Action::Drop(Drop::NoRoute);
        };
        if q.proto == ipv4::Protocol::Tcp
            && s.flags.bits() & (Flags::SYNPROXY | Flags::CLIENT_ADDR).bits() != 0
        {
            self.quoted_seq(i, &s, toward_client, &mut ip[hl..]);
        }
        let addr = |(a, p): (u32, u16)| (Ipv4Addr::from(a), p);
        // (Its ICMP checksum covers the sequence number just rewritten.)
        icmpv4::Packet::new_unchecked(&mut ip[hl..]).rewrite_quoted(addr(quoted_src), addr(quoted_dst));
        let mut outer_ip = ipv4::Packet::new_unchecked(&mut *ip);
        outer_ip.set_src_addr(Ipv4Addr::from(outer.0));
        outer_ip.set_dst_addr(Ipv4Addr::from(outer.1));
        outer_ip.set_ttl(ttl - 1);
        outer_ip.fill_checksum();
        self.counters.event(Event::IcmpErrorsTranslated, 1);
        let from = if toward_client { Dir::Output } else { Dir::Input };
        super::conn::count_traffic(&self.counters, (s.dest, s.service), from, tl as u64);
        Action::Forward { port, next_hop }
    }

    /// The quoted TCP sequence number of an error about a packet of
    /// session `i` (`icmp`: the ICMP message) put back in the sequence
    /// space of the end it goes to: a packet toward the real server was
    /// shifted up by a PROXY header ([`crate::client_addr`]), one toward
    /// the client down by SYNPROXY's splice ([`crate::synproxy`]).
    #[cold]
    #[inline(never)]
    fn quoted_seq(&self, i: u32, s: &Session, toward_client: bool, icmp: &mut [u8]) {
        let Some(at) = icmp.get(8).map(|v| 8 + usize::from(v & 0xf) * 4 + 4) else { return };
        let Some(b) = icmp.get_mut(at..at + 4) else { return };
        let seq = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let (isn, len) = self.ca.get(i);
        let e = self.sp.get(i);
        let v = if toward_client && s.flags.client_addr_bits() >= 2 && len != 0 {
            crate::client_addr::unmap(seq, isn.wrapping_add(1), len)
        } else if !toward_client && crate::synproxy::is_synproxy(s.flags, true) && e.spliced {
            seq.wrapping_add(e.off)
        } else {
            seq
        };
        b.copy_from_slice(&v.to_be_bytes());
    }

    /// An ICMP error about a DR or TUN session `s` (`tl` bytes of IPv4),
    /// transmitted toward its real server with the session's mode, as IPVS
    /// forwards it with `cp->packet_xmit`: DR rewrites only the MACs, TUN
    /// wraps the error, untouched, in IP-in-IP to the real server, which
    /// decapsulates it and learns the path MTU toward the client.
    ///
    /// The error is offered to the transmit as DF-clear: an error is never
    /// answered with an error (RFC 1812 §4.3.2.7), so a TUN error too big
    /// for the tunnel is dropped and counted (`drop_tunnel_too_big`), never
    /// answered with "fragmentation needed". Errors are small (Linux quotes
    /// at most 576 bytes in all), so that happens only on an output MTU below
    /// 596.
    fn icmp_to_real_server(&mut self, rx: &Iface, s: &Session, frame: &mut [u8], tl: usize) -> Action {
        let Some((port, next_hop)) = self.cfg.routes.lookup(s.rip) else {
            return Action::Drop(Drop::NoRoute);
        };
        let counters = &*self.counters;
        let proto = ipv4::Protocol::Icmp;
        let (ifaces, snap) = (&self.cfg.ifaces, &*self.snap);
        let cx = XmitCx { ifaces, rx, counters, port, next_hop, proto, tl, dont_frag: false, snap };
        let action = modes::xmit(s.mode, false, &cx, s, frame);
        if !matches!(action, Action::Drop(_)) {
            counters.event(Event::IcmpErrorsForwarded, 1);
            super::conn::count_traffic(counters, (s.dest, s.service), Dir::Input, tl as u64);
        }
        action
    }
}

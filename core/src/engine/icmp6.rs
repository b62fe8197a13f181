//! ICMPv6 errors (RFC 4443) about IPv6 sessions, and Packet Too Big from
//! the gateway itself: the IPv6 side of [`super::icmp`] and of the IPv4
//! path's "fragmentation needed" ([`super::frag::too_big`]).
//!
//! An error (destination unreachable, packet too big, time exceeded,
//! parameter problem) whose quote ([`icmpv6::Packet::quoted`], the
//! extension headers walked) names a TCP/UDP flow of an IPv6 session is
//! handled as IPv4's errors are:
//!
//! - FULLNAT66 and NAT66: from the real-server side it goes to the client
//!   as if about the client's own packet (outer VIP -> client, quote
//!   client:cport -> VIP:vport); from the client side to the real server as
//!   if about its reply (outer LIP -> RIP, quote RIP:rport -> LIP:lport).
//!   The quote's TCP/UDP checksum is updated incrementally
//!   ([`icmpv6::Packet::rewrite_quoted`]); the ICMPv6 checksum, which covers
//!   the pseudo header, is computed anew over the message (at most 1280
//!   bytes: the error path, not the packet path). The hop limit is
//!   decremented (an error with hop limit 1 is `drop_ttl_exceeded`).
//! - DR6 and TUN6: the error quotes a reply the real server sent straight
//!   to the client (VIP -> client, found by the client key); it goes to
//!   that real server untranslated, with the session's own transmit (DR:
//!   the real server's MAC, TUN: IPv6-in-IPv6), as IPVS's
//!   `ip_vs_icmp_xmit_v6` does, so its path MTU toward the client drops.
//! - NAT64: an error from the IPv6 side (a router between the client and
//!   the gateway) about a reply the gateway translated (VIP -> client)
//!   becomes the ICMPv4 error toward the IPv4 real server, quoting its own
//!   packet (RIP:rport -> LIP:lport): [`crate::nat64::to_ipv4`] maps the
//!   type and code, and Packet Too Big's MTU - 20 (RFC 7915 §5.2, capped
//!   by the IPv4 output port's MTU).
//!
//! An error about a reply of a spliced SYNPROXY session (toward the real
//! server, either family) quotes the server's own sequence number again
//! ([`super::synproxy6::unsplice_quote`], as IPv4's `quoted_seq`).
//!
//! An error behind extension headers or fragmented is not looked at
//! (`drop_ipv6_not_handled`, as before); one that quotes no TCP/UDP ports
//! is `drop_icmp_unhandled`; one to a VIP or local address that matches no
//! session `drop_icmp_unknown_flow`; one to any other address (the port's
//! own: the kernel's, if the port has one) `drop_ipv6_not_handled`. Errors
//! are not rate limited here, as on the IPv4 path: each costs one lookup
//! and is forwarded at most once.
//!
//! Packet Too Big from the gateway ([`too_big_in_place`]): an IPv6 packet of
//! a session over the output port's MTU (TUN6: the MTU less the 40-byte
//! outer header) is turned into a Packet Too Big from the receiving port's
//! IPv6 address back to its sender (the frame's source MAC), quoting as
//! much of it as fits in 1280 bytes, as IPv4's DF packets get
//! "fragmentation needed"; the MTU reported is never below 1280 (RFC 8200
//! §5). NAT64's IPv4 -> IPv6 direction, 20 bytes longer, answers an IPv4
//! packet with DF set with "fragmentation needed" (MTU - 20); without DF
//! it is dropped (`drop_nat64_too_big`: RFC 7915 §4 would add an IPv6
//! fragment header, not built).

use std::net::{Ipv4Addr, Ipv6Addr};

use gw_proto::ForwardMode;

use super::nat64::{v4_of, Pending};
use super::{Action, Engine};
use crate::counters::{Drop, Event, WorkerCounters};
use crate::nat64::{Ends, To4};
use crate::route::Iface;
use crate::session::ipv6::{FlowKey6, Session6};
use crate::session::Flags;
use crate::tcp_state::Dir;
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::icmpv6::{self, Message};
use crate::wire::ipv4::Protocol;
use crate::wire::ipv6::{self, NextHeader};

/// Hop limit of the Packet Too Big the gateway sends (Linux's default).
const PTB_HOP_LIMIT: u8 = 64;

/// Bytes in front of the quote of a Packet Too Big: IPv6 and ICMPv6 headers.
const PTB_HEADERS: usize = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;

impl Engine {
    /// An ICMPv6 error of `icmp_len` bytes (checksum verified, right after
    /// the fixed IPv6 header).
    pub(super) fn icmp6_error(&mut self, frame: &mut [u8], icmp_len: usize) -> Action {
        let at = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
        let icmp = icmpv6::Packet::new_unchecked(&frame[at..at + icmp_len]);
        let (Some((proto, sport, dport)), Some((q, qt))) = (icmp.quoted_ports(), icmp.quoted()) else {
            return Action::Drop(Drop::IcmpUnhandled);
        };
        // The quoted TCP sequence number, from the ICMPv6 header.
        let seq_at = icmpv6::HEADER_LEN + qt.offset + 4;
        let proto = if proto == NextHeader::Tcp { Protocol::Tcp } else { Protocol::Udp };
        // The quoted packet went src -> dst; its session knows the other way.
        let (qsrc, qdst) = (u128::from(q.src_addr()), u128::from(q.dst_addr()));
        let back = FlowKey6 { proto, src: qdst, sport: dport, dst: qsrc, dport: sport };
        let dst = ipv6::Packet::new_unchecked(&frame[ethernet::HEADER_LEN..]).dst_addr();
        let (i, toward_client) = match self.sessions6.lookup_out(&back) {
            Some(i) => (i, true),
            None => match self.sessions6.lookup_in(&back) {
                Some(i) => (i, false),
                None if self.snap.owns6(u128::from(dst)) => return Action::Drop(Drop::IcmpUnknownFlow),
                None => return Action::Drop(Drop::Ipv6NotHandled),
            },
        };
        let s = *self.sessions6.get(i);
        if !self.cfg.nodest.forwards(&self.snap, s.dest) {
            return Action::Drop(Drop::DestUnavailable);
        }
        if s.flags.contains(Flags::NO_OUT) {
            // DR6, TUN6: found by the client key (they have no other).
            return self.icmp6_to_real_server(&s, (ipv6::HEADER_LEN + icmp_len) as u64);
        }
        if !toward_client && crate::synproxy::is_synproxy(s.flags, proto == Protocol::Tcp) {
            // A reply the splice moved into the client's sequence space.
            super::synproxy6::unsplice_quote(&self.sp6, i, &mut frame[at..at + icmp_len]);
        }
        let mut ip = ipv6::Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..]);
        let hop_limit = ip.hop_limit();
        if hop_limit <= 1 {
            return Action::Drop(Drop::TtlExceeded);
        }
        if let Some(rip4) = v4_of(s.rip) {
            return self.icmp6_to_nat64_server(&s, rip4, frame, (ipv6::HEADER_LEN + icmp_len) as u64);
        }
        let v6 = |(a, p): (u128, u16)| (Ipv6Addr::from(a), p);
        let (outer, quoted_src, quoted_dst, to) = if toward_client {
            ((s.vip, s.cip), (s.cip, s.cport), (s.vip, s.vport), s.cip)
        } else {
            ((s.lip, s.rip), (s.rip, s.rport), (s.lip, s.lport), s.rip)
        };
        let Some((port, next_hop)) = self.cfg.routes.lookup6(to) else {
            return Action::Drop(Drop::NoRoute);
        };
        let (src, dst) = (Ipv6Addr::from(outer.0), Ipv6Addr::from(outer.1));
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
        ip.set_hop_limit(hop_limit - 1);
        if toward_client && proto == Protocol::Tcp {
            let f = &mut frame[at..at + icmp_len];
            crate::client_addr::unmap_quoted(&self.ca, self.ca.slot6(i), s.flags, f, seq_at);
        }
        let mut icmp = icmpv6::Packet::new_unchecked(&mut frame[at..at + icmp_len]);
        icmp.rewrite_quoted(v6(quoted_src), v6(quoted_dst));
        icmp.fill_checksum(src, dst);
        self.counters.event(Event::IcmpErrorsTranslated, 1);
        let from = if toward_client { Dir::Output } else { Dir::Input };
        let bytes = (ipv6::HEADER_LEN + icmp_len) as u64;
        super::conn::count_traffic(&self.counters, (s.dest, s.service), from, bytes);
        Action::Forward6 { port, next_hop }
    }

    /// An ICMPv6 error about a DR6 or TUN6 session `s`, untouched toward
    /// its real server: DR to its MAC, TUN wrapped in IPv6 from the output
    /// port's address.
    fn icmp6_to_real_server(&mut self, s: &Session6, bytes: u64) -> Action {
        let Some((port, next_hop)) = self.cfg.routes.lookup6(s.rip) else {
            return Action::Drop(Drop::NoRoute);
        };
        self.counters.event(Event::IcmpErrorsForwarded, 1);
        super::conn::count_traffic(&self.counters, (s.dest, s.service), Dir::Input, bytes);
        if s.mode != ForwardMode::Tunnel {
            return Action::Forward6 { port, next_hop };
        }
        let Some(src) = self.iface(port).and_then(Iface::ipv6) else {
            return Action::Drop(Drop::NoRoute);
        };
        self.encap6 = (u128::from(src), s.rip);
        Action::Encap6 { port, next_hop, tun: self.snap.dest_tunnel(u32::from(s.dest)) }
    }

    /// An ICMPv6 error from the client side about a reply of NAT64 session
    /// `s` (IPv4 server `rip4`): the worker translates it into the ICMPv4
    /// error toward the server, quoting the server's own packet. The hop
    /// limit is decremented here (the translation copies it into the TTL).
    fn icmp6_to_nat64_server(&mut self, s: &Session6, rip4: u32, frame: &mut [u8], bytes: u64) -> Action {
        let Some((port, next_hop)) = self.cfg.routes.lookup(rip4) else {
            return Action::Drop(Drop::NoRoute);
        };
        let mut ip = ipv6::Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..]);
        let h = ip.hop_limit();
        ip.set_hop_limit(h - 1);
        let (lip, rip) = (Ipv4Addr::from(s.lip as u32), Ipv4Addr::from(rip4));
        self.nat64 = Pending::To4(To4 {
            ends: Ends { src: lip, sport: 0, dst: rip, dport: 0 },
            inner: Some(Ends { src: rip, sport: s.rport, dst: lip, dport: s.lport }),
            ident: 0,
            mtu: self.iface(port).map_or(u16::MAX, |i| i.mtu),
            l4_change: None,
        });
        self.counters.event(Event::IcmpErrorsTranslated, 1);
        super::conn::count_traffic(&self.counters, (s.dest, s.service), Dir::Input, bytes);
        Action::Nat64To4 { port, next_hop }
    }
}

/// The answer to an IPv6 packet of `len` bytes received on `rx` that does
/// not fit the output MTU (`mtu`, for the packet as received): Packet Too
/// Big back out `rx` (`icmpv6_too_big_sent`), or `drop_cannot_fragment`
/// if it cannot be built.
#[cold]
#[inline(never)]
pub(super) fn too_big(
    counters: &WorkerCounters,
    rx: &Iface,
    frame: &mut [u8],
    len: usize,
    mtu: u16,
) -> Action {
    let built = rx.ipv6().and_then(|own| too_big_in_place(frame, len, rx.mac, own, mtu));
    let Some(len) = built else {
        return Action::Drop(Drop::CannotFragment);
    };
    counters.event(Event::Icmpv6TooBigSent, 1);
    Action::Reply { port: rx.port, len }
}

/// Turns the frame (an IPv6 packet of `len` bytes) into an ICMPv6 Packet
/// Too Big (RFC 4443 §3.2) reporting `mtu` (at least 1280), from
/// `our_mac`/`our_ip` back to the packet's source and the frame's source
/// MAC, quoting as much of the packet as fits in 1280 bytes. Returns the
/// new frame length, or `None` if the frame has no room for it or its
/// source is not one to answer (unspecified, multicast).
pub(super) fn too_big_in_place(
    frame: &mut [u8],
    len: usize,
    our_mac: MacAddr,
    our_ip: Ipv6Addr,
    mtu: u16,
) -> Option<usize> {
    let eth = ethernet::HEADER_LEN;
    let (peer, sender) = {
        let f = ethernet::Frame::new_checked(&frame[..]).ok()?;
        let ip = ipv6::Packet::new_checked(&frame[eth..]).ok()?;
        (f.src_addr(), ip.src_addr())
    };
    if sender.is_unspecified() || sender.is_multicast() {
        return None;
    }
    let quoted = len.min(usize::from(ipv6::MIN_MTU) - PTB_HEADERS);
    let total = PTB_HEADERS + quoted;
    if frame.len() < eth + total {
        return None;
    }
    frame.copy_within(eth..eth + quoted, eth + PTB_HEADERS);
    super::ipv6::set_macs(&mut frame[..eth], our_mac, peer);
    let mut ip = ipv6::Packet::new_unchecked(&mut frame[eth..eth + ipv6::HEADER_LEN]);
    super::ipv6::reply_header(&mut ip, our_ip, sender, (icmpv6::HEADER_LEN + quoted) as u16, PTB_HOP_LIMIT);
    ip.set_next_header(NextHeader::Icmpv6);
    let mut icmp = icmpv6::Packet::new_unchecked(&mut frame[eth + ipv6::HEADER_LEN..eth + total]);
    icmp.set_msg_type(Message::PacketTooBig);
    icmp.set_code(0);
    icmp.set_mtu(u32::from(mtu.max(ipv6::MIN_MTU)));
    icmp.fill_checksum(our_ip, sender);
    Some(eth + total)
}

//! IPv6 on a dual-stack port: neighbour discovery ([`super::nd`]: NS for
//! our addresses answered, neighbours learnt from NS/NA) and echo requests
//! to the port's IPv6 address answered (RFC 4443 §4.2), in place, or once
//! reassembled when it came in fragments ([`super::frag`]); TCP/UDP
//! of IPv6 services ([`super::ipv6_fwd`]); ICMPv6 errors about a session
//! ([`super::icmp6`]). Anything else is `drop_ipv6_not_handled` (the
//! kernel's, if the port has a kernel interface).
//!
//! Checks, in order: the IPv6 header and its extension-header chain
//! (`drop_ipv6_malformed`); a multicast source, or for TCP/UDP one in
//! `::/64` (`drop_bad_source_addr`, [`super::ipv6_fwd::bad_source6`]);
//! fragments to a VIP, a local address or (without a kernel interface)
//! the port's address go to reassembly, those to a VIP or local address
//! once their source passes the port's reverse-path filter
//! (`drop_reverse_path`, [`crate::route::Routes::reverse_path_ok6`]);
//! TCP/UDP take [`super::ipv6_fwd`]'s session step, which checks the
//! reverse path by the session's remembered route (the search for a
//! packet without a session); only ICMPv6 right after the fixed
//! header is handled (a packet with other extension headers is not ours to
//! answer); the ICMPv6 checksum; then per message (an error's source
//! passes the reverse-path filter first; neighbour discovery and echo to
//! on-link sources are the link's own, as ARP is IPv4's).
//!
//! An echo reply to an on-link source (link-local, or on the port's
//! prefix) goes back to the frame's source MAC, no neighbour lookup. One
//! to an off-link source is routed like any IPv6 packet: the route back
//! ([`crate::route::Routes::lookup6`], `drop_no_route` without one) must
//! pass the port's reverse-path filter (`drop_reverse_path`), and the
//! worker resolves the next hop by neighbour discovery
//! ([`Action::Forward6`]).

use std::net::Ipv6Addr;

use super::nd::{self, Received};
use super::{Action, Engine};
use crate::counters::{Drop, Event};
use crate::route::Iface;
use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::icmpv6::{self, Message, NdRepr};
use crate::wire::ipv6::{self, NextHeader};

/// Hop limit of echo replies (Linux's default `hop_limit`).
const ECHO_HOP_LIMIT: u8 = 64;

/// The all-nodes group's MAC (`ff02::1`, RFC 2464 §7).
const ALL_NODES_MAC: MacAddr = MacAddr([0x33, 0x33, 0, 0, 0, 1]);

/// Whether `iface` has an IPv6 address and `mac` is a group neighbour
/// discovery uses: a solicited-node group (`33:33:ff:xx:xx:xx`), where
/// solicitations for the port's address and the gateway's other IPv6
/// addresses arrive (RFC 4861 §7.2.2; the engine filters by target), or
/// all-nodes, where unsolicited advertisements arrive (§7.2.6).
pub(super) fn nd_group(iface: &Iface, mac: MacAddr) -> bool {
    iface.addr6.is_some() && (mac.0[..3] == [0x33, 0x33, 0xff] || mac == ALL_NODES_MAC)
}

impl Engine {
    /// The step of IPv6 frame `frame` of a burst received on `rx` (its
    /// interface looked up once per burst), which the stages leave without
    /// a record: a TCP/UDP packet right after the header, to the port's
    /// MAC, from a port with an IPv6 address, goes straight to its session
    /// step ([`Engine::ipv6_l4_checked`]), the step [`Engine::process`]
    /// reaches for it through the port lookup and the dispatches; `None`
    /// for any other frame, unchanged (the caller then runs
    /// [`Engine::process`]). IPv6's entry beside IPv4's
    /// [`Engine::established`] (issues 14 and 17). The session step stays
    /// out of line: inlined here (in the worker's call for frames without
    /// a record) it took more instructions per packet, not fewer.
    #[inline(always)]
    pub fn ipv6_staged(&mut self, now: u64, rx: &Iface, frame: &mut [u8]) -> Option<Action> {
        if rx.addr6.is_none()
            || frame.get(..6) != Some(&rx.mac.0[..])
            || frame.get(12..14) != Some(&u16::from(EtherType::Ipv6).to_be_bytes())
        {
            return None;
        }
        let p = super::ipv6_fwd::l4_info_plain(frame)?;
        let action = self.ipv6_l4_checked(now, rx, frame, p);
        Some(self.unhandled6_to_kernel(rx, action))
    }

    /// `action`, the IPv6 step's for a frame received on `rx`, or the
    /// kernel's when the dataplane does not answer the frame (the kernel's
    /// own link-local ND, other ICMPv6, TCP/UDP to no service) and `rx`
    /// has a kernel interface.
    #[inline(always)]
    pub(super) fn unhandled6_to_kernel(&self, rx: &Iface, action: Action) -> Action {
        match action {
            Action::Drop(Drop::Ipv6NotHandled | Drop::NotForUs) if self.has_kernel(rx) => {
                Action::Kernel { port: rx.port }
            }
            action => action,
        }
    }

    /// An IPv6 frame received on `iface` (which has an IPv6 address).
    pub(super) fn ipv6(&mut self, now: u64, iface: &Iface, frame: &mut [u8]) -> Action {
        let Some(own) = iface.ipv6() else {
            return Action::Drop(Drop::UnsupportedEthertype);
        };
        // TCP/UDP right after the header (most packets): the ladder's
        // outcome for it, without the ladder.
        if let Some(p) = super::ipv6_fwd::l4_info_plain(frame) {
            return self.ipv6_l4_inline(now, iface, frame, &p);
        }
        let l3 = &frame[ethernet::HEADER_LEN..];
        let Ok(ip) = ipv6::Packet::new_checked(l3) else {
            return Action::Drop(Drop::Ipv6Malformed);
        };
        let Ok(t) = ip.transport() else {
            return Action::Drop(Drop::Ipv6Malformed);
        };
        let (src, dst, hop_limit) = (ip.src_addr(), ip.dst_addr(), ip.hop_limit());
        if src.is_multicast() {
            return Action::Drop(Drop::BadSourceAddr);
        }
        // `::/64` (loopback, IPv4-mapped or -compatible) is never a source on
        // the wire, for any packet (RFC 4291 §2.5.3, IPv4's 127/8); the
        // unspecified address only in neighbour discovery's DAD probes,
        // which `nd` ignores.
        let dad = src.is_unspecified() && t.protocol == NextHeader::Icmpv6 && t.fragment.is_none();
        if super::ipv6_fwd::bad_source6(u128::from(src)) && !dad {
            return Action::Drop(Drop::BadSourceAddr);
        }
        // Sent to us on its way elsewhere: neither a VIP's packet nor ours.
        if t.routing_left {
            return Action::Drop(Drop::Ipv6RoutingHeader);
        }
        if let Some(f) = t.fragment {
            if self.snap.owns6(u128::from(dst)) || self.snap.is_masq_addr6(u128::from(src)) {
                // The reverse path before reassembly, as IPv4's: no
                // fragment buffer held for a spoofed source.
                if !self.cfg.routes.reverse_path_ok6(u128::from(src), iface) {
                    return Action::Drop(Drop::ReversePath);
                }
                return self.fragment6(now, iface, frame, &t, f);
            }
        }
        if matches!(t.protocol, NextHeader::Tcp | NextHeader::Udp) && t.fragment.is_none() {
            return self.ipv6_l4(now, iface, frame, &t);
        }
        if let Some(f) = t.fragment {
            if self.reassembles_for_port(iface, dst) {
                if !self.cfg.routes.reverse_path_ok6(u128::from(src), iface) {
                    return Action::Drop(Drop::ReversePath);
                }
                return self.fragment6(now, iface, frame, &t, f);
            }
        }
        if t.protocol != NextHeader::Icmpv6 || t.offset != ipv6::HEADER_LEN || t.fragment.is_some() {
            return Action::Drop(Drop::Ipv6NotHandled);
        }
        let icmp_len = usize::from(ip.payload_len());
        let Ok(icmp) = icmpv6::Packet::new_checked(ip.upper_layer(&t)) else {
            return Action::Drop(Drop::Ipv6Malformed);
        };
        if !icmp.verify_checksum(src, dst) {
            return Action::Drop(Drop::Ipv6Malformed);
        }
        match icmp.msg_type() {
            Message::NeighborSolicit | Message::NeighborAdvert => {
                let Ok(repr) = NdRepr::parse(&icmp) else {
                    return Action::Drop(Drop::NdInvalid);
                };
                self.nd(iface, frame, Received { src, dst, hop_limit, icmp_len }, repr)
            }
            // The port's address, and the IPv6 VIPs and local addresses.
            Message::EchoRequest if (dst == own || self.snap.owns6(u128::from(dst))) && icmp.code() == 0 => {
                self.echo6(iface, frame, src, dst, icmp_len)
            }
            // About a session's packet ([`super::icmp6`]).
            // The reverse path first, as IPv4's ICMP errors: an error
            // "from a router" on the wrong side cannot end a session.
            m if m.is_error() => {
                if src.is_unspecified() {
                    return Action::Drop(Drop::BadSourceAddr);
                }
                if !self.cfg.routes.reverse_path_ok6(u128::from(src), iface) {
                    return Action::Drop(Drop::ReversePath);
                }
                self.icmp6_error(frame, icmp_len)
            }
            _ => Action::Drop(Drop::Ipv6NotHandled),
        }
    }

    /// Whether a fragment to `dst` is one to the port's own address that
    /// the dataplane reassembles (when no kernel interface takes it, as
    /// IPv4's): an echo request larger than the path, answered once whole
    /// ([`Engine::echo6`]; the worker sends the reply as fragments: to an
    /// on-link source of the port's MTU with the request's identification,
    /// routed ones no larger than the largest fragment received).
    fn reassembles_for_port(&self, iface: &Iface, dst: Ipv6Addr) -> bool {
        iface.ipv6() == Some(dst) && !self.has_kernel(iface)
    }

    /// Turns the echo request from `src` to `own` in `frame` into the
    /// reply, sent back to the frame's source MAC if `src` is on-link,
    /// else routed.
    fn echo6(
        &mut self,
        iface: &Iface,
        frame: &mut [u8],
        src: Ipv6Addr,
        own: Ipv6Addr,
        icmp_len: usize,
    ) -> Action {
        let (l2, l3) = frame.split_at_mut(ethernet::HEADER_LEN);
        let to_mac = ethernet::Frame::new_unchecked(&*l2).src_addr();
        if !to_mac.is_unicast() || src.is_unspecified() {
            return Action::Drop(Drop::BadSourceAddr);
        }
        let routed = if nd::on_link(iface, src) {
            None
        } else {
            let Some(hop) = self.cfg.routes.lookup6(u128::from(src)) else {
                return Action::Drop(Drop::NoRoute);
            };
            if !self.cfg.routes.reverse_path_ok6(u128::from(src), iface) {
                return Action::Drop(Drop::ReversePath);
            }
            Some(hop)
        };
        let mut ip = ipv6::Packet::new_unchecked(&mut *l3);
        reply_header(&mut ip, own, src, icmp_len as u16, ECHO_HOP_LIMIT);
        let body = &mut l3[ipv6::HEADER_LEN..ipv6::HEADER_LEN + icmp_len];
        icmpv6::Packet::new_unchecked(body).make_echo_reply();
        self.counters.event(Event::Icmpv6EchoAnswered, 1);
        let len = ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmp_len;
        match routed {
            // The worker resolves the next hop and sets the MACs.
            Some((port, next_hop)) => Action::Forward6 { port, next_hop },
            None => {
                set_macs(l2, iface.mac, to_mac);
                Action::Reply { port: iface.port, len }
            }
        }
    }
}

/// Turns the received header into the reply's: `src -> dst`, traffic class
/// and flow label 0, the given payload length and hop limit (next header
/// stays ICMPv6).
pub(super) fn reply_header(
    ip: &mut ipv6::Packet<&mut [u8]>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    len: u16,
    hop_limit: u8,
) {
    ip.set_traffic_class(0);
    ip.set_flow_label(0);
    ip.set_payload_len(len);
    ip.set_hop_limit(hop_limit);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
}

pub(super) fn set_macs(l2: &mut [u8], src: MacAddr, dst: MacAddr) {
    let mut eth = ethernet::Frame::new_unchecked(l2);
    eth.set_src_addr(src);
    eth.set_dst_addr(dst);
}

#[cfg(test)]
pub(crate) mod tests;

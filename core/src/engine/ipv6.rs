//! IPv6 on a dual-stack port: neighbour solicitations for the port's IPv6
//! address are answered with an advertisement (RFC 4861 §7.2.4) and echo
//! requests to it with an echo reply (RFC 4443 §4.2), both in place.
//! Nothing else is handled yet (`drop_ipv6_not_handled`): IPv6 is not
//! forwarded, and learning neighbours from NS/NA waits for an IPv6
//! neighbour table (issue 17; see docs/architecture.md).
//!
//! Checks, in order: the IPv6 header and its extension-header chain
//! (`drop_ipv6_malformed`); only ICMPv6 right after the fixed header is
//! handled (a packet with extension headers or fragmented is not ours to
//! answer yet); the ICMPv6 checksum; then per message. A neighbour
//! solicitation must pass RFC 4861 §7.1.1 (hop limit 255, code 0, target
//! not multicast, options of non-zero length) and come from a link-local
//! address or one in the port's IPv6 subnet, the anti-flood rule ARP has
//! (`drop_nd_invalid`); one from `::` (duplicate address detection) is not
//! answered: the port's address is static and not defended.
//!
//! The answer goes back to the sender's link-layer address: the NS's source
//! link-layer option (the frame's source MAC if there is none), or the
//! frame's source MAC for an echo request, so no neighbour lookup is needed.

use std::net::Ipv6Addr;

use super::{Action, Engine};
use crate::counters::{Drop, Event};
use crate::route::Iface;
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::icmpv6::{self, Message, NdRepr};
use crate::wire::ipv6::{self, NextHeader};

/// Hop limit of echo replies (Linux's default `hop_limit`).
const ECHO_HOP_LIMIT: u8 = 64;

/// Whether `mac` is the solicited-node multicast MAC of the port's IPv6
/// address (where neighbour solicitations for it arrive, RFC 4861 §7.2.2).
pub(super) fn solicited_for(iface: &Iface, mac: MacAddr) -> bool {
    iface.ipv6().is_some_and(|a| mac == ipv6::multicast_mac(ipv6::solicited_node(a)))
}

/// Whether `a` is link-local unicast (fe80::/10, RFC 4291 §2.5.6).
fn link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

impl Engine {
    /// An IPv6 frame received on `iface` (which has an IPv6 address).
    pub(super) fn ipv6(&mut self, iface: &Iface, frame: &mut [u8]) -> Action {
        let Some(own) = iface.ipv6() else {
            return Action::Drop(Drop::UnsupportedEthertype);
        };
        let (l2, l3) = frame.split_at_mut(ethernet::HEADER_LEN);
        let Ok(ip) = ipv6::Packet::new_checked(&*l3) else {
            return Action::Drop(Drop::Ipv6Malformed);
        };
        let Ok(t) = ip.transport() else {
            return Action::Drop(Drop::Ipv6Malformed);
        };
        let (src, dst, hop_limit) = (ip.src_addr(), ip.dst_addr(), ip.hop_limit());
        if src.is_multicast() {
            return Action::Drop(Drop::BadSourceAddr);
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
            Message::NeighborSolicit => {
                if hop_limit != icmpv6::ND_HOP_LIMIT || src.is_unspecified() {
                    return Action::Drop(Drop::NdInvalid);
                }
                let Ok(NdRepr::Solicit { target, lladdr }) = NdRepr::parse(&icmp) else {
                    return Action::Drop(Drop::NdInvalid);
                };
                if target.is_multicast() || !(link_local(src) || iface.contains6(src)) {
                    return Action::Drop(Drop::NdInvalid);
                }
                if target != own {
                    return Action::Drop(Drop::NotForUs);
                }
                let na = NdRepr::Advert {
                    flags: icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE,
                    target: own,
                    // The option only where the NS made room for it (it
                    // had one): the reply is built in the same buffer.
                    lladdr: lladdr.map(|_| iface.mac),
                };
                let na_len = na.buffer_len();
                if na_len > icmp_len {
                    return Action::Drop(Drop::NdInvalid);
                }
                let to_mac = lladdr.unwrap_or_else(|| ethernet::Frame::new_unchecked(&*l2).src_addr());
                let to_mac = if to_mac.is_unicast() { to_mac } else { return Action::Drop(Drop::NdInvalid) };
                let mut ip = ipv6::Packet::new_unchecked(&mut *l3);
                reply_header(&mut ip, own, src, na_len as u16, icmpv6::ND_HOP_LIMIT);
                let body = &mut l3[ipv6::HEADER_LEN..ipv6::HEADER_LEN + na_len];
                if na.emit(&mut icmpv6::Packet::new_unchecked(body), own, src).is_err() {
                    return Action::Drop(Drop::NdInvalid);
                }
                set_macs(l2, iface.mac, to_mac);
                self.counters.event(Event::NdSolicitsAnswered, 1);
                Action::Reply { port: iface.port, len: ethernet::HEADER_LEN + ipv6::HEADER_LEN + na_len }
            }
            Message::EchoRequest if dst == own && icmp.code() == 0 => {
                let eth = ethernet::Frame::new_unchecked(&*l2);
                let to_mac = eth.src_addr();
                if !to_mac.is_unicast() || src.is_unspecified() {
                    return Action::Drop(Drop::BadSourceAddr);
                }
                let mut ip = ipv6::Packet::new_unchecked(&mut *l3);
                reply_header(&mut ip, own, src, icmp_len as u16, ECHO_HOP_LIMIT);
                let body = &mut l3[ipv6::HEADER_LEN..ipv6::HEADER_LEN + icmp_len];
                icmpv6::Packet::new_unchecked(body).make_echo_reply();
                set_macs(l2, iface.mac, to_mac);
                self.counters.event(Event::Icmpv6EchoAnswered, 1);
                Action::Reply { port: iface.port, len: ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmp_len }
            }
            _ => Action::Drop(Drop::Ipv6NotHandled),
        }
    }
}

/// Turns the received header into the reply's: `src -> dst`, traffic class
/// and flow label 0, the given payload length and hop limit (next header
/// stays ICMPv6).
fn reply_header(ip: &mut ipv6::Packet<&mut [u8]>, src: Ipv6Addr, dst: Ipv6Addr, len: u16, hop_limit: u8) {
    ip.set_traffic_class(0);
    ip.set_flow_label(0);
    ip.set_payload_len(len);
    ip.set_hop_limit(hop_limit);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
}

fn set_macs(l2: &mut [u8], src: MacAddr, dst: MacAddr) {
    let mut eth = ethernet::Frame::new_unchecked(l2);
    eth.set_src_addr(src);
    eth.set_dst_addr(dst);
}

#[cfg(test)]
mod tests;

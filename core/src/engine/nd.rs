//! Neighbour discovery (RFC 4861) on a dual-stack port: solicitations for
//! our addresses are answered in place, solicitations and advertisements
//! from valid neighbours are learnt by the worker ([`Action::Nd`]), with
//! ARP's anti-flood rules ([`super::arp`], [`crate::neigh`]).
//!
//! A neighbour solicitation must pass RFC 4861 §7.1.1 (hop limit 255, so
//! it was not forwarded; code 0; target not multicast; options of non-zero
//! length) and come from a link-local address or one on the port's IPv6
//! prefix: an off-link source is dropped (`drop_nd_invalid`), so no
//! stranger gets an entry. One from `::` (duplicate address detection) is
//! not answered: for one of our addresses it is `drop_nd_invalid` (they
//! are static and not defended), for a neighbour's own `drop_not_for_us`. A
//! solicitation for one of our addresses ([`Engine::answers_nd_for`]) is
//! answered with a solicited advertisement and, if it carries the sender's
//! link-layer address, makes (or refreshes) the sender's entry, as an ARP
//! request to us does; for another target it is `drop_not_for_us` (or the
//! kernel's, on a port with a kernel interface).
//!
//! A neighbour advertisement must pass §7.1.2 (hop limit 255, code 0,
//! target not multicast, the solicited flag clear if sent to a multicast
//! group), come from a link-local or on-prefix source, be for an on-link
//! target, and carry the target's link-layer address; then it only
//! refreshes or completes an entry the worker has (the answer to our
//! solicitation, or an unsolicited advertisement of a known neighbour),
//! never makes one (Linux `ndisc_notify`/`arp_accept=0` alike); with the
//! override flag clear it does not change a known neighbour's MAC
//! (§7.2.5).

use std::net::Ipv6Addr;

use super::{Action, Engine};
use crate::counters::{Drop, Event};
use crate::route::Iface;
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::icmpv6::{self, NdRepr};
use crate::wire::ipv6;

/// Whether `a` is link-local unicast (fe80::/10, RFC 4291 §2.5.6).
#[inline]
pub(super) fn link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Whether `a` is a neighbour on `iface`'s link: link-local, or on the
/// port's IPv6 prefix.
#[inline]
pub(super) fn on_link(iface: &Iface, a: Ipv6Addr) -> bool {
    link_local(a) || iface.contains6(a)
}

/// What [`Engine::nd`] reads of the received packet.
pub(super) struct Received {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    /// Bytes of ICMPv6 (the IPv6 payload), room for a reply in place.
    pub icmp_len: usize,
}

impl Engine {
    /// Whether neighbour solicitations for `target` arriving on `iface` are
    /// ours to answer: the port's own IPv6 address, or an IPv6 VIP or local
    /// address that lies on the port's prefix (or on no port's prefix,
    /// e.g. a routed VIP), as ARP's rule ([`Engine::answers_arp_for`]).
    fn answers_nd_for(&self, iface: &Iface, target: Ipv6Addr) -> bool {
        iface.ipv6() == Some(target)
            || (self.snap.owns6(u128::from(target))
                && (iface.contains6(target) || !self.cfg.ifaces.iter().any(|i| i.contains6(target))))
    }

    /// A neighbour solicitation or advertisement `nd`, checksum verified,
    /// in `frame` received on `iface`.
    pub(super) fn nd(&mut self, iface: &Iface, frame: &mut [u8], rx: Received, nd: NdRepr) -> Action {
        let Received { src, dst, hop_limit, icmp_len } = rx;
        if hop_limit != icmpv6::ND_HOP_LIMIT {
            return Action::Drop(Drop::NdInvalid);
        }
        if src.is_unspecified() {
            // Duplicate address detection: a neighbour's own, or a claim on
            // one of ours, which is static and not defended.
            return match nd {
                NdRepr::Solicit { target, .. } if !self.answers_nd_for(iface, target) => {
                    Action::Drop(Drop::NotForUs)
                }
                _ => Action::Drop(Drop::NdInvalid),
            };
        }
        if !on_link(iface, src) {
            return Action::Drop(Drop::NdInvalid);
        }
        match nd {
            NdRepr::Solicit { target, lladdr } => self.solicit(iface, frame, src, icmp_len, target, lladdr),
            NdRepr::Advert { flags, target, lladdr } => {
                let solicited = flags & icmpv6::NA_SOLICITED != 0;
                if target.is_multicast() || (dst.is_multicast() && solicited) || !on_link(iface, target) {
                    return Action::Drop(Drop::NdInvalid);
                }
                let own = iface.ipv6();
                if !(dst.is_multicast() || Some(dst) == own) {
                    return Action::Drop(Drop::NotForUs);
                }
                // Without the target's link-layer address there is nothing
                // to learn on Ethernet.
                let Some(mac) = lladdr.filter(MacAddr::is_unicast) else {
                    return Action::Drop(Drop::NdInvalid);
                };
                // The kernel interface resolves through the same port: it
                // gets a copy of an answer to its address, or a multicast one.
                let kernel = self.has_kernel(iface);
                let replace = flags & icmpv6::NA_OVERRIDE != 0;
                Action::Nd {
                    port: iface.port,
                    addr: u128::from(target),
                    mac,
                    create: false,
                    replace,
                    reply: 0,
                    kernel,
                }
            }
        }
    }

    /// Answers a solicitation for `target` from `src` in place.
    fn solicit(
        &mut self,
        iface: &Iface,
        frame: &mut [u8],
        src: Ipv6Addr,
        icmp_len: usize,
        target: Ipv6Addr,
        lladdr: Option<MacAddr>,
    ) -> Action {
        if target.is_multicast() {
            return Action::Drop(Drop::NdInvalid);
        }
        if !self.answers_nd_for(iface, target) {
            return Action::Drop(Drop::NotForUs);
        }
        let na = NdRepr::Advert {
            flags: icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE,
            target,
            // The option only where the NS made room for it (it had one):
            // the reply is built in the same buffer.
            lladdr: lladdr.map(|_| iface.mac),
        };
        let na_len = na.buffer_len();
        if na_len > icmp_len {
            return Action::Drop(Drop::NdInvalid);
        }
        let (l2, l3) = frame.split_at_mut(ethernet::HEADER_LEN);
        let to_mac = lladdr.unwrap_or_else(|| ethernet::Frame::new_unchecked(&*l2).src_addr());
        if !to_mac.is_unicast() {
            return Action::Drop(Drop::NdInvalid);
        }
        let mut ip = ipv6::Packet::new_unchecked(&mut *l3);
        super::ipv6::reply_header(&mut ip, target, src, na_len as u16, icmpv6::ND_HOP_LIMIT);
        let body = &mut l3[ipv6::HEADER_LEN..ipv6::HEADER_LEN + na_len];
        if na.emit(&mut icmpv6::Packet::new_unchecked(body), target, src).is_err() {
            return Action::Drop(Drop::NdInvalid);
        }
        super::ipv6::set_macs(l2, iface.mac, to_mac);
        self.counters.event(Event::NdSolicitsAnswered, 1);
        let len = (ethernet::HEADER_LEN + ipv6::HEADER_LEN + na_len) as u16;
        match lladdr {
            // A solicitation to us makes the sender's entry, as an ARP
            // request to us does: it is about to talk to us.
            Some(mac) => Action::Nd {
                port: iface.port,
                addr: u128::from(src),
                mac,
                create: true,
                replace: true,
                reply: len,
                kernel: false,
            },
            None => Action::Reply { port: iface.port, len: len.into() },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;

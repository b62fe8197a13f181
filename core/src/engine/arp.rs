//! ARP (RFC 826): requests for our addresses are answered in place,
//! requests and replies from valid senders are learnt by the worker.
//!
//! Answered: requests for a port's own address, or for a VIP/local address
//! that lies in the port's subnet (or in no port's subnet, e.g. a routed
//! VIP). A sender with a bad source address or a non-unicast MAC is dropped,
//! and so is one outside the receiving port's subnet (`drop_arp_off_subnet`):
//! no stranger gets a neighbour entry. Only a request to us creates an entry;
//! a reply to us or a gratuitous ARP (sender = target) only refreshes one
//! (Linux `arp_accept=0`), see [`crate::neigh`]. On a port with a kernel
//! interface, replies to the port's address and gratuitous ARP also go to
//! the kernel ([`super::kernel`]); requests are answered here, for both.

use std::net::Ipv4Addr;

use super::{bad_source, Action, Engine};
use crate::counters::{Drop, Event};
use crate::route::Iface;
use crate::wire::arp;
use crate::wire::ethernet;

impl Engine {
    /// An ARP frame received on `iface`.
    pub(super) fn arp(&mut self, iface: &Iface, frame: &mut [u8]) -> Action {
        let (l2, l3) = frame.split_at_mut(ethernet::HEADER_LEN);
        let mut a = match arp::Packet::new_checked(l3) {
            Ok(a) => a,
            Err(_) => return Action::Drop(Drop::ArpMalformed),
        };
        let sha = a.source_hardware_addr();
        let spa = u32::from(a.source_protocol_addr());
        let tpa = u32::from(a.target_protocol_addr());
        if bad_source(spa) || !sha.is_unicast() {
            return Action::Drop(Drop::ArpMalformed);
        }
        if !iface.contains(spa) {
            return Action::Drop(Drop::ArpOffSubnet);
        }
        let op = a.operation();
        if spa == tpa && matches!(op, arp::Operation::Request | arp::Operation::Reply) {
            // Gratuitous ARP: refreshes an entry, never makes one (and the
            // kernel's, if the port has a kernel interface).
            let kernel = self.has_kernel(iface);
            return Action::Arp { port: iface.port, sender: (spa, sha), reply: false, create: false, kernel };
        }
        match op {
            arp::Operation::Request if self.answers_arp_for(iface, tpa) => {
                a.set_operation(arp::Operation::Reply);
                a.set_target_hardware_addr(sha);
                a.set_target_protocol_addr(Ipv4Addr::from(spa));
                a.set_source_hardware_addr(iface.mac);
                a.set_source_protocol_addr(Ipv4Addr::from(tpa));
                let mut eth = ethernet::Frame::new_unchecked(l2);
                eth.set_dst_addr(sha);
                eth.set_src_addr(iface.mac);
                self.counters.event(Event::ArpRequestsAnswered, 1);
                Action::Arp { port: iface.port, sender: (spa, sha), reply: true, create: true, kernel: false }
            }
            arp::Operation::Reply if tpa == u32::from(iface.addr) || self.snap.owns(tpa) => {
                // A reply to the port's address may answer the kernel's
                // request (the exception path): it gets a copy of the news.
                let kernel = self.for_kernel(iface, tpa);
                Action::Arp { port: iface.port, sender: (spa, sha), reply: false, create: false, kernel }
            }
            arp::Operation::Request | arp::Operation::Reply => Action::Drop(Drop::ArpNotForUs),
            _ => Action::Drop(Drop::ArpMalformed),
        }
    }
}

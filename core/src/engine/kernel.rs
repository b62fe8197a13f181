//! The exception path's decision (issue 15): which frames go to a port's
//! kernel interface ([`Action::Kernel`]).
//!
//! A port configured with a kernel interface (`[[port]] kernel = "NAME"`,
//! [`super::EngineConfig::kernel`]) shares its address and MAC with a TAP
//! interface in the kernel, so that ssh, BGP, ping from the box and every
//! other host service work over the DPDK port. The dataplane keeps what it
//! handles (services, sessions, ARP requests, echo requests to its
//! addresses) and hands the kernel, untouched, what arrives on such a port
//! and is for the port's own address but is no business of the dataplane:
//!
//! - TCP/UDP to a port with no service on that address (`drop_no_service`
//!   without a kernel interface): ssh on 22, BGP on 179, the replies to the
//!   kernel's own connections;
//! - ICMP other than an echo request (echo replies to the kernel's ping,
//!   errors about the kernel's flows: an error about a session is still
//!   translated);
//! - other IP protocols, and fragments (the kernel reassembles them) unless
//!   the address is also a VIP;
//! - ARP replies to the port's address and gratuitous ARP: learnt by the
//!   worker and then given to the kernel ([`Action::Arp`]'s `kernel`), so
//!   the kernel ARPs through the port like any host and its neighbour table
//!   fills from the same replies as the dataplane's;
//! - frames of another EtherType (IPv6, LLDP) and multicast frames
//!   (OSPF, VRRP), which the dataplane does not handle.
//!
//! An address that is only a VIP (or a local address) keeps the dataplane's
//! answers (`engine/reject.rs`); on the port's own address the kernel
//! answers instead (its closed ports send RSTs and port unreachables).
//!
//! Every check sits on a branch that was a drop before: the path of a
//! packet of a session, or of a service's new connection, does not change.

use super::{Action, Engine};
use crate::counters::Drop;
use crate::route::Iface;

impl Engine {
    /// Whether `rx` has a kernel interface.
    #[inline]
    pub(super) fn has_kernel(&self, rx: &Iface) -> bool {
        self.cfg.kernel.contains(&rx.port)
    }

    /// Whether a packet to `dst` received on `rx` goes to `rx`'s kernel
    /// interface: `rx` has one and `dst` is its own address.
    #[inline]
    pub(super) fn for_kernel(&self, rx: &Iface, dst: u32) -> bool {
        dst == u32::from(rx.addr) && self.has_kernel(rx)
    }

    /// [`Action::Kernel`] for a packet to `dst` on `rx` if it goes to the
    /// kernel, else [`Action::Drop`] for `why`.
    #[cold]
    pub(super) fn kernel_or_drop(&self, rx: &Iface, dst: u32, why: Drop) -> Action {
        if self.for_kernel(rx, dst) {
            Action::Kernel { port: rx.port }
        } else {
            Action::Drop(why)
        }
    }
}

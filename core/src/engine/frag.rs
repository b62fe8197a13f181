//! Fragments in the engine: IPv4 fragments addressed to the gateway (a VIP,
//! a local address, a port's address) or coming from a NAT real server go
//! into this worker's reassembly table ([`crate::frag::Reassembler`]); a
//! completed datagram is handed back to the worker ([`Action::Reassembled`],
//! [`Engine::take_reassembled`]), which runs it through [`Engine::process`]
//! like any packet: the normal session path.
//!
//! Also here: the "fragmentation needed" answer for a FULLNAT, NAT or DR
//! packet with DF set that exceeds its output port's MTU (TUN has its own,
//! [`crate::modes::tun`]); a DF-clear packet over the MTU is fragmented by
//! the worker on output.

use gw_proto::ForwardMode;

use super::{Action, Engine};
use crate::counters::{Drop, Event};
use crate::frag::{self, Datagram, FragKey, Fragment, Insert};
use crate::modes::tun::frag_needed_in_place;
use crate::route::Iface;
use crate::wire::{ethernet, ipv4};

impl Engine {
    /// An IPv4 fragment (header checked, checksum good) received on `iface`.
    pub(super) fn fragment(&mut self, now: u64, iface: &Iface, frame: &[u8]) -> Action {
        let ip = ipv4::Packet::new_unchecked(&frame[ethernet::HEADER_LEN..]);
        let (src, dst) = (u32::from(ip.src_addr()), u32::from(ip.dst_addr()));
        let proto = u8::from(ip.protocol());
        if !(self.snap.owns(dst) || self.is_iface_addr(dst) || self.snap.is_masq_addr(src)) {
            return Action::Drop(Drop::Fragment);
        }
        let hl = ip.header_len();
        let tl = ip.total_len() as usize;
        let eth = ethernet::HEADER_LEN;
        let f = Fragment {
            headers: &frame[..eth + hl],
            offset: ip.frag_offset() as usize,
            more: ip.more_frags(),
            payload: &frame[eth + hl..eth + tl],
        };
        let key = FragKey { src: src.into(), dst: dst.into(), proto, id: ip.ident().into() };
        let res = self.frag.insert(now, iface.port, key, &f);
        let action = match res {
            Insert::Held => {
                self.counters.event(Event::FragReceived, 1);
                Action::Absorbed
            }
            Insert::Complete { range, port, .. } => {
                self.counters.event(Event::FragReceived, 1);
                match frag::finish_ipv4(&mut self.frag.out()[range.clone()]) {
                    Ok(()) => {
                        self.counters.event(Event::FragReassembled, 1);
                        self.reassembled = Some((range, port));
                        Action::Reassembled
                    }
                    Err(why) => Action::Drop(why),
                }
            }
            Insert::Drop { why, .. } => Action::Drop(why),
        };
        self.frag_gauges();
        action
    }

    /// Publishes the table's gauges and the datagrams it dropped on its own.
    pub(super) fn frag_gauges(&mut self) {
        let d = self.frag.take_dropped();
        self.counters.count_drops(Drop::FragEvicted, d.evicted);
        self.counters.count_drops(Drop::FragTimeout, d.timed_out);
        self.counters.event_cell(Event::FragDatagrams).set(self.frag.len() as u64);
        self.counters.event_cell(Event::FragPeak).set(self.frag.peak() as u64);
    }

    /// Drops the datagrams that waited longer than the timeout.
    pub fn expire_fragments(&mut self, now: u64) {
        if !self.frag.is_empty() {
            self.frag.expire(now);
            self.frag_gauges();
        }
    }

    /// The datagram the last [`Action::Reassembled`] announced (its buffer
    /// moves out of the table, no allocation); give the buffer back with
    /// [`Engine::give_back`].
    pub fn take_reassembled(&mut self) -> Option<Datagram> {
        let (range, port) = self.reassembled.take()?;
        Some(Datagram::new(self.frag.take_out(), range, port))
    }

    /// Returns a buffer taken by [`Engine::take_reassembled`].
    pub fn give_back(&mut self, d: Datagram) {
        self.frag.put_out(d.into_buffer());
    }
}

/// Why an IPv4 header that failed its checks is dropped: a total length
/// beyond the frame (with a header that is otherwise sound) is
/// `drop_ipv4_truncated`. On an `af_packet` port that is what a datagram
/// the kernel reassembled (DPDK's driver joins a PACKET_FANOUT group with
/// PACKET_FANOUT_FLAG_DEFRAG) looks like when it exceeds the ring's frame.
pub(super) fn malformed_or_truncated(l3: &[u8]) -> Drop {
    let ip = ipv4::Packet::new_unchecked(l3);
    let sound = l3.len() >= 20 && ip.version() == 4 && (20..=l3.len()).contains(&ip.header_len());
    if sound && ip.total_len() as usize > l3.len() {
        Drop::Ipv4Truncated
    } else {
        Drop::Ipv4Malformed
    }
}

/// FULLNAT, NAT and DR: a packet of `tl` bytes with DF set, over the MTU of
/// output port `out`, is answered with ICMP "fragmentation needed" from the
/// receiving port `rx` (RFC 1191). `None` if it fits, DF is clear, or the
/// mode is TUN (which decides for itself).
#[inline]
pub(super) fn too_big(
    mode: ForwardMode,
    ifaces: &[Iface],
    rx: &Iface,
    out: u16,
    tl: usize,
    dont_frag: bool,
    frame: &mut [u8],
) -> Option<(Action, bool)> {
    if !dont_frag || mode == ForwardMode::Tunnel {
        return None;
    }
    let mtu = ifaces.iter().find(|i| i.port == out)?.mtu;
    if tl <= mtu as usize {
        return None;
    }
    Some(match frag_needed_in_place(frame, tl, rx.mac, rx.addr, mtu) {
        Some(len) => (Action::Reply { port: rx.port, len }, true),
        None => (Action::Drop(Drop::CannotFragment), false),
    })
}

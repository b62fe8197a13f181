//! Fragments in the engine: IPv4 fragments addressed to the gateway (a VIP,
//! a local address, a port's address) or coming from a NAT real server go
//! into this worker's reassembly table ([`crate::frag::Reassembler`]); a
//! completed datagram is handed back to the worker ([`Action::Reassembled`],
//! [`Engine::take_reassembled`]), which runs it through [`Engine::process`]
//! like any packet: the normal session path.
//!
//! IPv6 fragments ([`Engine::fragment6`]) to an IPv6 VIP or local address
//! (or to the port's own address when no kernel interface takes them: an
//! echo request larger than the path), or from an IPv6 NAT real server, go
//! into the same table (RFC 8200 §4.5): the fragment header is taken out
//! (the next header that named it gets the fragmentable part's), an atomic
//! fragment (offset 0, M clear, RFC 6946) is processed at once and apart
//! from any datagram of its identification, and a first fragment must hold
//! the whole header chain up to the TCP, UDP or ICMPv6 header (RFC 7112),
//! else it is dropped with its datagram (`drop_frag_header_chain`). Other
//! IPv6 fragments are not the dataplane's (`drop_ipv6_not_handled`, the
//! kernel's if it has a port).
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
use crate::wire::ipv6::{self, NextHeader, Transport};
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
            size: tl,
            offset: ip.frag_offset() as usize,
            more: ip.more_frags(),
            payload: &frame[eth + hl..eth + tl],
        };
        let key = FragKey { src: src.into(), dst: dst.into(), proto, id: ip.ident().into(), v6: false };
        let res = self.frag.insert(now, iface.port, key, &f);
        self.inserted(res, key.id, frag::finish_ipv4)
    }

    /// What the insert of a fragment of datagram `ident` means for the
    /// worker; a completed datagram is finished by `finish` first.
    fn inserted(&mut self, res: Insert, ident: u32, finish: fn(&mut [u8]) -> Result<(), Drop>) -> Action {
        let action = match res {
            Insert::Held => {
                self.counters.event(Event::FragReceived, 1);
                Action::Absorbed
            }
            Insert::Complete { range, port, largest, .. } => {
                self.counters.event(Event::FragReceived, 1);
                match finish(&mut self.frag.out()[range.clone()]) {
                    Ok(()) => {
                        self.counters.event(Event::FragReassembled, 1);
                        self.reassembled = Some((range, port, largest, ident));
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

    /// An IPv6 fragment (the chain walked to `t`, whose fragment header is
    /// `f`) to an IPv6 VIP or local address or from an IPv6 NAT real
    /// server, received on `iface` (see the module docs).
    pub(super) fn fragment6(
        &mut self,
        now: u64,
        iface: &Iface,
        frame: &mut [u8],
        t: &Transport,
        f: ipv6::Fragment,
    ) -> Action {
        let eth = ethernet::HEADER_LEN;
        let ip = ipv6::Packet::new_unchecked(&frame[eth..]);
        let (src, dst) = (u128::from(ip.src_addr()), u128::from(ip.dst_addr()));
        let end = eth + ipv6::HEADER_LEN + usize::from(ip.payload_len());
        let key = FragKey { src, dst, proto: 0, id: f.ident, v6: true };
        let fh = eth + f.header_at;
        if f.is_first() {
            let l4 = frame.get(eth + t.offset..end).unwrap_or_default();
            let Some(need) = whole_l4_header(t.protocol, l4) else {
                return Action::Drop(Drop::Ipv6NotHandled);
            };
            if end.saturating_sub(eth + t.offset) < need {
                if self.frag.discard(&key) {
                    self.frag_gauges();
                }
                return Action::Drop(Drop::FragHeaderChain);
            }
            // The headers kept name the fragmentable part, not the
            // fragment header.
            let field = names_fragment(frame, fh);
            frame[field] = frame[fh];
        }
        let (headers, payload) = (&frame[..fh], &frame[fh + frag::FRAG_HEADER6..end]);
        if f.is_atomic() {
            let res = self.frag.single(iface.port, headers, payload);
            return self.inserted(res, f.ident, frag::finish_ipv6);
        }
        let frag =
            Fragment { headers, size: end - eth, offset: usize::from(f.offset), more: f.more, payload };
        let res = self.frag.insert(now, iface.port, key, &frag);
        self.inserted(res, f.ident, frag::finish_ipv6)
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
        let (range, port, largest, ident) = self.reassembled.take()?;
        Some(Datagram::new(self.frag.take_out(), range, port, largest, ident))
    }

    /// Returns a buffer taken by [`Engine::take_reassembled`].
    pub fn give_back(&mut self, d: Datagram) {
        self.frag.put_out(d.into_buffer());
    }
}

/// Bytes of the whole TCP, UDP or ICMPv6 header at the start of `l4` (a
/// TCP header's data offset read if its first 13 bytes are there, else its
/// 20-byte minimum); `None` for another protocol.
fn whole_l4_header(protocol: NextHeader, l4: &[u8]) -> Option<usize> {
    match protocol {
        NextHeader::Udp => Some(8),
        NextHeader::Tcp => Some(l4.get(12).map_or(20, |b| usize::from(b >> 4) * 4).max(20)),
        // Every ICMPv6 message's fixed part (RFC 4443 §2.1, §4.1).
        NextHeader::Icmpv6 => Some(8),
        _ => None,
    }
}

/// The frame offset of the next-header field that names the fragment
/// header at frame offset `fh`: the fixed header's, or that of the last
/// extension header before it (the chain walk checked their lengths).
fn names_fragment(frame: &[u8], fh: usize) -> usize {
    let eth = ethernet::HEADER_LEN;
    let (mut field, mut at) = (eth + 6, eth + ipv6::HEADER_LEN);
    while at < fh {
        let len = usize::from(frame[at + 1]);
        let len =
            if NextHeader::from(frame[field]) == NextHeader::Ah { (len + 2) * 4 } else { (len + 1) * 8 };
        field = at;
        at += len;
    }
    field
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

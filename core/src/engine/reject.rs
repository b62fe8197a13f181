//! Fail fast without becoming a reflector: the replies the gateway sends for
//! a TCP/UDP packet that has nowhere to go (issue 10).
//!
//! - A TCP SYN to a VIP:port with no service, or whose service has no usable
//!   real server, gets an ICMP port unreachable (the default, as IPVS's
//!   `ip_vs_leave` does: "the TCP RST packet cannot be sent, instead that
//!   ICMP_PORT_UNREACH is sent here no matter it is TCP/UDP"), or a RST, or
//!   nothing ([`NoServiceReply`], `[ipvs] no_service_reply`). A client's
//!   TCP in SYN_SENT takes either as a hard error (`ECONNREFUSED`).
//! - A UDP datagram to a VIP:port with no service or no usable real server
//!   gets an ICMP port unreachable (unless `no_service_reply = "none"`).
//! - A TCP segment other than a plain SYN (and other than a RST) with no
//!   session gets a RST from the address and port it was sent to
//!   (`[ipvs] no_session_rst`): a client's packet to VIP:vport after its
//!   session expired or the gateway restarted is reset from VIP:vport; a
//!   real server's packet to LIP:lport (FULLNAT) or to client:cport (NAT)
//!   is reset from there, so both ends learn at once. Seq/ack follow RFC 793
//!   §3.4 "Reset Generation" ([`rst_numbers`]); a RST is never answered.
//!
//! On a port with a kernel interface (`[[port]] kernel`, [`super::kernel`]),
//! a packet to the port's own address with no service goes to the kernel
//! instead, which answers as a host does; a VIP keeps the answers here.
//!
//! Not a reflector: nothing is sent for a frame that was not unicast to the
//! port's MAC, from a non-unicast MAC, from one of the gateway's own
//! addresses or from a subnet's broadcast address; fragments, ICMP errors
//! and packets failing the reverse-path check were dropped before this point;
//! a reply only leaves through the port the packet came in on (the route
//! back to the sender must leave there, whatever the port's `rp_filter`).
//! Every reply takes a token from the worker's bucket ([`TokenBucket`], as
//! Linux's `icmp_msgs_per_sec`/`icmp_msgs_burst`, driven by the worker's
//! clock, no syscall); without a token the packet is only dropped
//! (`replies_rate_limited`). The packet is counted under its drop reason in
//! every case: a reply is extra, not instead.
//!
//! IPv6 packets get the same replies under the same rules ([`build6`]):
//! ICMPv6 port unreachable (type 1 code 4, RFC 4443) where IPv4 sends ICMP's,
//! as IPVS's `ip_vs_leave` does for an IPv6 service, and RSTs over IPv6.
//!
//! The engine only decides ([`Action::Reject`], [`Action::Reject6`]); the worker builds the reply
//! over the received buffer ([`build`]: the first bytes of the original are
//! copied aside, the buffer is resized, no allocation) and sends it to the
//! sender's next hop through the neighbour table, as any routed packet.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::conn::plain_syn;
use super::ipv4::L4Info;
use super::ipv6_fwd::L4Info6;
use super::{Action, Engine};
use crate::counters::{Drop, Event};
use crate::route::Iface;
use crate::tcp_state::flags;
use crate::wire::ethernet::{self, EtherType};
use crate::wire::ipv4::{self, Protocol};
use crate::wire::ipv6::{self, NextHeader};
use crate::wire::{icmpv4, icmpv6, tcp};
use crate::worker::PacketBuf;

/// What a TCP SYN (and a UDP datagram) to a VIP:port with no service or no
/// usable real server gets (`[ipvs] no_service_reply`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoServiceReply {
    /// ICMP port unreachable for TCP and UDP, as IPVS's `ip_vs_leave`.
    #[default]
    Icmp,
    /// A RST for TCP (what a host's closed port sends); ICMP port
    /// unreachable for UDP.
    Rst,
    /// Nothing: the packet is only dropped and counted.
    None,
}

/// The reply settings of a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectConfig {
    /// What a SYN or a datagram to a VIP:port with no service gets.
    pub no_service: NoServiceReply,
    /// Whether a TCP segment with no session gets a RST.
    pub no_session_rst: bool,
    /// Replies per second per worker (the bucket's refill).
    pub rate: u32,
    /// Replies a worker may send at once after a quiet spell.
    pub burst: u32,
}

impl RejectConfig {
    /// Linux's `icmp_msgs_per_sec`.
    pub const DEFAULT_RATE: u32 = 1000;
    /// Linux's `icmp_msgs_burst`.
    pub const DEFAULT_BURST: u32 = 50;
}

impl Default for RejectConfig {
    fn default() -> RejectConfig {
        RejectConfig {
            no_service: NoServiceReply::Icmp,
            no_session_rst: true,
            rate: RejectConfig::DEFAULT_RATE,
            burst: RejectConfig::DEFAULT_BURST,
        }
    }
}

/// Which reply the worker builds for [`Action::Reject`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// A TCP RST from the packet's destination to its source (RFC 793).
    Rst,
    /// ICMP destination unreachable, port unreachable (type 3 code 3), from
    /// the packet's destination, quoting its IP header and 8 bytes.
    PortUnreachable,
}

/// A token bucket in thousandths of a token, refilled from the worker's
/// millisecond clock (as Linux's `icmp_global_allow`): `rate` tokens per
/// second, at most `burst` saved. Starts full.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    milli: u64,
    last_ms: u64,
    rate: u64,
    cap: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `rate` per second.
    pub fn new(rate: u32, burst: u32, now_ms: u64) -> TokenBucket {
        let cap = u64::from(burst) * 1000;
        TokenBucket { milli: cap, last_ms: now_ms, rate: u64::from(rate), cap }
    }

    /// Takes a token if there is one at `now_ms`.
    #[inline]
    pub fn take(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        self.milli = self.milli.saturating_add(elapsed.saturating_mul(self.rate)).min(self.cap);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// RFC 793 §3.4 "Reset Generation" for a segment with `seg_flags`, `seq`,
/// `ack` and `seg_len` (payload plus one each for SYN and FIN): (the RST's
/// seq, its ack, its flags). With ACK: seq = the segment's ack, flags RST;
/// without: seq 0, ack = seq + seg_len, flags RST|ACK.
#[inline]
pub fn rst_numbers(seg_flags: u8, seq: u32, ack: u32, seg_len: u32) -> (u32, u32, u8) {
    if seg_flags & flags::ACK != 0 {
        (ack, 0, flags::RST)
    } else {
        (0, seq.wrapping_add(seg_len), flags::RST | flags::ACK)
    }
}

/// The reply a packet (TCP with `tcp_flags` if `tcp`, else UDP; of either
/// family) dropped for `why` gets under `cfg`, if any.
fn reply_for(cfg: &RejectConfig, (tcp, tcp_flags): (bool, u8), why: Drop) -> Option<Reject> {
    if tcp && tcp_flags & flags::RST != 0 {
        return None; // Never answer a RST (RFC 793).
    }
    match why {
        Drop::NoService | Drop::NoDest if !tcp || plain_syn(tcp_flags) => match cfg.no_service {
            NoServiceReply::Icmp => Some(Reject::PortUnreachable),
            NoServiceReply::Rst if tcp => Some(Reject::Rst),
            NoServiceReply::Rst => Some(Reject::PortUnreachable),
            NoServiceReply::None => None,
        },
        // A segment that is not a plain SYN, with no session: to a port
        // without a service, to a service, to a local address (FULLNAT
        // reply) or from a NAT real server.
        Drop::NoService | Drop::NoSessionNotSyn | Drop::UnknownReply if tcp && cfg.no_session_rst => {
            Some(Reject::Rst)
        }
        _ => None,
    }
}

impl Engine {
    /// A TCP/UDP packet that is dropped for `why`: [`Action::Reject`] if it
    /// gets a reply (see the module docs), else [`Action::Drop`].
    #[cold]
    pub(super) fn reject_or_drop(
        &mut self,
        now: u64,
        rx: &Iface,
        frame: &[u8],
        p: &L4Info,
        why: Drop,
    ) -> Action {
        // No service on the receiving port's own address: the kernel's, if
        // the port has a kernel interface (it answers for its closed ports).
        if why == Drop::NoService && self.for_kernel(rx, p.key.dst) {
            return Action::Kernel { port: rx.port };
        }
        let l4 = (p.key.proto == Protocol::Tcp, p.tcp_flags);
        let may = |e: &Engine| e.may_reply(rx, frame, p.key.src);
        match self.reply_route(now, rx, l4, why, may, |r| r.lookup(p.key.src)) {
            Some((reply, port, next_hop)) => Action::Reject { port, next_hop, reply, why },
            None => Action::Drop(why),
        }
    }

    /// [`Engine::reject_or_drop`] for an IPv6 packet: [`Action::Reject6`],
    /// the same replies under the same rules (ICMPv6 port unreachable where
    /// IPv4 sends ICMP's, as IPVS's `ip_vs_leave` for an IPv6 service), from
    /// the same bucket (Linux's ICMP and ICMPv6 share theirs).
    #[cold]
    pub(super) fn reject_or_drop6(
        &mut self,
        now: u64,
        rx: &Iface,
        frame: &[u8],
        p: &L4Info6,
        why: Drop,
    ) -> Action {
        let l4 = (p.key.proto == Protocol::Tcp, p.tcp_flags);
        let may = |e: &Engine| e.may_reply6(rx, frame, p.key.src);
        match self.reply_route(now, rx, l4, why, may, |r| r.lookup6(p.key.src)) {
            Some((reply, port, next_hop)) => Action::Reject6 { port, next_hop, reply, why },
            None => Action::Drop(why),
        }
    }

    /// The reply a packet (`l4`: TCP and its flags, or UDP) dropped for
    /// `why` gets, if the sender `may` have one, where it goes (the port
    /// and next hop `back` finds for the sender, which must be `rx`: the
    /// route back leaves where the packet came in), and if the bucket has a
    /// token for it (else `replies_rate_limited`). Either family's.
    fn reply_route<H>(
        &mut self,
        now: u64,
        rx: &Iface,
        l4: (bool, u8),
        why: Drop,
        may: impl FnOnce(&Engine) -> bool,
        back: impl FnOnce(&crate::route::Routes) -> Option<(u16, H)>,
    ) -> Option<(Reject, u16, H)> {
        let reply = reply_for(&self.cfg.reject, l4, why)?;
        if !may(self) {
            return None;
        }
        let (port, next_hop) = back(&self.cfg.routes).filter(|(port, _)| *port == rx.port)?;
        if !self.replies.take(now) {
            self.counters.event(Event::RepliesRateLimited, 1);
            return None;
        }
        Some((reply, port, next_hop))
    }

    /// [`Engine::may_reply`] for IPv6 source `src`: unicast frame to the
    /// port's MAC from a unicast MAC, and a source that is neither
    /// unspecified, multicast nor one of our addresses (IPv6 has no
    /// broadcast).
    fn may_reply6(&self, rx: &Iface, frame: &[u8], src: u128) -> bool {
        if !unicast_to(rx, frame) {
            return false;
        }
        let a = Ipv6Addr::from(src);
        !(a.is_unspecified()
            || a.is_multicast()
            || self.snap.owns6(src)
            || self.cfg.ifaces.iter().any(|i| i.ipv6() == Some(a)))
    }

    /// Whether the sender of `frame` (IPv4 source `src`) may get a reply:
    /// the frame was unicast to the port's MAC from a unicast MAC, and the
    /// source is neither one of our addresses nor a subnet's broadcast.
    fn may_reply(&self, rx: &Iface, frame: &[u8], src: u32) -> bool {
        if !unicast_to(rx, frame) {
            return false;
        }
        let directed_broadcast = |i: &Iface| {
            let host = if i.prefix >= 31 { 0 } else { u32::MAX >> i.prefix };
            host != 0 && i.contains(src) && src & host == host
        };
        !(self.snap.owns(src) || self.is_iface_addr(src) || self.cfg.ifaces.iter().any(directed_broadcast))
    }
}

/// Whether `frame` was unicast to port `rx`'s MAC from a unicast MAC: the
/// first test of either family's [`Engine::may_reply`].
fn unicast_to(rx: &Iface, frame: &[u8]) -> bool {
    let eth = ethernet::Frame::new_unchecked(frame);
    eth.dst_addr() == rx.mac && eth.src_addr().is_unicast()
}

/// TTL of the replies the gateway originates.
const REPLY_TTL: u8 = 64;
/// Most bytes an ICMP error quotes: the longest IPv4 header and 8 bytes of
/// its payload (RFC 792).
const QUOTE_MAX: usize = ipv4::MAX_HEADER_LEN + icmpv4::QUOTED_L4_LEN;
const ETH: usize = ethernet::HEADER_LEN;
const IP: usize = 20;
const IP6: usize = ipv6::HEADER_LEN;

/// Turns `pkt`, the frame the engine returned [`Action::Reject`] for, into
/// the reply `reply` with IPv4 identification `ident` (the worker then sets
/// the MACs). The original's first bytes are copied aside, the buffer is cut
/// or grown to the reply's length; false (nothing to send) if the buffer
/// cannot take that length or the frame is not the TCP/UDP packet the engine
/// checked.
pub fn build<B: PacketBuf>(pkt: &mut B, reply: Reject, ident: u16) -> bool {
    let f = pkt.as_ref();
    let Ok(ip) = ipv4::Packet::new_checked(f.get(ETH..).unwrap_or_default()) else {
        return false;
    };
    let (hl, tl) = (ip.header_len(), usize::from(ip.total_len()));
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if tl < hl || ETH + tl > f.len() {
        return false;
    }
    match reply {
        Reject::Rst => {
            let Some(rst) = Rst::answering(&f[ETH + hl..ETH + tl]) else {
                return false;
            };
            let len = ETH + IP + tcp::MIN_HEADER_LEN;
            if !pkt.set_len(len) {
                return false;
            }
            let frame = pkt.as_mut();
            write_ip(&mut frame[ETH..ETH + IP], Protocol::Tcp, 0, len - ETH, ident, dst, src);
            rst.write(&mut frame[ETH + IP..len]).fill_checksum(dst, src);
        }
        Reject::PortUnreachable => {
            let n = (hl + icmpv4::QUOTED_L4_LEN).min(tl);
            let mut quote = [0u8; QUOTE_MAX];
            quote[..n].copy_from_slice(&f[ETH..ETH + n]);
            let start = ETH + IP + icmpv4::HEADER_LEN;
            let len = start + n;
            if !pkt.set_len(len) {
                return false;
            }
            let frame = pkt.as_mut();
            frame[start..len].copy_from_slice(&quote[..n]);
            // Precedence "internetwork control", as Linux sends ICMP errors.
            write_ip(&mut frame[ETH..ETH + IP], Protocol::Icmp, 0xc0, len - ETH, ident, dst, src);
            let mut icmp = icmpv4::Packet::new_unchecked(&mut frame[ETH + IP..len]);
            icmp.set_msg_type(icmpv4::Message::DstUnreachable);
            icmp.set_code(icmpv4::CODE_PORT_UNREACHABLE);
            icmp.set_echo_ident(0);
            icmp.set_echo_seq_no(0);
            icmp.fill_checksum();
        }
    }
    ethernet::Frame::new_unchecked(pkt.as_mut()).set_ethertype(EtherType::Ipv4);
    true
}

/// The RST answering a TCP segment, either family's: its ports swapped
/// and RFC 793's numbers ([`rst_numbers`]).
struct Rst {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
}

impl Rst {
    /// The RST for `segment` (TCP header and payload), or `None` for a
    /// malformed one or a RST (never answered).
    fn answering(segment: &[u8]) -> Option<Rst> {
        let t = tcp::Packet::new_checked(segment).ok()?;
        let fl = t.flags();
        if fl & flags::RST != 0 {
            return None;
        }
        let ctl = u32::from(fl & flags::SYN != 0) + u32::from(fl & flags::FIN != 0);
        let seg_len = (segment.len() - t.header_len()) as u32 + ctl;
        let (seq, ack, flags) = rst_numbers(fl, t.seq_number(), t.ack_number(), seg_len);
        Some(Rst { sport: t.dst_port(), dport: t.src_port(), seq, ack, flags })
    }

    /// Writes it as a 20-byte TCP header over `buf`, checksum left to the
    /// caller (the family's pseudo-header).
    fn write(self, buf: &mut [u8]) -> tcp::Packet<&mut [u8]> {
        buf.fill(0);
        let mut r = tcp::Packet::new_unchecked(buf);
        r.set_src_port(self.sport);
        r.set_dst_port(self.dport);
        r.set_seq_number(self.seq);
        r.set_ack_number(self.ack);
        r.set_header_len(tcp::MIN_HEADER_LEN);
        r.set_flags(self.flags);
        r
    }
}

/// [`build`] for an IPv6 packet ([`Action::Reject6`]): the RST as IPv4's,
/// over IPv6 (hop limit [`REPLY_TTL`]); the port unreachable as ICMPv6
/// destination unreachable, port unreachable (type 1 code 4, RFC 4443
/// §3.1) from the packet's destination, quoting as much of the packet as
/// fits in the minimum MTU (§2.4 (c)). A RST needs TCP right after the
/// fixed header: a segment with extension headers is only dropped.
pub fn build6<B: PacketBuf>(pkt: &mut B, reply: Reject) -> bool {
    let f = pkt.as_ref();
    let Ok(ip) = ipv6::Packet::new_checked(f.get(ETH..).unwrap_or_default()) else {
        return false;
    };
    let len = IP6 + usize::from(ip.payload_len());
    let (src, dst, next) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
    if ETH + len > f.len() {
        return false;
    }
    match reply {
        Reject::Rst => {
            if next != NextHeader::Tcp {
                return false;
            }
            let Some(rst) = Rst::answering(&f[ETH + IP6..ETH + len]) else {
                return false;
            };
            let rlen = ETH + IP6 + tcp::MIN_HEADER_LEN;
            if !pkt.set_len(rlen) {
                return false;
            }
            let frame = pkt.as_mut();
            write_ip6(&mut frame[ETH..ETH + IP6], NextHeader::Tcp, tcp::MIN_HEADER_LEN, dst, src);
            rst.write(&mut frame[ETH + IP6..rlen]).fill_checksum_v6(dst, src);
        }
        Reject::PortUnreachable => {
            // The quote moves up by the two headers: grow (or cut) first,
            // then move it within the buffer.
            let quoted = len.min(usize::from(ipv6::MIN_MTU) - IP6 - icmpv6::HEADER_LEN);
            let start = ETH + IP6 + icmpv6::HEADER_LEN;
            if !pkt.set_len(start + quoted) {
                return false;
            }
            let frame = pkt.as_mut();
            frame.copy_within(ETH..ETH + quoted, start);
            let icmp_len = icmpv6::HEADER_LEN + quoted;
            write_ip6(&mut frame[ETH..ETH + IP6], NextHeader::Icmpv6, icmp_len, dst, src);
            frame[ETH + IP6..start].fill(0);
            let mut icmp = icmpv6::Packet::new_unchecked(&mut frame[ETH + IP6..start + quoted]);
            icmp.set_msg_type(icmpv6::Message::DstUnreachable);
            icmp.set_code(icmpv6::CODE_PORT_UNREACHABLE);
            icmp.fill_checksum(dst, src);
        }
    }
    ethernet::Frame::new_unchecked(pkt.as_mut()).set_ethertype(EtherType::Ipv6);
    true
}

/// Writes a 40-byte IPv6 header (traffic class and flow label 0, hop limit
/// [`REPLY_TTL`]) for `payload` bytes of `next`.
fn write_ip6(buf: &mut [u8], next: NextHeader, payload: usize, src: Ipv6Addr, dst: Ipv6Addr) {
    let mut ip = ipv6::Packet::new_unchecked(buf);
    ip.set_version(6);
    ip.set_next_header(next);
    super::ipv6::reply_header(&mut ip, src, dst, payload as u16, REPLY_TTL);
}

/// Writes a 20-byte IPv4 header (no options, DF clear, TTL [`REPLY_TTL`]).
fn write_ip(
    buf: &mut [u8],
    proto: Protocol,
    tos: u8,
    total: usize,
    ident: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    let mut ip = ipv4::Packet::new_unchecked(buf);
    ip.set_version(4);
    ip.set_header_len(IP);
    ip.set_tos(tos);
    ip.set_total_len(total as u16);
    ip.set_ident(ident);
    ip.clear_flags();
    ip.set_frag_offset(0);
    ip.set_ttl(REPLY_TTL);
    ip.set_protocol(proto);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
}

#[cfg(test)]
mod tests;

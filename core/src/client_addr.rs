//! Handing the client's address to a FULLNAT real server, which otherwise
//! sees only the local address: TOA or a PROXY protocol header, chosen per
//! service (`--toa`, `--proxy-protocol v1|v2`, [`ClientAddr`]).
//!
//! - **TOA** (Alibaba's TOA kernel module, DPVS's `tcp_in_add_toa`): TCP
//!   option kind 254, length 8, the client's port and IPv4 address in
//!   network order, added to the client's SYN and to its packets with ACK
//!   while the connection is in SYN_RECV (the handshake's ACK, which the
//!   TOA module reads in `syn_recv_sock`). It goes first in the option
//!   space (an end-of-list option cannot hide it), moving the others by 8
//!   bytes (their 4-byte alignment kept). No room (options already over 32
//!   bytes): the packet goes unchanged and `toa_no_room` counts it; the MSS
//!   of the SYN is lowered by 8 so a first data segment with TOA still fits
//!   the path.
//! - **PROXY protocol** (haproxy's `proxy-protocol.txt`): the v1 line
//!   `PROXY TCP4 CIP VIP CPORT VPORT\r\n` or the v2 binary header (PROXY
//!   command, AF_INET/STREAM, 12 address bytes) occupies the client's
//!   sequence numbers ISN+1 .. ISN+1+len toward the real server. It is
//!   sent with the handshake's ACK (as DPVS, so a server that speaks first
//!   learns the client at once), and again in front of any client segment
//!   that starts at ISN+1 with data (a retransmitted first segment, or a
//!   lost handshake ACK): the same bytes at the same sequence numbers, which
//!   TCP takes as a retransmission. Every other client segment's sequence
//!   number grows by the header's length, every acknowledgement and SACK
//!   edge from the server shrinks by it (an acknowledgement inside the
//!   header maps to ISN+1). The SYN's MSS is lowered by the header length.
//!
//! State: the choice is two bits of the session's flag byte
//! ([`Flags::CLIENT_ADDR`]); a PROXY session's client ISN and header length
//! live in [`Table`], a side table indexed by session index that only
//! PROXY sessions touch (its zeroed pages are never written for others).
//! A plain FULLNAT packet pays one test of a flag byte already loaded.
//!
//! Growing a packet needs its buffer: the engine answers
//! [`crate::engine::Action::Grow`] (what to insert waits in [`Table`], so
//! the action stays as small as the others) and the worker calls [`apply`]
//! with [`crate::engine::Engine::pending_insert`], which
//! moves the bytes, fixes the IPv4 total length and checksum and recomputes
//! the TCP checksum (only handshake and first segments grow).

use std::net::Ipv4Addr;

use gw_proto::ClientAddr;

use crate::counters::{Drop, Event, WorkerCounters};
use crate::engine::Action;
use crate::route::Iface;
use crate::session::{Flags, Session};
use crate::tcp_state::{flags as tf, State};
use crate::wire::checksum;
use crate::wire::ethernet::HEADER_LEN as ETH;
use crate::wire::{ipv4, tcp, udp};
use crate::worker::PacketBuf;

/// TOA's option kind and length.
pub const TOA_KIND: u8 = 254;
pub const TOA_LEN: usize = 8;
/// TCP's largest header (data offset 15).
const TCP_MAX_HEADER: usize = 60;
/// PROXY v2's signature.
pub const V2_SIG: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// PROXY v2 header length for TCP over IPv4.
pub const V2_LEN: usize = 16 + 12;
/// The longest PROXY v1 line for IPv4.
pub const V1_MAX: usize = 56;

/// What to add to a packet on its way to the real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// A TOA option with the client's address and port (host order).
    Toa { addr: u32, port: u16 },
    /// A PROXY header before the payload: client and virtual address and
    /// port (host order).
    Proxy { v2: bool, src: u32, dst: u32, sport: u16, dport: u16 },
    /// UOA: a PROXY v2 header (AF_INET, DGRAM) before the payload of a
    /// UDP datagram.
    ProxyUdp { src: u32, dst: u32, sport: u16, dport: u16 },
    /// SYNPROXY: the SYN's options (`n` bytes, a multiple of 4) after the
    /// TCP header of a SYN rebuilt without them ([`crate::synproxy`]).
    Options { bytes: [u8; 20], n: u8 },
}

/// The session flag bits for a service's choice (FULLNAT TCP only).
#[inline]
pub fn flags_of(ca: ClientAddr) -> Flags {
    Flags::client_addr(match ca {
        ClientAddr::None => 0,
        ClientAddr::Toa => 1,
        ClientAddr::ProxyV1 => 2,
        ClientAddr::ProxyV2 => 3,
    })
}

/// The choice a session's flags hold.
#[inline]
pub fn of_flags(f: Flags) -> ClientAddr {
    match f.client_addr_bits() {
        0 => ClientAddr::None,
        1 => ClientAddr::Toa,
        2 => ClientAddr::ProxyV1,
        _ => ClientAddr::ProxyV2,
    }
}

/// Writes the PROXY header for `src:sport -> dst:dport` into `out`; its
/// length.
pub fn proxy_header(v2: bool, src: u32, dst: u32, sport: u16, dport: u16, out: &mut [u8; V1_MAX]) -> usize {
    if v2 {
        out[..12].copy_from_slice(&V2_SIG);
        out[12] = 0x21; // version 2, PROXY
        out[13] = 0x11; // AF_INET, STREAM
        out[14..16].copy_from_slice(&12u16.to_be_bytes());
        out[16..20].copy_from_slice(&src.to_be_bytes());
        out[20..24].copy_from_slice(&dst.to_be_bytes());
        out[24..26].copy_from_slice(&sport.to_be_bytes());
        out[26..28].copy_from_slice(&dport.to_be_bytes());
        return V2_LEN;
    }
    let mut w = Cursor { buf: out, n: 0 };
    use std::io::Write;
    let _ = write!(w, "PROXY TCP4 {} {} {sport} {dport}\r\n", Ipv4Addr::from(src), Ipv4Addr::from(dst));
    w.n
}

/// A `Write` into a fixed array (no allocation).
struct Cursor<'a> {
    buf: &'a mut [u8; V1_MAX],
    n: usize,
}

impl std::io::Write for Cursor<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let k = b.len().min(V1_MAX - self.n);
        self.buf[self.n..self.n + k].copy_from_slice(&b[..k]);
        self.n += k;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The PROXY header length of session `s`.
pub fn proxy_len(v2: bool, s: &Session) -> usize {
    let mut b = [0; V1_MAX];
    proxy_header(v2, s.cip, s.vip, s.cport, s.vport, &mut b)
}

/// Per session index: the client's ISN and the header length (0: not a
/// PROXY session). Allocated zeroed for the whole session table, so pages
/// no PROXY session uses are never touched.
pub struct Table {
    entries: Vec<(u32, u32)>,
    /// What the last [`Action::Grow`] asks for (kept here, not in the
    /// action, so that every other action stays small).
    pending: Insert,
}

impl Table {
    /// A table for `capacity` sessions.
    pub fn new(capacity: usize) -> Table {
        Table { entries: vec![(0, 0); capacity], pending: Insert::Toa { addr: 0, port: 0 } }
    }
    /// Records a new PROXY session's client ISN and header length.
    #[inline]
    pub fn set(&mut self, i: u32, isn: u32, len: usize) {
        if let Some(e) = self.entries.get_mut(i as usize) {
            *e = (isn, len as u32);
        }
    }
    /// What the last [`Action::Grow`] asks the worker to insert.
    pub fn pending(&self) -> Insert {
        self.pending
    }
    /// Sets what the next [`Action::Grow`] inserts.
    pub(crate) fn set_pending(&mut self, ins: Insert) {
        self.pending = ins;
    }
    #[inline]
    pub(crate) fn get(&self, i: u32) -> (u32, u32) {
        self.entries.get(i as usize).copied().unwrap_or((0, 0))
    }
}

/// UOA ([`Insert::ProxyUdp`]): after the mode's transmit of a datagram of
/// a UDP FULLNAT session whose service has `--proxy-protocol v2`, the
/// header goes before the payload of the session's first datagram toward
/// the real server (DPVS's UDP PROXY v2; a server reads the client from
/// the first datagram and keys it by the local address:port, which stays
/// the session's). Later datagrams and replies go unchanged. Over the
/// output MTU: dropped (`drop_proxy_header_no_room`), the next datagram
/// tries again.
#[inline(never)]
pub(crate) fn on_forward_udp(
    table: &mut Table,
    ifaces: &[Iface],
    i: u32,
    s: &Session,
    out: bool,
    frame: &mut [u8],
    act: Action,
) -> Action {
    let Action::Forward { port, next_hop } = act else { return act };
    let (_, len) = table.get(i);
    if out || len == 0 {
        return act;
    }
    let mtu = ifaces.iter().find(|f| f.port == port).map_or(1500, |f| f.mtu as usize);
    let tl = ipv4::Packet::new_checked(frame.get(ETH..).unwrap_or(&[]))
        .map_or(usize::MAX / 2, |ip| ip.total_len() as usize);
    if tl + len as usize > mtu {
        return Action::Drop(Drop::ProxyHeaderNoRoom);
    }
    table.set(i, 0, 0);
    table.pending = Insert::ProxyUdp { src: s.cip, dst: s.vip, sport: s.cport, dport: s.vport };
    Action::Grow { port, next_hop }
}

/// Offsets of a TCP/IPv4 frame: IPv4 header length, total length, TCP
/// header length. `None` if it does not look like one (checked before).
fn offsets(frame: &[u8]) -> Option<(usize, usize, usize)> {
    let ip = ipv4::Packet::new_checked(frame.get(ETH..)?).ok()?;
    let (hl, tl) = (ip.header_len(), ip.total_len() as usize);
    let t = tcp::Packet::new_checked(frame.get(ETH + hl..ETH + tl)?).ok()?;
    Some((hl, tl, t.header_len()))
}

/// IPv4 total length of the frame's packet.
fn ip_len(frame: &[u8]) -> usize {
    offsets(frame).map_or(usize::MAX / 2, |(_, tl, _)| tl)
}

/// Lowers the MSS option of the SYN in `frame` by `by` bytes, updating the
/// checksum incrementally.
fn clamp_mss(frame: &mut [u8], by: u16) {
    let Some((hl, _, thl)) = offsets(frame) else { return };
    let t0 = ETH + hl;
    let hdr = &mut frame[t0..t0 + thl];
    let mut walk = tcp::OptionWalk::default();
    while let Some((kind, o, len)) = walk.next(hdr) {
        if kind == 2 && len == 4 {
            let old = u16::from_be_bytes([hdr[o + 2], hdr[o + 3]]);
            let new = old.saturating_sub(by).max(536);
            if new < old {
                hdr[o + 2..o + 4].copy_from_slice(&new.to_be_bytes());
                let mut t = tcp::Packet::new_unchecked(&mut *hdr);
                let c = checksum::update16(t.checksum(), old, new);
                t.set_checksum(c);
            }
            return;
        }
    }
}

/// Maps a server acknowledgement (or SACK edge) back to the client's
/// sequence space: minus the header, an edge inside the header to ISN+1.
#[inline]
pub(crate) fn unmap(v: u32, first: u32, len: u32) -> u32 {
    let off = v.wrapping_sub(first);
    if off >= len && (off as i32) >= 0 {
        v.wrapping_sub(len)
    } else if (off as i32) >= 0 {
        first
    } else {
        v
    }
}

/// Whether a packet of a session with flags `f` (state `old` before it,
/// from the real server if `out`) needs [`on_forward`]: every packet of a
/// PROXY session, a TOA session's client packets until the handshake is
/// done. One test of the flag byte for every other session.
#[inline(always)]
pub(crate) fn concerns(f: Flags, old: State, out: bool, tcp_flags: u8) -> bool {
    match f.client_addr_bits() {
        0 => false,
        1 => !out && (old == State::SynRecv || tcp_flags & tf::SYN != 0),
        _ => true,
    }
}

/// The established PROXY segment's shift, folded into the mode's rewrite
/// ([`crate::modes::fullnat::xmit_shifted`]: one checksum update for
/// addresses, ports and the shift): the TCP field to change (4: a client
/// segment's sequence number, up by the header's length; 8: a server
/// segment's acknowledgement number, down) and its new value. A server
/// segment's SACK edges are mapped here. `None` for anything else (a SYN
/// or RST, the handshake, a client segment at the first byte with data,
/// which needs the header): [`on_forward`] after the mode's transmit.
/// `tl`: the packet's IPv4 total length.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn established_shift(
    table: &Table,
    tl: usize,
    i: u32,
    s: &Session,
    old: State,
    out: bool,
    tcp_flags: u8,
    frame: &mut [u8],
) -> Option<(usize, u32)> {
    if s.flags.client_addr_bits() < 2 || tcp_flags & (tf::SYN | tf::RST) != 0 || old == State::SynRecv {
        return None;
    }
    let (isn, len) = table.get(i);
    if len == 0 {
        return None;
    }
    let first = isn.wrapping_add(1);
    // The engine checked both headers: read them without a second parse.
    let hl = usize::from(frame[ETH] & 0xf) * 4;
    let seg = frame.get_mut(ETH + hl..ETH + tl)?;
    let h = seg.first_chunk::<{ tcp::MIN_HEADER_LEN }>()?;
    let thl = usize::from(h[12] >> 4) * 4;
    if out {
        let a = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        if tcp_flags & tf::ACK == 0 {
            return Some((8, a));
        }
        if thl > tcp::MIN_HEADER_LEN && thl <= seg.len() {
            unmap_sack(&mut seg[..thl], first, len);
        }
        return Some((8, unmap(a, first, len)));
    }
    let seq = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    if seq == first && seg.len() > thl {
        return None;
    }
    Some((4, seq.wrapping_add(len)))
}

/// After the mode's transmit of a packet of a session with a client-address
/// choice ([`concerns`]) that [`established_shift`] did not take: the
/// packet's rewrite (sequence numbers, MSS) or the insertion the worker
/// must make. `old` is the state before this packet, `out` the direction
/// (real server to client). A packet that would outgrow the output port's
/// IP MTU gets no TOA (`toa_no_room`) or, for a PROXY header, is dropped
/// (`drop_proxy_header_no_room`; the SYN's MSS was lowered so that a
/// client's full segment fits).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_forward(
    table: &mut Table,
    counters: &WorkerCounters,
    ifaces: &[Iface],
    i: u32,
    s: &Session,
    old: State,
    out: bool,
    tcp_flags: u8,
    frame: &mut [u8],
    act: Action,
) -> Action {
    slow(table, counters, ifaces, i, s, old, out, tcp_flags, frame, act)
}

/// Everything else [`on_forward`] does: TOA, the MSS of SYNs, the header.
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn slow(
    table: &mut Table,
    counters: &WorkerCounters,
    ifaces: &[Iface],
    i: u32,
    s: &Session,
    old: State,
    out: bool,
    tcp_flags: u8,
    frame: &mut [u8],
    act: Action,
) -> Action {
    let Action::Forward { port, next_hop } = act else { return act };
    let mtu = || ifaces.iter().find(|f| f.port == port).map_or(1500, |f| f.mtu as usize);
    let ca = of_flags(s.flags);
    let syn = tcp_flags & tf::SYN != 0;
    let ack = tcp_flags & tf::ACK != 0;
    let rst = tcp_flags & tf::RST != 0;
    if ca == ClientAddr::Toa {
        if out {
            return act;
        }
        let toa = if syn { !ack } else { ack && !rst && old == State::SynRecv };
        if syn && !ack {
            clamp_mss(frame, TOA_LEN as u16);
        }
        if !toa {
            return act;
        }
        if ip_len(frame) + TOA_LEN > mtu() {
            counters.event(Event::ToaNoRoom, 1);
            return act;
        }
        table.pending = Insert::Toa { addr: s.cip, port: s.cport };
        return Action::Grow { port, next_hop };
    }
    let (isn, len) = table.get(i);
    if len == 0 {
        return act;
    }
    let first = isn.wrapping_add(1);
    let (tl, hl, thl) = lengths(frame);
    if out {
        if ack {
            unmap_acks(&mut frame[ETH + hl..], thl, first, len);
        }
        return act;
    }
    if syn {
        clamp_mss(frame, len as u16);
        return act;
    }
    let seq = tcp::Packet::new_unchecked(&frame[ETH + hl..]).seq_number();
    // The first data, or the handshake's ACK: the header goes before it.
    if seq == first && !rst && (tl > hl + thl || (ack && old == State::SynRecv)) {
        if tl + len as usize > mtu() {
            return Action::Drop(Drop::ProxyHeaderNoRoom);
        }
        let v2 = ca == ClientAddr::ProxyV2;
        table.pending = Insert::Proxy { v2, src: s.cip, dst: s.vip, sport: s.cport, dport: s.vport };
        return Action::Grow { port, next_hop };
    }
    tcp::Packet::new_unchecked(&mut frame[ETH + hl..]).rewrite_seq_number(seq.wrapping_add(len));
    act
}

/// The IPv4 total length, IPv4 header length and TCP header length of a
/// TCP frame the engine checked (so they are in bounds).
#[inline(always)]
fn lengths(frame: &[u8]) -> (usize, usize, usize) {
    let ip = ipv4::Packet::new_unchecked(&frame[ETH..]);
    let hl = ip.header_len();
    (usize::from(ip.total_len()), hl, tcp::Packet::new_unchecked(&frame[ETH + hl..]).header_len())
}

/// Maps a server segment's acknowledgement number and SACK edges (`seg`:
/// its TCP segment, `thl` its header length) back to the client's
/// sequence space, with incremental checksum updates.
#[inline(always)]
fn unmap_acks(seg: &mut [u8], thl: usize, first: u32, len: u32) {
    let mut t = tcp::Packet::new_unchecked(&mut *seg);
    let a = t.ack_number();
    let na = unmap(a, first, len);
    if na != a {
        t.rewrite_ack_number(na);
    }
    if thl > tcp::MIN_HEADER_LEN {
        unmap_sack(&mut seg[..thl], first, len);
    }
}

/// Maps the SACK blocks of a server segment's options (`hdr`: its TCP
/// header) back to the client's sequence space.
fn unmap_sack(hdr: &mut [u8], first: u32, len: u32) {
    let mut walk = tcp::OptionWalk::default();
    while let Some((kind, o, l)) = walk.next(hdr) {
        if kind != 5 {
            continue;
        }
        let mut e = o + 2;
        while e + 4 <= o + l {
            let v = u32::from_be_bytes([hdr[e], hdr[e + 1], hdr[e + 2], hdr[e + 3]]);
            let nv = unmap(v, first, len);
            if nv != v {
                hdr[e..e + 4].copy_from_slice(&nv.to_be_bytes());
                let mut t = tcp::Packet::new_unchecked(&mut *hdr);
                let c = checksum::update32(t.checksum(), v, nv);
                t.set_checksum(c);
            }
            e += 4;
        }
    }
}

/// Carries out [`Action::Grow`] on `pkt`; `Err` names what stopped it:
/// an event (forward unchanged) or a drop.
pub fn apply<B: PacketBuf>(pkt: &mut B, ins: Insert) -> Result<(), Result<Event, Drop>> {
    if let Insert::ProxyUdp { src, dst, sport, dport } = ins {
        return apply_udp(pkt, src, dst, sport, dport);
    }
    let Some((hl, tl, thl)) = offsets(pkt.as_ref()) else { return Err(Err(Drop::L4Malformed)) };
    let mut hdr = [0u8; V1_MAX];
    let (at, n) = match ins {
        Insert::Toa { addr, port } => {
            if thl + TOA_LEN > TCP_MAX_HEADER {
                return Err(Ok(Event::ToaNoRoom));
            }
            hdr[0] = TOA_KIND;
            hdr[1] = TOA_LEN as u8;
            hdr[2..4].copy_from_slice(&port.to_be_bytes());
            hdr[4..8].copy_from_slice(&addr.to_be_bytes());
            (ETH + hl + tcp::MIN_HEADER_LEN, TOA_LEN)
        }
        Insert::Proxy { v2, src, dst, sport, dport } => {
            (ETH + hl + thl, proxy_header(v2, src, dst, sport, dport, &mut hdr))
        }
        Insert::ProxyUdp { .. } => return Err(Err(Drop::L4Malformed)),
        Insert::Options { bytes, n } => {
            let n = usize::from(n);
            if thl + n > TCP_MAX_HEADER || n % 4 != 0 || n > bytes.len() {
                return Err(Err(Drop::SynproxyNoRoom));
            }
            hdr[..n].copy_from_slice(&bytes[..n]);
            (ETH + hl + thl, n)
        }
    };
    let end = ETH + tl;
    let new_end = end + n;
    if new_end > u16::MAX as usize + ETH {
        return Err(Err(Drop::ProxyHeaderNoRoom));
    }
    if pkt.as_ref().len() < new_end && !pkt.set_len(new_end) {
        return Err(match ins {
            Insert::Toa { .. } => Ok(Event::ToaNoRoom),
            Insert::Proxy { .. } | Insert::ProxyUdp { .. } => Err(Drop::ProxyHeaderNoRoom),
            Insert::Options { .. } => Err(Drop::SynproxyNoRoom),
        });
    }
    pkt.truncate(new_end);
    let f = pkt.as_mut();
    f.copy_within(at..end, at + n);
    f[at..at + n].copy_from_slice(&hdr[..n]);
    let mut ip = ipv4::Packet::new_unchecked(&mut f[ETH..new_end]);
    ip.set_total_len((tl + n) as u16);
    ip.fill_checksum();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let mut t = tcp::Packet::new_unchecked(&mut f[ETH + hl..new_end]);
    match ins {
        Insert::Toa { .. } => t.set_header_len(thl + TOA_LEN),
        Insert::Options { n, .. } => t.set_header_len(thl + usize::from(n)),
        Insert::Proxy { .. } | Insert::ProxyUdp { .. } => {}
    }
    t.fill_checksum(src, dst);
    Ok(())
}

/// [`apply`] of [`Insert::ProxyUdp`]: the header before the UDP payload,
/// UDP and IPv4 lengths and checksums made right.
fn apply_udp<B: PacketBuf>(
    pkt: &mut B,
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
) -> Result<(), Result<Event, Drop>> {
    let f = pkt.as_ref();
    let Some((hl, tl)) = ipv4::Packet::new_checked(f.get(ETH..).unwrap_or(&[]))
        .ok()
        .map(|ip| (ip.header_len(), ip.total_len() as usize))
        .filter(|(hl, tl)| *tl >= hl + 8 && f.len() >= ETH + tl)
    else {
        return Err(Err(Drop::L4Malformed));
    };
    let mut hdr = [0u8; V1_MAX];
    let n = proxy_header(true, src, dst, sport, dport, &mut hdr);
    hdr[13] = 0x12; // AF_INET, DGRAM
    let (at, end) = (ETH + hl + 8, ETH + tl);
    let new_end = end + n;
    if new_end > u16::MAX as usize + ETH {
        return Err(Err(Drop::ProxyHeaderNoRoom));
    }
    if pkt.as_ref().len() < new_end && !pkt.set_len(new_end) {
        return Err(Err(Drop::ProxyHeaderNoRoom));
    }
    pkt.truncate(new_end);
    let f = pkt.as_mut();
    f.copy_within(at..end, at + n);
    f[at..at + n].copy_from_slice(&hdr[..n]);
    let mut ip = ipv4::Packet::new_unchecked(&mut f[ETH..new_end]);
    ip.set_total_len((tl + n) as u16);
    ip.fill_checksum();
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let mut u = udp::Packet::new_unchecked(&mut f[ETH + hl..new_end]);
    u.set_len((tl - hl + n) as u16);
    u.fill_checksum(s, d);
    Ok(())
}

/// Counts the outcome of [`apply`] that stopped it; whether the packet is
/// still sent.
pub fn count(counters: &WorkerCounters, r: Result<(), Result<Event, Drop>>, ins: Insert) -> bool {
    match r {
        Ok(()) => {
            match ins {
                Insert::Toa { .. } => counters.event(Event::ToaAdded, 1),
                Insert::Proxy { .. } | Insert::ProxyUdp { .. } => counters.event(Event::ProxyHeadersSent, 1),
                // Counted by the engine (`synproxy_conns_opened`).
                Insert::Options { .. } => {}
            }
            true
        }
        Err(Ok(ev)) => {
            counters.event(ev, 1);
            true
        }
        Err(Err(d)) => {
            counters.count_drop(d);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_hold_each_choice() {
        for ca in [ClientAddr::None, ClientAddr::Toa, ClientAddr::ProxyV1, ClientAddr::ProxyV2] {
            let f = Flags::ACTIVE | Flags::SEQ_OUT | flags_of(ca);
            assert_eq!(of_flags(f), ca);
            assert!(f.contains(Flags::ACTIVE | Flags::SEQ_OUT));
        }
    }

    #[test]
    fn the_longest_v1_line_fits() {
        let mut b = [0; V1_MAX];
        let n = proxy_header(false, u32::MAX, u32::MAX, 65535, 65535, &mut b);
        assert_eq!(&b[..n], b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
        let n = proxy_header(false, 0xc612_0002, 0xc612_0064, 40000, 80, &mut b);
        assert_eq!(&b[..n], b"PROXY TCP4 198.18.0.2 198.18.0.100 40000 80\r\n");
        assert_eq!(proxy_header(true, 1, 2, 3, 4, &mut b), V2_LEN);
        assert_eq!(&b[..16], b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c");
    }

    #[test]
    fn acknowledgements_inside_the_header_map_to_its_start() {
        let (first, len) = (u32::MAX - 2, 10);
        assert_eq!(unmap(first, first, len), first);
        assert_eq!(unmap(first.wrapping_add(5), first, len), first);
        assert_eq!(unmap(first.wrapping_add(10), first, len), first);
        assert_eq!(unmap(first.wrapping_add(25), first, len), first.wrapping_add(15));
        // Before the first byte (an old segment): untouched.
        assert_eq!(unmap(first.wrapping_sub(1), first, len), first.wrapping_sub(1));
    }
}

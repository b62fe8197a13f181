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
//!
//! IPv6 clients (issue 17): the same choices for FULLNAT66 and NAT64
//! sessions, in the same functions over a [`Conn`] of either family (a
//! session of either table gives one, [`Client`]), whatever the family of
//! the frame the real server gets:
//! - TOA carries the IPv6 client as DPVS's `tcpopt_ip6_addr`: kind 254,
//!   length 20, port, 16 address bytes ([`TOA6_LEN`]), also toward an
//!   IPv4 real server (NAT64: what DPVS sends, and what its TOA module's
//!   NAT64 lookup reads). The SYN's MSS is lowered by 20.
//! - PROXY v1 is `PROXY TCP6 CIP VIP CPORT VPORT\r\n` (addresses in RFC
//!   5952 text), v2 has AF_INET6 (0x21) and 36 address bytes, for NAT64
//!   too: the header describes the client's connection, to the IPv6 VIP
//!   (haproxy's `proxy-protocol.txt` §2.1, §2.2).
//! - NAT64 keeps the sequence numbers of the frame it has: a client's
//!   segment is shifted in its IPv6 frame, a server's acknowledgement in
//!   its IPv4 frame, before the worker translates them (the translation
//!   updates the TCP checksum incrementally, so the shifted value
//!   stays covered); what is inserted goes in after translation into IPv4
//!   ([`crate::engine::Action::Nat64Grow`]).
//! - FULLNAT66's frames grow in their IPv6 payload
//!   ([`crate::engine::Action::Grow6`]), extension headers kept in front.

use std::net::{Ipv4Addr, Ipv6Addr};

use gw_proto::{ClientAddr, ForwardMode};

use crate::counters::{Drop, Event, WorkerCounters};
use crate::engine::Action;
use crate::route::Iface;
use crate::session::ipv6::Session6;
use crate::session::{Flags, Session};
use crate::tcp_state::{flags as tf, State};
use crate::wire::checksum;
use crate::wire::ethernet::HEADER_LEN as ETH;
use crate::wire::{ipv4, ipv6, tcp, udp};
use crate::worker::PacketBuf;

/// TOA's option kind and length.
pub const TOA_KIND: u8 = 254;
pub const TOA_LEN: usize = 8;
/// TOA's length for an IPv6 client (DPVS's `TCP_OLEN_IP6_ADDR`: kind,
/// length, port, 16 address bytes).
pub const TOA6_LEN: usize = 20;
/// TCP's largest header (data offset 15).
const TCP_MAX_HEADER: usize = 60;
/// PROXY v2's signature.
pub const V2_SIG: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// PROXY v2 header length for TCP over IPv4.
pub const V2_LEN: usize = 16 + 12;
/// The longest PROXY v1 line for IPv4.
pub const V1_MAX: usize = 56;
/// PROXY v2 header length for TCP over IPv6 (36 address bytes).
pub const V2_LEN6: usize = 16 + 36;
/// The longest PROXY header: haproxy's 107-byte v1 line (`PROXY TCP6`,
/// two 39-character addresses, two ports).
pub const HDR_MAX: usize = 108;

/// The connection a client-address insert describes: the client and the
/// virtual service it connected to, IPv4 (`v6` false: the addresses are
/// `u32` values) or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    pub v6: bool,
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
}

impl Conn {
    /// An IPv4 client's connection (host order).
    pub fn v4(src: u32, dst: u32, sport: u16, dport: u16) -> Conn {
        Conn { v6: false, src: src.into(), dst: dst.into(), sport, dport }
    }
    /// An IPv6 client's connection.
    pub fn v6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Conn {
        Conn { v6: true, src: src.into(), dst: dst.into(), sport, dport }
    }
    /// The TOA option's length for this client.
    #[inline]
    pub fn toa_len(&self) -> usize {
        if self.v6 {
            TOA6_LEN
        } else {
            TOA_LEN
        }
    }
}

/// A session of either table, as the client-address steps read it.
pub(crate) trait Client {
    fn flags(&self) -> Flags;
    /// Client -> virtual service.
    fn conn(&self) -> Conn;
}

impl Client for Session {
    #[inline(always)]
    fn flags(&self) -> Flags {
        self.flags
    }
    #[inline]
    fn conn(&self) -> Conn {
        Conn::v4(self.cip, self.vip, self.cport, self.vport)
    }
}

impl Client for Session6 {
    #[inline(always)]
    fn flags(&self) -> Flags {
        self.flags
    }
    #[inline]
    fn conn(&self) -> Conn {
        Conn::v6(self.cip.into(), self.vip.into(), self.cport, self.vport)
    }
}

/// Whether a new session of a service with choice `ca` takes it: FULLNAT
/// only (NAT64 is FULLNAT toward an IPv4 server), TCP any choice, UDP
/// PROXY v2 (UOA).
#[inline]
pub(crate) fn applies(ca: ClientAddr, mode: ForwardMode, tcp: bool) -> bool {
    mode == ForwardMode::FullNat && if tcp { ca != ClientAddr::None } else { ca == ClientAddr::ProxyV2 }
}

/// What to add to a packet on its way to the real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// A TOA option with the client's address and port (host order).
    Toa { addr: u32, port: u16 },
    /// A TOA option with an IPv6 client's address and port ([`TOA6_LEN`]).
    Toa6 { addr: u128, port: u16 },
    /// A PROXY header before the payload describing `c`.
    Proxy { v2: bool, c: Conn },
    /// UOA: a PROXY v2 header (DGRAM) before the payload of a UDP datagram.
    ProxyUdp { c: Conn },
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

/// Writes the PROXY header for `c` into `out` (STREAM, or DGRAM for v2
/// if `dgram`); its length.
pub fn proxy_header(v2: bool, dgram: bool, c: &Conn, out: &mut [u8; HDR_MAX]) -> usize {
    if v2 {
        let (fam, alen) = if c.v6 { (0x20, 36) } else { (0x10, 12) };
        out[..12].copy_from_slice(&V2_SIG);
        out[12] = 0x21; // version 2, PROXY
        out[13] = fam | if dgram { 0x2 } else { 0x1 }; // AF_INET(6), STREAM/DGRAM
        out[14..16].copy_from_slice(&(alen as u16).to_be_bytes());
        let a = if c.v6 {
            out[16..32].copy_from_slice(&c.src.to_be_bytes());
            out[32..48].copy_from_slice(&c.dst.to_be_bytes());
            48
        } else {
            out[16..20].copy_from_slice(&(c.src as u32).to_be_bytes());
            out[20..24].copy_from_slice(&(c.dst as u32).to_be_bytes());
            24
        };
        out[a..a + 2].copy_from_slice(&c.sport.to_be_bytes());
        out[a + 2..a + 4].copy_from_slice(&c.dport.to_be_bytes());
        return a + 4;
    }
    let mut w = Cursor { buf: out, n: 0 };
    use std::io::Write;
    let (sport, dport) = (c.sport, c.dport);
    let _ = if c.v6 {
        let (s, d) = (Ipv6Addr::from(c.src), Ipv6Addr::from(c.dst));
        write!(w, "PROXY TCP6 {s} {d} {sport} {dport}\r\n")
    } else {
        let (s, d) = (Ipv4Addr::from(c.src as u32), Ipv4Addr::from(c.dst as u32));
        write!(w, "PROXY TCP4 {s} {d} {sport} {dport}\r\n")
    };
    w.n
}

/// A `Write` into a fixed array (no allocation).
struct Cursor<'a> {
    buf: &'a mut [u8; HDR_MAX],
    n: usize,
}

impl std::io::Write for Cursor<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let k = b.len().min(HDR_MAX - self.n);
        self.buf[self.n..self.n + k].copy_from_slice(&b[..k]);
        self.n += k;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bytes a SYNPROXY cookie SYN-ACK's MSS leaves for the PROXY header of a
/// service handing the client address as `ca` (the longest header of the
/// client's family; 0 without a header): the client sizes its first
/// segment by that MSS, and the header goes in front of it.
pub fn mss_room(ca: ClientAddr, v6: bool) -> u16 {
    (match (ca, v6) {
        (ClientAddr::ProxyV1, false) => V1_MAX,
        (ClientAddr::ProxyV1, true) => HDR_MAX,
        (ClientAddr::ProxyV2, false) => V2_LEN,
        (ClientAddr::ProxyV2, true) => V2_LEN6,
        _ => 0,
    }) as u16
}

/// The PROXY header length of session `s`.
pub fn proxy_len(v2: bool, s: &Session) -> usize {
    proxy_len_of(v2, &s.conn())
}

/// The PROXY (TCP) header length for `c`.
pub fn proxy_len_of(v2: bool, c: &Conn) -> usize {
    let mut b = [0; HDR_MAX];
    proxy_header(v2, false, c, &mut b)
}

/// Per session index: the client's ISN and the header length (0: not a
/// PROXY session); IPv4 sessions' entries first, then IPv6 sessions'
/// ([`Table::slot6`]). Allocated zeroed for the whole session tables, so
/// pages no PROXY session uses are never touched.
pub struct Table {
    entries: Vec<(u32, u32)>,
    /// The entry of IPv6 session `i` is `v6_base + i`.
    v6_base: u32,
    /// What the last [`Action::Grow`] asks for (kept here, not in the
    /// action, so that every other action stays small).
    pending: Insert,
}

impl Table {
    /// A table for `capacity` IPv4 and `capacity6` IPv6 sessions.
    pub fn new(capacity: usize, capacity6: usize) -> Table {
        Table {
            entries: vec![(0, 0); capacity + capacity6],
            v6_base: capacity as u32,
            pending: Insert::Toa { addr: 0, port: 0 },
        }
    }
    /// The entry index of IPv6 session `i`.
    #[inline]
    pub fn slot6(&self, i: u32) -> u32 {
        self.v6_base + i
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
        let (isn, len) = self.entries.get(i as usize).copied().unwrap_or((0, 0));
        (isn, len & !ACKED)
    }
    /// Whether the server of entry `i` has acknowledged the whole header.
    fn acked(&self, i: u32) -> bool {
        self.entries.get(i as usize).is_some_and(|e| e.1 & ACKED != 0)
    }
    /// Entry `i`'s server acknowledged `ack`: past the header, it is known
    /// to have it (a new ISN, [`Table::set`], forgets).
    fn note_ack(&mut self, i: u32, ack: u32) {
        if let Some(e) = self.entries.get_mut(i as usize) {
            // After ISN+1 as `unmap` takes it, and past the header.
            let off = ack.wrapping_sub(e.0.wrapping_add(1));
            if e.1 & ACKED == 0 && off >= e.1 && off < BEFORE.wrapping_neg() {
                e.1 |= ACKED;
            }
        }
    }
}

/// The bit of a [`Table`] entry's length that says the server has
/// acknowledged the header: until then a client segment at ISN+1, a bare
/// ACK too (the handshake's again, after the first was lost), carries it.
const ACKED: u32 = 1 << 31;

/// A forwarding action toward the real server and the one that grows the
/// frame first, with its output port: [`Action::Grow`], [`Action::Grow6`]
/// or, NAT64, [`Action::Nat64Grow`]. `None` for anything else (a reply
/// such as Packet Too Big, a drop).
#[inline]
fn growing(act: Action) -> Option<(u16, Action)> {
    match act {
        Action::Forward { port, next_hop } => Some((port, Action::Grow { port, next_hop })),
        Action::Forward6 { port, next_hop } => Some((port, Action::Grow6 { port, next_hop })),
        Action::Nat64To4 { port, next_hop } => Some((port, Action::Nat64Grow { port, next_hop })),
        _ => None,
    }
}

/// The IP MTU of port `port` (1500 if it is not configured).
fn mtu_of(ifaces: &[Iface], port: u16) -> usize {
    ifaces.iter().find(|f| f.port == port).map_or(1500, |f| f.mtu as usize)
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
    s: &impl Client,
    out: bool,
    frame: &mut [u8],
    act: Action,
) -> Action {
    let Some((port, grown)) = growing(act) else { return act };
    let (_, len) = table.get(i);
    if out || len == 0 {
        return act;
    }
    let tl = geo(frame).map_or(usize::MAX / 2, |g| out_len(&g, act));
    if tl + len as usize > mtu_of(ifaces, port) {
        return Action::Drop(Drop::ProxyHeaderNoRoom);
    }
    table.set(i, 0, 0);
    table.pending = Insert::ProxyUdp { c: s.conn() };
    grown
}

/// Where the parts of a TCP/UDP frame are: the transport header's offset
/// in the frame, the end of the IP packet, the IP family.
#[derive(Clone, Copy, Debug)]
struct Geo {
    l4: usize,
    end: usize,
    v6: bool,
}

/// [`Geo`] of an IPv4 or IPv6 frame (an IPv6 one's extension headers
/// walked; a fragment is not one); `None` if it does not look like one.
fn geo(frame: &[u8]) -> Option<Geo> {
    let l3 = frame.get(ETH..)?;
    match l3.first()? >> 4 {
        4 => {
            let ip = ipv4::Packet::new_checked(l3).ok()?;
            let (hl, tl) = (ip.header_len(), ip.total_len() as usize);
            Some(Geo { l4: ETH + hl, end: ETH + tl, v6: false })
        }
        6 => {
            let ip = ipv6::Packet::new_checked(l3).ok()?;
            let t = ip.transport().ok().filter(|t| t.fragment.is_none())?;
            let end = ETH + ipv6::HEADER_LEN + usize::from(ip.payload_len());
            Some(Geo { l4: ETH + t.offset, end, v6: true })
        }
        _ => None,
    }
}

/// [`geo`] of a TCP frame and its TCP header length.
fn tcp_geo(frame: &[u8]) -> Option<(Geo, usize)> {
    let g = geo(frame)?;
    let t = tcp::Packet::new_checked(frame.get(g.l4..g.end)?).ok()?;
    Some((g, t.header_len()))
}

/// The IP length the packet of `g` has when it leaves as `act` says:
/// translated to IPv4 (NAT64), its transport bytes under a 20-byte IPv4
/// header.
#[inline]
fn out_len(g: &Geo, act: Action) -> usize {
    match act {
        Action::Nat64To4 { .. } => g.end - g.l4 + ipv4::MIN_HEADER_LEN,
        _ => g.end - ETH,
    }
}

/// Lowers the MSS option of a SYN (`hdr`: its TCP header) by `by` bytes,
/// updating the checksum incrementally.
fn clamp_mss(hdr: &mut [u8], by: u16) {
    let mut walk = tcp::OptionWalk::default();
    while let Some((kind, o, len)) = walk.next(hdr) {
        if kind == 2 && len == 4 {
            let old = u16::from_be_bytes([hdr[o + 2], hdr[o + 3]]);
            let new = old.saturating_sub(by).max(536);
            if new < old {
                hdr[o + 2..o + 4].copy_from_slice(&new.to_be_bytes());
                let mut t = tcp::Packet::new_unchecked(&mut *hdr);
                let c = checksum::update16_at(t.checksum(), o + 2, old, new);
                t.set_checksum(c);
            }
            return;
        }
    }
}

/// Maps a server acknowledgement (or SACK edge) back to the client's
/// sequence space: minus the header, an edge inside the header to ISN+1.
/// Everything the server acknowledges lies at or after ISN+1, however far
/// the connection has gone (2 GiB and more: a signed distance would stop
/// mapping there); only a value just before it (within [`BEFORE`], an old
/// segment or a keepalive's) is left as it is.
#[inline]
pub(crate) fn unmap(v: u32, first: u32, len: u32) -> u32 {
    let off = v.wrapping_sub(first);
    if off >= BEFORE.wrapping_neg() {
        v
    } else if off < len {
        first
    } else {
        v.wrapping_sub(len)
    }
}

/// How far before ISN+1 a value [`unmap`] is given is taken as before it.
const BEFORE: u32 = 1 << 16;

/// Puts back in the client's sequence space the TCP sequence number at
/// `at` in ICMP or ICMPv6 message `icmp`, an error toward the client that
/// quotes a segment of the session whose [`Table`] entry is `i` (flags
/// `f`), shifted by a PROXY header; the message's checksum (bytes 2..4 in
/// both; the seq is not in ICMPv6's pseudo header) is updated
/// incrementally. The client's TCP takes an error only if the quoted
/// number lies in its send window (Linux `tcp_v4_err`, `tcp_v6_err`), so
/// a Packet Too Big quoting a shifted segment would be lost. IPv6 sessions
/// (FULLNAT66, NAT64); IPv4's is `engine/icmp.rs`'s `quoted_seq`.
pub(crate) fn unmap_quoted(table: &Table, i: u32, f: Flags, icmp: &mut [u8], at: usize) {
    let (isn, len) = table.get(i);
    if f.client_addr_bits() < 2 || len == 0 || icmp.len() < 4 {
        return;
    }
    let Some(b) = icmp.get_mut(at..at + 4) else { return };
    let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let nv = unmap(v, isn.wrapping_add(1), len);
    if nv == v {
        return;
    }
    b.copy_from_slice(&nv.to_be_bytes());
    let c = checksum::update32(u16::from_be_bytes([icmp[2], icmp[3]]), v, nv);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
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
/// `tl`: the packet's IPv4 total length. IPv4 sessions; IPv6 ones take
/// [`shift_established`] after their transmit.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn established_shift(
    table: &mut Table,
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
    // The engine checked both headers: read them without a second parse.
    let hl = usize::from(frame[ETH] & 0xf) * 4;
    segment_shift(table, i, out, tcp_flags, frame.get_mut(ETH + hl..ETH + tl)?)
}

/// [`established_shift`]'s step on TCP segment `seg` (header checked by
/// the engine) of table entry `i`, for either family.
#[inline(always)]
fn segment_shift(
    table: &mut Table,
    i: u32,
    out: bool,
    tcp_flags: u8,
    seg: &mut [u8],
) -> Option<(usize, u32)> {
    let (isn, len) = table.get(i);
    if len == 0 {
        return None;
    }
    let first = isn.wrapping_add(1);
    let h = seg.first_chunk::<{ tcp::MIN_HEADER_LEN }>()?;
    let thl = usize::from(h[12] >> 4) * 4;
    if out {
        let a = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        if tcp_flags & tf::ACK == 0 {
            return Some((8, a));
        }
        table.note_ack(i, a);
        if thl > tcp::MIN_HEADER_LEN && thl <= seg.len() {
            unmap_sack(&mut seg[..thl], first, len);
        }
        return Some((8, unmap(a, first, len)));
    }
    let seq = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    if seq == first && (seg.len() > thl || !table.acked(i)) {
        return None;
    }
    Some((4, seq.wrapping_add(len)))
}

/// The established PROXY segment of an IPv6 session (FULLNAT66, NAT64)
/// after its mode's transmit `act`: its sequence or acknowledgement number
/// (and SACK edges) shifted in place on TCP segment `seg`, the one the
/// engine read, with an incremental checksum update; whether it was (else
/// [`on_forward`] does the rest: the handshake, the header, the MSS).
/// Spares every established segment the cold path's second parse.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn shift_established(
    table: &mut Table,
    i: u32,
    f: Flags,
    old: State,
    out: bool,
    tcp_flags: u8,
    seg: &mut [u8],
    act: Action,
) -> bool {
    let fwd = matches!(act, Action::Forward6 { .. } | Action::Nat64To4 { .. } | Action::Nat64To6 { .. });
    if !fwd || f.client_addr_bits() < 2 || tcp_flags & (tf::SYN | tf::RST) != 0 || old == State::SynRecv {
        return false;
    }
    let Some((at, v)) = segment_shift(table, i, out, tcp_flags, seg) else { return false };
    let mut t = tcp::Packet::new_unchecked(seg);
    if at == 4 {
        t.rewrite_seq_number(v);
    } else {
        t.rewrite_ack_number(v);
    }
    true
}

/// After the mode's transmit of a packet of a session with a client-address
/// choice ([`concerns`]) that [`established_shift`] did not take: the
/// packet's rewrite (sequence numbers, MSS) or the insertion the worker
/// must make. `old` is the state before this packet, `out` the direction
/// (real server to client), `i` the session's [`Table`] entry. A packet
/// that would outgrow the output port's IP MTU gets no TOA (`toa_no_room`)
/// or, for a PROXY header, is dropped (`drop_proxy_header_no_room`; the
/// SYN's MSS was lowered so that a client's full segment fits). The frame
/// is the one the worker will send or translate: IPv4 (FULLNAT, a NAT64
/// reply), IPv6 (FULLNAT66, a NAT64 client's packet).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_forward(
    table: &mut Table,
    counters: &WorkerCounters,
    ifaces: &[Iface],
    i: u32,
    s: &impl Client,
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
    s: &impl Client,
    old: State,
    out: bool,
    tcp_flags: u8,
    frame: &mut [u8],
    act: Action,
) -> Action {
    let ca = of_flags(s.flags());
    let syn = tcp_flags & tf::SYN != 0;
    let ack = tcp_flags & tf::ACK != 0;
    let rst = tcp_flags & tf::RST != 0;
    if out {
        // TOA: replies go unchanged; PROXY: their acknowledgements back.
        let fwd = matches!(act, Action::Forward { .. } | Action::Forward6 { .. } | Action::Nat64To6 { .. });
        if ca == ClientAddr::Toa || !fwd || !ack {
            return act;
        }
        let (isn, len) = table.get(i);
        if let Some((g, thl)) = tcp_geo(frame).filter(|_| len != 0) {
            table.note_ack(i, tcp::Packet::new_unchecked(&frame[g.l4..g.end]).ack_number());
            if syn {
                // The client sizes its segments by the MSS it receives: a
                // full first segment must leave room for the header (as
                // DPVS's tcp_out_adjust_mss).
                clamp_mss(&mut frame[g.l4..g.l4 + thl], len as u16);
            }
            unmap_acks(&mut frame[g.l4..g.end], thl, isn.wrapping_add(1), len);
        }
        return act;
    }
    let Some((port, grown)) = growing(act) else { return act };
    let Some((g, thl)) = tcp_geo(frame) else { return act };
    let c = s.conn();
    if ca == ClientAddr::Toa {
        let n = c.toa_len();
        let toa = if syn { !ack } else { ack && !rst && old == State::SynRecv };
        if syn && !ack {
            clamp_mss(&mut frame[g.l4..g.l4 + thl], n as u16);
        }
        if !toa {
            return act;
        }
        if out_len(&g, act) + n > mtu_of(ifaces, port) {
            counters.event(Event::ToaNoRoom, 1);
            return act;
        }
        table.pending = if c.v6 {
            Insert::Toa6 { addr: c.src, port: c.sport }
        } else {
            Insert::Toa { addr: c.src as u32, port: c.sport }
        };
        return grown;
    }
    let (isn, len) = table.get(i);
    if len == 0 {
        return act;
    }
    let first = isn.wrapping_add(1);
    if syn {
        // A new ISN on a kept session (a SYN again in SYN_RECV, a port
        // reused from TIME_WAIT): the header goes after this one.
        let seq = tcp::Packet::new_unchecked(&frame[g.l4..g.end]).seq_number();
        table.set(i, seq, len as usize);
        clamp_mss(&mut frame[g.l4..g.l4 + thl], len as u16);
        return act;
    }
    let seg = &mut frame[g.l4..g.end];
    let seq = tcp::Packet::new_unchecked(&*seg).seq_number();
    // The first data, or the handshake's ACK (again while the server has
    // not acknowledged the header: the first may have been lost): the
    // header goes before it.
    if seq == first && !rst && (seg.len() > thl || (ack && (old == State::SynRecv || !table.acked(i)))) {
        if out_len(&g, act) + len as usize > mtu_of(ifaces, port) {
            return Action::Drop(Drop::ProxyHeaderNoRoom);
        }
        table.pending = Insert::Proxy { v2: ca == ClientAddr::ProxyV2, c };
        return grown;
    }
    tcp::Packet::new_unchecked(seg).rewrite_seq_number(seq.wrapping_add(len));
    act
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
                let c = checksum::update32_at(t.checksum(), e, v, nv);
                t.set_checksum(c);
            }
            e += 4;
        }
    }
}

/// Writes a TOA option for `port` and `addr` (4 or 16 bytes) into `out`;
/// its length.
fn toa_option(out: &mut [u8; HDR_MAX], port: u16, addr: &[u8]) -> usize {
    let n = 4 + addr.len();
    out[0] = TOA_KIND;
    out[1] = n as u8;
    out[2..4].copy_from_slice(&port.to_be_bytes());
    out[4..n].copy_from_slice(addr);
    n
}

/// The largest frame an IP packet of `g`'s family may grow to (a 16-bit
/// length field: IPv4's total length, IPv6's payload length).
fn max_end(g: &Geo) -> usize {
    ETH + u16::MAX as usize + if g.v6 { ipv6::HEADER_LEN } else { 0 }
}

/// Carries out [`Action::Grow`] (and [`Action::Grow6`], and
/// [`Action::Nat64Grow`] after translation) on `pkt`; `Err` names what
/// stopped it: an event (forward unchanged) or a drop.
pub fn apply<B: PacketBuf>(pkt: &mut B, ins: Insert) -> Result<(), Result<Event, Drop>> {
    if let Insert::ProxyUdp { c } = ins {
        return apply_udp(pkt, &c);
    }
    let Some((g, thl)) = tcp_geo(pkt.as_ref()) else { return Err(Err(Drop::L4Malformed)) };
    let mut hdr = [0u8; HDR_MAX];
    // First in the option space, if the header has room for it.
    let toa = |hdr: &mut [u8; HDR_MAX], port: u16, addr: &[u8]| {
        if thl + 4 + addr.len() > TCP_MAX_HEADER {
            return Err(Ok(Event::ToaNoRoom));
        }
        Ok((g.l4 + tcp::MIN_HEADER_LEN, toa_option(hdr, port, addr)))
    };
    let (at, n) = match ins {
        Insert::Toa { addr, port } => toa(&mut hdr, port, &addr.to_be_bytes())?,
        Insert::Toa6 { addr, port } => toa(&mut hdr, port, &addr.to_be_bytes())?,
        Insert::Proxy { v2, c } => (g.l4 + thl, proxy_header(v2, false, &c, &mut hdr)),
        Insert::ProxyUdp { .. } => return Err(Err(Drop::L4Malformed)),
        Insert::Options { bytes, n } => {
            let n = usize::from(n);
            if thl + n > TCP_MAX_HEADER || n % 4 != 0 || n > bytes.len() {
                return Err(Err(Drop::SynproxyNoRoom));
            }
            hdr[..n].copy_from_slice(&bytes[..n]);
            (g.l4 + thl, n)
        }
    };
    let end = g.end;
    let new_end = end + n;
    if new_end > max_end(&g) {
        return Err(Err(Drop::ProxyHeaderNoRoom));
    }
    if pkt.as_ref().len() < new_end && !pkt.set_len(new_end) {
        return Err(match ins {
            Insert::Toa { .. } | Insert::Toa6 { .. } => Ok(Event::ToaNoRoom),
            Insert::Proxy { .. } | Insert::ProxyUdp { .. } => Err(Drop::ProxyHeaderNoRoom),
            Insert::Options { .. } => Err(Drop::SynproxyNoRoom),
        });
    }
    pkt.truncate(new_end);
    let f = pkt.as_mut();
    f.copy_within(at..end, at + n);
    f[at..at + n].copy_from_slice(&hdr[..n]);
    let ends = grow_ip(f, &g, n);
    let mut t = tcp::Packet::new_unchecked(&mut f[g.l4..new_end]);
    match ins {
        Insert::Toa { .. } | Insert::Toa6 { .. } | Insert::Options { .. } => t.set_header_len(thl + n),
        Insert::Proxy { .. } | Insert::ProxyUdp { .. } => {}
    }
    match ends {
        Ends::V4(src, dst) => t.fill_checksum(src, dst),
        Ends::V6(src, dst) => t.fill_checksum_v6(src, dst),
    }
    Ok(())
}

/// An IP packet's source and destination.
enum Ends {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// Adds `n` bytes to the IP length of the packet of `g` in `f` (IPv4: and
/// its header checksum); its addresses, for the transport checksum.
fn grow_ip(f: &mut [u8], g: &Geo, n: usize) -> Ends {
    if g.v6 {
        let mut ip = ipv6::Packet::new_unchecked(&mut f[ETH..g.end + n]);
        let pl = ip.payload_len();
        ip.set_payload_len(pl + n as u16);
        return Ends::V6(ip.src_addr(), ip.dst_addr());
    }
    let mut ip = ipv4::Packet::new_unchecked(&mut f[ETH..g.end + n]);
    ip.set_total_len((g.end - ETH + n) as u16);
    ip.fill_checksum();
    Ends::V4(ip.src_addr(), ip.dst_addr())
}

/// [`apply`] of [`Insert::ProxyUdp`]: the header before the UDP payload,
/// UDP and IP lengths and checksums made right.
fn apply_udp<B: PacketBuf>(pkt: &mut B, c: &Conn) -> Result<(), Result<Event, Drop>> {
    let f = pkt.as_ref();
    let Some(g) = geo(f).filter(|g| g.end >= g.l4 + 8 && f.len() >= g.end) else {
        return Err(Err(Drop::L4Malformed));
    };
    let mut hdr = [0u8; HDR_MAX];
    let n = proxy_header(true, true, c, &mut hdr);
    let (at, end) = (g.l4 + 8, g.end);
    let new_end = end + n;
    if new_end > max_end(&g) {
        return Err(Err(Drop::ProxyHeaderNoRoom));
    }
    if pkt.as_ref().len() < new_end && !pkt.set_len(new_end) {
        return Err(Err(Drop::ProxyHeaderNoRoom));
    }
    pkt.truncate(new_end);
    let f = pkt.as_mut();
    f.copy_within(at..end, at + n);
    f[at..at + n].copy_from_slice(&hdr[..n]);
    let ends = grow_ip(f, &g, n);
    let mut u = udp::Packet::new_unchecked(&mut f[g.l4..new_end]);
    u.set_len((end - g.l4 + n) as u16);
    match ends {
        Ends::V4(s, d) => u.fill_checksum(s, d),
        Ends::V6(s, d) => u.fill_checksum_v6(s, d),
    }
    Ok(())
}

/// Counts the outcome of [`apply`] that stopped it; whether the packet is
/// still sent.
pub fn count(counters: &WorkerCounters, r: Result<(), Result<Event, Drop>>, ins: Insert) -> bool {
    match r {
        Ok(()) => {
            match ins {
                Insert::Toa { .. } | Insert::Toa6 { .. } => counters.event(Event::ToaAdded, 1),
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
        let mut b = [0; HDR_MAX];
        let c = Conn::v4(u32::MAX, u32::MAX, 65535, 65535);
        let n = proxy_header(false, false, &c, &mut b);
        assert_eq!(&b[..n], b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
        assert_eq!(n, V1_MAX);
        let n = proxy_header(false, false, &Conn::v4(0xc612_0002, 0xc612_0064, 40000, 80), &mut b);
        assert_eq!(&b[..n], b"PROXY TCP4 198.18.0.2 198.18.0.100 40000 80\r\n");
        assert_eq!(proxy_header(true, false, &Conn::v4(1, 2, 3, 4), &mut b), V2_LEN);
        assert_eq!(&b[..16], b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c");
    }

    /// haproxy's proxy-protocol.txt §2.1: the longest TCP6 line is
    /// 104 bytes ("PROXY UNKNOWN" with full addresses makes its 107).
    #[test]
    fn the_longest_tcp6_line_fits_and_v2_has_36_address_bytes() {
        let mut b = [0; HDR_MAX];
        let all = Ipv6Addr::from(u128::MAX);
        let n = proxy_header(false, false, &Conn::v6(all, all, 65535, 65535), &mut b);
        let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        assert_eq!(&b[..n], format!("PROXY TCP6 {f} {f} 65535 65535\r\n").as_bytes());
        assert_eq!(n, 104);
        let (cip, vip) = ("2001:db8::100".parse().unwrap(), "2001:db8::50".parse().unwrap());
        let c = Conn::v6(cip, vip, 40000, 80);
        let n = proxy_header(false, false, &c, &mut b);
        assert_eq!(&b[..n], b"PROXY TCP6 2001:db8::100 2001:db8::50 40000 80\r\n");
        assert_eq!(proxy_header(true, false, &c, &mut b), V2_LEN6);
        assert_eq!(&b[..16], b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24");
        assert_eq!(b[16..32], cip.octets());
        assert_eq!(b[32..48], vip.octets());
        assert_eq!(b[48..52], [0x9c, 0x40, 0, 80]);
        assert_eq!(proxy_header(true, true, &c, &mut b), V2_LEN6);
        assert_eq!(b[13], 0x22, "AF_INET6, DGRAM");
        assert_eq!(proxy_len_of(false, &Conn::v6(all, all, 65535, 65535)), 104);
    }

    #[test]
    fn the_toa_option_follows_dpvs_for_each_family() {
        let mut b = [0; HDR_MAX];
        assert_eq!(toa_option(&mut b, 40000, &[198, 18, 0, 2]), TOA_LEN);
        assert_eq!(b[..8], [254, 8, 0x9c, 0x40, 198, 18, 0, 2]);
        let a: Ipv6Addr = "2001:db8::100".parse().unwrap();
        assert_eq!(toa_option(&mut b, 40000, &a.octets()), TOA6_LEN);
        assert_eq!(b[..4], [254, 20, 0x9c, 0x40]);
        assert_eq!(b[4..20], a.octets());
        assert_eq!(Conn::v6(a, a, 1, 2).toa_len(), 20);
        assert_eq!(Conn::v4(1, 2, 1, 2).toa_len(), 8);
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
        // 2 GiB and more of client data on: still mapped.
        for sent in [1u32 << 31, (1 << 31) + 4096, u32::MAX - (1 << 17)] {
            assert_eq!(
                unmap(first.wrapping_add(len).wrapping_add(sent), first, len),
                first.wrapping_add(sent)
            );
        }
    }

    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    const C6: &str = "2001:db8:77::9";
    const V6: &str = "2001:db8::50";

    fn conn6() -> Conn {
        Conn::v6(C6.parse().unwrap(), V6.parse().unwrap(), 40000, 80)
    }

    /// An IPv6 frame from the local address to a real server carrying
    /// `payload` over TCP (`tcp`) or UDP, with a destination options header
    /// (8 bytes, a PadN) between the IPv6 header and the transport one.
    fn frame6(tcp: bool, payload: &[u8]) -> Vec<u8> {
        let (lip, rip): (Ipv6Addr, Ipv6Addr) =
            ("2001:db8::60".parse().unwrap(), "2001:db8::200".parse().unwrap());
        let b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv6(lip.octets(), rip.octets(), 63);
        let mut f = vec![];
        if tcp {
            let opts = [etherparse::TcpOptionElement::MaximumSegmentSize(1400)];
            b.tcp(5000, 8080, 77, 1000).ack(9).options(&opts).unwrap().write(&mut f, payload).unwrap();
        } else {
            b.udp(5000, 8080).write(&mut f, payload).unwrap();
        }
        // Destination options (next header 60) in front of the transport.
        let nh = f[ETH + 6];
        f[ETH + 6] = 60;
        let pl = u16::from_be_bytes([f[ETH + 4], f[ETH + 5]]) + 8;
        f[ETH + 4..ETH + 6].copy_from_slice(&pl.to_be_bytes());
        let at = ETH + ipv6::HEADER_LEN;
        f.splice(at..at, [nh, 0, 1, 4, 0, 0, 0, 0]);
        f
    }

    /// (payload length field, extension headers kept, TCP options, payload)
    /// of a frame as etherparse reads it; its TCP/UDP checksum verified.
    fn read6(f: &[u8]) -> (usize, Vec<u8>, Vec<u8>) {
        let p = SlicedPacket::from_ethernet(f).expect("etherparse parses it");
        let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
        let h = ip.header().to_header();
        assert_eq!(usize::from(h.payload_length), f.len() - ETH - ipv6::HEADER_LEN, "payload length");
        assert_eq!(ip.extensions().first_header(), Some(etherparse::IpNumber(60)), "extension header kept");
        match &p.transport {
            Some(TransportSlice::Tcp(t)) => {
                assert_eq!(t.checksum(), t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap());
                (usize::from(h.payload_length), t.options().to_vec(), t.payload().to_vec())
            }
            Some(TransportSlice::Udp(u)) => {
                assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap());
                assert_eq!(usize::from(u.length()), 8 + u.payload().len());
                (usize::from(h.payload_length), vec![], u.payload().to_vec())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ipv6_frames_grow_behind_their_extension_headers() {
        let mut v1 = [0; HDR_MAX];
        let n1 = proxy_header(false, false, &conn6(), &mut v1);
        let mut v2 = [0; HDR_MAX];
        let n2 = proxy_header(true, true, &conn6(), &mut v2);
        // PROXY v1 before the data.
        let mut f = frame6(true, b"GET /");
        let (pl, opts, _) = read6(&f);
        assert_eq!(apply(&mut f, Insert::Proxy { v2: false, c: conn6() }), Ok(()));
        let (pl2, opts2, data) = read6(&f);
        assert_eq!((pl2, opts2), (pl + n1, opts.clone()));
        assert_eq!(data, [&v1[..n1], b"GET /"].concat());
        // TOA first in the options, the MSS after it.
        let mut f = frame6(true, b"");
        let c = conn6();
        assert_eq!(apply(&mut f, Insert::Toa6 { addr: c.src, port: c.sport }), Ok(()));
        let (pl2, opts2, _) = read6(&f);
        assert_eq!(pl2, pl - 5 + TOA6_LEN);
        assert_eq!(opts2[..4], [254, 20, 0x9c, 0x40]);
        assert_eq!(opts2[4..20], C6.parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(opts2[20..], opts[..]);
        // UDP: the v2 DGRAM header before the payload.
        let mut f = frame6(false, b"query");
        let (pl, _, _) = read6(&f);
        assert_eq!(apply(&mut f, Insert::ProxyUdp { c: conn6() }), Ok(()));
        let (pl2, _, data) = read6(&f);
        assert_eq!(pl2, pl + n2);
        assert_eq!(data, [&v2[..n2], b"query"].concat());
    }

    proptest! {
        /// Whatever bytes arrive, growing never panics and never writes
        /// past what it says the packet is.
        #[test]
        fn apply_never_panics_on_mutated_frames(
            tcp in any::<bool>(),
            muts in proptest::collection::vec((0usize..120, any::<u8>()), 0..6),
            cut in 0usize..40,
            which in 0usize..4,
        ) {
            let mut f = frame6(tcp, b"data");
            for (at, v) in muts {
                if let Some(b) = f.get_mut(at) {
                    *b = v;
                }
            }
            f.truncate(f.len() - cut);
            let c = conn6();
            let ins = [
                Insert::Proxy { v2: true, c },
                Insert::Toa6 { addr: c.src, port: c.sport },
                Insert::ProxyUdp { c },
                Insert::Toa { addr: 1, port: 2 },
            ][which];
            let before = f.len();
            if apply(&mut f, ins).is_ok() {
                prop_assert!(f.len() <= before + HDR_MAX + 8);
            }
        }
    }
}

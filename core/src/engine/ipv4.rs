//! IPv4: header checks, L4 dispatch, and a session's packet step.
//!
//! A TCP/UDP packet is matched to its session (client side first, then the
//! real-server side, unless it goes to a local address and can only be a
//! FULLNAT reply), or opens one ([`super::conn`]). Its session's forwarding
//! mode then decides the TTL check, the TCP state table and the transmit;
//! state, timers and counters move before the transmit, also when it then
//! fails (as IPVS).

use super::conn::{self, forwarded, unbind, NoDest};
use super::{bad_source, Action, Engine, EngineConfig};
use crate::client_addr;
use crate::counters::{Drop, Event};
use crate::modes::{self, XmitCx};
use crate::route::{self, Iface, Routes};
use crate::service::Snapshot;
use crate::session::{Flags, FlowKey, Session, SessionTable};
use crate::tcp_state::{self, Dir, State};
use crate::wire::ethernet;
use crate::wire::ipv4::{self, Protocol};
use crate::wire::{tcp, udp};

/// What the checks of an IPv4 TCP/UDP packet found out: the parsed record
/// of a frame. Only the engine makes one ([`L4Info::check`], all of the
/// ladder's stateless checks passed), so a record handed back to
/// [`Engine::process_parsed`] is one the engine itself checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L4Info {
    pub(super) key: FlowKey,
    pub(super) tcp_flags: u8,
    /// TCP sequence number, and the sequence numbers the segment occupies
    /// (payload, plus one each for SYN and FIN); 0 for UDP.
    pub(super) seq: u32,
    pub(super) seg_len: u32,
    /// TCP acknowledgement number (0 for UDP).
    pub(super) ack: u32,
    pub(super) ttl: u8,
    /// IPv4 total length.
    pub(super) tl: usize,
    pub(super) dont_frag: bool,
}

impl L4Info {
    /// A record to be written over ([`L4Info::check_into`]'s `out`).
    const BLANK: L4Info = L4Info {
        key: FlowKey { proto: Protocol::Udp, src: 0, sport: 0, dst: 0, dport: 0 },
        tcp_flags: 0,
        seq: 0,
        seg_len: 0,
        ack: 0,
        ttl: 0,
        tl: 0,
        dont_frag: false,
    };

    /// The L4 facts of unfragmented IPv4 TCP/UDP packet `ip`: `None` when
    /// its TCP/UDP header is malformed or a port is 0 (`drop_l4_malformed`).
    #[inline]
    fn of(ip: &ipv4::Packet<&[u8]>) -> Option<L4Info> {
        let proto = ip.protocol();
        let l4 = ip.payload();
        let (sport, dport, tcp_flags, seq, seg_len, ack) = if proto == Protocol::Tcp {
            let t = tcp::Packet::new_checked(l4).ok()?;
            let f = t.flags();
            let ctl = u32::from(f & tcp_state::flags::SYN != 0) + u32::from(f & tcp_state::flags::FIN != 0);
            let len = (l4.len() - t.header_len()) as u32 + ctl;
            (t.src_port(), t.dst_port(), f, t.seq_number(), len, t.ack_number())
        } else {
            let u = udp::Packet::new_checked(l4).ok()?;
            (u.src_port(), u.dst_port(), 0, 0, 0, 0)
        };
        if sport == 0 || dport == 0 {
            return None;
        }
        let (src, dst) = (u32::from(ip.src_addr()), u32::from(ip.dst_addr()));
        let key = FlowKey { proto, src, sport, dst, dport };
        let (ttl, tl, dont_frag) = (ip.ttl(), ip.total_len() as usize, ip.dont_frag());
        Some(L4Info { key, tcp_flags, seq, seg_len, ack, ttl, tl, dont_frag })
    }

    /// The record of Ethernet frame `frame` when it is an unfragmented
    /// IPv4 TCP/UDP packet that passes every check of the engine's ladder
    /// that needs no engine state (IPv4 lengths, version, IHL, header
    /// checksum, L4 header, ports); `None` for anything else, which then
    /// takes [`Engine::process`]'s full ladder. What needs the engine's
    /// state (the destination MAC, the source address against the routes)
    /// [`Engine::process_parsed`] still checks.
    #[inline]
    pub fn check(frame: &[u8]) -> Option<L4Info> {
        let mut out = L4Info::BLANK;
        L4Info::check_into(frame, &mut out).then_some(out)
    }

    /// [`L4Info::check`] written where the caller keeps its record (the
    /// poll loop's staging slot), not returned: whether the frame has a
    /// record, then in `out` (else `out` holds anything). The plain
    /// header's fields go straight to `out` ([`L4Info::check_plain_into`]),
    /// not through a returned value and its copies (issue 14).
    #[inline]
    pub(crate) fn check_into(frame: &[u8], out: &mut L4Info) -> bool {
        if frame.get(12..14) != Some(&[0x08, 0x00][..]) {
            return false; // Not IPv4 (`EtherType::Ipv4`), or no Ethernet header.
        }
        let ip = &frame[ethernet::HEADER_LEN..];
        if let Some(ok) = L4Info::check_plain_into(ip, out) {
            return ok;
        }
        match L4Info::check_with_options(ip) {
            Some(p) => {
                *out = p;
                true
            }
            None => false,
        }
    }

    /// [`L4Info::check`] of an IPv4 packet that [`L4Info::check_plain`]
    /// does not take (a header with options, a short or odd one): out of
    /// line, so that the plain path has few registers to save (issue 14).
    #[cold]
    #[inline(never)]
    fn check_with_options(ip: &[u8]) -> Option<L4Info> {
        L4Info::check_ip_ladder(&ipv4::Packet::new_checked(ip).ok()?)
    }

    /// [`L4Info::check`] of the IPv4 packet of a frame, which
    /// `new_checked` accepted.
    #[inline]
    pub(crate) fn check_ip(ip: &ipv4::Packet<&[u8]>) -> Option<L4Info> {
        if let Some(p) = L4Info::check_plain(ip.as_ref()) {
            return p;
        }
        L4Info::check_ip_ladder(ip)
    }

    /// [`L4Info::check`] of IPv4 packet `ip` (the bytes after the
    /// Ethernet header) when its header has no options (the first byte is
    /// 0x45, almost every packet): the same checks as the ladder of views
    /// ([`L4Info::check_ip_ladder`]), read straight from the fixed 20-byte
    /// header, with one bounds check for it and a checksum of five words
    /// without a loop. `None` when it does not apply (shorter than 20
    /// bytes, another version or IHL): then the ladder decides. The
    /// established path parses every packet so (issue 14); a property test
    /// holds it equal to the ladder.
    #[inline]
    fn check_plain(ip: &[u8]) -> Option<Option<L4Info>> {
        let mut out = L4Info::BLANK;
        L4Info::check_plain_into(ip, &mut out).map(|ok| ok.then_some(out))
    }

    /// [`L4Info::check_plain`] writing the record into `out`: `None` when
    /// it does not apply, else whether the packet passed (then `out` holds
    /// its record; else anything).
    #[inline]
    fn check_plain_into(ip: &[u8], out: &mut L4Info) -> Option<bool> {
        let h: &[u8; ipv4::MIN_HEADER_LEN] = ip.get(..ipv4::MIN_HEADER_LEN)?.try_into().ok()?;
        if h[0] != 0x45 {
            return None;
        }
        let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        let be32 = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let tl = usize::from(be16(h, 2));
        let frag = be16(h, 6);
        // Total length within the buffer, not a fragment (MF or offset),
        // TCP or UDP: `check_len`, `is_fragment`, the protocol.
        if tl < ipv4::MIN_HEADER_LEN || tl > ip.len() || frag & 0x3fff != 0 || !matches!(h[9], 6 | 17) {
            return Some(false);
        }
        // RFC 1071 over the five 32-bit words (see `checksum::sum`): a
        // valid header sums to negative zero. The words are read in the
        // host's byte order, without a swap: the ones' complement sum of
        // byte-swapped words is the swapped sum (RFC 1071 §2(B)), and
        // 0xffff is its own swap.
        let ne32 = |at: usize| u32::from_ne_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let acc: u64 = (0..5).map(|w| u64::from(ne32(4 * w))).sum();
        if crate::wire::checksum::fold64(acc) != 0xffff {
            return Some(false);
        }
        let l4 = &ip[ipv4::MIN_HEADER_LEN..tl];
        let (proto, tcp_flags, seq, seg_len, ack, (sport, dport)) = if h[9] == 6 {
            // `tcp::Packet::check_len`: 20 bytes, data offset in 20..=len.
            if l4.len() < 20 {
                return Some(false);
            }
            let doff = usize::from(l4[12] >> 4) * 4;
            if doff < 20 || doff > l4.len() {
                return Some(false);
            }
            let f = l4[13];
            let ctl = u32::from(f & tcp_state::flags::SYN != 0) + u32::from(f & tcp_state::flags::FIN != 0);
            let len = (l4.len() - doff) as u32 + ctl;
            (Protocol::Tcp, f, be32(l4, 4), len, be32(l4, 8), (be16(l4, 0), be16(l4, 2)))
        } else {
            // `udp::Packet::check_len`: 8 bytes, its length in 8..=len.
            if l4.len() < 8 || !(8..=l4.len()).contains(&usize::from(be16(l4, 4))) {
                return Some(false);
            }
            (Protocol::Udp, 0, 0, 0, 0, (be16(l4, 0), be16(l4, 2)))
        };
        // The ports are read in each branch, where the length check is
        // known: no bounds check of their own.
        if sport == 0 || dport == 0 {
            return Some(false);
        }
        let key = FlowKey { proto, src: be32(h, 12), sport, dst: be32(h, 16), dport };
        let dont_frag = frag & 0x4000 != 0;
        *out = L4Info { key, tcp_flags, seq, seg_len, ack, ttl: h[8], tl, dont_frag };
        Some(true)
    }

    /// [`L4Info::check_ip`] by the views' checks one after another.
    #[inline]
    fn check_ip_ladder(ip: &ipv4::Packet<&[u8]>) -> Option<L4Info> {
        if ip.is_fragment()
            || !matches!(ip.protocol(), Protocol::Tcp | Protocol::Udp)
            || !ip.verify_checksum()
        {
            return None;
        }
        L4Info::of(ip)
    }

    /// The flow key.
    pub fn key(&self) -> FlowKey {
        self.key
    }
}

/// What the session lookup of a TCP/UDP packet computes before it reads
/// the index: its flow key's hash and whether the key goes to a local
/// address (then the packet can only be a FULLNAT reply, looked up in the
/// reply index first). Both are pure functions of the key, of the session
/// table's seed (fixed for the table's life) and of the configuration
/// snapshot (which changes only between the poll loop's bursts), so the
/// poll loop's stage computes them once ([`Engine::stage`]), for its
/// prefetch and for the engine's lookup (issue 14). What the index held
/// when the stage prefetched is kept only as a *hint* ([`Engine::hint`]):
/// an earlier packet of the burst may have inserted or removed a session,
/// so the established step takes the hinted session only if it is live
/// and holds the packet's key (keys are unique in the table, and a free
/// slot matches none), else reads the index again. Only the engine makes
/// one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    hash: u64,
    to_laddr: bool,
    /// The session the index named for this key's signature when the
    /// stage read it, or `NIL`.
    hint: u32,
}

impl Lookup {
    /// The flow key's hash in the session table.
    #[inline(always)]
    pub fn hash(&self) -> u64 {
        self.hash
    }
    /// Whether the packet goes to a local address (the reply index is the
    /// one its lookup reads first).
    #[inline(always)]
    pub fn to_laddr(&self) -> bool {
        self.to_laddr
    }
    /// The inputs without the hint: what must still be the key's when the
    /// record is used.
    #[inline(always)]
    pub(super) fn inputs(&self) -> (u64, bool) {
        (self.hash, self.to_laddr)
    }
}

/// Where a session lookup's inputs come from: the poll loop's stage
/// ([`Lookup`]), or the lookup itself ([`Unstaged`], [`Engine::process`]'s
/// single frame), each with the engine's step compiled for it, so that
/// neither tests where the inputs came from.
pub(super) trait LookupInputs: Copy {
    /// Whether flow key `k` goes to a local address of `snap`.
    fn to_laddr(self, snap: &Snapshot, k: &FlowKey) -> bool;
    /// `k`'s hash in `t`.
    fn hash(self, t: &SessionTable, k: &FlowKey) -> u64;
}

impl LookupInputs for Lookup {
    #[inline(always)]
    fn to_laddr(self, _: &Snapshot, _: &FlowKey) -> bool {
        self.to_laddr
    }
    #[inline(always)]
    fn hash(self, _: &SessionTable, _: &FlowKey) -> u64 {
        self.hash
    }
}

/// A lookup's inputs computed where they are needed, for a frame the
/// stage did not see.
#[derive(Clone, Copy)]
pub(super) struct Unstaged;

impl LookupInputs for Unstaged {
    #[inline(always)]
    fn to_laddr(self, snap: &Snapshot, k: &FlowKey) -> bool {
        snap.is_laddr(k.dst)
    }
    #[inline(always)]
    fn hash(self, t: &SessionTable, k: &FlowKey) -> u64 {
        t.hash(k)
    }
}

/// A frame's record as the poll loop's stages hand it to
/// [`Engine::process_parsed`]: the stateless checks' findings and its
/// session lookup's inputs, computed once per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Staged {
    pub l4: L4Info,
    pub lookup: Lookup,
}

impl Staged {
    /// A record to be written over (a staging slot before its first frame).
    const BLANK: Staged =
        Staged { l4: L4Info::BLANK, lookup: Lookup { hash: 0, to_laddr: false, hint: crate::session::NIL } };
}

/// The poll loop's place for one frame's staged record, written there in
/// place by [`StagedSlot::stage`] and read by reference
/// ([`StagedSlot::get`]): the record is never returned and copied on its
/// way (issue 14), and it is still only the engine's own (no record comes
/// out of a slot the engine's checks did not fill for the frame staged
/// last).
#[derive(Debug)]
pub struct StagedSlot {
    s: Staged,
    staged: bool,
}

impl Default for StagedSlot {
    fn default() -> Self {
        StagedSlot { s: Staged::BLANK, staged: false }
    }
}

impl StagedSlot {
    /// [`crate::steer::classify`] of `frame` with the record (if any)
    /// written into this slot, then its lookup's inputs
    /// ([`Engine::stage`]); the owner.
    #[inline(always)]
    pub fn stage(&mut self, engine: &Engine, workers: u32, me: u32, frame: &[u8]) -> crate::steer::Owner {
        let (owner, staged) =
            crate::steer::classify_into(engine.snapshot(), workers, me, frame, &mut self.s.l4);
        if staged {
            self.s.lookup = engine.lookup_of(&self.s.l4.key);
        }
        self.staged = staged;
        owner
    }

    /// The record of the frame staged last, if it has one.
    #[inline(always)]
    pub fn get(&self) -> Option<&Staged> {
        self.staged.then_some(&self.s)
    }

    /// [`StagedSlot::get`], for [`Engine::hint`].
    #[inline(always)]
    pub fn get_mut(&mut self) -> Option<&mut Staged> {
        self.staged.then_some(&mut self.s)
    }
}

impl Engine {
    /// The IPv4 TCP/UDP frame `frame` received on `iface`, whose stateless
    /// checks [`L4Info::check`] passed: the source address checks, then
    /// the session step.
    /// The reverse-path check is the session step's ([`Engine::l4`] with
    /// `rpf`): a packet of an established session takes the route its
    /// session remembers rather than searching the table.
    #[inline]
    pub(super) fn ipv4_checked(
        &mut self,
        now: u64,
        iface: &Iface,
        frame: &mut [u8],
        p: &L4Info,
        look: impl LookupInputs,
    ) -> Action {
        if bad_source(p.key.src) {
            return Action::Drop(Drop::BadSourceAddr);
        }
        self.l4(now, iface, frame, p, look, true)
    }

    /// The inputs of the session lookup of flow key `k` ([`Lookup`]).
    #[inline(always)]
    pub(super) fn lookup_of(&self, k: &FlowKey) -> Lookup {
        Lookup { hash: self.sessions.hash(k), to_laddr: self.snap.is_laddr(k.dst), hint: crate::session::NIL }
    }

    /// `l4` with its session lookup's inputs, for the poll loop's stage:
    /// it prefetches the index lines they name, and
    /// [`Engine::process_parsed`] looks the session up with them.
    #[inline]
    pub fn stage(&self, l4: L4Info) -> Staged {
        Staged { l4, lookup: self.lookup_of(&l4.key) }
    }

    /// The stage's second step for staged packet `p`, once its bucket line
    /// has been prefetched: the session line its lookup will likely read,
    /// for the caller to prefetch, kept in `p` as the established step's
    /// hint (one read of the bucket per packet, not two).
    #[inline(always)]
    pub fn hint(&self, p: &mut Staged) -> Option<&impl Sized> {
        let i = self.sessions.candidate(p.lookup.hash, p.lookup.to_laddr)?;
        p.lookup.hint = i;
        Some(self.sessions.get(i))
    }

    /// [`Engine::stage`] and [`Engine::hint`] at once, for a frame staged
    /// alone (the tests' fixture): the lookup then reads the bucket once,
    /// as a burst's does.
    #[inline(always)]
    pub fn stage_hinted(&self, l4: L4Info) -> Staged {
        let mut s = self.stage(l4);
        self.hint(&mut s);
        s
    }

    /// An IPv4 frame received on `iface`. Inline in [`Engine::process`],
    /// its one caller: the established path keeps one call, to
    /// [`Engine::l4`].
    #[inline(always)]
    pub(super) fn ipv4(&mut self, now: u64, iface: &Iface, frame: &mut [u8]) -> Action {
        // A TCP/UDP packet without options that passes every stateless
        // check (most): the same step as the ladder below takes for it.
        if let Some(Some(p)) = L4Info::check_plain(&frame[ethernet::HEADER_LEN..]) {
            return self.ipv4_checked(now, iface, frame, &p, Unstaged);
        }
        let l3 = &mut frame[ethernet::HEADER_LEN..];
        let ip = match ipv4::Packet::new_checked(&*l3) {
            Ok(p) => p,
            Err(_) => return Action::Drop(super::frag::malformed_or_truncated(l3)),
        };
        if !ip.verify_checksum() {
            return Action::Drop(Drop::Ipv4BadChecksum);
        }
        let src = u32::from(ip.src_addr());
        let dst = u32::from(ip.dst_addr());
        if bad_source(src) {
            return Action::Drop(Drop::BadSourceAddr);
        }
        if !self.cfg.routes.reverse_path_ok(src, iface) {
            return Action::Drop(Drop::ReversePath);
        }
        if ip.is_fragment() {
            if self.for_kernel(iface, dst) && !self.snap.owns(dst) {
                return Action::Kernel { port: iface.port }; // The kernel reassembles.
            }
            return self.fragment(now, iface, frame);
        }
        let hl = ip.header_len();
        let tl = ip.total_len() as usize;
        match ip.protocol() {
            Protocol::Tcp | Protocol::Udp => match L4Info::of(&ip) {
                Some(p) => self.l4(now, iface, frame, &p, Unstaged, false),
                None => Action::Drop(Drop::L4Malformed),
            },
            Protocol::Icmp => self.icmp(iface, frame, hl, tl),
            _ if self.for_kernel(iface, dst) => Action::Kernel { port: iface.port },
            _ if self.snap.owns(dst) || self.is_iface_addr(dst) => Action::Drop(Drop::UnsupportedProto),
            _ => Action::Drop(Drop::NotForUs),
        }
    }

    /// The session step of TCP/UDP packet `p`, with its lookup's inputs
    /// if the poll loop's stage computed them ([`Engine::stage`]), else
    /// computed here; `rpf`: its reverse path is still to be checked (done
    /// here before anything changes, by the session's remembered route for
    /// an established packet).
    fn l4(
        &mut self,
        now: u64,
        rx: &Iface,
        frame: &mut [u8],
        p: &L4Info,
        look: impl LookupInputs,
        rpf: bool,
    ) -> Action {
        // The established packet's one way out: the session step inline
        // here, once for both directions (issue 14: no call, no arguments
        // through the stack for it).
        let (i, dir) = match self.find_session(now, rx, frame, p, look, rpf) {
            Ok(found) => found,
            Err(action) => return action,
        };
        self.forward_inline(now, rx, i, dir, frame, p)
    }

    /// The session of TCP/UDP packet `p` and the side it came from, or
    /// what became of a packet that has none ([`Engine::open`], NAT64's
    /// reply, a drop). With `rpf`, the reverse-path check comes first in
    /// effect: by the session's route for an established packet (its
    /// source is the session's client or real server), else by the
    /// search, before anything is changed. `look` is the lookup's inputs
    /// (the key's hash, whether it goes to a local address), computed once
    /// per packet: by the poll loop's stage, or by the caller.
    #[inline(always)]
    fn find_session(
        &mut self,
        now: u64,
        rx: &Iface,
        frame: &mut [u8],
        p: &L4Info,
        look: impl LookupInputs,
        rpf: bool,
    ) -> Result<(u32, Dir), Action> {
        let mut rp_pending = rpf;
        // A packet to a local address can only be a FULLNAT reply: skip the
        // client-side index (a likely cache miss) for it.
        let reply_first = look.to_laddr(&self.snap, &p.key);
        // The key's hash, the same in both indexes and for the insert of a
        // new session: the stage's, else computed where it is needed
        // (NAT64's reply needs none).
        if !reply_first {
            let h = look.hash(&self.sessions, &p.key);
            if let Some(i) = self.sessions.find_in(&p.key, h) {
                // Kept, unless the packet schedules its session anew.
                let Some(reuse) = rescheduled(&self.cfg, &self.snap, self.sessions.get(i), p) else {
                    if rpf {
                        let back =
                            session_route(&self.cfg.routes, &mut self.sessions, i, TO_CLIENT, p.key.src);
                        if !route::rp_ok(back, rx) {
                            return Err(Action::Drop(Drop::ReversePath));
                        }
                    }
                    return Ok((i, Dir::Input));
                };
                self.rp_search(&mut rp_pending, rx, p)?;
                self.end_to_reschedule(i, reuse);
            }
            // A packet to a VIP is never a reply (replies go to a local
            // address or, for NAT, to the client): a new flow skips the
            // reply index, a second likely cache miss, and its insert
            // reuses the hash of the lookup that missed.
            if self.snap.owns(p.key.dst) {
                self.rp_search(&mut rp_pending, rx, p)?;
                return Err(self.open(now, rx, frame, p, h));
            }
        }
        // A reply to a local address:port that no IPv4 session has in its
        // reply key (its reply-port count is 0) can only be NAT64's: skip
        // the IPv4 reply index, whose miss reads two bucket lines.
        if !self.nat64_only(reply_first, &p.key) {
            if let Some(i) = self.sessions.find_out(&p.key, look.hash(&self.sessions, &p.key)) {
                if rp_pending {
                    let back = session_route(&self.cfg.routes, &mut self.sessions, i, TO_SERVER, p.key.src);
                    if !route::rp_ok(back, rx) {
                        return Err(Action::Drop(Drop::ReversePath));
                    }
                }
                return Ok((i, Dir::Output));
            }
        }
        // NAT64's reply checks its reverse path by its session's route;
        // anything else by the search.
        if reply_first {
            if let Some(a) = self.nat64_reply(now, rx, frame, p, rp_pending) {
                return Err(a);
            }
        }
        self.rp_search(&mut rp_pending, rx, p)?;
        let h = look.hash(&self.sessions, &p.key);
        Err(self.open(now, rx, frame, p, h))
    }

    /// Whether a packet of key `k`, to a local address if `to_laddr`, can
    /// only be NAT64's reply: no IPv4 session has its local address:port
    /// in its reply key while IPv6 sessions are live.
    #[inline(always)]
    fn nat64_only(&self, to_laddr: bool, k: &FlowKey) -> bool {
        to_laddr && !self.sessions6.is_empty() && self.sessions.reply_port_unused(k.dst, k.dport)
    }

    /// Ends session `i`, with its accounting: so that its packet is
    /// scheduled anew (one-packet scheduling, or a new connection on a
    /// closing one's address when `reuse`), or after a one-packet
    /// session's last packet. Out of line and cold: the established path
    /// keeps no copy of a session line for it.
    #[cold]
    #[inline(never)]
    fn end_to_reschedule(&mut self, i: u32, reuse: bool) {
        let s = *self.sessions.get(i);
        if reuse {
            self.counters.event(Event::SessionsReused, 1);
        }
        unbind(&self.counters, &mut self.overloaded, &self.snap, self.cfg.workers, &s);
        self.sessions.remove(i);
    }

    /// The reverse-path check by the route table's search, if `pending`
    /// (then no longer).
    #[inline(always)]
    fn rp_search(&self, pending: &mut bool, rx: &Iface, p: &L4Info) -> Result<(), Action> {
        if std::mem::take(pending) && !self.cfg.routes.reverse_path_ok(p.key.src, rx) {
            return Err(Action::Drop(Drop::ReversePath));
        }
        Ok(())
    }

    /// A packet that found no session: a SYNPROXY service's SYN, or a new
    /// session (`h_in` is the hash of the packet's key), or its drop. Out
    /// of line: the established path through [`Engine::l4`] stays small.
    #[inline(never)]
    fn open(&mut self, now: u64, rx: &Iface, frame: &mut [u8], p: &L4Info, h_in: u64) -> Action {
        // The insert comes after the service lookup, the scheduler and the
        // bind: time enough for the line of a full bucket's alternative.
        self.sessions.prefetch_insert_alt(h_in, false);
        // One service lookup for both the SYNPROXY check and the session.
        let svc = self.snap.service_slot(p.key.proto, p.key.dst, p.key.dport);
        if let Some(s) =
            svc.map(|i| self.snap.service_at(i)).filter(|s| s.synproxy && p.key.proto == Protocol::Tcp)
        {
            let room = crate::client_addr::mss_room(s.client_addr, false);
            return self.synproxy_new(now, rx, frame, p, room);
        }
        match self.new_session_hashed(now, *p, h_in, svc) {
            Ok(i) => self.forward(now, rx, i, Dir::Input, frame, p),
            Err(d) => self.reject_or_drop(now, rx, frame, p, d),
        }
    }

    /// Forwards a packet of session `i` coming from `dir`: the common step
    /// (TTL, route, TCP state, timer, counters) with the mode's constants
    /// ([`modes::traits`]), then the mode's transmit ([`modes::xmit`]). The
    /// common step exists once, not once per mode, so it stays small enough
    /// for the compiler to inline what it calls. Out of line for the new
    /// session and SYNPROXY's steps; [`Engine::l4`] has it inline.
    #[inline(never)]
    pub(super) fn forward(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info,
    ) -> Action {
        self.forward_inline(now, rx, i, dir, frame, p)
    }

    /// [`Engine::forward`] of the packet a one-packet session ends with
    /// ([`conn::ops_ends`]): forwarded as any other, then the session is
    /// gone (if the step did not end it already).
    #[cold]
    #[inline(never)]
    fn forward_last(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info,
    ) -> Action {
        self.sessions.get_mut(i).flags.remove(Flags::ONE_PACKET);
        let act = self.forward(now, rx, i, dir, frame, p);
        if self.sessions.slot(i as usize).is_some() {
            self.end_to_reschedule(i, false);
        }
        act
    }

    /// [`Engine::forward`]'s body.
    #[inline(always)]
    fn forward_inline(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info,
    ) -> Action {
        // One copy of the session line, read before anything moves (the
        // SYNPROXY step may change the session: then read again).
        let mut s = *self.sessions.get(i);
        // SYNPROXY's bit (TCP) is one-packet scheduling's (UDP): one test.
        let special = s.flags.contains(Flags::SYNPROXY);
        let synproxy = special && p.key.proto == Protocol::Tcp;
        if synproxy {
            if let Some(a) = self.synproxy_step(now, rx, i, dir, frame, p) {
                return a;
            }
            s = *self.sessions.get(i);
        } else if special && conn::ops_ends(s.flags, dir) {
            return self.forward_last(now, rx, i, dir, frame, p);
        }
        let Engine { cfg, snap, sessions, counters, overloaded, min_mtu, ca, sp, .. } = self;
        let mode = modes::traits(s.mode);
        if !cfg.nodest.forwards(snap, s.dest) {
            // The server is deleted: as IPVS, drop until it is re-added
            // (the session keeps its timer), or end the session now.
            if cfg.nodest == NoDest::Expire {
                unbind(counters, overloaded, snap, cfg.workers, &s);
                sessions.remove(i);
            }
            return Action::Drop(Drop::DestUnavailable);
        }
        if mode.routed && p.ttl <= 1 {
            return Action::Drop(Drop::TtlExceeded);
        }
        let (to, way) = match dir {
            Dir::Output => (s.cip, TO_CLIENT),
            _ => (s.rip, TO_SERVER),
        };
        // The route and the sequence marks: one reference to the session
        // for both (one index check).
        let sm = sessions.get_mut(i);
        let Some((port, next_hop)) = cfg.routes.lookup_remembered(&mut sm.route[way], to) else {
            return Action::Drop(Drop::NoRoute);
        };
        if p.key.proto == Protocol::Tcp && !s.flags.contains(Flags::NO_OUT) {
            if let Err(why) = track_seq(sm, dir, p) {
                return Action::Drop(why);
            }
        }
        let table = if dir == Dir::Input { mode.in_table } else { dir };
        // As IPVS: the packet is counted (and moves the state) before it is
        // transmitted, also when transmission then fails (TUN too big).
        let (state, tcp) = ((&mut sm.state, &mut sm.flags), (p.key.proto == Protocol::Tcp, p.tcp_flags));
        let (old, new) =
            forwarded(counters, state, (s.dest, s.service), (dir, table), tcp, p.tl as u64, false);
        sessions.touch(i, now, snap.timeouts.of_ms(new));
        // Over the smallest MTU only: DF and the output port's MTU.
        if p.tl > *min_mtu as usize {
            let big = super::frag::too_big(s.mode, &cfg.ifaces, rx, port, p.tl, p.dont_frag, frame);
            if let Some((a, sent)) = big {
                counters.event(Event::IcmpFragNeededSent, u64::from(sent));
                return a;
            }
        }
        // The transmit's context, made where each transmit takes it: the
        // client-address transmits take it by reference out of line, and
        // a context made once before them would be written to memory on
        // every packet's path, where FULLNAT's and NAT's inline transmit
        // reads only its route and lengths (issue 14).
        let cx = || XmitCx {
            ifaces: &cfg.ifaces,
            rx,
            counters,
            port,
            next_hop,
            proto: p.key.proto,
            tl: p.tl,
            dont_frag: p.dont_frag,
            snap,
        };
        let out = dir == Dir::Output;
        if synproxy {
            splice(sp, i, out, frame);
        }
        if client_addr::concerns(s.flags, old, out, p.tcp_flags) {
            let cx = cx();
            if p.key.proto == Protocol::Udp {
                return xmit_uoa(ca, &cx, i, &s, out, frame);
            }
            // An established PROXY segment: FULLNAT's rewrite with the
            // shift in the same checksum update, here (no call; client-
            // address choices are FULLNAT's only).
            if s.mode == gw_proto::ForwardMode::FullNat {
                if let Some((at, v)) =
                    client_addr::established_shift(ca, p.tl, i, &s, old, out, p.tcp_flags, frame)
                {
                    return modes::fullnat::xmit_shifted(&cx, &s, out, frame, at, v);
                }
            }
            return xmit_client_addr(ca, &cx, i, &s, old, out, p.tcp_flags, frame);
        }
        modes::xmit(s.mode, out, &cx(), &s, frame)
    }
}

/// [`conn::rescheduled`] for client packet `p` of IPv4 session `s`: the
/// full step's lookup and the established step's.
#[inline(always)]
fn rescheduled(cfg: &EngineConfig, snap: &Snapshot, s: &Session, p: &L4Info) -> Option<bool> {
    conn::rescheduled(
        cfg.conn_reuse,
        snap,
        (s.protocol(), s.state, s.flags, s.dest),
        (p.key.proto, p.tcp_flags),
    )
}

/// [`Session::route`]'s side toward the real server (its `rip`); also
/// [`crate::session::ipv6::Session6::route`]'s.
pub(super) const TO_SERVER: usize = 0;
/// [`Session::route`]'s side toward the client (its `cip`).
pub(super) const TO_CLIENT: usize = 1;

/// Output port and next hop toward `to`, session `i`'s address on side
/// `way`: by the route the session remembers, else searched and
/// remembered (the routes never change under an engine, nor a
/// connection's addresses; a debug assertion holds it to the search).
#[inline(always)]
fn session_route(
    routes: &Routes,
    sessions: &mut SessionTable,
    i: u32,
    way: usize,
    to: u32,
) -> Option<(u16, u32)> {
    routes.lookup_remembered(&mut sessions.get_mut(i).route[way], to)
}

/// The transmit of a datagram of a UDP session with PROXY v2 (UOA,
/// [`client_addr`]): the header on the first one toward the real server.
#[inline(never)]
fn xmit_uoa(
    ca: &mut client_addr::Table,
    cx: &XmitCx<'_>,
    i: u32,
    s: &Session,
    out: bool,
    frame: &mut [u8],
) -> Action {
    let act = modes::xmit(s.mode, out, cx, s, frame);
    client_addr::on_forward_udp(ca, cx.ifaces, i, s, out, frame, act)
}

/// The splice of a SYNPROXY session's segment ([`crate::synproxy`]), out
/// of line as [`xmit_client_addr`].
#[inline(never)]
fn splice(sp: &crate::synproxy::Table, i: u32, out: bool, frame: &mut [u8]) {
    let e = sp.get(i);
    if e.spliced {
        crate::synproxy::splice(&e, out, frame);
    }
}

/// The transmit of a packet of a session with a client-address choice
/// (TOA, PROXY header; [`client_addr`]) that is not an established PROXY
/// segment (those take [`client_addr::established_shift`] in
/// [`Engine::forward`]). Out of line, so that the path of every other
/// session stays as small as it was.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn xmit_client_addr(
    ca: &mut client_addr::Table,
    cx: &XmitCx<'_>,
    i: u32,
    s: &Session,
    old: State,
    out: bool,
    tcp_flags: u8,
    frame: &mut [u8],
) -> Action {
    let act = modes::xmit(s.mode, out, cx, s, frame);
    client_addr::on_forward(ca, cx.counters, cx.ifaces, i, s, old, out, tcp_flags, frame, act)
}

/// RFC 5961-style validation of a TCP segment of a session that sees both
/// directions ([`crate::tcp_seq`]), before it can move the state: a
/// client's segment against what the real server has acknowledged, a
/// server's against the highest sequence number it has used (which it
/// advances), its acknowledgement then the client's reference.
#[inline(always)]
fn track_seq(s: &mut Session, dir: Dir, p: &L4Info) -> Result<(), Drop> {
    let marks = crate::tcp_seq::Marks { flags: &mut s.flags, marks: &mut s.seq_mark };
    marks.track(dir == Dir::Output, s.state, (p.seq, p.seg_len, p.ack), p.tcp_flags)
}

mod established;

#[cfg(test)]
mod tests;

//! IPv6 TCP/UDP through a service (issue 17): FULLNAT66, NAT66 and DR for
//! IPv6, with the sessions in the worker's [`SessionTable6`].
//!
//! The steps are the IPv4 path's ([`super::ipv4`]) over `u128` addresses:
//! the client-side index (skipped for a packet to a local address), the
//! reply index (skipped for a packet to a VIP), else a new session for a
//! TCP SYN or a UDP datagram to an IPv6 service ([`Snapshot::service6`]):
//! the scheduler over the service's servers, the mode's bind (FULLNAT66: an
//! IPv6 local address and a port of this worker's share, free toward that
//! real server; NAT66 and DR: the client's own address), the same
//! accounting as IPv4 (half-open, ActiveConn/InActConn, thresholds). Then
//! per packet: the hop limit (routed modes, as IPv4's TTL), the route
//! ([`crate::route::Routes::lookup6`]), the TCP state machine with the
//! mode's table, the timer, the counters, and the rewrite:
//!
//! - FULLNAT66: client->VIP becomes LIP:lport->RIP:rport, the reply
//!   RIP:rport->LIP:lport becomes VIP:vport->client; the TCP/UDP checksum is
//!   updated incrementally (two [`Delta::addr6`] over the pseudo header and
//!   [`tcp::Packet::rewrite_ports`]).
//! - NAT66: the destination only (VIP:vport -> RIP:rport), the reply's
//!   source back.
//! - DR: nothing in L3; the worker sends the frame to the real server's MAC.
//! - TUN: IPv6-in-IPv6 to the real server ([`crate::modes::tun6`],
//!   [`Action::Encap6`]).
//!
//! Persistence (`-p`, `-M` as a prefix length) keys a template by the
//! client address under the service's mask: [`crate::persist::schedule`],
//! the IPv4 table's code, on the IPv6 table.
//!
//! A packet over the output port's MTU (TUN: less the outer header) is
//! answered with Packet Too Big from the receiving port
//! ([`super::icmp6::too_big`]), checked only above the smallest port MTU as
//! IPv4's DF check is; ICMPv6 errors about a session are
//! [`super::icmp6`]'s.
//!
//! The client's address toward a FULLNAT66 or NAT64 real server (`--toa`,
//! `--proxy-protocol v1|v2`) is [`crate::client_addr`]'s, as IPv4's: a
//! session that has a choice takes one out-of-line step after the mode's
//! transmit ([`xmit_client_addr6`]); every other pays one test of its flag
//! byte.
//!
//! SYNPROXY (`-j enable`) on an IPv6 service is [`super::synproxy6`]'s: a
//! new TCP flow goes there instead of to [`Engine::new_session6`], and the
//! segments of a SYNPROXY session a lookup found take
//! [`Engine::forward6_synproxy`] ([`Engine::forward6_found`]): its step,
//! this path, then the splice. With a client-address option too, the SYN
//! rebuilt from the cookie and the handshake ACK made of the server's
//! SYN-ACK take this path's client-address step as any client segment
//! (TOA, the MSS lowered, the PROXY header), and the splice follows it.
//!
//! Fragments are reassembled first ([`super::frag`]) and arrive here whole.
//! NAT64 (an IPv4 real server behind an IPv6 VIP) takes this path with its
//! own bind and transmit, [`super::nat64`].
//!
//! TCP segments of sessions that see both directions (FULLNAT66, NAT66)
//! pass the IPv4 path's sequence check ([`crate::tcp_seq`], [`track_seq6`])
//! before they move the state.

use std::net::Ipv6Addr;

use gw_proto::ForwardMode;

use super::conn::{self, forwarded, per_worker, plain_syn, unbind_parts, Partition, SvcDests};
use super::ipv4::{TO_CLIENT, TO_SERVER};
use super::{Action, Engine};
use crate::client_addr;
use crate::counters::{Drop, Event};
use crate::modes;
use crate::route::{self, Iface, Routes};
use crate::sched::{self, sip13_words, Flow};
use crate::service::{fold32, Service};
use crate::session::ipv6::{FlowKey6, Session6, SessionTable6};
use crate::session::{Expired, Flags};
use crate::tcp_state::{self, Dir, State};
use crate::wire::ethernet;
use crate::wire::ipv4::Protocol;
use crate::wire::ipv6::{self, NextHeader, Transport};
use crate::wire::{tcp, udp};

/// Tries per local address before moving to the next one (as IPv4).
const LPORT_TRIES: usize = 64;

/// What the path needs of an IPv6 TCP/UDP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct L4Info6 {
    pub key: FlowKey6,
    pub tcp_flags: u8,
    /// TCP sequence number and the sequence numbers the segment occupies
    /// (payload, plus one each for SYN and FIN); 0 for UDP.
    pub seq: u32,
    pub seg_len: u32,
    /// TCP acknowledgement number (0 for UDP).
    pub ack: u32,
    pub hop_limit: u8,
    /// Bytes from the IPv6 header to the end of the payload.
    pub len: usize,
    /// Offset of the TCP/UDP header from the start of the frame.
    pub l4: usize,
}

/// Whether `src` cannot be the source of an IPv6 packet from the wire
/// ([`ipv6::never_on_the_wire`]), IPv6's twin of IPv4's `bad_source`
/// (neighbour discovery's DAD uses `::`): a packet from an IPv4-mapped
/// address must never pose as a NAT64 session's reply, whose key is
/// IPv4-mapped and whose replies come as IPv4 (`nat64_reply`).
#[inline(always)]
pub(super) fn bad_source6(src: u128) -> bool {
    ipv6::never_on_the_wire(src)
}

/// [`l4_info`] of an IPv6 frame whose header names TCP or UDP itself (no
/// extension header: almost every packet), from a source that is not
/// multicast nor [`bad_source6`]: what [`Engine::ipv6`]'s ladder (the
/// header's checks, the chain walk, the source checks) and [`l4_info`]
/// find for it, read from the fixed 40-byte header with one bounds check
/// (issue 14). `None` for anything else, which then takes the ladder (a
/// proptest holds the two equal).
#[inline]
pub(super) fn l4_info_plain(frame: &[u8]) -> Option<L4Info6> {
    let at = ethernet::HEADER_LEN;
    let h: &[u8; ipv6::HEADER_LEN] = frame.get(at..at + ipv6::HEADER_LEN)?.try_into().ok()?;
    // Version 6, a source that is not multicast (ff00::/8) nor in ::/64
    // ([`bad_source6`]).
    if h[0] >> 4 != 6 || h[8] == 0xff || h[8..16] == [0; 8] {
        return None;
    }
    let be16 = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let len = ipv6::HEADER_LEN + usize::from(be16(h, 4));
    let seg = frame.get(at + ipv6::HEADER_LEN..at + len)?;
    let (proto, tcp_flags, seq, seg_len, ack) = match h[6] {
        6 => {
            // `tcp::Packet::check_len`: 20 bytes, data offset in 20..=len.
            if seg.len() < 20 {
                return None;
            }
            let doff = usize::from(seg[12] >> 4) * 4;
            if doff < 20 || doff > seg.len() {
                return None;
            }
            let f = seg[13];
            let ctl = u32::from(f & tcp_state::flags::SYN != 0) + u32::from(f & tcp_state::flags::FIN != 0);
            let seq = u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]);
            let ack = u32::from_be_bytes([seg[8], seg[9], seg[10], seg[11]]);
            (Protocol::Tcp, f, seq, (seg.len() - doff) as u32 + ctl, ack)
        }
        17 => {
            // `udp::Packet::check_len`: 8 bytes, its length in 8..=len.
            if seg.len() < 8 || !(8..=seg.len()).contains(&usize::from(be16(seg, 4))) {
                return None;
            }
            (Protocol::Udp, 0, 0, 0, 0)
        }
        _ => return None,
    };
    let addr = |r: core::ops::Range<usize>| u128::from(ipv6::read_ipv6(&h[r]));
    let (src, dst) = (addr(ipv6::field::SRC_ADDR), addr(ipv6::field::DST_ADDR));
    let key = FlowKey6 { proto, src, sport: be16(seg, 0), dst, dport: be16(seg, 2) };
    Some(L4Info6 { key, tcp_flags, seq, seg_len, ack, hop_limit: h[7], len, l4: at + ipv6::HEADER_LEN })
}

/// Reads the 5-tuple of a TCP or UDP packet whose transport header the
/// chain walk found at `t`; `None` if it is truncated.
pub(super) fn l4_info(frame: &[u8], t: &Transport) -> Option<L4Info6> {
    let ip = ipv6::Packet::new_checked(&frame[ethernet::HEADER_LEN..]).ok()?;
    let l4 = ethernet::HEADER_LEN + t.offset;
    let len = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let seg = frame.get(l4..ethernet::HEADER_LEN + len)?;
    let (proto, sport, dport, tcp_flags, seq, seg_len, ack) = match t.protocol {
        NextHeader::Tcp => {
            let p = tcp::Packet::new_checked(seg).ok()?;
            let f = p.flags();
            let ctl = u32::from(f & tcp_state::flags::SYN != 0) + u32::from(f & tcp_state::flags::FIN != 0);
            let len = seg.len().checked_sub(p.header_len())? as u32 + ctl;
            (Protocol::Tcp, p.src_port(), p.dst_port(), f, p.seq_number(), len, p.ack_number())
        }
        NextHeader::Udp => {
            let p = udp::Packet::new_checked(seg).ok()?;
            (Protocol::Udp, p.src_port(), p.dst_port(), 0, 0, 0, 0)
        }
        _ => return None,
    };
    let key =
        FlowKey6 { proto, src: u128::from(ip.src_addr()), sport, dst: u128::from(ip.dst_addr()), dport };
    Some(L4Info6 { key, tcp_flags, seq, seg_len, ack, hop_limit: ip.hop_limit(), len, l4 })
}

/// The number of IPv6 sessions a worker with `sessions` IPv4 sessions
/// holds unless `[workers] sessions6` says otherwise (a quarter, at least
/// one; see gatewayd's `limits.rs`).
pub fn sessions6_of(sessions: usize) -> usize {
    (sessions / 4).max(1)
}

/// [`super::conn::unbind`] for IPv6 session `s`.
fn unbind6(
    counters: &crate::counters::WorkerCounters,
    overloaded: &mut [bool],
    snap: &crate::service::Snapshot,
    workers: u32,
    s: &Session6,
) {
    unbind_parts(counters, overloaded, snap, workers, s.dest, s.flags, (s.protocol(), s.state), true);
}

impl Engine {
    /// A TCP/UDP packet to or from an IPv6 service (not a fragment).
    pub(super) fn ipv6_l4(&mut self, now: u64, rx: &Iface, frame: &mut [u8], t: &Transport) -> Action {
        let Some(p) = l4_info(frame, t) else {
            return Action::Drop(Drop::Ipv6Malformed);
        };
        self.ipv6_l4_checked(now, rx, frame, p)
    }

    /// [`Engine::ipv6_l4`] of the packet whose checks gave `p`. Out of
    /// line for the ladder; [`Engine::ipv6`]'s fast case has its body
    /// inline.
    #[inline(never)]
    pub(super) fn ipv6_l4_checked(&mut self, now: u64, rx: &Iface, frame: &mut [u8], p: L4Info6) -> Action {
        self.ipv6_l4_inline(now, rx, frame, &p)
    }

    /// [`Engine::ipv6_l4_checked`]'s body: the session step inline, once
    /// for both directions, as IPv4's [`Engine::l4`].
    #[inline(always)]
    pub(super) fn ipv6_l4_inline(&mut self, now: u64, rx: &Iface, frame: &mut [u8], p: &L4Info6) -> Action {
        let (i, dir) = match self.find_session6(now, rx, frame, p) {
            Ok(found) => found,
            Err(action) => return action,
        };
        self.forward6_found(now, rx, i, dir, frame, p)
    }

    /// The IPv6 session of TCP/UDP packet `p` and the side it came from,
    /// or what became of a packet that has none ([`Engine::open6`]).
    ///
    /// The reverse-path check ([`crate::route::RpFilter`], as IPv4's
    /// `find_session`) comes first in effect: an established packet's
    /// source is its session's client or real server, so the route the
    /// session remembers toward that side ([`session_route6`], the one its
    /// replies take) decides, a compare; a packet that reschedules a
    /// session or has none is checked by the route search before anything
    /// changes (no session ended or created, no state moved by a spoofed
    /// packet).
    #[inline(always)]
    fn find_session6(
        &mut self,
        now: u64,
        rx: &Iface,
        frame: &mut [u8],
        p: &L4Info6,
    ) -> Result<(u32, Dir), Action> {
        let mut rp_pending = true;
        let reply_first = self.snap.is_laddr6(p.key.dst);
        // One hash for both indexes (a key hashes the same in each): a
        // NAT66 reply, which misses the client-side index, is hashed once.
        let h = self.sessions6.hash(&p.key);
        if !reply_first {
            if let Some(i) = self.sessions6.find_in(&p.key, h) {
                // Kept, unless the packet schedules its session anew.
                let s = self.sessions6.get(i);
                let again = conn::rescheduled(
                    self.cfg.conn_reuse,
                    &self.snap,
                    (s.protocol(), s.state, s.flags, s.dest),
                    (p.key.proto, p.tcp_flags),
                );
                let Some(reuse) = again else {
                    if !session_rp_ok6(&self.cfg.routes, &mut self.sessions6, i, TO_CLIENT, p.key.src, rx) {
                        return Err(Action::Drop(Drop::ReversePath));
                    }
                    return Ok((i, Dir::Input));
                };
                rp_pending = false;
                self.rp_search6(rx, p)?;
                if reuse {
                    self.counters.event(Event::SessionsReused, 1);
                }
                self.end6(i);
            }
        }
        if reply_first || !self.snap.owns6(p.key.dst) {
            if let Some(i) = self.sessions6.find_out(&p.key, h) {
                if !session_rp_ok6(&self.cfg.routes, &mut self.sessions6, i, TO_SERVER, p.key.src, rx) {
                    return Err(Action::Drop(Drop::ReversePath));
                }
                return Ok((i, Dir::Output));
            }
        }
        if rp_pending {
            self.rp_search6(rx, p)?;
        }
        Err(self.open6(now, rx, frame, p))
    }

    /// The reverse-path check of packet `p`, which has no session, by the
    /// route table's search ([`Routes::reverse_path_ok6`]).
    #[inline(always)]
    fn rp_search6(&self, rx: &Iface, p: &L4Info6) -> Result<(), Action> {
        if !self.cfg.routes.reverse_path_ok6(p.key.src, rx) {
            return Err(Action::Drop(Drop::ReversePath));
        }
        Ok(())
    }

    /// An IPv6 packet that found no session: a SYNPROXY service's SYN, or
    /// a new session, or its drop. Out of line: the established path
    /// through [`Engine::ipv6_l4_checked`] stays small.
    #[inline(never)]
    fn open6(&mut self, now: u64, rx: &Iface, frame: &mut [u8], p: &L4Info6) -> Action {
        if p.key.proto == Protocol::Tcp {
            if let Some(s) = self.snap.service6(p.key.proto, p.key.dst, p.key.dport).filter(|s| s.synproxy) {
                let room = crate::client_addr::mss_room(s.client_addr, true);
                return self.synproxy_new6(now, rx, frame, p, room);
            }
        }
        match self.new_session6(now, p) {
            // A DR/TUN one-packet session ends with its datagram.
            Ok(i)
                if p.key.proto == Protocol::Udp
                    && conn::ops_ends(self.sessions6.get(i).flags, Dir::Input) =>
            {
                self.forward6_last(now, rx, i, Dir::Input, frame, p)
            }
            Ok(i) => self.forward6(now, rx, i, Dir::Input, frame, p),
            Err(d) => self.reject_or_drop6(now, rx, frame, p, d),
        }
    }

    /// Ends IPv6 session `i` now, with its accounting.
    pub(super) fn end6(&mut self, i: u32) {
        let s = *self.sessions6.get(i);
        let (c, o, snap, w) = (&self.counters, &mut self.overloaded, &self.snap, self.cfg.workers);
        unbind6(c, o, snap, w, &s);
        self.sessions6.remove(i);
    }

    /// Expires due IPv6 sessions, examining at most `budget` (see
    /// [`Engine::expire_with`]).
    pub(super) fn expire6(&mut self, now: u64, budget: usize) -> Expired {
        let Engine { cfg, snap, sessions6, counters, overloaded, sp6, sp_due, .. } = self;
        sessions6.expire_with(now, budget, |i, s| {
            if s.is_template() {
                return crate::persist::expire(counters, s);
            }
            let tcp = s.protocol() == Protocol::Tcp;
            let owner = i | crate::synproxy::V6_OWNER;
            if let Some(wait) = super::synproxy::timer(sp6, sp_due, i, owner, s.flags, tcp) {
                return Some(wait);
            }
            unbind6(counters, overloaded, snap, cfg.workers, s);
            None
        })
    }

    /// The session for the first packet of an IPv6 flow to a service.
    pub(super) fn new_session6(&mut self, now: u64, p: &L4Info6) -> Result<u32, Drop> {
        let Engine {
            cfg, snap, sessions, sessions6, svc: svc_state, counters, overloaded, ca, lports, ..
        } = self;
        let key = p.key;
        let Some(svc) = snap.service6(key.proto, key.dst, key.dport) else {
            let reply = snap.is_laddr6(key.dst) || snap.masq_dest6(key.proto, key.src, key.sport).is_some();
            return Err(if reply {
                Drop::UnknownReply
            } else if snap.owns6(key.dst) {
                Drop::NoService
            } else {
                Drop::Ipv6NotHandled
            });
        };
        let tcp = key.proto == Protocol::Tcp;
        if tcp && !plain_syn(p.tcp_flags) {
            return Err(Drop::NoSessionNotSyn);
        }
        if tcp && counters.event_count(Event::HalfOpen6) >= cfg.half_open_max6 as u64 {
            return Err(Drop::HalfOpenLimit);
        }
        if !tcp && counters.event_count(Event::UdpUnreplied6) >= cfg.half_open_max6 as u64 {
            return Err(Drop::UdpUnrepliedLimit);
        }
        let st = &mut svc_state[svc.slot as usize];
        if st.version != svc.version {
            st.version = svc.version;
            st.sched.reconfigure(&svc.prep);
            st.lport_next = 0;
        }
        let view = SvcDests { svc, counters, overloaded };
        let flow = Flow {
            src: fold32(key.src),
            sport: key.sport,
            dst: fold32(key.dst),
            dport: key.dport,
            now_ms: now,
        };
        let mut pick = || sched::pick(&svc.prep, &mut st.sched, &view, &flow);
        // Persistence (-p, -M as a prefix): the template names the server.
        let (d, template) = match svc.persistent_ms {
            None => (pick().ok_or(Drop::NoDest)?, None),
            Some(ptime) => {
                let (d, t) = crate::persist::schedule(sessions6, counters, svc, &key, now, ptime, pick)?;
                (d, Some(t))
            }
        };
        let dest = &svc.dests[d];
        // NAT64: an IPv4 server behind the IPv6 VIP, kept IPv4-mapped.
        let (rip, rip4) = match dest.addr {
            std::net::IpAddr::V6(a) => (u128::from(a), None),
            std::net::IpAddr::V4(a) => (super::nat64::mapped(u32::from(a)), Some(u32::from(a))),
        };
        if modes::routed(dest.mode) && p.hop_limit <= 1 {
            return Err(Drop::TtlExceeded);
        }
        let rs = (rip, if dest.port == 0 { key.dport } else { dest.port });
        let (local, flags) = match dest.mode {
            ForwardMode::FullNat if rip4.is_some() => {
                let t = (&*sessions, &*sessions6);
                let rs4 = (rip4.unwrap_or_default(), rs.1);
                (super::nat64::alloc_lport(t, *lports, svc, st, &key, rs4)?, Flags::NONE)
            }
            _ if rip4.is_some() => return Err(Drop::Ipv6NotHandled),
            ForwardMode::FullNat => (alloc_lport6(sessions6, *lports, svc, st, &key, rs)?, Flags::NONE),
            ForwardMode::Masq => {
                // Replies come back to the client address itself: a second
                // service's connection with the same reply key (the same
                // client address:port to the same real server) would take
                // the first one's replies (IPv4's `drop_nat_conflict`).
                let reply =
                    FlowKey6 { proto: key.proto, src: rs.0, sport: rs.1, dst: key.src, dport: key.sport };
                if sessions6.lookup_out(&reply).is_some() {
                    return Err(Drop::NatConflict);
                }
                ((key.src, key.sport), Flags::NONE)
            }
            ForwardMode::Route | ForwardMode::Tunnel => ((key.src, key.sport), Flags::NO_OUT),
        };
        let flags = if svc.one_packet && !tcp { flags | Flags::ONE_PACKET } else { flags };
        let state = if tcp { State::None } else { State::Udp };
        let mut s = Session6::new(
            key.proto,
            (key.src, key.sport),
            (key.dst, key.dport),
            rs,
            local,
            state,
            dest.mode,
            svc.slot,
            dest.slot,
        );
        // TCP: TOA or PROXY v1/v2; UDP: PROXY v2 on the first datagram.
        let pp = client_addr::applies(svc.client_addr, dest.mode, tcp);
        s.flags = if pp { flags | client_addr::flags_of(svc.client_addr) } else { flags };
        let i = sessions6.insert(s, now, snap.timeouts.of_ms(state)).map_err(|_| Drop::TableFull)?;
        if pp && svc.client_addr != gw_proto::ClientAddr::Toa {
            use client_addr::Client;
            let len = client_addr::proxy_len_of(svc.client_addr == gw_proto::ClientAddr::ProxyV2, &s.conn());
            ca.set(ca.slot6(i), p.seq, len);
        }
        if let Some(t) = template {
            crate::persist::attach(sessions6, t, i);
        }
        counters.event(Event::SessionsCreated, 1);
        counters.event(Event::SessionsLive, 1);
        if tcp {
            super::conn::half_open_add(counters, true);
        } else if !s.flags.contains(Flags::NO_OUT) {
            // DR/TUN: the answers bypass the gateway, never counted.
            super::conn::unreplied_add(counters, &mut sessions6.get_mut(i).flags, true);
        }
        for cells in [&counters.dests[dest.slot as usize], &counters.services[svc.slot as usize]] {
            cells.conns.add(1);
        }
        let cells = &counters.dests[dest.slot as usize];
        cells.inactive.add(1);
        let upper = per_worker(dest.upper, cfg.workers);
        if upper != 0 && cells.active.get() + cells.inactive.get() >= upper as u64 {
            overloaded[dest.slot as usize] = true;
        }
        Ok(i)
    }

    /// [`Engine::forward6`] for a session a lookup found: a SYNPROXY or
    /// one-packet session's through [`Engine::forward6_special`] (one flag
    /// test for the others; a new session is never a SYNPROXY one).
    #[inline(always)]
    pub(super) fn forward6_found(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info6,
    ) -> Action {
        // SYNPROXY's bit (TCP) is one-packet scheduling's (UDP): one test.
        if self.sessions6.get(i).flags.contains(Flags::SYNPROXY) {
            return self.forward6_special(now, rx, i, dir, frame, p);
        }
        // One copy of the step per direction (as IPv4's
        // `established_at`): what the direction picks (the route, the state
        // table, the rewrite's fields) is chosen where the code is made.
        match dir {
            Dir::Output => self.forward6_inline(now, rx, i, Dir::Output, frame, p),
            Dir::Input => self.forward6_inline(now, rx, i, Dir::Input, frame, p),
            Dir::InputOnly => self.forward6_inline(now, rx, i, Dir::InputOnly, frame, p),
        }
    }

    /// [`Engine::forward6_found`] for a session with SYNPROXY's bit: a
    /// SYNPROXY session's step (TCP), or a one-packet session's (UDP),
    /// which may end with this packet ([`conn::ops_ends`]).
    #[cold]
    #[inline(never)]
    fn forward6_special(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info6,
    ) -> Action {
        if p.key.proto == Protocol::Tcp {
            return self.forward6_synproxy(now, rx, i, dir, frame, p);
        }
        if conn::ops_ends(self.sessions6.get(i).flags, dir) {
            return self.forward6_last(now, rx, i, dir, frame, p);
        }
        self.forward6(now, rx, i, dir, frame, p)
    }

    /// [`Engine::forward6`] of the packet a one-packet session ends with
    /// ([`conn::ops_ends`]): forwarded as any other, then the session is
    /// gone (if the step did not end it already).
    #[cold]
    #[inline(never)]
    fn forward6_last(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info6,
    ) -> Action {
        self.sessions6.get_mut(i).flags.remove(Flags::ONE_PACKET);
        let act = self.forward6(now, rx, i, dir, frame, p);
        if self.sessions6.slot(i as usize).is_some() {
            self.end6(i);
        }
        act
    }

    /// Forwards a packet of IPv6 session `i` coming from `dir` (received
    /// on `rx`). Out of line for the new session and SYNPROXY's steps;
    /// [`Engine::forward6_found`] has it inline.
    #[inline(never)]
    pub(super) fn forward6(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info6,
    ) -> Action {
        self.forward6_inline(now, rx, i, dir, frame, p)
    }

    /// [`Engine::forward6`]'s body.
    #[inline(always)]
    fn forward6_inline(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info6,
    ) -> Action {
        let Engine {
            cfg,
            snap,
            sessions6,
            counters,
            overloaded,
            nat64: pending,
            encap6,
            min_mtu,
            whole,
            ca,
            ..
        } = self;
        // The session by reference, not a copy of its 128 bytes: what the
        // steps after its update read is kept here, and the transmit reads
        // it again once the state has moved.
        let s = sessions6.get(i);
        let (dest, service, smode, old) = (s.dest, s.service, s.mode, s.state);
        let mode = modes::traits(smode);
        if !cfg.nodest.forwards(snap, s.dest) {
            if cfg.nodest == super::conn::NoDest::Expire {
                unbind6(counters, overloaded, snap, cfg.workers, s);
                sessions6.remove(i);
            }
            return Action::Drop(Drop::DestUnavailable);
        }
        if mode.routed && p.hop_limit <= 1 {
            return Action::Drop(Drop::TtlExceeded);
        }
        let (to, way) = match dir {
            Dir::Output => (s.cip, TO_CLIENT),
            _ => (s.rip, TO_SERVER),
        };
        let nat64 = super::nat64::v4_of(s.rip);
        let Some((port, next_hop)) = session_route6(&cfg.routes, sessions6, i, way, to, nat64) else {
            return Action::Drop(Drop::NoRoute);
        };
        let s = sessions6.get(i);
        if p.key.proto == Protocol::Tcp && !s.flags.contains(Flags::NO_OUT) {
            if let Err(why) = track_seq6(sessions6.get_mut(i), dir, p) {
                return Action::Drop(why);
            }
        }
        let table = if dir == Dir::Input { mode.in_table } else { dir };
        let sm = sessions6.get_mut(i);
        let (state, tcp) = ((&mut sm.state, &mut sm.flags), (p.key.proto == Protocol::Tcp, p.tcp_flags));
        let (_, new) = forwarded(counters, state, (dest, service), (dir, table), tcp, p.len as u64, true);
        sessions6.touch(i, now, snap.timeouts.of_ms(new));
        let s = sessions6.get(i);
        // TOA or a PROXY header (FULLNAT66, NAT64): one test of the flag
        // byte for every other session.
        let out = dir == Dir::Output;
        if client_addr::concerns(s.flags, old, out, p.tcp_flags) {
            let act = if nat64.is_some() {
                super::nat64::xmit(
                    pending,
                    *whole,
                    counters,
                    rx,
                    s,
                    dir,
                    (&cfg.ifaces, *min_mtu),
                    (port, next_hop),
                    frame,
                    p,
                )
            } else {
                let m = (&cfg.ifaces[..], *min_mtu, *whole);
                fullnat66_xmit(s, (counters, rx), m, (port, next_hop), out, frame, p)
            };
            return xmit_client_addr6(ca, counters, &cfg.ifaces, i, s, old, out, p, frame, act);
        }
        if nat64.is_some() {
            return super::nat64::xmit(
                pending,
                *whole,
                counters,
                rx,
                s,
                dir,
                (&cfg.ifaces, *min_mtu),
                (port, next_hop),
                frame,
                p,
            );
        }
        // Over the smallest MTU only: Packet Too Big to the sender (not for
        // a datagram reassembled here: the worker fragments it).
        // TUN's outer headers: IPv6 and the server's tunnel header.
        let (tunnel, tun) = if smode == ForwardMode::Tunnel {
            let t = snap.dest_tunnel(u32::from(dest));
            (t, ipv6::HEADER_LEN + crate::modes::tun_encap::overhead(t))
        } else {
            (gw_proto::TunnelEncap::Ipip, 0)
        };
        if !*whole && p.len + tun > usize::from(*min_mtu) {
            let mtu = cfg.ifaces.iter().find(|i| i.port == port).map_or(u16::MAX, |i| i.mtu);
            if p.len + tun > usize::from(mtu) {
                return super::icmp6::too_big(counters, rx, frame, p.len, mtu.saturating_sub(tun as u16));
            }
        }
        if smode == ForwardMode::Tunnel {
            // IPv6-in-IPv6 (or GUE, GRE) from the output port's IPv6 address.
            let Some(src) = cfg.ifaces.iter().find(|i| i.port == port).and_then(|i| i.ipv6()) else {
                return Action::Drop(Drop::NoRoute);
            };
            *encap6 = (u128::from(src), s.rip);
            return Action::Encap6 { port, next_hop, tun: tunnel };
        }
        xmit6(s, dir == Dir::Output, mode.routed, frame, p);
        Action::Forward6 { port, next_hop }
    }
}

/// Output port and next hop toward `to`, session `i`'s address on side
/// `way` (`TO_SERVER` or `TO_CLIENT`), by the route the session remembers
/// ([`Session6::route`]), else searched and remembered, as IPv4's
/// `session_route`. `nat64`: the session's IPv4 real server, whose route
/// is the IPv4 table's.
#[inline(always)]
pub(super) fn session_route6(
    routes: &Routes,
    sessions6: &mut SessionTable6,
    i: u32,
    way: usize,
    to: u128,
    nat64: Option<u32>,
) -> Option<(u16, u128)> {
    let known = &mut sessions6.get_mut(i).route[way];
    match (nat64, way) {
        (Some(rip4), TO_SERVER) => {
            routes.lookup_remembered(known, rip4).map(|(port, hop)| (port, u128::from(hop)))
        }
        _ => routes.lookup6_remembered(known, to),
    }
}

/// The reverse-path check of a packet from `src`, session `i`'s address
/// on side `way` (an IPv6 one: NAT64's IPv4 side is IPv4's): by the route
/// the session remembers toward it, a compare; the first time by the
/// search, whose route the session then remembers ([`session_route6`]:
/// the one its packets to `src` take).
#[inline(always)]
fn session_rp_ok6(
    routes: &Routes,
    sessions6: &mut SessionTable6,
    i: u32,
    way: usize,
    src: u128,
    rx: &Iface,
) -> bool {
    match sessions6.get(i).route[way] {
        Some(no) => routes.reverse_path_ok6_at(no, rx),
        None => session_rp_first6(routes, sessions6, i, way, src, rx),
    }
}

/// [`session_rp_ok6`] of a session that does not know the route yet.
#[inline(never)]
fn session_rp_first6(
    routes: &Routes,
    sessions6: &mut SessionTable6,
    i: u32,
    way: usize,
    src: u128,
    rx: &Iface,
) -> bool {
    route::rp_ok(session_route6(routes, sessions6, i, way, src, None), rx)
}

/// The IPv4 path's RFC 5961-style check ([`crate::tcp_seq`]) for an IPv6
/// session that sees both directions, before it can move the state.
fn track_seq6(s: &mut Session6, dir: Dir, p: &L4Info6) -> Result<(), Drop> {
    let marks = crate::tcp_seq::Marks { flags: &mut s.flags, marks: &mut s.seq_mark };
    marks.track(dir == Dir::Output, s.state, (p.seq, p.seg_len, p.ack), p.tcp_flags)
}

/// FULLNAT66's transmit of a packet of a session with a client-address
/// choice (before [`xmit_client_addr6`]): as [`Engine::forward6`]'s,
/// Packet Too Big over the output port's MTU (checked above the smallest
/// port MTU only; not for a datagram reassembled here), else the rewrite.
fn fullnat66_xmit(
    s: &Session6,
    (counters, rx): (&crate::counters::WorkerCounters, &Iface),
    (ifaces, min_mtu, whole): (&[Iface], u16, bool),
    (port, next_hop): (u16, u128),
    out: bool,
    frame: &mut [u8],
    p: &L4Info6,
) -> Action {
    if !whole && p.len > usize::from(min_mtu) {
        let mtu = ifaces.iter().find(|i| i.port == port).map_or(u16::MAX, |i| i.mtu);
        if p.len > usize::from(mtu) {
            return super::icmp6::too_big(counters, rx, frame, p.len, mtu);
        }
    }
    xmit6(s, out, true, frame, p);
    Action::Forward6 { port, next_hop }
}

/// The client-address step of an IPv6 session's packet after its mode's
/// transmit `act` ([`client_addr::on_forward`], UDP
/// [`client_addr::on_forward_udp`]), with the session's entry in the
/// IPv6 part of the table. Out of line: only sessions with a choice come
/// here.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn xmit_client_addr6(
    ca: &mut client_addr::Table,
    counters: &crate::counters::WorkerCounters,
    ifaces: &[Iface],
    i: u32,
    s: &Session6,
    old: State,
    out: bool,
    p: &L4Info6,
    frame: &mut [u8],
    act: Action,
) -> Action {
    let slot = ca.slot6(i);
    if p.key.proto == Protocol::Udp {
        return client_addr::on_forward_udp(ca, ifaces, slot, s, out, frame, act);
    }
    if let Some(seg) = frame.get_mut(p.l4..ethernet::HEADER_LEN + p.len) {
        if client_addr::shift_established(ca, slot, s.flags, old, out, p.tcp_flags, seg, act) {
            return act;
        }
    }
    client_addr::on_forward(ca, counters, ifaces, slot, s, old, out, p.tcp_flags, frame, act)
}

/// Rewrites the IPv6 packet of session `s` for its mode (`out`: a reply
/// from the real server); decrements the hop limit if `routed`. Inline
/// in the established path, as IPv4's rewrite is in its. FULLNAT66's and
/// NAT66's rewrite updates the TCP/UDP checksum by the change the session
/// worked out when it was made ([`Session6::rewrite_change`]), so no old
/// address or port is read: `p` is a packet the session was found by (a
/// debug assertion holds it to that side's key).
#[inline(always)]
pub(crate) fn xmit6(s: &Session6, out: bool, routed: bool, frame: &mut [u8], p: &L4Info6) {
    // (new source, new destination) addresses and ports, if rewritten.
    let rewrite = match (s.mode, out) {
        (ForwardMode::FullNat, false) => Some(((s.lip, s.lport), (s.rip, s.rport))),
        (ForwardMode::FullNat, true) => Some(((s.vip, s.vport), (s.cip, s.cport))),
        (ForwardMode::Masq, false) => Some(((s.cip, s.cport), (s.rip, s.rport))),
        (ForwardMode::Masq, true) => Some(((s.vip, s.vport), (s.cip, s.cport))),
        _ => None,
    };
    let l3 = &mut frame[ethernet::HEADER_LEN..];
    let mut ip = ipv6::Packet::new_unchecked(&mut *l3);
    let Some(((src, sport), (dst, dport))) = rewrite else {
        if routed {
            let h = ip.hop_limit();
            ip.set_hop_limit(h - 1);
        }
        return;
    };
    debug_assert_eq!(p.key, if out { s.out_key() } else { s.in_key() }, "not session {s:?}'s packet");
    ip.set_addrs(Ipv6Addr::from(src), Ipv6Addr::from(dst), routed);
    let change = s.rewrite_change(out);
    let seg = &mut frame[p.l4..ethernet::HEADER_LEN + p.len];
    match p.key.proto {
        Protocol::Tcp => tcp::Packet::new_unchecked(seg).set_ports_with(sport, dport, change),
        _ => udp::Packet::new_unchecked(seg).set_ports_with(sport, dport, change),
    }
}

/// Picks LIP:lport (IPv6) for a new FULLNAT66 session of `flow` toward
/// `rs`, as [`super::conn::alloc_lport`] does for IPv4: the service's IPv6
/// local addresses in turn from the one a keyed hash of the flow names
/// ([`super::conn::laddr_index`]), on each the ports of this worker's share
/// (`lport % workers == worker`) from a keyed hash of the flow (RFC 6056
/// §3.3.3), skipping a port whose reply key is live.
fn alloc_lport6(
    sessions: &SessionTable6,
    part: Option<Partition>,
    svc: &Service,
    st: &mut super::SvcState,
    flow: &FlowKey6,
    rs: (u128, u16),
) -> Result<(u128, u16), Drop> {
    let n = svc.laddrs6.len();
    if n == 0 {
        return Err(Drop::NoLaddr);
    }
    let Some(part) = part else { return Err(Drop::LaddrExhausted) };
    let tries = (part.span() as usize).min(LPORT_TRIES);
    let h = sessions.hash(flow);
    let k0 = super::conn::laddr_index(h, n);
    for k in 0..n {
        let lip = svc.laddrs6[(k0 + k) % n];
        let offset = part.offset_of(port_offset6(h, rs, lip));
        for _ in 0..tries {
            let lport = part.port(offset, u32::from(st.lport_next));
            st.lport_next = st.lport_next.wrapping_add(1);
            let key = FlowKey6 { proto: flow.proto, src: rs.0, sport: rs.1, dst: lip, dport: lport };
            // The reply bucket's signatures alone: no session read (a
            // matching one counts as taken).
            if !sessions.out_hash_may_be_live(sessions.hash(&key)) {
                return Ok((lip, lport));
            }
        }
    }
    Err(Drop::LaddrExhausted)
}

/// RFC 6056's F() for IPv6: SipHash-1-3 over the flow's keyed table hash
/// (the table's secret seed is in it), the real server and the local
/// address, six whole words ([`sip13_words`]: std's hasher took its
/// tail-buffering path for the 2-byte port).
pub(super) fn port_offset6(flow_hash: u64, rs: (u128, u16), lip: u128) -> u64 {
    let w = |a: u128| [a as u64, (a >> 64) as u64];
    let ([r0, r1], [l0, l1]) = (w(rs.0), w(lip));
    sip13_words((0, 0), [flow_hash, r0, r1, u64::from(rs.1), l0, l1])
}

#[cfg(test)]
pub(crate) mod tests;

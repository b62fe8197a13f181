//! SYNPROXY in the engine ([`crate::synproxy`]): the SYN answered with a
//! cookie, the cookie ACK turned into the client's SYN toward the real
//! server (the session is created then), the server's SYN-ACK turned into
//! the client's handshake ACK. Everything else of a SYNPROXY session takes
//! [`Engine::forward`] with the splice.

use gw_proto::{ClientAddr, ForwardMode};

use super::conn::{plain_syn, unbind};
use super::ipv4::L4Info;
use super::{Action, Engine};
use crate::client_addr;
use crate::counters::{Drop, Event};
use crate::route::Iface;
use crate::session::{Flags, FlowKey};
use crate::synproxy as sp;
use crate::tcp_state::{flags as tf, Dir};
use crate::wire::ethernet::HEADER_LEN as ETH;
use crate::wire::ipv4::Protocol;

impl Engine {
    /// A TCP packet without a session to a SYNPROXY service: a plain SYN
    /// is answered with a cookie SYN-ACK (no state; its MSS leaves `room`
    /// for a PROXY header, [`crate::client_addr::mss_room`]); an ACK with a
    /// valid cookie opens the connection; anything else is dropped.
    #[inline(never)]
    pub(super) fn synproxy_new(
        &mut self,
        now: u64,
        rx: &Iface,
        frame: &mut [u8],
        p: &L4Info,
        room: u16,
    ) -> Action {
        let secret = self.cfg.synproxy_secret;
        let seg = sp::read(frame);
        let f = p.tcp_flags;
        if plain_syn(f) {
            let mss = rx.mtu.saturating_sub(sp::V4.headers + room).max(sp::V4.default_mss);
            let mut o = [0; 20];
            let (sa, n) = sp::syn_ack(secret, now, &sp::V4, &seg, mss, &mut o);
            let Some((port, next_hop)) = self.cfg.routes.lookup(seg.src as u32) else {
                return Action::Drop(Drop::NoRoute);
            };
            // Written without its options, which the worker then inserts
            // (a SYN may be shorter than its answer).
            if sp::write(frame, &sa, &[], 64).is_none() {
                return Action::Drop(Drop::SynproxyNoRoom);
            }
            self.counters.event(Event::SynproxySynAcks, 1);
            self.ca.set_pending(sp::insert(o, n));
            return Action::GrowReply { port, next_hop };
        }
        if f & (tf::SYN | tf::RST | tf::FIN) != 0 || f & tf::ACK == 0 {
            return Action::Drop(Drop::SynproxyBadCookie);
        }
        let Some((syn, e, mut opts, n)) = sp::syn_of_ack(secret, now, &sp::V4, &seg, 0) else {
            return Action::Drop(Drop::SynproxyBadCookie);
        };
        // Data on the cookie ACK: a copy waits for the server's SYN-ACK.
        let held = if seg.data > 0 { self.hold(rx.port, e.cookie_isn, &frame[..ETH + p.tl]) } else { None };
        let Some(tl) = sp::write(frame, &syn, &[], p.ttl) else {
            return self.unhold(held, Action::Drop(Drop::SynproxyNoRoom));
        };
        let q = L4Info { tcp_flags: tf::SYN, seq: syn.seq, seg_len: 1, tl, dont_frag: true, ..*p };
        let i = match self.new_session(now, q) {
            Ok(i) => i,
            Err(d) => return self.unhold(held, Action::Drop(d)),
        };
        let s = *self.sessions.get(i);
        if !matches!(s.mode, ForwardMode::FullNat | ForwardMode::Masq) {
            unbind(&self.counters, &mut self.overloaded, &self.snap, self.cfg.workers, &s);
            self.sessions.remove(i);
            return self.unhold(held, Action::Drop(Drop::SynproxyMode));
        }
        if let Some(k) = held {
            self.sp_hold.bind(k, Some(i));
        }
        lower_mss(&s, &mut opts);
        self.counters.event(Event::SynproxyOpened, 1);
        let act = self.forward(now, rx, i, Dir::Input, frame, &q);
        // Marked after the SYN went through: from now on the splice.
        self.sessions.get_mut(i).flags.insert(Flags::SYNPROXY);
        self.sp.set(i, e);
        self.arm_resend(now, i);
        self.with_syn_options(act, opts, n)
    }

    /// The SYN of SYNPROXY session `i` sent to the real server again
    /// ([`sp::resend_due`] held for client segment `seg`, the frame):
    /// rebuilt from the cookie in place of the segment, as
    /// [`Engine::synproxy_new`] builds the first, and taken through the
    /// session's path (its step lets it through once, [`sp::resent`]).
    #[cold]
    fn resend_syn(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        frame: &mut [u8],
        p: &L4Info,
        seg: &sp::Seg,
    ) -> Action {
        let secret = self.cfg.synproxy_secret;
        // The cookie is good for two minutes: a later segment only waits.
        let Some((syn, _, mut opts, n)) = sp::syn_of_ack(secret, now, &sp::V4, seg, 0) else {
            return Action::Drop(Drop::SynproxyPending);
        };
        let Some(tl) = sp::write(frame, &syn, &[], p.ttl) else {
            return Action::Drop(Drop::SynproxyNoRoom);
        };
        let q = L4Info { tcp_flags: tf::SYN, seq: syn.seq, seg_len: 1, tl, dont_frag: true, ..*p };
        lower_mss(self.sessions.get(i), &mut opts);
        self.sp.set(i, sp::resent(&self.sp.get(i), now));
        self.counters.event(Event::SynproxySynResent, 1);
        let act = self.forward(now, rx, i, Dir::Input, frame, &q);
        self.arm_resend(now, i);
        self.with_syn_options(act, opts, n)
    }

    /// Sets the deadline of IPv4 SYNPROXY session `i` (if it still waits
    /// for the real server's SYN-ACK) to its resend timer
    /// ([`sp::resend_timer`]), after a SYN went toward the server: the
    /// session's path had set SYN_SENT's timeout.
    fn arm_resend(&mut self, now: u64, i: u32) {
        let e = self.sp.get(i);
        if self.sessions.get(i).proto != 0 && !e.spliced {
            self.sessions.touch(i, now, sp::resend_timer(e.resends));
        }
    }

    /// The next SYNPROXY handshake whose timer came due waiting for the
    /// real server ([`timer`]), its SYN to be sent again, rebuilt from the
    /// cookie as the first was ([`sp::cookie_ack`], [`sp::syn_of_ack`]),
    /// marked to pass its session's step once ([`sp::resent`]) and counted
    /// (`synproxy_syn_resent`): an IPv6 one written whole into the frame
    /// [`Engine::built_frame`] gives, to be processed as received on the
    /// client's side; an IPv4 one is written by [`Engine::timer_resend4`]
    /// into a buffer of the worker's. `None` when none is left. A
    /// handshake that ended or was answered meanwhile, or whose cookie aged
    /// out (two minutes), is skipped.
    pub fn next_timer_resend(&mut self, now: u64) -> Option<TimerResend> {
        while let Some(owner) = self.sp_due.pop() {
            let i = owner & !sp::V6_OWNER;
            if owner & sp::V6_OWNER == 0 {
                let s = self.sessions.get(i);
                if resend_pending(&self.sp.get(i), s.proto, s.flags) {
                    return Some(TimerResend::Ipv4 { owner });
                }
            } else if let Some(port) = self.build_timer_resend6(now, i) {
                return Some(TimerResend::Again { owner, port });
            }
        }
        None
    }

    /// Whether [`Engine::next_timer_resend`] has work.
    #[inline]
    pub fn timer_resends_due(&self) -> bool {
        !self.sp_due.is_empty()
    }

    /// Gives up the queued resends (no buffer for them): each session's
    /// deadline, set when it was queued, brings it back.
    pub fn forget_timer_resends(&mut self) {
        self.sp_due.clear();
    }

    /// [`Engine::next_timer_resend`] of IPv6 session `i`: its SYN in the
    /// built frame; the port it is to be processed as received on.
    fn build_timer_resend6(&mut self, now: u64, i: u32) -> Option<u16> {
        let s = *self.sessions6.get(i);
        let e = self.sp6.get(i);
        if !resend_pending(&e, s.proto, s.flags) {
            return None;
        }
        let ack = sp::cookie_ack(&e, (s.cip, s.cport), (s.vip, s.vport));
        let (syn, _, opts, n) = sp::syn_of_ack(self.cfg.synproxy_secret, now, &sp::V6, &ack, 0)?;
        let port = self.cfg.routes.lookup6(s.cip)?.0;
        let mac = self.iface(port)?.mac;
        self.sp_built.write_new(mac, &syn, &opts[..n]);
        if self.sp_built.frame().is_empty() {
            return None;
        }
        self.sp6.set(i, sp::resent(&e, now));
        self.counters.event(Event::SynproxySynResent, 1);
        Some(port)
    }

    /// The SYN of IPv4 SYNPROXY session `i` ([`TimerResend::Ipv4`]) sent
    /// again, as [`Engine::synproxy_new`] sends the first: written without
    /// its options into `frame` ([`TIMER_SYN_LEN`] bytes, the client's
    /// SYN as received on the client's side) and taken through the
    /// session's path; the action for the frame (its options inserted by
    /// the worker, [`Action::Grow`]), or `None` (nothing to send).
    pub fn timer_resend4(&mut self, now: u64, i: u32, frame: &mut [u8]) -> Option<Action> {
        let s = *self.sessions.get(i);
        let e = self.sp.get(i);
        if !resend_pending(&e, s.proto, s.flags) {
            return None;
        }
        let (client, virt) = ((u128::from(s.cip), s.cport), (u128::from(s.vip), s.vport));
        let ack = sp::cookie_ack(&e, client, virt);
        let (syn, _, mut opts, n) = sp::syn_of_ack(self.cfg.synproxy_secret, now, &sp::V4, &ack, 0)?;
        let rx = *self.iface(self.cfg.routes.lookup(s.cip)?.0)?;
        let eth = frame.get_mut(..ETH)?;
        eth[..6].copy_from_slice(&rx.mac.0);
        eth[6..12].copy_from_slice(&rx.mac.0);
        eth[12..].copy_from_slice(&u16::from(crate::wire::ethernet::EtherType::Ipv4).to_be_bytes());
        let tl = sp::write(frame, &syn, &[], 64)?;
        lower_mss(&s, &mut opts);
        self.sp.set(i, sp::resent(&e, now));
        self.counters.event(Event::SynproxySynResent, 1);
        let key = FlowKey { proto: Protocol::Tcp, src: s.cip, sport: s.cport, dst: s.vip, dport: s.vport };
        let q = L4Info {
            key,
            tcp_flags: tf::SYN,
            seq: syn.seq,
            seg_len: 1,
            ack: 0,
            ttl: 64,
            tl,
            dont_frag: true,
        };
        let act = self.forward(now, &rx, i, Dir::Input, frame, &q);
        self.arm_resend(now, i);
        Some(self.with_syn_options(act, opts, n))
    }

    /// After the SYN of queue entry `owner` ([`Engine::next_timer_resend`])
    /// went through its session's path: the session's deadline back to its
    /// resend timer, if it still waits for the real server.
    pub fn rearm_resend(&mut self, now: u64, owner: u32) {
        let i = owner & !sp::V6_OWNER;
        if owner & sp::V6_OWNER == 0 {
            return self.arm_resend(now, i);
        }
        let e = self.sp6.get(i);
        if self.sessions6.get(i).proto != 0 && !e.spliced {
            self.sessions6.touch(i, now, sp::resend_timer(e.resends));
        }
    }

    /// `act`, the action for a SYN built without its options: with them
    /// (`opts`, `n` bytes) for the worker to insert, if it is sent.
    fn with_syn_options(&mut self, act: Action, opts: [u8; 20], n: usize) -> Action {
        match act {
            Action::Forward { port, next_hop } | Action::Grow { port, next_hop } => {
                self.ca.set_pending(sp::insert(opts, n));
                Action::Grow { port, next_hop }
            }
            other => other,
        }
    }

    /// Copies the cookie ACK `frame` (received on `port`) into the hold;
    /// its slot, `None` (counted `synproxy_data_left`: the client
    /// retransmits) if it is too large or every slot holds the data of a
    /// live handshake. The slots are shared by both families: an IPv6
    /// session's owner index carries [`sp::V6_OWNER`].
    pub(super) fn hold(&mut self, port: u16, cookie_isn: u32, frame: &[u8]) -> Option<usize> {
        let (sessions, sessions6, table, table6) = (&self.sessions, &self.sessions6, &self.sp, &self.sp6);
        let alive = |owner: u32, cookie: u32| {
            let i = owner & !sp::V6_OWNER;
            let (proto, flags, e) = if owner & sp::V6_OWNER != 0 {
                if i as usize >= sessions6.capacity() {
                    return false;
                }
                let s = sessions6.get(i);
                (s.proto, s.flags, table6.get(i))
            } else {
                if i as usize >= sessions.capacity() {
                    return false;
                }
                let s = sessions.get(i);
                (s.proto, s.flags, table.get(i))
            };
            proto != 0 && flags.contains(Flags::SYNPROXY) && !e.spliced && e.cookie_isn == cookie
        };
        let k = self.sp_hold.put(cookie_isn, port, frame, alive);
        self.counters
            .event(if k.is_some() { Event::SynproxyDataHeld } else { Event::SynproxyDataRetransmit }, 1);
        k
    }

    /// Frees the slot [`Engine::hold`] took for a connection that was not
    /// opened; `act`.
    pub(super) fn unhold(&mut self, held: Option<usize>, act: Action) -> Action {
        if let Some(k) = held {
            self.sp_hold.bind(k, None);
        }
        act
    }

    /// A packet of SYNPROXY session `i` before [`Engine::forward`]'s common
    /// step: the server's SYN-ACK becomes the client's handshake ACK;
    /// before it, client segments wait (dropped, retransmitted) and a
    /// server's RST is put at the client's expected sequence number.
    /// `None`: forward as usual.
    #[cold]
    #[inline(never)]
    pub(super) fn synproxy_step(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info,
    ) -> Option<Action> {
        let mut e = self.sp.get(i);
        let out = dir == Dir::Output;
        let f = p.tcp_flags;
        if out && f & (tf::SYN | tf::ACK) == tf::SYN | tf::ACK && f & tf::RST == 0 {
            let s = *self.sessions.get(i);
            let sa = sp::read(frame);
            if !sp::answers_syn(&e, &sa) {
                return Some(Action::Drop(Drop::SynproxyServerAck));
            }
            let mut o = [0; 20];
            let (client, virt) = ((s.cip.into(), s.cport), (s.vip.into(), s.vport));
            let (ack, n) = sp::ack_of_syn_ack(&mut e, &sa, client, virt, &mut o);
            self.sp.set(i, e);
            let Some(tl) = sp::write(frame, &ack, &o[..n], 64) else {
                return Some(Action::Drop(Drop::SynproxyNoRoom));
            };
            let key =
                FlowKey { proto: Protocol::Tcp, src: s.cip, sport: s.cport, dst: s.vip, dport: s.vport };
            // The client's side: its acknowledgement is not read ([`crate::tcp_seq`]).
            let q = L4Info {
                key,
                tcp_flags: tf::ACK,
                seq: ack.seq,
                seg_len: 0,
                ack: 0,
                ttl: 64,
                tl,
                dont_frag: true,
            };
            let act = self.forward(now, rx, i, Dir::Input, frame, &q);
            // The data the cookie ACK carried follows the handshake ACK.
            return Some(match act {
                Action::Forward { port, next_hop } if self.sp_hold.release(i, e.cookie_isn) => {
                    Action::ThenHeld { port, next_hop, grow: false }
                }
                Action::Grow { port, next_hop } if self.sp_hold.release(i, e.cookie_isn) => {
                    Action::ThenHeld { port, next_hop, grow: true }
                }
                other => other,
            });
        }
        if e.spliced {
            return None;
        }
        if !out && sp::let_resent_syn_through(&mut e, f) {
            self.sp.set(i, e);
            return None;
        }
        if out && f & tf::RST != 0 {
            if !sp::answers_syn(&e, &sp::read(frame)) {
                return Some(Action::Drop(Drop::SynproxyServerAck));
            }
            // The server refuses: reset the client where it expects it.
            let hl = crate::wire::ipv4::Packet::new_unchecked(&frame[ETH..]).header_len();
            let mut t = crate::wire::tcp::Packet::new_unchecked(&mut frame[ETH + hl..]);
            t.rewrite_seq_number(e.cookie_isn.wrapping_add(1));
            self.sp_hold.forget(i, e.cookie_isn);
            return None;
        }
        if !out {
            let seg = sp::read(frame);
            if sp::resend_due(&e, &seg, now) {
                return Some(self.resend_syn(now, rx, i, frame, p, &seg));
            }
        }
        Some(Action::Drop(Drop::SynproxyPending))
    }
}

/// What [`Engine::next_timer_resend`] found: an IPv6 handshake's SYN in
/// the built frame, to be processed as received on `port`; an IPv4 one,
/// for [`Engine::timer_resend4`]. `owner`: the handshake, for
/// [`Engine::rearm_resend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerResend {
    Again { owner: u32, port: u16 },
    Ipv4 { owner: u32 },
}

/// The length of the frame [`Engine::timer_resend4`] writes: Ethernet,
/// IPv4 and TCP headers, without options.
pub const TIMER_SYN_LEN: usize = ETH + 20 + crate::wire::tcp::MIN_HEADER_LEN;

/// Whether the handshake of a session (`proto`, `flags`, splice `e`) still
/// waits for the real server and may send its SYN again.
fn resend_pending(e: &sp::Entry, proto: u8, flags: Flags) -> bool {
    proto == u8::from(Protocol::Tcp) && flags.contains(Flags::SYNPROXY) && sp::timer_resend_due(e)
}

/// The most SYNPROXY handshakes one expiry pass queues for the timer's
/// resend ([`timer`]); the rest wait a little ([`sp::RESEND_AFTER_MS`]).
pub(super) const TIMER_RESENDS_PER_TICK: usize = 64;

/// The decision of the session expiry for session `i` (`flags`, `tcp`)
/// whose deadline came, from SYNPROXY's side (`table`: its family's
/// splices): `Some(wait)` keeps it that much longer, a handshake still
/// waiting for the real server whose SYN goes again
/// ([`sp::timer_resend_due`]; queued as `owner` in `due` for the worker);
/// `None` lets it end as any session (not SYNPROXY, answered, or resent
/// [`sp::SYN_RESENDS`] times).
pub(super) fn timer(
    table: &sp::Table,
    due: &mut Vec<u32>,
    i: u32,
    owner: u32,
    flags: Flags,
    tcp: bool,
) -> Option<u64> {
    if !sp::is_synproxy(flags, tcp) {
        return None;
    }
    let e = table.get(i);
    if !sp::timer_resend_due(&e) {
        return None;
    }
    if due.len() == due.capacity() {
        return Some(u64::from(sp::RESEND_AFTER_MS));
    }
    due.push(owner);
    Some(sp::resend_timer(e.resends + 1))
}

/// Lowers the MSS option at the front of `opts` (a SYN's, from
/// [`sp::syn_of_ack`]) by the room session `s`'s client-address choice
/// takes from the client's segments (TOA, a PROXY header).
fn lower_mss(s: &crate::session::Session, opts: &mut [u8; 20]) {
    let less = match client_addr::of_flags(s.flags) {
        ClientAddr::None => 0,
        ClientAddr::Toa => client_addr::TOA_LEN,
        ca => client_addr::proxy_len(ca == ClientAddr::ProxyV2, s),
    };
    let mss = u16::from_be_bytes([opts[2], opts[3]]).saturating_sub(less as u16).max(536 - 40);
    opts[2..4].copy_from_slice(&mss.to_be_bytes());
}

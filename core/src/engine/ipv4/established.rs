//! The established FULLNAT or NAT packet's step, without the ladder (issue
//! 14): the poll loop's staged packets that have a session, in the common
//! case, take this step inside the worker's burst loop
//! ([`crate::worker::Worker::handle_staged`]); anything else declines
//! before it changes a thing and takes [`Engine::process_parsed`] as
//! before.
//!
//! It is [`Engine::process_parsed`]'s step for the packets it takes: the
//! same lookup, reverse-path check by the session's remembered route,
//! route on, sequence check, rewrite, state move, timer and counters, on
//! the session in place rather than a copy of its line, every test before
//! any change (the rewrite comes before the session's moves here, which
//! changes nothing: both are certain by then). The poll step tests
//! (`dataplane/tests/poll_steps.rs`) hold bursts with every branch to the
//! full step's fate, one frame at a time.
//!
//! What it leaves to the full step: a frame not to the port's MAC, a bad
//! source, no session (a new flow; NAT64's reply goes to its own step,
//! [`Engine::nat64_reply_staged`]), a session to reschedule (one-packet
//! scheduling, a connection reused), a failed reverse path, SYNPROXY or
//! a one-packet session (its answer may end it), a
//! deleted real server, TTL 1, a packet over the smallest MTU, a
//! client-address choice, DR and TUN, a segment out of window, a route
//! not found: each then meets the full step's answer (its drop or its
//! other transmit).

use super::super::conn::forwarded;
use super::super::{bad_source, Action, Engine};
use super::{rescheduled, track_seq, Staged, TO_CLIENT, TO_SERVER};
use crate::client_addr;
use crate::route::{self, Iface};
use crate::session::{Flags, NIL};
use crate::tcp_state::Dir;
use crate::wire::ipv4::Protocol;
use gw_proto::ForwardMode;

impl Engine {
    /// Whether staged packet `p` can only be NAT64's reply: to a local
    /// address:port that no IPv4 session has in its reply key while IPv6
    /// sessions are live (`find_session`'s test).
    #[inline(always)]
    pub fn nat64_reply_first(&self, p: &Staged) -> bool {
        self.nat64_only(p.lookup.to_laddr(), &p.l4.key)
    }

    /// The full step of a staged packet that [`Engine::nat64_reply_first`]
    /// says is NAT64's reply: straight to the NAT64 session's step (its
    /// lookup in the IPv6 table by the mapped reply key, the reverse path
    /// by its route); a frame that is not `sane_for_us`, or without an IPv6
    /// session, takes the full step from the start.
    #[inline(never)]
    pub fn nat64_reply_staged(&mut self, now: u64, rx: &Iface, frame: &mut [u8], p: &Staged) -> Action {
        if sane_for_us(rx, frame, p) {
            if let Some(a) = self.nat64_reply(now, rx, frame, &p.l4, true) {
                return a;
            }
        }
        self.process_parsed(now, rx.port, frame, Some(p))
    }

    /// The step of staged frame `frame` (record `p`) received on `rx`, a
    /// packet that is not NAT64's reply ([`Engine::nat64_reply_first`]),
    /// when it is an established FULLNAT or NAT packet that takes nothing
    /// uncommon: its session moved and counted, the frame rewritten, and
    /// the output port and next hop returned; else `None`, with nothing
    /// changed (the caller then runs [`Engine::process_parsed`]).
    #[inline(always)]
    pub fn established(&mut self, now: u64, rx: &Iface, frame: &mut [u8], p: &Staged) -> Option<(u16, u32)> {
        let (l4, look) = (&p.l4, p.lookup);
        debug_assert_eq!(
            look.inputs(),
            self.lookup_of(&l4.key).inputs(),
            "the lookup's inputs are this key's, now"
        );
        let to_laddr = look.to_laddr();
        if !sane_for_us(rx, frame, p) {
            return None;
        }
        // The session and the side the packet came from, as
        // `find_session` finds it; a miss is the full step's.
        // The stage's hint first: the session it names if it holds this key.
        let found =
            if to_laddr { None } else { self.sessions.find_in_hinted(&l4.key, look.hash(), look.hint) };
        match found {
            Some(i) => self.established_at::<false>(now, rx, frame, l4, i),
            None => {
                // A packet to a VIP without a session opens one.
                if !to_laddr && self.snap.owns(l4.key.dst) {
                    return None;
                }
                let hint = if to_laddr { look.hint } else { NIL };
                let i = self.sessions.find_out_hinted(&l4.key, look.hash(), hint)?;
                self.established_at::<true>(now, rx, frame, l4, i)
            }
        }
    }

    /// [`Engine::established`] once session `i` is found, from its reply
    /// side (`OUT`) or its client side: one copy of the step per
    /// direction, so that what depends on the direction (the fields the
    /// rewrite reads, the routes, the state table) is chosen where the
    /// code is made, not per packet.
    #[inline(always)]
    fn established_at<const OUT: bool>(
        &mut self,
        now: u64,
        rx: &Iface,
        frame: &mut [u8],
        l4: &super::L4Info,
        i: u32,
    ) -> Option<(u16, u32)> {
        let tcp = l4.key.proto == Protocol::Tcp;
        let (out, dir) = (OUT, if OUT { Dir::Output } else { Dir::Input });
        let Engine { cfg, snap, sessions, counters, min_mtu, .. } = self;
        // The session in place (no copy of its line): every test first,
        // then the frame's rewrite, then the session's own moves.
        let s = sessions.get_mut(i);
        if !OUT && rescheduled(cfg, snap, s, l4).is_some() {
            return None;
        }
        if !matches!(s.mode, ForwardMode::FullNat | ForwardMode::Masq)
            // SYNPROXY's (TCP) or one-packet scheduling's (UDP) bit.
            || s.flags.contains(Flags::SYNPROXY)
            || !cfg.nodest.forwards(snap, s.dest)
            || l4.ttl <= 1
            || l4.tl > *min_mtu as usize
            || client_addr::concerns(s.flags, s.state, out, l4.tcp_flags)
        {
            return None;
        }
        // The reverse path by the session's route back, then the route on:
        // both remembered in the session (a search fills it, as the full
        // step's would).
        let (back, way, to) = if out { (TO_SERVER, TO_CLIENT, s.cip) } else { (TO_CLIENT, TO_SERVER, s.rip) };
        if !route::rp_ok(cfg.routes.lookup_remembered(&mut s.route[back], l4.key.src), rx) {
            return None;
        }
        let (port, next_hop) = cfg.routes.lookup_remembered(&mut s.route[way], to)?;
        if tcp && !s.flags.contains(Flags::NO_OUT) && track_seq(s, dir, l4).is_err() {
            return None;
        }
        // Nothing declines from here on: the full step's moves.
        crate::modes::nat::rewrite_session(frame, l4.key.proto, l4.tl, s, out);
        let table = if out { dir } else { crate::modes::traits(s.mode).in_table };
        let (state, tcp) = ((&mut s.state, &mut s.flags), (tcp, l4.tcp_flags));
        let (_, new) =
            forwarded(counters, state, (s.dest, s.service), (dir, table), tcp, l4.tl as u64, false);
        sessions.touch(i, now, snap.timeouts.of_ms(new));
        Some((port, next_hop))
    }
}

/// Whether staged frame `frame` (record `p`) received on `rx` is to the
/// port's MAC and from a source that may send TCP/UDP: the checks of the
/// full step before the session's ([`Engine::process_parsed`], then
/// `ipv4_checked`'s source test). The steps that start at the session
/// take a frame only then; any other takes the full step, which answers
/// it (the ladder for another MAC, a counted drop for a bad source).
#[inline(always)]
fn sane_for_us(rx: &Iface, frame: &[u8], p: &Staged) -> bool {
    frame.get(..6) == Some(&rx.mac.0[..]) && !bad_source(p.l4.key.src)
}

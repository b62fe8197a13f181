//! SYNPROXY for IPv6 services ([`crate::synproxy`], issue 17): FULLNAT66,
//! NAT66 and NAT64 (an IPv4 real server behind the IPv6 VIP). The cookie,
//! the options it carries and the splice are the IPv4 code's, over IPv6's
//! addresses and MSS table ([`sp::V6`]); what differs is how the frames
//! the handshake needs are made.
//!
//! The IPv4 path rewrites the frame it received in place and has the
//! worker insert the options ([`Action::Grow`]). The IPv6 frames are
//! longer (a 40-byte header), and under NAT64 the real server's SYN-ACK is
//! IPv4 while the handshake ACK it becomes starts as the client's IPv6
//! segment. So here every frame SYNPROXY makes is written whole into
//! [`Built`], one fixed buffer per worker, and the worker puts it in place
//! of the frame received (never an allocation):
//!
//! - the client's SYN is answered with the cookie SYN-ACK
//!   ([`Action::Built6`], out toward the client);
//! - a valid cookie ACK creates the session (its flag set, its [`sp::Entry`]
//!   in the engine's IPv6 table by session index) and becomes the client's
//!   SYN with the options from the cookie, which the worker processes again
//!   ([`Action::Again`]): it finds the session and takes the session's path
//!   (FULLNAT66 or NAT66 rewrite, or NAT64's translation to IPv4);
//! - the real server's SYN-ACK (IPv6, or IPv4 for NAT64) becomes the
//!   client's handshake ACK, processed again the same way; the splice is
//!   set by then, so it goes out in the server's sequence space. Data the
//!   cookie ACK carried is held ([`sp::Hold`], shared with IPv4) and
//!   processed after it.
//!
//! After that, each segment of the session is spliced after its path
//! ([`Engine::forward6_synproxy`], which the lookups that find a session
//! call behind its [`Flags::SYNPROXY`] test, `Engine::forward6_found`:
//! other sessions pay that one test, and [`Engine::forward6`] itself is
//! unchanged).
//!
//! With a client-address option (TOA, `--proxy-protocol v1|v2`), as on
//! IPv4: the SYN rebuilt from the cookie takes the session's path like a
//! client's own SYN (TOA added, the MSS lowered by the option's or the
//! header's length), the handshake ACK carries TOA or the PROXY header,
//! and the held data follows it at the client's first sequence number
//! (the header again in front of it, as a retransmitted first segment).
//! The PROXY shift (client sequence numbers, server acknowledgements) and
//! the splice (client acknowledgements, server sequence numbers) touch
//! different fields and compose. The handshake ACK, processed again as
//! received on the client's side port, takes that port's MAC.
//!
//! An ICMPv6 error about a spliced reply goes to the real server quoting
//! the server's own sequence number ([`unsplice_quote`], from
//! [`super::icmp6`]), as IPv4's errors do.

use gw_proto::ForwardMode;

use super::conn::plain_syn;
use super::ipv6_fwd::L4Info6;
use super::{Action, Engine};
use crate::counters::{Drop, Event};
use crate::route::Iface;
use crate::session::Flags;
use crate::synproxy as sp;
use crate::tcp_state::{flags as tf, Dir, State};
use crate::wire::ethernet::HEADER_LEN as ETH;
use crate::wire::{checksum, icmpv6, ipv6, tcp};

/// Room for the longest frame SYNPROXY writes: Ethernet, IPv6, TCP with
/// 20 bytes of options (94 bytes).
const BUILT_MAX: usize = ETH + ipv6::HEADER_LEN + tcp::MIN_HEADER_LEN + 20;

/// The frame of the last [`Action::Built6`] or [`Action::Again`].
pub(crate) struct Built {
    buf: [u8; BUILT_MAX],
    len: usize,
}

impl Default for Built {
    fn default() -> Built {
        Built { buf: [0; BUILT_MAX], len: 0 }
    }
}

impl Built {
    /// The frame written last.
    pub(crate) fn frame(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Sets the destination MAC address of the frame written last.
    fn set_dst_mac(&mut self, mac: crate::wire::ethernet::MacAddr) {
        if self.len >= ETH {
            self.buf[..6].copy_from_slice(&mac.0);
        }
    }

    /// Writes `seg` with `opts` as an IPv6 frame with the Ethernet
    /// addresses of `rx_frame` (the worker sets them again on output).
    fn write(&mut self, rx_frame: &[u8], seg: &sp::Seg, opts: &[u8], hop_limit: u8) {
        self.buf[..12].copy_from_slice(&rx_frame[..12]);
        // BUILT_MAX holds the longest header and options `sp` writes.
        self.len = sp::write6(&mut self.buf, seg, opts, hop_limit).map_or(0, |l| ETH + l);
    }

    /// Writes `seg` with `opts` as a new IPv6 frame (hop limit 64)
    /// addressed to MAC `mac` (from it too), as a frame a port with that
    /// address receives: SYNPROXY's timer resend.
    pub(super) fn write_new(&mut self, mac: crate::wire::ethernet::MacAddr, seg: &sp::Seg, opts: &[u8]) {
        self.buf[..6].copy_from_slice(&mac.0);
        self.buf[6..12].copy_from_slice(&mac.0);
        self.len = sp::write6(&mut self.buf, seg, opts, 64).map_or(0, |l| ETH + l);
    }
}

impl Engine {
    /// A TCP packet without a session to an IPv6 SYNPROXY service: a plain
    /// SYN is answered with a cookie SYN-ACK (no state; its MSS leaves
    /// `room` for a PROXY header); an ACK with a
    /// valid cookie opens the connection; anything else is dropped.
    #[inline(never)]
    pub(super) fn synproxy_new6(
        &mut self,
        now: u64,
        rx: &Iface,
        frame: &mut [u8],
        p: &L4Info6,
        room: u16,
    ) -> Action {
        let secret = self.cfg.synproxy_secret;
        let seg = sp::read6(frame, p.l4, ETH + p.len);
        let f = p.tcp_flags;
        if plain_syn(f) {
            let mss = rx.mtu.saturating_sub(sp::V6.headers + room).max(sp::V6.default_mss);
            let mut o = [0; 20];
            let (sa, n) = sp::syn_ack(secret, now, &sp::V6, &seg, mss, &mut o);
            let Some((port, next_hop)) = self.cfg.routes.lookup6(seg.src) else {
                return Action::Drop(Drop::NoRoute);
            };
            self.sp_built.write(frame, &sa, &o[..n], 64);
            self.counters.event(Event::SynproxySynAcks, 1);
            return Action::Built6 { port, next_hop };
        }
        if f & (tf::SYN | tf::RST | tf::FIN) != 0 || f & tf::ACK == 0 {
            return Action::Drop(Drop::SynproxyBadCookie);
        }
        let Some((syn, e, opts, n)) = sp::syn_of_ack(secret, now, &sp::V6, &seg, 0) else {
            return Action::Drop(Drop::SynproxyBadCookie);
        };
        // Data on the cookie ACK: a copy waits for the server's SYN-ACK.
        let held = if seg.data > 0 { self.hold(rx.port, e.cookie_isn, &frame[..ETH + p.len]) } else { None };
        let q = L4Info6 {
            tcp_flags: tf::SYN,
            seq: syn.seq,
            seg_len: 1,
            len: ipv6::HEADER_LEN + tcp::MIN_HEADER_LEN + n,
            l4: ETH + ipv6::HEADER_LEN,
            ..*p
        };
        let i = match self.new_session6(now, &q) {
            Ok(i) => i,
            Err(d) => return self.unhold(held, Action::Drop(d)),
        };
        if !matches!(self.sessions6.get(i).mode, ForwardMode::FullNat | ForwardMode::Masq) {
            self.end6(i);
            return self.unhold(held, Action::Drop(Drop::SynproxyMode));
        }
        if let Some(k) = held {
            self.sp_hold.bind(k, Some(i | sp::V6_OWNER));
        }
        // Marked before the SYN goes through (it is processed again by the
        // worker): [`Engine::synproxy_step6`] lets it pass while the
        // session's state is still `None`.
        self.sessions6.get_mut(i).flags.insert(Flags::SYNPROXY);
        self.sp6.set(i, e);
        self.sp_built.write(frame, &syn, &opts[..n], p.hop_limit);
        self.counters.event(Event::SynproxyOpened, 1);
        Action::Again { port: rx.port, held: false }
    }

    /// A packet of IPv6 SYNPROXY session `i` before [`Engine::forward6`]'s
    /// common step: the server's SYN-ACK becomes the client's handshake
    /// ACK; before it, client segments wait (dropped, retransmitted) but
    /// the SYN rebuilt from the cookie, and a server's RST is put at the
    /// client's expected sequence number. `None`: forward as usual.
    #[cold]
    #[inline(never)]
    pub(super) fn synproxy_step6(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info6,
    ) -> Option<Action> {
        let mut e = self.sp6.get(i);
        let s = *self.sessions6.get(i);
        let out = dir == Dir::Output;
        let f = p.tcp_flags;
        // IPv6 from a FULLNAT66 or NAT66 server, IPv4 from a NAT64 one;
        // only its sequence numbers and options are read.
        let server_seg = |frame: &[u8]| match super::nat64::v4_of(s.rip) {
            Some(_) => sp::read(frame),
            None => sp::read6(frame, p.l4, ETH + p.len),
        };
        if out && f & (tf::SYN | tf::ACK) == tf::SYN | tf::ACK && f & tf::RST == 0 {
            let sa = server_seg(frame);
            if !sp::answers_syn(&e, &sa) {
                return Some(Action::Drop(Drop::SynproxyServerAck));
            }
            let Some((port, _)) = self.cfg.routes.lookup6(s.cip) else {
                return Some(Action::Drop(Drop::NoRoute));
            };
            let mut o = [0; 20];
            let (ack, n) = sp::ack_of_syn_ack(&mut e, &sa, (s.cip, s.cport), (s.vip, s.vport), &mut o);
            self.sp6.set(i, e);
            self.sp_built.write(frame, &ack, &o[..n], 64);
            // Processed again as received on the client's side, which is
            // not the server's port when they differ (NAT64, a two-port
            // FULLNAT66): that port's MAC, or it is `drop_not_our_mac`.
            if let Some(mac) = self.iface(port).map(|i| i.mac) {
                self.sp_built.set_dst_mac(mac);
            }
            // The data the cookie ACK carried follows the handshake ACK.
            let held = self.sp_hold.release(i | sp::V6_OWNER, e.cookie_isn);
            return Some(Action::Again { port, held });
        }
        if e.spliced {
            return None;
        }
        if !out && f & (tf::SYN | tf::ACK | tf::RST | tf::FIN) == tf::SYN && s.state == State::None {
            // The client's SYN rebuilt from its cookie ACK.
            return None;
        }
        if !out && sp::let_resent_syn_through(&mut e, f) {
            // That SYN sent again ([`Engine::resend_syn6`]).
            self.sp6.set(i, e);
            return None;
        }
        if out && f & tf::RST != 0 {
            if !sp::answers_syn(&e, &server_seg(frame)) {
                return Some(Action::Drop(Drop::SynproxyServerAck));
            }
            // The server refuses: reset the client where it expects it.
            tcp::Packet::new_unchecked(&mut frame[p.l4..]).rewrite_seq_number(e.cookie_isn.wrapping_add(1));
            self.sp_hold.forget(i | sp::V6_OWNER, e.cookie_isn);
            return None;
        }
        if !out {
            let seg = sp::read6(frame, p.l4, ETH + p.len);
            if sp::resend_due(&e, &seg, now) {
                return Some(self.resend_syn6(now, rx.port, i, frame, p, &seg));
            }
        }
        Some(Action::Drop(Drop::SynproxyPending))
    }

    /// The SYN of IPv6 SYNPROXY session `i` sent to the real server again
    /// ([`sp::resend_due`] held for client segment `seg`, the frame):
    /// rebuilt from the cookie as [`Engine::synproxy_new6`] builds the
    /// first, and processed again by the worker (the session's step lets
    /// it through once, [`sp::resent`]).
    #[cold]
    fn resend_syn6(
        &mut self,
        now: u64,
        port: u16,
        i: u32,
        frame: &[u8],
        p: &L4Info6,
        seg: &sp::Seg,
    ) -> Action {
        let secret = self.cfg.synproxy_secret;
        // The cookie is good for two minutes: a later segment only waits.
        let Some((syn, _, opts, n)) = sp::syn_of_ack(secret, now, &sp::V6, seg, 0) else {
            return Action::Drop(Drop::SynproxyPending);
        };
        self.sp6.set(i, sp::resent(&self.sp6.get(i), now));
        self.sp_built.write(frame, &syn, &opts[..n], p.hop_limit);
        self.counters.event(Event::SynproxySynResent, 1);
        Action::Again { port, held: false }
    }
}

impl Engine {
    /// [`Engine::forward6`] of a SYNPROXY session: its step
    /// ([`Engine::synproxy_step6`]), else the session's path, then, once
    /// the server's SYN-ACK set it, the splice of the segment it forwards
    /// (its TCP header still at `p.l4`: the rewrite moved no header, and a
    /// NAT64 frame is translated by the worker afterwards). The splice
    /// comes after the path's size checks, so that a Packet Too Big or
    /// "fragmentation needed" back to the sender quotes the sender's own
    /// numbers, and touches only TCP fields, whose checksum update does
    /// not depend on the addresses the rewrite changed.
    #[cold]
    #[inline(never)]
    pub(super) fn forward6_synproxy(
        &mut self,
        now: u64,
        rx: &Iface,
        i: u32,
        dir: Dir,
        frame: &mut [u8],
        p: &L4Info6,
    ) -> Action {
        if let Some(a) = self.synproxy_step6(now, rx, i, dir, frame, p) {
            return a;
        }
        let act = self.forward6(now, rx, i, dir, frame, p);
        let e = self.sp6.get(i);
        // With TOA or a PROXY header the worker then inserts (Grow6,
        // Nat64Grow), which recomputes the TCP checksum over the spliced
        // header; the PROXY shift moved the client's sequence number or the
        // server's acknowledgement, the splice moves the other two.
        let sent = matches!(
            act,
            Action::Forward6 { .. }
                | Action::Nat64To4 { .. }
                | Action::Nat64To6 { .. }
                | Action::Grow6 { .. }
                | Action::Nat64Grow { .. }
        );
        if e.spliced && sent {
            sp::splice_tcp(&e, dir == Dir::Output, &mut frame[p.l4..ETH + p.len]);
        }
        let syn = p.tcp_flags & (tf::SYN | tf::ACK | tf::RST | tf::FIN) == tf::SYN;
        if !e.spliced && sent && dir == Dir::Input && syn {
            // The SYN went toward the server (the first, or again): the
            // session waits for its resend timer, not SYN_SENT's timeout.
            self.sessions6.touch(i, now, sp::resend_timer(e.resends));
        }
        act
    }
}

/// The TCP sequence number quoted by ICMPv6 error `icmp` (the message,
/// about a reply of IPv6 SYNPROXY session `i` as it left toward the
/// client) put back in the real server's space, once spliced, the
/// error's checksum updated (NAT64's translation verifies it). The quote's
/// own TCP checksum is left as it is, as IPv4's (the quote is usually cut
/// short).
#[cold]
#[inline(never)]
pub(super) fn unsplice_quote(sp6: &sp::Table, i: u32, icmp: &mut [u8]) {
    let e = sp6.get(i);
    let mut p = icmpv6::Packet::new_unchecked(&mut *icmp);
    let Some((_, t)) = p.quoted() else { return };
    let at = t.offset + 4;
    let Some(b) = p.data_mut().get_mut(at..at + 4).filter(|_| e.spliced) else { return };
    let seq = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let new = seq.wrapping_add(e.off);
    b.copy_from_slice(&new.to_be_bytes());
    let c = checksum::update32(p.checksum(), seq, new);
    p.set_checksum(c);
}

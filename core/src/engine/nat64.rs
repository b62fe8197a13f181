//! NAT64 sessions (issue 17): an IPv6 client, an IPv6 VIP, IPv4 FULLNAT
//! real servers and IPv4 local addresses (DPVS's form), translated with
//! [`crate::nat64`] (RFC 7915).
//!
//! The session lives in the IPv6 table ([`SessionTable6`]) like a
//! FULLNAT66 one, with its IPv4 real server and local address stored as
//! IPv4-mapped addresses (`::ffff:a.b.c.d`, never a real server's IPv6
//! address: the control model takes IPv4 servers as IPv4). Its reply key
//! (RIP:rport -> LIP:lport, mapped) is in the IPv6 table's reply index and
//! is looked up from the IPv4 path only after the IPv4 reply index missed,
//! for a packet to a local address: IPv4 sessions' lookups do not change.
//!
//! - Setup ([`alloc_lport`]): as FULLNAT's, an IPv4 local address of the
//!   service (`Service.laddrs`) and a port of this worker's share, free
//!   toward that real server in both tables.
//! - Client -> server ([`xmit`], `Dir::Input`): the hop limit decremented,
//!   the route to the IPv4 server, then [`Action::Nat64To4`]: the worker
//!   translates the frame ([`crate::nat64::frame_to_ipv4`], source LIP:lport,
//!   its IPv4 identification counter) and sends it as IPv4.
//! - Server -> client (`Dir::Output`, [`Engine::nat64_reply`]): the TTL
//!   decremented (the byte only: the translation writes a new header, so
//!   the IPv4 header checksum is not updated), the route to the client,
//!   then [`Action::Nat64To6`]: source VIP:vport, destination
//!   client:cport.
//! - ICMP errors from the IPv4 side about a session's packet
//!   ([`Engine::nat64_icmp`], from `engine/icmp.rs`'s miss branch): to the
//!   client as ICMPv6 from the VIP quoting its own packet; a router's
//!   "fragmentation needed" becomes Packet Too Big (MTU + 20, at least
//!   1280), so path MTU discovery works through a smaller IPv4 link.
//! - ICMPv6 errors from the IPv6 side about a session's reply (a router's
//!   Packet Too Big): to the IPv4 server as ICMP about its own packet
//!   ([`super::icmp6`]).
//! - Size ([`xmit`]): a packet whose translation exceeds the output port's
//!   MTU is answered back to its sender: IPv6 with Packet Too Big (the
//!   IPv4 MTU plus 20), IPv4 with DF with "fragmentation needed" (the IPv6
//!   MTU less 20);
//!   without DF (an IPv6 fragment header would be needed) or at 1280 bytes
//!   of IPv6 or less it is dropped (`drop_nat64_too_big`). Fragments are not
//!   built yet.
//! - What the translation refuses is counted by the worker
//!   (`drop_nat64_untranslatable`, `drop_no_headroom`).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ipv4::L4Info;
use super::ipv4::TO_SERVER;
use super::ipv6_fwd::{port_offset6, session_route6, L4Info6};
use super::{Action, Engine, SvcState};
use crate::counters::{Drop, Event, WorkerCounters};
use crate::modes::tun::frag_needed_in_place;
use crate::nat64::{Ends, To4, To6};
use crate::route::Iface;
use crate::service::{Service, Snapshot};
use crate::session::ipv6::{FlowKey6, Session6, SessionTable6};
use crate::session::SessionTable;
use crate::tcp_state::Dir;
use crate::wire::ethernet;
use crate::wire::ipv4;
use crate::wire::ipv6;
use crate::wire::FlowKey;

/// The IPv4-mapped prefix `::ffff:0:0/96` (RFC 4291 §2.5.5.2).
const MAPPED: u128 = 0xffff << 32;
/// Tries per local address before moving to the next one (as FULLNAT).
const LPORT_TRIES: usize = 64;

/// `a` as an IPv4-mapped address.
#[inline]
pub(crate) fn mapped(a: u32) -> u128 {
    MAPPED | u128::from(a)
}

/// The IPv4 address a mapped address holds; `None` for any other address
/// (a session whose real server is not mapped is not NAT64).
#[inline]
pub(crate) fn v4_of(a: u128) -> Option<u32> {
    (a >> 32 == 0xffff).then_some(a as u32)
}

/// The translation the worker carries out for the last
/// [`Action::Nat64To4`] or [`Action::Nat64To6`].
#[derive(Clone, Copy, Debug)]
pub enum Pending {
    /// IPv6 -> IPv4 (the worker fills `ident`).
    To4(To4),
    /// IPv4 -> IPv6.
    To6(To6),
}

/// The NAT64 sessions an IPv4 FULLNAT bind must not collide with. An IPv4
/// local address that an IPv6 service uses too ([`Snapshot::nat64_laddr`])
/// can have ports held by NAT64 sessions, which live in the IPv6 table: the
/// IPv4 table's reply counts and index do not see them, so without this an
/// IPv4 connection could take a NAT64 one's LIP:lport toward the same real
/// server, and the server's replies would reach one client for both.
/// NAT64's own bind ([`alloc_lport`]) checks both tables the same way.
#[derive(Clone, Copy)]
pub(crate) struct Held6<'a> {
    snap: &'a Snapshot,
    sessions6: &'a SessionTable6,
}

impl<'a> Held6<'a> {
    /// `None` (nothing to check) while the IPv6 table is empty.
    #[inline]
    pub(crate) fn of(snap: &'a Snapshot, sessions6: &'a SessionTable6) -> Option<Held6<'a>> {
        (!sessions6.is_empty()).then_some(Held6 { snap, sessions6 })
    }

    /// Whether a NAT64 session may hold the reply key (`proto`, `rs`,
    /// `lip`:`lport`): its reply bucket's signatures, as NAT64's bind
    /// reads them (a matching one counts as held).
    #[inline]
    pub(crate) fn holds(self, proto: ipv4::Protocol, rs: (u32, u16), lip: u32, lport: u16) -> bool {
        self.snap.nat64_laddr(lip) && reply6_may_be_live(self.sessions6, proto, rs, (lip, lport))
    }
}

/// Whether a NAT64 session may hold the reply key from IPv4 real server
/// `rs` to IPv4 local address:port `local`, by the IPv6 table's reply
/// bucket (its signatures: a matching one counts as held, no session is
/// read).
#[inline]
fn reply6_may_be_live(
    sessions6: &SessionTable6,
    proto: ipv4::Protocol,
    rs: (u32, u16),
    local: (u32, u16),
) -> bool {
    let key6 = FlowKey6 { proto, src: mapped(rs.0), sport: rs.1, dst: mapped(local.0), dport: local.1 };
    sessions6.out_hash_may_be_live(sessions6.hash(&key6))
}

/// Picks LIP:lport (IPv4) for a new NAT64 session of `flow` toward `rs`
/// (IPv4 server, port), as FULLNAT does: the service's IPv4 local
/// addresses in turn from the one a keyed hash of the flow names, on each the ports of this worker's share from a
/// keyed hash of the flow (RFC 6056 §3.3.3), skipping a port whose reply
/// key is live in either table. Returns the mapped local address.
pub(super) fn alloc_lport(
    (sessions, sessions6): (&SessionTable, &SessionTable6),
    part: Option<super::conn::Partition>,
    svc: &Service,
    st: &mut SvcState,
    flow: &FlowKey6,
    rs: (u32, u16),
) -> Result<(u128, u16), Drop> {
    let n = svc.laddrs.len();
    if n == 0 {
        return Err(Drop::NoLaddr);
    }
    let Some(part) = part else { return Err(Drop::LaddrExhausted) };
    let tries = (part.span() as usize).min(LPORT_TRIES);
    let h = sessions6.hash(flow);
    let k0 = super::conn::laddr_index(h, n);
    for k in 0..n {
        let lip = svc.laddrs[(k0 + k) % n];
        let offset = part.offset_of(port_offset6(h, (mapped(rs.0), rs.1), mapped(lip)));
        for _ in 0..tries {
            let lport = part.port(offset, u32::from(st.lport_next));
            st.lport_next = st.lport_next.wrapping_add(1);
            let key4 = FlowKey { proto: flow.proto, src: rs.0, sport: rs.1, dst: lip, dport: lport };
            // Free in both tables, by the IPv4 reply-port count (no
            // bucket read when 0) and the reply buckets' signatures (no
            // session read: a matching one counts as taken).
            let free4 = sessions.reply_port_unused(lip, lport)
                || !sessions.out_hash_may_be_live(sessions.hash(&key4));
            if free4 && !reply6_may_be_live(sessions6, flow.proto, rs, (lip, lport)) {
                return Ok((mapped(lip), lport));
            }
        }
    }
    Err(Drop::LaddrExhausted)
}

/// The last step of a NAT64 session's packet (the common step of
/// `forward6` is done): the hop limit or TTL, the size check against
/// the output port's MTU (among `ifaces`, looked up only above `min_mtu`,
/// the smallest), and the translation the worker is to carry out.
/// `(port, next_hop)`: the route found. A packet too big for that port once
/// translated is answered back out `rx` ([`super::icmp6`]): an IPv6 one
/// with Packet Too Big (the IPv4 MTU + 20, at least 1280), an IPv4 one with
/// DF set with "fragmentation needed" (the IPv6 MTU - 20); an IPv4 one
/// without DF is dropped (`drop_nat64_too_big`). A datagram reassembled
/// here (`whole`) is not checked: the worker sends it as fragments (RFC
/// 7915 translates fragments with DF clear).
// Inlined into its one caller, `forward6`: ten arguments passed cost
// more than the step.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn xmit(
    pending: &mut Pending,
    whole: bool,
    counters: &WorkerCounters,
    rx: &Iface,
    s: &Session6,
    dir: Dir,
    (ifaces, min_mtu): (&[Iface], u16),
    (port, next_hop): (u16, u128),
    frame: &mut [u8],
    p: &L4Info6,
) -> Action {
    // Whether `len` bytes exceed the output port's MTU, which is looked up
    // only above the smallest port MTU (as IPv4's DF check); a port not
    // configured has none.
    let too_big = |len: usize| {
        len > usize::from(min_mtu)
            && len > ifaces.iter().find(|i| i.port == port).map_or(0, |i| usize::from(i.mtu))
    };
    let mtu = || ifaces.iter().find(|i| i.port == port).map_or(0, |i| usize::from(i.mtu));
    let l3 = &mut frame[ethernet::HEADER_LEN..];
    if dir == Dir::Output {
        // IPv4 from the server: 20 bytes more as IPv6.
        const GROWS: usize = ipv6::HEADER_LEN - ipv4::MIN_HEADER_LEN;
        if !whole && too_big(p.len + GROWS) {
            let mtu = mtu();
            let df = ipv4::Packet::new_unchecked(&*l3).dont_frag();
            let mtu4 = (mtu - GROWS.min(mtu)) as u16;
            return match df.then(|| frag_needed_in_place(frame, p.len, rx.mac, rx.addr, mtu4)).flatten() {
                Some(len) => {
                    counters.event(Event::IcmpFragNeededSent, 1);
                    Action::Reply { port: rx.port, len }
                }
                None => Action::Drop(Drop::Nat64TooBig),
            };
        }
        // The TTL byte only: the translation writes a new header (no
        // IPv4 header checksum to keep), or the packet is dropped.
        let mut ip = ipv4::Packet::new_unchecked(l3);
        let ttl = ip.ttl();
        ip.set_ttl(ttl.saturating_sub(1));
        let v6 = |a: u128| Ipv6Addr::from(a);
        *pending = Pending::To6(To6 {
            ends: Ends { src: v6(s.vip), sport: s.vport, dst: v6(s.cip), dport: s.cport },
            inner: None,
            mtu: u16::MAX,
            l4_change: Some(s.nat64_change(true)),
        });
        return Action::Nat64To6 { port, next_hop };
    }
    // IPv6 from the client: its extension headers go, and 20 bytes.
    let v4_len = p.len - (p.l4 - ethernet::HEADER_LEN) + ipv4::MIN_HEADER_LEN;
    if !whole && too_big(v4_len) {
        let mtu = mtu();
        if p.len <= usize::from(ipv6::MIN_MTU) {
            // Packet Too Big cannot go lower: an IPv4 link under 1260.
            return Action::Drop(Drop::Nat64TooBig);
        }
        let mtu6 = (mtu + ipv6::HEADER_LEN - ipv4::MIN_HEADER_LEN).min(usize::from(u16::MAX)) as u16;
        return super::icmp6::too_big(counters, rx, frame, p.len, mtu6);
    }
    let mut ip = ipv6::Packet::new_unchecked(l3);
    let h = ip.hop_limit();
    ip.set_hop_limit(h - 1);
    let v4 = |a: u128| Ipv4Addr::from(a as u32);
    *pending = Pending::To4(To4 {
        ends: Ends { src: v4(s.lip), sport: s.lport, dst: v4(s.rip), dport: s.rport },
        inner: None,
        ident: 0,
        mtu: u16::MAX,
        l4_change: Some(s.nat64_change(false)),
    });
    Action::Nat64To4 { port, next_hop: next_hop as u32 }
}

impl Pending {
    /// Before any NAT64 action.
    pub const NONE: Pending = Pending::To4(To4 {
        ends: Ends { src: Ipv4Addr::UNSPECIFIED, sport: 0, dst: Ipv4Addr::UNSPECIFIED, dport: 0 },
        inner: None,
        ident: 0,
        mtu: 0,
        l4_change: None,
    });
}

impl Engine {
    /// An IPv4 packet to a local address that no IPv4 session knows: the
    /// reply of a NAT64 session, if the IPv6 table has one for it. With
    /// `rpf`, its reverse path is checked by the route the session
    /// remembers toward its IPv4 real server (the packet's source), as
    /// IPv4's established path does, rather than by the route search; a
    /// packet without a session is left to the caller's search. Out of
    /// line, with the session step ([`Engine::forward6_found`]) inline:
    /// IPv4's path does not carry it.
    #[inline(never)]
    pub(super) fn nat64_reply(
        &mut self,
        now: u64,
        rx: &Iface,
        frame: &mut [u8],
        p: &L4Info,
        rpf: bool,
    ) -> Option<Action> {
        if self.sessions6.is_empty() {
            return None;
        }
        let k = p.key;
        let ihl = ipv4::Packet::new_unchecked(&frame[ethernet::HEADER_LEN..]).header_len();
        // The packet as the IPv6 path sees it, its key the reply key's
        // IPv4-mapped form; looked up in place (no copy of the key).
        let p6 = L4Info6 {
            key: FlowKey6 {
                proto: k.proto,
                src: mapped(k.src),
                sport: k.sport,
                dst: mapped(k.dst),
                dport: k.dport,
            },
            tcp_flags: p.tcp_flags,
            seq: p.seq,
            seg_len: p.seg_len,
            ack: p.ack,
            hop_limit: p.ttl,
            len: p.tl,
            l4: ethernet::HEADER_LEN + ihl,
        };
        let i = self.sessions6.lookup_out(&p6.key)?;
        if rpf {
            let routes = &self.cfg.routes;
            let back = session_route6(routes, &mut self.sessions6, i, TO_SERVER, p6.key.src, Some(k.src));
            if !crate::route::rp_ok(back, rx) {
                return Some(Action::Drop(Drop::ReversePath));
            }
        }
        Some(self.forward6_found(now, rx, i, Dir::Output, frame, &p6))
    }

    /// An ICMP error to a local address that no IPv4 session knows, whose
    /// quote is `back` reversed: if it is about a NAT64 session's packet
    /// to its real server (a router's "fragmentation needed" in
    /// particular), it goes to the client as ICMPv6 from the VIP, quoting
    /// the client's own packet ([`crate::nat64::to_ipv6`]: Packet Too Big
    /// with the MTU + 20, never below 1280, at most the client side's MTU).
    pub(super) fn nat64_icmp(&mut self, frame: &mut [u8], back: &FlowKey) -> Action {
        let k = back;
        let key = FlowKey6 {
            proto: k.proto,
            src: mapped(k.src),
            sport: k.sport,
            dst: mapped(k.dst),
            dport: k.dport,
        };
        let Some(i) = self.sessions6.lookup_out(&key) else {
            return Action::Drop(Drop::IcmpUnknownFlow);
        };
        let s = *self.sessions6.get(i);
        if !self.cfg.nodest.forwards(&self.snap, s.dest) {
            return Action::Drop(Drop::DestUnavailable);
        }
        let ip = ipv4::Packet::new_unchecked(&frame[ethernet::HEADER_LEN..]);
        if ip.ttl() <= 1 {
            return Action::Drop(Drop::TtlExceeded);
        }
        let hl = ip.header_len();
        if k.proto == ipv4::Protocol::Tcp {
            // A PROXY session's quoted sequence number, back in the
            // client's space (after the ICMP header, the quote's IPv4
            // header, 4 bytes into TCP).
            let icmp = &mut frame[ethernet::HEADER_LEN + hl..];
            if let Some(at) = icmp.get(8).map(|v| 8 + usize::from(v & 0xf) * 4 + 4) {
                crate::client_addr::unmap_quoted(&self.ca, self.ca.slot6(i), s.flags, icmp, at);
            }
        }
        let mut ip = ipv4::Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..]);
        let Some((port, next_hop)) = self.cfg.routes.lookup6(s.cip) else {
            return Action::Drop(Drop::NoRoute);
        };
        ip.decrement_ttl();
        let (vip, cip) = (Ipv6Addr::from(s.vip), Ipv6Addr::from(s.cip));
        self.nat64 = Pending::To6(To6 {
            ends: Ends { src: vip, sport: 0, dst: cip, dport: 0 },
            inner: Some(Ends { src: cip, sport: s.cport, dst: vip, dport: s.vport }),
            mtu: self.iface(port).map_or(ipv6::MIN_MTU, |i| i.mtu),
            l4_change: None,
        });
        self.counters.event(crate::counters::Event::IcmpErrorsTranslated, 1);
        let bytes = u64::from(ip.total_len());
        super::conn::count_traffic(&self.counters, (s.dest, s.service), Dir::Output, bytes);
        Action::Nat64To6 { port, next_hop }
    }

    /// What the last [`Action::Nat64To4`] or [`Action::Nat64To6`] asks
    /// the worker to translate.
    pub fn pending_nat64(&self) -> &Pending {
        &self.nat64
    }

    /// [`Engine::pending_nat64`] for the worker to complete (the IPv4
    /// identification of [`Pending::To4`]) before it translates.
    pub fn pending_nat64_mut(&mut self) -> &mut Pending {
        &mut self.nat64
    }
}

#[cfg(test)]
mod tests;

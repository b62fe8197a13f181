//! The per-worker IPv6 session table (issue 17; docs/architecture.md,
//! "IPv6").
//!
//! An IPv4 session stays one 64-byte line in [`super::SessionTable`]; an
//! IPv6 one has four 128-bit addresses and would not fit, so IPv6 sessions
//! live in a second instance of the same generic table ([`Table`], one
//! copy of the slab, indexes, free list and timer wheel code), which only
//! IPv6 packets touch. What is IPv6's own is the entry ([`Entry`] for
//! [`Session6`]):
//!
//! - [`Session6`] is two cache lines (128 bytes, checked at compile time):
//!   the addresses in the first line with the ports and the protocol, the
//!   state, links and deadline in the second.
//! - The key, [`FlowKey6`], whose two addresses are folded into the
//!   table's seeded hash; both directions are indexed by the same
//!   bucketised cuckoo hash as the IPv4 table ([`super::index::Index`]).
//! - No reply-port counts (the IPv4 table's [`super::ReplyPorts`]): an
//!   IPv6 bind looks its candidate reply keys up.
//!
//! The same 64 ms timer wheel, bounded [`Table::expire`], TCP state
//! machine, flags and counters slots (a session's state does not depend on
//! its family). All memory is allocated in [`Table::new`]; nothing on the
//! packet path allocates.
//!
//! A persistence template ([`Flags::TEMPLATE`]) keeps, as in the IPv4 table,
//! its timeout in the unused local address and its count of controlled
//! connections in the unused local port, behind [`Session6::timeout_ms`] and
//! [`Session6::n_control`].

use std::net::{Ipv4Addr, Ipv6Addr};

use gw_proto::ForwardMode;

use super::{fold_mul, Entry, Flags, Links, Table, NIL, TICK_SHIFT};
use crate::nat64::Ends;
use crate::tcp_state::State;
use crate::wire::checksum::Delta;
use crate::wire::ipv4::Protocol;

/// The 5-tuple of an IPv6 packet, addresses host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey6 {
    pub proto: Protocol,
    pub src: u128,
    pub sport: u16,
    pub dst: u128,
    pub dport: u16,
}

/// One IPv6 connection through the gateway, or a persistence template.
///
/// `cip:cport -> vip:vport` is the client side; `rip:rport -> lip:lport` is
/// the key of the real server's replies (FULLNAT66: `lip` is the IPv6 local
/// address; NAT66: the client address).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Session6 {
    pub cip: u128,
    pub vip: u128,
    pub rip: u128,
    /// Local address (connections); the persistence timeout (templates).
    pub lip: u128,
    pub cport: u16,
    pub vport: u16,
    pub rport: u16,
    /// Local port (connections); the controlled-connection count (templates).
    pub lport: u16,
    /// IP protocol number; 0 marks a free slot.
    pub proto: u8,
    pub state: State,
    pub mode: ForwardMode,
    pub flags: Flags,
    /// Service slot.
    pub service: u16,
    /// Real-server slot.
    pub dest: u16,
    /// TCP sequence marks per direction ([`crate::tcp_seq`]).
    pub seq_mark: [u16; 2],
    /// Deadline and intrusive links, owned by the table ([`Table`]).
    links: Links,
    /// The persistence template that controls this connection, or [`NIL`].
    pub control: u32,
    /// The route toward the real server (`[0]`) and toward the client
    /// (`[1]`), once the first packet that way found it, as
    /// [`super::Session::route`]: the IPv6 table's numbers
    /// ([`crate::route::Routes::lookup6_numbered`]), but toward a NAT64
    /// session's IPv4 real server (`rip` IPv4-mapped) the IPv4 table's
    /// ([`crate::route::Routes::lookup_numbered`]). `None` until then.
    /// The four bytes come from the second line's tail, which the fields
    /// above leave free (104 bytes of 128).
    pub route: [Option<crate::route::RouteNo>; 2],
    /// A NAT64 session's TCP/UDP checksum change from a client packet to
    /// its IPv4 translation ([`crate::nat64::l4_change`]: the pseudo
    /// header's addresses and the ports), computed once here instead of
    /// per packet; its complement is the reply's. 0 for a session of
    /// another kind. Two bytes of the second line's free tail (108 of 128
    /// before it).
    nat64_change: u16,
    /// A FULLNAT66 or NAT66 session's TCP/UDP checksum change from a client
    /// packet to its rewrite (`cip:cport -> vip:vport` becoming `lip:lport
    /// -> rip:rport`: the pseudo header's addresses and the ports),
    /// computed once here instead of per packet, as IPv4's
    /// [`super::Session::rewrite_change`]; its complement is the reply's.
    /// Meaningless for the other kinds, which do not read it. Two more bytes
    /// of the second line's free tail (110 of 128 before it).
    rewrite_change: u16,
}

const _: () = assert!(std::mem::size_of::<Session6>() == 128 && std::mem::align_of::<Session6>() == 64);

impl Session6 {
    /// A new session; links are set by [`Table::insert`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        proto: Protocol,
        client: (u128, u16),
        vip: (u128, u16),
        rs: (u128, u16),
        local: (u128, u16),
        state: State,
        mode: ForwardMode,
        service: u32,
        dest: u32,
    ) -> Session6 {
        debug_assert!(service <= u16::MAX as u32 && dest <= u16::MAX as u32, "slots are 16-bit");
        Session6 {
            cip: client.0,
            cport: client.1,
            vip: vip.0,
            vport: vip.1,
            rip: rs.0,
            rport: rs.1,
            lip: local.0,
            lport: local.1,
            proto: u8::from(proto),
            state,
            mode,
            flags: Flags::NONE,
            service: service as u16,
            dest: dest as u16,
            seq_mark: [0; 2],
            links: Links::NONE,
            control: NIL,
            route: [None; 2],
            nat64_change: Session6::nat64_change_of(client, vip, rs, local),
            rewrite_change: Session6::rewrite_change_of(client, vip, rs, local),
        }
    }

    /// [`Session6::rewrite_change`] of a session: a client packet
    /// `client -> vip` becomes `local -> rs`, IPv6 both.
    fn rewrite_change_of(client: (u128, u16), vip: (u128, u16), rs: (u128, u16), local: (u128, u16)) -> u16 {
        let addr = |from: u128, to: u128| Delta::addr6(Ipv6Addr::from(from), Ipv6Addr::from(to));
        let ports = |src: u16, dst: u16| u32::from(src) << 16 | u32::from(dst);
        let d = addr(client.0, local.0) + addr(vip.0, rs.0);
        (d + Delta::word32(ports(client.1, vip.1), ports(local.1, rs.1))).folded()
    }

    /// The TCP/UDP checksum change of a FULLNAT66 or NAT66 session's
    /// rewrite: for a client packet (`out` false: `cip:cport -> vip:vport`
    /// becomes `lip:lport -> rip:rport`) or a reply (`out`: `rip:rport ->
    /// lip:lport` becomes `vip:vport -> cip:cport`), the client side's
    /// change undone. Exact only for a packet whose addresses and ports are
    /// that side's key, as a packet the session was found by has.
    #[inline(always)]
    pub fn rewrite_change(&self, out: bool) -> Delta {
        Delta::from_folded(if out { !self.rewrite_change } else { self.rewrite_change })
    }

    /// [`Session6::nat64_change`] of a session: a client packet
    /// `client -> vip` becomes `local -> rs` as IPv4, when both `rs` and
    /// `local` are IPv4-mapped (NAT64); else 0.
    fn nat64_change_of(client: (u128, u16), vip: (u128, u16), rs: (u128, u16), local: (u128, u16)) -> u16 {
        let v4 = |a: u128| (a >> 32 == 0xffff).then_some(Ipv4Addr::from(a as u32));
        let (Some(rip), Some(lip)) = (v4(rs.0), v4(local.0)) else { return 0 };
        let from =
            Ends { src: Ipv6Addr::from(client.0), sport: client.1, dst: Ipv6Addr::from(vip.0), dport: vip.1 };
        crate::nat64::l4_change(from, Ends { src: lip, sport: local.1, dst: rip, dport: rs.1 })
    }

    /// The TCP/UDP checksum change of a NAT64 session's translation
    /// ([`crate::nat64::To4::l4_change`], [`crate::nat64::To6::l4_change`]):
    /// for a client packet (`out` false) or a reply (`out`), the client
    /// side's change undone. Exact only for a packet whose addresses and
    /// ports are that side's key, as a packet the session was found by has.
    #[inline(always)]
    pub fn nat64_change(&self, out: bool) -> u16 {
        if out {
            !self.nat64_change
        } else {
            self.nat64_change
        }
    }
    #[inline]
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.proto)
    }
    /// Key of the client's packets.
    #[inline]
    pub fn in_key(&self) -> FlowKey6 {
        FlowKey6 {
            proto: self.protocol(),
            src: self.cip,
            sport: self.cport,
            dst: self.vip,
            dport: self.vport,
        }
    }
    /// Key of the real server's replies.
    #[inline]
    pub fn out_key(&self) -> FlowKey6 {
        FlowKey6 {
            proto: self.protocol(),
            src: self.rip,
            sport: self.rport,
            dst: self.lip,
            dport: self.lport,
        }
    }
    #[inline]
    fn is_in(&self, k: &FlowKey6, proto: u8) -> bool {
        (self.proto, self.cport, self.vport, self.cip, self.vip) == (proto, k.sport, k.dport, k.src, k.dst)
    }
    #[inline]
    fn is_out(&self, k: &FlowKey6, proto: u8) -> bool {
        (self.proto, self.rport, self.lport, self.rip, self.lip) == (proto, k.sport, k.dport, k.src, k.dst)
    }
    #[inline]
    pub fn state(&self) -> State {
        self.state
    }
    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags.contains(Flags::TEMPLATE)
    }
    /// Milliseconds until expiry at `now_ms` (0 if due).
    pub fn expires_in_ms(&self, now_ms: u64) -> u64 {
        ((self.links.expires as u64) << TICK_SHIFT).saturating_sub(now_ms)
    }
    /// A template's count of live connections it controls (in `lport`).
    #[inline]
    pub fn n_control(&self) -> u16 {
        debug_assert!(self.is_template());
        self.lport
    }
    #[inline]
    pub fn set_n_control(&mut self, n: u16) {
        debug_assert!(self.is_template());
        self.lport = n;
    }
    /// A template's persistence timeout in milliseconds (in `lip`).
    #[inline]
    pub fn timeout_ms(&self) -> u32 {
        debug_assert!(self.is_template());
        self.lip as u32
    }
    #[inline]
    pub fn set_timeout_ms(&mut self, ms: u32) {
        debug_assert!(self.is_template());
        self.lip = u128::from(ms);
    }
}

/// A real server's address in an IPv6 session: its own, or IPv4-mapped
/// (`::ffff:a.b.c.d`) for an IPv4 one (NAT64).
pub(crate) fn rip6(dest: &crate::service::Dest) -> u128 {
    match dest.addr {
        std::net::IpAddr::V6(a) => u128::from(a),
        std::net::IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
    }
}

impl crate::persist::Template for Session6 {
    fn n_control(&self) -> u16 {
        Session6::n_control(self)
    }
    fn set_n_control(&mut self, n: u16) {
        Session6::set_n_control(self, n)
    }
    fn timeout_ms(&self) -> u32 {
        Session6::timeout_ms(self)
    }
    fn set_timeout_ms(&mut self, ms: u32) {
        Session6::set_timeout_ms(self, ms)
    }
    fn extend_deadline(&mut self, tick: u32) {
        // The wheel catches up lazily: a later deadline needs no relink.
        self.links.expires = self.links.expires.max(tick);
    }
    fn dest(&self) -> u16 {
        self.dest
    }
}

/// IPv6 sessions of one worker: the generic [`Table`] (the IPv4 table's
/// code) of 128-byte [`Session6`]s.
pub type SessionTable6 = Table<Session6>;

/// 128 bits folded to 64 (the hash mixes them further).
#[inline(always)]
fn fold64(a: u128) -> u64 {
    (a as u64) ^ ((a >> 64) as u64).rotate_left(23)
}

impl Entry for Session6 {
    type Key = FlowKey6;
    type Aux = ();
    #[inline(always)]
    fn vacant() -> Session6 {
        Session6::new(
            Protocol::from(0),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            State::None,
            ForwardMode::FullNat,
            0,
            0,
        )
    }
    fn seed(seed: u64) -> (u64, u64) {
        (seed | 1, seed.rotate_left(29) ^ 0x6a09_e667_f3bc_c909)
    }
    #[inline(always)]
    fn hash(seed: (u64, u64), k: &FlowKey6) -> u64 {
        let a = fold_mul(fold64(k.src) ^ seed.0, fold64(k.dst) ^ 0x9e37_79b9_7f4a_7c15);
        let b = ((k.sport as u64) << 32 | (k.dport as u64) << 16 | u8::from(k.proto) as u64) ^ seed.1;
        fold_mul(fold_mul(a, b), 0x9e37_79b9_7f4a_7c15)
    }
    #[inline(always)]
    fn in_key(&self) -> FlowKey6 {
        Session6::in_key(self)
    }
    #[inline(always)]
    fn out_key(&self) -> FlowKey6 {
        Session6::out_key(self)
    }
    #[inline(always)]
    fn key_proto(k: &FlowKey6) -> u8 {
        u8::from(k.proto)
    }
    #[inline(always)]
    fn is_in(&self, k: &FlowKey6, proto: u8) -> bool {
        Session6::is_in(self, k, proto)
    }
    #[inline(always)]
    fn is_out(&self, k: &FlowKey6, proto: u8) -> bool {
        Session6::is_out(self, k, proto)
    }
    #[inline(always)]
    fn links(&self) -> &Links {
        &self.links
    }
    #[inline(always)]
    fn links_mut(&mut self) -> &mut Links {
        &mut self.links
    }
    #[inline(always)]
    fn proto(&self) -> u8 {
        self.proto
    }
    #[inline(always)]
    fn set_free(&mut self) {
        self.proto = 0;
    }
    #[inline(always)]
    fn flags(&self) -> Flags {
        self.flags
    }
    #[inline(always)]
    fn control(&self) -> u32 {
        self.control
    }
    #[inline(always)]
    fn set_control(&mut self, t: u32) {
        self.control = t;
    }
    fn new_aux(_: usize) {}
    fn aux_bytes(_: usize) -> usize {
        0
    }
    #[inline(always)]
    fn reply_key_added(_: &mut (), _: &Session6) {}
    #[inline(always)]
    fn reply_key_removed(_: &mut (), _: &Session6) {}
}

#[cfg(test)]
mod tests;

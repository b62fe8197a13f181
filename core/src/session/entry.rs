//! One session: a connection through the gateway or a persistence
//! template, and its flag bits.
//!
//! Invariants: a session is exactly one 64-byte cache line (checked at
//! compile time); `state`, `mode` and `flags` are one byte each and typed;
//! the links and the deadline ([`Links`]) belong to the table ([`super::Table`]). A
//! template's count of controlled connections and its persistence timeout
//! reuse storage a template does not need, behind named accessors.

use std::ops::{BitOr, BitOrAssign};

use gw_proto::ForwardMode;

use super::{FlowKey, Links, NIL, TICK_SHIFT};
use crate::tcp_state::State;
use crate::wire::checksum::Delta;
use crate::wire::ipv4::Protocol;

/// A session's flag bits, one byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u8);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// The session is counted in its real server's ActiveConn (else InActConn).
    pub const ACTIVE: Flags = Flags(1);
    /// The session has no reply key (DR, TUN: replies bypass the gateway),
    /// so it is not in the reply index.
    pub const NO_OUT: Flags = Flags(2);
    /// A persistence template (client port 0), not a connection: see
    /// [`crate::persist`].
    pub const TEMPLATE: Flags = Flags(4);
    /// One-packet scheduling (`-o`): the next datagram of the flow is
    /// scheduled anew.
    pub const ONE_PACKET: Flags = Flags(8);
    /// TCP: a SYNPROXY session ([`crate::synproxy`]). The same bit as
    /// [`Flags::ONE_PACKET`], which only UDP sessions use.
    pub const SYNPROXY: Flags = Flags(8);
    /// `seq_mark[0]` holds the client's sequence mark ([`crate::tcp_seq`]).
    pub const SEQ_IN: Flags = Flags(16);
    /// UDP: the real server has not answered yet (a FULLNAT or NAT
    /// session, counted in `sessions_udp_unreplied`). The same bit as
    /// [`Flags::SEQ_IN`], which only TCP sessions use.
    pub const UDP_UNREPLIED: Flags = Flags(16);
    /// `seq_mark[1]` holds the real server's sequence mark.
    pub const SEQ_OUT: Flags = Flags(32);
    /// Two bits: how the real server learns the client's address
    /// ([`crate::client_addr`]): 0 not at all, 1 TOA, 2 PROXY v1, 3 PROXY v2.
    pub const CLIENT_ADDR: Flags = Flags(64 | 128);

    /// The [`Flags::CLIENT_ADDR`] bits holding `v` (0..=3).
    #[inline]
    pub const fn client_addr(v: u8) -> Flags {
        Flags((v & 3) << 6)
    }
    /// The value of the [`Flags::CLIENT_ADDR`] bits.
    #[inline]
    pub const fn client_addr_bits(self) -> u8 {
        self.0 >> 6
    }

    /// The raw bits.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Whether every bit of `f` is set.
    #[inline]
    pub const fn contains(self, f: Flags) -> bool {
        self.0 & f.0 == f.0
    }
    /// Sets the bits of `f`.
    #[inline]
    pub fn insert(&mut self, f: Flags) {
        self.0 |= f.0;
    }
    /// Clears the bits of `f`.
    #[inline]
    pub fn remove(&mut self, f: Flags) {
        self.0 &= !f.0;
    }
}

impl BitOr for Flags {
    type Output = Flags;
    #[inline]
    fn bitor(self, f: Flags) -> Flags {
        Flags(self.0 | f.0)
    }
}

impl BitOrAssign for Flags {
    #[inline]
    fn bitor_assign(&mut self, f: Flags) {
        self.0 |= f.0;
    }
}

/// One connection through the gateway, or a persistence template.
///
/// `cip:cport -> vip:vport` is the client side; `rip:rport -> lip:lport` is
/// the key of the real server's replies (for FULLNAT, `lip` is the local
/// address; for modes without SNAT it is the client address).
///
/// A template ([`Flags::TEMPLATE`]) has no local side: to keep a session one
/// cache line it stores its persistence timeout in `lip` and its count of
/// controlled connections in `lport`. Read and write those only through
/// [`Session::timeout_ms`] and [`Session::n_control`] (see [`crate::persist`]).
///
/// The bytes for the TCP sequence marks (`seq_mark`, [`crate::tcp_seq`]) come
/// from narrowing the service and real-server slots to 16 bits: the
/// configuration allows at most 65536 of each (`workers.max_services`,
/// `workers.max_dests`).
///
/// A connection's addresses and ports are set once, by [`Session::new`],
/// which also works out the checksum changes of FULLNAT's and NAT's
/// rewrite from them ([`Session::rewrite_change`]); nothing changes them
/// afterwards (a template's reuse of `lip` and `lport` leaves its changes
/// meaningless, and a template is never forwarded).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Session {
    pub cip: u32,
    pub vip: u32,
    pub cport: u16,
    pub vport: u16,
    pub rip: u32,
    /// Local address (connections); the persistence timeout (templates).
    pub lip: u32,
    pub rport: u16,
    /// Local port (connections); the controlled-connection count (templates).
    pub lport: u16,
    /// IP protocol number (`u8::from(Protocol)`); 0 marks a free slot.
    pub proto: u8,
    pub state: State,
    pub mode: ForwardMode,
    pub flags: Flags,
    /// Service slot.
    pub service: u16,
    /// Real-server slot.
    pub dest: u16,
    /// TCP: per direction (client, real server), the top 16 bits of the
    /// highest sequence number the sender has used, valid when
    /// [`Flags::SEQ_IN`]/[`Flags::SEQ_OUT`] is set ([`crate::tcp_seq`]).
    pub seq_mark: [u16; 2],
    /// Deadline and intrusive links, owned by the table ([`super::Table`]).
    pub(super) links: Links,
    /// The route toward the real server (`[0]`) and toward the client
    /// (`[1]`), once the first packet that way found it ([`crate::route::Routes::lookup_numbered`]):
    /// the routes never change under an engine, nor a connection's `rip`
    /// and `cip`, so the established path does not search the table again.
    /// `None` until then. (The four bytes were the reply index's chain
    /// link before it became a cuckoo hash.)
    pub route: [Option<crate::route::RouteNo>; 2],
    /// The persistence template that controls this connection, or [`NIL`].
    pub control: u32,
    /// What FULLNAT's and NAT's rewrite of a client packet does to its
    /// checksums, worked out once ([`Session::rewrite_change`]): `[0]` the
    /// IPv4 header's (both addresses), `[1]` the TCP/UDP checksum's (the
    /// pseudo header's addresses and both ports), each folded to 16 bits
    /// (RFC 1624 eqn. 3's `~m + m'` summed over the changed words). The
    /// four bytes are those the free list's link took before it moved into
    /// `Links::wheel_next`.
    rewrite_sum: [u16; 2],
}

const _: () = assert!(std::mem::size_of::<Session>() == 64 && std::mem::align_of::<Session>() == 64);

impl Session {
    /// A new session; links are set by [`super::Table::insert`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        proto: Protocol,
        client: (u32, u16),
        vip: (u32, u16),
        rs: (u32, u16),
        local: (u32, u16),
        state: State,
        mode: ForwardMode,
        service: u32,
        dest: u32,
    ) -> Session {
        debug_assert!(service <= u16::MAX as u32 && dest <= u16::MAX as u32, "slots are 16-bit");
        Session {
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
            route: [None; 2],
            control: NIL,
            rewrite_sum: Session::rewrite_sum_of((client.0, client.1), vip, rs, local),
        }
    }

    /// [`Session::rewrite_sum`] of a session: a client packet
    /// `client -> vip` becomes `local -> rs`.
    fn rewrite_sum_of(client: (u32, u16), vip: (u32, u16), rs: (u32, u16), local: (u32, u16)) -> [u16; 2] {
        let ports = |src: u16, dst: u16| u32::from(src) << 16 | u32::from(dst);
        let addrs = Delta::word32(client.0, local.0) + Delta::word32(vip.0, rs.0);
        let l4 = addrs + Delta::word32(ports(client.1, vip.1), ports(local.1, rs.1));
        [addrs.folded(), l4.folded()]
    }

    /// The change that FULLNAT's and NAT's rewrite makes to the IPv4 header
    /// checksum (addresses only; the TTL's is the caller's) and to the
    /// TCP/UDP checksum, for a packet of this session's client side
    /// (`out` false: `cip:cport -> vip:vport` becomes `lip:lport ->
    /// rip:rport`) or of its reply side (`out`: `rip:rport -> lip:lport`
    /// becomes `vip:vport -> cip:cport`). The reply side's change is the
    /// client side's undone, its ones' complement negative. Exact only for
    /// a packet whose addresses and ports are that side's key, as a packet
    /// the session was found by has.
    #[inline(always)]
    pub fn rewrite_change(&self, out: bool) -> (Delta, Delta) {
        let [ip, l4] = self.rewrite_sum;
        if out {
            (Delta::from_folded(!ip), Delta::from_folded(!l4))
        } else {
            (Delta::from_folded(ip), Delta::from_folded(l4))
        }
    }
    /// The IP protocol.
    #[inline]
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.proto)
    }
    /// Key of the client's packets.
    #[inline]
    pub fn in_key(&self) -> FlowKey {
        FlowKey { proto: self.protocol(), src: self.cip, sport: self.cport, dst: self.vip, dport: self.vport }
    }
    /// Key of the real server's replies.
    #[inline]
    pub fn out_key(&self) -> FlowKey {
        FlowKey { proto: self.protocol(), src: self.rip, sport: self.rport, dst: self.lip, dport: self.lport }
    }
    #[inline]
    pub(super) fn is_in(&self, k: &FlowKey, proto: u8) -> bool {
        (self.proto, self.cip, self.cport, self.vip, self.vport) == (proto, k.src, k.sport, k.dst, k.dport)
    }
    #[inline]
    pub(super) fn is_out(&self, k: &FlowKey, proto: u8) -> bool {
        (self.proto, self.rip, self.rport, self.lip, self.lport) == (proto, k.src, k.sport, k.dst, k.dport)
    }
    /// The TCP (or UDP) state.
    #[inline]
    pub fn state(&self) -> State {
        self.state
    }
    /// Whether this is a persistence template.
    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags.contains(Flags::TEMPLATE)
    }
    /// Milliseconds until expiry at `now_ms` (0 if due).
    pub fn expires_in_ms(&self, now_ms: u64) -> u64 {
        ((self.links.expires as u64) << TICK_SHIFT).saturating_sub(now_ms)
    }
    /// A template's count of live connections it controls (IPVS's
    /// `n_control`). Stored in the template's unused `lport`.
    #[inline]
    pub fn n_control(&self) -> u16 {
        debug_assert!(self.is_template());
        self.lport
    }
    /// Sets a template's count of controlled connections.
    #[inline]
    pub(crate) fn set_n_control(&mut self, n: u16) {
        debug_assert!(self.is_template());
        self.lport = n;
    }
    /// A template's persistence timeout in milliseconds (`-p`). Stored in
    /// the template's unused `lip`.
    #[inline]
    pub fn timeout_ms(&self) -> u32 {
        debug_assert!(self.is_template());
        self.lip
    }
    /// Sets a template's persistence timeout.
    #[inline]
    pub(crate) fn set_timeout_ms(&mut self, ms: u32) {
        debug_assert!(self.is_template());
        self.lip = ms;
    }
    /// Moves the deadline to `tick` if that is later (the wheel catches up
    /// lazily: a later deadline needs no relink).
    #[inline]
    pub(crate) fn extend_deadline(&mut self, tick: u32) {
        self.links.expires = self.links.expires.max(tick);
    }
}

//! Forwarding modes, one file each, bound once per connection (DPVS's
//! `dp_vs_xmit_*` pairs in `xmit.c`, bound in `ip_vs_conn.c`).
//!
//! A mode says, for a connection to a real server:
//! - **bind**: what the session holds besides the client side: the real
//!   server's address and port, the local side of the reply key (a local
//!   address and port for FULLNAT, the client itself for NAT), or no reply
//!   key at all (DR, TUN: replies bypass the gateway);
//! - **transmit in** (client -> real server) and **transmit out** (real
//!   server -> client, only for modes that see replies);
//! - whether the gateway routes the packet ([`Mode::ROUTED`]: rewrites L3,
//!   decrements the TTL, sees replies and translates ICMP errors about
//!   them) and which TCP state table client packets use
//!   ([`Mode::IN_TABLE`]: INPUT, or INPUT-ONLY when replies are unseen).
//!
//! [`dispatch`] is the one place that maps a session's mode byte to its
//! implementation: a `match` that calls code monomorphised per mode, so the
//! packet path has no indirect call. The engine's packet step reads the
//! mode's constants ([`traits`]) and then transmits with it ([`xmit`]);
//! only the transmit is compiled once per mode, so the common step stays
//! one small function whose callees the compiler still inlines. Adding a mode (e.g. DPVS's SNAT) takes
//! a new file implementing [`Mode`], its `mod` line below and one arm in
//! [`dispatch`] (plus the `ForwardMode` variant in `gw-proto`).

pub mod dr;
pub mod fullnat;
pub mod nat;
pub mod tun;
pub mod tun6;
pub mod tun_encap;

use gw_proto::ForwardMode;

use crate::counters::{Drop, WorkerCounters};
use crate::engine::{Action, EngineConfig, SvcState};
use crate::route::Iface;
use crate::service::{Dest, Service, Snapshot};
use crate::session::{Flags, FlowKey, Session, SessionTable};
use crate::tcp_state::Dir;
use crate::wire::ipv4::Protocol;

/// What a mode binds into a new session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The real server's address and port.
    pub rs: (u32, u16),
    /// The destination of the real server's replies (the reply key's end).
    pub local: (u32, u16),
    /// [`Flags::NO_OUT`] if replies bypass the gateway, else none.
    pub flags: Flags,
    /// The index hash of the reply key (`rs` -> `local`) when the bind
    /// computed it (a FULLNAT bind that checked the port is free), for the
    /// insert not to hash it again.
    pub reply_hash: Option<u64>,
}

/// What binding may look at: the worker's configuration and sessions (a
/// FULLNAT local port must be free toward its real server) and the
/// service's allocation cursors.
pub struct BindCx<'a> {
    /// The worker's settings (local port range, worker index).
    pub(crate) cfg: &'a EngineConfig,
    /// This worker's share of `cfg.lport_range`, worked out once
    /// ([`crate::engine::conn::Partition::of`]); `None` when it has none.
    pub(crate) lports: Option<crate::engine::conn::Partition>,
    /// The worker's sessions, to check a reply key is free.
    pub(crate) sessions: &'a SessionTable,
    /// The service's local address and port cursors.
    pub(crate) st: &'a mut SvcState,
    /// The service (its local addresses).
    pub(crate) svc: &'a Service,
    /// Each real server's next FULLNAT local address and port, by real
    /// server slot ([`crate::engine::conn::NextPort`]); may be empty.
    pub(crate) next: &'a mut [crate::engine::conn::NextPort],
    /// The NAT64 sessions a FULLNAT bind must also find free; `None` while
    /// the IPv6 table is empty.
    pub(crate) held6: Option<crate::engine::nat64::Held6<'a>>,
}

/// What a transmit may look at besides the session and the frame.
pub struct XmitCx<'a> {
    /// The worker's ports.
    pub ifaces: &'a [Iface],
    /// The port the packet came in on.
    pub rx: &'a Iface,
    /// The worker's counters (e.g. ICMP errors the mode sends).
    pub counters: &'a WorkerCounters,
    /// Output port and next hop (host order) from the route lookup.
    pub port: u16,
    pub next_hop: u32,
    /// The packet's protocol: its session's, or ICMP for an error that DR
    /// or TUN forwards to the session's real server.
    pub proto: Protocol,
    /// IPv4 total length of the packet.
    pub tl: usize,
    /// The packet's DF bit.
    pub dont_frag: bool,
    /// The services: TUN reads its server's tunnel type here
    /// ([`Snapshot::dest_tunnel`]), only when it transmits.
    pub snap: &'a Snapshot,
}

/// One forwarding mode.
pub trait Mode {
    /// The gateway routes the packet: rewrites L3 and decrements the TTL
    /// (which must be above 1), sees the replies and translates ICMP errors
    /// about the connection. False: it hands the packet on untouched.
    const ROUTED: bool;
    /// TCP transition table of client packets: [`Dir::Input`] when the
    /// gateway also sees replies, [`Dir::InputOnly`] when it does not.
    const IN_TABLE: Dir;
    /// The real server's replies are addressed to the client itself (NAT),
    /// so the gateway knows them by their source, RIP:rport: to steer them
    /// to the owning worker and to tell a reply without session from a
    /// stray packet ([`crate::service::Snapshot::masq_dest`]).
    const REPLIES_TO_CLIENT: bool;
    /// Binds a new connection of client flow `key` to real server `dest`.
    fn bind(cx: &mut BindCx<'_>, key: &FlowKey, dest: &Dest) -> Result<Bound, Drop>;
    /// Transmits a client packet (Ethernet frame, `cx.tl` bytes of IPv4)
    /// toward the real server.
    fn xmit_in(cx: &XmitCx<'_>, s: &Session, frame: &mut [u8]) -> Action;
    /// Transmits a real server's reply toward the client. Only reached for
    /// sessions with a reply key.
    fn xmit_out(cx: &XmitCx<'_>, s: &Session, frame: &mut [u8]) -> Action;
}

/// Work done with a session's mode type: [`dispatch`] runs it with the
/// implementation of that mode.
pub trait ModeOp {
    /// What the work returns.
    type Out;
    /// Runs with mode `M`.
    fn run<M: Mode>(self) -> Self::Out;
}

/// Runs `op` with the implementation of `mode`: the one mode dispatch.
#[inline(always)]
pub fn dispatch<O: ModeOp>(mode: ForwardMode, op: O) -> O::Out {
    match mode {
        ForwardMode::FullNat => op.run::<fullnat::FullNat>(),
        ForwardMode::Masq => op.run::<nat::Nat>(),
        ForwardMode::Route => op.run::<dr::Dr>(),
        ForwardMode::Tunnel => op.run::<tun::Tun>(),
    }
}

/// A mode's constants, for code that runs the same for every mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Traits {
    /// [`Mode::ROUTED`].
    pub routed: bool,
    /// [`Mode::IN_TABLE`].
    pub in_table: Dir,
    /// [`Mode::REPLIES_TO_CLIENT`].
    pub replies_to_client: bool,
}

/// The constants of `mode`.
#[inline]
pub fn traits(mode: ForwardMode) -> Traits {
    struct Get;
    impl ModeOp for Get {
        type Out = Traits;
        #[inline(always)]
        fn run<M: Mode>(self) -> Traits {
            Traits { routed: M::ROUTED, in_table: M::IN_TABLE, replies_to_client: M::REPLIES_TO_CLIENT }
        }
    }
    dispatch(mode, Get)
}

/// Whether `mode` routes packets ([`Mode::ROUTED`]).
#[inline]
pub fn routed(mode: ForwardMode) -> bool {
    traits(mode).routed
}

/// Whether `mode`'s replies go to the client itself
/// ([`Mode::REPLIES_TO_CLIENT`]).
#[inline]
pub fn replies_to_client(mode: ForwardMode) -> bool {
    traits(mode).replies_to_client
}

/// Transmits a packet of session `s` with its mode: toward the client if
/// `out` ([`Mode::xmit_out`]), else toward the real server
/// ([`Mode::xmit_in`]).
#[inline]
pub fn xmit(mode: ForwardMode, out: bool, cx: &XmitCx<'_>, s: &Session, frame: &mut [u8]) -> Action {
    struct Xmit<'a, 'b> {
        out: bool,
        cx: &'a XmitCx<'b>,
        s: &'a Session,
        frame: &'a mut [u8],
    }
    impl ModeOp for Xmit<'_, '_> {
        type Out = Action;
        #[inline(always)]
        fn run<M: Mode>(self) -> Action {
            if self.out {
                M::xmit_out(self.cx, self.s, self.frame)
            } else {
                M::xmit_in(self.cx, self.s, self.frame)
            }
        }
    }
    dispatch(mode, Xmit { out, cx, s, frame })
}

/// The real server's port for a mode that may change it: the
/// destination's port, or the packet's for a port-0 destination.
#[inline]
pub(crate) fn rs_port(key: &FlowKey, dest: &Dest) -> u16 {
    if dest.port == 0 {
        key.dport
    } else {
        dest.port
    }
}

#[cfg(test)]
mod tests;

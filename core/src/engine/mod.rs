//! The packet engine of one worker: a pure function of (state, now, frame).
//!
//! [`Engine::process`] takes one Ethernet frame, rewrites it in place and says
//! what to do with it ([`Action`]). It never reads a clock (the caller passes
//! `now` in milliseconds), never allocates and never blocks, so it runs the
//! same on a `Vec<u8>` in a unit test and on an mbuf in a DPDK worker.
//!
//! Split by protocol as smoltcp's `iface/interface/*`: this file is the
//! Ethernet ladder and the engine's state; [`arp`] answers and learns ARP,
//! [`ipv4`] checks IPv4 and dispatches on L4 (then runs a session's packet
//! through its forwarding mode, [`crate::modes`]), [`icmp`] answers echo
//! and translates errors, [`conn`] sets connections up (scheduling, local
//! ports, bind/unbind accounting).
//!
//! [`ipv6`] handles IPv6 on a dual-stack port: neighbour discovery
//! ([`nd`]: answers solicitations for the port's address and the IPv6
//! VIPs and local addresses, learns neighbours) and echo requests to the
//! port's address; [`icmp6`] translates ICMPv6 errors about IPv6 sessions
//! and sends Packet Too Big.
//!
//! Order of checks for an IPv4 frame: Ethernet destination, IPv4 header
//! (length, version, IHL, checksum), source address sanity, fragments, then
//! L4 header, then session lookup (client side, then real-server side), then
//! service lookup for a new session. Every exit that does not forward names a
//! [`Drop`] reason, counted by the caller.

mod arp;
pub(crate) mod conn;
mod frag;
mod icmp;
mod icmp6;
mod ipv4;
mod ipv6;
mod ipv6_fwd;
mod kernel;
pub mod nat64;
mod nd;
pub mod reject;
mod synproxy;
mod synproxy6;

pub use conn::{ConnReuse, NextPort, NoDest};
pub use ipv4::{L4Info, Lookup, Staged, StagedSlot};
/// The IPv6 engine tests' frames and engines, for the worker's tests.
#[cfg(test)]
pub(crate) use ipv6::tests as ipv6_tests;
pub use ipv6_fwd::sessions6_of;
/// The IPv6 forwarding tests' engine and frames, for the worker's tests.
#[cfg(test)]
pub(crate) use ipv6_fwd::tests as ipv6_fwd_tests;
/// The neighbour-discovery tests' frames, for the worker's tests.
#[cfg(test)]
pub(crate) use nd::tests as nd_tests;
pub use reject::{NoServiceReply, Reject, RejectConfig};
pub use synproxy::{TimerResend, TIMER_SYN_LEN};

use std::sync::Arc;

use gw_proto::{Scheduler, TunnelEncap};

use crate::counters::{Drop, Event, WorkerCounters};
use crate::mailbox::{ConnQuery, SCAN_PER_CHUNK};
use crate::persist;
use crate::route::{Iface, Routes};
use crate::sched::SchedState;
use crate::service::{Service, Snapshot};
use crate::session::{Prefetch, SessionTable};
use crate::wire::ethernet::{self, EtherType, MacAddr};

/// Static settings of one worker's engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// This worker's index, 0-based.
    pub worker: u32,
    /// Number of workers: local ports are split so that worker i owns the
    /// ports p with p % workers == i (DPVS's sa_pool scheme), which makes the
    /// owner of a FULLNAT reply computable from its destination port.
    pub workers: u32,
    pub ifaces: Vec<Iface>,
    pub routes: Routes,
    /// Session-table capacity of this worker.
    pub sessions: usize,
    /// IPv6 session-table capacity of this worker (gatewayd's
    /// `[workers] sessions6`, by default [`sessions6_of`] `sessions`).
    pub sessions6: usize,
    /// Local ports to allocate from, inclusive.
    pub lport_range: (u16, u16),
    /// Seed of the session hash.
    pub seed: u64,
    /// Most sessions [`Engine::expire`] examines per call, both tables
    /// together (the poll loop passes its own per-poll budget to
    /// [`Engine::expire_with`]).
    pub expire_budget: usize,
    /// Service slots (sizes the per-service scheduler state).
    pub max_services: usize,
    /// Most IPv4 TCP sessions in NONE/SYN_RECV at once; new connections
    /// beyond it are dropped (`drop_half_open_limit`) so a SYN flood cannot
    /// take the table from established sessions.
    pub half_open_max: usize,
    /// The same for the IPv6 table (its own share: a flood of one family
    /// neither fills the other's table nor holds its connections back).
    pub half_open_max6: usize,
    /// IPVS's `net.ipv4.vs.conn_reuse_mode` (see [`conn::ConnReuse`]):
    /// what a plain SYN that matches a closing session does.
    pub conn_reuse: conn::ConnReuse,
    /// What the packets of a deleted real server's sessions get
    /// ([`conn::NoDest`], IPVS's `expire_nodest_conn`).
    pub nodest: conn::NoDest,
    /// Replies to packets with no service or no session, and their rate
    /// ([`reject`]).
    pub reject: RejectConfig,
    /// Reassembly table size and timeout ([`crate::frag`]).
    pub frag: crate::frag::FragConfig,
    /// Ports with a kernel interface (the exception path, [`kernel`]):
    /// what is for the port's own address and not the dataplane's goes to
    /// the kernel ([`Action::Kernel`]). Empty by default.
    pub kernel: Vec<u16>,
    /// The SYN cookie secret ([`crate::synproxy`]): random per gateway, the
    /// same on every worker (any worker checks any cookie).
    pub synproxy_secret: u64,
}

/// What to do with a frame after [`Engine::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// L3 is rewritten; send out `port` to the MAC of `next_hop` (host order).
    Forward { port: u16, next_hop: u32 },
    /// IPv6 L3 is rewritten; send out `port` to the MAC of the IPv6
    /// `next_hop` (resolved by neighbour discovery, [`crate::neigh`]).
    Forward6 { port: u16, next_hop: u128 },
    /// Rewritten in place into a reply (ICMP echo, ICMP error), MACs set:
    /// cut the frame to `len` bytes and send it out `port`.
    Reply { port: u16, len: usize },
    /// TUN mode: encapsulate toward the real server from `src` to `dst`
    /// (host order) with [`crate::modes::tun::encap`] (it prepends
    /// [`crate::modes::tun::OUTER_LEN`] bytes and the tunnel header of the
    /// server's `--tun-type` `tun`), and send out `port` to the MAC of
    /// `next_hop`.
    Encap { port: u16, next_hop: u32, src: u32, dst: u32, tun: TunnelEncap },
    /// TUN for IPv6: encapsulate with [`crate::modes::tun6::encap`] from
    /// and to the addresses [`Engine::pending_encap6`] gives (kept in the
    /// engine so that `Action` stays 32 bytes), in the tunnel of type
    /// `tun`, and send out `port` to the MAC of the IPv6 `next_hop`.
    Encap6 { port: u16, next_hop: u128, tun: TunnelEncap },
    /// An ARP packet from `sender` (inside `port`'s subnet) on `port`: learn
    /// it, making a neighbour entry only if `create` (a request to us), else
    /// updating one that exists (Linux `arp_accept=0`); if `reply`, the
    /// frame was turned into an ARP reply and goes back out `port`; else if
    /// `kernel`, the frame then goes to `port`'s kernel interface
    /// ([`kernel`]: a reply to the port's address, a gratuitous ARP).
    Arp { port: u16, sender: (u32, MacAddr), reply: bool, create: bool, kernel: bool },
    /// A neighbour solicitation or advertisement on `port` telling that
    /// IPv6 `addr` (link-local or on `port`'s prefix) is at `mac`
    /// ([`ipv6`]'s rules): learn it as [`Action::Arp`] does, an entry made
    /// only if `create` (a solicitation to us); if `reply` is not 0, the
    /// frame was turned into an advertisement of `reply` bytes (MACs set):
    /// cut it and send it out `port`; else if `kernel`, the frame then goes
    /// to `port`'s kernel interface. Without `replace` (an advertisement
    /// with the override flag clear, RFC 4861 §7.2.5) a known neighbour's
    /// different MAC is kept.
    Nd { port: u16, addr: u128, mac: MacAddr, create: bool, replace: bool, reply: u16, kernel: bool },
    /// For `port`'s kernel interface, untouched (the exception path,
    /// [`kernel`]): the worker hands it to the thread that owns the kernel
    /// interfaces, through a bounded ring (`kernel_punted`, or
    /// `drop_kernel_full`).
    Kernel { port: u16 },
    /// Dropped for `why` (count it), and answered: build `reply` over the
    /// frame with [`reject::build`] and send it out `port` to the MAC of
    /// `next_hop` (the sender's next hop), see [`reject`].
    Reject { port: u16, next_hop: u32, reply: Reject, why: Drop },
    /// [`Action::Reject`] for an IPv6 packet: built with
    /// [`reject::build6`], sent to the IPv6 `next_hop`.
    Reject6 { port: u16, next_hop: u128, reply: Reject, why: Drop },
    /// A fragment kept for reassembly: free the buffer (counted as
    /// `frag_received`).
    Absorbed,
    /// The fragment completed a datagram: free the buffer, then take the
    /// datagram with [`Engine::take_reassembled`] and process it.
    Reassembled,
    /// Rewritten like [`Action::Forward`], and the worker grows it with
    /// `ins` ([`crate::client_addr::apply`]: TOA, a PROXY header) first.
    /// What to insert: [`Engine::pending_insert`].
    Grow { port: u16, next_hop: u32 },
    /// SYNPROXY's cookie SYN-ACK (IPv4): grown as [`Action::Grow`] (its
    /// options), then sent as a reply the gateway makes on its own to a
    /// packet's sender: an unresolved next hop is solicited as a
    /// stranger's neighbour entry, never a *wanted* one, so that answering
    /// a SYN flood from made-up on-link sources cannot evict the
    /// neighbours in use.
    GrowReply { port: u16, next_hop: u32 },
    /// NAT64, client to server: the IPv6 frame is to be translated to
    /// IPv4 ([`crate::nat64::frame_to_ipv4`] with
    /// [`Engine::pending_nat64`] and the worker's IPv4 identification),
    /// then sent like [`Action::Forward`].
    Nat64To4 { port: u16, next_hop: u32 },
    /// NAT64, server to client: the IPv4 frame is to be translated to IPv6
    /// ([`crate::nat64::frame_to_ipv6`] with [`Engine::pending_nat64`]),
    /// then sent like [`Action::Forward6`].
    Nat64To6 { port: u16, next_hop: u128 },
    /// Rewritten like [`Action::Forward6`] (FULLNAT66), and the worker
    /// grows it first as [`Action::Grow`] does (an IPv6 client's TOA or
    /// PROXY header, [`crate::client_addr`]).
    Grow6 { port: u16, next_hop: u128 },
    /// NAT64, client to server: translated as [`Action::Nat64To4`], then
    /// grown as [`Action::Grow`] (the IPv6 client's TOA or PROXY header
    /// into the IPv4 packet), then sent like [`Action::Forward`].
    Nat64Grow { port: u16, next_hop: u32 },
    /// A SYNPROXY handshake ACK, rewritten like [`Action::Forward`] (like
    /// [`Action::Grow`] if `grow`); after it the worker sends the client
    /// data the cookie ACK carried, [`Engine::held_frame`].
    ThenHeld { port: u16, next_hop: u32, grow: bool },
    /// SYNPROXY for IPv6 ([`synproxy6`]): the frame is replaced by
    /// [`Engine::built_frame`] (the cookie SYN-ACK, which may be longer
    /// than the SYN it answers), then sent like [`Action::Forward6`].
    Built6 { port: u16, next_hop: u128 },
    /// SYNPROXY for IPv6: the frame is replaced by [`Engine::built_frame`]
    /// (the client's SYN or handshake ACK, in the client's view) and
    /// processed again as if received on `port`, which takes it along its
    /// session's path; then, if `held`, the client data of the cookie ACK
    /// ([`Engine::held_frame`]) is processed.
    Again { port: u16, held: bool },
    /// Not forwarded.
    Drop(Drop),
}

/// Per-service state of one worker: scheduler state and the FULLNAT local
/// port cursor, reset when the service's version changes.
#[derive(Clone, Debug, Default)]
pub(crate) struct SvcState {
    version: u64,
    sched: SchedState,
    lport_next: u16,
    /// Next ports chosen ([`conn::NextPort`]), never reset: the choices'
    /// sequence number.
    binds: u64,
}

/// One worker's sessions and packet logic.
pub struct Engine {
    cfg: EngineConfig,
    snap: Arc<Snapshot>,
    sessions: SessionTable,
    /// IPv6 sessions ([`ipv6_fwd`]), a quarter of `sessions`.
    sessions6: crate::session::ipv6::SessionTable6,
    /// The translation of the last NAT64 action ([`nat64`]).
    nat64: nat64::Pending,
    /// The outer (source, destination) of the last [`Action::Encap6`].
    encap6: (u128, u128),
    svc: Box<[SvcState]>,
    counters: Arc<WorkerCounters>,
    /// IPVS's IP_VS_DEST_F_OVERLOAD per real-server slot, from this worker's
    /// share of the `-x`/`-y` thresholds.
    overloaded: Box<[bool]>,
    /// Each real server's next FULLNAT local port ([`conn::NextPort`]),
    /// by real-server slot.
    next_ports: Box<[conn::NextPort]>,
    /// This worker's share of `cfg.lport_range` ([`conn::Partition`]).
    lports: Option<conn::Partition>,
    /// The token bucket of replies ([`reject`]).
    replies: reject::TokenBucket,
    /// Fragments being reassembled, and the datagram last completed (its
    /// range in the table's output buffer, its port, its largest fragment
    /// and its identification).
    frag: crate::frag::Reassembler,
    reassembled: Option<(std::ops::Range<usize>, u16, usize, u32)>,
    /// The frame being processed is a datagram this worker reassembled
    /// ([`Engine::process_reassembled`]): the worker fragments it to the
    /// output MTU, so IPv6 answers no Packet Too Big for it.
    whole: bool,
    /// The smallest port MTU: a packet within it fits every port, and the
    /// DF check skips the output port's lookup.
    min_mtu: u16,
    /// PROXY protocol sessions' ISN and header length ([`crate::client_addr`]).
    ca: crate::client_addr::Table,
    /// SYNPROXY sessions' splice ([`crate::synproxy`]).
    sp: crate::synproxy::Table,
    /// Cookie ACKs' client data waiting for the real server's handshake.
    sp_hold: crate::synproxy::Hold,
    /// IPv6 SYNPROXY sessions' splice, by `sessions6` index.
    sp6: crate::synproxy::Table,
    /// The frame of the last [`Action::Built6`] or [`Action::Again`].
    sp_built: synproxy6::Built,
    /// SYNPROXY handshakes whose timer came due waiting for the real
    /// server (their session index, [`crate::synproxy::V6_OWNER`] for the
    /// IPv6 table's): the worker sends their SYN again
    /// ([`Engine::next_timer_resend`]). Allocated once, never beyond.
    sp_due: Vec<u32>,
    /// Port `k`'s interface is `cfg.ifaces[k]` for every `k` (as gatewayd
    /// builds them): [`Engine::iface`] indexes instead of searching.
    ifaces_indexed: bool,
}

/// Addresses that are never a valid source (RFC 1812 §5.3.7): 0/32,
/// broadcast, loopback, multicast.
fn bad_source(ip: u32) -> bool {
    let first = ip >> 24;
    ip == 0 || ip == u32::MAX || first == 127 || (first & 0xf0) == 0xe0
}

impl Engine {
    /// An engine with empty session tables of `cfg.sessions` IPv4 and
    /// `cfg.sessions6` IPv6 slots.
    pub fn new(cfg: EngineConfig, snap: Arc<Snapshot>, counters: Arc<WorkerCounters>, now_ms: u64) -> Engine {
        let sessions = SessionTable::new(cfg.sessions, cfg.seed, now_ms);
        let sessions6 =
            crate::session::ipv6::SessionTable6::new(cfg.sessions6, cfg.seed.rotate_left(17), now_ms);
        let svc = vec![SvcState::default(); cfg.max_services].into_boxed_slice();
        let overloaded = vec![false; counters.dests.len()].into_boxed_slice();
        let next_ports = vec![conn::NextPort::default(); counters.dests.len()].into_boxed_slice();
        let lports = conn::Partition::of(&cfg);
        counters.event_cell(Event::SessionTableBytes).set(sessions.memory_bytes() as u64);
        counters.event_cell(Event::Session6TableBytes).set(sessions6.memory_bytes() as u64);
        counters.event_cell(Event::SessionCapacity).set(sessions.capacity() as u64);
        counters.event_cell(Event::Session6Capacity).set(sessions6.capacity() as u64);
        let replies = reject::TokenBucket::new(cfg.reject.rate, cfg.reject.burst, now_ms);
        let frag = crate::frag::Reassembler::new(cfg.frag);
        counters.event_cell(Event::FragCapacity).set(frag.capacity() as u64);
        counters.event_cell(Event::FragTableBytes).set(frag.memory_bytes() as u64);
        let min_mtu = cfg.ifaces.iter().map(|i| i.mtu).min().unwrap_or(u16::MAX);
        let ifaces_indexed = cfg.ifaces.iter().enumerate().all(|(k, i)| usize::from(i.port) == k);
        let ca = crate::client_addr::Table::new(sessions.capacity(), sessions6.capacity());
        let sp = crate::synproxy::Table::new(sessions.capacity());
        let sp6 = crate::synproxy::Table::new(sessions6.capacity());
        Engine {
            cfg,
            snap,
            sessions,
            sessions6,
            nat64: nat64::Pending::NONE,
            encap6: (0, 0),
            svc,
            counters,
            overloaded,
            next_ports,
            lports,
            replies,
            frag,
            reassembled: None,
            whole: false,
            min_mtu,
            ca,
            sp,
            sp_hold: crate::synproxy::Hold::default(),
            sp6,
            sp_built: synproxy6::Built::default(),
            sp_due: Vec::with_capacity(synproxy::TIMER_RESENDS_PER_TICK),
            ifaces_indexed,
        }
    }

    /// The static settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }
    /// This worker's counters.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }
    /// This worker's sessions.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }
    /// Lends the session tables a prefetch hint ([`Prefetch`]), which the
    /// core cannot issue itself (no unsafe code): the next free slot, a
    /// FULLNAT real server's next reply lines and the lines a walk of the
    /// timer wheel reads next (see [`crate::session::Table::expire_with`])
    /// are then on their way before they are needed. Without one the
    /// engine works the same.
    pub fn set_prefetch(&mut self, p: Prefetch) {
        self.sessions.set_prefetch(p);
        self.sessions6.set_prefetch(p);
    }

    /// The service configuration in use.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    /// Switches to a new configuration and returns the old one. The caller
    /// drops it, then reports the new generation
    /// ([`WorkerCounters::generation`]): the control plane holds every
    /// retired snapshot until all workers report a newer generation, so the
    /// last reference is never dropped on a worker.
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) -> Arc<Snapshot> {
        let old = std::mem::replace(&mut self.snap, snap);
        self.release_locality_caches(&old);
        self.recheck_overloads(&old);
        old
    }

    /// IPVS's rule when a real server is edited (`__ip_vs_update_dest`):
    /// an upper threshold taken away (`-x 0`) or raised clears the
    /// overload flag, so the server takes connections again at once; the
    /// next one bound sets it again if the server is still at its
    /// threshold. A server gone from `old`'s slot (deleted) is cleared
    /// too. Only the flagged slots are looked at, at a configuration
    /// change.
    fn recheck_overloads(&mut self, old: &Snapshot) {
        let workers = self.cfg.workers;
        let upper = |s: &Snapshot, slot: usize| {
            s.dest_thresholds(slot as u32).map(|(u, _)| conn::per_worker(u, workers))
        };
        let new = &self.snap;
        for (slot, flag) in self.overloaded.iter_mut().enumerate().filter(|(_, f)| **f) {
            *flag = match (upper(old, slot), upper(new, slot)) {
                (Some(was), Some(now)) => now != 0 && now <= was,
                _ => false,
            };
        }
    }

    /// Frees the lblc/lblcr cache of every service slot that no longer holds
    /// such a service (deleted, or another scheduler now), so that the
    /// caches a worker holds are those of the live lblc/lblcr services, which
    /// the control plane bounds. A cache is only ever made for a service of
    /// the snapshot in use, so the candidates are `old`'s lblc/lblcr
    /// services, each looked up by its key in the new one: O(services).
    fn release_locality_caches(&mut self, old: &Snapshot) {
        let locality = |s: &Service| matches!(s.scheduler, Scheduler::Lblc | Scheduler::Lblcr);
        for s in old.services().iter().filter(|s| locality(s)) {
            let kept = self.snap.find(&s.key).is_some_and(|n| n.slot == s.slot && locality(n));
            if let Some(st) =
                self.svc.get_mut(s.slot as usize).filter(|st| !kept && st.sched.cache_capacity() > 0)
            {
                // Version 0: the slot's next service sets its state up anew.
                *st = SvcState { binds: st.binds, ..SvcState::default() };
            }
        }
    }

    /// Entries of the lblc/lblcr caches this worker holds (all services).
    pub fn locality_cache_entries(&self) -> usize {
        self.svc.iter().map(|s| s.sched.cache_capacity()).sum()
    }

    /// The outer (source, destination) of the last [`Action::Encap6`].
    pub fn pending_encap6(&self) -> (u128, u128) {
        self.encap6
    }

    /// What the last [`Action::Grow`] asks to insert.
    pub fn pending_insert(&self) -> crate::client_addr::Insert {
        self.ca.pending()
    }

    /// The frame [`Action::ThenHeld`] announced and the port it arrived
    /// on: the worker processes a copy of it, then calls
    /// [`Engine::held_done`].
    pub fn held_frame(&self) -> Option<(u16, &[u8])> {
        self.sp_hold.ready()
    }
    /// Frees the frame [`Engine::held_frame`] gave.
    pub fn held_done(&mut self) {
        self.sp_hold.done();
    }
    /// The frame of the last [`Action::Built6`] or [`Action::Again`].
    pub fn built_frame(&self) -> &[u8] {
        self.sp_built.frame()
    }

    /// The interface of `port`.
    #[inline]
    pub fn iface(&self, port: u16) -> Option<&Iface> {
        if self.ifaces_indexed {
            return self.cfg.ifaces.get(usize::from(port));
        }
        self.cfg.ifaces.iter().find(|i| i.port == port)
    }

    fn is_iface_addr(&self, ip: u32) -> bool {
        self.cfg.ifaces.iter().any(|i| u32::from(i.addr) == ip)
    }

    /// Whether ARP requests for `ip` arriving on `iface` are ours to answer:
    /// the port's own address, or a VIP/local address that lies in the port's
    /// subnet (or in no port's subnet, e.g. a routed VIP).
    fn answers_arp_for(&self, iface: &Iface, ip: u32) -> bool {
        ip == u32::from(iface.addr)
            || (self.snap.owns(ip) && (iface.contains(ip) || !self.cfg.ifaces.iter().any(|i| i.contains(ip))))
    }

    /// [`Engine::process`] for a datagram this worker reassembled
    /// ([`Engine::take_reassembled`]): the worker sends it as fragments of
    /// its largest received fragment's size or the output MTU, so an IPv6
    /// datagram over the output MTU is forwarded, not answered with Packet
    /// Too Big (IPv4's reassembled datagrams carry no DF and pass as well).
    pub fn process_reassembled(&mut self, now: u64, port: u16, frame: &mut [u8]) -> Action {
        self.whole = true;
        let action = self.process(now, port, frame);
        self.whole = false;
        action
    }

    /// Processes one frame received on `port`.
    pub fn process(&mut self, now: u64, port: u16, frame: &mut [u8]) -> Action {
        self.process_inline(now, port, frame)
    }

    /// [`Engine::process`]'s body, inline in [`Engine::process_parsed`]
    /// (the worker's per-packet entry) so that the worker's step has no
    /// call before the session step.
    #[inline(always)]
    fn process_inline(&mut self, now: u64, port: u16, frame: &mut [u8]) -> Action {
        let Some(iface) = self.iface(port).copied() else {
            return Action::Drop(Drop::NotForUs);
        };
        let (dst_mac, ethertype) = match ethernet::Frame::new_checked(&*frame) {
            Ok(f) => (f.dst_addr(), f.ethertype()),
            Err(_) => return Action::Drop(Drop::EthTruncated),
        };
        if dst_mac != iface.mac && !dst_mac.is_broadcast() && !ipv6::nd_group(&iface, dst_mac) {
            // Multicast (OSPF, VRRP, LLDP, other IPv6 ND) is the kernel's, if any.
            if dst_mac.is_multicast() && self.has_kernel(&iface) {
                return Action::Kernel { port };
            }
            return Action::Drop(Drop::NotOurMac);
        }
        match ethertype {
            EtherType::Arp => self.arp(&iface, frame),
            EtherType::Ipv4 => self.ipv4(now, &iface, frame),
            // What the dataplane does not answer of IPv6 (the kernel's own
            // link-local ND, other ICMPv6, TCP/UDP) is the kernel's, if any.
            EtherType::Ipv6 if iface.addr6.is_some() => {
                let action = self.ipv6(now, &iface, frame);
                self.unhandled6_to_kernel(&iface, action)
            }
            _ if self.has_kernel(&iface) => Action::Kernel { port },
            _ => Action::Drop(Drop::UnsupportedEthertype),
        }
    }

    /// Processes one frame received on `port` whose record `parsed` the
    /// poll loop's stages made ([`L4Info::check`] on this frame, unchanged
    /// since, then [`Engine::stage`] under this snapshot): the Ethernet
    /// destination and the source-address checks, then straight to the
    /// session step, without parsing the frame again, and the lookup with
    /// the hash and the local-address test the stage computed. Without a
    /// record, or for a frame not to this port's MAC, [`Engine::process`]'s
    /// full ladder.
    #[inline]
    pub fn process_parsed(
        &mut self,
        now: u64,
        port: u16,
        frame: &mut [u8],
        parsed: Option<&Staged>,
    ) -> Action {
        let Some(p) = parsed else { return self.process_inline(now, port, frame) };
        debug_assert_eq!(L4Info::check(frame), Some(p.l4), "the record is this frame's");
        debug_assert_eq!(
            p.lookup.inputs(),
            self.lookup_of(&p.l4.key).inputs(),
            "the lookup's inputs are this key's, now"
        );
        let Some(iface) = self.iface(port).copied() else {
            return Action::Drop(Drop::NotForUs);
        };
        if frame.get(..6) != Some(&iface.mac.0[..]) {
            return self.process(now, port, frame);
        }
        self.ipv4_checked(now, &iface, frame, &p.l4, p.lookup)
    }

    /// Copies one chunk of live sessions into a control-plane query (see
    /// [`crate::mailbox`]): scans at most [`SCAN_PER_CHUNK`] slots and never
    /// grows the query's buffer.
    pub fn dump(&self, now: u64, q: &mut ConnQuery) {
        if q.six {
            return self.dump6(now, q);
        }
        let cap = self.sessions.capacity();
        let end = (q.start + SCAN_PER_CHUNK).min(cap);
        let mut i = q.start;
        while i < end && q.out.len() < q.out.capacity() {
            if let Some(s) = self.sessions.slot(i) {
                if q.filter.is_none_or(|f| (f.proto, f.vip, f.vport) == (s.proto, u128::from(s.vip), s.vport))
                {
                    q.out.push(*s);
                }
            }
            i += 1;
        }
        q.now_ms = now;
        q.next = (i < cap).then_some(i);
    }

    /// [`Self::dump`] of the IPv6 table, into `q.out6`.
    fn dump6(&self, now: u64, q: &mut ConnQuery) {
        let cap = self.sessions6.capacity();
        let end = (q.start + SCAN_PER_CHUNK).min(cap);
        let mut i = q.start;
        while i < end && q.out6.len() < q.out6.capacity() {
            if let Some(s) = self.sessions6.slot(i) {
                if q.filter.is_none_or(|f| (f.proto, f.vip, f.vport) == (s.proto, s.vip, s.vport)) {
                    q.out6.push(*s);
                }
            }
            i += 1;
        }
        q.now_ms = now;
        q.next = (i < cap).then_some(i);
    }

    /// Expires due sessions (at most `expire_budget` examined): a template
    /// by [`persist::expire`]'s rule, a connection with [`conn::unbind`].
    /// Returns the number freed.
    pub fn expire(&mut self, now: u64) -> usize {
        self.expire_with(now, self.cfg.expire_budget).freed
    }

    /// [`Engine::expire`] examining at most `budget` sessions of both
    /// tables together, prefetching with the tables' hint
    /// ([`Engine::set_prefetch`]) (the poll loop's budget
    /// rule: `gatewayd`'s `engine_config::expire_budget`). The IPv6 table
    /// goes first with half the budget, then the IPv4 table with what is
    /// left, then the IPv6 table again: neither table's backlog holds the
    /// other's expiry back.
    #[inline]
    pub fn expire_with(&mut self, now: u64, budget: usize) -> crate::session::Expired {
        // Most polls: nothing due in either table (what the three walks
        // would find), tested inline in the poll loop.
        if !self.sessions.expiry_due(now) && !self.sessions6.expiry_due(now) {
            return crate::session::Expired::default();
        }
        self.expire_walk(now, budget)
    }

    /// [`Engine::expire_with`]'s walks of the two tables.
    #[inline(never)]
    fn expire_walk(&mut self, now: u64, budget: usize) -> crate::session::Expired {
        let mut done = self.expire6(now, budget / 2);
        let Engine { cfg, snap, sessions, counters, overloaded, sp, sp_due, .. } = self;
        done += sessions.expire_with(now, budget - done.examined, |i, s| {
            if s.is_template() {
                return persist::expire(counters, s);
            }
            let tcp = s.protocol() == crate::wire::ipv4::Protocol::Tcp;
            if let Some(wait) = synproxy::timer(sp, sp_due, i, i, s.flags, tcp) {
                return Some(wait);
            }
            conn::unbind(counters, overloaded, snap, cfg.workers, s);
            None
        });
        if done.examined < budget {
            done += self.expire6(now, budget - done.examined);
        }
        done
    }
}

// The worker matches an `Action` per packet: the tunnel type of TUN's
// variants fits in their padding, and it stays 32 bytes.
const _: () = assert!(std::mem::size_of::<Action>() == 32);

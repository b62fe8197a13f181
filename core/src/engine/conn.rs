//! Connection setup and teardown: a new session for the first packet of a
//! flow (service lookup, SYN and half-open checks, scheduling or the
//! persistence template, the mode's bind), FULLNAT local port allocation,
//! and IPVS's bind/unbind accounting (ActiveConn/InActConn, the overload
//! flag of the `-x`/`-y` thresholds, half-open and live gauges).
//!
//! Invariants: a session is counted once in its real server's
//! inactive gauge, or its active one while its TCP state is
//! [`State::is_active`], from insert to unbind;
//! every TCP session in NONE/SYN_RECV counts in `HalfOpen`; nothing here
//! allocates.

use super::ipv4::L4Info;
use super::Engine;
use gw_proto::ClientAddr;

use crate::client_addr;
use crate::counters::{Drop, Event, TrafficCells, WorkerCounters};
use crate::modes::{self, BindCx, Bound, Mode, ModeOp};
use crate::persist;
use crate::sched::{self, sip13_words, Dests, Flow};
use crate::service::{Dest, Service, Snapshot};
use crate::session::{fold_mul, Flags, FlowKey, Session};
use crate::tcp_state::{flags, Dir, State};
use crate::wire::ipv4::Protocol;

/// Tries per local address before moving to the next one.
const LPORT_TRIES: usize = 64;

/// IPVS's `net.ipv4.vs.conn_reuse_mode`: what a plain SYN that matches an
/// existing session of its client address and port does.
///
/// A client that reuses its source port (busy NAT gateways, load
/// generators) opens a new connection while the old one's session still
/// lingers. As the kernel (`ip_vs_in_hook`, `is_new_conn_expected`), the
/// old session then ends (with its accounting: InActConn, its local port,
/// its template's controlled count) and the SYN is scheduled as a new
/// connection when the old one is in TIME_WAIT or CLOSE, or with bit 2
/// also in FIN_WAIT when the gateway never sees the replies (DR, TUN). A
/// SYN whose session's real server or service was deleted is scheduled
/// anew too (the kernel's `expire_nodest_conn` for SYNs), never dropped.
/// A persistent service's template stays in charge: the new connection
/// goes through it, so it keeps its real server. Mode 0 keeps the old
/// session whatever its state, as IPVS with `conn_reuse_mode = 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnReuse(u8);

impl ConnReuse {
    /// The kernel's default (1).
    pub const DEFAULT: ConnReuse = ConnReuse(1);

    /// `mode` as the sysctl takes it: 0 (never), 1 (TIME_WAIT, CLOSE), 2 or
    /// 3 (also FIN_WAIT without replies seen). `None` above 3.
    pub fn new(mode: u8) -> Option<ConnReuse> {
        (mode <= 3).then_some(ConnReuse(mode))
    }

    /// The sysctl's value.
    pub fn mode(self) -> u8 {
        self.0
    }

    /// Whether a plain SYN that matched session `s` ends it and is
    /// scheduled anew; `dest_live` says whether `s`'s real server still
    /// exists.
    #[inline]
    pub fn reschedules(self, s: &Session, dest_live: bool) -> bool {
        self.reschedules_state(s.protocol(), s.state, s.flags, dest_live)
    }

    /// [`Self::reschedules`] for a session of either family.
    #[inline]
    pub fn reschedules_state(self, proto: Protocol, state: State, flags: Flags, dest_live: bool) -> bool {
        if self.0 == 0 || proto != Protocol::Tcp {
            return false;
        }
        !dest_live
            || matches!(state, State::TimeWait | State::Close)
            || (self.0 & 2 != 0 && state == State::FinWait && flags.contains(Flags::NO_OUT))
    }
}

impl Default for ConnReuse {
    fn default() -> ConnReuse {
        ConnReuse::DEFAULT
    }
}

/// What happens to the packets of a session whose real server is deleted
/// (`[ipvs] nodest_conn`). While the server sits in the control plane's
/// trash it can be re-added, and its sessions then go on as before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoDest {
    /// Dropped (`drop_dest_unavailable`) until the server is re-added, as
    /// IPVS with `net.ipv4.vs.expire_nodest_conn = 0`, its default.
    #[default]
    Drop,
    /// The session is expired at its next packet, as IPVS with
    /// `expire_nodest_conn = 1`: both ends then learn at once (a RST).
    Expire,
    /// Forwarded to the deleted server while it is in the trash (gatewayd's
    /// own: a server taken out by mistake loses nothing).
    Forward,
}

impl NoDest {
    /// Whether a session of real server `slot` forwards under `snap`.
    #[inline]
    pub fn forwards(self, snap: &Snapshot, slot: u16) -> bool {
        let slot = u32::from(slot);
        snap.dest_live(slot) || (self == NoDest::Forward && snap.dest_forwards(slot))
    }
}

/// A TCP SYN with none of ACK, RST, FIN: the only packet that opens a
/// connection.
#[inline]
pub(super) fn plain_syn(tcp_flags: u8) -> bool {
    tcp_flags & flags::SYN != 0 && tcp_flags & (flags::ACK | flags::RST | flags::FIN) == 0
}

/// Whether a client packet ends its session to be scheduled anew:
/// `Some(true)` for a new connection on a closing one's address
/// ([`ConnReuse`]), `Some(false)` for a datagram of a session with
/// one-packet scheduling (`-o`: every datagram scheduled anew, as IPVS);
/// `None` keeps it. Either family's: `s` is the session's protocol,
/// state, flags and real server, `p` the packet's protocol and TCP flags.
#[inline(always)]
pub(super) fn rescheduled(
    reuse: ConnReuse,
    snap: &Snapshot,
    s: (Protocol, State, Flags, u16),
    p: (Protocol, u8),
) -> Option<bool> {
    let (proto, state, flags, dest) = s;
    if plain_syn(p.1) && reuse.reschedules_state(proto, state, flags, snap.dest_live(u32::from(dest))) {
        return Some(true);
    }
    (flags.contains(Flags::ONE_PACKET) && p.0 == Protocol::Udp).then_some(false)
}

/// Whether a one-packet (`-o`) UDP session (`flags`; the bit is
/// SYNPROXY's on a TCP session, which the caller rules out) ends once the
/// packet from `dir` is forwarded. IPVS and DPVS never keep one: a DR or
/// TUN session, whose answers bypass the gateway, ends with its datagram;
/// a NAT or FULLNAT one, which the gateway keeps for the answer that must
/// come back through it, ends with that answer (a second answer finds no
/// session). Either way a DNS load balancer's table does not fill with
/// five-minute sessions of one datagram each.
#[inline(always)]
pub(super) fn ops_ends(flags: Flags, dir: Dir) -> bool {
    flags.contains(Flags::ONE_PACKET) && (dir == Dir::Output || flags.contains(Flags::NO_OUT))
}

/// Moves a gauge kept per family (`all` counts both families' sessions,
/// `v6_part` the IPv6 table's): one up (`up`) or down, in `v6_part` too
/// if the session is IPv6's (`v6`).
#[inline]
fn family_gauge(counters: &WorkerCounters, (all, v6_part): (Event, Event), v6: bool, up: bool) {
    for (e, moves) in [(all, true), (v6_part, v6)] {
        match (moves, up) {
            (false, _) => {}
            (true, true) => counters.event(e, 1),
            (true, false) => counters.event_cell(e).sub(1),
        }
    }
}

/// One more half-open TCP session (`sessions_half_open`, and
/// `sessions_half_open_ipv6` if `v6`).
#[inline]
pub(super) fn half_open_add(counters: &WorkerCounters, v6: bool) {
    family_gauge(counters, (Event::HalfOpen, Event::HalfOpen6), v6, true);
}

/// One half-open TCP session fewer ([`half_open_add`]'s undo).
#[inline]
fn half_open_sub(counters: &WorkerCounters, v6: bool) {
    family_gauge(counters, (Event::HalfOpen, Event::HalfOpen6), v6, false);
}

/// One more FULLNAT/NAT UDP session its real server has not answered
/// (`sessions_udp_unreplied`, and `sessions_udp_unreplied_ipv6` if `v6`):
/// flag `flags`.
#[inline]
pub(super) fn unreplied_add(counters: &WorkerCounters, flags: &mut Flags, v6: bool) {
    flags.insert(Flags::UDP_UNREPLIED);
    family_gauge(counters, (Event::UdpUnreplied, Event::UdpUnreplied6), v6, true);
}

/// [`unreplied_add`]'s undo: the server answered, or the session ended.
#[inline]
fn unreplied_sub(counters: &WorkerCounters, v6: bool) {
    family_gauge(counters, (Event::UdpUnreplied, Event::UdpUnreplied6), v6, false);
}

/// FULLNAT/NAT UDP sessions of the IPv4 table no server answered yet
/// (the limit `half_open_max` holds for them as for half-open TCP: a UDP
/// flood from made-up sources fills at most that share of the table).
#[inline]
pub(super) fn unreplied4(counters: &WorkerCounters) -> u64 {
    counters.event_count(Event::UdpUnreplied).saturating_sub(counters.event_count(Event::UdpUnreplied6))
}

/// Half-open TCP sessions of the IPv4 table (the limit `half_open_max`
/// holds; IPv6's is `sessions_half_open_ipv6` against `half_open_max6`).
#[inline]
fn half_open4(counters: &WorkerCounters) -> u64 {
    counters.event_count(Event::HalfOpen).saturating_sub(counters.event_count(Event::HalfOpen6))
}

/// A TCP state before the handshake completed.
#[inline]
pub(super) fn half_open(state: State) -> bool {
    state == State::None || state == State::SynRecv
}

/// A forwarded packet moved its session's TCP state from `old` to `new`
/// (`new != old`), in either family's table (IPv6's if `v6`): store it,
/// and keep the half-open counts and the real server's active/inactive
/// gauges in step.
#[inline(always)]
fn state_moved(
    counters: &WorkerCounters,
    (state, flags): (&mut State, &mut Flags),
    dest: u16,
    (old, new): (State, State),
    v6: bool,
) {
    *state = new;
    match (half_open(old), half_open(new)) {
        (true, false) => half_open_sub(counters, v6),
        (false, true) => half_open_add(counters, v6),
        _ => {}
    }
    let cells = &counters.dests[dest as usize];
    let was_active = flags.contains(Flags::ACTIVE);
    if new.is_active() && !was_active {
        flags.insert(Flags::ACTIVE);
        cells.active.add(1);
        cells.inactive.sub(1);
    } else if !new.is_active() && was_active {
        flags.remove(Flags::ACTIVE);
        cells.active.sub(1);
        cells.inactive.add(1);
    }
}

/// The moves of a packet that is forwarded (its step declines nothing
/// from here on), either family's: its session's TCP state by the
/// segment's flags (`tcp_flags` if `tcp`; UDP has no state to move)
/// through the state table of its direction (`table`), the forward
/// event, and the traffic counts of its real server and service (`bytes`
/// from the IP header on). Returns the states before and after (the
/// caller moves the session's timer by the new one's timeout).
#[inline(always)]
pub(super) fn forwarded(
    counters: &WorkerCounters,
    (state, flags): (&mut State, &mut Flags),
    (dest, service): (u16, u16),
    (dir, table): (Dir, Dir),
    (tcp, tcp_flags): (bool, u8),
    bytes: u64,
    v6: bool,
) -> (State, State) {
    let old = *state;
    let new = if tcp { crate::tcp_state::next(old, table, tcp_flags) } else { old };
    if new != old {
        state_moved(counters, (state, flags), dest, (old, new), v6);
    }
    // A UDP flow's first answer from its server.
    if !tcp && dir == Dir::Output && flags.contains(Flags::UDP_UNREPLIED) {
        flags.remove(Flags::UDP_UNREPLIED);
        unreplied_sub(counters, v6);
    }
    counters.event(if dir == Dir::Output { Event::FwdOut } else { Event::FwdIn }, 1);
    count_traffic(counters, (dest, service), dir, bytes);
    (old, new)
}

/// Counts a forwarded packet of `bytes` coming from `dir` for its real
/// server and its service, in either family. An ICMP error about a
/// session counts as its traffic too, as IPVS's `ip_vs_in_icmp` and
/// `handle_response_icmp` count it (`ip_vs_in_stats`, `ip_vs_out_stats`).
#[inline(always)]
pub(super) fn count_traffic(counters: &WorkerCounters, (dest, service): (u16, u16), dir: Dir, bytes: u64) {
    let account = |c: &TrafficCells| {
        if dir == Dir::Output {
            c.outpkts.add(1);
            c.outbytes.add(bytes);
        } else {
            c.inpkts.add(1);
            c.inbytes.add(bytes);
        }
    };
    account(&counters.dests[dest as usize]);
    account(&counters.services[service as usize]);
}

impl Engine {
    /// Creates the session for the first packet of a flow to a service.
    pub(super) fn new_session(&mut self, now: u64, p: L4Info) -> Result<u32, Drop> {
        let h_in = self.sessions.hash(&p.key);
        let svc = self.snap.service_slot(p.key.proto, p.key.dst, p.key.dport);
        self.new_session_hashed(now, p, h_in, svc)
    }

    /// [`Engine::new_session`] with the index hash of the flow's key,
    /// which the lookup that missed computed (`h_in ==
    /// self.sessions.hash(&p.key)`): the insert does not hash it again;
    /// and with its service's slot (`Snapshot::service_slot` of its
    /// destination), which the caller looked up for its SYNPROXY check.
    pub(super) fn new_session_hashed(
        &mut self,
        now: u64,
        p: L4Info,
        h_in: u64,
        svc: Option<u32>,
    ) -> Result<u32, Drop> {
        let Engine {
            cfg,
            snap,
            sessions,
            sessions6,
            svc: svc_state,
            counters,
            overloaded,
            ca,
            next_ports,
            lports,
            ..
        } = self;
        let (key, tcp_flags) = (p.key, p.tcp_flags);
        debug_assert_eq!(svc, snap.service_slot(key.proto, key.dst, key.dport));
        let Some(svc) = svc.map(|i| snap.service_at(i)) else {
            return Err(if snap.is_laddr(key.dst) || snap.is_masq_dest(key.proto, key.src, key.sport) {
                Drop::UnknownReply
            } else if snap.owns(key.dst) || cfg.ifaces.iter().any(|i| u32::from(i.addr) == key.dst) {
                Drop::NoService
            } else {
                Drop::NotForUs
            });
        };
        let tcp = key.proto == Protocol::Tcp;
        if tcp && !plain_syn(tcp_flags) {
            return Err(Drop::NoSessionNotSyn);
        }
        if tcp && half_open4(counters) >= cfg.half_open_max as u64 {
            return Err(Drop::HalfOpenLimit);
        }
        if !tcp && unreplied4(counters) >= cfg.half_open_max as u64 {
            return Err(Drop::UdpUnrepliedLimit);
        }
        let st = &mut svc_state[svc.slot as usize];
        if st.version != svc.version {
            st.version = svc.version;
            st.sched.reconfigure(&svc.prep);
            st.lport_next = 0;
        }
        let view = SvcDests { svc, counters, overloaded };
        let flow = Flow { src: key.src, sport: key.sport, dst: key.dst, dport: key.dport, now_ms: now };
        let mut pick = || sched::pick(&svc.prep, &mut st.sched, &view, &flow);
        // Persistence (-p): the template names the server (see `persist`).
        let (d, template) = match svc.persistent_ms {
            None => (pick().ok_or(Drop::NoDest)?, None),
            Some(ptime) => {
                let (d, t) = persist::schedule(sessions, counters, svc, &key, now, ptime, pick)?;
                (d, Some(t))
            }
        };
        let dest = &svc.dests[d];
        let held6 = super::nat64::Held6::of(snap, sessions6);
        let cx = BindCx { cfg, lports: *lports, sessions, st, svc, next: next_ports, held6 };
        let Bound { rs, local, mut flags, reply_hash } =
            modes::dispatch(dest.mode, Bind { cx, key: &key, dest, ttl: p.ttl })?;
        if svc.one_packet && key.proto == Protocol::Udp {
            flags |= Flags::ONE_PACKET;
        }
        let state = if tcp { State::None } else { State::Udp };
        let mut s = Session::new(
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
        // TCP: TOA or PROXY v1/v2; UDP: PROXY v2 on the first datagram (UOA).
        let pp = client_addr::applies(svc.client_addr, dest.mode, tcp);
        if pp {
            s.flags = flags | client_addr::flags_of(svc.client_addr);
        } else {
            s.flags = flags;
        }
        let i = sessions
            .insert_with_hashes(s, h_in, reply_hash, now, snap.timeouts.of_ms(state))
            .map_err(|_| Drop::TableFull)?;
        if pp && svc.client_addr != ClientAddr::Toa {
            let len = client_addr::proxy_len(svc.client_addr == ClientAddr::ProxyV2, &s);
            ca.set(i, p.seq, len);
        }
        if let Some(t) = template {
            persist::attach(sessions, t, i);
        }
        counters.event(Event::SessionsCreated, 1);
        counters.event(Event::SessionsLive, 1);
        if tcp {
            half_open_add(counters, false);
        } else if !s.flags.contains(Flags::NO_OUT) {
            // DR/TUN: the answers bypass the gateway, never counted.
            unreplied_add(counters, &mut sessions.get_mut(i).flags, false);
        }
        for cells in [&counters.dests[dest.slot as usize], &counters.services[svc.slot as usize]] {
            cells.conns.add(1);
        }
        let cells = &counters.dests[dest.slot as usize];
        cells.inactive.add(1);
        // IPVS's bind rule: at the upper threshold the server is overloaded.
        let upper = per_worker(dest.upper, cfg.workers);
        if upper != 0 && cells.active.get() + cells.inactive.get() >= upper as u64 {
            overloaded[dest.slot as usize] = true;
        }
        Ok(i)
    }
}

/// Binding a new connection, run with its mode's type. A routed mode needs
/// a TTL above 1 (checked after scheduling, as before the mode existed).
struct Bind<'a> {
    cx: BindCx<'a>,
    key: &'a FlowKey,
    dest: &'a Dest,
    ttl: u8,
}

impl ModeOp for Bind<'_> {
    type Out = Result<Bound, Drop>;

    #[inline(always)]
    fn run<M: Mode>(mut self) -> Result<Bound, Drop> {
        if M::ROUTED && self.ttl <= 1 {
            return Err(Drop::TtlExceeded);
        }
        M::bind(&mut self.cx, self.key, self.dest)
    }
}

/// This worker's share of a gateway-wide connection threshold.
#[inline]
pub(super) fn per_worker(threshold: u32, workers: u32) -> u32 {
    if threshold == 0 {
        0
    } else {
        threshold.div_ceil(workers.max(1))
    }
}

/// Accounting when connection `s` goes away: gauges, counters, and IPVS's
/// unbind rule for the overload flag (clear below the lower threshold, or
/// below 3/4 of the upper one when there is no lower threshold).
pub(crate) fn unbind(
    counters: &WorkerCounters,
    overloaded: &mut [bool],
    snap: &Snapshot,
    workers: u32,
    s: &Session,
) {
    unbind_parts(counters, overloaded, snap, workers, s.dest, s.flags, (s.protocol(), s.state), false);
}

/// [`unbind`] for a session of either family (IPv6's if `v6`), from its
/// real-server slot, flags, protocol and state.
#[allow(clippy::too_many_arguments)]
pub(crate) fn unbind_parts(
    counters: &WorkerCounters,
    overloaded: &mut [bool],
    snap: &Snapshot,
    workers: u32,
    dest: u16,
    flags: Flags,
    (proto, state): (Protocol, State),
    v6: bool,
) {
    let cells = &counters.dests[dest as usize];
    if flags.contains(Flags::ACTIVE) {
        cells.active.sub(1);
    } else {
        cells.inactive.sub(1);
    }
    counters.event(Event::SessionsExpired, 1);
    counters.event_cell(Event::SessionsLive).sub(1);
    if proto == Protocol::Tcp && half_open(state) {
        half_open_sub(counters, v6);
    }
    if proto == Protocol::Udp && flags.contains(Flags::UDP_UNREPLIED) {
        unreplied_sub(counters, v6);
    }
    let total = cells.active.get() + cells.inactive.get();
    let clear = match snap.dest_thresholds(u32::from(dest)) {
        None => true,
        Some((upper, lower)) => {
            let (u, l) = (per_worker(upper, workers) as u64, per_worker(lower, workers) as u64);
            if l != 0 {
                total < l
            } else if u != 0 {
                total * 4 < u * 3
            } else {
                true
            }
        }
    };
    if clear {
        overloaded[dest as usize] = false;
    }
}

/// Picks LIP:lport for a new FULLNAT session of the client flow `flow`
/// toward `rs`, real server slot `dest`: a port of this worker's partition
/// whose reply key (proto, RIP, rport, LIP, lport) is not live, so a port
/// is never handed out twice toward the same real server while a session
/// holds it, and can be reused at once toward another real server.
///
/// The first choice is the real server's [`NextPort`]: a local address
/// and port that a keyed hash picked when the server's previous connection
/// was bound, and whose two lines (its reply-port count and its reply
/// bucket, which the check reads and the insert writes) were prefetched
/// then. A new flow's bind then misses neither: the misses of one flow
/// overlap the work of the flows between two binds to the same server,
/// where reading them at the bind put one dependent miss on every new
/// flow's path (issue 14). The choice is RFC 6056's Algorithm 1 ("simple
/// port randomization", §3.3.1) with a keyed hash for the random function:
/// a host that sees one connection's local port cannot tell the next one's,
/// so it cannot guess LIP:lport to spoof a reply, while DPVS's partition
/// (`lport % workers == worker`) is kept.
///
/// When there is no next port (the server's first connection on this
/// worker, a port-0 server met on another port than last time, an address
/// deleted since) or it is taken, [`alloc_lport_search`].
///
/// Returns the local address and port, and the index hash of the reply
/// key they make when the bind computed it (the session's insert then
/// does not hash that key again).
pub(crate) fn alloc_lport(
    cx: &mut BindCx<'_>,
    flow: &FlowKey,
    rs: (u32, u16),
    dest: u32,
) -> Result<((u32, u16), Option<u64>), Drop> {
    let n = cx.svc.laddrs.len();
    if n == 0 {
        return Err(Drop::NoLaddr);
    }
    let Some(part) = cx.lports else { return Err(Drop::LaddrExhausted) };
    let (svc, sessions) = (cx.svc, cx.sessions);
    let held6 = |lip: u32, lport: u16| cx.held6.is_some_and(|h| h.holds(flow.proto, rs, lip, lport));
    let taken = cx.next.get_mut(dest as usize).and_then(|c| c.take(svc, flow.proto, rs)).and_then(|c| {
        // Both lines are in cache: a count of 0 says free without the
        // bucket; else the bucket's signatures (a matching one is taken for
        // the key: reading its session to be sure was a random cache miss,
        // in about one bind in five at 1 M live, for a port that almost
        // always is taken), then this address's next ports whose count is
        // 0 (their counts share the line).
        let free = sessions.reply_port_unused(c.lip, c.lport) || !sessions.out_hash_may_be_live(c.h);
        if free && !held6(c.lip, c.lport) {
            sessions.prefetch_insert_alt(c.h, true);
            return Some(((c.lip, c.lport), Some(c.h)));
        }
        let tries = (part.span as usize).min(LPORT_TRIES) as u32;
        let p = (1..tries)
            .map(|t| part.port(c.offset, t))
            .find(|&p| sessions.reply_port_unused(c.lip, p) && !held6(c.lip, p))?;
        // The insert writes this port's reply bucket: start its miss now.
        let h = sessions.hash(&c.reply_key_at(flow.proto, rs, p));
        sessions.prefetch_out_bucket(h);
        Some(((c.lip, p), Some(h)))
    });
    let (local, reply_hash) = match taken {
        Some(found) => found,
        None => alloc_lport_search(cx, flow, rs, part)?,
    };
    if let Some(c) = cx.next.get_mut(dest as usize) {
        cx.st.binds = cx.st.binds.wrapping_add(1);
        *c = NextPort::choose(cx.cfg.seed, svc, rs, local, part, cx.st.binds);
        c.proto = u8::from(flow.proto);
        c.h = sessions.hash(&c.reply_key(flow.proto, rs));
        sessions.prefetch_reply(c.lip, c.lport, c.h);
    }
    Ok((local, reply_hash))
}

/// The ports of this worker's partition of the local port range: `span`
/// ports from `first`, `nw` apart. The engine works it out once
/// ([`Partition::of`] its configuration): three divisions a new flow no
/// longer makes, each tens of cycles (issue 14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Partition {
    first: u32,
    span: u32,
    nw: u32,
}

impl Partition {
    /// This worker's partition of `cfg.lport_range`; `None` when it has no
    /// port.
    pub(crate) fn of(cfg: &super::EngineConfig) -> Option<Partition> {
        Partition::new(cfg.lport_range, cfg.worker, cfg.workers)
    }

    /// Worker `w` of `nw`'s partition of the ports `lo..=hi`.
    fn new((lo, hi): (u16, u16), w: u32, nw: u32) -> Option<Partition> {
        let nw = nw.max(1);
        // First port of this worker's partition at or above `lo`.
        let first = lo as u32 + (w + nw - lo as u32 % nw) % nw;
        (first <= hi as u32).then(|| Partition { first, span: (hi as u32 - first) / nw + 1, nw })
    }

    /// The place in the partition (below `span`) that the low half of a
    /// keyed hash `h` names: a multiply and a shift, not a division.
    #[inline(always)]
    pub(super) fn offset_of(self, h: u64) -> u32 {
        (((h & 0xffff_ffff) * u64::from(self.span)) >> 32) as u32
    }

    /// How many ports the partition holds.
    #[inline(always)]
    pub(super) fn span(self) -> u32 {
        self.span
    }

    /// The port `k` places after the one at `offset` (below `span`),
    /// around the end of the partition. Divides only when `k` is a whole
    /// partition or more (the search's cursor): a next port's `k` is 0 or
    /// a few.
    #[inline(always)]
    pub(super) fn port(self, offset: u32, k: u32) -> u16 {
        debug_assert!(offset < self.span);
        let i = offset + k;
        let i = if i < self.span {
            i
        } else if i - self.span < self.span {
            i - self.span
        } else {
            i % self.span
        };
        (self.first + i * self.nw) as u16
    }
}

/// A real server's next FULLNAT local address and port on this worker
/// ([`alloc_lport`]), by real-server slot; 32 bytes. Used once, and only
/// while the address is still the service's (at the index it was chosen
/// from: local addresses come and go without a new service version) and
/// for the same real server and protocol (a slot may serve another service
/// later, and a port-0 server's port is the packet's; `h` is the hash of
/// that reply key): what makes it a valid choice, its port being free, is
/// checked at the bind.
#[derive(Clone, Copy, Debug, Default)]
pub struct NextPort {
    /// The local address; 0 (never one): none.
    lip: u32,
    lport: u16,
    rport: u16,
    rip: u32,
    /// The address's index in the service's list.
    k: u32,
    /// The IP protocol of the reply key.
    proto: u8,
    /// The port's place in the partition, where the search goes on when
    /// the port is taken.
    offset: u32,
    /// The reply key's index hash.
    h: u64,
}

impl NextPort {
    /// The next port toward real server `rs` of `svc` for protocol
    /// `proto`, if it was chosen for them and its address is still the
    /// service's; it is used up.
    #[inline(always)]
    fn take(&mut self, svc: &Service, proto: Protocol, rs: (u32, u16)) -> Option<NextPort> {
        let c = std::mem::take(self);
        let lip_kept = c.lip != 0 && svc.laddrs.get(c.k as usize) == Some(&c.lip);
        (lip_kept && (c.rip, c.rport) == rs && c.proto == u8::from(proto)).then_some(c)
    }

    /// The local address and port it holds, if any (for tests).
    #[cfg(test)]
    pub(crate) fn local(&self) -> Option<(u32, u16)> {
        (self.lip != 0).then_some((self.lip, self.lport))
    }

    fn reply_key(&self, proto: Protocol, rs: (u32, u16)) -> FlowKey {
        self.reply_key_at(proto, rs, self.lport)
    }

    /// The reply key toward `rs` of its local address and port `lport`.
    fn reply_key_at(&self, proto: Protocol, rs: (u32, u16), lport: u16) -> FlowKey {
        FlowKey { proto, src: rs.0, sport: rs.1, dst: self.lip, dport: lport }
    }

    /// Chooses the next local address and port toward `rs` after `last`,
    /// the `seq`-th choice of the service on this worker: a keyed hash of
    /// them ([`next_port_hash`]) names the address (its high half) and the
    /// port's place in the partition (its low half). Its protocol and its
    /// reply key's hash `h` are the caller's to set.
    fn choose(
        secret: u64,
        svc: &Service,
        rs: (u32, u16),
        last: (u32, u16),
        part: Partition,
        seq: u64,
    ) -> NextPort {
        let h = next_port_hash(secret, svc.slot, rs, last, seq);
        let k = laddr_index(h, svc.laddrs.len());
        let offset = part.offset_of(h);
        let lport = part.port(offset, 0);
        NextPort { lip: svc.laddrs[k], lport, rport: rs.1, rip: rs.0, k: k as u32, proto: 0, offset, h: 0 }
    }
}

/// The keyed hash of [`NextPort::choose`]: SipHash-1-3 keyed by the
/// secret (with the service slot in the key's second half) over the real
/// server, the last choice and the low 32 bits of the sequence number,
/// two words. The sequence number does not repeat within 2^32 binds of
/// the worker, so the choices do not cycle through the few ports a chain
/// of hashes of the last one alone would meet. Two words and the secret
/// as the key, rather than four words under a zero key, are two
/// compression rounds fewer per new FULLNAT flow (issue 14).
fn next_port_hash(secret: u64, svc: u32, rs: (u32, u16), last: (u32, u16), seq: u64) -> u64 {
    let key = (secret ^ NEXT_PORT_TWEAK, secret.rotate_left(32) ^ u64::from(svc));
    sip13_words(
        key,
        [
            u64::from(rs.0) << 32 | u64::from(last.0),
            (seq as u32 as u64) << 32 | u64::from(rs.1) << 16 | u64::from(last.1),
        ],
    )
}

// One line holds two real servers' next ports.
const _: () = assert!(std::mem::size_of::<NextPort>() == 32);

/// Separates the next-port hash's key from the flow's port hash.
const NEXT_PORT_TWEAK: u64 = 0x0e47_90c7_11a1_5eed;

/// [`alloc_lport`] without a next port: the local addresses of the service
/// in turn from one that a keyed hash of the flow names ([`laddr_start`]),
/// and on each the ports of this worker's partition, skipping any port
/// whose reply key is still live.
///
/// Where the search starts is RFC 6056's Algorithm 3 ("simple hash-based
/// port selection", §3.3.3): a keyed hash of the flow (client, VIP, real
/// server, local address; the key is the worker's secret seed) plus a
/// counter that moves on every attempt.
///
/// O(1), with one cache miss in the usual case: the first candidate's
/// reply-port count and its reply bucket line (the very line the session's
/// insert then writes) are read at once; the bucket's ways are compared
/// only when the count says some reply key uses the port. When it is
/// taken, the next candidates are checked against the table's reply-port
/// counts (a few MiB, one line holds 64 consecutive ports) and the first
/// port no reply key uses at all is taken without reading the reply index:
/// a crowded table (10 M sessions on 12 M ports) costs one more line, not
/// a bucket line per busy port. Only when all of them are counted does the
/// search look each reply key up.
///
/// The local address is not a service-wide round robin: that one moved in
/// step with a round-robin scheduler, so with 2 real servers and an even
/// number of local addresses each server only ever met half of them (with
/// N servers and N addresses, one each), and a table past half of the
/// pairs it used found every count taken and looked up 64 reply keys per
/// address, about 8 us per new flow at 1 M live (issue 14).
fn alloc_lport_search(
    cx: &mut BindCx<'_>,
    flow: &FlowKey,
    rs: (u32, u16),
    part: Partition,
) -> Result<((u32, u16), Option<u64>), Drop> {
    let BindCx { cfg, sessions, st, svc, held6, .. } = cx;
    let held6 = |lip: u32, lport: u16| held6.is_some_and(|h| h.holds(flow.proto, rs, lip, lport));
    let n = svc.laddrs.len();
    let span = part.span;
    let tries = (span as usize).min(LPORT_TRIES);
    let port = |offset: u32, k: u32| part.port(offset, k);
    let reply =
        |lip: u32, lport: u16| FlowKey { proto: flow.proto, src: rs.0, sport: rs.1, dst: lip, dport: lport };
    let free = |lip: u32, lport: u16| sessions.lookup_out(&reply(lip, lport)).is_none() && !held6(lip, lport);
    let k0 = laddr_start(cfg.seed, flow, n);
    for k in 0..n {
        let lip = svc.laddrs[(k0 + k) % n];
        let offset = (port_offset(cfg.seed, flow, rs, lip) % span as u64) as u32;
        let start = st.lport_next as u32;
        // The first candidate's reply-port count and its reply bucket are
        // both read, at once: the two cache misses then overlap, and the
        // insert finds both lines in cache (it increments the one and
        // writes the other). Reading the count only after the lookup (or
        // only at the insert) put its miss after the bucket's (issue 14).
        // The bucket's ten signatures are compared only when the count is
        // not 0 (a port no reply key uses is free whatever the bucket
        // holds), and no session is read: a matching one counts as taken.
        let p0 = port(offset, start);
        let k0 = reply(lip, p0);
        let h0 = sessions.hash(&k0);
        sessions.load_out_bucket(h0);
        let unused = sessions.reply_port_unused(lip, p0);
        let t = if (unused || !sessions.out_hash_may_be_live(h0)) && !held6(lip, p0) {
            Some(0)
        } else {
            (1..tries as u32)
                .find(|&t| {
                    let p = port(offset, start + t);
                    sessions.reply_port_unused(lip, p) && !held6(lip, p)
                })
                .or_else(|| (1..tries as u32).find(|&t| free(lip, port(offset, start + t))))
        };
        st.lport_next = st.lport_next.wrapping_add(t.map_or(tries, |t| t as usize + 1) as u16);
        if let Some(t) = t {
            return Ok(((lip, port(offset, start + t)), (t == 0).then_some(h0)));
        }
    }
    Err(Drop::LaddrExhausted)
}

/// The index, below `n`, of the local address a new FULLNAT session of
/// `flow` tries first: a keyed multiply hash of the flow (not of the real
/// server), so every (real server, local address) pair takes its share of
/// new flows whatever the scheduler's order. Not a secret: the port's
/// offset ([`port_offset`]) is.
#[inline]
fn laddr_start(secret: u64, flow: &FlowKey, n: usize) -> usize {
    let a = (u64::from(flow.src) << 32 | u64::from(flow.dst)) ^ secret;
    let b = (u64::from(flow.sport) << 32 | u64::from(flow.dport) << 16 | u64::from(u8::from(flow.proto)))
        ^ LADDR_TWEAK;
    laddr_index(fold_mul(fold_mul(a, b), 0x9e37_79b9_7f4a_7c15), n)
}

/// The local address, below `n`, that a keyed hash `h` of a new flow
/// names first: its high half scaled to `n`. Every family's bind starts
/// there (IPv4 from [`laddr_start`], FULLNAT66 and NAT64 from the IPv6
/// table's keyed hash of the flow), not from a service-wide round robin,
/// which moves in step with a round-robin scheduler (see [`alloc_lport`]).
#[inline]
pub(super) fn laddr_index(h: u64, n: usize) -> usize {
    (((h >> 32) * n as u64) >> 32) as usize
}

/// Separates the local-address hash's key from the others (same seed).
const LADDR_TWEAK: u64 = 0x1add_5eed_7e11_0c4b;

/// RFC 6056's F(): a keyed hash of the flow. SipHash-1-3 over the secret
/// followed by the flow, as the RFC's MD5(addresses, ports, secret_key);
/// no allocation. Four whole words ([`sip13_words`], the bytes std's
/// `DefaultHasher` hashed here before, in straight-line code): six small
/// writes to std's hasher took its tail-buffering path, 366 instructions
/// per new flow; one `write` of the 32 bytes 260; the words about 120
/// (issue 14).
fn port_offset(secret: u64, flow: &FlowKey, rs: (u32, u16), lip: u32) -> u64 {
    let ports = u64::from(flow.sport) << 48
        | u64::from(flow.dport) << 32
        | u64::from(rs.1) << 16
        | u64::from(u8::from(flow.proto));
    sip13_words(
        (0, 0),
        [
            secret ^ PORT_SECRET_TWEAK,
            u64::from(flow.src) << 32 | u64::from(flow.dst),
            u64::from(rs.0) << 32 | u64::from(lip),
            ports,
        ],
    )
}

/// Separates the port hash's key from the session index's (same seed).
const PORT_SECRET_TWEAK: u64 = 0x5eed_0f10_ca1f_9047;

/// What the schedulers see of a service's servers on this worker.
pub(super) struct SvcDests<'a> {
    pub(super) svc: &'a Service,
    pub(super) counters: &'a WorkerCounters,
    pub(super) overloaded: &'a [bool],
}

impl Dests for SvcDests<'_> {
    fn len(&self) -> usize {
        self.svc.dests.len()
    }
    fn weight(&self, i: usize) -> u32 {
        self.svc.dests[i].weight
    }
    fn addr(&self, i: usize) -> u32 {
        crate::service::sched_addr(self.svc.dests[i].addr)
    }
    fn port(&self, i: usize) -> u16 {
        self.svc.dests[i].port
    }
    fn id(&self, i: usize) -> u32 {
        self.svc.dests[i].slot
    }
    fn conns(&self, i: usize) -> (u32, u32) {
        let c = &self.counters.dests[self.svc.dests[i].slot as usize];
        (c.active.get().min(u32::MAX as u64) as u32, c.inactive.get().min(u32::MAX as u64) as u32)
    }
    fn overloaded(&self, i: usize) -> bool {
        self.overloaded.get(self.svc.dests[i].slot as usize).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use gw_proto::ForwardMode;

    use super::*;

    fn session(state: State, mode: ForwardMode) -> Session {
        let mut s = Session::new(Protocol::Tcp, (1, 40_000), (2, 80), (3, 80), (4, 1024), state, mode, 0, 0);
        if !modes::routed(mode) {
            // DR and TUN never see replies (what their bind says).
            s.flags = Flags::NO_OUT;
        }
        s
    }

    /// Every TCP state a plain SYN can meet, in every mode, against the
    /// kernel's `is_new_conn_expected` for `conn_reuse_mode` 0..=3.
    #[test]
    fn a_plain_syn_reschedules_exactly_the_states_the_kernel_does() {
        let modes = [ForwardMode::FullNat, ForwardMode::Masq, ForwardMode::Route, ForwardMode::Tunnel];
        for state in State::ALL.into_iter().filter(|s| *s != State::Udp) {
            for mode in modes {
                let s = session(state, mode);
                let no_out = s.flags.contains(Flags::NO_OUT);
                for m in 0..=3u8 {
                    let reuse = ConnReuse::new(m).unwrap();
                    let expected = m != 0
                        && (matches!(state, State::TimeWait | State::Close)
                            || (m & 2 != 0 && state == State::FinWait && no_out));
                    assert_eq!(reuse.reschedules(&s, true), expected, "{state:?} {mode:?} mode {m}");
                    // A deleted real server: every state is scheduled anew
                    // unless the knob is 0.
                    assert_eq!(reuse.reschedules(&s, false), m != 0, "{state:?} {mode:?} mode {m}, no dest");
                }
            }
        }
        assert_eq!(ConnReuse::new(4), None);
        assert_eq!(ConnReuse::default().mode(), 1, "the kernel's default");
    }

    #[test]
    fn udp_sessions_are_never_rescheduled_by_the_knob() {
        let s = Session::new(
            Protocol::Udp,
            (1, 5),
            (2, 80),
            (3, 80),
            (4, 1024),
            State::Udp,
            ForwardMode::FullNat,
            0,
            0,
        );
        assert!(!ConnReuse::new(3).unwrap().reschedules(&s, false));
    }

    /// A partition's ports around its end are the modulo's, for the
    /// offsets a bind draws (below the span) and any step, the search
    /// cursor's whole laps included; the partition of each worker of a
    /// range holds exactly the range's ports of its class.
    #[test]
    fn partition_ports_wrap_as_the_modulo() {
        for (range, nw) in
            [((1024, 65535), 1), ((1024, 65535), 3), ((2000, 2127), 2), ((5, 5), 1), ((60000, 60003), 5)]
        {
            for w in 0..nw {
                let Some(p) = Partition::new(range, w, nw) else {
                    assert!((range.0..=range.1).all(|port| u32::from(port) % nw != w), "{range:?} {w}/{nw}");
                    continue;
                };
                let mine: Vec<u16> = (range.0..=range.1).filter(|&port| u32::from(port) % nw == w).collect();
                assert_eq!((0..p.span).map(|o| p.port(o, 0)).collect::<Vec<_>>(), mine);
                for offset in [0, 1, p.span / 2, p.span - 1].into_iter().filter(|&o| o < p.span) {
                    for k in [0, 1, 63, p.span - 1, p.span, p.span + 1, 2 * p.span + 5, 65535 + 63] {
                        let want = (p.first + (offset + k) % p.span * p.nw) as u16;
                        assert_eq!(p.port(offset, k), want, "{range:?} {w}/{nw} offset {offset} k {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn only_a_syn_without_ack_rst_fin_opens_a_connection() {
        assert!(plain_syn(flags::SYN));
        assert!(plain_syn(flags::SYN | 0x08), "PSH does not matter");
        for other in [flags::ACK, flags::RST, flags::FIN] {
            assert!(!plain_syn(flags::SYN | other));
        }
        assert!(!plain_syn(flags::ACK));
    }
}

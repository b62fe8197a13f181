//! The packet engine of one worker: a pure function of (state, now, frame).
//!
//! [`Engine::process`] takes one Ethernet frame, rewrites it in place and says
//! what to do with it ([`Action`]). It never reads a clock (the caller passes
//! `now` in milliseconds), never allocates and never blocks, so it runs the
//! same on a `Vec<u8>` in a unit test and on an mbuf in a DPDK worker.
//!
//! Order of checks for an IPv4 frame: Ethernet destination, IPv4 header
//! (length, version, IHL, checksum), source address sanity, fragments, then
//! L4 header, then session lookup (client side, then real-server side), then
//! service lookup for a new session. Every exit that does not forward names a
//! [`Drop`] reason, counted by the caller.

use std::net::Ipv4Addr;
use std::sync::Arc;

use gw_proto::ForwardMode;

use crate::counters::{Drop, Event, TrafficCells, WorkerCounters};
use crate::mailbox::{ConnQuery, SCAN_PER_CHUNK};
use crate::nat::{self, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::route::{Iface, Routes};
use crate::sched::{self, Dests, Flow, SchedState};
use crate::service::{Service, Snapshot};
use crate::session::{
    forward_mode, FlowKey, Session, SessionTable, FLAG_ACTIVE, FLAG_NO_OUT, FLAG_ONE_PACKET, FLAG_TEMPLATE,
    NIL,
};
use crate::tcp_state::{self, flags, Dir, State};
use crate::tunnel::{self, OUTER_LEN};
use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::{arp, icmpv4, ipv4, tcp, udp};

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
    /// Local ports to allocate from, inclusive.
    pub lport_range: (u16, u16),
    /// Seed of the session hash.
    pub seed: u64,
    /// Most sessions examined per expiry call.
    pub expire_budget: usize,
    /// Service slots (sizes the per-service scheduler state).
    pub max_services: usize,
    /// Most TCP sessions in NONE/SYN_RECV at once; new connections beyond
    /// it are dropped (`drop_half_open_limit`) so a SYN flood cannot take
    /// the table from established sessions.
    pub half_open_max: usize,
}

/// A TCP state before the handshake completed.
#[inline]
fn half_open(state: u8) -> bool {
    state == State::None as u8 || state == State::SynRecv as u8
}

/// What to do with a frame after [`Engine::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// L3 is rewritten; send out `port` to the MAC of `next_hop` (host order).
    Forward { port: u16, next_hop: u32 },
    /// Rewritten in place into a reply (ICMP echo, ICMP error), MACs set:
    /// cut the frame to `len` bytes and send it out `port`.
    Reply { port: u16, len: usize },
    /// TUN mode: prepend [`OUTER_LEN`] bytes, encapsulate with
    /// [`tunnel::encapsulate`] from `src` to `dst` (host order), and send out
    /// `port` to the MAC of `next_hop`.
    Encap { port: u16, next_hop: u32, src: u32, dst: u32 },
    /// An ARP packet from `sender` on `port`: learn it; if `reply`, the frame
    /// was turned into an ARP reply and goes back out `port`.
    Arp { port: u16, sender: (u32, MacAddr), reply: bool },
    /// Not forwarded.
    Drop(Drop),
}

#[derive(Clone, Debug, Default)]
struct SvcState {
    version: u64,
    sched: SchedState,
    laddr_next: u32,
    lport_next: u16,
}

/// What the checks of an IPv4 TCP/UDP packet found out.
#[derive(Clone, Copy, Debug)]
struct L4Info {
    key: FlowKey,
    tcp_flags: u8,
    ttl: u8,
    /// IPv4 total length.
    tl: usize,
    dont_frag: bool,
}

/// One worker's sessions and packet logic.
pub struct Engine {
    cfg: EngineConfig,
    snap: Arc<Snapshot>,
    sessions: SessionTable,
    svc: Box<[SvcState]>,
    counters: Arc<WorkerCounters>,
    /// IPVS's IP_VS_DEST_F_OVERLOAD per real-server slot, from this worker's
    /// share of the `-x`/`-y` thresholds.
    overloaded: Box<[bool]>,
}

/// Tries per local address before moving to the next one.
const LPORT_TRIES: usize = 64;

fn bad_source(ip: u32) -> bool {
    let first = ip >> 24;
    ip == 0 || ip == u32::MAX || first == 127 || (first & 0xf0) == 0xe0
}

impl Engine {
    pub fn new(cfg: EngineConfig, snap: Arc<Snapshot>, counters: Arc<WorkerCounters>, now_ms: u64) -> Engine {
        let sessions = SessionTable::new(cfg.sessions, cfg.seed, now_ms);
        let svc = vec![SvcState::default(); cfg.max_services].into_boxed_slice();
        let overloaded = vec![false; counters.dests.len()].into_boxed_slice();
        counters.event_cell(Event::SessionTableBytes).set(sessions.memory_bytes() as u64);
        counters.event_cell(Event::SessionCapacity).set(sessions.capacity() as u64);
        Engine { cfg, snap, sessions, svc, counters, overloaded }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    /// Switches to a new configuration and returns the old one. The caller
    /// drops it, then reports the new generation
    /// ([`WorkerCounters::generation`]): the control plane holds every
    /// retired snapshot until all workers report a newer generation, so the
    /// last reference is never dropped on a worker.
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) -> Arc<Snapshot> {
        std::mem::replace(&mut self.snap, snap)
    }

    pub fn iface(&self, port: u16) -> Option<&Iface> {
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

    /// Processes one frame received on `port`.
    pub fn process(&mut self, now: u64, port: u16, frame: &mut [u8]) -> Action {
        let Some(iface) = self.iface(port).copied() else {
            return Action::Drop(Drop::NotForUs);
        };
        let (dst_mac, ethertype) = match ethernet::Frame::new_checked(&*frame) {
            Ok(f) => (f.dst_addr(), f.ethertype()),
            Err(_) => return Action::Drop(Drop::EthTruncated),
        };
        if dst_mac != iface.mac && !dst_mac.is_broadcast() {
            return Action::Drop(Drop::NotOurMac);
        }
        match ethertype {
            EtherType::Arp => self.arp(&iface, frame),
            EtherType::Ipv4 => self.ipv4(now, &iface, frame),
            _ => Action::Drop(Drop::UnsupportedEthertype),
        }
    }

    fn arp(&mut self, iface: &Iface, frame: &mut [u8]) -> Action {
        let (l2, l3) = frame.split_at_mut(ethernet::HEADER_LEN);
        let mut a = match arp::Packet::new_checked(l3) {
            Ok(a) => a,
            Err(_) => return Action::Drop(Drop::ArpMalformed),
        };
        let sha = a.source_hardware_addr();
        let spa = u32::from(a.source_protocol_addr());
        let tpa = u32::from(a.target_protocol_addr());
        if bad_source(spa) || !sha.is_unicast() {
            return Action::Drop(Drop::ArpMalformed);
        }
        match a.operation() {
            arp::Operation::Request if self.answers_arp_for(iface, tpa) => {
                a.set_operation(arp::Operation::Reply);
                a.set_target_hardware_addr(sha);
                a.set_target_protocol_addr(Ipv4Addr::from(spa));
                a.set_source_hardware_addr(iface.mac);
                a.set_source_protocol_addr(Ipv4Addr::from(tpa));
                let mut eth = ethernet::Frame::new_unchecked(l2);
                eth.set_dst_addr(sha);
                eth.set_src_addr(iface.mac);
                self.counters.event(Event::ArpRequestsAnswered, 1);
                Action::Arp { port: iface.port, sender: (spa, sha), reply: true }
            }
            arp::Operation::Reply if tpa == u32::from(iface.addr) || self.snap.owns(tpa) => {
                Action::Arp { port: iface.port, sender: (spa, sha), reply: false }
            }
            arp::Operation::Request | arp::Operation::Reply => Action::Drop(Drop::ArpNotForUs),
            _ => Action::Drop(Drop::ArpMalformed),
        }
    }

    fn ipv4(&mut self, now: u64, iface: &Iface, frame: &mut [u8]) -> Action {
        let l3 = &mut frame[ethernet::HEADER_LEN..];
        let ip = match ipv4::Packet::new_checked(&*l3) {
            Ok(p) => p,
            Err(_) => return Action::Drop(Drop::Ipv4Malformed),
        };
        if !ip.verify_checksum() {
            return Action::Drop(Drop::Ipv4BadChecksum);
        }
        let src = u32::from(ip.src_addr());
        let dst = u32::from(ip.dst_addr());
        if bad_source(src) {
            return Action::Drop(Drop::BadSourceAddr);
        }
        if ip.more_frags() || ip.frag_offset() != 0 {
            return Action::Drop(Drop::Fragment);
        }
        let hl = ip.header_len();
        let tl = ip.total_len() as usize;
        let ttl = ip.ttl();
        let dont_frag = ip.dont_frag();
        let proto = u8::from(ip.protocol());
        match proto {
            PROTO_TCP | PROTO_UDP => {
                let l4 = &l3[hl..tl];
                let (sport, dport, tcp_flags) = if proto == PROTO_TCP {
                    match tcp::Packet::new_checked(l4) {
                        Ok(t) => (t.src_port(), t.dst_port(), t.flags()),
                        Err(_) => return Action::Drop(Drop::L4Malformed),
                    }
                } else {
                    match udp::Packet::new_checked(l4) {
                        Ok(u) => (u.src_port(), u.dst_port(), 0),
                        Err(_) => return Action::Drop(Drop::L4Malformed),
                    }
                };
                if sport == 0 || dport == 0 {
                    return Action::Drop(Drop::L4Malformed);
                }
                let key = FlowKey { proto, src, sport, dst, dport };
                self.l4(now, iface, frame, L4Info { key, tcp_flags, ttl, tl, dont_frag })
            }
            PROTO_ICMP => self.icmp(iface, frame, hl, tl),
            _ if self.snap.owns(dst) || self.is_iface_addr(dst) => Action::Drop(Drop::UnsupportedProto),
            _ => Action::Drop(Drop::NotForUs),
        }
    }

    fn l4(&mut self, now: u64, rx: &Iface, frame: &mut [u8], p: L4Info) -> Action {
        // A packet to a local address can only be a FULLNAT reply: skip the
        // client-side index (a likely cache miss) for it.
        let reply_first = self.snap.is_laddr(p.key.dst);
        if !reply_first {
            if let Some(i) = self.sessions.lookup_in(&p.key) {
                if self.sessions.get(i).flags & FLAG_ONE_PACKET == 0 {
                    return self.forward(now, rx, i, Dir::Input, frame, p);
                }
                // One-packet scheduling: every datagram is scheduled anew.
                let s = *self.sessions.get(i);
                unbind(&self.counters, &mut self.overloaded, &self.snap, self.cfg.workers, &s);
                self.sessions.remove(i);
            }
        }
        if let Some(i) = self.sessions.lookup_out(&p.key) {
            return self.forward(now, rx, i, Dir::Output, frame, p);
        }
        match self.new_session(now, p) {
            Ok(i) => self.forward(now, rx, i, Dir::Input, frame, p),
            Err(d) => Action::Drop(d),
        }
    }

    /// Creates the session for the first packet of a flow to a service.
    fn new_session(&mut self, now: u64, p: L4Info) -> Result<u32, Drop> {
        let Engine { cfg, snap, sessions, svc: svc_state, counters, overloaded } = self;
        let (key, tcp_flags) = (p.key, p.tcp_flags);
        let Some(svc) = snap.service(key.proto, key.dst, key.dport) else {
            return Err(if snap.is_laddr(key.dst) || snap.is_masq_dest(key.proto, key.src, key.sport) {
                Drop::UnknownReply
            } else if snap.owns(key.dst) || cfg.ifaces.iter().any(|i| u32::from(i.addr) == key.dst) {
                Drop::NoService
            } else {
                Drop::NotForUs
            });
        };
        if key.proto == PROTO_TCP
            && (tcp_flags & flags::SYN == 0 || tcp_flags & (flags::ACK | flags::RST | flags::FIN) != 0)
        {
            return Err(Drop::NoSessionNotSyn);
        }
        if key.proto == PROTO_TCP && counters.event_count(Event::HalfOpen) >= cfg.half_open_max as u64 {
            return Err(Drop::HalfOpenLimit);
        }
        let st = &mut svc_state[svc.slot as usize];
        if st.version != svc.version {
            st.version = svc.version;
            st.sched.reconfigure(&svc.prep);
            st.laddr_next = 0;
            st.lport_next = 0;
        }
        let view = SvcDests { svc, counters, overloaded };
        // The real server's port; 0 (port-0 services, -g/-i) means the packet's.
        let rs_port = |d: &crate::service::Dest| if d.port == 0 { key.dport } else { d.port };
        let flow = Flow { src: key.src, sport: key.sport, dst: key.dst, dport: key.dport, now_ms: now };
        // Persistence (-p): a template per (masked client, VIP, port) names
        // the server; it lives while it controls connections, plus the
        // persistence timeout after the last one (IPVS's n_control rule).
        let mut template = None;
        let d = match svc.persistent_ms {
            None => sched::pick(&svc.prep, &mut st.sched, &view, &flow).ok_or(Drop::NoDest)?,
            Some(ptime) => {
                // A port-0 service shares one template across all ports.
                let tkey = FlowKey {
                    proto: key.proto,
                    src: key.src & svc.netmask,
                    sport: 0,
                    dst: key.dst,
                    dport: svc.key.port,
                };
                let found = sessions.lookup_in(&tkey);
                let kept = found.and_then(|t| svc.dests.iter().position(|d| d.slot == sessions.get(t).dest));
                let d = match kept {
                    Some(d) => d,
                    None => sched::pick(&svc.prep, &mut st.sched, &view, &flow).ok_or(Drop::NoDest)?,
                };
                let dest = &svc.dests[d];
                let rs = (u32::from(dest.addr), rs_port(dest));
                let t = match found {
                    Some(t) => {
                        if kept.is_none() {
                            // Its server is gone: the template follows the new choice.
                            let tm = sessions.get_mut(t);
                            counters.dests[tm.dest as usize].persist.sub(1);
                            (tm.dest, tm.rip, tm.rport) = (dest.slot, rs.0, rs.1);
                            counters.dests[dest.slot as usize].persist.add(1);
                        }
                        sessions.touch(t, now, ptime);
                        t
                    }
                    None => {
                        let mut tpl = Session::new(
                            key.proto,
                            (tkey.src, 0),
                            (tkey.dst, tkey.dport),
                            rs,
                            (ptime.min(u32::MAX as u64) as u32, 0),
                            State::None,
                            dest.mode as u8,
                            svc.slot,
                            dest.slot,
                        );
                        tpl.flags = FLAG_TEMPLATE | FLAG_NO_OUT;
                        let t = sessions.insert(tpl, now, ptime).map_err(|_| Drop::TableFull)?;
                        counters.dests[dest.slot as usize].persist.add(1);
                        t
                    }
                };
                template = Some(t);
                d
            }
        };
        let dest = &svc.dests[d];
        let rip = u32::from(dest.addr);
        let (rs, local, mut flags) = match dest.mode {
            ForwardMode::FullNat | ForwardMode::Masq if p.ttl <= 1 => return Err(Drop::TtlExceeded),
            ForwardMode::FullNat => {
                let rs = (rip, rs_port(dest));
                (rs, alloc_lport(cfg, sessions, st, svc, key.proto, rs)?, 0)
            }
            ForwardMode::Masq => {
                // Replies come back to the client address itself.
                let rs = (rip, rs_port(dest));
                let local = (key.src, key.sport);
                let reply =
                    FlowKey { proto: key.proto, src: rs.0, sport: rs.1, dst: local.0, dport: local.1 };
                if sessions.lookup_out(&reply).is_some() {
                    return Err(Drop::NatConflict);
                }
                (rs, local, 0)
            }
            // Replies bypass the gateway: no reply key. As in ipvsadm, the
            // real-server port is the service port.
            ForwardMode::Route | ForwardMode::Tunnel => ((rip, key.dport), (key.src, key.sport), FLAG_NO_OUT),
        };
        if svc.one_packet && key.proto == PROTO_UDP {
            flags |= FLAG_ONE_PACKET;
        }
        let state = if key.proto == PROTO_TCP { State::None } else { State::Udp };
        let mut s = Session::new(
            key.proto,
            (key.src, key.sport),
            (key.dst, key.dport),
            rs,
            local,
            state,
            dest.mode as u8,
            svc.slot,
            dest.slot,
        );
        s.flags = flags;
        s.control = template.unwrap_or(NIL);
        let i = sessions.insert(s, now, snap.timeouts.of_ms(state)).map_err(|_| Drop::TableFull)?;
        if let Some(t) = template {
            let tm = sessions.get_mut(t);
            tm.lport = tm.lport.saturating_add(1);
        }
        counters.event(Event::SessionsCreated, 1);
        counters.event(Event::SessionsLive, 1);
        if key.proto == PROTO_TCP {
            counters.event(Event::HalfOpen, 1);
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

    /// Forwards a packet of session `i` coming from `dir`.
    fn forward(&mut self, now: u64, rx: &Iface, i: u32, dir: Dir, frame: &mut [u8], p: L4Info) -> Action {
        let Engine { cfg, snap, sessions, counters, .. } = self;
        let s = *sessions.get(i);
        if !snap.dest_live(s.dest) {
            // As IPVS: the server is gone; drop and let the session expire.
            return Action::Drop(Drop::DestUnavailable);
        }
        let mode = forward_mode(s.mode);
        // FULLNAT and NAT route the packet (rewrite L3, decrement TTL); DR
        // and TUN hand it on untouched and never see the replies.
        let routed = matches!(mode, ForwardMode::FullNat | ForwardMode::Masq);
        if routed && p.ttl <= 1 {
            return Action::Drop(Drop::TtlExceeded);
        }
        let (src, dst, event) = match dir {
            Dir::Output => ((s.vip, s.vport), (s.cip, s.cport), Event::FwdOut),
            _ => ((s.lip, s.lport), (s.rip, s.rport), Event::FwdIn),
        };
        let Some((port, next_hop)) = cfg.routes.lookup(dst.0) else {
            return Action::Drop(Drop::NoRoute);
        };
        let table = if dir == Dir::Input && !routed { Dir::InputOnly } else { dir };
        let old = s.state();
        let new = if s.proto == PROTO_TCP { tcp_state::next(old, table, p.tcp_flags) } else { old };
        if new != old {
            let sm = sessions.get_mut(i);
            sm.state = new as u8;
            match (half_open(old as u8), half_open(new as u8)) {
                (true, false) => counters.event_cell(Event::HalfOpen).sub(1),
                (false, true) => counters.event(Event::HalfOpen, 1),
                _ => {}
            }
            let cells = &counters.dests[s.dest as usize];
            let was_active = s.flags & FLAG_ACTIVE != 0;
            if new == State::Established && !was_active {
                sm.flags |= FLAG_ACTIVE;
                cells.active.add(1);
                cells.inactive.sub(1);
            } else if new != State::Established && was_active {
                sm.flags &= !FLAG_ACTIVE;
                cells.active.sub(1);
                cells.inactive.add(1);
            }
        }
        sessions.touch(i, now, snap.timeouts.of_ms(new));
        counters.event(event, 1);
        let bytes = p.tl as u64;
        let account = |c: &TrafficCells| {
            if dir == Dir::Output {
                c.outpkts.add(1);
                c.outbytes.add(bytes);
            } else {
                c.inpkts.add(1);
                c.inbytes.add(bytes);
            }
        };
        // As IPVS: the packet is counted (and moves the state) before it is
        // transmitted, also when transmission then fails (TUN too big).
        account(&counters.dests[s.dest as usize]);
        account(&counters.services[s.service as usize]);
        let action = match mode {
            ForwardMode::FullNat | ForwardMode::Masq => {
                nat::rewrite(
                    &mut frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + p.tl],
                    s.proto,
                    src,
                    dst,
                );
                Action::Forward { port, next_hop }
            }
            ForwardMode::Route => Action::Forward { port, next_hop },
            ForwardMode::Tunnel => {
                let Some(out) = cfg.ifaces.iter().find(|i| i.port == port) else {
                    return Action::Drop(Drop::NoRoute);
                };
                if p.tl + OUTER_LEN > out.mtu as usize {
                    // As IPVS: with DF, tell the client the tunnel's MTU;
                    // without, drop. Never send an oversized packet.
                    let mtu = out.mtu.saturating_sub(OUTER_LEN as u16);
                    return match p.dont_frag {
                        true => match tunnel::frag_needed_in_place(frame, p.tl, rx.mac, rx.addr, mtu) {
                            Some(len) => {
                                counters.event(Event::IcmpFragNeededSent, 1);
                                Action::Reply { port: rx.port, len }
                            }
                            None => Action::Drop(Drop::TunnelTooBig),
                        },
                        false => Action::Drop(Drop::TunnelTooBig),
                    };
                }
                Action::Encap { port, next_hop, src: u32::from(out.addr), dst: s.rip }
            }
        };
        action
    }

    /// ICMP: echo requests to our addresses are answered; errors about a
    /// live session are translated back through it (as IPVS does).
    fn icmp(&mut self, iface: &Iface, frame: &mut [u8], hl: usize, tl: usize) -> Action {
        let l3 = &frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + tl];
        let Ok(icmp) = icmpv4::Packet::new_checked(&l3[hl..]) else {
            return Action::Drop(Drop::IcmpUnhandled);
        };
        if nat::is_icmp_error(u8::from(icmp.msg_type())) {
            return self.icmp_error(frame, hl, tl);
        }
        let dst = u32::from(ipv4::Packet::new_unchecked(l3).dst_addr());
        if !(self.snap.owns(dst) || self.is_iface_addr(dst)) {
            return Action::Drop(Drop::NotForUs);
        }
        if icmp.msg_type() != icmpv4::Message::EchoRequest || !icmp.verify_checksum() {
            return Action::Drop(Drop::IcmpUnhandled);
        }
        let (l2, l3) = frame.split_at_mut(ethernet::HEADER_LEN);
        let mut ip = ipv4::Packet::new_unchecked(&mut l3[..tl]);
        {
            let mut icmp = icmpv4::Packet::new_unchecked(&mut ip.payload_mut()[..]);
            icmp.set_msg_type(icmpv4::Message::EchoReply);
            icmp.fill_checksum();
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_ttl(64);
        ip.fill_checksum();
        let mut eth = ethernet::Frame::new_unchecked(l2);
        let peer = eth.src_addr();
        eth.set_dst_addr(peer);
        eth.set_src_addr(iface.mac);
        self.counters.event(Event::IcmpEchoAnswered, 1);
        Action::Reply { port: iface.port, len: frame.len() }
    }

    /// An ICMP error quoting a packet of a FULLNAT or NAT session: from the
    /// real-server side it goes to the client as if about the client's own
    /// packet (outer source the VIP, quoted packet client -> VIP); from the
    /// client side it goes to the real server as if about the packet it sent.
    fn icmp_error(&mut self, frame: &mut [u8], hl: usize, tl: usize) -> Action {
        let ip = &mut frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + tl];
        let Some(q) = nat::icmp_quote(&ip[hl..]) else {
            return Action::Drop(Drop::IcmpUnhandled);
        };
        if ipv4::Packet::new_unchecked(&*ip).ttl() <= 1 {
            return Action::Drop(Drop::TtlExceeded);
        }
        // The quoted packet went q.src -> q.dst; its session knows the other way.
        let back = FlowKey { proto: q.proto, src: q.dst, sport: q.dport, dst: q.src, dport: q.sport };
        let (s, toward_client) = match self.sessions.lookup_out(&back) {
            Some(i) => (*self.sessions.get(i), true),
            None => match self.sessions.lookup_in(&back) {
                Some(i) => (*self.sessions.get(i), false),
                None => return Action::Drop(Drop::IcmpUnknownFlow),
            },
        };
        if !matches!(forward_mode(s.mode), ForwardMode::FullNat | ForwardMode::Masq) {
            return Action::Drop(Drop::IcmpUnknownFlow);
        }
        if !self.snap.dest_live(s.dest) {
            return Action::Drop(Drop::DestUnavailable);
        }
        let (outer, quoted_src, quoted_dst, to) = if toward_client {
            ((s.vip, s.cip), (s.cip, s.cport), (s.vip, s.vport), s.cip)
        } else {
            ((s.lip, s.rip), (s.rip, s.rport), (s.lip, s.lport), s.rip)
        };
        let Some((port, next_hop)) = self.cfg.routes.lookup(to) else {
            return Action::Drop(Drop::NoRoute);
        };
        nat::rewrite_icmp_error(ip, outer, quoted_src, quoted_dst);
        self.counters.event(Event::IcmpErrorsTranslated, 1);
        Action::Forward { port, next_hop }
    }

    /// Copies one chunk of live sessions into a control-plane query (see
    /// [`crate::mailbox`]): scans at most [`SCAN_PER_CHUNK`] slots and never
    /// grows the query's buffer.
    pub fn dump(&self, now: u64, q: &mut ConnQuery) {
        let cap = self.sessions.capacity();
        let end = (q.start + SCAN_PER_CHUNK).min(cap);
        let mut i = q.start;
        while i < end && q.out.len() < q.out.capacity() {
            if let Some(s) = self.sessions.slot(i) {
                if q.filter.is_none_or(|f| (f.proto, f.vip, f.vport) == (s.proto, s.vip, s.vport)) {
                    q.out.push(*s);
                }
            }
            i += 1;
        }
        q.now_ms = now;
        q.next = (i < cap).then_some(i);
    }

    /// Expires due sessions (bounded work per call).
    pub fn expire(&mut self, now: u64) -> usize {
        let Engine { cfg, snap, sessions, counters, overloaded, .. } = self;
        sessions.expire(now, cfg.expire_budget, |s| {
            if s.flags & FLAG_TEMPLATE != 0 {
                if s.lport > 0 {
                    // Still controls connections: keep it (IPVS re-arms).
                    return Some(s.lip as u64);
                }
                counters.dests[s.dest as usize].persist.sub(1);
                return None;
            }
            unbind(counters, overloaded, snap, cfg.workers, s);
            None
        })
    }
}

/// This worker's share of a gateway-wide connection threshold.
#[inline]
fn per_worker(threshold: u32, workers: u32) -> u32 {
    if threshold == 0 {
        0
    } else {
        threshold.div_ceil(workers.max(1))
    }
}

/// Accounting when connection `s` goes away: gauges, counters, and IPVS's
/// unbind rule for the overload flag (clear below the lower threshold, or
/// below 3/4 of the upper one when there is no lower threshold).
fn unbind(counters: &WorkerCounters, overloaded: &mut [bool], snap: &Snapshot, workers: u32, s: &Session) {
    let cells = &counters.dests[s.dest as usize];
    if s.flags & FLAG_ACTIVE != 0 {
        cells.active.sub(1);
    } else {
        cells.inactive.sub(1);
    }
    counters.event(Event::SessionsExpired, 1);
    counters.event_cell(Event::SessionsLive).sub(1);
    if s.proto == PROTO_TCP && half_open(s.state) {
        counters.event_cell(Event::HalfOpen).sub(1);
    }
    let total = cells.active.get() + cells.inactive.get();
    let clear = match snap.dest_thresholds(s.dest) {
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
        overloaded[s.dest as usize] = false;
    }
}

/// Picks LIP:lport for a new FULLNAT session toward `rs`: the local
/// addresses of the service in turn, and on each the ports of this worker's
/// partition from a moving cursor, skipping any port whose reply key
/// (proto, RIP, rport, LIP, lport) is still live. A port is therefore never
/// handed out twice toward the same real server while a session holds it,
/// and can be reused at once toward another real server.
fn alloc_lport(
    cfg: &EngineConfig,
    sessions: &SessionTable,
    st: &mut SvcState,
    svc: &Service,
    proto: u8,
    rs: (u32, u16),
) -> Result<(u32, u16), Drop> {
    let n = svc.laddrs.len();
    if n == 0 {
        return Err(Drop::NoLaddr);
    }
    let (lo, hi) = cfg.lport_range;
    let (w, nw) = (cfg.worker, cfg.workers.max(1));
    // First port of this worker's partition at or above `lo`.
    let first = lo as u32 + (w + nw - lo as u32 % nw) % nw;
    if first > hi as u32 {
        return Err(Drop::LaddrExhausted);
    }
    let span = (hi as u32 - first) / nw + 1;
    let tries = (span as usize).min(LPORT_TRIES);
    for k in 0..n {
        let lip = svc.laddrs[(st.laddr_next as usize + k) % n];
        for _ in 0..tries {
            let idx = st.lport_next as u32 % span;
            st.lport_next = ((idx + 1) % span) as u16;
            let lport = (first + idx * nw) as u16;
            let key = FlowKey { proto, src: rs.0, sport: rs.1, dst: lip, dport: lport };
            if sessions.lookup_out(&key).is_none() {
                st.laddr_next = st.laddr_next.wrapping_add(1);
                return Ok((lip, lport));
            }
        }
    }
    Err(Drop::LaddrExhausted)
}

/// What the schedulers see of a service's servers on this worker.
struct SvcDests<'a> {
    svc: &'a Service,
    counters: &'a WorkerCounters,
    overloaded: &'a [bool],
}

impl Dests for SvcDests<'_> {
    fn len(&self) -> usize {
        self.svc.dests.len()
    }
    fn weight(&self, i: usize) -> u32 {
        self.svc.dests[i].weight
    }
    fn addr(&self, i: usize) -> u32 {
        u32::from(self.svc.dests[i].addr)
    }
    fn port(&self, i: usize) -> u16 {
        self.svc.dests[i].port
    }
    fn conns(&self, i: usize) -> (u32, u32) {
        let c = &self.counters.dests[self.svc.dests[i].slot as usize];
        (c.active.get().min(u32::MAX as u64) as u32, c.inactive.get().min(u32::MAX as u64) as u32)
    }
    fn overloaded(&self, i: usize) -> bool {
        self.overloaded.get(self.svc.dests[i].slot as usize).copied().unwrap_or(false)
    }
}

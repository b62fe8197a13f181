//! One worker's packet step, generic over the packet buffer.
//!
//! [`Worker::handle`] runs the [`Engine`] on a received buffer and carries out
//! its [`Action`]: resolve the next hop's MAC (parking the packet while ARP
//! runs), write the Ethernet header and hand the buffer to the I/O layer, or
//! drop and count it. The I/O layer ([`Io`]) is DPDK mbufs and TX bursts in
//! `gatewayd`, and plain vectors in tests: this file never touches DPDK.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::client_addr;
use crate::counters::{Drop, Event, WorkerCounters};
use crate::engine::nat64::Pending as Nat64Pending;
use crate::engine::reject::{self, Reject};
use crate::engine::{Action, Engine, Staged, TimerResend, TIMER_SYN_LEN};
use crate::frag::{self, Datagram};
use crate::modes::tun;
use crate::nat64;
use crate::neigh::{NeighAddr, NeighConfig, NeighTable, Probe, Resolve, StaticNeighbours};
use crate::session::Expired;
use crate::steer::{self, Owner};
use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::{arp, icmpv6, ipv4, ipv6};

/// A packet buffer: its bytes, and ways to resize it.
pub trait PacketBuf: AsRef<[u8]> + AsMut<[u8]> {
    /// Sets the data length of a freshly allocated buffer; false if it does
    /// not fit.
    fn set_len(&mut self, len: usize) -> bool;
    /// Adds `n` bytes in front of the data; false if there is no headroom.
    fn prepend(&mut self, n: usize) -> bool;
    /// Cuts the data to `len` bytes (no-op if already shorter).
    fn truncate(&mut self, len: usize);
    /// Strips `n` bytes from the front; false, unchanged, if it holds
    /// fewer (NAT64's IPv6 -> IPv4 header shrink).
    fn adj(&mut self, n: usize) -> bool;
}

impl PacketBuf for Vec<u8> {
    fn set_len(&mut self, len: usize) -> bool {
        self.resize(len, 0);
        true
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.splice(0..0, std::iter::repeat_n(0, n));
        true
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.drain(..n);
        true
    }
}

/// What the worker needs from the I/O layer.
pub trait Io<B> {
    /// A fresh buffer for a packet the gateway originates (ARP requests).
    fn alloc(&mut self) -> Option<B>;
    /// Queues `pkt` for transmission on `port`.
    fn send(&mut self, port: u16, pkt: B);
    /// Hands `pkt`, received on `port`, to worker `to` ([`crate::steer`]);
    /// gives it back if that worker's inbox is full (or there is no other
    /// worker).
    fn hand_off(&mut self, to: u32, port: u16, pkt: B) -> Result<(), B> {
        let _ = (to, port);
        Err(pkt)
    }
    /// Hands `pkt`, received on `port`, to `port`'s kernel interface (the
    /// exception path, [`Action::Kernel`]) through this worker's bounded
    /// ring; gives it back if the ring is full (or there is none).
    fn punt(&mut self, port: u16, pkt: B) -> Result<(), B> {
        let _ = port;
        Err(pkt)
    }
}

/// Length of an ARP request frame, padded to the Ethernet minimum (60 bytes
/// without FCS).
const ARP_FRAME_LEN: usize = 60;
/// Length of a neighbour solicitation frame: Ethernet, IPv6, the NS and
/// its source link-layer option (RFC 4861 §4.3).
pub const NS_FRAME_LEN: usize =
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmpv6::ND_LEN + icmpv6::LL_OPTION_LEN;
/// Neighbour housekeeping period.
const NEIGH_TICK_MS: u64 = 100;

/// Writes an ARP request for `target` from `iface_mac`/`iface_ip` into `buf`.
pub fn build_arp_request(buf: &mut [u8], mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) {
    buf.fill(0);
    let mut eth = ethernet::Frame::new_unchecked(&mut *buf);
    eth.set_dst_addr(MacAddr::BROADCAST);
    eth.set_src_addr(mac);
    eth.set_ethertype(EtherType::Arp);
    let mut a = arp::Packet::new_unchecked(&mut buf[ethernet::HEADER_LEN..]);
    a.set_hardware_type(1);
    a.set_protocol_type(0x0800);
    a.set_hardware_len(6);
    a.set_protocol_len(4);
    a.set_operation(arp::Operation::Request);
    a.set_source_hardware_addr(mac);
    a.set_source_protocol_addr(ip);
    a.set_target_hardware_addr(MacAddr([0; 6]));
    a.set_target_protocol_addr(target);
}

/// Writes a neighbour solicitation for `target` from `mac`/`src` into
/// `buf` ([`NS_FRAME_LEN`] bytes): to the target's solicited-node group
/// (`ff02::1:ffXX:XXXX`, MAC `33:33:ff:XX:XX:XX`), hop limit 255, with the
/// source link-layer option (RFC 4861 §7.2.2).
pub fn build_neighbour_solicit(buf: &mut [u8], mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) {
    buf.fill(0);
    let group = ipv6::solicited_node(target);
    let mut eth = ethernet::Frame::new_unchecked(&mut *buf);
    eth.set_dst_addr(ipv6::multicast_mac(group));
    eth.set_src_addr(mac);
    eth.set_ethertype(EtherType::Ipv6);
    let ns = icmpv6::NdRepr::Solicit { target, lladdr: Some(mac) };
    let mut ip = ipv6::Packet::new_unchecked(&mut buf[ethernet::HEADER_LEN..]);
    ip.set_version(6);
    ip.set_payload_len(ns.buffer_len() as u16);
    ip.set_next_header(ipv6::NextHeader::Icmpv6);
    ip.set_hop_limit(icmpv6::ND_HOP_LIMIT);
    ip.set_src_addr(src);
    ip.set_dst_addr(group);
    let body = &mut buf[ethernet::HEADER_LEN + ipv6::HEADER_LEN..];
    // The buffer is NS_FRAME_LEN bytes: the message fits.
    let _ = ns.emit(&mut icmpv6::Packet::new_unchecked(body), src, group);
}

/// A neighbour learnt from ARP or neighbour discovery, by this worker or
/// shared by another: every worker applies the same rules to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    pub port: u16,
    pub ip: IpAddr,
    pub mac: MacAddr,
    /// It may make an entry, or only refresh one (see [`Action::Arp`]).
    pub create: bool,
    /// It may change a known neighbour's MAC: always for ARP, for an IPv6
    /// advertisement only with the override flag (RFC 4861 §7.2.5; an
    /// entry being resolved takes the MAC either way).
    pub replace: bool,
}

/// Neighbours learnt since the I/O layer last asked (to tell other workers).
const LEARNED_MAX: usize = 16;

pub struct Worker<B> {
    pub engine: Engine,
    neigh: NeighTable<B>,
    /// IPv6 neighbours (neighbour discovery), under the same rules and
    /// settings; no room is allocated when no port is dual-stack.
    neigh6: NeighTable<B, u128>,
    last_neigh_tick: u64,
    learned: [Option<Learned>; LEARNED_MAX],
    n_learned: usize,
    /// IPv4 identification of the headers this worker originates.
    ip_ident: u16,
    /// IPv6 identification of the fragments this worker sends: this
    /// worker's index plus multiples of the number of workers, so workers
    /// never reuse each other's toward one (local address, real server).
    ip6_ident: u32,
    /// The static neighbours' publisher and the version in force.
    statics: Option<(Arc<StaticNeighbours>, u64)>,
    /// The same for the IPv6 static neighbours.
    statics6: Option<(Arc<StaticNeighbours<u128>>, u64)>,
}

/// `table`'s static neighbours from `statics`, and the publisher with the
/// version taken.
fn take_statics<B, A: NeighAddr>(
    table: &mut NeighTable<B, A>,
    statics: Arc<StaticNeighbours<A>>,
) -> (Arc<StaticNeighbours<A>>, u64) {
    let (version, set) = statics.newer_than(0).expect("versions start at 1");
    table.set_statics(&set, |_, _, _| {});
    (statics, version)
}

/// Takes a newer set from `statics` into `table`, if one was published;
/// packets that waited for one of its neighbours leave.
fn refresh_statics<B: PacketBuf, A: NeighAddr>(
    engine: &Engine,
    table: &mut NeighTable<B, A>,
    statics: &mut Option<(Arc<StaticNeighbours<A>>, u64)>,
    io: &mut impl Io<B>,
) {
    let Some((publisher, have)) = statics else { return };
    let Some((version, set)) = publisher.newer_than(*have) else { return };
    *have = version;
    table.set_statics(&set, |mut p, port, mac| {
        if let Some(src) = engine.iface(port).map(|i| i.mac) {
            set_macs(p.as_mut(), src, mac);
            io.send(port, p);
        }
    });
}

impl<B: PacketBuf> Worker<B> {
    pub fn new(engine: Engine, neigh: NeighConfig) -> Self {
        // Room for IPv6 neighbours only where a port is dual-stack.
        let dual = engine.config().ifaces.iter().any(|i| i.addr6.is_some());
        let capacity6 = if dual { neigh.capacity } else { 0 };
        let engine_worker = engine.config().worker;
        Worker {
            engine,
            neigh: NeighTable::new(neigh),
            neigh6: NeighTable::new(NeighConfig { capacity: capacity6, ..neigh }),
            last_neigh_tick: 0,
            learned: [None; LEARNED_MAX],
            n_learned: 0,
            ip_ident: 0,
            ip6_ident: engine_worker,
            statics: None,
            statics6: None,
        }
    }

    /// Takes its static neighbours from `statics` (now, and on
    /// [`tick`](Self::tick) after every change).
    pub fn with_static_neighbours(mut self, statics: Arc<StaticNeighbours>) -> Self {
        self.statics = Some(take_statics(&mut self.neigh, statics));
        self
    }

    /// [`Worker::with_static_neighbours`] for the IPv6 neighbours.
    pub fn with_static_neighbours6(mut self, statics: Arc<StaticNeighbours<u128>>) -> Self {
        self.statics6 = Some(take_statics(&mut self.neigh6, statics));
        self
    }

    /// Takes a new set of static neighbours of either family if one was
    /// published; packets that waited for one of them leave.
    fn refresh_statics(&mut self, io: &mut impl Io<B>) {
        refresh_statics(&self.engine, &mut self.neigh, &mut self.statics, io);
        refresh_statics(&self.engine, &mut self.neigh6, &mut self.statics6, io);
    }

    /// Processes one received packet.
    pub fn handle(&mut self, now: u64, port: u16, pkt: B, io: &mut impl Io<B>) {
        self.handle_parsed(now, port, pkt, None, io)
    }

    /// [`Worker::handle_parsed`] for a frame of a burst received on
    /// `port`, whose interface (`rx`, looked up once per burst) the caller
    /// passes: an established FULLNAT or NAT packet takes the engine's
    /// step without the ladder ([`Engine::established`]) and the output;
    /// NAT64's reply goes straight to its own step
    /// ([`Engine::nat64_reply_staged`]); any other (or one that step
    /// declines, unchanged) to [`Worker::handle_parsed`]. A frame without
    /// a record that is IPv6 TCP/UDP goes straight to its session step
    /// ([`Engine::ipv6_staged`]).
    #[inline(always)]
    pub fn handle_staged(
        &mut self,
        now: u64,
        port: u16,
        rx: Option<&crate::route::Iface>,
        mut pkt: B,
        parsed: Option<&Staged>,
        io: &mut impl Io<B>,
    ) {
        let Some(p) = parsed else {
            return match rx {
                Some(rx) => self.handle_unstaged_on(now, rx, pkt, io),
                None => self.handle_unstaged(now, port, pkt, io),
            };
        };
        if let Some(rx) = rx {
            if self.engine.nat64_reply_first(p) {
                let action = self.engine.nat64_reply_staged(now, rx, pkt.as_mut(), p);
                return self.carry_out_apart(now, action, pkt, io);
            }
            if let Some((out, next_hop)) = self.engine.established(now, rx, pkt.as_mut(), p) {
                return self.output(now, out, next_hop, pkt, io);
            }
        }
        self.handle_parsed(now, port, pkt, parsed, io)
    }

    /// Processes one received packet with the record the poll loop's
    /// stages made of it ([`steer::Parsed`]`::l4` through
    /// [`Engine::stage`], see [`Engine::process_parsed`]): the engine does
    /// not parse it again, nor hash its key or test its destination again.
    /// Inline: a staged packet's step (the engine's session step, then the
    /// output of a forwarded packet) joins the poll loop's code, without a
    /// call per packet; every other action, and a packet without a record,
    /// out of line ([`Worker::carry_out`]).
    #[inline(always)]
    pub fn handle_parsed(
        &mut self,
        now: u64,
        port: u16,
        mut pkt: B,
        parsed: Option<&Staged>,
        io: &mut impl Io<B>,
    ) {
        let Some(p) = parsed else { return self.handle_unstaged(now, port, pkt, io) };
        match self.engine.process_parsed(now, port, pkt.as_mut(), Some(p)) {
            Action::Forward { port, next_hop } => self.output(now, port, next_hop, pkt, io),
            action => self.carry_out_apart(now, action, pkt, io),
        }
    }

    /// [`Worker::handle_parsed`] of a packet without a record (the
    /// engine's full ladder): one call, as a staged packet's action other
    /// than a forward.
    #[inline(never)]
    fn handle_unstaged(&mut self, now: u64, port: u16, mut pkt: B, io: &mut impl Io<B>) {
        let action = self.engine.process_parsed(now, port, pkt.as_mut(), None);
        self.carry_out(now, action, pkt, io)
    }

    /// [`Worker::handle_unstaged`] of a frame of a burst received on
    /// `rx`: an IPv6 TCP/UDP packet goes straight to its session step
    /// ([`Engine::ipv6_staged`]). A function of its own, with the out of
    /// line [`Engine::process`] behind it: sharing `handle_unstaged` (one
    /// frame at a time, `process_parsed` inline) cost that path 10-20
    /// instructions per packet (docs/benchmarks-log.md).
    #[inline(never)]
    fn handle_unstaged_on(&mut self, now: u64, rx: &crate::route::Iface, mut pkt: B, io: &mut impl Io<B>) {
        let action = match self.engine.ipv6_staged(now, rx, pkt.as_mut()) {
            Some(action) => action,
            None => self.engine.process(now, rx.port, pkt.as_mut()),
        };
        self.carry_out(now, action, pkt, io)
    }

    /// [`Worker::carry_out`] out of the poll loop's code.
    #[inline(never)]
    fn carry_out_apart(&mut self, now: u64, action: Action, pkt: B, io: &mut impl Io<B>) {
        self.carry_out(now, action, pkt, io)
    }

    /// Carries out the engine's `action` for `pkt`.
    #[inline(always)]
    fn carry_out(&mut self, now: u64, action: Action, mut pkt: B, io: &mut impl Io<B>) {
        match action {
            Action::Forward { port, next_hop } => self.output(now, port, next_hop, pkt, io),
            Action::Forward6 { port, next_hop } => self.output6(now, port, next_hop, pkt, io),
            Action::Nat64To4 { port, next_hop } => {
                if self.translate(&mut pkt) {
                    self.output(now, port, next_hop, pkt, io)
                }
            }
            Action::Nat64To6 { port, next_hop } => {
                if self.translate(&mut pkt) {
                    self.output6(now, port, next_hop, pkt, io)
                }
            }
            Action::Encap { port, next_hop, src, dst, tun: tunnel } => {
                match tun::encap(&mut pkt, tunnel, src, dst, &mut self.ip_ident) {
                    Ok(()) => self.output(now, port, next_hop, pkt, io),
                    Err(why) => self.engine.counters().count_drop(why),
                }
            }
            Action::Encap6 { port, next_hop, tun } => {
                let (src, dst) = self.engine.pending_encap6();
                match crate::modes::tun6::encap(&mut pkt, tun, src, dst) {
                    Ok(()) => self.output6(now, port, next_hop, pkt, io),
                    Err(why) => self.engine.counters().count_drop(why),
                }
            }
            Action::Grow { port, next_hop } => self.grow(now, port, next_hop, pkt, io, true),
            Action::GrowReply { port, next_hop } => self.grow(now, port, next_hop, pkt, io, false),
            Action::Grow6 { port, next_hop } => {
                let ins = self.engine.pending_insert();
                let r = client_addr::apply(&mut pkt, ins);
                if client_addr::count(self.engine.counters(), r, ins) {
                    self.output6(now, port, next_hop, pkt, io);
                }
            }
            Action::Nat64Grow { port, next_hop } => {
                if self.translate(&mut pkt) {
                    self.grow(now, port, next_hop, pkt, io, true)
                }
            }
            Action::ThenHeld { port, next_hop, grow } => {
                if grow {
                    self.grow(now, port, next_hop, pkt, io, true);
                } else {
                    self.output(now, port, next_hop, pkt, io);
                }
                self.send_held(now, io);
            }
            Action::Built6 { port, next_hop } => {
                if self.take_built(&mut pkt) {
                    self.output6_reply(now, port, next_hop, pkt, io);
                }
            }
            Action::Again { port, held } => self.again(now, port, held, pkt, io),
            Action::Reply { port, len } => {
                pkt.truncate(len);
                io.send(port, pkt);
            }
            Action::Reject { port, next_hop, reply, why } => {
                self.ip_ident = self.ip_ident.wrapping_add(1);
                let ident = self.ip_ident;
                if self.rejected(&mut pkt, reply, why, |p| reject::build(p, reply, ident)) {
                    self.output_reply(now, port, next_hop, pkt, io);
                }
            }
            Action::Reject6 { port, next_hop, reply, why } => {
                if self.rejected(&mut pkt, reply, why, |p| reject::build6(p, reply)) {
                    self.output6_reply(now, port, next_hop, pkt, io);
                }
            }
            Action::Kernel { port } => self.punt(port, pkt, io),
            Action::Arp { port, sender, reply, create, kernel } => {
                let ip = IpAddr::V4(Ipv4Addr::from(sender.0));
                let learned = Learned { port, ip, mac: sender.1, create, replace: true };
                let stored = self.learn_from(now, learned, io);
                self.share(learned);
                if reply {
                    io.send(port, pkt);
                    return;
                }
                if stored {
                    self.engine.counters().event(Event::ArpRepliesLearned, 1);
                }
                if kernel {
                    self.punt(port, pkt, io);
                }
            }
            Action::Nd { port, addr, mac, create, replace, reply, kernel } => {
                // Without the override flag a known neighbour keeps its MAC,
                // here and on the other workers (`learn_from`'s rule).
                let learned = Learned { port, ip: IpAddr::V6(Ipv6Addr::from(addr)), mac, create, replace };
                let stored = self.learn_from(now, learned, io);
                self.share(learned);
                if reply != 0 {
                    pkt.truncate(reply.into());
                    io.send(port, pkt);
                    return;
                }
                if stored {
                    self.engine.counters().event(Event::NdAdvertsLearned, 1);
                }
                if kernel {
                    self.punt(port, pkt, io);
                }
            }
            Action::Absorbed => {}
            Action::Reassembled => {
                drop(pkt);
                self.reassembled(now, io);
            }
            Action::Drop(why) => self.engine.counters().count_drop(why),
        }
    }

    /// Keeps `learned` for the other workers, even when not stored here:
    /// the answer to another worker's probe may arrive on this one.
    fn share(&mut self, learned: Learned) {
        if self.n_learned < LEARNED_MAX {
            self.learned[self.n_learned] = Some(learned);
            self.n_learned += 1;
        }
    }

    /// [`Action::Grow`]: inserts what the engine asks
    /// ([`client_addr::apply`]), then sends; [`Action::GrowReply`]
    /// (`wanted` false) as a reply of the gateway's own
    /// ([`Worker::output_reply`]).
    fn grow(&mut self, now: u64, port: u16, next_hop: u32, mut pkt: B, io: &mut impl Io<B>, wanted: bool) {
        let ins = self.engine.pending_insert();
        let r = client_addr::apply(&mut pkt, ins);
        if !client_addr::count(self.engine.counters(), r, ins) {
            return;
        }
        if wanted {
            self.output(now, port, next_hop, pkt, io);
        } else {
            self.output_reply(now, port, next_hop, pkt, io);
        }
    }

    /// [`Action::ThenHeld`]: the client data SYNPROXY held, copied into a
    /// fresh buffer and processed as if received again (the session is
    /// spliced now).
    fn send_held(&mut self, now: u64, io: &mut impl Io<B>) {
        let b = io.alloc();
        let Some((port, frame)) = self.engine.held_frame() else { return };
        let copied = b.and_then(|mut b| {
            if !b.set_len(frame.len()) {
                return None;
            }
            b.as_mut().copy_from_slice(frame);
            Some(b)
        });
        self.engine.held_done();
        match copied {
            Some(b) => self.handle(now, port, b, io),
            // Left to the client's retransmission.
            None => self.engine.counters().count_drop(Drop::NoMbuf),
        }
    }

    /// Puts the frame the engine built ([`Engine::built_frame`]) in place
    /// of `pkt`'s; false, counted, if it does not fit.
    fn take_built(&mut self, pkt: &mut B) -> bool {
        let f = self.engine.built_frame();
        if f.is_empty() || !pkt.set_len(f.len()) {
            self.engine.counters().count_drop(Drop::SynproxyNoRoom);
            return false;
        }
        pkt.truncate(f.len());
        pkt.as_mut().copy_from_slice(f);
        true
    }

    /// [`Action::Again`]: the frame the engine built, processed as if
    /// received on `port`, then the held client data if `held`.
    fn again(&mut self, now: u64, port: u16, held: bool, mut pkt: B, io: &mut impl Io<B>) {
        if self.take_built(&mut pkt) {
            self.handle(now, port, pkt, io);
        }
        if held {
            self.send_held(now, io);
        }
    }

    /// Runs the datagram the engine just reassembled: on this worker if it
    /// owns the datagram's session ([`steer::owner`]), else hands it to the
    /// owner as fragments the size of its receiving port's MTU (which the
    /// owner reassembles again: fragments of a datagram are steered by
    /// their 3-tuple and ID, not by the ports only the first one carries).
    fn reassembled(&mut self, now: u64, io: &mut impl Io<B>) {
        let Some(mut d) = self.engine.take_reassembled() else { return };
        let (me, workers) = (self.engine.config().worker, self.engine.config().workers);
        match steer::owner(self.engine.snapshot(), workers, d.as_ref()) {
            Owner::Worker(w) if w != me => {
                let mtu = self.engine.iface(d.port).map_or(0, |i| i.mtu as usize);
                let port = d.port;
                // IPv6: at most the size of the largest fragment received,
                // with the datagram's identification.
                let mtu = if d.largest > 0 { mtu.min(d.largest) } else { mtu };
                let counters = self.engine.counters().clone();
                write_fragments(&counters.clone(), d.as_ref(), mtu, d.ident, io, |b, io| {
                    match io.hand_off(w, port, b) {
                        Ok(()) => counters.event(Event::RedirectOut, 1),
                        Err(_) => counters.count_drop(Drop::RedirectFull),
                    }
                });
            }
            _ => {
                let action = self.engine.process_reassembled(now, d.port, d.as_mut());
                self.emit_big(now, action, &mut d, io);
            }
        }
        self.engine.give_back(d);
    }

    /// Carries out `action` for a reassembled datagram: as [`Worker::handle`]
    /// does, but sent as fragments in fresh buffers.
    fn emit_big(&mut self, now: u64, action: Action, d: &mut Datagram, io: &mut impl Io<B>) {
        match action {
            Action::Forward { port, next_hop } => self.output_fragments(now, port, next_hop, d.as_ref(), io),
            Action::Forward6 { port, next_hop } => {
                self.output6_big(now, port, next_hop, d.as_ref(), d.largest, io)
            }
            Action::Nat64To4 { port, next_hop } => {
                if self.translate(d) {
                    // Made of IPv6 fragments: DF clear (RFC 7915 §5.1.1),
                    // an identification of this worker's, so it may go as
                    // IPv4 fragments.
                    self.ip_ident = self.ip_ident.wrapping_add(1);
                    let mut ip = ipv4::Packet::new_unchecked(&mut d.as_mut()[ethernet::HEADER_LEN..]);
                    ip.set_dont_frag(false);
                    ip.set_ident(self.ip_ident);
                    ip.fill_checksum();
                    self.output_fragments(now, port, next_hop, d.as_ref(), io)
                }
            }
            Action::Nat64To6 { port, next_hop } => {
                if self.translate(d) {
                    self.output6_big(now, port, next_hop, d.as_ref(), 0, io)
                }
            }
            // The outer packet is fragmented (RFC 2473 §7.2).
            Action::Encap6 { port, next_hop, tun } => {
                let (src, dst) = self.engine.pending_encap6();
                match crate::modes::tun6::encap(d, tun, src, dst) {
                    Ok(()) => self.output6_big(now, port, next_hop, d.as_ref(), 0, io),
                    Err(why) => self.engine.counters().count_drop(why),
                }
            }
            Action::Encap { port, next_hop, src, dst, tun: tunnel } => {
                match tun::encap(d, tunnel, src, dst, &mut self.ip_ident) {
                    Ok(()) => self.output_fragments(now, port, next_hop, d.as_ref(), io),
                    Err(why) => self.engine.counters().count_drop(why),
                }
            }
            // An answer (an echo reply, an ICMP error): whole if it fits
            // (never an IPv6 atomic fragment, RFC 8021), else fragments,
            // IPv6's with the identification of the datagram answered.
            Action::Reply { port, len } => {
                d.truncate(len);
                let mtu = self.engine.iface(port).map_or(0, |i| i.mtu as usize);
                if len <= ethernet::HEADER_LEN + mtu {
                    match self.copy_out(port, d.as_ref(), io) {
                        Some(b) => io.send(port, b),
                        None => self.engine.counters().count_drop(Drop::NoMbuf),
                    }
                    return;
                }
                write_fragments(self.engine.counters(), d.as_ref(), mtu, d.ident, io, |b, io| {
                    io.send(port, b)
                });
            }
            Action::Drop(why) => self.engine.counters().count_drop(why),
            // A reassembled datagram with nowhere to go is only counted:
            // replies quote the first fragment's header, which is gone.
            Action::Reject { why, .. } | Action::Reject6 { why, .. } => {
                self.engine.counters().count_drop(why)
            }
            // A TOA option or PROXY header belongs in a handshake segment,
            // which is never fragmented: a reassembled one is refused rather
            // than sent without what its sequence numbers now assume.
            Action::Grow { .. }
            | Action::GrowReply { .. }
            | Action::Grow6 { .. }
            | Action::Nat64Grow { .. } => self.engine.counters().count_drop(Drop::ProxyHeaderNoRoom),
            // SYNPROXY's frames (a reassembled SYN or cookie ACK) are
            // small: a fresh buffer for them.
            Action::Built6 { port, next_hop } => {
                if let Some(mut b) = io.alloc() {
                    if self.take_built(&mut b) {
                        self.output6_reply(now, port, next_hop, b, io);
                    }
                } else {
                    self.engine.counters().count_drop(Drop::NoMbuf);
                }
            }
            Action::Again { port, held } => match io.alloc() {
                Some(b) => self.again(now, port, held, b, io),
                None => self.engine.counters().count_drop(Drop::NoMbuf),
            },
            // The kernel reassembles for itself: fragments again.
            Action::Kernel { port } => {
                let mtu = self.engine.iface(port).map_or(0, |i| i.mtu as usize);
                let counters = self.engine.counters().clone();
                write_fragments(&counters.clone(), d.as_ref(), mtu, d.ident, io, |b, io| {
                    kernel_or_count(&counters, port, b, io)
                });
            }
            // ARP and ND are never reassembled; a datagram is never a fragment.
            Action::Arp { .. }
            | Action::Nd { .. }
            | Action::Absorbed
            | Action::Reassembled
            | Action::ThenHeld { .. } => {}
        }
    }

    /// Sends `frame` to `next_hop` out `port` as fragments of the port's
    /// MTU, each resolved like any packet ([`Worker::output`]).
    fn output_fragments(&mut self, now: u64, port: u16, next_hop: u32, frame: &[u8], io: &mut impl Io<B>) {
        let mtu = self.engine.iface(port).map_or(0, |i| i.mtu as usize);
        let counters = self.engine.counters().clone();
        write_fragments(&counters, frame, mtu, 0, io, |b, io| self.output(now, port, next_hop, b, io));
    }

    /// Sends the reassembled IPv6 datagram `frame` (or NAT64's or TUN6's
    /// packet made of one) to `next_hop` out `port`: whole if it fits the
    /// port's MTU and the largest fragment received (`largest`, 0 if
    /// none: Linux's `frag_max_size` rule), else as fragments of at most
    /// both, with a fresh identification.
    fn output6_big(
        &mut self,
        now: u64,
        port: u16,
        next_hop: u128,
        frame: &[u8],
        largest: usize,
        io: &mut impl Io<B>,
    ) {
        let mtu = self.engine.iface(port).map_or(0, |i| i.mtu as usize);
        let size = if largest > 0 { mtu.min(largest) } else { mtu };
        let l3 = frame.len() - ethernet::HEADER_LEN;
        if l3 <= size {
            match self.copy_out(port, frame, io) {
                Some(b) => self.output6(now, port, next_hop, b, io),
                None => self.engine.counters().count_drop(Drop::NoMbuf),
            }
            return;
        }
        self.ip6_ident = self.ip6_ident.wrapping_add(self.engine.config().workers.max(1));
        let counters = self.engine.counters().clone();
        write_fragments(&counters, frame, size, self.ip6_ident, io, |b, io| {
            self.output6(now, port, next_hop, b, io)
        });
    }

    /// Records a neighbour another worker received (and checked: inside the
    /// port's subnet; `create` only for a request to us) and sends the
    /// packets that waited for it.
    pub fn learn(&mut self, now: u64, learned: Learned, io: &mut impl Io<B>) {
        self.learn_from(now, learned, io);
    }

    /// [`Worker::learn`], creating an entry only if `create`; whether the
    /// neighbour was stored. Evictions and the packets they drop are counted.
    fn learn_from(&mut self, now: u64, learned: Learned, io: &mut impl Io<B>) -> bool {
        let Learned { port, ip, mac, create, replace } = learned;
        // Without `replace`, a neighbour whose MAC is known keeps it.
        let known = match ip {
            IpAddr::V4(a) => self.neigh.lookup(port, u32::from(a)),
            IpAddr::V6(a) => self.neigh6.lookup(port, u128::from(a)),
        };
        if !replace && known.is_some_and(|m| m != mac) {
            return false;
        }
        let Some(src_mac) = self.engine.iface(port).map(|i| i.mac) else { return false };
        let counters = self.engine.counters();
        let release = |mut p: B, mac| {
            set_macs(p.as_mut(), src_mac, mac);
            io.send(port, p);
        };
        let fail = |_dropped| counters.count_drop(Drop::NeighUnresolved);
        let (stored, evicted) = match ip {
            IpAddr::V4(ip) => {
                let before = self.neigh.evicted();
                let stored = self.neigh.learn(now, (port, u32::from(ip)), mac, create, release, fail);
                (stored, self.neigh.evicted() - before)
            }
            IpAddr::V6(ip) => {
                let before = self.neigh6.evicted();
                let stored = self.neigh6.learn(now, (port, u128::from(ip)), mac, create, release, fail);
                (stored, self.neigh6.evicted() - before)
            }
        };
        counters.event(Event::NeighEvicted, evicted);
        stored
    }

    /// Whether a neighbour was learnt since the last
    /// [`take_learned`](Self::take_learned): the poll's one test on most
    /// polls.
    #[inline]
    pub fn has_learned(&self) -> bool {
        self.n_learned > 0
    }

    /// The neighbours learnt since the last call (for the other workers).
    pub fn take_learned(&mut self) -> impl Iterator<Item = Learned> + '_ {
        let n = std::mem::take(&mut self.n_learned);
        self.learned[..n].iter_mut().filter_map(Option::take)
    }

    /// Hands `pkt` to `port`'s kernel interface, counted.
    fn punt(&mut self, port: u16, pkt: B, io: &mut impl Io<B>) {
        kernel_or_count(self.engine.counters(), port, pkt, io);
    }

    /// Counts the drop `why` and turns `pkt` into `reply` with `build`
    /// ([`reject::build`], [`reject::build6`]); true if it is to be sent to
    /// the sender's next hop like a routed packet (then counted as sent).
    #[cold]
    fn rejected(&self, pkt: &mut B, reply: Reject, why: Drop, build: impl FnOnce(&mut B) -> bool) -> bool {
        let counters = self.engine.counters();
        counters.count_drop(why);
        if !build(pkt) {
            return false; // Not resizable (never for a single-segment buffer).
        }
        counters.event(
            match reply {
                Reject::Rst => Event::TcpRstSent,
                Reject::PortUnreachable => Event::IcmpPortUnreachSent,
            },
            1,
        );
        true
    }

    /// Sends a routed packet to `next_hop`, resolving its MAC first. The
    /// per-packet case (within the port's MTU, the next hop's MAC in the
    /// neighbour cache) is inlined into the caller: the two MAC writes and
    /// the send, without a call; anything else is [`Worker::output_slow`]'s.
    #[inline(always)]
    fn output(&mut self, now: u64, port: u16, next_hop: u32, mut pkt: B, io: &mut impl Io<B>) {
        if let Some((src_mac, mtu)) = self.engine.iface(port).map(|i| (i.mac, usize::from(i.mtu))) {
            if pkt.as_ref().len() <= ethernet::HEADER_LEN + mtu {
                if let Some(mac) = self.neigh.cached(port, next_hop) {
                    set_macs(pkt.as_mut(), src_mac, mac);
                    io.send(port, pkt);
                    return;
                }
            }
        }
        self.output_slow(now, port, next_hop, pkt, io, true)
    }

    /// [`Worker::output`] for a reply the gateway makes on its own to the
    /// sender of a packet (a RST, a port unreachable): an unresolved next
    /// hop is solicited as a stranger's entry, never a *wanted* one
    /// ([`NeighTable::park`]).
    fn output_reply(&mut self, now: u64, port: u16, next_hop: u32, pkt: B, io: &mut impl Io<B>) {
        self.output_slow(now, port, next_hop, pkt, io, false)
    }

    /// [`Worker::output`] when the fast case does not apply: no such port,
    /// over the MTU (fragments, or the drop), the neighbour not cached
    /// (the table, else parked while ARP runs; `wanted` as
    /// [`NeighTable::park`]'s).
    #[inline(never)]
    fn output_slow(
        &mut self,
        now: u64,
        port: u16,
        next_hop: u32,
        mut pkt: B,
        io: &mut impl Io<B>,
        wanted: bool,
    ) {
        let Some((src_mac, mtu)) = self.engine.iface(port).map(|i| (i.mac, i.mtu as usize)) else {
            self.engine.counters().count_drop(Drop::NoRoute);
            return;
        };
        if pkt.as_ref().len() > ethernet::HEADER_LEN + mtu {
            // Over the MTU with DF clear (the engine answered DF with
            // "fragmentation needed"): fragments in fresh buffers.
            let df = ipv4::Packet::new_checked(&pkt.as_ref()[ethernet::HEADER_LEN..])
                .map_or(true, |ip| ip.dont_frag());
            if df {
                self.engine.counters().count_drop(Drop::CannotFragment);
            } else {
                self.output_fragments(now, port, next_hop, pkt.as_ref(), io);
            }
            return;
        }
        if let Some(mac) = self.neigh.resolve(port, next_hop, wanted) {
            set_macs(pkt.as_mut(), src_mac, mac);
            io.send(port, pkt);
            return;
        }
        let counters = self.engine.counters();
        let evicted = self.neigh.evicted();
        let parked = self
            .neigh
            .park(now, port, next_hop, pkt, wanted, |_dropped| counters.count_drop(Drop::NeighUnresolved));
        counters.event(Event::NeighEvicted, self.neigh.evicted() - evicted);
        match parked {
            Resolve::HeldProbe => {
                self.engine.counters().event(Event::NeighHeld, 1);
                self.send_probe(Probe { port, ip: next_hop }, io);
            }
            Resolve::Held => self.engine.counters().event(Event::NeighHeld, 1),
            Resolve::Full(_) => self.engine.counters().count_drop(Drop::NeighQueueFull),
        }
    }

    /// Sends a routed IPv6 packet to `next_hop`, resolving its MAC first
    /// (a neighbour solicitation, the packet parked meanwhile). IPv6 is
    /// not fragmented on the way: the engine answers a packet over the
    /// output MTU with Packet Too Big; one that still is (a reply that
    /// grew) is counted. The per-packet case is inline, as
    /// [`Worker::output`]'s.
    #[inline(always)]
    fn output6(&mut self, now: u64, port: u16, next_hop: u128, mut pkt: B, io: &mut impl Io<B>) {
        if let Some((src_mac, mtu)) = self.engine.iface(port).map(|i| (i.mac, usize::from(i.mtu))) {
            if pkt.as_ref().len() <= ethernet::HEADER_LEN + mtu {
                if let Some(mac) = self.neigh6.cached(port, next_hop) {
                    set_macs(pkt.as_mut(), src_mac, mac);
                    io.send(port, pkt);
                    return;
                }
            }
        }
        self.output6_slow(now, port, next_hop, pkt, io, true)
    }

    /// [`Worker::output_reply`] for IPv6 (an ICMPv6 error, a RST, a
    /// SYNPROXY cookie SYN-ACK).
    fn output6_reply(&mut self, now: u64, port: u16, next_hop: u128, pkt: B, io: &mut impl Io<B>) {
        self.output6_slow(now, port, next_hop, pkt, io, false)
    }

    /// [`Worker::output6`] when its fast case does not apply (`wanted` as
    /// [`Worker::output_slow`]'s).
    #[inline(never)]
    fn output6_slow(
        &mut self,
        now: u64,
        port: u16,
        next_hop: u128,
        mut pkt: B,
        io: &mut impl Io<B>,
        wanted: bool,
    ) {
        let Some((src_mac, mtu, has6)) =
            self.engine.iface(port).map(|i| (i.mac, i.mtu as usize, i.addr6.is_some()))
        else {
            self.engine.counters().count_drop(Drop::NoRoute);
            return;
        };
        if pkt.as_ref().len() > ethernet::HEADER_LEN + mtu {
            self.engine.counters().count_drop(Drop::CannotFragment);
            return;
        }
        if let Some(mac) = self.neigh6.resolve(port, next_hop, wanted) {
            set_macs(pkt.as_mut(), src_mac, mac);
            io.send(port, pkt);
            return;
        }
        if !has6 {
            // No IPv6 address to solicit from: the port has no IPv6 route.
            self.engine.counters().count_drop(Drop::NoRoute);
            return;
        }
        let counters = self.engine.counters();
        let evicted = self.neigh6.evicted();
        let parked = self
            .neigh6
            .park(now, port, next_hop, pkt, wanted, |_dropped| counters.count_drop(Drop::NeighUnresolved));
        counters.event(Event::NeighEvicted, self.neigh6.evicted() - evicted);
        match parked {
            Resolve::HeldProbe => {
                self.engine.counters().event(Event::NeighHeld, 1);
                self.send_solicit(Probe { port, ip: next_hop }, io);
            }
            Resolve::Held => self.engine.counters().event(Event::NeighHeld, 1),
            Resolve::Full(_) => self.engine.counters().count_drop(Drop::NeighQueueFull),
        }
    }

    /// A fresh buffer holding `frame`, if it fits `port`'s MTU.
    /// Translates the frame of the last NAT64 action
    /// ([`Engine::pending_nat64`]; IPv6 -> IPv4 takes the next IPv4
    /// identification); false, counted, if the translation refuses it.
    fn translate(&mut self, pkt: &mut impl PacketBuf) -> bool {
        // The identification goes into the engine's record in place (no
        // copy of the record per packet); it is the worker's counter.
        let ident = self.ip_ident.wrapping_add(1);
        let r = match self.engine.pending_nat64_mut() {
            Nat64Pending::To4(p) => {
                self.ip_ident = ident;
                p.ident = ident;
                nat64::frame_to_ipv4(pkt, p)
            }
            Nat64Pending::To6(p) => nat64::frame_to_ipv6(pkt, p),
        };
        match r {
            Ok(()) => true,
            Err(e) => {
                let why =
                    if e == nat64::Error::Headroom { Drop::NoHeadroom } else { Drop::Nat64Untranslatable };
                self.engine.counters().count_drop(why);
                false
            }
        }
    }

    fn copy_out(&mut self, port: u16, frame: &[u8], io: &mut impl Io<B>) -> Option<B> {
        let mtu = self.engine.iface(port)?.mtu as usize;
        if frame.len() > ethernet::HEADER_LEN + mtu {
            return None;
        }
        let mut b = io.alloc()?;
        if !b.set_len(frame.len()) {
            return None;
        }
        b.as_mut().copy_from_slice(frame);
        Some(b)
    }

    /// Sends a neighbour solicitation for `p.ip` out `p.port`, from the
    /// port's IPv6 address.
    fn send_solicit(&mut self, p: Probe<u128>, io: &mut impl Io<B>) {
        let Some((mac, Some(src))) = self.engine.iface(p.port).map(|i| (i.mac, i.ipv6())) else { return };
        let Some(mut b) = io.alloc() else {
            self.engine.counters().count_drop(Drop::NoMbuf);
            return;
        };
        if !b.set_len(NS_FRAME_LEN) {
            self.engine.counters().count_drop(Drop::NoMbuf);
            return;
        }
        build_neighbour_solicit(b.as_mut(), mac, src, Ipv6Addr::from(p.ip));
        self.engine.counters().event(Event::NdSolicitsSent, 1);
        io.send(p.port, b);
    }

    fn send_probe(&mut self, p: Probe, io: &mut impl Io<B>) {
        let Some(iface) = self.engine.iface(p.port).copied() else { return };
        let Some(mut b) = io.alloc() else {
            self.engine.counters().count_drop(Drop::NoMbuf);
            return;
        };
        if !b.set_len(ARP_FRAME_LEN) {
            self.engine.counters().count_drop(Drop::NoMbuf);
            return;
        }
        build_arp_request(b.as_mut(), iface.mac, iface.addr, Ipv4Addr::from(p.ip));
        self.engine.counters().event(Event::ArpRequestsSent, 1);
        io.send(p.port, b);
    }

    /// Timers: session expiry, neighbour probes and reassembly timeouts.
    /// Call once per poll loop.
    pub fn tick(&mut self, now: u64, io: &mut impl Io<B>) {
        self.engine.expire(now);
        if self.engine.timer_resends_due() {
            self.timer_resends(now, io);
        }
        self.timers(now, io);
    }

    /// SYNPROXY handshakes whose timer came due during the expiry pass,
    /// still waiting for the real server: each SYN, rebuilt by the engine
    /// ([`Engine::next_timer_resend`]), processed as received from the
    /// client on its side's port ([`Worker::again`]), then the handshake's
    /// timer set again.
    #[inline(never)]
    fn timer_resends(&mut self, now: u64, io: &mut impl Io<B>) {
        while self.engine.timer_resends_due() {
            // The buffer first: without one the rest are given up (their
            // sessions' timers come due again, `synproxy::resend_timer`).
            let Some(mut b) = io.alloc() else {
                self.engine.counters().count_drop(Drop::NoMbuf);
                return self.engine.forget_timer_resends();
            };
            let Some(r) = self.engine.next_timer_resend(now) else { return };
            match r {
                TimerResend::Again { owner, port } => {
                    self.again(now, port, false, b, io);
                    self.engine.rearm_resend(now, owner);
                }
                TimerResend::Ipv4 { owner } => {
                    if !b.set_len(TIMER_SYN_LEN) {
                        self.engine.counters().count_drop(Drop::NoMbuf);
                        continue;
                    }
                    b.truncate(TIMER_SYN_LEN);
                    if let Some(action) = self.engine.timer_resend4(now, owner, b.as_mut()) {
                        self.carry_out_apart(now, action, b, io);
                    }
                }
            }
        }
    }

    /// [`Worker::tick`] with the session expiry's budget given
    /// ([`Engine::expire_with`]): the poll loop's entry. Returns what the
    /// expiry pass did. Inline: on most polls it is a few tests.
    #[inline]
    pub fn tick_with(&mut self, now: u64, expire_budget: usize, io: &mut impl Io<B>) -> Expired {
        let done = self.engine.expire_with(now, expire_budget);
        // Only an expiry pass that examined sessions queues resends.
        if done.examined > 0 && self.engine.timer_resends_due() {
            self.timer_resends(now, io);
        }
        self.timers(now, io);
        done
    }

    /// The timers other than session expiry: inline, their tests only
    /// (most polls: no static neighbours published, the neighbour tick not
    /// due), the work out of line.
    #[inline]
    fn timers(&mut self, now: u64, io: &mut impl Io<B>) {
        if self.statics.is_some() || self.statics6.is_some() {
            self.refresh_statics(io);
        }
        if now.saturating_sub(self.last_neigh_tick) >= NEIGH_TICK_MS {
            self.neigh_tick(now, io);
        }
    }

    /// Every [`NEIGH_TICK_MS`]: reassembly timeouts, ARP and ND probes.
    #[inline(never)]
    fn neigh_tick(&mut self, now: u64, io: &mut impl Io<B>) {
        self.last_neigh_tick = now;
        self.engine.expire_fragments(now);
        for p in due_probes(&mut self.neigh, now, self.engine.counters()).into_iter().flatten() {
            self.send_probe(p, io);
        }
        for p in due_probes(&mut self.neigh6, now, self.engine.counters()).into_iter().flatten() {
            self.send_solicit(p, io);
        }
    }
}

/// The requests (ARP or ND) neighbour table `table` wants sent at `now`,
/// at most 16 per tick; the held packets of neighbours that never answered
/// are counted as `drop_neigh_unresolved`.
fn due_probes<B, A: NeighAddr>(
    table: &mut NeighTable<B, A>,
    now: u64,
    counters: &WorkerCounters,
) -> [Option<Probe<A>>; 16] {
    let mut probes = [None; 16];
    let mut n = 0;
    table.tick(
        now,
        |p| {
            if n < probes.len() {
                probes[n] = Some(p);
                n += 1;
            }
        },
        |_dropped| counters.count_drop(Drop::NeighUnresolved),
    );
    probes
}

/// Hands `pkt` to `port`'s kernel interface and counts it
/// (`kernel_punted`), or counts why not (`drop_kernel_full`).
fn kernel_or_count<B>(counters: &WorkerCounters, port: u16, pkt: B, io: &mut impl Io<B>) {
    match io.punt(port, pkt) {
        Ok(()) => counters.event(Event::ToKernel, 1),
        Err(pkt) => {
            drop(pkt);
            counters.count_drop(Drop::KernelFull);
        }
    }
}

/// Sets source and destination MAC of an outgoing frame (one length test
/// for both: the view then writes a 12-byte slice; a frame too short for
/// them, never seen here, is left as it is).
#[inline]
pub fn set_macs(frame: &mut [u8], src: MacAddr, dst: MacAddr) {
    let Some(macs) = frame.get_mut(..ethernet::field::SRC_ADDR.end) else { return };
    let mut eth = ethernet::Frame::new_unchecked(macs);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
}

/// Writes `frame` as fragments of at most `mtu` bytes of IP into fresh
/// buffers from `io` and gives each to `out`; counts them (`frag_sent`), or
/// why there are none or too few. An IPv6 frame's fragments carry `ident`
/// (an IPv4 frame's keep its own).
fn write_fragments<B: PacketBuf, I: Io<B>>(
    counters: &WorkerCounters,
    frame: &[u8],
    mtu: usize,
    ident: u32,
    io: &mut I,
    mut out: impl FnMut(B, &mut I),
) {
    let v6 = ethernet::Frame::new_unchecked(frame).ethertype() == EtherType::Ipv6;
    let mut n = 0;
    for (k, len) in frag::fragment_lens(frame, mtu).enumerate() {
        let Some(mut b) = io.alloc() else {
            counters.count_drop(Drop::NoMbuf);
            break;
        };
        if !b.set_len(len) {
            counters.count_drop(Drop::NoMbuf);
            break;
        }
        if v6 {
            frag::write_fragment6(frame, mtu, k, ident, b.as_mut());
        } else {
            frag::write_fragment(frame, mtu, k, b.as_mut());
        }
        out(b, io);
        n += 1;
    }
    if n == 0 && frag::fragment_lens(frame, mtu).next().is_none() {
        counters.count_drop(Drop::CannotFragment);
    }
    counters.event(Event::FragSent, n);
}

#[cfg(test)]
mod neigh6_tests;
#[cfg(test)]
mod synproxy6_tests;

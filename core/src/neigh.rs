//! Neighbour cache of one worker, with a small hold queue per entry: one
//! table for ARP (keyed by IPv4 `u32`) and one for IPv6 neighbour
//! discovery (keyed by `u128`, RFC 4861), the same code and rules; "ARP
//! request" below reads "neighbour solicitation" for IPv6.
//!
//! A packet for a next hop whose MAC is unknown is parked (at most
//! [`HOLD`] per neighbour) while ARP requests go out every `retry_ms`; when
//! the reply arrives the parked packets leave in order. After `max_probes`
//! unanswered requests the entry fails and its packets are dropped and
//! counted. A resolved entry is used for `reachable_ms`; after that it is
//! still used while it is re-probed, and dropped when the probes fail.
//! All storage is allocated at start: `capacity` entries, each with room for
//! [`HOLD`] packets.
//!
//! Strangers cannot fill it (issue 10). The engine only offers senders
//! inside a connected subnet of the receiving port, and only a request to
//! us creates an entry (Linux `arp_accept=0`: an unsolicited reply or a
//! gratuitous ARP only updates one). When the table, or the port's share of
//! it (`per_port_max`), is full, a new entry takes the place of the least
//! recently confirmed one, incomplete and stale entries first, on the port
//! holding the most entries: resolving a new on-link host always succeeds,
//! and a flood on one segment only ever evicts that segment's entries
//! once it holds more than any other. Entries the gateway itself sends to
//! or is resolving (*wanted*: a packet it forwards was parked for it, or
//! looked it up; a reply the gateway makes on its own to a packet's sender
//! does not count, [`NeighTable::park`]) go after every other, and an entry a stranger's
//! request creates only ever takes the place of another stranger's: a
//! flood of requests from made-up senders (IPv6's link-local sources are
//! not bounded by a subnet, RFC 6583) cannot evict the router or a
//! resolution in progress; when only wanted entries are left it is
//! answered without an entry.
//!
//! Static neighbours (`[[neighbour]]`, `gwctl --add-neighbour`) live beside
//! the learnt ones: they are never evicted, never probed, and ARP never
//! changes them (for a generator or router that does not answer ARP). The
//! control plane publishes the whole set ([`StaticNeighbours`]); a worker
//! takes a new set between bursts ([`NeighTable::set_statics`]).
//!
//! The worker asks for the next hop's MAC once per forwarded packet
//! ([`NeighTable::resolve`]), so a resolved MAC is also kept in a small
//! direct-mapped cache of [`HOT`] (port, address, MAC) lines in front of
//! the hash maps: one multiply and one compare instead of two hash probes.
//! A line is good only while the table's generation is the one it was
//! filled in; every change that can alter an answer (an entry learnt,
//! evicted, failed or removed, a new static set) takes a new generation,
//! so the cache never answers what [`NeighTable::lookup`] would not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use crate::wire::ethernet::MacAddr;

/// Packets parked per unresolved neighbour.
pub const HOLD: usize = 8;

#[derive(Clone, Copy, Debug)]
pub struct NeighConfig {
    pub capacity: usize,
    /// Most entries of one port (at most `capacity`).
    pub per_port_max: usize,
    pub reachable_ms: u64,
    pub retry_ms: u64,
    pub max_probes: u8,
}

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig {
            capacity: 1024,
            per_port_max: 768,
            reachable_ms: 300_000,
            retry_ms: 1000,
            max_probes: 3,
        }
    }
}

struct Entry<B, A> {
    port: u16,
    ip: A,
    mac: Option<MacAddr>,
    /// When the MAC was last confirmed.
    confirmed: u64,
    /// When the last request went out.
    probed: u64,
    probes: u8,
    /// The gateway sends to it, or is resolving it (see the module docs).
    wanted: bool,
    held: [Option<B>; HOLD],
}

/// What [`NeighTable::park`] did.
#[derive(Debug)]
pub enum Resolve<B> {
    /// Parked; an ARP request for the neighbour should go out now.
    HeldProbe,
    /// Parked behind an earlier request.
    Held,
    /// Not parked: the hold queue or the table is full.
    Full(B),
}

/// An ARP request the worker should send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe<A = u32> {
    pub port: u16,
    pub ip: A,
}

/// Ports with their own entry count; higher port numbers share the last.
const PORTS: usize = 64;

/// A neighbour set by configuration: never evicted, never changed by ARP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticNeigh<A = u32> {
    pub port: u16,
    pub ip: A,
    pub mac: MacAddr,
}

/// Hands the set of static neighbours from the control plane to the
/// workers, as [`crate::service::Publisher`] does snapshots: one atomic load
/// when nothing changed, the lock only after a change.
pub struct StaticNeighbours<A = u32> {
    version: AtomicU64,
    current: Mutex<Arc<[StaticNeigh<A>]>>,
}

impl<A> StaticNeighbours<A> {
    pub fn new(first: Vec<StaticNeigh<A>>) -> StaticNeighbours<A> {
        StaticNeighbours { version: AtomicU64::new(1), current: Mutex::new(first.into()) }
    }
    /// Makes `set` the current set.
    pub fn publish(&self, set: Vec<StaticNeigh<A>>) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *cur = set.into();
        self.version.fetch_add(1, Ordering::Release);
    }
    /// The current set and its version if the version differs from `have`.
    #[inline]
    pub fn newer_than(&self, have: u64) -> Option<(u64, Arc<[StaticNeigh<A>]>)> {
        if self.version.load(Ordering::Acquire) == have {
            return None;
        }
        let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        Some((self.version.load(Ordering::Acquire), cur.clone()))
    }
    pub fn current(&self) -> Arc<[StaticNeigh<A>]> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The neighbour table of one address family: `A` is the address, `u32`
/// for IPv4 (ARP) and `u128` for IPv6 (neighbour discovery, RFC 4861); the
/// rules above hold for both.
pub struct NeighTable<B, A = u32> {
    cfg: NeighConfig,
    /// The resolved-MAC cache ([`NeighTable::resolve`]), indexed by
    /// [`NeighAddr::hot_line`].
    hot: [Hot<A>; HOT],
    /// The current generation: lines of another are stale. Starts at 1
    /// (0 marks a line never filled) and only grows.
    generation: u64,
    /// Static neighbours by (port, address); consulted first.
    statics: FxHashMap<(u16, A), MacAddr>,
    index: FxHashMap<(u16, A), u32>,
    entries: Vec<Option<Entry<B, A>>>,
    free: Vec<u32>,
    /// Entries per port (index `port.min(PORTS - 1)`).
    per_port: [u32; PORTS],
    evicted: u64,
}

impl<B, A> Entry<B, A> {
    /// Eviction order: strangers' entries before wanted ones, stale or
    /// incomplete before fresh, then the least recently confirmed or
    /// probed.
    fn rank(&self, now: u64, reachable_ms: u64) -> (bool, bool, u64) {
        let fresh = self.mac.is_some() && now.saturating_sub(self.confirmed) < reachable_ms;
        (self.wanted, fresh, self.confirmed.max(self.probed))
    }
}

fn port_slot(port: u16) -> usize {
    (port as usize).min(PORTS - 1)
}

/// Lines of the resolved-MAC cache (a power of two): more than the next
/// hops a gateway usually sends to (its routers and real servers); two
/// that share a line take turns, each answered by the maps when it misses.
pub const HOT: usize = 64;

/// One line of the resolved-MAC cache.
#[derive(Clone, Copy)]
struct Hot<A> {
    generation: u64,
    port: u16,
    ip: A,
    mac: MacAddr,
}

/// An address a [`NeighTable`] is keyed by.
pub trait NeighAddr: Copy + Eq + std::hash::Hash + std::fmt::Debug + Default {
    /// The resolved-MAC cache line of (`port`, `self`), below [`HOT`].
    fn hot_line(self, port: u16) -> usize;
}

/// The top `HOT.trailing_zeros()` bits of a Fibonacci hash of `x`.
#[inline]
fn hot_hash(x: u64) -> usize {
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - HOT.trailing_zeros())) as usize
}

impl NeighAddr for u32 {
    #[inline]
    fn hot_line(self, port: u16) -> usize {
        hot_hash(u64::from(self) | u64::from(port) << 32)
    }
}

impl NeighAddr for u128 {
    #[inline]
    fn hot_line(self, port: u16) -> usize {
        hot_hash((self as u64) ^ ((self >> 64) as u64).rotate_left(17) ^ u64::from(port) << 48)
    }
}

impl<B, A: NeighAddr> NeighTable<B, A> {
    pub fn new(cfg: NeighConfig) -> Self {
        let mut index = FxHashMap::default();
        index.reserve(cfg.capacity);
        let line = Hot { generation: 0, port: 0, ip: A::default(), mac: MacAddr([0; 6]) };
        NeighTable {
            cfg,
            hot: [line; HOT],
            generation: 1,
            statics: FxHashMap::default(),
            index,
            entries: (0..cfg.capacity).map(|_| None).collect(),
            free: (0..cfg.capacity as u32).rev().collect(),
            per_port: [0; PORTS],
            evicted: 0,
        }
    }

    /// Entries evicted to make room since the start.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// A free slot for a new entry on `port`: a free one while the table
    /// and the port's share have room, else the slot of an evicted entry
    /// (its parked packets go to `fail`); for a stranger's entry
    /// (`!wanted`) only another stranger's. Runs only when an entry is made.
    fn slot_for(&mut self, now: u64, port: u16, wanted: bool, mut fail: impl FnMut(B)) -> Option<u32> {
        let full_port = self.per_port[port_slot(port)] as usize >= self.cfg.per_port_max;
        if !full_port {
            if let Some(i) = self.free.pop() {
                return Some(i);
            }
        }
        // The victim's port: this one when it is at its share, else the
        // port holding the most entries.
        let victim_port =
            if full_port { port_slot(port) } else { (0..PORTS).max_by_key(|&p| self.per_port[p])? };
        let reachable = self.cfg.reachable_ms;
        let (i, _) = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i, e)))
            .filter(|(_, e)| port_slot(e.port) == victim_port)
            .min_by_key(|(_, e)| e.rank(now, reachable))
            .filter(|(_, e)| wanted || !e.wanted)?;
        let e = self.entries[i].take().expect("victim exists");
        self.generation += 1;
        self.index.remove(&(e.port, e.ip));
        self.per_port[port_slot(e.port)] -= 1;
        for p in e.held.into_iter().flatten() {
            fail(p);
        }
        self.evicted += 1;
        Some(i as u32)
    }

    fn insert(&mut self, i: u32, e: Entry<B, A>) {
        self.per_port[port_slot(e.port)] += 1;
        self.index.insert((e.port, e.ip), i);
        self.entries[i as usize] = Some(e);
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Replaces the static neighbours by `set`. A learnt entry for the
    /// same neighbour is removed, and the packets it held leave through
    /// `release` (packet, port, MAC) with the static MAC.
    pub fn set_statics(&mut self, set: &[StaticNeigh<A>], mut release: impl FnMut(B, u16, MacAddr)) {
        self.generation += 1;
        self.statics.clear();
        for s in set {
            self.statics.insert((s.port, s.ip), s.mac);
            if let Some(i) = self.index.remove(&(s.port, s.ip)) {
                let e = self.entries[i as usize].take().expect("indexed entry");
                self.per_port[port_slot(e.port)] -= 1;
                self.free.push(i);
                for p in e.held.into_iter().flatten() {
                    release(p, s.port, s.mac);
                }
            }
        }
    }

    /// Static neighbours in force.
    pub fn statics(&self) -> usize {
        self.statics.len()
    }

    /// The MAC of `ip` on `port`, if known (a static neighbour first).
    #[inline]
    pub fn lookup(&self, port: u16, ip: A) -> Option<MacAddr> {
        if !self.statics.is_empty() {
            if let Some(&mac) = self.statics.get(&(port, ip)) {
                return Some(mac);
            }
        }
        let i = *self.index.get(&(port, ip))?;
        self.entries[i as usize].as_ref().and_then(|e| e.mac)
    }

    /// The MAC of `ip` on `port` if the resolved-MAC cache holds it (one
    /// line compared, nothing written): the part of
    /// [`resolve`](Self::resolve) the worker inlines into its per-packet
    /// output; `None` says only "not cached".
    #[inline(always)]
    pub fn cached(&self, port: u16, ip: A) -> Option<MacAddr> {
        let h = &self.hot[ip.hot_line(port)];
        (h.generation == self.generation && h.ip == ip && h.port == port).then_some(h.mac)
    }

    /// [`lookup`](Self::lookup) through the resolved-MAC cache: the
    /// per-packet question. A hit is one line compared; a miss asks the
    /// maps and, for a packet the gateway forwards (`wanted`, as
    /// [`park`](Self::park)'s), makes the entry wanted and keeps the MAC
    /// in the cache; a reply the gateway makes on its own does neither.
    #[inline]
    pub fn resolve(&mut self, port: u16, ip: A, wanted: bool) -> Option<MacAddr> {
        if let Some(mac) = self.cached(port, ip) {
            return Some(mac);
        }
        let line = ip.hot_line(port);
        let mac = self.lookup(port, ip)?;
        if !wanted {
            return Some(mac);
        }
        if let Some(&i) = self.index.get(&(port, ip)) {
            if let Some(e) = self.entries[i as usize].as_mut() {
                e.wanted = true;
            }
        }
        self.hot[line] = Hot { generation: self.generation, port, ip, mac };
        Some(mac)
    }

    /// Parks `pkt` until the MAC of `ip` on `port` is known (after
    /// [`lookup`](Self::lookup) found none); packets of an entry evicted to
    /// make room go to `fail`. `wanted`: the entry becomes *wanted* (a
    /// packet the gateway forwards); a reply the gateway makes on its own
    /// to whoever sent a packet (a RST, a port unreachable, a SYNPROXY
    /// cookie) parks as a stranger's, so that answering a flood from
    /// made-up on-link sources cannot evict a wanted entry.
    pub fn park(
        &mut self,
        now: u64,
        port: u16,
        ip: A,
        pkt: B,
        wanted: bool,
        fail: impl FnMut(B),
    ) -> Resolve<B> {
        if let Some(&i) = self.index.get(&(port, ip)) {
            let e = self.entries[i as usize].as_mut().expect("indexed entry");
            e.wanted |= wanted;
            return match e.held.iter_mut().find(|h| h.is_none()) {
                Some(slot) => {
                    *slot = Some(pkt);
                    Resolve::Held
                }
                None => Resolve::Full(pkt),
            };
        }
        let Some(i) = self.slot_for(now, port, wanted, fail) else {
            return Resolve::Full(pkt);
        };
        let mut held: [Option<B>; HOLD] = Default::default();
        held[0] = Some(pkt);
        self.insert(i, Entry { port, ip, mac: None, confirmed: 0, probed: now, probes: 1, wanted, held });
        Resolve::HeldProbe
    }

    /// Records `ip` -> `mac` on `port` (`(port, ip)`) if the entry exists or `create`
    /// (evicting one if need be: its packets go to `fail`); hands the
    /// packets that were waiting for it to `release`. Whether it was stored.
    pub fn learn(
        &mut self,
        now: u64,
        (port, ip): (u16, A),
        mac: MacAddr,
        create: bool,
        mut release: impl FnMut(B, MacAddr),
        fail: impl FnMut(B),
    ) -> bool {
        // ARP never changes a static neighbour, nor makes an entry beside it.
        if self.statics.contains_key(&(port, ip)) {
            return false;
        }
        let i = match self.index.get(&(port, ip)) {
            Some(&i) => i,
            None if create => match self.slot_for(now, port, false, fail) {
                Some(i) => {
                    let e = Entry {
                        port,
                        ip,
                        mac: None,
                        confirmed: now,
                        probed: now,
                        probes: 0,
                        wanted: false,
                        held: Default::default(),
                    };
                    self.insert(i, e);
                    i
                }
                None => return false,
            },
            None => return false,
        };
        let e = self.entries[i as usize].as_mut().expect("indexed entry");
        if e.mac != Some(mac) {
            self.generation += 1;
        }
        e.mac = Some(mac);
        e.confirmed = now;
        e.probes = 0;
        for h in e.held.iter_mut() {
            if let Some(p) = h.take() {
                release(p, mac);
            }
        }
        true
    }

    /// Housekeeping: returns (via `probe`) the requests to send now, and
    /// drops (via `fail`) packets of neighbours that did not answer.
    pub fn tick(&mut self, now: u64, mut probe: impl FnMut(Probe<A>), mut fail: impl FnMut(B)) {
        let cfg = self.cfg;
        for i in 0..self.entries.len() {
            let Some(e) = self.entries[i].as_mut() else { continue };
            let fresh = e.mac.is_some() && now.saturating_sub(e.confirmed) < cfg.reachable_ms;
            if fresh || now.saturating_sub(e.probed) < cfg.retry_ms {
                continue;
            }
            if e.probes >= cfg.max_probes {
                for h in e.held.iter_mut() {
                    if let Some(p) = h.take() {
                        fail(p);
                    }
                }
                self.index.remove(&(e.port, e.ip));
                self.per_port[port_slot(e.port)] -= 1;
                self.entries[i] = None;
                self.generation += 1;
                self.free.push(i as u32);
                continue;
            }
            e.probes += 1;
            e.probed = now;
            probe(Probe { port: e.port, ip: e.ip });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);

    /// One step of [`the_resolved_mac_cache_answers_as_the_maps_do`]:
    /// (kind, port, address, MAC byte, time step).
    type Op = (u8, u16, u32, u8, u64);

    /// Replays `ops` on a small table (evictions, failures, MACs that
    /// change, static sets) and checks after each that [`NeighTable::resolve`]
    /// answers every (port, address) as [`NeighTable::lookup`] does, with
    /// more keys than cache lines so lines are shared.
    fn replay(ops: &[Op]) {
        let cfg =
            NeighConfig { capacity: 24, per_port_max: 16, reachable_ms: 50, retry_ms: 10, max_probes: 2 };
        let mut t: NeighTable<u32> = NeighTable::new(cfg);
        let mut now = 0;
        for &(kind, port, ip, m, dt) in ops {
            now += dt;
            let mac = MacAddr([2, 0, 0, 0, 0, m]);
            match kind % 5 {
                0 | 1 => {
                    t.learn(now, (port, ip), mac, kind % 5 == 0, |_, _| {}, drop);
                }
                2 => {
                    t.park(now, port, ip, 0u32, true, drop);
                }
                3 => t.tick(now, |_| {}, drop),
                _ => {
                    let set: Vec<_> =
                        (0..u32::from(m % 4)).map(|k| StaticNeigh { port, ip: ip + k, mac }).collect();
                    t.set_statics(&set, |_, _, _| {});
                }
            }
            for port in 0..3 {
                for ip in 0..100 {
                    assert_eq!(
                        t.resolve(port, ip, true),
                        t.lookup(port, ip),
                        "port {port} ip {ip} after {kind}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_resolved_mac_cache_answers_as_the_maps_do(
            ops in proptest::collection::vec((0u8..5, 0u16..3, 0u32..100, 0u8..3, 0u64..30), 1..60)
        ) {
            replay(&ops);
        }
    }

    #[test]
    fn a_cached_mac_follows_a_change_an_eviction_and_a_static() {
        let mut t: NeighTable<u32> = NeighTable::new(cfg(2, 2));
        let other = MacAddr([2, 0, 0, 0, 0, 10]);
        t.learn(0, (0, 7), MAC, true, |_, _| {}, drop);
        assert_eq!(t.resolve(0, 7, true), Some(MAC));
        // A gratuitous ARP moves it.
        t.learn(1, (0, 7), other, false, |_, _| {}, drop);
        assert_eq!(t.resolve(0, 7, true), Some(other));
        // Two new next hops on a table of two evict it once it is stale.
        t.park(2000, 0, 8, 1, true, drop);
        t.park(2001, 0, 9, 2, true, drop);
        assert_eq!(t.resolve(0, 7, true), None);
        t.learn(2002, (0, 9), MAC, false, |_, _| {}, drop);
        // A static neighbour takes precedence over a learnt one.
        assert_eq!(t.resolve(0, 9, true), Some(MAC));
        t.set_statics(&[StaticNeigh { port: 0, ip: 9, mac: other }], |_, _, _| {});
        assert_eq!(t.resolve(0, 9, true), Some(other));
        t.set_statics(&[], |_, _, _| {});
        assert_eq!(t.resolve(0, 9, true), None);
    }

    #[test]
    fn a_static_neighbour_is_never_changed_by_arp_never_evicted_and_frees_what_waited() {
        let cfg =
            NeighConfig { capacity: 2, per_port_max: 2, reachable_ms: 10_000, retry_ms: 100, max_probes: 1 };
        let mut t: NeighTable<u32> = NeighTable::new(cfg);
        // A packet waits for 7 on port 1; then 7 is made static: it leaves
        // with the static MAC and the learnt entry's slot is free again.
        assert!(matches!(t.park(0, 1, 7, 100, true, drop), Resolve::HeldProbe));
        let fixed = MacAddr([2, 0, 0, 0, 0, 7]);
        let mut out = vec![];
        t.set_statics(&[StaticNeigh { port: 1, ip: 7, mac: fixed }], |p, port, m| out.push((p, port, m)));
        assert_eq!(out, vec![(100, 1, fixed)]);
        assert_eq!((t.len(), t.statics()), (0, 1));
        assert_eq!(t.lookup(1, 7), Some(fixed));
        // Same address on another port: not static.
        assert_eq!(t.lookup(2, 7), None);
        // ARP, solicited or not, does not change it nor make an entry.
        assert!(!t.learn(1, (1, 7), MAC, true, |_, _| panic!(), drop));
        assert_eq!((t.lookup(1, 7), t.len()), (Some(fixed), 0));
        // A full table of learnt neighbours, probes failing, time passing:
        // the static one stays.
        for ip in 10..20 {
            t.learn(2, (1, ip), MAC, true, |_, _| {}, drop);
        }
        t.tick(1_000_000, |p| assert_ne!(p.ip, 7), drop);
        t.tick(2_000_000, |p| assert_ne!(p.ip, 7), drop);
        assert_eq!(t.lookup(1, 7), Some(fixed));
        // Removed from the set: unknown again, and ARP learns it as usual.
        t.set_statics(&[], |_, _, _| panic!());
        assert_eq!(t.lookup(1, 7), None);
        assert!(t.learn(3, (1, 7), MAC, true, |_, _| {}, drop));
        assert_eq!(t.lookup(1, 7), Some(MAC));
    }

    #[test]
    fn the_static_set_reaches_a_reader_once_per_change() {
        let p = StaticNeighbours::new(vec![]);
        let (v, set) = p.newer_than(0).unwrap();
        assert!(set.is_empty());
        assert!(p.newer_than(v).is_none());
        p.publish(vec![StaticNeigh { port: 0, ip: 1, mac: MAC }]);
        let (v2, set) = p.newer_than(v).unwrap();
        assert_eq!(&set[..], &[StaticNeigh { port: 0, ip: 1, mac: MAC }]);
        assert!(p.newer_than(v2).is_none());
    }

    #[test]
    fn parks_until_the_reply_then_releases_in_order() {
        let mut t: NeighTable<u32> = NeighTable::new(NeighConfig::default());
        assert_eq!(t.lookup(1, 7), None);
        assert!(matches!(t.park(0, 1, 7, 100, true, drop), Resolve::HeldProbe));
        assert!(matches!(t.park(1, 1, 7, 101, true, drop), Resolve::Held));
        let mut out = vec![];
        t.learn(2, (1, 7), MAC, false, |p, m| out.push((p, m)), drop);
        assert_eq!(out, vec![(100, MAC), (101, MAC)]);
        assert_eq!(t.lookup(1, 7), Some(MAC));
    }

    #[test]
    fn a_stranger_park_never_takes_a_wanted_entry_or_makes_one() {
        let cfg = NeighConfig { capacity: 2, per_port_max: 2, ..NeighConfig::default() };
        let mut t: NeighTable<u32> = NeighTable::new(cfg);
        assert!(matches!(t.park(0, 0, 7, 1, true, drop), Resolve::HeldProbe));
        assert!(matches!(t.park(0, 0, 8, 2, false, drop), Resolve::HeldProbe));
        // Full: a stranger takes the stranger's place, never the wanted one.
        let mut failed = vec![];
        assert!(matches!(t.park(1, 0, 9, 3, false, |p| failed.push(p)), Resolve::HeldProbe));
        assert_eq!(failed, vec![2]);
        // Parking a reply for it does not make the stranger wanted: the
        // next stranger still takes its place.
        assert!(matches!(t.park(2, 0, 9, 4, false, drop), Resolve::Held));
        assert!(matches!(t.park(3, 0, 10, 5, false, |p| failed.push(p)), Resolve::HeldProbe));
        assert_eq!(failed, vec![2, 3, 4]);
        // A resolved stranger answered by the gateway stays a stranger.
        t.learn(3, (0, 10), MAC, false, |_, _| {}, drop);
        assert_eq!(t.resolve(0, 10, false), Some(MAC));
        assert!(matches!(t.park(3, 0, 13, 9, false, |p| failed.push(p)), Resolve::HeldProbe));
        assert_eq!(t.lookup(0, 10), None, "the next stranger took its place");
        // Only wanted entries left: a stranger's reply finds no room.
        assert!(matches!(t.park(4, 0, 11, 6, true, drop), Resolve::HeldProbe));
        assert!(matches!(t.park(5, 0, 12, 7, false, drop), Resolve::Full(7)));
        let mut out = vec![];
        t.learn(6, (0, 7), MAC, false, |p, m| out.push((p, m)), drop);
        assert_eq!(out, vec![(1, MAC)], "the wanted entry's packet was kept");
    }

    #[test]
    fn hold_queue_is_bounded() {
        let mut t: NeighTable<u32> = NeighTable::new(NeighConfig::default());
        for p in 0..HOLD as u32 {
            assert!(!matches!(t.park(0, 0, 7, p, true, drop), Resolve::Full(_)));
        }
        assert!(matches!(t.park(0, 0, 7, 99, true, drop), Resolve::Full(99)));
    }

    #[test]
    fn unanswered_neighbours_fail_after_the_probes_and_free_their_packets() {
        let cfg =
            NeighConfig { capacity: 2, per_port_max: 2, reachable_ms: 10_000, retry_ms: 100, max_probes: 3 };
        let mut t: NeighTable<u32> = NeighTable::new(cfg);
        t.park(0, 0, 7, 1, true, drop);
        let (mut probes, mut failed) = (0, vec![]);
        for now in (0..=1000).step_by(50) {
            t.tick(now, |_| probes += 1, |p| failed.push(p));
        }
        assert_eq!(probes, 2); // plus the first one sent by resolve
        assert_eq!(failed, vec![1]);
        assert!(t.is_empty());
        // The slot is free again.
        assert!(matches!(t.park(2000, 0, 8, 2, true, drop), Resolve::HeldProbe));
    }

    #[test]
    fn stale_entries_are_reprobed_and_kept_while_they_answer() {
        let cfg =
            NeighConfig { capacity: 2, per_port_max: 2, reachable_ms: 1000, retry_ms: 100, max_probes: 2 };
        let mut t: NeighTable<u32> = NeighTable::new(cfg);
        t.learn(0, (0, 7), MAC, true, |_, _| {}, drop);
        let mut probes = vec![];
        t.tick(500, |p| probes.push(p), |_| {});
        assert!(probes.is_empty());
        t.tick(1100, |p| probes.push(p), |_| {});
        assert_eq!(probes, vec![Probe { port: 0, ip: 7 }]);
        assert_eq!(t.lookup(0, 7), Some(MAC));
        t.learn(1200, (0, 7), MAC, false, |_, _| {}, drop);
        t.tick(1300, |p| probes.push(p), |_| {});
        assert_eq!(probes.len(), 1);
    }

    fn cfg(capacity: usize, per_port_max: usize) -> NeighConfig {
        NeighConfig { capacity, per_port_max, reachable_ms: 1000, retry_ms: 100, max_probes: 3 }
    }

    #[test]
    fn a_full_table_evicts_the_stalest_so_a_new_host_always_resolves() {
        let mut t: NeighTable<u32> = NeighTable::new(cfg(4, 4));
        // A flood of learnt senders fills the table, the first one goes stale.
        for ip in 1..=4 {
            assert!(t.learn(ip as u64, (0, ip), MAC, true, |_, _| {}, drop));
        }
        t.learn(2000, (0, 2), MAC, false, |_, _| {}, drop); // 2 confirmed again, fresh
                                                            // A new next hop: parked, evicting the oldest stale entry (1).
        assert!(matches!(t.park(2001, 0, 99, 7, true, drop), Resolve::HeldProbe));
        assert_eq!(t.lookup(0, 1), None);
        assert_eq!(t.lookup(0, 2), Some(MAC));
        assert_eq!(t.evicted(), 1);
        // Its answer is stored and releases the packet.
        let mut out = vec![];
        assert!(t.learn(2002, (0, 99), MAC, false, |p, _| out.push(p), drop));
        assert_eq!(out, vec![7]);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn incomplete_entries_go_before_fresh_ones_and_their_packets_are_failed() {
        let mut t: NeighTable<u32> = NeighTable::new(cfg(2, 2));
        t.park(10, 0, 50, 1, true, drop);
        t.learn(5, (0, 51), MAC, false, |_, _| {}, drop);
        t.park(6, 0, 51, 2, true, drop);
        assert!(t.learn(7, (0, 51), MAC, false, |_, _| {}, drop), "51 resolved, in use");
        let mut failed = vec![];
        assert!(matches!(t.park(20, 0, 52, 3, true, |p| failed.push(p)), Resolve::HeldProbe));
        assert_eq!(failed, vec![1], "the incomplete entry went, not the fresh one");
        assert_eq!(t.lookup(0, 51), Some(MAC));
    }

    /// RFC 6583's neighbour-cache exhaustion: requests from made-up senders
    /// (each makes an entry, as a request to us does) take only each
    /// other's places, never that of a neighbour the gateway sends to or is
    /// resolving; once only those are left, they make no entry.
    #[test]
    fn strangers_entries_never_evict_the_neighbours_the_gateway_needs() {
        let mut t: NeighTable<u32> = NeighTable::new(cfg(4, 4));
        // The router, resolved and used; a server being resolved.
        t.park(0, 0, 1, 10, true, drop);
        assert!(t.learn(1, (0, 1), MAC, false, |_, _| {}, drop));
        assert_eq!(t.resolve(0, 1, true), Some(MAC));
        assert!(matches!(t.park(2, 0, 2, 20, true, drop), Resolve::HeldProbe));
        // A stranger learnt from its request, then looked up by a forwarded
        // packet: wanted from then on.
        assert!(t.learn(3, (0, 3), MAC, true, |_, _| {}, drop));
        assert_eq!(t.resolve(0, 3, true), Some(MAC));
        // A flood of strangers: the first takes the last free slot, each
        // next one the previous one's.
        let mut failed = vec![];
        for ip in 100..200 {
            assert!(t.learn(4 + ip as u64, (0, ip), MAC, true, |_, _| {}, |p| failed.push(p)), "{ip}");
        }
        assert!(failed.is_empty(), "no parked packet was failed");
        assert_eq!((t.lookup(0, 1), t.lookup(0, 3), t.lookup(0, 199)), (Some(MAC), Some(MAC), Some(MAC)));
        assert_eq!(t.evicted(), 99);
        // A new next hop takes the stranger's place; then only wanted
        // entries are left, and a stranger's request makes none.
        assert!(matches!(t.park(300, 0, 4, 40, true, drop), Resolve::HeldProbe));
        assert_eq!(t.lookup(0, 199), None, "the stranger's went");
        assert!(!t.learn(301, (0, 200), MAC, true, |_, _| {}, drop));
        assert_eq!(t.len(), 4);
        let mut out = vec![];
        assert!(t.learn(302, (0, 2), MAC, false, |p, _| out.push(p), drop));
        assert_eq!(out, vec![20], "the resolution in progress completed");
    }

    #[test]
    fn an_unsolicited_answer_creates_nothing() {
        let mut t: NeighTable<u32> = NeighTable::new(cfg(4, 4));
        assert!(!t.learn(0, (0, 7), MAC, false, |_, _| {}, drop));
        assert!(t.is_empty());
    }

    #[test]
    fn a_flood_on_one_port_cannot_take_the_other_ports_room() {
        let mut t: NeighTable<u32> = NeighTable::new(cfg(8, 6));
        t.learn(0, (1, 1000), MAC, true, |_, _| {}, drop);
        t.learn(0, (1, 1001), MAC, true, |_, _| {}, drop);
        for ip in 0..100 {
            assert!(t.learn(1 + ip as u64, (0, ip), MAC, true, |_, _| {}, drop));
        }
        assert_eq!(t.lookup(1, 1000), Some(MAC));
        assert_eq!(t.lookup(1, 1001), Some(MAC));
        assert_eq!(t.len(), 8, "6 for port 0, 2 for port 1");
        // Port 1 can still add hosts while port 0 is at its share.
        assert!(t.learn(200, (1, 1002), MAC, true, |_, _| {}, drop));
        assert_eq!(t.lookup(1, 1000), Some(MAC));
        assert_eq!(t.lookup(0, 99), Some(MAC), "the newest of the flood stays");
    }
}

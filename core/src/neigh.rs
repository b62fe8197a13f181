//! Neighbour (ARP) cache of one worker, with a small hold queue per entry.
//!
//! A packet for a next hop whose MAC is unknown is parked (at most
//! [`HOLD`] per neighbour) while ARP requests go out every `retry_ms`; when
//! the reply arrives the parked packets leave in order. After `max_probes`
//! unanswered requests the entry fails and its packets are dropped and
//! counted. A resolved entry is used for `reachable_ms`; after that it is
//! still used while it is re-probed, and dropped when the probes fail.
//! All storage is allocated at start: `capacity` entries, each with room for
//! [`HOLD`] packets.

use rustc_hash::FxHashMap;

use crate::wire::ethernet::MacAddr;

/// Packets parked per unresolved neighbour.
pub const HOLD: usize = 8;

#[derive(Clone, Copy, Debug)]
pub struct NeighConfig {
    pub capacity: usize,
    pub reachable_ms: u64,
    pub retry_ms: u64,
    pub max_probes: u8,
}

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig { capacity: 1024, reachable_ms: 300_000, retry_ms: 1000, max_probes: 3 }
    }
}

struct Entry<B> {
    port: u16,
    ip: u32,
    mac: Option<MacAddr>,
    /// When the MAC was last confirmed.
    confirmed: u64,
    /// When the last request went out.
    probed: u64,
    probes: u8,
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
pub struct Probe {
    pub port: u16,
    pub ip: u32,
}

pub struct NeighTable<B> {
    cfg: NeighConfig,
    index: FxHashMap<(u16, u32), u32>,
    entries: Vec<Option<Entry<B>>>,
    free: Vec<u32>,
}

impl<B> NeighTable<B> {
    pub fn new(cfg: NeighConfig) -> Self {
        let mut index = FxHashMap::default();
        index.reserve(cfg.capacity);
        NeighTable {
            cfg,
            index,
            entries: (0..cfg.capacity).map(|_| None).collect(),
            free: (0..cfg.capacity as u32).rev().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The MAC of `ip` on `port`, if known.
    #[inline]
    pub fn lookup(&self, port: u16, ip: u32) -> Option<MacAddr> {
        let i = *self.index.get(&(port, ip))?;
        self.entries[i as usize].as_ref().and_then(|e| e.mac)
    }

    /// Parks `pkt` until the MAC of `ip` on `port` is known (after
    /// [`lookup`](Self::lookup) found none).
    pub fn park(&mut self, now: u64, port: u16, ip: u32, pkt: B) -> Resolve<B> {
        if let Some(&i) = self.index.get(&(port, ip)) {
            let e = self.entries[i as usize].as_mut().expect("indexed entry");
            return match e.held.iter_mut().find(|h| h.is_none()) {
                Some(slot) => {
                    *slot = Some(pkt);
                    Resolve::Held
                }
                None => Resolve::Full(pkt),
            };
        }
        let Some(i) = self.free.pop() else {
            return Resolve::Full(pkt);
        };
        let mut held: [Option<B>; HOLD] = Default::default();
        held[0] = Some(pkt);
        self.entries[i as usize] =
            Some(Entry { port, ip, mac: None, confirmed: 0, probed: now, probes: 1, held });
        self.index.insert((port, ip), i);
        Resolve::HeldProbe
    }

    /// Records `ip` -> `mac` on `port` if the entry exists or `create`; hands
    /// the packets that were waiting for it to `release`.
    pub fn learn(
        &mut self,
        now: u64,
        port: u16,
        ip: u32,
        mac: MacAddr,
        create: bool,
        mut release: impl FnMut(B, MacAddr),
    ) {
        let i = match self.index.get(&(port, ip)) {
            Some(&i) => i,
            None if create => match self.free.pop() {
                Some(i) => {
                    self.entries[i as usize] = Some(Entry {
                        port,
                        ip,
                        mac: None,
                        confirmed: now,
                        probed: now,
                        probes: 0,
                        held: Default::default(),
                    });
                    self.index.insert((port, ip), i);
                    i
                }
                None => return,
            },
            None => return,
        };
        let e = self.entries[i as usize].as_mut().expect("indexed entry");
        e.mac = Some(mac);
        e.confirmed = now;
        e.probes = 0;
        for h in e.held.iter_mut() {
            if let Some(p) = h.take() {
                release(p, mac);
            }
        }
    }

    /// Housekeeping: returns (via `probe`) the requests to send now, and
    /// drops (via `fail`) packets of neighbours that did not answer.
    pub fn tick(&mut self, now: u64, mut probe: impl FnMut(Probe), mut fail: impl FnMut(B)) {
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
                self.entries[i] = None;
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

    #[test]
    fn parks_until_the_reply_then_releases_in_order() {
        let mut t: NeighTable<u32> = NeighTable::new(NeighConfig::default());
        assert_eq!(t.lookup(1, 7), None);
        assert!(matches!(t.park(0, 1, 7, 100), Resolve::HeldProbe));
        assert!(matches!(t.park(1, 1, 7, 101), Resolve::Held));
        let mut out = vec![];
        t.learn(2, 1, 7, MAC, false, |p, m| out.push((p, m)));
        assert_eq!(out, vec![(100, MAC), (101, MAC)]);
        assert_eq!(t.lookup(1, 7), Some(MAC));
    }

    #[test]
    fn hold_queue_is_bounded() {
        let mut t: NeighTable<u32> = NeighTable::new(NeighConfig::default());
        for p in 0..HOLD as u32 {
            assert!(!matches!(t.park(0, 0, 7, p), Resolve::Full(_)));
        }
        assert!(matches!(t.park(0, 0, 7, 99), Resolve::Full(99)));
    }

    #[test]
    fn unanswered_neighbours_fail_after_the_probes_and_free_their_packets() {
        let cfg = NeighConfig { capacity: 2, reachable_ms: 10_000, retry_ms: 100, max_probes: 3 };
        let mut t: NeighTable<u32> = NeighTable::new(cfg);
        t.park(0, 0, 7, 1);
        let (mut probes, mut failed) = (0, vec![]);
        for now in (0..=1000).step_by(50) {
            t.tick(now, |_| probes += 1, |p| failed.push(p));
        }
        assert_eq!(probes, 2); // plus the first one sent by resolve
        assert_eq!(failed, vec![1]);
        assert!(t.is_empty());
        // The slot is free again.
        assert!(matches!(t.park(2000, 0, 8, 2), Resolve::HeldProbe));
    }

    #[test]
    fn stale_entries_are_reprobed_and_kept_while_they_answer() {
        let cfg = NeighConfig { capacity: 2, reachable_ms: 1000, retry_ms: 100, max_probes: 2 };
        let mut t: NeighTable<u32> = NeighTable::new(cfg);
        t.learn(0, 0, 7, MAC, true, |_, _| {});
        let mut probes = vec![];
        t.tick(500, |p| probes.push(p), |_| {});
        assert!(probes.is_empty());
        t.tick(1100, |p| probes.push(p), |_| {});
        assert_eq!(probes, vec![Probe { port: 0, ip: 7 }]);
        assert_eq!(t.lookup(0, 7), Some(MAC));
        t.learn(1200, 0, 7, MAC, false, |_, _| {});
        t.tick(1300, |p| probes.push(p), |_| {});
        assert_eq!(probes.len(), 1);
    }
}

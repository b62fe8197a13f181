//! Locality-based schedulers: lblc (`ip_vs_lblc.c`) and lblcr
//! (`ip_vs_lblcr.c`), for cache clusters: connections to the same
//! destination address go to the same server (lblc) or set of servers
//! (lblcr) while it is not overloaded by their rule.
//!
//! The kernel's overload rule for both: a server is overloaded when it has
//! more active connections than its weight *and* some server of the service
//! has fewer than half its weight in active connections.
//!
//! The cache is per worker, bounded and preallocated ([`super::cache`]);
//! entries name servers by their [`super::Dests::id`] ([`DestRef`]) so
//! they survive a change of the server list.

use gw_proto::Scheduler;

use super::cache::Table;
use super::least::{lighter, overhead, wlc};
use super::{available, Dests, Flow, Prepared};

/// Default entries of a worker's lblc/lblcr cache per service.
pub const DEFAULT_CACHE_ENTRIES: usize = 4096;
/// Most servers in an lblcr set (the kernel's sets are unbounded).
pub const LBLCR_SET_MAX: usize = 8;
/// The kernel's default `lblc_expiration` and `lblcr_expiration`: 24 hours.
pub const DEFAULT_EXPIRATION_MS: u64 = 24 * 60 * 60 * 1000;

/// A server named by its [`Dests::id`], with the index where it was last
/// seen to find it fast.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct DestRef {
    id: u32,
    hint: u16,
}

impl DestRef {
    fn of<D: Dests + ?Sized>(d: &D, i: usize) -> DestRef {
        DestRef { id: d.id(i), hint: i.min(u16::MAX as usize) as u16 }
    }

    fn same(&self, other: &DestRef) -> bool {
        self.id == other.id
    }

    /// Current index of the server, if it is still in the list.
    fn resolve<D: Dests + ?Sized>(&mut self, d: &D) -> Option<usize> {
        let is = |i: usize| d.id(i) == self.id;
        let h = self.hint as usize;
        if h < d.len() && is(h) {
            return Some(h);
        }
        let i = (0..d.len()).find(|i| is(*i))?;
        self.hint = i.min(u16::MAX as usize) as u16;
        Some(i)
    }
}

/// An lblcr server set, newest member first (the kernel adds at the head).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DestSet {
    /// Last time a member was added or removed, ms.
    lastmod: u64,
    len: u8,
    members: [DestRef; LBLCR_SET_MAX],
}

/// The per-worker cache of a service.
#[derive(Clone, Debug)]
pub(super) enum Cache {
    None,
    Lblc(Table<DestRef>),
    Lblcr(Table<DestSet>),
}

impl Cache {
    pub fn new(sched: Scheduler, entries: usize) -> Cache {
        match sched {
            Scheduler::Lblc => Cache::Lblc(Table::new(entries)),
            Scheduler::Lblcr => Cache::Lblcr(Table::new(entries)),
            _ => Cache::None,
        }
    }

    /// Bytes of the cache's slots.
    pub fn bytes(&self) -> usize {
        match self {
            Cache::None => 0,
            Cache::Lblc(t) => t.bytes(),
            Cache::Lblcr(t) => t.bytes(),
        }
    }

    pub fn capacity(&self) -> usize {
        match self {
            Cache::None => 0,
            Cache::Lblc(t) => t.capacity(),
            Cache::Lblcr(t) => t.capacity(),
        }
    }

    pub fn live(&self, now: u64, expiration: u64) -> usize {
        match self {
            Cache::None => 0,
            Cache::Lblc(t) => t.live(now, expiration),
            Cache::Lblcr(t) => t.live(now, expiration),
        }
    }

    #[cfg(test)]
    pub fn buffer(&self) -> (usize, usize) {
        match self {
            Cache::None => (0, 0),
            Cache::Lblc(t) => t.buffer(),
            Cache::Lblcr(t) => t.buffer(),
        }
    }
}

/// lblc's and lblcr's overload rule (see the module docs).
fn overloaded<D: Dests + ?Sized>(d: &D, i: usize) -> bool {
    u64::from(d.conns(i).0) > u64::from(d.weight(i))
        && (0..d.len()).any(|j| u64::from(d.conns(j).0) * 2 < u64::from(d.weight(j)))
}

/// lblc: the server cached for the destination address, unless it is gone,
/// quiesced, flagged overloaded or overloaded by the lblc rule; then the wlc
/// choice, which replaces the cache entry.
pub(super) fn lblc<D: Dests + ?Sized>(p: &Prepared, c: &mut Cache, d: &D, f: &Flow) -> Option<usize> {
    let Cache::Lblc(t) = c else { return wlc(d) };
    let now = f.now_ms;
    let k = t.find(f.dst, now, p.expiration_ms);
    if let Some(k) = k {
        let s = t.slot(k);
        s.lastuse = now;
        if let Some(i) = s.val.resolve(d) {
            if available(d, i) && !overloaded(d, i) {
                return Some(i);
            }
        }
    }
    let i = wlc(d)?;
    let k = k.unwrap_or_else(|| t.insert(f.dst, now));
    t.slot(k).val = DestRef::of(d, i);
    Some(i)
}

impl DestSet {
    fn members(&self) -> std::ops::Range<usize> {
        0..self.len as usize
    }

    /// The member with the least overhead / weight, first on ties; members
    /// that are gone, quiesced or flagged overloaded are skipped.
    fn min<D: Dests + ?Sized>(&mut self, d: &D) -> Option<usize> {
        let mut best: Option<(usize, (u64, u32))> = None;
        for m in self.members() {
            let Some(i) = self.members[m].resolve(d) else { continue };
            if !available(d, i) {
                continue;
            }
            let (h, w) = (overhead(d, i), d.weight(i));
            if best.is_none_or(|(_, b)| lighter(h, w, b)) {
                best = Some((i, (h, w)));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Position in the set of the member with the most overhead / weight,
    /// first on ties, among those still in the list with weight above 0
    /// (flagged overloaded ones included, as in the kernel); a member that
    /// left the list comes first. (The kernel weighs a deleted member,
    /// which its trash keeps, with its own counts; here it is gone from the
    /// list, and it can take no connection: it is the one to drop. Skipping
    /// it dropped a live member and kept a set of the gone one alone.)
    fn max<D: Dests + ?Sized>(&mut self, d: &D) -> Option<usize> {
        let mut best: Option<(usize, (u64, u32))> = None;
        for m in self.members() {
            let Some(i) = self.members[m].resolve(d) else { return Some(m) };
            let (h, w) = (overhead(d, i), d.weight(i));
            if w > 0 && best.is_none_or(|(_, (bh, bw))| lighter(bh, bw, (h, w))) {
                best = Some((m, (h, w)));
            }
        }
        best.map(|(m, _)| m)
    }

    fn erase(&mut self, m: usize, now: u64) {
        let len = self.len as usize;
        self.members.copy_within(m + 1..len, m);
        self.len -= 1;
        self.lastmod = now;
    }

    /// Adds server `i` at the head unless it is a member. A full set first
    /// drops a member that left the list, else its most loaded member, else
    /// its oldest.
    fn insert<D: Dests + ?Sized>(&mut self, d: &D, i: usize, now: u64) {
        let new = DestRef::of(d, i);
        if self.members[..self.len as usize].iter().any(|m| m.same(&new)) {
            return;
        }
        if self.len as usize == LBLCR_SET_MAX {
            let gone = self.members().find(|m| self.members[*m].resolve(d).is_none());
            let victim = gone.or_else(|| self.max(d)).unwrap_or(LBLCR_SET_MAX - 1);
            self.erase(victim, now);
        }
        let len = self.len as usize;
        self.members.copy_within(0..len, 1);
        self.members[0] = new;
        self.len += 1;
        self.lastmod = now;
    }
}

/// lblcr: the least loaded member of the destination address's server set.
/// If the set has more than one member and has not changed for the
/// expiration time, its most loaded member is dropped first. If the least
/// loaded member is overloaded by the lblc rule (or no member is usable),
/// the wlc choice joins the set and is used.
pub(super) fn lblcr<D: Dests + ?Sized>(p: &Prepared, c: &mut Cache, d: &D, f: &Flow) -> Option<usize> {
    let Cache::Lblcr(t) = c else { return wlc(d) };
    let now = f.now_ms;
    let Some(k) = t.find(f.dst, now, p.expiration_ms) else {
        let i = wlc(d)?;
        let k = t.insert(f.dst, now);
        t.slot(k).val.insert(d, i, now);
        return Some(i);
    };
    let s = t.slot(k);
    s.lastuse = now;
    let set = &mut s.val;
    let least = set.min(d);
    if set.len > 1 && now > set.lastmod.saturating_add(p.expiration_ms) {
        if let Some(m) = set.max(d) {
            set.erase(m, now);
        }
    }
    if let Some(i) = least.filter(|i| !overloaded(d, *i)) {
        return Some(i);
    }
    let i = wlc(d)?;
    set.insert(d, i, now);
    Some(i)
}

#[cfg(test)]
mod tests;

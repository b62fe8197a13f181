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
//! entries name servers by address and port ([`DestRef`]) so they survive
//! a change of the server list.

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

/// A server named by address and port, with the index where it was last
/// seen to find it fast.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct DestRef {
    addr: u32,
    port: u16,
    hint: u16,
}

impl DestRef {
    fn of<D: Dests + ?Sized>(d: &D, i: usize) -> DestRef {
        DestRef { addr: d.addr(i), port: d.port(i), hint: i.min(u16::MAX as usize) as u16 }
    }

    fn same(&self, other: &DestRef) -> bool {
        self.addr == other.addr && self.port == other.port
    }

    /// Current index of the server, if it is still in the list.
    fn resolve<D: Dests + ?Sized>(&mut self, d: &D) -> Option<usize> {
        let is = |i: usize| d.addr(i) == self.addr && d.port(i) == self.port;
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
    /// (flagged overloaded ones included, as in the kernel).
    fn max<D: Dests + ?Sized>(&mut self, d: &D) -> Option<usize> {
        let mut best: Option<(usize, (u64, u32))> = None;
        for m in self.members() {
            let Some(i) = self.members[m].resolve(d) else { continue };
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
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::*;

    const HOUR: u64 = 60 * 60 * 1000;

    struct Lb {
        p: Prepared,
        st: SchedState,
    }

    impl Lb {
        fn new(s: Scheduler, ds: &[D], entries: usize) -> Lb {
            Lb { p: prepare(s, 0, ds), st: SchedState::with_capacity(s, entries) }
        }
        fn to(&mut self, ds: &[D], dst: u32, now: u64) -> Option<usize> {
            pick(&self.p, &mut self.st, ds, &flow(0x0101_0101, dst, now))
        }
        fn set(&mut self, dst: u32) -> Vec<u32> {
            let Cache::Lblcr(t) = &mut self.st.cache else { panic!() };
            let k = t.find(dst, 0, u64::MAX).unwrap();
            let s = t.slot(k).val;
            s.members[..s.len as usize].iter().map(|m| m.addr & 0xff).collect()
        }
    }

    const DST: u32 = 0x5db8_d822;

    #[test]
    fn lblc_sticks_to_the_cached_server() {
        let mut ds = servers(&[10, 10, 10]);
        let mut lb = Lb::new(Scheduler::Lblc, &ds, 64);
        assert_eq!(lb.to(&ds, DST, 0), Some(0));
        // A is now busier than B and C: wlc would not pick it, lblc does.
        ds[0].act = 8;
        for t in 1..10 {
            assert_eq!(lb.to(&ds, DST, t), Some(0));
        }
        // Another destination gets the least loaded server.
        assert_eq!(lb.to(&ds, DST + 1, 10), Some(1));
        assert_eq!(lb.st.cached(10, &lb.p), 2);
    }

    #[test]
    fn lblc_overload_rule() {
        let mut ds = servers(&[10, 10, 10]);
        let mut lb = Lb::new(Scheduler::Lblc, &ds, 64);
        assert_eq!(lb.to(&ds, DST, 0), Some(0));
        // More active connections than weight, but nobody below half load:
        // stay.
        ds[0].act = 11;
        ds[1].act = 5;
        ds[2].act = 6;
        assert_eq!(lb.to(&ds, DST, 1), Some(0));
        // B drops below half its weight: move to the wlc choice, and remember.
        ds[1].act = 4;
        assert_eq!(lb.to(&ds, DST, 2), Some(1));
        ds[0].act = 0;
        assert_eq!(lb.to(&ds, DST, 3), Some(1));
        // Exactly at weight is not overloaded.
        ds[1].act = 10;
        assert_eq!(lb.to(&ds, DST, 4), Some(1));
    }

    #[test]
    fn lblc_reschedules_quiesced_overloaded_or_removed_servers() {
        let mut ds = servers(&[1, 1, 1]);
        ds[1].act = 1;
        ds[2].act = 2;
        let mut lb = Lb::new(Scheduler::Lblc, &ds, 64);
        assert_eq!(lb.to(&ds, DST, 0), Some(0));
        ds[0].over = true;
        assert_eq!(lb.to(&ds, DST, 1), Some(1));
        ds[0].over = false;
        assert_eq!(lb.to(&ds, DST, 2), Some(1));
        ds[1].w = 0;
        assert_eq!(lb.to(&ds, DST, 3), Some(0));
        ds[1].w = 1;
        ds[0].over = true;
        assert_eq!(lb.to(&ds, DST, 4), Some(1));
        // A removed, B moves to index 0: the entry follows B by address.
        let moved = vec![ds[1], ds[2]];
        lb.p = prepare(Scheduler::Lblc, 0, &moved);
        lb.st.reconfigure(&lb.p);
        assert_eq!(lb.to(&moved, DST, 5), Some(0));
        // B removed too: rescheduled to C, which is cached from now on.
        let only_c = vec![ds[2]];
        lb.p = prepare(Scheduler::Lblc, 0, &only_c);
        lb.st.reconfigure(&lb.p);
        assert_eq!(lb.to(&only_c, DST, 6), Some(0));
        let Cache::Lblc(t) = &mut lb.st.cache else { panic!() };
        let k = t.find(DST, 6, u64::MAX).unwrap();
        assert_eq!(t.slot(k).val.addr, ds[2].addr);
    }

    #[test]
    fn lblc_entries_expire_after_24_hours_idle() {
        let mut ds = servers(&[1, 1]);
        let mut lb = Lb::new(Scheduler::Lblc, &ds, 64);
        assert_eq!(lb.to(&ds, DST, 0), Some(0));
        ds[0].act = 1;
        // Used again just before expiry: still cached, and refreshed.
        assert_eq!(lb.to(&ds, DST, 24 * HOUR - 1), Some(0));
        assert_eq!(lb.to(&ds, DST, 48 * HOUR - 2), Some(0));
        assert_eq!(lb.st.cached(72 * HOUR - 3, &lb.p), 1);
        assert_eq!(lb.st.cached(72 * HOUR - 2, &lb.p), 0);
        // 24 h idle: forgotten, rescheduled by wlc.
        assert_eq!(lb.to(&ds, DST, 72 * HOUR - 2), Some(1));
        // A shorter expiration (the sysctl).
        lb.p = prepare(Scheduler::Lblc, 0, &ds).with_expiration_ms(1000);
        ds[1].act = 2;
        assert_eq!(lb.to(&ds, DST, 72 * HOUR), Some(1));
        assert_eq!(lb.to(&ds, DST, 72 * HOUR + 1000), Some(0));
    }

    #[test]
    fn lblc_cache_is_bounded_and_evicts_the_least_recently_used() {
        let ds = servers(&[1, 1]);
        let mut lb = Lb::new(Scheduler::Lblc, &ds, 16);
        let cap = lb.st.cache.capacity();
        assert_eq!(cap, 16);
        let buf = lb.st.cache.buffer();
        for k in 0..1000u32 {
            lb.to(&ds, 0x0a0a_0000 + k, u64::from(k));
        }
        assert_eq!(lb.st.cached(1000, &lb.p), cap);
        assert_eq!(lb.st.cache.buffer(), buf);
        // The last destination is cached, the first was evicted.
        let Cache::Lblc(t) = &mut lb.st.cache else { panic!() };
        assert!(t.find(0x0a0a_0000 + 999, 1000, u64::MAX).is_some());
        assert!(t.find(0x0a0a_0000, 1000, u64::MAX).is_none());
    }

    #[test]
    fn lblcr_sticks_to_its_set_and_grows_it_on_overload() {
        let mut ds = servers(&[10, 10, 10]);
        let mut lb = Lb::new(Scheduler::Lblcr, &ds, 64);
        assert_eq!(lb.to(&ds, DST, 0), Some(0));
        assert_eq!(lb.set(DST), vec![1]);
        ds[0].act = 9;
        assert_eq!(lb.to(&ds, DST, 1), Some(0));
        // A overloaded by the rule (11 > 10 and B, C below half): wlc picks B,
        // which joins the set at its head.
        ds[0].act = 11;
        assert_eq!(lb.to(&ds, DST, 2), Some(1));
        assert_eq!(lb.set(DST), vec![2, 1]);
        // Now the least loaded member of {B, A}: B.
        ds[1].act = 3;
        assert_eq!(lb.to(&ds, DST, 3), Some(1));
        // When A becomes less loaded than B, the set sends there (C, idle,
        // is not a member).
        ds[0].act = 2;
        assert_eq!(lb.to(&ds, DST, 4), Some(0));
        // Members flagged overloaded or quiesced are skipped.
        ds[0].over = true;
        assert_eq!(lb.to(&ds, DST, 5), Some(1));
        ds[1].w = 0;
        assert_eq!(lb.to(&ds, DST, 6), Some(2));
        assert_eq!(lb.set(DST), vec![3, 2, 1]);
    }

    #[test]
    fn lblcr_set_drops_its_most_loaded_member_after_expiration() {
        let mut ds = servers(&[10, 10, 10]);
        let mut lb = Lb::new(Scheduler::Lblcr, &ds, 64);
        lb.to(&ds, DST, 0);
        ds[0].act = 11;
        assert_eq!(lb.to(&ds, DST, 1), Some(1));
        assert_eq!(lb.set(DST), vec![2, 1]);
        ds[0].act = 5;
        ds[1].act = 3;
        // Used often but unchanged for 24 h: A, the most loaded, goes.
        for h in 1..24 {
            assert_eq!(lb.to(&ds, DST, h * HOUR), Some(1));
        }
        assert_eq!(lb.to(&ds, DST, 24 * HOUR + 1), Some(1));
        assert_eq!(lb.set(DST), vec![2, 1]);
        assert_eq!(lb.to(&ds, DST, 24 * HOUR + 2), Some(1));
        assert_eq!(lb.set(DST), vec![2]);
        // A single member stays, however long.
        for h in 25..60 {
            assert_eq!(lb.to(&ds, DST, h * HOUR), Some(1));
        }
        assert_eq!(lb.set(DST), vec![2]);
    }

    #[test]
    fn lblcr_sets_are_bounded() {
        let mut ds = servers(&[1; 12]);
        let mut lb = Lb::new(Scheduler::Lblcr, &ds, 64);
        // Each round, every member is overloaded (2 > 1) and the next server
        // is idle (0 * 2 < 1): it joins.
        for k in 0..12 {
            assert_eq!(lb.to(&ds, DST, k as u64), Some(k));
            ds[k].act = 2;
        }
        let set = lb.set(DST);
        assert_eq!(set.len(), LBLCR_SET_MAX);
        assert_eq!(set[0], 12);
        // A member that left the list is dropped first.
        // Members are evicted most loaded first, the newest on ties: the
        // set is now L and the first seven.
        assert_eq!(set, vec![12, 7, 6, 5, 4, 3, 2, 1]);
        ds.remove(11);
        ds.push(D { w: 1, addr: 0x0a00_0063, port: 80, ..D::default() });
        lb.p = prepare(Scheduler::Lblcr, 0, &ds);
        lb.st.reconfigure(&lb.p);
        assert_eq!(lb.to(&ds, DST, 20), Some(11));
        let set = lb.set(DST);
        assert_eq!(set.len(), LBLCR_SET_MAX);
        assert_eq!(set[0], 0x63);
        assert!(!set.contains(&12));
    }

    #[test]
    fn lblcr_entries_expire() {
        let mut ds = servers(&[1, 1]);
        let mut lb = Lb::new(Scheduler::Lblcr, &ds, 64);
        assert_eq!(lb.to(&ds, DST, 0), Some(0));
        ds[0].act = 1;
        assert_eq!(lb.to(&ds, DST, 24 * HOUR - 1), Some(0));
        assert_eq!(lb.to(&ds, DST, 48 * HOUR - 1), Some(1));
        assert_eq!(lb.set(DST), vec![2]);
    }
}

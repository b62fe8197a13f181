//! Tests of the locality schedulers (lblc, lblcr).

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
        s.members[..s.len as usize].iter().map(|m| m.id & 0xff).collect()
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
    assert_eq!(t.slot(k).val.id, ds[2].addr);
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

/// Two servers whose [`Dests::addr`] is the same (IPv6 addresses fold to
/// 32 bits: 2001:db8:0:2::2 and 2001:db8:0:3::3 both give 0x20010db8) are
/// still two servers: a cached one is found by its id, not by the first
/// server with its folded address, after the list changed under the
/// entry's index hint.
#[test]
fn servers_with_one_folded_address_stay_apart_in_the_caches() {
    let fold = 0x2001_0db8;
    let w = D { w: 1, addr: 0x0a00_0001, port: 80, id: 1, ..D::default() };
    let x = D { w: 1, addr: fold, port: 80, id: 2, act: 1, ..D::default() };
    let y = D { w: 1, addr: fold, port: 80, id: 3, ..D::default() };
    for s in [Scheduler::Lblc, Scheduler::Lblcr] {
        let mut ds = vec![D { act: 5, ..w }, x, y];
        let mut lb = Lb::new(s, &ds, 64);
        assert_eq!(lb.to(&ds, DST, 0), Some(2), "{s}: the least loaded, Y");
        // W leaves: Y is now at index 1, where X was at 1 before.
        ds.remove(0);
        lb.p = prepare(s, 0, &ds);
        lb.st.reconfigure(&lb.p);
        assert_eq!(lb.to(&ds, DST, 1), Some(1), "{s}: still Y, not X");
    }
}

/// A set member deleted from the service is the one an expired set drops,
/// not a live member (which left the set holding the gone server alone).
#[test]
fn lblcr_drops_a_member_that_left_the_list_first() {
    let mut ds = servers(&[10, 10, 10]);
    let mut lb = Lb::new(Scheduler::Lblcr, &ds, 64);
    assert_eq!(lb.to(&ds, DST, 0), Some(0));
    // A overloaded, B busy: C, the least loaded, joins the set.
    ds[0].act = 11;
    ds[1].act = 11;
    assert_eq!(lb.to(&ds, DST, 1), Some(2));
    assert_eq!(lb.set(DST), vec![3, 1]);
    // C is deleted; a day later the set drops it and keeps A.
    ds.remove(2);
    ds[0].act = 0;
    ds[1].act = 0;
    lb.p = prepare(Scheduler::Lblcr, 0, &ds);
    lb.st.reconfigure(&lb.p);
    // Used every hour (the entry stays), the set unchanged.
    for h in 1..25 {
        assert_eq!(lb.to(&ds, DST, h * HOUR), Some(0));
    }
    assert_eq!(lb.set(DST), vec![3, 1], "the gone member is still in the set");
    assert_eq!(lb.to(&ds, DST, 24 * HOUR + 2), Some(0));
    assert_eq!(lb.set(DST), vec![1]);
    assert_eq!(lb.to(&ds, DST, 24 * HOUR + 3), Some(0), "A stays the set's server");
}

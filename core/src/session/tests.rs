//! Tests of [`super`]: both indexes, the timer wheel with a driven clock,
//! and the cache-line layout.
use super::*;
use crate::tcp_state::Timeouts;

fn sess(cport: u16, lport: u16, rs: u32) -> Session {
    Session::new(
        Protocol::Tcp,
        (0xc612_0002, cport),
        (0xc612_0064, 80),
        (rs, 80),
        (0xc612_010a, lport),
        State::SynRecv,
        ForwardMode::FullNat,
        0,
        0,
    )
}

#[test]
fn both_directions_find_the_session() {
    let mut t = SessionTable::new(16, 42, 0);
    let s = sess(40000, 5000, 0xc612_0102);
    let i = t.insert(s, 0, 1000).unwrap();
    assert_eq!(t.lookup_in(&s.in_key()), Some(i));
    assert_eq!(t.lookup_out(&s.out_key()), Some(i));
    assert_eq!(t.slot(i as usize).map(|x| x.cport), Some(40000));
    let mut other = s.in_key();
    other.sport = 40001;
    assert_eq!(t.lookup_in(&other), None);
    t.remove(i);
    assert_eq!(t.lookup_in(&s.in_key()), None);
    assert_eq!(t.lookup_out(&s.out_key()), None);
    assert!(t.slot(i as usize).is_none(), "a freed slot reads as empty");
    assert!(t.is_empty());
}

#[test]
fn sessions_without_a_reply_key_are_found_from_the_client_side_only() {
    let mut t = SessionTable::new(16, 42, 0);
    let mut s = sess(40000, 40000, 0xc612_0102);
    s.flags = Flags::NO_OUT;
    let i = t.insert(s, 0, 1000).unwrap();
    assert_eq!(t.lookup_in(&s.in_key()), Some(i));
    assert_eq!(t.lookup_out(&s.out_key()), None);
    t.remove(i);
    assert!(t.is_empty());
}

/// A stage's hint (the index's candidate when the burst was staged) is
/// taken only while its session is live and holds the key: after the
/// session ended, and after its slot went to another flow, the hinted
/// lookups answer as the index does.
#[test]
fn a_stale_hint_answers_as_the_index() {
    let mut t = SessionTable::new(16, 42, 0);
    let a = sess(40000, 5000, 0xc612_0102);
    let i = t.insert(a, 0, 1000).unwrap();
    let (hi, ho) = (t.hash(&a.in_key()), t.hash(&a.out_key()));
    assert_eq!((t.candidate(hi, false), t.candidate(ho, true)), (Some(i), Some(i)));
    assert_eq!(t.find_in_hinted(&a.in_key(), hi, i), Some(i));
    assert_eq!(t.find_out_hinted(&a.out_key(), ho, i), Some(i));
    // A hint of another session, or none, still finds the key's.
    let b = sess(40001, 5001, 0xc612_0102);
    let j = t.insert(b, 0, 1000).unwrap();
    assert_eq!(t.find_in_hinted(&a.in_key(), hi, j), Some(i));
    assert_eq!(t.find_out_hinted(&a.out_key(), ho, NIL), Some(i));
    // Ended: the freed slot holds the old key's bytes but matches nothing.
    t.remove(i);
    assert_eq!(t.find_in_hinted(&a.in_key(), hi, i), None);
    assert_eq!(t.find_out_hinted(&a.out_key(), ho, i), None);
    // Reused by another flow: the hint names that flow's session, not a's.
    let c = sess(40002, 5002, 0xc612_0103);
    assert_eq!(t.insert(c, 0, 1000), Ok(i));
    assert_eq!(t.find_in_hinted(&a.in_key(), hi, i), None);
    assert_eq!(t.find_in_hinted(&c.in_key(), t.hash(&c.in_key()), i), Some(i));
    // A session without a reply key is never the reply index's.
    t.remove(i);
    let mut d = sess(40003, 40003, 0xc612_0104);
    d.flags = Flags::NO_OUT;
    assert_eq!(t.insert(d, 0, 1000), Ok(i));
    assert_eq!(t.find_out_hinted(&d.out_key(), t.hash(&d.out_key()), i), None);
    assert_eq!(t.find_in_hinted(&d.in_key(), t.hash(&d.in_key()), i), Some(i));
}

#[test]
fn full_table_refuses_new_sessions_and_keeps_old_ones() {
    let mut t = SessionTable::new(4, 1, 0);
    let keys: Vec<_> = (0..4).map(|n| sess(1000 + n, 2000 + n, 7)).collect();
    for s in &keys {
        t.insert(*s, 0, 10_000).unwrap();
    }
    assert_eq!(t.insert(sess(9, 9, 7), 0, 10_000), Err(Full));
    for s in &keys {
        assert!(t.lookup_in(&s.in_key()).is_some());
    }
    // A freed slot is reused.
    let i = t.lookup_in(&keys[2].in_key()).unwrap();
    t.remove(i);
    assert!(t.insert(sess(9, 9, 7), 0, 10_000).is_ok());
}

#[test]
fn sessions_expire_by_state_timeout_with_a_driven_clock() {
    let to = Timeouts::default();
    let mut t = SessionTable::new(64, 3, 0);
    let syn = t.insert(sess(1, 1, 1), 0, to.of_ms(State::SynRecv)).unwrap();
    let est = t.insert(sess(2, 2, 1), 0, to.of_ms(State::Established)).unwrap();
    let mut gone = vec![];
    t.expire(59_000, usize::MAX, |s| {
        gone.push(s.cport);
        None
    });
    assert!(gone.is_empty());
    t.expire(60_100, usize::MAX, |s| {
        gone.push(s.cport);
        None
    });
    assert_eq!(gone, vec![1]);
    assert!(t.lookup_in(&t.get(est).in_key()).is_some());
    let _ = syn;
    // Traffic keeps the established one alive past its first deadline.
    t.touch(est, 800_000, to.of_ms(State::Established));
    t.expire(1_000_000, usize::MAX, |s| {
        gone.push(s.cport);
        None
    });
    assert_eq!(gone, vec![1]);
    t.expire(1_700_100, usize::MAX, |s| {
        gone.push(s.cport);
        None
    });
    assert_eq!(gone, vec![1, 2]);
    assert!(t.is_empty());
}

#[test]
fn a_shorter_timeout_takes_effect_at_once() {
    let mut t = SessionTable::new(8, 3, 0);
    let i = t.insert(sess(1, 1, 1), 0, 900_000).unwrap();
    t.touch(i, 1_000, 10_000); // e.g. ESTABLISHED -> CLOSE
    let mut n = 0;
    t.expire(11_100, usize::MAX, |_| {
        n += 1;
        None
    });
    assert_eq!(n, 1);
}

#[test]
fn expiry_work_is_bounded_per_call() {
    let mut t = SessionTable::new(1000, 3, 0);
    for n in 0..1000 {
        t.insert(sess(n, n, 1), 0, 1000).unwrap();
    }
    let first = t.expire(5_000, 100, |_| None);
    assert_eq!(first, 100);
    let mut total = first;
    while total < 1000 {
        total += t.expire(5_000, 100, |_| None);
    }
    assert!(t.is_empty());
}

#[test]
fn a_long_pause_does_not_lose_sessions() {
    let mut t = SessionTable::new(8, 3, 0);
    t.insert(sess(1, 1, 1), 0, 300_000).unwrap();
    let mut n = 0;
    t.expire(10_000_000, usize::MAX, |_| {
        n += 1;
        None
    });
    assert_eq!(n, 1);
}

#[test]
fn a_template_lives_while_it_controls_connections() {
    let mut t = SessionTable::new(8, 3, 0);
    let mut tpl = sess(0, 0, 1);
    tpl.flags = Flags::TEMPLATE | Flags::NO_OUT;
    tpl.set_timeout_ms(2_000);
    let ti = t.insert(tpl, 0, 1_000).unwrap();
    let mut c = sess(40000, 5000, 1);
    c.control = ti;
    t.get_mut(ti).set_n_control(1);
    let ci = t.insert(c, 0, 60_000).unwrap();
    let keep = |s: &Session| (s.is_template() && s.n_control() > 0).then_some(1_000);
    assert_eq!(t.expire(5_000, usize::MAX, keep), 0, "kept: it controls a connection");
    assert!(t.slot(ti as usize).is_some());
    assert_eq!(t.expire(61_000, usize::MAX, keep), 1, "the connection expires");
    assert_eq!(t.get(ti).n_control(), 0, "and no longer counts");
    assert_eq!(t.expire(61_500, usize::MAX, keep), 0, "the template lives its timeout again");
    assert_eq!(t.expire(62_200, usize::MAX, keep), 1, "then it goes, 2 s after its last connection");
    assert!(t.is_empty());
    let _ = ci;
}

#[test]
fn reply_port_counts_follow_inserts_and_removes() {
    // 1M sessions: 64 classes of addresses. Two servers share a local
    // port, a DR session (no reply key) does not count.
    let mut t = SessionTable::new(1 << 20, 9, 0);
    let lip = 0xc612_010a;
    let a = t.insert(sess(1, 40_000, 0xc612_0102), 0, 1000).unwrap();
    let b = t.insert(sess(2, 40_000, 0xc612_0103), 0, 1000).unwrap();
    let mut dr = sess(3, 40_001, 0xc612_0102);
    dr.flags = Flags::NO_OUT;
    let d = t.insert(dr, 0, 1000).unwrap();
    assert!(!t.reply_port_unused(lip, 40_000));
    assert!(t.reply_port_unused(lip, 40_001), "no reply key");
    assert!(t.reply_port_unused(lip, 40_002));
    t.remove(a);
    assert!(!t.reply_port_unused(lip, 40_000), "the other server still holds it");
    t.remove(b);
    assert!(t.reply_port_unused(lip, 40_000));
    t.remove(d);
    assert!(t.is_empty());
}

/// The bind's signature check never calls a live reply key free, and in a
/// table filled to capacity it calls almost every absent key free (a
/// matching signature of another key is 1 in 2^16 per way).
#[test]
fn a_live_reply_key_always_may_be_live_and_an_absent_one_almost_never() {
    let n = 7 * 4096;
    let mut t = SessionTable::new(n, 11, 0);
    for k in 0..n as u32 {
        t.insert(sess(k as u16, k as u16 + 1, 0xc612_0000 | (k >> 4)), 0, 1000).unwrap();
    }
    for k in 0..n as u32 {
        let s = sess(k as u16, k as u16 + 1, 0xc612_0000 | (k >> 4));
        assert!(t.out_hash_may_be_live(t.hash(&s.out_key())), "live key {k} said free");
    }
    let mut false_live = 0;
    for k in 0..n as u32 {
        let absent = sess(k as u16, 9, 0xc613_0000 | k).out_key();
        assert_eq!(t.lookup_out(&absent), None);
        false_live += usize::from(t.out_hash_may_be_live(t.hash(&absent)));
    }
    assert!(false_live < 20, "{false_live} of {n} absent keys looked live");
}

/// The hint of an insert's alternative bucket: none while the primary
/// has room, one once it is full (which line: `index`'s
/// `a_crowded_bucket_names_the_alternative_an_insert_takes`).
#[test]
fn a_full_primary_bucket_hints_its_alternative() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HINTED: AtomicUsize = AtomicUsize::new(0);
    let mut t = SessionTable::new(7 * 64, 5, 0);
    t.set_prefetch(Prefetch(|p| HINTED.store(p as usize, Ordering::Relaxed)));
    // Sessions whose reply keys share the primary bucket of the first.
    let first = sess(1, 1, 0xc612_0102);
    let h = t.hash(&first.out_key());
    let same: Vec<Session> = (2..60_000u16)
        .map(|p| sess(p, p, 0xc612_0102))
        .filter(|s| t.hash(&s.out_key()) & 63 == h & 63)
        .take(index::WAYS + 1)
        .collect();
    t.insert(first, 0, 1000).unwrap();
    for s in &same[..index::WAYS - 1] {
        HINTED.store(0, Ordering::Relaxed);
        t.prefetch_insert_alt(t.hash(&s.out_key()), true);
        assert_eq!(HINTED.load(Ordering::Relaxed), 0, "a bucket with room hinted");
        t.insert(*s, 0, 1000).unwrap();
    }
    // Full: the next one goes to its alternative, the hinted line.
    let s = same[index::WAYS - 1];
    let hs = t.hash(&s.out_key());
    HINTED.store(0, Ordering::Relaxed);
    t.prefetch_insert_alt(hs, true);
    let hinted = HINTED.load(Ordering::Relaxed);
    assert_ne!(hinted, 0, "a full bucket hinted nothing");
    assert_ne!(hinted, t.bucket_line(hs, true) as *const _ as usize, "the hint is not the primary");
    let i = t.insert(s, 0, 1000).unwrap();
    assert_eq!(t.lookup_out(&s.out_key()), Some(i));
}

#[test]
fn session_is_one_cache_line() {
    assert_eq!(std::mem::size_of::<Session>(), 64);
}

mod model {
    //! The table against a `std` `HashMap` model: inserts, removes and
    //! lookups in both directions, with the table filled to capacity.
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn table_agrees_with_a_hashmap(
            ops in prop::collection::vec((any::<bool>(), 0u16..64, 0u16..4), 1..300),
            cap in 1usize..40,
        ) {
            let mut t = SessionTable::new(cap, 7, 0);
            // client port -> (session index, session)
            let mut model: HashMap<u16, (u32, Session)> = HashMap::new();
            for (insert, cport, rs) in ops {
                let s = sess(10_000 + cport, 20_000 + cport, 0xc612_0200 + u32::from(rs));
                match (insert, model.get(&cport).copied()) {
                    (true, None) => match t.insert(s, 0, 1000) {
                        Ok(i) => { model.insert(cport, (i, s)); }
                        Err(Full) => prop_assert_eq!(model.len(), cap),
                    },
                    (false, Some((i, _))) => {
                        t.remove(i);
                        model.remove(&cport);
                    }
                    _ => {}
                }
                prop_assert_eq!(t.len(), model.len());
                for c in 0u16..64 {
                    let probe = sess(10_000 + c, 20_000 + c, 0);
                    let want = model.get(&c).map(|&(i, _)| i);
                    prop_assert_eq!(t.lookup_in(&probe.in_key()), want);
                    let out = model.get(&c).map(|(_, s)| s.out_key());
                    if let Some(k) = out {
                        prop_assert_eq!(t.lookup_out(&k), want);
                    }
                    // The reply-port counts: exact here (one address, no
                    // two ports on one count).
                    prop_assert_eq!(t.reply_port_unused(0xc612_010a, 20_000 + c), !model.contains_key(&c));
                }
            }
        }
    }
}

mod expiry {
    //! [`Table::expire_with`]: its budget holds when a slot holds many
    //! sessions, its pipeline prefetches ahead, and it agrees with a model
    //! of deadlines (nothing freed early, nothing left behind).
    use std::cell::Cell;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    thread_local! {
        /// Lines [`counting`] was asked to prefetch on this thread.
        static PREFETCHED: Cell<usize> = const { Cell::new(0) };
    }

    /// A prefetch hint that counts.
    fn counting(_: *const u8) {
        PREFETCHED.with(|c| c.set(c.get() + 1));
    }

    /// `n` sessions opened at time 0 with a 60 s timeout: one wheel slot.
    fn opened_together(n: u32) -> SessionTable {
        let mut t = SessionTable::new(n as usize, 5, 0);
        for k in 0..n {
            let s = sess(k as u16, (k >> 16) as u16, 0xc612_0200 + k);
            t.insert(s, 0, 60_000).unwrap();
        }
        t
    }

    /// 100k sessions due together are freed 64 per call, never more, and
    /// the walk prefetches as it goes.
    #[test]
    fn a_full_slot_is_freed_a_budget_at_a_time() {
        let n = 100_000;
        let mut t = opened_together(n);
        assert_eq!(t.expiry_backlog(61_000), n as usize);
        t.set_prefetch(Prefetch(counting));
        let before = PREFETCHED.with(Cell::get);
        let mut calls = 0;
        while !t.is_empty() {
            let done = t.expire_with(61_000, 64, |_, _| None);
            assert!(done.examined <= 64 && done.freed == done.examined, "{done:?}");
            calls += 1;
        }
        assert_eq!(calls, n.div_ceil(64));
        assert_eq!(t.expiry_backlog(61_000), 0);
        // The next entry of each list and both index buckets of each one.
        let prefetched = PREFETCHED.with(Cell::get) - before;
        assert!(prefetched >= 3 * n as usize - WHEEL_LISTS, "{prefetched} prefetches");
    }

    /// Sessions refreshed since they were linked are moved to their new
    /// deadline's slot, 64 per call, and freed there.
    #[test]
    fn refreshed_sessions_move_a_budget_at_a_time() {
        let n = 20_000;
        let mut t = opened_together(n);
        for i in 0..n {
            t.touch(i, 30_000, 60_000);
        }
        let mut calls = 0;
        while t.expiry_backlog(61_000) > 0 {
            let done = t.expire_with(61_000, 64, |_, _| None);
            assert_eq!((done.freed, done.examined.min(64)), (0, done.examined));
            calls += 1;
        }
        assert_eq!(calls, n.div_ceil(64));
        assert_eq!(t.len(), n as usize, "none lost");
        assert_eq!(t.expire(89_000, usize::MAX, |_| None), 0, "none early");
        assert_eq!(t.expire(91_000, usize::MAX, |_| None), n as usize);
    }

    /// A template linked right behind its last connection, in the same
    /// slot: freeing the connection (handled a step behind the walk)
    /// re-arms the template, which the walk then keeps, at every budget.
    #[test]
    fn a_template_behind_its_connection_survives_it() {
        for budget in [1, 2, 3, usize::MAX] {
            let mut t = SessionTable::new(8, 3, 0);
            let mut tpl = sess(0, 0, 1);
            tpl.flags = Flags::TEMPLATE | Flags::NO_OUT;
            tpl.set_timeout_ms(2_000);
            let ti = t.insert(tpl, 0, 60_000).unwrap();
            t.get_mut(ti).set_n_control(1);
            let mut c = sess(40000, 5000, 1);
            c.control = ti;
            t.insert(c, 0, 60_000).unwrap();
            let keep = |s: &Session| (s.is_template() && s.n_control() > 0).then_some(1_000);
            let mut freed = 0;
            while t.expiry_backlog(61_000) > 0 {
                freed += t.expire_with(61_000, budget, |_, s| keep(s)).freed;
            }
            assert_eq!((freed, t.len()), (1, 1), "budget {budget}: the connection only");
            // The connection ended at its deadline (60 s): the template
            // lives 2 s from then.
            assert_eq!(t.expire(61_900, usize::MAX, keep), 0, "budget {budget}");
            assert_eq!(t.expire(62_000, usize::MAX, keep), 1, "budget {budget}: 2 s after the connection");
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Open session `id` (if it is not live) with this timeout.
        Open(u16, u64),
        /// Refresh session `id` (if live) with this timeout.
        Touch(u16, u64),
        /// Advance the clock by this many ms and expire with this budget
        /// until the wheel has caught up.
        Advance(u64, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let timeout = prop::sample::select(vec![0u64, 10, 64, 100, 1_000, 5_000, 60_000]);
        prop_oneof![
            (0u16..200, timeout.clone()).prop_map(|(i, t)| Op::Open(i, t)),
            (0u16..200, timeout).prop_map(|(i, t)| Op::Touch(i, t)),
            (0u64..3_000, 1usize..8).prop_map(|(d, b)| Op::Advance(d, b)),
        ]
    }

    proptest! {
        /// Whatever the budget, once the wheel has caught up with the
        /// clock exactly the sessions whose deadline tick has come are
        /// gone, each freed once and none before its deadline. (A deadline
        /// in a tick the wheel has passed counts from the next tick: the
        /// wheel never schedules into the past.)
        #[test]
        fn expiry_agrees_with_a_deadline_model(ops in prop::collection::vec(op(), 1..400)) {
            let mut t = SessionTable::new(256, 11, 0);
            t.set_prefetch(Prefetch(counting));
            // id -> (slot, deadline in ticks)
            let mut model: HashMap<u16, (u32, u32)> = HashMap::new();
            let mut now = 0u64;
            // The first tick the wheel has not processed.
            let mut floor = 0u32;
            for o in ops {
                match o {
                    Op::Open(id, to) if !model.contains_key(&id) => {
                        let i = t.insert(sess(id, id, 7), now, to).unwrap();
                        model.insert(id, (i, ms_to_tick(now + to).max(floor)));
                    }
                    Op::Touch(id, to) => {
                        if let Some((i, d)) = model.get_mut(&id) {
                            t.touch(*i, now, to);
                            *d = ms_to_tick(now + to).max(floor);
                        }
                    }
                    Op::Advance(dt, budget) => {
                        now += dt;
                        let tick = ms_to_tick(now);
                        loop {
                            let mut early = None;
                            let due = t.expiry_due(now);
                            let done = t.expire_with(now, budget, |_, s| {
                                let d = model.get(&s.cport).map(|m| m.1);
                                if d.is_none_or(|d| d > tick) {
                                    early = Some(s.cport);
                                }
                                None
                            });
                            prop_assert!(early.is_none(), "{early:?} freed before its deadline");
                            prop_assert!(done.examined <= budget);
                            // The poll loop's cheap test skips only calls
                            // that do nothing.
                            prop_assert!(due || done == Expired::default(), "not due, yet {:?}", done);
                            if done.examined < budget {
                                break;
                            }
                        }
                        // Caught up: the cheap test says so.
                        prop_assert!(!t.expiry_due(now));
                        model.retain(|_, (_, d)| *d > tick);
                        floor = tick + 1;
                        prop_assert_eq!(t.expiry_backlog(now), 0);
                    }
                    _ => {}
                }
                prop_assert_eq!(t.len(), model.len());
                for (id, (i, _)) in &model {
                    prop_assert_eq!(t.lookup_in(&sess(*id, *id, 7).in_key()), Some(*i));
                }
            }
        }
    }
}

//! Tests of the scheduler dispatch and shared scheduler state.

use super::testutil::*;
use super::*;
use proptest::prelude::*;

#[test]
fn nothing_to_pick_from() {
    for s in Scheduler::ALL {
        assert_eq!(pick_once(s, &[]), None, "{s}");
        assert_eq!(pick_once(s, &servers(&[0, 0, 0])), None, "{s}");
        let mut all_over = servers(&[1, 2, 3]);
        all_over.iter_mut().for_each(|d| d.over = true);
        assert_eq!(pick_once(s, &all_over), None, "{s}");
    }
}

#[test]
fn a_single_server_is_always_chosen() {
    for s in Scheduler::ALL {
        let ds = servers(&[3]);
        let p = prepare(s, 0, &ds);
        let mut st = SchedState::new(s);
        for k in 0..50 {
            assert_eq!(pick(&p, &mut st, &ds[..], &flow(k * 7919, k * 104729, k as u64)), Some(0), "{s}");
        }
    }
}

/// The structure guarantee behind "pick never allocates": the state's
/// buffers are boxed slices that pick cannot grow; this checks they are
/// the very same buffers after many picks of every scheduler.
#[test]
fn pick_keeps_the_state_buffers() {
    for s in Scheduler::ALL {
        let mut ds = servers(&[1, 2, 3, 4, 5]);
        let p = prepare(s, sched_flags::FLAG1 | sched_flags::FLAG2, &ds);
        let mut st = SchedState::with_capacity(s, 64);
        let before = st.cache.buffer();
        for k in 0..20_000u32 {
            let i = (k % 5) as usize;
            ds[i].act = k % 13;
            ds[i].over = k % 17 == 0;
            let f = Flow {
                src: k.wrapping_mul(2_654_435_761),
                sport: k as u16,
                dst: k % 1000,
                dport: 80,
                now_ms: k as u64 * 1000,
            };
            let _ = pick(&p, &mut st, &ds[..], &f);
        }
        assert_eq!(st.cache.buffer(), before, "{s}");
    }
}

#[test]
fn reconfigure_keeps_or_replaces_the_state() {
    let ds = servers(&[1, 1]);
    let mut st = SchedState::with_capacity(Scheduler::Lblc, 64);
    let lblc = prepare(Scheduler::Lblc, 0, &ds);
    pick(&lblc, &mut st, &ds[..], &flow(1, 2, 0));
    let buf = st.cache.buffer();
    st.reconfigure(&lblc);
    assert_eq!(st.cache.buffer(), buf);
    assert_eq!(st.cached(0, &lblc), 1);
    st.reconfigure(&prepare(Scheduler::Lblcr, 0, &ds));
    assert_eq!(st.scheduler(), Scheduler::Lblcr);
    assert_eq!(st.cache.capacity(), 64);
    st.reconfigure(&prepare(Scheduler::Wlc, 0, &ds));
    assert_eq!(st.cache.capacity(), 0);
    assert_eq!(SchedState::default().scheduler(), Scheduler::Wlc);
}

#[test]
fn a_state_for_another_scheduler_still_picks() {
    let ds = loaded(&[1, 1], &[3, 1], &[]);
    for s in [Scheduler::Lblc, Scheduler::Lblcr] {
        let p = prepare(s, 0, &ds);
        assert_eq!(pick(&p, &mut SchedState::new(Scheduler::Rr), &ds[..], &flow(1, 2, 0)), Some(1));
    }
}

/// The largest weights keepalived sets (the kernel's `INT_MAX`), beside
/// small ones, with loads and overloads: every scheduler picks an available
/// server without overflowing (the tests build with overflow checks).
#[test]
fn the_largest_weights_do_not_overflow() {
    let max = i32::MAX as u32;
    for s in Scheduler::ALL {
        let mut ds =
            loaded(&[max, 1, max / 3, max - 1], &[u32::MAX, 0, 7, u32::MAX - 1], &[u32::MAX, 3, 0, 1]);
        let p = prepare(s, sched_flags::FLAG1, &ds);
        let mut st = SchedState::with_capacity(s, 16);
        for k in 0..64u32 {
            ds[0].over = k % 3 == 0;
            let got = pick(&p, &mut st, &ds[..], &flow(k, k / 2, u64::from(k)));
            if let Some(i) = got {
                assert!(available(&ds[..], i), "{s} chose {i}");
            }
            if !matches!(s, Scheduler::Dh | Scheduler::Sh | Scheduler::Mh | Scheduler::Ovf) {
                assert!(got.is_some(), "{s} found nothing");
            }
        }
    }
}

fn any_servers() -> impl Strategy<Value = Vec<D>> {
    prop::collection::vec((0u32..4, 0u32..6, 0u32..6, prop::bool::weighted(0.2)), 0..7).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (w, act, inact, over))| D {
                id: 0,
                w,
                addr: 0x0a00_0001 + i as u32,
                port: 80,
                act,
                inact,
                over,
            })
            .collect()
    })
}

proptest! {
    /// Whatever the weights, loads and flags: a pick is an available
    /// server, and if one is available every non-hashing scheduler finds
    /// one.
    #[test]
    fn picks_only_available_servers(ds in any_servers(), src in any::<u32>(), dst in any::<u32>(), flags in 0u8..4) {
        let any = (0..ds.len()).any(|i| available(&ds[..], i));
        for s in Scheduler::ALL {
            let p = prepare(s, flags, &ds);
            let mut st = SchedState::with_capacity(s, 16);
            for k in 0..3u64 {
                let f = Flow { src: src.wrapping_add(k as u32), sport: 1, dst, dport: 80, now_ms: k };
                let got = pick(&p, &mut st, &ds[..], &f);
                if let Some(i) = got {
                    prop_assert!(i < ds.len() && available(&ds[..], i), "{} chose {}", s, i);
                }
                let hashing = matches!(s, Scheduler::Dh | Scheduler::Sh | Scheduler::Mh);
                if s == Scheduler::Ovf {
                    // ip_vs_ovf.c: only servers with no more active connections than their weight.
                    let fits = (0..ds.len()).any(|i| available(&ds[..], i) && ds[i].act <= ds[i].w);
                    prop_assert_eq!(got.is_some(), fits, "ovf");
                } else if any && !hashing {
                    prop_assert!(got.is_some(), "{} found nothing", s);
                }
            }
        }
    }
}

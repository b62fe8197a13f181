//! Tests of the hashing schedulers (sh, dh, mh).

use super::super::testutil::*;
use super::super::*;
use super::*;
use gw_proto::sched_flags::{FLAG1, FLAG2};

/// A deterministic spread of client addresses.
fn sources(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|k| 0xc0a8_0000u32.wrapping_add(k.wrapping_mul(2_654_435_761)))
}

fn pick_src(p: &Prepared, ds: &[D], src: u32, sport: u16) -> Option<usize> {
    let f = Flow { src, sport, dst: src ^ 0x5555_5555, dport: 80, now_ms: 0 };
    pick(p, &mut SchedState::new(p.scheduler()), ds, &f)
}

/// Share of `n` sources that each server gets.
fn shares(p: &Prepared, ds: &[D], n: u32) -> Vec<f64> {
    let mut c = vec![0u32; ds.len()];
    for s in sources(n) {
        if let Some(i) = pick_src(p, ds, s, 0) {
            c[i] += 1;
        }
    }
    c.iter().map(|x| f64::from(*x) / f64::from(n)).collect()
}

fn is_prime(n: usize) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| !n.is_multiple_of(d))
}

#[test]
fn table_sizes() {
    let ds = servers(&[1, 2, 3]);
    assert_eq!(prepare(Scheduler::Sh, 0, &ds).table.len(), 256);
    assert_eq!(prepare(Scheduler::Dh, 0, &ds).table.len(), 256);
    assert_eq!(prepare(Scheduler::Mh, 0, &ds).table.len(), MH_TAB_SIZE);
    assert!(is_prime(MH_TAB_SIZE));
    assert!(prepare(Scheduler::Wlc, 0, &ds).table.is_empty());
}

#[test]
fn sh_buckets_repeat_each_server_weight_times() {
    let t = build_sh(&confs(&servers(&[1, 3, 0, 2])));
    assert_eq!(&t[..14], &[0, 1, 1, 1, 2, 3, 3, 0, 1, 1, 1, 2, 3, 3]);
    let t = build_sh(&confs(&servers(&[300, 1])));
    assert!(t.iter().all(|s| *s == 0));
    assert!(build_sh(&[]).iter().all(|s| *s == NONE));
}

#[test]
fn dh_buckets_ignore_weights() {
    let t = build_dh(&confs(&servers(&[5, 1, 0])));
    assert_eq!(&t[..7], &[0, 1, 2, 0, 1, 2, 0]);
    assert!(build_dh(&[]).iter().all(|s| *s == NONE));
}

/// Same client, same server: across calls, and across independently
/// built tables and states (that is, across workers).
#[test]
fn hashing_is_stable_across_calls_and_workers() {
    let ds = servers(&[1, 2, 3, 1, 1]);
    for s in [Scheduler::Sh, Scheduler::Dh, Scheduler::Mh] {
        let (w1, w2) = (prepare(s, 0, &ds), prepare(s, 0, &ds));
        let (mut st1, mut st2) = (SchedState::new(s), SchedState::new(s));
        let mut seen = std::collections::HashSet::new();
        for src in sources(2000) {
            let f = Flow { src, sport: 1234, dst: src.rotate_left(7), dport: 80, now_ms: 0 };
            let a = pick(&w1, &mut st1, &ds[..], &f);
            assert_eq!(a, pick(&w1, &mut st1, &ds[..], &f), "{s}");
            assert_eq!(a, pick(&w2, &mut st2, &ds[..], &f), "{s}");
            seen.insert(a);
        }
        assert_eq!(seen.len(), 5, "{s} uses every server");
    }
}

#[test]
fn sh_share_follows_weight() {
    let ds = servers(&[1, 1]);
    let sh = shares(&prepare(Scheduler::Sh, 0, &ds), &ds, 20_000);
    assert!((sh[0] - 0.5).abs() < 0.03, "{sh:?}");
    let ds = servers(&[3, 1]);
    let sh = shares(&prepare(Scheduler::Sh, 0, &ds), &ds, 20_000);
    assert!((sh[0] - 0.75).abs() < 0.03, "{sh:?}");
    // dh does not weigh: 1/2 each whatever the weights.
    let p = prepare(Scheduler::Dh, 0, &ds);
    let mut c = [0; 2];
    for dst in sources(20_000) {
        c[pick(&p, &mut SchedState::new(Scheduler::Dh), &ds[..], &flow(1, dst, 0)).unwrap()] += 1;
    }
    assert!((f64::from(c[0]) / 20_000.0 - 0.5).abs() < 0.03, "{c:?}");
}

#[test]
fn dh_hashes_the_destination_only() {
    let ds = servers(&[1, 1, 1, 1]);
    let p = prepare(Scheduler::Dh, 0, &ds);
    let mut st = SchedState::new(Scheduler::Dh);
    for dst in sources(200) {
        let a = pick(&p, &mut st, &ds[..], &flow(1, dst, 0));
        for src in sources(20) {
            assert_eq!(pick(&p, &mut st, &ds[..], &Flow { src, sport: 9, ..flow(1, dst, 0) }), a);
        }
        // The kernel's bucket: hash_32(daddr, 8).
        let want = (dst.wrapping_mul(0x61C8_8647) >> 24) as usize % 4;
        assert_eq!(a, Some(want));
    }
}

#[test]
fn sh_uses_the_kernel_bucket() {
    let ds = servers(&[1, 1, 1]);
    let p = prepare(Scheduler::Sh, FLAG2, &ds);
    for src in sources(300) {
        for sport in [0u16, 80, 40000] {
            let b = (u32::from(sport).wrapping_add(src).wrapping_mul(0x61C8_8647) >> 24) as usize;
            assert_eq!(pick_src(&p, &ds, src, sport), Some(b % 3));
        }
    }
}

#[test]
fn port_flag_spreads_one_client_over_servers() {
    let ds = servers(&[1, 1, 1, 1]);
    for s in [Scheduler::Sh, Scheduler::Mh] {
        let plain = prepare(s, 0, &ds);
        let port = prepare(s, FLAG2, &ds);
        let src = 0xc0a8_0101;
        let by_port: std::collections::HashSet<_> =
            (1000..1100).map(|sp| pick_src(&port, &ds, src, sp)).collect();
        let plain_set: std::collections::HashSet<_> =
            (1000..1100).map(|sp| pick_src(&plain, &ds, src, sp)).collect();
        assert_eq!(plain_set.len(), 1, "{s}");
        assert_eq!(by_port.len(), 4, "{s}");
    }
}

/// Without the fallback flag a client of an unavailable server gets
/// nothing; with it, it moves, and only it moves.
#[test]
fn fallback_flag() {
    for s in [Scheduler::Sh, Scheduler::Mh] {
        let ds = servers(&[1, 1, 1, 1]);
        let (plain, fb) = (prepare(s, 0, &ds), prepare(s, FLAG1, &ds));
        let before: Vec<_> = sources(3000).map(|x| pick_src(&plain, &ds, x, 0)).collect();
        for (quiesce, overload) in [(true, false), (false, true)] {
            let mut down = ds.clone();
            down[2].w = if quiesce { 0 } else { 1 };
            down[2].over = overload;
            for (x, was) in sources(3000).zip(&before) {
                let (p, f) = (pick_src(&plain, &down, x, 0), pick_src(&fb, &down, x, 0));
                if *was == Some(2) {
                    assert_eq!(p, None, "{s}");
                    assert!(f.is_some() && f != Some(2), "{s}");
                } else {
                    assert_eq!(p, *was, "{s}");
                    assert_eq!(f, *was, "{s}");
                }
            }
        }
        // Nothing available: the fallback finds nothing either.
        let mut all = ds.clone();
        all.iter_mut().for_each(|d| d.over = true);
        assert_eq!(pick_src(&fb, &all, 7, 0), None, "{s}");
    }
}

#[test]
fn sh_fallback_probes_from_twice_the_bucket() {
    // Buckets go A B C D A B C D ...; C (buckets h = 4k + 2) is
    // overloaded. The kernel probes buckets (offset + 2h) mod 256 for
    // offset 0, 1, ...: the first probe, 8k + 4, is always A's (a walk
    // from the next bucket would give D).
    let mut ds = servers(&[1, 1, 1, 1]);
    let plain = prepare(Scheduler::Sh, 0, &ds);
    let on_c: Vec<u32> = sources(2000).filter(|x| pick_src(&plain, &ds, *x, 0) == Some(2)).collect();
    assert!(on_c.len() > 300);
    ds[2].over = true;
    let p = prepare(Scheduler::Sh, FLAG1, &ds);
    for src in on_c {
        assert_eq!(pick_src(&p, &ds, src, 0), Some(0));
    }
    // Weight-0 servers still own buckets in sh (one per round): without
    // the fallback their clients find nothing.
    let ds = servers(&[1, 0]);
    let sh = shares(&prepare(Scheduler::Sh, 0, &ds), &ds, 10_000);
    assert!((sh[0] - 0.5).abs() < 0.03, "{sh:?}");
    let sh = shares(&prepare(Scheduler::Sh, FLAG1, &ds), &ds, 10_000);
    assert_eq!(sh[0], 1.0);
}

fn mh_map(ds: &[D], n: u32) -> Vec<Option<u32>> {
    let p = prepare(Scheduler::Mh, 0, ds);
    sources(n).map(|x| pick_src(&p, ds, x, 0).map(|i| ds[i].addr)).collect()
}

/// Removing one of 10 equal servers moves about 1/10 of the clients:
/// all of the removed server's, and few others.
#[test]
fn mh_removing_a_server_moves_about_its_share() {
    let n = 100_000;
    let ten = servers(&[1; 10]);
    let before = mh_map(&ten, n);
    for gone in [0, 4, 9] {
        let mut nine = ten.clone();
        let removed = nine.remove(gone).addr;
        let after = mh_map(&nine, n);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            assert!(a.is_some());
            if *b == Some(removed) {
                assert_ne!(a, b);
            }
            if a != b {
                moved += 1;
            }
        }
        let share = f64::from(moved) / f64::from(n);
        assert!((share - 0.1).abs() < 0.03, "removing server {gone} moved {share}");
    }
    // Adding it back restores the mapping exactly.
    assert_eq!(mh_map(&ten, n), before);
}

#[test]
fn mh_shares_follow_weights() {
    let ds = servers(&[2, 1, 1, 1]);
    let sh = shares(&prepare(Scheduler::Mh, 0, &ds), &ds, 100_000);
    assert!((sh[0] - 0.4).abs() < 0.03, "{sh:?}");
    for s in &sh[1..] {
        assert!((s - 0.2).abs() < 0.03, "{sh:?}");
        assert!((sh[0] / s - 2.0).abs() < 0.3, "{sh:?}");
    }
    // The table itself: slots in proportion 2:1:1:1.
    let t = build_mh(&confs(&ds));
    let count = |i| t.iter().filter(|s| **s == i).count() as f64 / MH_TAB_SIZE as f64;
    assert!((count(0) - 0.4).abs() < 0.01, "{}", count(0));
    // Weights with a common factor give the same table.
    assert_eq!(build_mh(&confs(&servers(&[20, 10, 10, 10]))), t);
}

#[test]
fn mh_turns_follow_the_kernel() {
    let c = |w: &[u32]| mh_turns(&confs(&servers(w)));
    assert_eq!(c(&[4, 2, 6]), vec![2, 1, 3]);
    assert_eq!(c(&[0, 3]), vec![0, 1]);
    assert_eq!(c(&[0, 0]), vec![0, 0]);
    // 100000 has 17 significant bits: shifted by 17 - 6 = 11.
    assert_eq!(c(&[100_000, 1]), vec![100_000 >> 11, 1]);
    assert_eq!(fls(0), 0);
    assert_eq!(fls(1), 1);
    assert_eq!(fls(64), 7);
}

#[test]
fn mh_quiesce_keeps_everyone_else_in_place() {
    let ds = servers(&[1, 1, 1, 1]);
    let before = mh_map(&ds, 5000);
    // Weight set to 0: last_weight keeps the server in the table.
    let mut c = confs(&ds);
    c[1].weight = 0;
    let p = Prepared::build(Scheduler::Mh, 0, &c);
    let mut down = ds.clone();
    down[1].w = 0;
    for (x, b) in sources(5000).zip(&before) {
        let got = pick_src(&p, &down, x, 0).map(|i| down[i].addr);
        if *b == Some(ds[1].addr) {
            assert_eq!(got, None);
        } else {
            assert_eq!(got, *b);
        }
    }
    // A server added with weight 0 takes no slot.
    let mut c = confs(&servers(&[1, 1, 1, 1, 0]));
    c[4].last_weight = 0;
    assert!(build_mh(&c).iter().all(|s| *s != 4));
    assert!(build_mh(&confs(&servers(&[0, 0]))).iter().all(|s| *s == NONE));
}

#[test]
fn mh_server_hash_uses_address_and_port() {
    let mut ds = servers(&[1, 1]);
    let t1 = build_mh(&confs(&ds));
    ds[0].port = 81;
    assert_ne!(build_mh(&confs(&ds)), t1);
}

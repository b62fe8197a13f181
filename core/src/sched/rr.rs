//! Round robin (`ip_vs_rr.c`) and weighted round robin (`ip_vs_wrr.c`).

use super::{available, Dests, Prepared, SchedState};

/// Round robin: the next available server after the one chosen last.
/// Weights above zero do not matter.
pub(super) fn rr<D: Dests + ?Sized>(st: &mut SchedState, d: &D) -> Option<usize> {
    let n = d.len();
    if n == 0 {
        return None;
    }
    // The next one after the last, without a division on the way (a new
    // connection's: one costs tens of cycles). `last` may be beyond a list
    // that has shrunk since; `start + k` is below `2 * n`.
    let start = st.last.map_or(0, |l| {
        let s = l.wrapping_add(1);
        if s < n {
            s
        } else {
            s % n
        }
    });
    let i =
        (0..n).map(|k| if start + k < n { start + k } else { start + k - n }).find(|i| available(d, *i))?;
    st.last = Some(i);
    st.last_id = d.id(i);
    Some(i)
}

/// Weighted round robin with the kernel's sequence: walk the list; each time
/// it wraps, lower the current weight by the gcd of the weights (back to the
/// maximum below 1); pick the next server, not overloaded, whose weight is at
/// least the current weight. Weights 4,3,2 give A A B A B C A B C.
///
/// The kernel starts its levels at `max - (gcd - 1)` so that a weight lowered
/// concurrently below the gcd is still reached; the weights here come from
/// an immutable [`Prepared`] and are all multiples of the gcd, so levels at
/// multiples of the gcd give the same sequence.
///
/// The kernel walks every level down to one a server can take, one sweep of
/// the list each: with weights 2,147,483,647 and 1 and the first server
/// overloaded, that is two billion sweeps for one connection. A level above
/// the largest weight of the servers that can take one picks nothing in
/// its sweep, so this goes straight to that weight instead: the same
/// choices and the same level, in at most two sweeps whatever the weights.
pub(super) fn wrr<D: Dests + ?Sized>(p: &Prepared, st: &mut SchedState, d: &D) -> Option<usize> {
    let got = wrr_walk(p, st, d);
    // No server could take it (all overloaded): the kernel's walk ends at
    // the head at the top level, unless it started at the lowest level
    // past the head, where it stops back at its start.
    if got.is_none() && p.max_weight > 0 && (st.last.is_none() || st.cw != p.gcd) {
        (st.last, st.cw) = (None, 0);
    }
    got
}

/// [`wrr`]'s walk, which changes the state only when it picks.
fn wrr_walk<D: Dests + ?Sized>(p: &Prepared, st: &mut SchedState, d: &D) -> Option<usize> {
    let (n, max, g) = (d.len(), p.max_weight, p.gcd);
    if n == 0 || max == 0 {
        return None;
    }
    let mut cw = if st.cw == 0 || st.cw > max { max } else { st.cw };
    let mut i = st.last.map_or(0, |l| l.saturating_add(1));
    // The rest of this sweep, then one at the highest level a server can
    // take: it picks that server if no other before it.
    let mut top = None;
    for _ in 0..2 * n + 1 {
        if i >= n {
            i = 0;
            let next = if cw <= g { max } else { cw - g };
            // The largest weight among the servers that can take a
            // connection, a multiple of the gcd as every weight is.
            let top =
                *top.get_or_insert_with(|| (0..n).filter(|j| available(d, *j)).map(|j| d.weight(j)).max());
            cw = next.min(top?);
        }
        if d.weight(i) >= cw && !d.overloaded(i) {
            st.last = Some(i);
            st.cw = cw;
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;

    #[test]
    fn wrr_432_gives_the_ipvs_sequence() {
        assert_eq!(sequence(Scheduler::Wrr, &servers(&[4, 3, 2]), 9), "AABABCABC");
        assert_eq!(sequence(Scheduler::Wrr, &servers(&[4, 3, 2]), 18), "AABABCABCAABABCABC");
    }

    #[test]
    fn wrr_steps_by_the_gcd() {
        assert_eq!(sequence(Scheduler::Wrr, &servers(&[4, 2]), 6), "AABAAB");
        assert_eq!(sequence(Scheduler::Wrr, &servers(&[6, 4]), 10), "AABABAABAB");
        assert_eq!(sequence(Scheduler::Wrr, &servers(&[1, 1, 1]), 6), "ABCABC");
    }

    #[test]
    fn weight_zero_servers_get_nothing() {
        assert_eq!(sequence(Scheduler::Wrr, &servers(&[3, 0, 1]), 8), "AAACAAAC");
        assert_eq!(sequence(Scheduler::Rr, &servers(&[1, 0, 5]), 4), "ACAC");
        assert_eq!(sequence(Scheduler::Rr, &servers(&[0, 0]), 2), "--");
        assert_eq!(sequence(Scheduler::Wrr, &servers(&[0, 0]), 2), "--");
        assert_eq!(sequence(Scheduler::Wrr, &servers(&[]), 1), "-");
    }

    /// After the list shrinks below the last choice, rr goes on from
    /// `(last + 1) % n` (as it did with a division each time); past the
    /// end it wraps to the first available server.
    #[test]
    fn rr_after_the_list_shrank_and_around_the_end() {
        let five = servers(&[1, 1, 1, 1, 1]);
        let p5 = prepare(Scheduler::Rr, 0, &five);
        let mut st = SchedState::new(Scheduler::Rr);
        let picks: String = (0..5).map(|_| letter(pick(&p5, &mut st, &five[..], &flow(1, 2, 0)))).collect();
        assert_eq!(picks, "ABCDE");
        // last = 4: (4 + 1) % 3 = 2.
        let three = servers(&[1, 1, 1]);
        let p3 = prepare(Scheduler::Rr, 0, &three);
        let picks: String = (0..4).map(|_| letter(pick(&p3, &mut st, &three[..], &flow(1, 2, 0)))).collect();
        assert_eq!(picks, "CABC");
        // From C the walk wraps past the end and skips the quiesced A.
        let quiesced = servers(&[0, 1, 1]);
        let p = prepare(Scheduler::Rr, 0, &quiesced);
        assert_eq!(letter(pick(&p, &mut st, &quiesced[..], &flow(1, 2, 0))), 'B');
    }

    /// A server added goes to the head of the list (IPVS's order), ahead
    /// of the cursor's index: rr goes on after the server it chose last,
    /// as the kernel's cursor (a pointer to that server) does. When that
    /// server is deleted, the next choice is the one after it.
    #[test]
    fn rr_goes_on_after_its_server_when_the_list_changes() {
        let f = flow(1, 2, 0);
        let abc = servers(&[1, 1, 1]);
        let mut st = SchedState::new(Scheduler::Rr);
        let p = prepare(Scheduler::Rr, 0, &abc);
        let s: String = (0..2).map(|_| letter(pick(&p, &mut st, &abc[..], &f))).collect();
        assert_eq!(s, "AB");
        // D added at the head: D A B C; after B comes C, then D.
        let mut dabc = servers(&[1, 1, 1, 1]);
        dabc.rotate_right(1);
        let p = prepare(Scheduler::Rr, 0, &dabc);
        st.reconfigure(&p);
        let names: String = (0..4)
            .map(|_| {
                let i = pick(&p, &mut st, &dabc[..], &f).unwrap();
                letter(Some((dabc[i].addr - 0x0a00_0001) as usize))
            })
            .collect();
        assert_eq!(names, "CDAB");
        // B (the last chosen) deleted: D A C; the next is C, the one after it.
        let dac: Vec<D> = dabc.iter().filter(|d| d.addr != 0x0a00_0002).cloned().collect();
        let p = prepare(Scheduler::Rr, 0, &dac);
        st.reconfigure(&p);
        let i = pick(&p, &mut st, &dac[..], &f).unwrap();
        assert_eq!(dac[i].addr, 0x0a00_0003);
    }

    #[test]
    fn rr_ignores_weights_above_zero() {
        assert_eq!(sequence(Scheduler::Rr, &servers(&[5, 1, 1]), 6), "ABCABC");
    }

    #[test]
    fn overloaded_servers_are_skipped() {
        let mut ds = servers(&[4, 3, 2]);
        ds[0].over = true;
        assert_eq!(sequence(Scheduler::Wrr, &ds, 5), "BBCBC");
        assert_eq!(sequence(Scheduler::Rr, &ds, 4), "BCBC");
        ds[1].over = true;
        ds[2].over = true;
        assert_eq!(sequence(Scheduler::Wrr, &ds, 2), "--");
        assert_eq!(sequence(Scheduler::Rr, &ds, 2), "--");
    }

    #[test]
    fn overload_clears_mid_sequence() {
        let mut ds = servers(&[1, 1, 1]);
        let p = prepare(Scheduler::Rr, 0, &ds);
        let mut st = SchedState::new(Scheduler::Rr);
        let f = flow(1, 2, 0);
        assert_eq!(pick(&p, &mut st, &ds[..], &f), Some(0));
        ds[1].over = true;
        assert_eq!(pick(&p, &mut st, &ds[..], &f), Some(2));
        ds[1].over = false;
        assert_eq!(pick(&p, &mut st, &ds[..], &f), Some(0));
        assert_eq!(pick(&p, &mut st, &ds[..], &f), Some(1));
    }

    #[test]
    fn wrr_reconfigure_restarts_from_the_head_at_the_same_level() {
        let ds = servers(&[4, 3, 2]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        let mut st = SchedState::new(Scheduler::Wrr);
        let f = flow(1, 2, 0);
        let s: String = (0..4).map(|_| letter(pick(&p, &mut st, &ds[..], &f))).collect();
        assert_eq!(s, "AABA"); // now at level 2, after A
                               // Weight of C raised to 4: same level (2), from the head.
        let ds = servers(&[4, 3, 4]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        st.reconfigure(&p);
        let s: String = (0..6).map(|_| letter(pick(&p, &mut st, &ds[..], &f))).collect();
        assert_eq!(s, "ABCABC");
        // All weights now 2 and 4 (gcd 2): the level rounds down to a multiple of 2.
        let ds = servers(&[4, 2]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        st.reconfigure(&p);
        assert_eq!(st.cw % 2, 0);
        // Fewer servers than the cursor: starts over without going out of range.
        let ds = servers(&[1]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        st.last = Some(7);
        assert_eq!(pick(&p, &mut st, &ds[..], &f), Some(0));
        let mut rr = SchedState::new(Scheduler::Rr);
        rr.last = Some(usize::MAX);
        assert_eq!(pick(&prepare(Scheduler::Rr, 0, &ds), &mut rr, &ds[..], &f), Some(0));
    }

    /// The kernel's `ip_vs_wrr_schedule`, step by step over list indices
    /// (`None`: the list head), one level at a time, with its `last_pass`,
    /// `restarted` and `stop` and where each of its ends leaves the cursor
    /// and the level. Levels are the kernel's shifted by `gcd - 1` (see
    /// `wrr_level`): the kernel's `cw <= di` is `cw == gcd` here. The
    /// reference the level jump and the failure rule must match.
    fn kernel_wrr(p: &Prepared, st: &mut SchedState, d: &[D]) -> Option<usize> {
        let (n, max, g) = (d.len(), p.max_weight, p.gcd);
        if n == 0 || max == 0 {
            return None; // err_noavail: the cursor stays.
        }
        let mut cw = if st.cw == 0 || st.cw > max { max } else { st.cw };
        let last = st.last.filter(|l| *l < n);
        let mut i = last.map_or(0, |l| l + 1);
        let (mut last_pass, mut restarted, mut stop) = (false, false, None);
        loop {
            while i < n {
                if !d[i].over && d[i].w >= cw {
                    (st.last, st.cw) = (Some(i), cw);
                    return Some(i);
                }
                if Some(i) == stop {
                    // err_over at `stop`, on the last pass's level.
                    (st.last, st.cw) = (Some(i), cw);
                    return None;
                }
                i += 1;
            }
            if cw <= g {
                cw = max;
                if last_pass || last.is_none() {
                    // err_over at the head, at the top.
                    (st.last, st.cw) = (None, cw);
                    return None;
                }
                restarted = true;
            } else {
                cw -= g;
            }
            last_pass = cw <= g;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
            i = 0;
        }
    }

    proptest::proptest! {
        /// Whatever the weights and however the overload flags change
        /// between connections: the same choices, and the same level, as
        /// the kernel's walk.
        #[test]
        fn wrr_chooses_as_the_kernels_walk(
            weights in proptest::collection::vec(0u32..13, 1..6),
            scale in proptest::sample::select(vec![1u32, 2, 3, 1000]),
            overloads in proptest::collection::vec(proptest::collection::vec(proptest::bool::weighted(0.3), 6), 1..40),
        ) {
            let mut ds = servers(&weights.iter().map(|w| w * scale).collect::<Vec<_>>());
            let p = prepare(Scheduler::Wrr, 0, &ds);
            let (mut fast, mut kernel) = (SchedState::new(Scheduler::Wrr), SchedState::new(Scheduler::Wrr));
            for over in &overloads {
                ds.iter_mut().zip(over).for_each(|(d, o)| d.over = *o);
                let want = kernel_wrr(&p, &mut kernel, &ds);
                proptest::prop_assert_eq!(super::wrr(&p, &mut fast, &ds[..]), want);
                // The top level is 0 or the largest weight: the same.
                let top = |cw: u32| if cw == 0 { p.max_weight } else { cw };
                proptest::prop_assert_eq!((fast.last, top(fast.cw)), (kernel.last, top(kernel.cw)));
            }
        }
    }

    /// keepalived's largest weight beside weight 1, the heavy server
    /// overloaded: the light one is chosen at once (the kernel's walk takes
    /// two billion sweeps), and the heavy one again when it recovers.
    #[test]
    fn wrr_with_the_largest_weights_takes_two_sweeps_at_most() {
        let mut ds = servers(&[i32::MAX as u32, 1]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        let mut st = SchedState::new(Scheduler::Wrr);
        let f = flow(1, 2, 0);
        assert_eq!(pick(&p, &mut st, &ds[..], &f), Some(0));
        ds[0].over = true;
        assert_eq!(pick(&p, &mut st, &ds[..], &f), Some(1));
        assert_eq!(st.cw, 1);
        ds[0].over = false;
        let s: String = (0..3).map(|_| letter(pick(&p, &mut st, &ds[..], &f))).collect();
        assert_eq!(s, "AAA");
    }

    /// The kernel's sequences (`ip_vs_wrr_schedule`, `ip_vs_wrr_dest_changed`)
    /// around a pick that finds every server overloaded, an edit of the
    /// service alone, and weight changes that change the gcd.
    #[test]
    fn wrr_follows_the_kernel_across_failures_and_changes() {
        let f = flow(1, 2, 0);
        let run = |p: &Prepared, st: &mut SchedState, ds: &[D], n: usize| -> String {
            (0..n).map(|_| letter(pick(p, st, ds, &f))).collect()
        };
        // Weights 2,1: A, then both overloaded, then both back.
        let mut ds = servers(&[2, 1]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        let mut st = SchedState::new(Scheduler::Wrr);
        assert_eq!(run(&p, &mut st, &ds, 1), "A");
        ds.iter_mut().for_each(|d| d.over = true);
        assert_eq!(run(&p, &mut st, &ds, 1), "-");
        ds.iter_mut().for_each(|d| d.over = false);
        assert_eq!(run(&p, &mut st, &ds, 6), "AABAAB");
        // Weights 1,1,1: an edit of the service alone (the same servers)
        // leaves the sequence where it was.
        let ds = servers(&[1, 1, 1]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        let mut st = SchedState::new(Scheduler::Wrr);
        st.reconfigure(&p);
        assert_eq!(run(&p, &mut st, &ds, 1), "A");
        st.reconfigure(&prepare(Scheduler::Wrr, 0, &ds));
        assert_eq!(run(&p, &mut st, &ds, 4), "BCAB");
        // The same after the scheduler changed to wrr: the state made anew
        // knows its servers.
        let mut st = SchedState::new(Scheduler::Rr);
        st.reconfigure(&p);
        assert_eq!(run(&p, &mut st, &ds, 1), "A");
        st.reconfigure(&prepare(Scheduler::Wrr, 0, &ds));
        assert_eq!(run(&p, &mut st, &ds, 2), "BC");
        // Weights 4,2, then B edited to 3 (gcd 2 -> 1).
        let mut st = SchedState::new(Scheduler::Wrr);
        let ds = servers(&[4, 2]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        st.reconfigure(&p);
        assert_eq!(run(&p, &mut st, &ds, 1), "A");
        let ds = servers(&[4, 3]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        st.reconfigure(&p);
        assert_eq!(run(&p, &mut st, &ds, 9), "ABABABAAB");
        // Weights 3,2, then A edited to 4 (gcd 1 -> 2).
        let mut st = SchedState::new(Scheduler::Wrr);
        let ds = servers(&[3, 2]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        st.reconfigure(&p);
        assert_eq!(run(&p, &mut st, &ds, 1), "A");
        let ds = servers(&[4, 2]);
        let p = prepare(Scheduler::Wrr, 0, &ds);
        st.reconfigure(&p);
        assert_eq!(run(&p, &mut st, &ds, 8), "AABAABAA");
    }

    #[test]
    fn wrr_shares_follow_weights() {
        let ds = servers(&[5, 3, 1, 0]);
        let s = sequence(Scheduler::Wrr, &ds, 900);
        let count = |c| s.chars().filter(|x| *x == c).count();
        assert_eq!((count('A'), count('B'), count('C'), count('D')), (500, 300, 100, 0));
    }
}

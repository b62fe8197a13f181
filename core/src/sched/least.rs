//! Least-load schedulers: lc (`ip_vs_lc.c`), wlc (`ip_vs_wlc.c`), sed
//! (`ip_vs_sed.c`), nq (`ip_vs_nq.c`), the weighted failover fo
//! (`ip_vs_fo.c`) and the weighted overflow ovf (`ip_vs_ovf.c`).
//!
//! All walk the servers in list order, skip those with weight 0 or flagged
//! overloaded, and keep the first one found unless a later one is strictly
//! better, so ties go to the earliest server. The loads are this worker's
//! connection counts (see the module docs of [`super`]).

use super::{available, Dests};

/// The kernel's `ip_vs_dest_conn_overhead`: `(activeconns << 8) + inactconns`.
/// An active connection weighs 256 inactive ones.
#[inline]
pub(super) fn overhead<D: Dests + ?Sized>(d: &D, i: usize) -> u64 {
    let (active, inactive) = d.conns(i);
    (u64::from(active) << 8) + u64::from(inactive)
}

/// sed's and nq's expected delay numerator: `activeconns + 1`.
#[inline]
fn expected<D: Dests + ?Sized>(d: &D, i: usize) -> u64 {
    u64::from(d.conns(i).0) + 1
}

/// Least connection: the smallest overhead, weights ignored (but 0).
pub(super) fn lc<D: Dests + ?Sized>(d: &D) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for i in (0..d.len()).filter(|i| available(d, *i)) {
        let h = overhead(d, i);
        if best.is_none_or(|(_, bh)| h < bh) {
            best = Some((i, h));
        }
    }
    best.map(|(i, _)| i)
}

/// Whether `load / weight` is strictly below `load_b / weight_b`, compared
/// as the kernel does without division: `load_b * weight > load * weight_b`.
#[inline]
pub(super) fn lighter(load: u64, weight: u32, (load_b, weight_b): (u64, u32)) -> bool {
    u128::from(load_b) * u128::from(weight) > u128::from(load) * u128::from(weight_b)
}

/// The smallest `load / weight`; ties go to the first.
fn least_per_weight<D: Dests + ?Sized>(d: &D, load: fn(&D, usize) -> u64) -> Option<usize> {
    let mut best: Option<(usize, (u64, u32))> = None;
    for i in (0..d.len()).filter(|i| available(d, *i)) {
        let (h, w) = (load(d, i), d.weight(i));
        if best.is_none_or(|(_, b)| lighter(h, w, b)) {
            best = Some((i, (h, w)));
        }
    }
    best.map(|(i, _)| i)
}

/// Weighted least connection: the smallest overhead / weight. Also the
/// least-load choice of lblc and lblcr.
pub(super) fn wlc<D: Dests + ?Sized>(d: &D) -> Option<usize> {
    least_per_weight(d, overhead)
}

/// Shortest expected delay: the smallest (active + 1) / weight; inactive
/// connections do not count.
pub(super) fn sed<D: Dests + ?Sized>(d: &D) -> Option<usize> {
    least_per_weight(d, expected)
}

/// Never queue: the first server without active connections, whatever its
/// weight; if every server is busy, as sed.
pub(super) fn nq<D: Dests + ?Sized>(d: &D) -> Option<usize> {
    (0..d.len()).find(|i| available(d, *i) && d.conns(*i).0 == 0).or_else(|| sed(d))
}

/// Weighted failover: the server with the highest weight; the first one on
/// ties.
pub(super) fn fo<D: Dests + ?Sized>(d: &D) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for i in (0..d.len()).filter(|i| available(d, *i)) {
        if best.is_none_or(|(_, bw)| d.weight(i) > bw) {
            best = Some((i, d.weight(i)));
        }
    }
    best.map(|(i, _)| i)
}

/// Weighted overflow: the server with the highest weight among those whose
/// active connections do not exceed their weight; the first one on ties.
/// The kernel skips a server when `activeconns > weight`, so a server takes
/// new connections up to and including `weight` active ones.
pub(super) fn ovf<D: Dests + ?Sized>(d: &D) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for i in (0..d.len()).filter(|i| available(d, *i)) {
        let w = d.weight(i);
        if u64::from(d.conns(i).0) > u64::from(w) {
            continue;
        }
        if best.is_none_or(|(_, bw)| w > bw) {
            best = Some((i, w));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;

    /// (weights, active, inactive, expected pick).
    type Case = (&'static [u32], &'static [u32], &'static [u32], Option<usize>);

    fn check(sched: Scheduler, cases: &[Case]) {
        for (w, a, ia, want) in cases {
            let ds = loaded(w, a, ia);
            assert_eq!(pick_once(sched, &ds), *want, "{sched} weights {w:?} active {a:?} inactive {ia:?}");
        }
    }

    #[test]
    fn lc_choices() {
        check(
            Scheduler::Lc,
            &[
                // Fewest connections; weights above zero do not matter.
                (&[1, 100, 1], &[3, 2, 1], &[0, 0, 0], Some(2)),
                // Ties go to the first server.
                (&[1, 1, 1], &[2, 1, 1], &[0, 0, 0], Some(1)),
                // An active connection weighs 256 inactive ones.
                (&[1, 1], &[1, 0], &[0, 255], Some(1)),
                (&[1, 1], &[1, 0], &[0, 256], Some(0)),
                (&[1, 1], &[1, 0], &[0, 300], Some(0)),
                // Weight 0 is quiesced, even when idle.
                (&[0, 1], &[0, 5], &[0, 9], Some(1)),
            ],
        );
    }

    #[test]
    fn wlc_choices() {
        check(
            Scheduler::Wlc,
            &[
                // 256/1 against 256/2.
                (&[1, 2], &[1, 1], &[0, 0], Some(1)),
                // 256/1 against 512/2: a tie, the first wins.
                (&[1, 2], &[1, 2], &[0, 0], Some(0)),
                // Idle servers tie at 0 whatever their weights.
                (&[1, 3], &[0, 0], &[0, 0], Some(0)),
                // Inactive connections count: (256+10)/1 against 512/2.
                (&[1, 2], &[1, 2], &[10, 0], Some(1)),
                // 3 active on weight 3 against 2 on weight 1.
                (&[1, 3], &[2, 3], &[0, 0], Some(1)),
                // Weight 0 never wins, even with no connections.
                (&[0, 1], &[0, 9], &[0, 0], Some(1)),
            ],
        );
    }

    #[test]
    fn sed_choices() {
        check(
            Scheduler::Sed,
            &[
                // (0+1)/1 against (1+1)/2: a tie, the first wins.
                (&[1, 2], &[0, 1], &[0, 0], Some(0)),
                // (0+1)/1 against (1+1)/3.
                (&[1, 3], &[0, 1], &[0, 0], Some(1)),
                // Inactive connections do not count (wlc would pick B).
                (&[1, 1], &[0, 0], &[1000, 0], Some(0)),
                // Idle servers: the heavier one (1/1 against 1/4).
                (&[1, 4], &[0, 0], &[0, 0], Some(1)),
                (&[0, 1], &[0, 3], &[0, 0], Some(1)),
            ],
        );
        assert_eq!(pick_once(Scheduler::Wlc, &loaded(&[1, 1], &[0, 0], &[1000, 0])), Some(1));
    }

    #[test]
    fn nq_choices() {
        check(
            Scheduler::Nq,
            &[
                // An idle server first, whatever the weights: sed would pick B
                // ((0+1)/1 against (0+1)/10), nq takes the first idle one.
                (&[1, 10], &[0, 0], &[0, 0], Some(0)),
                // B has (1+1)/10 < (2+1)/1 but C is idle.
                (&[1, 10, 1], &[2, 1, 0], &[0, 0, 0], Some(2)),
                // Inactive connections do not make a server busy.
                (&[1, 10], &[3, 1], &[50, 0], Some(1)),
                (&[10, 1], &[1, 0], &[0, 50], Some(1)),
                // Nobody idle: as sed.
                (&[1, 3], &[1, 2], &[0, 0], Some(1)),
                (&[1, 2], &[1, 3], &[0, 0], Some(0)),
                // An idle quiesced server is not a candidate.
                (&[0, 1], &[0, 4], &[0, 0], Some(1)),
            ],
        );
        // The sed/nq difference.
        let ds = loaded(&[1, 10], &[0, 1], &[]);
        assert_eq!(pick_once(Scheduler::Sed, &ds), Some(1));
        assert_eq!(pick_once(Scheduler::Nq, &ds), Some(0));
    }

    #[test]
    fn idle_overloaded_server_is_skipped() {
        let mut ds = loaded(&[1, 1], &[0, 5], &[]);
        ds[0].over = true;
        for s in [Scheduler::Lc, Scheduler::Wlc, Scheduler::Sed, Scheduler::Nq, Scheduler::Fo] {
            assert_eq!(pick_once(s, &ds), Some(1), "{s}");
        }
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let ds = loaded(&[u32::MAX, 1], &[u32::MAX, 0], &[u32::MAX, 0]);
        assert_eq!(pick_once(Scheduler::Wlc, &ds), Some(1));
        assert_eq!(pick_once(Scheduler::Lc, &ds), Some(1));
        let ds = loaded(&[u32::MAX, 1], &[u32::MAX, u32::MAX - 1], &[]);
        assert_eq!(pick_once(Scheduler::Sed, &ds), Some(0));
    }

    #[test]
    fn fo_prefers_the_highest_weight() {
        let mut ds = servers(&[5, 10, 10, 1]);
        assert_eq!(pick_once(Scheduler::Fo, &ds), Some(1));
        // Connections do not matter.
        ds[1].act = 1000;
        assert_eq!(pick_once(Scheduler::Fo, &ds), Some(1));
        // Overloaded: the next highest, first in list order on ties.
        ds[1].over = true;
        assert_eq!(pick_once(Scheduler::Fo, &ds), Some(2));
        // Quiesced.
        ds[2].w = 0;
        assert_eq!(pick_once(Scheduler::Fo, &ds), Some(0));
        ds[0].over = true;
        assert_eq!(pick_once(Scheduler::Fo, &ds), Some(3));
        ds[3].w = 0;
        assert_eq!(pick_once(Scheduler::Fo, &ds), None);
    }

    #[test]
    fn ovf_fills_the_heaviest_server_then_overflows() {
        let mut ds = servers(&[5, 10, 10, 1]);
        assert_eq!(pick_once(Scheduler::Ovf, &ds), Some(1));
        // Up to and including its weight in active connections it stays first.
        ds[1].act = 10;
        assert_eq!(pick_once(Scheduler::Ovf, &ds), Some(1));
        // Beyond it: the next with the highest weight, list order on ties.
        ds[1].act = 11;
        assert_eq!(pick_once(Scheduler::Ovf, &ds), Some(2));
        // Inactive connections do not count.
        ds[2].inact = 1000;
        assert_eq!(pick_once(Scheduler::Ovf, &ds), Some(2));
        ds[2].act = 11;
        assert_eq!(pick_once(Scheduler::Ovf, &ds), Some(0));
        // Flagged overloaded (-x) and quiesced servers are skipped.
        ds[0].over = true;
        assert_eq!(pick_once(Scheduler::Ovf, &ds), Some(3));
        ds[3].w = 0;
        assert_eq!(pick_once(Scheduler::Ovf, &ds), None);
    }
}

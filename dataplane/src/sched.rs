//! Schedulers: pick a real server for a new connection.
//!
//! The configuration (weights, the wrr gcd and maximum) is immutable and
//! shared by all workers; the cursor state is per worker and per service
//! ([`SchedState`]), so workers never write a shared line. With N workers,
//! each worker runs its own rr/wrr sequence: over many connections the
//! shares are the configured ones, but consecutive connections landing on
//! different workers can go to the same server (the kernel keeps one
//! sequence per service).

use gw_proto::Scheduler;

/// What a scheduler needs to know of a real server.
pub trait Candidate {
    fn weight(&self) -> u32;
}

/// Per-worker, per-service cursor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedState {
    /// Last index chosen (rr) or examined (wrr); `None` before the first pick.
    last: Option<usize>,
    /// wrr's current weight.
    cw: u32,
}

/// Weight parameters of a server list that wrr needs, computed once per
/// configuration change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WrrParams {
    pub max: u32,
    pub gcd: u32,
}

impl WrrParams {
    pub fn of<C: Candidate>(dests: &[C]) -> WrrParams {
        fn gcd(a: u32, b: u32) -> u32 {
            if b == 0 {
                a
            } else {
                gcd(b, a % b)
            }
        }
        let max = dests.iter().map(|d| d.weight()).max().unwrap_or(0);
        let g = dests.iter().map(|d| d.weight()).filter(|w| *w > 0).fold(0, gcd);
        WrrParams { max, gcd: g.max(1) }
    }
}

/// Picks the index of a server in `dests`, or `None` if no server has a
/// weight above zero.
pub fn pick<C: Candidate>(
    sched: Scheduler,
    dests: &[C],
    params: WrrParams,
    st: &mut SchedState,
) -> Option<usize> {
    match sched {
        Scheduler::Rr => rr(dests, st),
        Scheduler::Wrr => wrr(dests, params, st),
        _ => wrr(dests, params, st),
    }
}

/// Round robin over servers with weight > 0 (IPVS `ip_vs_rr_schedule`).
fn rr<C: Candidate>(dests: &[C], st: &mut SchedState) -> Option<usize> {
    let n = dests.len();
    let start = st.last.map_or(0, |l| l + 1);
    for k in 0..n {
        let i = (start + k) % n;
        if dests[i].weight() > 0 {
            st.last = Some(i);
            return Some(i);
        }
    }
    None
}

/// Weighted round robin with the kernel's sequence (`ip_vs_wrr_schedule`):
/// walk the list; each time it wraps, lower the current weight by the gcd of
/// all weights (back to the maximum below 1); pick the first server whose
/// weight is at least the current weight. Weights 4,3,2 give A A B A B C A B C.
fn wrr<C: Candidate>(dests: &[C], p: WrrParams, st: &mut SchedState) -> Option<usize> {
    let n = dests.len();
    if n == 0 || p.max == 0 {
        return None;
    }
    let mut i = st.last.map_or(n - 1, |l| l.min(n - 1));
    let mut cw = st.cw.min(p.max);
    // One full sweep of weights visits every server (max / gcd + 1) times.
    for _ in 0..n * (p.max / p.gcd + 1) as usize {
        i = (i + 1) % n;
        if i == 0 {
            cw = if cw <= p.gcd { p.max } else { cw - p.gcd };
        }
        if dests[i].weight() >= cw && cw > 0 {
            st.last = Some(i);
            st.cw = cw;
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Candidate for u32 {
        fn weight(&self) -> u32 {
            *self
        }
    }

    fn sequence(sched: Scheduler, w: &[u32], n: usize) -> String {
        let p = WrrParams::of(w);
        let mut st = SchedState::default();
        (0..n).map(|_| pick(sched, w, p, &mut st).map_or('-', |i| (b'A' + i as u8) as char)).collect()
    }

    #[test]
    fn wrr_432_gives_the_ipvs_sequence() {
        assert_eq!(sequence(Scheduler::Wrr, &[4, 3, 2], 9), "AABABCABC");
        assert_eq!(sequence(Scheduler::Wrr, &[4, 3, 2], 18), "AABABCABCAABABCABC");
    }

    #[test]
    fn wrr_steps_by_the_gcd() {
        assert_eq!(sequence(Scheduler::Wrr, &[4, 2], 6), "AABAAB");
        assert_eq!(sequence(Scheduler::Wrr, &[1, 1, 1], 6), "ABCABC");
    }

    #[test]
    fn weight_zero_servers_get_nothing() {
        assert_eq!(sequence(Scheduler::Wrr, &[3, 0, 1], 8), "AAACAAAC");
        assert_eq!(sequence(Scheduler::Rr, &[1, 0, 5], 4), "ACAC");
        assert_eq!(sequence(Scheduler::Rr, &[0, 0], 2), "--");
        assert_eq!(sequence(Scheduler::Wrr, &[0, 0], 2), "--");
        assert_eq!(sequence(Scheduler::Wrr, &[], 1), "-");
    }

    #[test]
    fn rr_ignores_weights_above_zero() {
        assert_eq!(sequence(Scheduler::Rr, &[5, 1, 1], 6), "ABCABC");
    }
}

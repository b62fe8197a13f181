//! How long a cache line takes to go from the generator's CPU to the DUT's
//! and back: the machine's level at the moment a scenario runs.
//!
//! Over memif every packet crosses between the two CPUs twice (the
//! generator writes it, the DUT copies it out of the shared ring; the same
//! on the way back), and on this VM the cost of that crossing is not fixed:
//! the host places the two vCPUs near each other or far apart and moves
//! them every few minutes, and a DUT's cycles/packet moves by the same
//! additive amount (testpmd's 95 and 238 cycles minutes apart, gatewayd's
//! 198 and 298). A round trip measured right before and after a scenario
//! says which placement its figures come from.
//!
//! Two threads, one pinned to each CPU, hand a counter back and forth on a
//! line of its own: [`BATCHES`] batches of [`PER_BATCH`] round trips, the
//! median batch's mean in TSC cycles (a preempted batch is an outlier the
//! median leaves out). About 20 ms.

use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Release};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCHES: usize = 64;
const PER_BATCH: u64 = 256;
/// A probe that takes longer (a CPU kept away) gives no figure.
const LIMIT: Duration = Duration::from_secs(2);

/// The counter, alone on its line (and its neighbour, for the adjacent-line
/// prefetcher).
#[repr(align(128))]
struct Line(AtomicU64);

/// Pins the calling thread to `cpu`; false if the kernel refused.
fn pin(cpu: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

/// What a side that gave up leaves in the line.
const GAVE_UP: u64 = u64::MAX;

/// Waits until `line` holds `v`; false once `deadline` has passed or the
/// other side gave up.
fn wait_for(line: &Line, v: u64, deadline: Instant) -> bool {
    let mut spins = 0u32;
    loop {
        match line.0.load(Acquire) {
            x if x == v => return true,
            GAVE_UP => return false,
            _ => {}
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(4096) && Instant::now() > deadline {
            return false;
        }
    }
}

/// The median round trip of a cache line between CPUs `a` and `b`, in TSC
/// cycles; `None` if either CPU cannot be used or the probe ran out of time.
pub fn round_trip(a: usize, b: usize) -> Option<f64> {
    let cpus = crate::procs::online_cpus();
    if a.max(b) >= cpus {
        return None;
    }
    let line = Arc::new(Line(AtomicU64::new(0)));
    let deadline = Instant::now() + LIMIT;
    let total = BATCHES as u64 * PER_BATCH;
    let answer = {
        let line = Arc::clone(&line);
        std::thread::spawn(move || {
            let ok = pin(b)
                && (0..total).all(|i| {
                    let ok = wait_for(&line, 2 * i + 1, deadline);
                    if ok {
                        line.0.store(2 * i + 2, Release);
                    }
                    ok
                });
            if !ok {
                line.0.store(GAVE_UP, Release);
            }
            ok
        })
    };
    let ask = {
        let line = Arc::clone(&line);
        std::thread::spawn(move || -> Option<Vec<u64>> {
            let pinned = pin(a);
            let mut batches = Vec::with_capacity(BATCHES);
            for batch in 0..BATCHES as u64 {
                let t0 = gw_dpdk::tsc();
                for i in batch * PER_BATCH..(batch + 1) * PER_BATCH {
                    line.0.store(2 * i + 1, Release);
                    if !pinned || !wait_for(&line, 2 * i + 2, deadline) {
                        line.0.store(GAVE_UP, Release);
                        return None;
                    }
                }
                batches.push(gw_dpdk::tsc().wrapping_sub(t0) / PER_BATCH);
            }
            Some(batches)
        })
    };
    let batches = ask.join().ok()?;
    let answered = answer.join().ok()?;
    let mut batches = batches.filter(|_| answered)?;
    batches.sort_unstable();
    batches.get(batches.len() / 2).map(|m| *m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_between_two_cpus_is_measured_and_an_absent_cpu_gives_none() {
        let cpus = crate::procs::online_cpus();
        if cpus >= 2 {
            let rtt = round_trip(0, 1).expect("CPUs 0 and 1 exist");
            // Two line transfers and two stores at least; not a timing bound.
            assert!(rtt > 0.0, "{rtt}");
        }
        assert_eq!(round_trip(0, cpus), None);
    }
}

//! The session expiry's stall of the poll loop (issue 14).
//!
//! `n` sessions are opened at the peak rate of 2M/s, so each 64 ms wheel
//! slot holds 128k of them, on a slab whose free list was shuffled first
//! (as after hours of churn: a slot's list visits random lines). When they
//! come due, each poll's expiry pass walks those lists. For each case the
//! example prints the passes' budget, their lengths in TSC cycles (median,
//! 99th percentile, longest: the longest is where the machine preempted the
//! run, on a shared one) and the cycles per examined session:
//! - `due`: every session's deadline has come (each is freed);
//! - `refreshed`: every session was refreshed since it was linked (each is
//!   moved to its new deadline's slot: the lazy re-link);
//!
//! with the former budget (4096 per poll, no prefetch) and the poll loop's
//! new ones (`EXPIRE_BUDGET` = 64 when idle, 16 + 2 x 32 = 80 after a full
//! burst), with and without the walk's prefetch. Timings: run it on a quiet
//! machine; what holds anyway is the number of sessions a pass examines.
//!
//! Then the connection listing's share of a poll (`gwctl -L -c`,
//! `Engine::dump`): one chunk scans up to `SCAN_PER_CHUNK` slots and copies
//! the live sessions into the control plane's buffer of `LIST_CHUNK`
//! sessions, timed for the former 65,536 and 8192 and the present values.
//!
//!   cargo build --release -p gw-benches --example expire_stall
//!   target/release/examples/expire_stall 1000000
use dataplane::engine_config::{expire_budget, EXPIRE_BUDGET};
use gw_benches::*;
use gw_core::mailbox::{LIST_CHUNK, SCAN_PER_CHUNK};
use gw_core::session::{Prefetch, Session, SessionTable};
use gw_dpdk::tsc;

#[global_allocator]
static ALLOC: gw_dpdk::huge::HugeAlloc = gw_dpdk::huge::HugeAlloc;

/// Sessions opened per wheel tick (64 ms) at 2M/s.
const PER_TICK: u32 = 128_000;
const TIMEOUT_MS: u64 = 300_000;

/// A table of `n` sessions opened at 2M/s from time 0, on shuffled slab
/// slots; `refreshed`: each touched once since (a later deadline, so its
/// slot will only move it).
fn table(n: u32, refreshed: bool) -> SessionTable {
    let mut t = SessionTable::new(n as usize + n as usize / 4, 7, 0);
    let mut idx: Vec<u32> = (0..n).map(|i| t.insert(synthetic_session(i), 0, 1).expect("room")).collect();
    Rng::new(0x5eed).shuffle(&mut idx);
    for i in idx {
        t.remove(i);
    }
    for i in 0..n {
        let at = u64::from(i / PER_TICK) * 64;
        let s = t.insert(synthetic_session(i), at, TIMEOUT_MS).expect("room");
        if refreshed {
            t.touch(s, at + 1_000, TIMEOUT_MS);
        }
    }
    t
}

/// Runs passes of `budget` at the clock where all of `t`'s first
/// deadlines have come until the wheel has caught up; returns the passes'
/// lengths in cycles, sorted, and the cycles per examined session.
fn drain(t: &mut SessionTable, n: u32, budget: usize) -> (Vec<u64>, f64) {
    let now = TIMEOUT_MS + u64::from(n / PER_TICK + 1) * 64;
    let (mut passes, mut total, mut examined) = (vec![], 0, 0);
    loop {
        let t0 = tsc();
        let done = t.expire_with(now, budget, |_, _| None);
        let dt = tsc() - t0;
        assert!(done.examined <= budget);
        if done.examined == 0 {
            break;
        }
        passes.push(dt);
        total += dt;
        examined += done.examined;
    }
    assert_eq!(examined, n as usize, "every session examined once");
    passes.sort_unstable();
    (passes, total as f64 / examined as f64)
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    // No EAL here: the TSC's rate against the monotonic clock.
    let (t0, c0) = (std::time::Instant::now(), tsc());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let hz = ((tsc() - c0) as f64 / t0.elapsed().as_secs_f64()) as u64;
    println!("{n} sessions, {PER_TICK} per wheel slot, TSC {} MHz", hz / 1_000_000);
    println!(
        "| case | budget | prefetch | passes | pass p50 / p99 / max (cycles) | p99 µs | cycles/session |"
    );
    println!("|---|--:|---|--:|--:|--:|--:|");
    for refreshed in [false, true] {
        let case = if refreshed { "refreshed" } else { "due" };
        for (budget, prefetch) in
            [(4096, false), (EXPIRE_BUDGET, false), (EXPIRE_BUDGET, true), (expire_budget(32), true)]
        {
            let mut t = table(n, refreshed);
            // As gatewayd's workers (`Engine::set_prefetch`), or none.
            t.set_prefetch(if prefetch { Prefetch(gw_dpdk::prefetch_addr) } else { Prefetch::NONE });
            let (p, per) = drain(&mut t, n, budget);
            let at = |q: f64| p[((p.len() - 1) as f64 * q) as usize];
            let us = at(0.99) as f64 * 1e6 / hz as f64;
            let pf = if prefetch { "yes" } else { "no" };
            let (n, p50, p99, max) = (p.len(), at(0.5), at(0.99), at(1.0));
            println!("| {case} | {budget} | {pf} | {n} | {p50} / {p99} / {max} | {us:.1} | {per:.0} |");
        }
    }
    let t = table(n, false);
    println!();
    println!("| listing: slots scanned | sessions copied | chunks | p50 / max (cycles) | p50 µs |");
    println!("|--:|--:|--:|--:|--:|");
    for (scan, chunk) in [(65_536, 8192), (SCAN_PER_CHUNK, LIST_CHUNK)] {
        let mut out: Vec<Session> = Vec::with_capacity(chunk);
        let mut lengths = vec![];
        let mut start = 0;
        while start < t.capacity() {
            out.clear();
            let t0 = tsc();
            // Engine::dump's loop, without a filter.
            let end = (start + scan).min(t.capacity());
            let mut i = start;
            while i < end && out.len() < out.capacity() {
                if let Some(s) = t.slot(i) {
                    out.push(*s);
                }
                i += 1;
            }
            lengths.push(tsc() - t0);
            std::hint::black_box(&out);
            start = i;
        }
        lengths.sort_unstable();
        let (p50, max) = (lengths[lengths.len() / 2], lengths[lengths.len() - 1]);
        let us = p50 as f64 * 1e6 / hz as f64;
        println!("| {scan} | {chunk} | {} | {p50} / {max} | {us:.1} |", lengths.len());
    }
}

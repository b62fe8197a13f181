//! [`session_lookup`](./session_lookup.rs) with the burst pipeline of the
//! poll loop (`dataplane/src/io.rs`): 32 keys hashed and their bucket lines
//! prefetched, then their likely session lines, then looked up; with
//! gatewayd's allocator, so the table is on hugepages (or transparent ones).
//!
//!   cargo build --release -p gw-benches --example session_lookup_burst
//!   target/release/examples/session_lookup_burst 10000000
use std::hint::black_box;
use std::time::Instant;

use gw_benches::*;
use gw_core::session::SessionTable;
use gw_dpdk::{prefetch, BURST};

#[global_allocator]
static ALLOC: gw_dpdk::huge::HugeAlloc = gw_dpdk::huge::HugeAlloc;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let rounds: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut t = SessionTable::new(n + n / 4, 99, 0);
    let mut keys = Vec::with_capacity(n);
    for i in 0..n as u32 {
        let s = synthetic_session(i);
        t.insert(s, 0, 900_000).expect("table sized for n");
        keys.push(s.in_key());
    }
    println!(
        "large allocations: {} on hugetlb pages, {} on ordinary pages with a THP hint",
        gw_dpdk::huge::hugetlb_allocations(),
        gw_dpdk::huge::fallbacks()
    );
    for order in ["table", "random"] {
        if order == "random" {
            Rng::new(0x1234_5678).shuffle(&mut keys);
        }
        let mut best = f64::MAX;
        for _ in 0..rounds {
            let t1 = Instant::now();
            let mut found = 0usize;
            let mut hashes = [0u64; BURST];
            for burst in keys.chunks(BURST) {
                for (k, h) in burst.iter().zip(hashes.iter_mut()) {
                    *h = t.hash(k);
                    prefetch(t.bucket_line(*h, false));
                }
                for h in &hashes[..burst.len()] {
                    if let Some(s) = t.session_line(*h, false) {
                        prefetch(s);
                    }
                }
                for (k, h) in burst.iter().zip(&hashes) {
                    found += black_box(t.find_in(black_box(k), *h)).is_some() as usize;
                }
            }
            assert_eq!(found, n);
            best = best.min(t1.elapsed().as_secs_f64() * 1e9 / n as f64);
        }
        println!("lookup_in {order:>6} order, bursts of {BURST} with prefetch: {best:.1} ns/lookup");
    }
}

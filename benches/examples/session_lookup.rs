//! Session-table lookups at scale, one at a time, without DPDK: a figure
//! that two processes sharing a memif link cannot blur (the memif rows of
//! `benches/run.sh` depend on the generator's core too).
//!
//! `session_lookup N [ROUNDS]` fills a table with N sessions (in slab
//! order), then looks every session up by its client-side key, ROUNDS times
//! each: in table order and in a shuffled order (the hard case). Prints
//! nanoseconds per lookup (best round) and the table's bytes per session.
//! `session_lookup_burst` adds the burst pipeline's prefetching.
//!
//!   cargo build --release -p gw-benches --example session_lookup
//!   target/release/examples/session_lookup 10000000
use std::hint::black_box;
use std::time::Instant;

use gw_benches::*;
use gw_core::session::SessionTable;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let rounds: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let t0 = Instant::now();
    let mut t = SessionTable::new(n + n / 4, 99, 0);
    let mut keys = Vec::with_capacity(n);
    for i in 0..n as u32 {
        let s = synthetic_session(i);
        t.insert(s, 0, 900_000).expect("table sized for n");
        keys.push(s.in_key());
    }
    let fill = t0.elapsed().as_secs_f64();
    println!(
        "sessions {n}: {:.1} bytes/session allocated ({} MiB), inserted at {:.2} M/s",
        t.memory_bytes() as f64 / n as f64,
        t.memory_bytes() >> 20,
        n as f64 / fill / 1e6
    );
    for order in ["table", "random"] {
        if order == "random" {
            Rng::new(0x1234_5678).shuffle(&mut keys);
        }
        let mut best = f64::MAX;
        for _ in 0..rounds {
            let t1 = Instant::now();
            let mut found = 0usize;
            for k in &keys {
                found += black_box(t.lookup_in(black_box(k))).is_some() as usize;
            }
            assert_eq!(found, n);
            best = best.min(t1.elapsed().as_secs_f64() * 1e9 / n as f64);
        }
        println!("lookup_in {order:>6} order, one at a time: {best:.1} ns/lookup");
    }
}

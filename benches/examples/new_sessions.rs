//! New FULLNAT UDP sessions per second through one engine, without DPDK,
//! as the local-port space fills: the engine has one local address and two
//! real servers, so 129,024 (server, local port) pairs. `new_sessions
//! [LIVE] [NEW] [ROUNDS]` opens LIVE sessions (default 60,000), then times
//! the next NEW (default 60,000: up to 93 % of the pairs taken) and prints
//! the best of ROUNDS rounds (default 3), each on a fresh engine, in ns per
//! new session. With random local-port offsets (RFC 6056) a crowded port
//! space makes a bind meet busy ports: this is the path the reply-port
//! counts shorten. A bind that finds no free port in its 64 candidates is
//! refused (`drop_laddr_exhausted`); the refusals are printed.
//!
//!   cargo build --release -p gw-benches --example new_sessions
//!   target/release/examples/new_sessions 60000 60000 3
use std::time::Instant;

use gw_benches::*;

fn main() {
    let arg = |i: usize, d: u32| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (live, new, rounds) = (arg(1, 60_000), arg(2, 60_000), arg(3, 3));
    let frames: Vec<Vec<u8>> =
        (0..live + new).map(|f| udp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT))).collect();
    let (mut best, mut refused) = (f64::MAX, 0);
    for _ in 0..rounds {
        let mut engine = fullnat_engine(1 << 18, Default::default(), 0);
        let mut buf = Vec::with_capacity(FRAME_LEN);
        let mut open = |engine: &mut gw_core::engine::Engine, f: &Vec<u8>| {
            buf.clear();
            buf.extend_from_slice(f);
            forwarded(engine.process(1, 0, &mut buf)) as u32
        };
        let mut ok = 0;
        for f in &frames[..live as usize] {
            ok += open(&mut engine, f);
        }
        assert_eq!(ok, live, "the live sessions opened");
        let t = Instant::now();
        for f in &frames[live as usize..] {
            ok += open(&mut engine, f);
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(new);
        assert_eq!(engine.sessions().len(), ok as usize);
        refused = live + new - ok;
        best = best.min(ns);
    }
    println!("{live} live, {new} new: {best:.1} ns per new flow (best of {rounds}), {refused} refused in the last round");
}

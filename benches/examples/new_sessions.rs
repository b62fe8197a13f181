//! New FULLNAT sessions per second through one engine, without DPDK, with
//! many sessions live. `new_sessions [LIVE] [NEW] [ROUNDS] [udp|tcp]
//! [LADDRS] [load]` opens LIVE sessions (default 60,000), then times the next NEW
//! (default 60,000) new flows (UDP: a datagram; TCP: a SYN) and prints the
//! median and range of ROUNDS rounds (default 3), each on a fresh engine,
//! in ns per new flow. The engine has two real servers and LADDRS local
//! addresses (default 1: 129,024 (server, local port) pairs; 16 give 2 M,
//! room for 1 M live); its table holds LIVE + NEW sessions.
//!
//! The timed flows go as the poll loop (`dataplane/src/io.rs`, `stage`)
//! sends them: in bursts of 32, each frame parsed once
//! (`L4Info::check`), the burst's keys hashed (`Engine::stage`) and their
//! bucket lines prefetched, then their likely session lines, then
//! `Engine::process_parsed` (which uses the stage's hash). The table is on hugepages when the machine
//! has them (gatewayd's allocator), as in gatewayd. A bind that finds no
//! free port in its 64 candidates is refused (`drop_laddr_exhausted`);
//! the refusals are printed.
//!
//! The engine has gatewayd's prefetch hint (`Engine::set_prefetch`: the
//! next free slot, a real server's next reply lines, the reply bucket of
//! a port a bind moved on to, a crowded bucket's alternative).
//!
//! Instructions and cache misses per new flow, deterministic: callgrind
//! counting `Bursts::run` only, at two NEW, `(X(2N) - X(N)) / N`. Its cache
//! simulation ignores prefetch instructions, so a prefetched line's miss is
//! counted where the line is first used; with `load` every prefetch (the
//! stage's and the engine's hint) is a load instead, and the misses of the
//! lines fetched ahead show under `load_line`, apart from the misses left
//! on the flow's dependent path. (`load` is for counting only: a load
//! waits, a prefetch does not.)
//!
//!   cargo build --release -p gw-benches --example new_sessions
//!   target/release/examples/new_sessions 1000000 200000 5 udp 16
//!   valgrind --tool=callgrind --cache-sim=yes --LL=33554432,16,64 \
//!     --collect-atstart=no --toggle-collect='new_sessions::Bursts::run' \
//!     target/release/examples/new_sessions 1000000 100000 1 udp 37 load
use std::net::Ipv4Addr;
use std::time::Instant;

use gw_benches::*;
use gw_core::engine::{Engine, L4Info};
use gw_core::session::Prefetch;
use gw_dpdk::{prefetch, prefetch_addr, BURST};
use gw_proto::{ForwardMode, Protocol, Request, Scheduler};

#[global_allocator]
static ALLOC: gw_dpdk::huge::HugeAlloc = gw_dpdk::huge::HugeAlloc;

/// A FULLNAT engine for `sessions` with `laddrs` local addresses.
fn engine(sessions: usize, laddrs: u32) -> Engine {
    let default = gw_core::route::Route { net: 0, prefix: 0, via: Some(u32::from_be_bytes(ROUTER)), port: 0 };
    let mut lab = LabConfig {
        sessions,
        lports: (1024, 65535),
        routes: vec![default],
        seed: 0x5eed_1234_abcd_0001,
        timeouts: Default::default(),
        start_ms: 1,
        ..LabConfig::default()
    }
    .build()
    .with_mode(Scheduler::Rr, ForwardMode::FullNat, RPORT);
    for proto in [Protocol::Tcp, Protocol::Udp] {
        for i in 1..laddrs {
            let addr = Ipv4Addr::from(u32::from_be_bytes(LIP) + i);
            lab.ok(Request::AddLaddr { service: dataplane::testing::key(proto), addr: addr.into() });
        }
    }
    lab.into_engine()
}

/// Reads the line at `p` (the `load` mode's stand-in for a prefetch).
#[inline(never)]
fn load_line(p: *const u8) {
    // SAFETY: every caller passes the address of a live element of the
    // session table (the engine's hint takes a reference, the stage a
    // bucket or session of the table it borrows).
    std::hint::black_box(unsafe { p.read_volatile() });
}

/// The stage's prefetch of the line holding `*r` (as the poll loop's), or
/// with `load` a [`load_line`].
#[inline(always)]
fn fetch<T>(load: bool, r: &T) {
    if load {
        load_line(r as *const T as *const u8)
    } else {
        prefetch(r)
    }
}

/// The poll loop's stages for one burst of frames (the copies stand for
/// the mbufs).
struct Bursts {
    bufs: Vec<Vec<u8>>,
    /// The stage fetches a line ahead with [`load_line`], not a prefetch.
    load: bool,
}

impl Bursts {
    fn new(load: bool) -> Bursts {
        Bursts { bufs: (0..BURST).map(|_| Vec::with_capacity(FRAME_LEN)).collect(), load }
    }

    /// Sends `burst` through `engine` at `now`; returns how many frames it
    /// forwarded.
    fn run(&mut self, engine: &mut Engine, now: u64, burst: &[Vec<u8>]) -> u32 {
        let mut parsed = [None; BURST];
        let sessions = engine.sessions();
        for ((f, b), p) in burst.iter().zip(&mut self.bufs).zip(&mut parsed) {
            b.clear();
            b.extend_from_slice(f);
            *p = L4Info::check(b).map(|l4| engine.stage(l4));
            if let Some(p) = p {
                fetch(self.load, sessions.bucket_line(p.lookup.hash(), false));
            }
        }
        for p in parsed.iter().take(burst.len()).flatten() {
            if let Some(s) = sessions.session_line(p.lookup.hash(), false) {
                fetch(self.load, s);
            }
        }
        let mut ok = 0;
        for (b, p) in self.bufs.iter_mut().zip(&parsed).take(burst.len()) {
            ok += forwarded(engine.process_parsed(now, 0, b, p.as_ref())) as u32;
        }
        ok
    }
}

fn main() {
    let arg = |i: usize, d: u32| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (live, new, rounds) = (arg(1, 60_000), arg(2, 60_000), arg(3, 3));
    let tcp = std::env::args().nth(4).is_some_and(|a| a == "tcp");
    let laddrs = arg(5, 1);
    let load = std::env::args().nth(6).is_some_and(|a| a == "load");
    let hint = if load { Prefetch(load_line) } else { Prefetch(prefetch_addr) };
    let frame = |f: u32| {
        if tcp {
            tcp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT), Tcp::Syn)
        } else {
            udp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT))
        }
    };
    let frames: Vec<Vec<u8>> = (0..live + new).map(frame).collect();
    let (mut runs, mut refused) = (Vec::new(), 0);
    for _ in 0..rounds {
        let mut engine = engine((live + new) as usize, laddrs);
        engine.set_prefetch(hint);
        let mut bursts = Bursts::new(load);
        let mut ok = 0;
        for burst in frames[..live as usize].chunks(BURST) {
            ok += bursts.run(&mut engine, 1, burst);
        }
        assert_eq!(ok, live, "the live sessions opened");
        let t = Instant::now();
        for burst in frames[live as usize..].chunks(BURST) {
            ok += bursts.run(&mut engine, 2, burst);
        }
        runs.push(t.elapsed().as_nanos() as f64 / f64::from(new));
        assert_eq!(engine.sessions().len(), ok as usize);
        refused = live + new - ok;
    }
    runs.sort_by(f64::total_cmp);
    let (lo, med, hi) = (runs[0], runs[runs.len() / 2], runs[runs.len() - 1]);
    let what = if tcp { "TCP SYN" } else { "UDP" };
    println!(
        "{live} live, {new} new {what} flows, {laddrs} local addresses: {med:.1} ns per new flow \
         (median of {rounds}, range {lo:.1}-{hi:.1}), {refused} refused in the last round"
    );
}

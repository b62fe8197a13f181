//! Criterion micro-benchmarks of the packet core, without DPDK.
//!
//! Every benchmark reports time per packet (or per session operation):
//! throughput is one element per iteration. Frames are built and checked with
//! `etherparse` before anything is timed; the timed loops only restore a
//! frame from a pre-built template with one 64-byte `copy_from_slice` (the
//! `engine/frame_copy_baseline` rows measure that copy alone, so it can be
//! subtracted) and never allocate.
//!
//! Iterations are independent, so an out-of-order core overlaps consecutive
//! ones: the numbers are throughput per packet on one core, not the latency
//! of a single packet, which is also how a worker runs a burst.
//!
//! Run with `CARGO_TARGET_DIR=/work/target-bench cargo bench -p gw-benches`;
//! times are kept short (1 s warm-up, 2 s measurement, 20 samples) so the
//! whole run stays around a minute on a small, shared machine.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gw_benches::{
    arp_request, client, establish, forwarded, fullnat_engine, inspect, synthetic_session, tcp_frame,
    udp_frame, RecycleIo, Rng, Tcp, FRAME_LEN, GW_IN, GW_OUT, L3, LIP, MIN_FRAME_LEN, ROUTER, ROUTER_MAC, RS,
    RS_MAC, VIP, VPORT,
};
use gw_core::counters::Drop;
use gw_core::engine::Engine;
use gw_core::modes::nat;
use gw_core::neigh::NeighConfig;
use gw_core::session::{Session, SessionTable};
use gw_core::tcp_state::{State, Timeouts};
use gw_core::wire::checksum::Delta;
use gw_core::wire::ipv4::Protocol;
use gw_core::worker::Worker;
use gw_proto::ForwardMode;

/// Session capacity of the engines under test, as a production worker.
const ENGINE_SESSIONS: usize = 1 << 20;
/// Flow counts of the established-path benchmarks: one hot session, and
/// enough sessions that their lines and buckets do not all stay in L1/L2.
const FLOWS: [u32; 2] = [1, 1 << 16];
/// Start of the driven clock, in milliseconds.
const T0: u64 = 1_000;

fn ip(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

/// Panics if the engine dropped anything: a benchmark that silently measured
/// a drop path would be worse than none.
fn assert_no_drops(engine: &Engine, what: &str) {
    for d in Drop::ALL {
        assert_eq!(engine.counters().drop_count(d), 0, "{what}: {d:?} drops");
    }
}

// ---------------------------------------------------------------- sessions

fn session(c: &mut Criterion) {
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    let mut rng = Rng::new(0x1234_5678);

    for n in [1_000usize, 1_000_000] {
        let mut t = SessionTable::new(n, 99, 0);
        let mut keys = Vec::with_capacity(n);
        for i in 0..n as u32 {
            let s = synthetic_session(i);
            t.insert(s, 0, 900_000).expect("table sized for n");
            keys.push(s.in_key());
        }
        rng.shuffle(&mut keys);
        assert!(keys.iter().all(|k| t.lookup_in(k).is_some()));
        g.bench_with_input(BenchmarkId::new("lookup_hit", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                let k = &keys[i];
                i += 1;
                if i == keys.len() {
                    i = 0;
                }
                black_box(t.lookup_in(black_box(k)))
            })
        });
    }

    // Steady state at half of 1M: each iteration removes the oldest session
    // and inserts a new one, so the live set is a sliding window of the pool
    // and an inserted key is never live already. All deadlines share one
    // wheel slot (the clock does not move).
    const CAP: usize = 1 << 20;
    const LIVE: usize = CAP / 2;
    let pool: Vec<Session> = (0..CAP as u32).map(synthetic_session).collect();
    let mut t = SessionTable::new(CAP, 99, 0);
    let mut idx_of = vec![0u32; CAP];
    for j in 0..LIVE {
        idx_of[j] = t.insert(pool[j], 0, 60_000).expect("half full");
    }
    g.bench_function("insert_remove", |b| {
        let mut old = 0usize;
        b.iter(|| {
            let new = (old + LIVE) & (CAP - 1);
            t.remove(idx_of[old]);
            idx_of[new] = t.insert(black_box(pool[new]), 0, 60_000).expect("never full");
            old = (old + 1) & (CAP - 1);
        })
    });
    assert_eq!(t.len(), LIVE);
    g.finish();
}

// --------------------------------------------------------------------- NAT

/// New (source, destination) of a rewrite, host-order addresses, and the
/// change it makes to the IPv4 and TCP/UDP checksums.
type Rewrite = ((u32, u16), (u32, u16), (Delta, Delta));

/// The two rewrites the loop alternates, as the established path makes
/// them ([`nat::rewrite_with`] with the change a FULLNAT session stores,
/// `Session::rewrite_change`): a client packet `cl -> VIP` becomes `LIP ->
/// RS` (the client side's change), then that one becomes `VIP -> cl` (the
/// reply side's: the sums of the addresses and of the ports do not depend
/// on their order).
fn rewrites(proto: Protocol, cl: (u32, u16)) -> [Rewrite; 2] {
    let (local, rs, vip) = ((ip(LIP), 5000), (ip(RS[0]), 8080), (ip(VIP), VPORT));
    let s = Session::new(proto, cl, vip, rs, local, State::Established, ForwardMode::FullNat, 0, 0);
    [(local, rs, s.rewrite_change(false)), (vip, cl, s.rewrite_change(true))]
}

/// One step of the rewrite loop: alternates client->VIP => LIP->RS and back,
/// restoring the frame from `tpl` once the TTL (decremented by every
/// rewrite) would reach zero, i.e. once per 63 rewrites.
#[inline(always)]
fn nat_step(buf: &mut [u8], tpl: &[u8], proto: Protocol, rewrites: &[Rewrite; 2], flip: &mut usize) {
    if buf[L3 + 8] <= 1 {
        buf.copy_from_slice(tpl);
        *flip = 0;
    }
    let (src, dst, change) = rewrites[*flip];
    *flip ^= 1;
    nat::rewrite_with(&mut buf[L3..], proto, src, dst, change);
}

fn nat(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat");
    g.throughput(Throughput::Elements(1));
    let cl = client(0);
    let frames = [
        ("rewrite_tcp", Protocol::Tcp, tcp_frame(ROUTER_MAC, GW_OUT, cl, (VIP, VPORT), Tcp::AckData)),
        ("rewrite_udp", Protocol::Udp, udp_frame(ROUTER_MAC, GW_OUT, cl, (VIP, VPORT))),
    ];
    for (name, proto, tpl) in frames {
        assert_eq!(tpl.len(), FRAME_LEN);
        let rewrites = rewrites(proto, (ip(cl.0), cl.1));
        // The loop keeps the packet valid through the TTL wrap-around:
        // etherparse checks both checksums after every step.
        let mut buf = tpl.clone();
        let mut flip = 0;
        for _ in 0..200 {
            nat_step(&mut buf, &tpl, proto, &rewrites, &mut flip);
            inspect(&buf);
        }
        g.bench_function(name, |b| {
            let mut buf = tpl.clone();
            let mut flip = 0;
            b.iter(|| nat_step(black_box(&mut buf), &tpl, proto, &rewrites, &mut flip))
        });
    }
    g.finish();
}

// ------------------------------------------------------------------ engine

/// An engine with `flows` established TCP sessions, and for each flow a
/// client->VIP and a RS->LIP ACK+data frame, concatenated (64 bytes each).
struct Established {
    engine: Engine,
    to_rs: Vec<u8>,
    to_client: Vec<u8>,
}

fn established(flows: u32) -> Established {
    let mut engine = fullnat_engine(ENGINE_SESSIONS, Timeouts::default(), T0);
    let mut to_rs = Vec::with_capacity(flows as usize * FRAME_LEN);
    let mut to_client = Vec::with_capacity(flows as usize * FRAME_LEN);
    for f in 0..flows {
        let (rs, local) = establish(&mut engine, T0, f);
        let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs.0).unwrap()];
        to_rs.extend(tcp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT), Tcp::AckData));
        to_client.extend(tcp_frame(rs_mac, GW_IN, rs, local, Tcp::AckData));
    }
    // Each template forwards, rewritten to the right addresses with valid
    // checksums (checked by etherparse), before anything is timed.
    for f in 0..flows as usize {
        let mut a = to_rs[f * FRAME_LEN..][..FRAME_LEN].to_vec();
        assert!(forwarded(engine.process(T0, 0, &mut a)));
        let (_, _, src, _, ttl) = inspect(&a);
        assert_eq!((src.0, ttl), (LIP, 63));
        let mut b = to_client[f * FRAME_LEN..][..FRAME_LEN].to_vec();
        assert!(forwarded(engine.process(T0, 1, &mut b)));
        assert_eq!(inspect(&b).3, client(f as u32));
    }
    Established { engine, to_rs, to_client }
}

/// Times `engine.process` on the frames of `frames` in turn, each restored
/// from its template first.
fn run_process(b: &mut criterion::Bencher, engine: &mut Engine, frames: &[u8], port: u16) {
    let n = frames.len() / FRAME_LEN;
    let mut buf = [0u8; FRAME_LEN];
    let mut i = 0;
    b.iter(|| {
        buf.copy_from_slice(&frames[i * FRAME_LEN..][..FRAME_LEN]);
        i = (i + 1) & (n - 1);
        black_box(engine.process(T0, port, black_box(&mut buf)))
    })
}

/// SYNs of `k` distinct client flows (60 bytes each), and an engine driven
/// through them with a moving clock: one simulated millisecond per SYN and
/// an expiry pass every 32 SYNs (one poll loop's burst), so each new flow's
/// cost includes its share of expiring old ones. With the default 60 s
/// SYN_RECV timeout about 60k sessions stay live; a flow's SYN comes back
/// only after `k` ms, when its old session is long gone.
struct NewFlows {
    engine: Engine,
    syns: Vec<u8>,
    now: u64,
    i: usize,
    buf: [u8; MIN_FRAME_LEN],
}

impl NewFlows {
    const K: usize = 1 << 17;

    fn new() -> NewFlows {
        let syns = (0..Self::K as u32)
            .flat_map(|f| tcp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT), Tcp::Syn))
            .collect::<Vec<u8>>();
        assert_eq!(syns.len(), Self::K * MIN_FRAME_LEN);
        let engine = fullnat_engine(ENGINE_SESSIONS, Timeouts::default(), T0);
        NewFlows { engine, syns, now: T0, i: 0, buf: [0; MIN_FRAME_LEN] }
    }

    #[inline(always)]
    fn step(&mut self) -> gw_core::engine::Action {
        self.buf.copy_from_slice(&self.syns[self.i * MIN_FRAME_LEN..][..MIN_FRAME_LEN]);
        self.i = (self.i + 1) & (Self::K - 1);
        self.now += 1;
        if self.now & 31 == 0 {
            self.engine.expire(self.now);
        }
        self.engine.process(self.now, 0, black_box(&mut self.buf))
    }
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    for flows in FLOWS {
        let Established { mut engine, to_rs, to_client } = established(flows);
        g.bench_with_input(BenchmarkId::new("frame_copy_baseline", flows), &flows, |b, _| {
            let n = to_rs.len() / FRAME_LEN;
            let mut buf = [0u8; FRAME_LEN];
            let mut i = 0;
            b.iter(|| {
                buf.copy_from_slice(&to_rs[i * FRAME_LEN..][..FRAME_LEN]);
                i = (i + 1) & (n - 1);
                black_box(&mut buf);
            })
        });
        g.bench_with_input(BenchmarkId::new("fullnat_established", flows), &flows, |b, _| {
            run_process(b, &mut engine, &to_rs, 0)
        });
        g.bench_with_input(BenchmarkId::new("fullnat_reply", flows), &flows, |b, _| {
            run_process(b, &mut engine, &to_client, 1)
        });
        assert_no_drops(&engine, "established");
        assert_eq!(engine.sessions().len(), flows as usize);
    }

    let mut nf = NewFlows::new();
    // Reach steady state (two laps of the flow set) before timing, and check
    // that every SYN made a new session.
    for _ in 0..2 * NewFlows::K {
        assert!(forwarded(nf.step()));
    }
    let live_before = nf.engine.sessions().len();
    g.bench_function("new_flow", |b| b.iter(|| black_box(nf.step())));
    assert_no_drops(&nf.engine, "new_flow");
    let created = nf.engine.counters().event_count(gw_core::counters::Event::SessionsCreated);
    assert_eq!(created, nf.now - T0, "every SYN created a session");
    println!(
        "engine/new_flow: {} SYNs, live sessions {} before timing, {} after",
        created,
        live_before,
        nf.engine.sessions().len()
    );
    g.finish();
}

// ------------------------------------------------------------------ worker

/// `Worker::handle` on the established path: the engine step plus neighbour
/// lookup, MAC rewrite and the hand-off to the I/O layer. One `Vec` circulates
/// between the benchmark and [`RecycleIo`]; nothing is allocated per packet.
fn worker(c: &mut Criterion) {
    let mut g = c.benchmark_group("worker");
    g.throughput(Throughput::Elements(1));
    for flows in FLOWS {
        let Established { engine, to_rs, to_client } = established(flows);
        let mut w: Worker<Vec<u8>> = Worker::new(engine, NeighConfig::default());
        let mut io = RecycleIo::default();
        // The router and both real servers announce themselves.
        w.handle(T0, 0, arp_request(ROUTER_MAC, ROUTER, VIP), &mut io);
        for (mac, rs) in RS_MAC.iter().zip(RS) {
            w.handle(T0, 1, arp_request(*mac, rs, LIP), &mut io);
        }
        for (name, frames, port, out_port) in
            [("fullnat_established", &to_rs, 0u16, 1u16), ("fullnat_reply", &to_client, 1, 0)]
        {
            io.slot = None;
            w.handle(T0, port, frames[..FRAME_LEN].to_vec(), &mut io);
            let out = io.slot.take().expect("forwarded at once: neighbour known");
            assert_eq!(io.port, out_port);
            inspect(&out);
            io.slot = Some(out);
            let n = frames.len() / FRAME_LEN;
            g.bench_with_input(BenchmarkId::new(name, flows), &flows, |b, _| {
                let mut i = 0;
                b.iter(|| {
                    let mut pkt = io.slot.take().expect("the last packet was forwarded");
                    pkt.copy_from_slice(&frames[i * FRAME_LEN..][..FRAME_LEN]);
                    i = (i + 1) & (n - 1);
                    w.handle(T0, port, pkt, &mut io);
                })
            });
        }
        assert_no_drops(&w.engine, "worker");
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = packet_core;
    config = config();
    targets = session, nat, engine, worker
}
criterion_main!(packet_core);

//! The DPDK poll loop of one worker: rx burst -> [`Worker::handle`] -> tx burst.
//!
//! Per loop: pick up a new configuration snapshot if the generation moved,
//! receive a burst on each port, run each packet through the worker and
//! flush the TX buffers right after each burst (as testpmd does: a packet
//! leaves before the next port's burst is processed; what the NIC did not
//! take is freed and counted), run the timers, and apply the idle policy
//! when nothing arrived. Nothing here allocates or locks per packet;
//! sleeping happens only when idle. A worker whose rx bursts come back full
//! sheds SYNs beyond its budget before the stages
//! ([`gw_core::synproxy::shed`]).
//!
//! A loop's length is the longest a packet can wait in an rx ring before
//! the worker looks: every loop is counted in a histogram of TSC cycles
//! ([`WorkerCounters::count_loop`], `gwctl --counters`' `loops_*`), and
//! the work between bursts is bounded to keep it short: session expiry
//! examines [`expire_budget`] sessions per loop, with prefetch (the
//! engine's hint, `Engine::set_prefetch`, set by gatewayd).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::IdlePolicy;
use crate::engine_config::expire_budget;
use crate::kernel::{KernelRings, FROM_KERNEL_BURST};
use gw_core::counters::{Drop, Event, WorkerCounters};
use gw_core::mailbox::WorkerMailbox;
use gw_core::service::Publisher;
use gw_core::steer::{self, Owner, Parsed, Redirect};
use gw_core::synproxy::shed::Shed;
use gw_core::worker::{Io, Learned, Worker};
use gw_dpdk::{tsc, tsc_hz, Mbuf, Mempool, Port, RxBurst, TxBuffer, BURST};

/// TX side of one worker: one buffer per port, on this worker's queue.
struct DpdkIo<'a> {
    pool: &'a Mempool,
    ports: &'a [Port],
    tx: &'a mut [TxBuffer],
    queue: u16,
    counters: &'a WorkerCounters,
    redirect: &'a Redirect<Mbuf>,
    /// This worker's index, and the rings toward the kernel interfaces
    /// (the exception path), if any port has one.
    me: u32,
    kernel: Option<&'a KernelRings>,
}

impl DpdkIo<'_> {
    /// The index in `ports` (and `tx`) of DPDK port `port`: the port's id
    /// itself when the ports are listed in id order (they usually are:
    /// ids 0, 1, ...), one compare; else a search.
    #[inline]
    fn slot(&self, port: u16) -> Option<usize> {
        let i = usize::from(port);
        if self.ports.get(i).is_some_and(|p| p.id() == port) {
            return Some(i);
        }
        self.ports.iter().position(|p| p.id() == port)
    }
    fn flush(&mut self, i: usize) {
        let (sent, dropped) = self.tx[i].flush(self.ports[i], self.queue);
        self.counters.event(Event::TxPackets, sent as u64);
        self.counters.count_drops(Drop::TxFull, dropped as u64);
    }
    fn flush_all(&mut self) {
        for i in 0..self.tx.len() {
            if !self.tx[i].is_empty() {
                self.flush(i);
            }
        }
    }
}

impl Io<Mbuf> for DpdkIo<'_> {
    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }
    #[inline]
    fn send(&mut self, port: u16, pkt: Mbuf) {
        let Some(i) = self.slot(port) else {
            self.counters.count_drop(Drop::NoRoute);
            return;
        };
        if self.tx[i].is_full() {
            self.flush(i);
        }
        if let Err(pkt) = self.tx[i].push(pkt) {
            drop(pkt);
            self.counters.count_drop(Drop::TxFull);
        }
    }
    fn hand_off(&mut self, to: u32, port: u16, pkt: Mbuf) -> Result<(), Mbuf> {
        self.redirect.send(to, port, pkt)
    }
    fn punt(&mut self, port: u16, pkt: Mbuf) -> Result<(), Mbuf> {
        match self.kernel {
            Some(k) => k.to_kernel.send(self.me, port, pkt),
            None => Err(pkt),
        }
    }
}

/// How a worker waits when there is no traffic.
#[derive(Clone, Copy, Debug)]
pub struct Idle {
    pub policy: IdlePolicy,
    /// Empty polls in a row before sleeping.
    pub polls: u32,
    pub sleep: Duration,
}

/// The first stages of the burst pipeline: parses each frame of `burst`
/// once ([`steer::classify`]: its owner and, for a TCP/UDP packet this
/// worker processes, the engine's record of it), hashes the record's flow
/// key and prefetches the bucket line its session lookup reads first (the
/// client-side index, or the reply index for a packet to a local address);
/// then, with those lines on their way, prefetches each likely session
/// line. `staged` receives the frames with their records, in order, for the
/// last stage (processing, [`Worker::handle_parsed`], which starts at the
/// session step). As `rte_hash_lookup_bulk` does, this turns a burst's
/// dependent cache misses into misses in flight together.
fn stage(
    engine: &gw_core::engine::Engine,
    workers: u32,
    me: u32,
    burst: impl Iterator<Item = Mbuf>,
    staged: &mut Vec<(Mbuf, Parsed)>,
) {
    let sessions = engine.sessions();
    let snap = engine.snapshot();
    let mut hashes = [(0u64, false, false); BURST];
    for (i, m) in burst.enumerate() {
        let p = steer::classify(snap, workers, me, m.as_ref());
        if let (Some(k), Some(h)) = (p.key(), hashes.get_mut(i)) {
            let out = snap.is_laddr(k.dst);
            *h = (sessions.hash(&k), out, true);
            gw_dpdk::prefetch(sessions.bucket_line(h.0, out));
        }
        staged.push((m, p));
    }
    for &(h, out, _) in hashes.iter().take(staged.len()).filter(|h| h.2) {
        if let Some(s) = sessions.session_line(h, out) {
            gw_dpdk::prefetch(s);
        }
    }
}

/// Everything one worker lcore runs with.
pub struct WorkerLoop {
    pub worker: Worker<Mbuf>,
    pub ports: Vec<Port>,
    pub queue: u16,
    pub pool: Arc<Mempool>,
    pub publisher: Arc<Publisher>,
    pub stop: Arc<AtomicBool>,
    pub idle: Idle,
    /// Control-plane questions (connection listing), answered between bursts.
    pub mailbox: WorkerMailbox,
    /// This worker's index and the hand-off to the others (see [`gw_core::steer`]).
    pub me: u32,
    pub redirect: Redirect<Mbuf>,
    /// Neighbours learnt by any worker, one inbox per worker.
    pub neighbours: Redirect<Learned>,
    /// The rings to and from the kernel interfaces ([`crate::kernel`]),
    /// if any port has one.
    pub kernel: Option<KernelRings>,
    /// SYN shedding while a port's rx queue holds a backlog (its bursts
    /// come back full), one per port in `ports`' order: SYNs beyond the
    /// quota are dropped before the stages.
    pub shed: Vec<Shed>,
}

impl WorkerLoop {
    /// Runs until `stop` is set. Returns 0 (the lcore's exit status).
    pub fn run(mut self) -> i32 {
        let hz = tsc_hz().max(1000);
        let per_ms = hz / 1000;
        let counters = self.worker.engine.counters().clone();
        let mut rx = RxBurst::new();
        let mut tx: Vec<TxBuffer> = self.ports.iter().map(|_| TxBuffer::new()).collect();
        let mut empty_polls = 0u32;
        // A burst between its stages (allocated once, here).
        let mut staged: Vec<(Mbuf, Parsed)> = Vec::with_capacity(BURST);
        let mut from_port: Vec<u16> = Vec::with_capacity(BURST);
        let mut generation = self.worker.engine.snapshot().generation;
        counters.generation.set(generation);
        // The start of the previous loop, and whether it slept.
        let mut last = tsc();
        let mut slept = false;
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(snap) = self.publisher.newer_than(generation) {
                generation = snap.generation;
                drop(self.worker.engine.set_snapshot(snap));
                counters.generation.set(generation);
            }
            let start = tsc();
            if !slept {
                counters.count_loop(start.saturating_sub(last));
            }
            (last, slept) = (start, false);
            let now = start / per_ms;
            let mut io = DpdkIo {
                pool: &self.pool,
                ports: &self.ports,
                tx: &mut tx,
                queue: self.queue,
                counters: &counters,
                redirect: &self.redirect,
                me: self.me,
                kernel: self.kernel.as_ref(),
            };
            let workers = self.redirect.workers() as u32;
            let mut received = 0;
            for (port, shed) in self.ports.iter().zip(self.shed.iter_mut()) {
                let n = port.rx_burst(self.queue, &mut rx);
                if n == 0 {
                    continue;
                }
                received += n;
                if shed.rx_burst(now, n == BURST) {
                    let mut dropped = 0;
                    let admitted = shed.admitted(rx.drain(), &mut dropped);
                    stage(&self.worker.engine, workers, self.me, admitted, &mut staged);
                    if dropped > 0 {
                        counters.count_drops(Drop::SynShed, dropped);
                    }
                } else {
                    stage(&self.worker.engine, workers, self.me, rx.drain(), &mut staged);
                }
                for (m, p) in staged.drain(..) {
                    match p.owner {
                        Owner::Worker(w) if w != self.me => match self.redirect.send(w, port.id(), m) {
                            Ok(()) => counters.event(Event::RedirectOut, 1),
                            Err(m) => {
                                drop(m);
                                counters.count_drop(Drop::RedirectFull);
                            }
                        },
                        _ => self.worker.handle_parsed(now, port.id(), m, p.l4.as_ref(), &mut io),
                    }
                }
                // Out before the next port's burst is processed.
                io.flush_all();
            }
            // Packets other workers received for this one (counted as
            // redirect_in, not again as rx_packets).
            let mut handed = 0;
            for _ in 0..2 {
                let inbox = std::iter::from_fn(|| self.redirect.recv(self.me)).take(BURST);
                let from = &mut from_port;
                let inbox = inbox.map(|(port, m)| {
                    from.push(port);
                    m
                });
                stage(&self.worker.engine, 1, self.me, inbox, &mut staged);
                handed += staged.len();
                for ((m, p), port) in staged.drain(..).zip(from_port.drain(..)) {
                    self.worker.handle_parsed(now, port, m, p.l4.as_ref(), &mut io);
                }
            }
            counters.event(Event::RedirectIn, handed as u64);
            let mut from_kernel = 0;
            if let Some(k) = &self.kernel {
                // What the kernel sent: out of the port as it is (the
                // kernel resolved the MACs through the same port).
                while from_kernel < FROM_KERNEL_BURST {
                    let Some((port, m)) = k.from_kernel.recv(self.me) else { break };
                    io.send(port, m);
                    from_kernel += 1;
                }
                if from_kernel > 0 {
                    counters.event(Event::FromKernel, from_kernel as u64);
                }
            }
            while let Some((_, learned)) = self.neighbours.recv(self.me) {
                self.worker.learn(now, learned, &mut io);
            }
            for learned in self.worker.take_learned() {
                for w in (0..workers).filter(|w| *w != self.me) {
                    // A full inbox only delays that worker's own ARP.
                    let _ = self.neighbours.send(w, learned.0, learned);
                }
            }
            io.flush_all();
            let packets = received + handed;
            self.worker.tick_with(now, expire_budget(packets), &mut io);
            io.flush_all();
            let engine = &self.worker.engine;
            self.mailbox.serve(|q| engine.dump(now, q));
            if received > 0 || handed > 0 || from_kernel > 0 {
                counters.event(Event::RxPackets, received as u64);
                counters.event(Event::BusyCycles, tsc().wrapping_sub(start));
                empty_polls = 0;
                continue;
            }
            counters.event(Event::IdlePolls, 1);
            match self.idle.policy {
                IdlePolicy::Busy => std::hint::spin_loop(),
                IdlePolicy::Sleep => {
                    empty_polls += 1;
                    if empty_polls >= self.idle.polls {
                        std::thread::sleep(self.idle.sleep);
                        slept = true;
                    }
                }
            }
        }
        0
    }
}

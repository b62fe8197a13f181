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
//! ([`gw_core::synproxy::shed`]). The worker holds its queue of each port
//! from poll to poll ([`QueuePair`]): a burst costs one relaxed load of
//! the port's "control path wants it" count, not a locked swap; the pairs
//! are given back while the control path changes a port, and when the
//! loop ends.
//!
//! What a poll does besides the NIC's rx and tx calls is generic over the
//! buffer ([`receive`], [`after_bursts`], [`PollClock`]), so that a
//! benchmark counts its instructions without DPDK and the tests
//! (`dataplane/tests/poll_steps.rs`) run it on `Vec<u8>`s. Its fixed
//! cost per poll is kept to a test per queue (issue 14: at half load the
//! bursts are small, and testpmd's loop is rx, swap, tx): an empty inbox
//! is a load and a compare, not a `pop` (whose empty case is a full
//! fence), the mailbox one counter, expiry its own "nothing due" test,
//! one TX flush after the housekeeping, one TSC read per poll, the
//! millisecond clock without a division, and the stages' scratch
//! ([`Staging`]) kept from poll to poll. A packet's flow key is hashed and
//! its destination tested against the local addresses once, in [`stage`],
//! for the prefetch and the engine's lookup alike. A burst of one frame
//! (most bursts at low load) skips the stages ([`receive`]'s one-frame
//! path): with no other packet to overlap its misses with, staging it only
//! costs instructions.
//! `benches/examples/ir_per_poll.rs` counts them (docs/benchmarks.md, "The
//! poll loop's fixed costs", "The established path's work done once").
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
use gw_core::engine::StagedSlot;
use gw_core::mailbox::WorkerMailbox;
use gw_core::service::Publisher;
use gw_core::steer::{Owner, Redirect};
use gw_core::synproxy::shed::Shed;
use gw_core::worker::{Io, Learned, PacketBuf, Worker};
use gw_dpdk::{tsc, tsc_hz, Mbuf, Mempool, Port, QueuePair, RxBurst, TxBuffer, BURST};

/// TX side of one worker: one buffer per port, sent on this worker's
/// queue of that port (held across polls, as the rx queue: one
/// [`QueuePair`] per port, in the ports' order).
struct DpdkIo<'a> {
    pool: &'a Mempool,
    queues: &'a mut [QueuePair],
    tx: &'a mut [TxBuffer],
    counters: &'a WorkerCounters,
    redirect: &'a Redirect<Mbuf>,
    /// This worker's index, and the rings toward the kernel interfaces
    /// (the exception path), if any port has one.
    me: u32,
    kernel: Option<&'a KernelRings>,
}

impl DpdkIo<'_> {
    /// The index in `queues` (and `tx`) of DPDK port `port`: the port's id
    /// itself when the ports are listed in id order (they usually are:
    /// ids 0, 1, ...), one compare; else a search.
    #[inline]
    fn slot(&self, port: u16) -> Option<usize> {
        let i = usize::from(port);
        if self.queues.get(i).is_some_and(|q| q.port().id() == port) {
            return Some(i);
        }
        self.queues.iter().position(|q| q.port().id() == port)
    }
    fn flush(&mut self, i: usize) {
        let (sent, dropped) = self.queues[i].flush(&mut self.tx[i]);
        self.counters.event(Event::TxPackets, sent as u64);
        if dropped > 0 {
            self.counters.count_drops(Drop::TxFull, dropped as u64);
        }
    }
}

impl Flush<Mbuf> for DpdkIo<'_> {
    #[inline]
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

impl Idle {
    /// Counts one more empty poll in a row in `empty` and tells whether to
    /// sleep after it: from the `polls`-th on. The count saturates: a
    /// worker idle for days (2^32 empty polls) keeps sleeping, it does not
    /// overflow (a panic in a debug build, a burst of busy polls in a
    /// release one). Once per empty poll, never per packet.
    #[inline]
    pub fn after_empty_poll(&self, empty: &mut u32) -> bool {
        *empty = empty.saturating_add(1);
        *empty >= self.polls
    }
}

/// The first stages of the burst pipeline: parses each frame of `burst`
/// once ([`StagedSlot::stage`]: its owner and, for a TCP/UDP packet
/// this worker processes, the engine's record of it with its session
/// lookup's inputs, the flow key's hash and whether it goes to a local
/// address) and prefetches the bucket line its lookup reads first (the client-side index, or the reply index for a
/// packet to a local address); then, with those lines on their way,
/// prefetches each likely session line, its index kept in the record as a
/// hint for the lookup ([`Engine::hint`]). The frames, their owners and
/// staged records fill `slots` in order, from the first, up to the end of
/// the burst or of the slots; returns how many. Each record is written
/// once, in its slot, where the last stage reads it
/// ([`Worker::handle_staged`], which starts at the session step and looks
/// the session up with the same hash: computed once per packet, as the
/// snapshot does not change under a burst); a record returned and moved
/// from stage to stage cost about 40 instructions a packet in copies. As
/// `rte_hash_lookup_bulk` does, this turns a burst's dependent cache
/// misses into misses in flight together.
///
/// [`Engine::hint`]: gw_core::engine::Engine::hint
fn stage<B: AsRef<[u8]>>(
    engine: &gw_core::engine::Engine,
    workers: u32,
    me: u32,
    burst: &mut impl Iterator<Item = B>,
    slots: &mut [Slot<B>],
) -> usize {
    let sessions = engine.sessions();
    let mut n = 0;
    for slot in slots.iter_mut() {
        let Some(m) = burst.next() else { break };
        slot.owner = slot.s.stage(engine, workers, me, m.as_ref());
        if let Some(s) = slot.s.get() {
            gw_dpdk::prefetch(sessions.bucket_line(s.lookup.hash(), s.lookup.to_laddr()));
        }
        slot.m = Some(m);
        n += 1;
    }
    for slot in &mut slots[..n] {
        if let Some(line) = slot.s.get_mut().and_then(|s| engine.hint(s)) {
            gw_dpdk::prefetch(line);
        }
    }
    n
}

/// What the poll steps need of the TX side besides [`Io`].
pub trait Flush<B>: Io<B> {
    /// Hands what is queued for every port to its TX queue (counted).
    fn flush_all(&mut self);
}

/// A worker's queues besides its ports, as one poll reads them.
pub struct Queues<'a, B> {
    /// This worker's index, and how many workers there are.
    pub me: u32,
    pub workers: u32,
    pub counters: &'a WorkerCounters,
    /// Every worker's inbox of packets another worker received for it.
    pub redirect: &'a Redirect<B>,
    /// Every worker's inbox of neighbours learnt by another one.
    pub neighbours: &'a Redirect<Learned>,
    /// The frames the kernel interfaces sent, one ring per worker
    /// ([`KernelRings::from_kernel`]), if any port has one.
    pub from_kernel: Option<&'a Redirect<B>>,
    /// Control-plane questions (connection listing).
    pub mailbox: &'a WorkerMailbox,
}

/// A burst between its stages: allocated once per worker, so that a poll
/// does not allocate.
pub struct Staging<B> {
    /// A burst's frames with their owners and staged records ([`stage`]'s
    /// output), in slots allocated once and written over burst by burst.
    slots: Box<[Slot<B>]>,
    /// The port each frame handed over by another worker came in on.
    ports: Vec<u16>,
    /// SYN shedding while the inbox of packets other workers handed over
    /// holds a backlog ([`gw_core::synproxy::shed`]'s "The inbox").
    inbox_shed: Shed,
}

/// One frame of a burst between the stages: the frame (taken out by the
/// last stage), its owner, and whether `s` holds its staged record (else
/// `s` is a previous frame's, or blank).
struct Slot<B> {
    m: Option<B>,
    owner: Owner,
    s: StagedSlot,
}

impl<B> Staging<B> {
    /// Room for a burst (the only allocation, at the worker's start); the
    /// inbox's SYN shedding at the default rate.
    pub fn new() -> Staging<B> {
        Staging::with_inbox_shed(Shed::default())
    }

    /// [`Staging::new`] with the inbox's SYN shedding `shed` (the rate of
    /// `workers.overload_syn_rate`).
    pub fn with_inbox_shed(shed: Shed) -> Staging<B> {
        let slots = (0..BURST).map(|_| Slot { m: None, owner: Owner::Here, s: StagedSlot::default() });
        Staging { slots: slots.collect(), ports: Vec::with_capacity(BURST), inbox_shed: shed }
    }
}

impl<B> Default for Staging<B> {
    fn default() -> Self {
        Self::new()
    }
}

/// One burst received on `port`: staged ([`stage`]: parsed once, hashed,
/// prefetched), each packet handed to the worker that owns it or processed
/// here, then every port's TX buffer flushed (out before the next port's
/// burst is processed). The packets handed over are counted once per burst.
/// A burst of at most one frame (its iterator's bound) takes the same
/// steps without the stages ([`receive_one`]). Inline: the test of the
/// bound joins the caller's code, which then makes one call either way.
#[inline]
pub fn receive<B: PacketBuf>(
    worker: &mut Worker<B>,
    q: &Queues<B>,
    now: u64,
    port: u16,
    burst: impl Iterator<Item = B>,
    st: &mut Staging<B>,
    io: &mut impl Flush<B>,
) {
    let mut burst = burst;
    if burst.size_hint().1 == Some(1) {
        receive_one(worker, q, now, port, burst.next(), st, io)
    } else {
        receive_burst(worker, q, now, port, burst, st, io)
    }
}

/// [`receive`] of a burst that may hold several frames: the stages.
#[inline(never)]
fn receive_burst<B: PacketBuf>(
    worker: &mut Worker<B>,
    q: &Queues<B>,
    now: u64,
    port: u16,
    burst: impl Iterator<Item = B>,
    st: &mut Staging<B>,
    io: &mut impl Flush<B>,
) {
    let mut burst = burst;
    let mut handed = 0;
    let rx = worker.engine.iface(port).copied();
    // A burst longer than the slots (not from a NIC: its bursts are at
    // most BURST) is staged in parts.
    loop {
        let n = stage(&worker.engine, q.workers, q.me, &mut burst, &mut st.slots);
        for slot in &mut st.slots[..n] {
            let Some(m) = slot.m.take() else { continue };
            match slot.owner {
                Owner::Worker(w) if w != q.me => handed += u64::from(hand_over(q, w, port, m)),
                _ => worker.handle_staged(now, port, rx.as_ref(), m, slot.s.get(), io),
            }
        }
        if n < st.slots.len() {
            break;
        }
    }
    if handed > 0 {
        q.counters.event(Event::RedirectOut, handed);
    }
    io.flush_all();
}

/// Hands `m`, received on `port`, to worker `w`'s inbox; whether it went
/// (a full inbox: dropped and counted, never a wait).
#[inline(always)]
fn hand_over<B>(q: &Queues<B>, w: u32, port: u16, m: B) -> bool {
    match q.redirect.send(w, port, m) {
        Ok(()) => true,
        Err(m) => {
            drop(m);
            q.counters.count_drop(Drop::RedirectFull);
            false
        }
    }
}

/// [`receive`] of a burst of at most one frame, `m` (most bursts at low
/// load): no other packet's misses to overlap its own with, so no stages
/// (the same steps straight: classified, staged, handed over or processed
/// by [`Worker::handle_staged`] as a burst's frames are, then every port's
/// TX buffer flushed). Out of line, apart from
/// [`receive_burst`]: inlined there, it changed the longer bursts' loop
/// (their staged records copied twice).
#[inline(never)]
fn receive_one<B: PacketBuf>(
    worker: &mut Worker<B>,
    q: &Queues<B>,
    now: u64,
    port: u16,
    m: Option<B>,
    st: &mut Staging<B>,
    io: &mut impl Flush<B>,
) {
    if let Some(m) = m {
        // The first slot holds the record, written there once.
        let slot = &mut st.slots[0].s;
        match slot.stage(&worker.engine, q.workers, q.me, m.as_ref()) {
            Owner::Worker(w) if w != q.me => {
                if hand_over(q, w, port, m) {
                    q.counters.event(Event::RedirectOut, 1);
                }
            }
            _ => {
                let s = slot.get_mut().map(|s| {
                    worker.engine.hint(s);
                    &*s
                });
                let rx = worker.engine.iface(port).copied();
                worker.handle_staged(now, port, rx.as_ref(), m, s, io);
            }
        }
    }
    io.flush_all();
}

/// The rest of a poll, after the ports' bursts (`received` packets): the
/// packets other workers handed over (up to two bursts, counted as
/// `redirect_in`, not again as `rx_packets`), the kernel's frames, the
/// neighbours other workers learnt and those to tell them, the timers with
/// the expiry budget of the poll's packets, one TX flush, and a
/// control-plane question. Each queue is tested for emptiness before it is
/// read. Returns (packets handed over, frames from the kernel). Inline:
/// a copy in the caller's codegen unit, so that its queue tests join the
/// loop's code (out of line in another unit, an empty poll read 221 Ir
/// instead of 136 in `ir_per_poll`).
#[inline]
pub fn after_bursts<B: PacketBuf>(
    worker: &mut Worker<B>,
    q: &Queues<B>,
    now: u64,
    received: usize,
    st: &mut Staging<B>,
    io: &mut impl Flush<B>,
) -> (usize, usize) {
    let handed = if q.redirect.is_empty(q.me) { 0 } else { handed_over(worker, q, now, st, io) };
    let mut from_kernel = 0;
    if let Some(ring) = q.from_kernel.filter(|r| !r.is_empty(q.me)) {
        // What the kernel sent: out of the port as it is (the kernel
        // resolved the MACs through the same port).
        while from_kernel < FROM_KERNEL_BURST {
            let Some((port, m)) = ring.recv(q.me) else { break };
            io.send(port, m);
            from_kernel += 1;
        }
        q.counters.event(Event::FromKernel, from_kernel as u64);
    }
    if !q.neighbours.is_empty(q.me) {
        while let Some((_, learned)) = q.neighbours.recv(q.me) {
            worker.learn(now, learned, io);
        }
    }
    if worker.has_learned() {
        for learned in worker.take_learned() {
            for w in (0..q.workers).filter(|w| *w != q.me) {
                // A full inbox only delays that worker's own ARP.
                let _ = q.neighbours.send(w, learned.port, learned);
            }
        }
    }
    worker.tick_with(now, expire_budget(received + handed), io);
    io.flush_all();
    let engine = &worker.engine;
    q.mailbox.serve(|query| engine.dump(now, query));
    (handed, from_kernel)
}

/// The packets other workers handed over, up to two bursts (counted as
/// `redirect_in`, not again as `rx_packets`; those read count, shed SYNs
/// too); how many. While the inbox holds a backlog, plain SYNs beyond the
/// quota are shed before the stages, as an rx burst's are (`drop_syn_shed`).
#[inline(never)]
fn handed_over<B: PacketBuf>(
    worker: &mut Worker<B>,
    q: &Queues<B>,
    now: u64,
    st: &mut Staging<B>,
    io: &mut impl Flush<B>,
) -> usize {
    let mut handed = 0;
    let mut shed = 0;
    for _ in 0..2 {
        if q.redirect.is_empty(q.me) {
            break;
        }
        // A burst read whole: the inbox held a backlog (as a full rx burst).
        let shedding = st.inbox_shed.rx_burst(now, q.redirect.len(q.me) >= BURST);
        let inbox = std::iter::from_fn(|| q.redirect.recv(q.me)).take(BURST);
        let (ports, syns) = (&mut st.ports, &mut st.inbox_shed);
        let inbox = inbox
            .filter(|(_, m)| {
                let keep = !shedding || syns.admit(m.as_ref());
                shed += u64::from(!keep);
                keep
            })
            .map(|(port, m)| {
                ports.push(port);
                m
            });
        let n = stage(&worker.engine, 1, q.me, &mut inbox.take(BURST), &mut st.slots);
        handed += n;
        for (slot, port) in st.slots[..n].iter_mut().zip(st.ports.drain(..)) {
            let Some(m) = slot.m.take() else { continue };
            let rx = worker.engine.iface(port).copied();
            worker.handle_staged(now, port, rx.as_ref(), m, slot.s.get(), io);
        }
    }
    q.counters.event(Event::RedirectIn, handed as u64 + shed);
    if shed > 0 {
        q.counters.count_drops(Drop::SynShed, shed);
    }
    handed + shed as usize
}

/// A poll loop's clock: the milliseconds its steps run with, from TSC
/// readings, and the loop lengths and busy cycles it counts. One TSC read
/// per poll: a busy poll's end is the next poll's start. The millisecond
/// is `tsc / per_ms` as before, but divided only when the TSC has passed
/// the next millisecond's first tick (one compare on other polls).
pub struct PollClock {
    per_ms: u64,
    /// The current millisecond, and the TSC at which the next one starts.
    now: u64,
    next_ms: u64,
    /// The start of the previous loop, and whether it slept.
    last: u64,
    slept: bool,
    /// The TSC a busy poll ended at: the next poll's start.
    resume: Option<u64>,
}

impl PollClock {
    /// A clock of `per_ms` TSC ticks per millisecond, started at `tsc`.
    pub fn new(per_ms: u64, tsc: u64) -> PollClock {
        let per_ms = per_ms.max(1);
        PollClock { per_ms, now: 0, next_ms: 0, last: tsc, slept: false, resume: None }
    }

    /// Starts a poll: its first TSC (the last busy poll's end, else
    /// `read()`), the loop before it counted ([`WorkerCounters::count_loop`],
    /// unless it slept). Returns the poll's start and its millisecond.
    #[inline]
    pub fn begin(&mut self, counters: &WorkerCounters, read: impl FnOnce() -> u64) -> (u64, u64) {
        let start = self.resume.take().unwrap_or_else(read);
        if !self.slept {
            counters.count_loop(start.saturating_sub(self.last));
        }
        (self.last, self.slept) = (start, false);
        if start >= self.next_ms {
            self.now = start / self.per_ms;
            self.next_ms = (self.now + 1).saturating_mul(self.per_ms);
        }
        (start, self.now)
    }

    /// Ends a poll that received (or was handed) `received` packets from
    /// the NICs, started at `start`, at TSC `end`: counted as busy.
    #[inline]
    pub fn end_busy(&mut self, counters: &WorkerCounters, start: u64, end: u64, received: usize) {
        counters.event(Event::RxPackets, received as u64);
        counters.event(Event::BusyCycles, end.wrapping_sub(start));
        self.resume = Some(end);
    }

    /// The idle policy slept after this poll: the next loop is not counted.
    pub fn slept(&mut self) {
        self.slept = true;
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
    /// `workers.overload_syn_rate`, for the inbox's shedding too.
    pub syn_rate: u32,
    /// Count `burst_cycles` (`workers.record_burst_cycles`): each port's
    /// burst that received packets, from its rx call to the end of its TX
    /// flush, as testpmd's `--record-core-cycles` counts a stream's.
    pub record_bursts: bool,
}

impl WorkerLoop {
    /// Runs until `stop` is set. Returns 0 (the lcore's exit status).
    pub fn run(mut self) -> i32 {
        let hz = tsc_hz().max(1000);
        let counters = self.worker.engine.counters().clone();
        let mut rx = RxBurst::new();
        let mut tx: Vec<TxBuffer> = self.ports.iter().map(|_| TxBuffer::new()).collect();
        // This worker's queue of each port, held from poll to poll (no
        // locked instruction per burst) and given back when the control
        // path changes the port, and when the loop ends (see gw_dpdk's
        // queues.rs).
        let mut queues: Vec<QueuePair> = self.ports.iter().map(|p| p.queue_pair(self.queue)).collect();
        let mut empty_polls = 0u32;
        // A burst between its stages (allocated once, here).
        let mut staged: Staging<Mbuf> = Staging::with_inbox_shed(Shed::new(self.syn_rate));
        let mut generation = self.worker.engine.snapshot().generation;
        counters.generation.set(generation);
        let mut clock = PollClock::new(hz / 1000, tsc());
        let q = Queues {
            me: self.me,
            workers: self.redirect.workers() as u32,
            counters: &counters,
            redirect: &self.redirect,
            neighbours: &self.neighbours,
            from_kernel: self.kernel.as_ref().map(|k| &k.from_kernel),
            mailbox: &self.mailbox,
        };
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(snap) = self.publisher.newer_than(generation) {
                generation = snap.generation;
                drop(self.worker.engine.set_snapshot(snap));
                counters.generation.set(generation);
            }
            let (start, now) = clock.begin(&counters, tsc);
            let mut io = DpdkIo {
                pool: &self.pool,
                queues: &mut queues,
                tx: &mut tx,
                counters: &counters,
                redirect: &self.redirect,
                me: self.me,
                kernel: self.kernel.as_ref(),
            };
            let mut received = 0;
            for (i, (port, shed)) in self.ports.iter().zip(self.shed.iter_mut()).enumerate() {
                let burst_start = if self.record_bursts { tsc() } else { 0 };
                let n = io.queues[i].rx_burst(&mut rx);
                if n == 0 {
                    continue;
                }
                received += n;
                let w = &mut self.worker;
                if shed.rx_burst(now, n == BURST) {
                    let mut dropped = 0;
                    let admitted = shed.admitted(rx.drain(), &mut dropped);
                    receive(w, &q, now, port.id(), admitted, &mut staged, &mut io);
                    if dropped > 0 {
                        counters.count_drops(Drop::SynShed, dropped);
                    }
                } else {
                    receive(w, &q, now, port.id(), rx.drain(), &mut staged, &mut io);
                }
                if self.record_bursts {
                    counters.event(Event::BurstCycles, tsc().wrapping_sub(burst_start));
                }
            }
            let (handed, from_kernel) =
                after_bursts(&mut self.worker, &q, now, received, &mut staged, &mut io);
            if received > 0 || handed > 0 || from_kernel > 0 {
                clock.end_busy(&counters, start, tsc(), received);
                empty_polls = 0;
                continue;
            }
            counters.event(Event::IdlePolls, 1);
            match self.idle.policy {
                IdlePolicy::Busy => std::hint::spin_loop(),
                IdlePolicy::Sleep => {
                    if self.idle.after_empty_poll(&mut empty_polls) {
                        std::thread::sleep(self.idle.sleep);
                        clock.slept();
                    }
                }
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_poll_count_saturates_and_keeps_the_worker_asleep() {
        let idle = Idle { policy: IdlePolicy::Sleep, polls: 3, sleep: Duration::from_micros(100) };
        let mut empty = 0;
        assert!(!idle.after_empty_poll(&mut empty));
        assert!(!idle.after_empty_poll(&mut empty));
        assert!(idle.after_empty_poll(&mut empty), "the third empty poll in a row sleeps");
        // Days of idleness: the count stops at its maximum, still asleep.
        let mut empty = u32::MAX - 1;
        assert!(idle.after_empty_poll(&mut empty));
        assert!(idle.after_empty_poll(&mut empty));
        assert_eq!(empty, u32::MAX);
        let most = Idle { polls: u32::MAX, ..idle };
        assert!(most.after_empty_poll(&mut empty));
    }
}

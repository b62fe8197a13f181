//! Instructions per poll and per packet of the worker's poll loop (issue
//! 14), for `valgrind --tool=callgrind`: the steps `WorkerLoop::run` runs
//! around `Worker::handle` (`dataplane::io`'s `receive` and `after_bursts`,
//! the `PollClock`), without the NIC's rx and tx calls (DPDK's, which
//! testpmd makes too) and with a TSC that moves 1,000 ticks a poll.
//!
//! `ir_per_poll N [udp|toa|fnat66|...] BURST` opens 1,000 sessions as
//! `ir_per_packet` does (its setup, included as a module), then runs polls
//! that each receive a burst of BURST frames on each port: BURST flows'
//! client frames on port 0, their replies on port 1, 2 x BURST packets a
//! poll, 2N packets in all. Two runs with different N give the cost per
//! packet with the poll's fixed cost spread over its packets:
//! (Ir(2N) - Ir(N)) / 2N. BURST 0: 2N polls that receive nothing (idle
//! polls), so the same formula is the cost of one empty poll. From two
//! burst sizes B1 < B2 (per packet c1, c2), the fixed cost of a poll that
//! received something is (c1 - c2) / (1/(2 B1) - 1/(2 B2)).
//!
//! The TX side ([`PollTx`]) queues a burst per port and flushes as the DPDK
//! one does (counted as `tx_packets`, the buffers back to the free list as
//! the NIC's TX completion would put them). One worker, no kernel
//! interface. The stand-ins for the NIC's rx and tx bursts are out of
//! line, as DPDK's are: their own instructions then stay the same whatever
//! the poll steps inline around them (inline, they moved by up to 3 Ir
//! per packet when `receive` changed shape).
//!
//!   cargo build --release -p gw-benches --example ir_per_poll
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/a target/release/examples/ir_per_poll 20000 udp 1
use std::sync::Arc;

use dataplane::io::{after_bursts, receive, Flush, PollClock, Queues, Staging};
use gw_core::counters::{Event, WorkerCounters};
use gw_core::engine::Engine;
use gw_core::steer::Redirect;
use gw_core::worker::Io;
use gw_dpdk::BURST;

#[path = "ir_per_packet.rs"]
#[allow(dead_code)]
mod per_packet;

use per_packet::{Headroom, PoolIo, Pooled};

/// The TX side: a queue of at most a burst per port, flushed when full and
/// by the poll steps. A fixed array and its length, as `gw_dpdk`'s
/// `TxBuffer`: queueing is a store and an increment wherever it is inlined
/// (a `Vec::push` was inlined or not depending on its caller's shape).
struct PollTx {
    io: PoolIo,
    tx: [[Option<Pooled>; BURST]; 2],
    len: [usize; 2],
    counters: Arc<WorkerCounters>,
}

impl PollTx {
    /// Out of line, as the NIC's tx burst is.
    #[inline(never)]
    fn flush(&mut self, i: usize) {
        let n = self.len[i];
        self.counters.event(Event::TxPackets, n as u64);
        self.io.sent += n as u32;
        for p in &mut self.tx[i][..n] {
            self.io.free.push(p.take().expect("queued"));
        }
        self.len[i] = 0;
    }
}

impl Io<Pooled> for PollTx {
    fn alloc(&mut self) -> Option<Pooled> {
        self.io.free.pop()
    }
    #[inline(always)]
    fn send(&mut self, port: u16, pkt: Pooled) {
        let i = usize::from(port & 1);
        if self.len[i] == BURST {
            self.flush(i);
        }
        self.tx[i][self.len[i]] = Some(pkt);
        self.len[i] += 1;
    }
}

impl Flush<Pooled> for PollTx {
    #[inline]
    fn flush_all(&mut self) {
        for i in 0..self.tx.len() {
            if self.len[i] > 0 {
                self.flush(i);
            }
        }
    }
}

/// The NIC's rx burst: `side`'s frames of `burst` flows from the
/// `first`, into `b`. Out of line: the stand-in's code stays the same
/// whatever the poll steps inline around it.
#[inline(never)]
fn nic_rx(
    tx: &mut PollTx,
    frames: &[[(u16, Vec<u8>); 2]],
    first: usize,
    burst: usize,
    side: usize,
    b: &mut Vec<Pooled>,
) {
    for f in 0..burst {
        let (_, frame) = &frames[(first + f) % frames.len()][side];
        let mut m = tx.alloc().expect("buffers come back when sent");
        m.0.fill(frame);
        b.push(m);
    }
}

/// The run: `engine`'s worker (neighbours learnt, as `ir_per_packet`'s
/// `worker` run) driven by the poll loop's steps, `burst` frames per port
/// and poll (0: empty polls); how many packets were sent.
fn run(engine: Engine, frames: &[[(u16, Vec<u8>); 2]], n: u32, burst: usize) -> u32 {
    let (mut worker, io) = per_packet::worker_for(engine, frames);
    let counters = worker.engine.counters().clone();
    let mut tx = PollTx { io, tx: Default::default(), len: [0; 2], counters: counters.clone() };
    tx.io.free.extend((0..4 * BURST).map(|_| Pooled(Box::new(Headroom::new()))));
    let redirect = Redirect::<Pooled>::new(1, dataplane::engine_config::REDIRECT_INBOX);
    let neighbours = Redirect::new(1, 64);
    let (_control, mailbox) = gw_core::mailbox::mailbox();
    let q = Queues {
        me: 0,
        workers: 1,
        counters: &counters,
        redirect: &redirect,
        neighbours: &neighbours,
        from_kernel: None,
        mailbox: &mailbox,
    };
    // 2.6 GHz; the clock starts at 1 ms (the sessions were opened then).
    let per_ms = 2_600_000u64;
    let mut tsc = per_ms;
    let mut clock = PollClock::new(per_ms, tsc);
    let mut staged = Staging::new();
    let mut bursts: [Vec<Pooled>; 2] = [Vec::with_capacity(BURST), Vec::with_capacity(BURST)];
    let flows = frames.len();
    let polls = (n as usize).checked_div(burst).unwrap_or(2 * n as usize);
    for p in 0..polls {
        tsc += 1000;
        let (start, now) = clock.begin(&counters, || tsc);
        let mut received = 0;
        for (side, b) in bursts.iter_mut().enumerate() {
            if burst > 0 {
                nic_rx(&mut tx, frames, (p * burst) % flows, burst, side, b);
            }
            if b.is_empty() {
                continue;
            }
            received += b.len();
            let port = frames[0][side].0;
            receive(&mut worker, &q, now, port, b.drain(..), &mut staged, &mut tx);
        }
        let (handed, from_kernel) = after_bursts(&mut worker, &q, now, received, &mut staged, &mut tx);
        if received > 0 || handed > 0 || from_kernel > 0 {
            clock.end_busy(&counters, start, tsc + 500, received);
        } else {
            counters.event(Event::IdlePolls, 1);
        }
    }
    tx.io.sent
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let burst: usize = args.last().and_then(|a| a.parse().ok()).filter(|_| args.len() > 2).unwrap_or(32);
    assert!(burst <= BURST, "a burst is at most {BURST} frames");
    let what = args.get(2).filter(|w| w.parse::<usize>().is_err()).cloned().unwrap_or_default();
    let (engine, frames) = per_packet::setup(&what, 1000);
    let want = if burst == 0 { 0 } else { 2 * (n / burst as u32 * burst as u32) };
    assert_eq!(run(engine, &frames, n, burst), want, "every packet sent");
}

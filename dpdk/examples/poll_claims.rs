//! A worker's poll loop reduced to its NIC calls, for counting what the
//! queue claims cost under `valgrind --tool=callgrind` (issue 14): each
//! poll receives a burst on each of two ports and sends it out of the
//! other, as `gatewayd`'s worker does, with the queues claimed per burst
//! (`Port::rx_burst`, `TxBuffer::flush`: an atomic swap each) or held
//! across polls (`QueuePair`: a relaxed load each).
//!
//! ```text
//! poll_claims burst|held null|ring POLLS
//! ```
//! `null`: two `net_null` ports, every rx burst full (32 packets), so a
//! poll makes 2 rx bursts and 2 tx flushes; `ring`: two empty `net_ring`
//! ports, every poll idle (2 rx bursts that receive nothing). EAL runs
//! without hugepages, PCI or telemetry, on the calling thread only.
//!
//! Per poll, deterministic: (Ir(2N) - Ir(N)) / N from two runs, and the
//! locked instructions executed (callgrind's per-instruction counts,
//! `--dump-instr=yes`, of the instructions with a `lock` prefix or an
//! `xchg` with memory; `docs/benchmarks-log.md`, "Queues held across polls"):
//!
//! ```text
//! cargo build --release -p gw-dpdk --example poll_claims
//! valgrind --tool=callgrind --dump-instr=yes --compress-pos=no --compress-strings=no \
//!     --callgrind-out-file=/tmp/c target/release/examples/poll_claims held null 2000
//! benches/callgrind_locked.py /tmp/c | tail -1
//! ```

use anyhow::{bail, Context};
use gw_dpdk::{Eal, Mempool, Port, RxBurst, TxBuffer, DEFAULT_DATA_ROOM, SOCKET_ANY};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, source, polls] = &args[..] else {
        bail!("usage: poll_claims burst|held null|ring POLLS");
    };
    let held = match mode.as_str() {
        "burst" => false,
        "held" => true,
        _ => bail!("mode: burst or held, not {mode}"),
    };
    if !matches!(source.as_str(), "null" | "ring") {
        bail!("source: null or ring, not {source}");
    }
    let polls: u64 = polls.parse().with_context(|| format!("POLLS {polls}"))?;

    let eal_args: Vec<String> = [
        "--no-huge",
        "-m",
        "128",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "--log-level=lib.eal:warning",
        "-l",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--vdev=net_{source}0"), format!("--vdev=net_{source}1")])
    .chain([format!("--file-prefix=pollclaims{}", std::process::id())])
    .collect();
    let eal = Eal::init(&eal_args).context("EAL init")?;
    let pool = Mempool::new("poll_claims", 4095, 256, DEFAULT_DATA_ROOM, SOCKET_ANY)?;
    let ports = Port::all()?;
    let [a, b] = ports[..] else {
        bail!("need two ports, found {}", ports.len());
    };
    for p in [a, b] {
        p.configure(1, 1, 512, 512, &pool, SOCKET_ANY)?;
        p.start()?;
    }

    let (received, sent) = if held { run_held(a, b, polls) } else { run_burst(a, b, polls) };
    println!("{mode} {source}: {polls} polls, {received} packets received, {sent} sent");
    for p in [a, b] {
        p.close()?;
    }
    drop(pool);
    drop(eal);
    Ok(())
}

/// Claimed per burst: `Port::rx_burst` and `TxBuffer::flush`.
fn run_burst(a: Port, b: Port, polls: u64) -> (u64, u64) {
    let (mut rx, mut tx) = (RxBurst::new(), TxBuffer::new());
    let (mut received, mut sent) = (0, 0);
    for _ in 0..polls {
        for (from, to) in [(a, b), (b, a)] {
            received += from.rx_burst(0, &mut rx) as u64;
            rx.drain().for_each(|m| drop(tx.push(m))); // a burst fits
            sent += tx.flush(to, 0).0 as u64;
        }
    }
    (received, sent)
}

/// Held across polls: one `QueuePair` per port.
fn run_held(a: Port, b: Port, polls: u64) -> (u64, u64) {
    let (mut rx, mut tx) = (RxBurst::new(), TxBuffer::new());
    let mut queues = [a.queue_pair(0), b.queue_pair(0)];
    let (mut received, mut sent) = (0, 0);
    for _ in 0..polls {
        for (from, to) in [(0, 1), (1, 0)] {
            received += queues[from].rx_burst(&mut rx) as u64;
            rx.drain().for_each(|m| drop(tx.push(m))); // a burst fits
            sent += queues[to].flush(&mut tx).0 as u64;
        }
    }
    (received, sent)
}

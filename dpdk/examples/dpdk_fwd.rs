//! io forwarding between two DPDK ports, on a worker lcore.
//!
//! Every packet received on one port is sent out of the other, unchanged.
//! The worker sleeps ~50 µs when neither port had anything (for small
//! machines), and the program stops after `--seconds` or on SIGINT/SIGTERM,
//! then prints what it forwarded.
//!
//! ```text
//! dpdk_fwd [EAL args] [-- --seconds N]
//! dpdk_fwd --no-huge -m 256 --no-shconf --no-pci -l 0,1 \
//!     --vdev=net_af_packet0,iface=veth0 --vdev=net_af_packet1,iface=veth1 -- --seconds 30
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gw_dpdk::{self as dpdk, Eal, Mempool, Port, RxBurst, TxBuffer, DEFAULT_DATA_ROOM};

const IDLE_SLEEP: Duration = Duration::from_micros(50);

/// Counters the worker updates and main prints.
#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let (eal_args, app_args) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&args[..], &[][..]),
    };
    let seconds = parse_seconds(app_args)?;

    let stop = dpdk::stop_on_signals().context("installing signal handlers")?;
    let eal = Eal::init(eal_args).context("EAL init")?;

    let ports = Port::all()?;
    let [a, b] = ports[..] else {
        bail!("need exactly two ports, found {}", ports.len());
    };
    let worker = *eal.worker_lcores().first().context("need a worker lcore (e.g. -l 0,1)")?;
    let pool = Mempool::new("fwd_pool", 8191, 256, DEFAULT_DATA_ROOM, eal.socket_id())?;
    for p in [a, b] {
        p.configure(1, 1, 1024, 1024, &pool, p.socket_id())
            .with_context(|| format!("configuring port {}", p.id()))?;
        p.start()?;
        p.set_promiscuous(true);
        let mac = p.mac_addr()?;
        println!(
            "port {} {}: mac {} link {}",
            p.id(),
            p.name()?,
            mac.map(|o| format!("{o:02x}")).join(":"),
            if p.link_up() { "up" } else { "down" }
        );
    }

    let counters = Arc::new(Counters::default());
    let c = Arc::clone(&counters);
    eal.launch(worker, move || forward(a, b, stop, &c))?;
    println!("forwarding on lcore {worker} for {seconds} s (Ctrl-C stops)");

    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !stop.load(Relaxed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Relaxed);
    let ret = eal.wait(worker);

    for p in [a, b] {
        println!("port {} stats: {:?}", p.id(), p.stats());
    }
    println!(
        "forwarded {} packets, dropped {} (worker returned {ret}; mbufs in use {})",
        counters.forwarded.load(Relaxed),
        counters.dropped.load(Relaxed),
        pool.in_use()
    );
    for p in [a, b] {
        p.close()?;
    }
    Ok(())
}

/// The worker: rx burst on each port, tx burst on the other.
fn forward(a: Port, b: Port, stop: &AtomicBool, counters: &Counters) -> i32 {
    let mut rx = RxBurst::new();
    let mut tx = TxBuffer::new();
    while !stop.load(Relaxed) {
        let mut idle = true;
        for (from, to) in [(a, b), (b, a)] {
            if from.rx_burst(0, &mut rx) == 0 {
                continue;
            }
            idle = false;
            for m in rx.drain() {
                // Cannot fail: a burst fits the buffer. If it did, the
                // returned mbuf is dropped, and so freed.
                if tx.push(m).is_err() {
                    counters.dropped.fetch_add(1, Relaxed);
                }
            }
            let (sent, freed) = tx.flush(to, 0);
            counters.forwarded.fetch_add(sent as u64, Relaxed);
            counters.dropped.fetch_add(freed as u64, Relaxed);
        }
        if idle {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
    0
}

fn parse_seconds(args: &[String]) -> anyhow::Result<u64> {
    match args {
        [] => Ok(10),
        [flag, n] if flag == "--seconds" => n.parse().with_context(|| format!("--seconds {n}")),
        _ => bail!("usage: dpdk_fwd [EAL args] [-- --seconds N]"),
    }
}

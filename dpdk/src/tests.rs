//! Tests of the DPDK wrappers.
//!
//! EAL can be initialised once per process, so everything that needs it
//! runs in the single test `with_eal`, in order, on `net_null` (a sink and
//! endless source) and `net_ring` (a loopback: what is sent on a queue
//! comes back on the same queue; 1023 slots). No hugepages or devices are
//! needed, but EAL init wants root on most machines, so `with_eal` is an
//! ignored test: the runner reports it as skipped ("needs root") instead of
//! passing it silently, and `test.sh` (run as root) runs it with
//! `--run-ignored all`. Run it by hand with
//! `cargo nextest run -p gw-dpdk --run-ignored all`; there, an EAL that
//! fails to start fails the test.

use super::*;

/// Small, private, hugepage-free EAL without PCI scan. (In DPDK 22.11
/// `--no-huge` implies legacy memory, which `--in-memory` refuses; with
/// `--no-huge` memory is anonymous anyway, and `--no-shconf` skips the
/// shared config file.)
fn eal_args() -> Vec<String> {
    [
        "--no-huge",
        "-m",
        "256",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "--log-level=lib.eal:warning",
        "-l",
        "0,1",
        "--vdev=net_null0",
        "--vdev=net_ring0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--file-prefix=gwtest{}", std::process::id())])
    .collect()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn without_eal() {
    // Empty buffers never reach DPDK, so they work before EAL init.
    let mut rx = RxBurst::new();
    assert!(rx.is_empty());
    assert_eq!(rx.drain().count(), 0);
    let mut tx = TxBuffer::new();
    assert!(tx.is_empty() && !tx.is_full());
    assert_eq!(tx.clear(), 0);
    // rte_strerror knows libc's errnos and DPDK's own.
    let e = DpdkError::from_errno("op", libc::ENODEV);
    assert_eq!(e.errno(), libc::ENODEV);
    assert_eq!(e.to_string(), "op failed: No such device (errno 19)");
    let e = DpdkError::from_errno("op", sys::E_RTE_SECONDARY as i32);
    assert!(e.to_string().contains("secondary"), "{e}");
}

#[test]
#[ignore = "needs root (DPDK EAL); test.sh runs it with --run-ignored all"]
fn with_eal() {
    let eal = match Eal::init(&eal_args()) {
        Ok(eal) => eal,
        Err(e) if !is_root() => panic!("EAL init failed ({e}): this test needs root"),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(Eal::init(&eal_args()).unwrap_err().errno(), libc::EALREADY);

    lcores_and_clock(&eal);
    let pool = Mempool::new("gwtest", 4095, 32, DEFAULT_DATA_ROOM, SOCKET_ANY).unwrap();
    assert_eq!((pool.available(), pool.in_use()), (4095, 0));
    mbuf_ops(&pool);
    mbuf_fields_as_the_shim(&pool);
    let (null, ring) = ports(&pool);
    ring_tx_rx(ring, &pool);
    unsent_mbufs_are_freed(ring, &pool);
    null_port(null, &pool);
    launch_on_worker(&eal, &pool);
    held_queues(ring, &pool);

    // Close the ports and drop the pool: the EAL's drop can then clean up.
    for p in [null, ring] {
        p.close().unwrap();
    }
    assert!(Port::by_name("net_ring0").is_err());
    assert_eq!(ring.rx_burst(0, &mut RxBurst::new()), 0, "closed port does nothing");
    assert_eq!(pool.in_use(), 0);
    drop(pool);
    drop(eal);
    assert!(eal::cleaned_up(), "rte_eal_cleanup ran");
    // Afterwards every entry point refuses instead of touching freed memory.
    assert_eq!(Port::by_name("net_null0").unwrap_err().errno(), libc::ENODEV);
    assert!(Mempool::new("late", 63, 0, DEFAULT_DATA_ROOM, SOCKET_ANY).is_err());
    assert!(Port::all().is_err());
}

fn lcores_and_clock(eal: &Eal) {
    assert_eq!(eal.main_lcore(), 0);
    assert_eq!(lcore_id(), 0, "the init thread is the main lcore");
    assert_eq!(eal.worker_lcores(), vec![1]);
    assert!(eal.socket_id() >= 0);
    assert!(tsc_hz() > 1_000_000);
    // The TSC runs, and at no more than `tsc_hz`: a sleep lasts at least what
    // it asked for, so 10 ms can never read as less than 9 (a tsc_hz off by
    // 10% or more). No upper bound: on a loaded machine a sleep may last
    // any time, and how fast things run is the benchmarks' business.
    let t0 = tsc();
    std::thread::sleep(std::time::Duration::from_millis(10));
    let ms = (tsc() - t0) * 1000 / tsc_hz();
    assert!(ms >= 9, "a 10 ms sleep measured as {ms} ms: tsc_hz() is too high");
    // A thread EAL did not start has no lcore id.
    assert_eq!(std::thread::spawn(lcore_id).join().unwrap(), u32::MAX);
}

fn mbuf_ops(pool: &Mempool) {
    let mut m = pool.alloc().unwrap();
    assert_eq!(pool.in_use(), 1);
    assert_eq!((m.len(), m.pkt_len(), m.nb_segs()), (0, 0, 1));
    assert_eq!((m.headroom(), m.tailroom()), (128, 2048));
    assert!(m.rss_hash().is_none());

    assert!(m.append(60));
    assert_eq!(m.as_ref(), &[0u8; 60][..], "appended bytes are zeroed");
    m.as_mut().iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    assert!(m.prepend(14));
    assert_eq!((m.len(), m.pkt_len()), (74, 74));
    assert_eq!(&m.as_ref()[..14], &[0u8; 14], "prepended bytes are zeroed");
    assert_eq!(m.as_ref()[14..17], [0, 1, 2]);
    assert!(m.adj(14));
    assert_eq!(m.as_ref()[..3], [0, 1, 2]);
    assert!(m.trim(10));
    assert_eq!(m.len(), 50);
    assert_eq!(m.as_ref()[49], 49);
    assert!(m.set_len(55) && m.as_ref()[50..] == [0; 5]);
    assert!(m.set_len(20) && m.len() == 20);

    // Refusals leave the mbuf unchanged.
    assert!(!m.prepend(129 + 14));
    assert!(!m.adj(21));
    assert!(!m.trim(21));
    assert!(!m.append(4096));
    assert!(!m.append(usize::MAX));
    assert!(!m.set_len(2048 - 14 + 200));
    assert_eq!((m.len(), m.as_ref()[19]), (20, 19));

    // into_raw / from_raw round trip keeps ownership single.
    let raw = m.into_raw();
    assert_eq!(pool.in_use(), 1);
    // SAFETY: raw came from into_raw just above and is not used again.
    let m = unsafe { Mbuf::from_raw(raw) };
    assert_eq!(m.len(), 20);
    drop(m);
    assert_eq!(pool.in_use(), 0, "drop frees");

    // An empty pool says so instead of failing later.
    let small = Mempool::new("gwtest_small", 7, 0, DEFAULT_DATA_ROOM, SOCKET_ANY).unwrap();
    let held: Vec<Mbuf> = std::iter::from_fn(|| small.alloc()).collect();
    assert_eq!((held.len(), small.available()), (7, 0));
    drop(held);
    assert_eq!(small.in_use(), 0);
}

/// `Mbuf::prepend`, `adj`, `append` and `trim`, written on the mbuf's
/// fields (and through the shim for a chained mbuf's last segment), leave
/// the mbuf as DPDK's own functions (the C shim) do, and refuse what they
/// refuse: every operation, at lengths around each limit, from mbufs of
/// several headrooms and lengths, one segment or two.
fn mbuf_fields_as_the_shim(pool: &Mempool) {
    // An mbuf of `len` bytes with `room` bytes of headroom, `segs`
    // segments (a second of 100 bytes).
    let make = |room: usize, len: usize, segs: u16| {
        let mut m = pool.alloc().unwrap();
        assert!(m.append(len + 128 - room) && m.adj(128 - room));
        if segs == 2 {
            let mut t = pool.alloc().unwrap();
            assert!(t.append(100));
            m.chain(t);
        }
        m
    };
    let mut checked = 0;
    for segs in [1u16, 2] {
        for room in [0usize, 1, 14, 40, 128] {
            for len in [0usize, 1, 20, 60, 1500, 2048 - 128 + room] {
                let tail_len = if segs == 2 { 100 } else { len };
                let limits = [room, len, 2048 + 128 - room - len, tail_len, 100];
                let ns = limits.iter().flat_map(|&l| [l.saturating_sub(1), l, l + 1]).chain([0, 65535]);
                for n in ns.filter(|&n| n <= 65535) {
                    for op in 0..4u8 {
                        let (mut a, mut b) = (make(room, len, segs), make(room, len, segs));
                        assert_eq!(a.fields(), b.fields());
                        let ours = match op {
                            0 => a.prepend(n),
                            1 => a.adj(n),
                            2 => a.append(n),
                            _ => a.trim(n),
                        };
                        let theirs = b.shim_op(op, n as u16);
                        let what = format!("op {op} n {n} room {room} len {len} segs {segs}");
                        assert_eq!(ours, theirs, "{what}");
                        assert_eq!(a.fields(), b.fields(), "{what}");
                        assert_eq!(a.len(), b.len(), "{what}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 500);
    // What prepend and append add is zeroed, exactly: every length from 0
    // to the whole headroom (the short ones are written as overlapping
    // stores), over bytes left dirty, with the data beyond untouched.
    for n in 0..=128usize {
        let mut m = pool.alloc().unwrap();
        assert!(m.prepend(128) && m.append(64));
        m.as_mut().fill(0xaa);
        assert!(m.adj(128), "the headroom now holds 0xaa");
        assert!(m.prepend(n));
        assert!(m.as_ref()[..n].iter().all(|b| *b == 0), "prepend {n}: zeroed");
        assert!(m.as_ref()[n..].iter().all(|b| *b == 0xaa), "prepend {n}: the data untouched");
        assert!(m.adj(n) && m.trim(64), "empty again, the tail dirty");
        assert!(m.append(n));
        assert!(m.as_ref().iter().all(|b| *b == 0), "append {n}: zeroed over the old data");
    }
    // Beyond 16 bits: refused, unchanged (DPDK's take a u16).
    let mut m = make(128, 60, 1);
    let before = m.fields();
    assert!(!m.prepend(65536) && !m.adj(65536) && !m.append(65536) && !m.trim(65536));
    assert_eq!(m.fields(), before);
    drop(m);
    assert_eq!(pool.in_use(), 0, "chains freed whole");
}

fn ports(pool: &Mempool) -> (Port, Port) {
    let null = Port::by_name("net_null0").unwrap();
    let ring = Port::by_name("net_ring0").unwrap();
    assert_eq!(Port::all().unwrap(), vec![null, ring]);
    assert_eq!(ring.name().unwrap(), "net_ring0");
    let e = Port::by_name("net_nonesuch0").unwrap_err();
    assert_eq!(e.op(), "rte_eth_dev_get_port_by_name");
    assert!(e.to_string().contains("errno"), "{e}");
    assert!(Port::by_name("a\0b").is_err());

    for p in [null, ring] {
        // Several rx queues ask for RSS, masked to what the device has (none).
        p.configure(2, 2, 256, 256, pool, SOCKET_ANY).unwrap();
        p.configure(1, 1, 256, 256, pool, SOCKET_ANY).unwrap();
        p.start().unwrap();
        p.set_promiscuous(true);
        assert!(p.mac_addr().is_ok());
    }
    assert!(ring.link_up());
    assert!(ring.configure(1, 1, 256, 256, pool, SOCKET_ANY).is_err(), "started port cannot be reconfigured");
    assert!(ring.configure(65, 1, 256, 256, pool, SOCKET_ANY).is_err());
    (null, ring)
}

/// Pushes `n` mbufs whose first byte is `base + i`.
fn fill(tx: &mut TxBuffer, pool: &Mempool, base: u8, n: usize) {
    for i in 0..n {
        let mut m = pool.alloc().unwrap();
        assert!(m.append(64));
        m.as_mut()[0] = base.wrapping_add(i as u8);
        tx.push(m).unwrap();
    }
}

fn ring_tx_rx(ring: Port, pool: &Mempool) {
    let mut tx = TxBuffer::new();
    fill(&mut tx, pool, 0, 10);
    assert_eq!(tx.flush(ring, 0), (10, 0));
    assert!(tx.is_empty());
    assert_eq!(pool.in_use(), 10, "in the ring");

    let mut rx = RxBurst::new();
    assert_eq!(ring.rx_burst(0, &mut rx), 10);
    let firsts: Vec<u8> = rx.drain().map(|m| m.as_ref()[0]).collect();
    assert_eq!(firsts, (0..10).collect::<Vec<u8>>());
    assert_eq!(pool.in_use(), 0);

    // A drain dropped early frees the rest; so does the next rx_burst and
    // the RxBurst's drop.
    fill(&mut tx, pool, 0, 30);
    tx.flush(ring, 0);
    assert_eq!(ring.rx_burst(0, &mut rx), 30);
    let taken: Vec<Mbuf> = rx.drain().take(3).collect();
    assert_eq!((taken.len(), rx.len()), (3, 0));
    assert_eq!(pool.in_use(), 3);
    drop(taken);
    fill(&mut tx, pool, 0, 5);
    tx.flush(ring, 0);
    assert_eq!(ring.rx_burst(0, &mut rx), 5);
    assert_eq!(ring.rx_burst(0, &mut rx), 0);
    assert_eq!(pool.in_use(), 0, "second rx_burst freed the undrained five");
    fill(&mut tx, pool, 0, 5);
    tx.flush(ring, 0);
    let mut rx2 = RxBurst::new();
    assert_eq!(ring.rx_burst(0, &mut rx2), 5);
    drop(rx2);
    assert_eq!(pool.in_use(), 0);

    // Queues that do not exist: nothing received, everything freed.
    assert_eq!(ring.rx_burst(1, &mut rx), 0);
    assert_eq!(ring.rx_burst(u16::MAX, &mut rx), 0);
    fill(&mut tx, pool, 0, 4);
    assert_eq!(tx.flush(ring, 1), (0, 4));
    assert_eq!(pool.in_use(), 0);

    // While the control path holds the port, bursts do nothing.
    fill(&mut tx, pool, 0, 2);
    {
        let _lock = queues::lock_port(ring.id());
        assert_eq!(tx.flush(ring, 0), (0, 2));
        assert_eq!(ring.rx_burst(0, &mut rx), 0);
    }
    assert_eq!(pool.in_use(), 0);
}

fn unsent_mbufs_are_freed(ring: Port, pool: &Mempool) {
    // Fill the ring (1023 slots) until the device refuses some.
    let mut tx = TxBuffer::new();
    let (mut sent, mut freed) = (0, 0);
    while freed == 0 {
        fill(&mut tx, pool, 0, BURST);
        assert!(tx.is_full());
        let m = pool.alloc().unwrap();
        assert!(tx.push(m).is_err(), "full buffer gives the mbuf back");
        let (s, f) = tx.flush(ring, 0);
        assert_eq!(s + f, BURST);
        sent += s;
        freed += f;
    }
    assert_eq!(sent, 1023);
    assert_eq!(pool.in_use(), 1023, "only what the ring holds is in use");
    fill(&mut tx, pool, 0, 7);
    assert_eq!(tx.flush(ring, 0), (0, 7));
    fill(&mut tx, pool, 0, 7);
    drop(tx);
    assert_eq!(pool.in_use(), 1023, "TxBuffer's drop frees");

    let mut rx = RxBurst::new();
    let mut got = 0;
    while ring.rx_burst(0, &mut rx) > 0 {
        got += rx.drain().count();
    }
    assert_eq!(got, 1023);
    assert_eq!(pool.in_use(), 0);
}

fn null_port(null: Port, pool: &Mempool) {
    let before = null.stats();
    let mut tx = TxBuffer::new();
    fill(&mut tx, pool, 0, BURST);
    assert_eq!(tx.flush(null, 0), (BURST, 0));
    assert_eq!(pool.in_use(), 0, "net_null frees what it sends");
    let mut rx = RxBurst::new();
    assert!(null.rx_burst(0, &mut rx) > 0, "net_null makes packets");
    drop(rx);
    assert_eq!(pool.in_use(), 0);
    let after = null.stats();
    assert_eq!(after.opackets - before.opackets, BURST as u64);
    assert!(after.ipackets > before.ipackets);
    // net_null counts per queue too: all of it on queue 0.
    assert_eq!(after.queues[0].opackets - before.queues[0].opackets, BURST as u64);
    assert_eq!(after.queues[0].ipackets - before.queues[0].ipackets, after.ipackets - before.ipackets);
}

fn launch_on_worker(eal: &Eal, pool: &Mempool) {
    let worker = eal.worker_lcores()[0];
    let p = pool.clone();
    eal.launch(worker, move || {
        // The worker's mempool cache is its own; what it allocates is
        // freed back before it returns.
        let m = p.alloc().expect("mbuf on worker");
        drop(m);
        i32::try_from(lcore_id()).unwrap() + 41
    })
    .unwrap();
    assert_eq!(eal.wait(worker), 42);
    assert_eq!(pool.in_use(), 0);

    // A busy lcore refuses a second launch; wait returns the first's value.
    eal.launch(worker, || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        7
    })
    .unwrap();
    assert_eq!(eal.launch(worker, || 0).unwrap_err().errno(), libc::EBUSY);
    assert_eq!(eal.wait(worker), 7);

    // A panic becomes -1 instead of crossing into C.
    eal.launch(worker, || panic!("test panic on a worker lcore")).unwrap();
    assert_eq!(eal.wait(worker), -1);

    assert!(eal.launch(eal.main_lcore(), || 0).is_err());
    assert!(eal.launch(4000, || 0).is_err());
    assert_eq!(eal.wait(eal.main_lcore()), -libc::EINVAL);
}

// Queues held across bursts (`QueuePair`, queues.rs): the workers' way.

/// Waits until `done()` (the other thread's progress): a guard against a
/// hang, not a timing assert (a minute is never the expected wait).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "no progress: {what}");
        std::thread::yield_now();
    }
}

fn held_queues(ring: Port, pool: &Mempool) {
    held_pair_excludes_others(ring, pool);
    lock_port_while_polling(ring, pool);
    overlapping_locks_while_polling(ring, pool);
    reconfigure_while_polling(ring, pool);
    assert_eq!(pool.in_use(), 0);
}

/// A held pair makes every other thread's bursts on its queues do nothing,
/// and its drop gives the queues back.
fn held_pair_excludes_others(ring: Port, pool: &Mempool) {
    let mut qp = ring.queue_pair(0);
    assert_eq!((qp.port(), qp.queue()), (ring, 0));
    assert!(!qp.holds_rx() && !qp.holds_tx(), "nothing claimed before the first burst");
    let mut tx = TxBuffer::new();
    fill(&mut tx, pool, 0, 6);
    assert_eq!(qp.flush(&mut tx), (6, 0));
    assert!(qp.holds_tx() && !qp.holds_rx());
    let mut rx = RxBurst::new();
    assert_eq!(qp.rx_burst(&mut rx), 6);
    assert_eq!(rx.drain().map(|m| m.as_ref()[0]).collect::<Vec<u8>>(), (0..6).collect::<Vec<u8>>());
    assert!(qp.holds_rx() && qp.holds_tx(), "kept after the bursts");

    // Six more in the ring: another thread's bursts on the queue receive
    // none of them and send nothing (they free what they would send).
    fill(&mut tx, pool, 10, 6);
    assert_eq!(qp.flush(&mut tx), (6, 0));
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut rx = RxBurst::new();
            assert_eq!(ring.rx_burst(0, &mut rx), 0, "queue held by another thread");
            let mut tx = TxBuffer::new();
            fill(&mut tx, pool, 0, 3);
            assert_eq!(tx.flush(ring, 0), (0, 3));
            let mut other = ring.queue_pair(0);
            assert_eq!(other.rx_burst(&mut rx), 0, "a second pair cannot claim it either");
            fill(&mut tx, pool, 0, 3);
            assert_eq!(other.flush(&mut tx), (0, 3));
            assert!(!other.holds_rx() && !other.holds_tx());
        });
    });
    // The holder's own burst gets them all; then its drop gives the
    // queues back and the per-burst API works again.
    assert_eq!(qp.rx_burst(&mut rx), 6);
    assert_eq!(rx.drain().map(|m| m.as_ref()[0]).collect::<Vec<u8>>(), (10..16).collect::<Vec<u8>>());
    fill(&mut tx, pool, 20, 2);
    assert_eq!(qp.flush(&mut tx), (2, 0));
    drop(qp);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut rx = RxBurst::new();
            assert_eq!(ring.rx_burst(0, &mut rx), 2, "released on drop");
            let mut tx = TxBuffer::new();
            fill(&mut tx, pool, 0, 1);
            assert_eq!(tx.flush(ring, 0), (1, 0));
            assert_eq!(ring.rx_burst(0, &mut rx), 1);
        });
    });

    // Queues that do not exist: a pair claims them but never bursts.
    let mut none = ring.queue_pair(1);
    assert_eq!(none.rx_burst(&mut rx), 0);
    fill(&mut tx, pool, 0, 4);
    assert_eq!(none.flush(&mut tx), (0, 4));
    let mut past = ring.queue_pair(u16::MAX);
    assert_eq!(past.rx_burst(&mut rx), 0);
    fill(&mut tx, pool, 0, 4);
    assert_eq!(past.flush(&mut tx), (0, 4));
    assert!(!past.holds_rx() && !past.holds_tx());
    drop(rx);
    assert_eq!(pool.in_use(), 0);
}

/// What a polling thread has done: bursts made, packets sent and received.
#[derive(Default)]
struct Progress {
    polls: std::sync::atomic::AtomicU64,
    sent: std::sync::atomic::AtomicU64,
    received: std::sync::atomic::AtomicU64,
    stop: std::sync::atomic::AtomicBool,
}

/// Tells the polling thread to stop when dropped: also when an assert
/// fails in the scope, so that the scope's join does not wait forever.
struct StopOnDrop<'a>(&'a Progress);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `lock_port` on another thread, with a guard against a hang (a holder
/// that never gives its queues back): a minute is never the expected wait.
fn lock_port_from_another_thread(port: Port) -> queues::PortLock {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(queues::lock_port(port.id())));
    rx.recv_timeout(std::time::Duration::from_secs(60)).expect("lock_port completes while the holder polls")
}

impl Progress {
    fn get(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.polls.load(SeqCst), self.sent.load(SeqCst), self.received.load(SeqCst))
    }
}

/// A worker's loop on queue `q` of `ring` with a held pair: each poll
/// sends two packets and receives what came back, until told to stop.
/// Checks every packet it receives is one it sent, in order.
fn poll(ring: Port, q: u16, pool: &Mempool, p: &Progress) {
    use std::sync::atomic::Ordering::SeqCst;
    let mut qp = ring.queue_pair(q);
    let (mut tx, mut rx) = (TxBuffer::new(), RxBurst::new());
    let mut next = 0u8;
    let mut expect = 0u8;
    while !p.stop.load(SeqCst) {
        fill(&mut tx, pool, next, 2);
        let (sent, _) = qp.flush(&mut tx);
        next = next.wrapping_add(sent as u8);
        qp.rx_burst(&mut rx);
        for m in rx.drain() {
            assert_eq!(m.as_ref()[0], expect, "in order, none lost");
            expect = expect.wrapping_add(1);
            p.received.fetch_add(1, SeqCst);
        }
        p.sent.fetch_add(sent as u64, SeqCst);
        p.polls.fetch_add(1, SeqCst);
        std::thread::yield_now();
    }
    // Drain what is left, then drop the pair (released).
    while qp.rx_burst(&mut rx) > 0 {
        p.received.fetch_add(rx.drain().count() as u64, SeqCst);
    }
}

/// `lock_port` from another thread completes while a worker polls with a
/// held pair: the worker gives the queues back and does nothing while the
/// lock stands, then takes them again and its bursts work.
fn lock_port_while_polling(ring: Port, pool: &Mempool) {
    let p = Progress::default();
    std::thread::scope(|s| {
        s.spawn(|| poll(ring, 0, pool, &p));
        let _stop = StopOnDrop(&p);
        wait_until("the worker receives", || p.get().2 > 10);
        for _ in 0..3 {
            let lock = lock_port_from_another_thread(ring);
            // The lock has every slot: the worker gave its pair back. Its
            // counts are read once a poll begun under the lock has ended.
            let polls = p.get().0;
            wait_until("a poll under the lock", || p.get().0 > polls + 1);
            let (polls, sent, received) = p.get();
            wait_until("the worker polls under the lock", || p.get().0 > polls + 50);
            let (_, sent2, received2) = p.get();
            assert_eq!((sent2, received2), (sent, received), "no burst ran while the port was locked");
            drop(lock);
            wait_until("the worker receives again", || p.get().2 > received + 10);
        }
    });
    let (_, sent, received) = p.get();
    assert_eq!(sent, received, "everything sent came back");
    // The worker's pair was dropped with its thread: free for others.
    let mut rx = RxBurst::new();
    let mut tx = TxBuffer::new();
    fill(&mut tx, pool, 0, 1);
    assert_eq!(tx.flush(ring, 0), (1, 0));
    assert_eq!(ring.rx_burst(0, &mut rx), 1);
}

/// Two threads lock the port over and over, overlapping, while a worker
/// polls with a held pair and another thread holds queue 1 (not
/// configured) and polls it slowly: every lock completes (the count of
/// calls that want the port keeps both holders from claiming again while
/// either call waits; a call that waits for the slow holder would
/// otherwise wait for ever), and the worker's bursts work after.
fn overlapping_locks_while_polling(ring: Port, pool: &Mempool) {
    let p = Progress::default();
    std::thread::scope(|s| {
        s.spawn(|| poll(ring, 0, pool, &p));
        let _stop = StopOnDrop(&p);
        s.spawn(|| {
            let mut slow = ring.queue_pair(1);
            let mut rx = RxBurst::new();
            while !p.stop.load(std::sync::atomic::Ordering::SeqCst) {
                assert_eq!(slow.rx_burst(&mut rx), 0, "queue 1 is not configured");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        wait_until("the worker receives", || p.get().2 > 10);
        let (done_tx, done) = std::sync::mpsc::channel();
        for _ in 0..2 {
            let done_tx = done_tx.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    // Held a while, so that the other thread's call
                    // usually arrives meanwhile and waits.
                    let lock = queues::lock_port(ring.id());
                    std::thread::sleep(std::time::Duration::from_micros(20));
                    drop(lock);
                }
                done_tx.send(()).unwrap();
            });
        }
        for _ in 0..2 {
            done.recv_timeout(std::time::Duration::from_secs(60))
                .expect("overlapping lock_port calls complete");
        }
        let received = p.get().2;
        wait_until("the worker receives again", || p.get().2 > received + 10);
    });
    let (_, sent, received) = p.get();
    assert_eq!(sent, received, "everything sent came back");
}

/// The real control path (stop, configure, start) on a port a worker
/// polls with a held pair on queue 1: not configured at first (its bursts
/// do nothing, though it holds the slots), then configured by the change
/// (the pair reads the count again when it claims anew).
fn reconfigure_while_polling(ring: Port, pool: &Mempool) {
    let p = Progress::default();
    std::thread::scope(|s| {
        s.spawn(|| poll(ring, 1, pool, &p));
        let _stop = StopOnDrop(&p);
        wait_until("the worker polls", || p.get().0 > 10);
        assert_eq!(p.get().1, 0, "queue 1 is not configured: nothing sent");
        ring.stop();
        ring.configure(2, 2, 256, 256, pool, SOCKET_ANY).unwrap();
        ring.start().unwrap();
        wait_until("the worker receives on the new queue", || p.get().2 > 10);
    });
    let (_, sent, received) = p.get();
    assert_eq!(sent, received, "everything sent on queue 1 came back");
    // Back to one queue (the worker is gone, its pair dropped).
    ring.stop();
    ring.configure(1, 1, 256, 256, pool, SOCKET_ANY).unwrap();
    ring.start().unwrap();
    let mut rx = RxBurst::new();
    let mut tx = TxBuffer::new();
    fill(&mut tx, pool, 0, 1);
    assert_eq!(tx.flush(ring, 0), (1, 0));
    assert_eq!(ring.rx_burst(0, &mut rx), 1);
}

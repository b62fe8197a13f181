//! The exception path (issue 15): a kernel interface per port that asks for
//! one (`[[port]] kernel = "NAME"`), so that the host's own services (ssh,
//! BGP, ping from the box, health checks) use the DPDK ports.
//!
//! Each such port gets a TAP interface from DPDK's `net_tap` PMD (this
//! kernel has TUN/TAP but no vhost-net for `net_virtio_user`). At start
//! gatewayd gives it the port's MAC, MTU and address and brings it up with
//! `ip(8)` (one command each, logged; a failure refuses the start), and adds
//! the static routes (`[[route]]`) whose next hop lies behind that port and
//! the configured static neighbours (`[[neighbour]]`) of that port, so the
//! kernel reaches every host the dataplane reaches.
//!
//! The packet core decides what goes to the kernel
//! (`gw_core::engine`'s `kernel` module: what is for the port's own
//! address and no business of the dataplane, ARP replies after learning).
//! The frames travel:
//!
//! ```text
//! port rx -> worker (Action::Kernel) -> ring to_kernel[worker] -> kernel thread -> TAP tx -> kernel
//! kernel -> TAP rx -> kernel thread -> ring from_kernel[worker] -> worker -> port tx (its own queue)
//! ```
//!
//! One thread (not a worker lcore) owns every TAP port: a TAP's rx and tx
//! are `read`/`write` system calls, which never happen on a worker. The
//! rings are bounded lock-free queues (`gw_core::steer::Redirect`), one per
//! worker and direction: a worker writes only its own ring (no cache line
//! shared between workers), a full ring drops and counts (`drop_kernel_full`
//! on the worker; `from_kernel_dropped`/`to_kernel_dropped` in the TAP's
//! column of `gwctl --counters`), nothing waits.
//!
//! The kernel-to-port direction goes through a worker rather than a TX
//! queue of its own: `net_af_packet` (the labs' PMD) fixes its queue pairs
//! at probe time and fans the kernel's frames out to every rx queue it has,
//! so an extra queue pair would be an rx queue nobody polls. A worker takes
//! at most [`FROM_KERNEL_BURST`] frames per poll and sends them as they are
//! (the kernel resolved the MACs through the same port): one empty-queue
//! check per poll when the kernel is quiet, nothing per packet. The frames
//! of one TAP always go through the same worker (`port index % workers`),
//! so the kernel's TCP segments keep their order.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gw_core::route::{Iface, Route, Route6};
use gw_core::steer::Redirect;
use gw_dpdk::{Mbuf, Mempool, Port, RxBurst, TxBuffer, BURST};
use gw_proto::Counter;

use crate::config::PortConf;

/// Frames each ring (one per worker and direction) holds.
pub const KERNEL_RING: usize = 1024;
/// Most frames from the kernel a worker sends per poll.
pub const FROM_KERNEL_BURST: usize = BURST;
/// Descriptors of a TAP port's queues.
const TAP_DESC: u16 = 512;
/// The thread's sleep when nothing moved in a round.
const IDLE_SLEEP: Duration = Duration::from_micros(200);

/// The DPDK device name and EAL argument of port `i`'s kernel interface
/// `name` (`net_tap_kernel<i>`, so it cannot collide with a TAP port the
/// operator configured as a device).
pub fn tap_vdev(i: usize, name: &str) -> (String, String) {
    let dev = format!("net_tap_kernel{i}");
    (format!("--vdev={dev},iface={name}"), dev)
}

/// The rings between the workers and the kernel thread.
#[derive(Clone)]
pub struct KernelRings {
    /// Frames for the kernel: worker `w` writes inbox `w` (port id, frame).
    pub to_kernel: Redirect<Mbuf>,
    /// Frames from the kernel: worker `w` reads inbox `w` (port id, frame).
    pub from_kernel: Redirect<Mbuf>,
}

impl KernelRings {
    /// Rings for `workers` workers.
    pub fn new(workers: usize) -> KernelRings {
        KernelRings {
            to_kernel: Redirect::new(workers, KERNEL_RING),
            from_kernel: Redirect::new(workers, KERNEL_RING),
        }
    }
}

/// What the kernel thread counts (it is their only writer).
#[derive(Debug, Default)]
pub struct KernelStats {
    to_kernel: AtomicU64,
    to_kernel_dropped: AtomicU64,
    from_kernel: AtomicU64,
    from_kernel_dropped: AtomicU64,
}

impl KernelStats {
    fn add(c: &AtomicU64, n: u64) {
        c.store(c.load(Relaxed) + n, Relaxed);
    }
}

/// One port's kernel interface.
#[derive(Clone)]
pub struct Tap {
    /// The kernel interface's name.
    pub name: String,
    /// The DPDK port it belongs to.
    pub port: Port,
    /// Its `net_tap` port.
    pub tap: Port,
    /// Its counters.
    pub stats: Arc<KernelStats>,
}

impl Tap {
    /// Counters for `gwctl --counters`' TAP column, after the TAP port's
    /// own statistics.
    pub fn counters(&self) -> Vec<Counter> {
        let c = |name: &str, v: &AtomicU64| Counter { name: name.to_string(), value: v.load(Relaxed) };
        vec![
            c("to_kernel", &self.stats.to_kernel),
            c("to_kernel_dropped", &self.stats.to_kernel_dropped),
            c("from_kernel", &self.stats.from_kernel),
            c("from_kernel_dropped", &self.stats.from_kernel_dropped),
        ]
    }
}

/// Brings up the kernel interface of every port of `confs` that asks for
/// one: its `net_tap` port (one queue pair, mbufs from `pool`), then, in the
/// kernel, the MAC, MTU and address of the port (`ifaces`, in the order of
/// `confs`), the link up, the `routes` and `routes6` through that port
/// and its static `neighbours`.
#[allow(clippy::too_many_arguments)]
pub fn start_taps(
    confs: &[PortConf],
    ports: &[Port],
    ifaces: &[Iface],
    routes: &[Route],
    routes6: &[Route6],
    neighbours: &[gw_proto::StaticNeighbour],
    pool: &Mempool,
    socket: i32,
) -> Result<Vec<Tap>> {
    let mut taps = vec![];
    for (i, pc) in confs.iter().enumerate() {
        let Some(name) = &pc.kernel else { continue };
        let dev = tap_vdev(i, name).1;
        let tap = Port::by_name(&dev).with_context(|| format!("port[{i}].kernel: {dev} not found"))?;
        tap.configure(1, 1, TAP_DESC, TAP_DESC, pool, socket)
            .with_context(|| format!("port[{i}].kernel: configuring {dev}"))?;
        tap.start().with_context(|| format!("port[{i}].kernel: starting {dev}"))?;
        let iface = &ifaces[i];
        let mac = iface.mac.to_string();
        let addr = format!("{}/{}", iface.addr, iface.prefix);
        ip(&["link", "set", "dev", name, "address", &mac, "mtu", &iface.mtu.to_string()])?;
        ip(&["addr", "replace", &addr, "dev", name])?;
        // A dual-stack port's IPv6 address too, without duplicate address
        // detection: the dataplane answers neighbour solicitations for it.
        if let Some((a6, p6)) = iface.addr6 {
            ip(&["addr", "replace", &format!("{a6}/{p6}"), "dev", name, "nodad"])?;
        }
        ip(&["link", "set", "dev", name, "up"])?;
        for r in routes.iter().filter(|r| r.port == ports[i].id()) {
            let Some(via) = r.via else { continue };
            let net = format!("{}/{}", std::net::Ipv4Addr::from(r.net), r.prefix);
            let via = std::net::Ipv4Addr::from(via).to_string();
            ip(&["route", "replace", &net, "via", &via, "dev", name])?;
        }
        for r in routes6.iter().filter(|r| r.port == ports[i].id()) {
            let Some(via) = r.via else { continue };
            let net = format!("{}/{}", std::net::Ipv6Addr::from(r.net), r.prefix);
            let via = std::net::Ipv6Addr::from(via).to_string();
            ip(&["-6", "route", "replace", &net, "via", &via, "dev", name])?;
        }
        // The configured static neighbours answer no ARP: the kernel gets
        // them as permanent entries (gwctl's changes at run time stay the
        // dataplane's).
        for n in neighbours.iter().filter(|n| n.port == pc.name) {
            let lladdr = gw_core::wire::ethernet::MacAddr(n.mac).to_string();
            ip(&[
                "neigh",
                "replace",
                &n.addr.to_string(),
                "lladdr",
                &lladdr,
                "dev",
                name,
                "nud",
                "permanent",
            ])?;
        }
        tracing::info!(port = ports[i].id(), kernel = %name, %addr, %mac, "kernel interface up (exception path)");
        taps.push(Tap { name: name.clone(), port: ports[i], tap, stats: Default::default() });
    }
    Ok(taps)
}

/// Runs `ip ARGS`, or says why it failed.
fn ip(args: &[&str]) -> Result<()> {
    let out =
        Command::new("ip").args(args).output().with_context(|| format!("running ip {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    tracing::debug!(cmd = %args.join(" "), "ip");
    Ok(())
}

/// The thread that owns the TAP ports.
pub struct KernelLoop {
    pub taps: Vec<Tap>,
    pub rings: KernelRings,
    pub stop: Arc<AtomicBool>,
}

impl KernelLoop {
    /// Moves frames between the rings and the TAP ports until `stop`.
    pub fn run(self) {
        let workers = self.rings.to_kernel.workers();
        let mut tx: Vec<TxBuffer> = self.taps.iter().map(|_| TxBuffer::new()).collect();
        let mut rx = RxBurst::new();
        while !self.stop.load(Relaxed) {
            let mut moved = 0;
            for w in 0..workers {
                for _ in 0..BURST * 2 {
                    let Some((port, m)) = self.rings.to_kernel.recv(w as u32) else { break };
                    moved += 1;
                    let Some(i) = self.taps.iter().position(|t| t.port.id() == port) else {
                        continue; // Never: a worker punts only on a port with a TAP.
                    };
                    if tx[i].is_full() {
                        self.flush(i, &mut tx[i]);
                    }
                    if tx[i].push(m).is_err() {
                        KernelStats::add(&self.taps[i].stats.to_kernel_dropped, 1);
                    }
                }
            }
            for (i, t) in tx.iter_mut().enumerate() {
                if !t.is_empty() {
                    self.flush(i, t);
                }
            }
            for (i, tap) in self.taps.iter().enumerate() {
                let n = tap.tap.rx_burst(0, &mut rx);
                if n == 0 {
                    continue;
                }
                moved += n;
                let w = (i % workers) as u32;
                let (mut sent, mut dropped) = (0, 0);
                for m in rx.drain() {
                    match self.rings.from_kernel.send(w, tap.port.id(), m) {
                        Ok(()) => sent += 1,
                        Err(m) => {
                            drop(m);
                            dropped += 1;
                        }
                    }
                }
                KernelStats::add(&tap.stats.from_kernel, sent);
                KernelStats::add(&tap.stats.from_kernel_dropped, dropped);
            }
            if moved == 0 {
                std::thread::sleep(IDLE_SLEEP);
            }
        }
        for mut t in tx {
            t.clear();
        }
    }

    fn flush(&self, i: usize, t: &mut TxBuffer) {
        let (sent, dropped) = t.flush(self.taps[i].tap, 0);
        KernelStats::add(&self.taps[i].stats.to_kernel, sent as u64);
        KernelStats::add(&self.taps[i].stats.to_kernel_dropped, dropped as u64);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tap_device_is_named_after_the_port_index() {
        assert_eq!(
            super::tap_vdev(1, "gw-inside"),
            ("--vdev=net_tap_kernel1,iface=gw-inside".to_string(), "net_tap_kernel1".to_string())
        );
    }
}

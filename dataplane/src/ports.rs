//! The DPDK ports: bringing them up from the configuration, the NIC flow
//! rules (rte_flow) that steer FULLNAT replies to their worker's queue, and
//! the reader of their statistics ([`PortStatsReader`]).
//!
//! Steering policy: a FULLNAT reply must reach the worker that owns its
//! destination (local) port, i.e. worker `lport % workers` (see
//! `gw_core::steer`). Software steering does this always, by handing frames
//! between workers; where the NIC accepts flow rules and the worker count is
//! a power of two, [`FlowSteering`] adds rules matching each local address's
//! port bits so the NIC delivers replies to the right queue directly. A port
//! that refuses a rule once is left to software for good; rules follow the
//! set of local addresses after every control-plane change.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use anyhow::{Context, Result};
use gw_core::route::Iface;
use gw_core::wire::ethernet::MacAddr;
use gw_dpdk::{self as dpdk, Mempool, Port};
use gw_proto::{Counter, PortCounters};

use crate::config::PortConf;

/// The IP protocols whose replies are steered: TCP and UDP (IANA numbers).
const STEERED_PROTOCOLS: [u8; 2] = [6, 17];

/// NIC flow rules that put each local address's replies on the queue of the
/// worker owning their destination port (`gw_core::steer` does the same in
/// software, always). Needs a power-of-two worker count and a port that
/// accepts the rules; a port that refuses once is left to software.
pub struct FlowSteering {
    ports: Vec<Port>,
    workers: u16,
    state: Mutex<FlowState>,
}

#[derive(Default)]
struct FlowState {
    refused: HashSet<u16>,
    rules: HashMap<(u16, Ipv4Addr), Vec<dpdk::FlowRule>>,
}

impl FlowSteering {
    /// Steering for `ports`, each with one rx queue per worker.
    pub fn new(ports: Vec<Port>, workers: u16) -> FlowSteering {
        FlowSteering { ports, workers, state: Default::default() }
    }

    /// Rules for exactly the local addresses `laddrs` (sorted, as the
    /// control plane's hook gives them) on every willing port.
    pub fn reconcile(&self, laddrs: &[Ipv4Addr]) {
        if self.workers < 2 || !self.workers.is_power_of_two() {
            return;
        }
        debug_assert!(laddrs.is_sorted());
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.rules.retain(|(_, a), _| laddrs.binary_search(a).is_ok());
        for port in &self.ports {
            for addr in laddrs {
                if st.refused.contains(&port.id()) || st.rules.contains_key(&(port.id(), *addr)) {
                    continue;
                }
                let mut made = vec![];
                let result = STEERED_PROTOCOLS.iter().try_for_each(|proto| {
                    (0..self.workers).try_for_each(|w| {
                        made.push(port.steer_local_ports(*addr, *proto, w, self.workers)?);
                        Ok::<(), dpdk::DpdkError>(())
                    })
                });
                match result {
                    Ok(()) => {
                        tracing::info!(port = port.id(), %addr, rules = made.len(), "replies steered by flow rules");
                        st.rules.insert((port.id(), *addr), made);
                    }
                    Err(e) => {
                        tracing::info!(port = port.id(), error = %e, "no flow rules on this port: software steering");
                        st.refused.insert(port.id());
                    }
                }
            }
        }
    }
}

/// Finds, configures and starts every port; returns them with their
/// interfaces (address, MAC) in config order.
pub fn start_ports(
    confs: &[PortConf],
    queues: u16,
    pool: &Mempool,
    socket: i32,
) -> Result<(Vec<Port>, Vec<Iface>)> {
    let mut ports = vec![];
    let mut ifaces = vec![];
    for (i, pc) in confs.iter().enumerate() {
        let name = pc.eal_device().1;
        let port = Port::by_name(&name).with_context(|| format!("port[{i}].device: {name} not found"))?;
        port.configure(queues, queues, pc.rx_desc, pc.tx_desc, pool, socket)
            .with_context(|| format!("port[{i}]: configuring {name}"))?;
        set_mtu(i, pc, &port)?;
        // The gateway answers for its own addresses, VIPs and local
        // addresses with its MAC and filters by destination MAC itself.
        port.set_promiscuous(true);
        port.start().with_context(|| format!("port[{i}]: starting {name}"))?;
        let mac = match pc.mac {
            Some(m) => m,
            None => MacAddr(port.mac_addr().with_context(|| format!("port[{i}]: reading the MAC"))?),
        };
        tracing::info!(port = port.id(), name = %pc.name, device = %pc.device, addr = %pc.addr, %mac, "port up");
        ifaces.push(pc.iface(port.id(), mac));
        ports.push(port);
    }
    Ok((ports, ifaces))
}

/// Ethernet header and CRC: a device's largest frame is its MTU plus these.
const FRAME_OVERHEAD: u32 = 18;

/// Sets port `i`'s device MTU (the mbufs and af_packet ring frames were
/// sized for it: `Config::mbuf_size`), or refuses clearly when the device
/// cannot take it. DPDK 22.11's af_packet driver reports 1,518-byte frames
/// at most, and so refuses any larger MTU, yet receives whatever its ring
/// frames hold: for it the kernel interface's MTU is the operator's (`ip
/// link set IFACE mtu N`), checked here.
fn set_mtu(i: usize, pc: &PortConf, port: &Port) -> Result<()> {
    let name = pc.eal_device().1;
    let (min, max, max_frame) = port.mtu_limits().with_context(|| format!("port[{i}]: {name}'s limits"))?;
    let frame = u32::from(pc.mtu) + FRAME_OVERHEAD;
    if let Some(iface) = af_packet_iface(&pc.device).filter(|_| max_frame < frame) {
        let path = format!("/sys/class/net/{iface}/mtu");
        let kernel: u16 = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .with_context(|| format!("port[{i}].mtu: reading {path}"))?;
        return check_kernel_mtu(i, pc.mtu, &iface, kernel);
    }
    if !(min..=max).contains(&pc.mtu) || max_frame < frame {
        anyhow::bail!(
            "port[{i}].mtu: {} is beyond what {name} supports (MTU {min}..={max}, frames up to {max_frame} bytes)",
            pc.mtu
        );
    }
    port.set_mtu(pc.mtu).with_context(|| format!("port[{i}].mtu: {name} refuses MTU {}", pc.mtu))
}

/// An af_packet port's kernel interface `iface`, at MTU `kernel`, carries
/// frames of the configured `mtu`.
fn check_kernel_mtu(i: usize, mtu: u16, iface: &str, kernel: u16) -> Result<()> {
    if kernel < mtu {
        anyhow::bail!(
            "port[{i}].mtu: {mtu} needs the kernel interface {iface} at MTU {mtu} or more (it is {kernel}; \
             DPDK's af_packet driver cannot set it: ip link set {iface} mtu {mtu})"
        );
    }
    Ok(())
}

/// Reads the statistics of every port for the control plane
/// ([`crate::control::Control::with_port_stats`], every
/// [`crate::control::PORT_STATS_PERIOD`] on the control thread; workers
/// never read them).
///
/// `rte_eth_stats` of each port, named as DPDK names them, then per queue
/// (the first [`dpdk::QUEUE_STAT_CNTRS`] of the port's queues) `qN_*`.
/// `imissed` also counts, for a `net_af_packet` port, the frames the
/// kernel dropped because the socket's rx ring was full
/// ([`dpdk::packet_ring_drops`]): DPDK 22.11's af_packet driver leaves
/// `imissed` at 0, so without this a worker too slow for its traffic
/// lost frames without a trace.
pub struct PortStatsReader {
    ports: Vec<ReadPort>,
    taps: Vec<crate::kernel::Tap>,
}

struct ReadPort {
    name: String,
    port: Port,
    queues: u16,
    /// The kernel interface of a `net_af_packet` port.
    packet_iface: Option<String>,
    /// Its kernel ring drops so far (the kernel resets them on each read).
    ring_drops: Mutex<u64>,
}

impl PortStatsReader {
    /// A reader of `ports` (as [`start_ports`] returned them, in the order
    /// of `confs`), each with `queues` queue pairs.
    pub fn new(confs: &[PortConf], ports: &[Port], queues: u16) -> PortStatsReader {
        let ports = confs
            .iter()
            .zip(ports)
            .map(|(c, p)| ReadPort {
                name: c.name.clone(),
                port: *p,
                queues,
                packet_iface: af_packet_iface(&c.device),
                ring_drops: Mutex::new(0),
            })
            .collect();
        PortStatsReader { ports, taps: vec![] }
    }

    /// Also the kernel interfaces `taps` (the exception path), each a
    /// column named as the interface, with the kernel thread's counters.
    pub fn with_taps(mut self, taps: &[crate::kernel::Tap]) -> PortStatsReader {
        self.taps = taps.to_vec();
        self
    }

    /// Every port's statistics now.
    pub fn read(&self) -> Vec<PortCounters> {
        let mut all: Vec<PortCounters> = self.ports.iter().map(ReadPort::read).collect();
        for t in &self.taps {
            let mut c = ReadPort::tap(t).read();
            c.counters.extend(t.counters());
            all.push(c);
        }
        all
    }
}

impl ReadPort {
    fn tap(t: &crate::kernel::Tap) -> ReadPort {
        ReadPort {
            name: t.name.clone(),
            port: t.tap,
            queues: 1,
            packet_iface: None,
            ring_drops: Mutex::new(0),
        }
    }

    fn read(&self) -> PortCounters {
        let s = self.port.stats();
        let mut imissed = s.imissed;
        if let Some(iface) = &self.packet_iface {
            let mut total = self.ring_drops.lock().unwrap_or_else(|e| e.into_inner());
            match dpdk::packet_ring_drops(iface) {
                Ok(n) => *total += n,
                Err(e) => tracing::debug!(port = %self.name, %iface, error = %e, "af_packet ring drops"),
            }
            imissed += *total;
        }
        let c = |name: &str, value| Counter { name: name.to_string(), value };
        let mut counters = vec![
            c("ipackets", s.ipackets),
            c("opackets", s.opackets),
            c("ibytes", s.ibytes),
            c("obytes", s.obytes),
            c("imissed", imissed),
            c("ierrors", s.ierrors),
            c("oerrors", s.oerrors),
            c("rx_nombuf", s.rx_nombuf),
        ];
        for (q, qs) in s.queues.iter().enumerate().take(usize::from(self.queues)) {
            counters.extend([
                c(&format!("q{q}_ipackets"), qs.ipackets),
                c(&format!("q{q}_opackets"), qs.opackets),
                c(&format!("q{q}_ibytes"), qs.ibytes),
                c(&format!("q{q}_obytes"), qs.obytes),
                c(&format!("q{q}_errors"), qs.errors),
            ]);
        }
        PortCounters { name: self.name.clone(), port: self.port.id(), counters }
    }
}

/// The kernel interface of a `net_af_packet` device (`net_af_packetN,iface=NAME,...`).
fn af_packet_iface(device: &str) -> Option<String> {
    let mut parts = device.split(',');
    if !parts.next()?.starts_with("net_af_packet") {
        return None;
    }
    parts.find_map(|kv| kv.strip_prefix("iface=")).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::af_packet_iface;

    #[test]
    fn an_af_packet_jumbo_port_needs_its_kernel_interface_at_that_mtu() {
        assert!(super::check_kernel_mtu(0, 9000, "gw0", 9000).is_ok());
        assert!(super::check_kernel_mtu(0, 1500, "gw0", 9000).is_ok());
        let e = super::check_kernel_mtu(1, 9000, "gw1", 1500).unwrap_err().to_string();
        assert_eq!(
            e,
            "port[1].mtu: 9000 needs the kernel interface gw1 at MTU 9000 or more (it is 1500; \
             DPDK's af_packet driver cannot set it: ip link set gw1 mtu 9000)"
        );
    }

    #[test]
    fn the_kernel_interface_of_an_af_packet_device() {
        assert_eq!(af_packet_iface("net_af_packet0,iface=gw0"), Some("gw0".into()));
        assert_eq!(af_packet_iface("net_af_packet1,qpairs=2,iface=gw1,framecnt=64"), Some("gw1".into()));
        assert_eq!(af_packet_iface("net_tap0,iface=gw0"), None);
        assert_eq!(af_packet_iface("0000:01:00.0"), None);
        assert_eq!(af_packet_iface("net_af_packet0"), None);
    }
}

//! The DPDK ports: bringing them up from the configuration, and the NIC
//! flow rules (rte_flow) that steer FULLNAT replies to their worker's queue.
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

    /// Rules for exactly the local addresses `laddrs` on every willing port.
    pub fn reconcile(&self, laddrs: &[Ipv4Addr]) {
        if self.workers < 2 || !self.workers.is_power_of_two() {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.rules.retain(|(_, a), _| laddrs.contains(a));
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

//! [`Port`]: an ethdev port's control path (lookup, configure, start,
//! stop, close, link, MAC, stats). The data path is in `burst.rs`.
//!
//! Every call here holds an EAL [`Hold`] and, if it changes the port, all
//! of the port's queues (`queues.rs`: it waits for a burst in progress to
//! end and for a worker holding a queue across polls to give it back at
//! its next burst), so it never races a burst. A
//! configured port keeps a handle to each mempool its rx queues allocate
//! from, until [`Port::close`].

use std::ffi::{c_char, CStr, CString};
use std::sync::{Arc, Mutex, PoisonError};

use dpdk_sys as sys;

use super::eal::Hold;
use super::error::{check, DpdkError};
use super::mempool::{Mempool, PoolInner};
use super::queues::{lock_port, MAX_QUEUES};

/// An ethdev port id. `Copy`, `Send` and `Sync`: every method is safe to
/// call from any thread (see the module docs for how).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Port {
    id: u16,
}

/// How many queues DPDK counts one by one (`RTE_ETHDEV_QUEUE_STAT_CNTRS`).
pub const QUEUE_STAT_CNTRS: usize = sys::RTE_ETHDEV_QUEUE_STAT_CNTRS as usize;

/// Counters of one queue pair (`rte_eth_stats`'s `q_*` arrays); zeros
/// where the driver does not count per queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Packets of this rx queue dropped in error (`q_errors`).
    pub errors: u64,
}

/// Basic counters of a port (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Dropped by the NIC: no rx descriptor free.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// Rx failures for want of an mbuf.
    pub rx_nombuf: u64,
    /// The first [`QUEUE_STAT_CNTRS`] queues, by queue id.
    pub queues: [QueueStats; QUEUE_STAT_CNTRS],
}

/// Mempools used by configured ports: kept alive until the port closes.
static PORT_POOLS: Mutex<Vec<(u16, Arc<PoolInner>)>> = Mutex::new(Vec::new());

impl Port {
    /// The port named `name`: a vdev's name is its devargs up to the first
    /// ',' (`net_af_packet0`), a PCI device's is its address (`0000:01:00.0`).
    pub fn by_name(name: &str) -> Result<Port, DpdkError> {
        const OP: &str = "rte_eth_dev_get_port_by_name";
        let cname = CString::new(name)
            .map_err(|_| DpdkError::InvalidArgument { op: OP, reason: "name contains a NUL byte" })?;
        let _hold = Hold::acquire(OP)?;
        let mut id = 0u16;
        // SAFETY: EAL is running (hold); cname is NUL-terminated; id is a
        // valid place for the result.
        check(OP, unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) })?;
        Ok(Port { id })
    }

    /// All ports, in id order.
    pub fn all() -> Result<Vec<Port>, DpdkError> {
        let _hold = Hold::acquire("rte_eth_find_next")?;
        let mut out = Vec::new();
        let mut id = 0u16;
        loop {
            // SAFETY: EAL is running (hold); any start id is accepted, and
            // the result is a valid port id or RTE_MAX_ETHPORTS.
            id = unsafe { sys::rte_eth_find_next(id) };
            if u32::from(id) >= sys::RTE_MAX_ETHPORTS {
                return Ok(out);
            }
            out.push(Port { id });
            id += 1;
        }
    }

    /// The port's id.
    #[inline]
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The port's device name (as [`Port::by_name`] takes it).
    pub fn name(&self) -> Result<String, DpdkError> {
        const OP: &str = "rte_eth_dev_get_name_by_port";
        let _hold = Hold::acquire(OP)?;
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: EAL is running; buf has the RTE_ETH_NAME_MAX_LEN bytes
        // the call may write, NUL included.
        check(OP, unsafe { sys::rte_eth_dev_get_name_by_port(self.id, buf.as_mut_ptr()) })?;
        // SAFETY: on success buf holds a NUL-terminated string.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
    }

    /// NUMA socket the device is attached to (-1 if unknown).
    pub fn socket_id(&self) -> i32 {
        let Ok(_hold) = Hold::acquire("rte_eth_dev_socket_id") else {
            return sys::SOCKET_ID_ANY;
        };
        // SAFETY: EAL is running; the call validates the id.
        unsafe { sys::rte_eth_dev_socket_id(self.id) }
    }

    /// Configures `rx_queues` rx and `tx_queues` tx queues of `rx_desc`
    /// and `tx_desc` descriptors (adjusted to the device's limits), rx
    /// buffers from `pool`, memory on `socket`. With more than one rx queue
    /// RSS spreads IP/TCP/UDP flows over them, as far as the device
    /// supports it. The port must be stopped.
    pub fn configure(
        &self,
        rx_queues: u16,
        tx_queues: u16,
        rx_desc: u16,
        tx_desc: u16,
        pool: &Mempool,
        socket: i32,
    ) -> Result<(), DpdkError> {
        const OP: &str = "rte_eth_dev_configure";
        if rx_queues > MAX_QUEUES || tx_queues > MAX_QUEUES {
            return Err(DpdkError::InvalidArgument { op: OP, reason: "more than 64 queues" });
        }
        if rx_queues == 0 && tx_queues == 0 {
            return Err(DpdkError::InvalidArgument { op: OP, reason: "no queues" });
        }
        let _hold = Hold::acquire(OP)?;
        let lock = lock_port(self.id);
        // Refused before anything changed (e.g. the port is started): the
        // old queues stand. Failed later: the queues are in an unknown
        // state, so bursts must not use any.
        let result = self.configure_locked(rx_queues, tx_queues, rx_desc, tx_desc, pool, socket);
        match &result {
            Ok(()) => lock.set_counts(rx_queues, tx_queues),
            Err(DpdkError::Call { op: OP, errno, .. }) if *errno == libc::EBUSY => {}
            Err(_) => lock.set_counts(0, 0),
        }
        result
    }

    /// [`Port::configure`]'s work; the caller holds the port's queues.
    fn configure_locked(
        &self,
        rx_queues: u16,
        tx_queues: u16,
        rx_desc: u16,
        tx_desc: u16,
        pool: &Mempool,
        socket: i32,
    ) -> Result<(), DpdkError> {
        const OP: &str = "rte_eth_dev_configure";
        let info = self.dev_info()?;
        let mut conf = sys::rte_eth_conf::default();
        if rx_queues > 1 {
            let wanted = u64::from(sys::RTE_ETH_RSS_IP | sys::RTE_ETH_RSS_TCP | sys::RTE_ETH_RSS_UDP);
            let rss_hf = wanted & info.flow_type_rss_offloads;
            if rss_hf == 0 {
                tracing::warn!(
                    port = self.id,
                    "device reports no IP/TCP/UDP RSS offload: queues get what the driver spreads (af_packet: the kernel's PACKET_FANOUT) or queue 0; gatewayd steers each packet to its owning worker either way"
                );
            } else {
                conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            }
        }
        // SAFETY: EAL is running (caller's hold); the port is not polled
        // (caller's lock); conf is a fully initialised rte_eth_conf, copied.
        check(OP, unsafe { sys::rte_eth_dev_configure(self.id, rx_queues, tx_queues, &conf) })?;

        let (mut rxd, mut txd) = (rx_desc, tx_desc);
        // SAFETY: EAL is running; both pointers are to live u16s.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rxd, &mut txd)
        })?;
        // The device's limits moved a configured count (`rx_desc`,
        // `tx_desc`): said once, with both figures, so a ring smaller
        // than configured is never a surprise under load.
        if (rxd, txd) != (rx_desc, tx_desc) {
            tracing::warn!(
                port = self.id,
                rx_desc,
                rx_desc_used = rxd,
                tx_desc,
                tx_desc_used = txd,
                "the device's descriptor limits changed the configured ring sizes"
            );
        }

        if rx_queues > 0 {
            // The rx queues allocate from the pool from now on.
            let mut pools = PORT_POOLS.lock().unwrap_or_else(PoisonError::into_inner);
            if !pools.iter().any(|(id, p)| *id == self.id && Mempool::same_pool(p, pool)) {
                pools.push((self.id, pool.share()));
            }
        }
        // DPDK takes the socket as unsigned; SOCKET_ID_ANY (-1) wraps as it expects.
        let socket = socket as u32;
        for q in 0..rx_queues {
            // SAFETY: EAL is running (caller's hold); the port is configured
            // and not polled (caller's lock); NULL rxconf means the device's defaults; the pool is
            // a live pktmbuf pool, kept alive by PORT_POOLS until close.
            check("rte_eth_rx_queue_setup", unsafe {
                sys::rte_eth_rx_queue_setup(self.id, q, rxd, socket, std::ptr::null(), pool.as_ptr())
            })?;
        }
        for q in 0..tx_queues {
            // SAFETY: as for the rx queues; NULL txconf means defaults.
            check("rte_eth_tx_queue_setup", unsafe {
                sys::rte_eth_tx_queue_setup(self.id, q, txd, socket, std::ptr::null())
            })?;
        }
        Ok(())
    }

    /// Starts the port (`rte_eth_dev_start`).
    pub fn start(&self) -> Result<(), DpdkError> {
        const OP: &str = "rte_eth_dev_start";
        let _hold = Hold::acquire(OP)?;
        let _lock = lock_port(self.id);
        // SAFETY: EAL is running; the port is not polled (lock).
        check(OP, unsafe { sys::rte_eth_dev_start(self.id) }).map(drop)
    }

    /// Stops the port; errors are logged.
    pub fn stop(&self) {
        const OP: &str = "rte_eth_dev_stop";
        let Ok(_hold) = Hold::acquire(OP) else { return };
        let _lock = lock_port(self.id);
        // SAFETY: EAL is running; the port is not polled (lock).
        if let Err(e) = check(OP, unsafe { sys::rte_eth_dev_stop(self.id) }) {
            tracing::warn!(port = self.id, error = %e, "stop");
        }
    }

    /// Stops and closes the port, releasing its queues and its mempool
    /// handles. The id is invalid afterwards: every call on it fails, and
    /// bursts on it do nothing.
    pub fn close(&self) -> Result<(), DpdkError> {
        const OP: &str = "rte_eth_dev_close";
        let _hold = Hold::acquire(OP)?;
        let lock = lock_port(self.id);
        lock.set_counts(0, 0);
        // SAFETY: EAL is running; the port is not polled (lock). Stopping a
        // stopped port is harmless.
        unsafe { sys::rte_eth_dev_stop(self.id) };
        // SAFETY: as above; the port is stopped.
        check(OP, unsafe { sys::rte_eth_dev_close(self.id) })?;
        PORT_POOLS.lock().unwrap_or_else(PoisonError::into_inner).retain(|(id, _)| *id != self.id);
        Ok(())
    }

    /// The device's MTU range and largest frame (`min_mtu`, `max_mtu`,
    /// `max_rx_pktlen` of `rte_eth_dev_info`).
    pub fn mtu_limits(&self) -> Result<(u16, u16, u32), DpdkError> {
        let _hold = Hold::acquire("rte_eth_dev_info_get")?;
        let info = self.dev_info()?;
        Ok((info.min_mtu, info.max_mtu, info.max_rx_pktlen))
    }

    /// Sets the device's MTU (`rte_eth_dev_set_mtu`; af_packet: the kernel
    /// interface's). A driver without MTU support (`ENOTSUP`) is accepted
    /// when its MTU already is `mtu`.
    pub fn set_mtu(&self, mtu: u16) -> Result<(), DpdkError> {
        const OP: &str = "rte_eth_dev_set_mtu";
        let _hold = Hold::acquire(OP)?;
        // SAFETY: EAL is running; the call validates the port id and the MTU
        // against the device's limits.
        let ret = unsafe { sys::rte_eth_dev_set_mtu(self.id, mtu) };
        if ret == -libc::ENOTSUP {
            let mut now = 0u16;
            // SAFETY: EAL is running; `now` is a valid place for the result.
            if unsafe { sys::rte_eth_dev_get_mtu(self.id, &mut now) } == 0 && now == mtu {
                return Ok(());
            }
        }
        check(OP, ret).map(|_| ())
    }

    /// Enables or disables promiscuous mode; errors are logged.
    pub fn set_promiscuous(&self, on: bool) {
        const OP: &str = "rte_eth_promiscuous_enable/disable";
        let Ok(_hold) = Hold::acquire(OP) else { return };
        // SAFETY: EAL is running; the calls validate the port id.
        let ret = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        if let Err(e) = check(OP, ret) {
            tracing::warn!(port = self.id, error = %e, "promiscuous");
        }
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6], DpdkError> {
        const OP: &str = "rte_eth_macaddr_get";
        let _hold = Hold::acquire(OP)?;
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: EAL is running; addr is a valid place for the result.
        check(OP, unsafe { sys::rte_eth_macaddr_get(self.id, &mut addr) })?;
        Ok(addr.addr_bytes)
    }

    /// Whether the link is up, without waiting.
    pub fn link_up(&self) -> bool {
        const OP: &str = "rte_eth_link_get_nowait";
        let Ok(_hold) = Hold::acquire(OP) else {
            return false;
        };
        let mut link = sys::rte_eth_link::default();
        // SAFETY: EAL is running; link is a valid place for the result.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.id, &mut link) };
        ret == 0 && link.link_status() != 0
    }

    /// The port's counters; zeros if they cannot be read (logged).
    pub fn stats(&self) -> PortStats {
        const OP: &str = "rte_eth_stats_get";
        let Ok(_hold) = Hold::acquire(OP) else {
            return PortStats::default();
        };
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: EAL is running; s is a valid place for the result.
        if let Err(e) = check(OP, unsafe { sys::rte_eth_stats_get(self.id, &mut s) }) {
            tracing::debug!(port = self.id, error = %e, "stats");
            return PortStats::default();
        }
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            queues: std::array::from_fn(|q| QueueStats {
                ipackets: s.q_ipackets[q],
                opackets: s.q_opackets[q],
                ibytes: s.q_ibytes[q],
                obytes: s.q_obytes[q],
                errors: s.q_errors[q],
            }),
        }
    }

    /// Device capabilities; the caller holds a [`Hold`].
    fn dev_info(&self) -> Result<sys::rte_eth_dev_info, DpdkError> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: EAL is running (caller's hold); info is a valid place for
        // the result; DPDK fills it on success.
        check("rte_eth_dev_info_get", unsafe { sys::rte_eth_dev_info_get(self.id, &mut info) })?;
        Ok(info)
    }
}

//! Safe wrappers over DPDK: EAL, lcores, mempools, mbufs, ports and bursts.
//!
//! This module is the only place in gatewayd with `unsafe`; every block
//! names the invariant it relies on in a `// SAFETY:` comment. The rest of
//! the dataplane sees plain Rust types: an [`Mbuf`] is `AsRef<[u8]>` +
//! `AsMut<[u8]>`, so the packet views in `wire` run on it unchanged.
//!
//! Invariants the wrappers keep:
//! * Ownership: an [`Mbuf`] owns one mbuf and frees it on drop. [`RxBurst`]
//!   and [`TxBuffer`] own the raw pointers they hold and free whatever was
//!   neither handed out nor transmitted. Nothing is leaked on any path.
//! * Lifetime of EAL memory: `rte_eal_cleanup` unmaps all DPDK memory, after
//!   which any pointer into it dangles. [`Eal`]'s drop therefore runs it only
//!   when no mempool is alive (a pool with mbufs out is never freed, so no
//!   mbuf can outlive it) and no control call is in flight; otherwise it
//!   leaves the memory to the OS at exit. See `eal.rs`.
//! * Hot path (rx burst, drain, mbuf data access, push, flush) makes no
//!   allocation, takes no lock and makes no system call. Data access reads
//!   the `rte_mbuf` fields directly instead of calling into C.

mod burst;
mod eal;
mod error;
mod flow;
pub mod huge;
mod lcore;
mod mbuf;
mod mempool;
mod packet_socket;
mod port;
mod prefetch;
mod queues;
mod signal;

#[cfg(test)]
mod tests;

pub use burst::{Drain, QueuePair, RxBurst, TxBuffer, BURST};
pub use eal::Eal;
pub use error::DpdkError;
pub use flow::FlowRule;
pub use lcore::{lcore_id, tsc, tsc_hz};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use packet_socket::packet_ring_drops;
pub use port::{Port, PortStats, QueueStats, QUEUE_STAT_CNTRS};
pub use prefetch::{prefetch, prefetch_addr};
pub use signal::{reload_on_sighup, stop_on_signals};

/// The raw bindings, for what the safe layer does not cover yet.
pub use dpdk_sys as sys;

/// Directory of the shared poll-mode drivers of the DPDK we were built
/// against, for EAL's `-d` option. Debian's EAL loads it by itself.
pub const PMD_DIR: Option<&str> = dpdk_sys::PMD_DIR;

/// Default mbuf data room: 2048 bytes of packet plus the 128-byte headroom
/// (`RTE_MBUF_DEFAULT_BUF_SIZE`).
pub const DEFAULT_DATA_ROOM: u16 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

/// "Any NUMA socket" (`SOCKET_ID_ANY`) for [`Mempool::new`] and [`Port::configure`].
pub const SOCKET_ANY: i32 = dpdk_sys::SOCKET_ID_ANY;

//! gatewayd, the daemon: its configuration file, the control plane behind
//! `gwctl`'s socket, and the poll loop that runs the packet core
//! (`gw-core`) on DPDK ports (`gw-dpdk`).

mod client_slots;
pub mod config;
pub mod control;
pub mod engine_config;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod keepalived;
pub mod limits;
pub mod metrics;
pub mod sd_notify;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "dpdk")]
pub mod io;
#[cfg(feature = "dpdk")]
pub mod kernel;
#[cfg(feature = "dpdk")]
pub mod ports;

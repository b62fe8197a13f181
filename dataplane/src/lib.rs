//! gatewayd's dataplane: a layer-4 load balancer in the LVS/DPVS tradition.
//!
//! Everything but [`dpdk`] is a pure packet core that builds and tests
//! without DPDK: packet views ([`wire`]), rewrites ([`nat`]), sessions,
//! schedulers, services, neighbours and the worker step. [`dpdk`] is the thin
//! safe wrapper around the C library and the only module with `unsafe`.

pub mod config;
pub mod control;
pub mod counters;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod mailbox;
pub mod nat;
pub mod neigh;
pub mod route;
pub mod sched;
pub mod service;
pub mod session;
pub mod steer;
pub mod tcp_state;
pub mod tunnel;
pub mod wire;
pub mod worker;

#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "dpdk")]
pub mod io;

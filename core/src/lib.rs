//! gatewayd's packet core: a layer-4 load balancer in the LVS/DPVS tradition.
//!
//! Everything here builds and tests without DPDK and without `unsafe` (the
//! compiler holds that line: `forbid(unsafe_code)`): packet views
//! ([`wire`]), rewrites ([`nat`], [`tunnel`]), sessions, schedulers,
//! services, neighbours, steering and the worker step. The DPDK layer
//! (`gw-dpdk`) and the daemon (`gw-dataplane`) sit on top; nothing here
//! reads a clock, allocates per packet or blocks.
#![forbid(unsafe_code)]

pub mod counters;
pub mod engine;
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

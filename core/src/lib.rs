//! gatewayd's packet core: a layer-4 load balancer in the LVS/DPVS tradition.
//!
//! Everything here builds and tests without DPDK and without `unsafe` (the
//! compiler holds that line: `forbid(unsafe_code)`): packet views
//! ([`wire`]), the engine split by protocol ([`engine`]), forwarding modes
//! one file each ([`modes`]), sessions and persistence templates
//! ([`persist`]), schedulers, services, neighbours, steering and the worker
//! step. The DPDK layer
//! (`gw-dpdk`) and the daemon (`gw-dataplane`) sit on top; nothing here
//! reads a clock, allocates per packet or blocks.
#![forbid(unsafe_code)]

pub mod client_addr;
pub mod counters;
pub mod engine;
pub mod frag;
pub mod mailbox;
pub mod modes;
pub mod nat64;
pub mod neigh;
pub mod persist;
pub mod route;
pub mod sched;
pub mod service;
pub mod session;
pub mod steer;
pub mod synproxy;
pub mod tcp_seq;
pub mod tcp_state;
pub mod wire;
pub mod worker;

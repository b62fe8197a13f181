//! The traffic harness's pure parts: everything `gw-pktgen` and
//! `gw-benchrun` compute that needs no DPDK, so it is unit tested with plain
//! `cargo test`.
//!
//! - [`flows`]: which client address and port flow `f` uses, and the
//!   addressing plan shared by the generator, the gatewayd configs
//!   (`conf/bench-*.toml`) and the docs.
//! - [`frame`]: frame templates with precomputed checksum sums, the per
//!   packet fill (client tuple + TSC stamp), the "real server" reflection,
//!   ARP answers and stamp extraction.
//! - [`frame6`]: the IPv6 templates, reflection and neighbour
//!   advertisements (issue 17), beside the IPv4 ones.
//! - [`order`]: the order established flows are visited in (table,
//!   random permutation, Zipf).
//! - [`hist`]: a latency histogram (log-linear buckets, ~3 % resolution).
//! - [`report`]: the JSON the generator prints, read back by the runner.
//! - [`synproxy`]: the clients' and real servers' side of a SYNPROXY
//!   service's handshake (cookie ACKs, the server's SYN+ACK).
//! - [`table`] and [`plot`]: the markdown table and the SVG plot.

pub mod flows;
pub mod frame;
pub mod frame6;
pub mod hist;
pub mod order;
pub mod plot;
pub mod report;
pub mod synproxy;
pub mod table;

//! The addressing plan of the benchmark and the client tuple of each flow.
//!
//! Everything lives in 198.18.0.0/15 (RFC 2544's benchmarking range):
//!
//! ```text
//! gw-pktgen port 0 (clients)            gatewayd                    gw-pktgen port 1 (real servers)
//! router 198.18.0.254 ---- outside 198.18.0.1/24 | inside 198.18.1.1/24 ---- RS 198.18.1.2-198.18.1.6
//! clients 198.19.0.0/16 (via the router)   VIP 198.18.0.100:80        LIPs 198.18.1.100-198.18.1.136
//! ```
//!
//! Flow `f` is client `198.19.(f mod 65536)` port `1024 + f / 65536`, so
//! every `f < 65536 * 64512` is a distinct tuple and consecutive flows differ
//! in the address (they hash to unrelated buckets, as real clients do).
//!
//! Why 5 real servers and 37 local addresses: FULLNAT hands out local
//! address, local port and real server each from its own round-robin cursor
//! (`rr` over the servers, the LIPs in turn, a moving port cursor over
//! 1024..=65535, 64512 ports). The triple repeats after
//! lcm(servers, LIPs, 64512) allocations, and 64512 = 2^10 * 3^2 * 7, so
//! counts coprime with it and with each other (5 and 37) give
//! 5 * 37 * 64512 = 11.9 M distinct triples before any reuse: 10 M sessions
//! never make the allocator skip a busy port.

use std::net::Ipv4Addr;

/// First client address: 198.19.0.0/16 holds the 65536 client hosts.
pub const CLIENT_NET: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
/// Client hosts (addresses) used by the flows.
pub const CLIENT_HOSTS: u32 = 1 << 16;
/// First client source port.
pub const CLIENT_PORT_BASE: u16 = 1024;
/// Client source ports available per host.
pub const CLIENT_PORTS: u32 = 65536 - CLIENT_PORT_BASE as u32;
/// Largest number of distinct flows.
pub const MAX_FLOWS: u64 = CLIENT_HOSTS as u64 * CLIENT_PORTS as u64;

/// gatewayd's outside (client-facing) address.
pub const GW_OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// gatewayd's inside (server-facing) address.
pub const GW_INSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The router the clients sit behind; gatewayd's route to 198.19.0.0/16.
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// The virtual service.
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// The virtual port.
pub const VPORT: u16 = 80;
/// First real server; there are [`RS_COUNT`].
pub const RS_FIRST: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// Real servers (see the module docs for why 5).
pub const RS_COUNT: u32 = 5;
/// Real-server port for FULLNAT and NAT (DR and TUN use [`VPORT`]).
pub const RPORT: u16 = 8080;
/// First FULLNAT local address; there are [`LIP_COUNT`].
pub const LIP_FIRST: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);
/// FULLNAT local addresses (see the module docs for why 37).
pub const LIP_COUNT: u32 = 37;

/// Client address and source port of flow `f`.
#[inline]
pub fn client(f: u64) -> (u32, u16) {
    let host = (f % u64::from(CLIENT_HOSTS)) as u32;
    let port = CLIENT_PORT_BASE as u64 + f / u64::from(CLIENT_HOSTS);
    (u32::from(CLIENT_NET) | host, port as u16)
}

/// The `i`-th address of a range starting at `first`.
pub fn nth(first: Ipv4Addr, i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(first) + i)
}

/// The real servers' addresses.
pub fn real_servers() -> Vec<Ipv4Addr> {
    (0..RS_COUNT).map(|i| nth(RS_FIRST, i)).collect()
}

/// The FULLNAT local addresses.
pub fn local_addrs() -> Vec<Ipv4Addr> {
    (0..LIP_COUNT).map(|i| nth(LIP_FIRST, i)).collect()
}

/// Greatest common divisor.
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Distinct (real server, LIP, local port) triples FULLNAT's cursors visit
/// before the first repeat (see the module docs).
pub fn fullnat_triples(servers: u64, lips: u64, ports: u64) -> u64 {
    let lcm = |a: u64, b: u64| a / gcd(a, b) * b;
    lcm(lcm(servers, lips), ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_distinct_and_in_the_client_net() {
        let mut seen = std::collections::HashSet::new();
        for f in (0..200_000u64).chain([MAX_FLOWS - 1]) {
            let (ip, port) = client(f);
            assert_eq!(ip >> 16, u32::from(CLIENT_NET) >> 16);
            assert!(port >= CLIENT_PORT_BASE);
            assert!(seen.insert((ip, port)), "flow {f} repeats a tuple");
        }
        assert_eq!(client(0), (u32::from(CLIENT_NET), 1024));
        assert_eq!(client(65_536), (u32::from(CLIENT_NET), 1025));
        assert_eq!(client(MAX_FLOWS - 1).1, 65535);
    }

    #[test]
    fn ten_million_sessions_fit_without_port_reuse() {
        let n = fullnat_triples(RS_COUNT as u64, LIP_COUNT as u64, 64_512);
        assert_eq!(n, 5 * 37 * 64_512);
        assert!(n > 11_000_000);
        // What the plan avoids: 7 servers share the factor 7 with 64512.
        assert_eq!(fullnat_triples(7, 37, 64_512), 37 * 64_512);
    }

    #[test]
    fn the_plan_stays_in_the_benchmarking_range() {
        let in_range = |a: Ipv4Addr| u32::from(a) >> 17 == u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 17;
        for a in real_servers().into_iter().chain(local_addrs()).chain([VIP, ROUTER, GW_INSIDE, GW_OUTSIDE]) {
            assert!(in_range(a), "{a}");
        }
        assert!(in_range(Ipv4Addr::from(client(MAX_FLOWS - 1).0)));
    }
}

//! Interfaces and static routes (longest prefix match).
//!
//! The table is small and fixed at start (connected subnets of the ports plus
//! the configured routes), sorted by prefix length, so a lookup is a short
//! linear scan with no allocation.

use std::net::Ipv4Addr;

use crate::wire::ethernet::MacAddr;

/// One DPDK port with its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iface {
    pub port: u16,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub mac: MacAddr,
    /// IP MTU of the port (bytes of IPv4 packet, without Ethernet header).
    pub mtu: u16,
}

impl Iface {
    pub fn contains(&self, ip: u32) -> bool {
        prefix_match(u32::from(self.addr), self.prefix, ip)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub net: u32,
    pub prefix: u8,
    /// Next hop; `None` for a connected subnet.
    pub via: Option<u32>,
    pub port: u16,
}

/// Whether `ip` lies in `net`/`prefix`.
#[inline]
pub fn prefix_match(net: u32, prefix: u8, ip: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) };
    net & mask == ip & mask
}

#[derive(Clone, Debug, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// Connected routes of `ifaces` plus `statics`, longest prefix first.
    pub fn new(ifaces: &[Iface], statics: &[Route]) -> Routes {
        let mut routes: Vec<Route> = ifaces
            .iter()
            .map(|i| Route { net: u32::from(i.addr), prefix: i.prefix, via: None, port: i.port })
            .chain(statics.iter().copied())
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix));
        Routes { routes }
    }

    /// Output port and next-hop address for `dst`.
    #[inline]
    pub fn lookup(&self, dst: u32) -> Option<(u16, u32)> {
        self.routes
            .iter()
            .find(|r| prefix_match(r.net, r.prefix, dst))
            .map(|r| (r.port, r.via.unwrap_or(dst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_connected_hops_are_the_destination() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let ifaces = [
            Iface { port: 0, addr: Ipv4Addr::new(198, 18, 0, 1), prefix: 24, mac, mtu: 1500 },
            Iface { port: 1, addr: Ipv4Addr::new(198, 18, 1, 1), prefix: 24, mac, mtu: 1500 },
        ];
        let gw = u32::from(Ipv4Addr::new(198, 18, 0, 254));
        let def = Route { net: 0, prefix: 0, via: Some(gw), port: 0 };
        let r = Routes::new(&ifaces, &[def]);
        let rs = u32::from(Ipv4Addr::new(198, 18, 1, 7));
        assert_eq!(r.lookup(rs), Some((1, rs)));
        assert_eq!(r.lookup(u32::from(Ipv4Addr::new(8, 8, 8, 8))), Some((0, gw)));
        let none = Routes::new(&ifaces, &[]);
        assert_eq!(none.lookup(u32::from(Ipv4Addr::new(8, 8, 8, 8))), None);
    }
}

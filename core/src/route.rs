//! Interfaces and static routes (longest prefix match).
//!
//! The table is small and fixed at start (connected subnets of the ports plus
//! the configured routes), sorted by prefix length, so a lookup is a short
//! linear scan with no allocation.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::ethernet::MacAddr;

/// One DPDK port with its IPv4 address (and, dual stack, an IPv6 one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iface {
    pub port: u16,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// The port's IPv6 address and prefix length, if it has one: the
    /// engine answers neighbour solicitations and echo requests for it
    /// ([`crate::engine`]); IPv6 is not forwarded yet (issue 17).
    pub addr6: Option<(Ipv6Addr, u8)>,
    pub mac: MacAddr,
    /// IP MTU of the port (bytes of IPv4 packet, without Ethernet header).
    pub mtu: u16,
    /// Which sources this port accepts ([`Routes::reverse_path_ok`]).
    pub rp_filter: RpFilter,
}

/// Reverse-path filter of a port, as Linux's `rp_filter` (RFC 3704 §2):
/// which source addresses a packet arriving on the port may carry.
///
/// Strict is the default: a reply "from" a real server can then only come
/// in where that server is reachable, and a client packet only where
/// clients are, so a host on the client segment cannot speak for a real
/// server (kill or inject into its sessions) and the other way round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RpFilter {
    /// The route back to the source leaves through this port (RFC 3704
    /// §2.2, Linux `rp_filter=1`).
    #[default]
    Strict,
    /// Some route back to the source exists, through any port (§2.4,
    /// `rp_filter=2`): for asymmetric routing.
    Loose,
    /// No check (`rp_filter=0`).
    Off,
}

impl Iface {
    pub fn contains(&self, ip: u32) -> bool {
        prefix_match(u32::from(self.addr), self.prefix, ip)
    }

    /// The port's IPv6 address, if it has one.
    #[inline]
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.addr6.map(|(a, _)| a)
    }

    /// Whether `ip` lies in the port's IPv6 subnet (false without one).
    pub fn contains6(&self, ip: Ipv6Addr) -> bool {
        self.addr6.is_some_and(|(a, p)| {
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - u32::from(p.min(128))) };
            u128::from(a) & mask == u128::from(ip) & mask
        })
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

/// The forwarding table: connected subnets and static routes, longest
/// prefix first. A gateway has a handful of routes, so a scan of
/// precomputed (network, mask) pairs beats any trie; each entry is 16 bytes,
/// four to a cache line.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    entries: Vec<Entry>,
}

/// A [`Route`] as the lookup reads it: the network already masked, the
/// mask precomputed, 0 for a connected subnet's next hop.
#[derive(Clone, Copy, Debug)]
struct Entry {
    net: u32,
    mask: u32,
    via: u32,
    port: u16,
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
        let entries = routes
            .iter()
            .map(|r| {
                let mask = if r.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(r.prefix.min(32))) };
                Entry { net: r.net & mask, mask, via: r.via.unwrap_or(0), port: r.port }
            })
            .collect();
        Routes { entries }
    }

    /// Output port and next-hop address for `dst`.
    #[inline]
    pub fn lookup(&self, dst: u32) -> Option<(u16, u32)> {
        self.entries
            .iter()
            .find(|r| dst & r.mask == r.net)
            .map(|r| (r.port, if r.via == 0 { dst } else { r.via }))
    }

    /// Whether a packet from `src` may arrive on `rx` under the port's
    /// [`RpFilter`]. One lookup of the same table the forwarding uses.
    #[inline]
    pub fn reverse_path_ok(&self, src: u32, rx: &Iface) -> bool {
        match rx.rp_filter {
            RpFilter::Off => true,
            RpFilter::Loose => self.lookup(src).is_some(),
            RpFilter::Strict => self.lookup(src).is_some_and(|(port, _)| port == rx.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_connected_hops_are_the_destination() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let ifaces = [
            Iface {
                port: 0,
                addr: Ipv4Addr::new(198, 18, 0, 1),
                prefix: 24,
                addr6: None,
                mac,
                mtu: 1500,
                rp_filter: RpFilter::Strict,
            },
            Iface {
                port: 1,
                addr: Ipv4Addr::new(198, 18, 1, 1),
                prefix: 24,
                addr6: None,
                mac,
                mtu: 1500,
                rp_filter: RpFilter::Strict,
            },
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

#[cfg(test)]
mod rp_tests {
    use super::*;

    fn lab(rp: RpFilter) -> ([Iface; 2], Routes) {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let ifaces = [
            Iface {
                port: 0,
                addr: Ipv4Addr::new(198, 18, 0, 1),
                prefix: 24,
                addr6: None,
                mac,
                mtu: 1500,
                rp_filter: rp,
            },
            Iface {
                port: 1,
                addr: Ipv4Addr::new(198, 18, 1, 1),
                prefix: 24,
                addr6: None,
                mac,
                mtu: 1500,
                rp_filter: rp,
            },
        ];
        // Clients are anywhere behind a router on port 0.
        let def = Route { net: 0, prefix: 0, via: Some(u32::from(Ipv4Addr::new(198, 18, 0, 254))), port: 0 };
        let r = Routes::new(&ifaces, &[def]);
        (ifaces, r)
    }

    #[test]
    fn strict_accepts_a_source_only_on_the_port_its_route_leaves_by() {
        let (i, r) = lab(RpFilter::Strict);
        let rs = u32::from(Ipv4Addr::new(198, 18, 1, 7));
        let client = u32::from(Ipv4Addr::new(203, 0, 113, 9));
        assert!(r.reverse_path_ok(rs, &i[1]));
        assert!(!r.reverse_path_ok(rs, &i[0]), "a real server's address from the client side");
        assert!(r.reverse_path_ok(client, &i[0]));
        assert!(!r.reverse_path_ok(client, &i[1]), "a client's address from the server side");
    }

    #[test]
    fn loose_wants_any_route_back_and_off_wants_none() {
        let (i, r) = lab(RpFilter::Loose);
        let rs = u32::from(Ipv4Addr::new(198, 18, 1, 7));
        assert!(r.reverse_path_ok(rs, &i[0]));
        let (i2, r2) = lab(RpFilter::Loose);
        let no_default = Routes::new(&i2, &[]);
        let far = u32::from(Ipv4Addr::new(203, 0, 113, 9));
        assert!(r2.reverse_path_ok(far, &i2[1]));
        assert!(!no_default.reverse_path_ok(far, &i2[1]), "no route back at all");
        let (i3, _) = lab(RpFilter::Off);
        assert!(no_default.reverse_path_ok(far, &i3[1]));
        assert!(!no_default.reverse_path_ok(far, &Iface { rp_filter: RpFilter::Strict, ..i3[1] }));
    }
}

//! Interfaces and static routes (longest prefix match), IPv4 and IPv6.
//!
//! The tables are small and fixed at start (connected subnets of the ports,
//! a dual-stack port's IPv6 prefix, plus the configured routes of each
//! family), sorted by prefix length, so a lookup is a short linear scan
//! with no allocation. IPv4 and IPv6 have separate lists: an IPv4 lookup
//! never reads an IPv6 entry.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::ethernet::MacAddr;

/// One DPDK port with its IPv4 address (and, dual stack, an IPv6 one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iface {
    pub port: u16,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// The port's IPv6 address and prefix length, if it has one (a
    /// dual-stack port): its prefix is a connected IPv6 route, and the
    /// engine answers neighbour solicitations and echo requests for it
    /// ([`crate::engine`]).
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

/// A route of either family: `A` is `u32` for IPv4, `u128` for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route<A = u32> {
    pub net: A,
    pub prefix: u8,
    /// Next hop; `None` for a connected subnet.
    pub via: Option<A>,
    pub port: u16,
}

/// An IPv6 route ([`Routes::lookup6`]).
pub type Route6 = Route<u128>;

/// Whether `ip` lies in `net`/`prefix`.
#[inline]
pub fn prefix_match(net: u32, prefix: u8, ip: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) };
    net & mask == ip & mask
}

/// An address a route table is keyed by: its mask of a prefix length.
pub trait RouteAddr: Copy + Eq + Default + std::ops::BitAnd<Output = Self> {
    /// The mask of `prefix` leading ones (prefixes beyond the width are
    /// the full width).
    fn mask(prefix: u8) -> Self;
}

impl RouteAddr for u32 {
    #[inline]
    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix.min(32)))
        }
    }
}

impl RouteAddr for u128 {
    #[inline]
    fn mask(prefix: u8) -> u128 {
        if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(prefix.min(128)))
        }
    }
}

/// The forwarding table: connected subnets and static routes, longest
/// prefix first, one list per family. A gateway has a handful of routes,
/// so a scan of precomputed (network, mask) pairs beats any trie; an IPv4
/// entry is 16 bytes, four to a cache line.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    v4: Table<u32>,
    v6: Table<u128>,
}

/// The routes of one family, longest prefix first.
#[derive(Clone, Debug, Default)]
struct Table<A> {
    entries: Vec<Entry<A>>,
}

/// A [`Route`] as the lookup reads it: the network already masked, the
/// mask precomputed, 0 for a connected subnet's next hop (`0.0.0.0` and
/// `::` are never a next hop).
#[derive(Clone, Copy, Debug)]
struct Entry<A> {
    net: A,
    mask: A,
    via: A,
    port: u16,
}

impl<A: RouteAddr> Table<A> {
    fn new(mut routes: Vec<Route<A>>) -> Table<A> {
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix));
        let entries = routes
            .iter()
            .map(|r| {
                let mask = A::mask(r.prefix);
                Entry { net: r.net & mask, mask, via: r.via.unwrap_or_default(), port: r.port }
            })
            .collect();
        Table { entries }
    }

    #[inline]
    fn lookup(&self, dst: A) -> Option<(u16, A)> {
        self.lookup_indexed(dst).map(|(_, hop)| hop)
    }

    /// [`Table::lookup`] with the position of the route that matched.
    #[inline]
    fn lookup_indexed(&self, dst: A) -> Option<(usize, (u16, A))> {
        let k = self.entries.iter().position(|r| dst & r.mask == r.net)?;
        Some((k, self.entries[k].hop(dst)))
    }
}

impl<A: RouteAddr> Entry<A> {
    /// Output port and next hop of this route for `dst`.
    #[inline(always)]
    fn hop(&self, dst: A) -> (u16, A) {
        (self.port, if self.via == A::default() { dst } else { self.via })
    }
}

impl Routes {
    /// Connected routes of `ifaces` plus `statics`, longest prefix first
    /// (IPv4 only beside the ports' connected IPv6 prefixes; see
    /// [`Routes::dual`]).
    pub fn new(ifaces: &[Iface], statics: &[Route]) -> Routes {
        Routes::dual(ifaces, statics, &[])
    }

    /// Connected routes of `ifaces` (their IPv4 subnets and, on a
    /// dual-stack port, its IPv6 prefix) plus the static routes of each
    /// family.
    pub fn dual(ifaces: &[Iface], statics: &[Route], statics6: &[Route6]) -> Routes {
        let v4 = ifaces
            .iter()
            .map(|i| Route { net: u32::from(i.addr), prefix: i.prefix, via: None, port: i.port })
            .chain(statics.iter().copied())
            .collect();
        let v6 = ifaces
            .iter()
            .filter_map(|i| {
                let (a, prefix) = i.addr6?;
                Some(Route { net: u128::from(a), prefix, via: None, port: i.port })
            })
            .chain(statics6.iter().copied())
            .collect();
        Routes { v4: Table::new(v4), v6: Table::new(v6) }
    }

    /// Output port and next-hop address for `dst`.
    #[inline]
    pub fn lookup(&self, dst: u32) -> Option<(u16, u32)> {
        self.v4.lookup(dst)
    }

    /// [`Routes::lookup`] and the number of the route that matched, which
    /// [`Routes::lookup_at`] takes back: a session remembers the route of
    /// each of its two addresses (`Session::route`) instead of searching
    /// the table per packet. The table is fixed for the engine's life, so
    /// a number stays valid for the address it was found for.
    #[inline]
    pub fn lookup_numbered(&self, dst: u32) -> Option<(RouteNo, (u16, u32))> {
        let (k, hop) = self.v4.lookup_indexed(dst)?;
        Some((RouteNo::new(k)?, hop))
    }

    /// Output port and next hop for `dst` by route `no`, which
    /// [`Routes::lookup_numbered`] returned for `dst`.
    #[inline]
    pub fn lookup_at(&self, no: RouteNo, dst: u32) -> Option<(u16, u32)> {
        let e = self.v4.entries.get(usize::from(no.0.get() - 1))?;
        debug_assert_eq!(self.lookup(dst), Some(e.hop(dst)), "route {no:?} is not {dst:#x}'s");
        Some(e.hop(dst))
    }

    /// [`Routes::lookup_at`] by the route `known` holds, else
    /// [`Routes::lookup_numbered`], whose route `known` then holds: one of
    /// a session's two remembered routes (`Session::route`,
    /// `Session6::route`; for NAT64 the IPv4 side's), searched once per
    /// address, then a compare.
    #[inline(always)]
    pub fn lookup_remembered(&self, known: &mut Option<RouteNo>, dst: u32) -> Option<(u16, u32)> {
        remembered(known, |no| self.lookup_at(no, dst), || self.lookup_numbered(dst))
    }

    /// [`Routes::lookup_remembered`] for the IPv6 `dst`.
    #[inline(always)]
    pub fn lookup6_remembered(&self, known: &mut Option<RouteNo>, dst: u128) -> Option<(u16, u128)> {
        remembered(known, |no| self.lookup6_at(no, dst), || self.lookup6_numbered(dst))
    }

    /// [`Routes::lookup_numbered`] for the IPv6 `dst`: the number of its
    /// route in the IPv6 table, which [`Routes::lookup6_at`] takes back
    /// (`Session6::route`).
    #[inline]
    pub fn lookup6_numbered(&self, dst: u128) -> Option<(RouteNo, (u16, u128))> {
        let (k, hop) = self.v6.lookup_indexed(dst)?;
        Some((RouteNo::new(k)?, hop))
    }

    /// Output port and next hop for the IPv6 `dst` by route `no`, which
    /// [`Routes::lookup6_numbered`] returned for `dst`.
    #[inline]
    pub fn lookup6_at(&self, no: RouteNo, dst: u128) -> Option<(u16, u128)> {
        let e = self.v6.entries.get(usize::from(no.0.get() - 1))?;
        debug_assert_eq!(self.lookup6(dst), Some(e.hop(dst)), "route {no:?} is not {dst:#x}'s");
        Some(e.hop(dst))
    }

    /// [`Routes::reverse_path_ok6`] for a source whose route is `no`
    /// ([`Routes::lookup6_numbered`], remembered by its session): a
    /// compare of the route's port, no search. A route exists, so only
    /// `strict` can refuse.
    #[inline(always)]
    pub fn reverse_path_ok6_at(&self, no: RouteNo, rx: &Iface) -> bool {
        match rx.rp_filter {
            RpFilter::Strict => {
                self.v6.entries.get(usize::from(no.0.get() - 1)).is_some_and(|e| e.port == rx.port)
            }
            RpFilter::Loose | RpFilter::Off => true,
        }
    }

    /// Output port and next-hop address for the IPv6 `dst`: the
    /// destination itself on a connected prefix, else the route's gateway.
    /// Link-local destinations (`fe80::/10`) are on no prefix: the caller
    /// answers those on the port they came from.
    #[inline]
    pub fn lookup6(&self, dst: u128) -> Option<(u16, u128)> {
        self.v6.lookup(dst)
    }

    /// Whether a packet from `src` may arrive on `rx` under the port's
    /// [`RpFilter`]. One lookup of the same table the forwarding uses.
    #[inline]
    pub fn reverse_path_ok(&self, src: u32, rx: &Iface) -> bool {
        rp_ok(self.lookup(src), rx)
    }

    /// [`Routes::reverse_path_ok`] for an IPv6 source. A link-local
    /// source (`fe80::/10`) passes: it is on the link it arrives from,
    /// never routed (RFC 4291 §2.5.6), as Linux's `rpfilter` match looks
    /// it up scoped to the arriving interface (a router may send its
    /// ICMPv6 errors from one).
    #[inline]
    pub fn reverse_path_ok6(&self, src: u128, rx: &Iface) -> bool {
        src >> 118 == 0x3fa || rp_ok(self.lookup6(src), rx)
    }
}

/// Most routes one family's table holds, its connected subnets included:
/// 65,535, the numbers a [`RouteNo`] has. The forwarding path finds a
/// session's routes by number only ([`Routes::lookup_remembered`]), so a
/// route beyond them would never be used; gatewayd refuses more.
pub const MAX_ROUTES: usize = u16::MAX as usize;

/// The number of a route in one of [`Routes`]' two tables (its position
/// plus one, so that an `Option<RouteNo>` is two bytes and 0 is "not
/// known yet"): the IPv4 table's ([`Routes::lookup_numbered`]) or the
/// IPv6 table's ([`Routes::lookup6_numbered`]); who keeps one knows
/// which by the address it was found for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteNo(std::num::NonZeroU16);

impl RouteNo {
    /// The number of the route at `index`; `None` at [`MAX_ROUTES`] and
    /// beyond (a table that large is refused by the configuration).
    #[inline]
    fn new(index: usize) -> Option<RouteNo> {
        u16::try_from(index + 1).ok().and_then(std::num::NonZeroU16::new).map(RouteNo)
    }
}

/// The hop by route `known`, else by `search`, whose route `known` then
/// holds ([`Routes::lookup_remembered`], [`Routes::lookup6_remembered`]).
#[inline(always)]
fn remembered<H>(
    known: &mut Option<RouteNo>,
    at: impl FnOnce(RouteNo) -> Option<H>,
    search: impl FnOnce() -> Option<(RouteNo, H)>,
) -> Option<H> {
    match *known {
        Some(no) => at(no),
        None => {
            let (no, hop) = search()?;
            *known = Some(no);
            Some(hop)
        }
    }
}

/// The reverse-path rule of `rx` given the route back to a source.
#[inline]
pub(crate) fn rp_ok<A>(back: Option<(u16, A)>, rx: &Iface) -> bool {
    match rx.rp_filter {
        RpFilter::Off => true,
        RpFilter::Loose => back.is_some(),
        RpFilter::Strict => back.is_some_and(|(port, _)| port == rx.port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_a_table_of_max_routes_has_a_number() {
        assert!(RouteNo::new(MAX_ROUTES - 1).is_some());
        assert!(RouteNo::new(MAX_ROUTES).is_none());
    }

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

    /// A route's number, looked up once, gives every later packet to the
    /// same address what the search gives: across overlapping prefixes
    /// (a /16 over both /24s, a /8, the default) and without a route.
    #[test]
    fn numbered_lookups_agree_with_the_search() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let iface = |port, addr| Iface {
            port,
            addr,
            prefix: 24,
            addr6: None,
            mac,
            mtu: 1500,
            rp_filter: RpFilter::Strict,
        };
        let ifaces = [iface(0, Ipv4Addr::new(198, 18, 0, 1)), iface(1, Ipv4Addr::new(198, 18, 1, 1))];
        let via = |a: [u8; 4]| Some(u32::from(Ipv4Addr::from(a)));
        let statics = [
            Route {
                net: u32::from(Ipv4Addr::new(198, 18, 0, 0)),
                prefix: 16,
                via: via([198, 18, 1, 254]),
                port: 1,
            },
            Route {
                net: u32::from(Ipv4Addr::new(10, 0, 0, 0)),
                prefix: 8,
                via: via([198, 18, 0, 253]),
                port: 0,
            },
            Route { net: 0, prefix: 0, via: via([198, 18, 0, 254]), port: 0 },
        ];
        for routes in [Routes::new(&ifaces, &statics), Routes::new(&ifaces, &statics[..1])] {
            for a in
                [[198, 18, 0, 9], [198, 18, 1, 9], [198, 18, 7, 9], [10, 1, 2, 3], [8, 8, 8, 8], [0, 0, 0, 0]]
            {
                let dst = u32::from(Ipv4Addr::from(a));
                let found = routes.lookup_numbered(dst);
                assert_eq!(found.map(|(_, hop)| hop), routes.lookup(dst), "{a:?}");
                if let Some((no, hop)) = found {
                    assert_eq!(routes.lookup_at(no, dst), Some(hop), "{a:?}");
                }
            }
        }
        assert_eq!(RouteNo::new(0).map(|n| n.0.get()), Some(1));
        assert_eq!(RouteNo::new(65_534).map(|n| n.0.get()), Some(65_535));
        assert_eq!(RouteNo::new(65_535), None);
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

#[cfg(test)]
mod v6_tests {
    use super::*;

    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    fn ifaces() -> [Iface; 2] {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let i = |port, v4: [u8; 4], v6: &str| Iface {
            port,
            addr: Ipv4Addr::from(v4),
            prefix: 24,
            addr6: Some((v6.parse().unwrap(), 64)),
            mac,
            mtu: 1500,
            rp_filter: RpFilter::Strict,
        };
        [i(0, [198, 18, 0, 1], "2001:db8:0:1::1"), i(1, [198, 18, 1, 1], "2001:db8:0:2::1")]
    }

    #[test]
    fn connected_prefixes_of_dual_stack_ports_and_ipv6_gateways() {
        let ifaces = ifaces();
        let gw = v6("2001:db8:0:1::fe");
        let statics6 = [
            Route6 { net: 0, prefix: 0, via: Some(gw), port: 0 },
            Route6 { net: v6("2001:db8:99::"), prefix: 48, via: Some(v6("2001:db8:0:2::7")), port: 1 },
        ];
        let r = Routes::dual(&ifaces, &[], &statics6);
        let rs = v6("2001:db8:0:2::42");
        assert_eq!(r.lookup6(rs), Some((1, rs)), "connected: the destination is the next hop");
        assert_eq!(r.lookup6(v6("2001:db8:99:5::1")), Some((1, v6("2001:db8:0:2::7"))), "/48 before /0");
        assert_eq!(r.lookup6(v6("2606:4700::1111")), Some((0, gw)));
        // The IPv4 table is untouched by the IPv6 routes, and the other way.
        assert_eq!(r.lookup(u32::from(Ipv4Addr::new(198, 18, 1, 9))), Some((1, 0xc612_0109)));
        assert_eq!(r.lookup(u32::from(Ipv4Addr::new(8, 8, 8, 8))), None);
        // Without a default route, a far or link-local destination has no route.
        let connected = Routes::new(&ifaces, &[]);
        assert_eq!(connected.lookup6(v6("2606:4700::1111")), None);
        assert_eq!(connected.lookup6(v6("fe80::1")), None);
        // A port with no IPv6 address has no IPv6 prefix.
        let v4only = [Iface { addr6: None, ..ifaces[0] }];
        assert_eq!(Routes::new(&v4only, &[]).lookup6(v6("2001:db8:0:1::9")), None);
    }

    /// An IPv6 route's number gives later packets what the search gives,
    /// across a /128, a /48, the connected /64s and the default.
    #[test]
    fn numbered_ipv6_lookups_agree_with_the_search() {
        let ifaces = ifaces();
        let statics6 = [
            Route6 { net: 0, prefix: 0, via: Some(v6("2001:db8:0:1::fe")), port: 0 },
            Route6 { net: v6("2001:db8:99::"), prefix: 48, via: Some(v6("2001:db8:0:2::7")), port: 1 },
            Route6 { net: v6("2001:db8:99::5"), prefix: 128, via: Some(v6("2001:db8:0:1::2")), port: 0 },
        ];
        for r in [Routes::dual(&ifaces, &[], &statics6), Routes::dual(&ifaces, &[], &statics6[1..])] {
            for a in [
                "2001:db8:99::5",
                "2001:db8:99::6",
                "2001:db8:0:2::42",
                "2001:db8:0:1::9",
                "2606:4700::1",
                "fe80::1",
            ] {
                let dst = v6(a);
                let found = r.lookup6_numbered(dst);
                assert_eq!(found.map(|(_, hop)| hop), r.lookup6(dst), "{a}");
                if let Some((no, hop)) = found {
                    assert_eq!(r.lookup6_at(no, dst), Some(hop), "{a}");
                }
            }
        }
    }

    #[test]
    fn a_route_prefix_masks_the_host_bits_and_128_is_one_host() {
        let ifaces = ifaces();
        let host =
            Route6 { net: v6("2001:db8:77::5"), prefix: 128, via: Some(v6("2001:db8:0:1::2")), port: 0 };
        let sloppy =
            Route6 { net: v6("2001:db8:77::ffff"), prefix: 64, via: Some(v6("2001:db8:0:2::2")), port: 1 };
        let r = Routes::dual(&ifaces, &[], &[sloppy, host]);
        assert_eq!(r.lookup6(v6("2001:db8:77::5")), Some((0, v6("2001:db8:0:1::2"))));
        assert_eq!(r.lookup6(v6("2001:db8:77::6")), Some((1, v6("2001:db8:0:2::2"))));
        assert_eq!(r.lookup6(v6("2001:db8:78::6")), None);
    }

    #[test]
    fn the_reverse_path_rule_holds_for_ipv6_sources() {
        let ifaces = ifaces();
        let def = Route6 { net: 0, prefix: 0, via: Some(v6("2001:db8:0:1::fe")), port: 0 };
        let r = Routes::dual(&ifaces, &[], &[def]);
        let rs = v6("2001:db8:0:2::7");
        let client = v6("2001:db8:ffff::9");
        assert!(r.reverse_path_ok6(rs, &ifaces[1]));
        assert!(!r.reverse_path_ok6(rs, &ifaces[0]), "a real server's address from the client side");
        assert!(r.reverse_path_ok6(client, &ifaces[0]));
        assert!(!r.reverse_path_ok6(client, &ifaces[1]));
        let loose = Iface { rp_filter: RpFilter::Loose, ..ifaces[1] };
        assert!(r.reverse_path_ok6(client, &loose));
        let connected = Routes::new(&ifaces, &[]);
        assert!(!connected.reverse_path_ok6(client, &loose), "no route back at all");
        let link_local = v6("fe80::1");
        assert!(r.reverse_path_ok6(link_local, &ifaces[0]) && r.reverse_path_ok6(link_local, &ifaces[1]));
        assert!(!r.reverse_path_ok6(v6("fec0::1"), &ifaces[1]), "site-local (fec0::/10) is not link-local");
    }
}

//! Static neighbours: the `[[neighbour]]` entries and `gwctl
//! --add-neighbour/--del-neighbour/--list-neighbours`.
//!
//! The set lives here, behind its own lock (never a worker's); every change
//! publishes the whole set ([`StaticNeighbours`]) and each worker takes it
//! between bursts. A neighbour names a port by its configured name, and its
//! address must be on that port's subnet (a next hop is always on-link):
//! an IPv4 address, or an IPv6 one on a dual-stack port's prefix or
//! link-local; each family has its own set and publisher.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use gw_core::neigh::{StaticNeigh, StaticNeighbours};
use gw_core::wire::ethernet::MacAddr;
use gw_proto::{ErrorKind, NeighbourRequest, Response, StaticNeighbour};

use super::{err, Control};

/// Most static neighbours, both families together: every change publishes
/// the whole set and each worker rebuilds its map from it between bursts,
/// so the set is kept to what a gateway's next hops need.
pub const MAX_STATIC_NEIGHBOURS: usize = 4096;

/// A port as static neighbours name it.
#[derive(Clone, Debug)]
pub struct NeighPort {
    pub name: String,
    /// The DPDK port id workers know it by.
    pub id: u16,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// A dual-stack port's IPv6 address and prefix length.
    pub addr6: Option<(Ipv6Addr, u8)>,
}

/// A checked static neighbour, as the workers of its family get it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    V4(StaticNeigh),
    V6(StaticNeigh<u128>),
}

/// The static neighbours and where they go.
pub(super) struct Statics {
    publisher: Arc<StaticNeighbours>,
    publisher6: Arc<StaticNeighbours<u128>>,
    /// The same list as [`Control`]'s `port_addrs`.
    ports: Arc<[NeighPort]>,
    entries: Mutex<Vec<StaticNeighbour>>,
}

/// Why `n` cannot be a static neighbour on `ports` (the message names the
/// value), or what workers get.
pub fn check(ports: &[NeighPort], n: &StaticNeighbour) -> Result<Checked, (&'static str, String)> {
    let port = ports.iter().find(|p| p.name == n.port).ok_or_else(|| {
        let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
        ("port", format!("no port named {:?} (ports: {})", n.port, names.join(", ")))
    })?;
    let mac = MacAddr(n.mac);
    if !mac.is_unicast() || n.mac == [0; 6] {
        return Err(("mac", format!("{mac} is not a unicast MAC address")));
    }
    match n.addr {
        IpAddr::V4(a) => check4(port, a, mac).map(Checked::V4),
        IpAddr::V6(a) => check6(port, a, mac).map(Checked::V6),
    }
}

fn check6(port: &NeighPort, a: Ipv6Addr, mac: MacAddr) -> Result<StaticNeigh<u128>, (&'static str, String)> {
    let Some((own, prefix)) = port.addr6 else {
        return Err(("address", format!("{a} is IPv6 and port {:?} has no IPv6 address", port.name)));
    };
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
    let link_local = a.segments()[0] & 0xffc0 == 0xfe80;
    if !link_local && u128::from(a) & mask != u128::from(own) & mask {
        return Err((
            "address",
            format!("{a} is not on port {:?}'s prefix {own}/{prefix} nor link-local", port.name),
        ));
    }
    if a == own {
        return Err(("address", format!("{a} is port {:?}'s own address", port.name)));
    }
    if a.is_multicast() || a.is_unspecified() {
        return Err(("address", format!("{a} is not a unicast address")));
    }
    Ok(StaticNeigh { port: port.id, ip: u128::from(a), mac })
}

fn check4(port: &NeighPort, addr: Ipv4Addr, mac: MacAddr) -> Result<StaticNeigh, (&'static str, String)> {
    let mask = if port.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(port.prefix)) };
    let (a, net) = (u32::from(addr), u32::from(port.addr) & mask);
    if a & mask != net {
        return Err((
            "address",
            format!(
                "{} is not on port {:?}'s subnet {}/{}",
                addr,
                port.name,
                Ipv4Addr::from(net),
                port.prefix
            ),
        ));
    }
    if addr == port.addr {
        return Err(("address", format!("{} is port {:?}'s own address", addr, port.name)));
    }
    if crate::config::subnet_edge(a, net, port.prefix).is_some() {
        return Err(("address", format!("{} is the network or broadcast address of {:?}", addr, port.name)));
    }
    Ok(StaticNeigh { port: port.id, ip: a, mac })
}

impl Statics {
    fn publish(&self, entries: &[StaticNeighbour]) {
        let (mut v4, mut v6) = (vec![], vec![]);
        for c in entries.iter().filter_map(|n| check(&self.ports, n).ok()) {
            match c {
                Checked::V4(n) => v4.push(n),
                Checked::V6(n) => v6.push(n),
            }
        }
        self.publisher.publish(v4);
        self.publisher6.publish(v6);
    }
}

impl Control {
    /// Keeps the static neighbours (`initial`, already checked) for the
    /// ports `ports` and publishes every change to `publisher` (IPv4) and
    /// `publisher6` (IPv6).
    pub fn with_static_neighbours(
        mut self,
        (publisher, publisher6): (Arc<StaticNeighbours>, Arc<StaticNeighbours<u128>>),
        ports: Vec<NeighPort>,
        initial: Vec<StaticNeighbour>,
    ) -> Control {
        let ports: Arc<[NeighPort]> = ports.into();
        self.port_addrs = ports.clone();
        let s = Statics { publisher, publisher6, ports, entries: Mutex::new(initial) };
        s.publish(&s.entries.lock().unwrap_or_else(|e| e.into_inner()));
        self.statics = Some(s);
        self
    }

    /// Checks real servers and local addresses against `ports`' addresses
    /// ([`Control::with_static_neighbours`] does too): `gatewayd --check`'s
    /// control plane, which has no neighbours to publish.
    pub fn with_port_addrs(mut self, ports: impl Into<Arc<[NeighPort]>>) -> Control {
        self.port_addrs = ports.into();
        self
    }

    /// One static-neighbour request.
    pub(super) fn neighbour(&self, req: NeighbourRequest) -> Response {
        let Some(s) = &self.statics else {
            return err(ErrorKind::Invalid, "this gatewayd has no static neighbours (no ports)");
        };
        let mut entries = s.entries.lock().unwrap_or_else(|e| e.into_inner());
        match req {
            NeighbourRequest::List => return Response::Neighbours { entries: entries.clone() },
            NeighbourRequest::Add(n) => {
                if let Err((_, msg)) = check(&s.ports, &n) {
                    return err(ErrorKind::Invalid, msg);
                }
                if entries.iter().any(|e| e.addr == n.addr && e.port == n.port) {
                    return err(
                        ErrorKind::Invalid,
                        format!("{} on port {:?} is already a static neighbour", n.addr, n.port),
                    );
                }
                if entries.len() >= MAX_STATIC_NEIGHBOURS {
                    let why =
                        format!("there are {MAX_STATIC_NEIGHBOURS} static neighbours, the most there may be");
                    return err(ErrorKind::Full, why);
                }
                entries.push(n);
            }
            NeighbourRequest::Del { addr, port } => {
                let before = entries.len();
                entries.retain(|e| !(e.addr == addr && e.port == port));
                if entries.len() == before {
                    return err(
                        ErrorKind::Invalid,
                        format!("{addr} on port {port:?} is not a static neighbour"),
                    );
                }
            }
        }
        s.publish(&entries);
        Response::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_util::control;
    use gw_proto::Request;

    fn ports() -> Vec<NeighPort> {
        vec![
            NeighPort {
                name: "outside".into(),
                id: 0,
                addr: Ipv4Addr::new(198, 18, 0, 1),
                prefix: 24,
                addr6: Some(("2001:db8::1".parse().unwrap(), 64)),
            },
            NeighPort {
                name: "inside".into(),
                id: 3,
                addr: Ipv4Addr::new(198, 18, 1, 1),
                prefix: 24,
                addr6: None,
            },
        ]
    }
    fn n(last: u8, port: &str) -> StaticNeighbour {
        StaticNeighbour {
            addr: Ipv4Addr::new(198, 18, 1, last).into(),
            mac: [2, 0, 0, 0, 1, last],
            port: port.into(),
        }
    }
    fn req(r: NeighbourRequest) -> Request {
        Request::Neighbour(r)
    }

    #[test]
    fn static_neighbours_are_bounded() {
        let publisher = (Arc::new(StaticNeighbours::new(vec![])), Arc::new(StaticNeighbours::new(vec![])));
        let (c, _) = control(1);
        let c = c.with_static_neighbours(publisher, ports(), vec![]);
        let v6 = |i: usize| StaticNeighbour {
            addr: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16 + 2).into(),
            mac: [2, 0, 0, 0, (i >> 8) as u8, i as u8],
            port: "outside".into(),
        };
        for i in 0..MAX_STATIC_NEIGHBOURS {
            assert_eq!(c.query(req(NeighbourRequest::Add(v6(i)))), Response::Ok, "{i}");
        }
        let r = c.query(req(NeighbourRequest::Add(v6(MAX_STATIC_NEIGHBOURS))));
        assert!(matches!(r, Response::Error { kind: ErrorKind::Full, .. }), "{r:?}");
        let Response::Neighbours { entries } = c.query(req(NeighbourRequest::List)) else { panic!() };
        assert_eq!(entries.len(), MAX_STATIC_NEIGHBOURS);
    }

    #[test]
    fn add_list_delete_each_publish_the_set_to_the_workers() {
        let publisher = Arc::new(StaticNeighbours::new(vec![]));
        let publisher6 = Arc::new(StaticNeighbours::new(vec![]));
        let (c, _) = control(1);
        let c =
            c.with_static_neighbours((publisher.clone(), publisher6.clone()), ports(), vec![n(2, "inside")]);
        let (v, set) = publisher.newer_than(0).unwrap();
        let two = StaticNeigh {
            port: 3,
            ip: u32::from(Ipv4Addr::new(198, 18, 1, 2)),
            mac: MacAddr([2, 0, 0, 0, 1, 2]),
        };
        assert_eq!(&set[..], &[two]);

        assert_eq!(c.query(req(NeighbourRequest::Add(n(50, "inside")))), Response::Ok);
        let (v2, set) = publisher.newer_than(v).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(
            c.query(req(NeighbourRequest::List)),
            Response::Neighbours { entries: vec![n(2, "inside"), n(50, "inside")] }
        );
        let refused = |r: Response, want: &str| match r {
            Response::Error { kind: ErrorKind::Invalid, message } => {
                assert!(message.contains(want), "{message}")
            }
            other => panic!("{other:?}"),
        };
        refused(c.query(req(NeighbourRequest::Add(n(50, "inside")))), "already a static neighbour");
        refused(c.query(req(NeighbourRequest::Add(n(50, "outside")))), "not on port \"outside\"'s subnet");
        refused(
            c.query(req(NeighbourRequest::Add(n(50, "nope")))),
            "no port named \"nope\" (ports: outside, inside)",
        );
        refused(c.query(req(NeighbourRequest::Add(n(1, "inside")))), "own address");
        refused(c.query(req(NeighbourRequest::Add(n(255, "inside")))), "broadcast");
        let mut multicast = n(60, "inside");
        multicast.mac = [1, 0, 0x5e, 0, 0, 1];
        refused(c.query(req(NeighbourRequest::Add(multicast))), "not a unicast MAC");
        refused(
            c.query(req(NeighbourRequest::Del {
                addr: Ipv4Addr::new(198, 18, 1, 9).into(),
                port: "inside".into(),
            })),
            "not a static neighbour",
        );
        assert!(publisher.newer_than(v2).is_none(), "refused changes publish nothing");
        let del = NeighbourRequest::Del { addr: Ipv4Addr::new(198, 18, 1, 2).into(), port: "inside".into() };
        assert_eq!(c.query(req(del)), Response::Ok);
        let (_, set) = publisher.newer_than(v2).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].ip, u32::from(Ipv4Addr::new(198, 18, 1, 50)));
        assert!(publisher6.newer_than(0).unwrap().1.is_empty(), "no IPv6 neighbour yet");
    }

    #[test]
    fn an_ipv6_neighbour_goes_to_the_ipv6_set_on_a_dual_stack_port_only() {
        let publisher = Arc::new(StaticNeighbours::new(vec![]));
        let publisher6 = Arc::new(StaticNeighbours::new(vec![]));
        let (c, _) = control(1);
        let c = c.with_static_neighbours((publisher.clone(), publisher6.clone()), ports(), vec![]);
        let (v4, _) = publisher.newer_than(0).unwrap();
        let (v6, _) = publisher6.newer_than(0).unwrap();
        let six = |a: &str, port: &str| StaticNeighbour {
            addr: a.parse().unwrap(),
            mac: [2, 0, 0, 0, 6, 6],
            port: port.into(),
        };
        for a in ["2001:db8::fe", "fe80::1"] {
            assert_eq!(c.query(req(NeighbourRequest::Add(six(a, "outside")))), Response::Ok, "{a}");
        }
        let (_, set) = publisher6.newer_than(v6).unwrap();
        let want = |a: &str| StaticNeigh {
            port: 0,
            ip: u128::from(a.parse::<Ipv6Addr>().unwrap()),
            mac: MacAddr([2, 0, 0, 0, 6, 6]),
        };
        assert_eq!(&set[..], &[want("2001:db8::fe"), want("fe80::1")]);
        assert!(publisher.newer_than(v4).unwrap().1.is_empty(), "the IPv4 set stays empty");
        let refused = |r: Response, want: &str| match r {
            Response::Error { kind: ErrorKind::Invalid, message } => {
                assert!(message.contains(want), "{message}")
            }
            other => panic!("{other:?}"),
        };
        refused(c.query(req(NeighbourRequest::Add(six("2001:db8::fe", "inside")))), "has no IPv6 address");
        refused(
            c.query(req(NeighbourRequest::Add(six("2001:db8:1::fe", "outside")))),
            "not on port \"outside\"'s prefix",
        );
        refused(c.query(req(NeighbourRequest::Add(six("2001:db8::1", "outside")))), "own address");
        refused(
            c.query(req(NeighbourRequest::Add(six("2001:db8::fe", "outside")))),
            "already a static neighbour",
        );
        let del = NeighbourRequest::Del { addr: "fe80::1".parse().unwrap(), port: "outside".into() };
        assert_eq!(c.query(req(del)), Response::Ok);
        let (_, set) = publisher6.newer_than(0).unwrap();
        assert_eq!(&set[..], &[want("2001:db8::fe")]);
    }
}

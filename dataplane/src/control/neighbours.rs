//! Static neighbours: the `[[neighbour]]` entries and `gwctl
//! --add-neighbour/--del-neighbour/--list-neighbours`.
//!
//! The set lives here, behind its own lock (never a worker's); every change
//! publishes the whole set ([`StaticNeighbours`]) and each worker takes it
//! between bursts. A neighbour names a port by its configured name, and its
//! address must be on that port's subnet (a next hop is always on-link).

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use gw_core::neigh::{StaticNeigh, StaticNeighbours};
use gw_core::wire::ethernet::MacAddr;
use gw_proto::{ErrorKind, NeighbourRequest, Response, StaticNeighbour};

use super::{err, Control};

/// A port as static neighbours name it.
#[derive(Clone, Debug)]
pub struct NeighPort {
    pub name: String,
    /// The DPDK port id workers know it by.
    pub id: u16,
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// The static neighbours and where they go.
pub(super) struct Statics {
    publisher: Arc<StaticNeighbours>,
    ports: Vec<NeighPort>,
    entries: Mutex<Vec<StaticNeighbour>>,
}

/// Why `n` cannot be a static neighbour on `ports` (the message names the
/// value), or what workers get.
pub fn check(ports: &[NeighPort], n: &StaticNeighbour) -> Result<StaticNeigh, (&'static str, String)> {
    let port = ports.iter().find(|p| p.name == n.port).ok_or_else(|| {
        let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
        ("port", format!("no port named {:?} (ports: {})", n.port, names.join(", ")))
    })?;
    let mask = if port.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(port.prefix)) };
    let (a, net) = (u32::from(n.addr), u32::from(port.addr) & mask);
    if a & mask != net {
        return Err((
            "address",
            format!(
                "{} is not on port {:?}'s subnet {}/{}",
                n.addr,
                port.name,
                Ipv4Addr::from(net),
                port.prefix
            ),
        ));
    }
    if n.addr == port.addr {
        return Err(("address", format!("{} is port {:?}'s own address", n.addr, port.name)));
    }
    if port.prefix < 31 && (a == net || a == net | !mask) {
        return Err((
            "address",
            format!("{} is the network or broadcast address of {:?}", n.addr, port.name),
        ));
    }
    let mac = MacAddr(n.mac);
    if !mac.is_unicast() || n.mac == [0; 6] {
        return Err(("mac", format!("{mac} is not a unicast MAC address")));
    }
    Ok(StaticNeigh { port: port.id, ip: a, mac })
}

impl Statics {
    fn publish(&self, entries: &[StaticNeighbour]) {
        let set = entries.iter().filter_map(|n| check(&self.ports, n).ok()).collect();
        self.publisher.publish(set);
    }
}

impl Control {
    /// Keeps the static neighbours (`initial`, already checked) for the
    /// ports `ports` and publishes every change to `publisher`.
    pub fn with_static_neighbours(
        mut self,
        publisher: Arc<StaticNeighbours>,
        ports: Vec<NeighPort>,
        initial: Vec<StaticNeighbour>,
    ) -> Control {
        let s = Statics { publisher, ports, entries: Mutex::new(initial) };
        s.publish(&s.entries.lock().unwrap_or_else(|e| e.into_inner()));
        self.statics = Some(s);
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
            NeighPort { name: "outside".into(), id: 0, addr: Ipv4Addr::new(198, 18, 0, 1), prefix: 24 },
            NeighPort { name: "inside".into(), id: 3, addr: Ipv4Addr::new(198, 18, 1, 1), prefix: 24 },
        ]
    }
    fn n(last: u8, port: &str) -> StaticNeighbour {
        StaticNeighbour {
            addr: Ipv4Addr::new(198, 18, 1, last),
            mac: [2, 0, 0, 0, 1, last],
            port: port.into(),
        }
    }
    fn req(r: NeighbourRequest) -> Request {
        Request::Neighbour(r)
    }

    #[test]
    fn add_list_delete_each_publish_the_set_to_the_workers() {
        let publisher = Arc::new(StaticNeighbours::new(vec![]));
        let (c, _) = control(1);
        let c = c.with_static_neighbours(publisher.clone(), ports(), vec![n(2, "inside")]);
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
            c.query(req(NeighbourRequest::Del { addr: Ipv4Addr::new(198, 18, 1, 9), port: "inside".into() })),
            "not a static neighbour",
        );
        assert!(publisher.newer_than(v2).is_none(), "refused changes publish nothing");
        let del = NeighbourRequest::Del { addr: Ipv4Addr::new(198, 18, 1, 2), port: "inside".into() };
        assert_eq!(c.query(req(del)), Response::Ok);
        let (_, set) = publisher.newer_than(v2).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].ip, u32::from(Ipv4Addr::new(198, 18, 1, 50)));
    }
}

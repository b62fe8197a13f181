//! Read-only answers: listings of services, local addresses, connections,
//! timeouts and worker counters.
//!
//! Nothing here changes the model: listings read it under its lock and sum
//! the workers' counters ([`super::stats`]). The connection listing asks each
//! worker through its mailbox (the sessions live on the workers' cores) and
//! gives up with an error if one does not answer in time, rather than show a
//! partial table. A worker's IPv4 sessions come first, then its IPv6 ones
//! (a separate table, [`gw_core::session::ipv6::SessionTable6`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use gw_proto::{
    ConnInfo, DestInfo, ErrorKind, Protocol, Response, ServiceInfo, ServiceKey, TimeoutSet,
    WorkerCounters as WireCounters,
};

use gw_core::mailbox::ConnFilter;
use gw_core::session::ipv6::Session6;
use gw_core::session::Session;

use super::stats::sub;
use super::{err, no_service, Control};

/// The fewest bytes one connection takes in a reply (its JSON with every
/// field at its shortest; a test holds it to that): a listing of more
/// connections than [`MAX_LISTED`] cannot fit in a frame.
const MIN_CONN_BYTES: usize = 150;

/// The most connections a listing collects. Past it the answer could not
/// be sent anyway ([`gw_proto::MAX_FRAME`]), so the scan stops there and
/// the client is told to ask for less, instead of the control plane
/// building gigabytes for a table of millions.
pub(super) const MAX_LISTED: usize = gw_proto::MAX_FRAME / MIN_CONN_BYTES;

/// A session as `gwctl -L -c` shows it.
fn conn_info(worker: u32, s: &Session, now_ms: u64) -> ConnInfo {
    let a = |ip: u32, port: u16| (IpAddr::V4(Ipv4Addr::from(ip)), port);
    let template = s.is_template();
    ConnInfo {
        worker,
        proto: if s.protocol() == gw_core::wire::ipv4::Protocol::Udp { Protocol::Udp } else { Protocol::Tcp },
        state: if template { "NONE".into() } else { s.state.name().into() },
        expires_ms: s.expires_in_ms(now_ms),
        client: a(s.cip, s.cport),
        vip: a(s.vip, s.vport),
        // A template has no local address (its storage holds the template's
        // own count and timeout): like every connection without source NAT,
        // its local column repeats the client (the masked client, port 0).
        local: if template { a(s.cip, s.cport) } else { a(s.lip, s.lport) },
        dest: a(s.rip, s.rport),
        mode: s.mode,
        template,
    }
}

/// An IPv6 session as `gwctl -L -c` shows it. The client and the VIP are
/// IPv6; a NAT64 session keeps its IPv4 real server and local address
/// IPv4-mapped (`::ffff:a.b.c.d`, `gw_core::engine::nat64`), and they are
/// listed as the IPv4 addresses they are, which is what the real server
/// sees on the wire (the control model never gives an IPv6 session an
/// IPv6 real server in the mapped range).
fn conn_info6(worker: u32, s: &Session6, now_ms: u64) -> ConnInfo {
    let v6 = |ip: u128, port: u16| (IpAddr::V6(Ipv6Addr::from(ip)), port);
    let either = |ip: u128, port: u16| {
        let a = Ipv6Addr::from(ip);
        (a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4), port)
    };
    let template = s.is_template();
    ConnInfo {
        worker,
        proto: if s.protocol() == gw_core::wire::ipv4::Protocol::Udp { Protocol::Udp } else { Protocol::Tcp },
        state: if template { "NONE".into() } else { s.state.name().into() },
        expires_ms: s.expires_in_ms(now_ms),
        client: v6(s.cip, s.cport),
        vip: v6(s.vip, s.vport),
        // As for IPv4: a template's local storage holds its count and timeout.
        local: if template { v6(s.cip, s.cport) } else { either(s.lip, s.lport) },
        dest: either(s.rip, s.rport),
        mode: s.mode,
        template,
    }
}

impl Control {
    /// `-L`: the services (or the one `service`) with their real servers and statistics.
    pub(super) fn list(&self, service: Option<ServiceKey>) -> Response {
        let m = self.lock();
        if let Some(k) = service {
            if !m.services.contains_key(&k) {
                return no_service(&k);
            }
        }
        let services = m
            .services
            .values()
            .filter(|s| service.is_none_or(|k| k == s.spec.key))
            .map(|s| ServiceInfo {
                spec: s.spec.clone(),
                dests: s
                    .dests
                    .iter()
                    .map(|d| {
                        let (st, active, inactive) = self.dest_stats(d.slot);
                        let base = m.dest_base.get(&d.slot).copied().unwrap_or_default();
                        DestInfo {
                            spec: d.spec,
                            active_conns: active,
                            inactive_conns: inactive,
                            persist_conns: self.dest_persist(d.slot),
                            stats: sub(st, base),
                            rates: Self::rates_of(&m, true, d.slot),
                        }
                    })
                    .collect(),
                laddrs: s.laddrs.clone(),
                stats: sub(self.svc_stats(s.slot), m.svc_base.get(&s.slot).copied().unwrap_or_default()),
                rates: Self::rates_of(&m, false, s.slot),
                health: self.health_of(&s.spec.key),
            })
            .collect();
        Response::Services { conn_table_size: self.conn_table_size, services }
    }

    /// `--get-laddr`: the local addresses of every service or of one.
    pub(super) fn laddrs(&self, service: Option<ServiceKey>) -> Response {
        let m = self.lock();
        if let Some(k) = service {
            if !m.services.contains_key(&k) {
                return no_service(&k);
            }
        }
        let entries = m
            .services
            .values()
            .filter(|s| service.is_none_or(|k| k == s.spec.key))
            .map(|s| (s.spec.key, s.laddrs.clone()))
            .collect();
        Response::Laddrs { entries }
    }

    /// `-L -c`: the sessions of every worker, or of one service's.
    pub(super) fn conns(&self, service: Option<ServiceKey>) -> Response {
        if let Some(k) = service {
            if !self.lock().services.contains_key(&k) {
                return no_service(&k);
            }
        }
        // One service's connections are in the table of its family.
        let (four, six) = service.map_or((true, true), |k| (k.addr.is_ipv4(), k.addr.is_ipv6()));
        let filter = service.map(|k| ConnFilter {
            proto: k.proto.number(),
            vip: match k.addr {
                IpAddr::V4(a) => u128::from(u32::from(a)),
                IpAddr::V6(a) => u128::from(a),
            },
            vport: k.port,
        });
        let (chunk, timeout) = (gw_core::mailbox::LIST_CHUNK, Duration::from_secs(2));
        let late =
            |w: usize| err(ErrorKind::Invalid, format!("worker {w} did not answer the connection listing"));
        let max = self.max_listed;
        let too_many =
            || err(ErrorKind::Full, super::server::too_large(&format!("more than {max} connections")));
        let mut conns = vec![];
        for (w, mb) in self.mailboxes.iter().enumerate() {
            if four {
                let (sessions, now, complete) = mb.list(filter, chunk, timeout, max + 1 - conns.len());
                if !complete {
                    return late(w);
                }
                conns.extend(sessions.iter().map(|s| conn_info(w as u32, s, now)));
                if conns.len() > max {
                    return too_many();
                }
            }
            if six {
                let (sessions, now, complete) = mb.list6(filter, chunk, timeout, max + 1 - conns.len());
                if !complete {
                    return late(w);
                }
                conns.extend(sessions.iter().map(|s| conn_info6(w as u32, s, now)));
                if conns.len() > max {
                    return too_many();
                }
            }
        }
        Response::Conns { conns }
    }

    /// `-L --timeout`.
    pub(super) fn timeouts(&self) -> Response {
        let t = self.lock().timeouts;
        Response::Timeouts { timeouts: TimeoutSet { tcp: t.established, tcpfin: t.fin_wait, udp: t.udp } }
    }

    /// `--counters`: each worker's counters, and the ports' statistics
    /// (read now, unless the last reading is under
    /// [`super::stats::FRESH_PORT_STATS`] old).
    pub(super) fn counters(&self) -> Response {
        self.read_ports_older_than(std::time::Instant::now(), super::stats::FRESH_PORT_STATS);
        Response::Counters {
            workers: self
                .workers
                .iter()
                .map(|w| WireCounters { worker: w.worker, lcore: w.lcore, counters: w.snapshot() })
                .collect(),
            ports: self.port_counters(),
        }
    }
}

#[cfg(test)]
mod tests {
    use gw_core::session::Flags;
    use gw_core::tcp_state::State;
    use gw_core::wire::ipv4::Protocol as IpProto;
    use gw_proto::ForwardMode;

    use super::*;

    /// A listing stops asking the workers once it holds more connections
    /// than a reply can carry, and says so; below that, everything.
    #[test]
    fn a_listing_of_more_connections_than_a_reply_holds_stops_early_and_says_so() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let (control_end, worker_end) = gw_core::mailbox::mailbox();
        let (c, _) = super::super::test_util::control(1);
        let mut c = c.with_mailboxes(vec![control_end]);
        // A worker with 10,000 IPv4 sessions, answering chunk by chunk.
        let (queries, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
        let s = Session::new(
            IpProto::Udp,
            (1, 1),
            (2, 80),
            (3, 80),
            (4, 1024),
            State::None,
            ForwardMode::FullNat,
            0,
            0,
        );
        std::thread::scope(|scope| {
            let (queries, stop) = (&queries, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    worker_end.serve(|q| {
                        if q.six {
                            q.next = None; // no IPv6 sessions
                            return;
                        }
                        queries.fetch_add(1, Ordering::SeqCst);
                        let n = (10_000 - q.start).min(q.out.capacity());
                        q.out.extend(std::iter::repeat_n(s, n));
                        q.next = (q.start + n < 10_000).then_some(q.start + n);
                    });
                    std::thread::yield_now();
                }
            });
            c.max_listed = 2_500;
            let Response::Error { kind, message } = c.conns(None) else { panic!("listed") };
            assert_eq!(kind, ErrorKind::Full);
            assert!(
                message.starts_with("the answer is more than 2500 connections, above the 64 MiB"),
                "{message}"
            );
            assert_eq!(queries.swap(0, Ordering::SeqCst), 3, "three chunks of 1,024, not ten");
            c.max_listed = 10_000;
            let Response::Conns { conns } = c.conns(None) else { panic!("not listed") };
            assert_eq!(conns.len(), 10_000);
            stop.store(true, Ordering::SeqCst);
        });
    }

    /// [`MIN_CONN_BYTES`] is no more than the shortest connection's JSON.
    #[test]
    fn no_connection_takes_fewer_bytes_in_a_reply_than_the_listing_bound_assumes() {
        let s =
            Session::new(IpProto::Udp, (0, 0), (0, 0), (0, 0), (0, 0), State::None, ForwardMode::Route, 0, 0);
        let c = conn_info(0, &s, 0);
        let n = serde_json::to_vec(&c).unwrap().len();
        assert!(n >= MIN_CONN_BYTES, "{n}");
        const { assert!(MAX_LISTED * MIN_CONN_BYTES <= gw_proto::MAX_FRAME) };
    }

    /// `-lnc` of a persistence template: no invented local address (its
    /// storage holds the template's count and timeout); the local column
    /// repeats the masked client, port 0, as for every connection without
    /// source NAT.
    #[test]
    fn a_template_lists_the_client_as_its_local_side() {
        let (client, vip, rs) = (0xc612_0000, 0xc612_0064, 0xc612_0102);
        // What a template holds in the local side's storage: 30,000 ms and 6 connections.
        let mut t = Session::new(
            IpProto::Tcp,
            (client, 0),
            (vip, 80),
            (rs, 80),
            (30_000, 6),
            State::None,
            ForwardMode::FullNat,
            0,
            0,
        );
        t.flags = Flags::TEMPLATE | Flags::NO_OUT;
        let c = conn_info(0, &t, 0);
        assert!(c.template);
        assert_eq!(c.state, "NONE");
        assert_eq!(c.local, (Ipv4Addr::from(client).into(), 0));
        assert_eq!(c.client, c.local);
    }

    /// `-lnc` of IPv6 sessions: FULLNAT66 lists its IPv6 local address; a
    /// NAT64 session its IPv4 real server and local address as IPv4 (not
    /// `::ffff:a.b.c.d`); an IPv6 template repeats its client.
    #[test]
    fn ipv6_sessions_list_in_their_families() {
        let v6 = |s: &str| u128::from(s.parse::<Ipv6Addr>().unwrap());
        let (client, vip) = (v6("2001:db8::10"), v6("2001:db8::1"));
        let s = Session6::new(
            IpProto::Tcp,
            (client, 43210),
            (vip, 80),
            (v6("2001:db8:1::2"), 8080),
            (v6("2001:db8:1::100"), 1029),
            State::Established,
            ForwardMode::FullNat,
            0,
            0,
        );
        let c = conn_info6(2, &s, 0);
        assert_eq!((c.worker, c.proto, c.state.as_str()), (2, Protocol::Tcp, "ESTABLISHED"));
        assert_eq!(c.client, ("2001:db8::10".parse().unwrap(), 43210));
        assert_eq!(c.vip, ("2001:db8::1".parse().unwrap(), 80));
        assert_eq!(c.local, ("2001:db8:1::100".parse().unwrap(), 1029));
        assert_eq!(c.dest, ("2001:db8:1::2".parse().unwrap(), 8080));
        // NAT64: IPv4 server and local address, kept IPv4-mapped.
        let mapped = |a: [u8; 4]| u128::from(Ipv4Addr::from(a).to_ipv6_mapped());
        let n = Session6::new(
            IpProto::Udp,
            (client, 5353),
            (vip, 53),
            (mapped([198, 18, 1, 2]), 53),
            (mapped([198, 18, 1, 10]), 2000),
            State::Udp,
            ForwardMode::FullNat,
            0,
            0,
        );
        let c = conn_info6(0, &n, 0);
        assert_eq!(c.proto, Protocol::Udp);
        assert_eq!(c.local, (Ipv4Addr::new(198, 18, 1, 10).into(), 2000));
        assert_eq!(c.dest, (Ipv4Addr::new(198, 18, 1, 2).into(), 53));
        assert!(c.client.0.is_ipv6());
        let mut t = Session6::new(
            IpProto::Tcp,
            (client & !0xffff, 0),
            (vip, 80),
            (v6("2001:db8:1::2"), 80),
            (30_000, 6),
            State::None,
            ForwardMode::Route,
            0,
            0,
        );
        t.flags = Flags::TEMPLATE | Flags::NO_OUT;
        let c = conn_info6(0, &t, 0);
        assert!(c.template);
        assert_eq!(c.local, c.client);
        assert_eq!(c.client, ("2001:db8::".parse().unwrap(), 0));
    }
}

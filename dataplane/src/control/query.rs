//! Read-only answers: listings of services, local addresses, connections,
//! timeouts and worker counters.
//!
//! Nothing here changes the model: listings read it under its lock and sum
//! the workers' counters ([`super::stats`]). The connection listing asks each
//! worker through its mailbox (the sessions live on the workers' cores) and
//! gives up with an error if one does not answer in time, rather than show a
//! partial table.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use gw_proto::{
    ConnInfo, DestInfo, ErrorKind, Protocol, Response, ServiceInfo, ServiceKey, TimeoutSet,
    WorkerCounters as WireCounters,
};

use gw_core::mailbox::ConnFilter;
use gw_core::session::Session;

use super::stats::sub;
use super::{err, no_service, Control};

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
        let filter = service.map(|k| ConnFilter {
            proto: k.proto.number(),
            vip: gw_core::service::vip4(&k).unwrap_or(0),
            vport: k.port,
        });
        let mut conns = vec![];
        for (w, mb) in self.mailboxes.iter().enumerate() {
            let (sessions, now, complete) = mb.list(filter, 8192, Duration::from_secs(2));
            if !complete {
                return err(ErrorKind::Invalid, format!("worker {w} did not answer the connection listing"));
            }
            conns.extend(sessions.iter().map(|s| conn_info(w as u32, s, now)));
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
}

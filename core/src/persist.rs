//! Persistence templates (`ipvsadm -p`): IPVS's template rule in one place.
//!
//! A template is a [`Session`] with [`Flags::TEMPLATE`] and [`Flags::NO_OUT`]
//! in the client index under (protocol, client address & netmask, port 0,
//! VIP, service port); a port-0 service shares one template across all
//! ports. It names the real server (`dest`, `rip`, `rport`) that all new
//! connections of that client network go to.
//!
//! Invariants (IPVS's `n_control` rule, `ip_vs_conn.c`):
//! - [`Session::n_control`] counts the live connections whose `control` is
//!   the template: [`attach`] adds one when a connection is created,
//!   [`release`] takes it away when the connection leaves the table
//!   (expiry, or early removal), whatever removed it.
//! - While it controls connections the template never expires ([`expire`]
//!   re-arms it); after the last one ends it lives [`Session::timeout_ms`]
//!   more, measured from when that connection ended.
//! - Each template counts once in its real server's `persist` gauge, moved
//!   when the template follows a new server ([`schedule`]) and dropped when
//!   it expires.
//!
//! Count and timeout live in storage a template does not otherwise use
//! (see [`Session`]); only the named accessors touch it.

use crate::counters::{Drop, WorkerCounters};
use crate::service::{Dest, Service};
use crate::session::ipv6::{rip6, FlowKey6, Session6};
use crate::session::{ms_to_tick, Entry, Flags, FlowKey, Session, Table};
use crate::tcp_state::State;

/// What [`schedule`] needs of a table's entry beyond [`Template`]: the
/// family's template key and template, so that one body serves the IPv4
/// table ([`Session`]) and the IPv6 one ([`Session6`]).
pub trait Family: Entry {
    /// The template key of connection `key` to `svc`: (protocol, client
    /// address under the service's mask (`-M`), port 0, VIP, service port).
    fn template_key(key: &Self::Key, svc: &Service) -> Self::Key;
    /// The destination port of `key` (the real server's, on a port-0
    /// service).
    fn dport(key: &Self::Key) -> u16;
    /// A template of `tkey` naming `dest` on `rport`, flagged
    /// [`Flags::TEMPLATE`] and [`Flags::NO_OUT`].
    fn template(tkey: &Self::Key, svc: &Service, dest: &Dest, rport: u16) -> Self;
    /// The template follows `dest` on `rport`.
    fn follow(&mut self, dest: &Dest, rport: u16);
}

impl Family for Session {
    #[inline]
    fn template_key(key: &FlowKey, svc: &Service) -> FlowKey {
        FlowKey { proto: key.proto, src: key.src & svc.netmask, sport: 0, dst: key.dst, dport: svc.key.port }
    }
    #[inline]
    fn dport(key: &FlowKey) -> u16 {
        key.dport
    }
    fn template(tkey: &FlowKey, svc: &Service, dest: &Dest, rport: u16) -> Session {
        let mut t = Session::new(
            tkey.proto,
            (tkey.src, 0),
            (tkey.dst, tkey.dport),
            (dest.addr4(), rport),
            (0, 0),
            State::None,
            dest.mode,
            svc.slot,
            dest.slot,
        );
        t.flags = Flags::TEMPLATE | Flags::NO_OUT;
        t
    }
    #[inline]
    fn follow(&mut self, dest: &Dest, rport: u16) {
        (self.dest, self.rip, self.rport) = (dest.slot as u16, dest.addr4(), rport);
        // A route remembered for the old `rip` is not the new one's (a
        // template never forwards; kept right all the same).
        self.route = [None; 2];
    }
}

impl Family for Session6 {
    #[inline]
    fn template_key(key: &FlowKey6, svc: &Service) -> FlowKey6 {
        FlowKey6 {
            proto: key.proto,
            src: key.src & svc.netmask6,
            sport: 0,
            dst: key.dst,
            dport: svc.key.port,
        }
    }
    #[inline]
    fn dport(key: &FlowKey6) -> u16 {
        key.dport
    }
    fn template(tkey: &FlowKey6, svc: &Service, dest: &Dest, rport: u16) -> Session6 {
        let mut t = Session6::new(
            tkey.proto,
            (tkey.src, 0),
            (tkey.dst, tkey.dport),
            (rip6(dest), rport),
            (0, 0),
            State::None,
            dest.mode,
            svc.slot,
            dest.slot,
        );
        t.flags = Flags::TEMPLATE | Flags::NO_OUT;
        t
    }
    #[inline]
    fn follow(&mut self, dest: &Dest, rport: u16) {
        (self.dest, self.rip, self.rport) = (dest.slot as u16, rip6(dest), rport);
    }
}

/// Picks the real server of a new connection of `key` on persistent
/// service `svc` (timeout `ptime` ms) and returns (index into `svc.dests`,
/// template slot), in either family's table. An existing template whose
/// server is still in the service decides; otherwise `pick` schedules, and
/// the template is created or follows the new choice. The template's
/// deadline moves to `ptime` from `now` either way.
#[allow(clippy::too_many_arguments)]
pub fn schedule<E: Family>(
    sessions: &mut Table<E>,
    counters: &WorkerCounters,
    svc: &Service,
    key: &E::Key,
    now: u64,
    ptime: u64,
    pick: impl FnOnce() -> Option<usize>,
) -> Result<(usize, u32), Drop> {
    let tkey = E::template_key(key, svc);
    let found = sessions.lookup_in(&tkey);
    // Its count of connections is 16 bits (in the template's local port):
    // one more would wrap it, and the template would be freed under its
    // connections, whose ends then write into whatever took its slot.
    if found.is_some_and(|t| sessions.get(t).n_control() == u16::MAX) {
        return Err(Drop::PersistFull);
    }
    let kept = found.and_then(|t| svc.dests.iter().position(|d| d.slot == u32::from(sessions.get(t).dest())));
    let d = match kept {
        Some(d) => d,
        None => pick().ok_or(Drop::NoDest)?,
    };
    let dest = &svc.dests[d];
    // The real server's port; 0 (port-0 services, -g/-i) means the packet's.
    let rport = if dest.port == 0 { E::dport(key) } else { dest.port };
    let t = match found {
        Some(t) => {
            if kept.is_none() {
                // Its server is gone: the template follows the new choice.
                let tm = sessions.get_mut(t);
                counters.dests[tm.dest() as usize].persist.sub(1);
                tm.follow(dest, rport);
                counters.dests[dest.slot as usize].persist.add(1);
            }
            sessions.touch(t, now, ptime);
            t
        }
        None => {
            let mut tpl = E::template(&tkey, svc, dest, rport);
            tpl.set_timeout_ms(ptime.min(u32::MAX as u64) as u32);
            tpl.set_n_control(0);
            let t = sessions.insert(tpl, now, ptime).map_err(|_| Drop::TableFull)?;
            counters.dests[dest.slot as usize].persist.add(1);
            t
        }
    };
    Ok((d, t))
}

/// Connection slot `conn` is now controlled by template `t`.
#[inline]
pub fn attach<E: Entry>(sessions: &mut Table<E>, t: u32, conn: u32) {
    sessions.get_mut(conn).set_control(t);
    let tm = sessions.get_mut(t);
    tm.set_n_control(tm.n_control().saturating_add(1));
}

/// What the template rules below read and write of a template, in either
/// session table (IPv4's [`Session`], IPv6's [`Session6`]): IPVS's rule
/// lives here once.
pub trait Template {
    fn n_control(&self) -> u16;
    fn set_n_control(&mut self, n: u16);
    fn timeout_ms(&self) -> u32;
    fn set_timeout_ms(&mut self, ms: u32);
    fn extend_deadline(&mut self, tick: u32);
    fn dest(&self) -> u16;
}

impl Template for Session {
    fn n_control(&self) -> u16 {
        Session::n_control(self)
    }
    fn set_n_control(&mut self, n: u16) {
        Session::set_n_control(self, n)
    }
    fn timeout_ms(&self) -> u32 {
        Session::timeout_ms(self)
    }
    fn set_timeout_ms(&mut self, ms: u32) {
        Session::set_timeout_ms(self, ms)
    }
    fn extend_deadline(&mut self, tick: u32) {
        Session::extend_deadline(self, tick)
    }
    fn dest(&self) -> u16 {
        self.dest
    }
}

/// A connection of template `t` ended at tick `ended`: it no longer counts,
/// and after the last one the template lives its timeout from then.
/// Called by [`Table::remove`] (either family's table) for every
/// removed connection that has a template.
#[inline]
pub(crate) fn release(t: &mut impl Template, ended: u32) {
    let n = t.n_control().saturating_sub(1);
    t.set_n_control(n);
    if n == 0 {
        t.extend_deadline(ended + ms_to_tick(t.timeout_ms() as u64));
    }
}

/// Template `t` reached its deadline: `Some(ms)` keeps it `ms` longer
/// (it still controls connections: IPVS re-arms it), `None` lets it go
/// (and its real server's `persist` gauge drops).
#[inline]
pub(crate) fn expire(counters: &WorkerCounters, t: &impl Template) -> Option<u64> {
    if t.n_control() > 0 {
        return Some(t.timeout_ms() as u64);
    }
    counters.dests[t.dest() as usize].persist.sub(1);
    None
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use gw_proto::{ForwardMode, Protocol as SvcProto, Scheduler, ServiceKey};

    use super::*;
    use crate::sched::{DestConf, Prepared};
    use crate::service::Dest;
    use crate::session::SessionTable;
    use crate::session::NIL;
    use crate::wire::ipv4::Protocol;

    fn svc(rips: &[u32]) -> Service {
        let dests: Vec<Dest> = rips
            .iter()
            .enumerate()
            .map(|(i, r)| Dest {
                slot: i as u32,
                addr: std::net::IpAddr::V4(Ipv4Addr::from(*r)),
                port: 0,
                mode: ForwardMode::Route,
                weight: 1,
                upper: 0,
                lower: 0,
            })
            .collect();
        let conf: Vec<_> = rips.iter().map(|r| DestConf::new(1, *r, 0)).collect();
        Service {
            laddrs6: vec![],
            netmask6: u128::MAX,
            slot: 0,
            version: 1,
            key: ServiceKey { proto: SvcProto::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port: 80 },
            scheduler: Scheduler::Rr,
            prep: Prepared::build(Scheduler::Rr, 0, &conf),
            dests,
            laddrs: vec![],
            persistent_ms: Some(2_000),
            netmask: 0xffff_ff00,
            one_packet: false,
            sched_flags: 0,
            client_addr: gw_proto::ClientAddr::None,
            synproxy: false,
        }
    }

    fn key(src: u32, sport: u16) -> FlowKey {
        FlowKey { proto: Protocol::Tcp, src, sport, dst: 0xc612_0064, dport: 80 }
    }

    #[test]
    fn a_client_network_keeps_its_server_and_follows_a_new_one_when_it_goes() {
        let counters = WorkerCounters::new(0, 0, 1, 2);
        let mut sessions = SessionTable::new(16, 1, 0);
        let two = svc(&[0xc612_0102, 0xc612_0103]);
        let (d, t) =
            schedule(&mut sessions, &counters, &two, &key(0xc612_0002, 1000), 0, 2_000, || Some(1)).unwrap();
        assert_eq!(d, 1);
        let tm = *sessions.get(t);
        assert!(tm.is_template() && tm.flags.contains(Flags::NO_OUT));
        assert_eq!((tm.cip, tm.cport, tm.rip, tm.rport), (0xc612_0000, 0, 0xc612_0103, 80));
        assert_eq!((tm.n_control(), tm.timeout_ms(), tm.control), (0, 2_000, NIL));
        assert_eq!(counters.dests[1].persist.get(), 1);
        // Another host of the /24, another port: same template, no scheduling.
        let again = schedule(&mut sessions, &counters, &two, &key(0xc612_0009, 2000), 10, 2_000, || panic!());
        assert_eq!(again, Ok((1, t)));
        // Server 1 left the service: the template follows the new choice.
        let one = svc(&[0xc612_0102]);
        let moved = schedule(&mut sessions, &counters, &one, &key(0xc612_0002, 1001), 20, 2_000, || Some(0));
        assert_eq!(moved, Ok((0, t)));
        assert_eq!((sessions.get(t).dest, sessions.get(t).rip), (0, 0xc612_0102));
        assert_eq!((counters.dests[0].persist.get(), counters.dests[1].persist.get()), (1, 0));
        assert_eq!(sessions.len(), 1, "still one template");
    }

    /// A template (2 s, one server) and one connection it controls: the
    /// counters, the table, the service, the template's and the
    /// connection's slots.
    fn one_connection() -> (WorkerCounters, SessionTable, Service, u32, u32) {
        let counters = WorkerCounters::new(0, 0, 1, 1);
        let mut sessions = SessionTable::new(16, 1, 0);
        let s = svc(&[0xc612_0102]);
        let (_, t) =
            schedule(&mut sessions, &counters, &s, &key(0xc612_0002, 1000), 0, 2_000, || Some(0)).unwrap();
        let conn =
            Session::new(Protocol::Tcp, (1, 1), (2, 2), (3, 3), (1, 1), State::Udp, ForwardMode::Route, 0, 0);
        let c = sessions.insert(conn, 0, 60_000).unwrap();
        attach(&mut sessions, t, c);
        (counters, sessions, s, t, c)
    }

    #[test]
    fn a_template_lives_while_it_controls_connections_then_its_timeout() {
        let (counters, mut sessions, _, t, c) = one_connection();
        assert_eq!((sessions.get(t).n_control(), sessions.get(c).control), (1, t));
        assert_eq!(expire(&counters, sessions.get(t)), Some(2_000), "re-armed: it controls a connection");
        sessions.remove(c);
        assert_eq!(sessions.get(t).n_control(), 0, "release ran on removal");
        // Deadline: 2 s after the connection ended (removed at tick 0 here).
        assert_eq!(sessions.get(t).expires_in_ms(0), 1_984, "2 s in 64 ms ticks");
        assert_eq!(expire(&counters, sessions.get(t)), None);
        assert_eq!(counters.dests[0].persist.get(), 0, "the gauge drops with it");
    }

    /// A template at its count's limit takes no more connections (a
    /// counted drop) instead of wrapping; one ending makes room again.
    #[test]
    fn a_template_controlling_65535_connections_takes_no_more() {
        let (counters, mut sessions, s, t, c) = one_connection();
        sessions.get_mut(t).set_n_control(u16::MAX);
        let more = schedule(&mut sessions, &counters, &s, &key(0xc612_0003, 1000), 0, 2_000, || Some(0));
        assert_eq!(more, Err(Drop::PersistFull));
        sessions.remove(c);
        assert_eq!(sessions.get(t).n_control(), u16::MAX - 1);
        let again = schedule(&mut sessions, &counters, &s, &key(0xc612_0003, 1000), 0, 2_000, || Some(0));
        assert_eq!(again, Ok((0, t)));
    }

    #[test]
    fn release_extends_only_after_the_last_connection() {
        let mut t = Session::new(
            Protocol::Tcp,
            (1, 0),
            (2, 80),
            (3, 80),
            (0, 0),
            State::None,
            ForwardMode::Route,
            0,
            0,
        );
        t.flags = Flags::TEMPLATE | Flags::NO_OUT;
        t.set_timeout_ms(6_400);
        t.set_n_control(2);
        release(&mut t, 1_000);
        assert_eq!((t.n_control(), t.expires_in_ms(0)), (1, 0), "one left: no change");
        release(&mut t, 1_000);
        assert_eq!((t.n_control(), t.expires_in_ms(0)), (0, (1_000 + 100) << 6));
        release(&mut t, 5);
        assert_eq!(t.n_control(), 0, "never below zero");
        assert_eq!(t.expires_in_ms(0), (1_000 + 100) << 6, "an earlier end never shortens it");
    }
}

//! Reload (SIGHUP): make the running configuration equal to a desired one
//! by applying only the differences.
//!
//! Invariants: the desired requests are validated in full on a scratch
//! [`Control`] before anything changes, so a bad file changes nothing; the
//! differences are applied to a copy of the model under the model's lock
//! and take its place only if every one succeeds, so a reload the running
//! table cannot take (slots of deleted services not yet free for new ones)
//! changes nothing either, and workers see one new snapshot (or none when
//! nothing differs); services, real servers and local addresses that stay
//! keep their slots, statistics and sessions.

use std::sync::Arc;

use gw_proto::{DestSpec, Request, Response};

use gw_core::service::{Publisher, Snapshot};
use gw_core::tcp_state::Timeouts;

use super::Control;

impl Control {
    /// Makes the configuration equal to what `desired` (a rules file's
    /// requests) describes, for a reload. `desired` is first applied to an
    /// empty scratch model: if any request fails, nothing changes and the
    /// error says which. Otherwise only the differences are applied, as one
    /// change: services, servers and local addresses that stay keep their
    /// slots, statistics and sessions. If one of them fails on the running
    /// table (slots run out: a deleted service's are free for new ones only
    /// once every worker has left the snapshot that had it), nothing changes.
    /// The session timeouts stay as they are (a `--set` in `desired` is
    /// checked, not applied): [`Control::sync_with_timeouts`] sets them.
    pub fn sync(&self, desired: Vec<Request>) -> Response {
        self.sync_inner(None, desired)
    }

    /// [`Control::sync`] that also makes the session timeouts `timeouts`
    /// (the configuration file's `[timeouts]`) with `desired`'s `--set`
    /// lines applied on top, in the same all-or-nothing change: a reload
    /// sets what a restart would.
    pub fn sync_with_timeouts(&self, timeouts: Timeouts, desired: Vec<Request>) -> Response {
        self.sync_inner(Some(timeouts), desired)
    }

    fn sync_inner(&self, timeouts: Option<Timeouts>, desired: Vec<Request>) -> Response {
        let first = Snapshot::new(0, vec![], self.max_dests).with_timeouts(timeouts.unwrap_or_default());
        let scratch = Control::new(
            Arc::new(Publisher::new(Arc::new(first))),
            vec![],
            0,
            self.max_services,
            self.max_dests,
        )
        .with_locality_services(self.max_locality)
        .with_port_addrs(self.port_addrs.clone());
        if let e @ Response::Error { .. } = scratch.handle(Request::Restore { requests: desired }) {
            return e;
        }
        let (want, want_timeouts) = {
            let mut s = scratch.lock();
            (std::mem::take(&mut s.services), s.timeouts)
        };
        let mut m = self.lock();
        let new_timeouts = timeouts.is_some() && want_timeouts != m.timeouts;
        let ops = {
            let mut ops = vec![];
            for k in m.services.keys().filter(|k| !want.contains_key(k)) {
                ops.push(Request::DelService { key: *k });
            }
            for (k, w) in &want {
                let same_dest = |a: &DestSpec, b: &DestSpec| (a.addr, a.port) == (b.addr, b.port);
                let Some(cur) = m.services.get(k) else {
                    ops.push(Request::AddService { spec: w.spec.clone() });
                    // `want` holds the list as the file makes it (each
                    // server added goes first, as IPVS's); adding its
                    // servers last to first makes the same list.
                    ops.extend(w.dests.iter().rev().map(|d| Request::AddDest { service: *k, dest: d.spec }));
                    ops.extend(w.laddrs.iter().map(|a| Request::AddLaddr { service: *k, addr: *a }));
                    continue;
                };
                if cur.spec != w.spec {
                    ops.push(Request::EditService { spec: w.spec.clone() });
                }
                for d in cur.dests.iter().filter(|d| !w.dests.iter().any(|x| same_dest(&x.spec, &d.spec))) {
                    ops.push(Request::DelDest { service: *k, addr: d.spec.addr, port: d.spec.port });
                }
                // Last to first, as above: the new servers head the list
                // in the file's order for them, before the kept ones.
                for d in w.dests.iter().rev() {
                    match cur.dests.iter().find(|x| same_dest(&x.spec, &d.spec)) {
                        None => ops.push(Request::AddDest { service: *k, dest: d.spec }),
                        Some(x) if x.spec != d.spec => {
                            ops.push(Request::EditDest { service: *k, dest: d.spec })
                        }
                        Some(_) => {}
                    }
                }
                for a in cur.laddrs.iter().filter(|a| !w.laddrs.contains(a)) {
                    ops.push(Request::DelLaddr { service: *k, addr: *a });
                }
                for a in w.laddrs.iter().filter(|a| !cur.laddrs.contains(a)) {
                    ops.push(Request::AddLaddr { service: *k, addr: *a });
                }
            }
            ops
        };
        if ops.is_empty() && !new_timeouts {
            return Response::Ok;
        }
        // All or nothing: on a copy first (the model's own requests have no
        // effect outside it; `Restore`'s would publish what came before a
        // failure, as ipvsadm -R keeps it).
        let mut next = m.clone();
        let mut changed = new_timeouts;
        if new_timeouts {
            next.timeouts = want_timeouts;
        }
        for (i, r) in ops.into_iter().enumerate() {
            match self.apply(&mut next, r) {
                Ok(c) => changed |= c,
                Err(Response::Error { kind, message }) => {
                    let message = format!("change {} of the reload: {message}; nothing was changed", i + 1);
                    return Response::Error { kind, message };
                }
                Err(other) => return other,
            }
        }
        *m = next;
        if changed {
            self.publish(&mut m);
        }
        self.release_retired(&mut m);
        Response::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_util::{add, control, dest, key};
    use gw_proto::{ErrorKind, Scheduler, ServiceSpec};

    /// A reload sets the session timeouts a restart would: the file's
    /// `[timeouts]`, then the rules' `--set`; a refused reload keeps them.
    #[test]
    fn a_reload_sets_the_files_timeouts_then_the_rules_set() {
        use gw_proto::TimeoutSet;
        let (c, p) = control(1);
        add(&c);
        let generation = p.current().generation;
        let file = Timeouts { established: 300, udp: 60, ..Timeouts::default() };
        let services = || {
            vec![
                Request::AddService { spec: ServiceSpec::new(key(80), Scheduler::Rr) },
                Request::AddDest { service: key(80), dest: dest(2) },
            ]
        };
        assert_eq!(c.sync_with_timeouts(file, services()), Response::Ok);
        let now = p.current();
        assert_eq!((now.timeouts.established, now.timeouts.udp), (300, 60));
        assert_eq!(now.generation, generation + 1, "published though no service changed");
        // The rules' --set on top of the file's.
        let mut with_set = services();
        with_set.push(Request::SetTimeouts { timeouts: TimeoutSet { tcp: 120, tcpfin: 0, udp: 0 } });
        assert_eq!(c.sync_with_timeouts(file, with_set.clone()), Response::Ok);
        assert_eq!((p.current().timeouts.established, p.current().timeouts.udp), (120, 60));
        // Refused: nothing changes, timeouts included.
        let mut bad = with_set;
        bad.push(Request::AddService { spec: ServiceSpec::new(key(80), Scheduler::Rr) });
        assert!(matches!(c.sync_with_timeouts(Timeouts::default(), bad), Response::Error { .. }));
        assert_eq!(p.current().timeouts.established, 120);
        // The same again: nothing to publish.
        let g = p.current().generation;
        assert_eq!(c.sync_with_timeouts(file, services()), Response::Ok);
        assert_eq!(p.current().timeouts.established, 300);
        assert_eq!(c.sync_with_timeouts(file, services()), Response::Ok);
        assert_eq!(p.current().generation, g + 1);
        // sync alone leaves them.
        assert_eq!(c.sync(services()), Response::Ok);
        assert_eq!(p.current().timeouts.established, 300);
    }

    #[test]
    fn a_reload_applies_only_the_differences_and_a_bad_one_changes_nothing() {
        let (c, p) = control(1);
        add(&c);
        let slot_of = |c: &Control, last: u8| {
            c.lock().services[&key(80)]
                .dests
                .iter()
                .find(|d| gw_proto::v4(d.spec.addr).unwrap().octets()[3] == last)
                .map(|d| d.slot)
        };
        let kept = slot_of(&c, 2).unwrap();
        let spec = ServiceSpec::new(key(80), Scheduler::Rr);
        let mut heavier = dest(3);
        heavier.weight = 5;
        let desired = vec![
            Request::AddService { spec: spec.clone() },
            Request::AddDest { service: key(80), dest: dest(2) },
            Request::AddDest { service: key(80), dest: heavier },
            Request::AddService { spec: ServiceSpec::new(key(81), Scheduler::Wlc) },
        ];
        assert_eq!(c.sync(desired.clone()), Response::Ok);
        assert_eq!(slot_of(&c, 2), Some(kept), "an unchanged server keeps its slot (and sessions)");
        assert_eq!(
            c.lock().services[&key(80)].dests.iter().find(|d| d.spec.weight == 5).map(|d| d.spec.addr),
            Some(heavier.addr)
        );
        assert!(c.lock().services.contains_key(&key(81)));
        let generation = p.current().generation;
        assert_eq!(c.sync(desired), Response::Ok);
        assert_eq!(p.current().generation, generation, "nothing to do: no new snapshot");
        // A bad reload keeps everything as it was.
        let bad = vec![Request::AddService { spec: spec.clone() }, Request::AddService { spec }];
        assert!(matches!(c.sync(bad), Response::Error { kind: ErrorKind::ServiceExists, .. }));
        assert_eq!(p.current().generation, generation);
        assert!(c.lock().services.contains_key(&key(81)));
        // Dropping a service from the file deletes it.
        assert_eq!(
            c.sync(vec![Request::AddService { spec: ServiceSpec::new(key(81), Scheduler::Wlc) }]),
            Response::Ok
        );
        assert!(!c.lock().services.contains_key(&key(80)));
    }

    /// A reload whose new services only fit once the deleted ones' slots
    /// are free (the workers still run the snapshot that has them) fails
    /// whole: every running service stays, and nothing is published.
    #[test]
    fn a_reload_the_running_table_cannot_take_changes_nothing() {
        let (c, p) = control(1);
        let max = c.max_services;
        let old: Vec<_> = (0..max as u16).map(|i| key(1000 + i)).collect();
        for k in &old {
            assert_eq!(
                c.handle(Request::AddService { spec: ServiceSpec::new(*k, Scheduler::Rr) }),
                Response::Ok
            );
        }
        let generation = p.current().generation;
        let new: Vec<Request> = (0..max as u16)
            .map(|i| Request::AddService { spec: ServiceSpec::new(key(2000 + i), Scheduler::Rr) })
            .collect();
        match c.sync(new) {
            Response::Error { kind, message } => {
                assert_eq!(kind, ErrorKind::Full, "{message}");
                assert!(message.contains("nothing was changed"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.current().generation, generation, "nothing was published");
        let m = c.lock();
        assert!(old.iter().all(|k| m.services.contains_key(k)), "every running service stays");
        assert_eq!(m.services.len(), max);
    }
}

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
    pub fn sync(&self, desired: Vec<Request>) -> Response {
        let empty = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], self.max_dests))));
        let scratch = Control::new(empty, vec![], 0, self.max_services, self.max_dests)
            .with_locality_services(self.max_locality);
        if let e @ Response::Error { .. } = scratch.handle(Request::Restore { requests: desired }) {
            return e;
        }
        let want = std::mem::take(&mut scratch.lock().services);
        let mut m = self.lock();
        let ops = {
            let mut ops = vec![];
            for k in m.services.keys().filter(|k| !want.contains_key(k)) {
                ops.push(Request::DelService { key: *k });
            }
            for (k, w) in &want {
                let same_dest = |a: &DestSpec, b: &DestSpec| (a.addr, a.port) == (b.addr, b.port);
                let Some(cur) = m.services.get(k) else {
                    ops.push(Request::AddService { spec: w.spec.clone() });
                    ops.extend(w.dests.iter().map(|d| Request::AddDest { service: *k, dest: d.spec }));
                    ops.extend(w.laddrs.iter().map(|a| Request::AddLaddr { service: *k, addr: *a }));
                    continue;
                };
                if cur.spec != w.spec {
                    ops.push(Request::EditService { spec: w.spec.clone() });
                }
                for d in cur.dests.iter().filter(|d| !w.dests.iter().any(|x| same_dest(&x.spec, &d.spec))) {
                    ops.push(Request::DelDest { service: *k, addr: d.spec.addr, port: d.spec.port });
                }
                for d in &w.dests {
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
        if ops.is_empty() {
            return Response::Ok;
        }
        // All or nothing: on a copy first (the model's own requests have no
        // effect outside it; `Restore`'s would publish what came before a
        // failure, as ipvsadm -R keeps it).
        let mut next = m.clone();
        let mut changed = false;
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

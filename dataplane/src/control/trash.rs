//! The trash: deleted services and real servers that sessions may still
//! reference, as IPVS's `dest_trash` (`ip_vs_ctl.c`: `__ip_vs_del_dest`
//! moves a deleted server there, `ip_vs_trash_get_dest` takes it back when
//! the same server is added to the same service again,
//! `ip_vs_dest_trash_expire` frees it once nothing references it).
//!
//! What it keeps: a deleted server's slot (so its per-worker counters, its
//! ActiveConn/InActConn gauges and its statistics), its service's key, its
//! local addresses and steering; a deleted service's slot and
//! specification. Re-adding the same (service, address, port), or the same
//! service key, takes the entry out with its slot: sessions resume and the
//! counters continue, so `gwctl -d` then `-a`, `gwctl -C` then `-R` of the
//! saved rules, or a reload that drops then re-adds, keep every connection.
//!
//! While in the trash, a server's sessions keep forwarding (the snapshot
//! keeps the slot as [`gw_core::service::Trash`]); nothing new is scheduled
//! to it, and `-L` does not list it. IPVS with its default
//! `expire_nodest_conn = 0` keeps the connections too, but drops their
//! packets until the server is added back; gatewayd forwards them, so a
//! `-C`/`-R` or `-d`/`-a` gap stalls nothing (docs/gwctl.md).
//!
//! When an entry leaves: once no session references it (ActiveConn +
//! InActConn + persistence templates summed over workers is 0), every
//! worker runs a configuration without it as a live server, and it stayed
//! so for [`TRASH_GRACE`] (IPVS's `IP_VS_DEST_TRASH_PERIOD`), checked by
//! [`Control::tick`]. A trashed service leaves when none of its servers is
//! left in the trash, after the same grace. The gauges are read without a
//! lock while workers move a session between them, so one read can see a
//! live session as none; the grace (zero on every check for two minutes)
//! makes that harmless.
//!
//! Bounds: every entry holds a slot, so the trash is bounded by the slot
//! caps (`workers.max_services`, `max_dests`). When the free slots run out,
//! an add takes the slot of a trashed entry no session references (its
//! counters start again from zero); if there is none, the add is refused
//! as before.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use gw_core::service::{Steer, Steer6, Trash, TrashedDest as SnapDest, TrashedService as SnapSvc};
use gw_proto::{ServiceKey, ServiceSpec};

use super::model::{DestEntry, Model, SvcEntry};
use super::Control;

/// How long a trashed entry stays after its last session ended (IPVS's
/// `IP_VS_DEST_TRASH_PERIOD`, 120 s), so a quick re-add keeps its counters.
pub const TRASH_GRACE: Duration = Duration::from_secs(120);

/// When a trashed entry may go.
#[derive(Clone, Copy, Debug)]
pub(super) struct Idle {
    /// The generation of the first snapshot without it as a live entry.
    gone_at: u64,
    /// Since when every check found no session on it.
    empty_since: Option<Instant>,
}

/// A real server in the trash: (service, address, port).
pub(super) type DestKey = (ServiceKey, IpAddr, u16);

/// A deleted real server.
#[derive(Clone, Debug)]
pub(super) struct TrashedDest {
    pub(super) entry: DestEntry,
    /// Its service's local addresses and steering when it was deleted.
    pub(super) laddrs: Vec<IpAddr>,
    pub(super) steer: Steer,
    pub(super) steer6: Steer6,
    idle: Idle,
}

/// A deleted service (its servers are [`TrashedDest`]s of its key).
#[derive(Clone, Debug)]
pub(super) struct TrashedSvc {
    pub(super) entry: SvcEntry,
    idle: Idle,
}

/// The trash: deleted services by key, deleted servers by (service, address, port).
#[derive(Clone, Debug, Default)]
pub(super) struct TrashBin {
    pub(super) services: HashMap<ServiceKey, TrashedSvc>,
    pub(super) dests: HashMap<DestKey, TrashedDest>,
}

impl TrashBin {
    /// The services that have servers in the trash.
    fn services_with_dests(&self) -> HashSet<ServiceKey> {
        self.dests.keys().map(|k| k.0).collect()
    }
}

/// How a service's connections are steered (see [`gw_core::steer`]).
pub(super) fn steer_of(spec: &ServiceSpec) -> Steer {
    let vip = gw_core::service::vip4(&spec.key).unwrap_or(0);
    Steer::of(spec.scheduler, spec.persistent.is_some(), u32::from(spec.netmask), vip)
}

/// How an IPv6 service's connections are steered.
pub(super) fn steer6_of(spec: &ServiceSpec) -> Steer6 {
    let vip = gw_core::service::vip6(&spec.key).unwrap_or(0);
    let mask = gw_core::service::mask6(spec.prefix6);
    Steer6::of(spec.scheduler, spec.persistent.is_some(), mask, vip)
}

impl Control {
    /// Sessions and templates referencing real-server slot `slot`, over workers.
    pub(super) fn dest_refs(&self, slot: u32) -> u64 {
        let (_, active, inactive) = self.dest_stats(slot);
        active.wrapping_add(inactive).wrapping_add(self.dest_persist(slot))
    }

    /// Moves real server `d`, just removed from service `svc` (with local
    /// addresses `laddrs`), to the trash.
    pub(super) fn trash_dest(m: &mut Model, svc: &ServiceSpec, laddrs: &[IpAddr], d: DestEntry) {
        let idle = Idle { gone_at: m.generation + 1, empty_since: None };
        let key = (svc.key, d.spec.addr, d.spec.port);
        let t = TrashedDest {
            entry: d,
            laddrs: laddrs.to_vec(),
            steer: steer_of(svc),
            steer6: steer6_of(svc),
            idle,
        };
        m.trash.dests.insert(key, t);
    }

    /// Moves service `s` (just removed from the model) and its servers to the trash.
    pub(super) fn trash_service(m: &mut Model, mut s: SvcEntry) {
        for d in std::mem::take(&mut s.dests) {
            Self::trash_dest(m, &s.spec, &s.laddrs, d);
        }
        let idle = Idle { gone_at: m.generation + 1, empty_since: None };
        m.trash.services.insert(s.spec.key, TrashedSvc { entry: s, idle });
    }

    /// Takes real server `addr:port` of service `svc` out of the trash.
    pub(super) fn untrash_dest(m: &mut Model, svc: ServiceKey, addr: IpAddr, port: u16) -> Option<DestEntry> {
        m.trash.dests.remove(&(svc, addr, port)).map(|t| t.entry)
    }

    /// Takes service `key` out of the trash (its servers stay there until added).
    pub(super) fn untrash_service(m: &mut Model, key: ServiceKey) -> Option<SvcEntry> {
        m.trash.services.remove(&key).map(|t| t.entry)
    }

    /// Whether a trashed entry gone at `gone_at` with `refs` references
    /// may be freed now (every worker moved past its deletion, no session).
    fn unreferenced(&self, gone_at: u64, refs: u64) -> bool {
        refs == 0 && self.min_worker_generation() >= gone_at
    }

    /// Slots run out: frees the real-server slot of a trashed server no
    /// session references (the longest idle first) and returns it.
    pub(super) fn reclaim_dest_slot(&self, m: &mut Model) -> Option<u32> {
        let key = m
            .trash
            .dests
            .iter()
            .filter(|(_, t)| self.unreferenced(t.idle.gone_at, self.dest_refs(t.entry.slot)))
            .min_by_key(|(_, t)| (t.idle.empty_since.is_none(), t.idle.empty_since))
            .map(|(k, _)| *k)?;
        m.trash.dests.remove(&key).map(|t| t.entry.slot)
    }

    /// Slots run out: frees the slot of a trashed service none of whose
    /// trashed servers a session references (those go with it).
    pub(super) fn reclaim_svc_slot(&self, m: &mut Model) -> Option<u32> {
        let mut busy = HashSet::new();
        for ((svc, ..), d) in &m.trash.dests {
            if !self.unreferenced(d.idle.gone_at, self.dest_refs(d.entry.slot)) {
                busy.insert(*svc);
            }
        }
        let key = m
            .trash
            .services
            .iter()
            .find(|(k, t)| !busy.contains(*k) && self.min_worker_generation() >= t.idle.gone_at)
            .map(|(k, _)| *k)?;
        let t = m.trash.services.remove(&key)?;
        let mut freed = vec![];
        m.trash.dests.retain(|k, d| {
            let keep = k.0 != key;
            if !keep {
                freed.push(d.entry.slot);
            }
            keep
        });
        for slot in freed {
            m.dest_slots.release(slot);
        }
        Some(t.entry.slot)
    }

    /// The periodic check ([`Control::tick`]): frees every trashed entry
    /// that no session referenced on any check for [`TRASH_GRACE`]; a
    /// service goes once none of its servers is left in the trash. Returns
    /// whether anything went (the snapshot then changes).
    pub(super) fn sweep_trash(&self, m: &mut Model, now: Instant) -> bool {
        if m.trash.dests.is_empty() && m.trash.services.is_empty() {
            return false;
        }
        let idle_long = |idle: &mut Idle, empty: bool| {
            if !empty {
                idle.empty_since = None;
                return false;
            }
            let since = *idle.empty_since.get_or_insert(now);
            now.saturating_duration_since(since) >= TRASH_GRACE
        };
        let mut freed = vec![];
        m.trash.dests.retain(|_, t| {
            let empty = self.unreferenced(t.idle.gone_at, self.dest_refs(t.entry.slot));
            let gone = idle_long(&mut t.idle, empty);
            if gone {
                freed.push((true, t.entry.slot));
            }
            !gone
        });
        let with_dests = m.trash.services_with_dests();
        m.trash.services.retain(|k, t| {
            let empty = self.min_worker_generation() >= t.idle.gone_at && !with_dests.contains(k);
            let gone = idle_long(&mut t.idle, empty);
            if gone {
                freed.push((false, t.entry.slot));
            }
            !gone
        });
        for (is_dest, slot) in &freed {
            if *is_dest {
                m.dest_slots.release(*slot);
            } else {
                m.svc_slots.release(*slot);
            }
        }
        !freed.is_empty()
    }

    /// What the snapshot keeps of the trash.
    pub(super) fn snapshot_trash(m: &Model) -> Trash {
        // A deleted service's VIP and steering only while servers of it are
        // in the trash (they hold its sessions).
        let with_dests = m.trash.services_with_dests();
        Trash {
            dests: m
                .trash
                .dests
                .iter()
                .map(|((svc, addr, port), t)| SnapDest {
                    slot: t.entry.slot,
                    proto: svc.proto.number(),
                    addr: *addr,
                    port: *port,
                    mode: t.entry.spec.mode,
                    steer: t.steer,
                    steer6: t.steer6,
                    laddrs: super::model::laddrs4(&t.laddrs),
                    laddrs6: super::model::laddrs6(&t.laddrs),
                })
                .collect(),
            services: m
                .trash
                .services
                .values()
                .filter(|t| with_dests.contains(&t.entry.spec.key))
                .map(|t| SnapSvc {
                    key: t.entry.spec.key,
                    steer: steer_of(&t.entry.spec),
                    steer6: steer6_of(&t.entry.spec),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use gw_proto::{ErrorKind, Request, Response, Scheduler, ServiceInfo, ServiceKey, ServiceSpec};

    use super::TRASH_GRACE;
    use crate::control::test_util::{add, control, dest, key};
    use crate::control::Control;

    fn slot_of(c: &Control, svc: ServiceKey, last: u8) -> Option<u32> {
        let m = c.lock();
        m.services
            .get(&svc)?
            .dests
            .iter()
            .find(|d| gw_proto::v4(d.spec.addr).unwrap().octets()[3] == last)
            .map(|d| d.slot)
    }
    fn listing(c: &Control) -> Vec<ServiceInfo> {
        let Response::Services { services, .. } = c.query(Request::List { service: None }) else { panic!() };
        services
    }
    fn del(c: &Control, last: u8) {
        let d = dest(last);
        assert_eq!(c.handle(Request::DelDest { service: key(80), addr: d.addr, port: d.port }), Response::Ok);
    }
    fn add_dest(c: &Control, last: u8) -> Response {
        c.handle(Request::AddDest { service: key(80), dest: dest(last) })
    }
    /// The rules `add` made plus a second server and a local address, as `-S` saves them.
    fn rules() -> Vec<Request> {
        vec![
            Request::AddService { spec: ServiceSpec::new(key(80), Scheduler::Rr) },
            Request::AddDest { service: key(80), dest: dest(2) },
            Request::AddDest { service: key(80), dest: dest(3) },
            Request::AddLaddr { service: key(80), addr: Ipv4Addr::new(198, 18, 1, 10).into() },
            Request::AddService { spec: ServiceSpec::new(key(81), Scheduler::Wlc) },
            Request::AddDest { service: key(81), dest: dest(4) },
        ]
    }

    #[test]
    fn a_deleted_server_re_added_gets_its_slot_sessions_and_counters_back() {
        let (c, p) = control(2);
        add(&c);
        let slot = slot_of(&c, key(80), 2).unwrap();
        c.workers[0].dests[slot as usize].inpkts.add(7);
        c.workers[1].dests[slot as usize].active.add(3); // three live sessions
        del(&c, 2);
        // Not listed, never scheduled, but its sessions keep forwarding.
        assert!(listing(&c)[0].dests.is_empty());
        let snap = p.current();
        assert!(snap.services()[0].dests.is_empty());
        assert!(!snap.dest_live(slot) && snap.dest_forwards(slot));
        // Traffic of its sessions while deleted still counts.
        c.workers[0].dests[slot as usize].inpkts.add(1);
        assert_eq!(add_dest(&c, 2), Response::Ok);
        assert_eq!(slot_of(&c, key(80), 2), Some(slot));
        let d = &listing(&c)[0].dests[0];
        assert_eq!((d.stats.inpkts, d.active_conns), (8, 3), "counters and gauges continue");
        assert!(p.current().dest_live(slot));
        assert!(c.lock().trash.dests.is_empty());
        // Another server at the same address but another port is another server.
        let mut other = dest(2);
        other.port = 81;
        assert_eq!(c.handle(Request::AddDest { service: key(80), dest: other }), Response::Ok);
        // (It heads the list: a server added goes first, as IPVS's.)
        assert_ne!(c.lock().services[&key(80)].dests[0].slot, slot);
    }

    /// As the kernel's add (`if (add || udest->weight != 0)`): a server
    /// taken back from the trash with weight 0 has `last_weight` 0, so mh
    /// gives it no slots, where keeping its old one left clients with no
    /// server.
    #[test]
    fn a_server_back_from_the_trash_with_weight_zero_has_last_weight_zero() {
        let (c, _) = control(1);
        add(&c);
        let slot = slot_of(&c, key(80), 2).unwrap();
        c.workers[0].dests[slot as usize].active.add(1);
        del(&c, 2);
        let mut d = dest(2);
        d.weight = 0;
        assert_eq!(c.handle(Request::AddDest { service: key(80), dest: d }), Response::Ok);
        let m = c.lock();
        let e = m.services[&key(80)].dests.iter().find(|e| e.slot == slot).expect("back with its slot");
        assert_eq!((e.spec.weight, e.last_weight), (0, 0));
    }

    #[test]
    fn clear_then_restore_of_the_same_rules_keeps_every_slot() {
        let (c, p) = control(1);
        assert_eq!(c.handle(Request::Restore { requests: rules() }), Response::Ok);
        let before = c.lock().services.values().map(|s| (s.slot, s.dests.clone())).collect::<Vec<_>>();
        let svc_slot = c.lock().services[&key(80)].slot;
        c.workers[0].services[svc_slot as usize].inpkts.add(5);
        c.workers[0].dests[before[0].1[0].slot as usize].inactive.add(1);
        assert_eq!(c.handle(Request::Clear), Response::Ok);
        assert!(listing(&c).is_empty(), "-L shows nothing of the trash");
        assert!(matches!(
            c.query(Request::List { service: Some(key(80)) }),
            Response::Error { kind: ErrorKind::NoService, .. }
        ));
        let snap = p.current();
        assert!(
            snap.service(gw_core::wire::ipv4::Protocol::Tcp, gw_core::service::vip4(&key(80)).unwrap(), 80)
                .is_none(),
            "nothing new is scheduled"
        );
        assert!(snap.dest_forwards(before[0].1[0].slot));
        assert!(snap.owns(u32::from(Ipv4Addr::new(198, 18, 1, 10))), "the local address stays the gateway's");
        assert!(snap.is_laddr(u32::from(Ipv4Addr::new(198, 18, 1, 10))));
        assert_eq!(c.handle(Request::Restore { requests: rules() }), Response::Ok);
        let after = c.lock().services.values().map(|s| (s.slot, s.dests.clone())).collect::<Vec<_>>();
        let slots = |v: &[(u32, Vec<super::DestEntry>)]| {
            v.iter().map(|(s, d)| (*s, d.iter().map(|d| d.slot).collect::<Vec<_>>())).collect::<Vec<_>>()
        };
        assert_eq!(slots(&after), slots(&before));
        assert_eq!(listing(&c)[0].stats.inpkts, 5, "the service's statistics continue");
        assert_eq!(listing(&c)[0].dests[0].inactive_conns, 1);
        let m = c.lock();
        assert!(m.trash.dests.is_empty() && m.trash.services.is_empty());
    }

    #[test]
    fn a_reload_that_drops_then_re_adds_a_service_keeps_its_slots() {
        let (c, _) = control(1);
        assert_eq!(c.sync(rules()), Response::Ok);
        let svc = c.lock().services[&key(80)].slot;
        let d = slot_of(&c, key(80), 3).unwrap();
        assert_eq!(c.sync(rules()[4..].to_vec()), Response::Ok);
        assert!(!c.lock().services.contains_key(&key(80)));
        assert_eq!(c.sync(rules()), Response::Ok);
        assert_eq!(c.lock().services[&key(80)].slot, svc);
        assert_eq!(slot_of(&c, key(80), 3), Some(d));
    }

    #[test]
    fn the_trash_empties_once_no_session_is_left_for_the_grace_period() {
        let (c, p) = control(1);
        add(&c);
        let slot = slot_of(&c, key(80), 2).unwrap();
        let cells = &c.workers[0].dests[slot as usize];
        cells.inactive.add(1);
        cells.persist.add(1);
        del(&c, 2);
        assert_eq!(c.handle(Request::DelService { key: key(80) }), Response::Ok);
        let t0 = Instant::now();
        let later = |s: u64| t0 + Duration::from_secs(s);
        c.tick(t0);
        c.tick(later(1000));
        assert_eq!(c.lock().trash.dests.len(), 1, "a worker has not seen the deletion yet");
        c.workers[0].generation.set(p.current().generation);
        c.tick(later(2000));
        c.tick(later(3000));
        assert!(
            p.current().owns(gw_core::service::vip4(&key(80)).unwrap()),
            "the deleted service's VIP stays the gateway's"
        );
        assert_eq!(c.lock().trash.dests.len(), 1, "a session and a template still use it");
        cells.inactive.sub(1);
        c.tick(later(4000));
        assert_eq!(c.lock().trash.dests.len(), 1, "the template still does");
        cells.persist.sub(1);
        c.tick(later(5000)); // first seen empty
        c.tick(later(5000) + TRASH_GRACE - Duration::from_secs(1));
        assert_eq!(c.lock().trash.dests.len(), 1, "within the grace period");
        assert!(p.current().dest_forwards(slot));
        c.tick(later(5000) + TRASH_GRACE);
        assert!(c.lock().trash.dests.is_empty());
        assert!(!p.current().dest_forwards(slot), "the new snapshot drops it");
        assert!(
            !p.current().owns(gw_core::service::vip4(&key(80)).unwrap()),
            "and the VIP of its deleted service"
        );
        assert_eq!(c.lock().trash.services.len(), 1, "the service goes a grace period after its last server");
        c.tick(later(5000) + TRASH_GRACE * 2);
        assert!(c.lock().trash.services.is_empty());
        // The slot is free again: a new server gets it, counted from zero.
        c.workers[0].dests[slot as usize].inpkts.add(9);
        add(&c);
        assert_eq!(slot_of(&c, key(80), 2), Some(slot));
        assert_eq!(listing(&c)[0].dests[0].stats.inpkts, 0);
    }

    #[test]
    fn a_session_seen_on_any_check_restarts_the_grace_period() {
        let (c, p) = control(1);
        add(&c);
        let slot = slot_of(&c, key(80), 2).unwrap();
        del(&c, 2);
        c.workers[0].generation.set(p.current().generation);
        let t0 = Instant::now();
        c.tick(t0);
        c.workers[0].dests[slot as usize].active.add(1);
        c.tick(t0 + TRASH_GRACE / 2);
        c.workers[0].dests[slot as usize].active.sub(1);
        c.tick(t0 + TRASH_GRACE);
        assert_eq!(c.lock().trash.dests.len(), 1);
        c.tick(t0 + TRASH_GRACE * 2);
        assert!(c.lock().trash.dests.is_empty());
    }

    #[test]
    fn when_slots_run_out_an_unreferenced_trashed_slot_is_reused_first() {
        // 16 real-server slots, 8 service slots (test_util::control).
        let (c, p) = control(1);
        add(&c);
        for last in 3..18 {
            assert_eq!(add_dest(&c, last), Response::Ok);
        }
        assert!(matches!(add_dest(&c, 30), Response::Error { kind: ErrorKind::Full, .. }));
        let (busy, idle) = (slot_of(&c, key(80), 2).unwrap(), slot_of(&c, key(80), 3).unwrap());
        c.workers[0].dests[busy as usize].active.add(1);
        del(&c, 2);
        del(&c, 3);
        let r = add_dest(&c, 30);
        assert!(
            matches!(r, Response::Error { kind: ErrorKind::Full, .. }),
            "no worker saw the deletion: {r:?}"
        );
        c.workers[0].generation.set(p.current().generation);
        assert_eq!(add_dest(&c, 30), Response::Ok);
        assert_eq!(slot_of(&c, key(80), 30), Some(idle), "the trashed slot no session uses");
        let Response::Error { kind, message } = add_dest(&c, 31) else { panic!() };
        assert_eq!(kind, ErrorKind::Full, "a trashed slot with a session is never taken");
        assert_eq!(message, "real-server table is full (workers.max_dests = 16)");
        assert_eq!(c.lock().trash.dests.len(), 1);
        assert!(p.current().dest_forwards(busy));
        // 3's trash entry went with its slot: adding it back needs a new one.
        assert!(matches!(add_dest(&c, 3), Response::Error { kind: ErrorKind::Full, .. }));
    }

    #[test]
    fn when_service_slots_run_out_an_unreferenced_trashed_service_is_reused() {
        let (c, p) = control(1);
        add(&c);
        for port in 81..88 {
            let spec = ServiceSpec::new(key(port), Scheduler::Rr);
            assert_eq!(c.handle(Request::AddService { spec }), Response::Ok);
        }
        let spec = ServiceSpec::new(key(99), Scheduler::Rr);
        assert!(matches!(
            c.handle(Request::AddService { spec: spec.clone() }),
            Response::Error { kind: ErrorKind::Full, .. }
        ));
        let busy = slot_of(&c, key(80), 2).unwrap();
        c.workers[0].dests[busy as usize].inactive.add(1);
        assert_eq!(c.handle(Request::DelService { key: key(80) }), Response::Ok);
        c.workers[0].generation.set(p.current().generation);
        let r = c.handle(Request::AddService { spec: spec.clone() });
        assert!(
            matches!(r, Response::Error { kind: ErrorKind::Full, .. }),
            "its server has a session: {r:?}"
        );
        let freed = c.lock().services[&key(81)].slot;
        assert_eq!(c.handle(Request::DelService { key: key(81) }), Response::Ok);
        c.workers[0].generation.set(p.current().generation);
        assert_eq!(c.handle(Request::AddService { spec }), Response::Ok);
        assert_eq!(c.lock().services[&key(99)].slot, freed);
        assert_eq!(c.lock().trash.services.len(), 1, "the one with a session stays");
    }
}

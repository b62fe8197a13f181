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
use crate::service::Service;
use crate::session::{ms_to_tick, Flags, FlowKey, Session, SessionTable};
use crate::tcp_state::State;

/// Picks the real server of a new connection of `key` on persistent
/// service `svc` (timeout `ptime` ms) and returns (index into `svc.dests`,
/// template slot). An existing template whose server is still in the
/// service decides; otherwise `pick` schedules, and the template is created
/// or follows the new choice. The template's deadline moves to `ptime`
/// from `now` either way.
#[allow(clippy::too_many_arguments)]
pub fn schedule(
    sessions: &mut SessionTable,
    counters: &WorkerCounters,
    svc: &Service,
    key: &FlowKey,
    now: u64,
    ptime: u64,
    pick: impl FnOnce() -> Option<usize>,
) -> Result<(usize, u32), Drop> {
    let tkey =
        FlowKey { proto: key.proto, src: key.src & svc.netmask, sport: 0, dst: key.dst, dport: svc.key.port };
    let found = sessions.lookup_in(&tkey);
    let kept = found.and_then(|t| svc.dests.iter().position(|d| d.slot == sessions.get(t).dest));
    let d = match kept {
        Some(d) => d,
        None => pick().ok_or(Drop::NoDest)?,
    };
    let dest = &svc.dests[d];
    // The real server's port; 0 (port-0 services, -g/-i) means the packet's.
    let rs = (u32::from(dest.addr), if dest.port == 0 { key.dport } else { dest.port });
    let t = match found {
        Some(t) => {
            if kept.is_none() {
                // Its server is gone: the template follows the new choice.
                let tm = sessions.get_mut(t);
                counters.dests[tm.dest as usize].persist.sub(1);
                (tm.dest, tm.rip, tm.rport) = (dest.slot, rs.0, rs.1);
                counters.dests[dest.slot as usize].persist.add(1);
            }
            sessions.touch(t, now, ptime);
            t
        }
        None => {
            let mut tpl = Session::new(
                key.proto,
                (tkey.src, 0),
                (tkey.dst, tkey.dport),
                rs,
                (0, 0),
                State::None,
                dest.mode,
                svc.slot,
                dest.slot,
            );
            tpl.flags = Flags::TEMPLATE | Flags::NO_OUT;
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
pub fn attach(sessions: &mut SessionTable, t: u32, conn: u32) {
    sessions.get_mut(conn).control = t;
    let tm = sessions.get_mut(t);
    tm.set_n_control(tm.n_control().saturating_add(1));
}

/// A connection of template `t` ended at tick `ended`: it no longer counts,
/// and after the last one the template lives its timeout from then.
/// Called by [`SessionTable::remove`] for every removed connection that has
/// a template.
#[inline]
pub(crate) fn release(t: &mut Session, ended: u32) {
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
pub fn expire(counters: &WorkerCounters, t: &Session) -> Option<u64> {
    if t.n_control() > 0 {
        return Some(t.timeout_ms() as u64);
    }
    counters.dests[t.dest as usize].persist.sub(1);
    None
}

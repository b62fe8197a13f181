//! From the parsed configuration to gatewayd's services: one service per
//! virtual server (per address and port of its group), its real servers and
//! its FNAT local addresses, with keepalived's defaults and its checks
//! (`check_data.c`'s `validate_check_config`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use gw_proto::{
    DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceKey, ServiceSpec, DEFAULT_PERSISTENCE,
};

use crate::model::{addrs_in, span, Conf, Granularity, VirtualServer, VsAddr};
use crate::reader::Pos;
use crate::{Error, Notice};

/// The most services one `virtual_server group` may expand to.
pub const MAX_GROUP_SERVICES: u64 = 4096;

/// One service as the file defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The `virtual_server` line.
    pub at: Pos,
    /// Index of its `virtual_server` in [`Conf::virtual_servers`].
    pub vs: usize,
    pub spec: ServiceSpec,
    /// Each real server with its index in the virtual server's `real_servers`.
    pub dests: Vec<(usize, DestSpec)>,
    pub laddrs: Vec<IpAddr>,
}

impl Service {
    /// The requests that create it: `AddService`, `AddDest`s, `AddLaddr`s.
    pub fn requests(&self) -> impl Iterator<Item = Request> + '_ {
        let key = self.spec.key;
        std::iter::once(Request::AddService { spec: self.spec.clone() })
            .chain(self.dests.iter().map(move |(_, d)| Request::AddDest { service: key, dest: *d }))
            .chain(self.laddrs.iter().map(move |a| Request::AddLaddr { service: key, addr: *a }))
    }
}

/// The addresses and ports a virtual server stands for.
fn keys_of(conf: &Conf, vs: &VirtualServer) -> Result<Vec<(IpAddr, u16)>, Error> {
    match &vs.addr {
        VsAddr::Addr { addr, port } => Ok(vec![(*addr, *port)]),
        VsAddr::Group(name) => {
            let g = conf
                .groups
                .get(name)
                .ok_or_else(|| vs.at.error(format!("virtual_server_group {name} not found")))?;
            let total = g.entries.iter().fold(0u128, |t, e| t.saturating_add(span(e.first, e.last)));
            if total > u128::from(MAX_GROUP_SERVICES) {
                return Err(g.at.error(format!(
                    "virtual_server_group {name} stands for {total} addresses; gatewayd takes at most {MAX_GROUP_SERVICES}"
                )));
            }
            Ok(g.entries
                .iter()
                .flat_map(|e| addrs_in(e.first, e.last).map(|a| (a, e.port.unwrap_or(0))))
                .collect())
        }
    }
}

/// The family a virtual server's addresses are of: its address's, or its
/// group's first entry's (`None` for an unknown or empty group).
fn family_of(conf: &Conf, vs: &VirtualServer) -> Option<bool> {
    match &vs.addr {
        VsAddr::Addr { addr, .. } => Some(addr.is_ipv6()),
        VsAddr::Group(g) => conf.groups.get(g)?.entries.first().map(|e| e.first.is_ipv6()),
    }
}

/// Whether a `kind` ("real" or "sorry") server of `addr`, forwarded by
/// `mode`, cannot serve a virtual server of family `v6`, and keepalived's
/// warning for it: keepalived's `rs_end_handler` and `vs_end_handler` skip
/// a server of the other family unless it is tunnelled; gatewayd takes the
/// other family only for FULLNAT's NAT64 (an IPv4 server behind an IPv6
/// VIP), not for TUN.
fn family_mismatch(v6: bool, addr: IpAddr, mode: ForwardMode, kind: &str) -> Option<String> {
    let skip = match (v6, addr.is_ipv6(), mode) {
        (a, b, _) if a == b => return None,
        (true, false, ForwardMode::FullNat) => return None,
        (_, _, ForwardMode::Tunnel) => "a tunnel of another family is not supported by gatewayd",
        (false, true, ForwardMode::FullNat) => {
            "an IPv6 FNAT server behind an IPv4 VIP is not supported by gatewayd"
        }
        _ => {
            return Some(format!(
            "Address family of virtual server and {kind} server {addr} don't match - skipping {kind} server."
        ))
        }
    };
    Some(format!("{kind} server {addr}: {skip} - skipping {kind} server."))
}

/// keepalived's corrections of a parsed file (`rs_end_handler`,
/// `vs_end_handler`, `check_data.c`'s `validate_check_config`), each with
/// its warning: a real or sorry server of the other family is skipped (see
/// [`family_mismatch`]); a DR or TUN server on another port than its
/// virtual server's is moved to that port (only reported for a group); a
/// `quorum` above the real servers' total weight is lowered to it, and a
/// `hysteresis` not below the quorum to one less.
pub fn validate(conf: &mut Conf, notices: &mut Vec<Notice>) {
    let families: Vec<Option<bool>> = conf.virtual_servers.iter().map(|vs| family_of(conf, vs)).collect();
    for (vs, v6) in conf.virtual_servers.iter_mut().zip(families) {
        let name = match &vs.addr {
            VsAddr::Addr { addr, port } => gw_proto::AddrPort(*addr, *port).to_string(),
            VsAddr::Group(g) => format!("group {g}"),
        };
        let vs_mode = vs.forward.unwrap_or(ForwardMode::Masq);
        if let Some(v6) = v6 {
            vs.real_servers.retain(|rs| {
                match family_mismatch(v6, rs.addr, rs.forward.unwrap_or(vs_mode), "real") {
                    Some(m) => {
                        notices.push(Notice::new(&rs.at, m));
                        false
                    }
                    None => true,
                }
            });
            let sorry = vs.sorry_server.as_ref();
            if let Some(m) =
                sorry.and_then(|ss| family_mismatch(v6, ss.addr, ss.forward.unwrap_or(vs_mode), "sorry"))
            {
                notices.push(Notice::new(&vs.sorry_server.take().expect("checked").at, m));
            }
        }
        // A link-local target needs the interface to leave by (keepalived:
        // `bind_if`, else the checker is dropped, `check_conn_opts`); the
        // checks here do not bind to one, so such a checker is skipped
        // either way (its server is then up, as keepalived's without one).
        for rs in &mut vs.real_servers {
            let rs_addr = rs.addr;
            rs.checkers.retain(|c| {
                let to = c.common.connect_ip.unwrap_or(rs_addr);
                let link_local = matches!(to, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
                if link_local {
                    let m = format!("checker of link-local {to}: gatewayd's checks do not bind to an interface (bind_if) - skipped");
                    notices.push(Notice::new(&c.at, m));
                }
                !link_local
            });
        }
        let routed = |m: ForwardMode| matches!(m, ForwardMode::Route | ForwardMode::Tunnel);
        match vs.addr {
            VsAddr::Addr { port: vport, .. } => {
                for rs in vs.real_servers.iter_mut().filter(|rs| routed(rs.forward.unwrap_or(vs_mode))) {
                    if rs.port.is_some_and(|p| p != vport) {
                        let m = format!("WARNING - virtual server {name} and real server {} ports don't match - resetting", gw_proto::AddrPort(rs.addr, rs.port.unwrap_or(0)));
                        notices.push(Notice::new(&rs.at, m));
                        rs.port = None;
                    }
                }
                if let Some(ss) = vs.sorry_server.as_mut().filter(|ss| routed(ss.forward.unwrap_or(vs_mode)))
                {
                    if ss.port.is_some_and(|p| p != vport) {
                        let m = format!(
                            "WARNING - virtual server {name} and sorry server ports don't match - resetting"
                        );
                        notices.push(Notice::new(&ss.at, m));
                        ss.port = None;
                    }
                }
            }
            VsAddr::Group(_) => {}
        }
        // (A virtual server without real servers is ignored whole.)
        let weight_sum: u64 =
            vs.real_servers.iter().map(|rs| u64::from(rs.weight.or(vs.weight).unwrap_or(1))).sum();
        if u64::from(vs.quorum) > weight_sum && !vs.real_servers.is_empty() {
            let m = format!("Warning - quorum {} for {name} exceeds total weight of real servers {weight_sum}, reducing quorum to {weight_sum}", vs.quorum);
            notices.push(Notice::new(&vs.at, m));
            vs.quorum = weight_sum as u32;
        }
        if vs.hysteresis >= vs.quorum && vs.hysteresis > 0 {
            let h = vs.quorum.saturating_sub(1);
            let m = format!(
                "Virtual server {name}: hysteresis {} >= quorum {}; setting hysteresis to {h}",
                vs.hysteresis, vs.quorum
            );
            notices.push(Notice::new(&vs.at, m));
            vs.hysteresis = h;
        }
    }
}

/// Resolves every virtual server to its services, in file order.
pub fn services(conf: &Conf, notices: &mut Vec<Notice>) -> Result<Vec<Service>, Error> {
    let mut out: Vec<Service> = vec![];
    let mut seen: BTreeMap<ServiceKey, Pos> = BTreeMap::new();
    for (i, vs) in conf.virtual_servers.iter().enumerate() {
        let name = match &vs.addr {
            VsAddr::Addr { addr, port } => gw_proto::AddrPort(*addr, *port).to_string(),
            VsAddr::Group(g) => format!("group {g}"),
        };
        let mut note = |m: String| notices.push(Notice::new(&vs.at, format!("Virtual server {name}: {m}")));
        let keys = keys_of(conf, vs)?;
        if vs.real_servers.is_empty() {
            note("no real servers - ignoring".into());
            continue;
        }
        let proto = vs.protocol.unwrap_or_else(|| {
            note("no protocol set - defaulting to UDP".into());
            Protocol::Udp
        });
        let scheduler = vs.scheduler.unwrap_or_else(|| {
            note("no scheduler set, setting default 'wlc'".into());
            Scheduler::DEFAULT
        });
        let mut one_packet = vs.one_packet;
        if one_packet && proto != Protocol::Udp {
            note("one packet scheduling requires UDP - resetting".into());
            one_packet = false;
        }
        let synproxy = vs.syn_proxy && proto == Protocol::Tcp;
        if vs.syn_proxy && !synproxy {
            note("syn_proxy requires TCP - ignoring".into());
        }
        let mut persistent = vs.persistence_timeout;
        if persistent.is_none() && vs.persistence_granularity.is_some() {
            persistent = Some(DEFAULT_PERSISTENCE);
        }
        if persistent.is_none() && keys.iter().any(|(_, p)| *p == 0) {
            note("zero port only valid for persistent services - setting".into());
            persistent = Some(DEFAULT_PERSISTENCE);
        }
        let default_mode = vs.real_servers.iter().any(|r| r.forward.is_none()).then(|| {
            vs.forward.unwrap_or_else(|| {
                note("no forwarding method set, setting default NAT".into());
                ForwardMode::Masq
            })
        });
        let laddrs = match &vs.laddr_group {
            None => vec![],
            Some((at, g)) => {
                let group = conf
                    .laddr_groups
                    .get(g)
                    .ok_or_else(|| at.error(format!("local_address_group {g} not found")))?;
                group.addrs.iter().map(|(a, _)| *a).collect()
            }
        };
        for (addr, port) in keys {
            let key = ServiceKey { proto, addr, port };
            if let Some(first) = seen.get(&key) {
                return Err(vs.at.error(format!("virtual server {key} is already defined at {first}")));
            }
            seen.insert(key, vs.at.clone());
            let mut spec = ServiceSpec::new(key, scheduler);
            spec.persistent = persistent;
            // keepalived's pgr_handler: a netmask for IPv4, a prefix length for IPv6.
            match (vs.persistence_granularity, addr) {
                (None, _) => {}
                (Some(Granularity::Mask(m)), IpAddr::V4(_)) => spec.netmask = m,
                (Some(Granularity::Prefix(p)), IpAddr::V6(_)) => spec.prefix6 = p,
                (Some(Granularity::Mask(m)), IpAddr::V6(_)) => {
                    return Err(vs.at.error(format!("Invalid IPv6 persistence_granularity specified - {m}")));
                }
                (Some(Granularity::Prefix(p)), IpAddr::V4(_)) => {
                    return Err(vs.at.error(format!("Invalid IPv4 persistence_granularity specified - {p}")));
                }
            }
            spec.one_packet = one_packet;
            spec.sched_flags = vs.sched_flags;
            spec.synproxy = synproxy;
            let mut dests: Vec<(usize, DestSpec)> = vec![];
            for (j, rs) in vs.real_servers.iter().enumerate() {
                let mode = rs.forward.or(default_mode).unwrap_or(ForwardMode::Masq);
                let mut d = DestSpec::new(
                    rs.addr,
                    rs.port.unwrap_or(port),
                    mode,
                    rs.weight.or(vs.weight).unwrap_or(1),
                );
                d.upper = rs.upper;
                d.lower = rs.lower;
                // keepalived's alloc_rs starts from the virtual server's
                // tunnel options; the server's own lvs_method replaces them.
                d.tunnel = if rs.forward.is_some() { rs.tunnel } else { vs.tunnel };
                if dests.iter().any(|(_, x)| (x.addr, x.port) == (d.addr, d.port)) {
                    notices.push(Notice::new(
                        &rs.at,
                        format!(
                            "VS {key}: real server {}:{} is duplicated - removing second rs",
                            d.addr, d.port
                        ),
                    ));
                    continue;
                }
                dests.push((j, d));
            }
            let fnat = dests.iter().any(|(_, d)| d.mode == ForwardMode::FullNat);
            let laddrs = if fnat || laddrs.is_empty() {
                laddrs.clone()
            } else {
                let at = vs.laddr_group.as_ref().map(|(at, _)| at).unwrap_or(&vs.at);
                notices.push(Notice::new(
                    at,
                    format!("VS {key}: laddr_group_name without an FNAT real server - unused"),
                ));
                vec![]
            };
            out.push(Service { at: vs.at.clone(), vs: i, spec, dests, laddrs });
        }
    }
    Ok(out)
}

//! The parsed configuration: virtual servers, their real servers and
//! checkers, virtual server groups and DPVS's local address groups, as
//! keepalived's `check_parser.c` (and DPVS's fork of it) reads them.
//!
//! Every keyword keepalived knows in these blocks is either kept here or
//! reported as a [`Notice`] and ignored; an unknown keyword, a bad value or a
//! block where none belongs refuses the file. Top-level blocks gatewayd does
//! not run (`global_defs`, `vrrp_instance`, `static_ipaddress`, ...) are
//! skipped whole, with one notice each.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gw_proto::{sched_flags, ForwardMode, Protocol, Scheduler, TunnelCsum, TunnelEncap, DEFAULT_PERSISTENCE};

use crate::check::{self, Checker, TimingOverrides, OTHER_CHECKERS};
use crate::reader::Pos;
use crate::tree::Node;
use crate::values::{block, flag, ip, leaf, no_block, number, number_at, port, word};
use crate::{Error, Notice};

/// keepalived's `IPVS_WEIGHT_LIMIT`: the largest weight the kernel (and
/// gatewayd) holds.
pub const MAX_WEIGHT: u32 = gw_proto::MAX_WEIGHT;

/// The most addresses one `local_address_group` may hold: what a service
/// takes ([`gw_proto::MAX_LADDRS`]), so a file `--check` passes is one
/// gatewayd loads.
pub const MAX_LADDRS: usize = gw_proto::MAX_LADDRS;

/// keepalived's `LVS_MAX_TIMEOUT`: 31 days.
pub const MAX_PERSISTENCE: u32 = 86400 * 31;

/// A whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conf {
    pub virtual_servers: Vec<VirtualServer>,
    pub groups: BTreeMap<String, VsGroup>,
    pub laddr_groups: BTreeMap<String, LaddrGroup>,
    /// The global `SSL` block (keys for `SSL_GET`).
    pub ssl: Option<Ssl>,
    /// `global_defs { enable_script_security }`: a script that runs as root
    /// and that others can replace is disabled (see gatewayd's health
    /// checks).
    pub script_security: bool,
    pub notices: Vec<Notice>,
}

/// `SSL { password ca certificate key }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ssl {
    pub password: Option<String>,
    pub ca: Option<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
}

/// `virtual_server_group NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsGroup {
    pub at: Pos,
    pub entries: Vec<VsgEntry>,
}

/// One line of a group: `IP [PORT]`, `IP-LAST [PORT]`, `IP-IP [PORT]` or
/// `IP/MASK [PORT]`, IPv4 or IPv6 ([`range`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsgEntry {
    pub at: Pos,
    /// The first and last address, of one family.
    pub first: IpAddr,
    pub last: IpAddr,
    /// `None` when absent or 0: a port-0 (all ports) service, valid only when persistent.
    pub port: Option<u16>,
}

/// DPVS's `local_address_group NAME { IP[-LAST] [IFNAME] ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaddrGroup {
    pub at: Pos,
    /// Each address with the interface named after it (kept, not used: a
    /// local address is reached through the route to the real servers).
    pub addrs: Vec<(IpAddr, Option<String>)>,
}

/// What a `virtual_server` line names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VsAddr {
    Addr { addr: IpAddr, port: u16 },
    Group(String),
}

/// `sorry_server IP [PORT]` and its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SorryServer {
    pub at: Pos,
    pub addr: IpAddr,
    pub port: Option<u16>,
    pub inhibit: bool,
    pub forward: Option<ForwardMode>,
}

/// `persistence_granularity`: a netmask for an IPv4 service
/// (`255.255.255.0`), a prefix length for an IPv6 one (`64`), as
/// keepalived's `pgr_handler` reads it for each family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Mask(Ipv4Addr),
    Prefix(u8),
}

/// `virtual_server ... { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServer {
    pub at: Pos,
    pub addr: VsAddr,
    /// `protocol`; keepalived uses UDP when it is absent (with a warning).
    pub protocol: Option<Protocol>,
    /// `lb_algo` / `lvs_sched`; keepalived's default is wlc.
    pub scheduler: Option<Scheduler>,
    /// `lb_kind` / `lvs_method`, the real servers' default.
    pub forward: Option<ForwardMode>,
    /// Its tunnel options (`lvs_method TUN type gue port 6080 csum`), the
    /// real servers' default with it.
    pub tunnel: TunnelEncap,
    pub persistence_timeout: Option<u32>,
    pub persistence_granularity: Option<Granularity>,
    /// `ops`: one-packet scheduling.
    pub one_packet: bool,
    /// `flag-1..3`, `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`.
    pub sched_flags: u8,
    /// `weight`: the real servers' default weight (1).
    pub weight: Option<u32>,
    pub virtualhost: Option<String>,
    /// DPVS's `laddr_group_name`.
    pub laddr_group: Option<(Pos, String)>,
    pub timing: TimingOverrides,
    pub inhibit_on_failure: bool,
    pub alpha: bool,
    pub omega: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
    pub sorry_server: Option<SorryServer>,
    pub ha_suspend: bool,
    /// DPVS's `syn_proxy`: SYNPROXY for the service (TCP only).
    pub syn_proxy: bool,
    pub real_servers: Vec<RealServer>,
}

/// `real_server IP [PORT] { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServer {
    pub at: Pos,
    pub addr: IpAddr,
    /// Absent or 0: the virtual server's port.
    pub port: Option<u16>,
    pub weight: Option<u32>,
    pub forward: Option<ForwardMode>,
    /// The tunnel options of its `lvs_method` (ipip without one).
    pub tunnel: TunnelEncap,
    pub upper: u32,
    pub lower: u32,
    pub inhibit_on_failure: Option<bool>,
    pub alpha: Option<bool>,
    pub timing: TimingOverrides,
    pub virtualhost: Option<String>,
    pub notify_up: Option<Script>,
    pub notify_down: Option<Script>,
    pub checkers: Vec<Checker>,
}

/// A notify script (`notify_up`, `notify_down`, `quorum_up`,
/// `quorum_down`): `KEYWORD COMMAND [USER [GROUP]]`, the command one word
/// (quoted when it has arguments), as keepalived's `notify_script_init`
/// reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The command line, split into its words when run
    /// ([`crate::values::split_command`]).
    pub command: String,
    /// The uid and gid of its `USER` and `GROUP`; `None`: gatewayd's own.
    pub run_as: Option<(u32, u32)>,
}

/// Top-level blocks keepalived has that gatewayd does not run
/// (`global_defs`, of which it takes the script settings, has its own
/// reader).
const SKIPPED_ROOTS: [&str; 21] = [
    "vrrp_instance",
    "vrrp_sync_group",
    "vrrp_script",
    "vrrp_track_file",
    "track_file",
    "vrrp_track_process",
    "track_process",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "static_track_group",
    "garp_group",
    "bfd_instance",
    "linkbeat_interfaces",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    // DPVS's fork.
    "tunnel_group",
    "deny_address_group",
];

/// DPVS's `allow_address_group`, skipped like the above.
const SKIPPED_DPVS: [&str; 1] = ["allow_address_group"];

/// Virtual-server keywords keepalived (or DPVS) has whose effect gatewayd
/// does not have and that change nothing a client sees: noted and ignored.
const IGNORED_VS: [&str; 10] = [
    "smtp_alert",
    "snmp_name",
    "hashed",
    "ip_family",
    "establish_timeout",
    "bps",
    "limit_proportion",
    "expire_quiescent_conn",
    "hash_target",
    "vip_bind_dev",
];

/// DPVS keywords that change which packets are accepted or what they carry;
/// ignoring them would change the service, so they refuse the file.
const REFUSED_VS: [&str; 9] = [
    "daddr_group_name",
    "waddr_group_name",
    "proxy_protocol",
    "quic",
    "src-range",
    "dst-range",
    "oif",
    "iif",
    "persistence_engine",
];

/// Parses the tree of a whole file.
pub fn parse(nodes: &[Node]) -> Result<Conf, Error> {
    let mut conf = Conf::default();
    let mut script_user = None;
    for n in nodes {
        let k = n.keyword();
        match k {
            "virtual_server" if n.words.get(1).map(String::as_str) == Some("fwmark") => {
                block(n)?;
                let m = "virtual_server fwmark: fwmark services are not supported by gatewayd - skipped";
                conf.notices.push(Notice::new(&n.at, m))
            }
            "virtual_server" => {
                let vs = virtual_server(n, &mut conf.notices)?;
                conf.virtual_servers.push(vs);
            }
            "virtual_server_group" => {
                let name = word(n, 1)?.to_owned();
                let g = vs_group(n, &mut conf.notices)?;
                if let Some(old) = conf.groups.get(&name) {
                    return Err(n
                        .at
                        .error(format!("virtual_server_group {name} is already defined at {}", old.at)));
                }
                conf.groups.insert(name, g);
            }
            "local_address_group" => {
                let name = word(n, 1)?.to_owned();
                let g = laddr_group(n)?;
                if let Some(old) = conf.laddr_groups.get(&name) {
                    return Err(n
                        .at
                        .error(format!("local_address_group {name} is already defined at {}", old.at)));
                }
                conf.laddr_groups.insert(name, g);
            }
            "SSL" => conf.ssl = Some(ssl(n)?),
            "global_defs" => global_defs(n, &mut script_user, &mut conf)?,
            _ if SKIPPED_ROOTS.contains(&k) || SKIPPED_DPVS.contains(&k) => {
                conf.notices.push(Notice::new(&n.at, format!("{k}: not run by gatewayd - skipped")))
            }
            _ => return Err(n.at.error(format!("Unknown keyword '{k}'"))),
        }
    }
    default_script_user(&mut conf, script_user);
    Ok(conf)
}

/// `global_defs`: gatewayd takes its `script_user USER [GROUP]` (the last
/// one) and `enable_script_security`, and runs nothing else of it (a
/// notice says so).
fn global_defs(n: &Node, script_user: &mut Option<Node>, conf: &mut Conf) -> Result<(), Error> {
    let mut taken = false;
    for c in block(n)? {
        match c.keyword() {
            "script_user" if c.words.len() < 2 => {
                conf.notices.push(Notice::new(&c.at, "No script username specified"))
            }
            "script_user" => {
                leaf(c, 2)?;
                *script_user = Some(c.clone());
                taken = true;
            }
            "enable_script_security" => {
                conf.script_security = true;
                taken = true;
            }
            // keepalived sets IPVS's timeouts from it (`ipvsadm --set`), and
            // back to the defaults on a reload without it: not done here,
            // so it is said on its own.
            "lvs_timeouts" => conf.notices.push(Notice::new(
                &c.at,
                "lvs_timeouts: not applied by gatewayd - set the session timeouts in [timeouts] or with gwctl --set",
            )),
            _ => {}
        }
    }
    let m = if taken {
        "global_defs: only script_user and enable_script_security are taken by gatewayd - the rest skipped"
    } else {
        "global_defs: not run by gatewayd - skipped"
    };
    conf.notices.push(Notice::new(&n.at, m));
    Ok(())
}

/// keepalived's default script user (`get_default_script_user`): the
/// `global_defs` `script_user`, else `keepalived_script` when that user
/// exists, else gatewayd's own (but not with `enable_script_security`);
/// it runs every script that names no user. When there is none keepalived
/// says so and drops those scripts (each with its own notice, as
/// keepalived's).
fn default_script_user(conf: &mut Conf, script_user: Option<Node>) {
    const DEFAULT: &str = "keepalived_script";
    let ids = match &script_user {
        Some(c) => {
            let ids = crate::values::run_as(&c.words[1], c.words.get(2).map(String::as_str));
            if ids.is_none() {
                conf.notices.push(Notice::new(&c.at, "Error setting global script uid/gid"));
            }
            Some(ids)
        }
        None => match crate::values::run_as(DEFAULT, None) {
            Some(ids) => Some(Some(ids)),
            None if conf.script_security && has_scripts(conf) => {
                let at = conf.virtual_servers.first().map(|vs| vs.at.clone()).expect("a script has a server");
                conf.notices
                    .push(Notice::new(&at, format!("Unable to set default user {DEFAULT} for script")));
                Some(None)
            }
            None => None,
        },
    };
    let Some(ids) = ids else { return };
    let notices = &mut conf.notices;
    for vs in &mut conf.virtual_servers {
        default_user(&mut vs.quorum_up, ids, "quorum_up", &vs.at, notices);
        default_user(&mut vs.quorum_down, ids, "quorum_down", &vs.at, notices);
        for rs in &mut vs.real_servers {
            default_user(&mut rs.notify_up, ids, "notify_up", &rs.at, notices);
            default_user(&mut rs.notify_down, ids, "notify_down", &rs.at, notices);
            rs.checkers.retain_mut(|c| {
                let check::CheckKind::Misc(m) = &mut c.kind else { return true };
                if m.user.is_some() {
                    return true;
                }
                m.run_as = ids;
                if ids.is_none() {
                    let path = crate::values::cmd_str(&m.path);
                    let msg = format!("Unable to set default user for misc script {path} - removing");
                    notices.push(Notice::new(&c.at, msg));
                }
                ids.is_some()
            });
        }
    }
}

/// Whether any virtual server has a script (notify, quorum or
/// `MISC_CHECK`).
fn has_scripts(conf: &Conf) -> bool {
    conf.virtual_servers.iter().any(|vs| {
        vs.quorum_up.is_some()
            || vs.quorum_down.is_some()
            || vs.real_servers.iter().any(|rs| {
                rs.notify_up.is_some()
                    || rs.notify_down.is_some()
                    || rs.checkers.iter().any(|c| matches!(c.kind, check::CheckKind::Misc(_)))
            })
    })
}

/// The default user `ids` for the script in `slot` if it names none; the
/// script dropped, with keepalived's notice, when there is no default
/// (`notify_script_init`).
fn default_user(
    slot: &mut Option<Script>,
    ids: Option<(u32, u32)>,
    kind: &str,
    at: &Pos,
    notices: &mut Vec<Notice>,
) {
    let Some(script) = slot.as_mut().filter(|s| s.run_as.is_none()) else { return };
    match ids {
        Some(ids) => script.run_as = Some(ids),
        None => {
            let program = crate::values::program(&script.command);
            let m = format!("Failed to set default user for {kind} script {program} - ignoring");
            notices.push(Notice::new(at, m));
            *slot = None;
        }
    }
}

fn ssl(n: &Node) -> Result<Ssl, Error> {
    leaf_words(n, 0)?;
    let mut s = Ssl::default();
    for c in block(n)? {
        leaf(c, 1)?;
        let v = Some(word(c, 1)?.to_owned());
        match c.keyword() {
            "password" => s.password = v,
            "ca" => s.ca = v,
            "certificate" => s.certificate = v,
            "key" => s.key = v,
            _ => return Err(c.at.error(format!("Unknown keyword '{}'", c.keyword()))),
        }
    }
    Ok(s)
}

/// A block keyword's line: no more than `max` parameters.
fn leaf_words(n: &Node, max: usize) -> Result<(), Error> {
    match n.words.get(max + 1) {
        Some(w) => Err(n.at.error(format!("'{}': unexpected '{w}'", n.keyword()))),
        None => Ok(()),
    }
}

/// `a` as a number (IPv4 in the low 32 bits).
pub fn ip_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of the family of `like` whose number is `bits`.
fn ip_of(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// The addresses `first..=last` (one family, `first <= last`).
pub fn addrs_in(first: IpAddr, last: IpAddr) -> impl Iterator<Item = IpAddr> {
    (ip_bits(first)..=ip_bits(last)).map(move |b| ip_of(first, b))
}

/// How many addresses `first..=last` holds, saturating.
pub fn span(first: IpAddr, last: IpAddr) -> u128 {
    (ip_bits(last) - ip_bits(first)).saturating_add(1)
}

/// `IP`, `IP-LAST`, `IP-IP` or `IP/MASK`: the first and last address. As
/// keepalived's `inet_stor` reads a range, `LAST` replaces an IPv4
/// address's last byte (decimal, `198.18.0.1-10`) or an IPv6 address's last
/// 16-bit group (hexadecimal, `2001:db8::1-1f`).
fn range(n: &Node, s: &str, what: &str) -> Result<(IpAddr, IpAddr), Error> {
    if let Some((a, mask)) = s.split_once('/') {
        let first = ip(n, a, what)?;
        let width: u32 = if first.is_ipv4() { 32 } else { 128 };
        let bits = number(mask, 1, u64::from(width))
            .ok_or_else(|| n.at.error(format!("Invalid netmask - {s}")))? as u32;
        let host = if bits == width { 0 } else { (1u128 << (width - bits)) - 1 };
        if ip_bits(first) & host != 0 {
            return Err(n.at.error(format!("Address mask bits not empty - {s}")));
        }
        return Ok((first, ip_of(first, ip_bits(first) | host)));
    }
    let Some((a, end)) = s.split_once('-') else {
        let a = ip(n, s, what)?;
        return Ok((a, a));
    };
    let first = ip(n, a, what)?;
    let last = if let Ok(last) = end.parse::<IpAddr>() {
        if last.is_ipv4() != first.is_ipv4() {
            return Err(n.at.error(format!("Invalid range {s}: the ends are of different families")));
        }
        last
    } else {
        let bad = || n.at.error(format!("Invalid range end {s}"));
        let (low, radix, max) = if first.is_ipv4() { (0xff, 10, 255) } else { (0xffff, 16, 0xffff) };
        let e = u32::from_str_radix(end, radix)
            .ok()
            .filter(|e| *e <= max && !end.starts_with('+'))
            .ok_or_else(bad)?;
        // keepalived's `alloc_vsg_entry`: the short form's end must be
        // above the start's last byte or group (`a.b.c.5-5` is not taken
        // as one address).
        if u128::from(e) <= ip_bits(first) & low {
            let m = format!("Address range end is not greater than address range start - {s}");
            return Err(n.at.error(m));
        }
        ip_of(first, (ip_bits(first) & !low) | u128::from(e))
    };
    if first > last {
        return Err(n.at.error(format!("Invalid range {s}: the end is below the start")));
    }
    Ok((first, last))
}

fn vs_group(n: &Node, notices: &mut Vec<Notice>) -> Result<VsGroup, Error> {
    leaf_words(n, 1)?;
    let mut entries = vec![];
    for e in block(n)? {
        if e.keyword() == "fwmark" {
            leaf(e, 2)?;
            notices
                .push(Notice::new(&e.at, "fwmark: fwmark services are not supported by gatewayd - skipped"));
            continue;
        }
        leaf(e, 1)?;
        let (first, last) = range(e, e.keyword(), "virtual server group")?;
        let p = e.words.get(1).map(|p| port(e, p, "virtual server group")).transpose()?.filter(|p| *p != 0);
        entries.push(VsgEntry { at: e.at.clone(), first, last, port: p });
    }
    if block(n)?.is_empty() {
        return Err(n.at.error(format!("virtual server group {} has no entries", n.words[1])));
    }
    Ok(VsGroup { at: n.at.clone(), entries })
}

fn laddr_group(n: &Node) -> Result<LaddrGroup, Error> {
    leaf_words(n, 1)?;
    let mut addrs = vec![];
    for e in block(n)? {
        leaf(e, 1)?;
        let (first, last) = range(e, e.keyword(), "local address")?;
        if span(first, last) + addrs.len() as u128 > MAX_LADDRS as u128 {
            return Err(e
                .at
                .error(format!("local address group {}: more than {MAX_LADDRS} addresses", n.words[1])));
        }
        addrs.extend(addrs_in(first, last).map(|a| (a, e.words.get(1).cloned())));
    }
    if addrs.is_empty() {
        return Err(n.at.error(format!("local address group {} has no entries", n.words[1])));
    }
    Ok(LaddrGroup { at: n.at.clone(), addrs })
}

/// `lb_kind` / `lvs_method`: NAT, DR, TUN and DPVS's FNAT, then
/// keepalived's tunnel options (`svr_forwarding_handler`, keepalived 2.1+):
/// `type ipip|gue|gre`, `port N` (gue), `nocsum|csum|remcsum`, with its
/// messages. keepalived reads them after any method; IPVS uses them only for
/// TUN, so gatewayd keeps them only there.
fn forwarding(n: &Node, whose: &str) -> Result<(ForwardMode, TunnelEncap), Error> {
    #[derive(PartialEq)]
    enum Type {
        Ipip,
        Gue,
        Gre,
    }
    let m = match word(n, 1)? {
        "NAT" => ForwardMode::Masq,
        "DR" => ForwardMode::Route,
        "TUN" => ForwardMode::Tunnel,
        "FNAT" => ForwardMode::FullNat,
        "SNAT" => return Err(n.at.error("SNAT forwarding is not supported by gatewayd")),
        s => return Err(n.at.error(format!("PARSER : unknown [{s}] routing method for {whose} server."))),
    };
    let (mut ty, mut port, mut csum) = (Type::Ipip, 0u16, TunnelCsum::NoCsum);
    let mut words = n.words.iter().skip(2);
    while let Some(w) = words.next() {
        match w.as_str() {
            "type" => {
                ty = match words.next().map(String::as_str) {
                    None => return Err(n.at.error(format!("Missing tunnel type for {whose} server."))),
                    Some("ipip") => Type::Ipip,
                    Some("gue") => Type::Gue,
                    Some("gre") => Type::Gre,
                    Some(t) => {
                        return Err(n.at.error(format!("Unknown tunnel type {t} for {whose} server.")))
                    }
                }
            }
            "port" => {
                let Some(p) = words.next() else {
                    return Err(n.at.error(format!("Missing port for {whose} server gue tunnel.")));
                };
                port = number(p, 1, 65535)
                    .ok_or_else(|| n.at.error(format!("Invalid gue tunnel port {p} for {whose} server.")))?
                    as u16;
            }
            "nocsum" => csum = TunnelCsum::NoCsum,
            "csum" => csum = TunnelCsum::Csum,
            "remcsum" => csum = TunnelCsum::RemCsum,
            t => return Err(n.at.error(format!("Invalid tunnel option {t} for {whose} server."))),
        }
    }
    if (ty == Type::Gue) != (port != 0) {
        return Err(n.at.error("gue tunnels require port, otherwise cannot have port."));
    }
    if ty == Type::Ipip && csum != TunnelCsum::NoCsum {
        return Err(n.at.error("ipip tunnels do not support checksum option."));
    }
    if ty == Type::Gre && csum == TunnelCsum::RemCsum {
        return Err(n.at.error("gre tunnels do not support remote checksum option."));
    }
    let tunnel = match ty {
        _ if m != ForwardMode::Tunnel => TunnelEncap::Ipip,
        Type::Ipip => TunnelEncap::Ipip,
        Type::Gue => TunnelEncap::Gue { port, csum },
        Type::Gre => TunnelEncap::Gre { csum },
    };
    Ok((m, tunnel))
}

fn scheduler(n: &Node) -> Result<Scheduler, Error> {
    leaf(n, 1)?;
    let s = word(n, 1)?;
    s.parse().map_err(|_| match s {
        "twos" | "conhash" => n.at.error(format!("lvs_scheduler '{s}' is not supported by gatewayd")),
        _ => n.at.error(format!("Invalid lvs_scheduler '{s}'")),
    })
}

fn virtual_server(n: &Node, notices: &mut Vec<Notice>) -> Result<VirtualServer, Error> {
    let addr = match word(n, 1)? {
        "group" => {
            leaf_words(n, 2)?;
            VsAddr::Group(word(n, 2)?.to_owned())
        }
        a => {
            leaf_words(n, 2)?;
            let addr = ip(n, a, "virtual server")?;
            let port = n.words.get(2).map(|p| port(n, p, "virtual server")).transpose()?.unwrap_or(0);
            VsAddr::Addr { addr, port }
        }
    };
    let mut vs = VirtualServer {
        at: n.at.clone(),
        addr,
        protocol: None,
        scheduler: None,
        forward: None,
        tunnel: TunnelEncap::Ipip,
        persistence_timeout: None,
        persistence_granularity: None,
        one_packet: false,
        sched_flags: 0,
        weight: None,
        virtualhost: None,
        laddr_group: None,
        timing: TimingOverrides::default(),
        inhibit_on_failure: false,
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        sorry_server: None,
        ha_suspend: false,
        syn_proxy: false,
        real_servers: vec![],
    };
    for s in block(n)? {
        let k = s.keyword();
        if check::timing_keyword(s, &mut vs.timing)? {
            continue;
        }
        match k {
            "lb_algo" | "lvs_sched" => vs.scheduler = Some(scheduler(s)?),
            "lb_kind" | "lvs_method" => {
                leaf(s, 7)?;
                let (m, t) = forwarding(s, "virtual")?;
                (vs.forward, vs.tunnel) = (Some(m), t);
            }
            "protocol" => {
                leaf(s, 1)?;
                vs.protocol = Some(match word(s, 1)?.to_ascii_uppercase().as_str() {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    "SCTP" => return Err(s.at.error("protocol SCTP is not supported by gatewayd")),
                    p => return Err(s.at.error(format!("Unknown protocol {p}"))),
                })
            }
            "persistence_timeout" => {
                leaf(s, 1)?;
                vs.persistence_timeout = Some(match s.words.get(1) {
                    None => DEFAULT_PERSISTENCE,
                    Some(_) => number_at(s, 1, 1, u64::from(MAX_PERSISTENCE), "persistence_timeout")? as u32,
                })
            }
            "persistence_granularity" => {
                leaf(s, 1)?;
                let g = word(s, 1)?;
                // Which form fits is checked against the service's family
                // when the services are resolved.
                vs.persistence_granularity = Some(match (g.parse::<Ipv4Addr>(), number(g, 1, 128)) {
                    (Ok(m), _) => Granularity::Mask(m),
                    (_, Some(p)) => Granularity::Prefix(p as u8),
                    _ => return Err(s.at.error(format!("Invalid persistence_granularity specified - {g}"))),
                });
            }
            "ops" => {
                leaf(s, 0)?;
                vs.one_packet = true
            }
            "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" => {
                leaf(s, 0)?;
                vs.sched_flags |= match k {
                    "flag-1" | "sh-fallback" | "mh-fallback" => sched_flags::FLAG1,
                    "flag-2" | "sh-port" | "mh-port" => sched_flags::FLAG2,
                    _ => sched_flags::FLAG3,
                };
            }
            "weight" => {
                leaf(s, 1)?;
                let w = word(s, 1)?;
                vs.weight = Some(number(w, 1, u64::from(MAX_WEIGHT)).ok_or_else(|| {
                    s.at.error(format!("Virtual server weight {w} is outside range 1-{MAX_WEIGHT}"))
                })? as u32);
            }
            "virtualhost" => {
                leaf(s, 1)?;
                vs.virtualhost = Some(word(s, 1)?.to_owned())
            }
            "laddr_group_name" => {
                leaf(s, 1)?;
                vs.laddr_group = Some((s.at.clone(), word(s, 1)?.to_owned()))
            }
            "inhibit_on_failure" => vs.inhibit_on_failure = vs_on(s, notices)?,
            "alpha" => vs.alpha = vs_on(s, notices)?,
            "omega" => vs.omega = vs_on(s, notices)?,
            "quorum" => {
                leaf(s, 1)?;
                vs.quorum = number_at(s, 1, 1, u64::from(u32::MAX), "Quorum")? as u32
            }
            "hysteresis" => {
                leaf(s, 1)?;
                vs.hysteresis = number_at(s, 1, 0, u64::from(u32::MAX), "Hysteresis")? as u32
            }
            "quorum_up" => script_once(&mut vs.quorum_up, s, notices)?,
            "quorum_down" => script_once(&mut vs.quorum_down, s, notices)?,
            "ha_suspend" => vs.ha_suspend = vs_on(s, notices)?,
            "syn_proxy" => vs.syn_proxy = flag(s)?,
            "sorry_server" => {
                leaf(s, 2)?;
                let addr = ip(s, word(s, 1)?, "sorry server")?;
                let port =
                    s.words.get(2).map(|p| port(s, p, "sorry server")).transpose()?.filter(|p| *p != 0);
                vs.sorry_server =
                    Some(SorryServer { at: s.at.clone(), addr, port, inhibit: false, forward: None });
            }
            "sorry_server_inhibit" => match vs.sorry_server.as_mut() {
                Some(ss) => ss.inhibit = flag(s)?,
                None => {
                    return Err(s.at.error("sorry_server_inhibit used before or without sorry_server"));
                }
            },
            "sorry_server_lvs_method" => match vs.sorry_server.as_mut() {
                Some(ss) => match forwarding(s, "sorry")? {
                    (m, TunnelEncap::Ipip) => ss.forward = Some(m),
                    _ => return Err(s.at.error("a gue or gre sorry server is not supported by gatewayd")),
                },
                None => return Err(s.at.error("sorry_server forwarding used without sorry_server")),
            },
            "real_server" => vs.real_servers.push(real_server(s, notices)?),
            _ if IGNORED_VS.contains(&k) => {
                if s.block.is_some() {
                    leaf(s, 0)?;
                }
                if k == "ip_family" && !matches!(s.words.get(1).map(String::as_str), Some("inet" | "inet6")) {
                    return Err(s.at.error("ip_family: inet or inet6"));
                }
                if k != "ip_family" {
                    notices.push(Notice::new(&s.at, format!("{k}: not supported by gatewayd - ignored")));
                }
            }
            _ if REFUSED_VS.contains(&k) => {
                return Err(s.at.error(format!("{k} is not supported by gatewayd")));
            }
            _ => notices.push(check::unknown(s)?),
        }
    }
    Ok(vs)
}

/// A `virtual_server`'s `alpha`, `omega`, `ha_suspend` or
/// `inhibit_on_failure`: on, whatever follows (keepalived's handlers read
/// no argument there, so `alpha off` turns alpha on; a real server's take
/// one); an argument is noted.
fn vs_on(n: &Node, notices: &mut Vec<Notice>) -> Result<bool, Error> {
    no_block(n)?;
    if let Some(arg) = n.words.get(1) {
        let m = format!("{}: keepalived reads no argument here - '{arg}' ignored, on", n.keyword());
        notices.push(Notice::new(&n.at, m));
    }
    Ok(true)
}

/// A notify script ([`Script`]). A user or group that does not exist
/// drops the script with keepalived's notice: `notify_down /bin/down.sh
/// DOWN` (an unquoted argument taken for a user) runs nothing, as in
/// keepalived.
fn script(n: &Node, notices: &mut Vec<Notice>) -> Result<Option<Script>, Error> {
    if n.block.is_some() {
        leaf(n, 0)?;
    }
    let command = word(n, 1)?.to_owned();
    // keepalived splits the command when it reads it (`notify_script_init`)
    // and drops one it cannot split or that has no word.
    match crate::values::parse_command(&command) {
        Ok(words) if !words.is_empty() => {}
        why => {
            let why = why.err().map_or_else(String::new, |e| format!(" ({e})"));
            let m = format!("Unable to parse script '{command}' - ignoring{why}");
            notices.push(Notice::new(&n.at, m));
            return Ok(None);
        }
    }
    let run_as = match n.words.get(2) {
        None => None,
        Some(user) => match crate::values::run_as(user, n.words.get(3).map(String::as_str)) {
            Some(ids) => Some(ids),
            None => {
                let program = crate::values::program(&command);
                let m = format!("Invalid user/group for {} script {program} - ignoring", n.keyword());
                notices.push(Notice::new(&n.at, m));
                return Ok(None);
            }
        },
    };
    Ok(Some(Script { command, run_as }))
}

/// [`script`] into `slot` unless it holds one: keepalived keeps the
/// first of a repeated `notify_up`, `notify_down`, `quorum_up` or
/// `quorum_down` and says so (`notify_up_handler`); one it dropped (an
/// invalid user) leaves room for the next.
fn script_once(slot: &mut Option<Script>, n: &Node, notices: &mut Vec<Notice>) -> Result<(), Error> {
    if slot.is_some() {
        let m = format!("{} script already specified - ignoring {}", n.keyword(), word(n, 1)?);
        notices.push(Notice::new(&n.at, m));
        return Ok(());
    }
    *slot = script(n, notices)?;
    Ok(())
}

fn real_server(n: &Node, notices: &mut Vec<Notice>) -> Result<RealServer, Error> {
    leaf_words(n, 2)?;
    let addr = ip(n, word(n, 1)?, "real server")?;
    let port = n.words.get(2).map(|p| port(n, p, "real server")).transpose()?.filter(|p| *p != 0);
    let mut rs = RealServer {
        at: n.at.clone(),
        addr,
        port,
        weight: None,
        forward: None,
        tunnel: TunnelEncap::Ipip,
        upper: 0,
        lower: 0,
        inhibit_on_failure: None,
        alpha: None,
        timing: TimingOverrides::default(),
        virtualhost: None,
        notify_up: None,
        notify_down: None,
        checkers: vec![],
    };
    // keepalived's `real_server` is a block keyword: without its `{` (on
    // the line or the next) keepalived reports this error and reads the next
    // line as inside the server's block, so a following `real_server` is
    // lost and the `}` meant for the virtual server closes the server's.
    for s in block(n)? {
        let k = s.keyword();
        if check::timing_keyword(s, &mut rs.timing)? {
            continue;
        }
        match k {
            "weight" => {
                leaf(s, 1)?;
                let w = word(s, 1)?;
                rs.weight = Some(number(w, 0, u64::from(MAX_WEIGHT)).ok_or_else(|| {
                    s.at.error(format!("Real server weight {w} is outside range 0-{MAX_WEIGHT}"))
                })? as u32);
            }
            // keepalived has no `lb_kind` in a real server (only
            // `lvs_method`): an unknown keyword there, ignored.
            "lvs_method" => {
                leaf(s, 7)?;
                let (m, t) = forwarding(s, "real")?;
                (rs.forward, rs.tunnel) = (Some(m), t);
            }
            "uthreshold" => {
                leaf(s, 1)?;
                rs.upper = number_at(s, 1, 0, u64::from(u32::MAX), "real_server uthreshold")? as u32
            }
            "lthreshold" => {
                leaf(s, 1)?;
                rs.lower = number_at(s, 1, 0, u64::from(u32::MAX), "real_server lthreshold")? as u32
            }
            "inhibit_on_failure" => rs.inhibit_on_failure = Some(flag(s)?),
            "alpha" => rs.alpha = Some(flag(s)?),
            "virtualhost" => {
                leaf(s, 1)?;
                rs.virtualhost = Some(word(s, 1)?.to_owned())
            }
            "notify_up" => script_once(&mut rs.notify_up, s, notices)?,
            "notify_down" => script_once(&mut rs.notify_down, s, notices)?,
            "smtp_alert" | "snmp_name" => {
                leaf(s, 1)?;
                notices.push(Notice::new(&s.at, format!("{k}: not supported by gatewayd - ignored")))
            }
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "UDP_CHECK" | "MISC_CHECK" => {
                rs.checkers.extend(check::parse(s, notices)?)
            }
            _ if OTHER_CHECKERS.contains(&k) => {
                block(s)?;
                notices.push(Notice::new(&s.at, format!("{k}: not supported by gatewayd - skipped")))
            }
            _ => notices.push(check::unknown(s)?),
        }
    }
    Ok(rs)
}

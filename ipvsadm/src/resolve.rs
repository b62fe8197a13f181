//! Step two: raw arguments to one validated [`Invocation`].
//!
//! This follows ipvsadm 1.31's `process_options`, with its messages and exit
//! statuses, and never contacts gatewayd:
//! 0. options gatewayd does not support (fwmark, sync daemon, ...): a clear refusal;
//! 1. exactly one command (none: "Try ... --help", 255; a second one, or `-h`
//!    or `-v` after the first option: "invalid option `WORD'", 2, the word
//!    named by the caller with [`crate::cli::invalid_option`]);
//! 2. no option class given twice ("multiple 'weight' options specified"; -t and
//!    -u are one class, as are -b/-m/-g/-i);
//! 3. values: addresses, ports, weight, thresholds, timeouts, mask ("illegal
//!    weight specified", ...), --set's three timeouts, stray words ("unexpected
//!    argument X");
//! 4. ipvsadm's command/option table ("You need to supply the 'real-server'
//!    option for the 'add-server' command", "Illegal 'weight' option with ...",
//!    "The option 'timeout' conflicts with ...");
//! 5. per-command rules: zero port without persistence, one-packet scheduling for
//!    UDP only, scheduler name and flags, listing options that conflict.
//!
//! ipvsadm reports value errors in argv order, which clap does not keep; gwctl
//! reports them in the order above. Only which of several errors is shown can differ.
//!
//! `-b` depends on the command, as DPVS users expect: alone it is DPVS's FULLNAT
//! forwarding method (`-a`/`-e`), with a value it is ipvsadm's `--sched-flags`
//! (`-A`/`-E`). The table then rejects each where it does not belong.
//!
//! Defaults are ipvsadm's: scheduler wlc, persistence 360 s for a bare `-p`, mask
//! 255.255.255.255, weight 1, forwarding by gatewaying (Route), real-server port =
//! service port. As in ipvsadm, Route and Tunnel force the real-server port to the
//! service port (neither can rewrite ports); `-E` and `-e` send a whole service or
//! destination, so an option left out returns to its default.

use std::net::{IpAddr, Ipv4Addr};

use gw_proto::{
    ClientAddr, DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceKey, ServiceSpec, TimeoutSet,
    TunnelCsum, TunnelEncap, DEFAULT_PERSISTENCE, FULL_PREFIX6,
};

use crate::cli::{Cli, BARE};
use crate::error::Failure;
use crate::services::PortNames;
use crate::values::{self, number, MAX_TIMEOUT};

/// Scheduler for -A/-E without -s (ipvsadm's `DEF_SCHED`).
pub const DEFAULT_SCHEDULER: Scheduler = Scheduler::DEFAULT;
/// Real-server weight without -w (ipvsadm's).
pub const DEFAULT_WEIGHT: u32 = 1;
/// Forwarding method without -b/-m/-g/-i (ipvsadm's: direct routing).
pub const DEFAULT_FORWARD: ForwardMode = ForwardMode::Route;
/// Largest connection threshold (ipvsadm's `INT_MAX`).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

/// A command, named as ipvsadm (or DPVS's ipvsadm) names it in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    AddService,
    EditService,
    DelService,
    Flush,
    List,
    AddServer,
    DelServer,
    EditServer,
    SetTimeouts,
    Restore,
    Save,
    Zero,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Counters,
}

impl Command {
    /// The name in ipvsadm's `cmdnames[]` (`-C` is "flush" there, `--set` is "set").
    pub fn name(self) -> &'static str {
        match self {
            Command::AddService => "add-service",
            Command::EditService => "edit-service",
            Command::DelService => "delete-service",
            Command::Flush => "flush",
            Command::List => "list",
            Command::AddServer => "add-server",
            Command::DelServer => "delete-server",
            Command::EditServer => "edit-server",
            Command::SetTimeouts => "set",
            Command::Restore => "restore",
            Command::Save => "save",
            Command::Zero => "zero",
            Command::AddLaddr => "add-laddr",
            Command::DelLaddr => "del-laddr",
            Command::GetLaddr => "get-laddr",
            Command::Counters => "counters",
        }
    }

    /// True for commands that only read; their failures exit 1, not 255.
    pub fn is_query(self) -> bool {
        matches!(self, Command::List | Command::Save | Command::GetLaddr | Command::Counters)
    }

    /// True for the commands a rules file (`-R`) may hold.
    pub fn is_rule(self) -> bool {
        !self.is_query() && self != Command::Restore
    }
}

/// An option class, in the order of ipvsadm's `optnames[]` (gwctl's own last):
/// the first problem in this order is the one reported, as in `generic_opt_check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Sched,
    Persistent,
    Netmask,
    RealServer,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Exact,
    Ops,
    SchedFlags,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Laddr,
    ProxyProto,
    Toa,
    Synproxy,
    Json,
    Health,
}

const OPTS: [Opt; 33] = [
    Opt::Numeric,
    Opt::Connection,
    Opt::Service,
    Opt::Sched,
    Opt::Persistent,
    Opt::Netmask,
    Opt::RealServer,
    Opt::Forward,
    Opt::Weight,
    Opt::UThreshold,
    Opt::LThreshold,
    Opt::Timeout,
    Opt::Daemon,
    Opt::Stats,
    Opt::Rate,
    Opt::Thresholds,
    Opt::PersistentConn,
    Opt::NoSort,
    Opt::Exact,
    Opt::Ops,
    Opt::SchedFlags,
    Opt::TunInfo,
    Opt::TunType,
    Opt::TunPort,
    Opt::TunNocsum,
    Opt::TunCsum,
    Opt::TunRemcsum,
    Opt::Laddr,
    Opt::ProxyProto,
    Opt::Toa,
    Opt::Synproxy,
    Opt::Json,
    Opt::Health,
];

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Numeric => "numeric",
            Opt::Connection => "connection",
            Opt::Service => "service-address",
            Opt::Sched => "scheduler",
            Opt::Persistent => "persistent",
            Opt::Netmask => "netmask",
            Opt::RealServer => "real-server",
            Opt::Forward => "forwarding-method",
            Opt::Weight => "weight",
            Opt::UThreshold => "u-threshold",
            Opt::LThreshold => "l-threshold",
            Opt::Timeout => "timeout",
            Opt::Daemon => "daemon",
            Opt::Stats => "stats",
            Opt::Rate => "rate",
            Opt::Thresholds => "thresholds",
            Opt::PersistentConn => "persistent-conn",
            Opt::NoSort => "nosort",
            Opt::Exact => "exact",
            Opt::Ops => "ops",
            Opt::SchedFlags => "sched-flags",
            Opt::TunInfo => "tun-info",
            Opt::TunType => "tun-type",
            Opt::TunPort => "tun-port",
            Opt::TunNocsum => "tun-nocsum",
            Opt::TunCsum => "tun-csum",
            Opt::TunRemcsum => "tun-remcsum",
            Opt::Laddr => "local-address",
            Opt::ProxyProto => "proxy-protocol",
            Opt::Toa => "toa",
            Opt::Synproxy => "synproxy",
            Opt::Json => "json",
            Opt::Health => "health",
        }
    }

    fn count(self, c: &Cli) -> usize {
        let bare_b = || c.b.iter().filter(|v| *v == BARE).count();
        match self {
            Opt::Numeric => c.numeric.into(),
            Opt::Connection => c.connection.into(),
            Opt::Service => c.tcp_service.len() + c.udp_service.len(),
            Opt::Sched => c.scheduler.len(),
            Opt::Persistent => c.persistent.len(),
            Opt::Netmask => c.netmask.len(),
            Opt::RealServer => c.real_server.len(),
            Opt::Forward => {
                bare_b()
                    + usize::from(c.fullnat)
                    + usize::from(c.masquerading)
                    + usize::from(c.gatewaying)
                    + usize::from(c.ipip)
            }
            Opt::Weight => c.weight.len(),
            Opt::UThreshold => c.u_threshold.len(),
            Opt::LThreshold => c.l_threshold.len(),
            Opt::Timeout => c.timeout.into(),
            Opt::Daemon => c.unsupported.daemon.into(),
            Opt::Stats => c.stats.into(),
            Opt::Rate => c.rate.into(),
            Opt::Thresholds => c.thresholds.into(),
            Opt::PersistentConn => c.persistent_conn.into(),
            Opt::NoSort => c.nosort.into(),
            Opt::Exact => c.exact.into(),
            Opt::Ops => c.ops.into(),
            Opt::SchedFlags => c.b.len() - bare_b(),
            Opt::TunInfo => c.tun_info.into(),
            Opt::TunType => c.unsupported.tun_type.len(),
            Opt::TunPort => c.unsupported.tun_port.len(),
            Opt::TunNocsum => c.unsupported.tun_nocsum.into(),
            Opt::TunCsum => c.unsupported.tun_csum.into(),
            Opt::TunRemcsum => c.unsupported.tun_remcsum.into(),
            Opt::Laddr => c.laddr.len(),
            Opt::ProxyProto => c.proxy_protocol.len(),
            Opt::Toa => c.toa.into(),
            Opt::Synproxy => c.synproxy.len(),
            Opt::Json => c.json.into(),
            Opt::Health => c.health.into(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    Required,
    Optional,
    /// ipvsadm's '1': at most one of these may be given.
    Exclusive,
    Illegal,
}

/// ipvsadm's `commands_v_options` table (DPVS's rows for the laddr commands),
/// cut to the options gatewayd has; `json` is gwctl's own.
fn rule(cmd: Command, opt: Opt) -> Rule {
    use Command::*;
    match (cmd, opt) {
        (AddService | EditService, Opt::Service) => Rule::Required,
        (AddService | EditService, Opt::Sched | Opt::Persistent | Opt::Netmask | Opt::Ops) => Rule::Optional,
        (AddService | EditService, Opt::SchedFlags | Opt::ProxyProto | Opt::Toa | Opt::Synproxy) => {
            Rule::Optional
        }
        (DelService, Opt::Service) => Rule::Required,
        (AddServer | EditServer | DelServer, Opt::Service | Opt::RealServer) => Rule::Required,
        (AddServer | EditServer, Opt::Forward | Opt::Weight | Opt::UThreshold | Opt::LThreshold) => {
            Rule::Optional
        }
        (
            AddServer | EditServer,
            Opt::TunType | Opt::TunPort | Opt::TunNocsum | Opt::TunCsum | Opt::TunRemcsum,
        ) => Rule::Optional,
        (List, Opt::Connection | Opt::Service | Opt::Timeout | Opt::Daemon) => Rule::Exclusive,
        (
            List,
            Opt::Numeric
            | Opt::Stats
            | Opt::Rate
            | Opt::Thresholds
            | Opt::PersistentConn
            | Opt::NoSort
            | Opt::Exact
            | Opt::TunInfo
            | Opt::Json
            | Opt::Health,
        ) => Rule::Optional,
        (Save, Opt::Numeric) => Rule::Optional,
        (Zero, Opt::Service) => Rule::Optional,
        (AddLaddr | DelLaddr, Opt::Service | Opt::Laddr) => Rule::Required,
        (GetLaddr, Opt::Service | Opt::Json) => Rule::Optional,
        (Counters, Opt::Json) => Rule::Optional,
        _ => Rule::Illegal,
    }
}

/// Which `-L` table: ipvsadm's `print_title` picks the first format set, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    /// `--stats`: Conns InPkts OutPkts InBytes OutBytes.
    Stats,
    /// `--rate`: CPS InPPS OutPPS InBPS OutBPS.
    Rate,
    /// `--thresholds`: Uthreshold Lthreshold ActiveConn InActConn.
    Thresholds,
    /// `--persistent-conn`: Weight PersistConn ActiveConn InActConn.
    PersistConn,
    /// `--tun-info`: Forward TunnelInfo Weight ActiveConn InActConn.
    TunInfo,
    /// Forward Weight ActiveConn InActConn.
    Plain,
}

/// How gatewayd's answer is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// A change: gatewayd answers `Ok` and nothing is printed.
    Done,
    /// `-L`: ipvsadm's table. `exact` for `--exact`, `sort` unless `--nosort`.
    List { format: ListFormat, exact: bool, sort: bool },
    /// `-L -c`: ipvsadm's connection entries; `persistent` for `--persistent-conn`.
    Conns { persistent: bool, sort: bool },
    /// `-L --timeout`.
    Timeouts,
    /// `-L --daemon`: ipvsadm's `list_daemon`, which prints nothing when no
    /// sync daemon runs; gatewayd has none. Gatewayd is still asked (for its
    /// timeouts), so an unreachable gatewayd fails as ipvsadm without IPVS.
    Daemon,
    /// `-S`: the rules, in the form `-R` reads.
    Save,
    /// `--get-laddr`: DPVS's local-address table.
    Laddrs,
    /// `--counters`: one row per counter, one column per worker and a total.
    Counters,
}

/// A validated command line: what to send and how to show the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    /// For `-R`, `Restore` with no requests yet: the caller reads them from stdin.
    pub request: Request,
    pub view: View,
    /// `--json`: print the response as JSON instead of a table.
    pub json: bool,
    /// `-L --health`: the health checks' state in the table (gwctl's own).
    pub health: bool,
    /// For `-R`: the rules-file line of each request, to name the one gatewayd refuses.
    pub lines: Vec<usize>,
    /// `-n`: addresses and ports as numbers; without it, names as ipvsadm shows them.
    pub numeric: bool,
}

/// Resolves the raw arguments with the system's port names (`/etc/services`).
pub fn resolve(cli: &Cli) -> Result<Invocation, Failure> {
    resolve_with(cli, &PortNames::system())
}

/// Resolves the raw arguments, looking port names up in `names`.
pub fn resolve_with(cli: &Cli, names: &PortNames) -> Result<Invocation, Failure> {
    if cli.is_bare() {
        // ipvsadm with no argument lists the table.
        return Ok(Invocation {
            command: Command::List,
            request: Request::List { service: None },
            view: View::List { format: ListFormat::Plain, exact: false, sort: true },
            json: false,
            health: false,
            lines: Vec::new(),
            numeric: false,
        });
    }
    if let Some(why) = cli.unsupported.refusal() {
        return Err(usage(why));
    }
    // -h and -v count only as the first option (see `crate::usage`); later
    // ipvsadm's option loop refuses them, as it does a second command.
    if cli.help > 0 || cli.version > 0 {
        return Err(Failure::InvalidOption);
    }
    let cmd = command(cli)?;
    if cli.unsupported.ipv6 > 0 {
        // ipvsadm takes -6 only after -f (refused above), for an fwmark
        // service of IPv6; its message keeps its newline. Without a
        // command, ipvsadm's "Try ..." comes first.
        return Err(usage("-6 used before -f\n"));
    }
    for opt in OPTS {
        if opt.count(cli) > 1 {
            return Err(usage(format!("multiple '{}' options specified", opt.name())));
        }
    }

    let v = values_of(cli, cmd, names)?;
    table_check(cli, cmd)?;
    let service = v.service;
    // From here on the table guarantees what each command needs.
    let key = || service.expect("service-address is required for this command");
    let request = match cmd {
        Command::AddService | Command::EditService => {
            let key = key();
            let persistent = v.persistent;
            if key.port == 0 && persistent.is_none() {
                return Err(usage("Zero port specified for non-persistent service"));
            }
            if cli.ops > 0 && key.proto != Protocol::Udp {
                return Err(usage("One-Packet Scheduling is only for UDP virtual services"));
            }
            let scheduler = match cli.scheduler.first() {
                // ipvsadm sends any name; the kernel's ENOENT comes back as
                // libipvs's text, and the failed change exits 255.
                Some(s) if !s.is_empty() => {
                    s.parse::<Scheduler>().map_err(|_| Failure::NoScheduler(s.clone()))?
                }
                // An empty name (`-s ""`) is no name: ipvsadm's DEF_SCHED.
                _ => DEFAULT_SCHEDULER,
            };
            let sched_flags = match cli.b.iter().find(|b| *b != BARE) {
                Some(f) => values::sched_flags(scheduler, f).map_err(usage)?,
                None => 0,
            };
            let client_addr = client_addr(cli, key.proto)?;
            let synproxy = synproxy(cli, key.proto)?;
            let spec = ServiceSpec {
                key,
                scheduler,
                persistent,
                netmask: v.netmask.unwrap_or(Ipv4Addr::BROADCAST),
                prefix6: v.prefix6.unwrap_or(FULL_PREFIX6),
                one_packet: cli.ops > 0,
                sched_flags,
                client_addr,
                synproxy,
            };
            if cmd == Command::AddService {
                Request::AddService { spec }
            } else {
                Request::EditService { spec }
            }
        }
        Command::DelService => Request::DelService { key: key() },
        Command::Flush => Request::Clear,
        Command::AddServer | Command::EditServer => {
            let service = key();
            let (addr, port) = v.real.expect("real-server is required for this command");
            let mode = forward(cli);
            // ipvsadm's rule, plus DPVS's NAT64: an IPv4 FULLNAT server
            // behind an IPv6 VIP.
            let nat64 = mode == ForwardMode::FullNat && service.addr.is_ipv6() && addr.is_ipv4();
            if addr.is_ipv4() != service.addr.is_ipv4() && mode != ForwardMode::Tunnel && !nat64 {
                return Err(usage("Different address family is allowed only for tunneling servers"));
            }
            let tunnel = tunnel_check(cli, &v, mode)?;
            let port = match mode {
                // Neither can change the destination port: ipvsadm forces the service's.
                ForwardMode::Route | ForwardMode::Tunnel => service.port,
                ForwardMode::FullNat | ForwardMode::Masq => port.unwrap_or(service.port),
            };
            let dest =
                DestSpec { addr, port, mode, weight: v.weight, upper: v.upper, lower: v.lower, tunnel };
            if cmd == Command::AddServer {
                Request::AddDest { service, dest }
            } else {
                Request::EditDest { service, dest }
            }
        }
        Command::DelServer => {
            let service = key();
            let (addr, port) = v.real.expect("real-server is required for this command");
            Request::DelDest { service, addr, port: port.unwrap_or(service.port) }
        }
        Command::List => {
            list_conflicts(cli)?;
            if cli.connection > 0 {
                Request::ListConns { service }
            } else if cli.timeout > 0 || cli.unsupported.daemon > 0 {
                Request::GetTimeouts
            } else {
                Request::List { service }
            }
        }
        Command::SetTimeouts => Request::SetTimeouts { timeouts: v.timeouts.expect("parsed for --set") },
        Command::Restore => Request::Restore { requests: Vec::new() },
        Command::Save => Request::List { service: None },
        // libipvs sends no service for address and port zero (and the
        // kernel's sockopt path reads them so): every service is zeroed.
        Command::Zero => {
            Request::Zero { service: service.filter(|k| !k.addr.is_unspecified() || k.port != 0) }
        }
        Command::AddLaddr | Command::DelLaddr => {
            let service = key();
            let addr = v.laddr.expect("local-address is required for this command");
            if cmd == Command::AddLaddr {
                Request::AddLaddr { service, addr }
            } else {
                Request::DelLaddr { service, addr }
            }
        }
        Command::GetLaddr => Request::GetLaddr { service },
        Command::Counters => Request::Counters,
    };
    let sort = cli.nosort == 0;
    let view = match (cmd, &request) {
        (Command::List, Request::ListConns { .. }) => {
            View::Conns { persistent: cli.persistent_conn > 0, sort }
        }
        (Command::List, Request::GetTimeouts) if cli.unsupported.daemon > 0 => View::Daemon,
        (Command::List, Request::GetTimeouts) => View::Timeouts,
        (Command::List, _) => View::List { format: list_format(cli), exact: cli.exact > 0, sort },
        (Command::Save, _) => View::Save,
        (Command::GetLaddr, _) => View::Laddrs,
        (Command::Counters, _) => View::Counters,
        _ => View::Done,
    };
    Ok(Invocation {
        command: cmd,
        request,
        view,
        json: cli.json > 0,
        health: cli.health > 0,
        lines: Vec::new(),
        numeric: cli.numeric > 0,
    })
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

/// The one command given.
fn command(cli: &Cli) -> Result<Command, Failure> {
    let counts = [
        (cli.add_service, Command::AddService),
        (cli.edit_service, Command::EditService),
        (cli.delete_service, Command::DelService),
        (cli.clear, Command::Flush),
        (cli.list, Command::List),
        (cli.add_server, Command::AddServer),
        (cli.delete_server, Command::DelServer),
        (cli.edit_server, Command::EditServer),
        (cli.set, Command::SetTimeouts),
        (cli.restore, Command::Restore),
        (cli.save, Command::Save),
        (cli.zero, Command::Zero),
        (cli.add_laddr, Command::AddLaddr),
        (cli.del_laddr, Command::DelLaddr),
        (cli.get_laddr, Command::GetLaddr),
        (cli.counters, Command::Counters),
    ];
    let total: usize = counts.iter().map(|&(n, _)| usize::from(n)).sum();
    match total {
        0 => Err(Failure::TryHelp),
        1 => Ok(counts.iter().find(|&&(n, _)| n > 0).map(|&(_, c)| c).expect("one is set")),
        // ipvsadm reads a command only as the first option: its option loop
        // refuses a later one as an invalid option.
        _ => Err(Failure::InvalidOption),
    }
}

/// The values of the options given, each parsed once (at most one of each).
struct Values {
    service: Option<ServiceKey>,
    real: Option<(IpAddr, Option<u16>)>,
    weight: u32,
    upper: u32,
    lower: u32,
    persistent: Option<u32>,
    netmask: Option<Ipv4Addr>,
    prefix6: Option<u8>,
    laddr: Option<IpAddr>,
    timeouts: Option<TimeoutSet>,
    /// `--tun-type` (ipip when not given) and `--tun-port` (0 when not given).
    tun_type: TunType,
    tun_port: u16,
}

/// ipvsadm 1.31's `tunnames[]`: the index is IPVS's `tun_type`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TunType {
    Ipip,
    Gue,
    Gre,
}

impl TunType {
    fn name(self) -> &'static str {
        ["ipip", "gue", "gre"][self as usize]
    }
}

fn values_of(cli: &Cli, cmd: Command, names: &PortNames) -> Result<Values, Failure> {
    let service = service(cli, names)?;
    let proto = service.map_or(Protocol::Tcp, |k| k.proto);
    let real = match cli.real_server.first() {
        Some(s) => Some(
            values::addr_port(s, proto, names)
                .ok_or_else(|| usage("illegal real server address[:port] specified"))?,
        ),
        None => None,
    };
    let weight = match cli.weight.first() {
        Some(w) => number(w, 0, 65535).ok_or_else(|| usage("illegal weight specified"))?,
        None => DEFAULT_WEIGHT,
    };
    let upper = match cli.u_threshold.first() {
        Some(x) => {
            number(x, 0, MAX_THRESHOLD.into()).ok_or_else(|| usage("illegal u_threshold specified"))?
        }
        None => 0,
    };
    let lower = match cli.l_threshold.first() {
        Some(y) => {
            number(y, 0, MAX_THRESHOLD.into()).ok_or_else(|| usage("illegal l_threshold specified"))?
        }
        None => 0,
    };
    let persistent = match cli.persistent.first() {
        Some(p) if p == BARE => Some(DEFAULT_PERSISTENCE),
        Some(p) => Some(values::timeout(p, 1, MAX_TIMEOUT).map_err(usage)?),
        None => None,
    };
    // -M: a mask for an IPv4 service, a prefix length for an IPv6 one
    // (ipvsadm reads it by the family of the service given so far; gwctl by
    // the service's family wherever -M stands).
    let (netmask, prefix6) = match (cli.netmask.first(), service.map(|k| k.addr)) {
        (Some(m), Some(IpAddr::V6(_))) => (None, Some(values::prefix6(m).map_err(usage)?)),
        (Some(m), _) => (Some(values::netmask(m).map_err(usage)?), None),
        (None, _) => (None, None),
    };
    let laddr = match cli.laddr.first() {
        Some(s) => Some(s.parse::<IpAddr>().map_err(|_| usage("illegal local address"))?),
        None => None,
    };
    // parse_tun_type and string_to_number(optarg, 1, 65535), as ipvsadm
    // reads the values, before any check of which options go together.
    let tun_type = match cli.unsupported.tun_type.first().map(String::as_str) {
        None | Some("ipip") => TunType::Ipip,
        Some("gue") => TunType::Gue,
        Some("gre") => TunType::Gre,
        Some(_) => return Err(usage("illegal tunnel type specified")),
    };
    let tun_port = match cli.unsupported.tun_port.first() {
        Some(p) => number(p, 1, 65535).ok_or_else(|| usage("illegal tunnel port specified"))? as u16,
        None => 0,
    };
    // ipvsadm takes --set's three values from the words left over, then
    // refuses any word still left.
    let mut words = cli.extra.iter();
    let timeouts = if cmd == Command::SetTimeouts {
        match (words.next(), words.next(), words.next()) {
            (Some(tcp), Some(fin), Some(udp)) => {
                let t = |s: &str| values::timeout(s, 0, MAX_TIMEOUT).map_err(usage);
                Some(TimeoutSet { tcp: t(tcp)?, tcpfin: t(fin)?, udp: t(udp)? })
            }
            _ => return Err(usage("--set option requires 3 timeout values")),
        }
    } else {
        None
    };
    if let Some(word) = words.next() {
        return Err(usage(format!("unexpected argument {word}")));
    }
    Ok(Values {
        service,
        real,
        weight,
        upper,
        lower,
        persistent,
        netmask,
        prefix6,
        laddr,
        timeouts,
        tun_type,
        tun_port,
    })
}

/// `-j`/`--synproxy enable|disable` (DPVS's words), for TCP services only.
fn synproxy(cli: &Cli, proto: Protocol) -> Result<bool, Failure> {
    let on = match cli.synproxy.first().map(String::as_str) {
        None | Some("disable") => false,
        Some("enable") => true,
        Some(other) => return Err(usage(format!("invalid synproxy `{other}' (enable or disable)"))),
    };
    if on && proto != Protocol::Tcp {
        return Err(usage("--synproxy is only for TCP virtual services"));
    }
    Ok(on)
}

/// `--proxy-protocol disable|v1|v2` (DPVS's words; its `-insecure` forms,
/// which also accept a header from the client, are refused) and `--toa`
/// (gwctl's): one of them, for TCP services only.
fn client_addr(cli: &Cli, proto: Protocol) -> Result<ClientAddr, Failure> {
    let pp = match cli.proxy_protocol.first().map(String::as_str) {
        None | Some("disable") => None,
        Some("v1") => Some(ClientAddr::ProxyV1),
        Some("v2") => Some(ClientAddr::ProxyV2),
        Some(other) => {
            return Err(usage(format!("invalid proxy protocol `{other}' (disable, v1 or v2)")));
        }
    };
    let ca = match (pp, cli.toa > 0) {
        (Some(_), true) => return Err(usage("--toa and --proxy-protocol exclude each other")),
        (Some(p), false) => p,
        (None, true) => ClientAddr::Toa,
        (None, false) => ClientAddr::None,
    };
    // UDP: PROXY v2 (its DGRAM form) on a session's first datagram (UOA).
    if !matches!(ca, ClientAddr::None | ClientAddr::ProxyV2) && proto != Protocol::Tcp {
        return Err(usage("--toa and --proxy-protocol v1 are only for TCP virtual services"));
    }
    Ok(ca)
}

/// ipvsadm's `generic_opt_check`: required, illegal and mutually exclusive options.
fn table_check(cli: &Cli, cmd: Command) -> Result<(), Failure> {
    if matches!(cmd, Command::AddService | Command::EditService) && cli.b.iter().any(|b| b == BARE) {
        // -b without a value is FULLNAT, which belongs to -a/-e: say so.
        return Err(usage(
            "-b with -A/-E takes scheduler flags (-b flag-1,flag-2,...); \
             -b alone is FULLNAT forwarding, for -a/-e",
        ));
    }
    let mut exclusive: Option<Opt> = None;
    for opt in OPTS {
        let given = opt.count(cli) > 0;
        match rule(cmd, opt) {
            Rule::Required if !given => {
                return Err(usage(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    opt.name(),
                    cmd.name()
                )))
            }
            Rule::Illegal if given => {
                return Err(usage(format!(
                    "Illegal '{}' option with the '{}' command",
                    opt.name(),
                    cmd.name()
                )))
            }
            Rule::Exclusive if given => match exclusive {
                // gwctl's addition: -L -c may name one service.
                Some(Opt::Connection) if opt == Opt::Service => {}
                Some(first) => {
                    return Err(usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        opt.name(),
                        first.name(),
                        cmd.name()
                    )))
                }
                None => exclusive = Some(opt),
            },
            _ => {}
        }
    }
    Ok(())
}

/// ipvsadm's check of `-L`'s output options against each other.
fn list_conflicts(cli: &Cli) -> Result<(), Failure> {
    let table = cli.stats > 0 || cli.rate > 0 || cli.thresholds > 0;
    let daemon = cli.unsupported.daemon > 0;
    let not_a_table = cli.connection > 0 || cli.timeout > 0 || daemon;
    if (not_a_table && table) || ((cli.timeout > 0 || daemon) && cli.persistent_conn > 0) {
        return Err(usage("options conflicts in the list command"));
    }
    Ok(())
}

fn list_format(cli: &Cli) -> ListFormat {
    if cli.stats > 0 {
        ListFormat::Stats
    } else if cli.rate > 0 {
        ListFormat::Rate
    } else if cli.thresholds > 0 {
        ListFormat::Thresholds
    } else if cli.persistent_conn > 0 {
        ListFormat::PersistConn
    } else if cli.tun_info > 0 {
        ListFormat::TunInfo
    } else {
        ListFormat::Plain
    }
}

/// The -t/-u service, if given (at most one, checked before).
fn service(cli: &Cli, names: &PortNames) -> Result<Option<ServiceKey>, Failure> {
    let (text, proto) = match (cli.tcp_service.first(), cli.udp_service.first()) {
        (Some(t), _) => (t, Protocol::Tcp),
        (None, Some(u)) => (u, Protocol::Udp),
        (None, None) => return Ok(None),
    };
    let (addr, port) = values::addr_port(text, proto, names)
        .ok_or_else(|| usage("illegal virtual server address[:port] specified"))?;
    Ok(Some(ServiceKey { proto, addr, port: port.unwrap_or(0) }))
}

/// The tunnel options, checked as ipvsadm 1.31 checks them once the values
/// are read ([`values_of`]: `--tun-type`'s name, `--tun-port`'s range):
/// "Tunnel options conflict with forward method" without `-i`, then
/// `tunnel_opt_check` over its table `tunnel_types_v_options` (tun-port,
/// tun-nocsum, tun-csum, tun-remcsum): ipip (the default) takes none; gue
/// needs the port and takes at most one checksum option; gre takes
/// `--tun-nocsum` or `--tun-csum`.
fn tunnel_check(cli: &Cli, v: &Values, mode: ForwardMode) -> Result<TunnelEncap, Failure> {
    let u = &cli.unsupported;
    let (kind, port) = (v.tun_type, v.tun_port);
    let name = kind.name();
    let options = [
        (Opt::TunType, u.tun_type.len()),
        (Opt::TunPort, u.tun_port.len()),
        (Opt::TunNocsum, u.tun_nocsum.into()),
        (Opt::TunCsum, u.tun_csum.into()),
        (Opt::TunRemcsum, u.tun_remcsum.into()),
    ];
    if mode != ForwardMode::Tunnel {
        if options.iter().any(|&(_, n)| n > 0) {
            return Err(usage("Tunnel options conflict with forward method"));
        }
        return Ok(TunnelEncap::Ipip);
    }
    // tunnel_types_v_options, columns tun-port, nocsum, csum, remcsum.
    let table = match kind {
        TunType::Ipip => [Rule::Illegal; 4],
        TunType::Gue => [Rule::Required, Rule::Exclusive, Rule::Exclusive, Rule::Exclusive],
        TunType::Gre => [Rule::Illegal, Rule::Exclusive, Rule::Exclusive, Rule::Illegal],
    };
    let mut first: Option<Opt> = None;
    for (&(opt, n), rule) in options[1..].iter().zip(table) {
        match rule {
            Rule::Required if n == 0 => {
                return Err(usage(format!(
                    "You need to supply the '{}' option for the '{name}' tunnel type",
                    opt.name()
                )))
            }
            Rule::Illegal if n > 0 => {
                return Err(usage(format!("Illegal '{}' option with the '{name}' tunnel type", opt.name())))
            }
            Rule::Exclusive if n > 0 => match first {
                Some(f) => {
                    return Err(usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{name}' tunnel type",
                        opt.name(),
                        f.name()
                    )))
                }
                None => first = Some(opt),
            },
            _ => {}
        }
    }
    let csum = match first {
        Some(Opt::TunCsum) => TunnelCsum::Csum,
        Some(Opt::TunRemcsum) => TunnelCsum::RemCsum,
        _ => TunnelCsum::NoCsum,
    };
    Ok(match kind {
        TunType::Ipip => TunnelEncap::Ipip,
        TunType::Gue => TunnelEncap::Gue { port, csum },
        TunType::Gre => TunnelEncap::Gre { csum },
    })
}

/// The forwarding method flag given, or the default.
fn forward(cli: &Cli) -> ForwardMode {
    if cli.fullnat > 0 || cli.b.iter().any(|b| b == BARE) {
        ForwardMode::FullNat
    } else if cli.masquerading > 0 {
        ForwardMode::Masq
    } else if cli.ipip > 0 {
        ForwardMode::Tunnel
    } else {
        DEFAULT_FORWARD
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use gw_proto::{sched_flags, DEFAULT_PERSISTENCE};

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const RIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

    fn run(args: &[&str]) -> Result<Invocation, Failure> {
        let argv = std::iter::once("gwctl").chain(args.iter().copied());
        let cli = Cli::try_parse_from(argv).expect("clap accepts the syntax");
        resolve_with(&cli, &PortNames::builtin())
    }

    fn req(args: &[&str]) -> Request {
        run(args).unwrap_or_else(|e| panic!("{args:?}: {e}")).request
    }

    fn fail(args: &[&str]) -> String {
        match run(args) {
            Ok(i) => panic!("{args:?} resolved to {i:?}"),
            Err(Failure::Usage(m)) => m,
            Err(e) => panic!("{args:?}: not a usage error: {e:?}"),
        }
    }

    fn tcp(port: u16) -> ServiceKey {
        ServiceKey { proto: Protocol::Tcp, addr: VIP.into(), port }
    }

    fn udp(port: u16) -> ServiceKey {
        ServiceKey { proto: Protocol::Udp, addr: VIP.into(), port }
    }

    fn dest(port: u16, mode: ForwardMode, weight: u32) -> DestSpec {
        DestSpec::new(RIP, port, mode, weight)
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    #[test]
    fn ipv6_services_and_servers() {
        let key = ServiceKey { proto: Protocol::Tcp, addr: v6("2001:db8::1"), port: 80 };
        let s = spec(&["-A", "-t", "[2001:db8::1]:80", "-s", "rr"]);
        assert_eq!((s.key, s.prefix6, s.persistent), (key, FULL_PREFIX6, None));
        // -M is a prefix length for an IPv6 service, before or after -t.
        let s = spec(&["-A", "-t", "[2001:db8::1]:80", "-p", "-M", "64"]);
        assert_eq!(
            (s.prefix6, s.netmask, s.persistent),
            (64, Ipv4Addr::BROADCAST, Some(DEFAULT_PERSISTENCE))
        );
        assert_eq!(spec(&["-A", "-M", "48", "-p", "-t", "[2001:db8::1]:80"]).prefix6, 48);
        assert_eq!(
            fail(&["-A", "-t", "[2001:db8::1]:80", "-p", "-M", "129"]),
            "illegal ipv6 netmask specified"
        );
        assert_eq!(
            fail(&["-A", "-t", "[2001:db8::1]:80", "-p", "-M", "ffff:ffff::"]),
            "illegal ipv6 netmask specified"
        );
        // An IPv4 service keeps the dotted mask.
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:80", "-p", "-M", "/24"]).prefix6, FULL_PREFIX6);
        // A bare IPv6 address has no port: a zero-port service needs -p.
        assert_eq!(fail(&["-A", "-t", "2001:db8::1"]), "Zero port specified for non-persistent service");
        assert_eq!(fail(&["-A", "-t", "[2001:db8::1]"]), "illegal virtual server address[:port] specified");
        assert_eq!(
            req(&["-a", "-t", "[2001:db8::1]:80", "-r", "[2001:db8::2]:8080", "-b", "-w", "2"]),
            Request::AddDest {
                service: key,
                dest: DestSpec::new(v6("2001:db8::2"), 8080, ForwardMode::FullNat, 2)
            }
        );
        assert_eq!(
            req(&["-d", "-t", "[2001:db8::1]:80", "-r", "2001:db8::2"]),
            Request::DelDest { service: key, addr: v6("2001:db8::2"), port: 80 }
        );
        assert_eq!(
            fail(&["-a", "-t", "[2001:db8::1]:80", "-r", "[2001:db8::2]:http:80"]),
            "illegal real server address[:port] specified"
        );
    }

    #[test]
    fn families_mix_only_for_tunnels_and_local_addresses() {
        let msg = "Different address family is allowed only for tunneling servers";
        assert_eq!(fail(&["-a", "-t", "198.18.0.100:80", "-r", "[2001:db8::2]:80", "-b"]), msg);
        // NAT64 (DPVS): an IPv4 FULLNAT server behind an IPv6 VIP.
        let key6 = ServiceKey { proto: gw_proto::Protocol::Tcp, addr: v6("2001:db8::1"), port: 80 };
        assert_eq!(
            req(&["-a", "-t", "[2001:db8::1]:80", "-r", "198.18.1.2:80", "-b"]),
            Request::AddDest {
                service: key6,
                dest: DestSpec::new(std::net::Ipv4Addr::new(198, 18, 1, 2), 80, ForwardMode::FullNat, 1)
            }
        );
        assert_eq!(fail(&["-a", "-t", "[2001:db8::1]:80", "-r", "198.18.1.2:80", "-m"]), msg);
        assert_eq!(fail(&["-e", "-t", "198.18.0.100:80", "-r", "[2001:db8::2]:80", "-m"]), msg);
        assert_eq!(fail(&["-a", "-t", "198.18.0.100:80", "-r", "[2001:db8::2]:80", "-g"]), msg);
        let tun = req(&["-a", "-t", "198.18.0.100:80", "-r", "[2001:db8::2]:80", "-i"]);
        assert_eq!(
            tun,
            Request::AddDest {
                service: tcp(80),
                dest: DestSpec::new(v6("2001:db8::2"), 80, ForwardMode::Tunnel, 1)
            }
        );
        // FULLNAT local addresses of either family (an IPv4 one on an IPv6
        // service is NAT64's).
        let key = ServiceKey { proto: Protocol::Tcp, addr: v6("2001:db8::1"), port: 80 };
        assert_eq!(
            req(&["--add-laddr", "-z", "198.18.2.1", "-t", "[2001:db8::1]:80"]),
            Request::AddLaddr { service: key, addr: Ipv4Addr::new(198, 18, 2, 1).into() }
        );
        assert_eq!(
            req(&["--del-laddr", "-z", "2001:db8::3", "-t", "198.18.0.100:80"]),
            Request::DelLaddr { service: tcp(80), addr: v6("2001:db8::3") }
        );
        assert_eq!(
            fail(&["--add-laddr", "-z", "[2001:db8::3]", "-t", "198.18.0.100:80"]),
            "illegal local address"
        );
    }

    #[test]
    fn ipv6_flag_needs_fwmark() {
        assert_eq!(fail(&["-A", "-t", "[2001:db8::1]:80", "-6"]), "-6 used before -f\n");
        assert!(fail(&["-A", "-f", "1", "-6"]).starts_with("fwmark services"));
        // Alone, -6 is ipvsadm's first option and not a command: "Try ...", 255.
        assert_eq!(run(&["-6"]), Err(Failure::TryHelp));
        assert!(!Cli::try_parse_from(["gwctl", "-6"]).unwrap().is_bare());
    }

    fn spec(args: &[&str]) -> ServiceSpec {
        match req(args) {
            Request::AddService { spec } | Request::EditService { spec } => spec,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn add_and_edit_service() {
        assert_eq!(
            req(&["-A", "-t", "198.18.0.100:80", "-s", "rr"]),
            Request::AddService { spec: ServiceSpec::new(tcp(80), Scheduler::Rr) }
        );
        assert_eq!(
            req(&["--add-service", "--udp-service", "198.18.0.100:53"]),
            Request::AddService { spec: ServiceSpec::new(udp(53), Scheduler::Wlc) }
        );
        assert_eq!(
            req(&["-E", "-t", "198.18.0.100:http", "-s", "wrr"]),
            Request::EditService { spec: ServiceSpec::new(tcp(80), Scheduler::Wrr) }
        );
        // Clustered short options, as in `ipvsadm -At VIP:80`.
        assert_eq!(
            req(&["-At", "198.18.0.100:80"]),
            Request::AddService { spec: ServiceSpec::new(tcp(80), Scheduler::Wlc) }
        );
    }

    #[test]
    fn default_scheduler_is_wlc_and_every_scheduler_parses() {
        assert_eq!(DEFAULT_SCHEDULER, Scheduler::Wlc);
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:80"]).scheduler, Scheduler::Wlc);
        assert_eq!(spec(&["-E", "-t", "198.18.0.100:80"]).scheduler, Scheduler::Wlc);
        for s in Scheduler::ALL {
            assert_eq!(spec(&["-A", "-t", "198.18.0.100:80", "-s", s.name()]).scheduler, s);
            assert_eq!(spec(&["-A", "-t", "198.18.0.100:80", "--scheduler", s.name()]).scheduler, s);
        }
    }

    /// ipvsadm.c process_options: an empty scheduler name is none (DEF_SCHED),
    /// for -A and -E alike, and parse_sched_flags reads the flags for wlc.
    #[test]
    fn empty_scheduler_is_wlc() {
        assert_eq!(
            req(&["-A", "-t", "198.18.0.100:80", "-s", ""]),
            Request::AddService { spec: ServiceSpec::new(tcp(80), Scheduler::Wlc) }
        );
        assert_eq!(
            req(&["-E", "-t", "198.18.0.100:80", "--scheduler="]),
            Request::EditService { spec: ServiceSpec::new(tcp(80), Scheduler::Wlc) }
        );
        let s = spec(&["-A", "-t", "198.18.0.100:80", "-s", "", "-b", "flag-1"]);
        assert_eq!((s.scheduler, s.sched_flags), (Scheduler::Wlc, sched_flags::FLAG1));
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-s", "", "-b", "sh-port"]),
            "incompatible scheduler flag `sh-port'"
        );
        // Still an option given: the table refuses it where it does not belong.
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-s", ""]),
            "Illegal 'scheduler' option with the 'add-server' command"
        );
    }

    /// popt gives an option with a required value the next word, whatever it
    /// is; ipvsadm then refuses the value (exit 2), where clap alone would say
    /// the value is missing. `-p` and `-b` keep their optional values.
    #[test]
    fn a_value_that_starts_with_a_dash_is_the_options_value() {
        let vip = "198.18.0.100:80";
        let cases: [(&[&str], &str); 12] = [
            (&["-A", "-t", "-s", "rr"], "illegal virtual server address[:port] specified"),
            (&["-L", "-t", "-n"], "illegal virtual server address[:port] specified"),
            (&["-Z", "-u", "-L"], "illegal virtual server address[:port] specified"),
            (&["-d", "-t", "-r", "198.18.1.2"], "illegal virtual server address[:port] specified"),
            (&["-A", "-s", "-t", vip], "unexpected argument 198.18.0.100:80"),
            (&["-a", "-t", vip, "-r", "-w", "2"], "illegal real server address[:port] specified"),
            (&["-a", "-t", vip, "--real-server", "-m"], "illegal real server address[:port] specified"),
            (&["-a", "-t", vip, "-r", "198.18.1.2", "-w", "-m"], "illegal weight specified"),
            (&["-a", "-t", vip, "-r", "198.18.1.2", "-x", "-y", "5"], "illegal u_threshold specified"),
            (&["-a", "-t", vip, "-r", "198.18.1.2", "-y", "-x", "5"], "illegal l_threshold specified"),
            (&["-A", "-t", vip, "-M", "-p"], "illegal virtual server persistent mask specified"),
            (
                &["-a", "-t", vip, "-r", "198.18.1.2", "-i", "--tun-type", "-g"],
                "illegal tunnel type specified",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(fail(args), want, "{args:?}");
            assert_eq!(run(args).unwrap_err().exit_code(), 2, "{args:?}");
        }
        // The scheduler `-p` is sent as ipvsadm sends it: the kernel's ENOENT, 255.
        match run(&["-A", "-t", vip, "-s", "-p"]) {
            Err(f @ Failure::NoScheduler(_)) => assert_eq!(
                (f.ipvsadm_text().as_str(), f.exit_code()),
                ("Scheduler or persistence engine not found", 255)
            ),
            other => panic!("{other:?}"),
        }
        // Optional values: the next word only when it does not start with '-'.
        let s = spec(&["-A", "-t", vip, "-p", "-s", "rr"]);
        assert_eq!((s.persistent, s.scheduler), (Some(DEFAULT_PERSISTENCE), Scheduler::Rr));
        assert_eq!(
            req(&["-a", "-t", vip, "-r", "198.18.1.2", "-b", "-w", "2"]),
            Request::AddDest { service: tcp(80), dest: dest(80, ForwardMode::FullNat, 2) }
        );
    }

    #[test]
    fn persistence_defaults_to_360() {
        assert_eq!(DEFAULT_PERSISTENCE, 360);
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:80", "-p"]).persistent, Some(360));
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:80", "-p", "-s", "rr"]).persistent, Some(360));
        assert_eq!(spec(&["-A", "-p", "-t", "198.18.0.100:80"]).persistent, Some(360));
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:80", "-p", "600"]).persistent, Some(600));
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:80", "--persistent", "1"]).persistent, Some(1));
        assert_eq!(
            spec(&["-A", "-t", "198.18.0.100:80", "--persistent=2678400"]).persistent,
            Some(2_678_400)
        );
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:80"]).persistent, None);
        assert_eq!(fail(&["-A", "-t", "198.18.0.100:80", "-p", "0"]), "invalid timeout value `0' specified");
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-p", "2678401"]),
            "invalid timeout value `2678401' specified"
        );
        // A persistent service may have port 0 (all ports), as in ipvsadm.
        assert_eq!(spec(&["-A", "-t", "198.18.0.100", "-p"]).key.port, 0);
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:0", "-p", "60"]).key.port, 0);
    }

    #[test]
    fn netmask_forms() {
        let mask = |m: &str| spec(&["-A", "-t", "198.18.0.100:80", "-p", "-M", m]).netmask;
        assert_eq!(mask("255.255.255.0"), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(mask("/24"), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(mask("16"), Ipv4Addr::new(255, 255, 0, 0));
        let s = spec(&["-A", "-t", "198.18.0.100:80", "--netmask", "255.255.0.0"]);
        assert_eq!((s.netmask, s.persistent), (Ipv4Addr::new(255, 255, 0, 0), None));
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:80"]).netmask, Ipv4Addr::BROADCAST);
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-M", "/33"]),
            "illegal virtual server persistent mask specified"
        );
    }

    #[test]
    fn one_packet_scheduling_is_for_udp() {
        assert!(spec(&["-A", "-u", "198.18.0.100:53", "-o"]).one_packet);
        assert!(spec(&["-E", "-u", "198.18.0.100:53", "--ops"]).one_packet);
        assert!(!spec(&["-A", "-u", "198.18.0.100:53"]).one_packet);
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-o"]),
            "One-Packet Scheduling is only for UDP virtual services"
        );
        assert_eq!(
            fail(&["-a", "-u", "198.18.0.100:53", "-r", "198.18.1.2", "-o"]),
            "Illegal 'ops' option with the 'add-server' command"
        );
    }

    #[test]
    fn b_is_sched_flags_with_a_service_command() {
        let f = |args: &[&str]| spec(args).sched_flags;
        assert_eq!(f(&["-A", "-t", "198.18.0.100:80", "-s", "sh", "-b", "sh-fallback,sh-port"]), 3);
        assert_eq!(f(&["-E", "-t", "198.18.0.100:80", "-s", "mh", "--sched-flags", "mh-port"]), 2);
        assert_eq!(f(&["-A", "-t", "198.18.0.100:80", "-b", "flag-1,flag-3"]), 5);
        assert_eq!(sched_flags::FLAG1 | sched_flags::FLAG3, 5);
        assert_eq!(f(&["-A", "-t", "198.18.0.100:80"]), 0);
        // The scheduler decides which names are valid; wlc when -s is absent.
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-b", "sh-port"]),
            "incompatible scheduler flag `sh-port'"
        );
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-s", "sh", "-b", "sh-port,nope"]),
            "invalid scheduler flag `nope'"
        );
        assert!(fail(&["-A", "-t", "198.18.0.100:80", "-s", "sh", "-b"]).starts_with("-b with -A/-E takes"));
        assert!(fail(&["-E", "-t", "198.18.0.100:80", "-b", "-s", "sh"]).starts_with("-b with -A/-E takes"));
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-b", "flag-1", "-b", "flag-2"]),
            "multiple 'sched-flags' options specified"
        );
    }

    #[test]
    fn b_is_fullnat_with_a_server_command() {
        assert_eq!(
            req(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2:8080", "-b"]),
            Request::AddDest { service: tcp(80), dest: dest(8080, ForwardMode::FullNat, 1) }
        );
        assert_eq!(
            req(&["-e", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-b", "-w", "4"]),
            Request::EditDest { service: tcp(80), dest: dest(80, ForwardMode::FullNat, 4) }
        );
        assert_eq!(
            req(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "--fullnat"]),
            Request::AddDest { service: tcp(80), dest: dest(80, ForwardMode::FullNat, 1) }
        );
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-b", "flag-1"]),
            "Illegal 'sched-flags' option with the 'add-server' command"
        );
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-b", "-b"]),
            "multiple 'forwarding-method' options specified"
        );
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-b", "-m"]),
            "multiple 'forwarding-method' options specified"
        );
    }

    #[test]
    fn thresholds() {
        let d = |args: &[&str]| match req(args) {
            Request::AddDest { dest, .. } | Request::EditDest { dest, .. } => dest,
            other => panic!("{other:?}"),
        };
        let got = d(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-x", "100", "-y", "50"]);
        assert_eq!((got.upper, got.lower), (100, 50));
        let got = d(&["-e", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "--u-threshold", "2147483647"]);
        assert_eq!((got.upper, got.lower), (2_147_483_647, 0));
        let got = d(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "--l-threshold", "0"]);
        assert_eq!((got.upper, got.lower), (0, 0));
        for bad in ["-1", "2147483648", "x"] {
            assert_eq!(
                fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-x", bad]),
                "illegal u_threshold specified"
            );
            assert_eq!(
                fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-y", bad]),
                "illegal l_threshold specified"
            );
        }
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-x", "1"]),
            "Illegal 'u-threshold' option with the 'add-service' command"
        );
        assert_eq!(
            fail(&["-d", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-y", "1"]),
            "Illegal 'l-threshold' option with the 'delete-server' command"
        );
    }

    #[test]
    fn a_service_with_every_option() {
        let s = spec(&[
            "-A",
            "-u",
            "198.18.0.100:53",
            "-s",
            "sh",
            "-p",
            "600",
            "-M",
            "255.255.255.0",
            "-o",
            "-b",
            "sh-fallback,sh-port",
        ]);
        assert_eq!(
            s,
            ServiceSpec {
                key: udp(53),
                scheduler: Scheduler::Sh,
                persistent: Some(600),
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                prefix6: FULL_PREFIX6,
                one_packet: true,
                sched_flags: 3,
                client_addr: ClientAddr::None,
                synproxy: false,
            }
        );
    }

    #[test]
    fn synproxy_as_dpvs() {
        let sp = |args: &[&str]| spec(args).synproxy;
        assert!(!sp(&["-A", "-t", "198.18.0.100:80"]));
        assert!(sp(&["-A", "-t", "198.18.0.100:80", "-j", "enable"]));
        assert!(sp(&["-E", "-t", "198.18.0.100:80", "--synproxy", "enable", "--proxy-protocol", "v2"]));
        assert!(!sp(&["-E", "-t", "198.18.0.100:80", "-j", "disable"]));
        for bad in [
            &["-A", "-u", "198.18.0.100:53", "-j", "enable"][..],
            &["-A", "-t", "198.18.0.100:80", "-j", "on"],
            &["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.1", "-j", "enable"],
        ] {
            fail(bad);
        }
    }

    #[test]
    fn client_address_options_as_dpvs() {
        let ca = |args: &[&str]| spec(args).client_addr;
        assert_eq!(ca(&["-A", "-t", "198.18.0.100:80"]), ClientAddr::None);
        assert_eq!(ca(&["-A", "-t", "198.18.0.100:80", "--proxy-protocol", "v1"]), ClientAddr::ProxyV1);
        assert_eq!(ca(&["-E", "-t", "198.18.0.100:80", "--proxy-protocol", "v2"]), ClientAddr::ProxyV2);
        // UOA: PROXY v2's DGRAM form for UDP.
        assert_eq!(ca(&["-A", "-u", "198.18.0.100:53", "--proxy-protocol", "v2"]), ClientAddr::ProxyV2);
        assert_eq!(ca(&["-E", "-t", "198.18.0.100:80", "--proxy-protocol", "disable"]), ClientAddr::None);
        assert_eq!(ca(&["-A", "-t", "198.18.0.100:80", "--toa"]), ClientAddr::Toa);
        for bad in [
            &["-A", "-t", "198.18.0.100:80", "--proxy-protocol", "v3"][..],
            &["-A", "-t", "198.18.0.100:80", "--proxy-protocol", "v1-insecure"],
            &["-A", "-t", "198.18.0.100:80", "--proxy-protocol", "v1", "--toa"],
            &["-A", "-u", "198.18.0.100:53", "--toa"],
            &["-A", "-u", "198.18.0.100:53", "--proxy-protocol", "v1"],
            &["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.1", "--toa"],
            &["-A", "-t", "198.18.0.100:80", "--toa", "--toa"],
        ] {
            fail(bad);
        }
    }

    #[test]
    fn delete_and_clear() {
        assert_eq!(req(&["-D", "-t", "198.18.0.100:80"]), Request::DelService { key: tcp(80) });
        assert_eq!(req(&["-C"]), Request::Clear);
        assert_eq!(req(&["--clear"]), Request::Clear);
    }

    #[test]
    fn add_server_defaults_are_ipvsadms() {
        // Weight 1, gatewaying (Route), port of the service.
        assert_eq!(
            req(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2"]),
            Request::AddDest { service: tcp(80), dest: dest(80, ForwardMode::Route, 1) }
        );
        assert_eq!(
            req(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-b"]),
            Request::AddDest { service: tcp(80), dest: dest(80, ForwardMode::FullNat, 1) }
        );
        assert_eq!(
            req(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2:8080", "-b", "-w", "0"]),
            Request::AddDest { service: tcp(80), dest: dest(8080, ForwardMode::FullNat, 0) }
        );
        assert_eq!(
            req(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2:8080", "-m", "-w", "65535"]),
            Request::AddDest { service: tcp(80), dest: dest(8080, ForwardMode::Masq, 65535) }
        );
    }

    #[test]
    fn route_and_tunnel_force_the_service_port() {
        assert_eq!(
            req(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2:8080"]),
            Request::AddDest { service: tcp(80), dest: dest(80, ForwardMode::Route, 1) }
        );
        assert_eq!(
            req(&["-e", "-t", "198.18.0.100:80", "-r", "198.18.1.2:8080", "-i", "-w", "3"]),
            Request::EditDest { service: tcp(80), dest: dest(80, ForwardMode::Tunnel, 3) }
        );
        assert_eq!(
            req(&["--edit-server", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "--gatewaying"]),
            Request::EditDest { service: tcp(80), dest: dest(80, ForwardMode::Route, 1) }
        );
    }

    #[test]
    fn delete_server_keeps_the_given_port() {
        assert_eq!(
            req(&["-d", "-t", "198.18.0.100:80", "-r", "198.18.1.2:8080"]),
            Request::DelDest { service: tcp(80), addr: RIP.into(), port: 8080 }
        );
        assert_eq!(
            req(&["-d", "-t", "198.18.0.100:80", "-r", "198.18.1.2"]),
            Request::DelDest { service: tcp(80), addr: RIP.into(), port: 80 }
        );
    }

    #[test]
    fn laddr_commands() {
        let lip = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 1));
        assert_eq!(
            req(&["--add-laddr", "-z", "198.18.2.1", "-t", "198.18.0.100:80"]),
            Request::AddLaddr { service: tcp(80), addr: lip }
        );
        assert_eq!(
            req(&["--del-laddr", "--laddr", "198.18.2.1", "-t", "198.18.0.100:80"]),
            Request::DelLaddr { service: tcp(80), addr: lip }
        );
        assert_eq!(req(&["--get-laddr"]), Request::GetLaddr { service: None });
        let i = run(&["-G", "-t", "198.18.0.100:80", "--json"]).unwrap();
        assert_eq!(i.request, Request::GetLaddr { service: Some(tcp(80)) });
        assert_eq!((i.view, i.json), (View::Laddrs, true));
    }

    #[test]
    fn list_zero_and_counters() {
        let i = run(&["-L", "-n"]).unwrap();
        assert_eq!(i.request, Request::List { service: None });
        assert_eq!(i.view, View::List { format: ListFormat::Plain, exact: false, sort: true });
        let i = run(&["-l", "-n", "--stats", "--exact", "-t", "198.18.0.100:80"]).unwrap();
        assert_eq!(i.request, Request::List { service: Some(tcp(80)) });
        assert_eq!(i.view, View::List { format: ListFormat::Stats, exact: true, sort: true });
        assert!(run(&["-L", "--json"]).unwrap().json);
        assert_eq!(req(&["-Z"]), Request::Zero { service: None });
        assert_eq!(req(&["-Z", "-t", "198.18.0.100:80"]), Request::Zero { service: Some(tcp(80)) });
        // libipvs ipvs_zero_service sends no service for address and port
        // zero, and the kernel then zeroes every service.
        for any in [&["-Z", "-t", "0.0.0.0:0"][..], &["-Z", "-u", "0.0.0.0"], &["-Z", "-t", "[::]:0"]] {
            assert_eq!(req(any), Request::Zero { service: None }, "{any:?}");
        }
        let any80 = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::UNSPECIFIED.into(), port: 80 };
        assert_eq!(req(&["-Z", "-t", "0.0.0.0:80"]), Request::Zero { service: Some(any80) });
        let i = run(&["--counters", "--json"]).unwrap();
        assert_eq!((i.request, i.view, i.json), (Request::Counters, View::Counters, true));
    }

    #[test]
    fn listing_formats() {
        let view = |args: &[&str]| run(args).unwrap().view;
        let list = |format, exact, sort| View::List { format, exact, sort };
        assert_eq!(view(&["-L", "--rate"]), list(ListFormat::Rate, false, true));
        assert_eq!(view(&["-L", "--rate", "--exact"]), list(ListFormat::Rate, true, true));
        assert_eq!(view(&["-L", "--thresholds"]), list(ListFormat::Thresholds, false, true));
        assert_eq!(view(&["-L", "--persistent-conn"]), list(ListFormat::PersistConn, false, true));
        assert_eq!(view(&["-L", "--tun-info"]), list(ListFormat::TunInfo, false, true));
        // print_title: --persistent-conn before --tun-info.
        assert_eq!(
            view(&["-L", "--tun-info", "--persistent-conn"]),
            list(ListFormat::PersistConn, false, true)
        );
        // ipvsadm's print_title: stats before rate before thresholds before persistent-conn.
        assert_eq!(view(&["-L", "--thresholds", "--rate", "--stats"]), list(ListFormat::Stats, false, true));
        assert_eq!(
            view(&["-L", "--persistent-conn", "--thresholds"]),
            list(ListFormat::Thresholds, false, true)
        );
        assert_eq!(view(&["-L", "--sort"]), list(ListFormat::Plain, false, true));
        assert_eq!(view(&["-L", "--sort", "--sort"]), list(ListFormat::Plain, false, true));
        assert_eq!(view(&["-L", "--nosort"]), list(ListFormat::Plain, false, false));
        assert_eq!(view(&["-Ln", "-X"]), list(ListFormat::Plain, true, true));
    }

    #[test]
    fn connections_and_timeouts() {
        let i = run(&["-L", "-n", "-c"]).unwrap();
        assert_eq!(i.request, Request::ListConns { service: None });
        assert_eq!(i.view, View::Conns { persistent: false, sort: true });
        let i = run(&["-lnc", "--persistent-conn", "--json"]).unwrap();
        assert_eq!((i.view, i.json), (View::Conns { persistent: true, sort: true }, true));
        // gwctl's addition: connections of one service.
        let i = run(&["-L", "-c", "-t", "198.18.0.100:80"]).unwrap();
        assert_eq!(i.request, Request::ListConns { service: Some(tcp(80)) });
        let i = run(&["-L", "--timeout"]).unwrap();
        assert_eq!((i.request, i.view), (Request::GetTimeouts, View::Timeouts));
        assert_eq!(run(&["-L", "--timeout"]).unwrap().command, Command::List);

        assert_eq!(fail(&["-L", "-c", "--stats"]), "options conflicts in the list command");
        assert_eq!(fail(&["-L", "-c", "--rate"]), "options conflicts in the list command");
        assert_eq!(fail(&["-L", "--timeout", "--thresholds"]), "options conflicts in the list command");
        assert_eq!(fail(&["-L", "--timeout", "--persistent-conn"]), "options conflicts in the list command");
        assert_eq!(
            fail(&["-L", "-c", "--timeout"]),
            "The option 'timeout' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(
            fail(&["-L", "-t", "198.18.0.100:80", "--timeout"]),
            "The option 'timeout' conflicts with the 'service-address' option in the 'list' command"
        );
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-c"]),
            "Illegal 'connection' option with the 'add-service' command"
        );
    }

    #[test]
    fn set_timeouts() {
        assert_eq!(
            req(&["--set", "900", "120", "300"]),
            Request::SetTimeouts { timeouts: TimeoutSet { tcp: 900, tcpfin: 120, udp: 300 } }
        );
        assert_eq!(
            req(&["--set", "0", "0", "2678400"]),
            Request::SetTimeouts { timeouts: TimeoutSet { tcp: 0, tcpfin: 0, udp: 2_678_400 } }
        );
        assert_eq!(fail(&["--set", "900", "120"]), "--set option requires 3 timeout values");
        assert_eq!(fail(&["--set"]), "--set option requires 3 timeout values");
        assert_eq!(fail(&["--set", "900", "x", "300"]), "invalid timeout value `x' specified");
        assert_eq!(fail(&["--set", "900", "120", "2678401"]), "invalid timeout value `2678401' specified");
        assert_eq!(fail(&["--set", "1", "2", "3", "4"]), "unexpected argument 4");
        assert_eq!(fail(&["--set", "1", "2", "3", "-n"]), "Illegal 'numeric' option with the 'set' command");
        assert_eq!(fail(&["-L", "1"]), "unexpected argument 1");
    }

    #[test]
    fn save_and_restore() {
        let i = run(&["-S"]).unwrap();
        assert_eq!(
            (i.command, i.request, i.view),
            (Command::Save, Request::List { service: None }, View::Save)
        );
        assert_eq!(run(&["--save", "-n"]).unwrap().view, View::Save);
        assert_eq!(
            fail(&["-S", "-t", "198.18.0.100:80"]),
            "Illegal 'service-address' option with the 'save' command"
        );
        assert_eq!(fail(&["-S", "--json"]), "Illegal 'json' option with the 'save' command");
        let i = run(&["-R"]).unwrap();
        assert_eq!(
            (i.command, i.request, i.view),
            (Command::Restore, Request::Restore { requests: vec![] }, View::Done)
        );
        assert_eq!(fail(&["--restore", "-n"]), "Illegal 'numeric' option with the 'restore' command");
    }

    #[test]
    fn unsupported_options_are_refused_clearly() {
        assert!(
            fail(&["-A", "-f", "1"]).starts_with("fwmark services (-f, --fwmark-service) are not supported")
        );
        assert_eq!(req(&["-L", "--daemon"]), Request::GetTimeouts);
        assert_eq!(run(&["-L", "--daemon"]).unwrap().view, View::Daemon);
        // ipvsadm.c process_options: --daemon with a table option.
        assert_eq!(fail(&["-L", "--daemon", "--stats"]), "options conflicts in the list command");
        assert_eq!(
            fail(&["-L", "--daemon", "-c"]),
            "The option 'daemon' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "--daemon"]),
            "Illegal 'daemon' option with the 'add-service' command"
        );
        match run(&["-A", "-t", "198.18.0.100:80", "-s", "foo"]) {
            Err(f @ Failure::NoScheduler(_)) => assert_eq!(
                (f.ipvsadm_text().as_str(), f.exit_code()),
                ("Scheduler or persistence engine not found", 255)
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(spec(&["-A", "-t", "198.18.0.100:80", "-s", "ovf"]).scheduler, Scheduler::Ovf);
        assert!(fail(&["--start-daemon", "master"]).contains("synchronisation daemon"));
        assert!(fail(&["--stop-daemon", "backup", "--syncid", "3"]).contains("synchronisation daemon"));
        assert!(fail(&["-A", "-t", "198.18.0.100:80", "--pe", "sip"]).contains("--pe"));
        // ipvsadm 1.31's tunnel checks (its messages, from the binary's strings).
        let a = ["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2"];
        fn with<'a>(a: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
            [a, extra].concat()
        }
        let tun = |extra: &[&'static str]| with(&a, extra);
        assert_eq!(
            req(&tun(&["-i", "-w", "1", "--tun-type", "ipip"])),
            Request::AddDest { service: tcp(80), dest: dest(80, ForwardMode::Tunnel, 1) }
        );
        assert_eq!(fail(&tun(&["-i", "--tun-type", "vxlan"])), "illegal tunnel type specified");
        assert_eq!(fail(&tun(&["-m", "--tun-type", "ipip"])), "Tunnel options conflict with forward method");
        assert_eq!(
            fail(&tun(&["-i", "--tun-nocsum"])),
            "Illegal 'tun-nocsum' option with the 'ipip' tunnel type"
        );
        assert_eq!(
            fail(&tun(&["-i", "--tun-type", "ipip", "--tun-port", "6080"])),
            "Illegal 'tun-port' option with the 'ipip' tunnel type"
        );
        assert_eq!(fail(&tun(&["-i", "--tun-port", "0"])), "illegal tunnel port specified");
        assert_eq!(
            fail(&tun(&["-i", "--tun-type", "gue", "--tun-csum", "--tun-remcsum"])),
            "You need to supply the 'tun-port' option for the 'gue' tunnel type",
            "tunnel_opt_check's first column comes first"
        );
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "--tun-type", "ipip"]),
            "Illegal 'tun-type' option with the 'add-service' command"
        );
        // --tun-info is a listing option (ipvsadm 1.31's commands_v_options).
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "--tun-info"]),
            "Illegal 'tun-info' option with the 'add-server' command"
        );
    }

    /// ipvsadm 1.31's `tunnel_opt_check` over `tunnel_types_v_options`
    /// (ipip: x x x x; gue: + 1 1 1; gre: x 1 1 x, in the columns tun-port,
    /// tun-nocsum, tun-csum, tun-remcsum) and what each accepted line sets,
    /// as its `parse_options` fills `tun_type`, `tun_port`, `tun_flags`.
    #[test]
    fn tunnel_types_and_options_as_ipvsadm_1_31() {
        let a = ["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2:8080", "-i", "-w", "2"];
        let tun = |extra: &[&str]| -> Vec<String> { a.iter().chain(extra).map(|s| s.to_string()).collect() };
        let ok = |extra: &[&str]| {
            let args = tun(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match req(&args) {
                Request::AddDest { dest, .. } => {
                    assert_eq!(
                        (dest.port, dest.mode),
                        (80, ForwardMode::Tunnel),
                        "-i takes the service's port"
                    );
                    dest.tunnel
                }
                other => panic!("{other:?}"),
            }
        };
        let no = |extra: &[&str]| {
            let args = tun(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            fail(&args)
        };
        use TunnelCsum::*;
        assert_eq!(ok(&[]), TunnelEncap::Ipip);
        assert_eq!(
            ok(&["--tun-type", "gue", "--tun-port", "6080"]),
            TunnelEncap::Gue { port: 6080, csum: NoCsum }
        );
        assert_eq!(
            ok(&["--tun-type", "gue", "--tun-port", "65535", "--tun-nocsum"]),
            TunnelEncap::Gue { port: 65535, csum: NoCsum }
        );
        assert_eq!(
            ok(&["--tun-csum", "--tun-port", "1", "--tun-type", "gue"]),
            TunnelEncap::Gue { port: 1, csum: Csum },
            "in any order"
        );
        assert_eq!(
            ok(&["--tun-type", "gue", "--tun-port", "6080", "--tun-remcsum"]),
            TunnelEncap::Gue { port: 6080, csum: RemCsum }
        );
        assert_eq!(ok(&["--tun-type", "gre"]), TunnelEncap::Gre { csum: NoCsum });
        assert_eq!(ok(&["--tun-type", "gre", "--tun-nocsum"]), TunnelEncap::Gre { csum: NoCsum });
        assert_eq!(ok(&["--tun-type", "gre", "--tun-csum"]), TunnelEncap::Gre { csum: Csum });
        let refused = [
            (
                &["--tun-type", "gue"][..],
                "You need to supply the 'tun-port' option for the 'gue' tunnel type",
            ),
            (
                &["--tun-type", "gue", "--tun-port", "6080", "--tun-nocsum", "--tun-csum"],
                "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type",
            ),
            (
                &["--tun-type", "gue", "--tun-port", "6080", "--tun-remcsum", "--tun-csum"],
                "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
            ),
            (
                &["--tun-type", "gre", "--tun-port", "6080"],
                "Illegal 'tun-port' option with the 'gre' tunnel type",
            ),
            (
                &["--tun-type", "gre", "--tun-remcsum"],
                "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
            ),
            (
                &["--tun-type", "gre", "--tun-csum", "--tun-remcsum"],
                "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
            ),
            (
                &["--tun-type", "gre", "--tun-nocsum", "--tun-csum"],
                "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type",
            ),
            (&["--tun-type", "ipip", "--tun-csum"], "Illegal 'tun-csum' option with the 'ipip' tunnel type"),
            (&["--tun-type", "GUE"], "illegal tunnel type specified"),
            (&["--tun-type", "gue", "--tun-port", "65536"], "illegal tunnel port specified"),
            (&["--tun-type", "gue", "--tun-port", "x"], "illegal tunnel port specified"),
        ];
        for (extra, want) in refused {
            assert_eq!(no(extra), want, "{extra:?}");
        }
        // The values are read as the options are (parse_options), before
        // the command's option table is consulted.
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "--tun-type", "vxlan"]),
            "illegal tunnel type specified"
        );
        assert_eq!(fail(&["-L", "--tun-port", "0"]), "illegal tunnel port specified");
        // Without -i, any tunnel option is refused, also gue's.
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-g", "--tun-type", "gre"]),
            "Tunnel options conflict with forward method"
        );
        // -e sets the type anew (ipvsadm sends ipip when none is given).
        match req(&[
            "-e",
            "-t",
            "198.18.0.100:80",
            "-r",
            "198.18.1.2",
            "-i",
            "--tun-type",
            "gre",
            "--tun-csum",
        ]) {
            Request::EditDest { dest, .. } => assert_eq!(dest.tunnel, TunnelEncap::Gre { csum: Csum }),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_argument_lists_the_table() {
        assert_eq!(req(&[]), Request::List { service: None });
        assert_eq!(req(&["--socket", "/tmp/x.sock"]), Request::List { service: None });
    }

    #[test]
    fn missing_command_asks_to_try_help() {
        assert_eq!(run(&["-n"]), Err(Failure::TryHelp));
        assert_eq!(run(&["-t", "198.18.0.100:80"]), Err(Failure::TryHelp));
    }

    #[test]
    fn bad_values_give_ipvsadms_messages() {
        assert_eq!(fail(&["-A", "-t", "198.18.0.300:80"]), "illegal virtual server address[:port] specified");
        assert_eq!(fail(&["-A", "-t", "80"]), "illegal virtual server address[:port] specified");
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:65536"]),
            "illegal virtual server address[:port] specified"
        );
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:nosuch"]),
            "illegal virtual server address[:port] specified"
        );
        assert_eq!(fail(&["-A", "-t", "198.18.0.100:"]), "illegal virtual server address[:port] specified");
        assert_eq!(fail(&["-A", "-t", "vip.example:80"]), "illegal virtual server address[:port] specified");
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "x"]),
            "illegal real server address[:port] specified"
        );
        for w in ["-1", "65536", "ten", ""] {
            assert_eq!(
                fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-w", w]),
                "illegal weight specified"
            );
        }
        assert_eq!(fail(&["--add-laddr", "-z", "nope", "-t", "198.18.0.100:80"]), "illegal local address");
        assert_eq!(fail(&["-A", "-t", "198.18.0.100"]), "Zero port specified for non-persistent service");
        assert_eq!(fail(&["-E", "-t", "198.18.0.100:0"]), "Zero port specified for non-persistent service");
    }

    #[test]
    fn bad_combinations_give_ipvsadms_messages() {
        // ipvsadm's option loop refuses a second command as an invalid
        // option; the caller names the word (`cli::invalid_option`).
        for args in [&["-A", "-a", "-t", "198.18.0.100:80"][..], &["-L", "-L"], &["-S", "-R"], &["-lZ"]] {
            assert_eq!(run(args), Err(Failure::InvalidOption), "{args:?}");
        }
        for args in [&["-L", "-h"][..], &["-L", "--version"], &["-Ln", "-v"]] {
            assert_eq!(run(args), Err(Failure::InvalidOption), "{args:?}");
        }
        assert_eq!(Failure::InvalidOption.exit_code(), 2);
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-u", "198.18.0.100:80"]),
            "multiple 'service-address' options specified"
        );
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-b", "-m"]),
            "multiple 'forwarding-method' options specified"
        );
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-w", "1", "-w", "2"]),
            "multiple 'weight' options specified"
        );
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-p", "-p", "5"]),
            "multiple 'persistent' options specified"
        );
        assert_eq!(
            fail(&["-A", "-s", "rr"]),
            "You need to supply the 'service-address' option for the 'add-service' command"
        );
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80"]),
            "You need to supply the 'real-server' option for the 'add-server' command"
        );
        assert_eq!(
            fail(&["--add-laddr", "-t", "198.18.0.100:80"]),
            "You need to supply the 'local-address' option for the 'add-laddr' command"
        );
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "-w", "2"]),
            "Illegal 'weight' option with the 'add-service' command"
        );
        assert_eq!(
            fail(&["-d", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-b"]),
            "Illegal 'forwarding-method' option with the 'delete-server' command"
        );
        assert_eq!(
            fail(&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-p"]),
            "Illegal 'persistent' option with the 'add-server' command"
        );
        assert_eq!(
            fail(&["-D", "-t", "198.18.0.100:80", "-M", "/24"]),
            "Illegal 'netmask' option with the 'delete-service' command"
        );
        assert_eq!(fail(&["-C", "-n"]), "Illegal 'numeric' option with the 'flush' command");
        assert_eq!(fail(&["-L", "-o"]), "Illegal 'ops' option with the 'list' command");
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "--json"]),
            "Illegal 'json' option with the 'add-service' command"
        );
        assert_eq!(fail(&["-L", "extra"]), "unexpected argument extra");
    }
}

//! Step two: raw arguments to one validated [`Invocation`].
//!
//! This follows ipvsadm 1.31's `process_options`, with its messages and exit
//! statuses, and never contacts gatewayd:
//! 1. exactly one command (none: "Try ... --help", 255; several: "multiple
//!    commands specified");
//! 2. no option class given twice ("multiple 'weight' options specified"; -t and
//!    -u are one class, as are -b/-m/-g/-i);
//! 3. values: addresses, ports, weight ("illegal weight specified", ...);
//! 4. no stray words ("unexpected argument X");
//! 5. ipvsadm's command/option table ("You need to supply the 'real-server'
//!    option for the 'add-server' command", "Illegal 'weight' option with ...");
//! 6. per-command rules: zero port, scheduler name.
//!
//! ipvsadm reports value errors in argv order, which clap does not keep; gwctl
//! reports them in the order above. Only which of several errors is shown can differ.
//!
//! Defaults are ipvsadm's: weight 1, forwarding by gatewaying (Route), real-server
//! port = service port. As in ipvsadm, Route and Tunnel force the real-server port
//! to the service port (neither can rewrite ports); -e resets an omitted -w or
//! forwarding method to these defaults, since it sends a whole destination.

use std::net::Ipv4Addr;

use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceKey, ServiceSpec};

use crate::cli::Cli;
use crate::error::Failure;
use crate::services::PortNames;

/// Scheduler for -A/-E without -s. ipvsadm's default, wlc, is not in gatewayd yet.
pub const DEFAULT_SCHEDULER: Scheduler = Scheduler::Wrr;
/// Real-server weight without -w (ipvsadm's).
pub const DEFAULT_WEIGHT: u32 = 1;
/// Forwarding method without -b/-m/-g/-i (ipvsadm's: direct routing).
pub const DEFAULT_FORWARD: ForwardMode = ForwardMode::Route;

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
    Zero,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Counters,
}

impl Command {
    /// The name in ipvsadm's `cmdnames[]` (`-C` is "flush" there).
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
            Command::Zero => "zero",
            Command::AddLaddr => "add-laddr",
            Command::DelLaddr => "del-laddr",
            Command::GetLaddr => "get-laddr",
            Command::Counters => "counters",
        }
    }

    /// True for commands that only read; their failures exit 1, not 255.
    pub fn is_query(self) -> bool {
        matches!(self, Command::List | Command::GetLaddr | Command::Counters)
    }
}

/// An option class, in the order of ipvsadm's `optnames[]`: the first problem in
/// this order is the one reported, as in ipvsadm's `generic_opt_check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    Numeric,
    Service,
    Sched,
    RealServer,
    Forward,
    Weight,
    Stats,
    Exact,
    Laddr,
    Json,
}

const OPTS: [Opt; 10] = [
    Opt::Numeric,
    Opt::Service,
    Opt::Sched,
    Opt::RealServer,
    Opt::Forward,
    Opt::Weight,
    Opt::Stats,
    Opt::Exact,
    Opt::Laddr,
    Opt::Json,
];

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Numeric => "numeric",
            Opt::Service => "service-address",
            Opt::Sched => "scheduler",
            Opt::RealServer => "real-server",
            Opt::Forward => "forwarding-method",
            Opt::Weight => "weight",
            Opt::Stats => "stats",
            Opt::Exact => "exact",
            Opt::Laddr => "local-address",
            Opt::Json => "json",
        }
    }

    fn count(self, c: &Cli) -> usize {
        match self {
            Opt::Numeric => c.numeric.into(),
            Opt::Service => c.tcp_service.len() + c.udp_service.len(),
            Opt::Sched => c.scheduler.len(),
            Opt::RealServer => c.real_server.len(),
            Opt::Forward => {
                usize::from(c.fullnat)
                    + usize::from(c.masquerading)
                    + usize::from(c.gatewaying)
                    + usize::from(c.ipip)
            }
            Opt::Weight => c.weight.len(),
            Opt::Stats => c.stats.into(),
            Opt::Exact => c.exact.into(),
            Opt::Laddr => c.laddr.len(),
            Opt::Json => c.json.into(),
        }
    }
}

#[derive(PartialEq, Eq)]
enum Rule {
    Required,
    Optional,
    Illegal,
}

/// ipvsadm's `commands_v_options` table (DPVS's rows for the laddr commands),
/// cut to the options gwctl has; `json` is gwctl's own.
fn rule(cmd: Command, opt: Opt) -> Rule {
    use Command::*;
    match (cmd, opt) {
        (AddService | EditService, Opt::Service) => Rule::Required,
        (AddService | EditService, Opt::Sched) => Rule::Optional,
        (DelService, Opt::Service) => Rule::Required,
        (AddServer | EditServer | DelServer, Opt::Service | Opt::RealServer) => Rule::Required,
        (AddServer | EditServer, Opt::Forward | Opt::Weight) => Rule::Optional,
        (List, Opt::Numeric | Opt::Service | Opt::Stats | Opt::Exact | Opt::Json) => Rule::Optional,
        (Zero, Opt::Service) => Rule::Optional,
        (AddLaddr | DelLaddr, Opt::Service | Opt::Laddr) => Rule::Required,
        (GetLaddr, Opt::Service | Opt::Json) => Rule::Optional,
        (Counters, Opt::Json) => Rule::Optional,
        _ => Rule::Illegal,
    }
}

/// How gatewayd's answer is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// A change: gatewayd answers `Ok` and nothing is printed.
    Done,
    /// `-L`: ipvsadm's table; `stats` for `--stats`, `exact` for `--exact`.
    List { stats: bool, exact: bool },
    /// `--get-laddr`: DPVS's local-address table.
    Laddrs,
    /// `--counters`: one row per counter, one column per worker and a total.
    Counters,
}

/// A validated command line: what to send and how to show the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    pub request: Request,
    pub view: View,
    /// `--json`: print the response as JSON instead of a table.
    pub json: bool,
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
            view: View::List { stats: false, exact: false },
            json: false,
        });
    }
    let cmd = command(cli)?;
    for opt in OPTS {
        if opt.count(cli) > 1 {
            return Err(usage(format!("multiple '{}' options specified", opt.name())));
        }
    }

    let service = service(cli, names)?;
    let proto = service.map_or(Protocol::Tcp, |k| k.proto);
    let real = match cli.real_server.first() {
        Some(s) => Some(
            addr_port(s, proto, names)
                .ok_or_else(|| usage("illegal real server address[:port] specified"))?,
        ),
        None => None,
    };
    let weight = match cli.weight.first() {
        Some(w) => number(w, 0, 65535).ok_or_else(|| usage("illegal weight specified"))?,
        None => DEFAULT_WEIGHT,
    };
    let laddr = match cli.laddr.first() {
        Some(s) => Some(s.parse::<Ipv4Addr>().map_err(|_| usage("illegal local address"))?),
        None => None,
    };
    if let Some(word) = cli.extra.first() {
        return Err(usage(format!("unexpected argument {word}")));
    }

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
            _ => {}
        }
    }

    // From here on the table guarantees what each command needs.
    let key = || service.expect("service-address is required for this command");
    let mode = forward(cli);
    let request = match cmd {
        Command::AddService | Command::EditService => {
            let key = key();
            if key.port == 0 {
                // gatewayd has no persistent services, so a zero port is never valid.
                return Err(usage("Zero port specified for non-persistent service"));
            }
            let scheduler = match cli.scheduler.first() {
                Some(s) => s.parse::<Scheduler>().map_err(usage)?,
                None => DEFAULT_SCHEDULER,
            };
            let spec = ServiceSpec::new(key, scheduler);
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
            let (addr, port) = real.expect("real-server is required for this command");
            let port = match mode {
                // Neither can change the destination port: ipvsadm forces the service's.
                ForwardMode::Route | ForwardMode::Tunnel => service.port,
                ForwardMode::FullNat | ForwardMode::Masq => port.unwrap_or(service.port),
            };
            let dest = DestSpec::new(addr, port, mode, weight);
            if cmd == Command::AddServer {
                Request::AddDest { service, dest }
            } else {
                Request::EditDest { service, dest }
            }
        }
        Command::DelServer => {
            let service = key();
            let (addr, port) = real.expect("real-server is required for this command");
            Request::DelDest { service, addr, port: port.unwrap_or(service.port) }
        }
        Command::List => Request::List { service },
        Command::Zero => Request::Zero { service },
        Command::AddLaddr | Command::DelLaddr => {
            let service = key();
            let addr = laddr.expect("local-address is required for this command");
            if cmd == Command::AddLaddr {
                Request::AddLaddr { service, addr }
            } else {
                Request::DelLaddr { service, addr }
            }
        }
        Command::GetLaddr => Request::GetLaddr { service },
        Command::Counters => Request::Counters,
    };
    let view = match cmd {
        Command::List => View::List { stats: cli.stats > 0, exact: cli.exact > 0 },
        Command::GetLaddr => View::Laddrs,
        Command::Counters => View::Counters,
        _ => View::Done,
    };
    Ok(Invocation { command: cmd, request, view, json: cli.json > 0 })
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
        _ => Err(usage("multiple commands specified")),
    }
}

/// The -t/-u service, if given (at most one, checked before).
fn service(cli: &Cli, names: &PortNames) -> Result<Option<ServiceKey>, Failure> {
    let (text, proto) = match (cli.tcp_service.first(), cli.udp_service.first()) {
        (Some(t), _) => (t, Protocol::Tcp),
        (None, Some(u)) => (u, Protocol::Udp),
        (None, None) => return Ok(None),
    };
    let (addr, port) = addr_port(text, proto, names)
        .ok_or_else(|| usage("illegal virtual server address[:port] specified"))?;
    Ok(Some(ServiceKey { proto, addr, port: port.unwrap_or(0) }))
}

/// The forwarding method flag given, or the default.
fn forward(cli: &Cli) -> ForwardMode {
    if cli.fullnat > 0 {
        ForwardMode::FullNat
    } else if cli.masquerading > 0 {
        ForwardMode::Masq
    } else if cli.ipip > 0 {
        ForwardMode::Tunnel
    } else {
        DEFAULT_FORWARD
    }
}

/// ipvsadm's `parse_service` for IPv4: `ADDR[:PORT]`, the port a number from 0 to
/// 65535 or a service name of `proto`. The address must be a dotted quad (ipvsadm
/// would also resolve host names and accept `inet_aton`'s short forms).
pub fn addr_port(s: &str, proto: Protocol, names: &PortNames) -> Option<(Ipv4Addr, Option<u16>)> {
    let (addr, port) = match s.rsplit_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr = addr.parse::<Ipv4Addr>().ok()?;
    let port = match port {
        None => None,
        Some(p) => Some(match number(p, 0, 65535) {
            Some(n) => u16::try_from(n).ok()?,
            None => names.lookup(p, proto)?,
        }),
    };
    Some((addr, port))
}

/// ipvsadm's `string_to_number`: a decimal integer within `min..=max`.
fn number(s: &str, min: i64, max: i64) -> Option<u32> {
    let n = s.parse::<i64>().ok()?;
    if (min..=max).contains(&n) {
        u32::try_from(n).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

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
        ServiceKey { proto: Protocol::Tcp, addr: VIP, port }
    }

    fn dest(port: u16, mode: ForwardMode, weight: u32) -> DestSpec {
        DestSpec::new(RIP, port, mode, weight)
    }

    #[test]
    fn add_and_edit_service() {
        assert_eq!(
            req(&["-A", "-t", "198.18.0.100:80", "-s", "rr"]),
            Request::AddService { spec: ServiceSpec::new(tcp(80), Scheduler::Rr) }
        );
        assert_eq!(
            req(&["--add-service", "--udp-service", "198.18.0.100:53"]),
            Request::AddService {
                spec: ServiceSpec::new(
                    ServiceKey { proto: Protocol::Udp, addr: VIP, port: 53 },
                    DEFAULT_SCHEDULER
                )
            }
        );
        assert_eq!(
            req(&["-E", "-t", "198.18.0.100:http", "-s", "wrr"]),
            Request::EditService { spec: ServiceSpec::new(tcp(80), Scheduler::Wrr) }
        );
        // Clustered short options, as in `ipvsadm -At VIP:80`.
        assert_eq!(
            req(&["-At", "198.18.0.100:80"]),
            Request::AddService { spec: ServiceSpec::new(tcp(80), Scheduler::Wrr) }
        );
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
            Request::DelDest { service: tcp(80), addr: RIP, port: 8080 }
        );
        assert_eq!(
            req(&["-d", "-t", "198.18.0.100:80", "-r", "198.18.1.2"]),
            Request::DelDest { service: tcp(80), addr: RIP, port: 80 }
        );
    }

    #[test]
    fn laddr_commands() {
        let lip = Ipv4Addr::new(198, 18, 2, 1);
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
        assert_eq!(i.view, View::List { stats: false, exact: false });
        let i = run(&["-l", "-n", "--stats", "--exact", "-t", "198.18.0.100:80"]).unwrap();
        assert_eq!(i.request, Request::List { service: Some(tcp(80)) });
        assert_eq!(i.view, View::List { stats: true, exact: true });
        assert!(run(&["-L", "--json"]).unwrap().json);
        assert_eq!(req(&["-Z"]), Request::Zero { service: None });
        assert_eq!(req(&["-Z", "-t", "198.18.0.100:80"]), Request::Zero { service: Some(tcp(80)) });
        let i = run(&["--counters", "--json"]).unwrap();
        assert_eq!((i.request, i.view, i.json), (Request::Counters, View::Counters, true));
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
        assert_eq!(fail(&["-A", "-t", "198.18.0.100:80", "-s", "xyz"]), "Scheduler not found: xyz");
        assert_eq!(fail(&["--add-laddr", "-z", "nope", "-t", "198.18.0.100:80"]), "illegal local address");
        assert_eq!(fail(&["-A", "-t", "198.18.0.100"]), "Zero port specified for non-persistent service");
        assert_eq!(fail(&["-E", "-t", "198.18.0.100:0"]), "Zero port specified for non-persistent service");
    }

    #[test]
    fn bad_combinations_give_ipvsadms_messages() {
        assert_eq!(fail(&["-A", "-a", "-t", "198.18.0.100:80"]), "multiple commands specified");
        assert_eq!(fail(&["-L", "-L"]), "multiple commands specified");
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
        assert_eq!(fail(&["-C", "-n"]), "Illegal 'numeric' option with the 'flush' command");
        assert_eq!(
            fail(&["-A", "-t", "198.18.0.100:80", "--json"]),
            "Illegal 'json' option with the 'add-service' command"
        );
        assert_eq!(fail(&["-L", "extra"]), "unexpected argument extra");
    }

    #[test]
    fn address_parsing() {
        let n = PortNames::builtin();
        assert_eq!(addr_port("1.2.3.4", Protocol::Tcp, &n), Some((Ipv4Addr::new(1, 2, 3, 4), None)));
        assert_eq!(addr_port("1.2.3.4:0", Protocol::Tcp, &n), Some((Ipv4Addr::new(1, 2, 3, 4), Some(0))));
        assert_eq!(addr_port("1.2.3.4:+80", Protocol::Tcp, &n), Some((Ipv4Addr::new(1, 2, 3, 4), Some(80))));
        assert_eq!(
            addr_port("1.2.3.4:domain", Protocol::Udp, &n),
            Some((Ipv4Addr::new(1, 2, 3, 4), Some(53)))
        );
        assert_eq!(addr_port("1.2.3.4:http", Protocol::Udp, &n), None);
        assert_eq!(addr_port("[::1]:80", Protocol::Tcp, &n), None);
        assert_eq!(addr_port("", Protocol::Tcp, &n), None);
    }
}

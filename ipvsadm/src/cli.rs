//! Step one of two: the command line exactly as typed.
//!
//! Commands are flags, as in ipvsadm (`gwctl -A -t VIP:port -s wrr`), not
//! subcommands. Nothing here checks values or combinations: commands are
//! counted, options are collected with their repeats, and positional words are
//! kept, so that [`crate::resolve`] can report every problem with ipvsadm's own
//! message and exit code. clap itself rejects only an option it does not know
//! or a missing value (popt errors in ipvsadm, exit 255).
//!
//! An option with a required value takes the next word whatever it is, as popt
//! does (`allow_hyphen_values`): `-r -w 2` is the real server `-w`, which
//! `resolve` refuses with ipvsadm's "illegal real server address[:port]
//! specified", and the value is missing only when the option is the last word.
//!
//! Two options take an optional value, as popt's `POPT_ARGFLAG_OPTIONAL` does in
//! ipvsadm: `-p [timeout]`, and `-b`, which is DPVS's FULLNAT flag on its own and
//! ipvsadm's `--sched-flags` when a word follows. The next word is their value
//! unless it starts with `-`. A bare occurrence is recorded as [`BARE`].
//!
//! ipvsadm options that gatewayd has no use for (fwmark services, the sync
//! daemon, persistence engines, SCTP, IPv6, GUE/GRE tunnels) are known here, hidden
//! from the help, so that `resolve` can say clearly that they are not supported
//! instead of clap's "unexpected argument".

use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, Parser};

/// Where gatewayd listens unless `--socket` or `GWCTL_SOCKET` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/gatewayd.sock";

/// The value recorded for `-p` or `-b` given without a value. A NUL cannot
/// occur in an argument, and rules files with one are refused.
pub const BARE: &str = "\0";

const COMMANDS: &str = "Commands";
const SERVICE: &str = "Virtual service";
const OPTIONS: &str = "Options";
const LISTING: &str = "Listing options";

/// The raw arguments. Every command and flag is a count and every valued option
/// a list, so a repeat reaches `resolve` instead of being refused by clap.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "gwctl",
    version,
    disable_version_flag = true,
    disable_help_flag = true,
    about = "Administer gatewayd's virtual services, with ipvsadm's commands and output.",
    after_help = "gwctl -h prints ipvsadm 1.31's usage; see docs/gwctl.md."
)]
pub struct Cli {
    /// Add a virtual service.
    #[arg(short = 'A', long = "add-service", action = ArgAction::Count, help_heading = COMMANDS)]
    pub add_service: u8,
    /// Edit a virtual service (options not given return to their defaults).
    #[arg(short = 'E', long = "edit-service", action = ArgAction::Count, help_heading = COMMANDS)]
    pub edit_service: u8,
    /// Delete a virtual service and its real servers.
    #[arg(short = 'D', long = "delete-service", action = ArgAction::Count, help_heading = COMMANDS)]
    pub delete_service: u8,
    /// Clear the whole table.
    #[arg(short = 'C', long = "clear", action = ArgAction::Count, help_heading = COMMANDS)]
    pub clear: u8,
    /// Restore rules from stdin, in one change.
    #[arg(short = 'R', long = "restore", action = ArgAction::Count, help_heading = COMMANDS)]
    pub restore: u8,
    /// Save rules to stdout, in the form -R reads.
    #[arg(short = 'S', long = "save", action = ArgAction::Count, help_heading = COMMANDS)]
    pub save: u8,
    /// Add a real server to a virtual service.
    #[arg(short = 'a', long = "add-server", action = ArgAction::Count, help_heading = COMMANDS)]
    pub add_server: u8,
    /// Edit a real server (options not given return to their defaults).
    #[arg(short = 'e', long = "edit-server", action = ArgAction::Count, help_heading = COMMANDS)]
    pub edit_server: u8,
    /// Delete a real server.
    #[arg(short = 'd', long = "delete-server", action = ArgAction::Count, help_heading = COMMANDS)]
    pub delete_server: u8,
    /// List the table, or one virtual service.
    #[arg(
        short = 'L',
        short_alias = 'l',
        long = "list",
        action = ArgAction::Count,
        help_heading = COMMANDS
    )]
    pub list: u8,
    /// Zero the counters of one virtual service or of all.
    #[arg(short = 'Z', long = "zero", action = ArgAction::Count, help_heading = COMMANDS)]
    pub zero: u8,
    /// Set the tcp, tcpfin and udp timeouts in seconds (0 keeps a value).
    #[arg(long = "set", action = ArgAction::Count, help_heading = COMMANDS)]
    pub set: u8,
    /// Add a local (SNAT) address to a FULLNAT virtual service (DPVS).
    #[arg(short = 'P', long = "add-laddr", action = ArgAction::Count, help_heading = COMMANDS)]
    pub add_laddr: u8,
    /// Delete a local address from a virtual service (DPVS).
    #[arg(short = 'Q', long = "del-laddr", action = ArgAction::Count, help_heading = COMMANDS)]
    pub del_laddr: u8,
    /// List the local addresses of one virtual service or of all (DPVS).
    #[arg(short = 'G', long = "get-laddr", action = ArgAction::Count, help_heading = COMMANDS)]
    pub get_laddr: u8,
    /// Print per-worker counters (packets, drops by reason) with a total column.
    #[arg(long = "counters", action = ArgAction::Count, help_heading = COMMANDS)]
    pub counters: u8,

    /// TCP virtual service.
    #[arg(
        short = 't',
        long = "tcp-service",
        value_name = "VIP:PORT",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = SERVICE
    )]
    pub tcp_service: Vec<String>,
    /// UDP virtual service.
    #[arg(
        short = 'u',
        long = "udp-service",
        value_name = "VIP:PORT",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = SERVICE
    )]
    pub udp_service: Vec<String>,

    /// Scheduler: rr wrr lc wlc sed nq dh sh lblc lblcr mh fo ovf (default wlc).
    #[arg(
        short = 's',
        long = "scheduler",
        value_name = "SCHEDULER",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = OPTIONS
    )]
    pub scheduler: Vec<String>,
    /// Persistent service; the timeout defaults to 360 seconds.
    #[arg(
        short = 'p',
        long = "persistent",
        value_name = "TIMEOUT",
        num_args = 0..=1,
        default_missing_value = BARE,
        action = ArgAction::Append,
        help_heading = OPTIONS
    )]
    pub persistent: Vec<String>,
    /// Persistence granularity mask: dotted quad, or /prefix.
    #[arg(
        short = 'M',
        long = "netmask",
        value_name = "NETMASK",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = OPTIONS
    )]
    pub netmask: Vec<String>,
    /// One-packet scheduling (UDP services).
    #[arg(short = 'o', long = "ops", action = ArgAction::Count, help_heading = OPTIONS)]
    pub ops: u8,
    /// TCP FULLNAT: hand the client's address to the real server in a PROXY
    /// protocol header (disable, v1, v2), as DPVS's ipvsadm.
    #[arg(
        long = "proxy-protocol",
        value_name = "VERSION",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = OPTIONS
    )]
    pub proxy_protocol: Vec<String>,
    /// TCP FULLNAT/NAT: answer the client's SYN with a SYN cookie and open
    /// the connection to the real server only after its valid ACK
    /// (enable, disable), as DPVS's ipvsadm.
    #[arg(
        short = 'j',
        long = "synproxy",
        value_name = "enable|disable",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = OPTIONS
    )]
    pub synproxy: Vec<String>,
    /// TCP FULLNAT: hand the client's address to the real server in a TOA
    /// option (kind 254) on the handshake (gwctl's).
    #[arg(long = "toa", action = ArgAction::Count, help_heading = OPTIONS)]
    pub toa: u8,
    /// With -a/-e alone: FULLNAT forwarding (DPVS). With -A/-E and a value:
    /// scheduler flags, comma-separated (flag-1, flag-2, flag-3, sh-fallback,
    /// sh-port, mh-fallback, mh-port).
    #[arg(
        short = 'b',
        long = "sched-flags",
        value_name = "FLAGS",
        num_args = 0..=1,
        default_missing_value = BARE,
        action = ArgAction::Append,
        help_heading = OPTIONS
    )]
    pub b: Vec<String>,
    /// Real server; the port defaults to the service's.
    #[arg(
        short = 'r',
        long = "real-server",
        value_name = "RIP[:PORT]",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = OPTIONS
    )]
    pub real_server: Vec<String>,
    /// Forward by full NAT: SNAT to a local address, DNAT to the real server (as -b).
    #[arg(long = "fullnat", action = ArgAction::Count, help_heading = OPTIONS)]
    pub fullnat: u8,
    /// Forward by masquerading (NAT).
    #[arg(short = 'm', long = "masquerading", action = ArgAction::Count, help_heading = OPTIONS)]
    pub masquerading: u8,
    /// Forward by gatewaying, i.e. direct routing (default).
    #[arg(short = 'g', long = "gatewaying", action = ArgAction::Count, help_heading = OPTIONS)]
    pub gatewaying: u8,
    /// Forward by IP-in-IP encapsulation (tunnelling).
    #[arg(short = 'i', long = "ipip", action = ArgAction::Count, help_heading = OPTIONS)]
    pub ipip: u8,
    /// Weight of the real server, 0 to 65535 (default 1).
    #[arg(
        short = 'w',
        long = "weight",
        value_name = "WEIGHT",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = OPTIONS
    )]
    pub weight: Vec<String>,
    /// Upper connection threshold of the real server (0 = none).
    #[arg(
        short = 'x',
        long = "u-threshold",
        value_name = "UTHRESHOLD",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = OPTIONS
    )]
    pub u_threshold: Vec<String>,
    /// Lower connection threshold of the real server (0 = none).
    #[arg(
        short = 'y',
        long = "l-threshold",
        value_name = "LTHRESHOLD",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = OPTIONS
    )]
    pub l_threshold: Vec<String>,
    /// Local address for --add-laddr/--del-laddr.
    #[arg(
        short = 'z',
        long = "laddr",
        value_name = "LIP",
        action = ArgAction::Append,
        allow_hyphen_values = true,
        help_heading = OPTIONS
    )]
    pub laddr: Vec<String>,

    /// Numeric output of addresses and ports (without it, names as ipvsadm shows them).
    #[arg(short = 'n', long = "numeric", action = ArgAction::Count, help_heading = LISTING)]
    pub numeric: u8,
    /// With -L: the connections (with -t or -u: of that service only).
    #[arg(short = 'c', long = "connection", action = ArgAction::Count, help_heading = LISTING)]
    pub connection: u8,
    /// With -L: the tcp, tcpfin and udp timeouts.
    #[arg(long = "timeout", action = ArgAction::Count, help_heading = LISTING)]
    pub timeout: u8,
    /// With -L: traffic statistics.
    #[arg(long = "stats", action = ArgAction::Count, help_heading = LISTING)]
    pub stats: u8,
    /// With -L: rates (connections, packets and bytes per second).
    #[arg(long = "rate", action = ArgAction::Count, help_heading = LISTING)]
    pub rate: u8,
    /// With -L: the real servers' connection thresholds.
    #[arg(long = "thresholds", action = ArgAction::Count, help_heading = LISTING)]
    pub thresholds: u8,
    /// With -L: persistence templates per real server.
    #[arg(long = "persistent-conn", action = ArgAction::Count, help_heading = LISTING)]
    pub persistent_conn: u8,
    /// With -L: each real server's tunnel type.
    #[arg(long = "tun-info", action = ArgAction::Count, help_heading = LISTING)]
    pub tun_info: u8,
    /// With -L: sort services and real servers (the default; accepted for compatibility).
    #[arg(long = "sort", action = ArgAction::Count, help_heading = LISTING)]
    pub sort: u8,
    /// With -L: keep gatewayd's order.
    #[arg(long = "nosort", action = ArgAction::Count, help_heading = LISTING)]
    pub nosort: u8,
    /// With --stats or --rate: exact numbers instead of K/M/G/T.
    #[arg(short = 'X', long = "exact", action = ArgAction::Count, help_heading = LISTING)]
    pub exact: u8,
    /// With -L, --get-laddr or --counters: print gatewayd's answer as JSON.
    #[arg(long = "json", action = ArgAction::Count, help_heading = LISTING)]
    pub json: u8,
    /// With -L: a health column after each real server (keepalived checks: UP,
    /// DOWN, - when unchecked) and the checked servers taken out of the pool.
    #[arg(long = "health", action = ArgAction::Count, help_heading = LISTING)]
    pub health: u8,

    /// gatewayd's control socket.
    #[arg(
        long = "socket",
        value_name = "PATH",
        env = "GWCTL_SOCKET",
        default_value = DEFAULT_SOCKET,
        help_heading = OPTIONS
    )]
    pub socket: PathBuf,

    /// Print ipvsadm's usage (as the first option only; see [`crate::usage`]).
    #[arg(short = 'h', long = "help", action = ArgAction::Count, help_heading = OPTIONS)]
    pub help: u8,
    /// Print ipvsadm's version line (as the first option only).
    #[arg(short = 'v', long = "version", action = ArgAction::Count, help_heading = OPTIONS)]
    pub version: u8,

    /// ipvsadm options gatewayd does not support; `resolve` refuses them by name.
    #[command(flatten)]
    pub unsupported: Unsupported,

    /// Words that are not options: --set's three timeouts, or an error.
    #[arg(hide = true, allow_hyphen_values = false)]
    pub extra: Vec<String>,
}

/// ipvsadm 1.31 options that gatewayd honours only in part, or not at all,
/// kept hidden so that they get ipvsadm's checks or a clear refusal; and
/// the tunnel options (`--tun-type ipip|gue|gre`, `--tun-port`,
/// `--tun-*csum`), honoured, which `resolve` checks as ipvsadm does.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Unsupported {
    #[arg(
        short = 'f',
        long = "fwmark-service",
        hide = true,
        action = ArgAction::Append,
        allow_hyphen_values = true
    )]
    pub fwmark_service: Vec<String>,
    #[arg(long = "sctp-service", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub sctp_service: Vec<String>,
    #[arg(short = '6', long = "ipv6", hide = true, action = ArgAction::Count)]
    pub ipv6: u8,
    #[arg(long = "start-daemon", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub start_daemon: Vec<String>,
    #[arg(long = "stop-daemon", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub stop_daemon: Vec<String>,
    #[arg(long = "daemon", hide = true, action = ArgAction::Count)]
    pub daemon: u8,
    #[arg(long = "mcast-interface", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub mcast_interface: Vec<String>,
    #[arg(long = "syncid", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub syncid: Vec<String>,
    #[arg(long = "mcast-group", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub mcast_group: Vec<String>,
    #[arg(long = "mcast-port", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub mcast_port: Vec<String>,
    #[arg(long = "mcast-ttl", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub mcast_ttl: Vec<String>,
    #[arg(long = "sync-maxlen", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub sync_maxlen: Vec<String>,
    #[arg(long = "pe", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub pe: Vec<String>,
    #[arg(long = "tun-type", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub tun_type: Vec<String>,
    #[arg(long = "tun-port", hide = true, action = ArgAction::Append, allow_hyphen_values = true)]
    pub tun_port: Vec<String>,
    #[arg(long = "tun-nocsum", hide = true, action = ArgAction::Count)]
    pub tun_nocsum: u8,
    #[arg(long = "tun-csum", hide = true, action = ArgAction::Count)]
    pub tun_csum: u8,
    #[arg(long = "tun-remcsum", hide = true, action = ArgAction::Count)]
    pub tun_remcsum: u8,
}

impl Unsupported {
    /// Why the first unsupported option given cannot be used, if any was given.
    pub fn refusal(&self) -> Option<&'static str> {
        let given = |n: usize| n > 0;
        if given(self.fwmark_service.len()) {
            return Some(
                "fwmark services (-f, --fwmark-service) are not supported by gatewayd: \
                 use -t or -u VIP:port",
            );
        }
        if given(self.sctp_service.len()) {
            return Some("SCTP services (--sctp-service) are not supported by gatewayd");
        }
        let daemon = [
            self.start_daemon.len(),
            self.stop_daemon.len(),
            self.mcast_interface.len(),
            self.syncid.len(),
            self.mcast_group.len(),
            self.mcast_port.len(),
            self.mcast_ttl.len(),
            self.sync_maxlen.len(),
        ];
        if daemon.into_iter().any(given) {
            return Some(
                "the connection synchronisation daemon (--start-daemon, --stop-daemon, \
                 --mcast-*, --syncid, --sync-maxlen) is not supported by gatewayd",
            );
        }
        if given(self.pe.len()) {
            return Some("persistence engines (--pe) are not supported by gatewayd");
        }
        None
    }
}

impl Cli {
    /// Every word taken from the command line as an option value or positional,
    /// for [`crate::rules`] to put the real words in place of its markers.
    /// (A new valued field must be added here too; `rules` tests check.)
    pub fn words_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let u = &mut self.unsupported;
        [
            &mut self.tcp_service,
            &mut self.udp_service,
            &mut self.scheduler,
            &mut self.persistent,
            &mut self.netmask,
            &mut self.b,
            &mut self.real_server,
            &mut self.weight,
            &mut self.u_threshold,
            &mut self.l_threshold,
            &mut self.laddr,
            &mut self.proxy_protocol,
            &mut self.synproxy,
            &mut self.extra,
            &mut u.fwmark_service,
            &mut u.sctp_service,
            &mut u.start_daemon,
            &mut u.stop_daemon,
            &mut u.mcast_interface,
            &mut u.syncid,
            &mut u.mcast_group,
            &mut u.mcast_port,
            &mut u.mcast_ttl,
            &mut u.sync_maxlen,
            &mut u.pe,
            &mut u.tun_type,
            &mut u.tun_port,
        ]
        .into_iter()
        .flat_map(|v| v.iter_mut())
    }

    /// True when nothing but `--socket` was given: ipvsadm then lists the table.
    /// (A new field must be added here too; `bare_detection_covers_every_option` checks.)
    pub fn is_bare(&self) -> bool {
        let counts = [
            self.add_service,
            self.edit_service,
            self.delete_service,
            self.clear,
            self.restore,
            self.save,
            self.add_server,
            self.edit_server,
            self.delete_server,
            self.list,
            self.zero,
            self.set,
            self.add_laddr,
            self.del_laddr,
            self.get_laddr,
            self.counters,
            self.ops,
            self.toa,
            self.fullnat,
            self.masquerading,
            self.gatewaying,
            self.ipip,
            self.numeric,
            self.connection,
            self.timeout,
            self.stats,
            self.rate,
            self.thresholds,
            self.persistent_conn,
            self.tun_info,
            self.sort,
            self.nosort,
            self.exact,
            self.json,
            self.health,
            self.unsupported.daemon,
            self.unsupported.ipv6,
            self.help,
            self.version,
            self.unsupported.tun_nocsum,
            self.unsupported.tun_csum,
            self.unsupported.tun_remcsum,
        ];
        let lists = [
            &self.tcp_service,
            &self.udp_service,
            &self.scheduler,
            &self.persistent,
            &self.netmask,
            &self.b,
            &self.real_server,
            &self.weight,
            &self.u_threshold,
            &self.l_threshold,
            &self.laddr,
            &self.proxy_protocol,
            &self.synproxy,
            &self.extra,
            &self.unsupported.tun_type,
            &self.unsupported.tun_port,
        ];
        counts.iter().all(|&n| n == 0)
            && lists.iter().all(|l| l.is_empty())
            && self.unsupported.refusal().is_none()
    }
}

/// ipvsadm's complaint for an option clap refused, as popt words it
/// (`ipvsadm.c` process_options: `"%s: %s\n"`, `poptBadOption`,
/// `poptStrerror`): `WORD: unknown option` or `WORD: missing argument`.
/// `None` when the bad word is the first option: ipvsadm's first
/// `poptGetNextOpt` fails and it only prints "Try ..." (`tryhelp_exit`).
/// `words` are the arguments after the program name.
pub fn popt_message<S: AsRef<str>>(e: &clap::Error, words: &[S]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
    let (at, why) = match e.kind() {
        ErrorKind::UnknownArgument => {
            let bad = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(s)) => s.split(['=', ' ']).next().unwrap_or("").to_owned(),
                _ => String::new(),
            };
            let short = bad.strip_prefix('-').filter(|r| !r.starts_with('-') && r.len() == 1);
            let at = words.iter().position(|w| {
                *w == bad
                    || w.split('=').next() == Some(bad.as_str())
                    || short.is_some_and(|c| w.starts_with('-') && !w.starts_with("--") && w.contains(c))
            });
            (at, "unknown option")
        }
        // A value is missing: the option is the last word given.
        _ => (words.len().checked_sub(1), "missing argument"),
    };
    let at = at.unwrap_or(0);
    (at > 0).then(|| format!("{}: {why}", words[at]))
}

/// The word ipvsadm names in "invalid option `WORD'": the first that holds a
/// second command, or `-h`/`-v` other than as the first option, as typed
/// (`-Z`, `--list`, the whole cluster `-lZ`). ipvsadm reads a command only as
/// the first option; later, its option loop refuses the word that holds one
/// (`poptBadOption`). Values are skipped as clap takes them, so `-t -Z` holds
/// no command. `words` are the arguments after the program name.
pub fn invalid_option_word<S: AsRef<str>>(words: &[S]) -> Option<&str> {
    let mut cmd = Cli::command();
    cmd.build();
    let args: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| !a.is_positional()).collect();
    let by_short = |c: char| {
        args.iter()
            .copied()
            .find(|a| a.get_short() == Some(c) || a.get_all_short_aliases().is_some_and(|s| s.contains(&c)))
    };
    let by_long = |l: &str| args.iter().copied().find(|a| a.get_long() == Some(l));
    let mut commands = 0;
    // True when `arg` makes its word the one to name.
    let mut refused = |arg: &clap::Arg| match arg.get_id().as_str() {
        "help" | "version" => true,
        _ if arg.get_help_heading() == Some(COMMANDS) => {
            commands += 1;
            commands > 1
        }
        _ => false,
    };
    // None for a flag, else whether its value may be left out (`-p`, `-b`).
    let value = |arg: &clap::Arg| {
        arg.get_action().takes_values().then(|| arg.get_num_args().is_some_and(|n| n.min_values() == 0))
    };
    let mut rest = words.iter().map(AsRef::as_ref).peekable();
    while let Some(word) = rest.next() {
        // The option and whether its value is in the word itself.
        let mut options: Vec<(&clap::Arg, bool)> = Vec::new();
        if word == "--" {
            break;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = long.split_once('=').map_or((long, false), |(n, _)| (n, true));
            options.extend(by_long(name).map(|a| (a, inline)));
        } else if let Some(shorts) = word.strip_prefix('-') {
            for (i, c) in shorts.char_indices() {
                let Some(arg) = by_short(c) else { break };
                let inline = i + c.len_utf8() < shorts.len();
                options.push((arg, inline));
                if value(arg).is_some() {
                    break; // the rest of the cluster is its value
                }
            }
        }
        for (arg, inline) in options {
            if refused(arg) {
                return Some(word);
            }
            match value(arg) {
                Some(false) if !inline => drop(rest.next()),
                Some(true) if !inline => drop(rest.next_if(|w| !w.starts_with('-'))),
                _ => {}
            }
        }
    }
    None
}

/// ipvsadm's refusal of a second command or a late `-h`/`-v` (exit 2), for
/// [`crate::error::Failure::InvalidOption`], naming the word as typed.
pub fn invalid_option<S: AsRef<str>>(words: &[S]) -> crate::error::Failure {
    match invalid_option_word(words) {
        Some(word) => crate::error::Failure::Usage(format!("invalid option `{word}'")),
        None => crate::error::Failure::InvalidOption,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn popt(words: &[&str]) -> Option<String> {
        let argv = std::iter::once("gwctl").chain(words.iter().copied());
        let e = Cli::try_parse_from(argv).expect_err("clap refuses it");
        popt_message(&e, words)
    }

    #[test]
    fn clap_refusals_read_as_popts() {
        assert_eq!(popt(&["--frobnicate"]), None);
        assert_eq!(popt(&["-L", "--frobnicate"]).as_deref(), Some("--frobnicate: unknown option"));
        assert_eq!(popt(&["-A", "-t"]).as_deref(), Some("-t: missing argument"));
        assert_eq!(popt(&["-A", "-t", "1.2.3.4:80", "-s"]).as_deref(), Some("-s: missing argument"));
        assert_eq!(popt(&["-t"]), None);
    }

    #[test]
    fn a_required_value_is_the_next_word_as_in_popt() {
        let c = Cli::try_parse_from(["gwctl", "-a", "-t", "1.2.3.4:80", "-r", "-w", "2"]).unwrap();
        assert_eq!(
            (c.real_server.as_slice(), c.weight.len(), c.extra.as_slice()),
            (&["-w".to_owned()][..], 0, &["2".to_owned()][..])
        );
        let c = Cli::try_parse_from(["gwctl", "-A", "-t", "-s", "rr"]).unwrap();
        assert_eq!((c.tcp_service.as_slice(), c.scheduler.len()), (&["-s".to_owned()][..], 0));
        let c = Cli::try_parse_from(["gwctl", "-a", "-w", "-1", "-x", "--", "-y", "-"]).unwrap();
        assert_eq!(
            (c.weight.as_slice(), c.u_threshold.as_slice()),
            (&["-1".to_owned()][..], &["--".to_owned()][..])
        );
        assert_eq!(c.l_threshold, ["-"]);
        let c = Cli::try_parse_from(["gwctl", "--start-daemon", "--syncid"]).unwrap();
        assert_eq!(c.unsupported.start_daemon, ["--syncid"]);
    }

    #[test]
    fn invalid_option_names_the_word_as_typed() {
        let word = |words: &[&str]| invalid_option_word(words).map(str::to_owned);
        let cases: [(&[&str], &str); 16] = [
            (&["-L", "-Z"], "-Z"),
            (&["-L", "--zero"], "--zero"),
            (&["-Z", "--list"], "--list"),
            (&["-lZ"], "-lZ"),
            (&["-Lh"], "-Lh"),
            (&["-L", "--help"], "--help"),
            (&["-L", "--version"], "--version"),
            (&["-Ln", "-v"], "-v"),
            (&["-L", "-nZ"], "-nZ"),
            (&["-L", "-t", "1.2.3.4:80", "-Zn"], "-Zn"),
            (&["-A", "-t", "1.2.3.4:80", "--edit-service"], "--edit-service"),
            (&["--set", "1", "2", "3", "-L"], "-L"),
            (&["-L", "-h", "-Z"], "-h"),
            (&["-L", "-Z", "-h"], "-Z"),
            // Values are skipped as clap takes them: required, then optional.
            (&["-A", "-t", "-Z", "-s", "-L", "-E"], "-E"),
            (&["-A", "-p", "-E", "-p", "60", "-b", "-D"], "-E"),
        ];
        for (words, want) in cases {
            assert_eq!(word(words).as_deref(), Some(want), "{words:?}");
        }
        assert_eq!(word(&["-A", "-t", "-Z"]), None);
        assert_eq!(word(&["-A", "-t=-Z", "-s-L"]), None);
        assert_eq!(word(&["--socket", "-L", "-Z"]), None, "gwctl's own option takes a value too");
        assert_eq!(word(&["-L", "--", "-Z"]), None);
        assert_eq!(word(&["-L", "-n"]), None);
        let f = invalid_option(&["-L", "-Z"]);
        assert_eq!((f.ipvsadm_text().as_str(), f.exit_code()), ("invalid option `-Z'", 2));
        assert_eq!(invalid_option(&["-L"]), crate::error::Failure::InvalidOption);
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn clustered_short_options_parse_as_in_ipvsadm() {
        let c = Cli::try_parse_from(["gwctl", "-Ln"]).unwrap();
        assert_eq!((c.list, c.numeric), (1, 1));
        let c = Cli::try_parse_from(["gwctl", "-lnt", "1.2.3.4:80"]).unwrap();
        assert_eq!((c.list, c.numeric), (1, 1));
        assert_eq!(c.tcp_service, ["1.2.3.4:80"]);
        let c = Cli::try_parse_from(["gwctl", "-lnc"]).unwrap();
        assert_eq!((c.list, c.numeric, c.connection), (1, 1, 1));
    }

    #[test]
    fn repeats_are_kept_for_resolve() {
        let c =
            Cli::try_parse_from(["gwctl", "-A", "-A", "-t", "a", "-u", "b", "-w", "1", "-w", "2"]).unwrap();
        assert_eq!(c.add_service, 2);
        assert_eq!(c.weight.len(), 2);
        assert_eq!(c.extra.len(), 0);
    }

    #[test]
    fn optional_values_take_the_next_word_unless_it_is_an_option() {
        let c = Cli::try_parse_from(["gwctl", "-A", "-p", "-t", "a"]).unwrap();
        assert_eq!(c.persistent, [BARE]);
        let c = Cli::try_parse_from(["gwctl", "-A", "-p", "600", "-t", "a"]).unwrap();
        assert_eq!(c.persistent, ["600"]);
        let c = Cli::try_parse_from(["gwctl", "-A", "--persistent=600"]).unwrap();
        assert_eq!(c.persistent, ["600"]);
        let c = Cli::try_parse_from(["gwctl", "-a", "-b", "-w", "3"]).unwrap();
        assert_eq!((c.b.as_slice(), c.weight.as_slice()), (&[BARE.to_owned()][..], &["3".to_owned()][..]));
        let c = Cli::try_parse_from(["gwctl", "-A", "-b", "sh-fallback,sh-port"]).unwrap();
        assert_eq!(c.b, ["sh-fallback,sh-port"]);
        let c = Cli::try_parse_from(["gwctl", "-a", "-b"]).unwrap();
        assert_eq!(c.b, [BARE]);
    }

    #[test]
    fn set_keeps_its_three_words() {
        let c = Cli::try_parse_from(["gwctl", "--set", "900", "120", "300"]).unwrap();
        assert_eq!((c.set, c.extra.as_slice()), (1, &["900".to_owned(), "120".into(), "300".into()][..]));
    }

    #[test]
    fn unsupported_options_are_recognised() {
        let c = Cli::try_parse_from(["gwctl", "-A", "-f", "1"]).unwrap();
        assert!(c.unsupported.refusal().unwrap().contains("fwmark"));
        let c = Cli::try_parse_from(["gwctl", "--start-daemon", "master"]).unwrap();
        assert!(c.unsupported.refusal().unwrap().contains("synchronisation daemon"));
        // -L --daemon lists no daemon, as ipvsadm when none runs.
        let c = Cli::try_parse_from(["gwctl", "-L", "--daemon"]).unwrap();
        assert!(c.unsupported.refusal().is_none());
        assert!(Cli::try_parse_from(["gwctl", "-L"]).unwrap().unsupported.refusal().is_none());
    }

    #[test]
    fn bare_invocation_is_detected() {
        assert!(Cli::try_parse_from(["gwctl"]).unwrap().is_bare());
        assert!(Cli::try_parse_from(["gwctl", "--socket", "/x"]).unwrap().is_bare());
        assert!(!Cli::try_parse_from(["gwctl", "-n"]).unwrap().is_bare());
        assert!(!Cli::try_parse_from(["gwctl", "word"]).unwrap().is_bare());
        assert!(!Cli::try_parse_from(["gwctl", "--daemon"]).unwrap().is_bare());
    }

    #[test]
    fn bare_detection_covers_every_option() {
        // Every argument but --socket, -h and -v must make the line non-bare.
        let mut cmd = Cli::command();
        cmd.build();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "socket" {
                continue;
            }
            let word = match (arg.get_long(), arg.get_short()) {
                (Some(l), _) => format!("--{l}"),
                (None, Some(s)) => format!("-{s}"),
                (None, None) => "word".to_owned(), // the positional
            };
            let mut argv = vec!["gwctl".to_owned(), word.clone()];
            let needs_value = arg.get_action().takes_values()
                && arg.get_num_args().is_some_and(|n| n.min_values() > 0)
                && !arg.is_positional();
            if needs_value {
                argv.push("v".to_owned());
            }
            let c = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert!(!c.is_bare(), "{word} is not seen by is_bare");
        }
    }
}

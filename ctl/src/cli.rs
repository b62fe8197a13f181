//! Step one of two: the command line exactly as typed.
//!
//! Commands are flags, as in ipvsadm (`gwctl -A -t VIP:port -s wrr`), not
//! subcommands. Nothing here checks values or combinations: commands are
//! counted, options are collected with their repeats, and positional words are
//! kept, so that [`crate::resolve`] can report every problem with ipvsadm's own
//! message and exit code. clap itself rejects only an option it does not know
//! or a missing value (popt errors in ipvsadm, exit 255).

use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// Where gatewayd listens unless `--socket` or `GWCTL_SOCKET` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/gatewayd.sock";

/// ipvsadm's usage lines, for the commands gwctl has.
const USAGE: &str = "\
gwctl -A|E virtual-service [-s scheduler]
       gwctl -D virtual-service
       gwctl -C
       gwctl -a|e virtual-service -r server-address [-b|-m|-g|-i] [-w weight]
       gwctl -d virtual-service -r server-address
       gwctl -L|l [virtual-service] [-n] [--stats [--exact]] [--json]
       gwctl -Z [virtual-service]
       gwctl --add-laddr|--del-laddr -z local-address virtual-service
       gwctl --get-laddr [virtual-service] [--json]
       gwctl --counters [--json]
       gwctl -h|-v

virtual-service is -t|--tcp-service VIP:port or -u|--udp-service VIP:port";

const COMMANDS: &str = "Commands";
const SERVICE: &str = "Virtual service";
const OPTIONS: &str = "Options";

/// The raw arguments. Every command and flag is a count and every valued option
/// a list, so a repeat reaches `resolve` instead of being refused by clap.
#[derive(Parser, Debug)]
#[command(
    name = "gwctl",
    version,
    disable_version_flag = true,
    disable_help_flag = true,
    override_usage = USAGE,
    about = "Administer gatewayd's virtual services, with ipvsadm's commands and output.",
    after_help = "Addresses are IPv4 dotted quads; a port may be a number or a service name \
                  from /etc/services. Listings are always numeric (-n is accepted)."
)]
pub struct Cli {
    /// Add a virtual service.
    #[arg(short = 'A', long = "add-service", action = ArgAction::Count, help_heading = COMMANDS)]
    pub add_service: u8,
    /// Edit a virtual service.
    #[arg(short = 'E', long = "edit-service", action = ArgAction::Count, help_heading = COMMANDS)]
    pub edit_service: u8,
    /// Delete a virtual service and its real servers.
    #[arg(short = 'D', long = "delete-service", action = ArgAction::Count, help_heading = COMMANDS)]
    pub delete_service: u8,
    /// Clear the whole table.
    #[arg(short = 'C', long = "clear", action = ArgAction::Count, help_heading = COMMANDS)]
    pub clear: u8,
    /// Add a real server to a virtual service.
    #[arg(short = 'a', long = "add-server", action = ArgAction::Count, help_heading = COMMANDS)]
    pub add_server: u8,
    /// Edit a real server (an omitted -w or forwarding method resets to the default).
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
        help_heading = SERVICE
    )]
    pub tcp_service: Vec<String>,
    /// UDP virtual service.
    #[arg(
        short = 'u',
        long = "udp-service",
        value_name = "VIP:PORT",
        action = ArgAction::Append,
        help_heading = SERVICE
    )]
    pub udp_service: Vec<String>,

    /// Scheduler: rr or wrr (default wrr).
    #[arg(
        short = 's',
        long = "scheduler",
        value_name = "SCHEDULER",
        action = ArgAction::Append,
        help_heading = OPTIONS
    )]
    pub scheduler: Vec<String>,
    /// Real server; the port defaults to the service's.
    #[arg(
        short = 'r',
        long = "real-server",
        value_name = "RIP[:PORT]",
        action = ArgAction::Append,
        help_heading = OPTIONS
    )]
    pub real_server: Vec<String>,
    /// Forward by full NAT: SNAT to a local address, DNAT to the real server.
    #[arg(short = 'b', long = "fullnat", action = ArgAction::Count, help_heading = OPTIONS)]
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
        allow_negative_numbers = true,
        help_heading = OPTIONS
    )]
    pub weight: Vec<String>,
    /// Local address for --add-laddr/--del-laddr.
    #[arg(
        short = 'z',
        long = "laddr",
        value_name = "LIP",
        action = ArgAction::Append,
        help_heading = OPTIONS
    )]
    pub laddr: Vec<String>,
    /// Numeric output (always on: gwctl never resolves names).
    #[arg(short = 'n', long = "numeric", action = ArgAction::Count, help_heading = OPTIONS)]
    pub numeric: u8,
    /// With -L: traffic statistics instead of connection counts.
    #[arg(long = "stats", action = ArgAction::Count, help_heading = OPTIONS)]
    pub stats: u8,
    /// With --stats: exact numbers instead of K/M/G/T.
    #[arg(short = 'X', long = "exact", action = ArgAction::Count, help_heading = OPTIONS)]
    pub exact: u8,
    /// With -L, --get-laddr or --counters: print gatewayd's answer as JSON.
    #[arg(long = "json", action = ArgAction::Count, help_heading = OPTIONS)]
    pub json: u8,

    /// gatewayd's control socket.
    #[arg(
        long = "socket",
        value_name = "PATH",
        env = "GWCTL_SOCKET",
        default_value = DEFAULT_SOCKET,
        help_heading = OPTIONS
    )]
    pub socket: PathBuf,

    /// Print this help.
    #[arg(short = 'h', long = "help", action = ArgAction::Help, help_heading = OPTIONS)]
    pub help: Option<bool>,
    /// Print the version.
    #[arg(short = 'v', long = "version", action = ArgAction::Version, help_heading = OPTIONS)]
    pub version: Option<bool>,

    /// Words that are not options; ipvsadm refuses them ("unexpected argument").
    #[arg(hide = true, allow_hyphen_values = false)]
    pub extra: Vec<String>,
}

impl Cli {
    /// True when nothing but `--socket` was given: ipvsadm then lists the table.
    /// (A new field must be added here too.)
    pub fn is_bare(&self) -> bool {
        let counts = [
            self.add_service,
            self.edit_service,
            self.delete_service,
            self.clear,
            self.add_server,
            self.edit_server,
            self.delete_server,
            self.list,
            self.zero,
            self.add_laddr,
            self.del_laddr,
            self.get_laddr,
            self.counters,
            self.fullnat,
            self.masquerading,
            self.gatewaying,
            self.ipip,
            self.numeric,
            self.stats,
            self.exact,
            self.json,
        ];
        let lists = [
            &self.tcp_service,
            &self.udp_service,
            &self.scheduler,
            &self.real_server,
            &self.weight,
            &self.laddr,
            &self.extra,
        ];
        counts.iter().all(|&n| n == 0) && lists.iter().all(|l| l.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
    fn bare_invocation_is_detected() {
        assert!(Cli::try_parse_from(["gwctl"]).unwrap().is_bare());
        assert!(Cli::try_parse_from(["gwctl", "--socket", "/x"]).unwrap().is_bare());
        assert!(!Cli::try_parse_from(["gwctl", "-n"]).unwrap().is_bare());
        assert!(!Cli::try_parse_from(["gwctl", "word"]).unwrap().is_bare());
    }
}

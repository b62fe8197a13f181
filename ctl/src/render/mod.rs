//! Output: pure functions from gw_proto's response types to text.
//!
//! The ipvsadm layouts are ipvsadm 1.31's printf formats reproduced byte for
//! byte ([`list`]: `print_title`, `print_service_entry`, `print_largenum`;
//! [`conns`]: `list_conn`; [`save`]: `print_service_entry` with `FMT_RULE`;
//! `list_timeout`), including the blanks that a left-justified last column
//! leaves at the end of a line. `--get-laddr` and `--counters` are in [`tables`].
//!
//! Listings are sorted as ipvsadm 1.31 sorts them by default (`--nosort` keeps
//! gatewayd's order): services by (protocol, address, port), real servers by
//! (address, port), IPv4 services before IPv6 ones. (ipvsadm compares addresses by a subtraction cast to `int`,
//! which misorders addresses more than 2^31 apart; gwctl compares them as
//! numbers.) `--json` prints the same sorted response.
//!
//! Every renderer appends to one `String` with `write!`, never building a line
//! in a temporary: 10,000 services of 10 real servers render in milliseconds.

pub mod conns;
pub mod list;
pub mod save;
pub mod tables;

#[cfg(test)]
mod ipv6_tests;
#[cfg(test)]
mod tunnel_tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use gw_proto::{ErrorKind, Protocol, Request, Response, TimeoutSet};

use crate::services::PortNames;

pub use conns::{conns, conns_with};
pub use list::{list, list_health, list_with};
pub use save::{save, save_with};
pub use tables::{counters, laddrs};

/// How `addr:port` is shown: numbers (`-n`), or ipvsadm's
/// `addrport_to_anyname`: the host's name from the system resolver
/// (`gethostbyaddr`), else its number, and the port's name for the protocol
/// from `/etc/services` (`getservbyport`), else its number. Each address is
/// looked up once per run.
pub struct Names<'a> {
    ports: Option<&'a PortNames>,
    hosts: RefCell<HashMap<IpAddr, Option<String>>>,
    /// The host resolver, else `ports`' (the system's, if it resolves hosts).
    host_name: Option<HostName<'a>>,
}

/// How a host's name is found.
type HostName<'a> = &'a dyn Fn(IpAddr) -> Option<String>;

impl<'a> Names<'a> {
    /// Numbers only, as with `-n`.
    pub fn numeric() -> Names<'static> {
        Names { ports: None, hosts: RefCell::default(), host_name: None }
    }

    /// Names from `ports` (and from the system resolver if `ports` resolves hosts).
    pub fn resolving(ports: &'a PortNames) -> Names<'a> {
        Names { ports: Some(ports), hosts: RefCell::default(), host_name: None }
    }

    /// Names from `ports`, hosts' from `host_name` (tests: a fixed table).
    pub fn resolving_with(ports: &'a PortNames, host_name: HostName<'a>) -> Names<'a> {
        Names { ports: Some(ports), hosts: RefCell::default(), host_name: Some(host_name) }
    }

    /// Appends `addr:port`, named or numeric; an IPv6 address in brackets
    /// (`[ip6-localhost]:http`, `[2001:db8::1]:http`), as ipvsadm's
    /// `addrport_to_anyname`, whose 60-byte buffer cuts a named one at 59
    /// characters.
    pub fn push(&self, out: &mut String, addr: IpAddr, port: u16, proto: Protocol) {
        let Some(ports) = self.ports else {
            let _ = write!(out, "{}", gw_proto::AddrPort(addr, port));
            return;
        };
        let start = out.len();
        let (open, close) = if addr.is_ipv6() { ("[", "]") } else { ("", "") };
        out.push_str(open);
        let mut hosts = self.hosts.borrow_mut();
        // ipvsadm 1.31's addr_to_host asks gethostbyaddr with the family's
        // own address length (1.26 passed IPv4's for both, which named no
        // IPv6 host).
        let name = |a| self.host_name.map_or_else(|| ports.host_name(a), |f| f(a));
        match hosts.entry(addr).or_insert_with(|| name(addr)) {
            Some(host) => out.push_str(host),
            None => {
                let _ = write!(out, "{}", gw_proto::Ntop(addr));
            }
        }
        out.push_str(close);
        out.push(':');
        match ports.name_of(port, proto) {
            Some(name) => out.push_str(name),
            None => {
                let _ = write!(out, "{port}");
            }
        }
        // snprintf(buf, 60, ...): at most 59 bytes (names are ASCII; a
        // cut never splits a character).
        let mut end = start + ADDRPORT_MAX;
        if out.len() > end {
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
        }
    }
}

/// Bytes of a named `addr:port` ipvsadm prints at most (its 60-byte buffer).
const ADDRPORT_MAX: usize = 59;

/// The IPVS version gatewayd reports in ipvsadm's first listing line.
pub const IPVS_VERSION: &str = "1.2.1";

/// ipvsadm's `print_largenum`: a right-aligned 9-character field. Below 100
/// million the number is printed whole; above, it is divided down to at most
/// 8 digits with a K, M, G or T suffix (powers of 1000, truncated). `exact`
/// (`--exact`) prints every digit in a field of at least 9.
pub fn push_largenum(out: &mut String, n: u64, exact: bool) {
    const K: u64 = 1_000;
    const M: u64 = 1_000_000;
    const G: u64 = 1_000_000_000;
    const T: u64 = 1_000_000_000_000;
    let _ = if exact {
        // `%*llu` with a width of 9, or one more than the digits.
        let digits = n.checked_ilog10().map_or(1, |l| l as usize + 1);
        let width = if digits <= 8 { 9 } else { digits + 1 };
        write!(out, "{n:>width$}")
    } else if n < 100 * M {
        write!(out, "{n:>9}")
    } else if n < G {
        write!(out, "{:>8}K", n / K)
    } else if n < 100 * G {
        write!(out, "{:>8}M", n / M)
    } else if n < 100 * T {
        write!(out, "{:>8}G", n / G)
    } else {
        write!(out, "{:>8}T", n / T)
    };
}

/// [`push_largenum`] into a new string.
pub fn largenum(n: u64, exact: bool) -> String {
    let mut s = String::with_capacity(10);
    push_largenum(&mut s, n, exact);
    s
}

/// Pads what was written since `start` with blanks to `width` characters,
/// as printf's `%-Ns` does (ASCII only: addresses, ports, names).
fn pad_from(out: &mut String, start: usize, width: usize) {
    let len = out.len() - start;
    if len < width {
        out.extend(std::iter::repeat_n(' ', width - len));
    }
}

/// Sorts a response's lists as the tables show them, so that `--json` agrees.
pub fn sort(resp: &mut Response) {
    match resp {
        Response::Services { services, .. } => {
            // ipvs_cmp_services: address family first (IPv4 before IPv6).
            services.sort_unstable_by_key(|s| {
                let k = s.spec.key;
                (k.addr.is_ipv6(), k.proto, k.addr, k.port)
            });
            for s in services {
                s.dests.sort_unstable_by_key(|d| (d.spec.addr, d.spec.port));
            }
        }
        Response::Laddrs { entries } => entries.sort_by_key(|e| e.0),
        Response::Counters { workers, ports } => {
            workers.sort_by_key(|w| w.worker);
            ports.sort_by_key(|p| p.port);
        }
        Response::Conns { conns } => conns.sort_by_key(|c| (c.proto, c.vip, c.client, c.worker)),
        Response::Neighbours { entries } => entries.sort_by(|a, b| (&a.port, a.addr).cmp(&(&b.port, b.addr))),
        Response::Ok | Response::Error { .. } | Response::Timeouts { .. } => {}
    }
}

/// `--json`: the response, pretty-printed, with a final newline.
pub fn json(resp: &Response) -> String {
    let mut s = serde_json::to_string_pretty(resp).expect("responses always serialise");
    s.push('\n');
    s
}

/// `-L --timeout`: ipvsadm's `list_timeout`.
pub fn timeouts(t: &TimeoutSet) -> String {
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.tcp, t.tcpfin, t.udp)
}

/// libipvs `ipvs_strerror`'s text for EINVAL: no call has its own, so every
/// one gets this line, never strerror's "Invalid argument".
const EINVAL_TEXT: &str = "Invalid operation.  Possibly wrong module version, address not unicast, ...";

/// The text for a refused request: ipvsadm's one line (libipvs's
/// `ipvs_strerror`, which words "no such service" as "Service not defined" for
/// real-server commands). gatewayd's detail is not printed: ipvsadm prints one
/// line, and scripts match it. The one exception is an address family the
/// dataplane does not carry (IPv6 today): libipvs's EAFNOSUPPORT line alone
/// would not say so, so gatewayd's reason follows it on the same line.
pub fn error_text(req: &Request, kind: ErrorKind, detail: &str) -> String {
    let head = match (kind, req) {
        (
            ErrorKind::NoService,
            Request::AddDest { .. } | Request::EditDest { .. } | Request::DelDest { .. },
        ) => "Service not defined",
        // The kernel's EINVAL (a real server that is not unicast, a timeout
        // out of range, ...): libipvs's catch-all line, whatever the call.
        (ErrorKind::Invalid, _) => EINVAL_TEXT,
        // libipvs's EAFNOSUPPORT line, then why: gatewayd's own words
        // (IPv6 not yet carried by its dataplane).
        (ErrorKind::Unsupported, _) if !detail.is_empty() => {
            return format!("{}: {detail}", kind.ipvsadm_text());
        }
        // Not an IPVS error: gatewayd's own words say which limit was hit
        // (its connections, or its budget for large requests).
        (ErrorKind::Busy, _) if !detail.is_empty() => return detail.to_owned(),
        // A listing larger than a reply may carry: the kernel lists any
        // size, so ipvsadm has no text for it; gatewayd says what to ask.
        (ErrorKind::Full, Request::List { .. } | Request::ListConns { .. }) if !detail.is_empty() => {
            return detail.to_owned()
        }
        _ => kind.ipvsadm_text(),
    };
    head.to_owned()
}

/// The text for a refused `-R`: gatewayd names the failing request as
/// `rule N: ...` (1-based, in the order sent); gwctl turns that into the line of
/// the rules file, with ipvsadm's text for that request's error. `lines[i]` is
/// the line of request `i`.
pub fn restore_error_text(requests: &[Request], lines: &[usize], kind: ErrorKind, message: &str) -> String {
    let rule = message.trim().strip_prefix("rule ").and_then(|rest| {
        let (n, detail) = rest.split_once(':')?;
        let i = n.parse::<usize>().ok()?.checked_sub(1)?;
        Some((requests.get(i)?, *lines.get(i)?, detail.trim()))
    });
    match rule {
        Some((req, line, detail)) => format!("line {line}: {}", error_text(req, kind, detail)),
        None => error_text(&Request::Restore { requests: Vec::new() }, kind, message),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use gw_proto::{DestSpec, ForwardMode, Protocol, Scheduler, ServiceKey, ServiceSpec};

    use super::*;

    #[test]
    fn largenum_thresholds_are_ipvsadms() {
        let cases: [(u64, &str); 14] = [
            (0, "        0"),
            (999, "      999"),
            (1_000, "     1000"),
            (100_000, "   100000"),
            (1_000_000, "  1000000"),
            (99_999_999, " 99999999"),
            (100_000_000, "  100000K"),
            (999_999_999, "  999999K"),
            (1_000_000_000, "    1000M"),
            (99_999_999_999, "   99999M"),
            (100_000_000_000, "     100G"),
            (99_999_999_999_999, "   99999G"),
            (100_000_000_000_000, "     100T"),
            (u64::MAX, "18446744T"),
        ];
        for (n, want) in cases {
            assert_eq!(largenum(n, false), want, "{n}");
        }
        assert_eq!(largenum(0, true), "        0");
        assert_eq!(largenum(12_345_678, true), " 12345678");
        assert_eq!(largenum(123_456_789, true), " 123456789");
        assert_eq!(largenum(u64::MAX, true), " 18446744073709551615");
    }

    #[test]
    fn timeout_line_is_ipvsadms() {
        let t = TimeoutSet { tcp: 900, tcpfin: 120, udp: 300 };
        assert_eq!(timeouts(&t), "Timeout (tcp tcpfin udp): 900 120 300\n");
    }

    #[test]
    fn error_text_is_ipvsadms_one_line() {
        let set = Request::SetTimeouts { timeouts: TimeoutSet { tcp: 0, tcpfin: 0, udp: 4_000_000 } };
        assert_eq!(
            error_text(&set, ErrorKind::Invalid, "udp timeout 4000000 is not within 1..=2678400 seconds"),
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        );
        let svc = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port: 80 };
        let del = Request::DelService { key: svc };
        assert_eq!(error_text(&del, ErrorKind::NoService, ""), "No such service");
        assert_eq!(error_text(&del, ErrorKind::NoService, "No such service"), "No such service");
        let why = "a request of 2000000 bytes does not fit: other large requests hold most of the 128 MiB";
        assert_eq!(error_text(&del, ErrorKind::Busy, why), why);
        assert_eq!(error_text(&del, ErrorKind::Busy, ""), "too many control connections");
        let big =
            "the answer is more than 447392 connections, above the 64 MiB a reply may take: ask for less";
        assert_eq!(error_text(&Request::ListConns { service: None }, ErrorKind::Full, big), big);
        assert_eq!(error_text(&del, ErrorKind::Full, big), "Memory allocation problem");
        // IPv6 refused by gatewayd: libipvs's EAFNOSUPPORT line and why.
        let adds = Request::AddService { spec: ServiceSpec::new(svc, Scheduler::Rr) };
        assert_eq!(
            error_text(
                &adds,
                ErrorKind::Unsupported,
                "IPv6 is not yet supported by gatewayd's dataplane: service 2001:db8::1"
            ),
            "Operation not supported with specified address family: \
             IPv6 is not yet supported by gatewayd's dataplane: service 2001:db8::1"
        );
        let deld = Request::DelDest { service: svc, addr: Ipv4Addr::new(1, 2, 3, 4).into(), port: 80 };
        assert_eq!(error_text(&deld, ErrorKind::NoService, ""), "Service not defined");
        assert_eq!(error_text(&del, ErrorKind::Invalid, "weight above 65535"), EINVAL_TEXT);
        // ip_vs_new_dest's EINVAL for a server that is not unicast: libipvs's
        // catch-all row, for every call, so never strerror's "Invalid argument".
        let mcast = Request::AddDest {
            service: svc,
            dest: DestSpec::new(Ipv4Addr::new(224, 0, 0, 1), 80, ForwardMode::Masq, 1),
        };
        assert_eq!(
            error_text(&mcast, ErrorKind::Invalid, "real server 224.0.0.1 is not unicast"),
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        );
        let laddr = Request::AddLaddr { service: svc, addr: Ipv4Addr::new(198, 18, 2, 1).into() };
        assert_eq!(error_text(&laddr, ErrorKind::Invalid, "not FULLNAT"), EINVAL_TEXT);
        let add = Request::AddDest {
            service: svc,
            dest: gw_proto::DestSpec::new(Ipv4Addr::new(1, 2, 3, 4), 80, ForwardMode::Tunnel, 1),
        };
        // The kernel's ERANGE for -y above -x, through strerror (libipvs has no text).
        assert_eq!(
            error_text(&add, ErrorKind::OutOfRange, "lower above upper"),
            "Numerical result out of range"
        );
    }

    #[test]
    fn restore_errors_name_the_line() {
        let svc = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port: 80 };
        let requests = vec![
            Request::AddService { spec: ServiceSpec::new(svc, Scheduler::Wlc) },
            Request::AddDest {
                service: svc,
                dest: DestSpec::new(Ipv4Addr::new(1, 2, 3, 4), 80, ForwardMode::Masq, 1),
            },
        ];
        let lines = [3, 7];
        let t = |kind, msg| restore_error_text(&requests, &lines, kind, msg);
        assert_eq!(
            t(ErrorKind::ServiceExists, "rule 1: TCP 198.18.0.100:80"),
            "line 3: Service already exists"
        );
        assert_eq!(t(ErrorKind::NoService, "rule 2: "), "line 7: Service not defined");
        assert_eq!(t(ErrorKind::Invalid, "rule 9: x"), EINVAL_TEXT);
        assert_eq!(
            t(ErrorKind::Invalid, "rule 2: real server 224.0.0.1 is not unicast"),
            format!("line 7: {EINVAL_TEXT}")
        );
        assert_eq!(t(ErrorKind::Full, "too many"), "Memory allocation problem");
    }
}

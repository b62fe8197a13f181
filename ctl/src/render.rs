//! Output: pure functions from gw_proto's response types to text.
//!
//! The `-L` layouts are ipvsadm 1.31's printf formats (`print_title`,
//! `print_service_entry`, `print_largenum`) reproduced byte for byte, including
//! the blanks that its left-justified last column (`%-10u`) leaves at the end of
//! each real-server line. `--get-laddr` follows DPVS's ipvsadm. Listings are
//! sorted as ipvsadm 1.31 sorts them by default: services by (protocol, address,
//! port), real servers by (address, port). (ipvsadm compares addresses by a
//! subtraction cast to `int`, which misorders addresses more than 2^31 apart;
//! gwctl compares them as numbers.) `--json` prints the same sorted response.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use gw_proto::{ErrorKind, Request, Response, ServiceInfo, ServiceKey, WorkerCounters};

/// The IPVS version gatewayd reports in ipvsadm's first listing line.
pub const IPVS_VERSION: &str = "1.2.1";

/// ipvsadm's `print_largenum`: a right-aligned 9-character field. Below 100
/// million the number is printed whole; above, it is divided down to at most
/// 8 digits with a K, M, G or T suffix (powers of 1000, truncated). `exact`
/// (`--exact`) prints every digit in a field of at least 9.
pub fn largenum(n: u64, exact: bool) -> String {
    if exact {
        let len = n.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        return format!("{n:>width$}");
    }
    const K: u64 = 1_000;
    const M: u64 = 1_000_000;
    const G: u64 = 1_000_000_000;
    const T: u64 = 1_000_000_000_000;
    if n < 100 * M {
        format!("{n:>9}")
    } else if n < G {
        format!("{:>8}K", n / K)
    } else if n < 100 * G {
        format!("{:>8}M", n / M)
    } else if n < 100 * T {
        format!("{:>8}G", n / G)
    } else {
        format!("{:>8}T", n / T)
    }
}

/// Sorts a response's lists as the tables show them, so that `--json` agrees.
pub fn sort(resp: &mut Response) {
    match resp {
        Response::Services { services, .. } => {
            services.sort_by_key(|s| s.spec.key);
            for s in services {
                s.dests.sort_by_key(|d| (d.spec.addr, d.spec.port));
            }
        }
        Response::Laddrs { entries } => entries.sort_by_key(|e| e.0),
        Response::Counters { workers } => workers.sort_by_key(|w| w.worker),
        Response::Conns { conns } => conns.sort_by_key(|c| (c.proto, c.vip, c.client, c.worker)),
        Response::Ok | Response::Error { .. } | Response::Timeouts { .. } => {}
    }
}

/// `--json`: the response, pretty-printed, with a final newline.
pub fn json(resp: &Response) -> String {
    let mut s = serde_json::to_string_pretty(resp).expect("responses always serialise");
    s.push('\n');
    s
}

/// `-L`: ipvsadm's table. `conn_table_size` is `Some` when listing every service
/// (ipvsadm prints its "IP Virtual Server version" line only then) and `None`
/// for `-L -t VIP:port`.
pub fn list(conn_table_size: Option<u64>, services: &[ServiceInfo], stats: bool, exact: bool) -> String {
    let mut out = String::new();
    if let Some(size) = conn_table_size {
        let _ = writeln!(out, "IP Virtual Server version {IPVS_VERSION} (size={size})");
    }
    if stats {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
        out.push_str("  -> RemoteAddress:Port\n");
    } else {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
    let mut services: Vec<&ServiceInfo> = services.iter().collect();
    services.sort_by_key(|s| s.spec.key);
    for svc in services {
        let name = service_name(&svc.spec.key);
        if stats {
            let _ = write!(out, "{name:<33}");
            stats_columns(&mut out, &svc.stats, exact);
        } else {
            // gatewayd has no persistence, one-packet scheduling or scheduler
            // flags, so the Flags column stays empty.
            let _ = writeln!(out, "{name} {}", svc.spec.scheduler);
        }
        let mut dests: Vec<_> = svc.dests.iter().collect();
        dests.sort_by_key(|d| (d.spec.addr, d.spec.port));
        for d in dests {
            let dname = truncated(format!("{}:{}", d.spec.addr, d.spec.port), 28);
            if stats {
                let _ = write!(out, "  -> {dname:<28}");
                stats_columns(&mut out, &d.stats, exact);
            } else {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                    d.spec.mode.label(),
                    d.spec.weight,
                    d.active_conns,
                    d.inactive_conns
                );
            }
        }
    }
    out
}

/// ipvsadm's service column: `"%-4s %s"` of protocol and address, cut at 33.
fn service_name(k: &ServiceKey) -> String {
    truncated(format!("{:<4} {}:{}", k.proto.label(), k.addr, k.port), 33)
}

fn truncated(mut s: String, max: usize) -> String {
    s.truncate(max); // ASCII only: addresses and ports.
    s
}

fn stats_columns(out: &mut String, s: &gw_proto::Stats, exact: bool) {
    for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
        out.push_str(&largenum(n, exact));
    }
    out.push('\n');
}

/// `--get-laddr`: DPVS ipvsadm's layout (`%-20s %-8s %-20s`): a title, then per
/// service a `VIP:VPORT TOTAL` line and one line per local address. DPVS also
/// prints CONFLICTS and CONNS per address; gw_proto does not carry them, so those
/// columns are left out. Like DPVS, nothing at all is printed without services.
pub fn laddrs(entries: &[(ServiceKey, Vec<Ipv4Addr>)]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        return out;
    }
    let _ = writeln!(out, "{:<20} {:<8} SNAT_IP", "VIP:VPORT", "TOTAL");
    let mut entries: Vec<_> = entries.iter().collect();
    entries.sort_by_key(|e| e.0);
    for (key, addrs) in entries {
        let _ = writeln!(out, "{:<20} {:<8} ", format!("{}:{}", key.addr, key.port), addrs.len());
        for a in addrs {
            let _ = writeln!(out, "{:<20} {:<8} {a}", "", "");
        }
    }
    out
}

/// `--counters`: one row per counter name (in the order first met), one column
/// per worker headed `w<worker>/lc<lcore>`, and a TOTAL column summing the
/// workers. A counter a worker does not report shows `-` there. Every counter
/// is shown, zero or not.
pub fn counters(workers: &[WorkerCounters]) -> String {
    let mut workers: Vec<&WorkerCounters> = workers.iter().collect();
    workers.sort_by_key(|w| w.worker);
    let mut names: Vec<&str> = Vec::new();
    for w in &workers {
        for c in &w.counters {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
    }

    let mut rows: Vec<Vec<String>> = Vec::with_capacity(names.len() + 1);
    let mut header = vec!["COUNTER".to_owned()];
    header.extend(workers.iter().map(|w| format!("w{}/lc{}", w.worker, w.lcore)));
    header.push("TOTAL".to_owned());
    rows.push(header);
    for name in &names {
        let mut row = vec![(*name).to_owned()];
        let mut total: u128 = 0;
        for w in &workers {
            let mut found = false;
            let mut sum: u128 = 0;
            for c in w.counters.iter().filter(|c| c.name == *name) {
                found = true;
                sum += u128::from(c.value);
            }
            total += sum;
            row.push(if found { sum.to_string() } else { "-".to_owned() });
        }
        row.push(total.to_string());
        rows.push(row);
    }

    let columns = rows[0].len();
    let widths: Vec<usize> =
        (0..columns).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "{cell:<w$}", w = widths[0]);
            } else {
                let _ = write!(out, "  {cell:>w$}", w = widths[i]);
            }
        }
        out.push('\n');
    }
    out
}

/// The text for a refused request: ipvsadm's line first (libipvs's
/// `ipvs_strerror`, which words "no such service" as "Service not defined" for
/// real-server commands), then gatewayd's detail, if it adds any, on a second line.
pub fn error_text(req: &Request, kind: ErrorKind, message: &str) -> String {
    let head = match (kind, req) {
        (
            ErrorKind::NoService,
            Request::AddDest { .. } | Request::EditDest { .. } | Request::DelDest { .. },
        ) => "Service not defined",
        _ => kind.ipvsadm_text(),
    };
    let detail = message.trim();
    if detail.is_empty() || detail == head {
        head.to_owned()
    } else {
        format!("{head}\ngatewayd: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw_proto::{Counter, DestInfo, DestSpec, ForwardMode, Protocol, Scheduler, ServiceSpec, Stats};

    fn key(proto: Protocol, a: [u8; 4], port: u16) -> ServiceKey {
        ServiceKey { proto, addr: Ipv4Addr::from(a), port }
    }

    fn dest(a: [u8; 4], port: u16, weight: u32, active: u64, inactive: u64, stats: Stats) -> DestInfo {
        DestInfo {
            spec: DestSpec::new(Ipv4Addr::from(a), port, ForwardMode::FullNat, weight),
            active_conns: active,
            inactive_conns: inactive,
            persist_conns: 0,
            stats,
            rates: Default::default(),
        }
    }

    fn stats(conns: u64, inpkts: u64, outpkts: u64, inbytes: u64, outbytes: u64) -> Stats {
        Stats { conns, inpkts, outpkts, inbytes, outbytes }
    }

    /// A FULLNAT service with two real servers, given out of order.
    fn fullnat_service() -> ServiceInfo {
        ServiceInfo {
            spec: ServiceSpec::new(key(Protocol::Tcp, [198, 18, 0, 100], 80), Scheduler::Wrr),
            dests: vec![
                dest(
                    [198, 18, 1, 3],
                    8080,
                    2,
                    1234,
                    56,
                    stats(123_456_789, 99_999_999, 100_000_000, 5_000_000_000, 123),
                ),
                dest([198, 18, 1, 2], 80, 1, 0, 0, stats(0, 0, 0, 0, 0)),
            ],
            laddrs: vec![Ipv4Addr::new(198, 18, 2, 1)],
            stats: stats(123_456_789, 99_999_999, 100_000_000, 5_000_000_000, 123),
            rates: Default::default(),
        }
    }

    // The expected texts below were produced by a C program printing these
    // fixtures with ipvsadm 1.31's own format strings.

    #[test]
    #[rustfmt::skip]
    fn list_numeric_matches_ipvsadm_byte_for_byte() {
        let udp = ServiceInfo {
            spec: ServiceSpec::new(key(Protocol::Udp, [198, 18, 0, 100], 53), Scheduler::Rr),
            dests: vec![],
            laddrs: vec![],
            stats: Stats::default(),
            rates: Default::default(),
        };
        let got = list(Some(4096), &[udp, fullnat_service()], false, false);
        let want = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  198.18.0.100:80 wrr\n",
            // "  -> %-28s %-7s %-6d %-10u %-10u\n": the last column keeps its padding.
            "  -> 198.18.1.2:80                FullNat 1      0          0         \n",
            "  -> 198.18.1.3:8080              FullNat 2      1234       56        \n",
            "UDP  198.18.0.100:53 rr\n",
        );
        assert_eq!(got, want);
    }

    #[test]
    #[rustfmt::skip]
    fn list_one_service_has_no_version_line() {
        let got = list(None, &[fullnat_service()], false, false);
        assert!(got.starts_with("Prot LocalAddress:Port Scheduler Flags\n"));
        assert_eq!(got.lines().count(), 5);
    }

    #[test]
    #[rustfmt::skip]
    fn list_stats_matches_ipvsadm_byte_for_byte() {
        let got = list(Some(4096), &[fullnat_service()], true, false);
        let want = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "  -> RemoteAddress:Port\n",
            // "%-33s" then five 9-wide print_largenum fields.
            "TCP  198.18.0.100:80               123456K 99999999  100000K    5000M      123\n",
            "  -> 198.18.1.2:80                       0        0        0        0        0\n",
            "  -> 198.18.1.3:8080               123456K 99999999  100000K    5000M      123\n",
        );
        assert_eq!(got, want);
    }

    #[test]
    #[rustfmt::skip]
    fn list_stats_exact() {
        let got = list(None, &[fullnat_service()], true, true);
        let want = concat!(
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "  -> RemoteAddress:Port\n",
            "TCP  198.18.0.100:80              123456789 99999999 100000000 5000000000      123\n",
            "  -> 198.18.1.2:80                       0        0        0        0        0\n",
            "  -> 198.18.1.3:8080              123456789 99999999 100000000 5000000000      123\n",
        );
        assert_eq!(got, want);
    }

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
        assert_eq!(largenum(12_345_678, true), " 12345678");
        assert_eq!(largenum(123_456_789, true), " 123456789");
        assert_eq!(largenum(u64::MAX, true), " 18446744073709551615");
    }

    #[test]
    #[rustfmt::skip]
    fn laddrs_follow_dpvs() {
        let entries = vec![
            (key(Protocol::Udp, [198, 18, 0, 100], 53), vec![Ipv4Addr::new(198, 18, 2, 9)]),
            (key(Protocol::Tcp, [198, 18, 0, 100], 80), vec![Ipv4Addr::new(198, 18, 2, 1), Ipv4Addr::new(198, 18, 2, 2)]),
        ];
        let want = concat!(
            "VIP:VPORT            TOTAL    SNAT_IP\n",
            "198.18.0.100:80      2        \n",
            "                              198.18.2.1\n",
            "                              198.18.2.2\n",
            "198.18.0.100:53      1        \n",
            "                              198.18.2.9\n",
        );
        assert_eq!(laddrs(&entries), want);
        assert_eq!(laddrs(&[]), "");
    }

    #[test]
    #[rustfmt::skip]
    fn counters_table_has_a_total_column() {
        let c = |name: &str, value| Counter { name: name.into(), value };
        let workers = vec![
            WorkerCounters { worker: 1, lcore: 3, counters: vec![c("rx_packets", 2_000_000), c("drop_no_service", 0), c("drop_bad_csum", 7)] },
            WorkerCounters { worker: 0, lcore: 2, counters: vec![c("rx_packets", 5), c("drop_no_service", 0)] },
        ];
        let want = concat!(
            "COUNTER          w0/lc2   w1/lc3    TOTAL\n",
            "rx_packets            5  2000000  2000005\n",
            "drop_no_service       0        0        0\n",
            "drop_bad_csum         -        7        7\n",
        );
        assert_eq!(counters(&workers), want);
        assert_eq!(counters(&[]), "COUNTER  TOTAL\n");
    }

    #[test]
    fn json_is_the_sorted_response() {
        let mut resp = Response::Services { conn_table_size: 8, services: vec![fullnat_service()] };
        sort(&mut resp);
        let text = json(&resp);
        let back: Response = serde_json::from_str(&text).unwrap();
        assert_eq!(back, resp);
        let Response::Services { services, .. } = back else { unreachable!() };
        assert_eq!(services[0].dests[0].spec.addr, Ipv4Addr::new(198, 18, 1, 2));
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn error_text_puts_ipvsadms_line_first() {
        let svc = key(Protocol::Tcp, [198, 18, 0, 100], 80);
        let del = Request::DelService { key: svc };
        assert_eq!(error_text(&del, ErrorKind::NoService, ""), "No such service");
        assert_eq!(error_text(&del, ErrorKind::NoService, "No such service"), "No such service");
        let deld = Request::DelDest { service: svc, addr: Ipv4Addr::new(1, 2, 3, 4), port: 80 };
        assert_eq!(error_text(&deld, ErrorKind::NoService, ""), "Service not defined");
        assert_eq!(
            error_text(&del, ErrorKind::Invalid, "weight above 65535"),
            "Invalid argument\ngatewayd: weight above 65535"
        );
    }
}

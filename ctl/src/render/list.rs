//! `-L`: ipvsadm 1.31's service tables (`print_title` and `print_service_entry`).
//!
//! The service column is `"%-4s %s"` of protocol and `addr:port`, cut at 33
//! characters, and the real-server column `%-28s`, cut at 28; an IPv4 `addr:port`
//! is at most 21 characters, so neither cut ever applies here.

use std::fmt::Write as _;

use gw_proto::{DestInfo, ForwardMode, Protocol, ServiceInfo, ServiceSpec};

use super::{pad_from, push_largenum, Names, IPVS_VERSION};
use crate::resolve::ListFormat;
use crate::values::sched_flag_names;

/// `-L`: ipvsadm's table of `services`, in the order given, appended to `out`.
/// `conn_table_size` is `Some` when listing every service (ipvsadm prints its
/// "IP Virtual Server version" line only then) and `None` for `-L -t VIP:port`.
pub fn list(
    out: &mut String,
    conn_table_size: Option<u64>,
    services: &[ServiceInfo],
    format: ListFormat,
    exact: bool,
) {
    list_with(out, conn_table_size, services, format, exact, &Names::numeric());
}

/// [`list`], with addresses and ports shown as `names` says (ipvsadm without `-n`).
pub fn list_with(
    out: &mut String,
    conn_table_size: Option<u64>,
    services: &[ServiceInfo],
    format: ListFormat,
    exact: bool,
    names: &Names,
) {
    list_inner(out, conn_table_size, services, format, exact, names, false)
}

/// `-L --health` (gwctl's own): [`list_with`], each real server's line
/// followed by its health (`UP`, `DOWN`, `SORRY` for the sorry server, `-`
/// when unchecked), and after a service's real servers a line for each
/// checked server the checks took out of the pool.
pub fn list_health(
    out: &mut String,
    conn_table_size: Option<u64>,
    services: &[ServiceInfo],
    format: ListFormat,
    exact: bool,
    names: &Names,
) {
    list_inner(out, conn_table_size, services, format, exact, names, true)
}

/// The word `-L --health` shows for a real server.
fn health_word(h: Option<&gw_proto::RsHealth>) -> &'static str {
    match h {
        None => "-",
        Some(h) if h.sorry => "SORRY",
        Some(h) if h.up => "UP",
        Some(_) => "DOWN",
    }
}

fn list_inner(
    out: &mut String,
    conn_table_size: Option<u64>,
    services: &[ServiceInfo],
    format: ListFormat,
    exact: bool,
    names: &Names,
    health: bool,
) {
    let dests: usize = services.iter().map(|s| s.dests.len()).sum();
    out.reserve(64 * (services.len() + dests) + 200);
    if let Some(size) = conn_table_size {
        let _ = writeln!(out, "IP Virtual Server version {IPVS_VERSION} (size={size})");
    }
    title(out, format);
    for svc in services {
        service_line(out, svc, format, exact, names);
        for d in &svc.dests {
            dest_line(out, d, svc.spec.key.proto, format, exact, names);
            if health {
                let h = svc.health.iter().find(|h| (h.addr, h.port) == (d.spec.addr, d.spec.port));
                out.pop();
                let _ = writeln!(out, " {}", health_word(h));
            }
        }
        if health {
            for h in svc.health.iter().filter(|h| !h.in_pool) {
                if h.sorry {
                    continue;
                }
                out.push_str("  -> ");
                let start = out.len();
                names.push(out, h.addr, h.port, svc.spec.key.proto);
                pad_from(out, start, 28);
                let _ = writeln!(out, " {} (out of the pool: {})", health_word(Some(h)), h.last_error);
            }
        }
    }
}

fn title(out: &mut String, format: ListFormat) {
    const PROT: &str = "Prot LocalAddress:Port";
    const REMOTE: &str = "  -> RemoteAddress:Port\n";
    let _ = match format {
        ListFormat::Stats => {
            writeln!(
                out,
                "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            )
        }
        ListFormat::Rate => {
            writeln!(
                out,
                "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
            )
        }
        ListFormat::Thresholds => {
            writeln!(
                out,
                "{PROT:<33} {:<10} {:<10} {:<10} {:<10}",
                "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
            )
        }
        ListFormat::PersistConn => {
            writeln!(
                out,
                "{PROT:<33} {:<9} {:<11} {:<10} {:<10}",
                "Weight", "PersistConn", "ActiveConn", "InActConn"
            )
        }
        ListFormat::Plain => {
            out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
            out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
            return;
        }
        ListFormat::TunInfo => {
            out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
            out.push_str(
                "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
            );
            return;
        }
    };
    out.push_str(REMOTE);
}

fn service_line(out: &mut String, svc: &ServiceInfo, format: ListFormat, exact: bool, names: &Names) {
    let k = &svc.spec.key;
    let start = out.len();
    let _ = write!(out, "{:<4} ", k.proto.label());
    names.push(out, k.addr, k.port, k.proto);
    // ipvsadm: `svc_name[33] = '\0'` for IPv4 only (only a long host name
    // reaches it); an IPv6 name runs on.
    if k.addr.is_ipv4() {
        cut(out, start, 33);
    }
    match format {
        ListFormat::Stats | ListFormat::Rate => {
            pad_from(out, start, 33);
            let numbers = if format == ListFormat::Stats {
                let s = &svc.stats;
                [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
            } else {
                let r = &svc.rates;
                [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]
            };
            for n in numbers {
                push_largenum(out, n, exact);
            }
        }
        ListFormat::Thresholds | ListFormat::PersistConn | ListFormat::TunInfo | ListFormat::Plain => {
            flags(out, &svc.spec)
        }
    }
    out.push('\n');
}

/// `" wlc"`, then ipvsadm's flags: `(sched flags)`, `persistent T`, `mask M`
/// (only with persistence, as ipvsadm), `ops`.
fn flags(out: &mut String, spec: &ServiceSpec) {
    let _ = write!(out, " {}", spec.scheduler);
    if let Some(names) = sched_flag_names(spec.scheduler, spec.sched_flags) {
        let _ = write!(out, " ({names})");
    }
    if let Some(timeout) = spec.persistent {
        let _ = write!(out, " persistent {timeout}");
        // ipvsadm: the dotted mask for IPv4, the prefix length for IPv6.
        if spec.key.addr.is_ipv6() {
            if spec.prefix6 != gw_proto::FULL_PREFIX6 {
                let _ = write!(out, " mask {}", spec.prefix6);
            }
        } else if spec.netmask != std::net::Ipv4Addr::BROADCAST {
            let _ = write!(out, " mask {}", spec.netmask);
        }
    }
    if spec.one_packet {
        out.push_str(" ops");
    }
    if let Some(word) = spec.client_addr.list_word() {
        // DPVS's ipvsadm: ` ppv1`/` ppv2` after the flags; ` toa` is gwctl's.
        let _ = write!(out, " {word}");
    }
    if spec.synproxy {
        // DPVS's ipvsadm: ` synproxy` after the flags.
        out.push_str(" synproxy");
    }
}

/// Truncates what was written from `start` to `len` bytes, on a character boundary.
fn cut(out: &mut String, start: usize, len: usize) {
    let mut end = start + len;
    if end < out.len() {
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
}

fn dest_line(
    out: &mut String,
    d: &DestInfo,
    proto: Protocol,
    format: ListFormat,
    exact: bool,
    names: &Names,
) {
    let s = &d.spec;
    out.push_str("  -> ");
    let start = out.len();
    names.push(out, s.addr, s.port, proto);
    // ipvsadm: `dname[28] = '\0'` for IPv4 servers only.
    if s.addr.is_ipv4() {
        cut(out, start, 28);
    }
    pad_from(out, start, 28);
    let _ = match format {
        ListFormat::Stats => {
            let st = &d.stats;
            for n in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
                push_largenum(out, n, exact);
            }
            writeln!(out)
        }
        ListFormat::Rate => {
            // ipvsadm prints the three per-second counts with %8llu, the bytes with print_largenum.
            let r = &d.rates;
            let _ = write!(out, " {:>8} {:>8} {:>8}", r.cps, r.inpps, r.outpps);
            push_largenum(out, r.inbps, exact);
            push_largenum(out, r.outbps, exact);
            writeln!(out)
        }
        ListFormat::Thresholds => {
            writeln!(out, " {:<10} {:<10} {:<10} {:<10}", s.upper, s.lower, d.active_conns, d.inactive_conns)
        }
        ListFormat::PersistConn => {
            writeln!(
                out,
                " {:<9} {:<11} {:<10} {:<10}",
                s.weight, d.persist_conns, d.active_conns, d.inactive_conns
            )
        }
        ListFormat::TunInfo => writeln!(
            out,
            " {:<7} {:<13} {:<6} {:<10} {:<10}",
            s.mode.label(),
            // ipvsadm's fwd_tun_info: the tunnel type of a tunnel server
            // (`ipip`, `gue:PORT:FLAGS`, `gre:FLAGS`), "n/a" for the others.
            if s.mode == ForwardMode::Tunnel { s.tunnel.info() } else { "n/a".to_owned() },
            s.weight,
            d.active_conns,
            d.inactive_conns
        ),
        ListFormat::Plain => writeln!(
            out,
            " {:<7} {:<6} {:<10} {:<10}",
            s.mode.label(),
            s.weight,
            d.active_conns,
            d.inactive_conns
        ),
    };
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use gw_proto::{
        ClientAddr, DestSpec, ForwardMode, Protocol, Rates, Response, Scheduler, ServiceKey, Stats,
    };

    use super::*;
    use crate::render::sort;

    fn key(proto: Protocol, a: [u8; 4], port: u16) -> ServiceKey {
        ServiceKey { proto, addr: Ipv4Addr::from(a).into(), port }
    }

    fn dest(a: [u8; 4], port: u16, weight: u32, active: u64, inactive: u64, stats: Stats) -> DestInfo {
        DestInfo {
            spec: DestSpec::new(Ipv4Addr::from(a), port, ForwardMode::FullNat, weight),
            active_conns: active,
            inactive_conns: inactive,
            persist_conns: 0,
            stats,
            rates: Rates::default(),
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
            laddrs: vec![Ipv4Addr::new(198, 18, 2, 1).into()],
            stats: stats(123_456_789, 99_999_999, 100_000_000, 5_000_000_000, 123),
            rates: Rates::default(),
            health: vec![],
        }
    }

    fn udp_service() -> ServiceInfo {
        ServiceInfo {
            spec: ServiceSpec::new(key(Protocol::Udp, [198, 18, 0, 100], 53), Scheduler::Rr),
            dests: vec![],
            laddrs: vec![],
            stats: Stats::default(),
            rates: Rates::default(),
            health: vec![],
        }
    }

    /// Renders as gwctl does: sorted unless told not to.
    fn render(size: Option<u64>, services: Vec<ServiceInfo>, format: ListFormat, exact: bool) -> String {
        let mut resp = Response::Services { conn_table_size: 0, services };
        sort(&mut resp);
        let Response::Services { services, .. } = resp else { unreachable!() };
        let mut out = String::new();
        list(&mut out, size, &services, format, exact);
        out
    }

    // The expected texts below were produced by a C program printing these
    // fixtures with ipvsadm 1.31's own format strings.

    #[test]
    #[rustfmt::skip]
    fn list_numeric_matches_ipvsadm_byte_for_byte() {
        let got = render(Some(4096), vec![udp_service(), fullnat_service()], ListFormat::Plain, false);
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
    fn nosort_keeps_the_daemons_order() {
        let mut out = String::new();
        list(&mut out, None, &[udp_service(), fullnat_service()], ListFormat::Plain, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[2], "UDP  198.18.0.100:53 rr");
        assert!(lines[4].starts_with("  -> 198.18.1.3:8080"));
    }

    #[test]
    #[rustfmt::skip]
    fn service_flags_follow_ipvsadm() {
        let mut svc = udp_service();
        svc.spec = ServiceSpec {
            key: key(Protocol::Udp, [198, 18, 0, 100], 53),
            scheduler: Scheduler::Sh,
            persistent: Some(360),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            prefix6: gw_proto::FULL_PREFIX6,
            one_packet: true,
            sched_flags: 3,
            client_addr: ClientAddr::None,
            synproxy: false,
        };
        let got = render(None, vec![svc.clone()], ListFormat::Plain, false);
        // "%s %s", " (" flags ")", " persistent %u", " mask %s", " ops".
        assert_eq!(got.lines().nth(2), Some("UDP  198.18.0.100:53 sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0 ops"));
        // The mask is shown only with persistence, as ipvsadm does.
        svc.spec.persistent = None;
        svc.spec.sched_flags = 0;
        svc.spec.scheduler = Scheduler::Mh;
        let got = render(None, vec![svc.clone()], ListFormat::Plain, false);
        assert_eq!(got.lines().nth(2), Some("UDP  198.18.0.100:53 mh ops"));
        svc.spec.sched_flags = 2;
        svc.spec.persistent = Some(60);
        svc.spec.netmask = Ipv4Addr::BROADCAST;
        let got = render(None, vec![svc], ListFormat::Thresholds, false);
        assert_eq!(got.lines().nth(2), Some("UDP  198.18.0.100:53 mh (mh-port) persistent 60 ops"));
    }

    #[test]
    #[rustfmt::skip]
    fn client_address_words_follow_dpvs() {
        let mut svc = fullnat_service();
        for (ca, line) in [
            (ClientAddr::ProxyV1, "TCP  198.18.0.100:80 wrr ppv1"),
            (ClientAddr::ProxyV2, "TCP  198.18.0.100:80 wrr ppv2"),
            (ClientAddr::Toa, "TCP  198.18.0.100:80 wrr toa"),
        ] {
            svc.spec.client_addr = ca;
            let got = render(None, vec![svc.clone()], ListFormat::Plain, false);
            assert_eq!(got.lines().nth(2), Some(line));
        }
        svc.spec.synproxy = true;
        let got = render(None, vec![svc.clone()], ListFormat::Plain, false);
        assert_eq!(got.lines().nth(2), Some("TCP  198.18.0.100:80 wrr toa synproxy"));
    }

    #[test]
    #[rustfmt::skip]
    fn list_one_service_has_no_version_line() {
        let got = render(None, vec![fullnat_service()], ListFormat::Plain, false);
        assert!(got.starts_with("Prot LocalAddress:Port Scheduler Flags\n"));
        assert_eq!(got.lines().count(), 5);
    }

    #[test]
    #[rustfmt::skip]
    fn list_stats_matches_ipvsadm_byte_for_byte() {
        let got = render(Some(4096), vec![fullnat_service()], ListFormat::Stats, false);
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
    fn health_column_only_with_the_option() {
        let mut svc = fullnat_service();
        svc.health = vec![
            gw_proto::RsHealth {
                addr: Ipv4Addr::new(198, 18, 1, 3).into(),
                port: 8080,
                up: true,
                in_pool: true,
                weight: 2,
                checkers: vec!["HTTP_GET".into()],
                failed: 0,
                transitions: 0,
                last_error: String::new(),
                sorry: false,
            },
            gw_proto::RsHealth {
                addr: Ipv4Addr::new(198, 18, 1, 9).into(),
                port: 80,
                up: false,
                in_pool: false,
                weight: 1,
                checkers: vec!["TCP_CHECK".into()],
                failed: 1,
                transitions: 1,
                last_error: "connection refused".into(),
                sorry: false,
            },
        ];
        let plain = render(None, vec![svc.clone()], ListFormat::Plain, false);
        assert!(!plain.contains("UP") && !plain.contains("198.18.1.9"), "{plain}");
        let mut out = String::new();
        list_health(&mut out, None, &[svc], ListFormat::Plain, false, &Names::numeric());
        let lines: Vec<&str> = out.lines().collect();
        // The ipvsadm table, each real server's line with one more word.
        let plain: Vec<&str> = plain.lines().collect();
        assert_eq!(lines[..3], plain[..3]);
        assert!(lines.iter().any(|l| l.starts_with("  -> 198.18.1.3:8080") && l.ends_with(" UP")), "{out}");
        assert!(lines.iter().any(|l| l.starts_with("  -> 198.18.1.2:80") && l.ends_with(" -")), "{out}");
        assert!(
            lines.iter().any(|l| l.starts_with("  -> 198.18.1.9:80") && l.contains("DOWN (out of the pool: connection refused)")),
            "{out}"
        );
    }

    #[test]
    fn list_stats_exact() {
        let got = render(None, vec![fullnat_service()], ListFormat::Stats, true);
        let want = concat!(
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "  -> RemoteAddress:Port\n",
            "TCP  198.18.0.100:80              123456789 99999999 100000000 5000000000      123\n",
            "  -> 198.18.1.2:80                       0        0        0        0        0\n",
            "  -> 198.18.1.3:8080              123456789 99999999 100000000 5000000000      123\n",
        );
        assert_eq!(got, want);
    }

    fn rated_service() -> ServiceInfo {
        let mut svc = fullnat_service();
        svc.rates = Rates { cps: 1500, inpps: 250_000_000, outpps: 12, inbps: 3_000_000_000, outbps: 99 };
        svc.dests[0].rates =
            Rates { cps: 1500, inpps: 250_000_000, outpps: 12, inbps: 3_000_000_000, outbps: 99 };
        svc.dests[1].rates = Rates { cps: 7, inpps: 8, outpps: 9, inbps: 10, outbps: 11 };
        svc
    }

    #[test]
    #[rustfmt::skip]
    fn list_rate_matches_ipvsadm_byte_for_byte() {
        let got = render(Some(4096), vec![rated_service()], ListFormat::Rate, false);
        let want = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
            "  -> RemoteAddress:Port\n",
            // The service: five print_largenum fields.
            "TCP  198.18.0.100:80                  1500  250000K       12    3000M       99\n",
            // A real server: " %8llu %8llu %8llu", then print_largenum twice.
            "  -> 198.18.1.2:80                       7        8        9       10       11\n",
            "  -> 198.18.1.3:8080                  1500 250000000       12    3000M       99\n",
        );
        assert_eq!(got, want);
    }

    #[test]
    #[rustfmt::skip]
    fn list_rate_exact() {
        let got = render(None, vec![rated_service()], ListFormat::Rate, true);
        let want = concat!(
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
            "  -> RemoteAddress:Port\n",
            "TCP  198.18.0.100:80                  1500 250000000       12 3000000000       99\n",
            "  -> 198.18.1.2:80                       7        8        9       10       11\n",
            "  -> 198.18.1.3:8080                  1500 250000000       12 3000000000       99\n",
        );
        assert_eq!(got, want);
    }

    #[test]
    #[rustfmt::skip]
    fn list_tun_info_matches_ipvsadm_byte_for_byte() {
        let mut svc = fullnat_service();
        svc.dests[0].spec.mode = ForwardMode::Tunnel;
        let got = render(Some(4096), vec![svc], ListFormat::TunInfo, false);
        let want = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
            "TCP  198.18.0.100:80 wrr\n",
            // "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n", fwd_tun_info() or "n/a"
            "  -> 198.18.1.2:80                FullNat n/a           1      0          0         \n",
            "  -> 198.18.1.3:8080              Tunnel  ipip          2      1234       56        \n",
        );
        assert_eq!(got, want);
    }

    #[test]
    #[rustfmt::skip]
    fn list_thresholds_matches_ipvsadm_byte_for_byte() {
        let mut svc = fullnat_service();
        svc.spec.persistent = Some(360);
        svc.dests[0].spec.upper = 5000;
        svc.dests[0].spec.lower = 4000;
        let got = render(Some(4096), vec![svc], ListFormat::Thresholds, false);
        let want = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            // "%-33s %-10s %-10s %-10s %-10s\n"
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  198.18.0.100:80 wrr persistent 360\n",
            // "  -> %-28s %-10u %-10u %-10u %-10u\n"
            "  -> 198.18.1.2:80                0          0          0          0         \n",
            "  -> 198.18.1.3:8080              5000       4000       1234       56        \n",
        );
        assert_eq!(got, want);
    }

    #[test]
    #[rustfmt::skip]
    fn list_persistent_conn_matches_ipvsadm_byte_for_byte() {
        let mut svc = fullnat_service();
        svc.dests[0].persist_conns = 17;
        let got = render(None, vec![svc], ListFormat::PersistConn, false);
        let want = concat!(
            // "%-33s %-9s %-11s %-10s %-10s\n"
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  198.18.0.100:80 wrr\n",
            // "  -> %-28s %-9u %-11u %-10u %-10u\n"
            "  -> 198.18.1.2:80                1         0           0          0         \n",
            "  -> 198.18.1.3:8080              2         17          1234       56        \n",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn exact_does_not_change_the_plain_table() {
        let plain = render(None, vec![fullnat_service()], ListFormat::Plain, false);
        assert_eq!(render(None, vec![fullnat_service()], ListFormat::Plain, true), plain);
    }
}

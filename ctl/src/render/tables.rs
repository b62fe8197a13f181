//! DPVS's `--get-laddr` table and gwctl's `--counters` table.

use std::fmt::Write as _;
use std::net::IpAddr;

use gw_proto::{AddrPort, Counter, Ntop, PortCounters, ServiceKey, WorkerCounters};

/// `--get-laddr`: DPVS ipvsadm's layout (`%-20s %-8s %-20s`): a title, then per
/// service a `VIP:VPORT TOTAL` line and one line per local address. DPVS also
/// prints CONFLICTS and CONNS per address; gw_proto does not carry them, so those
/// columns are left out. Like DPVS, nothing at all is printed without services.
pub fn laddrs(entries: &[(ServiceKey, Vec<IpAddr>)]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        return out;
    }
    let _ = writeln!(out, "{:<20} {:<8} SNAT_IP", "VIP:VPORT", "TOTAL");
    let mut entries: Vec<_> = entries.iter().collect();
    entries.sort_by_key(|e| e.0);
    for (key, addrs) in entries {
        let _ = writeln!(out, "{:<20} {:<8} ", AddrPort(key.addr, key.port).to_string(), addrs.len());
        for a in addrs {
            let _ = writeln!(out, "{:<20} {:<8} {}", "", "", Ntop(*a));
        }
    }
    out
}

/// `--counters`: one row per counter name (in the order first met), one column
/// per worker headed `w<worker>/lc<lcore>`, and a TOTAL column summing the
/// workers. A counter a worker does not report shows `-` there. Every counter
/// is shown, zero or not. Then, if the daemon reports ports, a second table
/// of the DPDK port statistics: one row per statistic, one column per port
/// headed by its configured name (no total: a frame may cross two ports).
pub fn counters(workers: &[WorkerCounters], ports: &[PortCounters]) -> String {
    let mut workers: Vec<&WorkerCounters> = workers.iter().collect();
    workers.sort_by_key(|w| w.worker);
    let columns: Vec<(String, &[Counter])> =
        workers.iter().map(|w| (format!("w{}/lc{}", w.worker, w.lcore), &w.counters[..])).collect();
    let mut out = table("COUNTER", &columns, true);
    if !ports.is_empty() {
        let mut ports: Vec<&PortCounters> = ports.iter().collect();
        ports.sort_by_key(|p| p.port);
        let columns: Vec<(String, &[Counter])> =
            ports.iter().map(|p| (p.name.clone(), &p.counters[..])).collect();
        out.push('\n');
        out.push_str(&table("PORT", &columns, false));
    }
    out
}

/// A right-aligned table: one row per counter name (in the order first
/// met), one column per `(heading, counters)`, and a TOTAL column if asked.
fn table(first: &str, columns: &[(String, &[Counter])], with_total: bool) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (_, counters) in columns {
        for c in counters.iter() {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
    }

    let mut rows: Vec<Vec<String>> = Vec::with_capacity(names.len() + 1);
    let mut header = vec![first.to_owned()];
    header.extend(columns.iter().map(|(h, _)| h.clone()));
    if with_total {
        header.push("TOTAL".to_owned());
    }
    rows.push(header);
    for name in &names {
        let mut row = vec![(*name).to_owned()];
        let mut total: u128 = 0;
        for (_, counters) in columns {
            let mut found = false;
            let mut sum: u128 = 0;
            for c in counters.iter().filter(|c| c.name == *name) {
                found = true;
                sum += u128::from(c.value);
            }
            total += sum;
            row.push(if found { sum.to_string() } else { "-".to_owned() });
        }
        if with_total {
            row.push(total.to_string());
        }
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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use gw_proto::Protocol;

    use super::*;

    fn key(proto: Protocol, a: [u8; 4], port: u16) -> ServiceKey {
        ServiceKey { proto, addr: Ipv4Addr::from(a).into(), port }
    }

    #[test]
    #[rustfmt::skip]
    fn laddrs_follow_dpvs() {
        let entries = vec![
            (key(Protocol::Udp, [198, 18, 0, 100], 53), vec![Ipv4Addr::new(198, 18, 2, 9).into()]),
            (key(Protocol::Tcp, [198, 18, 0, 100], 80), vec![Ipv4Addr::new(198, 18, 2, 1).into(), Ipv4Addr::new(198, 18, 2, 2).into()]),
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
        // An IPv6 service in brackets; local addresses of either family.
        let v6 = ServiceKey { proto: Protocol::Tcp, addr: "2001:db8::1".parse().unwrap(), port: 80 };
        let entries = vec![(v6, vec![Ipv4Addr::new(198, 18, 2, 1).into(), "2001:db8::100".parse().unwrap()])];
        let want = concat!(
            "VIP:VPORT            TOTAL    SNAT_IP\n",
            "[2001:db8::1]:80     2        \n",
            "                              198.18.2.1\n",
            "                              2001:db8::100\n",
        );
        assert_eq!(laddrs(&entries), want);
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
        assert_eq!(counters(&workers, &[]), want);
        assert_eq!(counters(&[], &[]), "COUNTER  TOTAL\n");
    }

    #[test]
    #[rustfmt::skip]
    fn port_statistics_follow_in_a_table_of_their_own_one_column_per_port() {
        let c = |name: &str, value| Counter { name: name.into(), value };
        let workers = vec![WorkerCounters { worker: 0, lcore: 1, counters: vec![c("rx_packets", 9)] }];
        let ports = vec![
            PortCounters { name: "inside".into(), port: 1, counters: vec![c("ipackets", 4), c("imissed", 0), c("q0_ipackets", 4)] },
            PortCounters { name: "outside".into(), port: 0, counters: vec![c("ipackets", 5), c("imissed", 1255)] },
        ];
        let want = concat!(
            "COUNTER     w0/lc1  TOTAL\n",
            "rx_packets       9      9\n",
            "\n",
            "PORT         outside  inside\n",
            "ipackets           5       4\n",
            "imissed         1255       0\n",
            "q0_ipackets        -       4\n",
        );
        assert_eq!(counters(&workers, &ports), want);
    }
}

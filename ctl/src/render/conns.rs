//! `-L -c`: ipvsadm 1.31's "IPVS connection entries" (`list_conn`, `print_conn`).
//!
//! ipvsadm's columns are `pro expire state source virtual destination`
//! (`"%-3s %-6s %-11s %-18s %-18s %s"`), the expiry as `MM:SS`. A FULLNAT
//! connection has a fourth address, the local address and port it was given;
//! DPVS's ipvsadm prints it between virtual and destination, and so does gwctl:
//! when a listing holds a FULLNAT connection, every line gets a `local` column
//! (`%-18s`; for other modes it repeats the client, which is what the real
//! server sees). Without FULLNAT connections the layout is exactly ipvsadm's, so
//! scripts reading LVS listings keep working. The worker that owns a connection
//! is shown as a last `worker` column whenever the listing already leaves
//! ipvsadm's layout (FULLNAT) or spans several workers (DPVS prefixes
//! `[lcore]`, which would move every column); a one-worker listing without
//! FULLNAT stays ipvsadm's. `--json` gives it with every other field.
//!
//! `--persistent-conn` adds ipvsadm's `pe name` and `pe_data` headings; gatewayd
//! has no persistence engines, so the lines carry no such fields (as ipvsadm's
//! lines without them).

use std::fmt::Write as _;
use std::net::IpAddr;

use gw_proto::{ConnInfo, ForwardMode, Protocol};

use super::{pad_from, Names};

/// `-L -c`: appends ipvsadm's connection listing of `conns`, in the order given.
pub fn conns(out: &mut String, conns: &[ConnInfo], persistent: bool) {
    conns_with(out, conns, persistent, &Names::numeric());
}

/// [`conns`], with addresses and ports shown as `names` says (ipvsadm without `-n`).
pub fn conns_with(out: &mut String, conns: &[ConnInfo], persistent: bool, names: &Names) {
    let fullnat = conns.iter().any(|c| c.mode == ForwardMode::FullNat);
    let several_workers = conns.iter().any(|c| c.worker != conns[0].worker);
    let worker = (fullnat || several_workers) && !persistent;
    out.reserve(100 * conns.len() + 200);
    out.push_str("IPVS connection entries\n");
    let _ = write!(out, "pro expire {:<11} {:<18} {:<18} ", "state", "source", "virtual");
    if fullnat {
        let _ = write!(out, "{:<18} ", "local");
    }
    let _ = if persistent {
        writeln!(out, "{:<18} {:<16} pe_data", "destination", "pe name")
    } else if worker {
        writeln!(out, "{:<18} worker", "destination")
    } else {
        writeln!(out, "destination")
    };
    for c in conns {
        let secs = c.expires_ms / 1000;
        let start = out.len();
        out.push_str(c.proto.label());
        pad_from(out, start, 3);
        let start = out.len();
        let _ = write!(out, " {:02}:{:02}", secs / 60, secs % 60);
        pad_from(out, start, 7);
        let _ = write!(out, " {:<11} ", c.state);
        let column = |out: &mut String, a| addr_column(out, a, c.proto, names);
        column(out, c.client);
        column(out, c.vip);
        if fullnat {
            column(out, c.local);
        }
        if worker {
            column(out, c.dest);
            let _ = write!(out, "{}", c.worker);
        } else {
            names.push(out, c.dest.0, c.dest.1, c.proto);
        }
        out.push('\n');
    }
}

/// `"%-18s "` of `addr:port`.
fn addr_column(out: &mut String, (addr, port): (IpAddr, u16), proto: Protocol, names: &Names) {
    let start = out.len();
    names.push(out, addr, port, proto);
    pad_from(out, start, 18);
    out.push(' ');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, d)
    }

    #[allow(clippy::too_many_arguments)]
    fn conn(
        proto: Protocol,
        state: &str,
        expires_ms: u64,
        client: (impl Into<IpAddr>, u16),
        vip: (impl Into<IpAddr>, u16),
        local: (impl Into<IpAddr>, u16),
        dest: (impl Into<IpAddr>, u16),
        mode: ForwardMode,
    ) -> ConnInfo {
        ConnInfo {
            worker: 1,
            proto,
            state: state.into(),
            expires_ms,
            client: (client.0.into(), client.1),
            vip: (vip.0.into(), vip.1),
            local: (local.0.into(), local.1),
            dest: (dest.0.into(), dest.1),
            mode,
            template: false,
        }
    }

    // Expected texts: ipvsadm 1.31's format strings ("pro expire %-11s %-18s %-18s %s\n"
    // and "%-3s %-6s %-11s %-18s %-18s %s\n"), printed by a C program.

    #[test]
    #[rustfmt::skip]
    fn connections_without_fullnat_are_ipvsadms_layout() {
        let list = vec![
            conn(Protocol::Tcp, "ESTABLISHED", 899_999, (ip(2), 43210), (ip(100), 80), (ip(2), 43210), (Ipv4Addr::new(198, 18, 1, 2), 80), ForwardMode::Masq),
            conn(Protocol::Udp, "UDP", 299_500, (ip(2), 5353), (ip(100), 53), (ip(2), 5353), (Ipv4Addr::new(198, 18, 1, 3), 53), ForwardMode::Route),
            // A persistence template: client port 0, state NONE.
            ConnInfo { template: true, ..conn(Protocol::Tcp, "NONE", 6_000_000, (ip(2), 0), (ip(100), 80), (ip(2), 0), (Ipv4Addr::new(198, 18, 1, 2), 80), ForwardMode::Masq) },
        ];
        let mut out = String::new();
        conns(&mut out, &list, false);
        assert_eq!(out, concat!(
            "IPVS connection entries\n",
            "pro expire state       source             virtual            destination\n",
            "TCP 14:59  ESTABLISHED 198.18.0.2:43210   198.18.0.100:80    198.18.1.2:80\n",
            "UDP 04:59  UDP         198.18.0.2:5353    198.18.0.100:53    198.18.1.3:53\n",
            "TCP 100:00 NONE        198.18.0.2:0       198.18.0.100:80    198.18.1.2:80\n",
        ));
    }

    #[test]
    #[rustfmt::skip]
    fn fullnat_adds_the_local_address_before_the_destination() {
        let list = vec![
            conn(Protocol::Tcp, "SYN_RECV", 59_000, (ip(2), 43210), (ip(100), 80), (Ipv4Addr::new(198, 18, 1, 10), 1029), (Ipv4Addr::new(198, 18, 1, 2), 8080), ForwardMode::FullNat),
            conn(Protocol::Tcp, "FIN_WAIT", 1_999, (ip(3), 5000), (ip(100), 80), (ip(3), 5000), (Ipv4Addr::new(198, 18, 1, 3), 80), ForwardMode::Route),
        ];
        let mut out = String::new();
        conns(&mut out, &list, false);
        assert_eq!(out, concat!(
            "IPVS connection entries\n",
            "pro expire state       source             virtual            local              destination        worker\n",
            "TCP 00:59  SYN_RECV    198.18.0.2:43210   198.18.0.100:80    198.18.1.10:1029   198.18.1.2:8080    1\n",
            "TCP 00:01  FIN_WAIT    198.18.0.3:5000    198.18.0.100:80    198.18.0.3:5000    198.18.1.3:80      1\n",
        ));
    }

    #[test]
    #[rustfmt::skip]
    fn a_fullnat_template_repeats_its_client_in_the_local_column() {
        // The daemon lists a template's local side as its client (the
        // masked address, port 0), never the count/timeout it stores there.
        let list = vec![
            ConnInfo { template: true, ..conn(Protocol::Tcp, "NONE", 359_000, (Ipv4Addr::new(198, 18, 0, 0), 0), (ip(100), 80), (Ipv4Addr::new(198, 18, 0, 0), 0), (Ipv4Addr::new(198, 18, 1, 2), 8080), ForwardMode::FullNat) },
            conn(Protocol::Tcp, "ESTABLISHED", 899_000, (ip(2), 43210), (ip(100), 80), (Ipv4Addr::new(198, 18, 1, 10), 1029), (Ipv4Addr::new(198, 18, 1, 2), 8080), ForwardMode::FullNat),
        ];
        let mut out = String::new();
        conns(&mut out, &list, false);
        assert_eq!(out, concat!(
            "IPVS connection entries\n",
            "pro expire state       source             virtual            local              destination        worker\n",
            "TCP 05:59  NONE        198.18.0.0:0       198.18.0.100:80    198.18.0.0:0       198.18.1.2:8080    1\n",
            "TCP 14:59  ESTABLISHED 198.18.0.2:43210   198.18.0.100:80    198.18.1.10:1029   198.18.1.2:8080    1\n",
        ));
    }

    #[test]
    #[rustfmt::skip]
    fn connections_of_several_workers_name_their_worker() {
        let list = vec![
            conn(Protocol::Udp, "UDP", 10_000, (ip(2), 5353), (ip(100), 53), (ip(2), 5353), (Ipv4Addr::new(198, 18, 1, 3), 53), ForwardMode::Masq),
            ConnInfo { worker: 0, ..conn(Protocol::Udp, "UDP", 9_000, (ip(2), 5354), (ip(100), 53), (ip(2), 5354), (Ipv4Addr::new(198, 18, 1, 2), 53), ForwardMode::Masq) },
        ];
        let mut out = String::new();
        conns(&mut out, &list, false);
        assert_eq!(out, concat!(
            "IPVS connection entries\n",
            "pro expire state       source             virtual            destination        worker\n",
            "UDP 00:10  UDP         198.18.0.2:5353    198.18.0.100:53    198.18.1.3:53      1\n",
            "UDP 00:09  UDP         198.18.0.2:5354    198.18.0.100:53    198.18.1.2:53      0\n",
        ));
    }

    #[test]
    #[rustfmt::skip]
    fn persistent_conn_adds_ipvsadms_pe_headings() {
        let list = vec![
            conn(Protocol::Udp, "UDP", 10_000, (ip(2), 5353), (ip(100), 53), (ip(2), 5353), (Ipv4Addr::new(198, 18, 1, 3), 53), ForwardMode::Masq),
        ];
        let mut out = String::new();
        conns(&mut out, &list, true);
        assert_eq!(out, concat!(
            "IPVS connection entries\n",
            // "pro expire %-11s %-18s %-18s %-18s %-16s %s\n"
            "pro expire state       source             virtual            destination        pe name          pe_data\n",
            "UDP 00:10  UDP         198.18.0.2:5353    198.18.0.100:53    198.18.1.3:53\n",
        ));
        let mut out = String::new();
        conns(&mut out, &[], false);
        assert_eq!(out, "IPVS connection entries\npro expire state       source             virtual            destination\n");
    }
}

//! IPv6 listings against ipvsadm 1.31's own format strings.
//!
//! `ctl/tests/fixtures/ipvsadm-1.31-ipv6-listings.c` prints the fixtures
//! below with the printf formats of ipvsadm.c (`print_title`,
//! `print_service_entry` with and without `FMT_RULE`, `print_largenum`,
//! `addrport_to_anyname` with `FMT_NUMERIC`, `list_conn`) and glibc's
//! `inet_ntop`; its output, `ipvsadm-1.31-ipv6-listings.txt`, is the
//! expected text: brackets around IPv6 addresses, no cut of an IPv6 service
//! at 33 characters nor of an IPv6 server at 28, `mask N` / `-M N` as a
//! prefix length, and IPv4 services listed before IPv6 ones.

use std::net::{IpAddr, Ipv4Addr};

use gw_proto::{
    ConnInfo, DestInfo, DestSpec, ForwardMode, Protocol, Rates, Response, Scheduler, ServiceInfo, ServiceKey,
    ServiceSpec, Stats,
};

use super::{conns, list, save, sort};
use crate::resolve::ListFormat;

const EXPECTED: &str = include_str!("../../tests/fixtures/ipvsadm-1.31-ipv6-listings.txt");

/// The section of the fixture after `==name`.
fn section(name: &str) -> String {
    let head = format!("=={name}\n");
    let start = EXPECTED.find(&head).unwrap_or_else(|| panic!("no section {name}")) + head.len();
    let rest = &EXPECTED[start..];
    rest[..rest.find("\n==").map_or(rest.len(), |i| i + 1)].to_owned()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dest(addr: &str, port: u16, weight: u32) -> DestInfo {
    DestInfo {
        spec: DestSpec::new(ip(addr), port, ForwardMode::Masq, weight),
        active_conns: 0,
        inactive_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
        rates: Rates::default(),
    }
}

/// The C program's services, handed over in a different order.
fn services() -> Vec<ServiceInfo> {
    let key = |proto, addr: &str, port| ServiceKey { proto, addr: ip(addr), port };
    let stats = Stats {
        conns: 123_456_789,
        inpkts: 99_999_999,
        outpkts: 100_000_000,
        inbytes: 5_000_000_000,
        outbytes: 123,
    };
    let rates = Rates { cps: 5, inpps: 6, outpps: 7, inbps: 8_000_000_000, outbps: 9 };
    let busy = DestInfo {
        spec: DestSpec {
            upper: 100,
            lower: 10,
            ..DestSpec::new(ip("2001:db8::3"), 8080, ForwardMode::Masq, 2)
        },
        active_conns: 1234,
        inactive_conns: 56,
        persist_conns: 7,
        stats,
        rates,
    };
    let mut v6 = ServiceSpec::new(key(Protocol::Tcp, "2001:db8::1", 80), Scheduler::Wrr);
    v6.persistent = Some(360);
    v6.prefix6 = 64;
    let mut long =
        ServiceSpec::new(key(Protocol::Udp, "2001:db8:1234:5678:9abc:def0:1234:5678", 65535), Scheduler::Rr);
    long.one_packet = true;
    let info =
        |spec, dests, laddrs, stats, rates| ServiceInfo { spec, dests, laddrs, health: vec![], stats, rates };
    vec![
        info(
            long,
            vec![dest("2001:db8:1234:5678:9abc:def0:1234:5679", 65535, 1)],
            vec![],
            Stats::default(),
            Rates::default(),
        ),
        info(
            v6,
            vec![busy, dest("2001:db8::2", 80, 1)],
            vec![ip("198.18.2.1"), ip("2001:db8::100")],
            stats,
            rates,
        ),
        info(
            ServiceSpec::new(key(Protocol::Tcp, "198.18.0.100", 80), Scheduler::Wrr),
            vec![dest("198.18.1.2", 80, 1)],
            vec![],
            Stats::default(),
            Rates::default(),
        ),
    ]
}

fn sorted(services: Vec<ServiceInfo>) -> Vec<ServiceInfo> {
    let mut resp = Response::Services { conn_table_size: 4096, services };
    sort(&mut resp);
    let Response::Services { services, .. } = resp else { unreachable!() };
    services
}

#[test]
fn ipv6_listings_match_ipvsadm_byte_for_byte() {
    let services = sorted(services());
    for (name, format) in [
        ("PLAIN", ListFormat::Plain),
        ("STATS", ListFormat::Stats),
        ("RATE", ListFormat::Rate),
        ("THRESH", ListFormat::Thresholds),
        ("PCONN", ListFormat::PersistConn),
    ] {
        let mut out = String::new();
        list(&mut out, Some(4096), &services, format, false);
        assert_eq!(out, section(name), "-L {name}");
    }
}

#[test]
fn ipv6_save_matches_ipvsadm_and_reads_back() {
    // ipvsadm -S writes no thresholds; gwctl writes them when set, so the
    // fixture's server has none here.
    let mut services = sorted(services());
    for s in &mut services {
        for d in &mut s.dests {
            (d.spec.upper, d.spec.lower) = (0, 0);
        }
    }
    let mut out = String::new();
    save(&mut out, &services);
    assert_eq!(out, section("RULE"));
    // -R reads every line back to the same requests.
    let reqs = crate::rules::parse_rules(&out).unwrap();
    let v6 = &services[1];
    assert!(reqs.iter().any(|r| matches!(r, gw_proto::Request::AddService { spec } if *spec == v6.spec)));
    assert!(reqs.iter().any(
        |r| matches!(r, gw_proto::Request::AddLaddr { service, addr } if *service == v6.spec.key && *addr == ip("198.18.2.1"))
    ));
    assert_eq!(reqs.len(), 9);
}

/// `-L -c` and `-L -c --persistent-conn`: the fixture's lines are ipvsadm's
/// `print_conn` reading the kernel's own `/proc/net/ip_vs_conn` lines
/// (`ip_vs_conn_seq_show` in net/netfilter/ipvs/ip_vs_conn.c: `%pI6`, the
/// full eight-group form, ports `%04X`; the C program prints them as `==PROC`),
/// so the kernel's full form comes out as `inet_ntop`'s short one.
#[test]
fn ipv6_connections_match_ipvsadm() {
    let conn =
        |proto, state: &str, expires_ms, client: (&str, u16), vip: (&str, u16), dest: (&str, u16)| ConnInfo {
            worker: 1,
            proto,
            state: state.into(),
            expires_ms,
            client: (ip(client.0), client.1),
            vip: (ip(vip.0), vip.1),
            local: (ip(client.0), client.1),
            dest: (ip(dest.0), dest.1),
            mode: ForwardMode::Masq,
            template: false,
        };
    let mut resp = Response::Conns {
        conns: vec![
            conn(
                Protocol::Udp,
                "UDP",
                299_500,
                ("::ffff:198.18.0.2", 5353),
                ("2001:db8:1234:5678:9abc:def0:1234:5678", 65535),
                ("2001:db8:1234:5678:9abc:def0:1234:5679", 65535),
            ),
            conn(
                Protocol::Tcp,
                "ESTABLISHED",
                899_999,
                ("2001:db8::10", 43210),
                ("2001:db8::1", 80),
                ("2001:db8::2", 80),
            ),
            conn(Protocol::Udp, "UDP", 999, ("198.18.0.2", 5353), ("198.18.0.100", 53), ("198.18.1.3", 53)),
            // The template of `-p 7200 -M 64`: the client's /64, port 0.
            ConnInfo {
                template: true,
                ..conn(
                    Protocol::Tcp,
                    "NONE",
                    7_199_000,
                    ("2001:db8::", 0),
                    ("2001:db8::1", 80),
                    ("2001:db8::2", 80),
                )
            },
        ],
    };
    sort(&mut resp);
    let Response::Conns { conns: c } = resp else { unreachable!() };
    let mut out = String::new();
    conns(&mut out, &c, false);
    assert_eq!(out, section("CONNS"));
    let mut out = String::new();
    conns(&mut out, &c, true);
    assert_eq!(out, section("CONNS_PCONN"));
}

#[test]
fn inet_ntop_forms() {
    let n = |s: &str| gw_proto::Ntop(ip(s)).to_string();
    assert_eq!(n("2001:db8::1"), "2001:db8::1");
    assert_eq!(n("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
    assert_eq!(n("::ffff:198.18.0.2"), "::ffff:198.18.0.2");
    // IPv4-compatible: glibc writes the dotted form, Rust's Display does not.
    assert_eq!(n("::198.18.0.2"), "::198.18.0.2");
    assert_eq!(n("::1"), "::1");
    assert_eq!(n("::"), "::");
    assert_eq!(n("::0.0.1.2"), "::102");
    assert_eq!(gw_proto::AddrPort(Ipv4Addr::new(198, 18, 0, 1).into(), 80).to_string(), "198.18.0.1:80");
    assert_eq!(gw_proto::AddrPort(ip("::198.18.0.2"), 80).to_string(), "[::198.18.0.2]:80");
}

#[test]
fn without_n_ipv6_ports_are_named_inside_brackets_after() {
    // addrport_to_anyname without FMT_NUMERIC: "[%s]:%s" of the host (its
    // number here: the built-in table resolves no hosts) and the port name.
    let ports = crate::services::PortNames::builtin();
    let names = super::Names::resolving(&ports);
    let mut out = String::new();
    super::list_with(&mut out, None, &sorted(services())[1..2], ListFormat::Plain, false, &names);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[2], "TCP  [2001:db8::1]:http wrr persistent 360 mask 64");
    assert_eq!(lines[3], "  -> [2001:db8::2]:http           Masq    1      0          0         ");
}

/// The resolver of the naming tests: two IPv6 hosts, one long name.
fn hosts(a: IpAddr) -> Option<String> {
    match a.to_string().as_str() {
        "2001:db8::1" => Some("vip6.example".into()),
        "2001:db8::2" => Some("rs6.example".into()),
        "2001:db8::10" => Some("a-client-whose-name-is-longer-than-ipvsadm-show.example".into()),
        _ => None,
    }
}

#[test]
fn without_n_ipv6_hosts_are_named_as_ipvsadm_1_31_names_them() {
    // ipvsadm 1.31's addr_to_host: gethostbyaddr with the family's own
    // address length (sizeof(struct in6_addr) for AF_INET6).
    let ports = crate::services::PortNames::builtin();
    let names = super::Names::resolving_with(&ports, &hosts);
    let mut out = String::new();
    super::list_with(&mut out, None, &sorted(services())[1..2], ListFormat::Plain, false, &names);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[2], "TCP  [vip6.example]:http wrr persistent 360 mask 64");
    assert_eq!(lines[3], "  -> [rs6.example]:http           Masq    1      0          0         ");
}

#[test]
fn without_n_ipv6_connections_name_hosts_and_ports() {
    // print_conn's addrport_to_anyname without FMT_NUMERIC: "[%s]:%s" of
    // the host's name (cut with the port at 59 characters, the 60-byte
    // buffer) or number, the port by /etc/services; a NAT64 session's IPv4
    // server in ipvsadm's IPv4 form (its own family, `daf`).
    let ports = crate::services::PortNames::builtin();
    let names = super::Names::resolving_with(&ports, &hosts);
    let c = ConnInfo {
        worker: 0,
        proto: Protocol::Tcp,
        state: "ESTABLISHED".into(),
        expires_ms: 899_000,
        client: (ip("2001:db8::10"), 43210),
        vip: (ip("2001:db8::1"), 80),
        local: (ip("198.18.1.10"), 1029),
        dest: (ip("198.18.1.2"), 8080),
        mode: ForwardMode::FullNat,
        template: false,
    };
    let mut out = String::new();
    super::conns_with(&mut out, &[c], false, &names);
    assert_eq!(
        out.lines().nth(2),
        Some(
            "TCP 14:59  ESTABLISHED [a-client-whose-name-is-longer-than-ipvsadm-show.example]:4 \
             [vip6.example]:http 198.18.1.10:1029   198.18.1.2:http-alt 0"
        )
    );
}

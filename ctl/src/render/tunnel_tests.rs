//! Tunnel types (`--tun-type ipip|gue|gre`) against ipvsadm 1.31's own
//! tables and format strings.
//!
//! `ctl/tests/fixtures/ipvsadm-1.31-tunnels.c` prints, with ipvsadm.c's
//! `tunnames[]`, `tunflags[]`, `tun_flags_opts[]`, `fwd_tun_info`,
//! `print_tunnel_rule` and the `FMT_TUN_INFO` formats, one IPv4 and one
//! IPv6 service whose servers cover every tunnel type and checksum option;
//! its output, `ipvsadm-1.31-tunnels.txt`, is the expected text of
//! `-L --tun-info` and `-S`, and `-R` reads the saved lines back to the
//! same servers.

use std::net::IpAddr;

use gw_proto::{
    DestInfo, DestSpec, ForwardMode, Protocol, Rates, Request, Response, Scheduler, ServiceInfo, ServiceKey,
    ServiceSpec, Stats, TunnelCsum, TunnelEncap,
};

use super::{list, save, sort};
use crate::resolve::ListFormat;

const EXPECTED: &str = include_str!("../../tests/fixtures/ipvsadm-1.31-tunnels.txt");

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

fn dest(addr: &str, port: u16, mode: ForwardMode, weight: u32, tunnel: TunnelEncap) -> DestInfo {
    DestInfo {
        spec: DestSpec { tunnel, ..DestSpec::new(ip(addr), port, mode, weight) },
        active_conns: 0,
        inactive_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
        rates: Rates::default(),
    }
}

/// The C program's services.
fn services() -> Vec<ServiceInfo> {
    use ForwardMode::{Route, Tunnel};
    use TunnelCsum::*;
    use TunnelEncap::{Gre, Gue, Ipip};
    let info = |spec, dests| ServiceInfo {
        spec,
        dests,
        laddrs: vec![],
        health: vec![],
        stats: Stats::default(),
        rates: Rates::default(),
    };
    let key = |proto, addr: &str, port| ServiceKey { proto, addr: ip(addr), port };
    let mut ipip = dest("198.18.1.2", 80, Tunnel, 1, Ipip);
    (ipip.active_conns, ipip.inactive_conns) = (3, 4);
    let mut gue6 = dest("2001:db8::2", 53, Tunnel, 1, Gue { port: 5555, csum: Csum });
    gue6.inactive_conns = 9;
    vec![
        info(
            ServiceSpec::new(key(Protocol::Tcp, "198.18.0.100", 80), Scheduler::Wlc),
            vec![
                ipip,
                dest("198.18.1.3", 80, Tunnel, 2, Gue { port: 6080, csum: NoCsum }),
                dest("198.18.1.4", 80, Tunnel, 3, Gue { port: 65535, csum: Csum }),
                dest("198.18.1.5", 80, Tunnel, 4, Gue { port: 1, csum: RemCsum }),
                dest("198.18.1.6", 80, Tunnel, 5, Gre { csum: NoCsum }),
                dest("198.18.1.7", 80, Tunnel, 6, Gre { csum: Csum }),
                dest("198.18.1.8", 80, Route, 7, Ipip),
            ],
        ),
        info(
            ServiceSpec::new(key(Protocol::Udp, "2001:db8::1", 53), Scheduler::Rr),
            vec![gue6, dest("2001:db8::3", 53, Tunnel, 1, Gre { csum: Csum })],
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
fn tun_info_listing_matches_ipvsadm_byte_for_byte() {
    let mut out = String::new();
    list(&mut out, None, &sorted(services()), ListFormat::TunInfo, false);
    assert_eq!(out, section("TUNINFO"));
}

#[test]
fn tunnel_rules_match_ipvsadm_and_read_back_to_the_same_servers() {
    let services = sorted(services());
    let mut out = String::new();
    save(&mut out, &services);
    assert_eq!(out, section("RULE"));
    let reqs = crate::rules::parse_rules(&out).unwrap();
    let want: Vec<Request> = services
        .iter()
        .flat_map(|s| {
            std::iter::once(Request::AddService { spec: s.spec.clone() })
                .chain(s.dests.iter().map(|d| Request::AddDest { service: s.spec.key, dest: d.spec }))
        })
        .collect();
    assert_eq!(reqs, want);
}

/// The JSON of a server: the tunnel as IPVS's three attributes say it, and
/// nothing for ipip (so older readers and listings are unchanged).
#[test]
fn tunnel_json_names_type_port_and_checksum() {
    let gue = DestSpec {
        tunnel: TunnelEncap::Gue { port: 6080, csum: TunnelCsum::RemCsum },
        ..DestSpec::new(ip("198.18.1.2"), 80, ForwardMode::Tunnel, 1)
    };
    let v = serde_json::to_value(gue).unwrap();
    assert_eq!(v["tunnel"], serde_json::json!({"type": "gue", "port": 6080, "csum": "remcsum"}));
    let ipip = DestSpec::new(ip("198.18.1.2"), 80, ForwardMode::Tunnel, 1);
    assert!(serde_json::to_value(ipip).unwrap().get("tunnel").is_none());
    let back: DestSpec = serde_json::from_value(v).unwrap();
    assert_eq!(back, gue);
}

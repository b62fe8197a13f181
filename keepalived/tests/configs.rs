//! Whole keepalived configuration files (tests/fixtures: excerpts after
//! keepalived's doc/samples, a DR director, DPVS's FNAT, a tree of includes)
//! to the requests gatewayd applies, and broken files to their line.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gw_keepalived::check::{CheckKind, Timing};
use gw_keepalived::model::Script;
use gw_keepalived::{load, parse_str, Loaded};
use gw_proto::{sched_flags, DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceKey, ServiceSpec};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn key(proto: Protocol, addr: &str, port: u16) -> ServiceKey {
    ServiceKey { proto, addr: addr.parse().unwrap(), port }
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    key(Protocol::Tcp, addr, port)
}

fn dest(addr: &str, port: u16, mode: ForwardMode, weight: u32) -> DestSpec {
    DestSpec::new(addr.parse::<IpAddr>().unwrap(), port, mode, weight)
}

/// The notices without their file, as `line: message`.
fn notices(l: &Loaded) -> Vec<String> {
    l.notices.iter().map(|n| format!("{}: {}", n.line, n.message)).collect()
}

#[test]
fn keepalived_doc_sample_loads_and_skips_what_is_not_ipvs() {
    let l = load(&fixture("doc-sample.conf")).unwrap();
    let svc = tcp("198.18.0.100", 1358);
    let mut spec = ServiceSpec::new(svc, Scheduler::Rr);
    spec.persistent = Some(50);
    assert_eq!(
        l.requests(),
        vec![
            Request::AddService { spec },
            Request::AddDest { service: svc, dest: dest("198.18.1.2", 1358, ForwardMode::Masq, 1) },
        ]
    );
    assert_eq!(
        notices(&l),
        ["4: global_defs: not run by gatewayd - skipped", "14: vrrp_instance: not run by gatewayd - skipped"]
    );
    // The checker and the sorry server are kept for a checker to run.
    let vs = &l.conf.virtual_servers[0];
    assert_eq!(
        vs.sorry_server.as_ref().map(|s| (s.addr, s.port)),
        Some((ip("198.18.1.200").into(), Some(1358)))
    );
    let rs = &vs.real_servers[0];
    let CheckKind::Http(h) = &rs.checkers[0].kind else { panic!("{:?}", rs.checkers) };
    assert_eq!(h.urls[0].path, "/testurl3/test.jsp");
    assert_eq!(h.urls[0].digest.as_deref(), Some("640205b7b0fc66c1ea91c463fac6334d"));
    assert_eq!(
        rs.checkers[0].effective(&rs.timing, &vs.timing),
        Timing {
            delay_loop: Duration::from_secs(6),
            connect_timeout: Duration::from_secs(3),
            retry: 3,
            delay_before_retry: Duration::from_secs(3),
            // keepalived: the checker's delay_loop when none is set.
            warmup: Duration::from_secs(6),
        }
    );
}

#[test]
fn a_dr_director_with_vrrp_loads_its_virtual_server() {
    let l = load(&fixture("dr-keepalived.conf")).unwrap();
    let svc = tcp("198.18.0.100", 80);
    let mut spec = ServiceSpec::new(svc, Scheduler::Wlc);
    spec.persistent = Some(300);
    assert_eq!(
        l.requests(),
        vec![
            Request::AddService { spec },
            Request::AddDest { service: svc, dest: dest("198.18.0.3", 80, ForwardMode::Route, 1) },
            Request::AddDest { service: svc, dest: dest("198.18.0.4", 80, ForwardMode::Route, 2) },
        ]
    );
    assert_eq!(
        notices(&l),
        [
            "3: global_defs: not run by gatewayd - skipped",
            "8: vrrp_sync_group: not run by gatewayd - skipped",
            "14: vrrp_instance: not run by gatewayd - skipped",
        ]
    );
    let vs = &l.conf.virtual_servers[0];
    let t: Vec<Timing> =
        vs.real_servers.iter().map(|r| r.checkers[0].effective(&r.timing, &vs.timing)).collect();
    assert_eq!(
        (t[0].delay_loop, t[0].retry, t[0].connect_timeout),
        (Duration::from_secs(3), 2, Duration::from_secs(2))
    );
    assert_eq!((t[1].retry, t[1].delay_before_retry), (1, Duration::from_secs(1)), "keepalived's defaults");
    assert_eq!(vs.real_servers[0].checkers[0].common.connect_port, Some(80));
}

#[test]
fn a_virtual_server_group_stands_for_each_of_its_addresses() {
    let l = load(&fixture("virtual-server-group.conf")).unwrap();
    let keys: Vec<ServiceKey> = l.services.iter().map(|s| s.spec.key).collect();
    assert_eq!(
        keys,
        [
            tcp("198.18.0.100", 8080),
            tcp("198.18.0.101", 80),
            tcp("198.18.0.110", 80),
            tcp("198.18.0.111", 80),
            tcp("198.18.0.112", 80),
        ]
    );
    for s in &l.services {
        assert_eq!((s.spec.persistent, s.spec.netmask), (Some(50), ip("255.255.255.0")));
        let port = s.spec.key.port;
        let dests: Vec<DestSpec> = s.dests.iter().map(|(_, d)| *d).collect();
        assert_eq!(
            dests,
            [dest("198.18.1.2", 1358, ForwardMode::Masq, 2), dest("198.18.1.3", port, ForwardMode::Masq, 1)],
            "a real server without a port takes the service's"
        );
    }
    assert_eq!(notices(&l), ["6: fwmark: fwmark services are not supported by gatewayd - skipped"]);
}

/// keepalived's IPv6 forms: `virtual_server 2001:db8::1 80`, IPv6 real
/// servers with NAT, DR and TUN, a group with an IPv6 address, a hex range
/// of the last group and a prefix, `persistence_granularity` as a prefix
/// length, checkers with an IPv6 `connect_ip`, and DPVS's FNAT with IPv6
/// local addresses.
#[test]
fn ipv6_virtual_servers_real_servers_and_groups_load() {
    let text = "\
virtual_server_group g6 {
  2001:db8::10 80
  2001:db8::20-21 8080
  2001:db8::30/127 443
}
local_address_group l6 {
  2001:db8:2::10-11 dpdk0
}
virtual_server 2001:db8::1 80 {
  protocol TCP
  lb_algo rr
  lvs_method NAT
  persistence_timeout 60
  persistence_granularity 64
  real_server 2001:db8:1::2 80 {
    TCP_CHECK {
      connect_ip 2001:db8:1::9
      connect_timeout 2
    }
  }
  real_server 2001:db8:1::3 8080 {
    lvs_method DR
  }
  real_server 2001:db8:1::4 80 {
    lvs_method TUN
    HTTP_GET {
      url {
        path /
        status_code 200
      }
    }
  }
}
virtual_server group g6 {
  protocol TCP
  lvs_method DR
  real_server 2001:db8:1::5 0 { }
}
virtual_server 2001:db8::2 53 {
  protocol UDP
  lvs_method FNAT
  laddr_group_name l6
  real_server 2001:db8:1::6 53 { }
}
";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let keys: Vec<ServiceKey> = l.services.iter().map(|s| s.spec.key).collect();
    let v6 = |a: &str, p| tcp(a, p);
    assert_eq!(
        keys,
        [
            v6("2001:db8::1", 80),
            v6("2001:db8::10", 80),
            v6("2001:db8::20", 8080),
            v6("2001:db8::21", 8080),
            v6("2001:db8::30", 443),
            v6("2001:db8::31", 443),
            key(Protocol::Udp, "2001:db8::2", 53),
        ]
    );
    let first = &l.services[0];
    assert_eq!((first.spec.persistent, first.spec.prefix6), (Some(60), 64));
    let dests: Vec<DestSpec> = first.dests.iter().map(|(_, d)| *d).collect();
    assert_eq!(
        dests,
        [
            dest("2001:db8:1::2", 80, ForwardMode::Masq, 1),
            // keepalived's validate_check_config: a DR server's port is the VIP's.
            dest("2001:db8:1::3", 80, ForwardMode::Route, 1),
            dest("2001:db8:1::4", 80, ForwardMode::Tunnel, 1),
        ]
    );
    assert!(notices(&l).contains(&"21: WARNING - virtual server [2001:db8::1]:80 and real server [2001:db8:1::3]:8080 ports don't match - resetting".to_owned()), "{:?}", notices(&l));
    let rs = &l.conf.virtual_servers[0].real_servers[0];
    assert_eq!(rs.checkers[0].common.connect_ip, Some("2001:db8:1::9".parse().unwrap()));
    assert_eq!(l.services[1].dests[0].1, dest("2001:db8:1::5", 80, ForwardMode::Route, 1));
    let fnat = &l.services[6];
    assert_eq!(fnat.laddrs, ["2001:db8:2::10".parse::<IpAddr>().unwrap(), "2001:db8:2::11".parse().unwrap()]);
    assert!(l
        .requests()
        .contains(&Request::AddLaddr { service: fnat.spec.key, addr: "2001:db8:2::11".parse().unwrap() }));
}

#[test]
fn every_checker_is_parsed_with_its_options() {
    let l = load(&fixture("checks.conf")).unwrap();
    assert_eq!(l.notices, vec![]);
    let ssl = l.conf.ssl.as_ref().unwrap();
    assert_eq!(ssl.certificate.as_deref(), Some("/etc/keepalived/client.pem"));

    let [web, dns] = &l.services[..] else { panic!("{:?}", l.services) };
    assert_eq!(web.spec, ServiceSpec::new(tcp("198.18.0.100", 443), Scheduler::Wrr));
    let mut udp = ServiceSpec::new(key(Protocol::Udp, "198.18.0.100", 53), Scheduler::Sh);
    udp.one_packet = true;
    udp.sched_flags = sched_flags::FLAG2;
    assert_eq!(dns.spec, udp);
    let mut thresholds = dest("198.18.1.3", 53, ForwardMode::Masq, 1);
    (thresholds.upper, thresholds.lower) = (100, 50);
    assert_eq!(dns.dests[1].1, thresholds);

    let vs = &l.conf.virtual_servers[0];
    assert!(vs.alpha && vs.omega && vs.inhibit_on_failure);
    assert_eq!((vs.quorum, vs.hysteresis), (2, 1));
    assert_eq!(
        vs.quorum_up,
        Some(Script { command: "/usr/local/sbin/quorum-up.sh up".into(), run_as: None })
    );
    assert_eq!(vs.virtualhost.as_deref(), Some("www.example.net"));
    assert!(vs.sorry_server.as_ref().unwrap().inhibit);
    let CheckKind::Ssl(h) = &vs.real_servers[0].checkers[0].kind else { panic!() };
    assert_eq!(h.urls[1].status_code, [(200, 200), (300, 302)]);
    assert_eq!(h.urls[1].virtualhost.as_deref(), Some("health.example.net"));
    assert_eq!(vs.real_servers[0].checkers[0].common.delay_before_retry, Some(Duration::from_millis(1500)));
    let rs1 = &vs.real_servers[1];
    assert_eq!(rs1.inhibit_on_failure, Some(false));
    assert_eq!(
        rs1.notify_down.as_ref().map(|s| s.command.as_str()),
        Some("/usr/local/bin/down.sh 198.18.1.3")
    );
    let CheckKind::Http(h) = &rs1.checkers[0].kind else { panic!() };
    assert_eq!((h.http_protocol.as_deref(), rs1.checkers[0].common.connect_port), (Some("1.1"), Some(80)));
    assert_eq!(rs1.checkers[0].common.retry, Some(0), "a checker may say retry 0");

    let vs = &l.conf.virtual_servers[1];
    let CheckKind::Udp(u) = &vs.real_servers[0].checkers[0].kind else { panic!() };
    assert_eq!(
        (u.payload.as_deref(), u.require_reply.as_deref()),
        (Some(&[10u8, 11][..]), Some(&[10u8, 11][..]))
    );
    assert_eq!(u.min_reply_length, Some(2));
    let CheckKind::Misc(m) = &vs.real_servers[1].checkers[0].kind else { panic!() };
    assert_eq!(m.path, "/usr/local/bin/check.sh 198.18.1.3");
    assert_eq!((m.timeout, m.dynamic), (Some(Duration::from_secs(5)), true));
    assert_eq!(m.user, Some(("nobody".to_owned(), Some("nogroup".to_owned()))));
    assert_eq!(m.run_as, Some((65534, 65534)), "Debian's nobody and nogroup");
    let tcp_check = &vs.real_servers[2].checkers[0];
    assert_eq!(tcp_check.kind, CheckKind::Tcp);
    assert_eq!(
        (
            tcp_check.common.connect_ip,
            tcp_check.common.connect_port,
            tcp_check.common.bindto,
            tcp_check.common.retry
        ),
        (Some(ip("198.18.1.40").into()), Some(5353), Some(ip("198.18.1.1").into()), Some(2))
    );
}

#[test]
fn dpvs_fnat_takes_its_local_address_group() {
    let l = load(&fixture("dpvs-fnat.conf")).unwrap();
    let svc = tcp("198.18.0.100", 80);
    let laddr = |a: &str| Request::AddLaddr { service: svc, addr: ip(a).into() };
    assert_eq!(
        l.requests(),
        vec![
            Request::AddService { spec: ServiceSpec::new(svc, Scheduler::Rr) },
            Request::AddDest { service: svc, dest: dest("198.18.1.2", 8080, ForwardMode::FullNat, 100) },
            Request::AddDest { service: svc, dest: dest("198.18.1.3", 8080, ForwardMode::FullNat, 100) },
            laddr("198.18.2.10"),
            laddr("198.18.2.20"),
            laddr("198.18.2.21"),
        ]
    );
    assert_eq!(
        notices(&l),
        [
            "17: establish_timeout: not supported by gatewayd - ignored",
            "24: Unknown keyword 'nb_sock_retry' - ignored"
        ]
    );
    assert_eq!(l.conf.laddr_groups["laddr_g1"].addrs[0].1.as_deref(), Some("dpdk0"));
}

#[test]
fn includes_are_globs_relative_to_the_including_file() {
    let l = load(&fixture("split/keepalived.conf")).unwrap();
    let web = tcp("198.18.0.100", 80);
    let dns = key(Protocol::Udp, "198.18.0.100", 53);
    assert_eq!(
        l.requests(),
        vec![
            Request::AddService { spec: ServiceSpec::new(web, Scheduler::Rr) },
            Request::AddDest { service: web, dest: dest("198.18.0.3", 80, ForwardMode::Route, 1) },
            Request::AddDest { service: web, dest: dest("198.18.0.4", 80, ForwardMode::Route, 2) },
            Request::AddService { spec: ServiceSpec::new(dns, Scheduler::Rr) },
            Request::AddDest { service: dns, dest: dest("198.18.0.3", 53, ForwardMode::Route, 1) },
        ]
    );
    let rs = &l.conf.virtual_servers[0].real_servers[1];
    let file = std::fs::canonicalize(&rs.at.file).unwrap();
    assert_eq!((file, rs.at.line), (std::fs::canonicalize(fixture("split/servers/web-2.conf")).unwrap(), 1));
}

/// The error for `text` as file `k.conf`: `(k.conf: Line N) message`.
fn refused(text: &str) -> String {
    parse_str(Path::new("k.conf"), text).unwrap_err().to_string()
}

#[test]
fn broken_files_are_refused_with_their_line() {
    let vs = |body: &str| {
        format!("# a comment\nvirtual_server 198.18.0.100 80 {{\n    protocol TCP\n{body}\n}}\n")
    };
    let rs = "    real_server 198.18.1.2 80 {\n        weight 1\n    }";
    assert_eq!(refused(&vs("    lb_algo xyz")), "(k.conf: Line 4) Invalid lvs_scheduler 'xyz'");
    assert_eq!(
        refused(&vs("    lb_algo twos")),
        "(k.conf: Line 4) lvs_scheduler 'twos' is not supported by gatewayd"
    );
    assert_eq!(
        refused(&vs("    lb_kind XX")),
        "(k.conf: Line 4) PARSER : unknown [XX] routing method for virtual server."
    );
    assert_eq!(
        refused(&vs("    real_server 198.18.1.2 80 {\n        weight 2147483648\n    }")),
        "(k.conf: Line 5) Real server weight 2147483648 is outside range 0-2147483647"
    );
    assert_eq!(
        refused(&vs("    weight 0")),
        "(k.conf: Line 4) Virtual server weight 0 is outside range 1-2147483647"
    );
    assert_eq!(
        refused(&vs("    persistence_timeout x")),
        "(k.conf: Line 4) persistence_timeout 'x' invalid: not a number in [1, 2678400]"
    );
    assert_eq!(
        refused(&vs("    lb_algo\n")),
        "(k.conf: Line 4) Configuration line starting `lb_algo` is missing a parameter after keyword `lb_algo` at word position 2"
    );
    assert_eq!(refused(&vs(&format!("{rs}\n{rs}\n    }}"))), "(k.conf: Line 11) Extra '}' found");
    assert_eq!(refused(&format!("virtual_server 198.18.0.100 80 {{\n{rs}\n")), "(k.conf: Line 1) Missing '}': the block of 'virtual_server' is not closed (the last line read is k.conf: Line 4)");
    assert_eq!(
        refused("virtual_server 198.18.0.300 80 {\n}\n"),
        "(k.conf: Line 1) Invalid virtual server ip address 198.18.0.300"
    );
    assert_eq!(refused("vrrp_instnce VI_1 {\n}\n"), "(k.conf: Line 1) Unknown keyword 'vrrp_instnce'");
    assert_eq!(refused(&vs("    real_server 198.18.1.2 80 {\n        HTTP_GET {\n            connect_port 80\n        }\n    }")), "(k.conf: Line 5) HTTP_GET checker has no urls specified");
    assert_eq!(
        refused(&vs("    real_server 198.18.1.2 80 {\n        HTTP_GET {\n            url {\n                path /\n                status_code 99\n            }\n        }\n    }")),
        "(k.conf: Line 8) Invalid HTTP_GET status code '99'"
    );
    assert_eq!(
        refused(&vs("    laddr_group_name none\n    lb_kind FNAT\n    real_server 198.18.1.2 80 { }")),
        "(k.conf: Line 4) local_address_group none not found"
    );
    assert_eq!(
        refused("virtual_server group none {\n  protocol TCP\n  real_server 198.18.1.2 80 { }\n}\n"),
        "(k.conf: Line 1) virtual_server_group none not found"
    );
    assert_eq!(
        refused(&vs("    daddr_group_name deny")),
        "(k.conf: Line 4) daddr_group_name is not supported by gatewayd"
    );
    assert_eq!(refused(&vs("    weight 1 {\n    }")), "(k.conf: Line 4) 'weight' takes no '{' block");
    assert_eq!(
        refused("virtual_server 198.18.0.100 80\nreal_server 1.2.3.4\n"),
        "(k.conf: Line 1) Missing '{' at beginning of configuration block"
    );
    // keepalived 2.2.7 reads a `real_server` without a block as one that
    // takes the next line into its block: its --config-test reports this,
    // and the second server below would be lost (`Unknown keyword`).
    assert_eq!(
        refused(&vs("    real_server 198.18.1.2 80\n    real_server 198.18.1.3 80 {\n    }")),
        "(k.conf: Line 4) Missing '{' at beginning of configuration block"
    );
    let twice = format!("{}{}", vs(rs), vs(rs));
    assert_eq!(
        refused(&twice),
        "(k.conf: Line 9) virtual server TCP 198.18.0.100:80 is already defined at k.conf: Line 2"
    );
    assert_eq!(
        refused("virtual_server [2001:db8::1] 80 {\n}\n"),
        "(k.conf: Line 1) Invalid virtual server ip address [2001:db8::1]"
    );
    assert_eq!(refused(&vs("    ip_family inet5")), "(k.conf: Line 4) ip_family: inet or inet6");
    let v6 = |body: &str| {
        format!(
            "virtual_server 2001:db8::1 80 {{\n  protocol TCP\n{body}\n  real_server 2001:db8:1::2 80 {{ }}\n}}\n"
        )
    };
    assert_eq!(
        refused(&v6("  persistence_granularity 255.255.255.0")),
        "(k.conf: Line 1) Invalid IPv6 persistence_granularity specified - 255.255.255.0"
    );
    assert_eq!(
        refused(&vs(&format!("    persistence_granularity 64\n{rs}"))),
        "(k.conf: Line 2) Invalid IPv4 persistence_granularity specified - 64"
    );
    assert_eq!(
        refused(&v6("  persistence_granularity 129")),
        "(k.conf: Line 3) Invalid persistence_granularity specified - 129"
    );
    assert_eq!(
        refused("virtual_server_group g {\n  2001:db8::1-10000 80\n}\n"),
        "(k.conf: Line 2) Invalid range end 2001:db8::1-10000"
    );
    for short in ["198.18.0.5-5", "198.18.0.5-4", "2001:db8::1f-1f"] {
        assert_eq!(
            refused(&format!("virtual_server_group g {{\n  {short} 80\n}}\n")),
            format!("(k.conf: Line 2) Address range end is not greater than address range start - {short}")
        );
    }
    assert_eq!(
        refused("virtual_server_group g {\n  2001:db8::1-198.18.0.1 80\n}\n"),
        "(k.conf: Line 2) Invalid range 2001:db8::1-198.18.0.1: the ends are of different families"
    );
    assert_eq!(
        refused("virtual_server_group g {\n  2001:db8::/64 80\n}\nvirtual_server group g {\n  real_server 2001:db8:1::2 80 { }\n}\n"),
        "(k.conf: Line 1) virtual_server_group g stands for 18446744073709551616 addresses; gatewayd takes at most 4096"
    );
    assert_eq!(
        refused("local_address_group g {\n  10.0.0.0-10.255.255.255 dpdk0\n}\n"),
        "(k.conf: Line 2) local address group g: more than 1024 addresses"
    );
    // What a service takes: 1024 load, 1025 do not.
    let group =
        |n: u32| format!("local_address_group g {{\n  10.0.0.1-10.0.{}.{} dpdk0\n}}\n", n / 256, n % 256);
    assert!(parse_str(Path::new("k.conf"), &group(1024)).is_ok());
    assert_eq!(refused(&group(1025)), "(k.conf: Line 2) local address group g: more than 1024 addresses");
    assert_eq!(
        refused("virtual_server_group g {\n  10.0.0.0/8 80\n}\nvirtual_server group g {\n  real_server 10.1.1.1 80 { }\n}\n"),
        "(k.conf: Line 1) virtual_server_group g stands for 16777216 addresses; gatewayd takes at most 4096"
    );
}

#[test]
fn unknown_keywords_in_blocks_are_noted_as_keepalived_does_but_not_at_the_top() {
    let text = "virtual_server 198.18.0.100 80 {\n  protocol TCP\n  lb_algoo rr\n  real_server 198.18.1.2 80 {\n    \
                future_option 3\n    TCP_CHECK {\n      connect_port 80\n      url_path /\n    }\n  }\n}\n";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    assert_eq!(
        notices(&l)[..3],
        [
            "3: Unknown keyword 'lb_algoo' - ignored",
            "5: Unknown keyword 'future_option' - ignored",
            "8: Unknown keyword 'url_path' - ignored",
        ]
    );
    assert_eq!(l.services.len(), 1);
    // An unknown keyword with a block: keepalived reports the '{' as
    // unexpected and takes the block's '}' as TCP_CHECK's end, so the
    // rest moves a level up and the second server is lost.
    let text = "virtual_server 198.18.0.100 80 {\n  protocol TCP\n  real_server 198.18.1.2 80 {\n    TCP_CHECK {\n      \
                url {\n        path /\n      }\n    }\n  }\n  real_server 198.18.1.3 80 {\n  }\n}\n";
    assert_eq!(
        refused(text),
        "(k.conf: Line 5) Unknown keyword 'url' opens a block: keepalived reads its lines as the enclosing block's and ends that block at its '}'"
    );
    assert_eq!(
        refused("virtual_sever 198.18.0.100 80 {\n}\n"),
        "(k.conf: Line 1) Unknown keyword 'virtual_sever'"
    );
}

/// keepalived's weights go to `IPVS_WEIGHT_LIMIT` (`INT32_MAX`), beyond
/// ipvsadm's 65535: a real server's own, and the virtual server's that a
/// real server without one takes.
#[test]
fn weights_go_up_to_keepalived_s_limit() {
    let l = parse_str(
        Path::new("k.conf"),
        "virtual_server 198.18.0.100 80 {\n  protocol TCP\n  lb_kind DR\n  weight 70000\n  \
         real_server 198.18.1.2 80 {\n    weight 2147483647\n  }\n  real_server 198.18.1.3 80 { }\n}\n",
    )
    .unwrap();
    let svc = tcp("198.18.0.100", 80);
    let dests: Vec<Request> =
        l.requests().into_iter().filter(|r| matches!(r, Request::AddDest { .. })).collect();
    assert_eq!(
        dests,
        [
            Request::AddDest {
                service: svc,
                dest: dest("198.18.1.2", 80, ForwardMode::Route, 2_147_483_647)
            },
            Request::AddDest { service: svc, dest: dest("198.18.1.3", 80, ForwardMode::Route, 70000) },
        ]
    );
}

#[test]
fn keepalived_defaults_are_applied_and_said() {
    let l = parse_str(
        Path::new("k.conf"),
        "virtual_server 198.18.0.100 80 {\n  ops\n  real_server 198.18.1.2 80 { }\n  real_server 198.18.1.2 80 { }\n}\nvirtual_server 198.18.0.100 81 {\n}\n",
    )
    .unwrap();
    let svc = key(Protocol::Udp, "198.18.0.100", 80);
    let mut spec = ServiceSpec::new(svc, Scheduler::Wlc);
    spec.one_packet = true;
    assert_eq!(
        l.requests(),
        vec![
            Request::AddService { spec },
            Request::AddDest { service: svc, dest: dest("198.18.1.2", 80, ForwardMode::Masq, 1) }
        ]
    );
    assert_eq!(
        notices(&l),
        [
            "1: Virtual server 198.18.0.100:80: no protocol set - defaulting to UDP",
            "1: Virtual server 198.18.0.100:80: no scheduler set, setting default 'wlc'",
            "1: Virtual server 198.18.0.100:80: no forwarding method set, setting default NAT",
            "4: VS UDP 198.18.0.100:80: real server 198.18.1.2:80 is duplicated - removing second rs",
            "6: Virtual server 198.18.0.100:81: no real servers - ignoring",
        ]
    );
}

#[test]
fn dpvs_syn_proxy_turns_on_synproxy_for_tcp_and_is_noted_for_udp() {
    let text = "virtual_server 198.18.0.100 80 {\n lb_algo rr\n lb_kind FNAT\n protocol TCP\n syn_proxy\n \
                real_server 198.18.1.2 80 {\n weight 1\n }\n}\n\
                virtual_server 198.18.0.100 53 {\n lb_algo rr\n lb_kind FNAT\n protocol UDP\n syn_proxy\n \
                real_server 198.18.1.2 53 {\n weight 1\n }\n}\n";
    let l = parse_str(Path::new("/tmp/keepalived.conf"), text).unwrap();
    let specs: Vec<_> = l
        .requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::AddService { spec } => Some((spec.key.proto, spec.synproxy)),
            _ => None,
        })
        .collect();
    assert_eq!(specs, [(Protocol::Tcp, true), (Protocol::Udp, false)]);
    assert!(
        notices(&l).iter().any(|n| n.ends_with("syn_proxy requires TCP - ignoring")),
        "{:?}",
        notices(&l)
    );
}

/// keepalived 2.1+'s tunnel options on `lvs_method TUN` (check_parser.c
/// `svr_forwarding_handler`): a virtual server's are its real servers'
/// default, a real server's own `lvs_method` replaces them, and its
/// messages for what it refuses.
#[test]
fn tun_type_gue_and_gre_options_reach_the_real_servers() {
    use gw_proto::{TunnelCsum, TunnelEncap};
    let text = "\
virtual_server 198.18.0.100 80 {
  protocol TCP
  lvs_method TUN type gue port 6080 csum
  real_server 198.18.1.2 80 { }
  real_server 198.18.1.3 80 {
    lvs_method TUN type gre
  }
  real_server 198.18.1.4 80 {
    lvs_method TUN type gue port 5555 remcsum
  }
  real_server 198.18.1.5 80 {
    lvs_method DR type gre csum
  }
}
";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let tunnels: Vec<(ForwardMode, TunnelEncap)> = l
        .requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::AddDest { dest, .. } => Some((dest.mode, dest.tunnel)),
            _ => None,
        })
        .collect();
    assert_eq!(
        tunnels,
        [
            (ForwardMode::Tunnel, TunnelEncap::Gue { port: 6080, csum: TunnelCsum::Csum }),
            (ForwardMode::Tunnel, TunnelEncap::Gre { csum: TunnelCsum::NoCsum }),
            (ForwardMode::Tunnel, TunnelEncap::Gue { port: 5555, csum: TunnelCsum::RemCsum }),
            // keepalived reads the options after any method; IPVS uses them for TUN only.
            (ForwardMode::Route, TunnelEncap::Ipip),
        ]
    );
    let vs = |m: &str| format!("virtual_server 198.18.0.100 80 {{\n  protocol TCP\n  lvs_method {m}\n}}\n");
    for (m, want) in [
        ("TUN type", "Missing tunnel type for virtual server."),
        ("TUN type vxlan", "Unknown tunnel type vxlan for virtual server."),
        ("TUN type gue port", "Missing port for virtual server gue tunnel."),
        ("TUN type gue port 0", "Invalid gue tunnel port 0 for virtual server."),
        ("TUN type gue", "gue tunnels require port, otherwise cannot have port."),
        ("TUN type gre port 6080", "gue tunnels require port, otherwise cannot have port."),
        ("TUN csum", "ipip tunnels do not support checksum option."),
        ("TUN type gre remcsum", "gre tunnels do not support remote checksum option."),
        ("TUN type gre fast", "Invalid tunnel option fast for virtual server."),
    ] {
        assert_eq!(refused(&vs(m)), format!("(k.conf: Line 3) {want}"), "{m}");
    }
}

/// keepalived's corrections, each with its warning (`check_parser.c`'s
/// `rs_end_handler`/`vs_end_handler`, `check_data.c`'s
/// `validate_check_config`): a NAT or DR server of the other family is
/// skipped (a TUN one too here: gatewayd cannot tunnel across families;
/// FULLNAT's NAT64, an IPv4 server behind an IPv6 VIP, is kept), and so is
/// such a sorry server; a quorum above the total weight is lowered to it
/// and the hysteresis below it. The file loads, as keepalived runs it.
#[test]
fn servers_of_the_other_family_are_skipped_and_the_quorum_lowered_as_keepalived_does() {
    let text = "\
virtual_server 2001:db8::1 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  quorum 5
  hysteresis 9
  sorry_server 198.18.1.9 80
  real_server 198.18.1.2 80 { }
  real_server 2001:db8:1::2 80 {
    weight 2
  }
  real_server 198.18.1.3 80 {
    lvs_method TUN
  }
  real_server 198.18.1.4 80 {
    lvs_method FNAT
  }
}
";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let dests: Vec<DestSpec> = l.services[0].dests.iter().map(|(_, d)| *d).collect();
    assert_eq!(
        dests,
        [dest("2001:db8:1::2", 80, ForwardMode::Masq, 2), dest("198.18.1.4", 80, ForwardMode::FullNat, 1)]
    );
    assert_eq!(l.conf.virtual_servers[0].sorry_server, None);
    assert_eq!((l.conf.virtual_servers[0].quorum, l.conf.virtual_servers[0].hysteresis), (3, 2));
    assert_eq!(
        notices(&l),
        [
            "8: Address family of virtual server and real server 198.18.1.2 don't match - skipping real server.",
            "12: real server 198.18.1.3: a tunnel of another family is not supported by gatewayd - skipping real server.",
            "7: Address family of virtual server and sorry server 198.18.1.9 don't match - skipping sorry server.",
            "1: Warning - quorum 5 for [2001:db8::1]:80 exceeds total weight of real servers 3, reducing quorum to 3",
            "1: Virtual server [2001:db8::1]:80: hysteresis 9 >= quorum 3; setting hysteresis to 2",
        ]
    );
}

/// keepalived's handlers: a virtual server's `alpha`, `omega`,
/// `ha_suspend` and `inhibit_on_failure` read no argument (`alpha off` is
/// on, noted); a real server's take one. `lb_kind` is a virtual server's
/// keyword only: in a real server it is unknown and ignored.
#[test]
fn virtual_server_switches_ignore_their_argument_and_lb_kind_is_not_a_real_servers() {
    let text = "\
virtual_server 198.18.0.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind DR
  alpha off
  omega
  real_server 198.18.1.2 80 {
    lb_kind NAT
    alpha off
  }
}
";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let vs = &l.conf.virtual_servers[0];
    assert!(vs.alpha && vs.omega);
    assert_eq!(vs.real_servers[0].alpha, Some(false), "a real server's alpha takes its argument");
    assert_eq!(l.services[0].dests[0].1.mode, ForwardMode::Route, "the real server's lb_kind is ignored");
    let n = notices(&l);
    assert!(
        n.contains(&"5: alpha: keepalived reads no argument here - 'off' ignored, on".to_owned()),
        "{n:?}"
    );
    assert!(n.iter().any(|m| m.starts_with("8: ") && m.contains("lb_kind")), "{n:?}");
}

/// A checker of a link-local address needs the interface to leave by
/// (keepalived's `bind_if`, without which it drops the checker); gatewayd's
/// checks do not bind to one, so it is skipped with a notice.
#[test]
fn a_link_local_checker_is_skipped() {
    let text = "\
virtual_server 2001:db8::1 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 2001:db8:1::2 80 {
    TCP_CHECK {
      connect_ip fe80::2
      bind_if eth0
    }
    HTTP_GET {
      url {
        path /
      }
    }
  }
}
";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let rs = &l.conf.virtual_servers[0].real_servers[0];
    assert_eq!(rs.checkers.len(), 1, "the HTTP_GET to the server's own address stays");
    assert!(matches!(rs.checkers[0].kind, CheckKind::Http(_)));
    let n = notices(&l);
    assert!(n.iter().any(|m| m.starts_with("6: checker of link-local fe80::2")), "{n:?}");
}

/// keepalived's timing defaults depend on the checker: HTTP_GET and
/// SSL_GET retry after 3 s (`http_get_handler`), MISC_CHECK does not retry
/// (`check_misc.c`), the others once after 1 s; the warmup (the most a
/// checker waits before its first check) is its delay_loop.
#[test]
fn timing_defaults_are_each_checkers_own() {
    let text = "\
virtual_server 198.18.0.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  delay_loop 10
  real_server 198.18.1.2 80 {
    HTTP_GET {
      url {
        path /
      }
    }
    MISC_CHECK {
      misc_path /bin/true
    }
    TCP_CHECK {
      delay_loop 4
    }
  }
}
";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let vs = &l.conf.virtual_servers[0];
    let rs = &vs.real_servers[0];
    let t: Vec<Timing> = rs.checkers.iter().map(|c| c.effective(&rs.timing, &vs.timing)).collect();
    let s = Duration::from_secs;
    assert_eq!((t[0].retry, t[0].delay_before_retry, t[0].warmup), (1, s(3), s(10)), "HTTP_GET");
    assert_eq!((t[1].retry, t[1].delay_before_retry, t[1].warmup), (0, s(1), s(10)), "MISC_CHECK");
    assert_eq!((t[2].retry, t[2].delay_before_retry, t[2].warmup), (1, s(1), s(4)), "TCP_CHECK");
}

/// `nb_get_retry` is HTTP_GET's and SSL_GET's alone (`check_http.c`, the
/// deprecated `retry`, 0 allowed): pasted into a TCP_CHECK, or at the
/// virtual or real server's level, keepalived does not know it, and the
/// checker keeps its default of one retry.
#[test]
fn nb_get_retry_counts_only_in_http_and_ssl_checkers() {
    let text = "\
virtual_server 198.18.0.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  nb_get_retry 5
  real_server 198.18.1.2 80 {
    nb_get_retry 6
    TCP_CHECK {
      connect_timeout 3
      nb_get_retry 3
    }
    HTTP_GET {
      url {
        path /
      }
      nb_get_retry 0
    }
    SSL_GET {
      url {
        path /
      }
      nb_get_retry 2
    }
  }
}
";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let vs = &l.conf.virtual_servers[0];
    let rs = &vs.real_servers[0];
    let t: Vec<u32> = rs.checkers.iter().map(|c| c.effective(&rs.timing, &vs.timing).retry).collect();
    assert_eq!(t, [1, 0, 2], "TCP_CHECK keeps its default; HTTP_GET and SSL_GET take theirs, 0 included");
    assert_eq!(
        notices(&l),
        [
            "5: Unknown keyword 'nb_get_retry' - ignored",
            "7: Unknown keyword 'nb_get_retry' - ignored",
            "10: Unknown keyword 'nb_get_retry' - ignored",
            "16: nb_get_retry is deprecated - please use 'retry'",
            "22: nb_get_retry is deprecated - please use 'retry'",
        ]
    );
}

/// keepalived's scripts (`notify_script_init`, `misc_path_handler`): word 1
/// is the command (quoted with its arguments), words 2 and 3 of a notify
/// script its user and group. An unquoted argument taken for a user that
/// does not exist drops the script; a `MISC_CHECK` whose `user` does not
/// exist is removed; `misc_timeout` is whole seconds, 0 the default.
/// keepalived's default script user (`get_default_script_user`): a
/// `global_defs` `script_user` runs every script that names no user of
/// its own; one that names no user of this system drops those scripts.
/// Without it keepalived takes `keepalived_script` when that user exists
/// (this machine has none), else itself, but not under
/// `enable_script_security`, which then drops those scripts too.
#[test]
fn global_defs_script_user_runs_the_scripts_that_name_no_user() {
    let text = |user: &str, security: &str| {
        format!(
            "global_defs {{\n  router_id lb1\n  {user}\n  {security}\n}}\n\
             virtual_server 198.18.0.100 80 {{\n  protocol TCP\n  quorum_up /bin/up.sh\n  quorum_down /bin/qdown.sh root\n  \
             real_server 198.18.1.2 80 {{\n    notify_down /bin/down.sh\n    \
             MISC_CHECK {{\n      misc_path /bin/true\n    }}\n    MISC_CHECK {{\n      misc_path /bin/false\n      user root\n    }}\n  }}\n}}\n"
        )
    };
    let nobody = gw_keepalived::values::run_as("nobody", Some("nogroup")).expect("Debian's nobody");
    let root = Some((0, 0));
    let l = parse_str(Path::new("k.conf"), &text("script_user nobody nogroup", "enable_script_security"))
        .unwrap();
    assert!(l.conf.script_security);
    let vs = &l.conf.virtual_servers[0];
    assert_eq!(vs.quorum_up.as_ref().unwrap().run_as, Some(nobody));
    assert_eq!(vs.quorum_down.as_ref().unwrap().run_as, root, "its own user stays");
    let rs = &vs.real_servers[0];
    assert_eq!(rs.notify_down.as_ref().unwrap().run_as, Some(nobody));
    let misc: Vec<_> = rs
        .checkers
        .iter()
        .map(|c| match &c.kind {
            CheckKind::Misc(m) => (m.path.as_str(), m.run_as),
            _ => panic!(),
        })
        .collect();
    assert_eq!(misc, [("/bin/true", Some(nobody)), ("/bin/false", root)]);
    assert_eq!(
        notices(&l)[0],
        "1: global_defs: only script_user and enable_script_security are taken by gatewayd - the rest skipped"
    );

    // No such user: keepalived's error, and the scripts without a user go.
    let dropped = |l: &gw_keepalived::Loaded| {
        let vs = &l.conf.virtual_servers[0];
        assert_eq!((vs.quorum_up.is_none(), vs.quorum_down.is_some()), (true, true));
        let rs = &vs.real_servers[0];
        assert!(rs.notify_down.is_none());
        assert_eq!(rs.checkers.len(), 1, "the MISC_CHECK with its own user stays");
    };
    let l = parse_str(Path::new("k.conf"), &text("script_user gw-no-such-user", "")).unwrap();
    dropped(&l);
    let n = notices(&l);
    for m in [
        "3: Error setting global script uid/gid",
        "6: Failed to set default user for quorum_up script /bin/up.sh - ignoring",
        "10: Failed to set default user for notify_down script /bin/down.sh - ignoring",
        "12: Unable to set default user for misc script '/bin/true' - removing",
    ] {
        assert!(n.iter().any(|x| x == m), "{m:?} in {n:?}");
    }

    // Without script_user (and no keepalived_script user here): gatewayd's own.
    assert!(gw_keepalived::values::run_as("keepalived_script", None).is_none());
    let l = parse_str(Path::new("k.conf"), &text("", "")).unwrap();
    assert_eq!(l.conf.virtual_servers[0].quorum_up.as_ref().unwrap().run_as, None);
    assert!(!l.conf.script_security);
    assert!(notices(&l).contains(&"1: global_defs: not run by gatewayd - skipped".to_owned()));
    // keepalived's lvs_timeouts would change the session timeouts: said.
    let l = parse_str(Path::new("k.conf"), &text("lvs_timeouts tcp 7200 tcpfin 120 udp 300", "")).unwrap();
    assert_eq!(
        notices(&l)[..2],
        [
            "3: lvs_timeouts: not applied by gatewayd - set the session timeouts in [timeouts] or with gwctl --set",
            "1: global_defs: not run by gatewayd - skipped",
        ]
    );
    // ... but not under script security: no default user at all.
    let l = parse_str(Path::new("k.conf"), &text("", "enable_script_security")).unwrap();
    dropped(&l);
    let n = notices(&l);
    assert!(n.contains(&"6: Unable to set default user keepalived_script for script".to_owned()), "{n:?}");
}

#[test]
fn scripts_take_one_command_word_then_a_user_and_group() {
    let text = "\
virtual_server 198.18.0.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  quorum_up \"/bin/up.sh UP\" root
  quorum_down /bin/qdown.sh nobody nogroup
  real_server 198.18.1.2 80 {
    notify_up \"/bin/up.sh UP\" root
    notify_down /bin/down.sh DOWN
    MISC_CHECK {
      misc_path /bin/chk a b
      misc_timeout 0
    }
  }
  real_server 198.18.1.3 80 {
    MISC_CHECK {
      misc_path /bin/true
      user gw-no-such-user
    }
  }
}
";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let vs = &l.conf.virtual_servers[0];
    assert_eq!(vs.quorum_up, Some(Script { command: "/bin/up.sh UP".into(), run_as: Some((0, 0)) }));
    assert_eq!(
        vs.quorum_down,
        Some(Script { command: "/bin/qdown.sh".into(), run_as: Some((65534, 65534)) })
    );
    let rs = &vs.real_servers[0];
    assert_eq!(rs.notify_up, Some(Script { command: "/bin/up.sh UP".into(), run_as: Some((0, 0)) }));
    assert_eq!(rs.notify_down, None, "DOWN is no user: the script is dropped");
    let CheckKind::Misc(m) = &rs.checkers[0].kind else { panic!() };
    assert_eq!((m.path.as_str(), m.timeout), ("/bin/chk", None));
    assert!(vs.real_servers[1].checkers.is_empty(), "a MISC_CHECK of no such user is removed");
    assert_eq!(
        notices(&l),
        [
            "9: Invalid user/group for notify_down script /bin/down.sh - ignoring",
            "11: misc_path: 'a b' is not part of the command (quote the command with its arguments) - ignored",
            "16: Failed to set uid/gid for misc checker script '/bin/true' - removing",
        ]
    );
    // keepalived's strtoul reads 1.5 as 1, with a warning; a word with no
    // number at all is refused.
    let l = parse_str(Path::new("k.conf"), &text.replace("misc_timeout 0", "misc_timeout 1.5")).unwrap();
    let CheckKind::Misc(m) = &l.conf.virtual_servers[0].real_servers[0].checkers[0].kind else { panic!() };
    assert_eq!(m.timeout, Some(Duration::from_secs(1)));
    assert!(notices(&l).contains(&"12: WARNING - invalid number '1.5'".to_string()), "{:?}", notices(&l));
    let e = refused(&text.replace("misc_timeout 0", "misc_timeout soon"));
    assert!(e.contains("Invalid misc_timeout value 'soon'"), "{e}");
    // A repeated script keyword: the first stays, as in keepalived; one
    // dropped for its user leaves room for the next.
    let twice = text
        .replace("  quorum_down /bin/qdown.sh", "  quorum_up /bin/second.sh\n  quorum_down /bin/qdown.sh")
        .replace(
            "    notify_down /bin/down.sh DOWN\n",
            "    notify_down /bin/down.sh DOWN\n    notify_down /bin/d2.sh\n",
        );
    let l = parse_str(Path::new("k.conf"), &twice).unwrap();
    let vs = &l.conf.virtual_servers[0];
    assert_eq!(vs.quorum_up, Some(Script { command: "/bin/up.sh UP".into(), run_as: Some((0, 0)) }));
    assert_eq!(vs.real_servers[0].notify_down, Some(Script { command: "/bin/d2.sh".into(), run_as: None }));
    let n = notices(&l);
    assert!(
        n.contains(&"6: quorum_up script already specified - ignoring /bin/second.sh".to_string()),
        "{n:?}"
    );
}

/// Script lines keepalived cannot split (`alloc_strvec_quoted_escaped`:
/// here an unmatched quote): a notify script is dropped
/// with keepalived's notice, a MISC_CHECK without a script it can run is
/// refused as one without `misc_path`; escapes reach the words.
#[test]
fn scripts_keepalived_cannot_split_are_dropped_or_refused() {
    let text = r#"
virtual_server 198.18.0.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  quorum_up "/bin/up.sh 'a"
  quorum_down "/bin/down.sh it\'s"
  real_server 198.18.1.2 80 {
    notify_up "/bin/echo a\ b\tc"
    MISC_CHECK {
      misc_path "/bin/check \x41"
    }
  }
}
"#;
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let vs = &l.conf.virtual_servers[0];
    assert_eq!(vs.quorum_up, None);
    assert_eq!(
        notices(&l),
        ["6: Unable to parse script '/bin/up.sh 'a' - ignoring (String '/bin/up.sh 'a': missing terminating ')"]
    );
    let down = vs.quorum_down.as_ref().unwrap();
    assert_eq!(gw_keepalived::values::split_command(&down.command), ["/bin/down.sh", "it's"]);
    let rs = &vs.real_servers[0];
    let up = rs.notify_up.as_ref().unwrap();
    assert_eq!(gw_keepalived::values::split_command(&up.command), ["/bin/echo", "a b\tc"]);
    let CheckKind::Misc(m) = &rs.checkers[0].kind else { panic!() };
    assert_eq!(gw_keepalived::values::split_command(&m.path), ["/bin/check", "A"]);
    let e = refused(&text.replace("\\x41", "'x"));
    assert!(
        e.contains("MISC_CHECK has no misc_path it can run: String '/bin/check 'x': missing terminating '"),
        "{e}"
    );
}

/// A script's line as keepalived reads it twice (`alloc_strvec_quoted`,
/// then `alloc_strvec_quoted_escaped` on the command): escaped double
/// quotes inside the quoted command stay in it (and are then characters of
/// their words, not quotes), single quotes group as double ones do, a `#`
/// after an escaped quote is still inside the quotes (`decomment` skips
/// the character after a backslash), and the user after such a command is
/// the user. Before, the command ended at the escaped quote and the next
/// word was taken for the user.
#[test]
fn script_lines_are_read_as_keepalived_reads_them() {
    let text = r##"
virtual_server 198.18.0.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  quorum_up "/usr/bin/logger \"quorum up\""
  quorum_down '/bin/echo a b' nobody
  real_server 198.18.1.2 80 {
    notify_up "/bin/echo \"x\" y" root
    MISC_CHECK {
      misc_path "/bin/check \"#1\" 'two words'"
    }
  }
}
"##;
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    assert_eq!(notices(&l), Vec::<String>::new());
    let split = |s: &Option<Script>| gw_keepalived::values::split_command(&s.as_ref().unwrap().command);
    let vs = &l.conf.virtual_servers[0];
    // An escaped quote is a character of the word, not a quote.
    assert_eq!(split(&vs.quorum_up), ["/usr/bin/logger", "\"quorum", "up\""]);
    assert_eq!(split(&vs.quorum_down), ["/bin/echo", "a", "b"]);
    assert_eq!(vs.quorum_down.as_ref().unwrap().run_as, Some((65534, 65534)));
    let rs = &vs.real_servers[0];
    assert_eq!(split(&rs.notify_up), ["/bin/echo", "\"x\"", "y"]);
    assert_eq!(rs.notify_up.as_ref().unwrap().run_as, Some((0, 0)));
    let CheckKind::Misc(m) = &rs.checkers[0].kind else { panic!() };
    assert_eq!(gw_keepalived::values::split_command(&m.path), ["/bin/check", "\"#1\"", "two words"]);
}

/// Values keepalived takes that gatewayd refused before: `http_protocol
/// 1.0c`, a `status_code` with no code (the default stays), and UDP hex in
/// keepalived's free format (`read_hex_str`: blanks, one-digit bytes, `x`
/// nibbles in a required reply).
#[test]
fn keepalived_value_formats_are_taken() {
    let text = "\
virtual_server 198.18.0.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 198.18.1.2 80 {
    HTTP_GET {
      http_protocol 1.0c
      url {
        path /
        status_code
      }
    }
    UDP_CHECK {
      payload 01 02 3
      require_reply 0a x1 4x
    }
  }
}
";
    let l = parse_str(Path::new("k.conf"), text).unwrap();
    let rs = &l.conf.virtual_servers[0].real_servers[0];
    let CheckKind::Http(h) = &rs.checkers[0].kind else { panic!() };
    assert_eq!((h.http_protocol.as_deref(), h.urls[0].status_code.len()), (Some("1.0c"), 0));
    let CheckKind::Udp(u) = &rs.checkers[1].kind else { panic!() };
    assert_eq!(u.payload.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(u.require_reply.as_deref(), Some(&[0x0a, 0x01, 0x40][..]));
    assert_eq!(u.reply_mask.as_deref(), Some(&[0x00, 0xf0, 0x0f][..]));
    let e = refused(&text.replace("payload 01 02 3", "payload 0x01"));
    assert!(e.contains("Invalid hex string for UDP_CHECK payload"), "{e}");
}

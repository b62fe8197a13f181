//! `-S`: the table as rules that `-R` (and gatewayd's rules file) read back.
//!
//! The lines are ipvsadm 1.31's `print_service_entry` with `FMT_RULE` and
//! `FMT_NUMERIC` (gwctl never resolves names, so `-S` is always `ipvsadm -S -n`):
//!
//! ```text
//! -A -t VIP:PORT -s SCHED [-p TIMEOUT] [-M MASK] [-o] [-b FLAGS]
//! -a -t VIP:PORT -r RIP:PORT -g|-m|-b -w WEIGHT [-x UPPER] [-y LOWER]
//! -a -t VIP:PORT -r RIP:PORT -i -w WEIGHT --tun-type ipip [-x UPPER] [-y LOWER]
//! -a -t VIP:PORT -r RIP:PORT -i -w WEIGHT --tun-type gue --tun-port P --tun-nocsum|--tun-csum|--tun-remcsum [-x ..] [-y ..]
//! -a -t VIP:PORT -r RIP:PORT -i -w WEIGHT --tun-type gre --tun-nocsum|--tun-csum [-x ..] [-y ..]
//! --add-laddr -z LIP -t VIP:PORT
//! ```
//!
//! ipvsadm loses three things when saving, which gwctl keeps so that
//! `-S | -C | -R` gives back the same table: real-server thresholds (`-x`,
//! `-y`, written only when set), the mask of a service that is not persistent
//! (`-M` is written whenever it is not 255.255.255.255), and flag-3 of an sh or
//! mh service. FULLNAT servers are `-b` (DPVS's `fwd_switch`) and FULLNAT local
//! addresses follow each service as DPVS's `--add-laddr` commands. The timeouts
//! are not saved, as in ipvsadm.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use gw_proto::{ClientAddr, ForwardMode, Protocol, ServiceInfo, ServiceKey};

use super::Names;
use crate::values::sched_flag_names;

/// `-S -n`: appends the rules that rebuild `services`, in the order given.
pub fn save(out: &mut String, services: &[ServiceInfo]) {
    save_with(out, services, &Names::numeric());
}

/// [`save`], with addresses and ports shown as `names` says (`-S` without `-n`).
pub fn save_with(out: &mut String, services: &[ServiceInfo], names: &Names) {
    let dests: usize = services.iter().map(|s| s.dests.len() + s.laddrs.len()).sum();
    out.reserve(80 * (services.len() + dests));
    for svc in services {
        let spec = &svc.spec;
        out.push_str("-A ");
        service_arg(out, &spec.key, names);
        let _ = write!(out, " -s {}", spec.scheduler);
        if let Some(timeout) = spec.persistent {
            let _ = write!(out, " -p {timeout}");
        }
        // ipvsadm: `-M` as a dotted mask for IPv4, a prefix length for IPv6.
        if spec.key.addr.is_ipv6() {
            if spec.prefix6 != gw_proto::FULL_PREFIX6 {
                let _ = write!(out, " -M {}", spec.prefix6);
            }
        } else if spec.netmask != Ipv4Addr::BROADCAST {
            let _ = write!(out, " -M {}", spec.netmask);
        }
        if spec.one_packet {
            out.push_str(" -o");
        }
        if let Some(flags) = sched_flag_names(spec.scheduler, spec.sched_flags) {
            let _ = write!(out, " -b {flags}");
        }
        match spec.client_addr {
            ClientAddr::None => {}
            ClientAddr::Toa => out.push_str(" --toa"),
            ClientAddr::ProxyV1 => out.push_str(" --proxy-protocol v1"),
            ClientAddr::ProxyV2 => out.push_str(" --proxy-protocol v2"),
        }
        if spec.synproxy {
            out.push_str(" -j enable");
        }
        out.push('\n');
        for d in &svc.dests {
            let d = &d.spec;
            out.push_str("-a ");
            service_arg(out, &spec.key, names);
            let switch = match d.mode {
                ForwardMode::FullNat => "-b",
                ForwardMode::Masq => "-m",
                ForwardMode::Route => "-g",
                ForwardMode::Tunnel => "-i",
            };
            out.push_str(" -r ");
            names.push(out, d.addr, d.port, spec.key.proto);
            let _ = write!(out, " {switch} -w {}", d.weight);
            if d.mode == ForwardMode::Tunnel {
                // ipvsadm 1.31's print_tunnel_rule: the tunnel type of every
                // tunnel server, gue's port, gue's and gre's checksum option.
                out.push(' ');
                out.push_str(&d.tunnel.rule());
            }
            if d.upper != 0 {
                let _ = write!(out, " -x {}", d.upper);
            }
            if d.lower != 0 {
                let _ = write!(out, " -y {}", d.lower);
            }
            out.push('\n');
        }
        for lip in &svc.laddrs {
            let _ = write!(out, "--add-laddr -z {} ", gw_proto::Ntop(*lip));
            service_arg(out, &spec.key, names);
            out.push('\n');
        }
    }
}

/// `-t VIP:PORT` or `-u VIP:PORT` (ipvsadm's `option_from_protocol`).
fn service_arg(out: &mut String, k: &ServiceKey, names: &Names) {
    let opt = match k.proto {
        Protocol::Tcp => "-t ",
        Protocol::Udp => "-u ",
    };
    out.push_str(opt);
    names.push(out, k.addr, k.port, k.proto);
}

#[cfg(test)]
mod tests {
    use gw_proto::{DestInfo, DestSpec, Rates, Request, Scheduler, ServiceSpec, Stats};

    use super::*;
    use crate::rules::parse_rule_lines;
    use crate::services::PortNames;

    fn dest(spec: DestSpec) -> DestInfo {
        DestInfo {
            spec,
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            stats: Stats::default(),
            rates: Rates::default(),
        }
    }

    fn info(spec: ServiceSpec, dests: Vec<DestSpec>, laddrs: Vec<std::net::IpAddr>) -> ServiceInfo {
        ServiceInfo {
            spec,
            dests: dests.into_iter().map(dest).collect(),
            laddrs,
            stats: Stats::default(),
            rates: Rates::default(),
            health: vec![],
        }
    }

    fn key(proto: Protocol, port: u16) -> ServiceKey {
        ServiceKey { proto, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port }
    }

    fn rip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 1, last)
    }

    /// A table that uses every option gwctl has.
    fn table() -> Vec<ServiceInfo> {
        let every_option = ServiceSpec {
            key: key(Protocol::Udp, 53),
            scheduler: Scheduler::Sh,
            persistent: Some(600),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            prefix6: gw_proto::FULL_PREFIX6,
            one_packet: true,
            sched_flags: 3,
            client_addr: ClientAddr::None,
            synproxy: false,
        };
        let mut with_mask = ServiceSpec::new(key(Protocol::Tcp, 443), Scheduler::Mh);
        with_mask.netmask = Ipv4Addr::new(255, 255, 0, 0);
        with_mask.sched_flags = 6;
        with_mask.client_addr = ClientAddr::ProxyV2;
        with_mask.synproxy = true;
        let mut pp1 = ServiceSpec::new(key(Protocol::Tcp, 8001), Scheduler::Rr);
        pp1.client_addr = ClientAddr::ProxyV1;
        let mut toa = ServiceSpec::new(key(Protocol::Tcp, 8002), Scheduler::Rr);
        toa.client_addr = ClientAddr::Toa;
        let mut bare_persistent = ServiceSpec::new(key(Protocol::Tcp, 0), Scheduler::Wlc);
        bare_persistent.persistent = Some(360);
        vec![
            info(
                ServiceSpec::new(key(Protocol::Tcp, 80), Scheduler::Wrr),
                vec![
                    DestSpec::new(rip(2), 8080, ForwardMode::FullNat, 3),
                    DestSpec { upper: 1000, lower: 800, ..DestSpec::new(rip(3), 80, ForwardMode::Masq, 0) },
                    DestSpec { upper: 10, ..DestSpec::new(rip(4), 80, ForwardMode::Route, 65535) },
                    DestSpec { lower: 2, ..DestSpec::new(rip(5), 80, ForwardMode::Tunnel, 1) },
                ],
                vec![Ipv4Addr::new(198, 18, 2, 1).into(), Ipv4Addr::new(198, 18, 2, 2).into()],
            ),
            info(with_mask, vec![], vec![]),
            info(pp1, vec![], vec![]),
            info(toa, vec![], vec![]),
            info(bare_persistent, vec![DestSpec::new(rip(6), 0, ForwardMode::Route, 1)], vec![]),
            info(
                every_option,
                vec![DestSpec::new(rip(7), 5353, ForwardMode::FullNat, 1)],
                vec![Ipv4Addr::new(198, 18, 2, 3).into()],
            ),
        ]
    }

    #[test]
    #[rustfmt::skip]
    fn rules_are_ipvsadms_save_format() {
        let mut out = String::new();
        save(&mut out, &table());
        assert_eq!(out, concat!(
            "-A -t 198.18.0.100:80 -s wrr\n",
            "-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -b -w 3\n",
            "-a -t 198.18.0.100:80 -r 198.18.1.3:80 -m -w 0 -x 1000 -y 800\n",
            "-a -t 198.18.0.100:80 -r 198.18.1.4:80 -g -w 65535 -x 10\n",
            "-a -t 198.18.0.100:80 -r 198.18.1.5:80 -i -w 1 --tun-type ipip -y 2\n",
            "--add-laddr -z 198.18.2.1 -t 198.18.0.100:80\n",
            "--add-laddr -z 198.18.2.2 -t 198.18.0.100:80\n",
            "-A -t 198.18.0.100:443 -s mh -M 255.255.0.0 -b mh-port,flag-3 --proxy-protocol v2 -j enable\n",
            "-A -t 198.18.0.100:8001 -s rr --proxy-protocol v1\n",
            "-A -t 198.18.0.100:8002 -s rr --toa\n",
            "-A -t 198.18.0.100:0 -s wlc -p 360\n",
            "-a -t 198.18.0.100:0 -r 198.18.1.6:0 -g -w 1\n",
            // Every service option at once, in ipvsadm's order.
            "-A -u 198.18.0.100:53 -s sh -p 600 -M 255.255.255.0 -o -b sh-fallback,sh-port\n",
            "-a -u 198.18.0.100:53 -r 198.18.1.7:5353 -b -w 1\n",
            "--add-laddr -z 198.18.2.3 -u 198.18.0.100:53\n",
        ));
        let mut out = String::new();
        save(&mut out, &[]);
        assert_eq!(out, "");
    }

    /// What a table means as requests: the requests that would build it.
    fn requests_for(services: &[ServiceInfo]) -> Vec<Request> {
        let mut reqs = Vec::new();
        for s in services {
            reqs.push(Request::AddService { spec: s.spec.clone() });
            for d in &s.dests {
                reqs.push(Request::AddDest { service: s.spec.key, dest: d.spec });
            }
            for &addr in &s.laddrs {
                reqs.push(Request::AddLaddr { service: s.spec.key, addr });
            }
        }
        reqs
    }

    #[test]
    fn saved_rules_parse_back_to_the_same_requests() {
        let table = table();
        let mut out = String::new();
        save(&mut out, &table);
        let parsed: Vec<Request> =
            parse_rule_lines(&out, &PortNames::builtin()).unwrap().into_iter().map(|r| r.request).collect();
        assert_eq!(parsed, requests_for(&table));
    }

    /// A TUN director saved by ipvsadm 1.31 (`print_service_entry`, FMT_RULE:
    /// `"-a %s -r %s %s -w %d --tun-type %s\n"` for ipip) restores, and gwctl
    /// saves it back byte for byte.
    #[test]
    #[rustfmt::skip]
    fn ipvsadms_tun_save_file_round_trips() {
        let ipvsadm_s = concat!(
            "-A -t 172.16.254.200:80 -s wlc\n",
            "-a -t 172.16.254.200:80 -r 10.0.0.2:80 -i -w 1 --tun-type ipip\n",
            "-a -t 172.16.254.200:80 -r 10.0.0.3:80 -i -w 3 --tun-type ipip\n",
        );
        let rules = parse_rule_lines(ipvsadm_s, &PortNames::builtin()).unwrap();
        let vip = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(172, 16, 254, 200).into(), port: 80 };
        let dests = vec![
            DestSpec::new(Ipv4Addr::new(10, 0, 0, 2), 80, ForwardMode::Tunnel, 1),
            DestSpec::new(Ipv4Addr::new(10, 0, 0, 3), 80, ForwardMode::Tunnel, 3),
        ];
        let table = vec![info(ServiceSpec::new(vip, Scheduler::Wlc), dests, vec![])];
        assert_eq!(rules.into_iter().map(|r| r.request).collect::<Vec<_>>(), requests_for(&table));
        let mut out = String::new();
        save(&mut out, &table);
        assert_eq!(out, ipvsadm_s);
    }

    #[test]
    fn every_scheduler_and_flag_round_trips() {
        let mut table = Vec::new();
        for (i, s) in Scheduler::ALL.into_iter().enumerate() {
            for flags in 0..8u8 {
                let port = 1000 + (i as u16) * 10 + u16::from(flags);
                let mut spec = ServiceSpec::new(key(Protocol::Tcp, port), s);
                spec.sched_flags = flags;
                spec.persistent = (flags % 2 == 0).then_some(u32::from(flags) + 1);
                table.push(info(
                    spec,
                    vec![DestSpec::new(rip(9), port, ForwardMode::Masq, u32::from(flags))],
                    vec![],
                ));
            }
        }
        let mut out = String::new();
        save(&mut out, &table);
        let parsed: Vec<Request> =
            parse_rule_lines(&out, &PortNames::builtin()).unwrap().into_iter().map(|r| r.request).collect();
        assert_eq!(parsed, requests_for(&table));
    }
}

//! Times gwctl's two large paths at 10,000 services of 10 real servers:
//! decoding gatewayd's answer, rendering `-L -n` (and `-S`) and parsing the
//! `-S` output back as `-R` does.
//! `cargo run --release -p gwctl --example scale`

use std::net::Ipv4Addr;
use std::time::Instant;

use gw_proto::{
    DestInfo, DestSpec, ForwardMode, Protocol, Response, Scheduler, ServiceInfo, ServiceKey, ServiceSpec,
};
use gwctl::resolve::ListFormat;
use gwctl::{render, rules, services::PortNames};

fn main() {
    let services: Vec<ServiceInfo> = (0..10_000u32)
        .map(|i| ServiceInfo {
            spec: ServiceSpec::new(
                ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(0x0a00_0000 + i).into(), port: 80 },
                Scheduler::Wlc,
            ),
            dests: (0..10u32)
                .map(|j| DestInfo {
                    spec: DestSpec::new(
                        Ipv4Addr::from(0x0b00_0000 + i * 16 + j),
                        8080,
                        ForwardMode::FullNat,
                        j,
                    ),
                    active_conns: u64::from(j),
                    inactive_conns: 0,
                    persist_conns: 0,
                    stats: Default::default(),
                    rates: Default::default(),
                })
                .collect(),
            laddrs: vec![Ipv4Addr::new(198, 18, 2, 1).into()],
            stats: Default::default(),
            rates: Default::default(),
            health: vec![],
        })
        .collect();
    let mut resp = Response::Services { conn_table_size: 1 << 20, services };

    let t = Instant::now();
    let wire = serde_json::to_vec(&resp).expect("encodes");
    println!("JSON encode (gatewayd's side): {} MB in {:?}", wire.len() >> 20, t.elapsed());
    let t = Instant::now();
    let back: Response = serde_json::from_slice(&wire).expect("decodes");
    println!("JSON decode by serde's derive: {:?}", t.elapsed());
    assert_eq!(back, resp);
    let t = Instant::now();
    let gwctl::client::Answer(fast) = serde_json::from_slice(&wire).expect("decodes");
    println!("JSON decode as gwctl does: {:?}", t.elapsed());
    assert_eq!(fast, resp);

    let t = Instant::now();
    render::sort(&mut resp);
    let Response::Services { services, .. } = &resp else { unreachable!() };
    let mut out = String::new();
    render::list(&mut out, Some(1 << 20), services, ListFormat::Plain, false);
    println!("-L -n: {} lines in {:?}", out.lines().count(), t.elapsed());

    let t = Instant::now();
    let mut rules_text = String::new();
    render::save(&mut rules_text, services);
    println!("-S: {} lines in {:?}", rules_text.lines().count(), t.elapsed());

    let t = Instant::now();
    let parsed = rules::parse_rule_lines(&rules_text, &PortNames::system()).expect("rules parse");
    println!("-R parse: {} requests in {:?}", parsed.len(), t.elapsed());
}

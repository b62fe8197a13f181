//! Persistence templates (`-p`, `-M`), quiescing (weight 0), one-packet
//! scheduling (`-o`) and connection thresholds (`-x`/`-y`) through the
//! worker, with IPVS's semantics.

mod common;

use std::net::Ipv4Addr;

use common::*;
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Response, Scheduler, ServiceSpec};

/// A TCP and UDP service on VIP:80, round robin over both real servers (NAT,
/// so the real server is visible in the frame), with `spec` options.
fn lab(edit: impl Fn(&mut ServiceSpec)) -> Lab {
    let mut lab = Lab::new(256, (1024, 65535));
    for proto in [Protocol::Tcp, Protocol::Udp] {
        let mut spec = ServiceSpec::new(key(proto), Scheduler::Rr);
        edit(&mut spec);
        lab.ok(Request::AddService { spec });
        // Last to first: each server added goes first (IPVS's list order).
        for rs in RS.into_iter().rev() {
            let dest = DestSpec::new(Ipv4Addr::from(rs), 8080, ForwardMode::Masq, 1);
            lab.ok(Request::AddDest { service: key(proto), dest });
        }
    }
    lab.learn_neighbours();
    lab
}

/// The real server a new TCP connection from `client:cport` goes to.
fn connect(lab: &mut Lab, client: [u8; 4], cport: u16) -> [u8; 4] {
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (client, cport), (VIP, 80), true, false));
    assert_eq!(out.len(), 1, "SYN from {client:?}:{cport} not forwarded");
    inspect(&out[0].1).3 .0
}

#[test]
fn a_persistent_client_keeps_its_server_across_connections() {
    let mut lab = lab(|s| s.persistent = Some(300));
    let first = connect(&mut lab, CLIENT, 40000);
    for cport in 40001..40010 {
        assert_eq!(connect(&mut lab, CLIENT, cport), first);
    }
    // Another client is scheduled on its own: round robin moves on.
    let other = connect(&mut lab, [198, 18, 0, 3], 40000);
    assert_ne!(other, first);
    let Response::Services { services, .. } = lab.control.query(Request::List { service: None }) else {
        panic!()
    };
    let tcp = services.iter().find(|s| s.spec.key.proto == Protocol::Tcp).unwrap();
    let persist: u64 = tcp.dests.iter().map(|d| d.persist_conns).sum();
    assert_eq!(persist, 2, "one template per client");
}

#[test]
fn the_netmask_groups_clients_into_one_template() {
    let mut lab = lab(|s| {
        s.persistent = Some(300);
        s.netmask = Ipv4Addr::new(255, 255, 255, 0);
    });
    let first = connect(&mut lab, [198, 18, 0, 2], 1000);
    for host in 3..10 {
        assert_eq!(connect(&mut lab, [198, 18, 0, host], 1000), first);
    }
}

#[test]
fn quiescing_a_server_stops_new_templates_but_keeps_existing_clients() {
    let mut lab = lab(|s| s.persistent = Some(300));
    let a = connect(&mut lab, [198, 18, 0, 2], 1000);
    let b = connect(&mut lab, [198, 18, 0, 3], 1000);
    assert_ne!(a, b);
    // Quiesce the first client's server.
    let dest = DestSpec::new(Ipv4Addr::from(a), 8080, ForwardMode::Masq, 0);
    lab.ok(Request::EditDest { service: key(Protocol::Tcp), dest });
    assert_eq!(connect(&mut lab, [198, 18, 0, 2], 1001), a, "its template still names the quiesced server");
    for host in 4..10 {
        assert_eq!(connect(&mut lab, [198, 18, 0, host], 1000), b, "new clients avoid it");
    }
}

#[test]
fn templates_expire_after_their_connections_and_the_timeout() {
    let mut lab = lab(|s| s.persistent = Some(10));
    let first = connect(&mut lab, CLIENT, 1000);
    // The SYN_RECV connection lives 60 s; the template outlives it by 10 s.
    lab.now += 65_000;
    lab.worker.tick(lab.now, &mut lab.io);
    let Response::Services { services, .. } = lab.control.query(Request::List { service: None }) else {
        panic!()
    };
    let tcp = services.iter().find(|s| s.spec.key.proto == Protocol::Tcp).unwrap();
    assert_eq!(
        tcp.dests.iter().map(|d| d.persist_conns).sum::<u64>(),
        1,
        "kept while it controlled a connection"
    );
    lab.now += 11_000;
    lab.worker.tick(lab.now, &mut lab.io);
    let Response::Services { services, .. } = lab.control.query(Request::List { service: None }) else {
        panic!()
    };
    let tcp = services.iter().find(|s| s.spec.key.proto == Protocol::Tcp).unwrap();
    assert_eq!(tcp.dests.iter().map(|d| d.persist_conns).sum::<u64>(), 0);
    // Round robin continues from where it was: the next client's choice is fresh.
    let next = connect(&mut lab, CLIENT, 2000);
    assert_ne!(next, first);
}

#[test]
fn a_deleted_servers_template_follows_the_new_choice() {
    let mut lab = lab(|s| s.persistent = Some(300));
    let a = connect(&mut lab, CLIENT, 1000);
    lab.ok(Request::DelDest { service: key(Protocol::Tcp), addr: Ipv4Addr::from(a).into(), port: 8080 });
    let b = connect(&mut lab, CLIENT, 1001);
    assert_ne!(a, b);
    assert_eq!(connect(&mut lab, CLIENT, 1002), b);
}

#[test]
fn one_packet_scheduling_schedules_every_datagram() {
    let mut lab = lab(|s| s.one_packet = true);
    let mut seen = vec![];
    for _ in 0..4 {
        let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
        seen.push(inspect(&out[0].1).3 .0);
    }
    assert_eq!(seen, vec![RS[0], RS[1], RS[0], RS[1]], "the same client port goes round robin");
    // TCP is not affected by -o.
    let a = connect(&mut lab, CLIENT, 7000);
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 7000), (VIP, 80), true, false));
    assert_eq!(inspect(&out[0].1).3 .0, a);
}

#[test]
fn an_upper_threshold_overloads_a_server_until_it_drops_below_three_quarters() {
    let mut lab = Lab::new(256, (1024, 65535));
    let spec = ServiceSpec::new(key(Protocol::Tcp), Scheduler::Rr);
    lab.ok(Request::AddService { spec });
    for (i, rs) in RS.iter().enumerate().rev() {
        let mut dest = DestSpec::new(Ipv4Addr::from(*rs), 8080, ForwardMode::Masq, 1);
        dest.upper = if i == 0 { 2 } else { 0 };
        lab.ok(Request::AddDest { service: key(Protocol::Tcp), dest });
    }
    lab.learn_neighbours();
    let picks: Vec<_> = (0..8).map(|p| connect(&mut lab, CLIENT, 1000 + p)).collect();
    assert_eq!(&picks[..3], &[RS[0], RS[1], RS[0]]);
    assert!(
        picks[3..].iter().all(|r| *r == RS[1]),
        "at 2 connections the first server is overloaded: {picks:?}"
    );
    // Its connections expire (SYN_RECV 60 s): below 3/4 of the threshold it is back.
    lab.now += 61_000;
    lab.worker.tick(lab.now, &mut lab.io);
    let later: Vec<_> = (0..2).map(|p| connect(&mut lab, CLIENT, 2000 + p)).collect();
    assert!(later.contains(&RS[0]), "{later:?}");
}

/// IPVS's rule when a server is edited: an upper threshold taken away
/// (`-e -x 0`) or raised clears the overload flag at once, where the
/// server used to stay skipped until one of its connections ended; a
/// lowered one does not, and the next connection bound at the threshold
/// sets the flag again.
#[test]
fn editing_the_upper_threshold_away_or_up_takes_an_overloaded_server_back_at_once() {
    let mut lab = Lab::new(256, (1024, 65535));
    let spec = ServiceSpec::new(key(Protocol::Tcp), Scheduler::Rr);
    lab.ok(Request::AddService { spec });
    let dest = |i: usize, upper: u32| {
        let mut d = DestSpec::new(Ipv4Addr::from(RS[i]), 8080, ForwardMode::Masq, 1);
        d.upper = upper;
        d
    };
    lab.ok(Request::AddDest { service: key(Protocol::Tcp), dest: dest(1, 0) });
    lab.ok(Request::AddDest { service: key(Protocol::Tcp), dest: dest(0, 2) });
    lab.learn_neighbours();
    let mut cport = 1000;
    let mut picks = |lab: &mut Lab, n: u16| -> Vec<[u8; 4]> {
        (0..n)
            .map(|_| {
                cport += 1;
                connect(lab, CLIENT, cport)
            })
            .collect()
    };
    assert_eq!(
        picks(&mut lab, 4),
        [RS[0], RS[1], RS[0], RS[1]],
        "2 connections: the first is now overloaded"
    );
    assert_eq!(picks(&mut lab, 2), [RS[1], RS[1]], "skipped");
    // Lowered from 2 to 1: still overloaded.
    lab.ok(Request::EditDest { service: key(Protocol::Tcp), dest: dest(0, 1) });
    assert_eq!(picks(&mut lab, 2), [RS[1], RS[1]], "a lowered threshold keeps the flag");
    // Raised to 3: back at once, and overloaded again at its third.
    lab.ok(Request::EditDest { service: key(Protocol::Tcp), dest: dest(0, 3) });
    assert_eq!(picks(&mut lab, 3), [RS[0], RS[1], RS[1]], "raised: one more, then skipped again");
    // Taken away: back for good.
    lab.ok(Request::EditDest { service: key(Protocol::Tcp), dest: dest(0, 0) });
    assert_eq!(picks(&mut lab, 4), [RS[0], RS[1], RS[0], RS[1]], "no threshold: round robin");
}

#[test]
fn a_port_zero_service_takes_every_port_and_shares_one_template() {
    let mut lab = Lab::new(256, (1024, 65535));
    let vip_all = gw_proto::ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(VIP).into(), port: 0 };
    let mut spec = ServiceSpec::new(vip_all, Scheduler::Rr);
    assert!(matches!(lab.control.handle(Request::AddService { spec: spec.clone() }), Response::Error { .. }));
    spec.persistent = Some(300);
    lab.ok(Request::AddService { spec });
    for rs in RS {
        let dest = DestSpec::new(Ipv4Addr::from(rs), 0, ForwardMode::Masq, 1);
        lab.ok(Request::AddDest { service: vip_all, dest });
    }
    lab.learn_neighbours();
    let mut seen = vec![];
    for (cport, vport) in [(1000, 80), (1001, 443), (1002, 22)] {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, vport), true, false));
        let (_, _, _, dst, _) = inspect(&out[0].1);
        assert_eq!(dst.1, vport, "the real-server port is the packet's");
        seen.push(dst.0);
    }
    assert!(seen.iter().all(|r| *r == seen[0]), "one template for all ports: {seen:?}");
}

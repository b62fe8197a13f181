//! A new SYN from a client address and port whose previous connection's
//! session still lingers (IPVS's `conn_reuse_mode`): through
//! `Worker<Vec<u8>>` with frames built and read by `etherparse`.

mod common;

use std::net::Ipv4Addr;

use common::*;
use etherparse::PacketBuilder;
use gw_core::counters::{Drop, Event};
use gw_core::engine::{ConnReuse, NoDest};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Response, Scheduler, ServiceKey, ServiceSpec};

const CPORT: u16 = 40_000;

#[derive(Clone, Copy)]
enum F {
    Syn,
    SynAck,
    Ack,
    FinAck,
    Rst,
}

fn frame(src_mac: [u8; 6], dst_mac: [u8; 6], s: ([u8; 4], u16), d: ([u8; 4], u16), f: F) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(s.0, d.0, 64).tcp(s.1, d.1, 1000, 64000);
    let b = match f {
        F::Syn => b.syn(),
        F::SynAck => b.syn().ack(1),
        F::Ack => b.ack(1),
        F::FinAck => b.fin().ack(1),
        F::Rst => b.rst(),
    };
    let mut out = vec![];
    b.write(&mut out, &[]).unwrap();
    out
}

/// A client packet of flow `CLIENT:CPORT -> VIP:80`; returns the real
/// server it went to and the local port (FULLNAT) it used, if forwarded.
fn client(lab: &mut Lab, f: F) -> Option<([u8; 4], u16)> {
    let out = lab.rx(0, frame(CLIENT_MAC, GW_OUT.0, (CLIENT, CPORT), (VIP, VPORT), f));
    out.first().map(|(port, fr)| {
        assert_eq!(*port, 1);
        let (_, _, src, dst, _) = inspect(fr);
        (dst.0, src.1)
    })
}

/// The real server `rs`'s packet to the local port `lport`.
fn server(lab: &mut Lab, rs: [u8; 4], lport: u16, f: F) {
    let i = RS.iter().position(|r| *r == rs).unwrap();
    let out = lab.rx(1, frame(RS_MAC[i], GW_IN.0, (rs, 8080), (LIP, lport), f));
    assert_eq!(out.len(), 1, "the reply reaches the client");
}

/// A handshake, then a close: `client_first` (FIN from the client, the
/// gateway ends in TIME_WAIT) or with an RST from the client (CLOSE).
/// Returns the real server.
fn connect_and_close(lab: &mut Lab, how: F) -> [u8; 4] {
    let (rs, lport) = client(lab, F::Syn).expect("SYN forwarded");
    server(lab, rs, lport, F::SynAck);
    client(lab, F::Ack).unwrap();
    match how {
        F::FinAck => {
            client(lab, F::FinAck).unwrap();
            server(lab, rs, lport, F::FinAck);
            client(lab, F::Ack).unwrap();
        }
        F::Rst => {
            client(lab, F::Rst).unwrap();
        }
        _ => {}
    }
    rs
}

/// The TCP service `spec` with both real servers (FULLNAT, port 8080) and the local address.
fn tcp_service(lab: &mut Lab, spec: ServiceSpec) {
    let tcp = spec.key;
    lab.ok(Request::AddService { spec });
    for rs in RS {
        let dest = DestSpec::new(Ipv4Addr::from(rs), 8080, ForwardMode::FullNat, 1);
        lab.ok(Request::AddDest { service: tcp, dest });
    }
    lab.ok(Request::AddLaddr { service: tcp, addr: Ipv4Addr::from(LIP).into() });
}

fn lab(reuse: ConnReuse) -> Lab {
    lab_with(reuse, NoDest::default())
}

fn lab_with(reuse: ConnReuse, nodest: NoDest) -> Lab {
    let mut lab = LabConfig { sessions: 64, conn_reuse: reuse, nodest, ..LabConfig::default() }
        .build()
        .with_services(Scheduler::Rr);
    lab.learn_neighbours();
    lab
}

/// The worker's live sessions (templates included): (state, real server).
fn conns(lab: &Lab) -> Vec<(String, Ipv4Addr)> {
    let t = lab.worker.engine.sessions();
    (0..t.capacity())
        .filter_map(|i| t.slot(i))
        .map(|s| (s.state.name().to_string(), Ipv4Addr::from(s.rip)))
        .collect()
}

/// (ActiveConn, InActConn) of real server `rs` of the TCP service, as `-L -n` lists them.
fn active_inactive(lab: &Lab, rs: [u8; 4]) -> (u64, u64) {
    let Response::Services { services, .. } = lab.control.query(Request::List { service: None }) else {
        panic!("listing")
    };
    let svc = services.iter().find(|s| s.spec.key.proto == Protocol::Tcp).unwrap();
    let d = svc.dests.iter().find(|d| d.spec.addr == Ipv4Addr::from(rs)).unwrap();
    (d.active_conns, d.inactive_conns)
}

#[test]
fn a_syn_on_a_time_wait_session_is_scheduled_anew() {
    let mut lab = lab(ConnReuse::default());
    let first = connect_and_close(&mut lab, F::FinAck);
    assert_eq!(conns(&lab), [("TIME_WAIT".to_string(), Ipv4Addr::from(first))]);
    let (second, _) = client(&mut lab, F::Syn).expect("the new SYN is forwarded");
    assert_ne!(second, first, "rr: the next server, not the old session's");
    assert_eq!(lab.counters.event_count(Event::SessionsReused), 1);
    assert_eq!(conns(&lab), [("SYN_RECV".to_string(), Ipv4Addr::from(second))]);
    assert_eq!(active_inactive(&lab, first), (0, 0), "the old session's InActConn is gone");
    assert_eq!(active_inactive(&lab, second), (1, 0), "SYN_RECV counts as active (Linux 4.7 on)");
    assert_eq!(lab.counters.event_count(Event::HalfOpen), 1);
    assert_eq!(lab.counters.event_count(Event::SessionsLive), 1);
}

#[test]
fn a_syn_on_a_closed_session_is_scheduled_anew() {
    let mut lab = lab(ConnReuse::default());
    let first = connect_and_close(&mut lab, F::Rst);
    assert_eq!(conns(&lab), [("CLOSE".to_string(), Ipv4Addr::from(first))]);
    let (second, _) = client(&mut lab, F::Syn).unwrap();
    assert_ne!(second, first);
    assert_eq!(lab.counters.event_count(Event::SessionsReused), 1);
}

#[test]
fn a_syn_on_a_live_connection_stays_with_it() {
    let mut lab = lab(ConnReuse::default());
    let (rs, lport) = client(&mut lab, F::Syn).unwrap();
    server(&mut lab, rs, lport, F::SynAck);
    client(&mut lab, F::Ack).unwrap();
    assert_eq!(client(&mut lab, F::Syn), Some((rs, lport)), "same server, same local port");
    assert_eq!(lab.counters.event_count(Event::SessionsReused), 0);
    assert_eq!(conns(&lab).len(), 1);
}

#[test]
fn conn_reuse_mode_0_keeps_the_old_session() {
    let mut lab = lab(ConnReuse::new(0).unwrap());
    let first = connect_and_close(&mut lab, F::FinAck);
    let (second, _) = client(&mut lab, F::Syn).unwrap();
    assert_eq!(second, first, "glued to the TIME_WAIT session, as IPVS with conn_reuse_mode=0");
    assert_eq!(lab.counters.event_count(Event::SessionsReused), 0);
}

#[test]
fn a_syn_whose_session_lost_its_server_is_scheduled_anew_never_dropped() {
    let mut lab = lab(ConnReuse::default());
    let (rs, lport) = client(&mut lab, F::Syn).unwrap();
    server(&mut lab, rs, lport, F::SynAck);
    client(&mut lab, F::Ack).unwrap();
    let tcp = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(VIP).into(), port: VPORT };
    lab.ok(Request::DelDest { service: tcp, addr: Ipv4Addr::from(rs).into(), port: 8080 });
    // Data of the old connection: its server is deleted (as IPVS with
    // expire_nodest_conn = 0: dropped until the server is re-added).
    assert_eq!(client(&mut lab, F::Ack), None);
    assert_eq!(lab.counters.drop_count(Drop::DestUnavailable), 1);
    // A new connection from the same port goes to the remaining server.
    let (second, _) = client(&mut lab, F::Syn).expect("scheduled anew");
    assert_ne!(second, rs);
    assert_eq!(lab.counters.drop_count(Drop::DestUnavailable), 1);
    assert_eq!(lab.counters.event_count(Event::SessionsReused), 1);
}

/// `[ipvs] nodest_conn`: after `-d` of its server, an established
/// connection's packets are dropped until `-a` brings the server back (the
/// default, IPVS's `expire_nodest_conn = 0`), end the session at once
/// (`expire`, `expire_nodest_conn = 1`), or keep flowing (`forward`).
#[test]
fn a_deleted_servers_connections_wait_expire_or_forward_as_configured() {
    let tcp = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(VIP).into(), port: VPORT };
    for nodest in [NoDest::Drop, NoDest::Expire, NoDest::Forward] {
        let mut lab = lab_with(ConnReuse::default(), nodest);
        let (rs, lport) = client(&mut lab, F::Syn).unwrap();
        server(&mut lab, rs, lport, F::SynAck);
        client(&mut lab, F::Ack).unwrap();
        let dest = DestSpec::new(Ipv4Addr::from(rs), 8080, ForwardMode::FullNat, 1);
        lab.ok(Request::DelDest { service: tcp, addr: dest.addr, port: dest.port });
        let during = client(&mut lab, F::Ack);
        lab.ok(Request::AddDest { service: tcp, dest });
        let dropped = lab.counters.drop_count(Drop::DestUnavailable);
        match nodest {
            NoDest::Drop => {
                assert_eq!((during, dropped), (None, 1), "dropped while deleted");
                let after = client(&mut lab, F::Ack);
                assert_eq!(after, Some((rs, lport)), "and resumed on its old server once re-added");
            }
            NoDest::Expire => {
                assert_eq!((during, dropped), (None, 1), "the session ended");
                assert!(conns(&lab).is_empty(), "{:?}", conns(&lab));
                // The client's next segment meets no session: a RST back.
                let out = lab.rx(0, frame(CLIENT_MAC, GW_OUT.0, (CLIENT, CPORT), (VIP, VPORT), F::Ack));
                assert_eq!(out.len(), 1);
                assert_eq!(out[0].0, 0, "the reply leaves toward the client");
                assert_eq!(lab.counters.event_count(Event::TcpRstSent), 1);
            }
            NoDest::Forward => {
                assert_eq!((during, dropped), (Some((rs, lport)), 0));
                assert_eq!(client(&mut lab, F::Ack), Some((rs, lport)));
            }
        }
    }
}

#[test]
fn a_syn_after_clear_and_re_adding_the_service_is_answered() {
    let mut lab = lab(ConnReuse::default());
    connect_and_close(&mut lab, F::FinAck);
    lab.ok(Request::Clear);
    let tcp = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(VIP).into(), port: VPORT };
    tcp_service(&mut lab, ServiceSpec::new(tcp, Scheduler::Rr));
    assert!(client(&mut lab, F::Syn).is_some(), "the SYN is scheduled on the new service");
    assert_eq!(lab.counters.event_count(Event::SessionsReused), 1);
    assert_eq!(lab.counters.drop_count(Drop::DestUnavailable), 0);
}

#[test]
fn with_persistence_the_template_keeps_the_server_of_a_reused_port() {
    let mut lab = LabConfig { sessions: 64, ..LabConfig::default() }.build();
    let tcp = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(VIP).into(), port: VPORT };
    let mut spec = ServiceSpec::new(tcp, Scheduler::Rr);
    spec.persistent = Some(300);
    tcp_service(&mut lab, spec);
    lab.learn_neighbours();
    let first = connect_and_close(&mut lab, F::FinAck);
    let (second, _) = client(&mut lab, F::Syn).unwrap();
    assert_eq!(second, first, "the template is in charge");
    assert_eq!(lab.counters.event_count(Event::SessionsReused), 1);
    let listed = conns(&lab);
    assert_eq!(listed.len(), 2, "the template and the new connection: {listed:?}");
    assert!(listed.contains(&("NONE".to_string(), Ipv4Addr::from(first))));
    assert!(listed.contains(&("SYN_RECV".to_string(), Ipv4Addr::from(first))));
}

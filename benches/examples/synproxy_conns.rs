//! New connections per second through one engine, with and without
//! SYNPROXY (`-j enable`): N full handshakes through `Engine::process`
//! (and `client_addr::apply` for what the engine grows), timed on the wall
//! clock (one core; a measurement, not a test).
//!
//! Plain FULLNAT: client SYN -> real server, its SYN-ACK -> client, the
//! client's ACK -> real server. SYNPROXY: client SYN -> the gateway's
//! cookie SYN-ACK, the cookie ACK -> SYN to the real server, its SYN-ACK ->
//! the handshake ACK to the real server. Each SYN carries MSS, SACK
//! permitted, timestamps and window scale (as Linux sends them).
//!
//! N (default 30,000) stays well below what one local address offers.
//!
//!   cargo run --release -p gw-benches --example synproxy_conns [N]
use std::time::Instant;

use etherparse::{PacketBuilder, TcpOptionElement::*};
use gw_benches::*;
use gw_core::client_addr;
use gw_core::engine::{Action, Engine};
use gw_core::session::FlowKey;
use gw_core::wire::ipv4::Protocol as IpProto;
use gw_proto::{ForwardMode, Scheduler};

fn engine(n: usize, synproxy: bool) -> Engine {
    let default = gw_core::route::Route { net: 0, prefix: 0, via: Some(u32::from_be_bytes(ROUTER)), port: 0 };
    let mut lab = LabConfig {
        sessions: n.next_power_of_two() * 2,
        lports: (1024, 65535),
        routes: vec![default],
        seed: 0x5eed_1234_abcd_0001,
        start_ms: 0,
        half_open_max: usize::MAX,
        ..LabConfig::default()
    }
    .build()
    .with_mode(Scheduler::Rr, ForwardMode::FullNat, RPORT);
    let mut spec =
        gw_proto::ServiceSpec::new(dataplane::testing::key(gw_proto::Protocol::Tcp), Scheduler::Rr);
    spec.synproxy = synproxy;
    lab.ok(gw_proto::Request::EditService { spec });
    lab.into_engine()
}

#[allow(clippy::too_many_arguments)]
fn frame(
    sm: [u8; 6],
    dm: gw_core::wire::ethernet::MacAddr,
    s: Endpoint,
    d: Endpoint,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    ts: (u32, u32),
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(sm, dm.0).ipv4(s.0, d.0, 64).tcp(s.1, d.1, seq, 64000);
    let b = if syn { b.syn() } else { b };
    let b = match ack {
        Some(a) => b.ack(a),
        None => b,
    };
    let b = if syn {
        b.options(&[
            MaximumSegmentSize(1460),
            SelectiveAcknowledgementPermitted,
            Timestamp(ts.0, ts.1),
            Noop,
            WindowScale(7),
        ])
    } else {
        b.options(&[Noop, Noop, Timestamp(ts.0, ts.1)])
    }
    .unwrap();
    let mut out = Vec::with_capacity(128);
    b.write(&mut out, &[]).unwrap();
    out
}

/// Runs `f`'s verdict like the worker: a grown frame gets its insert.
fn run(e: &mut Engine, port: u16, mut f: Vec<u8>) -> Vec<u8> {
    match e.process(1, port, &mut f) {
        Action::Forward { .. } => f,
        Action::Grow { .. } | Action::GrowReply { .. } => {
            client_addr::apply(&mut f, e.pending_insert()).expect("insert");
            f
        }
        other => panic!("{other:?}"),
    }
}

fn tcp_seq(f: &[u8]) -> (u32, u32) {
    let t = &f[L3 + 20..];
    (u32::from_be_bytes([t[4], t[5], t[6], t[7]]), u32::from_be_bytes([t[8], t[9], t[10], t[11]]))
}

fn lport(e: &Engine, c: Endpoint) -> (Endpoint, Endpoint) {
    let key = FlowKey {
        proto: IpProto::Tcp,
        src: u32::from_be_bytes(c.0),
        sport: c.1,
        dst: u32::from_be_bytes(VIP),
        dport: VPORT,
    };
    let s = *e.sessions().get(e.sessions().lookup_in(&key).expect("session"));
    ((s.rip.to_be_bytes(), s.rport), (s.lip.to_be_bytes(), s.lport))
}

fn handshakes(n: u32, synproxy: bool) -> f64 {
    let mut e = engine(n as usize, synproxy);
    let t0 = Instant::now();
    for f in 0..n {
        let c = client(f);
        let isn = 1000 + f;
        let out = run(&mut e, 0, frame(ROUTER_MAC, GW_OUT, c, (VIP, VPORT), isn, None, true, (5, 0)));
        let (rs, local) = if synproxy {
            let (cookie, _) = tcp_seq(&out);
            let ack = frame(ROUTER_MAC, GW_OUT, c, (VIP, VPORT), isn + 1, Some(cookie + 1), false, (6, 0x7f));
            run(&mut e, 0, ack);
            lport(&e, c)
        } else {
            lport(&e, c)
        };
        let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs.0).unwrap()];
        let sa = frame(rs_mac, GW_IN, rs, local, 70_000, Some(isn + 1), true, (9, 5));
        run(&mut e, 1, sa);
        if !synproxy {
            run(&mut e, 0, frame(ROUTER_MAC, GW_OUT, c, (VIP, VPORT), isn + 1, Some(70_001), false, (6, 9)));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(e.sessions().len(), n as usize);
    n as f64 / secs
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(30_000);
    for synproxy in [false, true, false, true] {
        let rate = handshakes(n, synproxy);
        println!("{:<9} {n} handshakes: {:.0} conns/s", if synproxy { "synproxy" } else { "plain" }, rate);
    }
}

//! SYN shedding under overload ([`gw_core::synproxy::shed`]) through
//! `Worker<Vec<u8>>` as the poll loop drives it: each burst recorded with
//! [`Shed::rx_burst`] (full or not), an overloaded burst's frames passed
//! through [`Shed::admitted`], the rest handled. Against a SYNPROXY
//! service: full bursts lower the per-burst quota of SYNs answered with
//! cookies (the rate cap holds them too), the others are counted
//! `drop_syn_shed`, an established connection's segments and a cookie ACK
//! are still forwarded, the cap refills with the clock, and short bursts
//! raise the quota back to a whole burst. Sent frames are read back with
//! etherparse.

mod common;

use std::net::Ipv4Addr;

use common::*;
use gw_core::counters::{Drop, Event};
use gw_core::synproxy::shed::{Shed, FULL_QUOTA};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceSpec};

/// A full receive burst (`gw_dpdk::BURST`).
const BURST: usize = 32;
const CPORT: u16 = 40000;
const ISN: u32 = 1000;
const SISN: u32 = 0x7000_0000;

fn client(port: u16, s: Seg<'_>) -> Vec<u8> {
    segment(CLIENT_MAC, GW_OUT.0, (CLIENT, port), (VIP, 80), s)
}

fn syn(port: u16) -> Vec<u8> {
    client(port, Seg { seq: ISN, syn: true, ..Seg::default() })
}

/// Runs `frames` through the lab as one receive burst of the poll loop;
/// what the worker sent.
fn burst(lab: &mut Lab, shed: &mut Shed, frames: Vec<Vec<u8>>) -> Vec<(u16, Vec<u8>)> {
    let mut out = vec![];
    if shed.rx_burst(lab.now, frames.len() == BURST) {
        let mut dropped = 0;
        let admitted: Vec<_> = shed.admitted(frames.into_iter(), &mut dropped).collect();
        lab.counters.count_drops(Drop::SynShed, dropped);
        for f in admitted {
            out.extend(lab.rx(0, f));
        }
    } else {
        for f in frames {
            out.extend(lab.rx(0, f));
        }
    }
    out
}

/// The frames sent toward the clients (port 0) and the real server (1),
/// each checked and read back.
fn split(sent: Vec<(u16, Vec<u8>)>) -> (Vec<Got>, Vec<Got>) {
    sent.into_iter().map(|s| one(vec![s])).partition(|g| g.port == 0)
}

#[test]
fn an_overloaded_worker_answers_its_budget_of_syns_and_forwards_the_rest() {
    let mut lab = Lab::new(256, (1024, 65535));
    let mut spec = ServiceSpec::new(key(Protocol::Tcp), Scheduler::Rr);
    spec.synproxy = true;
    lab.ok(Request::AddService { spec });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
    lab.ok(Request::AddDest { service: key(Protocol::Tcp), dest });
    lab.ok(Request::AddLaddr { service: key(Protocol::Tcp), addr: Ipv4Addr::from(LIP).into() });
    lab.learn_neighbours();
    lab.now = 10;
    // 5,000 SYNs/s: 5 per millisecond.
    let mut shed = Shed::new(5_000);

    // An established connection, opened through the cookie while calm.
    let g = one(burst(&mut lab, &mut shed, vec![syn(CPORT)]));
    assert!(g.syn && g.ackf && g.port == 0);
    let cookie_ack = Seg { seq: ISN + 1, ack: Some(g.seq + 1), ..Seg::default() };
    let s = one(burst(&mut lab, &mut shed, vec![client(CPORT, cookie_ack)]));
    assert!(s.syn && !s.ackf && s.port == 1, "the SYN toward the real server");
    let sa = Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() };
    let a = one(lab.rx(1, segment(RS_MAC[0], GW_IN.0, (RS[0], 8080), s.src, sa)));
    assert!(a.ackf && !a.syn && a.port == 1, "the handshake ACK");
    let cookie = g.seq;
    let data =
        |k: u32| client(CPORT, Seg { seq: ISN + 1 + k, ack: Some(cookie + 1), data: b"x", ..Seg::default() });
    let mut flood_port = 10_000u16;
    let mut flood = |n: usize| -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                flood_port += 1;
                syn(flood_port)
            })
            .collect()
    };

    // A full burst of established segments: one burst that arrived
    // together is no backlog.
    let to_server = burst(&mut lab, &mut shed, (0..BURST as u32).map(data).collect());
    assert_eq!(to_server.len(), BURST);
    assert!(!shed.overloaded());
    let mut sent_data = BURST as u32;
    // The next burst full too: 24 flood SYNs among 8 established segments.
    // Quota 31, the cap 5.
    let mut frames = flood(24);
    for k in 0..8 {
        frames.insert(k * 4, data(sent_data + k as u32));
    }
    sent_data += 8;
    let (to_clients, to_server) = split(burst(&mut lab, &mut shed, frames));
    assert_eq!(to_clients.len(), 5, "the cap's SYNs answered");
    assert!(to_clients.iter().all(|g| g.syn && g.ackf && g.dst.0 == CLIENT));
    assert_eq!(to_server.len(), 8, "every established segment forwarded");
    assert!(to_server.iter().all(|g| g.payload == b"x" && g.dst == (RS[0], 8080)));
    assert_eq!(lab.counters.drop_count(Drop::SynShed), 19);
    assert!(shed.overloaded());

    // The same millisecond: the cap is spent; a cookie ACK of an answered
    // flood SYN still opens its connection.
    let answered = &to_clients[0];
    let mut frames = flood(30);
    frames.push(data(sent_data));
    frames.push(client(answered.dst.1, Seg { seq: ISN + 1, ack: Some(answered.seq + 1), ..Seg::default() }));
    sent_data += 1;
    let (to_clients, to_server) = split(burst(&mut lab, &mut shed, frames));
    assert!(to_clients.is_empty(), "no SYN answered");
    assert_eq!(to_server.len(), 2);
    assert_eq!(to_server[0].payload, b"x");
    assert!(to_server[1].syn && !to_server[1].ackf, "the cookie ACK's SYN toward the real server");
    assert_eq!(lab.counters.drop_count(Drop::SynShed), 19 + 30);
    assert_eq!(shed.quota(), FULL_QUOTA - 1);

    // The next millisecond refills 5, many milliseconds later still 5.
    for now in [11, 5_000] {
        lab.now = now;
        let (to_clients, _) = split(burst(&mut lab, &mut shed, flood(BURST)));
        assert_eq!(to_clients.len(), 5, "at {now} ms");
    }
    // Full bursts of SYNs only in the same millisecond: the quota goes
    // down by one every second burst, to 1; none answered (the cap).
    for _ in 0..64 {
        assert!(split(burst(&mut lab, &mut shed, flood(BURST))).0.is_empty());
    }
    assert_eq!(shed.quota(), 1);
    lab.now += 1;
    assert_eq!(split(burst(&mut lab, &mut shed, flood(BURST))).0.len(), 1, "the quota, below the cap");
    // Short bursts raise the quota by one each, back to a whole burst.
    for quota in 2..=FULL_QUOTA {
        lab.now += 1;
        let (to_clients, _) = split(burst(&mut lab, &mut shed, flood(2)));
        assert_eq!(to_clients.len(), 2, "quota {quota}");
        assert_eq!(shed.overloaded(), quota < FULL_QUOTA);
    }
    let (to_clients, _) = split(burst(&mut lab, &mut shed, flood(20)));
    assert_eq!(to_clients.len(), 20, "not overloaded: every SYN answered, the cap does not apply");

    let shed_total = 19 + 30 + 2 * (BURST - 5) + 64 * BURST + (BURST - 1);
    assert_eq!(lab.counters.drop_count(Drop::SynShed), shed_total as u64);
    let acks = 1 + 5 + 5 + 5 + 1 + 2 * (FULL_QUOTA as u64 - 1) + 20;
    assert_eq!(lab.counters.event_count(Event::SynproxySynAcks), acks);
    assert_eq!(lab.counters.event_count(Event::SynproxyOpened), 2);
    assert_eq!(lab.counters.drop_count(Drop::SynproxyBadCookie), 0);
    assert_eq!(sent_data, BURST as u32 + 9);
    assert_eq!(lab.worker.engine.sessions().len(), 2, "shed SYNs left no state");
}

//! A floor for `ir_per_poll udp` (issue 14): the instructions of an
//! established FULLNAT UDP packet in a loop that keeps only the work every
//! such packet needs, built from the product's own pieces (the session
//! table and its hash, `Session::rewrite_change`, `nat::rewrite_with`).
//! Not a product path: it measures what the product's path costs beyond
//! that work.
//!
//! Per burst of BURST frames from each of the two sides (1,000 sessions,
//! the same 64-byte frames and the same out-of-line stand-ins for the
//! NIC's rx and tx as `ir_per_poll`): each frame is parsed with
//! `L4Info::check_plain`'s checks (IPv4 without options, lengths, not a
//! fragment, header checksum, UDP length, ports), its key hashed and its
//! bucket line touched; then each is looked up (client side, or the
//! reply side for a packet to the local address), its session's timer
//! touched, a packet and a byte counter per real server and direction
//! and a forward counter bumped, the frame rewritten, both MACs written
//! and the buffer queued on the other side's TX.
//!
//! With a third argument `checks` it also does the product's other
//! per-packet checks and steps ([`burst_step_checked`]: destination MAC,
//! source address, flags and mode, reverse path and next hop by the
//! session's remembered routes, deleted server, TTL, MTU, the service's
//! counters, the session-line prefetch pass, the neighbour cache); what
//! it still leaves out is the poll's clock and housekeeping and the
//! records the product's stages hand each other. docs/benchmarks.md,
//! "Where issue 14 stands", compares the three.
//!
//!   cargo build --release -p gw-benches --example ir_floor
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/ir_floor 20000 32 [checks]
//!   (and 40000: per packet (Ir(40000) - Ir(20000)) / 40000, as ir_per_poll)
// The boxes stand for mbuf pointers: a burst moves pointers, not buffers.
#![allow(clippy::vec_box)]

use std::net::Ipv4Addr;

use gw_core::modes::nat::rewrite_with;
use gw_core::neigh::{NeighConfig, NeighTable};
use gw_core::route::{Iface, Route, Routes, RpFilter};
use gw_core::session::{Flags, FlowKey, Session, Table};
use gw_core::tcp_state::State;
use gw_core::wire::ethernet::MacAddr;
use gw_core::wire::ipv4::Protocol;
use gw_proto::ForwardMode;

const BURST: usize = 32;

/// A packet buffer (the boxes in the queues stand for mbuf pointers).
struct Buf {
    data: [u8; 128],
    len: usize,
}

/// The NIC's rx burst: `burst` of `frames` from the `first`, into `out`.
/// Out of line, as DPDK's is.
#[inline(never)]
fn nic_rx(free: &mut Vec<Box<Buf>>, frames: &[Vec<u8>], first: usize, burst: usize, out: &mut Vec<Box<Buf>>) {
    for f in 0..burst {
        let fr = &frames[(first + f) % frames.len()];
        let mut m = free.pop().expect("free");
        m.data[..fr.len()].copy_from_slice(fr);
        m.len = fr.len();
        out.push(m);
    }
}

/// The NIC's tx burst: the buffers back to the free list.
#[inline(never)]
fn flush(free: &mut Vec<Box<Buf>>, tx: &mut Vec<Box<Buf>>, sent: &mut u64) {
    *sent += tx.len() as u64;
    free.append(tx);
}

/// A frame's record between the two passes.
#[derive(Clone, Copy)]
struct Rec {
    key: FlowKey,
    hash: u64,
    tl: u16,
    ttl: u8,
    out: bool,
    ok: bool,
}

/// The flow key, IPv4 total length and TTL of a UDP frame that passes
/// `L4Info::check_plain`'s checks.
#[inline(always)]
fn parse(frame: &[u8]) -> Option<(FlowKey, u16, u8)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let h: &[u8; 20] = ip.get(..20)?.try_into().ok()?;
    if h[0] != 0x45 {
        return None;
    }
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let be32 = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let tl = usize::from(be16(h, 2));
    if tl < 20 || tl > ip.len() || be16(h, 6) & 0x3fff != 0 || h[9] != 17 {
        return None;
    }
    let ne32 = |at: usize| u32::from_ne_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let acc: u64 = (0..5).map(|w| u64::from(ne32(4 * w))).sum();
    let mut s = (acc & 0xffff_ffff) + (acc >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    if s != 0xffff {
        return None;
    }
    let l4 = &ip[20..tl];
    if l4.len() < 8 || !(8..=l4.len()).contains(&usize::from(be16(l4, 4))) {
        return None;
    }
    let (sport, dport) = (be16(l4, 0), be16(l4, 2));
    if sport == 0 || dport == 0 {
        return None;
    }
    Some((
        FlowKey { proto: Protocol::Udp, src: be32(h, 12), sport, dst: be32(h, 16), dport },
        tl as u16,
        h[8],
    ))
}

/// The first pass over a burst: each frame parsed, its key hashed and
/// its bucket line prefetched, its record written; how many frames.
#[inline(always)]
fn stage(t: &Table<Session>, laddr: u32, bufs: &[Box<Buf>], recs: &mut [Rec; BURST]) -> usize {
    for (m, r) in bufs.iter().zip(recs.iter_mut()) {
        match parse(&m.data[..m.len]) {
            Some((key, tl, ttl)) => {
                let out = key.dst == laddr;
                let hash = t.hash(&key);
                gw_dpdk::prefetch(t.bucket_line(hash, out));
                *r = Rec { key, hash, tl, ttl, out, ok: true };
            }
            None => r.ok = false,
        }
    }
    bufs.len()
}

/// The session of record `r`: by its client side, or by its reply side
/// for a packet to the local address.
#[inline(always)]
fn find(t: &Table<Session>, r: &Rec) -> Option<u32> {
    if r.out {
        t.find_out(&r.key, r.hash)
    } else {
        t.find_in(&r.key, r.hash)
    }
}

/// Session `s`'s packet `m` (record `r`): its timer touched, a packet and
/// a byte counter per real server and direction and, if `service`, per
/// service bumped, a forward counter bumped, the frame rewritten.
#[inline(always)]
fn count_and_rewrite(
    t: &mut Table<Session>,
    (i, s): (u32, &Session),
    r: &Rec,
    now: u64,
    service: bool,
    counters: &mut [u64; 64],
    m: &mut Buf,
) {
    t.touch(i, now, 300_000);
    let d = usize::from(s.dest & 7);
    counters[8 + d * 2 + usize::from(r.out)] += 1;
    counters[24 + d * 2 + usize::from(r.out)] += u64::from(r.tl);
    if service {
        let sv = usize::from(s.service & 7);
        counters[40 + sv * 2 + usize::from(r.out)] += 1;
        counters[48 + sv * 2 + usize::from(r.out)] += u64::from(r.tl);
    }
    counters[2 + usize::from(r.out)] += 1;
    let (src, dst) =
        if r.out { ((s.vip, s.vport), (s.cip, s.cport)) } else { ((s.lip, s.lport), (s.rip, s.rport)) };
    let tl = usize::from(r.tl);
    rewrite_with(&mut m.data[14..14 + tl], Protocol::Udp, src, dst, s.rewrite_change(r.out));
}

/// One burst: parse, hash and prefetch each frame, then look each up,
/// count, rewrite and queue it (a frame without a session is counted and
/// dropped).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn burst_step(
    t: &mut Table<Session>,
    laddr: u32,
    now: u64,
    bufs: &mut Vec<Box<Buf>>,
    recs: &mut [Rec; BURST],
    tx: &mut [Vec<Box<Buf>>; 2],
    counters: &mut [u64; 64],
    macs: &[[u8; 12]; 2],
) {
    let n = stage(t, laddr, bufs, recs);
    for (m, r) in bufs.drain(..).zip(recs[..n].iter()) {
        if !r.ok || r.ttl <= 1 {
            counters[0] += 1;
            continue;
        }
        let Some(i) = find(t, r) else {
            counters[1] += 1;
            continue;
        };
        let s = *t.get(i);
        let mut m = m;
        count_and_rewrite(t, (i, &s), r, now, false, counters, &mut m);
        let port = usize::from(!r.out);
        m.data[..12].copy_from_slice(&macs[port]);
        tx[port].push(m);
    }
}

/// What [`burst_step_checked`] reads besides the session table.
struct Env {
    ifaces: Vec<Iface>,
    routes: Routes,
    neigh: NeighTable<()>,
    live: Vec<bool>,
    min_mtu: u16,
}

/// [`burst_step`] with the product's other per-packet checks and steps
/// (`ir_floor N BURST checks`): the destination MAC against the port's,
/// the source address, the one-packet, mode, SYNPROXY and client-address
/// flags, the reverse path by the session's remembered route, the
/// deleted-server test, TTL and MTU, the remembered route toward the next
/// hop, the service's counters, the second prefetch pass (session lines)
/// and the neighbour cache for the next hop's MAC.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn burst_step_checked(
    t: &mut Table<Session>,
    env: &mut Env,
    port: u16,
    laddr: u32,
    now: u64,
    bufs: &mut Vec<Box<Buf>>,
    recs: &mut [Rec; BURST],
    tx: &mut [Vec<Box<Buf>>; 2],
    counters: &mut [u64; 64],
) {
    let n = stage(t, laddr, bufs, recs);
    for r in recs[..n].iter().filter(|r| r.ok) {
        if let Some(line) = t.session_line(r.hash, r.out) {
            gw_dpdk::prefetch(line);
        }
    }
    let Env { ifaces, routes, neigh, live, min_mtu } = env;
    let Some(rx) = ifaces.get(usize::from(port)) else { return };
    for (m, r) in bufs.drain(..).zip(recs[..n].iter()) {
        let src_ip = r.key.src;
        let first = src_ip >> 24;
        let bad_source = src_ip == 0 || src_ip == u32::MAX || first == 127 || (first & 0xf0) == 0xe0;
        if !r.ok || m.data[..6] != rx.mac.0 || bad_source || r.ttl <= 1 || r.tl > *min_mtu {
            counters[0] += 1;
            continue;
        }
        let Some(i) = find(t, r) else {
            counters[1] += 1;
            continue;
        };
        let s = *t.get(i);
        if s.flags.contains(Flags::ONE_PACKET)
            || s.flags.contains(Flags::SYNPROXY)
            || !matches!(s.mode, ForwardMode::FullNat | ForwardMode::Masq)
            || !live.get(usize::from(s.dest)).copied().unwrap_or(false)
        {
            counters[4] += 1;
            continue;
        }
        let (back, way, to) = if r.out { (0, 1, s.cip) } else { (1, 0, s.rip) };
        let sm = t.get_mut(i);
        let rp = routes.lookup_remembered(&mut sm.route[back], src_ip);
        let Some((out_port, next_hop)) = routes.lookup_remembered(&mut sm.route[way], to) else {
            counters[5] += 1;
            continue;
        };
        if rp.map(|(p, _)| p) != Some(rx.port) {
            counters[6] += 1;
            continue;
        }
        let mut m = m;
        count_and_rewrite(t, (i, &s), r, now, true, counters, &mut m);
        let Some(out_if) = ifaces.get(usize::from(out_port)) else { continue };
        let Some(mac) = neigh.cached(out_port, next_hop).or_else(|| neigh.resolve(out_port, next_hop, true))
        else {
            counters[7] += 1;
            continue;
        };
        m.data[..6].copy_from_slice(&mac.0);
        m.data[6..12].copy_from_slice(&out_if.mac.0);
        tx[usize::from(out_port & 1)].push(m);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20000);
    let burst: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(32);
    let checked = args.get(3).is_some_and(|a| a == "checks");
    let mut t: Table<Session> = Table::new(1 << 16, 12345, 0);
    let (vip, lip, rip) = (0xc612_0064u32, 0xc612_0101u32, 0xc612_0202u32);
    let mac = |b: u8| [b; 6];
    let mut frames = [Vec::new(), Vec::new()];
    for f in 0..1000u32 {
        let (cip, cport, lport) = (0xc613_0000 | f, 1024 + (f as u16), 5000 + f as u16);
        let s = Session::new(
            Protocol::Udp,
            (cip, cport),
            (vip, 80),
            (rip, 8080),
            (lip, lport),
            State::Udp,
            ForwardMode::FullNat,
            0,
            f % 2,
        );
        t.insert(s, 0, 300_000).expect("room");
        let e = |a: u32, p: u16| (a.to_be_bytes(), p);
        frames[0].push(gw_benches::udp_frame(
            mac(1),
            gw_core::wire::ethernet::MacAddr(mac(2)),
            e(cip, cport),
            e(vip, 80),
        ));
        frames[1].push(gw_benches::udp_frame(
            mac(3),
            gw_core::wire::ethernet::MacAddr(mac(4)),
            e(rip, 8080),
            e(lip, lport),
        ));
    }
    let mut free: Vec<Box<Buf>> = (0..8 * BURST).map(|_| Box::new(Buf { data: [0; 128], len: 0 })).collect();
    let mut bufs = Vec::with_capacity(BURST);
    let mut recs = [Rec {
        key: FlowKey { proto: Protocol::Udp, src: 0, sport: 0, dst: 0, dport: 0 },
        hash: 0,
        tl: 0,
        ttl: 0,
        out: false,
        ok: false,
    }; BURST];
    let mut tx = [Vec::with_capacity(BURST), Vec::with_capacity(BURST)];
    let mut counters = [0u64; 64];
    let macs = [[9u8; 12], [7u8; 12]];
    let iface = |port: u16, addr: [u8; 4], prefix: u8, mac: u8| Iface {
        port,
        addr: Ipv4Addr::from(addr),
        prefix,
        addr6: None,
        mac: MacAddr([mac; 6]),
        mtu: 1500,
        rp_filter: RpFilter::Strict,
    };
    // Clients behind a router on port 0, the real server on port 1's subnet
    // (as the product's benchmarks: three next hops in all).
    let ifaces = vec![iface(0, [198, 18, 0, 1], 24, 2), iface(1, [198, 18, 2, 254], 24, 4)];
    let router = u32::from(Ipv4Addr::new(198, 18, 0, 254));
    let clients = Route { net: 0xc613_0000, prefix: 16, via: Some(router), port: 0 };
    let routes = Routes::new(&ifaces, &[clients]);
    let mut neigh = NeighTable::new(NeighConfig::default());
    neigh.learn(0, (1, rip), MacAddr([5; 6]), true, |_: (), _| {}, |_| {});
    neigh.learn(0, (0, router), MacAddr([6; 6]), true, |_: (), _| {}, |_| {});
    let mut env = Env { ifaces, routes, neigh, live: vec![true; 64], min_mtu: 1500 };
    let mut sent = 0u64;
    let polls = n / burst;
    for p in 0..polls {
        let now = 1 + (p as u64) / 1000;
        for (port, side) in frames.iter().enumerate() {
            nic_rx(&mut free, side, (p * burst) % 1000, burst, &mut bufs);
            if checked {
                let port = port as u16;
                burst_step_checked(
                    &mut t,
                    &mut env,
                    port,
                    lip,
                    now,
                    &mut bufs,
                    &mut recs,
                    &mut tx,
                    &mut counters,
                );
            } else {
                burst_step(&mut t, lip, now, &mut bufs, &mut recs, &mut tx, &mut counters, &macs);
            }
            for q in tx.iter_mut() {
                if !q.is_empty() {
                    flush(&mut free, q, &mut sent);
                }
            }
        }
    }
    assert_eq!(sent, 2 * (polls * burst) as u64, "every packet sent: {counters:?}");
}

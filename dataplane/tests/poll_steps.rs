//! The poll loop's own steps (issue 14, `dataplane::io`: [`receive`],
//! [`after_bursts`], [`PollClock`]), run on `Vec<u8>` buffers as
//! `WorkerLoop::run` runs them on mbufs. Bursts of any size meet the fate
//! of the same frames one at a time through `Worker::handle` (the same
//! frames out of each port, in order, and every counter the same), also
//! frames with any bytes changed or cut short (a proptest); each queue
//! besides the ports is read when something waits in it, and what it held
//! is processed and counted; the clock reads the millisecond the division
//! did and counts what it counted. Frames are built and the
//! forwarded ones checked with `etherparse`.
#![cfg(feature = "dpdk")]

mod common;

use common::*;
use dataplane::engine_config::expire_budget;
use dataplane::io::{after_bursts, receive, Flush, PollClock, Queues, Staging};
use etherparse::PacketBuilder;
use gw_core::counters::{Drop, Event, WorkerCounters};
use gw_core::mailbox::{mailbox, ControlMailbox, WorkerMailbox};
use gw_core::steer::Redirect;
use gw_core::wire::ethernet::MacAddr;
use gw_core::worker::{Io, Learned};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceSpec};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The TX side: a queue per port, which a flush moves to what that port
/// sent (in order).
#[derive(Default)]
struct Tx {
    queued: [Vec<Vec<u8>>; 2],
    out: [Vec<Vec<u8>>; 2],
}

impl Io<Vec<u8>> for Tx {
    fn alloc(&mut self) -> Option<Vec<u8>> {
        Some(Vec::new())
    }
    fn send(&mut self, port: u16, pkt: Vec<u8>) {
        self.queued[usize::from(port)].push(pkt);
    }
}

impl Flush<Vec<u8>> for Tx {
    fn flush_all(&mut self) {
        for (q, out) in self.queued.iter_mut().zip(self.out.iter_mut()) {
            out.append(q);
        }
    }
}

/// One worker's queues besides its ports, owned (the test's [`Queues`]
/// borrows them).
struct Rings {
    redirect: Redirect<Vec<u8>>,
    neighbours: Redirect<Learned>,
    from_kernel: Redirect<Vec<u8>>,
    control: ControlMailbox,
    mailbox: WorkerMailbox,
}

impl Rings {
    /// Worker 0's queues among `workers`.
    fn new(workers: usize) -> Rings {
        let (control, mailbox) = mailbox();
        Rings {
            redirect: Redirect::new(workers, 256),
            neighbours: Redirect::new(workers, 16),
            from_kernel: Redirect::new(workers, 16),
            control,
            mailbox,
        }
    }
    fn queues<'a>(&'a self, counters: &'a WorkerCounters) -> Queues<'a, Vec<u8>> {
        Queues {
            me: 0,
            workers: self.redirect.workers() as u32,
            counters,
            redirect: &self.redirect,
            neighbours: &self.neighbours,
            from_kernel: Some(&self.from_kernel),
            mailbox: &self.mailbox,
        }
    }
}

fn lab() -> Lab {
    let mut l = LabConfig { sessions: 1024, ..LabConfig::default() }.build().with_services(Scheduler::Rr);
    l.learn_neighbours();
    l
}

/// What `sent` (in order, both ports) put out of each port.
fn per_port(sent: &[(u16, Vec<u8>)]) -> [Vec<Vec<u8>>; 2] {
    let mut out: [Vec<Vec<u8>>; 2] = Default::default();
    for (port, f) in sent {
        out[usize::from(*port)].push(f.clone());
    }
    out
}

/// Client frames: 40 UDP flows, 20 TCP SYNs, and frames that are dropped
/// or answered (a bad IPv4 checksum, no service, an ARP request, a
/// datagram to a local address with no session); then, built from what the
/// gateway forwarded in a first lab, the real servers' replies.
fn traffic() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut clients = vec![];
    for i in 0..40 {
        clients.push(udp(CLIENT_MAC, GW_OUT, (CLIENT, 20_000 + i), (VIP, VPORT)));
        if i % 2 == 0 {
            clients.push(tcp(CLIENT_MAC, GW_OUT, (CLIENT, 30_000 + i), (VIP, VPORT), true, false));
        }
    }
    let mut bad_sum = udp(CLIENT_MAC, GW_OUT, (CLIENT, 40_000), (VIP, VPORT));
    bad_sum[14 + 10] ^= 0x55;
    clients.insert(7, bad_sum);
    clients.insert(13, udp(CLIENT_MAC, GW_OUT, (CLIENT, 40_001), (VIP, 81)));
    clients.insert(21, arp_request(CLIENT_MAC, CLIENT, VIP));
    let mut first = lab();
    let mut replies = vec![];
    for f in &clients {
        for (port, out) in first.rx(0, f.clone()) {
            if port != 1 {
                continue;
            }
            let (_, _, local, rs, _) = inspect(&out);
            let mac = RS_MAC[RS.iter().position(|r| *r == rs.0).expect("to a real server")];
            replies.push(if out[14 + 9] == 17 {
                udp(mac, GW_IN, rs, local)
            } else {
                tcp(mac, GW_IN, rs, local, true, true)
            });
        }
    }
    assert_eq!(replies.len(), 60, "every flow forwarded");
    replies.insert(5, udp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, 9)));
    (clients, replies)
}

/// One burst of `frames` received on `port`, twice: through the poll
/// loop's steps on `polled` (with `q`'s queues, which stay empty: nothing
/// handed over, nothing from the kernel) and one frame at a time through
/// `Worker::handle` on `ladder`, each side then running its timers with
/// the same expiry budget.
fn burst_both(
    polled: &mut Lab,
    ladder: &mut Lab,
    q: &Queues<Vec<u8>>,
    staged: &mut Staging<Vec<u8>>,
    tx: &mut Tx,
    port: u16,
    frames: &[Vec<u8>],
) {
    let now = polled.now;
    receive(&mut polled.worker, q, now, port, frames.iter().cloned(), staged, tx);
    let done = after_bursts(&mut polled.worker, q, now, frames.len(), staged, tx);
    assert_eq!(done, (0, 0), "nothing handed over, nothing from the kernel");
    for f in frames {
        ladder.worker.handle(ladder.now, port, f.clone(), &mut ladder.io);
    }
    ladder.worker.tick_with(ladder.now, expire_budget(frames.len()), &mut ladder.io);
}

#[test]
fn bursts_of_any_size_meet_the_fate_of_one_packet_at_a_time() {
    let (clients, replies) = traffic();
    for burst in [1, 4, 32] {
        let (mut polled, mut ladder) = (lab(), lab());
        let rings = Rings::new(1);
        let counters = polled.counters.clone();
        let q = rings.queues(&counters);
        let (mut tx, mut staged) = (Tx::default(), Staging::new());
        for (port, frames) in [(0u16, &clients), (1, &replies)] {
            for chunk in frames.chunks(burst) {
                burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, port, chunk);
            }
        }
        assert!(tx.queued.iter().all(Vec::is_empty), "burst {burst}: everything flushed");
        let want = per_port(&ladder.io.sent);
        assert_eq!(tx.out, want, "burst {burst}: the same frames out of each port, in order");
        assert_eq!(counters.snapshot(), ladder.counters.snapshot(), "burst {burst}: the same counters");
        // Forwarded both ways (checked by etherparse), and the faults counted.
        let l4 = |f: &&Vec<u8>| f[12..14] == [8, 0] && [6, 17].contains(&f[14 + 9]);
        assert_eq!((tx.out[0].iter().filter(l4).count(), tx.out[1].iter().filter(l4).count()), (60, 60));
        for f in tx.out.iter().flatten().filter(l4) {
            inspect(f);
        }
        assert_eq!(counters.event_count(Event::FwdIn), 60);
        assert_eq!(counters.event_count(Event::FwdOut), 60);
        for why in [gw_core::counters::Drop::Ipv4BadChecksum, gw_core::counters::Drop::UnknownReply] {
            assert_eq!(counters.drop_count(why), 1, "burst {burst}: {why:?}");
        }
    }
}

/// Client frames and the servers' replies ([`traffic`]).
type Traffic = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The traffic of [`traffic`], built once (it runs a lab of its own).
fn traffic_once() -> &'static Traffic {
    static T: std::sync::OnceLock<Traffic> = std::sync::OnceLock::new();
    T.get_or_init(traffic)
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]
    /// Frames of any shape in bursts of any size meet the fate of the same
    /// frames one at a time: the traffic above with bytes changed (in any
    /// header, checksums left wrong or not) and frames cut short, in
    /// bursts of 1 to 40 frames. The staging slots are written over burst
    /// after burst: no record may outlive its frame, nor a frame without
    /// one take the last one's.
    #[test]
    fn changed_frames_in_bursts_meet_the_fate_of_one_packet_at_a_time(
        edits in proptest::collection::vec((0usize..200, 0usize..80, proptest::prelude::any::<u8>()), 0..40),
        cuts in proptest::collection::vec((0usize..200, 0usize..80), 0..8),
        bursts in proptest::collection::vec(1usize..40, 1..12),
    ) {
        let (clients, replies) = traffic_once();
        let mut frames: Vec<(u16, Vec<u8>)> =
            clients.iter().map(|f| (0, f.clone())).chain(replies.iter().map(|f| (1, f.clone()))).collect();
        let n = frames.len();
        for (i, at, v) in edits {
            let f = &mut frames[i % n].1;
            let at = at % f.len();
            f[at] = v;
        }
        for (i, len) in cuts {
            frames[i % n].1.truncate(len);
        }
        let (mut polled, mut ladder) = (lab(), lab());
        let rings = Rings::new(1);
        let counters = polled.counters.clone();
        let q = rings.queues(&counters);
        let (mut tx, mut staged) = (Tx::default(), Staging::new());
        let mut rest = &frames[..];
        for size in bursts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            // A burst is one port's: it ends where the port changes.
            let port = rest[0].0;
            let take = rest.iter().take(*size).take_while(|(p, _)| *p == port).count();
            let chunk: Vec<Vec<u8>> = rest[..take].iter().map(|(_, f)| f.clone()).collect();
            burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, port, &chunk);
            rest = &rest[take..];
        }
        proptest::prop_assert_eq!(&tx.out, &per_port(&ladder.io.sent), "the same frames out of each port, in order");
        proptest::prop_assert_eq!(counters.snapshot(), ladder.counters.snapshot(), "the same counters");
    }
}

/// With two workers, a burst of one frame (which `receive` takes without
/// the stages) and longer bursts hand the same frames over, in the same
/// order, and count the same; what stays is processed alike; an iterator
/// that may hold one frame but holds none does nothing but flush.
#[test]
fn one_frame_bursts_hand_over_and_process_as_longer_bursts_do() {
    let (clients, _) = traffic();
    let run = |burst: usize| {
        let mut polled = LabConfig { sessions: 1024, workers: 2, ..LabConfig::default() }
            .build()
            .with_services(Scheduler::Rr);
        polled.learn_neighbours();
        let rings = Rings::new(2);
        let counters = polled.counters.clone();
        let q = rings.queues(&counters);
        let (mut tx, mut staged) = (Tx::default(), Staging::new());
        let now = polled.now;
        for chunk in clients.chunks(burst) {
            receive(&mut polled.worker, &q, now, 0, chunk.iter().cloned(), &mut staged, &mut tx);
            after_bursts(&mut polled.worker, &q, now, chunk.len(), &mut staged, &mut tx);
        }
        let none = clients.iter().take(1).filter(|_| false).cloned();
        assert_eq!(none.size_hint(), (0, Some(1)));
        receive(&mut polled.worker, &q, now, 0, none, &mut staged, &mut tx);
        assert!(tx.queued.iter().all(Vec::is_empty), "burst {burst}: everything flushed");
        let inbox: Vec<(u16, Vec<u8>)> = std::iter::from_fn(|| rings.redirect.recv(1)).collect();
        (tx.out, inbox, counters.snapshot())
    };
    let (out, inbox, counted) = run(1);
    assert!(!inbox.is_empty() && inbox.len() < clients.len(), "some frames handed to worker 1");
    assert!(inbox.iter().all(|(port, _)| *port == 0));
    assert!(out[1].len() > 10, "the others forwarded here");
    for f in out[1].iter() {
        inspect(f);
    }
    for burst in [2, 32] {
        let (o, i, c) = run(burst);
        assert_eq!(o, out, "burst {burst}: the same frames out of each port, in order");
        assert_eq!(i, inbox, "burst {burst}: the same frames handed over, in order");
        assert_eq!(c, counted, "burst {burst}: the same counters");
    }
}

/// The NAT64 service of [`traffic6`]: UDP [VIP6]:81 -> RS[0]:8080 (IPv4,
/// FULLNAT) from the local address LIP.
fn key64() -> gw_proto::ServiceKey {
    gw_proto::ServiceKey { proto: Protocol::Udp, addr: IpAddr::V6(v6::VIP6), port: 81 }
}

/// A dual-stack lab: FULLNAT66 on [VIP6]:80 (TCP and UDP, real server
/// RS6 on port 0), NAT64 on [VIP6]:81 (UDP, RS[0] on port 1), the IPv4
/// FULLNAT services, every neighbour known.
fn lab_dual() -> Lab {
    let mut l = v6::lab6_from(ForwardMode::FullNat, LabConfig { sessions: 1024, ..LabConfig::default() });
    l.ok(Request::AddService { spec: ServiceSpec::new(key64(), Scheduler::Rr) });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
    l.ok(Request::AddDest { service: key64(), dest });
    l.ok(Request::AddLaddr { service: key64(), addr: Ipv4Addr::from(LIP).into() });
    let mut l = l.with_services(Scheduler::Rr);
    l.learn_neighbours();
    l
}

/// A UDP datagram `s -> d` from `mac` to `port`'s MAC.
fn udp6_to(port: u16, mac: [u8; 6], s: (Ipv6Addr, u16), d: (Ipv6Addr, u16)) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(mac, port_mac(port).0)
        .ipv6(s.0.octets(), d.0.octets(), 64)
        .udp(s.1, d.1)
        .write(&mut out, b"datagram")
        .unwrap();
    out
}

/// Client frames of [`lab_dual`] on port 0: IPv6 UDP flows to FULLNAT66
/// and to NAT64, TCP SYNs to FULLNAT66, IPv4 UDP flows between them, a
/// datagram to an IPv6 port without a service and one from a spoofed
/// IPv4-mapped source; then, built from what the gateway forwarded in a
/// first lab, the real servers' replies (IPv6 from RS6, IPv4 from RS[0]
/// to the NAT64 local address), with one to a local port no session has.
/// Each: (port, frame).
fn traffic6() -> Vec<(u16, Vec<u8>)> {
    use v6::{CLIENT6, VIP6};
    let mut clients = vec![];
    for i in 0..24 {
        clients.push(udp6_to(0, ROUTER_MAC, (CLIENT6, 20_000 + i), (VIP6, VPORT)));
        clients.push(udp6_to(0, ROUTER_MAC, (CLIENT6, 21_000 + i), (VIP6, 81)));
        if i % 3 == 0 {
            clients.push(udp(CLIENT_MAC, GW_OUT, (CLIENT, 22_000 + i), (VIP, VPORT)));
            let mut syn = vec![];
            PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0)
                .ipv6(CLIENT6.octets(), VIP6.octets(), 64)
                .tcp(23_000 + i, VPORT, 1000, 64000)
                .syn()
                .write(&mut syn, &[])
                .unwrap();
            clients.push(syn);
        }
    }
    clients.insert(9, udp6_to(0, ROUTER_MAC, (CLIENT6, 40_000), (VIP6, 99)));
    let mapped = Ipv4Addr::from(CLIENT).to_ipv6_mapped();
    clients.insert(17, udp6_to(0, ROUTER_MAC, (mapped, 40_001), (VIP6, 81)));
    let mut first = lab_dual();
    let mut frames: Vec<(u16, Vec<u8>)> = clients.iter().map(|f| (0, f.clone())).collect();
    let mut replies = vec![];
    for f in &clients {
        for (port, out) in first.rx(0, f.clone()) {
            let p = etherparse::SlicedPacket::from_ethernet(&out).expect("etherparse parses it");
            let (src, dst) = match (&p.net, &p.transport) {
                (Some(etherparse::NetSlice::Ipv6(ip)), _) => {
                    (IpAddr::V6(ip.header().source_addr()), IpAddr::V6(ip.header().destination_addr()))
                }
                (Some(etherparse::NetSlice::Ipv4(ip)), _) => {
                    (IpAddr::V4(ip.header().source_addr()), IpAddr::V4(ip.header().destination_addr()))
                }
                _ => continue,
            };
            let (sport, dport, is_tcp) = match &p.transport {
                Some(etherparse::TransportSlice::Udp(u)) => (u.source_port(), u.destination_port(), false),
                Some(etherparse::TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port(), true),
                _ => continue,
            };
            let reply = match (dst, src) {
                (IpAddr::V6(rs), IpAddr::V6(local)) if !is_tcp => {
                    udp6_to(port, RS_MAC[0], (rs, dport), (local, sport))
                }
                (IpAddr::V6(rs), IpAddr::V6(local)) => {
                    let mut f = vec![];
                    PacketBuilder::ethernet2(RS_MAC[0], port_mac(port).0)
                        .ipv6(rs.octets(), local.octets(), 64)
                        .tcp(dport, sport, 5000, 64000)
                        .syn()
                        .ack(1001)
                        .write(&mut f, &[])
                        .unwrap();
                    f
                }
                (IpAddr::V4(rs), IpAddr::V4(local)) => {
                    let k = RS.iter().position(|r| *r == rs.octets()).expect("to a real server");
                    udp(RS_MAC[k], port_mac(port), (rs.octets(), dport), (local.octets(), sport))
                }
                _ => unreachable!("no other family pair"),
            };
            replies.push((port, reply));
        }
    }
    assert_eq!(replies.len(), 24 + 24 + 8 + 8, "every flow forwarded");
    replies.insert(3, (1, udp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, 9))));
    // A NAT64 reply of a live session sent to another MAC (the port runs
    // promiscuous): the ladder's drop, not the NAT64 step's forward.
    let nat64 = replies.iter().position(|(_, f)| f[12..14] == [0x08, 0x00]).expect("a NAT64 reply");
    let mut stray = replies[nat64].clone();
    stray.1[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    replies.insert(nat64, stray);
    frames.extend(replies);
    frames
}

#[test]
fn ipv6_and_nat64_bursts_meet_the_fate_of_one_packet_at_a_time() {
    let frames = traffic6();
    for burst in [1, 4, 32] {
        let (mut polled, mut ladder) = (lab_dual(), lab_dual());
        let rings = Rings::new(1);
        let counters = polled.counters.clone();
        let q = rings.queues(&counters);
        let (mut tx, mut staged) = (Tx::default(), Staging::new());
        // Bursts of consecutive frames of one port, as a NIC gives them.
        let mut at = 0;
        while at < frames.len() {
            let port = frames[at].0;
            let n = frames[at..].iter().take(burst).take_while(|(p, _)| *p == port).count();
            let chunk: Vec<Vec<u8>> = frames[at..at + n].iter().map(|(_, f)| f.clone()).collect();
            at += n;
            burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, port, &chunk);
        }
        assert!(tx.queued.iter().all(Vec::is_empty), "burst {burst}: everything flushed");
        let want = per_port(&ladder.io.sent);
        assert_eq!(tx.out, want, "burst {burst}: the same frames out of each port, in order");
        assert_eq!(counters.snapshot(), ladder.counters.snapshot(), "burst {burst}: the same counters");
        // Every flow forwarded both ways: 24 + 24 + 8 + 8 each way.
        assert_eq!(counters.event_count(Event::FwdIn), 64, "burst {burst}");
        assert_eq!(counters.event_count(Event::FwdOut), 64, "burst {burst}");
        // NAT64's replies left port 0 as IPv6 from [VIP6]:81 (etherparse).
        let from_81 = tx.out[0]
            .iter()
            .filter_map(|f| etherparse::SlicedPacket::from_ethernet(f).ok())
            .filter(|p| match (&p.net, &p.transport) {
                (Some(etherparse::NetSlice::Ipv6(ip)), Some(etherparse::TransportSlice::Udp(u))) => {
                    ip.header().source_addr() == v6::VIP6 && u.source_port() == 81
                }
                _ => false,
            })
            .count();
        assert_eq!(from_81, 24, "burst {burst}: NAT64's replies translated");
        assert_eq!(counters.drop_count(Drop::UnknownReply), 1, "burst {burst}");
        assert_eq!(counters.drop_count(Drop::BadSourceAddr), 1, "burst {burst}");
        assert_eq!(counters.drop_count(Drop::NotOurMac), 1, "burst {burst}: the stray NAT64 reply");
    }
}

/// A lab whose services (FULLNAT, both real servers, the local address)
/// schedule every UDP datagram anew if `one_packet` (`ipvsadm -o`).
fn lab_one_packet(one_packet: bool) -> Lab {
    let mut l = LabConfig { sessions: 1024, ..LabConfig::default() }.build();
    for proto in [Protocol::Tcp, Protocol::Udp] {
        let mut spec = ServiceSpec::new(key(proto), Scheduler::Rr);
        spec.one_packet = one_packet;
        l.ok(Request::AddService { spec });
        for rs in RS {
            let dest = DestSpec::new(Ipv4Addr::from(rs), 8080, ForwardMode::FullNat, 1);
            l.ok(Request::AddDest { service: key(proto), dest });
        }
        l.ok(Request::AddLaddr { service: key(proto), addr: Ipv4Addr::from(LIP).into() });
    }
    l.learn_neighbours();
    l
}

/// A client's TCP RST `s -> d`.
fn rst(s: ([u8; 4], u16), d: ([u8; 4], u16)) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
        .ipv4(s.0, d.0, 64)
        .tcp(s.1, d.1, 1001, 64000)
        .rst()
        .write(&mut out, &[])
        .unwrap();
    out
}

/// The stage hashes a whole burst, and tests each destination against the
/// local addresses, before the first packet is processed (issue 14), and
/// the engine's lookups use those hashes; but the index they are looked
/// up in changes under them: an earlier packet of the burst opens the
/// session of a later one, ends it (an RST, then a SYN that reschedules
/// the closed session), or with one-packet scheduling ends and opens it
/// again for every datagram. One burst each way meets the fate of its
/// frames one at a time through the full ladder (which hashes each when
/// it is processed): the same frames out and the same counters.
#[test]
fn a_burst_whose_packets_open_and_end_each_others_sessions_meets_the_fate_of_one_at_a_time() {
    let (x, y, z) = ((CLIENT, 20_000), (CLIENT, 20_001), (CLIENT, 20_002));
    let to_vip = (VIP, VPORT);
    // y's connection is open before the burst (its server answered: a
    // client's ACK before that is forged, drop_tcp_before_server).
    let clients = vec![
        udp(CLIENT_MAC, GW_OUT, x, to_vip),
        udp(CLIENT_MAC, GW_OUT, x, to_vip),
        udp(CLIENT_MAC, GW_OUT, x, to_vip),
        tcp(CLIENT_MAC, GW_OUT, y, to_vip, false, true),
        rst(y, to_vip),
        tcp(CLIENT_MAC, GW_OUT, y, to_vip, true, false),
        tcp(CLIENT_MAC, GW_OUT, y, to_vip, false, true),
        tcp(CLIENT_MAC, GW_OUT, z, to_vip, true, false),
        tcp(CLIENT_MAC, GW_OUT, z, to_vip, true, false),
        udp(CLIENT_MAC, GW_OUT, x, to_vip),
    ];
    let open = |lab: &mut Lab| {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, y, to_vip, true, false));
        let (_, _, local, rs, _) = inspect(&out[0].1);
        let mac = RS_MAC[RS.iter().position(|r| *r == rs.0).expect("to a real server")];
        assert_eq!(lab.rx(1, tcp(mac, GW_IN, rs, local, true, true)).len(), 1);
    };
    for one_packet in [false, true] {
        let (mut polled, mut ladder) = (lab_one_packet(one_packet), lab_one_packet(one_packet));
        open(&mut polled);
        open(&mut ladder);
        let rings = Rings::new(1);
        let counters = polled.counters.clone();
        let q = rings.queues(&counters);
        let (mut tx, mut staged) = (Tx::default(), Staging::new());
        burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, 0, &clients);
        let ctx = format!("one_packet {one_packet}");
        assert_eq!(tx.out, per_port(&ladder.io.sent), "{ctx}: the same frames out");
        // Every client frame but y's last ACK, sent before the server of
        // its rescheduled connection answered (drop_tcp_before_server).
        assert_eq!(tx.out[1].len(), clients.len() - 1, "{ctx}: every other client frame forwarded");
        assert_eq!(counters.drop_count(gw_core::counters::Drop::TcpBeforeServer), 1, "{ctx}");
        assert_eq!(counters.event_count(Event::SessionsReused), 1, "{ctx}: the closed session rescheduled");
        // The real servers answer every frame, twice, in one burst: to
        // local ports whose sessions live, and (one-packet) to ports of
        // sessions a later datagram ended.
        let replies: Vec<Vec<u8>> = tx.out[1]
            .iter()
            .flat_map(|out| {
                let (_, _, local, rs, _) = inspect(out);
                let mac = RS_MAC[RS.iter().position(|r| *r == rs.0).expect("to a real server")];
                let f = if out[14 + 9] == 17 {
                    udp(mac, GW_IN, rs, local)
                } else {
                    tcp(mac, GW_IN, rs, local, true, true)
                };
                [f.clone(), f]
            })
            .collect();
        burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, 1, &replies);
        assert_eq!(tx.out, per_port(&ladder.io.sent), "{ctx}: the same replies out");
        assert_eq!(counters.snapshot(), ladder.counters.snapshot(), "{ctx}: the same counters");
        let back = tx.out[0].len();
        // Less y's SYN-ACK, forwarded before the bursts.
        let fwd_out = counters.event_count(Event::FwdOut) as usize - 1;
        assert_eq!(back, fwd_out, "{ctx}: what went back to the client was forwarded out");
        // Unanswered: the replies (twice each) to the two frames of the
        // rescheduled TCP session in the burst, and with one-packet
        // scheduling to the first three datagrams, whose sessions the next
        // one ended, and the last datagram's second reply (its first
        // ended its session).
        let ended = if one_packet { 11 } else { 4 };
        assert_eq!(counters.drop_count(Drop::UnknownReply), ended, "{ctx}");
        assert_eq!(back, replies.len() - ended as usize, "{ctx}: every other reply forwarded");
        let created = if one_packet { 7 } else { 4 };
        assert_eq!(counters.event_count(Event::SessionsCreated), created, "{ctx}");
        for f in tx.out.iter().flatten() {
            inspect(f);
        }
    }
}

/// A staged burst of established sessions' packets mixed with every kind
/// the session step declines or drops before it forwards (a frame to
/// another MAC, a loopback source, TTL 1, a FIN and an RST that move the
/// state, a segment out of the sequence window, a reply arriving on the
/// client's port, a new flow, a datagram to a local address with no
/// session), one burst each way, meets the fate of its frames one at a
/// time through the full ladder: the same frames out, in order, and the
/// same counters (branch `h14-run` holds an established path for such
/// bursts to this test).
#[test]
fn an_established_burst_with_every_branch_meets_the_fate_of_one_at_a_time() {
    let to_vip = (VIP, VPORT);
    let (u, t) = ((CLIENT, 21_000), (CLIENT, 21_001));
    let seg =
        |seq: u32, fin: bool, rst: bool| Seg { seq, ack: Some(1), fin, rst, data: b"data", ..Seg::default() };
    let opening = vec![udp(CLIENT_MAC, GW_OUT, u, to_vip), tcp(CLIENT_MAC, GW_OUT, t, to_vip, true, false)];
    let (mut polled, mut ladder) = (lab(), lab());
    let rings = Rings::new(1);
    let counters = polled.counters.clone();
    let q = rings.queues(&counters);
    let (mut tx, mut staged) = (Tx::default(), Staging::new());
    burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, 0, &opening);
    // The sessions' server sides, from what the gateway forwarded.
    let sides: Vec<(Endpoint, Endpoint, [u8; 6])> = tx.out[1]
        .iter()
        .map(|out| {
            let (_, _, local, rs, _) = inspect(out);
            (rs, local, RS_MAC[RS.iter().position(|r| *r == rs.0).expect("to a real server")])
        })
        .collect();
    assert_eq!(sides.len(), 2, "both flows opened");
    let ((urs, ulocal, umac), (trs, tlocal, tmac)) = (sides[0], sides[1]);
    let synack = tcp(tmac, GW_IN, trs, tlocal, true, true);
    burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, 1, &[synack]);
    let clients = vec![
        udp(CLIENT_MAC, GW_OUT, u, to_vip),
        segment(CLIENT_MAC, GW_OUT.0, t, to_vip, seg(1001, false, false)),
        udp(CLIENT_MAC, GW_IN, u, to_vip),
        udp(CLIENT_MAC, GW_OUT, ([127, 0, 0, 1], 21_000), to_vip),
        udp_ttl(CLIENT_MAC, GW_OUT, u, to_vip, 1),
        segment(CLIENT_MAC, GW_OUT.0, t, to_vip, seg(1005 + (1 << 31), false, false)),
        udp(CLIENT_MAC, GW_OUT, u, to_vip),
        udp(CLIENT_MAC, GW_OUT, (CLIENT, 21_002), to_vip),
        udp(umac, GW_OUT, urs, ulocal),
        segment(CLIENT_MAC, GW_OUT.0, t, to_vip, seg(1005, false, false)),
        udp(CLIENT_MAC, GW_OUT, u, to_vip),
    ];
    burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, 0, &clients);
    let replies = vec![
        udp(umac, GW_IN, urs, ulocal),
        segment(tmac, GW_IN.0, trs, tlocal, seg(1, false, false)),
        udp(umac, GW_IN, urs, (LIP, 9)),
        udp(umac, GW_IN, urs, ulocal),
        segment(tmac, GW_IN.0, trs, tlocal, seg(5, true, false)),
        segment(tmac, GW_IN.0, trs, tlocal, seg(6, false, false)),
        segment(tmac, GW_IN.0, trs, tlocal, seg(7, false, true)),
        udp(umac, GW_IN, urs, ulocal),
    ];
    burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, 1, &replies);
    assert_eq!(tx.out, per_port(&ladder.io.sent), "the same frames out of each port, in order");
    assert_eq!(counters.snapshot(), ladder.counters.snapshot(), "the same counters");
    for f in tx.out.iter().flatten().filter(|f| f[12..14] == [8, 0] && [6, 17].contains(&f[14 + 9])) {
        inspect(f);
    }
    // Each kind met its fate: forwarded both ways, and every drop counted.
    assert!(counters.event_count(Event::FwdIn) >= 6 && counters.event_count(Event::FwdOut) >= 4);
    let drops =
        [Drop::NotOurMac, Drop::BadSourceAddr, Drop::TtlExceeded, Drop::TcpOutOfWindow, Drop::ReversePath];
    for why in drops.into_iter().chain([Drop::UnknownReply]) {
        assert_eq!(counters.drop_count(why), 1, "{why:?}");
    }
}

/// A client's datagram of `len` bytes of payload, DF clear.
fn big_udp(s: Endpoint, d: Endpoint, len: usize) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
        .ipv4(s.0, d.0, 64)
        .udp(s.1, d.1)
        .write(&mut out, &vec![0x5a; len])
        .unwrap();
    out
}

/// NAT (`-m`) sessions' packets in staged bursts, the poll loop's
/// established step's other mode (issue 14): a datagram over the inside
/// port's MTU (fragmented or answered, as the full step does) among them,
/// and after one real server is deleted its sessions' packets (dropped
/// until it is re-added, as IPVS does) among the others'. One burst each
/// way, before and after the deletion, meets the fate of its frames one
/// at a time through the full ladder: the same frames out, in order, and
/// the same counters.
#[test]
fn nat_bursts_with_a_large_datagram_and_a_deleted_server_meet_the_fate_of_one_at_a_time() {
    let lab_nat =
        || {
            let mut l = LabConfig { sessions: 1024, inside_mtu: 1400, ..LabConfig::default() }
                .build()
                .with_mode(Scheduler::Rr, ForwardMode::Masq, 8080);
            l.learn_neighbours();
            l
        };
    let to_vip = (VIP, VPORT);
    let flows: Vec<Endpoint> = (0..6).map(|i| (CLIENT, 22_000 + i)).collect();
    let (mut polled, mut ladder) = (lab_nat(), lab_nat());
    let rings = Rings::new(1);
    let counters = polled.counters.clone();
    let q = rings.queues(&counters);
    let (mut tx, mut staged) = (Tx::default(), Staging::new());
    let mut clients: Vec<Vec<u8>> = flows.iter().map(|&c| udp(CLIENT_MAC, GW_OUT, c, to_vip)).collect();
    burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, 0, &clients);
    // NAT keeps the client as the source: the servers answer it.
    let replies: Vec<Vec<u8>> = tx.out[1]
        .iter()
        .map(|out| {
            let (_, _, client, rs, _) = inspect(out);
            assert_eq!(client.0, CLIENT, "NAT keeps the client's address");
            udp(RS_MAC[RS.iter().position(|r| *r == rs.0).expect("to a real server")], GW_IN, rs, client)
        })
        .collect();
    assert_eq!(replies.len(), flows.len(), "every flow opened");
    clients.insert(3, big_udp(flows[1], to_vip, 1450));
    for deleted in [false, true] {
        if deleted {
            for l in [&mut polled, &mut ladder] {
                let addr = Ipv4Addr::from(RS[0]).into();
                l.ok(Request::DelDest { service: key(Protocol::Udp), addr, port: 8080 });
            }
        }
        burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, 0, &clients);
        burst_both(&mut polled, &mut ladder, &q, &mut staged, &mut tx, 1, &replies);
        assert_eq!(tx.out, per_port(&ladder.io.sent), "deleted {deleted}: the same frames out, in order");
        assert_eq!(counters.snapshot(), ladder.counters.snapshot(), "deleted {deleted}: the same counters");
    }
    for f in
        tx.out.iter().flatten().filter(|f| f[12..14] == [8, 0] && f[14 + 9] == 17 && f[14 + 6] & 0x3f == 0)
    {
        inspect(f);
    }
    assert!(tx.out[1].iter().all(|f| f.len() <= 14 + 1400), "nothing over the inside MTU");
    // Half of the flows were the deleted server's (round robin: the large
    // datagram's is the other's): their packets both ways.
    assert_eq!(counters.drop_count(Drop::DestUnavailable), 2 * 3);
    assert!(counters.event_count(Event::FwdIn) >= 2 * 5 && counters.event_count(Event::FwdOut) >= 6 + 3);
}

#[test]
fn the_inbox_from_other_workers_is_read_two_bursts_a_poll() {
    let (mut clients, _) = traffic();
    clients.extend((0..40).map(|i| udp(CLIENT_MAC, GW_OUT, (CLIENT, 21_000 + i), (VIP, VPORT))));
    assert!(clients.len() > 64 && clients.len() <= 128);
    let (mut polled, mut ladder) = (lab(), lab());
    let rings = Rings::new(1);
    let counters = polled.counters.clone();
    let q = rings.queues(&counters);
    let mut tx = Tx::default();
    let mut staged = Staging::new();
    // As if another worker had received them (its rx burst, its classify
    // step) and found this one the owner.
    for f in &clients {
        rings.redirect.send(0, 0, f.clone()).expect("room");
        ladder.worker.handle(ladder.now, 0, f.clone(), &mut ladder.io);
    }
    let now = polled.now;
    let mut handed = vec![];
    for _ in 0..3 {
        let (h, k) = after_bursts(&mut polled.worker, &q, now, 0, &mut staged, &mut tx);
        assert_eq!(k, 0);
        handed.push(h);
    }
    assert_eq!(handed, [64, clients.len() - 64, 0], "two bursts a poll, then nothing");
    assert_eq!(tx.out, per_port(&ladder.io.sent), "the same frames out as received here");
    assert_eq!(counters.event_count(Event::RedirectIn), clients.len() as u64);
    // Counted as handed over, not received: otherwise the same counters.
    let snap = |c: &WorkerCounters| {
        let mut s = c.snapshot();
        s.retain(|c| c.name != "redirect_in_packets");
        s
    };
    assert_eq!(snap(&counters), snap(&ladder.counters));
}

/// A SYN flood that another worker hands over (all to this one, as a
/// flood from one source to a persistent service goes): while the inbox
/// holds a backlog (every burst read from it whole) its SYNs beyond the
/// quota are shed before the stages (`drop_syn_shed`), as an rx burst's
/// are, and the established datagrams among them are all forwarded; every
/// SYN is either shed or processed.
#[test]
fn a_syn_flood_handed_over_is_shed_at_the_inbox_and_established_flows_go_on() {
    let mut polled = lab();
    let rings = Rings::new(1);
    let counters = polled.counters.clone();
    let q = rings.queues(&counters);
    let mut tx = Tx::default();
    let mut staged = Staging::new();
    let now = polled.now;
    // Eight established UDP flows.
    let flow = |i: u16| udp(CLIENT_MAC, GW_OUT, (CLIENT, 20_000 + i), (VIP, VPORT));
    for i in 0..8 {
        rings.redirect.send(0, 0, flow(i)).expect("room");
    }
    after_bursts(&mut polled.worker, &q, now, 0, &mut staged, &mut tx);
    assert_eq!(tx.out[1].len(), 8, "the flows' first datagrams");
    // Each poll finds the inbox backed up (both of its bursts read whole):
    // 56 SYNs from one source, with a datagram of each flow among them.
    let (polls, syns_per_poll) = (60u16, 56u16);
    let mut syn_port = 1_000u16;
    for _ in 0..polls {
        for k in 0..syns_per_poll {
            let syn = tcp(CLIENT_MAC, GW_OUT, (CLIENT, syn_port), (VIP, VPORT), true, false);
            rings.redirect.send(0, 0, syn).expect("room");
            syn_port += 1;
            if k % 7 == 6 {
                rings.redirect.send(0, 0, flow(k / 7)).expect("room");
            }
        }
        assert_eq!(rings.redirect.len(0), 64);
        let (handed, _) = after_bursts(&mut polled.worker, &q, now, 0, &mut staged, &mut tx);
        assert_eq!(handed, 64, "shed or processed, all read");
    }
    assert!(rings.redirect.is_empty(0));
    let syns = u64::from(polls) * u64::from(syns_per_poll);
    let shed = counters.drop_count(Drop::SynShed);
    assert!(shed > syns / 2, "the flood shed at the inbox once it backed up: {shed} of {syns}");
    let udp_out = tx.out[1].iter().filter(|f| f[14 + 9] == 17).count();
    assert_eq!(udp_out, 8 + 8 * usize::from(polls), "every established datagram forwarded");
    let syns_processed = tx.out[1].iter().filter(|f| f[14 + 9] == 6).count() as u64
        + counters.drop_count(Drop::TableFull)
        + counters.drop_count(Drop::HalfOpenLimit);
    assert_eq!(syns_processed + shed, syns, "every SYN processed or shed");
    assert_eq!(counters.drop_count(Drop::RedirectFull), 0);
    assert_eq!(counters.event_count(Event::RedirectIn), 8 + syns + 8 * u64::from(polls));
}

#[test]
fn frames_from_the_kernel_leave_as_they_are() {
    let mut polled = lab();
    let rings = Rings::new(1);
    let counters = polled.counters.clone();
    let q = rings.queues(&counters);
    let mut tx = Tx::default();
    let mut staged = Staging::new();
    let frames: Vec<(u16, Vec<u8>)> = (0..3)
        .map(|i| (i % 2, udp([2, 0, 0, 0, 0, 9], MacAddr(CLIENT_MAC), (GW_OUT_ADDR, 22), (CLIENT, 5000 + i))))
        .collect();
    for (port, f) in &frames {
        rings.from_kernel.send(0, *port, f.clone()).expect("room");
    }
    let now = polled.now;
    let done = after_bursts(&mut polled.worker, &q, now, 0, &mut staged, &mut tx);
    assert_eq!(done, (0, 3));
    assert_eq!(tx.out, per_port(&frames), "out of their ports, unchanged");
    assert_eq!(counters.event_count(Event::FromKernel), 3);
    let done = after_bursts(&mut polled.worker, &q, now, 0, &mut staged, &mut tx);
    assert_eq!(done, (0, 0));
    assert_eq!(counters.event_count(Event::FromKernel), 3);
}

#[test]
fn neighbours_are_learnt_from_and_shared_with_the_other_workers() {
    let mut polled = lab();
    // What the lab's own ARP exchanges taught it (no other worker then).
    assert_eq!(polled.worker.take_learned().count(), 3);
    let rings = Rings::new(2);
    let counters = polled.counters.clone();
    let q = rings.queues(&counters);
    let mut tx = Tx::default();
    let mut staged = Staging::new();
    let now = polled.now;
    // Another worker learnt new MACs for both real servers.
    let new_mac = |i: usize| MacAddr([2, 0xee, 0, 0, 0, i as u8]);
    for (i, rs) in RS.iter().enumerate() {
        let ip = IpAddr::V4(Ipv4Addr::from(*rs));
        let learned = Learned { port: 1, ip, mac: new_mac(i), create: true, replace: true };
        rings.neighbours.send(0, 1, learned).expect("room");
    }
    after_bursts(&mut polled.worker, &q, now, 0, &mut staged, &mut tx);
    assert!(rings.neighbours.is_empty(0), "the inbox was read");
    // (Straight to the worker: with two workers the poll would hand some
    // flows to the other one.)
    for i in 0..2 {
        let flow = udp(CLIENT_MAC, GW_OUT, (CLIENT, 20_000 + i), (VIP, VPORT));
        polled.worker.handle(now, 0, flow, &mut tx);
    }
    tx.flush_all();
    assert_eq!(tx.out[1].len(), 2);
    for f in &tx.out[1] {
        let (_, dst_mac, _, rs, _) = inspect(f);
        let i = RS.iter().position(|r| *r == rs.0).unwrap();
        assert_eq!(dst_mac, new_mac(i).0, "to the MAC the other worker learnt");
    }
    // A neighbour this worker learns (a host's ARP request for the VIP) goes
    // to the other worker's inbox, not back to its own.
    let host = ([198, 18, 0, 77], [2, 0xc0, 0, 0, 0, 0x77]);
    let arp = arp_request(host.1, host.0, VIP);
    receive(&mut polled.worker, &q, now, 0, std::iter::once(arp), &mut staged, &mut tx);
    after_bursts(&mut polled.worker, &q, now, 1, &mut staged, &mut tx);
    let (tag, l) = rings.neighbours.recv(1).expect("shared with worker 1");
    assert_eq!((tag, l.port, l.ip, l.mac), (0, 0, IpAddr::V4(Ipv4Addr::from(host.0)), MacAddr(host.1)));
    assert!(rings.neighbours.is_empty(0) && rings.neighbours.is_empty(1));
}

#[test]
fn a_connection_listing_is_answered_between_polls() {
    let (clients, _) = traffic();
    let mut polled = lab();
    let rings = Rings::new(1);
    let counters = polled.counters.clone();
    let q = rings.queues(&counters);
    let mut tx = Tx::default();
    let mut staged = Staging::new();
    let now = polled.now;
    receive(&mut polled.worker, &q, now, 0, clients.iter().cloned(), &mut staged, &mut tx);
    let listed = std::thread::scope(|s| {
        let control = &rings.control;
        let listing = s.spawn(move || control.list(None, 16, Duration::from_secs(30), usize::MAX));
        while !listing.is_finished() {
            after_bursts(&mut polled.worker, &q, now, 0, &mut staged, &mut tx);
            std::thread::yield_now();
        }
        listing.join().unwrap()
    });
    let (sessions, _, complete) = listed;
    assert!(complete, "every chunk answered");
    assert_eq!(sessions.len(), 60, "the 40 UDP and 20 TCP sessions");
    assert_eq!(counters.event_count(Event::SessionsLive), 60);
}

/// The clock's millisecond is the TSC divided by the ticks per
/// millisecond, as the loop computed it every poll; a busy poll's end is
/// the next one's start (no second TSC read); the loops' lengths add up to
/// the time between the first and the last start, less the loops that
/// slept; the busy cycles and received packets are counted.
#[test]
fn the_poll_clock_reads_what_the_division_read() {
    let c = WorkerCounters::new(0, 0, 1, 1);
    let per_ms = 2_600;
    let mut tsc = 1_000_000u64;
    let mut clock = PollClock::new(per_ms, tsc);
    let (mut rng, mut busy_cycles, mut rx, mut looped, mut last) = (0x9e37_79b9_7f4a_7c15u64, 0, 0, 0, tsc);
    let mut resumed: Option<u64> = None;
    let mut slept = false;
    for i in 0..20_000u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tsc += rng % 5_000;
        let (start, now) = clock.begin(&c, || {
            assert!(resumed.is_none(), "poll {i}: read the TSC after a busy poll");
            tsc
        });
        assert_eq!(start, resumed.take().unwrap_or(tsc), "poll {i}");
        assert_eq!(now, start / per_ms, "poll {i}");
        if !slept {
            looped += start - last;
        }
        (last, slept) = (start, false);
        match rng % 4 {
            0 | 1 => {
                let end = start + rng % 9_000;
                clock.end_busy(&c, start, end, (i % 33) as usize);
                (busy_cycles, rx) = (busy_cycles + end - start, rx + i % 33);
                tsc = tsc.max(end);
                resumed = Some(end);
            }
            2 => {
                clock.slept();
                slept = true;
            }
            _ => {}
        }
    }
    assert_eq!(c.event_count(Event::LoopCycles), looped);
    assert_eq!(c.event_count(Event::BusyCycles), busy_cycles);
    assert_eq!(c.event_count(Event::RxPackets), rx);
}

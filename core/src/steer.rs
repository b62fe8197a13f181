//! Which worker owns a packet, and the hand-off to it.
//!
//! Each worker owns its sessions, so every packet of a connection must be
//! processed by one worker, whatever queue the NIC put it on. Ownership is a
//! pure function of the packet and the configuration, computable by any
//! worker without shared state:
//!
//! | packet | owner |
//! |---|---|
//! | to a FULLNAT local address (a reply) | `lport % N`: worker *i* allocates only local ports with `port % N == i` |
//! | to a VIP:port of a service | `hash(client address, client port) % N`, or `hash(client address & netmask) % N` when the service is persistent, so all of a client's connections and its template live on one worker; for lblc/lblcr, `hash(VIP) % N`, so their per-destination state lives on one worker as the kernel's single table does (such a service then runs on one core) |
//! | to a deleted VIP:port whose sessions still live (the trash) | as while it existed |
//! | from a NAT real server (a reply to the client) | the same hash, of the destination (the client) |
//! | an IPv4 fragment | `hash(source, destination, protocol, IP ID) % N`, the reassembling worker; it hands the reassembled datagram to the owner this table names for it, as fragments again (later fragments carry no ports, so the owner cannot be known before reassembly) |
//! | anything else (ARP, ping, errors, not ours) | whoever received it |
//!
//! IPv6 ([`classify6`]) follows the same table over `u128` addresses
//! folded to 32 bits: `lport % N` for a FULLNAT66 reply, the (masked, for
//! a persistent service) client address for the rest; a fragment by
//! `hash(source, destination, identification)` (IPv6 has no protocol in
//! the fixed header: the next header of a later fragment is only the
//! first one's copy); an ICMPv6 error by the flow it quotes, as IPv4's.
//!
//! The client side normally needs no hand-off when the NIC spreads flows
//! with a hash over the 5-tuple (RSS): every packet of a flow lands on one
//! queue. But that queue need not be the owner the table above names, and
//! replies never hash like their requests after NAT, so a worker that
//! receives a packet it does not own passes it to the owner through a
//! bounded lock-free queue ([`Redirect`]). A full queue drops and counts the
//! packet; nothing blocks. The hash is fixed (not seeded) so all workers
//! agree; it only spreads load, nothing is looked up by it.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::engine::L4Info;
use crate::service::{fold32, Snapshot, Steer, Steer6};
use crate::wire::ethernet::{self, EtherType};
use crate::wire::ipv4::{self, Protocol};
use crate::wire::ipv6;
use crate::wire::{icmpv4, icmpv6, ports, FlowKey};

/// Who processes a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The worker that received it.
    Here,
    /// Worker `n`.
    Worker(u32),
}

#[inline]
fn spread(addr: u32, port: u16, workers: u32) -> u32 {
    let x = ((addr as u64) << 16 | port as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((x >> 32) as u32) % workers
}

/// The owner of `frame` among `workers` workers.
pub fn owner(snap: &Snapshot, workers: u32, frame: &[u8]) -> Owner {
    classify_in(snap, workers, None, frame).owner
}

/// What the burst pipeline reads of a frame, once: its owner and, for a
/// TCP/UDP packet over unfragmented IPv4 that this worker processes, the
/// engine's record of it ([`L4Info`]: the flow key, whose session lookup
/// the pipeline prefetches, and the header facts the engine needs), made
/// only when every stateless check of the engine's ladder passed. The
/// engine then starts at the session step ([`Engine::process_parsed`]):
/// the frame is parsed once.
///
/// [`Engine::process_parsed`]: crate::engine::Engine::process_parsed
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub owner: Owner,
    pub l4: Option<L4Info>,
}

impl Parsed {
    /// The flow key of the record, if any.
    #[inline]
    pub fn key(&self) -> Option<FlowKey> {
        self.l4.map(|p| p.key())
    }
}

/// The owner of `frame` among `workers` workers, and the engine's record
/// of it when worker `me` processes it (the owner is `me` or
/// [`Owner::Here`]): a frame handed to another worker is checked there.
/// Inline (in the poll loop's stage): with one worker, the record alone,
/// written where the stage keeps it.
#[inline]
pub fn classify(snap: &Snapshot, workers: u32, me: u32, frame: &[u8]) -> Parsed {
    if workers <= 1 {
        // One worker owns everything: the record alone (what the ladder
        // of `classify_in` ends in for every frame then).
        return Parsed { owner: Owner::Here, l4: L4Info::check(frame) };
    }
    classify_in(snap, workers, Some(me), frame)
}

/// [`classify`] with the record written into `out` (the poll loop's
/// staging slot): the owner, and whether the frame has a record (then in
/// `out`). One worker: [`L4Info::check_into`], its fields written once.
#[inline]
pub(crate) fn classify_into(
    snap: &Snapshot,
    workers: u32,
    me: u32,
    frame: &[u8],
    out: &mut L4Info,
) -> (Owner, bool) {
    if workers <= 1 {
        return (Owner::Here, L4Info::check_into(frame, out));
    }
    let p = classify_in(snap, workers, Some(me), frame);
    match p.l4 {
        Some(l4) => {
            *out = l4;
            (p.owner, true)
        }
        None => (p.owner, false),
    }
}

fn classify_in(snap: &Snapshot, workers: u32, me: Option<u32>, frame: &[u8]) -> Parsed {
    let here = Parsed { owner: Owner::Here, l4: None };
    let Ok(eth) = ethernet::Frame::new_checked(frame) else { return here };
    if eth.ethertype() != EtherType::Ipv4 {
        if eth.ethertype() == EtherType::Ipv6 && workers > 1 {
            return Parsed { owner: classify6(snap, workers, eth.payload()), l4: None };
        }
        return here;
    }
    let Ok(ip) = ipv4::Packet::new_checked(eth.payload()) else { return here };
    let proto = ip.protocol();
    if ip.is_fragment() {
        if workers <= 1 {
            return here;
        }
        // Only the first fragment has the ports: all fragments of a
        // datagram meet on the worker their 3-tuple and ID name (as RSS
        // hashes fragments on addresses), which reassembles the datagram
        // and hands it on to its owner (`Worker::reassembled`).
        let (src, dst) = (u32::from(ip.src_addr()), u32::from(ip.dst_addr()));
        let addrs = src ^ dst.rotate_left(16) ^ u32::from(u8::from(proto)) << 8;
        return Parsed { owner: Owner::Worker(spread(addrs, ip.ident(), workers)), l4: None };
    }
    let l4 = ip.payload();
    if proto == Protocol::Icmp {
        if workers <= 1 {
            return here;
        }
        // An error about a session belongs where the session is: the owner
        // of the quoted flow's other direction.
        let owner = match icmpv4::Packet::new_checked(l4).ok().and_then(|m| m.quoted()) {
            Some(q) => owner_of(snap, workers, &q.reversed()),
            None => Owner::Here,
        };
        return Parsed { owner, l4: None };
    }
    if !matches!(proto, Protocol::Tcp | Protocol::Udp) {
        return here;
    }
    let Some((sport, dport)) = ports(l4) else { return here };
    let (src, dst) = (u32::from(ip.src_addr()), u32::from(ip.dst_addr()));
    let key = FlowKey { proto, src, sport, dst, dport };
    let owner = if workers <= 1 { Owner::Here } else { owner_of(snap, workers, &key) };
    let mine = match (owner, me) {
        (_, None) => false,
        (Owner::Here, Some(_)) => true,
        (Owner::Worker(w), Some(me)) => w == me,
    };
    Parsed { owner, l4: if mine { L4Info::check_ip(&ip) } else { None } }
}

/// The owner of a TCP/UDP packet of flow `k` (see the table above).
#[inline]
fn owner_of(snap: &Snapshot, workers: u32, k: &FlowKey) -> Owner {
    let FlowKey { proto, src, sport, dst, dport } = *k;
    if snap.is_laddr(dst) {
        return Owner::Worker(dport as u32 % workers);
    }
    // The client is the source of a client packet and the destination of a
    // NAT reply; the steering rule of the service says which part counts.
    let by = |steer: Steer, client: (u32, u16)| match steer {
        Steer::Client => spread(client.0, client.1, workers),
        Steer::ClientNet(mask) => spread(client.0 & mask, 0, workers),
        Steer::Destination(vip) => spread(vip, 0, workers),
    };
    if let Some(svc) = snap.service(proto, dst, dport) {
        return Owner::Worker(by(svc.steer(), (src, sport)));
    }
    if let Some(steer) = snap.trashed_steer(proto, dst, dport) {
        return Owner::Worker(by(steer, (src, sport)));
    }
    if let Some(steer) = snap.masq_dest(proto, src, sport) {
        return Owner::Worker(by(steer, (dst, dport)));
    }
    Owner::Here
}

/// The owner of IPv6 packet `l3` among `workers` (> 1) workers: TCP/UDP
/// by the table above; a fragment (not atomic) by its addresses and
/// identification, so all fragments of a datagram meet on the worker that
/// reassembles it; an ICMPv6 error by the flow it quotes, turned around
/// (the session's owner); anything else, or a packet whose extension
/// headers do not walk, [`Owner::Here`].
pub fn classify6(snap: &Snapshot, workers: u32, l3: &[u8]) -> Owner {
    let Ok(ip) = ipv6::Packet::new_checked(l3) else { return Owner::Here };
    let Ok(t) = ip.transport() else { return Owner::Here };
    let (src, dst) = (u128::from(ip.src_addr()), u128::from(ip.dst_addr()));
    match t.fragment {
        // An atomic fragment is processed at once: steered by its ports.
        Some(f) if !f.is_atomic() => {
            let addrs = fold32(src) ^ fold32(dst).rotate_left(16);
            return Owner::Worker(spread(addrs, (f.ident ^ f.ident >> 16) as u16, workers));
        }
        _ => {}
    }
    let proto = match t.protocol {
        ipv6::NextHeader::Tcp => Protocol::Tcp,
        ipv6::NextHeader::Udp => Protocol::Udp,
        ipv6::NextHeader::Icmpv6 => return icmp6_owner(snap, workers, ip.upper_layer(&t)),
        _ => return Owner::Here,
    };
    let Some((sport, dport)) = ports(ip.upper_layer(&t)) else { return Owner::Here };
    owner_of6(snap, workers, proto, (src, sport), (dst, dport))
}

/// The owner of ICMPv6 message `l4`: an error about a session belongs
/// where the session is, the owner of the quoted flow's other direction.
fn icmp6_owner(snap: &Snapshot, workers: u32, l4: &[u8]) -> Owner {
    let Ok(m) = icmpv6::Packet::new_checked(l4) else { return Owner::Here };
    let (Some((q, _)), Some((nh, sport, dport))) = (m.quoted(), m.quoted_ports()) else {
        return Owner::Here;
    };
    let proto = if nh == ipv6::NextHeader::Tcp { Protocol::Tcp } else { Protocol::Udp };
    let (src, dst) = (u128::from(q.src_addr()), u128::from(q.dst_addr()));
    owner_of6(snap, workers, proto, (dst, dport), (src, sport))
}

/// The owner of an IPv6 TCP/UDP packet `src -> dst` (see the table above).
fn owner_of6(snap: &Snapshot, workers: u32, proto: Protocol, src: (u128, u16), dst: (u128, u16)) -> Owner {
    let ((src, sport), (dst, dport)) = (src, dst);
    if snap.is_laddr6(dst) {
        return Owner::Worker(dport as u32 % workers);
    }
    let by = |steer: Steer6, client: (u128, u16)| match steer {
        Steer6::Client => spread(fold32(client.0), client.1, workers),
        Steer6::ClientNet(mask) => spread(fold32(client.0 & mask), 0, workers),
        Steer6::Destination(vip) => spread(fold32(vip), 0, workers),
    };
    if let Some(svc) = snap.service6(proto, dst, dport) {
        return Owner::Worker(by(svc.steer6(), (src, sport)));
    }
    if let Some(steer) = snap.trashed_steer6(proto, dst, dport) {
        return Owner::Worker(by(steer, (src, sport)));
    }
    if let Some(steer) = snap.masq_dest6(proto, src, sport) {
        return Owner::Worker(by(steer, (dst, dport)));
    }
    Owner::Here
}

/// One worker's inbox: packets other workers received for it, with the
/// port they came in on.
pub type Inbox<B> = ArrayQueue<(u16, B)>;

/// The hand-off between workers: every worker's inbox, shared by all.
pub struct Redirect<B> {
    inboxes: Vec<Arc<Inbox<B>>>,
}

impl<B> Clone for Redirect<B> {
    fn clone(&self) -> Self {
        Redirect { inboxes: self.inboxes.clone() }
    }
}

impl<B> Redirect<B> {
    /// Inboxes of `capacity` packets for `workers` workers.
    pub fn new(workers: usize, capacity: usize) -> Redirect<B> {
        Redirect { inboxes: (0..workers).map(|_| Arc::new(ArrayQueue::new(capacity.max(1)))).collect() }
    }
    /// Hands `pkt` to worker `to`; gives it back if that inbox is full.
    #[inline]
    pub fn send(&self, to: u32, port: u16, pkt: B) -> Result<(), B> {
        self.inboxes[to as usize].push((port, pkt)).map_err(|(_, p)| p)
    }
    /// The next packet waiting for worker `me`.
    #[inline]
    pub fn recv(&self, me: u32) -> Option<(u16, B)> {
        self.inboxes[me as usize].pop()
    }
    pub fn workers(&self) -> usize {
        self.inboxes.len()
    }
    /// Whether worker `me`'s inbox is empty: two loads, no fence (a `recv`
    /// that finds nothing costs a full fence, `ArrayQueue::pop`'s); the
    /// poll loop's test before it reads an inbox.
    #[inline]
    pub fn is_empty(&self, me: u32) -> bool {
        self.inboxes[me as usize].is_empty()
    }
    /// How many packets wait in worker `me`'s inbox (two loads, as
    /// [`Redirect::is_empty`]).
    #[inline]
    pub fn len(&self, me: u32) -> usize {
        self.inboxes[me as usize].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::{DestConf, Prepared};
    use crate::service::{Dest, Service};
    use etherparse::PacketBuilder;
    use gw_proto::{ForwardMode, Protocol, Scheduler, ServiceKey};
    use std::net::Ipv4Addr;

    const VIP: [u8; 4] = [198, 18, 0, 100];
    const LIP: [u8; 4] = [198, 18, 1, 10];

    fn snap(persistent: bool, mode: ForwardMode) -> Snapshot {
        snap_with(Scheduler::Rr, persistent, mode)
    }

    fn snap_with(scheduler: Scheduler, persistent: bool, mode: ForwardMode) -> Snapshot {
        let key = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(VIP).into(), port: 80 };
        let dest = Dest {
            slot: 0,
            addr: std::net::IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            port: 8080,
            mode,
            weight: 1,
            upper: 0,
            lower: 0,
        };
        let svc = Service {
            laddrs6: vec![],
            netmask6: u128::MAX,
            slot: 0,
            version: 1,
            key,
            scheduler,
            prep: Prepared::build(scheduler, 0, &[DestConf::new(1, dest.addr4(), dest.port)]),
            dests: vec![dest],
            laddrs: vec![u32::from_be_bytes(LIP)],
            persistent_ms: persistent.then_some(300_000),
            netmask: 0xffff_ff00,
            one_packet: false,
            sched_flags: 0,
            client_addr: gw_proto::ClientAddr::None,
            synproxy: false,
        };
        Snapshot::new(1, vec![Arc::new(svc)], 4)
    }

    fn tcp(src: ([u8; 4], u16), dst: ([u8; 4], u16)) -> Vec<u8> {
        let mut f = vec![];
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, 1, 100)
            .write(&mut f, &[])
            .unwrap();
        f
    }

    #[test]
    fn classify_gives_the_owner_and_the_flow_key_the_engine_looks_up() {
        let s = snap(false, ForwardMode::FullNat);
        let f = tcp(([198, 18, 0, 2], 40000), (VIP, 80));
        let want = FlowKey {
            proto: ipv4::Protocol::Tcp,
            src: u32::from_be_bytes([198, 18, 0, 2]),
            sport: 40000,
            dst: u32::from_be_bytes(VIP),
            dport: 80,
        };
        for workers in [1, 4] {
            let owner = owner(&s, workers, &f);
            let me = match owner {
                Owner::Worker(w) => w,
                Owner::Here => 0,
            };
            let p = classify(&s, workers, me, &f);
            assert_eq!(p.owner, owner);
            assert_eq!(p.key(), Some(want));
            // The record is the engine's own check of the frame.
            assert_eq!(p.l4, L4Info::check(&f));
            // Another worker's frame is checked there, not here.
            if workers > 1 {
                assert_eq!(classify(&s, workers, me + 1, &f).l4, None);
            }
        }
        // A one-worker gateway still gets the record (for the prefetch and
        // the engine); a frame without ports, or with a bad IPv4 header
        // checksum, gets none.
        assert_eq!(classify(&s, 1, 0, &f).owner, Owner::Here);
        assert_eq!(classify(&s, 4, 0, &f[..20]), Parsed { owner: Owner::Here, l4: None });
        let mut bad = f.clone();
        bad[14 + 10] ^= 0xff;
        assert_eq!(classify(&s, 1, 0, &bad).l4, None);
    }

    /// The poll loop's stage writes the record in place
    /// ([`classify_into`]): the same owner and record as [`classify`], for
    /// one worker and several, whatever the slot held before.
    #[test]
    fn classify_into_writes_what_classify_returns() {
        let s = snap(false, ForwardMode::FullNat);
        let ok = tcp(([198, 18, 0, 2], 40000), (VIP, 80));
        let reply = tcp(([198, 18, 1, 2], 8080), (LIP, 1027));
        let mut bad_sum = ok.clone();
        bad_sum[14 + 10] ^= 0xff;
        let mut options = ok.clone();
        options[14] = 0x46;
        let stale = L4Info::check(&reply).unwrap();
        for f in [ok.clone(), reply.clone(), bad_sum, options, ok[..20].to_vec(), ok[..40].to_vec(), vec![]] {
            for (workers, me) in [(1, 0), (4, 0), (4, 1), (4, 3)] {
                let p = classify(&s, workers, me, &f);
                let mut out = stale;
                let (owner, staged) = classify_into(&s, workers, me, &f, &mut out);
                assert_eq!(
                    (owner, staged.then_some(out)),
                    (p.owner, p.l4),
                    "{workers} workers, me {me}: {f:?}"
                );
            }
        }
    }

    #[test]
    fn fullnat_replies_belong_to_the_worker_owning_the_local_port() {
        let s = snap(false, ForwardMode::FullNat);
        for lport in [1024u16, 1025, 1026, 1027, 65535] {
            let f = tcp(([198, 18, 1, 2], 8080), (LIP, lport));
            assert_eq!(owner(&s, 4, &f), Owner::Worker(lport as u32 % 4));
        }
    }

    #[test]
    fn a_client_flow_always_has_the_same_owner_and_flows_spread() {
        let s = snap(false, ForwardMode::FullNat);
        let mut per_worker = [0; 4];
        for port in 1000..5000u16 {
            let f = tcp(([198, 18, 0, 2], port), (VIP, 80));
            let Owner::Worker(w) = owner(&s, 4, &f) else { panic!() };
            assert_eq!(owner(&s, 4, &f), Owner::Worker(w));
            per_worker[w as usize] += 1;
        }
        assert!(per_worker.iter().all(|n| (800..1200).contains(n)), "{per_worker:?}");
    }

    #[test]
    fn a_persistent_client_and_its_network_stay_on_one_worker() {
        let s = snap(true, ForwardMode::FullNat);
        let first = owner(&s, 8, &tcp(([198, 18, 0, 2], 1000), (VIP, 80)));
        for host in 2..250u8 {
            for port in [1, 2000, 65000] {
                assert_eq!(owner(&s, 8, &tcp(([198, 18, 0, host], port), (VIP, 80))), first);
            }
        }
    }

    #[test]
    fn nat_replies_go_where_the_client_side_went() {
        for persistent in [false, true] {
            let s = snap(persistent, ForwardMode::Masq);
            for port in 1000..1100u16 {
                let client = ([198, 18, 0, 7], port);
                let there = owner(&s, 4, &tcp(client, (VIP, 80)));
                let back = owner(&s, 4, &tcp(([198, 18, 1, 2], 8080), client));
                assert_eq!(there, back);
            }
        }
    }

    #[test]
    fn an_icmp_error_goes_to_the_owner_of_the_flow_it_quotes() {
        let s = snap(false, ForwardMode::FullNat);
        for lport in [1024u16, 1025, 1026, 1027] {
            // The real server's "port unreachable" about LIP:lport -> RIP:8080.
            let quoted = tcp((LIP, lport), ([198, 18, 1, 2], 8080));
            let mut f = vec![];
            PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4([198, 18, 1, 2], LIP, 64)
                .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::Port,
                ))
                .write(&mut f, &quoted[14..14 + 28])
                .unwrap();
            assert_eq!(owner(&s, 4, &f), Owner::Worker(lport as u32 % 4));
        }
    }

    #[test]
    fn an_lblc_service_runs_on_the_worker_of_its_destination() {
        for sched in [Scheduler::Lblc, Scheduler::Lblcr] {
            let s = snap_with(sched, false, ForwardMode::Masq);
            let first = owner(&s, 4, &tcp(([198, 18, 0, 2], 1000), (VIP, 80)));
            for host in 2..60u8 {
                for port in [1000u16, 2000, 3000] {
                    let client = ([198, 18, 0, host], port);
                    assert_eq!(owner(&s, 4, &tcp(client, (VIP, 80))), first);
                    assert_eq!(
                        owner(&s, 4, &tcp(([198, 18, 1, 2], 8080), client)),
                        first,
                        "its NAT replies too"
                    );
                }
            }
        }
    }

    #[test]
    fn fragments_of_a_datagram_meet_on_one_worker_and_datagrams_spread() {
        let s = snap(false, ForwardMode::FullNat);
        let mut per_worker = [0; 4];
        for id in 0..4000u16 {
            let payload = vec![7u8; 3000];
            let mut f = vec![];
            PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4([198, 18, 0, 2], VIP, 64)
                .udp(1000 + id, 53)
                .write(&mut f, &payload)
                .unwrap();
            let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
            ip.set_ident(id);
            ip.fill_checksum();
            let owners: Vec<Owner> = crate::frag::fragment_lens(&f, 1500)
                .enumerate()
                .map(|(k, len)| {
                    let mut out = vec![0; len];
                    crate::frag::write_fragment(&f, 1500, k, &mut out);
                    owner(&s, 4, &out)
                })
                .collect();
            assert_eq!(owners.len(), 3);
            assert!(owners.iter().all(|o| *o == owners[0]), "{owners:?}");
            let Owner::Worker(w) = owners[0] else { panic!() };
            per_worker[w as usize] += 1;
        }
        assert!(per_worker.iter().all(|n| (800..1200).contains(n)), "{per_worker:?}");
    }

    #[test]
    fn everything_else_stays_where_it_arrived() {
        let s = snap(false, ForwardMode::FullNat);
        assert_eq!(owner(&s, 4, &tcp(([1, 2, 3, 4], 5), ([5, 6, 7, 8], 9))), Owner::Here);
        assert_eq!(owner(&s, 4, &[0u8; 10]), Owner::Here);
        let mut arp = tcp(([198, 18, 0, 2], 1), (VIP, 80));
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(owner(&s, 4, &arp), Owner::Here);
        assert_eq!(owner(&s, 1, &tcp(([198, 18, 1, 2], 8080), (LIP, 1025))), Owner::Here);
    }

    #[test]
    fn the_hand_off_delivers_in_order_and_a_full_inbox_gives_the_packet_back() {
        let r: Redirect<Vec<u8>> = Redirect::new(2, 2);
        assert!(r.send(1, 0, vec![1]).is_ok());
        assert!(r.send(1, 1, vec![2]).is_ok());
        assert_eq!(r.send(1, 0, vec![3]), Err(vec![3]), "full: refused at once, not blocked");
        assert_eq!(r.recv(1), Some((0, vec![1])));
        assert_eq!(r.recv(1), Some((1, vec![2])));
        assert_eq!(r.recv(1), None);
        assert_eq!(r.recv(0), None);
        // Across threads.
        let r2 = r.clone();
        let t = std::thread::spawn(move || {
            for i in 0..1000u32 {
                let mut p = i.to_be_bytes().to_vec();
                while let Err(back) = r2.send(0, 0, p) {
                    p = back;
                    std::thread::yield_now();
                }
            }
        });
        let mut next = 0u32;
        while next < 1000 {
            if let Some((_, p)) = r.recv(0) {
                assert_eq!(u32::from_be_bytes(p[..4].try_into().unwrap()), next);
                next += 1;
            }
        }
        t.join().unwrap();
    }

    /// IPv6: a FULLNAT66 reply goes to the owner of its local port, a
    /// client's flow to one worker (all of a /64's with a persistent /64
    /// service), a NAT66 reply to its client's worker; what is not TCP/UDP
    /// stays here.
    #[test]
    fn ipv6_flows_are_steered_like_ipv4_ones() {
        let (vip, lip, rip): (u128, u128, u128) =
            (0x2001_0db8 << 96 | 0x50, 0x2001_0db8 << 96 | 0x60, 0x2001_0db8 << 96 | 0x200);
        let snap6 = |mode: ForwardMode, persistent: bool| {
            let dest = Dest {
                slot: 0,
                addr: std::net::Ipv6Addr::from(rip).into(),
                port: 8080,
                mode,
                weight: 1,
                upper: 0,
                lower: 0,
            };
            let svc = Service {
                slot: 0,
                version: 1,
                key: ServiceKey {
                    proto: Protocol::Tcp,
                    addr: std::net::Ipv6Addr::from(vip).into(),
                    port: 80,
                },
                scheduler: Scheduler::Rr,
                prep: Prepared::build(Scheduler::Rr, 0, &[DestConf::new(1, 1, 8080)]),
                dests: vec![dest],
                laddrs: vec![],
                laddrs6: vec![lip],
                persistent_ms: persistent.then_some(300_000),
                netmask: u32::MAX,
                netmask6: crate::service::mask6(64),
                one_packet: false,
                sched_flags: 0,
                client_addr: gw_proto::ClientAddr::None,
                synproxy: false,
            };
            Snapshot::new(1, vec![Arc::new(svc)], 4)
        };
        let tcp6 = |src: (u128, u16), dst: (u128, u16)| {
            let mut f = vec![];
            PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv6(src.0.to_be_bytes(), dst.0.to_be_bytes(), 64)
                .tcp(src.1, dst.1, 1, 100)
                .write(&mut f, &[])
                .unwrap();
            f
        };
        let client = |n: u128| 0x2001_0db8_0000_0001 << 64 | n;
        let s = snap6(ForwardMode::FullNat, false);
        for lport in [1024u16, 1025, 1027, 60001] {
            let f = tcp6((rip, 8080), (lip, lport));
            assert_eq!(owner(&s, 4, &f), Owner::Worker(u32::from(lport) % 4));
        }
        let mut seen = vec![];
        for n in 0..64 {
            let f = tcp6((client(n), 40000), (vip, 80));
            let o = owner(&s, 4, &f);
            assert_eq!(o, owner(&s, 4, &f));
            seen.push(o);
        }
        assert!(seen.iter().any(|o| *o != seen[0]), "clients spread over workers: {seen:?}");
        // Persistent with -M 64: one worker for the whole /64.
        let s = snap6(ForwardMode::FullNat, true);
        let first = owner(&s, 4, &tcp6((client(1), 1), (vip, 80)));
        for n in 2..32 {
            assert_eq!(owner(&s, 4, &tcp6((client(n), n as u16), (vip, 80))), first);
        }
        // NAT66: the reply goes where its client's request went.
        let s = snap6(ForwardMode::Masq, false);
        for n in 0..32 {
            let req = owner(&s, 4, &tcp6((client(n), 40000), (vip, 80)));
            assert_eq!(owner(&s, 4, &tcp6((rip, 8080), (client(n), 40000))), req);
        }
        // Not a service's: here; one worker: here.
        assert_eq!(owner(&s, 4, &tcp6((client(1), 1), (vip + 1, 80))), Owner::Here);
        assert_eq!(owner(&s, 1, &tcp6((client(1), 40000), (vip, 80))), Owner::Here);
        // ICMPv6 errors go where the quoted flow's session is: one about a
        // packet to the real server to the local port's owner, one about a
        // reply to the client's worker.
        let error6 = |quoted: &[u8]| {
            let mut f = vec![];
            PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv6([0x20, 1, 0xd, 0xb8, 0, 0x66, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [9; 16], 64)
                .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 })
                .write(&mut f, &quoted[14..])
                .unwrap();
            f
        };
        let s = snap6(ForwardMode::FullNat, false);
        for lport in [1024u16, 1027] {
            let err = error6(&tcp6((lip, lport), (rip, 8080)));
            assert_eq!(owner(&s, 4, &err), Owner::Worker(u32::from(lport) % 4));
        }
        for n in 0..16 {
            let req = owner(&s, 4, &tcp6((client(n), 40000), (vip, 80)));
            assert_eq!(owner(&s, 4, &error6(&tcp6((vip, 80), (client(n), 40000)))), req);
        }
    }

    /// IPv6 fragments of one datagram meet on one worker whatever their
    /// offset (later ones carry no ports), and datagrams spread; an atomic
    /// fragment goes where its flow goes; an ICMPv6 error goes to the owner
    /// of the session it quotes.
    #[test]
    fn ipv6_fragments_meet_on_one_worker_and_icmpv6_errors_follow_their_session() {
        let (vip, lip, rip): (u128, u128, u128) =
            (0x2001_0db8 << 96 | 0x50, 0x2001_0db8 << 96 | 0x60, 0x2001_0db8 << 96 | 0x200);
        let dest = Dest {
            slot: 0,
            addr: std::net::Ipv6Addr::from(rip).into(),
            port: 8080,
            mode: ForwardMode::FullNat,
            weight: 1,
            upper: 0,
            lower: 0,
        };
        let svc = Service {
            slot: 0,
            version: 1,
            key: ServiceKey { proto: Protocol::Udp, addr: std::net::Ipv6Addr::from(vip).into(), port: 53 },
            scheduler: Scheduler::Rr,
            prep: Prepared::build(Scheduler::Rr, 0, &[DestConf::new(1, 1, 8080)]),
            dests: vec![dest],
            laddrs: vec![],
            laddrs6: vec![lip],
            persistent_ms: None,
            netmask: u32::MAX,
            netmask6: u128::MAX,
            one_packet: false,
            sched_flags: 0,
            client_addr: gw_proto::ClientAddr::None,
            synproxy: false,
        };
        let s = Snapshot::new(1, vec![Arc::new(svc)], 4);
        let client = |n: u128| 0x2001_0db8_0000_0001 << 64 | n;
        let udp6 = |src: (u128, u16), dst: (u128, u16), len: usize| {
            let mut f = vec![];
            PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv6(src.0.to_be_bytes(), dst.0.to_be_bytes(), 64)
                .udp(src.1, dst.1)
                .write(&mut f, &vec![7u8; len])
                .unwrap();
            f
        };
        let mut per_worker = [0; 4];
        for id in 0..4000u32 {
            let f = udp6((client(u128::from(id % 7)), 1000), (vip, 53), 3000);
            let id = id.wrapping_mul(0x9e37_79b9);
            let owners: Vec<Owner> = crate::frag::fragment_lens(&f, 1280)
                .enumerate()
                .map(|(k, len)| {
                    let mut out = vec![0; len];
                    crate::frag::write_fragment6(&f, 1280, k, id, &mut out);
                    owner(&s, 4, &out)
                })
                .collect();
            assert_eq!(owners.len(), 3);
            assert!(owners.iter().all(|o| *o == owners[0]), "{owners:?}");
            let Owner::Worker(w) = owners[0] else { panic!() };
            per_worker[w as usize] += 1;
        }
        assert!(per_worker.iter().all(|n| (800..1200).contains(n)), "{per_worker:?}");
        // An atomic fragment (offset 0, M clear) is steered by its ports.
        for port in 1000..1064u16 {
            let f = udp6((client(1), port), (vip, 53), 100);
            let mut atomic = vec![0; f.len() + 8];
            crate::frag::write_fragment6(&f, 1500, 0, 5, &mut atomic);
            assert_eq!(owner(&s, 4, &atomic), owner(&s, 4, &f));
        }
        // The real server's "port unreachable" about LIP:lport -> RIP:8080
        // goes to the worker owning lport; a quote of no session's flow
        // and an echo request stay here.
        let unreach = |quoted: &[u8]| {
            let mut f = vec![];
            PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv6(rip.to_be_bytes(), lip.to_be_bytes(), 64)
                .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                    etherparse::icmpv6::DestUnreachableCode::Port,
                ))
                .write(&mut f, quoted)
                .unwrap();
            f
        };
        for lport in [1024u16, 1025, 1026, 1027] {
            let quoted = udp6((lip, lport), (rip, 8080), 20);
            assert_eq!(owner(&s, 4, &unreach(&quoted[14..])), Owner::Worker(u32::from(lport) % 4));
        }
        let stray = udp6((client(1), 9), (client(2), 9), 20);
        assert_eq!(owner(&s, 4, &unreach(&stray[14..])), Owner::Here);
        let mut echo = vec![];
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6(client(1).to_be_bytes(), vip.to_be_bytes(), 64)
            .icmpv6_echo_request(1, 1)
            .write(&mut echo, &[0; 8])
            .unwrap();
        assert_eq!(owner(&s, 4, &echo), Owner::Here);
    }
}

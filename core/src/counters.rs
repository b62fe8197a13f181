//! Per-worker counters.
//!
//! Every counter has exactly one writer: the worker that owns it. The worker
//! bumps it with a relaxed load + store (no locked instruction, no shared
//! cache line written by two cores); the control plane reads all workers'
//! blocks and sums them. Zeroing (`gwctl -Z`) is done by the reader keeping a
//! baseline, never by writing into a worker's block.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a packet was not forwarded. Every variant is a named counter that
/// `gwctl --counters` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Drop {
    /// Frame shorter than an Ethernet header.
    EthTruncated,
    /// Destination MAC is neither ours nor broadcast.
    NotOurMac,
    /// EtherType we do not handle (IPv6, VLAN, ...).
    UnsupportedEthertype,
    /// ARP packet that is malformed or not Ethernet/IPv4.
    ArpMalformed,
    /// ARP request for an address that is not ours.
    ArpNotForUs,
    /// IPv4 header fails the length/version/IHL checks.
    Ipv4Malformed,
    /// IPv4 header checksum is wrong.
    Ipv4BadChecksum,
    /// A multicast, broadcast, loopback or unspecified source address.
    BadSourceAddr,
    /// IPv4 fragment (policy: fragments are not load balanced, as in DPVS).
    Fragment,
    /// TCP or UDP header fails its length checks, or a port is zero.
    L4Malformed,
    /// ICMP message that is not an echo request to one of our addresses,
    /// nor an error about a live session.
    IcmpUnhandled,
    /// ICMP error (unreachable, time exceeded) quoting a flow with no session.
    IcmpUnknownFlow,
    /// IP protocol other than TCP, UDP or ICMP.
    UnsupportedProto,
    /// Destination is not one of our addresses and matches no session.
    NotForUs,
    /// Destination is a VIP (or our address) but no service matches the port.
    NoService,
    /// Packet to a local address (a reply) that matches no session.
    UnknownReply,
    /// TCP packet without a session that is not a plain SYN.
    NoSessionNotSyn,
    /// The service has no real server with a weight above zero.
    NoDest,
    /// The FULLNAT service has no local address configured.
    NoLaddr,
    /// Every local address and port toward that real server is in use.
    LaddrExhausted,
    /// The session table is full.
    TableFull,
    /// A new TCP connection while half-open sessions (NONE, SYN_RECV) are
    /// at their cap (SYN flood protection; established sessions keep room).
    HalfOpenLimit,
    /// The session's real server was deleted (IPVS drops these packets and lets
    /// the session expire).
    DestUnavailable,
    /// NAT: the real server already has a session with this client
    /// address and port (through another service).
    NatConflict,
    /// TUN: the packet plus the outer header exceeds the output MTU and DF
    /// is clear (with DF set an ICMP "fragmentation needed" goes back).
    TunnelTooBig,
    /// No headroom in the buffer for the tunnel header.
    NoHeadroom,
    /// No route to the destination.
    NoRoute,
    /// TTL would reach zero.
    TtlExceeded,
    /// The neighbour (next hop) did not answer ARP in time.
    NeighUnresolved,
    /// The neighbour's hold queue or the neighbour table is full.
    NeighQueueFull,
    /// No mbuf for an ARP request.
    NoMbuf,
    /// The owning worker's inbox was full (multi-core hand-off).
    RedirectFull,
    /// The TX ring was full.
    TxFull,
}

impl Drop {
    pub const ALL: [Drop; 33] = [
        Drop::EthTruncated,
        Drop::NotOurMac,
        Drop::UnsupportedEthertype,
        Drop::ArpMalformed,
        Drop::ArpNotForUs,
        Drop::Ipv4Malformed,
        Drop::Ipv4BadChecksum,
        Drop::BadSourceAddr,
        Drop::Fragment,
        Drop::L4Malformed,
        Drop::IcmpUnhandled,
        Drop::IcmpUnknownFlow,
        Drop::UnsupportedProto,
        Drop::NotForUs,
        Drop::NoService,
        Drop::UnknownReply,
        Drop::NoSessionNotSyn,
        Drop::NoDest,
        Drop::NoLaddr,
        Drop::LaddrExhausted,
        Drop::TableFull,
        Drop::HalfOpenLimit,
        Drop::DestUnavailable,
        Drop::NatConflict,
        Drop::TunnelTooBig,
        Drop::NoHeadroom,
        Drop::NoRoute,
        Drop::TtlExceeded,
        Drop::NeighUnresolved,
        Drop::NeighQueueFull,
        Drop::NoMbuf,
        Drop::RedirectFull,
        Drop::TxFull,
    ];

    /// The counter's name as `gwctl --counters` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Drop::EthTruncated => "drop_eth_truncated",
            Drop::NotOurMac => "drop_not_our_mac",
            Drop::UnsupportedEthertype => "drop_unsupported_ethertype",
            Drop::ArpMalformed => "drop_arp_malformed",
            Drop::ArpNotForUs => "drop_arp_not_for_us",
            Drop::Ipv4Malformed => "drop_ipv4_malformed",
            Drop::Ipv4BadChecksum => "drop_ipv4_bad_checksum",
            Drop::BadSourceAddr => "drop_bad_source_addr",
            Drop::Fragment => "drop_fragment",
            Drop::L4Malformed => "drop_l4_malformed",
            Drop::IcmpUnhandled => "drop_icmp_unhandled",
            Drop::IcmpUnknownFlow => "drop_icmp_unknown_flow",
            Drop::UnsupportedProto => "drop_unsupported_proto",
            Drop::NotForUs => "drop_not_for_us",
            Drop::NoService => "drop_no_service",
            Drop::UnknownReply => "drop_unknown_reply",
            Drop::NoSessionNotSyn => "drop_no_session_not_syn",
            Drop::NoDest => "drop_no_dest",
            Drop::NoLaddr => "drop_no_laddr",
            Drop::LaddrExhausted => "drop_laddr_exhausted",
            Drop::TableFull => "drop_table_full",
            Drop::HalfOpenLimit => "drop_half_open_limit",
            Drop::DestUnavailable => "drop_dest_unavailable",
            Drop::NatConflict => "drop_nat_conflict",
            Drop::TunnelTooBig => "drop_tunnel_too_big",
            Drop::NoHeadroom => "drop_no_headroom",
            Drop::NoRoute => "drop_no_route",
            Drop::TtlExceeded => "drop_ttl_exceeded",
            Drop::NeighUnresolved => "drop_neigh_unresolved",
            Drop::NeighQueueFull => "drop_neigh_queue_full",
            Drop::NoMbuf => "drop_no_mbuf",
            Drop::RedirectFull => "drop_redirect_full",
            Drop::TxFull => "drop_tx_full",
        }
    }
}

/// Non-drop events a worker counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Event {
    RxPackets,
    TxPackets,
    /// Client-to-server packets forwarded through a session.
    FwdIn,
    /// Server-to-client packets forwarded through a session.
    FwdOut,
    SessionsCreated,
    SessionsExpired,
    ArpRequestsAnswered,
    ArpRequestsSent,
    ArpRepliesLearned,
    IcmpEchoAnswered,
    /// ICMP "fragmentation needed" sent for packets too big for a tunnel.
    IcmpFragNeededSent,
    /// ICMP errors about a session translated and forwarded.
    IcmpErrorsTranslated,
    /// Packets parked while their next hop was being resolved.
    NeighHeld,
    /// Sessions currently live (a gauge).
    SessionsLive,
    /// TCP sessions in NONE or SYN_RECV (a gauge).
    HalfOpen,
    /// Bytes the session table allocated (slab, both indexes, timer wheel).
    SessionTableBytes,
    /// Session-table capacity of this worker.
    SessionCapacity,
    /// Packets handed to the worker that owns them.
    RedirectOut,
    /// Packets received from other workers.
    RedirectIn,
    /// Polls that received nothing (idle policy).
    IdlePolls,
    /// TSC cycles spent in polls that received packets.
    BusyCycles,
}

impl Event {
    pub const ALL: [Event; 21] = [
        Event::RxPackets,
        Event::TxPackets,
        Event::FwdIn,
        Event::FwdOut,
        Event::SessionsCreated,
        Event::SessionsExpired,
        Event::ArpRequestsAnswered,
        Event::ArpRequestsSent,
        Event::ArpRepliesLearned,
        Event::IcmpEchoAnswered,
        Event::IcmpFragNeededSent,
        Event::IcmpErrorsTranslated,
        Event::NeighHeld,
        Event::SessionsLive,
        Event::HalfOpen,
        Event::SessionTableBytes,
        Event::SessionCapacity,
        Event::RedirectOut,
        Event::RedirectIn,
        Event::IdlePolls,
        Event::BusyCycles,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::RxPackets => "rx_packets",
            Event::TxPackets => "tx_packets",
            Event::FwdIn => "fwd_in_packets",
            Event::FwdOut => "fwd_out_packets",
            Event::SessionsCreated => "sessions_created",
            Event::SessionsExpired => "sessions_expired",
            Event::ArpRequestsAnswered => "arp_requests_answered",
            Event::ArpRequestsSent => "arp_requests_sent",
            Event::ArpRepliesLearned => "arp_replies_learned",
            Event::IcmpEchoAnswered => "icmp_echo_answered",
            Event::IcmpFragNeededSent => "icmp_frag_needed_sent",
            Event::IcmpErrorsTranslated => "icmp_errors_translated",
            Event::NeighHeld => "neigh_held_packets",
            Event::SessionsLive => "sessions_live",
            Event::HalfOpen => "sessions_half_open",
            Event::SessionTableBytes => "session_table_bytes",
            Event::SessionCapacity => "session_capacity",
            Event::RedirectOut => "redirect_out_packets",
            Event::RedirectIn => "redirect_in_packets",
            Event::IdlePolls => "idle_polls",
            Event::BusyCycles => "busy_cycles",
        }
    }
}

const N_DROPS: usize = Drop::ALL.len();
const N_EVENTS: usize = Event::ALL.len();

/// A counter with a single writer.
#[derive(Default, Debug)]
pub struct Cell(AtomicU64);

impl Cell {
    /// Adds `n`. Only the owning worker may call this (single writer).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline(always)]
    pub fn sub(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_sub(n), Relaxed);
    }
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed)
    }
}

/// Traffic counters of one service or real server, on one worker.
/// One cache line, so two workers never share a line.
#[derive(Default, Debug)]
#[repr(align(64))]
pub struct TrafficCells {
    pub conns: Cell,
    pub inpkts: Cell,
    pub outpkts: Cell,
    pub inbytes: Cell,
    pub outbytes: Cell,
    /// Live sessions in TCP ESTABLISHED (gauge).
    pub active: Cell,
    /// Other live sessions (gauge).
    pub inactive: Cell,
    /// Live persistence templates pointing here (gauge, IPVS's PersistConn).
    pub persist: Cell,
}

impl TrafficCells {
    pub fn read(&self) -> gw_proto::Stats {
        gw_proto::Stats {
            conns: self.conns.get(),
            inpkts: self.inpkts.get(),
            outpkts: self.outpkts.get(),
            inbytes: self.inbytes.get(),
            outbytes: self.outbytes.get(),
        }
    }
}

/// Everything one worker publishes to the control plane.
#[derive(Debug)]
pub struct WorkerCounters {
    pub worker: u32,
    pub lcore: u32,
    drops: [Cell; N_DROPS],
    events: [Cell; N_EVENTS],
    /// Indexed by real-server slot.
    pub dests: Box<[TrafficCells]>,
    /// Indexed by service slot.
    pub services: Box<[TrafficCells]>,
    /// The configuration generation this worker runs with.
    pub generation: Cell,
}

impl WorkerCounters {
    pub fn new(worker: u32, lcore: u32, max_services: usize, max_dests: usize) -> Self {
        WorkerCounters {
            worker,
            lcore,
            drops: std::array::from_fn(|_| Cell::default()),
            events: std::array::from_fn(|_| Cell::default()),
            dests: (0..max_dests).map(|_| TrafficCells::default()).collect(),
            services: (0..max_services).map(|_| TrafficCells::default()).collect(),
            generation: Cell::default(),
        }
    }
    #[inline(always)]
    pub fn count_drop(&self, why: Drop) {
        self.drops[why as usize].add(1);
    }
    #[inline(always)]
    pub fn count_drops(&self, why: Drop, n: u64) {
        self.drops[why as usize].add(n);
    }
    #[inline(always)]
    pub fn event(&self, e: Event, n: u64) {
        self.events[e as usize].add(n);
    }
    #[inline(always)]
    pub fn event_cell(&self, e: Event) -> &Cell {
        &self.events[e as usize]
    }
    pub fn drop_count(&self, why: Drop) -> u64 {
        self.drops[why as usize].get()
    }
    pub fn event_count(&self, e: Event) -> u64 {
        self.events[e as usize].get()
    }
    /// All counters by name, events first, then drops.
    pub fn snapshot(&self) -> Vec<gw_proto::Counter> {
        let ev = Event::ALL.iter().map(|e| (e.name(), self.event_count(*e)));
        let dr = Drop::ALL.iter().map(|d| (d.name(), self.drop_count(*d)));
        ev.chain(dr).map(|(name, value)| gw_proto::Counter { name: name.to_string(), value }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_name() {
        for (i, d) in Drop::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
        let mut names: Vec<_> = Drop::ALL.iter().map(|d| d.name()).collect();
        names.extend(Event::ALL.iter().map(|e| e.name()));
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn counts_are_read_back_by_name() {
        let c = WorkerCounters::new(0, 1, 4, 4);
        c.count_drop(Drop::NoRoute);
        c.count_drop(Drop::NoRoute);
        c.event(Event::RxPackets, 5);
        let snap = c.snapshot();
        let get = |n: &str| snap.iter().find(|x| x.name == n).unwrap().value;
        assert_eq!(get("drop_no_route"), 2);
        assert_eq!(get("rx_packets"), 5);
        assert_eq!(get("drop_fragment"), 0);
        assert_eq!(std::mem::size_of::<TrafficCells>(), 64);
    }
}

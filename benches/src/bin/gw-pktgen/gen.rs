//! The generator's poll loop: one thread, two ports.
//!
//! Each turn of the loop: drain the server port (answer or count each
//! packet, answer ARP), drain the client port (count answers, record
//! latency, complete TCP handshakes, answer ARP), then send at most one
//! burst of client packets, paced by the TSC. Receiving comes first and
//! takes up to [`RX_BURSTS_PER_TURN`] bursts per port, so the generator
//! drains what the gateway sends before it adds more: a gateway TX ring
//! never fills because the generator was busy building packets.
//!
//! At "as fast as possible" a burst the link refused makes the next turn
//! skip sending (backpressure instead of building packets only to free
//! them). In the open phase a refused packet's flow is sent again, so every
//! flow gets its opening packet.
//!
//! With a [`Window`] (`--window`), at most that many client packets are in
//! flight (sent, their answer not yet back at the client port): the
//! generator offers what the gateway answers, paced by the answers, instead
//! of keeping its receive ring full (a gateway sheds SYNs from a full ring,
//! `gw_core::synproxy::shed`).

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use gw_benches::traffic::flows;
use gw_benches::traffic::frame::{self, FragTemplate, Kind};
use gw_benches::traffic::frame6::{self, AnyTemplate as Template};
use gw_benches::traffic::hist::Histogram;
use gw_benches::traffic::order::Order;
use gw_benches::traffic::report::{self, GwCounters, Phase, Sample};
use gw_benches::traffic::synproxy as sp;
use gw_core::wire::ethernet::MacAddr;
use gw_core::wire::tcp::flags;
use gw_dpdk::{tsc, Mempool, Port, RxBurst, TxBuffer, BURST};

/// Rx bursts per port per turn of the loop.
const RX_BURSTS_PER_TURN: usize = 4;
/// Handshake ACKs waiting to be sent, at most.
const MAX_PENDING_ACKS: usize = 1 << 20;
/// A stamp older than this many seconds is not a latency but a stale packet.
const MAX_LATENCY_S: u64 = 1;

/// A port and the MAC the generator uses on it.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub port: Port,
    pub mac: MacAddr,
}

/// Which flows a phase sends, in what order.
#[derive(Clone, Debug)]
pub enum Flows {
    /// Flows `next..end`, once each (opening packets).
    Once { next: u64, end: u64 },
    /// Flows `0..n` round and round (established traffic), in `order`.
    Cycle { n: u64, next: u64, order: Order },
    /// A new flow per packet, from `next` up.
    Fresh { next: u64 },
    /// These flows, once each (opening packets sent again).
    List { flows: Vec<u64>, next: usize },
}

impl Flows {
    #[inline]
    fn next(&mut self) -> Option<u64> {
        match self {
            Flows::Once { next, end } => (*next < *end).then(|| {
                *next += 1;
                *next - 1
            }),
            Flows::Cycle { n, next, order } => {
                let i = *next;
                *next = if i + 1 == *n { 0 } else { i + 1 };
                Some(order.flow(i))
            }
            Flows::Fresh { next } => {
                *next += 1;
                Some(*next - 1)
            }
            Flows::List { flows, next } => flows.get(*next).map(|f| {
                *next += 1;
                *f
            }),
        }
    }

    /// Gives back the last `k` flows handed out (their packets were refused).
    fn rewind(&mut self, k: u64) {
        match self {
            Flows::Once { next, .. } => *next -= k,
            Flows::List { next, .. } => *next -= k as usize,
            _ => {}
        }
    }

    fn done(&self) -> bool {
        match self {
            Flows::Once { next, end } => next >= end,
            Flows::List { flows, next } => *next >= flows.len(),
            _ => false,
        }
    }
}

/// What one phase sends.
pub struct Traffic<'a> {
    /// One template per size; `pattern` says which one each packet uses.
    pub templates: &'a [Template],
    pub pattern: &'a [usize],
    pub flows: Flows,
    /// Client packets per second; 0 = as fast as the link takes them.
    pub rate: f64,
    /// Seconds to send; `None`: until `flows` is exhausted.
    pub seconds: Option<f64>,
    /// Send fragmented datagrams from this template instead (`rate` then
    /// counts datagrams).
    pub frag: Option<&'a FragTemplate>,
}

/// A flood sent alongside the established traffic, as fast as the link
/// takes it, whenever no established packet is due.
pub struct Flood {
    pub template: Template,
    pub flows: Flows,
    /// Flood packets per second; 0 = as fast as the link takes them.
    pub rate: f64,
}

/// A fragmented datagram (its flow, IP identification and stamp) and its
/// next fragment to send.
#[derive(Clone, Copy, Debug)]
struct Cut {
    flow: u64,
    id: u16,
    stamp: u64,
    next: usize,
}

/// Answer pacing (`--window`): at most `size` client packets in flight,
/// each awaiting its one answer at the client port (a UDP datagram's, a
/// SYN's SYN+ACK, a handshake ACK's echo). A packet whose answer never
/// comes (shed, dropped) would close the window for good, so while the
/// window is full and no answer arrived for a timeout, the packets in
/// flight are given up as lost and counted (`window_lost`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    /// Client packets in flight at most; 0: no pacing.
    pub size: u64,
    /// How long a full window waits for an answer before it gives up the
    /// packets in flight.
    pub timeout_ms: u64,
    /// Packets of this phase given up as lost.
    lost: u64,
    /// Answers counted at the last call, and when that count last moved.
    seen_rx: u64,
    since: u64,
}

impl Window {
    pub fn new(size: u64, timeout_ms: u64) -> Window {
        Window { size, timeout_ms, ..Window::default() }
    }

    /// Starts a phase: its counters start at 0.
    fn reset(&mut self, now: u64) {
        *self = Window { since: now, ..Window::new(self.size, self.timeout_ms) };
    }

    /// How many client packets may go now, after `tx` sent and `rx`
    /// answers so far in the phase; `timeout` in the `now` clock's ticks.
    fn room(&mut self, tx: u64, rx: u64, now: u64, timeout: u64) -> u64 {
        if self.size == 0 {
            return u64::MAX;
        }
        if rx != self.seen_rx {
            self.seen_rx = rx;
            self.since = now;
        }
        let mut out = tx.saturating_sub(rx + self.lost);
        if out >= self.size && now.saturating_sub(self.since) >= timeout {
            self.lost += out;
            self.since = now;
            out = 0;
        }
        self.size.saturating_sub(out)
    }
}

/// The generator's state across phases.
pub struct Gen {
    pub client: Link,
    pub server: Link,
    pub pool: Mempool,
    pub hz: u64,
    pub one_way: bool,
    pub gw_ip: Ipv4Addr,
    pub gw_mac: Option<MacAddr>,
    pub gw_socket: Option<PathBuf>,
    pub stop: &'static AtomicBool,
    /// Rx/tx queue pairs per port (as many as the gateway has workers: a
    /// memif pair must agree on it).
    queues: u16,
    /// Tx queue of the next generated burst (bursts go round the queues).
    next_queue: u16,
    /// Pause after a refused burst at "as fast as possible" (TSC ticks).
    pub backoff_ticks: u64,
    /// The clients' handshake ACK (TCP), sent for every SYN+ACK that arrives.
    pub ack_template: Option<Template>,
    /// Clients whose SYN+ACK arrived and whose ACK is not sent yet. They go
    /// before any new packet, and a refused one is sent again: a lost ACK
    /// would leave its session half-open. With each, the acknowledgement
    /// number it carries under SYNPROXY (the cookie + 1).
    pending_acks: VecDeque<(u32, u16, u32)>,
    /// The flood of the current phase, if any.
    pub flood: Option<Flood>,
    /// SYN-flood measurement: only TCP segments with PSH and without SYN are
    /// the established flows' (counted, timed); anything else is flood, never
    /// answered with a handshake ACK (its clients are spoofed).
    pub split_flood: bool,
    /// The service is a SYNPROXY one ([`sp`]): the clients answer the
    /// cookie SYN+ACKs of the established flows (below `established`) and
    /// of the legitimate new connections, the servers acknowledge SYNs.
    pub synproxy: bool,
    pub established: u64,
    /// TCP: which of the flows below `established` had their SYN answered
    /// (a SYN+ACK arrived at the client), so that the open phase can send
    /// the others' SYN again as a TCP stack would.
    pub answered: Vec<bool>,
    /// Legitimate new connections (SYNs) sent during a flood, paced.
    pub legit: Option<Flood>,
    servers: Vec<Ipv4Addr>,
    /// The IPv6 real servers (FULLNAT66), answered to neighbour solicitations.
    servers6: Vec<std::net::Ipv6Addr>,
    /// The datagram being cut into fragments, and the IP identification of
    /// the next one (sequential, as most stacks do).
    frag_buf: Vec<u8>,
    next_ip_id: u16,
    /// The datagrams of the burst being sent, and the one whose last
    /// fragments the link refused (sent first next time).
    frag_burst: Vec<Cut>,
    frag_cut: Option<Cut>,
    rx: RxBurst,
    tx_client: TxBuffer,
    tx_server: TxBuffer,
    cur: Phase,
    hist: Histogram,
    gw_warned: bool,
    /// Answer pacing of phases at "as fast as possible" (`--window`).
    pub window: Window,
    /// The clients answer a SYN+ACK with the handshake's ACK; when false
    /// (`--syn-only` measurements) the connections stay half-open, and a
    /// new session costs the gateway the SYN and its SYN+ACK.
    pub complete_handshakes: bool,
}

impl Gen {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Link,
        server: Link,
        pool: Mempool,
        hz: u64,
        one_way: bool,
        gw_ip: Ipv4Addr,
        gw_mac: Option<MacAddr>,
        gw_socket: Option<PathBuf>,
        stop: &'static AtomicBool,
        queues: u16,
    ) -> Gen {
        Gen {
            client,
            server,
            pool,
            hz,
            one_way,
            gw_ip,
            gw_mac,
            gw_socket,
            stop,
            queues: queues.max(1),
            next_queue: 0,
            backoff_ticks: 0,
            ack_template: None,
            pending_acks: VecDeque::with_capacity(1 << 16),
            flood: None,
            split_flood: false,
            synproxy: false,
            established: 0,
            answered: vec![],
            legit: None,
            servers: flows::real_servers(),
            servers6: (0..flows::RS_COUNT).map(|i| frame6::nth6(frame6::RS6_FIRST, i)).collect(),
            frag_buf: Vec::new(),
            next_ip_id: 0,
            frag_burst: Vec::with_capacity(BURST),
            frag_cut: None,
            rx: RxBurst::new(),
            tx_client: TxBuffer::new(),
            tx_server: TxBuffer::new(),
            cur: Phase::default(),
            hist: Histogram::new(),
            gw_warned: false,
            window: Window::default(),
            complete_handshakes: true,
        }
    }

    fn secs(&self, ticks: u64) -> f64 {
        ticks as f64 / self.hz as f64
    }

    /// Waits until both links are up. A memif client does not reconnect by
    /// itself when the server refused it (e.g. it connected before the
    /// server's port started), so a link still down after a second is
    /// restarted.
    pub fn wait_links(&self, timeout_s: f64) -> bool {
        let start = tsc();
        let until = start + (timeout_s * self.hz as f64) as u64;
        let mut last_restart = start;
        while tsc() < until && !self.stop.load(Relaxed) {
            if self.client.port.link_up() && self.server.port.link_up() {
                return true;
            }
            if tsc() - last_restart > self.hz {
                for l in [self.client, self.server] {
                    if !l.port.link_up() {
                        l.port.stop();
                        if let Err(e) = l.port.start() {
                            eprintln!("gw-pktgen: restarting port {}: {e}", l.port.id());
                        }
                    }
                }
                last_restart = tsc();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Resolves the gateway's MAC with ARP from the client port (as the
    /// router would), answering ARP meanwhile. Returns it, or `None` after
    /// `timeout_s`.
    pub fn resolve_gateway(&mut self, timeout_s: f64) -> Option<MacAddr> {
        if let Some(m) = self.gw_mac {
            return Some(m);
        }
        let start = tsc();
        let until = start + (timeout_s * self.hz as f64) as u64;
        let every = self.hz / 5;
        let mut last = 0u64;
        while self.gw_mac.is_none() && tsc() < until && !self.stop.load(Relaxed) {
            if tsc() - last >= every {
                last = tsc();
                if let Some(mut m) = self.pool.alloc() {
                    if m.set_len(frame::MIN_FRAME) {
                        frame::arp_request(m.as_mut(), self.client.mac, flows::ROUTER, self.gw_ip);
                        let _ = self.tx_client.push(m);
                        self.tx_client.flush(self.client.port, 0);
                    }
                }
            }
            self.poll();
            std::thread::sleep(Duration::from_micros(200));
        }
        self.gw_mac
    }

    fn gw_snapshot(&mut self) -> Option<GwCounters> {
        let path = self.gw_socket.as_ref()?;
        match report::gw_counters(path) {
            Ok(c) => Some(c),
            Err(e) => {
                if !self.gw_warned {
                    eprintln!("gw-pktgen: reading gatewayd's counters from {}: {e}", path.display());
                    self.gw_warned = true;
                }
                None
            }
        }
    }

    /// Runs one phase and returns its counters. `flows` is updated so the
    /// next phase can continue where this one stopped. With `sample_s`, the
    /// phase is also cut into sub-windows of that length (see [`Sample`]).
    pub fn run(&mut self, name: &str, t: &mut Traffic<'_>, sample_s: Option<f64>) -> Phase {
        self.cur = Phase { name: name.to_string(), target_pps: t.rate, ..Phase::default() };
        self.hist = Histogram::new();
        let gw_start = self.gw_snapshot();
        let t0 = tsc();
        let every = sample_s.map(|s| (s * self.hz as f64) as u64);
        let mut mark = (t0, self.cur.server_rx + self.cur.client_rx, gw_start.clone());
        let end = t.seconds.map(|s| t0 + (s * self.hz as f64) as u64);
        let mut attempted = 0u64;
        let mut pat = 0usize;
        // At "as fast as possible", no new burst before this TSC (set when
        // the link refused one).
        let mut backoff_until = 0u64;
        let mut flood_backoff = 0u64;
        let mut flood_attempted = 0u64;
        let mut legit_attempted = 0u64;
        let retry = matches!(t.flows, Flows::Once { .. } | Flows::List { .. });
        self.window.reset(t0);
        let window_timeout = self.window.timeout_ms * self.hz / 1000;
        let mut last = t0;
        loop {
            let now = tsc();
            self.cur.gen_loops[gw_core::counters::loop_bucket(now - last)] += 1;
            last = now;
            if end.is_some_and(|e| now >= e) || t.flows.done() || self.stop.load(Relaxed) {
                break;
            }
            if let Some(every) = every {
                // Only whole sub-windows: the last partial one is left out.
                if now - mark.0 >= every && end.is_some_and(|e| e - now >= every / 2) {
                    mark = self.sample(mark, now);
                }
            }
            self.poll();
            if !self.pending_acks.is_empty() {
                if now >= backoff_until && self.send_acks() {
                    backoff_until = tsc() + self.backoff_ticks;
                }
                continue;
            }
            let mut n = BURST;
            if t.rate > 0.0 {
                let due = (self.secs(now - t0) * t.rate) as u64;
                n = due.saturating_sub(attempted).min(BURST as u64) as usize;
            } else if now < backoff_until {
                n = 0;
            } else {
                let room = self.window.room(self.cur.client_tx, self.cur.client_rx, now, window_timeout);
                n = n.min(usize::try_from(room).unwrap_or(BURST));
            }
            if n == 0 {
                if let Some(rate) = self.legit.as_ref().map(|f| f.rate) {
                    let k = ((self.secs(now - t0) * rate) as u64)
                        .saturating_sub(legit_attempted)
                        .min(BURST as u64);
                    if k > 0 {
                        legit_attempted += k;
                        self.send_legit(k as usize);
                    }
                }
                if let Some(rate) = self.flood.as_ref().map(|f| f.rate) {
                    let k = if rate > 0.0 {
                        ((self.secs(now - t0) * rate) as u64)
                            .saturating_sub(flood_attempted)
                            .min(BURST as u64)
                    } else if now >= flood_backoff {
                        BURST as u64
                    } else {
                        0
                    };
                    if k > 0 {
                        flood_attempted += k;
                        if self.send_flood(k as usize) && rate == 0.0 {
                            flood_backoff = tsc() + self.backoff_ticks;
                        }
                    }
                }
                continue;
            }
            let stamp = tsc();
            if let Some(ft) = t.frag {
                let (built, refused) = self.send_fragmented(ft, n, &mut t.flows, stamp);
                attempted += built;
                if refused && t.rate == 0.0 {
                    backoff_until = tsc() + self.backoff_ticks;
                }
                continue;
            }
            let mut pushed = 0;
            for _ in 0..n {
                let Some(f) = t.flows.next() else { break };
                let tpl = &t.templates[t.pattern[pat]];
                let Some(mut m) = self.pool.alloc() else {
                    t.flows.rewind(1);
                    break;
                };
                pat = if pat + 1 == t.pattern.len() { 0 } else { pat + 1 };
                if !m.set_len(tpl.len()) {
                    t.flows.rewind(1);
                    break;
                }
                let (ip, port) = flows::client(f);
                tpl.write(m.as_mut(), ip, port, stamp);
                // Cannot fail: the poll above flushed the buffer and n <= BURST.
                let _ = self.tx_client.push(m);
                pushed += 1;
            }
            attempted += pushed;
            let q = self.next_queue;
            self.next_queue = if q + 1 == self.queues { 0 } else { q + 1 };
            let (sent, refused) = self.tx_client.flush(self.client.port, q);
            self.cur.client_tx += sent as u64;
            self.cur.client_tx_refused += refused as u64;
            if refused > 0 {
                if t.rate == 0.0 {
                    backoff_until = tsc() + self.backoff_ticks;
                }
                if retry {
                    t.flows.rewind(refused as u64);
                }
            }
        }
        let sent_for = tsc() - t0;
        self.drain();
        let gw_end = self.gw_snapshot();
        self.cur.seconds = self.secs(sent_for);
        self.cur.latency = self.hist.summary(self.hz);
        self.cur.window_lost = self.window.lost;
        if let (Some(a), Some(b)) = (gw_start, gw_end) {
            self.cur.gw = Some(report::delta(&a, &b));
        }
        std::mem::take(&mut self.cur)
    }

    /// Sends up to `n` datagrams of `ft` (at most a burst of frames), each as
    /// its fragments with its own IP identification. Returns how many new
    /// datagrams were built and whether the link refused any frame.
    ///
    /// A full ring can take the first fragments of a datagram and refuse the
    /// rest; as a host's stack would, the rest is sent first the next time
    /// (else the gateway would hold the datagram until it evicts it).
    fn send_fragmented(&mut self, ft: &FragTemplate, n: usize, fl: &mut Flows, stamp: u64) -> (u64, bool) {
        let k = ft.fragments();
        self.frag_buf.resize(ft.datagram_frame_len(), 0);
        self.frag_burst.clear();
        let cut = self.frag_cut.take();
        let mut rest = 0;
        let mut complete = true;
        if let Some(c) = cut {
            rest = k - c.next;
            complete = self.push_fragments(ft, &c) == rest;
        }
        let n = if complete { n.min((BURST - rest) / k) } else { 0 };
        for _ in 0..n {
            let Some(f) = fl.next() else { break };
            let c = Cut { flow: f, id: self.next_ip_id, stamp, next: 0 };
            self.next_ip_id = self.next_ip_id.wrapping_add(1);
            self.frag_burst.push(c);
            if self.push_fragments(ft, &c) < k {
                break;
            }
        }
        let q = self.next_queue;
        self.next_queue = if q + 1 == self.queues { 0 } else { q + 1 };
        let (sent, refused) = self.tx_client.flush(self.client.port, q);
        let built = self.frag_burst.len() as u64;
        if let Some(c) = cut.filter(|_| sent < rest) {
            self.frag_cut = Some(Cut { next: c.next + sent, ..c });
            self.cur.client_tx_refused += built;
            return (built, true);
        }
        // Datagrams sent whole (the resumed one included), and where the
        // burst was cut.
        let (whole, at) = ((sent - rest) / k, (sent - rest) % k);
        self.cur.client_tx += whole as u64 + u64::from(cut.is_some());
        if at > 0 {
            self.frag_cut = Some(Cut { next: at, ..self.frag_burst[whole] });
        }
        self.cur.client_tx_refused += built - whole as u64 - u64::from(at > 0);
        (built, refused > 0)
    }

    /// Pushes the fragments of `c`'s datagram from `c.next` on; returns how
    /// many (fewer when the pool is empty).
    fn push_fragments(&mut self, ft: &FragTemplate, c: &Cut) -> usize {
        let (ip, port) = flows::client(c.flow);
        ft.write_datagram(&mut self.frag_buf, ip, port, c.stamp);
        for i in c.next..ft.fragments() {
            let Some(mut m) = self.pool.alloc() else { return i - c.next };
            if !m.set_len(ft.fragment_len(i)) {
                return i - c.next;
            }
            ft.write_fragment(&self.frag_buf, i, c.id, m.as_mut());
            let _ = self.tx_client.push(m);
        }
        ft.fragments() - c.next
    }

    /// Sends `n` (at most a burst) flood packets; returns whether the link refused any.
    fn send_flood(&mut self, n: usize) -> bool {
        let Some(fl) = self.flood.as_mut() else { return false };
        let stamp = tsc();
        let mut pushed = 0u64;
        for _ in 0..n {
            let Some(f) = fl.flows.next() else { break };
            let Some(mut m) = self.pool.alloc() else { break };
            if !m.set_len(fl.template.len()) {
                break;
            }
            let (ip, port) = flows::client(f);
            fl.template.write(m.as_mut(), ip, port, stamp);
            let _ = self.tx_client.push(m);
            pushed += 1;
        }
        let q = self.next_queue;
        self.next_queue = if q + 1 == self.queues { 0 } else { q + 1 };
        let (sent, refused) = self.tx_client.flush(self.client.port, q);
        debug_assert!(sent as u64 + refused as u64 == pushed);
        self.cur.flood_tx += sent as u64;
        self.cur.flood_tx_refused += refused as u64;
        refused > 0
    }

    /// Sends `n` (at most a burst) SYNs of new legitimate connections
    /// ([`Gen::legit`]); a refused one is sent again next time.
    fn send_legit(&mut self, n: usize) {
        let Some(fl) = self.legit.as_mut() else { return };
        let stamp = tsc();
        for _ in 0..n {
            let Some(mut m) = self.pool.alloc() else { break };
            if !m.set_len(fl.template.len()) {
                break;
            }
            let Some(f) = fl.flows.next() else { break };
            let (ip, port) = flows::client(f);
            fl.template.write(m.as_mut(), ip, port, stamp);
            let _ = self.tx_client.push(m);
        }
        let (sent, refused) = self.tx_client.flush(self.client.port, 0);
        if let Flows::Fresh { next } = &mut fl.flows {
            *next -= refused as u64;
        }
        self.cur.legit_syn_tx += sent as u64;
    }

    /// Whether a received TCP segment with `tcp_flags` belongs to the flood
    /// (see [`Gen::split_flood`]).
    #[inline]
    fn is_flood(split_flood: bool, tcp_flags: u8) -> bool {
        split_flood && (tcp_flags & flags::PSH == 0 || tcp_flags & flags::SYN != 0)
    }

    /// Sends up to a burst of pending handshake ACKs; those the link refused
    /// stay pending. Returns whether any was refused.
    fn send_acks(&mut self) -> bool {
        let Some(tpl) = self.ack_template.as_ref() else {
            self.pending_acks.clear();
            return false;
        };
        let stamp = tsc();
        for &(ip, port, ack) in self.pending_acks.iter().take(BURST) {
            let Some(mut m) = self.pool.alloc() else { break };
            if !m.set_len(tpl.len()) {
                break;
            }
            tpl.write(m.as_mut(), ip, port, stamp);
            if self.synproxy {
                sp::set_seq_ack(m.as_mut(), sp::CLIENT_ISN + 1, ack);
            }
            let _ = self.tx_client.push(m);
        }
        let q = self.next_queue;
        self.next_queue = if q + 1 == self.queues { 0 } else { q + 1 };
        let (sent, refused) = self.tx_client.flush(self.client.port, q);
        self.pending_acks.drain(..sent);
        self.cur.acks_sent += sent as u64;
        self.cur.client_tx += sent as u64;
        self.cur.client_tx_refused += refused as u64;
        refused > 0
    }

    /// Closes the sub-window that started at `mark` and starts the next.
    fn sample(&mut self, mark: (u64, u64, Option<GwCounters>), now: u64) -> (u64, u64, Option<GwCounters>) {
        let fwd = self.cur.server_rx + self.cur.client_rx;
        let gw = self.gw_snapshot();
        let (rx, busy, datagrams) = match (&mark.2, &gw) {
            (Some(a), Some(b)) => {
                let d =
                    |k: &str| b.get(k).copied().unwrap_or(0).saturating_sub(a.get(k).copied().unwrap_or(0));
                (d("rx_packets"), d("busy_cycles"), d("frag_reassembled"))
            }
            _ => (0, 0, 0),
        };
        self.cur.samples.push(Sample {
            seconds: self.secs(now - mark.0),
            forwarded: fwd - mark.1,
            gw_rx_packets: rx,
            gw_busy_cycles: busy,
            gw_datagrams: datagrams,
        });
        (tsc(), self.cur.server_rx + self.cur.client_rx, gw)
    }

    /// Keeps receiving after sending stopped, until nothing arrived for
    /// 20 ms (or 500 ms in all), so packets in flight count in the phase.
    fn drain(&mut self) {
        let start = tsc();
        let mut last = start;
        loop {
            let now = tsc();
            if self.poll() > 0 {
                last = now;
            }
            if !self.pending_acks.is_empty() {
                self.send_acks();
                last = now;
            }
            if self.secs(now - last) > 0.020 || self.secs(now - start) > 0.5 {
                break;
            }
        }
    }

    /// Receives on both ports; returns how many frames arrived.
    pub fn poll(&mut self) -> usize {
        self.poll_server() + self.poll_client()
    }

    fn poll_server(&mut self) -> usize {
        (0..self.queues).map(|q| self.poll_server_queue(q)).sum()
    }

    fn poll_client(&mut self) -> usize {
        (0..self.queues).map(|q| self.poll_client_queue(q)).sum()
    }

    /// Answers go out on the queue the request came in on.
    fn poll_server_queue(&mut self, q: u16) -> usize {
        let mut got = 0;
        for _ in 0..RX_BURSTS_PER_TURN {
            let n = self.server.port.rx_burst(q, &mut self.rx);
            got += n;
            if n == 0 {
                break;
            }
            let now = tsc();
            let split = self.split_flood;
            let synproxy = self.synproxy;
            for mut m in self.rx.drain() {
                match frame::classify(m.as_ref()) {
                    Kind::Data { tcp_flags, .. } if synproxy && sp::is_plain_syn(tcp_flags) => {
                        // Under SYNPROXY the gateway sends a SYN only for
                        // a valid cookie ACK: answered as a TCP stack would.
                        self.cur.server_syn_rx += 1;
                        if frame::reflect(m.as_mut()) && sp::ack_the_syn(m.as_mut()) {
                            let _ = self.tx_server.push(m);
                        }
                    }
                    Kind::Data { tcp_flags, .. } if Self::is_flood(split, tcp_flags) => {
                        // A real server answers a SYN with a SYN+ACK.
                        self.cur.flood_server_rx += 1;
                        if frame::reflect(m.as_mut()) {
                            let _ = self.tx_server.push(m);
                        }
                    }
                    Kind::Data { stamp, .. } => {
                        self.cur.server_rx += 1;
                        if self.one_way {
                            record(&mut self.hist, &mut self.cur, self.hz, stamp, now);
                        } else if frame::reflect(m.as_mut()) {
                            let _ = self.tx_server.push(m);
                        }
                    }
                    Kind::Fragment { stamp, last } => {
                        self.cur.rx_fragments += 1;
                        self.cur.server_rx += u64::from(last);
                        if self.one_way {
                            if stamp.is_some() {
                                record(&mut self.hist, &mut self.cur, self.hz, stamp, now);
                            }
                        } else if frame::reflect(m.as_mut()) {
                            let _ = self.tx_server.push(m);
                        }
                    }
                    Kind::ArpRequest { target, .. } if self.servers.contains(&target) => {
                        if frame::arp_reply_in_place(m.as_mut(), self.server.mac) {
                            self.cur.arp_answered += 1;
                            let _ = self.tx_server.push(m);
                        }
                    }
                    Kind::NeighSolicit { target } if self.servers6.contains(&target) => {
                        if frame6::na_reply_in_place(m.as_mut(), self.server.mac) {
                            self.cur.arp_answered += 1;
                            let _ = self.tx_server.push(m);
                        }
                    }
                    _ => self.cur.other_rx += 1,
                }
            }
            let (sent, refused) = self.tx_server.flush(self.server.port, q);
            self.cur.server_tx += sent as u64;
            self.cur.server_tx_refused += refused as u64;
            if n < BURST {
                break;
            }
        }
        got
    }

    fn poll_client_queue(&mut self, q: u16) -> usize {
        let mut got = 0;
        for _ in 0..RX_BURSTS_PER_TURN {
            let n = self.client.port.rx_burst(q, &mut self.rx);
            got += n;
            if n == 0 {
                break;
            }
            let now = tsc();
            let split = self.split_flood;
            let synproxy = self.synproxy;
            for mut m in self.rx.drain() {
                match frame::classify(m.as_ref()) {
                    Kind::Data { tcp_flags, .. } if synproxy && tcp_flags & SYN_ACK == SYN_ACK => {
                        // The gateway's cookie: our clients answer it, the
                        // spoofed ones never do.
                        self.cur.cookies_rx += 1;
                        match sp::cookie_of(m.as_ref()) {
                            Some((ip, port, cookie)) if sp::is_ours(ip, port, self.established) => {
                                mark(&mut self.answered, sp::flow_of(ip, port));
                                if self.pending_acks.len() < MAX_PENDING_ACKS {
                                    self.pending_acks.push_back((ip, port, cookie.wrapping_add(1)));
                                    if sp::flow_of(ip, port).is_some_and(|f| f >= sp::LEGIT_BASE) {
                                        self.cur.legit_acks += 1;
                                    }
                                } else {
                                    self.cur.acks_lost += 1;
                                }
                            }
                            _ => self.cur.flood_client_rx += 1,
                        }
                    }
                    Kind::Data { tcp_flags, .. } if Self::is_flood(split, tcp_flags) => {
                        self.cur.flood_client_rx += 1;
                    }
                    Kind::Data { stamp, tcp_flags, .. } => {
                        self.cur.client_rx += 1;
                        record(&mut self.hist, &mut self.cur, self.hz, stamp, now);
                        if tcp_flags & SYN_ACK == SYN_ACK && self.complete_handshakes {
                            if let Some(client) = frame::dst_endpoint(m.as_ref()) {
                                mark(&mut self.answered, sp::flow_of(client.0, client.1));
                                if self.pending_acks.len() < MAX_PENDING_ACKS {
                                    self.pending_acks.push_back((client.0, client.1, 1));
                                } else {
                                    self.cur.acks_lost += 1;
                                }
                            }
                        }
                    }
                    Kind::Fragment { stamp, last } => {
                        // Latency from the first fragment (it carries the
                        // stamp); the datagram counts with its last.
                        self.cur.rx_fragments += 1;
                        self.cur.client_rx += u64::from(last);
                        if stamp.is_some() {
                            record(&mut self.hist, &mut self.cur, self.hz, stamp, now);
                        }
                    }
                    Kind::ArpRequest { target, .. } if is_client_side(target) => {
                        if frame::arp_reply_in_place(m.as_mut(), self.client.mac) {
                            self.cur.arp_answered += 1;
                            let _ = self.tx_client.push(m);
                        }
                    }
                    Kind::NeighSolicit { target } if frame6::is_client_side6(target) => {
                        if frame6::na_reply_in_place(m.as_mut(), self.client.mac) {
                            self.cur.arp_answered += 1;
                            let _ = self.tx_client.push(m);
                        }
                    }
                    Kind::ArpReply { sender, sender_mac } if sender == self.gw_ip => {
                        self.gw_mac.get_or_insert(sender_mac);
                    }
                    _ => self.cur.other_rx += 1,
                }
            }
            let (sent, refused) = self.tx_client.flush(self.client.port, q);
            self.cur.client_tx += sent as u64;
            self.cur.client_tx_refused += refused as u64;
            if n < BURST {
                break;
            }
        }
        got
    }
}

/// SYN and ACK set: a SYN+ACK.
const SYN_ACK: u8 = flags::SYN | flags::ACK;

/// Marks flow `f` answered, if it is one of `answered`'s.
#[inline]
fn mark(answered: &mut [bool], f: Option<u64>) {
    if let Some(a) = f.and_then(|f| answered.get_mut(usize::try_from(f).ok()?)) {
        *a = true;
    }
}

/// Records the latency of a packet stamped `stamp` that arrived at `now`.
#[inline]
fn record(hist: &mut Histogram, cur: &mut Phase, hz: u64, stamp: Option<u64>, now: u64) {
    match stamp {
        Some(s) if now >= s && now - s < MAX_LATENCY_S * hz => hist.record(now - s),
        _ => cur.unstamped += 1,
    }
}

/// Addresses the client port answers ARP for: the router and the clients.
fn is_client_side(a: Ipv4Addr) -> bool {
    a == flows::ROUTER || u32::from(a) >> 16 == u32::from(flows::CLIENT_NET) >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_cursors() {
        let mut f = Flows::Once { next: 0, end: 3 };
        assert_eq!((f.next(), f.next()), (Some(0), Some(1)));
        f.rewind(1);
        assert_eq!((f.next(), f.next(), f.next()), (Some(1), Some(2), None));
        assert!(f.done());
        let mut c = Flows::Cycle { n: 2, next: 0, order: Order::Table };
        assert_eq!((c.next(), c.next(), c.next()), (Some(0), Some(1), Some(0)));
        c.rewind(1);
        assert!(!c.done());
        let mut n = Flows::Fresh { next: 10 };
        assert_eq!((n.next(), n.next()), (Some(10), Some(11)));
        let mut l = Flows::List { flows: vec![7, 3, 9], next: 0 };
        assert_eq!((l.next(), l.next()), (Some(7), Some(3)));
        l.rewind(1);
        assert_eq!((l.next(), l.next(), l.next()), (Some(3), Some(9), None));
        assert!(l.done());
        let mut answered = vec![false; 4];
        mark(&mut answered, Some(2));
        mark(&mut answered, Some(4));
        mark(&mut answered, None);
        assert_eq!(answered, [false, false, true, false]);
        assert!(is_client_side(flows::ROUTER) && is_client_side(Ipv4Addr::new(198, 19, 3, 4)));
        assert!(!is_client_side(flows::GW_OUTSIDE));
    }

    #[test]
    fn window_paces_by_answers_and_gives_up_lost_packets() {
        let off = &mut Window::new(0, 10);
        assert_eq!(off.room(1000, 0, 0, 10), u64::MAX);
        let w = &mut Window::new(64, 10);
        w.reset(100);
        assert_eq!(w.room(0, 0, 100, 10), 64);
        // 64 sent, 10 answered: 10 more may go.
        assert_eq!(w.room(64, 10, 101, 10), 10);
        assert_eq!(w.room(74, 10, 105, 10), 0);
        // Answers keep the window alive however long it stays full.
        assert_eq!(w.room(74, 11, 109, 10), 1);
        assert_eq!(w.room(75, 11, 118, 10), 0);
        // No answer for the timeout while full: the 64 in flight are lost.
        assert_eq!(w.room(75, 11, 119, 10), 64);
        assert_eq!(w.lost, 64);
        assert_eq!(w.room(139, 11, 120, 10), 0);
        assert_eq!(w.room(139, 43, 121, 10), 32);
        // Late answers of the lost packets never open it beyond its size.
        assert_eq!(w.room(139, 139, 122, 10), 64);
        w.reset(200);
        assert_eq!((w.lost, w.room(0, 0, 200, 10)), (0, 64));
    }
}

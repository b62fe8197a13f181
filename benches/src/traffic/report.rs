//! What `gw-pktgen` prints (one JSON object on stdout) and `gw-benchrun`
//! reads back, and the client for gatewayd's counters.
//!
//! Counting rules, so every derived figure means one thing:
//! - `client_tx` / `server_tx`: frames the link took (the memif ring had room).
//! - `*_refused`: frames built but refused by a full ring. On memif a full
//!   ring is how a receiver that cannot keep up shows (a NIC would count
//!   `imissed`): it is backpressure, reported, not counted as loss.
//! - `server_rx`: frames that reached the real servers; `client_rx`: answers
//!   that came back through the gateway to the clients.
//! - A phase ends with a drain (sending stops, receiving goes on), so
//!   packets in flight at its end are counted in it.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use gw_proto::{read_frame, write_frame, Request, Response};
use serde::{Deserialize, Serialize};

use super::hist::Latency;

/// One sub-window of a measurement: what the generator saw and, if it was
/// asked, gatewayd's own counters over the same window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub seconds: f64,
    /// Frames that reached the servers and the clients (crossed the DUT).
    pub forwarded: u64,
    pub gw_rx_packets: u64,
    pub gw_busy_cycles: u64,
    /// gatewayd's `frag_reassembled` (fragmented-datagram scenario).
    #[serde(default)]
    pub gw_datagrams: u64,
}

impl Sample {
    pub fn forwarded_pps(&self) -> f64 {
        self.forwarded as f64 / self.seconds.max(1e-9)
    }
    pub fn cycles_per_packet(&self) -> Option<f64> {
        (self.gw_rx_packets > 0).then(|| self.gw_busy_cycles as f64 / self.gw_rx_packets as f64)
    }
    pub fn cycles_per_datagram(&self) -> Option<f64> {
        (self.gw_datagrams > 0).then(|| self.gw_busy_cycles as f64 / self.gw_datagrams as f64)
    }
}

/// Median, minimum and maximum of some values (`None` if there are none).
pub fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    Some((median, v[0], v[n - 1]))
}

/// Counters of one phase of a generator run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// `open` (sessions set up), `warmup`, `measure`, `half_load`.
    pub name: String,
    /// Length of the sending part of the phase (without the drain).
    pub seconds: f64,
    /// Target rate of client packets per second (0: as fast as possible).
    pub target_pps: f64,
    pub client_tx: u64,
    pub client_tx_refused: u64,
    pub server_rx: u64,
    pub server_tx: u64,
    pub server_tx_refused: u64,
    pub client_rx: u64,
    /// Client ACKs sent in answer to SYN+ACKs (TCP handshakes completed).
    pub acks_sent: u64,
    /// SYN+ACKs whose ACK could not even be queued (the queue was full).
    #[serde(default)]
    pub acks_lost: u64,
    /// Packets that carried no valid stamp at their sink.
    pub unstamped: u64,
    /// Frames received that were neither data nor ARP for us (ICMP, ...).
    pub other_rx: u64,
    /// ARP requests answered (gateway asking for the router or servers).
    pub arp_answered: u64,
    /// One-way (client -> gateway -> server) or round-trip latency.
    pub latency: Latency,
    /// gatewayd's counters over the phase (summed over workers; gauges such
    /// as `sessions_live` are the value at the end), if it was asked.
    pub gw: Option<BTreeMap<String, u64>>,
    /// Flood packets (SYN-flood measurement) the link took, and refused.
    #[serde(default)]
    pub flood_tx: u64,
    #[serde(default)]
    pub flood_tx_refused: u64,
    /// Flood packets that reached the servers, and the servers' answers to
    /// them (SYN+ACKs) that came back to the spoofed clients.
    #[serde(default)]
    pub flood_server_rx: u64,
    #[serde(default)]
    pub flood_client_rx: u64,
    /// Frames of fragmented datagrams that reached the servers and the
    /// clients. With fragmented datagrams (`gw-pktgen --fragment`), the
    /// `client_tx`, `server_rx` and `client_rx` above count datagrams: a
    /// datagram is sent when all its fragments were, and arrives with its
    /// last fragment.
    #[serde(default)]
    pub rx_fragments: u64,
    /// SYNPROXY (`gw-pktgen --synproxy`): plain SYNs that reached the real
    /// servers (each a connection whose cookie the gateway accepted), the
    /// cookie SYN+ACKs that reached the clients (flood's and ours), the
    /// legitimate new connections' SYNs sent during the flood and their
    /// cookie ACKs sent (handshakes the clients completed).
    #[serde(default)]
    pub server_syn_rx: u64,
    #[serde(default)]
    pub cookies_rx: u64,
    #[serde(default)]
    pub legit_syn_tx: u64,
    #[serde(default)]
    pub legit_acks: u64,
    /// Consecutive sub-windows of the phase (measurement only), so a figure
    /// can be given as a median with its spread on a noisy machine.
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// Answer pacing (`gw-pktgen --window`): client packets given up as
    /// lost (no answer arrived while the window was full for
    /// `--window-timeout-ms`), so that the window opens again.
    #[serde(default)]
    pub window_lost: u64,
    /// The generator's own loop lengths over the phase, counted in the
    /// buckets of gatewayd's poll-loop histogram (TSC cycles under 4k,
    /// 16k, 64k, 256k, 1M, and more: `gw_core::counters::LOOP_BUCKETS`):
    /// a stall of the generator delays the packets it should receive as
    /// one of the DUT's does (issue 14's p99), whatever the DUT.
    #[serde(default)]
    pub gen_loops: [u64; 6],
}

impl Phase {
    /// Packets that crossed the device under test per second, both
    /// directions (what a forwarding rate counts).
    pub fn forwarded_pps(&self) -> f64 {
        if self.seconds <= 0.0 {
            return 0.0;
        }
        (self.server_rx + self.client_rx) as f64 / self.seconds
    }

    /// Fraction of the packets the link took that never reached their sink:
    /// the clients when answers come back (`round_trip`), else the servers.
    pub fn loss(&self, round_trip: bool) -> f64 {
        let (sent, got) =
            if round_trip { (self.client_tx, self.client_rx) } else { (self.client_tx, self.server_rx) };
        if sent == 0 {
            return 0.0;
        }
        (1.0 - got as f64 / sent as f64).max(0.0)
    }

    /// Forwarded packets per second: median, min and max over the samples
    /// (the whole phase if there are fewer than 3).
    pub fn forwarded_pps_spread(&self) -> (f64, f64, f64) {
        let whole = self.forwarded_pps();
        if self.samples.len() < 3 {
            return (whole, whole, whole);
        }
        spread(self.samples.iter().map(Sample::forwarded_pps).collect()).unwrap_or((whole, whole, whole))
    }

    /// gatewayd's cycles per packet: median, min and max over the samples
    /// (the whole phase if there are fewer than 3).
    pub fn gw_cycles_spread(&self) -> Option<(f64, f64, f64)> {
        let whole = self.gw_cycles_per_packet()?;
        let v: Vec<f64> = self.samples.iter().filter_map(Sample::cycles_per_packet).collect();
        if v.len() < 3 {
            return Some((whole, whole, whole));
        }
        spread(v)
    }

    /// gatewayd's cycles per reassembled datagram (busy cycles /
    /// `frag_reassembled`): median, min and max over the samples (the whole
    /// phase if there are fewer than 3).
    pub fn gw_cycles_per_datagram_spread(&self) -> Option<(f64, f64, f64)> {
        let n = self.gw("frag_reassembled");
        let whole = (n > 0).then(|| self.gw("busy_cycles") as f64 / n as f64)?;
        let v: Vec<f64> = self.samples.iter().filter_map(Sample::cycles_per_datagram).collect();
        if v.len() < 3 {
            return Some((whole, whole, whole));
        }
        spread(v)
    }

    /// A gatewayd counter over the phase (0 if absent).
    pub fn gw(&self, name: &str) -> u64 {
        self.gw.as_ref().and_then(|m| m.get(name).copied()).unwrap_or(0)
    }

    /// gatewayd's TSC cycles per received packet (busy cycles / rx packets).
    pub fn gw_cycles_per_packet(&self) -> Option<f64> {
        let rx = self.gw("rx_packets");
        (rx > 0).then(|| self.gw("busy_cycles") as f64 / rx as f64)
    }

    /// The share of the phase gatewayd's workers spent in polls that
    /// received something (busy cycles / TSC cycles elapsed), median over
    /// the samples (the whole phase if there are fewer than 3). Near 1 when
    /// the generator saturates the DUT; well below it, the generator (or
    /// the machine) set the rate, not the DUT.
    pub fn gw_busy_share(&self, tsc_hz: u64) -> Option<f64> {
        let share = |busy: u64, s: f64| (s > 0.0 && tsc_hz > 0).then(|| busy as f64 / (s * tsc_hz as f64));
        let whole = share(self.gw("busy_cycles"), self.seconds)?;
        let v: Vec<f64> = self.samples.iter().filter_map(|x| share(x.gw_busy_cycles, x.seconds)).collect();
        if v.len() < 3 {
            return Some(whole);
        }
        spread(v).map(|m| m.0)
    }

    /// Packets gatewayd dropped, over all reasons.
    pub fn gw_drops(&self) -> u64 {
        self.gw.as_ref().map_or(0, |m| m.iter().filter(|(k, _)| k.starts_with("drop_")).map(|(_, v)| v).sum())
    }
}

/// The generator's whole answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenReport {
    /// TSC ticks per second (the latency clock).
    pub tsc_hz: u64,
    /// Whether the real servers answered (FULLNAT, NAT) or only counted (DR, TUN).
    pub round_trip: bool,
    pub flows: u64,
    pub frame_sizes: Vec<usize>,
    pub proto: String,
    pub phases: Vec<Phase>,
}

impl GenReport {
    /// The phase named `name`.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }
}

/// Counters of a gatewayd, summed over its workers.
pub type GwCounters = BTreeMap<String, u64>;

/// Gauges: read at the end of a phase, not differenced.
pub const GAUGES: [&str; 4] =
    ["sessions_live", "sessions_half_open", "session_table_bytes", "session_capacity"];

/// Asks the gatewayd behind control socket `path` for its counters and sums
/// them over workers.
pub fn gw_counters(path: &Path) -> io::Result<GwCounters> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write_frame(&mut s, &Request::Counters).map_err(io::Error::other)?;
    match read_frame::<_, Response>(&mut s).map_err(io::Error::other)? {
        Response::Counters { workers, .. } => {
            let mut sum = GwCounters::new();
            for w in workers {
                for c in w.counters {
                    *sum.entry(c.name).or_default() += c.value;
                }
            }
            Ok(sum)
        }
        other => Err(io::Error::other(format!("unexpected answer to Counters: {other:?}"))),
    }
}

/// `end - start` for counters, `end` for [`GAUGES`].
pub fn delta(start: &GwCounters, end: &GwCounters) -> GwCounters {
    end.iter()
        .map(|(k, v)| {
            let d =
                if GAUGES.contains(&k.as_str()) { *v } else { v.wrapping_sub(*start.get(k).unwrap_or(&0)) };
            (k.clone(), d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(spread(vec![f64::NAN]), None);
        let s = |f, rx, c| Sample {
            seconds: 0.5,
            forwarded: f,
            gw_rx_packets: rx,
            gw_busy_cycles: c,
            gw_datagrams: 0,
        };
        let p = Phase {
            seconds: 1.5,
            server_rx: 300,
            client_rx: 300,
            gw: Some(
                [("rx_packets".to_string(), 600), ("busy_cycles".to_string(), 60_000)].into_iter().collect(),
            ),
            samples: vec![s(100, 100, 10_000), s(200, 200, 20_000), s(300, 300, 90_000)],
            ..Phase::default()
        };
        assert_eq!(p.forwarded_pps_spread(), (400.0, 200.0, 600.0));
        assert_eq!(p.gw_cycles_spread(), Some((100.0, 100.0, 300.0)));
        // Busy share at a 100 kHz TSC: 0.2, 0.4, 1.8 of each half second.
        assert_eq!(p.gw_busy_share(100_000), Some(0.4));
        assert_eq!(p.gw_busy_share(0), None);
    }

    #[test]
    fn derived_figures() {
        let mut p = Phase {
            seconds: 2.0,
            client_tx: 1000,
            server_rx: 990,
            server_tx: 990,
            client_rx: 980,
            ..Phase::default()
        };
        assert_eq!(p.forwarded_pps(), 985.0);
        assert!((p.loss(true) - 0.02).abs() < 1e-9);
        assert!((p.loss(false) - 0.01).abs() < 1e-9);
        assert_eq!(p.gw_cycles_per_packet(), None);
        let start: GwCounters =
            [("rx_packets", 10), ("busy_cycles", 100), ("sessions_live", 5), ("drop_no_route", 1)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let end: GwCounters =
            [("rx_packets", 110), ("busy_cycles", 20_100), ("sessions_live", 7), ("drop_no_route", 4)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        p.gw = Some(delta(&start, &end));
        assert_eq!(p.gw_cycles_per_packet(), Some(200.0));
        assert_eq!(p.gw("sessions_live"), 7);
        assert_eq!(p.gw_drops(), 3);
        let json =
            serde_json::to_string(&GenReport { phases: vec![p.clone()], ..GenReport::default() }).unwrap();
        let back: GenReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.phase("").unwrap(), &p);
    }
}

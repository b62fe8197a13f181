//! What `/metrics` exports, in the Prometheus text format (0.0.4).
//!
//! Two sets of families. First the node_exporter IPVS collector's, under its
//! names, help texts, types and labels, so dashboards built on
//! node_exporter's `ipvs` collector work unchanged: the box-wide totals
//! `node_ipvs_{connections,incoming_packets,outgoing_packets,incoming_bytes,
//! outgoing_bytes}_total` and, per real server, `node_ipvs_backend_*` with
//! `local_address`, `local_port`, `remote_address`, `remote_port`, `proto`,
//! `local_mark`. Then gatewayd's own `gatewayd_*`: every worker counter of
//! `gwctl --counters` (drops as one family labelled by `reason`), the
//! per-service and per-real-server statistics of `gwctl -L --stats`, the
//! session table's fill and the ports' statistics.
//!
//! A scrape reads the same counter blocks as `gwctl`, under the model's lock
//! (never a session: its cost is services + real servers + counters, times
//! workers), and never waits for a worker.
//!
//! Addresses are labelled as node_exporter labels them ([`ip_label`]): it
//! reads the kernel's `/proc/net/ip_vs` with procfs, whose `parseIPPort`
//! takes an IPv4 address as 8 hex digits and an IPv6 one as the kernel's
//! `[%pI6]` (`[2001:0db8:0000:...:0001]`, every group written out) through
//! `net.ParseIP`, and prints it with `net.IP.String()`: RFC 5952's short
//! form (`2001:db8::1`), the same as Rust's `Ipv6Addr` display, but an
//! IPv4-mapped address (`::ffff:a.b.c.d`) as the bare IPv4 address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use gw_core::counters::{Drop, Event, WorkerCounters, LOOP_BUCKETS};
use gw_proto::Stats;
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use super::stats::sub;
use super::Control;

/// `addr` as Go's `net.IP.String()` writes it (node_exporter's labels):
/// RFC 5952 for IPv6, except an IPv4-mapped address, which Go writes as
/// the dotted IPv4 address it holds (`To4()` succeeds).
fn ip_label(addr: IpAddr) -> String {
    match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or_else(|| a.to_string(), |v4| v4.to_string()),
        IpAddr::V4(a) => a.to_string(),
    }
}

/// node_exporter's backend labels, in its order.
const BACKEND_LABELS: [&str; 6] =
    ["local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"];

/// Which of node_exporter's backend labels `node_ipvs_backend_*` carry, as
/// its `--collector.ipvs.backend-labels` chooses them: real servers whose
/// kept labels are the same are summed into one series (active and
/// inactive connections, weights). All six by default: one series per
/// real server. The `gatewayd_*` families keep all six.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendLabels(u8);

impl Default for BackendLabels {
    fn default() -> Self {
        BackendLabels((1 << BACKEND_LABELS.len()) - 1)
    }
}

impl BackendLabels {
    /// node_exporter's `parseIpvsLabels`: a comma-separated list in any
    /// order, empty items and repeats ignored, kept in node_exporter's own
    /// order; an unknown name is refused with its message (the unknown
    /// names sorted).
    pub fn parse(list: &str) -> Result<BackendLabels, String> {
        let mut unknown: Vec<&str> =
            list.split(',').filter(|l| !l.is_empty() && !BACKEND_LABELS.contains(l)).collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            unknown.dedup();
            return Err(format!("unknown IPVS backend labels: {:?}", unknown.join(", ")));
        }
        let kept = BACKEND_LABELS.iter().enumerate().filter(|(_, l)| list.split(',').any(|x| x == **l));
        Ok(BackendLabels(kept.fold(0, |m, (i, _)| m | 1 << i)))
    }

    /// `labels` (node_exporter's six, in its order) without the ones not kept.
    fn keep(self, labels: &[(&'static str, String); 6]) -> Labels {
        labels.iter().enumerate().filter(|(i, _)| self.0 & 1 << i != 0).map(|(_, l)| l.clone()).collect()
    }
}

/// A series' labels, names and values.
type Labels = Vec<(&'static str, String)>;

/// node_exporter's three backend gauges of one series: active and
/// inactive connections and weight.
fn backend_gauges(f: &mut Families, labels: &[(&str, String)], (active, inactive, weight): (u64, u64, u64)) {
    f.gauge(
        "node_ipvs_backend_connections_active",
        "The current active connections by local and remote address.",
        labels,
        active as f64,
    );
    f.gauge(
        "node_ipvs_backend_connections_inactive",
        "The current inactive connections by local and remote address.",
        labels,
        inactive as f64,
    );
    f.gauge(
        "node_ipvs_backend_weight",
        "The current backend weight by local and remote address.",
        labels,
        weight as f64,
    );
}

/// The families of one scrape, in the order they are first named.
#[derive(Default)]
struct Families(Vec<MetricFamily>, BTreeMap<String, usize>);

impl Families {
    fn add(&mut self, name: &str, help: &str, ty: MetricType, labels: &[(&str, String)], value: f64) {
        let m = self.metric(name, help, ty, labels);
        if ty == MetricType::COUNTER {
            let mut c = Counter::default();
            c.set_value(value);
            m.set_counter(c);
        } else {
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
    }
    /// A new sample of family `name` (made on first use) with `labels`.
    fn metric(&mut self, name: &str, help: &str, ty: MetricType, labels: &[(&str, String)]) -> &mut Metric {
        let i = *self.1.entry(name.to_string()).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(name.to_string());
            f.set_help(help.to_string());
            f.set_field_type(ty);
            self.0.push(f);
            self.0.len() - 1
        });
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name(k.to_string());
                    l.set_value(v.clone());
                    l
                })
                .collect(),
        );
        let family = self.0[i].mut_metric();
        family.push(m);
        family.last_mut().expect("just pushed")
    }
    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, String)], value: u64) {
        self.add(name, help, MetricType::COUNTER, labels, value as f64);
    }
    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, String)], value: f64) {
        self.add(name, help, MetricType::GAUGE, labels, value);
    }
}

/// The worker events that are levels, not counts.
fn is_gauge(e: Event) -> bool {
    matches!(
        e,
        Event::SessionsLive
            | Event::HalfOpen
            | Event::HalfOpen6
            | Event::UdpUnreplied
            | Event::UdpUnreplied6
            | Event::SessionTableBytes
            | Event::Session6TableBytes
            | Event::SessionCapacity
            | Event::Session6Capacity
            | Event::LoopCyclesMax
    )
}

/// The worker events exported as the poll-loop histogram
/// ([`loop_histogram`]) rather than one family each.
fn in_loop_histogram(e: Event) -> bool {
    e == Event::LoopCycles || LOOP_BUCKETS.iter().any(|(b, _)| *b == e)
}

/// `gatewayd_loop_cycles{worker}`: the worker's poll loops by length in
/// TSC cycles, a Prometheus histogram (cumulative `le` buckets, `_sum`,
/// `_count`) from the `loops_*` counters.
fn loop_histogram(f: &mut Families, w: &WorkerCounters, worker: &[(&str, String)]) {
    let mut h = Histogram::default();
    let mut total = 0;
    let mut buckets = vec![];
    for (e, below) in LOOP_BUCKETS {
        total += w.event_count(e);
        if below != u64::MAX {
            // `le` is inclusive: a loop counted below 4096 is at most 4095.
            let mut b = Bucket::default();
            b.set_upper_bound((below - 1) as f64);
            b.set_cumulative_count(total);
            buckets.push(b);
        }
    }
    h.set_bucket(buckets);
    h.set_sample_count(total);
    h.set_sample_sum(w.event_count(Event::LoopCycles) as f64);
    let help = "Poll loops by length in TSC cycles (from one rx burst to the next, sleeps left out): \
                how long a packet can wait in an rx ring (gwctl --counters' loops_*).";
    f.metric("gatewayd_loop_cycles", help, MetricType::HISTOGRAM, worker).set_histogram(h);
}

/// The five traffic counters of `st` as `{prefix}_{connections,...}_total`.
fn traffic(f: &mut Families, prefix: &str, what: &str, labels: &[(&str, String)], st: Stats) {
    let rows = [
        ("connections", "connections", st.conns),
        ("incoming_packets", "incoming packets", st.inpkts),
        ("outgoing_packets", "outgoing packets", st.outpkts),
        ("incoming_bytes", "incoming bytes", st.inbytes),
        ("outgoing_bytes", "outgoing bytes", st.outbytes),
    ];
    for (name, help, v) in rows {
        f.counter(&format!("{prefix}_{name}_total"), &format!("The number of {help} {what}."), labels, v);
    }
}

impl Control {
    /// The body of one `/metrics` scrape (Prometheus text format 0.0.4).
    pub fn metrics(&self) -> String {
        let mut f = Families::default();
        self.ipvs_metrics(&mut f);
        self.worker_metrics(&mut f);
        self.port_metrics(&mut f);
        self.health_metrics(&mut f);
        let mut out = vec![];
        TextEncoder::new().encode(&f.0, &mut out).expect("text encoding into memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// node_exporter's IPVS families, then the per-service and per-real-server
    /// statistics of `-L --stats`.
    fn ipvs_metrics(&self, f: &mut Families) {
        // Box-wide totals, as /proc/net/ip_vs_stats: every service slot summed
        // over workers, raw (a deleted service's traffic stays counted, and
        // the totals only grow).
        let mut total = Stats::default();
        for slot in 0..self.max_services as u32 {
            total += self.svc_stats(slot);
        }
        let rows = [
            ("node_ipvs_connections_total", "The total number of connections made.", total.conns),
            ("node_ipvs_incoming_packets_total", "The total number of incoming packets.", total.inpkts),
            ("node_ipvs_outgoing_packets_total", "The total number of outgoing packets.", total.outpkts),
            ("node_ipvs_incoming_bytes_total", "The total amount of incoming data.", total.inbytes),
            ("node_ipvs_outgoing_bytes_total", "The total amount of outgoing data.", total.outbytes),
        ];
        for (name, help, v) in rows {
            f.counter(name, help, &[], v);
        }
        // Under the lock only what names the series (labels, slots,
        // weights, the counters' origins); the counters are read after it,
        // so gwctl and the health checks do not wait on a large scrape.
        let m = self.lock();
        let mut services = vec![];
        let mut dests = vec![];
        for s in m.services.values() {
            let k = s.spec.key;
            let svc = [
                ("local_address", ip_label(k.addr)),
                ("local_port", k.port.to_string()),
                ("proto", k.proto.label().to_string()),
            ];
            for d in &s.dests {
                // node_exporter's label order; local_mark is empty for a
                // service by address (gatewayd has no fwmark services).
                let labels = [
                    svc[0].clone(),
                    svc[1].clone(),
                    ("remote_address", ip_label(d.spec.addr)),
                    ("remote_port", d.spec.port.to_string()),
                    svc[2].clone(),
                    ("local_mark", String::new()),
                ];
                let origin = m.dest_origin.get(&d.slot).copied().unwrap_or_default();
                dests.push((labels, d.slot, d.spec.weight, origin));
            }
            services.push((svc, s.slot, m.svc_origin.get(&s.slot).copied().unwrap_or_default()));
        }
        drop(m);
        let mut per_dest = Vec::with_capacity(dests.len());
        // With all six labels, one series per real server; with fewer,
        // real servers that share the kept ones are summed, as
        // node_exporter sums them (the map only then: a scrape of every
        // server does not copy its labels).
        let aggregate = self.backend_labels != BackendLabels::default();
        let mut sums: BTreeMap<Labels, (u64, u64, u64)> = BTreeMap::new();
        for (labels, slot, weight, origin) in dests {
            let (st, active, inactive) = self.dest_stats(slot);
            let weight = u64::from(weight);
            if aggregate {
                let sum = sums.entry(self.backend_labels.keep(&labels)).or_default();
                *sum = (sum.0 + active, sum.1 + inactive, sum.2 + weight);
            } else {
                backend_gauges(f, &labels, (active, inactive, weight));
            }
            per_dest.push((labels, sub(st, origin), self.dest_persist(slot)));
        }
        for (labels, sum) in sums {
            backend_gauges(f, &labels, sum);
        }
        let per_service: Vec<_> = services
            .into_iter()
            .map(|(svc, slot, origin)| (svc, sub(self.svc_stats(slot), origin)))
            .collect();
        for (labels, st) in per_service {
            traffic(
                f,
                "gatewayd_service",
                "of a virtual service since it was added (-Z does not reset it)",
                &labels,
                st,
            );
        }
        for (labels, st, persist) in per_dest {
            traffic(
                f,
                "gatewayd_backend",
                "of a real server since it was added (-Z does not reset it)",
                &labels,
                st,
            );
            f.gauge(
                "gatewayd_backend_connections_persistent",
                "Live persistence templates pointing at a real server (PersistConn).",
                &labels,
                persist as f64,
            );
        }
    }

    /// The health checks' view of each checked real server: up (1/0), in
    /// the pool (1/0) and its up/down transitions.
    fn health_metrics(&self, f: &mut Families) {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (k, servers) in &health {
            for h in servers.iter().filter(|h| !h.sorry) {
                // node_exporter's backend labels, local_mark included, so
                // these join node_ipvs_backend_* without `ignoring`.
                let labels = [
                    ("local_address", ip_label(k.addr)),
                    ("local_port", k.port.to_string()),
                    ("remote_address", ip_label(h.addr)),
                    ("remote_port", h.port.to_string()),
                    ("proto", k.proto.label().to_string()),
                    ("local_mark", String::new()),
                ];
                f.gauge(
                    "gatewayd_health_up",
                    "1 when every checker of a real server succeeds.",
                    &labels,
                    f64::from(u8::from(h.up)),
                );
                f.gauge(
                    "gatewayd_health_in_pool",
                    "1 when a checked real server is in its service (up, or inhibited at weight 0).",
                    &labels,
                    f64::from(u8::from(h.in_pool)),
                );
                f.counter(
                    "gatewayd_health_transitions_total",
                    "Up/down transitions of a checked real server.",
                    &labels,
                    h.transitions,
                );
            }
        }
    }

    /// Every worker counter of `--counters`, labelled by worker (and drops
    /// by reason), and the session table's fill.
    fn worker_metrics(&self, f: &mut Families) {
        for w in &self.workers {
            let worker = [("worker", w.worker.to_string())];
            for d in Drop::ALL {
                let reason = d.name().strip_prefix("drop_").unwrap_or(d.name());
                f.counter(
                    "gatewayd_drops_total",
                    "Packets dropped, by reason (gwctl --counters' drop_<reason>; README's drop counters).",
                    &[worker[0].clone(), ("reason", reason.to_string())],
                    w.drop_count(d),
                );
            }
            for e in Event::ALL {
                let help = e.meaning();
                if in_loop_histogram(e) {
                    continue;
                }
                if is_gauge(e) {
                    f.gauge(&format!("gatewayd_{}", e.name()), help, &worker, w.event_count(e) as f64);
                } else {
                    f.counter(&format!("gatewayd_{}_total", e.name()), help, &worker, w.event_count(e));
                }
            }
            loop_histogram(f, w, &worker);
            // Both tables: `sessions_live` counts both families.
            let cap = w.event_count(Event::SessionCapacity) + w.event_count(Event::Session6Capacity);
            let live = w.event_count(Event::SessionsLive);
            f.gauge(
                "gatewayd_session_table_fill_ratio",
                "Live sessions over the worker's session-table capacity (0..1).",
                &worker,
                if cap == 0 { 0.0 } else { live as f64 / cap as f64 },
            );
            f.gauge(
                "gatewayd_worker_generation",
                "The configuration generation the worker runs with.",
                &worker,
                w.generation.get() as f64,
            );
        }
    }

    /// The ports' statistics as last read (every second, by the control
    /// thread): `gatewayd_port_<stat>_total{port}` and, per queue,
    /// `gatewayd_port_queue_<stat>_total{port,queue}`.
    fn port_metrics(&self, f: &mut Families) {
        for p in self.port_counters() {
            for c in &p.counters {
                let queue = c
                    .name
                    .strip_prefix('q')
                    .and_then(|r| r.split_once('_'))
                    .filter(|(q, _)| !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()));
                match queue {
                    Some((q, stat)) => f.counter(
                        &format!("gatewayd_port_queue_{stat}_total"),
                        &format!("rte_eth_stats q_{stat} of a port's queue (one queue per worker)."),
                        &[("port", p.name.clone()), ("queue", q.to_string())],
                        c.value,
                    ),
                    None => f.counter(
                        &format!("gatewayd_port_{}_total", c.name),
                        &format!(
                            "rte_eth_stats {} of a port (imissed includes af_packet ring drops).",
                            c.name
                        ),
                        &[("port", p.name.clone())],
                        c.value,
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gw_core::counters::{Drop, Event};
    use gw_proto::{Counter, PortCounters, Request, Response};

    use crate::control::test_util::{add, control, key};

    /// The value of the sample whose line starts with `prefix` (name and labels).
    fn sample(body: &str, prefix: &str) -> f64 {
        let line = body
            .lines()
            .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no {prefix} in\n{body}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn health_states_are_exported_per_checked_server() {
        let (c, _) = control(1);
        add(&c);
        let h = gw_proto::RsHealth {
            addr: std::net::Ipv4Addr::new(198, 18, 1, 2).into(),
            port: 80,
            up: false,
            in_pool: false,
            weight: 1,
            checkers: vec!["TCP_CHECK".into()],
            failed: 1,
            transitions: 3,
            last_error: String::new(),
            sorry: false,
        };
        c.set_health([(key(80), vec![h])].into_iter().collect());
        let body = c.metrics();
        let labels = r#"{local_address="198.18.0.100",local_port="80",remote_address="198.18.1.2",remote_port="80",proto="TCP",local_mark=""}"#;
        assert!(body.contains(&format!("gatewayd_health_up{labels} 0")), "{body}");
        assert!(body.contains(&format!("gatewayd_health_in_pool{labels} 0")), "{body}");
        assert!(body.contains(&format!("gatewayd_health_transitions_total{labels} 3")), "{body}");
    }

    /// `--collector.ipvs.backend-labels`'s rules: node_exporter's order
    /// whatever the order given, empty items and repeats ignored, unknown
    /// names refused with its message.
    #[test]
    fn backend_labels_parse_as_node_exporters_flag() {
        use super::BackendLabels;
        let full =
            BackendLabels::parse("local_address,local_port,remote_address,remote_port,proto,local_mark");
        assert_eq!(full, Ok(BackendLabels::default()));
        assert_eq!(
            BackendLabels::parse("proto,,local_port,local_address,proto"),
            BackendLabels::parse("local_address,local_port,proto")
        );
        assert_eq!(BackendLabels::parse(""), Ok(BackendLabels(0)));
        assert_eq!(
            BackendLabels::parse("foo,local_port,bar,foo"),
            Err(r#"unknown IPVS backend labels: "bar, foo""#.to_string())
        );
        assert_eq!(
            BackendLabels::parse("Proto"),
            Err(r#"unknown IPVS backend labels: "Proto""#.to_string()),
            "names are case-sensitive"
        );
    }

    /// With fewer labels, real servers that share the kept ones are summed
    /// into one series, as node_exporter sums them; the gatewayd_backend_*
    /// families stay per real server.
    #[test]
    fn backends_sharing_the_kept_labels_are_summed() {
        let (c, _) = control(2);
        let c = c.with_backend_labels(super::BackendLabels::parse("proto,local_port,local_address").unwrap());
        add(&c);
        let mut d3 = crate::control::test_util::dest(3);
        d3.weight = 4;
        assert_eq!(c.handle(Request::AddDest { service: key(80), dest: d3 }), Response::Ok);
        let spec = gw_proto::ServiceSpec::new(key(81), gw_proto::Scheduler::Rr);
        assert_eq!(c.handle(Request::AddService { spec }), Response::Ok);
        let d2 = crate::control::test_util::dest(2);
        assert_eq!(c.handle(Request::AddDest { service: key(81), dest: d2 }), Response::Ok);
        // Slots in the order added: :80's two servers, then :81's.
        c.workers[0].dests[0].active.add(2);
        c.workers[1].dests[1].active.add(3);
        c.workers[1].dests[1].inactive.add(7);
        c.workers[0].dests[2].active.add(11);
        let body = c.metrics();
        let s80 = r#"{local_address="198.18.0.100",local_port="80",proto="TCP"}"#;
        let s81 = r#"{local_address="198.18.0.100",local_port="81",proto="TCP"}"#;
        assert_eq!(sample(&body, &format!("node_ipvs_backend_connections_active{s80}")), 5.0, "{body}");
        assert_eq!(sample(&body, &format!("node_ipvs_backend_connections_inactive{s80}")), 7.0);
        assert_eq!(sample(&body, &format!("node_ipvs_backend_weight{s80}")), 5.0);
        assert_eq!(sample(&body, &format!("node_ipvs_backend_connections_active{s81}")), 11.0);
        assert_eq!(sample(&body, &format!("node_ipvs_backend_weight{s81}")), 1.0);
        assert_eq!(body.lines().filter(|l| l.starts_with("node_ipvs_backend_weight{")).count(), 2, "{body}");
        assert!(!body.lines().any(|l| l.starts_with("node_ipvs_backend") && l.contains("remote_")), "{body}");
        let rs3 = r#"remote_address="198.18.1.3",remote_port="80""#;
        assert!(body.lines().any(|l| l.starts_with("gatewayd_backend_") && l.contains(rs3)), "{body}");
        // No label at all: one series for the whole box.
        let (c, _) = control(1);
        let c = c.with_backend_labels(super::BackendLabels::parse("").unwrap());
        add(&c);
        assert_eq!(c.handle(Request::AddDest { service: key(80), dest: d3 }), Response::Ok);
        let body = c.metrics();
        assert_eq!(sample(&body, "node_ipvs_backend_weight"), 5.0, "{body}");
    }

    #[test]
    fn the_ipvs_families_carry_node_exporters_names_types_and_labels() {
        let (c, _) = control(2);
        add(&c);
        c.workers[0].services[0].conns.add(3);
        c.workers[1].services[0].conns.add(4);
        c.workers[1].services[0].inbytes.add(1000);
        c.workers[0].dests[0].active.add(2);
        c.workers[1].dests[0].inactive.add(5);
        let body = c.metrics();
        assert!(body.contains("# HELP node_ipvs_connections_total The total number of connections made.\n"));
        assert!(body.contains("# TYPE node_ipvs_connections_total counter\n"), "{body}");
        assert_eq!(sample(&body, "node_ipvs_connections_total"), 7.0);
        assert_eq!(sample(&body, "node_ipvs_incoming_bytes_total"), 1000.0);
        assert!(body.contains("# TYPE node_ipvs_backend_weight gauge\n"));
        let labels = r#"{local_address="198.18.0.100",local_port="80",remote_address="198.18.1.2",remote_port="80",proto="TCP",local_mark=""}"#;
        assert_eq!(sample(&body, &format!("node_ipvs_backend_connections_active{labels}")), 2.0);
        assert_eq!(sample(&body, &format!("node_ipvs_backend_connections_inactive{labels}")), 5.0);
        assert_eq!(sample(&body, &format!("node_ipvs_backend_weight{labels}")), 1.0);
        let svc = r#"{local_address="198.18.0.100",local_port="80",proto="TCP"}"#;
        assert_eq!(sample(&body, &format!("gatewayd_service_connections_total{svc}")), 7.0);
        // -Z zeroes -L --stats, not a Prometheus counter: those reset only
        // with the process (or a new service), else rate() would undercount.
        assert_eq!(c.query(Request::Zero { service: Some(key(80)) }), Response::Ok);
        let body = c.metrics();
        assert_eq!(sample(&body, &format!("gatewayd_service_connections_total{svc}")), 7.0);
        assert_eq!(sample(&body, "node_ipvs_connections_total"), 7.0);
        match c.query(Request::List { service: Some(key(80)) }) {
            Response::Services { services, .. } => {
                assert_eq!(services[0].stats.conns, 0, "-L --stats zeroed")
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn every_drop_reason_and_worker_counter_is_exported_per_worker() {
        let (c, _) = control(2);
        c.workers[1].count_drops(Drop::NoService, 9);
        c.workers[0].event(Event::RxPackets, 11);
        c.workers[0].event_cell(Event::SessionCapacity).set(100);
        c.workers[0].event_cell(Event::SessionsLive).set(25);
        let body = c.metrics();
        for d in Drop::ALL {
            let reason = d.name().strip_prefix("drop_").unwrap();
            for w in 0..2 {
                assert!(
                    body.contains(&format!("gatewayd_drops_total{{worker=\"{w}\",reason=\"{reason}\"}} "))
                );
            }
        }
        assert_eq!(sample(&body, r#"gatewayd_drops_total{worker="1",reason="no_service"}"#), 9.0);
        assert_eq!(sample(&body, r#"gatewayd_rx_packets_total{worker="0"}"#), 11.0);
        assert!(body.contains("# TYPE gatewayd_sessions_live gauge\n"));
        assert!(body.contains("# TYPE gatewayd_busy_cycles_total counter\n"));
        assert!(body.contains("# TYPE gatewayd_redirect_out_packets_total counter\n"));
        assert_eq!(sample(&body, r#"gatewayd_session_table_fill_ratio{worker="0"}"#), 0.25);
        // One HELP and TYPE per family, all families before... the
        // encoder's job; names are valid.
        for l in body.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{l}");
        }
    }

    /// The `loops_*` counters come out as one histogram per worker, with
    /// cumulative buckets whose `le` holds the loops counted below it, and
    /// the longest loop as a gauge.
    #[test]
    fn poll_loop_lengths_are_a_histogram_per_worker() {
        let (c, _) = control(2);
        for cycles in [100, 4_095, 4_096, 70_000, 5_000_000] {
            c.workers[1].count_loop(cycles);
        }
        let body = c.metrics();
        assert!(body.contains("# TYPE gatewayd_loop_cycles histogram\n"), "{body}");
        let w1 = |le: &str| sample(&body, &format!(r#"gatewayd_loop_cycles_bucket{{worker="1",le="{le}"}}"#));
        let got: Vec<f64> = ["4095", "16383", "65535", "262143", "1048575", "+Inf"].map(w1).to_vec();
        assert_eq!(got, [2.0, 3.0, 3.0, 4.0, 4.0, 5.0]);
        assert_eq!(sample(&body, r#"gatewayd_loop_cycles_count{worker="1"}"#), 5.0);
        assert_eq!(sample(&body, r#"gatewayd_loop_cycles_sum{worker="1"}"#), 5_078_291.0);
        assert_eq!(sample(&body, r#"gatewayd_loop_cycles_count{worker="0"}"#), 0.0);
        assert!(body.contains("# TYPE gatewayd_loop_cycles_max gauge\n"), "{body}");
        assert_eq!(sample(&body, r#"gatewayd_loop_cycles_max{worker="1"}"#), 5_000_000.0);
        assert!(
            !body.contains("gatewayd_loops_under_4k_cycles"),
            "the buckets are not families of their own"
        );
    }

    #[test]
    fn port_statistics_are_exported_per_port_and_queue() {
        let (c, _) = control(1);
        let c = c.with_port_stats(|| {
            vec![PortCounters {
                name: "outside".into(),
                port: 0,
                counters: vec![
                    Counter { name: "imissed".into(), value: 4 },
                    Counter { name: "q0_ipackets".into(), value: 8 },
                ],
            }]
        });
        c.tick(std::time::Instant::now());
        let body = c.metrics();
        assert_eq!(sample(&body, r#"gatewayd_port_imissed_total{port="outside"}"#), 4.0);
        assert_eq!(sample(&body, r#"gatewayd_port_queue_ipackets_total{port="outside",queue="0"}"#), 8.0);
    }

    /// node_exporter's labels for an IPv6 service and its real servers:
    /// `net.IP.String()` of the address procfs parsed from the kernel's
    /// `[2001:0db8:0000:0000:0000:0000:0000:0001]:0050`, and the port in
    /// decimal. Go's forms are written out here, not derived from Rust's.
    #[test]
    fn ipv6_services_are_labelled_as_node_exporter_prints_them() {
        let (c, _) = control(1);
        let k6 = gw_proto::ServiceKey {
            proto: gw_proto::Protocol::Udp,
            addr: "2001:db8:0:0:1::1".parse().unwrap(),
            port: 53,
        };
        let spec = gw_proto::ServiceSpec::new(k6, gw_proto::Scheduler::Rr);
        assert_eq!(c.handle(Request::AddService { spec }), Response::Ok);
        let dest = gw_proto::DestSpec::new(
            "2001:db8:1::2".parse::<std::net::IpAddr>().unwrap(),
            5353,
            gw_proto::ForwardMode::Masq,
            3,
        );
        assert_eq!(c.handle(Request::AddDest { service: k6, dest }), Response::Ok);
        let body = c.metrics();
        let labels = r#"{local_address="2001:db8::1:0:0:1",local_port="53",remote_address="2001:db8:1::2",remote_port="5353",proto="UDP",local_mark=""}"#;
        assert_eq!(sample(&body, &format!("node_ipvs_backend_weight{labels}")), 3.0, "{body}");
        let svc = r#"{local_address="2001:db8::1:0:0:1",local_port="53",proto="UDP"}"#;
        assert_eq!(sample(&body, &format!("gatewayd_service_connections_total{svc}")), 0.0);
        // Go: net.ParseIP("::ffff:198.18.1.2").String() == "198.18.1.2";
        // IPv4-compatible and other forms stay hexadecimal.
        let l = |s: &str| super::ip_label(s.parse().unwrap());
        assert_eq!(l("::ffff:198.18.1.2"), "198.18.1.2");
        assert_eq!(l("::198.18.1.2"), "::c612:102");
        assert_eq!(l("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(l("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
        assert_eq!(l("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
        assert_eq!(l("::"), "::");
        assert_eq!(l("198.18.0.100"), "198.18.0.100");
    }
}

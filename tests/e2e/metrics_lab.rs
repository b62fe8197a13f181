//! `/metrics` read by a real Prometheus server (Debian's `prometheus`):
//! gatewayd in the FULLNAT lab with `[metrics] listen`, known traffic (HTTP
//! through a FULLNAT service, UDP to a port without a service), Prometheus
//! started by the test inside the gateway's namespace with a scrape config
//! pointing at gatewayd, and the connection count and a drop counter read
//! back through Prometheus's HTTP API and compared with `gwctl --stats` and
//! `gwctl --counters`. `promtool check metrics` lints a scraped body.
//!
//! Needs root, the Debian DPDK packages, `prometheus` (scripts/install-deps.sh)
//! and built binaries (see fullnat_lab.rs).

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{run, text, Lab, FULLNAT, VIP};

const METRICS: &str = "127.0.0.1:9120";
/// Prometheus's own web listener, inside the lab's gateway namespace.
const PROMETHEUS: &str = "127.0.0.1:9091";

/// A Prometheus server in the lab's gateway namespace; stopped (and its
/// storage removed) when dropped, also when the test fails.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    ns: String,
}

impl Prometheus {
    fn start(lab: &Lab) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("{}-prometheus", lab.prefix));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: gatewayd\n    static_configs:\n      - targets: ['{METRICS}']\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("gw"), "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus (scripts/install-deps.sh installs it)");
        Prometheus { child, dir, ns: lab.ns("gw") }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The value of instant query `q` through `/api/v1/query`, if it has
    /// exactly one sample.
    fn query(&self, q: &str) -> Option<f64> {
        let url = format!("http://{PROMETHEUS}/api/v1/query");
        let o = run(Command::new("ip")
            .args(["netns", "exec", &self.ns, "curl", "-s", "-m", "2", "-G", &url])
            .args(["--data-urlencode", &format!("query={q}")]));
        let body = text(&o);
        if !body.contains("\"status\":\"success\"") || body.matches("\"value\":[").count() != 1 {
            return None;
        }
        // ..."value":[<time>,"<value>"]...
        let v = body.split("\"value\":[").nth(1)?.split(',').nth(1)?;
        v.split('"').nth(1)?.parse().ok()
    }

    /// Waits until Prometheus answers `q` with `want` (it scrapes every
    /// second); returns the last answer.
    fn wait_for(&self, q: &str, want: f64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.query(q);
            if last == Some(want) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        last
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== prometheus's log:\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `/metrics` as a scraper sees it, from inside the gateway's namespace.
fn scrape(lab: &Lab) -> String {
    let o = lab.exec("gw", &["curl", "-s", "-S", "-m", "5", &format!("http://{METRICS}/metrics")]);
    assert!(o.status.success(), "scraping /metrics failed: {}", String::from_utf8_lossy(&o.stderr));
    text(&o)
}

#[test]
fn prometheus_reads_the_connection_count_and_drops_that_gwctl_shows() {
    let lab = Lab::up_tweaked(&FULLNAT, "mx", |c| format!("{c}\n[metrics]\nlisten = \"{METRICS}\"\n"));
    lab.add_service("-t");
    for _ in 0..5 {
        lab.http();
    }
    // Three UDP datagrams to a port of the VIP without a service.
    for _ in 0..3 {
        let o = lab.exec("client", &["bash", "-c", &format!("echo x > /dev/udp/{VIP}/81")]);
        assert!(o.status.success());
    }
    // The state is settled: every counter below is read twice and is the same.
    let conns = lab.stats().service("TCP").conns;
    assert_eq!(conns, 5, "one connection per HTTP request");
    let no_service = lab.counter("drop_no_service");
    assert!(no_service >= 3, "the UDP datagrams to port 81 were not counted: {no_service}");

    let body = scrape(&lab);
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package)");
    lint.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "promtool check metrics: {}{}\n{body}",
        text(&lint),
        String::from_utf8_lossy(&lint.stderr)
    );
    for family in [
        "# TYPE node_ipvs_connections_total counter",
        "# TYPE node_ipvs_incoming_packets_total counter",
        "# TYPE node_ipvs_outgoing_packets_total counter",
        "# TYPE node_ipvs_incoming_bytes_total counter",
        "# TYPE node_ipvs_outgoing_bytes_total counter",
        "# TYPE node_ipvs_backend_connections_active gauge",
        "# TYPE node_ipvs_backend_connections_inactive gauge",
        "# TYPE node_ipvs_backend_weight gauge",
        "# TYPE gatewayd_drops_total counter",
        "# TYPE gatewayd_loop_cycles histogram",
    ] {
        assert!(body.contains(family), "no {family:?} in\n{body}");
    }

    let prom = Prometheus::start(&lab);
    let got = prom.wait_for("node_ipvs_connections_total", conns as f64);
    assert_eq!(got, Some(conns as f64), "Prometheus's node_ipvs_connections_total\n{}", prom.log());
    let q = r#"sum(gatewayd_drops_total{reason="no_service"})"#;
    assert_eq!(prom.wait_for(q, no_service as f64), Some(no_service as f64), "{q}");
    let q = r#"gatewayd_service_connections_total{local_address="198.18.0.100",local_port="80",proto="TCP"}"#;
    assert_eq!(prom.query(q), Some(conns as f64), "{q}");
    // Per real server, as node_exporter labels it: the weights gwctl set.
    let q = r#"sum(node_ipvs_backend_weight{local_address="198.18.0.100",local_port="80",proto="TCP"})"#;
    assert_eq!(prom.query(q), Some(2.0), "{q}");
    // The poll loops' lengths are a histogram Prometheus computes with: the
    // worker loops all the time, far below a millisecond at the median.
    let q = r#"histogram_quantile(0.5, gatewayd_loop_cycles_bucket{worker="0"})"#;
    let median = prom.query(q);
    assert!(median.is_some_and(|c| c > 0.0 && c < 1_048_575.0), "{q}: {median:?}");
    let loops: u64 = ["4k", "16k", "64k", "256k", "1m"]
        .iter()
        .map(|b| lab.counter(&format!("loops_under_{b}_cycles")))
        .sum::<u64>()
        + lab.counter("loops_over_1m_cycles");
    assert!(loops > 0 && lab.counter("loop_cycles_max") > 0, "gwctl --counters' loops_*");
    // Prometheus scraped gatewayd, and gwctl still shows the same state.
    assert_eq!(prom.query(r#"up{job="gatewayd"}"#), Some(1.0));
    assert_eq!(lab.stats().service("TCP").conns, conns);
    assert_eq!(lab.counter("drop_no_service"), no_service);
}

/// `[metrics] backend_labels`, node_exporter's `--collector.ipvs.backend-labels`:
/// with the service's labels only, Prometheus stores one
/// `node_ipvs_backend_*` series for the service, the two real servers
/// summed, and gatewayd's per-server families keep the servers apart.
#[test]
fn prometheus_sees_one_backend_series_per_service_with_the_services_labels() {
    let lab = Lab::up_tweaked(&FULLNAT, "mb", |c| {
        format!(
            "{c}\n[metrics]\nlisten = \"{METRICS}\"\nbackend_labels = \"proto,local_port,local_address\"\n"
        )
    });
    lab.add_service("-t");
    for _ in 0..4 {
        lab.http();
    }
    let prom = Prometheus::start(&lab);
    let q = r#"node_ipvs_backend_weight{local_address="198.18.0.100",local_port="80",proto="TCP"}"#;
    assert_eq!(prom.wait_for(q, 2.0), Some(2.0), "{q}\n{}", prom.log());
    assert_eq!(prom.query("count(node_ipvs_backend_weight)"), Some(1.0));
    assert_eq!(prom.query(r#"count(node_ipvs_backend_weight{remote_address!=""})"#), None);
    let q = r#"count(gatewayd_backend_connections_total{local_port="80"})"#;
    assert_eq!(prom.query(q), Some(2.0), "{q}");
    let q = r#"sum(gatewayd_backend_connections_total{local_port="80"})"#;
    assert_eq!(prom.query(q), Some(4.0), "{q}");
}

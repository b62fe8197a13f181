//! The control plane at scale, end to end: gwctl's code over gatewayd's real
//! unix-socket server and control model (no DPDK needed). Prints a table:
//! `gwctl -R` of 10,000 services with 10 real servers each (goal < 2 s),
//! `gwctl -L -n` of that (goal < 1 s), and `gwctl -S`. These goals are
//! measured here, not asserted in tests (a test on a loaded machine would
//! fail for the machine's sake); the table says whether each was met.
//! `cargo bench -p gw-dataplane --bench control_plane`

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::control::{serve, Control};
use gw_core::counters::WorkerCounters;
use gw_core::service::{Publisher, Snapshot};

const SERVICES: u32 = 10_000;
const DESTS: u32 = 10;

fn rules() -> String {
    let mut r = String::new();
    for i in 0..SERVICES {
        let vip = std::net::Ipv4Addr::from(0xc612_0000 + i);
        let _ = writeln!(r, "-A -t {vip}:80 -s wlc");
        for j in 0..DESTS {
            let rip = std::net::Ipv4Addr::from(0xc613_0000 + i * 16 + j);
            let _ = writeln!(r, "-a -t {vip}:80 -r {rip}:8080 -b -w {}", j + 1);
        }
        let _ = writeln!(r, "--add-laddr -z 198.18.255.1 -t {vip}:80");
    }
    r
}

fn gwctl(sock: &str, args: &[&str], input: &str) -> (Duration, usize) {
    let mut argv = vec!["gwctl", "--socket", sock];
    argv.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let t = Instant::now();
    let code =
        gwctl::run_with_input(argv, &mut input.as_bytes(), &mut out, &mut err, Duration::from_secs(60));
    let dt = t.elapsed();
    assert_eq!(code, 0, "gwctl {args:?}: {}", String::from_utf8_lossy(&err));
    (dt, out.len())
}

fn main() {
    let max_services = SERVICES as usize + 16;
    let max_dests = (SERVICES * DESTS) as usize + 16;
    let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], max_dests))));
    let worker = Arc::new(WorkerCounters::new(0, 1, max_services, max_dests));
    let control =
        Arc::new(Control::new(publisher.clone(), vec![worker.clone()], 1 << 20, max_services, max_dests));
    // A stand-in worker: it picks up each new configuration between
    // "bursts", as gatewayd's workers do (freed slots are reused only after).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acks = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                worker.generation.set(publisher.current().generation);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let path = std::env::temp_dir().join(format!("gw-bench-ctl-{}.sock", std::process::id()));
    serve(control, &path).expect("serving the control socket");
    let sock = path.to_str().unwrap();
    let text = rules();
    let lines = text.lines().count();

    let (restore, _) = gwctl(sock, &["-R"], &text);
    let (list, list_bytes) = gwctl(sock, &["-L", "-n"], "");
    let (save, save_bytes) = gwctl(sock, &["-S", "-n"], "");
    let (clear, _) = gwctl(sock, &["-C"], "");
    let (restore2, _) = gwctl(sock, &["-R"], &text);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    acks.join().unwrap();
    let _ = std::fs::remove_file(&path);

    println!("control plane, {SERVICES} services x {DESTS} real servers ({lines} rules lines)\n");
    let goal = |t: Duration, secs: u64| {
        let met = if t < Duration::from_secs(secs) { "met" } else { "MISSED" };
        format!("< {secs} s ({met})")
    };
    println!("| operation | time | goal |");
    println!("|---|---|---|");
    println!("| gwctl -R (empty table) | {:.3} s | {} |", restore.as_secs_f64(), goal(restore, 2));
    println!("| gwctl -L -n ({list_bytes} bytes) | {:.3} s | {} |", list.as_secs_f64(), goal(list, 1));
    println!("| gwctl -S -n ({save_bytes} bytes) | {:.3} s | |", save.as_secs_f64());
    println!("| gwctl -C | {:.3} s | |", clear.as_secs_f64());
    println!("| gwctl -R (after -C) | {:.3} s | {} |", restore2.as_secs_f64(), goal(restore2, 2));
}

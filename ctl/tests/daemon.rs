//! Whole gwctl runs against a stand-in gatewayd: a thread in the test that owns a
//! unix socket, reads one framed request and writes one answer. These prove the
//! framing on the wire, how answers and errors become output and exit statuses,
//! the timeout, and the "daemon not running" path.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use gw_proto::{
    read_frame, write_frame, Counter, DestInfo, DestSpec, ErrorKind, ForwardMode, Protocol, Request,
    Response, Scheduler, ServiceInfo, ServiceKey, ServiceSpec, Stats, WorkerCounters,
};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// A socket path of its own for each test, removed on drop.
struct SockPath(PathBuf);

impl SockPath {
    fn new() -> SockPath {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("gwctl-t{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&p);
        SockPath(p)
    }
    fn arg(&self) -> &str {
        self.0.to_str().expect("temp paths are UTF-8 here")
    }
}

impl Drop for SockPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves one connection: reads one request, answers `resp`, returns the request.
fn serve_once(path: &Path, resp: Response) -> JoinHandle<Request> {
    let listener = UnixListener::bind(path).expect("bind test socket");
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let req: Request = read_frame(&mut conn).expect("read request frame");
        write_frame(&mut conn, &resp).expect("write response frame");
        req
    })
}

struct Run {
    code: u8,
    out: String,
    err: String,
}

fn gwctl(sock: &SockPath, args: &[&str]) -> Run {
    gwctl_timeout(sock, args, Duration::from_secs(5))
}

fn gwctl_timeout(sock: &SockPath, args: &[&str], timeout: Duration) -> Run {
    let argv: Vec<&str> = ["gwctl", "--socket", sock.arg()].into_iter().chain(args.iter().copied()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run_with_timeout(argv, &mut out, &mut err, timeout);
    Run { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() }
}

fn key() -> ServiceKey {
    ServiceKey { proto: Protocol::Tcp, addr: VIP, port: 80 }
}

fn fullnat_listing() -> Response {
    let dest = |last: u8, active| DestInfo {
        spec: DestSpec::new(Ipv4Addr::new(198, 18, 1, last), 80, ForwardMode::FullNat, 1),
        active_conns: active,
        inactive_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
        rates: Default::default(),
    };
    Response::Services {
        conn_table_size: 4096,
        services: vec![ServiceInfo {
            spec: ServiceSpec::new(key(), Scheduler::Wrr),
            dests: vec![dest(3, 7), dest(2, 0)],
            laddrs: vec![],
            stats: Stats::default(),
            rates: Default::default(),
        }],
    }
}

#[test]
fn add_service_sends_the_request_and_prints_nothing() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = gwctl(&sock, &["-A", "-t", "198.18.0.100:80", "-s", "rr"]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
    assert_eq!(daemon.join().unwrap(), Request::AddService { spec: ServiceSpec::new(key(), Scheduler::Rr) });
}

#[test]
#[rustfmt::skip]
fn list_prints_ipvsadms_table() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, fullnat_listing());
    let r = gwctl(&sock, &["-L", "-n"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  198.18.0.100:80 wrr\n",
        "  -> 198.18.1.2:80                FullNat 1      0          0         \n",
        "  -> 198.18.1.3:80                FullNat 1      7          0         \n",
    ));
    assert_eq!(daemon.join().unwrap(), Request::List { service: None });
}

#[test]
fn list_json_is_the_response() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, fullnat_listing());
    let r = gwctl(&sock, &["-L", "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let back: Response = serde_json::from_str(&r.out).unwrap();
    let Response::Services { services, .. } = back else { panic!("{}", r.out) };
    // Sorted as the table is.
    assert_eq!(services[0].dests[0].spec.addr, Ipv4Addr::new(198, 18, 1, 2));
    daemon.join().unwrap();
}

#[test]
fn counters_table() {
    let sock = SockPath::new();
    let c = |name: &str, value| Counter { name: name.into(), value };
    let workers = vec![
        WorkerCounters { worker: 0, lcore: 1, counters: vec![c("rx", 3), c("drop_ttl", 0)] },
        WorkerCounters { worker: 1, lcore: 2, counters: vec![c("rx", 4), c("drop_ttl", 1)] },
    ];
    let daemon = serve_once(&sock.0, Response::Counters { workers });
    let r = gwctl(&sock, &["--counters"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.out,
        "COUNTER   w0/lc1  w1/lc2  TOTAL\nrx             3       4      7\ndrop_ttl       0       1      1\n"
    );
    assert_eq!(daemon.join().unwrap(), Request::Counters);
}

#[test]
fn refused_change_prints_ipvsadms_text_and_exits_255() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::error(ErrorKind::NoService, ""));
    let r = gwctl(&sock, &["-D", "-t", "198.18.0.100:80"]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (255, "", "No such service\n"));
    daemon.join().unwrap();
}

#[test]
fn refused_server_change_says_service_not_defined() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::error(ErrorKind::NoService, "no such service"));
    let r = gwctl(&sock, &["-d", "-t", "198.18.0.100:80", "-r", "198.18.1.2"]);
    assert_eq!(r.code, 255);
    assert_eq!(r.err, "Service not defined\ngatewayd: no such service\n");
    daemon.join().unwrap();
}

#[test]
fn refused_listing_exits_1() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::error(ErrorKind::NoService, "No such service"));
    let r = gwctl(&sock, &["-L", "-n", "-t", "198.18.0.100:81"]);
    assert_eq!((r.code, r.err.as_str()), (1, "No such service\n"));
    daemon.join().unwrap();
}

#[test]
fn wrong_answer_type_is_an_error() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = gwctl(&sock, &["-L"]);
    assert_eq!((r.code, r.err.as_str()), (1, "unexpected answer from gatewayd: ok\n"));
    daemon.join().unwrap();
}

#[test]
fn frames_on_the_wire_are_length_prefixed_json() {
    // Speak the protocol by hand, without gw_proto's helpers.
    let sock = SockPath::new();
    let listener = UnixListener::bind(&sock.0).unwrap();
    let daemon = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut len = [0u8; 4];
        conn.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        conn.read_exact(&mut body).unwrap();
        let answer = br#"{"result":"error","kind":"service_exists","message":""}"#;
        conn.write_all(&(answer.len() as u32).to_be_bytes()).unwrap();
        conn.write_all(answer).unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    });
    let r = gwctl(&sock, &["-A", "-t", "198.18.0.100:80"]);
    assert_eq!((r.code, r.err.as_str()), (255, "Service already exists\n"));
    let sent = daemon.join().unwrap();
    assert_eq!(
        sent,
        serde_json::json!({
            "op": "add_service",
            "spec": {
                "key": {"proto": "tcp", "addr": "198.18.0.100", "port": 80},
                "scheduler": "wrr",
                "persistent": null,
                "netmask": "255.255.255.255",
                "one_packet": false,
                "sched_flags": 0
            }
        })
    );
}

#[test]
fn daemon_not_running_names_the_socket() {
    let sock = SockPath::new(); // nothing listens here
    let r = gwctl(&sock, &["-L", "-n"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.err,
        format!(
            "Can't initialize gatewayd: {}: No such file or directory\n\
             Are you sure that gatewayd is running?\n",
            sock.arg()
        )
    );
}

#[test]
fn silent_daemon_times_out() {
    let sock = SockPath::new();
    let listener = UnixListener::bind(&sock.0).unwrap();
    let daemon = thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_millis(600));
        drop(conn);
    });
    let r = gwctl_timeout(&sock, &["-C"], Duration::from_millis(200));
    assert_eq!((r.code, r.err.as_str()), (255, "gatewayd did not answer within 0.2 s\n"));
    daemon.join().unwrap();
}

#[test]
fn daemon_hanging_up_is_reported() {
    let sock = SockPath::new();
    let listener = UnixListener::bind(&sock.0).unwrap();
    let daemon = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let _: Request = read_frame(&mut conn).unwrap();
    });
    let r = gwctl(&sock, &["--counters"]);
    assert_eq!((r.code, r.err.as_str()), (1, "gatewayd closed the connection without answering\n"));
    daemon.join().unwrap();
}

#[test]
fn bad_input_never_reaches_the_daemon() {
    let sock = SockPath::new();
    let listener = UnixListener::bind(&sock.0).unwrap();
    listener.set_nonblocking(true).unwrap();
    for (args, msg) in [
        (&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-w", "70000"][..], "illegal weight specified"),
        (&["-A", "-t", "198.18.0.100:80", "-s", "xyz"][..], "Scheduler not found: xyz"),
        (&["-A", "-t", "300.0.0.1:80"][..], "illegal virtual server address[:port] specified"),
    ] {
        let r = gwctl(&sock, args);
        assert_eq!((r.code, r.err.as_str()), (2, format!("{msg}\n").as_str()), "{args:?}");
    }
    let r = gwctl(&sock, &["-n"]);
    assert_eq!(r.code, 255);
    assert_eq!(r.err, "Try `gwctl -h' or 'gwctl --help' for more information.\n");
    let r = gwctl(&sock, &["--no-such-option"]);
    assert_eq!(r.code, 255);
    assert!(r.err.starts_with("error: unexpected argument '--no-such-option' found\n"), "{}", r.err);
    assert!(r.err.ends_with("Try `gwctl -h' or 'gwctl --help' for more information.\n"));
    assert!(listener.accept().is_err(), "gwctl connected although the command line was bad");
}

#[test]
fn binary_reads_the_socket_from_the_environment() {
    let sock = SockPath::new();
    let daemon =
        serve_once(&sock.0, Response::Laddrs { entries: vec![(key(), vec![Ipv4Addr::new(198, 18, 2, 1)])] });
    let out = Command::new(env!("CARGO_BIN_EXE_gwctl"))
        .args(["--get-laddr", "-t", "198.18.0.100:80"])
        .env("GWCTL_SOCKET", sock.arg())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "VIP:VPORT            TOTAL    SNAT_IP\n198.18.0.100:80      1        \n                              198.18.2.1\n"
    );
    assert_eq!(daemon.join().unwrap(), Request::GetLaddr { service: Some(key()) });

    let missing = SockPath::new();
    let out = Command::new(env!("CARGO_BIN_EXE_gwctl"))
        .arg("-L")
        .env("GWCTL_SOCKET", missing.arg())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(missing.arg()));
}

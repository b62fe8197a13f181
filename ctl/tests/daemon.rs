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
    read_frame, write_frame, ConnInfo, Counter, DestInfo, DestSpec, ErrorKind, ForwardMode, PortCounters,
    Protocol, Request, Response, Scheduler, ServiceInfo, ServiceKey, ServiceSpec, Stats, TimeoutSet,
    TunnelCsum, TunnelEncap, WorkerCounters,
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
    gwctl_stdin(sock, args, "", timeout)
}

/// A run with `stdin` as its standard input (what -R reads).
fn gwctl_stdin(sock: &SockPath, args: &[&str], stdin: &str, timeout: Duration) -> Run {
    let argv: Vec<&str> = ["gwctl", "--socket", sock.arg()].into_iter().chain(args.iter().copied()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run_with_input(argv, &mut stdin.as_bytes(), &mut out, &mut err, timeout);
    Run { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() }
}

fn restore(sock: &SockPath, rules: &str) -> Run {
    gwctl_stdin(sock, &["-R"], rules, Duration::from_secs(5))
}

fn key() -> ServiceKey {
    ServiceKey { proto: Protocol::Tcp, addr: VIP.into(), port: 80 }
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
            health: vec![],
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
    let daemon = serve_once(&sock.0, Response::Counters { workers, ports: vec![] });
    let r = gwctl(&sock, &["--counters"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.out,
        "COUNTER   w0/lc1  w1/lc2  TOTAL\nrx             3       4      7\ndrop_ttl       0       1      1\n"
    );
    assert_eq!(daemon.join().unwrap(), Request::Counters);
}

#[test]
fn counters_show_the_port_statistics_in_the_table_and_in_json() {
    let sock = SockPath::new();
    let c = |name: &str, value| Counter { name: name.into(), value };
    let workers = vec![WorkerCounters { worker: 0, lcore: 1, counters: vec![c("rx_packets", 3)] }];
    let ports = vec![PortCounters { name: "outside".into(), port: 0, counters: vec![c("imissed", 1255)] }];
    let resp = Response::Counters { workers, ports };
    let daemon = serve_once(&sock.0, resp.clone());
    let r = gwctl(&sock, &["--counters"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.out,
        "COUNTER     w0/lc1  TOTAL\nrx_packets       3      3\n\nPORT     outside\nimissed     1255\n"
    );
    daemon.join().unwrap();
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, resp.clone());
    let r = gwctl(&sock, &["--counters", "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let back: Response = serde_json::from_str(&r.out).unwrap();
    assert_eq!(back, resp);
    daemon.join().unwrap();
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
    assert_eq!(r.err, "Service not defined\n");
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
fn a_daemon_with_every_control_slot_busy_says_so() {
    let sock = SockPath::new();
    let busy = || Response::error(ErrorKind::Busy, "too many control connections");
    let daemon = serve_once(&sock.0, busy());
    let r = gwctl(&sock, &["-L", "-n"]);
    assert_eq!((r.code, r.err.as_str()), (1, "too many control connections\n"), "a listing exits 1");
    daemon.join().unwrap();
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, busy());
    let r = gwctl(&sock, &["-A", "-t", "198.18.0.100:80"]);
    assert_eq!((r.code, r.err.as_str()), (255, "too many control connections\n"), "a change exits 255");
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
                // ipvsadm's default scheduler when -s is absent.
                "scheduler": "wlc",
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
        (&["-A", "-t", "300.0.0.1:80"][..], "illegal virtual server address[:port] specified"),
    ] {
        let r = gwctl(&sock, args);
        assert_eq!((r.code, r.err.as_str()), (2, format!("{msg}\n").as_str()), "{args:?}");
    }
    let r = gwctl(&sock, &["-n"]);
    assert_eq!(r.code, 255);
    assert_eq!(r.err, "Try `gwctl -h' or 'gwctl --help' for more information.\n");
    // ipvsadm.c process_options: a bad first option is tryhelp_exit(argv[0], -1)
    // alone; a later one is popt's "%s: %s\n" (poptBadOption, poptStrerror), -1.
    let r = gwctl(&sock, &["--no-such-option"]);
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (255, "", "Try `gwctl -h' or 'gwctl --help' for more information.\n")
    );
    let r = gwctl(&sock, &["-L", "--no-such-option"]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (255, "", "--no-such-option: unknown option\n"));
    let r = gwctl(&sock, &["-A", "-t"]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (255, "", "-t: missing argument\n"));
    assert!(listener.accept().is_err(), "gwctl connected although the command line was bad");
}

/// What ipvsadm 1.31 (built against a stub libipvs, popt 1.19) prints for
/// these: a required value is the next word, whatever it is; a second command,
/// or -h/-v after the first option, is "invalid option `WORD'" with the word
/// as typed; `--` or `-6` alone is no command.
#[test]
fn popts_reading_of_the_words_is_ipvsadms() {
    let sock = SockPath::new();
    let listener = UnixListener::bind(&sock.0).unwrap();
    listener.set_nonblocking(true).unwrap();
    let try_help = "Try `gwctl -h' or 'gwctl --help' for more information.";
    let cases: [(&[&str], u8, &str); 13] = [
        (
            &["-a", "-t", "198.18.0.100:80", "-r", "-w", "2"],
            2,
            "illegal real server address[:port] specified",
        ),
        (&["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2", "-w", "-m"], 2, "illegal weight specified"),
        (&["-A", "-t", "-s", "rr"], 2, "illegal virtual server address[:port] specified"),
        (&["-A", "-s", "-t", "198.18.0.100:80"], 2, "unexpected argument 198.18.0.100:80"),
        (&["-L", "-Z"], 2, "invalid option `-Z'"),
        (&["-Z", "--list"], 2, "invalid option `--list'"),
        (&["-lZ"], 2, "invalid option `-lZ'"),
        (&["-Lh"], 2, "invalid option `-Lh'"),
        (&["-L", "--help"], 2, "invalid option `--help'"),
        (&["-L", "--version"], 2, "invalid option `--version'"),
        (&["-A", "-t", "198.18.0.100:80", "--edit-service"], 2, "invalid option `--edit-service'"),
        (&["--"], 255, try_help),
        (&["-6"], 255, try_help),
    ];
    for (args, code, msg) in cases {
        let r = gwctl(&sock, args);
        assert_eq!(
            (r.code, r.out.as_str(), r.err.as_str()),
            (code, "", format!("{msg}\n").as_str()),
            "{args:?}"
        );
    }
    // In a rules file too, and "Try" names the program as typed.
    let r = restore(&sock, "-C\n-a -t 198.18.0.100:80 -r -w 2\n");
    assert_eq!((r.code, r.err.as_str()), (2, "line 2: illegal real server address[:port] specified\n"));
    let r = restore(&sock, "-C\n-C -Z\n");
    assert_eq!((r.code, r.err.as_str()), (2, "line 2: invalid option `-Z'\n"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run_with_input(
        ["/usr/sbin/gwctl", "--socket", sock.arg(), "-R"],
        &mut &b"-C\n-n\n"[..],
        &mut out,
        &mut err,
        Duration::from_secs(1),
    );
    assert_eq!(
        (code, String::from_utf8(err).unwrap().as_str()),
        (255, "line 2: Try `/usr/sbin/gwctl -h' or '/usr/sbin/gwctl --help' for more information.\n")
    );
    assert!(listener.accept().is_err(), "gwctl connected although the command line was bad");
}

#[test]
fn empty_scheduler_is_wlc_and_zero_of_any_address_zeroes_all() {
    // ipvsadm.c: an empty sched_name becomes DEF_SCHED; libipvs sends
    // IPVS_CMD_ZERO without a service for address and port zero.
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = gwctl(&sock, &["-A", "-t", "198.18.0.100:80", "-s", ""]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(daemon.join().unwrap(), Request::AddService { spec: ServiceSpec::new(key(), Scheduler::Wlc) });
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = gwctl(&sock, &["-Z", "-t", "0.0.0.0:0"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(daemon.join().unwrap(), Request::Zero { service: None });
}

#[test]
fn refused_as_invalid_prints_libipvs_einval_line() {
    // libipvs ipvs_strerror's row { 0, EINVAL, ... } matches every call: the
    // kernel's EINVAL for a real server that is not unicast prints it.
    let sock = SockPath::new();
    let daemon =
        serve_once(&sock.0, Response::error(ErrorKind::Invalid, "real server 224.0.0.1 is not unicast"));
    let r = gwctl(&sock, &["-a", "-t", "198.18.0.100:80", "-r", "224.0.0.1", "-m"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (255, "Invalid operation.  Possibly wrong module version, address not unicast, ...\n")
    );
    daemon.join().unwrap();
}

/// `ipvsadm -h` and `-v`, from the strings of Debian's ipvsadm 1:1.31-1
/// binary (`usage_exit`'s and `version`'s formats, `%s` = argv[0], DEF_SCHED
/// wlc, tunnel type ipip, IPVS 1.2.1): stdout, exit 0, as the first option.
#[test]
fn help_and_version_are_ipvsadms() {
    let sock = SockPath::new();
    let h = include_str!("fixtures/ipvsadm-1.31-h.txt");
    let v = include_str!("fixtures/ipvsadm-1.31-v.txt");
    // popt reads a cluster from its first letter: `-hL` is -h first.
    for args in [&["-h"][..], &["--help"][..], &["-h", "-L"][..], &["-hL"][..]] {
        let r = gwctl(&sock, args);
        assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, h, ""), "{args:?}");
    }
    for args in [&["-v"][..], &["--version"][..], &["-vZ"][..]] {
        let r = gwctl(&sock, args);
        assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, v, ""), "{args:?}");
    }
    // The program name is argv[0] as typed.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run_with_input(
        ["/usr/sbin/gwctl", "-h"],
        &mut &b""[..],
        &mut out,
        &mut err,
        Duration::from_secs(1),
    );
    assert_eq!(code, 0);
    assert_eq!(String::from_utf8(out).unwrap(), h.replace("  gwctl ", "  /usr/sbin/gwctl "));
}

#[test]
fn binary_reads_the_socket_from_the_environment() {
    let sock = SockPath::new();
    let daemon = serve_once(
        &sock.0,
        Response::Laddrs { entries: vec![(key(), vec![Ipv4Addr::new(198, 18, 2, 1).into()])] },
    );
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

/// A service with every option, two real servers and a local address.
fn full_listing() -> Response {
    let spec = ServiceSpec {
        key: ServiceKey { proto: Protocol::Udp, addr: VIP.into(), port: 53 },
        scheduler: Scheduler::Sh,
        persistent: Some(600),
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        prefix6: gw_proto::FULL_PREFIX6,
        one_packet: true,
        sched_flags: 3,
        client_addr: Default::default(),
        synproxy: false,
    };
    let dest = |spec| DestInfo {
        spec,
        active_conns: 0,
        inactive_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
        rates: Default::default(),
    };
    Response::Services {
        conn_table_size: 4096,
        services: vec![
            ServiceInfo {
                spec,
                dests: vec![
                    dest(DestSpec {
                        upper: 100,
                        lower: 50,
                        ..DestSpec::new(Ipv4Addr::new(198, 18, 1, 3), 5353, ForwardMode::FullNat, 2)
                    }),
                    dest(DestSpec::new(Ipv4Addr::new(198, 18, 1, 2), 53, ForwardMode::Route, 1)),
                ],
                laddrs: vec![Ipv4Addr::new(198, 18, 2, 1).into()],
                health: vec![],
                stats: Stats::default(),
                rates: Default::default(),
            },
            ServiceInfo {
                spec: ServiceSpec::new(key(), Scheduler::Wlc),
                dests: vec![],
                laddrs: vec![],
                health: vec![],
                stats: Stats::default(),
                rates: Default::default(),
            },
        ],
    }
}

#[test]
#[rustfmt::skip]
fn save_prints_rules_that_restore_reads_back_in_one_request() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, full_listing());
    let saved = gwctl(&sock, &["-S", "-n"]);
    assert_eq!(saved.code, 0, "{}", saved.err);
    assert_eq!(daemon.join().unwrap(), Request::List { service: None });
    assert_eq!(saved.out, concat!(
        "-A -t 198.18.0.100:80 -s wlc\n",
        "-A -u 198.18.0.100:53 -s sh -p 600 -M 255.255.255.0 -o -b sh-fallback,sh-port\n",
        "-a -u 198.18.0.100:53 -r 198.18.1.2:53 -g -w 1\n",
        "-a -u 198.18.0.100:53 -r 198.18.1.3:5353 -b -w 2 -x 100 -y 50\n",
        "--add-laddr -z 198.18.2.1 -u 198.18.0.100:53\n",
    ));

    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = restore(&sock, &saved.out);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
    let Request::Restore { requests } = daemon.join().unwrap() else { panic!("not a restore") };
    // Exactly the requests that build the listed table, in one Restore.
    let Response::Services { mut services, .. } = full_listing() else { unreachable!() };
    services.sort_by_key(|s| s.spec.key);
    let mut want = Vec::new();
    for s in &mut services {
        s.dests.sort_by_key(|d| d.spec.addr);
        want.push(Request::AddService { spec: s.spec.clone() });
        want.extend(s.dests.iter().map(|d| Request::AddDest { service: s.spec.key, dest: d.spec }));
        want.extend(s.laddrs.iter().map(|&addr| Request::AddLaddr { service: s.spec.key, addr }));
    }
    assert_eq!(requests, want);
}

#[test]
fn restore_sends_one_request_for_the_whole_file() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let mut rules = String::new();
    for i in 0..300u32 {
        let vip = Ipv4Addr::from(0xc612_0000 + i);
        rules.push_str(&format!("-A -t {vip}:80 -s rr\n"));
        rules.push_str(&format!("-a -t {vip}:80 -r 198.18.1.2 -m\n"));
    }
    let r = restore(&sock, &rules);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    let Request::Restore { requests } = daemon.join().unwrap() else { panic!("not a restore") };
    assert_eq!(requests.len(), 600);
}

#[test]
fn restore_error_names_the_line_and_sends_nothing() {
    let sock = SockPath::new();
    let listener = UnixListener::bind(&sock.0).unwrap();
    listener.set_nonblocking(true).unwrap();
    let r = restore(&sock, "-A -t 198.18.0.100:80\n\n-a -t 198.18.0.100:80 -r 198.18.1.2 -x many\n");
    assert_eq!((r.code, r.err.as_str()), (2, "line 3: illegal u_threshold specified\n"));
    let r = restore(&sock, "-C\n-L -n\n");
    assert_eq!(r.code, 2);
    assert_eq!(r.err, "line 2: the 'list' command cannot be restored: a rules file holds changes\n");
    let r = restore(&sock, "-C\n--frobnicate\n");
    assert_eq!((r.code, r.err.as_str()), (255, "line 2: --frobnicate: unknown option\n"));
    assert!(listener.accept().is_err(), "gwctl connected although the rules were bad");
}

/// ipvsadm reads the rules as bytes (`fgets`): a Latin-1 comment does not
/// refuse the file; a byte that is not UTF-8 in a host name is refused as
/// a host ipvsadm cannot resolve.
#[test]
fn restore_reads_bytes_that_are_not_utf8() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let rules = b"# caf\xe9 rules\n-A -t 198.18.0.100:80 -s rr # \xff\xfe\n";
    let argv = vec!["gwctl", "--socket", sock.arg(), "-R"];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run_with_input(argv, &mut &rules[..], &mut out, &mut err, Duration::from_secs(5));
    assert_eq!((code, String::from_utf8_lossy(&err).as_ref()), (0, ""));
    let spec = ServiceSpec::new(key(), Scheduler::Rr);
    assert_eq!(daemon.join().unwrap(), Request::Restore { requests: vec![Request::AddService { spec }] });
    let argv = vec!["gwctl", "--socket", sock.arg(), "-R"];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run_with_input(
        argv,
        &mut &b"-A -t caf\xe9:80\n"[..],
        &mut out,
        &mut err,
        Duration::from_secs(5),
    );
    let err = String::from_utf8_lossy(&err);
    assert_eq!((code, err.as_ref()), (2, "line 1: illegal virtual server address[:port] specified\n"));
}

#[test]
fn ipvsadms_tun_save_file_restores_and_saves_back() {
    // ipvsadm 1.31's -S for an ipip server: "-a %s -r %s %s -w %d --tun-type %s\n".
    let file =
        "-A -t 172.16.254.200:80 -s wlc\n-a -t 172.16.254.200:80 -r 10.0.0.2:80 -i -w 1 --tun-type ipip\n";
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = restore(&sock, file);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    let vip = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(172, 16, 254, 200).into(), port: 80 };
    let dest = DestSpec::new(Ipv4Addr::new(10, 0, 0, 2), 80, ForwardMode::Tunnel, 1);
    let sent = Request::Restore {
        requests: vec![
            Request::AddService { spec: ServiceSpec::new(vip, Scheduler::Wlc) },
            Request::AddDest { service: vip, dest },
        ],
    };
    assert_eq!(daemon.join().unwrap(), sent);
    let table = ServiceInfo {
        spec: ServiceSpec::new(vip, Scheduler::Wlc),
        dests: vec![DestInfo {
            spec: dest,
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            stats: Stats::default(),
            rates: Default::default(),
        }],
        laddrs: vec![],
        health: vec![],
        stats: Stats::default(),
        rates: Default::default(),
    };
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Services { conn_table_size: 4096, services: vec![table] });
    let r = gwctl(&sock, &["-S", "-n"]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, file, ""));
    daemon.join().unwrap();
}

#[test]
fn gue_and_gre_rules_restore_and_a_bad_tunnel_line_refuses_the_file() {
    // ipvsadm 1.31's print_tunnel_rule lines for gue and gre.
    let file = "-A -t 172.16.254.200:80 -s wlc\n\
                -a -t 172.16.254.200:80 -r 10.0.0.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n\
                -a -t 172.16.254.200:80 -r 10.0.0.3:80 -i -w 1 --tun-type gre --tun-csum\n";
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = restore(&sock, file);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    let Request::Restore { requests } = daemon.join().unwrap() else { panic!("not a restore") };
    let tunnels: Vec<TunnelEncap> = requests
        .iter()
        .filter_map(|r| match r {
            Request::AddDest { dest, .. } => Some(dest.tunnel),
            _ => None,
        })
        .collect();
    assert_eq!(
        tunnels,
        [
            TunnelEncap::Gue { port: 6080, csum: TunnelCsum::NoCsum },
            TunnelEncap::Gre { csum: TunnelCsum::Csum }
        ]
    );
    // ipvsadm's tunnel_opt_check, exit code 2, and nothing sent.
    let sock = SockPath::new();
    let listener = UnixListener::bind(&sock.0).unwrap();
    listener.set_nonblocking(true).unwrap();
    let bad = "-A -t 172.16.254.200:80 -s wlc\n-a -t 172.16.254.200:80 -r 10.0.0.2:80 -i --tun-type gue\n";
    let r = restore(&sock, bad);
    assert_eq!(
        (r.code, r.err.as_str()),
        (2, "line 2: You need to supply the 'tun-port' option for the 'gue' tunnel type\n")
    );
    let r = gwctl(
        &sock,
        &["-a", "-t", "172.16.254.200:80", "-r", "10.0.0.2", "-i", "--tun-type", "gre", "--tun-remcsum"],
    );
    assert_eq!(r.code, 2);
    assert!(r.err.starts_with("Illegal 'tun-remcsum' option with the 'gre' tunnel type\n"), "{}", r.err);
    assert!(listener.accept().is_err(), "gwctl connected although the rules were refused");
}

#[test]
fn refused_restore_names_the_rules_line() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::error(ErrorKind::NoService, "rule 2: TCP 198.18.0.100:81"));
    let r = restore(&sock, "# two rules\n-A -t 198.18.0.100:80\n\n-a -t 198.18.0.100:81 -r 198.18.1.2\n");
    assert_eq!(r.code, 255);
    assert_eq!(r.err, "line 4: Service not defined\n");
    daemon.join().unwrap();
}

#[test]
fn set_sends_the_three_timeouts() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = gwctl(&sock, &["--set", "900", "0", "300"]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
    assert_eq!(
        daemon.join().unwrap(),
        Request::SetTimeouts { timeouts: TimeoutSet { tcp: 900, tcpfin: 0, udp: 300 } }
    );
}

#[test]
fn timeout_listing() {
    let sock = SockPath::new();
    let timeouts = TimeoutSet { tcp: 900, tcpfin: 120, udp: 300 };
    let daemon = serve_once(&sock.0, Response::Timeouts { timeouts });
    let r = gwctl(&sock, &["-L", "--timeout"]);
    assert_eq!((r.code, r.out.as_str()), (0, "Timeout (tcp tcpfin udp): 900 120 300\n"), "{}", r.err);
    assert_eq!(daemon.join().unwrap(), Request::GetTimeouts);
}

fn fullnat_conn() -> ConnInfo {
    ConnInfo {
        worker: 3,
        proto: Protocol::Tcp,
        state: "ESTABLISHED".into(),
        expires_ms: 899_400,
        client: (Ipv4Addr::new(198, 18, 0, 2).into(), 43210),
        vip: (VIP.into(), 80),
        local: (Ipv4Addr::new(198, 18, 1, 10).into(), 1029),
        dest: (Ipv4Addr::new(198, 18, 1, 2).into(), 80),
        mode: ForwardMode::FullNat,
        template: false,
    }
}

#[test]
#[rustfmt::skip]
fn connection_listing_shows_the_local_address_of_fullnat() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Conns { conns: vec![fullnat_conn()] });
    let r = gwctl(&sock, &["-lnc"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, concat!(
        "IPVS connection entries\n",
        "pro expire state       source             virtual            local              destination        worker\n",
        "TCP 14:59  ESTABLISHED 198.18.0.2:43210   198.18.0.100:80    198.18.1.10:1029   198.18.1.2:80      3\n",
    ));
    assert_eq!(daemon.join().unwrap(), Request::ListConns { service: None });
}

#[test]
fn connection_listing_json_is_the_full_conninfo() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Conns { conns: vec![fullnat_conn()] });
    let r = gwctl(&sock, &["-L", "-c", "-t", "198.18.0.100:80", "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let back: Response = serde_json::from_str(&r.out).unwrap();
    assert_eq!(back, Response::Conns { conns: vec![fullnat_conn()] });
    assert!(r.out.contains("\"worker\": 3"), "{}", r.out);
    assert_eq!(daemon.join().unwrap(), Request::ListConns { service: Some(key()) });
}

#[test]
fn unsupported_options_never_reach_the_daemon() {
    let sock = SockPath::new();
    let listener = UnixListener::bind(&sock.0).unwrap();
    listener.set_nonblocking(true).unwrap();
    for args in [&["-A", "-f", "7"][..], &["--start-daemon", "master"][..]] {
        let r = gwctl(&sock, args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(r.err.contains("not supported by gatewayd"), "{args:?}: {}", r.err);
    }
    assert!(listener.accept().is_err());
}

#[test]
fn list_daemon_prints_nothing_as_ipvsadm_without_a_sync_daemon() {
    // ipvsadm.c list_daemon: one line per running daemon, none here; exit 0.
    let sock = SockPath::new();
    let daemon =
        serve_once(&sock.0, Response::Timeouts { timeouts: TimeoutSet { tcp: 900, tcpfin: 120, udp: 300 } });
    let r = gwctl(&sock, &["-L", "--daemon"]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
    assert_eq!(daemon.join().unwrap(), Request::GetTimeouts);
}

/// A table on 127.0.0.1, which /etc/hosts names `localhost` on every system
/// (no DNS is asked), with ports /etc/services names (netbase).
fn localhost_listing() -> Response {
    let vip = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::LOCALHOST.into(), port: 80 };
    Response::Services {
        conn_table_size: 4096,
        services: vec![ServiceInfo {
            spec: ServiceSpec::new(vip, Scheduler::Wlc),
            dests: vec![DestInfo {
                spec: DestSpec::new(Ipv4Addr::LOCALHOST, 8080, ForwardMode::Masq, 1),
                active_conns: 0,
                inactive_conns: 0,
                persist_conns: 0,
                stats: Stats::default(),
                rates: Default::default(),
            }],
            laddrs: vec![],
            health: vec![],
            stats: Stats::default(),
            rates: Default::default(),
        }],
    }
}

/// ipvsadm's addrport_to_anyname without -n: gethostbyaddr's name, else the
/// number; getservbyport's name, else the number. The lines are ipvsadm's
/// printf formats filled with those names: "%-4s %s" (cut at 33) and " %s" for
/// the service, "  -> %-28s %-7s %-6d %-10u %-10u" for a server,
/// "%-3s %-6s %-11s %-18s %-18s %s" for a connection, "-A %s -s %s" and
/// "-a %s -r %s %s -w %d" for -S.
#[test]
#[rustfmt::skip]
fn without_n_hosts_and_ports_are_named_as_ipvsadm() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, localhost_listing());
    let r = gwctl(&sock, &["-L"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(r.out, concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  localhost:http wlc\n",
        "  -> localhost:http-alt           Masq    1      0          0         \n",
    ));
    daemon.join().unwrap();

    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, localhost_listing());
    let r = gwctl(&sock, &["-S"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(r.out, "-A -t localhost:http -s wlc\n-a -t localhost:http -r localhost:http-alt -m -w 1\n");
    daemon.join().unwrap();

    let sock = SockPath::new();
    let conn = ConnInfo {
        worker: 0,
        proto: Protocol::Tcp,
        state: "ESTABLISHED".into(),
        expires_ms: 899_400,
        client: (Ipv4Addr::LOCALHOST.into(), 43210),
        vip: (Ipv4Addr::LOCALHOST.into(), 80),
        local: (Ipv4Addr::LOCALHOST.into(), 43210),
        dest: (Ipv4Addr::LOCALHOST.into(), 8080),
        mode: ForwardMode::Masq,
        template: false,
    };
    let daemon = serve_once(&sock.0, Response::Conns { conns: vec![conn] });
    let r = gwctl(&sock, &["-L", "-c"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(r.out, concat!(
        "IPVS connection entries\n",
        "pro expire state       source             virtual            destination\n",
        "TCP 14:59  ESTABLISHED localhost:43210    localhost:http     localhost:http-alt\n",
    ));
    daemon.join().unwrap();

    // -n keeps numbers.
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, localhost_listing());
    let r = gwctl(&sock, &["-S", "-n"]);
    assert_eq!(r.out, "-A -t 127.0.0.1:80 -s wlc\n-a -t 127.0.0.1:80 -r 127.0.0.1:8080 -m -w 1\n");
    daemon.join().unwrap();
}

/// ipvsadm's parse_service: a host name through gethostbyname, a port name
/// through getservbyname; so ipvsadm's -S output without -n restores.
#[test]
fn host_and_port_names_are_accepted_as_input() {
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = gwctl(&sock, &["-a", "-t", "localhost:http", "-r", "localhost:http-alt", "-m"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    let vip = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::LOCALHOST.into(), port: 80 };
    let dest = DestSpec::new(Ipv4Addr::LOCALHOST, 8080, ForwardMode::Masq, 1);
    assert_eq!(daemon.join().unwrap(), Request::AddDest { service: vip, dest });

    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r =
        restore(&sock, "-A -t localhost:http -s wlc\n-a -t localhost:http -r localhost:http-alt -m -w 1\n");
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    let Request::Restore { requests } = daemon.join().unwrap() else { panic!("not a restore") };
    assert_eq!(requests[1], Request::AddDest { service: vip, dest });
}

#[test]
fn lower_threshold_above_upper_is_strerror_erange_in_one_line() {
    // The kernel's -ERANGE; libipvs has no text for it, so strerror's; ipvsadm.c
    // prints `ipvs_strerror(errno)` alone and returns -1 (255).
    for args in [&["-y", "20"][..], &["-x", "10", "-y", "20"][..]] {
        let sock = SockPath::new();
        let daemon =
            serve_once(&sock.0, Response::error(ErrorKind::OutOfRange, "lower threshold above the upper"));
        let mut argv = vec!["-a", "-t", "172.16.254.200:80", "-r", "10.0.0.2", "-i"];
        argv.extend_from_slice(args);
        let r = gwctl(&sock, &argv);
        assert_eq!(
            (r.code, r.out.as_str(), r.err.as_str()),
            (255, "", "Numerical result out of range\n"),
            "{args:?}"
        );
        daemon.join().unwrap();
    }
}

#[test]
fn unknown_scheduler_is_the_kernels_enoent() {
    // libipvs ipvs_strerror: ipvs_add_service/ENOENT; a failed change returns -1 (255).
    let sock = SockPath::new();
    for s in ["xyz", "foo"] {
        let r = gwctl(&sock, &["-A", "-t", "198.18.0.100:80", "-s", s]);
        assert_eq!(
            (r.code, r.out.as_str(), r.err.as_str()),
            (255, "", "Scheduler or persistence engine not found\n")
        );
    }
}

/// 10,000 services of 10 real servers, as gatewayd would list them.
fn big_listing() -> Response {
    let services = (0..10_000u32)
        .map(|i| ServiceInfo {
            spec: ServiceSpec::new(
                ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(0x0a00_0000 + i).into(), port: 80 },
                Scheduler::Wlc,
            ),
            dests: (0..10u32)
                .map(|j| DestInfo {
                    spec: DestSpec::new(
                        Ipv4Addr::from(0x0b00_0000 + i * 16 + j),
                        8080,
                        ForwardMode::FullNat,
                        j,
                    ),
                    active_conns: u64::from(j),
                    inactive_conns: 1,
                    persist_conns: 0,
                    stats: Stats::default(),
                    rates: Default::default(),
                })
                .collect(),
            laddrs: vec![Ipv4Addr::new(198, 18, 2, 1).into()],
            health: vec![],
            stats: Stats::default(),
            rates: Default::default(),
        })
        .collect();
    Response::Services { conn_table_size: 1 << 20, services }
}

/// How long these take is a benchmark's business, not a test's:
/// `dataplane/benches/control_plane.rs` times `-L -n`, `-S -n` and `-R` at
/// this scale against gatewayd's real control plane.
#[test]
fn ten_thousand_services_list_save_and_restore() {
    // The stand-in daemon encodes 110,000 entries in a debug build: on a
    // loaded machine that takes longer than gwctl's 5 s, so these runs get
    // a client timeout that only a hang reaches.
    let patient = Duration::from_secs(120);
    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, big_listing());
    let r = gwctl_timeout(&sock, &["-L", "-n"], patient);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out.lines().count(), 3 + 10_000 * 11);
    daemon.join().unwrap();

    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, big_listing());
    let saved = gwctl_timeout(&sock, &["-S", "-n"], patient);
    daemon.join().unwrap();
    assert_eq!(saved.out.lines().count(), 10_000 * 12);

    let sock = SockPath::new();
    let daemon = serve_once(&sock.0, Response::Ok);
    let r = gwctl_stdin(&sock, &["-R"], &saved.out, patient);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    let Request::Restore { requests } = daemon.join().unwrap() else { panic!("not a restore") };
    assert_eq!(requests.len(), 120_000);
}

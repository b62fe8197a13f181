//! The health checks against real local peers (TCP listeners, a script)
//! and a control plane without workers: servers leave and come back
//! through the control path, with keepalived's semantics.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gw_core::counters::WorkerCounters;
use gw_core::service::{Publisher, Snapshot};
use gw_proto::{DestSpec, ForwardMode, Request, Response, RsHealth, ServiceKey};

use super::Health;
use crate::control::Control;

fn control() -> Arc<Control> {
    let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 16))));
    let w = vec![Arc::new(WorkerCounters::new(0, 0, 8, 16))];
    Arc::new(Control::new(publisher, w, 1000, 8, 16))
}

fn conf(text: &str) -> gw_keepalived::Loaded {
    gw_keepalived::parse_str(Path::new("/tmp/keepalived.conf"), text).unwrap()
}

fn key() -> ServiceKey {
    ServiceKey { proto: gw_proto::Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port: 80 }
}

/// The real servers of the service and their weights.
fn dests(c: &Control) -> Vec<(u16, u32)> {
    match c.query(Request::List { service: Some(key()) }) {
        Response::Services { services, .. } => {
            let mut d: Vec<_> = services[0].dests.iter().map(|d| (d.spec.port, d.spec.weight)).collect();
            d.sort();
            d
        }
        r => panic!("{r:?}"),
    }
}

fn health(c: &Control) -> Vec<RsHealth> {
    match c.query(Request::List { service: Some(key()) }) {
        Response::Services { services, .. } => services[0].health.clone(),
        r => panic!("{r:?}"),
    }
}

/// Waits (at most 20 s, a bound and not an assertion of speed) until `f` holds.
fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < end, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(h: &Arc<Health>, c: &Arc<Control>, loaded: &gw_keepalived::Loaded) {
    let r = h.apply(vec![], loaded, |reqs| c.handle(Request::Restore { requests: reqs }));
    assert_eq!(r, Response::Ok);
}

fn vs(body: &str) -> String {
    format!(
        "virtual_server 198.18.0.100 80 {{\n lb_algo rr\n lb_kind NAT\n protocol TCP\n delay_loop 0.1\n{body}\n}}\n"
    )
}

#[test]
fn a_dead_server_leaves_and_comes_back_with_its_weight() {
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let (p1, p2) = (l1.local_addr().unwrap().port(), l2.local_addr().unwrap().port());
    let text = vs(&format!(
        " real_server 198.18.1.2 {p1} {{\n weight 3\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1\n retry 1\n delay_before_retry 0.05\n }} }}\n \
         real_server 198.18.1.2 {p2} {{\n weight 2\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1 }} }}"
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    let both = |mut v: Vec<(u16, u32)>| {
        v.sort();
        v
    };
    assert_eq!(dests(&c), both(vec![(p1, 3), (p2, 2)]));
    drop(l1);
    wait("the dead server removed", || dests(&c) == vec![(p2, 2)]);
    let view = health(&c);
    assert_eq!((view[0].up, view[0].in_pool, view[0].transitions), (false, false, 1));
    assert!(view[0].last_error.contains("refused"), "{}", view[0].last_error);
    assert_eq!(h.downs.load(std::sync::atomic::Ordering::Relaxed), 1);
    let _l1 = TcpListener::bind(("127.0.0.1", p1)).unwrap();
    wait("the server back", || dests(&c) == both(vec![(p1, 3), (p2, 2)]));
    assert_eq!(health(&c)[0].transitions, 2);
    h.stop();
}

#[test]
fn inhibit_on_failure_sets_weight_zero_and_gwctl_edits_survive() {
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let p1 = l1.local_addr().unwrap().port();
    let text = vs(&format!(
        " inhibit_on_failure\n real_server 198.18.1.2 {p1} {{\n weight 3\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1\n retry 0\n }} }}"
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    // gwctl -e changes the weight while the server is up ...
    let edited = DestSpec::new(Ipv4Addr::new(198, 18, 1, 2), p1, ForwardMode::Route, 7);
    assert_eq!(c.handle(Request::EditDest { service: key(), dest: edited }), Response::Ok);
    drop(l1);
    wait("weight 0", || dests(&c) == vec![(p1, 0)]);
    assert!(health(&c)[0].in_pool);
    let _l1 = TcpListener::bind(("127.0.0.1", p1)).unwrap();
    // ... and the server comes back with it, not the file's 3.
    wait("weight back", || dests(&c) == vec![(p1, 7)]);
    h.stop();
}

#[test]
fn alpha_starts_down_and_quorum_loss_brings_the_sorry_server() {
    let script = std::env::temp_dir().join(format!("gw-health-{}", std::process::id()));
    let flag = script.with_extension("ok");
    std::fs::write(&script, format!("#!/bin/sh\ntest -e {}\n", flag.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let text = vs(&format!(
        " alpha\n quorum 2\n sorry_server 198.18.1.9 8080\n \
         real_server 198.18.1.2 81 {{\n weight 2\n MISC_CHECK {{\n misc_path {}\n }} }}",
        script.display()
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    // alpha: down from the start, quorum lost: the sorry server only.
    assert_eq!(dests(&c), vec![(8080, 1)]);
    std::fs::write(&flag, "").unwrap();
    wait("the real server replaces the sorry server", || dests(&c) == vec![(81, 2)]);
    std::fs::remove_file(&flag).unwrap();
    wait("the sorry server again", || dests(&c) == vec![(8080, 1)]);
    let view = health(&c);
    assert!(view.iter().any(|v| v.sorry && v.in_pool), "{view:?}");
    h.stop();
    let _ = std::fs::remove_file(&script);
}

#[test]
fn a_reload_keeps_the_state_of_unchanged_checkers() {
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let p1 = l1.local_addr().unwrap().port();
    drop(l1);
    let text = |w: u32| {
        vs(&format!(
            " real_server 198.18.1.2 {p1} {{\n weight 3\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1\n retry 0\n }} }}\n \
             real_server 198.18.1.3 {p1} {{\n weight {w}\n }}"
        ))
    };
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text(1)));
    wait("the dead server removed", || dests(&c) == vec![(p1, 1)]);
    // The file changes another server's weight: the dead one stays out.
    let r = h.apply(vec![], &conf(&text(5)), |reqs| c.sync(reqs));
    assert_eq!(r, Response::Ok);
    assert_eq!(dests(&c), vec![(p1, 5)]);
    assert!(!health(&c)[0].up);
    h.stop();
}

#[test]
fn omega_runs_the_down_scripts_of_what_is_still_up_at_shutdown() {
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let p1 = l1.local_addr().unwrap().port();
    let dir = ScratchDir::new("gw-health-omega");
    let (down, quorum_down) = (dir.join("notify_down"), dir.join("quorum_down"));
    let text = vs(&format!(
        " omega\n quorum 1\n quorum_down \"/usr/bin/touch {}\"\n \
         real_server 198.18.1.2 {p1} {{\n weight 1\n notify_down \"/usr/bin/touch {}\"\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1 }} }}",
        quorum_down.display(),
        down.display()
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    assert!(health(&c)[0].up);
    assert!(!down.exists() && !quorum_down.exists(), "nothing went down while running");
    h.stop();
    wait("notify_down and quorum_down run at shutdown", || down.exists() && quorum_down.exists());
    drop(l1);
}

/// keepalived's `omega` for what the checks do not watch: a service
/// without checkers runs its server's `notify_down` and its `quorum_down`
/// at shutdown; in sorry mode the live servers are out of the pool and
/// get no `notify_down` (`clear_service_rs` notifies only a server that
/// is alive and set), while `quorum_down` runs.
#[test]
fn omega_at_shutdown_covers_unchecked_services_and_skips_servers_out_of_the_pool() {
    let dir = ScratchDir::new("gw-health-omega2");
    let f = |n: &str| dir.join(n);
    let text = vs(&format!(
        " omega\n quorum_down \"/usr/bin/touch {}\"\n \
         real_server 198.18.1.2 80 {{\n weight 1\n notify_down \"/usr/bin/touch {}\"\n }}",
        f("q1").display(),
        f("d1").display()
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    assert_eq!(dests(&c), vec![(80, 1)]);
    h.stop();
    wait("the unchecked service's scripts run at shutdown", || f("q1").exists() && f("d1").exists());

    // Quorum 5 over a live server of weight 1 and a dead one of weight 5
    // (keepalived lowers a quorum above the total weight): sorry mode from
    // the start, the live server out of the pool.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let text = vs(&format!(
        " omega\n quorum 5\n quorum_down \"/usr/bin/touch {}\"\n sorry_server 198.18.1.9 8080\n \
         real_server 198.18.1.2 {p} {{\n weight 1\n notify_down \"/usr/bin/touch {}\"\n \
         TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1 }} }}\n \
         real_server 198.18.1.3 80 {{\n weight 5\n alpha\n MISC_CHECK {{\n misc_path /bin/false\n }} }}",
        f("q2").display(),
        f("d2").display()
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    wait("the server up, the sorry server serving", || {
        health(&c).iter().any(|v| !v.sorry && v.up && !v.in_pool) && dests(&c) == vec![(8080, 1)]
    });
    // The quorum_down of the start (it starts lost, with a sorry server).
    wait("quorum_down at start", || f("q2").exists());
    std::fs::remove_file(f("q2")).unwrap();
    h.stop();
    wait("quorum_down at shutdown", || f("q2").exists());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!f("d2").exists(), "no notify_down for a server out of the pool");
    drop(l);
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// Sockets of this machine in SYN-SENT toward 127.0.0.1:`port`.
fn syn_sent_to(port: u16) -> usize {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == want && f[3] == "02"
        })
        .count()
}

#[test]
fn reloads_leave_no_checker_threads_behind_waiting_out_a_long_connect_timeout() {
    // A listener with a full accept queue: connects to it wait in SYN-SENT.
    let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    l.listen(0).unwrap();
    let to = l.local_addr().unwrap().as_socket().unwrap();
    let _queued: Vec<_> =
        (0..2).map(|_| std::net::TcpStream::connect_timeout(&to, Duration::from_millis(300))).collect();
    let text = |w: u32| {
        vs(&format!(
            " real_server 198.18.1.2 {} {{\n weight {w}\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 3600\n }} }}",
            to.port()
        ))
    };
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text(1)));
    wait("the checker started", || threads_named("gw-check-") == 1);
    // Ten reloads, each while the running checker waits in its connect.
    for w in 2..12 {
        wait("a checker's connect in SYN-SENT", || syn_sent_to(to.port()) >= 1);
        let r = h.apply(vec![], &conf(&text(w)), |reqs| c.sync(reqs));
        assert_eq!(r, Response::Ok);
    }
    wait("one checker thread, the last reload's", || threads_named("gw-check-") == 1);
    h.stop();
    wait("no checker thread after the stop", || threads_named("gw-check-") == 0);
}

/// Notify scripts that hang (`sleep`, as a script stuck on a lock would)
/// hold their own processes but no thread each: one reaper collects every
/// script as it ends, the hung ones once they do.
#[test]
fn hung_notify_scripts_hold_no_thread_each_and_are_reaped_when_they_end() {
    let script = |c: &str| Some(gw_keepalived::model::Script { command: c.into(), run_as: None });
    let hung = script("/bin/sleep 30");
    for _ in 0..40 {
        super::notify(&hung);
    }
    let quick = script("/bin/true");
    for _ in 0..10 {
        super::notify(&quick);
    }
    assert_eq!(threads_named("gw-notify"), 1, "one reaper thread for all of them");
    wait("the scripts that ended are reaped", || super::RUNNING.lock().unwrap().len() == 40);
    for c in super::RUNNING.lock().unwrap().iter_mut() {
        c.kill().unwrap();
    }
    wait("killed, they are reaped too", || super::RUNNING.lock().unwrap().is_empty());
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// keepalived (`check_data.c`, "For non alpha mode, one failure is enough
/// initially"): a server dead when gatewayd starts leaves at its first
/// failed check, not after `retry` more attempts `delay_before_retry`
/// apart (here 3 x 30 s, far beyond the wait's bound).
#[test]
fn a_server_dead_at_start_leaves_at_its_first_failure() {
    let p = closed_port();
    let text = vs(&format!(
        " real_server 198.18.1.2 {p} {{\n weight 1\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1\n retry 3\n \
         delay_before_retry 30\n warmup 0\n }} }}"
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    wait("the dead server leaves at its first check", || !health(&c)[0].up);
    assert_eq!(dests(&c), vec![], "taken out of the pool");
    h.stop();
}

/// The retries as keepalived's `retry_it` counts them: none while the
/// checker is down, none for a checker's first attempt at start, `retry`
/// for one that is up after it ran, or new at a reload.
#[test]
fn retries_follow_keepalived() {
    let l = conf(&vs(" real_server 198.18.1.2 9 {\n TCP_CHECK {\n connect_ip 127.0.0.1\n retry 4\n }\n }"));
    let vs = &l.conf.virtual_servers[0];
    let rs = &vs.real_servers[0];
    let ck = |up, has_run, at_start| super::Ck {
        checker: rs.checkers[0].clone(),
        timing: rs.checkers[0].effective(&rs.timing, &vs.timing),
        up,
        has_run,
        at_start,
        timeout: Duration::from_secs(1),
        last_status: None,
    };
    assert_eq!(ck(true, false, true).retries(), 0, "first attempt at start");
    assert_eq!(ck(true, false, false).retries(), 4, "first attempt of a checker new at a reload");
    assert_eq!(ck(true, true, true).retries(), 4, "up, after it ran");
    assert_eq!(ck(false, true, false).retries(), 0, "down");
    assert_eq!(ck(false, false, true).retries(), 0, "alpha, not run yet");
}

/// keepalived's `update_svr_checker_state`: an `alpha` checker (it starts
/// failed) whose first check fails runs the server's `notify_down`.
#[test]
fn an_alpha_checkers_first_failure_runs_notify_down() {
    let p = closed_port();
    let dir = ScratchDir::new("gw-health-alpha");
    let down = dir.join("notify_down");
    let text = vs(&format!(
        " alpha\n real_server 198.18.1.2 {p} {{\n notify_down \"/usr/bin/touch {}\"\n \
         TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1\n warmup 0 }} }}",
        down.display()
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    wait("notify_down runs at the first failure", || down.exists());
    assert!(!health(&c)[0].up);
    h.stop();
}

/// A directory of a test's own under the temporary directory, removed with
/// everything in it when the test ends, also when it fails.
pub(super) struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    pub(super) fn new(name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A script file in `dir` that exits with the status written in `status`.
fn status_script(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let (script, status) = (dir.join("check.sh"), dir.join("status"));
    std::fs::write(&script, format!("#!/bin/sh\nexit $(cat {})\n", status.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, status)
}

/// keepalived's `misc_dynamic`: exit 2..=255 is up with weight
/// `status - 2` (given to the server at once), exit 0 up with the file's
/// weight, exit 1 down; without `misc_dynamic` exit 5 is a failure.
#[test]
fn misc_dynamic_exit_statuses_set_the_weight() {
    let dir = ScratchDir::new("gw-health-dynamic");
    let (script, status) = status_script(&dir);
    std::fs::write(&status, "7").unwrap();
    let text = vs(&format!(
        " real_server 198.18.1.2 81 {{\n weight 3\n MISC_CHECK {{\n misc_path {}\n misc_dynamic\n \
         warmup 0\n }} }}\n \
         real_server 198.18.1.2 82 {{\n weight 4\n MISC_CHECK {{\n misc_path {}\n warmup 0\n }} }}",
        script.display(),
        script.display()
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    wait("exit 7: weight 5; without misc_dynamic: down", || dests(&c) == vec![(81, 5)]);
    std::fs::write(&status, "2").unwrap();
    wait("exit 2: weight 0, still up", || dests(&c) == vec![(81, 0)] && health(&c)[0].up);
    std::fs::write(&status, "0").unwrap();
    wait("exit 0: the file's weights, both up", || dests(&c) == vec![(81, 3), (82, 4)]);
    std::fs::write(&status, "1").unwrap();
    wait("exit 1: both down", || dests(&c).is_empty());
    h.stop();
}

/// keepalived's default script user: with `global_defs { script_user }` a
/// `MISC_CHECK` that names no user runs as that user (here the check
/// passes only under nobody's uid), one with its own `user` as that one.
#[test]
#[ignore = "needs root (the scripts run as other users)"]
fn a_misc_check_without_a_user_runs_as_the_global_script_user() {
    let (uid, _) = gw_keepalived::values::run_as("nobody", Some("nogroup")).expect("Debian's nobody");
    let check = format!("\"/bin/sh -c '[ $(id -u) = {uid} ]'\"");
    let text = format!(
        "global_defs {{\n script_user nobody nogroup\n}}\n{}",
        vs(&format!(
            " real_server 198.18.1.2 81 {{\n MISC_CHECK {{\n misc_path {check}\n warmup 0\n }} }}\n \
             real_server 198.18.1.2 82 {{\n MISC_CHECK {{\n misc_path {check}\n user root\n warmup 0\n }} }}"
        ))
    );
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    wait("the check run as nobody passes, the one run as root fails", || dests(&c) == vec![(81, 1)]);
    h.stop();
}

/// keepalived's `enable_script_security`: a `MISC_CHECK` run as root whose
/// script sits in a directory anyone may write (anyone could replace it and
/// have root run it) is disabled; without script security it runs.
#[test]
#[ignore = "needs root (the files must be root's)"]
fn script_security_disables_a_root_check_others_can_replace() {
    use std::os::unix::fs::PermissionsExt;
    let dir = ScratchDir::new("gw-health-insecure");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (script, status) = status_script(&dir);
    std::fs::write(&status, "1").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let text = |security: &str| {
        format!(
            "global_defs {{\n script_user root\n {security}\n}}\n{}",
            vs(&format!(
                " real_server 198.18.1.2 81 {{\n MISC_CHECK {{\n misc_path {}\n warmup 0\n }}\n \
                 TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_port {}\n }} }}",
                script.display(),
                listener.local_addr().unwrap().port()
            ))
        )
    };
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text("enable_script_security")));
    assert_eq!(health(&c)[0].checkers, vec!["TCP_CHECK".to_string()], "the insecure MISC_CHECK is disabled");
    assert_eq!(dests(&c), vec![(81, 1)]);
    h.stop();
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text("")));
    assert_eq!(health(&c)[0].checkers, vec!["MISC_CHECK".to_string(), "TCP_CHECK".to_string()]);
    wait("without script security it runs (exit 1: down)", || dests(&c).is_empty());
    h.stop();
}

/// keepalived disables a `MISC_CHECK` whose script is not found or not
/// executable ("Disabling misc script ... since not found/accessible"):
/// the server stays in the pool rather than failing every check.
#[test]
fn a_misc_check_without_its_script_is_disabled() {
    let text = vs(" real_server 198.18.1.2 81 {\n MISC_CHECK {\n misc_path \"/nonexistent/gw-check a\"\n warmup 0\n }\n \
         TCP_CHECK {\n connect_ip 127.0.0.1\n connect_port 9\n warmup 30\n }\n }");
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    assert_eq!(health(&c)[0].checkers, vec!["TCP_CHECK".to_string()], "only the TCP_CHECK runs");
    assert_eq!(dests(&c), vec![(81, 1)]);
    h.stop();
}

/// keepalived's `set_quorum_states`: the quorum is held at start only
/// from `quorum + hysteresis` on; below it a sorry server serves from the
/// start and `quorum_down` runs ("Starting with quorum down").
#[test]
fn the_quorum_starts_held_only_from_quorum_plus_hysteresis() {
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let (p1, p2) = (l1.local_addr().unwrap().port(), l2.local_addr().unwrap().port());
    let dir = ScratchDir::new("gw-health-quorum-start");
    let quorum_down = dir.join("quorum_down");
    let text = vs(&format!(
        " quorum 2\n hysteresis 1\n quorum_down \"/usr/bin/touch {}\"\n sorry_server 198.18.1.99 99\n \
         real_server 198.18.1.2 {p1} {{\n weight 1\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1 }} }}\n \
         real_server 198.18.1.2 {p2} {{\n weight 1\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1 }} }}",
        quorum_down.display()
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    assert_eq!(dests(&c), vec![(99, 1)], "live weight 2 < 2 + 1: the sorry server serves");
    wait("quorum_down runs at start", || quorum_down.exists());
    h.stop();
    drop((l1, l2));
}

/// keepalived's reload keeps the quorum's state and moves it only by the
/// usual tests: a held quorum with a live weight between `quorum -
/// hysteresis` and `quorum + hysteresis` stays held across a SIGHUP (it
/// does not start over, which would bring the sorry server in).
#[test]
fn a_reload_keeps_a_held_quorum() {
    let ls: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let ports: Vec<u16> = ls.iter().map(|l| l.local_addr().unwrap().port()).collect();
    let servers: String = ports
        .iter()
        .map(|p| {
            format!(" real_server 198.18.1.2 {p} {{\n weight 1\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1\n retry 0\n }} }}\n")
        })
        .collect();
    let text = vs(&format!(" quorum 2\n hysteresis 1\n sorry_server 198.18.1.99 99\n{servers}"));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    let mut all: Vec<(u16, u32)> = ports.iter().map(|p| (*p, 1)).collect();
    all.sort();
    assert_eq!(dests(&c), all, "live weight 3 = 2 + 1: held from the start");
    let mut ls = ls;
    drop(ls.pop());
    wait("one server down", || dests(&c).len() == 2);
    let two: Vec<(u16, u32)> = all.iter().copied().filter(|(p, _)| *p != ports[2]).collect();
    assert_eq!(dests(&c), two, "live weight 2 is not below 2 - 1: still held");
    let r = h.apply(vec![], &conf(&text), |reqs| c.sync(reqs));
    assert_eq!(r, Response::Ok);
    assert_eq!(dests(&c), two, "a reload keeps it held: no sorry server");
    h.stop();
    drop(ls);
}

/// keepalived's `migrate_misc_check`: after a reload that changes the
/// server's `weight`, a `misc_dynamic` status keeps its meaning (weight
/// `status - 2`), not a share taken against the old weight.
#[test]
fn a_dynamic_weight_survives_a_reload_that_changes_the_file_weight() {
    let dir = ScratchDir::new("gw-health-dynamic-reload");
    let (script, status) = status_script(&dir);
    std::fs::write(&status, "7").unwrap();
    let text = |w: u32| {
        vs(&format!(
            " real_server 198.18.1.2 81 {{\n weight {w}\n MISC_CHECK {{\n misc_path {}\n misc_dynamic\n warmup 0\n }} }}",
            script.display()
        ))
    };
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text(3)));
    wait("exit 7: weight 5", || dests(&c) == vec![(81, 5)]);
    let r = h.apply(vec![], &conf(&text(10)), |reqs| c.sync(reqs));
    assert_eq!(r, Response::Ok);
    assert_eq!(dests(&c), vec![(81, 5)], "still status - 2");
    h.stop();
}

/// A MISC_CHECK's command is split with keepalived's escapes: `exit\ 9`
/// is one word, so `sh -c` exits 9 and `misc_dynamic` sets weight 7 (split
/// at the blank, sh would run `exit\` and exit 127: weight 125).
#[test]
fn a_misc_check_command_is_split_with_keepalived_escapes() {
    let text = vs(" real_server 198.18.1.2 81 {\n weight 3\n MISC_CHECK {\n misc_path \"/bin/sh -c exit\\ 9\"\n misc_dynamic\n warmup 0\n }\n }");
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    wait("exit 9: weight 7", || dests(&c) == vec![(81, 7)]);
    h.stop();
}

/// keepalived migrates checker by checker: editing one checker of a dead
/// server keeps the dead one's state (the server stays out), and the new
/// checker of a failed server fails at its first failure.
#[test]
fn a_reload_that_edits_one_checker_keeps_the_others_state() {
    let p = closed_port();
    let text = |t: &str| {
        vs(&format!(
            " real_server 198.18.1.2 {p} {{\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1\n retry 0\n }}\n \
             MISC_CHECK {{\n misc_path /bin/true\n misc_timeout {t}\n }} }}"
        ))
    };
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text("5")));
    wait("the dead server out", || dests(&c).is_empty());
    let r = h.apply(vec![], &conf(&text("6")), |reqs| c.sync(reqs));
    assert_eq!(r, Response::Ok);
    assert!(dests(&c).is_empty(), "its unchanged TCP_CHECK still says down");
    assert!(!health(&c)[0].up);
    h.stop();
}

/// keepalived starts a virtual server's quorum down and gains it at once
/// when the live weight suffices ("Starting with quorum up"): `quorum_up`
/// runs at start.
#[test]
fn quorum_up_runs_at_start_when_the_quorum_is_held() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let dir = ScratchDir::new("gw-health-quorum-up");
    let up = dir.join("quorum_up");
    let text = vs(&format!(
        " quorum 1\n quorum_up \"/usr/bin/touch {}\"\n real_server 198.18.1.2 {p} {{\n TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_timeout 1 }} }}",
        up.display()
    ));
    let c = control();
    let h = Health::new(c.clone());
    start(&h, &c, &conf(&text));
    wait("quorum_up runs at start", || up.exists());
    h.stop();
    drop(l);
}

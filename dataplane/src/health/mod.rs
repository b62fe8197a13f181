//! Health checks of a keepalived file's real servers, in the control plane
//! (never on a worker), with keepalived's semantics (`check_api.c`,
//! `ipwrapper.c`):
//!
//! - each checker runs on its own thread every `delay_loop`; a failed
//!   attempt of a checker that is up is retried `retry` times,
//!   `delay_before_retry` apart, before the checker is declared failed; one
//!   success declares it up. As keepalived's `tcp_epilog` and its kin: a
//!   checker that is down is not retried, and at start (not at a reload)
//!   one failure is enough (`check_data.c`: "For non alpha mode, one
//!   failure is enough initially"), so a server dead at start leaves at
//!   its first check;
//! - a real server is up when all its checkers are; `alpha` starts its
//!   checkers failed (the server joins after its first success), otherwise
//!   it starts up;
//! - a real server that goes down is removed (`DelDest`), or with
//!   `inhibit_on_failure` set to weight 0 (`EditDest`), through
//!   [`Control::handle`] as a gwctl request is: new connections stop at
//!   once, existing sessions follow the rules already in place (a removed
//!   server's sessions go on through the trash). A recovered one comes back
//!   with its weight;
//! - `quorum` / `hysteresis`: the sum of the live servers' weights; when it
//!   falls below `quorum - hysteresis` and the virtual server has a
//!   `sorry_server`, the sorry server is added and the live servers taken
//!   out; at `quorum + hysteresis` they come back and the sorry server goes.
//!   A service starts with the quorum held only from `quorum + hysteresis`
//!   (`set_quorum_states`); a reload keeps the state and moves it by the
//!   same tests;
//! - `misc_dynamic`: a script's exit status 2..=255 sets its server's
//!   weight (`status - 2`);
//! - `notify_up` / `notify_down` / `quorum_up` / `quorum_down` scripts run
//!   (without a shell, not waited for, as their `USER`/`GROUP`); with
//!   `omega`, at shutdown the `notify_down` of every server still up and
//!   in the pool (not in sorry mode) and every `quorum_down`, also for a
//!   service without checkers.
//!
//! A weight changed with `gwctl -e` is not overwritten: when a checker
//! takes a server out it remembers the weight the server had then (gwctl's
//! edit included) and brings it back with that; if the operator gives an
//! inhibited server a weight while it is down, recovery keeps theirs. A
//! reload (SIGHUP) makes everything equal to the file again, health state
//! applied: servers down stay out, the others get the file's weights.

pub mod probe;
mod security;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gw_keepalived::check::{CheckKind, Checker, Timing, DEFAULT_TIMING};
use gw_keepalived::model::Script;
use gw_keepalived::Loaded;
use gw_proto::{DestSpec, ErrorKind, ForwardMode, Request, Response, RsHealth, ServiceKey};

use crate::control::Control;

/// How often a sleeping checker looks whether it was replaced or stopped.
const POLL: Duration = Duration::from_millis(50);

/// The health checks of the running keepalived file.
pub struct Health {
    control: Arc<Control>,
    state: Mutex<State>,
    /// Bumped by every reload and by [`Health::stop`]: older threads end.
    generation: AtomicU64,
    /// Up and down transitions of all real servers (metrics).
    pub ups: AtomicU64,
    pub downs: AtomicU64,
}

#[derive(Default)]
struct State {
    services: Vec<Svc>,
}

struct Svc {
    key: ServiceKey,
    quorum: u32,
    hysteresis: u32,
    quorum_up: bool,
    quorum_up_script: Option<Script>,
    quorum_down_script: Option<Script>,
    /// keepalived's `omega`: at shutdown, `notify_down` for every server
    /// still up and `quorum_down`.
    omega: bool,
    sorry: Option<DestSpec>,
    rss: Vec<Rs>,
}

struct Rs {
    /// As the file configures it.
    dest: DestSpec,
    inhibit: bool,
    /// The weight it is (re)added with: the file's, or the live one when a
    /// checker took it out.
    restore: u32,
    checkers: Vec<Ck>,
    transitions: u64,
    last_error: String,
    notify_up: Option<Script>,
    notify_down: Option<Script>,
    /// The Host header's fallback: its `virtualhost`, else the virtual
    /// server's ([`probe::Vhosts`]).
    host: Option<String>,
    /// The TLS server name's fallback: the virtual server's `virtualhost`.
    sni_host: Option<String>,
}

struct Ck {
    checker: Checker,
    timing: Timing,
    up: bool,
    /// It has reported once (keepalived's `has_run`).
    has_run: bool,
    /// It started with gatewayd, not at a reload: its first failure is
    /// final, without retries.
    at_start: bool,
    /// One attempt's bound: `connect_timeout`, or a script's `misc_timeout`
    /// (by default the virtual server's `delay_loop`, `check_misc.c`).
    timeout: Duration,
    /// The last exit status a `misc_dynamic` script succeeded with (none
    /// after a failure): its share of the server's weight
    /// ([`Rs::dynamic_weight`]).
    last_status: Option<u8>,
}

impl Ck {
    /// How many times a failed attempt is tried again before it counts
    /// (keepalived's `retry_it` against `retry`): none while the checker
    /// is down, none for the first attempt at start, else `retry`.
    fn retries(&self) -> u32 {
        if !self.up || (!self.has_run && self.at_start) {
            0
        } else {
            self.timing.retry
        }
    }
}

impl Rs {
    fn up(&self) -> bool {
        self.checkers.iter().all(|c| c.up)
    }

    /// The file's weight with every `misc_dynamic` script's share
    /// (keepalived's `effective_weight`, each script's `cur_weight` its
    /// last status's weight `status - 2` less the file's; none after exit 0
    /// or a failure), at least 0 and at most [`gw_proto::MAX_WEIGHT`]
    /// (keepalived's `real_weight`). Taken against the file's weight now, so
    /// a reload that changes `weight` moves it as `migrate_misc_check`.
    fn dynamic_weight(&self) -> u32 {
        let file = i64::from(self.dest.weight);
        let share = |c: &Ck| c.last_status.filter(|s| *s >= 2).map_or(0, |s| i64::from(s) - 2 - file);
        let w = file + self.checkers.iter().map(share).sum::<i64>();
        w.clamp(0, i64::from(gw_proto::MAX_WEIGHT)) as u32
    }
}

fn same_checker(a: &Checker, b: &Checker) -> bool {
    (&a.kind, &a.common) == (&b.kind, &b.common)
}

impl Svc {
    /// Quorum lost and a sorry server to fall back on.
    fn sorry_mode(&self) -> bool {
        self.sorry.is_some() && !self.quorum_up
    }

    /// The real servers (and sorry server) the service should have, with their weights.
    fn pool(&self) -> BTreeMap<(IpAddr, u16), DestSpec> {
        let mut out = BTreeMap::new();
        let sorry = self.sorry_mode();
        for rs in &self.rss {
            let w = match (rs.up() && !sorry, rs.inhibit) {
                (true, _) => rs.restore,
                (false, true) => 0,
                (false, false) => continue,
            };
            out.insert((rs.dest.addr, rs.dest.port), DestSpec { weight: w, ..rs.dest });
        }
        if let (true, Some(s)) = (sorry, self.sorry) {
            out.entry((s.addr, s.port)).or_insert(s);
        }
        out
    }

    /// The weights of the live servers (keepalived's `weigh_live_realservers`).
    fn live_weight(&self) -> u64 {
        self.rss.iter().filter(|r| r.up()).map(|r| u64::from(r.restore)).sum()
    }

    /// keepalived's `set_quorum_states`, for a service that starts (at
    /// gatewayd's start or new at a reload; a reload keeps a running
    /// service's state): the quorum is held from the first when the live
    /// weight reaches
    /// `quorum + hysteresis` (keepalived's sample: "the quorum will not be
    /// reached until 9 (7+2)"), else it starts lost (with a sorry server,
    /// that one serves: `update_quorum_state`'s "Starting with quorum
    /// down").
    fn start_quorum(&mut self) {
        self.quorum_up = self.live_weight() >= u64::from(self.quorum) + u64::from(self.hysteresis);
    }

    /// keepalived's `update_quorum_state`; `Some(up)` when it changed.
    fn update_quorum(&mut self) -> Option<bool> {
        let sum = self.live_weight();
        let (q, h) = (u64::from(self.quorum), u64::from(self.hysteresis));
        if !self.quorum_up && sum >= q + h {
            self.quorum_up = true;
            return Some(true);
        }
        if self.quorum_up && (sum == 0 || sum < q.saturating_sub(h)) {
            self.quorum_up = false;
            return Some(false);
        }
        None
    }

    fn view(&self) -> Vec<RsHealth> {
        let pool = self.pool();
        let mut out: Vec<RsHealth> = self
            .rss
            .iter()
            .filter(|r| !r.checkers.is_empty())
            .map(|r| RsHealth {
                addr: r.dest.addr,
                port: r.dest.port,
                up: r.up(),
                in_pool: pool.contains_key(&(r.dest.addr, r.dest.port)),
                weight: r.restore,
                checkers: r.checkers.iter().map(|c| c.checker.kind.keyword().to_owned()).collect(),
                failed: r.checkers.iter().filter(|c| !c.up).count() as u32,
                transitions: r.transitions,
                last_error: r.last_error.clone(),
                sorry: false,
            })
            .collect();
        if let Some(s) = self.sorry {
            out.push(RsHealth {
                addr: s.addr,
                port: s.port,
                up: true,
                in_pool: self.sorry_mode(),
                weight: s.weight,
                checkers: vec![],
                failed: 0,
                transitions: 0,
                last_error: String::new(),
                sorry: true,
            });
        }
        out
    }
}

/// The checked services of `loaded`, every checker in its starting state
/// (`alpha`: failed); `at_start` when gatewayd starts (not a reload).
fn build(loaded: &Loaded, at_start: bool) -> State {
    let mut services = vec![];
    let mut scripts = Scripts { security: loaded.conf.script_security, audit: security::Audit::default() };
    for s in &loaded.services {
        let vs = &loaded.conf.virtual_servers[s.vs];
        let rss: Vec<Rs> = s
            .dests
            .iter()
            .map(|(j, d)| {
                let rs = &vs.real_servers[*j];
                let checkers = rs
                    .checkers
                    .iter()
                    .filter(|c| scripts.runnable(c))
                    .map(|c| {
                        let timing = c.effective(&rs.timing, &vs.timing);
                        let timeout = match &c.kind {
                            CheckKind::Misc(_) => vs.timing.delay_loop.unwrap_or(DEFAULT_TIMING.delay_loop),
                            _ => timing.connect_timeout,
                        };
                        Ck {
                            checker: c.clone(),
                            timing,
                            up: !c.common.alpha.or(rs.alpha).unwrap_or(vs.alpha),
                            has_run: false,
                            at_start,
                            timeout,
                            last_status: None,
                        }
                    })
                    .collect();
                Rs {
                    dest: *d,
                    inhibit: rs.inhibit_on_failure.unwrap_or(vs.inhibit_on_failure),
                    restore: d.weight,
                    checkers,
                    transitions: 0,
                    last_error: String::new(),
                    notify_up: scripts.kept(&rs.notify_up),
                    notify_down: scripts.kept(&rs.notify_down),
                    host: rs.virtualhost.clone().or(vs.virtualhost.clone()),
                    sni_host: vs.virtualhost.clone(),
                }
            })
            .collect();
        let sorry = vs.sorry_server.as_ref().map(|ss| {
            let mode = ss.forward.or(vs.forward).unwrap_or(ForwardMode::Masq);
            DestSpec::new(ss.addr, ss.port.unwrap_or(s.spec.key.port), mode, 1)
        });
        // A service the health checks have nothing to do for: no checker,
        // no sorry server, no script (keepalived runs the quorum and
        // notify scripts of a service without checkers too: at start, and
        // with `omega` at shutdown).
        let (quorum_up_script, quorum_down_script) =
            (scripts.kept(&vs.quorum_up), scripts.kept(&vs.quorum_down));
        let has_scripts = quorum_up_script.is_some()
            || quorum_down_script.is_some()
            || rss.iter().any(|r| r.notify_up.is_some() || r.notify_down.is_some());
        if rss.iter().all(|r| r.checkers.is_empty()) && sorry.is_none() && !has_scripts {
            continue;
        }
        let mut svc = Svc {
            key: s.spec.key,
            quorum: vs.quorum,
            hysteresis: vs.hysteresis,
            quorum_up: true,
            quorum_up_script,
            quorum_down_script,
            omega: vs.omega,
            sorry,
            rss,
        };
        svc.start_quorum();
        services.push(svc);
    }
    if let Some(w) = scripts.audit.warning(scripts.security) {
        tracing::warn!("health: {w}");
    }
    State { services }
}

/// A reload's real server `rs` takes over the state of its running self
/// `old`, checker by checker as keepalived's `migrate_checkers`: a checker
/// equal to one of `old`'s keeps that one's state (up or down, has it run,
/// a `misc_dynamic` status); a new one of a server that was down fails at
/// its first failure, without retries (keepalived's `retry_it = retry` for
/// a failed server's new checkers).
fn migrate(rs: &mut Rs, old: &Rs) {
    let mut taken = vec![false; old.checkers.len()];
    for n in &mut rs.checkers {
        let found =
            old.checkers.iter().enumerate().find(|(j, o)| !taken[*j] && same_checker(&o.checker, &n.checker));
        match found {
            Some((j, o)) => {
                taken[j] = true;
                (n.up, n.has_run, n.at_start, n.last_status) = (o.up, o.has_run, o.at_start, o.last_status);
            }
            None if !old.up() => n.at_start = true,
            None => {}
        }
    }
    rs.restore = rs.dynamic_weight();
    rs.transitions = old.transitions;
    rs.last_error = old.last_error.clone();
}

/// The checks of a configuration's scripts ([`security`]): whether script
/// security is on, and what the scripts came to.
struct Scripts {
    security: bool,
    audit: security::Audit,
}

impl Scripts {
    /// The verdict on a script of command line `line` run as `run_as`
    /// (its user, else gatewayd's).
    fn verdict(&mut self, line: &str, run_as: Option<(u32, u32)>) -> security::Verdict {
        let Some(prog) = probe::split_command(line).into_iter().next() else {
            return security::Verdict::Missing;
        };
        // SAFETY: geteuid(2) and getegid(2) cannot fail and touch no memory.
        let ids = run_as.unwrap_or_else(|| unsafe { (libc::geteuid(), libc::getegid()) });
        security::check(&prog, ids, self.security, &mut self.audit)
    }

    /// Whether checker `c` can run: a `MISC_CHECK` whose program is not
    /// found or not executable, or is insecure under script security, is
    /// disabled as keepalived's `check_misc_script_security` disables it
    /// ("Disabling misc script ..."): its server is then not held down by
    /// it.
    fn runnable(&mut self, c: &Checker) -> bool {
        let CheckKind::Misc(m) = &c.kind else { return true };
        let why = match self.verdict(&m.path, m.run_as) {
            security::Verdict::Run => return true,
            security::Verdict::Missing => "since not found/accessible",
            security::Verdict::Insecure => "due to insecure",
        };
        let cmd = gw_keepalived::values::cmd_str(&m.path);
        tracing::warn!(script = %m.path, "health: Disabling misc script {cmd} {why}");
        false
    }

    /// A notify script to keep, unless it is missing or insecure
    /// (`check_notify_script_secure`).
    fn kept(&mut self, script: &Option<Script>) -> Option<Script> {
        let s = script.as_ref()?;
        (self.verdict(&s.command, s.run_as) == security::Verdict::Run).then(|| s.clone())
    }
}

/// Runs a notify script without a shell and without waiting for it (as
/// keepalived's `notify_exec`: never killed, however long it runs), as its
/// user and group if it names them.
fn notify(script: &Option<Script>) {
    let Some(Script { command, run_as }) = script else { return };
    let Some((_, mut cmd)) = probe::script_command(command, *run_as) else { return };
    match cmd.stdin(Stdio::null()).spawn() {
        Ok(child) => reap_later(child),
        Err(e) => tracing::warn!(script = %command, error = %e, "health: cannot run the notify script"),
    }
}

/// The notify scripts still running, for [`reap_later`].
static RUNNING: Mutex<Vec<std::process::Child>> = Mutex::new(Vec::new());

/// How often the reaper looks for notify scripts that ended.
const REAP_EVERY: Duration = Duration::from_millis(200);

/// Hands `child` (a notify script) to the one reaper thread of all of them
/// (started with the first), which collects each as it ends: a script
/// that never ends holds its own process, as under keepalived, but no
/// thread of gatewayd's (one waiter thread per script piled up under a
/// flapping server whose script hangs). Those already ended are collected
/// here too, so without the thread (it could not start) they do not pile
/// up either.
fn reap_later(child: std::process::Child) {
    static REAPER: std::sync::Once = std::sync::Once::new();
    let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
    reap(&mut running);
    running.push(child);
    drop(running);
    REAPER.call_once(|| {
        let started = std::thread::Builder::new().name("gw-notify-reap".into()).spawn(|| loop {
            std::thread::sleep(REAP_EVERY);
            reap(&mut RUNNING.lock().unwrap_or_else(|p| p.into_inner()));
        });
        if let Err(e) = started {
            tracing::warn!(error = %e, "health: no reaper thread; notify scripts are collected at the next one");
        }
    });
}

/// Collects the notify scripts of `running` that ended.
fn reap(running: &mut Vec<std::process::Child>) {
    running.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

/// A checker's identity for its thread.
#[derive(Clone, Copy)]
struct Slot {
    generation: u64,
    svc: usize,
    rs: usize,
    ck: usize,
}

impl Health {
    /// Health checks for nothing yet; [`Health::apply`] gives them a file.
    pub fn new(control: Arc<Control>) -> Arc<Health> {
        Arc::new(Health {
            control,
            state: Mutex::default(),
            generation: AtomicU64::new(0),
            ups: AtomicU64::new(0),
            downs: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the checks those of `loaded` and the running configuration
    /// what `apply` does with `requests` (the other sources' requests, then
    /// the file's with every checked server as its health says). Servers
    /// whose checkers did not change keep their state; the others start
    /// as `alpha` says. Threads start only when `apply` succeeds; on an
    /// error the running checks go on unchanged.
    pub fn apply(
        self: &Arc<Self>,
        mut requests: Vec<Request>,
        loaded: &Loaded,
        apply: impl FnOnce(Vec<Request>) -> Response,
    ) -> Response {
        let mut st = self.lock();
        let at_start = self.generation.load(Ordering::SeqCst) == 0;
        let mut next = build(loaded, at_start);
        // Quorum changes a reload makes, for their scripts once applied.
        let mut quorum_moves = vec![];
        for svc in &mut next.services {
            let Some(old) = st.services.iter().find(|o| o.key == svc.key) else { continue };
            for rs in &mut svc.rss {
                let Some(o) =
                    old.rss.iter().find(|o| (o.dest.addr, o.dest.port) == (rs.dest.addr, rs.dest.port))
                else {
                    continue;
                };
                migrate(rs, o);
            }
            // keepalived (`ipwrapper.c`'s reload): the quorum state carries
            // over, then the usual test moves it.
            svc.quorum_up = old.quorum_up;
            if let Some(up) = svc.update_quorum() {
                quorum_moves.push((svc.key, up));
            }
        }
        let pools: BTreeMap<ServiceKey, _> = next.services.iter().map(|s| (s.key, s.pool())).collect();
        for s in &loaded.services {
            let key = s.spec.key;
            let pool = pools.get(&key);
            requests.push(Request::AddService { spec: s.spec.clone() });
            match pool {
                Some(p) => requests.extend(p.values().map(|d| Request::AddDest { service: key, dest: *d })),
                None => {
                    requests.extend(s.dests.iter().map(|(_, d)| Request::AddDest { service: key, dest: *d }))
                }
            }
            requests.extend(s.laddrs.iter().map(|a| Request::AddLaddr { service: key, addr: *a }));
        }
        let r = apply(requests);
        if matches!(r, Response::Error { .. }) {
            return r;
        }
        // keepalived's `update_quorum_state` at a service's start: it
        // starts with the quorum up (`quorum_up` runs) or down (with a sorry
        // server, which then serves: `quorum_down` runs); then the moves a
        // reload made.
        for svc in &next.services {
            let new = !st.services.iter().any(|o| o.key == svc.key);
            let moved = quorum_moves.iter().find(|(k, _)| *k == svc.key).map(|(_, up)| *up);
            match (new, moved) {
                (true, _) if svc.quorum_up => notify(&svc.quorum_up_script),
                (true, _) if svc.sorry.is_some() => {
                    tracing::warn!(service = %svc.key, "health: starting with quorum down");
                    notify(&svc.quorum_down_script)
                }
                (false, Some(true)) => notify(&svc.quorum_up_script),
                (false, Some(false)) => notify(&svc.quorum_down_script),
                _ => {}
            }
        }
        *st = next;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        for (si, svc) in st.services.iter().enumerate() {
            for (ri, rs) in svc.rss.iter().enumerate() {
                for ci in 0..rs.checkers.len() {
                    let slot = Slot { generation, svc: si, rs: ri, ck: ci };
                    let h = self.clone();
                    let name = format!("gw-check-{si}-{ri}-{ci}");
                    if let Err(e) = std::thread::Builder::new().name(name).spawn(move || h.run(slot)) {
                        tracing::error!(error = %e, "health: cannot start a checker thread");
                    }
                }
            }
        }
        self.publish(&st);
        r
    }

    /// Stops every checker (at shutdown); with `omega`, runs the down
    /// scripts of what was still up and in the pool and every
    /// `quorum_down`, as keepalived does when it exits (`clear_service_rs`
    /// notifies a server that is alive and set: in sorry mode the live
    /// servers are out of the pool and get none; `update_vs_notifies` when
    /// stopping).
    pub fn stop(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for svc in st.services.iter().filter(|s| s.omega) {
            for rs in svc.rss.iter().filter(|r| r.up() && !svc.sorry_mode()) {
                notify(&rs.notify_down);
            }
            notify(&svc.quorum_down_script);
        }
    }

    fn current(&self, slot: Slot) -> bool {
        self.generation.load(Ordering::SeqCst) == slot.generation
    }

    /// Sleeps `d` unless the checker is replaced first; false then.
    fn sleep(&self, slot: Slot, d: Duration) -> bool {
        let end = std::time::Instant::now() + d;
        loop {
            if !self.current(slot) {
                return false;
            }
            let now = std::time::Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep(POLL.min(end - now));
        }
    }

    /// A checker's thread: probe, retry, report, wait `delay_loop`.
    fn run(self: Arc<Self>, slot: Slot) {
        let (checker, timing, to, (host, sni_host), timeout) = {
            let st = self.lock();
            // A reload may have replaced the checks before this thread ran.
            if !self.current(slot) {
                return;
            }
            let rs = st.services.get(slot.svc).and_then(|s| s.rss.get(slot.rs));
            let Some((rs, ck)) = rs.and_then(|rs| Some((rs, rs.checkers.get(slot.ck)?))) else { return };
            let to = probe::target(&ck.checker, rs.dest.addr, rs.dest.port);
            (ck.checker.clone(), ck.timing, to, (rs.host.clone(), rs.sni_host.clone()), ck.timeout)
        };
        // keepalived's warmup: a random part of it, so that checks of one
        // server do not all start at once.
        if !self.sleep(slot, timing.warmup.mul_f64(random_fraction())) {
            return;
        }
        let hosts = probe::Vhosts { header: host.as_deref(), sni: sni_host.as_deref() };
        loop {
            let Some(retries) = self.retries(slot) else { return };
            let mut tries = 0;
            let result = loop {
                let r = probe::probe_weighing(&checker, to, timeout, hosts, &|| !self.current(slot));
                if r.is_ok() || tries >= retries {
                    break r;
                }
                tries += 1;
                tracing::debug!(checker = checker.kind.keyword(), %to, error = %r.unwrap_err(), try_ = tries, "health: check failed, retrying");
                if !self.sleep(slot, timing.delay_before_retry) {
                    return;
                }
            };
            if !self.report(slot, result) || !self.sleep(slot, timing.delay_loop) {
                return;
            }
        }
    }

    /// [`Ck::retries`] of the checker in `slot`; `None` when it was replaced.
    fn retries(&self, slot: Slot) -> Option<u32> {
        let st = self.lock();
        if !self.current(slot) {
            return None;
        }
        Some(st.services[slot.svc].rss[slot.rs].checkers[slot.ck].retries())
    }

    /// A checker's result; false when the checker was replaced.
    fn report(&self, slot: Slot, result: Result<Option<u8>, String>) -> bool {
        let mut st = self.lock();
        if !self.current(slot) {
            return false;
        }
        let svc = &mut st.services[slot.svc];
        let reweighed = self.reweigh(svc, slot, &result);
        let before = svc.pool();
        let rs = &mut svc.rss[slot.rs];
        let was_up = rs.up();
        let ck = &mut rs.checkers[slot.ck];
        let ok = result.is_ok();
        let first = !std::mem::replace(&mut ck.has_run, true);
        let (key, addr, port) = (svc.key, rs.dest.addr, rs.dest.port);
        if ck.up != ok {
            ck.up = ok;
            let kw = ck.checker.kind.keyword();
            match &result {
                Ok(_) => {
                    tracing::info!(service = %key, server = %format!("{addr}:{port}"), checker = kw, "health: check succeeded")
                }
                Err(e) => {
                    tracing::warn!(service = %key, server = %format!("{addr}:{port}"), checker = kw, error = %e, "health: check failed")
                }
            }
        } else if first
            && !ok
            && ck.at_start
            && !matches!(ck.checker.kind, CheckKind::Http(_) | CheckKind::Ssl(_))
        {
            // keepalived's `update_svr_checker_state`: a checker that
            // starts failed (`alpha`) and fails its first check runs the
            // server's `notify_down`, as a server going down would. Not an
            // HTTP_GET's or SSL_GET's (their `timeout_epilog` marks them run
            // first), nor one new at a reload.
            notify(&rs.notify_down);
        }
        if let Err(e) = &result {
            rs.last_error = e.clone();
        }
        let now_up = rs.up();
        if now_up != was_up {
            rs.transitions += 1;
            if now_up {
                self.ups.fetch_add(1, Ordering::Relaxed);
                tracing::info!(service = %key, server = %format!("{addr}:{port}"), "health: real server up, bringing it back");
                notify(&rs.notify_up);
            } else {
                self.downs.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(service = %key, server = %format!("{addr}:{port}"), inhibit = rs.inhibit, "health: real server down, taking it out");
                notify(&rs.notify_down);
            }
        }
        if now_up != was_up || reweighed {
            match svc.update_quorum() {
                Some(true) => {
                    tracing::info!(service = %key, "health: gained quorum");
                    notify(&svc.quorum_up_script)
                }
                Some(false) => {
                    tracing::warn!(service = %key, "health: lost quorum");
                    notify(&svc.quorum_down_script)
                }
                None => {}
            }
            let after = svc.pool();
            self.change(svc, before, after);
        }
        self.publish(&st);
        true
    }

    /// keepalived's `misc_dynamic` (`misc_check_child_thread`): a script's
    /// new exit status 2..=255 makes the server's weight `status - 2`
    /// (with other scripts' shares, [`Rs::dynamic_weight`]), exit 0 or a
    /// failure gives the file's back. A server in the pool gets the new
    /// weight at once (`EditDest`); true when the weight changed, for the
    /// quorum.
    fn reweigh(&self, svc: &mut Svc, slot: Slot, result: &Result<Option<u8>, String>) -> bool {
        let (key, sorry) = (svc.key, svc.sorry_mode());
        let rs = &mut svc.rss[slot.rs];
        let ck = &mut rs.checkers[slot.ck];
        match *result {
            Ok(Some(status)) if ck.last_status != Some(status) => ck.last_status = Some(status),
            Err(_) if ck.last_status.is_some() => ck.last_status = None,
            _ => return false,
        }
        let w = rs.dynamic_weight();
        if w == rs.restore {
            return false;
        }
        rs.restore = w;
        let (addr, port) = (rs.dest.addr, rs.dest.port);
        if rs.up() && !sorry {
            if let Some(live) = self.live(key, addr, port) {
                tracing::info!(service = %key, server = %format!("{addr}:{port}"), weight = w, "health: misc_dynamic sets the weight");
                self.request(key, Request::EditDest { service: key, dest: DestSpec { weight: w, ..live } });
            }
        }
        true
    }

    /// The live weight of a real server, if it is in the service.
    fn live(&self, key: ServiceKey, addr: IpAddr, port: u16) -> Option<DestSpec> {
        match self.control.query(Request::List { service: Some(key) }) {
            Response::Services { services, .. } => services
                .into_iter()
                .flat_map(|s| s.dests)
                .map(|d| d.spec)
                .find(|d| (d.addr, d.port) == (addr, port)),
            _ => None,
        }
    }

    /// Moves the service from pool `before` to pool `after`, through the
    /// control path, one request per changed server.
    fn change(
        &self,
        svc: &mut Svc,
        before: BTreeMap<(IpAddr, u16), DestSpec>,
        after: BTreeMap<(IpAddr, u16), DestSpec>,
    ) {
        let key = svc.key;
        fn remember(svc: &mut Svc, addr: IpAddr, port: u16, live: Option<DestSpec>) {
            let rs = svc.rss.iter_mut().find(|r| (r.dest.addr, r.dest.port) == (addr, port));
            if let (Some(rs), Some(l)) = (rs, live) {
                if l.weight > 0 {
                    rs.restore = l.weight;
                }
            }
        }
        let mut reqs = vec![];
        for (&(addr, port), b) in &before {
            match after.get(&(addr, port)) {
                None => {
                    remember(svc, addr, port, self.live(key, addr, port));
                    reqs.push(Request::DelDest { service: key, addr, port });
                }
                Some(a) if a.weight == 0 && b.weight != 0 => {
                    let live = self.live(key, addr, port);
                    remember(svc, addr, port, live);
                    let spec = live.unwrap_or(*a);
                    reqs.push(Request::EditDest { service: key, dest: DestSpec { weight: 0, ..spec } });
                }
                Some(a) if b.weight == 0 && a.weight != 0 => match self.live(key, addr, port) {
                    Some(l) if l.weight != 0 => {
                        tracing::info!(service = %key, server = %format!("{addr}:{port}"), weight = l.weight, "health: recovered server keeps the weight gwctl gave it")
                    }
                    live => {
                        let spec = live.unwrap_or(*a);
                        let w = svc
                            .rss
                            .iter()
                            .find(|r| (r.dest.addr, r.dest.port) == (addr, port))
                            .map_or(a.weight, |r| r.restore);
                        reqs.push(Request::EditDest { service: key, dest: DestSpec { weight: w, ..spec } })
                    }
                },
                Some(_) => {}
            }
        }
        for (&(addr, port), a) in &after {
            if !before.contains_key(&(addr, port)) {
                let w = svc
                    .rss
                    .iter()
                    .find(|r| (r.dest.addr, r.dest.port) == (addr, port))
                    .map_or(a.weight, |r| r.restore);
                reqs.push(Request::AddDest { service: key, dest: DestSpec { weight: w, ..*a } });
            }
        }
        for r in reqs {
            self.request(key, r);
        }
    }

    /// Applies `r` (about service `key`) through the control path, as a
    /// gwctl request: what gwctl already did is noted, a refusal logged.
    fn request(&self, key: ServiceKey, r: Request) {
        let what = format!("{r:?}");
        match self.control.handle(r) {
            Response::Error { kind: ErrorKind::DestExists | ErrorKind::NoDest, message } => {
                tracing::info!(service = %key, request = %what, %message, "health: already done by gwctl")
            }
            Response::Error { message, .. } => {
                tracing::error!(service = %key, request = %what, %message, "health: request refused")
            }
            _ => {}
        }
    }

    fn publish(&self, st: &State) {
        self.control.set_health(st.services.iter().map(|s| (s.key, s.view())).collect());
    }
}

/// A random number in [0, 1) from the standard library's per-process
/// random hash keys (no other source is needed for a start delay).
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;

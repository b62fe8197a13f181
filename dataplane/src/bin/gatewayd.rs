//! gatewayd: the DPDK layer-4 load balancer.
//!
//! Start-up order: read and validate the config (refuse a bad one before
//! touching DPDK), bring up EAL with the ports' devices, configure each port
//! with one rx/tx queue pair per worker, apply the services from the config
//! through the same control path gwctl uses, open the control socket, then
//! launch one poll-mode worker per configured lcore. SIGINT/SIGTERM stop the
//! workers, the ports and the socket cleanly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use dataplane::config::{load_rules, Config};
use dataplane::control::{self, Control};
use dataplane::engine_config::{CONTROL_TICK, MBUF_CACHE, NEIGHBOUR_INBOX, REDIRECT_INBOX};
use dataplane::health::Health;
use dataplane::io::{Idle, WorkerLoop};
use dataplane::kernel::{KernelLoop, KernelRings};
use dataplane::ports::{start_ports, FlowSteering, PortStatsReader};
use gw_core::counters::WorkerCounters;
use gw_core::engine::Engine;
use gw_core::mailbox::mailbox;
use gw_core::neigh::StaticNeighbours;
use gw_core::route::{Route, Route6, Routes};
use gw_core::service::{Publisher, Snapshot};
use gw_core::steer::Redirect;
use gw_core::synproxy::shed::Shed;
use gw_core::worker::Worker;
use gw_dpdk::{self as dpdk, Eal, Mempool};
use gw_proto::Response;

// `--check` holds `workers.cores` to the lcores this DPDK can have.
const _: () = assert!(dataplane::limits::MAX_LCORE == dpdk::sys::RTE_MAX_LCORE);

/// Large allocations (the session tables) on hugepages: see [`gw_dpdk::huge`].
#[global_allocator]
static ALLOC: dpdk::huge::HugeAlloc = dpdk::huge::HugeAlloc;

/// gatewayd: a DPDK layer-4 load balancer driven by gwctl (ipvsadm syntax).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The TOML configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// A rules file (`gwctl -S` output) to apply at start; overrides
    /// `[control] rules`.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// A keepalived.conf whose virtual servers to apply at start (after the
    /// rules file) and re-read on SIGHUP; overrides `[control] keepalived`.
    #[arg(long)]
    keepalived: Option<PathBuf>,
    /// Only validate the configuration (and the rules and keepalived files) and exit.
    #[arg(long)]
    check: bool,
}

/// SIGHUP: re-reads the `[[service]]` sections, the rules file and the
/// keepalived file and makes the running configuration equal to them. Any
/// error (unreadable or invalid file, refused request) is logged and the
/// running configuration is kept. Edits to the other sections of the file
/// (`running`: as gatewayd started) are named in a warning: they take
/// effect at the next start.
fn reload(
    control: &Control,
    health: &Arc<Health>,
    (config, running): (&Path, &toml::Table),
    rules: Option<&Path>,
    keepalived: Option<&Path>,
) {
    match dataplane::keepalived::reload(control, health, config, rules, keepalived) {
        Ok((Response::Error { kind, message }, _)) => {
            tracing::error!(error = %message, kind = kind.ipvsadm_text(), "reload refused; the running configuration is kept")
        }
        Ok((_, now)) => match dataplane::config::restart_changes(&now, running) {
            changed if changed.is_empty() => tracing::info!("reloaded"),
            changed => tracing::warn!(
                sections = %changed.join(", "),
                "reloaded [[service]], [timeouts], the rules and keepalived files; the changed sections take effect at the next start"
            ),
        },
        Err(e) => tracing::error!(error = %e, "reload failed; the running configuration is kept"),
    }
}

/// The control plane of `cfg`'s limits over `counters`, publishing from
/// an empty snapshot with `cfg`'s timeouts, and its publisher: the
/// start's, and `--check`'s without workers.
fn control_plane(
    cfg: &Config,
    counters: Vec<Arc<WorkerCounters>>,
    table_size: u64,
) -> (Arc<Publisher>, Control) {
    let (max_services, max_dests) = (cfg.workers.max_services, cfg.workers.max_dests);
    let first = Snapshot::new(0, vec![], max_dests).with_timeouts(cfg.timeouts);
    let publisher = Arc::new(Publisher::new(Arc::new(first)));
    let control = Control::new(publisher.clone(), counters, table_size, max_services, max_dests)
        .with_locality_services(cfg.locality_services(dataplane::limits::mem_total()));
    (publisher, control)
}

/// The `[[service]]` sections, then the rules file (`rules`, read from
/// `rules_path`), through `control`: the start's first requests, and
/// `--check`'s on a scratch control plane.
fn apply_rules(
    control: &Control,
    cfg: &Config,
    rules_path: Option<&Path>,
    rules: Option<Vec<gw_proto::Request>>,
) -> Result<()> {
    for r in cfg.service_rules()? {
        if let Response::Error { kind, message } = control.handle(r.request) {
            let (section, line) = (r.section, r.line);
            bail!("service[{section}].rules: line {line}: refused: {} ({message})", kind.ipvsadm_text());
        }
    }
    if let (Some(path), Some(requests)) = (rules_path, rules) {
        let n = requests.len();
        if let Response::Error { message, .. } = control.handle(gw_proto::Request::Restore { requests }) {
            bail!("rules file {}: {message}", path.display());
        }
        tracing::info!(rules = n, file = %path.display(), "rules applied");
    }
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("gatewayd: {e:#}");
        std::process::exit(2);
    }
}

fn run(args: Args) -> Result<()> {
    // One read of the file: what starts, and what a reload cannot apply
    // (for its warning).
    let (cfg, text) = Config::load_with_text(&args.config)?;
    let running = dataplane::config::restart_sections(&text);
    // What the start would refuse on this machine (socket directory and
    // path, group, metrics address), before anything is read or started;
    // `--check` says it as a warning: the machine's state may change before
    // the start (a RuntimeDirectory, a group made by the package), the
    // file stays valid.
    match cfg.check_host() {
        Err(e) if args.check => {
            eprintln!("gatewayd: warning: {e} (the start would refuse it on this host now)")
        }
        r => r?,
    }
    if let Some(w) = cfg.memory_warning(dataplane::limits::mem_total()) {
        if args.check {
            eprintln!("gatewayd: warning: workers: {w}")
        } else {
            tracing::warn!("workers: {w}")
        }
    }
    let rules_path = args.rules.clone().or(cfg.control.rules.clone());
    let rules = rules_path.as_deref().map(load_rules).transpose()?;
    let keepalived_path = args.keepalived.clone().or(cfg.control.keepalived.clone());
    let keepalived = match &keepalived_path {
        Some(path) => {
            let loaded = dataplane::keepalived::load(path)?;
            let mut others = cfg.service_requests()?;
            others.extend(rules.iter().flatten().cloned());
            dataplane::keepalived::check_overlap(&others, path, &loaded)?;
            // Reported once, at start: what is skipped or defaulted.
            for n in &loaded.notices {
                tracing::warn!("keepalived: {n}");
            }
            Some(loaded)
        }
        None => None,
    };
    if args.check {
        // What the start applies, on a control plane of the same limits
        // without workers: a file --check passes is one the start loads.
        let (_, scratch) = control_plane(&cfg, vec![], 0);
        let scratch = scratch.with_port_addrs(cfg.neigh_ports(&cfg.port_confs()?, |i| i as u16));
        apply_rules(&scratch, &cfg, rules_path.as_deref(), rules)?;
        if let (Some(path), Some(k)) = (&keepalived_path, &keepalived) {
            if let Response::Error { message, .. } =
                scratch.handle(gw_proto::Request::Restore { requests: k.requests() })
            {
                bail!("keepalived file {}: {message}", path.display());
            }
        }
        println!("{}: ok", args.config.display());
        if let (Some(path), Some(k)) = (&keepalived_path, &keepalived) {
            println!("{}: ok ({} services, {} notices)", path.display(), k.services.len(), k.notices.len());
        }
        return Ok(());
    }
    // Before EAL and the ports: a path that is not ours refuses the start at once.
    control::clear_socket_path(&cfg.control.socket)
        .with_context(|| format!("control.socket: {}", cfg.control.socket.display()))?;
    let port_confs = cfg.port_confs()?;
    let statics = cfg.static_routes(&port_confs)?;
    let statics6 = cfg.static_routes6(&port_confs)?;
    let stop_signal = dpdk::stop_on_signals().context("installing signal handlers")?;
    let reload_signal = dpdk::reload_on_sighup().context("installing the SIGHUP handler")?;

    let mut eal_args = cfg.eal.args.clone();
    for p in &port_confs {
        eal_args.extend(p.eal_device().0);
    }
    // The kernel interfaces after every port, so the ports keep their ids.
    for (i, p) in port_confs.iter().enumerate() {
        if let Some(name) = &p.kernel {
            eal_args.push(dataplane::kernel::tap_vdev(i, name).0);
        }
    }
    let eal = Eal::init(&eal_args).context("EAL initialisation")?;
    let available = eal.worker_lcores();
    let lcores = if cfg.workers.cores.is_empty() { available.clone() } else { cfg.workers.cores.clone() };
    if lcores.is_empty() {
        bail!("workers.cores: no worker lcore (give EAL at least two lcores, e.g. -l 0,1)");
    }
    if let Some(c) = lcores.iter().find(|c| !available.contains(c)) {
        bail!("workers.cores: lcore {c} is not a worker lcore enabled in EAL ({available:?})");
    }
    // The local ports split between the workers EAL gave (--check could
    // only count `workers.cores`).
    cfg.check_local_ports(lcores.len())?;
    let nworkers = lcores.len() as u16;
    let socket = eal.socket_id();
    let pool = Arc::new(
        Mempool::new("gw_mbufs", cfg.workers.mbufs, MBUF_CACHE, mbuf_data_room(&cfg), socket)
            .context("workers.mbufs: creating the mbuf pool")?,
    );

    let (ports, ifaces) = start_ports(&port_confs, nworkers, &pool, socket)?;
    let statics: Vec<Route> =
        statics.iter().map(|r| Route { port: ports[r.port as usize].id(), ..*r }).collect();
    let statics6: Vec<Route6> =
        statics6.iter().map(|r| Route6 { port: ports[r.port as usize].id(), ..*r }).collect();
    let routes = Routes::dual(&ifaces, &statics, &statics6);
    // The exception path: a kernel interface per port that asks for one.
    let static_neighbours = cfg.static_neighbours(&port_confs)?;
    let taps = dataplane::kernel::start_taps(
        &port_confs,
        &ports,
        &ifaces,
        &statics,
        &statics6,
        &static_neighbours,
        &pool,
        socket,
    )?;
    let kernel_ports: Vec<u16> = taps.iter().map(|t| t.port.id()).collect();
    let kernel_rings = (!taps.is_empty()).then(|| KernelRings::new(lcores.len()));

    let max_services = cfg.workers.max_services;
    let max_dests = cfg.workers.max_dests;
    let counters: Vec<Arc<WorkerCounters>> = lcores
        .iter()
        .enumerate()
        .map(|(i, l)| Arc::new(WorkerCounters::new(i as u32, *l, max_services, max_dests)))
        .collect();
    let table_size = cfg.conn_table_size(lcores.len());
    let (control_boxes, mut worker_boxes): (Vec<_>, Vec<_>) = lcores.iter().map(|_| mailbox()).unzip();
    let flows = Arc::new(FlowSteering::new(ports.clone(), nworkers));
    let port_stats = PortStatsReader::new(&port_confs, &ports, nworkers).with_taps(&taps);
    let static_neigh = Arc::new(StaticNeighbours::new(vec![]));
    let static_neigh6 = Arc::new(StaticNeighbours::new(vec![]));
    let neigh_ports = cfg.neigh_ports(&port_confs, |i| ports[i].id());
    let (publisher, control) = control_plane(&cfg, counters.clone(), table_size);
    let control = Arc::new(
        control
            .with_mailboxes(control_boxes)
            .with_port_stats(move || port_stats.read())
            .with_static_neighbours(
                (static_neigh.clone(), static_neigh6.clone()),
                neigh_ports,
                static_neighbours,
            )
            .with_backend_labels(cfg.metrics.backend_labels()?)
            .with_laddr_hook({
                let flows = flows.clone();
                move |laddrs| flows.reconcile(laddrs)
            }),
    );
    apply_rules(&control, &cfg, rules_path.as_deref(), rules)?;
    // Health checks run in the control plane, one thread per checker; they
    // start once the file's services are applied (servers with `alpha`
    // start out of the pool).
    let health = Health::new(control.clone());
    if let (Some(path), Some(loaded)) = (&keepalived_path, keepalived) {
        let services = loaded.services.len();
        let r =
            health.apply(vec![], &loaded, |requests| control.handle(gw_proto::Request::Restore { requests }));
        if let Response::Error { message, .. } = r {
            bail!("keepalived file {}: {message}", path.display());
        }
        let checkers: usize =
            loaded.conf.virtual_servers.iter().flat_map(|v| &v.real_servers).map(|r| r.checkers.len()).sum();
        tracing::info!(services, checkers, file = %path.display(), "keepalived virtual servers applied, health checks running");
    }
    let group = match &cfg.control.group {
        Some(name) => Some(control::group_id(name).with_context(|| format!("control.group: {name}"))?),
        None => None,
    };
    if let Some(addr) = cfg.metrics.listen_addr()? {
        let bound = dataplane::metrics::serve(control.clone(), addr)
            .with_context(|| format!("metrics.listen: {addr}"))?;
        tracing::info!(%bound, "serving /metrics");
    }
    let socket_path = control::serve_with_group(control.clone(), &cfg.control.socket, group)
        .with_context(|| format!("control.socket: {}", cfg.control.socket.display()))?;

    let stop = Arc::new(AtomicBool::new(false));
    let now_ms = dpdk::tsc() / (dpdk::tsc_hz().max(1000) / 1000);
    let seed = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), now_ms);
    let idle = Idle {
        policy: cfg.workers.idle,
        polls: cfg.workers.idle_polls,
        sleep: Duration::from_micros(cfg.workers.idle_sleep_us),
    };
    let neigh = cfg.neigh_config();
    // Hand-off between workers: an inbox of packets and one of learnt
    // neighbours per worker (see gw_core::steer).
    let redirect = Redirect::new(lcores.len(), REDIRECT_INBOX);
    let neighbours = Redirect::new(lcores.len(), NEIGHBOUR_INBOX);
    for (i, lcore) in lcores.iter().enumerate() {
        let mut ecfg = cfg.engine_config(i as u32, u32::from(nworkers), &ifaces, &routes, seed);
        ecfg.kernel = kernel_ports.clone();
        let mut engine = Engine::new(ecfg, publisher.current(), counters[i].clone(), now_ms);
        engine.set_prefetch(gw_core::session::Prefetch(gw_dpdk::prefetch_addr));
        let worker = WorkerLoop {
            worker: Worker::new(engine, neigh)
                .with_static_neighbours(static_neigh.clone())
                .with_static_neighbours6(static_neigh6.clone()),
            ports: ports.clone(),
            queue: i as u16,
            pool: pool.clone(),
            publisher: publisher.clone(),
            stop: stop.clone(),
            idle,
            mailbox: worker_boxes.remove(0),
            me: i as u32,
            redirect: redirect.clone(),
            neighbours: neighbours.clone(),
            kernel: kernel_rings.clone(),
            shed: ports.iter().map(|_| Shed::new(cfg.workers.overload_syn_rate)).collect(),
            syn_rate: cfg.workers.overload_syn_rate,
            record_bursts: cfg.workers.record_burst_cycles,
        };
        eal.launch(*lcore, move || worker.run())
            .with_context(|| format!("launching worker on lcore {lcore}"))?;
    }
    let kernel_thread = match &kernel_rings {
        Some(rings) => {
            let k = KernelLoop { taps: taps.clone(), rings: rings.clone(), stop: stop.clone() };
            Some(std::thread::Builder::new().name("gw-kernel".into()).spawn(move || k.run())?)
        }
        None => None,
    };
    // The session tables were just allocated (see gw_dpdk::huge).
    let (huge, fallback) = (dpdk::huge::hugetlb_allocations(), dpdk::huge::fallbacks());
    if fallback > 0 {
        tracing::warn!(
            hugetlb = huge,
            fallback,
            "no free hugepages for some large tables (session tables): they use ordinary pages with a transparent-hugepage hint"
        );
    } else {
        tracing::info!(hugetlb = huge, "large tables (session tables) are on hugepages");
    }
    tracing::info!(
        workers = lcores.len(),
        ports = ports.len(),
        mbuf_size = cfg.mbuf_size(),
        socket = %socket_path.display(),
        "gatewayd running"
    );
    // systemd (Type=notify): ready once the ports are up, the services
    // applied, the socket open and the workers running.
    if let Err(e) = dataplane::sd_notify::notify("READY=1\nSTATUS=forwarding") {
        tracing::warn!(error = %e, "cannot notify systemd");
    }

    while !stop_signal.load(Ordering::Relaxed) {
        std::thread::sleep(CONTROL_TICK);
        control.tick(std::time::Instant::now());
        if reload_signal.swap(false, Ordering::Relaxed) {
            let config = (args.config.as_path(), &running);
            reload(&control, &health, config, rules_path.as_deref(), keepalived_path.as_deref());
        }
    }
    tracing::info!("stopping");
    health.stop();
    let _ = dataplane::sd_notify::notify("STOPPING=1");
    stop.store(true, Ordering::Relaxed);
    for lcore in &lcores {
        eal.wait(*lcore);
    }
    if let Some(t) = kernel_thread {
        let _ = t.join();
    }
    // Packets still in the inboxes go back to the pool while EAL is up.
    drop(redirect);
    drop(neighbours);
    drop(kernel_rings);
    for t in &taps {
        t.tap.stop();
    }
    for p in &ports {
        p.stop();
    }
    control::remove_socket(&socket_path);
    Ok(())
}

/// The mbuf pool's data room: [`Config::mbuf_size`] plus the headroom
/// (within 16 bits: `--check` refused larger sizes).
fn mbuf_data_room(cfg: &dataplane::config::Config) -> u16 {
    let room = cfg.mbuf_size() + dataplane::config::MBUF_HEADROOM;
    u16::try_from(room).unwrap_or(u16::MAX).max(dpdk::DEFAULT_DATA_ROOM)
}

//! gwctl: ipvsadm's command line for gatewayd.
//!
//! One run is: parse raw arguments ([`cli`]), resolve them to a validated
//! request or an ipvsadm-style usage error ([`resolve`]; `-R` also reads its
//! rules from stdin with [`rules`]), send the request over gatewayd's unix
//! socket ([`client`]), and render the response ([`render`]). Everything but the
//! socket is pure, and [`run_with_input`] takes its input and output streams, so
//! a whole run can be tested in-process.
//!
//! The grammar (`cli`, `resolve`, `rules`, `values`, `services`, `error`) lives
//! in the `gw-ipvsadm` crate, which gatewayd uses too to load rules files; it is
//! re-exported here under its old paths. This crate keeps the client, the
//! rendering and the run.

pub mod client;
pub mod neighbours;
pub mod render;

pub use gw_ipvsadm::{cli, error, resolve, rules, services, values};

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use gw_proto::{ErrorKind, Request, Response};

pub use gw_ipvsadm::{parse_rules, RulesError};

use crate::cli::Cli;
use crate::client::{Client, TIMEOUT};
use crate::error::{os_text, try_help, Failure};
use crate::resolve::{Command, Invocation, View};
use crate::services::PortNames;

/// A restore may carry a whole configuration (10,000 services and more), so
/// gatewayd gets this many times the usual timeout to apply it.
const RESTORE_TIMEOUT_FACTOR: u32 = 6;

/// Runs gwctl with `args` (program name first) on the process's stdin; returns
/// the exit status.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with_input(args, &mut io::stdin(), out, err, TIMEOUT)
}

/// [`run`] with another socket timeout (tests use a short one).
pub fn run_with_timeout<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, timeout: Duration) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with_input(args, &mut io::stdin(), out, err, timeout)
}

/// [`run`] reading `-R`'s rules from `input` instead of stdin.
pub fn run_with_input<I, T>(
    args: I,
    input: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
    timeout: Duration,
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match execute(args, input, timeout) {
        Ok(text) => {
            // A closed pipe (`gwctl -L | head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            0
        }
        Err(f) => {
            let _ = writeln!(err, "{}", f.ipvsadm_text());
            f.exit_code()
        }
    }
}

fn execute<I, T>(args: I, input: &mut dyn Read, timeout: Duration) -> Result<String, Failure>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<String> = args.into_iter().map(|a| a.into().to_string_lossy().into_owned()).collect();
    let program = argv.first().map_or("gwctl", String::as_str);
    // The words as ipvsadm sees them: gwctl's own --socket is not one.
    let mut words = Vec::new();
    let mut rest = argv.iter().skip(1);
    while let Some(w) = rest.next() {
        match w.as_str() {
            "--socket" => drop(rest.next()),
            w if w.starts_with("--socket=") => {}
            w => words.push(w),
        }
    }
    // ipvsadm honours -h and -v only as the first option; popt reads a
    // cluster (`-hL`) from its first letter.
    match words.first().copied() {
        Some(w) if w == "--help" || w.starts_with("-h") => return Ok(gw_ipvsadm::usage::usage(program)),
        Some(w) if w == "--version" || w.starts_with("-v") => {
            return Ok(gw_ipvsadm::usage::VERSION.to_owned())
        }
        _ => {}
    }
    // The static-neighbour extension, outside ipvsadm's grammar.
    if let Some(parsed) = neighbours::parse(&words) {
        let (request, json) = parsed?;
        let mut socket_args = vec![program.to_owned()];
        let mut it = argv.iter().skip(1);
        while let Some(w) = it.next() {
            if w == "--socket" {
                socket_args.extend([w.clone(), it.next().cloned().unwrap_or_default()]);
            } else if w.starts_with("--socket=") {
                socket_args.push(w.clone());
            }
        }
        let socket = Cli::try_parse_from(&socket_args).map_err(|_| try_help(program))?.socket;
        let mut client = Client::connect(&socket, timeout).map_err(|e| Failure::Unreachable {
            socket: socket.display().to_string(),
            reason: os_text(&e),
        })?;
        let resp = client.call(&request).map_err(|e| Failure::ChangeFailed(e.to_string()))?;
        return neighbours::render(resp, json);
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            return Err(match cli::popt_message(&e, &words) {
                Some(m) => Failure::BadOption(m),
                None => try_help(program),
            });
        }
    };
    if cli.is_bare() && !words.is_empty() {
        // Only `--`, which clap takes: popt stops there, with no command.
        return Err(try_help(program));
    }
    let names = PortNames::system();
    let mut inv = resolve::resolve_with(&cli, &names).map_err(|f| match f {
        Failure::TryHelp => try_help(program),
        Failure::InvalidOption => cli::invalid_option(&words),
        f => f,
    })?;
    let mut timeout = timeout;
    if inv.command == Command::Restore {
        // Bytes, as ipvsadm's `fgets` reads them: a byte that is not UTF-8
        // (a Latin-1 comment) becomes U+FFFD, ignored in a comment and
        // refused where ipvsadm would refuse it too (a host name).
        let mut bytes = vec![];
        input
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::Usage(format!("cannot read the rules from stdin: {}", os_text(&e))))?;
        let text = String::from_utf8_lossy(&bytes);
        let rules = rules::parse_rule_lines_as(&text, &names, program).map_err(Failure::Rules)?;
        let (lines, requests) = rules.into_iter().map(|r| (r.line, r.request)).unzip();
        inv.lines = lines;
        inv.request = Request::Restore { requests };
        timeout = timeout.saturating_mul(RESTORE_TIMEOUT_FACTOR);
    }
    let resp = exchange(&cli.socket, &inv, timeout)?;
    present_with(&inv, resp, &names)
}

/// Sends the invocation's request to the socket at `socket` and returns the answer.
pub fn exchange(socket: &Path, inv: &Invocation, timeout: Duration) -> Result<Response, Failure> {
    let mut client = Client::connect(socket, timeout)
        .map_err(|e| Failure::Unreachable { socket: socket.display().to_string(), reason: os_text(&e) })?;
    client.call(&inv.request).map_err(|e| failed(inv.command, e.to_string()))
}

/// Turns gatewayd's answer into the text to print, or the failure to report,
/// with numeric addresses and ports.
pub fn present(inv: &Invocation, resp: Response) -> Result<String, Failure> {
    present_with(&Invocation { numeric: true, ..inv.clone() }, resp, &PortNames::builtin())
}

/// [`present`], naming hosts and ports from `names` unless the invocation is numeric.
pub fn present_with(inv: &Invocation, mut resp: Response, names: &PortNames) -> Result<String, Failure> {
    if let Response::Error { kind, message } = &resp {
        let text = match &inv.request {
            Request::Restore { requests } => render::restore_error_text(requests, &inv.lines, *kind, message),
            req => render::error_text(req, *kind, message),
        };
        return Err(failed(inv.command, text));
    }
    let expected = matches!(
        (inv.view, &resp),
        (View::Done, Response::Ok)
            | (View::List { .. } | View::Save, Response::Services { .. })
            | (View::Conns { .. }, Response::Conns { .. })
            | (View::Timeouts | View::Daemon, Response::Timeouts { .. })
            | (View::Laddrs, Response::Laddrs { .. })
            | (View::Counters, Response::Counters { .. })
    );
    if !expected {
        let msg = format!("unexpected answer from gatewayd: {}", answer_name(&resp));
        return Err(failed(inv.command, msg));
    }
    let one_service = matches!(inv.request, Request::List { service: Some(_) });
    if let Response::Services { services, .. } = &resp {
        if one_service && services.is_empty() {
            // ipvsadm's list_service: the lookup of that one service failed.
            return Err(failed(inv.command, ErrorKind::NoService.ipvsadm_text().to_owned()));
        }
    }
    let sort = match inv.view {
        View::List { sort, .. } | View::Conns { sort, .. } => sort,
        _ => true,
    };
    if sort {
        render::sort(&mut resp);
    }
    if inv.json && !matches!(inv.view, View::Done | View::Daemon) {
        return Ok(render::json(&resp));
    }
    let shown = if inv.numeric { render::Names::numeric() } else { render::Names::resolving(names) };
    let mut out = String::new();
    match (inv.view, &resp) {
        (View::List { format, exact, .. }, Response::Services { conn_table_size, services }) => {
            let header = (!one_service).then_some(*conn_table_size);
            if inv.health {
                render::list_health(&mut out, header, services, format, exact, &shown);
            } else {
                render::list_with(&mut out, header, services, format, exact, &shown);
            }
        }
        (View::Save, Response::Services { services, .. }) => render::save_with(&mut out, services, &shown),
        (View::Conns { persistent, .. }, Response::Conns { conns }) => {
            render::conns_with(&mut out, conns, persistent, &shown)
        }
        (View::Timeouts, Response::Timeouts { timeouts }) => out = render::timeouts(timeouts),
        (View::Laddrs, Response::Laddrs { entries }) => out = render::laddrs(entries),
        (View::Counters, Response::Counters { workers, ports }) => out = render::counters(workers, ports),
        _ => {}
    }
    Ok(out)
}

fn answer_name(resp: &Response) -> &'static str {
    match resp {
        Response::Ok => "ok",
        Response::Error { .. } => "error",
        Response::Services { .. } => "services",
        Response::Laddrs { .. } => "laddrs",
        Response::Counters { .. } => "counters",
        Response::Timeouts { .. } => "timeouts",
        Response::Conns { .. } => "conns",
        Response::Neighbours { .. } => "neighbours",
    }
}

fn failed(cmd: Command, msg: String) -> Failure {
    if cmd.is_query() {
        Failure::QueryFailed(msg)
    } else {
        Failure::ChangeFailed(msg)
    }
}

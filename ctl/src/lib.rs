//! gwctl: ipvsadm's command line for gatewayd.
//!
//! One run is: parse raw arguments ([`cli`]), resolve them to a validated
//! request or an ipvsadm-style usage error ([`resolve`]), send the request over
//! gatewayd's unix socket ([`client`]), and render the response ([`render`]).
//! Everything but the socket is pure, and [`run`] takes its output streams, so a
//! whole run can be tested in-process.

pub mod cli;
pub mod client;
pub mod error;
pub mod render;
pub mod resolve;
pub mod services;

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use gw_proto::{ErrorKind, Request, Response};

use crate::cli::Cli;
use crate::client::{Client, TIMEOUT};
use crate::error::{os_text, Failure};
use crate::resolve::{Command, Invocation, View};

/// Runs gwctl with `args` (program name first); returns the exit status.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with_timeout(args, out, err, TIMEOUT)
}

/// [`run`] with another socket timeout (tests use a short one).
pub fn run_with_timeout<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, timeout: Duration) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match execute(args, timeout) {
        Ok(text) => {
            // A closed pipe (`gwctl -L | head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            0
        }
        Err(f) => {
            let _ = writeln!(err, "{f}");
            f.exit_code()
        }
    }
}

fn execute<I, T>(args: I, timeout: Duration) -> Result<String, Failure>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let text = e.render().to_string();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Ok(text),
                // Like popt's one-line complaint: clap's first line, then "Try ...".
                _ => {
                    let first = text.lines().next().unwrap_or("error: bad command line");
                    Err(Failure::BadOption(format!("{first}\n{}", Failure::TryHelp)))
                }
            };
        }
    };
    let inv = resolve::resolve(&cli)?;
    let resp = exchange(&cli.socket, &inv, timeout)?;
    present(&inv, resp)
}

/// Sends the invocation's request to the socket at `socket` and returns the answer.
pub fn exchange(socket: &Path, inv: &Invocation, timeout: Duration) -> Result<Response, Failure> {
    let mut client = Client::connect(socket, timeout)
        .map_err(|e| Failure::Unreachable { socket: socket.display().to_string(), reason: os_text(&e) })?;
    client.call(&inv.request).map_err(|e| failed(inv.command, e.to_string()))
}

/// Turns gatewayd's answer into the text to print, or the failure to report.
pub fn present(inv: &Invocation, mut resp: Response) -> Result<String, Failure> {
    if let Response::Error { kind, message } = &resp {
        return Err(failed(inv.command, render::error_text(&inv.request, *kind, message)));
    }
    let expected = matches!(
        (inv.view, &resp),
        (View::Done, Response::Ok)
            | (View::List { .. }, Response::Services { .. })
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
    render::sort(&mut resp);
    if inv.json && inv.view != View::Done {
        return Ok(render::json(&resp));
    }
    Ok(match (inv.view, &resp) {
        (View::List { stats, exact }, Response::Services { conn_table_size, services }) => {
            let header = (!one_service).then_some(*conn_table_size);
            render::list(header, services, stats, exact)
        }
        (View::Laddrs, Response::Laddrs { entries }) => render::laddrs(entries),
        (View::Counters, Response::Counters { workers }) => render::counters(workers),
        _ => String::new(),
    })
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
    }
}

fn failed(cmd: Command, msg: String) -> Failure {
    if cmd.is_query() {
        Failure::QueryFailed(msg)
    } else {
        Failure::ChangeFailed(msg)
    }
}

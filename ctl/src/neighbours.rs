//! gwctl's static-neighbour extension (not in ipvsadm):
//!
//! ```text
//! gwctl --add-neighbour ADDRESS --mac MAC --port PORT
//! gwctl --del-neighbour ADDRESS --port PORT
//! gwctl --list-neighbours [--json]
//! ```
//!
//! A static neighbour's MAC is used for that next hop on that port (a
//! `[[port]] name`), never evicted and never changed by ARP or neighbour
//! discovery; ADDRESS is IPv4, or IPv6 on a dual-stack port. Parsed here,
//! before ipvsadm's grammar sees the line.

use std::net::IpAddr;

use gw_proto::{NeighbourRequest, Request, Response, StaticNeighbour};

use crate::error::Failure;

/// The three commands.
pub const COMMANDS: [&str; 3] = ["--add-neighbour", "--del-neighbour", "--list-neighbours"];

/// The request of a neighbour command line (`words`: the arguments without
/// the program and `--socket`), whether `--json` was given; `None` when the
/// line is not a neighbour command.
pub fn parse(words: &[&str]) -> Option<Result<(Request, bool), Failure>> {
    let first = *words.first()?;
    if !COMMANDS.contains(&first) {
        return None;
    }
    Some(parse_command(first, &words[1..]))
}

fn usage(msg: impl std::fmt::Display) -> Failure {
    Failure::Usage(format!(
        "{msg}\nUsage: gwctl --add-neighbour ADDRESS --mac MAC --port PORT\n       \
         gwctl --del-neighbour ADDRESS --port PORT\n       gwctl --list-neighbours [--json]"
    ))
}

fn parse_command(cmd: &str, rest: &[&str]) -> Result<(Request, bool), Failure> {
    let (mut addr, mut mac, mut port, mut json) = (None, None, None, false);
    let mut it = rest.iter();
    while let Some(&w) = it.next() {
        let mut value = |name: &str| it.next().copied().ok_or_else(|| usage(format!("{name} needs a value")));
        match w {
            "--mac" => mac = Some(value("--mac")?),
            "--port" => port = Some(value("--port")?),
            "--json" => json = true,
            w if !w.starts_with('-') && addr.is_none() => addr = Some(w),
            w => return Err(usage(format!("unexpected argument {w:?}"))),
        }
    }
    let address = |a: Option<&str>| -> Result<IpAddr, Failure> {
        let a = a.ok_or_else(|| usage(format!("{cmd} needs an ADDRESS")))?;
        a.parse().map_err(|_| usage(format!("{a:?} is not an IPv4 or IPv6 address")))
    };
    let port_name =
        |p: Option<&str>| p.map(str::to_owned).ok_or_else(|| usage(format!("{cmd} needs --port")));
    let req = match cmd {
        "--add-neighbour" => {
            let m = mac.ok_or_else(|| usage("--add-neighbour needs --mac"))?;
            let mac = parse_mac(m)
                .ok_or_else(|| usage(format!("{m:?} is not a MAC address (02:00:00:00:00:01)")))?;
            NeighbourRequest::Add(StaticNeighbour { addr: address(addr)?, mac, port: port_name(port)? })
        }
        "--del-neighbour" if mac.is_none() => {
            NeighbourRequest::Del { addr: address(addr)?, port: port_name(port)? }
        }
        "--list-neighbours" if addr.is_none() && mac.is_none() && port.is_none() => NeighbourRequest::List,
        _ => return Err(usage(format!("{cmd}: unexpected argument"))),
    };
    Ok((Request::Neighbour(req), json))
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The MAC as `gwctl --list-neighbours` prints it.
pub fn mac_text(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The text for gatewayd's answer.
pub fn render(resp: Response, json: bool) -> Result<String, Failure> {
    match resp {
        Response::Error { message, .. } => Err(Failure::ChangeFailed(message)),
        Response::Neighbours { mut entries } => {
            entries.sort_by(|a, b| (&a.port, a.addr).cmp(&(&b.port, b.addr)));
            if json {
                return Ok(crate::render::json(&Response::Neighbours { entries }));
            }
            let mut out = format!("{:<16} {:<18} {}\n", "Address", "HWaddress", "Port");
            for e in &entries {
                out.push_str(&format!("{:<16} {:<18} {}\n", e.addr, mac_text(&e.mac), e.port));
            }
            Ok(out)
        }
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn req(words: &[&str]) -> Result<Request, String> {
        match parse(words).expect("a neighbour command") {
            Ok((r, _)) => Ok(r),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn the_three_commands_parse_and_bad_lines_are_refused_with_usage() {
        let n = StaticNeighbour {
            addr: Ipv4Addr::new(198, 18, 1, 50).into(),
            mac: [2, 0, 0, 0, 0, 0x32],
            port: "inside".into(),
        };
        assert_eq!(
            req(&["--add-neighbour", "198.18.1.50", "--mac", "02:00:00:00:00:32", "--port", "inside"]),
            Ok(Request::Neighbour(NeighbourRequest::Add(n.clone())))
        );
        assert_eq!(
            req(&["--add-neighbour", "--port", "inside", "--mac", "2-0-0-0-0-32", "198.18.1.50"]),
            Ok(Request::Neighbour(NeighbourRequest::Add(n)))
        );
        assert_eq!(
            req(&["--del-neighbour", "198.18.1.50", "--port", "inside"]),
            Ok(Request::Neighbour(NeighbourRequest::Del {
                addr: Ipv4Addr::new(198, 18, 1, 50).into(),
                port: "inside".into()
            }))
        );
        assert_eq!(req(&["--list-neighbours"]), Ok(Request::Neighbour(NeighbourRequest::List)));
        assert!(matches!(parse(&["--list-neighbours", "--json"]), Some(Ok((_, true)))));
        for (bad, why) in [
            (&["--add-neighbour", "198.18.1.50", "--port", "inside"][..], "needs --mac"),
            (&["--add-neighbour", "198.18.1.50", "--mac", "02:00:00:00:00", "--port", "x"], "not a MAC"),
            (
                &["--add-neighbour", "198.18.1.500", "--mac", "02:00:00:00:00:01", "--port", "x"],
                "not an IPv4 or IPv6",
            ),
            (&["--del-neighbour", "198.18.1.50"], "needs --port"),
            (&["--del-neighbour", "198.18.1.50", "--port"], "--port needs a value"),
            (&["--list-neighbours", "198.18.1.50"], "unexpected argument"),
            (&["--add-neighbour", "1.2.3.4", "5.6.7.8"], "unexpected argument"),
        ] {
            let e = req(bad).unwrap_err();
            assert!(e.contains(why) && e.contains("Usage: gwctl --add-neighbour"), "{bad:?}: {e}");
        }
        assert!(parse(&["-L", "-n"]).is_none());
        // IPv6, for a dual-stack port.
        let v6 = StaticNeighbour {
            addr: "2001:db8::fe".parse().unwrap(),
            mac: [2, 0, 0, 0, 0, 0xfe],
            port: "outside".into(),
        };
        assert_eq!(
            req(&["--add-neighbour", "2001:db8::fe", "--mac", "02:00:00:00:00:fe", "--port", "outside"]),
            Ok(Request::Neighbour(NeighbourRequest::Add(v6)))
        );
    }

    #[test]
    fn the_listing_is_a_table_sorted_by_port_and_address() {
        let e = |a: u8, port: &str| StaticNeighbour {
            addr: Ipv4Addr::new(198, 18, 1, a).into(),
            mac: [2, 0, 0, 0, 0, a],
            port: port.into(),
        };
        let out = render(
            Response::Neighbours { entries: vec![e(9, "outside"), e(7, "inside"), e(3, "outside")] },
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            "Address          HWaddress          Port\n\
             198.18.1.7       02:00:00:00:00:07  inside\n\
             198.18.1.3       02:00:00:00:00:03  outside\n\
             198.18.1.9       02:00:00:00:00:09  outside\n"
        );
    }
}

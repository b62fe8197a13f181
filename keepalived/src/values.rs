//! Values of keepalived keywords: numbers, timers, booleans, addresses, and
//! the helpers that check a statement's shape (a parameter present, a block
//! present or absent), with keepalived's wording where it has one.

use std::net::IpAddr;
use std::time::Duration;

use crate::tree::Node;
use crate::Error;

/// The `i`th word of `n` (the keyword is word 0), or keepalived's
/// missing-parameter message.
pub fn word(n: &Node, i: usize) -> Result<&str, Error> {
    n.words.get(i).map(String::as_str).ok_or_else(|| {
        n.at.error(format!(
            "Configuration line starting `{}` is missing a parameter after keyword `{}` at word position {}",
            n.words[0],
            n.words[i - 1],
            i + 1
        ))
    })
}

/// Checks that `n` has no block and at most `max` parameters.
pub fn leaf(n: &Node, max: usize) -> Result<(), Error> {
    if n.block.is_some() {
        return Err(n.at.error(format!("'{}' takes no '{{' block", n.keyword())));
    }
    if n.words.len() > max + 1 {
        return Err(n.at.error(format!("'{}': unexpected '{}'", n.keyword(), n.words[max + 1])));
    }
    Ok(())
}

/// Checks that `n` has no block (any number of parameters).
pub fn no_block(n: &Node) -> Result<(), Error> {
    match n.block {
        Some(_) => Err(n.at.error(format!("'{}' takes no '{{' block", n.keyword()))),
        None => Ok(()),
    }
}

/// The block of `n`, or keepalived's message for a block keyword without one.
pub fn block(n: &Node) -> Result<&[Node], Error> {
    n.block.as_deref().ok_or_else(|| n.at.error("Missing '{' at beginning of configuration block"))
}

/// An unsigned decimal in `min..=max`.
pub fn number(s: &str, min: u64, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| (min..=max).contains(v))
}

/// Parameter `i` of `n` as a number in `min..=max`, or `what` in the error.
pub fn number_at(n: &Node, i: usize, min: u64, max: u64, what: &str) -> Result<u64, Error> {
    let s = word(n, i)?;
    number(s, min, max)
        .ok_or_else(|| n.at.error(format!("{what} '{s}' invalid: not a number in [{min}, {max}]")))
}

/// The most a timer may say (keepalived's `TIMER_MAXIMUM` is far longer;
/// a day is more than any check interval needs and keeps `Instant` sums safe).
pub const TIMER_MAX: Duration = Duration::from_secs(86400);

/// keepalived's `read_timer`: seconds with up to six decimals (`1.5`).
pub fn timer(n: &Node, i: usize, min: Duration) -> Result<Duration, Error> {
    let s = word(n, i)?;
    let bad = || n.at.error(format!("{} '{s}' invalid", n.keyword()));
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs = if int.is_empty() { 0 } else { number(int, 0, TIMER_MAX.as_secs()).ok_or_else(bad)? };
    let micros = if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse::<u64>().map_err(|_| bad())? };
    let d = Duration::from_secs(secs) + Duration::from_micros(micros);
    if d < min || d > TIMER_MAX {
        return Err(n.at.error(format!(
            "{} '{s}' invalid: not in [{:?}, {:?}]",
            n.keyword(),
            min,
            TIMER_MAX
        )));
    }
    Ok(d)
}

/// keepalived's optional boolean after a flag keyword: absent = true, else
/// `true|on|yes` or `false|off|no`.
pub fn flag(n: &Node) -> Result<bool, Error> {
    leaf(n, 1)?;
    match n.words.get(1).map(String::as_str) {
        None | Some("true" | "on" | "yes") => Ok(true),
        Some("false" | "off" | "no") => Ok(false),
        Some(s) => Err(n.at.error(format!("Invalid {} parameter {s}", n.keyword()))),
    }
}

/// An IPv4 or IPv6 address (`2001:db8::1`, without brackets, as keepalived
/// writes them).
pub fn ip(n: &Node, s: &str, what: &str) -> Result<IpAddr, Error> {
    s.parse::<IpAddr>().map_err(|_| n.at.error(format!("Invalid {what} ip address {s}")))
}

/// A port number (`0` and an absent port are the same to keepalived).
pub fn port(n: &Node, s: &str, what: &str) -> Result<u16, Error> {
    number(s, 0, 65535).map(|p| p as u16).ok_or_else(|| n.at.error(format!("Invalid {what} port {s}")))
}

/// keepalived's `read_hex_str` over the rest of `n`'s line
/// (`make_strvec_str`): bytes of one or two hex digits, blanks between
/// bytes optional (`0a0b`, `0a 0b`, `a b`); with `wildcard` (a required
/// reply), `x` stands for any nibble. The bytes and, with a wildcard, the
/// mask of the bits that need not match.
pub fn hex_line(n: &Node, wildcard: bool, what: &str) -> Result<(Vec<u8>, Option<Vec<u8>>), Error> {
    let bad = || n.at.error(format!("Invalid hex string for UDP_CHECK {what}"));
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some((c - b'0', 0)),
        b'a'..=b'f' | b'A'..=b'F' => Some(((c | 0x20) - b'a' + 10, 0)),
        b'x' | b'X' if wildcard => Some((0, 0x0f)),
        _ => None,
    };
    let line = n.words[1..].join(" ");
    let mut p = line.as_bytes();
    let (mut bytes, mut mask) = (vec![], vec![]);
    loop {
        while let [b' ' | b'\t', rest @ ..] = p {
            p = rest;
        }
        let [c, rest @ ..] = p else { break };
        let (mut v, mut m) = nibble(*c).ok_or_else(bad)?;
        p = rest;
        if let [c, rest @ ..] = p {
            if *c != b' ' {
                let (v2, m2) = nibble(*c).ok_or_else(bad)?;
                (v, m) = (v << 4 | v2, m << 4 | m2);
                p = rest;
            }
        }
        bytes.push(v);
        mask.push(m);
    }
    if bytes.is_empty() {
        return Err(bad());
    }
    Ok((bytes, mask.iter().any(|&m| m != 0).then_some(mask)))
}

/// keepalived's `set_uid_gid`: the uid and gid a script of `user` (and
/// `group`, else the user's own; a leading `:` asks keepalived for the
/// supplementary groups too, which gatewayd does not set) runs with, or
/// `None` when either does not exist.
pub fn run_as(user: &str, group: Option<&str>) -> Option<(u32, u32)> {
    use nix::unistd::{Group, User};
    let group = group.map(|g| g.strip_prefix(':').unwrap_or(g)).filter(|g| !g.is_empty());
    let u = User::from_name(user).ok()??;
    let gid = match group {
        Some(g) => Group::from_name(g).ok()??.gid,
        None => u.gid,
    };
    Some((u.uid.as_raw(), gid.as_raw()))
}

/// Splits a script's command line into words as keepalived's
/// `alloc_strvec_quoted_escaped` does: by blanks, single or double quotes
/// grouping (no shell).
pub fn split_command(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                any = true
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::reader::read_str;
    use crate::tree::build;

    fn node(text: &str) -> Node {
        build(read_str(Path::new("k"), text).unwrap()).unwrap().remove(0)
    }

    #[test]
    fn timers_take_decimal_seconds() {
        assert_eq!(timer(&node("t 6"), 1, Duration::ZERO).unwrap(), Duration::from_secs(6));
        assert_eq!(timer(&node("t 1.5"), 1, Duration::ZERO).unwrap(), Duration::from_millis(1500));
        assert_eq!(timer(&node("t .000001"), 1, Duration::ZERO).unwrap(), Duration::from_micros(1));
        for bad in ["t x", "t 1.2.3", "t -1", "t 1.0000001", "t 86401", "t ."] {
            assert!(timer(&node(bad), 1, Duration::ZERO).is_err(), "{bad}");
        }
        assert!(timer(&node("t 0"), 1, Duration::from_secs(1)).is_err());
        let e = timer(&node("t"), 1, Duration::ZERO).unwrap_err();
        assert_eq!(
            e.message,
            "Configuration line starting `t` is missing a parameter after keyword `t` at word position 2"
        );
    }

    #[test]
    fn flags_numbers_addresses_and_hex() {
        assert!(flag(&node("alpha")).unwrap());
        assert!(!flag(&node("alpha off")).unwrap());
        assert_eq!(flag(&node("alpha maybe")).unwrap_err().message, "Invalid alpha parameter maybe");
        assert_eq!(number("65535", 0, 65535), Some(65535));
        assert_eq!(number("65536", 0, 65535), None);
        assert_eq!(number("+1", 0, 9), None);
        let n = node("x");
        assert_eq!(
            ip(&n, "[2001:db8::1]", "real server").unwrap_err().message,
            "Invalid real server ip address [2001:db8::1]"
        );
        assert_eq!(ip(&n, "10.1.2.3", "real server").unwrap(), IpAddr::from([10, 1, 2, 3]));
        assert_eq!(ip(&n, "2001:db8::2", "real server").unwrap(), "2001:db8::2".parse::<IpAddr>().unwrap());
        let hex = |line: &str, wildcard| hex_line(&node(line), wildcard, "payload");
        assert_eq!(hex("payload 0aFF", false).unwrap(), (vec![0x0a, 0xff], None));
        assert_eq!(
            hex("payload 0a 0b c", false).unwrap(),
            (vec![0x0a, 0x0b, 0x0c], None),
            "keepalived's free format"
        );
        assert_eq!(hex("payload abc", false).unwrap(), (vec![0xab, 0x0c], None));
        assert_eq!(
            hex("r 4x x1", true).unwrap(),
            (vec![0x40, 0x01], Some(vec![0x0f, 0xf0])),
            "x: any nibble"
        );
        assert!(hex("payload 0x0a", false).is_err(), "no 0x prefix in keepalived");
        assert!(hex("payload 4x", false).is_err(), "no wildcard in a payload");
        assert!(hex("payload zz", false).is_err());
        assert!(leaf(&node("weight 1 2"), 1).is_err());
        assert!(leaf(&node("weight 1 {}"), 1).is_err());
    }
}

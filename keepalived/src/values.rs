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

/// A script's command as keepalived's messages show it (`cmd_str`): each
/// word in single quotes (a first word starting with `<` or `>` bare),
/// separated by blanks; the line as written if it does not split.
pub fn cmd_str(line: &str) -> String {
    let Ok(words) = parse_command(line) else { return line.to_owned() };
    let quoted = |(i, w): (usize, &String)| {
        if i == 0 && (w.starts_with('<') || w.starts_with('>')) {
            w.clone()
        } else {
            format!("'{w}'")
        }
    };
    words.iter().enumerate().map(quoted).collect::<Vec<_>>().join(" ")
}

/// A script's program, its first word, as keepalived's notify messages
/// name it (`script->args[0]`).
pub fn program(line: &str) -> String {
    split_command(line).into_iter().next().unwrap_or_else(|| line.to_owned())
}

/// Splits a script's command line into words as keepalived's
/// `alloc_strvec_quoted_escaped` does (`lib/parser.c`; no shell): blanks
/// separate words outside quotes; single or double quotes group (and are
/// dropped); a backslash, inside quotes or not, escapes the next character
/// as C does (`\n`, `\t`, `\a`, `\b`, `\f`, `\r`, `\v`, `\E` for ESC,
/// `\xHH` of one or two hex digits, `\NNN` of one to three octal digits,
/// `\cX` for control-X, and any other character as itself: `\ `, `\"`,
/// `\'`, `\\`). A word ends at a NUL an escape makes, as keepalived's
/// `STRNDUP` ends it. Refused as keepalived refuses them: a backslash at
/// the end, an unmatched quote, and bytes that are not UTF-8.
pub fn parse_command(line: &str) -> Result<Vec<String>, String> {
    split_quoted(line, true)
}

/// keepalived's `alloc_strvec_quoted_escaped_common` (`lib/parser.c`):
/// with `escapes`, [`parse_command`]; without (`alloc_strvec_quoted`, its
/// first reading of a script's configuration line), quotes group the same
/// way and a backslash keeps itself and protects the next character, so
/// that `"a \"b\""` is the one word `a \"b\"`.
pub(crate) fn split_quoted(line: &str, escapes: bool) -> Result<Vec<String>, String> {
    const BLANKS: &[u8] = b" \t\x0c\n\r\x0b";
    let src = line.as_bytes();
    let mut out = vec![];
    let mut at = 0;
    loop {
        while src.get(at).is_some_and(|c| BLANKS.contains(c)) {
            at += 1;
        }
        if at == src.len() {
            return Ok(out);
        }
        let mut word: Vec<u8> = vec![];
        let mut quote: Option<u8> = None;
        while let Some(&c) = src.get(at) {
            match (quote, c) {
                (_, b'\\') if !escapes => {
                    let next =
                        *src.get(at + 1).ok_or_else(|| format!("Missing escape char at end: '{line}'"))?;
                    word.extend([b'\\', next]);
                    at += 2;
                }
                (_, b'\\') => {
                    let (byte, len) = escape(&src[at + 1..])
                        .ok_or_else(|| format!("Missing escape char at end: '{line}'"))?;
                    word.push(byte);
                    at += 1 + len;
                }
                (Some(q), c) if c == q => {
                    quote = None;
                    at += 1;
                }
                (Some(_), c) => {
                    word.push(c);
                    at += 1;
                }
                (None, b'"' | b'\'') => {
                    quote = Some(c);
                    at += 1;
                }
                (None, c) if BLANKS.contains(&c) => break,
                (None, c) => {
                    word.push(c);
                    at += 1;
                }
            }
        }
        if let Some(q) = quote {
            return Err(format!("String '{line}': missing terminating {}", char::from(q)));
        }
        if let Some(nul) = word.iter().position(|&b| b == 0) {
            word.truncate(nul);
        }
        let word =
            String::from_utf8(word).map_err(|_| format!("String '{line}': its escapes are not UTF-8"))?;
        out.push(word);
    }
}

/// The byte of the escape that starts `rest` (after its backslash), and
/// how many bytes of `rest` it takes; `None` when `rest` is empty.
fn escape(rest: &[u8]) -> Option<(u8, usize)> {
    let first = *rest.first()?;
    let hex = || {
        let n = rest[1..].iter().take(2).take_while(|c| c.is_ascii_hexdigit()).count();
        let v = rest[1..=n].iter().fold(0u32, |v, c| v * 16 + char::from(*c).to_digit(16).unwrap_or(0));
        (v as u8, 1 + n)
    };
    Some(match first {
        b'x' if rest.get(1).is_some_and(u8::is_ascii_hexdigit) => hex(),
        b'c' if rest.len() > 1 => (rest[1] & 0x1f, 2),
        b'0'..=b'7' => {
            let n = rest.iter().take(3).take_while(|c| (b'0'..=b'7').contains(*c)).count();
            let v = rest[..n].iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
            (v as u8, n)
        }
        b'a' => (0x07, 1),
        b'b' => (0x08, 1),
        b'E' => (0x1b, 1),
        b'f' => (0x0c, 1),
        b'n' => (b'\n', 1),
        b'r' => (b'\r', 1),
        b't' => (b'\t', 1),
        b'v' => (0x0b, 1),
        other => (other, 1),
    })
}

/// [`parse_command`]'s words, none for a line it refuses (the
/// configuration refuses those, so only lines it took reach a run).
pub fn split_command(line: &str) -> Vec<String> {
    parse_command(line).unwrap_or_default()
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

    /// `alloc_strvec_quoted_escaped` (keepalived's `lib/parser.c`) on
    /// the lines its code takes each branch for: the results written out
    /// from that function, byte by byte.
    #[test]
    fn commands_split_with_keepalived_quotes_and_escapes() {
        let ok = |line: &str, want: &[&str]| {
            assert_eq!(parse_command(line), Ok(want.iter().map(|w| w.to_string()).collect()), "{line:?}")
        };
        // The review's case: an escaped blank, a quoted one.
        ok(r"/bin/echo a\ b 'c d'", &["/bin/echo", "a b", "c d"]);
        ok("/bin/check  -x 'a b' \"\"", &["/bin/check", "-x", "a b", ""]);
        ok("\t /bin/true \x0b", &["/bin/true"]);
        // Escapes inside either quote; the other quote is plain there.
        ok(r#""a\"b" 'c\'d' "e'f" 'g"h'"#, &["a\"b", "c'd", "e'f", "g\"h"]);
        ok(r"a\\b \q", &["a\\b", "q"]);
        // C's escapes; \x takes one or two hex digits, octal one to three.
        ok(r"\t\n\r\a\b\f\v\E", &["\t\n\r\x07\x08\x0c\x0b\x1b"]);
        ok(r"\x41\x4a\x4 \x4g \xg", &["AJ\x04", "\x04g", "xg"]);
        ok(r"\101\1012 \7 \08", &["AA2", "\x07", ""]);
        ok(r"\cA\c[ \c", &["\x01\x1b", "c"]);
        // A NUL ends the word (STRNDUP); the rest of the word is dropped.
        ok(r"ab\0cd ef", &["ab", "ef"]);
        ok(r"ab\x00cd", &["ab"]);
        ok("", &[]);
        ok("   ", &[]);
        assert_eq!(parse_command(r"/bin/echo a\"), Err(r"Missing escape char at end: '/bin/echo a\'".into()));
        assert_eq!(
            parse_command("/bin/echo 'a b"),
            Err("String '/bin/echo 'a b': missing terminating '".into())
        );
        assert_eq!(parse_command("x \"y"), Err("String 'x \"y': missing terminating \"".into()));
        assert!(parse_command(r"\xff").unwrap_err().ends_with("its escapes are not UTF-8"));
        assert_eq!(split_command(r"/bin/echo a\"), Vec::<String>::new());
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

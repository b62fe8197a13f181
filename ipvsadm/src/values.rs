//! Option values, parsed as ipvsadm 1.31 parses them, with its messages.
//!
//! Every function is pure; the messages are those of ipvsadm's `fail(2, ...)`
//! calls, which [`crate::resolve`] turns into exit status 2.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gw_proto::{sched_flags, Protocol, Scheduler};

use crate::services::PortNames;

/// ipvsadm's `MAX_TIMEOUT`: 31 days, the largest `-p` and `--set` value.
pub const MAX_TIMEOUT: u32 = 86_400 * 31;

/// ipvsadm's `string_to_number`: a decimal integer within `min..=max`, as
/// `strtol` reads it (leading white space skipped, an optional sign), with
/// nothing after it.
pub fn number(s: &str, min: i64, max: i64) -> Option<u32> {
    // isspace in the C locale.
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let n = s.parse::<i64>().ok()?;
    if (min..=max).contains(&n) {
        u32::try_from(n).ok()
    } else {
        None
    }
}

/// ipvsadm's `parse_service`: `HOST[:PORT]`, `IPV6` or `[IPV6]:PORT`; the
/// port a number from 0 to 65535 or a service name of `proto`; an IPv4 host
/// a dotted quad (`inet_aton`) or a name that `names` resolves
/// (`gethostbyname`: its first IPv4 address). As ipvsadm 1.31:
///
/// - a bare IPv6 address has no port (`2001:db8::1:80` is one address);
/// - brackets need a port: `[2001:db8::1]` alone is no service;
/// - an IPv4 address in brackets loses its port (`[1.2.3.4]:80` is
///   1.2.3.4 with no port: ipvsadm looks for the port inside the brackets).
pub fn addr_port(s: &str, proto: Protocol, names: &PortNames) -> Option<(IpAddr, Option<u16>)> {
    // parse_service: a string of digits alone is no service (SERVICE_NONE).
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (host, mut port) = match s.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            (host, Some(after.strip_prefix(':')?))
        }
        None => (s, None),
    };
    let addr = match host.parse::<Ipv6Addr>() {
        Ok(a) => IpAddr::V6(a),
        Err(_) => {
            // The IPv4 branch looks for the port again, inside `host`.
            let (h, p) = match host.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host, None),
            };
            port = p;
            IpAddr::V4(match inet_aton(h) {
                Some(a) => a,
                None => names.host_addr(h)?,
            })
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(match number(p, 0, 65535) {
            Some(n) => u16::try_from(n).ok()?,
            None => names.lookup(p, proto)?,
        }),
    };
    Some((addr, port))
}

/// glibc's `inet_aton`, which ipvsadm tries before resolving a name: one to
/// four parts separated by dots, each decimal, octal (leading `0`) or hex
/// (`0x`); the last part fills the remaining bytes (`10.1` is 10.0.0.1,
/// `0x7f000001` is 127.0.0.1); anything after a whitespace is ignored.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut parts = [0u32; 3];
    let mut n = 0;
    let val = loop {
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        // strtoul(.., 0): the base from the prefix, then its digits.
        let (radix, start) = match (b[i], b.get(i + 1)) {
            (b'0', Some(b'x' | b'X')) if b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) => (16, i + 2),
            (b'0', _) => (8, i),
            _ => (10, i),
        };
        let mut end = start;
        let mut v: u64 = 0;
        while let Some(d) = b.get(end).and_then(|c| char::from(*c).to_digit(radix)) {
            v = v.saturating_mul(u64::from(radix)).saturating_add(u64::from(d));
            end += 1;
        }
        if v > 0xffff_ffff {
            return None;
        }
        i = end;
        if b.get(i) == Some(&b'.') {
            if n == 3 || v > 0xff {
                return None;
            }
            parts[n] = v as u32;
            n += 1;
            i += 1;
        } else {
            break v as u32;
        }
    };
    if b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
        return None;
    }
    let (limit, high) = match n {
        0 => (u32::MAX, 0),
        1 => (0xff_ffff, parts[0] << 24),
        2 => (0xffff, parts[0] << 24 | parts[1] << 16),
        _ => (0xff, parts[0] << 24 | parts[1] << 16 | parts[2] << 8),
    };
    (val <= limit).then(|| Ipv4Addr::from(high | val))
}

/// ipvsadm's `parse_timeout`: `min..=max` seconds, or "invalid timeout value".
pub fn timeout(s: &str, min: u32, max: u32) -> Result<u32, String> {
    number(s, min.into(), max.into()).ok_or_else(|| format!("invalid timeout value `{s}' specified"))
}

/// `-M`: a dotted-quad mask as ipvsadm takes it (any 32-bit value, contiguous or
/// not), or a prefix length `/N` or `N` from 0 to 32 (gwctl's addition: ipvsadm
/// would read a bare `24` as the address 0.0.0.24).
pub fn netmask(s: &str) -> Result<Ipv4Addr, String> {
    let bad = || "illegal virtual server persistent mask specified".to_owned();
    if let Ok(mask) = s.parse::<Ipv4Addr>() {
        return Ok(mask);
    }
    let digits = s.strip_prefix('/').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        // ipvsadm's parse_netmask: anything inet_aton takes (0xffffff00, 255.255.65280).
        return inet_aton(s).ok_or_else(bad);
    }
    let len: u32 = digits.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    let bits = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    Ok(Ipv4Addr::from(bits))
}

/// `-M` of an IPv6 service: ipvsadm's `atoi` (leading blanks, a sign,
/// then digits up to the first other character) within 1..=128.
pub fn prefix6(s: &str) -> Result<u8, String> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    let n: i64 = digits[..end].parse::<i64>().unwrap_or(if end == 0 { 0 } else { i64::MAX });
    let n = if neg { -n } else { n };
    u8::try_from(n)
        .ok()
        .filter(|n| (1..=128).contains(n))
        .ok_or_else(|| "illegal ipv6 netmask specified".to_owned())
}

/// ipvsadm's `parse_sched_flags`: comma-separated names, checked against the
/// scheduler (`-s`, or wlc when absent). Empty items are skipped, as `strtok` does.
pub fn sched_flags(scheduler: Scheduler, s: &str) -> Result<u8, String> {
    let mut flags = 0;
    let mut any = false;
    for flag in s.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, needs) = match flag {
            "flag-1" => (sched_flags::FLAG1, None),
            "flag-2" => (sched_flags::FLAG2, None),
            "flag-3" => (sched_flags::FLAG3, None),
            "sh-fallback" => (sched_flags::FLAG1, Some(Scheduler::Sh)),
            "sh-port" => (sched_flags::FLAG2, Some(Scheduler::Sh)),
            "mh-fallback" => (sched_flags::FLAG1, Some(Scheduler::Mh)),
            "mh-port" => (sched_flags::FLAG2, Some(Scheduler::Mh)),
            _ => return Err(format!("invalid scheduler flag `{flag}'")),
        };
        if needs.is_some_and(|n| n != scheduler) {
            return Err(format!("incompatible scheduler flag `{flag}'"));
        }
        flags |= bit;
    }
    if !any && !s.is_empty() {
        // ipvsadm's strtok finds no flag in ",": it would crash; name the input.
        return Err(format!("invalid scheduler flag `{s}'"));
    }
    Ok(flags)
}

/// Scheduler flag names as ipvsadm's `print_sched_flags` writes them
/// (comma-separated, in bit order), or `None` without flags. Where ipvsadm
/// drops flag-3 of an sh or mh service, gwctl writes `flag-3`, so that the
/// listing and `-S` say everything that is set.
pub fn sched_flag_names(scheduler: Scheduler, flags: u8) -> Option<String> {
    let names: [&str; 3] = match scheduler {
        Scheduler::Sh => ["sh-fallback", "sh-port", "flag-3"],
        Scheduler::Mh => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    let bits = [sched_flags::FLAG1, sched_flags::FLAG2, sched_flags::FLAG3];
    let set: Vec<&str> = bits.iter().zip(names).filter(|(b, _)| flags & **b != 0).map(|(_, n)| n).collect();
    (!set.is_empty()).then(|| set.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn ipv6_forms_as_ipvsadm_parse_service() {
        let n = PortNames::builtin();
        let v6 = |s: &str| IpAddr::V6(s.parse().unwrap());
        let p = |s| addr_port(s, Protocol::Tcp, &n);
        assert_eq!(p("[2001:db8::1]:80"), Some((v6("2001:db8::1"), Some(80))));
        assert_eq!(p("[2001:db8::1]:http"), Some((v6("2001:db8::1"), Some(80))));
        // Bare: the whole word is the address, no port.
        assert_eq!(p("2001:db8::1"), Some((v6("2001:db8::1"), None)));
        assert_eq!(p("2001:db8::1:80"), Some((v6("2001:db8::1:80"), None)));
        assert_eq!(p("::ffff:198.18.0.1"), Some((v6("::ffff:198.18.0.1"), None)));
        // Brackets need ":port"; a bad port is no service.
        assert_eq!(p("[2001:db8::1]"), None);
        assert_eq!(p("[2001:db8::1]80"), None);
        assert_eq!(p("[2001:db8::1:80"), None);
        assert_eq!(p("[2001:db8::1]:"), None);
        assert_eq!(p("[2001:db8::1]:65536"), None);
        assert_eq!(p("[2001:db8::g]:80"), None);
        // ipvsadm's quirk: IPv4 in brackets loses its port.
        assert_eq!(p("[1.2.3.4]:80"), Some((ip4(1, 2, 3, 4), None)));
    }

    /// strtol's reading: white space before, a sign, nothing after.
    #[test]
    fn numbers_are_read_as_string_to_number_reads_them() {
        assert_eq!(number("80", 0, 65535), Some(80));
        assert_eq!(number(" 80", 0, 65535), Some(80));
        assert_eq!(number("\t+80", 0, 65535), Some(80));
        assert_eq!(number("-0", 0, 65535), Some(0));
        for bad in ["", " ", "80 ", "8 0", "- 5", "0x50", "65536", "-1", "99999999999999999999"] {
            assert_eq!(number(bad, 0, 65535), None, "{bad:?}");
        }
        let n = PortNames::builtin();
        let v6 = IpAddr::V6("2001:db8::1".parse().unwrap());
        assert_eq!(addr_port("[2001:db8::1]: 80", Protocol::Tcp, &n), Some((v6, Some(80))));
        assert_eq!(addr_port("198.18.0.1: 80", Protocol::Tcp, &n), Some((ip4(198, 18, 0, 1), Some(80))));
    }

    #[test]
    fn ipv6_netmask_is_atoi_in_1_to_128() {
        assert_eq!(prefix6("64"), Ok(64));
        assert_eq!(prefix6("128"), Ok(128));
        assert_eq!(prefix6("1"), Ok(1));
        assert_eq!(prefix6(" +48abc"), Ok(48));
        let bad = Err("illegal ipv6 netmask specified".to_owned());
        for s in ["0", "129", "-64", "abc", "", "/64", "ffff::", "99999999999999999999999"] {
            assert_eq!(prefix6(s), bad, "{s:?}");
        }
    }

    #[test]
    fn address_parsing() {
        let n = PortNames::builtin();
        assert_eq!(addr_port("1.2.3.4", Protocol::Tcp, &n), Some((ip4(1, 2, 3, 4), None)));
        assert_eq!(addr_port("1.2.3.4:0", Protocol::Tcp, &n), Some((ip4(1, 2, 3, 4), Some(0))));
        assert_eq!(addr_port("1.2.3.4:+80", Protocol::Tcp, &n), Some((ip4(1, 2, 3, 4), Some(80))));
        assert_eq!(addr_port("1.2.3.4:domain", Protocol::Udp, &n), Some((ip4(1, 2, 3, 4), Some(53))));
        assert_eq!(addr_port("1.2.3.4:http", Protocol::Udp, &n), None);
        assert_eq!(
            addr_port("[::1]:80", Protocol::Tcp, &n),
            Some((IpAddr::V6(Ipv6Addr::LOCALHOST), Some(80)))
        );
        assert_eq!(addr_port("", Protocol::Tcp, &n), None);
        // inet_aton's short forms, as ipvsadm; digits alone are no service.
        assert_eq!(addr_port("198.18:80", Protocol::Tcp, &n), Some((ip4(198, 0, 0, 18), Some(80))));
        assert_eq!(addr_port("0xc6120064:80", Protocol::Tcp, &n), Some((ip4(198, 18, 0, 100), Some(80))));
        assert_eq!(addr_port("3323068516", Protocol::Tcp, &n), None);
    }

    #[test]
    fn netmask_forms() {
        let m = |s| netmask(s).map(|a| a.to_string());
        assert_eq!(m("255.255.255.0"), Ok("255.255.255.0".into()));
        assert_eq!(m("255.0.255.0"), Ok("255.0.255.0".into()), "ipvsadm takes any mask");
        assert_eq!(m("/24"), Ok("255.255.255.0".into()));
        assert_eq!(m("24"), Ok("255.255.255.0".into()));
        assert_eq!(m("/0"), Ok("0.0.0.0".into()));
        assert_eq!(m("/32"), Ok("255.255.255.255".into()));
        assert_eq!(m("/17"), Ok("255.255.128.0".into()));
        // inet_aton's forms, as ipvsadm's parse_netmask takes them.
        assert_eq!(m("0xffffff00"), Ok("255.255.255.0".into()));
        assert_eq!(m("255.255.255"), Ok("255.255.0.255".into()), "inet_aton: the last part fills");
        for bad in ["/33", "/", "", "mask", "/-1", "/+8", "1.2.3.4.5"] {
            assert_eq!(m(bad), Err("illegal virtual server persistent mask specified".into()), "{bad}");
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout("1", 1, MAX_TIMEOUT), Ok(1));
        assert_eq!(timeout("2678400", 1, MAX_TIMEOUT), Ok(2_678_400));
        assert_eq!(
            timeout("2678401", 1, MAX_TIMEOUT),
            Err("invalid timeout value `2678401' specified".into())
        );
        assert_eq!(timeout("0", 1, MAX_TIMEOUT), Err("invalid timeout value `0' specified".into()));
        assert_eq!(timeout("0", 0, MAX_TIMEOUT), Ok(0));
        assert_eq!(timeout("x", 0, MAX_TIMEOUT), Err("invalid timeout value `x' specified".into()));
    }

    #[test]
    fn sched_flags_follow_the_scheduler() {
        assert_eq!(sched_flags(Scheduler::Sh, "sh-fallback,sh-port"), Ok(3));
        assert_eq!(sched_flags(Scheduler::Mh, "mh-port"), Ok(2));
        assert_eq!(sched_flags(Scheduler::Rr, "flag-1,flag-3"), Ok(5));
        assert_eq!(sched_flags(Scheduler::Sh, "flag-2,,flag-3"), Ok(6));
        assert_eq!(sched_flags(Scheduler::Wlc, ""), Ok(0));
        assert_eq!(
            sched_flags(Scheduler::Wlc, "sh-port"),
            Err("incompatible scheduler flag `sh-port'".into())
        );
        assert_eq!(
            sched_flags(Scheduler::Sh, "mh-port"),
            Err("incompatible scheduler flag `mh-port'".into())
        );
        assert_eq!(sched_flags(Scheduler::Sh, "sh-port,bogus"), Err("invalid scheduler flag `bogus'".into()));
        assert_eq!(sched_flags(Scheduler::Sh, ","), Err("invalid scheduler flag `,'".into()));
    }

    #[test]
    fn sched_flag_names_read_back() {
        assert_eq!(sched_flag_names(Scheduler::Sh, 3).as_deref(), Some("sh-fallback,sh-port"));
        assert_eq!(sched_flag_names(Scheduler::Mh, 1).as_deref(), Some("mh-fallback"));
        assert_eq!(sched_flag_names(Scheduler::Wrr, 7).as_deref(), Some("flag-1,flag-2,flag-3"));
        assert_eq!(sched_flag_names(Scheduler::Sh, 4).as_deref(), Some("flag-3"));
        assert_eq!(sched_flag_names(Scheduler::Sh, 0), None);
        for s in Scheduler::ALL {
            for f in 0..8 {
                let back = sched_flag_names(s, f).map_or(Ok(0), |n| sched_flags(s, &n));
                assert_eq!(back, Ok(f), "{s} {f}");
            }
        }
    }

    extern "C" {
        /// glibc's `inet_aton` (<arpa/inet.h>); the libc crate has no binding.
        #[link_name = "inet_aton"]
        fn c_inet_aton(cp: *const libc::c_char, inp: *mut libc::in_addr) -> libc::c_int;
    }

    /// The C library's own `inet_aton` (glibc here, as under ipvsadm).
    fn libc_inet_aton(s: &str) -> Option<Ipv4Addr> {
        let c = std::ffi::CString::new(s).ok()?;
        let mut a = libc::in_addr { s_addr: 0 };
        // SAFETY: `c` is a NUL-terminated string and `a` a valid in_addr,
        // both alive for the call; inet_aton writes only `a`.
        let ok = unsafe { c_inet_aton(c.as_ptr(), &mut a) };
        (ok != 0).then(|| Ipv4Addr::from(u32::from_be(a.s_addr)))
    }

    #[test]
    fn inet_aton_takes_the_short_forms_glibc_takes() {
        for (s, want) in [
            ("10.1", Some([10, 0, 0, 1])),
            ("10.1.2", Some([10, 1, 0, 2])),
            ("0x7f000001", Some([127, 0, 0, 1])),
            ("0300.0250.1.1", Some([192, 168, 1, 1])),
            ("198.18.0.1 trailing", Some([198, 18, 0, 1])),
            ("256.1.1.1", None),
            ("1.2.3.4.5", None),
            ("08.1.1.1", None),
            ("0x", None),
            ("1.2.3.", None),
            ("", None),
        ] {
            assert_eq!(inet_aton(s), want.map(Ipv4Addr::from), "{s:?}");
            assert_eq!(libc_inet_aton(s), want.map(Ipv4Addr::from), "glibc on {s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn inet_aton_agrees_with_glibc(s in "[0-9xXa-f. ]{0,16}") {
            proptest::prop_assert_eq!(inet_aton(&s), libc_inet_aton(&s), "{:?}", s);
        }
    }
}

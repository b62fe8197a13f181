//! Port names such as `http`, as ipvsadm's `getservbyname(3)` knows them.
//!
//! The names come from `/etc/services` (the file NSS reads for `getservbyname`);
//! where that file is missing, as in some minimal containers, a small built-in
//! table of common names stands in. A name is looked up for the service's own
//! protocol only, as ipvsadm does (`domain` is 53 for both, `https` may be TCP only).
//!
//! Host names go through the system resolver, as ipvsadm's `gethostbyname` and
//! `gethostbyaddr` do (NSS: `/etc/hosts`, then DNS), but only for a table made by
//! [`PortNames::system`]; the built-in table of tests never resolves hosts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use gw_proto::Protocol;

/// Used when `/etc/services` cannot be read.
#[rustfmt::skip]
const BUILTIN: &str = "\
ftp 21/tcp
ssh 22/tcp
telnet 23/tcp
smtp 25/tcp
domain 53/tcp
domain 53/udp
http 80/tcp www
ntp 123/udp
snmp 161/udp
ldap 389/tcp
https 443/tcp
https 443/udp
syslog 514/udp
submission 587/tcp
ldaps 636/tcp
imaps 993/tcp
pop3s 995/tcp
mysql 3306/tcp
postgresql 5432/tcp
http-alt 8080/tcp webcache
";

/// A table of port names: (name or alias, protocol) to port.
#[derive(Debug, Clone, Default)]
pub struct PortNames {
    entries: HashMap<(String, Protocol), u16>,
    /// (port, protocol) to the official name of its first entry (`getservbyport`).
    names: HashMap<(u16, Protocol), String>,
    /// Whether host names are looked up with the system resolver.
    hosts: bool,
}

impl PortNames {
    /// Parses the `/etc/services` format: `name port/proto [aliases...] [# comment]`.
    /// Lines that do not fit are skipped, as the C library does.
    pub fn parse(text: &str) -> PortNames {
        let mut entries = HashMap::new();
        let mut names = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else { continue };
            let proto = match proto {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                _ => continue,
            };
            let Ok(port) = port.parse::<u16>() else { continue };
            names.entry((port, proto)).or_insert_with(|| name.to_owned());
            for n in std::iter::once(name).chain(words) {
                // The first entry wins, as in getservbyname.
                entries.entry((n.to_owned(), proto)).or_insert(port);
            }
        }
        PortNames { entries, names, hosts: false }
    }

    /// The system's table: `/etc/services`, or the built-in one if it cannot be read.
    pub fn system() -> PortNames {
        let table = match std::fs::read_to_string("/etc/services") {
            Ok(text) => PortNames::parse(&text),
            Err(_) => PortNames::builtin(),
        };
        PortNames { hosts: true, ..table }
    }

    /// The built-in table of common names.
    pub fn builtin() -> PortNames {
        PortNames::parse(BUILTIN)
    }

    /// The port of `name` for `proto`; the first entry wins, as in `getservbyname`.
    pub fn lookup(&self, name: &str, proto: Protocol) -> Option<u16> {
        self.entries.get(&(name.to_owned(), proto)).copied()
    }

    /// The name of `port` for `proto`, as `getservbyport`: the first entry's own name.
    pub fn name_of(&self, port: u16, proto: Protocol) -> Option<&str> {
        self.names.get(&(port, proto)).map(String::as_str)
    }

    /// ipvsadm's `host_to_addr`: the first address `gethostbyname` gives
    /// for host `name`, if it is IPv4. `None` for a table that does not
    /// resolve hosts.
    pub fn host_addr(&self, name: &str) -> Option<Ipv4Addr> {
        if !self.hosts || name.is_empty() {
            return None;
        }
        gethostbyname4(name)
    }

    /// ipvsadm's `addr_to_host`: the name of `addr` from the system resolver
    /// (`getnameinfo`, name required), `None` when it has none.
    pub fn host_name(&self, addr: IpAddr) -> Option<String> {
        if !self.hosts {
            return None;
        }
        let name = dns_lookup::lookup_addr(&addr).ok()?;
        // Without a name getnameinfo gives the number back.
        name.parse::<IpAddr>().is_err().then_some(name)
    }

    /// A table that resolves host names with the system resolver (for tests).
    pub fn with_hosts(self) -> PortNames {
        PortNames { hosts: true, ..self }
    }
}

/// glibc's `struct hostent` (`<netdb.h>`), which the libc crate does not
/// declare for Linux.
#[repr(C)]
struct HostEnt {
    h_name: *mut libc::c_char,
    h_aliases: *mut *mut libc::c_char,
    h_addrtype: libc::c_int,
    h_length: libc::c_int,
    h_addr_list: *mut *mut libc::c_char,
}

extern "C" {
    /// glibc's reentrant `gethostbyname`.
    fn gethostbyname_r(
        name: *const libc::c_char,
        ret: *mut HostEnt,
        buf: *mut libc::c_char,
        buflen: libc::size_t,
        result: *mut *mut HostEnt,
        h_errnop: *mut libc::c_int,
    ) -> libc::c_int;
}

/// The first address of `name` as `gethostbyname` gives it, if it is IPv4:
/// ipvsadm's lookup. Not `getaddrinfo`, which sorts a name's addresses by
/// RFC 6724 (its longest-prefix rule puts an address near one of this
/// host's first), where `gethostbyname` keeps the resolver's order: with
/// several addresses the two pick different VIPs.
fn gethostbyname4(name: &str) -> Option<Ipv4Addr> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        let mut ent = std::mem::MaybeUninit::<HostEnt>::uninit();
        let mut result: *mut HostEnt = std::ptr::null_mut();
        let mut herr: libc::c_int = 0;
        // SAFETY: `name` is NUL-terminated; `ent`, `buf` (of `buf.len()`
        // bytes), `result` and `herr` are valid for writes and outlive the
        // call; glibc writes the entry's strings and lists into `buf`.
        let rc = unsafe {
            gethostbyname_r(
                name.as_ptr(),
                ent.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
                &mut herr,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: on success `result` points at `ent`, which glibc filled,
        // with its pointers into `buf`, still alive.
        let ent = unsafe { &*result };
        if ent.h_addrtype != libc::AF_INET || ent.h_length != 4 || ent.h_addr_list.is_null() {
            return None;
        }
        // SAFETY: `h_addr_list` is a NULL-terminated list in `buf`; its
        // first entry, when not NULL, holds `h_length` (4) bytes.
        let first = unsafe { *ent.h_addr_list };
        if first.is_null() {
            return None;
        }
        let mut octets = [0u8; 4];
        // SAFETY: as above, `first` points at 4 readable bytes.
        unsafe { std::ptr::copy_nonoverlapping(first.cast::<u8>(), octets.as_mut_ptr(), 4) };
        return Some(Ipv4Addr::from(octets));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_name_back_as_getservbyport() {
        let n = PortNames::builtin();
        assert_eq!(n.name_of(80, Protocol::Tcp), Some("http"));
        assert_eq!(n.name_of(80, Protocol::Udp), None);
        assert_eq!(n.name_of(53, Protocol::Udp), Some("domain"));
        assert_eq!(n.name_of(8080, Protocol::Tcp), Some("http-alt"));
        assert_eq!(n.name_of(9, Protocol::Tcp), None);
    }

    /// /etc/hosts names localhost 127.0.0.1 on every system (no DNS is asked).
    #[test]
    fn hosts_resolve_through_the_system_resolver() {
        let n = PortNames::builtin();
        assert_eq!(n.host_addr("localhost"), None, "the built-in table resolves nothing");
        let n = n.with_hosts();
        assert_eq!(n.host_addr("localhost"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(n.host_name(Ipv4Addr::LOCALHOST.into()).as_deref(), Some("localhost"));
    }

    #[rustfmt::skip]
    const FIXTURE: &str = "\
# comment line
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
https\t\t443/tcp
https\t\t443/udp\t\t\t\t# HTTP/3
broken\t\tnotaport/tcp
sctponly\t9/sctp
";

    #[test]
    fn names_and_aliases_resolve_per_protocol() {
        let t = PortNames::parse(FIXTURE);
        assert_eq!(t.lookup("ssh", Protocol::Tcp), Some(22));
        assert_eq!(t.lookup("ssh", Protocol::Udp), None);
        assert_eq!(t.lookup("www", Protocol::Tcp), Some(80));
        assert_eq!(t.lookup("https", Protocol::Udp), Some(443));
        assert_eq!(t.lookup("broken", Protocol::Tcp), None);
        assert_eq!(t.lookup("sctponly", Protocol::Tcp), None);
        assert_eq!(t.lookup("comment", Protocol::Tcp), None);
    }

    #[test]
    fn builtin_table_knows_the_common_names() {
        let t = PortNames::builtin();
        assert_eq!(t.lookup("http", Protocol::Tcp), Some(80));
        assert_eq!(t.lookup("domain", Protocol::Udp), Some(53));
        assert_eq!(t.lookup("http", Protocol::Udp), None);
    }
}

//! Port names such as `http`, as ipvsadm's `getservbyname(3)` knows them.
//!
//! The names come from `/etc/services` (the file NSS reads for `getservbyname`);
//! where that file is missing, as in some minimal containers, a small built-in
//! table of common names stands in. A name is looked up for the service's own
//! protocol only, as ipvsadm does (`domain` is 53 for both, `https` may be TCP only).

use std::collections::HashMap;

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
}

impl PortNames {
    /// Parses the `/etc/services` format: `name port/proto [aliases...] [# comment]`.
    /// Lines that do not fit are skipped, as the C library does.
    pub fn parse(text: &str) -> PortNames {
        let mut entries = HashMap::new();
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
            for n in std::iter::once(name).chain(words) {
                // The first entry wins, as in getservbyname.
                entries.entry((n.to_owned(), proto)).or_insert(port);
            }
        }
        PortNames { entries }
    }

    /// The system's table: `/etc/services`, or the built-in one if it cannot be read.
    pub fn system() -> PortNames {
        match std::fs::read_to_string("/etc/services") {
            Ok(text) => PortNames::parse(&text),
            Err(_) => PortNames::builtin(),
        }
    }

    /// The built-in table of common names.
    pub fn builtin() -> PortNames {
        PortNames::parse(BUILTIN)
    }

    /// The port of `name` for `proto`; the first entry wins, as in `getservbyname`.
    pub fn lookup(&self, name: &str, proto: Protocol) -> Option<u16> {
        self.entries.get(&(name.to_owned(), proto)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

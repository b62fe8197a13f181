//! Any text, however broken, loads or is refused with a line: the parser
//! never panics or loops. Inputs are built from keepalived's own words and
//! punctuation, so they reach deep into blocks rather than stopping at the
//! first unknown keyword.

use std::path::Path;

use proptest::prelude::*;

const WORDS: [&str; 40] = [
    "virtual_server",
    "real_server",
    "virtual_server_group",
    "group",
    "local_address_group",
    "laddr_group_name",
    "lg",
    "198.18.0.100",
    "198.18.1.2",
    "198.18.1.2-4",
    "198.18.0.0/30",
    "80",
    "0",
    "65536",
    "lb_algo",
    "rr",
    "lb_kind",
    "FNAT",
    "DR",
    "protocol",
    "TCP",
    "UDP",
    "weight",
    "1",
    "TCP_CHECK",
    "HTTP_GET",
    "url",
    "path",
    "status_code",
    "200-299",
    "MISC_CHECK",
    "misc_path",
    "UDP_CHECK",
    "payload",
    "0a",
    "vrrp_instance",
    "persistence_timeout",
    "sorry_server",
    "include",
    "fwmark",
];
const PUNCT: [&str; 9] = ["{", "}", "\n", " ", "\"", "#", "!", "@^x ", "$A=1\n"];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(&WORDS[..]).prop_map(|w| format!("{w} ")),
            2 => prop::sample::select(&PUNCT[..]).prop_map(str::to_owned),
            1 => "[ -~]{0,8}",
        ],
        0..120,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn any_text_loads_or_is_refused_with_a_line(t in text()) {
        // A relative include resolves under a directory that does not exist.
        match gw_keepalived::parse_str(Path::new("/nonexistent-gw-ka/k.conf"), &t) {
            Ok(l) => {
                let _ = l.requests();
            }
            Err(e) => prop_assert!(e.line >= 1 && e.line <= t.split('\n').count(), "{e} for {t:?}"),
        }
    }
}

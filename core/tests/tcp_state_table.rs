//! Every cell of the TCP state table (3 directions x 4 events x 11 states =
//! 132 cells) checked against the kernel's.
//!
//! The expected table below is copied, independently of `core/src/tcp_state.rs`,
//! from Linux `net/netfilter/ipvs/ip_vs_proto_tcp.c`: the `tcp_states` array
//! (the default table; `tcp_states_dos`, used with the `secure_tcp` sysctl, is
//! not implemented here), read through `set_tcp_state()`, which indexes it as
//! `tcp_state_table[tcp_state_off[direction] + tcp_state_idx(th)].next_state[cp->state]`.
//! `tcp_state_idx()` picks the event: RST first, then SYN, then FIN, then ACK.
//! A packet with none of them is not in the table: the kernel then moves the
//! connection to CLOSE (`new_state` starts as `IP_VS_TCP_S_CLOSE`), where
//! gatewayd leaves the state as it was, on purpose (`tcp_state::next`).
//! The table is the current kernel's: an ACK in state NONE gives
//! ESTABLISHED (CLOSE before Linux 3.12's sloppy TCP).
//!
//! The rows are kept in the kernel's spelling (`sNO`, `sES`, ...) so a reader
//! can put them side by side with the C source.

use gw_core::tcp_state::{flags::*, next, Dir, State};

/// The kernel's state order (`IP_VS_TCP_S_*`), which is the column order.
const COLUMNS: [&str; 11] = ["sNO", "sES", "sSS", "sSR", "sFW", "sTW", "sCL", "sCW", "sLA", "sLI", "sSA"];

/// `tcp_states` from ip_vs_proto_tcp.c: per direction, the rows syn, fin, ack, rst.
#[rustfmt::skip]
const KERNEL: [(&str, [[&str; 11]; 4]); 3] = [
    ("INPUT", [
        //       sNO,   sES,   sSS,   sSR,   sFW,   sTW,   sCL,   sCW,   sLA,   sLI,   sSA
        /*syn*/ ["sSR", "sES", "sES", "sSR", "sSR", "sSR", "sSR", "sSR", "sSR", "sSR", "sSR"],
        /*fin*/ ["sCL", "sCW", "sSS", "sTW", "sTW", "sTW", "sCL", "sCW", "sLA", "sLI", "sTW"],
        /*ack*/ ["sES", "sES", "sSS", "sES", "sFW", "sTW", "sCL", "sCW", "sCL", "sLI", "sES"],
        /*rst*/ ["sCL", "sCL", "sCL", "sSR", "sCL", "sCL", "sCL", "sCL", "sLA", "sLI", "sSR"],
    ]),
    ("OUTPUT", [
        //       sNO,   sES,   sSS,   sSR,   sFW,   sTW,   sCL,   sCW,   sLA,   sLI,   sSA
        /*syn*/ ["sSS", "sES", "sSS", "sSR", "sSS", "sSS", "sSS", "sSS", "sSS", "sLI", "sSR"],
        /*fin*/ ["sTW", "sFW", "sSS", "sTW", "sFW", "sTW", "sCL", "sTW", "sLA", "sLI", "sTW"],
        /*ack*/ ["sES", "sES", "sSS", "sES", "sFW", "sTW", "sCL", "sCW", "sLA", "sES", "sES"],
        /*rst*/ ["sCL", "sCL", "sSS", "sCL", "sCL", "sTW", "sCL", "sCL", "sCL", "sCL", "sCL"],
    ]),
    ("INPUT-ONLY", [
        //       sNO,   sES,   sSS,   sSR,   sFW,   sTW,   sCL,   sCW,   sLA,   sLI,   sSA
        /*syn*/ ["sSR", "sES", "sES", "sSR", "sSR", "sSR", "sSR", "sSR", "sSR", "sSR", "sSR"],
        /*fin*/ ["sCL", "sFW", "sSS", "sTW", "sFW", "sTW", "sCL", "sCW", "sLA", "sLI", "sTW"],
        /*ack*/ ["sES", "sES", "sSS", "sES", "sFW", "sTW", "sCL", "sCW", "sCL", "sLI", "sES"],
        /*rst*/ ["sCL", "sCL", "sCL", "sSR", "sCL", "sCL", "sCL", "sCL", "sLA", "sLI", "sCL"],
    ]),
];

/// The kernel's state names (`#define sNO IP_VS_TCP_S_NONE` ...) as ours.
fn state(kernel: &str) -> State {
    match kernel {
        "sNO" => State::None,
        "sES" => State::Established,
        "sSS" => State::SynSent,
        "sSR" => State::SynRecv,
        "sFW" => State::FinWait,
        "sTW" => State::TimeWait,
        "sCL" => State::Close,
        "sCW" => State::CloseWait,
        "sLA" => State::LastAck,
        "sLI" => State::Listen,
        "sSA" => State::SynAck,
        other => panic!("not a kernel state: {other}"),
    }
}

fn dir(kernel: &str) -> Dir {
    match kernel {
        "INPUT" => Dir::Input,
        "OUTPUT" => Dir::Output,
        "INPUT-ONLY" => Dir::InputOnly,
        other => panic!("not a kernel direction: {other}"),
    }
}

/// Per event row (syn, fin, ack, rst), flag sets that `tcp_state_idx()` maps
/// to that event: the bare flag and the flag with the lower-precedence ones.
const EVENTS: [(&str, &[u8]); 4] = [
    ("syn", &[SYN, SYN | ACK, SYN | FIN, SYN | FIN | ACK]),
    ("fin", &[FIN, FIN | ACK]),
    ("ack", &[ACK, ACK | 0x08 /* PSH */]),
    ("rst", &[RST, RST | ACK, RST | SYN, RST | FIN, RST | SYN | FIN | ACK]),
];

#[test]
fn every_cell_matches_the_kernels_tcp_states() {
    let mut wrong = Vec::new();
    let mut cells = 0;
    for (dname, rows) in KERNEL {
        for ((ename, flag_sets), row) in EVENTS.iter().zip(rows) {
            for (from, to) in COLUMNS.iter().zip(row) {
                cells += 1;
                for &f in *flag_sets {
                    let got = next(state(from), dir(dname), f);
                    if got != state(to) {
                        wrong.push(format!(
                            "{dname} {ename} (flags {f:#04x}) from {from}: kernel {to}, ours {}",
                            got.name()
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(cells, 132);
    assert!(wrong.is_empty(), "{} disagreements with the kernel:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn the_columns_are_the_kernels_state_order() {
    // IP_VS_TCP_S_NONE = 0 ... IP_VS_TCP_S_SYNACK = 10, as our discriminants.
    for (i, c) in COLUMNS.iter().enumerate() {
        assert_eq!(state(c) as usize, i, "{c}");
    }
}

#[test]
fn a_packet_without_syn_fin_ack_or_rst_changes_nothing() {
    // tcp_state_idx() returns -1 and set_tcp_state() keeps cp->state.
    for (dname, _) in KERNEL {
        for s in State::ALL {
            for f in [0, 0x08 /* PSH */, 0x20 /* URG */, 0x40 /* ECE */, 0x80 /* CWR */] {
                assert_eq!(next(s, dir(dname), f), s, "{dname} {s:?} flags {f:#04x}");
            }
        }
    }
}

#[test]
fn udp_sessions_keep_their_state() {
    for (dname, _) in KERNEL {
        for f in [SYN, FIN, ACK, RST] {
            assert_eq!(next(State::Udp, dir(dname), f), State::Udp);
        }
    }
}

//! TCP connection states and timeouts in the spirit of IPVS.
//!
//! IPVS does not run a full TCP state machine: it moves a connection between
//! a few coarse states on the flags it sees, with one table for packets from
//! the client (INPUT), one for packets from the real server (OUTPUT) and one
//! for modes that only see the client side (INPUT-ONLY: DR and TUN). The
//! transitions below follow the kernel's `tcp_states` table
//! (net/netfilter/ipvs/ip_vs_proto_tcp.c); the default timeouts are the
//! kernel's `tcp_timeouts`.

use serde::Deserialize;

/// A session's state. `Udp` is the single state of UDP sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    None = 0,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    SynAck,
    Udp,
}

impl State {
    /// Every state, in discriminant order.
    pub const ALL: [State; 12] = {
        use State::*;
        [
            None,
            Established,
            SynSent,
            SynRecv,
            FinWait,
            TimeWait,
            Close,
            CloseWait,
            LastAck,
            Listen,
            SynAck,
            Udp,
        ]
    };

    /// Whether a TCP session in this state counts in its real server's
    /// ActiveConn, else in InActConn: the kernel's `tcp_state_active_table`
    /// (since Linux 4.7 the handshake's states count as active too, so a
    /// server that leaves SYNs unanswered weighs as busy for the
    /// least-connection schedulers). UDP sessions are always inactive.
    #[inline]
    pub fn is_active(self) -> bool {
        matches!(self, State::Established | State::SynSent | State::SynRecv | State::SynAck)
    }

    /// The name `ipvsadm -lnc` prints.
    pub fn name(self) -> &'static str {
        use State::*;
        match self {
            None => "NONE",
            Established => "ESTABLISHED",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            FinWait => "FIN_WAIT",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            Listen => "LISTEN",
            SynAck => "SYNACK",
            Udp => "UDP",
        }
    }
}

/// Which side a packet came from, choosing the transition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to real server, where the gateway sees both directions.
    Input = 0,
    /// Real server to client.
    Output = 1,
    /// Client to real server, where replies bypass the gateway (DR, TUN).
    InputOnly = 2,
}

/// TCP flag bits (RFC 9293 §3.1).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

use State::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `TABLE[dir][event][state]`, events: syn, fin, ack, rst; states in
/// `State` order from `None` to `SynAck`.
#[rustfmt::skip]
const TABLE: [[[State; 11]; 4]; 3] = [
    // INPUT:  NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [
        /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT: NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [
        /*syn*/ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// The next state after a packet with TCP `flags` from `dir`.
/// A packet with none of SYN/FIN/ACK/RST leaves the state unchanged. The
/// kernel's `set_tcp_state` moves such a connection to CLOSE; the
/// endpoints drop a segment without ACK once synchronised (RFC 9293
/// §3.10.7.4), so here it ends nothing: one spoofed flagless segment must
/// not cut an established session's timeout to CLOSE's 10 s.
#[inline]
pub fn next(state: State, dir: Dir, tcp_flags: u8) -> State {
    let event = EVENT[usize::from(tcp_flags & (flags::FIN | flags::SYN | flags::RST | flags::ACK)) & 0x1f];
    if event == NO_EVENT || state == State::Udp {
        return state;
    }
    TABLE[dir as usize][usize::from(event)][state as usize]
}

/// No table event: none of SYN/FIN/ACK/RST is set.
const NO_EVENT: u8 = 4;

/// The table event of a packet, by its FIN, SYN, RST and ACK bits (ACK is
/// 0x10, so the index is `flags & 0x17`): the same precedence as IPVS,
/// RST, then SYN, then FIN, then ACK. One load instead of four branches.
const EVENT: [u8; 32] = {
    let mut t = [NO_EVENT; 32];
    let mut f = 0;
    while f < 32 {
        let f8 = f as u8;
        t[f] = if f8 & flags::RST != 0 {
            3
        } else if f8 & flags::SYN != 0 {
            0
        } else if f8 & flags::FIN != 0 {
            1
        } else if f8 & flags::ACK != 0 {
            2
        } else {
            NO_EVENT
        };
        f += 1;
    }
    t
};

/// Per-state timeouts in seconds (`[timeouts]` in the config).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    pub none: u32,
    pub established: u32,
    pub syn_sent: u32,
    pub syn_recv: u32,
    pub fin_wait: u32,
    pub time_wait: u32,
    pub close: u32,
    pub close_wait: u32,
    pub last_ack: u32,
    pub listen: u32,
    pub synack: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    /// The kernel's defaults (`tcp_timeouts`, `udp_timeouts`).
    fn default() -> Self {
        Timeouts {
            none: 2,
            established: 900,
            syn_sent: 120,
            syn_recv: 60,
            fin_wait: 120,
            time_wait: 120,
            close: 10,
            close_wait: 60,
            last_ack: 30,
            listen: 120,
            synack: 120,
            udp: 300,
        }
    }
}

impl Timeouts {
    /// Timeout of `state`, in milliseconds.
    #[inline]
    pub fn of_ms(&self, state: State) -> u64 {
        let s = match state {
            State::None => self.none,
            State::Established => self.established,
            State::SynSent => self.syn_sent,
            State::SynRecv => self.syn_recv,
            State::FinWait => self.fin_wait,
            State::TimeWait => self.time_wait,
            State::Close => self.close,
            State::CloseWait => self.close_wait,
            State::LastAck => self.last_ack,
            State::Listen => self.listen,
            State::SynAck => self.synack,
            State::Udp => self.udp,
        };
        s as u64 * 1000
    }

    /// The longest timeout, in milliseconds.
    pub fn max_ms(&self) -> u64 {
        [
            self.none,
            self.established,
            self.syn_sent,
            self.syn_recv,
            self.fin_wait,
            self.time_wait,
            self.close,
            self.close_wait,
            self.last_ack,
            self.listen,
            self.synack,
            self.udp,
        ]
        .into_iter()
        .max()
        .unwrap_or(0) as u64
            * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;

    #[test]
    fn three_way_handshake_and_close_seen_from_both_sides() {
        let mut s = next(State::None, Dir::Input, SYN);
        assert_eq!(s, State::SynRecv);
        s = next(s, Dir::Output, SYN | ACK);
        assert_eq!(s, State::SynRecv);
        s = next(s, Dir::Input, ACK);
        assert_eq!(s, State::Established);
        s = next(s, Dir::Input, FIN | ACK);
        assert_eq!(s, State::CloseWait);
        s = next(s, Dir::Output, FIN | ACK);
        assert_eq!(s, State::TimeWait);
        s = next(s, Dir::Input, ACK);
        assert_eq!(s, State::TimeWait);
    }

    #[test]
    fn reset_closes_and_bare_flags_keep_state() {
        assert_eq!(next(State::Established, Dir::Output, RST | ACK), State::Close);
        assert_eq!(next(State::Established, Dir::Input, 0), State::Established);
        assert_eq!(next(State::Udp, Dir::Input, SYN), State::Udp);
    }

    #[test]
    fn input_only_fin_goes_to_fin_wait() {
        assert_eq!(next(State::Established, Dir::InputOnly, FIN | ACK), State::FinWait);
    }

    #[test]
    fn all_lists_every_state_in_discriminant_order() {
        for (i, s) in State::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }

    #[test]
    fn default_timeouts_match_the_kernel() {
        let t = Timeouts::default();
        assert_eq!(t.of_ms(State::Established), 900_000);
        assert_eq!(t.of_ms(State::SynRecv), 60_000);
        assert_eq!(t.of_ms(State::Udp), 300_000);
        assert_eq!(t.max_ms(), 900_000);
    }
}

//! TCP sequence validation for sessions that see both directions (FULLNAT,
//! NAT), after RFC 5961: a spoofed RST, FIN or data segment must carry a
//! sequence number close to what its claimed sender has really sent.
//!
//! The session has no room for two 32-bit sequence numbers and windows (it
//! stays one 64-byte line), so it keeps, per direction, the top 16 bits of
//! a sequence number (in units of 64 KiB), plus a "known" flag bit:
//!
//! - **the client's segments** are checked against what the real server
//!   has *acknowledged* (its highest ACK number, the server's `RCV.NXT` as
//!   the gateway saw it: [`acked`], [`check_acked`]). Nothing the client
//!   side sends moves that reference, so segments spoofed from the client
//!   cannot drag it: a reference the accepted segments themselves advanced
//!   (up to 16 MiB per segment) could be walked away from the real client
//!   by a blind sweep of about 130 empty ACKs, after which the real
//!   client's segments were dropped and a RST at the known place closed the
//!   session. The server's side is not reachable that way: its packets
//!   arrive on the inside port from the real server's address (the reverse
//!   path check) and, FULLNAT, to a random local port;
//! - **the real server's segments** are checked against the highest
//!   sequence number the server has used ([`check`], which advances it).
//!
//! The checks, in units:
//!
//! - a RST is accepted only within one unit of the reference (its sequence
//!   number lies in a window of at most 192 KiB around what its receiver
//!   expects, RFC 5961 §3.2's "in the window"; a blind attacker hits it
//!   with a chance of 3 in 65536 per try, and must first know the
//!   four-tuple, which the reverse-path check and random local ports hide).
//!   RFC 5961 resets only on an exact match and answers other in-window
//!   RSTs with a challenge ACK; the gateway cannot tell an exact match at
//!   this precision, so it lets an in-window RST through to the endpoint,
//!   which applies RFC 5961 itself, and drops the rest
//!   (`drop_tcp_rst_out_of_window`). A client's RST sent with more than a
//!   unit in flight unacknowledged is dropped; the client's stack answers
//!   the server's next segment with a RST at its acknowledgement number,
//!   which is in the window;
//! - any other segment (data, FIN) more than [`MAX_AHEAD_UNITS`] units away
//!   from the reference is dropped (`drop_tcp_out_of_window`) and moves
//!   neither the state nor a reference.
//!
//! The client's SYN gives its reference (its ISN + 1, what the server will
//! acknowledge first); before the server's first segment (its SYN-ACK)
//! nothing of the server's is checked: a server refusing a SYN answers
//! with RST seq 0.

use crate::counters::Drop;
use crate::tcp_state::State;

/// Bits of a sequence number below a unit.
pub const UNIT_SHIFT: u32 = 16;

/// How far (in 64 KiB units, so 16 MiB) a data or FIN segment may lie from
/// its sender's mark: more than any window in flight on the paths a load
/// balancer serves (Linux's largest default receive buffer is 6 MiB).
pub const MAX_AHEAD_UNITS: i16 = 256;

/// What [`check`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// In the window; the sender's mark becomes `mark`.
    Accept { mark: u16 },
    /// A RST outside the window.
    RstOutOfWindow,
    /// A data or FIN segment far outside the window.
    OutOfWindow,
}

/// Why `seq` is outside the window around `mark` (a RST: one unit either
/// way; anything else: [`MAX_AHEAD_UNITS`]), or `None`.
#[inline(always)]
fn outside(mark: u16, seq: u32, rst: bool) -> Option<Verdict> {
    let d = ((seq >> UNIT_SHIFT) as u16).wrapping_sub(mark) as i16;
    if rst {
        return (!(-1..=1).contains(&d)).then_some(Verdict::RstOutOfWindow);
    }
    (!(-MAX_AHEAD_UNITS..=MAX_AHEAD_UNITS).contains(&d)).then_some(Verdict::OutOfWindow)
}

/// Checks a segment of `seq`, occupying `len` sequence numbers (payload,
/// plus one each for SYN and FIN), against its sender's `mark` (`None` if
/// no segment of that direction was seen yet).
#[inline]
pub fn check(mark: Option<u16>, seq: u32, len: u32, rst: bool) -> Verdict {
    let end = (seq.wrapping_add(len) >> UNIT_SHIFT) as u16;
    let Some(mark) = mark else {
        return Verdict::Accept { mark: end };
    };
    if let Some(v) = outside(mark, seq, rst) {
        return v;
    }
    // The mark only moves forward (sequence-number arithmetic, RFC 1982),
    // never by a RST.
    let ahead = !rst && end.wrapping_sub(mark) as i16 > 0;
    Verdict::Accept { mark: if ahead { end } else { mark } }
}

/// Checks a client's segment at `seq` against `acked`: the unit of the
/// highest acknowledgement number the real server has sent ([`acked`];
/// `None` before the server acknowledged anything). Never moves it.
#[inline]
pub fn check_acked(acked: Option<u16>, seq: u32, rst: bool) -> Verdict {
    let Some(mark) = acked else {
        return Verdict::Accept { mark: 0 };
    };
    outside(mark, seq, rst).unwrap_or(Verdict::Accept { mark })
}

/// The drop counted for a segment [`check`] or [`check_acked`] refused.
fn refused(v: Verdict) -> Drop {
    match v {
        Verdict::RstOutOfWindow => Drop::TcpRstOutOfWindow,
        _ => Drop::TcpOutOfWindow,
    }
}

/// A SYN that starts a direction's sequence space afresh: outside an
/// established connection (a new ISN: the server's SYN-ACK, a client
/// reusing its port after TIME_WAIT).
#[inline(always)]
fn fresh_syn(tcp_flags: u8, state: State) -> bool {
    tcp_flags & crate::tcp_state::flags::SYN != 0
        && !matches!(state, State::Established | State::FinWait | State::CloseWait | State::LastAck)
}

/// The client's reference ([`check_acked`]) after the real server
/// acknowledged `ack`: it only moves forward (sequence-number arithmetic).
#[inline]
pub fn acked(reference: Option<u16>, ack: u32) -> u16 {
    let unit = (ack >> UNIT_SHIFT) as u16;
    match reference {
        Some(r) if (unit.wrapping_sub(r) as i16) <= 0 => r,
        _ => unit,
    }
}

/// A session's marks and their "known" bits ([`crate::session::Flags`]'s
/// `SEQ_IN` for the client's reference, `SEQ_OUT` for the server's mark),
/// for one segment's check.
pub struct Marks<'a> {
    pub flags: &'a mut crate::session::Flags,
    pub marks: &'a mut [u16; 2],
}

impl Marks<'_> {
    /// Checks a segment (`seq`, sequence numbers it occupies, `ack`) of the
    /// server (`out`) or the client, received in session state `state`,
    /// and moves the marks it may move. A SYN outside an established
    /// connection starts its direction afresh.
    #[inline(always)]
    pub fn track(
        self,
        out: bool,
        state: State,
        (seq, len, ack): (u32, u32, u32),
        tcp_flags: u8,
    ) -> Result<(), Drop> {
        use crate::session::Flags;
        use crate::tcp_state::flags::{ACK, RST};
        let rst = tcp_flags & RST != 0;
        let fresh = fresh_syn(tcp_flags, state);
        if !out {
            if fresh {
                // The client's new ISN: what the server will acknowledge
                // first, until it does.
                self.marks[0] = (seq.wrapping_add(len) >> UNIT_SHIFT) as u16;
                self.flags.insert(Flags::SEQ_IN);
                return Ok(());
            }
            // Before the real server has answered, a client sends only its
            // SYN (or a RST giving up): an ACK or FIN then is forged, and
            // would take a half-open session out of the half-open count
            // (SYN_RECV to ESTABLISHED or TIME_WAIT: a SYN flood past its
            // limit at two packets a session). A SYNPROXY session exists only
            // after a valid cookie, its server's SYN-ACK never comes here.
            if !rst && !self.flags.contains(Flags::SEQ_OUT) && !self.flags.contains(Flags::SYNPROXY) {
                return Err(Drop::TcpBeforeServer);
            }
            let reference = self.flags.contains(Flags::SEQ_IN).then_some(self.marks[0]);
            return match check_acked(reference, seq, rst) {
                Verdict::Accept { .. } => Ok(()),
                v => Err(refused(v)),
            };
        }
        let mark = (self.flags.contains(Flags::SEQ_OUT) && !fresh).then_some(self.marks[1]);
        match check(mark, seq, len, rst) {
            Verdict::Accept { mark: m } => {
                self.marks[1] = m;
                self.flags.insert(Flags::SEQ_OUT);
                if tcp_flags & ACK != 0 && !rst {
                    let known = self.flags.contains(Flags::SEQ_IN) && !fresh;
                    self.marks[0] = acked(known.then_some(self.marks[0]), ack);
                    self.flags.insert(Flags::SEQ_IN);
                }
                Ok(())
            }
            v => Err(refused(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blind sweep of segments spoofed from the client (one every 2^24
    /// sequence numbers, all the space) never moves the client's
    /// reference: the real client's next segment and RST still pass.
    #[test]
    fn a_sweep_of_spoofed_client_segments_never_moves_the_reference() {
        let reference = Some(acked(None, 1001));
        for k in 0..=255u32 {
            let v = check_acked(reference, k << 24, false);
            assert!(matches!(v, Verdict::Accept { mark: 0 } | Verdict::OutOfWindow), "{k}: {v:?}");
        }
        assert_eq!(check_acked(reference, 1001, false), Verdict::Accept { mark: 0 });
        assert_eq!(check_acked(reference, 1005, true), Verdict::Accept { mark: 0 });
        assert_eq!(check_acked(reference, 0x8000_0000, true), Verdict::RstOutOfWindow);
    }

    #[test]
    fn the_servers_acknowledgements_move_the_reference_forward_only() {
        assert_eq!(acked(None, 5 * U + 3), 5);
        assert_eq!(acked(Some(5), 7 * U), 7);
        assert_eq!(acked(Some(7), 6 * U), 7, "an old acknowledgement");
        assert_eq!(acked(Some(u16::MAX), 2 * U), 2, "across the wrap");
        let r = Some(100);
        assert_eq!(check_acked(r, 100 * U + 10, false), Verdict::Accept { mark: 100 });
        assert_eq!(check_acked(r, (100 + 200) * U, false), Verdict::Accept { mark: 100 }, "data in flight");
        assert_eq!(check_acked(r, (100 + 300) * U, false), Verdict::OutOfWindow);
        assert_eq!(check_acked(r, 99 * U, true), Verdict::Accept { mark: 100 });
        assert_eq!(check_acked(r, 102 * U, true), Verdict::RstOutOfWindow);
        assert_eq!(check_acked(None, 0x8000_0000, true), Verdict::Accept { mark: 0 }, "nothing known yet");
    }

    const U: u32 = 1 << UNIT_SHIFT;

    #[test]
    fn the_first_segment_sets_the_mark() {
        assert_eq!(check(None, 5 * U + 7, 1, false), Verdict::Accept { mark: 5 });
        assert_eq!(check(None, 0, 0, true), Verdict::Accept { mark: 0 }, "a refusal RST");
    }

    #[test]
    fn a_rst_is_accepted_only_near_what_its_sender_has_sent() {
        let mark = Some(100);
        for seq in [100 * U, 100 * U + 1234, 99 * U, 101 * U + U - 1] {
            assert_eq!(check(mark, seq, 0, true), Verdict::Accept { mark: 100 }, "{seq}");
        }
        for seq in [0, 98 * U + U - 1, 102 * U, 0x8000_0000, u32::MAX] {
            assert_eq!(check(mark, seq, 0, true), Verdict::RstOutOfWindow, "{seq}");
        }
    }

    #[test]
    fn data_far_away_is_refused_and_near_data_moves_the_mark_forward_only() {
        let mark = Some(100);
        assert_eq!(check(mark, 100 * U + 10, 1460, false), Verdict::Accept { mark: 100 });
        assert_eq!(check(mark, 101 * U - 10, 1460, false), Verdict::Accept { mark: 101 });
        assert_eq!(check(mark, 90 * U, 1460, false), Verdict::Accept { mark: 100 }, "a retransmission");
        assert_eq!(check(mark, (100 + 300) * U, 1, false), Verdict::OutOfWindow);
        assert_eq!(check(mark, 0x8000_0000, 1, false), Verdict::OutOfWindow);
    }

    #[test]
    fn the_mark_wraps_with_the_sequence_space() {
        let mark = Some(u16::MAX);
        assert_eq!(check(mark, u32::MAX - 10, 100, false), Verdict::Accept { mark: 0 });
        assert_eq!(check(Some(0), u32::MAX - 10, 0, true), Verdict::Accept { mark: 0 });
        assert_eq!(check(Some(0), 2 * U, 0, true), Verdict::RstOutOfWindow);
    }
}

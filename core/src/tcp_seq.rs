//! TCP sequence validation for sessions that see both directions (FULLNAT,
//! NAT), after RFC 5961: a spoofed RST, FIN or data segment must carry a
//! sequence number close to what its claimed sender has really sent.
//!
//! The session has no room for two 32-bit sequence numbers and windows (it
//! stays one 64-byte line), so it keeps, per direction, the top 16 bits of
//! the highest sequence number the sender has used (`seq_end >> 16`, in
//! units of 64 KiB), plus a "known" flag bit. The checks are therefore in
//! units:
//!
//! - a RST is accepted only within one unit of that mark (its sequence
//!   number lies in a window of at most 192 KiB around what the sender has
//!   sent, RFC 5961 §3.2's "in the window"; a blind attacker hits it with a
//!   chance of 3 in 65536 per try, and must first know the four-tuple, which
//!   the reverse-path check and random local ports hide). RFC 5961 resets
//!   only on an exact match and answers other in-window RSTs with a
//!   challenge ACK; the gateway cannot tell an exact match at this
//!   precision, so it lets an in-window RST through to the endpoint, which
//!   applies RFC 5961 itself, and drops the rest (`drop_tcp_rst_out_of_window`);
//! - any other segment (data, FIN) more than [`MAX_AHEAD_UNITS`] units away
//!   from the mark is dropped (`drop_tcp_out_of_window`) and moves neither
//!   the state nor the mark.
//!
//! Before the first segment of a direction is seen (the server's SYN-ACK),
//! nothing is checked: a server refusing a SYN answers with RST seq 0.

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

/// Checks a segment of `seq`, occupying `len` sequence numbers (payload,
/// plus one each for SYN and FIN), against its sender's `mark` (`None` if
/// no segment of that direction was seen yet).
#[inline]
pub fn check(mark: Option<u16>, seq: u32, len: u32, rst: bool) -> Verdict {
    let end = (seq.wrapping_add(len) >> UNIT_SHIFT) as u16;
    let Some(mark) = mark else {
        return Verdict::Accept { mark: end };
    };
    let d = ((seq >> UNIT_SHIFT) as u16).wrapping_sub(mark) as i16;
    if rst {
        return if (-1..=1).contains(&d) { Verdict::Accept { mark } } else { Verdict::RstOutOfWindow };
    }
    if !(-MAX_AHEAD_UNITS..=MAX_AHEAD_UNITS).contains(&d) {
        return Verdict::OutOfWindow;
    }
    // The mark only moves forward (sequence-number arithmetic, RFC 1982).
    let ahead = end.wrapping_sub(mark) as i16 > 0;
    Verdict::Accept { mark: if ahead { end } else { mark } }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! SYN shedding under overload: a worker whose receive ring holds a
//! backlog answers SYNs only within a budget and drops the rest before
//! any other work, so that it reads its ring faster than a SYN flood fills
//! it and the established flows' packets behind the flood are not refused
//! by the full ring.
//!
//! A SYN a worker answers costs it the whole path (parse, checksum, flow
//! hash, session lookup, service lookup, the cookie's two SipHashes, the
//! SYN-ACK built and sent; ~750 cycles with SYNPROXY); a shed one costs
//! the receive, one look at the frame's flags byte, and the mbuf's free.
//! When a SYN flood offers more than the worker answers, the ring fills
//! and refuses whatever comes next, established packets as much as flood
//! SYNs; shedding SYNs early keeps the ring drained, and the established
//! packets get through.
//!
//! * **Overload and the quota** ([`Shed::rx_burst`]; one `Shed` per rx
//!   queue, i.e. per worker and port, since the backlog is a queue's and
//!   the other port's short bursts say nothing about it): every second
//!   receive burst in a row that came back full (the ring holds a backlog,
//!   not one burst that arrived together) lowers the worker's per-burst
//!   SYN quota by one (down to 1), a short one raises it by one; while the
//!   quota is below a whole burst ([`FULL_QUOTA`]) the worker is
//!   overloaded and answers at most that many SYNs of each
//!   burst. The quota thus settles where the worker reads its ring as fast
//!   as it fills (the backlog stays about one burst, far below the ring's
//!   size, so established packets are not refused), and a worker with room
//!   to spare is back to answering every SYN after a few short bursts. The
//!   signal is the ring itself: it costs nothing and one kind of traffic
//!   cannot fool it. (A fixed budget alone would either leave the ring
//!   overflowing or cap a worker's new connections per second far below
//!   what it makes when SYNs are all it receives.)
//! * **Which frames** ([`plain_syn`]): TCP segments with SYN and none of
//!   ACK, RST, FIN, in an untagged IPv4 frame (not a fragment) or an IPv6
//!   frame whose next header is TCP, decided on the frame's bytes before
//!   any parse, checksum or lookup: the flags byte is all that is read.
//!   A SYN creates no state beyond a cookie (SYNPROXY) or a half-open
//!   session, which a client's retransmission (Linux: after 1 s) opens
//!   again; established packets, cookie ACKs, RSTs, FINs, UDP and
//!   everything else are never shed. The decision does not know the
//!   service: under overload a plain SYN to any destination (a plain
//!   FULLNAT/NAT service, the kernel's own ports) is within the quota or
//!   shed alike.
//! * **The inbox** of packets other workers handed over (the flows this
//!   worker owns: a persistent or locality service's, or any flow with
//!   software steering) is a queue of its own, with its own `Shed`: the
//!   receiving workers forward a flood at the cost of a copy, and their
//!   rings never back up, but the owner's inbox does (a SYN flood from
//!   one source to a persistent service all goes to one worker). Each
//!   inbox burst read whole counts as a full burst, and SYNs beyond the
//!   quota are shed there before the stages; the packets of established
//!   flows behind them are not refused by the full inbox
//!   (`drop_redirect_full`). A SYN is shed at most once: the receiving
//!   worker's shed applies to its rx bursts, the owner's to its inbox.
//! * **The rate cap** ([`Shed::admit`]): while overloaded, the SYNs within
//!   the quota are also held to `workers.overload_syn_rate` per second per
//!   worker and port (a token bucket holding one millisecond's worth, at least one
//!   SYN, refilled by the poll loop's millisecond clock). This bounds the
//!   SYN-ACKs a flooded worker sends toward spoofed sources (hosts that
//!   never asked: backscatter) and the half-open sessions a flood makes;
//!   its default ([`DEFAULT_RATE`]) is above what a worker answers, so by
//!   default the quota alone decides.
//!
//! Shed SYNs count `drop_syn_shed`.
//!
//! Nothing here allocates, locks or writes memory another core reads.

use crate::tcp_state::flags as tf;

/// A per-burst SYN quota of a whole burst (`gw_dpdk::BURST`): every SYN
/// is answered, the worker is not overloaded.
pub const FULL_QUOTA: u32 = 32;

/// The default of `workers.overload_syn_rate`: SYNs a worker answers per
/// second at most while overloaded (above the 3.3 M cookies per second a
/// worker answers: by default the quota alone decides).
pub const DEFAULT_RATE: u32 = 10_000_000;

/// The accepted range of `workers.overload_syn_rate`: below 1,000 SYNs/s a
/// flooded worker takes almost no new connection; above 10 M/s is more
/// than a worker answers.
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 1_000..=10_000_000;

/// One worker's overload state and SYN budget.
#[derive(Clone, Debug)]
pub struct Shed {
    /// SYNs answered of each burst; [`FULL_QUOTA`]: not overloaded.
    quota: u32,
    /// SYNs the current burst may still have answered.
    left: u32,
    /// SYNs per second at most while overloaded.
    rate: u32,
    /// Budget left, in thousandths of a SYN (one millisecond adds `rate`).
    credit: u64,
    /// Most credit the bucket holds: one millisecond's worth, at least one SYN.
    cap: u64,
    /// Millisecond of the last refill.
    last_ms: u64,
    /// Full bursts in a row.
    full_run: u32,
}

impl Shed {
    /// A worker's shedding state, at most `rate` SYNs per second while
    /// overloaded (the configuration checked [`RATE_RANGE`]; out of it is
    /// clamped).
    pub fn new(rate: u32) -> Shed {
        let rate = rate.clamp(*RATE_RANGE.start(), *RATE_RANGE.end());
        let cap = u64::from(rate).max(1000);
        Shed { quota: FULL_QUOTA, left: FULL_QUOTA, rate, credit: cap, cap, last_ms: 0, full_run: 0 }
    }

    /// The rate cap in SYNs per second.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// SYNs answered of each burst while overloaded.
    pub fn quota(&self) -> u32 {
        self.quota
    }

    /// Whether the worker is overloaded (its quota is below a burst).
    #[inline]
    pub fn overloaded(&self) -> bool {
        self.quota < FULL_QUOTA
    }

    /// Records one receive burst at `now_ms` that came back `full` (every
    /// second full one in a row lowers the quota by one, a short one
    /// raises it by one);
    /// whether the worker is overloaded for it (then each of its frames
    /// goes through [`Shed::admit`]), the quota and the budget renewed.
    #[inline]
    pub fn rx_burst(&mut self, now_ms: u64, full: bool) -> bool {
        if !full {
            self.full_run = 0;
            self.quota = (self.quota + 1).min(FULL_QUOTA);
        } else {
            self.full_run += 1;
            if self.full_run % 2 == 0 {
                self.quota = (self.quota - 1).max(1);
            }
        }
        if !self.overloaded() {
            return false;
        }
        self.left = self.quota;
        let ms = now_ms.saturating_sub(self.last_ms);
        if ms > 0 {
            self.last_ms = now_ms;
            self.credit = (self.credit + ms.min(self.cap) * u64::from(self.rate)).min(self.cap);
        }
        true
    }

    /// Whether an overloaded worker processes `frame`: yes unless it is a
    /// plain SYN ([`plain_syn`]) beyond the burst's quota or the rate cap
    /// (the caller drops it and counts `drop_syn_shed`).
    #[inline]
    pub fn admit(&mut self, frame: &[u8]) -> bool {
        if !plain_syn(frame) {
            return true;
        }
        if self.left > 0 && self.credit >= 1000 {
            self.left -= 1;
            self.credit -= 1000;
            return true;
        }
        false
    }
}

impl Shed {
    /// The frames of `burst` an overloaded worker processes, in order:
    /// those [`Shed::admit`] lets through. The others are dropped here
    /// and counted in `shed` (the caller adds it to `drop_syn_shed`).
    #[inline]
    pub fn admitted<'a, B: AsRef<[u8]>>(
        &'a mut self,
        burst: impl Iterator<Item = B> + 'a,
        shed: &'a mut u64,
    ) -> impl Iterator<Item = B> + 'a {
        burst.filter(move |b| {
            let keep = self.admit(b.as_ref());
            *shed += u64::from(!keep);
            keep
        })
    }
}

impl Default for Shed {
    fn default() -> Self {
        Shed::new(DEFAULT_RATE)
    }
}

const ETH: usize = crate::wire::ethernet::HEADER_LEN;
/// IPv4's flags and fragment offset: MF and the offset.
const FRAG_MASK: u16 = 0x3fff;

/// Whether Ethernet frame `frame` is a TCP segment with SYN and none of
/// ACK, RST, FIN: an untagged IPv4 packet that is not a fragment, or an
/// IPv6 packet whose next header is TCP, its flags byte within the frame.
/// Reads the ethertype, the IP header's protocol (and IPv4's IHL and
/// fragment field) and the flags byte; nothing is checked beyond (a
/// malformed frame the engine would drop may be shed instead).
#[inline]
pub fn plain_syn(frame: &[u8]) -> bool {
    // Almost every frame of an overloaded burst: untagged IPv4 without
    // options, its TCP flags byte within the first 48 bytes. One bounds
    // check and a few byte compares (an established segment of a
    // saturated worker goes through here, issue 14); anything else takes
    // the general reading.
    const PLAIN: usize = ETH + 20 + 14;
    if let Some(h) = frame.first_chunk::<PLAIN>() {
        if h[12] == 0x08 && h[13] == 0x00 && h[ETH] == 0x45 {
            // The flags first: an established segment leaves at once.
            return h[PLAIN - 1] & (tf::SYN | tf::ACK | tf::RST | tf::FIN) == tf::SYN
                && h[ETH + 9] == 6
                && u16::from_be_bytes([h[ETH + 6], h[ETH + 7]]) & FRAG_MASK == 0;
        }
    }
    plain_syn_any(frame)
}

/// [`plain_syn`] of any frame: IPv4 options, IPv6, short frames.
#[inline]
fn plain_syn_any(frame: &[u8]) -> bool {
    let Some(&[t0, t1]) = frame.get(12..14) else { return false };
    let flags_at = match [t0, t1] {
        [0x08, 0x00] => {
            let Some(ip) = frame.get(ETH..ETH + 20) else { return false };
            let ihl = usize::from(ip[0] & 0xf) * 4;
            if ip[9] != 6 || ihl < 20 || u16::from_be_bytes([ip[6], ip[7]]) & FRAG_MASK != 0 {
                return false;
            }
            ETH + ihl + 13
        }
        [0x86, 0xdd] => {
            if frame.get(ETH + 6) != Some(&6) {
                return false;
            }
            ETH + 40 + 13
        }
        _ => return false,
    };
    frame.get(flags_at).is_some_and(|f| f & (tf::SYN | tf::ACK | tf::RST | tf::FIN) == tf::SYN)
}

#[cfg(test)]
mod tests;

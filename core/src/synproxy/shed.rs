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
//! * **Overload** ([`Shed::rx_burst`]): a receive burst that came back
//!   full (the ring held at least a burst more) marks the worker
//!   overloaded; it stays so until [`CALM_BURSTS`] bursts in a row came
//!   back short. The signal is the ring itself, so it costs nothing and
//!   cannot be fooled by one kind of traffic.
//! * **Which frames** ([`plain_syn`]): TCP segments with SYN and none of
//!   ACK, RST, FIN, in an untagged IPv4 frame (not a fragment) or an IPv6
//!   frame whose next header is TCP, decided on the frame's bytes before
//!   any parse, checksum or lookup: the flags byte is all that is read.
//!   A SYN creates no state beyond a cookie (SYNPROXY) or a half-open
//!   session, which a client's retransmission (Linux: after 1 s) opens
//!   again; established packets, cookie ACKs, RSTs, FINs, UDP and
//!   everything else are never shed. The decision does not know the
//!   service: under overload a plain SYN to any destination (a plain
//!   FULLNAT/NAT service, the kernel's own ports) is within the budget
//!   or shed alike. Redirected packets (another worker read them) are not
//!   shed again.
//! * **The budget** ([`Shed::admit`]): a token bucket of
//!   `workers.overload_syn_rate` SYNs per second per worker, holding at
//!   most one millisecond's worth (at least one SYN), refilled by the
//!   poll loop's millisecond clock. A worker that is not overloaded
//!   answers every SYN and spends no token.
//!
//! Shed SYNs count `drop_syn_shed`. The budget also bounds the SYN-ACKs a
//! worker sends while flooded: a flood from spoofed sources (whose
//! SYN-ACKs go to hosts that never asked, backscatter) makes at most
//! `overload_syn_rate` of them per worker.
//!
//! Nothing here allocates, locks or writes memory another core reads.

use crate::tcp_state::flags as tf;

/// Short receive bursts in a row after which a worker is no longer
/// overloaded.
pub const CALM_BURSTS: u32 = 8;

/// The default of `workers.overload_syn_rate`: SYNs a worker answers per
/// second while overloaded.
pub const DEFAULT_RATE: u32 = 100_000;

/// The accepted range of `workers.overload_syn_rate`: below 1,000 SYNs/s a
/// flooded worker takes almost no new connection; above 10 M/s there is
/// nothing left to shed (a worker answers a few million per second).
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 1_000..=10_000_000;

/// One worker's overload state and SYN budget.
#[derive(Clone, Debug)]
pub struct Shed {
    /// SYNs per second while overloaded.
    rate: u32,
    /// Budget left, in thousandths of a SYN (one millisecond adds `rate`).
    credit: u64,
    /// Most credit the bucket holds: one millisecond's worth, at least one SYN.
    cap: u64,
    /// Millisecond of the last refill.
    last_ms: u64,
    /// Short bursts since the last full one; overloaded while below
    /// [`CALM_BURSTS`].
    calm: u32,
}

impl Shed {
    /// A worker's shedding state, `rate` SYNs per second while overloaded
    /// (the configuration checked [`RATE_RANGE`]; out of it is clamped).
    pub fn new(rate: u32) -> Shed {
        let rate = rate.clamp(*RATE_RANGE.start(), *RATE_RANGE.end());
        let cap = u64::from(rate).max(1000);
        Shed { rate, credit: cap, cap, last_ms: 0, calm: CALM_BURSTS }
    }

    /// The budget in SYNs per second.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Whether the worker is overloaded (the last full burst is fewer
    /// than [`CALM_BURSTS`] bursts ago).
    #[inline]
    pub fn overloaded(&self) -> bool {
        self.calm < CALM_BURSTS
    }

    /// Records one receive burst at `now_ms` that came back `full`;
    /// whether the worker is overloaded for it (then each of its frames
    /// goes through [`Shed::admit`]), the budget refilled.
    #[inline]
    pub fn rx_burst(&mut self, now_ms: u64, full: bool) -> bool {
        self.calm = if full { 0 } else { self.calm.saturating_add(1) };
        if !self.overloaded() {
            return false;
        }
        let ms = now_ms.saturating_sub(self.last_ms);
        if ms > 0 {
            self.last_ms = now_ms;
            self.credit = (self.credit + ms.min(self.cap) * u64::from(self.rate)).min(self.cap);
        }
        true
    }

    /// Whether an overloaded worker processes `frame`: yes unless it is a
    /// plain SYN ([`plain_syn`]) beyond the budget (the caller drops it
    /// and counts `drop_syn_shed`).
    #[inline]
    pub fn admit(&mut self, frame: &[u8]) -> bool {
        if !plain_syn(frame) {
            return true;
        }
        if self.credit >= 1000 {
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

//! IP reassembly and fragmentation (RFC 791 §3.2, RFC 815; for IPv6
//! RFC 8200 §4.5), in bounded, preallocated memory.
//!
//! [`Reassembler`] is one worker's table of datagrams being reassembled: a
//! fixed number of slots, each with its own buffer big enough for the
//! largest datagram (65,535 bytes of IP plus the Ethernet header and room
//! for an outer tunnel header) and a bitmap of the 8-byte units received.
//! Everything is allocated by [`Reassembler::new`]; inserting a fragment
//! only copies bytes and flips bits. The limits are the kernel's
//! (`net.ipv4.ipfrag_high_thresh`, 4 MiB, is 64 slots here;
//! `net.ipv4.ipfrag_time`, 30 s, is the timeout):
//!
//! - a fragment that overlaps data already received (partly: RFC 5722's
//!   rule, which Linux also applies to IPv4 since 4.19) discards the whole
//!   datagram; an exact duplicate is dropped alone and the datagram kept;
//! - a fragment ending past 65,535 bytes of IP, a fragment past the end
//!   a last fragment announced, a second different end, a non-last
//!   fragment whose length is not a multiple of 8 or an empty fragment are
//!   dropped, and the datagram with it (except for the multiple-of-8 and
//!   empty cases, which only drop the fragment);
//! - when every slot is in use, the oldest incomplete datagram is evicted
//!   for the newcomer (`drop_frag_evicted`). A flood of first fragments
//!   with random IDs costs the table nothing beyond its size, but it does
//!   evict real datagrams still waiting for a fragment, as Linux's
//!   evictor frees the oldest queues above `ipfrag_high_thresh`: the
//!   defence is `fragments.datagrams` (more slots than a flood can cycle
//!   within a datagram's arrival) and the timeout, not fairness per source;
//! - a datagram still incomplete after the timeout is dropped by
//!   [`Reassembler::expire`]; an IPv6 one after twice the timeout (60 s
//!   by default: RFC 8200 §4.5, Linux's `ip6frag_time`).
//!
//! One table serves both versions: the caller gives the key (addresses as
//! `u128`, [`FragKey::v6`] keeping the families apart), the headers to
//! keep (from the first fragment) and the fragment's offset, MF bit and
//! payload; fixing up the reassembled header is the caller's
//! ([`finish_ipv4`], [`finish_ipv6`]). The table also remembers the
//! largest fragment it received for each datagram ([`Insert::Complete`]'s
//! `largest`, Linux's `frag_max_size`): an IPv6 datagram is fragmented
//! again at that size toward its real server, never larger.
//!
//! Output fragmentation splits one packet into fragments no longer than an
//! MTU, each written into a fresh buffer the caller allocates: the lengths
//! from [`fragment_lens`], each fragment by [`write_fragment`] (IPv4) or
//! [`write_fragment6`] (IPv6: a fragment header after the fixed header,
//! RFC 8200 §4.5).

use std::ops::Range;

use rustc_hash::FxHashMap;

use crate::counters::Drop;
use crate::wire::ethernet::{self, EtherType};
use crate::wire::{ipv4, ipv6};
use crate::worker::PacketBuf;

/// Largest IPv4 datagram (total length is 16 bits).
pub const MAX_DATAGRAM: usize = 65_535;
/// Longest header kept from a first fragment: IPv4's 60 bytes (IHL 15),
/// or IPv6's 40 and up to 80 bytes of extension headers before the
/// fragment header.
const MAX_HEADER: usize = 120;
/// Room kept in front of a reassembled frame for an outer header (TUN's
/// IPv4 or IPv6 header).
pub const HEADROOM: usize = 40;
/// Where the payload starts in a slot's buffer: headroom, Ethernet header,
/// the longest IP header.
const PAYLOAD_AT: usize = HEADROOM + ethernet::HEADER_LEN + MAX_HEADER;
/// Bytes of one slot's buffer.
pub const SLOT_BYTES: usize = PAYLOAD_AT + MAX_DATAGRAM;
/// 8-byte units of the largest payload (fragment offsets count these).
const UNITS: usize = MAX_DATAGRAM.div_ceil(8) + 1;
const WORDS: usize = UNITS.div_ceil(64);

/// Settings of one worker's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragConfig {
    /// Datagrams reassembled at once (slots); 0 turns reassembly off.
    pub datagrams: usize,
    /// How long an incomplete datagram is kept, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for FragConfig {
    /// The kernel's defaults: 4 MiB (64 slots of 64 KiB), 30 s.
    fn default() -> Self {
        FragConfig { datagrams: 64, timeout_ms: 30_000 }
    }
}

impl FragConfig {
    /// Bytes the table allocates per worker.
    pub fn memory_bytes(&self) -> usize {
        (self.datagrams + usize::from(self.datagrams > 0)) * SLOT_BYTES + self.datagrams * WORDS * 8
    }
}

/// What identifies the fragments of one datagram (RFC 791: source,
/// destination, protocol, identification; RFC 8200: source, destination,
/// identification, with `proto` 0: IPv6 addresses fit the `u128`s and its
/// 32-bit identification the `id`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    pub id: u32,
    /// An IPv6 datagram (it waits twice the timeout).
    pub v6: bool,
}

/// One fragment as the caller parsed it.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    /// Ethernet and IP headers (used from the fragment at offset 0).
    pub headers: &'a [u8],
    /// Bytes of IP of the fragment as received (for `largest`).
    pub size: usize,
    /// Offset of the payload in the datagram, in bytes.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
    pub payload: &'a [u8],
}

/// The result of [`Reassembler::insert`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Insert {
    /// Kept; the datagram is not complete yet.
    Held,
    /// Complete: the frame (headers of the first fragment, then the whole
    /// payload) is `range` of [`Reassembler::out`]; `headers` bytes of it
    /// are headers, and it arrived on `port`; its largest fragment had
    /// `largest` bytes of IP. Valid until the next insert.
    Complete { range: Range<usize>, headers: usize, port: u16, largest: usize },
    /// Not kept, for this reason; `discarded` if the datagram it belonged
    /// to was dropped with it.
    Drop { why: Drop, discarded: bool },
}

#[derive(Clone, Copy, Debug, Default)]
struct Meta {
    key: FragKey,
    born_ms: u64,
    /// Bytes of headers kept (0 until the first fragment arrived).
    headers: usize,
    port: u16,
    /// Payload length, known once the last fragment arrived.
    total: Option<usize>,
    /// Payload bytes received, and the furthest end seen.
    have: usize,
    max_end: usize,
    /// The largest fragment, bytes of IP.
    largest: usize,
    live: bool,
}

/// Counts of datagrams the table dropped on its own (not for the fragment
/// being inserted), for the caller's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub evicted: u64,
    pub timed_out: u64,
}

/// One worker's reassembly table (see the module docs).
pub struct Reassembler {
    cfg: FragConfig,
    meta: Box<[Meta]>,
    bits: Box<[[u64; WORDS]]>,
    bufs: Box<[Box<[u8]>]>,
    /// The completed datagram (swapped with its slot's buffer).
    out: Box<[u8]>,
    index: FxHashMap<FragKey, u32>,
    free: Vec<u32>,
    dropped: Dropped,
    peak: usize,
}

impl Reassembler {
    /// A table of `cfg.datagrams` slots, all memory allocated now.
    pub fn new(cfg: FragConfig) -> Reassembler {
        let n = cfg.datagrams;
        let buf = || vec![0u8; SLOT_BYTES].into_boxed_slice();
        Reassembler {
            cfg,
            meta: vec![Meta::default(); n].into_boxed_slice(),
            bits: vec![[0u64; WORDS]; n].into_boxed_slice(),
            bufs: (0..n).map(|_| buf()).collect(),
            out: if n > 0 { buf() } else { Box::default() },
            // Twice the slots: removals leave tombstones, and hashbrown
            // cleans them in place (no allocation) only while the table
            // is at most half full.
            index: FxHashMap::with_capacity_and_hasher(2 * (n + 1), Default::default()),
            free: (0..n as u32).rev().collect(),
            dropped: Dropped::default(),
            peak: 0,
        }
    }

    /// Whether reassembly is on (at least one slot).
    pub fn enabled(&self) -> bool {
        self.cfg.datagrams > 0
    }
    /// Slots.
    pub fn capacity(&self) -> usize {
        self.cfg.datagrams
    }
    /// Datagrams being reassembled now.
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    /// Most datagrams ever held at once.
    pub fn peak(&self) -> usize {
        self.peak
    }
    /// Bytes allocated.
    pub fn memory_bytes(&self) -> usize {
        self.cfg.memory_bytes()
    }
    /// Datagrams evicted and timed out since the last call.
    pub fn take_dropped(&mut self) -> Dropped {
        std::mem::take(&mut self.dropped)
    }
    /// The buffer of the last completed datagram.
    pub fn out(&mut self) -> &mut [u8] {
        &mut self.out
    }
    /// Moves the completed datagram's buffer out (no allocation: an empty
    /// box takes its place), to process it while the table is borrowed
    /// elsewhere; give it back with [`Reassembler::put_out`].
    pub fn take_out(&mut self) -> Box<[u8]> {
        std::mem::take(&mut self.out)
    }
    pub fn put_out(&mut self, b: Box<[u8]>) {
        self.out = b;
    }

    fn release(&mut self, i: usize) {
        let m = &mut self.meta[i];
        self.index.remove(&m.key);
        m.live = false;
        self.bits[i] = [0; WORDS];
        self.free.push(i as u32);
    }

    /// A slot for `key`: its own, a free one, or the oldest one's.
    fn slot(&mut self, now: u64, key: FragKey) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i as usize;
        }
        let i = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                let oldest = (0..self.meta.len()).min_by_key(|&i| self.meta[i].born_ms).unwrap_or(0);
                self.release(oldest);
                self.dropped.evicted += 1;
                self.free.pop().unwrap_or(oldest as u32) as usize
            }
        };
        self.meta[i] = Meta { key, born_ms: now, live: true, ..Meta::default() };
        self.index.insert(key, i as u32);
        self.peak = self.peak.max(self.index.len());
        i
    }

    /// Takes one fragment of datagram `key` received on `port`.
    pub fn insert(&mut self, now: u64, port: u16, key: FragKey, f: &Fragment<'_>) -> Insert {
        if self.meta.is_empty() {
            return Insert::Drop { why: Drop::Fragment, discarded: false };
        }
        let len = f.payload.len();
        if len == 0 || (f.more && len % 8 != 0) || f.offset % 8 != 0 {
            return Insert::Drop { why: Drop::FragMalformed, discarded: false };
        }
        let end = f.offset + len;
        if end > MAX_DATAGRAM || f.headers.len() > PAYLOAD_AT - HEADROOM {
            let discarded = self.discard(&key);
            return Insert::Drop { why: Drop::FragOversized, discarded };
        }
        let i = self.slot(now, key);
        let m = self.meta[i];
        let bad_end = match m.total {
            Some(t) => end > t || (!f.more && end != t),
            None => !f.more && m.max_end > end,
        };
        if bad_end {
            self.release(i);
            return Insert::Drop { why: Drop::FragMalformed, discarded: true };
        }
        let units = f.offset / 8..end.div_ceil(8);
        let set = count_set(&self.bits[i], units.clone());
        if set == units.len() {
            return Insert::Drop { why: Drop::FragDuplicate, discarded: false };
        }
        if set > 0 {
            self.release(i);
            return Insert::Drop { why: Drop::FragOverlap, discarded: true };
        }
        set_range(&mut self.bits[i], units);
        let buf = &mut self.bufs[i];
        buf[PAYLOAD_AT + f.offset..PAYLOAD_AT + end].copy_from_slice(f.payload);
        let m = &mut self.meta[i];
        if f.offset == 0 {
            buf[PAYLOAD_AT - f.headers.len()..PAYLOAD_AT].copy_from_slice(f.headers);
            m.headers = f.headers.len();
            m.port = port;
        }
        m.have += len;
        m.max_end = m.max_end.max(end);
        m.largest = m.largest.max(f.size);
        if !f.more {
            m.total = Some(end);
        }
        let m = *m;
        match m.total {
            Some(total) if m.have == total && m.headers > 0 => {
                std::mem::swap(&mut self.out, &mut self.bufs[i]);
                self.release(i);
                let start = PAYLOAD_AT - m.headers;
                let range = start..PAYLOAD_AT + total;
                Insert::Complete { range, headers: m.headers, port: m.port, largest: m.largest }
            }
            _ => Insert::Held,
        }
    }

    /// An atomic IPv6 fragment (offset 0, M clear: RFC 6946), processed
    /// at once and apart from any datagram of the same key: `headers` and
    /// `payload` copied into [`Reassembler::out`], as a completed datagram.
    pub fn single(&mut self, port: u16, headers: &[u8], payload: &[u8]) -> Insert {
        let (h, len) = (headers.len(), payload.len());
        if self.out.is_empty() || h > PAYLOAD_AT - HEADROOM || len > MAX_DATAGRAM {
            return Insert::Drop { why: Drop::Fragment, discarded: false };
        }
        self.out[PAYLOAD_AT - h..PAYLOAD_AT].copy_from_slice(headers);
        self.out[PAYLOAD_AT..PAYLOAD_AT + len].copy_from_slice(payload);
        let range = PAYLOAD_AT - h..PAYLOAD_AT + len;
        Insert::Complete { range, headers: h, port, largest: 0 }
    }

    /// Drops datagram `key` if held; whether it was.
    pub fn discard(&mut self, key: &FragKey) -> bool {
        match self.index.get(key) {
            Some(&i) => {
                self.release(i as usize);
                true
            }
            None => false,
        }
    }

    /// Drops datagrams older than the timeout; how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut n = 0;
        for i in 0..self.meta.len() {
            let m = &self.meta[i];
            let timeout = if m.key.v6 { 2 * self.cfg.timeout_ms } else { self.cfg.timeout_ms };
            if m.live && now.saturating_sub(m.born_ms) >= timeout {
                self.release(i);
                n += 1;
            }
        }
        self.dropped.timed_out += n as u64;
        n
    }
}

/// A reassembled frame in its table buffer, with the room in front for an
/// outer header: a [`PacketBuf`] the worker runs through the engine and
/// emits as fragments.
pub struct Datagram {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The port its first fragment arrived on.
    pub port: u16,
    /// Bytes of IP of its largest fragment (0 if it was not fragmented:
    /// an atomic fragment).
    pub largest: usize,
    /// Its identification (IPv6: handed to another worker as fragments
    /// again, they keep it).
    pub ident: u32,
}

impl Datagram {
    pub(crate) fn new(
        buf: Box<[u8]>,
        range: Range<usize>,
        port: u16,
        largest: usize,
        ident: u32,
    ) -> Datagram {
        Datagram { buf, start: range.start, end: range.end, port, largest, ident }
    }
    /// The buffer, for [`Reassembler::put_out`].
    pub fn into_buffer(self) -> Box<[u8]> {
        self.buf
    }
}

impl AsRef<[u8]> for Datagram {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

impl AsMut<[u8]> for Datagram {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
}

impl PacketBuf for Datagram {
    fn set_len(&mut self, len: usize) -> bool {
        if self.start + len > self.buf.len() {
            return false;
        }
        self.end = self.start + len;
        true
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn truncate(&mut self, len: usize) {
        self.end = self.end.min(self.start + len);
    }
    fn adj(&mut self, n: usize) -> bool {
        if self.start + n > self.end {
            return false;
        }
        self.start += n;
        true
    }
}

fn count_set(bits: &[u64; WORDS], r: Range<usize>) -> usize {
    r.filter(|&u| bits[u / 64] & (1 << (u % 64)) != 0).count()
}

fn set_range(bits: &mut [u64; WORDS], r: Range<usize>) {
    for u in r {
        bits[u / 64] |= 1 << (u % 64);
    }
}

/// Makes the reassembled IPv4 frame `frame` (Ethernet header, the first
/// fragment's IP header, the whole payload) one unfragmented datagram:
/// total length, MF and offset cleared (DF kept), checksum. `Err` if the
/// datagram exceeds 65,535 bytes.
pub fn finish_ipv4(frame: &mut [u8]) -> Result<(), Drop> {
    let tl = frame.len() - ethernet::HEADER_LEN;
    if tl > MAX_DATAGRAM {
        return Err(Drop::FragOversized);
    }
    let mut ip = ipv4::Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..]);
    ip.set_total_len(tl as u16);
    ip.set_more_frags(false);
    ip.set_frag_offset(0);
    ip.fill_checksum();
    Ok(())
}

/// Payload bytes per fragment (a multiple of 8) for a header of `hl`
/// bytes and `mtu` bytes of IP; 0 if not even 8 fit.
fn per_fragment(hl: usize, mtu: usize) -> usize {
    mtu.saturating_sub(hl) & !7
}

/// How packet `frame` splits into fragments of at most `mtu` bytes of IP:
/// the frame length of each, for [`write_fragment`] or [`write_fragment6`].
/// Empty if `mtu` leaves no room for 8 bytes of payload.
///
/// IPv4 (Ethernet header, IP header, payload; it may itself be a fragment,
/// RFC 791 §3.2): options are repeated in every fragment (the gateway
/// forwards none it would have to strip). IPv6 (the fixed header with no
/// extension headers, else empty): each fragment is the fixed header, a
/// fragment header and a multiple of 8 bytes of the payload, the last one
/// the rest.
pub fn fragment_lens(frame: &[u8], mtu: usize) -> impl Iterator<Item = usize> {
    let l3 = &frame[ethernet::HEADER_LEN..];
    let (hl, payload, per) = if ethernet::Frame::new_unchecked(frame).ethertype() == EtherType::Ipv6 {
        let ip = ipv6::Packet::new_unchecked(l3);
        let hl = ipv6::HEADER_LEN + FRAG_HEADER6;
        let plain = !ip.next_header().is_extension();
        (hl, usize::from(ip.payload_len()), if plain { per_fragment(hl, mtu) } else { 0 })
    } else {
        let ip = ipv4::Packet::new_unchecked(l3);
        let hl = ip.header_len();
        (hl, (ip.total_len() as usize).saturating_sub(hl), per_fragment(hl, mtu))
    };
    let n = if per == 0 { 0 } else { payload.div_ceil(per).max(1) };
    (0..n).map(move |k| ethernet::HEADER_LEN + hl + per.min(payload - k * per))
}

/// Writes fragment `k` of [`fragment_lens`] into `out` (exactly that
/// fragment's length): the Ethernet header, the IP header with its total
/// length, MF and offset set and a fresh checksum, and its part of the
/// payload.
pub fn write_fragment(frame: &[u8], mtu: usize, k: usize, out: &mut [u8]) {
    let eth = ethernet::HEADER_LEN;
    let ip = ipv4::Packet::new_unchecked(&frame[eth..]);
    let hl = ip.header_len();
    let tl = ip.total_len() as usize;
    let (base, last_more) = (ip.frag_offset() as usize, ip.more_frags());
    let per = per_fragment(hl, mtu);
    let payload = &frame[eth + hl..eth + tl];
    let off = k * per;
    let chunk = out.len() - eth - hl;
    out[..eth + hl].copy_from_slice(&frame[..eth + hl]);
    out[eth + hl..].copy_from_slice(&payload[off..off + chunk]);
    let mut h = ipv4::Packet::new_unchecked(&mut out[eth..]);
    h.set_total_len((hl + chunk) as u16);
    h.set_more_frags(off + chunk < payload.len() || last_more);
    h.set_frag_offset((base + off) as u16);
    h.fill_checksum();
}

/// Makes the reassembled IPv6 frame `frame` (Ethernet header, the first
/// fragment's unfragmentable headers with the next header that named the
/// fragment header already set to the fragmentable part's, the whole
/// payload) one unfragmented datagram: its payload length. `Err` if the
/// payload exceeds 65,535 bytes.
pub fn finish_ipv6(frame: &mut [u8]) -> Result<(), Drop> {
    let len = frame.len() - ethernet::HEADER_LEN - ipv6::HEADER_LEN;
    let len = u16::try_from(len).map_err(|_| Drop::FragOversized)?;
    ipv6::Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..]).set_payload_len(len);
    Ok(())
}

/// Bytes of an IPv6 fragment header.
pub const FRAG_HEADER6: usize = 8;

/// Writes IPv6 fragment `k` of [`fragment_lens`] into `out` (exactly that
/// fragment's length): the Ethernet header, the fixed header with its
/// payload length and next header (the fragment header's), the fragment
/// header with `ident`, its offset and the M flag, and its part of the
/// payload.
pub fn write_fragment6(frame: &[u8], mtu: usize, k: usize, ident: u32, out: &mut [u8]) {
    let eth = ethernet::HEADER_LEN;
    let ip = ipv6::Packet::new_unchecked(&frame[eth..]);
    let next = ip.next_header();
    let hl = ipv6::HEADER_LEN + FRAG_HEADER6;
    let per = per_fragment(hl, mtu);
    let payload = &frame[eth + ipv6::HEADER_LEN..eth + ipv6::HEADER_LEN + usize::from(ip.payload_len())];
    let off = k * per;
    let chunk = out.len() - eth - hl;
    out[..eth + ipv6::HEADER_LEN].copy_from_slice(&frame[..eth + ipv6::HEADER_LEN]);
    let fh = &mut out[eth + ipv6::HEADER_LEN..eth + hl];
    fh[0] = next.into();
    fh[1] = 0;
    let more = u16::from(off + chunk < payload.len());
    fh[2..4].copy_from_slice(&(off as u16 | more).to_be_bytes());
    fh[4..8].copy_from_slice(&ident.to_be_bytes());
    out[eth + hl..].copy_from_slice(&payload[off..off + chunk]);
    let mut h = ipv6::Packet::new_unchecked(&mut out[eth..]);
    h.set_payload_len((FRAG_HEADER6 + chunk) as u16);
    h.set_next_header(ipv6::NextHeader::Fragment);
}

#[cfg(test)]
mod tests;

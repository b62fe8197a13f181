//! SYNPROXY (`-j enable`, DPVS's synproxy) for FULLNAT and NAT TCP
//! services of either family (FULLNAT66, NAT66 and NAT64 too): the gateway answers a client's SYN itself with a SYN cookie,
//! keeps no state for it, and opens the connection to the real server only
//! when the client's ACK carries a valid cookie. A SYN flood therefore
//! costs the real servers nothing and the gateway no session; an ACK, RST
//! or FIN flood without a valid cookie is dropped (`drop_synproxy_bad_cookie`).
//!
//! **The cookie** is Linux's (`net/ipv4/syncookies.c`): the SYN-ACK's
//! sequence number is `H1 + ISN + (count << 24) + ((H2(count) + mssind) &
//! 0xffffff)`, `count` the minute counter (`now_ms / 60000`), `mssind`
//! the index of the client's MSS in Linux's table ([`Family::mss_table`]:
//! IPv4's 536, 1300, 1440, 1460; IPv6's 1220, 1420, 1440, 8940);
//! a cookie is valid for the minute it was made and the next one (Linux's
//! `MAX_SYNCOOKIE_AGE`). `H1`, `H2` are SipHash-1-3 (std's `DefaultHasher`)
//! of the gateway-wide secret ([`crate::engine::EngineConfig::synproxy_secret`],
//! random per gatewayd run, the same on every worker so that any worker
//! can check a cookie), the 4-tuple (IPv6's addresses whole) and, for
//! `H2`, the minute counter.
//! When the client sent timestamps, the SYN-ACK's TSval carries the rest
//! as Linux's `cookie_init_timestamp`: its low 6 bits are the client's
//! window scale (0xf: none), SACK permitted (bit 4) and ECN (bit 5, always
//! 0 here); the client echoes them in every TSecr. Without timestamps only
//! the MSS survives (window scale and SACK are then not offered, as Linux).
//!
//! **The splice.** The valid ACK is turned into the client's SYN (its ISN,
//! the MSS, window scale, SACK and timestamp options from the cookie) and
//! goes through the session's normal path (scheduling, FULLNAT local
//! address, TOA/PROXY); the session is created only then. The real
//! server's SYN-ACK is turned into the client's handshake ACK (the
//! client's window and TSval of its cookie ACK), which then takes the
//! normal path too (a PROXY header goes with it). From then on, per
//! session in [`Table`] (a side table by session index that only SYNPROXY
//! sessions touch): server sequence numbers and SACK edges differ by `off`
//! = server ISN - cookie ISN (client ACKs and SACK blocks up, server
//! sequence numbers down), timestamps by `ts_off` (server TSval up, client
//! TSecr down, so that the client's PAWS sees one clock), and a server's
//! window is rescaled from its window scale to the one the gateway
//! announced ([`WSCALE`]) when they differ.
//!
//! **Data on the cookie ACK** is kept ([`Hold`]: a copy of the frame in
//! one of [`HOLD_SLOTS`] slots of [`HOLD_BYTES`], allocated once per
//! worker, `synproxy_data_held`) until the real server's SYN-ACK; then,
//! after the handshake ACK, the worker runs the kept frame through the
//! engine again as the client's segment, which the splice (and a PROXY
//! header's shift) now carries to the server. When every slot is taken
//! by a live handshake, or the frame is larger than a slot, the data is
//! left to the client's retransmission (`synproxy_data_left`). A slot is
//! free again once its data left, the server refused, or its session died
//! (a dead owner's slot is taken over). Other client segments that arrive
//! between the cookie ACK and the server's SYN-ACK are dropped
//! (`drop_synproxy_pending`): the client retransmits them. The server
//! refusing (RST) resets the client.
//!
//! **The server's answer is checked** as the client's own stack would
//! check it, since the gateway stands in for the client in that handshake
//! (RFC 793's acceptable ACK in SYN-SENT, [`answers_syn`]): a SYN-ACK or
//! RST must acknowledge exactly the SYN the gateway sent (a RST without
//! ACK is not acceptable there), and a SYN-ACK after the splice must carry
//! the server's ISN again. Anything else (spoofed toward the local
//! address, or a stale answer) is dropped (`drop_synproxy_server_ack`)
//! and sets nothing: before this check one forged SYN-ACK fixed the
//! splice's offsets and broke the connection.
//!
//! **A lost SYN is sent again** (DPVS's `syn_retry`), at most
//! [`SYN_RESENDS`] times in all (`synproxy_syn_resent`), each rebuilt
//! from the cookie as the first was:
//!
//! - from the session's timer ([`timer_resend_due`], as DPVS): while the
//!   handshake waits for the real server, the session's deadline is
//!   [`resend_timer`] after the last SYN (1, 2, then 4 s: RFC 6298's
//!   first retransmission timeout, doubled), not SYN_SENT's timeout; due,
//!   the session stays and the worker sends the SYN again; due after the
//!   last resend (8 s later), the session ends, 15 s after the first SYN.
//!   This helps a client that waits for the server to speak first (SSH,
//!   SMTP, MySQL: its ACK carried no data, it retransmits nothing);
//! - sooner on the client's retransmission ([`resend_due`]): a client
//!   segment at its first sequence number acknowledging the cookie (the
//!   cookie ACK again, or its first data) at least [`RESEND_AFTER_MS`]
//!   after the last SYN.
//!
//! The code here is the same for both families: [`Seg`] holds addresses
//! as `u128` (an IPv4 one in the low 32 bits), [`read`]/[`write`] and
//! [`read6`]/[`write6`] are the only family-specific steps, and the
//! splice works on the TCP header alone ([`splice_tcp`]). The engine's
//! IPv6 side is in `engine/synproxy6.rs`.
//!
//! The session flag [`Flags::SYNPROXY`] shares its bit with
//! [`Flags::ONE_PACKET`] (UDP only); every other session pays one test of
//! the flag byte.

use std::hash::Hasher;

use crate::client_addr::Insert;
use crate::session::Flags;
use crate::tcp_state::flags as tf;
use crate::wire::ethernet::{EtherType, HEADER_LEN as ETH};
use crate::wire::{checksum, ipv4, ipv6, tcp};

/// What the cookie's MSS encoding differs in between the families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// Linux's MSS table for cookies (`msstab` in `net/ipv4/syncookies.c`
    /// and `net/ipv6/syncookies.c`).
    pub mss_table: [u16; 4],
    /// The MSS of a SYN without the option (RFC 9293 §3.7.1: 536 for
    /// IPv4; IPv6's minimum MTU 1280 less 60, RFC 8200 §5).
    pub default_mss: u16,
    /// IP and TCP header bytes (MTU - this = the gateway's own MSS).
    pub headers: u16,
}

/// IPv4's cookie parameters.
pub const V4: Family = Family { mss_table: [536, 1300, 1440, 1460], default_mss: 536, headers: 40 };
/// IPv6's (Linux's `msstab` of `net/ipv6/syncookies.c`: 1280 - 60,
/// 1480 - 60, 1500 - 60, 9000 - 60).
pub const V6: Family = Family { mss_table: [1220, 1420, 1440, 8940], default_mss: 1220, headers: 60 };
/// IPv4's MSS table ([`V4`]).
pub const MSS_TABLE: [u16; 4] = V4.mss_table;
const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// Minutes a cookie stays valid (Linux's `MAX_SYNCOOKIE_AGE`).
const MAX_AGE: u32 = 2;
/// The window scale the gateway announces to clients that offer one.
pub const WSCALE: u8 = 7;
/// TSval bits that carry the options (Linux's `TS_OPT_*`).
const TS_WSCALE_MASK: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;
const TS_BITS: u32 = 6;
/// Tweaks separating the two hashes' keys.
const H1: u64 = 0x5159_0c00_c1e1_0001;
const H2: u64 = 0x5159_0c00_c1e1_0002;

/// The options a client offered in its SYN (parsed, or from a cookie).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Opts {
    pub mss: u16,
    /// Window scale, if offered.
    pub wscale: Option<u8>,
    pub sack: bool,
    /// TSval and TSecr, if the timestamp option is there.
    pub ts: Option<(u32, u32)>,
}

/// Parses the TCP options of `hdr` (a TCP header with its options).
pub fn parse_opts(hdr: &[u8]) -> Opts {
    let mut o = Opts::default();
    let mut walk = tcp::OptionWalk::default();
    while let Some((kind, i, l)) = walk.next(hdr) {
        let v = &hdr[i + 2..i + l];
        match (kind, l) {
            (2, 4) => o.mss = u16::from_be_bytes([v[0], v[1]]),
            (3, 3) => o.wscale = Some(v[0].min(14)),
            (4, 2) => o.sack = true,
            (8, 10) => {
                o.ts = Some((
                    u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                    u32::from_be_bytes([v[4], v[5], v[6], v[7]]),
                ))
            }
            _ => {}
        }
    }
    o
}

/// Writes SYN/SYN-ACK options as Linux lays them out (MSS; SACK permitted
/// and timestamps; window scale) into `out`; their length (a multiple of 4,
/// at most 20).
pub fn write_opts(
    mss: u16,
    wscale: Option<u8>,
    sack: bool,
    ts: Option<(u32, u32)>,
    out: &mut [u8; 20],
) -> usize {
    out[..4].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
    let mut n = 4;
    match (ts, sack) {
        (Some((val, ecr)), _) => {
            if sack {
                out[n..n + 2].copy_from_slice(&[4, 2]);
            } else {
                out[n..n + 2].copy_from_slice(&[1, 1]);
            }
            out[n + 2..n + 4].copy_from_slice(&[8, 10]);
            out[n + 4..n + 8].copy_from_slice(&val.to_be_bytes());
            out[n + 8..n + 12].copy_from_slice(&ecr.to_be_bytes());
            n += 12;
        }
        (None, true) => {
            out[n..n + 4].copy_from_slice(&[1, 1, 4, 2]);
            n += 4;
        }
        (None, false) => {}
    }
    if let Some(ws) = wscale {
        out[n..n + 4].copy_from_slice(&[1, 3, 3, ws]);
        n += 4;
    }
    n
}

/// The 4-tuple a cookie is bound to (host order, client side first; an
/// IPv4 address in the low 32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub saddr: u128,
    pub daddr: u128,
    pub sport: u16,
    pub dport: u16,
}

fn hash(secret: u64, tweak: u64, t: &Tuple, count: u32) -> u32 {
    let mut h = std::hash::DefaultHasher::new();
    h.write_u64(secret ^ tweak);
    match (u32::try_from(t.saddr), u32::try_from(t.daddr)) {
        // IPv4: both addresses in one word (one SipHash round less).
        (Ok(s), Ok(d)) => h.write_u64(u64::from(s) << 32 | u64::from(d)),
        _ => {
            h.write_u128(t.saddr);
            h.write_u128(t.daddr);
        }
    }
    h.write_u64(u64::from(t.sport) << 48 | u64::from(t.dport) << 32 | u64::from(count));
    h.finish() as u32
}

/// The minute counter at `now_ms`.
#[inline]
pub fn minute(now_ms: u64) -> u32 {
    (now_ms / 60_000) as u32
}

/// The index in `fam`'s table of the largest MSS not above `mss`.
pub fn mss_index(fam: &Family, mss: u16) -> u32 {
    fam.mss_table.iter().rposition(|m| *m <= mss).unwrap_or(0) as u32
}

/// Linux's `secure_tcp_syn_cookie`: the SYN-ACK's sequence number for a
/// SYN with `isn` on `t`.
pub fn cookie(secret: u64, t: &Tuple, isn: u32, count: u32, mssind: u32) -> u32 {
    hash(secret, H1, t, 0)
        .wrapping_add(isn)
        .wrapping_add(count << COOKIE_BITS)
        .wrapping_add(hash(secret, H2, t, count).wrapping_add(mssind) & COOKIE_MASK)
}

/// Linux's `check_tcp_syn_cookie`: the MSS index a cookie carries, if it
/// was made for `t` and `isn` this minute or the one before.
pub fn check(secret: u64, t: &Tuple, isn: u32, cookie: u32, count: u32) -> Option<u32> {
    let c = cookie.wrapping_sub(hash(secret, H1, t, 0)).wrapping_sub(isn);
    let diff = count.wrapping_sub(c >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
    if diff >= MAX_AGE {
        return None;
    }
    let mssind = c.wrapping_sub(hash(secret, H2, t, count.wrapping_sub(diff))) & COOKIE_MASK;
    (mssind < V4.mss_table.len() as u32).then_some(mssind)
}

/// Linux's `cookie_init_timestamp`: a TSval at `now_ms` whose low bits
/// carry window scale and SACK, never ahead of the clock.
pub fn ts_encode(now_ms: u64, wscale: Option<u8>, sack: bool) -> u32 {
    let now = now_ms as u32;
    let opts = u32::from(wscale.unwrap_or(0xf)) & TS_WSCALE_MASK | if sack { TS_SACK } else { 0 };
    let mut ts = now & !((1 << TS_BITS) - 1) | opts;
    if ts > now {
        ts = ts.wrapping_sub(1 << TS_BITS);
    }
    ts
}

/// Window scale and SACK from an echoed TSval.
pub fn ts_decode(tsecr: u32) -> (Option<u8>, bool) {
    let ws = (tsecr & TS_WSCALE_MASK) as u8;
    ((ws <= 14).then_some(ws), tsecr & TS_SACK != 0)
}

/// One SYNPROXY session's splice (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The cookie (the gateway's ISN toward the client).
    pub cookie_isn: u32,
    /// Server ISN - cookie ISN (valid once `spliced`).
    pub off: u32,
    /// Gateway TSval - server TSval (valid once `spliced`).
    pub ts_off: u32,
    /// The gateway's TSval of its SYN-ACK (the cookie ACK's TSecr).
    pub gw_tsval: u32,
    /// The client's TSval of its cookie ACK (for the server's ACK).
    pub client_tsval: u32,
    /// The client's window of its cookie ACK.
    pub client_win: u16,
    /// Timestamps on both sides.
    pub ts: bool,
    /// Window scale: announced to the client (gateway), the server's.
    pub ws_gw: u8,
    pub ws_rs: u8,
    /// The server's SYN-ACK was seen: the offsets are set.
    pub spliced: bool,
    /// The client's ISN + 1: what the server's SYN-ACK (or RST) must
    /// acknowledge ([`answers_syn`]), and the first sequence number of a
    /// client segment that sends the SYN again ([`resend_due`]).
    pub client_next: u32,
    /// When the last SYN toward the server went (milliseconds, the low
    /// 32 bits of the engine's clock).
    pub syn_sent_ms: u32,
    /// SYNs sent again so far (at most [`SYN_RESENDS`]).
    pub resends: u8,
    /// The next client SYN of this session is the gateway's own, sent
    /// again: let it through once ([`let_resent_syn_through`]).
    pub resending: bool,
}

/// At most this many times a handshake's SYN is sent again to the real
/// server (DPVS's `syn_retry` default).
pub const SYN_RESENDS: u8 = 3;
/// The least time between two SYNs of a handshake toward the real server:
/// Linux's smallest retransmission timeout, so that the client segments
/// that follow the cookie ACK at once (its first window of data) send no
/// second SYN while the first is on its way.
pub const RESEND_AFTER_MS: u32 = 200;

/// Whether the real server's SYN-ACK or RST `sa` is an acceptable answer
/// to the SYN the gateway sent it for `e` (RFC 793, SYN-SENT: the ACK bit
/// set and the acknowledgement exactly the SYN's sequence number + 1); once
/// spliced, a SYN-ACK (a retransmission: the handshake ACK was lost) must
/// also carry the server's ISN the splice was set from.
pub fn answers_syn(e: &Entry, sa: &Seg) -> bool {
    if sa.flags & tf::ACK == 0 || sa.ack != e.client_next {
        return false;
    }
    let syn_again = e.spliced && sa.flags & tf::SYN != 0;
    !syn_again || sa.seq == e.cookie_isn.wrapping_add(e.off)
}

/// Whether client segment `seg`, arriving at `now_ms` while the handshake
/// of `e` waits for the real server, is to send the SYN again: a plain ACK
/// (data or not) at the client's first sequence number acknowledging the
/// cookie, [`RESEND_AFTER_MS`] after the last SYN, fewer than
/// [`SYN_RESENDS`] times so far.
pub fn resend_due(e: &Entry, seg: &Seg, now_ms: u64) -> bool {
    let plain_ack = seg.flags & (tf::SYN | tf::RST | tf::FIN | tf::ACK) == tf::ACK;
    let waited = (now_ms as u32).wrapping_sub(e.syn_sent_ms) >= RESEND_AFTER_MS;
    !e.spliced
        && e.resends < SYN_RESENDS
        && plain_ack
        && seg.seq == e.client_next
        && seg.ack == e.cookie_isn.wrapping_add(1)
        && waited
}

/// The first wait of a handshake's timer for the real server's SYN-ACK
/// (RFC 6298's initial retransmission timeout); each resend doubles it.
pub const RESEND_TIMER_MS: u64 = 1_000;

/// The session's deadline after the SYN went to the real server for the
/// `resends`-th time again (0: the first SYN): [`RESEND_TIMER_MS`] doubled
/// that many times.
pub fn resend_timer(resends: u8) -> u64 {
    RESEND_TIMER_MS << resends.min(SYN_RESENDS)
}

/// Whether the handshake of `e`, its session's timer due, sends the SYN
/// again (the session stays); otherwise the session ends as any other.
pub fn timer_resend_due(e: &Entry) -> bool {
    !e.spliced && e.resends < SYN_RESENDS
}

/// The cookie ACK of `e`'s handshake as the client sent it, rebuilt from
/// the entry and the session's client side `client` and `virt` (what
/// [`syn_of_ack`] makes the SYN of, for the timer's resend).
pub fn cookie_ack(e: &Entry, client: (u128, u16), virt: (u128, u16)) -> Seg {
    Seg {
        src: client.0,
        dst: virt.0,
        sport: client.1,
        dport: virt.1,
        seq: e.client_next,
        ack: e.cookie_isn.wrapping_add(1),
        flags: tf::ACK,
        win: e.client_win,
        opts: Opts { ts: e.ts.then_some((e.client_tsval, e.gw_tsval)), ..Opts::default() },
        data: 0,
    }
}

/// `e` as the SYN is sent again at `now_ms`: counted, timed, and marked
/// so that the session's own step lets that one SYN through.
pub fn resent(e: &Entry, now_ms: u64) -> Entry {
    Entry { resends: e.resends + 1, syn_sent_ms: now_ms as u32, resending: true, ..*e }
}

/// Whether a client segment with TCP flags `f` is the SYN [`resent`]
/// marked (then the mark is cleared in `e`: it lets one SYN through).
pub fn let_resent_syn_through(e: &mut Entry, f: u8) -> bool {
    let ours = e.resending && f & (tf::SYN | tf::ACK | tf::RST | tf::FIN) == tf::SYN;
    if ours {
        e.resending = false;
    }
    ours
}

/// [`Entry`] per session index, allocated zeroed for the whole table: the
/// pages no SYNPROXY session uses are never written.
pub struct Table {
    entries: Vec<Entry>,
}

impl Table {
    pub fn new(capacity: usize) -> Table {
        Table { entries: vec![Entry::default(); capacity] }
    }
    #[inline]
    pub fn get(&self, i: u32) -> Entry {
        self.entries.get(i as usize).copied().unwrap_or_default()
    }
    #[inline]
    pub fn set(&mut self, i: u32, e: Entry) {
        if let Some(x) = self.entries.get_mut(i as usize) {
            *x = e;
        }
    }
}

/// Slots of client data held for handshakes under way, per worker.
pub const HOLD_SLOTS: usize = 64;
/// The largest frame a slot holds (Ethernet header included).
pub const HOLD_BYTES: usize = 2048;
/// The bit an IPv6 session's index carries as a slot's owner (session
/// indexes stay far below it).
pub const V6_OWNER: u32 = 1 << 31;
/// No owner.
const FREE: u32 = u32::MAX;
/// Taken, its session not yet made.
const UNBOUND: u32 = u32::MAX - 1;

/// One held frame: its session (index and cookie, [`FREE`] if none), the
/// port it arrived on, its bytes.
struct Held {
    owner: u32,
    cookie_isn: u32,
    port: u16,
    len: u16,
    buf: Box<[u8]>,
}

/// The frames of cookie ACKs that carried data (see the module doc): a
/// fixed set of slots, so that holding one copies and never allocates.
pub struct Hold {
    slots: Box<[Held]>,
    /// The slot whose frame the worker is to send next.
    ready: Option<usize>,
}

impl Default for Hold {
    fn default() -> Hold {
        let slot = || Held { owner: FREE, cookie_isn: 0, port: 0, len: 0, buf: vec![0; HOLD_BYTES].into() };
        Hold { slots: (0..HOLD_SLOTS).map(|_| slot()).collect(), ready: None }
    }
}

impl Hold {
    /// Copies `frame` (received on `port`) into a free slot, or one whose
    /// owner is no longer `alive(index, cookie)`, for a handshake with
    /// `cookie_isn`, its session to be named with [`Hold::bind`]; the
    /// slot, `None` if the frame is too large or every slot is taken.
    pub fn put(
        &mut self,
        cookie_isn: u32,
        port: u16,
        frame: &[u8],
        alive: impl Fn(u32, u32) -> bool,
    ) -> Option<usize> {
        if frame.len() > HOLD_BYTES {
            return None;
        }
        let ready = self.ready;
        let (k, h) = self.slots.iter_mut().enumerate().find(|(k, h)| {
            Some(*k) != ready && (h.owner == FREE || h.owner != UNBOUND && !alive(h.owner, h.cookie_isn))
        })?;
        h.owner = UNBOUND;
        h.cookie_isn = cookie_isn;
        h.port = port;
        h.len = frame.len() as u16;
        h.buf[..frame.len()].copy_from_slice(frame);
        Some(k)
    }

    /// Names the session of slot `k` ([`Hold::put`]), or frees the slot
    /// (`None`: no session was made).
    pub fn bind(&mut self, k: usize, owner: Option<u32>) {
        self.slots[k].owner = owner.unwrap_or(FREE);
    }

    fn find(&self, owner: u32, cookie_isn: u32) -> Option<usize> {
        self.slots.iter().position(|h| h.owner == owner && h.cookie_isn == cookie_isn)
    }

    /// Marks the frame of session `owner` (with `cookie_isn`) ready to
    /// send ([`Hold::ready`]); false if it has none.
    pub fn release(&mut self, owner: u32, cookie_isn: u32) -> bool {
        self.ready = self.find(owner, cookie_isn);
        self.ready.is_some()
    }

    /// Frees the slot of session `owner`, if it holds one.
    pub fn forget(&mut self, owner: u32, cookie_isn: u32) {
        if let Some(k) = self.find(owner, cookie_isn) {
            self.slots[k].owner = FREE;
        }
    }

    /// The frame [`Hold::release`] made ready and its port.
    pub fn ready(&self) -> Option<(u16, &[u8])> {
        let h = &self.slots[self.ready?];
        Some((h.port, &h.buf[..usize::from(h.len)]))
    }

    /// Frees the ready slot (its frame was copied out, or is given up).
    pub fn done(&mut self) {
        if let Some(k) = self.ready.take() {
            self.slots[k].owner = FREE;
        }
    }

    /// Slots holding a frame.
    pub fn used(&self) -> usize {
        self.slots.iter().filter(|h| h.owner != FREE).count()
    }
}

/// Whether a session with `flags` of protocol `tcp` is a SYNPROXY one.
#[inline(always)]
pub fn is_synproxy(flags: Flags, tcp: bool) -> bool {
    tcp && flags.contains(Flags::SYNPROXY)
}

/// Addresses (an IPv4 one in the low 32 bits), ports, flags, sequence
/// numbers and window of a TCP frame.
#[derive(Clone, Copy, Debug)]
pub struct Seg {
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub win: u16,
    pub opts: Opts,
    /// Payload bytes.
    pub data: usize,
}

/// Reads a TCP/IPv4 frame the engine checked.
pub fn read(frame: &[u8]) -> Seg {
    let ip = ipv4::Packet::new_unchecked(&frame[ETH..]);
    let (hl, tl) = (ip.header_len(), usize::from(ip.total_len()));
    let (src, dst) = (u32::from(ip.src_addr()), u32::from(ip.dst_addr()));
    read_tcp(src.into(), dst.into(), &frame[ETH + hl..ETH + tl])
}

/// Reads a TCP/IPv6 frame the engine checked, its TCP header at `l4` and
/// its payload ending at `end` (offsets in the frame).
pub fn read6(frame: &[u8], l4: usize, end: usize) -> Seg {
    let ip = ipv6::Packet::new_unchecked(&frame[ETH..]);
    read_tcp(u128::from(ip.src_addr()), u128::from(ip.dst_addr()), &frame[l4..end])
}

/// [`Seg`] of the TCP segment `t` (header, options, payload).
fn read_tcp(src: u128, dst: u128, t: &[u8]) -> Seg {
    let p = tcp::Packet::new_unchecked(t);
    let thl = p.header_len();
    Seg {
        src,
        dst,
        sport: p.src_port(),
        dport: p.dst_port(),
        seq: p.seq_number(),
        ack: p.ack_number(),
        flags: p.flags(),
        win: p.window(),
        opts: parse_opts(&t[..thl]),
        data: t.len() - thl,
    }
}

/// Writes a fresh IPv4 (20 bytes, DF) + TCP header with `opts` over the
/// frame after its Ethernet header, checksums computed; the IPv4 total
/// length. False if the frame is too short.
#[allow(clippy::too_many_arguments)]
pub fn write(frame: &mut [u8], s: &Seg, opts: &[u8], ttl: u8) -> Option<usize> {
    let tl = 20 + tcp::MIN_HEADER_LEN + opts.len();
    if frame.len() < ETH + tl {
        return None;
    }
    let f = &mut frame[ETH..ETH + tl];
    f[..20].copy_from_slice(&[
        0x45,
        0,
        (tl >> 8) as u8,
        tl as u8,
        0,
        0,
        0x40,
        0,
        ttl,
        6,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    let (src, dst) = (s.src as u32, s.dst as u32);
    f[12..16].copy_from_slice(&src.to_be_bytes());
    f[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = checksum::checksum(&f[..20]);
    f[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[20..];
    write_tcp(t, s, opts);
    tcp::Packet::new_unchecked(&mut *t).fill_checksum(src.into(), dst.into());
    Some(tl)
}

/// Writes a fresh IPv6 header (no extension headers) + TCP header with
/// `opts` over the frame after its Ethernet header, whose type it sets,
/// the TCP checksum computed; the IPv6 packet's length. False if the frame
/// is too short.
pub fn write6(frame: &mut [u8], s: &Seg, opts: &[u8], hop_limit: u8) -> Option<usize> {
    let tcp_len = tcp::MIN_HEADER_LEN + opts.len();
    let len = ipv6::HEADER_LEN + tcp_len;
    if frame.len() < ETH + len {
        return None;
    }
    frame[12..14].copy_from_slice(&u16::from(EtherType::Ipv6).to_be_bytes());
    let f = &mut frame[ETH..ETH + len];
    // Version 6, no traffic class or flow label; TCP.
    f[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    f[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
    f[6..8].copy_from_slice(&[6, hop_limit]);
    f[8..24].copy_from_slice(&s.src.to_be_bytes());
    f[24..40].copy_from_slice(&s.dst.to_be_bytes());
    let t = &mut f[ipv6::HEADER_LEN..];
    write_tcp(t, s, opts);
    tcp::Packet::new_unchecked(&mut *t).fill_checksum_v6(s.src.into(), s.dst.into());
    Some(len)
}

/// The TCP header of `s` with `opts` into `t` (exactly as long), the
/// checksum zero.
fn write_tcp(t: &mut [u8], s: &Seg, opts: &[u8]) {
    t[0..2].copy_from_slice(&s.sport.to_be_bytes());
    t[2..4].copy_from_slice(&s.dport.to_be_bytes());
    t[4..8].copy_from_slice(&s.seq.to_be_bytes());
    t[8..12].copy_from_slice(&s.ack.to_be_bytes());
    t[12] = (((tcp::MIN_HEADER_LEN + opts.len()) / 4) as u8) << 4;
    t[13] = s.flags;
    t[14..16].copy_from_slice(&s.win.to_be_bytes());
    t[16..20].fill(0);
    t[20..].copy_from_slice(opts);
}

/// The SYN-ACK answering a client's SYN `syn` (read from the frame): its
/// options into `out` (their length) and its header. `mss` is the
/// gateway's own MSS (output MTU less `fam`'s headers).
pub fn syn_ack(
    secret: u64,
    now_ms: u64,
    fam: &Family,
    syn: &Seg,
    mss: u16,
    out: &mut [u8; 20],
) -> (Seg, usize) {
    let t = Tuple { saddr: syn.src, daddr: syn.dst, sport: syn.sport, dport: syn.dport };
    let mssind = mss_index(fam, if syn.opts.mss == 0 { fam.default_mss } else { syn.opts.mss });
    let isn = cookie(secret, &t, syn.seq, minute(now_ms), mssind);
    // Without timestamps, only the MSS survives the cookie (Linux).
    let ts = syn.opts.ts.map(|(val, _)| (ts_encode(now_ms, syn.opts.wscale, syn.opts.sack), val));
    let (ws, sack) =
        if ts.is_some() { (syn.opts.wscale.map(|_| WSCALE), syn.opts.sack) } else { (None, false) };
    let n = write_opts(mss, ws, sack, ts, out);
    let seg = Seg {
        src: syn.dst,
        dst: syn.src,
        sport: syn.dport,
        dport: syn.sport,
        seq: isn,
        ack: syn.seq.wrapping_add(1),
        flags: tf::SYN | tf::ACK,
        win: 65535,
        opts: Opts::default(),
        data: 0,
    };
    (seg, n)
}

/// The client's SYN toward the real server rebuilt from a valid cookie ACK
/// `ack`: its header (client addressed, options left out) and its
/// options, with the MSS less `mss_less` (TOA, PROXY header); `None` if
/// the cookie is not valid.
pub fn syn_of_ack(
    secret: u64,
    now_ms: u64,
    fam: &Family,
    ack: &Seg,
    mss_less: u16,
) -> Option<(Seg, Entry, [u8; 20], usize)> {
    let t = Tuple { saddr: ack.src, daddr: ack.dst, sport: ack.sport, dport: ack.dport };
    let isn = ack.seq.wrapping_sub(1);
    let cookie_isn = ack.ack.wrapping_sub(1);
    let mssind = check(secret, &t, isn, cookie_isn, minute(now_ms))?;
    let mss = fam.mss_table[mssind as usize].saturating_sub(mss_less).max(fam.mss_table[0] - 40);
    let (ws, sack, ts) = match ack.opts.ts {
        Some((val, ecr)) => {
            let (ws, sack) = ts_decode(ecr);
            (ws, sack, Some((val, 0)))
        }
        None => (None, false, None),
    };
    let mut opts = [0u8; 20];
    let n = write_opts(mss, ws, sack, ts, &mut opts);
    let e = Entry {
        cookie_isn,
        off: 0,
        ts_off: 0,
        gw_tsval: ack.opts.ts.map_or(0, |(_, ecr)| ecr),
        client_tsval: ack.opts.ts.map_or(0, |(val, _)| val),
        client_win: ack.win,
        ts: ts.is_some(),
        ws_gw: if ws.is_some() { WSCALE } else { 0 },
        ws_rs: 0,
        spliced: false,
        client_next: ack.seq,
        syn_sent_ms: now_ms as u32,
        resends: 0,
        resending: false,
    };
    let win = if let Some(w) = ws { (u32::from(ack.win) << w).min(65535) as u16 } else { ack.win };
    let syn = Seg {
        src: ack.src,
        dst: ack.dst,
        sport: ack.sport,
        dport: ack.dport,
        seq: isn,
        ack: 0,
        flags: tf::SYN,
        win,
        opts: Opts::default(),
        data: 0,
    };
    Some((syn, e, opts, n))
}

/// What [`Insert::Options`] carries: SYN options put after the TCP header.
pub fn insert(opts: [u8; 20], n: usize) -> Insert {
    Insert::Options { bytes: opts, n: n as u8 }
}

/// Records the server's SYN-ACK `sa` in `e` and returns the client's
/// handshake ACK to send in its place (client addressed, in the client's
/// sequence space) with its options, given the session's client side
/// `(cip, cport)` and `(vip, vport)`.
pub fn ack_of_syn_ack(
    e: &mut Entry,
    sa: &Seg,
    client: (u128, u16),
    virt: (u128, u16),
    out: &mut [u8; 20],
) -> (Seg, usize) {
    if !e.spliced {
        e.off = sa.seq.wrapping_sub(e.cookie_isn);
    }
    let mut n = 0;
    if let (true, Some((val, _))) = (e.ts, sa.opts.ts) {
        if !e.spliced {
            e.ts_off = e.gw_tsval.wrapping_sub(val);
        }
        out[..4].copy_from_slice(&[1, 1, 8, 10]);
        out[4..8].copy_from_slice(&e.client_tsval.to_be_bytes());
        // In the client's view (the splice takes `ts_off` off again).
        out[8..12].copy_from_slice(&val.wrapping_add(e.ts_off).to_be_bytes());
        n = 12;
    } else if !e.spliced {
        // The server does not do timestamps: nothing to map.
        e.ts = false;
    }
    if e.ws_gw != 0 && !e.spliced {
        e.ws_rs = sa.opts.wscale.unwrap_or(0);
    }
    e.spliced = true;
    let seg = Seg {
        src: client.0,
        dst: virt.0,
        sport: client.1,
        dport: virt.1,
        seq: sa.ack,
        ack: e.cookie_isn.wrapping_add(1),
        flags: tf::ACK,
        win: e.client_win,
        opts: Opts::default(),
        data: 0,
    };
    (seg, n)
}

/// The splice of an established SYNPROXY segment (`out`: from the real
/// server), in place with incremental checksum updates: sequence or
/// acknowledgement number and SACK edges by `off`, timestamps by `ts_off`,
/// a server's window rescaled.
pub fn splice(e: &Entry, out: bool, frame: &mut [u8]) {
    let hl = ipv4::Packet::new_unchecked(&frame[ETH..]).header_len();
    splice_tcp(e, out, &mut frame[ETH + hl..]);
}

/// [`splice`] on the TCP segment `seg` (from its header on) of a packet
/// of either family: the pseudo header does not change.
pub fn splice_tcp(e: &Entry, out: bool, seg: &mut [u8]) {
    let mut t = tcp::Packet::new_unchecked(&mut *seg);
    let thl = t.header_len();
    let flags = t.flags();
    if out {
        let s = t.seq_number();
        t.rewrite_seq_number(s.wrapping_sub(e.off));
        if e.ws_rs != e.ws_gw && flags & tf::SYN == 0 {
            let w = t.window();
            let nw = ((u32::from(w) << e.ws_rs) >> e.ws_gw).min(65535) as u16;
            if nw != w {
                let c = checksum::update16(t.checksum(), w, nw);
                t.set_window(nw);
                t.set_checksum(c);
            }
        }
    } else if flags & tf::ACK != 0 {
        let a = t.ack_number();
        t.rewrite_ack_number(a.wrapping_add(e.off));
    }
    if thl > tcp::MIN_HEADER_LEN {
        opts_splice(&mut seg[..thl], e, out);
    }
}

/// The option part of [`splice`]: TSval (server) or TSecr (client), and a
/// client's SACK edges.
fn opts_splice(hdr: &mut [u8], e: &Entry, out: bool) {
    let mut walk = tcp::OptionWalk::default();
    while let Some((kind, o, l)) = walk.next(hdr) {
        match kind {
            5 if !out => {
                for at in (o + 2..o + l).step_by(4).take_while(|x| x + 4 <= o + l) {
                    add32(hdr, at, e.off);
                }
            }
            8 if l == 10 && e.ts => {
                if out {
                    add32(hdr, o + 2, e.ts_off);
                } else {
                    add32(hdr, o + 6, e.ts_off.wrapping_neg());
                }
            }
            _ => {}
        }
    }
}

/// Adds `d` to the 32-bit field at `at` of a TCP header, updating its
/// checksum (`at` may be odd: an option after a single NOP).
fn add32(hdr: &mut [u8], at: usize, d: u32) {
    let v = u32::from_be_bytes([hdr[at], hdr[at + 1], hdr[at + 2], hdr[at + 3]]);
    let nv = v.wrapping_add(d);
    hdr[at..at + 4].copy_from_slice(&nv.to_be_bytes());
    let mut t = tcp::Packet::new_unchecked(&mut *hdr);
    let c = checksum::update32_at(t.checksum(), at, v, nv);
    t.set_checksum(c);
}

pub mod shed;

#[cfg(test)]
mod tests;

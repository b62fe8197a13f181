//! The per-worker IPv6 session table (issue 17; docs/architecture.md,
//! "IPv6").
//!
//! An IPv4 session stays one 64-byte line in [`super::SessionTable`]; an
//! IPv6 one has four 128-bit addresses and would not fit, so IPv6 sessions
//! live in a second table of the same shape, which only IPv6 packets touch:
//!
//! - [`Session6`] is two cache lines (128 bytes, checked at compile time):
//!   the addresses in the first line with the ports and the protocol, the
//!   state, links and deadline in the second.
//! - Both directions are indexed by the same bucketised cuckoo hash as the
//!   IPv4 table ([`super::index::Index`]), keyed by a [`FlowKey6`] whose two
//!   addresses are folded into the table's seeded hash.
//! - The same 64 ms timer wheel with intrusive links and a bounded
//!   [`SessionTable6::expire`]; the same TCP state machine, flags and
//!   counters slots (a session's state does not depend on its family).
//! - All memory is allocated in [`SessionTable6::new`]; nothing on the
//!   packet path allocates.
//!
//! A persistence template ([`Flags::TEMPLATE`]) keeps, as in the IPv4 table,
//! its timeout in the unused local address and its count of controlled
//! connections in the unused local port, behind [`Session6::timeout_ms`] and
//! [`Session6::n_control`].

use gw_proto::ForwardMode;

use super::index::Index;
use super::{fold_mul, ms_to_tick, Flags, Full, NIL, TICK_SHIFT, WHEEL_SLOTS};
use crate::tcp_state::State;
use crate::wire::ipv4::Protocol;

/// The 5-tuple of an IPv6 packet, addresses host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey6 {
    pub proto: Protocol,
    pub src: u128,
    pub sport: u16,
    pub dst: u128,
    pub dport: u16,
}

/// One IPv6 connection through the gateway, or a persistence template.
///
/// `cip:cport -> vip:vport` is the client side; `rip:rport -> lip:lport` is
/// the key of the real server's replies (FULLNAT66: `lip` is the IPv6 local
/// address; NAT66: the client address).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Session6 {
    pub cip: u128,
    pub vip: u128,
    pub rip: u128,
    /// Local address (connections); the persistence timeout (templates).
    pub lip: u128,
    pub cport: u16,
    pub vport: u16,
    pub rport: u16,
    /// Local port (connections); the controlled-connection count (templates).
    pub lport: u16,
    /// IP protocol number; 0 marks a free slot.
    pub proto: u8,
    pub state: State,
    pub mode: ForwardMode,
    pub flags: Flags,
    /// Service slot.
    pub service: u16,
    /// Real-server slot.
    pub dest: u16,
    /// TCP sequence marks per direction ([`crate::tcp_seq`]).
    pub seq_mark: [u16; 2],
    /// Deadline, in ticks.
    expires: u32,
    wheel_tick: u32,
    next_free: u32,
    wheel_next: u32,
    wheel_prev: u32,
    /// The persistence template that controls this connection, or [`NIL`].
    pub control: u32,
}

const _: () = assert!(std::mem::size_of::<Session6>() == 128);

impl Session6 {
    /// A new session; links are set by [`SessionTable6::insert`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        proto: Protocol,
        client: (u128, u16),
        vip: (u128, u16),
        rs: (u128, u16),
        local: (u128, u16),
        state: State,
        mode: ForwardMode,
        service: u32,
        dest: u32,
    ) -> Session6 {
        debug_assert!(service <= u16::MAX as u32 && dest <= u16::MAX as u32, "slots are 16-bit");
        Session6 {
            cip: client.0,
            cport: client.1,
            vip: vip.0,
            vport: vip.1,
            rip: rs.0,
            rport: rs.1,
            lip: local.0,
            lport: local.1,
            proto: u8::from(proto),
            state,
            mode,
            flags: Flags::NONE,
            service: service as u16,
            dest: dest as u16,
            seq_mark: [0; 2],
            expires: 0,
            wheel_tick: 0,
            next_free: NIL,
            wheel_next: NIL,
            wheel_prev: NIL,
            control: NIL,
        }
    }
    #[inline]
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.proto)
    }
    /// Key of the client's packets.
    #[inline]
    pub fn in_key(&self) -> FlowKey6 {
        FlowKey6 {
            proto: self.protocol(),
            src: self.cip,
            sport: self.cport,
            dst: self.vip,
            dport: self.vport,
        }
    }
    /// Key of the real server's replies.
    #[inline]
    pub fn out_key(&self) -> FlowKey6 {
        FlowKey6 {
            proto: self.protocol(),
            src: self.rip,
            sport: self.rport,
            dst: self.lip,
            dport: self.lport,
        }
    }
    #[inline]
    fn is_in(&self, k: &FlowKey6, proto: u8) -> bool {
        (self.proto, self.cport, self.vport, self.cip, self.vip) == (proto, k.sport, k.dport, k.src, k.dst)
    }
    #[inline]
    fn is_out(&self, k: &FlowKey6, proto: u8) -> bool {
        (self.proto, self.rport, self.lport, self.rip, self.lip) == (proto, k.sport, k.dport, k.src, k.dst)
    }
    #[inline]
    pub fn state(&self) -> State {
        self.state
    }
    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags.contains(Flags::TEMPLATE)
    }
    /// Milliseconds until expiry at `now_ms` (0 if due).
    pub fn expires_in_ms(&self, now_ms: u64) -> u64 {
        ((self.expires as u64) << TICK_SHIFT).saturating_sub(now_ms)
    }
    /// A template's count of live connections it controls (in `lport`).
    #[inline]
    pub fn n_control(&self) -> u16 {
        debug_assert!(self.is_template());
        self.lport
    }
    #[inline]
    pub fn set_n_control(&mut self, n: u16) {
        debug_assert!(self.is_template());
        self.lport = n;
    }
    /// A template's persistence timeout in milliseconds (in `lip`).
    #[inline]
    pub fn timeout_ms(&self) -> u32 {
        debug_assert!(self.is_template());
        self.lip as u32
    }
    #[inline]
    pub fn set_timeout_ms(&mut self, ms: u32) {
        debug_assert!(self.is_template());
        self.lip = u128::from(ms);
    }
}

impl crate::persist::Template for Session6 {
    fn n_control(&self) -> u16 {
        Session6::n_control(self)
    }
    fn set_n_control(&mut self, n: u16) {
        Session6::set_n_control(self, n)
    }
    fn timeout_ms(&self) -> u32 {
        Session6::timeout_ms(self)
    }
    fn extend_deadline(&mut self, tick: u32) {
        // The wheel catches up lazily: a later deadline needs no relink.
        self.expires = self.expires.max(tick);
    }
    fn dest(&self) -> u16 {
        self.dest
    }
}

/// IPv6 sessions of one worker, indexed in both directions, with a timer
/// wheel (see the module docs and [`super::SessionTable`]).
pub struct SessionTable6 {
    slots: Box<[Session6]>,
    free_head: u32,
    live: usize,
    in_index: Index,
    out_index: Index,
    seed: (u64, u64),
    wheel: Box<[u32]>,
    cur_tick: u32,
    now_tick: u32,
}

/// 128 bits folded to 64 (the hash mixes them further).
#[inline(always)]
fn fold64(a: u128) -> u64 {
    (a as u64) ^ ((a >> 64) as u64).rotate_left(23)
}

impl SessionTable6 {
    /// Allocates a table for `capacity` sessions. `seed` keys the index hash.
    pub fn new(capacity: usize, seed: u64, now_ms: u64) -> SessionTable6 {
        assert!(capacity > 0 && capacity < NIL as usize, "session capacity out of range");
        let empty = Session6::new(
            Protocol::Unknown(0),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            State::None,
            ForwardMode::FullNat,
            0,
            0,
        );
        let mut slots = vec![empty; capacity].into_boxed_slice();
        for (i, s) in slots.iter_mut().enumerate() {
            s.next_free = if i + 1 < capacity { i as u32 + 1 } else { NIL };
        }
        SessionTable6 {
            slots,
            free_head: 0,
            live: 0,
            in_index: Index::new(capacity),
            out_index: Index::new(capacity),
            seed: (seed | 1, seed.rotate_left(29) ^ 0x6a09_e667_f3bc_c909),
            wheel: vec![NIL; WHEEL_SLOTS].into_boxed_slice(),
            cur_tick: ms_to_tick(now_ms),
            now_tick: ms_to_tick(now_ms),
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
    /// Bytes this table allocated, for memory accounting.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
            + self.in_index.memory_bytes()
            + self.out_index.memory_bytes()
            + std::mem::size_of_val(&*self.wheel)
    }
    /// The index hash of `k` (low bits: bucket; high 32 bits: signature).
    #[inline(always)]
    pub fn hash(&self, k: &FlowKey6) -> u64 {
        let a = fold_mul(fold64(k.src) ^ self.seed.0, fold64(k.dst) ^ 0x9e37_79b9_7f4a_7c15);
        let b = ((k.sport as u64) << 32 | (k.dport as u64) << 16 | u8::from(k.proto) as u64) ^ self.seed.1;
        fold_mul(fold_mul(a, b), 0x9e37_79b9_7f4a_7c15)
    }

    /// The session whose client-side key is `k`.
    #[inline]
    pub fn lookup_in(&self, k: &FlowKey6) -> Option<u32> {
        let proto = u8::from(k.proto);
        self.in_index.find(self.hash(k), |i| self.slots[i as usize].is_in(k, proto))
    }

    /// The session whose real-server-side key is `k`.
    #[inline]
    pub fn lookup_out(&self, k: &FlowKey6) -> Option<u32> {
        let proto = u8::from(k.proto);
        self.out_index.find(self.hash(k), |i| self.slots[i as usize].is_out(k, proto))
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &Session6 {
        &self.slots[idx as usize]
    }
    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> &mut Session6 {
        &mut self.slots[idx as usize]
    }

    /// Inserts `s`, expiring `timeout_ms` after `now_ms`. The caller has
    /// checked that neither key is present.
    pub fn insert(&mut self, s: Session6, now_ms: u64, timeout_ms: u64) -> Result<u32, Full> {
        if self.free_head == NIL {
            return Err(Full);
        }
        let idx = self.free_head;
        let hin = self.hash(&s.in_key());
        self.in_index.insert(hin, idx).map_err(|_| Full)?;
        if !s.flags.contains(Flags::NO_OUT) {
            let hout = self.hash(&s.out_key());
            if self.out_index.insert(hout, idx).is_err() {
                self.in_index.remove(hin, idx);
                return Err(Full);
            }
        }
        self.free_head = self.slots[idx as usize].next_free;
        self.slots[idx as usize] = s;
        self.live += 1;
        let deadline = ms_to_tick(now_ms + timeout_ms);
        self.slots[idx as usize].expires = deadline;
        self.wheel_link(idx, deadline);
        Ok(idx)
    }

    /// Pushes the deadline of `idx` to `timeout_ms` after `now_ms`.
    #[inline]
    pub fn touch(&mut self, idx: u32, now_ms: u64, timeout_ms: u64) {
        let deadline = ms_to_tick(now_ms + timeout_ms);
        let s = &mut self.slots[idx as usize];
        s.expires = deadline;
        if deadline < s.wheel_tick {
            self.wheel_unlink(idx);
            self.wheel_link(idx, deadline);
        }
    }

    /// Removes `idx` from both indexes and the wheel and frees its slot; a
    /// connection no longer counts for its template (IPVS's `n_control`,
    /// as [`crate::persist::release`]).
    pub fn remove(&mut self, idx: u32) {
        let s = self.slots[idx as usize];
        let found = self.in_index.remove(self.hash(&s.in_key()), idx);
        debug_assert!(found, "session {idx} missing from the client-side index");
        if !s.flags.contains(Flags::NO_OUT) {
            let found = self.out_index.remove(self.hash(&s.out_key()), idx);
            debug_assert!(found, "session {idx} missing from the reply index");
        }
        self.wheel_unlink(idx);
        if s.control != NIL {
            let ended = s.expires.min(self.now_tick);
            crate::persist::release(&mut self.slots[s.control as usize], ended);
        }
        let slot = &mut self.slots[idx as usize];
        slot.proto = 0;
        slot.next_free = self.free_head;
        self.free_head = idx;
        self.live -= 1;
    }

    fn wheel_link(&mut self, idx: u32, deadline: u32) {
        let tick = deadline.clamp(self.cur_tick, self.cur_tick + WHEEL_SLOTS as u32 - 1);
        let slot = tick as usize & (WHEEL_SLOTS - 1);
        let head = self.wheel[slot];
        let s = &mut self.slots[idx as usize];
        s.wheel_tick = tick;
        s.wheel_prev = NIL;
        s.wheel_next = head;
        if head != NIL {
            self.slots[head as usize].wheel_prev = idx;
        }
        self.wheel[slot] = idx;
    }

    fn wheel_unlink(&mut self, idx: u32) {
        let (prev, next, tick) = {
            let s = &self.slots[idx as usize];
            (s.wheel_prev, s.wheel_next, s.wheel_tick)
        };
        if prev == NIL {
            self.wheel[tick as usize & (WHEEL_SLOTS - 1)] = next;
        } else {
            self.slots[prev as usize].wheel_next = next;
        }
        if next != NIL {
            self.slots[next as usize].wheel_prev = prev;
        }
    }

    /// Expires sessions whose deadline is at or before `now_ms`, examining
    /// at most `budget`; `on_expire` frees one (`None`) or keeps it `ms`
    /// more (`Some(ms)`), as [`super::SessionTable::expire`]. Returns the
    /// number freed.
    pub fn expire(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut on_expire: impl FnMut(&Session6) -> Option<u64>,
    ) -> usize {
        let now = ms_to_tick(now_ms);
        self.now_tick = now;
        if now.saturating_sub(self.cur_tick) >= WHEEL_SLOTS as u32 {
            self.cur_tick = now - WHEEL_SLOTS as u32 + 1;
        }
        let (mut examined, mut expired) = (0, 0);
        while self.cur_tick <= now {
            let slot = self.cur_tick as usize & (WHEEL_SLOTS - 1);
            let mut i = self.wheel[slot];
            while i != NIL {
                if examined == budget {
                    return expired;
                }
                examined += 1;
                let s = self.slots[i as usize];
                let next = s.wheel_next;
                if s.wheel_tick <= self.cur_tick {
                    if s.expires <= now {
                        match on_expire(&s) {
                            None => {
                                self.remove(i);
                                expired += 1;
                            }
                            Some(ms) => {
                                let deadline = ms_to_tick(now_ms + ms.max(1 << TICK_SHIFT));
                                self.slots[i as usize].expires = deadline;
                                self.wheel_unlink(i);
                                self.wheel_link(i, deadline);
                            }
                        }
                    } else {
                        self.wheel_unlink(i);
                        self.wheel_link(i, s.expires);
                    }
                }
                i = next;
            }
            self.cur_tick += 1;
        }
        expired
    }

    /// The live session in slot `i`, if any (connection listings).
    #[inline]
    pub fn slot(&self, i: usize) -> Option<&Session6> {
        self.slots.get(i).filter(|s| s.proto != 0)
    }
}

#[cfg(test)]
mod tests;

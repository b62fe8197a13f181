//! The per-worker session table.
//!
//! Invariants:
//! - All memory is allocated in [`SessionTable::new`]: a slab of `capacity`
//!   sessions, two bucket arrays (one per direction) and the timer wheel.
//!   Nothing on the packet path allocates.
//! - Every live session is in exactly one chain of each index and in exactly
//!   one wheel slot. Chains and wheel lists are intrusive (`u32` links inside
//!   the session), so a session is one 64-byte cache line and the whole cost
//!   of a session, both directions' index included, is 64 + 2 * 4 bytes of
//!   buckets per slot at load factor 1.
//! - The index hash is keyed with a per-table random seed, so a remote sender
//!   cannot aim many flows at one chain without knowing the seed.
//! - Expiry is a hashed timer wheel of 64 ms ticks. A packet only stores the
//!   new deadline (`expires`); the session moves to a later slot when its old
//!   slot fires, or at once when the deadline moved earlier. `expire` does a
//!   bounded amount of work per call, so no poll ever scans the table.

use crate::tcp_state::State;

use gw_proto::ForwardMode;

/// The forwarding mode stored in a session (`ForwardMode as u8`).
#[inline]
pub fn forward_mode(m: u8) -> ForwardMode {
    match m {
        0 => ForwardMode::FullNat,
        1 => ForwardMode::Masq,
        2 => ForwardMode::Route,
        _ => ForwardMode::Tunnel,
    }
}

/// "No session" in the intrusive links.
pub const NIL: u32 = u32::MAX;
/// log2 of the wheel tick in milliseconds (64 ms).
pub const TICK_SHIFT: u32 = 6;
const WHEEL_SLOTS: usize = 1 << 14; // 16384 ticks * 64 ms = 17.5 minutes

/// A flow as seen on the wire: (protocol, source, source port, destination,
/// destination port). Addresses are host-order `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub proto: u8,
    pub src: u32,
    pub sport: u16,
    pub dst: u32,
    pub dport: u16,
}

/// One connection through the gateway.
///
/// `cip:cport -> vip:vport` is the client side; `rip:rport -> lip:lport` is
/// the key of the real server's replies (for FULLNAT, `lip` is the local
/// address; for modes without SNAT it is the client address).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Session {
    pub cip: u32,
    pub vip: u32,
    pub cport: u16,
    pub vport: u16,
    pub rip: u32,
    pub lip: u32,
    pub rport: u16,
    pub lport: u16,
    pub proto: u8,
    pub state: u8,
    /// Forwarding mode (`ForwardMode as u8`).
    pub mode: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Service slot.
    pub service: u32,
    /// Real-server slot.
    pub dest: u32,
    /// Deadline, in ticks.
    expires: u32,
    /// The tick of the wheel slot this session is linked in.
    wheel_tick: u32,
    next_in: u32,
    next_out: u32,
    wheel_next: u32,
    wheel_prev: u32,
    /// The persistence template that controls this connection, or [`NIL`].
    pub control: u32,
}

/// The session is counted in its real server's ActiveConn (else InActConn).
pub const FLAG_ACTIVE: u8 = 1;
/// The session has no reply key (DR, TUN: replies bypass the gateway), so it
/// is not in the reply index.
pub const FLAG_NO_OUT: u8 = 2;
/// A persistence template (client port 0), not a connection. A template's
/// `lport` counts the live connections it controls (IPVS's `n_control`) and
/// its `lip` holds the persistence timeout in milliseconds: when the last
/// controlled connection goes, the template lives that long again.
pub const FLAG_TEMPLATE: u8 = 4;
/// One-packet scheduling (`-o`): the next datagram of the flow is scheduled anew.
pub const FLAG_ONE_PACKET: u8 = 8;

impl Session {
    /// A new session; links are set by [`SessionTable::insert`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        proto: u8,
        client: (u32, u16),
        vip: (u32, u16),
        rs: (u32, u16),
        local: (u32, u16),
        state: State,
        mode: u8,
        service: u32,
        dest: u32,
    ) -> Session {
        Session {
            cip: client.0,
            cport: client.1,
            vip: vip.0,
            vport: vip.1,
            rip: rs.0,
            rport: rs.1,
            lip: local.0,
            lport: local.1,
            proto,
            state: state as u8,
            mode,
            flags: 0,
            service,
            dest,
            expires: 0,
            wheel_tick: 0,
            next_in: NIL,
            next_out: NIL,
            wheel_next: NIL,
            wheel_prev: NIL,
            control: NIL,
        }
    }
    /// Key of the client's packets.
    #[inline]
    pub fn in_key(&self) -> FlowKey {
        FlowKey { proto: self.proto, src: self.cip, sport: self.cport, dst: self.vip, dport: self.vport }
    }
    /// Key of the real server's replies.
    #[inline]
    pub fn out_key(&self) -> FlowKey {
        FlowKey { proto: self.proto, src: self.rip, sport: self.rport, dst: self.lip, dport: self.lport }
    }
    #[inline]
    pub fn state(&self) -> State {
        State::from_u8(self.state)
    }
    /// Milliseconds until expiry at `now_ms` (0 if due).
    pub fn expires_in_ms(&self, now_ms: u64) -> u64 {
        ((self.expires as u64) << TICK_SHIFT).saturating_sub(now_ms)
    }
}

/// The table is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Sessions of one worker, indexed in both directions, with a timer wheel.
pub struct SessionTable {
    slots: Box<[Session]>,
    free_head: u32,
    live: usize,
    in_buckets: Box<[u32]>,
    out_buckets: Box<[u32]>,
    mask: u32,
    seed: (u64, u64),
    wheel: Box<[u32]>,
    /// The next tick whose slot has not been processed yet.
    cur_tick: u32,
    /// The clock of the latest `expire` call, in ticks.
    now_tick: u32,
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn ms_to_tick(ms: u64) -> u32 {
    (ms >> TICK_SHIFT) as u32
}

impl SessionTable {
    /// Allocates a table for `capacity` sessions. `seed` keys the index hash.
    pub fn new(capacity: usize, seed: u64, now_ms: u64) -> SessionTable {
        assert!(capacity > 0 && capacity < NIL as usize, "session capacity out of range");
        let buckets = capacity.next_power_of_two();
        let empty = Session::new(0, (0, 0), (0, 0), (0, 0), (0, 0), State::None, 0, 0, 0);
        let mut slots = vec![empty; capacity].into_boxed_slice();
        for (i, s) in slots.iter_mut().enumerate() {
            s.next_in = if i + 1 < capacity { i as u32 + 1 } else { NIL };
        }
        SessionTable {
            slots,
            free_head: 0,
            live: 0,
            in_buckets: vec![NIL; buckets].into_boxed_slice(),
            out_buckets: vec![NIL; buckets].into_boxed_slice(),
            mask: buckets as u32 - 1,
            seed: (seed | 1, seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15),
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
            + std::mem::size_of_val(&*self.in_buckets)
            + std::mem::size_of_val(&*self.out_buckets)
            + std::mem::size_of_val(&*self.wheel)
    }

    #[inline(always)]
    fn bucket(&self, k: &FlowKey) -> usize {
        let a = ((k.src as u64) << 32 | k.dst as u64) ^ self.seed.0;
        let b = ((k.sport as u64) << 32 | (k.dport as u64) << 16 | k.proto as u64) ^ self.seed.1;
        (fold_mul(fold_mul(a, b), 0x9e37_79b9_7f4a_7c15) as u32 & self.mask) as usize
    }

    /// The session whose client-side key is `k`.
    #[inline]
    pub fn lookup_in(&self, k: &FlowKey) -> Option<u32> {
        let mut i = self.in_buckets[self.bucket(k)];
        while i != NIL {
            let s = &self.slots[i as usize];
            if s.in_key() == *k {
                return Some(i);
            }
            i = s.next_in;
        }
        None
    }

    /// The session whose real-server-side key is `k`.
    #[inline]
    pub fn lookup_out(&self, k: &FlowKey) -> Option<u32> {
        let mut i = self.out_buckets[self.bucket(k)];
        while i != NIL {
            let s = &self.slots[i as usize];
            if s.out_key() == *k {
                return Some(i);
            }
            i = s.next_out;
        }
        None
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &Session {
        &self.slots[idx as usize]
    }
    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> &mut Session {
        &mut self.slots[idx as usize]
    }

    /// Inserts `s`, expiring `timeout_ms` after `now_ms`. The caller has
    /// checked that neither key is present.
    pub fn insert(&mut self, s: Session, now_ms: u64, timeout_ms: u64) -> Result<u32, Full> {
        if self.free_head == NIL {
            return Err(Full);
        }
        let idx = self.free_head;
        self.free_head = self.slots[idx as usize].next_in;
        let bin = self.bucket(&s.in_key());
        let bout = self.bucket(&s.out_key());
        let slot = &mut self.slots[idx as usize];
        *slot = s;
        slot.next_in = self.in_buckets[bin];
        self.in_buckets[bin] = idx;
        if s.flags & FLAG_NO_OUT == 0 {
            slot.next_out = self.out_buckets[bout];
            self.out_buckets[bout] = idx;
        }
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

    /// Removes `idx` from both indexes and the wheel and frees its slot.
    pub fn remove(&mut self, idx: u32) {
        let s = self.slots[idx as usize];
        let bin = self.bucket(&s.in_key());
        let bout = self.bucket(&s.out_key());
        Self::unchain(&mut self.in_buckets[bin], &mut self.slots, idx, |s| &mut s.next_in);
        if s.flags & FLAG_NO_OUT == 0 {
            Self::unchain(&mut self.out_buckets[bout], &mut self.slots, idx, |s| &mut s.next_out);
        }
        self.wheel_unlink(idx);
        if s.control != NIL {
            let t = &mut self.slots[s.control as usize];
            t.lport = t.lport.saturating_sub(1);
            if t.lport == 0 {
                // Measured from when the connection ended: its deadline, or
                // now if it was removed early. (Not the wheel cursor, which
                // lags the clock while a long pause is caught up.) The wheel
                // moves lazily: a later deadline needs no relink.
                let ended = s.expires.min(self.now_tick);
                t.expires = t.expires.max(ended + ms_to_tick(t.lip as u64));
            }
        }
        let slot = &mut self.slots[idx as usize];
        // Protocol 0 marks a free slot (see `slot`).
        slot.proto = 0;
        slot.next_in = self.free_head;
        self.free_head = idx;
        self.live -= 1;
    }

    fn unchain(head: &mut u32, slots: &mut [Session], idx: u32, link: fn(&mut Session) -> &mut u32) {
        if *head == idx {
            *head = *link(&mut slots[idx as usize]);
            return;
        }
        let mut i = *head;
        while i != NIL {
            let next = *link(&mut slots[i as usize]);
            if next == idx {
                let after = *link(&mut slots[idx as usize]);
                *link(&mut slots[i as usize]) = after;
                return;
            }
            i = next;
        }
        debug_assert!(false, "session {idx} missing from its chain");
    }

    fn wheel_link(&mut self, idx: u32, deadline: u32) {
        // Never schedule into the past or beyond one lap of the wheel.
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

    /// Expires sessions whose deadline is at or before `now_ms`. For each,
    /// `on_expire` decides: `None` frees it, `Some(ms)` keeps it for `ms`
    /// more (a persistence template that still controls connections).
    /// Examines at most `budget` sessions, so one call's cost is bounded;
    /// returns the number freed.
    pub fn expire(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut on_expire: impl FnMut(&Session) -> Option<u64>,
    ) -> usize {
        let now = ms_to_tick(now_ms);
        self.now_tick = now;
        // After a long pause, one lap visits every slot: skip the rest.
        if now.saturating_sub(self.cur_tick) >= WHEEL_SLOTS as u32 {
            self.cur_tick = now - WHEEL_SLOTS as u32 + 1;
        }
        let mut examined = 0;
        let mut expired = 0;
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
                        // expires > now >= cur_tick, so this lands in another slot.
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

    /// The live session in slot `i`, if any (connection listing walks the
    /// slots in chunks; a free slot has protocol 0, which no session has).
    #[inline]
    pub fn slot(&self, i: usize) -> Option<&Session> {
        self.slots.get(i).filter(|s| s.proto != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp_state::Timeouts;

    fn sess(cport: u16, lport: u16, rs: u32) -> Session {
        Session::new(
            6,
            (0xc612_0002, cport),
            (0xc612_0064, 80),
            (rs, 80),
            (0xc612_010a, lport),
            State::SynRecv,
            0,
            0,
            0,
        )
    }

    #[test]
    fn both_directions_find_the_session() {
        let mut t = SessionTable::new(16, 42, 0);
        let s = sess(40000, 5000, 0xc612_0102);
        let i = t.insert(s, 0, 1000).unwrap();
        assert_eq!(t.lookup_in(&s.in_key()), Some(i));
        assert_eq!(t.lookup_out(&s.out_key()), Some(i));
        assert_eq!(t.slot(i as usize).map(|x| x.cport), Some(40000));
        let mut other = s.in_key();
        other.sport = 40001;
        assert_eq!(t.lookup_in(&other), None);
        t.remove(i);
        assert_eq!(t.lookup_in(&s.in_key()), None);
        assert_eq!(t.lookup_out(&s.out_key()), None);
        assert!(t.slot(i as usize).is_none(), "a freed slot reads as empty");
        assert!(t.is_empty());
    }

    #[test]
    fn sessions_without_a_reply_key_are_found_from_the_client_side_only() {
        let mut t = SessionTable::new(16, 42, 0);
        let mut s = sess(40000, 40000, 0xc612_0102);
        s.flags = FLAG_NO_OUT;
        let i = t.insert(s, 0, 1000).unwrap();
        assert_eq!(t.lookup_in(&s.in_key()), Some(i));
        assert_eq!(t.lookup_out(&s.out_key()), None);
        t.remove(i);
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_refuses_new_sessions_and_keeps_old_ones() {
        let mut t = SessionTable::new(4, 1, 0);
        let keys: Vec<_> = (0..4).map(|n| sess(1000 + n, 2000 + n, 7)).collect();
        for s in &keys {
            t.insert(*s, 0, 10_000).unwrap();
        }
        assert_eq!(t.insert(sess(9, 9, 7), 0, 10_000), Err(Full));
        for s in &keys {
            assert!(t.lookup_in(&s.in_key()).is_some());
        }
        // A freed slot is reused.
        let i = t.lookup_in(&keys[2].in_key()).unwrap();
        t.remove(i);
        assert!(t.insert(sess(9, 9, 7), 0, 10_000).is_ok());
    }

    #[test]
    fn sessions_expire_by_state_timeout_with_a_driven_clock() {
        let to = Timeouts::default();
        let mut t = SessionTable::new(64, 3, 0);
        let syn = t.insert(sess(1, 1, 1), 0, to.of_ms(State::SynRecv)).unwrap();
        let est = t.insert(sess(2, 2, 1), 0, to.of_ms(State::Established)).unwrap();
        let mut gone = vec![];
        t.expire(59_000, usize::MAX, |s| {
            gone.push(s.cport);
            None
        });
        assert!(gone.is_empty());
        t.expire(60_100, usize::MAX, |s| {
            gone.push(s.cport);
            None
        });
        assert_eq!(gone, vec![1]);
        assert!(t.lookup_in(&t.get(est).in_key()).is_some());
        let _ = syn;
        // Traffic keeps the established one alive past its first deadline.
        t.touch(est, 800_000, to.of_ms(State::Established));
        t.expire(1_000_000, usize::MAX, |s| {
            gone.push(s.cport);
            None
        });
        assert_eq!(gone, vec![1]);
        t.expire(1_700_100, usize::MAX, |s| {
            gone.push(s.cport);
            None
        });
        assert_eq!(gone, vec![1, 2]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_shorter_timeout_takes_effect_at_once() {
        let mut t = SessionTable::new(8, 3, 0);
        let i = t.insert(sess(1, 1, 1), 0, 900_000).unwrap();
        t.touch(i, 1_000, 10_000); // e.g. ESTABLISHED -> CLOSE
        let mut n = 0;
        t.expire(11_100, usize::MAX, |_| {
            n += 1;
            None
        });
        assert_eq!(n, 1);
    }

    #[test]
    fn expiry_work_is_bounded_per_call() {
        let mut t = SessionTable::new(1000, 3, 0);
        for n in 0..1000 {
            t.insert(sess(n, n, 1), 0, 1000).unwrap();
        }
        let first = t.expire(5_000, 100, |_| None);
        assert_eq!(first, 100);
        let mut total = first;
        while total < 1000 {
            total += t.expire(5_000, 100, |_| None);
        }
        assert!(t.is_empty());
    }

    #[test]
    fn a_long_pause_does_not_lose_sessions() {
        let mut t = SessionTable::new(8, 3, 0);
        t.insert(sess(1, 1, 1), 0, 300_000).unwrap();
        let mut n = 0;
        t.expire(10_000_000, usize::MAX, |_| {
            n += 1;
            None
        });
        assert_eq!(n, 1);
    }

    #[test]
    fn a_template_lives_while_it_controls_connections() {
        let mut t = SessionTable::new(8, 3, 0);
        let mut tpl = sess(0, 0, 1);
        tpl.flags = FLAG_TEMPLATE | FLAG_NO_OUT;
        tpl.lip = 2_000;
        let ti = t.insert(tpl, 0, 1_000).unwrap();
        let mut c = sess(40000, 5000, 1);
        c.control = ti;
        t.get_mut(ti).lport += 1;
        let ci = t.insert(c, 0, 60_000).unwrap();
        let keep = |s: &Session| (s.flags & FLAG_TEMPLATE != 0 && s.lport > 0).then_some(1_000);
        assert_eq!(t.expire(5_000, usize::MAX, keep), 0, "kept: it controls a connection");
        assert!(t.slot(ti as usize).is_some());
        assert_eq!(t.expire(61_000, usize::MAX, keep), 1, "the connection expires");
        assert_eq!(t.get(ti).lport, 0, "and no longer counts");
        assert_eq!(t.expire(61_500, usize::MAX, keep), 0, "the template lives its timeout again");
        assert_eq!(t.expire(62_200, usize::MAX, keep), 1, "then it goes, 2 s after its last connection");
        assert!(t.is_empty());
        let _ = ci;
    }

    #[test]
    fn session_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Session>(), 64);
    }
}

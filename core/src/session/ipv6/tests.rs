use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::session::Full;

const CIP: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0100;
const VIP: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001;
const RIP: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0002;
const LIP: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0010;

fn sess(cport: u16, lport: u16, rip: u128) -> Session6 {
    Session6::new(
        Protocol::Tcp,
        (CIP, cport),
        (VIP, 80),
        (rip, 8080),
        (LIP, lport),
        State::SynRecv,
        ForwardMode::FullNat,
        1,
        2,
    )
}

#[test]
fn a_session_is_two_lines_and_found_by_both_keys_only() {
    assert_eq!(std::mem::size_of::<Session6>(), 128);
    assert_eq!(std::mem::align_of::<Session6>(), 64);
    let mut t = SessionTable6::new(16, 7, 0);
    let s = sess(40000, 5000, RIP);
    let i = t.insert(s, 0, 1000).unwrap();
    assert_eq!(t.lookup_in(&s.in_key()), Some(i));
    assert_eq!(t.lookup_out(&s.out_key()), Some(i));
    // The same ports with one address bit changed, in either half, is
    // another flow; so is UDP.
    for k in [
        FlowKey6 { src: CIP ^ 1, ..s.in_key() },
        FlowKey6 { src: CIP ^ (1 << 100), ..s.in_key() },
        FlowKey6 { dst: VIP ^ (1 << 64), ..s.in_key() },
        FlowKey6 { proto: Protocol::Udp, ..s.in_key() },
    ] {
        assert_eq!(t.lookup_in(&k), None, "{k:?}");
    }
    assert_eq!(t.lookup_out(&s.in_key()), None);
    t.remove(i);
    assert!(t.is_empty() && t.lookup_in(&s.in_key()).is_none() && t.lookup_out(&s.out_key()).is_none());
}

#[test]
fn no_out_sessions_are_not_in_the_reply_index() {
    let mut t = SessionTable6::new(4, 1, 0);
    let mut s = sess(1, 0, RIP);
    s.flags = Flags::NO_OUT;
    let i = t.insert(s, 0, 1000).unwrap();
    assert_eq!(t.lookup_in(&s.in_key()), Some(i));
    assert_eq!(t.lookup_out(&s.out_key()), None);
    t.remove(i);
    assert!(t.is_empty());
}

#[test]
fn sessions_expire_at_their_deadline_and_touch_moves_it() {
    let mut t = SessionTable6::new(8, 3, 0);
    let a = t.insert(sess(1, 1, RIP), 0, 1000).unwrap();
    let b = t.insert(sess(2, 2, RIP), 0, 1000).unwrap();
    t.touch(b, 500, 5000);
    assert_eq!(t.expire(900, 100, |_| None), 0);
    assert_eq!(t.expire(1100, 100, |_| None), 1);
    assert!(t.slot(a as usize).is_none() && t.slot(b as usize).is_some());
    // A bounded call examines at most its budget.
    assert_eq!(t.expire(6000, 0, |_| None), 0);
    // Kept once for 1 s more, then freed.
    let mut kept = false;
    let freed = t.expire(6000, 100, |_| {
        if kept {
            None
        } else {
            kept = true;
            Some(1000)
        }
    });
    assert_eq!(freed, 0);
    assert_eq!(t.expire(7100, 100, |_| None), 1);
    assert!(t.is_empty());
}

#[test]
fn a_template_counts_its_connections_and_outlives_the_last_by_its_timeout() {
    let mut t = SessionTable6::new(8, 5, 0);
    let mut tpl = sess(0, 0, RIP);
    tpl.flags = Flags::TEMPLATE | Flags::NO_OUT;
    tpl.lip = 0;
    tpl.set_timeout_ms(3000);
    tpl.set_n_control(1);
    let ti = t.insert(tpl, 0, 3000).unwrap();
    let mut c = sess(1, 1, RIP);
    c.control = ti;
    let ci = t.insert(c, 0, 10_000).unwrap();
    t.remove(ci);
    assert_eq!(t.get(ti).n_control(), 0);
    assert_eq!(t.get(ti).timeout_ms(), 3000);
    assert!(t.get(ti).expires_in_ms(0) >= 2900);
}

#[test]
fn a_full_table_refuses_and_stays_consistent() {
    let mut t = SessionTable6::new(2, 9, 0);
    t.insert(sess(1, 1, RIP), 0, 1000).unwrap();
    t.insert(sess(2, 2, RIP), 0, 1000).unwrap();
    assert_eq!(t.insert(sess(3, 3, RIP), 0, 1000), Err(Full));
    assert_eq!(t.len(), 2);
}

proptest! {
    /// The table against a `HashMap` model: inserts, removes and lookups
    /// in both directions, over addresses that differ in either half.
    #[test]
    fn table_agrees_with_a_hashmap(
        ops in prop::collection::vec((any::<bool>(), 0u16..64, 0u8..4), 1..300),
    ) {
        let cap = 128;
        let mut t = SessionTable6::new(cap, 11, 0);
        let mut model: HashMap<u16, (u32, Session6)> = HashMap::new();
        for (insert, cport, r) in ops {
            let rip = RIP ^ (u128::from(r) << (32 * u32::from(r)));
            let s = sess(10_000 + cport, 20_000 + cport, rip);
            match (insert, model.get(&cport).copied()) {
                (true, None) => {
                    let i = t.insert(s, 0, 1000).unwrap();
                    model.insert(cport, (i, s));
                }
                (false, Some((i, _))) => {
                    t.remove(i);
                    model.remove(&cport);
                }
                _ => {}
            }
            prop_assert_eq!(t.len(), model.len());
            for (i, s) in model.values() {
                prop_assert_eq!(t.lookup_in(&s.in_key()), Some(*i));
                prop_assert_eq!(t.lookup_out(&s.out_key()), Some(*i));
            }
        }
    }
}

//! Tests of [`super`]: advertisements and solicitations built by
//! etherparse, what the engine learns from them, the RFC 4861 checks and
//! the anti-flood rules; routed echo replies.

use std::net::Ipv6Addr;

use etherparse::{Icmpv6Type, PacketBuilder};

use crate::counters::Drop;
use crate::engine::ipv6::tests::{
    dual, echo_from, engine_with_routes, ns, read, GW6, GW_MAC, HOST6, HOST_MAC,
};
use crate::engine::Action;
use crate::route::Route6;
use crate::wire::ethernet::MacAddr;
use crate::wire::ipv6;

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A neighbour advertisement for `target` from `src` to `dst` with
/// `flags` (R/S/O) and, if given, a target link-layer option.
pub(crate) fn na(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
    tlla: Option<[u8; 6]>,
    hop: u8,
) -> Vec<u8> {
    let mut body = target.octets().to_vec();
    if let Some(mac) = tlla {
        body.extend_from_slice(&[2, 1]);
        body.extend_from_slice(&mac);
    }
    let dst_mac = if dst.is_multicast() { ipv6::multicast_mac(dst).0 } else { GW_MAC.0 };
    let b = PacketBuilder::ethernet2(HOST_MAC, dst_mac)
        .ipv6(src.octets(), dst.octets(), hop)
        .icmpv6(Icmpv6Type::Unknown { type_u8: 136, code_u8: 0, bytes5to8: [flags, 0, 0, 0] });
    let mut out = Vec::new();
    b.write(&mut out, &body).unwrap();
    out
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn an_advertisement_to_us_is_learnt_without_making_an_entry() {
    let mut e = dual();
    let a = e.process(0, 0, &mut na(HOST6, GW6, HOST6, 0x60, Some(HOST_MAC), 255));
    assert_eq!(
        a,
        Action::Nd {
            port: 0,
            addr: u128::from(HOST6),
            mac: MacAddr(HOST_MAC),
            create: false,
            replace: true,
            reply: 0,
            kernel: false
        }
    );
    // From a link-local source, for its link-local target: the same.
    let ll = v6("fe80::42");
    let Action::Nd { addr, create: false, .. } =
        e.process(0, 0, &mut na(ll, GW6, ll, 0x60, Some(HOST_MAC), 255))
    else {
        panic!("not learnt")
    };
    assert_eq!(Ipv6Addr::from(addr), ll);
}

#[test]
fn an_unsolicited_advertisement_to_all_nodes_only_updates() {
    let mut e = dual();
    // Gratuitous: to ff02::1, S clear, O set.
    let a = e.process(0, 0, &mut na(HOST6, ALL_NODES, HOST6, 0x20, Some(HOST_MAC), 255));
    assert!(matches!(a, Action::Nd { create: false, reply: 0, .. }), "{a:?}");
    // The solicited flag on a multicast advertisement is invalid (§7.1.2).
    let a = e.process(0, 0, &mut na(HOST6, ALL_NODES, HOST6, 0x60, Some(HOST_MAC), 255));
    assert_eq!(a, Action::Drop(Drop::NdInvalid));
}

#[test]
fn advertisements_failing_the_rules_are_dropped_by_name() {
    let mut e = dual();
    let far = v6("2001:db8:1::2");
    for (what, mut f, why) in [
        ("forwarded (hop limit 64)", na(HOST6, GW6, HOST6, 0x60, Some(HOST_MAC), 64), Drop::NdInvalid),
        ("off-link source", na(far, GW6, HOST6, 0x60, Some(HOST_MAC), 255), Drop::NdInvalid),
        ("off-link target", na(HOST6, GW6, far, 0x60, Some(HOST_MAC), 255), Drop::NdInvalid),
        ("multicast target", na(HOST6, GW6, ALL_NODES, 0x60, Some(HOST_MAC), 255), Drop::NdInvalid),
        ("no target link-layer address", na(HOST6, GW6, HOST6, 0x60, None, 255), Drop::NdInvalid),
        (
            "a multicast link-layer address",
            na(HOST6, GW6, HOST6, 0x60, Some([0x33, 0x33, 0, 0, 0, 1]), 255),
            Drop::NdInvalid,
        ),
        (
            "to another unicast address",
            na(HOST6, v6("2001:db8::77"), HOST6, 0x60, Some(HOST_MAC), 255),
            Drop::NotForUs,
        ),
    ] {
        assert_eq!(e.process(0, 0, &mut f), Action::Drop(why), "{what}");
    }
    // A broken checksum never reaches the rules.
    let mut f = na(HOST6, GW6, HOST6, 0x60, Some(HOST_MAC), 255);
    let n = f.len();
    f[n - 1] ^= 1;
    assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::Ipv6Malformed));
}

#[test]
fn a_solicitation_without_a_source_link_layer_option_is_answered_but_teaches_nothing() {
    let mut e = dual();
    let mut f = ns(HOST6, GW6, 255);
    // Cut the option off (and fix the lengths and checksum with etherparse).
    let body = GW6.octets();
    let b = PacketBuilder::ethernet2(HOST_MAC, GW_MAC.0)
        .ipv6(HOST6.octets(), GW6.octets(), 255)
        .icmpv6(Icmpv6Type::Unknown { type_u8: 135, code_u8: 0, bytes5to8: [0; 4] });
    f.clear();
    b.write(&mut f, &body).unwrap();
    let Action::Reply { port: 0, len } = e.process(0, 0, &mut f) else { panic!("not answered") };
    // An advertisement with no option (there was no room for one), to the frame's source MAC.
    assert_eq!(len, 14 + 40 + 24);
    assert_eq!(&f[..6], &HOST_MAC);
    assert_eq!(f[14 + 40], 136);
}

#[test]
fn an_echo_from_beyond_a_router_is_routed_back_through_it() {
    let router = v6("2001:db8::fe");
    let client = v6("2001:db8:77::9");
    let def = Route6 { net: 0, prefix: 0, via: Some(u128::from(router)), port: 0 };
    let mut e = engine_with_routes(Some((GW6, 64)), &[def]);
    // The request came through the router (from HOST_MAC here).
    let mut f = echo_from(client, GW6, GW_MAC);
    let a = e.process(0, 0, &mut f);
    assert_eq!(a, Action::Forward6 { port: 0, next_hop: u128::from(router) });
    let (_, _, src, dst, hop, icmp) = read(&f);
    assert_eq!((src, dst, hop, icmp[0]), (GW6, client, 64, 129));
    // Without a route back: counted.
    let mut e = dual();
    let mut f = echo_from(client, GW6, GW_MAC);
    assert_eq!(e.process(0, 0, &mut f), Action::Drop(Drop::NoRoute));
}

#[test]
fn a_neighbours_duplicate_address_detection_is_not_ours_a_claim_on_ours_is_refused() {
    let mut e = dual();
    assert_eq!(
        e.process(0, 0, &mut ns(Ipv6Addr::UNSPECIFIED, v6("fe80::9"), 255)),
        Action::Drop(Drop::NotForUs)
    );
    assert_eq!(e.process(0, 0, &mut ns(Ipv6Addr::UNSPECIFIED, GW6, 255)), Action::Drop(Drop::NdInvalid));
}

proptest::proptest! {
    /// Any advertisement (random hop limit, flags, source, target,
    /// destination, option bytes, cut short) is learnt only when every rule
    /// holds, and then exactly as sent; otherwise dropped by name. Nothing
    /// panics.
    #[test]
    fn random_advertisements_are_learnt_only_by_the_rules(
        hop in proptest::prop_oneof![proptest::strategy::Just(255u8), proptest::prelude::any::<u8>()],
        flags: u8,
        src_kind in 0u8..3,
        target_kind in 0u8..3,
        to_all_nodes: bool,
        opt in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16),
        cut in 0usize..8,
    ) {
        let pick = |kind: u8, low: u16| match kind {
            0 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 3, low),
            1 => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 3, low),
            _ => Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, low),
        };
        let (src, target) = (pick(src_kind, 1), pick(target_kind, 2));
        let dst = if to_all_nodes { ALL_NODES } else { GW6 };
        let mut body = target.octets().to_vec();
        body.extend_from_slice(&opt);
        let dst_mac = if to_all_nodes { ipv6::multicast_mac(dst).0 } else { GW_MAC.0 };
        let mut f = Vec::new();
        PacketBuilder::ethernet2(HOST_MAC, dst_mac)
            .ipv6(src.octets(), dst.octets(), hop)
            .icmpv6(Icmpv6Type::Unknown { type_u8: 136, code_u8: 0, bytes5to8: [flags, 0, 0, 0] })
            .write(&mut f, &body)
            .unwrap();
        let keep = f.len() - cut.min(f.len() - 14);
        f.truncate(keep);
        let mut e = dual();
        match e.process(0, 0, &mut f) {
            Action::Nd { addr, mac, create, reply, .. } => {
                proptest::prop_assert!(!create && reply == 0);
                proptest::prop_assert!(hop == 255 && src_kind < 2 && target_kind < 2 && cut == 0);
                proptest::prop_assert!(!(to_all_nodes && flags & 0x40 != 0));
                proptest::prop_assert_eq!(Ipv6Addr::from(addr), target);
                // The target link-layer option, found by a walk of the
                // option bytes here (RFC 4861 §4.6: type, length in 8-byte units).
                let mut i = 0;
                let mut tlla = None;
                while i + 2 <= opt.len() && opt[i + 1] != 0 {
                    let len = usize::from(opt[i + 1]) * 8;
                    if opt[i] == 2 && len == 8 && i + 8 <= opt.len() && tlla.is_none() {
                        tlla = Some(opt[i + 2..i + 8].to_vec());
                    }
                    i += len;
                }
                proptest::prop_assert_eq!(Some(mac.0.to_vec()), tlla);
            }
            Action::Drop(Drop::NdInvalid | Drop::Ipv6Malformed | Drop::NotForUs) => {}
            other => proptest::prop_assert!(false, "{other:?}"),
        }
    }
}

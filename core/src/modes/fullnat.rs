//! FULLNAT (`-b`, DPVS's `dp_vs_xmit_fnat`): SNAT to a local address and
//! port and DNAT to the real server on the way in, the reverse on the way
//! out. The real server sees only the gateway, so its replies come back
//! whatever its routes, to LIP:lport, which is the reply key.
//!
//! Invariant: a bound local port is free toward its real server (no live
//! reply key (proto, RIP, rport, LIP, lport)) and belongs to this worker's
//! partition (`lport % workers == worker`), so replies steer to this worker
//! (see [`crate::engine::conn::alloc_lport`]), chosen from a keyed hash
//! (RFC 6056), so it cannot be guessed. The rewrite is NAT's.

use super::nat::{rewrite_tcp_shifted, xmit_session};
use super::{rs_port, BindCx, Bound, Mode, XmitCx};
use crate::counters::Drop;
use crate::engine::conn::alloc_lport;
use crate::engine::Action;
use crate::service::Dest;
use crate::session::{Flags, FlowKey, Session};
use crate::tcp_state::Dir;

/// FULLNAT.
pub struct FullNat;

impl Mode for FullNat {
    const ROUTED: bool = true;
    const IN_TABLE: Dir = Dir::Input;
    const REPLIES_TO_CLIENT: bool = false;

    #[inline]
    fn bind(cx: &mut BindCx<'_>, key: &FlowKey, dest: &Dest) -> Result<Bound, Drop> {
        let rs = (dest.addr4(), rs_port(key, dest));
        let (local, reply_hash) = alloc_lport(cx, key, rs, dest.slot)?;
        Ok(Bound { rs, local, flags: Flags::NONE, reply_hash })
    }

    /// CIP:cport -> VIP:vport becomes LIP:lport -> RIP:rport.
    #[inline(always)]
    fn xmit_in(cx: &XmitCx<'_>, s: &Session, frame: &mut [u8]) -> Action {
        xmit_session(cx, s, false, frame)
    }

    /// RIP:rport -> LIP:lport becomes VIP:vport -> CIP:cport.
    #[inline(always)]
    fn xmit_out(cx: &XmitCx<'_>, s: &Session, frame: &mut [u8]) -> Action {
        xmit_session(cx, s, true, frame)
    }
}

/// [`FullNat`]'s transmit of an established PROXY segment: the rewrite of
/// `xmit_in`/`xmit_out` with the TCP field at `at` set to `new` in the
/// same checksum update ([`crate::client_addr::established_shift`]).
#[inline(always)]
pub(crate) fn xmit_shifted(
    cx: &XmitCx<'_>,
    s: &Session,
    out: bool,
    frame: &mut [u8],
    at: usize,
    new: u32,
) -> Action {
    let (src, dst) =
        if out { ((s.vip, s.vport), (s.cip, s.cport)) } else { ((s.lip, s.lport), (s.rip, s.rport)) };
    let ip = &mut frame[crate::wire::ethernet::HEADER_LEN..crate::wire::ethernet::HEADER_LEN + cx.tl];
    rewrite_tcp_shifted(ip, src, dst, at, new);
    Action::Forward { port: cx.port, next_hop: cx.next_hop }
}

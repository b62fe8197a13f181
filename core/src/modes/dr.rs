//! DR (`-g`, direct routing, DPVS's `dp_vs_xmit_dr`): the packet goes to
//! the real server unchanged but for the Ethernet header; the real server
//! holds the VIP and answers the client directly.
//!
//! Invariant: no reply key ([`Flags::NO_OUT`]); the gateway only sees
//! client packets, so TCP uses the INPUT-ONLY table. As in ipvsadm, the real
//! server's port is the service port.

use super::{BindCx, Bound, Mode, XmitCx};
use crate::counters::Drop;
use crate::engine::Action;
use crate::service::Dest;
use crate::session::{Flags, FlowKey, Session};
use crate::tcp_state::Dir;

/// Direct routing.
pub struct Dr;

impl Mode for Dr {
    const ROUTED: bool = false;
    const IN_TABLE: Dir = Dir::InputOnly;
    const REPLIES_TO_CLIENT: bool = false;

    #[inline]
    fn bind(_: &mut BindCx<'_>, key: &FlowKey, dest: &Dest) -> Result<Bound, Drop> {
        Ok(Bound {
            rs: (dest.addr4(), key.dport),
            local: (key.src, key.sport),
            flags: Flags::NO_OUT,
            reply_hash: None,
        })
    }

    /// Only the MACs change (the worker writes them for the next hop).
    #[inline]
    fn xmit_in(cx: &XmitCx<'_>, _: &Session, _: &mut [u8]) -> Action {
        Action::Forward { port: cx.port, next_hop: cx.next_hop }
    }

    /// Never reached: the session has no reply key.
    #[inline]
    fn xmit_out(_: &XmitCx<'_>, _: &Session, _: &mut [u8]) -> Action {
        Action::Drop(Drop::UnknownReply)
    }
}

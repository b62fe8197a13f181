//! [`FlowRule`]: `rte_flow` rules that put a local address's replies on the
//! rx queue of the worker that owns their destination port, so that the NIC
//! does the steering that `dataplane::steer` otherwise does in software.
//!
//! Worker *i* of *N* owns the local ports `p` with `p % N == i`; when *N* is
//! a power of two that is `p & (N - 1) == i`, which a flow pattern can match
//! with a port mask. Rules are validated first; a port that refuses them
//! (most virtual devices) keeps the software path, which is always there.

use std::net::Ipv4Addr;
use std::ptr::{self, NonNull};

use dpdk_sys as sys;

use super::eal::Hold;
use super::error::DpdkError;
use super::port::Port;

/// A flow rule on a port; destroyed on drop.
pub struct FlowRule {
    port: u16,
    flow: NonNull<sys::rte_flow>,
}

// SAFETY: a flow handle is an opaque token for rte_flow_destroy, which may
// be called from any thread of the process (the control path).
unsafe impl Send for FlowRule {}

fn flow_error(op: &'static str, ret: i32, err: &sys::rte_flow_error) -> DpdkError {
    if !err.message.is_null() {
        // SAFETY: DPDK sets message to a NUL-terminated static string or NULL.
        let msg = unsafe { std::ffi::CStr::from_ptr(err.message) }.to_string_lossy().into_owned();
        tracing::debug!(op, %msg, "flow rule refused");
    }
    DpdkError::from_errno(op, ret.saturating_neg().max(1))
}

impl Port {
    /// A rule: IPv4 to `addr`, protocol `proto` (6 or 17), destination port
    /// `p` with `p & (workers - 1) == worker`, to rx queue `worker`.
    /// `workers` must be a power of two. Refused rules are an error.
    pub fn steer_local_ports(
        &self,
        addr: Ipv4Addr,
        proto: u8,
        worker: u16,
        workers: u16,
    ) -> Result<FlowRule, DpdkError> {
        const OP: &str = "rte_flow_create";
        if !workers.is_power_of_two() || worker >= workers {
            return Err(DpdkError::InvalidArgument {
                op: OP,
                reason: "workers must be a power of two above worker",
            });
        }
        let _hold = Hold::acquire(OP)?;
        let mut attr = sys::rte_flow_attr::default();
        attr.set_ingress(1);
        let mut ip_spec = sys::rte_flow_item_ipv4::default();
        let mut ip_mask = sys::rte_flow_item_ipv4::default();
        ip_spec.hdr.dst_addr = u32::from(addr).to_be();
        ip_mask.hdr.dst_addr = u32::MAX;
        let mut tcp_spec = sys::rte_flow_item_tcp::default();
        let mut tcp_mask = sys::rte_flow_item_tcp::default();
        tcp_spec.hdr.dst_port = worker.to_be();
        tcp_mask.hdr.dst_port = (workers - 1).to_be();
        let mut udp_spec = sys::rte_flow_item_udp::default();
        let mut udp_mask = sys::rte_flow_item_udp::default();
        udp_spec.hdr.dst_port = worker.to_be();
        udp_mask.hdr.dst_port = (workers - 1).to_be();
        let l4 = match proto {
            6 => (
                sys::RTE_FLOW_ITEM_TYPE_TCP,
                &tcp_spec as *const _ as *const _,
                &tcp_mask as *const _ as *const _,
            ),
            17 => (
                sys::RTE_FLOW_ITEM_TYPE_UDP,
                &udp_spec as *const _ as *const _,
                &udp_mask as *const _ as *const _,
            ),
            _ => return Err(DpdkError::InvalidArgument { op: OP, reason: "protocol must be TCP or UDP" }),
        };
        let item = |type_, spec, mask| sys::rte_flow_item { type_, spec, last: ptr::null(), mask };
        let pattern = [
            item(sys::RTE_FLOW_ITEM_TYPE_ETH, ptr::null(), ptr::null()),
            item(
                sys::RTE_FLOW_ITEM_TYPE_IPV4,
                &ip_spec as *const _ as *const _,
                &ip_mask as *const _ as *const _,
            ),
            item(l4.0, l4.1, l4.2),
            item(sys::RTE_FLOW_ITEM_TYPE_END, ptr::null(), ptr::null()),
        ];
        let queue = sys::rte_flow_action_queue { index: worker };
        let actions = [
            sys::rte_flow_action {
                type_: sys::RTE_FLOW_ACTION_TYPE_QUEUE,
                conf: &queue as *const _ as *const _,
            },
            sys::rte_flow_action { type_: sys::RTE_FLOW_ACTION_TYPE_END, conf: ptr::null() },
        ];
        // SAFETY: rte_flow_error is plain data; DPDK fills it on failure.
        let mut err: sys::rte_flow_error = unsafe { std::mem::zeroed() };
        // SAFETY: EAL is running (hold); attr, pattern and actions are valid,
        // END-terminated arrays whose spec/mask/conf pointers outlive the
        // call; DPDK copies what it keeps.
        let ret =
            unsafe { sys::rte_flow_validate(self.id(), &attr, pattern.as_ptr(), actions.as_ptr(), &mut err) };
        if ret != 0 {
            return Err(flow_error("rte_flow_validate", ret, &err));
        }
        // SAFETY: as for the validation.
        let flow =
            unsafe { sys::rte_flow_create(self.id(), &attr, pattern.as_ptr(), actions.as_ptr(), &mut err) };
        match NonNull::new(flow) {
            Some(flow) => Ok(FlowRule { port: self.id(), flow }),
            None => Err(flow_error(OP, -libc::EINVAL, &err)),
        }
    }
}

impl Drop for FlowRule {
    fn drop(&mut self) {
        let Ok(_hold) = Hold::acquire("rte_flow_destroy") else { return };
        // SAFETY: rte_flow_error is plain data.
        let mut err: sys::rte_flow_error = unsafe { std::mem::zeroed() };
        // SAFETY: EAL is running; flow came from rte_flow_create on this
        // port and is destroyed once (we own it).
        let ret = unsafe { sys::rte_flow_destroy(self.port, self.flow.as_ptr(), &mut err) };
        if ret != 0 {
            tracing::warn!(port = self.port, "rte_flow_destroy failed");
        }
    }
}

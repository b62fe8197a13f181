//! Receive-ring drops of `net_af_packet` ports, which DPDK 22.11's
//! af_packet driver does not report: its `rte_eth_stats` has no `imissed`
//! (the driver never asks the kernel), so a frame the kernel could not put
//! in a full rx ring (the worker was too slow) had no number anywhere.
//!
//! The kernel counts them per packet socket (`PACKET_STATISTICS`,
//! `tp_drops`, packet(7)). The driver's sockets are this process's own file
//! descriptors, so [`packet_ring_drops`] finds the AF_PACKET sockets bound
//! to an interface and reads their statistics. The kernel resets them on
//! each read: the caller adds up what each call returns (one reader only,
//! the control plane). A driver that reads them itself for `imissed` (as
//! later af_packet drivers may) gets a disjoint share, so its `imissed`
//! plus these still count every drop once. Never called on the packet path.

use std::ffi::CString;
use std::io;
use std::mem::size_of;

/// Frames the kernel dropped since the last call because the rx ring of
/// one of this process's AF_PACKET sockets bound to interface `ifname` was
/// full (the sum of their `tp_drops`). `Err` if `ifname` is not an
/// interface or `/proc/self/fd` cannot be read.
pub fn packet_ring_drops(ifname: &str) -> io::Result<u64> {
    let name = CString::new(ifname).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: name is a NUL-terminated string that outlives the call.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut drops = 0u64;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Some(fd) = entry?.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if bound_to(fd) == Some(ifindex as i32) {
            drops += socket_drops(fd).unwrap_or(0);
        }
    }
    Ok(drops)
}

/// The interface index an AF_PACKET socket `fd` is bound to; `None` for
/// anything else (another kind of socket or file, or a closed fd: the
/// listing may be stale, and every call here only reads).
fn bound_to(fd: i32) -> Option<i32> {
    // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: addr is writable for len bytes and len says so; the kernel
    // writes at most len bytes and checks fd itself (EBADF, ENOTSOCK).
    let ret = unsafe { libc::getsockname(fd, (&raw mut addr).cast(), &mut len) };
    (ret == 0 && i32::from(addr.sll_family) == libc::AF_PACKET).then_some(addr.sll_ifindex)
}

/// `tp_drops` of packet socket `fd` (which the read resets).
fn socket_drops(fd: i32) -> Option<u64> {
    let mut st = libc::tpacket_stats { tp_packets: 0, tp_drops: 0 };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: st is writable for len bytes and len says so; the kernel
    // checks fd and the option level.
    let ret = unsafe {
        libc::getsockopt(fd, libc::SOL_PACKET, libc::PACKET_STATISTICS, (&raw mut st).cast(), &mut len)
    };
    (ret == 0).then_some(u64::from(st.tp_drops))
}

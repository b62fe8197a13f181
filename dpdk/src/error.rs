//! [`DpdkError`]: a failed DPDK call, with the operation, errno and
//! `rte_strerror` text.

use std::ffi::CStr;

use dpdk_sys as sys;

/// A DPDK call that failed, or an argument refused before making one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// `op` failed with `errno`; `msg` is `rte_strerror(errno)`.
    #[error("{op} failed: {msg} (errno {errno})")]
    Call { op: &'static str, errno: i32, msg: String },
    /// An argument DPDK cannot take (for example a name with a NUL byte).
    #[error("{op}: invalid argument: {reason}")]
    InvalidArgument { op: &'static str, reason: &'static str },
}

impl DpdkError {
    /// The error `errno` (positive) for operation `op`.
    pub fn from_errno(op: &'static str, errno: i32) -> Self {
        DpdkError::Call { op, errno, msg: strerror(errno) }
    }

    /// From a DPDK return code of the `-errno` convention.
    pub(crate) fn from_ret(op: &'static str, ret: i32) -> Self {
        Self::from_errno(op, ret.saturating_neg())
    }

    /// From `rte_errno` of the calling thread, for calls that return NULL
    /// or -1 and report the reason there.
    pub(crate) fn last(op: &'static str) -> Self {
        // SAFETY: gw_rte_errno only reads this thread's TLS errno variable.
        let errno = unsafe { sys::gw_rte_errno() };
        Self::from_errno(op, errno)
    }

    /// The errno, or `EINVAL` for [`DpdkError::InvalidArgument`].
    pub fn errno(&self) -> i32 {
        match self {
            DpdkError::Call { errno, .. } => *errno,
            DpdkError::InvalidArgument { .. } => libc::EINVAL,
        }
    }

    /// The operation that failed.
    pub fn op(&self) -> &'static str {
        match self {
            DpdkError::Call { op, .. } | DpdkError::InvalidArgument { op, .. } => op,
        }
    }
}

/// `Ok(ret)` for `ret >= 0`, else the error `-ret`.
pub(crate) fn check(op: &'static str, ret: i32) -> Result<i32, DpdkError> {
    if ret < 0 {
        Err(DpdkError::from_ret(op, ret))
    } else {
        Ok(ret)
    }
}

/// `rte_strerror`: libc's text for system errnos, DPDK's for its own.
fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any int and returns a pointer to a
    // NUL-terminated string, static or in a per-thread buffer that stays
    // valid until this thread's next call; we copy it out at once.
    unsafe {
        let p = sys::rte_strerror(errno);
        if p.is_null() {
            return format!("errno {errno}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

//! Lcores: ids, launching closures on workers, and the TSC clock.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use dpdk_sys as sys;

use super::eal::Eal;
use super::error::DpdkError;

const MAX_LCORE: u32 = sys::RTE_MAX_LCORE;

/// A closure handed to a worker lcore, boxed twice so that a thin pointer
/// crosses the C boundary.
type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

impl Eal {
    /// The main lcore: the thread that called [`Eal::init`].
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised (self exists); reads EAL's config.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// Enabled lcores other than the main one, in id order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // rte_get_next_lcore starts *after* its first argument.
        let mut i = u32::MAX;
        loop {
            // SAFETY: EAL is initialised; any start value is accepted, and
            // the result is below RTE_MAX_LCORE or equal to it at the end.
            i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
            if i >= MAX_LCORE {
                return out;
            }
            out.push(i);
        }
    }

    /// NUMA socket of the calling lcore.
    pub fn socket_id(&self) -> i32 {
        // SAFETY: reads the calling thread's TLS socket id.
        let s = unsafe { sys::rte_socket_id() };
        i32::try_from(s).unwrap_or(sys::SOCKET_ID_ANY)
    }

    /// Runs `f` on worker `lcore` (`rte_eal_remote_launch`); its return
    /// value is what [`Eal::wait`] returns. A panic in `f` is caught and
    /// logged, and becomes -1. Fails with `EBUSY` if the lcore still runs
    /// an earlier function.
    pub fn launch<F: FnOnce() -> i32 + Send + 'static>(&self, lcore: u32, f: F) -> Result<(), DpdkError> {
        const OP: &str = "rte_eal_remote_launch";
        if !self.is_worker(lcore) {
            return Err(DpdkError::InvalidArgument { op: OP, reason: "not an enabled worker lcore" });
        }
        let job: Box<Job> = Box::new(Box::new(f));
        let arg = Box::into_raw(job).cast::<c_void>();
        // SAFETY: we are on the main lcore (Eal is !Send); `lcore` is an
        // enabled worker; `trampoline` takes ownership of `arg`, a
        // Box<Job> from Box::into_raw, exactly once if the launch succeeds.
        let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if ret < 0 {
            // SAFETY: the launch failed, so the worker never received `arg`;
            // it is still the unique owner of the Box made above.
            drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
            return Err(DpdkError::from_ret(OP, ret));
        }
        Ok(())
    }

    /// Waits for the function launched on `lcore` and returns its result
    /// (0 if nothing was launched). `-EINVAL` if `lcore` is not a worker.
    pub fn wait(&self, lcore: u32) -> i32 {
        if !self.is_worker(lcore) {
            return -libc::EINVAL;
        }
        // SAFETY: we are on the main lcore; `lcore` is an enabled worker.
        unsafe { sys::rte_eal_wait_lcore(lcore) }
    }

    fn is_worker(&self, lcore: u32) -> bool {
        // SAFETY: rte_lcore_is_enabled bounds-checks its argument.
        lcore < MAX_LCORE && lcore != self.main_lcore() && unsafe { sys::rte_lcore_is_enabled(lcore) } != 0
    }
}

/// Entry point on the worker: unboxes and runs the job.
extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> that `launch` leaked for exactly this
    // call; EAL calls the function once per successful launch.
    let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
    match catch_unwind(AssertUnwindSafe(move || (*job)())) {
        Ok(ret) => ret,
        Err(_) => {
            tracing::error!(lcore = lcore_id(), "lcore function panicked");
            -1
        }
    }
}

/// Id of the calling lcore; `u32::MAX` (`LCORE_ID_ANY`) on a thread that
/// EAL did not start.
pub fn lcore_id() -> u32 {
    // SAFETY: reads the calling thread's TLS lcore id.
    unsafe { sys::gw_rte_lcore_id() }
}

/// The time-stamp counter (`rte_rdtsc`): the worker's clock, in ticks.
pub fn tsc() -> u64 {
    // SAFETY: rte_rdtsc only reads the CPU's time-stamp counter.
    unsafe { sys::gw_rte_rdtsc() }
}

/// TSC ticks per second, as measured by EAL at init (0 before).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL stores at init.
    unsafe { sys::rte_get_tsc_hz() }
}

//! [`Eal`]: `rte_eal_init` once per process, `rte_eal_cleanup` on drop.
//!
//! # When cleanup may run
//! `rte_eal_cleanup` unmaps all DPDK memory; "after this call, no DPDK
//! function calls may be made" (rte_eal.h). Mempools, mbufs and ports are
//! not borrowed from [`Eal`] (they are `'static` so that workers can own
//! them), so the drop checks instead:
//! * it first waits for every launched lcore function to return;
//! * it then marks EAL finished and goes on only if no *hold* is
//!   outstanding. Every live mempool handle takes a hold, and so does every
//!   control-path call for its duration (a configured port keeps a pool
//!   handle, and with it a hold, until closed);
//! * mempools whose last handle is gone were *retired*, not freed (an mbuf
//!   may still be out, or be going back to the pool on some lcore). Now
//!   that all lcores are idle it frees those with no mbuf out;
//! * it runs `rte_eal_cleanup` only if all of them could be freed.
//!
//! Holds and the state use `SeqCst`, so a control call that raced the drop
//! either sees EAL finished and fails, or is seen by the drop, which then
//! skips the cleanup. Mbufs need no hold of their own: one exists only
//! while its pool is live or retired, and a retired pool with mbufs out is
//! never freed. When the cleanup is skipped, the memory goes back to the OS
//! when the process exits, which is all the cleanup would add.

use std::ffi::{c_char, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, PoisonError};

use dpdk_sys as sys;

use super::error::DpdkError;

const UNINIT: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
const FINISHED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);
static HOLDS: AtomicUsize = AtomicUsize::new(0);
static CLEANED_UP: AtomicBool = AtomicBool::new(false);

/// Whether the EAL's drop ran `rte_eal_cleanup` successfully.
#[cfg(test)]
pub(crate) fn cleaned_up() -> bool {
    CLEANED_UP.load(SeqCst)
}

/// The initialised EAL. Only one per process, and only once: DPDK cannot be
/// initialised again after `rte_eal_cleanup` or a failed `rte_eal_init`.
///
/// Neither `Send` nor `Sync`: `rte_eal_remote_launch`, `rte_eal_wait_lcore`
/// and the cleanup must run on the main lcore, the thread that called
/// [`Eal::init`].
pub struct Eal {
    /// argv as handed to `rte_eal_init` (strings and pointer array), kept
    /// until after the cleanup in case EAL kept pointers into them.
    _argv: Vec<Box<[u8]>>,
    _argv_ptrs: Vec<*mut c_char>,
    _not_send: PhantomData<*const ()>,
}

impl Eal {
    /// Runs `rte_eal_init` with `args` (without the program name; we pass
    /// `gatewayd` as argv\[0\]). The calling thread becomes the main lcore.
    ///
    /// Debian's shared EAL loads its poll-mode drivers by itself; an EAL
    /// that does not needs `-d` with [`PMD_DIR`](super::PMD_DIR). Without
    /// hugepages use `--no-huge -m <MB> --no-shconf`: in DPDK 22.11
    /// `--no-huge` implies legacy memory, which `--in-memory` refuses.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        const OP: &str = "rte_eal_init";
        if STATE.compare_exchange(UNINIT, STARTING, SeqCst, SeqCst).is_err() {
            return Err(DpdkError::from_errno(OP, libc::EALREADY));
        }
        // Owned, NUL-terminated, writable buffers: EAL receives `char **`.
        let mut argv: Vec<Box<[u8]>> = Vec::with_capacity(args.len() + 1);
        for arg in std::iter::once("gatewayd").chain(args.iter().map(String::as_str)) {
            if arg.as_bytes().contains(&0) {
                STATE.store(UNINIT, SeqCst);
                return Err(DpdkError::InvalidArgument { op: OP, reason: "argument contains a NUL byte" });
            }
            argv.push([arg.as_bytes(), &[0]].concat().into_boxed_slice());
        }
        let Ok(argc) = c_int::try_from(argv.len()) else {
            STATE.store(UNINIT, SeqCst);
            return Err(DpdkError::InvalidArgument { op: OP, reason: "too many arguments" });
        };
        // EAL's getopt permutes this pointer array.
        let mut ptrs: Vec<*mut c_char> = argv.iter_mut().map(|a| a.as_mut_ptr().cast()).collect();
        // SAFETY: ptrs holds argc pointers to distinct, writable,
        // NUL-terminated buffers owned by `argv`; the returned Eal keeps
        // both alive until after the cleanup, so EAL may keep pointers into
        // them. STATE makes this the only call in the process.
        let ret = unsafe { sys::rte_eal_init(argc, ptrs.as_mut_ptr()) };
        if ret < 0 {
            let err = DpdkError::last(OP);
            // A failed init cannot be retried reliably (EAL keeps partial state).
            STATE.store(FINISHED, SeqCst);
            return Err(err);
        }
        STATE.store(RUNNING, SeqCst);
        Ok(Eal { _argv: argv, _argv_ptrs: ptrs, _not_send: PhantomData })
    }
}

impl std::fmt::Debug for Eal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eal").finish_non_exhaustive()
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: we are on the main lcore (Eal is !Send); waiting has no
        // other precondition. Afterwards no launched function is running.
        unsafe { sys::rte_eal_mp_wait_lcore() };
        STATE.store(FINISHED, SeqCst);
        let holds = HOLDS.load(SeqCst);
        if holds != 0 {
            tracing::info!(
                holds,
                "skipping rte_eal_cleanup: mempools or ports still open; the OS reclaims them at exit"
            );
            return;
        }
        let busy = free_retired_pools();
        if busy != 0 {
            tracing::info!(
                pools = busy,
                "skipping rte_eal_cleanup: mbufs still out; the OS reclaims them at exit"
            );
            return;
        }
        // SAFETY: EAL is initialised (an Eal exists); no lcore function runs
        // (waited above); every mempool was freed, so no mbuf exists; no
        // control call is in flight or can start (STATE is FINISHED and
        // HOLDS was 0 after that).
        let ret = unsafe { sys::rte_eal_cleanup() };
        CLEANED_UP.store(ret == 0, SeqCst);
        if ret < 0 {
            tracing::warn!(error = %DpdkError::from_ret("rte_eal_cleanup", ret), "EAL cleanup");
        }
    }
}

/// A mempool whose last handle is gone, waiting for the EAL's drop.
struct Retired(NonNull<sys::rte_mempool>);
// SAFETY: only a pointer value kept for the EAL's drop, which frees it on
// the main lcore; nothing dereferences it on the way there.
unsafe impl Send for Retired {}

static RETIRED: Mutex<Vec<Retired>> = Mutex::new(Vec::new());

/// Hands a pool to the EAL's drop; see the module docs.
pub(crate) fn retire_pool(pool: NonNull<sys::rte_mempool>) {
    RETIRED.lock().unwrap_or_else(PoisonError::into_inner).push(Retired(pool));
}

/// Frees retired pools that have no mbuf out; returns how many do.
/// Only called with all lcores idle and no hold outstanding.
fn free_retired_pools() -> usize {
    let pools = std::mem::take(&mut *RETIRED.lock().unwrap_or_else(PoisonError::into_inner));
    let mut busy = 0;
    for Retired(pool) in pools {
        // SAFETY: the pool was created by rte_pktmbuf_pool_create and not
        // freed (each is retired once, by its last handle); EAL is still
        // mapped. No lcore function runs, so no per-lcore cache changes
        // under the count, and with in_use 0 nothing can touch the pool
        // again: it has no handle and no mbuf.
        unsafe {
            if sys::rte_mempool_in_use_count(pool.as_ptr()) == 0 {
                sys::rte_mempool_free(pool.as_ptr());
            } else {
                busy += 1;
            }
        }
    }
    busy
}

/// Keeps DPDK memory mapped while alive: see the module docs.
#[derive(Debug)]
pub(crate) struct Hold(());

impl Hold {
    /// Takes a hold, or fails with `ENODEV` if EAL is not running.
    pub(crate) fn acquire(op: &'static str) -> Result<Hold, DpdkError> {
        HOLDS.fetch_add(1, SeqCst);
        // Constructed before the check so that its drop undoes the add.
        let hold = Hold(());
        if STATE.load(SeqCst) != RUNNING {
            return Err(DpdkError::from_errno(op, libc::ENODEV));
        }
        Ok(hold)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        HOLDS.fetch_sub(1, SeqCst);
    }
}

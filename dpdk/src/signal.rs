//! SIGINT/SIGTERM to a stop flag, for poll loops that cannot block on a
//! signal. (Lives here because this module is the one place with `unsafe`.)

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    // An atomic store is async-signal-safe.
    STOP.store(true, Relaxed);
}

static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sighup(_sig: libc::c_int) {
    // An atomic store is async-signal-safe.
    RELOAD.store(true, Relaxed);
}

/// Installs a SIGHUP handler that sets the returned flag each time; the
/// main loop clears it when it reloads.
pub fn reload_on_sighup() -> std::io::Result<&'static AtomicBool> {
    // SAFETY: sigaction is plain data, valid when zeroed; the handler only
    // does an atomic store; no SA_RESETHAND, so every SIGHUP is caught.
    let ret = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sighup as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGHUP, &sa, std::ptr::null_mut())
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(&RELOAD)
}

/// Installs handlers so that the first SIGINT or SIGTERM sets the returned
/// flag (a second one kills the process as usual). Poll loops check it.
pub fn stop_on_signals() -> std::io::Result<&'static AtomicBool> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain data, valid when zeroed; the handler
        // only does an atomic store; SA_RESETHAND restores the default
        // action after the first delivery.
        let ret = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(&STOP)
}

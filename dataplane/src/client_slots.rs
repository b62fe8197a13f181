//! The client slots of the control socket ([`crate::control`]) and the
//! metrics endpoint ([`crate::metrics`]): at most `max` connections at
//! once. When all are taken, a new connection takes the place of the one
//! the server has waited on longest (for its request, or for it to take
//! its answer), which is shut down: idle or slow clients cannot keep the
//! others out. Only when every slot is working on a request is there no
//! room.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Instant;

/// A connection a slot keeps a handle on, to shut it down when evicted.
pub(crate) trait Conn: Sized {
    fn handle(&self) -> io::Result<Self>;
    fn close(&self);
}

impl Conn for UnixStream {
    fn handle(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Conn for TcpStream {
    fn handle(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// The open connections (see the module docs).
pub(crate) struct Slots<S> {
    max: usize,
    inner: Mutex<Table<S>>,
}

struct Table<S> {
    next: u64,
    open: HashMap<u64, Open<S>>,
}

struct Open<S> {
    conn: S,
    /// Since when the server has waited on this client; `None` while it
    /// works on the client's request.
    waiting_since: Option<Instant>,
}

impl<S: Conn> Slots<S> {
    pub(crate) fn new(max: usize) -> Slots<S> {
        Slots { max, inner: Mutex::new(Table { next: 0, open: HashMap::new() }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for `conn`, evicting the longest-waiting connection if all are
    /// taken; `None` if every slot is working on a request.
    pub(crate) fn admit(&self, conn: &S) -> Option<u64> {
        let handle = conn.handle().ok()?;
        let mut t = self.lock();
        if t.open.len() >= self.max {
            let oldest = t
                .open
                .iter()
                .filter_map(|(id, o)| o.waiting_since.map(|since| (since, *id)))
                .min()
                .map(|(_, id)| id)?;
            if let Some(o) = t.open.remove(&oldest) {
                o.conn.close();
            }
        }
        let id = t.next;
        t.next += 1;
        t.open.insert(id, Open { conn: handle, waiting_since: Some(Instant::now()) });
        Some(id)
    }

    /// Slot `id` waits on its client again (`true`), or works on its
    /// request (`false`: it cannot be evicted then).
    pub(crate) fn set_waiting(&self, id: u64, waiting: bool) {
        if let Some(o) = self.lock().open.get_mut(&id) {
            o.waiting_since = waiting.then(Instant::now);
        }
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().open.remove(&id);
    }

    /// Frees slot `id` when dropped: however the connection's thread ends
    /// (a panic included), its slot does not stay taken.
    pub(crate) fn leaving(&self, id: u64) -> Leaving<'_, S> {
        Leaving { slots: self, id }
    }
}

/// See [`Slots::leaving`].
pub(crate) struct Leaving<'a, S: Conn> {
    slots: &'a Slots<S>,
    id: u64,
}

impl<S: Conn> Drop for Leaving<'_, S> {
    fn drop(&mut self) {
        self.slots.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's thread that panics while working on a request (the
    /// slot cannot be evicted then) still gives its slot back.
    #[test]
    fn a_slot_is_freed_however_its_thread_ends() {
        let slots = Slots::new(1);
        let (a, _a) = UnixStream::pair().unwrap();
        let (b, _b) = UnixStream::pair().unwrap();
        let id = slots.admit(&a).unwrap();
        slots.set_waiting(id, false);
        assert_eq!(slots.admit(&b), None, "every slot working on a request");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _leaving = slots.leaving(id);
            panic!("a bug while serving");
        }));
        assert!(r.is_err());
        assert!(slots.admit(&b).is_some(), "the slot came back");
    }
}

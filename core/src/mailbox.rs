//! Questions from the control plane to a worker, answered between bursts.
//!
//! A worker's session table is touched only by that worker. To list
//! connections (`gwctl -L -c`), the control plane sends a [`ConnQuery`]
//! carrying an empty buffer with room for a chunk; the worker, between two
//! bursts, copies up to that many live sessions from a bounded range of
//! slots into it and sends it back with where to resume. The worker never
//! allocates (the buffer comes with the query), never blocks (`try_recv`,
//! `try_send` on channels of depth 1) and does a bounded amount of work per
//! poll, so a listing of millions of sessions never stalls forwarding.
//!
//! IPv6 sessions live in a table of their own
//! ([`crate::session::ipv6::SessionTable6`]); a query names the table it
//! scans ([`ConnQuery::six`]) and is filled in `out` or `out6`, so the
//! control plane lists a worker's IPv4 sessions, then its IPv6 ones.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::session::ipv6::Session6;
use crate::session::Session;

/// Slots a worker scans for one chunk: 512 KiB of IPv4 sessions, read in
/// order (tens of microseconds between two bursts; 65,536 before, a few
/// hundred, `benches/examples/expire_stall`).
pub const SCAN_PER_CHUNK: usize = 8192;

/// Sessions one chunk carries back (the control plane's buffer, copied
/// into by the worker): 64 KiB of IPv4 sessions per poll at most.
pub const LIST_CHUNK: usize = 1024;

/// Which sessions a query wants: one service's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnFilter {
    pub proto: u8,
    /// The VIP, host order, in the family of the table scanned (an IPv4
    /// address's 32 bits for the IPv4 table).
    pub vip: u128,
    pub vport: u16,
}

/// One chunk's worth of question.
pub struct ConnQuery {
    /// Matches an answer to its question (a late answer to a query that
    /// timed out is recognised and dropped).
    pub id: u64,
    pub filter: Option<ConnFilter>,
    /// First slot to scan.
    pub start: usize,
    /// Scan the IPv6 table into `out6` (else the IPv4 table into `out`).
    pub six: bool,
    /// Filled by the worker, up to its capacity (IPv4 sessions).
    pub out: Vec<Session>,
    /// Filled by the worker, up to its capacity (IPv6 sessions).
    pub out6: Vec<Session6>,
    /// The worker's clock when it filled `out`, for expiry times.
    pub now_ms: u64,
    /// Where to resume, or `None` when the table was scanned to the end.
    pub next: Option<usize>,
}

/// The worker's end.
pub struct WorkerMailbox {
    queries: Receiver<ConnQuery>,
    answers: SyncSender<ConnQuery>,
    /// Queries the control plane has sent ([`ControlMailbox`]'s `sent`),
    /// and those this worker took: while the two agree there is nothing
    /// to take, and [`WorkerMailbox::serve`] reads one counter instead of
    /// the channel (whose empty `try_recv` costs a full fence per poll).
    sent: Arc<AtomicU64>,
    taken: Cell<u64>,
}

/// The control plane's end.
pub struct ControlMailbox {
    queries: SyncSender<ConnQuery>,
    answers: Mutex<Receiver<ConnQuery>>,
    next_id: AtomicU64,
    /// Queries sent, counted after each is in the channel (so a worker that
    /// sees the count can take the query).
    sent: Arc<AtomicU64>,
}

/// A connected pair of ends.
pub fn mailbox() -> (ControlMailbox, WorkerMailbox) {
    let (qt, qr) = sync_channel(1);
    let (at, ar) = sync_channel(1);
    let sent = Arc::new(AtomicU64::new(0));
    (
        ControlMailbox {
            queries: qt,
            answers: Mutex::new(ar),
            next_id: AtomicU64::new(1),
            sent: sent.clone(),
        },
        WorkerMailbox { queries: qr, answers: at, sent, taken: Cell::new(0) },
    )
}

impl WorkerMailbox {
    /// Answers a pending query, if any, with `fill`. Never blocks; with
    /// no query sent since the last one taken, one load.
    #[inline]
    pub fn serve(&self, fill: impl FnOnce(&mut ConnQuery)) {
        if self.sent.load(Ordering::Acquire) == self.taken.get() {
            return;
        }
        if let Ok(mut q) = self.queries.try_recv() {
            self.taken.set(self.taken.get() + 1);
            fill(&mut q);
            // Depth 1 and one query at a time: the slot is free. If the
            // control plane went away, the answer is dropped here (control
            // thread memory, freed on this thread only in that case).
            if let Err(TrySendError::Full(q) | TrySendError::Disconnected(q)) = self.answers.try_send(q) {
                drop(q);
            }
        }
    }
}

impl ControlMailbox {
    /// All IPv4 sessions matching `filter`, chunk by chunk, stopping once
    /// there are `max` or more (at most a chunk more): the caller's bound on
    /// what it can use. Gives up (returning what it has, `false`) if the
    /// worker does not answer within `timeout` per chunk.
    pub fn list(
        &self,
        filter: Option<ConnFilter>,
        chunk: usize,
        timeout: Duration,
        max: usize,
    ) -> (Vec<Session>, u64, bool) {
        let mut all = Vec::new();
        let (now, complete) = self.scan(filter, (chunk, 0), timeout, |a| {
            all.extend_from_slice(&a.out);
            all.len() < max
        });
        (all, now, complete)
    }

    /// [`Self::list`] of the IPv6 table.
    pub fn list6(
        &self,
        filter: Option<ConnFilter>,
        chunk: usize,
        timeout: Duration,
        max: usize,
    ) -> (Vec<Session6>, u64, bool) {
        let mut all = Vec::new();
        let (now, complete) = self.scan(filter, (0, chunk), timeout, |a| {
            all.extend_from_slice(&a.out6);
            all.len() < max
        });
        (all, now, complete)
    }

    /// Sends queries with room for `(chunk, chunk6)` sessions until the
    /// worker has scanned its table (the IPv6 one when `chunk6` is not 0)
    /// or `take`, handed each answer, wants no more. Returns the worker's
    /// clock and whether every query was answered.
    fn scan(
        &self,
        filter: Option<ConnFilter>,
        (chunk, chunk6): (usize, usize),
        timeout: Duration,
        mut take: impl FnMut(&ConnQuery) -> bool,
    ) -> (u64, bool) {
        // One listing at a time per worker.
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let mut start = 0;
        let mut now = 0;
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let q = ConnQuery {
                id,
                filter,
                start,
                six: chunk6 != 0,
                out: Vec::with_capacity(chunk),
                out6: Vec::with_capacity(chunk6),
                now_ms: 0,
                next: None,
            };
            if self.queries.try_send(q).is_err() {
                return (now, false);
            }
            self.sent.fetch_add(1, Ordering::Release);
            let answer = loop {
                match answers.recv_timeout(timeout) {
                    Ok(a) if a.id == id => break Ok(a),
                    Ok(_stale) => continue,
                    Err(e) => break Err(e),
                }
            };
            match answer {
                Ok(a) => {
                    now = a.now_ms;
                    let more = take(&a);
                    match a.next {
                        Some(n) if more => start = n,
                        _ => return (now, true),
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return (now, false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker takes every query the control plane sent, also one left
    /// in the channel by a listing that gave up (the counters agree
    /// again after it), and calls `fill` for nothing else.
    #[test]
    fn serve_takes_what_was_sent_and_only_that() {
        let (control, worker) = mailbox();
        let mut filled = 0;
        for _ in 0..3 {
            worker.serve(|_| filled += 1);
        }
        assert_eq!(filled, 0, "nothing sent, nothing filled");
        std::thread::scope(|s| {
            let w = s.spawn(move || {
                let mut served = 0;
                while served < 2 {
                    worker.serve(|q| {
                        q.next = None;
                        served += 1;
                    });
                    std::thread::yield_now();
                }
                worker
            });
            // Two listings, each one chunk (`next: None` ends it).
            for _ in 0..2 {
                let (_, _, complete) = control.list(None, 4, Duration::from_secs(10), usize::MAX);
                assert!(complete, "the worker answered");
            }
            let worker = w.join().unwrap();
            let mut more = 0;
            worker.serve(|_| more += 1);
            assert_eq!(more, 0, "no query left");
        });
        // A query the worker never answered in time stays in the channel,
        // counted: the worker still takes it.
        let (control, worker) = mailbox();
        let (_, _, complete) = control.list(None, 4, Duration::from_millis(1), usize::MAX);
        assert!(!complete);
        let mut late = 0;
        worker.serve(|_| late += 1);
        worker.serve(|_| late += 1);
        assert_eq!(late, 1);
    }
}

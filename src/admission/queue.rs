//! One model's admission queue, [`ModelQueue`]: the places it takes requests into (running or
//! queued, `--pool-size` + `--queue`), the wait for a turn on one of its sessions with the
//! request's deadline, and the queue depth. It counts sessions but never touches them: the
//! sessions themselves, and running the model on one, are `crate::engine::Engine`'s, and the
//! queue is held beside its engine in `crate::models::Models`.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::{Slot, Slots};

/// Pool and queue are full: the request is refused before any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overloaded;

/// No session came free for the request: its deadline passed while it waited, or it was gone
/// (its client went away). The model was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoTurn;

/// The requests one model takes on, and their turns on its `pool_size` sessions.
#[derive(Debug)]
pub struct ModelQueue {
    pool_size: usize,
    /// Places for requests running or queued (`pool_size` + queue).
    slots: Arc<Slots>,
    /// One permit per session: a request holds one from its turn until its inference is over.
    turns: Semaphore,
    /// Requests waiting for a turn now.
    waiting: AtomicUsize,
}

/// A turn on one of the model's sessions, held while the request runs the model; the next
/// waiting request gets it on drop.
#[derive(Debug)]
pub(crate) struct Turn<'a>(#[allow(dead_code)] SemaphorePermit<'a>);

/// One request waiting for a turn; counted in `queue_depth` until dropped, however the wait ends
/// (a turn, the deadline, or the request future dropped when its client goes away).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ModelQueue {
    /// The queue of a model with `pool_size` sessions that takes on `queue` more waiting requests.
    pub(crate) fn new(pool_size: usize, queue: usize) -> Arc<Self> {
        Arc::new(Self { pool_size, slots: Slots::new(pool_size + queue), turns: Semaphore::new(pool_size), waiting: AtomicUsize::new(0) })
    }

    /// Requests waiting for a free session now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Sessions held by requests now (running, or about to run).
    pub fn sessions_in_use(&self) -> usize {
        self.pool_size - self.turns.available_permits()
    }

    /// Takes a place among the requests this model takes on (pool + queue), or says the model
    /// is overloaded.
    pub(crate) fn admit(&self) -> Result<Slot, Overloaded> {
        self.slots.try_take().ok_or(Overloaded)
    }

    /// Whether every place (pool + queue) is taken now.
    pub(crate) fn is_full(&self) -> bool {
        self.slots.is_full()
    }

    /// Waits on the calling thread, which must be a blocking thread of a tokio runtime, for a
    /// turn on a session: until `deadline`, or until `gone` resolves (the request was dropped:
    /// its client went away), and then there is no turn. Returns the turn and how long it took.
    pub(crate) fn wait_blocking(&self, deadline: Instant, gone: impl Future<Output = ()>) -> Result<(Turn<'_>, Duration), NoTurn> {
        let start = Instant::now();
        let permit = {
            let _waiting = Waiting::enter(&self.waiting);
            tokio::runtime::Handle::current().block_on(async {
                tokio::select! {
                    // A request that is gone never gets a turn, even with a session free.
                    biased;
                    _ = gone => None,
                    p = tokio::time::timeout_at(deadline.into(), self.turns.acquire()) => p.ok(),
                }
            })
        };
        // The semaphore is never closed (nothing here closes it): `acquire` only ends with a permit.
        let permit = permit.ok_or(NoTurn)?.expect("the turns semaphore is never closed");
        Ok((Turn(permit), start.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn turns_are_counted_and_the_deadline_ends_the_wait() {
        let queue = ModelQueue::new(1, 1);
        let (a, b) = (queue.admit().unwrap(), queue.admit().unwrap());
        assert_eq!(queue.admit().err(), Some(Overloaded));
        assert!(queue.is_full());
        let q = queue.clone();
        tokio::task::spawn_blocking(move || {
            let far = Instant::now() + Duration::from_secs(10);
            let (turn, _) = q.wait_blocking(far, std::future::pending()).unwrap();
            assert_eq!(q.sessions_in_use(), 1);
            // The only session is taken: the second waits, counted, until its deadline.
            let soon = Instant::now() + Duration::from_millis(50);
            assert_eq!(q.wait_blocking(soon, std::future::pending()).err(), Some(NoTurn));
            assert_eq!(q.queue_depth(), 0);
            drop(turn);
            // A request that is gone gets no turn, even with the session free.
            assert_eq!(q.wait_blocking(far, std::future::ready(())).err(), Some(NoTurn));
            assert_eq!(q.sessions_in_use(), 0);
        })
        .await
        .unwrap();
        drop((a, b));
        assert!(!queue.is_full());
    }
}

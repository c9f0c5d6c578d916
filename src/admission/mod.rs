//! Admission control: how much work the service takes on at once, decided before the work starts
//! and released by guards however a request ends (answered, failed, or dropped because its client
//! went away). None of it knows about ONNX Runtime:
//!
//! - [`ModelQueue`] (in `queue.rs`), one per model, held beside its `engine::Engine` in
//!   `models::Models`: the places for its requests, running or queued (`--pool-size` +
//!   `--queue`, counted in [`Slots`]; 503 when all are taken), its queue of jobs and the workers
//!   that run them (one per session), the queue depth and the sessions in use.
//! - [`MemoryBudget`]: bytes shared by every request (`--memory-budget`). A request reserves what
//!   the pipeline will hold for it at its peak, estimated from the image header before decoding
//!   (`pipeline::memory_cost`), and keeps only its encoded answer reserved once that is made.
//!
//! How big the memory budget is by default, from the memory the process may use, and sizes as
//! people write them, are in [`sizing`].

mod queue;
mod sizing;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

pub use queue::ModelQueue;
pub use sizing::human_bytes;
pub(crate) use sizing::{choose_budget, parse_bytes, BudgetChoice};

/// Places for requests (running or queued) of one model.
#[derive(Debug)]
pub(crate) struct Slots {
    capacity: usize,
    taken: AtomicUsize,
}

/// A place taken in [`Slots`]; freed on drop.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slots {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self { capacity, taken: AtomicUsize::new(0) })
    }

    /// Takes a place, or None when all are taken.
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let mut cur = self.taken.load(Ordering::Acquire);
        loop {
            if cur >= self.capacity {
                return None;
            }
            match self.taken.compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(Slot(self.clone())),
                Err(now) => cur = now,
            }
        }
    }

    /// Whether every place is taken now.
    pub fn is_full(&self) -> bool {
        self.taken.load(Ordering::Acquire) >= self.capacity
    }

    #[cfg(test)]
    fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }
}

/// Bytes that requests may hold at once.
#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    reserved: AtomicU64,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// Other requests hold the budget now; retry later (503).
    #[error("{needed} bytes needed, {free} of the {total}-byte memory budget free now")]
    Busy { needed: u64, free: u64, total: u64 },
    /// More than the whole budget: it can never be admitted (413 / 422).
    #[error("{needed} bytes needed, more than the whole memory budget of {total} bytes")]
    NeverFits { needed: u64, total: u64 },
}

/// Bytes reserved in a [`MemoryBudget`]; given back on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl MemoryBudget {
    pub fn new(total: u64) -> Arc<Self> {
        Arc::new(Self { total, reserved: AtomicU64::new(0) })
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Acquire)
    }

    /// Reserves `bytes`, or says why not (nothing is reserved then).
    pub(crate) fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, Refusal> {
        self.add(bytes)?;
        Ok(Reservation { budget: self.clone(), bytes })
    }

    fn add(&self, bytes: u64) -> Result<(), Refusal> {
        if bytes > self.total {
            return Err(Refusal::NeverFits { needed: bytes, total: self.total });
        }
        let mut cur = self.reserved.load(Ordering::Acquire);
        loop {
            if cur.saturating_add(bytes) > self.total {
                return Err(Refusal::Busy { needed: bytes, free: self.total.saturating_sub(cur), total: self.total });
            }
            match self.reserved.compare_exchange_weak(cur, cur + bytes, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }
}

impl Reservation {
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Changes the reservation to `bytes`: shrinking always succeeds; growing may be refused,
    /// and then the reservation keeps its size.
    pub fn resize(&mut self, bytes: u64) -> Result<(), Refusal> {
        if bytes > self.bytes {
            if bytes > self.budget.total {
                return Err(Refusal::NeverFits { needed: bytes, total: self.budget.total });
            }
            self.budget.add(bytes - self.bytes).map_err(|r| match r {
                Refusal::Busy { free, total, .. } => Refusal::Busy { needed: bytes, free: free + self.bytes, total },
                other => other,
            })?;
        } else {
            self.budget.reserved.fetch_sub(self.bytes - bytes, Ordering::AcqRel);
        }
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.reserved.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_back_on_drop() {
        let slots = Slots::new(2);
        let a = slots.try_take().unwrap();
        let _b = slots.try_take().unwrap();
        assert!(slots.try_take().is_none() && slots.is_full());
        drop(a);
        assert_eq!(slots.taken(), 1);
        assert!(slots.try_take().is_some());
    }

    #[test]
    fn reservations_stay_within_the_budget() {
        let budget = MemoryBudget::new(1000);
        let mut a = budget.reserve(600).unwrap();
        assert_eq!(budget.reserve(500).unwrap_err(), Refusal::Busy { needed: 500, free: 400, total: 1000 });
        assert_eq!(budget.reserve(1001).unwrap_err(), Refusal::NeverFits { needed: 1001, total: 1000 });
        let b = budget.reserve(400).unwrap();
        assert_eq!(budget.reserved(), 1000);
        // Growing past the budget fails and keeps the size; shrinking always works.
        assert!(matches!(a.resize(700), Err(Refusal::Busy { needed: 700, free: 600, .. })));
        assert_eq!(a.bytes(), 600);
        a.resize(100).unwrap();
        assert_eq!(budget.reserved(), 500);
        drop(b);
        a.resize(1000).unwrap();
        assert_eq!(a.resize(1001), Err(Refusal::NeverFits { needed: 1001, total: 1000 }));
        drop(a);
        assert_eq!(budget.reserved(), 0);
    }
}

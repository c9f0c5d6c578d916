//! One model's admission queue, [`ModelQueue`]: the places it takes requests into (running or
//! queued, `--pool-size` + `--queue`), its workers, and the queue depth. A model has one worker
//! thread per session; a request's whole work (decode, the model, encoding) is one job, queued
//! here and run by the first free worker from start to end. The workers stay busy while jobs are
//! waiting, so under load no thread sleeps between two requests and no request waits for a
//! sleeping thread to be woken (with a blocking task per request and a turn handed between
//! them, 3 to 6% of a 2-core machine stayed idle under load: bench/REPORT.md). The queue never
//! touches the sessions: a worker runs the model through `crate::engine::Engine`, whose pool has
//! a session for each worker; the queue is held beside its engine in `crate::models::Models`.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Slot, Slots};

/// Pool and queue are full: the request is refused before any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overloaded;

/// A job ended without an answer: it panicked (the worker survives it), saying this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the job panicked: {0}")]
pub(crate) struct Panicked(pub(crate) String);

type Job = Box<dyn FnOnce() + Send>;

/// The requests one model takes on, and the workers that run them.
#[derive(Debug)]
pub struct ModelQueue {
    /// Places for requests running or queued (`pool_size` + queue).
    slots: Arc<Slots>,
    shared: Arc<Shared>,
    /// The workers, for `close_and_wait`.
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

struct Shared {
    jobs: Mutex<Jobs>,
    /// Signalled when a job is queued or the queue closes.
    queued: Condvar,
    /// Jobs waiting now (kept beside `jobs` for a read without the lock).
    waiting: AtomicUsize,
    /// Jobs running now.
    running: AtomicUsize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("waiting", &self.waiting).field("running", &self.running).finish()
    }
}

#[derive(Default)]
struct Jobs {
    queue: VecDeque<(u64, Job)>,
    next_id: u64,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Jobs> {
        // A job runs outside the lock: nothing panics while it is held.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the queue: each worker ends once no job is left in it.
    fn close(&self) {
        self.lock().closed = true;
        self.queued.notify_all();
    }

    /// A worker: takes the oldest job, runs it, and again, until the queue closes.
    fn work(&self) {
        loop {
            let job = {
                let mut jobs = self.lock();
                loop {
                    if let Some((_, job)) = jobs.queue.pop_front() {
                        self.waiting.store(jobs.queue.len(), Ordering::Release);
                        self.running.fetch_add(1, Ordering::AcqRel);
                        break job;
                    }
                    if jobs.closed {
                        return;
                    }
                    jobs = self.queued.wait(jobs).unwrap_or_else(|e| e.into_inner());
                }
            };
            // A job's panic is caught in the job, and answered; this catch is only a safety net.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            self.running.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A job in the queue: taken out of it when its request is dropped before a worker took it (its
/// client went away, or its deadline passed), so that what it holds is given back at once.
struct Queued<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut jobs = self.shared.lock();
        if let Some(at) = jobs.queue.iter().position(|(id, _)| *id == self.id) {
            let job = jobs.queue.remove(at);
            self.shared.waiting.store(jobs.queue.len(), Ordering::Release);
            drop(jobs);
            drop(job);
        }
    }
}

impl ModelQueue {
    /// The queue of a model with `pool_size` sessions that takes on `queue` more waiting
    /// requests; starts its `pool_size` workers (threads named after `model`).
    pub(crate) fn new(model: &str, pool_size: usize, queue: usize) -> Arc<Self> {
        let pool_size = pool_size.max(1);
        let shared = Arc::new(Shared {
            jobs: Mutex::new(Jobs::default()),
            queued: Condvar::new(),
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        });
        let workers = (0..pool_size)
            .map(|i| {
                let shared = shared.clone();
                // The OS keeps 15 bytes of a thread's name: the model's first characters and the index.
                let stem: String = model.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(10).collect();
                let name = format!("{stem}-{i}");
                std::thread::Builder::new().name(name).spawn(move || shared.work()).expect("a worker thread for the model")
            })
            .collect();
        Arc::new(Self { slots: Slots::new(pool_size + queue), shared, workers: Mutex::new(workers) })
    }

    /// Closes the queue and waits until its workers have ended (each ends once the jobs queued
    /// before are done), at most until `deadline`; says whether they all did. For the end of the
    /// service, after the HTTP drain: a job whose client went away may still be running (a
    /// model run is not cut short), and the process must not exit under it (ONNX Runtime's
    /// globals are torn down at exit, and a run in the middle of that fails).
    pub(crate) fn close_and_wait(&self, deadline: Instant) -> bool {
        self.shared.close();
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let (done, running): (Vec<_>, Vec<_>) = workers.drain(..).partition(|w| w.is_finished());
            for w in done {
                let _ = w.join();
            }
            *workers = running;
            if workers.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Requests waiting for a worker now.
    pub fn queue_depth(&self) -> usize {
        self.shared.waiting.load(Ordering::Acquire)
    }

    /// Sessions in use now: requests a worker is running (a worker a session).
    pub fn sessions_in_use(&self) -> usize {
        self.shared.running.load(Ordering::Acquire)
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

    /// Runs `job` on the first free worker and returns its answer; `job` is told how long it
    /// waited for the worker, and gets a test of whether its answer is still wanted (false once
    /// this future is dropped). Dropping the future before a worker took the job takes it out of
    /// the queue (it never runs, and what it owns is dropped then); a job already taken runs
    /// until it asks (or to its end), unless its request was dropped in the moment between (it
    /// is not started then).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(Duration, &dyn Fn() -> bool) -> T + Send + 'static,
    ) -> Result<T, Panicked> {
        let (tx, rx) = oneshot::channel();
        let queued_at = Instant::now();
        let job: Job = Box::new(move || {
            if !tx.is_closed() {
                let waited = queued_at.elapsed();
                let wanted = || !tx.is_closed();
                let answer = std::panic::catch_unwind(AssertUnwindSafe(|| job(waited, &wanted))).map_err(|payload| {
                    let text = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
                    Panicked(text.unwrap_or_else(|| "(no message)".into()))
                });
                let _ = tx.send(answer);
            }
        });
        let id = {
            let mut jobs = self.shared.lock();
            let id = jobs.next_id;
            jobs.next_id += 1;
            jobs.queue.push_back((id, job));
            self.shared.waiting.store(jobs.queue.len(), Ordering::Release);
            id
        };
        self.shared.queued.notify_one();
        let queued = Queued { shared: &self.shared, id };
        let answer = rx.await;
        // Answered, or its sender dropped: a worker took the job, nothing is left to take out.
        std::mem::forget(queued);
        answer.unwrap_or_else(|_| Err(Panicked("the job ended without an answer".into())))
    }
}

impl Drop for ModelQueue {
    /// The workers end once the jobs queued before are done.
    fn drop(&mut self) {
        self.shared.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until no job waits or runs: a worker counts its job as done after the job has
    /// answered, so the counts may lag the answer by a moment.
    async fn settled(queue: &ModelQueue) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while (queue.queue_depth(), queue.sessions_in_use()) != (0, 0) {
            assert!(Instant::now() < deadline, "still {} waiting and {} running", queue.queue_depth(), queue.sessions_in_use());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Polls `job` (a queue's `run`) until the job has set `started`, then drops it, as a client
    /// that goes away while its job runs.
    async fn drop_once_started(job: impl std::future::Future, started: Arc<AtomicUsize>) {
        let waiting = tokio::spawn(async move {
            while started.load(Ordering::Acquire) == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        tokio::select! {
            _ = job => panic!("the job ended before it was dropped"),
            _ = waiting => {}
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_on_the_workers_and_queued_ones_can_be_dropped() {
        let queue = ModelQueue::new("test", 1, 1);
        let (a, b) = (queue.admit().unwrap(), queue.admit().unwrap());
        assert_eq!(queue.admit().err(), Some(Overloaded));
        assert!(queue.is_full());
        // The only worker is held until `release` is sent.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let q = queue.clone();
        let first =
            tokio::spawn(async move { q.run(move |_, _| hold.recv().map(|_| std::thread::current().name().map(String::from))).await });
        while queue.sessions_in_use() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A second job waits, counted, and dropping its future takes it out: it never runs.
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let second = queue.run(move |_, _| r.fetch_add(1, Ordering::AcqRel));
        assert!(tokio::time::timeout(Duration::from_millis(50), second).await.is_err());
        assert_eq!(queue.queue_depth(), 0);
        // A third waits until the worker is free, and is told how long it waited.
        let q = queue.clone();
        let third = tokio::spawn(async move { q.run(|waited, _| waited).await });
        while queue.queue_depth() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap().unwrap().as_deref(), Some("test-0"));
        assert!(third.await.unwrap().unwrap() >= Duration::from_millis(20));
        assert_eq!(ran.load(Ordering::Acquire), 0, "the dropped job ran");
        settled(&queue).await;
        drop((a, b));
        assert!(!queue.is_full());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_waits_for_the_running_job_up_to_the_deadline() {
        let queue = ModelQueue::new("test", 1, 0);
        let (started, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, f) = (started.clone(), finished.clone());
        // A job whose client goes away once it runs, and which does not ask (as a model run); it
        // ends when `release` is sent.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let job = queue.run(move |_, _| {
            s.store(1, Ordering::Release);
            let _ = hold.recv();
            f.store(1, Ordering::Release);
        });
        drop_once_started(job, started).await;
        // While it runs, a deadline passes: not all ended.
        let q = queue.clone();
        let early = tokio::task::spawn_blocking(move || q.close_and_wait(Instant::now() + Duration::from_millis(20))).await.unwrap();
        assert!(!early);
        assert_eq!(finished.load(Ordering::Acquire), 0);
        // Released: the worker ends, after the job.
        let q = queue.clone();
        let waiting = tokio::task::spawn_blocking(move || q.close_and_wait(Instant::now() + Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        release.send(()).unwrap();
        assert!(waiting.await.unwrap());
        assert_eq!(finished.load(Ordering::Acquire), 1, "closed before the running job ended");
        // Closed and ended: a second call answers at once.
        assert!(queue.close_and_wait(Instant::now()));
    }

    #[tokio::test]
    async fn a_panicking_job_answers_panicked_and_the_worker_goes_on() {
        let queue = ModelQueue::new("test", 1, 0);
        assert_eq!(queue.run(|_, _| -> u32 { panic!("a job that panics") }).await, Err(Panicked("a job that panics".into())));
        assert_eq!(queue.run(|_, _| 7).await, Ok(7));
        settled(&queue).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_job_sees_when_its_answer_is_no_longer_wanted() {
        let queue = ModelQueue::new("test", 1, 0);
        let (started, seen) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, n) = (started.clone(), seen.clone());
        let job = queue.run(move |_, wanted| {
            s.store(1, Ordering::Release);
            while wanted() {
                std::thread::sleep(Duration::from_millis(2));
            }
            n.store(1, Ordering::Release);
        });
        // Dropped once the job runs: the job sees it and ends.
        drop_once_started(job, started).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.load(Ordering::Acquire) == 0 {
            assert!(Instant::now() < deadline, "the job did not see that it is no longer wanted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        settled(&queue).await;
    }
}

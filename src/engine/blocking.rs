//! Inference from a blocking thread: the server runs each request in one blocking task (decode,
//! model, encode; `pipeline::serve`), which waits for a session here (the pool's permits, counted
//! in the queue depth, until the request's deadline), then runs the model on its own thread.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{Engine, EngineError, InferError, ModelInput, ModelOutput, Waiting};

impl Engine {
    /// Runs the model on the calling thread, which must be a blocking thread of a tokio runtime
    /// (it waits on the async permits), once a session is free: waits until `deadline`, or until `gone`
    /// resolves (the request was dropped: its client went away), and then the model does not run.
    /// Returns the output and the queue wait. `hold` keeps the session busy that long before running (test faults only).
    pub(crate) fn infer_blocking(
        &self,
        input: ModelInput<'_>,
        deadline: Instant,
        hold: Option<Duration>,
        gone: impl Future<Output = ()>,
    ) -> Result<(ModelOutput, Duration), InferError> {
        let start = Instant::now();
        let permit = {
            let _waiting = Waiting::enter(&self.waiting);
            tokio::runtime::Handle::current().block_on(async {
                tokio::select! {
                    // A request that is gone never runs, even with a session free.
                    biased;
                    _ = gone => None,
                    p = tokio::time::timeout_at(deadline.into(), self.permits.acquire()) => Some(p),
                }
            })
        };
        let _permit = match permit {
            Some(Ok(Ok(p))) => p,
            Some(Ok(Err(_))) => return Err(InferError::Engine(EngineError::Closed)),
            Some(Err(_)) | None => return Err(InferError::Deadline),
        };
        let waited = start.elapsed();
        if let Some(hold) = hold {
            std::thread::sleep(hold);
        }
        let output = self.run_blocking(input).map_err(InferError::Engine)?;
        Ok((output, waited))
    }
}

//! One request of the server in one blocking task: header, admission, decode, the wait for a
//! session and the model, then the output, all on one thread (before: a hop to a blocking
//! thread and back for each of probe, prepare, inference and finish). The wait is the model's
//! `admission::ModelQueue`, the model run on a free session its `engine::Engine`.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{finish, open, prepare_opened, Colorized, Header, Limits, OutputOptions, PipelineError};
use crate::admission::ModelQueue;
use crate::engine::{Engine, EngineError};
use crate::hints::ColourHint;

/// Says, on the blocking thread, whether the request is still wanted: it resolves once its
/// `Present` half is dropped (the request future dropped: its client went away, or its deadline
/// passed). A request that is gone does not start the model.
pub(crate) struct Gone(oneshot::Receiver<()>);

/// Held by the request's future while it waits for the blocking task.
pub(crate) struct Present(#[allow(dead_code)] oneshot::Sender<()>);

impl Gone {
    pub(crate) fn pair() -> (Present, Gone) {
        let (tx, rx) = oneshot::channel();
        (Present(tx), Gone(rx))
    }

    async fn wait(&mut self) {
        let _ = (&mut self.0).await;
    }
}

/// Why the model did not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InferError {
    /// The deadline passed while waiting for a session (or the request was gone); no inference
    /// was started.
    #[error("the deadline passed while waiting for a session")]
    Deadline,
    #[error("inference failed")]
    Engine(#[source] EngineError),
}

/// Why `serve` did not answer with an image.
#[derive(Debug)]
pub(crate) enum ServeError<E> {
    /// `admit` refused the image (memory).
    Refused(E),
    Pipeline(PipelineError),
    Infer(InferError),
}

impl<E> From<PipelineError> for ServeError<E> {
    fn from(e: PipelineError) -> Self {
        Self::Pipeline(e)
    }
}

/// The whole request on the calling thread, a blocking thread of the tokio runtime: reads the
/// header once, asks `admit` (what the image will cost is known from it), decodes from that same
/// reading, waits for its turn in `queue` until `deadline` (`hold`: keep the turn that long
/// first, test faults only), runs the model on a session of `engine`, and encodes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn serve<E>(
    bytes: &[u8],
    limits: &Limits,
    engine: &Engine,
    queue: &ModelQueue,
    hints: &[ColourHint],
    opts: &OutputOptions,
    deadline: Instant,
    hold: Option<Duration>,
    gone: &mut Gone,
    admit: impl FnOnce(&Header) -> Result<(), E>,
) -> Result<Colorized, ServeError<E>> {
    let t0 = Instant::now();
    let opened = open(bytes, limits)?;
    admit(&opened.header).map_err(ServeError::Refused)?;
    let prepared = prepare_opened(opened, t0, engine, hints)?;
    let t1 = Instant::now();
    let (turn, waited) = queue.wait_blocking(deadline, gone.wait()).map_err(|_| ServeError::Infer(InferError::Deadline))?;
    if let Some(hold) = hold {
        std::thread::sleep(hold);
    }
    let output = engine.run_blocking(prepared.model_input()).map_err(|e| ServeError::Infer(InferError::Engine(e)))?;
    drop(turn);
    let infer = t1.elapsed() - waited;
    let mut done = finish(prepared, output, opts)?;
    done.timings.queue = waited;
    done.timings.infer = infer;
    Ok(done)
}

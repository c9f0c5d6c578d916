//! One request of the server as one job on one of its model's workers
//! (`admission::ModelQueue::run`): header, memory admission, decode, the model and the output,
//! start to end on one thread, with no other thread woken on the way.

use std::time::{Duration, Instant};

use super::{finish, open, prepare_opened, Colorized, Header, Limits, OutputOptions, PipelineError};
use crate::engine::{Engine, EngineError};
use crate::hints::ColourHint;

/// Why `serve` did not answer with an image.
#[derive(Debug)]
pub(crate) enum ServeError<E> {
    /// `admit` refused the image (memory).
    Refused(E),
    Pipeline(PipelineError),
    /// The model failed.
    Infer(EngineError),
    /// The answer was no longer wanted (its request was dropped) before the model started.
    Unwanted,
}

impl<E> From<PipelineError> for ServeError<E> {
    fn from(e: PipelineError) -> Self {
        Self::Pipeline(e)
    }
}

/// The whole request on the calling thread, a worker of the model's queue (`waited`: how long
/// the job waited for it): reads the header once, asks `admit` (what the image will cost is known
/// from it), decodes from that same reading, runs the model on a session of `engine` (`hold`:
/// keep the session that long first, test faults only) unless `wanted` says the answer is no
/// longer wanted, and encodes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn serve<E>(
    bytes: &[u8],
    limits: &Limits,
    engine: &Engine,
    hints: &[ColourHint],
    opts: &OutputOptions,
    waited: Duration,
    wanted: &dyn Fn() -> bool,
    hold: Option<Duration>,
    admit: impl FnOnce(&Header) -> Result<(), E>,
) -> Result<Colorized, ServeError<E>> {
    let t0 = Instant::now();
    let opened = open(bytes, limits)?;
    admit(&opened.header).map_err(ServeError::Refused)?;
    let prepared = prepare_opened(opened, t0, engine, hints)?;
    if !wanted() {
        return Err(ServeError::Unwanted);
    }
    let t1 = Instant::now();
    if let Some(hold) = hold {
        std::thread::sleep(hold);
    }
    let output = engine.run_blocking(prepared.model_input()).map_err(ServeError::Infer)?;
    let infer = t1.elapsed();
    let mut done = finish(prepared, output, opts)?;
    done.timings.queue = waited;
    done.timings.infer = infer;
    Ok(done)
}

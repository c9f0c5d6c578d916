//! One inference on one session: the tensors in, the output checked against the contract.

use std::sync::{Arc, Mutex};

use ort::session::Session;
use ort::value::{TensorRef, TensorValueType};

use super::{Contract, EngineError, Logits, ModelOutput, OutputKind};
use crate::color::AbPlanes;

/// Values of the largest shared zero hint map (4 MiB; a 160-px model's largest input takes
/// 1.2 MiB): larger maps are made for their run.
const SHARED_ZEROS_MAX: usize = 1 << 20;

/// The all-zero hint map of runs without hints, shared by them (read only) and grown to the
/// largest one asked for, up to `SHARED_ZEROS_MAX` values.
static ZEROS: Mutex<Option<Arc<[f32]>>> = Mutex::new(None);

/// At least `n` zeros, not made and zeroed for each run.
fn zeros(n: usize) -> Arc<[f32]> {
    if n > SHARED_ZEROS_MAX {
        return Arc::from(vec![0.0f32; n]);
    }
    let mut shared = ZEROS.lock().unwrap_or_else(|e| e.into_inner());
    match &*shared {
        Some(z) if z.len() >= n => z.clone(),
        _ => shared.insert(Arc::from(vec![0.0f32; n])).clone(),
    }
}

/// Runs `session` on a `[1, 1, h, w]` L image and, for hint models, its `[1, 3, h, w]` hint map
/// (a hint model without hints gets an all-zero map).
pub(super) fn run(
    session: &mut Session,
    contract: &Contract,
    input: &[f32],
    hints: Option<&[f32]>,
    h: usize,
    w: usize,
) -> Result<ModelOutput, EngineError> {
    let run_err = EngineError::Run;
    let tensor = TensorRef::from_array_view(([1usize, 1, h, w], input)).map_err(run_err)?;
    let outputs = if contract.hints {
        let zeros;
        let map = match hints {
            Some(m) => m,
            None => {
                zeros = self::zeros(3 * h * w);
                &zeros[..3 * h * w]
            }
        };
        let hint_tensor = TensorRef::from_array_view(([1usize, 3, h, w], map)).map_err(run_err)?;
        session.run(ort::inputs![tensor, hint_tensor]).map_err(run_err)?
    } else {
        session.run(ort::inputs![tensor]).map_err(run_err)?
    };
    let value =
        outputs.into_iter().next().map(|(_, v)| v).ok_or_else(|| EngineError::BadOutput { got: vec![], expected: "one output".into() })?;
    let (shape, data) = value.try_extract_tensor::<f32>().map_err(EngineError::Run)?;
    let dims: Vec<i64> = shape.iter().copied().collect();
    let channels = contract.output.channels();
    if dims.len() != 4 || dims[0] != 1 || dims[1] != channels as i64 || dims[2] <= 0 || dims[3] <= 0 {
        return Err(EngineError::BadOutput { got: dims, expected: format!("[1, {channels}, h, w]") });
    }
    let (oh, ow) = (dims[2] as usize, dims[3] as usize);
    Ok(match contract.output {
        // the tensor itself, not a copy of its 313 x h x w values
        OutputKind::Logits313 => {
            let tensor = value.downcast::<TensorValueType<f32>>().map_err(EngineError::Run)?;
            ModelOutput::Logits { data: Logits::Ort(tensor), height: oh, width: ow }
        }
        OutputKind::Ab => {
            let (a, b) = data.split_at(oh * ow);
            ModelOutput::Ab(AbPlanes { width: ow, height: oh, a: a.to_vec(), b: b.to_vec() })
        }
    })
}

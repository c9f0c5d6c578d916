//! The model contract: one float32 input `[N, 1, H, W]` of raw L, H and W fixed or dynamic, and
//! optionally a second float32 input `[N, 3, H, W]`, the hint map (a, b of hinted pixels and a
//! mask; see `crate::hints`); one output `[N, 313, h, w]` of bin logits or `[N, 2, h, w]` of ab.

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// 313 logits over the ab bins, decoded by the service with the annealed mean.
    #[serde(rename = "logits313")]
    Logits313,
    /// Two channels of ab, decoded by the model itself.
    Ab,
}

impl OutputKind {
    /// Values per output cell: 313 logits, or a and b.
    pub fn channels(self) -> usize {
        match self {
            OutputKind::Logits313 => crate::color::NUM_BINS,
            OutputKind::Ab => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSize {
    Dynamic,
    Fixed { height: u32, width: u32 },
}

#[derive(Debug, Clone, Copy)]
pub struct Contract {
    pub input: InputSize,
    pub output: OutputKind,
    /// Whether the model takes the hint map as its second input.
    pub hints: bool,
}

impl Contract {
    /// Reads the contract off a session's inputs and outputs, or says which part is off.
    pub fn detect(session: &Session) -> Result<Self, String> {
        let inputs = session.inputs();
        let outputs = session.outputs();
        if inputs.is_empty() || inputs.len() > 2 {
            return Err(format!(
                "it has {} inputs; one ([N, 1, H, W] float32 L) is required, optionally followed by the hint map [N, 3, H, W]",
                inputs.len()
            ));
        }
        if outputs.len() != 1 {
            return Err(format!("it has {} outputs; exactly one ([N, 313, h, w] logits or [N, 2, h, w] ab) is required", outputs.len()));
        }
        let (in_ty, in_shape) = tensor_dims(inputs[0].dtype()).ok_or("its input is not a tensor")?;
        if in_ty != TensorElementType::Float32 {
            return Err(format!("its input is {in_ty:?}; float32 is required"));
        }
        if in_shape.len() != 4 || !(in_shape[1] == 1 || in_shape[1] < 0) {
            return Err(format!("its input has shape {in_shape:?}; [N, 1, H, W] is required"));
        }
        let input = match (in_shape[2], in_shape[3]) {
            (h, w) if h > 0 && w > 0 => InputSize::Fixed { height: h as u32, width: w as u32 },
            (h, w) if h <= 0 && w <= 0 => InputSize::Dynamic,
            _ => return Err(format!("its input has shape {in_shape:?}; H and W must be both fixed or both dynamic")),
        };
        let hints = match inputs.get(1) {
            None => false,
            Some(second) => {
                let (ty, shape) = tensor_dims(second.dtype()).ok_or("its second input is not a tensor")?;
                if ty != TensorElementType::Float32 || shape.len() != 4 || shape[1] != 3 {
                    return Err(format!(
                        "it has 2 inputs and the second is {ty:?} {shape:?}; a second input must be the hint map, float32 [N, 3, H, W]"
                    ));
                }
                let same = |a: i64, b: i64| a == b || (a <= 0 && b <= 0);
                if !same(shape[2], in_shape[2]) || !same(shape[3], in_shape[3]) {
                    return Err(format!("its hint input {shape:?} and its L input {in_shape:?} differ in H or W"));
                }
                true
            }
        };
        let (out_ty, out_shape) = tensor_dims(outputs[0].dtype()).ok_or("its output is not a tensor")?;
        if out_ty != TensorElementType::Float32 {
            return Err(format!("its output is {out_ty:?}; float32 is required"));
        }
        if out_shape.len() != 4 {
            return Err(format!("its output has shape {out_shape:?}; [N, 313, h, w] or [N, 2, h, w] is required"));
        }
        let output = match out_shape[1] {
            313 => OutputKind::Logits313,
            2 => OutputKind::Ab,
            c => return Err(format!("its output has {c} channels (shape {out_shape:?}); 313 bin logits or 2 ab channels are required")),
        };
        Ok(Self { input, output, hints })
    }
}

fn tensor_dims(ty: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    match ty {
        ValueType::Tensor { ty, shape, .. } => Some((*ty, shape.iter().copied().collect())),
        _ => None,
    }
}

//! The colour core: sRGB <-> CIE LAB (as scikit-image computes it), the 313 ab bins, annealed-mean
//! decoding of bin distributions, and bilinear upsampling of ab joined with full-resolution L.
//! Pure functions: no I/O, no ONNX.

mod decode;
mod gamut;
mod lab;
mod pts_in_hull;
mod rgb8;
mod upsample;

#[cfg(test)]
pub(crate) use decode::peaked_logits;
pub use decode::{annealed_mean, AbPlanes};
pub use lab::{gray_l_table, lab_to_srgb, srgb8_to_lab, srgb_to_l};
pub use pts_in_hull::PTS_IN_HULL;
pub use rgb8::LabToRgb8;
#[cfg(test)]
pub(crate) use upsample::bilinear_at;
pub use upsample::{AbUpsampler, Bilinear};

/// Number of ab bins of the classification head.
pub const NUM_BINS: usize = 313;

/// Default decoding temperature of Zhang et al. (1 / 2.606 in the reference code).
pub const DEFAULT_TEMPERATURE: f32 = 0.38;

/// The temperatures the annealed mean takes: 0 < T <= 1 (the one range check of requests, the
/// CLI and model metadata).
pub fn temperature_in_range(t: f64) -> bool {
    t.is_finite() && t > 0.0 && t <= 1.0
}

/// Builds the colour tables (the sRGB encode tables and the gamut boundary, about 12 ms on two
/// cores) now rather than in the first request that joins colours.
pub fn warm_up() {
    let _ = LabToRgb8::new();
}

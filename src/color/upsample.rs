//! Bilinear upsampling of the low-resolution ab planes, fused with the join to full-resolution L
//! and the conversion back to 8-bit sRGB, one output row at a time.

use super::{AbPlanes, LabToRgb8};

/// Source coordinates and weights of bilinear sampling along one axis, with half-pixel centres
/// (`align_corners = false`, as PyTorch's and OpenCV's bilinear resize).
#[derive(Debug, Clone)]
pub struct Bilinear {
    pub i0: Vec<u32>,
    pub i1: Vec<u32>,
    pub w1: Vec<f32>,
}

impl Bilinear {
    pub fn new(src: usize, dst: usize) -> Self {
        assert!(src > 0 && dst > 0);
        let scale = src as f64 / dst as f64;
        let mut i0 = Vec::with_capacity(dst);
        let mut i1 = Vec::with_capacity(dst);
        let mut w1 = Vec::with_capacity(dst);
        for d in 0..dst {
            let x = ((d as f64 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f64);
            let x0 = x.floor() as usize;
            let x1 = (x0 + 1).min(src - 1);
            i0.push(x0 as u32);
            i1.push(x1 as u32);
            w1.push((x - x0 as f64) as f32);
        }
        Self { i0, i1, w1 }
    }
}

/// Upsamples ab planes to an output size and joins them with full-resolution L, row by row.
pub struct AbUpsampler<'a> {
    ab: &'a AbPlanes,
    rows: Bilinear,
    cols: Bilinear,
    conv: LabToRgb8,
}

impl<'a> AbUpsampler<'a> {
    pub fn new(ab: &'a AbPlanes, out_width: usize, out_height: usize) -> Self {
        Self { ab, rows: Bilinear::new(ab.height, out_height), cols: Bilinear::new(ab.width, out_width), conv: LabToRgb8::new() }
    }

    /// Writes output row `y`: ab sampled bilinearly, joined with that row's full-resolution `l`,
    /// as sRGB into `out` with `channels` bytes per pixel (3, or 4 where the alpha byte is left
    /// as it is).
    pub fn join_row(&self, y: usize, l: &[f32], out: &mut [u8], channels: usize) {
        let (ab, rows, cols) = (self.ab, &self.rows, &self.cols);
        let w = ab.width;
        let (y0, y1, wy) = (rows.i0[y] as usize * w, rows.i1[y] as usize * w, rows.w1[y]);
        let (a0, a1) = (&ab.a[y0..y0 + w], &ab.a[y1..y1 + w]);
        let (b0, b1) = (&ab.b[y0..y0 + w], &ab.b[y1..y1 + w]);
        for (x, (px, &lv)) in out.chunks_exact_mut(channels).zip(l).enumerate() {
            let (x0, x1, wx) = (cols.i0[x] as usize, cols.i1[x] as usize, cols.w1[x]);
            let lerp2 = |p0: &[f32], p1: &[f32]| {
                let top = p0[x0] + (p0[x1] - p0[x0]) * wx;
                let bot = p1[x0] + (p1[x1] - p1[x0]) * wx;
                top + (bot - top) * wy
            };
            let rgb = self.conv.convert(lv, lerp2(a0, a1), lerp2(b0, b1));
            px[..3].copy_from_slice(&rgb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_when_sizes_match() {
        let b = Bilinear::new(5, 5);
        assert_eq!(b.i0, vec![0, 1, 2, 3, 4]);
        assert!(b.w1.iter().all(|w| *w == 0.0));
    }

    #[test]
    fn half_pixel_centres_like_pytorch() {
        // torch.nn.functional.interpolate([0, 10], size=4, mode="linear", align_corners=False)
        // gives [0, 2.5, 7.5, 10].
        let b = Bilinear::new(2, 4);
        let v = [0.0f32, 10.0];
        let got: Vec<f32> = (0..4).map(|d| v[b.i0[d] as usize] + (v[b.i1[d] as usize] - v[b.i0[d] as usize]) * b.w1[d]).collect();
        assert_eq!(got, vec![0.0, 2.5, 7.5, 10.0]);
    }

    #[test]
    fn join_keeps_l_and_constant_ab() {
        let ab = AbPlanes { width: 2, height: 2, a: vec![20.0; 4], b: vec![-30.0; 4] };
        let up = AbUpsampler::new(&ab, 5, 3);
        let l = vec![60.0f32; 5];
        let mut out = vec![0u8; 5 * 4];
        up.join_row(1, &l, &mut out, 4);
        let want = crate::color::lab_to_srgb([60.0, 20.0, -30.0]);
        for px in out.chunks_exact(4) {
            assert_eq!(&px[..3], &want);
            assert_eq!(px[3], 0, "alpha byte untouched");
        }
    }
}

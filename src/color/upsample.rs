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
    conv: LabToRgb8,
    /// a and b of every low-resolution row, interpolated along x to the output width (`ab.height`
    /// rows of `out_width`): an output row is then a blend of two of them, a loop without gathers.
    a_rows: Vec<f32>,
    b_rows: Vec<f32>,
    out_width: usize,
}

/// Pixels converted per block in `join_row` (their linear RGB lives on the stack).
const BLOCK: usize = 64;

impl<'a> AbUpsampler<'a> {
    pub fn new(ab: &'a AbPlanes, out_width: usize, out_height: usize) -> Self {
        let cols = Bilinear::new(ab.width, out_width);
        let horizontal = |plane: &[f32]| -> Vec<f32> {
            let mut out = Vec::with_capacity(ab.height * out_width);
            for src in plane.chunks_exact(ab.width) {
                out.extend((0..out_width).map(|x| {
                    let (x0, x1, wx) = (cols.i0[x] as usize, cols.i1[x] as usize, cols.w1[x]);
                    src[x0] + (src[x1] - src[x0]) * wx
                }));
            }
            out
        };
        let (a_rows, b_rows) = (horizontal(&ab.a), horizontal(&ab.b));
        Self { ab, rows: Bilinear::new(ab.height, out_height), conv: LabToRgb8::new(), a_rows, b_rows, out_width }
    }

    /// Writes output row `y`: ab sampled bilinearly, joined with that row's full-resolution `l`,
    /// as sRGB into `out` with `channels` bytes per pixel (3, or 4 where the alpha byte is left
    /// as it is).
    ///
    /// By blocks of pixels: first ab and linear RGB for the whole block (no branches: the
    /// compiler vectorises it), then each pixel's 8-bit code, through the gamut mapping of
    /// `LabToRgb8::convert` only for pixels outside the gamut. Same values as converting pixel by
    /// pixel with `convert`.
    pub fn join_row(&self, y: usize, l: &[f32], out: &mut [u8], channels: usize) {
        let w = self.out_width;
        debug_assert_eq!(self.ab.height * w, self.a_rows.len());
        let (y0, y1, wy) = (self.rows.i0[y] as usize * w, self.rows.i1[y] as usize * w, self.rows.w1[y]);
        let (a0, a1) = (&self.a_rows[y0..y0 + w], &self.a_rows[y1..y1 + w]);
        let (b0, b1) = (&self.b_rows[y0..y0 + w], &self.b_rows[y1..y1 + w]);
        let conv = &self.conv;
        let n_all = l.len().min(w).min(out.len() / channels);
        let mut start = 0;
        while start < n_all {
            let n = BLOCK.min(n_all - start);
            let lb = &l[start..start + n];
            let (a0, a1, b0, b1) = (&a0[start..start + n], &a1[start..start + n], &b0[start..start + n], &b1[start..start + n]);
            let mut av = [0.0f32; BLOCK];
            let mut bv = [0.0f32; BLOCK];
            let (mut r, mut g, mut bl) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
            for i in 0..n {
                let a = a0[i] + (a1[i] - a0[i]) * wy;
                let b = b0[i] + (b1[i] - b0[i]) * wy;
                av[i] = a;
                bv[i] = b;
                [r[i], g[i], bl[i]] = conv.to_linear(lb[i], a, b);
            }
            let ob = &mut out[start * channels..(start + n) * channels];
            // Pixels outside the gamut are gathered and mapped together.
            let mut outside = 0usize;
            let (mut idx, mut ol, mut oa, mut obb) = ([0u8; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
            for (i, px) in ob.chunks_exact_mut(channels).enumerate() {
                match conv.encode_inside([r[i], g[i], bl[i]]) {
                    Some(rgb) => px[..3].copy_from_slice(&rgb),
                    None => {
                        (idx[outside], ol[outside], oa[outside], obb[outside]) = (i as u8, lb[i], av[i], bv[i]);
                        outside += 1;
                    }
                }
            }
            if outside > 0 {
                let mut mapped = [[0u8; 3]; BLOCK];
                conv.map_to_gamut(&ol[..outside], &oa[..outside], &obb[..outside], &mut mapped[..outside]);
                for (&i, rgb) in idx[..outside].iter().zip(&mapped) {
                    let i = i as usize * channels;
                    ob[i..i + 3].copy_from_slice(rgb);
                }
            }
            start += n;
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
    fn join_row_equals_per_pixel_conversion() {
        // Varied ab (inside and far outside the gamut), odd sizes, both channel counts.
        let (w, h) = (7usize, 5usize);
        let a: Vec<f32> = (0..w * h).map(|i| ((i * 37 % 23) as f32 - 11.0) * 11.0).collect();
        let b: Vec<f32> = (0..w * h).map(|i| ((i * 53 % 19) as f32 - 9.0) * 13.0).collect();
        let ab = AbPlanes { width: w, height: h, a, b };
        let (ow, oh) = (131usize, 23usize);
        let up = AbUpsampler::new(&ab, ow, oh);
        let rows = Bilinear::new(h, oh);
        let cols = Bilinear::new(w, ow);
        let conv = LabToRgb8::new();
        for channels in [3usize, 4] {
            for y in 0..oh {
                let l: Vec<f32> = (0..ow).map(|x| ((x * 7 + y * 13) % 101) as f32).collect();
                let mut out = vec![0u8; ow * channels];
                up.join_row(y, &l, &mut out, channels);
                for x in 0..ow {
                    let lerp2 = |p: &[f32]| {
                        let (r0, r1) = (rows.i0[y] as usize * w, rows.i1[y] as usize * w);
                        let (x0, x1, wx) = (cols.i0[x] as usize, cols.i1[x] as usize, cols.w1[x]);
                        let top = p[r0 + x0] + (p[r0 + x1] - p[r0 + x0]) * wx;
                        let bot = p[r1 + x0] + (p[r1 + x1] - p[r1 + x0]) * wx;
                        top + (bot - top) * rows.w1[y]
                    };
                    let want = conv.convert(l[x], lerp2(&ab.a), lerp2(&ab.b));
                    assert_eq!(&out[x * channels..x * channels + 3], &want, "row {y} column {x}");
                }
            }
        }
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

//! LAB -> 8-bit sRGB for the output: the exact encode table of the 255 sRGB decision
//! thresholds, and the gamut mapping of colours outside sRGB (their chroma scaled down, L and hue
//! kept), four pixels at a time.

use std::sync::LazyLock;

use super::lab::{f_lab_inv, M_INV, WHITE};
#[cfg(test)]
use super::lab::{lab_to_srgb, srgb8_to_lab};

/// Bins of the table `LabToRgb8::encode` starts from. A bin (1/4096 of the linear range) is
/// narrower than the smallest gap between two decision thresholds (1 / (255 * 12.92) = 3.0e-4, in
/// the linear segment of the sRGB curve), so each bin holds at most one threshold: one table read
/// and one comparison give the same code as a search over all 255 thresholds.
const ENCODE_BINS: usize = 4096;

/// The 255 decision thresholds of linear -> 8-bit sRGB (plus an infinite sentinel), and for each
/// table bin the number of thresholds at or below the bin's start.
struct EncodeTable {
    thresholds: [f32; 256],
    base: [u8; ENCODE_BINS],
}

static ENCODE: LazyLock<EncodeTable> = LazyLock::new(|| {
    // The code k is chosen when encode(x) * 255 >= k - 0.5, i.e. x >= decode((k - 0.5) / 255).
    let mut thresholds = [f32::INFINITY; 256];
    for (i, t) in thresholds.iter_mut().take(255).enumerate() {
        let v = (i as f64 + 0.5) / 255.0;
        let lin = if v > 0.003_130_8 * 12.92 { ((v + 0.055) / 1.055).powf(2.4) } else { v / 12.92 };
        *t = lin as f32;
    }
    let mut base = [0u8; ENCODE_BINS];
    let mut k = 0usize;
    for (i, b) in base.iter_mut().enumerate() {
        let start = i as f32 / ENCODE_BINS as f32;
        while k < 255 && thresholds[k] <= start {
            k += 1;
        }
        *b = k as u8;
    }
    EncodeTable { thresholds, base }
});

/// Linear value -> nearest 8-bit sRGB code, through the 255 decision thresholds (the linear
/// values whose encoding lies half-way between two codes). Exact, and no `powf` per pixel.
#[derive(Clone)]
pub struct LabToRgb8 {
    table: &'static EncodeTable,
    m_inv: [[f32; 3]; 3],
    /// `m_inv` with the white point folded in (the fast path's one matrix).
    m_white: [[f32; 3]; 3],
    fine: &'static [u8; FINE_BINS],
}

/// Bins of the fine table of the fast path: linear 0..1 in 16383 steps, each holding the code
/// of its centre (16 KiB: it stays in the L1 cache). A bin is at most 0.2 codes wide (at the
/// steepest, the linear segment of the sRGB curve: 255 x 12.92 codes per unit), so only values
/// within half a bin of one of the 255 decision thresholds get the neighbouring code: the fast
/// path is one table read per channel, exact but for those, which are off by one.
const FINE_BINS: usize = 1 << 14;

static FINE: LazyLock<Box<[u8; FINE_BINS]>> = LazyLock::new(|| {
    let exact = LazyLock::force(&ENCODE);
    let mut t = Box::new([0u8; FINE_BINS]);
    for (k, c) in t.iter_mut().enumerate() {
        *c = encode_exact(exact, k as f32 / (FINE_BINS - 1) as f32);
    }
    t
});

impl Default for LabToRgb8 {
    fn default() -> Self {
        Self::new()
    }
}

impl LabToRgb8 {
    pub fn new() -> Self {
        let m_inv = *M_INV;
        let m_white = std::array::from_fn(|i| std::array::from_fn(|j| m_inv[i][j] * WHITE[j]));
        Self { table: LazyLock::force(&ENCODE), m_inv, m_white, fine: &**LazyLock::force(&FINE) }
    }

    /// The fast path's linear sRGB of one LAB pixel, not clipped: multiplications instead of
    /// divisions, selects instead of branches, the white point folded into the matrix, so that a
    /// loop over pixels vectorises. Equal to `to_linear` up to f32 rounding.
    #[inline(always)]
    pub fn to_linear_fast(&self, l: f32, a: f32, b: f32) -> [f32; 3] {
        let fy = (l + 16.0) * (1.0 / 116.0);
        let fx = fy + a * (1.0 / 500.0);
        let fz = (fy - b * (1.0 / 200.0)).max(0.0);
        let f_inv = |t: f32| if t > 0.206_896_6 { t * t * t } else { (t - 16.0 / 116.0) * (1.0 / 7.787) };
        let (x, y, z) = (f_inv(fx), f_inv(fy), f_inv(fz));
        let m = &self.m_white;
        std::array::from_fn(|i| m[i][0] * x + m[i][1] * y + m[i][2] * z)
    }

    /// Whether a linear colour is inside the gamut (as `encode_inside` decides), as a select.
    #[inline(always)]
    pub fn inside(lin: &[f32; 3]) -> bool {
        inside_gamut(lin)
    }

    /// The fine table's index of a linear value (clamped to 0..1; NaN gives 0), branch-free.
    #[inline(always)]
    pub fn fine_index(lin: f32) -> u32 {
        // `max` first: NaN becomes 0 (`clamp` would keep it).
        #[allow(clippy::manual_clamp)]
        let v = lin.max(0.0).min(1.0) * (FINE_BINS - 1) as f32 + 0.5;
        // SAFETY: v is in 0.5..=FINE_BINS - 0.5, finite: the truncation fits an i32 (a plain
        // `as` would add saturation code that keeps the loop from vectorising).
        (unsafe { v.to_int_unchecked::<i32>() }) as u32
    }

    /// The 8-bit code of a fine-table index (`fine_index`).
    #[inline(always)]
    pub fn fine_code(&self, index: u32) -> u8 {
        self.fine[index as usize & (FINE_BINS - 1)]
    }

    /// The number of thresholds at or below `lin` (NaN and negatives give 0, 1 and more 255):
    /// the bin of `lin` (exact: scaling by a power of two does not round) gives the count up to
    /// the bin's start, and the bin holds at most the next threshold.
    #[inline]
    fn encode(&self, lin: f32) -> u8 {
        encode_exact(self.table, lin)
    }

    #[inline]
    fn linear(&self, l: f32, a: f32, b: f32) -> [f32; 3] {
        let fy = (l + 16.0) / 116.0;
        let fx = a * (1.0 / 500.0) + fy;
        let fz = (fy - b * (1.0 / 200.0)).max(0.0);
        let xyz = [f_lab_inv(fx) * WHITE[0], f_lab_inv(fy) * WHITE[1], f_lab_inv(fz) * WHITE[2]];
        let m = &self.m_inv;
        std::array::from_fn(|i| m[i][0] * xyz[0] + m[i][1] * xyz[1] + m[i][2] * xyz[2])
    }

    /// One LAB pixel to 8-bit sRGB, clipping each channel (as scikit-image's `lab2rgb`).
    #[inline]
    pub fn convert_clipped(&self, l: f32, a: f32, b: f32) -> [u8; 3] {
        self.linear(l, a, b).map(|c| self.encode(c))
    }

    /// Linear sRGB of one LAB pixel, not clipped: the first half of `convert`, without branches so
    /// that a loop over pixels vectorises (`AbUpsampler::join_row` runs it over a block of pixels,
    /// then `encode_inside` or `convert` on each).
    #[inline(always)]
    pub fn to_linear(&self, l: f32, a: f32, b: f32) -> [f32; 3] {
        self.linear(l, a, b)
    }

    /// The 8-bit sRGB of a linear colour inside the gamut (what `convert` gives for it), or None
    /// when it is outside and `convert` has to map it.
    #[inline(always)]
    pub fn encode_inside(&self, lin: [f32; 3]) -> Option<[u8; 3]> {
        if inside_gamut(&lin) {
            Some(lin.map(|c| self.encode(c)))
        } else {
            None
        }
    }

    /// `convert` for pixels outside the gamut, many at once: the same bisection on the chroma
    /// scale as `convert`, four pixels at a time in SSE2 lanes on x86-64 (the outcome of each
    /// step is unpredictable, so branches would mispredict half the time; lanes blend instead).
    /// The same operations in the same order: the same codes as `convert` pixel by pixel.
    /// `l`, `a`, `b` and `out` have one length.
    pub fn map_to_gamut(&self, l: &[f32], a: &[f32], b: &[f32], out: &mut [[u8; 3]]) {
        let len = out.len();
        assert!(l.len() == len && a.len() == len && b.len() == len);
        let mut i = 0;
        #[cfg(target_arch = "x86_64")]
        while i + 4 <= len {
            let lc = std::array::from_fn(|j| l[i + j].clamp(0.0, 100.0));
            let best = self.bisect4(lc, std::array::from_fn(|j| a[i + j]), std::array::from_fn(|j| b[i + j]));
            for (o, c) in out[i..i + 4].iter_mut().zip(best) {
                *o = c.map(|v| self.encode(v));
            }
            i += 4;
        }
        for j in i..len {
            out[j] = self.convert(l[j], a[j], b[j]);
        }
    }

    /// The bisection of `convert` on four pixels (L already clamped), in SSE2 lanes; returns the
    /// linear RGB of each pixel's last in-gamut step.
    #[cfg(target_arch = "x86_64")]
    fn bisect4(&self, l: [f32; 4], a: [f32; 4], b: [f32; 4]) -> [[f32; 3]; 4] {
        use std::arch::x86_64::*;
        const EPS: f32 = 1e-4;
        // SAFETY: SSE2 is part of the x86-64 baseline; loads and stores go through arrays of 4.
        unsafe {
            let splat = |v: f32| _mm_set1_ps(v);
            let select = |m: __m128, t: __m128, f: __m128| _mm_or_ps(_mm_and_ps(m, t), _mm_andnot_ps(m, f));
            let f_inv = |t: __m128| {
                let cube = _mm_mul_ps(_mm_mul_ps(t, t), t);
                let lin = _mm_div_ps(_mm_sub_ps(t, splat(16.0 / 116.0)), splat(7.787));
                select(_mm_cmpgt_ps(t, splat(0.206_896_6)), cube, lin)
            };
            let (lv, av, bv) = (_mm_loadu_ps(l.as_ptr()), _mm_loadu_ps(a.as_ptr()), _mm_loadu_ps(b.as_ptr()));
            let fy = _mm_div_ps(_mm_add_ps(lv, splat(16.0)), splat(116.0));
            let y = _mm_mul_ps(f_inv(fy), splat(WHITE[1]));
            let m = &self.m_inv;
            // `linear(l, a, b)` for the four lanes, the same operations in the same order.
            let linear = |a: __m128, b: __m128| -> [__m128; 3] {
                let fx = _mm_add_ps(_mm_mul_ps(a, splat(1.0 / 500.0)), fy);
                let fz = _mm_max_ps(_mm_sub_ps(fy, _mm_mul_ps(b, splat(1.0 / 200.0))), _mm_setzero_ps());
                let (x, z) = (_mm_mul_ps(f_inv(fx), splat(WHITE[0])), _mm_mul_ps(f_inv(fz), splat(WHITE[2])));
                std::array::from_fn(|i| {
                    _mm_add_ps(_mm_add_ps(_mm_mul_ps(splat(m[i][0]), x), _mm_mul_ps(splat(m[i][1]), y)), _mm_mul_ps(splat(m[i][2]), z))
                })
            };
            let inside = |c: &[__m128; 3]| {
                let ok = |v: __m128| _mm_and_ps(_mm_cmpge_ps(v, splat(-EPS)), _mm_cmple_ps(v, splat(1.0 + EPS)));
                _mm_and_ps(_mm_and_ps(ok(c[0]), ok(c[1])), ok(c[2]))
            };
            let (mut lo, mut hi) = (_mm_setzero_ps(), splat(1.0));
            let mut best = linear(_mm_setzero_ps(), _mm_setzero_ps());
            for _ in 0..12 {
                let k = _mm_mul_ps(splat(0.5), _mm_add_ps(lo, hi));
                let c = linear(_mm_mul_ps(av, k), _mm_mul_ps(bv, k));
                let ins = inside(&c);
                lo = select(ins, k, lo);
                hi = select(ins, hi, k);
                best = std::array::from_fn(|i| select(ins, c[i], best[i]));
            }
            let mut ch = [[0.0f32; 4]; 3];
            for (dst, v) in ch.iter_mut().zip(best) {
                _mm_storeu_ps(dst.as_mut_ptr(), v);
            }
            std::array::from_fn(|j| [ch[0][j], ch[1][j], ch[2][j]])
        }
    }

    /// One LAB pixel to 8-bit sRGB. Colours outside the sRGB gamut keep their L and hue: their
    /// chroma is scaled down to the gamut boundary (bisection), instead of clipping each channel,
    /// which would change the lightness the photo came with.
    #[inline]
    pub fn convert(&self, l: f32, a: f32, b: f32) -> [u8; 3] {
        let inside = inside_gamut;
        let lin = self.linear(l, a, b);
        if inside(&lin) {
            return lin.map(|c| self.encode(c));
        }
        let l = l.clamp(0.0, 100.0);
        let (mut lo, mut hi) = (0.0f32, 1.0f32);
        let mut best = self.linear(l, 0.0, 0.0);
        for _ in 0..12 {
            let k = 0.5 * (lo + hi);
            let c = self.linear(l, a * k, b * k);
            if inside(&c) {
                lo = k;
                best = c;
            } else {
                hi = k;
            }
        }
        best.map(|c| self.encode(c))
    }
}

/// `LabToRgb8::encode`: the count of thresholds at or below `lin`, from the bin's start and one
/// comparison.
#[inline]
fn encode_exact(t: &EncodeTable, lin: f32) -> u8 {
    let bin = ((lin * ENCODE_BINS as f32) as usize).min(ENCODE_BINS - 1);
    let k = t.base[bin];
    k.saturating_add((lin >= t.thresholds[k as usize]) as u8)
}

/// Whether a linear colour is inside the sRGB gamut, with a tolerance of 1e-4.
#[inline(always)]
fn inside_gamut(c: &[f32; 3]) -> bool {
    const EPS: f32 = 1e-4;
    c.iter().all(|v| (-EPS..=1.0 + EPS).contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_converter_matches_reference_exactly() {
        let fast = LabToRgb8::new();
        let mut n = 0;
        for l in (0..=100).step_by(5) {
            for a in (-110..=110).step_by(10) {
                for b in (-110..=110).step_by(10) {
                    let (l, a, b) = (l as f32, a as f32, b as f32);
                    let want = lab_to_srgb([l, a, b]);
                    let got = fast.convert_clipped(l, a, b);
                    let diff = want.iter().zip(got.iter()).map(|(x, y)| (*x as i32 - *y as i32).abs()).max().unwrap();
                    assert!(diff <= 1, "lab ({l},{a},{b}): fast {got:?} vs reference {want:?}");
                    n += (diff == 0) as usize;
                }
            }
        }
        // Differences of one code can only come from f32 rounding at a threshold.
        assert!(n as f32 / (21.0 * 23.0 * 23.0) > 0.999, "{n}");
    }

    #[test]
    fn encode_table_equals_a_search_over_all_thresholds() {
        let fast = LabToRgb8::new();
        let t = &ENCODE.thresholds[..255];
        // At most one threshold per bin.
        for i in 0..ENCODE_BINS {
            let k = ENCODE.base[i] as usize;
            if k + 1 < 255 {
                assert!(t[k + 1] >= (i + 1) as f32 / ENCODE_BINS as f32, "two thresholds in bin {i}");
            }
        }
        let count = |x: f32| t.iter().filter(|&&v| v <= x).count() as u8;
        let mut probes: Vec<f32> = vec![f32::NAN, f32::NEG_INFINITY, -1.0, -0.0, 0.0, 1.0, 1.5, f32::INFINITY, f32::MAX];
        for &v in t {
            probes.extend([v, f32::from_bits(v.to_bits() - 1), f32::from_bits(v.to_bits() + 1)]);
        }
        probes.extend((0..=200_000).map(|i| i as f32 / 200_000.0));
        for x in probes {
            assert_eq!(fast.encode(x), count(x), "linear value {x:e}");
        }
    }

    #[test]
    fn batch_gamut_mapping_equals_convert() {
        let fast = LabToRgb8::new();
        let (mut l, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for li in (-5..=105).step_by(5) {
            for ai in (-130..=130).step_by(13) {
                for bi in (-130..=130).step_by(13) {
                    l.push(li as f32 + 0.3);
                    a.push(ai as f32);
                    b.push(bi as f32);
                }
            }
        }
        let mut out = vec![[0u8; 3]; l.len()];
        fast.map_to_gamut(&l, &a, &b, &mut out);
        let mut mapped = 0;
        for i in 0..l.len() {
            let lin = fast.to_linear(l[i], a[i], b[i]);
            if fast.encode_inside(lin).is_none() {
                mapped += 1;
                assert_eq!(out[i], fast.convert(l[i], a[i], b[i]), "lab ({}, {}, {})", l[i], a[i], b[i]);
            }
        }
        assert!(mapped > 1000, "{mapped}");
    }

    #[test]
    fn gamut_mapping_keeps_lightness_and_hue() {
        let fast = LabToRgb8::new();
        for l in [5.0f32, 20.0, 50.0, 80.0, 95.0] {
            for (a, b) in [(100.0f32, 100.0f32), (-90.0, 80.0), (60.0, -110.0), (-40.0, -60.0)] {
                let rgb = fast.convert(l, a, b);
                let lab = srgb8_to_lab(rgb);
                assert!((lab[0] - l).abs() < 0.6, "L {l} ({a},{b}) -> {rgb:?} L {}", lab[0]);
                let chroma = (lab[1] * lab[1] + lab[2] * lab[2]).sqrt();
                if chroma > 8.0 {
                    let want = b.atan2(a);
                    let got = lab[2].atan2(lab[1]);
                    let d = (want - got).abs().min(std::f32::consts::TAU - (want - got).abs());
                    assert!(d < 0.35, "hue moved by {d} rad at L {l} ({a},{b}) -> {lab:?}");
                }
            }
        }
    }

    #[test]
    fn round_trip_dense_sample_of_all_srgb_colours() {
        // Every 3rd value per channel: 86^3 = 636k colours, all corners included.
        let fast = LabToRgb8::new();
        let vals: Vec<u8> = (0..=255u8).step_by(3).chain([255]).collect();
        let mut worst = 0;
        for &r in &vals {
            for &g in &vals {
                for &b in &vals {
                    let lab = srgb8_to_lab([r, g, b]);
                    let back = fast.convert(lab[0], lab[1], lab[2]);
                    let d = [r, g, b].iter().zip(back.iter()).map(|(x, y)| (*x as i32 - *y as i32).abs()).max().unwrap();
                    worst = worst.max(d);
                }
            }
        }
        assert!(worst <= 1, "worst round-trip error {worst} codes");
    }
}

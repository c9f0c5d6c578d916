//! sRGB (D65) <-> CIE LAB, with the constants and branch points of scikit-image's `rgb2lab` /
//! `lab2rgb` (sRGB, D65; the formula and check values are in training/lab.py and its tests).

use std::sync::LazyLock;

/// sRGB -> XYZ matrix of scikit-image (`xyz_from_rgb`).
const M: [[f32; 3]; 3] = [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]];
/// D65 white point, 2 degree observer.
const WHITE: [f32; 3] = [0.95047, 1.0, 1.08883];

/// XYZ -> sRGB: the inverse of `M` (computed in f64 by `inverse_m`, as scikit-image uses
/// `linalg.inv(xyz_from_rgb)`).
static M_INV: LazyLock<[[f32; 3]; 3]> = LazyLock::new(inverse_m);

fn inverse_m() -> [[f32; 3]; 3] {
    let m: [[f64; 3]; 3] = M.map(|r| r.map(f64::from));
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let c = |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let adj = [
        [c(1, 1, 2, 2), -c(0, 1, 2, 2), c(0, 1, 1, 2)],
        [-c(1, 0, 2, 2), c(0, 0, 2, 2), -c(0, 0, 1, 2)],
        [c(1, 0, 2, 1), -c(0, 0, 2, 1), c(0, 0, 1, 1)],
    ];
    adj.map(|r| r.map(|v| (v / det) as f32))
}

/// sRGB gamma decoding of a component in 0..1.
#[inline]
fn gamma_decode(c: f32) -> f32 {
    if c > 0.04045 {
        ((c + 0.055) / 1.055).powf(2.4)
    } else {
        c / 12.92
    }
}

/// sRGB gamma encoding of a linear component (not clipped).
#[inline]
fn gamma_encode(c: f32) -> f32 {
    if c > 0.003_130_8 {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    } else {
        c * 12.92
    }
}

#[inline]
fn f_lab(t: f32) -> f32 {
    if t > 0.008856 {
        t.cbrt()
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

#[inline]
fn f_lab_inv(t: f32) -> f32 {
    if t > 0.206_896_6 {
        t * t * t
    } else {
        (t - 16.0 / 116.0) / 7.787
    }
}

static LINEAR_LUT: LazyLock<[f32; 256]> = LazyLock::new(|| std::array::from_fn(|i| gamma_decode(i as f32 / 255.0)));

/// L of a gray sRGB value (r = g = b = v), for the fast path of gray images.
static GRAY_L_LUT: LazyLock<[f32; 256]> = LazyLock::new(|| {
    std::array::from_fn(|i| {
        let lin = LINEAR_LUT[i];
        // M's middle row sums to 1.000000 for a gray pixel, up to rounding; keep the exact sum.
        let y = (M[1][0] + M[1][1] + M[1][2]) * lin;
        116.0 * f_lab(y) - 16.0
    })
});

/// The linear-light value of an 8-bit sRGB component.
#[inline]
fn srgb8_to_linear(v: u8) -> f32 {
    LINEAR_LUT[v as usize]
}

/// Full sRGB -> LAB of one 8-bit pixel.
pub fn srgb8_to_lab(rgb: [u8; 3]) -> [f32; 3] {
    let lin = rgb.map(srgb8_to_linear);
    let xyz: [f32; 3] = std::array::from_fn(|i| (M[i][0] * lin[0] + M[i][1] * lin[1] + M[i][2] * lin[2]) / WHITE[i]);
    let f = xyz.map(f_lab);
    [116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])]
}

/// L (0..100) of one 8-bit sRGB pixel; the same value as `srgb8_to_lab(rgb)[0]`, with a table
/// for gray pixels.
#[inline]
pub fn srgb_to_l(rgb: [u8; 3]) -> f32 {
    if rgb[0] == rgb[1] && rgb[1] == rgb[2] {
        return GRAY_L_LUT[rgb[0] as usize];
    }
    let y = M[1][0] * srgb8_to_linear(rgb[0]) + M[1][1] * srgb8_to_linear(rgb[1]) + M[1][2] * srgb8_to_linear(rgb[2]);
    116.0 * f_lab(y) - 16.0
}

/// LAB -> linear sRGB (not clipped), following scikit-image's `lab2xyz` (negative z clipped to
/// zero) and `xyz2rgb`.
#[inline]
fn lab_to_linear(l: f32, a: f32, b: f32) -> [f32; 3] {
    let fy = (l + 16.0) / 116.0;
    let fx = a / 500.0 + fy;
    let fz = (fy - b / 200.0).max(0.0);
    let xyz = [f_lab_inv(fx) * WHITE[0], f_lab_inv(fy) * WHITE[1], f_lab_inv(fz) * WHITE[2]];
    let m = &*M_INV;
    std::array::from_fn(|i| m[i][0] * xyz[0] + m[i][1] * xyz[1] + m[i][2] * xyz[2])
}

/// LAB -> sRGB components in 0..1 (clipped), as scikit-image's `lab2rgb`.
fn lab_to_srgb_f32(lab: [f32; 3]) -> [f32; 3] {
    lab_to_linear(lab[0], lab[1], lab[2]).map(|c| gamma_encode(c).clamp(0.0, 1.0))
}

/// LAB -> 8-bit sRGB, rounding to the nearest code (scikit-image `img_as_ubyte(lab2rgb(..))`).
pub fn lab_to_srgb(lab: [f32; 3]) -> [u8; 3] {
    lab_to_srgb_f32(lab).map(|c| (c * 255.0).round() as u8)
}

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
}

impl Default for LabToRgb8 {
    fn default() -> Self {
        Self::new()
    }
}

impl LabToRgb8 {
    pub fn new() -> Self {
        Self { table: LazyLock::force(&ENCODE), m_inv: *M_INV }
    }

    /// The number of thresholds at or below `lin` (NaN and negatives give 0, 1 and more 255):
    /// the bin of `lin` (exact: scaling by a power of two does not round) gives the count up to
    /// the bin's start, and the bin holds at most the next threshold.
    #[inline]
    fn encode(&self, lin: f32) -> u8 {
        let t = self.table;
        let bin = ((lin * ENCODE_BINS as f32) as usize).min(ENCODE_BINS - 1);
        let k = t.base[bin];
        k.saturating_add((lin >= t.thresholds[k as usize]) as u8)
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

/// Whether a linear colour is inside the sRGB gamut, with a tolerance of 1e-4.
#[inline(always)]
fn inside_gamut(c: &[f32; 3]) -> bool {
    const EPS: f32 = 1e-4;
    c.iter().all(|v| (-EPS..=1.0 + EPS).contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f32; 3], b: [f32; 3], tol: f32) -> bool {
        a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn check_values_of_the_reference() {
        // Check values of scikit-image rgb2lab (white, red, green, blue).
        let cases = [
            ([255, 255, 255], [100.0, 0.0, 0.0]),
            ([255, 0, 0], [53.24, 80.09, 67.20]),
            ([0, 255, 0], [87.74, -86.18, 83.18]),
            ([0, 0, 255], [32.30, 79.19, -107.86]),
            ([0, 0, 0], [0.0, 0.0, 0.0]),
        ];
        for (rgb, lab) in cases {
            let got = srgb8_to_lab(rgb);
            assert!(close(got, lab, 0.01), "{rgb:?}: got {got:?}, want {lab:?}");
            assert!((srgb_to_l(rgb) - lab[0]).abs() < 0.01);
            assert_eq!(lab_to_srgb(got), rgb, "round trip of {rgb:?}");
        }
    }

    #[test]
    fn gray_is_neutral() {
        for v in 0..=255u8 {
            let lab = srgb8_to_lab([v, v, v]);
            assert!(lab[1].abs() < 0.01 && lab[2].abs() < 0.01, "{v}: {lab:?}");
            assert!((srgb_to_l([v, v, v]) - lab[0]).abs() < 1e-4);
        }
    }

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

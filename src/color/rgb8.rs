//! LAB -> 8-bit sRGB for the output: the exact encode table of the 255 sRGB decision
//! thresholds, and the gamut mapping of colours outside sRGB (their chroma scaled down, L and hue
//! kept), four pixels at a time.

use std::sync::LazyLock;

use super::gamut::{outer_chroma, GamutBoundary, BOUNDARY};
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
    fine: &'static [u8; FINE_TABLE_LEN],
    boundary: &'static GamutBoundary,
}

/// Bins of the fine table of the fast path: linear 0..1 in 16383 steps, each holding the code
/// of its centre (16 KiB: it stays in the L1 cache). A bin is at most 0.2 codes wide (at the
/// steepest, the linear segment of the sRGB curve: 255 x 12.92 codes per unit), so only values
/// within half a bin of one of the 255 decision thresholds get the neighbouring code: the fast
/// path is one table read per channel, exact but for those, which are off by one.
const FINE_BINS: usize = 1 << 14;

/// The fine table's length: its bins and 3 bytes more, so that a 4-byte read at any bin (a
/// gather of 32-bit lanes, `fine_table`) stays inside it.
pub const FINE_TABLE_LEN: usize = FINE_BINS + 3;

static FINE: LazyLock<Box<[u8; FINE_TABLE_LEN]>> = LazyLock::new(|| {
    let exact = LazyLock::force(&ENCODE);
    let mut t = Box::new([0u8; FINE_TABLE_LEN]);
    for (k, c) in t[..FINE_BINS].iter_mut().enumerate() {
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
        Self { table: LazyLock::force(&ENCODE), m_inv, m_white, fine: &**LazyLock::force(&FINE), boundary: LazyLock::force(&BOUNDARY) }
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

    /// The fine table itself (`fine_code(i)` is its byte `i`; 3 bytes of padding follow the last
    /// bin), for reads 16 at a time.
    #[inline(always)]
    pub fn fine_table(&self) -> &'static [u8; FINE_TABLE_LEN] {
        self.fine
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
        lab_linear(&self.m_inv, l, a, b)
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

    /// `convert` for colours outside the gamut, a block at a time, without its bisection: the
    /// chroma scale where a colour meets the gamut boundary is read from the boundary table
    /// (`gamut::GamutBoundary`, at the colour's L and hue), made exact by one Newton step on the
    /// channel that leaves 0..1 first, and checked: inside a bisection step (1/4096) below it,
    /// outside one step above, as the bisection would bracket it. Then one conversion, channels
    /// clipped. Four conversions where `convert` takes thirteen, in a branch-free loop that
    /// vectorises; a colour whose check fails (where the table is coarse, near the cusps of the
    /// gamut) is scanned from its own chroma down (`gamut::outer_chroma`). The same codes as `convert` within one, but where the
    /// colours inside the gamut along the colour's ray are two stretches: then the outer one
    /// (tests below and `fast_join_matches_the_exact_join`). `l`, `a`, `b` and `out` have one
    /// length, at most 64.
    #[inline(always)]
    pub fn map_outside(&self, l: &[f32], a: &[f32], b: &[f32], out: &mut [[u8; 3]]) {
        const MAX: usize = 64;
        const STEP: f32 = 1.0 / 4096.0;
        let n = out.len();
        assert!(n <= MAX && l.len() == n && a.len() == n && b.len() == n);
        // The table's estimate first (its reads are gathers), then the arithmetic, branch-free.
        let mut k0 = [0.0f32; MAX];
        for i in 0..n {
            let (l, a, b) = (l[i].clamp(0.0, 100.0), a[i], b[i]);
            let c = (a * a + b * b).sqrt();
            let boundary = self.boundary.chroma(l, a, b);
            k0[i] = if c > boundary { boundary / c } else { 1.0 };
        }
        let mut lin = [[0.0f32; MAX]; 3];
        let mut ok = [false; MAX];
        for i in 0..n {
            let (l, a, b) = (l[i].clamp(0.0, 100.0), a[i], b[i]);
            let k = self.boundary_scale(l, a, b, k0[i]);
            let (below, above) = (k - STEP, k + STEP);
            let inside_below = (below <= 0.0) | inside_gamut(&self.linear(l, a * below, b * below));
            let outside_above = (above >= 1.0) | !inside_gamut(&self.linear(l, a * above, b * above));
            ok[i] = inside_below & outside_above;
            let mapped = self.linear(l, a * k, b * k);
            for c in 0..3 {
                lin[c][i] = mapped[c];
            }
        }
        for i in 0..n {
            out[i] = if ok[i] {
                [0, 1, 2].map(|c| self.encode(lin[c][i]))
            } else {
                let (l, a, b) = (l[i].clamp(0.0, 100.0), a[i], b[i]);
                let c = (a * a + b * b).sqrt();
                let mut boundary = [0.0f32];
                if c > 0.0 {
                    outer_chroma(l, c, &[a / c], &[b / c], &mut boundary);
                }
                let k = if c > 0.0 { boundary[0] / c } else { 0.0 };
                self.linear(l, a * k, b * k).map(|v| self.encode(v))
            };
        }
    }

    /// One Newton step from the chroma scale `k0` (near the boundary) to the scale where the
    /// first channel of `linear(l, a k, b k)` reaches 0 or 1, clamped to 0..1.
    #[inline(always)]
    fn boundary_scale(&self, l: f32, a: f32, b: f32, k0: f32) -> f32 {
        // f_lab_inv and its derivative.
        let f_inv = |t: f32| if t > 0.206_896_6 { (t * t * t, 3.0 * t * t) } else { ((t - 16.0 / 116.0) / 7.787, 1.0 / 7.787) };
        let fy = (l + 16.0) / 116.0;
        let y = f_inv(fy).0 * WHITE[1];
        let (x, dx) = f_inv(a * k0 * (1.0 / 500.0) + fy);
        let (x, dx) = (x * WHITE[0], dx * WHITE[0] * (a / 500.0));
        let fz = fy - b * k0 * (1.0 / 200.0);
        let (z, dz) = if fz > 0.0 { f_inv(fz) } else { (f_inv(0.0).0, 0.0) };
        let (z, dz) = (z * WHITE[2], dz * WHITE[2] * (-b / 200.0));
        let m = &self.m_inv;
        let mut k = 1.0f32;
        for row in m {
            let value = row[0] * x + row[1] * y + row[2] * z;
            let slope = row[0] * dx + row[2] * dz;
            if slope != 0.0 {
                // The edges of `inside_gamut`, where `convert`'s bisection converges.
                let target = if slope < 0.0 { -GAMUT_EPS } else { 1.0 + GAMUT_EPS };
                k = k.min(k0 + (target - value) / slope);
            }
        }
        k.clamp(0.0, 1.0)
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

/// LAB -> linear sRGB, not clipped (`m_inv`: `M_INV`).
#[inline(always)]
pub(super) fn lab_linear(m_inv: &[[f32; 3]; 3], l: f32, a: f32, b: f32) -> [f32; 3] {
    let fy = (l + 16.0) / 116.0;
    let fx = a * (1.0 / 500.0) + fy;
    let fz = (fy - b * (1.0 / 200.0)).max(0.0);
    let xyz = [f_lab_inv(fx) * WHITE[0], f_lab_inv(fy) * WHITE[1], f_lab_inv(fz) * WHITE[2]];
    std::array::from_fn(|i| m_inv[i][0] * xyz[0] + m_inv[i][1] * xyz[1] + m_inv[i][2] * xyz[2])
}

/// How far outside 0..1 a linear channel may lie and still count as inside the gamut.
const GAMUT_EPS: f32 = 1e-4;

/// Whether a linear colour is inside the sRGB gamut, with a tolerance of `GAMUT_EPS`.
#[inline(always)]
pub(super) fn inside_gamut(c: &[f32; 3]) -> bool {
    // `&`, not `all`'s `&&`: no branches, so that loops over pixels vectorise.
    let ok = |v: f32| (-GAMUT_EPS..=1.0 + GAMUT_EPS).contains(&v);
    ok(c[0]) & ok(c[1]) & ok(c[2])
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

    /// The table mapping against the bisection, on colours far outside the gamut at every L
    /// (the cusps of yellow and blue included): within one code, mostly the same. Where the
    /// colours inside the gamut along a ray from gray are not one stretch (yellows of L over 90
    /// and chroma over 90) the bisection stops wherever its halving lands, often at the pale end
    /// of the inner stretch; the table keeps the outer, vivid one.
    #[test]
    fn table_gamut_mapping_matches_convert() {
        let fast = LabToRgb8::new();
        let (mut mapped, mut same, mut far) = (0usize, 0usize, Vec::new());
        for li in -5..=105 {
            for ai in (-130..=130).step_by(5) {
                for bi in (-130..=130).step_by(5) {
                    let (l, a, b) = (li as f32 + 0.3, ai as f32, bi as f32);
                    if fast.encode_inside(fast.to_linear(l, a, b)).is_some() {
                        continue;
                    }
                    mapped += 1;
                    let mut got = [[0u8; 3]];
                    fast.map_outside(&[l], &[a], &[b], &mut got);
                    let (got, want) = (got[0], fast.convert(l, a, b));
                    let d = got.iter().zip(want).map(|(x, y)| x.abs_diff(y)).max().unwrap();
                    same += (d == 0) as usize;
                    if d > 1 {
                        // Then the table's colour is the more vivid one (the outer stretch).
                        let chroma = |rgb: [u8; 3]| {
                            let lab = srgb8_to_lab(rgb);
                            lab[1].hypot(lab[2])
                        };
                        assert!(chroma(got) > chroma(want), "lab ({l}, {a}, {b}): table {got:?}, bisection {want:?}");
                        far.push(format!("lab ({l}, {a}, {b}): table {got:?}, bisection {want:?}"));
                    }
                }
            }
        }
        assert!(mapped > 250_000, "{mapped}");
        assert!(same as f64 / mapped as f64 > 0.95, "{same} of {mapped} identical");
        assert!(far.len() <= 20, "{} of {mapped} more than one code apart: {far:#?}", far.len());
    }

    /// The primaries and secondaries pushed out along their own hue come back to themselves.
    #[test]
    fn table_gamut_mapping_finds_the_corners() {
        let fast = LabToRgb8::new();
        // Yellow itself is the cusp where the outer stretch of its ray shrinks to one point: a
        // darker yellow stands for it.
        for rgb in [[255u8, 0, 0], [0, 255, 0], [0, 0, 255], [250, 240, 0], [0, 255, 255], [255, 0, 255]] {
            let lab = srgb8_to_lab(rgb);
            let mut got = [[0u8; 3]];
            fast.map_outside(&[lab[0]], &[lab[1] * 1.3], &[lab[2] * 1.3], &mut got);
            let d = got[0].iter().zip(rgb).map(|(x, y)| x.abs_diff(y)).max().unwrap();
            assert!(d <= 1, "{rgb:?} -> {:?}", got[0]);
        }
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

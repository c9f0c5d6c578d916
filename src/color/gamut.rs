//! The sRGB gamut boundary in LAB as a table: for each L and hue, the largest chroma whose colour
//! is inside sRGB (257 x 1025 points, built in about 12 ms at warm-up). The join maps an
//! out-of-gamut colour onto the boundary from it (`LabToRgb8::map_outside`: the table's chroma,
//! one Newton step, a check; four conversions where the bisection of `LabToRgb8::convert` takes
//! thirteen): L and hue kept, chroma reduced to the boundary, the same code as the bisection
//! within one (tests below, in rgb8.rs and `fast_join_matches_the_exact_join`).

use std::sync::LazyLock;

use rayon::prelude::*;

use super::lab::M_INV;
use super::rgb8::{inside_gamut, lab_linear};

/// Intervals of the L axis (0..100): the table has `L_STEPS + 1` rows.
const L_STEPS: usize = 256;
/// Intervals of the hue axis, in "diamond" units (`diamond_angle`, 0..4 around the circle): the
/// table has `HUE_STEPS + 1` columns, the last equal to the first.
const HUE_STEPS: usize = 1024;
/// Chroma beyond every sRGB colour (the largest is about 134, blue at L 32).
const CHROMA_SEARCH: f32 = 160.0;

/// The boundary chroma at the grid points, row-major by L.
pub(super) struct GamutBoundary {
    chroma: Box<[f32]>,
}

/// Built once, on first use (`color::warm_up` builds it at start).
pub(super) static BOUNDARY: LazyLock<GamutBoundary> = LazyLock::new(GamutBoundary::build);

/// A monotone stand-in for the angle of (a, b): 0..4 over the circle, one division and no
/// trigonometry (0 for a = b = 0). Branch-free, so that loops over pixels vectorise.
#[inline(always)]
pub(super) fn diamond_angle(a: f32, b: f32) -> f32 {
    let s = a.abs() + b.abs();
    let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
    let (ra, rb) = (a * inv, b * inv);
    let upper = if a >= 0.0 { rb } else { 1.0 - ra };
    let lower = if a < 0.0 { 2.0 - rb } else { 3.0 + ra };
    if b >= 0.0 {
        upper
    } else {
        lower
    }
}

/// The unit vector of a diamond angle (`diamond_angle`'s inverse, up to the length).
fn diamond_direction(d: f32) -> (f32, f32) {
    let q = d.floor().clamp(0.0, 3.0);
    let t = d - q;
    let (a, b) = match q as u32 {
        0 => (1.0 - t, t),
        1 => (-t, 1.0 - t),
        2 => (-(1.0 - t), -t),
        _ => (t, -(1.0 - t)),
    };
    let n = (a * a + b * b).sqrt();
    (a / n, b / n)
}

/// Steps of the scan down from `CHROMA_SEARCH` that brackets the boundary chroma.
const SCAN: f32 = 2.0;

/// The largest chroma up to `top` inside the gamut at `l` (0..100, where gray is inside) along
/// each unit direction `(ua[i], ub[i])`, into `out`: scanned down from `top` in steps of 2, then
/// bisected to 1e-4, all directions at once (a loop over them per step, which vectorises). The
/// largest, not the first one met going out from gray: near the yellow cusp the colours inside
/// along a ray are two stretches (red rises above 1 and comes back), and the outer one holds the
/// vivid yellows. The table is built with it from beyond every sRGB colour (`CHROMA_SEARCH`);
/// `LabToRgb8::map_outside` places the few colours its table cannot with it, from their own
/// chroma.
pub(super) fn outer_chroma(l: f32, top: f32, ua: &[f32], ub: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { outer_chroma_avx2(l, top, ua, ub, out) };
        return;
    }
    outer_chroma_with(l, top, ua, ub, out);
}

/// `outer_chroma` compiled for AVX2 (the same code: 8 lanes instead of 4).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn outer_chroma_avx2(l: f32, top: f32, ua: &[f32], ub: &[f32], out: &mut [f32]) {
    outer_chroma_with(l, top, ua, ub, out);
}

#[inline(always)]
fn outer_chroma_with(l: f32, top: f32, ua: &[f32], ub: &[f32], out: &mut [f32]) {
    let m = *M_INV;
    let inside = |a: f32, b: f32| inside_gamut(&lab_linear(&m, l, a, b));
    let mut found = vec![false; out.len()];
    out.fill(0.0);
    let steps = (top / SCAN) as usize;
    for s in 0..=steps {
        let c = top - s as f32 * SCAN;
        for i in 0..out.len() {
            let hit = !found[i] & inside(ua[i] * c, ub[i] * c);
            out[i] = if hit { c } else { out[i] };
            found[i] |= hit;
        }
    }
    let mut hi: Vec<f32> = out.iter().map(|c| c + SCAN).collect();
    for _ in 0..15 {
        for i in 0..out.len() {
            let mid = 0.5 * (out[i] + hi[i]);
            let ok = inside(ua[i] * mid, ub[i] * mid);
            out[i] = if ok { mid } else { out[i] };
            hi[i] = if ok { hi[i] } else { mid };
        }
    }
}

impl GamutBoundary {
    fn build() -> Self {
        let cols = HUE_STEPS + 1;
        let mut chroma = vec![0.0f32; (L_STEPS + 1) * cols];
        let (ua, ub): (Vec<f32>, Vec<f32>) =
            (0..cols).map(|hi| diamond_direction((hi % HUE_STEPS) as f32 * (4.0 / HUE_STEPS as f32))).unzip();
        chroma.par_chunks_mut(cols).enumerate().for_each(|(li, row)| {
            outer_chroma(li as f32 * (100.0 / L_STEPS as f32), CHROMA_SEARCH, &ua, &ub, row);
        });
        Self { chroma: chroma.into_boxed_slice() }
    }

    /// The boundary chroma at `l` (clamped to 0..100) and hue `(a, b)`, interpolated bilinearly.
    /// Branch-free (NaN reads the first cell), so that loops over pixels vectorise.
    #[inline(always)]
    pub(super) fn chroma(&self, l: f32, a: f32, b: f32) -> f32 {
        // `max` first: NaN becomes 0.
        #[allow(clippy::manual_clamp)]
        let lf = l.max(0.0).min(100.0) * (L_STEPS as f32 / 100.0);
        #[allow(clippy::manual_clamp)]
        let hf = diamond_angle(a, b).max(0.0).min(4.0) * (HUE_STEPS as f32 / 4.0);
        let (l0, h0) = (lf.min((L_STEPS - 1) as f32).floor(), hf.min((HUE_STEPS - 1) as f32).floor());
        let (lt, ht) = (lf - l0, hf - h0);
        // SAFETY: l0 and h0 are whole numbers in 0..L_STEPS and 0..HUE_STEPS (clamped above).
        let (li, hi) = unsafe { (l0.to_int_unchecked::<u32>() as usize, h0.to_int_unchecked::<u32>() as usize) };
        let cols = HUE_STEPS + 1;
        let at = |i: usize| -> f32 {
            debug_assert!(i < self.chroma.len());
            // SAFETY: the largest index is (L_STEPS) * cols + HUE_STEPS, the table's last cell.
            unsafe { *self.chroma.get_unchecked(i) }
        };
        let (i0, i1) = (li * cols + hi, (li + 1) * cols + hi);
        let top = at(i0) + (at(i0 + 1) - at(i0)) * ht;
        let bottom = at(i1) + (at(i1 + 1) - at(i1)) * ht;
        top + (bottom - top) * lt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond_angle_is_monotone_and_inverted_by_its_direction() {
        let mut last = -1.0f32;
        for i in 0..3600 {
            let t = (i as f32 / 3600.0) * std::f32::consts::TAU;
            let (a, b) = (t.cos() * 37.0, t.sin() * 37.0);
            let d = diamond_angle(a, b);
            assert!((0.0..4.0).contains(&d), "{d}");
            assert!(d > last || i == 0, "not increasing at {t}: {d} after {last}");
            last = d;
            let (ua, ub) = diamond_direction(d);
            assert!((ua - t.cos()).abs() < 1e-5 && (ub - t.sin()).abs() < 1e-5, "{t}: {ua}, {ub}");
        }
        assert_eq!(diamond_angle(0.0, 0.0), 0.0);
    }

    #[test]
    fn table_chroma_is_near_the_boundary() {
        let t = &*BOUNDARY;
        let mut seed = 0x9e37_79b9_u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32
        };
        let mut errors = Vec::new();
        for _ in 0..20_000 {
            let (l, h) = (rnd() * 100.0, rnd() * std::f32::consts::TAU);
            let (ua, ub) = (h.cos(), h.sin());
            let mut exact = [0.0f32];
            outer_chroma(l, CHROMA_SEARCH, &[ua], &[ub], &mut exact);
            errors.push((t.chroma(l, ua * 50.0, ub * 50.0) - exact[0]).abs());
        }
        errors.sort_by(f32::total_cmp);
        let q = |p: f64| errors[((errors.len() - 1) as f64 * p) as usize];
        eprintln!("table chroma error: median {:.4}, 99% {:.4}, max {:.4}", q(0.5), q(0.99), q(1.0));
        // Off by more only at the cusps (yellow near L 97, blue near L 32), where the boundary
        // peaks between two rows: `LabToRgb8::map_outside`'s Newton step corrects those.
        assert!(q(0.99) < 0.1 && q(1.0) < 10.0, "median {} 99% {} max {}", q(0.5), q(0.99), q(1.0));
    }
}

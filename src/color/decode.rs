//! Decoding a per-pixel distribution over the 313 ab bins into one ab value.

use super::{NUM_BINS, PTS_IN_HULL};

/// Planar a and b channels of size `height` x `width`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct AbPlanes {
    pub width: usize,
    pub height: usize,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
}

/// Annealed mean of Zhang et al.: `ab = sum_q softmax(z / T)_q * centre_q` for every pixel.
///
/// `logits` is one image's `[313, height, width]` output, C order. The softmax is computed with
/// the per-pixel maximum subtracted, so it is stable for any logits and any `T > 0`; as `T -> 0`
/// it becomes the mode (the centre of the arg-max bin, ties averaged), at `T = 1` the mean.
pub fn annealed_mean(logits: &[f32], height: usize, width: usize, temperature: f32) -> AbPlanes {
    let hw = height * width;
    assert_eq!(logits.len(), NUM_BINS * hw, "logits must be [313, {height}, {width}]");
    assert!(temperature > 0.0 && temperature.is_finite(), "temperature must be > 0");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above).
        return unsafe { annealed_mean_avx512(logits, height, width, temperature) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { annealed_mean_avx2(logits, height, width, temperature) };
    }
    annealed_mean_with(logits, height, width, temperature)
}

/// `annealed_mean` compiled for AVX-512 (the same code and results: 16 lanes).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn annealed_mean_avx512(logits: &[f32], height: usize, width: usize, temperature: f32) -> AbPlanes {
    annealed_mean_with(logits, height, width, temperature)
}

/// `annealed_mean` compiled for AVX2 (the same code and results: 8 lanes instead of 4).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn annealed_mean_avx2(logits: &[f32], height: usize, width: usize, temperature: f32) -> AbPlanes {
    annealed_mean_with(logits, height, width, temperature)
}

/// Pixels whose sums a bin joins or skips together (two AVX2 registers of f32; smaller blocks
/// skip more bins but no longer vectorise, larger ones skip fewer).
const BLOCK: usize = 16;

/// Scaled logits below this (weights under e^-20 = 2e-9 of the arg-max bin's) are left out of the
/// sums: all 312 other bins together would move a or b by under 1e-4, far below the 1/255 of
/// an output code.
const SKIP_BELOW: f32 = -20.0;

#[inline(always)]
fn annealed_mean_with(logits: &[f32], height: usize, width: usize, temperature: f32) -> AbPlanes {
    let hw = height * width;
    let inv_t = 1.0 / temperature;

    let mut max = logits[..hw].to_vec();
    for plane in logits.chunks_exact(hw).skip(1) {
        for (m, &z) in max.iter_mut().zip(plane) {
            *m = m.max(z);
        }
    }
    let mut sum = vec![0.0f32; hw];
    let mut a = vec![0.0f32; hw];
    let mut b = vec![0.0f32; hw];
    let tail = hw - hw % BLOCK;
    for (plane, centre) in logits.chunks_exact(hw).zip(PTS_IN_HULL.iter()) {
        let (ca, cb) = (centre[0], centre[1]);
        // BLOCK pixels at a time: a bin whose weight is below e^SKIP_BELOW in all of them adds
        // nothing and is skipped (about half the bins of a 16-pixel block of a photo: the
        // distributions are peaked).
        for start in (0..tail).step_by(BLOCK) {
            let (p, m) = (&plane[start..start + BLOCK], &max[start..start + BLOCK]);
            if !p.iter().zip(m).fold(false, |alive, (&z, &top)| alive | ((z - top) * inv_t >= SKIP_BELOW)) {
                continue;
            }
            let (s, a, b) = (&mut sum[start..start + BLOCK], &mut a[start..start + BLOCK], &mut b[start..start + BLOCK]);
            for k in 0..BLOCK {
                let e = exp_nonpositive((p[k] - m[k]) * inv_t);
                s[k] += e;
                a[k] += e * ca;
                b[k] += e * cb;
            }
        }
        for i in tail..hw {
            let e = exp_nonpositive((plane[i] - max[i]) * inv_t);
            sum[i] += e;
            a[i] += e * ca;
            b[i] += e * cb;
        }
    }
    for i in 0..hw {
        // sum >= 1: the arg-max bin contributes exp(0).
        let s = 1.0 / sum[i];
        a[i] *= s;
        b[i] *= s;
    }
    AbPlanes { width, height, a, b }
}

/// `e^x` for the shifted, scaled logits (`x <= 0`; larger values are not expected), in plain
/// arithmetic that the compiler vectorises, where `f32::exp` is a libm call per value: Cody-Waite
/// range reduction and the degree-6 polynomial of Cephes' `expf` (relative error about 2e-7, the
/// same as libm's to within an ulp or two). Below -87 the weight is taken as e^-87 (1.6e-38):
/// next to the arg-max bin's weight of 1 it is nothing.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting it rounds to an integer
    let x = x.clamp(-87.0, 0.0);
    let v = x * std::f32::consts::LOG2_E + ROUND;
    let n = v - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from the bits of v (its low mantissa bits hold n): integer lanes, no float-to-int cast.
    let two_n = f32::from_bits(v.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    e * two_n
}

/// Logits shaped like a trained model's (a `[313, height, width]` output): each pixel's
/// distribution peaks at an ab point that drifts across the image and falls off with distance.
#[cfg(test)]
pub(crate) fn peaked_logits(height: usize, width: usize) -> Vec<f32> {
    let hw = height * width;
    let mut z = vec![0.0; NUM_BINS * hw];
    for p in 0..hw {
        let (y, x) = ((p / width) as f32 / height as f32, (p % width) as f32 / width as f32);
        let mode = [60.0 * x - 30.0, 80.0 * y - 20.0];
        for (q, c) in PTS_IN_HULL.iter().enumerate() {
            z[q * hw + p] = 4.0 - ((c[0] - mode[0]).powi(2) + (c[1] - mode[1]).powi(2)).sqrt() / 8.0;
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The annealed mean in f64 with libm's exp and every bin.
    fn reference(logits: &[f32], hw: usize, t: f64) -> Vec<[f64; 2]> {
        (0..hw)
            .map(|p| {
                let m = (0..NUM_BINS).map(|q| logits[q * hw + p] as f64).fold(f64::NEG_INFINITY, f64::max);
                let (mut s, mut a, mut b) = (0.0, 0.0, 0.0);
                for (q, c) in PTS_IN_HULL.iter().enumerate() {
                    let e = ((logits[q * hw + p] as f64 - m) / t).exp();
                    s += e;
                    a += e * c[0] as f64;
                    b += e * c[1] as f64;
                }
                [a / s, b / s]
            })
            .collect()
    }

    #[test]
    fn skipping_negligible_bins_matches_the_full_sum() {
        // 7 x 13: five 16-pixel blocks and a remainder of eleven.
        for (h, w) in [(7, 13), (40, 40)] {
            let z = peaked_logits(h, w);
            for t in [0.38f32, 1.0] {
                let ab = annealed_mean(&z, h, w, t);
                let want = reference(&z, h * w, t as f64);
                let worst = want
                    .iter()
                    .enumerate()
                    .map(|(p, r)| ((ab.a[p] as f64 - r[0]).abs()).max((ab.b[p] as f64 - r[1]).abs()))
                    .fold(0.0, f64::max);
                assert!(worst < 1e-3, "{h}x{w} T {t}: worst ab difference {worst}");
            }
        }
    }

    fn one_hot(bin: usize, hw: usize, strength: f32) -> Vec<f32> {
        let mut z = vec![0.0; NUM_BINS * hw];
        for p in 0..hw {
            z[bin * hw + p] = strength;
        }
        z
    }

    #[test]
    fn one_hot_distribution_decodes_to_its_bin_centre() {
        for bin in [0, 120, 200, 312] {
            let z = one_hot(bin, 4, 1000.0);
            for t in [0.38, 1.0] {
                let ab = annealed_mean(&z, 2, 2, t);
                for p in 0..4 {
                    assert!((ab.a[p] - PTS_IN_HULL[bin][0]).abs() < 1e-3);
                    assert!((ab.b[p] - PTS_IN_HULL[bin][1]).abs() < 1e-3);
                }
            }
        }
    }

    #[test]
    fn small_temperature_gives_the_mode_and_one_gives_the_mean() {
        // Two bins with close logits: T -> 0 picks the larger, T = 1 mixes them by softmax.
        let hw = 1;
        let mut z = vec![-50.0; NUM_BINS * hw];
        z[10] = 2.0;
        z[300] = 1.5;
        let mode = annealed_mean(&z, 1, 1, 1e-4);
        assert!((mode.a[0] - PTS_IN_HULL[10][0]).abs() < 1e-3 && (mode.b[0] - PTS_IN_HULL[10][1]).abs() < 1e-3);
        let mean = annealed_mean(&z, 1, 1, 1.0);
        let (w10, w300) = (2.0f32.exp(), 1.5f32.exp());
        let want_a = (w10 * PTS_IN_HULL[10][0] + w300 * PTS_IN_HULL[300][0]) / (w10 + w300);
        assert!((mean.a[0] - want_a).abs() < 1e-2, "{} vs {want_a}", mean.a[0]);
    }

    #[test]
    fn uniform_logits_decode_to_the_mean_of_all_centres() {
        // data/zhang/README.md: the plain mean of all 313 centres is (15.7, 6.7).
        let z = vec![3.0; NUM_BINS];
        let ab = annealed_mean(&z, 1, 1, 0.38);
        assert!((ab.a[0] - 15.7).abs() < 0.05 && (ab.b[0] - 6.7).abs() < 0.05, "{:?}", ab);
    }

    #[test]
    fn fast_exp_matches_libm() {
        let mut worst = 0.0f32;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (exp_nonpositive(x), x.exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 1e-6, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e30) < 1e-37 && exp_nonpositive(f32::NEG_INFINITY) >= 0.0);
    }

    #[test]
    fn huge_logits_stay_finite() {
        let mut z = vec![0.0; NUM_BINS];
        z[5] = 1e30;
        z[6] = -1e30;
        let ab = annealed_mean(&z, 1, 1, 0.01);
        assert!(ab.a[0].is_finite() && ab.b[0].is_finite());
        assert_eq!([ab.a[0], ab.b[0]], PTS_IN_HULL[5]);
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// `cargo test --release --lib annealed_speed -- --ignored --nocapture`: the annealed mean of
    /// a 32x32 output (a 128-px model input, a 256-px photo), one thread.
    #[test]
    #[ignore]
    fn annealed_speed() {
        let logits = peaked_logits(32, 32);
        for (name, f) in [("dispatched", annealed_mean as fn(&[f32], usize, usize, f32) -> AbPlanes), ("baseline", annealed_mean_with)] {
            let t = std::time::Instant::now();
            let n = 200;
            for _ in 0..n {
                std::hint::black_box(f(std::hint::black_box(&logits), 32, 32, 0.38));
            }
            println!("annealed_mean {name}: {:.3} ms per 32x32 output", t.elapsed().as_secs_f64() * 1e3 / n as f64);
        }
    }
}

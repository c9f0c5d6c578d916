//! sRGB (D65) <-> CIE LAB, with the constants and branch points of scikit-image's `rgb2lab` /
//! `lab2rgb` (sRGB, D65; the formula and check values are in training/lab.py and its tests).

use std::sync::LazyLock;

/// sRGB -> XYZ matrix of scikit-image (`xyz_from_rgb`).
pub(super) const M: [[f32; 3]; 3] = [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]];
/// D65 white point, 2 degree observer.
pub(super) const WHITE: [f32; 3] = [0.95047, 1.0, 1.08883];

/// XYZ -> sRGB: the inverse of `M` (computed in f64 by `inverse_m`, as scikit-image uses
/// `linalg.inv(xyz_from_rgb)`).
pub(super) static M_INV: LazyLock<[[f32; 3]; 3]> = LazyLock::new(inverse_m);

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
pub(super) fn f_lab_inv(t: f32) -> f32 {
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

/// L (0..100) of each gray sRGB value (r = g = b = v): `srgb_to_l([v; 3])` for every v.
pub fn gray_l_table() -> &'static [f32; 256] {
    &GRAY_L_LUT
}

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
}

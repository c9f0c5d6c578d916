//! User colour hints (user-guided colorization, Zhang et al. 2017): points of the input image
//! with the colour the user wants there. They travel as JSON
//! `[{"x": 120, "y": 48, "color": "#b03a2e", "radius": 4}, ...]` (the `hints` part of
//! `POST /colorize`, the CLI's `--hints FILE`), are checked here once, and become the model's
//! hint map: `[3, H, W]` at the model's input size, a and b of each hinted pixel (raw Lab units)
//! and a mask of 1 there, 0 everywhere else. Only models with a hint input take them.

use crate::color::srgb8_to_lab;

/// Most hints one request may carry.
pub const MAX_HINTS: usize = 64;
/// Largest hints document in bytes.
pub const MAX_HINTS_BYTES: usize = 16 * 1024;
/// Largest half-width, in model pixels, of the square a hint paints (the models were trained
/// with squares of side 1, 3 and 5 at 128 px).
pub const MAX_PATCH_HALF_WIDTH: i64 = 2;
/// Half-width of a hint without `radius`: a 3x3 square of model pixels around the point.
pub const DEFAULT_PATCH_HALF_WIDTH: i64 = 1;

/// One colour hint as clients send it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hint {
    /// Column in the input image's pixels (after EXIF orientation), 0 <= x < width.
    #[schema(example = 120)]
    pub x: f64,
    /// Row in the input image's pixels (after EXIF orientation), 0 <= y < height.
    #[schema(example = 48)]
    pub y: f64,
    /// The colour wanted there, `#rrggbb` or `#rgb` (sRGB). Only its chroma is used: the
    /// lightness stays the photo's own.
    #[schema(example = "#b03a2e")]
    pub color: String,
    /// Radius of the hinted area in input pixels, rounded to model pixels (default: a 3x3 square
    /// of model pixels, about 2% of the short side at 128 px). At most a 5x5 square is painted.
    #[schema(example = 4)]
    pub radius: Option<f64>,
}

/// A checked hint: position in input pixels, colour as Lab ab.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourHint {
    pub x: f64,
    pub y: f64,
    pub ab: [f32; 2],
    pub radius: Option<f64>,
}

/// Parses and checks a hints document (everything that does not need the image).
pub fn parse(json: &[u8]) -> Result<Vec<ColourHint>, String> {
    if json.len() > MAX_HINTS_BYTES {
        return Err(format!("hints: the document is {} bytes; the limit is {MAX_HINTS_BYTES}", json.len()));
    }
    let hints: Vec<Hint> = serde_json::from_slice(json)
        .map_err(|e| format!("hints must be a JSON array of {{\"x\", \"y\", \"color\"[, \"radius\"]}} objects: {e}"))?;
    if hints.len() > MAX_HINTS {
        return Err(format!("hints: {} given; at most {MAX_HINTS} are allowed", hints.len()));
    }
    hints.iter().enumerate().map(|(i, h)| check(i, h)).collect()
}

fn check(i: usize, h: &Hint) -> Result<ColourHint, String> {
    if !h.x.is_finite() || !h.y.is_finite() {
        return Err(format!("hint {i}: x and y must be finite numbers"));
    }
    let rgb = parse_colour(&h.color).ok_or_else(|| format!("hint {i}: color must be #rrggbb or #rgb, got {:?}", h.color))?;
    if let Some(r) = h.radius {
        if !r.is_finite() || r < 0.0 {
            return Err(format!("hint {i}: radius must be a number >= 0, got {r}"));
        }
    }
    let lab = srgb8_to_lab(rgb);
    Ok(ColourHint { x: h.x, y: h.y, ab: [lab[1], lab[2]], radius: h.radius })
}

/// `#rrggbb` or `#rgb` (hex digits in either case).
pub fn parse_colour(s: &str) -> Option<[u8; 3]> {
    let hex = s.trim().strip_prefix('#')?;
    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |i: usize, n: usize| u8::from_str_radix(&hex[i..i + n], 16).ok();
    match hex.len() {
        6 => Some([digit(0, 2)?, digit(2, 2)?, digit(4, 2)?]),
        3 => Some([digit(0, 1)? * 17, digit(1, 1)? * 17, digit(2, 1)? * 17]),
        _ => None,
    }
}

/// The `[3, model_height, model_width]` hint map of hints on an image of `width` x `height`
/// (after EXIF orientation). Each hint paints a square of its ab around the model pixel under
/// it; a later hint wins where squares overlap. Refuses hints outside the image.
pub fn hint_map(hints: &[ColourHint], width: u32, height: u32, model_width: u32, model_height: u32) -> Result<Vec<f32>, String> {
    let (mw, mh) = (model_width as usize, model_height as usize);
    let (sx, sy) = (model_width as f64 / width as f64, model_height as f64 / height as f64);
    let mut map = vec![0.0f32; 3 * mw * mh];
    for (i, h) in hints.iter().enumerate() {
        if h.x < 0.0 || h.y < 0.0 || h.x >= width as f64 || h.y >= height as f64 {
            return Err(format!(
                "hint {i} at ({}, {}) is outside the {width}x{height} image (0 <= x < {width}, 0 <= y < {height}, after EXIF orientation)",
                h.x, h.y
            ));
        }
        let k = match h.radius {
            Some(r) => ((r * sx.min(sy)).round() as i64).clamp(0, MAX_PATCH_HALF_WIDTH),
            None => DEFAULT_PATCH_HALF_WIDTH,
        };
        let cx = ((h.x * sx) as i64).min(mw as i64 - 1);
        let cy = ((h.y * sy) as i64).min(mh as i64 - 1);
        for y in (cy - k).max(0)..=(cy + k).min(mh as i64 - 1) {
            for x in (cx - k).max(0)..=(cx + k).min(mw as i64 - 1) {
                let at = y as usize * mw + x as usize;
                map[at] = h.ab[0];
                map[mw * mh + at] = h.ab[1];
                map[2 * mw * mh + at] = 1.0;
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_in_both_forms_and_nothing_else() {
        assert_eq!(parse_colour("#b03a2e"), Some([0xb0, 0x3a, 0x2e]));
        assert_eq!(parse_colour("#B03A2E"), Some([0xb0, 0x3a, 0x2e]));
        assert_eq!(parse_colour("#f80"), Some([0xff, 0x88, 0x00]));
        for bad in ["b03a2e", "#b03a2", "#b03a2e0", "#gg0000", "red", "", "#", "#+1+2+3"] {
            assert_eq!(parse_colour(bad), None, "{bad}");
        }
    }

    #[test]
    fn documents_are_checked() {
        let ok = parse(br##"[{"x": 1, "y": 2.5, "color": "#ff0000"}, {"x": 0, "y": 0, "color": "#00f", "radius": 3}]"##).unwrap();
        assert_eq!(ok.len(), 2);
        // Pure sRGB red: L 53.24, a 80.09, b 67.20 (CIE D65).
        assert!((ok[0].ab[0] - 80.09).abs() < 0.05 && (ok[0].ab[1] - 67.20).abs() < 0.05, "{:?}", ok[0].ab);
        assert!(parse(b"[]").unwrap().is_empty());
        for (bad, says) in [
            (&br#"{"x": 1}"#[..], "JSON array"),
            (br#"[{"x": 1, "y": 2}]"#, "JSON array"),
            (br##"[{"x": 1, "y": 2, "color": "#ff0000", "size": 3}]"##, "JSON array"),
            (br#"[{"x": 1, "y": 2, "color": "red"}]"#, "hint 0: color"),
            (br##"[{"x": 1, "y": 2, "color": "#ff0000", "radius": -1}]"##, "radius"),
            (b"not json", "JSON array"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{}: {e}", String::from_utf8_lossy(bad));
        }
        let many = format!("[{}]", vec![r##"{"x":1,"y":1,"color":"#fff"}"##; MAX_HINTS + 1].join(","));
        assert!(parse(many.as_bytes()).unwrap_err().contains("at most"));
    }

    #[test]
    fn hints_land_at_their_scaled_place() {
        let h = ColourHint { x: 399.0, y: 100.0, ab: [40.0, -30.0], radius: None };
        // 400x200 image, model input 64x32: (399, 100) -> model (63, 16), a 3x3 square clipped at the right edge.
        let map = hint_map(&[h], 400, 200, 64, 32).unwrap();
        let (mw, mh) = (64usize, 32usize);
        let mask: Vec<(usize, usize)> = (0..mw * mh).filter(|&i| map[2 * mw * mh + i] == 1.0).map(|i| (i % mw, i / mw)).collect();
        assert_eq!(mask, vec![(62, 15), (63, 15), (62, 16), (63, 16), (62, 17), (63, 17)]);
        assert_eq!((map[16 * mw + 63], map[mw * mh + 16 * mw + 63]), (40.0, -30.0));
        assert_eq!(map.iter().filter(|v| **v != 0.0).count(), 18);
        // A radius of 0 paints one model pixel; a huge one at most 5x5.
        let one = hint_map(&[ColourHint { radius: Some(0.0), ..h }], 400, 200, 64, 32).unwrap();
        assert_eq!(one[2 * mw * mh..].iter().filter(|v| **v == 1.0).count(), 1);
        let big = hint_map(&[ColourHint { x: 200.0, radius: Some(1e6), ..h }], 400, 200, 64, 32).unwrap();
        assert_eq!(big[2 * mw * mh..].iter().filter(|v| **v == 1.0).count(), 25);
        for (x, y) in [(400.0, 10.0), (-0.5, 10.0), (10.0, 200.0)] {
            let e = hint_map(&[ColourHint { x, y, ..h }], 400, 200, 64, 32).unwrap_err();
            assert!(e.contains("outside the 400x200 image"), "{e}");
        }
    }
}

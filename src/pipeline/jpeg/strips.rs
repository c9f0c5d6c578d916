//! A large JPEG encoded in horizontal strips on rayon's threads and spliced into one baseline
//! JPEG with restart markers: each strip is a whole number of MCU rows, encoded on its own with
//! the same quality, subsampling and (standard) tables; a restart marker resets the DC
//! predictions as the start of a strip's own encoding did, and both end their entropy-coded data
//! padded to a byte. So the file decodes to exactly the pixels of the one-piece encoding; it is a
//! few bytes longer (one DRI segment, one RST marker per strip).

use rayon::prelude::*;

/// Rows of an MCU with 4:2:0 chroma.
const MCU_ROWS: usize = 16;
/// Pixels below which an image is encoded in one piece (a strip per thread would cost more in
/// wake-ups than it saves).
const MIN_STRIP_PIXELS: usize = 1 << 20;

/// Rows per strip for an image of `w` x `h` (a multiple of 16), or None when one piece is better.
fn strip_rows(w: usize, h: usize) -> Option<usize> {
    let threads = rayon::current_num_threads();
    if threads < 2 || w * h < 2 * MIN_STRIP_PIXELS {
        return None;
    }
    // Two strips a thread, so that a thread that finishes early takes another.
    let strips = (2 * threads).min(w * h / MIN_STRIP_PIXELS);
    let mcu_rows = h.div_ceil(MCU_ROWS).div_ceil(strips);
    // The restart interval (MCUs) is a 16-bit field.
    let max_mcu_rows = 65_535 / w.div_ceil(MCU_ROWS);
    let mcu_rows = mcu_rows.min(max_mcu_rows);
    (mcu_rows > 0 && mcu_rows * MCU_ROWS < h).then_some(mcu_rows * MCU_ROWS)
}

/// Encodes `pixels` in strips with `encode_piece` (pixels, height) and splices them; None when
/// the image is small, or when the pieces do not splice (tables that differ), so that the caller
/// encodes it in one piece.
pub(super) fn encode<E: Send>(
    pixels: &[u8],
    w: usize,
    h: usize,
    channels: usize,
    encode_piece: impl Fn(&[u8], usize) -> Result<Vec<u8>, E> + Sync,
) -> Option<Result<Vec<u8>, E>> {
    let rows = strip_rows(w, h)?;
    let pieces: Result<Vec<Vec<u8>>, E> =
        pixels.par_chunks(rows * w * channels).map(|p| encode_piece(p, p.len() / (w * channels))).collect();
    match pieces {
        Err(e) => Some(Err(e)),
        Ok(pieces) => splice(&pieces, w, h, rows).map(Ok),
    }
}

/// Where a piece's parts lie: the headers before the scan, the frame header's height field, the
/// scan header, and the entropy-coded data up to the end-of-image marker.
struct Piece<'a> {
    headers: &'a [u8],
    height_at: usize,
    scan_header: &'a [u8],
    data: &'a [u8],
}

fn parse(b: &[u8]) -> Option<Piece<'_>> {
    if b.len() < 4 || b[..2] != [0xFF, 0xD8] || b[b.len() - 2..] != [0xFF, 0xD9] {
        return None;
    }
    let mut i = 2;
    let mut height_at = None;
    loop {
        if i + 4 > b.len() || b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let end = i + 2 + len;
        if len < 2 || end > b.len() {
            return None;
        }
        match marker {
            // Baseline frame header: length, precision, then the height.
            0xC0 => height_at = Some(i + 5),
            // Anything but baseline, or a restart interval of its own, is not spliced.
            0xC1..=0xCF | 0xDD if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => return None,
            0xDA => {
                return Some(Piece { headers: &b[..i], height_at: height_at?, scan_header: &b[i..end], data: &b[end..b.len() - 2] });
            }
            _ => {}
        }
        i = end;
    }
}

/// One JPEG from the pieces: the first piece's headers with the full height and a restart
/// interval of one strip, then each strip's data followed by the next restart marker.
fn splice(pieces: &[Vec<u8>], w: usize, h: usize, rows: usize) -> Option<Vec<u8>> {
    let parsed: Vec<Piece> = pieces.iter().map(|p| parse(p)).collect::<Option<_>>()?;
    let first = &parsed[0];
    // Every piece must carry the same headers but for its height.
    let masked = |p: &Piece| -> Vec<u8> {
        let mut v = p.headers.to_vec();
        v[p.height_at..p.height_at + 2].fill(0);
        v
    };
    let want = masked(first);
    if parsed.iter().any(|p| masked(p) != want || p.scan_header != first.scan_header) {
        return None;
    }
    let height = u16::try_from(h).ok()?;
    let interval = u16::try_from(w.div_ceil(MCU_ROWS) * (rows / MCU_ROWS)).ok()?;
    let size = first.headers.len() + 6 + first.scan_header.len() + parsed.iter().map(|p| p.data.len() + 2).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(first.headers);
    out[first.height_at..first.height_at + 2].copy_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04]);
    out.extend_from_slice(&interval.to_be_bytes());
    out.extend_from_slice(first.scan_header);
    for (k, p) in parsed.iter().enumerate() {
        out.extend_from_slice(p.data);
        let marker = if k + 1 == parsed.len() { 0xD9 } else { 0xD0 + (k % 8) as u8 };
        out.extend_from_slice(&[0xFF, marker]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_are_whole_mcu_rows_within_the_restart_field() {
        assert_eq!(strip_rows(256, 256), None);
        if rayon::current_num_threads() >= 2 {
            let rows = strip_rows(4000, 3000).unwrap();
            assert_eq!(rows % MCU_ROWS, 0);
            assert!(rows < 3000);
            let rows = strip_rows(32_768, 1500).unwrap();
            assert!(32_768 / MCU_ROWS * (rows / MCU_ROWS) <= 65_535, "{rows}");
        }
    }

    #[test]
    fn pieces_that_do_not_parse_are_not_spliced() {
        assert!(parse(b"not a jpeg").is_none());
        assert!(splice(&[vec![0xFF, 0xD8, 0xFF, 0xD9]], 16, 16, 16).is_none());
    }
}

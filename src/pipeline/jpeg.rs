//! JPEG at libjpeg-turbo speed: one walk over the file's markers (frame header, EXIF orientation,
//! and whether the data ends with its end-of-image marker), decoding and encoding with the
//! TurboJPEG API of libjpeg-turbo (the `turbojpeg` crate builds its bundled C and SIMD sources).

mod strips;

use std::cell::RefCell;

use image::metadata::Orientation;
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, Subsamp};

/// The frame header (SOFn) of a JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The SOF marker's code: 0xC0 baseline, 0xC1 extended, 0xC2 progressive, others (lossless,
    /// arithmetic) are left to the image crate's decoder.
    pub marker: u8,
    pub precision: u8,
    pub width: u32,
    pub height: u32,
    pub components: u8,
}

/// What one walk over a JPEG's markers finds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// An end-of-image marker follows the last scan.
    pub complete: bool,
    /// The first frame header.
    pub frame: Option<Frame>,
    /// The orientation of the last EXIF segment (as the image crate's JPEG decoder reads it).
    pub orientation: Option<Orientation>,
}

/// Walks a JPEG's markers once: segments are followed by their lengths (APPn, such as an EXIF
/// thumbnail with its own markers, are skipped whole); inside a scan's entropy-coded data, 0xFF is
/// followed only by a stuffed zero, a restart marker or fill, so the first other marker ends the
/// scan. Bytes after the end-of-image marker are allowed (some cameras append data).
pub fn scan(b: &[u8]) -> Scan {
    let mut found = Scan::default();
    let n = b.len();
    if n < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return found;
    }
    let mut i = 2;
    loop {
        // The next marker: 0xFF, any fill 0xFF, then its code.
        match memchr::memchr(0xFF, &b[i..]) {
            Some(p) => i += p,
            None => return found,
        }
        while i < n && b[i] == 0xFF {
            i += 1;
        }
        if i >= n {
            return found;
        }
        let code = b[i];
        i += 1;
        match code {
            0xD9 => {
                found.complete = true;
                return found;
            }
            // Standalone markers (and a stray stuffed zero), no length.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        if i + 2 > n {
            return found;
        }
        let len = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
        if len < 2 || i + len > n {
            return found;
        }
        let segment = &b[i + 2..i + len];
        match code {
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(code, 0xC4 | 0xC8 | 0xCC) && found.frame.is_none() && segment.len() >= 6 => {
                found.frame = Some(Frame {
                    marker: code,
                    precision: segment[0],
                    height: u16::from_be_bytes([segment[1], segment[2]]) as u32,
                    width: u16::from_be_bytes([segment[3], segment[4]]) as u32,
                    components: segment[5],
                });
            }
            0xE1 if segment.len() > 6 && &segment[..6] == b"Exif\0\0" => found.orientation = Orientation::from_exif_chunk(&segment[6..]),
            _ => {}
        }
        i += len;
        if code == 0xDA {
            // Entropy-coded data up to the next real marker.
            loop {
                match memchr::memchr(0xFF, &b[i..]) {
                    Some(p) => i += p,
                    None => return found,
                }
                if i + 1 >= n {
                    return found;
                }
                match b[i + 1] {
                    0x00 | 0xD0..=0xD7 => i += 2,
                    0xFF => i += 1,
                    _ => break,
                }
            }
        }
    }
}

impl Frame {
    /// Whether libjpeg-turbo decodes this frame here: 8-bit Huffman-coded (baseline, extended or
    /// progressive), gray or three components (YCbCr, or RGB with an Adobe marker). Others (CMYK,
    /// 12-bit, lossless, arithmetic) go through the image crate as before.
    pub fn fast(&self) -> bool {
        matches!(self.marker, 0xC0..=0xC2) && self.precision == 8 && matches!(self.components, 1 | 3) && self.width > 0 && self.height > 0
    }

    /// Bytes the decoder allocates: the output pixels, and for progressive JPEGs the whole
    /// image's DCT coefficients (2 bytes a sample, every component at full size at most).
    pub fn decode_bytes(&self) -> u64 {
        let samples = self.width as u64 * self.height as u64 * self.components as u64;
        samples + if self.marker == 0xC2 { 2 * samples } else { 0 }
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// Decodes a JPEG whose frame is `fast()`: gray as one byte per pixel, colour as RGB (what
/// libjpeg-turbo's SIMD colour conversion gives). Returns the pixels and the channel count.
pub fn decode(bytes: &[u8], frame: &Frame) -> Result<(Vec<u8>, usize), turbojpeg::Error> {
    let (format, channels) = if frame.components == 1 { (PixelFormat::GRAY, 1) } else { (PixelFormat::RGB, 3) };
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut pixels = vec![0u8; w * h * channels];
    DECOMPRESSOR.with_borrow_mut(|d| {
        let d = match d {
            Some(d) => d,
            None => d.insert(Decompressor::new()?),
        };
        d.decompress(bytes, Image { pixels: &mut pixels[..], width: w, pitch: w * channels, height: h, format })
    })?;
    Ok((pixels, channels))
}

/// Encodes 8-bit RGB (or RGBA, whose alpha is dropped) at `quality`, with 4:2:0 chroma: the
/// colours come from a model output of a quarter of the image's resolution, so halving the
/// chroma resolution loses nothing the model said, and costs a third less time than 4:4:4.
/// Large images are encoded in strips on rayon's threads and spliced with restart markers
/// (`strips`): the same pixels when decoded.
pub fn encode(pixels: &[u8], w: u32, h: u32, channels: usize, quality: u8) -> Result<Vec<u8>, turbojpeg::Error> {
    let (w, h) = (w as usize, h as usize);
    let piece = |p: &[u8], rows: usize| encode_piece(p, w, rows, channels, quality);
    match strips::encode(pixels, w, h, channels, piece) {
        Some(done) => done,
        None => piece(pixels, h),
    }
}

/// `encode` in one piece, on the calling thread.
fn encode_piece(pixels: &[u8], w: usize, h: usize, channels: usize, quality: u8) -> Result<Vec<u8>, turbojpeg::Error> {
    let format = if channels == 4 { PixelFormat::RGBX } else { PixelFormat::RGB };
    COMPRESSOR.with_borrow_mut(|c| {
        let c = match c {
            Some(c) => c,
            None => c.insert(Compressor::new()?),
        };
        c.set_quality(quality.clamp(1, 100) as i32)?;
        c.set_subsamp(Subsamp::Sub2x2)?;
        c.compress_to_vec(Image { pixels, width: w, pitch: w * channels, height: h, format })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(w: u32, h: u32, gray: bool) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 3) as u8, (y * 5) as u8, ((x ^ y) * 7) as u8]));
        let img = if gray { image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(img).to_luma8()) } else { img.into() };
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        buf.into_inner()
    }

    #[test]
    fn the_walk_finds_the_frame_and_the_end() {
        let jpeg = encoded(120, 80, true);
        let s = scan(&jpeg);
        assert!(s.complete);
        let f = s.frame.unwrap();
        assert_eq!((f.marker, f.precision, f.width, f.height, f.components), (0xC0, 8, 120, 80, 1));
        assert!(f.fast());
        assert_eq!(s.orientation, None);
        assert!(!scan(&jpeg[..jpeg.len() - 1]).complete);
    }

    #[test]
    fn decoded_pixels_match_the_image_crate() {
        for gray in [true, false] {
            let jpeg = encoded(97, 61, gray);
            let frame = scan(&jpeg).frame.unwrap();
            let (px, channels) = decode(&jpeg, &frame).unwrap();
            let want = image::load_from_memory(&jpeg).unwrap();
            assert_eq!(channels, want.color().channel_count() as usize);
            // Two IDCTs: equal up to a code or two.
            let worst = px.iter().zip(want.as_bytes()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 3, "gray {gray}: worst difference {worst}");
        }
    }

    /// A large image goes in strips (a DRI segment and restart markers in the file) and decodes
    /// to exactly the pixels of the one-piece encoding, for both channel counts and a height that
    /// is not a whole number of MCU rows.
    #[test]
    fn strips_decode_to_the_pixels_of_one_piece() {
        if rayon::current_num_threads() < 2 {
            return;
        }
        let (w, h) = (2600usize, 1703usize);
        for channels in [3usize, 4] {
            let pixels: Vec<u8> = (0..w * h * channels)
                .map(|i| ((i / channels % w) as f32 * 0.05).sin().mul_add(60.0, ((i % 7) * 20 + (i / (w * channels)) % 50) as f32) as u8)
                .collect();
            let striped = encode(&pixels, w as u32, h as u32, channels, 90).unwrap();
            let whole = encode_piece(&pixels, w, h, channels, 90).unwrap();
            assert!(striped.windows(2).any(|m| m == [0xFF, 0xDD]), "no restart interval: not striped");
            assert!(striped.windows(2).any(|m| m == [0xFF, 0xD1]), "fewer than three strips");
            let a = image::load_from_memory(&striped).unwrap().to_rgb8();
            let b = image::load_from_memory(&whole).unwrap().to_rgb8();
            assert_eq!((a.width(), a.height()), (w as u32, h as u32));
            assert!(a.as_raw() == b.as_raw(), "{channels} channels: the strips decode to other pixels");
            assert!(striped.len() < whole.len() + 64, "{} vs {}", striped.len(), whole.len());
        }
    }

    #[test]
    fn encoded_jpeg_decodes_to_the_colours() {
        let (w, h) = (64u32, 48u32);
        let rgb: Vec<u8> = (0..w * h).flat_map(|i| [(i % w) as u8 * 2 + 20, 120 - (i / w) as u8, 60]).collect();
        let jpeg = encode(&rgb, w, h, 3, 95).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        let mean = back.as_raw().iter().zip(&rgb).map(|(a, b)| a.abs_diff(*b) as f64).sum::<f64>() / rgb.len() as f64;
        assert!(mean < 2.0, "{mean}");
    }
}

//! Bytes to pixels: the header read once (format, size, pixel type, orientation) and checked
//! against the limits, then the pixels from the same reading: JPEG through libjpeg-turbo (gray as
//! one channel), every other format (and unusual JPEGs) through the image crate; EXIF orientation;
//! the full-resolution lightness (a gray photo's own bytes, else an L plane).

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageError, ImageReader};
use rayon::prelude::*;

use super::jpeg::{self, Frame};
use super::{Limits, PipelineError};
use crate::color::{gray_l_table, srgb_to_l};

/// What an image's header says, read without decoding its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: image::ImageFormat,
    /// Width and height as stored (before EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// The decoder's pixel type.
    pub color: image::ColorType,
    /// EXIF orientation turns the image a quarter (orientation 5 to 8): a second pixel buffer.
    pub quarter_turn: bool,
}

impl Header {
    pub fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

fn decode_error(e: ImageError) -> PipelineError {
    match e {
        ImageError::Limits(l) => PipelineError::TooLarge(format!("the image is over the decoding limits: {l}")),
        ImageError::Unsupported(u) => PipelineError::Unsupported(u.to_string()),
        other => PipelineError::NotAnImage(other.to_string()),
    }
}

/// An image whose header has been read and has passed the limits; `decode` reads its pixels.
pub struct Opened<'a> {
    pub header: Header,
    bytes: &'a [u8],
    limits: Limits,
    source: Source<'a>,
}

enum Source<'a> {
    /// A JPEG libjpeg-turbo decodes here, with the orientation of its EXIF segment.
    Jpeg(Frame, Orientation),
    /// Any other image, through the image crate's decoder (already past the header).
    Other(Box<dyn ImageDecoder + 'a>),
}

/// Reads the header of `bytes` (format sniffed from the content) and checks it against the
/// limits; truncated JPEGs are refused here, before any pixel is decoded. JPEGs are walked once
/// (frame, EXIF and the end marker in one pass).
pub fn open<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Opened<'a>, PipelineError> {
    if bytes.is_empty() {
        return Err(PipelineError::NotAnImage("the body is empty".into()));
    }
    let format = image::guess_format(bytes)
        .map_err(|_| PipelineError::NotAnImage("no known image signature (JPEG, PNG, WebP, GIF, BMP, TIFF)".into()))?;
    if format == image::ImageFormat::Jpeg {
        let scan = jpeg::scan(bytes);
        if !scan.complete {
            // Decoders fill a scan that is cut short with gray and report success.
            return Err(PipelineError::Truncated(
                "the JPEG data ends before its end-of-image marker (a partial upload or a cut file?)".into(),
            ));
        }
        if let Some(frame) = scan.frame.filter(Frame::fast) {
            let color = if frame.components == 1 { image::ColorType::L8 } else { image::ColorType::Rgb8 };
            let orientation = scan.orientation.unwrap_or(Orientation::NoTransforms);
            let header = checked(format, frame.width, frame.height, color, orientation, limits)?;
            if frame.decode_bytes() > limits.max_decode_bytes {
                return Err(PipelineError::TooLarge(format!(
                    "the image is over the decoding limits: decoding needs {} bytes, the limit is {}",
                    frame.decode_bytes(),
                    limits.max_decode_bytes
                )));
            }
            return Ok(Opened { header, bytes, limits: *limits, source: Source::Jpeg(frame, orientation) });
        }
    }
    let (header, decoder) = open_other(bytes, limits)?;
    Ok(Opened { header, bytes, limits: *limits, source: Source::Other(decoder) })
}

/// The header through the image crate's decoder, with the limits set on it.
fn open_other<'a>(bytes: &'a [u8], limits: &Limits) -> Result<(Header, Box<dyn ImageDecoder + 'a>), PipelineError> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| PipelineError::NotAnImage(e.to_string()))?;
    let format = reader.format().ok_or_else(|| PipelineError::NotAnImage("no known image signature".into()))?;
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(limits.max_side);
    lim.max_image_height = Some(limits.max_side);
    lim.max_alloc = Some(limits.max_decode_bytes);
    reader.limits(lim);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let header = checked(format, w, h, decoder.color_type(), orientation, limits)?;
    Ok((header, Box::new(decoder)))
}

/// The header, once its size has passed the limits.
fn checked(
    format: image::ImageFormat,
    w: u32,
    h: u32,
    color: image::ColorType,
    o: Orientation,
    limits: &Limits,
) -> Result<Header, PipelineError> {
    let pixels = w as u64 * h as u64;
    if w > limits.max_side || h > limits.max_side {
        return Err(PipelineError::TooLarge(format!("the image is {w}x{h}; the longest side allowed is {}", limits.max_side)));
    }
    if pixels > limits.max_pixels {
        return Err(PipelineError::TooLarge(format!("the image is {w}x{h} = {pixels} pixels; the limit is {}", limits.max_pixels)));
    }
    if w == 0 || h == 0 {
        return Err(PipelineError::NotAnImage(format!("the image is {w}x{h}")));
    }
    use Orientation::*;
    let quarter_turn = matches!(o, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH);
    Ok(Header { format, width: w, height: h, color, quarter_turn })
}

impl Opened<'_> {
    /// The pixels, with EXIF orientation applied.
    pub fn decode(self) -> Result<DynamicImage, PipelineError> {
        let (mut img, orientation) = match self.source {
            Source::Jpeg(frame, orientation) => match jpeg::decode(self.bytes, &frame) {
                Ok((pixels, channels)) => {
                    let (w, h) = (frame.width, frame.height);
                    let img = if channels == 1 {
                        DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, pixels).expect("w*h bytes"))
                    } else {
                        DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, pixels).expect("w*h*3 bytes"))
                    };
                    (img, orientation)
                }
                // What libjpeg-turbo refuses, the image crate's decoder may still read (as it did
                // before): its answer, image or error, stands.
                Err(_) => {
                    let (_, mut decoder) = open_other(self.bytes, &self.limits)?;
                    let o = decoder.orientation().unwrap_or(Orientation::NoTransforms);
                    (DynamicImage::from_decoder(decoder).map_err(decode_error)?, o)
                }
            },
            Source::Other(mut decoder) => {
                let o = decoder.orientation().unwrap_or(Orientation::NoTransforms);
                (DynamicImage::from_decoder(decoder).map_err(decode_error)?, o)
            }
        };
        img.apply_orientation(orientation);
        Ok(img)
    }
}

/// Reads an image's header (format, size, pixel type, orientation) and checks it against the
/// limits, without decoding pixels: what admission needs to know what the image will cost.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Header, PipelineError> {
    open(bytes, limits).map(|o| o.header)
}

/// Decodes `bytes` (format sniffed from the content), applies EXIF orientation and the limits.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<DynamicImage, PipelineError> {
    open(bytes, limits)?.decode()
}

/// Whether a JPEG has an end-of-image marker after its last scan (`jpeg::scan`).
pub fn jpeg_is_complete(b: &[u8]) -> bool {
    jpeg::scan(b).complete
}

/// Pixels below which a per-pixel stage runs on the calling thread instead of being split over
/// rayon's pool: handing a small image to other threads costs more wake-ups than it saves, and
/// under load every core is busy with other requests anyway.
pub(super) const PAR_MIN_PIXELS: usize = 1 << 18;

/// A photo's full-resolution lightness, row-major.
pub enum Lightness {
    /// A gray photo's own 8-bit values (most inputs): one byte a pixel, L by a 256-entry table
    /// (`color::gray_l_table`) where it is needed.
    Gray(Vec<u8>),
    /// L (0..100) of every pixel, for colour photos and other pixel types.
    L(Vec<f32>),
}

impl Lightness {
    /// The whole L plane (a new plane for a gray photo).
    pub(super) fn plane(&self, w: usize) -> std::borrow::Cow<'_, [f32]> {
        match self {
            Self::Gray(g) => {
                let table = gray_l_table();
                l_plane(g, 1, w, |px| table[px[0] as usize]).into()
            }
            Self::L(l) => l.as_slice().into(),
        }
    }

    /// L of the `buf.len()` pixels from `start`: borrowed from the plane, or for a gray photo
    /// computed into `buf`.
    #[inline]
    pub(super) fn row<'a>(&'a self, start: usize, buf: &'a mut [f32]) -> &'a [f32] {
        match self {
            Self::Gray(g) => {
                let (table, n) = (gray_l_table(), buf.len());
                for (o, &v) in buf.iter_mut().zip(&g[start..start + n]) {
                    *o = table[v as usize];
                }
                buf
            }
            Self::L(l) => &l[start..start + buf.len()],
        }
    }
}

/// Full-resolution lightness and alpha of an image.
pub(super) fn lightness(img: DynamicImage) -> (Lightness, Option<Vec<u8>>) {
    let w = img.width() as usize;
    let has_alpha = img.color().has_alpha();
    match img {
        // Gray photos (most inputs): their own bytes, no alpha to split off.
        DynamicImage::ImageLuma8(gray) => (Lightness::Gray(gray.into_raw()), None),
        DynamicImage::ImageRgb8(rgb) => (Lightness::L(l_plane(rgb.as_raw(), 3, w, |px| srgb_to_l([px[0], px[1], px[2]]))), None),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) => {
            let la = img.into_luma_alpha8();
            (Lightness::L(l_plane(la.as_raw(), 2, w, |px| srgb_to_l([px[0]; 3]))), alpha_channel(la.as_raw(), 2, has_alpha))
        }
        _ => {
            let rgba = img.into_rgba8();
            (Lightness::L(l_plane(rgba.as_raw(), 4, w, |px| srgb_to_l([px[0], px[1], px[2]]))), alpha_channel(rgba.as_raw(), 4, has_alpha))
        }
    }
}

/// L of every pixel of interleaved 8-bit pixels (`stride` bytes each, rows of `w` pixels), in
/// chunks of 64 rows over rayon's pool; small images stay on the calling thread.
fn l_plane(pixels: &[u8], stride: usize, w: usize, to_l: impl Fn(&[u8]) -> f32 + Sync) -> Vec<f32> {
    let rows = 64usize;
    let min_chunks = PAR_MIN_PIXELS.div_ceil(w.max(1) * rows);
    let mut l = vec![0.0f32; pixels.len() / stride];
    pixels.par_chunks(stride * w * rows).with_min_len(min_chunks).zip(l.par_chunks_mut(w * rows)).for_each(|(src, dst)| {
        for (px, out) in src.chunks_exact(stride).zip(dst) {
            *out = to_l(px);
        }
    });
    l
}

/// The last byte of every `stride`-byte pixel, when the image has alpha that is not fully opaque
/// (GIF frames decode as RGBA even when opaque).
fn alpha_channel(pixels: &[u8], stride: usize, has_alpha: bool) -> Option<Vec<u8>> {
    if !has_alpha || pixels.chunks_exact(stride).all(|p| p[stride - 1] == 255) {
        return None;
    }
    Some(pixels.chunks_exact(stride).map(|p| p[stride - 1]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(fmt: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 3) as u8, (y * 5) as u8, ((x ^ y) * 7) as u8])));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, fmt).unwrap();
        buf.into_inner()
    }

    #[test]
    fn a_jpeg_is_complete_only_with_its_end_marker() {
        let jpeg = encoded(image::ImageFormat::Jpeg, 120, 80);
        assert!(jpeg_is_complete(&jpeg));
        assert!(jpeg_is_complete(&[&jpeg[..], b"trailing bytes \xff\xd8"].concat()));
        for cut in [3, 100, 500, jpeg.len() / 2, jpeg.len() - 2, jpeg.len() - 1] {
            assert!(!jpeg_is_complete(&jpeg[..cut]), "cut at {cut} of {}", jpeg.len());
        }
        // The end marker of an EXIF thumbnail (inside APP1) does not count.
        let thumb = encoded(image::ImageFormat::Jpeg, 16, 16);
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&((thumb.len() + 8) as u16).to_be_bytes());
        app1.extend_from_slice(b"Exif\0\0");
        app1.extend_from_slice(&thumb);
        let with_thumb = [&jpeg[..2], &app1[..], &jpeg[2..]].concat();
        assert!(jpeg_is_complete(&with_thumb));
        assert!(!jpeg_is_complete(&with_thumb[..app1.len() + 300]));
    }

    /// What the decoders do with a cut file: JPEG needs our check (decoders fill the rest with
    /// gray and report success); PNG, WebP, GIF, BMP and TIFF fail by themselves. A file cut only
    /// in its last bytes may still decode when no pixel is lost (PNG's IEND, GIF's trailer, WebP's
    /// padding byte): then it must decode to exactly the whole file's pixels.
    #[test]
    fn truncated_images_are_refused() {
        use image::ImageFormat::*;
        for fmt in [Jpeg, Png, WebP, Gif, Bmp, Tiff] {
            let full = encoded(fmt, 300, 200);
            let n = full.len();
            let whole = decode(&full, &Limits::default()).unwrap_or_else(|e| panic!("{fmt:?} whole: {e}"));
            for cut in [20, 500, n / 3, n / 2, n * 9 / 10, n - 16] {
                match decode(&full[..cut], &Limits::default()) {
                    Err(PipelineError::Truncated(_) | PipelineError::NotAnImage(_)) => {}
                    other => panic!("{fmt:?} cut at {cut} of {n}: {:?}", other.map(|i| (i.width(), i.height()))),
                }
            }
            for cut in n - 15..n {
                if let Ok(img) = decode(&full[..cut], &Limits::default()) {
                    assert!(img.as_bytes() == whole.as_bytes(), "{fmt:?} cut at {cut} of {n} decodes to other pixels");
                }
            }
            let cut = decode(&full[..n / 2], &Limits::default());
            if fmt == Jpeg {
                assert!(matches!(cut, Err(PipelineError::Truncated(_))));
            }
        }
    }

    #[test]
    fn jpeg_limits_are_checked_from_the_header() {
        let jpeg = encoded(image::ImageFormat::Jpeg, 300, 200);
        let tight = |max_pixels, max_side, max_decode_bytes| Limits { max_pixels, max_side, max_decode_bytes };
        assert!(matches!(probe(&jpeg, &tight(59_999, 1000, 1 << 30)), Err(PipelineError::TooLarge(_))));
        assert!(matches!(probe(&jpeg, &tight(60_000, 299, 1 << 30)), Err(PipelineError::TooLarge(_))));
        assert!(matches!(probe(&jpeg, &tight(60_000, 300, 179_999)), Err(PipelineError::TooLarge(_))));
        let h = probe(&jpeg, &tight(60_000, 300, 180_000)).unwrap();
        assert_eq!((h.width, h.height, h.color, h.quarter_turn), (300, 200, image::ColorType::Rgb8, false));
    }
}

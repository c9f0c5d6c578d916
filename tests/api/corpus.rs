//! The hostile-input corpus: every case is generated here (no binary blobs in the repo), with the
//! answer the service must give.

use std::io::Cursor;

use image::{DynamicImage, GrayAlphaImage, GrayImage, ImageBuffer, ImageFormat, LumaA, Rgb, RgbImage, Rgba, RgbaImage};

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// 200 with an image of this width and height.
    Image { width: u32, height: u32, alpha: bool },
    /// This status, as problem+json.
    Problem(u16),
}

#[derive(Debug, Clone)]
pub enum Body {
    Raw { content_type: Option<&'static str>, bytes: Vec<u8> },
    Multipart { parts: Vec<(&'static str, Vec<u8>)> },
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub query: String,
    pub body: Body,
    pub expect: Expect,
}

/// Settings the corpus assumes the server runs with.
pub const MAX_BODY_BYTES: usize = 4_000_000;
pub const MAX_PIXELS: u64 = 30_000_000;

fn enc(img: &DynamicImage, fmt: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, fmt).unwrap();
    buf.into_inner()
}

fn scene(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 255 / w.max(1)) / 2 + (y * 255 / h.max(1)) / 2) as u8]))
}

/// A PNG header (signature + IHDR) that declares `w` x `h` pixels, followed by a tiny IDAT.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A JPEG with an EXIF APP1 segment carrying `orientation`, inserted right after SOI.
pub fn jpeg_with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The quadrant image used for orientation cases: bright top-left quadrant on a dark field.
pub fn quadrant(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| image::Luma([if x < w / 2 && y < h / 2 { 230 } else { 30 }]))
}

fn jpeg_encoder_bytes(w: u16, h: u16, data: &[u8], color: jpeg_encoder::ColorType, progressive: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut out, 90);
    e.set_progressive(progressive);
    e.encode(data, w, h, color).unwrap();
    out
}

fn palette_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, w, h);
        e.set_color(png::ColorType::Indexed);
        e.set_depth(png::BitDepth::Eight);
        e.set_palette((0..=255u8).flat_map(|v| [v, v, v]).collect::<Vec<u8>>());
        let mut wr = e.write_header().unwrap();
        let data: Vec<u8> = (0..w * h).map(|i| (i % 256) as u8).collect();
        wr.write_image_data(&data).unwrap();
    }
    out
}

fn animated_gif(w: u16, h: u16) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let palette: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
        let mut e = gif::Encoder::new(&mut out, w, h, &palette).unwrap();
        e.set_repeat(gif::Repeat::Infinite).unwrap();
        for f in 0..3u8 {
            let frame = gif::Frame {
                width: w,
                height: h,
                buffer: std::borrow::Cow::Owned((0..w as usize * h as usize).map(|i| (i as u8).wrapping_add(f * 80)).collect()),
                ..Default::default()
            };
            e.write_frame(&frame).unwrap();
        }
    }
    out
}

fn raw(ct: &'static str, bytes: Vec<u8>) -> Body {
    Body::Raw { content_type: Some(ct), bytes }
}

fn case(name: &str, query: &str, body: Body, expect: Expect) -> Case {
    Case { name: name.to_string(), query: query.to_string(), body, expect }
}

fn img(width: u32, height: u32) -> Expect {
    Expect::Image { width, height, alpha: false }
}

/// Every case, with its expected answer.
pub fn corpus() -> Vec<Case> {
    let gray = DynamicImage::ImageLuma8(scene(96, 64));
    let png = enc(&gray, ImageFormat::Png);
    let jpeg = enc(&gray, ImageFormat::Jpeg);
    let webp = enc(&gray, ImageFormat::WebP);
    let mut random = Vec::with_capacity(5000);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..5000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push(x as u8);
    }
    // A 10000 x 10000 all-black PNG: ~100 kB on the wire, 100 Mpx once decoded.
    let bomb = {
        let mut out = Vec::new();
        {
            let mut e = png::Encoder::new(&mut out, 10_000, 10_000);
            e.set_color(png::ColorType::Grayscale);
            e.set_compression(png::Compression::High);
            let mut wr = e.write_header().unwrap();
            let mut sw = wr.stream_writer().unwrap();
            let row = vec![0u8; 10_000];
            for _ in 0..10_000 {
                std::io::Write::write_all(&mut sw, &row).unwrap();
            }
            sw.finish().unwrap();
        }
        out
    };
    let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(80, 60, |x, y| Rgb([(x * 3) as u8, (y * 4) as u8, 128])));
    let cmyk: Vec<u8> = (0..64 * 48).flat_map(|i| [(i % 200) as u8, 30, 60, (i % 90) as u8]).collect();
    let luma16 = DynamicImage::ImageLuma16(ImageBuffer::from_fn(70, 50, |x, y| image::Luma([(x * 900 + y * 300) as u16])));
    let gray_alpha = DynamicImage::ImageLumaA8(GrayAlphaImage::from_fn(60, 40, |x, _| LumaA([(x * 4) as u8, (255 - x * 4) as u8])));
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(50, 30, |x, y| Rgba([x as u8 * 5, y as u8 * 8, 100, 200])));

    let mut cases = vec![
        case("empty body", "", raw("image/png", Vec::new()), Expect::Problem(400)),
        case("random bytes as jpeg", "", raw("image/jpeg", random.clone()), Expect::Problem(400)),
        case("text as png", "", raw("image/png", b"this is plain text, not a picture".to_vec()), Expect::Problem(400)),
        case("html as jpeg", "", raw("image/jpeg", b"<!doctype html><html><body>hi</body></html>".to_vec()), Expect::Problem(400)),
        case("zip as png", "", raw("image/png", b"PK\x03\x04\x14\x00\x00\x00\x08\x00rest-of-a-zip".to_vec()), Expect::Problem(400)),
        case("truncated png", "", raw("image/png", png[..png.len() / 2].to_vec()), Expect::Problem(400)),
        case("truncated png header", "", raw("image/png", png[..20].to_vec()), Expect::Problem(400)),
        case("truncated jpeg", "", raw("image/jpeg", jpeg[..jpeg.len() / 3].to_vec()), Expect::Problem(400)),
        case("truncated webp", "", raw("image/webp", webp[..webp.len() / 2].to_vec()), Expect::Problem(400)),
        case("jpeg cut to 500 bytes", "", raw("image/jpeg", jpeg[..500].to_vec()), Expect::Problem(400)),
        case("jpeg without its end marker", "", raw("image/jpeg", jpeg[..jpeg.len() - 2].to_vec()), Expect::Problem(400)),
        case("jpeg with bytes after its end", "", raw("image/jpeg", [&jpeg[..], b"trailing camera data"].concat()), img(96, 64)),
        case(
            "truncated progressive jpeg",
            "",
            raw("image/jpeg", {
                let p = jpeg_encoder_bytes(96, 64, gray.to_luma8().as_raw(), jpeg_encoder::ColorType::Luma, true);
                p[..p.len() * 2 / 3].to_vec()
            }),
            Expect::Problem(400),
        ),
        case(
            "truncated gif",
            "",
            raw("image/gif", {
                let g = animated_gif(48, 32);
                g[..g.len() / 4].to_vec()
            }),
            Expect::Problem(400),
        ),
        case("png declaring 100000 x 100000", "", raw("image/png", png_declaring(100_000, 100_000)), Expect::Problem(422)),
        case("png declaring 40000 x 10", "", raw("image/png", png_declaring(40_000, 10)), Expect::Problem(422)),
        case("small file, 100 Mpx image", "", raw("image/png", bomb), Expect::Problem(422)),
        case("20000 x 10", "", raw("image/png", enc(&DynamicImage::ImageLuma8(scene(20_000, 10)), ImageFormat::Png)), img(20_000, 10)),
        case("10 x 20000", "", raw("image/png", enc(&DynamicImage::ImageLuma8(scene(10, 20_000)), ImageFormat::Png)), img(10, 20_000)),
        case("1 x 1", "", raw("image/png", enc(&DynamicImage::ImageLuma8(scene(1, 1)), ImageFormat::Png)), img(1, 1)),
        case("2 x 3 jpeg", "", raw("image/jpeg", enc(&DynamicImage::ImageLuma8(scene(2, 3)), ImageFormat::Jpeg)), img(2, 3)),
        case("cmyk jpeg", "", raw("image/jpeg", jpeg_encoder_bytes(64, 48, &cmyk, jpeg_encoder::ColorType::Cmyk, false)), img(64, 48)),
        case(
            "progressive jpeg",
            "",
            raw("image/jpeg", jpeg_encoder_bytes(96, 64, gray.to_luma8().as_raw(), jpeg_encoder::ColorType::Luma, true)),
            img(96, 64),
        ),
        case("16-bit png", "", raw("image/png", enc(&luma16, ImageFormat::Png)), img(70, 50)),
        case(
            "gray+alpha png",
            "",
            raw("image/png", enc(&gray_alpha, ImageFormat::Png)),
            Expect::Image { width: 60, height: 40, alpha: true },
        ),
        case("rgba png", "", raw("image/png", enc(&rgba, ImageFormat::Png)), Expect::Image { width: 50, height: 30, alpha: true }),
        case("palette png", "", raw("image/png", palette_png(40, 30)), img(40, 30)),
        case("animated gif (first frame)", "", raw("image/gif", animated_gif(48, 32)), img(48, 32)),
        case("colour jpeg (only L used)", "", raw("image/jpeg", enc(&rgb, ImageFormat::Jpeg)), img(80, 60)),
        case("bmp", "", raw("image/bmp", enc(&rgb, ImageFormat::Bmp)), img(80, 60)),
        case("tiff", "", raw("image/tiff", enc(&gray, ImageFormat::Tiff)), img(96, 64)),
        case("webp", "", raw("image/webp", webp.clone()), img(96, 64)),
        case("content type png, body jpeg", "", raw("image/png", jpeg.clone()), img(96, 64)),
        case("octet-stream", "", raw("application/octet-stream", png.clone()), img(96, 64)),
        case("no content type", "", Body::Raw { content_type: None, bytes: png.clone() }, Expect::Problem(415)),
        case("json content type", "", raw("application/json", png.clone()), Expect::Problem(415)),
        case("multipart without image part", "", Body::Multipart { parts: vec![("file", png.clone())] }, Expect::Problem(400)),
        case("multipart with empty image part", "", Body::Multipart { parts: vec![("image", Vec::new())] }, Expect::Problem(400)),
        case("multipart ok", "", Body::Multipart { parts: vec![("note", b"x".to_vec()), ("image", png.clone())] }, img(96, 64)),
        case("body over the limit", "", raw("image/png", vec![0u8; MAX_BODY_BYTES + 1]), Expect::Problem(413)),
        case("unknown query parameter", "?colour=vivid", raw("image/png", png.clone()), Expect::Problem(422)),
        case("temperature NaN", "?temperature=NaN", raw("image/png", png.clone()), Expect::Problem(422)),
        case("temperature negative", "?temperature=-0.3", raw("image/png", png.clone()), Expect::Problem(422)),
        case("temperature huge", "?temperature=1e30", raw("image/png", png.clone()), Expect::Problem(422)),
        case("temperature empty", "?temperature=", raw("image/png", png.clone()), Expect::Problem(422)),
        case("format unknown", "?format=tga", raw("image/png", png.clone()), Expect::Problem(422)),
        case("quality out of range", "?format=jpeg&quality=500", raw("image/png", png.clone()), Expect::Problem(422)),
        case("malformed query", "?temperature=%zz", raw("image/png", png.clone()), Expect::Problem(422)),
        case("unknown model", "?model=..%2F..%2Fetc%2Fpasswd", raw("image/png", png.clone()), Expect::Problem(422)),
    ];
    // EXIF orientations 1..8 on a 90 x 60 image: 5..8 swap width and height.
    let q = enc(&DynamicImage::ImageLuma8(quadrant(90, 60)), ImageFormat::Jpeg);
    for o in 1..=8u16 {
        let (w, h) = if o >= 5 { (60, 90) } else { (90, 60) };
        cases.push(case(&format!("exif orientation {o}"), "", raw("image/jpeg", jpeg_with_orientation(&q, o)), img(w, h)));
    }
    cases
}

/// Where the bright quadrant of `quadrant()` lands after EXIF orientation `o`: (right, bottom).
pub fn bright_corner(o: u16) -> (bool, bool) {
    match o {
        1 | 5 => (false, false),
        2 | 6 => (true, false),
        3 | 7 => (true, true),
        4 | 8 => (false, true),
        _ => unreachable!(),
    }
}

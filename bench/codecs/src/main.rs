//! JPEG codecs on one photo (best of 5): decode with the image crate, zune-jpeg (one channel)
//! and libjpeg-turbo (turbojpeg crate); encode q90 with the image crate, jpeg-encoder (simd) and
//! libjpeg-turbo, 4:4:4 and 4:2:0. `cd bench/codecs && cargo run --release -- PHOTO.jpg`
//! (the choice of issue 12: bench/README.md).
use std::time::Instant;
fn best<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut b = f64::MAX;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let r = f();
        b = b.min(t.elapsed().as_secs_f64() * 1e3);
        last = Some(r);
    }
    (b, last.unwrap())
}
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = 5;
    let (t, img) = best(n, || image::load_from_memory(&bytes).unwrap());
    println!("decode image crate ({:?}): {t:.1} ms", img.color());
    let (t, z) = best(n, || {
        let opts = zune_core::options::DecoderOptions::default().jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::Luma);
        let mut d = zune_jpeg::JpegDecoder::new_with_options(std::io::Cursor::new(&bytes), opts);
        d.decode().unwrap()
    });
    println!("decode zune-jpeg luma: {t:.1} ms ({} bytes)", z.len());
    let (t, tj) = best(n, || turbojpeg::decompress(&bytes, turbojpeg::PixelFormat::GRAY).unwrap());
    println!("decode turbojpeg gray: {t:.1} ms ({}x{})", tj.width, tj.height);
    let same = tj.pixels.iter().zip(&z).filter(|(a, b)| a != b).count();
    println!("  turbo vs zune differing bytes: {same}");
    // colourful RGB to encode: synthetic chroma from gray
    let (w, h) = (tj.width as u32, tj.height as u32);
    let rgb: Vec<u8> = z
        .iter()
        .enumerate()
        .flat_map(|(i, &v)| {
            let x = (i % w as usize) as u32;
            [v, v.saturating_add((x / 64 % 40) as u8), v / 2 + 60]
        })
        .collect();
    let (t, e) = best(n, || {
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90).encode(&rgb, w, h, image::ExtendedColorType::Rgb8).unwrap();
        buf
    });
    println!("encode image crate q90: {t:.1} ms {} bytes", e.len());
    for (name, s) in [("444", jpeg_encoder::SamplingFactor::F_1_1), ("420", jpeg_encoder::SamplingFactor::F_2_2)] {
        let (t, e) = best(n, || {
            let mut buf = Vec::new();
            let mut enc = jpeg_encoder::Encoder::new(&mut buf, 90);
            enc.set_sampling_factor(s);
            enc.encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb).unwrap();
            buf
        });
        println!("encode jpeg-encoder simd {name} q90: {t:.1} ms {} bytes", e.len());
    }
    for (name, s) in [("444", turbojpeg::Subsamp::None), ("420", turbojpeg::Subsamp::Sub2x2)] {
        let (t, e) = best(n, || {
            let im = turbojpeg::Image {
                pixels: &rgb[..],
                width: w as usize,
                pitch: w as usize * 3,
                height: h as usize,
                format: turbojpeg::PixelFormat::RGB,
            };
            turbojpeg::compress(im, 90, s).unwrap()
        });
        println!("encode turbojpeg {name} q90: {t:.1} ms {} bytes", e.len());
    }
}

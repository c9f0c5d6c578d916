use std::time::Instant;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

use super::*;
use crate::color::{AbPlanes, AbUpsampler};

/// Photo-like pixels as the pipeline makes them: a detailed L (shapes, texture, grain) joined
/// with a smooth ab field; with 4 channels, an alpha ramp with a cut-out.
fn photo(w: usize, h: usize, channels: usize) -> Vec<u8> {
    let (gw, gh) = (w.div_ceil(32).max(2), h.div_ceil(32).max(2));
    let a = (0..gw * gh).map(|i| 30.0 * (i as f32 * 0.37).sin()).collect();
    let b = (0..gw * gh).map(|i| 30.0 * (i as f32 * 0.23).cos()).collect();
    let ab = AbPlanes { width: gw, height: gh, a, b };
    let up = AbUpsampler::new(&ab, w, h);
    let mut out = vec![0u8; w * h * channels];
    let mut l = vec![0f32; w];
    let mut seed = 1u32;
    for (y, row) in out.chunks_exact_mut(w * channels).enumerate() {
        for (x, v) in l.iter_mut().enumerate() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let (xf, yf) = (x as f32, y as f32);
            let grain = ((seed >> 24) as f32 - 128.0) / 128.0 * 1.5;
            *v = 50.0 + 35.0 * (xf * 0.013).sin() * (yf * 0.011).cos() + 8.0 * (xf * 0.21 + yf * 0.05).sin() + grain;
        }
        up.join_row(y, &l, row, channels);
        if channels == 4 {
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                px[3] = if (x / 16 + y / 16) % 5 == 0 { 0 } else { (255 * (x + 1) / w) as u8 };
            }
        }
    }
    out
}

/// Cheaper pixels for round trips: smooth gradients, edges and grain in every channel.
fn pattern(w: usize, h: usize, channels: usize) -> Vec<u8> {
    let grain = noise(w * h * channels, 5);
    let mut px = vec![0u8; w * h * channels];
    for (i, (p, g)) in px.iter_mut().zip(grain).enumerate() {
        let (x, y, c) = (i / channels % w, i / channels / w, i % channels);
        let edge = if (x / 50 + y / 40) % 3 == 0 { 60 } else { 0 };
        *p = ((x * (c + 1) / 7 + y / 5 + edge) as u8).wrapping_add(g >> 5);
    }
    px
}

fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 24) as u8
        })
        .collect()
}

/// BTYPE of the first deflate block of each IDAT chunk (0 stored, 2 dynamic Huffman).
fn block_types(png: &[u8]) -> Vec<u8> {
    let idat = chunks(png).into_iter().filter(|c| &c.0 == b"IDAT");
    idat.enumerate().map(|(i, c)| c.1[if i == 0 { 2 } else { 0 }] >> 1 & 3).collect()
}

fn image_crate(px: &[u8], w: usize, h: usize, channels: usize) -> Vec<u8> {
    let color = if channels == 4 { ExtendedColorType::Rgba8 } else { ExtendedColorType::Rgb8 };
    let mut buf = Vec::new();
    let encoder = PngEncoder::new_with_quality(&mut buf, CompressionType::Fast, FilterType::Adaptive);
    encoder.write_image(px, w as u32, h as u32, color).unwrap();
    buf
}

/// The chunks of a PNG (type and data), their CRCs checked.
fn chunks(png: &[u8]) -> Vec<([u8; 4], &[u8])> {
    assert_eq!(png[..8], SIGNATURE);
    let (mut at, mut out) = (8, Vec::new());
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&png[at + 4..at + 8 + len]), "CRC of chunk at {at}");
        out.push((png[at + 4..at + 8].try_into().unwrap(), &png[at + 8..at + 8 + len]));
        at += 12 + len;
    }
    out
}

/// Encodes, decodes with the png crate (Adler-32 checked too) and compares; checks the zlib
/// stream with a second decoder. Returns the PNG and its count of IDAT chunks.
fn round_trip(px: &[u8], w: usize, h: usize, channels: usize) -> (Vec<u8>, usize) {
    let png = write(px, w as u32, h as u32, channels).unwrap();
    let mut options = png::DecodeOptions::default();
    options.set_ignore_adler32(false);
    let mut reader = png::Decoder::new_with_options(std::io::Cursor::new(&png), options).read_info().unwrap();
    let mut decoded = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut decoded).unwrap();
    reader.finish().unwrap();
    let color = if channels == 4 { png::ColorType::Rgba } else { png::ColorType::Rgb };
    assert_eq!((info.width, info.height, info.color_type, info.bit_depth), (w as u32, h as u32, color, png::BitDepth::Eight));
    assert!(decoded[..info.buffer_size()] == *px, "{w}x{h}x{channels}: decoded pixels differ");
    let idat: Vec<&[u8]> = chunks(&png).into_iter().filter(|c| &c.0 == b"IDAT").map(|c| c.1).collect();
    let filtered = fdeflate::decompress_to_vec(&idat.concat()).unwrap();
    assert_eq!(filtered.len(), h * (w * channels + 1));
    let count = idat.len();
    (png, count)
}

#[test]
fn rgb_and_rgba_decode_to_the_input() {
    // (width, height, strips): odd widths, 1-pixel rows and columns, 1 to 7 strips.
    let sizes = [(1, 1, 1), (3, 1, 1), (1, 7, 1), (5, 3, 1), (97, 61, 1), (2001, 1, 1), (723, 362, 1), (1031, 768, 3)];
    for (w, h, strips) in sizes {
        for channels in [3, 4] {
            let (_, idat) = round_trip(&pattern(w, h, channels), w, h, channels);
            assert_eq!(idat, strips, "{w}x{h}x{channels}");
        }
    }
    assert_eq!(round_trip(&pattern(1, 600_000, 4), 1, 600_000, 4).1, 2);
    assert_eq!(round_trip(&photo(400, 300, 4), 400, 300, 4).1, 1);
}

#[test]
fn noise_is_stored_beside_compressed_strips() {
    // Noise: every strip stored (a Huffman block would be larger), the file barely over the raw size.
    for (w, h, channels, strips) in [(1031, 768, 3, 3), (600, 900, 4, 2)] {
        let (png, _) = round_trip(&noise(w * h * channels, 7), w, h, channels);
        let raw = h * (w * channels + 1);
        assert_eq!(block_types(&png), vec![0; strips]);
        assert!(png.len() < raw + raw / 1000 + 100, "{} bytes for {raw}", png.len());
    }
    // Pattern, noise, pattern (4 strips of 263 rows): stored strips between compressed ones.
    let (w, h) = (1000, 1050);
    let mut px = pattern(w, h, 3);
    px[w * 3 * 263..w * 3 * 789].copy_from_slice(&noise(w * 3 * 526, 9));
    let (png, _) = round_trip(&px, w, h, 3);
    assert_eq!(block_types(&png), [2, 0, 0, 2]);
}

#[test]
fn a_sample_that_misses_the_noise_falls_back_to_stored() {
    // The code made from the first row only, which is flat: it promises a tiny block (a bit a
    // byte), the noise below outgrows the stored size and the strip is stored after all.
    let (w, h) = (300, 97);
    let mut px = noise(w * h * 3, 11);
    px[..w * 3].fill(90);
    let png = write_sampled(&px, w as u32, h as u32, 3, h).unwrap();
    let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
    assert!(decoded.as_raw() == &px, "decoded pixels differ");
    assert_eq!(block_types(&png), [0]);
}

#[test]
fn chunks_are_the_image_crates() {
    for channels in [3, 4] {
        let px = photo(64, 48, channels);
        let kinds = |png: &[u8]| {
            let mut kinds: Vec<([u8; 4], Vec<u8>)> = chunks(png).into_iter().map(|(k, d)| (k, d.to_vec())).collect();
            kinds.dedup_by(|a, b| &a.0 == b"IDAT" && &b.0 == b"IDAT");
            kinds.into_iter().map(|(k, d)| (k, if &k == b"IDAT" { vec![] } else { d })).collect::<Vec<_>>()
        };
        let ours = kinds(&write(&px, 64, 48, channels).unwrap());
        assert_eq!(ours, kinds(&image_crate(&px, 64, 48, channels)));
        assert_eq!(ours.iter().map(|c| c.0).collect::<Vec<_>>(), [*b"IHDR", *b"IDAT", *b"IEND"]);
    }
}

#[test]
fn photo_size_is_within_10_percent_of_the_image_crate() {
    let (w, h) = (800, 700);
    for channels in [3, 4] {
        let px = photo(w, h, channels);
        let (ours, theirs) = (round_trip(&px, w, h, channels).0.len(), image_crate(&px, w, h, channels).len());
        let ratio = ours as f64 / theirs as f64;
        assert!((0.9..=1.1).contains(&ratio), "{channels} channels: {ours} vs {theirs} bytes ({ratio:.3})");
    }
}

#[test]
fn bad_input_is_an_error() {
    assert!(write(&[0; 12], 2, 2, 3).is_ok());
    assert!(write(&[0; 11], 2, 2, 3).is_err());
    assert!(write(&[], 0, 2, 3).is_err());
    assert!(write(&[0; 20], 2, 2, 5).is_err());
}

#[test]
fn adler32_combine_matches_one_pass() {
    assert_eq!(adler32(1, b""), 1);
    assert_eq!(adler32(1, b"Wikipedia"), 0x11e6_0398);
    let data = noise(300_000, 3);
    let whole = adler32(1, &data);
    // fdeflate's checksum (simd-adler32) in its zlib trailer agrees.
    let z = fdeflate::compress_to_vec(&data);
    assert_eq!(u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap()), whole);
    for cut in [0, 1, 5552, 65_520, 65_521, 65_522, 2 * 65_521 + 7, data.len() - 1, data.len()] {
        let (x, y) = data.split_at(cut);
        assert_eq!(adler32_combine(adler32(1, x), adler32(1, y), y.len() as u64), whole, "cut at {cut}");
    }
    let pieces = data.chunks(7919).fold(1, |a, c| adler32_combine(a, adler32(1, c), c.len() as u64));
    assert_eq!(pieces, whole);
    let ones = vec![0xffu8; 1 << 20];
    assert_eq!(adler32_combine(adler32(1, &data), adler32(1, &ones), ones.len() as u64), adler32(whole, &ones));
}

#[test]
fn paeth_predictor_is_the_specs() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            for c in 0..=255u8 {
                let p = i16::from(a) + i16::from(b) - i16::from(c);
                let (pa, pb, pc) = ((p - i16::from(a)).abs(), (p - i16::from(b)).abs(), (p - i16::from(c)).abs());
                let want = if pa <= pb && pa <= pc {
                    a
                } else if pb <= pc {
                    b
                } else {
                    c
                };
                assert_eq!(paeth_predictor(a, b, c), want, "{a} {b} {c}");
            }
        }
    }
}

/// CPU time of this process (all threads), ms.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// `cargo test --release --lib png_speed -- --ignored --nocapture`: wall and CPU ms to encode a
/// 12 MP photo-like RGB image with the image crate's Fast/Adaptive encoder and with this writer,
/// and the sizes; `PNG_SPEED_IMAGE=photo.png` measures that image as well. Medians of 7 (and
/// the best wall time: on a busy machine the second thread often gets no core).
#[test]
#[ignore]
fn png_speed() {
    let (w, h) = (4000, 3000);
    let mut cases = vec![("12 MP photo-like (join of L and ab)".to_string(), photo(w, h, 3), w, h)];
    if let Ok(path) = std::env::var("PNG_SPEED_IMAGE") {
        let img = image::open(&path).unwrap().to_rgb8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        cases.push((path, img.into_raw(), w, h));
    }
    println!("{} rayon threads", rayon::current_num_threads());
    // (median, best)
    let stats = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0])
    };
    for (name, px, w, h) in cases {
        let mut runs = [(vec![], vec![], 0), (vec![], vec![], 0)];
        for _ in 0..7 {
            for (i, (wall, cpu, bytes)) in runs.iter_mut().enumerate() {
                let (t, c) = (Instant::now(), cpu_ms());
                *bytes = if i == 0 { image_crate(&px, w, h, 3) } else { write(&px, w as u32, h as u32, 3).unwrap() }.len();
                wall.push(t.elapsed().as_secs_f64() * 1e3);
                cpu.push(cpu_ms() - c);
            }
        }
        let [(old_wall, old_cpu, old_bytes), (new_wall, new_cpu, new_bytes)] = runs;
        let ((old_wall, old_best), (new_wall, new_best)) = (stats(old_wall), stats(new_wall));
        println!(
            "{name}, {w}x{h} RGB:\n  image crate Fast/Adaptive: {old_wall:.1} ms (best {old_best:.1}; {:.1} ms CPU), {old_bytes} bytes\n  \
             strips: {new_wall:.1} ms (best {new_best:.1}; {:.1} ms CPU), {new_bytes} bytes\n  {:.2}x the speed, {:.3}x the size",
            stats(old_cpu).0,
            stats(new_cpu).0,
            old_wall / new_wall,
            new_bytes as f64 / old_bytes as f64
        );
    }
}

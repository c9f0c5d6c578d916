//! Hostile input against the live server: every case of the generated corpus gets its defined
//! answer (never a 500), and the server still answers normally afterwards.

mod common;
mod corpus;

use std::time::Duration;

use futures::StreamExt;

use common::*;
use corpus::{Body, Expect};
use image::GenericImageView;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_case_gets_its_defined_answer() {
    let max_body = corpus::MAX_BODY_BYTES.to_string();
    let max_pixels = corpus::MAX_PIXELS.to_string();
    let app = spawn(&["--max-body-bytes", &max_body, "--max-pixels", &max_pixels, "--max-decode-bytes", "268435456"]).await;
    let cases = corpus::corpus();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let url = app.url(&format!("/colorize{}", case.query));
        let req = match &case.body {
            Body::Raw { content_type, bytes } => {
                let mut r = app.client.post(&url).body(bytes.clone());
                if let Some(ct) = content_type {
                    r = r.header("content-type", *ct);
                }
                r
            }
            Body::Multipart { parts } => {
                let mut form = reqwest::multipart::Form::new();
                for (name, bytes) in parts {
                    form = form.part(*name, reqwest::multipart::Part::bytes(bytes.clone()).file_name("upload.bin"));
                }
                app.client.post(&url).multipart(form)
            }
        };
        let resp = req.send().await.unwrap_or_else(|e| panic!("{}: request failed: {e}", case.name));
        let status = resp.status().as_u16();
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = resp.bytes().await.unwrap();
        match &case.expect {
            Expect::Image { width, height, alpha } => {
                if status != 200 {
                    failures.push(format!("{}: expected 200, got {status}: {}", case.name, String::from_utf8_lossy(&bytes)));
                    continue;
                }
                let img = image::load_from_memory(&bytes).unwrap();
                if img.dimensions() != (*width, *height) {
                    failures.push(format!("{}: size {:?}, expected {width}x{height}", case.name, img.dimensions()));
                }
                if img.color().has_alpha() != *alpha {
                    failures.push(format!("{}: alpha {} expected {alpha}", case.name, img.color().has_alpha()));
                }
                if let Some(o) = case.name.strip_prefix("exif orientation ").and_then(|o| o.parse::<u16>().ok()) {
                    let l = img.to_luma8();
                    let (w, h) = l.dimensions();
                    let (right, bottom) = corpus::bright_corner(o);
                    let (x, y) = (if right { w * 3 / 4 } else { w / 4 }, if bottom { h * 3 / 4 } else { h / 4 });
                    if l.get_pixel(x, y).0[0] < 150 {
                        failures.push(format!("{}: the bright quadrant is not at ({x},{y})", case.name));
                    }
                }
            }
            Expect::Problem(code) => {
                if status != *code || ctype != "application/problem+json" {
                    failures.push(format!(
                        "{}: expected {code} problem+json, got {status} {ctype}: {}",
                        case.name,
                        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                    ));
                }
            }
        }
    }
    // The gray+alpha case keeps its alpha values.
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    // Still healthy, still colorizing.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    let resp = app.client.post(app.url("/colorize")).header("content-type", "image/png").body(gray_png(64, 64)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("status=\"500\""), "a 500 was answered");
    let peak = peak_rss_mib();
    assert!(peak < 2048.0, "peak RSS {peak:.0} MiB");
}

#[tokio::test]
async fn a_slow_body_over_the_limit_is_refused() {
    let app = spawn(&["--max-body-bytes", "100000"]).await;
    let chunks = futures::stream::iter(0..40).then(|_| async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        Ok::<_, std::io::Error>(vec![7u8; 10_000])
    });
    // No Content-Length: the server finds the body over the limit while reading it, drains the
    // rest, and only then answers, so that the client reads the 413.
    let resp =
        app.client.post(app.url("/colorize")).header("content-type", "image/png").body(reqwest::Body::wrap_stream(chunks)).send().await;
    expect_problem(resp.expect("the client reads the answer, not a reset"), 413).await;
    assert_eq!(
        app.client.post(app.url("/colorize")).header("content-type", "image/png").body(gray_png(32, 32)).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn gray_alpha_keeps_its_alpha() {
    let app = spawn(&[]).await;
    let img =
        image::DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_fn(40, 20, |x, y| image::LumaA([(x * 5) as u8, ((x + y) * 4) as u8])));
    let body = encode(&img, image::ImageFormat::Png);
    let resp = app.client.post(app.url("/colorize")).header("content-type", "image/png").body(body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let out = decode(&resp.bytes().await.unwrap()).to_rgba8();
    for (x, y, p) in out.enumerate_pixels() {
        assert_eq!(p.0[3], ((x + y) * 4) as u8);
    }
}

/// Writes the corpus's bodies as seeds for the fuzzer (`scripts/fuzz.sh` runs this with
/// FUZZ_SEEDS_DIR set); does nothing otherwise.
#[test]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("FUZZ_SEEDS_DIR") else { return };
    std::fs::create_dir_all(&dir).unwrap();
    for (i, case) in corpus::corpus().iter().enumerate() {
        if let Body::Raw { bytes, .. } = &case.body {
            if !bytes.is_empty() && bytes.len() < 1_000_000 {
                std::fs::write(std::path::Path::new(&dir).join(format!("seed-{i:02}")), bytes).unwrap();
            }
        }
    }
}

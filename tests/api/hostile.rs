//! Hostile input against the live server: every case of the generated corpus gets its defined
//! answer (never a 500), and the server still answers normally afterwards.

use std::time::Duration;

use futures::StreamExt;

use crate::corpus::{self, Body, Expect};
use crate::helpers::*;
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
    assert_eq!(app.get("/healthz").await.status(), 200);
    let resp = app.colorize_png(64, 64).await;
    assert_eq!(resp.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
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
    let resp = app.colorize_request("", "image/png", reqwest::Body::wrap_stream(chunks)).send().await;
    expect_problem(resp.expect("the client reads the answer, not a reset"), 413).await;
    assert_eq!(app.colorize_png(32, 32).await.status(), 200);
}

#[tokio::test]
async fn gray_alpha_keeps_its_alpha() {
    let app = spawn(&[]).await;
    let img =
        image::DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_fn(40, 20, |x, y| image::LumaA([(x * 5) as u8, ((x + y) * 4) as u8])));
    let body = encode(&img, image::ImageFormat::Png);
    let resp = app.post_image("", "image/png", body).await;
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

/// Opens a connection that sends a request's headers (declaring a 100 kB PNG body), then its
/// body one byte every 200 ms; returns what the server answers (empty if it only closes).
async fn trickle(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = "POST /colorize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n";
    if s.write_all(head.as_bytes()).await.is_err() {
        return String::new();
    }
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..100_000 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if w.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut answer)).await;
    writer.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Two hundred connections trickling their bodies hold neither the model's places nor its
/// sessions: a normal request is served meanwhile; each trickler gets 408 at the body timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_bodies_do_not_stop_normal_requests() {
    let app = spawn(&["--body-timeout-ms", "4000", "--pool-size", "2", "--queue", "4"]).await;
    let started = std::time::Instant::now();
    let tricklers: Vec<_> = (0..200).map(|_| tokio::spawn(trickle(app.addr))).collect();
    while metric(&app, "colorizer_open_connections").await.unwrap_or(0.0) < 200.0 {
        assert!(started.elapsed() < Duration::from_secs(3), "the tricklers did not all connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = app.colorize_png(64, 64).await;
    assert_eq!(resp.status(), 200);
    let served = started.elapsed();
    let mut answered = 0;
    for t in tricklers {
        let answer = t.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "a trickler got: {answer:.200}");
        assert!(answer.contains("body-timeout") && answer.to_ascii_lowercase().contains("connection: close"), "{answer:.400}");
        answered += 1;
    }
    let timed_out = started.elapsed();
    eprintln!("200 trickling connections: a normal request served after {served:?}; the tricklers answered 408 by {timed_out:?}");
    assert_eq!(answered, 200);
    assert!(served < timed_out / 2, "the normal request ({served:?}) must not wait for the tricklers' timeout ({timed_out:?})");
    assert_eq!(app.state.budget.reserved(), 0);
}

/// Past `--max-connections`, new connections wait until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_for_a_free_one() {
    let app = spawn(&["--body-timeout-ms", "2000", "--max-connections", "8"]).await;
    let started = std::time::Instant::now();
    let tricklers: Vec<_> = (0..8).map(|_| tokio::spawn(trickle(app.addr))).collect();
    while app.state.metrics.open_connections.get() < 8 {
        assert!(started.elapsed() < Duration::from_secs(3), "the tricklers did not all connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A ninth connection is not served while the eight are open...
    let resp = app.colorize_png(32, 32).await;
    let served = started.elapsed();
    assert_eq!(resp.status(), 200);
    // ...only once their body timeout has closed them.
    assert!(served >= Duration::from_millis(1900), "served after {served:?}, before a connection was free");
    for t in tricklers {
        assert!(t.await.unwrap().starts_with("HTTP/1.1 408"));
    }
    assert!(app.state.metrics.open_connections.get() <= 8);
}

//! Test helpers: the service spawned in-process on a random port ([`TestApp`], with request
//! helpers), test images, and checks of problem answers and metrics.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use colorizer::config::{Cli, ServeArgs};
use colorizer::http::AppState;
use colorizer::startup::{Application, Stopped};
use image::{DynamicImage, GrayImage, ImageFormat, Luma, RgbImage};
use tokio::sync::oneshot;

pub const FIXTURE: &str = "fixture=tests/fixtures/untrained-colorizer.onnx";
pub const FIXTURE_L2: &str = "l2fixture=tests/fixtures/untrained-l2.onnx";

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<tokio::task::JoinHandle<Stopped>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `POST /colorize{query}` with `body` as the raw image of type `ctype`, unsent (to add
    /// headers or a timeout).
    pub fn colorize_request(&self, query: &str, ctype: &str, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        self.client.post(self.url(&format!("/colorize{query}"))).header(reqwest::header::CONTENT_TYPE, ctype).body(body)
    }

    /// `POST /colorize{query}` with `body` as the raw image of type `ctype`.
    pub async fn post_image(&self, query: &str, ctype: &str, body: Vec<u8>) -> reqwest::Response {
        self.colorize_request(query, ctype, body).send().await.unwrap()
    }

    /// `POST /colorize` with a gray PNG of `width` x `height`.
    pub async fn colorize_png(&self, width: u32, height: u32) -> reqwest::Response {
        self.post_image("", "image/png", gray_png(width, height)).await
    }

    /// Sends the shutdown signal (as SIGTERM would) and waits for the drain.
    pub async fn stop(mut self) -> Stopped {
        let _ = self.shutdown.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap()
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn args(extra: &[&str]) -> ServeArgs {
    let mut argv = vec!["colorizer", "--host", "127.0.0.1", "--port", "0", "--no-embedded-models", "--model", FIXTURE];
    argv.extend_from_slice(extra);
    Cli::parse_from(argv).serve
}

/// Spawns the app with the untrained fixture model plus `extra` flags; `warm` waits for readiness.
/// With `TEST_LOG=1` the service logs to stderr (all the tests' services, interleaved).
pub async fn spawn_with(extra: &[&str], warm: bool) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some_and(|v| !v.is_empty() && v != "0") {
        colorizer::startup::init_tracing(false);
    }
    let args = args(extra);
    let app = Application::build(&args, Instant::now()).await.expect("service builds");
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, state) = (app.addr(), app.state().clone());
    if warm {
        app.spawn_warm_up().await.unwrap();
        assert!(state.is_ready());
    }
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        state,
        client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

pub async fn spawn(extra: &[&str]) -> TestApp {
    spawn_with(extra, true).await
}

/// A gray "photo": a bright gradient sky over dark, textured ground.
pub fn gray_scene(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let horizon = h * 3 / 5;
        if y < horizon {
            Luma([(230.0 - 90.0 * y as f32 / horizon as f32) as u8])
        } else {
            let t = ((x * 7 + y * 13) % 17) as f32;
            Luma([(40.0 + t * 2.0 + 20.0 * ((x as f32 / 9.0).sin())) as u8])
        }
    })
}

pub fn encode(img: &DynamicImage, fmt: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, fmt).unwrap();
    buf.into_inner()
}

pub fn gray_png(w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageLuma8(gray_scene(w, h)), ImageFormat::Png)
}

pub fn gray_jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageLuma8(gray_scene(w, h)), ImageFormat::Jpeg)
}

/// Mean chroma sqrt(a^2 + b^2) of an RGB image.
pub fn mean_chroma(img: &RgbImage) -> f32 {
    let n = (img.width() * img.height()) as f32;
    img.pixels()
        .map(|p| {
            let lab = colorizer::color::srgb8_to_lab(p.0);
            (lab[1] * lab[1] + lab[2] * lab[2]).sqrt()
        })
        .sum::<f32>()
        / n
}

/// Largest |L(a) - L(b)| over the pixels of two same-size images.
pub fn max_l_diff(gray: &GrayImage, rgb: &RgbImage) -> f32 {
    gray.pixels()
        .zip(rgb.pixels())
        .map(|(g, c)| (colorizer::color::srgb_to_l([g.0[0]; 3]) - colorizer::color::srgb_to_l(c.0)).abs())
        .fold(0.0, f32::max)
}

/// Mean |L(a) - L(b)| over the pixels of two same-size images.
pub fn mean_l_diff(gray: &GrayImage, rgb: &RgbImage) -> f32 {
    let sum: f32 = gray
        .pixels()
        .zip(rgb.pixels())
        .map(|(g, c)| (colorizer::color::srgb_to_l([g.0[0]; 3]) - colorizer::color::srgb_to_l(c.0)).abs())
        .sum();
    sum / (gray.width() * gray.height()) as f32
}

pub fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("answer is a decodable image")
}

/// Checks a problem+json answer and returns its body.
pub async fn expect_problem(resp: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ctype = resp.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    assert_eq!(ctype, "application/problem+json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    for k in ["type", "title", "detail"] {
        assert!(body[k].as_str().is_some_and(|s| !s.is_empty()), "problem has {k}: {body}");
    }
    body
}

/// The value of one sample of the live `/metrics` (`name` with its labels as rendered, e.g.
/// `colorizer_queue_depth{model="fixture"}`); None when absent.
pub async fn metric(app: &TestApp, sample: &str) -> Option<f64> {
    metric_at(&app.client, &app.base(), sample).await
}

/// `metric` of a service at `base` (one started as a child process).
pub async fn metric_at(client: &reqwest::Client, base: &str, sample: &str) -> Option<f64> {
    let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

/// A baseline gray JPEG of `width` x `height` (multiples of 8) with photo-like texture, written
/// directly (small custom Huffman tables, random-walk DC, a few AC coefficients per block) so
/// that a 48-megapixel test image takes a fraction of a second to make even in a debug build
/// (about 22 bits per 8x8 block: 48 MP is about 2 MB, like a photo at moderate quality).
pub fn big_jpeg(width: u16, height: u16) -> Vec<u8> {
    assert!(width.is_multiple_of(8) && height.is_multiple_of(8));
    let mut out = vec![0xFF, 0xD8];
    let segment = |out: &mut Vec<u8>, marker: u8, body: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(body);
    };
    // Quantisation: 4 everywhere.
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[4u8; 64]);
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.extend_from_slice(&[1, 1, 0x11, 0]);
    segment(&mut out, 0xC0, &sof);
    // DC table: categories 0, 1, 2 as 00, 01, 10. AC table: EOB, (0,1), (0,2) as 00, 01, 10.
    let table = |class_id: u8, symbols: [u8; 3]| {
        let mut t = vec![class_id, 0, 3];
        t.extend_from_slice(&[0u8; 14]);
        t.extend_from_slice(&symbols);
        t
    };
    segment(&mut out, 0xC4, &table(0x00, [0, 1, 2]));
    segment(&mut out, 0xC4, &table(0x10, [0x00, 0x01, 0x02]));
    segment(&mut out, 0xDA, &[1, 1, 0x00, 0, 63, 0]);
    let mut bits = BitWriter::default();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut dc = 0i32;
    for _ in 0..(width as usize / 8) * (height as usize / 8) {
        let r = next();
        // DC: a bounded random walk (diff -1, 0, +1, or +-2 now and then).
        let step = match r % 8 {
            0 | 1 => -1,
            2 | 3 => 1,
            4 => 2,
            5 => -2,
            _ => 0,
        };
        let step = if (dc + step).abs() > 120 { -step } else { step };
        dc += step;
        match step {
            0 => bits.put(0b00, 2),
            1 | -1 => {
                bits.put(0b01, 2);
                bits.put((step > 0) as u32, 1);
            }
            _ => {
                bits.put(0b10, 2);
                bits.put(if step > 0 { 0b10 } else { 0b01 }, 2);
            }
        }
        // AC: up to 7 coefficients of size 1 or 2, then EOB.
        for k in 0..(r >> 8) % 8 {
            if (r >> (16 + k)) & 1 == 0 {
                bits.put(0b01, 2);
                bits.put(((r >> (24 + k)) & 1) as u32, 1);
            } else {
                bits.put(0b10, 2);
                bits.put(((r >> (32 + 2 * k)) & 3) as u32, 2);
            }
        }
        bits.put(0b00, 2);
    }
    out.extend_from_slice(&bits.finish());
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, len: u32) {
        self.acc = (self.acc << len) | (value & ((1 << len) - 1));
        self.n += len;
        while self.n >= 8 {
            let byte = (self.acc >> (self.n - 8)) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0);
            }
            self.n -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put((1 << pad) - 1, pad);
        }
        self.out
    }
}

/// A fresh folder under the system's temp folder (`colorizer-NAME-PID`), removed with all it
/// holds when the guard is dropped, also when the test fails: tests leave nothing behind.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("colorizer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

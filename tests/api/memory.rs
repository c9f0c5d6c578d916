//! The memory budget: requests reserve what their image will cost (from its header) before
//! decoding; 503 + Retry-After when it does not fit now, 422 when it never can; the reservation
//! is given back however the request ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::*;
use colorizer::config::OutputFormat;
use colorizer::pipeline::{self, Limits};

/// What the service reserves for `body` colorized as PNG by the fixture model.
fn cost_of(app: &TestApp, body: &[u8]) -> u64 {
    let header = pipeline::probe(body, &Limits::default()).unwrap();
    let engine = app.state.models.get(None).unwrap();
    let (h, w) = engine.input_size_for(header.width, header.height);
    pipeline::memory_cost(&header, OutputFormat::Png, body.len(), engine.model_bytes(h, w))
}

async fn post_owned(client: reqwest::Client, url: String, body: Vec<u8>) -> reqwest::Result<reqwest::Response> {
    client.post(url).header("content-type", "image/png").body(body).send().await
}

async fn post(app: &TestApp, body: Vec<u8>, fault: Option<&str>) -> reqwest::Response {
    let mut req = app.colorize_request("", "image/png", body);
    if let Some(f) = fault {
        req = req.header("x-colorizer-fault", f);
    }
    req.send().await.unwrap()
}

/// Waits until nothing is reserved (a response body keeps its reservation until hyper has sent it).
async fn wait_for_nothing_reserved(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.state.budget.reserved() != 0 {
        assert!(Instant::now() < deadline, "{} bytes still reserved", app.state.budget.reserved());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_reserved(app: &TestApp, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.budget.reserved() < at_least {
        assert!(Instant::now() < deadline, "reserved {} < {at_least}", app.state.budget.reserved());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_does_not_fit_now_gets_503_and_what_never_fits_gets_422() {
    let body = gray_png(64, 64);
    let slow = |app: &TestApp| {
        let (client, url, body) = (app.client.clone(), app.url("/colorize"), body.clone());
        tokio::spawn(async move {
            client.post(url).header("content-type", "image/png").header("x-colorizer-fault", "slow").body(body).send().await
        })
    };
    let probe_app = spawn(&[]).await;
    let cost = cost_of(&probe_app, &body);
    // A request reserves its body while it is queued and what the image will cost once a worker
    // takes it: one holds the only worker for 2 s, a second waits with its body reserved.
    let budget = (cost * 5 / 2).to_string();
    let app = spawn(&["--pool-size", "1", "--fault-injection", "--memory-budget", &budget]).await;
    assert_eq!(metric(&app, "colorizer_memory_budget_bytes").await, Some(budget.parse::<f64>().unwrap()));
    let queue = app.state.models.queue(None).unwrap().clone();
    let a = slow(&app);
    wait_for_reserved(&app, cost).await;
    while queue.sessions_in_use() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = tokio::spawn(post_owned(app.client.clone(), app.url("/colorize"), body.clone()));
    while queue.queue_depth() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.state.budget.reserved(), cost + body.len() as u64, "the queued request holds its body only");
    assert_eq!(metric(&app, "colorizer_memory_reserved_bytes").await, Some((cost + body.len() as u64) as f64));
    for t in [a, b] {
        let resp = t.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    wait_for_nothing_reserved(&app).await;

    // Room for one such request, not two: with one on a worker, a second on the other worker
    // does not fit now.
    let budget = (cost * 3 / 2).to_string();
    let app = spawn(&["--pool-size", "2", "--fault-injection", "--memory-budget", &budget]).await;
    let a = slow(&app);
    wait_for_reserved(&app, cost).await;
    let c = post(&app, body.clone(), None).await;
    assert!(c.headers().get("retry-after").is_some());
    let p = expect_problem(c, 503).await;
    assert!(p["detail"].as_str().unwrap().contains("memory"), "{p}");
    assert_eq!(metric(&app, "colorizer_rejected_total{reason=\"memory\"}").await, Some(1.0));
    let resp = a.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    // Everything is given back, and the second now fits.
    wait_for_nothing_reserved(&app).await;
    let resp = post(&app, body.clone(), None).await;
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    wait_for_nothing_reserved(&app).await;

    // An image that alone is over the whole budget can never be admitted: 422, saying why.
    let app = spawn(&["--memory-budget", &(cost - 1).to_string()]).await;
    let p = expect_problem(post(&app, body.clone(), None).await, 422).await;
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("memory budget") && detail.contains("64x64"), "{detail}");
    // JPEG output needs less: it fits.
    let resp = app.post_image("?format=jpeg", "image/png", body).await;
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    wait_for_nothing_reserved(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_are_given_back_when_clients_give_up() {
    let app = spawn(&["--pool-size", "1", "--fault-injection"]).await;
    let slow = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/colorize"));
        async move {
            client.post(url).header("content-type", "image/png").header("x-colorizer-fault", "slow").body(gray_png(64, 64)).send().await
        }
    });
    let queue = app.state.models.queue(None).unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue.sessions_in_use() == 0 {
        assert!(Instant::now() < deadline, "the slow request did not take the session");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let quitters: Vec<_> = (0..4)
        .map(|_| {
            let req = app.colorize_request("", "image/png", gray_png(48, 48)).timeout(Duration::from_millis(400));
            tokio::spawn(req.send())
        })
        .collect();
    for q in quitters {
        assert!(q.await.unwrap().is_err());
    }
    let resp = slow.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    wait_for_nothing_reserved(&app).await;
}

#[tokio::test]
async fn the_budget_is_shown_in_info_and_parsed_with_units() {
    let app = spawn(&["--memory-budget", "512MiB"]).await;
    let info: serde_json::Value = app.get("/info").await.json().await.unwrap();
    assert_eq!(info["memory_budget_bytes"], 512 * 1024 * 1024);
    assert!(info["memory_budget_source"].as_str().unwrap().contains("--memory-budget"));
    // The default comes from this machine: a container limit, else RAM.
    let app = spawn(&[]).await;
    let info: serde_json::Value = app.get("/info").await.json().await.unwrap();
    assert!(info["memory_budget_bytes"].as_u64().unwrap() >= 16 << 20, "{info}");
    let source = info["memory_budget_source"].as_str().unwrap();
    assert!(source.contains("container memory limit") || source.contains("RAM"), "{source}");
    // Bad values are refused at start.
    use clap::Parser;
    for bad in ["lots", "1m", "100"] {
        let argv = ["colorizer", "--memory-budget", bad];
        assert!(colorizer::config::Cli::try_parse_from(argv).is_err(), "{bad} accepted");
    }
}

#[test]
fn the_big_test_jpeg_is_a_real_jpeg() {
    let jpeg = big_jpeg(640, 480);
    assert!(pipeline::jpeg_is_complete(&jpeg));
    let img = image::load_from_memory(&jpeg).unwrap().to_luma8();
    assert_eq!(img.dimensions(), (640, 480));
    // Textured, not flat.
    let (min, max) = img.pixels().fold((255u8, 0u8), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])));
    assert!(max - min > 40, "{min}..{max}");
}

/// What a burst of concurrent uploads against a fresh release server did.
struct Burst {
    statuses: std::collections::BTreeMap<u16, usize>,
    /// RSS after warm-up, before the burst, and the peak (VmHWM), in MiB.
    rest_mib: f64,
    peak_mib: f64,
    budget: u64,
    max_reserved: u64,
    wall: Duration,
}

fn proc_status_kib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0.0)
}

fn release_bin() -> String {
    let bin = std::env::var("COLORIZER_BIN").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/colorizer").into());
    assert!(std::path::Path::new(&bin).exists(), "{bin} missing: cargo build --release, or set COLORIZER_BIN");
    bin
}

/// Starts `bin serve` with its default settings plus `extra` (the embedded models, as deployed),
/// sends `clients` concurrent uploads of `body`, and measures.
async fn burst(bin: &str, extra: &[&str], clients: usize, body: &[u8]) -> Burst {
    burst_as(bin, extra, clients, body, "png").await
}

/// `burst` asking for `format` output.
async fn burst_as(bin: &str, extra: &[&str], clients: usize, body: &[u8], format: &str) -> Burst {
    use std::process::{Command, Stdio};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(bin)
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ready_by = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{base}/readyz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < ready_by, "the service did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let info: serde_json::Value = client.get(format!("{base}/info")).send().await.unwrap().json().await.unwrap();
    let budget = info["memory_budget_bytes"].as_u64().unwrap();
    let rest_mib = proc_status_kib(pid, "VmRSS:") / 1024.0;
    let body = bytes::Bytes::copy_from_slice(body);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, body) = (client.clone(), format!("{base}/colorize?format={format}"), body.clone());
            tokio::spawn(async move {
                let resp = client.post(url).header("content-type", "application/octet-stream").body(body).send().await.expect("an answer");
                let status = resp.status().as_u16();
                let retry = resp.headers().contains_key("retry-after");
                let _ = resp.bytes().await;
                assert!(status != 503 || retry, "503 without Retry-After");
                status
            })
        })
        .collect();
    // Sample the reserved bytes while the burst runs.
    let max_reserved = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (client, url, max, stop) = (client.clone(), format!("{base}/metrics"), max_reserved.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                if let Ok(r) = client.get(&url).send().await {
                    let text = r.text().await.unwrap_or_default();
                    let v = text
                        .lines()
                        .find_map(|l| l.strip_prefix("colorizer_memory_reserved_bytes "))
                        .and_then(|v| v.trim().parse::<f64>().ok());
                    max.fetch_max(v.unwrap_or(0.0) as u64, Ordering::AcqRel);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    let wall = started.elapsed();
    stop.store(true, Ordering::Release);
    sampler.await.unwrap();
    let max_reserved = max_reserved.load(Ordering::Acquire);
    let peak_mib = proc_status_kib(pid, "VmHWM:") / 1024.0;
    let _ = child.kill();
    let _ = child.wait();
    Burst { statuses, rest_mib, peak_mib, budget, max_reserved, wall }
}

impl Burst {
    fn row(&self, clients: usize, setting: &str) -> String {
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{n} x {s}")).collect();
        format!(
            "| {clients} | {setting} | {} | {:.0} | {:.0} | {} | {} | {:.1} |",
            colorizer::admission::human_bytes(self.budget),
            self.rest_mib,
            self.peak_mib,
            colorizer::admission::human_bytes(self.max_reserved),
            statuses.join(", "),
            self.wall.as_secs_f64()
        )
    }
}

const TABLE_HEAD: &str = "| clients | setting | budget | RSS at rest (MiB) | peak RSS (MiB) | most reserved | answers | wall (s) |\n| --- | --- | --- | --- | --- | --- | --- | --- |";

/// The bar: 18 concurrent uploads of a 48-megapixel JPEG, with the default settings and
/// under a 1 GiB budget, keep the release server's peak RSS under 2 GiB and every answer is 200
/// or 503 (+ Retry-After). Needs the release binary: `scripts/test.sh` part `memory` runs it, or
/// `cargo build --release && cargo test --test api memory::eighteen -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the release binary: scripts/test.sh part memory"]
async fn eighteen_48_megapixel_uploads_stay_under_2_gib() {
    let bin = release_bin();
    let jpeg = big_jpeg(8000, 6000);
    println!("{TABLE_HEAD}");
    for (setting, extra) in [("default", &[][..]), ("--memory-budget 1GiB", &["--memory-budget", "1GiB"][..])] {
        let b = burst(&bin, extra, 18, &jpeg).await;
        println!("{}", b.row(18, setting));
        let other: Vec<_> = b.statuses.keys().filter(|s| **s != 200 && **s != 503).collect();
        assert!(other.is_empty(), "{setting}: answers other than 200/503: {:?}", b.statuses);
        assert!(b.statuses.get(&200).copied().unwrap_or(0) >= 1, "{setting}: nothing colorized: {:?}", b.statuses);
        assert!(b.max_reserved <= b.budget, "{setting}: reserved {} over the budget {}", b.max_reserved, b.budget);
        // The process at rest plus the budget, with room for what the estimate leaves out
        // (allocator slack, ONNX Runtime's buffers) but far from the 4+ GiB of no budget.
        let bound = b.rest_mib + b.budget as f64 / 1048576.0 * 1.25;
        assert!(b.peak_mib <= bound, "{setting}: peak {:.0} MiB over rest + budget ({bound:.0} MiB)", b.peak_mib);
        if b.budget <= 3 << 29 {
            assert!(b.peak_mib < 2048.0, "{setting}: peak RSS {:.0} MiB", b.peak_mib);
        } else {
            println!(
                "(the default budget here is {}: the 2 GiB bound applies to budgets up to 1.5 GiB)",
                colorizer::admission::human_bytes(b.budget)
            );
        }
    }
}

/// The figures of docs/reliability/MEMORY.md: 18 and 64 concurrent 48 MP uploads per budget,
/// and, for 18, with the budget out of the way (1 TiB) for comparison (64 clients get the same
/// 18 places then; it takes several GiB).
/// `cargo build --release && cargo test --test api memory::figures -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "measurement for the docs: several minutes with the release binary"]
async fn figures() {
    let bin = release_bin();
    // One request at a time: what the service reserved (its estimate) against what it used.
    let rgba = {
        let (w, h) = (4000u32, 3000u32);
        let pixels: Vec<u8> = (0..w * h).flat_map(|i| [(i % 251) as u8, (i / w % 239) as u8, 90, (i % 7 * 30) as u8]).collect();
        let mut out = Vec::new();
        let mut e = png::Encoder::new(&mut out, w, h);
        e.set_color(png::ColorType::Rgba);
        e.set_compression(png::Compression::Fast);
        e.write_header().unwrap().write_image_data(&pixels).unwrap();
        out
    };
    println!("| input | output | peak - rest (MiB) | reserved (MiB) | measured bytes/pixel (without the body) |\n| --- | --- | --- | --- | --- |");
    for (name, body, mp) in
        [("gray JPEG 12 MP", big_jpeg(4000, 3000), 12.0), ("gray JPEG 48 MP", big_jpeg(8000, 6000), 48.0), ("RGBA PNG 12 MP", rgba, 12.0)]
    {
        for format in ["png", "jpeg", "webp"] {
            if name.starts_with("RGBA") && format == "jpeg" {
                continue;
            }
            let b = burst_as(&bin, &["--memory-budget", "4GiB", "--max-body-bytes", "100000000"], 1, &body, format).await;
            let used = b.peak_mib - b.rest_mib;
            let per_px = (used * 1048576.0 - body.len() as f64) / (mp * 1e6);
            println!(
                "| {name} ({} MB) | {format} | {used:.0} | {:.0} | {per_px:.1} |",
                body.len() / 1_000_000,
                b.max_reserved as f64 / 1048576.0
            );
        }
    }
    let jpeg = big_jpeg(8000, 6000);
    println!("\n48 MP JPEG: {} bytes", jpeg.len());
    println!("{TABLE_HEAD}");
    for clients in [18, 64] {
        for (setting, extra) in [
            ("default", &[][..]),
            ("--memory-budget 512MiB", &["--memory-budget", "512MiB"][..]),
            ("--memory-budget 1GiB", &["--memory-budget", "1GiB"][..]),
            ("--memory-budget 2GiB", &["--memory-budget", "2GiB"][..]),
            ("--memory-budget 1TiB (no budget)", &["--memory-budget", "1TiB"][..]),
        ] {
            if clients > 18 && setting.contains("no budget") {
                continue;
            }
            println!("{}", burst(&bin, extra, clients, &jpeg).await.row(clients, setting));
        }
    }
}

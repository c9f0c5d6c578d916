//! The memory budget: requests reserve what their image will cost (from its header) before
//! decoding; 503 + Retry-After when it does not fit now, 422 when it never can; the reservation
//! is given back however the request ends.

mod common;

use std::time::{Duration, Instant};

use colorizer::config::OutputFormat;
use colorizer::pipeline::{self, Limits};
use common::*;

/// What the service reserves for `body` colorized as PNG by the fixture model.
fn cost_of(app: &TestApp, body: &[u8]) -> u64 {
    let header = pipeline::probe(body, &Limits::default()).unwrap();
    let engine = app.state.models.get(None).unwrap();
    let (h, w) = engine.input_size_for(header.width, header.height);
    pipeline::memory_cost(&header, OutputFormat::Png, body.len(), h as u64 * w as u64)
}

async fn post(app: &TestApp, body: Vec<u8>, fault: Option<&str>) -> reqwest::Response {
    let mut req = app.client.post(app.url("/colorize")).header("content-type", "image/png");
    if let Some(f) = fault {
        req = req.header("x-colorizer-fault", f);
    }
    req.body(body).send().await.unwrap()
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
    // Room for two such requests, not three.
    let probe_app = spawn(&[]).await;
    let cost = cost_of(&probe_app, &body);
    let budget = (cost * 5 / 2).to_string();
    let app = spawn(&["--pool-size", "1", "--fault-injection", "--memory-budget", &budget]).await;
    assert_eq!(metric(&app, "colorizer_memory_budget_bytes").await, Some(budget.parse::<f64>().unwrap()));
    // One holds the only session for 2 s, a second waits for it: both hold their reservation.
    let a = tokio::spawn({
        let (client, url, body) = (app.client.clone(), app.url("/colorize"), body.clone());
        async move { client.post(url).header("content-type", "image/png").header("x-colorizer-fault", "slow").body(body).send().await }
    });
    wait_for_reserved(&app, cost).await;
    let b = tokio::spawn({
        let (client, url, body) = (app.client.clone(), app.url("/colorize"), body.clone());
        async move { client.post(url).header("content-type", "image/png").body(body).send().await }
    });
    wait_for_reserved(&app, 2 * cost).await;
    assert_eq!(metric(&app, "colorizer_memory_reserved_bytes").await, Some((2 * cost) as f64));
    // A third does not fit now.
    let c = post(&app, body.clone(), None).await;
    assert!(c.headers().get("retry-after").is_some());
    let p = expect_problem(c, 503).await;
    assert!(p["detail"].as_str().unwrap().contains("memory"), "{p}");
    assert_eq!(metric(&app, "colorizer_rejected_total{reason=\"memory\"}").await, Some(1.0));
    for t in [a, b] {
        let resp = t.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    // Everything is given back, and the third now fits.
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
    let resp = app.client.post(app.url("/colorize?format=jpeg")).header("content-type", "image/png").body(body).send().await.unwrap();
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
    wait_for_reserved(&app, 1).await;
    let quitters: Vec<_> = (0..4)
        .map(|_| {
            let req = app.client.post(app.url("/colorize")).header("content-type", "image/png").timeout(Duration::from_millis(400));
            tokio::spawn(req.body(gray_png(48, 48)).send())
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
    let info: serde_json::Value = app.client.get(app.url("/info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["memory_budget_bytes"], 512 * 1024 * 1024);
    assert!(info["memory_budget_source"].as_str().unwrap().contains("--memory-budget"));
    // The default comes from this machine: a container limit, else RAM.
    let app = spawn(&[]).await;
    let info: serde_json::Value = app.client.get(app.url("/info")).send().await.unwrap().json().await.unwrap();
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

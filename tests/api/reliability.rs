//! Overload, deadlines, panics and graceful shutdown.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;
use image::GenericImageView;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_against_a_pool_of_two() {
    // The deadline leaves room for the six admitted requests on a busy 2-core machine with a
    // debug build (about 0.25 s of CPU each); what is tested is that every request is answered.
    let app = spawn(&["--pool-size", "2", "--queue", "4", "--deadline-ms", "10000"]).await;
    let body = gray_png(320, 240);
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, url, body) = (app.client.clone(), app.url("/colorize"), body.clone());
            tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .header("content-type", "image/png")
                    .body(body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .expect("no request hangs or is dropped");
                let status = resp.status().as_u16();
                let retry = resp.headers().get("retry-after").is_some();
                let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
                (status, retry, ctype, resp.bytes().await.unwrap())
            })
        })
        .collect();
    let (mut ok, mut overloaded, mut late) = (0, 0, 0);
    for t in tasks {
        let (status, retry, ctype, bytes) = t.await.unwrap();
        match status {
            200 => {
                assert_eq!(image::load_from_memory(&bytes).unwrap().dimensions(), (320, 240));
                ok += 1;
            }
            503 => {
                assert!(retry && ctype == "application/problem+json");
                overloaded += 1;
            }
            504 => {
                assert_eq!(ctype, "application/problem+json");
                late += 1;
            }
            s => panic!("unexpected status {s}: {}", String::from_utf8_lossy(&bytes)),
        }
    }
    assert_eq!(ok + overloaded + late, 64);
    assert!(ok >= 2, "ok {ok}");
    assert!(overloaded >= 1, "with 64 clients and room for 6, some must be refused");
    eprintln!("64 clients: {ok} ok, {overloaded} overloaded, {late} past deadline, in {:?}", started.elapsed());
    // Afterwards the pool is whole: two at once both succeed.
    let (a, b) = tokio::join!(
        app.colorize_request("", "image/png", gray_png(64, 64)).send(),
        app.colorize_request("", "image/png", gray_png(64, 64)).send()
    );
    assert_eq!((a.unwrap().status().as_u16(), b.unwrap().status().as_u16()), (200, 200));
}

async fn post_with_fault(app: &TestApp) -> reqwest::Response {
    app.colorize_request("", "image/png", gray_png(32, 32)).header("x-colorizer-fault", "panic").send().await.unwrap()
}

#[tokio::test]
async fn a_panic_fails_one_request_only() {
    let app = spawn(&["--fault-injection"]).await;
    let resp = post_with_fault(&app).await;
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let p = expect_problem(resp, 500).await;
    assert!(p["type"].as_str().unwrap().ends_with("internal"));
    // A generic detail and the request id; the cause stays in the log.
    assert_eq!(p["request_id"], id.as_str());
    assert_eq!(p["detail"], colorizer::http::problem::INTERNAL_DETAIL);
    // Counted as the 500 it was, not as a request its client gave up on.
    assert_eq!(metric(&app, "colorizer_http_requests_total{route=\"/colorize\",status=\"500\"}").await, Some(1.0));
    let reqs = (0..4).map(|_| app.colorize_request("", "image/png", gray_png(48, 48)).send());
    for r in futures::future::join_all(reqs).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    // Without the setting, the header does nothing.
    assert_eq!(post_with_fault(&spawn(&[]).await).await.status(), 200);
}

#[tokio::test]
async fn shutdown_makes_readiness_fail_at_once_and_drains() {
    let mut app = spawn(&["--pool-size", "1"]).await;
    let body = gray_png(900, 700);
    let inflight: Vec<_> = (0..3).map(|_| app.colorize_request("", "image/png", body.clone()).send()).collect();
    let all = tokio::spawn(futures::future::join_all(inflight));
    // All three past their body (each either waiting for the session or already started) before
    // the shutdown, however busy the machine.
    let (engine, queue) = (app.state.models.get(None).unwrap().clone(), app.state.models.queue(None).unwrap().clone());
    let runs_before = engine.runs();
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue.queue_depth() as u64 + (engine.runs() - runs_before) < 3 {
        assert!(Instant::now() < deadline, "the three requests did not reach the model");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.trigger_shutdown();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!app.state.is_ready(), "readiness must go at once");
    for r in all.await.unwrap() {
        let r = r.expect("accepted requests finish");
        assert_eq!(r.status(), 200);
        assert_eq!(image::load_from_memory(&r.bytes().await.unwrap()).unwrap().dimensions(), (900, 700));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_exits_zero() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (mut child, client, base) = start_service(port, &["--pool-size", "2", "--queue", "16"], &[]).await;
    let body = gray_png(800, 600);
    let reqs: Vec<_> = (0..8)
        .map(|_| {
            let (c, u, b) = (client.clone(), format!("{base}/colorize"), body.clone());
            tokio::spawn(async move { c.post(u).header("content-type", "image/png").body(b).send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    for r in reqs {
        let r = r.await.unwrap().expect("a request accepted before SIGTERM gets its answer");
        assert_eq!(r.status(), 200);
        assert_eq!(image::load_from_memory(&r.bytes().await.unwrap()).unwrap().dimensions(), (800, 600));
    }
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(client.get(format!("{base}/healthz")).send().await.is_err(), "no longer listening");
}

/// A request still running when the drain timeout passes: serving ends saying so, and the
/// process exits non-zero (an orchestrator sees that the shutdown cut work short).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_times_out_is_reported_and_exits_non_zero() {
    let flags = ["--pool-size", "1", "--fault-injection", "--drain-timeout-s", "0"];
    let slow = |client: &reqwest::Client, url: String| {
        let req = client.post(url).header("content-type", "image/png").header("x-colorizer-fault", "slow");
        tokio::spawn(req.body(gray_png(64, 64)).send())
    };
    // In process: run_until says the drain timed out.
    let app = spawn(&flags).await;
    let queue = app.state.models.queue(None).unwrap().clone();
    let _slow = slow(&app.client, app.url("/colorize"));
    let waiting = Instant::now();
    while queue.sessions_in_use() == 0 {
        assert!(waiting.elapsed() < Duration::from_secs(10), "the slow request did not take the session");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.stop().await, colorizer::startup::Stopped::DrainTimedOut);
    // The binary: SIGTERM with the slow request in flight, exit status non-zero.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (mut child, client, base) = start_service(port, &flags, &[]).await;
    let _slow = slow(&client, format!("{base}/colorize"));
    let waiting = Instant::now();
    // In flight: the slow request and this scrape.
    while metric_at(&client, &base, "colorizer_in_flight_requests").await.unwrap() < 2.0 {
        assert!(waiting.elapsed() < Duration::from_secs(10), "the slow request did not arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(!status.success(), "exit status {status} after a drain that timed out");
}

/// Clients that give up while their request waits for a session: the queue-depth and in-flight
/// gauges fall back to their resting values, and the abandoned requests are never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_give_up_while_queued_leave_no_trace() {
    let app = spawn(&["--pool-size", "1", "--queue", "16", "--fault-injection"]).await;
    let (engine, queue) = (app.state.models.get(None).unwrap().clone(), app.state.models.queue(None).unwrap().clone());
    let runs_before = engine.runs();
    // One request holds the only session for 2 s.
    let slow = { tokio::spawn(app.colorize_request("", "image/png", gray_png(64, 64)).header("x-colorizer-fault", "slow").send()) };
    let waiting = Instant::now();
    while queue.sessions_in_use() == 0 {
        assert!(waiting.elapsed() < Duration::from_secs(10), "the slow request did not take the session");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    // Six clients queue behind it and give up after 0.4 s.
    let quitters: Vec<_> = (0..6)
        .map(|_| tokio::spawn(app.colorize_request("", "image/png", gray_png(48, 48)).timeout(Duration::from_millis(400)).send()))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued = queue.queue_depth();
    assert!(queued >= 1, "the quitters should be waiting for the session");
    for q in quitters {
        let r = q.await.unwrap();
        assert!(r.as_ref().is_err_and(|e| e.is_timeout()), "a quitter got an answer: {:?}", r.map(|r| r.status()));
    }
    let elapsed = started.elapsed();
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert!(elapsed < Duration::from_secs(2), "the quitters must give up while the slow request runs ({elapsed:?})");
    // Give the server a moment to see the closed connections.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let depth = metric(&app, "colorizer_queue_depth{model=\"fixture\"}").await.unwrap();
        let in_flight = metric(&app, "colorizer_in_flight_requests").await.unwrap();
        if (depth, in_flight) == (0.0, 1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "gauges stuck: queue depth {depth}, in flight {in_flight} (resting: 0 and 1, this request)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(engine.runs(), runs_before + 1, "only the slow request ran; the {queued} abandoned ones did not");
    // The service still answers normally.
    let resp = app.colorize_png(32, 32).await;
    assert_eq!(resp.status(), 200);
}

/// A 5xx is logged at error level with its cause and the request id; the client gets neither
/// the cause nor any internal text, only a generic detail and the request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_is_logged_with_its_cause_and_the_request_id() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (child, client, base) = start_service(port, &["--fault-injection"], &[("RUST_LOG", "error"), ("NO_COLOR", "1")]).await;
    let resp = client
        .post(format!("{base}/colorize"))
        .header("content-type", "image/png")
        .header("x-colorizer-fault", "panic")
        .header("x-request-id", "req-5xx-test-42")
        .body(gray_png(32, 32))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.unwrap();
    let p: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(p["request_id"], "req-5xx-test-42");
    for internal in ["fault injection", "panicked", "task", "JoinError", "onnx", "ort"] {
        assert!(!text.to_lowercase().contains(&internal.to_lowercase()), "internal text {internal:?} in the answer: {text}");
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log.lines().find(|l| l.contains("a pipeline stage panicked")).unwrap_or_else(|| panic!("no error line for the 5xx:\n{log}"));
    assert!(line.contains("ERROR") && line.contains("req-5xx-test-42"), "{line}");
    assert!(line.contains("fault injection: panic inside the pipeline"), "the cause is logged: {line}");
}

/// The service binary as a child process on `port` with the fixture model, `extra` flags and
/// `env` (stdout discarded, stderr piped), once ready: the child, a client and the base URL.
async fn start_service(port: u16, extra: &[&str], env: &[(&str, &str)]) -> (std::process::Child, reqwest::Client, String) {
    let port_text = port.to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_colorizer"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port_text, "--no-embedded-models", "--model", FIXTURE])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &base).await;
    (child, client, base)
}

/// Polls `/readyz` of a service started as a child process until it answers 200 (20 s at most).
async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/readyz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "service did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

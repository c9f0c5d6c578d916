//! The HTTP API as a client sees it, against the service spawned on a random port.

use image::GenericImageView;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::corpus;
use crate::helpers::*;

#[tokio::test]
async fn a_gray_photo_comes_back_in_colour_with_its_own_lightness() {
    let app = spawn(&[]).await;
    let (w, h) = (160, 96);
    let gray = gray_scene(w, h);
    let resp = app.colorize_png(w, h).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.headers().contains_key("x-request-id"));
    let timing = resp.headers()["server-timing"].to_str().unwrap().to_string();
    for stage in ["decode;dur=", "infer;dur=", "encode;dur="] {
        assert!(timing.contains(stage), "{timing}");
    }
    let img = decode(&resp.bytes().await.unwrap());
    assert_eq!(img.dimensions(), (w, h));
    let rgb = img.to_rgb8();
    let dl = max_l_diff(&gray, &rgb);
    assert!(dl <= 1.0, "L changed by {dl}");
    let c = mean_chroma(&rgb);
    assert!(c > 1.0, "no colour: mean chroma {c}");
}

#[tokio::test]
async fn jpeg_and_webp_out_by_query_and_by_accept() {
    let app = spawn(&[]).await;
    let (w, h) = (120, 80);
    let gray = gray_scene(w, h);
    for (query, accept, mime) in [
        ("?format=jpeg&quality=95", None, "image/jpeg"),
        ("?format=webp", None, "image/webp"),
        ("", Some("image/webp"), "image/webp"),
        ("", Some("image/png;q=0.2, image/jpeg"), "image/jpeg"),
        ("", Some("*/*"), "image/png"),
    ] {
        let mut req = app.client.post(app.url(&format!("/colorize{query}"))).header(CONTENT_TYPE, "image/jpeg").body(gray_jpeg(w, h));
        if let Some(a) = accept {
            req = req.header(ACCEPT, a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{query} {accept:?}");
        assert_eq!(resp.headers()["content-type"], mime, "{query} {accept:?}");
        let img = decode(&resp.bytes().await.unwrap());
        assert_eq!(img.dimensions(), (w, h));
        let rgb = img.to_rgb8();
        assert!(mean_chroma(&rgb) > 1.0);
        // JPEG in and (for JPEG out) lossy again: L stays close, not exact.
        let tol = if mime == "image/jpeg" { 6.0 } else { 3.5 };
        let mean_dl = mean_l_diff(&gray, &rgb);
        assert!(mean_dl < tol, "{mime}: mean L difference {mean_dl}");
    }
}

/// A photo of a few megapixels to JPEG: encoded in strips on the server's threads and spliced
/// with restart markers, it is one JPEG of the photo's size that decodes, keeps the photo's L and
/// has colour.
#[tokio::test]
async fn a_large_photo_to_jpeg_is_one_valid_jpeg() {
    let app = spawn(&[]).await;
    let (w, h) = (2400, 1500);
    let gray = gray_scene(w, h);
    let resp = app.colorize_request("?format=jpeg&quality=92", "image/png", gray_png(w, h)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let bytes = resp.bytes().await.unwrap();
    assert!(colorizer::pipeline::jpeg_is_complete(&bytes));
    assert!(bytes.windows(2).any(|m| m == [0xFF, 0xDD]), "no restart interval: encoded in one piece");
    let rgb = decode(&bytes).to_rgb8();
    assert_eq!(rgb.dimensions(), (w, h));
    assert!(mean_chroma(&rgb) > 1.0);
    let mean_dl = mean_l_diff(&gray, &rgb);
    assert!(mean_dl < 6.0, "mean L difference {mean_dl}");
}

#[tokio::test]
async fn multipart_upload_works() {
    let app = spawn(&[]).await;
    let part = reqwest::multipart::Part::bytes(gray_png(90, 70)).file_name("gray.png").mime_str("image/png").unwrap();
    let form = reqwest::multipart::Form::new().text("note", "ignored").part("image", part);
    let resp = app.client.post(app.url("/colorize")).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let img = decode(&resp.bytes().await.unwrap());
    assert_eq!(img.dimensions(), (90, 70));
    assert!(mean_chroma(&img.to_rgb8()) > 1.0);

    let form = reqwest::multipart::Form::new().text("file", "no image part");
    let resp = app.client.post(app.url("/colorize")).multipart(form).send().await.unwrap();
    let p = expect_problem(resp, 400).await;
    assert!(p["detail"].as_str().unwrap().contains("image"));
}

#[tokio::test]
async fn temperature_changes_the_output_and_is_validated() {
    let app = spawn(&[]).await;
    let body = gray_png(96, 96);
    let a = app.post_image("?temperature=0.1", "image/png", body.clone()).await.bytes().await.unwrap();
    let b = app.post_image("?temperature=1.0", "image/png", body.clone()).await.bytes().await.unwrap();
    assert_ne!(decode(&a).to_rgb8().into_raw(), decode(&b).to_rgb8().into_raw());
    for bad in ["0", "-0.5", "1.01", "NaN", "inf", "1e9", "warm"] {
        let resp = app.post_image(&format!("?temperature={bad}"), "image/png", body.clone()).await;
        let p = expect_problem(resp, 422).await;
        assert!(p["detail"].as_str().unwrap().contains("temperature"), "{p}");
    }
}

#[tokio::test]
async fn documented_errors_are_problem_json() {
    let app = spawn(&["--max-body-bytes", "200000", "--max-pixels", "100000"]).await;
    // 400: not an image, with an image content type; empty body; truncated PNG.
    expect_problem(app.post_image("", "image/png", b"hello, I am text".to_vec()).await, 400).await;
    expect_problem(app.post_image("", "image/jpeg", Vec::new()).await, 400).await;
    let png = gray_png(50, 50);
    expect_problem(app.post_image("", "image/png", png[..png.len() / 2].to_vec()).await, 400).await;
    // 413: body over the limit.
    expect_problem(app.post_image("", "image/png", vec![0u8; 300_000]).await, 413).await;
    // 415: not an image media type.
    expect_problem(app.post_image("", "text/plain", png.clone()).await, 415).await;
    expect_problem(app.post_image("", "application/json", png.clone()).await, 415).await;
    // 422: bad parameters, unknown model, and an image over the pixel limit.
    expect_problem(app.post_image("?format=gif", "image/png", png.clone()).await, 422).await;
    expect_problem(app.post_image("?quality=0", "image/png", png.clone()).await, 422).await;
    expect_problem(app.post_image("?colour=yes", "image/png", png.clone()).await, 422).await;
    let p = expect_problem(app.post_image("?model=nope", "image/png", png.clone()).await, 422).await;
    assert_eq!(p["allowed"], serde_json::json!(["fixture"]));
    expect_problem(app.colorize_png(400, 300).await, 422).await;
    // 404 for unknown routes, also problem+json.
    expect_problem(app.get("/nope").await, 404).await;
    // The service is still fine.
    assert_eq!(app.post_image("", "image/png", png).await.status(), 200);
}

#[tokio::test]
async fn deadline_gives_504() {
    let app = spawn(&["--deadline-ms", "1"]).await;
    let p = expect_problem(app.colorize_png(1200, 900).await, 504).await;
    assert!(p["detail"].as_str().unwrap().contains("deadline"));
}

#[tokio::test]
async fn readiness_is_503_before_warm_up() {
    let app = spawn_with(&[], false).await;
    assert!(!app.state.is_ready());
    expect_problem(app.get("/readyz").await, 503).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let resp = app.colorize_png(32, 32).await;
    let p = expect_problem(resp, 503).await;
    assert!(p["type"].as_str().unwrap().ends_with("not-ready"));
    colorizer::startup::spawn_warm_up(app.state.clone()).await.unwrap();
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn overload_is_refused_fast_with_retry_after() {
    // One session, no queue: of several simultaneous big requests, some must be refused.
    let app = spawn(&["--pool-size", "1", "--queue", "0"]).await;
    let body = gray_png(1600, 1200);
    let reqs = (0..6).map(|_| app.post_image("", "image/png", body.clone()));
    let resps = futures::future::join_all(reqs).await;
    let mut ok = 0;
    let mut refused = 0;
    for r in resps {
        match r.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(r.headers()["retry-after"], "1");
                let p = expect_problem(r, 503).await;
                assert!(p["type"].as_str().unwrap().ends_with("overloaded"));
                refused += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(ok >= 1 && refused >= 1, "ok {ok}, refused {refused}");
}

#[tokio::test]
async fn metrics_parse_and_move() {
    let app = spawn(&[]).await;
    let before = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(app.colorize_png(64, 64).await.status(), 200);
    let resp = app.get("/metrics").await;
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let after = resp.text().await.unwrap();
    let samples = parse_prometheus(&after);
    let get = |text: &str, name: &str| parse_prometheus(text).iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or(0.0);
    let key = r#"colorizer_http_requests_total{route="/colorize",status="200"}"#;
    assert_eq!(get(&before, key), 0.0);
    assert_eq!(get(&after, key), 1.0);
    assert_eq!(get(&after, r#"colorizer_stage_seconds_count{model="fixture",stage="infer"}"#), 1.0);
    assert_eq!(get(&after, "colorizer_input_megapixels_count"), 1.0);
    assert_eq!(get(&after, r#"colorizer_images_total{format="png",model="fixture"}"#), 1.0);
    // The format label says what the API says: jpeg, not the file extension.
    assert_eq!(app.post_image("?format=jpeg", "image/png", gray_png(64, 64)).await.status(), 200);
    let later = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(get(&later, r#"colorizer_images_total{format="jpeg",model="fixture"}"#), 1.0);
    assert_eq!(get(&after, r#"colorizer_pool_size{model="fixture"}"#), 2.0);
    assert_eq!(get(&after, "colorizer_ready"), 1.0);
    let sha = &app.state.models.get(None).unwrap().info().sha256;
    assert!(samples.iter().any(|(n, v)| n.starts_with("colorizer_model_info{") && n.contains(sha.as_str()) && *v == 1.0));
    for name in [
        "colorizer_queue_wait_seconds_bucket",
        "colorizer_in_flight_requests",
        "colorizer_queue_depth",
        "colorizer_http_request_duration_seconds_bucket",
    ] {
        assert!(samples.iter().any(|(n, _)| n.starts_with(name)), "{name} missing");
    }
}

/// A strict parser of the Prometheus text format: every non-comment line is `name{labels} value`.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad name in {line:?}");
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels in {line:?}");
        }
        out.push((series.to_string(), v));
    }
    assert!(!out.is_empty());
    out
}

#[tokio::test]
async fn info_lists_models_and_limits() {
    let app = spawn(&["--model", FIXTURE_L2]).await;
    let info: serde_json::Value = app.get("/info").await.json().await.unwrap();
    assert_eq!(info["default_model"], "fixture");
    let models = info["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    let l2 = models.iter().find(|m| m["name"] == "l2fixture").unwrap();
    assert_eq!(l2["output"], "ab");
    let ce = models.iter().find(|m| m["name"] == "fixture").unwrap();
    assert_eq!(ce["output"], "logits313");
    assert_eq!(ce["trained"], false);
    assert_eq!(ce["sha256"].as_str().unwrap().len(), 64);
    // Both fixtures output a grid of 1/4 the input's side.
    assert_eq!((ce["output_scale"].as_u64(), l2["output_scale"].as_u64()), (Some(4), Some(4)));
    assert!(info["limits"]["max_pixels"].as_u64().unwrap() > 0);
    assert!(info["max_body_bytes"].as_u64().unwrap() > 0);
    // The output formats (the demo page's list), with their media types and extensions.
    let formats: Vec<(&str, &str, &str, bool)> = info["output_formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap();
            (text("name"), text("media_type"), text("extension"), f["lossless"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(formats, [("png", "image/png", "png", true), ("jpeg", "image/jpeg", "jpg", false), ("webp", "image/webp", "webp", true)]);
    // The L2 model answers too, through ?model=.
    let resp = app.post_image("?model=l2fixture", "image/png", gray_png(64, 48)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-colorizer-model"], "l2fixture");
    assert_eq!(decode(&resp.bytes().await.unwrap()).dimensions(), (64, 48));
}

#[tokio::test]
async fn docs_and_openapi_are_served_offline() {
    let app = spawn(&[]).await;
    let html = app.get("/docs/").await.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("://cdn") && !html.contains("unpkg.com"), "Swagger UI must be the vendored build");
    let init = app.get("/docs/swagger-initializer.js").await.text().await.unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(spec["paths"]["/colorize"]["post"].is_object());
    // The model parameter takes the names of the loaded models, no others.
    let params = spec["paths"]["/colorize"]["post"]["parameters"].as_array().unwrap();
    let model = params.iter().find(|p| p["name"] == "model").unwrap();
    assert_eq!(model["schema"]["enum"], serde_json::json!(["fixture"]));
    let page = app.get("/").await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn api_keys_protect_colorize_but_not_the_probes() {
    let app = spawn(&["--api-keys", "key-one,key-two"]).await;
    let png = gray_png(32, 32);
    let resp = app.post_image("", "image/png", png.clone()).await;
    expect_problem(resp, 401).await;
    let resp = app
        .client
        .post(app.url("/colorize"))
        .header(CONTENT_TYPE, "image/png")
        .bearer_auth("wrong")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    expect_problem(resp, 401).await;
    let resp = app.colorize_request("", "image/png", png).bearer_auth("key-two").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    for probe in ["/healthz", "/readyz", "/metrics", "/info"] {
        assert_eq!(app.get(probe).await.status(), 200, "{probe}");
    }
    // The key layer guards the methods /colorize takes: a wrong method is a 405 all the same.
    expect_problem(app.get("/colorize").await, 405).await;
    assert_eq!(metric(&app, "colorizer_rejected_total{reason=\"unauthorized\"}").await, Some(2.0));
    let info: serde_json::Value = app.get("/info").await.json().await.unwrap();
    assert_eq!(info["auth_required"], true);
    assert!(!info.to_string().contains("key-one"), "keys never leave the process");
}

#[tokio::test]
async fn cors_is_off_by_default_and_configurable() {
    let app = spawn(&[]).await;
    let resp = app.client.get(app.url("/info")).header("origin", "https://example.org").send().await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    let app = spawn(&["--cors-origins", "https://example.org"]).await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/colorize"))
        .header("origin", "https://example.org")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://example.org");
    let other = app.client.get(app.url("/info")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_model_that_breaks_the_contract_is_refused_at_start() {
    // Not an ONNX file at all.
    let dir = TempDir::new("bad");
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"definitely not a protobuf").unwrap();
    let spec = format!("junk={}", junk.display());
    let err = colorizer::startup::Application::build(&args(&["--model", &spec]), std::time::Instant::now()).await.err().expect("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("junk"), "{msg}");
    // Real ONNX files whose inputs or outputs are off: the reason names the part.
    for (file, reason) in [
        ("bad-three-channel-output.onnx", "3 channels"),
        ("bad-rgb-input.onnx", "[N, 1, H, W]"),
        ("bad-two-inputs.onnx", "2 inputs"),
        ("bad-uneven-grid.onnx", "not the input divided by one whole number on both sides"),
    ] {
        let spec = format!("bad=tests/fixtures/{file}");
        let err =
            colorizer::startup::Application::build(&args(&["--model", &spec]), std::time::Instant::now()).await.err().expect("refused");
        let msg = format!("{err:#}");
        assert!(msg.contains("does not follow the model contract") && msg.contains(reason), "{file}: {msg}");
    }
    // A missing file says so.
    let err = colorizer::startup::Application::build(&args(&["--model", "gone=/nonexistent/model.onnx"]), std::time::Instant::now())
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("/nonexistent/model.onnx"));
}

#[tokio::test]
async fn refusals_decided_from_headers_are_readable_with_a_large_body() {
    // The service answers these before reading the body; it must still let the client finish
    // sending, so that the client reads the problem instead of a reset connection.
    let app = spawn(&["--api-keys", "k"]).await;
    let big = vec![b'x'; 8 * 1024 * 1024];
    let resp =
        app.client.post(app.url("/colorize")).header(CONTENT_TYPE, "text/plain").bearer_auth("k").body(big.clone()).send().await.unwrap();
    expect_problem(resp, 415).await;
    let resp = app
        .client
        .post(app.url("/colorize?temperature=2"))
        .header(CONTENT_TYPE, "image/png")
        .bearer_auth("k")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    expect_problem(resp, 422).await;
    let resp = app.post_image("", "image/png", big).await;
    expect_problem(resp, 401).await;
}

const HINT_FIXTURE: &str = "hint=tests/fixtures/hint-fixture.onnx";

async fn post_with_hints(app: &TestApp, query: &str, image: Vec<u8>, hints: &str) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(image).file_name("photo.png"))
        .part("hints", reqwest::multipart::Part::text(hints.to_string()));
    app.client.post(app.url(&format!("/colorize{query}"))).multipart(form).send().await.unwrap()
}

/// Lab a, b of an output pixel.
fn ab_at(img: &image::RgbImage, x: u32, y: u32) -> [f32; 2] {
    let lab = colorizer::color::srgb8_to_lab(img.get_pixel(x, y).0);
    [lab[1], lab[2]]
}

#[tokio::test]
async fn hints_colour_the_place_they_name() {
    // The fixture's ab is the mean hinted ab of each 4x4 cell: colour exactly where hints land.
    let app = spawn(&["--model", HINT_FIXTURE]).await;
    let info: serde_json::Value = app.get("/info").await.json().await.unwrap();
    let takes = |name: &str| info["models"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap()["hints"].clone();
    assert_eq!((takes("hint"), takes("fixture")), (serde_json::json!(true), serde_json::json!(false)));
    let (w, h) = (256, 128);
    let hints = r##"[{"x": 40, "y": 30, "color": "#c02020"}, {"x": 200, "y": 100, "color": "#2040c0", "radius": 6}]"##;
    let resp = post_with_hints(&app, "?model=hint", gray_png(w, h), hints).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-colorizer-hints"], "2");
    let rgb = decode(&resp.bytes().await.unwrap()).to_rgb8();
    assert_eq!(rgb.dimensions(), (w, h));
    let red = ab_at(&rgb, 40, 30);
    let blue = ab_at(&rgb, 200, 100);
    assert!(red[0] > 25.0 && red[1] > 10.0, "red hint: ab {red:?}");
    assert!(blue[1] < -25.0, "blue hint: ab {blue:?}");
    let far = ab_at(&rgb, 128, 64);
    assert!(far[0].abs() < 2.0 && far[1].abs() < 2.0, "no hint there: ab {far:?}");
    // No hints part: a hint model answers without hints (gray for this fixture).
    let resp = app
        .client
        .post(app.url("/colorize?model=hint"))
        .multipart(reqwest::multipart::Form::new().part("image", reqwest::multipart::Part::bytes(gray_png(w, h)).file_name("p.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-colorizer-hints"], "0");
    assert!(mean_chroma(&decode(&resp.bytes().await.unwrap()).to_rgb8()) < 1.0);
}

#[tokio::test]
async fn hints_follow_exif_orientation() {
    // Stored 96 x 64 with orientation 6 (rotate 90 degrees clockwise): shown 64 wide, 96 high.
    // The hint names a point of the shown image; the colour must be there, not at the stored place.
    let app = spawn(&["--model", HINT_FIXTURE]).await;
    let jpeg = corpus::jpeg_with_orientation(&gray_jpeg(96, 64), 6);
    let resp = post_with_hints(&app, "?model=hint", jpeg, r##"[{"x": 50, "y": 20, "color": "#20a020"}]"##).await;
    assert_eq!(resp.status(), 200);
    let rgb = decode(&resp.bytes().await.unwrap()).to_rgb8();
    assert_eq!(rgb.dimensions(), (64, 96));
    let there = ab_at(&rgb, 50, 20);
    assert!(there[0] < -20.0, "green hint not at (50, 20): ab {there:?}");
    // Taken as a point of the stored image, (50, 20) would show at (63 - 20, 50) = (43, 50).
    let stored = ab_at(&rgb, 43, 50);
    assert!(stored[0].abs() < 2.0 && stored[1].abs() < 2.0, "colour at the stored place: ab {stored:?}");
    // Outside the shown image (x < 64, y < 96), though inside the stored one.
    let resp = post_with_hints(
        &app,
        "?model=hint",
        corpus::jpeg_with_orientation(&gray_jpeg(96, 64), 6),
        r##"[{"x": 80, "y": 10, "color": "#fff"}]"##,
    )
    .await;
    let p = expect_problem(resp, 422).await;
    assert!(p["detail"].as_str().unwrap().contains("outside the 64x96 image"), "{p}");
}

#[tokio::test]
async fn bad_hints_get_a_clear_422() {
    let app = spawn(&["--model", HINT_FIXTURE]).await;
    let many = format!("[{}]", vec![r##"{"x": 1, "y": 1, "color": "#fff"}"##; 65].join(","));
    for (query, hints, says) in [
        ("?model=hint", "not json", "JSON array"),
        ("?model=hint", r#"[{"x": 1, "y": 2}]"#, "JSON array"),
        ("?model=hint", r#"[{"x": 1, "y": 2, "color": "blue"}]"#, "color must be #rrggbb"),
        ("?model=hint", r##"[{"x": 1, "y": 2, "color": "#00f", "radius": -2}]"##, "radius"),
        ("?model=hint", r##"[{"x": 64, "y": 2, "color": "#00f"}]"##, "outside the 64x48 image"),
        ("?model=hint", many.as_str(), "at most 64"),
        ("", r##"[{"x": 1, "y": 2, "color": "#00f"}]"##, "takes no hints"),
    ] {
        let resp = post_with_hints(&app, query, gray_png(64, 48), hints).await;
        let p = expect_problem(resp, 422).await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{hints}: {p}");
        if says == "takes no hints" {
            assert_eq!(p["allowed"], serde_json::json!(["hint"]), "{p}");
        }
    }
    // Two hints parts are ambiguous.
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(gray_png(64, 48)).file_name("p.png"))
        .part("hints", reqwest::multipart::Part::text("[]"))
        .part("hints", reqwest::multipart::Part::text("[]"));
    let resp = app.client.post(app.url("/colorize?model=hint")).multipart(form).send().await.unwrap();
    expect_problem(resp, 400).await;
    // An empty list is no hints.
    let resp = post_with_hints(&app, "?model=hint", gray_png(64, 48), "[]").await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_wrong_method_gets_a_problem_with_allow() {
    let app = spawn(&[]).await;
    let resp = app.get("/colorize").await;
    assert_eq!(resp.headers()["allow"], "POST");
    let p = expect_problem(resp, 405).await;
    assert!(p["detail"].as_str().unwrap().contains("does not take GET"), "{p}");
    let resp = app.client.delete(app.url("/info")).send().await.unwrap();
    assert!(resp.headers()["allow"].to_str().unwrap().contains("GET"));
    expect_problem(resp, 405).await;
}

#[tokio::test]
async fn a_model_that_outputs_ab_says_temperature_is_not_used() {
    let app = spawn(&["--model", "l2=tests/fixtures/untrained-l2.onnx"]).await;
    let info: serde_json::Value = app.get("/info").await.json().await.unwrap();
    let source = |name: &str| info["models"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap()["temperature_source"].clone();
    assert_eq!(source("l2"), "not used");
    assert_ne!(source("fixture"), "not used");
    let resp = app.post_image("?model=l2&temperature=0.2", "image/png", gray_png(48, 48)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-colorizer-temperature").is_none(), "no temperature echoed for an ab model");
    let resp = app.post_image("?temperature=0.2", "image/png", gray_png(48, 48)).await;
    assert_eq!(resp.headers()["x-colorizer-temperature"], "0.2");
}

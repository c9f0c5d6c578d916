//! The models embedded in the binary: the trained default (`guided`, a pretrained-encoder model
//! that also takes colour hints) serves with no files beside it; the automatic `broad` model it
//! extends, the earlier general and landscape models and the L2 baseline can be picked per
//! request for comparison.

use crate::helpers::*;
use clap::Parser;
use colorizer::config::Cli;
use image::GenericImageView;

/// The service with only its embedded models (one session each), warmed up; its address.
async fn serve_embedded() -> std::net::SocketAddr {
    let args = Cli::parse_from(["colorizer", "--host", "127.0.0.1", "--port", "0", "--pool-size", "1"]).serve;
    let app = colorizer::startup::Application::build(&args, std::time::Instant::now()).await.unwrap();
    app.spawn_warm_up().await.unwrap();
    let addr = app.addr();
    tokio::spawn(app.run_until(std::future::pending()));
    addr
}

#[test]
fn the_binary_embeds_the_trained_models() {
    let names: Vec<&str> = colorizer::models::EMBEDDED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["broad", "general", "guided", "l2", "landscape", "vivid"]);
    assert_eq!(colorizer::models::EMBEDDED_DEFAULT, Some("guided"));
}

#[tokio::test]
async fn embedded_models_serve_and_are_listed() {
    let addr = serve_embedded().await;
    let client = reqwest::Client::new();
    let info: serde_json::Value = client.get(format!("http://{addr}/info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["default_model"], "guided");
    let models = info["models"].as_array().unwrap();
    assert_eq!(models.len(), 6);
    for m in models {
        assert_eq!(m["trained"], true, "{m}");
        assert_eq!(m["origin"], "embedded");
    }
    let (w, h) = (200, 150);
    let gray = gray_scene(w, h);
    for (model, output) in [
        ("guided", "logits313"),
        ("vivid", "logits313"),
        ("broad", "logits313"),
        ("general", "logits313"),
        ("landscape", "logits313"),
        ("l2", "ab"),
    ] {
        let hints = model == "guided" || model == "vivid";
        assert!(models.iter().any(|m| m["name"] == model && m["output"] == output && m["hints"] == hints));
        let resp = client
            .post(format!("http://{addr}/colorize?model={model}"))
            .header("content-type", "image/png")
            .body(gray_png(w, h))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["x-colorizer-model"], model);
        let img = decode(&resp.bytes().await.unwrap());
        assert_eq!(img.dimensions(), (w, h));
        let rgb = img.to_rgb8();
        assert!(max_l_diff(&gray, &rgb) <= 1.0, "{model}: L changed");
        assert!(mean_chroma(&rgb) > 2.0, "{model}: no colour");
    }
}

#[test]
fn the_cli_uses_the_embedded_default_with_no_model_flag() {
    let dir = TempDir::new("embedded");
    std::fs::write(dir.join("in.png"), gray_png(64, 48)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_colorizer"))
        .args(["colorize", dir.join("in.png").to_str().unwrap(), "-o", dir.join("out").to_str().unwrap(), "--quiet"])
        .env_remove("COLORIZER_MODEL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("model guided"));
    assert_eq!(image::open(dir.join("out/in.png")).unwrap().dimensions(), (64, 48));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_colorizer"))
        .args([
            "colorize",
            dir.join("in.png").to_str().unwrap(),
            "-o",
            dir.join("out2").to_str().unwrap(),
            "--quiet",
            "--model",
            "landscape",
        ])
        .output()
        .unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("model landscape"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_colorizer"))
        .args(["colorize", dir.join("in.png").to_str().unwrap(), "-o", dir.join("out3").to_str().unwrap(), "--model", "sepia"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("broad, general, guided, l2, landscape, vivid"));
}

#[tokio::test]
async fn the_trained_hint_model_puts_a_hinted_colour_where_it_was_asked() {
    // A gray scene; one blue hint on the dark ground. The real model spreads it around the point:
    // the ground near it turns blue, the sky far from it keeps the automatic colour.
    let addr = serve_embedded().await;
    let client = reqwest::Client::new();
    let (w, h) = (256, 192);
    let gray = gray_scene(w, h);
    let send = |hints: Option<&'static str>| {
        let mut form =
            reqwest::multipart::Form::new().part("image", reqwest::multipart::Part::bytes(gray_png(w, h)).file_name("scene.png"));
        if let Some(hints) = hints {
            form = form.part("hints", reqwest::multipart::Part::text(hints));
        }
        client.post(format!("http://{addr}/colorize")).multipart(form).send()
    };
    let auto = send(None).await.unwrap();
    assert_eq!((auto.status().as_u16(), auto.headers()["x-colorizer-model"].to_str().unwrap()), (200, "guided"));
    let auto = decode(&auto.bytes().await.unwrap()).to_rgb8();
    let hinted = send(Some(r##"[{"x": 64, "y": 160, "color": "#1e50dc"}]"##)).await.unwrap();
    assert_eq!(hinted.status(), 200);
    assert_eq!(hinted.headers()["x-colorizer-hints"], "1");
    let hinted = decode(&hinted.bytes().await.unwrap()).to_rgb8();
    assert!(max_l_diff(&gray, &hinted) <= 1.0, "hints never change the lightness");
    let mean_b = |img: &image::RgbImage, x0: u32, y0: u32, r: u32| {
        let mut s = 0.0;
        for y in y0 - r..=y0 + r {
            for x in x0 - r..=x0 + r {
                s += colorizer::color::srgb8_to_lab(img.get_pixel(x, y).0)[2];
            }
        }
        s / ((2 * r + 1) * (2 * r + 1)) as f32
    };
    let (near_auto, near_hint) = (mean_b(&auto, 64, 160, 6), mean_b(&hinted, 64, 160, 6));
    assert!(near_hint < near_auto - 8.0, "the ground near the hint is not bluer: b {near_auto:.1} -> {near_hint:.1}");
    let (far_auto, far_hint) = (mean_b(&auto, 220, 20, 6), mean_b(&hinted, 220, 20, 6));
    assert!((far_hint - far_auto).abs() < (near_hint - near_auto).abs() / 2.0, "far from the hint: b {far_auto:.1} -> {far_hint:.1}");
}

#[tokio::test]
async fn serve_loads_an_embedded_model_named_in_the_model_list() {
    // Only the fixture and the embedded `landscape`, by name, as `--model` lists them.
    let args = args(&["--model", "landscape", "--pool-size", "1"]);
    let app = colorizer::startup::Application::build(&args, std::time::Instant::now()).await.unwrap();
    assert_eq!(app.state().models.names(), ["fixture", "landscape"]);
    assert_eq!(app.state().models.default_name(), "fixture");
    assert_eq!(app.state().models.get(Some("landscape")).unwrap().info().origin, "embedded");
}

#[tokio::test]
async fn the_default_runs_photos_between_its_two_sizes_at_their_own_size() {
    // `guided` was trained on 128-px photos and runs at up to 160 px (colorizer.min_input_size,
    // colorizer.input_size); the fixture says nothing, so every photo is resized to its one size.
    let args = args(&["--model", "guided", "--pool-size", "1"]);
    let app = colorizer::startup::Application::build(&args, std::time::Instant::now()).await.unwrap();
    let guided = app.state().models.get(Some("guided")).unwrap();
    assert_eq!((guided.info().min_inference_size, guided.info().inference_size), (128, 160));
    assert_eq!(guided.input_size_for(100, 80), (128, 160)); // small: enlarged to the minimum
    assert_eq!(guided.input_size_for(150, 150), (144, 144)); // in between: its own size, to 16
    assert_eq!(guided.input_size_for(200, 150), (144, 208));
    assert_eq!(guided.input_size_for(4000, 3000), (160, 208)); // large: the inference size
    let fixture = app.state().models.get(Some("fixture")).unwrap();
    let size = fixture.info().inference_size;
    assert_eq!(fixture.info().min_inference_size, size);
    assert_eq!(fixture.input_size_for(size + 24, size + 24), (size, size));
    assert_eq!(fixture.input_size_for(size / 2, size / 2), (size, size));
}

#[tokio::test]
async fn a_model_with_a_half_size_grid_is_served_and_costed_by_its_grid() {
    // tests/fixtures/half-grid.onnx: 313 logits on a grid of 1/2 the input's side.
    let app = spawn(&["--model", "half=tests/fixtures/half-grid.onnx"]).await;
    let info: serde_json::Value = app.get("/info").await.json().await.unwrap();
    let half = info["models"].as_array().unwrap().iter().find(|m| m["name"] == "half").unwrap();
    assert_eq!((half["output"].as_str(), half["output_scale"].as_u64()), (Some("logits313"), Some(2)));
    let resp = app.post_image("?model=half&format=png", "image/png", gray_png(70, 50)).await;
    assert_eq!(resp.status(), 200);
    let img = decode(&resp.bytes().await.unwrap()).to_rgb8();
    assert_eq!(img.dimensions(), (70, 50));
    assert!(img.pixels().any(|p| p[0] != p[1] || p[1] != p[2]), "the answer has colour");
    // The memory a request reserves follows the grid: four times the logits of a 1/4-size one.
    let args = args(&["--model", "half=tests/fixtures/half-grid.onnx", "--pool-size", "1"]);
    let built = colorizer::startup::Application::build(&args, std::time::Instant::now()).await.unwrap();
    let (half, quarter) = (built.state().models.get(Some("half")).unwrap(), built.state().models.get(Some("fixture")).unwrap());
    assert_eq!(quarter.model_bytes(160, 160), 160 * 160 * colorizer::pipeline::model_bytes_per_pixel(313, 4));
    assert_eq!(half.model_bytes(160, 160), 160 * 160 * colorizer::pipeline::model_bytes_per_pixel(313, 2));
}

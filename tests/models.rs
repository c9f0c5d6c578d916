//! The models embedded in the binary: the trained default (`broad`, a pretrained-encoder model)
//! serves with no files beside it, and the earlier general and landscape models and the L2
//! baseline can be picked per request for comparison.

mod common;

use clap::Parser;
use colorizer::config::Cli;
use common::*;
use image::GenericImageView;

#[test]
fn the_binary_embeds_the_trained_models() {
    let names: Vec<&str> = colorizer::models::EMBEDDED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["broad", "general", "l2", "landscape"]);
    assert_eq!(colorizer::models::EMBEDDED_DEFAULT, Some("broad"));
}

#[tokio::test]
async fn embedded_models_serve_and_are_listed() {
    let args = Cli::parse_from(["colorizer", "--host", "127.0.0.1", "--port", "0", "--pool-size", "1"]).serve;
    let svc = colorizer::startup::build(&args, std::time::Instant::now()).await.unwrap();
    colorizer::startup::spawn_warm_up(svc.state.clone()).await.unwrap();
    let addr = svc.addr;
    tokio::spawn(colorizer::http::serve(svc.listener, svc.app, svc.state, std::future::pending()));
    let client = reqwest::Client::new();
    let info: serde_json::Value = client.get(format!("http://{addr}/info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["default_model"], "broad");
    let models = info["models"].as_array().unwrap();
    assert_eq!(models.len(), 4);
    for m in models {
        assert_eq!(m["trained"], true, "{m}");
        assert_eq!(m["origin"], "embedded");
    }
    let (w, h) = (200, 150);
    let gray = gray_scene(w, h);
    for (model, output) in [("broad", "logits313"), ("general", "logits313"), ("landscape", "logits313"), ("l2", "ab")] {
        assert!(models.iter().any(|m| m["name"] == model && m["output"] == output));
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
    let dir = std::env::temp_dir().join(format!("colorizer-embedded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("in.png"), gray_png(64, 48)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_colorizer"))
        .args(["colorize", dir.join("in.png").to_str().unwrap(), "-o", dir.join("out").to_str().unwrap(), "--quiet"])
        .env_remove("COLORIZER_MODEL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("model broad"));
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
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("broad, general, l2, landscape"));
}

//! The batch command line: folders (recursive, layout kept), non-images skipped, existing
//! outputs kept unless --force, --format, summary and exit status.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;
use image::GenericImageView;

const MODEL: &str = "tests/fixtures/untrained-colorizer.onnx";

fn tempdir(name: &str) -> TempDir {
    TempDir::new(&format!("cli-{name}"))
}

/// `colorizer colorize ARGS --model MODEL --quiet`, run to its end.
fn colorize_with(model: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_colorizer")).arg("colorize").args(args).args(["--model", model, "--quiet"]).output().unwrap()
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = colorize_with(MODEL, args);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn a_nested_folder_keeps_its_layout_and_skips_non_images() {
    let root = tempdir("nested");
    let input = root.join("in");
    write(&input.join("a.png"), &gray_png(40, 30));
    write(&input.join("trip/day1/b.jpg"), &gray_jpeg(64, 48));
    write(&input.join("trip/notes.txt"), b"not a photo");
    write(&input.join("trip/fake.png"), b"text pretending to be a png");
    let out = root.join("out");
    let (ok, stdout, stderr) = run(&[input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    let a = image::open(out.join("a.png")).unwrap();
    assert_eq!(a.dimensions(), (40, 30));
    assert!(mean_chroma(&a.to_rgb8()) > 1.0);
    assert_eq!(image::open(out.join("trip/day1/b.png")).unwrap().dimensions(), (64, 48));
    assert!(stderr.contains("notes.txt") && stderr.contains("fake.png"), "{stderr}");
    assert!(stdout.contains("colorized 2, skipped 2, failed 0"), "{stdout}");
    assert!(!out.join("trip/notes.png").exists() && !out.join("trip/fake.png").exists());
}

#[test]
fn existing_outputs_are_kept_unless_forced() {
    let root = tempdir("force");
    let input = root.join("photo.png");
    write(&input, &gray_png(32, 32));
    let out = root.join("out");
    write(&out.join("photo.png"), b"keep me");
    let (ok, stdout, stderr) = run(&[input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(stdout.contains("colorized 0, skipped 1"), "{stdout}");
    assert_eq!(std::fs::read(out.join("photo.png")).unwrap(), b"keep me");
    let (ok, stdout, _) = run(&[input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--force"]);
    assert!(ok && stdout.contains("colorized 1"), "{stdout}");
    assert_eq!(image::open(out.join("photo.png")).unwrap().dimensions(), (32, 32));
}

#[test]
fn format_and_temperature_flags() {
    let root = tempdir("format");
    let input = root.join("x.png");
    write(&input, &gray_png(50, 40));
    for (fmt, ext, mime) in [("jpeg", "jpg", image::ImageFormat::Jpeg), ("webp", "webp", image::ImageFormat::WebP)] {
        let out = root.join(fmt);
        let (ok, stdout, stderr) = run(&[input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--format", fmt, "--temperature", "0.5"]);
        assert!(ok, "{stdout}{stderr}");
        let bytes = std::fs::read(out.join(format!("x.{ext}"))).unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), mime);
        assert_eq!(image::load_from_memory(&bytes).unwrap().dimensions(), (50, 40));
    }
    let (ok, _, stderr) = run(&[input.to_str().unwrap(), "-o", root.join("bad").to_str().unwrap(), "--temperature", "3"]);
    assert!(!ok && stderr.contains("temperature"), "{stderr}");
}

#[test]
fn a_failing_file_makes_the_exit_status_non_zero() {
    let root = tempdir("fail");
    let input = root.join("big.png");
    write(&input, &gray_png(300, 300));
    let out = root.join("out");
    let (ok, stdout, stderr) = run(&[input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--max-pixels", "1000"]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("failed 1") && stderr.contains("big.png"), "{stdout}{stderr}");
    let (ok, stdout, stderr) = run(&[root.join("missing.png").to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("no such file") && stdout.contains("failed 1"), "{stdout}{stderr}");
}

#[tokio::test]
async fn healthcheck_follows_colorizer_port() {
    let app = spawn(&[]).await;
    let bin = env!("CARGO_BIN_EXE_colorizer");
    let port = app.addr.port().to_string();
    let ok = tokio::task::spawn_blocking(move || Command::new(bin).arg("healthcheck").env("COLORIZER_PORT", port).status().unwrap())
        .await
        .unwrap();
    assert!(ok.success());
    let url = format!("http://127.0.0.1:{}/nope", app.addr.port());
    let bad = tokio::task::spawn_blocking(move || Command::new(bin).args(["healthcheck", "--url", &url]).status().unwrap()).await.unwrap();
    assert!(!bad.success());
}

#[test]
fn hints_from_a_file_colour_one_image() {
    let root = tempdir("hints");
    let input = root.join("photo.png");
    write(&input, &gray_png(128, 96));
    let hints = root.join("hints.json");
    write(&hints, br##"[{"x": 20, "y": 70, "color": "#d02020"}]"##);
    let out = root.join("out");
    let cli = |args: &[&str], model: &str| {
        let o = colorize_with(model, args);
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (i, o, h) = (input.to_str().unwrap(), out.to_str().unwrap(), hints.to_str().unwrap());
    let (code, err) = cli(&[i, "-o", o, "--hints", h], "tests/fixtures/hint-fixture.onnx");
    assert_eq!(code, Some(0), "{err}");
    let rgb = image::open(out.join("photo.png")).unwrap().to_rgb8();
    let lab = colorizer::color::srgb8_to_lab(rgb.get_pixel(20, 70).0);
    assert!(lab[1] > 25.0, "the hinted red is not at (20, 70): {lab:?}");
    // Hints for a model without hint input, for several inputs, or outside the image: errors.
    let (code, err) = cli(&[i, "-o", o, "--hints", h, "--force"], MODEL);
    assert!(code == Some(2) && err.contains("takes no hints"), "{code:?} {err}");
    let (code, err) = cli(&[i, i, "-o", o, "--hints", h, "--force"], "tests/fixtures/hint-fixture.onnx");
    assert!(code == Some(2) && err.contains("exactly one input"), "{code:?} {err}");
    write(&hints, br##"[{"x": 128, "y": 0, "color": "#d02020"}]"##);
    let (code, err) = cli(&[i, "-o", o, "--hints", h, "--force"], "tests/fixtures/hint-fixture.onnx");
    assert!(code == Some(1) && err.contains("outside the 128x96 image"), "{code:?} {err}");
    write(&hints, b"[{\"x\": 1}]");
    let (code, err) = cli(&[i, "-o", o, "--hints", h, "--force"], "tests/fixtures/hint-fixture.onnx");
    assert!(code == Some(2) && err.contains("JSON array"), "{code:?} {err}");
}

#[test]
fn a_truncated_photo_is_a_failure_not_a_colorized_file() {
    let root = tempdir("truncated");
    let jpeg = gray_jpeg(120, 90);
    write(&root.join("in/whole.jpg"), &jpeg);
    write(&root.join("in/cut.jpg"), &jpeg[..500]);
    let out = root.join("out");
    let (ok, stdout, stderr) = run(&[root.join("in").to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(!ok, "a truncated input must make the exit status non-zero: {stdout}");
    assert!(stdout.contains("colorized 1, skipped 0, failed 1"), "{stdout}");
    assert!(stderr.contains("cut.jpg") && stderr.contains("truncated"), "{stderr}");
    assert!(out.join("whole.png").exists() && !out.join("cut.png").exists());
}

/// `colorizer colorize IN -o OUT --quiet ARGS` with `env` set (and no other `COLORIZER_MODEL`
/// or `COLORIZER_DEFAULT_MODEL` from the test's own environment): exit code, stdout, stderr.
fn colorize_env(input: &Path, out: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_colorizer"));
    cmd.arg("colorize").arg(input).arg("-o").arg(out).arg("--quiet").args(args);
    cmd.env_remove("COLORIZER_MODEL").env_remove("COLORIZER_DEFAULT_MODEL").envs(env.iter().copied());
    let o = cmd.output().unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

const TWO_MODELS: &str = "fixture=tests/fixtures/untrained-colorizer.onnx,l2=tests/fixtures/untrained-l2.onnx";

#[test]
fn colorize_reads_the_model_list_and_the_default_like_serve() {
    let root = tempdir("model-list");
    let input = root.join("photo.png");
    write(&input, &gray_png(40, 30));
    // The server's settings: a NAME=PATH list and the default among them.
    let env = [("COLORIZER_MODEL", TWO_MODELS), ("COLORIZER_DEFAULT_MODEL", "l2")];
    let (code, stdout, stderr) = colorize_env(&input, &root.join("l2"), &[], &env);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("colorized 1") && stdout.contains("model l2"), "{stdout}");
    assert_eq!(image::open(root.join("l2/photo.png")).unwrap().dimensions(), (40, 30));
    // The flag overrides the variable; the default may also name an embedded model.
    let (code, stdout, stderr) = colorize_env(&input, &root.join("fixture"), &["--default-model", "fixture"], &env);
    assert!(code == Some(0) && stdout.contains("model fixture"), "{stdout}{stderr}");
    let env = [("COLORIZER_MODEL", TWO_MODELS), ("COLORIZER_DEFAULT_MODEL", "landscape")];
    let (code, stdout, stderr) = colorize_env(&input, &root.join("landscape"), &[], &env);
    assert!(code == Some(0) && stdout.contains("model landscape"), "{stdout}{stderr}");
    // Several models and nothing saying which: an error that says how to choose.
    let (code, _, stderr) = colorize_env(&input, &root.join("none"), &[], &[("COLORIZER_MODEL", TWO_MODELS)]);
    assert!(code == Some(1) && stderr.contains("--default-model") && stderr.contains("fixture, l2"), "{code:?} {stderr}");
    assert!(!root.join("none/photo.png").exists());
}

#[test]
fn unknown_models_and_unreadable_files_are_clear_errors() {
    let root = tempdir("unknown-model");
    let input = root.join("photo.png");
    write(&input, &gray_png(40, 30));
    let out = root.join("out");
    // A bare name that is neither an embedded model nor a file.
    let (code, _, stderr) = colorize_env(&input, &out, &["--model", "sepia"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("unknown model \"sepia\"") && stderr.contains("broad, general, guided, l2, landscape, vivid"), "{stderr}");
    // A default that names none of the models, listed or embedded.
    let env = [("COLORIZER_MODEL", TWO_MODELS), ("COLORIZER_DEFAULT_MODEL", "sepia")];
    let (code, _, stderr) = colorize_env(&input, &out, &[], &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("\"sepia\"") && stderr.contains("fixture") && stderr.contains("l2, landscape"), "{stderr}");
    // A file that cannot be read, by path or as NAME=PATH.
    for spec in ["/nonexistent/model.onnx", "gone=/nonexistent/model.onnx"] {
        let (code, _, stderr) = colorize_env(&input, &out, &["--model", spec], &[]);
        assert!(code == Some(1) && stderr.contains("could not read model file /nonexistent/model.onnx"), "{spec}: {stderr}");
    }
    assert!(!out.join("photo.png").exists());
}

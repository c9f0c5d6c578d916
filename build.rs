//! Embeds the ONNX models of `models/` into the binary so that it can serve with no files beside
//! it. `models/colorizer-NAME.onnx` is embedded as NAME; `models/colorizer.onnx` names the
//! default: a symbolic link to `colorizer-NAME.onnx` makes NAME the default, a plain file is
//! embedded as "default".

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    embed_models();
    embed_web();
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Embeds every file under `web/` (the demo page) as (relative path, bytes, content type).
fn embed_web() {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let dir = Path::new(&root).join("web");
    println!("cargo:rerun-if-changed=web");
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else { continue };
        for e in read.flatten() {
            let p = e.path();
            println!("cargo:rerun-if-changed={}", p.display());
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&dir).unwrap().to_string_lossy().replace('\\', "/");
                files.push((rel, p.canonicalize().unwrap().display().to_string()));
            }
        }
    }
    files.sort();
    let mut code = String::from(
        "/// The demo page's files: (path under web/, bytes, content type).\npub static WEB_FILES: &[(&str, &[u8], &str)] = &[\n",
    );
    for (rel, path) in &files {
        writeln!(code, "    ({rel:?}, include_bytes!({path:?}), {:?}),", mime(rel)).unwrap();
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("web_files.rs");
    std::fs::write(out, code).unwrap();
}

fn embed_models() {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let dir = Path::new(&root).join("models");
    println!("cargo:rerun-if-changed=models");
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut default = None;
    if let Ok(read) = std::fs::read_dir(&dir) {
        for e in read.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            println!("cargo:rerun-if-changed={}", path.display());
            if let Some(name) = file.strip_prefix("colorizer-").and_then(|f| f.strip_suffix(".onnx")) {
                entries.push((name.to_string(), path.canonicalize().unwrap().display().to_string()));
            } else if file == "colorizer.onnx" {
                match std::fs::read_link(&path) {
                    Ok(target) => {
                        let t = target.file_name().unwrap().to_string_lossy().into_owned();
                        let name = t
                            .strip_prefix("colorizer-")
                            .and_then(|f| f.strip_suffix(".onnx"))
                            .unwrap_or_else(|| panic!("models/colorizer.onnx links to {t}, not to models/colorizer-NAME.onnx"));
                        default = Some(name.to_string());
                    }
                    Err(_) => {
                        entries.push(("default".into(), path.canonicalize().unwrap().display().to_string()));
                        default = Some("default".into());
                    }
                }
            }
        }
    }
    entries.sort();
    let mut code = String::from("/// Models embedded at build time: (name, ONNX bytes).\npub static EMBEDDED: &[(&str, &[u8])] = &[\n");
    for (name, path) in &entries {
        writeln!(code, "    ({name:?}, include_bytes!({path:?})),").unwrap();
    }
    code.push_str("];\n");
    writeln!(code, "/// Name of the embedded default model.\npub const EMBEDDED_DEFAULT: Option<&str> = {default:?};").unwrap();
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded_models.rs");
    std::fs::write(out, code).unwrap();
}

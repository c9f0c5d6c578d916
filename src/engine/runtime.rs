//! Loading ONNX Runtime (dynamically, from the library the repo's `scripts/fetch-ort.sh` fetches)
//! and building sessions.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

#[derive(Debug, thiserror::Error)]
#[error(
    "could not load ONNX Runtime from {path}: {message} (run scripts/fetch-ort.sh, or pass --ort-lib / COLORIZER_ORT_LIB / ORT_DYLIB_PATH)"
)]
pub struct RuntimeError {
    pub path: String,
    pub message: String,
}

/// The process's one ONNX Runtime environment (ort keeps only a weak reference to it).
static RUNTIME: OnceLock<Result<(PathBuf, Environment), String>> = OnceLock::new();

const LIB_NAME: &str = "libonnxruntime.so.1.31.1";

fn candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let mut c = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        c.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            c.push(dir.join(LIB_NAME));
            // target/{debug,release}/colorizer inside the repo: the fetched library in .ort/.
            if let Some(repo) = dir.parent().and_then(Path::parent) {
                c.push(repo.join(".ort").join(LIB_NAME));
            }
        }
    }
    c.push(PathBuf::from(".ort").join(LIB_NAME));
    c
}

/// Loads ONNX Runtime once per process; later calls return the first result.
pub fn init_runtime(explicit: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    let result = RUNTIME.get_or_init(|| {
        let cands = candidates(explicit);
        let path = cands.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| cands[0].clone());
        let env = ort::init_from(&path).map_err(|e| e.to_string())?;
        let env = env.with_name("colorizer").build().map_err(|e| e.to_string())?;
        Ok((path, env))
    });
    result.as_ref().map(|(p, _)| p.clone()).map_err(|message| RuntimeError {
        path: candidates(explicit).first().map(|p| p.display().to_string()).unwrap_or_default(),
        message: message.clone(),
    })
}

/// A session builder with the service's settings: full graph optimisation, `threads` intra-op
/// threads, no inter-op parallelism, and no spinning (sessions share the cores).
pub fn session_builder(threads: usize) -> ort::Result<SessionBuilder> {
    let env = match RUNTIME.get() {
        Some(Ok((_, env))) => env,
        _ => return Err(ort::Error::new("ONNX Runtime is not loaded: call init_runtime first")),
    };
    Ok(SessionBuilder::new(env)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(threads.max(1))?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .with_inter_op_spinning(false)?)
}

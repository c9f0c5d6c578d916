//! Command line and environment configuration. Every setting is a flag with a `COLORIZER_*`
//! environment twin.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::params::OutputFormat;
use crate::params::{JpegQuality, Temperature};

#[derive(Debug, Parser)]
#[command(name = "colorizer", version, about = "Colorizes grayscale photos (Zhang et al., ECCV 2016) over HTTP or from the command line")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings of `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Colorize files and folders (recursively) into OUTDIR with the same pipeline as the server.
    Colorize(ColorizeArgs),
    /// Exit 0 when the service at --url answers 200 (for container health checks).
    Healthcheck(HealthcheckArgs),
}

/// Which models a command has and which one it uses when nothing else says: the same flags,
/// environment variables and meaning for `serve` and `colorize` (`crate::models`).
#[derive(Debug, Clone, Args)]
pub struct ModelChoice {
    /// Models to load, each NAME=PATH, PATH (named by its file stem) or the NAME of an embedded
    /// model. Repeatable, or comma-separated (so in the environment). `serve` loads them all
    /// beside the embedded models; `colorize` loads only the one it runs (see --default-model).
    #[arg(long = "model", env = "COLORIZER_MODEL", value_delimiter = ',', value_name = "NAME=PATH|PATH|NAME")]
    pub models: Vec<String>,
    /// Name of the model used when nothing else says: `serve`'s for requests that name none
    /// (default: the embedded default model, or the first --model with --no-embedded-models or
    /// nothing embedded); the model `colorize` runs (default: the one --model when it lists one,
    /// else the embedded default). A --model's name or an embedded model's.
    #[arg(long, env = "COLORIZER_DEFAULT_MODEL", value_name = "NAME")]
    pub default_model: Option<String>,
}

/// Where the server's models come from and how each is run.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub choice: ModelChoice,
    /// Do not load the models embedded in the binary (except those --model names).
    #[arg(long, env = "COLORIZER_NO_EMBEDDED_MODELS")]
    pub no_embedded_models: bool,
    /// ONNX Runtime sessions per model (requests run at once per model).
    #[arg(long, env = "COLORIZER_POOL_SIZE", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub pool_size: u32,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// How ONNX Runtime is found and runs each model: the same flags for `serve` and `colorize`.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Intra-op threads of each session.
    #[arg(long, env = "COLORIZER_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,
    /// Short side the image is resized to for models with dynamic input size (multiple of 16);
    /// default: the model's own `colorizer.input_size` metadata, else 256.
    #[arg(long, env = "COLORIZER_INFERENCE_SIZE", value_parser = clap::value_parser!(u32).range(16..=2048))]
    pub inference_size: Option<u32>,
    /// Path of libonnxruntime.so (default: $ORT_DYLIB_PATH, else beside the executable).
    #[arg(long, env = "COLORIZER_ORT_LIB")]
    pub ort_lib: Option<PathBuf>,
    /// Keep large buffers (4 MiB and more) in ordinary 4 KiB pages instead of transparent huge
    /// pages: more page faults, but no wait for the kernel to compact a huge page on a host whose
    /// memory is fragmented (src/hugepages.rs).
    #[arg(long, env = "COLORIZER_NO_HUGE_PAGES")]
    pub no_huge_pages: bool,
}

impl RuntimeArgs {
    /// Session pools of `pool_size` sessions (how many more requests may wait for one is the
    /// server's `admission::ModelQueue`, not the pool's).
    pub(crate) fn pool_options(&self, pool_size: usize) -> crate::engine::PoolOptions {
        crate::engine::PoolOptions { pool_size, threads: self.threads as usize, inference_size: self.inference_size }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest accepted request body in bytes.
    #[arg(long, env = "COLORIZER_MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest accepted image, in pixels (width x height after decoding headers).
    #[arg(long, env = "COLORIZER_MAX_PIXELS", default_value_t = 50_000_000)]
    pub max_pixels: u64,
    /// Largest side of an accepted image, in pixels.
    #[arg(long, env = "COLORIZER_MAX_SIDE", default_value_t = 32_768)]
    pub max_side: u32,
    /// Most memory a decoder may allocate, in bytes.
    #[arg(long, env = "COLORIZER_MAX_DECODE_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_decode_bytes: u64,
}

impl LimitArgs {
    /// The decoding limits these flags set (the server and the CLI both use this).
    pub fn decode_limits(&self) -> crate::pipeline::Limits {
        crate::pipeline::Limits { max_pixels: self.max_pixels, max_side: self.max_side, max_decode_bytes: self.max_decode_bytes }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "COLORIZER_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "COLORIZER_PORT", default_value_t = 8080)]
    pub port: u16,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Requests that may wait for a session beyond those running; more are refused with 503.
    #[arg(long, env = "COLORIZER_QUEUE", default_value_t = 16)]
    pub queue: u32,
    /// Memory that requests may hold at once, in bytes or with a unit (1GiB, 512MiB, 2GB). Each
    /// request reserves what its image will cost, estimated from its header before decoding;
    /// 503 + Retry-After when that does not fit now, 422 when it never can. Default: half the
    /// container's memory limit (cgroup v2 memory.max or v1 memory.limit_in_bytes), else a
    /// quarter of RAM, at most 1.5 GiB.
    #[arg(long, env = "COLORIZER_MEMORY_BUDGET", value_parser = parse_budget)]
    pub memory_budget: Option<u64>,
    /// Deadline of one request in milliseconds (504 past it).
    #[arg(long, env = "COLORIZER_DEADLINE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub deadline_ms: u64,
    /// Time to read a request's headers, in milliseconds (also how long an idle keep-alive
    /// connection stays open).
    #[arg(long, env = "COLORIZER_HEADER_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_ms: u64,
    /// Time to read a request's body once its headers are in, in milliseconds: 408 past it, and
    /// the connection is closed.
    #[arg(long, env = "COLORIZER_BODY_TIMEOUT_MS", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_ms: u64,
    /// Most connections open at once; more wait in the listen backlog until one closes.
    #[arg(long, env = "COLORIZER_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// On SIGTERM / Ctrl-C, how long in-flight requests may take to finish, in seconds.
    #[arg(long, env = "COLORIZER_DRAIN_TIMEOUT_S", default_value_t = 30)]
    pub drain_timeout_s: u64,
    /// Log as JSON lines (one object per event) instead of text.
    #[arg(long, env = "COLORIZER_LOG_JSON")]
    pub log_json: bool,
    /// Bearer tokens that may call /colorize, comma-separated; empty: no authentication.
    #[arg(long, env = "COLORIZER_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<String>,
    /// Origins allowed by CORS, comma-separated ("*" for any); empty: CORS off.
    #[arg(long, env = "COLORIZER_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Enables test-only fault injection (the `X-Colorizer-Fault: panic` request header).
    #[arg(long, env = "COLORIZER_FAULT_INJECTION", hide = true)]
    pub fault_injection: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ColorizeArgs {
    /// Input files or folders (folders are walked recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder (created); the relative layout of folders is kept.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Decoding temperature, 0 < T <= 1 (default: the model's own, else 0.38).
    #[arg(short, long)]
    pub temperature: Option<Temperature>,
    /// Output format (default: png).
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Png)]
    pub format: OutputFormat,
    /// JPEG quality, 1..100.
    #[arg(long, default_value_t = JpegQuality::DEFAULT)]
    pub quality: JpegQuality,
    /// Overwrite existing output files.
    #[arg(long)]
    pub force: bool,
    /// Worker threads (default: all cores).
    #[arg(short, long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub models: ModelChoice,
    /// Colour hints for a single input image: a JSON file `[{"x": 120, "y": 48, "color":
    /// "#b03a2e"}, ...]` (optional "radius"), points in the image's pixels after EXIF
    /// orientation; needs a model that takes hints (see `/info` or the model card).
    #[arg(long, value_name = "FILE.json")]
    pub hints: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// URL to probe (default: http://127.0.0.1:$COLORIZER_PORT/healthz, port 8080 when unset).
    #[arg(long)]
    pub url: Option<String>,
    /// Timeout in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
}

fn parse_budget(text: &str) -> Result<u64, String> {
    let bytes = crate::admission::parse_bytes(text)?;
    if bytes < 1 << 20 {
        return Err(format!("{text:?}: the memory budget must be at least 1MiB"));
    }
    Ok(bytes)
}

//! The command line's own work: `colorize` over files and folders, and `healthcheck`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::config::{ColorizeArgs, HealthcheckArgs};
use crate::engine::{init_runtime, Engine};
use crate::hints::{self, ColourHint};
use crate::pipeline::{self, Limits, OutputOptions, PipelineError};

/// Extensions treated as images when walking folders.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"];

/// One file to colorize: where it is and where its result goes (relative to the output folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) input: PathBuf,
    pub(crate) relative: PathBuf,
}

fn is_image_name(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Files and folders expanded into jobs.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) jobs: Vec<Job>,
    /// Files in folders that do not look like images: reported as skipped.
    pub(crate) skipped: Vec<(PathBuf, String)>,
    /// Inputs that do not exist or cannot be walked: reported as failed.
    pub(crate) missing: Vec<(PathBuf, String)>,
}

/// Expands files and folders (recursively, sorted) into jobs.
pub(crate) fn collect_jobs(inputs: &[PathBuf]) -> Collected {
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    let mut missing = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut entries: Vec<_> = walkdir::WalkDir::new(input).follow_links(true).into_iter().collect();
            entries.sort_by(|a, b| match (a, b) {
                (Ok(a), Ok(b)) => a.path().cmp(b.path()),
                _ => std::cmp::Ordering::Equal,
            });
            for entry in entries {
                match entry {
                    Ok(e) if e.file_type().is_file() => {
                        let p = e.path().to_path_buf();
                        if is_image_name(&p) {
                            let relative = p.strip_prefix(input).unwrap_or(&p).to_path_buf();
                            jobs.push(Job { input: p, relative });
                        } else {
                            skipped.push((p, "not an image file name".to_string()));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => missing.push((input.clone(), format!("cannot walk: {e}"))),
                }
            }
        } else if input.is_file() {
            let name = input.file_name().map(PathBuf::from).unwrap_or_else(|| input.clone());
            jobs.push(Job { input: input.clone(), relative: name });
        } else {
            missing.push((input.clone(), "no such file or folder".to_string()));
        }
    }
    Collected { jobs, skipped, missing }
}

enum Outcome {
    Done,
    Skipped(String),
    Failed(String),
}

fn run_job(
    engine: &Engine,
    job: &Job,
    out_dir: &Path,
    limits: &Limits,
    opts: &OutputOptions,
    hints: &[ColourHint],
    force: bool,
) -> Outcome {
    let dest = out_dir.join(&job.relative).with_extension(opts.format.extension());
    if dest.exists() && !force {
        return Outcome::Skipped(format!("{} exists (use --force to overwrite)", dest.display()));
    }
    let bytes = match std::fs::read(&job.input) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("cannot read: {e}")),
    };
    let done = match pipeline::colorize(engine, &bytes, limits, opts, hints) {
        Ok(d) => d,
        Err(PipelineError::NotAnImage(m)) | Err(PipelineError::Unsupported(m)) => {
            return Outcome::Skipped(format!("not an image we can read: {m}"))
        }
        Err(e) => return Outcome::Failed(crate::error_chain(&e)),
    };
    if let Some(parent) = dest.parent() {
        if let Err(e) = std::fs::create_dir_all(parent) {
            return Outcome::Failed(format!("cannot create {}: {e}", parent.display()));
        }
    }
    // Write beside, then rename: a crash never leaves a half-written result.
    let tmp = dest.with_extension(format!("{}.partial", opts.format.extension()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(&done.bytes)).and_then(|_| std::fs::rename(&tmp, &dest));
    match written {
        Ok(()) => Outcome::Done,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Outcome::Failed(format!("cannot write {}: {e}", dest.display()))
        }
    }
}

/// `colorizer colorize IN... -o OUTDIR`.
pub fn colorize(args: ColorizeArgs) -> ExitCode {
    let start = Instant::now();
    let jobs_n = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    let (engine, hints) = match load(&args, jobs_n) {
        Ok(loaded) => loaded,
        Err(refused) => {
            eprintln!("error: {}", refused.message);
            return refused.status;
        }
    };
    let opts = OutputOptions {
        temperature: args.temperature.unwrap_or(engine.info().default_temperature),
        format: args.format,
        quality: args.quality,
    };
    let collected = collect_jobs(&args.inputs);
    if let Err(e) = std::fs::create_dir_all(&args.output) {
        eprintln!("error: cannot create {}: {e}", args.output.display());
        return ExitCode::FAILURE;
    }
    let run = Run { engine: &engine, out_dir: &args.output, limits: args.limits.decode_limits(), opts, hints: &hints, force: args.force };
    let Tally { done, skipped, failed } = run.all(collected, jobs_n, args.quiet);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "colorized {done}, skipped {skipped}, failed {failed} in {secs:.1} s (model {}, {} jobs) -> {}",
        engine.name(),
        jobs_n,
        args.output.display()
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Why the command stops before touching any file, and its exit status (2: bad usage).
struct Refused {
    message: String,
    status: ExitCode,
}

impl Refused {
    fn usage(message: String) -> Self {
        Self { message, status: ExitCode::from(2) }
    }

    fn failure(message: String) -> Self {
        Self { message, status: ExitCode::FAILURE }
    }
}

/// The hints, ONNX Runtime and the model with `jobs_n` sessions; the hints checked against it.
fn load(args: &ColorizeArgs, jobs_n: usize) -> Result<(Engine, Vec<ColourHint>), Refused> {
    let hints = read_hints(args).map_err(Refused::usage)?;
    init_runtime(args.runtime.ort_lib.as_deref()).map_err(|e| Refused::failure(e.to_string()))?;
    let source = crate::models::choose(&args.models).map_err(|e| Refused::failure(e.to_string()))?;
    let engine = Engine::load(&source, args.runtime.pool_options(jobs_n)).map_err(|e| Refused::failure(crate::error_chain(&e)))?;
    pipeline::check_hints_accepted(&engine, &hints).map_err(|e| Refused::usage(format!("--hints: {e}")))?;
    Ok((engine, hints))
}

/// What every file of one command is colorized with.
struct Run<'a> {
    engine: &'a Engine,
    out_dir: &'a Path,
    limits: Limits,
    opts: OutputOptions,
    hints: &'a [ColourHint],
    force: bool,
}

/// Files colorized, skipped and failed.
struct Tally {
    done: usize,
    skipped: usize,
    failed: usize,
}

impl Run<'_> {
    /// Colorizes the jobs on `jobs_n` threads with a progress bar (none when `quiet`); files
    /// that are not images and inputs that are missing count as skipped and failed.
    fn all(&self, collected: Collected, jobs_n: usize, quiet: bool) -> Tally {
        let Collected { jobs, skipped: not_images, missing } = collected;
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(jobs.len() as u64) };
        bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}  {msg}").expect("template"));
        for (p, why) in &not_images {
            bar.suspend(|| eprintln!("warning: skipped {}: {why}", p.display()));
        }
        for (p, why) in &missing {
            bar.suspend(|| eprintln!("error: {}: {why}", p.display()));
        }
        let (done, skipped, failed) = (AtomicUsize::new(0), AtomicUsize::new(not_images.len()), AtomicUsize::new(missing.len()));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs_n).build().expect("thread pool");
        pool.install(|| {
            jobs.par_iter().for_each(|job| {
                match run_job(self.engine, job, self.out_dir, &self.limits, &self.opts, self.hints, self.force) {
                    Outcome::Done => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Skipped(why) => {
                        skipped.fetch_add(1, Ordering::Relaxed);
                        bar.suspend(|| eprintln!("warning: skipped {}: {why}", job.input.display()));
                    }
                    Outcome::Failed(why) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        bar.suspend(|| eprintln!("error: failed {}: {why}", job.input.display()));
                    }
                }
                bar.inc(1);
            });
        });
        bar.finish_and_clear();
        Tally { done: done.into_inner(), skipped: skipped.into_inner(), failed: failed.into_inner() }
    }
}

/// The hints of `--hints FILE` (none without it); hints are for one image, so `--hints` takes
/// exactly one input file.
fn read_hints(args: &ColorizeArgs) -> Result<Vec<ColourHint>, String> {
    let Some(path) = &args.hints else { return Ok(Vec::new()) };
    if args.inputs.len() != 1 || !args.inputs[0].is_file() {
        return Err("--hints takes exactly one input image file (hints are points of that image)".into());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("--hints {}: {e}", path.display()))?;
    hints::parse(&bytes).map_err(|e| format!("--hints {}: {e}", path.display()))
}

/// `colorizer healthcheck`: a minimal HTTP/1.1 GET (no client library, works in a shell-less
/// container); exit 0 on a 2xx answer.
pub fn healthcheck(args: &HealthcheckArgs) -> ExitCode {
    let url = args.url.clone().unwrap_or_else(|| {
        let port = std::env::var("COLORIZER_PORT").ok().and_then(|p| p.trim().parse::<u16>().ok()).unwrap_or(8080);
        format!("http://127.0.0.1:{port}/healthz")
    });
    match probe(&url, Duration::from_millis(args.timeout_ms)) {
        Ok(200..=299) => ExitCode::SUCCESS,
        Ok(code) => {
            eprintln!("unhealthy: {url} answered {code}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(url: &str, timeout: Duration) -> std::io::Result<u16> {
    use std::net::{TcpStream, ToSocketAddrs};
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_string());
    let rest = url.strip_prefix("http://").ok_or_else(|| bad("only http:// URLs are supported"))?;
    let (hostport, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let addr = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:80") };
    let sock = addr.to_socket_addrs()?.next().ok_or_else(|| bad("host did not resolve"))?;
    let mut s = TcpStream::connect_timeout(&sock, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head)?;
    let line = std::str::from_utf8(&head[..n]).unwrap_or("");
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| bad("not an HTTP answer"))
}

//! The limit the service is measured against: nothing but `Session::run` on the service's model,
//! at the input size the service feeds it for a given image, with the service's session settings
//! (full graph optimisation, `threads` intra-op threads, one inter-op thread, no spinning; see
//! src/engine/runtime.rs), as many images per second as `sessions` OS threads can do, each with
//! its own session.
//!
//! ```text
//! ort-raw --model M.onnx [--lib libonnxruntime.so] [--sessions 2] [--threads 1] [--seconds 10]
//!         [--image 256x256] [--inference-size N] [--warmup 3]
//! ```
//! Prints one JSON object on stdout.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::TensorRef;

struct Args {
    model: String,
    lib: String,
    sessions: usize,
    threads: usize,
    seconds: f64,
    image: (u32, u32),
    inference_size: Option<u32>,
    warmup: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        model: String::new(),
        lib: std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| ".ort/libonnxruntime.so.1.31.1".into()),
        sessions: 2,
        threads: 1,
        seconds: 10.0,
        image: (256, 256),
        inference_size: None,
        warmup: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = val()?,
            "--lib" => a.lib = val()?,
            "--sessions" => a.sessions = val()?.parse().map_err(|e| format!("--sessions: {e}"))?,
            "--threads" => a.threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--seconds" => a.seconds = val()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--warmup" => a.warmup = val()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--inference-size" => a.inference_size = Some(val()?.parse().map_err(|e| format!("--inference-size: {e}"))?),
            "--image" => {
                let v = val()?;
                let (w, h) = v.split_once('x').ok_or("--image WxH")?;
                a.image = (w.parse().map_err(|e| format!("--image: {e}"))?, h.parse().map_err(|e| format!("--image: {e}"))?);
            }
            "-h" | "--help" => {
                println!("ort-raw --model M.onnx [--lib LIB] [--sessions S] [--threads T] [--seconds D] [--image WxH] [--inference-size N] [--warmup N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.model.is_empty() {
        return Err("--model is required".into());
    }
    Ok(a)
}

fn round16(v: u32) -> u32 {
    (v.div_ceil(16) * 16).max(16)
}

/// The same rule as `Engine::input_size_for` for dynamic models: short side to the inference size
/// (kept as it is between the model's minimum and the inference size), long side at most 4x it,
/// each side a multiple of 16. Returns (height, width).
fn input_size_for(inference: u32, min: u32, width: u32, height: u32) -> (u32, u32) {
    let target = inference as f64;
    let (short, long) = (width.min(height).max(1) as f64, width.max(height).max(1) as f64);
    let want = short.clamp(min.min(inference) as f64, target);
    let scale = (want / short).min(4.0 * target / long);
    let side = |v: u32| (((v as f64 * scale) / 16.0).round() as u32).max(1) * 16;
    (side(height), side(width))
}

/// The service's session settings (src/engine/runtime.rs `session_builder`).
fn session(env: &ort::environment::Environment, model: &[u8], threads: usize) -> ort::Result<Session> {
    SessionBuilder::new(env)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(threads.max(1))?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .with_inter_op_spinning(false)?
        .commit_from_memory(model)
}

/// utime + stime of this process (all threads), in clock ticks, from /proc/self/stat.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3; utime 14 and stime 15 (1-based).
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let env = ort::init_from(&args.lib)?.with_name("ort-raw").build()?;
    let model = std::fs::read(&args.model)?;

    // The inference size, read from the model's metadata as the service does.
    let probe = session(&env, &model, 1)?;
    let meta = |key: &str| probe.metadata().ok().and_then(|m| m.custom(key)).and_then(|s| s.trim().parse::<u32>().ok());
    let (meta_size, meta_min) = (meta("colorizer.input_size"), meta("colorizer.min_input_size"));
    drop(probe);
    let inference = round16(args.inference_size.or(meta_size).unwrap_or(256));
    let min = meta_min.map_or(inference, |m| round16(m).min(inference));
    let (h, w) = input_size_for(inference, min, args.image.0, args.image.1);
    let (hu, wu) = (h as usize, w as usize);
    // A smooth synthetic L plane (cost does not depend on the values; they only need to be finite).
    let input: Vec<f32> =
        (0..hu * wu).map(|i| 20.0 + 60.0 * (((i / wu) as f32 / hu as f32) * 0.7 + ((i % wu) as f32 / wu as f32) * 0.3)).collect();

    let start_line = Barrier::new(args.sessions + 1);
    let duration = Duration::from_secs_f64(args.seconds);
    let (env, model, input, start_line) = (&env, &model[..], &input[..], &start_line);
    let (threads, warmup) = (args.threads, args.warmup);
    let mut all = Vec::new();
    let mut shape = Vec::new();
    let mut ends = Vec::new();
    let mut ticks0 = 0;
    std::thread::scope(|scope| -> Result<(), String> {
        let mut handles = Vec::new();
        for _ in 0..args.sessions {
            handles.push(scope.spawn(move || -> Result<(Vec<f64>, Vec<i64>), String> {
                let mut sess = match session(env, model, threads) {
                    Ok(s) => s,
                    Err(e) => {
                        start_line.wait();
                        return Err(e.to_string());
                    }
                };
                // A hint model (second input) gets an all-zero hint map, as the service feeds it.
                let zeros = vec![0.0f32; 3 * hu * wu];
                let hinted = sess.inputs().len() > 1;
                let run_once = |sess: &mut Session| -> Result<Vec<i64>, String> {
                    let t = TensorRef::from_array_view(([1usize, 1, hu, wu], input)).map_err(|e| e.to_string())?;
                    let out = if hinted {
                        let z = TensorRef::from_array_view(([1usize, 3, hu, wu], &zeros[..])).map_err(|e| e.to_string())?;
                        sess.run(ort::inputs![t, z]).map_err(|e| e.to_string())?
                    } else {
                        sess.run(ort::inputs![t]).map_err(|e| e.to_string())?
                    };
                    Ok(out[0].shape().iter().copied().collect())
                };
                let mut out_shape = Vec::new();
                for _ in 0..warmup {
                    match run_once(&mut sess) {
                        Ok(s) => out_shape = s,
                        Err(e) => {
                            // Still meet the others at the start line, or they wait forever.
                            start_line.wait();
                            return Err(e);
                        }
                    }
                }
                start_line.wait();
                let t0 = Instant::now();
                let mut lat = Vec::new();
                while t0.elapsed() < duration {
                    let s = Instant::now();
                    run_once(&mut sess)?;
                    lat.push(s.elapsed().as_secs_f64());
                }
                Ok((lat, out_shape))
            }));
        }
        start_line.wait();
        let t0 = Instant::now();
        ticks0 = cpu_ticks();
        for hdl in handles {
            let (lat, s) = hdl.join().map_err(|_| "a worker panicked".to_string())??;
            ends.push(t0.elapsed().as_secs_f64());
            all.extend(lat);
            shape = s;
        }
        Ok(())
    })?;
    let ticks = cpu_ticks() - ticks0;
    // Every worker stops at its first run that ends past the deadline: use the last end.
    let wall = ends.iter().cloned().fold(0.0f64, f64::max);
    let n = all.len();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let ms = |v: f64| v * 1000.0;
    println!(
        "{{\"sessions\": {}, \"threads\": {}, \"image\": [{}, {}], \"input_hw\": [{}, {}], \"output_shape\": {:?}, \"images\": {}, \"seconds\": {:.3}, \"images_per_s\": {:.3}, \"mean_ms\": {:.3}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \"p99_ms\": {:.3}, \"cpu_ticks\": {}}}",
        args.sessions,
        args.threads,
        args.image.0,
        args.image.1,
        h,
        w,
        shape,
        n,
        wall,
        n as f64 / wall,
        ms(all.iter().sum::<f64>() / n.max(1) as f64),
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 90.0)),
        ms(percentile(&all, 99.0)),
        ticks,
    );
    Ok(())
}

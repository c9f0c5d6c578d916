use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use colorizer::config::{Cli, Command, ServeArgs};
use colorizer::startup::Application;

/// Large buffers in transparent huge pages (src/hugepages.rs).
#[global_allocator]
static ALLOC: colorizer::hugepages::HugePageAlloc = colorizer::hugepages::HugePageAlloc;

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    let runtime = match &cli.command {
        Some(Command::Colorize(args)) => Some(&args.runtime),
        Some(Command::Serve(args)) => Some(&args.model.runtime),
        Some(Command::Healthcheck(_)) => None,
        None => Some(&cli.serve.model.runtime),
    };
    colorizer::hugepages::set_enabled(runtime.is_none_or(|r| !r.no_huge_pages));
    match cli.command {
        Some(Command::Colorize(args)) => colorizer::cli::colorize(args),
        Some(Command::Healthcheck(args)) => colorizer::cli::healthcheck(&args),
        Some(Command::Serve(args)) => serve(args, started),
        None => serve(cli.serve, started),
    }
}

fn serve(args: ServeArgs, started: Instant) -> ExitCode {
    colorizer::startup::init_tracing(args.log_json);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = rt.block_on(async {
        let app = Application::build(&args, started).await?;
        app.spawn_warm_up();
        app.run_until_stopped().await
    });
    // The drain is over (or timed out): jobs still running on the models' workers are not waited
    // for beyond this.
    rt.shutdown_timeout(Duration::from_secs(1));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

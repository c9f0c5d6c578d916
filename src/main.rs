use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use colorizer::config::{Cli, Command};

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Colorize(args)) => colorizer::cli::colorize(args),
        Some(Command::Healthcheck(args)) => colorizer::cli::healthcheck(&args),
        Some(Command::Serve(args)) => serve(args, started),
        None => serve(cli.serve, started),
    }
}

fn serve(args: colorizer::config::ServeArgs, started: Instant) -> ExitCode {
    colorizer::startup::init_tracing(args.log_json);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(colorizer::startup::run(args, started)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `harvest-sim`: runs the Harvest v3 simulator (see `crates/harvest-sim/README.md`).
//!
//! Prints its base URL as the first stdout line, logs to stderr (colours only on a terminal),
//! exits 0 on SIGINT/SIGTERM.

use std::io::IsTerminal;

use clap::Parser;
use harvest_sim::{SimConfig, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Escape codes in a CI log or a redirected file are noise: colour a terminal only.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = SimConfig::parse();
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harvest-sim: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

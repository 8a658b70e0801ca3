//! Log set-up: human-readable lines on stderr, or one JSON object per line with
//! `--log-format json` (for Airflow and log shippers). Stdout is reserved for command output;
//! as an Airbyte source (where stdout carries messages only) log lines become LOG messages.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stderr(LogFormat),
    /// Airbyte LOG messages on stdout (plain text inside, no timestamps: the platform adds them).
    AirbyteLog,
}

/// Installs the global subscriber. `RUST_LOG` overrides the level chosen by -q/-v.
pub fn init(target: LogTarget, verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our own crate at the chosen level; dependencies one notch quieter unless tracing.
    let default = if level == "trace" {
        "trace".to_string()
    } else {
        format!("warn,greenhouse_extract={level}")
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let format = match target {
        LogTarget::Stderr(f) => f,
        LogTarget::AirbyteLog => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(crate::protocol::airbyte::LogLines)
                .with_ansi(false)
                .without_time()
                .with_level(false)
                .with_target(false)
                .try_init();
            return;
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

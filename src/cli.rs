//! Command-line definitions and dispatch. Parsing produces plain data; the heavy objects
//! (registry, config, client, destination) are built once, here, before any request.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::catalog;
use crate::config::{ConfigFile, Overrides};
use crate::error::{Error, ExitCode};
use crate::progress::RunProgress;
use crate::registry::Registry;

#[derive(Debug, Parser)]
#[command(
    name = "greenhouse-extract",
    version,
    about = "Copy Greenhouse Harvest v3 data into typed Parquet on object storage."
)]
pub struct Cli {
    /// Configuration file (JSON, or TOML when it ends in .toml). See `greenhouse-extract spec`.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (warnings and errors only).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the JSON Schema of the configuration file.
    Spec {
        /// A Markdown reference table instead (as in the README).
        #[arg(long)]
        markdown: bool,
    },
    /// Print the catalog of every stream (Singer format by default).
    Discover {
        #[arg(long, value_enum, default_value_t = CatalogFormat::Singer)]
        format: CatalogFormat,
    },
    /// Validate the configuration, obtain a token, probe each selected stream and the destination.
    Check(Selection),
    /// Read the selected streams and write Parquet and state to the destination.
    Sync(SyncArgs),
    /// Print the stream table (name, resource, mode, scope, group).
    Streams {
        /// Markdown table, as in the README.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CatalogFormat {
    Singer,
    Airbyte,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SyncArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Keep bookmarks in this local JSON file (Singer-style) instead of only beside the data:
    /// read at start, rewritten after every stream commit.
    #[arg(long, alias = "state", value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Plan the run without changing anything: read the state (no lease, no writes), probe each
    /// stream's first page, and print the windows and the estimated requests and time.
    #[arg(long)]
    pub dry_run: bool,
}

/// Stream and destination selection shared by `check` and `sync`.
#[derive(Debug, Args, Clone, Default)]
pub struct Selection {
    /// Comma-separated stream names (default: every non-sensitive stream).
    #[arg(long, value_delimiter = ',', value_name = "a,b,c")]
    pub streams: Option<Vec<String>>,
    /// Destination URL or folder (overrides GREENHOUSE_DESTINATION and the config file).
    #[arg(long, value_name = "URL")]
    pub destination: Option<String>,
    /// Also select the sensitive streams (EEOC, demographics) when no --streams list is given.
    #[arg(long)]
    pub include_sensitive: bool,
}

impl Selection {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            destination: self.destination.clone(),
            streams: self.streams.as_ref().map(|v| {
                v.iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            include_sensitive: self.include_sensitive,
        }
    }
}

/// Loads the config file (if any) and applies the process environment.
pub fn load_config_file(path: Option<&PathBuf>) -> Result<ConfigFile, Error> {
    let env = |k: &str| std::env::var(k).ok();
    // Secrets from the environment are registered before the file is even read, so an error
    // about the file (or a variable) can never quote them.
    let mut from_env = ConfigFile::default();
    for (key, slot) in [
        (crate::config::ENV_CLIENT_ID, &mut from_env.client_id),
        (
            crate::config::ENV_CLIENT_SECRET,
            &mut from_env.client_secret,
        ),
        (crate::config::ENV_ACCESS_TOKEN, &mut from_env.access_token),
        (crate::config::ENV_HASH_SALT, &mut from_env.hash_salt),
    ] {
        *slot = env(key);
    }
    from_env.register_secrets();
    let mut file = match path {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    file.register_secrets();
    file.apply_env(&env)?;
    file.register_secrets();
    Ok(file)
}

/// Runs a parsed command and returns the exit code to use.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let registry = Registry::embedded().map_err(|e| Error::Fatal(e.to_string()))?;
    match &cli.command {
        Command::Spec { markdown } => {
            if *markdown {
                print!("{}", crate::docs::config_table());
            } else {
                print!("{}", catalog::to_pretty(&crate::config::json_schema()));
            }
            Ok(ExitCode::Success)
        }
        Command::Discover { format } => {
            let c = match format {
                CatalogFormat::Singer => catalog::singer_catalog(&registry),
                CatalogFormat::Airbyte => catalog::airbyte_catalog(&registry),
            };
            print!("{}", catalog::to_pretty(&c));
            Ok(ExitCode::Success)
        }
        Command::Streams { markdown } => {
            print!("{}", crate::docs::stream_table(&registry, *markdown));
            Ok(ExitCode::Success)
        }
        Command::Sync(args) => {
            let file = load_config_file(cli.config.as_ref())?;
            let config = file.validate(&args.selection.overrides(), &registry)?;
            if args.dry_run {
                return crate::dryrun::run(&config, &registry, args.state_file.as_deref()).await;
            }
            let dest = crate::storage::open(&config.destination)?;
            let mut opts = crate::sync::SyncOptions::new();
            opts.state_file = args.state_file.clone();
            opts.progress = RunProgress::new(crate::progress::should_draw(
                std::io::stderr().is_terminal(),
                cli.log_format == LogFormat::Text,
                cli.quiet,
            ));
            let cancel = crate::sync::cancel_on_signals();
            let report = crate::sync::run(&config, &registry, &dest, &opts, cancel).await;
            // The bars go before anything else is printed (the summary, or main's error).
            opts.progress.finish();
            let report = report?;
            let summary =
                crate::sync::summary::render(&report.streams, &report.run_id, report.duration);
            print!("{}", crate::logging::scrub(&summary));
            if let Some(key) = &report.manifest_key {
                println!("Manifest: {key}");
            }
            Ok(report.exit_code())
        }
        Command::Check(sel) => {
            let file = load_config_file(cli.config.as_ref())?;
            let config = file.validate(&sel.overrides(), &registry)?;
            crate::check::run(&config, &registry).await
        }
    }
}

//! Command-line definitions and dispatch. Parsing produces plain data; the heavy objects
//! (registry, config, client, destination) are built once, here, before any request.
//!
//! Three ways in: the subcommands (`sync`, `check`, …); the Singer tap invocation with no
//! subcommand (`--discover`, `--catalog CAT [--state S]`, `--about`), as Meltano calls a tap;
//! and `airbyte <spec|check|discover|read>`, as the Airbyte platform calls a source image.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::cancel::{Cancel, Reason};
use crate::catalog;
use crate::config::{ConfigFile, Overrides};
use crate::error::{Error, ExitCode};
use crate::logging::{LogFormat, LogTarget};
use crate::progress::RunProgress;
use crate::protocol::{Out, airbyte, singer};
use crate::registry::Registry;

#[derive(Debug, Parser)]
#[command(
    name = "greenhouse-extract",
    version,
    about = "Copy Greenhouse Harvest v3 data into typed Parquet on object storage.",
    long_about = "Copy Greenhouse Harvest v3 data into typed Parquet on object storage.\n\nAlso a Singer tap (no subcommand: --discover, --catalog CAT [--state S], --about) and an Airbyte source (`airbyte spec|check|discover|read`)."
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
    // The Singer flags do not conflict with each other at the parser: Meltano appends
    // `--config`, `--catalog` (once it has one cached) and `--state` to whatever it invokes,
    // `--about` and `--discover` included, as the Singer SDK's taps accept. `run_singer` decides:
    // `--about` wins, then `--discover`; `--state` alone is a usage error.
    /// Singer: print the catalog of every stream (a given --catalog or --state is ignored).
    #[arg(long)]
    pub discover: bool,
    /// Singer: read the streams selected in this catalog and print Singer messages.
    #[arg(long, visible_alias = "properties", value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Singer: resume from this state (the last STATE value of a previous run); needs --catalog.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Singer: describe the tap (name, version, capabilities, settings) as JSON; any other
    /// Singer flag given with it is ignored.
    #[arg(long)]
    pub about: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Where this invocation's log lines go: Airbyte wants them as LOG messages on stdout.
    pub fn log_target(&self) -> LogTarget {
        match self.command {
            Some(Command::Airbyte { .. }) => {
                LogTarget::Messages(BoxMakeWriter::new(airbyte::LogLines))
            }
            _ => LogTarget::Stderr(self.log_format),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a shell completion script (e.g. `greenhouse-extract completions bash >
    /// /etc/bash_completion.d/greenhouse-extract`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `greenhouse-extract man > greenhouse-extract.1`.
    Man,
    /// Print the JSON Schema of the configuration file.
    Spec {
        /// A Markdown reference table instead (as in the README).
        #[arg(long)]
        markdown: bool,
        /// An example TOML config with every key documented (`examples/config.toml`).
        #[arg(long, conflicts_with = "markdown")]
        example: bool,
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
    /// Look at or repair the destination's state: `show`, `reset --streams a,b` (re-backfill
    /// them on the next sync), `unlock` (remove a stale run lease).
    State {
        #[command(subcommand)]
        command: crate::statecmd::StateCommand,
    },
    /// Erase deleted and anonymised candidates, and their cascaded children, from the raw
    /// history: rewrites the files holding their rows (new files first, then manifests and
    /// state, then the old files go). Resumes an interrupted purge. Needs no Greenhouse
    /// credentials.
    Purge {
        #[command(flatten)]
        target: crate::statecmd::Target,
        /// Print the outcome as one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Build the current-state Delta tables (`<destination>/current/<stream>/`) again from the
    /// raw history: how to adopt them on an existing destination, or take a declared type
    /// change. Takes the run lease; needs no Greenhouse credentials.
    Rebuild {
        #[command(flatten)]
        target: crate::statecmd::Target,
        /// Only these streams (comma-separated; default: every stream with raw files).
        #[arg(long, value_delimiter = ',', value_name = "a,b,c")]
        streams: Option<Vec<String>>,
    },
    /// Print the statements that make a warehouse read the destination as it is now: each
    /// current-state Delta table in the engine's Delta syntax, and each stream's raw history
    /// as an external table (declared types, the `extracted_date` partition) with a
    /// de-duplicating view. Reads listings and Delta logs only; needs no Greenhouse
    /// credentials.
    Ddl(DdlArgs),
    /// Receive Greenhouse web hooks: `serve` stores each signed event on the destination, where
    /// the next `sync` applies it (tombstones for deletes and merges).
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Run as an Airbyte source: every line on stdout is an Airbyte message.
    Airbyte {
        #[command(subcommand)]
        command: AirbyteCommand,
    },
}

#[derive(Debug, Args, Clone)]
pub struct DdlArgs {
    /// The warehouse whose SQL to print.
    #[arg(long, value_enum)]
    pub dialect: crate::ddl::Dialect,
    /// Only these streams or tables (comma-separated names or globs; default: everything the
    /// destination holds).
    #[arg(long, value_delimiter = ',', value_name = "a,b,c")]
    pub streams: Option<Vec<String>>,
    #[command(flatten)]
    pub target: crate::statecmd::Target,
    /// Schema (database; dataset, or `project.dataset`, in BigQuery) to create the tables and
    /// views in.
    #[arg(long, value_name = "NAME", default_value = crate::ddl::DEFAULT_SCHEMA)]
    pub schema: String,
    /// Snowflake: the storage integration of the stage (default `greenhouse_integration`);
    /// BigQuery: the connection of the BigLake tables (default `us.greenhouse`).
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,
    /// The destination's URL as the warehouse reaches it, used as given in every location
    /// (default: the destination's own URL, spelt as each engine spells its scheme).
    #[arg(long, value_name = "URL")]
    pub location: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AirbyteCommand {
    /// Print the connector specification (the config schema).
    Spec,
    /// Check the credentials and each stream's access; prints a CONNECTION_STATUS.
    Check,
    /// Print the catalog of every stream.
    Discover,
    /// Read the streams of a configured catalog.
    Read {
        /// The ConfiguredAirbyteCatalog.
        #[arg(long, value_name = "FILE")]
        catalog: PathBuf,
        /// The per-stream state list of the previous run.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Listen for Greenhouse web hook deliveries: verify each `Signature`, store the event under
    /// `<destination>/_webhooks/events/`, answer 200 once it is stored. Stops on SIGTERM or
    /// SIGINT after the requests in flight.
    Serve(ServeArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on, IP:port (overrides webhook_listen; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Destination URL or folder, the one `sync` writes to (overrides GREENHOUSE_DESTINATION
    /// and the config file).
    #[arg(long, value_name = "URL")]
    pub destination: Option<String>,
    /// PEM certificate chain: answer HTTPS directly (overrides webhook_tls_cert; needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (overrides webhook_tls_key).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
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
    /// Keep bookmarks in this local JSON file as well as beside the data: read at start instead
    /// of the destination's state, rewritten after every stream commit. It holds this tool's
    /// own state document (a Singer STATE is for the tap invocation's --state).
    #[arg(long, alias = "state", value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Plan the run without changing anything: read the state (no lease, no writes), probe each
    /// stream's first page, and print the windows and the estimated requests and time.
    #[arg(long)]
    pub dry_run: bool,
    /// Longest this run may take (`45m`, `2h`, `90s`; overrides `max_run_time`): shortly
    /// before it, no new work starts, what finished is committed and the run exits with the
    /// partial code (3).
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_max_run_time)]
    pub deadline: Option<std::time::Duration>,
    /// The run summary on stdout: the table (`text`), one JSON object (`json`, the same as the
    /// `run_finished` log event's `summary`) or nothing (`none`). Default: `text`, or `none` with
    /// `--log-format json` (the `run_finished` event holds it; every line stays JSON).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub summary: Option<SummaryFormat>,
    /// Reconcile ids in this run whatever the cadence (`reconcile_interval`): list the live
    /// ids of the given streams (comma-separated; none given: every selected stream) and
    /// tombstone the ones that are gone.
    #[arg(long, value_delimiter = ',', num_args = 0.., value_name = "a,b,c")]
    pub reconcile: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    Text,
    Json,
    None,
}

/// Stream and destination selection shared by `check` and `sync`.
#[derive(Debug, Args, Clone, Default)]
pub struct Selection {
    /// Comma-separated stream names or globs (`scorecard*`, `job_?osts`; default: every
    /// non-sensitive stream).
    #[arg(long, value_delimiter = ',', value_name = "a,b,c")]
    pub streams: Option<Vec<String>>,
    /// Comma-separated streams to leave out of the selection (names or globs such as
    /// `demographic*`), applied after --streams or the default set.
    #[arg(long, value_delimiter = ',', value_name = "a,b,c")]
    pub exclude_streams: Option<Vec<String>>,
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
            exclude_streams: self
                .exclude_streams
                .iter()
                .flatten()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            include_sensitive: self.include_sensitive,
        }
    }
}

/// Runs a parsed command and returns the exit code to use.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let Some(command) = &cli.command else {
        return run_singer(&cli).await;
    };
    // The global options (--config, --log-format, -v, -q) go with every subcommand; only the
    // Singer flags mean nothing there.
    if cli.discover || cli.catalog.is_some() || cli.state.is_some() || cli.about {
        return Err(Error::Config(
            "--discover, --catalog, --state and --about are the Singer tap invocation and take no subcommand. Run `greenhouse-extract --config C --catalog CAT` as a tap, or drop those flags to use the subcommand (`sync --state-file` keeps the state in a local file for `sync`).".into(),
        ));
    }
    let registry = Registry::embedded().map_err(|e| Error::Fatal(e.to_string()))?;
    match command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(
                *shell,
                &mut cmd,
                "greenhouse-extract",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::Success)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| Error::Fatal(format!("writing the man page failed: {e}")))?;
            Ok(ExitCode::Success)
        }
        Command::Airbyte { command } => {
            let action = match command {
                AirbyteCommand::Spec => airbyte::Action::Spec,
                AirbyteCommand::Check => airbyte::Action::Check,
                AirbyteCommand::Discover => airbyte::Action::Discover,
                AirbyteCommand::Read { catalog, state } => airbyte::Action::Read {
                    catalog: catalog.clone(),
                    state: state.clone(),
                },
            };
            airbyte::run(
                &action,
                cli.config.as_ref(),
                Out::stdout(),
                cancel_on_signals(),
            )
            .await
        }
        Command::Spec { markdown, example } => {
            if *markdown {
                print!("{}", crate::docs::config_table());
            } else if *example {
                print!("{}", crate::docs::example_config());
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
            let file = ConfigFile::load_with_env(cli.config.as_deref())?;
            let mut config = file.validate(&args.selection.overrides(), &registry)?;
            if args.deadline.is_some() {
                config.max_run_time = args.deadline;
            }
            if let Some(names) = &args.reconcile {
                for n in names {
                    if registry.get(n).is_none() {
                        return Err(crate::error::Error::Config(format!(
                            "--reconcile: unknown stream `{n}`. `greenhouse-extract streams` lists them."
                        )));
                    }
                }
            }
            if args.dry_run {
                return crate::dryrun::run(
                    &config,
                    &registry,
                    args.state_file.as_deref(),
                    args.reconcile.as_deref(),
                )
                .await;
            }
            // A run that fails before it commits anything (bad state, refused credentials…)
            // leaves no empty destination folder behind.
            let created = crate::storage::missing_local_dirs(&config.destination);
            let dest = crate::storage::open(&config.destination).inspect_err(|_| {
                crate::storage::remove_empty_dirs(&created);
            })?;
            let mut opts = crate::sync::SyncOptions::new();
            opts.state_file = args.state_file.clone();
            opts.reconcile = args.reconcile.clone();
            opts.sink.zstd_level = config.zstd_level;
            opts.progress = RunProgress::new(crate::progress::should_draw(
                std::io::stderr().is_terminal(),
                cli.log_format == LogFormat::Text,
                cli.quiet,
            ));
            let cancel = cancel_on_signals();
            let lineage = config
                .openlineage
                .as_ref()
                .map(|t| crate::lineage::Lineage::new(t, &opts.run_id, &config.destination));
            if let Some(l) = &lineage {
                let streams = config.selected(&registry)?;
                let names: Vec<String> = streams.iter().map(|s| s.name.clone()).collect();
                l.start(&names).await;
            }
            let report = crate::sync::run(&config, &registry, &dest, &opts, cancel).await;
            // The bars go before anything else is printed (the summary, or main's error).
            opts.progress.finish();
            if let Some(l) = &lineage {
                l.finish(&lineage_outcome(&report)).await;
            }
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    drop(dest);
                    crate::storage::remove_empty_dirs(&created);
                    return Err(e);
                }
            };
            let code = report.exit_code();
            // The erasure runs on what this sync committed (its deletes included).
            let purged = match config.purge_after_sync
                && matches!(code, ExitCode::Success | ExitCode::Partial)
            {
                true => Some(
                    crate::purge::run(&dest, &registry, &opts.sink, config.single_writer).await?,
                ),
                false => None,
            };
            let summary = crate::sync::summary::to_json(
                &report.streams,
                &report.run_id,
                report.duration,
                report.manifest_key.as_deref(),
                code.code(),
            );
            let default = match cli.log_format {
                LogFormat::Text => SummaryFormat::Text,
                LogFormat::Json => SummaryFormat::None,
            };
            match args.summary.unwrap_or(default) {
                SummaryFormat::Text => {
                    let table = crate::sync::summary::render(
                        &report.streams,
                        &report.run_id,
                        report.duration,
                    );
                    print!("{}", crate::secrets::scrub(&table));
                    if let Some(key) = &report.manifest_key {
                        println!("Manifest: {key}");
                    }
                    if let Some(p) = &purged {
                        print_purge(p, false);
                    }
                }
                SummaryFormat::Json => println!("{}", crate::secrets::scrub(&summary.to_string())),
                SummaryFormat::None => {}
            }
            // Last, after stdout: with both streams in one file the run ends on this line.
            crate::events::run_finished(&report.run_id, code.code(), &summary);
            Ok(code)
        }
        Command::Purge { target, json } => {
            let file = ConfigFile::load_with_env(cli.config.as_deref())?;
            let Some(dest) = existing_destination(target, &file, "purge")? else {
                return Ok(ExitCode::Success);
            };
            // Files purge rewrites keep the configured compression.
            let sink = crate::sink::SinkConfig {
                zstd_level: file.zstd_level.unwrap_or(crate::sink::DEFAULT_ZSTD_LEVEL),
                ..Default::default()
            };
            let report =
                crate::purge::run(&dest, &registry, &sink, file.single_writer.unwrap_or(false))
                    .await?;
            print_purge(&report, *json);
            Ok(ExitCode::Success)
        }
        Command::Rebuild { target, streams } => {
            let file = ConfigFile::load_with_env(cli.config.as_deref())?;
            let names = match streams {
                Some(n) => Some(crate::config::resolve_stream_names(n, &registry)?),
                None => None,
            };
            let policies = file.column_policies(&registry)?;
            let Some(dest) = existing_destination(target, &file, "rebuild")? else {
                return Ok(ExitCode::Success);
            };
            let built = crate::current::rebuild::run(
                &dest,
                &registry,
                &policies,
                names.as_deref(),
                file.single_writer.unwrap_or(false),
            )
            .await?;
            let rows: Vec<Vec<String>> = built
                .iter()
                .map(|(name, a)| {
                    vec![
                        name.clone(),
                        a.upserted.to_string(),
                        a.files_added.to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                crate::table::text_table(&["stream", "rows", "files"], &rows, &[1, 2])
            );
            Ok(ExitCode::Success)
        }
        Command::Ddl(args) => {
            let options = crate::ddl::Options {
                schema: args.schema.clone(),
                connection: args.connection.clone(),
                location: args.location.clone(),
            };
            options.validate()?;
            let file = ConfigFile::load_with_env(cli.config.as_deref())?;
            let policies = file.column_policies(&registry)?;
            let destination = args
                .target
                .destination
                .clone()
                .or_else(|| file.destination.clone())
                .unwrap_or_else(|| crate::config::DEFAULT_DESTINATION.to_string());
            let Some(dest) = crate::storage::open_existing(&destination)? else {
                return Err(Error::config(format!(
                    "{destination} does not exist: run `greenhouse-extract sync` first (or check --destination)"
                )));
            };
            let layout =
                crate::ddl::inspect::inspect(&dest, &registry, &policies, args.streams.as_deref())
                    .await?;
            print!("{}", crate::ddl::render(&layout, args.dialect, &options)?);
            Ok(ExitCode::Success)
        }
        Command::Webhooks {
            command: WebhooksCommand::Serve(args),
        } => {
            let file = ConfigFile::load_with_env(cli.config.as_deref())?;
            let mut settings = file.validate_webhooks(&crate::config::WebhookOverrides {
                destination: args.destination.clone(),
                listen: args.listen.clone(),
                tls_cert: args.tls_cert.clone(),
                tls_key: args.tls_key.clone(),
            })?;
            settings.actions = registry
                .streams()
                .iter()
                .flat_map(|s| s.deletes.webhooks.iter().chain(&s.deletes.refresh))
                .map(|r| r.action.clone())
                .collect();
            crate::webhooks::run(&settings, stop_on_signals()).await?;
            Ok(ExitCode::Success)
        }
        Command::State { command } => {
            crate::statecmd::run(command, cli.config.as_deref(), &registry).await
        }
        Command::Check(sel) => {
            let file = ConfigFile::load_with_env(cli.config.as_deref())?;
            let config = file.validate(&sel.overrides(), &registry)?;
            crate::check::run(&config, &registry).await
        }
    }
}

/// What the OpenLineage end event says about a `sync`.
fn lineage_outcome(report: &Result<crate::sync::RunReport, Error>) -> crate::lineage::Outcome {
    use crate::lineage::{Outcome, StreamOutput};
    match report {
        Ok(r) => Outcome::Finished {
            success: r.exit_code() == ExitCode::Success,
            streams: r
                .streams
                .iter()
                .map(|s| StreamOutput {
                    stream: s.stream.clone(),
                    committed: s.status == crate::sync::summary::StreamStatus::Committed,
                    rows: s.rows,
                    bytes: s.bytes_written(),
                    files: s.files.len() as u64,
                })
                .collect(),
        },
        Err(e) => Outcome::Failed(crate::secrets::clip(
            &e.to_string(),
            crate::secrets::MESSAGE_MAX,
        )),
    }
}

/// The Singer tap invocation (no subcommand).
async fn run_singer(cli: &Cli) -> Result<ExitCode, Error> {
    let out = Out::stdout();
    if cli.about {
        out.line(&singer::about())
            .and_then(|()| out.flush())
            .map_err(|e| Error::Fatal(format!("writing failed: {e}")))?;
        return Ok(ExitCode::Success);
    }
    if cli.discover {
        return singer::discover(cli.config.as_ref(), &out);
    }
    match &cli.catalog {
        Some(catalog) => {
            singer::sync(
                cli.config.as_ref(),
                catalog,
                cli.state.as_deref(),
                out,
                cancel_on_signals(),
            )
            .await
        }
        None if cli.state.is_some() => Err(Error::config(
            "--state needs --catalog: give the catalog that selects the streams to resume (`greenhouse-extract --config C --catalog CAT --state S`).",
        )),
        None => Err(Error::config(
            "no command given. Use a subcommand (`greenhouse-extract --help`), or run as a Singer tap with --discover, --catalog CATALOG [--state STATE] or --about.",
        )),
    }
}

/// A stop signal set by the first SIGINT or SIGTERM: every wait of the run (rate window,
/// backoff, Retry-After, requests in flight) ends at once, in-flight files are aborted, the lease
/// is released and the run exits with the interrupted code. A second signal exits at once. Only
/// the CLI owns the process's signals; the engine just awaits the token.
fn cancel_on_signals() -> Cancel {
    let flag = Cancel::new();
    let f = flag.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        for _ in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if f.reason() == Some(Reason::Signal) {
                std::process::exit(ExitCode::Interrupted.code());
            }
            f.cancel(Reason::Signal);
            crate::events::interrupted();
        }
    });
    flag
}

/// The destination of an admin command (flag, else config, else the default), opened only if
/// it exists; `None` (after saying so) when there is nothing to `verb`.
fn existing_destination(
    target: &crate::statecmd::Target,
    file: &ConfigFile,
    verb: &str,
) -> Result<Option<crate::storage::Destination>, Error> {
    let destination = target
        .destination
        .clone()
        .or_else(|| file.destination.clone())
        .unwrap_or_else(|| crate::config::DEFAULT_DESTINATION.to_string());
    let dest = crate::storage::open_existing(&destination)?;
    if dest.is_none() {
        println!("Nothing to {verb}: {destination} does not exist.");
    }
    Ok(dest)
}

/// Prints a purge's outcome on stdout.
fn print_purge(report: &crate::purge::PurgeReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("a purge report serialises")
        );
    } else {
        print!("{}", report.render());
    }
}

/// Resolves at the first SIGINT or SIGTERM (a server then stops accepting and finishes what is
/// in flight); a second signal exits at once with the interrupted code. The handlers are
/// installed before this returns, so a signal that comes early is not the default (fatal) one.
fn stop_on_signals() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handlers =
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)));
    tokio::spawn(async move {
        let Ok((mut term, mut int)) = handlers else {
            // Without handlers the signals keep their default action; never resolve.
            let _keep = tx;
            return std::future::pending::<()>().await;
        };
        let mut tx = Some(tx);
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            match tx.take() {
                Some(t) => {
                    let _ = t.send(());
                }
                None => std::process::exit(ExitCode::Interrupted.code()),
            }
        }
    });
    async move {
        let _ = rx.await;
    }
}

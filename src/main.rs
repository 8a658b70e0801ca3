//! The `greenhouse-extract` command: parse arguments, run, map the outcome to an exit code.
//!
//! The error that ends the process is printed once, scrubbed and clipped: as `error: …` on
//! stderr, or with `--log-format json` as one JSON log line (event `fatal_error`, with the exit
//! code), so that every line a log shipper reads is JSON.

use clap::Parser;
use greenhouse_extract::logging::{LogFormat, LogTarget};
use greenhouse_extract::{allocator, cli, error::ExitCode, events, logging, secrets};

fn main() {
    allocator::configure();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => usage_error(e),
    };
    let json = matches!(args.log_target(), LogTarget::Stderr(LogFormat::Json));
    logging::init(args.log_target(), args.verbose, args.quiet);
    let fail = |message: &str, code: ExitCode| {
        // Defence in depth: a secret that found its way into a message is masked here, and
        // a value quoted whole somewhere below is cut and its control characters escaped.
        let message = secrets::clip(message, secrets::MESSAGE_MAX);
        if json {
            events::fatal_error(&message, code.code());
        } else {
            eprintln!("error: {message}");
        }
    };
    // The command's own work runs here, on the main thread (`block_on`); one worker drives
    // what is spawned (the HTTP connections' I/O, timers of background tasks), so reading and
    // encoding still overlap. A worker per core only added wake-ups and work stealing: a sync
    // of every stream took 7 % more CPU with two workers than with one, and no less wall time
    // (a current-thread runtime, whose I/O waits for the encoding, took 8 % more).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            fail(
                &format!("cannot start the async runtime: {e}"),
                ExitCode::Fatal,
            );
            std::process::exit(ExitCode::Fatal.code());
        }
    };
    let code = match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            fail(&e.to_string(), e.exit_code());
            e.exit_code()
        }
    };
    std::process::exit(code.code());
}

/// A command line clap refused: its own output (help and version go to stdout with code 0),
/// except that a usage error asked for as JSON is one JSON line like every other fatal error.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let asked_for_json = {
        let args: Vec<String> = std::env::args().skip(1).collect();
        args.iter().any(|a| a == "--log-format=json")
            || args
                .windows(2)
                .any(|w| w[0] == "--log-format" && w[1] == "json")
    };
    if !asked_for_json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    logging::init(LogTarget::Stderr(LogFormat::Json), 0, false);
    let text = e.render().to_string();
    let message = text
        .trim()
        .trim_start_matches("error: ")
        .replace("\n\n", " ")
        .replace('\n', " ");
    events::fatal_error(
        &secrets::clip(&message, secrets::MESSAGE_MAX),
        ExitCode::Config.code(),
    );
    std::process::exit(ExitCode::Config.code());
}

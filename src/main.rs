//! The `greenhouse-extract` command: parse arguments, run, map the outcome to an exit code.

use clap::Parser;
use greenhouse_extract::{cli, error::ExitCode, logging, secrets};

fn main() {
    let args = cli::Cli::parse();
    logging::init(args.log_target(), args.verbose, args.quiet);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(ExitCode::Fatal.code());
        }
    };
    let code = match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            // Defence in depth: a secret that found its way into a message is masked here, and
            // a value quoted whole somewhere below is cut and its control characters escaped.
            eprintln!(
                "error: {}",
                secrets::clip(&e.to_string(), secrets::MESSAGE_MAX)
            );
            e.exit_code()
        }
    };
    std::process::exit(code.code());
}

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
            // Defence in depth: a secret that found its way into a message is masked here.
            eprintln!("error: {}", secrets::scrub(&e.to_string()));
            e.exit_code()
        }
    };
    std::process::exit(code.code());
}

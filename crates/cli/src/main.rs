//! `d1-backup`: back up Cloudflare D1 databases into R2, S3 or a directory.
//!
//! This binary is an adapter: it parses the command line, turns it into library options,
//! calls `d1-backup-core`, renders the outcome and maps it to an exit code. Every decision an
//! embedding service would also need lives in the library.

mod bars;
mod cli;
mod daemon;
mod inspect;
mod logging;
mod processes;
mod prune;
mod render;
mod restore;
mod run;
mod status;
mod time_travel;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, ConfigCommand};

/// Exit codes, documented in the README and `--help`.
pub(crate) mod exit {
    /// Every database succeeded.
    pub const OK: u8 = 0;
    /// At least one database failed.
    pub const FAILED: u8 = 1;
    /// Usage or configuration error: nothing was attempted.
    pub const USAGE: u8 = 2;
    /// No database failed, but at least one was not backed up: another run held its lease
    /// for the whole wait (`[run] wait_for_lease_minutes`). EX_TEMPFAIL: try again later.
    pub const LEASED: u8 = 75;
    /// Interrupted by SIGINT/SIGTERM.
    pub const INTERRUPTED: u8 = 130;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.global.verbosity(), cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(&cli.global, args).await,
            Command::Prune(args) => prune::prune(&cli.global, args).await,
            Command::List(args) => inspect::list(&cli.global, args).await,
            Command::Verify(args) => inspect::verify(&cli.global, args).await,
            Command::Restore(args) => restore::restore(&cli.global, args).await,
            Command::Databases(args) => inspect::databases(&cli.global, &args).await,
            Command::Config(ConfigCommand::Check(args)) => inspect::check(&cli.global, &args).await,
            Command::Status(args) => status::status(&cli.global, args).await,
            Command::Daemon(args) => daemon::daemon(&cli.global, &args).await,
            Command::Completions(args) => {
                let mut script = Vec::new();
                clap_complete::generate(args.shell, &mut Cli::command(), "d1-backup", &mut script);
                // A closed pipe (`| head`) is not an error worth a panic.
                let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
                exit::OK
            }
        }
    });
    ExitCode::from(code)
}

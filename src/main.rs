//! The `lineup` binary: parse the command line, run the subcommand, print an error once at the
//! top with its whole context chain, and map it to an exit code (see `exit.rs`).

use std::process::ExitCode;

use clap::Parser;

use lineup::cli::{Cli, Command};
use lineup::cmd;
use lineup::exit::{Exit, Failure};
use lineup::log::{self, Level};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            });
        }
    };
    log::set_level(match (cli.quiet, cli.verbose) {
        (true, _) => Level::Error,
        (false, 0) => Level::Info,
        (false, 1) => Level::Debug,
        (false, _) => Level::Trace,
    });
    if let Command::Build(args) = &cli.command {
        lineup::progress::init(args.progress, cli.quiet);
    }
    if let Command::Probe(args) = &cli.command {
        lineup::progress::init(args.progress, cli.quiet);
    }
    let cancel = lineup::cancel::install();
    let result: Result<Exit, Failure> = match &cli.command {
        Command::Build(args) => cmd::build::run(args, cancel),
        Command::Check(args) => cmd::check::run(args),
        Command::Init(args) => cmd::init::run(args),
        Command::Sources(args) => cmd::sources::run(args),
        Command::Probe(args) => cmd::probe::run(args, cancel),
        Command::Streams(args) => cmd::streams::run(args),
        Command::Numbers(args) => cmd::numbers::run(args),
        Command::Completions(args) => cmd::completions::run(args),
        Command::Man => cmd::man::run(),
    };
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(failure) => {
            log::line(Level::Error, format_args!("{failure}"));
            ExitCode::from(failure.exit.code())
        }
    }
}

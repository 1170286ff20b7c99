//! `cargo xtask`: orchestration of the workspace. It decides what runs and in which order, builds the
//! `ssinfogan` binary and launches it; every number is computed by that binary, none here.

mod bench;
mod data;
mod reproduce;
mod slurm;
mod swap;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Orchestration of the ss-InfoGAN workspace",
    after_help = "Environment: RUST_LOG sets the log filter of the ssinfogan commands launched (instead of -q/-v); \
                  NO_COLOR=1 turns colours off; SSINFOGAN_BINARY=<path> uses that ssinfogan binary instead of \
                  building one."
)]
struct Cli {
    /// Warnings and errors only, from xtask's builds and the ssinfogan commands it launches.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail from the ssinfogan commands launched: -v debug, -vv trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Obtain a dataset (mnist, fashion-mnist, svhn, cifar10, celeba) and print its source, sizes and location.
    Data(data::Args),
    /// Reproduce an experiment of experiments/<name>.toml: data, runs, tables, figures, REPORT.md.
    Reproduce(reproduce::Args),
    /// Rebuild the tables, figures and REPORT.md of an experiment from the runs on disk; trains nothing.
    Report(reproduce::ReportArgs),
    /// Time a training iteration of ssinfogan beside the PyTorch reference (bench/reference_torch.py) on the
    /// same threads; writes results/bench/iteration.csv.
    Bench(bench::Args),
    /// Build and test the workspace with a drop-in crate swapped in (a copy under target/; the tree is untouched).
    CheckSwap(swap::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = workspace::QUIET.set(cli.quiet);
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => Some("warn"),
        (false, 0) => None,
        (false, 1) => Some("debug"),
        _ => Some("trace"),
    };
    if let (Some(level), None) = (level, std::env::var_os("RUST_LOG")) {
        // Before any thread starts: every ssinfogan command launched (here, or in a Slurm task, which inherits the
        // submitting environment) logs at this level.
        std::env::set_var("RUST_LOG", level);
    }
    let result = match cli.command {
        Task::Data(args) => data::run(&args),
        Task::Reproduce(args) => reproduce::run(&args),
        Task::Report(args) => reproduce::report(&args),
        Task::CheckSwap(args) => swap::run(&args),
        Task::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `ssinfogan`: the command line of `ssinfogan-experiment`. It parses arguments, calls the library and prints;
//! what a command does lives in the library, where a researcher's own program can call it too.

mod commands;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Parser)]
#[command(
    name = "ssinfogan",
    version,
    about = "Semi-supervised InfoGAN (Spurr, Aksan & Hilliges, ECML-PKDD 2017)",
    after_help = "Environment: RUST_LOG sets the log filter instead of -q/-v (e.g. RUST_LOG=debug or \
                  RUST_LOG=ssinfogan_training=trace); NO_COLOR=1 turns colours off; RAYON_NUM_THREADS sets the \
                  threads (default: every core); HF_HOME, HF_ENDPOINT and HF_HUB_OFFLINE steer the Hugging Face Hub; \
                  GLIBC_TUNABLES=glibc.malloc.hugetlb=0 keeps the heap in 4 KiB pages (by default the binary asks \
                  for transparent huge pages where the kernel grants them)."
)]
struct Cli {
    /// Warnings and errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail: -v debug, -vv trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Obtain a dataset, check it, record where it came from (data/<dataset>.source.json) and print one line:
    /// source, train/test sizes, location, content hash.
    Data(commands::DataArgs),
    /// Train one run: a variant of an experiment TOML, a label count and a seed, into
    /// results/<experiment>/runs/<variant>-n<labels>-s<seed>/. Resumes from the run's checkpoint if there is one.
    Train(commands::RunArgs),
    /// Evaluate a run's checkpoint (same arguments as train; --checkpoint best or epoch-NNNN for one other than
    /// the latest): C_err under three mappings, Q_err, mutual information, Fréchet distance; writes evaluation.csv
    /// and samples.safetensors into the run directory (evaluation-<checkpoint>.csv and
    /// samples-<checkpoint>.safetensors for another checkpoint).
    Eval(commands::EvalArgs),
    /// List the runs of an experiment's [sweep] (variant × labels × seed), their directories and states
    /// (pending, interrupted, completed, failed), and the label counts the data cannot serve.
    Plan(commands::PlanArgs),
    /// Train the experiment's evaluation classifier on the fully labelled train split (or find it in
    /// results/<experiment>/classifier/) and print its test accuracy.
    Classifier(commands::ExperimentArgs),
    /// Print the config each variant of an experiment resolves to (profiles and --set settings applied) as TOML:
    /// what `train` records in a run's config.toml.
    Config(commands::ConfigArgs),
    /// Write the tables, figures, sample grids and REPORT.md of an experiment into results/<experiment>/, from
    /// the runs of its [sweep]; trains nothing.
    Report(commands::ReportArgs),
    /// Export generated images of a run's checkpoint (N per code value) as safetensors.
    Sample(commands::SampleArgs),
    /// Export a run's trained generator to use elsewhere: model.safetensors, config.json (the latent layout),
    /// examples.safetensors and a model card README.md; python/ssinfogan_generator.py samples from it.
    Export(commands::ExportArgs),
    /// Time the training iteration (D/Q step + G step) at several batch sizes: median ms per iteration on
    /// RAYON_NUM_THREADS threads. `cargo xtask bench` puts it beside the PyTorch reference.
    Bench(commands::BenchArgs),
}

impl Command {
    /// Whether the command trains or evaluates networks, the work the heap in huge pages speeds up; the others
    /// (and `--help`, which never gets this far) do not start the process again for it.
    fn computes(&self) -> bool {
        !matches!(self, Command::Data(_) | Command::Plan(_) | Command::Config(_))
    }
}

fn main() -> ExitCode {
    use ssinfogan_experiment::runtime;
    runtime::restore_environment();
    let cli = Cli::parse();
    if cli.command.computes() {
        runtime::heap_in_huge_pages();
    }
    runtime::tune();
    // Log lines go through the progress-bar layer so they never tear a bar.
    let indicatif = tracing_indicatif::IndicatifLayer::new();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into());
    // https://no-color.org: a NO_COLOR that is set and not empty turns colours off.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(indicatif.get_stderr_writer())
                .with_ansi(colour)
                .with_target(false),
        )
        .with(indicatif)
        .init();
    let result = runtime::on_the_compute_pool(move || match cli.command {
        Command::Data(args) => commands::data(args),
        Command::Train(args) => commands::train(args),
        Command::Eval(args) => commands::eval(args),
        Command::Sample(args) => commands::sample(args),
        Command::Export(args) => commands::export(args),
        Command::Plan(args) => commands::plan(args),
        Command::Config(args) => commands::config(args),
        Command::Classifier(args) => commands::classifier(args),
        Command::Report(args) => commands::report(args),
        Command::Bench(args) => commands::bench(args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

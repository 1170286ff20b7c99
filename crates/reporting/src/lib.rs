//! Reports from `results/<experiment>/`: reads every run's `metrics.csv` (with polars, which lives in this crate
//! only), aggregates over seeds, and writes the CSV and Markdown tables, the figures (plotters, PNG and SVG with
//! a bundled font, so they render on a machine without fonts), the sample grids (`image`) and `REPORT.md`, where
//! each claim of the paper stands beside the measurement that tests it, the LaTeX tables, and `index.html`, a
//! self-contained page with a latent explorer. It depends on `core` only: the caller (the `ssinfogan report`
//! command) says which runs exist and hands over generated grids and traversals as plain pixels.

pub mod claims;
pub mod explorer;
pub mod figures;
pub mod grids;
pub mod latex;
pub mod progress;
pub mod significance;
pub mod tables;
pub mod timing;

use std::path::{Path, PathBuf};

pub use explorer::{Axis, TraversalSheet};
pub use tables::{Stat, Tables};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("reading the metrics of the runs: {0}")]
    Polars(#[from] polars::error::PolarsError),
    #[error("drawing {path}: {message}")]
    Plot { path: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
}

impl ReportError {
    pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        ReportError::Io { path: path.to_path_buf(), message: e.to_string() }
    }
}

/// Everything a report is made of. Runs are listed in sweep order; that order is the order of every table row
/// and figure legend.
#[derive(Debug, Clone)]
pub struct ReportInputs {
    pub experiment: String,
    /// `results/<experiment>/`; the report writes `tables/`, `figures/` and `REPORT.md` here.
    pub results_dir: PathBuf,
    pub profile: Option<String>,
    pub data: DataSummary,
    /// The evaluation classifier's accuracy on the real test split.
    pub classifier_accuracy: Option<f64>,
    /// In words, e.g. "batch 64, 15 epochs × 100 iterations".
    pub schedule: String,
    pub runs: Vec<RunInfo>,
    pub skipped: Vec<SkippedInfo>,
    /// Continuous-code sweeps of one seed per (variant, labels), in run order.
    pub grids: Vec<GridImage>,
    /// An ablation study's reference variant: `tables/ablations.{csv,md}` compare every row with it.
    pub baseline: Option<String>,
    /// The latent explorer's images of one seed per (variant, labels), in run order (`index.html`).
    pub traversals: Vec<TraversalSheet>,
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

#[derive(Debug, Clone)]
pub struct SkippedInfo {
    pub variant: String,
    pub n_labelled: usize,
    pub reason: String,
}

/// One sweep grid as pixels: `rows` code values × `values.len()` columns of (channels, height, width) images
/// in [0, 1], row-major.
#[derive(Debug, Clone)]
pub struct GridImage {
    pub variant: String,
    pub n_labelled: usize,
    pub seed: u64,
    /// Which continuous code (0-based) the columns sweep.
    pub continuous: usize,
    pub values: Vec<f32>,
    pub rows: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
    pub class_stability: f64,
    pub effect: f64,
}

impl GridImage {
    pub fn group(&self) -> String {
        group_name(&self.variant, self.n_labelled)
    }
}

/// What `write_report` wrote, relative to the results directory.
#[derive(Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// The five claims as REPORT.md judges them.
    pub claims: Vec<claims::ClaimResult>,
}

/// Writes the tables, figures, grids and `REPORT.md` of `inputs` under its results directory. Every file goes
/// through a temporary name and a rename, so a report is never half-written.
pub fn write_report(inputs: &ReportInputs) -> Result<Written, ReportError> {
    let mut written = Written::default();
    let tables = tables::build(inputs)?;
    tables::write(&tables, inputs, &mut written)?;
    if let Some(baseline) = &inputs.baseline {
        tables::write_ablations(&tables, inputs, baseline, &mut written)?;
    }
    figures::write_all(&tables, inputs, &mut written)?;
    grids::write_all(inputs, &mut written)?;
    written.claims = claims::write_report_md(&tables, inputs, &mut written)?;
    let ablations = inputs.baseline.as_ref().map(|b| tables::ablations_markdown(&tables, b));
    let claims = std::mem::take(&mut written.claims);
    explorer::write_page(inputs, &tables::markdown(&tables, inputs), ablations.as_deref(), &claims, &mut written)?;
    written.claims = claims;
    Ok(written)
}

/// Writes `bytes` to `path` (creating its directory) through a temporary file and a rename.
pub(crate) fn write_file(path: &Path, bytes: &[u8], written: &mut Written) -> Result<(), ReportError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    }
    ssinfogan_core::run_dir::write_atomically(path, bytes).map_err(|e| ReportError::io(path, e))?;
    written.files.push(path.to_path_buf());
    Ok(())
}

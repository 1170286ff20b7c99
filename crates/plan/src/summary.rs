//! `summary.json`: how a run ended, written last.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a run ended, as `summary.json` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SummaryStatus {
    /// Trained to its last iteration.
    Completed,
    /// Stopped by an error (diverged, an evaluation that failed, …), which `error` names.
    Failed,
}

impl std::fmt::Display for SummaryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
        })
    }
}

/// `summary.json`: written last; its presence means the run ended, `status` says how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// How the run ended (`error` says why it failed).
    pub status: SummaryStatus,
    pub iterations: u64,
    pub epochs: usize,
    /// The last epoch's mean of each logged metric.
    pub final_metrics: Vec<(String, f64)>,
    pub error: Option<String>,
}

impl RunSummary {
    /// The file name in a run directory.
    pub const FILE: &'static str = crate::run_dir::SUMMARY;

    /// Whether the run trained to its end.
    pub fn completed(&self) -> bool {
        self.status == SummaryStatus::Completed
    }

    /// The summary of the run directory `run_root`; `None` while the run has not ended (no file).
    pub fn read(run_root: &Path) -> Result<Option<Self>, SummaryError> {
        let path = run_root.join(Self::FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| SummaryError::Invalid(path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SummaryError::Read(path, e)),
        }
    }
}

/// A `summary.json` that exists and cannot be read.
#[derive(Debug)]
pub enum SummaryError {
    Read(PathBuf, std::io::Error),
    Invalid(PathBuf, serde_json::Error),
}

impl std::fmt::Display for SummaryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            Self::Invalid(path, e) => {
                write!(f, "{} is not a run summary ({e}); delete the run directory to train it again", path.display())
            }
        }
    }
}

impl std::error::Error for SummaryError {}

impl RunSummary {
    /// Writes `summary.json` into the run directory `run_root` (pretty JSON, through a temporary file and a
    /// rename, both flushed): the last file a run writes.
    pub fn write(&self, run_root: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::run_dir::write_atomically(&run_root.join(Self::FILE), &json)
    }
}

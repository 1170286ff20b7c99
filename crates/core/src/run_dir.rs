//! Where a run keeps its files, with stable names so that `reproduce` can skip finished runs and resume
//! interrupted ones:
//!
//! ```text
//! results/<experiment>/runs/<variant>-n<labels>-s<seed>/
//!   config.toml        fully resolved config + git revision, candle version, device, data source
//!   metrics.csv        long format: iteration,epoch,metric,value
//!   checkpoint/        networks, optimiser moments, random-stream states (safetensors + JSON)
//!   summary.json       written last, atomically: its presence means the run is complete
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

/// The identity of one run within an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId {
    pub variant: String,
    pub n_labelled: usize,
    pub seed: u64,
}

impl RunId {
    /// `ss-infogan-n132-s1`.
    pub fn name(&self) -> String {
        format!("{}-n{}-s{}", self.variant, self.n_labelled, self.seed)
    }
}

/// The paths of one run's directory.
///
/// ```
/// use ssinfogan_core::run_dir::{RunDir, RunId};
/// let id = RunId { variant: "ss-infogan".into(), n_labelled: 132, seed: 1 };
/// let run = RunDir::new("results", "mnist", &id);
/// assert!(run.summary().ends_with("results/mnist/runs/ss-infogan-n132-s1/summary.json"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(results: impl AsRef<Path>, experiment: &str, id: &RunId) -> Self {
        Self { root: results.as_ref().join(experiment).join("runs").join(id.name()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, flushing to disk
/// first: a reader (or a crash) sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("ssinfogan-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("summary.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

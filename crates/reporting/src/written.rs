//! What a report wrote, and the one way it writes a file: through a temporary name and a rename, so that a
//! report is never half-written.

use std::path::{Path, PathBuf};

use crate::error::ReportError;
use crate::verdict::ClaimResult;

/// What `write_report` wrote, relative to the results directory.
#[derive(Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// The five claims as REPORT.md judges them.
    pub claims: Vec<ClaimResult>,
}

/// Writes `bytes` to `path` (creating its directory) through a temporary file and a rename.
pub(crate) fn write_file(path: &Path, bytes: &[u8], written: &mut Written) -> Result<(), ReportError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    }
    ssinfogan_plan::run_dir::write_atomically(path, bytes).map_err(|e| ReportError::io(path, e))?;
    written.files.push(path.to_path_buf());
    Ok(())
}

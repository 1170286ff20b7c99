//! Errors of the data layer. Each names the file or the value at fault and says how to fix it.

use std::path::{Path, PathBuf};

use crate::source_kind::SourceKind;

pub type Result<T, E = DataError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file exists but its content is wrong: truncated, corrupt, mismatched.
    #[error("{}: {problem}", path.display())]
    BadFile { path: PathBuf, problem: String },

    /// A file or directory could not be read at all.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A source is not present on this machine (no files, no network). Automatic source selection moves on to
    /// the next source; a source named explicitly reports this as the error.
    #[error("{kind}: {reason}")]
    Unavailable { kind: SourceKind, reason: String },

    /// No source of a dataset worked. Lists what each one said.
    #[error(
        "no source of {dataset} worked:\n{}\nto fix: {fix}",
        attempts.iter().map(|(s, why)| format!("  - {s}: {why}")).collect::<Vec<_>>().join("\n")
    )]
    NoSource { dataset: String, attempts: Vec<(SourceKind, String)>, fix: String },

    /// A request that the data cannot satisfy (too many labels, an unsupported dataset/source pair, ...).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub fn bad_file(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Self::BadFile { path: path.as_ref().to_path_buf(), problem: problem.into() }
    }

    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io { path: path.as_ref().to_path_buf(), source }
    }

    pub fn unavailable(source: SourceKind, reason: impl Into<String>) -> Self {
        Self::Unavailable { kind: source, reason: reason.into() }
    }

    /// Whether automatic source selection may try the next source after this error. Only absence does: a
    /// corrupt file the user put in place is reported, never silently replaced by other data.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

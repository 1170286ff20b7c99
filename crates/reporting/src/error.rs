//! The one error type of a report: a file that cannot be read or written, a metrics table polars cannot parse, a
//! figure that cannot be drawn, or inputs that do not fit together.

use std::path::{Path, PathBuf};

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

//! Why a training run stops.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error(transparent)]
    Data(#[from] ssinfogan_datasets::DataError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("checkpoint {}: {problem}", path.display())]
    Checkpoint { path: PathBuf, problem: String },
    /// A loss became NaN or infinite: the run stops, its last good checkpoint stays.
    #[error("training diverged at iteration {iteration}: {loss} = {value}; the last good checkpoint is kept (try a lower learning rate)")]
    Diverged { iteration: u64, loss: String, value: f64 },
    #[error("{0}")]
    Invalid(String),
    /// An epoch hook (the evaluation) failed.
    #[error("evaluation: {0}")]
    Hook(String),
}

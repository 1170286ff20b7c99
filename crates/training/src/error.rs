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
    /// Another process took the run's lock over (it judged this one gone): this one stops without writing.
    #[error("the run lock {} now belongs to {holder}; this process stops without writing anything more to the run", path.display())]
    LockLost { path: PathBuf, holder: String },
    /// A signal asked the run to stop (SIGTERM from Slurm, Ctrl-C): it stopped between two iterations, its latest
    /// checkpoint intact, and resumes from it.
    #[error("stopped by signal {signal} after iteration {iteration}; the run resumes from its latest checkpoint")]
    Stopped { signal: i32, iteration: u64 },
    /// An epoch hook (the evaluation) failed.
    #[error("evaluation: {0}")]
    Hook(String),
}

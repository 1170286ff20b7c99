//! The ss-InfoGAN training loop (Spurr et al. 2017, §3, as the official Torch code runs it): the D/Q step and
//! the G step with their two Adam optimisers ([`adam`]), the labelled/unlabelled batch schedule, `metrics.csv`
//! after every epoch ([`metrics_log`]), checkpoints with optimiser and random-stream state, and exact resume
//! ([`checkpoint`]). The networks come in through the `Generator` and `Discriminator` traits of the core
//! crate, so any implementation trains here.

pub mod adam;
pub mod checkpoint;
pub mod config;
pub mod metrics_log;
pub mod run;

pub use adam::{Adam, AdamConfig};
pub use config::{OptimiserConfig, ScheduleConfig, TrainingConfig};
pub use run::{
    iteration_losses, time_iterations, train, CheckpointFault, EpochHook, Networks, RunSummary, TrainingRun,
};

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

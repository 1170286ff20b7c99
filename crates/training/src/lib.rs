//! The ss-InfoGAN training loop (Spurr et al. 2017, §3, as the official Torch code runs it): the D/Q step and
//! the G step with their two Adam optimisers ([`adam`]), the labelled/unlabelled batch schedule, `metrics.csv`
//! after every epoch and `losses.csv` within it (`ssinfogan_plan::long_csv`), TensorBoard event files
//! ([`event_file`]), checkpoints with optimiser and random-stream state, and exact resume
//! ([`checkpoint`]). The networks come in through the `Generator` and `Discriminator` traits of
//! `ssinfogan-kernels`, so any implementation trains here.

pub mod adam;
pub mod checkpoint;
pub mod config;
mod error;
pub mod event_file;
pub mod run;

pub use adam::{Adam, AdamConfig};
pub use config::{CheckpointPolicy, Mode, OptimiserConfig, ScheduleConfig, TrainingConfig};
pub use error::TrainError;
pub use run::{
    iteration_losses, time_iterations, train, CheckpointFault, EpochHook, Networks, RunSummary, TrainingRun,
};

//! ss-InfoGAN experiments as a library (Spurr, Aksan & Hilliges, "Guiding InfoGAN with Semi-Supervision",
//! ECML-PKDD 2017): everything the `ssinfogan` command does, for a researcher's own `main.rs`.
//!
//! - [`config`]: an experiment file (`extends`, `[variants.*]`, `[profiles.*]`, `[sweep]`, `[cluster]`) read
//!   once as an [`Experiment`], with profiles and `--set` settings laid over it ([`Overlays`]), resolved into a
//!   typed, validated [`ExperimentConfig`] per variant.
//! - [`plan`]: the runs of a sweep and their states ([`Plan`], shared with `cargo xtask` through `ssinfogan-plan`).
//! - [`spec`]: which run ([`RunSpec`]); [`assemble`]: its dataset, networks and checkpoints; [`records`]: its
//!   `config.toml` and `summary.json`, written and read back; [`run`]: the run trained, resumed from its latest
//!   checkpoint.
//! - [`classifier`]: the experiment's evaluation classifier and its cache ([`ClassifierCache`]);
//!   [`evaluation`]: the hook that evaluates a run during training, and the evaluation of a checkpoint.
//! - [`export`]: a trained generator with its latent layout and a model card, for use outside the project.
//! - [`runtime`]: the process set-up the `ssinfogan` binary makes before it trains (allocator, thread pools,
//!   huge pages), for a program of one's own.
//! - [`samples`], [`report`], [`bench`]: generated images of a checkpoint, the tables, figures and REPORT.md of
//!   an experiment, and the time of a training iteration.
//!
//! Train the 132-label ss-InfoGAN run of the MNIST experiment's `quick` profile, then read its final metrics:
//!
//! ```no_run
//! use ssinfogan_experiment::{train, Overlays, RunSpec, TrainOptions};
//!
//! fn main() -> anyhow::Result<()> {
//!     let spec = RunSpec {
//!         overlays: Overlays::profile(Some("quick")),
//!         labels: Some(132),
//!         seed: 2,
//!         ..RunSpec::new("experiments/mnist.toml", "ss-infogan")
//!     };
//!     let trained = train(&spec, &TrainOptions::default())?;
//!     for (metric, value) in &trained.summary.final_metrics {
//!         println!("{metric}: {value:.4}");
//!     }
//!     println!("results in {}", trained.run_dir.root().display());
//!     Ok(())
//! }
//! ```

pub mod assemble;
pub mod bench;
pub mod classifier;
pub mod config;
pub mod evaluation;
pub mod export;
pub mod plan;
pub mod records;
pub mod report;
pub mod run;
pub mod runtime;
pub mod samples;
mod share;
pub mod spec;

pub use classifier::ClassifierCache;
pub use config::{Experiment, ExperimentConfig, Overlays};
pub use evaluation::{evaluate_checkpoint, EvaluationHook};
pub use plan::{ExperimentSpec, Plan, PlannedRun, RunStatus};
pub use records::RecordedRun;
pub use report::{write_report, ReportOptions};
pub use run::{train, TrainOptions, Trained};
pub use samples::sample;
pub use spec::RunSpec;
pub use ssinfogan_training::TrainError;

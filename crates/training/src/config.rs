//! The training hyperparameters of an experiment: the `[optimiser]` and `[schedule]` tables of its TOML.

use serde::{Deserialize, Serialize};

use crate::adam::AdamConfig;

/// Two Adam optimisers, as the official code: D and the Q heads at lr 1e-4, G at lr 1e-3, β1 0.5, ε 1e-8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimiserConfig {
    pub discriminator: AdamConfig,
    pub generator: AdamConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub batch_size: usize,
    /// The official code's "epochs" are fixed blocks of updates, not passes over the data.
    pub epochs: usize,
    pub iterations_per_epoch: usize,
    /// Growth per epoch of the probability of an unlabelled batch (official: 0.1); absent: no growth.
    pub unlabelled_probability_growth: Option<f64>,
}

impl ScheduleConfig {
    pub fn total_iterations(&self) -> u64 {
        (self.epochs * self.iterations_per_epoch) as u64
    }
}

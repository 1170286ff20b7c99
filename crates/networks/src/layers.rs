//! The hyperparameters of the layers, shared by every network family.

use candle_nn::BatchNormConfig;
use serde::{Deserialize, Serialize};

/// The hyperparameters every family shares; the experiment TOML gives every one (official: 0.01, 1e-5, 0.1,
/// 0.02).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    /// Slope of the discriminator's leaky ReLUs (official code 0.01; InfoGAN 0.1).
    pub leaky_relu_slope: f64,
    pub batch_norm_eps: f64,
    /// Weight of the current batch in the running statistics (PyTorch/Torch convention).
    pub batch_norm_momentum: f64,
    /// Standard deviation of the initial weights.
    pub init_std: f64,
}

impl LayerConfig {
    pub(crate) fn batch_norm(&self) -> BatchNormConfig {
        BatchNormConfig {
            eps: self.batch_norm_eps,
            remove_mean: true,
            affine: true,
            momentum: self.batch_norm_momentum,
        }
    }
}

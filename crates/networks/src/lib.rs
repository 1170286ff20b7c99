//! Generator and discriminator families of ss-InfoGAN (Spurr et al. 2017, §3; InfoGAN, Chen et al. 2016,
//! appendix C), built from a config and the run's [`LatentSpec`](ssinfogan_core::LatentSpec) through candle's
//! `VarBuilder` and initialised as the official code from a seeded host stream
//! ([`initialise`], shared with the evaluation classifier through the core crate). Today: the `mnist`
//! family (28×28×1). The 32×32 colour family joins it with the colour datasets.

pub mod mnist;
pub mod ops;

pub use mnist::{MnistConfig, MnistDiscriminator, MnistGenerator};
pub use ssinfogan_core::initialise;

use serde::{Deserialize, Serialize};

/// The network family of an experiment: one TOML table, `kind = "mnist"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum NetworkConfig {
    Mnist(MnistConfig),
}

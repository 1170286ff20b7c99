//! Generator and discriminator families of ss-InfoGAN (Spurr et al. 2017, §3; InfoGAN, Chen et al. 2016,
//! appendix C), built from a config and the run's [`LatentSpec`] through candle's `VarBuilder` and initialised
//! as the official code from a seeded host stream ([`initialise`], shared with the evaluation classifier through
//! the core crate). Two families: `mnist` (28×28×1, the official code's networks) and `colour-32` (32×32×3,
//! InfoGAN's SVHN/CelebA networks), selected by `[network] kind` in the experiment TOML.

pub mod colour32;
mod layers;
pub mod mnist;
/// The CPU fast paths the layers run through (the `ssinfogan-kernels` crate).
pub use ssinfogan_kernels as ops;

pub use colour32::{Colour32Discriminator, Colour32Generator};
pub use layers::LayerConfig;
pub use mnist::{MnistDiscriminator, MnistGenerator};
pub use ssinfogan_core::initialise;

use candle_core::Result;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use ssinfogan_core::{ImageSpec, LatentSpec};
use ssinfogan_kernels::{Discriminator, Generator};

/// The network family of an experiment: one TOML table, `kind = "mnist"` or `kind = "colour-32"`, with the
/// [`LayerConfig`] fields beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum NetworkConfig {
    Mnist(LayerConfig),
    #[serde(rename = "colour-32")]
    Colour32(LayerConfig),
}

impl NetworkConfig {
    /// The images this family generates and discriminates.
    pub fn image(&self) -> ImageSpec {
        match self {
            Self::Mnist(_) => ImageSpec::MNIST,
            Self::Colour32(_) => ImageSpec::COLOUR_32,
        }
    }

    pub fn layers(&self) -> &LayerConfig {
        match self {
            Self::Mnist(c) | Self::Colour32(c) => c,
        }
    }

    /// The `kind` as written in the TOML.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mnist(_) => "mnist",
            Self::Colour32(_) => "colour-32",
        }
    }

    pub fn generator(&self, latent: &LatentSpec, vb: VarBuilder) -> Result<Box<dyn Generator>> {
        Ok(match self {
            Self::Mnist(c) => Box::new(MnistGenerator::new(latent, c, vb)?),
            Self::Colour32(c) => Box::new(Colour32Generator::new(latent, c, vb)?),
        })
    }

    /// D with its Q heads; `q_us_width` is the width the information loss asks of `Q_us` (0: no `Q_us`).
    pub fn discriminator(
        &self,
        latent: &LatentSpec,
        q_us_width: usize,
        vb: VarBuilder,
    ) -> Result<Box<dyn Discriminator>> {
        Ok(match self {
            Self::Mnist(c) => Box::new(MnistDiscriminator::new(latent, q_us_width, c, vb)?),
            Self::Colour32(c) => Box::new(Colour32Discriminator::new(latent, q_us_width, c, vb)?),
        })
    }
}

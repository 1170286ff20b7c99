//! The shared vocabulary of the ss-InfoGAN workspace (Spurr, Aksan & Hilliges, "Guiding InfoGAN with
//! Semi-Supervision", ECML-PKDD 2017).
//!
//! Every other crate depends on this one; it depends on `ssinfogan-kernels`, whose pass context ([`Pass`],
//! [`Ops`], [`GradientSums`]) the model traits take, and on `ssinfogan-plan`, the owner of the run files. It names the shape of an image ([`ImageSpec`]), the
//! seeded host random streams all randomness comes from ([`RngStreams`]), and the compute device a run asks
//! for ([`DeviceChoice`]), the latent codes and noise of the generator ([`LatentSpec`]), the traits that
//! training drives ([`Generator`], [`Discriminator`]), and re-exports the run-directory layout ([`run_dir`]).

pub mod device;
pub mod image;
pub mod init;
pub mod latent;
pub mod metric;
pub mod model;
pub mod rng;
/// The run directory and its files, defined by `ssinfogan-plan` (candle-free, so that orchestration reads them).
pub use ssinfogan_plan::run_dir;

pub use device::DeviceChoice;
pub use image::ImageSpec;
pub use init::initialise;
pub use latent::{LatentBatch, LatentSpec, SemiSupervisedCode};
pub use model::{
    backward, Discriminator, DiscriminatorOutput, Generator, GradientSums, Gradients, Ops, Parameters, Pass,
};
pub use rng::RngStreams;

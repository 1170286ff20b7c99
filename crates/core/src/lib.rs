//! The shared vocabulary of the ss-InfoGAN workspace (Spurr, Aksan & Hilliges, "Guiding InfoGAN with
//! Semi-Supervision", ECML-PKDD 2017).
//!
//! The numerics crates (datasets, networks, losses, metrics, training, experiment) depend on this one. It names the shape of an image ([`ImageSpec`]), the seeded host
//! random streams all randomness comes from ([`RngStreams`]), the compute device a run asks for
//! ([`DeviceChoice`]), the latent codes and noise of the generator ([`LatentSpec`]), the metrics' names and
//! directions ([`metric`]), and re-exports the run-directory layout ([`run_dir`]) of `ssinfogan-plan`.
//!
//! It compiles no layer kernels: the traits training drives (`Generator` and `Discriminator`) take the layers'
//! pass context and live beside it, in `ssinfogan-kernels`, so `datasets` builds without them.

pub mod device;
pub mod image;
pub mod init;
pub mod latent;
pub mod rng;
/// The names of the numbers a run records, defined with the files they are written to.
pub use ssinfogan_plan::metric;
/// The run directory and its files, defined by `ssinfogan-plan` (candle-free, so that orchestration reads them).
pub use ssinfogan_plan::run_dir;

pub use device::DeviceChoice;
pub use image::ImageSpec;
pub use init::initialise;
pub use latent::{LatentBatch, LatentSpec, SemiSupervisedCode};
pub use rng::RngStreams;

//! The shared vocabulary of the ss-InfoGAN workspace (Spurr, Aksan & Hilliges, "Guiding InfoGAN with
//! Semi-Supervision", ECML-PKDD 2017).
//!
//! Every other crate depends on this one and on nothing else of the workspace: it names the shape of an
//! image ([`ImageSpec`]), the seeded host random streams all randomness comes from ([`RngStreams`]), and the
//! compute device a run asks for ([`DeviceChoice`]), the latent codes and noise of the generator
//! ([`LatentSpec`]), and the run-directory layout ([`run_dir`]).

pub mod device;
pub mod image;
pub mod init;
pub mod latent;
pub mod model;
pub mod rng;
pub mod run_dir;

pub use device::{cpu_fast_paths, DeviceChoice};
pub use image::ImageSpec;
pub use init::initialise;
pub use latent::{LatentBatch, LatentSpec, SemiSupervisedCode};
pub use model::{
    add_parameter_gradient, backward, parameters_frozen, summing_parameter_gradients, with_frozen_parameters,
    Discriminator, DiscriminatorOutput, Generator,
};
pub use rng::RngStreams;

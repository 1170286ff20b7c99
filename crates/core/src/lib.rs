//! The shared vocabulary of the ss-InfoGAN workspace (Spurr, Aksan & Hilliges, "Guiding InfoGAN with
//! Semi-Supervision", ECML-PKDD 2017).
//!
//! Every other crate depends on this one and on nothing else of the workspace: it names the shape of an
//! image ([`ImageSpec`]), the seeded host random streams all randomness comes from ([`RngStreams`]), and the
//! compute device a run asks for ([`DeviceChoice`]). The latent-code specification (`LatentSpec`) and the
//! run-directory layout join it when training lands.

pub mod device;
pub mod image;
pub mod rng;

pub use device::DeviceChoice;
pub use image::ImageSpec;
pub use rng::RngStreams;

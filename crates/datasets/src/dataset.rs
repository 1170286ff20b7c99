//! An in-memory dataset: train and test splits of images in [0, 1] with their class labels.

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};
use ssinfogan_core::ImageSpec;

use crate::error::{DataError, Result};
use crate::provenance::Provenance;
// Splits have their own module so the sources, which yield them, need nothing of a dataset's provenance.
pub use crate::split::Split;

/// A dataset ready for training: both splits, the image shape, the class count and where it came from.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub image: ImageSpec,
    pub num_classes: usize,
    pub train: Split,
    pub test: Split,
    pub provenance: Provenance,
}

impl Dataset {
    /// Checks sizes and value ranges, so no later stage has to; errors name `provenance.location`.
    pub fn new(
        image: ImageSpec,
        num_classes: usize,
        train: Split,
        test: Split,
        provenance: Provenance,
    ) -> Result<Self> {
        let source = provenance.location.clone();
        let source = source.as_path();
        for (name, split) in [("train", &train), ("test", &test)] {
            if split.is_empty() {
                return Err(DataError::bad_file(source, format!("the {name} split is empty")));
            }
            if split.images.len() != split.len() * image.pixels() {
                return Err(DataError::bad_file(
                    source,
                    format!(
                        "the {name} split has {} labels but {} values of images ({} per {image} image)",
                        split.len(),
                        split.images.len(),
                        image.pixels()
                    ),
                ));
            }
            if let Some(&bad) = split.labels.iter().find(|&&l| usize::from(l) >= num_classes) {
                return Err(DataError::bad_file(
                    source,
                    format!(
                        "the {name} split has label {bad}, outside the {num_classes} classes 0..{}",
                        num_classes - 1
                    ),
                ));
            }
            if let Some(bad) = split.images.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                return Err(DataError::bad_file(
                    source,
                    format!("the {name} split has a grey level {bad} outside [0, 1]"),
                ));
            }
        }
        Ok(Self { image, num_classes, train, test, provenance })
    }

    /// The images at `indices` of `split` as an f32 tensor of shape (indices.len(), C, H, W), values in [0, 1].
    ///
    /// ```no_run
    /// # fn f(d: &ssinfogan_datasets::Dataset) -> candle_core::Result<()> {
    /// let batch = d.images(&d.train, &[0, 5, 7], &candle_core::Device::Cpu)?; // (3, 1, 28, 28)
    /// # Ok(()) }
    /// ```
    pub fn images(&self, split: &Split, indices: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let pixels = self.image.pixels();
        let mut data = Vec::with_capacity(indices.len() * pixels);
        for &i in indices {
            data.extend_from_slice(&split.images[i * pixels..(i + 1) * pixels]);
        }
        let (n, c, h, w) = self.image.batch_shape(indices.len());
        Tensor::from_vec(data, (n, c, h, w), device)
    }

    /// The labels at `indices` of `split` as a u32 tensor of shape (indices.len(),).
    pub fn labels(&self, split: &Split, indices: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let labels: Vec<u32> = indices.iter().map(|&i| u32::from(split.labels[i])).collect();
        Tensor::from_vec(labels, indices.len(), device)
    }
}

/// SHA-256 over the decoded content (sizes, f32 grey levels little-endian, labels) of both splits: two
/// sources that yield the same numbers get the same hash, whatever their file format.
pub fn content_hash(train: &Split, test: &Split) -> String {
    let mut hasher = Sha256::new();
    for split in [train, test] {
        hasher.update((split.len() as u64).to_le_bytes());
        for v in &split.images {
            hasher.update(v.to_le_bytes());
        }
        hasher.update(&split.labels);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

//! The shape of one image, shared by loaders, networks and sample grids.

use serde::{Deserialize, Serialize};

/// Channels, height and width of one image; tensors of images are laid out NCHW.
///
/// ```
/// use ssinfogan_core::ImageSpec;
/// let mnist = ImageSpec::MNIST;
/// assert_eq!(mnist.pixels(), 784);
/// assert_eq!(mnist.batch_shape(128), (128, 1, 28, 28));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageSpec {
    /// 28×28 grey levels: MNIST and Fashion-MNIST.
    pub const MNIST: ImageSpec = ImageSpec { channels: 1, height: 28, width: 28 };

    /// 32×32 RGB: SVHN, CIFAR-10 and CelebA (centre-cropped and resized).
    pub const COLOUR_32: ImageSpec = ImageSpec { channels: 3, height: 32, width: 32 };

    /// Number of values in one image (C·H·W).
    pub fn pixels(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The NCHW shape of a batch of `n` images.
    pub fn batch_shape(&self, n: usize) -> (usize, usize, usize, usize) {
        (n, self.channels, self.height, self.width)
    }
}

impl std::fmt::Display for ImageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.height, self.width, self.channels)
    }
}

//! The latent explorer's images of one (variant, labels), as the caller hands them over: a sheet of generated
//! images with every code moved one at a time, and the codes it moves ([`Axis`]). `explorer` lays them out in
//! `index.html`.

use crate::pixels::{png_bytes, tile};

/// A code the explorer moves (see `ssinfogan_metrics::sweep::TraversalAxis`).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// `c1`, … continuous; `u1`, … unsupervised categorical.
    pub name: String,
    pub continuous: bool,
    pub values: Vec<f32>,
    /// Per noise sample, the step at which the code sits while another one moves.
    pub base: Vec<usize>,
}

/// The explorer's images of one (variant, labels): `noise_samples · code_values` rows of `Σ axis steps` columns
/// of (channels, height, width) images in [0, 1], row-major; row z · code_values + c.
#[derive(Debug, Clone)]
pub struct TraversalSheet {
    pub variant: String,
    pub n_labelled: usize,
    pub seed: u64,
    /// The semi-supervised code's name in the experiment (`digit`), its URL key.
    pub code_name: String,
    pub code_values: usize,
    pub noise_samples: usize,
    pub axes: Vec<Axis>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
}

impl TraversalSheet {
    /// `ss-infogan-n132`: the page's name for it (`#run=`).
    pub fn id(&self) -> String {
        format!("{}-n{}", self.variant, self.n_labelled)
    }

    pub fn columns(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).sum::<usize>().max(1)
    }

    /// The sheet as a PNG, one pixel per generated pixel.
    pub fn png(&self) -> Result<Vec<u8>, String> {
        let rows = self.noise_samples * self.code_values;
        let (width, height, rgb) =
            tile(&self.pixels, rows, self.columns(), (self.channels, self.height, self.width), 1)?;
        png_bytes(width, height, rgb)
    }
}

//! The generator's input: structured codes `c` and noise `z` (Spurr et al. 2017, §3; InfoGAN §5).
//!
//! Codes are split in two. Each *semi-supervised* categorical code follows one label of the data (MNIST: the
//! digit) and is taught by `Q_ss` on the few labelled real images. *Unsupervised* codes — categorical, and
//! continuous U(−1, 1) — are learned as in InfoGAN, from fakes only. Noise is N(0, 1).

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// A categorical code tied to a label of the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemiSupervisedCode {
    /// What the code stands for, e.g. `digit`.
    pub name: String,
    /// Number of values, equal to the label's number of classes.
    pub size: usize,
    /// The label of the data the code follows: `class` for MNIST-like datasets.
    pub label: String,
}

/// Which codes exist and how large the noise is.
///
/// ```
/// use ssinfogan_core::latent::{LatentSpec, SemiSupervisedCode};
/// let mnist = LatentSpec {
///     semi_supervised: vec![SemiSupervisedCode { name: "digit".into(), size: 10, label: "class".into() }],
///     unsupervised_categorical: vec![],
///     continuous: 2,
///     noise: 62,
/// };
/// assert_eq!(mnist.input_dim(), 74); // the official MNIST generator input
/// assert_eq!(mnist.q_us_dim(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatentSpec {
    pub semi_supervised: Vec<SemiSupervisedCode>,
    /// Sizes of the unsupervised categorical codes.
    #[serde(default)]
    pub unsupervised_categorical: Vec<usize>,
    /// Number of continuous codes, each U(−1, 1).
    pub continuous: usize,
    /// Dimension of the N(0, 1) noise.
    pub noise: usize,
}

impl LatentSpec {
    /// Width of the generator input: one-hot codes, continuous codes, noise.
    pub fn input_dim(&self) -> usize {
        self.semi_supervised_dim() + self.unsupervised_categorical.iter().sum::<usize>() + self.continuous + self.noise
    }

    /// Width of the `Q_ss` output: the logits of every semi-supervised code, side by side.
    pub fn semi_supervised_dim(&self) -> usize {
        self.semi_supervised.iter().map(|c| c.size).sum()
    }

    /// Width of the `Q_us` output for a mean-only continuous likelihood: categorical logits, then one value
    /// per continuous code.
    pub fn q_us_dim(&self) -> usize {
        self.unsupervised_categorical.iter().sum::<usize>() + self.continuous
    }

    /// Draws `batch` latent vectors. The draws happen block by block (semi-supervised codes, unsupervised
    /// codes, continuous codes, noise), so the same stream always gives the same codes whatever the noise size.
    pub fn sample(&self, batch: usize, rng: &mut impl Rng) -> LatentBatch {
        let semi_supervised = self
            .semi_supervised
            .iter()
            .map(|c| (0..batch).map(|_| rng.random_range(0..c.size as u32)).collect())
            .collect();
        self.sample_with(batch, semi_supervised, rng)
    }

    /// Like [`sample`](Self::sample) with the semi-supervised codes given (evaluation: N images per code value).
    pub fn sample_with(&self, batch: usize, semi_supervised: Vec<Vec<u32>>, rng: &mut impl Rng) -> LatentBatch {
        let unsupervised_categorical = self
            .unsupervised_categorical
            .iter()
            .map(|&size| (0..batch).map(|_| rng.random_range(0..size as u32)).collect())
            .collect();
        let continuous = (0..batch * self.continuous).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let noise = (0..batch * self.noise).map(|_| StandardNormal.sample(rng)).collect();
        LatentBatch { batch, semi_supervised, unsupervised_categorical, continuous, noise }
    }
}

/// One batch of latent draws, kept as values so the losses can use the codes as targets.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentBatch {
    pub batch: usize,
    /// Per semi-supervised code, the value of each sample.
    pub semi_supervised: Vec<Vec<u32>>,
    /// Per unsupervised categorical code, the value of each sample.
    pub unsupervised_categorical: Vec<Vec<u32>>,
    /// (batch, continuous) row-major, in [−1, 1).
    pub continuous: Vec<f32>,
    /// (batch, noise) row-major.
    pub noise: Vec<f32>,
}

impl LatentBatch {
    /// The generator input, (batch, input_dim): one-hot semi-supervised codes, one-hot unsupervised codes,
    /// continuous codes, noise.
    pub fn generator_input(&self, spec: &LatentSpec, device: &Device) -> candle_core::Result<Tensor> {
        let width = spec.input_dim();
        let mut input = vec![0f32; self.batch * width];
        for (row_index, row) in input.chunks_exact_mut(width).enumerate() {
            let mut offset = 0;
            let categorical = spec
                .semi_supervised
                .iter()
                .map(|c| c.size)
                .zip(&self.semi_supervised)
                .chain(spec.unsupervised_categorical.iter().copied().zip(&self.unsupervised_categorical));
            for (size, values) in categorical {
                row[offset + values[row_index] as usize] = 1.0;
                offset += size;
            }
            let c = spec.continuous;
            row[offset..offset + c].copy_from_slice(&self.continuous[row_index * c..(row_index + 1) * c]);
            offset += c;
            row[offset..].copy_from_slice(&self.noise[row_index * spec.noise..(row_index + 1) * spec.noise]);
        }
        Tensor::from_vec(input, (self.batch, width), device)
    }

    /// The values of semi-supervised code `k` as a u32 tensor (batch,), a cross-entropy target.
    pub fn semi_supervised_target(&self, k: usize, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.semi_supervised[k], self.batch, device)
    }

    /// The values of unsupervised categorical code `k` as a u32 tensor (batch,).
    pub fn unsupervised_target(&self, k: usize, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.unsupervised_categorical[k], self.batch, device)
    }

    /// The continuous codes as an f32 tensor (batch, continuous).
    pub fn continuous_target(&self, continuous: usize, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.continuous, (self.batch, continuous), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::RngStreams;

    fn spec() -> LatentSpec {
        LatentSpec {
            semi_supervised: vec![SemiSupervisedCode { name: "digit".into(), size: 3, label: "class".into() }],
            unsupervised_categorical: vec![2],
            continuous: 2,
            noise: 4,
        }
    }

    #[test]
    fn generator_input_lays_out_one_hots_then_continuous_then_noise() {
        let batch = LatentBatch {
            batch: 2,
            semi_supervised: vec![vec![2, 0]],
            unsupervised_categorical: vec![vec![1, 0]],
            continuous: vec![0.5, -0.25, 0.75, 0.0],
            noise: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        };
        let input = batch.generator_input(&spec(), &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(input[0], vec![0., 0., 1., 0., 1., 0.5, -0.25, 1., 2., 3., 4.]);
        assert_eq!(input[1], vec![1., 0., 0., 1., 0., 0.75, 0.0, 5., 6., 7., 8.]);
    }

    #[test]
    fn samples_have_the_right_ranges_and_repeat_for_a_seed() {
        let draw = || spec().sample(500, &mut RngStreams::new(3).stream("latent"));
        let a = draw();
        assert_eq!(a, draw());
        assert!(a.semi_supervised[0].iter().all(|&v| v < 3));
        assert!((0..3).all(|v| a.semi_supervised[0].contains(&v)));
        assert!(a.continuous.iter().all(|&v| (-1.0..1.0).contains(&v)));
        let mean = a.noise.iter().sum::<f32>() / a.noise.len() as f32;
        let var = a.noise.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / a.noise.len() as f32;
        // 2,000 N(0, 1) draws: the mean's standard error is 0.022, the variance's 0.032.
        assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.15, "mean {mean}, variance {var}");
    }
}

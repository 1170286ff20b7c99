//! Continuous-code sweeps: the paper's qualitative figure (rows = semi-supervised code value, columns = one
//! continuous code swept over a range, every other input fixed), and two numbers that make claim 4 ("the
//! unsupervised codes still disentangle") measurable rather than only visible:
//! - **class stability**: the fraction of a row's images that the evaluation classifier puts in the row's most
//!   frequent class. Near 1: moving the continuous code leaves the labelled factor alone.
//! - **effect**: the mean absolute pixel difference between the two ends of a row. Near 0: the code does nothing.

use candle_core::{Device, Result, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use ssinfogan_core::{LatentBatch, LatentSpec};
use ssinfogan_kernels::{Generator, Ops, Pass};

use crate::classifier::Classifier;

/// One grid: `rows` code values × `columns` sweep values of continuous code `continuous`.
pub struct SweepGrid {
    /// Which continuous code is swept (0-based).
    pub continuous: usize,
    /// The swept values, one per column.
    pub values: Vec<f32>,
    pub rows: usize,
    /// (rows · columns, C, H, W) in [0, 1], row-major: row r, column j at r · columns + j.
    pub images: Tensor,
    pub class_stability: f64,
    pub effect: f64,
}

/// `columns` evenly spaced values from `low` to `high` inclusive.
pub fn sweep_values(low: f32, high: f32, columns: usize) -> Vec<f32> {
    match columns {
        0 => Vec::new(),
        1 => vec![(low + high) / 2.0],
        n => (0..n).map(|j| low + (high - low) * j as f32 / (n - 1) as f32).collect(),
    }
}

/// One grid per continuous code. Every image of every grid shares one noise vector and the unsupervised
/// categorical values drawn from `rng`; the other continuous codes stay at 0, the centre of their U(−1, 1).
pub fn continuous_sweeps(
    generator: &dyn Generator,
    classifier: &Classifier,
    latent: &LatentSpec,
    values: &[f32],
    rng: &mut impl Rng,
    device: &Device,
    ops: Ops,
) -> Result<Vec<SweepGrid>> {
    let code =
        latent.semi_supervised.first().ok_or_else(|| candle_core::Error::Msg("no semi-supervised code".into()))?;
    let (rows, columns) = (code.size, values.len());
    let n = rows * columns;
    let noise: Vec<f32> = (0..latent.noise).map(|_| StandardNormal.sample(rng)).collect();
    let categorical: Vec<u32> =
        latent.unsupervised_categorical.iter().map(|&k| rng.random_range(0..k as u32)).collect();
    let mut grids = Vec::with_capacity(latent.continuous);
    for swept in 0..latent.continuous {
        let mut continuous = vec![0f32; n * latent.continuous];
        for (i, row) in continuous.chunks_exact_mut(latent.continuous).enumerate() {
            row[swept] = values[i % columns];
        }
        let batch = LatentBatch {
            batch: n,
            semi_supervised: vec![(0..n).map(|i| (i / columns) as u32).collect()],
            unsupervised_categorical: categorical.iter().map(|&v| vec![v; n]).collect(),
            continuous,
            noise: noise.iter().copied().cycle().take(n * latent.noise).collect(),
        };
        let images = generator.generate(&batch.generator_input(latent, device)?, &Pass::inference(ops))?.detach();
        let (logits, _) = classifier.predict(&images, 250, ops)?;
        let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        let flat: Vec<Vec<f32>> = images.flatten_from(1)?.to_vec2()?;
        grids.push(SweepGrid {
            continuous: swept,
            values: values.to_vec(),
            rows,
            class_stability: class_stability(&predicted, columns),
            effect: effect(&flat, columns),
            images,
        });
    }
    Ok(grids)
}

/// The training-progress grid: rows = semi-supervised code values, `columns` noise samples, each column one draw of
/// the noise and the unsupervised categorical codes, the continuous codes at 0. Drawn from `rng`, so that a fresh
/// stream of the run seed gives the same latents at every evaluation. (rows · columns, C, H, W) in [0, 1],
/// row-major.
pub fn progress_grid(
    generator: &dyn Generator,
    latent: &LatentSpec,
    columns: usize,
    rng: &mut impl Rng,
    device: &Device,
    ops: Ops,
) -> Result<(usize, Tensor)> {
    let code =
        latent.semi_supervised.first().ok_or_else(|| candle_core::Error::Msg("no semi-supervised code".into()))?;
    let rows = code.size;
    let column = latent.sample_with(columns, vec![vec![0; columns]], rng);
    let n = rows * columns;
    let mut semi_supervised = vec![vec![0u32; n]; latent.semi_supervised.len()];
    // The first semi-supervised code picks the row; any further one stays at its first value.
    semi_supervised[0] = (0..n).map(|i| (i / columns) as u32).collect();
    let batch = LatentBatch {
        batch: n,
        semi_supervised,
        unsupervised_categorical: column
            .unsupervised_categorical
            .iter()
            .map(|values| (0..n).map(|i| values[i % columns]).collect())
            .collect(),
        continuous: vec![0.0; n * latent.continuous],
        noise: (0..n).flat_map(|i| column.noise[(i % columns) * latent.noise..][..latent.noise].to_vec()).collect(),
    };
    Ok((rows, generator.generate(&batch.generator_input(latent, device)?, &Pass::inference(ops))?.detach()))
}

/// One code the explorer moves; `explorer.safetensors` records the axes as they are.
pub use ssinfogan_plan::share::TraversalAxis;

/// Latent traversals for the explorer page: for each noise sample z and each value c of the semi-supervised code
/// (image row z · K + c), the image at the base point and along each axis with every other code at its base value.
/// Columns: the axes' steps one after another. Moving one code at a time keeps the sheet linear in the number of
/// codes (a product over SVHN's four continuous and three categorical codes would be millions of images).
pub struct Traversal {
    pub code_values: usize,
    pub noise_samples: usize,
    pub axes: Vec<TraversalAxis>,
    /// (noise_samples · code_values · columns, C, H, W) in [0, 1], row-major.
    pub images: Tensor,
}

impl Traversal {
    pub fn columns(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).sum::<usize>().max(1)
    }
}

/// Generates the traversals of `noise_samples` noise draws from `rng`, continuous codes over `values`.
pub fn traversal(
    generator: &dyn Generator,
    latent: &LatentSpec,
    noise_samples: usize,
    values: &[f32],
    rng: &mut impl Rng,
    device: &Device,
    ops: Ops,
) -> Result<Traversal> {
    let code =
        latent.semi_supervised.first().ok_or_else(|| candle_core::Error::Msg("no semi-supervised code".into()))?;
    let k = code.size;
    let draws = latent.sample_with(noise_samples, vec![vec![0; noise_samples]], rng);
    let zero = values.iter().position(|v| *v == 0.0).unwrap_or(values.len() / 2);
    let mut axes: Vec<TraversalAxis> = (0..latent.continuous)
        .map(|j| TraversalAxis {
            name: format!("c{}", j + 1),
            continuous: true,
            values: values.to_vec(),
            base: vec![zero; noise_samples],
        })
        .collect();
    for (j, &size) in latent.unsupervised_categorical.iter().enumerate() {
        axes.push(TraversalAxis {
            name: format!("u{}", j + 1),
            continuous: false,
            values: (0..size).map(|v| v as f32).collect(),
            base: draws.unsupervised_categorical[j].iter().map(|&v| v as usize).collect(),
        });
    }
    let columns = axes.iter().map(|a| a.values.len()).sum::<usize>().max(1);
    let n = noise_samples * k * columns;
    let mut batch = LatentBatch {
        batch: n,
        // The first semi-supervised code is the explorer's; any further one stays at its first value.
        semi_supervised: vec![Vec::with_capacity(n); latent.semi_supervised.len()],
        unsupervised_categorical: vec![Vec::with_capacity(n); latent.unsupervised_categorical.len()],
        continuous: Vec::with_capacity(n * latent.continuous),
        noise: Vec::with_capacity(n * latent.noise),
    };
    for z in 0..noise_samples {
        for c in 0..k {
            for column in 0..columns {
                // Which axis and step this column is; with no axis at all, the one column is the base point.
                let mut at = column;
                let moved = axes.iter().enumerate().find_map(|(a, axis)| {
                    if at < axis.values.len() {
                        Some((a, at))
                    } else {
                        at -= axis.values.len();
                        None
                    }
                });
                batch.semi_supervised[0].push(c as u32);
                for other in batch.semi_supervised.iter_mut().skip(1) {
                    other.push(0);
                }
                for (j, values) in batch.unsupervised_categorical.iter_mut().enumerate() {
                    let a = latent.continuous + j;
                    let step = match moved {
                        Some((m, step)) if m == a => step,
                        _ => axes[a].base[z],
                    };
                    values.push(step as u32);
                }
                for (j, axis) in axes.iter().enumerate().take(latent.continuous) {
                    let step = match moved {
                        Some((m, step)) if m == j => step,
                        _ => axis.base[z],
                    };
                    batch.continuous.push(axis.values[step]);
                }
                batch.noise.extend_from_slice(&draws.noise[z * latent.noise..][..latent.noise]);
            }
        }
    }
    // In pieces: a colour experiment's sheet is thousands of images.
    let mut pieces = Vec::new();
    let input = batch.generator_input(latent, device)?;
    let piece = 500;
    for start in (0..n).step_by(piece) {
        let len = piece.min(n - start);
        pieces.push(generator.generate(&input.narrow(0, start, len)?, &Pass::inference(ops))?.detach());
    }
    let images = Tensor::cat(&pieces, 0)?;
    Ok(Traversal { code_values: k, noise_samples, axes, images })
}

/// Mean over rows of the fraction of the row's predictions equal to its most frequent one.
pub fn class_stability(predicted: &[u32], columns: usize) -> f64 {
    let rows: Vec<&[u32]> = predicted.chunks(columns.max(1)).collect();
    let per_row = rows.iter().map(|row| {
        let most = row.iter().map(|p| row.iter().filter(|q| *q == p).count()).max().unwrap_or(0);
        most as f64 / row.len() as f64
    });
    per_row.sum::<f64>() / rows.len().max(1) as f64
}

/// Mean over rows of the mean absolute pixel difference between the row's first and last image.
pub fn effect(images: &[Vec<f32>], columns: usize) -> f64 {
    let rows: Vec<&[Vec<f32>]> = images.chunks(columns.max(1)).collect();
    let per_row = rows.iter().map(|row| {
        let (first, last) = (&row[0], &row[row.len() - 1]);
        first.iter().zip(last).map(|(a, b)| f64::from((a - b).abs())).sum::<f64>() / first.len().max(1) as f64
    });
    per_row.sum::<f64>() / rows.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_values_include_both_ends() {
        assert_eq!(sweep_values(-2.0, 2.0, 5), vec![-2.0, -1.0, 0.0, 1.0, 2.0]);
        assert_eq!(sweep_values(-2.0, 2.0, 1), vec![0.0]);
    }

    #[test]
    fn class_stability_is_the_modal_fraction_per_row() {
        // Row 0 keeps its class throughout, row 1 changes once in four.
        assert_eq!(class_stability(&[3, 3, 3, 3, 5, 5, 2, 5], 4), (1.0 + 0.75) / 2.0);
    }

    #[test]
    fn effect_compares_the_ends_of_each_row() {
        let images =
            vec![vec![0.0, 0.0], vec![0.5, 0.5], vec![1.0, 0.0], vec![0.2, 0.2], vec![0.2, 0.2], vec![0.2, 0.2]];
        assert!((effect(&images, 3) - 0.25).abs() < 1e-12); // row 0: (1 + 0)/2, row 1: 0
    }
}

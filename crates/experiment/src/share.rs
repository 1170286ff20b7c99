//! A run's share of the report (see `ssinfogan_plan::share`): its continuous-code sweep grids with their
//! class stability, its latent explorer sheet and its final samples as 8-bit images, generated from the trained
//! generator once, when the run completes, so that the report reads records only.

use std::path::Path;

use candle_core::{Device, Tensor};
use ssinfogan_core::{LatentBatch, LatentSpec, RngStreams};
use ssinfogan_kernels::{Generator, Ops, Pass};
use ssinfogan_metrics::{continuous_sweeps, sweep_values, Classifier};
use ssinfogan_plan::morphometry::{write_morphometry, CodeMorphometry, MorphometricEffect, MorphometryRecord};
use ssinfogan_plan::share::{
    write_explorer, write_final_samples, write_sweeps, GridImage, TraversalSheet, FINAL_SAMPLES_PER_CODE,
};

/// The continuous codes are swept over [−2, 2], twice their training range, as in the paper's figures.
const SWEEP: (f32, f32, usize) = (-2.0, 2.0, 9);
/// Noise samples the explorer page steps through per run.
const EXPLORER_NOISE_SAMPLES: usize = 4;
/// Evaluated images per code value for each line of the morphometry: the paper's 1,000 images per value give 32
/// lines per value (320 lines and 2,880 images per code with 10 classes), a smoke run's 20 give one.
const IMAGES_PER_MORPHOMETRY_LINE: usize = 32;
/// The most lines per class code value.
const MORPHOMETRY_DRAWS: usize = 32;

/// Lines per class code value for a run evaluating `samples_per_code` images per value at its end.
pub(crate) fn morphometry_draws(samples_per_code: usize) -> usize {
    samples_per_code.div_ceil(IMAGES_PER_MORPHOMETRY_LINE).clamp(1, MORPHOMETRY_DRAWS)
}

/// Writes `sweeps.safetensors` and `explorer.safetensors` into `run_root` from the trained `generator`: the sweeps
/// from the run seed's `sweep-grid` stream, the explorer's sheet from its `explorer` stream (so neither changes
/// the other), both judged by the experiment's `classifier`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_report_share(
    run_root: &Path,
    seed: u64,
    generator: &dyn Generator,
    classifier: &Classifier,
    latent: &LatentSpec,
    device: &Device,
    ops: Ops,
) -> anyhow::Result<()> {
    let values = sweep_values(SWEEP.0, SWEEP.1, SWEEP.2);
    let mut rng = RngStreams::new(seed).stream("sweep-grid");
    let mut grids = Vec::new();
    for grid in continuous_sweeps(generator, classifier, latent, &values, &mut rng, device, ops)? {
        let (_, channels, height, width) = grid.images.dims4()?;
        grids.push(GridImage {
            // The run directory is the run: the file records the grid, not whose it is.
            variant: String::new(),
            n_labelled: 0,
            seed,
            continuous: grid.continuous,
            values: grid.values,
            rows: grid.rows,
            channels,
            height,
            width,
            pixels: grid.images.flatten_all()?.to_vec1()?,
            class_stability: grid.class_stability,
            effect: grid.effect,
        });
    }
    write_sweeps(run_root, &grids)?;

    let mut rng = RngStreams::new(seed).stream("explorer");
    let sheet =
        ssinfogan_metrics::sweep::traversal(generator, latent, EXPLORER_NOISE_SAMPLES, &values, &mut rng, device, ops)?;
    let (_, channels, height, width) = sheet.images.dims4()?;
    let sheet = TraversalSheet {
        variant: String::new(),
        n_labelled: 0,
        seed,
        code_name: latent.semi_supervised.first().map(|c| c.name.clone()).unwrap_or_else(|| "code".into()),
        code_values: sheet.code_values,
        noise_samples: sheet.noise_samples,
        axes: sheet.axes.clone(),
        channels,
        height,
        width,
        pixels: sheet.images.flatten_all()?.to_vec1()?,
    };
    write_explorer(run_root, &sheet)?;
    Ok(())
}

/// Writes `final-samples.safetensors`: the first [`FINAL_SAMPLES_PER_CODE`] of each code value's images of the
/// final evaluation (`images` holds `per_code` per value, in code order), as 8-bit values.
pub(crate) fn write_final_samples_u8(
    run_root: &Path,
    images: &Tensor,
    codes: &[i64],
    per_code: usize,
) -> anyhow::Result<()> {
    let (n, c, h, w) = images.dims4()?;
    anyhow::ensure!(n == codes.len() && per_code > 0 && n % per_code == 0, "{n} samples for {per_code} per code value");
    let keep = per_code.min(FINAL_SAMPLES_PER_CODE);
    let values = n / per_code;
    let mut first = Vec::with_capacity(values);
    let mut kept_codes = Vec::with_capacity(values * keep);
    for value in 0..values {
        first.push(images.narrow(0, value * per_code, keep)?);
        kept_codes.extend_from_slice(&codes[value * per_code..value * per_code + keep]);
    }
    let pixels: Vec<f32> = Tensor::cat(&first, 0)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
    write_final_samples(run_root, &pixels, (c, h, w), &kept_codes)?;
    Ok(())
}

/// Writes `morphometry.json`: what each continuous code controls, from the morphometrics of the digits generated
/// along lines where only that code moves (see `ssinfogan_plan::morphometry`). The lines' latents come from
/// the run seed's `morphometry` stream, so nothing else the run writes changes. Single-channel 28 × 28 images only
/// (the measurements are Morpho-MNIST's): for other images nothing is written.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_morphometry_record(
    run_root: &Path,
    seed: u64,
    generator: &dyn Generator,
    latent: &LatentSpec,
    draws: usize,
    device: &Device,
    ops: Ops,
) -> anyhow::Result<bool> {
    let Some(code) = latent.semi_supervised.first() else { return Ok(false) };
    if latent.continuous == 0 {
        return Ok(false);
    }
    let values = sweep_values(SWEEP.0, SWEEP.1, SWEEP.2);
    let steps = values.len();
    let mut rng = RngStreams::new(seed).stream("morphometry");
    let mut codes = Vec::new();
    for swept in 0..latent.continuous {
        // Per class value, `draws` lines of `steps` images: one latent draw per line, the swept code
        // replaced by each sweep value in turn.
        let mut measured: Vec<Option<[f64; 6]>> = Vec::with_capacity(code.size * draws * steps);
        for value in 0..code.size as u32 {
            let draw = latent.sample_with(draws, vec![vec![value; draws]], &mut rng);
            let n = draws * steps;
            let line = |i: usize| i / steps;
            let mut continuous = Vec::with_capacity(n * latent.continuous);
            for i in 0..n {
                let mut row = draw.continuous[line(i) * latent.continuous..(line(i) + 1) * latent.continuous].to_vec();
                row[swept] = values[i % steps];
                continuous.extend(row);
            }
            let batch = LatentBatch {
                batch: n,
                semi_supervised: vec![vec![value; n]],
                unsupervised_categorical: draw
                    .unsupervised_categorical
                    .iter()
                    .map(|c| (0..n).map(|i| c[line(i)]).collect())
                    .collect(),
                continuous,
                noise: (0..n)
                    .flat_map(|i| draw.noise[line(i) * latent.noise..(line(i) + 1) * latent.noise].to_vec())
                    .collect(),
            };
            let images = generator.generate(&batch.generator_input(latent, device)?, &Pass::inference(ops))?.detach();
            let (_, channels, height, width) = images.dims4()?;
            if channels != 1 || height != 28 || width != 28 {
                return Ok(false);
            }
            let bytes = ssinfogan_morphometry::to_bytes(&images.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?);
            measured.extend(
                ssinfogan_morphometry::measure_all(&bytes, height, width).into_iter().map(|m| m.map(|m| m.values())),
            );
        }
        codes.push(code_morphometry(swept, &values, &measured));
    }
    let lines = code.size * draws;
    write_morphometry(run_root, &MorphometryRecord { sweep_values: values, lines, codes })?;
    Ok(true)
}

/// The statistics of one code's lines (`measured` holds `steps` images per line, line after line).
fn code_morphometry(swept: usize, values: &[f32], measured: &[Option<[f64; 6]>]) -> CodeMorphometry {
    let steps = values.len();
    // Lines with an image without a digit to measure are left out whole: ρ needs every point of a line.
    let lines: Vec<Vec<[f64; 6]>> =
        measured.chunks_exact(steps).filter_map(|line| line.iter().copied().collect::<Option<Vec<_>>>()).collect();
    if lines.is_empty() {
        return CodeMorphometry { code: format!("c{}", swept + 1), measured_lines: 0, morphometrics: Vec::new() };
    }
    let position: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let morphometrics = ssinfogan_morphometry::NAMES
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let rhos: Vec<f64> = lines
                .iter()
                .map(|line| {
                    let along: Vec<f64> = line.iter().map(|v| v[m]).collect();
                    // A morphometric that does not move along a line has no rank relation with the code.
                    ssinfogan_morphometry::spearman(&position, &along).unwrap_or(0.0)
                })
                .collect();
            let (spearman_mean, spearman_sd) = mean_sd(&rhos);
            let step_of: Vec<usize> = lines.iter().flat_map(|_| 0..steps).collect();
            // The morphometric's change along its line (its value less the line's mean): the class and noise of a
            // line set where it starts (a 1 is narrower than a 0), the code only how it moves.
            let all: Vec<f64> = lines
                .iter()
                .flat_map(|line| {
                    let mean = line.iter().map(|v| v[m]).sum::<f64>() / steps as f64;
                    line.iter().map(move |v| v[m] - mean)
                })
                .collect();
            let mutual_information = ssinfogan_morphometry::binned_mutual_information(&step_of, &all, steps, steps);
            let (mean_along_sweep, sd_along_sweep) =
                (0..steps).map(|s| mean_sd(&lines.iter().map(|line| line[s][m]).collect::<Vec<_>>())).unzip();
            MorphometricEffect {
                name: (*name).to_string(),
                spearman_mean,
                spearman_sd,
                mutual_information,
                normalised_mutual_information: mutual_information / (steps as f64).ln(),
                mean_along_sweep,
                sd_along_sweep,
            }
        })
        .collect();
    CodeMorphometry { code: format!("c{}", swept + 1), measured_lines: lines.len(), morphometrics }
}

/// Mean and sample standard deviation (0 for fewer than two values) of at least one value.
pub(crate) fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

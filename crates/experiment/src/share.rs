//! A run's share of the report (see `ssinfogan_reporting::run_share`): its continuous-code sweep grids with their
//! class stability, its latent explorer sheet and its final samples as 8-bit images, generated from the trained
//! generator once, when the run completes, so that the report reads records only.

use std::path::Path;

use candle_core::{Device, Tensor};
use ssinfogan_core::{Generator, LatentSpec, Ops, RngStreams};
use ssinfogan_metrics::{continuous_sweeps, sweep_values, Classifier};
use ssinfogan_reporting::run_share::{write_explorer, write_final_samples, write_sweeps, FINAL_SAMPLES_PER_CODE};
use ssinfogan_reporting::{Axis, GridImage, TraversalSheet};

/// The continuous codes are swept over [−2, 2], twice their training range, as in the paper's figures.
const SWEEP: (f32, f32, usize) = (-2.0, 2.0, 9);
/// Noise samples the explorer page steps through per run.
const EXPLORER_NOISE_SAMPLES: usize = 4;

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
        axes: sheet
            .axes
            .iter()
            .map(|a| Axis {
                name: a.name.clone(),
                continuous: a.continuous,
                values: a.values.clone(),
                base: a.base.clone(),
            })
            .collect(),
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

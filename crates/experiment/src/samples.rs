//! Generated images of a run's checkpoint (the latest, or another it keeps), N per value of the semi-supervised code, in the
//! `samples.safetensors` format, from the run's fixed evaluation noise (the run seed's `evaluation` stream).

use std::path::{Path, PathBuf};

use ssinfogan_core::run_dir::RunDir;
use ssinfogan_core::RngStreams;

use crate::assemble::{chosen_checkpoint, trained_generator};
use crate::evaluation::write_samples;
use crate::records::RecordedGenerator;

/// What [`sample`] wrote.
pub struct Samples {
    /// Images written (per code value × code values).
    pub images: usize,
    /// The checkpoint they came from.
    pub checkpoint: PathBuf,
}

/// Writes `per_code` images per code value of the run at `run_root`, from its checkpoint `which` (`latest`,
/// `best`, `epoch-NNNN`), to `out`, with the networks, ops and seed the run recorded in its `config.toml`.
pub fn sample(
    run_root: &Path,
    which: &str,
    out: &Path,
    per_code: usize,
    device: &candle_core::Device,
) -> anyhow::Result<Samples> {
    let recorded = RecordedGenerator::read(run_root)?;
    let checkpoint = chosen_checkpoint(&RunDir::at(run_root), which)?;
    let generator = trained_generator(&recorded.network, &recorded.latent, &checkpoint, device)?;
    let mut rng = RngStreams::new(recorded.run.seed).stream("evaluation");
    let (images, codes) = ssinfogan_metrics::generate_per_code(
        generator.as_ref(),
        &recorded.latent,
        per_code,
        &mut rng,
        device,
        recorded.training.ops,
    )?;
    write_samples(out, &images, &codes)?;
    Ok(Samples { images: codes.len(), checkpoint })
}

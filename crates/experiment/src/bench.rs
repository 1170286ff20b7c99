//! Milliseconds per training iteration, measured on the training crate's own step
//! ([`ssinfogan_training::time_iterations`]) with an experiment's networks, losses and optimisers, at several
//! batch sizes. `ssinfogan bench` prints them; `cargo xtask bench` puts them beside `bench/reference_torch.py` on
//! the same threads.

use std::path::PathBuf;

use anyhow::{bail, Context};

use ssinfogan_core::run_dir::{RunDir, RunId};
use ssinfogan_core::{DeviceChoice, RngStreams};
use ssinfogan_kernels::Ops;
use ssinfogan_training::{time_iterations, TrainingRun};

use crate::assemble::{build_networks, labelled_subset, load_dataset, training_run};
use crate::config;

/// What to time.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSpec {
    /// The experiment TOML whose networks and losses the timed iteration uses.
    pub experiment: PathBuf,
    /// The variant of that experiment.
    pub variant: String,
    /// Batch sizes to time.
    pub batch_sizes: Vec<usize>,
    /// Untimed iterations first (allocator and caches warm up).
    pub warmup: usize,
    /// Timed iterations; the median is reported.
    pub iterations: usize,
    pub device: DeviceChoice,
    /// Which implementation runs the step: the fast CPU kernels or candle's own ops (the path CUDA runs).
    pub ops: Ops,
    /// Where datasets are found (the real batches come from the experiment's data).
    pub data_root: PathBuf,
}

pub use ssinfogan_plan::bench::Timing;

/// Times the iteration at each batch size of `spec`, handing each [`Timing`] to `measured` as soon as it is
/// known.
pub fn bench(spec: &BenchSpec, mut measured: impl FnMut(&Timing) -> anyhow::Result<()>) -> anyhow::Result<()> {
    if spec.iterations == 0 || spec.batch_sizes.contains(&0) {
        bail!("the iterations and every batch size must be at least 1");
    }
    let base = config::load(&spec.experiment, &spec.variant, None)?;
    let dataset = load_dataset(&base, &spec.data_root)?;
    let device = spec.device.open().with_context(|| format!("cannot open device {}", spec.device))?;
    let threads = candle_core::utils::get_num_threads();
    // Nothing is written: the run directory only completes the run description.
    let scratch = std::env::temp_dir().join("ssinfogan-bench");
    for &batch_size in &spec.batch_sizes {
        let mut config = base.clone();
        config.schedule.batch_size = batch_size;
        let streams = RngStreams::new(1);
        let subset = labelled_subset(&config, &dataset, &streams)?;
        let networks = build_networks(&config, &streams, &device)?;
        let id = RunId { variant: spec.variant.clone(), n_labelled: config.data.n_labelled, seed: 1 };
        let run_dir = RunDir::new(&scratch, &config.experiment.name, &id);
        let run = TrainingRun { ops: spec.ops, ..training_run(&config, &dataset, &subset, streams, &run_dir, &device) };
        let mut seconds = time_iterations(&run, &networks, spec.warmup, spec.iterations)?;
        seconds.sort_by(f64::total_cmp);
        let timing = Timing {
            implementation: match spec.ops {
                Ops::Fast => "ssinfogan".into(),
                Ops::Candle => "ssinfogan, candle ops only".into(),
            },
            batch_size,
            threads,
            iterations: seconds.len(),
            median_ms: 1e3 * ssinfogan_plan::bench::median(&seconds),
            min_ms: 1e3 * seconds[0],
            max_ms: 1e3 * seconds[seconds.len() - 1],
            cpu_products: device.is_cpu().then(|| ssinfogan_kernels::product_instruction_set().to_string()),
        };
        measured(&timing)?;
    }
    Ok(())
}

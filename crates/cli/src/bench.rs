//! `ssinfogan bench`: milliseconds per training iteration, measured on the training crate's own step
//! ([`ssinfogan_training::time_iterations`]) with the experiment's networks, losses and optimisers, at several
//! batch sizes. `cargo xtask bench` runs it beside `bench/reference_torch.py` on the same threads.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::Serialize;
use ssinfogan_core::run_dir::{RunDir, RunId};
use ssinfogan_core::{DeviceChoice, RngStreams};
use ssinfogan_datasets::LabelledSubset;
use ssinfogan_training::{time_iterations, TrainingRun};

use crate::config;
use crate::train::{build_networks, load_dataset};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The experiment TOML whose networks and losses the timed iteration uses.
    #[arg(long, default_value = "experiments/mnist.toml")]
    pub experiment: PathBuf,
    /// The variant of that experiment.
    #[arg(long, default_value = "ss-infogan")]
    pub variant: String,
    /// Batch sizes to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,128")]
    pub batch_sizes: Vec<usize>,
    /// Untimed iterations first (allocator and caches warm up).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed iterations; the median is reported.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// The device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Where datasets are found (the real batches come from the experiment's data).
    #[arg(long, default_value = "data")]
    pub data_root: PathBuf,
    /// One JSON object per batch size instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The timing of one batch size.
#[derive(Serialize)]
struct Timing {
    implementation: String,
    batch_size: usize,
    threads: usize,
    iterations: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.iterations == 0 || args.batch_sizes.contains(&0) {
        bail!("--iterations and every --batch-sizes value must be at least 1");
    }
    let base = config::load(&args.experiment, &args.variant, None)?;
    let dataset = load_dataset(&base, &args.data_root)?;
    let device = args.device.open().with_context(|| format!("cannot open device {}", args.device))?;
    let threads = candle_core::utils::get_num_threads();
    // Nothing is written: the run directory only completes the run description.
    let scratch = std::env::temp_dir().join("ssinfogan-bench");
    for &batch_size in &args.batch_sizes {
        let mut config = base.clone();
        config.schedule.batch_size = batch_size;
        let streams = RngStreams::new(1);
        let subset = LabelledSubset::choose(
            &dataset.train.labels,
            dataset.num_classes,
            config.data.n_labelled,
            config.data.balanced,
            &mut streams.stream("labelled-subset"),
        )?;
        let networks = build_networks(&config, &streams, &device)?;
        let id = RunId { variant: args.variant.clone(), n_labelled: config.data.n_labelled, seed: 1 };
        let run_dir = RunDir::new(&scratch, &config.experiment.name, &id);
        let run = TrainingRun {
            dataset: &dataset,
            subset: &subset,
            latent: &config.latent,
            loss: &config.loss,
            optimiser: &config.optimiser,
            schedule: &config.schedule,
            streams,
            run_dir: &run_dir,
            device: &device,
            inject_nan_at: None,
            fault: None,
        };
        let mut seconds = time_iterations(&run, &networks, args.warmup, args.iterations)?;
        seconds.sort_by(f64::total_cmp);
        let timing = Timing {
            implementation: if ssinfogan_core::cpu_fast_paths() {
                "ssinfogan".into()
            } else {
                "ssinfogan, candle ops only".into()
            },
            batch_size,
            threads,
            iterations: seconds.len(),
            median_ms: 1e3 * median(&seconds),
            min_ms: 1e3 * seconds[0],
            max_ms: 1e3 * seconds[seconds.len() - 1],
        };
        if args.json {
            println!("{}", serde_json::to_string(&timing)?);
        } else {
            println!(
                "batch {batch_size:>4}, {threads} threads: {:8.1} ms/iteration (median of {}; min {:.1}, max {:.1})",
                timing.median_ms, timing.iterations, timing.min_ms, timing.max_ms
            );
        }
    }
    Ok(())
}

/// The median of sorted `values` (mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

//! Trains one run from Rust, as `ssinfogan train` does, with the same process set-up, and prints its final
//! metrics: the MNIST experiment's ss-InfoGAN variant with 20 labels, under the `smoke` profile (seconds) and
//! one setting changed (`--set loss.lambda_ss=1` on the command line).
//!
//! ```sh
//! cargo xtask data mnist   # or any source of `ssinfogan data mnist`
//! cargo run --release -p ssinfogan-experiment --example train_one_run [-- experiments/mnist.toml]
//! ```

use ssinfogan_experiment::{runtime, train, Overlays, RunSpec, TrainOptions};

fn main() -> anyhow::Result<()> {
    runtime::restore_environment();
    runtime::heap_in_huge_pages();
    runtime::tune();
    let experiment = std::env::args().nth(1).unwrap_or_else(|| "experiments/mnist.toml".into());
    let spec = RunSpec {
        overlays: Overlays { profiles: vec!["smoke".into()], overrides: vec!["loss.lambda_ss=1".into()] },
        labels: Some(20),
        ..RunSpec::new(experiment, "ss-infogan")
    };
    let trained = runtime::on_the_compute_pool(|| train(&spec, &TrainOptions::default()))?;
    println!("{} ({} iterations)", trained.run_dir.root().display(), trained.summary.iterations);
    for (metric, value) in &trained.summary.final_metrics {
        println!("  {metric:<28} {value:.4}");
    }
    Ok(())
}

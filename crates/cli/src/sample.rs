//! `ssinfogan sample --run <dir> --out <file>`: generated images of any run's latest checkpoint, N per value of
//! the semi-supervised code, in the `samples.safetensors` format, from the run's fixed evaluation noise.

use std::path::PathBuf;

use anyhow::Context;
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use ssinfogan_core::{DeviceChoice, LatentSpec, RngStreams};
use ssinfogan_networks::NetworkConfig;

#[derive(clap::Args)]
pub struct SampleArgs {
    /// A run directory, e.g. results/mnist/runs/ss-infogan-n132-s1.
    #[arg(long)]
    run: PathBuf,
    /// Where to write the safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Images per code value.
    #[arg(long, default_value_t = 1000)]
    per_code: usize,
    /// The device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn run(args: SampleArgs) -> anyhow::Result<()> {
    let config_path = args.run.join("config.toml");
    let text =
        std::fs::read_to_string(&config_path).with_context(|| format!("cannot read {}", config_path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", config_path.display()))?;
    let section = |key: &str| {
        table.get(key).cloned().with_context(|| format!("{} has no `{key}`: not a run's config", config_path.display()))
    };
    let latent: LatentSpec =
        section("latent")?.try_into().with_context(|| format!("{}: latent", config_path.display()))?;
    let network: NetworkConfig =
        section("network")?.try_into().with_context(|| format!("{}: network", config_path.display()))?;
    let seed = section("run")?.get("seed").and_then(|s| s.as_integer()).unwrap_or(1) as u64;
    let checkpoint = ssinfogan_training::checkpoint::latest(&args.run.join("checkpoint"))?
        .with_context(|| format!("{} has no checkpoint", args.run.display()))?;
    let device = args.device.open().with_context(|| format!("cannot open device {}", args.device))?;

    let mut vars = VarMap::new();
    let generator = network.generator(&latent, VarBuilder::from_varmap(&vars, DType::F32, &device))?;
    vars.load(checkpoint.join("generator.safetensors"))?;
    let mut rng = RngStreams::new(seed).stream("evaluation");
    let (images, codes) =
        ssinfogan_metrics::generate_per_code(generator.as_ref(), &latent, args.per_code, &mut rng, &device)?;
    crate::eval::write_samples(&args.out, &images, &codes)?;
    println!("{}: {} images from {}", args.out.display(), codes.len(), checkpoint.display());
    Ok(())
}

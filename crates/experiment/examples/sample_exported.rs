//! Samples from a generator that `ssinfogan export` wrote: eight images of each value of its semi-supervised
//! code, saved as `images` (f32, N×C×H×W in [0, 1]) and `codes` in a safetensors file.
//!
//! ```sh
//! ssinfogan export results/mnist-quick/runs/ss-infogan-n132-s1 --out export
//! cargo run --release -p ssinfogan-experiment --example sample_exported -- export samples.safetensors
//! ```

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use ssinfogan_experiment::export::ExportedGenerator;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(out)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: sample_exported EXPORT_DIR OUT.safetensors");
    };
    let generator = ExportedGenerator::load(dir.as_ref(), &Device::Cpu)?;
    let values = generator.latent.semi_supervised.first().map(|c| c.size).unwrap_or(0) as u32;
    let mut images = Vec::new();
    let mut codes = Vec::new();
    for code in 0..values {
        images.push(generator.sample(code, 8, 1)?);
        codes.extend(std::iter::repeat_n(i64::from(code), 8));
    }
    let n = codes.len();
    let tensors = HashMap::from([
        ("images".to_string(), Tensor::cat(&images, 0)?),
        ("codes".to_string(), Tensor::from_vec(codes, n, &Device::Cpu)?),
    ]);
    candle_core::safetensors::save(&tensors, &out)?;
    println!("{out}: {n} images of the {} network, {values} code values", generator.network.kind());
    Ok(())
}

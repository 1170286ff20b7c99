//! A trained generator to take away (`ssinfogan export`): its weights, the latent layout a sampler needs, a
//! model card, and example latents with the images this build makes from them, so that a port (such as
//! `python/ssinfogan_generator.py`, which needs only numpy and safetensors) can check itself.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use serde_json::json;
use ssinfogan_core::run_dir::RunDir;
use ssinfogan_core::{LatentSpec, RngStreams};
use ssinfogan_kernels::Pass;

use crate::assemble::{chosen_checkpoint, trained_generator};
use crate::records::{read_summary, RecordedRun};

/// The files of an export, in `out`.
pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const EXAMPLES_FILE: &str = "examples.safetensors";
pub const CARD_FILE: &str = "README.md";

/// Example latents per value of the semi-supervised code.
const EXAMPLES_PER_CODE: usize = 2;

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub checkpoint: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Exports the generator of the run at `run_root` (its checkpoint `which`: `latest`, `best`, `epoch-NNNN`) into `out`: `model.safetensors` (the
/// weights under the names the networks give them, BatchNorm running statistics included), `config.json` (the
/// network, the latent layout in input order, the image), `examples.safetensors` (`latents` and the `images`
/// this generator makes from them, in inference mode) and a model card `README.md`. Each file is written
/// through a temporary name.
pub fn export(run_root: &Path, which: &str, out: &Path, device: &Device) -> anyhow::Result<Exported> {
    let recorded = RecordedRun::read(run_root)?;
    let run_dir = RunDir::at(run_root);
    let checkpoint = chosen_checkpoint(&run_dir, which)?;
    let summary = read_summary(&run_dir)?;
    let config = &recorded.config;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if out.join(MODEL_FILE).exists() && !out.join(CONFIG_FILE).exists() {
        bail!("{} holds a {MODEL_FILE} that is not an export of ours; choose another --out", out.display());
    }

    let weights = checkpoint.join("generator.safetensors");
    let model = out.join(MODEL_FILE);
    copy_atomically(&weights, &model)?;

    let generator = trained_generator(&config.network, &config.latent, &checkpoint, device)?;
    let (latents, images) =
        examples(generator.as_ref(), &config.latent, recorded.run.seed, config.training.ops, device)?;
    let examples = out.join(EXAMPLES_FILE);
    let tensors: HashMap<String, Tensor> = HashMap::from([
        ("latents".to_string(), latents.to_device(&Device::Cpu)?),
        ("images".to_string(), images.to_device(&Device::Cpu)?),
    ]);
    let tmp = ssinfogan_core::run_dir::temporary_path(&examples);
    candle_core::safetensors::save(&tensors, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    ssinfogan_core::run_dir::commit(&tmp, &examples).with_context(|| format!("cannot write {}", examples.display()))?;

    let layout = layout(&recorded, run_root, &checkpoint);
    let config_path = out.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(&layout)? + "\n";
    ssinfogan_core::run_dir::write_atomically(&config_path, text.as_bytes())
        .with_context(|| format!("cannot write {}", config_path.display()))?;

    let card = out.join(CARD_FILE);
    let text = model_card(&recorded, summary.as_ref().map(|s| s.final_metrics.as_slice()).unwrap_or(&[]), &checkpoint);
    ssinfogan_core::run_dir::write_atomically(&card, text.as_bytes())
        .with_context(|| format!("cannot write {}", card.display()))?;
    Ok(Exported { checkpoint, files: vec![model, config_path, examples, card] })
}

/// An exported generator loaded back into this project's networks, to sample from a Rust program.
pub struct ExportedGenerator {
    pub latent: LatentSpec,
    pub network: ssinfogan_networks::NetworkConfig,
    generator: Box<dyn ssinfogan_kernels::Generator>,
    device: Device,
}

impl ExportedGenerator {
    /// Reads `config.json` and `model.safetensors` of an export directory.
    pub fn load(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}: not a directory `ssinfogan export` wrote", path.display()))?;
        let config: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        if config["format"] != "ssinfogan-generator" || config["version"] != 1 {
            bail!("{} is not an ssinfogan export of format version 1; export the run again", path.display());
        }
        let latent: LatentSpec = serde_json::from_value(config["spec"]["latent"].clone())
            .with_context(|| format!("{}: spec.latent", path.display()))?;
        let network: ssinfogan_networks::NetworkConfig = serde_json::from_value(config["spec"]["network"].clone())
            .with_context(|| format!("{}: spec.network", path.display()))?;
        let mut vars = candle_nn::VarMap::new();
        let generator =
            network.generator(&latent, candle_nn::VarBuilder::from_varmap(&vars, candle_core::DType::F32, device))?;
        let weights = dir.join(MODEL_FILE);
        vars.load(&weights).with_context(|| format!("cannot load {}", weights.display()))?;
        Ok(Self { latent, network, generator, device: device.clone() })
    }

    /// `n` images (N, C, H, W) in [0, 1] of the semi-supervised code's value `code`, the other codes and the
    /// noise drawn from `seed`.
    pub fn sample(&self, code: u32, n: usize, seed: u64) -> anyhow::Result<Tensor> {
        let size = self.latent.semi_supervised.first().map(|c| c.size).unwrap_or(0);
        if code as usize >= size {
            bail!("code {code} is not a value of the semi-supervised code (0 to {})", size.saturating_sub(1));
        }
        let mut rng = RngStreams::new(seed).stream("sample");
        let batch = self.latent.sample_with(n, vec![vec![code; n]], &mut rng);
        let input = batch.generator_input(&self.latent, &self.device)?;
        Ok(self.generator.generate(&input, &Pass::inference(ssinfogan_kernels::Ops::default()))?.detach())
    }
}

fn copy_atomically(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    ssinfogan_core::run_dir::write_atomically(to, &bytes).with_context(|| format!("cannot write {}", to.display()))
}

/// `EXAMPLES_PER_CODE` latents per value of the semi-supervised code, from the run's `export` stream, and the
/// images they make.
fn examples(
    generator: &dyn ssinfogan_kernels::Generator,
    latent: &LatentSpec,
    seed: u64,
    ops: ssinfogan_kernels::Ops,
    device: &Device,
) -> anyhow::Result<(Tensor, Tensor)> {
    let values = latent.semi_supervised.first().map(|c| c.size).unwrap_or(1);
    let codes: Vec<u32> = (0..values as u32).flat_map(|v| std::iter::repeat_n(v, EXAMPLES_PER_CODE)).collect();
    let mut rng = RngStreams::new(seed).stream("export");
    let batch = latent.sample_with(codes.len(), vec![codes; latent.semi_supervised.len().min(1)], &mut rng);
    let input = batch.generator_input(latent, device)?;
    let images = generator.generate(&input, &Pass::inference(ops))?.detach();
    Ok((input, images))
}

/// `config.json`: everything a sampler needs besides the weights.
fn layout(recorded: &RecordedRun, run_root: &Path, checkpoint: &Path) -> serde_json::Value {
    let config = &recorded.config;
    let latent = &config.latent;
    let mut blocks = Vec::new();
    let mut offset = 0;
    for code in &latent.semi_supervised {
        blocks.push(json!({
            "name": code.name, "kind": "categorical", "size": code.size, "offset": offset,
            "semi_supervised": true, "label": code.label, "encoding": "one-hot",
        }));
        offset += code.size;
    }
    for (i, &size) in latent.unsupervised_categorical.iter().enumerate() {
        blocks.push(json!({
            "name": format!("u{}", i + 1), "kind": "categorical", "size": size, "offset": offset,
            "semi_supervised": false, "encoding": "one-hot",
        }));
        offset += size;
    }
    for i in 0..latent.continuous {
        blocks.push(json!({
            "name": format!("c{}", i + 1), "kind": "continuous", "size": 1, "offset": offset,
            "distribution": "uniform", "low": -1.0, "high": 1.0,
        }));
        offset += 1;
    }
    blocks.push(json!({
        "name": "noise", "kind": "noise", "size": latent.noise, "offset": offset,
        "distribution": "normal", "mean": 0.0, "std": 1.0,
    }));
    let image = config.network.image();
    json!({
        "format": "ssinfogan-generator",
        "version": 1,
        "network": {
            "kind": config.network.kind(),
            "batch_norm_eps": config.network.layers().batch_norm_eps,
        },
        "input_size": latent.input_dim(),
        "latent": blocks,
        "image": {
            "channels": image.channels, "height": image.height, "width": image.width,
            "layout": "NCHW", "range": [0.0, 1.0],
        },
        // The same, as this project's types read it back (`ExportedGenerator::load`).
        "spec": { "latent": latent, "network": config.network },
        "weights": MODEL_FILE,
        "examples": EXAMPLES_FILE,
        "run": {
            "directory": run_root.display().to_string(),
            "checkpoint": checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()),
            "experiment": config.experiment.name,
            "dataset": config.experiment.dataset.to_string(),
            "variant": recorded.run.variant,
            "labels": config.data.n_labelled,
            "seed": recorded.run.seed,
        },
    })
}

/// The name of the checkpoint a run ends with (`epoch-0050` for 50 epochs).
fn final_checkpoint(recorded: &RecordedRun) -> String {
    ssinfogan_training::checkpoint::name(recorded.config.schedule.epochs)
}

fn model_card(recorded: &RecordedRun, metrics: &[(String, f64)], checkpoint: &Path) -> String {
    let config = &recorded.config;
    let run = &recorded.run;
    let data = &run.data;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# ss-InfoGAN generator: {} `{}`, {} labels, seed {}\n",
        config.experiment.name, run.variant, config.data.n_labelled, run.seed
    );
    let _ = writeln!(
        md,
        "The generator of one run of semi-supervised InfoGAN (Spurr, Aksan & Hilliges, \"Guiding InfoGAN with \
         Semi-Supervision\", ECML-PKDD 2017), exported from its checkpoint `{}`.\n",
        checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    );
    let _ = writeln!(md, "## Data and labels\n");
    let _ = writeln!(
        md,
        "- {}: {} training and {} test images{}.",
        data.origin,
        data.train_size,
        data.test_size,
        if data.full_dataset { "" } else { " — a subset of the published dataset" }
    );
    let _ = writeln!(
        md,
        "- {} labelled training images ({} per class), the rest unlabelled.",
        config.data.n_labelled,
        run.labelled_per_class.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
    );
    let s = &config.schedule;
    let _ = writeln!(
        md,
        "- Trained for {} iterations (batch {}), {}, git revision {}.\n",
        s.epochs * s.iterations_per_epoch,
        s.batch_size,
        run.cpu_products.as_ref().map(|p| format!("on the CPU ({p})")).unwrap_or_else(|| format!("on {}", run.device)),
        run.git_revision
    );
    if !metrics.is_empty() {
        let _ = writeln!(md, "## The run's final metrics\n");
        let _ = writeln!(
            md,
            "One run, one seed (for the spread over seeds see the experiment's REPORT.md): the last epoch's value \
             of each metric, C_err judged by the experiment's evaluation classifier.{}\n",
            match final_checkpoint(recorded) {
                last if checkpoint.file_name() != Some(std::ffi::OsStr::new(&last)) => format!(
                    " They are the metrics of the final checkpoint `{last}`, not of the exported one: `ssinfogan \
                     eval --checkpoint {}` measures this one.",
                    checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                ),
                _ => String::new(),
            }
        );
        md.push_str("| metric | value |\n|---|---|\n");
        for (metric, value) in metrics {
            let _ = writeln!(md, "| `{metric}` | {value:.4} |");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Sampling\n");
    let _ = writeln!(
        md,
        "`config.json` gives the generator's input in order: each categorical code one-hot, each continuous code \
         uniform in [-1, 1), then standard normal noise; the images come out as `{}` in [0, 1], NCHW. With numpy \
         and safetensors:\n",
        config.network.image()
    );
    md.push_str(
        "```python\nfrom ssinfogan_generator import Generator\n\ng = Generator.load(\"path/to/this/directory\")\n\
         images = g.sample(code=3, n=16, seed=0)   # 16 images of the semi-supervised code's value 3\n\
         assert g.check() < 1e-5                    # examples.safetensors reproduced\n```\n\n",
    );
    md.push_str(
        "`python/ssinfogan_generator.py` (in the repository) is the loader. `examples.safetensors` holds example \
         `latents` and the `images` this build's generator made from them, for checking a port.\n",
    );
    md
}

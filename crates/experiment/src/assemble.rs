//! A run's parts assembled from its config: its dataset, its networks (initialised from the run seed, or with a
//! checkpoint's weights), and its latest checkpoint.

use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use ssinfogan_core::run_dir::RunDir;
use ssinfogan_core::{LatentSpec, RngStreams};
use ssinfogan_datasets::{Dataset, LabelledSubset, SourceRequest};
use ssinfogan_kernels::Generator;
use ssinfogan_networks::{initialise, NetworkConfig};
use ssinfogan_training::{Networks, TrainingRun};

use crate::config::ExperimentConfig;

/// The experiment's dataset, from its configured source (or the first that works) under `data_root`.
pub fn load_dataset(config: &ExperimentConfig, data_root: &Path) -> anyhow::Result<Dataset> {
    ssinfogan_datasets::load(config.experiment.dataset, &source_request(config, data_root))
        .with_context(|| format!("cannot obtain {}", config.experiment.dataset))
}

/// What `config` asks of its dataset: its source (absent: each in turn) and the label its semi-supervised code
/// follows (`class`, or one of CelebA's attributes).
pub fn source_request(config: &ExperimentConfig, data_root: &Path) -> SourceRequest {
    let mut request = SourceRequest::automatic(data_root);
    request.source = config.data.source;
    if let Some(code) = config.latent.semi_supervised.first() {
        request.label = code.label.clone();
    }
    request
}

/// The labelled subset of a run: exactly `data.n_labelled` images of the train split (balanced per class if asked),
/// from the run seed's `labelled-subset` stream.
pub fn labelled_subset(
    config: &ExperimentConfig,
    dataset: &Dataset,
    streams: &RngStreams,
) -> ssinfogan_datasets::Result<LabelledSubset> {
    LabelledSubset::choose(
        &dataset.train.labels,
        dataset.num_classes,
        config.data.n_labelled,
        config.data.balanced,
        &mut streams.stream("labelled-subset"),
    )
}

/// The networks of `config`, initialised from the run seed's `init-generator` and `init-discriminator` streams.
pub fn build_networks(
    config: &ExperimentConfig,
    streams: &RngStreams,
    device: &candle_core::Device,
) -> anyhow::Result<Networks> {
    let network = &config.network;
    let generator_vars = VarMap::new();
    let discriminator_vars = VarMap::new();
    let generator = network.generator(&config.latent, VarBuilder::from_varmap(&generator_vars, DType::F32, device))?;
    let q_us_width = ssinfogan_losses::q_us_width(&config.latent, config.loss.continuous);
    let discriminator = network.discriminator(
        &config.latent,
        q_us_width,
        VarBuilder::from_varmap(&discriminator_vars, DType::F32, device),
    )?;
    let init_std = network.layers().init_std;
    initialise(&generator_vars, init_std, &mut streams.stream("init-generator"))?;
    initialise(&discriminator_vars, init_std, &mut streams.stream("init-discriminator"))?;
    Ok(Networks { generator, discriminator, generator_vars, discriminator_vars })
}

/// The training loop's view of a run of `config`: its data, subset, latent, losses, optimiser and schedule, with the
/// ops it asks for (`[training] ops`) and no test hooks; a caller that times or tests the loop sets those fields.
pub fn training_run<'a>(
    config: &'a ExperimentConfig,
    dataset: &'a Dataset,
    subset: &'a LabelledSubset,
    streams: RngStreams,
    run_dir: &'a RunDir,
    device: &'a candle_core::Device,
) -> TrainingRun<'a> {
    TrainingRun {
        dataset,
        subset,
        latent: &config.latent,
        loss: &config.loss,
        optimiser: &config.optimiser,
        schedule: &config.schedule,
        streams,
        run_dir,
        device,
        ops: config.training.ops,
        losses_every: config.training.losses_every,
        tensorboard: config.training.tensorboard,
        checkpoints: config.training.checkpoints.clone(),
        inject_nan_at: None,
        fault: None,
        lock: None,
        stop: None,
    }
}

/// The networks of `config` (the discriminator with its Q heads) with the weights of a checkpoint directory
/// (`<run>/checkpoint/epoch-N/`).
pub fn trained_networks(
    config: &ExperimentConfig,
    checkpoint: &Path,
    device: &candle_core::Device,
) -> anyhow::Result<Networks> {
    // The initialisation is overwritten by the checkpoint; any seed's streams do.
    let mut networks = build_networks(config, &RngStreams::new(0), device)?;
    let load = |vars: &mut VarMap, file: &str| -> anyhow::Result<()> {
        let path = checkpoint.join(file);
        vars.load(&path).with_context(|| format!("cannot load {}", path.display()))
    };
    load(&mut networks.generator_vars, "generator.safetensors")?;
    load(&mut networks.discriminator_vars, "discriminator.safetensors")?;
    Ok(networks)
}

/// The generator `network` makes for `latent`, with the weights of a checkpoint directory.
pub fn trained_generator(
    network: &NetworkConfig,
    latent: &LatentSpec,
    checkpoint: &Path,
    device: &candle_core::Device,
) -> anyhow::Result<Box<dyn Generator>> {
    let mut vars = VarMap::new();
    let generator = network.generator(latent, VarBuilder::from_varmap(&vars, DType::F32, device))?;
    let path = checkpoint.join("generator.safetensors");
    vars.load(&path).with_context(|| format!("cannot load {}", path.display()))?;
    Ok(generator)
}

/// A run's latest complete checkpoint directory; an error when it has none.
pub fn latest_checkpoint(run_dir: &RunDir) -> anyhow::Result<PathBuf> {
    ssinfogan_training::checkpoint::latest(&run_dir.checkpoint())?
        .with_context(|| format!("{} has no checkpoint", run_dir.root().display()))
}

/// The checkpoint directory of a run that `which` names: `latest`, `best` (where the run's config monitors a
/// metric) or a kept directory such as `epoch-0031`; an error that lists what the run keeps otherwise.
pub fn chosen_checkpoint(run_dir: &RunDir, which: &str) -> anyhow::Result<PathBuf> {
    Ok(ssinfogan_training::checkpoint::choose(&run_dir.checkpoint(), which)?)
}

//! `ssinfogan train`: one run of one variant, label count and seed, into `results/<experiment>/runs/…`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;
use ssinfogan_core::run_dir::{write_atomically, RunDir, RunId, RunLock};
use ssinfogan_core::{DeviceChoice, RngStreams};
use ssinfogan_datasets::{Dataset, LabelledSubset, Provenance, SourceRequest};
use ssinfogan_networks::initialise;
use ssinfogan_training::{train, Networks, RunSummary, TrainingRun};

use crate::config::{self, ExperimentConfig};
use crate::eval::EvaluationHook;

/// Which run: the same arguments for `train` and `eval`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The experiment TOML, e.g. experiments/mnist.toml.
    #[arg(long)]
    pub experiment: PathBuf,
    /// A `[variants.<name>]` of that file, e.g. infogan or ss-infogan.
    #[arg(long)]
    pub variant: String,
    /// A `[profiles.<name>]` of that file, e.g. quick.
    #[arg(long)]
    pub profile: Option<String>,
    /// Number of labelled training images; overrides the variant's `data.n_labelled`.
    #[arg(long)]
    pub labels: Option<usize>,
    /// The run seed: every random number of the run (initialisation, labelled subset, batches, latents) comes from named streams of it.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Where the run directory goes: <results>/<experiment>/runs/<variant>-n<labels>-s<seed>/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Where datasets are found or downloaded to.
    #[arg(long, default_value = "data")]
    pub data_root: PathBuf,
}

impl TrainArgs {
    /// The resolved config (with `--labels` applied) and the run's directory.
    pub fn resolve(&self) -> anyhow::Result<(ExperimentConfig, RunDir)> {
        let mut config = config::load(&self.experiment, &self.variant, self.profile.as_deref())?;
        if let Some(labels) = self.labels {
            config.data.n_labelled = labels;
        }
        let id = RunId { variant: self.variant.clone(), n_labelled: config.data.n_labelled, seed: self.seed };
        let run_dir = RunDir::new(&self.results, &config.experiment.name, &id);
        Ok((config, run_dir))
    }
}

/// What a run's `config.toml` holds: the resolved config and where everything came from.
#[derive(Serialize)]
struct RecordedConfig<'a> {
    #[serde(flatten)]
    config: &'a ExperimentConfig,
    run: RunRecord<'a>,
}

#[derive(Serialize, PartialEq)]
struct RunRecord<'a> {
    variant: &'a str,
    profile: Option<&'a str>,
    seed: u64,
    device: String,
    candle_version: &'static str,
    git_revision: String,
    labelled_per_class: Vec<usize>,
    data: &'a Provenance,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let (config, run_dir) = args.resolve()?;
    // Held until this function returns: a second sweep on the same results directory skips this run.
    let _lock = RunLock::acquire(&run_dir)?;
    release_lock_when_stopped(run_dir.lock())?;
    if let Some(summary) = read_summary(&run_dir.summary())? {
        if summary.status == "completed" {
            tracing::info!("{} is complete; nothing to do", run_dir.root().display());
            return Ok(());
        }
        bail!(
            "{} ended with status `{}`: {}; delete that directory to run it again",
            run_dir.root().display(),
            summary.status,
            summary.error.unwrap_or_default()
        );
    }

    let dataset = load_dataset(&config, &args.data_root)?;
    if let Some(note) = &dataset.provenance.note {
        tracing::warn!("data: {note}");
    }
    let streams = RngStreams::new(args.seed);
    let subset = LabelledSubset::choose(
        &dataset.train.labels,
        dataset.num_classes,
        config.data.n_labelled,
        config.data.balanced,
        &mut streams.stream("labelled-subset"),
    )
    .with_context(|| format!("{}: data.n_labelled", args.experiment.display()))?;
    let device = args.device.open().with_context(|| format!("cannot open device {}", args.device))?;

    let record = RecordedConfig {
        config: &config,
        run: RunRecord {
            variant: &args.variant,
            profile: args.profile.as_deref(),
            seed: args.seed,
            device: args.device.to_string(),
            candle_version: env!("SSINFOGAN_CANDLE_VERSION"),
            git_revision: git_revision(),
            labelled_per_class: subset.per_class.clone(),
            data: &dataset.provenance,
        },
    };
    write_config(&run_dir, &record)?;

    let mut networks = build_networks(&config, &streams, &device)?;
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
        inject_nan_at: std::env::var("SSINFOGAN_INJECT_NAN_AT").ok().and_then(|v| v.parse().ok()),
        fault: match std::env::var("SSINFOGAN_FAULT") {
            Ok(text) if !text.is_empty() => {
                Some(text.parse().map_err(|e: String| anyhow::anyhow!("SSINFOGAN_FAULT: {e}"))?)
            }
            _ => None,
        },
    };
    tracing::info!(
        "training {} on {} ({} labelled: {:?} per class)",
        run_dir.root().display(),
        dataset.provenance.origin,
        subset.labelled.len(),
        subset.per_class
    );
    let mut hook = match config.evaluation.eval_every {
        Some(every) => {
            Some(EvaluationHook::prepare(&config, &dataset, &args.results, every, args.seed, &device)?.with_progress(
                run_dir.root(),
                config.schedule.iterations_per_epoch,
                config.schedule.total_iterations(),
            ))
        }
        None => None,
    };
    let summary = train(&run, &mut networks, hook.as_mut().map(|h| h as &mut dyn ssinfogan_training::EpochHook))?;
    println!(
        "{}: {}",
        run_dir.root().display(),
        summary.final_metrics.iter().map(|(n, v)| format!("{n} {v:.4}")).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// The experiment's dataset, from its configured source (or the first that works) under `data_root`.
pub fn load_dataset(config: &ExperimentConfig, data_root: &Path) -> anyhow::Result<Dataset> {
    let mut request = SourceRequest::automatic(data_root);
    request.source = config.data.source;
    // The label the semi-supervised code follows: `class`, or one of CelebA's attributes.
    if let Some(code) = config.latent.semi_supervised.first() {
        request.label = code.label.clone();
    }
    ssinfogan_datasets::load(config.experiment.dataset, &request)
        .with_context(|| format!("cannot obtain {}", config.experiment.dataset))
}

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

/// Writes `config.toml`; a directory that already holds a different config is refused rather than mixed.
fn write_config(run_dir: &RunDir, record: &RecordedConfig) -> anyhow::Result<()> {
    let text = toml::to_string_pretty(record).context("cannot serialise the resolved config")?;
    let path = run_dir.config();
    if let Ok(existing) = std::fs::read_to_string(&path) {
        // The git revision may move between a run and its resume, and the evaluation protocol does not touch
        // training; everything else must match.
        let training_part = |t: &str| -> Option<toml::Table> {
            let mut table: toml::Table = toml::from_str(t).ok()?;
            table.remove("evaluation");
            // Written before "none" existed, a run without growth had no key at all.
            if let Some(toml::Value::Table(schedule)) = table.get_mut("schedule") {
                schedule.entry("unlabelled_probability_growth").or_insert_with(|| "none".into());
            }
            if let Some(toml::Value::Table(run)) = table.get_mut("run") {
                run.remove("git_revision");
            }
            Some(table)
        };
        if training_part(&existing).is_none() || training_part(&existing) != training_part(&text) {
            bail!(
                "{} holds a run with a different config; delete {} or use another --results directory",
                path.display(),
                run_dir.root().display()
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(run_dir.root()).with_context(|| format!("cannot create {}", run_dir.root().display()))?;
    write_atomically(&path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

fn read_summary(path: &Path) -> anyhow::Result<Option<RunSummary>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| format!("{} is not a run summary", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// On SIGTERM (what Slurm sends at a time limit, a `scancel` or a preemption, before SIGKILL) or SIGINT, removes
/// the run's lock and exits: the run is then interrupted, not held, and whichever process or array task comes next
/// resumes it from its latest checkpoint, on this host or another. Every result file is written through a
/// temporary name and a rename, so exiting at any point leaves whole files; the next start removes temporaries.
fn release_lock_when_stopped(lock: std::path::PathBuf) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).context("cannot install signal handlers")?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let _ = std::fs::remove_file(&lock);
            eprintln!("stopped by signal {signal}: run lock released; the run resumes from its latest checkpoint");
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

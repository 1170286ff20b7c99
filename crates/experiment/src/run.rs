//! One run: a variant of an experiment file, a label count and a seed, assembled (data, labelled subset,
//! networks, run directory, recorded config) and trained into `results/<experiment>/runs/<variant>-n<labels>-s<seed>/`,
//! resumed from its latest checkpoint when it has one.

use anyhow::{bail, Context};
use ssinfogan_core::run_dir::{RunDir, RunLock};
use ssinfogan_core::RngStreams;
use ssinfogan_training::{train as train_loop, CheckpointFault, RunSummary, TrainingRun};

use crate::assemble::{build_networks, labelled_subset, load_dataset, training_run};
use crate::evaluation::EvaluationHook;
use crate::records::{config_differences, read_summary, write_config, RecordedConfig, RunRecord};
use crate::spec::RunSpec;

/// How [`train`] behaves beyond the run itself. The default is what a library user wants: no signal handlers, no
/// injected faults.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Stop between two iterations on SIGTERM or SIGINT and release the run's lock (what `ssinfogan train` does,
    /// so that Slurm's time limits and preemptions leave the run interrupted, not held): [`train`] then returns
    /// [`TrainError::Stopped`](ssinfogan_training::TrainError) with the signal. The handler stays for the rest of
    /// the process: for a process that ends with its run, as the command does.
    pub stop_on_signal: bool,
    /// Make the losses NaN at this iteration: the divergence path, for tests.
    pub inject_nan_at: Option<u64>,
    /// Abort around a checkpoint write: the resume path, for tests.
    pub fault: Option<CheckpointFault>,
}

/// What [`train`] did.
#[derive(Debug, Clone)]
pub struct Trained {
    pub run_dir: RunDir,
    /// The run's `summary.json`.
    pub summary: RunSummary,
    /// The run was complete before: nothing was trained.
    pub already_complete: bool,
}

/// Trains the run `spec` names to its end (resuming from its latest checkpoint), evaluating every
/// `evaluation.eval_every` epochs into its `metrics.csv`. A completed run is left as it is; a failed one is an
/// error that says so.
pub fn train(spec: &RunSpec, options: &TrainOptions) -> anyhow::Result<Trained> {
    let (config, run_dir) = spec.resolve()?;
    // Held until this function returns: a second sweep on the same results directory skips this run.
    let lock = RunLock::acquire(&run_dir)?;
    let stop = options.stop_on_signal.then(stop_flag).transpose()?;
    if let Some(summary) = read_summary(&run_dir)? {
        if summary.completed() {
            let changed = config_differences(run_dir.root(), &config)?;
            if !changed.is_empty() {
                bail!(
                    "{} was trained with another config than {} now gives it ({} changed since): its results would \
                     be reported as this config's. Delete that directory to train it again, or give this config its \
                     own results directory (--results)",
                    run_dir.root().display(),
                    spec.experiment.display(),
                    changed.join(", ")
                );
            }
            tracing::info!("{} is complete; nothing to do", run_dir.root().display());
            return Ok(Trained { run_dir, summary, already_complete: true });
        }
        bail!(
            "{} ended with status `{}`: {}; delete its summary.json to resume it from its latest checkpoint (e.g. \
             after freeing disk space), or the whole directory to train it again",
            run_dir.root().display(),
            summary.status,
            summary.error.unwrap_or_default()
        );
    }

    let dataset = load_dataset(&config, &spec.data_root)?;
    if let Some(note) = &dataset.provenance.note {
        tracing::warn!("data: {note}");
    }
    let streams = RngStreams::new(spec.seed);
    let subset = labelled_subset(&config, &dataset, &streams)
        .with_context(|| format!("{}: data.n_labelled", spec.experiment.display()))?;
    let device = spec.open_device()?;
    // A resume under another config is refused before the classifier is prepared: preparing it under a changed
    // `[evaluation.classifier]` would retrain and replace the classifier that judged the run so far.
    if run_dir.config().exists() {
        let changed = config_differences(run_dir.root(), &config)?;
        if !changed.is_empty() {
            bail!(
                "{} holds a run with a different config ({} differ); delete {} to train it again, or use another \
                 --results directory",
                run_dir.config().display(),
                changed.join(", "),
                run_dir.root().display()
            );
        }
    }
    // The evaluation classifier before the record, which names it (its streams are its own: preparing it first
    // changes no number of the run).
    let hook = match config.evaluation.eval_every {
        Some(every) => Some(EvaluationHook::prepare(&config, &dataset, &spec.results, every, spec.seed, &device)?),
        None => None,
    };

    let record = RecordedConfig {
        config: &config,
        run: RunRecord {
            variant: spec.variant.clone(),
            profile: spec.overlays.profile_list(),
            overrides: spec.overlays.overrides.clone(),
            seed: spec.seed,
            device: spec.device.to_string(),
            cpu_products: device.is_cpu().then(|| ssinfogan_kernels::product_instruction_set().to_string()),
            candle_version: env!("SSINFOGAN_CANDLE_VERSION").to_string(),
            git_revision: git_revision(),
            labelled_per_class: subset.per_class.clone(),
            classifier_sha256: hook.as_ref().map(|h| h.classifier_sha256().to_string()),
            resumed_with: Vec::new(),
            data: dataset.provenance.clone(),
        },
    };
    write_config(&run_dir, &record)?;

    let mut networks = build_networks(&config, &streams, &device)?;
    let run = TrainingRun {
        inject_nan_at: options.inject_nan_at,
        fault: options.fault,
        lock: Some(&lock),
        stop: stop.as_deref(),
        ..training_run(&config, &dataset, &subset, streams, &run_dir, &device)
    };
    tracing::info!(
        "training {} on {} ({} labelled: {:?} per class)",
        run_dir.root().display(),
        dataset.provenance.origin,
        subset.labelled.len(),
        subset.per_class
    );
    let mut hook = hook.map(|hook| {
        hook.with_progress(run_dir.root(), config.schedule.iterations_per_epoch, config.schedule.total_iterations())
    });
    let summary = train_loop(&run, &mut networks, hook.as_mut().map(|h| h as &mut dyn ssinfogan_training::EpochHook))?;
    Ok(Trained { run_dir, summary, already_complete: false })
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

/// A flag that SIGTERM (what Slurm sends at a time limit, a `scancel` or a preemption, before SIGKILL) or SIGINT
/// set to their number. The training loop reads it between two iterations and stops there, so the signal never
/// cuts a checkpoint or a metrics row short; the lock is released as `train` returns, after the last write, and
/// whichever process or array task comes next resumes the run from its latest checkpoint, on this host or another.
fn stop_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicUsize>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let twice = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        // A second signal ends the process at once (a run stuck outside the loop, e.g. loading data): the lock it
        // leaves names a dead process and is taken over.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, std::sync::Arc::clone(&twice))
            .context("cannot install signal handlers")?;
        signal_hook::flag::register(signal, std::sync::Arc::clone(&twice)).context("cannot install signal handlers")?;
        signal_hook::flag::register_usize(signal, std::sync::Arc::clone(&flag), signal as usize)
            .context("cannot install signal handlers")?;
    }
    Ok(flag)
}

//! One training run: the loop, its logs, its checkpoints, and its summary.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use ssinfogan_core::metric;
use ssinfogan_core::run_dir::{RunDir, RunLock};
use ssinfogan_core::{LatentSpec, RngStreams};
use ssinfogan_datasets::{BatchKind, Dataset, LabelledSubset, RealBatches};
use ssinfogan_kernels::{backward, Discriminator, Generator, GradientSums, Ops, Pass};
use ssinfogan_losses::{adversarial_loss, semi_supervised_loss, unsupervised_loss, LossConfig};
use ssinfogan_plan::long_csv;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing_indicatif::span_ext::IndicatifSpanExt;

use crate::adam::Adam;
use crate::checkpoint::{self, TrainingState};
use crate::config::{CheckpointPolicy, OptimiserConfig, ScheduleConfig};
use crate::error::TrainError;
use crate::event_file::EventFile;

/// The generator and discriminator with the variable maps that hold their weights.
pub struct Networks {
    pub generator: Box<dyn Generator>,
    pub discriminator: Box<dyn Discriminator>,
    pub generator_vars: VarMap,
    pub discriminator_vars: VarMap,
}

/// Everything a run is made of.
pub struct TrainingRun<'a> {
    pub dataset: &'a Dataset,
    pub subset: &'a LabelledSubset,
    pub latent: &'a LatentSpec,
    pub loss: &'a LossConfig,
    pub optimiser: &'a OptimiserConfig,
    pub schedule: &'a ScheduleConfig,
    pub streams: RngStreams,
    pub run_dir: &'a RunDir,
    pub device: &'a Device,
    /// Which implementation runs the layers and the Adam updates (`[training] ops`).
    pub ops: Ops,
    /// `losses.csv` every this many iterations; 0: none (see `TrainingConfig::losses_every`).
    pub losses_every: usize,
    /// TensorBoard event files beside them (see `TrainingConfig::tensorboard`).
    pub tensorboard: bool,
    /// Which checkpoints stay (`[training.checkpoints]`).
    pub checkpoints: CheckpointPolicy,
    /// Test hook: makes the discriminator loss NaN at this iteration (1-based) to exercise the divergence guard.
    pub inject_nan_at: Option<u64>,
    /// Test hook: the process aborts at a checkpoint, as a power loss or SIGKILL would, at a point every run of a
    /// test reaches the same way.
    pub fault: Option<CheckpointFault>,
    /// The run's lock: checked before every checkpoint and before the summary, so that a process whose lock was
    /// taken over (presumed dead) stops instead of writing over its successor.
    pub lock: Option<&'a RunLock>,
    /// Set to a signal number (by a signal handler) to stop between two iterations.
    pub stop: Option<&'a AtomicUsize>,
}

/// Where a run aborts (`SSINFOGAN_FAULT`), by the epoch whose checkpoint it is (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFault {
    /// Right after checkpoint N is complete (`abort-after-checkpoint:N`).
    AfterCheckpoint(usize),
    /// While checkpoint N is being written: its weights are on disk, its optimiser state and the `latest` pointer
    /// are not (`abort-in-checkpoint:N`).
    InCheckpoint(usize),
    /// Right after checkpoint N is complete, its `generator.safetensors` is cut in half, as a disk that lost a
    /// write would leave it (`truncate-after-checkpoint:N`).
    TruncatedAfterCheckpoint(usize),
    /// The evaluation after epoch N fails, as one that cannot succeed would (`fail-evaluation:N`).
    EvaluationFails(usize),
}

impl std::str::FromStr for CheckpointFault {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{text}` is not a fault: abort-after-checkpoint:N, abort-in-checkpoint:N, \
                 truncate-after-checkpoint:N or fail-evaluation:N (N ≥ 1)"
            )
        };
        let (kind, epoch) = text.split_once(':').ok_or_else(bad)?;
        let epoch: usize = epoch.parse().ok().filter(|e| *e >= 1).ok_or_else(bad)?;
        match kind {
            "abort-after-checkpoint" => Ok(CheckpointFault::AfterCheckpoint(epoch)),
            "abort-in-checkpoint" => Ok(CheckpointFault::InCheckpoint(epoch)),
            "truncate-after-checkpoint" => Ok(CheckpointFault::TruncatedAfterCheckpoint(epoch)),
            "fail-evaluation" => Ok(CheckpointFault::EvaluationFails(epoch)),
            _ => Err(bad()),
        }
    }
}

/// Work done after every epoch, before its checkpoint: an evaluation whose rows go into `metrics.csv`. It must
/// leave the networks and every training stream untouched (inference mode, its own streams), so that a run with
/// a hook trains exactly as one without.
pub trait EpochHook {
    /// Rows for `epoch` (counted from 0); empty when there is nothing to log this epoch.
    fn after_epoch(
        &mut self,
        epoch: usize,
        generator: &dyn Generator,
        discriminator: &dyn Discriminator,
    ) -> Result<Vec<(&'static str, f64)>, TrainError>;

    /// Called once when the last epoch is done, before `summary.json`: files for the run directory
    /// (e.g. `samples.safetensors`).
    /// Wall seconds of the parts of the last `after_epoch` (e.g. an evaluation's generation and classification),
    /// for `timing.csv`.
    fn seconds(&mut self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    fn after_training(
        &mut self,
        _run_root: &Path,
        _generator: &dyn Generator,
        _discriminator: &dyn Discriminator,
    ) -> Result<(), TrainError> {
        Ok(())
    }
}

/// `summary.json`: written last; its presence means the run ended, `status` says how. Its type is shared with
/// the orchestration, which reads it without the numerics.
pub use ssinfogan_plan::{RunSummary, SummaryStatus};

/// Per-epoch sums of the logged quantities.
#[derive(Default)]
struct EpochMeans {
    sums: Vec<(&'static str, f64, u32)>,
}

impl EpochMeans {
    fn add(&mut self, name: &'static str, value: f64) {
        match self.sums.iter_mut().find(|(n, _, _)| *n == name) {
            Some(entry) => {
                entry.1 += value;
                entry.2 += 1;
            }
            None => self.sums.push((name, value, 1)),
        }
    }

    fn means(&self) -> Vec<(&'static str, f64)> {
        self.sums.iter().map(|&(name, sum, n)| (name, sum / f64::from(n))).collect()
    }
}

fn scalar(t: &Tensor) -> Result<f64, TrainError> {
    Ok(f64::from(t.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// Trains `networks` for the whole schedule, resuming from the run's latest checkpoint if there is one.
/// Returns the summary, also written to `summary.json`. On divergence the summary records the failure and the
/// error is returned.
pub fn train(
    run: &TrainingRun,
    networks: &mut Networks,
    mut hook: Option<&mut dyn EpochHook>,
) -> Result<RunSummary, TrainError> {
    if run.latent.semi_supervised.len() != 1 {
        return Err(TrainError::Invalid(format!(
            "training supports exactly one semi-supervised code, the latent spec has {}",
            run.latent.semi_supervised.len()
        )));
    }
    let root = run.run_dir.root();
    std::fs::create_dir_all(root).map_err(|e| TrainError::Io { path: root.to_path_buf(), source: e })?;
    // What a killed process was writing when it died; the files it would have replaced are intact.
    ssinfogan_core::run_dir::remove_temporaries(root)
        .map_err(|e| TrainError::Io { path: root.to_path_buf(), source: e })?;
    let mut adam_g = Adam::new(&networks.generator_vars, run.optimiser.generator, run.ops)?;
    let mut adam_d = Adam::new(&networks.discriminator_vars, run.optimiser.discriminator, run.ops)?;
    let checkpoints = run.run_dir.checkpoint();
    let mut resumed = None;
    let candidates = checkpoint::candidates(&checkpoints)?;
    for path in &candidates {
        let loaded = checkpoint::load(
            path,
            &mut networks.generator_vars,
            &mut networks.discriminator_vars,
            &mut adam_g,
            &mut adam_d,
            run.device,
        );
        match loaded {
            Ok(state) => {
                tracing::info!("resuming {} after epoch {}", root.display(), state.epochs_done);
                resumed = Some(state);
                break;
            }
            // A damaged newest checkpoint: the one before it serves, at the cost of the epochs between them.
            Err(e) => tracing::warn!("cannot resume from {}: {e}; trying the checkpoint before it", path.display()),
        }
    }
    let mut state = match resumed {
        Some(state) => state,
        // A failed load may have overwritten some weights: starting afresh on them would not be a fresh run.
        None if !candidates.is_empty() || checkpoints.join("latest").exists() => {
            return Err(TrainError::Checkpoint {
                path: checkpoints.clone(),
                problem: "no checkpoint of the run can be loaded (see the warnings above); delete the checkpoint \
                          directory to start the run over"
                    .into(),
            });
        }
        None => fresh_state(run)?,
    };
    // The best checkpoint so far, where a metric is monitored. One recorded after the epoch this run resumes from
    // (its newest checkpoint was damaged) is of epochs trained again now: forgotten, and measured anew.
    let mut best = match checkpoint::best(&checkpoints)? {
        Some(record) if record.epochs_done > state.epochs_done => {
            checkpoint::forget_best(&checkpoints)?;
            None
        }
        record => record,
    };
    for file in [run.run_dir.metrics(), run.run_dir.timing(), run.run_dir.losses()] {
        long_csv::truncate_to(&file, state.epochs_done)
            .map_err(|e| TrainError::Io { path: file.clone(), source: e })?;
    }

    let span = tracing::info_span!("train");
    span.pb_set_style(
        &indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} it, {per_sec}, ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    span.pb_set_length(run.schedule.total_iterations());
    span.pb_set_position((state.epochs_done * run.schedule.iterations_per_epoch) as u64);
    let _entered = span.enter();

    let mut events = if run.tensorboard && state.epochs_done < run.schedule.epochs {
        Some(EventFile::create(root).map_err(|e| TrainError::Io { path: root.to_path_buf(), source: e })?)
    } else {
        None
    };

    let mut last_means = Vec::new();
    for epoch in state.epochs_done..run.schedule.epochs {
        let started = Instant::now();
        let mut means = EpochMeans::default();
        // The losses since the last row of losses.csv: windows restart with each epoch, so that a resumed run
        // writes the rows an uninterrupted one does.
        let mut window = EpochMeans::default();
        let (mut labelled_batches, mut unlabelled_batches) = (0u32, 0u32);
        for step in 0..run.schedule.iterations_per_epoch {
            let iteration = (epoch * run.schedule.iterations_per_epoch + step + 1) as u64;
            if let Some(signal) = run.stop.map(|s| s.load(Ordering::Relaxed)).filter(|&s| s != 0) {
                return Err(TrainError::Stopped { signal: signal as i32, iteration: iteration - 1 });
            }
            let (kind, indices) = state.real_batches.next(epoch);
            match kind {
                BatchKind::Labelled => labelled_batches += 1,
                BatchKind::Unlabelled => unlabelled_batches += 1,
            }
            let losses = iteration_step(run, networks, &mut state, &mut adam_g, &mut adam_d, kind, &indices, iteration);
            let losses = match losses {
                Ok(l) => l,
                Err(e) => return Err(fail(run, e, iteration, epoch)),
            };
            for (name, value) in &losses {
                means.add(name, *value);
                window.add(name, *value);
            }
            let steps_done = step + 1;
            if run.losses_every > 0
                && (steps_done % run.losses_every == 0 || steps_done == run.schedule.iterations_per_epoch)
            {
                let rows = window.means();
                log_rows(&run.run_dir.losses(), false, events.as_mut(), "train", iteration, epoch, &rows)?;
                window = EpochMeans::default();
            }
            span.pb_inc(1);
            if let (Some(d), Some(g)) =
                (losses.iter().find(|l| l.0 == metric::D_REAL), losses.iter().find(|l| l.0 == metric::G_ADV))
            {
                span.pb_set_message(&format!("epoch {} d_real {:.3} g_adv {:.3}", epoch + 1, d.1, g.1));
            }
        }
        let training_seconds = started.elapsed().as_secs_f64();
        state.epochs_done = epoch + 1;
        state.generator_steps = adam_g.steps();
        state.discriminator_steps = adam_d.steps();
        let iteration = (state.epochs_done * run.schedule.iterations_per_epoch) as u64;
        let mut rows = means.means();
        rows.push((metric::LABELLED_BATCHES, f64::from(labelled_batches)));
        rows.push((metric::UNLABELLED_BATCHES, f64::from(unlabelled_batches)));
        rows.push((metric::UNLABELLED_PROBABILITY, state.real_batches.schedule().unlabelled_probability(epoch)));
        let evaluation_started = Instant::now();
        let mut seconds = vec![(metric::seconds::TRAINING, training_seconds)];
        // Nothing of this epoch is written by a process whose lock was taken over meanwhile.
        still_ours(run)?;
        if let Some(hook) = hook.as_deref_mut() {
            span.pb_set_message(&format!("epoch {}: evaluating", epoch + 1));
            // An evaluation that fails would fail again on resume: the run is failed, not left to be retried.
            let evaluated = match run.fault {
                Some(CheckpointFault::EvaluationFails(n)) if n == epoch + 1 => {
                    Err(TrainError::Hook(format!("injected evaluation failure after epoch {n}")))
                }
                _ => hook.after_epoch(epoch, networks.generator.as_ref(), networks.discriminator.as_ref()),
            };
            rows.extend(evaluated.map_err(|e| fail(run, e, iteration, epoch))?);
            seconds.push((metric::seconds::EVALUATION, evaluation_started.elapsed().as_secs_f64()));
            seconds.extend(hook.seconds());
        }
        log_rows(&run.run_dir.metrics(), true, events.as_mut(), "epoch", iteration, epoch, &rows)?;
        still_ours(run)?;
        let checkpoint_started = Instant::now();
        let fault_here = |f: CheckpointFault| run.fault == Some(f);
        let mut keep = checkpoint::Keep { last: run.checkpoints.keep_last, new_best: None };
        if let Some((monitor, mode)) = run.checkpoints.best() {
            let value = rows.iter().find(|(name, _)| *name == monitor).map(|(_, v)| *v).filter(|v| v.is_finite());
            if let Some(value) = value.filter(|&v| best.as_ref().is_none_or(|b| mode.improves(v, b.value))) {
                keep.new_best = Some(checkpoint::BestCheckpoint {
                    checkpoint: checkpoint::name(state.epochs_done),
                    epochs_done: state.epochs_done,
                    metric: monitor.to_string(),
                    mode,
                    value,
                });
            }
        }
        checkpoint::save(
            &checkpoints,
            &state,
            &networks.generator_vars,
            &networks.discriminator_vars,
            &adam_g,
            &adam_d,
            &keep,
            fault_here(CheckpointFault::InCheckpoint(state.epochs_done)),
        )?;
        if keep.new_best.is_some() {
            best = keep.new_best;
        }
        if fault_here(CheckpointFault::AfterCheckpoint(state.epochs_done)) {
            std::process::abort();
        }
        if fault_here(CheckpointFault::TruncatedAfterCheckpoint(state.epochs_done)) {
            // The test hook of a disk that lost a flushed file: the newest checkpoint's generator cut in half.
            let path = checkpoints.join(checkpoint::name(state.epochs_done)).join("generator.safetensors");
            let length = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let _ = std::fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(length / 2));
            std::process::abort();
        }
        // After the checkpoint, so that the epoch's wall time includes it. A process killed between the two
        // leaves this epoch without a timing row; its metrics row is already written.
        seconds.push((metric::seconds::CHECKPOINT, checkpoint_started.elapsed().as_secs_f64()));
        seconds.push((metric::seconds::WALL, started.elapsed().as_secs_f64()));
        let timing = run.run_dir.timing();
        long_csv::append(&timing, iteration, epoch, &seconds)
            .map_err(|e| TrainError::Io { path: timing.clone(), source: e })?;
        last_means = rows.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        tracing::info!(
            "epoch {}/{}: {}",
            epoch + 1,
            run.schedule.epochs,
            rows.iter().map(|(n, v)| format!("{n} {v:.4}")).collect::<Vec<_>>().join(", ")
        );
    }
    if last_means.is_empty() {
        last_means = read_last_means(&run.run_dir.metrics())?;
    }
    let total = run.schedule.total_iterations();
    // The losses are checked at every step, the weights once at the end: a weight can go non-finite without either
    // loss showing it (a NaN gradient into a layer whose output the losses saturate).
    for (network, vars) in [("generator", &networks.generator_vars), ("discriminator", &networks.discriminator_vars)] {
        if let Some((name, value)) = first_non_finite(vars)? {
            let error = TrainError::Diverged { iteration: total, loss: format!("{network} weight `{name}`"), value };
            return Err(fail(run, error, total, run.schedule.epochs));
        }
    }
    still_ours(run)?;
    if let Some(hook) = hook {
        hook.after_training(root, networks.generator.as_ref(), networks.discriminator.as_ref())
            .map_err(|e| fail(run, e, total, run.schedule.epochs))?;
    }
    still_ours(run)?;
    let summary = RunSummary {
        status: SummaryStatus::Completed,
        iterations: run.schedule.total_iterations(),
        epochs: run.schedule.epochs,
        final_metrics: last_means,
        error: None,
    };
    write_summary(run.run_dir, &summary)?;
    Ok(summary)
}

/// The state of a run before its first iteration: every stream at the start of its named sequence.
fn fresh_state(run: &TrainingRun) -> Result<TrainingState, TrainError> {
    Ok(TrainingState {
        epochs_done: 0,
        generator_steps: 0,
        discriminator_steps: 0,
        latent_rng: run.streams.stream("latent"),
        real_batches: RealBatches::new(
            run.subset,
            run.schedule.batch_size,
            run.schedule.unlabelled_probability_growth,
            run.streams.stream("labelled-batches"),
            run.streams.stream("unlabelled-batches"),
            run.streams.stream("batch-coin"),
        )?,
    })
}

/// Wall-clock seconds of `iterations` training iterations of a fresh run, after `warmup` untimed ones: the same
/// [`iteration_step`] as [`train`] (real batch upload, D/Q step, G step, both Adam updates, logged scalars), on
/// the batches of the first epoch (labelled under the official growth schedule, which starts at p = 0; as the
/// schedule says otherwise). Nothing is written
/// to the run directory. For benchmarks: `cargo xtask bench` puts these beside a PyTorch reference.
pub fn time_iterations(
    run: &TrainingRun,
    networks: &Networks,
    warmup: usize,
    iterations: usize,
) -> Result<Vec<f64>, TrainError> {
    let mut adam_g = Adam::new(&networks.generator_vars, run.optimiser.generator, run.ops)?;
    let mut adam_d = Adam::new(&networks.discriminator_vars, run.optimiser.discriminator, run.ops)?;
    let mut state = fresh_state(run)?;
    let mut seconds = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let started = Instant::now();
        let (kind, indices) = state.real_batches.next(0);
        iteration_step(run, networks, &mut state, &mut adam_g, &mut adam_d, kind, &indices, i as u64 + 1)?;
        if i >= warmup {
            seconds.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(seconds)
}

/// The logged scalars of every iteration of a fresh run over its whole schedule, in order: the same
/// [`iteration_step`] as [`train`] on the same batches, with nothing written to the run directory (no
/// checkpoints, no evaluation, neither of which changes what is trained). For comparing two implementations of
/// the step, e.g. the fast CPU path against candle's ops, step by step.
pub fn iteration_losses(run: &TrainingRun, networks: &Networks) -> Result<Vec<Vec<(&'static str, f64)>>, TrainError> {
    let mut adam_g = Adam::new(&networks.generator_vars, run.optimiser.generator, run.ops)?;
    let mut adam_d = Adam::new(&networks.discriminator_vars, run.optimiser.discriminator, run.ops)?;
    let mut state = fresh_state(run)?;
    let mut losses = Vec::with_capacity(run.schedule.total_iterations() as usize);
    for epoch in 0..run.schedule.epochs {
        for step in 0..run.schedule.iterations_per_epoch {
            let iteration = (epoch * run.schedule.iterations_per_epoch + step + 1) as u64;
            let (kind, indices) = state.real_batches.next(epoch);
            let logged = iteration_step(run, networks, &mut state, &mut adam_g, &mut adam_d, kind, &indices, iteration);
            losses.push(logged?);
        }
    }
    Ok(losses)
}

/// One iteration: the D/Q step, then the G step on the same fakes. Returns the logged scalars.
#[allow(clippy::too_many_arguments)]
fn iteration_step(
    run: &TrainingRun,
    networks: &Networks,
    state: &mut TrainingState,
    adam_g: &mut Adam,
    adam_d: &mut Adam,
    kind: BatchKind,
    indices: &[usize],
    iteration: u64,
) -> Result<Vec<(&'static str, f64)>, TrainError> {
    let (device, latent, loss) = (run.device, run.latent, run.loss);
    // Each network's parameter gradients of this iteration, summed in place by its layers and handed to its
    // optimiser by `backward`.
    let (g_sums, d_sums) = (Arc::new(GradientSums::default()), Arc::new(GradientSums::default()));
    let train_split = &run.dataset.train;
    let real = run.dataset.images(train_split, indices, device)?; // (b, C, H, W)
    let codes = latent.sample(indices.len(), &mut state.latent_rng);
    let code_targets = [codes.semi_supervised_target(0, device)?];
    let g_pass = Pass::training(run.ops).summing_into(&g_sums);
    let fake = networks.generator.generate(&codes.generator_input(latent, device)?, &g_pass)?; // (b, C, H, W)
    let mut logged = Vec::with_capacity(8);

    // D/Q step: real images are real, fakes are fake; Q_ss learns from labelled real images (and, with no
    // labels at all as plain InfoGAN, or with `q_ss_on_fakes`, from fakes); Q_us learns from fakes.
    let d_pass = Pass::training(run.ops).summing_into(&d_sums);
    let on_real = networks.discriminator.discriminate(&real, &d_pass)?;
    let d_real = adversarial_loss(&on_real.d_logits, 1.0)?;
    let mut d_loss = d_real.clone();
    if kind == BatchKind::Labelled {
        let labels = run.dataset.labels(train_split, indices, device)?;
        let q_ss_real = semi_supervised_loss(latent, &on_real.q_ss_logits, std::slice::from_ref(&labels))?;
        d_loss = (d_loss + (&q_ss_real * loss.lambda_ss)?)?;
        logged.push((metric::Q_SS_REAL, scalar(&q_ss_real)?));
        let predicted = on_real.q_ss_logits.argmax(1)?;
        let accuracy = predicted.eq(&labels)?.to_dtype(DType::F32)?.mean_all()?;
        logged.push((metric::Q_SS_REAL_ACCURACY, scalar(&accuracy)?));
    }
    let on_fake = networks.discriminator.discriminate(&fake.detach(), &d_pass)?;
    let d_fake = adversarial_loss(&on_fake.d_logits, 0.0)?;
    d_loss = (d_loss + &d_fake)?;
    if run.subset.labelled.is_empty() || loss.q_ss_on_fakes {
        let q_ss_fake = semi_supervised_loss(latent, &on_fake.q_ss_logits, &code_targets)?;
        d_loss = (d_loss + (q_ss_fake * loss.lambda_ss)?)?;
    }
    if let Some(q_us) = unsupervised_loss(latent, loss.continuous, on_fake.q_us.as_ref(), &codes)? {
        d_loss = (d_loss + (&q_us * loss.lambda_us)?)?;
        logged.push((metric::Q_US, scalar(&q_us)?));
    }
    if run.inject_nan_at == Some(iteration) {
        d_loss = (d_loss * f64::NAN)?;
    }
    let d_value = scalar(&d_loss)?;
    if !d_value.is_finite() {
        return Err(TrainError::Diverged { iteration, loss: "discriminator loss".into(), value: d_value });
    }
    adam_d.step(&backward(&d_loss, &d_sums)?)?;
    logged.push((metric::D_REAL, scalar(&d_real)?));
    logged.push((metric::D_FAKE, scalar(&d_fake)?));

    // G step: non-saturating adversarial loss plus both information losses, through the updated D, whose
    // parameters are frozen (the step needs the gradient through D to the fakes, not D's own).
    let on_fake = networks.discriminator.discriminate(&fake, &Pass::training(run.ops).frozen())?;
    let g_adv = adversarial_loss(&on_fake.d_logits, 1.0)?;
    let q_ss_fake = semi_supervised_loss(latent, &on_fake.q_ss_logits, &code_targets)?;
    let mut g_loss = (&g_adv + (&q_ss_fake * loss.lambda_ss)?)?;
    if let Some(q_us) = unsupervised_loss(latent, loss.continuous, on_fake.q_us.as_ref(), &codes)? {
        g_loss = (g_loss + (q_us * loss.lambda_us)?)?;
    }
    let g_value = scalar(&g_loss)?;
    if !g_value.is_finite() {
        return Err(TrainError::Diverged { iteration, loss: "generator loss".into(), value: g_value });
    }
    adam_g.step(&backward(&g_loss, &g_sums)?)?;
    logged.push((metric::G_ADV, scalar(&g_adv)?));
    logged.push((metric::Q_SS_FAKE, scalar(&q_ss_fake)?));
    Ok(logged)
}

/// An error when the run's lock is no longer this process's.
fn still_ours(run: &TrainingRun) -> Result<(), TrainError> {
    match run.lock {
        Some(lock) if !lock.is_ours() => Err(TrainError::LockLost {
            path: run.run_dir.lock(),
            holder: lock.holder().unwrap_or_else(|| "nobody (it was deleted)".into()),
        }),
        _ => Ok(()),
    }
}

/// The first variable (by name) holding a NaN or infinite value, with that value.
fn first_non_finite(vars: &VarMap) -> Result<Option<(String, f64)>, TrainError> {
    let data = vars.data().lock().map_err(|_| TrainError::Invalid("a variable map's lock is poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let values: Vec<f32> = data[name].as_tensor().flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1()?;
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Ok(Some((name.clone(), f64::from(*v))));
        }
    }
    Ok(None)
}

/// Records a failed run in `summary.json` (the checkpoints stay as they were) and passes the error on.
fn fail(run: &TrainingRun, error: TrainError, iteration: u64, epoch: usize) -> TrainError {
    // A process whose lock was taken over writes nothing more: the run is its successor's.
    if let Err(lost) = still_ours(run) {
        tracing::error!("{error}; not recorded: {lost}");
        return error;
    }
    let run_dir = run.run_dir;
    let summary = RunSummary {
        status: SummaryStatus::Failed,
        iterations: iteration,
        epochs: epoch,
        final_metrics: Vec::new(),
        error: Some(error.to_string()),
    };
    if let Err(e) = write_summary(run_dir, &summary) {
        tracing::error!("could not record the failure: {e}");
    }
    error
}

/// Appends `rows` to the long CSV at `path` (waiting for the disk when `synced`: `metrics.csv`, not the
/// `losses.csv` a resume rebuilds) and, where the run writes TensorBoard files, as scalars tagged
/// `<prefix>/<name>`.
fn log_rows(
    path: &Path,
    synced: bool,
    events: Option<&mut EventFile>,
    prefix: &str,
    iteration: u64,
    epoch: usize,
    rows: &[(&str, f64)],
) -> Result<(), TrainError> {
    let io = |source| TrainError::Io { path: path.to_path_buf(), source };
    if synced {
        long_csv::append(path, iteration, epoch, rows).map_err(io)?;
    } else {
        long_csv::append_unsynced(path, iteration, epoch, rows).map_err(io)?;
    }
    if let Some(events) = events {
        let tagged: Vec<(String, f64)> =
            rows.iter().map(|(name, value)| (format!("{prefix}/{name}"), *value)).collect();
        events
            .scalars(iteration, &tagged)
            .map_err(|e| TrainError::Io { path: events.path().to_path_buf(), source: e })?;
    }
    Ok(())
}

fn write_summary(run_dir: &RunDir, summary: &RunSummary) -> Result<(), TrainError> {
    summary.write(run_dir.root()).map_err(|e| TrainError::Io { path: run_dir.summary(), source: e })
}

/// The last epoch's rows of `metrics.csv` (a run resumed after its last epoch has nothing left to train).
fn read_last_means(path: &Path) -> Result<Vec<(String, f64)>, TrainError> {
    match long_csv::read(path) {
        Ok(Some(rows)) => Ok(long_csv::last_epoch(&rows)),
        Ok(None) => Err(TrainError::Invalid(format!(
            "{} is missing though the checkpoint says every epoch was trained; delete the run directory to train \
             it again",
            path.display()
        ))),
        Err(e) => Err(TrainError::Invalid(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_finite_weight_is_found_by_name() {
        let mut vars = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        vb.get_with_hints(3, "a.weight", candle_nn::Init::Const(1.0)).unwrap();
        vb.get_with_hints(2, "b.bias", candle_nn::Init::Const(0.0)).unwrap();
        assert_eq!(first_non_finite(&vars).unwrap(), None);
        vars.set_one("b.bias", Tensor::new(&[0.0f32, f32::INFINITY], &Device::Cpu).unwrap()).unwrap();
        assert_eq!(first_non_finite(&vars).unwrap(), Some(("b.bias".to_string(), f64::INFINITY)));
        vars.set_one("a.weight", Tensor::new(&[1.0f32, f32::NAN, 1.0], &Device::Cpu).unwrap()).unwrap();
        let (name, value) = first_non_finite(&vars).unwrap().unwrap();
        assert!(name == "a.weight" && value.is_nan());
    }
}

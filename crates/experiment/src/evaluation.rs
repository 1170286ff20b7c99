//! Evaluation: the hook that evaluates a run during training with the experiment's classifier
//! ([`ClassifierCache`]), and the evaluation of a run's checkpoint that `ssinfogan eval` prints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use ssinfogan_core::run_dir::{write_atomically, RunDir};
use ssinfogan_core::{metric, RngStreams};
use ssinfogan_datasets::Dataset;
use ssinfogan_kernels::Ops;
use ssinfogan_metrics::{evaluate, Classifier, Evaluation, EvaluationInputs, RealFeatures};

use crate::assemble::{chosen_checkpoint, latest_checkpoint, load_dataset, trained_networks};
use crate::classifier::ClassifierCache;
use crate::config::ExperimentConfig;
use crate::records::RunRecord;
use crate::share::{write_final_samples_u8, write_morphometry_record, write_report_share};
use crate::spec::RunSpec;

/// The evaluation of a run's checkpoint.
pub struct CheckpointEvaluation {
    pub run_dir: RunDir,
    /// The checkpoint evaluated, e.g. `.../checkpoint/epoch-0050`.
    pub checkpoint: PathBuf,
    /// Where the metrics went: `evaluation.csv` for the latest checkpoint, `evaluation-<checkpoint>.csv` for
    /// another one, beside `samples.safetensors` or `samples-<checkpoint>.safetensors`.
    pub files: Vec<PathBuf>,
    /// The training iteration the checkpoint was written at.
    pub iteration: usize,
    pub evaluation: Evaluation,
}

/// Evaluates the checkpoint `which` (`latest`, `best`, `epoch-NNNN`) of the run `spec` names with every metric,
/// on the data it was trained on, and writes `evaluation.csv` and `samples.safetensors` into its directory (for a
/// checkpoint other than the latest: `evaluation-<checkpoint>.csv` and `samples-<checkpoint>.safetensors`, so
/// that the run's own files always describe its latest state).
pub fn evaluate_checkpoint(spec: &RunSpec, which: &str) -> anyhow::Result<CheckpointEvaluation> {
    let (config, run_dir) = spec.resolve()?;
    if ssinfogan_core::run_dir::RunLock::is_held(&run_dir) {
        bail!(
            "{} is being trained by another process (see its run.lock): its final samples.safetensors is the run's \
             to write. Evaluate it when it ends, or write samples of its latest checkpoint elsewhere with \
             `ssinfogan sample --run {} --out FILE`",
            run_dir.root().display(),
            run_dir.root().display()
        );
    }
    let latest = latest_checkpoint(&run_dir).context("train it first")?;
    let checkpoint = chosen_checkpoint(&run_dir, which)?;
    // Only the data's record: the evaluation protocol may have changed since the run was trained.
    let recorded = RunRecord::read(run_dir.root())?;
    let dataset = load_dataset(&config, &spec.data_root)?;
    let recorded_hash = &recorded.data.content_sha256;
    if &dataset.provenance.content_sha256 != recorded_hash {
        bail!(
            "the data found now ({}, sha256 {}) is not the data {} was trained on (sha256 {recorded_hash})",
            dataset.provenance.origin,
            &dataset.provenance.content_sha256[..16],
            run_dir.root().display()
        );
    }
    let device = spec.open_device()?;
    let hook = EvaluationHook::prepare(&config, &dataset, &spec.results, 1, spec.seed, &device)?;
    let networks = trained_networks(&config, &checkpoint, &device)?;
    let evaluation = hook.evaluate(networks.generator.as_ref(), networks.discriminator.as_ref())?;

    let epochs = checkpoint.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("epoch-")).unwrap_or("0");
    let epochs: usize = epochs.parse().unwrap_or(0);
    let iteration = epochs * config.schedule.iterations_per_epoch;
    let csv = ssinfogan_plan::long_csv::format(iteration as u64, epochs.saturating_sub(1), &evaluation.metrics, true);
    let suffix = match checkpoint.file_name() {
        Some(name) if checkpoint != latest => format!("-{}", name.to_string_lossy()),
        _ => String::new(),
    };
    let path = run_dir.evaluation(&suffix);
    write_atomically(&path, csv.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    let samples = run_dir.samples(&suffix);
    write_samples(&samples, &evaluation.samples, &evaluation.sample_codes)?;
    Ok(CheckpointEvaluation { run_dir, checkpoint, files: vec![path, samples], iteration, evaluation })
}

/// `samples.safetensors`: `images` f32 (N, C, H, W) in [0, 1] and `codes` i64 (N,), the semi-supervised code
/// value that made each image.
pub fn write_samples(path: &Path, images: &Tensor, codes: &[i64]) -> anyhow::Result<()> {
    let n = codes.len();
    let tensors: HashMap<String, Tensor> = HashMap::from([
        ("images".to_string(), images.to_device(&Device::Cpu)?),
        ("codes".to_string(), Tensor::from_slice(codes, n, &Device::Cpu)?),
    ]);
    let tmp = ssinfogan_core::run_dir::temporary_path(path);
    candle_core::safetensors::save(&tensors, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    ssinfogan_core::run_dir::commit(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// One evaluation setup (classifier, test split, fixed noise) for `eval`, and as a training hook: every `every`
/// epochs, all metrics into `metrics.csv`, from the same fixed noise and codes each time (a fresh `evaluation`
/// stream of the run seed).
pub struct EvaluationHook<'a> {
    classifier: Classifier,
    classifier_accuracy: f64,
    /// The sha256 of the classifier's weights file: the judge each run records.
    classifier_sha256: String,
    latent: &'a ssinfogan_core::LatentSpec,
    test_images: Tensor,
    test_labels: Tensor,
    /// Summarised at the first evaluation, not when the hook is prepared: preparing one costs no pass of the
    /// classifier over the test split.
    real_features: std::cell::OnceCell<RealFeatures>,
    samples_per_code: usize,
    interim_samples_per_code: usize,
    every: usize,
    seed: u64,
    device: &'a Device,
    /// Which implementation runs the networks and the classifier: the run's `[training] ops`.
    ops: Ops,
    /// Where each evaluation draws its training-progress grid, and the iterations per epoch that name the frames.
    progress: Option<Progress>,
    /// Wall seconds of the parts of the last `after_epoch`.
    seconds: Vec<(&'static str, f64)>,
    /// The evaluation after the last epoch, kept so that `after_training` writes its samples instead of
    /// evaluating the same networks again.
    last: Option<Evaluation>,
    epochs: usize,
}

/// The training-progress pictures of a run: a grid per evaluation, an animation at the end.
struct Progress {
    dir: PathBuf,
    iterations_per_epoch: u64,
    total_iterations: u64,
    /// Time spent drawing them, so that the run can say what they cost.
    spent: std::time::Duration,
    frames: usize,
}

/// Noise samples (columns) of a progress grid.
const PROGRESS_COLUMNS: usize = 10;

impl<'a> EvaluationHook<'a> {
    /// The test split on `device` and the experiment's classifier ([`ClassifierCache`]: loaded, or trained now
    /// and cached).
    pub fn prepare(
        config: &'a ExperimentConfig,
        dataset: &Dataset,
        results: &Path,
        every: usize,
        seed: u64,
        device: &'a Device,
    ) -> anyhow::Result<Self> {
        let all: Vec<usize> = (0..dataset.test.len()).collect();
        let test_images = dataset.images(&dataset.test, &all, device)?;
        let test_labels = dataset.labels(&dataset.test, &all, device)?;
        let cache = ClassifierCache::of(results, &config.experiment.name);
        let cached = cache.load_or_train(config, dataset, device)?;
        Ok(Self {
            classifier: cached.classifier,
            classifier_accuracy: cached.test_accuracy,
            classifier_sha256: cached.sha256,
            latent: &config.latent,
            test_images,
            test_labels,
            real_features: std::cell::OnceCell::new(),
            samples_per_code: config.evaluation.samples_per_code,
            interim_samples_per_code: config
                .evaluation
                .interim_samples_per_code
                .map_or(config.evaluation.samples_per_code, |n| n.min(config.evaluation.samples_per_code)),
            every,
            seed,
            device,
            ops: config.training.ops,
            progress: None,
            seconds: Vec::new(),
            last: None,
            epochs: config.schedule.epochs,
        })
    }

    /// During training: also draw a progress grid at each evaluation into `run_root/samples/progress/` (the same
    /// latents each time, from the run seed's `progress-grid` stream), and animate them at the end.
    pub fn with_progress(mut self, run_root: &Path, iterations_per_epoch: usize, total_iterations: u64) -> Self {
        self.progress = Some(Progress {
            dir: run_root.join("samples").join("progress"),
            iterations_per_epoch: iterations_per_epoch as u64,
            total_iterations,
            spent: std::time::Duration::ZERO,
            frames: 0,
        });
        self
    }

    fn draw_progress(
        &mut self,
        epoch: usize,
        generator: &dyn ssinfogan_kernels::Generator,
    ) -> Result<(), ssinfogan_training::TrainError> {
        let Some(progress) = self.progress.as_mut() else { return Ok(()) };
        let started = std::time::Instant::now();
        let hook = ssinfogan_training::TrainError::Hook;
        let mut rng = RngStreams::new(self.seed).stream("progress-grid");
        let (rows, images) = ssinfogan_metrics::sweep::progress_grid(
            generator,
            self.latent,
            PROGRESS_COLUMNS,
            &mut rng,
            self.device,
            self.ops,
        )
        .map_err(|e| hook(e.to_string()))?;
        let (_, c, h, w) = images.dims4().map_err(|e| hook(e.to_string()))?;
        let pixels: Vec<f32> = images.flatten_all().and_then(|t| t.to_vec1()).map_err(|e| hook(e.to_string()))?;
        let iteration = (epoch as u64 + 1) * progress.iterations_per_epoch;
        ssinfogan_reporting::progress::write_frame(
            &progress.dir,
            iteration,
            &pixels,
            rows,
            PROGRESS_COLUMNS,
            (c, h, w),
        )
        .map_err(|e| hook(e.to_string()))?;
        progress.spent += started.elapsed();
        progress.frames += 1;
        Ok(())
    }

    /// The evaluation classifier C.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Which implementation runs the networks and the classifier in this evaluation.
    pub fn ops(&self) -> Ops {
        self.ops
    }

    /// The sha256 of the evaluation classifier's weights file.
    pub fn classifier_sha256(&self) -> &str {
        &self.classifier_sha256
    }

    /// The evaluation classifier's accuracy on the real test split.
    pub fn classifier_accuracy(&self) -> f64 {
        self.classifier_accuracy
    }

    /// The full evaluation: `samples_per_code` images per code value.
    pub fn evaluate(
        &self,
        generator: &dyn ssinfogan_kernels::Generator,
        discriminator: &dyn ssinfogan_kernels::Discriminator,
    ) -> Result<Evaluation, ssinfogan_training::TrainError> {
        self.evaluate_on(generator, discriminator, self.samples_per_code, true)
    }

    /// An evaluation on the first `per_code` of each code value's fixed latents.
    fn evaluate_on(
        &self,
        generator: &dyn ssinfogan_kernels::Generator,
        discriminator: &dyn ssinfogan_kernels::Discriminator,
        per_code: usize,
        official: bool,
    ) -> Result<Evaluation, ssinfogan_training::TrainError> {
        let real_features = match self.real_features.get() {
            Some(real) => real,
            None => {
                let real = RealFeatures::new(&self.classifier, &self.test_images, self.ops)
                    .map_err(|e| ssinfogan_training::TrainError::Hook(e.to_string()))?;
                self.real_features.get_or_init(|| real)
            }
        };
        let inputs = EvaluationInputs {
            generator,
            discriminator,
            classifier: &self.classifier,
            latent: self.latent,
            test_images: &self.test_images,
            test_labels: &self.test_labels,
            real_features,
            samples_per_code: per_code,
            drawn_per_code: self.samples_per_code,
            official,
            device: self.device,
            ops: self.ops,
        };
        evaluate(&inputs, &mut RngStreams::new(self.seed).stream("evaluation"))
            .map_err(|e| ssinfogan_training::TrainError::Hook(e.to_string()))
    }
}

impl ssinfogan_training::EpochHook for EvaluationHook<'_> {
    fn after_epoch(
        &mut self,
        epoch: usize,
        generator: &dyn ssinfogan_kernels::Generator,
        discriminator: &dyn ssinfogan_kernels::Discriminator,
    ) -> Result<Vec<(&'static str, f64)>, ssinfogan_training::TrainError> {
        self.seconds.clear();
        if !(epoch + 1).is_multiple_of(self.every) {
            return Ok(Vec::new());
        }
        let last = epoch + 1 == self.epochs;
        let per_code = if last { self.samples_per_code } else { self.interim_samples_per_code };
        let evaluation = self.evaluate_on(generator, discriminator, per_code, last)?;
        let metrics = evaluation.metrics.clone();
        self.seconds.extend(evaluation.seconds.iter().copied());
        if last {
            self.last = Some(evaluation);
        }
        // A picture is not worth a run: a frame that cannot be drawn or written is reported and skipped.
        let started = std::time::Instant::now();
        if let Err(e) = self.draw_progress(epoch, generator) {
            tracing::warn!("training progress grid after epoch {}: {e}", epoch + 1);
        }
        self.seconds.push((metric::seconds::PROGRESS_GRID, started.elapsed().as_secs_f64()));
        Ok(metrics)
    }

    fn seconds(&mut self) -> Vec<(&'static str, f64)> {
        std::mem::take(&mut self.seconds)
    }

    /// The run's `samples.safetensors`, from the same fixed noise and codes as every evaluation.
    fn after_training(
        &mut self,
        run_root: &Path,
        generator: &dyn ssinfogan_kernels::Generator,
        discriminator: &dyn ssinfogan_kernels::Discriminator,
    ) -> Result<(), ssinfogan_training::TrainError> {
        // The networks have not changed since the last epoch's evaluation (when there was one in this process).
        let evaluation = match self.last.take() {
            Some(evaluation) => evaluation,
            None => self.evaluate(generator, discriminator)?,
        };
        let hook = |e: anyhow::Error| ssinfogan_training::TrainError::Hook(format!("{e:#}"));
        write_samples(&RunDir::at(run_root).samples(""), &evaluation.samples, &evaluation.sample_codes)
            .map_err(hook)?;
        // The run's share of the report, so that the report reads records only.
        write_final_samples_u8(run_root, &evaluation.samples, &evaluation.sample_codes, self.samples_per_code)
            .map_err(hook)?;
        write_report_share(run_root, self.seed, generator, &self.classifier, self.latent, self.device, self.ops)
            .map_err(hook)?;
        let started = std::time::Instant::now();
        let draws = crate::share::morphometry_draws(self.samples_per_code);
        if write_morphometry_record(run_root, self.seed, generator, self.latent, draws, self.device, self.ops)
            .map_err(hook)?
        {
            tracing::info!("morphometry of the continuous codes in {:.1} s", started.elapsed().as_secs_f64());
        }
        if let Some(progress) = &mut self.progress {
            let started = std::time::Instant::now();
            let out = progress.dir.with_extension("gif");
            let frames =
                match ssinfogan_reporting::progress::write_animation(&progress.dir, &out, progress.total_iterations) {
                    Ok(frames) => frames,
                    Err(e) => {
                        tracing::warn!("training progress animation: {e}");
                        0
                    }
                };
            progress.spent += started.elapsed();
            tracing::info!(
                "training progress: {frames} grids and {} ({} drawn here in {:.2} s in all)",
                out.display(),
                progress.frames,
                progress.spent.as_secs_f64()
            );
        }
        Ok(())
    }
}
